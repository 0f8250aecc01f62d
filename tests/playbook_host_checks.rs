//! The platform playbooks' checks of a host, run for real on this machine through `infra
//! play` (local connection): each task is taken from the playbook file itself, so the test
//! follows the playbook as it changes, and run alone, so nothing else of the play touches
//! this machine.

#[path = "support/engine.rs"]
mod support;

use std::path::Path;

use support::*;

/// The task named `name` of the first play of `playbooks/<file>`, as a playbook of its
/// own for every host.
fn task_alone(file: &str, name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("playbooks")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("read the playbook");
    let plays: Vec<serde_yaml::Value> = serde_yaml::from_str(&text).expect("parse the playbook");
    let task = plays[0]["tasks"]
        .as_sequence()
        .expect("tasks")
        .iter()
        .find(|t| t["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("{file} has no task named {name:?}"))
        .clone();
    let mut play = serde_yaml::Mapping::new();
    play.insert("hosts".into(), "all".into());
    play.insert("gather_facts".into(), false.into());
    play.insert("tasks".into(), serde_yaml::Value::Sequence(vec![task]));
    serde_yaml::to_string(&vec![play]).expect("write the play")
}

const COMPUTE_HERE: &str = "all:
  children:
    compute:
      hosts:
        localhost:
          ansible_connection: local
";

/// A container network range that holds one of the host's own addresses (here the
/// loopback's 127.0.0.1) is refused with the address and the variable to change; a range
/// clear of them passes.
#[test]
fn a_container_network_range_holding_a_host_address_is_refused() {
    let check = task_alone(
        "container-network.yaml",
        "The container network's range holds none of this host's own addresses",
    );
    let dir = tree(&[("inv.yaml", COMPUTE_HERE), ("check.yaml", &check)]);
    let run = |cidr: &str| {
        infra(
            &[
                "play",
                "check.yaml",
                "-i",
                "inv.yaml",
                "-e",
                &format!("{{\"container_network_cidr\": \"{cidr}\"}}"),
            ],
            dir.path(),
        )
    };

    let (code, out, err) = run("127.0.0.0/16");
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        out.contains(
            "container_network_cidr 127.0.0.0/16 holds this host's own address (lo 127.0.0.1)"
        ),
        "{out}"
    );

    // The benchmarking range (RFC 2544), which no interface here has.
    let (code, out, err) = run("198.18.0.0/16");
    assert_eq!(code, 0, "{out}\n{err}");
}
