//! The agent side of the scheduler: registration, and heartbeats that carry every task's
//! status (state changes, exits, health) and are answered with the agent's full list of
//! wanted tasks. Task exits and unhealthy tasks count towards the app's launch backoff;
//! tasks an agent stops reporting are lost; tasks being killed leave once the agent says so.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::api::agent::{Assignments, Heartbeat, Registered, Registration, TaskState};
use crate::api::marathon::event_types;
use crate::scheduler::clock;
use crate::scheduler::core::{counter, Scheduler};
use crate::scheduler::deployments::backoff_delay;
use crate::scheduler::events::Pending;
use crate::scheduler::reconcile::{instance_changed_event, status_event};
use crate::scheduler::state::{state_name, Backoff, State};
use crate::scheduler::store::{AgentRecord, Change, TaskRecord};

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

    /// Records an app's task failure: backoff, lastTaskFailure, counter.
    fn task_failed(
        &self,
        state: &mut State,
        task: &TaskRecord,
        status: &str,
        message: &str,
        changes: &mut Vec<Change>,
    ) {
        let Some(app) = state.apps.get(&task.app_id) else {
            return;
        };
        let a = &app.spec.app;
        let failures = state
            .backoff
            .get(&task.app_id)
            .map(|b| b.failures)
            .unwrap_or(0)
            + 1;
        let delay = backoff_delay(
            failures,
            a.backoff_seconds,
            a.backoff_factor,
            a.max_launch_delay_seconds,
        );
        state.backoff.insert(
            task.app_id.clone(),
            Backoff {
                failures,
                until: Instant::now() + Duration::from_secs_f64(delay),
            },
        );
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
        changes.push(Change::PutApp(record));
    }

    /// Handles one heartbeat; None when the agent is unknown (it must register again).
    pub async fn heartbeat(
        &self,
        agent_id: &str,
        heartbeat: Heartbeat,
    ) -> anyhow::Result<Option<Assignments>> {
        let writer = self.begin_write().await?;
        let mut pending = Pending::default();
        let mut apps: BTreeSet<String> = BTreeSet::new();
        let changes = {
            let mut state = self.lock();
            let Some(agent) = state.agents.get_mut(agent_id) else {
                return Ok(None);
            };
            agent.last_seen = Instant::now();
            agent.busy_ports = heartbeat.busy_ports.iter().copied().collect();
            let mut changes: Vec<Change> = Vec::new();
            if agent.record.lost {
                let mut record = agent.record.clone();
                record.lost = false;
                tracing::info!("agent {agent_id} is back");
                changes.push(Change::PutAgent(record));
            }
            let mut reported: BTreeSet<String> = BTreeSet::new();
            let mut failures = 0u64;
            for status in heartbeat.tasks {
                let Some(task) = state.tasks.get(&status.task_id).cloned() else {
                    continue;
                };
                if task.agent_id != agent_id {
                    continue;
                }
                reported.insert(task.id.clone());
                let name = state_name(status.state);
                if task.killing {
                    if status.state.is_terminal() {
                        pending.push(
                            event_types::STATUS_UPDATE,
                            status_event(&task, &name, status.message.as_deref().unwrap_or("")),
                        );
                        pending.push(
                            event_types::INSTANCE_CHANGED,
                            instance_changed_event(&task, condition(status.state)),
                        );
                        changes.push(Change::DeleteTask(task.id.clone()));
                        apps.insert(task.app_id.clone());
                    }
                    continue;
                }
                let message = status.message.clone().unwrap_or_default();
                if status.state.is_terminal() {
                    pending.push(
                        event_types::STATUS_UPDATE,
                        status_event(&task, &name, &message),
                    );
                    pending.push(
                        event_types::INSTANCE_CHANGED,
                        instance_changed_event(&task, condition(status.state)),
                    );
                    self.task_failed(&mut state, &task, &name, &message, &mut changes);
                    failures += 1;
                    changes.push(Change::DeleteTask(task.id.clone()));
                    apps.insert(task.app_id.clone());
                    continue;
                }
                let mut t = task.clone();
                let mut durable = !t.reported;
                t.reported = true;
                if status.state != t.state {
                    t.state = status.state;
                    durable = true;
                    if t.state == TaskState::Running && t.started_at.is_none() {
                        t.started_at =
                            Some(status.started_at.clone().unwrap_or_else(clock::now_rfc3339));
                    }
                    pending.push(
                        event_types::STATUS_UPDATE,
                        status_event(&t, &name, &message),
                    );
                    pending.push(
                        event_types::INSTANCE_CHANGED,
                        instance_changed_event(&t, condition(t.state)),
                    );
                    apps.insert(t.app_id.clone());
                }
                for report in &status.health {
                    let before = task.health.iter().find(|h| h.index == report.index);
                    if before.map(|b| b.alive) != Some(report.alive) {
                        durable = true;
                        apps.insert(t.app_id.clone());
                        pending.push(
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
                        pending.push(
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
                    apps.insert(t.app_id.clone());
                    pending.push(
                        event_types::STATUS_UPDATE,
                        status_event(&t, "TASK_KILLING", "failed its health checks"),
                    );
                    self.task_failed(&mut state, &t, "TASK_KILLED", "unhealthy", &mut changes);
                    failures += 1;
                }
                if durable {
                    changes.push(Change::PutTask(Box::new(t)));
                } else {
                    // Health details only: kept in memory, not worth a write per heartbeat.
                    state.tasks.insert(t.id.clone(), t);
                }
            }
            for task in state.tasks.values().filter(|t| t.agent_id == agent_id) {
                if reported.contains(&task.id) {
                    continue;
                }
                if task.killing {
                    pending.push(
                        event_types::STATUS_UPDATE,
                        status_event(task, "TASK_KILLED", ""),
                    );
                    changes.push(Change::DeleteTask(task.id.clone()));
                    apps.insert(task.app_id.clone());
                } else if task.reported {
                    pending.push(
                        event_types::STATUS_UPDATE,
                        status_event(task, "TASK_LOST", "no longer reported by its agent"),
                    );
                    changes.push(Change::DeleteTask(task.id.clone()));
                    apps.insert(task.app_id.clone());
                }
            }
            if failures > 0 {
                changes.push(counter(&state, "tasks_failed_total", failures));
            }
            changes
        };
        self.commit(&writer, changes, pending).await?;
        let assignments = Assignments {
            tasks: self
                .lock()
                .tasks
                .values()
                .filter(|t| t.agent_id == agent_id && !t.killing)
                .map(|t| t.spec.clone())
                .collect(),
        };
        drop(writer);
        for app in apps {
            self.enqueue(&app);
        }
        Ok(Some(assignments))
    }
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
