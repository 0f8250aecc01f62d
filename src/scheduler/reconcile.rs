//! Reconciling one app: desired (its definition, its deployment's step) against actual
//! (its live tasks) -> the deployment decision -> placement of the instances to start ->
//! the changes to commit and the events to publish. Level-triggered: running it again on
//! the same state changes nothing. Pure over [`State`]; the caller commits.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde_json::{json, Value};

use crate::api::agent::{
    DockerSpec, HealthCheckSpec, HealthProtocol, PortMapping, TaskSpec, TaskState, Volume,
};
use crate::api::appdef::AppSpec;
use crate::api::marathon::{self, event_types};
use crate::scheduler::clock;
use crate::scheduler::deployments::{decide, TaskView};
use crate::scheduler::events::Pending;
use crate::scheduler::placement::{place_with, AgentSlot, LoadOrder, Strategy};
use crate::scheduler::progress::{BatchProgress, Marked};
use crate::scheduler::residency::place_resident;
use crate::scheduler::state::{is_healthy, AppEntry, QueueEntry, State};
use crate::scheduler::store::{Change, DeploymentRecord, TaskRecord};

/// The result of one reconcile.
#[derive(Debug, Default)]
pub struct Reconciled {
    pub changes: Vec<Change>,
    pub events: Pending,
    /// The app's launch queue entry (None: nothing waiting).
    pub queue: Option<QueueEntry>,
    /// Apps to reconcile next (the next step of a deployment).
    pub follow_up: Vec<String>,
}

pub fn reconcile_app(state: &State, app_id: &str, strategy: Strategy, now: Instant) -> Reconciled {
    reconcile_app_on(state, app_id, strategy, now, &mut Batch::default())
}

/// What the apps reconciled before this one in the same batch (one reading of the state,
/// one commit) decided that the state does not show yet, so that each app is decided as
/// if the ones before it were committed.
#[derive(Default)]
pub struct Batch {
    /// Placement's view of the agents, built on first need; what is placed stays in it.
    pub slots: Option<Vec<AgentSlot>>,
    /// The slots whose count of the app being placed may not be zero (see
    /// [`State::count_app_tasks`]).
    counted: Vec<usize>,
    /// `slots` by load, built with them.
    order: LoadOrder,
    /// Deployments written in the batch (None: deleted).
    pub deployments: HashMap<String, Option<DeploymentRecord>>,
    /// Apps found done in the batch (committed to the state's progress after the batch's
    /// changes: see [`Batch::commit_progress`]).
    pub progress: BatchProgress,
}

impl Batch {
    /// Takes in the changes of one app's decision.
    pub fn record(&mut self, changes: &[Change]) {
        for change in changes {
            match change {
                Change::PutDeployment(d) => {
                    self.deployments.insert(d.id.clone(), Some(d.clone()));
                }
                Change::DeleteDeployment(id) => {
                    self.deployments.insert(id.clone(), None);
                }
                _ => {}
            }
        }
    }

    /// Adds the apps found done to `state`'s deployment progress; after the batch's
    /// changes are applied to it.
    pub fn commit_progress(self, state: &mut State) {
        self.progress.commit_to(&mut state.deployment_progress);
    }
}

/// The deployment an app takes part in, as the batch's `written` deployments left it.
fn deployment_in<'a>(
    written: &'a HashMap<String, Option<DeploymentRecord>>,
    state: &'a State,
    app_id: &str,
) -> Option<&'a DeploymentRecord> {
    state
        .deployments_of(app_id)
        .filter_map(|d| match written.get(&d.id) {
            Some(written) => written.as_ref(),
            None => Some(d),
        })
        .next()
}

/// [`reconcile_app`] as one app of a [`Batch`].
pub fn reconcile_app_on(
    state: &State,
    app_id: &str,
    strategy: Strategy,
    now: Instant,
    batch: &mut Batch,
) -> Reconciled {
    let mut out = Reconciled::default();
    let deployment = deployment_in(&batch.deployments, state, app_id);
    if let Some(d) = &deployment {
        if state
            .step_in(&d.id, app_id)
            .is_some_and(|s| s > d.current_step)
        {
            // Waits for the apps it depends on.
            return out;
        }
    }
    let live: Vec<&TaskRecord> = state.tasks_of(app_id).filter(|t| !t.killing).collect();
    let Some(app) = state.apps.get(app_id) else {
        for task in live {
            kill(&mut out, task);
        }
        if let Some(d) = deployment {
            app_done(&mut out, state, &mut batch.progress, d, app_id);
        }
        return out;
    };
    if let Some(reason) = crate::scheduler::moves::waits(state, app_id) {
        out.queue = (live.len() < spec_instances(app)).then(|| QueueEntry {
            count: spec_instances(app) - live.len(),
            reason: Some(reason),
            since: clock::now_rfc3339(),
            delay_until: None,
        });
        return out;
    }
    if let Some((from, reason)) = crate::scheduler::moves::hold(state, app_id) {
        // A move in its final phase: the old task stops, nothing starts until the data
        // has moved (or the move failed).
        for task in live.iter().filter(|t| t.agent_id == from) {
            kill(&mut out, task);
        }
        out.queue = Some(QueueEntry {
            count: spec_instances(app),
            reason: Some(reason),
            since: clock::now_rfc3339(),
            delay_until: None,
        });
        return out;
    }
    let views: Vec<TaskView> = live
        .iter()
        .map(|t| TaskView {
            id: t.id.clone(),
            old: t.config_version != app.record.config_version,
            healthy: is_healthy(t),
            staged_at: t.staged_at.clone(),
        })
        .collect();
    let spec_app = &app.spec.app;
    let decision = decide(
        &views,
        spec_app.instances as usize,
        &spec_app.upgrade_strategy,
        &spec_app.kill_selection,
    );
    for id in &decision.kill {
        if let Some(task) = live.iter().find(|t| &t.id == id) {
            kill(&mut out, task);
        }
    }
    let mut to_start = decision.start;
    let previous = state.queue.get(app_id);
    let since = previous
        .map(|q| q.since.clone())
        .unwrap_or_else(clock::now_rfc3339);
    if to_start > 0 {
        if let Some(backoff) = state.backoff.get(app_id) {
            if backoff.until > now {
                out.queue = Some(QueueEntry {
                    count: to_start,
                    reason: Some("waiting for the launch backoff".to_string()),
                    since: since.clone(),
                    delay_until: Some(backoff.until),
                });
                to_start = 0;
            }
        }
    }
    if to_start > 0 {
        let slots = match &mut batch.slots {
            Some(slots) => slots,
            None => {
                let slots = batch.slots.insert(state.base_slots());
                batch.order = LoadOrder::of(slots);
                slots
            }
        };
        state.count_app_tasks(app_id, slots, &mut batch.counted);
        let plan = if app.spec.has_persistent_volumes() {
            let resident = place_resident(state, app, to_start, slots, strategy);
            if let Some(residents) = resident.residents {
                let mut record = app.record.clone();
                record.resident_agents = residents;
                out.changes.push(Change::PutApp(record));
            }
            resident.plan
        } else {
            place_with(&app.spec, to_start, slots, strategy, Some(&mut batch.order))
        };
        for placement in &plan.placements {
            // Placed by the resident path: its slots' loads changed too.
            batch.order.update(placement.agent_index, slots);
        }
        // Placement raised these slots' counts of this app: cleared with the next app's.
        batch
            .counted
            .extend(plan.placements.iter().map(|p| p.agent_index));
        for placement in &plan.placements {
            let slot = &slots[placement.agent_index];
            let Some(agent) = state.agents.get(&slot.id) else {
                continue;
            };
            let task = build_task(app, &agent.record.registration, &placement.host_ports);
            out.events.push(
                event_types::STATUS_UPDATE,
                status_event(&task, "TASK_STAGING", ""),
            );
            out.changes.push(Change::PutTask(Box::new(task)));
        }
        let missing = to_start - plan.placements.len();
        if missing > 0 {
            out.queue = Some(QueueEntry {
                count: missing,
                reason: plan.reason.clone(),
                since,
                delay_until: None,
            });
        }
    }
    if let Some(d) = deployment {
        if decision.done && to_start == 0 && out.queue.is_none() {
            app_done(&mut out, state, &mut batch.progress, d, app_id);
        }
    }
    out
}

fn spec_instances(app: &AppEntry) -> usize {
    app.spec.app.instances as usize
}

fn kill(out: &mut Reconciled, task: &TaskRecord) {
    let mut killed = task.clone();
    killed.killing = true;
    out.events.push(
        event_types::STATUS_UPDATE,
        status_event(&killed, "TASK_KILLING", "killed by the scheduler"),
    );
    out.changes.push(Change::PutTask(Box::new(killed)));
}

/// Marks an app of the deployment's current step as done; advances or finishes the
/// deployment when it was the step's last. Writes the deployment only then: what is done
/// within a step is memory (see `scheduler::progress`), so a step of n apps costs one
/// write of the record, not n.
fn app_done(
    out: &mut Reconciled,
    state: &State,
    progress: &mut BatchProgress,
    d: &DeploymentRecord,
    app_id: &str,
) {
    if state.step_in(&d.id, app_id) != Some(d.current_step) {
        return;
    }
    let committed = state.deployment_progress.get(&d.id);
    if progress.mark(committed, d, app_id) != Marked::StepDone {
        return;
    }
    out.events.push(
        event_types::DEPLOYMENT_STEP_SUCCESS,
        deployment_event_fields(state, d),
    );
    if d.current_step + 1 >= d.steps.len() {
        out.events.push(
            event_types::DEPLOYMENT_SUCCESS,
            json!({"id": d.id, "plan": plan_json(state, d)}),
        );
        out.changes.push(Change::DeleteDeployment(d.id.clone()));
        return;
    }
    // Copied once per step: a deployment of many apps carries all their definitions.
    let mut next = d.clone();
    next.current_step += 1;
    next.done.clear();
    progress.next_step(&next);
    out.follow_up = next.steps[next.current_step]
        .iter()
        .map(|a| a.app.clone())
        .collect();
    out.events.push(
        event_types::DEPLOYMENT_INFO,
        deployment_event_fields(state, &next),
    );
    out.changes.push(Change::PutDeployment(next));
}

/// `plan` as Marathon's deployment events carry it.
pub fn plan_json(_state: &State, d: &DeploymentRecord) -> Value {
    let group = |defs: &BTreeMap<String, Option<serde_json::Map<String, Value>>>| {
        let apps: Vec<Value> = defs
            .values()
            .flatten()
            .map(|m| Value::Object(m.clone()))
            .collect();
        json!({"id": "/", "apps": apps, "groups": [], "dependencies": [], "version": d.version})
    };
    json!({
        "id": d.id,
        "version": d.version,
        "original": group(&d.original),
        "target": group(&d.target),
        "steps": steps_json(d),
    })
}

pub fn steps_json(d: &DeploymentRecord) -> Value {
    Value::Array(
        d.steps
            .iter()
            .map(|step| {
                json!({"actions": step.iter().map(|a| json!({"action": a.action, "app": a.app})).collect::<Vec<_>>()})
            })
            .collect(),
    )
}

/// Fields of deployment_info / deployment_step_success.
pub fn deployment_event_fields(state: &State, d: &DeploymentRecord) -> Value {
    let step = d.steps.get(d.current_step).cloned().unwrap_or_default();
    json!({
        "plan": plan_json(state, d),
        "currentStep": {"actions": step.iter().map(|a| json!({"action": a.action, "app": a.app})).collect::<Vec<_>>()},
    })
}

/// Fields of a status_update_event.
pub fn status_event(task: &TaskRecord, status: &str, message: &str) -> Value {
    json!({
        "slaveId": task.agent_id,
        "taskId": task.id,
        "taskStatus": status,
        "message": message,
        "appId": task.app_id,
        "host": task.host,
        "ipAddresses": [{"ipAddress": task.host, "protocol": "IPv4"}],
        "ports": task.spec.host_ports,
        "version": task.version,
    })
}

/// Fields of an instance_changed_event.
pub fn instance_changed_event(task: &TaskRecord, condition: &str) -> Value {
    json!({
        "instanceId": task.id,
        "slaveId": task.agent_id,
        "condition": condition,
        "host": task.host,
        "runSpecId": task.app_id,
        "runSpecVersion": task.version,
    })
}

fn env_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The environment Marathon gives a task: the app's env plus ports and identity.
pub fn task_env(
    spec: &AppSpec,
    version: &str,
    task_id: &str,
    host: &str,
    host_ports: &[u16],
) -> BTreeMap<String, String> {
    let app = &spec.app;
    let mut env: BTreeMap<String, String> = app
        .env
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
        .collect();
    for (i, port) in host_ports.iter().enumerate() {
        env.insert(format!("PORT{i}"), port.to_string());
        if let Some(request) = spec.ports.get(i) {
            if let Some(name) = &request.name {
                env.insert(format!("PORT_{}", env_name(name)), port.to_string());
            }
            let declared = request
                .container_port
                .map(u32::from)
                .unwrap_or(request.service_port);
            if declared != 0 {
                env.insert(format!("PORT_{declared}"), port.to_string());
            }
        }
    }
    if let Some(first) = host_ports.first() {
        env.insert("PORT".into(), first.to_string());
    }
    let ports: Vec<String> = host_ports.iter().map(u16::to_string).collect();
    env.insert("PORTS".into(), ports.join(","));
    env.insert("HOST".into(), host.to_string());
    env.insert("MARATHON_APP_ID".into(), app.id.clone());
    env.insert("MARATHON_APP_VERSION".into(), version.to_string());
    env.insert("MESOS_TASK_ID".into(), task_id.to_string());
    env.insert("MARATHON_APP_RESOURCE_CPUS".into(), app.cpus.to_string());
    env.insert("MARATHON_APP_RESOURCE_MEM".into(), app.mem.to_string());
    env.insert("MARATHON_APP_RESOURCE_DISK".into(), app.disk.to_string());
    let label_names: Vec<String> = app.labels.keys().map(|k| env_name(k)).collect();
    env.insert("MARATHON_APP_LABELS".into(), label_names.join(" "));
    for (k, v) in &app.labels {
        env.insert(format!("MARATHON_APP_LABEL_{}", env_name(k)), v.clone());
    }
    if let Some(image) = app
        .container
        .as_ref()
        .and_then(|c| c.docker.as_ref())
        .map(|d| d.image.clone())
    {
        env.insert("MARATHON_APP_DOCKER_IMAGE".into(), image);
    }
    env
}

fn health_specs(spec: &AppSpec, host_ports: &[u16]) -> Vec<HealthCheckSpec> {
    spec.app
        .health_checks
        .iter()
        .map(|hc| {
            let protocol = match hc.protocol.as_str() {
                "HTTPS" | "MESOS_HTTPS" => HealthProtocol::Https,
                "TCP" | "MESOS_TCP" => HealthProtocol::Tcp,
                "COMMAND" => HealthProtocol::Command,
                _ => HealthProtocol::Http,
            };
            let port = match hc.port {
                Some(p) => u16::try_from(p).ok(),
                None => host_ports.get(hc.port_index.unwrap_or(0) as usize).copied(),
            };
            HealthCheckSpec {
                protocol,
                path: hc.path.clone().or_else(|| Some("/".to_string())),
                port,
                command: hc
                    .command
                    .as_ref()
                    .and_then(|c| c.get("value"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                grace_period_seconds: hc.grace_period_seconds,
                interval_seconds: hc.interval_seconds,
                timeout_seconds: hc.timeout_seconds,
                max_consecutive_failures: hc.max_consecutive_failures,
                ignore_http1xx: hc.ignore_http1xx,
            }
        })
        .collect()
}

fn docker_spec(spec: &AppSpec, host_ports: &[u16]) -> Option<DockerSpec> {
    if !spec.is_docker() {
        return None;
    }
    let container = spec.app.container.as_ref()?;
    let docker = container.docker.as_ref()?;
    let network = spec.docker_network.clone().unwrap_or_else(|| "HOST".into());
    let port_mappings = if network == "BRIDGE" || network == "USER" {
        spec.ports
            .iter()
            .zip(host_ports)
            .map(|(req, host)| PortMapping {
                container_port: req.container_port.unwrap_or(*host),
                host_port: *host,
                protocol: req.protocol.clone(),
                name: req.name.clone(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let parameters = docker
        .parameters
        .iter()
        .filter_map(|p| {
            Some((
                p.get("key")?.as_str()?.to_string(),
                p.get("value")?.as_str()?.to_string(),
            ))
        })
        .collect();
    let volumes = container
        .volumes
        .iter()
        .filter_map(|v| {
            Some(Volume {
                container_path: v.get("containerPath")?.as_str()?.to_string(),
                host_path: v.get("hostPath")?.as_str()?.to_string(),
                mode: v
                    .get("mode")
                    .and_then(Value::as_str)
                    .unwrap_or("RW")
                    .to_string(),
            })
        })
        .collect();
    Some(DockerSpec {
        image: docker.image.clone(),
        network,
        port_mappings,
        force_pull_image: docker.force_pull_image,
        parameters,
        volumes,
        privileged: docker.privileged,
        network_name: spec.container_network.clone(),
        dns_domain: None,
    })
}

/// A new task of `app` on an agent, with its host ports.
pub fn build_task(
    app: &AppEntry,
    agent: &crate::api::agent::Registration,
    host_ports: &[u16],
) -> TaskRecord {
    let spec = &app.spec;
    let task_id = marathon::new_task_id(&spec.app.id);
    let version = app.record.version.clone();
    let env = task_env(spec, &version, &task_id, &agent.address, host_ports);
    let task_spec = TaskSpec {
        task_id: task_id.clone(),
        app_id: spec.app.id.clone(),
        app_version: version.clone(),
        cmd: spec.app.cmd.clone(),
        args: spec.app.args.clone(),
        env,
        labels: spec.app.labels.clone(),
        user: spec.app.user.clone(),
        cpus: spec.app.cpus,
        mem: spec.app.mem,
        disk: spec.app.disk,
        host_ports: host_ports.to_vec(),
        docker: docker_spec(spec, host_ports),
        health_checks: health_specs(spec, host_ports),
        kill_grace_period_seconds: spec
            .app
            .task_kill_grace_period_seconds
            .unwrap_or(marathon::DEFAULT_TASK_KILL_GRACE_PERIOD_SECONDS),
        persistent_volumes: spec.persistent_volumes(),
    };
    TaskRecord {
        id: task_id,
        app_id: spec.app.id.clone(),
        agent_id: agent.agent_id.clone(),
        host: agent.address.clone(),
        version,
        config_version: app.record.config_version.clone(),
        service_ports: spec.ports.iter().map(|p| p.service_port).collect(),
        staged_at: clock::now_rfc3339(),
        started_at: None,
        state: TaskState::Staging,
        health: Vec::new(),
        killing: false,
        reported: false,
        spec: task_spec,
        ip_addresses: Vec::new(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::scheduler::store::AppRecord;

    pub(crate) fn app(def: Value) -> AppEntry {
        let def = crate::api::appdef::normalize(
            def.as_object().unwrap().clone(),
            "2020-01-01T00:00:00.000Z",
            "2020-01-01T00:00:00.000Z",
            &|_| false,
            (10000, 20000),
        );
        let spec = AppSpec::from_definition(&def).unwrap();
        AppEntry {
            record: AppRecord {
                id: spec.app.id.clone(),
                definition: def,
                version: "2020-01-01T00:00:00.000Z".into(),
                config_version: "2020-01-01T00:00:00.000Z".into(),
                last_task_failure: None,
                resident_agents: Vec::new(),
            },
            spec,
        }
    }

    pub(crate) fn agent(name: &str) -> crate::scheduler::store::AgentRecord {
        crate::scheduler::store::AgentRecord {
            registration: crate::api::agent::Registration {
                agent_id: name.into(),
                hostname: name.into(),
                address: "127.0.0.1".into(),
                cpus: 2.0,
                mem: 1024.0,
                disk: 1000.0,
                port_range: (31000, 31100),
                attributes: Default::default(),
                docker: false,
                version: "t".into(),
                volume_url: None,
            },
            lost: false,
        }
    }

    /// One app and these agents, nothing placed yet.
    pub(crate) fn state_with(def: Value, agents: &[&str]) -> State {
        let mut state = State::default();
        let entry = app(def);
        state.apply(Change::PutApp(entry.record)).unwrap();
        for a in agents {
            state.apply(Change::PutAgent(agent(a))).unwrap();
        }
        state
    }

    #[test]
    fn reconcile_is_level_triggered() {
        let mut state = state_with(
            json!({"id": "/w", "cmd": "x", "instances": 2, "cpus": 0.5, "mem": 16}),
            &["a", "b"],
        );
        let first = reconcile_app(&state, "/w", Strategy::Spread, Instant::now());
        let launches = first
            .changes
            .iter()
            .filter(|c| matches!(c, Change::PutTask(_)))
            .count();
        assert_eq!(launches, 2);
        assert!(first.queue.is_none());
        for change in first.changes {
            state.apply(change).unwrap();
        }
        let again = reconcile_app(&state, "/w", Strategy::Spread, Instant::now());
        assert!(
            again.changes.is_empty(),
            "nothing more to do: {:?}",
            again.changes
        );
        let agents: std::collections::BTreeSet<&str> =
            state.tasks.values().map(|t| t.agent_id.as_str()).collect();
        assert_eq!(agents.len(), 2, "spread over both agents");
    }

    /// Reconciles `apps` as one batch and commits it to `state` as the worker does;
    /// returns the event types and the deployment writes, in order.
    fn run_batch(state: &mut State, apps: &[&str]) -> (Vec<String>, Vec<String>) {
        let mut batch = Batch::default();
        let mut changes = Vec::new();
        let mut events = Vec::new();
        for app in apps {
            let r = reconcile_app_on(state, app, Strategy::Spread, Instant::now(), &mut batch);
            batch.record(&r.changes);
            changes.extend(r.changes);
            events.extend(r.events.events.into_iter().map(|(kind, _)| kind));
        }
        let mut writes = Vec::new();
        for change in changes {
            match &change {
                Change::PutDeployment(d) => writes.push(format!("put step {}", d.current_step)),
                Change::DeleteDeployment(_) => writes.push("delete".into()),
                _ => {}
            }
            state.apply(change).unwrap();
        }
        batch.commit_progress(state);
        (events, writes)
    }

    /// A deployment of three apps in two steps (/c depends on /a and /b), all at their
    /// target at once (no instances): the events Marathon clients follow, in Marathon's
    /// order, and the record written only when a step ends, whether the apps finish in
    /// one batch or one per batch.
    #[test]
    fn a_deployment_is_written_per_step_and_its_events_keep_their_order() {
        let deployment = |state: &mut State| {
            let step = |apps: &[&str]| -> Vec<crate::scheduler::store::ActionRecord> {
                apps.iter()
                    .map(|a| crate::scheduler::store::ActionRecord {
                        action: "ScaleApplication".into(),
                        app: a.to_string(),
                    })
                    .collect()
            };
            state
                .apply(Change::PutDeployment(DeploymentRecord {
                    id: "d1".into(),
                    version: "v".into(),
                    steps: vec![step(&["/a", "/b"]), step(&["/c"])],
                    current_step: 0,
                    done: Vec::new(),
                    original: Default::default(),
                    target: Default::default(),
                }))
                .unwrap();
        };
        let mut state = State::default();
        for id in ["/a", "/b", "/c"] {
            let entry = app(json!({"id": id, "cmd": "x", "instances": 0}));
            state.apply(Change::PutApp(entry.record)).unwrap();
        }
        let expected = [
            event_types::DEPLOYMENT_STEP_SUCCESS,
            event_types::DEPLOYMENT_INFO,
            event_types::DEPLOYMENT_STEP_SUCCESS,
            event_types::DEPLOYMENT_SUCCESS,
        ];

        deployment(&mut state);
        // /c waits for the first step, whatever order the batch takes the apps in.
        let (events, writes) = run_batch(&mut state, &["/c", "/a", "/b", "/c"]);
        assert_eq!(events, expected);
        assert_eq!(writes, ["put step 1", "delete"]);
        assert!(state.deployments.is_empty());

        deployment(&mut state);
        let mut events = Vec::new();
        let mut writes = Vec::new();
        for apps in [&["/c", "/a"][..], &["/a"], &["/b"], &["/c"]] {
            let (e, w) = run_batch(&mut state, apps);
            events.extend(e);
            writes.extend(w);
        }
        assert_eq!(events, expected);
        assert_eq!(writes, ["put step 1", "delete"]);
        assert!(state.deployments.is_empty());
        assert!(state.deployment_progress.is_empty());
    }

    #[test]
    fn backoff_holds_launches_in_the_queue() {
        let mut state = state_with(
            json!({"id": "/w", "cmd": "x", "cpus": 0.5, "mem": 16}),
            &["a"],
        );
        state.backoff.insert(
            "/w".into(),
            crate::scheduler::state::Backoff {
                failures: 1,
                until: Instant::now() + std::time::Duration::from_secs(60),
            },
        );
        let r = reconcile_app(&state, "/w", Strategy::Spread, Instant::now());
        assert!(r.changes.is_empty());
        let queue = r.queue.unwrap();
        assert_eq!(queue.count, 1);
        assert_eq!(
            queue.reason.as_deref(),
            Some("waiting for the launch backoff")
        );
    }

    #[test]
    fn unplaceable_instances_wait_with_the_reason() {
        let state = state_with(
            json!({"id": "/big", "cmd": "x", "cpus": 4, "mem": 16}),
            &["a"],
        );
        let r = reconcile_app(&state, "/big", Strategy::Spread, Instant::now());
        assert_eq!(
            r.queue.unwrap().reason.as_deref(),
            Some("no agent with 4 free cpus")
        );
    }

    #[test]
    fn task_env_carries_ports_and_identity() {
        let a = app(json!({"id": "/g/web", "cmd": "x", "labels": {"team": "a"},
            "portDefinitions": [{"port": 0, "name": "http"}, {"port": 0}]}));
        let env = task_env(&a.spec, "v1", "g_web.1", "10.0.0.1", &[31000, 31001]);
        assert_eq!(env["PORT0"], "31000");
        assert_eq!(env["PORT1"], "31001");
        assert_eq!(env["PORT"], "31000");
        assert_eq!(env["PORT_HTTP"], "31000");
        assert_eq!(env["PORT_10000"], "31000");
        assert_eq!(env["PORTS"], "31000,31001");
        assert_eq!(env["HOST"], "10.0.0.1");
        assert_eq!(env["MARATHON_APP_ID"], "/g/web");
        assert_eq!(env["MARATHON_APP_VERSION"], "v1");
        assert_eq!(env["MESOS_TASK_ID"], "g_web.1");
        assert_eq!(env["MARATHON_APP_LABELS"], "TEAM");
        assert_eq!(env["MARATHON_APP_LABEL_TEAM"], "a");
    }

    #[test]
    fn health_checks_resolve_their_host_port() {
        let a = app(
            json!({"id": "/w", "cmd": "x", "portDefinitions": [{"port": 0}, {"port": 0}],
            "healthChecks": [{"protocol": "HTTP", "portIndex": 1}, {"protocol": "MESOS_TCP"}]}),
        );
        let checks = health_specs(&a.spec, &[31000, 31001]);
        assert_eq!(checks[0].port, Some(31001));
        assert_eq!(checks[0].path.as_deref(), Some("/"));
        assert_eq!(checks[0].grace_period_seconds, 300);
        assert_eq!(checks[1].protocol, HealthProtocol::Tcp);
        assert_eq!(checks[1].port, Some(31000));
    }
}
