//! The process runtime: a task is `/bin/sh -c cmd` (or its `args` exec'd directly) with the
//! spec's environment, in its own process group (so the whole tree is signalled), in a
//! sandbox directory `DATA_DIR/tasks/<task_id>` that holds its cwd and its `stdout` and
//! `stderr` files. When the spec names a user and the agent is root, it runs as that user.
//! Kill is SIGTERM to the group, then SIGKILL after the grace period. Memory is limited
//! to the spec's `mem` through a cgroup (see [`super::cgroup`]).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::procfs;
use super::table::Handle;
use crate::api::agent::TaskSpec;

/// Where the wrapper writes the task's exit status.
pub const EXIT_STATUS_FILE: &str = ".exit_status";

/// Runs `"$@"` and writes its exit status to `$MESOS_SANDBOX/.exit_status`. It catches
/// SIGTERM (a caught signal is reset in the command it execs) so it lives exactly as long
/// as the command does.
const WRAPPER: &str = r#"trap : TERM INT; "$@"; status=$?; echo "$status" > "$MESOS_SANDBOX/.exit_status"; exit "$status""#;

/// How a task ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Exit {
    pub code: Option<i32>,
    pub message: Option<String>,
}

/// `DATA_DIR/tasks/<task_id>`.
pub fn sandbox_dir(data_dir: &Path, task_id: &str) -> PathBuf {
    data_dir.join("tasks").join(task_id)
}

/// Starts the task; returns where it lives and the child to wait on.
pub fn spawn(spec: &TaskSpec, sandbox: &Path) -> anyhow::Result<(Handle, tokio::process::Child)> {
    std::fs::create_dir_all(sandbox)
        .with_context(|| format!("creating the sandbox {}", sandbox.display()))?;
    let sandbox = &std::fs::canonicalize(sandbox)
        .with_context(|| format!("resolving the sandbox {}", sandbox.display()))?;
    // A small wrapper shell records the exit status in the sandbox, so a task adopted by a
    // restarted agent (no longer its child) still reports its exit code.
    let mut command = tokio::process::Command::new("/bin/sh");
    command.arg("-c").arg(WRAPPER).arg("infra-task");
    match (&spec.cmd, &spec.args) {
        (Some(cmd), _) => {
            command.args(["/bin/sh", "-c", cmd]);
        }
        (None, Some(args)) if !args.is_empty() => {
            command.args(args);
        }
        _ => bail!("task {} has neither cmd nor args", spec.task_id),
    };
    let _ = std::fs::remove_file(sandbox.join(EXIT_STATUS_FILE));
    let stdout = open_log(sandbox, "stdout")?;
    let stderr = open_log(sandbox, "stderr")?;
    command
        .envs(&spec.env)
        .env("MESOS_SANDBOX", sandbox)
        .current_dir(sandbox)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(false);
    if let Some(user) = spec.user.as_deref() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let (uid, gid) = lookup_user(user)?;
            chown(sandbox, uid, gid)?;
            command.uid(uid).gid(gid);
        }
    }
    match super::cgroup::prepare(&spec.task_id, spec.mem) {
        Ok(Some(cgroup)) => {
            // SAFETY: the closure only makes async-signal-safe syscalls (open/write/close).
            unsafe {
                command.pre_exec(move || {
                    // A task that cannot join still runs, as it would without cgroups.
                    let _ = super::cgroup::join_self(&cgroup.procs);
                    Ok(())
                });
            }
        }
        Ok(None) => tracing::debug!("no memory cgroup: {} runs without a limit", spec.task_id),
        Err(err) => tracing::warn!("{} runs without a memory limit: {err:#}", spec.task_id),
    }
    let child = command
        .spawn()
        .with_context(|| format!("starting task {}", spec.task_id))?;
    let pid = child
        .id()
        .with_context(|| format!("task {} exited before it had a pid", spec.task_id))?
        as i32;
    let start_time = procfs::stat(pid).map(|st| st.start_time).unwrap_or(0);
    Ok((
        Handle::Process {
            pid,
            pgid: pid,
            start_time,
        },
        child,
    ))
}

fn open_log(sandbox: &Path, name: &str) -> anyhow::Result<std::fs::File> {
    let path = sandbox.join(name);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))
}

fn lookup_user(user: &str) -> anyhow::Result<(u32, u32)> {
    let name = std::ffi::CString::new(user).with_context(|| format!("user name {user:?}"))?;
    // SAFETY: getpwnam reads a NUL-terminated name; the result is read before any other call.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        bail!("user {user:?} does not exist on this agent");
    }
    // SAFETY: entry is non-null and points to libc's static passwd record.
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    Ok((uid, gid))
}

fn chown(path: &Path, uid: u32, gid: u32) -> anyhow::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .with_context(|| format!("chown {}", path.display()))?;
    for name in ["stdout", "stderr"] {
        let file = path.join(name);
        std::os::unix::fs::chown(&file, Some(uid), Some(gid))
            .with_context(|| format!("chown {}", file.display()))?;
    }
    Ok(())
}

/// Waits until the task's main process exits. With the child handle the exit code is
/// exact; for an adopted process (not our child) `/proc` is polled and the code is known
/// only if it happens to be our child still (same agent process).
pub async fn wait_exit(
    child: Option<tokio::process::Child>,
    handle: &Handle,
    sandbox: &Path,
) -> Exit {
    let Handle::Process {
        pid,
        pgid,
        start_time,
    } = *handle
    else {
        return Exit {
            code: None,
            message: Some("not a process task".into()),
        };
    };
    let exit = match child {
        Some(mut child) => match child.wait().await {
            Ok(status) => exit_from_status(status),
            Err(err) => Exit {
                code: None,
                message: Some(format!("waiting for the task failed: {err}")),
            },
        },
        None => loop {
            if let Some(code) = procfs::try_reap(pid) {
                break Exit {
                    code: Some(code),
                    message: None,
                };
            }
            if !procfs::is_alive(pid, start_time) {
                break recorded_exit(pid, sandbox);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        },
    };
    // Whatever the main process left behind in its group goes with it.
    procfs::signal_group(pgid, libc::SIGKILL);
    if let Some(task_id) = sandbox.file_name().and_then(|n| n.to_str()) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        super::cgroup::remove(task_id);
    }
    explain_failure(exit, &stderr_tail(sandbox))
}

/// How many of the last stderr lines a failure message carries.
const STDERR_LINES: usize = 5;
/// At most this much of the end of stderr is read for them.
const STDERR_TAIL_BYTES: u64 = 4096;

/// The last lines the task wrote to stderr (empty when it wrote none).
pub fn stderr_tail(sandbox: &Path) -> Vec<String> {
    super::output::tail_lines(&sandbox.join("stderr"), STDERR_TAIL_BYTES, STDERR_LINES)
}

/// A failed exit says why, as Marathon's `lastTaskFailure.message` does ("Command exited
/// with status 1"), followed by the last lines of the task's stderr; a clean exit is left
/// as it is.
pub fn explain_failure(exit: Exit, stderr: &[String]) -> Exit {
    let failed = exit.code.is_some_and(|c| c != 0) || exit.message.is_some();
    if !failed {
        return exit;
    }
    let mut message = match (exit.code, &exit.message) {
        (Some(code), Some(detail)) => format!("Command exited with status {code} ({detail})"),
        (Some(code), None) => format!("Command exited with status {code}"),
        (None, Some(detail)) => detail.clone(),
        (None, None) => "Command failed".to_string(),
    };
    if !stderr.is_empty() {
        message.push_str(": ");
        message.push_str(&stderr.join(" | "));
    }
    Exit {
        code: exit.code,
        message: Some(message),
    }
}

/// How an adopted process ended: reaped if it is still our child, else what the wrapper
/// recorded in the sandbox (nothing when it was killed by a signal).
pub fn adopted_exit(pid: i32, sandbox: &Path) -> Exit {
    explain_failure(recorded_exit(pid, sandbox), &stderr_tail(sandbox))
}

fn recorded_exit(pid: i32, sandbox: &Path) -> Exit {
    if let Some(code) = procfs::try_reap(pid) {
        return Exit {
            code: Some(code),
            message: None,
        };
    }
    let recorded = std::fs::read_to_string(sandbox.join(EXIT_STATUS_FILE))
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok());
    match recorded {
        Some(code) => Exit {
            code: Some(code),
            message: None,
        },
        None => Exit {
            code: None,
            message: Some("exited without an exit status (killed by a signal?)".into()),
        },
    }
}

fn exit_from_status(status: std::process::ExitStatus) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit {
            code: Some(code),
            message: None,
        },
        (None, Some(signal)) => Exit {
            code: Some(128 + signal),
            message: Some(format!("killed by signal {signal}")),
        },
        _ => Exit {
            code: None,
            message: None,
        },
    }
}

/// SIGTERM to the task's process group; SIGKILL to the group if anything of it is still
/// there after `grace`.
pub async fn kill(handle: &Handle, grace: Duration) {
    let Handle::Process { pgid, .. } = *handle else {
        return;
    };
    procfs::signal_group(pgid, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !procfs::group_exists(pgid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    procfs::signal_group(pgid, libc::SIGKILL);
}

/// Whether an adopted process task is still the live process it was.
pub fn is_running(handle: &Handle) -> bool {
    match *handle {
        Handle::Process {
            pid, start_time, ..
        } => procfs::is_alive(pid, start_time),
        Handle::Docker { .. } => false,
    }
}
