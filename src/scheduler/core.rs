//! The scheduler object: the in-memory state behind one lock, the durable store, the event
//! bus, and the one reconcile loop. Every trigger (API write, heartbeat, task exit, timer
//! tick) only enqueues an app id; one worker pops ids and reconciles them. Every change is
//! committed to the store before it reaches memory (see [`Scheduler::commit`]).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::mpsc;

use crate::api::marathon::event_types;
use crate::scheduler::events::{EventBus, Pending};
use crate::scheduler::placement::Strategy;
use crate::scheduler::reconcile::{reconcile_app, status_event};
use crate::scheduler::state::State;
use crate::scheduler::store::{Change, Store};

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
        }
    }
}

pub struct Scheduler {
    pub config: Config,
    state: Mutex<State>,
    store: Arc<dyn Store>,
    pub bus: EventBus,
    work_tx: mpsc::UnboundedSender<String>,
    pending: Mutex<BTreeSet<String>>,
    pub started: Instant,
}

impl Scheduler {
    /// Loads the state from the store; returns the scheduler and the work queue's receiver
    /// for [`Scheduler::run_worker`].
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
    ) -> anyhow::Result<(Arc<Scheduler>, mpsc::UnboundedReceiver<String>)> {
        let state = State::from_snapshot(store.load()?)?;
        let (work_tx, work_rx) = mpsc::unbounded_channel();
        let scheduler = Arc::new(Scheduler {
            config,
            state: Mutex::new(state),
            store,
            bus: EventBus::new(),
            work_tx,
            pending: Mutex::new(BTreeSet::new()),
            started: Instant::now(),
        });
        let apps: Vec<String> = scheduler.lock().apps.keys().cloned().collect();
        for app in apps {
            scheduler.enqueue(&app);
        }
        Ok((scheduler, work_rx))
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Makes changes durable, then applies them to memory.
    pub fn commit(&self, state: &mut State, changes: Vec<Change>) -> anyhow::Result<()> {
        self.store.apply(&changes)?;
        for change in changes {
            state.apply(change)?;
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

    /// The reconcile loop: one app at a time.
    pub async fn run_worker(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<String>) {
        while let Some(app_id) = rx.recv().await {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&app_id);
            if let Err(err) = self.reconcile(&app_id) {
                tracing::error!("reconciling {app_id}: {err:#}");
            }
        }
    }

    pub fn reconcile(&self, app_id: &str) -> anyhow::Result<()> {
        let (events, follow_up) = {
            let mut state = self.lock();
            let mut result = reconcile_app(&state, app_id, self.config.placement, Instant::now());
            let launched = result
                .changes
                .iter()
                .filter(|c| matches!(c, Change::PutTask(t) if !state.tasks.contains_key(&t.id)))
                .count() as u64;
            if launched > 0 {
                let total = state
                    .counters
                    .get("tasks_launched_total")
                    .copied()
                    .unwrap_or(0);
                result.changes.push(Change::SetCounter(
                    "tasks_launched_total".to_string(),
                    total + launched,
                ));
            }
            self.commit(&mut state, result.changes)?;
            match result.queue {
                Some(entry) => {
                    state.queue.insert(app_id.to_string(), entry);
                }
                None => {
                    state.queue.remove(app_id);
                }
            }
            (result.events, result.follow_up)
        };
        events.publish(&self.bus);
        for app in follow_up {
            self.enqueue(&app);
        }
        Ok(())
    }

    /// The timer: marks silent agents lost (their tasks TASK_LOST, replaced elsewhere) and
    /// re-enqueues apps that wait (queue, backoff, deployments).
    pub fn tick(&self) -> anyhow::Result<()> {
        let now = Instant::now();
        let mut pending = Pending::default();
        let mut apps: BTreeSet<String> = BTreeSet::new();
        {
            let mut state = self.lock();
            let lost: Vec<String> = state
                .agents
                .iter()
                .filter(|(_, a)| {
                    !a.record.lost && now.duration_since(a.last_seen) > self.config.agent_timeout
                })
                .map(|(id, _)| id.clone())
                .collect();
            let mut changes = Vec::new();
            for agent_id in &lost {
                if let Some(agent) = state.agents.get(agent_id) {
                    let mut record = agent.record.clone();
                    record.lost = true;
                    tracing::warn!("agent {agent_id} missed its heartbeats: lost");
                    changes.push(Change::PutAgent(record));
                }
                for task in state.tasks.values().filter(|t| &t.agent_id == agent_id) {
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
            if !changes.is_empty() {
                self.commit(&mut state, changes)?;
                self.bump(&mut state, "agents_lost_total", lost.len() as u64)?;
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
        pending.publish(&self.bus);
        for app in apps {
            self.enqueue(&app);
        }
        Ok(())
    }

    /// Adds to a durable counter (shown by /metrics).
    pub fn bump(&self, state: &mut State, name: &str, by: u64) -> anyhow::Result<()> {
        let value = state.counters.get(name).copied().unwrap_or(0) + by;
        self.commit(state, vec![Change::SetCounter(name.to_string(), value)])
    }

    /// Runs the timer until the process ends.
    pub async fn run_timer(self: Arc<Self>) {
        let period = (self.config.agent_timeout / 4)
            .clamp(Duration::from_millis(100), Duration::from_secs(1));
        let mut interval = tokio::time::interval(period);
        loop {
            interval.tick().await;
            if let Err(err) = self.tick() {
                tracing::error!("timer: {err:#}");
            }
        }
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
