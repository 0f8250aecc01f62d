//! API errors in Marathon's shapes: 400 invalid JSON, 404 unknown app, 409 existing id or
//! locked by a deployment, 422 invalid definition, 503 when no leader can take a write (an
//! election in progress, etcd without quorum), 500 other store failures.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::api::marathon::{DeploymentRef, ErrorBody, ErrorDetail};
use crate::scheduler::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                message: message.into(),
                details: Vec::new(),
                deployments: None,
            },
        }
    }

    pub fn invalid(details: Vec<ErrorDetail>) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: ErrorBody {
                message: "Object is not valid".to_string(),
                details,
                deployments: None,
            },
        }
    }

    pub fn bad_json(err: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            body: ErrorBody {
                message: "Invalid JSON".to_string(),
                details: vec![ErrorDetail {
                    path: "/".to_string(),
                    errors: vec![err.to_string()],
                }],
                deployments: None,
            },
        }
    }

    pub fn app_not_found(id: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, format!("App '{id}' does not exist"))
    }

    pub fn locked(deployments: Vec<String>) -> ApiError {
        let first = deployments.first().cloned().unwrap_or_default();
        ApiError {
            status: StatusCode::CONFLICT,
            body: ErrorBody {
                message: format!(
                    "App is locked by one or more deployments. Override with the option \
                     '?force=true'. View details at '/v2/deployments/{first}'."
                ),
                details: Vec::new(),
                deployments: Some(
                    deployments
                        .into_iter()
                        .map(|id| DeploymentRef { id })
                        .collect(),
                ),
            },
        }
    }

    pub fn internal(err: anyhow::Error) -> ApiError {
        tracing::error!("{err:#}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{err:#}"))
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> ApiError {
        match err.downcast_ref::<StoreError>() {
            Some(store) => {
                tracing::warn!("write refused: {err:#}");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{store}; retry (another control node may lead by now)"),
                )
            }
            None => ApiError::internal(err),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
