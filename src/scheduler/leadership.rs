//! Who leads the datacenter's schedulers. With one scheduler (redb) it is always this one.
//! With etcd, leadership is a campaign in etcd's election API on a lease this process keeps
//! alive: the candidate whose key is oldest leads. The leader alone reconciles, runs the
//! timers and writes; it stops acting the moment its lease may have expired (its local
//! deadline runs out before etcd's does), and etcd itself refuses its writes once its key
//! is gone (see [`crate::scheduler::etcd_store`]'s fencing).
//!
//! This module owns the view every node has of the election (fed by the follower watch in
//! `follow`) and the campaign loop; taking over and stepping down are [`Scheduler`]
//! methods, since they touch the state.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

use crate::scheduler::core::Scheduler;
use crate::scheduler::etcd_store::{Candidate, EtcdStore};

/// What this node knows of the election.
#[derive(Default)]
struct View {
    /// Every candidate's key, from the watch: the oldest leads.
    candidates: BTreeMap<Vec<u8>, Candidate>,
    /// While this node leads: until when its lease is surely alive.
    held_until: Option<Instant>,
    /// When this node last started (or resumed) acting as the leader.
    acting_since: Option<Instant>,
}

/// One control node as [`Leadership::control_nodes`] lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlNode {
    /// Its advertised URL.
    pub url: String,
    pub leads: bool,
}

pub struct Leadership {
    /// This node's URL as clients and other control nodes reach it.
    pub advertise: String,
    /// False for a lone scheduler on redb, which always leads.
    elected: bool,
    view: Mutex<View>,
    /// Bumped on every change of the view, so that requests waiting for a leader wake up.
    changed: watch::Sender<u64>,
    step_down: Notify,
    shutdown: watch::Sender<bool>,
}

impl Leadership {
    /// A lone scheduler: always the leader.
    pub fn single(advertise: String) -> Leadership {
        Leadership::new(advertise, false)
    }

    /// One of several schedulers sharing etcd: a follower until it wins the election.
    pub fn elected(advertise: String) -> Leadership {
        Leadership::new(advertise, true)
    }

    fn new(advertise: String, elected: bool) -> Leadership {
        Leadership {
            advertise,
            elected,
            view: Mutex::new(View::default()),
            changed: watch::channel(0).0,
            step_down: Notify::new(),
            shutdown: watch::channel(false).0,
        }
    }

    fn view(&self) -> std::sync::MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// Whether several schedulers share the state (`--etcd`).
    pub fn is_elected(&self) -> bool {
        self.elected
    }

    /// Whether this node may act: reconcile, run timers, write.
    pub fn is_leader(&self) -> bool {
        if !self.elected {
            return true;
        }
        self.view()
            .held_until
            .is_some_and(|until| Instant::now() < until)
    }

    /// The leader's advertised URL, when one is known. A node that sees its own key oldest
    /// but has not finished taking over reports no leader yet (forwarding to itself would
    /// loop).
    pub fn leader_url(&self) -> Option<String> {
        if self.is_leader() {
            return Some(self.advertise.clone());
        }
        let view = self.view();
        let oldest = view.candidates.values().min_by_key(|c| c.create_revision)?;
        (oldest.url != self.advertise).then(|| oldest.url.clone())
    }

    /// Every control node taking part in the election, oldest candidate first (the one that
    /// leads or is about to), as this node's watch last saw them; a lone scheduler lists
    /// itself. `leads` marks the one [`Self::leader_url`] names (none during an election).
    pub fn control_nodes(&self) -> Vec<ControlNode> {
        let leader = self.leader_url();
        if !self.elected {
            return vec![ControlNode {
                url: self.advertise.clone(),
                leads: true,
            }];
        }
        let mut candidates: Vec<Candidate> = self.view().candidates.values().cloned().collect();
        candidates.sort_by_key(|c| c.create_revision);
        // A node lists its campaign key once; a second key for one URL (a restart before
        // the old lease expired) is the same node.
        let mut seen = std::collections::HashSet::new();
        candidates
            .into_iter()
            .filter(|c| seen.insert(c.url.clone()))
            .map(|c| ControlNode {
                leads: leader.as_deref() == Some(c.url.as_str()),
                url: c.url,
            })
            .collect()
    }

    /// Waits up to `patience` for a leader to be known.
    pub async fn wait_for_leader(&self, patience: Duration) -> Option<String> {
        let mut changed = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if let Some(url) = self.leader_url() {
                return Some(url);
            }
            // A lease deadline passing is no event: look again at least every 100 ms.
            let wake = (tokio::time::Instant::now() + Duration::from_millis(100)).min(deadline);
            let _ = tokio::time::timeout_at(wake, changed.changed()).await;
            if tokio::time::Instant::now() >= deadline {
                return self.leader_url();
            }
        }
    }

    /// The watch saw the candidates as they are at some revision.
    pub fn set_candidates(&self, candidates: BTreeMap<Vec<u8>, Candidate>) {
        self.view().candidates = candidates;
        self.bump();
    }

    /// A candidate appeared (`Some`) or left (`None`).
    pub fn candidate(&self, key: Vec<u8>, candidate: Option<Candidate>) {
        {
            let mut view = self.view();
            match candidate {
                Some(c) => view.candidates.insert(key, c),
                None => view.candidates.remove(&key),
            };
        }
        self.bump();
    }

    pub(crate) fn hold_until(&self, until: Option<Instant>) {
        {
            let mut view = self.view();
            view.held_until = until;
            view.acting_since = until.map(|_| Instant::now());
        }
        self.bump();
    }

    /// Extends the lease deadline of a node that leads (no effect otherwise). A deadline
    /// that had passed means the node paused; it acts again from now.
    fn extend(&self, until: Instant) {
        let resumed = {
            let mut view = self.view();
            let Some(held) = view.held_until else {
                return;
            };
            let now = Instant::now();
            view.held_until = Some(until);
            let resumed = held <= now;
            if resumed {
                view.acting_since = Some(now);
            }
            resumed
        };
        if resumed {
            tracing::info!("etcd answers again and the lease is alive: leading again");
            self.bump();
        }
    }

    /// When this node started (or last resumed) acting as the leader: an agent is judged
    /// silent only from then on, since heartbeats could not reach a leader before.
    pub fn acting_since(&self) -> Option<Instant> {
        if !self.elected {
            return None;
        }
        self.view().acting_since
    }

    /// `DELETE /v2/leader`: the leader resigns; another candidate takes over.
    pub fn abdicate(&self) {
        self.step_down.notify_one();
    }

    /// The process is ending: resign now, so another node takes over at once.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// Election settings (`infra scheduler --leader-ttl`).
#[derive(Debug, Clone, Copy)]
pub struct ElectionConfig {
    /// The lease's time to live: a dead leader is replaced this long after its last
    /// keep-alive. etcd counts whole seconds and enforces a minimum (1.5x its election
    /// timeout).
    pub ttl: Duration,
    /// How long to wait before campaigning again after an error.
    pub retry: Duration,
}

impl ElectionConfig {
    fn ttl_secs(&self) -> i64 {
        (self.ttl.as_secs_f64().ceil() as i64).max(1)
    }
}

/// Campaigns until the process ends: one term after another (a term ends when the lease
/// is lost, the leader abdicates, or etcd cannot be reached).
pub async fn run_election(
    scheduler: Arc<Scheduler>,
    store: Arc<EtcdStore>,
    config: ElectionConfig,
) {
    let leadership = scheduler.leadership.clone();
    while !leadership.shutting_down() {
        if let Err(err) = run_term(&scheduler, &store, config).await {
            tracing::warn!("election: {err:#}");
            if !leadership.shutting_down() {
                tokio::time::sleep(config.retry).await;
            }
        }
    }
}

/// One campaign on a fresh lease; returns when this node no longer leads.
async fn run_term(
    scheduler: &Arc<Scheduler>,
    store: &Arc<EtcdStore>,
    config: ElectionConfig,
) -> anyhow::Result<()> {
    let leadership = scheduler.leadership.clone();
    let ttl = config.ttl_secs();
    let lease = store
        .call("lease grant", |mut c| async move {
            c.lease_grant(ttl, None).await
        })
        .await?
        .id();
    let mut term = Term {
        store: store.clone(),
        lease,
        scheduler: scheduler.clone(),
        leading: false,
        revoked: false,
    };
    let (lost_tx, mut lost) = watch::channel(false);
    let keeper = tokio::spawn(keep_alive(
        store.clone(),
        lease,
        Duration::from_secs(ttl as u64),
        leadership.clone(),
        lost_tx,
    ));
    let _keeper = AbortOnDrop(keeper);
    let mut shutdown = leadership.shutdown.subscribe();
    let name = store.election_name();
    let won = tokio::select! {
        won = store.campaign(&name, &leadership.advertise, lease) => Some(won?),
        _ = async { let _ = lost.wait_for(|lost| *lost).await; } => {
            anyhow::bail!("the lease expired while campaigning")
        }
        _ = async { let _ = shutdown.wait_for(|down| *down).await; } => None,
    };
    let Some(won) = won else {
        term.end().await;
        return Ok(());
    };
    let fence = won;
    // The lease is alive at least until now + ttl minus a margin: the deadline the keeper
    // keeps extending.
    let until = Instant::now() + Duration::from_secs(ttl as u64) / 2;
    scheduler.take_over(store, fence, until).await?;
    term.leading = true;
    tracing::info!("became leader ({})", leadership.advertise);
    tokio::select! {
        _ = async { let _ = lost.wait_for(|lost| *lost).await; } => {
            tracing::warn!("lost the leadership lease: stepping down")
        }
        _ = leadership.step_down.notified() => tracing::info!("abdicating as asked"),
        _ = async { let _ = shutdown.wait_for(|down| *down).await; } => {
            tracing::info!("shutting down: resigning")
        }
    }
    term.end().await;
    Ok(())
}

/// The resources of one term, released however the term ends (lease lost, abdication,
/// shutdown, an error): this node stops acting, then its lease is revoked so that the next
/// candidate takes over at once instead of after the TTL.
struct Term {
    store: Arc<EtcdStore>,
    lease: i64,
    scheduler: Arc<Scheduler>,
    leading: bool,
    revoked: bool,
}

impl Term {
    async fn end(mut self) {
        self.stop_acting();
        self.revoked = true;
        revoke(&self.store, self.lease).await;
    }

    fn stop_acting(&mut self) {
        if self.leading {
            self.scheduler.step_down(&self.store);
            self.leading = false;
        }
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        self.stop_acting();
        if !self.revoked {
            let store = self.store.clone();
            let lease = self.lease;
            tokio::spawn(async move { revoke(&store, lease).await });
        }
    }
}

/// Revokes a lease, which deletes this node's candidate key. When etcd cannot take it now
/// (no quorum), keeps trying in the background for a while: etcd renews every lease when it
/// elects a new leader of its own, so an unrevoked key would make the next scheduler wait a
/// whole TTL more once quorum is back.
async fn revoke(store: &Arc<EtcdStore>, lease: i64) {
    if try_revoke(store, lease).await {
        return;
    }
    let store = store.clone();
    tokio::spawn(async move {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if try_revoke(&store, lease).await {
                return;
            }
        }
    });
}

async fn try_revoke(store: &EtcdStore, lease: i64) -> bool {
    let answer = store
        .call("lease revoke", |mut c| async move {
            c.lease_revoke(lease).await
        })
        .await;
    // A lease etcd no longer has is as good as revoked.
    match answer {
        Ok(_) => true,
        Err(err) => format!("{err:#}").contains("lease not found"),
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Keeps the lease alive every third of its TTL and moves the leader's deadline forward
/// with each answer. A member that fails or stays silent for a third of the TTL is left for
/// the next one, so one dead or frozen etcd member never costs the lease.
///
/// Past the deadline without an answer this node stops acting (see
/// [`Leadership::is_leader`]) but keeps asking: while etcd elects a raft leader of its own
/// nobody can answer, and etcd renews every lease once it has one, so the lease may well
/// be alive. An answer with a TTL resumes the term (the lease, and so the election key,
/// still exist: nobody else can lead); etcd saying the lease is gone, or no answer for
/// [`GIVE_UP_TTLS`] TTLs, reports `lost`.
async fn keep_alive(
    store: Arc<EtcdStore>,
    lease: i64,
    ttl: Duration,
    leadership: Arc<Leadership>,
    lost: watch::Sender<bool>,
) {
    let period = ttl / 3;
    let mut last_answer = Instant::now();
    'member: while last_answer.elapsed() < ttl * GIVE_UP_TTLS {
        let (index, mut client) = store.member();
        let opened = tokio::time::timeout(period, client.lease_keep_alive(lease)).await;
        let (mut keeper, mut answers) = match opened {
            Ok(Ok(opened)) => opened,
            Ok(Err(err)) if err.to_string().contains("lease not found") => break,
            _ => {
                store.failed(index);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        loop {
            let sent = Instant::now();
            let answer = tokio::time::timeout(period, async {
                keeper.keep_alive().await?;
                answers.message().await
            })
            .await;
            match answer {
                Ok(Ok(Some(answer))) if answer.ttl() > 0 => {
                    last_answer = Instant::now();
                    leadership.extend(sent + Duration::from_secs(answer.ttl() as u64));
                }
                Ok(Ok(Some(_))) => break 'member,
                _ => {
                    store.failed(index);
                    continue 'member;
                }
            }
            let next = sent + period;
            if next > Instant::now() {
                tokio::time::sleep_until(next.into()).await;
            }
        }
    }
    tracing::warn!("etcd: the leadership lease is gone");
    leadership.hold_until(None);
    let _ = lost.send(true);
}

/// How many TTLs without any answer from etcd end a term (the lease is surely gone).
const GIVE_UP_TTLS: u32 = 4;
