//! The agent side of the scheduler: registration, and heartbeats that carry every task's
//! status (state changes, exits, health) and are answered with the agent's full list of
//! wanted tasks. Task exits and unhealthy tasks count towards the app's launch backoff;
//! tasks an agent stops reporting are lost; tasks being killed leave once the agent says so.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use serde_json::json;

use anyhow::Context;

use crate::api::agent::{Heartbeat, Registered, Registration, TaskSpec, TaskState};
use crate::api::marathon::event_types;
use crate::scheduler::clock;
use crate::scheduler::core::{counter, Scheduler, WriteGuard};
use crate::scheduler::deployments::backoff_delay;
use crate::scheduler::events::Pending;
use crate::scheduler::reconcile::{instance_changed_event, status_event};
use crate::scheduler::state::{state_name, Backoff, State};
use crate::scheduler::store::{AgentRecord, Change, StoreError, TaskRecord};

fn condition(state: TaskState) -> &'static str {
    match state {
        TaskState::Staging => "Staging",
        TaskState::Starting => "Starting",
        TaskState::Running => "Running",
        TaskState::Killing => "Killing",
        TaskState::Finished => "Finished",
        TaskState::Failed => "Failed",
        TaskState::Killed => "Killed",
        TaskState::Lost => "Unreachable",
    }
}

impl Scheduler {
    pub async fn register(&self, registration: Registration) -> anyhow::Result<Registered> {
        let agent_id = registration.agent_id.clone();
        {
            let writer = self.begin_write().await?;
            let record = AgentRecord {
                registration,
                lost: false,
            };
            self.commit(&writer, vec![Change::PutAgent(record)], Pending::default())
                .await?;
            if let Some(agent) = self.lock().agents.get_mut(&agent_id) {
                agent.last_seen = Instant::now();
            }
        }
        tracing::info!("agent {agent_id} registered");
        let waiting: Vec<String> = self.lock().queue.keys().cloned().collect();
        for app in waiting {
            self.enqueue(&app);
        }
        Ok(Registered {
            agent_id,
            heartbeat_interval_ms: self.config.heartbeat_interval.as_millis() as u64,
        })
    }

    /// Handles one heartbeat; None when the agent is unknown (it must register again).
    /// The decision is [`heartbeat_outcome`]'s. Heartbeats arriving while a write is
    /// under way wait in a queue, and whichever gets the writer next decides and commits
    /// all of them in one store transaction (a thousand agents heartbeat every couple of
    /// seconds). The answer is the agent's [`Assignments`](crate::api::agent::Assignments)
    /// as JSON, written from the state without copying the task specs.
    pub async fn heartbeat(
        &self,
        agent_id: &str,
        heartbeat: Heartbeat,
    ) -> anyhow::Result<Option<Vec<u8>>> {
        // The agent is alive now, however long the heartbeat then waits for the writer:
        // the timer must not declare it lost meanwhile.
        if let Some(agent) = self.lock().agents.get_mut(agent_id) {
            agent.last_seen = Instant::now();
        }
        let (reply, mut answer) = oneshot::channel();
        self.queued_heartbeats().push(QueuedHeartbeat {
            agent_id: agent_id.to_string(),
            heartbeat,
            reply,
        });
        loop {
            match self.begin_write().await {
                Ok(writer) => {
                    let batch = std::mem::take(&mut *self.queued_heartbeats());
                    if !batch.is_empty() {
                        self.commit_heartbeats(&writer, batch).await;
                    }
                }
                Err(err) => {
                    // Every heartbeat waiting would fail alike.
                    let batch = std::mem::take(&mut *self.queued_heartbeats());
                    for queued in batch {
                        let _ = queued.reply.send(Err(same_error(&err)));
                    }
                    return Err(err);
                }
            }
            match answer.try_recv() {
                Ok(result) => return result,
                // A second heartbeat of the same agent in one batch waits for the next.
                Err(oneshot::error::TryRecvError::Empty) => continue,
                Err(oneshot::error::TryRecvError::Closed) => {
                    anyhow::bail!("the heartbeat of {agent_id} was dropped")
                }
            }
        }
    }

    fn queued_heartbeats(&self) -> std::sync::MutexGuard<'_, Vec<QueuedHeartbeat>> {
        self.heartbeats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Agents whose heartbeat arrived and waits for the writer. They are alive however
    /// long the writer is busy: the timer, which may get the writer before their batch
    /// does, must not declare them lost for a wait that is the scheduler's own.
    pub(crate) fn agents_awaiting_answer(&self) -> HashSet<String> {
        self.queued_heartbeats()
            .iter()
            .map(|queued| queued.agent_id.clone())
            .collect()
    }

    /// Decides the heartbeats of one batch in turn, as if each were committed before the
    /// next (agents' tasks are disjoint; counters add up; in-memory effects take effect at
    /// once, as for one heartbeat), commits them together and answers each.
    async fn commit_heartbeats(&self, writer: &WriteGuard<'_>, batch: Vec<QueuedHeartbeat>) {
        let now = Instant::now();
        let mut changes: Vec<Change> = Vec::new();
        let mut events = Pending::default();
        let mut apps: BTreeSet<String> = BTreeSet::new();
        let mut counted: BTreeMap<String, u64> = BTreeMap::new();
        let mut decided: Vec<QueuedHeartbeat> = Vec::new();
        let mut later: Vec<QueuedHeartbeat> = Vec::new();
        {
            let mut state = self.lock();
            let mut agents: HashSet<String> = HashSet::new();
            for queued in batch {
                if !agents.insert(queued.agent_id.clone()) {
                    later.push(queued);
                    continue;
                }
                let agent_id = queued.agent_id.as_str();
                let Some(outcome) = heartbeat_outcome(&state, agent_id, &queued.heartbeat, now)
                else {
                    let _ = queued.reply.send(Ok(None));
                    continue;
                };
                // What only lives in memory takes effect at once.
                if let Some(agent) = state.agents.get_mut(agent_id) {
                    agent.last_seen = now;
                    agent.full_report_seen |= !queued.heartbeat.delta;
                    agent.busy_ports = queued.heartbeat.busy_ports.iter().copied().collect();
                }
                if let (true, Some(held)) = (queued.heartbeat.partial, queued.heartbeat.generation)
                {
                    state.acknowledge_generation(agent_id, held);
                }
                let (move_changes, move_apps) = crate::scheduler::moves::note_progress(
                    &mut state,
                    agent_id,
                    &queued.heartbeat.volume_moves,
                );
                changes.extend(move_changes);
                apps.extend(move_apps);
                for (app, backoff) in &outcome.backoff {
                    state.backoff.insert(app.clone(), backoff.clone());
                }
                for task in &outcome.health_only {
                    state.put_task(task.clone());
                }
                if outcome.agent_back {
                    tracing::info!("agent {agent_id} is back");
                }
                for change in outcome.changes {
                    match change {
                        Change::SetCounter(name, value) => {
                            let base = state.counters.get(&name).copied().unwrap_or(0);
                            *counted.entry(name).or_default() += value.saturating_sub(base);
                        }
                        other => changes.push(other),
                    }
                }
                events.events.extend(outcome.events.events);
                apps.extend(outcome.apps);
                decided.push(queued);
            }
            for (name, by) in counted {
                changes.push(counter(&state, &name, by));
            }
        }
        if !later.is_empty() {
            self.queued_heartbeats().extend(later);
        }
        if let Err(err) = self.commit(writer, changes, events).await {
            for queued in decided {
                let _ = queued.reply.send(Err(same_error(&err)));
            }
            return;
        }
        {
            let state = self.lock();
            for queued in decided {
                let answer = assignments_json(&state, &queued.agent_id, &queued.heartbeat);
                let _ = queued.reply.send(answer.map(Some));
            }
        }
        for app in apps {
            self.enqueue(&app);
        }
    }
}

/// A heartbeat waiting for the next batch.
pub struct QueuedHeartbeat {
    agent_id: String,
    heartbeat: Heartbeat,
    reply: oneshot::Sender<anyhow::Result<Option<Vec<u8>>>>,
}

/// The error of a batch, for each heartbeat in it (the API answers 503 to both kinds of
/// store error).
fn same_error(err: &anyhow::Error) -> anyhow::Error {
    match err.downcast_ref::<StoreError>() {
        Some(StoreError::NotLeader) => anyhow::Error::new(StoreError::NotLeader),
        Some(StoreError::Unavailable(m)) => anyhow::Error::new(StoreError::Unavailable(m.clone())),
        None => anyhow::anyhow!("{err:#}"),
    }
}

/// The heartbeat answer: the agent's tasks (but those being killed), or `unchanged` when
/// the agent holds the current generation of them (see [`crate::scheduler::delta`]), or,
/// to an agent that takes partial answers, every task's id and the specs of the tasks new
/// since the generation it holds; with the volume work the agent has.
fn assignments_json(
    state: &State,
    agent_id: &str,
    heartbeat: &Heartbeat,
) -> anyhow::Result<Vec<u8>> {
    let generation = state.generation(agent_id);
    let unchanged = heartbeat.generation == Some(generation);
    let partial = match heartbeat.generation {
        Some(held) if heartbeat.partial && !unchanged => state.partial_answer(agent_id, held),
        _ => None,
    };
    let (task_ids, tasks): (Option<Vec<&str>>, Option<Vec<&TaskSpec>>) = match partial {
        _ if unchanged => (None, None),
        Some((ids, new)) => (Some(ids), Some(new.into_iter().map(|t| &t.spec).collect())),
        None => (
            None,
            Some(
                state
                    .tasks_on(agent_id)
                    .filter(|t| !t.killing)
                    .map(|t| &t.spec)
                    .collect(),
            ),
        ),
    };
    let volume_moves = crate::scheduler::moves::assignments_for(state, agent_id);
    let mut volume_releases = crate::scheduler::moves::releases_for(state, agent_id);
    volume_releases.extend(crate::scheduler::moves::volumes_of_destroyed_apps(
        state,
        &heartbeat.volumes,
    ));
    let full_report = heartbeat.delta
        && !state
            .agents
            .get(agent_id)
            .is_some_and(|agent| agent.full_report_seen);
    serde_json::to_vec(&AssignmentsView {
        tasks,
        task_ids,
        volume_moves,
        volume_releases,
        generation,
        unchanged,
        full_report,
    })
    .context("writing the assignments")
}

/// [`Assignments`](crate::api::agent::Assignments) borrowed from the state (the same
/// JSON).
#[derive(serde::Serialize)]
struct AssignmentsView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    tasks: Option<Vec<&'a TaskSpec>>,
    #[serde(rename = "taskIds", skip_serializing_if = "Option::is_none")]
    task_ids: Option<Vec<&'a str>>,
    #[serde(rename = "volumeMoves", skip_serializing_if = "Vec::is_empty")]
    volume_moves: Vec<crate::api::moves::VolumeMove>,
    #[serde(rename = "volumeReleases", skip_serializing_if = "Vec::is_empty")]
    volume_releases: Vec<String>,
    generation: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    unchanged: bool,
    #[serde(rename = "fullReport", skip_serializing_if = "std::ops::Not::not")]
    full_report: bool,
}

/// What one heartbeat decides, before anything is committed.
#[derive(Debug, Default)]
pub struct HeartbeatOutcome {
    /// Durable changes: task states, lost or finished tasks, apps' last failures, counters.
    pub changes: Vec<Change>,
    pub events: Pending,
    /// Apps to reconcile afterwards.
    pub apps: BTreeSet<String>,
    /// Apps whose launch backoff grows (memory only).
    pub backoff: Vec<(String, Backoff)>,
    /// Tasks whose health details changed and nothing else (memory only: not worth a
    /// write per heartbeat).
    pub health_only: Vec<TaskRecord>,
    /// The agent had been declared lost.
    pub agent_back: bool,
}

impl HeartbeatOutcome {
    /// A task changed state: Marathon's status_update_event and instance_changed_event.
    fn status_changed(&mut self, task: &TaskRecord, name: &str, message: &str, state: TaskState) {
        self.events.push(
            event_types::STATUS_UPDATE,
            status_event(task, name, message),
        );
        self.events.push(
            event_types::INSTANCE_CHANGED,
            instance_changed_event(task, condition(state)),
        );
    }
}

/// The pure transition of one heartbeat of `agent_id` over `state`: every reported status
/// against what the scheduler knows, and the agent's tasks it no longer reports. None when
/// the agent is unknown.
pub fn heartbeat_outcome(
    state: &State,
    agent_id: &str,
    heartbeat: &Heartbeat,
    now: Instant,
) -> Option<HeartbeatOutcome> {
    let agent = state.agents.get(agent_id)?;
    let mut out = HeartbeatOutcome::default();
    if agent.record.lost {
        let mut record = agent.record.clone();
        record.lost = false;
        out.agent_back = true;
        out.changes.push(Change::PutAgent(record));
    }
    // Each reported task looked up by id (a delta reports a few, or none).
    let mut reported: HashSet<&str> = HashSet::with_capacity(heartbeat.tasks.len());
    let mut failures = 0u64;
    for status in &heartbeat.tasks {
        let Some(task) = state
            .tasks
            .get(&status.task_id)
            .filter(|t| t.agent_id == agent_id)
        else {
            continue;
        };
        reported.insert(task.id.as_str());
        // Most reports of a settled cluster say what is known already: nothing to decide,
        // nothing to copy (what follows would change nothing either).
        let unchanged = task.reported
            && status.state == task.state
            && status.health == task.health
            && status.ip_addresses == task.ip_addresses
            && (task.spec.health_checks.is_empty() || !unhealthy_past_grace(task));
        if unchanged {
            continue;
        }
        let name = state_name(status.state);
        if task.killing {
            if status.state.is_terminal() {
                let message = status.message.as_deref().unwrap_or("");
                out.status_changed(task, &name, message, status.state);
                out.changes.push(Change::DeleteTask(task.id.clone()));
                out.apps.insert(task.app_id.clone());
            } else if !task.reported {
                // The agent has it (to kill): a delta heartbeat that leaves it out later
                // must not take it for one the agent never had (see below).
                let mut t = task.clone();
                t.reported = true;
                out.changes.push(Change::PutTask(Box::new(t)));
            }
            continue;
        }
        let message = status.message.clone().unwrap_or_default();
        if status.state.is_terminal() {
            out.status_changed(task, &name, &message, status.state);
            task_failed(state, task, &name, &message, now, &mut out);
            failures += 1;
            out.changes.push(Change::DeleteTask(task.id.clone()));
            out.apps.insert(task.app_id.clone());
            continue;
        }
        let mut t = task.clone();
        let mut durable = !t.reported;
        t.reported = true;
        if status.ip_addresses != t.ip_addresses {
            t.ip_addresses = status.ip_addresses.clone();
            durable = true;
            out.apps.insert(t.app_id.clone());
        }
        if status.state != t.state {
            t.state = status.state;
            durable = true;
            if t.state == TaskState::Running && t.started_at.is_none() {
                t.started_at = Some(status.started_at.clone().unwrap_or_else(clock::now_rfc3339));
            }
            out.status_changed(&t, &name, &message, t.state);
            out.apps.insert(t.app_id.clone());
        }
        for report in &status.health {
            let before = task.health.iter().find(|h| h.index == report.index);
            if before.map(|b| b.alive) != Some(report.alive) {
                durable = true;
                out.apps.insert(t.app_id.clone());
                out.events.push(
                    event_types::HEALTH_STATUS_CHANGED,
                    json!({"appId": t.app_id, "taskId": t.id, "instanceId": t.id,
                           "version": t.version, "alive": report.alive}),
                );
            }
            let was = before.map(|b| b.consecutive_failures).unwrap_or(0);
            if !report.alive && report.consecutive_failures > was {
                let check = state
                    .apps
                    .get(&t.app_id)
                    .and_then(|a| a.spec.app.health_checks.get(report.index))
                    .map(|hc| serde_json::to_value(hc).unwrap_or_default())
                    .unwrap_or_default();
                out.events.push(
                    event_types::FAILED_HEALTH_CHECK,
                    json!({"appId": t.app_id, "taskId": t.id, "instanceId": t.id,
                           "version": t.version, "healthCheck": check}),
                );
            }
        }
        t.health = status.health.clone();
        if unhealthy_past_grace(&t) {
            t.killing = true;
            durable = true;
            out.apps.insert(t.app_id.clone());
            out.events.push(
                event_types::STATUS_UPDATE,
                status_event(&t, "TASK_KILLING", "failed its health checks"),
            );
            task_failed(state, &t, "TASK_KILLED", "unhealthy", now, &mut out);
            failures += 1;
        }
        if durable {
            out.changes.push(Change::PutTask(Box::new(t)));
        } else {
            // Health details only: kept in memory, not worth a write per heartbeat.
            out.health_only.push(t);
        }
    }
    // A delta leaves out what did not change; the agent holds the current list (so
    // never had a task being killed that it never reported: see `scheduler::delta`).
    let holds_current = heartbeat.generation == Some(state.generation(agent_id));
    // What a delta leaves out is looked at only among the tasks being killed; a full
    // heartbeat's among all the agent's tasks.
    let left_out: Box<dyn Iterator<Item = &TaskRecord>> = match (heartbeat.delta, holds_current) {
        (false, _) => Box::new(state.tasks_on(agent_id)),
        (true, true) => Box::new(state.killing_on(agent_id)),
        (true, false) => Box::new(std::iter::empty()),
    };
    for task in left_out {
        if reported.contains(task.id.as_str()) {
            continue;
        }
        if heartbeat.delta && !(task.killing && !task.reported && holds_current) {
            continue;
        }
        if task.killing {
            out.events.push(
                event_types::STATUS_UPDATE,
                status_event(task, "TASK_KILLED", ""),
            );
            out.changes.push(Change::DeleteTask(task.id.clone()));
            out.apps.insert(task.app_id.clone());
        } else if task.reported {
            out.events.push(
                event_types::STATUS_UPDATE,
                status_event(task, "TASK_LOST", "no longer reported by its agent"),
            );
            out.changes.push(Change::DeleteTask(task.id.clone()));
            out.apps.insert(task.app_id.clone());
        }
    }
    if failures > 0 {
        out.changes
            .push(counter(state, "tasks_failed_total", failures));
    }
    Some(out)
}

/// Records an app's task failure: backoff (on top of one this heartbeat already grew),
/// lastTaskFailure.
fn task_failed(
    state: &State,
    task: &TaskRecord,
    status: &str,
    message: &str,
    now: Instant,
    out: &mut HeartbeatOutcome,
) {
    let Some(app) = state.apps.get(&task.app_id) else {
        return;
    };
    let a = &app.spec.app;
    let earlier = out
        .backoff
        .iter()
        .rev()
        .find(|(id, _)| *id == task.app_id)
        .map(|(_, b)| b)
        .or_else(|| state.backoff.get(&task.app_id));
    let failures = earlier.map(|b| b.failures).unwrap_or(0) + 1;
    let delay = backoff_delay(
        failures,
        a.backoff_seconds,
        a.backoff_factor,
        a.max_launch_delay_seconds,
    );
    out.backoff.push((
        task.app_id.clone(),
        Backoff {
            failures,
            until: now + Duration::from_secs_f64(delay),
        },
    ));
    let mut record = app.record.clone();
    record.last_task_failure = Some(json!({
        "appId": task.app_id,
        "host": task.host,
        "message": message,
        "state": status,
        "taskId": task.id,
        "timestamp": clock::now_rfc3339(),
        "version": task.version,
        "slaveId": task.agent_id,
    }));
    out.changes.push(Change::PutApp(record));
}

/// A running task whose health check failed maxConsecutiveFailures times in a row after
/// its grace period (0 disables killing, as in Marathon).
fn unhealthy_past_grace(task: &TaskRecord) -> bool {
    if task.state != TaskState::Running {
        return false;
    }
    let started = task
        .started_at
        .as_deref()
        .and_then(clock::parse)
        .unwrap_or_else(chrono::Utc::now);
    let age = (chrono::Utc::now() - started).num_seconds().max(0) as u64;
    task.spec
        .health_checks
        .iter()
        .enumerate()
        .any(|(i, check)| {
            check.max_consecutive_failures > 0
                && age >= check.grace_period_seconds
                && task.health.iter().any(|h| {
                    h.index == i
                        && !h.alive
                        && h.consecutive_failures >= check.max_consecutive_failures
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::agent::TaskStatus;
    use crate::scheduler::placement::Strategy;
    use crate::scheduler::reconcile::reconcile_app;
    use crate::scheduler::reconcile::tests::state_with;

    /// One app of two instances placed on agent `a`.
    fn placed() -> State {
        let mut state = state_with(
            json!({"id": "/w", "cmd": "x", "instances": 2, "cpus": 0.1, "mem": 16,
                   "backoffSeconds": 2}),
            &["a"],
        );
        for change in reconcile_app(&state, "/w", Strategy::Spread, Instant::now()).changes {
            state.apply(change).unwrap();
        }
        // Then the agent went silent and was declared lost.
        let mut record = state.agents["a"].record.clone();
        record.lost = true;
        state.apply(Change::PutAgent(record)).unwrap();
        state
    }

    fn status(id: &str, state: TaskState, message: Option<&str>) -> TaskStatus {
        TaskStatus {
            task_id: id.into(),
            app_id: "/w".into(),
            state,
            host_ports: Vec::new(),
            health: Vec::new(),
            started_at: Some("2020-01-01T00:00:01.000Z".into()),
            exit_code: None,
            message: message.map(str::to_string),
            ip_addresses: Vec::new(),
        }
    }

    #[test]
    fn a_heartbeat_decides_without_touching_the_state() {
        let state = placed();
        let ids: Vec<String> = state.tasks.keys().cloned().collect();
        assert_eq!(ids.len(), 2);
        let heartbeat = Heartbeat {
            tasks: vec![status(
                &ids[0],
                TaskState::Failed,
                Some("Command exited with status 1"),
            )],
            busy_ports: Vec::new(),
            output: Vec::new(),
            volume_moves: Vec::new(),
            volumes: Vec::new(),
            generation: None,
            delta: false,
            partial: false,
        };
        let now = Instant::now();
        let out = heartbeat_outcome(&state, "a", &heartbeat, now).unwrap();
        // The agent is back, the failed task goes, and the app records why.
        assert!(out.agent_back);
        assert!(out.changes.contains(&Change::DeleteTask(ids[0].clone())));
        let failure = out.changes.iter().find_map(|c| match c {
            Change::PutApp(app) => app.last_task_failure.clone(),
            _ => None,
        });
        assert_eq!(
            failure.and_then(|f| f["message"].as_str().map(str::to_string)),
            Some("Command exited with status 1".to_string())
        );
        assert_eq!(out.backoff.len(), 1);
        assert_eq!(out.backoff[0].1.failures, 1);
        assert!(out.backoff[0].1.until > now);
        // The task it never reported was never reported before either: it stays.
        assert!(!out.changes.contains(&Change::DeleteTask(ids[1].clone())));
        assert!(out
            .changes
            .contains(&Change::SetCounter("tasks_failed_total".into(), 1)));
        assert_eq!(out.apps, BTreeSet::from(["/w".to_string()]));
        // Nothing happened to the state itself.
        assert_eq!(state.tasks.len(), 2);
        assert!(state.backoff.is_empty());
        assert!(heartbeat_outcome(&state, "nobody", &heartbeat, now).is_none());
    }

    #[test]
    fn a_reported_task_the_agent_stops_reporting_is_lost() {
        let mut state = placed();
        let ids: Vec<String> = state.tasks.keys().cloned().collect();
        let running = Heartbeat {
            tasks: ids
                .iter()
                .map(|id| status(id, TaskState::Running, None))
                .collect(),
            busy_ports: Vec::new(),
            output: Vec::new(),
            volume_moves: Vec::new(),
            volumes: Vec::new(),
            generation: None,
            delta: false,
            partial: false,
        };
        let out = heartbeat_outcome(&state, "a", &running, Instant::now()).unwrap();
        for change in out.changes {
            state.apply(change).unwrap();
        }
        assert!(state
            .tasks
            .values()
            .all(|t| t.reported && t.started_at.is_some()));
        let only_first = Heartbeat {
            tasks: vec![status(&ids[0], TaskState::Running, None)],
            busy_ports: Vec::new(),
            output: Vec::new(),
            volume_moves: Vec::new(),
            volumes: Vec::new(),
            generation: None,
            delta: false,
            partial: false,
        };
        let out = heartbeat_outcome(&state, "a", &only_first, Instant::now()).unwrap();
        assert!(!out.agent_back, "the first heartbeat brought it back");
        assert_eq!(out.changes, vec![Change::DeleteTask(ids[1].clone())]);
        assert_eq!(out.events.events[0].1["taskStatus"], json!("TASK_LOST"));
    }
}
