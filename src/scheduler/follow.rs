//! Every node's copy of the shared state, fed by one etcd watch of the datacenter's prefix:
//! the leader's commits (applied to memory and their events re-published on this node's
//! `/v2/events`) and the election's candidates (who leads, for forwarding). Reads, DNS and
//! the event stream of a follower are served from this copy, so they keep answering with
//! the last known state while etcd is unreachable; the watch resumes from the last revision
//! it saw, and reads the whole state again only when etcd has compacted that revision away.
//!
//! The leader ignores the state part of the feed: its memory is fed by its own commits
//! (see [`Scheduler::commit`]), and nobody else can write (fencing).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::scheduler::core::Scheduler;
use crate::scheduler::etcd_store::{Candidate, EtcdStore, Feed};

/// How often a quiet watch is asked for progress.
const PROBE: Duration = Duration::from_secs(1);
/// A watch that answered nothing (not even progress) for this long is given up.
const SILENCE: Duration = Duration::from_secs(3);

/// Follows the store until the process ends.
pub async fn run_follower(scheduler: Arc<Scheduler>, store: Arc<EtcdStore>) {
    let mut next: Option<i64> = None;
    loop {
        if let Err(err) = follow(&scheduler, &store, &mut next).await {
            tracing::warn!("following etcd: {err:#}");
            // Read everything again (the candidates too) from whichever member answers.
            next = None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Reads the state when `next` is unknown, then applies the watch from `next` until the
/// watch breaks. `next` is left at the first revision not yet seen.
async fn follow(
    scheduler: &Arc<Scheduler>,
    store: &Arc<EtcdStore>,
    next: &mut Option<i64>,
) -> anyhow::Result<()> {
    let from = match *next {
        Some(from) => from,
        None => {
            let (snapshot, candidates) = match store.load_all().await {
                Ok(loaded) => loaded,
                Err(err) => {
                    // No member answers (etcd lost its quorum): who leads is unknown, and
                    // GET /v2/leader says so rather than name a leader that may be gone.
                    scheduler.leadership.set_candidates(Default::default());
                    return Err(err);
                }
            };
            let revision = snapshot.revision;
            scheduler.leadership.set_candidates(candidates);
            scheduler.replace_followed(snapshot)?;
            *next = Some(revision + 1);
            revision + 1
        }
    };
    let (mut requests, mut answers) = store.watch(from).await?.split();
    let mut heard = Instant::now();
    let mut probe = tokio::time::interval(PROBE);
    loop {
        let answer = tokio::select! {
            answer = answers.message() => answer.context("etcd watch")?,
            _ = probe.tick() => {
                // A member that froze keeps the stream open and says nothing: ask for
                // progress, and leave a member that does not answer.
                if heard.elapsed() > SILENCE {
                    store.failed(store.member().0);
                    anyhow::bail!("the etcd watch went silent for {SILENCE:?}");
                }
                let _ = requests.request_progress().await;
                continue;
            }
        };
        heard = Instant::now();
        let Some(answer) = answer else {
            return Ok(());
        };
        if answer.compact_revision() > 0 {
            tracing::warn!("etcd compacted revision {from} away: reading the whole state again");
            *next = None;
            return Ok(());
        }
        if answer.canceled() {
            anyhow::bail!("etcd cancelled the watch: {}", answer.cancel_reason());
        }
        let mut feeds = Vec::new();
        for event in answer.events() {
            if let Some(kv) = event.kv() {
                *next = Some(next.unwrap_or(0).max(kv.mod_revision() + 1));
            }
            if let Some(feed) = store.feed(event)? {
                feeds.push(feed);
            }
        }
        apply(scheduler, feeds)?;
    }
}

/// Applies one watch answer: candidates always; state changes and events only on a node
/// that does not lead, and only those newer than what its state already reflects.
fn apply(scheduler: &Scheduler, feeds: Vec<Feed>) -> anyhow::Result<()> {
    let leading = scheduler.leadership.is_leader();
    let mut events = Vec::new();
    {
        let mut state = scheduler.lock();
        let floor = state.revision;
        let mut top = floor;
        for feed in feeds {
            match feed {
                Feed::Candidate {
                    key,
                    create_revision,
                    url,
                } => scheduler.leadership.candidate(
                    key,
                    url.map(|url| Candidate {
                        create_revision,
                        url,
                    }),
                ),
                Feed::Data { revision, change } if !leading && revision > floor => {
                    state.apply(change)?;
                    top = top.max(revision);
                }
                Feed::Events {
                    revision,
                    events: batch,
                } if !leading && revision > floor => {
                    events.extend(batch);
                    top = top.max(revision);
                }
                Feed::Data { .. } | Feed::Events { .. } => {}
            }
        }
        state.revision = top;
    }
    for event in events {
        scheduler.bus.send(event);
    }
    Ok(())
}
