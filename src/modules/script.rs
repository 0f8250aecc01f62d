//! `script`: a script from the controller (the role's `files/`, the playbook's folder)
//! copied to a private temporary folder on the host, run there with its arguments, and
//! removed. Always `changed` when it runs; `creates`/`removes` skip it as Ansible does
//! (and make check mode predictable: changed); without them check mode skips the task.

use async_trait::async_trait;
use serde_json::Value;

use super::args::{sh_quote, str_opt};
use super::{ArgDef, ArgSpec, HostCtx, Module, Op, Plan};
use crate::transport::FileAttrs;
use crate::Vars;

pub struct Script;

const ARGS: &[ArgDef] = &[
    ArgDef::opt("cmd"),
    ArgDef::opt("creates"),
    ArgDef::opt("removes"),
    ArgDef::opt("chdir"),
    ArgDef::opt("executable"),
    ArgDef::opt("decrypt"),
];

#[async_trait]
impl Module for Script {
    fn name(&self) -> &'static str {
        "script"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: true,
            one_of: &[&["_raw_params", "cmd"]],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let raw = str_opt(args, &["_raw_params", "cmd"])?
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| anyhow::anyhow!("script: no script given (free form or cmd)"))?;
        let chdir = str_opt(args, &["chdir"])?;
        if let Some(dir) = chdir.as_deref().filter(|d| !d.starts_with('/')) {
            anyhow::bail!(
                "argument chdir: {dir} must be an absolute path for a Unix-aware remote node"
            );
        }
        let parts = shlex::split(&raw)
            .ok_or_else(|| anyhow::anyhow!("script: unbalanced quotes in {raw:?}"))?;
        let source = parts
            .first()
            .ok_or_else(|| anyhow::anyhow!("script: no script given"))?;
        let local = super::copy::find_src(source, &ctx.file_search, "script")?;
        let content = std::fs::read(&local)
            .map_err(|e| anyhow::anyhow!("reading script {}: {e}", local.display()))?;

        if let Some(c) = str_opt(args, &["creates"])? {
            if super::command::exists(ctx, &c).await? {
                return Ok(skipped(format!("{c} exists, matching creates option")));
            }
        }
        if let Some(r) = str_opt(args, &["removes"])? {
            if !super::command::exists(ctx, &r).await? {
                return Ok(skipped(format!(
                    "{r} does not exist, matching removes option"
                )));
            }
        }
        let predictable = args.contains_key("creates") || args.contains_key("removes");

        let name = super::fileops::basename(source);
        let dir = format!("/tmp/.infra-script-{}", uuid::Uuid::new_v4().simple());
        let remote = format!("{dir}/{name}");
        // The rest of the line keeps its quoting: only the script's path is replaced.
        let rest = raw.replacen(source.as_str(), &sh_quote(&remote), 1);
        let run = match str_opt(args, &["executable"])? {
            Some(exe) => format!("{exe} {rest}"),
            None => rest,
        };
        let cmd = format!("{run}\nrc=$?; rm -rf {}; exit $rc", sh_quote(&dir));
        let mut plan = super::raw::run_plan(cmd, chdir);
        plan.changes[0].summary = format!("run script {} on the host", local.display());
        plan.ops.splice(
            0..0,
            [
                Op::Mkdir {
                    path: dir,
                    mode: Some(0o700),
                    owner: (None, None),
                },
                Op::Write {
                    path: remote,
                    content,
                    attrs: FileAttrs {
                        mode: Some(0o700),
                        owner: None,
                        group: None,
                    },
                    backup: false,
                    validate: None,
                },
            ],
        );
        plan.unpredictable = !predictable;
        Ok(plan)
    }
}

/// Nothing to do: ok, with Ansible's reason.
fn skipped(msg: String) -> Plan {
    let mut plan = Plan::default();
    plan.result.insert("msg".into(), Value::String(msg));
    plan
}
