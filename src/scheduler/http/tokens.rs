//! `/infra/v1/tokens`: API token management (admin only; see [`super::auth`]). A new
//! token's text is in the answer to its creation and nowhere else: the store keeps its
//! hash. Tokens given by `--bootstrap-tokens` are listed but cannot be revoked here (they
//! live in that file, not in the store).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Body, Shared};
use crate::scheduler::error::ApiError;
use crate::scheduler::events::Pending;
use crate::scheduler::store::Change;
use crate::scheduler::tokens::{self, Role, TokenRecord};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    role: String,
    #[serde(default)]
    apps: Vec<String>,
    #[serde(default)]
    name: String,
}

fn shown(token: &TokenRecord, source: &str) -> Value {
    json!({
        "id": token.id,
        "name": token.name,
        "role": token.role.to_string(),
        "apps": token.apps,
        "created": token.created,
        "source": source,
    })
}

/// `GET /infra/v1/tokens`: every token, without hashes.
pub async fn list(State(s): State<Shared>) -> Json<Value> {
    let mut out: Vec<Value> = s
        .config
        .auth
        .bootstrap
        .iter()
        .map(|t| shown(t, "bootstrap"))
        .collect();
    out.extend(s.lock().tokens.values().map(|t| shown(t, "store")));
    Json(json!({ "tokens": out }))
}

/// `POST /infra/v1/tokens` `{"role", "apps", "name"}`: 201 with the token, shown once.
pub async fn create(State(s): State<Shared>, Body(body): Body) -> Result<Response, ApiError> {
    let request: CreateToken = serde_json::from_slice(&body).map_err(ApiError::bad_json)?;
    let invalid = |message: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message);
    let role: Role = request.role.parse().map_err(invalid)?;
    for pattern in &request.apps {
        tokens::check_app_pattern(pattern).map_err(invalid)?;
    }
    match (role, request.apps.is_empty()) {
        (Role::Deployer, true) => {
            return Err(invalid(
                "a deployer token needs the apps it may change (--apps /team/*)".into(),
            ))
        }
        (Role::ReadOnly | Role::Admin, false) => {
            return Err(invalid(format!(
                "only a deployer token is limited to apps; a {role} token is not"
            )))
        }
        _ => {}
    }
    let new = tokens::generate(role, request.apps, request.name);
    let writer = s.begin_write().await?;
    s.commit(
        &writer,
        vec![Change::PutToken(new.record.clone())],
        Pending::default(),
    )
    .await?;
    tracing::info!(id = %new.record.id, role = %role, "API token created");
    let mut answer = shown(&new.record, "store");
    answer["token"] = Value::String(new.token);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// `DELETE /infra/v1/tokens/{id}`.
pub async fn revoke(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if s.config.auth.bootstrap.iter().any(|t| t.id == id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "token {id} is given to the scheduler by --bootstrap-tokens: remove it from \
                 that file (infra up keeps it in the cluster's state folder)"
            ),
        ));
    }
    let writer = s.begin_write().await?;
    if !s.lock().tokens.contains_key(&id) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no token {id}"),
        ));
    }
    s.commit(
        &writer,
        vec![Change::DeleteToken(id.clone())],
        Pending::default(),
    )
    .await?;
    tracing::info!(%id, "API token revoked");
    Ok(Json(json!({ "id": id, "revoked": true })))
}
