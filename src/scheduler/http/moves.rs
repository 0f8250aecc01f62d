//! `POST /v2/apps/{id}/move?to=HOST` starts moving a resident app's task with its data to
//! the agent named HOST; `GET /v2/apps/{id}/move` shows how far it got (an infra
//! extension: Marathon has no such endpoint).

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::{param, Shared};
use crate::scheduler::error::ApiError;
use crate::scheduler::moves::{self, Refusal};

pub async fn handle(
    s: &Shared,
    id: &str,
    params: &[(String, String)],
    method: Method,
) -> Result<Response, ApiError> {
    match method {
        Method::GET => {
            let state = s.lock();
            if !state.apps.contains_key(id) {
                return Err(ApiError::app_not_found(id));
            }
            match moves::status_json(&state, id) {
                Some(status) => Ok(Json(status).into_response()),
                None => Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("App '{id}' has not been moved"),
                )),
            }
        }
        Method::POST => {
            let Some(to) = param(params, "to").filter(|t| !t.is_empty()) else {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "to: the host name of the agent to move to is missing (?to=HOST)",
                ));
            };
            match s.start_move(id, to).await? {
                Ok(status) => Ok((StatusCode::ACCEPTED, Json(status)).into_response()),
                Err(Refusal::NotFound) => Err(ApiError::app_not_found(id)),
                Err(Refusal::Invalid(message)) => {
                    Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message))
                }
                Err(Refusal::Busy(message)) => Err(ApiError::new(StatusCode::CONFLICT, message)),
            }
        }
        _ => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "use GET or POST on /v2/apps/{id}/move",
        )),
    }
}
