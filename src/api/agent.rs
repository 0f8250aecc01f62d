//! The scheduler <-> agent protocol. Level-triggered and pull-based: an agent registers
//! once, then heartbeats every couple of seconds with the status of every task it runs;
//! the answer is the full list of tasks the scheduler wants on that agent. The agent starts
//! what is missing and kills what is no longer wanted. Nothing is lost if a message is.
//!
//! Endpoints on the scheduler (JSON over HTTP):
//! - `POST /internal/v1/agents/register`  body [`Registration`] -> [`Registered`]
//! - `POST /internal/v1/agents/{agent_id}/heartbeat` body [`Heartbeat`] -> [`Assignments`]
//!   (404 when the scheduler does not know the agent: register again)

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const REGISTER_PATH: &str = "/internal/v1/agents/register";

pub fn heartbeat_path(agent_id: &str) -> String {
    format!("/internal/v1/agents/{agent_id}/heartbeat")
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    /// Stable across agent restarts (kept in the agent's data dir).
    pub agent_id: String,
    /// The name constraints match on (`hostname`), `--hostname`.
    pub hostname: String,
    /// The address tasks are reachable at (HOST env var, DNS answers).
    pub address: String,
    pub cpus: f64,
    pub mem: f64,
    pub disk: f64,
    /// Inclusive host-port range for `hostPort: 0` / `ports: [0]`.
    pub port_range: (u16, u16),
    /// `--attribute KEY=VALUE` (datacenter, rack, ...), for constraints.
    pub attributes: BTreeMap<String, String>,
    /// Whether a Docker engine is reachable, so Docker tasks can be placed here.
    pub docker: bool,
    pub version: String,
    /// This agent's volume server (`https://ADDRESS:PORT`), which other agents pull
    /// persistent volumes from when a task moves; None when it runs without TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Registered {
    pub agent_id: String,
    /// How often the agent should heartbeat.
    pub heartbeat_interval_ms: u64,
}

/// Task states, Mesos' names.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub enum TaskState {
    #[serde(rename = "TASK_STAGING")]
    Staging,
    #[serde(rename = "TASK_STARTING")]
    Starting,
    #[serde(rename = "TASK_RUNNING")]
    Running,
    #[serde(rename = "TASK_KILLING")]
    Killing,
    #[serde(rename = "TASK_FINISHED")]
    Finished,
    #[serde(rename = "TASK_FAILED")]
    Failed,
    #[serde(rename = "TASK_KILLED")]
    Killed,
    #[serde(rename = "TASK_LOST")]
    Lost,
}

impl TaskState {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Finished | TaskState::Failed | TaskState::Killed | TaskState::Lost
        )
    }
}

/// The result of the latest health check of one of a task's checks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    /// Index into the task spec's `health_checks`.
    pub index: usize,
    pub alive: bool,
    pub consecutive_failures: u32,
    /// RFC 3339 times, as Marathon shows them.
    pub first_success: Option<String>,
    pub last_success: Option<String>,
    pub last_failure: Option<String>,
    pub last_failure_cause: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    pub task_id: String,
    pub app_id: String,
    pub state: TaskState,
    /// Host ports actually bound, in the order of the spec's ports.
    pub host_ports: Vec<u16>,
    pub health: Vec<HealthReport>,
    /// RFC 3339.
    pub started_at: Option<String>,
    pub exit_code: Option<i32>,
    pub message: Option<String>,
    /// The task's own addresses (container network tasks), as the engine gave them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_addresses: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    /// Every task the agent knows of, terminal ones once (until assigned away).
    pub tasks: Vec<TaskStatus>,
    /// Ports of the agent's range that something other than its tasks listens on (a
    /// stray server on the host): placement leaves them out.
    #[serde(default)]
    pub busy_ports: Vec<u16>,
    /// Progress of the volume moves this agent receives.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_moves: Vec<crate::api::moves::MoveProgress>,
    /// The recent output of the tasks whose output changed since the last heartbeat the
    /// scheduler accepted (see `agent::output`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<TaskOutput>,
    /// The apps whose persistent volumes this agent holds (ids without the leading `/`):
    /// the scheduler answers with those of apps that no longer exist, to be deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// The `generation` of the last answer the agent applied (only from a scheduler whose
    /// answers carry one): when the agent's wanted tasks are still those, the scheduler
    /// answers `unchanged` without the list (see `scheduler::delta`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// `tasks` lists only the statuses that changed since the last heartbeat the scheduler
    /// accepted (and any unhealthy task): a task left out is as last reported, not lost.
    /// Sent only to a scheduler whose answers carry a `generation` (it understands this).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delta: bool,
    /// The agent applies partial answers: `taskIds` with only the specs of tasks new since
    /// the `generation` it sent (see `scheduler::delta`). Older agents leave it out and
    /// get every spec.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

/// The last lines a task wrote to its stdout and stderr, as its agent read them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskOutput {
    pub task_id: String,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Assignments {
    /// Every task the scheduler wants running on this agent. Anything else the agent runs
    /// is killed (after its grace period). Empty when `unchanged`; only the tasks new since
    /// the agent's generation when `task_ids` is set.
    #[serde(default)]
    pub tasks: Vec<TaskSpec>,
    /// A partial answer (to an agent that sent `partial`): the ids of every task wanted on
    /// the agent, in the order of a full answer. The agent keeps the specs it holds for
    /// these, takes `tasks` for the rest, and drops everything else. A spec it finds in
    /// neither makes it send no generation next time, which gets the whole list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_ids: Option<Vec<String>>,
    /// Persistent volumes this agent is to pull from another agent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_moves: Vec<crate::api::moves::VolumeMove>,
    /// Apps whose persistent volumes this agent is to delete: they moved away and the
    /// scheduler has durably recorded their new agent, or the app was destroyed. Sent
    /// while the agent still reports them; deleting is idempotent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_releases: Vec<String>,
    /// The generation of the agent's wanted tasks this answer reflects; set by schedulers
    /// that speak the delta protocol (see `scheduler::delta`). None: an older scheduler,
    /// to which the agent keeps sending full heartbeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// The agent's wanted tasks are those of the generation it sent: `tasks` is left out
    /// and the agent keeps the list it has.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unchanged: bool,
    /// The scheduler wants every task's status in the next heartbeat (it has no baseline
    /// for this agent's deltas: it just started or took over, or the agent came back).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full_report: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub container_port: u16,
    /// Chosen by the scheduler (never 0 here).
    pub host_port: u16,
    pub protocol: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub container_path: String,
    pub host_path: String,
    /// "RO" or "RW".
    pub mode: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DockerSpec {
    pub image: String,
    /// "BRIDGE", "HOST" or "NONE".
    pub network: String,
    pub port_mappings: Vec<PortMapping>,
    pub force_pull_image: bool,
    /// `docker.parameters` as key/value pairs (passed where infra knows them).
    pub parameters: Vec<(String, String)>,
    pub volumes: Vec<Volume>,
    pub privileged: bool,
    /// The container network the task joins (network "USER"): a Docker network of that name
    /// on every compute node (docs/networks.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_name: Option<String>,
    /// The DNS zone whose `service.<zone>` is the task's search domain (default `infra`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_domain: Option<String>,
}

impl DockerSpec {
    /// The DNS zone container network tasks search in.
    pub fn dns_domain(&self) -> String {
        self.dns_domain
            .clone()
            .unwrap_or_else(|| "infra".to_string())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub enum HealthProtocol {
    Http,
    Https,
    Tcp,
    Command,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckSpec {
    pub protocol: HealthProtocol,
    /// HTTP path.
    pub path: Option<String>,
    /// The host port to check (resolved from portIndex / port by the scheduler).
    pub port: Option<u16>,
    /// COMMAND checks: a shell command.
    pub command: Option<String>,
    pub grace_period_seconds: u64,
    pub interval_seconds: u64,
    pub timeout_seconds: u64,
    pub max_consecutive_failures: u32,
    pub ignore_http1xx: bool,
}

/// One task the scheduler wants on the agent. Everything the agent needs to run it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskSpec {
    /// Marathon-style: `<app id with / as _>.<uuid>`; Docker container names carry it.
    pub task_id: String,
    pub app_id: String,
    pub app_version: String,
    /// Shell command (`cmd`), run with `/bin/sh -c`.
    pub cmd: Option<String>,
    /// `args`: exec'd directly (or as the Docker command) when there is no `cmd`.
    pub args: Option<Vec<String>>,
    /// The app's env plus PORT0..n, PORT, PORT_<NAME>, HOST, MARATHON_APP_ID,
    /// MARATHON_APP_VERSION, MESOS_TASK_ID: computed by the scheduler.
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub user: Option<String>,
    pub cpus: f64,
    pub mem: f64,
    pub disk: f64,
    /// Host ports assigned to the task, in order.
    pub host_ports: Vec<u16>,
    pub docker: Option<DockerSpec>,
    pub health_checks: Vec<HealthCheckSpec>,
    pub kill_grace_period_seconds: u64,
    /// Local persistent volumes: the agent keeps their data across task restarts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub persistent_volumes: Vec<crate::api::volumes::PersistentVolume>,
}
