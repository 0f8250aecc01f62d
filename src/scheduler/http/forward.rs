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
/// The largest body forwarded: the largest any route reads (the leader applies the
/// route's own limit).
const MAX_BODY: usize = super::AGENT_BODY_LIMIT;

/// The axum middleware.
pub async fn leader_proxy(State(s): State<Shared>, request: Request, next: Next) -> Response {
    let mut response = if !needs_leader(&request) || s.leadership.is_leader() {
        next.run(request).await
    } else {
        match s.leadership.wait_for_leader(LEADER_PATIENCE).await {
            // This node finished taking over while the request waited.
            Some(leader) if leader == s.leadership.advertise => next.run(request).await,
            Some(leader) => forward(&s, &leader, request, next)
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

/// Writes, and the reads only the leader can answer: the launch queue and the tasks'
/// recent output live in the leader's memory.
fn needs_leader(request: &Request) -> bool {
    let writes = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let path = request.uri().path();
    writes
        || path.starts_with("/v2/queue")
        || (path.starts_with("/v2/infra/tasks/") && path.ends_with("/output"))
}

/// The client that forwards to the leader: it trusts the cluster CA alone and presents
/// this node's certificate (the leader knows a control node by it). Built once, from the
/// first request's configuration (which never changes).
fn http_client(s: &Shared) -> Result<&'static reqwest::Client, ApiError> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client);
    }
    let builder = reqwest::Client::builder()
        // A control node answers a connection within milliseconds: one that does not
        // in a second is down, and the request goes to the next leader instead.
        .connect_timeout(Duration::from_secs(1))
        // Writes take milliseconds; a leader that hangs this long is as good as gone.
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none());
    let tls = s.config.tls.as_ref();
    let client = crate::tls::client_builder(
        builder,
        tls.and_then(|t| t.ca.as_deref()),
        tls.map(|t| &t.identity),
    )
    .and_then(|b| b.build().map_err(anyhow::Error::from))
    .map_err(|error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot build the client that forwards to the leader: {error:#}"),
        )
    })?;
    Ok(CLIENT.get_or_init(|| client))
}

/// Headers that belong to one hop and are not passed on.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host" | "connection" | "content-length" | "transfer-encoding" | "keep-alive" | "upgrade"
    )
}

/// Sends the request on to the leader and its answer back. When the leader cannot be
/// reached (its host died and the election has not said so yet), waits for the election to
/// name another leader and sends it there, all within [`LEADER_PATIENCE`].
async fn forward(
    s: &Shared,
    leader: &str,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    // A forwarded request reaching a node that does not lead means the two nodes disagree
    // on the leader: an election is under way. Marathon answers such a loop with 502; it
    // is transient, so this answers 503, which clients (the CLI among them) retry.
    if let Some(via) = request.headers().get(VIA_HEADER) {
        let via = via.to_str().unwrap_or("?");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
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
        .map_err(|error| {
            if super::is_too_long(&error) {
                ApiError::new(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    format!("Request body too large: at most {MAX_BODY} bytes are forwarded"),
                )
            } else {
                ApiError::bad_json(error)
            }
        })?;
    let deadline = tokio::time::Instant::now() + LEADER_PATIENCE;
    let mut leader = leader.to_string();
    loop {
        let error = match send(s, &leader, &parts, &body, client_ip.as_deref()).await {
            Ok(response) => return Ok(response),
            Err(Unsent::Refused(message)) => message,
            Err(Unsent::Broken(message)) => {
                return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message))
            }
        };
        // Not sent: safe to send again, to whoever leads next.
        let elected = loop {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error));
            }
            match s.leadership.wait_for_leader(deadline - now).await {
                Some(elected) if elected != leader => break elected,
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        if elected == s.leadership.advertise {
            // This node was elected meanwhile: it answers itself.
            let request = Request::from_parts(parts, Body::from(body));
            return Ok(next.run(request).await);
        }
        leader = elected;
    }
}

/// Why a forwarded request got no answer.
enum Unsent {
    /// It never reached the leader (no connection): it may be sent elsewhere.
    Refused(String),
    /// It may have reached the leader, which did not answer in full.
    Broken(String),
}

async fn send(
    s: &Shared,
    leader: &str,
    parts: &axum::http::request::Parts,
    body: &axum::body::Bytes,
    client_ip: Option<&str>,
) -> Result<Response, Unsent> {
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let url = format!("{}{path}", leader.trim_end_matches('/'));
    let client = http_client(s).map_err(|error| Unsent::Broken(error.body.message))?;
    let mut outgoing = client.request(parts.method.clone(), &url);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) && name.as_str() != "x-forwarded-for" {
            outgoing = outgoing.header(name, value);
        }
    }
    outgoing = outgoing.header(VIA_HEADER, format!("1.1 {}", s.leadership.advertise));
    if let Some(ip) = client_ip {
        outgoing = outgoing.header("x-forwarded-for", ip);
    }
    let answer = outgoing.body(body.clone()).send().await.map_err(|err| {
        let connect = err.is_connect();
        let message = format!(
            "the leader {leader} cannot be reached ({:#}); retry",
            anyhow::Error::new(err)
        );
        if connect {
            Unsent::Refused(message)
        } else {
            Unsent::Broken(message)
        }
    })?;
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.map_err(|err| {
        Unsent::Broken(format!(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_past_the_limit_is_told_apart_from_a_broken_one() {
        let error = axum::body::to_bytes(Body::from(vec![b'x'; 20]), 10)
            .await
            .expect_err("too long");
        assert!(super::super::is_too_long(&error));
        let broken = axum::Error::new(std::io::Error::other("connection reset"));
        assert!(!super::super::is_too_long(&broken));
    }
}
