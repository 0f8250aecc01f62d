//! `command` and `shell`: run a command; always `changed` unless `creates` (a path or glob
//! that exists) or `removes` (one that does not) says it has nothing to do. In check mode
//! the plan is `unpredictable` (the engine skips the task) unless creates/removes decide.
//! `command` never goes through shell expansion: its words are quoted one by one.

use async_trait::async_trait;
use serde_json::Value;

use super::args::{bool_arg, get, scalar_text, sh_quote, str_opt};
use super::{ArgDef, ArgSpec, Change, HostCtx, Module, Op, Plan};
use crate::Vars;

pub struct Command;
pub struct Shell;

const ARGS: &[ArgDef] = &[
    ArgDef::opt("cmd"),
    ArgDef::opt("argv"),
    ArgDef::opt("creates"),
    ArgDef::opt("removes"),
    ArgDef::opt("chdir"),
    ArgDef::opt("stdin"),
    ArgDef::opt("stdin_add_newline"),
    ArgDef::opt("strip_empty_ends"),
    ArgDef::opt("executable"),
    ArgDef::opt("warn"),
    ArgDef::opt("expand_argument_vars"),
];

#[async_trait]
impl Module for Command {
    fn name(&self) -> &'static str {
        "command"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: true,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let line: Vec<String> = if let Some(argv) = get(args, &["argv"]) {
            match argv {
                Value::Array(items) => items
                    .iter()
                    .map(|v| scalar_text("argv", v))
                    .collect::<anyhow::Result<_>>()?,
                _ => anyhow::bail!("argument argv: must be a list"),
            }
        } else {
            let text = raw(args)?;
            let words = shlex::split(&text)
                .ok_or_else(|| anyhow::anyhow!("command: unbalanced quotes in {text:?}"))?;
            words
        };
        if line.is_empty() {
            anyhow::bail!("command: no command given");
        }
        let cmd = line
            .iter()
            .map(|w| sh_quote(w))
            .collect::<Vec<_>>()
            .join(" ");
        let shown = Value::Array(line.into_iter().map(Value::String).collect());
        plan_run(ctx, args, cmd, shown).await
    }
}

#[async_trait]
impl Module for Shell {
    fn name(&self) -> &'static str {
        "shell"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: true,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let text = raw(args)?;
        let cmd = match str_opt(args, &["executable"])? {
            Some(exe) => format!("{} -c {}", sh_quote(&exe), sh_quote(&text)),
            None => text.clone(),
        };
        plan_run(ctx, args, cmd, Value::String(text)).await
    }
}

/// The command text: free form or `cmd`.
fn raw(args: &Vars) -> anyhow::Result<String> {
    let text = str_opt(args, &["_raw_params", "cmd"])?
        .ok_or_else(|| anyhow::anyhow!("no command given (free form or cmd)"))?;
    if text.trim().is_empty() {
        anyhow::bail!("no command given (free form or cmd)");
    }
    Ok(text)
}

/// Shared planning: creates/removes, then one Exec op.
async fn plan_run(ctx: &HostCtx, args: &Vars, cmd: String, shown: Value) -> anyhow::Result<Plan> {
    let chdir = str_opt(args, &["chdir"])?;
    let creates = str_opt(args, &["creates"])?;
    let removes = str_opt(args, &["removes"])?;
    let mut plan = Plan::default();
    let mut result = super::args::vars([("cmd", shown)]);
    let resolve = |p: &str| match (&chdir, p.starts_with('/')) {
        (Some(dir), false) => format!("{}/{p}", dir.trim_end_matches('/')),
        _ => p.to_string(),
    };
    if let Some(c) = &creates {
        if exists(ctx, &resolve(c)).await? {
            return Ok(skipped(result, format!("{c} exists")));
        }
    }
    if let Some(r) = &removes {
        if !exists(ctx, &resolve(r)).await? {
            return Ok(skipped(result, format!("{r} does not exist")));
        }
    }
    let stdin = str_opt(args, &["stdin"])?.map(|mut s| {
        if bool_arg(args, &["stdin_add_newline"], true).unwrap_or(true) {
            s.push('\n');
        }
        s.into_bytes()
    });
    for key in [
        "rc",
        "stdout",
        "stderr",
        "stdout_lines",
        "stderr_lines",
        "start",
        "end",
        "delta",
    ] {
        result.insert(key.into(), Value::Null);
    }
    result.insert("msg".into(), Value::String(String::new()));
    plan.changes.push(Change {
        summary: format!("run {cmd}"),
        diff: None,
    });
    plan.ops.push(Op::Exec {
        cmd,
        stdin,
        chdir,
        allow_failure: false,
    });
    plan.unpredictable = creates.is_none() && removes.is_none();
    plan.result = result;
    Ok(plan)
}

fn skipped(mut result: Vars, why: String) -> Plan {
    result.insert("rc".into(), Value::from(0));
    result.insert(
        "stdout".into(),
        Value::String(format!("skipped, since {why}")),
    );
    result.insert(
        "stdout_lines".into(),
        Value::Array(vec![Value::String(format!("skipped, since {why}"))]),
    );
    result.insert("stderr".into(), Value::String(String::new()));
    result.insert("stderr_lines".into(), Value::Array(Vec::new()));
    result.insert(
        "msg".into(),
        Value::String(format!("Did not run command since {why}")),
    );
    Plan {
        result,
        ..Default::default()
    }
}

/// Does a path (or a glob) exist on the host? A plain path is one stat; a glob is expanded
/// by the host's shell.
pub async fn exists(ctx: &HostCtx, pattern: &str) -> anyhow::Result<bool> {
    if !pattern.contains(['*', '?', '[']) {
        return Ok(ctx
            .transport
            .stat(pattern, ctx.become_.as_ref())
            .await?
            .is_some());
    }
    let escaped: String = pattern
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "*?[]/._-".contains(c) {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect();
    let out = ctx
        .run(&format!(
            "for f in {escaped}; do if [ -e \"$f\" ] || [ -L \"$f\" ]; then echo yes; break; fi; done"
        ))
        .await?;
    Ok(out.stdout.contains("yes"))
}
