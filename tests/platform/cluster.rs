//! The shared platform fixtures of the end-to-end tests of issue 5 (tests/platform_e2e.rs)
//! and issue 11 (tests/ha_e2e.rs).
//!
//! CI runs test binaries one after another, so the whole platform is brought up ONCE per
//! test binary: the first caller of [`platform`] writes an inventory shaped like
//! `inventories/local.yaml` (control1, compute1, compute2, proxy1, registry1, logserver1 in
//! dc1) with a unique cluster name and its own INFRA_HOME, and runs the real `infra up` on it;
//! [`ha_platform`] does the same with the topology of `inventories/ha.yaml` (three control
//! nodes, three compute nodes). Later callers get the same cluster. Every scenario holds
//! [`exclusive`] so scenarios never interfere. The cluster is removed (`infra down --purge`)
//! when the test process exits.
//!
//! For iterating on the roles, `INFRA_PLATFORM_DIR=/some/dir` (`INFRA_HA_PLATFORM_DIR` for
//! the HA cluster) keeps the cluster (and its inventory and INFRA_HOME) in that folder across
//! runs instead of a fresh one; the first `infra up` of each run still has to converge with
//! failed=0. `INFRA_PLATFORM_EXTRA_VARS` (space-separated `key=value`) adds `-e` options to
//! every `infra up` the fixture runs.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The hosts of the platform, in inventory order, with their group.
pub const HOSTS: &[(&str, &str)] = &[
    ("control1", "control"),
    ("compute1", "compute"),
    ("compute2", "compute"),
    ("proxy1", "proxy"),
    ("registry1", "registry"),
    ("logserver1", "logserver"),
];

/// The hosts of the HA platform (`inventories/ha.yaml`), in inventory order, with their group.
pub const HA_HOSTS: &[(&str, &str)] = &[
    ("control1", "control"),
    ("control2", "control"),
    ("control3", "control"),
    ("compute1", "compute"),
    ("compute2", "compute"),
    ("compute3", "compute"),
    ("proxy1", "proxy"),
    ("registry1", "registry"),
    ("logserver1", "logserver"),
];

/// What a fixture brings up: its hosts, the variable that keeps it, its cluster name prefix.
struct Topology {
    hosts: &'static [(&'static str, &'static str)],
    dir_env: &'static str,
    prefix: &'static str,
    shaped_like: &'static str,
}

const LOCAL: Topology = Topology {
    hosts: HOSTS,
    dir_env: "INFRA_PLATFORM_DIR",
    prefix: "pf",
    shaped_like: "inventories/local.yaml",
};

const HA: Topology = Topology {
    hosts: HA_HOSTS,
    dir_env: "INFRA_HA_PLATFORM_DIR",
    prefix: "ha",
    shaped_like: "inventories/ha.yaml",
};

/// One converged platform cluster.
pub struct Platform {
    /// The Docker cluster name (`infra_cluster`); containers are `<cluster>-<host>`.
    pub cluster: String,
    /// INFRA_HOME of every `infra` command the tests run.
    pub home: PathBuf,
    /// Its hosts, in inventory order, with their group.
    pub hosts: &'static [(&'static str, &'static str)],
    inventory: PathBuf,
    ips: Vec<(String, String)>,
    /// The JSON recap of the first `infra up` (the one that built the platform).
    pub first_recap: serde_json::Value,
    /// Whether the cluster is kept after the tests (INFRA_PLATFORM_DIR): it may not be new.
    pub keep: bool,
}

static PLATFORM: OnceLock<Result<Platform, String>> = OnceLock::new();
static EXCLUSIVE: Mutex<()> = Mutex::new(());

/// The shared platform, brought up by the first caller.
pub fn platform() -> &'static Platform {
    match PLATFORM.get_or_init(|| bring_up(&LOCAL)) {
        Ok(p) => p,
        Err(msg) => panic!("the platform fixture could not be brought up:\n{msg}"),
    }
}

/// The shared HA platform (the topology of `inventories/ha.yaml`), brought up by the first
/// caller. A test binary uses either this or [`platform`], not both.
pub fn ha_platform() -> &'static Platform {
    match PLATFORM.get_or_init(|| bring_up(&HA)) {
        Ok(p) => p,
        Err(msg) => panic!("the HA platform fixture could not be brought up:\n{msg}"),
    }
}

/// Held by every scenario for its whole run; a scenario that panicked does not block others.
pub fn exclusive() -> MutexGuard<'static, ()> {
    EXCLUSIVE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// stdout, stderr and status of a command, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn write_inventory(path: &Path, cluster: &str, topology: &Topology) -> std::io::Result<()> {
    let mut text = format!(
        "# The platform test cluster (tests/platform/cluster.rs), shaped like {}.\n\
         all:\n  vars:\n    infra_provider: docker\n    infra_cluster: {cluster}\n    datacenter: dc1\n  children:\n",
        topology.shaped_like
    );
    let mut groups: Vec<&str> = topology.hosts.iter().map(|(_, g)| *g).collect();
    groups.dedup();
    for group in groups {
        text.push_str(&format!("    {group}:\n      hosts:\n"));
        for (host, _) in topology.hosts.iter().filter(|(_, g)| *g == group) {
            text.push_str(&format!("        {host}:\n"));
        }
    }
    std::fs::write(path, text)
}

fn bring_up(topology: &Topology) -> Result<Platform, String> {
    let (dir, keep) = match std::env::var_os(topology.dir_env) {
        Some(dir) => (PathBuf::from(dir), true),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("infra-platform-")
                .tempdir()
                .map_err(|e| format!("temp dir: {e}"))?;
            (dir.keep(), false)
        }
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let inventory = dir.join("platform.yaml");
    let cluster = if keep && inventory.exists() {
        let text = std::fs::read_to_string(&inventory).map_err(|e| e.to_string())?;
        text.lines()
            .find_map(|l| l.trim().strip_prefix("infra_cluster: "))
            .map(str::to_string)
            .ok_or("the kept inventory has no infra_cluster")?
    } else {
        let cluster = format!("{}{}", topology.prefix, std::process::id());
        write_inventory(&inventory, &cluster, topology).map_err(|e| format!("inventory: {e}"))?;
        cluster
    };
    let home = dir.join("home");
    let mut platform = Platform {
        cluster,
        home,
        hosts: topology.hosts,
        inventory,
        ips: Vec::new(),
        first_recap: serde_json::Value::Null,
        keep,
    };
    if !keep {
        register_teardown(&platform);
    }
    let mut args = vec!["up", "-i", platform.inventory_str(), "--output", "json"];
    let extra = extra_vars();
    args.extend(extra.iter().map(String::as_str));
    let out = platform.infra(&args);
    if !out.status.success() {
        return Err(format!("first `infra up` failed: {}", text(&out)));
    }
    platform.first_recap = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "`infra up --output json` printed no JSON ({e}): {}",
            text(&out)
        )
    })?;
    for (host, _) in topology.hosts {
        let ip = container_ip(&platform.cluster, host)?;
        platform.ips.push((host.to_string(), ip));
    }
    Ok(platform)
}

/// `-e key=value` for every word of INFRA_PLATFORM_EXTRA_VARS.
fn extra_vars() -> Vec<String> {
    std::env::var("INFRA_PLATFORM_EXTRA_VARS")
        .unwrap_or_default()
        .split_whitespace()
        .flat_map(|kv| ["-e".to_string(), kv.to_string()])
        .collect()
}

/// The cluster's inventory and home, remembered for the exit hook.
static TEARDOWN: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();

extern "C" fn teardown_at_exit() {
    if let Some((inventory, home)) = TEARDOWN.get() {
        let _ = Command::new(env!("CARGO_BIN_EXE_infra"))
            .args(["down", "-i"])
            .arg(inventory)
            .arg("--purge")
            .current_dir(project_root())
            .env("INFRA_HOME", home)
            .output();
    }
}

fn register_teardown(platform: &Platform) {
    if TEARDOWN
        .set((platform.inventory.clone(), platform.home.clone()))
        .is_ok()
    {
        // SAFETY: registering a plain extern "C" function with the C runtime's exit hooks.
        unsafe {
            libc::atexit(teardown_at_exit);
        }
    }
}

/// The container's address on the cluster network (`infra-<cluster>`).
fn container_ip(cluster: &str, host: &str) -> Result<String, String> {
    let format = format!("{{{{(index .NetworkSettings.Networks \"infra-{cluster}\").IPAddress}}}}");
    let out = Command::new("docker")
        .args(["inspect", "-f", &format, &format!("{cluster}-{host}")])
        .output()
        .map_err(|e| format!("the docker CLI is needed: {e}"))?;
    let ip = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || ip.is_empty() {
        return Err(format!("no address for {host}: {}", text(&out)));
    }
    Ok(ip)
}

impl Platform {
    /// The host's address on the cluster network.
    pub fn ip(&self, host: &str) -> String {
        self.ips
            .iter()
            .find(|(h, _)| h == host)
            .map(|(_, ip)| ip.clone())
            .unwrap_or_else(|| panic!("no host {host} in the platform"))
    }

    pub fn inventory(&self) -> &Path {
        &self.inventory
    }

    fn inventory_str(&self) -> &str {
        self.inventory.to_str().expect("utf-8 temp path")
    }

    /// The cluster's state folder (SSH key, known_hosts, PKI).
    pub fn state(&self) -> PathBuf {
        self.home.join(&self.cluster)
    }

    /// The real OpenSSH client, ready to run `command` on the host as root with host keys
    /// checked against the cluster's known_hosts (the caller may add stdin, then runs it).
    pub fn ssh_command(&self, host: &str, command: &str) -> Command {
        let state = self.state();
        let mut ssh = Command::new("ssh");
        ssh.args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                state.join("known_hosts").display()
            ))
            .args([
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "ConnectTimeout=10",
            ])
            .arg("-i")
            .arg(state.join("id_ed25519"))
            .arg(format!("root@{}", self.ip(host)))
            .arg(command);
        ssh
    }

    /// Runs a command on the host as root over the real OpenSSH client, host keys checked.
    pub fn ssh(&self, host: &str, command: &str) -> Output {
        self.ssh_command(host, command)
            .output()
            .expect("the OpenSSH client (ssh) is needed: apt-get install openssh-client")
    }

    /// `ssh` that must succeed; returns its stdout.
    pub fn ssh_ok(&self, host: &str, command: &str) -> String {
        let out = self.ssh(host, command);
        assert!(
            out.status.success(),
            "on {host}: `{command}`: {}",
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The real `infra` binary, run from the project root with the cluster's INFRA_HOME.
    pub fn infra(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_infra"))
            .args(args)
            .current_dir(project_root())
            .env("INFRA_HOME", &self.home)
            .output()
            .expect("run infra")
    }

    /// `infra up -i <inventory> --output json <extra...>`: must exit 0; returns the recap.
    /// The first `infra up` failed nowhere and reached every host (and, on a fresh
    /// cluster, changed something on each).
    pub fn assert_first_up_converged(&self) {
        let recap = &self.first_recap;
        for (host, _) in self.hosts {
            assert_eq!(counter(recap, host, "failed"), 0, "{recap}");
            assert_eq!(counter(recap, host, "unreachable"), 0, "{recap}");
            if !self.keep {
                assert!(counter(recap, host, "changed") > 0, "{recap}");
            }
        }
    }

    /// Another `infra up` changes nothing, fails nowhere and reaches every host.
    pub fn assert_second_up_changes_nothing(&self) {
        let second = self.up_recap(&[]);
        for (host, _) in self.hosts {
            assert_eq!(counter(&second, host, "changed"), 0, "{host}: {second}");
            assert_eq!(counter(&second, host, "failed"), 0, "{host}: {second}");
            assert_eq!(counter(&second, host, "unreachable"), 0, "{host}: {second}");
        }
    }

    pub fn up_recap(&self, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["up", "-i", self.inventory_str(), "--output", "json"];
        let vars = extra_vars();
        args.extend(vars.iter().map(String::as_str));
        args.extend_from_slice(extra);
        let out = self.infra(&args);
        assert!(out.status.success(), "infra {args:?}: {}", text(&out));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("no JSON recap ({e}): {}", text(&out)))
    }
}

/// One counter of one host in a JSON recap.
pub fn counter(recap: &serde_json::Value, host: &str, name: &str) -> u64 {
    recap["stats"][host][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no {name} for {host} in {recap}"))
}
