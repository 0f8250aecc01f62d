//! Local persistent volumes end to end: a real scheduler and two real agents (processes
//! of the built binary) driven by the real CLI. A command task with a persistent volume
//! appends one line per start to a file in it; the file keeps every line across a killed
//! task, a redeploy and a lost-and-back agent (each time on the same agent, which the app
//! waits for while it is gone), and `infra restart --wipe` starts it afresh elsewhere;
//! `infra destroy` deletes its volumes on every agent holding them.

#[path = "support/cli.rs"]
mod cli_support;

use std::path::PathBuf;
use std::time::Duration;

use cli_support::*;
use infra::api::marathon::Task;

fn app(marker: &str) -> String {
    format!(
        r#"{{
  "id": "/pv",
  "cmd": "echo $MESOS_TASK_ID >> data/starts && exec sleep 3600",
  "instances": 1,
  "cpus": 0.1,
  "mem": 32,
  "backoffSeconds": 1,
  "env": {{"MARKER": "{marker}"}},
  "container": {{"type": "MESOS", "volumes": [
    {{"containerPath": "data", "mode": "RW", "persistent": {{"size": 16}}}}
  ]}}
}}"#
    )
}

fn running(cluster: &Cluster) -> Vec<Task> {
    cluster.running_of("pv")
}

/// The task ids recorded in the volume on agent `i`, in start order.
fn starts(cluster: &Cluster, i: usize) -> Vec<String> {
    let file: PathBuf =
        infra::agent::volumes::volume_dir(&cluster.agent_dir(i), "/pv", "data").join("starts");
    std::fs::read_to_string(&file)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The one running task, once it has recorded its start in its volume.
fn wait_single_task(cluster: &Cluster, not: &[String]) -> (Task, usize) {
    let mut found = None;
    wait_until("a new running task", Duration::from_secs(40), || {
        let now = running(cluster);
        match now.as_slice() {
            [task] if !not.contains(&task.id) => {
                let agent = cluster.agent_of(task);
                if starts(cluster, agent).last() == Some(&task.id) {
                    found = Some((task.clone(), agent));
                    return true;
                }
                false
            }
            _ => false,
        }
    });
    found.expect("found")
}

/// `GET path` on the scheduler (plain HTTP/1.0): the body.
fn get_body(cluster: &Cluster, path: &str) -> String {
    use std::io::{Read, Write};
    let addr = cluster.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the scheduler");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("request");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("answer");
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

fn kill_task(cluster: &Cluster, agent: usize, task_id: &str) {
    let entry = infra::agent::table::load(&cluster.agent_dir(agent))
        .expect("agent table")
        .into_iter()
        .find(|e| e.spec.task_id == task_id)
        .expect("the task in its agent's table");
    let infra::agent::table::Handle::Process { pgid, .. } = entry.handle else {
        panic!("not a process task")
    };
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

#[test]
fn a_persistent_volume_keeps_its_data_on_its_agent_until_a_wipe() {
    let mut cluster = Cluster::start(2);
    cluster.wait_agents_registered();
    let file = cluster.dir.path().join("pv.json");
    std::fs::write(&file, app("one")).expect("write app");
    let file_arg = file.to_str().expect("utf-8 path");

    // A bad volume is refused, naming the field.
    let bad = cluster.dir.path().join("bad.json");
    std::fs::write(&bad, app("x").replace("\"size\": 16", "\"size\": 0")).expect("write");
    let out = cluster.cli(&["deploy", bad.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    assert!(
        (stdout(&out) + &stderr(&out)).contains("/container/volumes(0)/persistent/size"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    let out = cluster.cli(&["deploy", file_arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (first, home) = wait_single_task(&cluster, &[]);
    assert_eq!(starts(&cluster, home), vec![first.id.clone()]);

    // The task dies: the new one runs on the same agent, with the data of the first.
    kill_task(&cluster, home, &first.id);
    let (second, agent) = wait_single_task(&cluster, std::slice::from_ref(&first.id));
    assert_eq!(agent, home, "placed back on the agent holding the volume");
    assert_eq!(
        starts(&cluster, home),
        vec![first.id.clone(), second.id.clone()]
    );

    // A redeploy (config change): same agent, same data.
    std::fs::write(&file, app("two")).expect("write app");
    let out = cluster.cli(&["deploy", file_arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (third, agent) = wait_single_task(&cluster, &[first.id.clone(), second.id.clone()]);
    assert_eq!(agent, home);
    assert_eq!(starts(&cluster, home).len(), 3);

    // The agent (and its task) is lost: the app waits for it instead of starting an empty
    // volume on the other agent, and says why.
    cluster.kill_agent(home);
    kill_tasks_of(&cluster.agent_dir(home));
    wait_until(
        "the launch queue to wait for the agent",
        Duration::from_secs(30),
        || get_body(&cluster, "/v2/queue").contains(&format!("waiting for agent agent-{home}")),
    );
    let other = 3 - home;
    std::thread::sleep(Duration::from_secs(2));
    assert!(running(&cluster).is_empty(), "nothing runs elsewhere");
    assert!(starts(&cluster, other).is_empty());
    // It comes back: the task starts there with all its data.
    cluster.agents[home - 1] = Some(cluster.spawn_agent(home));
    let (fourth, agent) = wait_single_task(&cluster, std::slice::from_ref(&third.id));
    assert_eq!(agent, home);
    assert_eq!(
        starts(&cluster, home),
        vec![
            first.id.clone(),
            second.id.clone(),
            third.id.clone(),
            fourth.id.clone()
        ]
    );

    // Lost again, for good: `restart --wipe` starts afresh on the other agent.
    cluster.kill_agent(home);
    kill_tasks_of(&cluster.agent_dir(home));
    wait_until("the agent lost", Duration::from_secs(30), || {
        get_body(&cluster, "/v2/queue").contains("waiting for agent")
    });
    let out = cluster.cli(&["restart", "pv", "--wipe", "--detach"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (fresh, agent) = wait_single_task(&cluster, std::slice::from_ref(&fourth.id));
    assert_eq!(agent, other);
    assert_eq!(starts(&cluster, other), vec![fresh.id]);

    // Destroyed: its volumes go with it, as Marathon destroys a destroyed app's volumes:
    // at once on the agent that ran it, and on the lost agent (holding the old copy) once
    // it is back.
    let (home_volumes, other_volumes) = (
        infra::agent::volumes::app_dir(&cluster.agent_dir(home), "/pv"),
        infra::agent::volumes::app_dir(&cluster.agent_dir(other), "/pv"),
    );
    assert!(home_volumes.exists(), "the lost agent still holds its copy");
    let out = cluster.cli(&["destroy", "pv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_until(
        "the volume deleted on the agent that ran the app",
        Duration::from_secs(30),
        || !other_volumes.exists(),
    );
    cluster.agents[home - 1] = Some(cluster.spawn_agent(home));
    wait_until(
        "the old copy deleted on the agent back",
        Duration::from_secs(30),
        || !home_volumes.exists(),
    );
}
