//! The [`Store`] on etcd, shared by the control nodes of one datacenter. Keys live under
//! `/infra/<datacenter>/`:
//!
//! - `data/{apps,tasks,deployments,agents,counters}/<id>`: the state, JSON values (counters
//!   as decimal text). One range read at one revision is a consistent snapshot.
//! - `versions/<app id>\0<version>`: every definition an app had (`/v2/apps/x/versions`).
//! - `events`: the Marathon events of the last commit, overwritten by every commit; a
//!   follower's watch sees every revision of it and re-publishes the events.
//! - `leader/<lease>`: the election's candidates (etcd's election API); the oldest is the
//!   leader and its value is the leader's advertised URL.
//!
//! Every write is fenced: a transaction that commits only while the writer's election key
//! still has the create revision it had when it won, so a deposed or partitioned leader's
//! write fails inside etcd even if that leader does not know yet that it lost.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, Identity,
    TlsOptions, Txn, TxnOp, WatchOptions, WatchStream,
};
use serde_json::{Map, Value};

use crate::scheduler::store::{
    AgentRecord, AppRecord, Change, DeploymentRecord, Snapshot, Store, StoreError, TaskRecord,
};

/// etcd refuses a transaction of more than 128 operations (`--max-txn-ops`); a larger batch
/// is committed as several fenced transactions in order.
const MAX_TXN_OPS: usize = 120;
/// How long one etcd request may take before the store counts as unavailable (etcd itself
/// gives up on a write without quorum after about 7 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How to reach etcd (`infra scheduler --etcd ...`).
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    pub endpoints: Vec<String>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// `/infra/<datacenter>/`.
    pub prefix: String,
}

/// The election key this scheduler holds while it leads: writes are compared against it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fence {
    pub key: Vec<u8>,
    pub create_revision: i64,
}

/// One thing a watch of the prefix reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Feed {
    /// A state change committed at `revision`.
    Data { revision: i64, change: Change },
    /// The events of the commit at `revision`.
    Events { revision: i64, events: Vec<Value> },
    /// An election candidate appeared (`url` set) or left (`None`).
    Candidate {
        key: Vec<u8>,
        create_revision: i64,
        url: Option<String>,
    },
}

/// A candidate in the election: the one with the lowest create revision leads.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub create_revision: i64,
    pub url: String,
}

pub struct EtcdStore {
    client: Client,
    prefix: String,
    fence: Mutex<Option<Fence>>,
}

fn unavailable(what: &str, err: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(StoreError::Unavailable(format!("etcd {what}: {err}")))
}

async fn timed<T>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(unavailable(what, err)),
        Err(_) => Err(unavailable(
            what,
            format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()),
        )),
    }
}

impl EtcdStore {
    /// Connects (lazily: etcd need not be up yet; every request retries its endpoints).
    pub async fn connect(config: &EtcdConfig) -> anyhow::Result<Arc<EtcdStore>> {
        let client = connect_client(config).await?;
        Ok(Arc::new(EtcdStore {
            client,
            prefix: config.prefix.clone(),
            fence: Mutex::new(None),
        }))
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The election's name (its candidates' keys are `<name>/<lease>`).
    pub fn election_name(&self) -> String {
        format!("{}leader", self.prefix)
    }

    fn data_key(&self, kind: &str, id: &str) -> String {
        format!("{}data/{kind}/{id}", self.prefix)
    }

    fn version_key(&self, app_id: &str, version: &str) -> String {
        format!("{}versions/{app_id}\u{0}{version}", self.prefix)
    }

    fn events_key(&self) -> String {
        format!("{}events", self.prefix)
    }

    /// Arms (or, with None, disarms) fencing: writes commit only while this key exists
    /// with this create revision.
    pub fn set_fence(&self, fence: Option<Fence>) {
        *self.fence.lock().unwrap_or_else(|e| e.into_inner()) = fence;
    }

    fn fence(&self) -> Option<Fence> {
        self.fence.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The state and the election's candidates, read at one revision.
    pub async fn load_all(&self) -> anyhow::Result<(Snapshot, BTreeMap<Vec<u8>, Candidate>)> {
        let mut client = self.client.clone();
        let data_prefix = format!("{}data/", self.prefix);
        let response = timed(
            "read",
            client.get(data_prefix.as_str(), Some(GetOptions::new().with_prefix())),
        )
        .await?;
        let revision = response.header().map(|h| h.revision()).unwrap_or(0);
        let mut snapshot = Snapshot {
            revision,
            ..Snapshot::default()
        };
        for kv in response.kvs() {
            let key = String::from_utf8_lossy(kv.key()).to_string();
            let change = self
                .decode(&key, Some(kv.value()))?
                .with_context(|| format!("etcd key {key} is not part of the state"))?;
            match change {
                Change::PutApp(app) => snapshot.apps.push(app),
                Change::PutTask(task) => snapshot.tasks.push(*task),
                Change::PutDeployment(d) => snapshot.deployments.push(d),
                Change::PutAgent(a) => snapshot.agents.push(a),
                Change::SetCounter(name, value) => {
                    snapshot.counters.insert(name, value);
                }
                _ => {}
            }
        }
        let candidates_prefix = format!("{}/", self.election_name());
        let response = timed(
            "read",
            client.get(
                candidates_prefix.as_str(),
                Some(GetOptions::new().with_prefix().with_revision(revision)),
            ),
        )
        .await?;
        let candidates = response
            .kvs()
            .iter()
            .map(|kv| {
                (
                    kv.key().to_vec(),
                    Candidate {
                        create_revision: kv.create_revision(),
                        url: String::from_utf8_lossy(kv.value()).to_string(),
                    },
                )
            })
            .collect();
        Ok((snapshot, candidates))
    }

    /// Turns a key (and its value; None for a deletion) under `data/` into a change.
    fn decode(&self, key: &str, value: Option<&[u8]>) -> anyhow::Result<Option<Change>> {
        let Some(rest) = key
            .strip_prefix(&self.prefix)
            .and_then(|k| k.strip_prefix("data/"))
        else {
            return Ok(None);
        };
        let Some((kind, id)) = rest.split_once('/') else {
            return Ok(None);
        };
        let id = id.to_string();
        let json = |v: &[u8]| -> anyhow::Result<Value> {
            serde_json::from_slice(v).with_context(|| format!("etcd key {key}: corrupt record"))
        };
        let change = match (kind, value) {
            ("apps", Some(v)) => Change::PutApp(serde_json::from_value::<AppRecord>(json(v)?)?),
            ("apps", None) => Change::DeleteApp(id),
            ("tasks", Some(v)) => {
                Change::PutTask(Box::new(serde_json::from_value::<TaskRecord>(json(v)?)?))
            }
            ("tasks", None) => Change::DeleteTask(id),
            ("deployments", Some(v)) => {
                Change::PutDeployment(serde_json::from_value::<DeploymentRecord>(json(v)?)?)
            }
            ("deployments", None) => Change::DeleteDeployment(id),
            ("agents", Some(v)) => {
                Change::PutAgent(serde_json::from_value::<AgentRecord>(json(v)?)?)
            }
            ("counters", Some(v)) => {
                let text = String::from_utf8_lossy(v);
                let value = text
                    .trim()
                    .parse()
                    .with_context(|| format!("etcd key {key}: not a counter: {text}"))?;
                Change::SetCounter(id, value)
            }
            _ => return Ok(None),
        };
        Ok(Some(change))
    }

    fn ops(&self, change: &Change) -> anyhow::Result<Vec<TxnOp>> {
        let put = |key: String, value: Vec<u8>| TxnOp::put(key, value, None);
        let delete = |key: String| TxnOp::delete(key, None);
        Ok(match change {
            Change::PutApp(app) => vec![
                put(self.data_key("apps", &app.id), serde_json::to_vec(app)?),
                put(
                    self.version_key(&app.id, &app.version),
                    serde_json::to_vec(&app.definition)?,
                ),
            ],
            Change::DeleteApp(id) => vec![delete(self.data_key("apps", id))],
            Change::PutTask(task) => {
                vec![put(
                    self.data_key("tasks", &task.id),
                    serde_json::to_vec(task)?,
                )]
            }
            Change::DeleteTask(id) => vec![delete(self.data_key("tasks", id))],
            Change::PutDeployment(d) => {
                vec![put(
                    self.data_key("deployments", &d.id),
                    serde_json::to_vec(d)?,
                )]
            }
            Change::DeleteDeployment(id) => vec![delete(self.data_key("deployments", id))],
            Change::PutAgent(a) => vec![put(
                self.data_key("agents", &a.registration.agent_id),
                serde_json::to_vec(a)?,
            )],
            Change::SetCounter(name, value) => vec![put(
                self.data_key("counters", name),
                value.to_string().into_bytes(),
            )],
        })
    }

    /// Watches the prefix from `revision` (inclusive).
    pub async fn watch(&self, revision: i64) -> anyhow::Result<WatchStream> {
        let mut client = self.client.clone();
        timed(
            "watch",
            client.watch(
                self.prefix.as_str(),
                Some(
                    WatchOptions::new()
                        .with_prefix()
                        .with_start_revision(revision),
                ),
            ),
        )
        .await
    }

    /// What one watch event means for the scheduler (None: a key of no interest).
    pub fn feed(&self, event: &etcd_client::Event) -> anyhow::Result<Option<Feed>> {
        let Some(kv) = event.kv() else {
            return Ok(None);
        };
        let key = String::from_utf8_lossy(kv.key()).to_string();
        let deleted = event.event_type() == EventType::Delete;
        let revision = kv.mod_revision();
        let candidates = format!("{}/", self.election_name());
        if key.starts_with(&candidates) {
            return Ok(Some(Feed::Candidate {
                key: kv.key().to_vec(),
                create_revision: kv.create_revision(),
                url: (!deleted).then(|| String::from_utf8_lossy(kv.value()).to_string()),
            }));
        }
        if key == self.events_key() {
            if deleted {
                return Ok(None);
            }
            let events: Vec<Value> = serde_json::from_slice(kv.value())
                .with_context(|| format!("etcd key {key}: corrupt events"))?;
            return Ok(Some(Feed::Events { revision, events }));
        }
        let value = (!deleted).then(|| kv.value());
        Ok(self
            .decode(&key, value)?
            .map(|change| Feed::Data { revision, change }))
    }
}

async fn connect_client(config: &EtcdConfig) -> anyhow::Result<Client> {
    if config.endpoints.is_empty() {
        bail!("--etcd needs at least one endpoint URL");
    }
    let mut options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
        .with_keep_alive_while_idle(true)
        // A member cut off from its cluster's leader fails our watches and requests at once,
        // so they move to another member instead of hanging.
        .with_require_leader(true);
    let read =
        |path: &PathBuf| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    if config.ca.is_some() || config.cert.is_some() {
        let mut tls = TlsOptions::new();
        if let Some(ca) = &config.ca {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        match (&config.cert, &config.key) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            (None, None) => {}
            _ => bail!("--etcd-cert and --etcd-key go together"),
        }
        options = options.with_tls(tls);
    }
    Client::connect(&config.endpoints, Some(options))
        .await
        .with_context(|| format!("connecting to etcd at {}", config.endpoints.join(",")))
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn load(&self) -> anyhow::Result<Snapshot> {
        Ok(self.load_all().await?.0)
    }

    async fn apply(&self, changes: &[Change], events: &[Value]) -> anyhow::Result<i64> {
        if changes.is_empty() && events.is_empty() {
            return Ok(0);
        }
        let fence = self
            .fence()
            .ok_or_else(|| anyhow::Error::new(StoreError::NotLeader))?;
        let mut ops = Vec::new();
        for change in changes {
            ops.extend(self.ops(change)?);
        }
        if !events.is_empty() {
            ops.push(TxnOp::put(
                self.events_key(),
                serde_json::to_vec(events)?,
                None,
            ));
        }
        let mut client = self.client.clone();
        let mut revision = 0;
        for chunk in ops.chunks(MAX_TXN_OPS) {
            let txn = Txn::new()
                .when([Compare::create_revision(
                    fence.key.clone(),
                    CompareOp::Equal,
                    fence.create_revision,
                )])
                .and_then(chunk.to_vec());
            let response = timed("write", client.txn(txn)).await?;
            if !response.succeeded() {
                return Err(anyhow::Error::new(StoreError::NotLeader));
            }
            revision = response.header().map(|h| h.revision()).unwrap_or(revision);
        }
        Ok(revision)
    }

    async fn app_versions(&self, app_id: &str) -> anyhow::Result<Vec<String>> {
        let mut client = self.client.clone();
        let prefix = self.version_key(app_id, "");
        let response = timed(
            "read",
            client.get(
                prefix.as_str(),
                Some(GetOptions::new().with_prefix().with_keys_only()),
            ),
        )
        .await?;
        let mut out: Vec<String> = response
            .kvs()
            .iter()
            .filter_map(|kv| {
                let key = String::from_utf8_lossy(kv.key()).to_string();
                key.strip_prefix(&prefix).map(str::to_string)
            })
            .collect();
        out.sort();
        out.reverse();
        Ok(out)
    }

    async fn app_version(
        &self,
        app_id: &str,
        version: &str,
    ) -> anyhow::Result<Option<Map<String, Value>>> {
        let mut client = self.client.clone();
        let key = self.version_key(app_id, version);
        let response = timed("read", client.get(key.as_str(), None)).await?;
        match response.kvs().first() {
            Some(kv) => Ok(Some(
                serde_json::from_slice(kv.value())
                    .with_context(|| format!("etcd key {key}: corrupt version"))?,
            )),
            None => Ok(None),
        }
    }
}
