//! The etcd store at scale, against a real etcd (Debian's etcd-server, started here on a
//! loopback port with its data in a temp folder): commit 10,000 tasks (100 apps x 100) in
//! batches, then time reading the whole state back, which is what a new leader does when it
//! takes over and what a follower does when it starts. Prints figures; asserts nothing.
//!
//! `cargo bench --bench etcd_store` (needs /usr/bin/etcd; `scripts/install.sh` installs it).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use infra::api::agent::{TaskSpec, TaskState};
use infra::scheduler::etcd_store::{EtcdConfig, EtcdStore, Fence};
use infra::scheduler::redb_store::RedbStore;
use infra::scheduler::store::{AppRecord, Change, Store, TaskRecord};
use serde_json::json;

const APPS: usize = 100;
const TASKS_PER_APP: usize = 100;
const BATCH: usize = 50;

struct Etcd(Child);

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn app(i: usize) -> AppRecord {
    let id = format!("/bench/app{i}");
    AppRecord {
        definition: json!({"id": id, "cmd": "sleep 1000", "instances": TASKS_PER_APP,
                           "cpus": 0.1, "mem": 32})
        .as_object()
        .cloned()
        .unwrap_or_default(),
        id,
        version: "2026-01-01T00:00:00.000Z".into(),
        config_version: "2026-01-01T00:00:00.000Z".into(),
        last_task_failure: None,
        resident_agents: Vec::new(),
    }
}

fn task(app: usize, n: usize) -> TaskRecord {
    let app_id = format!("/bench/app{app}");
    let id = format!("bench_app{app}.{n:08}-0000-0000-0000-000000000000");
    TaskRecord {
        id: id.clone(),
        app_id: app_id.clone(),
        agent_id: format!("agent-{}", n % 50),
        host: format!("node-{}", n % 50),
        version: "2026-01-01T00:00:00.000Z".into(),
        config_version: "2026-01-01T00:00:00.000Z".into(),
        service_ports: vec![10000 + app as u32],
        staged_at: "2026-01-01T00:00:00.000Z".into(),
        started_at: Some("2026-01-01T00:00:01.000Z".into()),
        state: TaskState::Running,
        health: Vec::new(),
        killing: false,
        reported: true,
        spec: TaskSpec {
            task_id: id,
            app_id,
            app_version: "2026-01-01T00:00:00.000Z".into(),
            cmd: Some("sleep 1000".into()),
            args: None,
            env: [("PORT0".to_string(), format!("{}", 31000 + n % 1000))].into(),
            labels: Default::default(),
            user: None,
            cpus: 0.1,
            mem: 32.0,
            disk: 0.0,
            host_ports: vec![31000 + (n % 1000) as u16],
            docker: None,
            health_checks: Vec::new(),
            kill_grace_period_seconds: 3,
            persistent_volumes: Vec::new(),
        },
        ip_addresses: Vec::new(),
    }
}

fn changes() -> Vec<Vec<Change>> {
    let mut all: Vec<Change> = (0..APPS).map(|i| Change::PutApp(app(i))).collect();
    for a in 0..APPS {
        for n in 0..TASKS_PER_APP {
            all.push(Change::PutTask(Box::new(task(a, n))));
        }
    }
    all.chunks(BATCH).map(<[Change]>::to_vec).collect()
}

async fn fill(store: &dyn Store, batches: &[Vec<Change>]) -> Duration {
    let started = Instant::now();
    for batch in batches {
        store.apply(batch, &[]).await.expect("commit");
    }
    started.elapsed()
}

async fn time_loads(store: &dyn Store, runs: usize) -> Vec<Duration> {
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let snapshot = store.load().await.expect("load");
        times.push(started.elapsed());
        assert_eq!(snapshot.tasks.len(), APPS * TASKS_PER_APP);
    }
    times.sort();
    times
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let client_port = free_port();
    let peer_port = free_port();
    let child = Command::new("etcd")
        .args(["--name", "bench", "--data-dir"])
        .arg(dir.path().join("etcd"))
        .args([
            "--listen-client-urls",
            &format!("http://127.0.0.1:{client_port}"),
            "--advertise-client-urls",
            &format!("http://127.0.0.1:{client_port}"),
            "--listen-peer-urls",
            &format!("http://127.0.0.1:{peer_port}"),
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{peer_port}"),
            "--initial-cluster",
            &format!("bench=http://127.0.0.1:{peer_port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start etcd (apt-get install etcd-server)");
    let _etcd = Etcd(child);
    let store: Arc<EtcdStore> = EtcdStore::connect(&EtcdConfig {
        endpoints: vec![format!("http://127.0.0.1:{client_port}")],
        ca: None,
        cert: None,
        key: None,
        prefix: "/infra/bench/".into(),
    })
    .await
    .expect("connect");
    // Fence on a key of our own, as a leader's writes are.
    let (_, mut client) = store.member();
    let fence_key = "/infra/bench/leader/bench";
    let mut put = None;
    for _ in 0..100 {
        match client.put(fence_key, "http://bench", None).await {
            Ok(_) => {
                put = Some(());
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    put.expect("etcd did not start");
    let created = client
        .get(fence_key, None)
        .await
        .expect("get")
        .kvs()
        .first()
        .map(|kv| kv.create_revision())
        .expect("the fence key");
    store
        .arm(Fence {
            key: fence_key.as_bytes().to_vec(),
            create_revision: created,
        })
        .await
        .expect("arm the fence");

    let batches = changes();
    let commits = batches.len();
    let etcd_fill = fill(store.as_ref(), &batches).await;
    let etcd_loads = time_loads(store.as_ref(), 5).await;

    let redb = RedbStore::open(&dir.path().join("redb")).expect("redb");
    let redb_fill = fill(&redb, &batches).await;
    let redb_loads = time_loads(&redb, 5).await;

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!(
        "machine: {} cores, {cpu}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "state: {APPS} apps, {} tasks, committed in {commits} batches of {BATCH}",
        APPS * TASKS_PER_APP
    );
    for (name, fill, loads) in [
        ("etcd", etcd_fill, &etcd_loads),
        ("redb", redb_fill, &redb_loads),
    ] {
        println!(
            "{name}: commits {:.0}/s ({:.0} changes/s); full load median {} (min {}, max {})",
            commits as f64 / fill.as_secs_f64(),
            (APPS + APPS * TASKS_PER_APP) as f64 / fill.as_secs_f64(),
            ms(loads[loads.len() / 2]),
            ms(loads[0]),
            ms(loads[loads.len() - 1]),
        );
    }
}
