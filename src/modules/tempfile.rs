//! `tempfile`: a new temporary file (mode 0600) or folder (0700) on the host, named
//! `<path or $TMPDIR or /tmp>/<prefix><8 random characters><suffix>` as Python's
//! `mkstemp`/`mkdtemp` name them. Always changed (every run makes a new one); like
//! Ansible's module it does not support check mode, so check mode skips it.
//!
//! The name is drawn while planning, so the plan (and the registered `path`) is known
//! before anything runs; the op creates it exclusively (`set -C` / `mkdir`), failing
//! rather than reusing an existing path.

use async_trait::async_trait;
use rand::Rng;
use serde_json::Value;

use super::args::{choice, sh_quote, str_opt};
use super::{fileops, ArgDef, ArgSpec, Change, HostCtx, Module, Plan};
use crate::Vars;

pub struct TempFile;

const ARGS: &[ArgDef] = &[
    ArgDef::opt("state"),
    ArgDef::opt("path"),
    ArgDef::opt("prefix"),
    ArgDef::opt("suffix"),
];

/// Python's tempfile characters.
const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_";

/// A name as Python's tempfile draws it.
pub fn random_name(prefix: &str, suffix: &str) -> String {
    let mut rng = rand::thread_rng();
    let middle: String = (0..8)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect();
    format!("{prefix}{middle}{suffix}")
}

#[async_trait]
impl Module for TempFile {
    fn name(&self) -> &'static str {
        "tempfile"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let state = choice(args, &["state"], &["file", "directory"], "file")?;
        let prefix = str_opt(args, &["prefix"])?.unwrap_or_else(|| "ansible.".into());
        let suffix = str_opt(args, &["suffix"])?.unwrap_or_default();
        for (name, v) in [("prefix", &prefix), ("suffix", &suffix)] {
            if !v.is_empty() && (v.contains('/') || fileops::basename(v) != v) {
                anyhow::bail!("argument {name}: must be a valid file name component, got {v:?}");
            }
        }
        let mut plan = Plan {
            unpredictable: true,
            ..Default::default()
        };
        if ctx.check_mode {
            // Ansible skips it; no need to look at the host.
            return Ok(plan);
        }
        let dir = match str_opt(args, &["path"])? {
            Some(p) => p,
            None => {
                let out = ctx.run("printf '%s' \"${TMPDIR:-/tmp}\"").await?;
                out.stdout.trim().to_string()
            }
        };
        let path = format!(
            "{}/{}",
            dir.trim_end_matches('/'),
            random_name(&prefix, &suffix)
        );
        let q = sh_quote(&path);
        let cmd = if state == "directory" {
            format!("mkdir -m 0700 -- {q}")
        } else {
            format!("(umask 077; set -C; : > {q})")
        };
        plan.changes.push(Change {
            summary: format!("create temporary {state} {path}"),
            diff: None,
        });
        plan.ops.push(fileops::exec(cmd));
        plan.result.insert("path".into(), Value::String(path));
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_prefix_eight_chars_suffix() {
        let n = super::random_name("ansible.", ".conf");
        assert_eq!(n.len(), "ansible.".len() + 8 + ".conf".len());
        assert!(n.starts_with("ansible.") && n.ends_with(".conf"));
        assert_ne!(n, super::random_name("ansible.", ".conf"));
    }
}
