//! Who may do what on the API. Every request passes [`authorize`] before anything else
//! (before [`super::forward::leader_proxy`]: a follower refuses what the caller may not
//! do, and the leader checks a forwarded request again from its own copy of the tokens).
//!
//! A caller is a token (`Authorization: Bearer <token>`, or HTTP basic with the token as
//! the password, as Marathon's old clients send), a host (a client certificate from the
//! cluster CA, checked by the TLS handshake), or nobody. [`need`] is the one table that
//! says what a request needs; a route it does not know needs admin, so a new write route
//! is closed to lesser roles until it is given a rule. Answers: 401 with
//! `WWW-Authenticate` for nobody or a bad token, 403 for a caller without the right, both
//! in Marathon's error shape.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::Value;

use super::Shared;
use crate::api::agent::{Registration, REGISTER_PATH};
use crate::api::marathon::canonical_app_id;
use crate::scheduler::error::ApiError;
use crate::scheduler::http::apps::{split_app_path, AppPath};
use crate::scheduler::tokens::{self, Role, TokenRecord};
use crate::tls::PeerCertificate;

/// Where token management lives (outside Marathon's `/v2`).
pub const TOKENS_PATH: &str = "/infra/v1/tokens";
const AGENTS_PREFIX: &str = "/internal/v1/agents";

/// What a request needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Need {
    /// Anyone: `/ping`, for load balancers and the proxy's health checks, and the web
    /// UI's static files (`/`, `/ui`, `/ui/...`: no data; the page asks for a token when
    /// the API answers 401).
    Open,
    /// Any token or cluster host: reads.
    Read,
    /// The agent protocol: a client certificate for the agent's own host.
    Agent,
    /// A write to apps: admin, or a deployer whose prefixes cover every app it touches.
    Apps(Scope),
    /// Admin only.
    Admin,
}

/// Which apps an app write touches.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// Named by the path.
    App(String),
    /// The body's `id` (`POST /v2/apps`).
    BodyApp,
    /// Each `id` of the body's list (`PUT /v2/apps`).
    BodyApps,
    /// The apps of the body's task ids (`POST /v2/tasks/delete`).
    BodyTasks,
    /// The apps of a deployment (`DELETE /v2/deployments/{id}`).
    Deployment(String),
}

/// The rule table.
pub fn need(method: &Method, path: &str) -> Need {
    let read = matches!(*method, Method::GET | Method::HEAD);
    let ui_file = path == "/" || path == "/ui" || path.starts_with("/ui/");
    if path == "/ping" || (read && ui_file) {
        return Need::Open;
    }
    if path.starts_with(AGENTS_PREFIX) {
        return Need::Agent;
    }
    if path == TOKENS_PATH || path.starts_with(&format!("{TOKENS_PATH}/")) {
        return Need::Admin;
    }
    if read {
        return Need::Read;
    }
    let write = matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if !write {
        return Need::Admin;
    }
    match path {
        "/v2/apps" if *method == Method::POST => Need::Apps(Scope::BodyApp),
        "/v2/apps" if matches!(*method, Method::PUT | Method::PATCH) => Need::Apps(Scope::BodyApps),
        "/v2/tasks/delete" if *method == Method::POST => Need::Apps(Scope::BodyTasks),
        _ => {
            if let Some(rest) = path.strip_prefix("/v2/apps/") {
                let id = match split_app_path(rest) {
                    AppPath::App(id)
                    | AppPath::Restart(id)
                    | AppPath::Move(id)
                    | AppPath::Versions(id)
                    | AppPath::Version(id, _)
                    | AppPath::Tasks(id)
                    | AppPath::Task(id, _) => id,
                };
                return Need::Apps(Scope::App(id));
            }
            if let Some(id) = path.strip_prefix("/v2/deployments/") {
                if *method == Method::DELETE {
                    return Need::Apps(Scope::Deployment(id.to_string()));
                }
            }
            if let Some(rest) = path.strip_prefix("/v2/queue/") {
                if let Some(app) = rest.strip_suffix("/delay") {
                    return Need::Apps(Scope::App(canonical_app_id(app)));
                }
            }
            Need::Admin
        }
    }
}

/// A refusal: the answer, boxed (it is large, and the happy path carries the request).
type Refused = Box<Response>;

fn refuse(error: ApiError) -> Refused {
    Box::new(error.into_response())
}

/// Who is asking.
enum Caller {
    Token(TokenRecord),
    Host(PeerCertificate),
    Nobody,
}

/// The axum middleware (a no-op with `--no-auth`).
pub async fn authorize(State(s): State<Shared>, request: Request, next: Next) -> Response {
    if !s.config.auth.enabled {
        return next.run(request).await;
    }
    let scripted = request.headers().contains_key(X_REQUESTED_WITH);
    match check(&s, request).await {
        Ok(request) => next.run(request).await,
        Err(mut response) if scripted => {
            without_basic_challenge(&mut response);
            *response
        }
        Err(response) => *response,
    }
}

/// Sent by scripts in a browser (the web UI): their 401s challenge with Bearer only, since
/// a Basic challenge makes the browser open its own login prompt over the page.
const X_REQUESTED_WITH: &str = "x-requested-with";

fn without_basic_challenge(response: &mut Response) {
    let headers = response.headers_mut();
    let kept: Vec<HeaderValue> = headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter(|v| !v.as_bytes().starts_with(b"Basic"))
        .cloned()
        .collect();
    headers.remove(header::WWW_AUTHENTICATE);
    for value in kept {
        headers.append(header::WWW_AUTHENTICATE, value);
    }
}

async fn check(s: &Shared, request: Request) -> Result<Request, Refused> {
    let need = need(request.method(), request.uri().path());
    if need == Need::Open {
        return Ok(request);
    }
    let caller = caller(s, &request)?;
    match (&caller, &need) {
        (Caller::Nobody, _) => Err(unauthorized(
            "authentication required: send a token (Authorization: Bearer <token>, or HTTP \
             basic with the token as the password)",
        )),
        (Caller::Token(t), _) if t.role == Role::Admin => Ok(request),
        (Caller::Host(_), Need::Read) | (Caller::Token(_), Need::Read) => Ok(request),
        (Caller::Host(cert), Need::Agent) => agent_request(s, cert, request).await,
        (Caller::Token(t), Need::Apps(scope)) if t.role == Role::Deployer => {
            deployer_request(s, t, scope, request).await
        }
        (Caller::Token(t), _) => Err(forbidden(format!(
            "the token {} ({}) may not {} {}",
            t.id,
            t.role,
            request.method(),
            request.uri().path()
        ))),
        (Caller::Host(_), _) => Err(forbidden(format!(
            "a host certificate may not {} {}: send a token",
            request.method(),
            request.uri().path()
        ))),
    }
}

/// The caller of a request: a token when the request carries one (a bad one is refused
/// even with a certificate), else the host of its client certificate, else nobody.
fn caller(s: &Shared, request: &Request) -> Result<Caller, Refused> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        let token = presented_token(value).ok_or_else(|| {
            unauthorized("the Authorization header is neither Bearer <token> nor Basic")
        })?;
        return find_token(s, &token)
            .map(Caller::Token)
            .ok_or_else(|| unauthorized("the token is not valid (unknown, or revoked)"));
    }
    Ok(match request.extensions().get::<PeerCertificate>() {
        Some(cert) => Caller::Host(cert.clone()),
        None => Caller::Nobody,
    })
}

/// The token of a `Bearer` or `Basic` header (basic: the password, or the user name when
/// the password is empty).
fn presented_token(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?.trim();
    let (scheme, rest) = text.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, password) = decoded.split_once(':')?;
        let token = if password.is_empty() { user } else { password };
        return Some(token.to_string());
    }
    None
}

/// The record of a valid token: from `--bootstrap-tokens`, or the store.
pub fn find_token(s: &Shared, token: &str) -> Option<TokenRecord> {
    let (id, secret) = tokens::split(token)?;
    let record = s
        .config
        .auth
        .bootstrap
        .iter()
        .find(|t| t.id == id)
        .cloned()
        .or_else(|| s.lock().tokens.get(id).cloned())?;
    tokens::matches(&record, secret).then_some(record)
}

/// An agent's registration or heartbeat: only with a certificate for the agent's host, and
/// only on the leader. A follower cannot vouch for the agent's certificate to the leader
/// (the leader would see the follower's), so it answers 503 and the agent tries the next
/// control node, as it does during an election.
async fn agent_request(
    s: &Shared,
    cert: &PeerCertificate,
    request: Request,
) -> Result<Request, Refused> {
    if !s.leadership.is_leader() {
        return Err(refuse(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "this control node does not lead; agents talk to the leader ({})",
                s.leadership
                    .leader_url()
                    .unwrap_or_else(|| "none yet".into())
            ),
        )));
    }
    let path = request.uri().path().to_string();
    if path == REGISTER_PATH {
        let (request, body) = buffered(request, super::AGENT_BODY_LIMIT).await?;
        let registration: Registration =
            serde_json::from_slice(&body).map_err(|e| refuse(ApiError::bad_json(e)))?;
        return host_matches(cert, &registration.hostname).map(|_| request);
    }
    let agent = path
        .strip_prefix(AGENTS_PREFIX)
        .and_then(|rest| rest.trim_start_matches('/').split('/').next())
        .unwrap_or_default();
    let host = s
        .lock()
        .agents
        .get(agent)
        .map(|a| a.record.registration.hostname.clone());
    match host {
        Some(host) => host_matches(cert, &host).map(|_| request),
        // Unknown: the handler answers 404 and the agent registers (with its certificate).
        None => Ok(request),
    }
}

fn host_matches(cert: &PeerCertificate, host: &str) -> Result<(), Refused> {
    if cert.is_for(host) {
        Ok(())
    } else {
        Err(forbidden(format!(
            "the client certificate is not for host {host:?}: an agent speaks only for its \
             own host"
        )))
    }
}

/// A deployer's app write: every app it touches must be under one of its prefixes.
async fn deployer_request(
    s: &Shared,
    token: &TokenRecord,
    scope: &Scope,
    request: Request,
) -> Result<Request, Refused> {
    let (request, apps) = match scope {
        Scope::App(id) => (request, vec![id.clone()]),
        Scope::Deployment(id) => {
            let apps = s
                .lock()
                .deployments
                .get(id)
                .map(|d| d.affected_apps())
                .unwrap_or_default();
            (request, apps)
        }
        Scope::BodyApp | Scope::BodyApps | Scope::BodyTasks => {
            let (request, body) = buffered(request, super::API_BODY_LIMIT).await?;
            let json: Value =
                serde_json::from_slice(&body).map_err(|e| refuse(ApiError::bad_json(e)))?;
            (request, body_apps(s, scope, &json)?)
        }
    };
    // The rule table reads the raw path, the handlers a decoded one: a deployer's app id
    // must read the same both ways, and name no `.`/`..` segment.
    if let Some(app) = apps.iter().find(|app| !plain_app_id(app)) {
        return Err(forbidden(format!(
            "the app id {app:?} is not in canonical form (no %-escapes, no . or .. segments)"
        )));
    }
    match apps.iter().find(|app| !tokens::covers(&token.apps, app)) {
        None => Ok(request),
        Some(app) => Err(forbidden(format!(
            "the token {} (deployer of {}) may not change {app}",
            token.id,
            token.apps.join(", ")
        ))),
    }
}

/// An app id without %-escapes or `.`/`..` segments.
fn plain_app_id(id: &str) -> bool {
    !id.contains('%')
        && id
            .split('/')
            .all(|segment| segment != "." && segment != "..")
}

/// The apps a request body names.
fn body_apps(s: &Shared, scope: &Scope, json: &Value) -> Result<Vec<String>, Refused> {
    let missing = |what: &str| forbidden(format!("{what}: a deployer must name its apps"));
    let id_of = |app: &Value| -> Result<String, Refused> {
        app.get("id")
            .and_then(Value::as_str)
            .map(canonical_app_id)
            .ok_or_else(|| missing("an app without an id"))
    };
    match scope {
        Scope::BodyApp => Ok(vec![id_of(json)?]),
        Scope::BodyApps => json
            .as_array()
            .ok_or_else(|| missing("not a list of apps"))?
            .iter()
            .map(id_of)
            .collect(),
        _ => {
            let ids = json
                .get("ids")
                .and_then(Value::as_array)
                .ok_or_else(|| missing("no task ids"))?;
            let state = s.lock();
            ids.iter()
                .map(|id| {
                    let id = id.as_str().unwrap_or_default();
                    state
                        .tasks
                        .get(id)
                        .map(|t| t.app_id.clone())
                        .ok_or_else(|| forbidden(format!("unknown task {id:?}")))
                })
                .collect()
        }
    }
}

/// Reads the body (up to `limit`) and puts it back.
async fn buffered(request: Request, limit: usize) -> Result<(Request, bytes::Bytes), Refused> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|error| {
        if super::is_too_long(&error) {
            refuse(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Request body too large: this resource reads at most {limit} bytes"),
            ))
        } else {
            refuse(ApiError::bad_json(error))
        }
    })?;
    Ok((Request::from_parts(parts, Body::from(bytes.clone())), bytes))
}

fn unauthorized(message: &str) -> Refused {
    let mut response = refuse(ApiError::new(StatusCode::UNAUTHORIZED, message));
    let headers = response.headers_mut();
    headers.append(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"infra\""),
    );
    headers.append(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"infra\""),
    );
    response
}

fn forbidden(message: String) -> Refused {
    refuse(ApiError::new(StatusCode::FORBIDDEN, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_table() {
        let cases = [
            (Method::GET, "/ping", Need::Open),
            (Method::GET, "/", Need::Open),
            (Method::GET, "/ui/", Need::Open),
            (Method::GET, "/ui/app.js", Need::Open),
            (Method::POST, "/ui/app.js", Need::Admin),
            (Method::GET, "/uix", Need::Read),
            (Method::GET, "/v2/apps", Need::Read),
            (Method::GET, "/metrics", Need::Read),
            (Method::POST, "/v2/apps", Need::Apps(Scope::BodyApp)),
            (Method::PUT, "/v2/apps", Need::Apps(Scope::BodyApps)),
            (
                Method::PUT,
                "/v2/apps/team/web",
                Need::Apps(Scope::App("/team/web".into())),
            ),
            (
                Method::DELETE,
                "/v2/apps/team/web/tasks/team_web.1",
                Need::Apps(Scope::App("/team/web".into())),
            ),
            (
                Method::DELETE,
                "/v2/queue/team/web/delay",
                Need::Apps(Scope::App("/team/web".into())),
            ),
            (
                Method::POST,
                "/v2/tasks/delete",
                Need::Apps(Scope::BodyTasks),
            ),
            (
                Method::DELETE,
                "/v2/deployments/abc",
                Need::Apps(Scope::Deployment("abc".into())),
            ),
            (Method::DELETE, "/v2/leader", Need::Admin),
            (Method::GET, TOKENS_PATH, Need::Admin),
            (Method::POST, "/v2/something-new", Need::Admin),
            (Method::POST, REGISTER_PATH, Need::Agent),
        ];
        for (method, path, expected) in cases {
            assert_eq!(need(&method, path), expected, "{method} {path}");
        }
    }

    #[test]
    fn escaped_or_dotted_app_ids_are_not_plain() {
        assert!(plain_app_id("/team/web"));
        assert!(!plain_app_id("/team/..%2Fother%2Fweb"));
        assert!(!plain_app_id("/team/../other/web"));
        assert!(!plain_app_id("/team/./web"));
    }

    #[test]
    fn basic_auth_carries_the_token_as_password_or_user() {
        let encode = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let basic = |s: &str| HeaderValue::from_str(&format!("Basic {}", encode(s))).unwrap();
        assert_eq!(presented_token(&basic("u:a.b")).as_deref(), Some("a.b"));
        assert_eq!(presented_token(&basic("a.b:")).as_deref(), Some("a.b"));
        assert_eq!(
            presented_token(&HeaderValue::from_static("bearer a.b")).as_deref(),
            Some("a.b")
        );
        assert_eq!(presented_token(&HeaderValue::from_static("Digest x")), None);
    }
}
