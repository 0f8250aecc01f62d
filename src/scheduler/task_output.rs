//! The recent output of running tasks, as their agents last sent it with a heartbeat (see
//! `agent::output`). Kept in the leader's memory only, like the launch queue: it is a view
//! for people (the UI's app page, `GET /v2/infra/tasks/{id}/output`), not state worth a
//! store write per line. A new leader has none until the agents send their tails again
//! (they do after a failed heartbeat or when another control node answers).
//!
//! Memory is bounded: only tasks the state places on the sending agent are kept, each
//! with at most [`MAX_LINES`] lines of [`MAX_LINE_CHARS`] characters per stream whatever the
//! agent sends, and entries of tasks that left the state are dropped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::api::agent::TaskOutput;
use crate::scheduler::state::State;

/// The most lines kept per stream of a task.
pub const MAX_LINES: usize = 40;
/// The most characters kept of one line.
pub const MAX_LINE_CHARS: usize = 512;

/// One task's tail and when it arrived.
#[derive(Clone)]
pub struct Tail {
    pub agent_id: String,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
    pub received: Instant,
}

#[derive(Default)]
pub struct TaskOutputs {
    tails: Mutex<HashMap<String, Tail>>,
}

impl TaskOutputs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tail>> {
        self.tails.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the tails `agent_id` sent for its own tasks; forgets tasks gone from `state`.
    pub fn record(&self, state: &State, agent_id: &str, sent: Vec<TaskOutput>) {
        let mut tails = self.lock();
        for output in sent {
            let ours = state
                .tasks
                .get(&output.task_id)
                .is_some_and(|t| t.agent_id == agent_id);
            if !ours {
                continue;
            }
            tails.insert(
                output.task_id,
                Tail {
                    agent_id: agent_id.to_string(),
                    stdout: bounded(output.stdout),
                    stderr: bounded(output.stderr),
                    received: Instant::now(),
                },
            );
        }
        tails.retain(|id, _| state.tasks.contains_key(id));
    }

    /// The last tail received for `task_id`.
    pub fn get(&self, task_id: &str) -> Option<Tail> {
        self.lock().get(task_id).cloned()
    }

    /// How many tasks have a tail (for `/metrics` and tests of the bound).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The last [`MAX_LINES`] lines, each cut to [`MAX_LINE_CHARS`] characters.
fn bounded(lines: Vec<String>) -> Vec<String> {
    let skip = lines.len().saturating_sub(MAX_LINES);
    lines
        .into_iter()
        .skip(skip)
        .map(|line| match line.char_indices().nth(MAX_LINE_CHARS) {
            Some((cut, _)) => format!("{}…", &line[..cut]),
            None => line,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded_in_number_and_length() {
        let lines: Vec<String> = (0..100).map(|i| format!("{i}")).collect();
        let kept = bounded(lines);
        assert_eq!(kept.len(), MAX_LINES);
        assert_eq!(kept.last().map(String::as_str), Some("99"));
        let long = bounded(vec!["é".repeat(MAX_LINE_CHARS + 10)]);
        assert_eq!(long[0].chars().count(), MAX_LINE_CHARS + 1);
    }

    #[test]
    fn tails_of_unknown_or_foreign_tasks_are_not_kept() {
        let state = State::default();
        let outputs = TaskOutputs::default();
        outputs.record(
            &state,
            "agent-a",
            vec![TaskOutput {
                task_id: "web.1".into(),
                stdout: vec!["x".into()],
                stderr: vec![],
            }],
        );
        assert!(outputs.is_empty(), "a task not in the state is not kept");
    }
}
