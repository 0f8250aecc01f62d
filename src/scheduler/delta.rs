//! The delta heartbeat protocol. At 100 tasks per agent, a heartbeat carrying every task's
//! status and an answer carrying every task's spec cost the scheduler most of its CPU
//! while nothing changed. Both sides now send only what changed, and each side falls back
//! to the full protocol with a peer that does not speak this one:
//!
//! - Every answer carries the **generation** of the agent's wanted tasks: a number raised
//!   whenever the set changes (a task placed on the agent, moved, marked killing, or
//!   removed; see [`crate::scheduler::state::State::put_task`]). The agent sends back the
//!   generation of the last answer it applied; when it is still the current one the
//!   answer says `unchanged` and leaves the task list out.
//! - An agent that has seen a generation (so the scheduler understands deltas) sends a
//!   **delta** heartbeat: only the statuses that changed since the last heartbeat the
//!   scheduler accepted, plus any unhealthy task (its grace period runs out without a
//!   change). A task left out is as last reported, not lost.
//! - Reconciliation still finds lost and unknown tasks: the agent sends a full report at
//!   start, after a failover, every `agent::report::FULL_REPORT_EVERY` heartbeats, and when an answer
//!   asks for one (`fullReport`: this scheduler has no full report of the agent since it
//!   started, took over, or since the agent was lost). A task being killed that the
//!   agent never reported is deleted on a delta heartbeat that holds the current
//!   generation: the agent applied a list without it and never had it (had it received
//!   the task earlier, the heartbeat after that would have reported it as new).
//! - An agent that says it applies **partial answers** (`partial`) and holds a generation
//!   this process handed out gets, when its list changed, the ids of every task it is to
//!   run and the specs of only the tasks new since its generation ([`AssignmentLog`]).
//!
//! Generations come from one clock per process seeded from the wall clock, so a new
//! leader's numbers never match an old leader's: an agent that fails over gets the list.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// A new generation: larger than any taken before in this process, and unlike any another
/// process (another leader) handed out.
pub fn next_generation() -> u64 {
    static CLOCK: OnceLock<AtomicU64> = OnceLock::new();
    CLOCK
        .get_or_init(|| {
            let seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64);
            AtomicU64::new(seed)
        })
        .fetch_add(1, Ordering::Relaxed)
}

/// Partial answers: per agent, the tasks that became wanted there (placed, moved there,
/// given a new spec), with the generation that did it, oldest first. An agent that holds
/// generation `g` has every task logged at or below `g`; a partial answer sends it the
/// ids of every task it is to run and the specs of those logged after `g` only. At
/// 100 tasks per agent, answers listing every spec each time the list changed were a
/// quarter of the scheduler's CPU while a cluster converged (and as much again for the
/// agents to read).
///
/// An entry is dropped once the agent reports holding its generation (or a later one);
/// `floor` then says which generations can no longer be answered partially. A log exists
/// only for an agent that asked this state for partial answers (see
/// [`crate::scheduler::state::State::acknowledge_generation`]): older agents, and every
/// agent on a follower (which answers no heartbeat), cost nothing.
#[derive(Debug, Default)]
pub struct AssignmentLog {
    entries: std::collections::VecDeque<(u64, String)>,
    /// Entries at or below it were dropped: an agent holding less gets the whole list.
    floor: u64,
}

/// How many entries a log keeps for an agent that stopped reporting its generation (it
/// stopped heartbeating, or a burst outran it): beyond it the log is emptied and the
/// agent gets its whole list, as before partial answers.
const LOG_LIMIT: usize = 512;

impl AssignmentLog {
    /// A log started when the agent's list is at `generation`: nothing before it can be
    /// answered partially (it was not logged).
    pub fn starting_at(generation: u64) -> AssignmentLog {
        AssignmentLog {
            entries: Default::default(),
            floor: generation,
        }
    }

    /// `task_id` became wanted on the agent at `generation` (newer than any logged).
    pub fn push(&mut self, generation: u64, task_id: &str) {
        if self.entries.len() >= LOG_LIMIT {
            self.floor = self.entries.back().map_or(self.floor, |(g, _)| *g);
            self.entries.clear();
        }
        self.entries.push_back((generation, task_id.to_string()));
    }

    /// The agent holds `held`: what was logged at or below it is no longer needed.
    pub fn acknowledge(&mut self, held: u64) {
        while self.entries.front().is_some_and(|(g, _)| *g <= held) {
            self.entries.pop_front();
        }
        self.floor = self.floor.max(held);
    }

    /// The tasks logged after `held` (oldest first, a task possibly more than once), or
    /// None when entries after it were dropped.
    pub fn since(&self, held: u64) -> Option<impl Iterator<Item = &str>> {
        if held < self.floor {
            return None;
        }
        let start = self.entries.partition_point(|(g, _)| *g <= held);
        Some(self.entries.range(start..).map(|(_, id)| id.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn since(log: &AssignmentLog, held: u64) -> Option<Vec<&str>> {
        log.since(held).map(Iterator::collect)
    }

    #[test]
    fn an_agent_gets_what_was_logged_after_the_generation_it_holds() {
        let mut log = AssignmentLog::default();
        log.push(10, "a");
        log.push(11, "b");
        log.push(12, "a");
        assert_eq!(since(&log, 9), Some(vec!["a", "b", "a"]));
        assert_eq!(since(&log, 11), Some(vec!["a"]));
        assert_eq!(since(&log, 12), Some(vec![]));
        log.acknowledge(11);
        assert_eq!(since(&log, 11), Some(vec!["a"]));
        assert_eq!(since(&log, 10), None, "dropped entries cannot be answered");
    }

    #[test]
    fn a_log_nobody_acknowledges_stays_bounded() {
        let mut log = AssignmentLog::default();
        for g in 0..(LOG_LIMIT as u64 + 10) {
            log.push(g + 1, "t");
        }
        assert!(log.entries.len() <= LOG_LIMIT);
        assert_eq!(
            since(&log, 1),
            None,
            "an agent that held an old list gets all of it"
        );
        assert_eq!(since(&log, LOG_LIMIT as u64 + 9).map(|v| v.len()), Some(1));
    }
}
