//! The engine against real OpenSSH sshd processes on 127.0.0.1 (one per host): facts,
//! templates with hostvars, handlers, idempotence, and a host whose sshd dies in the
//! middle of the run (unreachable, exit 4) while the others finish.

#[path = "support/sshd.rs"]
mod sshd;
#[path = "support/engine.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use sshd::TestSshd;
use support::*;

fn inventory(servers: &[&TestSshd], dir: &Path) -> String {
    let mut s = String::from("all:\n  hosts:\n");
    for (i, server) in servers.iter().enumerate() {
        s.push_str(&format!(
            "    s{n}:\n      ansible_host: 127.0.0.1\n      ansible_port: {port}\n      ansible_user: {user}\n      ansible_ssh_private_key_file: {key}\n      base: {dir}/s{n}\n",
            n = i + 1,
            port = server.port,
            user = server.user,
            key = server.client_key_path.display(),
            dir = dir.display(),
        ));
    }
    s
}

fn known_hosts(servers: &[&TestSshd], dir: &Path) -> std::path::PathBuf {
    let path = dir.join("known_hosts");
    let lines: Vec<String> = servers.iter().map(|s| s.known_hosts_line()).collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

const SITE: &str = r#"
- hosts: all
  handlers:
    - name: restarted
      shell: echo restarted >> {{ base }}/handler.log
  tasks:
    - file: {path: "{{ base }}", state: directory, mode: "0755"}
    - template: {src: peers.j2, dest: "{{ base }}/peers.conf"}
      notify: restarted
    - command: cat {{ base }}/peers.conf
      register: peers
      changed_when: false
    - assert:
        that:
          - peers.stdout_lines | length == 4
          - ansible_facts.hostname == ansible_hostname
          - ansible_os_family == 'Debian'
          - ansible_processor_vcpus > 0
          - ansible_env.HOME is defined
"#;

const PEERS: &str = "# {{ inventory_hostname }} on {{ ansible_distribution }}\n{% for h in groups['all'] %}\n{{ h }} {{ hostvars[h].ansible_port }}\n{% endfor %}\n";

#[tokio::test]
async fn converges_three_ssh_hosts_and_second_run_changes_nothing() {
    let servers = [TestSshd::start(), TestSshd::start(), TestSshd::start()];
    let refs: Vec<&TestSshd> = servers.iter().collect();
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("inv.yaml", &inventory(&refs, dir.path())),
            ("site.yaml", SITE),
            ("templates/peers.j2", PEERS),
        ],
    );
    let kh = known_hosts(&refs, dir.path());
    let mut opts = options(dir.path(), "site.yaml");
    opts.known_hosts = vec![kh.clone()];
    let (recap, out) = run_ok(opts).await;
    assert_eq!(recap.exit_code(), 0, "{out}\n{}", servers[0].log());
    for (i, server) in servers.iter().enumerate() {
        let host = format!("s{}", i + 1);
        let s = &recap.hosts[&host];
        assert_eq!((s.changed, s.failed, s.unreachable), (3, 0, 0), "{out}");
        let peers = read(dir.path().join(&host).join("peers.conf"));
        assert!(
            peers.starts_with(&format!("# {host} on Debian\n")),
            "{peers}"
        );
        assert!(
            peers.contains(&format!("s{} {}\n", i + 1, server.port)),
            "{peers}"
        );
        assert_eq!(
            read(dir.path().join(&host).join("handler.log")),
            "restarted\n"
        );
    }

    let mut opts = options(dir.path(), "site.yaml");
    opts.known_hosts = vec![kh];
    opts.forks = 1;
    let (recap, out) = run_ok(opts).await;
    for host in ["s1", "s2", "s3"] {
        let s = &recap.hosts[host];
        assert_eq!((s.changed, s.failed, s.ok), (0, 0, 5), "{out}");
    }
    assert!(!out.contains("RUNNING HANDLER"), "{out}");
}

#[tokio::test]
async fn a_host_that_dies_mid_run_is_unreachable_and_the_others_finish() {
    let servers = [TestSshd::start(), TestSshd::start()];
    let refs: Vec<&TestSshd> = servers.iter().collect();
    let dir = tempfile::tempdir().unwrap();
    let playbook = r#"
- hosts: all
  gather_facts: false
  tasks:
    - file: {path: "{{ base }}", state: directory}
    - copy: {dest: "{{ base }}/first", content: x}
    - pause: {seconds: 2}
    - copy: {dest: "{{ base }}/second", content: x}
"#;
    write_files(
        dir.path(),
        &[
            ("inv.yaml", &inventory(&refs, dir.path())),
            ("site.yaml", playbook),
        ],
    );
    let kh = known_hosts(&refs, dir.path());
    let [s1, mut s2] = servers;
    let marker = dir.path().join("s2/first");
    let killer = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !marker.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        s2.stop();
        s2
    });
    let mut opts = options(dir.path(), "site.yaml");
    opts.known_hosts = vec![kh];
    let (recap, out) = run_ok(opts).await;
    let _s2 = killer.join().unwrap();
    assert_eq!(recap.exit_code(), 4, "{out}");
    assert_eq!(recap.hosts["s2"].unreachable, 1, "{out}");
    assert_eq!(
        recap.hosts["s1"].failed + recap.hosts["s1"].unreachable,
        0,
        "{out}"
    );
    assert!(dir.path().join("s1/second").exists(), "{out}\n{}", s1.log());
    assert!(!dir.path().join("s2/second").exists());
    assert!(out.contains("fatal: [s2]: UNREACHABLE!"), "{out}");
}
