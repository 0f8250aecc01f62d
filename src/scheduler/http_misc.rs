//! The rest of the v2 API: tasks (JSON and Marathon's text/plain form), deployments, the
//! launch queue, the event stream (server-sent events with keep-alive comments and an
//! `event_type` filter), info, leader and Prometheus metrics.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::Stream;
use serde_json::{json, Value};

use crate::api::agent::TaskState;
use crate::api::marathon::{self, TaskIds};
use crate::scheduler::error::ApiError;
use crate::scheduler::http::{deployment_response, flag, parse_json, render_app, Params, Shared};
use crate::scheduler::reconcile::steps_json;
use crate::scheduler::state::{is_healthy, task_json, State as SchedState};
use crate::scheduler::store::DeploymentRecord;

fn wants_text(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("text/plain") && !accept.contains("application/json")
}

pub async fn list_tasks(
    State(s): State<Shared>,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    let status: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "status")
        .map(|(_, v)| v.to_lowercase())
        .collect();
    let state = s.lock();
    let keep = |t: &&crate::scheduler::store::TaskRecord| {
        status.is_empty()
            || status.iter().any(|st| match st.as_str() {
                "running" => t.state == TaskState::Running,
                "staging" => matches!(t.state, TaskState::Staging | TaskState::Starting),
                _ => true,
            })
    };
    if wants_text(&headers) {
        let mut out = String::new();
        for (id, app) in &state.apps {
            let tasks: Vec<_> = state.tasks_of(id).filter(keep).collect();
            let name = marathon::task_id_prefix(id);
            let service_ports: Vec<u32> = app.spec.ports.iter().map(|p| p.service_port).collect();
            if service_ports.is_empty() {
                out.push_str(&format!("{name}\t \t"));
                for t in &tasks {
                    out.push_str(&format!("{}\t", t.host));
                }
                out.push('\n');
            }
            for (i, service_port) in service_ports.iter().enumerate() {
                out.push_str(&format!("{name}\t{service_port}\t"));
                for t in &tasks {
                    if let Some(p) = t.spec.host_ports.get(i) {
                        out.push_str(&format!("{}:{p}\t", t.host));
                    }
                }
                out.push('\n');
            }
        }
        return ([(header::CONTENT_TYPE, "text/plain")], out).into_response();
    }
    let tasks: Vec<Value> = state
        .tasks
        .values()
        .filter(keep)
        .map(|t| task_json(t, None))
        .collect();
    Json(json!({"tasks": tasks})).into_response()
}

pub async fn delete_tasks(
    State(s): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Query(params): Params,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let ids: TaskIds = serde_json::from_value(parse_json(&body)?).map_err(ApiError::bad_json)?;
    let scale = flag(&params, "scale", false);
    let force = flag(&params, "force", false);
    let (killed, result) = s
        .kill_tasks(&ids.ids, scale, force, &addr.ip().to_string(), uri.path())
        .await?;
    Ok(match result {
        Some(r) => deployment_response(StatusCode::OK, &r),
        None => Json(json!({"tasks": killed})).into_response(),
    })
}

fn deployment_json(d: &DeploymentRecord) -> Value {
    let current: Vec<Value> = d
        .steps
        .get(d.current_step)
        .map(|step| {
            step.iter()
                .map(|a| json!({"action": a.action, "app": a.app, "readinessCheckResults": []}))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "id": d.id,
        "version": d.version,
        "affectedApps": d.affected_apps(),
        "affectedPods": [],
        "steps": steps_json(d),
        "currentActions": current,
        "currentStep": d.current_step + 1,
        "totalSteps": d.steps.len(),
    })
}

pub async fn list_deployments(State(s): State<Shared>) -> Response {
    let state = s.lock();
    let list: Vec<Value> = state.deployments.values().map(deployment_json).collect();
    Json(Value::Array(list)).into_response()
}

pub async fn get_deployment(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let state = s.lock();
    match state.deployments.get(&id) {
        Some(d) => Ok(Json(deployment_json(d)).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("DeploymentPlan {id} does not exist"),
        )),
    }
}

pub async fn cancel_deployment(
    State(s): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    Query(params): Params,
    uri: Uri,
) -> Result<Response, ApiError> {
    let force = flag(&params, "force", false);
    match s
        .cancel_deployment(&id, force, &addr.ip().to_string(), uri.path())
        .await?
    {
        Some(result) => Ok(deployment_response(StatusCode::OK, &result)),
        None => Ok(StatusCode::ACCEPTED.into_response()),
    }
}

fn queue_json(state: &SchedState) -> Value {
    let now = Instant::now();
    let items: Vec<Value> = state
        .queue
        .iter()
        .filter_map(|(id, entry)| {
            let app = render_app(state, id, false, false)?;
            let left = entry
                .delay_until
                .map(|u| u.saturating_duration_since(now).as_secs_f64().ceil() as u64)
                .unwrap_or(0);
            Some(json!({
                "app": app,
                "count": entry.count,
                "delay": {"timeLeftSeconds": left, "overdue": left == 0},
                "since": entry.since,
                "processedOffersSummary": {
                    "processedOffersCount": state.agents.len(),
                    "unusedOffersCount": state.agents.len(),
                    "rejectSummaryLastOffers": [],
                },
                "reason": entry.reason,
            }))
        })
        .collect();
    json!({"queue": items})
}

pub async fn queue(State(s): State<Shared>) -> Response {
    let state = s.lock();
    Json(queue_json(&state)).into_response()
}

/// `DELETE /v2/queue/{appId}/delay`: forget the app's launch backoff.
pub async fn reset_delay(
    State(s): State<Shared>,
    Path(rest): Path<String>,
) -> Result<Response, ApiError> {
    let Some(app) = rest.trim_end_matches('/').strip_suffix("/delay") else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "expected /v2/queue/{appId}/delay",
        ));
    };
    let id = marathon::canonical_app_id(app);
    {
        let mut state = s.lock();
        if !state.apps.contains_key(&id) {
            return Err(ApiError::app_not_found(&id));
        }
        state.backoff.remove(&id);
    }
    s.enqueue(&id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn events(
    State(s): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Query(params): Params,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let filter: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "event_type")
        .map(|(_, v)| v.clone())
        .collect();
    let mut rx = s.bus.subscribe();
    s.attached(&addr.ip().to_string());
    let keep_alive = s.config.sse_keep_alive;
    let stream = async_stream::stream! {
        loop {
            match rx.recv().await {
                Ok(event) => {
                    let kind = event.get("eventType").and_then(Value::as_str).unwrap_or("").to_string();
                    if !filter.is_empty() && !filter.contains(&kind) {
                        continue;
                    }
                    yield Ok(SseEvent::default().event(kind).data(event.to_string()));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("an event stream lagged by {n} events");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    };
    Sse::new(stream).keep_alive(KeepAlive::new().interval(keep_alive).text("keep-alive"))
}

/// `http://host:port` -> `host:port`, the form Marathon names its leader in.
fn host_port(url: &str) -> String {
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
