//! The scheduler end to end over HTTP: the real `infra scheduler` binary on loopback, agents
//! speaking the real agent protocol (tests/support/scheduler.rs), Marathon's API.

#[path = "support/scheduler.rs"]
mod scheduler_support;

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scheduler_support::{client, get_json, get_text, pump_until, SchedulerProc, TestAgent};
use serde_json::{json, Value};

async fn app(url: &str, id: &str) -> Value {
    get_json(&format!("{url}/v2/apps{id}")).await["app"].clone()
}

async fn tasks(url: &str, id: &str) -> Vec<Value> {
    get_json(&format!("{url}/v2/apps{id}/tasks")).await["tasks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn task_ids(tasks: &[Value]) -> BTreeSet<String> {
    tasks
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

async fn settled(url: &str, id: &str, running: u64) -> bool {
    let a = app(url, id).await;
    a["tasksRunning"] == json!(running)
        && a["deployments"].as_array().is_some_and(|d| d.is_empty())
        && tasks(url, id).await.len() as u64 == running
}

/// Collects the events an SSE client of `url`'s `/v2/events` sees.
fn watch_events(url: &str) -> Arc<Mutex<Vec<Value>>> {
    scheduler_support::watch_events(format!("{url}/v2/events"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_placement_scaling_healing_lost_agents_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut sched = SchedulerProc::start(dir.path(), &["--agent-timeout", "2s"]);
    let url = sched.url.clone();
    let events = watch_events(&url);
    let mut a1 = TestAgent::new("h1", (31000, 31099));
    let mut a2 = TestAgent::new("h2", (32000, 32099));
    let mut a3 = TestAgent::new("h3", (33000, 33099));
    for a in [&a1, &a2, &a3] {
        a.register(&url).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Deploy 3 instances with hostname UNIQUE.
    let resp = client()
        .post(format!("{url}/v2/apps"))
        .json(&json!({
            "id": "/web", "cmd": "python3 -m http.server $PORT0", "instances": 3,
            "cpus": 0.1, "mem": 32, "constraints": [["hostname", "UNIQUE"]],
            "backoffSeconds": 1, "backoffFactor": 2, "labels": {"tier": "front"},
            "portDefinitions": [{"port": 0, "name": "http"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert!(resp.headers().get("Marathon-Deployment-Id").is_some());
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["id"], "/web");
    assert!(created["portDefinitions"][0]["port"].as_u64().unwrap() >= 10000);
    pump_until(
        &url,
        &mut [&mut a1, &mut a2, &mut a3],
        Duration::from_secs(10),
        || {
            let url = url.clone();
            async move { settled(&url, "/web", 3).await }
        },
    )
    .await;
    for (agent, range) in [
        (&a1, (31000, 31099)),
        (&a2, (32000, 32099)),
        (&a3, (33000, 33099)),
    ] {
        let running = agent.running();
        assert_eq!(running.len(), 1, "one task per agent on {}", agent.hostname);
        let spec = running[0];
        assert!(spec.task_id.starts_with("web."));
        let port0: u16 = spec.env["PORT0"].parse().unwrap();
        assert!(
            port0 >= range.0 && port0 <= range.1,
            "PORT0 from the agent's range"
        );
        assert_eq!(spec.env["PORT"], spec.env["PORT0"]);
        assert_eq!(spec.env["PORT_HTTP"], spec.env["PORT0"]);
        assert_eq!(spec.env["HOST"], "127.0.0.1");
        assert_eq!(spec.env["MARATHON_APP_ID"], "/web");
        assert_eq!(spec.env["MESOS_TASK_ID"], spec.task_id);
        assert_eq!(spec.env["MARATHON_APP_LABELS"], "TIER");
        assert_eq!(spec.host_ports, vec![port0]);
    }

    // Scale to 5: only 3 hosts, so 2 stay queued with the reason.
    let resp = client()
        .put(format!("{url}/v2/apps/web"))
        .json(&json!({"instances": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(body["deploymentId"].is_string() && body["version"].is_string());
    pump_until(
        &url,
        &mut [&mut a1, &mut a2, &mut a3],
        Duration::from_secs(10),
        || {
            let url = url.clone();
            async move {
                let q = get_json(&format!("{url}/v2/queue")).await;
                q["queue"][0]["count"] == json!(2)
            }
        },
    )
    .await;
    let queue = get_json(&format!("{url}/v2/queue")).await;
    assert_eq!(queue["queue"][0]["app"]["id"], "/web");
    assert_eq!(
        queue["queue"][0]["reason"],
        "constraint hostname UNIQUE not satisfiable"
    );
    assert_eq!(tasks(&url, "/web").await.len(), 3);

    // The app is locked by the unfinished deployment: 409 without force.
    let resp = client()
        .put(format!("{url}/v2/apps/web"))
        .json(&json!({"instances": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let body: Value = resp.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("locked"));
    let resp = client()
        .put(format!("{url}/v2/apps/web?force=true"))
        .json(&json!({"instances": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    pump_until(
        &url,
        &mut [&mut a1, &mut a2, &mut a3],
        Duration::from_secs(10),
        || {
            let url = url.clone();
            async move {
                settled(&url, "/web", 2).await
                    && get_json(&format!("{url}/v2/queue")).await["queue"] == json!([])
            }
        },
    )
    .await;
    let total: usize = [&a1, &a2, &a3].iter().map(|a| a.running().len()).sum();
    assert_eq!(total, 2, "agents were told to kill the third task");

    // A task that fails is replaced, after the backoff (1s).
    let before = task_ids(&tasks(&url, "/web").await);
    let (failing_agent, failed_id) = {
        let agent = [&mut a1, &mut a2, &mut a3]
            .into_iter()
            .find(|a| !a.running().is_empty())
            .unwrap();
        let id = agent.running()[0].task_id.clone();
        agent.fail(&id);
        (agent.id.clone(), id)
    };
    let failed_at = Instant::now();
    let replaced_after: Arc<Mutex<Option<Duration>>> = Arc::new(Mutex::new(None));
    pump_until(
        &url,
        &mut [&mut a1, &mut a2, &mut a3],
        Duration::from_secs(10),
        || {
            let url = url.clone();
            let before = before.clone();
            let failed_id = failed_id.clone();
            let replaced = replaced_after.clone();
            async move {
                let now = task_ids(&tasks(&url, "/web").await);
                let gone = !now.contains(&failed_id);
                let new = now.difference(&before).count() == 1;
                if gone && new {
                    replaced
                        .lock()
                        .unwrap()
                        .get_or_insert_with(|| failed_at.elapsed());
                }
                gone && new && settled(&url, "/web", 2).await
            }
        },
    )
    .await;
    let waited = replaced_after.lock().unwrap().unwrap();
    assert!(
        waited >= Duration::from_millis(900),
        "replaced after the backoff, not before: {waited:?}"
    );
    let web = app(&url, "/web").await;
    let typed: infra::api::marathon::App = serde_json::from_value(web.clone()).unwrap();
    assert_eq!(typed.tasks.as_ref().map(Vec::len), Some(2));
    assert_eq!(typed.tasks_running, Some(2));
    assert_eq!(web["lastTaskFailure"]["taskId"], json!(failed_id));
    assert_eq!(web["lastTaskFailure"]["state"], "TASK_FAILED");
    let _ = failing_agent;

    // An agent that stops heartbeating is lost; its task is replaced on the others.
    let silent_index = [&a1, &a2, &a3]
        .iter()
        .position(|a| !a.running().is_empty())
        .unwrap();
    let mut agents = vec![a1, a2, a3];
    let mut silent = agents.remove(silent_index);
    let lost_task = silent.running()[0].task_id.clone();
    let lost_at = Instant::now();
    {
        let (x, y) = agents.split_at_mut(1);
        pump_until(
            &url,
            &mut [&mut x[0], &mut y[0]],
            Duration::from_secs(15),
            || {
                let url = url.clone();
                let lost_task = lost_task.clone();
                async move {
                    let now = task_ids(&tasks(&url, "/web").await);
                    !now.contains(&lost_task) && settled(&url, "/web", 2).await
                }
            },
        )
        .await;
    }
    assert!(
        lost_at.elapsed() >= Duration::from_secs(2),
        "not before the agent timeout"
    );
    let on_others: usize = agents.iter().map(|a| a.running().len()).sum();
    assert_eq!(on_others, 2);
    // It comes back: its old task is no longer assigned, so it is killed.
    silent.heartbeat(&url).await;
    assert!(silent
        .last_assignments
        .iter()
        .all(|t| t.task_id != lost_task));
    assert!(silent.running().is_empty());

    // Restart the scheduler (SIGKILL) on the same data dir: same apps and task ids.
    let ids_before = task_ids(&tasks(&url, "/web").await);
    let version_before = app(&url, "/web").await["version"].clone();
    sched.kill();
    let sched2 = SchedulerProc::start(dir.path(), &["--agent-timeout", "2s"]);
    let url2 = sched2.url.clone();
    let (x, y) = agents.split_at_mut(1);
    for _ in 0..5 {
        x[0].heartbeat(&url2).await;
        y[0].heartbeat(&url2).await;
        silent.heartbeat(&url2).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        task_ids(&tasks(&url2, "/web").await),
        ids_before,
        "tasks adopted, none restarted"
    );
    let web = app(&url2, "/web").await;
    assert_eq!(web["version"], version_before);
    assert_eq!(web["tasksRunning"], json!(2));
    let running_ids: BTreeSet<String> = x[0]
        .running()
        .into_iter()
        .chain(y[0].running())
        .chain(silent.running())
        .map(|t| t.task_id.clone())
        .collect();
    assert_eq!(running_ids, ids_before);

    // The event stream of the first scheduler saw the whole story.
    let seen: HashSet<String> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| e["eventType"].as_str().map(str::to_string))
        .collect();
    for kind in [
        "event_stream_attached",
        "api_post_event",
        "status_update_event",
        "instance_changed_event",
        "deployment_info",
        "deployment_success",
        "deployment_failed",
    ] {
        assert!(seen.contains(kind), "missing {kind} in {seen:?}");
    }
    let lost_seen = events.lock().unwrap().iter().any(|e| {
        e["eventType"] == "status_update_event"
            && e["taskStatus"] == "TASK_LOST"
            && e["taskId"] == json!(lost_task)
    });
    assert!(lost_seen, "TASK_LOST event for the lost agent's task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_marathons_shapes_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sched = SchedulerProc::start(dir.path(), &[]);
    let url = &sched.url;
    let post = |body: &'static str| {
        client()
            .post(format!("{url}/v2/apps"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    let resp = post("{not json").await.unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["message"], "Invalid JSON");

    for (def, path) in [
        (r#"{"id": "/a", "cmd": "x", "cpus": 0}"#, "/cpus"),
        (r#"{"id": "/a", "cmd": "x", "instances": -1}"#, "/instances"),
        (r#"{"id": "/Bad_Id", "cmd": "x"}"#, "/id"),
        (
            r#"{"id": "/a", "cmd": "x", "constraints": [["hostname", "NEAR"]]}"#,
            "/constraints",
        ),
        (r#"{"id": "/a", "cmd": "x", "mem": -5}"#, "/mem"),
        (r#"{"id": "/a", "cmd": "x", "args": ["y"]}"#, "/"),
    ] {
        let resp = post(def).await.unwrap();
        assert_eq!(resp.status(), 422, "{def}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["message"], "Object is not valid");
        let paths: Vec<&str> = body["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths, vec![path], "{def}");
        assert!(!body["details"][0]["errors"][0].as_str().unwrap().is_empty());
    }
    assert_eq!(get_json(&format!("{url}/v2/apps")).await["apps"], json!([]));

    let resp = client()
        .get(format!("{url}/v2/apps/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["message"], "App '/nope' does not exist");

    let resp = post(r#"{"id": "/dup", "cmd": "sleep 100", "instances": 0}"#)
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let resp = post(r#"{"id": "dup", "cmd": "sleep 100"}"#).await.unwrap();
    assert_eq!(resp.status(), 409);
    let body: Value = resp.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("/dup"));

    // Still the first definition.
    let app = get_json(&format!("{url}/v2/apps/dup")).await;
    assert_eq!(app["app"]["instances"], json!(0));
    assert_eq!(
        client()
            .get(format!("{url}/ping"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "pong"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_keeps_half_the_instances_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let sched = SchedulerProc::start(dir.path(), &[]);
    let url = sched.url.clone();
    let mut a1 = TestAgent::new("r1", (31000, 31099));
    let mut a2 = TestAgent::new("r2", (32000, 32099));
    a1.start_delay = 3;
    a2.start_delay = 3;
    a1.register(&url).await;
    a2.register(&url).await;
    let resp = client()
        .post(format!("{url}/v2/apps"))
        .json(&json!({
            "id": "/svc/api", "cmd": "serve", "instances": 4, "cpus": 0.1, "mem": 16,
            "healthChecks": [{"protocol": "HTTP", "path": "/health", "gracePeriodSeconds": 5}],
            "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    pump_until(
        &url,
        &mut [&mut a1, &mut a2],
        Duration::from_secs(15),
        || {
            let url = url.clone();
            async move {
                let a = app(&url, "/svc/api").await;
                a["tasksHealthy"] == json!(4) && a["deployments"] == json!([])
            }
        },
    )
    .await;
    let old = task_ids(&tasks(&url, "/svc/api").await);
    assert!(old.iter().all(|id| id.starts_with("svc_api.")));
    let resp = client()
        .post(format!("{url}/v2/apps/svc/api/restart"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut min_healthy = u64::MAX;
    let mut max_total = 0;
    let start = Instant::now();
    loop {
        a1.heartbeat(&url).await;
        a2.heartbeat(&url).await;
        let a = app(&url, "/svc/api").await;
        min_healthy = min_healthy.min(a["tasksHealthy"].as_u64().unwrap());
        let now = tasks(&url, "/svc/api").await;
        let live = now.iter().filter(|t| t["state"] != "TASK_KILLING").count();
        max_total = max_total.max(live);
        let ids = task_ids(&now);
        if a["deployments"] == json!([])
            && a["tasksHealthy"] == json!(4)
            && ids.is_disjoint(&old)
            && ids.len() == 4
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "restart did not finish"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(min_healthy >= 2, "healthy dropped to {min_healthy}");
    assert!(
        max_total <= 4,
        "maximumOverCapacity 0 exceeded: {max_total}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_tasks_text_deployments_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let sched = SchedulerProc::start(dir.path(), &["--placement", "binpack"]);
    let url = sched.url.clone();
    let mut a1 = TestAgent::new("b1", (31000, 31099));
    let mut a2 = TestAgent::new("b2", (32000, 32099));
    a1.register(&url).await;
    a2.register(&url).await;
    let resp = client()
        .post(format!("{url}/v2/apps"))
        .json(
            &json!({"id": "/pack", "cmd": "sleep 1000", "instances": 3, "cpus": 0.5, "mem": 16,
                      "fetch": [{"uri": "http://example.invalid/x.tgz"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    pump_until(
        &url,
        &mut [&mut a1, &mut a2],
        Duration::from_secs(10),
        || {
            let url = url.clone();
            async move { settled(&url, "/pack", 3).await }
        },
    )
    .await;
    // Binpack: all on one agent.
    assert!(a1.running().len() == 3 || a2.running().len() == 3);

    let text = client()
        .get(format!("{url}/v2/tasks"))
        .header("Accept", "text/plain")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = text.lines().next().unwrap();
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!(fields[0], "pack");
    assert!(fields[1].parse::<u32>().unwrap() >= 10000);
    assert_eq!(
        fields
            .iter()
            .filter(|f| f.starts_with("127.0.0.1:"))
            .count(),
        3
    );
    let json_tasks = get_json(&format!("{url}/v2/tasks")).await;
    assert_eq!(json_tasks["tasks"].as_array().unwrap().len(), 3);

    // A definition change makes a new version; both versions are readable.
    let resp = client()
        .put(format!("{url}/v2/apps/pack"))
        .json(&json!({"cmd": "sleep 2000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("Marathon-Deployment-Id").is_some());
    let deployments = get_json(&format!("{url}/v2/deployments")).await;
    assert_eq!(deployments[0]["affectedApps"], json!(["/pack"]));
    assert_eq!(
        deployments[0]["steps"][0]["actions"][0]["action"],
        "RestartApplication"
    );
    let versions = get_json(&format!("{url}/v2/apps/pack/versions")).await["versions"].clone();
    assert_eq!(versions.as_array().unwrap().len(), 2);
    let oldest = versions[1].as_str().unwrap();
    let old_def = get_json(&format!("{url}/v2/apps/pack/versions/{oldest}")).await;
    assert_eq!(old_def["cmd"], "sleep 1000");
    assert_eq!(
        old_def["fetch"],
        json!([{"uri": "http://example.invalid/x.tgz"}])
    );
    pump_until(
        &url,
        &mut [&mut a1, &mut a2],
        Duration::from_secs(10),
        || {
            let url = url.clone();
            async move { settled(&url, "/pack", 3).await }
        },
    )
    .await;
    let all: Vec<&str> = a1
        .running()
        .into_iter()
        .chain(a2.running())
        .map(|t| t.cmd.as_deref().unwrap())
        .collect();
    assert_eq!(all, vec!["sleep 2000"; 3]);

    // Kill one task with scale=true: instances drop to 2.
    let one = tasks(&url, "/pack").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = client()
        .delete(format!("{url}/v2/apps/pack/tasks/{one}?scale=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    pump_until(
        &url,
        &mut [&mut a1, &mut a2],
        Duration::from_secs(10),
        || {
            let url = url.clone();
            async move { settled(&url, "/pack", 2).await }
        },
    )
    .await;
    assert_eq!(app(&url, "/pack").await["instances"], json!(2));

    // POST /v2/tasks/delete without scale: the task is replaced.
    let before = task_ids(&tasks(&url, "/pack").await);
    let victim = before.iter().next().unwrap().clone();
    let resp = client()
        .post(format!("{url}/v2/tasks/delete"))
        .json(&json!({"ids": [victim]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    pump_until(
        &url,
        &mut [&mut a1, &mut a2],
        Duration::from_secs(10),
        || {
            let url = url.clone();
            let victim = victim.clone();
            async move {
                let now = task_ids(&tasks(&url, "/pack").await);
                !now.contains(&victim) && settled(&url, "/pack", 2).await
            }
        },
    )
    .await;
    assert_eq!(app(&url, "/pack").await["instances"], json!(2));

    // Label filter and metrics.
    let apps = get_json(&format!("{url}/v2/apps?id=pa&embed=apps.tasks")).await;
    assert_eq!(apps["apps"][0]["tasks"].as_array().unwrap().len(), 2);
    let metrics = get_text(&format!("{url}/metrics")).await;
    assert!(
        metrics.contains("infra_scheduler_tasks_running 2"),
        "{metrics}"
    );

    // Delete: tasks are killed, the app is gone.
    let resp = client()
        .delete(format!("{url}/v2/apps/pack"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    pump_until(
        &url,
        &mut [&mut a1, &mut a2],
        Duration::from_secs(10),
        || {
            let url = url.clone();
            async move { get_json(&format!("{url}/v2/tasks")).await["tasks"] == json!([]) }
        },
    )
    .await;
    assert!(a1.running().is_empty() && a2.running().is_empty());
    let resp = client()
        .get(format!("{url}/v2/apps/pack"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unhealthy_tasks_are_killed_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let sched = SchedulerProc::start(dir.path(), &[]);
    let url = sched.url.clone();
    let events = watch_events(&url);
    let mut agent = TestAgent::new("u1", (31000, 31099));
    agent.healthy = false;
    agent.register(&url).await;
    let resp = client()
        .post(format!("{url}/v2/apps"))
        .json(&json!({
            "id": "/sick", "cmd": "serve", "instances": 1, "cpus": 0.1, "mem": 16,
            "backoffSeconds": 0.2,
            "healthChecks": [{"protocol": "TCP", "gracePeriodSeconds": 0, "maxConsecutiveFailures": 1}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    pump_until(&url, &mut [&mut agent], Duration::from_secs(10), || {
        let url = url.clone();
        async move { !tasks(&url, "/sick").await.is_empty() }
    })
    .await;
    let first = task_ids(&tasks(&url, "/sick").await);
    pump_until(&url, &mut [&mut agent], Duration::from_secs(10), || {
        let url = url.clone();
        let first = first.clone();
        async move {
            let now = task_ids(&tasks(&url, "/sick").await);
            !now.is_empty() && now.is_disjoint(&first)
        }
    })
    .await;
    let seen = events.lock().unwrap().clone();
    assert!(seen
        .iter()
        .any(|e| e["eventType"] == "failed_health_check_event" && e["appId"] == "/sick"));
    assert!(seen
        .iter()
        .any(|e| e["eventType"] == "health_status_changed_event" && e["alive"] == json!(false)));
    let sick = app(&url, "/sick").await;
    assert_eq!(sick["lastTaskFailure"]["message"], "unhealthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies_order_the_deployment_steps() {
    let dir = tempfile::tempdir().unwrap();
    let sched = SchedulerProc::start(dir.path(), &[]);
    let url = sched.url.clone();
    let mut agent = TestAgent::new("d1", (31000, 31099));
    agent.register(&url).await;
    let resp = client()
        .put(format!("{url}/v2/apps"))
        .json(&json!([
            {"id": "/dep/front", "cmd": "f", "instances": 1, "cpus": 0.1, "mem": 16, "dependencies": ["/dep/db"]},
            {"id": "/dep/db", "cmd": "d", "instances": 1, "cpus": 0.1, "mem": 16}
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let deployments = get_json(&format!("{url}/v2/deployments")).await;
    assert_eq!(deployments[0]["steps"][0]["actions"][0]["app"], "/dep/db");
    assert_eq!(
        deployments[0]["steps"][1]["actions"][0]["app"],
        "/dep/front"
    );
    assert_eq!(deployments[0]["totalSteps"], json!(2));
    // Until the agent reports db running, front waits.
    pump_until(&url, &mut [], Duration::from_secs(5), || {
        let url = url.clone();
        async move { tasks(&url, "/dep/db").await.len() == 1 }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        tasks(&url, "/dep/front").await.is_empty(),
        "front starts after db"
    );
    pump_until(&url, &mut [&mut agent], Duration::from_secs(10), || {
        let url = url.clone();
        async move { settled(&url, "/dep/db", 1).await && settled(&url, "/dep/front", 1).await }
    })
    .await;
    assert_eq!(get_json(&format!("{url}/v2/deployments")).await, json!([]));
}
