//! Shell text for remote commands: quoting, the `environment:`/`chdir` prelude, the sudo
//! wrapper for `become`, and reading sudo's failures back out of stderr.
//!
//! Pure string work, shared by every transport that runs `/bin/sh` (ssh, and local when it
//! escalates), so the exact command lines are unit tested in one place.

use rand::Rng;

/// Quotes `s` for a POSIX shell as one word: `'...'`, with `'` written as `'\''`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Whether `name` can be an environment variable name in a shell `export`.
pub fn is_valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c == '_' || c.is_ascii_alphabetic() => {}
        _ => return false,
    }
    chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// The script a command runs as: `export K='v'` lines, `cd 'dir' || exit 1`, then `cmd`.
/// Lines are separated by newlines, so `cmd` keeps its own meaning whatever it contains.
pub fn script(cmd: &str, env: &[(String, String)], chdir: Option<&str>) -> anyhow::Result<String> {
    let mut out = String::new();
    for (name, value) in env {
        if !is_valid_env_name(name) {
            anyhow::bail!("invalid environment variable name {name:?}");
        }
        out.push_str(&format!("export {name}={}\n", quote(value)));
    }
    if let Some(dir) = chdir {
        out.push_str(&format!("cd {} || exit 1\n", quote(dir)));
    }
    out.push_str(cmd);
    Ok(out)
}

/// The random texts that let a password-fed sudo be told apart from the command's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SudoMarkers {
    /// What sudo prints (on stderr) when it wants the password (`sudo -p`).
    pub prompt: String,
    /// The line the command prints on stdout first, once sudo let it run.
    pub success: String,
}

impl SudoMarkers {
    pub fn random() -> Self {
        let token: String = rand::thread_rng()
            .sample_iter(&rand::distributions::Alphanumeric)
            .take(24)
            .map(char::from)
            .collect();
        SudoMarkers {
            prompt: format!("[infra sudo {token}] password: "),
            success: format!("INFRA-BECOME-SUCCESS-{token}"),
        }
    }
}

/// `script` run as `user` through sudo. The command first prints the `markers.success`
/// line, so the caller knows sudo let it run. Without a password sudo must not ask for one
/// (`-n`); with one, sudo prompts with `markers.prompt` and reads it from stdin (`-S`).
pub fn sudo_command(
    script: &str,
    user: &str,
    markers: &SudoMarkers,
    with_password: bool,
) -> String {
    let inner = quote(&format!("echo {}\n{}", markers.success, script));
    if with_password {
        format!(
            "sudo -H -S -p {} -u {} -- /bin/sh -c {inner}",
            quote(&markers.prompt),
            quote(user)
        )
    } else {
        format!("sudo -H -S -n -u {} -- /bin/sh -c {inner}", quote(user))
    }
}

/// Why sudo did not run the command, from its stderr and exit status (call it only when
/// the success marker never came).
pub fn sudo_refusal(stderr: &str, rc: i32, user: &str) -> String {
    let lower = stderr.to_lowercase();
    if lower.contains("a password is required") {
        return format!(
            "sudo to {user} requires a password; set ansible_become_password (the become password)"
        );
    }
    if lower.contains("incorrect password") || lower.contains("sorry, try again") {
        return format!("sudo to {user} failed: incorrect become password");
    }
    if lower.contains("not found") && lower.contains("sudo") {
        return "become needs sudo, which is not installed on the host".to_string();
    }
    let detail = stderr.trim();
    if detail.is_empty() {
        format!("sudo to {user} failed with exit status {rc}")
    } else {
        format!("sudo to {user} failed (exit status {rc}): {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_wraps_and_escapes_single_quotes() {
        assert_eq!(quote("abc"), "'abc'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("$HOME `x` \"y\""), "'$HOME `x` \"y\"'");
    }

    #[test]
    fn quoted_text_survives_a_real_shell() {
        let nasty = "a'b\"c $HOME `id` \\ \n;|&";
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("printf %s {}", quote(nasty)))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), nasty);
    }

    #[test]
    fn script_exports_env_and_changes_dir_before_the_command() {
        let s = script("echo $A", &[("A".into(), "x y'z".into())], Some("/tmp/a b")).unwrap();
        assert_eq!(s, "export A='x y'\\''z'\ncd '/tmp/a b' || exit 1\necho $A");
        assert_eq!(script("true", &[], None).unwrap(), "true");
    }

    #[test]
    fn script_rejects_bad_env_names() {
        let err = script("true", &[("A B".into(), "1".into())], None).unwrap_err();
        assert!(err.to_string().contains("\"A B\""));
        assert!(!is_valid_env_name("1A"));
        assert!(is_valid_env_name("_A1"));
    }

    #[test]
    fn sudo_without_password_never_prompts() {
        let m = SudoMarkers {
            prompt: "P: ".into(),
            success: "OK1".into(),
        };
        let c = sudo_command("id -u", "root", &m, false);
        assert_eq!(c, "sudo -H -S -n -u 'root' -- /bin/sh -c 'echo OK1\nid -u'");
    }

    #[test]
    fn sudo_with_password_uses_prompt_and_success_marker() {
        let m = SudoMarkers {
            prompt: "P: ".into(),
            success: "OK1".into(),
        };
        let c = sudo_command("id -u", "bob", &m, true);
        assert_eq!(
            c,
            "sudo -H -S -p 'P: ' -u 'bob' -- /bin/sh -c 'echo OK1\nid -u'"
        );
        let r = SudoMarkers::random();
        assert_ne!(r, SudoMarkers::random());
        assert!(r.prompt.ends_with(": "));
    }

    #[test]
    fn sudo_refusals_are_explained() {
        assert!(sudo_refusal("sudo: a password is required\n", 1, "root")
            .contains("requires a password"));
        assert!(sudo_refusal(
            "Sorry, try again.\nsudo: 1 incorrect password attempt",
            1,
            "root"
        )
        .contains("incorrect become password"));
        assert!(sudo_refusal("sh: 1: sudo: not found", 127, "root").contains("not installed"));
        assert_eq!(
            sudo_refusal("bob is not in the sudoers file.\n", 1, "root"),
            "sudo to root failed (exit status 1): bob is not in the sudoers file."
        );
    }
}
