//! The HA scheduler on loopback with real components only: a 3-member etcd cluster
//! (Debian's etcd-server), 3 `infra scheduler --etcd` processes and 3 real `infra agent`
//! processes running `python3 -m http.server` tasks with HTTP health checks. Leaders are
//! killed with SIGKILL, frozen with SIGSTOP, etcd members killed, while a sampler polls
//! every node's `/v2/tasks` and the agents' task tables every 100 ms.
//!
//! The tests run one at a time (each cluster is 9 processes plus tasks on a shared machine).

#[path = "support/agent.rs"]
mod agent_support;
#[path = "support/etcd.rs"]
mod etcd;
#[path = "support/ha.rs"]
mod ha;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use agent_support::pid_alive;
use etcd::EtcdCluster;
use ha::*;
use reqwest::Method;
use serde_json::{json, Value};

/// One cluster at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The bound for replacing a killed leader with the default `--leader-ttl 2s`
/// (target p50 <= 3 s, max <= 5 s).
const FAILOVER_BOUND: Duration = Duration::from_secs(5);

fn web_app(id: &str, instances: usize) -> Value {
    json!({
        "id": id,
        "cmd": "exec python3 -m http.server $PORT0 --bind 127.0.0.1",
        "instances": instances,
        "cpus": 0.1,
        "mem": 32,
        "portDefinitions": [{"port": 0}],
        "backoffSeconds": 1,
        "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0,
            "gracePeriodSeconds": 30, "intervalSeconds": 1, "timeoutSeconds": 2,
            "maxConsecutiveFailures": 3}],
    })
}

fn empty_app(id: &str) -> Value {
    json!({"id": id, "cmd": "sleep 1000", "instances": 0, "cpus": 0.1, "mem": 16})
}

/// POSTs an app definition to `url` and checks it was created (201).
async fn create_app(url: &str, app: &Value) -> Reply {
    let reply = request(
        url,
        Method::POST,
        "/v2/apps",
        Some(app),
        &[],
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply
}

/// Sends until the answer is not a 503 (no leader yet), for at most `timeout`.
async fn send_until_led(
    url: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> Reply {
    let start = Instant::now();
    loop {
        let reply = request(
            url,
            method.clone(),
            path,
            body,
            &[],
            Duration::from_secs(10),
        )
        .await;
        match reply {
            Ok(r) if r.status != 503 => return r,
            other if start.elapsed() > timeout => {
                panic!("{method} {url}{path}: still no answer from a leader after {timeout:?}: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Waits until `url` shows `n` tasks of `app`, all running and healthy, and no deployment.
async fn wait_app(url: &str, app: &str, n: usize, timeout: Duration) -> Value {
    let start = Instant::now();
    let mut last = Value::Null;
    loop {
        if let Ok(r) = request(
            url,
            Method::GET,
            &format!("/v2/apps{app}"),
            None,
            &[],
            Duration::from_secs(2),
        )
        .await
        {
            if r.status == 200 {
                let a = &r.body["app"];
                let done = a["tasksRunning"] == json!(n)
                    && a["tasksHealthy"] == json!(n)
                    && a["tasks"].as_array().map(|t| t.len()) == Some(n)
                    && a["deployments"]
                        .as_array()
                        .map(|d| d.is_empty())
                        .unwrap_or(false);
                if done {
                    return a.clone();
                }
                last = a.clone();
            }
        }
        if start.elapsed() > timeout {
            panic!(
                "{app} on {url}: not {n} running healthy tasks without a deployment after {timeout:?}; last: \
                 running {} healthy {} tasks {} deployments {}",
                last["tasksRunning"], last["tasksHealthy"],
                last["tasks"].as_array().map(|t| t.len()).unwrap_or(0), last["deployments"]
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// (id -> startedAt) of the app's tasks on `url`.
async fn started_at(url: &str, app: &str) -> BTreeMap<String, Option<String>> {
    app_tasks(url, app)
        .await
        .into_iter()
        .map(|t| (t.id, t.started_at))
        .collect()
}

/// Some follower of `leader`.
fn follower(cluster: &HaCluster, leader: usize) -> usize {
    (0..cluster.nodes.len())
        .find(|&i| i != leader && cluster.nodes[i].live())
        .expect("a live follower")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_harness_three_members_replicate_survive_one_loss_and_keep_history() {
    let _serial = SERIAL.lock().await;
    let mut etcd = EtcdCluster::start(3).await;
    assert_eq!(etcd.client_urls().split(',').count(), 3);

    // A write through one member is read through the others (linearizable reads).
    let rev1 = etcd::put(etcd.client_url(0), "/t/a", "one").await.unwrap();
    for i in 1..3 {
        let kv = etcd::get(etcd.client_url(i), "/t/a")
            .await
            .unwrap()
            .expect("/t/a");
        assert_eq!(kv.value_str(), "one");
        assert_eq!(kv.mod_revision, rev1);
    }

    // One member killed: the other two still commit; restarted, it catches up.
    etcd.kill(0);
    let rev2 = etcd::put_retry(etcd.client_url(1), "/t/a", "two", Duration::from_secs(20)).await;
    assert!(rev2 > rev1);
    assert_eq!(
        etcd::get(etcd.client_url(2), "/t/a")
            .await
            .unwrap()
            .unwrap()
            .value_str(),
        "two"
    );
    etcd.restart(0);
    etcd.wait_healthy(&[0], Duration::from_secs(20)).await;
    assert_eq!(
        etcd::get(etcd.client_url(0), "/t/a")
            .await
            .unwrap()
            .unwrap()
            .value_str(),
        "two"
    );

    // A frozen member does not answer; thawed, it serves again.
    etcd.stop(2);
    assert!(
        !etcd.healthy(2).await,
        "a SIGSTOPped member answered /health"
    );
    // (If it was etcd's raft leader, writes time out until the others elect a new one.)
    etcd::put_retry(etcd.client_url(0), "/t/b", "three", Duration::from_secs(20)).await;
    etcd.cont(2);
    etcd.wait_healthy(&[2], Duration::from_secs(20)).await;
    assert_eq!(
        etcd::get(etcd.client_url(2), "/t/b")
            .await
            .unwrap()
            .unwrap()
            .value_str(),
        "three"
    );

    // Two of three down: no quorum, no member is healthy; restarted, the cluster recovers.
    etcd.kill(1);
    etcd.kill(2);
    assert!(
        !etcd.healthy(0).await,
        "one member of three reported healthy"
    );
    etcd.restart(1);
    etcd.restart(2);
    etcd.wait_healthy(&[0, 1, 2], Duration::from_secs(30)).await;
    let rev4 = etcd::put_retry(etcd.client_url(2), "/t/a", "four", Duration::from_secs(20)).await;

    // The revision history under the prefix: every write, in order, with previous values.
    let (kvs, now) = etcd::get_prefix(etcd.client_url(1), "/t/").await.unwrap();
    assert_eq!(kvs.len(), 2);
    assert_eq!(now, rev4);
    let events = etcd::history(etcd.client_url(0), "/t/", rev1)
        .await
        .unwrap();
    // (A write retried after a timeout may have been committed twice: skip no-op rewrites.)
    let seen: Vec<(String, String, Option<String>)> = events
        .iter()
        .filter(|e| {
            e.prev
                .as_ref()
                .map(|p| p.value != e.kv.value)
                .unwrap_or(true)
        })
        .map(|e| {
            (
                e.kv.key.clone(),
                e.kv.value_str(),
                e.prev.as_ref().map(|p| p.value_str()),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("/t/a".into(), "one".into(), None),
            ("/t/a".into(), "two".into(), Some("one".into())),
            ("/t/b".into(), "three".into(), None),
            ("/t/a".into(), "four".into(), Some("two".into())),
        ]
    );
    assert!(events.windows(2).all(|w| w[0].revision() < w[1].revision()));
    let (old, _) = etcd::get_prefix_at(etcd.client_url(0), "/t/", rev2)
        .await
        .unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].value_str(), "two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_all_agree_followers_forward_writes_refuse_loops_and_abdication_moves_leadership(
) {
    let _serial = SERIAL.lock().await;
    let cluster = HaCluster::start(3, 0).await;
    let leader = cluster.leader().await;
    let leader_url = cluster.url(leader).to_string();

    // Every node names the same leader; only it says it is elected.
    for node in &cluster.nodes {
        let info = request(
            &node.url,
            Method::GET,
            "/v2/info",
            None,
            &[],
            Duration::from_secs(2),
        )
        .await
        .unwrap();
        assert_eq!(info.status, 200);
        assert_eq!(
            info.body["elected"],
            json!(node.index == leader),
            "node {}: {}",
            node.index,
            info.body
        );
        assert_eq!(
            info.body["leader"].as_str(),
            Some(cluster.nodes[leader].host_port().as_str()),
            "node {}",
            node.index
        );
        let gauge = metric(&node.url, "infra_scheduler_leader").await;
        assert_eq!(
            gauge,
            Some(if node.index == leader { 1.0 } else { 0.0 }),
            "node {}",
            node.index
        );
    }

    // Every node lists the three control nodes and names the leader among them.
    control_nodes_agree(&cluster, leader).await;

    // A write on a follower is forwarded: the leader commits it, the answer names the
    // leader, and every node's copy shows it.
    let f = follower(&cluster, leader);
    // The third node's event stream, which only sees the leader's commits through etcd.
    let watcher = (0..cluster.nodes.len())
        .find(|i| *i != leader && *i != f)
        .expect("a third node");
    let mut events = reqwest::Client::new()
        .get(format!(
            "{}/v2/events?event_type=api_post_event",
            cluster.url(watcher)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let reply = create_app(cluster.url(f), &empty_app("/fwd")).await;
    assert_eq!(
        reply.header("X-Marathon-Leader").as_deref(),
        Some(leader_url.as_str())
    );
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains("\"/fwd\"") {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!(
                "node {watcher}'s /v2/events never carried the api_post_event of /fwd: \
                 {other:?}; got {seen:?}"
            ),
        }
    }
    for node in &cluster.nodes {
        let start = Instant::now();
        loop {
            let r = request(
                &node.url,
                Method::GET,
                "/v2/apps/fwd",
                None,
                &[],
                Duration::from_secs(2),
            )
            .await
            .unwrap();
            if r.status == 200 {
                assert_eq!(
                    r.header("X-Marathon-Leader").as_deref(),
                    Some(leader_url.as_str())
                );
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "node {} never showed /fwd",
                node.index
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // A request that was already forwarded once is not forwarded again by a follower.
    let looped = request(
        cluster.url(f),
        Method::POST,
        "/v2/apps",
        Some(&empty_app("/looped")),
        &[("X-Marathon-Via", "1.1 127.0.0.1:1 (infra)")],
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert!(
        !(200..300).contains(&looped.status),
        "a follower accepted a request carrying X-Marathon-Via: {} {:?}",
        looped.status,
        looped.body
    );
    assert!(
        looped.body["message"].is_string(),
        "no JSON message: {:?}",
        looped.body
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = request(
        &leader_url,
        Method::GET,
        "/v2/apps/looped",
        None,
        &[],
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 404, "the refused request was committed anyway");
    // The leader itself serves a forwarded request.
    let via = request(
        &leader_url,
        Method::POST,
        "/v2/apps",
        Some(&empty_app("/via")),
        &[("X-Marathon-Via", "1.1 127.0.0.1:1 (infra)")],
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(
        via.status, 201,
        "the leader refused a forwarded request: {:?}",
        via.body
    );

    // DELETE /v2/leader: the leader steps down, another node takes over, no process restarts.
    let pids: Vec<Option<u32>> = cluster.nodes.iter().map(|n| n.pid()).collect();
    let t0 = Instant::now();
    let reply = request(
        &leader_url,
        Method::DELETE,
        "/v2/leader",
        None,
        &[],
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["message"], "Leadership abdicated");
    let (new_leader, _) = cluster.wait_leader(&[leader], Duration::from_secs(5)).await;
    eprintln!(
        "abdication: node {leader} -> node {new_leader} in {:?}",
        t0.elapsed()
    );
    let pids_after: Vec<Option<u32>> = cluster.nodes.iter().map(|n| n.pid()).collect();
    assert_eq!(pids_after, pids);
    // The old leader campaigns again: still three control nodes, the new one leading.
    control_nodes_agree(&cluster, new_leader).await;
    assert!(
        cluster_processes_alive(&cluster),
        "a scheduler process exited"
    );
    // The old leader now forwards to the new one.
    let reply = send_until_led(
        &leader_url,
        Method::POST,
        "/v2/apps",
        Some(&empty_app("/after")),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(
        reply.header("X-Marathon-Leader").as_deref(),
        Some(cluster.url(new_leader)),
        "the old leader did not forward to the new one"
    );
    let info = request(
        &leader_url,
        Method::GET,
        "/v2/info",
        None,
        &[],
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert_eq!(info.body["elected"], json!(false));
}

/// `GET /v2/infra/control-nodes` on every node (within 5 s, as the watches catch up) lists
/// every scheduler once, with `leader` as the only one leading and itself as `self`.
async fn control_nodes_agree(cluster: &HaCluster, leader: usize) {
    let mut expected: Vec<String> = cluster.urls();
    expected.sort();
    for node in &cluster.nodes {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let reply = request(
                &node.url,
                Method::GET,
                "/v2/infra/control-nodes",
                None,
                &[],
                Duration::from_secs(2),
            )
            .await
            .unwrap();
            assert_eq!(reply.status, 200, "{:?}", reply.body);
            let list = reply.body["controlNodes"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut urls: Vec<String> = list
                .iter()
                .filter_map(|n| n["url"].as_str().map(String::from))
                .collect();
            urls.sort();
            let leaders: Vec<&str> = list
                .iter()
                .filter(|n| n["leader"] == json!(true))
                .filter_map(|n| n["url"].as_str())
                .collect();
            let selves: Vec<&str> = list
                .iter()
                .filter(|n| n["self"] == json!(true))
                .filter_map(|n| n["url"].as_str())
                .collect();
            let agreed = urls == expected
                && leaders == [cluster.url(leader)]
                && selves == [node.url.as_str()];
            if agreed {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {}: control nodes {:?}, expected {expected:?} led by node {leader}",
                node.index,
                reply.body
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Whether every scheduler process is still running (none exited or was restarted).
fn cluster_processes_alive(cluster: &HaCluster) -> bool {
    cluster
        .nodes
        .iter()
        .all(|n| n.pid().map(|pid| pid_alive(pid as i32)).unwrap_or(false))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_during_a_scale_from_3_to_6_and_6_to_9_restarts_no_task_and_duplicates_none(
) {
    let _serial = SERIAL.lock().await;
    let mut cluster = HaCluster::start(3, 3).await;
    let leader = cluster.leader().await;
    let f = follower(&cluster, leader);
    create_app(cluster.url(f), &web_app("/web", 3)).await;
    wait_app(cluster.url(leader), "/web", 3, Duration::from_secs(60)).await;
    let before = started_at(cluster.url(leader), "/web").await;
    assert_eq!(before.len(), 3);
    let pids_before: BTreeMap<String, i32> = cluster
        .agent_processes()
        .into_iter()
        .filter(|p| p.app_id == "/web")
        .map(|p| (p.task_id, p.pid))
        .collect();
    assert_eq!(
        pids_before.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );

    // Scale 3 -> 6 through a follower, and kill -9 the leader as soon as it has answered.
    let sampler = Sampler::start(&cluster, "/web");
    let reply = request(
        cluster.url(f),
        Method::PUT,
        "/v2/apps/web",
        Some(&json!({"instances": 6})),
        &[],
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    cluster.kill_scheduler(leader);
    let (new_leader, took) = cluster
        .wait_leader(&[leader], Duration::from_secs(30))
        .await;
    eprintln!("scale 3 -> 6: leader {leader} killed, node {new_leader} leads after {took:?}");
    assert!(
        took <= FAILOVER_BOUND,
        "new leader after {took:?} > {FAILOVER_BOUND:?}"
    );

    let app = wait_app(cluster.url(new_leader), "/web", 6, Duration::from_secs(60)).await;
    // A few more rounds of heartbeats, still sampling.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let samples = sampler.finish().await;
    let bad = violations(&samples, 6, Some(6));
    assert!(
        bad.is_empty(),
        "duplicate or excess tasks of /web:\n{}",
        bad.join("\n")
    );
    eprintln!(
        "peak task counts: {:?} over {} samples",
        peak(&samples),
        samples.len()
    );

    // The tasks that ran before the kill still run: same ids, startedAt and processes.
    let after = started_at(cluster.url(new_leader), "/web").await;
    assert_eq!(after.len(), 6, "{app}");
    for (id, at) in &before {
        assert_eq!(
            after.get(id),
            Some(at),
            "task {id} was restarted or lost: before {at:?}, after {:?}",
            after.get(id)
        );
    }
    let processes: Vec<AgentProcess> = cluster
        .agent_processes()
        .into_iter()
        .filter(|p| p.app_id == "/web")
        .collect();
    let ids: BTreeSet<&str> = processes.iter().map(|p| p.task_id.as_str()).collect();
    assert_eq!(
        processes.len(),
        6,
        "processes of /web on the agents: {processes:?}"
    );
    assert_eq!(ids.len(), 6, "a task id runs twice: {processes:?}");
    assert_eq!(
        ids,
        after.keys().map(String::as_str).collect::<BTreeSet<_>>()
    );
    for (id, pid) in &pids_before {
        assert!(
            processes.iter().any(|p| &p.task_id == id && p.pid == *pid),
            "task {id}: process {pid} was replaced"
        );
    }
    // Every id ever listed belongs to this final set: nothing was placed and dropped.
    let ever: BTreeSet<&str> = samples
        .iter()
        .flat_map(|s| s.tasks.iter().map(|t| t.id.as_str()))
        .collect();
    assert_eq!(ever, ids, "tasks came and went during the failover");

    // The killed scheduler comes back as a follower with the same view.
    cluster.spawn_scheduler(leader);
    let (still, _) = cluster
        .wait_leader(&[leader], Duration::from_secs(10))
        .await;
    assert_eq!(
        still, new_leader,
        "leadership moved when the old leader came back"
    );
    let start = Instant::now();
    while started_at(cluster.url(leader), "/web").await != after {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the restarted node's copy differs"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Again, 6 -> 9, killing the leader once it has committed the placement of new tasks
    // (before they all run): the next leader must adopt them, not place them a second time.
    let leader = new_leader;
    let f = follower(&cluster, leader);
    let before = after;
    let sampler = Sampler::start(&cluster, "/web");
    let reply = request(
        cluster.url(f),
        Method::PUT,
        "/v2/apps/web",
        Some(&json!({"instances": 9})),
        &[],
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let start = Instant::now();
    let placed = loop {
        // A follower's copy holds only what the leader committed to etcd.
        let tasks = app_tasks(cluster.url(f), "/web").await;
        if tasks.len() > 6 {
            break tasks;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the leader placed nothing: {tasks:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    cluster.kill_scheduler(leader);
    let states: Vec<&str> = placed.iter().map(|t| t.state.as_str()).collect();
    let (new_leader, took) = cluster
        .wait_leader(&[leader], Duration::from_secs(30))
        .await;
    eprintln!("scale 6 -> 9: leader {leader} killed with {states:?}, node {new_leader} leads after {took:?}");
    assert!(
        took <= FAILOVER_BOUND,
        "new leader after {took:?} > {FAILOVER_BOUND:?}"
    );
    wait_app(cluster.url(new_leader), "/web", 9, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let samples = sampler.finish().await;
    let bad = violations(&samples, 9, Some(9));
    assert!(
        bad.is_empty(),
        "duplicate or excess tasks of /web:\n{}",
        bad.join("\n")
    );
    let after = started_at(cluster.url(new_leader), "/web").await;
    for (id, at) in &before {
        assert_eq!(after.get(id), Some(at), "task {id} was restarted or lost");
    }
    let failure = request(
        cluster.url(new_leader),
        Method::GET,
        "/v2/apps/web",
        None,
        &[],
        Duration::from_secs(2),
    )
    .await
    .map(|r| r.body["app"]["lastTaskFailure"].clone())
    .unwrap_or_default();
    for t in &placed {
        assert!(
            after.contains_key(&t.id),
            "task {} (ports {:?} on {:?}) placed before the kill was dropped; placed: {:?}; lastTaskFailure: {failure}",
            t.id,
            t.ports,
            t.slave_id,
            placed.iter().map(|t| (t.id.as_str(), &t.ports, t.slave_id.as_deref())).collect::<Vec<_>>()
        );
    }
    let ids: BTreeSet<String> = cluster
        .agent_processes()
        .into_iter()
        .filter(|p| p.app_id == "/web")
        .map(|p| p.task_id)
        .collect();
    assert_eq!(ids, after.keys().cloned().collect::<BTreeSet<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_during_a_rolling_restart_completes_it_within_the_upgrade_strategy() {
    let _serial = SERIAL.lock().await;
    let mut cluster = HaCluster::start(3, 3).await;
    let leader = cluster.leader().await;
    let f = follower(&cluster, leader);
    let mut app = web_app("/roll", 4);
    app["upgradeStrategy"] = json!({"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.5});
    // Marathon: at most instances * (1 + maximumOverCapacity), rounded down.
    let limit = (4.0f64 * 1.5).floor() as usize;
    create_app(cluster.url(f), &app).await;
    wait_app(cluster.url(leader), "/roll", 4, Duration::from_secs(60)).await;
    let old: BTreeSet<String> = started_at(cluster.url(leader), "/roll")
        .await
        .into_keys()
        .collect();
    let old_version = app_tasks(cluster.url(leader), "/roll").await[0]
        .version
        .clone();

    let sampler = Sampler::start(&cluster, "/roll");
    let reply = request(
        cluster.url(f),
        Method::POST,
        "/v2/apps/roll/restart",
        None,
        &[],
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let deployment = reply.body["deploymentId"]
        .as_str()
        .expect("deploymentId")
        .to_string();
    // Kill the leader in the middle: some new tasks running, some old ones still there.
    let start = Instant::now();
    loop {
        let tasks = app_tasks(cluster.url(leader), "/roll").await;
        let new = tasks
            .iter()
            .filter(|t| !old.contains(&t.id) && t.state == "TASK_RUNNING")
            .count();
        let kept = tasks.iter().filter(|t| old.contains(&t.id)).count();
        if new > 0 && kept > 0 {
            eprintln!("rolling restart under way: {new} new running, {kept} old tasks; killing the leader");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the restart never started: {tasks:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.kill_scheduler(leader);
    let (new_leader, took) = cluster
        .wait_leader(&[leader], Duration::from_secs(30))
        .await;
    eprintln!("rolling restart: leader {leader} killed, node {new_leader} leads after {took:?}");
    assert!(
        took <= FAILOVER_BOUND,
        "new leader after {took:?} > {FAILOVER_BOUND:?}"
    );

    // The deployment completes on the new leader: 4 healthy tasks, none of the old ones.
    let url = cluster.url(new_leader).to_string();
    let start = Instant::now();
    loop {
        let r = request(
            &url,
            Method::GET,
            "/v2/deployments",
            None,
            &[],
            Duration::from_secs(2),
        )
        .await
        .unwrap();
        let open: Vec<&Value> = r
            .body
            .as_array()
            .map(|d| d.iter().collect())
            .unwrap_or_default();
        if !open.iter().any(|d| d["id"] == deployment.as_str()) && open.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "deployment {deployment} stuck after the failover: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_app(&url, "/roll", 4, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let samples = sampler.finish().await;
    let tasks = app_tasks(&url, "/roll").await;
    assert_eq!(tasks.len(), 4);
    for t in &tasks {
        assert!(!old.contains(&t.id), "task {} was not restarted", t.id);
        assert_ne!(t.version, old_version, "task {} runs the old version", t.id);
    }
    let bad = violations(&samples, limit, None);
    assert!(
        bad.is_empty(),
        "more than {limit} tasks of /roll at once:\n{}",
        bad.join("\n")
    );
    eprintln!(
        "peak task counts (limit {limit}): {:?} over {} samples",
        peak(&samples),
        samples.len()
    );
    let processes: Vec<AgentProcess> = cluster
        .agent_processes()
        .into_iter()
        .filter(|p| p.app_id == "/roll")
        .collect();
    assert_eq!(processes.len(), 4, "{processes:?}");
}

/// The election key a node holds or waits with (the value is its advertised URL).
async fn election_keys(etcd_url: &str) -> Vec<etcd::Kv> {
    let (kvs, _) = etcd::get_prefix(etcd_url, &format!("{PREFIX}leader"))
        .await
        .unwrap();
    kvs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_leader_is_replaced_and_when_resumed_commits_nothing() {
    let _serial = SERIAL.lock().await;
    let mut cluster = HaCluster::start(3, 3).await;
    let old = cluster.leader().await;
    let old_url = cluster.url(old).to_string();
    let etcd_url = cluster.etcd.client_url(0).to_string();
    create_app(&old_url, &web_app("/part", 2)).await;
    wait_app(&old_url, "/part", 2, Duration::from_secs(60)).await;
    let keys = election_keys(&etcd_url).await;
    let old_key = keys
        .iter()
        .find(|k| k.value_str().contains(&cluster.nodes[old].host_port()))
        .unwrap_or_else(|| panic!("no election key under {PREFIX}leader names {old_url}: {keys:?}"))
        .clone();

    // Freeze the leader past its lease (2 s): another node is elected and takes writes.
    cluster.stop_scheduler(old);
    let frozen = Instant::now();
    let (new, took) = cluster.wait_leader(&[old], Duration::from_secs(30)).await;
    eprintln!("partition: node {old} frozen, node {new} leads after {took:?}");
    assert!(
        took <= FAILOVER_BOUND,
        "new leader after {took:?} > {FAILOVER_BOUND:?}"
    );
    let new_url = cluster.url(new).to_string();
    let new_key = election_keys(&etcd_url)
        .await
        .into_iter()
        .find(|k| k.value_str().contains(&cluster.nodes[new].host_port()))
        .expect("the new leader's election key");
    assert!(
        new_key.create_revision > old_key.create_revision,
        "the new leader's key {new_key:?} is not newer than the old one {old_key:?}"
    );
    let mut scaled = web_app("/part", 4);
    scaled.as_object_mut().unwrap().remove("id");
    let reply = send_until_led(
        &new_url,
        Method::PUT,
        "/v2/apps/part",
        Some(&scaled),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    wait_app(&new_url, "/part", 4, Duration::from_secs(60)).await;
    let remaining = Duration::from_secs(4).saturating_sub(frozen.elapsed());
    tokio::time::sleep(remaining).await;
    let four: BTreeSet<String> = started_at(&new_url, "/part").await.into_keys().collect();

    // Resume the old leader and watch everything it could do with its stale state
    // (2 instances, agents' heartbeats queued at it while frozen).
    let sampler = Sampler::start(&cluster, "/part");
    let resumed_at = etcd::revision(&etcd_url).await.unwrap();
    let log_before = cluster.log(old).len();
    cluster.cont_scheduler(old);
    // A write sent to it right away is forwarded to the new leader or refused, never
    // committed by it.
    let reply = request(
        &old_url,
        Method::POST,
        "/v2/apps",
        Some(&empty_app("/to-old")),
        &[],
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    eprintln!(
        "write on the resumed old leader: {} leader {:?} {:?}",
        reply.status,
        reply.header("X-Marathon-Leader"),
        reply.body
    );
    if (200..300).contains(&reply.status) {
        assert_eq!(
            reply.header("X-Marathon-Leader").as_deref(),
            Some(new_url.as_str()),
            "the resumed old leader accepted a write as leader"
        );
    } else {
        assert_eq!(reply.status, 503, "{:?}", reply.body);
    }
    let start = Instant::now();
    loop {
        let seen = cluster.leader_seen_by(old).await;
        let info = request(
            &old_url,
            Method::GET,
            "/v2/info",
            None,
            &[],
            Duration::from_secs(2),
        )
        .await;
        if seen == Ok(Some(cluster.nodes[new].host_port()))
            && info
                .map(|i| i.body["elected"] == json!(false))
                .unwrap_or(false)
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the resumed node does not follow node {new}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(metric(&old_url, "infra_scheduler_leader").await, Some(0.0));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let samples = sampler.finish().await;
    assert_eq!(cluster.agreed_leader().await, Some(new));

    // Nothing the old leader believed was committed: the 4 tasks all ran throughout (as
    // the agents and the other nodes saw it; the resumed node's own copy lags until its watch
    // catches up, and must then show the same).
    let start = Instant::now();
    while started_at(&old_url, "/part")
        .await
        .into_keys()
        .collect::<BTreeSet<_>>()
        != four
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the resumed node's copy of /part does not catch up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for s in samples.iter().filter(|s| s.node != Some(old)) {
        let ids: BTreeSet<String> = s.tasks.iter().map(|t| t.id.clone()).collect();
        assert_eq!(
            ids, four,
            "{:?} {:?}: the tasks of /part changed after the old leader resumed",
            s.at, s.node
        );
    }
    // etcd's history since the resume: the old leader's election key was gone before the
    // new one was created, and no change under the prefix undoes the new leader's state
    // (instances back to 2, one of the 4 tasks removed).
    let events = etcd::history(&etcd_url, PREFIX, old_key.create_revision)
        .await
        .unwrap();
    let deleted = events
        .iter()
        .find(|e| e.delete && e.kv.key == old_key.key)
        .unwrap_or_else(|| {
            panic!(
                "the old leader's election key {} was never deleted",
                old_key.key
            )
        });
    // The new leader was elected when the old key went: from that revision on every write
    // is fenced with the new leader's key, and none may come from the old one.
    let elected_at = deleted.revision();
    let (candidates, _) = etcd::get_prefix_at(&etcd_url, &format!("{PREFIX}leader"), elected_at)
        .await
        .unwrap();
    let oldest = candidates
        .iter()
        .min_by_key(|k| k.create_revision)
        .expect("a candidate after the old leader's key went");
    assert_eq!(
        oldest.key,
        new_key.key,
        "after the old key went at revision {elected_at}, {} was first in line, not node {new}",
        oldest.value_str()
    );
    let after: Vec<&etcd::KvEvent> = events
        .iter()
        .filter(|e| e.revision() > resumed_at)
        .collect();
    eprintln!("etcd changes after the resume (revision > {resumed_at}):");
    for e in &after {
        eprintln!(
            "  {} {} {}",
            e.revision(),
            if e.delete { "DELETE" } else { "PUT" },
            e.kv.key
        );
    }
    for e in events.iter().filter(|e| e.revision() > elected_at) {
        let stale_app = !e.delete
            && e.kv.key.contains("data/apps/")
            && e.kv.key.contains("part")
            && e.kv
                .value_json()
                .map(|v| v["instances"] == json!(2))
                .unwrap_or(false);
        assert!(
            !stale_app,
            "revision {}: /part written back with 2 instances: {}",
            e.revision(),
            e.kv.value_str()
        );
        for id in &four {
            assert!(
                !(e.delete && e.kv.key.contains(id.as_str())),
                "revision {}: task {id} deleted after the new leader was elected",
                e.revision()
            );
        }
    }
    let log = cluster.log(old);
    let resumed_log = &log[log_before.min(log.len())..];
    eprintln!("old leader's log after SIGCONT:\n{resumed_log}");
    assert!(
        !resumed_log.contains("became leader"),
        "the resumed old leader claimed leadership again while node {new} leads"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_frozen_for_25_s_loses_no_agent_and_restarts_no_task() {
    // The default agent timeout (15 s): agents keep heartbeating through the other nodes,
    // so none may be declared lost while the old leader hangs (a host that froze or whose
    // network went away: connections open, nothing answers).
    let _serial = SERIAL.lock().await;
    let mut cluster = HaCluster::start_with(3, 3, &["--agent-timeout", "15s"]).await;
    let old = cluster.leader().await;
    let old_url = cluster.url(old).to_string();
    create_app(&old_url, &web_app("/keep", 3)).await;
    wait_app(&old_url, "/keep", 3, Duration::from_secs(60)).await;
    let before = started_at(&old_url, "/keep").await;
    let sampler = Sampler::start(&cluster, "/keep");

    cluster.stop_scheduler(old);
    let frozen = Instant::now();
    let (new, took) = cluster.wait_leader(&[old], Duration::from_secs(30)).await;
    eprintln!("node {old} frozen, node {new} leads after {took:?}");
    let new_url = cluster.url(new).to_string();
    let mut lost_at = None;
    while frozen.elapsed() < Duration::from_secs(25) {
        let lost = metric(&new_url, "infra_scheduler_agents_lost").await;
        if lost.unwrap_or(0.0) > 0.0 && lost_at.is_none() {
            lost_at = Some(frozen.elapsed());
            eprintln!(
                "node {new} counts {lost:?} lost agents {:?} into the freeze",
                frozen.elapsed()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = started_at(&new_url, "/keep").await;
    cluster.cont_scheduler(old);
    let samples = sampler.finish().await;
    assert_eq!(
        lost_at, None,
        "the new leader declared agents lost while the old leader was frozen"
    );
    assert_eq!(
        after, before,
        "tasks of /keep were replaced during the freeze"
    );
    for s in &samples {
        let ids: BTreeSet<&String> = s.tasks.iter().map(|t| &t.id).collect();
        assert_eq!(
            ids,
            before.keys().collect::<BTreeSet<_>>(),
            "{:?} {:?}: tasks of /keep changed",
            s.at,
            s.node
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_of_one_app_ending_in_the_same_heartbeat_are_replaced() {
    // Two tasks of one app on one agent exit together, so one heartbeat reports both: the
    // leader must commit both failures (one etcd transaction) and launch replacements.
    let _serial = SERIAL.lock().await;
    let cluster = HaCluster::start(3, 1).await;
    let leader = cluster.leader().await;
    let url = cluster.url(leader).to_string();
    let app = json!({"id": "/flap", "cmd": "sleep 3", "instances": 2, "cpus": 0.1, "mem": 16,
        "backoffSeconds": 1});
    create_app(&url, &app).await;
    let start = Instant::now();
    let mut first: BTreeSet<String> = BTreeSet::new();
    loop {
        let tasks = app_tasks(&url, "/flap").await;
        if first.is_empty() && tasks.len() == 2 {
            first = tasks.iter().map(|t| t.id.clone()).collect();
        }
        let replaced = tasks
            .iter()
            .filter(|t| !first.is_empty() && !first.contains(&t.id) && t.state == "TASK_RUNNING")
            .count();
        if replaced == 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the tasks of /flap were not replaced within 30 s: first {first:?}, now {:?}\nleader log:\n{}",
            tasks.iter().map(|t| format!("{} {}", t.id, t.state)).collect::<Vec<_>>(),
            tail(&cluster.nodes[leader].log, 10)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// POSTs `n` apps to `url` one after the other; the answers that were not 201.
async fn write_apps(url: &str, prefix: &str, n: usize) -> Vec<String> {
    let mut failed = Vec::new();
    for k in 0..n {
        let id = format!("{prefix}{k}");
        let sent = Instant::now();
        match request(
            url,
            Method::POST,
            "/v2/apps",
            Some(&empty_app(&id)),
            &[],
            Duration::from_secs(15),
        )
        .await
        {
            Ok(r) if r.status == 201 => {}
            Ok(r) => failed.push(format!(
                "{id}: {} after {:?}: {}",
                r.status,
                sent.elapsed(),
                r.body
            )),
            Err(e) => failed.push(format!("{id}: {e}")),
        }
    }
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_etcd_member_killed_or_frozen_fails_no_write_and_keeps_the_leader() {
    let _serial = SERIAL.lock().await;
    let mut cluster = HaCluster::start(3, 0).await;
    let leader = cluster.leader().await;
    let url = cluster.url(leader).to_string();
    assert!(write_apps(&url, "/warm", 3).await.is_empty());

    // etcd keeps its quorum with one member of three gone, so every write must commit
    // (a write that meets etcd's own raft election may wait, not fail).
    cluster.etcd.kill(0);
    let killed = write_apps(&url, "/killed", 20).await;
    let leader_after_kill = cluster.agreed_leader().await;
    cluster.etcd.restart(0);
    cluster
        .etcd
        .wait_healthy(&[0, 1, 2], Duration::from_secs(30))
        .await;

    cluster.etcd.stop(1);
    let frozen = write_apps(&url, "/frozen", 20).await;
    let leader_after_freeze = cluster.agreed_leader().await;
    // For the report: whether writes come back while the member stays frozen.
    let probe = Instant::now();
    let mut recovered = None;
    while recovered.is_none() && probe.elapsed() < Duration::from_secs(30) {
        if write_apps(
            cluster.url(0),
            &format!("/probe{}-", probe.elapsed().as_millis()),
            1,
        )
        .await
        .is_empty()
        {
            recovered = Some(probe.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "member 1 still frozen: a write through node 0 succeeded again after {recovered:?} more"
    );
    cluster.etcd.cont(1);

    let report = format!(
        "etcd member 0 killed: {} of 20 writes failed, leader {leader} -> {leader_after_kill:?}\n{}\n\
         etcd member 1 frozen: {} of 20 writes failed, leader {leader} -> {leader_after_freeze:?}\n{}",
        killed.len(),
        killed.join("\n"),
        frozen.len(),
        frozen.join("\n")
    );
    eprintln!("{report}");
    assert!(
        killed.is_empty() && frozen.is_empty(),
        "writes failed while etcd kept its quorum:\n{report}"
    );
    assert_eq!(
        leader_after_kill,
        Some(leader),
        "leadership moved with one etcd member killed"
    );
    assert_eq!(
        leader_after_freeze,
        Some(leader),
        "leadership moved with one etcd member frozen"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_etcd_quorum_makes_writes_503_keeps_reads_and_recovers_by_itself() {
    let _serial = SERIAL.lock().await;
    let mut cluster = HaCluster::start(3, 3).await;
    let leader = cluster.leader().await;
    create_app(cluster.url(leader), &web_app("/q", 3)).await;
    wait_app(cluster.url(leader), "/q", 3, Duration::from_secs(60)).await;
    let tasks_before = started_at(cluster.url(leader), "/q").await;
    let pids_before: BTreeSet<i32> = cluster.agent_processes().iter().map(|p| p.pid).collect();

    // Two of three etcd members down.
    cluster.etcd.kill(1);
    cluster.etcd.kill(2);
    let lost = Instant::now();
    let mut attempt = 0;
    let mut answered_503: BTreeSet<usize> = BTreeSet::new();
    // attempt -> the message of its 503
    let mut refused: BTreeMap<usize, String> = BTreeMap::new();
    while answered_503.len() < cluster.nodes.len() {
        for i in 0..cluster.nodes.len() {
            attempt += 1;
            let sent = Instant::now();
            let reply = request(
                cluster.url(i),
                Method::POST,
                "/v2/apps",
                Some(&empty_app(&format!("/noquorum{attempt}"))),
                &[],
                Duration::from_secs(15),
            )
            .await;
            match reply {
                Ok(r) if r.status == 503 => {
                    assert!(
                        r.body["message"].is_string(),
                        "503 without a JSON message: {:?}",
                        r.body
                    );
                    refused.insert(
                        attempt,
                        r.body["message"].as_str().unwrap_or("").to_string(),
                    );
                    if answered_503.insert(i) {
                        eprintln!(
                            "node {i}: 503 {:?} after {:?} (answered in {:?})",
                            r.body["message"],
                            lost.elapsed(),
                            sent.elapsed()
                        );
                    }
                }
                Ok(r) => assert!(
                    !(200..300).contains(&r.status),
                    "node {i} accepted a write with 1 of 3 etcd members: {} {:?}",
                    r.status,
                    r.body
                ),
                Err(e) => eprintln!("node {i}: {e}"),
            }
        }
        assert!(
            lost.elapsed() < Duration::from_secs(30),
            "writes not refused with 503 on every node 30 s after quorum loss (503 from {answered_503:?})"
        );
    }

    // Reads answer from the last known state, quickly, on every node.
    for node in &cluster.nodes {
        let sent = Instant::now();
        let r = request(
            &node.url,
            Method::GET,
            "/v2/apps/q",
            None,
            &[],
            Duration::from_secs(2),
        )
        .await
        .unwrap();
        assert_eq!(r.status, 200, "node {}: {:?}", node.index, r.body);
        assert_eq!(r.body["app"]["instances"], json!(3));
        assert_eq!(
            started_at(&node.url, "/q").await,
            tasks_before,
            "node {}",
            node.index
        );
        eprintln!(
            "node {}: read without quorum in {:?}",
            node.index,
            sent.elapsed()
        );
    }
    // The tasks keep running.
    let pids_now: BTreeSet<i32> = cluster.agent_processes().iter().map(|p| p.pid).collect();
    assert_eq!(pids_now, pids_before);

    // Quorum back: writes work again without restarting any scheduler.
    cluster.etcd.restart(1);
    cluster.etcd.restart(2);
    cluster
        .etcd
        .wait_healthy(&[0, 1, 2], Duration::from_secs(30))
        .await;
    let back = Instant::now();
    for i in 0..cluster.nodes.len() {
        let reply = send_until_led(
            cluster.url(i),
            Method::POST,
            "/v2/apps",
            Some(&empty_app(&format!("/back{i}"))),
            Duration::from_secs(30),
        )
        .await;
        assert_eq!(reply.status, 201, "node {i}: {:?}", reply.body);
    }
    eprintln!(
        "writes accepted on every node {:?} after quorum returned",
        back.elapsed()
    );
    let leader = cluster.leader().await;
    // A write refused with 503 may only exist now if its answer said the outcome was
    // unknown (a write etcd's raft leader had already taken can commit once quorum is back).
    for (k, message) in &refused {
        let r = request(
            cluster.url(leader),
            Method::GET,
            &format!("/v2/apps/noquorum{k}"),
            None,
            &[],
            Duration::from_secs(2),
        )
        .await
        .unwrap();
        let lower = message.to_lowercase();
        let admitted =
            lower.contains("unknown") || lower.contains("may have") || lower.contains("may still");
        assert!(
            r.status == 404 || admitted,
            "/noquorum{k} was refused with 503 {message:?}, yet exists after quorum returned"
        );
    }
    assert_eq!(started_at(cluster.url(leader), "/q").await, tasks_before);
}

/// `GET /v2/infra/tasks/{id}/output` on `url` until its stdout has a line starting with
/// `prefix`; returns the lines.
async fn wait_output(url: &str, task: &str, prefix: &str, timeout: Duration) -> Vec<String> {
    let start = Instant::now();
    loop {
        let reply = request(
            url,
            Method::GET,
            &format!("/v2/infra/tasks/{task}/output"),
            None,
            &[],
            Duration::from_secs(5),
        )
        .await;
        if let Ok(r) = &reply {
            let lines: Vec<String> = r.body["stdout"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l.as_str().map(String::from))
                .collect();
            if r.status == 200 && lines.iter().any(|l| l.starts_with(prefix)) {
                return lines;
            }
        }
        assert!(
            start.elapsed() < timeout,
            "no output starting {prefix:?} of {task} on {url} after {timeout:?}: {reply:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A task's recent output lives in the leader's memory: a follower forwards the read to
/// it, and after the leader is killed the new leader has the output again (the agent's
/// next heartbeats bring it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tasks_output_is_read_through_any_node_and_survives_a_failover() {
    let _serial = SERIAL.lock().await;
    let mut cluster = HaCluster::start(3, 1).await;
    let leader = cluster.leader().await;
    let app = json!({"id": "/talk", "instances": 1, "cpus": 0.1, "mem": 16,
        "cmd": "i=0; while true; do i=$((i+1)); echo \"talk $i\"; sleep 0.2; done"});
    create_app(cluster.url(leader), &app).await;
    let start = Instant::now();
    let task = loop {
        if let Some(task) = app_tasks(cluster.url(leader), "/talk").await.first() {
            break task.id.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no task of /talk"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let f = follower(&cluster, leader);
    let lines = wait_output(cluster.url(f), &task, "talk ", Duration::from_secs(30)).await;
    assert!(lines.len() <= 40, "{lines:?}");

    cluster.kill_scheduler(leader);
    let (new_leader, _) = cluster
        .wait_leader(&[leader], Duration::from_secs(30))
        .await;
    wait_output(
        cluster.url(new_leader),
        &task,
        "talk ",
        Duration::from_secs(30),
    )
    .await;
}
