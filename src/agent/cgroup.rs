//! Memory limits for process tasks through the kernel's cgroups (v2 `memory.max`, or v1
//! `memory.limit_in_bytes` where that is what the host mounts): one cgroup per task under
//! `infra/`, prepared by the agent and joined by the task itself before it execs, so no
//! child escapes the limit. Where no writable cgroup filesystem exists the task runs
//! without a limit (logged).

use std::ffi::CString;
use std::path::{Path, PathBuf};

use anyhow::Context;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// A task's prepared cgroup: `procs` is the file the task writes "0" to, to join it.
#[derive(Debug)]
pub struct TaskCgroup {
    pub dir: PathBuf,
    pub procs: CString,
}

/// The directory holding infra's task cgroups on this host, if the memory controller is
/// available there.
fn base_dir() -> Option<PathBuf> {
    let root = Path::new(CGROUP_ROOT);
    if root.join("cgroup.controllers").exists() {
        let controllers = std::fs::read_to_string(root.join("cgroup.controllers")).ok()?;
        controllers
            .split_whitespace()
            .any(|c| c == "memory")
            .then(|| root.join("infra"))
    } else if root.join("memory").join("cgroup.procs").exists() {
        Some(root.join("memory").join("infra"))
    } else {
        None
    }
}

/// Creates the task's cgroup with a memory limit of `mem_mb`; `Ok(None)` when the host has
/// no usable memory cgroup.
pub fn prepare(task_id: &str, mem_mb: f64) -> anyhow::Result<Option<TaskCgroup>> {
    let Some(base) = base_dir() else {
        return Ok(None);
    };
    let v2 = Path::new(CGROUP_ROOT).join("cgroup.controllers").exists();
    if let Err(err) = std::fs::create_dir_all(&base) {
        tracing::warn!("no memory limits: cannot create {}: {err}", base.display());
        return Ok(None);
    }
    if v2 {
        // Let the memory controller reach infra's task cgroups (errors: already enabled or
        // not allowed; writing the limit below tells which).
        let _ = std::fs::write(
            Path::new(CGROUP_ROOT).join("cgroup.subtree_control"),
            "+memory",
        );
        let _ = std::fs::write(base.join("cgroup.subtree_control"), "+memory");
    }
    let dir = base.join(task_id);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let bytes = ((mem_mb.max(4.0)) * 1024.0 * 1024.0) as u64;
    let limit_file = if v2 {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    std::fs::write(dir.join(limit_file), bytes.to_string())
        .with_context(|| format!("setting {}", dir.join(limit_file).display()))?;
    if v2 {
        let _ = std::fs::write(dir.join("memory.swap.max"), "0");
    } else {
        // Without swap accounting the file is missing: swap is then simply not limited.
        let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), bytes.to_string());
    }
    let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_encoded_bytes())
        .context("cgroup path")?;
    Ok(Some(TaskCgroup { dir, procs }))
}

/// In the forked child before exec: join the cgroup. Only async-signal-safe calls.
pub fn join_self(procs: &CString) -> std::io::Result<()> {
    // SAFETY: open/write/close on a valid NUL-terminated path and a static buffer.
    unsafe {
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let written = libc::write(fd, b"0".as_ptr().cast(), 1);
        libc::close(fd);
        if written != 1 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Removes the task's cgroup once its processes are gone (best effort).
pub fn remove(task_id: &str) {
    if let Some(base) = base_dir() {
        let _ = std::fs::remove_dir(base.join(task_id));
    }
}
