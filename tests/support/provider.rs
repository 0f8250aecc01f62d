//! Shared helpers for the provider's integration tests: one host image for all tests (built
//! once, reused by recipe hash), unique cluster names, and a guard that removes a test's
//! cluster even when the test fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bollard::Docker;
use infra::provider::{self, ClusterSpec, HostSpec, Progress};
use tokio::sync::OnceCell;

static IMAGE: OnceCell<String> = OnceCell::const_new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Connects to Docker; a test that needs it fails here with the provider's own message.
pub async fn docker() -> Docker {
    provider::docker::connect()
        .await
        .unwrap_or_else(|err| panic!("these tests need a running Docker engine: {err:#}"))
}

/// The host image's tag, built at most once per test binary.
pub async fn image(docker: &Docker) -> String {
    IMAGE
        .get_or_init(|| async {
            let outcome = provider::image::ensure(docker, false, &Progress::new("test image"))
                .await
                .unwrap_or_else(|err| panic!("cannot build the host image: {err:#}"));
            outcome.tag().to_string()
        })
        .await
        .clone()
}

/// A cluster name no other test (or earlier run) uses.
pub fn unique_cluster(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}{}x{n}", std::process::id())
}

pub fn spec(cluster: &str, hosts: &[&str]) -> ClusterSpec {
    ClusterSpec {
        name: cluster.to_string(),
        subnet: None,
        hosts: hosts
            .iter()
            .map(|h| HostSpec {
                name: h.to_string(),
                nano_cpus: None,
                memory: None,
            })
            .collect(),
    }
}

/// Removes the cluster's containers and network when dropped (also on panic), plus any
/// extra containers the test made by hand.
pub struct ClusterGuard {
    pub cluster: String,
    pub extra_containers: Vec<String>,
    pub extra_networks: Vec<String>,
}

impl ClusterGuard {
    pub fn new(cluster: &str) -> ClusterGuard {
        ClusterGuard {
            cluster: cluster.to_string(),
            extra_containers: Vec::new(),
            extra_networks: Vec::new(),
        }
    }
}

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        let cluster = self.cluster.clone();
        let extra = std::mem::take(&mut self.extra_containers);
        let networks = std::mem::take(&mut self.extra_networks);
        // Drop cannot be async and may run inside a runtime: clean up on a fresh thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("runtime for cleanup");
            rt.block_on(async {
                let docker = docker().await;
                for name in extra {
                    let _ = provider::containers::remove(&docker, &name).await;
                }
                if let Err(err) = provider::down(&docker, &cluster).await {
                    eprintln!("cleanup of cluster {cluster} failed: {err:#}");
                }
                for name in networks {
                    let _ = docker.remove_network(&name).await;
                }
            });
        })
        .join();
    }
}

/// A state folder in a temp dir that lives as long as the returned handle.
pub fn state_dir(cluster: &str) -> (tempfile::TempDir, provider::StateDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = provider::StateDir::new(dir.path().join(cluster));
    (dir, state)
}

pub const SSH_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs the real OpenSSH client with strict host-key checking against `known_hosts`.
pub fn ssh(key: &Path, known_hosts: &Path, ip: &str, command: &str) -> std::process::Output {
    Command::new("ssh")
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=10",
        ])
        .arg("-i")
        .arg(key)
        .arg(format!("root@{ip}"))
        .arg(command)
        .output()
        .expect("the OpenSSH client (ssh) is needed: apt-get install openssh-client")
}

/// Runs `script` with `sh -c` in a container; its stdout. Fails the test when it fails.
pub fn docker_exec(container: &str, script: &str) -> String {
    let out = Command::new("docker")
        .args(["exec", container, "sh", "-c", script])
        .output()
        .expect("the docker CLI is needed");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn path_of(p: &Path) -> PathBuf {
    p.to_path_buf()
}

/// One running host (`node01`) of a fresh cluster made by the provider, with an inventory
/// file naming it (`infra_provider: docker` plus the caller's vars). The cluster goes when
/// this is dropped.
pub struct OneHost {
    pub docker: Docker,
    pub spec: ClusterSpec,
    pub state: provider::StateDir,
    /// The inventory file (in the temp folder below).
    pub inventory: PathBuf,
    pub dir: tempfile::TempDir,
    _guard: ClusterGuard,
}

impl OneHost {
    /// Makes the host; `vars` are `name: value` lines added to the inventory's `all` vars.
    pub async fn up(prefix: &str, vars: &[(&str, String)]) -> OneHost {
        let docker = docker().await;
        let image = image(&docker).await;
        let cluster = unique_cluster(prefix);
        let guard = ClusterGuard::new(&cluster);
        let (dir, state) = state_dir(&cluster);
        let spec = spec(&cluster, &["node01"]);
        provider::up(
            &docker,
            &spec,
            &state,
            &image,
            SSH_TIMEOUT,
            &Progress::new(prefix),
        )
        .await
        .unwrap();
        let inventory = dir.path().join(format!("{cluster}.yaml"));
        let mut text =
            format!("all:\n  vars:\n    infra_provider: docker\n    infra_cluster: {cluster}\n");
        for (name, value) in vars {
            text.push_str(&format!("    {name}: {value}\n"));
        }
        text.push_str("  hosts:\n    node01:\n");
        std::fs::write(&inventory, text).unwrap();
        OneHost {
            docker,
            spec,
            state,
            inventory,
            dir,
            _guard: guard,
        }
    }

    /// The host's container name.
    pub fn container(&self) -> String {
        self.spec.container_name("node01")
    }

    /// The inventory, loaded and attached to the running host (address, key, port).
    pub async fn attached_inventory(&self) -> infra::inventory::Inventory {
        let mut inventory = infra::inventory::Inventory::load(&self.inventory).unwrap();
        let missing =
            provider::attach_running(&self.docker, &self.spec, &self.state, &mut inventory)
                .await
                .unwrap();
        assert!(missing.is_empty(), "hosts not running: {missing:?}");
        inventory
    }
}
