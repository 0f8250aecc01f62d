//! The cluster's host containers: systemd as PID 1 with the options that work without
//! `--privileged` (DESIGN.md), a fixed address on the cluster network (so it survives
//! restarts and known_hosts stays true), the cluster key in root's authorized_keys. Existing
//! containers are reused and started; one of our names without our labels is refused.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use anyhow::{bail, Context};
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointIpamConfig, EndpointSettings,
    HostConfig, HostConfigCgroupnsModeEnum, NetworkingConfig,
};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, StartContainerOptions, UploadToContainerOptions,
};
use bollard::Docker;
use futures::StreamExt;

use super::cluster::{ClusterSpec, HostSpec};
use super::docker::{cluster_filter, host_labels, is_not_found, is_ours, LABEL_HOST};
use super::network::ClusterNetwork;

/// The first host address given out on a cluster network (.1 is the gateway).
const FIRST_HOST_OFFSET: u32 = 10;

/// A host container after `ensure`.
#[derive(Debug, Clone)]
pub struct HostContainer {
    pub host: String,
    pub container: String,
    pub id: String,
    pub ip: Ipv4Addr,
    /// Made by this call.
    pub created: bool,
    /// Was stopped and has been started by this call.
    pub started: bool,
}

/// What would happen to a host (for `--check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPlan {
    Create,
    Start,
    Running,
}

/// Inspects a container by name; `None` when there is none.
pub async fn inspect(
    docker: &Docker,
    name: &str,
) -> anyhow::Result<Option<ContainerInspectResponse>> {
    match docker
        .inspect_container(name, None::<InspectContainerOptions>)
        .await
    {
        Ok(c) => Ok(Some(c)),
        Err(err) if is_not_found(&err) => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot inspect container `{name}`")),
    }
}

/// Fails, naming the container, when it is not this cluster's container for `host`.
fn check_ownership(
    info: &ContainerInspectResponse,
    name: &str,
    cluster: &str,
    host: &str,
) -> anyhow::Result<()> {
    let labels = info.config.as_ref().and_then(|c| c.labels.as_ref());
    let host_label = labels.and_then(|l| l.get(LABEL_HOST)).map(String::as_str);
    if !is_ours(labels, cluster) || host_label != Some(host) {
        bail!(
            "a container named `{name}` exists but infra did not create it for host `{host}` of \
             cluster `{cluster}` (labels infra.managed=true, infra.cluster={cluster}, \
             infra.host={host} missing); remove or rename it, or set another infra_cluster"
        );
    }
    Ok(())
}

fn is_running(info: &ContainerInspectResponse) -> bool {
    info.state.as_ref().and_then(|s| s.running).unwrap_or(false)
}

/// What `ensure` would do for each host, without changing anything.
pub async fn plan(docker: &Docker, spec: &ClusterSpec) -> anyhow::Result<Vec<(String, HostPlan)>> {
    Ok(observe(docker, spec)
        .await?
        .into_iter()
        .map(|(host, plan, _)| (host, plan))
        .collect())
}

/// Every host's container, inspected once and all at once (fifty hosts are fifty requests
/// to the Docker daemon, not a hundred in a row): what `up` would do to it and, when it
/// runs, its inspection (for its address, [`ip_on`]).
pub async fn observe(
    docker: &Docker,
    spec: &ClusterSpec,
) -> anyhow::Result<Vec<(String, HostPlan, Option<ContainerInspectResponse>)>> {
    let looks = spec.hosts.iter().map(|host| async move {
        let name = spec.container_name(&host.name);
        let (plan, running) = match inspect(docker, &name).await? {
            None => (HostPlan::Create, None),
            Some(info) => {
                check_ownership(&info, &name, &spec.name, &host.name)?;
                if is_running(&info) {
                    (HostPlan::Running, Some(info))
                } else {
                    (HostPlan::Start, None)
                }
            }
        };
        anyhow::Ok((host.name.clone(), plan, running))
    });
    futures::future::try_join_all(looks).await
}

/// Creates or reuses one host's container, starts it, installs the cluster key.
pub async fn ensure(
    docker: &Docker,
    spec: &ClusterSpec,
    host: &HostSpec,
    network: &mut ClusterNetwork,
    image: &str,
    authorized_key: &str,
) -> anyhow::Result<HostContainer> {
    let name = spec.container_name(&host.name);
    let (info, created) = match inspect(docker, &name).await? {
        Some(info) => {
            check_ownership(&info, &name, &spec.name, &host.name)?;
            (info, false)
        }
        None => {
            let ip = next_free_ip(network)?;
            create(docker, spec, host, &network.name, ip, image).await?;
            network.used.push(ip);
            let info = inspect(docker, &name)
                .await?
                .with_context(|| format!("container `{name}` vanished right after creation"))?;
            (info, true)
        }
    };
    let id = info.id.clone().unwrap_or_else(|| name.clone());
    install_authorized_key(docker, &name, authorized_key).await?;
    let started = !is_running(&info);
    if started {
        docker
            .start_container(&name, None::<StartContainerOptions>)
            .await
            .with_context(|| format!("cannot start container `{name}`"))?;
    }
    let ip = container_ip(docker, &name, &network.name).await?;
    Ok(HostContainer {
        host: host.name.clone(),
        container: name,
        id,
        ip,
        created,
        started: started && !created,
    })
}

fn next_free_ip(network: &ClusterNetwork) -> anyhow::Result<Ipv4Addr> {
    let subnet = network.subnet;
    (FIRST_HOST_OFFSET..subnet.host_count())
        .filter_map(|n| subnet.nth(n))
        .find(|ip| !network.used.contains(ip))
        .with_context(|| {
            format!(
                "network `{}` ({subnet}) has no free address left",
                network.name
            )
        })
}

async fn create(
    docker: &Docker,
    spec: &ClusterSpec,
    host: &HostSpec,
    network: &str,
    ip: Ipv4Addr,
    image: &str,
) -> anyhow::Result<()> {
    let name = spec.container_name(&host.name);
    let host_config = HostConfig {
        cap_add: Some(vec![
            "SYS_ADMIN".into(),
            "NET_ADMIN".into(),
            "SYS_PTRACE".into(),
        ]),
        security_opt: Some(vec![
            "seccomp=unconfined".into(),
            "apparmor=unconfined".into(),
        ]),
        cgroupns_mode: Some(HostConfigCgroupnsModeEnum::HOST),
        tmpfs: Some(HashMap::from([
            ("/run".to_string(), String::new()),
            ("/run/lock".to_string(), String::new()),
        ])),
        binds: Some(vec!["/sys/fs/cgroup:/sys/fs/cgroup:rw".into()]),
        network_mode: Some(network.to_string()),
        nano_cpus: host.nano_cpus,
        memory: host.memory,
        ..Default::default()
    };
    let endpoint = EndpointSettings {
        ipam_config: Some(EndpointIpamConfig {
            ipv4_address: Some(ip.to_string()),
            ..Default::default()
        }),
        aliases: Some(vec![host.name.clone()]),
        ..Default::default()
    };
    let body = ContainerCreateBody {
        hostname: Some(host.name.clone()),
        image: Some(image.to_string()),
        cmd: Some(vec!["/lib/systemd/systemd".into()]),
        env: Some(vec!["container=docker".into(), "LANG=C.UTF-8".into()]),
        labels: Some(host_labels(&spec.name, &host.name)),
        stop_signal: Some("SIGRTMIN+3".into()),
        tty: Some(true),
        host_config: Some(host_config),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(network.to_string(), endpoint)])),
        }),
        ..Default::default()
    };
    docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.clone()),
                ..Default::default()
            }),
            body,
        )
        .await
        .with_context(|| format!("cannot create container `{name}` from image {image}"))?;
    Ok(())
}

/// Writes /root/.ssh/authorized_keys (0600, in a 0700 folder) through the archive API.
async fn install_authorized_key(docker: &Docker, container: &str, key: &str) -> anyhow::Result<()> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o700);
    dir.set_uid(0);
    dir.set_gid(0);
    dir.set_size(0);
    dir.set_mtime(0);
    builder
        .append_data(&mut dir, "root/.ssh/", std::io::empty())
        .context("cannot build the authorized_keys archive")?;
    let content = format!("{}\n", key.trim_end());
    let mut file = tar::Header::new_gnu();
    file.set_entry_type(tar::EntryType::Regular);
    file.set_mode(0o600);
    file.set_uid(0);
    file.set_gid(0);
    file.set_size(content.len() as u64);
    file.set_mtime(0);
    builder
        .append_data(&mut file, "root/.ssh/authorized_keys", content.as_bytes())
        .context("cannot build the authorized_keys archive")?;
    let archive = builder
        .into_inner()
        .context("cannot build the authorized_keys archive")?;
    docker
        .upload_to_container(
            container,
            Some(UploadToContainerOptions {
                path: "/".to_string(),
                ..Default::default()
            }),
            bollard::body_full(archive.into()),
        )
        .await
        .with_context(|| format!("cannot install the cluster key in container `{container}`"))
}

pub async fn container_ip(docker: &Docker, name: &str, network: &str) -> anyhow::Result<Ipv4Addr> {
    let info = inspect(docker, name)
        .await?
        .with_context(|| format!("container `{name}` vanished"))?;
    ip_on(info, name, network)
}

/// The container's address on `network`, from its inspection.
pub fn ip_on(
    info: ContainerInspectResponse,
    name: &str,
    network: &str,
) -> anyhow::Result<Ipv4Addr> {
    let address = info
        .network_settings
        .and_then(|s| s.networks)
        .and_then(|mut n| n.remove(network))
        .and_then(|e| e.ip_address)
        .filter(|a| !a.is_empty())
        .with_context(|| format!("container `{name}` has no address on network `{network}`"))?;
    address
        .parse()
        .with_context(|| format!("container `{name}`: `{address}` is not an IPv4 address"))
}

/// The cluster's containers (ours by label), as (name, id).
pub async fn list_cluster(docker: &Docker, cluster: &str) -> anyhow::Result<Vec<(String, String)>> {
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(cluster_filter(cluster)),
            ..Default::default()
        }))
        .await
        .context("cannot list containers")?;
    Ok(containers
        .into_iter()
        .filter(|c| is_ours(c.labels.as_ref(), cluster))
        .map(|c| {
            let name = c
                .names
                .and_then(|n| n.into_iter().next())
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default();
            (name, c.id.unwrap_or_default())
        })
        .collect())
}

/// Removes a container (running or not) with its anonymous volumes.
pub async fn remove(docker: &Docker, id: &str) -> anyhow::Result<()> {
    match docker
        .remove_container(
            id,
            Some(RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            }),
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(err).with_context(|| format!("cannot remove container {id}")),
    }
}

/// The container's last `lines` log lines (its console), for error reports.
pub async fn last_log_lines(docker: &Docker, name: &str, lines: usize) -> String {
    let mut stream = docker.logs(
        name,
        Some(LogsOptions {
            stdout: true,
            stderr: true,
            tail: lines.to_string(),
            ..Default::default()
        }),
    );
    let mut text = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        text.push_str(&chunk.to_string());
    }
    text
}
