//! The delta heartbeat protocol (`scheduler::delta`) against a real `infra scheduler`
//! process, with an agent written here that speaks it over HTTP: an agent holding the
//! current generation is answered without its task list (a few bytes however many tasks
//! it runs), a task left out of a delta is not lost, a change still reaches the agent, a
//! task missing from a full report is lost, a task killed before its agent ever had it
//! leaves on a delta, and a restarted scheduler asks for a full report.

#[path = "support/scheduler.rs"]
mod scheduler_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use infra::api::agent::{heartbeat_path, TaskState, TaskStatus};
use scheduler_support::{client, get_json, SchedulerProc, TestAgent};
use serde_json::{json, Value};

/// An answer to a generation the agent holds, with nothing to do, is at most this big
/// (`{"generation":N,"unchanged":true}`): the budget of a settled cluster's heartbeat.
const UNCHANGED_ANSWER_BYTES: usize = 64;

/// An agent speaking the delta protocol: it runs (in name) what it is told, reports
/// what it no longer is told to run as killed, and sends only what changed.
struct DeltaAgent {
    id: String,
    /// Task id -> (app id, state).
    tasks: BTreeMap<String, (String, TaskState)>,
    /// The state the scheduler last accepted of each task.
    sent: BTreeMap<String, TaskState>,
    generation: Option<u64>,
    /// It takes partial answers (`taskIds` with only the new specs).
    partial: bool,
}

/// One answer, as JSON and its size.
struct Answer {
    json: Value,
    bytes: usize,
}

impl Answer {
    fn tasks(&self) -> Option<Vec<String>> {
        self.json
            .get("tasks")
            .and_then(Value::as_array)
            .map(|tasks| {
                tasks
                    .iter()
                    .map(|t| t["taskId"].as_str().unwrap().to_string())
                    .collect()
            })
    }

    fn task_ids(&self) -> Option<Vec<String>> {
        self.json
            .get("taskIds")
            .and_then(Value::as_array)
            .map(|ids| {
                ids.iter()
                    .map(|id| id.as_str().unwrap().to_string())
                    .collect()
            })
    }

    fn unchanged(&self) -> bool {
        self.json["unchanged"] == json!(true)
    }

    fn full_report_asked(&self) -> bool {
        self.json["fullReport"] == json!(true)
    }
}

impl DeltaAgent {
    fn status(&self, id: &str) -> TaskStatus {
        let (app_id, state) = &self.tasks[id];
        TaskStatus {
            task_id: id.to_string(),
            app_id: app_id.clone(),
            state: *state,
            host_ports: Vec::new(),
            health: Vec::new(),
            started_at: Some("2020-01-01T00:00:00.000Z".into()),
            exit_code: None,
            message: None,
            ip_addresses: Vec::new(),
        }
    }

    /// One heartbeat: every task (`delta` false) or those that changed, but for the ids
    /// in `hide` (a task the agent lost track of); then applies the answer.
    async fn beat(&mut self, url: &str, delta: bool, hide: &[&str]) -> Answer {
        let ids: Vec<String> = self
            .tasks
            .iter()
            .filter(|(id, (_, state))| !delta || self.sent.get(*id) != Some(state))
            .map(|(id, _)| id.clone())
            .filter(|id| !hide.contains(&id.as_str()))
            .collect();
        let statuses: Vec<TaskStatus> = ids.iter().map(|id| self.status(id)).collect();
        let mut body = json!({"tasks": statuses, "busyPorts": [], "delta": delta,
                              "partial": self.partial});
        if let Some(generation) = self.generation {
            body["generation"] = json!(generation);
        }
        let resp = client()
            .post(format!("{url}{}", heartbeat_path(&self.id)))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let bytes = resp.bytes().await.unwrap();
        let answer = Answer {
            json: serde_json::from_slice(&bytes).unwrap(),
            bytes: bytes.len(),
        };
        for id in &ids {
            self.sent.insert(id.clone(), self.tasks[id].1);
        }
        // Reported once as ended: forgotten.
        self.tasks.retain(|_, (_, state)| !state.is_terminal());
        self.generation = answer.json["generation"].as_u64();
        assert!(self.generation.is_some(), "{}", answer.json);
        // The specs sent, and the ids wanted (all of them, in a partial answer).
        let specs: BTreeMap<String, String> = answer
            .json
            .get("tasks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|t| {
                let id = t["taskId"].as_str().unwrap().to_string();
                (id, t["appId"].as_str().unwrap().to_string())
            })
            .collect();
        let wanted = match answer.task_ids() {
            Some(ids) => Some(ids),
            None => answer.tasks(),
        };
        if let Some(wanted) = wanted {
            for (id, (_, state)) in self.tasks.iter_mut() {
                if !wanted.contains(id) {
                    *state = TaskState::Killed;
                }
            }
            for id in wanted {
                if let std::collections::btree_map::Entry::Vacant(entry) = self.tasks.entry(id) {
                    let app = specs.get(entry.key()).unwrap_or_else(|| {
                        panic!(
                            "{} is wanted but its spec was not sent: {}",
                            entry.key(),
                            answer.json
                        )
                    });
                    entry.insert((app.clone(), TaskState::Running));
                }
            }
        }
        answer
    }

    /// Delta heartbeats until `done` holds of an answer (panics after 20 s).
    async fn beat_until(&mut self, url: &str, done: impl Fn(&Answer) -> bool) -> Answer {
        let start = Instant::now();
        loop {
            let answer = self.beat(url, true, &[]).await;
            if done(&answer) {
                return answer;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "not reached; last answer {}",
                answer.json
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Delta heartbeats until no deployment is left (panics after 20 s, naming `what`).
    async fn beat_until_deployed(&mut self, url: &str, what: &str) {
        let start = Instant::now();
        while deployments(url).await > 0 {
            self.beat(url, true, &[]).await;
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{what} never ended"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn app_tasks(url: &str) -> Vec<String> {
    let app = get_json(&format!("{url}/v2/apps/delta?embed=apps.tasks")).await;
    app["app"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

async fn scale(url: &str, instances: u32, force: bool) {
    let resp = client()
        .put(format!("{url}/v2/apps/delta?force={force}"))
        .json(&json!({"instances": instances}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
}

async fn deployments(url: &str) -> usize {
    get_json(&format!("{url}/v2/deployments"))
        .await
        .as_array()
        .unwrap()
        .len()
}

/// A scheduler (data in `dir`) with one registered agent `name` (`partial`: it takes
/// partial answers) that has sent no heartbeat yet, and an app `/delta` of 2 instances.
async fn start_with_app(
    dir: &std::path::Path,
    name: &str,
    partial: bool,
) -> (SchedulerProc, DeltaAgent) {
    let scheduler = SchedulerProc::start(dir, &["--agent-timeout", "60s"]);
    let url = scheduler.url.clone();
    let registered = TestAgent::new(name, (31000, 31100));
    registered.register(&url).await;
    let agent = DeltaAgent {
        id: registered.id.clone(),
        tasks: BTreeMap::new(),
        sent: BTreeMap::new(),
        generation: None,
        partial,
    };
    let resp = client()
        .post(format!("{url}/v2/apps"))
        .json(&json!({"id": "/delta", "cmd": "sleep 1000", "instances": 2,
                      "cpus": 0.1, "mem": 16}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    (scheduler, agent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_heartbeats_carry_only_changes_and_reconciliation_still_finds_lost_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let (scheduler, mut agent) = start_with_app(dir.path(), "delta-1", false).await;
    let url = scheduler.url.clone();

    // The first heartbeat is full; the answer carries the list and a generation.
    let start = Instant::now();
    loop {
        let answer = agent.beat(&url, false, &[]).await;
        if answer.tasks().is_some_and(|t| t.len() == 2) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{}", answer.json);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = agent.generation;
    // Reporting them (the agent holds the current list): no list in the answer.
    let answer = agent.beat(&url, true, &[]).await;
    assert!(answer.unchanged(), "{}", answer.json);
    assert_eq!(answer.tasks(), None);
    assert_eq!(agent.generation, first);
    // A settled agent: an empty delta and a few bytes back.
    let answer = agent.beat(&url, true, &[]).await;
    assert!(
        answer.unchanged() && !answer.full_report_asked(),
        "{}",
        answer.json
    );
    assert!(
        answer.bytes <= UNCHANGED_ANSWER_BYTES,
        "{} bytes: {}",
        answer.bytes,
        answer.json
    );
    // Tasks a delta leaves out are as last reported, not lost.
    assert_eq!(app_tasks(&url).await.len(), 2);
    let app = get_json(&format!("{url}/v2/apps/delta")).await;
    assert_eq!(app["app"]["tasksRunning"], json!(2));

    // A change reaches the agent holding an older generation.
    scale(&url, 3, false).await;
    let answer = agent
        .beat_until(&url, |a| a.tasks().is_some_and(|t| t.len() == 3))
        .await;
    assert_ne!(answer.json["generation"].as_u64(), first);
    agent.beat_until(&url, Answer::unchanged).await;
    agent.beat_until_deployed(&url, "scale-up").await;

    // A task missing from a full report is lost (and replaced).
    let running = app_tasks(&url).await;
    assert_eq!(running.len(), 3);
    let gone = running[0].clone();
    agent.tasks.remove(&gone);
    agent.beat(&url, false, &[]).await;
    let start = Instant::now();
    loop {
        let tasks = app_tasks(&url).await;
        if !tasks.contains(&gone) && tasks.len() == 3 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{gone} was not lost"
        );
        agent.beat(&url, true, &[]).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    agent.beat_until(&url, Answer::unchanged).await;
    // While a delta that leaves a task out loses nothing.
    let held = app_tasks(&url).await;
    let answer = agent.beat(&url, true, &[held[0].as_str()]).await;
    assert!(answer.unchanged(), "{}", answer.json);
    assert_eq!(app_tasks(&url).await, held);

    // A task placed and killed before the agent had it (scaled up, then down at once:
    // the youngest goes) leaves on the agent's next deltas, not at a full report.
    agent.beat_until_deployed(&url, "recovery").await;
    scale(&url, 4, false).await;
    scale(&url, 3, true).await;
    for _ in 0..3 {
        agent.beat(&url, true, &[]).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app_tasks(&url).await.len(), 3);
    assert_eq!(
        deployments(&url).await,
        0,
        "the killed task is still waited for"
    );
    let running: Vec<String> = agent.tasks.keys().cloned().collect();
    assert_eq!(running, {
        let mut held = app_tasks(&url).await;
        held.sort();
        held
    });

    // A restarted scheduler has no baseline: it asks for everything, and gets it.
    drop(scheduler);
    let scheduler = SchedulerProc::start(dir.path(), &["--agent-timeout", "60s"]);
    let url = scheduler.url.clone();
    let answer = agent.beat(&url, true, &[]).await;
    assert!(answer.full_report_asked(), "{}", answer.json);
    assert_eq!(answer.tasks().map(|t| t.len()), Some(3), "a new generation");
    let answer = agent.beat(&url, false, &[]).await;
    assert!(
        answer.unchanged() && !answer.full_report_asked(),
        "{}",
        answer.json
    );
    let answer = agent.beat(&url, true, &[]).await;
    assert!(
        answer.unchanged() && !answer.full_report_asked(),
        "{}",
        answer.json
    );
}

/// An agent that takes partial answers gets, when its list changes, every task's id and
/// the specs of only the tasks it does not have yet; one holding a generation the
/// scheduler no longer answers from gets the whole list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_answers_carry_every_id_and_only_the_new_specs() {
    let dir = tempfile::tempdir().unwrap();
    let (scheduler, mut agent) = start_with_app(dir.path(), "partial-1", true).await;
    let url = scheduler.url.clone();
    // Both tasks are new to the agent: both specs (whether the answer is whole or partial).
    agent
        .beat_until(&url, |a| a.tasks().is_some_and(|t| t.len() == 2))
        .await;
    let first = agent.generation;
    agent.beat_until(&url, Answer::unchanged).await;
    agent.beat_until_deployed(&url, "the deploy").await;
    let before: Vec<String> = agent.tasks.keys().cloned().collect();

    // One more instance: three ids, one spec.
    scale(&url, 3, false).await;
    let answer = agent.beat_until(&url, |a| a.task_ids().is_some()).await;
    let ids = answer.task_ids().unwrap();
    let sent = answer.tasks().unwrap();
    assert_eq!(ids.len(), 3, "{}", answer.json);
    assert_eq!(sent.len(), 1, "only the new task's spec: {}", answer.json);
    assert!(!before.contains(&sent[0]) && ids.contains(&sent[0]));
    agent.beat_until(&url, Answer::unchanged).await;
    agent.beat_until_deployed(&url, "the scale-up").await;

    // Down to one: the ids of what stays, no spec.
    scale(&url, 1, false).await;
    let answer = agent
        .beat_until(&url, |a| a.task_ids().is_some_and(|ids| ids.len() == 1))
        .await;
    assert_eq!(answer.tasks(), Some(Vec::new()), "{}", answer.json);
    agent.beat_until_deployed(&url, "the scale-down").await;
    let start = Instant::now();
    while app_tasks(&url).await.len() > 1 {
        assert!(start.elapsed() < Duration::from_secs(20), "never killed");
        agent.beat(&url, true, &[]).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let running: Vec<String> = agent
        .tasks
        .iter()
        .filter(|(_, (_, state))| !state.is_terminal())
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(app_tasks(&url).await, running);
    assert_eq!(running.len(), 1);

    // A generation acknowledged long ago: the whole list.
    scale(&url, 2, false).await;
    let start = Instant::now();
    while app_tasks(&url).await.len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(20), "never placed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    agent.generation = first;
    let answer = agent.beat(&url, true, &[]).await;
    assert_eq!(answer.task_ids(), None, "{}", answer.json);
    assert_eq!(answer.tasks().map(|t| t.len()), Some(2), "{}", answer.json);
}
