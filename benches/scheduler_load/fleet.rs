//! Simulated agents: each one registers like `infra agent`, then heartbeats on the interval
//! the scheduler gives, reporting every task it "runs" and applying the assignments in the
//! answer (start what is new, report what is no longer wanted as killed once). Like the
//! real agent, it speaks the delta protocol (`scheduler::delta`) unless told not to: only
//! changed statuses, a full report every 30 heartbeats or when asked, and the generation
//! of the list it holds so that an unchanged list is not sent again. Like the
//! real agent, it reports tasks that started a second later rather than at the next interval. Tasks run
//! instantly or after a delay, and a share of them can be made to fail. An agent can be
//! silenced (lost) at any time. Counters say how many tasks the scheduler has acknowledged
//! as running, which is what the harness measures against.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use infra::api::agent::{
    heartbeat_path, Heartbeat, Registered, Registration, TaskState, TaskStatus, REGISTER_PATH,
};
use serde::Deserialize;

/// The one HTTP client every simulated agent shares (the place to add TLS and client
/// certificates once the scheduler requires them).
pub fn agent_http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(4096)
        .build()
        .context("building the agents' HTTP client")
}

/// How the simulated tasks behave.
#[derive(Debug, Clone, Copy)]
pub struct TaskBehaviour {
    /// How long a new task stays TASK_STARTING before it is TASK_RUNNING.
    pub start_delay: Duration,
    /// Share of new tasks (0.0..=1.0) that exit with a failure instead of running.
    pub fail_rate: f64,
    /// Speak the delta heartbeat protocol (false: every heartbeat full, as older agents).
    pub delta_heartbeats: bool,
}

/// How often a delta-speaking agent reports every task anyway (the real agent's rule).
const FULL_REPORT_EVERY: u32 = infra::agent::report::FULL_REPORT_EVERY;

/// Only what a simulated agent needs of a task spec (the rest of the answer is skipped).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Assigned {
    task_id: String,
    app_id: String,
    host_ports: Vec<u16>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssignedList {
    #[serde(default)]
    tasks: Vec<Assigned>,
    /// A partial answer: every wanted id; `tasks` holds only the new ones.
    #[serde(default)]
    task_ids: Option<Vec<String>>,
    generation: Option<u64>,
    #[serde(default)]
    unchanged: bool,
    #[serde(default)]
    full_report: bool,
}

struct SimTask {
    status: TaskStatus,
    /// The state the scheduler last accepted in a heartbeat (None: never reported).
    sent: Option<TaskState>,
    since: Instant,
    /// The scheduler has answered a heartbeat that reported it running.
    acked_running: bool,
}

/// Shared counters of the whole fleet.
#[derive(Default)]
pub struct FleetCounters {
    /// Tasks the scheduler acknowledged as running for the first time (monotonic).
    pub running_acked: AtomicU64,
    /// When the latest of those acknowledgements arrived (ns since the fleet started).
    pub last_ack_ns: AtomicU64,
    pub heartbeats: AtomicU64,
    pub heartbeat_errors: AtomicU64,
}

/// One agent's handle, kept by the harness.
pub struct AgentHandle {
    pub id: String,
    /// Set: the agent stops heartbeating (it is lost).
    pub silent: AtomicBool,
    /// Tasks it reports running, after its latest heartbeat.
    pub running: AtomicUsize,
}

pub struct Fleet {
    pub agents: Vec<Arc<AgentHandle>>,
    pub counters: Arc<FleetCounters>,
    pub started: Instant,
}

impl Fleet {
    /// Tasks running on agents that are not silenced.
    pub fn running_on_live_agents(&self) -> usize {
        self.agents
            .iter()
            .filter(|a| !a.silent.load(Ordering::Relaxed))
            .map(|a| a.running.load(Ordering::Relaxed))
            .sum()
    }

    pub fn running_total(&self) -> usize {
        self.agents
            .iter()
            .map(|a| a.running.load(Ordering::Relaxed))
            .sum()
    }

    /// When the latest first "running" acknowledgement arrived.
    pub fn last_ack(&self) -> Instant {
        self.started + Duration::from_nanos(self.counters.last_ack_ns.load(Ordering::Relaxed))
    }
}

/// The registration of simulated agent `i`: rack and zone attributes for constraints, room
/// for a couple of hundred small tasks, a 1,000-port range.
pub fn registration(i: usize) -> Registration {
    Registration {
        agent_id: format!("sim-agent-{i:05}"),
        hostname: format!("sim-{i:05}"),
        address: "127.0.0.1".into(),
        cpus: 64.0,
        mem: 262_144.0,
        disk: 1_000_000.0,
        port_range: (31000, 32000),
        attributes: BTreeMap::from([
            ("rack".to_string(), format!("r{}", i % 20)),
            ("zone".to_string(), format!("z{}", i % 3)),
        ]),
        docker: false,
        version: "sim".into(),
        volume_url: None,
    }
}

/// Registers `count` agents with the scheduler at `url` and starts their heartbeat loops.
pub async fn start(
    url: &str,
    count: usize,
    behaviour: TaskBehaviour,
    http: reqwest::Client,
) -> anyhow::Result<Fleet> {
    let counters = Arc::new(FleetCounters::default());
    let started = Instant::now();
    let mut agents = Vec::with_capacity(count);
    let mut registered = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(100) {
        let calls = chunk.iter().map(|&i| {
            let http = http.clone();
            let reg = registration(i);
            let url = format!("{url}{REGISTER_PATH}");
            async move {
                let answer: Registered = http
                    .post(&url)
                    .json(&reg)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .with_context(|| format!("registering {}", reg.agent_id))?
                    .json()
                    .await
                    .context("decoding the registration answer")?;
                anyhow::Ok((reg, answer))
            }
        });
        for result in futures::future::join_all(calls).await {
            registered.push(result?);
        }
    }
    for (n, (reg, answer)) in registered.into_iter().enumerate() {
        let handle = Arc::new(AgentHandle {
            id: reg.agent_id.clone(),
            silent: AtomicBool::new(false),
            running: AtomicUsize::new(0),
        });
        agents.push(handle.clone());
        let interval = Duration::from_millis(answer.heartbeat_interval_ms.max(50));
        // Spread the first heartbeats over one interval, as agents started at random times.
        let offset = interval.mul_f64(n as f64 / count.max(1) as f64);
        let sim = SimAgent {
            url: url.to_string(),
            http: http.clone(),
            handle,
            registration: reg,
            tasks: HashMap::new(),
            behaviour,
            counters: counters.clone(),
            started,
            seed: n as u64 + 1,
            generation: None,
            baseline: false,
            since_full: 0,
        };
        tokio::spawn(sim.run(interval, offset));
    }
    Ok(Fleet {
        agents,
        counters,
        started,
    })
}

struct SimAgent {
    url: String,
    http: reqwest::Client,
    handle: Arc<AgentHandle>,
    registration: Registration,
    tasks: HashMap<String, SimTask>,
    behaviour: TaskBehaviour,
    counters: Arc<FleetCounters>,
    started: Instant,
    seed: u64,
    /// The generation of the list held (delta protocol).
    generation: Option<u64>,
    /// The scheduler accepted a report it can take deltas against.
    baseline: bool,
    /// Delta heartbeats since the last full one.
    since_full: u32,
}

impl SimAgent {
    async fn run(mut self, interval: Duration, offset: Duration) {
        tokio::time::sleep(offset).await;
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if self.handle.silent.load(Ordering::Relaxed) {
                continue;
            }
            // A real agent reports a task that started once it has stayed up for a second
            // (one that failed, at once), not at its next heartbeat.
            while self.heartbeat().await && !self.handle.silent.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    /// A cheap deterministic coin for `fail_rate` (xorshift).
    fn coin(&mut self) -> f64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        (self.seed % 1_000_000) as f64 / 1_000_000.0
    }

    /// One heartbeat; true when it started tasks whose state (running at once, or
    /// failed) the agent should report now.
    async fn heartbeat(&mut self) -> bool {
        let now = Instant::now();
        for task in self.tasks.values_mut() {
            if task.status.state == TaskState::Starting
                && now.duration_since(task.since) >= self.behaviour.start_delay
            {
                task.status.state = TaskState::Running;
                task.status.started_at = Some(infra::scheduler::clock::now_rfc3339());
            }
        }
        let delta = self.behaviour.delta_heartbeats
            && self.generation.is_some()
            && self.baseline
            && self.since_full < FULL_REPORT_EVERY;
        let body = Heartbeat {
            tasks: self
                .tasks
                .values()
                .filter(|t| !delta || t.sent != Some(t.status.state))
                .map(|t| t.status.clone())
                .collect(),
            busy_ports: Vec::new(),
            output: Vec::new(),
            volume_moves: Vec::new(),
            volumes: Vec::new(),
            generation: if self.behaviour.delta_heartbeats {
                self.generation
            } else {
                None
            },
            delta,
            partial: self.behaviour.delta_heartbeats,
        };
        let path = heartbeat_path(&self.handle.id);
        let sent = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await;
        self.counters.heartbeats.fetch_add(1, Ordering::Relaxed);
        let response = match sent {
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => {
                // The scheduler forgot us: register again, as the real agent does.
                let _ = self
                    .http
                    .post(format!("{}{REGISTER_PATH}", self.url))
                    .json(&self.registration)
                    .send()
                    .await;
                return false;
            }
            Ok(r) if r.status().is_success() => r,
            _ => {
                self.counters
                    .heartbeat_errors
                    .fetch_add(1, Ordering::Relaxed);
                return false;
            }
        };
        let Ok(assigned) = response.json::<AssignedList>().await else {
            self.counters
                .heartbeat_errors
                .fetch_add(1, Ordering::Relaxed);
            return false;
        };
        // What this heartbeat reported is now acknowledged.
        self.generation = assigned.generation;
        self.baseline = !assigned.full_report && assigned.generation.is_some();
        self.since_full = if delta { self.since_full + 1 } else { 0 };
        let mut newly_running = 0u64;
        for task in self.tasks.values_mut() {
            task.sent = Some(task.status.state);
            if task.status.state == TaskState::Running && !task.acked_running {
                task.acked_running = true;
                newly_running += 1;
            }
        }
        if newly_running > 0 {
            self.counters
                .running_acked
                .fetch_add(newly_running, Ordering::Relaxed);
            let ns = self.started.elapsed().as_nanos() as u64;
            self.counters.last_ack_ns.fetch_max(ns, Ordering::Relaxed);
        }
        // Terminal tasks were reported once: forget them. Unassigned ones are killed.
        if assigned.unchanged && self.behaviour.delta_heartbeats {
            self.tasks.retain(|_, t| !t.status.state.is_terminal());
            self.count_running();
            return false;
        }
        let mut specs: HashMap<String, Assigned> = assigned
            .tasks
            .into_iter()
            .map(|t| (t.task_id.clone(), t))
            .collect();
        let wanted: Vec<String> = match assigned.task_ids {
            Some(ids) => ids,
            None => specs.keys().cloned().collect(),
        };
        let wanted_set: std::collections::HashSet<&str> =
            wanted.iter().map(String::as_str).collect();
        self.tasks.retain(|_, t| !t.status.state.is_terminal());
        for (id, task) in self.tasks.iter_mut() {
            if !wanted_set.contains(id.as_str()) {
                task.status.state = TaskState::Killed;
            }
        }
        let mut report_now = false;
        for id in wanted {
            if self.tasks.contains_key(&id) {
                continue;
            }
            let Some(spec) = specs.remove(&id) else {
                // Named without a spec: ask for the whole list, as the real agent does.
                self.generation = None;
                continue;
            };
            let fails = self.behaviour.fail_rate > 0.0 && self.coin() < self.behaviour.fail_rate;
            let state = if fails {
                TaskState::Failed
            } else if self.behaviour.start_delay.is_zero() {
                TaskState::Running
            } else {
                TaskState::Starting
            };
            report_now |= state != TaskState::Starting;
            let status = TaskStatus {
                task_id: id.clone(),
                app_id: spec.app_id,
                state,
                host_ports: spec.host_ports,
                health: Vec::new(),
                started_at: (state == TaskState::Running)
                    .then(infra::scheduler::clock::now_rfc3339),
                exit_code: fails.then_some(1),
                message: fails.then(|| "simulated failure".to_string()),
                ip_addresses: Vec::new(),
            };
            self.tasks.insert(
                id,
                SimTask {
                    status,
                    sent: None,
                    since: now,
                    acked_running: false,
                },
            );
        }
        self.count_running();
        report_now
    }

    fn count_running(&self) {
        let running = self
            .tasks
            .values()
            .filter(|t| t.status.state == TaskState::Running)
            .count();
        self.handle.running.store(running, Ordering::Relaxed);
    }
}
