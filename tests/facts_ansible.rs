//! `infra`'s facts against the real Ansible's, on the same host: one docker systemd+sshd
//! host made by `infra up` (as tests/compat_ansible.rs makes its twins), local facts put in
//! /etc/ansible/facts.d, then `ansible -m setup` (the real Ansible, interpreter discovery
//! left on) and an in-process `infra` run that writes `ansible_facts` to a file. Every name
//! issue 12 lists is compared key by key:
//! - exact equality for everything stable, including every fact outside the list that both
//!   tools report (distribution, network, processors, memtotal,
//!   python, user, mounts, lsb, selinux, apparmor, fips, dns, cmdline, local facts, ...);
//! - `date_time`: same keys, all strings, epochs within 120 s;
//! - `uptime_seconds`, `memfree_mb`: same type, within a tolerance (they move);
//! - `interfaces`, `virtualization_tech_*`: as sets (Ansible's order varies run to run);
//! - `loadavg`, `memory_mb`: same keys;
//! - `env`: the variables every SSH session has (HOME, PATH, USER, LOGNAME, SHELL, PWD)
//!   equal; a TTY's (TERM, SSH_TTY) may differ.
//!
//! The same run proves the injected variables (`ansible_distribution`, ...) equal
//! `ansible_facts.x` and `ansible_facts['x']`, and that gathering (local facts included) is
//! one SSH exec. A second run checks the `setup` module's `gather_subset`/`filter` against
//! Ansible's.
//!
//! Ansible is found through `INFRA_ANSIBLE`, then /opt/infra-venv/bin/ansible; the test fails
//! (it does not skip) when there is none.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use infra::engine::{self, RunOptions};
use infra::inventory::Inventory;
use infra::transport::ssh;
use serde_json::{Map, Value};

/// The names issue 12 lists (and the brief adds); [`compare`] says how each is compared.
const NAMES: &[&str] = &[
    "os_family",
    "distribution",
    "distribution_version",
    "distribution_major_version",
    "distribution_release",
    "system",
    "kernel",
    "kernel_version",
    "architecture",
    "machine",
    "hostname",
    "fqdn",
    "nodename",
    "domain",
    "default_ipv4",
    "all_ipv4_addresses",
    "interfaces",
    "eth0",
    "lo",
    "memtotal_mb",
    "memfree_mb",
    "processor_vcpus",
    "processor_cores",
    "processor_count",
    "service_mgr",
    "pkg_mgr",
    "python",
    "python_version",
    "user_id",
    "user_uid",
    "user_gid",
    "user_dir",
    "user_shell",
    "env",
    "date_time",
    "virtualization_type",
    "virtualization_role",
    "mounts",
    "lsb",
    "selinux",
    "apparmor",
    "fips",
    "machine_id",
    "dns",
    "cmdline",
    "uptime_seconds",
    "ansible_local",
];

fn text(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn ansible() -> PathBuf {
    if let Ok(path) = std::env::var("INFRA_ANSIBLE") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from("/opt/infra-venv/bin/ansible");
    assert!(
        venv.exists(),
        "ansible not found: install ansible into /opt/infra-venv or set INFRA_ANSIBLE"
    );
    venv
}

/// One host made by `infra up` with a no-op playbook; removed on drop.
struct Host {
    home: tempfile::TempDir,
    inventory: PathBuf,
    key: PathBuf,
    known_hosts: PathBuf,
    address: String,
}

impl Host {
    fn create() -> Host {
        let home = tempfile::tempdir().expect("temp dir");
        let cluster = format!("facts{}", std::process::id());
        let inventory = home.path().join("host.yaml");
        std::fs::write(
            &inventory,
            format!("all:\n  vars:\n    infra_provider: docker\n    infra_cluster: {cluster}\n  hosts:\n    facthost:\n"),
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
        let mut host = Host {
            key: state.join("id_ed25519"),
            known_hosts: state.join("known_hosts"),
            home,
            inventory,
            address: String::new(),
        };
        assert!(out.status.success(), "infra up: {}", text(&out));
        let known = std::fs::read_to_string(&host.known_hosts).expect("read known_hosts");
        host.address = known
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .find(|n| n.parse::<std::net::IpAddr>().is_ok())
            .expect("an address in known_hosts")
            .to_string();
        host
    }

    fn ssh(&self, command: &str) -> Output {
        Command::new("ssh")
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .arg("-i")
            .arg(&self.key)
            .arg(format!("root@{}", self.address))
            .arg(command)
            .output()
            .expect("run ssh")
    }

    /// The inventory both tools get: host `facthost` at the container's address.
    fn write_inventory(&self, dir: &Path) -> PathBuf {
        let path = dir.join("inventory.yml");
        std::fs::write(
            &path,
            format!(
                "all:\n  hosts:\n    facthost:\n      ansible_host: {}\n      ansible_user: root\n      ansible_ssh_private_key_file: {}\n",
                self.address,
                self.key.display()
            ),
        )
        .expect("write inventory");
        path
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_infra"))
            .args(["down", "--purge", "-i"])
            .arg(&self.inventory)
            .env("INFRA_HOME", self.home.path())
            .output();
    }
}

/// `ansible facthost -m setup -a ARGS`: the `ansible_facts` of its one result.
fn ansible_setup(dir: &Path, inventory: &Path, host: &Host, args: &str) -> Map<String, Value> {
    let config = dir.join("ansible.cfg");
    std::fs::write(
        &config,
        format!(
            "[defaults]\nhost_key_checking = True\ninterpreter_python = auto_silent\n[ssh_connection]\npipelining = True\nssh_args = -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes\n",
            host.known_hosts.display()
        ),
    )
    .expect("write ansible.cfg");
    let mut cmd = Command::new(ansible());
    cmd.arg("-i")
        .arg(inventory)
        .args(["facthost", "-m", "setup"]);
    if !args.is_empty() {
        cmd.args(["-a", args]);
    }
    let out = cmd
        .env("ANSIBLE_CONFIG", &config)
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCAL_TEMP", dir.join("ansible-tmp"))
        .env("ANSIBLE_HOME", dir.join("ansible-home"))
        .output()
        .expect("run ansible");
    assert!(out.status.success(), "ansible -m setup: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let start = stdout.find("=> {").expect("a result in ansible's output") + 3;
    let result: Value = serde_json::from_str(&stdout[start..]).expect("ansible's JSON");
    match result.get("ansible_facts") {
        Some(Value::Object(m)) => m.clone(),
        _ => panic!("no ansible_facts in {result}"),
    }
}

/// `ansible_x` -> `x`, as `ansible_facts` shows them (`ansible_local` keeps its name).
fn namespaced(facts: &Map<String, Value>) -> Map<String, Value> {
    facts
        .iter()
        .map(|(k, v)| match k.strip_prefix("ansible_") {
            Some(s) if k != "ansible_local" => (s.to_string(), v.clone()),
            _ => (k.clone(), v.clone()),
        })
        .collect()
}

async fn run_infra(playbook: &Path, inventory: &Path, host: &Host, out_dir: &Path) {
    let mut opts = RunOptions::new(
        playbook.to_path_buf(),
        Inventory::load(inventory).expect("load inventory"),
    );
    opts.known_hosts = vec![host.known_hosts.clone()];
    opts.extra_vars
        .insert("out_dir".into(), Value::from(out_dir.display().to_string()));
    let recap = engine::run(opts).await.expect("infra run");
    for (name, stats) in &recap.hosts {
        assert_eq!(
            stats.failed + stats.unreachable,
            0,
            "{name}: {stats:?} (playbook {})",
            playbook.display()
        );
    }
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

/// Compares one fact; returns a description of the difference, if any.
fn compare(name: &str, ansible: &Value, infra: &Value) -> Option<String> {
    let differ = |why: &str| {
        Some(format!(
            "{name}: {why}\n  ansible: {ansible}\n  infra:   {infra}"
        ))
    };
    match name {
        "memfree_mb" | "uptime_seconds" => {
            let (Some(a), Some(b)) = (ansible.as_u64(), infra.as_u64()) else {
                return differ("not both integers");
            };
            // memfree moves with the page cache of a busy machine; uptime by the seconds
            // between the two gatherings.
            let tolerance = if name == "memfree_mb" { a.max(b) } else { 300 };
            (a.abs_diff(b) > tolerance)
                .then(|| differ("too far apart"))
                .flatten()
        }
        "date_time" => {
            let (Some(a), Some(b)) = (ansible.as_object(), infra.as_object()) else {
                return differ("not both dicts");
            };
            let keys = |m: &Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
            if keys(a) != keys(b) {
                return differ("different keys");
            }
            if !b.values().all(Value::is_string) {
                return differ("infra's values are not all strings");
            }
            let epoch = |m: &Map<String, Value>| {
                m["epoch"]
                    .as_str()
                    .and_then(|s| s.parse::<i64>().ok())
                    .unwrap_or(0)
            };
            if (epoch(a) - epoch(b)).abs() > 120 {
                return differ("epochs more than 120 s apart");
            }
            for k in ["tz", "tz_offset", "tz_dst", "year"] {
                if a[k] != b[k] {
                    return differ(k);
                }
            }
            None
        }
        // Sets (or dict key views) in Ansible: their order varies from run to run.
        "interfaces" | "virtualization_tech_guest" | "virtualization_tech_host" => {
            let sorted = |v: &Value| {
                let mut items: Vec<String> = v
                    .as_array()
                    .map(|a| a.iter().map(Value::to_string).collect())
                    .unwrap_or_default();
                items.sort();
                items
            };
            (sorted(ansible) != sorted(infra))
                .then(|| differ("different sets"))
                .flatten()
        }
        // Whole-machine load and memory use move between two gatherings.
        "loadavg" | "memory_mb" => {
            let keys = |v: &Value| v.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>());
            (keys(ansible) != keys(infra))
                .then(|| differ("different keys"))
                .flatten()
        }
        "env" => {
            for k in ["HOME", "PATH", "USER", "LOGNAME", "SHELL", "PWD"] {
                if ansible.get(k) != infra.get(k) {
                    return differ(k);
                }
            }
            None
        }
        _ => (ansible != infra).then(|| differ("not equal")).flatten(),
    }
}

const GATHER_PLAYBOOK: &str = r#"
- hosts: all
  tasks:
    - name: all facts as ansible_facts shows them
      copy:
        content: "{{ ansible_facts | to_nice_json }}"
        dest: "{{ out_dir }}/facts.json"
      delegate_to: localhost
    - name: the injected variables, and the bracket form
      copy:
        content: "{{ injected | to_nice_json }}"
        dest: "{{ out_dir }}/injected.json"
      delegate_to: localhost
      vars:
        injected:
          bracket_distribution: "{{ ansible_facts['distribution'] }}"
          bracket_ipv4: "{{ ansible_facts['default_ipv4']['address'] }}"
"#;

const SETUP_PLAYBOOK: &str = r#"
- hosts: all
  gather_subset: ["!all"]
  fact_path: /nonexistent/facts.d
  tasks:
    - name: the play's gather_subset and fact_path are honoured
      assert:
        that:
          - ansible_facts.distribution == "Debian"
          - ansible_facts.memtotal_mb is not defined
          - ansible_default_ipv4 is not defined
          - ansible_local == {}
          - ansible_facts.gather_subset == ["!all"]
- hosts: all
  gather_facts: false
  tasks:
    - setup:
        gather_subset: ["!all", "network"]
        filter: "ansible_*ipv4*"
      register: subset
    - copy:
        content: "{{ subset | to_nice_json }}"
        dest: "{{ out_dir }}/subset.json"
      delegate_to: localhost
    - name: setup's facts are merged into the host's facts
      assert:
        that:
          - ansible_default_ipv4.address == ansible_facts.default_ipv4.address
          - ansible_facts.all_ipv4_addresses | length > 0
"#;

#[tokio::test]
async fn facts_match_ansible_setup_key_by_key_in_one_exec() {
    let host = Host::create();
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path();
    let inventory = host.write_inventory(dir);

    // Local facts of every kind Ansible reads: JSON, INI, an executable, a broken one.
    let out = host.ssh(
        "mkdir -p /etc/ansible/facts.d && cd /etc/ansible/facts.d && \
         printf '{\"port\": 8080, \"tags\": [\"a\", \"b\"]}\\n' > app.fact && \
         printf '[general]\\nAsdf = 1\\nbar = two\\n' > prefs.fact && \
         printf '#!/bin/sh\\necho \"{\\\\\"dynamic\\\\\": true}\"\\n' > dyn.fact && chmod +x dyn.fact && \
         printf 'neither json nor ini\\n' > broken.fact",
    );
    assert!(out.status.success(), "local facts: {}", text(&out));

    let ansible_all = namespaced(&ansible_setup(dir, &inventory, &host, ""));
    let local = &ansible_all["ansible_local"];
    assert_eq!(
        local["dyn"]["dynamic"], true,
        "the executable fact ran: {local}"
    );

    // The infra side: gathering (with the local facts) is one exec on one connection.
    let playbook = dir.join("gather.yml");
    let mut injected_names = String::new();
    for name in NAMES.iter().filter(|n| **n != "ansible_local") {
        injected_names.push_str(&format!("          {name}: \"{{{{ ansible_{name} }}}}\"\n"));
    }
    injected_names.push_str("          ansible_local: \"{{ ansible_local }}\"\n");
    std::fs::write(&playbook, format!("{GATHER_PLAYBOOK}{injected_names}"))
        .expect("write playbook");
    let before = ssh::stats();
    run_infra(&playbook, &inventory, &host, dir).await;
    let work_done = ssh::stats().since(&before);
    assert_eq!(work_done.connections, 1, "one connection: {work_done:?}");
    assert_eq!(
        work_done.execs, 1,
        "gathering facts, local facts included, is one exec: {work_done:?}"
    );

    let infra_all = read_json(&dir.join("facts.json"));
    let infra_all = infra_all.as_object().expect("facts are a dict");
    let mut differences = Vec::new();
    for name in NAMES {
        let Some(a) = ansible_all.get(*name) else {
            differences.push(format!("{name}: ansible has no such fact"));
            continue;
        };
        let Some(b) = infra_all.get(*name) else {
            differences.push(format!("{name}: missing in infra's facts"));
            continue;
        };
        if let Some(d) = compare(name, a, b) {
            differences.push(d);
        }
    }
    // Beyond the list: every other fact both tools report is compared too.
    for (name, b) in infra_all {
        if NAMES.contains(&name.as_str()) {
            continue;
        }
        if let Some(a) = ansible_all.get(name) {
            if let Some(d) = compare(name, a, b) {
                differences.push(d);
            }
        }
    }
    assert!(
        differences.is_empty(),
        "facts differ from ansible -m setup:\n{}",
        differences.join("\n")
    );

    // Injected variables are the same values as ansible_facts.x.
    let injected = read_json(&dir.join("injected.json"));
    assert_eq!(injected["bracket_distribution"], infra_all["distribution"]);
    assert_eq!(
        injected["bracket_ipv4"],
        infra_all["default_ipv4"]["address"]
    );
    for name in NAMES {
        assert_eq!(
            injected[*name], infra_all[*name],
            "the injected variable for {name} equals ansible_facts.{name}"
        );
    }

    // setup with gather_subset and filter: the same keys and values as Ansible's.
    let ansible_subset = ansible_setup(
        dir,
        &inventory,
        &host,
        "gather_subset=!all,network filter=ansible_*ipv4*",
    );
    let playbook = dir.join("setup.yml");
    std::fs::write(&playbook, SETUP_PLAYBOOK).expect("write playbook");
    run_infra(&playbook, &inventory, &host, dir).await;
    let registered = read_json(&dir.join("subset.json"));
    let infra_subset = registered["ansible_facts"]
        .as_object()
        .expect("setup registers ansible_facts");
    let keys = |m: &Map<String, Value>| {
        m.keys()
            .filter(|k| k.starts_with("ansible_"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(infra_subset), keys(&ansible_subset));
    for k in keys(&ansible_subset) {
        assert_eq!(infra_subset[&k], ansible_subset[&k], "{k}");
    }
    assert!(infra_subset.contains_key("ansible_default_ipv4"));
    assert!(!infra_subset.contains_key("ansible_hostname"));
    assert_eq!(registered["changed"], false);
}

#[tokio::test]
async fn a_bad_gather_subset_is_a_load_error_naming_the_place() {
    let dir = tempfile::tempdir().expect("temp dir");
    let playbook = dir.path().join("bad.yml");
    std::fs::write(
        &playbook,
        "- hosts: all\n  gather_subset:\n    - hardwre\n  tasks: []\n",
    )
    .expect("write playbook");
    let inventory = dir.path().join("inventory.yml");
    std::fs::write(&inventory, "all:\n  hosts:\n    h1:\n").expect("write inventory");
    let opts = RunOptions::new(
        playbook.clone(),
        Inventory::load(&inventory).expect("load inventory"),
    );
    let err = format!("{:#}", engine::run(opts).await.expect_err("a load error"));
    assert!(
        err.contains(&format!("{}:3:", playbook.display())) && err.contains("Bad subset 'hardwre'"),
        "{err}"
    );
}
