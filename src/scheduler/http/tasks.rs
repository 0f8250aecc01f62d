//! `/v2/tasks` (JSON, and Marathon's text/plain form for load balancers) and
//! `/v2/tasks/delete`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::api::agent::TaskState;
use crate::api::marathon::{self, TaskIds};
use crate::scheduler::error::ApiError;
use crate::scheduler::state::TaskJson;

/// `{"tasks": [...]}`, serialized from the state.
#[derive(serde::Serialize)]
pub struct TaskList<'a> {
    pub tasks: Vec<TaskJson<'a>>,
}

use super::{deployment_response, flag, parse_json, Body, Params, Shared};

pub fn wants_text(headers: &HeaderMap) -> bool {
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
    let tasks: Vec<TaskJson> = state
        .tasks
        .values()
        .filter(keep)
        .map(|task| TaskJson {
            task,
            agent_address: None,
        })
        .collect();
    Json(TaskList { tasks }).into_response()
}

pub async fn delete_tasks(
    State(s): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Query(params): Params,
    uri: Uri,
    Body(body): Body,
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
