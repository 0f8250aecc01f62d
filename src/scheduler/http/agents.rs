//! The agent protocol: registration and heartbeats (answered with the agent's tasks).

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::api::agent::{Heartbeat, Registration};
use crate::api::agent_check::check_registration;
use crate::scheduler::error::ApiError;

use super::{Body, Shared, AGENT_BODY_LIMIT};

pub async fn register(
    State(s): State<Shared>,
    Body(body): Body<AGENT_BODY_LIMIT>,
) -> Result<Response, ApiError> {
    let registration: Registration = serde_json::from_slice(&body).map_err(ApiError::bad_json)?;
    let problems = check_registration(&registration);
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems));
    }
    let registered = s.register(registration).await?;
    Ok(Json(registered).into_response())
}

pub async fn heartbeat(
    State(s): State<Shared>,
    Path(agent_id): Path<String>,
    Body(body): Body<AGENT_BODY_LIMIT>,
) -> Result<Response, ApiError> {
    let mut hb: Heartbeat = serde_json::from_slice(&body).map_err(ApiError::bad_json)?;
    let output = std::mem::take(&mut hb.output);
    // On a task of its own: the handler that gets the writer decides and commits the
    // whole queue of heartbeats; an agent that gives up on its request (its HTTP timeout
    // while the writer is busy) would otherwise drop the other agents' answers with it.
    let answer = tokio::spawn({
        let s = s.clone();
        let agent_id = agent_id.clone();
        async move { s.heartbeat(&agent_id, hb).await }
    })
    .await
    .map_err(|err| anyhow::anyhow!("the heartbeat of {agent_id} ended: {err}"))??;
    match answer {
        Some(assignments) => {
            if !output.is_empty() {
                s.outputs.record(&s.lock(), &agent_id, output);
            }
            Ok(([(header::CONTENT_TYPE, "application/json")], assignments).into_response())
        }
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("agent {agent_id} is not registered"),
        )),
    }
}
