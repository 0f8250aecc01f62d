//! `GET /v2/infra/tasks/{id}/output`: a task's recent stdout and stderr lines, as its agent
//! last sent them (Marathon had none; Mesos served sandbox files). Read-only like every GET,
//! answered by the leader (the tails live in its memory; followers forward, see
//! `forward::needs_leader`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::scheduler::error::ApiError;

use super::Shared;

pub async fn task_output(
    State(s): State<Shared>,
    Path(task_id): Path<String>,
) -> Result<Response, ApiError> {
    let (app_id, agent_id, host, docker) = {
        let state = s.lock();
        let task = state.tasks.get(&task_id).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("Task '{task_id}' does not exist"),
            )
        })?;
        (
            task.app_id.clone(),
            task.agent_id.clone(),
            task.host.clone(),
            task.spec.docker.is_some(),
        )
    };
    let tail = s.outputs.get(&task_id);
    Ok(Json(json!({
        "taskId": task_id,
        "appId": app_id,
        "agentId": agent_id,
        "host": host,
        // Docker tasks log to syslog (the log server), not to the sandbox the agent reads.
        "docker": docker,
        "stdout": tail.as_ref().map(|t| t.stdout.clone()).unwrap_or_default(),
        "stderr": tail.as_ref().map(|t| t.stderr.clone()).unwrap_or_default(),
        "receivedSecondsAgo": tail.map(|t| t.received.elapsed().as_secs_f64()),
    }))
    .into_response())
}
