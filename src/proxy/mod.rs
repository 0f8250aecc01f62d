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

/// `templates/nginx-proxy.conf.j2`, used when `--template` is not given.
pub const BUILTIN_TEMPLATE: &str = include_str!("../../templates/nginx-proxy.conf.j2");

/// Everything a sync needs besides the scheduler client.
#[derive(Debug, Clone)]
pub struct Config {
    /// The template file; `None` uses the one built into the binary.
    pub template: Option<PathBuf>,
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
    let (source, name) = match &config.template {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the template {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (
            BUILTIN_TEMPLATE.to_string(),
            "the built-in template".to_string(),
        ),
    };
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
        .with_context(|| format!("rendering {name}"))
}

/// What a daemon remembers between syncs: the last render nginx rejected, so the same
/// broken config is not written and tested again on every resync.
#[derive(Debug, Default)]
pub struct Memory {
    rejected: Option<(String, String)>,
}

/// Fetches apps with tasks, renders, applies; records the result in `status`.
pub async fn sync_once(
    client: &Client,
    config: &Config,
    status: &SharedStatus,
    memory: &mut Memory,
) -> anyhow::Result<SyncOutcome> {
    let result = fetch_render_apply(client, config, memory).await;
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

async fn fetch_render_apply(
    client: &Client,
    config: &Config,
    memory: &mut Memory,
) -> anyhow::Result<SyncOutcome> {
    let apps = client
        .apps_with_tasks()
        .await
        .context("fetching apps and tasks from the scheduler")?;
    let model = model::proxy_apps(&apps, &config.domain);
    let rendered = render(config, &Templar::new(), &model)?;
    if let Some((text, error)) = &memory.rejected {
        if *text == rendered {
            anyhow::bail!("{error} (the rendered config is unchanged since)");
        }
    }
    let nginx = config.nginx.clone();
    let candidate = rendered.clone();
    let result = tokio::task::spawn_blocking(move || nginx.apply(&candidate))
        .await
        .context("the nginx step panicked")?;
    let applied = match result {
        Ok(applied) => {
            memory.rejected = None;
            applied
        }
        Err(err) => {
            memory.rejected = Some((rendered, format!("{err:#}")));
            return Err(err);
        }
    };
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
    let mut memory = Memory::default();
    while let Some(count) = debounce::next_batch(&mut rx, config.debounce).await {
        match sync_once(&client, &config, &status, &mut memory).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Backend, ProxyApp};

    fn config() -> Config {
        Config {
            template: None,
            domain: "infra".into(),
            http_listen: "127.0.0.1:8081".into(),
            service_address: "127.0.0.1".into(),
            nginx: Nginx {
                config: "/nonexistent/infra-proxy.conf".into(),
                bin: "nginx".into(),
                main_config: None,
                reload_cmd: "true".into(),
            },
            debounce: Duration::from_millis(500),
            resync: Duration::from_secs(30),
            stream_idle: Duration::from_secs(60),
        }
    }

    fn app(name: &str, ports: &[u16], service_port: Option<u32>) -> ProxyApp {
        ProxyApp {
            id: format!("/{name}"),
            name: name.into(),
            path: format!("/{name}/"),
            host: format!("{name}.infra"),
            service_port,
            labels: Default::default(),
            backends: ports
                .iter()
                .map(|p| Backend {
                    host: "10.0.0.1".into(),
                    port: *p,
                })
                .collect(),
        }
    }

    #[test]
    fn the_template_routes_healthy_apps_and_gives_503_to_the_others() {
        let apps = vec![
            app("web", &[31000, 31001], Some(10000)),
            app("idle", &[], None),
        ];
        let text = render(&config(), &Templar::new(), &apps).unwrap();
        assert!(text.contains(
            "upstream infra-app-web {\n    server 10.0.0.1:31000 max_fails=1 fail_timeout=5s;\n    server 10.0.0.1:31001 "
        ), "{text}");
        assert!(!text.contains("upstream infra-app-idle"), "{text}");
        assert!(
            text.contains("location /web/ {\n        proxy_pass http://infra-app-web/;"),
            "{text}"
        );
        assert!(
            text.contains(
                "location /idle/ {\n        default_type text/plain;\n        return 503"
            ),
            "{text}"
        );
        assert!(text.contains("server_name web.infra;"), "{text}");
        assert!(text.contains("server_name idle.infra;"), "{text}");
        assert!(text.contains("listen 127.0.0.1:10000;"), "{text}");
        assert_eq!(
            text.matches("listen 127.0.0.1:8081 default_server;")
                .count(),
            1,
            "{text}"
        );
        assert_eq!(text.matches("    listen 127.0.0.1:").count(), 4, "{text}");
    }

    #[test]
    fn a_missing_template_names_the_file() {
        let mut config = config();
        config.template = Some("/nonexistent/x.j2".into());
        let err = render(&config, &Templar::new(), &[]).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/x.j2"), "{err:#}");
    }
}
