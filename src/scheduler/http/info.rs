//! About this scheduler: `/v2/info`, `/v2/leader` (GET names the leader, DELETE makes
//! it step down), and Prometheus `/metrics`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::api::agent::TaskState;
use crate::scheduler::error::ApiError;
use crate::scheduler::state::is_healthy;

use super::Shared;

/// `http://host:port` -> `host:port`, the form Marathon names its leader in.
pub fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest.trim_end_matches('/').to_string()
}

pub async fn info(State(s): State<Shared>) -> Response {
    let leader = s.leadership.leader_url().map(|url| host_port(&url));
    Json(json!({
        "name": "marathon",
        "version": "1.5.0",
        "buildref": format!("infra {}", env!("CARGO_PKG_VERSION")),
        "elected": s.leadership.is_leader(),
        "leader": leader,
        "frameworkId": "infra",
        "marathon_config": {
            "local_port_min": s.config.service_ports.0,
            "local_port_max": s.config.service_ports.1,
            "ha": s.leadership.is_elected(),
            "hostname": host_port(&s.leadership.advertise),
            "task_lost_expunge_interval": s.config.agent_timeout.as_millis() as u64,
        },
        "http_config": {"http_port": s.config.listen.port()},
        "infra": {
            "placement": format!("{:?}", s.config.placement).to_lowercase(),
            "agentTimeoutSeconds": s.config.agent_timeout.as_secs_f64(),
            "dataDir": s.config.data_dir.display().to_string(),
        },
    }))
    .into_response()
}

/// `GET /v2/leader`: the leader's `host:port`, 404 while there is none.
pub async fn leader(State(s): State<Shared>) -> Result<Response, ApiError> {
    match s.leadership.leader_url() {
        Some(url) => Ok(Json(json!({"leader": host_port(&url)})).into_response()),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "There is no leader")),
    }
}

/// `DELETE /v2/leader` (reaches the leader; followers forward it): the leader resigns and
/// another control node takes over, no process restarts.
pub async fn abdicate(State(s): State<Shared>) -> Result<Response, ApiError> {
    if !s.leadership.is_elected() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "this scheduler runs alone (no --etcd): there is no other to take over",
        ));
    }
    s.leadership.abdicate();
    Ok(Json(json!({"message": "Leadership abdicated"})).into_response())
}

/// Prometheus text exposition of the scheduler's gauges and counters.
pub async fn metrics(State(s): State<Shared>) -> Response {
    let state = s.lock();
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: f64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
        ));
    };
    gauge(
        "infra_scheduler_apps",
        "Apps defined.",
        state.apps.len() as f64,
    );
    gauge(
        "infra_scheduler_tasks",
        "Tasks known (any state).",
        state.tasks.len() as f64,
    );
    gauge(
        "infra_scheduler_tasks_running",
        "Tasks in TASK_RUNNING.",
        state
            .tasks
            .values()
            .filter(|t| t.state == TaskState::Running)
            .count() as f64,
    );
    gauge(
        "infra_scheduler_tasks_healthy",
        "Running tasks whose health checks all pass.",
        state.tasks.values().filter(|t| is_healthy(t)).count() as f64,
    );
    gauge(
        "infra_scheduler_store_transactions",
        "Store transactions this process committed since it started.",
        s.store_transactions
            .load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
    gauge(
        "infra_scheduler_deployment_writes",
        "Deployment records this process wrote since it started.",
        s.deployment_writes
            .load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
    gauge(
        "infra_scheduler_deployments",
        "Deployments in progress.",
        state.deployments.len() as f64,
    );
    gauge(
        "infra_scheduler_queue_instances",
        "Instances waiting to be placed.",
        state.queue.values().map(|q| q.count).sum::<usize>() as f64,
    );
    gauge(
        "infra_scheduler_agents",
        "Registered agents that are not lost.",
        state.agents.values().filter(|a| !a.record.lost).count() as f64,
    );
    gauge(
        "infra_scheduler_agents_lost",
        "Agents marked lost.",
        state.agents.values().filter(|a| a.record.lost).count() as f64,
    );
    gauge(
        "infra_scheduler_leader",
        "1 while this scheduler leads its datacenter.",
        if s.leadership.is_leader() { 1.0 } else { 0.0 },
    );
    gauge(
        "infra_scheduler_uptime_seconds",
        "Seconds since the scheduler started.",
        s.started.elapsed().as_secs_f64(),
    );
    for (name, value) in &state.counters {
        out.push_str(&format!(
            "# TYPE infra_scheduler_{name} counter\ninfra_scheduler_{name} {value}\n"
        ));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
