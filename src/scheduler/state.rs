//! The scheduler's in-memory state: what the store holds (apps, tasks, deployments,
//! agents, counters) plus what need not survive a restart (agents' last heartbeat, launch
//! backoff, the launch queue). Changed only through [`State::apply`] with the same
//! [`Change`]s the store has made durable, and read by the API and the reconciler.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use anyhow::Context;
use serde_json::{json, Map, Value};

use crate::api::agent::TaskState;
use crate::api::appdef::AppSpec;
use crate::scheduler::delta::AssignmentLog;
use crate::scheduler::placement::AgentSlot;
use crate::scheduler::progress::StepProgress;
use crate::scheduler::store::{
    AgentRecord, AppRecord, Change, DeploymentRecord, Snapshot, TaskRecord, TokenRecord,
};

pub struct AppEntry {
    pub record: AppRecord,
    pub spec: AppSpec,
}

pub struct AgentEntry {
    pub record: AgentRecord,
    /// The registration's attributes, shared with placement's views.
    pub attributes: std::sync::Arc<BTreeMap<String, String>>,
    pub last_seen: Instant,
    /// Ports of its range held by something outside the platform (last heartbeat).
    pub busy_ports: BTreeSet<u16>,
    /// A full heartbeat of the agent was decided since this state knows it (and since it
    /// was last lost): its delta heartbeats can be trusted (see `scheduler::delta`).
    pub full_report_seen: bool,
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

/// What an agent's tasks hold of it (every task, killing ones too, as placement counts
/// them), kept up to date as tasks come and go so that placement never sums all tasks.
#[derive(Debug, Default, Clone)]
pub struct AgentUsage {
    pub cpus: f64,
    pub mem: f64,
    pub disk: f64,
    /// Host ports held, with how many tasks hold each.
    pub ports: BTreeMap<u16, u32>,
    /// The keys of `ports`, shared with placement's views (see [`State::base_slots`]).
    pub port_set: std::sync::Arc<BTreeSet<u16>>,
}

#[derive(Default)]
pub struct State {
    pub apps: BTreeMap<String, AppEntry>,
    /// Change only through [`State::put_task`] and [`State::remove_task`]: the indexes
    /// below follow them.
    pub tasks: BTreeMap<String, TaskRecord>,
    /// Change only through [`State::put_deployment`] and [`State::remove_deployment`].
    pub deployments: BTreeMap<String, DeploymentRecord>,
    /// Task ids of each app, and of each agent (the scans of all tasks they replace made
    /// reconcile, heartbeats and the API linear in the cluster's size).
    tasks_by_app: HashMap<String, BTreeSet<String>>,
    tasks_by_agent: HashMap<String, BTreeSet<String>>,
    /// Ids of each agent's tasks being killed (a settled agent's delta heartbeat looks
    /// at these only, not at every task of the agent).
    killing_by_agent: HashMap<String, BTreeSet<String>>,
    usage: HashMap<String, AgentUsage>,
    /// Deployments each app takes part in: deployment id -> the app's step in it.
    deployments_by_app: HashMap<String, BTreeMap<String, usize>>,
    /// Apps done in each deployment's current step (memory only: see `progress`).
    pub deployment_progress: HashMap<String, StepProgress>,
    /// Apps holding each service port.
    service_port_owners: HashMap<u32, BTreeSet<String>>,
    /// `(from, floor)`: every service port in `from..floor` is held by some app, so the
    /// search for a free one starts at `floor` (it started at `from` and walked every
    /// port taken: quadratic in the apps created). Lowered when a port is freed.
    service_port_floor: Option<(u32, u32)>,
    pub agents: BTreeMap<String, AgentEntry>,
    pub counters: BTreeMap<String, u64>,
    /// API tokens by id (hashes only).
    pub tokens: BTreeMap<String, TokenRecord>,
    pub backoff: HashMap<String, Backoff>,
    pub queue: BTreeMap<String, QueueEntry>,
    /// Volume moves in progress (or just ended), by app id; memory only (see `moves`).
    pub moves: BTreeMap<String, crate::scheduler::moves::MoveRecord>,
    /// The store revision this state reflects (etcd's; 0 on redb): a change the follower
    /// watch reports at or below it is already here.
    pub revision: i64,
    /// When each agent's wanted tasks last changed (see `scheduler::delta`); agents not
    /// here have not changed since `generation_base`.
    generations: HashMap<String, u64>,
    generation_base: u64,
    /// What each agent was given since the generation it holds (partial answers).
    assignment_logs: HashMap<String, AssignmentLog>,
}

impl State {
    pub fn from_snapshot(snapshot: Snapshot) -> anyhow::Result<State> {
        let mut state = State {
            counters: snapshot.counters,
            revision: snapshot.revision,
            generation_base: crate::scheduler::delta::next_generation(),
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
            state.put_task(task);
        }
        for d in snapshot.deployments {
            state.put_deployment(d);
        }
        for record in snapshot.agents {
            let id = record.registration.agent_id.clone();
            state.agents.insert(
                id,
                AgentEntry {
                    attributes: std::sync::Arc::new(record.registration.attributes.clone()),
                    record,
                    last_seen: now,
                    busy_ports: BTreeSet::new(),
                    full_report_seen: false,
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
        // Deployments still at the same step keep what was found done in it.
        for (id, progress) in std::mem::take(&mut self.deployment_progress) {
            let step = |s: &State| s.deployments.get(&id).map(|d| d.current_step);
            if step(self).is_some() && step(self) == step(&fresh) {
                fresh.deployment_progress.insert(id, progress);
            }
        }
        *self = fresh;
        Ok(())
    }

    pub fn apply(&mut self, change: Change) -> anyhow::Result<()> {
        match change {
            Change::PutApp(record) => {
                let spec = AppSpec::from_definition(&record.definition)
                    .map_err(|d| anyhow::anyhow!("{d:?}"))
                    .with_context(|| format!("stored app {} is not valid", record.id))?;
                self.forget_service_ports(&record.id);
                for port in crate::api::appdef::service_ports(&spec) {
                    self.service_port_owners
                        .entry(port)
                        .or_default()
                        .insert(record.id.clone());
                }
                self.apps
                    .insert(record.id.clone(), AppEntry { record, spec });
            }
            Change::DeleteApp(id) => {
                self.forget_service_ports(&id);
                self.apps.remove(&id);
                self.queue.remove(&id);
                self.backoff.remove(&id);
            }
            Change::PutTask(task) => {
                self.put_task(*task);
            }
            Change::DeleteTask(id) => {
                self.remove_task(&id);
            }
            Change::PutDeployment(d) => {
                self.put_deployment(d);
            }
            Change::DeleteDeployment(id) => {
                self.remove_deployment(&id);
            }
            Change::PutAgent(record) => {
                let id = record.registration.agent_id.clone();
                match self.agents.get_mut(&id) {
                    Some(entry) => {
                        // A lost agent's deltas have no baseline any more.
                        if record.lost {
                            entry.full_report_seen = false;
                        }
                        if *entry.attributes != record.registration.attributes {
                            entry.attributes =
                                std::sync::Arc::new(record.registration.attributes.clone());
                        }
                        entry.record = record;
                    }
                    None => {
                        self.agents.insert(
                            id,
                            AgentEntry {
                                attributes: std::sync::Arc::new(
                                    record.registration.attributes.clone(),
                                ),
                                record,
                                last_seen: Instant::now(),
                                busy_ports: BTreeSet::new(),
                                full_report_seen: false,
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

    /// Adds or replaces a task, keeping the indexes.
    pub fn put_task(&mut self, task: TaskRecord) {
        if let Some(old) = self.tasks.get_mut(&task.id) {
            // A new state, health or kill of the same task on the same agent (what every
            // status report is): replaced in place, the indexes and the agent's usage
            // stay as they are.
            let same_place = old.agent_id == task.agent_id
                && old.app_id == task.app_id
                && old.spec.cpus == task.spec.cpus
                && old.spec.mem == task.spec.mem
                && old.spec.disk == task.spec.disk
                && old.spec.host_ports == task.spec.host_ports;
            if same_place {
                let told = old.killing != task.killing || old.spec != task.spec;
                let killing = (old.killing != task.killing).then_some(task.killing);
                *old = task;
                let (agent_id, id) = (old.agent_id.clone(), old.id.clone());
                if told {
                    let generation = self.assignments_changed(&agent_id);
                    if killing != Some(true) {
                        self.log_wanted(&agent_id, generation, &id);
                    }
                }
                match killing {
                    Some(true) => {
                        self.killing_by_agent
                            .entry(agent_id)
                            .or_default()
                            .insert(id);
                    }
                    Some(false) => {
                        remove_from(&mut self.killing_by_agent, &agent_id, &id);
                    }
                    None => {}
                }
                return;
            }
        }
        let told = match self.tasks.get(&task.id) {
            None => Some(self.assignments_changed(&task.agent_id)),
            Some(old) if old.agent_id != task.agent_id => {
                let old_agent = old.agent_id.clone();
                self.assignments_changed(&old_agent);
                Some(self.assignments_changed(&task.agent_id))
            }
            Some(old) if old.killing != task.killing || old.spec != task.spec => {
                Some(self.assignments_changed(&task.agent_id))
            }
            // A new state or health of the same task changes nothing the agent is told.
            Some(_) => None,
        };
        if let Some(generation) = told.filter(|_| !task.killing) {
            self.log_wanted(&task.agent_id, generation, &task.id);
        }
        self.unindex_task(&task.id);
        self.tasks_by_app
            .entry(task.app_id.clone())
            .or_default()
            .insert(task.id.clone());
        self.tasks_by_agent
            .entry(task.agent_id.clone())
            .or_default()
            .insert(task.id.clone());
        if task.killing {
            self.killing_by_agent
                .entry(task.agent_id.clone())
                .or_default()
                .insert(task.id.clone());
        }
        let usage = self.usage.entry(task.agent_id.clone()).or_default();
        usage.cpus += task.spec.cpus;
        usage.mem += task.spec.mem;
        usage.disk += task.spec.disk;
        for port in &task.spec.host_ports {
            let held = usage.ports.entry(*port).or_default();
            *held += 1;
            if *held == 1 {
                std::sync::Arc::make_mut(&mut usage.port_set).insert(*port);
            }
        }
        self.tasks.insert(task.id.clone(), task);
    }

    /// Removes a task (if known), keeping the indexes.
    pub fn remove_task(&mut self, id: &str) -> Option<TaskRecord> {
        let task = self.unindex_task(id)?;
        // A task being killed is no longer in the agent's answer already.
        if !task.killing {
            self.assignments_changed(&task.agent_id);
        }
        Some(task)
    }

    /// The generation of `agent_id`'s wanted tasks (see `scheduler::delta`).
    pub fn generation(&self, agent_id: &str) -> u64 {
        self.generations
            .get(agent_id)
            .copied()
            .unwrap_or(self.generation_base)
    }

    /// `agent_id`'s wanted tasks changed: a new generation, returned.
    fn assignments_changed(&mut self, agent_id: &str) -> u64 {
        let generation = crate::scheduler::delta::next_generation();
        self.generations.insert(agent_id.to_string(), generation);
        generation
    }

    /// `task_id` is wanted on `agent_id` as of `generation` with a spec the agent may not
    /// have: a partial answer carries it (logged only for agents that take them).
    fn log_wanted(&mut self, agent_id: &str, generation: u64, task_id: &str) {
        if let Some(log) = self.assignment_logs.get_mut(agent_id) {
            log.push(generation, task_id);
        }
    }

    /// Whether `held` is a generation of `agent_id`'s list this state handed out.
    fn handed_out(&self, agent_id: &str, held: u64) -> bool {
        (self.generation_base..=self.generation(agent_id)).contains(&held)
    }

    /// An agent that takes partial answers says it holds generation `held` of its list (in
    /// a heartbeat): what its log kept for older generations goes. Its first such heartbeat
    /// starts its log at the current generation (what was placed before was not logged: it
    /// gets its whole list once). A generation this state did not hand out is ignored.
    pub fn acknowledge_generation(&mut self, agent_id: &str, held: u64) {
        if !self.handed_out(agent_id, held) {
            return;
        }
        match self.assignment_logs.get_mut(agent_id) {
            Some(log) => log.acknowledge(held),
            None => {
                let log = AssignmentLog::starting_at(self.generation(agent_id));
                self.assignment_logs.insert(agent_id.to_string(), log);
            }
        }
    }

    /// For a partial answer to an agent holding generation `held`: the ids of every task
    /// wanted on it (in task id order, as a whole list), and the tasks it may not have
    /// (those logged after `held`, each once, in the order logged). None when `held` is
    /// not a generation this state can answer from (the agent gets the whole list).
    pub fn partial_answer(
        &self,
        agent_id: &str,
        held: u64,
    ) -> Option<(Vec<&str>, Vec<&TaskRecord>)> {
        if !self.handed_out(agent_id, held) {
            return None;
        }
        let new: Vec<&str> = self.assignment_logs.get(agent_id)?.since(held)?.collect();
        let killing = self.killing_by_agent.get(agent_id);
        let ids: Vec<&str> = self
            .tasks_by_agent
            .get(agent_id)
            .into_iter()
            .flatten()
            .filter(|id| !killing.is_some_and(|k| k.contains(*id)))
            .map(String::as_str)
            .collect();
        let mut seen: HashSet<&str> = HashSet::with_capacity(new.len());
        let tasks = new
            .into_iter()
            .filter(|id| seen.insert(id))
            .filter_map(|id| self.tasks.get(id))
            .filter(|t| t.agent_id == agent_id && !t.killing)
            .collect();
        Some((ids, tasks))
    }

    /// Removes a task from the map and the indexes.
    fn unindex_task(&mut self, id: &str) -> Option<TaskRecord> {
        let task = self.tasks.remove(id)?;
        remove_from(&mut self.tasks_by_app, &task.app_id, id);
        if task.killing {
            remove_from(&mut self.killing_by_agent, &task.agent_id, id);
        }
        let agent_empty = remove_from(&mut self.tasks_by_agent, &task.agent_id, id);
        if agent_empty {
            // Start again from exact zeros rather than keep float remainders.
            self.usage.remove(&task.agent_id);
        } else if let Some(usage) = self.usage.get_mut(&task.agent_id) {
            usage.cpus -= task.spec.cpus;
            usage.mem -= task.spec.mem;
            usage.disk -= task.spec.disk;
            for port in &task.spec.host_ports {
                if let Some(n) = usage.ports.get_mut(port) {
                    *n -= 1;
                    if *n == 0 {
                        usage.ports.remove(port);
                        std::sync::Arc::make_mut(&mut usage.port_set).remove(port);
                    }
                }
            }
        }
        Some(task)
    }

    /// A deployment as written (at its start, or moving to its next step): its progress
    /// starts from the record's `done` list, which only older versions filled; the record
    /// kept here has none (the progress is the one place that says).
    pub fn put_deployment(&mut self, mut d: DeploymentRecord) {
        self.remove_deployment(&d.id);
        for (step, actions) in d.steps.iter().enumerate() {
            for action in actions {
                self.deployments_by_app
                    .entry(action.app.clone())
                    .or_default()
                    .entry(d.id.clone())
                    .or_insert(step);
            }
        }
        self.deployment_progress
            .insert(d.id.clone(), StepProgress::of(&d));
        d.done.clear();
        self.deployments.insert(d.id.clone(), d);
    }

    /// Removes a deployment; the record returned lists its current step's done apps
    /// (so that putting it back loses nothing).
    pub fn remove_deployment(&mut self, id: &str) -> Option<DeploymentRecord> {
        let mut d = self.deployments.remove(id)?;
        for app in d.steps.iter().flatten() {
            if let Some(steps) = self.deployments_by_app.get_mut(&app.app) {
                steps.remove(id);
                if steps.is_empty() {
                    self.deployments_by_app.remove(&app.app);
                }
            }
        }
        if let Some(progress) = self.deployment_progress.remove(id) {
            let mut done: Vec<String> = progress.done.into_iter().collect();
            done.sort();
            d.done = done;
        }
        Some(d)
    }

    /// The step of deployment `deployment_id` that `app_id` belongs to (an index lookup:
    /// a deployment's steps may list thousands of apps).
    pub fn step_in(&self, deployment_id: &str, app_id: &str) -> Option<usize> {
        self.deployments_by_app
            .get(app_id)?
            .get(deployment_id)
            .copied()
    }

    fn forget_service_ports(&mut self, app_id: &str) {
        let Some(old) = self.apps.get(app_id) else {
            return;
        };
        for port in crate::api::appdef::service_ports(&old.spec) {
            let freed = remove_from(&mut self.service_port_owners, &port, app_id);
            if let Some((from, floor)) = &mut self.service_port_floor {
                if freed && port >= *from && port < *floor {
                    *floor = port;
                }
            }
        }
    }

    /// The lowest service port at or above `from` that no app holds; what a new app's
    /// free service ports are searched from.
    pub fn first_free_service_port(&mut self, from: u32) -> u32 {
        let mut port = match self.service_port_floor {
            Some((f, floor)) if f == from => floor,
            _ => from,
        };
        while self.service_port_owners.contains_key(&port) && port < u32::MAX {
            port += 1;
        }
        self.service_port_floor = Some((from, port));
        port
    }

    /// Whether `app_id` holds a service port below `port`.
    pub fn holds_service_port_below(&self, app_id: &str, port: u32) -> bool {
        self.apps.get(app_id).is_some_and(|app| {
            crate::api::appdef::service_ports(&app.spec)
                .iter()
                .any(|p| *p < port)
        })
    }

    /// An app's tasks, in task id order.
    pub fn tasks_of<'a>(&'a self, app_id: &str) -> impl Iterator<Item = &'a TaskRecord> + 'a {
        self.tasks_by_app
            .get(app_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.tasks.get(id))
    }

    /// An agent's tasks, in task id order.
    pub fn tasks_on<'a>(&'a self, agent_id: &str) -> impl Iterator<Item = &'a TaskRecord> + 'a {
        self.tasks_by_agent
            .get(agent_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.tasks.get(id))
    }

    /// An agent's tasks being killed, in task id order.
    pub fn killing_on<'a>(&'a self, agent_id: &str) -> impl Iterator<Item = &'a TaskRecord> + 'a {
        self.killing_by_agent
            .get(agent_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.tasks.get(id))
    }

    /// The deployments an app takes part in, in id order.
    pub fn deployments_of<'a>(
        &'a self,
        app_id: &str,
    ) -> impl Iterator<Item = &'a DeploymentRecord> + 'a {
        self.deployments_by_app
            .get(app_id)
            .into_iter()
            .flat_map(|steps| steps.keys())
            .filter_map(|id| self.deployments.get(id))
    }

    /// The deployment an app takes part in, if any (the first by id).
    pub fn deployment_of(&self, app_id: &str) -> Option<&DeploymentRecord> {
        self.deployments_of(app_id).next()
    }

    /// Whether an app other than `except` holds service port `port`.
    pub fn service_port_taken(&self, port: u32, except: &str) -> bool {
        self.service_port_owners
            .get(&port)
            .is_some_and(|apps| apps.iter().any(|a| a != except))
    }

    /// Placement's view of the live agents: capacity minus what their tasks use, with
    /// no app's task counts (see [`State::count_app_tasks`]).
    pub fn base_slots(&self) -> Vec<AgentSlot> {
        let mut slots: Vec<AgentSlot> = Vec::with_capacity(self.agents.len());
        for (id, entry) in &self.agents {
            if entry.record.lost {
                continue;
            }
            let r = &entry.record.registration;
            let usage = self.usage.get(id);
            // Shared, not copied: placement copies an agent's ports only when it places
            // there (a copy of every agent's per batch was a tenth of the CPU at 100,000
            // tasks). Ports held outside the platform are rare.
            let used_ports = match usage {
                Some(u) if entry.busy_ports.is_empty() => u.port_set.clone(),
                _ => {
                    let mut ports = entry.busy_ports.clone();
                    if let Some(u) = usage {
                        ports.extend(u.port_set.iter().copied());
                    }
                    std::sync::Arc::new(ports)
                }
            };
            slots.push(AgentSlot {
                id: id.clone(),
                hostname: r.hostname.clone(),
                attributes: entry.attributes.clone(),
                docker: r.docker,
                cpus: r.cpus,
                mem: r.mem,
                disk: r.disk,
                used_cpus: usage.map_or(0.0, |u| u.cpus),
                used_mem: usage.map_or(0.0, |u| u.mem),
                used_disk: usage.map_or(0.0, |u| u.disk),
                port_range: r.port_range,
                free_ports: crate::scheduler::placement::free_in_range(r.port_range, &used_ports),
                used_ports,
                app_tasks: 0,
            });
        }
        slots
    }

    /// Sets each slot's count of `app_id`'s live tasks. `counted` lists the slots whose
    /// count may not be zero (set by the previous app's count and placements): they are
    /// cleared, the others are zero already; it is left listing this app's. Found through
    /// the app's own tasks, one binary search of the slots (in agent id order, as
    /// [`State::base_slots`] builds them) per task: looking up every agent in a map of the
    /// app's counts hashed an agent id per agent and app (10,000 apps replaced after an
    /// agent loss: millions of hashes).
    pub fn count_app_tasks(&self, app_id: &str, slots: &mut [AgentSlot], counted: &mut Vec<usize>) {
        for index in counted.drain(..) {
            if let Some(slot) = slots.get_mut(index) {
                slot.app_tasks = 0;
            }
        }
        for task in self.tasks_of(app_id).filter(|t| !t.killing) {
            if let Ok(index) = slots.binary_search_by(|s| s.id.as_str().cmp(&task.agent_id)) {
                slots[index].app_tasks += 1;
                counted.push(index);
            }
        }
    }
}

/// Removes `value` from the set under `key`, dropping the set when it empties; whether it
/// did.
fn remove_from<K, Q, V>(index: &mut HashMap<K, BTreeSet<V>>, key: &Q, value: &V::Target) -> bool
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
    V: Ord + std::ops::Deref + std::borrow::Borrow<V::Target>,
    V::Target: Ord,
{
    let Some(set) = index.get_mut(key) else {
        return false;
    };
    set.remove(value);
    if set.is_empty() {
        index.remove(key);
        return true;
    }
    false
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
    serde_json::to_value(TaskJson {
        task,
        agent_address,
    })
    .unwrap_or_default()
}

/// A task as Marathon shows it, written straight from the record: lists of a hundred
/// thousand tasks are serialized without building a JSON tree of them first.
pub struct TaskJson<'a> {
    pub task: &'a TaskRecord,
    pub agent_address: Option<&'a str>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct IpAddress<'a> {
    ip_address: &'a str,
    protocol: &'static str,
}

impl serde::Serialize for TaskJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let task = self.task;
        let state = if task.killing {
            "TASK_KILLING".to_string()
        } else {
            state_name(task.state)
        };
        // A container network task is reached at its own address (none until its agent
        // reports it); others at their host's.
        let on_network = task
            .spec
            .docker
            .as_ref()
            .is_some_and(|d| d.network_name.is_some());
        let ips: Vec<IpAddress> = if task.ip_addresses.is_empty() && !on_network {
            vec![IpAddress {
                ip_address: self.agent_address.unwrap_or(&task.host),
                protocol: "IPv4",
            }]
        } else {
            task.ip_addresses
                .iter()
                .map(|ip| IpAddress {
                    ip_address: ip,
                    protocol: "IPv4",
                })
                .collect()
        };
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &task.id)?;
        map.serialize_entry("appId", &task.app_id)?;
        map.serialize_entry("host", &task.host)?;
        map.serialize_entry("ports", &task.spec.host_ports)?;
        map.serialize_entry("servicePorts", &task.service_ports)?;
        map.serialize_entry("slaveId", &task.agent_id)?;
        map.serialize_entry("state", &state)?;
        map.serialize_entry("stagedAt", &task.staged_at)?;
        map.serialize_entry("startedAt", &task.started_at)?;
        map.serialize_entry("version", &task.version)?;
        map.serialize_entry("ipAddresses", &ips)?;
        map.serialize_entry("localVolumes", &[(); 0])?;
        map.serialize_entry("region", &Value::Null)?;
        map.serialize_entry("zone", &Value::Null)?;
        map.serialize_entry("role", "*")?;
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
            map.serialize_entry("healthCheckResults", &results)?;
        }
        map.end()
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::reconcile::tests::app;

    /// An app holding these service ports.
    fn holding(id: &str, ports: &[u32]) -> Change {
        let defs: Vec<Value> = ports.iter().map(|p| json!({"port": p})).collect();
        Change::PutApp(app(json!({"id": id, "cmd": "x", "portDefinitions": defs})).record)
    }

    #[test]
    fn the_service_port_floor_moves_past_held_ports_and_back_to_freed_ones() {
        let mut state = State::default();
        assert_eq!(state.first_free_service_port(10000), 10000);
        state.apply(holding("/a", &[10000, 10001])).unwrap();
        state.apply(holding("/b", &[10002])).unwrap();
        // A held port far above does not stop the floor below it.
        state.apply(holding("/far", &[10010])).unwrap();
        assert_eq!(state.first_free_service_port(10000), 10003);
        // A port freed below the floor is found again.
        state.apply(Change::DeleteApp("/a".into())).unwrap();
        assert_eq!(state.first_free_service_port(10000), 10000);
        state.apply(holding("/c", &[10000, 10001, 10003])).unwrap();
        assert_eq!(state.first_free_service_port(10000), 10004);
        // An app changed to other ports frees the ones it left.
        state.apply(holding("/b", &[10005])).unwrap();
        assert_eq!(state.first_free_service_port(10000), 10002);
        // A search from another start is not misled by the floor of the first.
        assert_eq!(state.first_free_service_port(10005), 10006);
        assert_eq!(state.first_free_service_port(10000), 10002);
    }

    /// Status reports replace a task in place: what the agent is told, what it holds
    /// and which of its tasks are being killed follow every kind of change.
    /// Only an agent that asked for partial answers gets a log; its first answer after
    /// asking is whole (nothing before was logged), later ones carry only new tasks.
    #[test]
    fn assignments_are_logged_only_for_agents_that_take_partial_answers() {
        use crate::scheduler::placement::Strategy;
        use crate::scheduler::reconcile::{reconcile_app, tests::state_with};
        let mut state = state_with(
            json!({"id": "/w", "cmd": "x", "instances": 1, "cpus": 0.5, "mem": 16}),
            &["a"],
        );
        let place = |state: &mut State| {
            for change in reconcile_app(state, "/w", Strategy::Spread, Instant::now()).changes {
                state.apply(change).unwrap();
            }
        };
        place(&mut state);
        assert!(state.assignment_logs.is_empty(), "nobody asked");
        let before = state.generation("a");
        assert!(state.partial_answer("a", before).is_none());
        state.acknowledge_generation("a", before);
        let mut app = state.apps["/w"].record.clone();
        app.definition.insert("instances".into(), json!(2));
        state.apply(Change::PutApp(app)).unwrap();
        place(&mut state);
        let (ids, new) = state.partial_answer("a", before).expect("logged since");
        assert_eq!(ids.len(), 2);
        assert_eq!(new.len(), 1, "only the task placed after the agent asked");
        assert!(state.partial_answer("a", before - 1).is_none(), "older than the log");
    }

    #[test]
    fn a_task_replaced_in_place_keeps_its_indexes() {
        use crate::scheduler::placement::Strategy;
        use crate::scheduler::reconcile::{reconcile_app, tests::state_with};
        let mut state = state_with(
            json!({"id": "/w", "cmd": "x", "instances": 1, "cpus": 0.5, "mem": 16,
                   "portDefinitions": [{"port": 0}]}),
            &["a"],
        );
        for change in reconcile_app(&state, "/w", Strategy::Spread, Instant::now()).changes {
            state.apply(change).unwrap();
        }
        let mut task = state.tasks.values().next().unwrap().clone();
        let generation = state.generation("a");
        task.state = TaskState::Running;
        task.reported = true;
        state.put_task(task.clone());
        assert_eq!(state.generation("a"), generation, "a new state is not news");
        assert_eq!(state.tasks_on("a").count(), 1);
        assert_eq!(state.killing_on("a").count(), 0);
        assert_eq!(state.base_slots()[0].used_cpus, 0.5);
        task.killing = true;
        state.put_task(task.clone());
        assert_ne!(state.generation("a"), generation, "a kill is news");
        assert_eq!(
            state.killing_on("a").map(|t| &t.id).collect::<Vec<_>>(),
            [&task.id]
        );
        assert_eq!(
            state.base_slots()[0].used_cpus,
            0.5,
            "held until it is gone"
        );
        // Moved to another agent: indexed there, gone from the first.
        state
            .apply(Change::PutAgent(crate::scheduler::reconcile::tests::agent(
                "b",
            )))
            .unwrap();
        task.agent_id = "b".into();
        state.put_task(task.clone());
        assert_eq!(state.killing_on("a").count(), 0);
        assert_eq!(state.killing_on("b").count(), 1);
        assert_eq!(state.tasks_on("a").count(), 0);
        state.remove_task(&task.id);
        assert_eq!(state.killing_on("b").count(), 0);
        assert!(state.base_slots().iter().all(|s| s.used_cpus == 0.0));
    }

    #[test]
    fn a_port_two_apps_hold_stays_taken_when_one_lets_go() {
        let mut state = State::default();
        state.apply(holding("/a", &[10000])).unwrap();
        state.apply(holding("/b", &[10000])).unwrap();
        assert_eq!(state.first_free_service_port(10000), 10001);
        state.apply(Change::DeleteApp("/a".into())).unwrap();
        assert_eq!(state.first_free_service_port(10000), 10001);
        state.apply(Change::DeleteApp("/b".into())).unwrap();
        assert_eq!(state.first_free_service_port(10000), 10000);
    }

    #[test]
    fn the_placement_view_shares_the_ports_held_and_follows_tasks() {
        use crate::scheduler::placement::Strategy;
        use crate::scheduler::reconcile::{reconcile_app, tests::state_with};
        let mut state = state_with(
            json!({"id": "/w", "cmd": "x", "instances": 2, "cpus": 0.1, "mem": 16,
                   "portDefinitions": [{"port": 0}]}),
            &["a"],
        );
        assert!(state.base_slots()[0].used_ports.is_empty());
        for change in reconcile_app(&state, "/w", Strategy::Spread, Instant::now()).changes {
            state.apply(change).unwrap();
        }
        let held: BTreeSet<u16> = state
            .tasks
            .values()
            .flat_map(|t| t.spec.host_ports.iter().copied())
            .collect();
        assert_eq!(held.len(), 2);
        let mut view = state.base_slots();
        assert_eq!(*view[0].used_ports, held);
        // A placement in one batch's view copies; the state's ports stay.
        std::sync::Arc::make_mut(&mut view[0].used_ports).insert(31099);
        assert_eq!(*state.base_slots()[0].used_ports, held);
        // Ports held outside the platform are in the view too.
        state.agents.get_mut("a").unwrap().busy_ports.insert(31050);
        assert!(state.base_slots()[0].used_ports.contains(&31050));
        state.agents.get_mut("a").unwrap().busy_ports.clear();
        let first = state.tasks.keys().next().cloned().unwrap();
        let port = state.tasks[&first].spec.host_ports[0];
        state.apply(Change::DeleteTask(first)).unwrap();
        let view = state.base_slots();
        assert!(!view[0].used_ports.contains(&port));
        assert_eq!(view[0].used_ports.len(), 1);
    }

    #[test]
    fn an_app_below_the_floor_is_told_so() {
        let mut state = State::default();
        state.apply(holding("/a", &[10000])).unwrap();
        state.apply(holding("/b", &[10001])).unwrap();
        let floor = state.first_free_service_port(10000);
        assert!(state.holds_service_port_below("/a", floor));
        assert!(!state.holds_service_port_below("/new", floor));
        assert!(!state.holds_service_port_below("/a", 10000));
    }
}
