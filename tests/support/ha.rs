//! The HA control plane on loopback, all real processes: a 3-member etcd cluster
//! ([`crate::etcd`]), N `infra scheduler --etcd ...` processes of the built binary (ports
//! picked up front so each knows its `--advertise` URL), and real `infra agent` processes
//! (own data dir, hostname and port range, every scheduler URL, rotated so the agents start
//! on different nodes). Schedulers can be killed (SIGKILL), frozen (SIGSTOP), thawed and
//! restarted on the same port; the leader is found by asking every live node
//! (`GET /v2/leader`, they must agree). A round-robin client spreads requests over all
//! nodes, and a sampler polls `/v2/tasks` on every node and the agents' task tables while a
//! test runs, so a duplicate or an excess task shows up even if it lives for 100 ms.
#![allow(dead_code)]

use crate::agent_support::pid_alive;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use infra::api::marathon::Task;
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;

use crate::etcd::{free_ports, EtcdCluster};

pub const BIN: &str = env!("CARGO_BIN_EXE_infra");

/// The etcd prefix of datacenter dc1's state.
pub const PREFIX: &str = "/infra/dc1/";

/// Every test binary's clusters get their own block of agent host ports.
static NEXT_PORT_BLOCK: AtomicUsize = AtomicUsize::new(0);

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub struct SchedulerNode {
    pub index: usize,
    pub port: u16,
    /// `http://127.0.0.1:PORT`, also its `--advertise` URL.
    pub url: String,
    pub data_dir: PathBuf,
    /// stderr (the tracing log) of every incarnation, appended.
    pub log: PathBuf,
    child: Option<Child>,
    stopped: bool,
}

impl SchedulerNode {
    /// What `GET /v2/leader` answers when this node leads.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Running and not frozen.
    pub fn live(&self) -> bool {
        self.child.is_some() && !self.stopped
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

pub struct HaCluster {
    pub dir: tempfile::TempDir,
    pub etcd: EtcdCluster,
    pub nodes: Vec<SchedulerNode>,
    pub agents: Vec<Option<Child>>,
    agent_port_base: u16,
    /// Extra flags every scheduler gets (after the defaults).
    pub scheduler_args: Vec<String>,
}

impl HaCluster {
    /// A 3-member etcd cluster, `schedulers` schedulers (agent timeout 10 s unless `extra`
    /// says otherwise, 500 ms heartbeats, default leader TTL) with an elected leader, and
    /// `agents` real agents, all registered.
    pub async fn start(schedulers: usize, agents: usize) -> HaCluster {
        Self::start_with(schedulers, agents, &[]).await
    }

    pub async fn start_with(schedulers: usize, agents: usize, extra: &[&str]) -> HaCluster {
        let etcd = EtcdCluster::start(3).await;
        let dir = tempfile::tempdir().unwrap();
        let ports = free_ports(schedulers);
        let block = NEXT_PORT_BLOCK.fetch_add(1, Ordering::SeqCst) as u16;
        let mut cluster = HaCluster {
            nodes: ports
                .iter()
                .enumerate()
                .map(|(index, &port)| SchedulerNode {
                    index,
                    port,
                    url: format!("http://127.0.0.1:{port}"),
                    data_dir: dir.path().join(format!("scheduler{index}")),
                    log: dir.path().join(format!("scheduler{index}.log")),
                    child: None,
                    stopped: false,
                })
                .collect(),
            dir,
            etcd,
            agents: Vec::new(),
            // Below Linux's ephemeral range (32768-60999), where the etcd and scheduler ports
            // (bound to :0) and every outgoing connection's local port come from: a task's
            // port there can be taken at any moment.
            agent_port_base: 26000 + 1000 * (block % 5),
            scheduler_args: if extra.contains(&"--agent-timeout") {
                extra.iter().map(|s| s.to_string()).collect()
            } else {
                ["--agent-timeout", "10s"]
                    .iter()
                    .chain(extra)
                    .map(|s| s.to_string())
                    .collect()
            },
        };
        for i in 0..schedulers {
            cluster.spawn_scheduler(i);
        }
        cluster.wait_leader(&[], Duration::from_secs(30)).await;
        for i in 0..agents {
            let child = cluster.spawn_agent(i);
            cluster.agents.push(Some(child));
        }
        if agents > 0 {
            cluster.wait_agents(agents, Duration::from_secs(30)).await;
        }
        cluster
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url.clone()).collect()
    }

    pub fn url(&self, i: usize) -> &str {
        &self.nodes[i].url
    }

    /// `infra scheduler` number `i` on its port, once it says it listens.
    pub fn spawn_scheduler(&mut self, i: usize) {
        let node = &self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .unwrap();
        let mut child = Command::new(BIN)
            .args(["scheduler", "--listen", &node.host_port()])
            // Plain HTTP without tokens, like every bare scheduler of the tests.
            .args(["--insecure-http", "--no-auth"])
            .args(["--advertise", &node.url, "--data-dir"])
            .arg(&node.data_dir)
            .args(["--etcd", &self.etcd.client_urls()])
            .args(["--heartbeat-interval", "500ms"])
            .args(&self.scheduler_args)
            .env("INFRA_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start infra scheduler");
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if !line.starts_with("infra scheduler listening on ") {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "scheduler {i}: unexpected first line {line:?}\n{}",
                tail(&node.log, 30)
            );
        }
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        let node = &mut self.nodes[i];
        node.child = Some(child);
        node.stopped = false;
    }

    /// SIGKILL scheduler `i`: nothing gets a chance to step down or flush.
    pub fn kill_scheduler(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        node.stopped = false;
    }

    /// SIGSTOP scheduler `i`: frozen with its sockets open (a partitioned or stalled host).
    pub fn stop_scheduler(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let pid = node.pid().expect("scheduler is not running") as i32;
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
        node.stopped = true;
    }

    /// SIGCONT scheduler `i`.
    pub fn cont_scheduler(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let pid = node.pid().expect("scheduler is not running") as i32;
        assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
        node.stopped = false;
    }

    /// SIGKILL scheduler `i` and start it again on the same port and data dir.
    pub fn restart_scheduler(&mut self, i: usize) {
        self.kill_scheduler(i);
        self.spawn_scheduler(i);
    }

    /// What `GET /v2/leader` on node `i` answers: `Some("host:port")`, `None` on 404 (no
    /// leader), `Err` when it does not answer within a second.
    pub async fn leader_seen_by(&self, i: usize) -> Result<Option<String>, String> {
        let resp = http()
            .get(format!("{}/v2/leader", self.nodes[i].url))
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match resp.status().as_u16() {
            200 => {
                let body: Value = resp.json().await.map_err(|e| e.to_string())?;
                Ok(body["leader"].as_str().map(str::to_string))
            }
            404 => Ok(None),
            other => Err(format!("GET /v2/leader: {other}")),
        }
    }

    /// The node every live node names as leader, if they all name the same live node.
    pub async fn agreed_leader(&self) -> Option<usize> {
        let mut named = BTreeSet::new();
        for node in self.nodes.iter().filter(|n| n.live()) {
            named.insert(self.leader_seen_by(node.index).await.ok()??);
        }
        if named.len() != 1 {
            return None;
        }
        let name = named.into_iter().next().unwrap();
        self.nodes
            .iter()
            .find(|n| n.live() && n.host_port() == name)
            .map(|n| n.index)
    }

    /// Waits until every live node names the same live leader, not one of `exclude`;
    /// returns it and how long that took. Panics with every log after `timeout`.
    pub async fn wait_leader(&self, exclude: &[usize], timeout: Duration) -> (usize, Duration) {
        let start = Instant::now();
        loop {
            if let Some(i) = self.agreed_leader().await {
                if !exclude.contains(&i) {
                    return (i, start.elapsed());
                }
            }
            if start.elapsed() > timeout {
                let mut views = Vec::new();
                for node in &self.nodes {
                    views.push(format!(
                        "node {} ({}, live {}): {:?}",
                        node.index,
                        node.url,
                        node.live(),
                        if node.live() {
                            self.leader_seen_by(node.index).await
                        } else {
                            Err("not running".into())
                        }
                    ));
                }
                self.dump_logs();
                panic!(
                    "no agreed leader (other than {exclude:?}) after {timeout:?}:\n{}",
                    views.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The current agreed leader (waits up to 10 s).
    pub async fn leader(&self) -> usize {
        self.wait_leader(&[], Duration::from_secs(10)).await.0
    }

    pub fn agent_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("agent{i}"))
    }

    /// Real `infra agent` number `i` (0-based, hostname `agent-i`, 100 host ports of its
    /// own, 500 ms heartbeats), given every scheduler URL starting with node `i % n`.
    pub fn spawn_agent(&self, i: usize) -> Child {
        let low = self.agent_port_base + 100 * i as u16;
        let n = self.nodes.len();
        let schedulers: Vec<String> = (0..n)
            .map(|k| self.nodes[(i + k) % n].url.clone())
            .collect();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("agent{i}.log")))
            .unwrap();
        Command::new(BIN)
            .args(["agent", "--scheduler", &schedulers.join(",")])
            .args(["--hostname", &format!("agent-{i}")])
            .args(["--port-range", &format!("{low}-{}", low + 99)])
            .args(["--cpus", "4", "--mem", "4096", "--address", "127.0.0.1"])
            .args(["--heartbeat-interval", "500ms", "--data-dir"])
            .arg(self.agent_dir(i))
            .env("INFRA_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start infra agent")
    }

    /// Waits until the leader's `/metrics` counts `n` registered agents.
    pub async fn wait_agents(&self, n: usize, timeout: Duration) {
        let start = Instant::now();
        loop {
            let leader = self.leader().await;
            if metric(&self.nodes[leader].url, "infra_scheduler_agents").await == Some(n as f64) {
                return;
            }
            if start.elapsed() > timeout {
                self.dump_logs();
                panic!("{n} agents did not register within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The live task processes of every agent, from their task tables on disk: (task id,
    /// app id, agent index, pid) for each task whose process is alive.
    pub fn agent_processes(&self) -> Vec<AgentProcess> {
        let mut out = Vec::new();
        for i in 0..self.agents.len() {
            let Ok(entries) = infra::agent::table::load(&self.agent_dir(i)) else {
                continue;
            };
            for entry in entries {
                if let infra::agent::table::Handle::Process { pid, .. } = entry.handle {
                    if pid_alive(pid) {
                        out.push(AgentProcess {
                            task_id: entry.spec.task_id.clone(),
                            app_id: entry.spec.app_id.clone(),
                            agent: i,
                            pid,
                        });
                    }
                }
            }
        }
        out
    }

    /// Prints the last lines of every scheduler's and agent's log to stderr.
    pub fn dump_logs(&self) {
        for node in &self.nodes {
            eprintln!(
                "--- scheduler {} ({}) log:\n{}",
                node.index,
                node.url,
                tail(&node.log, 40)
            );
        }
        for i in 0..self.agents.len() {
            eprintln!(
                "--- agent {i} log:\n{}",
                tail(&self.dir.path().join(format!("agent{i}.log")), 15)
            );
        }
    }

    /// Scheduler `i`'s log (every incarnation).
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default()
    }

    /// A client that spreads requests over every node, skipping dead ones.
    pub fn round_robin(&self) -> RoundRobin {
        RoundRobin::new(self.urls())
    }

    /// SIGKILLs every task process group recorded in the agents' task tables.
    pub fn kill_all_tasks(&self) {
        for i in 0..self.agents.len() {
            let dir = self.agent_dir(i);
            let Ok(entries) = infra::agent::table::load(&dir) else {
                continue;
            };
            for entry in &entries {
                if let infra::agent::table::Handle::Process { pgid, .. } = entry.handle {
                    if pgid > 1 {
                        unsafe { libc::kill(-pgid, libc::SIGKILL) };
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(200));
            for entry in &entries {
                infra::agent::cgroup::remove(&entry.spec.task_id);
            }
        }
    }
}

impl Drop for HaCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
            let exited = self.etcd.exited();
            if !exited.is_empty() {
                eprintln!("etcd members that exited on their own (or were killed from outside the test): {exited:?}");
            }
        }
        for agent in self.agents.iter_mut().flatten() {
            let _ = agent.kill();
            let _ = agent.wait();
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].stopped {
                self.cont_scheduler(i);
            }
            self.kill_scheduler(i);
        }
        self.kill_all_tasks();
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentProcess {
    pub task_id: String,
    pub app_id: String,
    pub agent: usize,
    pub pid: i32,
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// One gauge of `url/metrics`.
pub async fn metric(url: &str, name: &str) -> Option<f64> {
    let text = http()
        .get(format!("{url}/metrics"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// An HTTP answer and the node that gave it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub node: String,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// One request to one URL (2 s limit unless `timeout` says otherwise).
pub async fn request(
    base: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<Reply, String> {
    let mut req = http()
        .request(method.clone(), format!("{base}{path}"))
        .timeout(timeout);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(body) = body {
        req = req.json(body);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("{method} {base}{path}: {e}"))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp
        .text()
        .await
        .map_err(|e| format!("{method} {base}{path}: {e}"))?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(Reply {
        node: base.to_string(),
        status,
        headers,
        body,
    })
}

/// A client that sends each request to the next node in turn, and on a connection error or
/// timeout tries the following ones (as the CLI and agents fail over).
pub struct RoundRobin {
    pub urls: Vec<String>,
    next: AtomicUsize,
    pub timeout: Duration,
}

impl RoundRobin {
    pub fn new(urls: Vec<String>) -> RoundRobin {
        RoundRobin {
            urls,
            next: AtomicUsize::new(0),
            timeout: Duration::from_secs(3),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let first = self.next.fetch_add(1, Ordering::SeqCst);
        let mut errors = Vec::new();
        for k in 0..self.urls.len() {
            let url = &self.urls[(first + k) % self.urls.len()];
            match request(url, method.clone(), path, body, &[], self.timeout).await {
                Ok(reply) => return Ok(reply),
                Err(e) => errors.push(e),
            }
        }
        Err(errors.join("; "))
    }

    pub async fn get(&self, path: &str) -> Result<Reply, String> {
        self.send(Method::GET, path, None).await
    }
}

/// A task as one node listed it.
#[derive(Debug, Clone)]
pub struct TaskView {
    pub id: String,
    pub state: String,
    pub started_at: Option<String>,
    pub version: String,
    pub agent: Option<String>,
}

/// What one poll saw.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Duration,
    /// The node index, or `None` for the agents' task tables (what really runs).
    pub node: Option<usize>,
    pub tasks: Vec<TaskView>,
}

/// Polls `GET /v2/tasks` on every node (1 s limit each, dead or frozen nodes just miss a
/// round) and the agents' task tables every 100 ms, keeping the tasks of one app.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    handle: Option<tokio::task::JoinHandle<()>>,
    pub start: Instant,
}

impl Sampler {
    pub fn start(cluster: &HaCluster, app: &str) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let urls = cluster.urls();
        let agent_dirs: Vec<PathBuf> = (0..cluster.agents.len())
            .map(|i| cluster.agent_dir(i))
            .collect();
        let app = app.to_string();
        let handle = {
            let stop = stop.clone();
            let samples = samples.clone();
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let polls = urls.iter().enumerate().map(|(i, url)| {
                        let url = url.clone();
                        async move { (i, poll_tasks(&url).await) }
                    });
                    let results = futures::future::join_all(polls).await;
                    let at = start.elapsed();
                    let mut batch = Vec::new();
                    for (i, tasks) in results {
                        if let Some(tasks) = tasks {
                            batch.push(Sample {
                                at,
                                node: Some(i),
                                tasks: tasks
                                    .into_iter()
                                    .filter(|t| t.app_id == app)
                                    .map(view)
                                    .collect(),
                            });
                        }
                    }
                    batch.push(Sample {
                        at,
                        node: None,
                        tasks: table_tasks(&agent_dirs, &app),
                    });
                    samples.lock().unwrap().extend(batch);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        Sampler {
            stop,
            samples,
            handle: Some(handle),
            start,
        }
    }

    /// Stops polling; every sample taken.
    pub async fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
        let samples = std::mem::take(&mut *self.samples.lock().unwrap());
        samples
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

async fn poll_tasks(url: &str) -> Option<Vec<Task>> {
    let resp = http()
        .get(format!("{url}/v2/tasks"))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let body: Value = resp.json().await.ok()?;
    serde_json::from_value(body["tasks"].clone()).ok()
}

fn view(t: Task) -> TaskView {
    TaskView {
        id: t.id,
        state: t.state,
        started_at: t.started_at,
        version: t.version,
        agent: t.slave_id,
    }
}

/// The app's tasks whose process is alive, from every agent's task table.
fn table_tasks(agent_dirs: &[PathBuf], app: &str) -> Vec<TaskView> {
    let mut out = Vec::new();
    for (i, dir) in agent_dirs.iter().enumerate() {
        let Ok(entries) = infra::agent::table::load(dir) else {
            continue;
        };
        for entry in entries {
            if entry.spec.app_id != app {
                continue;
            }
            if let infra::agent::table::Handle::Process { pid, .. } = entry.handle {
                if pid_alive(pid) {
                    out.push(TaskView {
                        id: entry.spec.task_id.clone(),
                        state: "PROCESS_ALIVE".into(),
                        started_at: entry.started_at.clone(),
                        version: entry.spec.app_version.clone(),
                        agent: Some(format!("agent-{i}")),
                    });
                }
            }
        }
    }
    out
}

/// Everything wrong in `samples`: a task id listed twice in one sample, more than `limit`
/// tasks of the app at once on a node's list (TASK_KILLING ones not counted), or more than
/// `process_limit` processes of the app alive on the agents (None: not checked, e.g. while
/// tasks are being killed, since a killed task's process lives on for its grace period).
pub fn violations(samples: &[Sample], limit: usize, process_limit: Option<usize>) -> Vec<String> {
    let mut out = Vec::new();
    for s in samples {
        let source = match s.node {
            Some(i) => format!("node {i}"),
            None => "agents".to_string(),
        };
        let mut seen = BTreeMap::new();
        for t in &s.tasks {
            *seen.entry(t.id.as_str()).or_insert(0) += 1;
        }
        for (id, n) in &seen {
            if *n > 1 {
                out.push(format!("{:?} {source}: task {id} listed {n} times", s.at));
            }
        }
        // On a node's list TASK_KILLING tasks do not count (Marathon's upgrade strategy); on
        // the agents every live process counts.
        let counted = s.tasks.iter().filter(|t| t.state != "TASK_KILLING").count();
        let limit = match s.node {
            Some(_) => limit,
            None => match process_limit {
                Some(n) => n,
                None => continue,
            },
        };
        if counted > limit {
            let ids: Vec<String> = s
                .tasks
                .iter()
                .map(|t| format!("{} {}", t.id, t.state))
                .collect();
            out.push(format!(
                "{:?} {source}: {counted} tasks > {limit}: {ids:?}",
                s.at
            ));
        }
    }
    out
}

/// The most tasks of the app seen at once, per source (`node i` / `agents`), TASK_KILLING
/// ones included.
pub fn peak(samples: &[Sample]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for s in samples {
        let source = match s.node {
            Some(i) => format!("node {i}"),
            None => "agents".to_string(),
        };
        let e = out.entry(source).or_insert(0);
        *e = (*e).max(s.tasks.len());
    }
    out
}

/// The app's tasks as `url` lists them.
pub async fn app_tasks(url: &str, app: &str) -> Vec<Task> {
    poll_tasks(url)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.app_id == app)
        .collect()
}
