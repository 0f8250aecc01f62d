//! App definitions: list (with Marathon's filters and embeds), create, update many,
//! and everything under `/v2/apps/{id}` (the app, its versions, its tasks, restart).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::api::marathon::{self, DEPLOYMENT_ID_HEADER};
use crate::scheduler::apps::AppWrite;
use crate::scheduler::error::ApiError;
use crate::scheduler::state::task_json;

use super::{
    client_of, deployment_response, flag, param, parse_json, parse_object, render_app, AppJson,
    AppList, Body, Params, Shared,
};

/// Marathon's label selector: `key==value`, `key!=value`, `key` (exists), comma-separated.
pub fn label_matches(labels: Option<&Value>, selector: &str) -> bool {
    selector
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .all(|term| {
            let get = |k: &str| labels.and_then(|l| l.get(k.trim())).and_then(Value::as_str);
            if let Some((k, v)) = term.split_once("!=") {
                get(k) != Some(v.trim())
            } else if let Some((k, v)) = term.split_once("==") {
                get(k) == Some(v.trim())
            } else {
                get(term).is_some()
            }
        })
}

pub fn embeds(params: &[(String, String)]) -> Vec<String> {
    params
        .iter()
        .filter(|(k, _)| k == "embed")
        .flat_map(|(_, v)| {
            v.split(',')
                .map(str::trim)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

pub async fn list_apps(State(s): State<Shared>, Query(params): Params) -> Response {
    let embed = embeds(&params);
    let tasks = embed.iter().any(|e| e == "apps.tasks" || e == "app.tasks");
    let failure = embed.iter().any(|e| e == "apps.lastTaskFailure");
    let id_filter = param(&params, "id");
    let cmd_filter = param(&params, "cmd");
    let label = param(&params, "label");
    let state = s.lock();
    let apps: Vec<AppJson> = state
        .apps
        .iter()
        .filter(|(id, _)| id_filter.is_none_or(|f| id.contains(f)))
        .filter(|(_, a)| {
            cmd_filter.is_none_or(|f| a.spec.app.cmd.as_deref().is_some_and(|c| c.contains(f)))
        })
        .filter(|(_, a)| label.is_none_or(|l| label_matches(a.record.definition.get("labels"), l)))
        .map(|(_, entry)| AppJson {
            state: &state,
            entry,
            tasks,
            failure,
        })
        .collect();
    Json(AppList { apps }).into_response()
}

pub async fn create_app(
    State(s): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Query(params): Params,
    uri: Uri,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let def = parse_object(&body)?;
    if let Some(Value::String(id)) = def.get("id") {
        let id = marathon::canonical_app_id(id);
        if s.lock().apps.contains_key(&id) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("An app with id [{id}] already exists."),
            ));
        }
    }
    let force = flag(&params, "force", false);
    let result = s
        .write_apps(
            vec![AppWrite::Put {
                body: def,
                partial: false,
            }],
            force,
            &client_of(&addr),
            uri.path(),
        )
        .await?;
    let Some(id) = result.apps.keys().next().cloned() else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no app written",
        ));
    };
    let app = render_app(&s.lock(), &id, true, false).unwrap_or(Value::Null);
    let mut response = (StatusCode::CREATED, Json(app)).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&result.deployment_id) {
        headers.insert(DEPLOYMENT_ID_HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("/v2/apps{id}")) {
        headers.insert(header::LOCATION, v);
    }
    Ok(response)
}

pub async fn write_many(
    s: Shared,
    addr: SocketAddr,
    params: Vec<(String, String)>,
    uri: Uri,
    body: axum::body::Bytes,
    partial_default: bool,
) -> Result<Response, ApiError> {
    let items = match parse_json(&body)? {
        Value::Array(items) => items,
        Value::Object(o) => vec![Value::Object(o)],
        _ => return Err(ApiError::bad_json("expected an array of apps")),
    };
    let partial = flag(&params, "partialUpdate", partial_default);
    let writes = items
        .into_iter()
        .map(|item| match item {
            Value::Object(body) => Ok(AppWrite::Put { body, partial }),
            _ => Err(ApiError::bad_json("expected an array of app objects")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let result = s
        .write_apps(
            writes,
            flag(&params, "force", false),
            &client_of(&addr),
            uri.path(),
        )
        .await?;
    Ok(deployment_response(StatusCode::OK, &result))
}

/// `PUT` and `PATCH /v2/apps`: several apps in one deployment, partial by default.
pub async fn update_apps(
    State(s): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Query(params): Params,
    uri: Uri,
    Body(body): Body,
) -> Result<Response, ApiError> {
    write_many(s, addr, params, uri, body, true).await
}

/// What `/v2/apps/{*rest}` addresses.
#[derive(Debug, PartialEq)]
pub enum AppPath {
    App(String),
    Restart(String),
    Move(String),
    Versions(String),
    Version(String, String),
    Tasks(String),
    Task(String, String),
}

pub fn split_app_path(rest: &str) -> AppPath {
    let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
    let id = |n: usize| marathon::canonical_app_id(&segments[..segments.len() - n].join("/"));
    let n = segments.len();
    match (segments.get(n.wrapping_sub(2)).copied(), segments[n - 1]) {
        (_, "restart") if n > 1 => AppPath::Restart(id(1)),
        (_, "move") if n > 1 => AppPath::Move(id(1)),
        (_, "versions") if n > 1 => AppPath::Versions(id(1)),
        (_, "tasks") if n > 1 => AppPath::Tasks(id(1)),
        (Some("versions"), v) if n > 2 => AppPath::Version(id(2), v.to_string()),
        (Some("tasks"), t) if n > 2 => AppPath::Task(id(2), t.to_string()),
        _ => AppPath::App(id(0)),
    }
}

pub async fn app_path(
    State(s): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(rest): Path<String>,
    Query(params): Params,
    method: Method,
    uri: Uri,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let client = client_of(&addr);
    let force = flag(&params, "force", false);
    match (split_app_path(&rest), method) {
        (AppPath::App(id), Method::GET) => {
            let state = s.lock();
            let app =
                render_app(&state, &id, true, true).ok_or_else(|| ApiError::app_not_found(&id))?;
            Ok(Json(json!({"app": app})).into_response())
        }
        (AppPath::App(id), m) if m == Method::PUT || m == Method::PATCH => {
            let mut def = parse_object(&body)?;
            def.insert("id".into(), Value::String(id.clone()));
            let partial = m == Method::PATCH || flag(&params, "partialUpdate", true);
            let result = s
                .write_apps(
                    vec![AppWrite::Put { body: def, partial }],
                    force,
                    &client,
                    uri.path(),
                )
                .await?;
            let written: Vec<String> = result.apps.keys().cloned().collect();
            s.follow_constraints(&written).await;
            let status = if result.created.contains(&id) {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(deployment_response(status, &result))
        }
        (AppPath::App(id), Method::DELETE) => {
            let result = s
                .write_apps(vec![AppWrite::Delete(id)], force, &client, uri.path())
                .await?;
            Ok(deployment_response(StatusCode::OK, &result))
        }
        (AppPath::Restart(id), Method::POST) => {
            if flag(&params, "wipe", false) && !s.forget_residents(&id).await? {
                return Err(ApiError::app_not_found(&id));
            }
            let result = s
                .write_apps(vec![AppWrite::Restart(id)], force, &client, uri.path())
                .await?;
            Ok(deployment_response(StatusCode::OK, &result))
        }
        (AppPath::Move(id), method) => super::moves::handle(&s, &id, &params, method).await,
        (AppPath::Versions(id), Method::GET) => {
            if !s.lock().apps.contains_key(&id) {
                return Err(ApiError::app_not_found(&id));
            }
            let versions = s.store().app_versions(&id).await?;
            Ok(Json(json!({"versions": versions})).into_response())
        }
        (AppPath::Version(id, version), Method::GET) => {
            match s.store().app_version(&id, &version).await? {
                Some(def) => Ok(Json(Value::Object(def)).into_response()),
                None => Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("App '{id}' does not exist in version {version}"),
                )),
            }
        }
        (AppPath::Tasks(id), Method::GET) => {
            let state = s.lock();
            if !state.apps.contains_key(&id) {
                return Err(ApiError::app_not_found(&id));
            }
            let tasks: Vec<Value> = state.tasks_of(&id).map(|t| task_json(t, None)).collect();
            Ok(Json(json!({"tasks": tasks})).into_response())
        }
        (AppPath::Tasks(id), Method::DELETE) => {
            let ids: Vec<String> = {
                let state = s.lock();
                if !state.apps.contains_key(&id) {
                    return Err(ApiError::app_not_found(&id));
                }
                let host = param(&params, "host");
                state
                    .tasks_of(&id)
                    .filter(|t| host.is_none_or(|h| t.host == h))
                    .map(|t| t.id.clone())
                    .collect()
            };
            let scale = flag(&params, "scale", false);
            let (killed, result) = s
                .kill_tasks(&ids, scale, force, &client, uri.path())
                .await?;
            Ok(match result {
                Some(r) => deployment_response(StatusCode::OK, &r),
                None => Json(json!({"tasks": killed})).into_response(),
            })
        }
        (AppPath::Task(id, task_id), Method::GET) => {
            let state = s.lock();
            match state.tasks.get(&task_id).filter(|t| t.app_id == id) {
                Some(t) => Ok(Json(json!({"task": task_json(t, None)})).into_response()),
                None => Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("Task '{task_id}' does not exist"),
                )),
            }
        }
        (AppPath::Task(id, task_id), Method::DELETE) => {
            let known = s.lock().tasks.get(&task_id).is_some_and(|t| t.app_id == id);
            if !known {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("Task '{task_id}' does not exist"),
                ));
            }
            let scale = flag(&params, "scale", false);
            let (killed, result) = s
                .kill_tasks(&[task_id], scale, force, &client, uri.path())
                .await?;
            Ok(match result {
                Some(r) => deployment_response(StatusCode::OK, &r),
                None => Json(json!({"task": killed.into_iter().next()})).into_response(),
            })
        }
        _ => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_paths_split_into_id_and_resource() {
        assert_eq!(split_app_path("a/b"), AppPath::App("/a/b".into()));
        assert_eq!(
            split_app_path("a/b/restart"),
            AppPath::Restart("/a/b".into())
        );
        assert_eq!(split_app_path("a/versions"), AppPath::Versions("/a".into()));
        assert_eq!(
            split_app_path("a/versions/2020"),
            AppPath::Version("/a".into(), "2020".into())
        );
        assert_eq!(split_app_path("g/a/tasks"), AppPath::Tasks("/g/a".into()));
        assert_eq!(
            split_app_path("g/a/tasks/g_a.1"),
            AppPath::Task("/g/a".into(), "g_a.1".into())
        );
    }

    #[test]
    fn label_selectors() {
        let labels = json!({"team": "a", "tier": "web"});
        assert!(label_matches(Some(&labels), "team==a"));
        assert!(!label_matches(Some(&labels), "team==b"));
        assert!(label_matches(Some(&labels), "tier, team!=b"));
        assert!(!label_matches(Some(&labels), "missing"));
    }
}
