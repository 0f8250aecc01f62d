//! Helpers for the end-to-end CLI tests: a real `infra scheduler` and real `infra agent`
//! processes of the built binary on loopback, each agent with its own data dir, hostname
//! and port range; running the CLI; cleaning up every task process afterwards.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_infra");

/// Clusters in one test binary run in parallel: each gets its own block of host ports.
static NEXT_PORT_BLOCK: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);

pub struct Cluster {
    pub dir: tempfile::TempDir,
    port_base: u16,
    pub url: String,
    scheduler: Child,
    /// The scheduler's heartbeat interval and agent timeout, kept for its restarts.
    heartbeats: (String, String),
    pub agents: Vec<Option<Child>>,
    /// Extra flags of each agent (by 0-based index), kept for restarts.
    agent_extra: Vec<Vec<String>>,
}

impl Cluster {
    /// A scheduler (agent timeout 5 s) and `agents` agents `agent-1..n`, each with its own
    /// range of 100 host ports, and 500 ms heartbeats.
    pub fn start(agents: usize) -> Cluster {
        Cluster::start_full(agents, "500ms", "5s", |_| Vec::new())
    }

    /// [`Cluster::start`] with the scheduler's heartbeat interval and agent timeout (the
    /// agents heartbeat at the interval the scheduler gives them when they register).
    pub fn start_with_heartbeats(agents: usize, interval: &str, agent_timeout: &str) -> Cluster {
        Cluster::start_full(agents, interval, agent_timeout, |_| Vec::new())
    }

    /// [`Cluster::start`] with extra flags for agent `i` (1-based), e.g. TLS.
    pub fn start_with(agents: usize, extra: impl Fn(usize) -> Vec<String>) -> Cluster {
        Cluster::start_full(agents, "500ms", "5s", extra)
    }

    /// The scheduler's heartbeat interval and agent timeout, and extra flags for agent
    /// `i` (1-based).
    pub fn start_full(
        agents: usize,
        interval: &str,
        agent_timeout: &str,
        extra: impl Fn(usize) -> Vec<String>,
    ) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let scheduler = spawn_scheduler(dir.path(), port, interval, agent_timeout);
        let mut cluster = Cluster {
            dir,
            url: format!("http://127.0.0.1:{port}"),
            // Below the kernel's ephemeral range (32768-60999), where an outgoing
            // connection could take an agent's port at any moment; ten blocks in turn.
            port_base: 21000
                + 1000 * (NEXT_PORT_BLOCK.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 10),
            scheduler,
            heartbeats: (interval.to_string(), agent_timeout.to_string()),
            agents: Vec::new(),
            agent_extra: (1..=agents).map(extra).collect(),
        };
        for i in 1..=agents {
            let agent = cluster.spawn_agent(i);
            cluster.agents.push(Some(agent));
        }
        cluster
    }

    /// SIGKILLs the scheduler and starts it again on the same address and data dir.
    pub fn restart_scheduler(&mut self) {
        let _ = self.scheduler.kill();
        let _ = self.scheduler.wait();
        let port: u16 = self.url.rsplit(':').next().unwrap().parse().unwrap();
        let (interval, agent_timeout) = &self.heartbeats;
        self.scheduler = spawn_scheduler(self.dir.path(), port, interval, agent_timeout);
    }

    pub fn agent_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("agent-{i}"))
    }

    /// Agent `i`'s (1-based) range of host ports.
    pub fn port_range(&self, i: usize) -> (u16, u16) {
        let low = self.port_base + 100 * i as u16;
        (low, low + 99)
    }

    /// Starts agent `i` (1-based) with its own data dir, hostname and port range.
    pub fn spawn_agent(&self, i: usize) -> Child {
        let (low, _) = self.port_range(i);
        Command::new(BIN)
            .args([
                "agent",
                "--scheduler",
                &self.url,
                "--hostname",
                &format!("agent-{i}"),
            ])
            .args(["--port-range", &format!("{low}-{}", low + 99)])
            .args([
                "--attribute",
                &format!("rack=r{i}"),
                "--cpus",
                "4",
                "--mem",
                "4096",
            ])
            .args([
                "--address",
                "127.0.0.1",
                "--heartbeat-interval",
                "500ms",
                "--data-dir",
            ])
            .arg(self.agent_dir(i))
            .args(self.agent_extra.get(i - 1).into_iter().flatten())
            .env("INFRA_LOG", "warn")
            .spawn()
            .expect("start infra agent")
    }

    /// SIGKILLs agent `i`; its tasks keep running (as on a real host whose agent died).
    pub fn kill_agent(&mut self, i: usize) {
        if let Some(mut child) = self.agents[i - 1].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The app's tasks as `infra tasks APP -o json` lists them.
    pub fn tasks_of(&self, app: &str) -> Vec<infra::api::marathon::Task> {
        let out = self.cli(&["tasks", app, "--output", "json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).expect("tasks JSON")
    }

    /// The app's tasks in TASK_RUNNING.
    pub fn running_of(&self, app: &str) -> Vec<infra::api::marathon::Task> {
        self.tasks_of(app)
            .into_iter()
            .filter(|t| t.state == "TASK_RUNNING")
            .collect()
    }

    /// Which agent (1-based) runs the task, from its `slaveId` and the agents' id files.
    pub fn agent_of(&self, task: &infra::api::marathon::Task) -> usize {
        let slave = task.slave_id.as_deref().expect("slaveId");
        (1..=self.agents.len())
            .find(|i| {
                std::fs::read_to_string(self.agent_dir(*i).join("agent-id"))
                    .map(|id| id.trim() == slave)
                    .unwrap_or(false)
            })
            .unwrap_or_else(|| panic!("no agent has id {slave}"))
    }

    /// Runs the CLI against this cluster's scheduler.
    pub fn cli(&self, args: &[&str]) -> Output {
        cli(&[args, &["--scheduler", &self.url]].concat())
    }

    /// Waits until `GET /v2/agents`-less readiness: every agent has registered, seen as
    /// a successful `infra apps` and the agents' ids on disk.
    pub fn wait_agents_registered(&self) {
        wait_until("the agents to register", Duration::from_secs(20), || {
            (1..=self.agents.len()).all(|i| self.agent_dir(i).join("agent-id").exists())
        });
        std::thread::sleep(Duration::from_secs(1));
    }

    /// SIGKILLs every task process group recorded in the agents' task tables.
    pub fn kill_all_tasks(&self) {
        for i in 1..=self.agents.len() {
            kill_tasks_of(&self.agent_dir(i));
        }
    }
}

/// `infra scheduler` on 127.0.0.1:port with this heartbeat interval and agent timeout,
/// once it says it listens.
fn spawn_scheduler(dir: &Path, port: u16, interval: &str, agent_timeout: &str) -> Child {
    let mut scheduler = Command::new(BIN)
        .args([
            "scheduler",
            "--agent-timeout",
            agent_timeout,
            "--heartbeat-interval",
            interval,
        ])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.join("scheduler"))
        // Plain HTTP without tokens, like every bare scheduler of the tests.
        .args(["--insecure-http", "--no-auth"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start infra scheduler");
    let stdout = scheduler.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("infra scheduler listening on "),
        "unexpected first line of the scheduler: {line:?}"
    );
    std::thread::spawn(move || {
        let mut sink = String::new();
        while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    });
    scheduler
}

pub fn kill_tasks_of(agent_dir: &Path) {
    let Ok(entries) = infra::agent::table::load(agent_dir) else {
        return;
    };
    for entry in &entries {
        if let infra::agent::table::Handle::Process { pgid, .. } = entry.handle {
            if pgid > 1 {
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
            }
        }
    }
    // Their memory cgroups, which the (dead) agent can no longer remove.
    std::thread::sleep(Duration::from_millis(300));
    for entry in &entries {
        infra::agent::cgroup::remove(&entry.spec.task_id);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for agent in self.agents.iter_mut().flatten() {
            let _ = agent.kill();
            let _ = agent.wait();
        }
        let _ = self.scheduler.kill();
        let _ = self.scheduler.wait();
        self.kill_all_tasks();
    }
}

/// Runs `infra ARGS` (no terminal: plain progress lines), with a 180 s limit.
pub fn cli(args: &[&str]) -> Output {
    cli_env(args, &[])
}

/// [`cli`] with extra environment variables.
pub fn cli_env(args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("INFRA_SCHEDULER")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run infra");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    eprintln!(
        "$ infra {}\n[exit {:?}]\n{}{}",
        args.join(" "),
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// GET http://127.0.0.1:port/ with a plain TCP request; the status code.
pub fn http_status(port: u16) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
