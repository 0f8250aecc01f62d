//! `/v2/queue`: instances waiting to be placed, and resetting an app's launch delay.

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::api::marathon::{self};
use crate::scheduler::error::ApiError;
use crate::scheduler::state::State as SchedState;

use super::{render_app, Shared};

pub fn queue_json(state: &SchedState) -> Value {
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
