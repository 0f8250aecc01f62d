//! Heartbeats that wait for work (long-poll). An agent that sends `waitMs` and the
//! generation of the last answer it applied is answered at once only when its wanted tasks
//! changed since that answer; otherwise the scheduler holds the answer until they change
//! (a task placed on it, or one to kill) or `waitMs` passes. A task placed on an agent
//! thus reaches it in milliseconds instead of at its next heartbeat (up to an interval
//! later), which is most of the time from an API write, or from an agent's loss, to the
//! replacement running. Agents that send no `waitMs` (older ones) are answered at once.
//!
//! Generations: each agent's wanted tasks carry a number taken from one clock per process
//! (seeded from the wall clock), raised whenever the set changes (see
//! [`crate::scheduler::state::State::put_task`]); a new leader's numbers never match an
//! old leader's, so an agent that failed over is answered at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// The longest a heartbeat is held, whatever the agent asks: well under the agent's HTTP
/// timeout (5 s), and never past the interval the agent's silence is measured in.
pub const MAX_WAIT: Duration = Duration::from_secs(3);

/// How long a woken heartbeat waits before it answers, for the other placements of the
/// same reconcile pass: one answer carrying a burst instead of one answer per task.
pub const WAKE_GATHERING: Duration = Duration::from_millis(20);

/// The shortest time between two answers to one agent that carry changes: a quarter of
/// the heartbeat interval, at most [`MAX_SPACING`]. Each answer lists all the agent's tasks and brings back a
/// heartbeat reporting all of them: while the cluster converges (placements on every
/// agent every few milliseconds) an answer per placement would cost more than it saves.
/// A lone change (an agent lost, one deploy) is still answered within
/// [`WAKE_GATHERING`].
pub fn min_spacing(heartbeat_interval: Duration) -> Duration {
    (heartbeat_interval / 4).min(MAX_SPACING)
}

/// The longest [`min_spacing`]: long heartbeat intervals must not delay work by seconds.
const MAX_SPACING: Duration = Duration::from_millis(500);

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

/// Who waits for which agent's tasks to change.
#[derive(Default)]
pub struct Wakeups {
    waiting: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Wakeups {
    /// The notifier of `agent_id`'s held heartbeats.
    pub fn of(&self, agent_id: &str) -> Arc<Notify> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.entry(agent_id.to_string()).or_default().clone()
    }

    /// Releases the held heartbeats of these agents (their wanted tasks changed).
    pub fn wake<'a>(&self, agents: impl IntoIterator<Item = &'a String>) {
        let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        for agent_id in agents {
            if let Some(notify) = waiting.get(agent_id) {
                notify.notify_waiters();
            }
        }
    }
}

/// How long a heartbeat that asked for `wait_ms` may be held.
pub fn hold_for(wait_ms: u64, heartbeat_interval: Duration) -> Duration {
    Duration::from_millis(wait_ms)
        .min(heartbeat_interval)
        .min(MAX_WAIT)
}

/// The last long-poll answer written for each agent, by generation, and when.
#[derive(Default)]
pub struct Answers {
    last: Mutex<HashMap<String, (u64, bytes::Bytes, Instant)>>,
}

impl Answers {
    pub fn get(&self, agent_id: &str, generation: u64) -> Option<bytes::Bytes> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.get(agent_id)
            .filter(|(g, _, _)| *g == generation)
            .map(|(_, answer, _)| answer.clone())
    }

    pub fn put(&self, agent_id: &str, generation: u64, answer: bytes::Bytes) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.insert(agent_id.to_string(), (generation, answer, Instant::now()));
    }

    /// When the last answer with changes went to `agent_id`.
    pub fn last_written(&self, agent_id: &str) -> Option<Instant> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.get(agent_id).map(|(_, _, at)| *at)
    }
}
