//! The HTTP server: Marathon's v2 API (`/v2/...`, `/ping`, `/metrics`) and the agent
//! protocol (`/internal/v1/...`) on one axum router, one file per kind of resource, with the
//! extractors and renderers they share here. Handlers parse and shape; the work is done by
//! [`Scheduler`] methods. Every request passes [`auth::authorize`] first (who may do what),
//! then [`forward::leader_proxy`], which sends writes on a follower to the leader. The web
//! UI (`/ui/`, [`crate::ui`]) is merged in outside the leader proxy; its static files are
//! open (the page asks for a token when the API answers 401).

pub mod agents;
pub mod apps;
pub mod auth;
pub mod deployments;
pub mod events;
pub mod forward;
pub mod info;
pub mod moves;
pub mod nodes;
pub mod output;
pub mod queue;
pub mod serve;
pub mod services;
pub mod tasks;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Query, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::api::marathon::DEPLOYMENT_ID_HEADER;
use crate::scheduler::apps::WriteResult;
use crate::scheduler::core::Scheduler;
use crate::scheduler::error::ApiError;
use crate::scheduler::state::{app_counts, AppEntry, State as SchedState, TaskJson};

pub fn router(scheduler: Shared) -> Router {
    Router::new()
        .route(
            "/v2/apps",
            get(apps::list_apps)
                .post(apps::create_app)
                .put(apps::update_apps)
                .patch(apps::update_apps),
        )
        .route("/v2/apps/{*rest}", axum::routing::any(apps::app_path))
        .route("/v2/tasks", get(tasks::list_tasks))
        .route("/v2/tasks/delete", post(tasks::delete_tasks))
        .route("/v2/deployments", get(deployments::list_deployments))
        .route(
            "/v2/deployments/{id}",
            delete(deployments::cancel_deployment).get(deployments::get_deployment),
        )
        .route("/v2/queue", get(queue::queue))
        .route("/v2/queue/{*rest}", delete(queue::reset_delay))
        .route("/v2/events", get(events::events))
        .route("/v2/info", get(info::info))
        .route("/v2/leader", get(info::leader).delete(info::abdicate))
        .route("/v2/infra/agents", get(nodes::agents))
        .route("/v2/infra/control-nodes", get(nodes::control_nodes))
        .route("/v2/infra/tasks/{id}/output", get(output::task_output))
        .route("/ping", get(|| async { "pong" }))
        .route("/metrics", get(info::metrics))
        .route(crate::api::agent::REGISTER_PATH, post(agents::register))
        .route(
            "/internal/v1/agents/{agent_id}/heartbeat",
            post(agents::heartbeat),
        )
        .route(auth::TOKENS_PATH, get(tokens::list).post(tokens::create))
        .route(
            &format!("{}/{{id}}", auth::TOKENS_PATH),
            delete(tokens::revoke),
        )
        .layer(axum::middleware::from_fn_with_state(
            scheduler.clone(),
            forward::leader_proxy,
        ))
        // The web UI's static files: outside the API's layers, so the page that asks for
        // a token loads without one.
        .merge(crate::ui::router())
        .with_state(scheduler)
}

/// `routes` (the API, and whatever is merged with it) behind [`auth::authorize`].
pub fn authorized(routes: Router, scheduler: Shared) -> Router {
    routes.layer(axum::middleware::from_fn_with_state(
        scheduler,
        auth::authorize,
    ))
}

pub type Shared = Arc<Scheduler>;

/// The largest request body the API reads: 4 MiB. Marathon leaves this to its HTTP
/// server's configuration. One definition is a few KiB, but `PUT /v2/apps` may carry a
/// thousand (the corpus's 155_1000.json, 1.8 MB pretty-printed); anything past that is a
/// mistake or an attack, answered 413 before it is read whole.
pub const API_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// The largest agent message (a heartbeat lists every task of the agent with its health):
/// 16 MiB, room for thousands of tasks.
pub const AGENT_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// A request body of at most `LIMIT` bytes ([`API_BODY_LIMIT`] unless the route says
/// otherwise). A larger one is refused with 413 and a JSON message in Marathon's error
/// shape: at once when its Content-Length says so (before any of it is read), else as
/// soon as the limit is passed. (axum's `DefaultBodyLimit` reads up to the limit first and
/// answers in plain text.)
pub struct Body<const LIMIT: usize = API_BODY_LIMIT>(pub Bytes);

impl<S: Send + Sync, const LIMIT: usize> FromRequest<S> for Body<LIMIT> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        let announced = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if announced.is_some_and(|n| n > LIMIT as u64) {
            return Err(too_large(LIMIT));
        }
        axum::body::to_bytes(request.into_body(), LIMIT)
            .await
            .map(Body)
            .map_err(|error| {
                if is_too_long(&error) {
                    too_large(LIMIT)
                } else {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!("cannot read the request body: {error}"),
                    )
                }
            })
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("Request body too large: this resource reads at most {limit} bytes"),
    )
}

/// Whether reading a body failed because it passed the limit (not a broken connection).
pub fn is_too_long(error: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

pub type Params = Query<Vec<(String, String)>>;

pub fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

pub fn flag(params: &[(String, String)], key: &str, default: bool) -> bool {
    match param(params, key) {
        Some(v) => v.is_empty() || v == "true" || v == "1",
        None => default,
    }
}

pub fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(ApiError::bad_json)
}

pub fn parse_object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    match parse_json(body)? {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::bad_json("expected a JSON object")),
    }
}

pub fn client_of(addr: &SocketAddr) -> String {
    addr.ip().to_string()
}

/// `{"deploymentId", "version"}` with the Marathon-Deployment-Id header.
pub fn deployment_response(status: StatusCode, result: &WriteResult) -> Response {
    let mut response = (
        status,
        Json(json!({"deploymentId": result.deployment_id, "version": result.version})),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&result.deployment_id) {
        response.headers_mut().insert(DEPLOYMENT_ID_HEADER, v);
    }
    response
}

/// An app as the API shows it: its definition plus counters, deployments and embeds.
pub fn render_app(state: &SchedState, app_id: &str, tasks: bool, failure: bool) -> Option<Value> {
    let entry = state.apps.get(app_id)?;
    serde_json::to_value(AppJson {
        state,
        entry,
        tasks,
        failure,
    })
    .ok()
}

/// An app as the API shows it, written straight from the state: `GET /v2/apps` of ten
/// thousand apps copies no definition. The fields computed here take the place of the
/// definition's own fields of the same name, the others follow in order (as inserting
/// them into a copy of the definition would).
pub struct AppJson<'a> {
    pub state: &'a SchedState,
    pub entry: &'a AppEntry,
    pub tasks: bool,
    pub failure: bool,
}

/// `{"apps": [...]}`.
#[derive(serde::Serialize)]
pub struct AppList<'a> {
    pub apps: Vec<AppJson<'a>>,
}

enum Computed<'a> {
    Value(Value),
    Tasks(Vec<TaskJson<'a>>),
    Failure(&'a Value),
}

impl serde::Serialize for Computed<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Computed::Value(v) => v.serialize(serializer),
            Computed::Tasks(t) => t.serialize(serializer),
            Computed::Failure(f) => f.serialize(serializer),
        }
    }
}

impl serde::Serialize for AppJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let app_id = self.entry.record.id.as_str();
        let mut computed: Vec<(String, Computed)> = app_counts(self.state, app_id)
            .into_iter()
            .map(|(k, v)| (k, Computed::Value(v)))
            .collect();
        let deployments: Vec<Value> = self
            .state
            .deployments_of(app_id)
            .map(|d| json!({"id": d.id}))
            .collect();
        computed.push((
            "deployments".into(),
            Computed::Value(Value::Array(deployments)),
        ));
        if self.tasks {
            let list = self
                .state
                .tasks_of(app_id)
                .map(|task| TaskJson {
                    task,
                    agent_address: None,
                })
                .collect();
            computed.push(("tasks".into(), Computed::Tasks(list)));
        }
        if self.failure {
            if let Some(f) = &self.entry.record.last_task_failure {
                computed.push(("lastTaskFailure".into(), Computed::Failure(f)));
            }
        }
        let definition = &self.entry.record.definition;
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in definition {
            match computed.iter().find(|(k, _)| k == key) {
                Some((_, c)) => map.serialize_entry(key, c)?,
                None => map.serialize_entry(key, value)?,
            }
        }
        for (key, c) in &computed {
            if !definition.contains_key(key) {
                map.serialize_entry(key, c)?;
            }
        }
        map.end()
    }
}
