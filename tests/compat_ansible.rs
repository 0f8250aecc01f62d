//! The compatibility suite: every playbook under tests/compat/ runs with the real
//! `ansible-playbook` (ansible-core from PyPI) on one host and with `infra play` on its twin,
//! both created by `infra up` from the same image. Both tools must report the same recap
//! counts on the first and on the second run, and leave the same state behind (files with
//! content, owner and mode; packages; users; services), compared with tests/compat/snapshot.sh.
//!
//! `INFRA_COMPAT_ONLY=14-unsafe,15-role` runs only the suites whose folder names contain
//! one of the parts.
//!
//! `ansible-playbook` is found through `INFRA_ANSIBLE_PLAYBOOK`, then PATH, then the venv that
//! `.ci/run` creates; the test fails (it does not skip) when there is none.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn ansible_playbook() -> PathBuf {
    if let Ok(path) = std::env::var("INFRA_ANSIBLE_PLAYBOOK") {
        return PathBuf::from(path);
    }
    let on_path = Command::new("sh")
        .args(["-c", "command -v ansible-playbook"])
        .output()
        .expect("run sh");
    if on_path.status.success() {
        return PathBuf::from(String::from_utf8_lossy(&on_path.stdout).trim());
    }
    for candidate in [
        "/opt/infra-venv/bin/ansible-playbook",
        "/opt/infra-bench-venv/bin/ansible-playbook",
    ] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!(
        "ansible-playbook not found: .ci/run installs ansible-core into /opt/infra-venv \
         (python3 -m venv /opt/infra-venv && /opt/infra-venv/bin/pip install ansible-core), \
         or set INFRA_ANSIBLE_PLAYBOOK"
    );
}

/// The twin hosts, created by `infra up` with a no-op playbook; removed on drop.
struct Twins {
    home: tempfile::TempDir,
    inventory: PathBuf,
    key: PathBuf,
    known_hosts: PathBuf,
    /// host name -> address
    addresses: BTreeMap<String, String>,
}

impl Twins {
    fn create() -> Twins {
        let home = tempfile::tempdir().expect("temp dir");
        let cluster = format!("compat{}", std::process::id());
        let inventory = home.path().join("twins.yaml");
        std::fs::write(
            &inventory,
            format!(
                "all:\n  vars:\n    infra_provider: docker\n    infra_cluster: {cluster}\n  hosts:\n    twin-ansible:\n    twin-infra:\n"
            ),
        )
        .expect("write inventory");
        let noop = home.path().join("noop.yml");
        std::fs::write(&noop, "- hosts: all\n  gather_facts: false\n  tasks: []\n")
            .expect("write playbook");
        let out = Command::new(env!("CARGO_BIN_EXE_infra"))
            .args(["up", "-i"])
            .arg(&inventory)
            .arg("--playbook")
            .arg(&noop)
            .env("INFRA_HOME", home.path())
            .output()
            .expect("run infra up");
        let state = home.path().join(&cluster);
        let mut twins = Twins {
            key: state.join("id_ed25519"),
            known_hosts: state.join("known_hosts"),
            home,
            inventory,
            addresses: BTreeMap::new(),
        };
        assert!(
            out.status.success(),
            "infra up of the twins: {}",
            text(&out)
        );
        twins.addresses = addresses_from_known_hosts(&twins.known_hosts);
        for host in ["twin-ansible", "twin-infra"] {
            assert!(
                twins.addresses.contains_key(host),
                "no address for {host} in {}",
                twins.known_hosts.display()
            );
        }
        twins
    }

    fn address(&self, host: &str) -> &str {
        &self.addresses[host]
    }

    /// Runs the state snapshot script on a host over real SSH with host-key checking on.
    fn snapshot(&self, host: &str) -> String {
        let script = std::fs::read(project_root().join("tests/compat/snapshot.sh"))
            .expect("read snapshot.sh");
        let mut child = Command::new("ssh")
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .arg("-i")
            .arg(&self.key)
            .arg(format!("root@{}", self.address(host)))
            .arg("sh -s")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ssh");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&script)
            .expect("send script");
        let out = child.wait_with_output().expect("ssh output");
        assert!(out.status.success(), "snapshot of {host}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Twins {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_infra"))
            .args(["down", "--purge", "-i"])
            .arg(&self.inventory)
            .env("INFRA_HOME", self.home.path())
            .output();
    }
}

/// known_hosts holds `<address> <key>` and `<name> <key>` lines for every host.
fn addresses_from_known_hosts(path: &Path) -> BTreeMap<String, String> {
    let content = std::fs::read_to_string(path).expect("read known_hosts");
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in content.lines() {
        let mut parts = line.split_whitespace();
        if let (Some(name), Some(kind), Some(key)) = (parts.next(), parts.next(), parts.next()) {
            by_key
                .entry(format!("{kind} {key}"))
                .or_default()
                .push(name.to_string());
        }
    }
    let mut addresses = BTreeMap::new();
    for names in by_key.values() {
        let address = names.iter().find(|n| n.parse::<std::net::IpAddr>().is_ok());
        if let Some(address) = address {
            for name in names
                .iter()
                .filter(|n| n.parse::<std::net::IpAddr>().is_err())
            {
                addresses.insert(name.clone(), address.clone());
            }
        }
    }
    addresses
}

/// The inventory both tools get: one host `twin` (so templates render the same) in the
/// nested groups compat > web, pointing at one of the twins.
fn write_twin_inventory(dir: &Path, twins: &Twins, host: &str) -> PathBuf {
    let path = dir.join(format!("inventory-{host}.yml"));
    std::fs::write(
        &path,
        format!(
            "all:\n  children:\n    compat:\n      children:\n        web:\n          hosts:\n            twin:\n              ansible_host: {}\n              ansible_user: root\n              ansible_ssh_private_key_file: {}\n",
            twins.address(host),
            twins.key.display()
        ),
    )
    .expect("write twin inventory");
    path
}

/// `twin : ok=7 changed=6 ...` -> the counters in recap order.
fn recap_counts(stdout: &str) -> Option<Vec<(String, u64)>> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("twin") && l.contains("ok="))?;
    let counts = line
        .split_whitespace()
        .filter_map(|word| {
            let (name, value) = word.split_once('=')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect();
    Some(counts)
}

fn run_ansible(dir: &Path, playbook: &Path, inventory: &Path, twins: &Twins) -> Output {
    let config = dir.join("ansible.cfg");
    std::fs::write(
        &config,
        format!(
            "[defaults]\nhost_key_checking = True\ninterpreter_python = /usr/bin/python3\nretry_files_enabled = False\n[ssh_connection]\npipelining = True\nssh_args = -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes\n",
            twins.known_hosts.display()
        ),
    )
    .expect("write ansible.cfg");
    Command::new(ansible_playbook())
        .arg("-i")
        .arg(inventory)
        .arg(playbook)
        .env("ANSIBLE_CONFIG", &config)
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCAL_TEMP", dir.join("ansible-tmp"))
        .env("ANSIBLE_HOME", dir.join("ansible-home"))
        .output()
        .expect("run ansible-playbook")
}

fn run_infra(playbook: &Path, inventory: &Path, twins: &Twins) -> Output {
    Command::new(env!("CARGO_BIN_EXE_infra"))
        .arg("play")
        .arg(playbook)
        .arg("-i")
        .arg(inventory)
        .arg("--known-hosts")
        .arg(&twins.known_hosts)
        .args(["--output", "lines"])
        .env("NO_COLOR", "1")
        .output()
        .expect("run infra play")
}

#[test]
fn compat_suite_matches_ansible_playbook() {
    let ansible = ansible_playbook();
    assert!(ansible.exists(), "{} does not exist", ansible.display());
    let twins = Twins::create();
    let work = tempfile::tempdir().expect("temp dir");
    let ansible_inventory = write_twin_inventory(work.path(), &twins, "twin-ansible");
    let infra_inventory = write_twin_inventory(work.path(), &twins, "twin-infra");

    let compat = project_root().join("tests/compat");
    let mut suites: Vec<PathBuf> = std::fs::read_dir(&compat)
        .expect("read tests/compat")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("site.yml").exists())
        .collect();
    suites.sort();
    // INFRA_COMPAT_ONLY=<parts of folder names, comma-separated>: only those suites.
    match std::env::var("INFRA_COMPAT_ONLY") {
        Ok(only) => {
            suites.retain(|p| only.split(',').any(|o| p.to_string_lossy().contains(o)));
            assert!(!suites.is_empty(), "no compat suite matches {only:?}");
        }
        Err(_) => assert!(suites.len() >= 10, "expected at least 10 compat playbooks"),
    }

    let mut mismatches = Vec::new();
    for suite in &suites {
        let name = suite.file_name().unwrap().to_string_lossy().into_owned();
        let playbook = suite.join("site.yml");
        for run in 1..=2 {
            // Both tools at once: they converge different hosts.
            let (a, i) = std::thread::scope(|s| {
                let a = s.spawn(|| run_ansible(work.path(), &playbook, &ansible_inventory, &twins));
                let i = s.spawn(|| run_infra(&playbook, &infra_inventory, &twins));
                (a.join().unwrap(), i.join().unwrap())
            });
            let a_stdout = String::from_utf8_lossy(&a.stdout).into_owned();
            let i_stdout = String::from_utf8_lossy(&i.stdout).into_owned();
            assert!(
                a.status.success(),
                "{name} run {run}: ansible-playbook failed: {}",
                text(&a)
            );
            let a_counts = recap_counts(&a_stdout);
            let i_counts = recap_counts(&i_stdout);
            if i_counts.is_none() || a_counts != i_counts || a.status.code() != i.status.code() {
                mismatches.push(format!(
                    "{name} run {run}: ansible {:?} (exit {:?}) vs infra {:?} (exit {:?})\n--- infra output\n{}\n{}",
                    a_counts,
                    a.status.code(),
                    i_counts,
                    i.status.code(),
                    i_stdout,
                    String::from_utf8_lossy(&i.stderr)
                ));
            }
        }
        let a_state = twins.snapshot("twin-ansible");
        let i_state = twins.snapshot("twin-infra");
        if a_state != i_state {
            let diff = similar::TextDiff::from_lines(&a_state, &i_state)
                .unified_diff()
                .header("ansible-playbook", "infra")
                .to_string();
            mismatches.push(format!("{name}: host state differs\n{diff}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatch(es) between ansible-playbook and infra:\n\n{}",
        mismatches.len(),
        mismatches.join("\n\n")
    );
}

#[test]
fn recap_counts_reads_ansible_lines() {
    let line = "twin                       : ok=7    changed=6    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0   \n";
    let counts = recap_counts(line).unwrap();
    assert_eq!(counts[0], ("ok".to_string(), 7));
    assert_eq!(counts[1], ("changed".to_string(), 6));
    assert_eq!(counts.len(), 7);
}

#[test]
fn known_hosts_pairs_names_with_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("known_hosts");
    std::fs::write(
        &path,
        "10.0.0.2 ssh-ed25519 AAAA1\na ssh-ed25519 AAAA1\n10.0.0.3 ssh-ed25519 AAAA2\nb ssh-ed25519 AAAA2\n",
    )
    .unwrap();
    let map = addresses_from_known_hosts(&path);
    assert_eq!(map["a"], "10.0.0.2");
    assert_eq!(map["b"], "10.0.0.3");
}
