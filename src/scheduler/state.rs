//! The scheduler's in-memory state: what the store holds (apps, tasks, deployments,
//! agents, counters) plus what need not survive a restart (agents' last heartbeat, launch
//! backoff, the launch queue). Changed only through [`State::apply`] with the same
//! [`Change`]s the store has made durable, and read by the API and the reconciler.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use anyhow::Context;
use serde_json::{json, Map, Value};

use crate::api::agent::TaskState;
use crate::api::appdef::AppSpec;
use crate::scheduler::placement::AgentSlot;
use crate::scheduler::store::{
    AgentRecord, AppRecord, Change, DeploymentRecord, Snapshot, TaskRecord, TokenRecord,
};

pub struct AppEntry {
    pub record: AppRecord,
    pub spec: AppSpec,
}

pub struct AgentEntry {
    pub record: AgentRecord,
    pub last_seen: Instant,
    /// Ports of its range held by something outside the platform (last heartbeat).
    pub busy_ports: BTreeSet<u16>,
}

/// Launch backoff of one app (not durable: a restarted scheduler starts without delay).
#[derive(Debug, Clone)]
pub struct Backoff {
    pub failures: u32,
    pub until: Instant,
}

/// An app waiting for instances to be placed (`/v2/queue`).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEntry {
    pub count: usize,
    pub reason: Option<String>,
    pub since: String,
    pub delay_until: Option<Instant>,
}

#[derive(Default)]
pub struct State {
    pub apps: BTreeMap<String, AppEntry>,
    pub tasks: BTreeMap<String, TaskRecord>,
    pub deployments: BTreeMap<String, DeploymentRecord>,
    pub agents: BTreeMap<String, AgentEntry>,
    pub counters: BTreeMap<String, u64>,
    /// API tokens by id (hashes only).
    pub tokens: BTreeMap<String, TokenRecord>,
    pub backoff: HashMap<String, Backoff>,
    pub queue: BTreeMap<String, QueueEntry>,
    /// The store revision this state reflects (etcd's; 0 on redb): a change the follower
    /// watch reports at or below it is already here.
    pub revision: i64,
}

impl State {
    pub fn from_snapshot(snapshot: Snapshot) -> anyhow::Result<State> {
        let mut state = State {
            counters: snapshot.counters,
            revision: snapshot.revision,
            ..State::default()
        };
        let now = Instant::now();
        for token in snapshot.tokens {
            state.tokens.insert(token.id.clone(), token);
        }
        for app in snapshot.apps {
            state.apply(Change::PutApp(app))?;
        }
        for task in snapshot.tasks {
            state.tasks.insert(task.id.clone(), task);
        }
        for d in snapshot.deployments {
            state.deployments.insert(d.id.clone(), d);
        }
        for record in snapshot.agents {
            let id = record.registration.agent_id.clone();
            state.agents.insert(
                id,
                AgentEntry {
                    record,
                    last_seen: now,
                    busy_ports: BTreeSet::new(),
                },
            );
        }
        Ok(state)
    }

    /// The durable part replaced by a fresh snapshot; what only lives in memory (backoff,
    /// the launch queue, when each agent was last heard from) is kept.
    pub fn reload(&mut self, snapshot: Snapshot) -> anyhow::Result<()> {
        let mut fresh = State::from_snapshot(snapshot)?;
        for (id, agent) in &mut fresh.agents {
            if let Some(old) = self.agents.get_mut(id) {
                agent.last_seen = old.last_seen;
                agent.busy_ports = std::mem::take(&mut old.busy_ports);
            }
        }
        fresh.backoff = std::mem::take(&mut self.backoff);
        fresh.queue = std::mem::take(&mut self.queue);
        *self = fresh;
        Ok(())
    }

    pub fn apply(&mut self, change: Change) -> anyhow::Result<()> {
        match change {
            Change::PutApp(record) => {
                let spec = AppSpec::from_definition(&record.definition)
                    .map_err(|d| anyhow::anyhow!("{d:?}"))
                    .with_context(|| format!("stored app {} is not valid", record.id))?;
                self.apps
                    .insert(record.id.clone(), AppEntry { record, spec });
            }
            Change::DeleteApp(id) => {
                self.apps.remove(&id);
                self.queue.remove(&id);
                self.backoff.remove(&id);
            }
            Change::PutTask(task) => {
                self.tasks.insert(task.id.clone(), *task);
            }
            Change::DeleteTask(id) => {
                self.tasks.remove(&id);
            }
            Change::PutDeployment(d) => {
                self.deployments.insert(d.id.clone(), d);
            }
            Change::DeleteDeployment(id) => {
                self.deployments.remove(&id);
            }
            Change::PutAgent(record) => {
                let id = record.registration.agent_id.clone();
                match self.agents.get_mut(&id) {
                    Some(entry) => entry.record = record,
                    None => {
                        self.agents.insert(
                            id,
                            AgentEntry {
                                record,
                                last_seen: Instant::now(),
                                busy_ports: BTreeSet::new(),
                            },
                        );
                    }
                }
            }
            Change::SetCounter(name, value) => {
                self.counters.insert(name, value);
            }
            Change::PutToken(token) => {
                self.tokens.insert(token.id.clone(), token);
            }
            Change::DeleteToken(id) => {
                self.tokens.remove(&id);
            }
        }
        Ok(())
    }

    pub fn tasks_of<'a>(&'a self, app_id: &'a str) -> impl Iterator<Item = &'a TaskRecord> + 'a {
        self.tasks.values().filter(move |t| t.app_id == app_id)
    }

    /// The deployment an app takes part in, if any.
    pub fn deployment_of(&self, app_id: &str) -> Option<&DeploymentRecord> {
        self.deployments
            .values()
            .find(|d| d.step_of(app_id).is_some())
    }

    /// Service ports in use by apps other than `except`.
    pub fn used_service_ports(&self, except: &str) -> BTreeSet<u32> {
        self.apps
            .values()
            .filter(|a| a.record.id != except)
            .flat_map(|a| crate::api::appdef::service_ports(&a.spec))
            .collect()
    }

    /// Placement's view of the live agents: capacity minus what their tasks use.
    pub fn agent_slots(&self) -> Vec<AgentSlot> {
        let mut slots: Vec<AgentSlot> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (id, entry) in &self.agents {
            if entry.record.lost {
                continue;
            }
            let r = &entry.record.registration;
            index.insert(id.as_str(), slots.len());
            slots.push(AgentSlot {
                id: id.clone(),
                hostname: r.hostname.clone(),
                attributes: r.attributes.clone(),
                docker: r.docker,
                cpus: r.cpus,
                mem: r.mem,
                disk: r.disk,
                used_cpus: 0.0,
                used_mem: 0.0,
                used_disk: 0.0,
                port_range: r.port_range,
                used_ports: entry.busy_ports.clone(),
                app_tasks: HashMap::new(),
            });
        }
        for task in self.tasks.values() {
            let Some(&i) = index.get(task.agent_id.as_str()) else {
                continue;
            };
            let slot = &mut slots[i];
            slot.used_cpus += task.spec.cpus;
            slot.used_mem += task.spec.mem;
            slot.used_disk += task.spec.disk;
            slot.used_ports.extend(task.spec.host_ports.iter().copied());
            if !task.killing {
                *slot.app_tasks.entry(task.app_id.clone()).or_default() += 1;
            }
        }
        slots
    }
}

/// Whether a task counts as healthy: running, and every health check alive.
pub fn is_healthy(task: &TaskRecord) -> bool {
    if task.state != TaskState::Running {
        return false;
    }
    let checks = task.spec.health_checks.len();
    (0..checks).all(|i| task.health.iter().any(|h| h.index == i && h.alive))
}

pub fn state_name(state: TaskState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A task as Marathon shows it.
pub fn task_json(task: &TaskRecord, agent_address: Option<&str>) -> Value {
    let state = if task.killing {
        "TASK_KILLING".to_string()
    } else {
        state_name(task.state)
    };
    let mut out = json!({
        "id": task.id,
        "appId": task.app_id,
        "host": task.host,
        "ports": task.spec.host_ports,
        "servicePorts": task.service_ports,
        "slaveId": task.agent_id,
        "state": state,
        "stagedAt": task.staged_at,
        "startedAt": task.started_at,
        "version": task.version,
        "ipAddresses": [{"ipAddress": agent_address.unwrap_or(&task.host), "protocol": "IPv4"}],
        "localVolumes": [],
        "region": Value::Null,
        "zone": Value::Null,
        "role": "*",
    });
    if !task.spec.health_checks.is_empty() {
        let results: Vec<Value> = task
            .health
            .iter()
            .map(|h| {
                json!({
                    "alive": h.alive,
                    "consecutiveFailures": h.consecutive_failures,
                    "firstSuccess": h.first_success,
                    "lastFailure": h.last_failure,
                    "lastSuccess": h.last_success,
                    "lastFailureCause": h.last_failure_cause,
                    "taskId": task.id,
                    "instanceId": task.id,
                })
            })
            .collect();
        out["healthCheckResults"] = Value::Array(results);
    }
    out
}

/// The counters Marathon adds to an app.
pub fn app_counts(state: &State, app_id: &str) -> Map<String, Value> {
    let mut staged = 0;
    let mut running = 0;
    let mut healthy = 0;
    let mut unhealthy = 0;
    for t in state.tasks_of(app_id).filter(|t| !t.killing) {
        match t.state {
            TaskState::Staging | TaskState::Starting => staged += 1,
            TaskState::Running => running += 1,
            _ => {}
        }
        if !t.spec.health_checks.is_empty() && t.state == TaskState::Running {
            if is_healthy(t) {
                healthy += 1;
            } else if !t.health.is_empty() {
                unhealthy += 1;
            }
        }
    }
    let mut m = Map::new();
    m.insert("tasksStaged".into(), json!(staged));
    m.insert("tasksRunning".into(), json!(running));
    m.insert("tasksHealthy".into(), json!(healthy));
    m.insert("tasksUnhealthy".into(), json!(unhealthy));
    m
}
