//! The cluster's Docker network `infra-<cluster>`: found again when it is ours, refused when
//! a network of that name is not, created on a subnet that clashes with no other network.

use anyhow::{bail, Context};
use bollard::models::{Ipam, IpamConfig, NetworkCreateRequest};
use bollard::query_parameters::{InspectNetworkOptions, ListNetworksOptions};
use bollard::Docker;

use super::docker::{cluster_labels, is_not_found, is_ours};
use super::subnet::{check_free, choose_free, Ipv4Net, TakenSubnet};

/// A network as the provider sees it.
#[derive(Debug, Clone)]
pub struct ClusterNetwork {
    pub name: String,
    pub subnet: Ipv4Net,
    /// IPv4 addresses already given to containers on it.
    pub used: Vec<std::net::Ipv4Addr>,
}

/// The existing network of that name, if any, after checking that it is ours.
pub async fn find(
    docker: &Docker,
    name: &str,
    cluster: &str,
) -> anyhow::Result<Option<ClusterNetwork>> {
    let network = match docker
        .inspect_network(name, None::<InspectNetworkOptions>)
        .await
    {
        Ok(n) => n,
        Err(err) if is_not_found(&err) => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("cannot inspect network `{name}`")),
    };
    if !is_ours(network.labels.as_ref(), cluster) {
        bail!(
            "a Docker network named `{name}` exists but infra did not create it for cluster \
             `{cluster}` (labels infra.managed=true, infra.cluster={cluster} missing); remove \
             it (docker network rm {name}) or set another infra_cluster"
        );
    }
    let subnet = network
        .ipam
        .as_ref()
        .and_then(|ipam| ipam.config.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| c.subnet.as_deref())
        .find_map(|s| s.parse::<Ipv4Net>().ok())
        .with_context(|| format!("network `{name}` has no IPv4 subnet"))?;
    let used = network
        .containers
        .iter()
        .flatten()
        .filter_map(|(_, c)| c.ipv4_address.as_deref())
        .filter_map(|a| a.split('/').next())
        .filter_map(|a| a.parse().ok())
        .collect();
    Ok(Some(ClusterNetwork {
        name: name.to_string(),
        subnet,
        used,
    }))
}

/// Every IPv4 subnet of every Docker network except `except`.
async fn taken_subnets(docker: &Docker, except: &str) -> anyhow::Result<Vec<TakenSubnet>> {
    let networks = docker
        .list_networks(None::<ListNetworksOptions>)
        .await
        .context("cannot list Docker networks")?;
    let mut taken = Vec::new();
    for network in networks {
        let name = network.name.unwrap_or_default();
        if name == except {
            continue;
        }
        let configs = network.ipam.and_then(|i| i.config).unwrap_or_default();
        for config in configs {
            if let Some(subnet) = config.subnet.and_then(|s| s.parse::<Ipv4Net>().ok()) {
                taken.push(TakenSubnet {
                    network: name.clone(),
                    subnet,
                });
            }
        }
    }
    Ok(taken)
}

/// The create request of the cluster's bridge network on `subnet`, labelled as ours.
fn network_request(name: &str, cluster: &str, subnet: Ipv4Net) -> NetworkCreateRequest {
    NetworkCreateRequest {
        name: name.to_string(),
        driver: Some("bridge".to_string()),
        ipam: Some(Ipam {
            driver: Some("default".to_string()),
            config: Some(vec![IpamConfig {
                subnet: Some(subnet.to_string()),
                ..Default::default()
            }]),
            options: None,
        }),
        labels: Some(cluster_labels(cluster)),
        ..Default::default()
    }
}

/// Docker's refusal of a subnet that overlaps another network's.
fn is_pool_overlap(err: &bollard::errors::Error) -> bool {
    err.to_string().contains("Pool overlaps")
}

/// Finds or creates the cluster's network.
pub async fn ensure(
    docker: &Docker,
    name: &str,
    cluster: &str,
    wanted: Option<Ipv4Net>,
) -> anyhow::Result<ClusterNetwork> {
    if let Some(existing) = find(docker, name, cluster).await? {
        if let Some(wanted) = wanted {
            if wanted != existing.subnet {
                bail!(
                    "network `{name}` exists on {} but infra_subnet asks for {wanted}; run \
                     `infra down` first to move the cluster",
                    existing.subnet
                );
            }
        }
        return Ok(existing);
    }
    // Another `infra up` (a parallel test, a second terminal) may take the subnet chosen
    // here between the look and the create: Docker then refuses with "Pool overlaps", and
    // the next free subnet is tried. A subnet the inventory names is never changed.
    let mut lost: Vec<TakenSubnet> = Vec::new();
    let subnet = loop {
        let mut taken = taken_subnets(docker, name).await?;
        // Docker may not list a network that another process is creating right now: the
        // subnets lost to a race are avoided even when the list does not show them yet.
        taken.extend(lost.iter().cloned());
        let subnet = match wanted {
            Some(wanted) => {
                check_free(&wanted, &taken)?;
                wanted
            }
            None => choose_free(&taken)?,
        };
        match docker
            .create_network(network_request(name, cluster, subnet))
            .await
        {
            Ok(_) => break subnet,
            Err(err) if wanted.is_none() && lost.len() < 16 && is_pool_overlap(&err) => {
                tracing::debug!("subnet {subnet} was taken meanwhile ({err}); trying another");
                lost.push(TakenSubnet {
                    network: "(being created by another process)".into(),
                    subnet,
                });
            }
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("cannot create network `{name}` on {subnet}"))
            }
        }
    };
    Ok(ClusterNetwork {
        name: name.to_string(),
        subnet,
        used: Vec::new(),
    })
}

/// Removes the network if it exists and is ours; returns whether it removed it.
pub async fn remove(docker: &Docker, name: &str, cluster: &str) -> anyhow::Result<bool> {
    if find(docker, name, cluster).await?.is_none() {
        return Ok(false);
    }
    docker
        .remove_network(name)
        .await
        .with_context(|| format!("cannot remove network `{name}`"))?;
    Ok(true)
}
