//! `/v2/deployments`: list, one, cancel (roll back, or `force` to stop where it
//! stands).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::scheduler::error::ApiError;
use crate::scheduler::reconcile::steps_json;
use crate::scheduler::store::DeploymentRecord;

use super::{deployment_response, flag, Params, Shared};

pub fn deployment_json(d: &DeploymentRecord) -> Value {
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
