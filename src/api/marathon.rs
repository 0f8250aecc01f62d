//! Marathon's v2 JSON shapes (apps, tasks, deployments, queue, events, errors), as the
//! scheduler serves them and the client reads them. Every struct keeps the fields it does
//! not name in `extra`, so a definition read from the API and written back loses nothing.
//!
//! Defaults are Marathon's (1.5+): cpus 1, mem 128, disk 0, instances 1, backoffSeconds 1,
//! backoffFactor 1.15, maxLaunchDelaySeconds 300 (infra keeps the older, shorter cap so a
//! crash-looping task is retried at least every five minutes), upgradeStrategy 1/1,
//! killSelection YOUNGEST_FIRST, health checks 300/60/20/3.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const DEFAULT_CPUS: f64 = 1.0;
pub const DEFAULT_MEM: f64 = 128.0;
pub const DEFAULT_DISK: f64 = 0.0;
pub const DEFAULT_INSTANCES: u32 = 1;
pub const DEFAULT_BACKOFF_SECONDS: f64 = 1.0;
pub const DEFAULT_BACKOFF_FACTOR: f64 = 1.15;
pub const DEFAULT_MAX_LAUNCH_DELAY_SECONDS: f64 = 300.0;
pub const DEFAULT_TASK_KILL_GRACE_PERIOD_SECONDS: u64 = 3;
pub const DEFAULT_KILL_SELECTION: &str = "YOUNGEST_FIRST";

/// The header Marathon sets on answers to writes that start a deployment.
pub const DEPLOYMENT_ID_HEADER: &str = "Marathon-Deployment-Id";

/// Marathon's task id for an app: `/group/app` -> `group_app.<uuid>`.
pub fn new_task_id(app_id: &str) -> String {
    format!("{}.{}", task_id_prefix(app_id), uuid::Uuid::new_v4())
}

/// The part of a task id before the dot: the app id without its leading `/`, `/` -> `_`.
pub fn task_id_prefix(app_id: &str) -> String {
    app_id.trim_start_matches('/').replace('/', "_")
}

/// Makes an app id absolute: `nodeapp` -> `/nodeapp`, `/a/b/` -> `/a/b`.
pub fn canonical_app_id(id: &str) -> String {
    let trimmed = id.trim_matches('/');
    format!("/{trimmed}")
}

fn default_cpus() -> f64 {
    DEFAULT_CPUS
}
fn default_mem() -> f64 {
    DEFAULT_MEM
}
fn default_instances() -> u32 {
    DEFAULT_INSTANCES
}
fn default_backoff_seconds() -> f64 {
    DEFAULT_BACKOFF_SECONDS
}
fn default_backoff_factor() -> f64 {
    DEFAULT_BACKOFF_FACTOR
}
fn default_max_launch_delay() -> f64 {
    DEFAULT_MAX_LAUNCH_DELAY_SECONDS
}
fn default_kill_selection() -> String {
    DEFAULT_KILL_SELECTION.to_string()
}
fn default_one() -> f64 {
    1.0
}
fn default_protocol() -> String {
    "tcp".to_string()
}

/// An app definition as `GET /v2/apps/{id}` returns it (with the `embed`ded counters and
/// tasks when asked for). Unknown fields are kept in `extra`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct App {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Values are strings, or `{"secret": "..."}` references.
    #[serde(default)]
    pub env: Map<String, Value>,
    #[serde(default = "default_instances")]
    pub instances: u32,
    #[serde(default = "default_cpus")]
    pub cpus: f64,
    #[serde(default = "default_mem")]
    pub mem: f64,
    #[serde(default)]
    pub disk: f64,
    /// `[field, operator, value?]`.
    #[serde(default)]
    pub constraints: Vec<Vec<String>>,
    #[serde(default)]
    pub port_definitions: Vec<PortDefinition>,
    #[serde(default)]
    pub require_ports: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// 1.5+ networking: `[{"mode": "host" | "container/bridge" | "container", "name": ...}]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<Network>,
    #[serde(default)]
    pub health_checks: Vec<HealthCheck>,
    #[serde(default)]
    pub dependencies: Vec<String>,
    #[serde(default)]
    pub upgrade_strategy: UpgradeStrategy,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default = "default_backoff_seconds")]
    pub backoff_seconds: f64,
    #[serde(default = "default_backoff_factor")]
    pub backoff_factor: f64,
    #[serde(default = "default_max_launch_delay")]
    pub max_launch_delay_seconds: f64,
    #[serde(default = "default_kill_selection")]
    pub kill_selection: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_kill_grace_period_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_strategy: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_info: Option<VersionInfo>,
    // Counters and embeds (present in API answers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks_staged: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks_running: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks_healthy: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks_unhealthy: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployments: Option<Vec<DeploymentRef>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<Task>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_task_failure: Option<TaskFailure>,
    /// Every field infra does not name (fetch, uris, secrets, readinessChecks, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PortDefinition {
    #[serde(default)]
    pub port: u32,
    #[serde(default = "default_protocol")]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// "DOCKER" or "MESOS".
    #[serde(rename = "type", default = "default_container_type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<Docker>,
    /// 1.5+ location of the port mappings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_mappings: Option<Vec<PortMapping>>,
    #[serde(default)]
    pub volumes: Vec<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_container_type() -> String {
    "DOCKER".to_string()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Docker {
    #[serde(default)]
    pub image: String,
    /// Pre-1.5: "BRIDGE", "HOST", "USER", "NONE".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Pre-1.5 location of the port mappings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_mappings: Option<Vec<PortMapping>>,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub force_pull_image: bool,
    #[serde(default)]
    pub parameters: Vec<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    #[serde(default)]
    pub container_port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_port: Option<u32>,
    #[serde(default = "default_protocol")]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    /// "host", "container/bridge" or "container".
    #[serde(default = "default_network_mode")]
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_network_mode() -> String {
    "host".to_string()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// HTTP, HTTPS, TCP, COMMAND, MESOS_HTTP, MESOS_HTTPS, MESOS_TCP.
    #[serde(default = "default_hc_protocol")]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// COMMAND checks: `{"value": "curl -f ..."}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Value>,
    #[serde(default = "default_grace")]
    pub grace_period_seconds: u64,
    #[serde(default = "default_interval")]
    pub interval_seconds: u64,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    #[serde(default = "default_max_failures")]
    pub max_consecutive_failures: u32,
    #[serde(default)]
    pub ignore_http1xx: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

pub const DEFAULT_HC_GRACE_SECONDS: u64 = 300;
pub const DEFAULT_HC_INTERVAL_SECONDS: u64 = 60;
pub const DEFAULT_HC_TIMEOUT_SECONDS: u64 = 20;
pub const DEFAULT_HC_MAX_FAILURES: u32 = 3;

fn default_hc_protocol() -> String {
    "HTTP".to_string()
}
fn default_grace() -> u64 {
    DEFAULT_HC_GRACE_SECONDS
}
fn default_interval() -> u64 {
    DEFAULT_HC_INTERVAL_SECONDS
}
fn default_timeout() -> u64 {
    DEFAULT_HC_TIMEOUT_SECONDS
}
fn default_max_failures() -> u32 {
    DEFAULT_HC_MAX_FAILURES
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStrategy {
    #[serde(default = "default_one")]
    pub minimum_health_capacity: f64,
    #[serde(default = "default_one")]
    pub maximum_over_capacity: f64,
}

impl Default for UpgradeStrategy {
    fn default() -> Self {
        UpgradeStrategy {
            minimum_health_capacity: 1.0,
            maximum_over_capacity: 1.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub last_scaling_at: String,
    pub last_config_change_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeploymentRef {
    pub id: String,
}

/// `lastTaskFailure` in an app.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskFailure {
    pub app_id: String,
    pub host: String,
    pub message: String,
    pub state: String,
    pub task_id: String,
    pub timestamp: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slave_id: Option<String>,
}

/// One task, as `/v2/tasks` and `/v2/apps/{id}/tasks` show it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: String,
    pub app_id: String,
    pub host: String,
    #[serde(default)]
    pub ports: Vec<u16>,
    #[serde(default)]
    pub service_ports: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slave_id: Option<String>,
    /// TASK_STAGING, TASK_RUNNING, ...
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default)]
    pub version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_check_results: Vec<HealthCheckResult>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_addresses: Vec<IpAddress>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IpAddress {
    pub ip_address: String,
    pub protocol: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckResult {
    pub alive: bool,
    pub consecutive_failures: u32,
    #[serde(default)]
    pub first_success: Option<String>,
    #[serde(default)]
    pub last_failure: Option<String>,
    #[serde(default)]
    pub last_success: Option<String>,
    #[serde(default)]
    pub last_failure_cause: Option<String>,
    pub task_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AppList {
    pub apps: Vec<App>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AppEnvelope {
    pub app: App,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskList {
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskEnvelope {
    pub task: Task,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VersionList {
    pub versions: Vec<String>,
}

/// The answer to writes that start a deployment (PUT/DELETE app, restart, scale=true kills).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentResult {
    pub deployment_id: String,
    pub version: String,
}

/// `POST /v2/tasks/delete` body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskIds {
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentAction {
    /// StartApplication, ScaleApplication, RestartApplication, StopApplication.
    pub action: String,
    pub app: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeploymentStep {
    pub actions: Vec<DeploymentAction>,
}

/// One entry of `GET /v2/deployments`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: String,
    pub version: String,
    pub affected_apps: Vec<String>,
    #[serde(default)]
    pub affected_pods: Vec<String>,
    pub steps: Vec<DeploymentStep>,
    pub current_actions: Vec<DeploymentAction>,
    /// 1-based, as Marathon counts.
    pub current_step: usize,
    pub total_steps: usize,
}

/// `GET /v2/queue`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Queue {
    pub queue: Vec<QueueItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QueueItem {
    pub app: App,
    /// Instances still to launch.
    pub count: u32,
    pub delay: QueueDelay,
    pub since: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_offers_summary: Option<Value>,
    /// infra's addition: why the instances are not placed, in words
    /// (e.g. "no agent with 4 free cpus").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QueueDelay {
    pub time_left_seconds: u64,
    pub overdue: bool,
}

/// Marathon's error body: `{"message": ..., "details": [{"path": "/cpus", "errors": [...]}]}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorDetail>,
    /// For 409 "locked by deployments" answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployments: Option<Vec<DeploymentRef>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorDetail {
    pub path: String,
    pub errors: Vec<String>,
}

/// One event of `GET /v2/events`: its `eventType`, `timestamp` and the event's own fields.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub event_type: String,
    pub timestamp: String,
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// The event types the scheduler emits.
pub mod event_types {
    pub const EVENT_STREAM_ATTACHED: &str = "event_stream_attached";
    pub const API_POST: &str = "api_post_event";
    pub const STATUS_UPDATE: &str = "status_update_event";
    pub const INSTANCE_CHANGED: &str = "instance_changed_event";
    pub const HEALTH_STATUS_CHANGED: &str = "health_status_changed_event";
    pub const FAILED_HEALTH_CHECK: &str = "failed_health_check_event";
    pub const DEPLOYMENT_INFO: &str = "deployment_info";
    pub const DEPLOYMENT_STEP_SUCCESS: &str = "deployment_step_success";
    pub const DEPLOYMENT_SUCCESS: &str = "deployment_success";
    pub const DEPLOYMENT_FAILED: &str = "deployment_failed";
    pub const APP_TERMINATED: &str = "app_terminated_event";
}

/// `GET /v2/info` (the parts infra fills in).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Info {
    pub name: String,
    pub version: String,
    pub elected: bool,
    pub leader: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_follow_marathon() {
        assert_eq!(task_id_prefix("/group/app"), "group_app");
        let id = new_task_id("/a/b");
        assert!(id.starts_with("a_b."));
        assert_eq!(id.len(), "a_b.".len() + 36);
    }

    #[test]
    fn app_defaults_are_marathons() {
        let app: App = serde_json::from_str(r#"{"id":"/x","cmd":"sleep 1","fetch":[1]}"#).unwrap();
        assert_eq!(app.cpus, 1.0);
        assert_eq!(app.mem, 128.0);
        assert_eq!(app.instances, 1);
        assert_eq!(app.upgrade_strategy, UpgradeStrategy::default());
        assert_eq!(app.kill_selection, "YOUNGEST_FIRST");
        assert_eq!(app.extra.get("fetch"), Some(&serde_json::json!([1])));
        let back = serde_json::to_value(&app).unwrap();
        assert_eq!(back["fetch"], serde_json::json!([1]));
    }

    #[test]
    fn canonical_ids_are_absolute() {
        assert_eq!(canonical_app_id("nodeapp"), "/nodeapp");
        assert_eq!(canonical_app_id("/a/b/"), "/a/b");
    }
}
