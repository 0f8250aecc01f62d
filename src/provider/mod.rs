//! Creating hosts: the `docker` provider makes systemd containers with sshd on a private
//! Docker network (the `vagrant up` of this project), and builds their image.
//!
//! Owns: the host image, containers, networks, the cluster's state folder (SSH key,
//! known_hosts). May call: inventory (to read and fill in hosts). Talks to Docker through
//! its API (bollard).

pub mod cluster;
pub mod containers;
pub mod docker;
pub mod hostkey;
pub mod image;
pub mod inventory;
pub mod network;
pub mod progress;
pub mod ssh_wait;
pub mod state;
pub mod subnet;

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::Context;
use bollard::Docker;

pub use cluster::{ClusterSpec, HostSpec};
pub use containers::HostPlan;
pub use progress::Progress;
pub use state::StateDir;

/// How long a new host may take until sshd answers.
pub const DEFAULT_SSH_TIMEOUT: Duration = Duration::from_secs(90);

/// A host whose sshd answered and whose key is in known_hosts.
#[derive(Debug, Clone)]
pub struct ReadyHost {
    pub host: String,
    pub container: String,
    pub container_id: String,
    pub ip: Ipv4Addr,
    pub created: bool,
    pub started: bool,
}

/// A host whose sshd never answered, with what its console said.
#[derive(Debug, Clone)]
pub struct UnreachableHost {
    pub host: String,
    pub container: String,
    pub reason: String,
    pub last_log_lines: String,
}

impl std::fmt::Display for UnreachableHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "host `{}` (container {}) is unreachable: {}",
            self.host, self.container, self.reason
        )?;
        writeln!(f, "  its last log lines:")?;
        for line in self.last_log_lines.lines() {
            writeln!(f, "  | {line}")?;
        }
        Ok(())
    }
}

/// The result of `up`.
#[derive(Debug, Clone)]
pub struct ClusterUp {
    pub ready: Vec<ReadyHost>,
    pub unreachable: Vec<UnreachableHost>,
    pub state: StateDir,
}

/// Creates (or finds again) the cluster's network and containers, waits for their sshd,
/// records their host keys. Idempotent: a second call creates nothing.
pub async fn up(
    docker: &Docker,
    spec: &ClusterSpec,
    state: &StateDir,
    image: &str,
    ssh_timeout: Duration,
    progress: &Progress,
) -> anyhow::Result<ClusterUp> {
    // Refuse foreign objects with our names before changing anything.
    network::find(docker, &spec.network_name(), &spec.name).await?;
    containers::plan(docker, spec).await?;
    let public_key = state.ensure_key(&spec.name)?;
    progress.step(format!("network {}", spec.network_name()));
    let mut net = network::ensure(docker, &spec.network_name(), &spec.name, spec.subnet).await?;
    let mut started = Vec::new();
    for host in &spec.hosts {
        progress.step(format!("container {}", spec.container_name(&host.name)));
        let container =
            containers::ensure(docker, spec, host, &mut net, image, &public_key).await?;
        if container.created {
            progress.println(format!(
                "created {} ({})",
                container.container, container.ip
            ));
        } else if container.started {
            progress.println(format!(
                "started {} ({})",
                container.container, container.ip
            ));
        }
        started.push(container);
    }
    progress.step(format!("waiting for sshd on {} hosts", started.len()));
    let waits = started
        .iter()
        .map(|c| ssh_wait::wait_for_banner(c.ip, ssh_timeout));
    let answers = futures::future::join_all(waits).await;
    let mut ready = Vec::new();
    let mut unreachable = Vec::new();
    let mut known = Vec::new();
    for (container, answer) in started.into_iter().zip(answers) {
        let key = match answer {
            Ok(_) => hostkey::read_host_key(docker, &container.container).await,
            Err(err) => Err(err),
        };
        match key {
            Ok(key) => {
                known.push(state::KnownHost {
                    name: container.host.clone(),
                    ip: container.ip.to_string(),
                    key,
                });
                ready.push(ReadyHost {
                    host: container.host,
                    container: container.container,
                    container_id: container.id,
                    ip: container.ip,
                    created: container.created,
                    started: container.started,
                });
            }
            Err(err) => {
                let last_log_lines =
                    containers::last_log_lines(docker, &container.container, 20).await;
                unreachable.push(UnreachableHost {
                    host: container.host,
                    container: container.container,
                    reason: format!("{err:#}"),
                    last_log_lines,
                });
            }
        }
    }
    state.write_known_hosts(&known)?;
    Ok(ClusterUp {
        ready,
        unreachable,
        state: state.clone(),
    })
}

/// What `up` would do, changing nothing (for `--check`).
pub async fn plan(docker: &Docker, spec: &ClusterSpec) -> anyhow::Result<Vec<(String, HostPlan)>> {
    if network::find(docker, &spec.network_name(), &spec.name)
        .await?
        .is_none()
    {
        return Ok(spec
            .hosts
            .iter()
            .map(|h| (h.name.clone(), HostPlan::Create))
            .collect());
    }
    containers::plan(docker, spec).await
}

/// Fills in the connection variables of the cluster's running hosts and takes the others
/// out of the run (they do not exist yet, or are stopped): what `infra play` and
/// `infra up --check` need, creating nothing. Returns the hosts taken out, with what `up`
/// would do to them (create or start).
pub async fn attach_running(
    docker: &Docker,
    spec: &ClusterSpec,
    state: &StateDir,
    inventory: &mut crate::inventory::Inventory,
) -> anyhow::Result<Vec<(String, HostPlan)>> {
    let mut missing = Vec::new();
    let observed = match network::find(docker, &spec.network_name(), &spec.name).await? {
        None => plan(docker, spec)
            .await?
            .into_iter()
            .map(|(host, host_plan)| (host, host_plan, None))
            .collect(),
        Some(_) => containers::observe(docker, spec).await?,
    };
    for (host, host_plan, running) in observed {
        match running {
            Some(info) => {
                let container = spec.container_name(&host);
                let ip = containers::ip_on(info, &container, &spec.network_name())?;
                inventory::fill_host(inventory, &host, &ip.to_string(), &state.private_key_path());
            }
            None => missing.push((host, host_plan)),
        }
    }
    let names: Vec<String> = missing.iter().map(|(host, _)| host.clone()).collect();
    inventory::drop_hosts(inventory, &names);
    Ok(missing)
}

/// What `down` removed.
#[derive(Debug, Clone, Default)]
pub struct Removed {
    pub containers: Vec<String>,
    pub network: Option<String>,
    /// Why something of the cluster's name was left alone (it is not ours).
    pub kept: Vec<String>,
}

/// Removes the cluster's containers and network (only those labelled as this cluster's).
pub async fn down(docker: &Docker, cluster: &str) -> anyhow::Result<Removed> {
    let mut removed = Removed::default();
    for (name, id) in containers::list_cluster(docker, cluster).await? {
        containers::remove(docker, &id).await?;
        removed.containers.push(name);
    }
    let net = cluster::network_name(cluster);
    match network::find(docker, &net, cluster).await {
        Ok(Some(_)) => {
            network::remove(docker, &net, cluster)
                .await
                .with_context(|| format!("cannot remove the network of cluster `{cluster}`"))?;
            removed.network = Some(net);
        }
        Ok(None) => {}
        Err(not_ours) => removed.kept.push(format!("{not_ours:#}")),
    }
    Ok(removed)
}
