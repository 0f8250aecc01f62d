//! The docker provider against the real Docker engine: the host image, creating a cluster of
//! systemd containers reachable over SSH with host-key checking on, idempotence, `down`
//! removing exactly what is ours, and refusing names infra did not create.

#[path = "support/provider.rs"]
mod provider_support;

use std::collections::HashSet;
use std::time::Duration;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptions, InspectContainerOptions};
use infra::provider::{self, image::ImageOutcome, Progress};
use provider_support::*;

#[tokio::test]
async fn the_image_is_reused_when_its_recipe_hash_matches() {
    let docker = docker().await;
    let tag = image(&docker).await;
    assert_eq!(tag, provider::image::recipe::image_tag());
    let again = provider::image::ensure(&docker, false, &Progress::quiet())
        .await
        .unwrap();
    assert_eq!(again, ImageOutcome::Reused(tag.clone()));
    let info = docker.inspect_image(&tag).await.unwrap();
    let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(
        labels.get("infra.recipe"),
        Some(&provider::image::recipe::recipe_hash())
    );
}

#[tokio::test]
async fn three_hosts_run_systemd_and_answer_ssh_with_host_key_checking() {
    let docker = docker().await;
    let image = image(&docker).await;
    let cluster = unique_cluster("pc");
    let _guard = ClusterGuard::new(&cluster);
    let (_tmp, state) = state_dir(&cluster);
    let spec = spec(&cluster, &["web1", "web2", "db1"]);

    let up = provider::up(
        &docker,
        &spec,
        &state,
        &image,
        SSH_TIMEOUT,
        &Progress::quiet(),
    )
    .await
    .unwrap();
    assert!(up.unreachable.is_empty(), "{:?}", up.unreachable);
    assert_eq!(up.ready.len(), 3);
    assert!(up.ready.iter().all(|h| h.created));

    let known_hosts = state.known_hosts_path();
    let text = std::fs::read_to_string(&known_hosts).unwrap();
    let keys: HashSet<&str> = text.lines().map(|l| l.split_once(' ').unwrap().1).collect();
    assert_eq!(keys.len(), 3, "each host has its own host key:\n{text}");

    for host in &up.ready {
        let ip = host.ip.to_string();
        assert!(text.contains(&format!("{ip} ssh-ed25519 ")), "{text}");
        assert!(
            text.contains(&format!("{} ssh-ed25519 ", host.host)),
            "{text}"
        );
        let out = ssh(
            &state.private_key_path(),
            &known_hosts,
            &ip,
            "hostname; systemctl is-system-running --wait; readlink /proc/1/exe; \
             grep ' /etc/hosts ' /proc/self/mountinfo | wc -l",
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "ssh to {}: {}{}",
            host.host,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = stdout.lines().collect();
        // /etc/hosts is a plain file (not Docker's bind mount), as on a machine.
        assert_eq!(
            lines,
            vec![
                host.host.as_str(),
                "running",
                "/usr/lib/systemd/systemd",
                "0"
            ]
        );

        let info = docker
            .inspect_container(&host.container, None::<InspectContainerOptions>)
            .await
            .unwrap();
        let hc = info.host_config.unwrap();
        assert_ne!(hc.privileged, Some(true));
        let labels = info.config.unwrap().labels.unwrap();
        assert_eq!(labels["infra.cluster"], cluster);
        assert_eq!(labels["infra.host"], host.host);
        assert_eq!(labels["infra.managed"], "true");
    }

    // Host-key checking is really on: with an empty known_hosts the same login fails.
    let empty = state.path().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let out = ssh(
        &state.private_key_path(),
        &empty,
        &up.ready[0].ip.to_string(),
        "true",
    );
    assert!(!out.status.success(), "ssh must refuse an unknown host key");

    // A second run recreates nothing: same containers, same addresses, same key.
    let key_before = std::fs::read_to_string(state.private_key_path()).unwrap();
    let again = provider::up(
        &docker,
        &spec,
        &state,
        &image,
        SSH_TIMEOUT,
        &Progress::quiet(),
    )
    .await
    .unwrap();
    assert!(again.unreachable.is_empty());
    let before: Vec<_> = up
        .ready
        .iter()
        .map(|h| (h.container_id.clone(), h.ip))
        .collect();
    let after: Vec<_> = again
        .ready
        .iter()
        .map(|h| (h.container_id.clone(), h.ip))
        .collect();
    assert_eq!(before, after);
    assert!(again.ready.iter().all(|h| !h.created && !h.started));
    assert_eq!(
        key_before,
        std::fs::read_to_string(state.private_key_path()).unwrap()
    );
    assert_eq!(text, std::fs::read_to_string(&known_hosts).unwrap());

    // A stopped host is started again, keeps its address, and answers with the same key.
    docker
        .stop_container(
            &up.ready[1].container,
            None::<bollard::query_parameters::StopContainerOptions>,
        )
        .await
        .unwrap();
    let third = provider::up(
        &docker,
        &spec,
        &state,
        &image,
        SSH_TIMEOUT,
        &Progress::quiet(),
    )
    .await
    .unwrap();
    assert!(third.ready[1].started && !third.ready[1].created);
    assert_eq!(third.ready[1].ip, up.ready[1].ip);
    assert_eq!(text, std::fs::read_to_string(&known_hosts).unwrap());
    let out = ssh(
        &state.private_key_path(),
        &known_hosts,
        &third.ready[1].ip.to_string(),
        "true",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn down_removes_exactly_ours_and_a_lookalike_survives() {
    let docker = docker().await;
    let image = image(&docker).await;
    let cluster = unique_cluster("pd");
    let mut guard = ClusterGuard::new(&cluster);
    let (_tmp, state) = state_dir(&cluster);
    let spec = spec(&cluster, &["node1"]);
    let up = provider::up(
        &docker,
        &spec,
        &state,
        &image,
        SSH_TIMEOUT,
        &Progress::quiet(),
    )
    .await
    .unwrap();
    assert_eq!(up.ready.len(), 1);

    // Made by hand, without labels, with a name like ours.
    let lookalike = format!("{cluster}-node1-copy");
    guard.extra_containers.push(lookalike.clone());
    docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(lookalike.clone()),
                ..Default::default()
            }),
            ContainerCreateBody {
                image: Some(image.clone()),
                cmd: Some(vec!["true".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let removed = provider::down(&docker, &cluster).await.unwrap();
    assert_eq!(removed.containers, vec![format!("{cluster}-node1")]);
    assert_eq!(removed.network, Some(format!("infra-{cluster}")));
    assert!(
        provider::containers::inspect(&docker, &format!("{cluster}-node1"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(provider::containers::inspect(&docker, &lookalike)
        .await
        .unwrap()
        .is_some());
    assert!(
        state.private_key_path().exists(),
        "down keeps the state folder"
    );

    // Nothing left: a second down removes nothing.
    let again = provider::down(&docker, &cluster).await.unwrap();
    assert!(again.containers.is_empty() && again.network.is_none());
}

#[tokio::test]
async fn a_foreign_container_or_network_with_our_name_is_refused() {
    let docker = docker().await;
    let image = image(&docker).await;
    let cluster = unique_cluster("pf");
    let mut guard = ClusterGuard::new(&cluster);
    let (_tmp, state) = state_dir(&cluster);
    let spec = spec(&cluster, &["app1"]);

    let foreign = format!("{cluster}-app1");
    guard.extra_containers.push(foreign.clone());
    docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(foreign.clone()),
                ..Default::default()
            }),
            ContainerCreateBody {
                image: Some(image.clone()),
                cmd: Some(vec!["true".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let err = provider::up(
        &docker,
        &spec,
        &state,
        &image,
        SSH_TIMEOUT,
        &Progress::quiet(),
    )
    .await
    .unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains(&format!("`{foreign}`")), "{message}");
    assert!(message.contains("did not create"), "{message}");
    // Nothing was made: no network, no key.
    assert!(
        provider::network::find(&docker, &spec.network_name(), &cluster)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!state.private_key_path().exists());
    // down leaves the foreign container alone.
    assert!(provider::down(&docker, &cluster)
        .await
        .unwrap()
        .containers
        .is_empty());
    assert!(provider::containers::inspect(&docker, &foreign)
        .await
        .unwrap()
        .is_some());

    // A foreign network of the cluster's name is refused too, and down leaves it.
    let other = unique_cluster("pn");
    let net = format!("infra-{other}");
    guard.extra_networks.push(net.clone());
    docker
        .create_network(bollard::models::NetworkCreateRequest {
            name: net.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let other_spec = provider_support::spec(&other, &["app1"]);
    let err = provider::up(
        &docker,
        &other_spec,
        &state,
        &image,
        SSH_TIMEOUT,
        &Progress::quiet(),
    )
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains(&format!("`{net}`")), "{err:#}");
    let removed = provider::down(&docker, &other).await.unwrap();
    assert!(
        removed.network.is_none() && removed.kept.len() == 1,
        "{removed:?}"
    );
}

#[tokio::test]
async fn a_subnet_clash_names_the_other_network() {
    let docker = docker().await;
    let image = image(&docker).await;
    let bridge = docker
        .inspect_network(
            "bridge",
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .unwrap();
    let bridge_subnet: provider::subnet::Ipv4Net = bridge.ipam.unwrap().config.unwrap()[0]
        .subnet
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    let cluster = unique_cluster("ps");
    let _guard = ClusterGuard::new(&cluster);
    let (_tmp, state) = state_dir(&cluster);
    let mut spec = spec(&cluster, &["h1"]);
    spec.subnet = Some(format!("{}/24", bridge_subnet.network()).parse().unwrap());
    let err = provider::up(
        &docker,
        &spec,
        &state,
        &image,
        SSH_TIMEOUT,
        &Progress::quiet(),
    )
    .await
    .unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("clashes with Docker network `bridge`"),
        "{message}"
    );
    assert!(
        provider::containers::inspect(&docker, &spec.container_name("h1"))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_host_whose_sshd_does_not_answer_in_time_is_reported_with_its_log() {
    let docker = docker().await;
    let image = image(&docker).await;
    let cluster = unique_cluster("pu");
    let _guard = ClusterGuard::new(&cluster);
    let (_tmp, state) = state_dir(&cluster);
    let spec = spec(&cluster, &["slow1"]);
    // A fresh container's systemd cannot have sshd up within zero seconds.
    let up = provider::up(
        &docker,
        &spec,
        &state,
        &image,
        Duration::ZERO,
        &Progress::quiet(),
    )
    .await
    .unwrap();
    assert!(up.ready.is_empty());
    assert_eq!(up.unreachable.len(), 1);
    let report = up.unreachable[0].to_string();
    assert!(
        report.contains(&format!(
            "host `slow1` (container {cluster}-slow1) is unreachable"
        )),
        "{report}"
    );
    assert!(report.contains("sshd did not answer"), "{report}");
    assert!(report.contains("last log lines"), "{report}");
}

/// Clusters created at the same moment (parallel tests, two terminals) each get a subnet of
/// their own: the one that loses the race for a subnet takes the next free one.
#[tokio::test]
async fn networks_created_at_once_get_distinct_subnets() {
    let docker = docker().await;
    let clusters: Vec<String> = (0..5).map(|_| unique_cluster("nr")).collect();
    let _guards: Vec<ClusterGuard> = clusters.iter().map(|c| ClusterGuard::new(c)).collect();
    let creations = clusters.iter().map(|cluster| {
        let docker = docker.clone();
        let name = provider::cluster::network_name(cluster);
        async move { provider::network::ensure(&docker, &name, cluster, None).await }
    });
    let results = futures::future::join_all(creations).await;
    let mut subnets = HashSet::new();
    for (cluster, result) in clusters.iter().zip(results) {
        let network = result.unwrap_or_else(|e| panic!("{cluster}: {e:#}"));
        assert!(subnets.insert(network.subnet.to_string()), "{subnets:?}");
    }
}
