//! `infra scheduler`: Marathon's v2 API, the reconcile loop (desired vs actual per app),
//! placement (feasibility -> rank -> plan -> commit), deployments, health, events, and the
//! durable store behind a trait. Never imports the engine; shares only `api` with agents.
//!
//! Files: `appdef` (validation, defaults), `constraints` and `placement` (pure placement),
//! `deployments` (pure step decisions, backoff, dependency order), `reconcile` (one app's
//! reconcile over the state), `state` (in-memory state), `store` + `redb_store` (durable
//! state), `core` (lock, commit, work queue, timer), `apps` (app writes), `agents` (agent
//! protocol), `events` (SSE bus), `http` + `http_misc` (the API), `error`, `clock`.

pub mod agents;
pub mod appdef;
pub mod apps;
pub mod clock;
pub mod constraints;
pub mod core;
pub mod deployments;
pub mod error;
pub mod events;
pub mod http;
pub mod http_misc;
pub mod placement;
pub mod reconcile;
pub mod redb_store;
pub mod state;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;

pub use self::core::{Config, Scheduler};
pub use self::placement::Strategy;

/// Opens the store under `config.data_dir`, binds `config.listen`, and serves until the
/// process ends. Prints `infra scheduler listening on ADDR` once it accepts connections.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let store = Arc::new(redb_store::RedbStore::open(&config.data_dir)?);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr().context("listener address")?;
    let mut config = config;
    config.listen = addr;
    let (scheduler, work) = Scheduler::new(config, store)?;
    tokio::spawn(scheduler.clone().run_worker(work));
    tokio::spawn(scheduler.clone().run_timer());
    let app = http::router(scheduler).into_make_service_with_connect_info::<SocketAddr>();
    println!("infra scheduler listening on {addr}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the HTTP server failed")?;
    Ok(())
}
