//! The agent's task table on disk (`DATA_DIR/tasks.json`): for each live task its spec and
//! how to find it again (pid, process group and start time, or the container name), so a
//! restarted agent adopts its tasks instead of starting duplicates. Written atomically.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::api::agent::TaskSpec;

/// Where a task lives.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Handle {
    #[serde(rename_all = "camelCase")]
    Process {
        pid: i32,
        pgid: i32,
        start_time: u64,
    },
    #[serde(rename_all = "camelCase")]
    Docker { container: String },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PersistedTask {
    pub spec: TaskSpec,
    pub handle: Handle,
    /// RFC 3339.
    pub started_at: Option<String>,
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("tasks.json")
}

/// Reads the table; a missing file is an empty table.
pub fn load(data_dir: &Path) -> anyhow::Result<Vec<PersistedTask>> {
    let file = path(data_dir);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("reading {}", file.display())),
    };
    serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))
}

/// Replaces the table atomically (temp file beside it, fsync, rename).
pub fn save(data_dir: &Path, tasks: &[PersistedTask]) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(tasks).context("serializing the task table")?;
    crate::fsutil::write_private(&path(data_dir), &json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_table_is_empty_and_saved_table_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_empty());
        let spec: TaskSpec = serde_json::from_value(serde_json::json!({
            "taskId": "a.1", "appId": "/a", "appVersion": "v", "cmd": "true", "args": null,
            "env": {}, "labels": {}, "user": null, "cpus": 0.1, "mem": 16.0, "disk": 0.0,
            "hostPorts": [], "docker": null, "healthChecks": [], "killGracePeriodSeconds": 3
        }))
        .unwrap();
        let tasks = vec![PersistedTask {
            spec,
            handle: Handle::Process {
                pid: 42,
                pgid: 42,
                start_time: 7,
            },
            started_at: None,
        }];
        save(dir.path(), &tasks).unwrap();
        assert_eq!(load(dir.path()).unwrap(), tasks);
    }

    #[test]
    fn corrupt_table_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path()), "{nope").unwrap();
        let err = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(err.contains("tasks.json"), "{err}");
    }
}
