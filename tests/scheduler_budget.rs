//! Work per placement, counted rather than timed, on a small fixed load (100 agents, 100
//! apps x 10 instances = 1,000 tasks): store transactions of the real `infra scheduler`
//! over HTTP, and heap allocations of the reconcile loop in this process. A change that
//! makes the scheduler do per-task store writes or per-app scans of the whole cluster
//! shows here as a count past its bound, without timing anything; so do the bytes a
//! settled cluster's heartbeats are answered with. The timed figures are
//! the load harness's (bench/scheduler).

#[path = "support/scheduler.rs"]
mod scheduler_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use infra::scheduler::placement::Strategy;
use infra::scheduler::reconcile::reconcile_app_on;
use infra::scheduler::state::State;
use infra::scheduler::store::{AgentRecord, AppRecord, Change};
use scheduler_support::{client, get_json, get_text, SchedulerProc, TestAgent};
use serde_json::{json, Value};

const AGENTS: usize = 100;
const APPS: usize = 100;
const INSTANCES: usize = 10;

/// Counts the allocations of the thread that asks (other test threads do not disturb it).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// App `i`: one of UNIQUE hostname, GROUP_BY rack, LIKE on an attribute, one host port.
fn app_definition(i: usize) -> Value {
    let constraints = match i % 3 {
        0 => json!([["hostname", "UNIQUE"]]),
        1 => json!([["rack", "GROUP_BY"]]),
        _ => json!([["zone", "LIKE", "z[01]"]]),
    };
    json!({"id": format!("/budget/app-{i:03}"), "cmd": "sleep 1000", "instances": INSTANCES,
           "cpus": 0.1, "mem": 16, "constraints": constraints, "portDefinitions": [{"port": 0}]})
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
}

async fn metrics(url: &str) -> String {
    get_text(&format!("{url}/metrics")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_transactions_per_placement_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = SchedulerProc::start(dir.path(), &["--agent-timeout", "60s"]);
    let url = scheduler.url.clone();
    let mut agents: Vec<TestAgent> = (0..AGENTS)
        .map(|i| {
            let mut agent = TestAgent::new(&format!("node-{i:03}"), (31000, 31100));
            agent
                .attributes
                .insert("rack".into(), format!("r{}", i % 10));
            agent
                .attributes
                .insert("zone".into(), format!("z{}", i % 3));
            agent
        })
        .collect();
    for agent in &agents {
        agent.register(&url).await;
    }
    let before = metric(&metrics(&url).await, "infra_scheduler_store_transactions");
    // Half the apps one by one, half in one batch write.
    for i in 0..APPS / 2 {
        let resp = client()
            .post(format!("{url}/v2/apps"))
            .json(&app_definition(i))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{:?}", resp.text().await);
    }
    let batch: Vec<Value> = (APPS / 2..APPS).map(app_definition).collect();
    let resp = client()
        .put(format!("{url}/v2/apps"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    converge(&url, &mut agents, APPS * INSTANCES).await;
    let text = metrics(&url).await;
    let transactions = metric(&text, "infra_scheduler_store_transactions") - before;
    let placed = metric(&text, "infra_scheduler_tasks_launched_total");
    assert_eq!(placed as usize, APPS * INSTANCES, "one placement per task");
    // About 0.25 per placement here: the 51 API writes, a heartbeat per agent that
    // reports its new tasks running (these heartbeats come one at a time, so each is its
    // own group commit), a few reconcile batches, the deployments' ends (up to one per
    // app, as the apps' last tasks report in). How the reconciles fall into batches
    // depends on timing, hence the margin; a write per task launched or per status
    // report would be 1.0 or more.
    let per_placement = transactions / placed;
    eprintln!(
        "{transactions} store transactions for {placed} placements ({per_placement:.3} each)"
    );
    assert!(
        per_placement <= 0.40,
        "{transactions} store transactions for {placed} placements ({per_placement:.3} each)"
    );
    let creation_writes = metric(&text, "infra_scheduler_deployment_writes");
    // One write per API write (the start of its deployment); each deployment has one
    // step, and its end deletes it. A write per app finished would be 50 more here.
    assert!(
        creation_writes <= (APPS / 2 + 1) as f64,
        "{creation_writes} deployment records written for {} API writes",
        APPS / 2 + 1
    );
    settled_heartbeats_stay_small(&url, &agents).await;
    one_deployment_of_many_apps_is_written_once(&url, &mut agents).await;
}

/// Heartbeats every agent, round after round, until `tasks` tasks run and no deployment
/// is left (25 s at most).
async fn converge(url: &str, agents: &mut [TestAgent], tasks: usize) {
    let started = Instant::now();
    loop {
        for agent in agents.iter_mut() {
            agent.heartbeat(url).await;
        }
        let deployments = get_json(&format!("{url}/v2/deployments")).await;
        let running: usize = agents.iter().map(|a| a.running().len()).sum();
        if running == tasks && deployments.as_array().is_some_and(Vec::is_empty) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "not converged: {running} running, deployments {deployments}"
        );
    }
}

/// Every app scaled in one write (one deployment of all of them, one step): the apps
/// finish one by one as their new tasks report running, heartbeat after heartbeat, and
/// the deployment record (every app's definition, twice) is written when it starts and
/// not again. Writing it per app finished, or per reconcile batch that finished one,
/// is what made scaling 1,000 apps at once quadratic.
async fn one_deployment_of_many_apps_is_written_once(url: &str, agents: &mut [TestAgent]) {
    let before = metric(&metrics(url).await, "infra_scheduler_deployment_writes");
    let scale: Vec<Value> = (0..APPS)
        .map(|i| json!({"id": format!("/budget/app-{i:03}"), "instances": INSTANCES + 1}))
        .collect();
    let resp = client()
        .put(format!("{url}/v2/apps"))
        .json(&scale)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    converge(url, agents, APPS * (INSTANCES + 1)).await;
    let writes = metric(&metrics(url).await, "infra_scheduler_deployment_writes") - before;
    eprintln!("one deployment of {APPS} apps: its record written {writes} times");
    assert_eq!(
        writes, 1.0,
        "one deployment of {APPS} apps: its record written {writes} times"
    );
}

/// A settled cluster's heartbeats in the delta protocol (`scheduler::delta`): after one
/// full heartbeat per agent, a round of deltas (no status changed, the current
/// generation held) is answered in a few bytes per agent and costs no store transaction.
async fn settled_heartbeats_stay_small(url: &str, agents: &[TestAgent]) {
    let post = |agent: &TestAgent, body: Value| {
        let url = format!("{url}{}", infra::api::agent::heartbeat_path(&agent.id));
        async move {
            let resp = client().post(url).json(&body).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.bytes().await.unwrap()
        }
    };
    let mut generations = Vec::new();
    let mut full_bytes = 0;
    for agent in agents {
        let statuses: Vec<_> = agent.tasks.values().map(|(_, s)| s.clone()).collect();
        let answer = post(agent, json!({"tasks": statuses, "busyPorts": []})).await;
        full_bytes += answer.len();
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        generations.push(answer["generation"].as_u64().expect("a generation"));
    }
    let before = metric(&metrics(url).await, "infra_scheduler_store_transactions");
    let mut delta_bytes = 0;
    for (agent, generation) in agents.iter().zip(generations) {
        let body = json!({"tasks": [], "busyPorts": [], "delta": true, "generation": generation});
        delta_bytes += post(agent, body).await.len();
    }
    let transactions = metric(&metrics(url).await, "infra_scheduler_store_transactions") - before;
    eprintln!(
        "heartbeat answers of {} agents: {full_bytes} bytes full, {delta_bytes} bytes as deltas",
        agents.len()
    );
    assert!(
        delta_bytes <= 64 * agents.len(),
        "{delta_bytes} bytes answering {} settled agents",
        agents.len()
    );
    assert_eq!(
        transactions, 0.0,
        "a settled round of deltas wrote to the store"
    );
}

fn agent_record(i: usize) -> AgentRecord {
    AgentRecord {
        registration: infra::api::agent::Registration {
            agent_id: format!("agent-{i:03}"),
            hostname: format!("node-{i:03}"),
            address: "127.0.0.1".into(),
            cpus: 16.0,
            mem: 65536.0,
            disk: 100_000.0,
            port_range: (31000, 31100),
            attributes: [
                ("rack".to_string(), format!("r{}", i % 10)),
                ("zone".to_string(), format!("z{}", i % 3)),
            ]
            .into(),
            docker: false,
            version: "t".into(),
            volume_url: None,
        },
        lost: false,
    }
}

fn app_record(i: usize) -> AppRecord {
    let version = "2020-01-01T00:00:00.000Z";
    let def = infra::api::appdef::normalize(
        app_definition(i).as_object().cloned().unwrap_or_default(),
        version,
        version,
        &|_| false,
        (10000, 20000),
    );
    AppRecord {
        id: format!("/budget/app-{i:03}"),
        definition: def,
        version: version.into(),
        config_version: version.into(),
        last_task_failure: None,
        resident_agents: Vec::new(),
    }
}

/// Allocations per placement of one reconcile batch over all the apps (the worker's
/// loop, without the store): building each task (its id, environment, spec) takes some;
/// what must not come back is a copy of every agent or a walk of every task per app.
#[test]
fn allocations_per_placement_stay_bounded() {
    let mut state = State::default();
    for i in 0..AGENTS {
        state.apply(Change::PutAgent(agent_record(i))).unwrap();
    }
    for i in 0..APPS {
        state.apply(Change::PutApp(app_record(i))).unwrap();
    }
    let now = std::time::Instant::now();
    let mut batch = infra::scheduler::reconcile::Batch::default();
    let start = allocations();
    let mut changes = Vec::new();
    for i in 0..APPS {
        let id = format!("/budget/app-{i:03}");
        let result = reconcile_app_on(&state, &id, Strategy::Spread, now, &mut batch);
        batch.record(&result.changes);
        changes.extend(result.changes);
    }
    let used = allocations() - start;
    let placed = changes
        .iter()
        .filter(|c| matches!(c, Change::PutTask(_)))
        .count();
    assert_eq!(placed, APPS * INSTANCES);
    let per_placement = used as f64 / placed as f64;
    eprintln!("{used} allocations for {placed} placements ({per_placement:.1} each)");
    assert!(
        per_placement <= 150.0,
        "{used} allocations for {placed} placements ({per_placement:.1} each)"
    );
}
