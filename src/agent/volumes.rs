//! Local persistent volumes on the agent: one directory per (app, containerPath) under
//! `DATA_DIR/volumes/`, outside every task's sandbox, so that it outlives the tasks that
//! use it (task restarts, agent restarts, redeploys of the app: the scheduler places the
//! app back on this agent). A command task sees it as a symlink at `containerPath` inside
//! its sandbox. A Docker container gets it bind-mounted at `/mnt/mesos/sandbox/<path>`
//! (where Mesos puts the sandbox) and wherever a `hostPath` volume names that relative
//! path (Marathon's way to mount a persistent volume at an absolute path).
//!
//! Keyed by app id, not task id: a new task of the same app finds the data of the last one.
//! The scheduler places at most one instance of such an app per agent (docs/volumes.md).

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::api::agent::{TaskSpec, Volume};

/// `DATA_DIR/volumes`.
pub fn volumes_root(data_dir: &Path) -> PathBuf {
    data_dir.join("volumes")
}

/// A path component that cannot collide: `/` (the only separator app ids and container
/// paths have) becomes `%2F`, and `%` (in neither) becomes `%25` for safety.
fn component(s: &str) -> String {
    s.trim_matches('/').replace('%', "%25").replace('/', "%2F")
}

/// The directory of an app's volumes: `DATA_DIR/volumes/<app id>`.
pub fn app_dir(data_dir: &Path, app_id: &str) -> PathBuf {
    volumes_root(data_dir).join(component(app_id))
}

/// The apps whose persistent volumes this agent holds, as `app_dir` names them (the id
/// without its leading `/`). Sent with every heartbeat: the scheduler answers with those
/// whose app no longer exists, and the agent deletes them, as Marathon destroys the
/// volumes of a destroyed app. The staging folder of incoming moves (`.incoming`) is not
/// an app.
pub fn held_apps(data_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(volumes_root(data_dir)) else {
        return Vec::new();
    };
    let mut apps: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| !name.starts_with('.'))
        .map(|name| name.replace("%2F", "/").replace("%25", "%"))
        .collect();
    apps.sort();
    apps
}

/// The directory holding one volume's data.
pub fn volume_dir(data_dir: &Path, app_id: &str, container_path: &str) -> PathBuf {
    app_dir(data_dir, app_id).join(component(container_path))
}

/// Where Mesos mounts the sandbox in a Docker container.
pub const DOCKER_SANDBOX: &str = "/mnt/mesos/sandbox";

/// Creates the task's persistent volumes (keeping what they hold) and returns the spec to
/// run: Docker tasks get bind mounts; command tasks a symlink in the sandbox.
pub fn attach(data_dir: &Path, sandbox: &Path, mut spec: TaskSpec) -> anyhow::Result<TaskSpec> {
    for volume in spec.persistent_volumes.clone() {
        let dir = volume_dir(data_dir, &spec.app_id, &volume.container_path);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the persistent volume {}", dir.display()))?;
        let dir = std::fs::canonicalize(&dir)
            .with_context(|| format!("resolving the persistent volume {}", dir.display()))?;
        let host_path = dir.to_string_lossy().into_owned();
        match spec.docker.as_mut() {
            Some(docker) => {
                let relative = volume.container_path.trim_end_matches('/');
                for bind in docker.volumes.iter_mut() {
                    if bind.host_path.trim_end_matches('/') == relative {
                        bind.host_path = host_path.clone();
                    }
                }
                docker.volumes.push(Volume {
                    container_path: format!("{DOCKER_SANDBOX}/{relative}"),
                    host_path,
                    mode: volume.mode.clone(),
                });
            }
            None => link_into_sandbox(sandbox, &volume.container_path, &dir)?,
        }
    }
    Ok(spec)
}

/// `sandbox/<relative path>` -> the volume directory (replacing a stale link).
fn link_into_sandbox(sandbox: &Path, relative: &str, dir: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        !relative.starts_with('/') && !relative.split('/').any(|p| p == ".."),
        "containerPath {relative} of a command task must be relative to the sandbox"
    );
    let link = sandbox.join(relative);
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    match std::fs::symlink_metadata(&link) {
        Ok(meta) if meta.file_type().is_symlink() => std::fs::remove_file(&link)
            .with_context(|| format!("removing the stale link {}", link.display()))?,
        Ok(_) => anyhow::bail!(
            "{} exists in the sandbox and is not the volume's link",
            link.display()
        ),
        Err(_) => {}
    }
    std::os::unix::fs::symlink(dir, &link)
        .with_context(|| format!("linking {} to {}", link.display(), dir.display()))
}

/// Deletes all volumes of an app on this agent (`infra restart --wipe`, a finished move).
pub fn remove_app(data_dir: &Path, app_id: &str) -> anyhow::Result<()> {
    let dir = app_dir(data_dir, app_id);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("removing {}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids_and_paths_map_to_distinct_directories() {
        let root = Path::new("/d");
        assert_ne!(
            volume_dir(root, "/a/b", "data"),
            volume_dir(root, "/a", "b/data")
        );
        assert_eq!(
            volume_dir(root, "/g/db", "/var/lib/db"),
            PathBuf::from("/d/volumes/g%2Fdb/var%2Flib%2Fdb")
        );
    }
}
