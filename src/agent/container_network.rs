//! Docker tasks on a container network (issue 16): the container joins the Docker network
//! of that name on this node (created by the compute role, one subnet per node, routed
//! between nodes: docs/networks.md), resolves `<app>` and `<app>.<net>` through the search
//! domains below, and reports the address the engine gave it.

use anyhow::Context;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::InspectContainerOptions;
use bollard::Docker;

use crate::api::agent::DockerSpec;

/// The search domains of a task on network `net` under the DNS zone `domain`: `<app>`
/// becomes `<app>.service.<domain>` and `<app>.<net>` becomes `<app>.<net>.service.<domain>`,
/// both answered by the control nodes' DNS with the app's task addresses.
pub fn search_domains(domain: &str) -> Vec<String> {
    vec![format!("service.{domain}")]
}

/// `ndots:2`: a name with one dot (`<app>.<net>`) goes through the search list before being
/// asked as an absolute name, which outside the zone would only wait for the upstream.
pub const DNS_OPTIONS: &[&str] = &["ndots:2"];

/// Puts the container on its network instead of the default bridge, with the search domains.
/// A spec without a container network is left alone.
pub fn apply(body: &mut ContainerCreateBody, spec: &DockerSpec) {
    let Some(network) = spec.network_name.as_deref() else {
        return;
    };
    let host_config = body.host_config.get_or_insert_with(Default::default);
    host_config.network_mode = Some(network.to_string());
    host_config.dns_search = Some(search_domains(&spec.dns_domain()));
    host_config.dns_options = Some(DNS_OPTIONS.iter().map(|o| o.to_string()).collect());
}

/// The address the engine gave container `name` on `network`.
pub async fn task_address(docker: &Docker, name: &str, network: &str) -> anyhow::Result<String> {
    let info = docker
        .inspect_container(name, None::<InspectContainerOptions>)
        .await
        .with_context(|| format!("inspecting container {name}"))?;
    info.network_settings
        .and_then(|s| s.networks)
        .and_then(|mut n| n.remove(network))
        .and_then(|endpoint| endpoint.ip_address)
        .filter(|ip| !ip.is_empty())
        .with_context(|| format!("container {name} has no address on network {network}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(network_name: Option<&str>) -> DockerSpec {
        DockerSpec {
            image: "busybox".into(),
            network: "USER".into(),
            port_mappings: Vec::new(),
            force_pull_image: false,
            parameters: Vec::new(),
            volumes: Vec::new(),
            privileged: false,
            network_name: network_name.map(str::to_string),
            dns_domain: None,
        }
    }

    #[test]
    fn joins_the_named_network_with_search_domains() {
        let mut body = ContainerCreateBody::default();
        apply(&mut body, &spec(Some("apps")));
        let host = body.host_config.expect("host config");
        assert_eq!(host.network_mode.as_deref(), Some("apps"));
        assert_eq!(host.dns_search, Some(vec!["service.infra".to_string()]));
        assert_eq!(host.dns_options, Some(vec!["ndots:2".to_string()]));
    }

    #[test]
    fn leaves_other_tasks_alone() {
        let mut body = ContainerCreateBody::default();
        apply(&mut body, &spec(None));
        assert!(body.host_config.is_none());
    }
}
