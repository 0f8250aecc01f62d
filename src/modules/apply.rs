//! Carrying out a plan: the only code through which a module's change reaches a host.
//!
//! Runs the plan's ops in order, stops at the first failure, and completes the plan's
//! result with what running taught (a command's rc/stdout, a backup file's name).

use std::time::Instant;

use anyhow::Context;
use serde_json::Value;

use super::{Applied, HostCtx, Op, Plan};
use crate::transport::{ExecOptions, ExecOutput};
use crate::Vars;

/// An op failed (a command exited non-zero, a validation failed). `result` is what the
/// engine registers for the task (rc, stdout, stderr... of the failing command).
#[derive(Debug, Clone)]
pub struct OpFailed {
    pub message: String,
    pub result: Vars,
}

impl std::fmt::Display for OpFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OpFailed {}

/// Carries out a plan's ops in order. The only place a module's change reaches a host.
pub async fn apply(ctx: &HostCtx, plan: &Plan) -> anyhow::Result<Applied> {
    let mut applied = Applied {
        outputs: Vec::new(),
        result: plan.result.clone(),
    };
    for op in &plan.ops {
        match op {
            Op::Exec {
                cmd,
                stdin,
                chdir,
                allow_failure,
            } => {
                let opts = ExecOptions {
                    stdin: stdin.clone(),
                    become_: ctx.become_.clone(),
                    env: ctx.env.clone(),
                    chdir: chdir.clone(),
                };
                let start = chrono::Local::now();
                let clock = Instant::now();
                let out = ctx
                    .transport
                    .exec(cmd, &opts)
                    .await
                    .with_context(|| format!("running {cmd:?} on {}", ctx.host))?;
                fill_output(&mut applied.result, &out, start, clock);
                let rc = out.rc;
                let stderr = out.stderr.trim().to_string();
                applied.outputs.push(out);
                if rc != 0 && !allow_failure {
                    let message = if applied.result.contains_key("rc") {
                        "non-zero return code".to_string()
                    } else if stderr.is_empty() {
                        format!("{cmd} failed with rc {rc}")
                    } else {
                        format!("{cmd} failed with rc {rc}: {stderr}")
                    };
                    return Err(failed(&mut applied.result, message));
                }
            }
            Op::Write {
                path,
                content,
                attrs,
                backup,
                validate,
            } => {
                if *backup {
                    if let Some(file) = make_backup(ctx, path).await? {
                        applied
                            .result
                            .insert("backup_file".into(), Value::String(file));
                    }
                }
                match validate {
                    None => ctx
                        .transport
                        .write_file(path, content, attrs, ctx.become_.as_ref())
                        .await
                        .with_context(|| format!("writing {path} on {}", ctx.host))?,
                    Some(check) => write_validated(ctx, path, content, attrs, check)
                        .await
                        .map_err(|e| match e.downcast::<OpFailed>() {
                            Ok(f) => failed(&mut applied.result, f.message),
                            Err(e) => e,
                        })?,
                }
            }
        }
    }
    Ok(applied)
}

fn failed(result: &mut Vars, message: String) -> anyhow::Error {
    result.insert("failed".into(), Value::Bool(true));
    result.insert("msg".into(), Value::String(message.clone()));
    anyhow::Error::new(OpFailed {
        message,
        result: result.clone(),
    })
}

/// Fills the command keys the plan left placeholders for.
fn fill_output(
    result: &mut Vars,
    out: &ExecOutput,
    start: chrono::DateTime<chrono::Local>,
    clock: Instant,
) {
    let end = chrono::Local::now();
    let lines = |s: &str| Value::Array(s.lines().map(|l| Value::String(l.into())).collect());
    // Ansible's strip_empty_ends (the default): trailing newlines go.
    let stdout = out.stdout.trim_end_matches(['\r', '\n']);
    let stderr = out.stderr.trim_end_matches(['\r', '\n']);
    let elapsed = clock.elapsed();
    let fields: [(&str, Value); 8] = [
        ("rc", Value::from(out.rc)),
        ("stdout", Value::String(stdout.to_string())),
        ("stderr", Value::String(stderr.to_string())),
        ("stdout_lines", lines(stdout)),
        ("stderr_lines", lines(stderr)),
        (
            "start",
            Value::String(start.format("%Y-%m-%d %H:%M:%S%.6f").to_string()),
        ),
        (
            "end",
            Value::String(end.format("%Y-%m-%d %H:%M:%S%.6f").to_string()),
        ),
        (
            "delta",
            Value::String(format!(
                "{}:{:02}:{:02}.{:06}",
                elapsed.as_secs() / 3600,
                elapsed.as_secs() / 60 % 60,
                elapsed.as_secs() % 60,
                elapsed.subsec_micros()
            )),
        ),
    ];
    for (key, value) in fields {
        if let Some(slot) = result.get_mut(key) {
            *slot = value;
        }
    }
}

/// Copies an existing file to `PATH.PID.YYYY-MM-DD@HH:MM:SS~` (Ansible's backup name).
async fn make_backup(ctx: &HostCtx, path: &str) -> anyhow::Result<Option<String>> {
    let stamp = chrono::Local::now().format("%Y-%m-%d@%H:%M:%S");
    let backup = format!("{path}.{}.{stamp}~", std::process::id());
    let cmd = format!(
        "if [ -f {p} ]; then cp -p {p} {b} && echo copied; fi",
        p = super::args::sh_quote(path),
        b = super::args::sh_quote(&backup)
    );
    let out = ctx.run(&cmd).await?;
    if out.rc != 0 {
        anyhow::bail!("backing up {path}: {}", out.stderr.trim());
    }
    Ok(out.stdout.contains("copied").then_some(backup))
}

/// Writes to a temp file beside `path`, runs `check` on it (`%s` = the temp file), and
/// renames it over `path` only when the check passes.
async fn write_validated(
    ctx: &HostCtx,
    path: &str,
    content: &[u8],
    attrs: &crate::transport::FileAttrs,
    check: &str,
) -> anyhow::Result<()> {
    let (dir, base) = match path.rsplit_once('/') {
        Some((d, b)) => (if d.is_empty() { "/" } else { d }, b),
        None => (".", path),
    };
    let tmp = format!(
        "{}/.{base}.infra-validate-{:08x}",
        dir.trim_end_matches('/'),
        rand::random::<u32>()
    );
    // Keep the existing file's owner and mode on the temp file.
    let mut attrs = attrs.clone();
    if let Some(st) = ctx.transport.stat(path, ctx.become_.as_ref()).await? {
        attrs.mode.get_or_insert(st.mode);
        attrs.owner.get_or_insert(st.uid.to_string());
        attrs.group.get_or_insert(st.gid.to_string());
    }
    ctx.transport
        .write_file(&tmp, content, &attrs, ctx.become_.as_ref())
        .await
        .with_context(|| format!("writing {tmp} on {}", ctx.host))?;
    let q = super::args::sh_quote(&tmp);
    let cmd = if check.contains("%s") {
        check.replace("%s", &q)
    } else {
        format!("{check} {q}")
    };
    let out = ctx.run(&cmd).await?;
    if out.rc != 0 {
        let _ = ctx.run(&format!("rm -f {q}")).await;
        return Err(anyhow::Error::new(OpFailed {
            message: format!(
                "failed to validate: rc {}: {}{}",
                out.rc,
                out.stdout.trim(),
                out.stderr.trim()
            ),
            result: Vars::new(),
        }));
    }
    let mv = ctx
        .run(&format!("mv -f {q} {}", super::args::sh_quote(path)))
        .await?;
    if mv.rc != 0 {
        anyhow::bail!("moving {tmp} to {path}: {}", mv.stderr.trim());
    }
    Ok(())
}
