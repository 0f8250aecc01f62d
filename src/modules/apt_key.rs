//! `apt_key`: an OpenPGP key in APT's trusted keys (or `keyring`), through `apt-key` as
//! Ansible does (deprecated by Debian, still shipped in bookworm; deb822_repository's
//! `signed_by` is the modern way).
//!
//! The key's id is `id`, or read from the key itself (`file` on the host, inline `data`,
//! or `url`, downloaded on the host) with `gpg --with-colons` in a throw-away GNUPGHOME,
//! so observing changes nothing. Present keys are `apt-key adv --list-public-keys`; an
//! 8-character id compares with short ids, a longer one with the 16-character id, as in
//! Ansible. Adding verifies afterwards that the key is listed (Ansible's "apt-key did not
//! return an error, but failed to add the key" check); removing uses `apt-key del`.
//! Like Ansible, a host without `apt-key` or `gpg` is reported ok with a message.

use async_trait::async_trait;
use serde_json::Value;

use super::args::{choice, sh_quote, str_opt};
use super::{ArgDef, ArgSpec, Change, HostCtx, Module, Op, Plan};
use crate::transport::ExecOptions;
use crate::Vars;

pub struct AptKey;

const ARGS: &[ArgDef] = &[
    ArgDef::opt("id"),
    ArgDef::opt("url"),
    ArgDef::opt("data"),
    ArgDef::opt("file"),
    ArgDef::opt("keyring"),
    ArgDef::opt("validate_certs"),
    ArgDef::opt("keyserver"),
    ArgDef::opt("state"),
];

/// Ansible's `parse_key_id`: (short id for `apt-key del`, id compared with the listing,
/// the full id).
pub fn parse_key_id(id: &str) -> anyhow::Result<(String, String, String)> {
    let mut k = id.trim().to_ascii_uppercase();
    if let Some(rest) = k.strip_prefix("0X") {
        k = rest.to_string();
    }
    anyhow::ensure!(
        !k.is_empty() && k.chars().all(|c| c.is_ascii_hexdigit()),
        "Invalid key_id"
    );
    let n = k.len();
    anyhow::ensure!(
        n == 8 || n >= 16,
        "key_id must be 8, 16, or 16+ hexadecimal characters in length"
    );
    let short = k[n - 8..].to_string();
    let fp = if n > 16 {
        k[n - 16..].to_string()
    } else {
        k.clone()
    };
    Ok((short, fp, k))
}

/// Ansible's `parse_output_for_keys`: key ids of `pub`/`sub` lines that are not expired,
/// from `apt-key adv --list-public-keys --keyid-format=long` or `gpg --with-colons`.
pub fn parse_keys(out: &str, short: bool) -> Vec<String> {
    let mut found = Vec::new();
    for line in out.lines() {
        if !(line.starts_with("pub") || line.starts_with("sub")) || line.contains("expired") {
            continue;
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let code = match tokens.get(1).and_then(|t| t.split_once('/')) {
            Some((_, code)) => Some(code.to_string()),
            None => line.split(':').nth(4).map(String::from),
        };
        if let Some(c) = code {
            found.push(if short && c.len() > 8 {
                c[c.len() - 8..].to_string()
            } else {
                c
            });
        }
    }
    found
}

/// A shell pipeline that writes the URL's body to stdout (curl, wget or python3).
pub fn download_cmd(url: &str, insecure: bool) -> String {
    let u = sh_quote(url);
    let (k, w, py) = if insecure {
        (
            " -k",
            " --no-check-certificate",
            "import ssl,sys,urllib.request as r; c=ssl._create_unverified_context()",
        )
    } else {
        ("", "", "import ssl,sys,urllib.request as r; c=None")
    };
    format!(
        "if command -v curl >/dev/null 2>&1; then curl -fsSL{k} {u}; \
         elif command -v wget >/dev/null 2>&1; then wget -q{w} -O- {u}; \
         else python3 -c {} {u}; fi",
        sh_quote(&format!(
            "{py}; sys.stdout.buffer.write(r.urlopen(sys.argv[1], context=c).read())"
        ))
    )
}

fn apt_key_cmd(keyring: Option<&str>) -> String {
    match keyring {
        Some(k) => format!("apt-key --keyring {}", sh_quote(k)),
        None => "apt-key".into(),
    }
}

#[async_trait]
impl Module for AptKey {
    fn name(&self) -> &'static str {
        "apt_key"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let id = str_opt(args, &["id"])?;
        let url = str_opt(args, &["url"])?;
        let data = str_opt(args, &["data"])?;
        let file = str_opt(args, &["file"])?;
        let keyring = str_opt(args, &["keyring"])?;
        let keyserver = str_opt(args, &["keyserver"])?;
        let insecure = !super::args::bool_arg(args, &["validate_certs"], true)?;
        let present = choice(args, &["state"], &["present", "absent"], "present")? == "present";
        let given: Vec<&str> = [
            ("data", &data),
            ("file", &file),
            ("keyserver", &keyserver),
            ("url", &url),
        ]
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(n, _)| *n)
        .collect();
        if given.len() > 1 {
            anyhow::bail!("parameters are mutually exclusive: {}", given.join("|"));
        }
        let mut plan = Plan::default();
        let env = "LANG=C LC_ALL=C LC_MESSAGES=C LANGUAGE=C";
        let tools = ctx
            .run("for b in apt-key gpg; do command -v $b >/dev/null 2>&1 || echo $b; done")
            .await?;
        if let Some(missing) = tools.stdout.lines().next() {
            plan.result.insert(
                "msg".into(),
                Value::from(format!("Failed to find required executable \"{missing}\"")),
            );
            return Ok(plan);
        }
        let key_id = match id {
            Some(id) => id,
            None => {
                if keyserver.is_some() {
                    plan.failed = Some("Missing key_id, required with keyserver.".into());
                    return Ok(plan);
                }
                let source = match (&file, &url) {
                    (Some(f), _) => format!("cat {}", sh_quote(f)),
                    (_, Some(u)) => download_cmd(u, insecure),
                    _ => "cat".into(),
                };
                let cmd = format!(
                    "export {env}; h=$(mktemp -d) || exit 1; {source} | GNUPGHOME=$h gpg --batch --with-colons -; rc=$?; rm -rf \"$h\"; exit $rc"
                );
                let opts = ExecOptions {
                    become_: ctx.become_.clone(),
                    env: ctx.env.clone(),
                    stdin: data.clone().map(String::into_bytes),
                    ..Default::default()
                };
                let out = ctx.transport.exec(&cmd, &opts).await?;
                let what = match (&file, &url) {
                    (Some(f), _) => f.clone(),
                    (_, Some(u)) => u.clone(),
                    _ => "inline data".into(),
                };
                match parse_keys(&out.stdout, false).into_iter().next() {
                    Some(k) if out.rc == 0 => k,
                    _ => {
                        plan.failed = Some(format!(
                            "Unable to extract key from '{what}': {}",
                            out.stderr.trim()
                        ));
                        return Ok(plan);
                    }
                }
            }
        };
        plan.result.insert("id".into(), Value::from(key_id.clone()));
        let (short, fp, full) = match parse_key_id(&key_id) {
            Ok(ids) => ids,
            Err(_) => {
                plan.failed = Some("Invalid key_id".into());
                return Ok(plan);
            }
        };
        let short_format = full.len() == 8;
        let ak = apt_key_cmd(keyring.as_deref());
        let list = format!("{env} {ak} adv --list-public-keys --keyid-format=long");
        // apt-key creates a missing keyring when listing it; a missing one has no keys, and
        // observing must not write (Ansible's check mode leaves an empty keyring behind).
        let observe_list = match &keyring {
            Some(k) => format!("if [ -e {q} ]; then {list}; fi", q = sh_quote(k)),
            None => list.clone(),
        };
        let out = ctx.run(&observe_list).await?;
        if out.rc != 0 {
            plan.failed = Some(format!("Unable to list public keys: {}", out.stderr.trim()));
            return Ok(plan);
        }
        let keys = parse_keys(&out.stdout, short_format);
        let wanted = if short_format { &short } else { &fp };
        let has = keys.iter().any(|k| k == wanted);
        plan.result.extend(super::args::vars([
            ("short_id", Value::from(short.clone())),
            ("fp", Value::from(fp.clone())),
            ("key_id", Value::from(full.clone())),
            ("before", Value::from(keys.clone())),
        ]));
        let verify = |what: &str, expect_listed: bool| {
            let not = if expect_listed { "! " } else { "" };
            format!(
                "{{ if {not}{list} | grep -q {}; then echo 'apt-key did not return an error, but {what} (check that the id is correct and *not* a subkey)' >&2; exit 1; fi; }}",
                sh_quote(wanted)
            )
        };
        if present && !has {
            let (cmd, stdin) = match (&file, &keyserver, &data, &url) {
                (Some(f), ..) => (format!("{ak} add {}", sh_quote(f)), None),
                (_, Some(ks), ..) => (
                    format!(
                        "{env} {ak} adv --no-tty --keyserver {} --recv {full}",
                        sh_quote(ks)
                    ),
                    None,
                ),
                (_, _, Some(d), _) => (format!("{ak} add -"), Some(d.clone().into_bytes())),
                (_, _, _, Some(u)) => (format!("{} | {ak} add -", download_cmd(u, insecure)), None),
                _ => {
                    plan.failed = Some(format!(
                        "key {full} is not present and no file, data, url or keyserver gives it"
                    ));
                    return Ok(plan);
                }
            };
            plan.changes.push(Change {
                summary: format!("add key {full}"),
                diff: None,
            });
            plan.ops.push(Op::Exec {
                cmd: format!("{cmd} && {}", verify("failed to add the key", true)),
                stdin,
                chdir: None,
                allow_failure: false,
            });
        } else if !present && keys.iter().any(|k| k == &fp) {
            plan.changes.push(Change {
                summary: format!("remove key {full}"),
                diff: None,
            });
            plan.ops.push(super::fileops::exec(format!(
                "{ak} del {short} && {}",
                verify("the key was not removed", false)
            )));
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_as_ansible_splits_them() {
        let (s, f, k) = parse_key_id("0x0E98404D386FA1D9").unwrap();
        assert_eq!(
            (s.as_str(), f.as_str(), k.as_str()),
            ("386FA1D9", "0E98404D386FA1D9", "0E98404D386FA1D9")
        );
        let (_, f, _) = parse_key_id("9DC858229FC7DD38854AE2D88D81803C0EBFCD88").unwrap();
        assert_eq!(f, "8D81803C0EBFCD88");
        assert!(parse_key_id("123").is_err());
        assert!(parse_key_id("xyzxyzxy").is_err());
        assert!(parse_key_id("0123456789AB").is_err());
    }

    #[test]
    fn reads_both_listing_formats_and_skips_expired() {
        let listing = "/etc/apt/trusted.gpg\n--------------------\n\
            pub   rsa4096/0E98404D386FA1D9 2021-01-17 [SC] [expires: 2029-01-15]\n\
            uid           [ unknown] Debian\n\
            sub   rsa4096/6ED0E7B82643E131 2021-01-17 [S]\n\
            pub   rsa2048/1111222233334444 2010-01-01 [SC] [expired: 2015-01-01]\n";
        assert_eq!(
            parse_keys(listing, false),
            vec!["0E98404D386FA1D9", "6ED0E7B82643E131"]
        );
        assert_eq!(parse_keys(listing, true), vec!["386FA1D9", "2643E131"]);
        let colons =
            "pub:-:3072:1:ABCDEF0123456789:1700000000:::-:::scESC::::::23::0:\nfpr:::::::::XYZ:\n";
        assert_eq!(parse_keys(colons, false), vec!["ABCDEF0123456789"]);
    }
}
