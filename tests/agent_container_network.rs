//! The agent's container network tasks (issue 16) against the real Docker engine: the task
//! joins the named network with the search domain and `ndots:2` that make `<app>` and
//! `<app>.<net>` resolve, reports the address the engine gave it (also after a recreated
//! supervisor adopts it), answers on that address at its container port with no host port,
//! and a task naming a network that does not exist fails with the engine's reason.

#[path = "support/agent.rs"]
mod agent_support;

use std::time::Duration;

use agent_support::*;
use bollard::models::NetworkCreateRequest;
use bollard::query_parameters::InspectContainerOptions;
use infra::agent::{docker, Supervisor};
use infra::api::agent::{TaskSpec, TaskState};

/// A Docker network of this test, removed (with the test's container) when dropped.
struct TestNetwork {
    name: String,
    container: String,
}

impl Drop for TestNetwork {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.container])
            .output();
        let _ = std::process::Command::new("docker")
            .args(["network", "rm", &self.name])
            .output();
    }
}

/// busybox httpd on container port 8080 on network `network`, no host port, no checks.
fn network_spec(task_id: &str, network: &str) -> TaskSpec {
    let mut spec = docker_httpd_spec(task_id, 0);
    spec.host_ports = Vec::new();
    spec.health_checks = Vec::new();
    let docker = spec.docker.as_mut().expect("a Docker spec");
    docker.network = "USER".into();
    docker.network_name = Some(network.to_string());
    docker.port_mappings = Vec::new();
    spec
}

#[tokio::test]
async fn a_task_on_a_container_network_reports_its_address_and_answers_there() {
    let engine = docker::connect()
        .await
        .expect("these tests need a running Docker engine (dockerd)");
    build_test_image(&engine).await;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let task_id = format!("netapp.{id}");
    let network = TestNetwork {
        name: format!("infra-test-{}", &id[..8]),
        container: docker::container_name(&task_id),
    };
    engine
        .create_network(NetworkCreateRequest {
            name: network.name.clone(),
            driver: Some("bridge".into()),
            ..Default::default()
        })
        .await
        .expect("creating the test network");

    let dir = tempfile::tempdir().expect("temp dir");
    let spec = network_spec(&task_id, &network.name);
    let address = {
        let sup = Supervisor::open(dir.path(), Some(engine.clone()))
            .await
            .expect("supervisor");
        sup.apply(std::slice::from_ref(&spec)).await;
        let status = wait_state(&sup, &task_id, TaskState::Running, Duration::from_secs(30)).await;
        assert_eq!(status.ip_addresses.len(), 1, "{status:?}");
        status.ip_addresses[0].clone()
    };

    let info = engine
        .inspect_container(&network.container, None::<InspectContainerOptions>)
        .await
        .expect("the task's container");
    let on_network = info
        .network_settings
        .and_then(|s| s.networks)
        .and_then(|mut n| n.remove(&network.name))
        .and_then(|e| e.ip_address)
        .expect("the container is on the test network");
    assert_eq!(address, on_network);
    let host = info.host_config.expect("host config");
    assert_eq!(host.network_mode.as_deref(), Some(network.name.as_str()));
    assert_eq!(host.dns_search, Some(vec!["service.infra".to_string()]));
    assert_eq!(host.dns_options, Some(vec!["ndots:2".to_string()]));
    assert!(host.port_bindings.is_none_or(|b| b.is_empty()));

    // Reached at its own address and container port (this machine is the engine's host).
    let url = format!("http://{address}:8080/");
    let answer = wait_for_async_ok(&url).await;
    assert_eq!(answer, 200);

    // A recreated supervisor adopts the container and reports the same address.
    let sup = Supervisor::open(dir.path(), Some(engine.clone()))
        .await
        .expect("supervisor");
    let adopted = sup.status(&task_id).expect("the adopted task");
    assert_eq!(adopted.state, TaskState::Running);
    assert_eq!(adopted.ip_addresses, vec![address.clone()]);

    sup.apply(&[]).await;
    wait_state(&sup, &task_id, TaskState::Killed, Duration::from_secs(20)).await;
}

/// GET `url` until it answers (httpd needs a moment), up to 10 s; its status code.
async fn wait_for_async_ok(url: &str) -> u16 {
    let client = reqwest::Client::new();
    let mut last = String::new();
    for _ in 0..50 {
        match client.get(url).timeout(Duration::from_secs(2)).send().await {
            Ok(response) => return response.status().as_u16(),
            Err(err) => last = err.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{url} did not answer: {last}");
}

#[tokio::test]
async fn a_task_naming_a_missing_network_fails_with_the_reason() {
    let engine = docker::connect()
        .await
        .expect("these tests need a running Docker engine (dockerd)");
    build_test_image(&engine).await;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let task_id = format!("netmissing.{id}");
    let _cleanup = TestNetwork {
        name: format!("infra-test-missing-{}", &id[..8]),
        container: docker::container_name(&task_id),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let sup = Supervisor::open(dir.path(), Some(engine.clone()))
        .await
        .expect("supervisor");
    let spec = network_spec(&task_id, &format!("infra-test-missing-{}", &id[..8]));
    sup.apply(std::slice::from_ref(&spec)).await;
    let status = wait_state(&sup, &task_id, TaskState::Failed, Duration::from_secs(30)).await;
    let message = status.message.unwrap_or_default();
    assert!(
        message.contains("infra-test-missing"),
        "the failure names the network: {message}"
    );
}
