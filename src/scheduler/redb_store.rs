//! The [`Store`] on a redb file (`<data-dir>/scheduler.redb`): one table per kind, JSON
//! values, one write transaction per batch (durable on commit). redb is synchronous, so
//! every call runs on tokio's blocking pool. Events are not stored: one scheduler has no
//! followers to tell.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use redb::{Database, ReadableTable, TableDefinition};
use serde_json::{Map, Value};

use crate::scheduler::store::{Change, Snapshot, Store};

const APPS: TableDefinition<&str, &[u8]> = TableDefinition::new("apps");
const VERSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("app_versions");
const TASKS: TableDefinition<&str, &[u8]> = TableDefinition::new("tasks");
const DEPLOYMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("deployments");
const AGENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("agents");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");

pub struct RedbStore {
    db: Arc<Database>,
}

/// redb's page cache. Its default (1 GiB) would keep up to that much of the file in
/// memory, next to the scheduler's own copy of the whole state; the store is read once at
/// start and then only written, so a small cache costs little and keeps the RSS to the
/// state's size (issue 17: 1,047 MiB peak at 100,000 tasks with the default).
const STORE_CACHE_BYTES: usize = 32 * 1024 * 1024;

fn version_key(app_id: &str, version: &str) -> String {
    format!("{app_id}\u{0}{version}")
}

impl RedbStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> anyhow::Result<RedbStore> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the data dir {}", dir.display()))?;
        let path = dir.join("scheduler.redb");
        let db = redb::Builder::new()
            .set_cache_size(STORE_CACHE_BYTES)
            .create(&path)
            .with_context(|| format!("cannot open the store {}", path.display()))?;
        let tx = db.begin_write().context("store: begin")?;
        {
            tx.open_table(APPS)?;
            tx.open_table(VERSIONS)?;
            tx.open_table(TASKS)?;
            tx.open_table(DEPLOYMENTS)?;
            tx.open_table(AGENTS)?;
            tx.open_table(COUNTERS)?;
            tx.open_table(TOKENS)?;
        }
        tx.commit().context("store: create tables")?;
        Ok(RedbStore { db: Arc::new(db) })
    }

    /// Runs `work` on the database on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .context("store: the blocking task failed")?
    }
}

fn read_all<T: serde::de::DeserializeOwned>(
    tx: &redb::ReadTransaction,
    table: TableDefinition<&str, &[u8]>,
) -> anyhow::Result<Vec<T>> {
    let table = tx.open_table(table)?;
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (key, value) = entry?;
        let item = serde_json::from_slice(value.value())
            .with_context(|| format!("store: corrupt record {}", key.value()))?;
        out.push(item);
    }
    Ok(out)
}

#[async_trait::async_trait]
impl Store for RedbStore {
    async fn load(&self) -> anyhow::Result<Snapshot> {
        self.blocking(load).await
    }

    async fn apply(&self, changes: &[Change], _events: &[Value]) -> anyhow::Result<i64> {
        if changes.is_empty() {
            return Ok(0);
        }
        let writes = encode(changes)?;
        self.blocking(move |db| apply(db, writes)).await?;
        Ok(0)
    }

    async fn app_versions(&self, app_id: &str) -> anyhow::Result<Vec<String>> {
        let app_id = app_id.to_string();
        self.blocking(move |db| app_versions(db, &app_id)).await
    }

    async fn app_version(
        &self,
        app_id: &str,
        version: &str,
    ) -> anyhow::Result<Option<Map<String, Value>>> {
        let key = version_key(app_id, version);
        self.blocking(move |db| {
            let tx = db.begin_read()?;
            let table = tx.open_table(VERSIONS)?;
            match table.get(key.as_str())? {
                Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
                None => Ok(None),
            }
        })
        .await
    }
}

/// Every record of `table`, parsed on up to `threads` threads: each reads the table in
/// its own read transaction (of the same commit: nothing writes before the load is
/// over) and parses every `threads`-th record. At 100,000 tasks, parsing their JSON is
/// most of a restart; copying the raw records to hand them out would add their size to
/// the peak memory.
fn read_all_parallel<T: serde::de::DeserializeOwned + Send>(
    db: &Database,
    table: TableDefinition<'static, &'static str, &'static [u8]>,
    threads: usize,
) -> anyhow::Result<Vec<T>> {
    let part = |k: usize| -> anyhow::Result<Vec<T>> {
        let tx = db.begin_read().context("store: begin read")?;
        let table = tx.open_table(table)?;
        let mut out = Vec::new();
        for entry in table.iter()?.skip(k).step_by(threads) {
            let (key, value) = entry?;
            let item = serde_json::from_slice(value.value())
                .with_context(|| format!("store: corrupt record {}", key.value()))?;
            out.push(item);
        }
        Ok(out)
    };
    if threads <= 1 {
        return part(0);
    }
    let parts: Vec<anyhow::Result<Vec<T>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|k| s.spawn(move || part(k))).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("store: a reading thread panicked")))
            })
            .collect()
    });
    let parts = parts.into_iter().collect::<anyhow::Result<Vec<Vec<T>>>>()?;
    // Back in the table's order: record i is the (i / threads)-th of part i % threads.
    let total = parts.iter().map(Vec::len).sum();
    let mut iters: Vec<_> = parts.into_iter().map(Vec::into_iter).collect();
    let mut out = Vec::with_capacity(total);
    for i in 0..total {
        if let Some(item) = iters[i % threads].next() {
            out.push(item);
        }
    }
    Ok(out)
}

fn load(db: &Database) -> anyhow::Result<Snapshot> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let tasks = read_all_parallel(db, TASKS, threads)?;
    let tx = db.begin_read().context("store: begin read")?;
    let mut snapshot = Snapshot {
        apps: read_all(&tx, APPS)?,
        tasks,
        deployments: read_all(&tx, DEPLOYMENTS)?,
        agents: read_all(&tx, AGENTS)?,
        tokens: read_all(&tx, TOKENS)?,
        ..Snapshot::default()
    };
    let counters = tx.open_table(COUNTERS)?;
    for entry in counters.iter()? {
        let (k, v) = entry?;
        snapshot.counters.insert(k.value().to_string(), v.value());
    }
    Ok(snapshot)
}

/// One write of a batch, serialised: the changes are turned into bytes where the scheduler
/// holds them, so that only bytes (not a copy of every record, deployments carrying every
/// app's definition among them) go to the blocking pool.
enum Write {
    Put(Table, String, Vec<u8>),
    Delete(Table, String),
    Counter(String, u64),
}

/// The tables holding JSON records.
#[derive(Clone, Copy)]
enum Table {
    Apps,
    Versions,
    Tasks,
    Deployments,
    Agents,
    Tokens,
}

/// The store writes of `changes`, in their order.
fn encode(changes: &[Change]) -> anyhow::Result<Vec<Write>> {
    let put = |table, key: &str, bytes| Write::Put(table, key.to_string(), bytes);
    let mut writes = Vec::with_capacity(changes.len() + 1);
    for change in changes {
        match change {
            Change::PutApp(app) => {
                writes.push(put(Table::Apps, &app.id, serde_json::to_vec(app)?));
                let key = version_key(&app.id, &app.version);
                writes.push(put(
                    Table::Versions,
                    &key,
                    serde_json::to_vec(&app.definition)?,
                ));
            }
            Change::DeleteApp(id) => writes.push(Write::Delete(Table::Apps, id.clone())),
            Change::PutTask(task) => {
                writes.push(put(Table::Tasks, &task.id, serde_json::to_vec(task)?));
            }
            Change::DeleteTask(id) => writes.push(Write::Delete(Table::Tasks, id.clone())),
            Change::PutDeployment(d) => {
                writes.push(put(Table::Deployments, &d.id, serde_json::to_vec(d)?));
            }
            Change::DeleteDeployment(id) => {
                writes.push(Write::Delete(Table::Deployments, id.clone()));
            }
            Change::PutAgent(a) => {
                let id = &a.registration.agent_id;
                writes.push(put(Table::Agents, id, serde_json::to_vec(a)?));
            }
            Change::SetCounter(name, value) => writes.push(Write::Counter(name.clone(), *value)),
            Change::PutToken(t) => writes.push(put(Table::Tokens, &t.id, serde_json::to_vec(t)?)),
            Change::DeleteToken(id) => writes.push(Write::Delete(Table::Tokens, id.clone())),
        }
    }
    Ok(writes)
}

/// Carries out `writes` in one transaction, durable on return.
fn apply(db: &Database, writes: Vec<Write>) -> anyhow::Result<()> {
    let tx = db.begin_write().context("store: begin write")?;
    {
        let mut tables = [
            tx.open_table(APPS)?,
            tx.open_table(VERSIONS)?,
            tx.open_table(TASKS)?,
            tx.open_table(DEPLOYMENTS)?,
            tx.open_table(AGENTS)?,
            tx.open_table(TOKENS)?,
        ];
        let mut counters = tx.open_table(COUNTERS)?;
        for write in &writes {
            match write {
                Write::Put(table, key, value) => {
                    tables[*table as usize].insert(key.as_str(), value.as_slice())?;
                }
                Write::Delete(table, key) => {
                    tables[*table as usize].remove(key.as_str())?;
                }
                Write::Counter(name, value) => {
                    counters.insert(name.as_str(), *value)?;
                }
            }
        }
    }
    tx.commit().context("store: commit")?;
    Ok(())
}

fn app_versions(db: &Database, app_id: &str) -> anyhow::Result<Vec<String>> {
    let tx = db.begin_read()?;
    let table = tx.open_table(VERSIONS)?;
    let start = format!("{app_id}\u{0}");
    let end = format!("{app_id}\u{1}");
    let mut out = Vec::new();
    for entry in table.range(start.as_str()..end.as_str())? {
        let (k, _) = entry?;
        if let Some((_, v)) = k.value().split_once('\u{0}') {
            out.push(v.to_string());
        }
    }
    out.reverse();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::store::AppRecord;
    use serde_json::json;

    #[tokio::test]
    async fn changes_survive_reopening_and_versions_are_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let app = |v: &str| AppRecord {
            id: "/a".into(),
            definition: json!({"id": "/a", "version": v})
                .as_object()
                .unwrap()
                .clone(),
            version: v.into(),
            config_version: v.into(),
            last_task_failure: None,
            resident_agents: Vec::new(),
        };
        {
            let store = RedbStore::open(dir.path()).unwrap();
            store
                .apply(
                    &[
                        Change::PutApp(app("2020-01-01T00:00:00.000Z")),
                        Change::PutApp(app("2020-01-02T00:00:00.000Z")),
                        Change::SetCounter("launched".into(), 7),
                    ],
                    &[],
                )
                .await
                .unwrap();
        }
        let store = RedbStore::open(dir.path()).unwrap();
        let snap = store.load().await.unwrap();
        assert_eq!(snap.apps.len(), 1);
        assert_eq!(snap.apps[0].version, "2020-01-02T00:00:00.000Z");
        assert_eq!(snap.counters["launched"], 7);
        assert_eq!(
            store.app_versions("/a").await.unwrap(),
            vec!["2020-01-02T00:00:00.000Z", "2020-01-01T00:00:00.000Z"]
        );
        let old = store
            .app_version("/a", "2020-01-01T00:00:00.000Z")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(old["version"], json!("2020-01-01T00:00:00.000Z"));
        store
            .apply(&[Change::DeleteApp("/a".into())], &[])
            .await
            .unwrap();
        assert!(store.load().await.unwrap().apps.is_empty());
    }

    /// Records read on several threads come back complete and in the table's order,
    /// whatever the count per thread.
    #[tokio::test]
    async fn records_read_in_parallel_keep_the_tables_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        let apps: Vec<Change> = (0..11)
            .map(|i| {
                Change::PutApp(AppRecord {
                    id: format!("/a{i:02}"),
                    definition: Default::default(),
                    version: "v".into(),
                    config_version: "v".into(),
                    last_task_failure: None,
                    resident_agents: Vec::new(),
                })
            })
            .collect();
        store.apply(&apps, &[]).await.unwrap();
        let ids = |records: Vec<AppRecord>| -> Vec<String> {
            records.into_iter().map(|a| a.id).collect()
        };
        let expected: Vec<String> = (0..11).map(|i| format!("/a{i:02}")).collect();
        for threads in [1, 2, 3, 4, 12] {
            let read = read_all_parallel(&store.db, APPS, threads).unwrap();
            assert_eq!(ids(read), expected, "{threads} threads");
        }
    }
}
