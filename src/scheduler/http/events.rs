//! `/v2/events`: the event bus as server-sent events, with keep-alive comments and
//! Marathon's `event_type` filter.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use serde_json::Value;

use super::{Params, Shared};

pub async fn events(
    State(s): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Query(params): Params,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let filter: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "event_type")
        .map(|(_, v)| v.clone())
        .collect();
    let mut rx = s.bus.subscribe();
    s.attached(&addr.ip().to_string());
    let keep_alive = s.config.sse_keep_alive;
    let stream = async_stream::stream! {
        loop {
            match rx.recv().await {
                Ok(event) => {
                    let kind = event.get("eventType").and_then(Value::as_str).unwrap_or("").to_string();
                    if !filter.is_empty() && !filter.contains(&kind) {
                        continue;
                    }
                    yield Ok(SseEvent::default().event(kind).data(event.to_string()));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("an event stream lagged by {n} events");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    };
    Sse::new(stream).keep_alive(KeepAlive::new().interval(keep_alive).text("keep-alive"))
}
