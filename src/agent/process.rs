//! The process runtime: a task is `/bin/sh -c cmd` (or its `args` exec'd directly) with the
//! spec's environment, in its own process group (so the whole tree is signalled), in a
//! sandbox directory `DATA_DIR/tasks/<task_id>` that holds its cwd and its `stdout` and
//! `stderr` files. When the spec names a user and the agent is root, it runs as that user.
//! Kill is SIGTERM to the group, then SIGKILL after the grace period.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::procfs;
use super::table::Handle;
use crate::api::agent::TaskSpec;

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
    let mut command = match (&spec.cmd, &spec.args) {
        (Some(cmd), _) => {
            let mut command = tokio::process::Command::new("/bin/sh");
            command.arg("-c").arg(cmd);
            command
        }
        (None, Some(args)) if !args.is_empty() => {
            let mut command = tokio::process::Command::new(&args[0]);
            command.args(&args[1..]);
            command
        }
        _ => bail!("task {} has neither cmd nor args", spec.task_id),
    };
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
pub async fn wait_exit(child: Option<tokio::process::Child>, handle: &Handle) -> Exit {
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
                break Exit {
                    code: procfs::try_reap(pid),
                    message: Some("exited; its exit status was not observable".into()),
                };
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        },
    };
    // Whatever the main process left behind in its group goes with it.
    procfs::signal_group(pgid, libc::SIGKILL);
    exit
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
