//! `sysctl`: a kernel parameter in a sysctl file (default `/etc/sysctl.conf`), and with
//! `sysctl_set` in the running kernel; `reload` runs `sysctl -p FILE` after a file change.
//! As in Ansible, the file changes only when the key's value differs (whitespace-
//! insensitive), and then it is rewritten as Ansible does (`key=value`, duplicates dropped).

use async_trait::async_trait;
use serde_json::Value;

use super::args::{bool_arg, choice, get, sh_quote, str_opt, str_req};
use super::fileops::{self, exec};
use super::{ArgDef, ArgSpec, Change, HostCtx, Module, Op, Plan, TextDiff};
use crate::transport::FileAttrs;
use crate::Vars;

pub struct Sysctl;

const ARGS: &[ArgDef] = &[
    ArgDef::alias("name", &["key"]),
    ArgDef::alias("value", &["val"]),
    ArgDef::opt("state"),
    ArgDef::opt("reload"),
    ArgDef::opt("sysctl_file"),
    ArgDef::opt("sysctl_set"),
    ArgDef::opt("ignoreerrors"),
];

/// Ansible's value normalisation: booleans become 1/0, whitespace is trimmed.
pub fn normalize_value(v: &Value) -> anyhow::Result<String> {
    Ok(match v {
        Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "on" | "true" | "y" | "t" => "1".to_string(),
            "no" | "off" | "false" | "n" | "f" => "0".to_string(),
            _ => s.trim().to_string(),
        },
        other => anyhow::bail!("argument value: {other} is not a scalar"),
    })
}

fn same_value(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// The key's value in a sysctl file (the last assignment wins).
pub fn file_value(content: &str, name: &str) -> Option<String> {
    let mut found = None;
    for line in content.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if let Some((k, v)) = t.split_once('=') {
            if k.trim() == name {
                found = Some(v.trim().to_string());
            }
        }
    }
    found
}

/// Rewrites the file as Ansible's `fix_lines` does.
pub fn rewrite(content: &str, name: &str, value: Option<&str>) -> String {
    let mut seen: Vec<String> = Vec::new();
    let mut out = String::new();
    for line in content.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') || !t.contains('=') {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let (k, v) = t.split_once('=').unwrap_or((t, ""));
        let (k, v) = (k.trim(), v.trim());
        if seen.iter().any(|s| s == k) {
            continue;
        }
        seen.push(k.to_string());
        if k == name {
            if let Some(val) = value {
                out.push_str(&format!("{k}={val}\n"));
            }
        } else {
            out.push_str(&format!("{k}={v}\n"));
        }
    }
    if let Some(val) = value {
        if !seen.iter().any(|s| s == name) {
            out.push_str(&format!("{name}={val}\n"));
        }
    }
    out
}

#[async_trait]
impl Module for Sysctl {
    fn name(&self) -> &'static str {
        "sysctl"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let name = str_req(args, &["name"])?.trim().to_string();
        let present = choice(args, &["state"], &["present", "absent"], "present")? == "present";
        let value = match get(args, &["value"]) {
            Some(v) => Some(normalize_value(v)?),
            None if present => anyhow::bail!("argument value: required with state=present"),
            None => None,
        };
        let reload = bool_arg(args, &["reload"], true)?;
        let set = bool_arg(args, &["sysctl_set"], false)?;
        let ignore = bool_arg(args, &["ignoreerrors"], false)?;
        let file = str_opt(args, &["sysctl_file"])?.unwrap_or_else(|| "/etc/sysctl.conf".into());
        let kernel = if set && present {
            let out = ctx
                .run(&format!("sysctl -n {} 2>/dev/null", sh_quote(&name)))
                .await?;
            Some(out.stdout.trim().to_string())
        } else {
            None
        };
        let obs = fileops::observe(ctx, &file, true).await?;
        let before = obs
            .content
            .as_deref()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .unwrap_or_default();
        let current = file_value(&before, &name);
        let file_changes = match (&current, &value, present) {
            (Some(_), _, false) => true,
            (None, _, false) => false,
            (Some(c), Some(v), true) => !same_value(c, v),
            _ => true,
        };
        let mut plan = Plan::default();
        if file_changes {
            let after = rewrite(
                &before,
                &name,
                if present { value.as_deref() } else { None },
            );
            plan.changes.push(Change {
                summary: match (&value, present) {
                    (Some(v), true) => format!("{name}={v} in {file}"),
                    _ => format!("remove {name} from {file}"),
                },
                diff: Some(TextDiff {
                    before_header: format!("before: {file}"),
                    after_header: format!("after: {file}"),
                    before: before.clone(),
                    after: after.clone(),
                }),
            });
            plan.ops.push(Op::Write {
                path: file.clone(),
                content: after.into_bytes(),
                attrs: FileAttrs::default(),
                backup: false,
                validate: None,
            });
        }
        if let (Some(k), Some(v)) = (&kernel, &value) {
            if !same_value(k, v) {
                plan.changes.push(Change {
                    summary: format!("kernel {name}: {k} -> {v}"),
                    diff: None,
                });
                plan.ops.push(exec(format!(
                    "sysctl -w {}",
                    sh_quote(&format!("{name}={v}"))
                )));
            }
        }
        if reload && file_changes {
            let e = if ignore { " -e" } else { "" };
            plan.ops
                .push(exec(format!("sysctl{e} -p {}", sh_quote(&file))));
        }
        plan.result = super::args::vars([("name", Value::String(name))]);
        if let Some(v) = value {
            plan.result.insert("value".into(), Value::String(v));
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_normalise_like_ansible() {
        assert_eq!(normalize_value(&json!(true)).unwrap(), "1");
        assert_eq!(normalize_value(&json!("yes")).unwrap(), "1");
        assert_eq!(normalize_value(&json!(" 4096 8192 ")).unwrap(), "4096 8192");
        assert_eq!(normalize_value(&json!(65536)).unwrap(), "65536");
        assert!(same_value("4096\t8192", "4096 8192"));
    }

    #[test]
    fn reads_and_rewrites_the_file() {
        let src = "# comment\nnet.ipv4.ip_forward = 0\nvm.swappiness=10\nnet.ipv4.ip_forward=0\n";
        assert_eq!(file_value(src, "net.ipv4.ip_forward").as_deref(), Some("0"));
        assert_eq!(
            rewrite(src, "net.ipv4.ip_forward", Some("1")),
            "# comment\nnet.ipv4.ip_forward=1\nvm.swappiness=10\n"
        );
        assert_eq!(
            rewrite(src, "net.ipv4.ip_forward", None),
            "# comment\nvm.swappiness=10\n"
        );
        assert_eq!(rewrite("", "a.b", Some("2")), "a.b=2\n");
    }
}
