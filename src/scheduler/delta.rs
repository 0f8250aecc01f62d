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
