//! `infra move` end to end: a real scheduler and three real agents, each with its host
//! certificate from a cluster CA (made by src/pki), so they pull volumes from each other
//! over mutual TLS. A command task keeps a 100 MB random file and a start log in its
//! persistent volume. A move whose receiving agent is killed halfway through the copy
//! fails and leaves the task running where it was, on untouched data; a move to another
//! agent then succeeds: the task runs there with the same bytes, and the sender's copy is
//! gone; a constraint change that no longer allows that agent moves it back the same way.

#[path = "support/cli.rs"]
mod cli_support;
#[path = "support/tls.rs"]
mod tls_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use cli_support::*;
use infra::api::marathon::Task;
use tls_support::ClusterPki;

const APP: &str = r#"{
  "id": "/db",
  "cmd": "test -f data/big || head -c 100000000 /dev/urandom > data/big; echo $MESOS_TASK_ID >> data/starts; exec sleep 3600",
  "instances": 1,
  "cpus": 0.1,
  "mem": 32,
  "backoffSeconds": 1,
  "container": {"type": "MESOS", "volumes": [
    {"containerPath": "data", "mode": "RW", "persistent": {"size": 200}}
  ]}
}"#;

fn running(cluster: &Cluster) -> Vec<Task> {
    cluster.running_of("db")
}

fn volume(cluster: &Cluster, i: usize) -> PathBuf {
    infra::agent::volumes::volume_dir(&cluster.agent_dir(i), "/db", "data")
}

fn sha256(path: &Path) -> String {
    infra::agent::volume_manifest::hash_file(path).expect("hash the file")
}

fn starts(cluster: &Cluster, i: usize) -> Vec<String> {
    std::fs::read_to_string(volume(cluster, i).join("starts"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Bytes under `dir` (files only), 0 when it does not exist.
fn bytes_under(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => bytes_under(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

#[test]
fn a_move_interrupted_halfway_changes_nothing_and_a_move_carries_the_data() {
    let pki = ClusterPki::new(&["agent-1", "agent-2", "agent-3"]);
    let mut cluster = Cluster::start_with(3, |i| {
        let identity = pki.identity(&format!("agent-{i}"));
        vec![
            "--ca".into(),
            pki.ca().display().to_string(),
            "--tls-cert".into(),
            identity.cert.display().to_string(),
            "--tls-key".into(),
            identity.key.display().to_string(),
            "--volume-listen".into(),
            "127.0.0.1:0".into(),
        ]
    });
    cluster.wait_agents_registered();
    let file = cluster.dir.path().join("db.json");
    std::fs::write(&file, APP).expect("write app");
    let out = cluster.cli(&["deploy", file.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut first = None;
    wait_until("the task and its 100 MB", Duration::from_secs(60), || {
        let now = running(&cluster);
        let Some(task) = now.first() else {
            return false;
        };
        let home = cluster.agent_of(task);
        if starts(&cluster, home).len() == 1 {
            first = Some((task.clone(), home));
            return true;
        }
        false
    });
    let (task, home) = first.expect("a task");
    let digest = sha256(&volume(&cluster, home).join("big"));
    let (receiver, last) = match home {
        1 => (2, 3),
        2 => (3, 1),
        _ => (1, 2),
    };

    // A move whose receiving agent dies halfway through the pre-copy.
    let mover = Command::new(BIN)
        .args(["move", "db", "--to", &format!("agent-{receiver}")])
        .args(["--scheduler", &cluster.url, "--timeout", "120"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run infra move");
    let incoming = cluster.agent_dir(receiver).join("volumes/.incoming");
    // Polled every 5 ms: on loopback the 100 MB take a few hundred milliseconds.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let copied = bytes_under(&incoming);
        if copied > 0 && copied < 90_000_000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no partial copy seen on the receiver (last seen: {copied} bytes)"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    cluster.kill_agent(receiver);
    let output = mover.wait_with_output().expect("infra move output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("the move failed"), "{text}");
    let now = running(&cluster);
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].id, task.id, "the original task kept running");
    assert_eq!(cluster.agent_of(&now[0]), home);
    assert_eq!(sha256(&volume(&cluster, home).join("big")), digest);
    assert_eq!(starts(&cluster, home), vec![task.id.clone()]);

    // A move to the third agent: the task runs there on the same bytes.
    let out = cluster.cli(&["move", "db", "--to", &format!("agent-{last}")]);
    let text = stdout(&out) + &stderr(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("downtime"), "{text}");
    let now = running(&cluster);
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(cluster.agent_of(&now[0]), last);
    assert_eq!(sha256(&volume(&cluster, last).join("big")), digest);
    assert_eq!(
        starts(&cluster, last),
        vec![task.id.clone(), now[0].id.clone()]
    );
    // The sender deletes its copy itself, told by its next heartbeat answer once the
    // scheduler has recorded the new agent.
    wait_until(
        "the sender's copy deleted once the move is recorded",
        Duration::from_secs(10),
        || !volume(&cluster, home).exists(),
    );
    let moved = now[0].id.clone();

    // A constraint that no longer allows that agent moves the task back, with its data.
    let constrained = APP.replace(
        "\"instances\": 1,",
        &format!(
            "\"instances\": 1, \"constraints\": [[\"hostname\", \"LIKE\", \"agent-{home}\"]],"
        ),
    );
    std::fs::write(&file, constrained).expect("write app");
    let out = cluster.cli(&["deploy", file.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut back = None;
    wait_until(
        "the task back on its first agent",
        Duration::from_secs(60),
        || {
            let now = running(&cluster);
            match now.as_slice() {
                [task] if cluster.agent_of(task) == home && starts(&cluster, home).len() == 3 => {
                    back = Some(task.clone());
                    true
                }
                _ => false,
            }
        },
    );
    let back = back.expect("the task");
    assert_eq!(starts(&cluster, home), vec![task.id, moved, back.id]);
    assert_eq!(sha256(&volume(&cluster, home).join("big")), digest);
    wait_until(
        "the second sender's copy deleted",
        Duration::from_secs(10),
        || !volume(&cluster, last).exists(),
    );
}
