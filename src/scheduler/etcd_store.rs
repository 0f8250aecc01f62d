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
//! - `commit`: rewritten by every commit of the leader (its value names the writer).
//!
//! Every write is fenced: a transaction that commits only while the writer's election key
//! still has the create revision it had when it won, so a deposed or partitioned leader's
//! write fails inside etcd even if that leader does not know yet that it lost; and only
//! while `commit` is where the writer's previous commit left it, so a write of its own that
//! was retried on another member (its first member stopped answering) can never land late,
//! after newer ones.
//!
//! Every request goes to one member at a time and moves on to the next when that member
//! fails or does not answer in time: a dead or frozen member costs a request one attempt,
//! never the leadership.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, Identity,
    PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse, WatchOptions, WatchStream,
};
use serde_json::{Map, Value};

use crate::scheduler::store::{
    AgentRecord, AppRecord, Change, DeploymentRecord, Snapshot, Store, StoreError, TaskRecord,
    TokenRecord,
};

/// etcd refuses a transaction of more than 128 operations (`--max-txn-ops`); a larger batch
/// is committed as several fenced transactions in order.
const MAX_TXN_OPS: usize = 120;
/// How long one member may take to answer one request before the next member is asked.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long one request may keep going around the cluster. When the member that died was
/// also etcd's raft leader, the others answer "no leader" or nothing until their election
/// ends (an election timeout, randomised up to twice its value, plus the vote): one pass
/// around three members (about 3 s) can end inside that window. Long enough to outlast it,
/// short enough that a lost quorum still answers 503 within seconds.
const REQUEST_BUDGET: Duration = Duration::from_secs(6);
/// The pause between two passes around the cluster, when every member refused.
const PASS_PAUSE: Duration = Duration::from_millis(200);

/// Keys per page of a range read.
const PAGE: i64 = 1000;

/// The first key after every key that starts with `prefix` (etcd's range end for a prefix).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

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

/// The fence and where this leader's last commit left the `commit` key.
#[derive(Debug, Clone)]
struct Armed {
    fence: Fence,
    last_commit: i64,
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

/// One etcd member: its URL and a client of that member alone.
struct Member {
    url: String,
    client: Client,
}

pub struct EtcdStore {
    members: Vec<Member>,
    /// The member requests go to until it fails.
    current: AtomicUsize,
    prefix: String,
    armed: Mutex<Option<Armed>>,
}

fn unavailable(what: &str, err: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(StoreError::Unavailable(format!("etcd {what}: {err}")))
}

impl EtcdStore {
    /// One fenced transaction; returns its revision.
    async fn commit_chunk(&self, chunk: &[TxnOp]) -> anyhow::Result<i64> {
        let armed = self
            .armed()
            .ok_or_else(|| anyhow::Error::new(StoreError::NotLeader))?;
        let commit_key = self.commit_key();
        // Names this very transaction: when its answer is lost and a retry is refused, the
        // commit key tells whether it landed.
        let stamp = format!(
            "{}#{}",
            String::from_utf8_lossy(&armed.fence.key),
            uuid::Uuid::new_v4()
        );
        let mut ops = chunk.to_vec();
        ops.push(TxnOp::put(commit_key.clone(), stamp.clone(), None));
        let txn = Txn::new()
            .when([
                Compare::create_revision(
                    armed.fence.key.clone(),
                    CompareOp::Equal,
                    armed.fence.create_revision,
                ),
                Compare::mod_revision(commit_key.clone(), CompareOp::Equal, armed.last_commit),
            ])
            .and_then(ops)
            .or_else([
                TxnOp::get(armed.fence.key.clone(), None),
                TxnOp::get(commit_key, None),
            ]);
        let answer = self
            .call("write", |mut c| {
                let txn = txn.clone();
                async move { c.txn(txn).await }
            })
            .await
            .map_err(|err| match err.downcast::<StoreError>() {
                // A member that took the write and then went quiet may still commit it.
                Ok(StoreError::Unavailable(why)) => {
                    anyhow::Error::new(StoreError::Unavailable(format!(
                        "{why}; whether the write was committed is unknown (etcd may still \
                         commit it): read the state before retrying"
                    )))
                }
                Ok(other) => anyhow::Error::new(other),
                Err(err) => err,
            })?;
        if answer.succeeded() {
            let revision = answer.header().map(|h| h.revision()).unwrap_or(0);
            self.committed(revision);
            return Ok(revision);
        }
        // Refused: either another node leads now, or a write of ours that looked lost
        // landed after all (the commit key moved): then the state must be read again.
        let mut reads = answer.op_responses().into_iter().filter_map(|op| match op {
            TxnOpResponse::Get(get) => Some(
                get.kvs()
                    .first()
                    .map(|kv| (kv.create_revision(), kv.mod_revision(), kv.value().to_vec())),
            ),
            _ => None,
        });
        let leader = reads.next().flatten();
        let commit = reads.next().flatten();
        if leader.map(|(created, _, _)| created) != Some(armed.fence.create_revision) {
            return Err(anyhow::Error::new(StoreError::NotLeader));
        }
        if let Some((_, moved, value)) = commit {
            self.committed(moved);
            // This very transaction landed on an earlier attempt of `call` (its answer was
            // lost): the commit key holds its stamp, so it is committed, not refused.
            if value == stamp.as_bytes() {
                return Ok(moved);
            }
        }
        Err(unavailable(
            "write",
            "an earlier write of this leader landed after it was given up; the state is read again",
        ))
    }

    /// Connects (lazily: etcd need not be up yet; requests move between the members).
    pub async fn connect(config: &EtcdConfig) -> anyhow::Result<Arc<EtcdStore>> {
        if config.endpoints.is_empty() {
            bail!("--etcd needs at least one endpoint URL");
        }
        let options = connect_options(config)?;
        let mut members = Vec::new();
        for url in &config.endpoints {
            let client = Client::connect([url.as_str()], Some(options.clone()))
                .await
                .with_context(|| format!("connecting to etcd at {url}"))?;
            members.push(Member {
                url: url.clone(),
                client,
            });
        }
        Ok(Arc::new(EtcdStore {
            members,
            current: AtomicUsize::new(0),
            prefix: config.prefix.clone(),
            armed: Mutex::new(None),
        }))
    }

    /// The member requests go to now (its index, for [`EtcdStore::failed`]), and its client.
    pub fn member(&self) -> (usize, Client) {
        let index = self.current.load(Ordering::SeqCst) % self.members.len();
        (index, self.members[index].client.clone())
    }

    /// Member `index` failed: later requests go to the next one (unless another request
    /// moved on already).
    pub fn failed(&self, index: usize) {
        let next = (index + 1) % self.members.len();
        let _ = self
            .current
            .compare_exchange(index, next, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Runs one request on the current member, moving on to the next member when it fails
    /// or does not answer within [`ATTEMPT_TIMEOUT`], around the cluster again until
    /// [`REQUEST_BUDGET`] is spent (a write is safe to send again: it is fenced on the
    /// commit key, see [`EtcdStore::commit_chunk`]). The error lists the last pass's
    /// answers.
    pub async fn call<T, F, Fut>(&self, what: &str, request: F) -> anyhow::Result<T>
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        let started = tokio::time::Instant::now();
        loop {
            let mut errors = Vec::new();
            for _ in 0..self.members.len() {
                let left = REQUEST_BUDGET.saturating_sub(started.elapsed());
                if left.is_zero() {
                    break;
                }
                let (index, client) = self.member();
                let limit = ATTEMPT_TIMEOUT.min(left);
                match tokio::time::timeout(limit, request(client)).await {
                    Ok(Ok(value)) => return Ok(value),
                    Ok(Err(err)) => errors.push(format!("{}: {err}", self.members[index].url)),
                    Err(_) => errors.push(format!(
                        "{}: no answer within {} ms",
                        self.members[index].url,
                        limit.as_millis()
                    )),
                }
                self.failed(index);
            }
            if started.elapsed() + PASS_PAUSE >= REQUEST_BUDGET {
                return Err(unavailable(what, errors.join("; ")));
            }
            tokio::time::sleep(PASS_PAUSE).await;
        }
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

    fn commit_key(&self) -> String {
        format!("{}commit", self.prefix)
    }

    /// Arms fencing for a new leader: writes commit only while `fence`'s key exists with
    /// its create revision, and in sequence from where the `commit` key is now.
    pub async fn arm(&self, fence: Fence) -> anyhow::Result<()> {
        let key = self.commit_key();
        let answer = self
            .call("read", |mut c| {
                let key = key.clone();
                async move { c.get(key, None).await }
            })
            .await?;
        let last_commit = answer
            .kvs()
            .first()
            .map(|kv| kv.mod_revision())
            .unwrap_or(0);
        *self.armed.lock().unwrap_or_else(|e| e.into_inner()) = Some(Armed { fence, last_commit });
        Ok(())
    }

    /// Disarms fencing: this node writes nothing more.
    pub fn disarm(&self) {
        *self.armed.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn armed(&self) -> Option<Armed> {
        self.armed.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn committed(&self, revision: i64) {
        if let Some(armed) = self
            .armed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            armed.last_commit = revision;
        }
    }

    /// Every key-value under `prefix` at one revision (the current one when `revision` is
    /// 0), in pages: one answer for 10,000 tasks would pass gRPC's 4 MiB message limit.
    async fn range(
        &self,
        prefix: &str,
        revision: i64,
    ) -> anyhow::Result<(i64, Vec<etcd_client::KeyValue>)> {
        let end = prefix_end(prefix.as_bytes());
        let mut from = prefix.as_bytes().to_vec();
        let mut revision = revision;
        let mut out = Vec::new();
        loop {
            let mut options = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
            if revision > 0 {
                options = options.with_revision(revision);
            }
            let mut response = self
                .call("read", |mut c| {
                    let (from, options) = (from.clone(), options.clone());
                    async move { c.get(from, Some(options)).await }
                })
                .await?;
            if revision == 0 {
                revision = response.header().map(|h| h.revision()).unwrap_or(0);
            }
            let more = response.more();
            let kvs = response.take_kvs();
            let Some(last) = kvs.last() else {
                break;
            };
            from = last.key().to_vec();
            from.push(0);
            out.extend(kvs);
            if !more {
                break;
            }
        }
        Ok((revision, out))
    }

    /// The state and the election's candidates, read at one revision.
    pub async fn load_all(&self) -> anyhow::Result<(Snapshot, BTreeMap<Vec<u8>, Candidate>)> {
        let data_prefix = format!("{}data/", self.prefix);
        let (revision, kvs) = self.range(&data_prefix, 0).await?;
        let mut snapshot = Snapshot {
            revision,
            ..Snapshot::default()
        };
        for kv in &kvs {
            let key = String::from_utf8_lossy(kv.key()).to_string();
            let change = self
                .decode(&key, Some(kv.value()))?
                .with_context(|| format!("etcd key {key} is not part of the state"))?;
            match change {
                Change::PutApp(app) => snapshot.apps.push(app),
                Change::PutTask(task) => snapshot.tasks.push(*task),
                Change::PutDeployment(d) => snapshot.deployments.push(d),
                Change::PutAgent(a) => snapshot.agents.push(a),
                Change::PutToken(t) => snapshot.tokens.push(t),
                Change::SetCounter(name, value) => {
                    snapshot.counters.insert(name, value);
                }
                _ => {}
            }
        }
        let candidates_prefix = format!("{}/", self.election_name());
        let (_, kvs) = self.range(&candidates_prefix, revision).await?;
        let candidates = kvs
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
            ("tokens", Some(v)) => {
                Change::PutToken(serde_json::from_value::<TokenRecord>(json(v)?)?)
            }
            ("tokens", None) => Change::DeleteToken(id),
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

    /// The keys a change writes, each with its value (None: deleted).
    fn writes(&self, change: &Change) -> anyhow::Result<Vec<(String, Option<Vec<u8>>)>> {
        Ok(match change {
            Change::PutApp(app) => vec![
                (
                    self.data_key("apps", &app.id),
                    Some(serde_json::to_vec(app)?),
                ),
                (
                    self.version_key(&app.id, &app.version),
                    Some(serde_json::to_vec(&app.definition)?),
                ),
            ],
            Change::DeleteApp(id) => vec![(self.data_key("apps", id), None)],
            Change::PutTask(task) => vec![(
                self.data_key("tasks", &task.id),
                Some(serde_json::to_vec(task)?),
            )],
            Change::DeleteTask(id) => vec![(self.data_key("tasks", id), None)],
            Change::PutDeployment(d) => vec![(
                self.data_key("deployments", &d.id),
                Some(serde_json::to_vec(d)?),
            )],
            Change::DeleteDeployment(id) => vec![(self.data_key("deployments", id), None)],
            Change::PutAgent(a) => vec![(
                self.data_key("agents", &a.registration.agent_id),
                Some(serde_json::to_vec(a)?),
            )],
            Change::SetCounter(name, value) => vec![(
                self.data_key("counters", name),
                Some(value.to_string().into_bytes()),
            )],
            Change::PutToken(t) => {
                vec![(self.data_key("tokens", &t.id), Some(serde_json::to_vec(t)?))]
            }
            Change::DeleteToken(id) => vec![(self.data_key("tokens", id), None)],
        })
    }

    /// The operations of a batch, one per key: etcd refuses a transaction that names a key
    /// twice ("duplicate key given in txn request"), and a batch may change one record
    /// twice (two tasks of an app failing in one heartbeat each update the app). The last
    /// change of a key wins, as it would applied in order.
    fn ops(&self, changes: &[Change], events: &[Value]) -> anyhow::Result<Vec<TxnOp>> {
        let mut writes: Vec<(String, Option<Vec<u8>>)> = Vec::new();
        for change in changes {
            writes.extend(self.writes(change)?);
        }
        if !events.is_empty() {
            writes.push((self.events_key(), Some(serde_json::to_vec(events)?)));
        }
        let mut seen = std::collections::HashSet::new();
        let mut ops: Vec<TxnOp> = writes
            .into_iter()
            .rev()
            .filter(|(key, _)| seen.insert(key.clone()))
            .map(|(key, value)| match value {
                Some(value) => TxnOp::put(key, value, None),
                None => TxnOp::delete(key, None),
            })
            .collect();
        ops.reverse();
        Ok(ops)
    }

    /// Watches the prefix from `revision` (inclusive), on the current member.
    pub async fn watch(&self, revision: i64) -> anyhow::Result<WatchStream> {
        let prefix = self.prefix.clone();
        self.call("watch", |mut c| {
            let prefix = prefix.clone();
            async move {
                c.watch(
                    prefix,
                    Some(
                        WatchOptions::new()
                            .with_prefix()
                            .with_start_revision(revision),
                    ),
                )
                .await
            }
        })
        .await
    }

    /// Joins the election `name` as a candidate whose key lives on `lease` (etcd's own
    /// election layout: `<name>/<lease in hex>`, the oldest key leads), and returns once
    /// this candidate leads. It asks who leads every 200 ms rather than waiting on a watch,
    /// so a member that stops answering cannot leave the cluster without a leader.
    pub async fn campaign(&self, name: &str, url: &str, lease: i64) -> anyhow::Result<Fence> {
        let key = format!("{name}/{lease:x}");
        let created = self
            .call("campaign", |mut c| {
                let txn = Txn::new()
                    .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(
                        key.clone(),
                        url,
                        Some(PutOptions::new().with_lease(lease)),
                    )])
                    .or_else([TxnOp::get(key.clone(), None)]);
                async move { c.txn(txn).await }
            })
            .await?;
        let create_revision = if created.succeeded() {
            created.header().map(|h| h.revision()).unwrap_or(0)
        } else {
            created
                .op_responses()
                .into_iter()
                .find_map(|op| match op {
                    TxnOpResponse::Get(get) => get.kvs().first().map(|kv| kv.create_revision()),
                    _ => None,
                })
                .unwrap_or(0)
        };
        loop {
            let (_, candidates) = self.range(&format!("{name}/"), 0).await?;
            let oldest = candidates.iter().min_by_key(|kv| kv.create_revision());
            match oldest {
                Some(kv) if kv.key() == key.as_bytes() => {
                    return Ok(Fence {
                        key: key.into_bytes(),
                        create_revision,
                    })
                }
                Some(_) if candidates.iter().any(|kv| kv.key() == key.as_bytes()) => {}
                _ => bail!("this candidate's key is gone (its lease expired)"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
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

fn connect_options(config: &EtcdConfig) -> anyhow::Result<ConnectOptions> {
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
    Ok(options)
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
        let ops = self.ops(changes, events)?;
        let mut revision = 0;
        for chunk in ops.chunks(MAX_TXN_OPS) {
            revision = self.commit_chunk(chunk).await?;
        }
        Ok(revision)
    }

    async fn app_versions(&self, app_id: &str) -> anyhow::Result<Vec<String>> {
        let prefix = self.version_key(app_id, "");
        let response = self
            .call("read", |mut c| {
                let prefix = prefix.clone();
                async move {
                    c.get(
                        prefix,
                        Some(GetOptions::new().with_prefix().with_keys_only()),
                    )
                    .await
                }
            })
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
        let key = self.version_key(app_id, version);
        let response = self
            .call("read", |mut c| {
                let key = key.clone();
                async move { c.get(key, None).await }
            })
            .await?;
        match response.kvs().first() {
            Some(kv) => Ok(Some(
                serde_json::from_slice(kv.value())
                    .with_context(|| format!("etcd key {key}: corrupt version"))?,
            )),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn a_prefix_ends_at_its_successor() {
        assert_eq!(
            prefix_end(b"/infra/dc1/data/"),
            b"/infra/dc1/data0".to_vec()
        );
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff"), vec![0]);
    }
}
