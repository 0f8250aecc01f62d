//! `infra scheduler`: Marathon's v2 API, the reconcile loop (desired vs actual per app),
//! placement (feasibility -> rank -> plan -> commit), deployments, health, events, and the
//! durable store behind a trait. Never imports the engine; shares only `api` with agents.
//!
//! Files: `placement` (pure placement), `residency` (placement of apps with persistent volumes), `moves` (moving them with their data),
//! `deployments` (pure step decisions, backoff, dependency order), `reconcile` (one app's
//! reconcile over the state), `state` (in-memory state), `store` + `redb_store` +
//! `etcd_store` (durable state: one scheduler, or the control nodes' shared etcd),
//! `leadership` (etcd election, who may act), `follow` (a node's watch-fed copy of the
//! shared state), `core` (lock, commit,
//! work queue, timer), `apps` (app writes), `agents` (agent protocol), `delta` (heartbeats that carry only changes), `events` (SSE bus),
//! `http` (the API, one file per resource; `http::forward` sends
//! writes on a follower to the leader), `error`, `clock`.

pub mod agents;
pub mod apps;
pub mod clock;
pub mod core;
pub mod delta;
pub mod deployments;
pub mod discovery;
pub mod error;
pub mod etcd_store;
pub mod events;
pub mod follow;
pub mod http;
pub mod leadership;
pub mod moves;
pub mod placement;
pub mod progress;
pub mod reconcile;
pub mod redb_store;
pub mod residency;
pub mod state;
pub mod store;
pub mod task_output;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

pub use self::core::{AuthConfig, Config, Scheduler, TlsConfig};
pub use self::placement::Strategy;

use self::leadership::Leadership;
use self::store::{Snapshot, Store};

/// Opens the store (redb under `config.data_dir`, or etcd with `config.etcd`), binds
/// `config.listen`, and serves until SIGINT or SIGTERM. Prints `infra scheduler listening
/// on ADDR` once it accepts connections. Serves the API, and service-discovery DNS when
/// `dns_listen` is given. With etcd, this node follows the shared state, campaigns for
/// leadership, and resigns on the way out so another node takes over at once.
pub async fn serve(
    config: Config,
    dns_listen: Option<SocketAddr>,
    dns: crate::dns::DnsConfig,
) -> anyhow::Result<()> {
    // Before binding: a certificate that cannot be read is a start-up error, not a
    // scheduler that listens and then fails every handshake.
    let tls = match &config.tls {
        Some(tls) => Some(
            crate::tls::server_config(&tls.identity, tls.ca.as_deref())
                .context("the API's TLS certificate")?,
        ),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr().context("listener address")?;
    let mut config = config;
    config.listen = addr;
    let advertise = config
        .advertise
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{addr}"));
    let advertise = advertise.trim_end_matches('/').to_string();
    let mut etcd = None;
    let (store, leadership, initial): (Arc<dyn Store>, Leadership, Snapshot) = match &config.etcd {
        None => {
            let store = redb_store::RedbStore::open(&config.data_dir)?;
            let initial = store.load().await?;
            (Arc::new(store), Leadership::single(advertise), initial)
        }
        Some(etcd_config) => {
            let store = etcd_store::EtcdStore::connect(etcd_config).await?;
            etcd = Some(store.clone());
            (store, Leadership::elected(advertise), Snapshot::default())
        }
    };
    let leadership = Arc::new(leadership);
    let election = config.election;
    let config_header_timeout = config.header_read_timeout;
    let (scheduler, work) = Scheduler::new(config, store, leadership.clone(), initial)?;
    tokio::spawn(scheduler.clone().run_worker(work));
    tokio::spawn(scheduler.clone().run_timer());
    let election_task = etcd.map(|etcd| {
        tokio::spawn(follow::run_follower(scheduler.clone(), etcd.clone()));
        tokio::spawn(leadership::run_election(scheduler.clone(), etcd, election))
    });
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
    let app = http::router(scheduler.clone())
        .merge(http::services::router(catalog.clone(), &dns))
        .merge(crate::dns::catalog_router(catalog, &dns.datacenter));
    // Over everything merged: no route escapes the rule table.
    let app = http::authorized(app, scheduler);
    println!("infra scheduler listening on {addr}");
    if let Some(dns_addr) = dns_addr {
        // After the "listening on" line, which scripts and tests read first.
        println!("infra scheduler DNS on {dns_addr}");
    }
    let limits = http::serve::Limits {
        header_read_timeout: config_header_timeout,
    };
    let stop = async move {
        stop_signal().await;
        leadership.shut_down();
        if let Some(task) = election_task {
            // The term ends by revoking the lease: the next leader need not wait for it.
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
    };
    // Event streams never end by themselves: past a grace period, stop anyway.
    http::serve::serve(listener, app, limits, tls, stop, Duration::from_secs(2))
        .await
        .context("the HTTP server failed")?;
    Ok(())
}

/// SIGINT or SIGTERM (systemd's stop).
async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(term) => { term.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}
