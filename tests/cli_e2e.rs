//! End to end: a real scheduler and three real agents (processes of the built binary, on
//! loopback, distinct hostnames, data dirs and port ranges) driven by the real CLI:
//! deploy with `hostname UNIQUE`, tasks answering HTTP, dry run, scale (including an
//! unplaceable count), a killed task replaced, rolling restart, destroy, and the errors
//! people see.

#[path = "support/cli.rs"]
mod cli_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cli_support::*;
use infra::api::marathon::Task;

const APP: &str = r#"{
  "id": "/web",
  "cmd": "exec python3 -m http.server $PORT0 --bind 127.0.0.1",
  "instances": 3,
  "cpus": 0.1,
  "mem": 32,
  "portDefinitions": [{"port": 0}],
  "constraints": [["hostname", "UNIQUE"]],
  "backoffSeconds": 1,
  "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0,
    "gracePeriodSeconds": 30, "intervalSeconds": 1, "timeoutSeconds": 2,
    "maxConsecutiveFailures": 3}]
}"#;

fn running(cluster: &Cluster) -> Vec<Task> {
    cluster.running_of("web")
}

#[test]
fn deploy_scale_replace_restart_and_destroy_on_three_agents() {
    let mut cluster = Cluster::start(3);
    cluster.wait_agents_registered();
    let file = cluster.dir.path().join("web.json");
    std::fs::write(&file, APP).unwrap();
    let file_arg = file.to_str().unwrap();

    // A dry run of a new app says it would create it, and creates nothing.
    let out = cluster.cli(&["deploy", file_arg, "--dry-run"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("create app /web with 3 instances"));
    assert_eq!(cluster.cli(&["apps"]).status.code(), Some(0));
    assert!(!stdout(&cluster.cli(&["apps"])).contains("/web"));

    // Deploy: 3 instances, one per agent, each answering HTTP.
    let out = cluster.cli(&["deploy", file_arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("/web: 3/3 healthy"),
        "{}",
        stdout(&out)
    );
    let first = running(&cluster);
    assert_eq!(first.len(), 3);
    let agents: BTreeSet<usize> = first.iter().map(|t| cluster.agent_of(t)).collect();
    assert_eq!(agents.len(), 3, "UNIQUE hostname: one task per agent");
    for task in &first {
        assert_eq!(
            http_status(task.ports[0]),
            Some(200),
            "task {} answers",
            task.id
        );
    }
    let apps = stdout(&cluster.cli(&["apps"]));
    let line = apps.lines().find(|l| l.starts_with("/web")).unwrap();
    assert!(line.contains("3/3"), "{apps}");
    let table = stdout(&cluster.cli(&["tasks", "web"]));
    assert!(table.starts_with("TASK ID"), "{table}");
    assert_eq!(
        table.matches("healthy").count() - table.matches("unhealthy").count(),
        3,
        "{table}"
    );

    // Dry run of a bigger count: the diff and the summary, nothing changes.
    std::fs::write(&file, APP.replace("\"instances\": 3", "\"instances\": 4")).unwrap();
    let out = cluster.cli(&["deploy", file_arg, "--dry-run"]);
    let text = console::strip_ansi_codes(&stdout(&out)).to_string();
    assert!(
        text.contains("-  \"instances\": 3,") && text.contains("+  \"instances\": 4,"),
        "{text}"
    );
    assert!(text.contains("scale 3 -> 4"), "{text}");
    assert_eq!(running(&cluster).len(), 3);

    // Five instances cannot be placed on three agents with UNIQUE: the CLI says why.
    let out = cluster.cli(&["scale", "web", "5"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("/web cannot be placed:"),
        "{}",
        stdout(&out)
    );

    // Back to 2.
    let out = cluster.cli(&["scale", "web", "2", "--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_until("2 running tasks", Duration::from_secs(30), || {
        running(&cluster).len() == 2
    });

    // A task whose process is killed is replaced (after its backoff).
    let before = running(&cluster);
    let victim = &before[0];
    let agent = cluster.agent_of(victim);
    let entry = infra::agent::table::load(&cluster.agent_dir(agent))
        .unwrap()
        .into_iter()
        .find(|e| e.spec.task_id == victim.id)
        .expect("the victim in its agent's table");
    let infra::agent::table::Handle::Process { pgid, .. } = entry.handle else {
        panic!("not a process task")
    };
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    wait_until("a replacement task", Duration::from_secs(40), || {
        let now = running(&cluster);
        now.len() == 2
            && !now.iter().any(|t| t.id == victim.id)
            && now.iter().all(|t| http_status(t.ports[0]) == Some(200))
    });

    // Rolling restart: every task is new.
    let before: BTreeSet<String> = running(&cluster).into_iter().map(|t| t.id).collect();
    let out = cluster.cli(&["restart", "web"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let after: BTreeSet<String> = running(&cluster).into_iter().map(|t| t.id).collect();
    assert_eq!(after.len(), 2);
    assert!(
        before.is_disjoint(&after),
        "before {before:?} after {after:?}"
    );

    // An agent killed: its task is replaced on the others within the agent timeout.
    let victim = running(&cluster).into_iter().next().unwrap();
    let agent = cluster.agent_of(&victim);
    cluster.kill_agent(agent);
    kill_tasks_of(&cluster.agent_dir(agent));
    wait_until(
        "the lost agent's task replaced",
        Duration::from_secs(40),
        || {
            let now = running(&cluster);
            now.len() == 2
                && now.iter().all(|t| cluster.agent_of(t) != agent)
                && now.iter().all(|t| http_status(t.ports[0]) == Some(200))
        },
    );

    // Destroy: the app and its processes are gone.
    let ports: Vec<u16> = running(&cluster).iter().map(|t| t.ports[0]).collect();
    let out = cluster.cli(&["destroy", "web"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&cluster.cli(&["apps"])).contains("/web"));
    wait_until(
        "the tasks to stop answering",
        Duration::from_secs(20),
        || ports.iter().all(|p| http_status(*p).is_none()),
    );
}

#[test]
fn a_port_held_outside_the_platform_is_skipped_and_a_failing_task_says_why() {
    let cluster = Cluster::start(1);
    cluster.wait_agents_registered();
    // A stray server on the agent's host holds the first port of its range.
    let (low, high) = cluster.port_range(1);
    let _stray = std::net::TcpListener::bind(("127.0.0.1", low)).unwrap();
    // Two heartbeats: the agent has reported the port busy.
    std::thread::sleep(Duration::from_millis(1500));
    let file = cluster.dir.path().join("one.json");
    std::fs::write(&file, APP.replace("\"instances\": 3", "\"instances\": 1")).unwrap();
    let out = cluster.cli(&["deploy", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let task = running(&cluster).pop().expect("a running task");
    assert!(
        task.ports[0] != low && (low..=high).contains(&task.ports[0]),
        "placed on {:?}, the busy port is {low}",
        task.ports
    );

    // A task that cannot start: the deploy gives up with the reason, and the listings
    // show it.
    std::fs::write(
        &file,
        r#"{"id": "/broken", "cmd": "echo cannot bind the port >&2; exit 1",
            "instances": 1, "cpus": 0.1, "mem": 16, "backoffSeconds": 1}"#,
    )
    .unwrap();
    let out = cluster.cli(&["deploy", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        said.contains("/broken: last task failure (")
            && said.contains("): Command exited with status 1: cannot bind the port"),
        "{said}"
    );
    let out = cluster.cli(&["apps"]);
    let apps = stdout(&out);
    assert!(
        apps.contains("Command exited with status 1: cannot bind the port"),
        "{apps}{}",
        stderr(&out)
    );
}

#[test]
fn errors_people_see() {
    // No scheduler there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = cli(&["apps", "--scheduler", &url]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot reach the scheduler at {url}")),
        "{err}"
    );
    assert!(
        err.contains("(set --scheduler or INFRA_SCHEDULER, or run infra up)"),
        "{err}"
    );

    // An invalid definition: each of Marathon's 422 details, named by the file.
    let cluster = Cluster::start(1);
    let file = cluster.dir.path().join("bad.json");
    std::fs::write(&file, r#"{"id": "/bad", "cmd": "sleep 1", "cpus": -1}"#).unwrap();
    let out = cluster.cli(&["deploy", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}: /cpus: ", file.display())),
        "{err}"
    );
    assert!(!stdout(&cluster.cli(&["apps"])).contains("/bad"));

    // Malformed JSON names file:line:col and never reaches the scheduler.
    std::fs::write(&file, "{\n  \"id\": \"/bad\",\n  \"cmd\": \n}\n").unwrap();
    let out = cluster.cli(&["deploy", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("{}:4:", file.display())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_restarted_agent_keeps_its_tasks_and_the_context_file_finds_the_scheduler() {
    let mut cluster = Cluster::start(1);
    cluster.wait_agents_registered();
    let home = cluster.dir.path().join("infra-home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join("context.json"),
        format!(r#"{{"schedulers": ["{}"], "ca": null}}"#, cluster.url),
    )
    .unwrap();
    let file = cluster.dir.path().join("one.json");
    std::fs::write(&file, APP.replace("\"instances\": 3", "\"instances\": 1")).unwrap();

    // No --scheduler, no INFRA_SCHEDULER: the context file says where the scheduler is.
    let out = cli_env(
        &["deploy", file.to_str().unwrap()],
        &[("INFRA_HOME", &home)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let before = running(&cluster);
    assert_eq!(before.len(), 1);
    let table = infra::agent::table::load(&cluster.agent_dir(1)).unwrap();
    let infra::agent::table::Handle::Process { pid, .. } = table[0].handle else {
        panic!("not a process task")
    };

    // The agent dies and comes back: the task is adopted, not restarted.
    cluster.kill_agent(1);
    assert_eq!(http_status(before[0].ports[0]), Some(200));
    cluster.agents[0] = Some(cluster.spawn_agent(1));
    std::thread::sleep(Duration::from_secs(4));
    let after = running(&cluster);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id, before[0].id, "same task");
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "same process"
    );
    let table = infra::agent::table::load(&cluster.agent_dir(1)).unwrap();
    assert!(
        matches!(table[0].handle, infra::agent::table::Handle::Process { pid: p, .. } if p == pid)
    );
    assert_eq!(http_status(after[0].ports[0]), Some(200));

    let out = cluster.cli(&["destroy", "web"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_restarted_scheduler_keeps_apps_and_task_ids_and_restarts_nothing() {
    let mut cluster = Cluster::start(3);
    cluster.wait_agents_registered();
    let file = cluster.dir.path().join("web.json");
    std::fs::write(&file, APP).unwrap();
    let out = cluster.cli(&["deploy", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before: BTreeSet<String> = running(&cluster).into_iter().map(|t| t.id).collect();
    assert_eq!(before.len(), 3);
    let pids = |cluster: &Cluster| -> BTreeSet<i32> {
        (1..=3)
            .flat_map(|i| infra::agent::table::load(&cluster.agent_dir(i)).unwrap())
            .filter_map(|e| match e.handle {
                infra::agent::table::Handle::Process { pid, .. } => Some(pid),
                _ => None,
            })
            .collect()
    };
    let pids_before = pids(&cluster);

    cluster.restart_scheduler();
    std::thread::sleep(Duration::from_secs(4));
    let after: BTreeSet<String> = running(&cluster).into_iter().map(|t| t.id).collect();
    assert_eq!(after, before, "same task ids");
    assert_eq!(pids(&cluster), pids_before, "no task restarted");
    let apps = stdout(&cluster.cli(&["apps"]));
    assert!(
        apps.lines()
            .any(|l| l.starts_with("/web") && l.contains("3/3")),
        "{apps}"
    );
}

#[test]
fn a_rolling_restart_keeps_half_the_instances_healthy() {
    let cluster = Cluster::start(3);
    cluster.wait_agents_registered();
    let app = APP
        .replace("\"instances\": 3", "\"instances\": 4")
        .replace("\"constraints\": [[\"hostname\", \"UNIQUE\"]],", "")
        .replace(
            "\"backoffSeconds\": 1,",
            "\"backoffSeconds\": 1, \"upgradeStrategy\": {\"minimumHealthCapacity\": 0.5, \"maximumOverCapacity\": 0},",
        );
    let file = cluster.dir.path().join("web.json");
    std::fs::write(&file, app).unwrap();
    let out = cluster.cli(&["deploy", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before: BTreeSet<String> = running(&cluster).into_iter().map(|t| t.id).collect();
    assert_eq!(before.len(), 4);

    let out = cluster.cli(&["restart", "web", "--detach"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut samples = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let tasks = running(&cluster);
        let healthy = tasks
            .iter()
            .filter(|t| {
                !t.health_check_results.is_empty() && t.health_check_results.iter().all(|h| h.alive)
            })
            .count();
        samples += 1;
        assert!(
            healthy >= 2,
            "only {healthy} healthy during the restart (sample {samples})"
        );
        let ids: BTreeSet<String> = tasks.iter().map(|t| t.id.clone()).collect();
        if healthy == 4 && ids.is_disjoint(&before) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "restart did not finish"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        samples > 3,
        "the restart was sampled while it ran ({samples} samples)"
    );
}

/// Deploying the very file that runs changes nothing: the dry run says "no changes" with no
/// diff, and the real deploy keeps every task (same ids), as Marathon does for an identical
/// PUT. Uses the example users start with, whose defaults the scheduler fills in.
#[test]
fn redeploying_an_unchanged_file_restarts_nothing() {
    let cluster = Cluster::start(2);
    cluster.wait_agents_registered();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/webserver.json");
    let file = example.to_str().unwrap();
    let out = cluster.cli(&["deploy", file]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ids = |cluster: &Cluster| -> BTreeSet<String> {
        let out = cluster.cli(&["tasks", "webserver", "--output", "json"]);
        let tasks: Vec<Task> = serde_json::from_slice(&out.stdout).unwrap();
        tasks.into_iter().map(|t| t.id).collect()
    };
    let before = ids(&cluster);
    assert_eq!(before.len(), 2);

    let out = cluster.cli(&["deploy", file, "--dry-run"]);
    let text = console::strip_ansi_codes(&stdout(&out)).to_string();
    assert!(out.status.success(), "{text}");
    assert_eq!(text.trim(), "no changes", "{text}");

    let out = cluster.cli(&["deploy", file]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(ids(&cluster), before, "the same tasks keep running");
    let out = cluster.cli(&["destroy", "webserver"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// An agent reports a task's start and its health as they happen, not at its next
/// heartbeat: with 10 s heartbeats, a deploy that waits for one healthy instance ends
/// about one interval after the agent registered (the heartbeat that brings the
/// assignment), not two (the next heartbeat reporting it running and healthy).
#[test]
fn an_agent_reports_a_started_and_healthy_task_without_waiting_for_its_next_heartbeat() {
    let started = Instant::now();
    let cluster = Cluster::start_with_heartbeats(1, "10s", "60s");
    cluster.wait_agents_registered();
    let file = cluster.dir.path().join("prompt.json");
    std::fs::write(
        &file,
        r#"{
  "id": "/prompt",
  "cmd": "sleep 600",
  "instances": 1, "cpus": 0.1, "mem": 16,
  "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"},
                    "intervalSeconds": 1, "gracePeriodSeconds": 5, "timeoutSeconds": 2}]
}"#,
    )
    .unwrap();
    let out = cluster.cli(&["deploy", file.to_str().unwrap()]);
    let took = started.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("/prompt: 1/1 healthy"),
        "{}",
        stdout(&out)
    );
    // The second heartbeat, 10 s after registering, brings the task. Reported at the
    // next heartbeat, the deploy ends past 20 s (measured: 16.5 s with 8 s heartbeats);
    // reported at once, near 11 s (8.7 s with 8 s heartbeats).
    assert!(
        took < Duration::from_secs(16),
        "the deploy took {took:?}: the agent waited for heartbeats to report"
    );
}
