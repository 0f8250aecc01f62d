//! The agent daemon: registers with the scheduler (trying the configured URLs in order and
//! failing over), then heartbeats every interval with the tasks' statuses (only those that
//! changed, to a scheduler that speaks the delta protocol: see `agent::report`) and applies
//! the assignments in the answer. A 404 on heartbeat means the scheduler forgot us: register
//! again. SIGTERM/ctrl-c stop the agent but leave its tasks running for the next start.

use std::time::Duration;

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::config::{self, AgentConfig, AgentTls};
use super::{docker, Supervisor};
use crate::api::agent::{
    heartbeat_path, Assignments, Heartbeat, Registered, Registration, TaskStatus, REGISTER_PATH,
};

/// How long a heartbeat waits after a task changed, for the other changes of the same
/// burst: short next to any heartbeat interval, long enough for a batch of starts.
const CHANGE_GATHERING: Duration = Duration::from_millis(100);

/// Deletes the volumes of apps that moved away for good (the scheduler has recorded their
/// new agent). Never while a task of the app still runs here: a release that raced with
/// a newer placement waits for the scheduler's next answer, which no longer carries it.
fn release_volumes(supervisor: &Supervisor, data_dir: &std::path::Path, apps: &[String]) {
    for app_id in apps {
        if supervisor.runs_app(app_id) || !super::volumes::app_dir(data_dir, app_id).exists() {
            continue;
        }
        match super::volumes::remove_app(data_dir, app_id) {
            Ok(()) => tracing::info!("{app_id}: volumes moved away; the copy here is deleted"),
            Err(err) => tracing::warn!("{app_id}: deleting the moved volumes: {err:#}"),
        }
    }
}

/// Why a request to the schedulers failed.
#[derive(Debug)]
pub enum CallError {
    /// The scheduler answered 404 (for a heartbeat: it does not know this agent).
    NotFound,
    Other(anyhow::Error),
}

/// The scheduler URLs, tried in order starting from the one that answered last.
pub struct Schedulers {
    urls: Vec<String>,
    current: usize,
    http: reqwest::Client,
}

impl Schedulers {
    pub fn new(urls: Vec<String>) -> anyhow::Result<Self> {
        Schedulers::with_tls(urls, &AgentTls::default())
    }

    /// Schedulers reached over TLS: checked against the cluster CA, and shown this host's
    /// certificate (the scheduler takes an agent's word only for the host it names).
    pub fn with_tls(urls: Vec<String>, tls: &AgentTls) -> anyhow::Result<Self> {
        anyhow::ensure!(!urls.is_empty(), "no scheduler URL given (--scheduler)");
        // Short: a scheduler that hangs (a frozen host) must not hold the agent past a few
        // heartbeats before it tries the next; every answer normally takes milliseconds.
        let builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2));
        let http = crate::tls::client_builder(builder, tls.ca.as_deref(), tls.identity.as_ref())?
            .build()
            .context("building the HTTP client")?;
        let urls = urls
            .into_iter()
            .map(|u| u.trim_end_matches('/').to_string())
            .collect();
        Ok(Schedulers {
            urls,
            current: 0,
            http,
        })
    }

    /// POSTs `body` as JSON to `path` on the current scheduler, failing over to the next
    /// ones on connection errors and 5xx answers.
    pub async fn post<B: Serialize, R: DeserializeOwned>(
        &mut self,
        path: &str,
        body: &B,
    ) -> Result<R, CallError> {
        let mut errors = Vec::new();
        for attempt in 0..self.urls.len() {
            let index = (self.current + attempt) % self.urls.len();
            let url = format!("{}{}", self.urls[index], path);
            match self.http.post(&url).json(body).send().await {
                Ok(response) if response.status() == reqwest::StatusCode::NOT_FOUND => {
                    self.current = index;
                    return Err(CallError::NotFound);
                }
                Ok(response) if response.status().is_success() => {
                    self.current = index;
                    return response
                        .json::<R>()
                        .await
                        .with_context(|| format!("decoding the answer of {url}"))
                        .map_err(CallError::Other);
                }
                Ok(response) if response.status().is_server_error() => {
                    errors.push(format!("{url}: HTTP {}", response.status()));
                }
                Ok(response) => {
                    self.current = index;
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    return Err(CallError::Other(anyhow::anyhow!(
                        "{url}: HTTP {status}: {text}"
                    )));
                }
                Err(err) => errors.push(format!("{url}: {err}")),
            }
        }
        Err(CallError::Other(anyhow::anyhow!(
            "no scheduler answered: {}",
            errors.join("; ")
        )))
    }

    pub fn first(&self) -> &str {
        &self.urls[0]
    }
}

/// The local address on the route to `scheduler_url` (no packet is sent).
pub fn detect_address(scheduler_url: &str) -> Option<String> {
    let url = reqwest::Url::parse(scheduler_url).ok()?;
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    let target = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .ok()?
        .next()?;
    let socket = std::net::UdpSocket::bind(if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })
    .ok()?;
    socket.connect(target).ok()?;
    Some(socket.local_addr().ok()?.ip().to_string())
}

/// Runs the agent until SIGTERM or ctrl-c.
/// Ports of `range` that the host listens on but none of the agent's tasks was given.
fn busy_ports(range: (u16, u16), tasks: &[TaskStatus]) -> Vec<u16> {
    let ours: std::collections::BTreeSet<u16> = tasks
        .iter()
        .flat_map(|t| t.host_ports.iter().copied())
        .collect();
    super::procfs::listening_ports()
        .into_iter()
        .filter(|p| (range.0..=range.1).contains(p) && !ours.contains(p))
        .collect()
}

pub async fn run(config: AgentConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let agent_id = config::agent_id(&config.data_dir)?;
    let engine = docker::connect().await;
    let supervisor = Supervisor::open(&config.data_dir, engine).await?;
    let mut schedulers = Schedulers::with_tls(config.schedulers.clone(), &config.tls)?;
    let address = match &config.address {
        Some(address) => address.clone(),
        None => detect_address(schedulers.first()).unwrap_or_else(|| "127.0.0.1".into()),
    };
    let volume_url = super::volume_mover::start_server(&config, &address).await?;
    let movers = super::volume_mover::VolumeMovers::new(&config.data_dir, &config.tls);
    let registration = Registration {
        agent_id: agent_id.clone(),
        hostname: config.hostname.clone(),
        address: address.clone(),
        cpus: config.cpus.unwrap_or_else(config::detect_cpus),
        mem: match config.mem {
            Some(mem) => mem,
            None => config::detect_mem_mb()?,
        },
        disk: config::detect_disk_mb(&config.data_dir),
        port_range: config.port_range,
        attributes: config.attributes.clone(),
        docker: supervisor.has_docker(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        volume_url,
    };
    tracing::info!("agent {agent_id} starting: {registration:?}");
    let mut interval = config.heartbeat_interval;
    let mut registered = false;
    let mut output = super::output::OutputTracker::default();
    let mut reports = super::report::Reports::default();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    loop {
        if !registered {
            match schedulers
                .post::<_, Registered>(REGISTER_PATH, &registration)
                .await
            {
                Ok(answer) => {
                    registered = true;
                    if answer.heartbeat_interval_ms > 0 {
                        interval = Duration::from_millis(answer.heartbeat_interval_ms);
                    }
                    tracing::info!("registered as {}", answer.agent_id);
                }
                Err(CallError::NotFound) => {
                    tracing::warn!("registration: the scheduler has no registration endpoint")
                }
                Err(CallError::Other(err)) => tracing::warn!("registration failed: {err:#}"),
            }
        }
        if registered {
            let tasks = supervisor.statuses();
            let mut tails = output.changed(&config.data_dir, &tasks);
            if let Some((engine, containers)) = supervisor.containers() {
                tails.extend(output.changed_containers(&engine, &containers).await);
            }
            let report = reports.report(&tasks);
            let heartbeat = Heartbeat {
                tasks: report.tasks,
                busy_ports: busy_ports(config.port_range, &tasks),
                output: tails.iter().map(|(tail, _)| tail.clone()).collect(),
                volume_moves: movers.progress(),
                volumes: super::volumes::held_apps(&config.data_dir),
                generation: report.generation,
                delta: report.delta,
                partial: true,
            };
            let asked = schedulers.current;
            match schedulers
                .post::<_, Assignments>(&heartbeat_path(&agent_id), &heartbeat)
                .await
            {
                Ok(mut assignments) => {
                    let volume_moves = std::mem::take(&mut assignments.volume_moves);
                    let volume_releases = std::mem::take(&mut assignments.volume_releases);
                    let wanted = reports.accepted(&tasks, heartbeat.delta, assignments);
                    supervisor.acknowledge(&tasks);
                    supervisor.apply(wanted).await;
                    if schedulers.current == asked {
                        output.accepted(&tails, &tasks);
                    } else {
                        // Another control node answered (a new leader): it has none of
                        // the tails or statuses sent before.
                        output.resend_all();
                        reports.forget_baseline();
                    }
                    movers.apply(&volume_moves);
                    release_volumes(&supervisor, &config.data_dir, &volume_releases);
                }
                Err(CallError::NotFound) => {
                    tracing::info!("the scheduler does not know this agent: registering again");
                    registered = false;
                    output.resend_all();
                    reports.reset();
                    continue;
                }
                Err(CallError::Other(err)) => {
                    tracing::warn!("heartbeat failed: {err:#}");
                    output.resend_all();
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            // A change goes out now; the pause gathers the changes of one burst (a batch of
            // tasks starting) into one heartbeat.
            _ = supervisor.changed(), if registered => {
                tokio::time::sleep(CHANGE_GATHERING).await;
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
        }
    }
    tracing::info!("agent stopping; its tasks keep running");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real HTTP server on loopback answering registration, and 404 for heartbeats.
    async fn live_scheduler() -> String {
        let app = axum::Router::new().route(
            REGISTER_PATH,
            axum::routing::post(|axum::Json(reg): axum::Json<Registration>| async move {
                axum::Json(Registered {
                    agent_id: reg.agent_id,
                    heartbeat_interval_ms: 700,
                })
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    fn dead_url() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    }

    fn registration() -> Registration {
        Registration {
            agent_id: "a1".into(),
            hostname: "h".into(),
            address: "127.0.0.1".into(),
            cpus: 1.0,
            mem: 64.0,
            disk: 0.0,
            port_range: (31000, 31010),
            attributes: Default::default(),
            docker: false,
            version: "test".into(),
            volume_url: None,
        }
    }

    #[tokio::test]
    async fn fails_over_to_the_next_scheduler_and_stays_there() {
        let live = live_scheduler().await;
        let mut schedulers = Schedulers::new(vec![dead_url(), live.clone()]).unwrap();
        let answer: Registered = match schedulers.post(REGISTER_PATH, &registration()).await {
            Ok(answer) => answer,
            Err(err) => panic!("{err:?}"),
        };
        assert_eq!(answer.agent_id, "a1");
        assert_eq!(answer.heartbeat_interval_ms, 700);
        assert_eq!(schedulers.current, 1);
        // An unknown agent's heartbeat is a 404: register again.
        let heartbeat = Heartbeat {
            tasks: Vec::new(),
            busy_ports: Vec::new(),
            output: Vec::new(),
            volume_moves: Vec::new(),
            volumes: Vec::new(),
            generation: None,
            delta: false,
            partial: false,
        };
        let result = schedulers
            .post::<_, Assignments>(&heartbeat_path("a1"), &heartbeat)
            .await;
        assert!(matches!(result, Err(CallError::NotFound)));
    }

    #[tokio::test]
    async fn no_scheduler_answering_names_every_url() {
        let (a, b) = (dead_url(), dead_url());
        let mut schedulers = Schedulers::new(vec![a.clone(), b.clone()]).unwrap();
        match schedulers
            .post::<_, Registered>(REGISTER_PATH, &registration())
            .await
        {
            Err(CallError::Other(err)) => {
                let text = format!("{err:#}");
                assert!(text.contains(&a) && text.contains(&b), "{text}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn the_address_is_the_route_to_the_scheduler() {
        assert_eq!(
            detect_address("http://127.0.0.1:8080").as_deref(),
            Some("127.0.0.1")
        );
    }
}
