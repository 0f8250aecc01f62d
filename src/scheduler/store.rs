//! The scheduler's durable state behind a trait: apps (with every version), tasks,
//! deployments, agents and counters. Every mutation is a batch of [`Change`]s applied
//! atomically; the same changes are then applied to the in-memory state, so memory never
//! holds what the store has not. redb is the single-node implementation (`redb_store`);
//! etcd (`etcd_store`) is the shared one of several control nodes, where every write is
//! fenced by the writer's leadership.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api::agent::{HealthReport, Registration, TaskSpec, TaskState};
pub use crate::scheduler::tokens::TokenRecord;

/// An app's current definition (normalized JSON as the API shows it) and its versions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AppRecord {
    pub id: String,
    pub definition: Map<String, Value>,
    /// `version` (changes on every write).
    pub version: String,
    /// `versionInfo.lastConfigChangeAt`: tasks launched for an older one are replaced.
    pub config_version: String,
    /// The last task failure, for `lastTaskFailure`.
    #[serde(default)]
    pub last_task_failure: Option<Value>,
    /// Agents holding the app's persistent volumes, one per instance (see `residency`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resident_agents: Vec<String>,
}

/// One task the scheduler launched.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskRecord {
    pub id: String,
    pub app_id: String,
    pub agent_id: String,
    pub host: String,
    /// The app version it was launched for.
    pub version: String,
    pub config_version: String,
    pub service_ports: Vec<u32>,
    pub staged_at: String,
    pub started_at: Option<String>,
    pub state: TaskState,
    pub health: Vec<HealthReport>,
    /// The scheduler asked the agent to kill it (it is no longer assigned).
    pub killing: bool,
    /// The agent has reported it at least once.
    pub reported: bool,
    /// What the agent is sent.
    pub spec: TaskSpec,
    /// The task's own addresses on its container network, as its agent reported them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_addresses: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentRecord {
    pub registration: Registration,
    pub lost: bool,
}

/// One action of a deployment step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ActionRecord {
    pub action: String,
    pub app: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeploymentRecord {
    pub id: String,
    pub version: String,
    pub steps: Vec<Vec<ActionRecord>>,
    /// 0-based index of the step in progress.
    pub current_step: usize,
    /// Apps of the current step that reached their target.
    pub done: Vec<String>,
    /// Each affected app's definition before the deployment (None: it did not exist), for
    /// rollback.
    pub original: BTreeMap<String, Option<Map<String, Value>>>,
    /// Each affected app's definition the deployment goes to (None: removed).
    pub target: BTreeMap<String, Option<Map<String, Value>>>,
}

impl DeploymentRecord {
    pub fn affected_apps(&self) -> Vec<String> {
        let mut apps: Vec<String> = self.steps.iter().flatten().map(|a| a.app.clone()).collect();
        apps.dedup();
        apps
    }

    /// The step index of an app in this deployment.
    pub fn step_of(&self, app_id: &str) -> Option<usize> {
        self.steps
            .iter()
            .position(|step| step.iter().any(|a| a.app == app_id))
    }
}

/// One durable mutation.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    PutApp(AppRecord),
    DeleteApp(String),
    PutTask(Box<TaskRecord>),
    DeleteTask(String),
    PutDeployment(DeploymentRecord),
    DeleteDeployment(String),
    PutAgent(AgentRecord),
    SetCounter(String, u64),
    /// An API token (its hash; see [`crate::scheduler::tokens`]).
    PutToken(TokenRecord),
    DeleteToken(String),
}

/// Everything the scheduler resumes from.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The store's revision the snapshot was read at (etcd's; 0 for redb). Changes a watch
    /// reports at or below it are already in the snapshot.
    pub revision: i64,
    pub apps: Vec<AppRecord>,
    pub tasks: Vec<TaskRecord>,
    pub deployments: Vec<DeploymentRecord>,
    pub agents: Vec<AgentRecord>,
    pub counters: BTreeMap<String, u64>,
    pub tokens: Vec<TokenRecord>,
}

/// Why a write did not reach the store; the API answers both with 503 so that clients retry
/// (on another control node, or once an election is over).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// This scheduler does not hold leadership (any more): the write was refused, by this
    /// process or by etcd's comparison of the election key.
    #[error("this scheduler is not the leader (any more); the write was not committed")]
    NotLeader,
    /// The store cannot be reached or has no quorum.
    #[error("the state store is unavailable: {0}")]
    Unavailable(String),
}

/// The durable store. `apply` is atomic and durable when it returns; no lock of the
/// scheduler's state is held while it runs, so reads never wait for a round trip.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    async fn load(&self) -> anyhow::Result<Snapshot>;
    /// Commits the changes, and the events that go with them (followers re-publish them on
    /// their own event streams). Returns the store's revision after the commit.
    async fn apply(&self, changes: &[Change], events: &[Value]) -> anyhow::Result<i64>;
    /// Versions of an app, newest first (kept after the app is deleted until re-created).
    async fn app_versions(&self, app_id: &str) -> anyhow::Result<Vec<String>>;
    async fn app_version(
        &self,
        app_id: &str,
        version: &str,
    ) -> anyhow::Result<Option<Map<String, Value>>>;
}
