//! Group commit on a local store (redb): decisions are committed without an fsync and take
//! effect in memory at once, so the writer is free for the next decision within the time
//! it takes to decide; one background durable commit at a time then makes everything
//! committed before it durable (redb: a `Durability::Immediate` commit persists every
//! `Durability::None` commit before it). Whoever answers waits for the durable commit
//! covering what it answers with.
//!
//! # The rule
//!
//! **Nothing that leaves the process says more than what is on disk.** Every answer (to an
//! API write, a registration, a heartbeat) and every event waits until every commit the
//! state held when the answer was read is durable (a [`Ticket`] is that point in the
//! sequence of commits). A crash therefore loses only decisions nobody was told of:
//!
//! - an acknowledged API write survives a crash, as it did when each write was its own
//!   fsync'd transaction;
//! - an agent is never told to start a task the store does not hold: the heartbeat answer
//!   that lists it waits for the commit that placed it (and for any other commit the
//!   answer read). Were it sent earlier, a crash could forget a task the agent runs: after
//!   the restart nothing would account for its resources and ports, and the app would get
//!   another instance besides it. The same holds for kills and volume moves;
//! - events (`/v2/events`) are published in commit order once their commit is durable, so
//!   no subscriber sees what a crash would undo.
//!
//! What is not an answer: reads (`GET`) see the state as decided, up to one fsync before it
//! is durable, as they see any state a later write may change. The reconcile loop and the
//! timer decide on that state too; their commits come after the ones they read, so a
//! durable prefix that holds a decision holds what it was decided on.
//!
//! A durable commit that fails leaves the outcome of the commits it covered unknown: their
//! waiters get [`StoreError::Unavailable`] (503: retry), as a write to etcd that timed out.
//!
//! Stores that are durable on every commit (etcd, where the round trip is the commit) do
//! not use this: [`Ticket`]s are then always already durable.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{watch, Notify};

use crate::scheduler::events::EventBus;
use crate::scheduler::store::{Store, StoreError};

/// A point in the sequence of commits: what an answer read from memory depends on. An
/// answer must not leave before [`GroupCommit::wait`] returns for it.
#[must_use = "an answer must wait until its ticket is durable (GroupCommit::wait)"]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

impl Ticket {
    /// Nothing to wait for (a store that is durable on every commit).
    pub const DURABLE: Ticket = Ticket(0);

    /// A decision that answers nobody (reconcile, timer): its durability is waited for by
    /// whatever later answers read it.
    pub fn unanswered(self) {}
}

#[derive(Default)]
struct Applied {
    /// Commits applied (to the store without an fsync, and to memory) so far.
    seq: u64,
    /// Events of commits not yet durable, in commit order.
    events: VecDeque<(u64, Vec<Value>)>,
    closed: bool,
}

#[derive(Debug, Clone, Default)]
struct Durable {
    /// Every commit up to this one is durable.
    through: u64,
    /// The last durable commit that failed covered the commits up to this one.
    failed_through: u64,
    error: String,
}

/// The commits applied and the commits durable, and the one background durable commit.
#[derive(Default)]
pub struct GroupCommit {
    applied: Mutex<Applied>,
    wake: Notify,
    durable: watch::Sender<Durable>,
    /// Durable commits (fsyncs) made so far (`/metrics`).
    pub syncs: AtomicU64,
}

impl GroupCommit {
    pub fn new() -> Arc<GroupCommit> {
        Arc::new(GroupCommit::default())
    }

    fn applied(&self) -> std::sync::MutexGuard<'_, Applied> {
        self.applied.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a commit just applied without an fsync (the caller holds the writer, so
    /// commits are recorded in the order they were made), with the events it publishes once
    /// durable; wakes the background commit.
    pub fn record(&self, events: Vec<Value>) -> Ticket {
        let seq = {
            let mut applied = self.applied();
            applied.seq += 1;
            let seq = applied.seq;
            if !events.is_empty() {
                applied.events.push_back((seq, events));
            }
            seq
        };
        self.wake.notify_one();
        Ticket(seq)
    }

    /// Everything applied so far: the ticket of an answer read from memory now.
    pub fn current(&self) -> Ticket {
        Ticket(self.applied().seq)
    }

    /// Waits until the commits up to `ticket` are durable; an error when the durable
    /// commit that covered them failed (their outcome is unknown).
    pub async fn wait(&self, ticket: Ticket) -> anyhow::Result<()> {
        let mut rx = self.durable.subscribe();
        let durable = rx
            .wait_for(|d| d.through >= ticket.0 || d.failed_through >= ticket.0)
            .await
            .map_err(|_| StoreError::Unavailable("the store was closed".into()))?;
        if durable.through >= ticket.0 {
            return Ok(());
        }
        Err(anyhow::Error::new(StoreError::Unavailable(format!(
            "the write may not be durable: {}",
            durable.error
        ))))
    }

    /// Stops the background commit (the scheduler is gone).
    pub fn close(&self) {
        self.applied().closed = true;
        self.wake.notify_one();
    }

    /// The background durable commit: whenever commits were applied since the last one,
    /// one durable commit covers them all (commits made while it runs wait for the next),
    /// then their events are published and their waiters answered, in that order (an
    /// event is on the bus before the answer to the write that caused it).
    pub async fn run(self: Arc<Self>, store: Arc<dyn Store>, bus: EventBus) {
        loop {
            self.wake.notified().await;
            let target = {
                let applied = self.applied();
                if applied.closed {
                    return;
                }
                applied.seq
            };
            if target <= self.durable.borrow().through {
                continue;
            }
            let result = store.sync().await;
            self.syncs.fetch_add(1, Ordering::Relaxed);
            let events: Vec<Vec<Value>> = {
                let mut applied = self.applied();
                let mut out = Vec::new();
                while applied
                    .events
                    .front()
                    .is_some_and(|(seq, _)| *seq <= target)
                {
                    if let Some((_, events)) = applied.events.pop_front() {
                        out.push(events);
                    }
                }
                out
            };
            match result {
                Ok(()) => {
                    for event in events.into_iter().flatten() {
                        bus.send(event);
                    }
                    self.durable.send_modify(|d| d.through = target);
                }
                Err(err) => {
                    tracing::error!("store: the durable commit failed: {err:#}");
                    self.durable.send_modify(|d| {
                        d.failed_through = target;
                        d.error = format!("{err:#}");
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::redb_store::RedbStore;
    use std::time::Duration;

    #[tokio::test]
    async fn a_ticket_resolves_once_a_durable_commit_covers_it_and_events_follow_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir.path()).unwrap());
        let bus = EventBus::new();
        let mut events = bus.subscribe();
        let group = GroupCommit::new();
        assert_eq!(group.current(), Ticket::DURABLE);
        group.wait(Ticket::DURABLE).await.unwrap();
        let first = group.record(vec![serde_json::json!({"n": 1})]);
        let second = group.record(vec![serde_json::json!({"n": 2})]);
        assert!(second > first);
        assert_eq!(group.current(), second);
        // Nothing runs the durable commit yet: nothing is durable, nothing published.
        let early = tokio::time::timeout(Duration::from_millis(100), group.wait(first)).await;
        assert!(
            early.is_err(),
            "a ticket resolved before any durable commit"
        );
        assert!(events.try_recv().is_err());
        tokio::spawn(group.clone().run(store, bus));
        group.wait(second).await.unwrap();
        group.wait(first).await.unwrap();
        assert_eq!(events.try_recv().unwrap()["n"], 1);
        assert_eq!(events.try_recv().unwrap()["n"], 2);
        assert!(group.syncs.load(Ordering::Relaxed) >= 1);
        group.close();
    }
}
