//! Logging in without a key file: keys from a real ssh-agent, then the default
//! `~/.ssh/id_*` files; the default user; and `~/.ssh/known_hosts` as the place where
//! accept-new records keys when no known_hosts file is named.
//!
//! One test function: it sets HOME, USER and SSH_AUTH_SOCK for this process.

#[path = "support/sshd.rs"]
mod sshd;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use infra::transport::{connect, ConnectSpec, ExecOptions};
use sshd::TestSshd;

struct Agent {
    child: Child,
    socket: std::path::PathBuf,
}

impl Agent {
    fn start(dir: &std::path::Path) -> Agent {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .spawn()
            .expect("ssh-agent (openssh-client) is needed");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "ssh-agent did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Agent { child, socket }
    }

    fn add(&self, key: &std::path::Path) {
        let out = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spec_without_key(server: &TestSshd) -> ConnectSpec {
    ConnectSpec {
        key_file: None,
        ..server.connect_spec("a1")
    }
}

#[tokio::test]
async fn agent_and_default_keys_log_in_without_a_key_file() {
    let home = tempfile::tempdir().unwrap();
    std::env::set_var("HOME", home.path());
    std::env::set_var("USER", "root");
    std::env::remove_var("SSH_AUTH_SOCK");
    let server = TestSshd::start();

    // No key file, no agent, no default keys: a clear login failure.
    let err = connect(&spec_without_key(&server)).await.err().unwrap();
    let msg = format!("{err:#}");
    assert!(msg.contains("no SSH key to log in as root"), "{msg}");
    assert!(infra::transport::is_unreachable(&err));

    // An RSA key held by ssh-agent (signing with rsa-sha2 through the agent).
    let keys = tempfile::tempdir().unwrap();
    let agent = Agent::start(keys.path());
    let rsa = sshd::keygen(keys.path(), "agent_rsa", "rsa");
    server.authorize("root", &sshd::public_key_of(&rsa));
    agent.add(&rsa);
    std::env::set_var("SSH_AUTH_SOCK", &agent.socket);
    let t = connect(&spec_without_key(&server))
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", server.log()));
    assert_eq!(
        t.exec("id -un", &ExecOptions::default())
            .await
            .unwrap()
            .stdout,
        "root\n"
    );
    let log = server.log();
    assert!(
        log.contains("Accepted publickey for root") && log.contains("RSA SHA256:"),
        "{log}"
    );
    drop(t);
    drop(agent);
    std::env::remove_var("SSH_AUTH_SOCK");

    // ~/.ssh/id_ecdsa, and the controller's user when the inventory names none.
    let ssh_dir = home.path().join(".ssh");
    std::fs::create_dir(&ssh_dir).unwrap();
    let ecdsa = sshd::keygen(&ssh_dir, "id_ecdsa", "ecdsa");
    server.authorize("root", &sshd::public_key_of(&ecdsa));
    let spec = ConnectSpec {
        user: String::new(),
        ..spec_without_key(&server)
    };
    let t = connect(&spec)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", server.log()));
    assert_eq!(
        t.exec("id -un", &ExecOptions::default())
            .await
            .unwrap()
            .stdout,
        "root\n"
    );

    // accept-new without a named file records into ~/.ssh/known_hosts.
    let spec = ConnectSpec {
        known_hosts: Vec::new(),
        accept_new: true,
        ..spec_without_key(&server)
    };
    connect(&spec).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(ssh_dir.join("known_hosts")).unwrap(),
        format!("{}\n", server.known_hosts_line())
    );
    // ... and it is then trusted from there.
    let spec = ConnectSpec {
        known_hosts: Vec::new(),
        ..spec_without_key(&server)
    };
    connect(&spec).await.unwrap();
}
