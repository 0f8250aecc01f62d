//! Any control node answers every request, as Marathon's do (its `LeaderProxyFilter`):
//! reads are served from this node's own copy of the state; writes (and the agent protocol,
//! which writes) and `/v2/queue` (the leader's memory) are forwarded to the leader when this
//! node does not lead. Every answer
//! names the leader in `X-Marathon-Leader`; a forwarded request carries `X-Marathon-Via`,
//! and one that arrives at a node that does not lead either is refused rather than
//! forwarded again (a loop, or an election that moved on). With no leader known after a
//! short wait, a write gets 503 with a JSON message: the client retries.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Shared;
use crate::scheduler::error::ApiError;

pub const LEADER_HEADER: &str = "x-marathon-leader";
pub const VIA_HEADER: &str = "x-marathon-via";

/// How long a write waits for an election to produce a leader before it is refused.
const LEADER_PATIENCE: Duration = Duration::from_secs(3);
/// The largest body forwarded (app groups of many apps are a few hundred KB).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// The axum middleware.
pub async fn leader_proxy(State(s): State<Shared>, request: Request, next: Next) -> Response {
    let mut response = if !needs_leader(&request) || s.leadership.is_leader() {
        next.run(request).await
    } else {
        match s.leadership.wait_for_leader(LEADER_PATIENCE).await {
            // This node finished taking over while the request waited.
            Some(leader) if leader == s.leadership.advertise => next.run(request).await,
            Some(leader) => forward(&s, &leader, request)
                .await
                .unwrap_or_else(IntoResponse::into_response),
            None => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "no scheduler leads datacenter {} yet (an election is in progress, or \
                     etcd has lost its quorum); retry",
                    s.config.datacenter
                ),
            )
            .into_response(),
        }
    };
    if let Some(leader) = s.leadership.leader_url() {
        if let Ok(value) = HeaderValue::from_str(&leader) {
            response
                .headers_mut()
                .insert(HeaderName::from_static(LEADER_HEADER), value);
        }
    }
    response
}

/// Writes, and the one read only the leader can answer: the launch queue lives in the
/// leader's memory.
fn needs_leader(request: &Request) -> bool {
    let writes = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    writes || request.uri().path().starts_with("/v2/queue")
}

fn http_client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            // Writes take milliseconds; a leader that hangs this long is as good as gone.
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

/// Headers that belong to one hop and are not passed on.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host" | "connection" | "content-length" | "transfer-encoding" | "keep-alive" | "upgrade"
    )
}

/// Sends the request on to `leader` and its answer back.
async fn forward(s: &Shared, leader: &str, request: Request) -> Result<Response, ApiError> {
    let unavailable = |message: String| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message);
    if let Some(via) = request.headers().get(VIA_HEADER) {
        let via = via.to_str().unwrap_or("?");
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!(
                "refusing to forward a request already forwarded by {via}: {} does not lead \
                 (an election is in progress); retry",
                s.leadership.advertise
            ),
        ));
    }
    let client_ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(ApiError::bad_json)?;
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let url = format!("{}{path}", leader.trim_end_matches('/'));
    let mut outgoing = http_client().request(parts.method.clone(), &url);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) && name.as_str() != "x-forwarded-for" {
            outgoing = outgoing.header(name, value);
        }
    }
    outgoing = outgoing.header(VIA_HEADER, format!("1.1 {}", s.leadership.advertise));
    if let Some(ip) = client_ip {
        outgoing = outgoing.header("x-forwarded-for", ip);
    }
    let answer = outgoing.body(body).send().await.map_err(|err| {
        unavailable(format!(
            "the leader {leader} cannot be reached ({:#}); retry",
            anyhow::Error::new(err)
        ))
    })?;
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.map_err(|err| {
        unavailable(format!(
            "the leader {leader} broke off its answer ({err}); retry"
        ))
    })?;
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if !hop_by_hop(name) {
            response.headers_mut().append(name, value.clone());
        }
    }
    response.headers_mut().remove(header::CONTENT_LENGTH);
    Ok(response)
}
