//! The scheduler object: the in-memory state behind one lock, the durable store, the event
//! bus, leadership, and the one reconcile loop. Every trigger (API write, heartbeat, task
//! exit, timer tick) only enqueues an app id; one worker pops ids and reconciles them. Every
//! change is committed to the store before it reaches memory (see [`Scheduler::commit`]);
//! only the leader decides and writes, one decision at a time.

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tokio::sync::mpsc;

use crate::api::marathon::event_types;
use crate::scheduler::etcd_store::{EtcdConfig, EtcdStore, Fence};
use crate::scheduler::events::{EventBus, Pending};
use crate::scheduler::leadership::{ElectionConfig, Leadership};
use crate::scheduler::placement::Strategy;
use crate::scheduler::reconcile::{reconcile_app_on, status_event, Batch};
use crate::scheduler::state::{QueueEntry, State};
use crate::scheduler::store::{Change, Snapshot, Store, StoreError};

/// How long a write waits for this node's term to resume (see [`Scheduler::begin_write`]).
const WRITE_PATIENCE: Duration = Duration::from_secs(3);
/// How the scheduler runs (from `infra scheduler`'s flags).
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// An agent silent for longer is lost and its tasks are replaced.
    pub agent_timeout: Duration,
    pub placement: Strategy,
    /// Where service ports that are 0 are taken from.
    pub service_ports: (u32, u32),
    /// How often agents heartbeat (told at registration).
    pub heartbeat_interval: Duration,
    /// How often `/v2/events` sends a keep-alive comment.
    pub sse_keep_alive: Duration,
    /// The datacenter this scheduler belongs to (etcd keys live under `/infra/<dc>/`).
    pub datacenter: String,
    /// The URL clients and the other control nodes reach this one at (default: from
    /// `listen`).
    pub advertise: Option<String>,
    /// Shared state in etcd with leader election; None: a lone scheduler on redb.
    pub etcd: Option<EtcdConfig>,
    pub election: ElectionConfig,
    /// How long a client may take to send a request's headers (slow-loris defence).
    pub header_read_timeout: Duration,
    /// The API's TLS; None: plain HTTP (`--insecure-http`).
    pub tls: Option<TlsConfig>,
    /// Who may use the API (off unless enabled: `infra scheduler` enables it unless
    /// `--no-auth`).
    pub auth: AuthConfig,
}

/// Authentication of API callers (see [`crate::scheduler::http::auth`]).
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub enabled: bool,
    /// Tokens given at start (`--bootstrap-tokens`): how the first admin token exists
    /// before any leader could have written one to the store.
    pub bootstrap: Vec<crate::scheduler::tokens::TokenRecord>,
}

/// The API's certificate, and the cluster CA that client certificates (agents, other
/// control nodes) and the leader's certificate (when forwarding) are checked against.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub identity: crate::tls::Identity,
    pub ca: Option<PathBuf>,
}

impl Config {
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Config {
        Config {
            listen,
            data_dir,
            agent_timeout: Duration::from_secs(15),
            placement: Strategy::Spread,
            service_ports: (10000, 20000),
            heartbeat_interval: Duration::from_secs(2),
            sse_keep_alive: Duration::from_secs(15),
            datacenter: "dc1".into(),
            advertise: None,
            etcd: None,
            election: ElectionConfig {
                ttl: Duration::from_secs(2),
                retry: Duration::from_millis(500),
            },
            header_read_timeout: Duration::from_secs(10),
            tls: None,
            auth: AuthConfig::default(),
        }
    }
}

pub struct Scheduler {
    pub config: Config,
    state: Mutex<State>,
    store: Arc<dyn Store>,
    pub bus: EventBus,
    /// Who leads; only the leader reconciles, runs timers and writes.
    pub leadership: Arc<Leadership>,
    /// Serializes the decisions that write: each reads the state, commits, and applies its
    /// changes before the next one reads. Reads never take it.
    writer: tokio::sync::Mutex<()>,
    /// A commit failed in a way that leaves it unknown whether the store has it: reload
    /// before deciding anything else.
    stale: AtomicBool,
    work_tx: mpsc::UnboundedSender<String>,
    pending: Mutex<BTreeSet<String>>,
    pub started: Instant,
    /// Store transactions this process committed (`/metrics`): what the write batching
    /// keeps low, counted so that a test can bound it.
    pub store_transactions: AtomicU64,
    /// Deployment records this process wrote (`/metrics`): each carries every affected
    /// app's definitions, so a write per app finished made a big deployment quadratic.
    pub deployment_writes: AtomicU64,
    /// Heartbeats waiting to be decided and committed together.
    pub(crate) heartbeats: Mutex<Vec<crate::scheduler::agents::QueuedHeartbeat>>,
    /// The tasks' recent output, as their agents sent it (leader's memory only).
    pub outputs: crate::scheduler::task_output::TaskOutputs,
}

/// Held while a decision is made and committed (see [`Scheduler::begin_write`]).
pub type WriteGuard<'a> = tokio::sync::MutexGuard<'a, ()>;

impl Scheduler {
    /// A scheduler starting from `initial` (what a lone scheduler loaded from its store;
    /// empty for one of several, whose follower watch loads the shared state); returns the
    /// scheduler and the work queue's receiver for [`Scheduler::run_worker`].
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        leadership: Arc<Leadership>,
        initial: Snapshot,
    ) -> anyhow::Result<(Arc<Scheduler>, mpsc::UnboundedReceiver<String>)> {
        let state = State::from_snapshot(initial)?;
        let (work_tx, work_rx) = mpsc::unbounded_channel();
        let scheduler = Arc::new(Scheduler {
            config,
            state: Mutex::new(state),
            store,
            bus: EventBus::new(),
            leadership,
            writer: tokio::sync::Mutex::new(()),
            stale: AtomicBool::new(false),
            work_tx,
            pending: Mutex::new(BTreeSet::new()),
            started: Instant::now(),
            store_transactions: AtomicU64::new(0),
            deployment_writes: AtomicU64::new(0),
            heartbeats: Mutex::new(Vec::new()),
            outputs: Default::default(),
        });
        scheduler.enqueue_all();
        Ok((scheduler, work_rx))
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Starts a write: waits for the writers before it, and refuses when this node does
    /// not lead ([`StoreError::NotLeader`], which the API answers with 503).
    ///
    /// A leader past its lease deadline with no other node leading (etcd is electing a
    /// raft leader of its own and answers nobody; it renews every lease once it has one)
    /// waits up to [`WRITE_PATIENCE`] for its term to resume, as a forwarded request waits
    /// for a leader, instead of refusing a write it will be able to make in a moment.
    pub async fn begin_write(&self) -> anyhow::Result<WriteGuard<'_>> {
        let guard = self.writer.lock().await;
        if !self.leadership.is_leader() {
            // Returns at once when another node leads; else when this one leads again.
            self.leadership.wait_for_leader(WRITE_PATIENCE).await;
            if !self.leadership.is_leader() {
                return Err(anyhow::Error::new(StoreError::NotLeader));
            }
        }
        if self.stale.swap(false, Ordering::SeqCst) {
            let snapshot = match self.store.load().await {
                Ok(snapshot) => snapshot,
                Err(err) => {
                    self.stale.store(true, Ordering::SeqCst);
                    return Err(err);
                }
            };
            self.lock().reload(snapshot)?;
        }
        Ok(guard)
    }

    /// Makes changes durable, then applies them to memory and publishes their events.
    /// The caller holds the writer guard (from [`Scheduler::begin_write`]), never the state
    /// lock: the store's round trip happens with the state free for readers.
    pub async fn commit(
        &self,
        _writer: &WriteGuard<'_>,
        changes: Vec<Change>,
        events: Pending,
    ) -> anyhow::Result<()> {
        if changes.is_empty() && events.is_empty() {
            return Ok(());
        }
        let events = events.into_events();
        self.store_transactions.fetch_add(1, Ordering::Relaxed);
        let deployment_writes = changes
            .iter()
            .filter(|c| matches!(c, Change::PutDeployment(_)))
            .count() as u64;
        self.deployment_writes
            .fetch_add(deployment_writes, Ordering::Relaxed);
        let revision = match self.store.apply(&changes, &events).await {
            Ok(revision) => revision,
            Err(err) => {
                // Refused by the fence: nothing was written. Anything else (a timeout) may
                // or may not have been: read the store again before the next decision.
                if !matches!(
                    err.downcast_ref::<StoreError>(),
                    Some(StoreError::NotLeader)
                ) {
                    self.stale.store(true, Ordering::SeqCst);
                }
                return Err(err);
            }
        };
        {
            let mut state = self.lock();
            for change in changes {
                state.apply(change)?;
            }
            state.revision = state.revision.max(revision);
        }
        for event in events {
            self.bus.send(event);
        }
        Ok(())
    }

    /// Asks the worker to reconcile an app (once, however often it is asked meanwhile).
    pub fn enqueue(&self, app_id: &str) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.insert(app_id.to_string()) {
            // The receiver lives as long as the worker; a send error means shutdown.
            let _ = self.work_tx.send(app_id.to_string());
        }
    }

    fn enqueue_all(&self) {
        let apps: Vec<String> = self.lock().apps.keys().cloned().collect();
        for app in apps {
            self.enqueue(&app);
        }
    }

    /// The reconcile loop, on the leader only (a new leader enqueues every app when it
    /// takes over). Apps waiting are reconciled in batches, each batch one commit (one
    /// store transaction), a batch ending after [`BATCH_BUDGET`] of work so that API
    /// writes and heartbeats, which wait for it, are not held up for long.
    pub async fn run_worker(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<String>) {
        let mut backlog: VecDeque<String> = VecDeque::new();
        loop {
            if backlog.is_empty() {
                match rx.recv().await {
                    Some(app_id) => backlog.push_back(app_id),
                    None => return,
                }
            }
            while let Ok(app_id) = rx.try_recv() {
                backlog.push_back(app_id);
            }
            if !self.leadership.is_leader() {
                let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                for app_id in backlog.drain(..) {
                    pending.remove(&app_id);
                }
                continue;
            }
            if let Err(err) = self.reconcile_batch(&mut backlog).await {
                tracing::error!("reconciling: {err:#}");
            }
        }
    }

    /// Reconciles one app now.
    pub async fn reconcile(&self, app_id: &str) -> anyhow::Result<()> {
        let mut backlog = VecDeque::from([app_id.to_string()]);
        while !backlog.is_empty() {
            self.reconcile_batch(&mut backlog).await?;
        }
        Ok(())
    }

    /// Reconciles apps from the front of `backlog` against one reading of the state, then
    /// commits all their changes at once. Each app is decided as if the ones before it in
    /// the batch were committed (see [`Batch`]).
    async fn reconcile_batch(&self, backlog: &mut VecDeque<String>) -> anyhow::Result<()> {
        let writer = self.begin_write().await?;
        let started = Instant::now();
        let mut changes: Vec<Change> = Vec::new();
        let mut events = Pending::default();
        let mut queue: Vec<(String, Option<QueueEntry>)> = Vec::new();
        let mut follow_up: Vec<String> = Vec::new();
        let mut batch = Batch::default();
        {
            let state = self.lock();
            let mut launched = 0u64;
            while let Some(app_id) = backlog.pop_front() {
                self.pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&app_id);
                let result = reconcile_app_on(
                    &state,
                    &app_id,
                    self.config.placement,
                    Instant::now(),
                    &mut batch,
                );
                batch.record(&result.changes);
                launched += result
                    .changes
                    .iter()
                    .filter(|c| matches!(c, Change::PutTask(t) if !state.tasks.contains_key(&t.id)))
                    .count() as u64;
                changes.extend(result.changes);
                events.events.extend(result.events.events);
                queue.push((app_id, result.queue));
                follow_up.extend(result.follow_up);
                if started.elapsed() >= BATCH_BUDGET {
                    break;
                }
            }
            if launched > 0 {
                changes.push(counter(&state, "tasks_launched_total", launched));
            }
        }
        // Placement's view is not needed past the decisions.
        batch.slots = None;
        let changes = last_write_per_deployment(changes);
        self.commit(&writer, changes, events).await?;
        {
            let mut state = self.lock();
            batch.commit_progress(&mut state);
            for (app_id, entry) in queue {
                match entry {
                    Some(entry) => {
                        state.queue.insert(app_id, entry);
                    }
                    None => {
                        state.queue.remove(&app_id);
                    }
                }
            }
        }
        drop(writer);
        for app_id in &follow_up {
            self.enqueue(app_id);
        }
        Ok(())
    }

    /// The timer: marks silent agents lost (their tasks TASK_LOST, replaced elsewhere) and
    /// re-enqueues apps that wait (queue, backoff, deployments). Leader only.
    pub async fn tick(&self) -> anyhow::Result<()> {
        if !self.leadership.is_leader() {
            return Ok(());
        }
        let writer = self.begin_write().await?;
        let now = Instant::now();
        let mut pending = Pending::default();
        let mut apps: BTreeSet<String> = BTreeSet::new();
        let mut changes = Vec::new();
        {
            let state = self.lock();
            let lost = self.overdue_agents(&state, now);
            for agent_id in &lost {
                if let Some(agent) = state.agents.get(agent_id) {
                    let mut record = agent.record.clone();
                    record.lost = true;
                    tracing::warn!("agent {agent_id} missed its heartbeats: lost");
                    changes.push(Change::PutAgent(record));
                }
                for task in state.tasks_on(agent_id) {
                    pending.push(
                        event_types::STATUS_UPDATE,
                        status_event(task, "TASK_LOST", "agent lost"),
                    );
                    pending.push(
                        event_types::INSTANCE_CHANGED,
                        crate::scheduler::reconcile::instance_changed_event(task, "Unreachable"),
                    );
                    apps.insert(task.app_id.clone());
                    changes.push(Change::DeleteTask(task.id.clone()));
                }
            }
            if !lost.is_empty() {
                changes.push(counter(&state, "agents_lost_total", lost.len() as u64));
            }
            apps.extend(state.queue.keys().cloned());
            for d in state.deployments.values() {
                apps.extend(d.affected_apps());
            }
            apps.extend(
                state
                    .backoff
                    .iter()
                    .filter(|(_, b)| b.until <= now)
                    .map(|(id, _)| id.clone()),
            );
        }
        self.commit(&writer, changes, pending).await?;
        drop(writer);
        for app in apps {
            self.enqueue(&app);
        }
        Ok(())
    }

    /// Agents silent for longer than the agent timeout: since their last heartbeat, or
    /// since this node began to lead if that is later; not those whose heartbeat waits
    /// for the writer.
    fn overdue_agents(&self, state: &State, now: Instant) -> Vec<String> {
        let acting_since = self.leadership.acting_since();
        let awaiting_answer = self.agents_awaiting_answer();
        state
            .agents
            .iter()
            .filter(|(id, a)| {
                let seen = acting_since.map_or(a.last_seen, |since| since.max(a.last_seen));
                !a.record.lost
                    && now.duration_since(seen) > self.config.agent_timeout
                    && !awaiting_answer.contains(*id)
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Runs the timer until the process ends: a full [`Scheduler::tick`] every quarter
    /// of the agent timeout (at most 1 s), and in between, a look for overdue agents
    /// often enough that a lost agent's tasks are replaced at most a fraction of a second
    /// past the timeout (the look takes the state lock only, not the writer).
    pub async fn run_timer(self: Arc<Self>) {
        let period = (self.config.agent_timeout / 4)
            .clamp(Duration::from_millis(100), Duration::from_secs(1));
        let look = (self.config.agent_timeout / 20)
            .clamp(Duration::from_millis(50), Duration::from_millis(250))
            .min(period);
        let mut interval = tokio::time::interval(look);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_tick = Instant::now();
        loop {
            interval.tick().await;
            let due = last_tick.elapsed() >= period
                || (self.leadership.is_leader()
                    && !self.overdue_agents(&self.lock(), Instant::now()).is_empty());
            if !due {
                continue;
            }
            last_tick = Instant::now();
            if let Err(err) = self.tick().await {
                if !matches!(
                    err.downcast_ref::<StoreError>(),
                    Some(StoreError::NotLeader)
                ) {
                    tracing::error!("timer: {err:#}");
                }
            }
        }
    }

    /// This node won the election: arm the fence, read the whole state from the store
    /// (every agent gets a fresh heartbeat deadline, so none is declared lost for the
    /// election's silence), then start acting and reconcile every app. Task ids, running
    /// tasks and deployments are taken over as they are.
    pub async fn take_over(
        &self,
        store: &EtcdStore,
        fence: Fence,
        until: Instant,
    ) -> anyhow::Result<()> {
        let _writer = self.writer.lock().await;
        let loaded = async {
            store.arm(fence).await?;
            let snapshot = store
                .load()
                .await
                .context("reading the state to take over")?;
            State::from_snapshot(snapshot)
        };
        let state = match loaded.await {
            Ok(state) => state,
            Err(err) => {
                store.disarm();
                return Err(err);
            }
        };
        *self.lock() = state;
        self.stale.store(false, Ordering::SeqCst);
        self.leadership.hold_until(Some(until));
        self.enqueue_all();
        Ok(())
    }

    /// This node no longer leads: stop acting at once, then disarm the fence (writes
    /// already in flight fail in etcd anyway). What only the leader keeps in memory (launch
    /// queue, backoff) is dropped; the next leader rebuilds it.
    pub fn step_down(&self, store: &EtcdStore) {
        self.leadership.hold_until(None);
        store.disarm();
        let mut state = self.lock();
        state.queue.clear();
        state.backoff.clear();
    }

    /// The follower watch read the whole shared state (at its start, or after etcd
    /// compacted the revision it was at). The leader keeps its own.
    pub fn replace_followed(&self, snapshot: Snapshot) -> anyhow::Result<()> {
        if self.leadership.is_leader() {
            return Ok(());
        }
        self.lock().reload(snapshot)
    }

    pub fn publish(&self, event_type: &str, fields: serde_json::Value) {
        self.bus.publish(event_type, fields);
    }

    pub fn attached(&self, remote: &str) {
        self.publish(
            event_types::EVENT_STREAM_ATTACHED,
            json!({"remoteAddress": remote}),
        );
    }
}

/// How much reconcile work one batch does before it commits (the state lock and the
/// writer are held meanwhile).
pub const BATCH_BUDGET: Duration = Duration::from_millis(5);

/// A batch's changes with only the last write of each deployment: the apps of one
/// deployment marked done in one batch each write all of it (every app's definition),
/// and only the last write is what the store and the state end with.
fn last_write_per_deployment(changes: Vec<Change>) -> Vec<Change> {
    let deployment = |c: &Change| match c {
        Change::PutDeployment(d) => Some(d.id.clone()),
        Change::DeleteDeployment(id) => Some(id.clone()),
        _ => None,
    };
    let mut last: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, change) in changes.iter().enumerate() {
        if let Some(id) = deployment(change) {
            last.insert(id, i);
        }
    }
    changes
        .into_iter()
        .enumerate()
        .filter(|(i, c)| deployment(c).is_none_or(|id| last.get(&id) == Some(i)))
        .map(|(_, c)| c)
        .collect()
}

/// The change that adds `by` to a durable counter (shown by /metrics).
pub fn counter(state: &State, name: &str, by: u64) -> Change {
    let value = state.counters.get(name).copied().unwrap_or(0) + by;
    Change::SetCounter(name.to_string(), value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::store::DeploymentRecord;

    fn deployment(id: &str, done: &[&str]) -> Change {
        Change::PutDeployment(DeploymentRecord {
            id: id.into(),
            version: "v".into(),
            steps: Vec::new(),
            current_step: 0,
            done: done.iter().map(|s| s.to_string()).collect(),
            original: Default::default(),
            target: Default::default(),
        })
    }

    #[test]
    fn a_batch_keeps_only_the_last_write_of_each_deployment() {
        let changes = vec![
            deployment("d1", &["/a"]),
            Change::DeleteTask("t1".into()),
            deployment("d2", &["/x"]),
            deployment("d1", &["/a", "/b"]),
            Change::DeleteDeployment("d2".into()),
            Change::SetCounter("c".into(), 1),
        ];
        let kept = last_write_per_deployment(changes);
        assert_eq!(
            kept,
            vec![
                Change::DeleteTask("t1".into()),
                deployment("d1", &["/a", "/b"]),
                Change::DeleteDeployment("d2".into()),
                Change::SetCounter("c".into(), 1),
            ]
        );
    }
}
