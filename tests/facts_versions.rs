//! The answers of `systemctl --version` and the interpreter's `--version` that the
//! controller keeps between runs (src/engine/facts/versions.rs), against one real docker
//! host made by the provider: the second gathering starts neither program on the host and
//! gives the same facts, and a program replaced on the host is asked again at once.

#[path = "support/provider.rs"]
mod provider_support;

use std::path::PathBuf;

use infra::engine::{self, RunOptions};
use provider_support::*;
use serde_json::Value;

/// Gathers facts and writes them to `out` on the controller.
const FACTS: &str = r#"
- hosts: all
  gather_facts: true
  tasks:
    - copy:
        content: "{{ ansible_facts | to_nice_json }}"
        dest: "{{ facts_out }}"
      delegate_to: localhost
"#;

/// Puts a wrapper at `path` that logs each start to /tmp/ran.log and runs the real
/// program (moved beside it), or prints `says` instead when given.
fn wrap(container: &str, path: &str, says: Option<&str>) {
    use std::io::Write as _;
    let body = match says {
        Some(text) => format!("echo '{text}'"),
        None => format!("exec {path}.real \"$@\""),
    };
    docker_exec(
        container,
        &format!("[ -e {path}.real ] || mv {path} {path}.real"),
    );
    let mut child = std::process::Command::new("docker")
        .args(["exec", "-i", container, "sh", "-c"])
        .arg(format!("cat > {path} && chmod 755 {path}"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("the docker CLI is needed");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("#!/bin/sh\necho {path} >> /tmp/ran.log\n{body}\n").as_bytes())
        .expect("write the wrapper");
    assert!(child.wait().expect("docker exec").success());
}

/// How many times each wrapped program ran.
fn runs(container: &str, path: &str) -> usize {
    docker_exec(container, "touch /tmp/ran.log; cat /tmp/ran.log")
        .lines()
        .filter(|l| *l == path)
        .count()
}

/// The host, the playbook that gathers its facts and where they land.
struct Host {
    one: OneHost,
    playbook: PathBuf,
    out: PathBuf,
}

impl Host {
    /// One gathering: the facts.
    async fn gather(&self) -> Value {
        let recap = engine::run(RunOptions {
            known_hosts: vec![self.one.state.known_hosts_path()],
            ..RunOptions::new(self.playbook.clone(), self.one.attached_inventory().await)
        })
        .await
        .unwrap();
        for (host, stats) in &recap.hosts {
            assert_eq!(stats.failed + stats.unreachable, 0, "{host}: {stats:?}");
        }
        let facts = std::fs::read_to_string(&self.out).unwrap();
        serde_json::from_str(&facts).unwrap()
    }
}

fn versions(facts: &Value) -> (Value, Value, Value) {
    (
        facts["systemd"].clone(),
        facts["python"]["version"].clone(),
        facts["python"]["executable"].clone(),
    )
}

#[tokio::test]
async fn program_versions_come_from_the_controller_until_the_program_is_replaced() {
    let home = tempfile::tempdir().unwrap();
    // The cache lives under the infra home; this test's process has no other gathering.
    std::env::set_var("INFRA_HOME", home.path());
    let cache = home.path().join("cache").join("program-versions.json");

    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("facts.json");
    let one = OneHost::up("fv", &[("facts_out", out.display().to_string())]).await;
    let playbook = one.dir.path().join("facts.yml");
    std::fs::write(&playbook, FACTS).unwrap();
    let host = Host { one, playbook, out };
    let container = host.one.container();

    // The programs the facts ask, wrapped in place to count their starts.
    let systemctl = "/usr/bin/systemctl";
    let python = "/usr/bin/python3.11";
    wrap(&container, systemctl, None);
    wrap(&container, python, None);

    let first = host.gather().await;
    assert_eq!(
        (runs(&container, systemctl), runs(&container, python)),
        (1, 1)
    );
    let cached: Value = serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
    assert_eq!(cached["latest"]["systemctl"], systemctl, "{cached:#}");
    assert_eq!(cached["latest"]["python"], python, "{cached:#}");
    let (systemd, version, executable) = versions(&first);
    assert_eq!(executable, python);
    assert_eq!(
        systemd["version"].as_u64().map(|v| v >= 240),
        Some(true),
        "{systemd}"
    );
    assert_eq!(version["major"], 3, "{version}");

    // Known: the same facts, and neither program started.
    let second = host.gather().await;
    assert_eq!(
        versions(&second),
        (systemd.clone(), version.clone(), executable.clone())
    );
    assert_eq!(
        (runs(&container, systemctl), runs(&container, python)),
        (1, 1),
        "neither program runs when the controller knows its file"
    );

    // The interpreter replaced in place (as an upgrade does): asked again at once.
    wrap(&container, python, Some("Python 3.11.99"));
    let third = host.gather().await;
    assert_eq!(
        third["python"]["version"]["micro"], 99,
        "{}",
        third["python"]
    );
    assert_eq!(third["systemd"], systemd, "systemd's answer still fits");
    assert_eq!(
        (runs(&container, systemctl), runs(&container, python)),
        (1, 2)
    );
    let fourth = host.gather().await;
    assert_eq!(
        fourth["python"]["version"]["micro"], 99,
        "the new answer is kept"
    );
    assert_eq!(
        (runs(&container, systemctl), runs(&container, python)),
        (1, 2)
    );
}
