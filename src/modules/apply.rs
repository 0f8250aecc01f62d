//! Carrying out a plan: the only code through which a module's change reaches a host.
//!
//! Runs the plan's ops in order, stops at the first failure, and completes the plan's
//! result with what running taught (a command's rc/stdout, a backup file's name).

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde_json::Value;

use super::{Applied, HostCtx, Op, Plan};
use crate::transport::{Become, ExecOptions, ExecOutput, FileStat, Transport};
use crate::Vars;

/// What planning sees of a host: it can look (stat, read, run an observing command) but
/// not write. The transport inside is private to this module, so the only code that can
/// write a file or make a directory on a host is [`apply`], carrying out a plan.
#[derive(Clone)]
pub struct HostView {
    transport: Arc<dyn Transport>,
}

impl HostView {
    pub fn new(transport: Arc<dyn Transport>) -> Self {
        HostView { transport }
    }

    /// The inventory name of the host.
    pub fn host(&self) -> &str {
        self.transport.host()
    }

    /// See [`Transport::escalates`].
    pub fn escalates(&self, become_: Option<&Become>) -> bool {
        self.transport.escalates(become_)
    }

    /// See [`Transport::is_local`].
    pub fn is_local(&self) -> bool {
        self.transport.is_local()
    }

    /// Runs an observing command (see [`HostCtx::run`]).
    pub async fn exec(&self, cmd: &str, opts: &ExecOptions) -> anyhow::Result<ExecOutput> {
        self.transport.exec(cmd, opts).await
    }

    pub async fn stat(
        &self,
        path: &str,
        become_: Option<&Become>,
    ) -> anyhow::Result<Option<FileStat>> {
        self.transport.stat(path, become_).await
    }

    pub async fn read_file(
        &self,
        path: &str,
        become_: Option<&Become>,
    ) -> anyhow::Result<Option<Vec<u8>>> {
        self.transport.read_file(path, become_).await
    }

    /// Gathers facts as the play does (`engine::facts::gather`): files read by one `head`
    /// in one exec, a few SFTP reads, the shell script where those cannot be used.
    pub async fn gather_facts(
        &self,
        opts: &crate::engine::facts::GatherOptions,
        exec_opts: &ExecOptions,
    ) -> anyhow::Result<ExecOutput> {
        crate::engine::facts::gather(self.transport.as_ref(), opts, exec_opts, None).await
    }

    /// The whole transport, writes included: private, for [`apply`] only.
    fn writer(&self) -> &dyn Transport {
        self.transport.as_ref()
    }
}

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
///
/// Consecutive plain commands (no stdin, the same directory, failure not allowed) run as
/// one exec, each in its own subshell, stopping at the first that fails: `mkdir`, `chmod`,
/// `chown` and `chgrp` of one directory, or `systemctl enable` then `start`, cost the host
/// one session instead of four. Not for a plan that registers a command's output (`rc`).
///
/// Afterwards (also when an op failed half way) the host's unit states are forgotten: what
/// the plan did may have changed any unit, and the next observation must see it.
pub async fn apply(ctx: &HostCtx, plan: &Plan) -> anyhow::Result<Applied> {
    let applied = apply_ops(ctx, plan).await;
    if !plan.ops.is_empty() {
        ctx.reads.invalidate().await;
    }
    applied
}

async fn apply_ops(ctx: &HostCtx, plan: &Plan) -> anyhow::Result<Applied> {
    let mut applied = Applied {
        outputs: Vec::new(),
        result: plan.result.clone(),
    };
    let registers_output = plan.result.contains_key("rc");
    let mut next = 0;
    while next < plan.ops.len() {
        if !registers_output {
            let batch = batchable_run(&plan.ops[next..]);
            if batch.cmds.len() > 1 {
                next += batch.cmds.len();
                run_batch(ctx, &batch, &mut applied).await?;
                continue;
            }
        }
        let op = &plan.ops[next];
        next += 1;
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
                    .writer()
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
                    } else {
                        command_failed(cmd, rc, &stderr)
                    };
                    return Err(failed(&mut applied.result, message));
                }
            }
            Op::Mkdir { path, mode, owner } => ctx
                .transport
                .writer()
                .mkdir(path, *mode, *owner, ctx.become_.as_ref())
                .await
                .with_context(|| format!("creating directory {path} on {}", ctx.host))?,
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
                        .writer()
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

/// Consecutive plain commands that run as one exec (see [`apply`]).
struct Batch<'a> {
    cmds: Vec<&'a str>,
    chdir: Option<&'a String>,
}

/// The plain commands at the start of `ops` (no stdin, failure not allowed, the directory
/// of the first).
fn batchable_run(ops: &[Op]) -> Batch<'_> {
    fn plain(op: &Op) -> Option<(&str, Option<&String>)> {
        match op {
            Op::Exec {
                cmd,
                stdin: None,
                allow_failure: false,
                chdir,
            } => Some((cmd.as_str(), chdir.as_ref())),
            _ => None,
        }
    }
    let chdir = ops.first().and_then(plain).and_then(|(_, dir)| dir);
    let cmds = ops
        .iter()
        .map_while(plain)
        .take_while(|(_, dir)| *dir == chdir)
        .map(|(cmd, _)| cmd)
        .collect();
    Batch { cmds, chdir }
}

/// Marks, on stderr, which command of a batch failed.
const FAILED_OP_MARK: &str = "@@infra-failed-op=";

/// The script of a batch: each command in a subshell (an `exit` or `cd` stays inside it),
/// the first failure ends the script with its status and names its index on stderr.
fn batch_script(cmds: &[&str]) -> String {
    cmds.iter()
        .enumerate()
        .map(|(i, cmd)| {
            format!("( {cmd}\n) || {{ r=$?; echo '{FAILED_OP_MARK}{i}' >&2; exit $r; }}\n")
        })
        .collect()
}

/// Runs a batch as one exec; a failure names the command that failed, as running them one
/// by one would.
async fn run_batch(ctx: &HostCtx, batch: &Batch<'_>, applied: &mut Applied) -> anyhow::Result<()> {
    let opts = ExecOptions {
        stdin: None,
        become_: ctx.become_.clone(),
        env: ctx.env.clone(),
        chdir: batch.chdir.cloned(),
    };
    let mut out = ctx
        .transport
        .writer()
        .exec(&batch_script(&batch.cmds), &opts)
        .await
        .with_context(|| format!("running {:?} on {}", batch.cmds.join("; "), ctx.host))?;
    // The mark is the last thing on stderr: take it off, keeping what the command said.
    let failed_at = out.stderr.rfind(FAILED_OP_MARK).and_then(|at| {
        let index = out.stderr[at + FAILED_OP_MARK.len()..]
            .trim()
            .parse::<usize>();
        out.stderr.truncate(at);
        index.ok()
    });
    let rc = out.rc;
    let stderr = out.stderr.trim().to_string();
    applied.outputs.push(out);
    if rc != 0 {
        let cmd = failed_at
            .and_then(|i| batch.cmds.get(i))
            .copied()
            .unwrap_or("a command");
        return Err(failed(
            &mut applied.result,
            command_failed(cmd, rc, &stderr),
        ));
    }
    Ok(())
}

/// The message of a command that exited non-zero.
fn command_failed(cmd: &str, rc: i32, stderr: &str) -> String {
    if stderr.is_empty() {
        format!("{cmd} failed with rc {rc}")
    } else {
        format!("{cmd} failed with rc {rc}: {stderr}")
    }
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
        .writer()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(cmd: &str) -> Op {
        Op::Exec {
            cmd: cmd.into(),
            stdin: None,
            chdir: None,
            allow_failure: false,
        }
    }

    fn sh(script: &str) -> std::process::Output {
        std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .output()
            .expect("/bin/sh")
    }

    #[test]
    fn a_batch_is_the_run_of_plain_commands() {
        let tolerant = Op::Exec {
            cmd: "c".into(),
            stdin: None,
            chdir: None,
            allow_failure: true,
        };
        let ops = [exec("a"), exec("b"), tolerant.clone(), exec("d")];
        assert_eq!(batchable_run(&ops).cmds.len(), 2);
        assert_eq!(batchable_run(&ops[2..]).cmds.len(), 0);
        let elsewhere = Op::Exec {
            cmd: "e".into(),
            stdin: None,
            chdir: Some("/tmp".into()),
            allow_failure: false,
        };
        assert_eq!(batchable_run(&[exec("a"), elsewhere]).cmds.len(), 1);
    }

    #[test]
    fn a_batch_stops_at_the_first_failure_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let mark = |n: &str| format!("touch {}/{n}", dir.path().display());
        let script = batch_script(&[&mark("one"), "echo oops >&2; exit 3", &mark("three")]);
        let out = sh(&script);
        assert_eq!(out.status.code(), Some(3));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("oops\n"), "{stderr}");
        assert!(stderr.contains(&format!("{FAILED_OP_MARK}1")), "{stderr}");
        assert!(dir.path().join("one").exists());
        assert!(!dir.path().join("three").exists());
    }

    #[test]
    fn an_exit_0_or_cd_stays_inside_its_command() {
        let dir = tempfile::tempdir().unwrap();
        let last = "touch last # a comment ends the line, not the batch";
        let script = batch_script(&[
            "cd / && exit 0",
            &format!("cd {}", dir.path().display()),
            last,
        ]);
        let out = sh(&format!("cd {} && {{ {script} }}", dir.path().display()));
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert!(dir.path().join("last").exists());
    }
}
