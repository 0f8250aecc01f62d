//! A task's recent output for the scheduler (the web UI's app page shows it). The scheduler
//! never connects to agents, so the agent sends it with its heartbeat: for each task whose
//! `stdout` or `stderr` grew since the last heartbeat the scheduler accepted, the last
//! [`TAIL_LINES`] lines of each (read from at most [`TAIL_BYTES`] of the file's end). A
//! settled task costs nothing; a chatty one at most one tail per heartbeat interval. A
//! Docker task's output is not in the sandbox: at each heartbeat the engine is asked for
//! the timestamp of the container's last line, and only when it moved since the tail last
//! sent, for the tail itself (`docker logs --tail`).

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::api::agent::{TaskOutput, TaskStatus};

use super::process::sandbox_dir;

/// The most lines of each stream a tail carries.
pub const TAIL_LINES: usize = 40;
/// The most bytes read from the end of each stream (so a tail is at most this big).
pub const TAIL_BYTES: u64 = 8 * 1024;

/// What a task's `stdout` and `stderr` looked like when their tails were last sent: the
/// files' sizes (process tasks), or a digest of the engine's timestamp of the last line
/// (Docker tasks).
type Sizes = (u64, u64);

/// What was sent already, so that only changed tails go out.
#[derive(Default)]
pub struct OutputTracker {
    sent: BTreeMap<String, Sizes>,
}

impl OutputTracker {
    /// The tails of the tasks in `tasks` whose output changed since [`Self::accepted`] last
    /// recorded them, with the sizes they were read at.
    pub fn changed(&self, data_dir: &Path, tasks: &[TaskStatus]) -> Vec<(TaskOutput, Sizes)> {
        let mut out = Vec::new();
        for task in tasks {
            let sandbox = sandbox_dir(data_dir, &task.task_id);
            let sizes = (
                file_len(&sandbox.join("stdout")),
                file_len(&sandbox.join("stderr")),
            );
            let before = self.sent.get(&task.task_id).copied().unwrap_or((0, 0));
            if sizes == before {
                continue;
            }
            out.push((
                TaskOutput {
                    task_id: task.task_id.clone(),
                    stdout: tail_lines(&sandbox.join("stdout"), TAIL_BYTES, TAIL_LINES),
                    stderr: tail_lines(&sandbox.join("stderr"), TAIL_BYTES, TAIL_LINES),
                },
                sizes,
            ));
        }
        out
    }

    /// The tails of the Docker tasks among `containers` (task id, container) whose output
    /// changed since [`Self::accepted`] last recorded them. A container the engine cannot
    /// read logs of is left out: output is a convenience, never a reason to fail.
    pub async fn changed_containers(
        &self,
        engine: &bollard::Docker,
        containers: &[(String, String)],
    ) -> Vec<(TaskOutput, Sizes)> {
        let mut out = Vec::new();
        for (task_id, container) in containers {
            let stamp = match super::docker::last_output_stamp(engine, container).await {
                Ok(Some(stamp)) => stamp,
                Ok(None) => continue,
                Err(err) => {
                    tracing::debug!("output of {task_id}: {err:#}");
                    continue;
                }
            };
            let marks = (digest(&[stamp]), 0);
            if self.sent.get(task_id) == Some(&marks) {
                continue;
            }
            let (stdout, stderr) =
                match super::docker::log_tail(engine, container, TAIL_LINES).await {
                    Ok(tails) => tails,
                    Err(err) => {
                        tracing::debug!("output of {task_id}: {err:#}");
                        continue;
                    }
                };
            if stdout.is_empty() && stderr.is_empty() {
                continue;
            }
            out.push((
                TaskOutput {
                    task_id: task_id.clone(),
                    stdout,
                    stderr,
                },
                marks,
            ));
        }
        out
    }

    /// The scheduler accepted a heartbeat carrying `sent`; tasks no longer in `tasks` are
    /// forgotten.
    pub fn accepted(&mut self, sent: &[(TaskOutput, Sizes)], tasks: &[TaskStatus]) {
        for (output, sizes) in sent {
            self.sent.insert(output.task_id.clone(), *sizes);
        }
        self.sent
            .retain(|id, _| tasks.iter().any(|t| &t.task_id == id));
    }

    /// The scheduler may not have what was sent (a heartbeat failed, perhaps because
    /// another control node now leads): send every tail again.
    pub fn resend_all(&mut self) {
        self.sent.clear();
    }
}

/// A digest of a tail, to tell whether it changed (not a security boundary).
fn digest(lines: &[String]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    lines.hash(&mut hasher);
    hasher.finish()
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The last `max_lines` non-empty lines of `path`, read from its last `max_bytes` (a first
/// line cut by that window is dropped unless it is the whole window). Empty when the file
/// is missing or unreadable: output is a convenience, never a reason to fail.
pub fn tail_lines(path: &Path, max_bytes: u64, max_lines: usize) -> Vec<String> {
    let Ok(mut file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(max_bytes);
    let mut bytes = Vec::new();
    if file
        .seek(SeekFrom::Start(start))
        .and_then(|_| file.read_to_end(&mut bytes))
        .is_err()
    {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && lines.len() > 1 {
        lines.remove(0);
    }
    let lines: Vec<String> = lines
        .into_iter()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    lines[lines.len().saturating_sub(max_lines)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::agent::TaskState;

    fn status(id: &str) -> TaskStatus {
        TaskStatus {
            task_id: id.into(),
            app_id: "/web".into(),
            state: TaskState::Running,
            host_ports: vec![],
            health: vec![],
            started_at: None,
            exit_code: None,
            message: None,
            ip_addresses: Vec::new(),
        }
    }

    #[test]
    fn a_tail_is_bounded_by_lines_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stdout");
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let tail = tail_lines(&path, 8192, 3);
        assert_eq!(tail, vec!["line 997", "line 998", "line 999"]);
        let tail = tail_lines(&path, 20, 40);
        assert_eq!(
            tail,
            vec!["line 998", "line 999"],
            "the cut line is dropped"
        );
        assert!(tail_lines(&dir.path().join("none"), 100, 10).is_empty());
    }

    #[test]
    fn only_grown_output_is_sent_again_until_a_resend() {
        let dir = tempfile::tempdir().unwrap();
        let tasks = vec![status("web.1"), status("web.2")];
        let sandbox = sandbox_dir(dir.path(), "web.1");
        std::fs::create_dir_all(&sandbox).unwrap();
        std::fs::write(sandbox.join("stdout"), "hello\n").unwrap();
        let mut tracker = OutputTracker::default();
        let first = tracker.changed(dir.path(), &tasks);
        assert_eq!(first.len(), 1, "web.2 wrote nothing");
        assert_eq!(first[0].0.stdout, vec!["hello"]);
        tracker.accepted(&first, &tasks);
        assert!(tracker.changed(dir.path(), &tasks).is_empty());
        std::fs::write(sandbox.join("stderr"), "oops\n").unwrap();
        let second = tracker.changed(dir.path(), &tasks);
        assert_eq!(second[0].0.stderr, vec!["oops"]);
        tracker.accepted(&second, &tasks);
        tracker.resend_all();
        assert_eq!(tracker.changed(dir.path(), &tasks).len(), 1);
    }
}
