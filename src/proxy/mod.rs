//! `infra proxy`: follows the scheduler's event stream and keeps nginx's config in step
//! (render, write atomically, `nginx -t`, reload only on change). The nixy of the platform.
//!
//! - [`model`]: apps and their healthy backends as the template sees them;
//! - [`sse`]: parsing `GET /v2/events`; [`debounce`]: bursts of triggers into one sync;
//! - [`nginx`]: atomic write, test, reload, restore; [`health`]: `GET /health`.
//!
//! May call the scheduler only through [`crate::client`], and render only through
//! [`crate::template::Templar`] so the filters match the rest of infra.

pub mod debounce;
pub mod health;
pub mod model;
pub mod nginx;
pub mod sse;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::client::api::Client;
use crate::template::Templar;
use debounce::Trigger;
use health::SharedStatus;
use nginx::{Applied, Nginx};

/// Everything a sync needs besides the scheduler client.
#[derive(Debug, Clone)]
pub struct Config {
    pub template: PathBuf,
    /// Host routes are `<app>.<domain>`.
    pub domain: String,
    /// What the main server block listens on (`80`, `127.0.0.1:8081`).
    pub http_listen: String,
    /// Address the service-port listeners bind (empty: all addresses).
    pub service_address: String,
    pub nginx: Nginx,
    pub debounce: Duration,
    pub resync: Duration,
    /// A stream silent for longer (not even a keep-alive) is reconnected.
    pub stream_idle: Duration,
}

/// One sync's outcome, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    pub applied: Applied,
    pub apps: usize,
    pub backends: usize,
}

/// Renders the config for `apps` (the template data model: `apps`, `domain`,
/// `http_listen`, `service_address`).
pub fn render(
    config: &Config,
    templar: &Templar,
    apps: &[model::ProxyApp],
) -> anyhow::Result<String> {
    let source = std::fs::read_to_string(&config.template)
        .with_context(|| format!("reading the template {}", config.template.display()))?;
    let vars = json!({
        "apps": apps,
        "domain": config.domain,
        "http_listen": config.http_listen,
        "service_address": config.service_address,
    });
    let Value::Object(vars) = vars else {
        anyhow::bail!("the template data is not an object");
    };
    templar
        .render_file(&source, &vars, true, true)
        .with_context(|| format!("rendering {}", config.template.display()))
}

/// Fetches apps with tasks, renders, applies; records the result in `status`.
pub async fn sync_once(
    client: &Client,
    config: &Config,
    status: &SharedStatus,
) -> anyhow::Result<SyncOutcome> {
    let result = fetch_render_apply(client, config).await;
    match &result {
        Ok(outcome) => health::update(status, |s| {
            s.status = "ok".into();
            s.last_sync = Some(chrono::Utc::now().to_rfc3339());
            s.apps = outcome.apps;
            s.backends = outcome.backends;
            s.last_error = None;
            if outcome.applied == Applied::Reloaded {
                s.reloads += 1;
            }
        }),
        Err(err) => health::update(status, |s| {
            s.status = "degraded".into();
            s.last_error = Some(format!("{err:#}"));
        }),
    }
    result
}

async fn fetch_render_apply(client: &Client, config: &Config) -> anyhow::Result<SyncOutcome> {
    let apps = client
        .apps_with_tasks()
        .await
        .context("fetching apps and tasks from the scheduler")?;
    let model = model::proxy_apps(&apps, &config.domain);
    let rendered = render(config, &Templar::new(), &model)?;
    let nginx = config.nginx.clone();
    let applied = tokio::task::spawn_blocking(move || nginx.apply(&rendered))
        .await
        .context("the nginx step panicked")??;
    Ok(SyncOutcome {
        applied,
        apps: model.len(),
        backends: model.iter().map(|a| a.backends.len()).sum(),
    })
}

/// Runs until killed: the health endpoint, the event follower, the periodic resync, and
/// the debounced sync loop.
pub async fn run(client: Client, config: Config, listen_health: SocketAddr) -> anyhow::Result<()> {
    let status = SharedStatus::default();
    let (bound, _health) = health::serve(listen_health, status.clone()).await?;
    println!("infra proxy health on {bound}");
    let client = Arc::new(client);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _ = tx.send(Trigger::Timer);
    tokio::spawn(follow_events(
        client.clone(),
        tx.clone(),
        config.stream_idle,
    ));
    tokio::spawn(periodic(tx, config.resync));
    while let Some(count) = debounce::next_batch(&mut rx, config.debounce).await {
        match sync_once(&client, &config, &status).await {
            Ok(outcome) => tracing::info!(
                "sync after {count} trigger(s): {} apps, {} backends, {:?}",
                outcome.apps,
                outcome.backends,
                outcome.applied
            ),
            Err(err) => tracing::error!("sync failed (nginx keeps the last good config): {err:#}"),
        }
    }
    Ok(())
}

async fn periodic(tx: mpsc::UnboundedSender<Trigger>, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.tick().await;
    loop {
        interval.tick().await;
        if tx.send(Trigger::Timer).is_err() {
            return;
        }
    }
}

/// Follows `/v2/events` forever: every (re)connect triggers a full resync, relevant
/// events trigger a sync; reconnects with exponential backoff (0.5 s up to 30 s).
async fn follow_events(client: Arc<Client>, tx: mpsc::UnboundedSender<Trigger>, idle: Duration) {
    let mut backoff = Duration::from_millis(500);
    loop {
        match client.event_stream().await {
            Ok(response) => {
                tracing::info!("attached to the scheduler's event stream");
                backoff = Duration::from_millis(500);
                if tx.send(Trigger::Connected).is_err() {
                    return;
                }
                let mut parser = sse::SseParser::default();
                let mut stream = response.bytes_stream();
                loop {
                    match tokio::time::timeout(idle, stream.next()).await {
                        Ok(Some(Ok(chunk))) => {
                            for event in parser.feed(&chunk) {
                                if sse::is_relevant(&event.kind) {
                                    tracing::debug!("event {}", event.kind);
                                    if tx.send(Trigger::Event).is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                        Ok(Some(Err(err))) => {
                            tracing::warn!("the event stream broke: {err}");
                            break;
                        }
                        Ok(None) => {
                            tracing::warn!("the scheduler closed the event stream");
                            break;
                        }
                        Err(_) => {
                            tracing::warn!(
                                "the event stream was silent for {idle:?}; reconnecting"
                            );
                            break;
                        }
                    }
                }
            }
            Err(err) => tracing::warn!("cannot attach to the event stream: {err}"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}
