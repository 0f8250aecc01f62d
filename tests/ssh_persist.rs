//! SSH connections kept between runs (src/transport/mux), through the real `infra` binary
//! against one real docker host made by the provider. The host's PAM stack records every
//! SSH login (pam_exec on session open), so each assertion counts real logins on the host:
//! a run that follows another within the idle time logs in zero times, a keeper that has
//! been idle exits and the next run logs in again, `--ssh-persist no`, a host's
//! `ControlMaster=no` and `meta: reset_connection` each cost a login, and a kept connection
//! the host dropped is replaced instead of failing the run; two runs started at once log
//! in once.

#[path = "support/provider.rs"]
mod provider_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use provider_support::*;

const PLAY: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - copy:
        content: "kept\n"
        dest: /tmp/persist-marker
    - command: cat /tmp/persist-marker
      changed_when: false
    - command: id -un
      become: true
      become_user: nobody
      register: who
      changed_when: false
    - assert:
        that: who.stdout == 'nobody'
    - command: cat
      args:
        stdin: piped through
      register: piped
      changed_when: false
    - assert:
        that: piped.stdout == 'piped through'
"#;

const RESET_PLAY: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - command: "true"
      changed_when: false
    - meta: reset_connection
    - command: "true"
      changed_when: false
"#;

/// Makes the host's sshd PAM stack write one line per SSH login to /tmp/logins.
fn count_logins(container: &str) {
    docker_exec(
        container,
        "printf '#!/bin/sh\\n[ \"$PAM_TYPE\" = open_session ] && echo login >> /tmp/logins\\nexit 0\\n' \
           > /usr/local/sbin/count-login && chmod 755 /usr/local/sbin/count-login && \
         echo 'session optional pam_exec.so /usr/local/sbin/count-login' >> /etc/pam.d/sshd && \
         grep -q '^UsePAM yes' /etc/ssh/sshd_config /etc/ssh/sshd_config.d/* 2>/dev/null || \
           grep -qi '^usepam' /etc/ssh/sshd_config || echo 'UsePAM yes' >> /etc/ssh/sshd_config",
    );
}

fn logins(container: &str) -> usize {
    docker_exec(container, "touch /tmp/logins; cat /tmp/logins")
        .lines()
        .count()
}

/// One host, its inventory, and the infra home (the keeper's folder) of this test.
struct Setup {
    one: OneHost,
    container: String,
}

impl Setup {
    async fn new(prefix: &str, vars: &[(&str, String)]) -> Setup {
        let one = OneHost::up(prefix, vars).await;
        let container = one.container();
        count_logins(&container);
        std::fs::write(one.dir.path().join("play.yml"), PLAY).unwrap();
        std::fs::write(one.dir.path().join("reset.yml"), RESET_PLAY).unwrap();
        Setup { one, container }
    }

    fn home(&self) -> &Path {
        self.one.dir.path()
    }

    fn mux_folder(&self) -> PathBuf {
        self.home().join("mux")
    }

    /// `infra play <playbook>` with `--ssh-persist <persist>`; asserts it succeeded.
    fn play(&self, playbook: &str, persist: &str) {
        let out = Command::new(env!("CARGO_BIN_EXE_infra"))
            .arg("play")
            .arg(self.home().join(playbook))
            .arg("-i")
            .arg(&self.one.inventory)
            .args(["--output", "json"])
            .env("INFRA_HOME", self.home())
            .env("INFRA_SSH_PERSIST", persist)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "infra play {playbook} ({persist}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The keeper's socket, when one is being served.
    fn sockets(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.mux_folder()) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "sock"))
            .collect()
    }

    /// Whether a keeper process for this test's folder runs.
    fn keeper_running(&self) -> bool {
        let pattern = format!("ssh-mux --socket {}", self.mux_folder().display());
        Command::new("pgrep")
            .args(["-f", &pattern])
            .output()
            .unwrap()
            .status
            .success()
    }
}

#[tokio::test]
async fn a_run_within_the_idle_time_reuses_the_connection_and_an_idle_keeper_exits() {
    let host = Setup::new("keep", &[]).await;
    let c = &host.container;

    // Keeping off: every run logs in (this is what the counts below would be without it).
    host.play("play.yml", "no");
    host.play("play.yml", "no");
    assert_eq!(logins(c), 2, "each run without keeping logs in");
    assert!(host.sockets().is_empty(), "no keeper was started");

    host.play("play.yml", "4s");
    assert_eq!(logins(c), 3, "the first kept run logs in");
    assert!(host.keeper_running(), "the first kept run starts a keeper");
    let folder_mode = std::fs::metadata(host.mux_folder())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(folder_mode & 0o777, 0o700);
    let sockets = host.sockets();
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    let socket_mode = std::fs::metadata(&sockets[0]).unwrap().permissions().mode();
    assert_eq!(socket_mode & 0o777, 0o600);

    host.play("play.yml", "4s");
    host.play("play.yml", "4s");
    assert_eq!(logins(c), 3, "runs within the idle time log in zero times");

    // Idle past its time: the connection closes and the keeper exits, socket removed.
    let deadline = Instant::now() + Duration::from_secs(20);
    while (host.keeper_running() || !host.sockets().is_empty()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(!host.keeper_running(), "the keeper exits once idle");
    assert!(host.sockets().is_empty(), "and removes its socket");
    host.play("play.yml", "4s");
    assert_eq!(logins(c), 4, "after the keeper left, a run logs in again");

    // The host drops the kept connection (its sshd session killed): the next run notices
    // before using it, logs in again and succeeds.
    docker_exec(c, "pkill -f '[s]shd: root' || true");
    host.play("play.yml", "4s");
    assert_eq!(
        logins(c),
        5,
        "a dropped connection is replaced by a new login"
    );
    host.play("play.yml", "4s");
    assert_eq!(logins(c), 5, "and the new one is kept");
}

#[tokio::test]
async fn runs_at_once_share_one_login_and_a_hosts_control_master_no_and_reset_connection_each_cost_one(
) {
    let host = Setup::new("keepopt", &[]).await;
    let c = &host.container;

    // Two runs started at once, no keeper yet: one keeper, one login for both.
    std::thread::scope(|s| {
        s.spawn(|| host.play("play.yml", "30s"));
        s.spawn(|| host.play("play.yml", "30s"));
    });
    assert_eq!(logins(c), 1, "two runs at once log in once");
    assert_eq!(host.sockets().len(), 1);

    // meta: reset_connection closes the kept connection itself: the play's second task
    // logs in again, and that connection is the one kept for the next run.
    host.play("reset.yml", "30s");
    assert_eq!(logins(c), 2, "reset_connection closed the kept connection");
    host.play("play.yml", "30s");
    assert_eq!(
        logins(c),
        2,
        "the connection opened after the reset is kept"
    );

    // The host's own ssh options turn keeping off for it, whatever the run says.
    let inventory = std::fs::read_to_string(&host.one.inventory).unwrap();
    let with_option = inventory.replace(
        "  vars:\n",
        "  vars:\n    ansible_ssh_common_args: \"-o ControlMaster=no\"\n",
    );
    assert_ne!(inventory, with_option);
    std::fs::write(&host.one.inventory, with_option).unwrap();
    host.play("play.yml", "30s");
    host.play("play.yml", "30s");
    assert_eq!(logins(c), 4, "ControlMaster=no: every run logs in");
}
