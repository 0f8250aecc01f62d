//! The proxy's own state as `GET /health` shows it: `ok` after a good sync, `degraded`
//! with the error after a failed one (nginx keeps serving the last good config),
//! `starting` before the first sync.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::{extract::State, http::StatusCode, response::IntoResponse, routing::get, Json, Router};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Status {
    /// `starting`, `ok` or `degraded`.
    pub status: String,
    /// RFC 3339 time of the last successful sync.
    pub last_sync: Option<String>,
    /// Apps and healthy backends in the config nginx has.
    pub apps: usize,
    pub backends: usize,
    pub last_error: Option<String>,
    /// How many times nginx was reloaded.
    pub reloads: u64,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            status: "starting".into(),
            last_sync: None,
            apps: 0,
            backends: 0,
            last_error: None,
            reloads: 0,
        }
    }
}

pub type SharedStatus = Arc<Mutex<Status>>;

/// A copy of the status (a poisoned lock still has a usable value).
pub fn snapshot(status: &SharedStatus) -> Status {
    match status.lock() {
        Ok(s) => s.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

pub fn update(status: &SharedStatus, change: impl FnOnce(&mut Status)) {
    match status.lock() {
        Ok(mut s) => change(&mut s),
        Err(poisoned) => change(&mut poisoned.into_inner()),
    }
}

async fn health(State(status): State<SharedStatus>) -> impl IntoResponse {
    (StatusCode::OK, Json(snapshot(&status)))
}

/// Binds `addr` and serves `/health` until the task is dropped; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    status: SharedStatus,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding --listen-health {addr}"))?;
    let bound = listener
        .local_addr()
        .context("reading the health address")?;
    let app = Router::new()
        .route("/health", get(health))
        .with_state(status);
    let handle = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("the health endpoint stopped: {e}");
        }
    });
    Ok((bound, handle))
}
