//! Connecting to the Docker engine (negotiating the API version: Debian's 20.10 speaks 1.41)
//! with a message that says how to install or start Docker when it is missing, and the
//! labels that mark what infra created.

use std::collections::HashMap;
use std::path::Path;

use anyhow::bail;
use bollard::Docker;

/// Every container and network infra creates carries these labels.
pub const LABEL_MANAGED: &str = "infra.managed";
pub const LABEL_CLUSTER: &str = "infra.cluster";
pub const LABEL_HOST: &str = "infra.host";

const HOW_TO_START: &str = "start it with: dockerd & or systemctl start docker; \
                            install with apt-get install docker.io";

/// Connects to the local engine and negotiates the API version.
pub async fn connect() -> anyhow::Result<Docker> {
    let remote = std::env::var_os("DOCKER_HOST").is_some();
    if !remote && !Path::new("/var/run/docker.sock").exists() {
        bail!("Docker is not running (no /var/run/docker.sock): {HOW_TO_START}");
    }
    let docker = match Docker::connect_with_local_defaults() {
        Ok(d) => d,
        Err(err) => bail!("cannot reach Docker ({err}): {HOW_TO_START}"),
    };
    match docker.negotiate_version().await {
        Ok(d) => Ok(d),
        Err(err) => bail!("cannot reach Docker ({err}): {HOW_TO_START}"),
    }
}

/// The labels of a cluster's network.
pub fn cluster_labels(cluster: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_CLUSTER.to_string(), cluster.to_string()),
    ])
}

/// The labels of one host's container.
pub fn host_labels(cluster: &str, host: &str) -> HashMap<String, String> {
    let mut labels = cluster_labels(cluster);
    labels.insert(LABEL_HOST.to_string(), host.to_string());
    labels
}

/// True when `labels` say infra made the object for this cluster.
pub fn is_ours(labels: Option<&HashMap<String, String>>, cluster: &str) -> bool {
    labels.is_some_and(|l| {
        l.get(LABEL_MANAGED).map(String::as_str) == Some("true")
            && l.get(LABEL_CLUSTER).map(String::as_str) == Some(cluster)
    })
}

/// A Docker "404 no such ..." error.
pub fn is_not_found(err: &bollard::errors::Error) -> bool {
    matches!(
        err,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Filters for objects labelled as this cluster's.
pub fn cluster_filter(cluster: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![
            format!("{LABEL_MANAGED}=true"),
            format!("{LABEL_CLUSTER}={cluster}"),
        ],
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_needs_both_labels() {
        let ours = host_labels("c", "h");
        assert!(is_ours(Some(&ours), "c"));
        assert!(!is_ours(Some(&ours), "other"));
        let mut foreign = ours.clone();
        foreign.remove(LABEL_MANAGED);
        assert!(!is_ours(Some(&foreign), "c"));
        assert!(!is_ours(None, "c"));
    }
}
