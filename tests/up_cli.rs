//! `infra up` and `infra down` as a user runs them (the real binary, real Docker, the real
//! playbooks/site.yaml): a 3-host docker inventory converges, a second `up` changes nothing,
//! `--check` on a new inventory creates nothing, `down` removes the cluster, `--purge` its state.

#[path = "support/provider.rs"]
mod provider_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use provider_support::*;

fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes `<dir>/inventories/<cluster>.yaml` with the given hosts, all docker-provided.
fn write_inventory(dir: &Path, cluster: &str, hosts: &[&str]) -> PathBuf {
    let folder = dir.join("inventories");
    std::fs::create_dir_all(&folder).unwrap();
    let mut text = format!(
        "# test cluster\nall:\n  vars:\n    infra_provider: docker\n    infra_cluster: {cluster}\n  children:\n    nodes:\n      hosts:\n"
    );
    for host in hosts {
        text.push_str(&format!("        {host}:\n"));
    }
    let path = folder.join(format!("{cluster}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the infra binary from the project root (so playbooks/site.yaml is found there).
fn infra(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_infra"))
        .args(args)
        .current_dir(project_root())
        .env("INFRA_HOME", home)
        .output()
        .expect("run infra")
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Sum of one counter over every host of a JSON recap.
fn total(recap: &serde_json::Value, counter: &str) -> u64 {
    recap["stats"]
        .as_object()
        .unwrap()
        .values()
        .map(|s| s[counter].as_u64().unwrap())
        .sum()
}

#[tokio::test]
async fn up_converges_a_three_host_cluster_then_changes_nothing_and_down_removes_it() {
    let docker = docker().await;
    image(&docker).await;
    let cluster = unique_cluster("uc");
    let _guard = ClusterGuard::new(&cluster);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let inventory = write_inventory(dir.path(), &cluster, &["n1", "n2", "n3"]);
    let inv = inventory.to_str().unwrap();

    let first = infra(&home, &["up", "-i", inv, "--output", "json"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let recap: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(recap["stats"].as_object().unwrap().len(), 3, "{recap}");
    assert_eq!(total(&recap, "failed") + total(&recap, "unreachable"), 0);
    assert!(
        total(&recap, "changed") > 0,
        "a new host needs converging: {recap}"
    );

    // Three running hosts, reachable with host-key checking on, /etc/hosts lists them all.
    let state = home.join(&cluster);
    let containers = infra::provider::containers::list_cluster(&docker, &cluster)
        .await
        .unwrap();
    assert_eq!(containers.len(), 3);
    let known_hosts = std::fs::read_to_string(state.join("known_hosts")).unwrap();
    let ip = known_hosts
        .lines()
        .find(|l| l.starts_with("10.") || l.starts_with("172."))
        .and_then(|l| l.split(' ').next())
        .unwrap()
        .to_string();
    let out = ssh(
        &state.join("id_ed25519"),
        &state.join("known_hosts"),
        &ip,
        "cat /etc/hosts; cat /etc/timezone",
    );
    let hosts_file = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for host in ["n1", "n2", "n3"] {
        assert!(
            hosts_file
                .lines()
                .any(|l| l.ends_with(&format!("\t{host}"))),
            "{hosts_file}"
        );
    }
    assert!(hosts_file.ends_with("Etc/UTC\n"), "{hosts_file}");

    // Second run: nothing recreated, nothing changed.
    let ids: Vec<String> = containers.iter().map(|(_, id)| id.clone()).collect();
    let second = infra(&home, &["up", "-i", inv, "--output", "json"]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let recap: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(total(&recap, "changed"), 0, "{recap}");
    assert_eq!(total(&recap, "failed") + total(&recap, "unreachable"), 0);
    let again: Vec<String> = infra::provider::containers::list_cluster(&docker, &cluster)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    let mut sorted = (ids.clone(), again.clone());
    sorted.0.sort();
    sorted.1.sort();
    assert_eq!(sorted.0, sorted.1, "the second up recreated containers");

    // `infra play` with the same inventory reaches the running containers (no ansible_host
    // in the file: the provider fills it in), with host-key checking on.
    let probe = dir.path().join("probe.yml");
    std::fs::write(
        &probe,
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: hostname\n      register: h\n      changed_when: false\n    - assert:\n        that: h.stdout == inventory_hostname\n",
    )
    .unwrap();
    let play = infra(
        &home,
        &[
            "play",
            probe.to_str().unwrap(),
            "-i",
            inv,
            "--output",
            "json",
        ],
    );
    assert_eq!(play.status.code(), Some(0), "{}", text(&play));
    let recap: serde_json::Value = serde_json::from_slice(&play.stdout).unwrap();
    assert_eq!(recap["stats"].as_object().unwrap().len(), 3, "{recap}");
    assert_eq!(total(&recap, "ok"), 6, "{recap}");

    // down removes the containers and network, keeps the state; --purge removes it too.
    let down = infra(&home, &["down", "-i", inv]);
    assert_eq!(down.status.code(), Some(0), "{}", text(&down));
    let stdout = String::from_utf8_lossy(&down.stdout);
    assert!(
        stdout.contains(&format!("removed network infra-{cluster}")),
        "{stdout}"
    );
    assert!(infra::provider::containers::list_cluster(&docker, &cluster)
        .await
        .unwrap()
        .is_empty());
    assert!(state.join("id_ed25519").exists());
    let purge = infra(&home, &["down", "-i", inv, "--purge"]);
    assert_eq!(purge.status.code(), Some(0), "{}", text(&purge));
    assert!(!state.exists());
}

#[tokio::test]
async fn up_check_on_a_new_inventory_creates_nothing() {
    let docker = docker().await;
    let cluster = unique_cluster("uk");
    let _guard = ClusterGuard::new(&cluster);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let inventory = write_inventory(dir.path(), &cluster, &["a1", "a2"]);

    let out = infra(
        &home,
        &["up", "-i", inventory.to_str().unwrap(), "--check", "--diff"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for host in ["a1", "a2"] {
        assert!(
            stdout.contains(&format!(
                "would create host {host} (container {cluster}-{host})"
            )),
            "{stdout}"
        );
    }
    assert!(infra::provider::containers::list_cluster(&docker, &cluster)
        .await
        .unwrap()
        .is_empty());
    let network = infra::provider::network::find(&docker, &format!("infra-{cluster}"), &cluster)
        .await
        .unwrap();
    assert!(network.is_none(), "--check created the network");
    assert!(
        !home.join(&cluster).exists(),
        "--check created the state folder"
    );
}

#[test]
fn up_without_docker_says_how_to_start_it() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = write_inventory(dir.path(), "nodocker", &["h1"]);
    let out = Command::new(env!("CARGO_BIN_EXE_infra"))
        .args(["up", "-i", inventory.to_str().unwrap()])
        .current_dir(project_root())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env("INFRA_HOME", dir.path().join("home"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("dockerd &"), "{stderr}");
    assert!(stderr.contains("apt-get install docker.io"), "{stderr}");
}

/// `up --limit` creates and converges only the chosen hosts; a later full `up` adds the
/// rest, and known_hosts keeps every host's key (host-key checking stays on throughout).
#[tokio::test]
async fn up_limit_creates_only_the_chosen_hosts() {
    let docker = docker().await;
    image(&docker).await;
    let cluster = unique_cluster("ul");
    let _guard = ClusterGuard::new(&cluster);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let inventory = write_inventory(dir.path(), &cluster, &["l1", "l2"]);
    let inv = inventory.to_str().unwrap();
    let probe = dir.path().join("probe.yml");
    std::fs::write(
        &probe,
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: hostname\n      register: h\n      changed_when: false\n    - assert:\n        that: h.stdout == inventory_hostname\n",
    )
    .unwrap();
    let probe = probe.to_str().unwrap();
    let names = |containers: Vec<(String, String)>| -> Vec<String> {
        let mut names: Vec<String> = containers.into_iter().map(|(name, _)| name).collect();
        names.sort();
        names
    };

    let first = infra(
        &home,
        &[
            "up",
            "-i",
            inv,
            "--limit",
            "l1",
            "--playbook",
            probe,
            "--output",
            "json",
        ],
    );
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let recap: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let hosts: Vec<&String> = recap["stats"].as_object().unwrap().keys().collect();
    assert_eq!(hosts, vec!["l1"], "{recap}");
    let containers = infra::provider::containers::list_cluster(&docker, &cluster)
        .await
        .unwrap();
    assert_eq!(names(containers), vec![format!("{cluster}-l1")]);

    let second = infra(
        &home,
        &["up", "-i", inv, "--playbook", probe, "--output", "json"],
    );
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let recap: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(recap["stats"].as_object().unwrap().len(), 2, "{recap}");
    assert_eq!(total(&recap, "failed") + total(&recap, "unreachable"), 0);
    let known_hosts = std::fs::read_to_string(home.join(&cluster).join("known_hosts")).unwrap();
    for host in ["l1", "l2"] {
        assert!(
            known_hosts
                .lines()
                .any(|l| l.starts_with(&format!("{host} "))),
            "{known_hosts}"
        );
    }
    assert_eq!(known_hosts.lines().count(), 4, "{known_hosts}");
}
