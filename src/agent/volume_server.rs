//! The agent's volume server: other agents pull persistent volumes from it when a task
//! moves (the receiver pulls, the sender only answers: see docs/volumes.md for why).
//! HTTPS with mutual TLS: only a client holding a certificate from the cluster CA (every
//! agent has its host's) gets an answer; the scheduler is not on the data path.
//!
//! - `GET /v1/volumes/manifest?app=ID[&hashed=true]`: [`Manifest`] of the app's volumes;
//! - `GET /v1/volumes/file?app=ID&path=REL`: one file's bytes.
//!
//! Read-only: another agent can never delete a volume here. The agent deletes an app's
//! volumes itself, when its scheduler says they moved away for good.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::io::AsyncReadExt;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::volume_manifest::{self, is_safe_relative};
use super::volumes;

pub const MANIFEST_PATH: &str = "/v1/volumes/manifest";
pub const FILE_PATH: &str = "/v1/volumes/file";

type Params = Query<HashMap<String, String>>;

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, message.into()).into_response()
}

/// The `app` parameter when it is an app id.
fn app_param(params: &HashMap<String, String>) -> Option<String> {
    params
        .get("app")
        .filter(|app| app.starts_with('/') && !app.contains(".."))
        .cloned()
}

fn bad_app() -> Response {
    refuse(StatusCode::BAD_REQUEST, "app: expected an app id")
}

async fn manifest(State(data_dir): State<Arc<PathBuf>>, Query(params): Params) -> Response {
    let Some(app) = app_param(&params) else {
        return bad_app();
    };
    let hashed = params.get("hashed").is_some_and(|v| v == "true");
    let root = volumes::app_dir(&data_dir, &app);
    match tokio::task::spawn_blocking(move || volume_manifest::scan(&root, hashed)).await {
        Ok(Ok(manifest)) => Json(manifest).into_response(),
        Ok(Err(err)) => refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("{err:#}")),
        Err(err) => refuse(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    }
}

async fn file(State(data_dir): State<Arc<PathBuf>>, Query(params): Params) -> Response {
    let Some(app) = app_param(&params) else {
        return bad_app();
    };
    let Some(relative) = params.get("path").filter(|p| is_safe_relative(p)) else {
        return refuse(StatusCode::BAD_REQUEST, "path: expected a relative path");
    };
    let path = volumes::app_dir(&data_dir, &app).join(relative);
    // Not through a symlink: the volume's own files only.
    match tokio::fs::symlink_metadata(&path).await {
        Ok(meta) if meta.is_file() => {}
        _ => return refuse(StatusCode::NOT_FOUND, format!("no file {relative}")),
    }
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(err) => return refuse(StatusCode::NOT_FOUND, format!("{relative}: {err}")),
    };
    let stream = async_stream::stream! {
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            match file.read(&mut buffer).await {
                Ok(0) => break,
                Ok(n) => yield Ok(bytes::Bytes::copy_from_slice(&buffer[..n])),
                Err(err) => {
                    yield Err(err);
                    break;
                }
            }
        }
    };
    axum::body::Body::from_stream(stream).into_response()
}

fn router(data_dir: PathBuf) -> Router {
    Router::new()
        .route(MANIFEST_PATH, get(manifest))
        .route(FILE_PATH, get(file))
        .with_state(Arc::new(data_dir))
}

/// Binds `listen` and serves in the background; returns the bound address.
pub async fn spawn(
    listen: SocketAddr,
    identity: &crate::tls::Identity,
    ca: &std::path::Path,
    data_dir: PathBuf,
) -> anyhow::Result<SocketAddr> {
    let tls = crate::tls::mutual_server_config(identity, ca)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the volume server on {listen}"))?;
    let bound = listener
        .local_addr()
        .context("the volume server's address")?;
    let acceptor = TlsAcceptor::from(tls);
    let router = router(data_dir);
    tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a volume connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let router = router.clone();
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    acceptor.accept(stream),
                );
                let stream = match handshake.await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::info!(%peer, "volume client refused: {error}");
                        return;
                    }
                    Err(_) => return,
                };
                let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
                    router.clone().oneshot(request.map(axum::body::Body::new))
                });
                if let Err(error) = Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(%peer, "volume connection ended: {error}");
                }
            });
        }
    });
    Ok(bound)
}
