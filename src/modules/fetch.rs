//! `fetch`: a file from the host copied to the controller, as Ansible's: under
//! `dest/<inventory_hostname>/<src>` (or exactly `dest`, or `dest/<basename>` when `dest`
//! ends with `/`, with `flat`); changed only when the local copy's sha1 differs. A relative
//! `dest` is taken from the playbook's folder. Like Ansible's, it does not run in check
//! mode (the task is skipped).
//!
//! The copy lands on the controller, which no [`super::Op`] reaches (ops act on hosts):
//! so the local write happens while planning a real run, after the host has been read;
//! the host itself is never changed. `md5sum` is null (as Ansible's on hosts without md5).

use std::path::{Component, Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use async_trait::async_trait;

use super::args::{bool_arg, str_req};
use super::fileops::sha1_hex;
use super::{ArgDef, ArgSpec, Change, HostCtx, Module, Plan};
use crate::transport::FileKind;
use crate::Vars;

pub struct Fetch;

const ARGS: &[ArgDef] = &[
    ArgDef::req("src"),
    ArgDef::req("dest"),
    ArgDef::opt("flat"),
    ArgDef::opt("fail_on_missing"),
    ArgDef::opt("validate_checksum"),
];

/// Where the copy goes on the controller (before making a relative path absolute).
pub fn local_dest(src: &str, dest: &str, flat: bool, host: &str) -> anyhow::Result<String> {
    let out = if flat {
        if dest.ends_with('/') {
            format!("{dest}{}", super::fileops::basename(src))
        } else {
            dest.to_string()
        }
    } else {
        format!("{}/{host}/{src}", dest.trim_end_matches('/'))
    };
    let normal = normpath(&out);
    let base = normpath(dest);
    let inside = base == "/" || normal.starts_with(&format!("{}/", base.trim_end_matches('/')));
    if !flat && !inside {
        anyhow::bail!(
            "Detected directory traversal, expected to be contained in '{dest}' but got '{normal}'"
        );
    }
    Ok(normal)
}

/// Python's `os.path.normpath` for `/` paths.
fn normpath(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if parts.last().is_some_and(|l| *l != "..") => {
                if parts.last() != Some(&"/") {
                    parts.pop();
                }
            }
            Component::RootDir => parts.push("/"),
            Component::ParentDir => parts.push(".."),
            Component::Normal(s) => parts.push(s.to_str().unwrap_or("")),
            Component::Prefix(_) => {}
        }
    }
    let joined = parts.join("/");
    let joined = joined.replacen("//", "/", 1);
    if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

#[async_trait]
impl Module for Fetch {
    fn name(&self) -> &'static str {
        "fetch"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let src = str_req(args, &["src"])?;
        let dest = str_req(args, &["dest"])?;
        let flat = bool_arg(args, &["flat"], false)?;
        let fail_on_missing = bool_arg(args, &["fail_on_missing"], true)?;
        let validate = bool_arg(args, &["validate_checksum"], true)?;
        let mut plan = Plan::default();
        if ctx.check_mode {
            plan.unpredictable = true;
            return Ok(plan);
        }
        let host = ctx
            .vars
            .get("inventory_hostname")
            .and_then(Value::as_str)
            .unwrap_or(&ctx.host)
            .to_string();
        let mut target = PathBuf::from(local_dest(&src, &dest, flat, &host)?);
        if target.is_relative() {
            let base = ctx.file_search.last().cloned().unwrap_or_default();
            target = base.join(target);
        }
        let target_text = target.display().to_string();
        let set = |plan: &mut Plan, k: &str, v: Value| {
            plan.result.insert(k.into(), v);
        };

        let stat = ctx.transport.stat(&src, ctx.become_.as_ref()).await?;
        let content = match &stat {
            Some(st) if st.kind == FileKind::Directory => None,
            Some(_) => ctx.transport.read_file(&src, ctx.become_.as_ref()).await?,
            None => None,
        };
        let Some(content) = content else {
            let is_dir = stat.is_some_and(|s| s.kind == FileKind::Directory);
            let msg = if is_dir {
                "remote file is a directory, fetch cannot work on directories"
            } else {
                "the remote file does not exist, not transferring, ignored"
            };
            set(&mut plan, "file", Value::String(src));
            match (fail_on_missing, is_dir) {
                (true, _) => plan.failed = Some(msg.to_string()),
                (false, true) => set(
                    &mut plan,
                    "msg",
                    Value::String(format!("{msg}, not transferring, ignored")),
                ),
                (false, false) => set(&mut plan, "msg", Value::String(msg.to_string())),
            }
            return Ok(plan);
        };
        if flat && target.is_dir() {
            anyhow::bail!(
                "dest is an existing directory, use a trailing slash if you want to fetch src into that directory"
            );
        }
        let remote_sum = sha1_hex(&content);
        let local_sum = std::fs::read(&target).ok().map(|c| sha1_hex(&c));
        set(&mut plan, "dest", Value::String(target_text.clone()));
        set(&mut plan, "md5sum", Value::Null);
        if local_sum.as_deref() == Some(remote_sum.as_str()) {
            set(&mut plan, "file", Value::String(src));
            set(&mut plan, "checksum", Value::String(remote_sum));
            return Ok(plan);
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        crate::fsutil::write_atomic(&target, &content, crate::fsutil::Mode::KeepOr(0o644))?;
        let new_sum = std::fs::read(&target)
            .map(|c| sha1_hex(&c))
            .with_context(|| format!("reading back {target_text}"))?;
        set(&mut plan, "remote_md5sum", Value::Null);
        set(&mut plan, "checksum", Value::String(new_sum.clone()));
        set(
            &mut plan,
            "remote_checksum",
            Value::String(remote_sum.clone()),
        );
        if validate && new_sum != remote_sum {
            set(&mut plan, "file", Value::String(src));
            plan.failed = Some("checksum mismatch".into());
            return Ok(plan);
        }
        plan.changes.push(Change {
            summary: format!("fetch {src} to {target_text}"),
            diff: None,
        });
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::local_dest;

    #[test]
    fn dest_layout_as_ansible() {
        assert_eq!(
            local_dest("/etc/hosts", "out", false, "web1").unwrap(),
            "out/web1/etc/hosts"
        );
        assert_eq!(
            local_dest("/etc/hosts", "/tmp/f/", true, "web1").unwrap(),
            "/tmp/f/hosts"
        );
        assert_eq!(
            local_dest("/etc/hosts", "/tmp/f/h.txt", true, "web1").unwrap(),
            "/tmp/f/h.txt"
        );
        assert!(local_dest("../../etc/x", "out", false, "h").is_err());
    }
}
