//! The group commit's rule (src/scheduler/group_commit.rs) against a real `infra
//! scheduler` process on a real redb file, killed with SIGKILL: nothing said to a client or
//! an agent is lost, and what a crash loses was never said.
//!
//! The scheduler's test-only `INFRA_SCHEDULER_TEST_SYNC_DELAY_MS` holds each durable
//! commit back, so that the kill lands while writes are committed (and visible to reads)
//! but not yet durable: an answer sent before its durable commit would be lost here, not
//! only in a rare race.

#[path = "support/scheduler.rs"]
mod scheduler_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use infra::scheduler::redb_store::SYNC_DELAY_VAR;
use scheduler_support::{client, TestAgent};
use serde_json::{json, Value};

/// How long each durable commit is held back in these tests.
const SYNC_DELAY_MS: u64 = 1500;

/// `infra scheduler` on `dir`, its durable commits held back by `sync_delay_ms`.
struct Scheduler {
    child: Child,
    url: String,
}

impl Scheduler {
    fn start(dir: &Path, sync_delay_ms: Option<u64>) -> Scheduler {
        let mut command = Command::new(env!("CARGO_BIN_EXE_infra"));
        command
            .args(["scheduler", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(["--insecure-http", "--no-auth", "--agent-timeout", "60s"])
            .stdout(Stdio::piped());
        match sync_delay_ms {
            Some(ms) => command.env(SYNC_DELAY_VAR, ms.to_string()),
            None => command.env_remove(SYNC_DELAY_VAR),
        };
        let mut child = command.spawn().expect("start infra scheduler");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("first line");
        let addr = line
            .trim()
            .strip_prefix("infra scheduler listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        Scheduler {
            child,
            url: format!("http://{addr}"),
        }
    }

    /// SIGKILL, at once: nothing gets a chance to flush.
    fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.kill_9();
    }
}

fn app(id: &str) -> Value {
    json!({"id": id, "cmd": "sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16})
}

async fn post_app(url: &str, id: &str) -> reqwest::Result<reqwest::Response> {
    client()
        .post(format!("{url}/v2/apps"))
        .json(&app(id))
        .send()
        .await
}

async fn app_status(url: &str, id: &str) -> u16 {
    client()
        .get(format!("{url}/v2/apps{id}"))
        .send()
        .await
        .expect("GET app")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_write_survives_kill_9_and_a_crash_loses_only_unacknowledged_ones() {
    let dir = tempfile::tempdir().expect("tempdir");

    // Acknowledged, then killed at once: it must be on disk.
    let mut scheduler = Scheduler::start(dir.path(), Some(SYNC_DELAY_MS));
    let started = Instant::now();
    let resp = post_app(&scheduler.url, "/durable/acked")
        .await
        .expect("POST");
    assert_eq!(resp.status(), 201, "{:?}", resp.text().await);
    let waited = started.elapsed();
    scheduler.kill_9();
    assert!(
        waited >= Duration::from_millis(SYNC_DELAY_MS),
        "the answer came after {waited:?}, before the durable commit held back by \
         {SYNC_DELAY_MS} ms could have covered it"
    );

    // Committed and visible, but killed before its durable commit: never acknowledged.
    let mut scheduler = Scheduler::start(dir.path(), Some(SYNC_DELAY_MS));
    assert_eq!(app_status(&scheduler.url, "/durable/acked").await, 200);
    let url = scheduler.url.clone();
    let pending = tokio::spawn(async move { post_app(&url, "/durable/unacked").await });
    let deadline = Instant::now() + Duration::from_secs(10);
    while app_status(&scheduler.url, "/durable/unacked").await != 200 {
        assert!(Instant::now() < deadline, "the write never reached memory");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !pending.is_finished(),
        "the write was answered before its durable commit"
    );
    scheduler.kill_9();
    let answer = pending.await.expect("join");
    assert!(
        answer.is_err(),
        "the killed scheduler answered the write: {answer:?}"
    );

    let scheduler = Scheduler::start(dir.path(), None);
    assert_eq!(
        app_status(&scheduler.url, "/durable/acked").await,
        200,
        "an acknowledged write was lost"
    );
    assert_eq!(
        app_status(&scheduler.url, "/durable/unacked").await,
        404,
        "a write killed before its durable commit survived: the kill did not land \
         where this test means it to, so it proves nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_an_agent_was_told_to_start_survives_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut scheduler = Scheduler::start(dir.path(), Some(SYNC_DELAY_MS));
    let mut agent = TestAgent::new("durable-1", (31000, 31100));
    agent.register(&scheduler.url).await;
    let resp = post_app(&scheduler.url, "/durable/placed")
        .await
        .expect("POST");
    assert_eq!(resp.status(), 201, "{:?}", resp.text().await);
    // Heartbeat until the answer assigns the task (the reconcile places it after the
    // write), then kill at once: the answer must not have left before the placement was
    // durable.
    let deadline = Instant::now() + Duration::from_secs(20);
    while agent.last_assignments.is_empty() {
        assert!(Instant::now() < deadline, "the task was never assigned");
        assert_eq!(agent.heartbeat(&scheduler.url).await, 200);
    }
    scheduler.kill_9();
    let told: Vec<String> = agent
        .last_assignments
        .iter()
        .map(|t| t.task_id.clone())
        .collect();

    let scheduler = Scheduler::start(dir.path(), None);
    let tasks: Value = client()
        .get(format!("{}/v2/apps/durable/placed/tasks", scheduler.url))
        .send()
        .await
        .expect("GET tasks")
        .json()
        .await
        .expect("tasks JSON");
    let known: Vec<&str> = tasks["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    for id in &told {
        assert!(
            known.contains(&id.as_str()),
            "the agent was told to start {id}, which the restarted scheduler does not know \
             (it knows {known:?})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_acknowledged_before_kill_9_survives_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut scheduler = Scheduler::start(dir.path(), None);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..40 {
        let url = scheduler.url.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let id = format!("/burst/app-{i:02}");
            if let Ok(resp) = post_app(&url, &id).await {
                if resp.status() == 201 {
                    let _ = tx.send(id);
                }
            }
        });
    }
    drop(tx);
    // Killed as soon as ten are acknowledged, the others in flight.
    let mut acked = Vec::new();
    while acked.len() < 10 {
        acked.push(rx.recv().await.expect("fewer than ten writes acknowledged"));
    }
    scheduler.kill_9();
    while let Ok(id) = rx.try_recv() {
        acked.push(id);
    }
    let scheduler = Scheduler::start(dir.path(), None);
    for id in &acked {
        assert_eq!(
            app_status(&scheduler.url, id).await,
            200,
            "{id} was acknowledged and then lost"
        );
    }
}
