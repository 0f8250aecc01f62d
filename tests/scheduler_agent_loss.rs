//! When an agent counts as lost, decided by a real scheduler core on a real redb store in
//! this process, where the test can hold the scheduler's writer as a long store
//! transaction under load would. An agent whose heartbeat arrived and waits for the
//! writer is alive: the timer must not declare it lost for the scheduler's own delay
//! (the 100,000-task load run lost 26 live agents that way). One that truly stops
//! heartbeating is still lost after the timeout.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use infra::api::agent::{Heartbeat, Registration};
use infra::scheduler::leadership::Leadership;
use infra::scheduler::redb_store::RedbStore;
use infra::scheduler::store::Store;
use infra::scheduler::{Config, Scheduler};

const AGENT_TIMEOUT: Duration = Duration::from_millis(400);

async fn scheduler(dir: &std::path::Path) -> Arc<Scheduler> {
    let store = RedbStore::open(dir).expect("open redb");
    let initial = store.load().await.expect("load");
    let mut config = Config::new("127.0.0.1:0".parse().expect("address"), dir.to_path_buf());
    config.agent_timeout = AGENT_TIMEOUT;
    let leadership = Arc::new(Leadership::single("http://127.0.0.1:0".into()));
    let (scheduler, _work) =
        Scheduler::new(config, Arc::new(store), leadership, initial).expect("scheduler");
    scheduler
}

fn registration(id: &str) -> Registration {
    Registration {
        agent_id: id.into(),
        hostname: id.into(),
        address: "127.0.0.1".into(),
        cpus: 1.0,
        mem: 1024.0,
        disk: 1024.0,
        port_range: (31000, 31100),
        attributes: BTreeMap::new(),
        docker: false,
        version: "test".into(),
        volume_url: None,
    }
}

/// Agents the timer has declared lost so far (an agent declared lost comes back with its
/// next heartbeat, so its record alone would not tell).
fn agents_lost_total(scheduler: &Scheduler) -> u64 {
    scheduler
        .lock()
        .counters
        .get("agents_lost_total")
        .copied()
        .unwrap_or(0)
}

fn lost(scheduler: &Scheduler, id: &str) -> bool {
    scheduler
        .lock()
        .agents
        .get(id)
        .map(|agent| agent.record.lost)
        .expect("the agent is registered")
}

#[tokio::test]
async fn an_agent_whose_heartbeat_waits_for_the_writer_is_not_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scheduler = scheduler(dir.path()).await;
    scheduler
        .register(registration("patient"))
        .await
        .expect("register");

    // A long write holds the writer; the timer queues behind it first, then the agent's
    // heartbeat arrives and queues too.
    let writer = scheduler.begin_write().await.expect("writer");
    let timer = tokio::spawn({
        let scheduler = scheduler.clone();
        async move { scheduler.tick().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let heartbeat = tokio::spawn({
        let scheduler = scheduler.clone();
        async move {
            scheduler
                .heartbeat(
                    "patient",
                    Heartbeat {
                        tasks: Vec::new(),
                        busy_ports: Vec::new(),
                        output: Vec::new(),
                        volume_moves: Vec::new(),
                        volumes: Vec::new(),
                        generation: None,
                        delta: false,
                        partial: false,
                    },
                )
                .await
                .map(|answer| answer.is_some())
        }
    });
    // Longer than the agent timeout since the heartbeat arrived.
    tokio::time::sleep(AGENT_TIMEOUT * 2).await;
    drop(writer);

    timer.await.expect("timer task").expect("tick");
    assert!(
        heartbeat.await.expect("heartbeat task").expect("heartbeat"),
        "the agent is known: its heartbeat is answered"
    );
    assert_eq!(
        agents_lost_total(&scheduler),
        0,
        "an agent waiting for its heartbeat's answer was declared lost"
    );
    assert!(!lost(&scheduler, "patient"));
}

#[tokio::test]
async fn an_agent_that_stops_heartbeating_is_lost_after_the_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scheduler = scheduler(dir.path()).await;
    scheduler
        .register(registration("silent"))
        .await
        .expect("register");

    scheduler.tick().await.expect("tick");
    assert!(!lost(&scheduler, "silent"), "lost before its timeout");
    tokio::time::sleep(AGENT_TIMEOUT + Duration::from_millis(100)).await;
    scheduler.tick().await.expect("tick");
    assert!(
        lost(&scheduler, "silent"),
        "silent past its timeout, yet not lost"
    );
    assert_eq!(agents_lost_total(&scheduler), 1);
}
