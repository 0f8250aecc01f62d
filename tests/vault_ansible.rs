//! Ansible Vault both ways, with the real `ansible-vault` and `ansible-playbook` (from
//! /opt/infra-venv or PATH): files and strings each tool encrypts, the other decrypts
//! (format 1.1 and 1.2 with a vault-id label); `infra play` with a vaulted vars file, an
//! inline `!vault` value and a vaulted copy source (right password: plaintext written;
//! wrong or missing: a clear error and nothing written); and secrets (`no_log` and
//! vaulted values) appearing in no output mode.

#[path = "support/sshd.rs"]
mod sshd;
#[path = "support/engine.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{infra, local_inventory, tree};

/// An Ansible command-line tool: beside `INFRA_ANSIBLE_PLAYBOOK`, on PATH, or in the
/// project's venv.
fn ansible_tool(name: &str) -> PathBuf {
    if let Ok(p) = std::env::var("INFRA_ANSIBLE_PLAYBOOK") {
        if let Some(dir) = Path::new(&p).parent() {
            let candidate = dir.join(name);
            if candidate.exists() {
                return candidate;
            }
        }
    }
    let on_path = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .expect("run sh");
    if on_path.status.success() {
        return PathBuf::from(String::from_utf8_lossy(&on_path.stdout).trim());
    }
    for dir in ["/opt/infra-venv/bin", "/opt/infra-bench-venv/bin"] {
        let candidate = Path::new(dir).join(name);
        if candidate.exists() {
            return candidate;
        }
    }
    panic!("{name} not found: scripts/install.sh installs ansible-core into /opt/infra-venv");
}

/// Runs an Ansible tool in `dir`; returns (exit code, stdout, stderr).
fn ansible(name: &str, args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = Command::new(ansible_tool(name))
        .args(args)
        .current_dir(dir)
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCALHOST_WARNING", "0")
        .env("ANSIBLE_PYTHON_INTERPRETER", "auto_silent")
        .output()
        .expect("run an ansible tool");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn infra_env(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_infra"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .output()
        .expect("run infra");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

const PLAIN: &str = "db_password: hunter2-from-vault\nport: 5432\n";

#[test]
fn infra_opens_files_ansible_vault_encrypted_in_format_1_1_and_1_2() {
    let dir = tree(&[
        ("pw", "correct horse\n"),
        ("prod-pw", "prod battery\n"),
        ("a.yml", PLAIN),
        ("b.yml", PLAIN),
    ]);
    let d = dir.path();
    let (code, _, err) = ansible(
        "ansible-vault",
        &["encrypt", "--vault-password-file", "pw", "a.yml"],
        d,
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = ansible(
        "ansible-vault",
        &["encrypt", "--vault-id", "prod@prod-pw", "b.yml"],
        d,
    );
    assert_eq!(code, 0, "{err}");
    assert!(read(d.join("a.yml")).starts_with("$ANSIBLE_VAULT;1.1;AES256\n"));
    assert!(read(d.join("b.yml")).starts_with("$ANSIBLE_VAULT;1.2;AES256;prod\n"));

    let (code, out, err) = infra(
        &["vault", "view", "--vault-password-file", "pw", "a.yml"],
        d,
    );
    assert_eq!((code, out.as_str()), (0, PLAIN), "{err}");
    // Several vault ids: the one labelled `prod` opens the 1.2 file.
    let (code, out, err) = infra(
        &[
            "vault",
            "view",
            "--vault-id",
            "dev@pw",
            "--vault-id",
            "prod@prod-pw",
            "b.yml",
        ],
        d,
    );
    assert_eq!((code, out.as_str()), (0, PLAIN), "{err}");
    let (code, _, err) = infra(
        &["vault", "decrypt", "--vault-id", "prod@prod-pw", "b.yml"],
        d,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(read(d.join("b.yml")), PLAIN);
    // The wrong password: a clear error, the file unchanged.
    let before = read(d.join("a.yml"));
    let (code, _, err) = infra(
        &[
            "vault",
            "decrypt",
            "--vault-password-file",
            "prod-pw",
            "a.yml",
        ],
        d,
    );
    assert_eq!(code, 1);
    assert!(err.contains("vault password is wrong"), "{err}");
    assert_eq!(read(d.join("a.yml")), before);
}

#[test]
fn ansible_vault_opens_files_infra_vault_encrypted_edited_and_rekeyed() {
    let dir = tree(&[
        ("pw", "correct horse\n"),
        ("new-pw", "new staple\n"),
        ("prod-pw", "prod battery\n"),
        ("a.yml", PLAIN),
        ("b.yml", PLAIN),
        (
            "editor.sh",
            "#!/bin/sh\necho 'added: by-the-editor' >> \"$1\"\n",
        ),
    ]);
    let d = dir.path();
    std::fs::set_permissions(d.join("editor.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, _, err) = infra(
        &["vault", "encrypt", "--vault-password-file", "pw", "a.yml"],
        d,
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = infra(
        &["vault", "encrypt", "--vault-id", "prod@prod-pw", "b.yml"],
        d,
    );
    assert_eq!(code, 0, "{err}");
    assert!(read(d.join("b.yml")).starts_with("$ANSIBLE_VAULT;1.2;AES256;prod\n"));
    let (code, out, err) = ansible(
        "ansible-vault",
        &["view", "--vault-password-file", "pw", "a.yml"],
        d,
    );
    assert_eq!((code, out.as_str()), (0, PLAIN), "{err}");
    let (code, out, err) = ansible(
        "ansible-vault",
        &["view", "--vault-id", "prod@prod-pw", "b.yml"],
        d,
    );
    assert_eq!((code, out.as_str()), (0, PLAIN), "{err}");

    let editor = d.join("editor.sh").display().to_string();
    let (code, _, err) = infra_env(
        &["vault", "edit", "--vault-password-file", "pw", "a.yml"],
        d,
        &[("EDITOR", editor.as_str())],
    );
    assert_eq!(code, 0, "{err}");
    assert!(read(d.join("a.yml")).starts_with("$ANSIBLE_VAULT;1.1;AES256\n"));
    let (code, _, err) = infra(
        &[
            "vault",
            "rekey",
            "--vault-password-file",
            "pw",
            "--new-vault-password-file",
            "new-pw",
            "a.yml",
        ],
        d,
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = ansible(
        "ansible-vault",
        &["view", "--vault-password-file", "new-pw", "a.yml"],
        d,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("{PLAIN}added: by-the-editor\n"));
    let (code, _, _) = ansible(
        "ansible-vault",
        &["view", "--vault-password-file", "pw", "a.yml"],
        d,
    );
    assert_ne!(code, 0, "the old password still opens the rekeyed file");
}

#[test]
fn ansible_playbook_reads_an_infra_encrypt_string_value_and_a_script_password() {
    let dir = tree(&[("pw.sh", "#!/bin/sh\necho 'scripted password'\n")]);
    let d = dir.path();
    std::fs::set_permissions(d.join("pw.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, block, err) = infra(
        &[
            "vault",
            "encrypt_string",
            "--vault-password-file",
            "pw.sh",
            "--name",
            "greeting",
            "hello from infra vault",
        ],
        d,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        block.starts_with("greeting: !vault |\n          $ANSIBLE_VAULT;1.1;AES256\n"),
        "{block}"
    );
    let vars: String = block.lines().map(|l| format!("    {l}\n")).collect();
    let playbook = format!(
        "- hosts: localhost\n  gather_facts: false\n  vars:\n{vars}  tasks:\n    - debug: {{var: greeting}}\n"
    );
    std::fs::write(d.join("p.yml"), playbook).unwrap();
    let (code, out, err) = ansible(
        "ansible-playbook",
        &[
            "-i",
            "localhost,",
            "-c",
            "local",
            "--vault-password-file",
            "pw.sh",
            "p.yml",
        ],
        d,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("\"greeting\": \"hello from infra vault\""),
        "{out}"
    );
    // infra reads the same playbook, the password coming from ANSIBLE_VAULT_PASSWORD_FILE.
    std::fs::write(d.join("inv.yaml"), local_inventory(&["h1"])).unwrap();
    let script = d.join("pw.sh").display().to_string();
    let (code, out, err) = infra_env(
        &["play", "p.yml", "-i", "inv.yaml", "--output", "lines"],
        d,
        &[("ANSIBLE_VAULT_PASSWORD_FILE", script.as_str())],
    );
    assert_eq!(code, 0, "{out}\n{err}");
}

/// A play reading a vars file, an inline value and a copy source, all made by ansible-vault.
const SITE: &str = r#"- hosts: all
  gather_facts: false
  vars_files: [secrets.yml]
  vars:
    api_token: @INLINE@
  tasks:
    - file: {path: "{{ base }}", state: directory}
    - copy: {src: cert.key, dest: "{{ base }}/cert.key"}
    - copy: {content: "db={{ db_password }} token={{ api_token }}\n", dest: "{{ base }}/app.conf"}
    - copy: {content: "{{ group_secret }}\n", dest: "{{ base }}/group.conf"}
    - template: {src: site.conf.j2, dest: "{{ base }}/site.conf"}
"#;

/// Builds the play's folder with every secret encrypted by ansible-vault with `pw`.
fn vaulted_site() -> tempfile::TempDir {
    let dir = tree(&[
        ("pw", "correct horse\n"),
        ("wrong-pw", "wrong horse\n"),
        ("inv.yaml", &local_inventory(&["h1"])),
        ("secrets.yml", "db_password: hunter2-from-vault\n"),
        ("files/cert.key", "-----KEY made-by-ansible-vault-----\n"),
        (
            "group_vars/all/vault.yml",
            "group_secret: grp-vaulted-value\n",
        ),
        (
            "templates/site.conf.j2",
            "static=tmpl-vaulted-text host={{ inventory_hostname }}\n",
        ),
    ]);
    let d = dir.path();
    let vaulted = [
        "secrets.yml",
        "files/cert.key",
        "group_vars/all/vault.yml",
        "templates/site.conf.j2",
    ];
    for file in vaulted {
        let (code, _, err) = ansible(
            "ansible-vault",
            &["encrypt", "--vault-password-file", "pw", file],
            d,
        );
        assert_eq!(code, 0, "{err}");
    }
    let (code, block, err) = ansible(
        "ansible-vault",
        &[
            "encrypt_string",
            "--vault-password-file",
            "pw",
            "tok-inline-s3cret",
        ],
        d,
    );
    assert_eq!(code, 0, "{err}");
    let inline = block.replace('\n', "\n    ");
    std::fs::write(
        d.join("site.yml"),
        SITE.replace("@INLINE@", inline.trim_end()),
    )
    .unwrap();
    dir
}

#[test]
fn play_with_vaulted_vars_inline_value_and_copy_source_writes_the_plaintext() {
    let dir = vaulted_site();
    let d = dir.path();
    let (code, out, err) = infra(
        &[
            "play",
            "site.yml",
            "-i",
            "inv.yaml",
            "--vault-password-file",
            "pw",
            "--output",
            "lines",
        ],
        d,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        read(d.join("h1/cert.key")),
        "-----KEY made-by-ansible-vault-----\n"
    );
    assert_eq!(
        read(d.join("h1/app.conf")),
        "db=hunter2-from-vault token=tok-inline-s3cret\n"
    );
    assert_eq!(read(d.join("h1/group.conf")), "grp-vaulted-value\n");
    assert_eq!(
        read(d.join("h1/site.conf")),
        "static=tmpl-vaulted-text host=h1\n"
    );
}

#[test]
fn a_wrong_or_missing_vault_password_stops_the_play_before_anything_runs() {
    let dir = vaulted_site();
    let d = dir.path();
    // A vaulted group_vars file is read first (with the inventory): its error names it.
    let (code, out, err) = infra(
        &[
            "play",
            "site.yml",
            "-i",
            "inv.yaml",
            "--vault-password-file",
            "wrong-pw",
        ],
        d,
    );
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("group_vars/all/vault.yml"), "{err}");
    assert!(err.contains("vault password is wrong"), "{err}");
    assert!(!d.join("h1").exists(), "something was written");
    std::fs::write(d.join("group_vars/all/vault.yml"), "group_secret: plain\n").unwrap();
    // Only the copy source is vaulted: its check still comes before any host.
    std::fs::write(d.join("secrets.yml"), "db_password: plain\n").unwrap();
    let site = read(d.join("site.yml"));
    let without_inline = site
        .split("    api_token:")
        .next()
        .map(|head| {
            format!(
                "{head}  tasks:{}",
                site.split("  tasks:").nth(1).unwrap_or("")
            )
        })
        .unwrap();
    std::fs::write(
        d.join("copy-only.yml"),
        without_inline.replace(" token={{ api_token }}", ""),
    )
    .unwrap();
    for (playbook, pw, what) in [
        ("site.yml", Some("wrong-pw"), "vault password is wrong"),
        ("site.yml", None, "no vault password was given"),
        ("copy-only.yml", Some("wrong-pw"), "cert.key"),
    ] {
        let mut args = vec!["play", playbook, "-i", "inv.yaml", "--output", "lines"];
        if let Some(pw) = pw {
            args.extend(["--vault-password-file", pw]);
        }
        let (code, out, err) = infra(&args, d);
        assert_eq!(code, 1, "{playbook} {pw:?}: {out}\n{err}");
        assert!(err.contains(what), "{playbook} {pw:?}: {err}");
        assert!(err.contains(playbook), "the error names the file: {err}");
        assert!(!out.contains("TASK ["), "a task ran: {out}");
        assert!(!d.join("h1").exists(), "something was written");
    }
    // The inline value's error names its line.
    let (_, _, err) = infra(
        &[
            "play",
            "site.yml",
            "-i",
            "inv.yaml",
            "--vault-password-file",
            "wrong-pw",
        ],
        d,
    );
    assert!(err.contains("site.yml:5:"), "{err}");
}

#[test]
fn no_log_and_vaulted_values_appear_in_no_output_mode() {
    let dir = vaulted_site();
    let d = dir.path();
    let site = read(d.join("site.yml"));
    let extra = r#"    - name: a no_log task
      command: "echo {{ db_password }} {{ api_token }} plain-nolog-value"
      no_log: true
    - name: a no_log loop
      debug: {msg: "{{ item }}"}
      loop: ["{{ db_password }}", plain-nolog-value]
      no_log: true
    - name: a failing no_log task
      fail: {msg: "{{ api_token }} plain-nolog-value"}
      no_log: true
      ignore_errors: true
"#;
    std::fs::write(d.join("site.yml"), format!("{site}{extra}")).unwrap();
    let secrets = [
        "hunter2-from-vault",
        "tok-inline-s3cret",
        "made-by-ansible-vault",
        "plain-nolog-value",
        "grp-vaulted-value",
        "tmpl-vaulted-text",
    ];
    let modes: [&[&str]; 6] = [
        &["--output", "lines"],
        &["--output", "json"],
        &["--output", "lines", "-vvvv"],
        &["--output", "lines", "--diff"],
        &["--output", "json", "--diff", "-v"],
        &["--output", "lines", "--check", "--diff"],
    ];
    for (i, mode) in modes.iter().enumerate() {
        // The files go each time, so every run (the check run too) has diffs to show.
        for f in ["cert.key", "app.conf", "group.conf", "site.conf"] {
            let f = format!("h1/{f}");
            let _ = std::fs::remove_file(d.join(f));
        }
        let mut args = vec![
            "play",
            "site.yml",
            "-i",
            "inv.yaml",
            "--vault-password-file",
            "pw",
        ];
        args.extend_from_slice(mode);
        let (code, out, err) = infra_env(&args, d, &[("INFRA_LOG", "debug")]);
        assert_eq!(code, 0, "mode {i} {mode:?}: {out}\n{err}");
        for s in secrets {
            assert!(!out.contains(s), "mode {mode:?}: {s} in stdout:\n{out}");
            assert!(!err.contains(s), "mode {mode:?}: {s} in stderr:\n{err}");
        }
        if mode.contains(&"--diff") && mode.contains(&"lines") {
            assert!(
                out.contains("content hidden: it contains vaulted values"),
                "{out}"
            );
        }
        if !mode.contains(&"--check") {
            // The secrets did reach the host.
            assert!(read(d.join("h1/app.conf")).contains("hunter2-from-vault"));
        }
    }
}

/// Over SSH the debug log names every command a host runs; a `no_log` task's command
/// (which carries its vaulted argument) is left out.
#[test]
fn no_log_commands_stay_out_of_the_ssh_debug_log() {
    let server = sshd::TestSshd::start();
    let dir = vaulted_site();
    let d = dir.path();
    let inventory = format!(
        "all:\n  hosts:\n    s1:\n      ansible_host: 127.0.0.1\n      ansible_port: {}\n      ansible_user: {}\n      ansible_ssh_private_key_file: {}\n",
        server.port,
        server.user,
        server.client_key_path.display()
    );
    std::fs::write(d.join("ssh-inv.yaml"), inventory).unwrap();
    std::fs::write(d.join("known_hosts"), server.known_hosts_line() + "\n").unwrap();
    let site = read(d.join("site.yml"));
    let head = site.split("  tasks:").next().unwrap_or_default();
    let playbook = format!(
        "{head}  tasks:\n    - command: echo visible-command\n      changed_when: false\n    - command: \"echo {{{{ db_password }}}} {{{{ api_token }}}}\"\n      no_log: true\n"
    );
    std::fs::write(d.join("ssh.yml"), playbook).unwrap();
    let args = [
        "play",
        "ssh.yml",
        "-i",
        "ssh-inv.yaml",
        "--known-hosts",
        "known_hosts",
        "--vault-password-file",
        "pw",
        "--output",
        "lines",
        "-vvv",
    ];
    let (code, out, err) = infra_env(&args, d, &[("INFRA_LOG", "debug")]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("visible-command"),
        "the debug log names commands: {err}"
    );
    for s in ["hunter2-from-vault", "tok-inline-s3cret"] {
        assert!(!err.contains(s), "{s} in the debug log:\n{err}");
        assert!(!out.contains(s), "{s} in stdout:\n{out}");
    }
}

/// `--ask-vault-pass` reads the password from the terminal (a pseudo-terminal made by
/// util-linux `script`), and without a controlling terminal (`setsid`) refuses clearly
/// instead of waiting.
#[test]
fn ask_vault_pass_reads_the_terminal_and_refuses_without_one() {
    let dir = tree(&[("pw", "typed password\n"), ("a.yml", PLAIN)]);
    let d = dir.path();
    let (code, _, err) = infra(
        &["vault", "encrypt", "--vault-password-file", "pw", "a.yml"],
        d,
    );
    assert_eq!(code, 0, "{err}");
    let infra_bin = env!("CARGO_BIN_EXE_infra");
    let cmd = format!("{infra_bin} vault view --ask-vault-pass a.yml");
    let out = Command::new("sh")
        .args([
            "-c",
            &format!("printf 'typed password\\n' | script -qec \"{cmd}\" /dev/null"),
        ])
        .current_dir(d)
        .output()
        .expect("run script");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("Vault password (default):"), "{shown}");
    assert!(shown.contains("hunter2-from-vault"), "{shown}");
    let out = Command::new("setsid")
        .args([
            "-w",
            infra_bin,
            "vault",
            "view",
            "--ask-vault-pass",
            "a.yml",
        ])
        .current_dir(d)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run setsid");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("needs a terminal"), "{err}");
}
