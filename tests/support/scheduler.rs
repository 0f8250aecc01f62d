//! Test helpers for the scheduler: the real `infra scheduler` binary on 127.0.0.1 with a
//! temp data dir, and agents that speak the real agent protocol over HTTP (they report
//! what a real agent would: assigned tasks start RUNNING, unassigned ones are killed).

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use infra::api::agent::{
    Assignments, HealthReport, Heartbeat, Registered, Registration, TaskSpec, TaskState,
    TaskStatus, REGISTER_PATH,
};
use serde_json::Value;

/// The flags of a scheduler that tests talk to in plain HTTP, without tokens: every
/// helper that starts a bare scheduler passes them (tests of TLS and authentication pass
/// their own flags instead).
pub const INSECURE: &[&str] = &["--insecure-http", "--no-auth"];

pub struct SchedulerProc {
    child: Child,
    pub url: String,
    pub data_dir: PathBuf,
}

impl SchedulerProc {
    /// Starts `infra scheduler --listen 127.0.0.1:0 --data-dir DIR ARGS...` and waits for
    /// its "listening on" line. Without `--tls-cert` among `ARGS`, it serves plain HTTP
    /// without authentication ([`INSECURE`]), or with it when `ARGS` give
    /// `--bootstrap-tokens`; with `--tls-cert`, `url` is https.
    pub fn start(data_dir: &Path, args: &[&str]) -> SchedulerProc {
        let tls = args.contains(&"--tls-cert");
        let insecure: &[&str] = match (tls, args.contains(&"--bootstrap-tokens")) {
            (true, _) => &[],
            (false, true) => &INSECURE[..1],
            (false, false) => INSECURE,
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_infra"))
            .args(["scheduler", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(insecure)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start infra scheduler");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("infra scheduler listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        SchedulerProc {
            child,
            url: format!("{}://{addr}", if tls { "https" } else { "http" }),
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// SIGKILL: nothing gets a chance to flush.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SchedulerProc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A simulated agent speaking the real protocol.
pub struct TestAgent {
    pub id: String,
    pub hostname: String,
    pub port_range: (u16, u16),
    pub attributes: BTreeMap<String, String>,
    pub docker: bool,
    /// What it "runs": the spec and the status it reports.
    pub tasks: HashMap<String, (TaskSpec, TaskStatus)>,
    /// Tasks it reports as healthy once running (health checks pass).
    pub healthy: bool,
    /// Heartbeats a task stays STARTING before it is RUNNING.
    pub start_delay: u32,
    starting: HashMap<String, u32>,
    pub last_assignments: Vec<TaskSpec>,
    /// What it speaks HTTP with ([`client`]; a client with a host certificate for TLS
    /// tests).
    pub http: reqwest::Client,
}

impl TestAgent {
    pub fn new(name: &str, port_range: (u16, u16)) -> TestAgent {
        TestAgent {
            id: format!("agent-{name}"),
            hostname: name.to_string(),
            port_range,
            attributes: BTreeMap::new(),
            docker: false,
            tasks: HashMap::new(),
            healthy: true,
            start_delay: 0,
            starting: HashMap::new(),
            last_assignments: Vec::new(),
            http: client(),
        }
    }

    pub async fn register(&self, url: &str) -> Registered {
        let resp = self.try_register(url).await;
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    /// Registers and returns the answer, whatever its status.
    pub async fn try_register(&self, url: &str) -> reqwest::Response {
        let reg = Registration {
            agent_id: self.id.clone(),
            hostname: self.hostname.clone(),
            address: "127.0.0.1".into(),
            cpus: 4.0,
            mem: 4096.0,
            disk: 10000.0,
            port_range: self.port_range,
            attributes: self.attributes.clone(),
            docker: self.docker,
            version: "test".into(),
            volume_url: None,
        };
        self.http
            .post(format!("{url}{REGISTER_PATH}"))
            .json(&reg)
            .send()
            .await
            .unwrap()
    }

    fn health(&self, spec: &TaskSpec) -> Vec<HealthReport> {
        (0..spec.health_checks.len())
            .map(|index| HealthReport {
                index,
                alive: self.healthy,
                consecutive_failures: if self.healthy { 0 } else { 1 },
                first_success: None,
                last_success: None,
                last_failure: None,
                last_failure_cause: None,
            })
            .collect()
    }

    /// One heartbeat: reports every task, then does what the answer says (start what is
    /// new, drop what is no longer assigned, reporting it KILLED once).
    pub async fn heartbeat(&mut self, url: &str) -> reqwest::StatusCode {
        let statuses: Vec<TaskStatus> = self.tasks.values().map(|(_, s)| s.clone()).collect();
        let resp = self
            .http
            .post(format!(
                "{url}{}",
                infra::api::agent::heartbeat_path(&self.id)
            ))
            .json(&Heartbeat {
                tasks: statuses,
                busy_ports: Vec::new(),
                output: Vec::new(),
                volume_moves: Vec::new(),
                volumes: Vec::new(),
                generation: None,
                delta: false,
                partial: false,
            })
            .send()
            .await
            .unwrap();
        let status = resp.status();
        if status != 200 {
            return status;
        }
        let assignments: Assignments = resp.json().await.unwrap();
        let wanted: HashMap<String, TaskSpec> = assignments
            .tasks
            .iter()
            .map(|t| (t.task_id.clone(), t.clone()))
            .collect();
        self.last_assignments = assignments.tasks;
        // Terminal ones were reported once; unassigned running ones get killed.
        let ids: Vec<String> = self.tasks.keys().cloned().collect();
        for id in ids {
            let terminal = self.tasks[&id].1.state.is_terminal();
            if terminal {
                self.tasks.remove(&id);
            } else if !wanted.contains_key(&id) {
                if let Some((_, s)) = self.tasks.get_mut(&id) {
                    s.state = TaskState::Killed;
                }
            }
        }
        for (id, spec) in wanted {
            if self.tasks.contains_key(&id) {
                let waited = self.starting.entry(id.clone()).or_insert(0);
                *waited += 1;
                let ready = *waited > self.start_delay;
                let health = self.health(&spec);
                if let Some((_, s)) = self.tasks.get_mut(&id) {
                    if ready && s.state == TaskState::Starting {
                        s.state = TaskState::Running;
                        s.started_at = Some("2020-01-01T00:00:00.000Z".into());
                    }
                    if s.state == TaskState::Running {
                        s.health = health;
                    }
                }
                continue;
            }
            let state = if self.start_delay == 0 {
                TaskState::Running
            } else {
                TaskState::Starting
            };
            let health = if state == TaskState::Running {
                self.health(&spec)
            } else {
                Vec::new()
            };
            let status = TaskStatus {
                task_id: id.clone(),
                app_id: spec.app_id.clone(),
                state,
                host_ports: spec.host_ports.clone(),
                health,
                started_at: None,
                exit_code: None,
                message: None,
                ip_addresses: Vec::new(),
            };
            self.tasks.insert(id, (spec, status));
        }
        status
    }

    /// Makes a task exit with a failure (reported on the next heartbeat).
    pub fn fail(&mut self, task_id: &str) {
        if let Some((_, s)) = self.tasks.get_mut(task_id) {
            s.state = TaskState::Failed;
            s.exit_code = Some(1);
            s.message = Some("exited with status 1".into());
        }
    }

    pub fn running(&self) -> Vec<&TaskSpec> {
        self.tasks
            .values()
            .filter(|(_, s)| !s.state.is_terminal())
            .map(|(spec, _)| spec)
            .collect()
    }
}

/// Heartbeats `agents` every 100ms until `done` returns true (or panics after `timeout`).
pub async fn pump_until<F, Fut>(
    url: &str,
    agents: &mut [&mut TestAgent],
    timeout: Duration,
    mut done: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        for agent in agents.iter_mut() {
            agent.heartbeat(url).await;
        }
        if done().await {
            return;
        }
        if start.elapsed() > timeout {
            panic!("condition not reached within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The body of `GET url` as text (`/metrics`).
pub async fn get_text(url: &str) -> String {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub async fn get_json(url: &str) -> Value {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Collects the JSON events an SSE client of `events_url` sees (the whole `/v2/events`
/// URL, query included), in a background task, as they arrive.
#[allow(dead_code)]
pub fn watch_events(events_url: String) -> std::sync::Arc<std::sync::Mutex<Vec<Value>>> {
    use futures::StreamExt;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = seen.clone();
    tokio::spawn(async move {
        let resp = reqwest::Client::new()
            .get(events_url)
            .header("Accept", "text/event-stream")
            .send()
            .await
            .expect("event stream answered");
        let mut stream = resp.bytes_stream();
        let mut buf = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                for line in block.lines() {
                    if let Some(data) = line.strip_prefix("data:") {
                        if let Ok(v) = serde_json::from_str::<Value>(data.trim()) {
                            out.lock().expect("events lock").push(v);
                        }
                    }
                }
            }
        }
    });
    seen
}
