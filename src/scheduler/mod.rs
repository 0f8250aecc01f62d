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
pub mod discovery;
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
/// Serves the API, and service-discovery DNS when `dns_listen` is given.
pub async fn serve(
    config: Config,
    dns_listen: Option<SocketAddr>,
    dns: crate::dns::DnsConfig,
) -> anyhow::Result<()> {
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
    let catalog: Arc<dyn crate::dns::ServiceCatalog> =
        Arc::new(discovery::SchedulerCatalog(scheduler.clone()));
    let mut dns_addr = None;
    if let Some(dns_listen) = dns_listen {
        let dns_server =
            crate::dns::DnsServer::bind(dns_listen, dns.clone(), catalog.clone()).await?;
        dns_addr = Some(dns_server.local_addr());
        tokio::spawn(async move {
            if let Err(error) = dns_server.run().await {
                tracing::error!("service-discovery DNS stopped: {error:#}");
            }
        });
    }
    let app = http::router(scheduler)
        .merge(crate::dns::catalog_router(catalog, &dns.datacenter))
        .into_make_service_with_connect_info::<SocketAddr>();
    println!("infra scheduler listening on {addr}");
    if let Some(dns_addr) = dns_addr {
        // After the "listening on" line, which scripts and tests read first.
        println!("infra scheduler DNS on {dns_addr}");
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the HTTP server failed")?;
    Ok(())
}
