//! The agent's process runtime against real processes: a `python3 -m http.server` task
//! started through the supervisor, its HTTP health check, kill with the grace period over
//! the whole process group, exit codes, and adoption by a recreated supervisor.

#[path = "support/agent.rs"]
mod agent_support;

use std::time::{Duration, Instant};

use agent_support::*;
use infra::agent::table::{self, Handle};
use infra::agent::Supervisor;
use infra::api::agent::TaskState;

const SERVER: &str =
    "sleep 300 & echo $! > child.pid; exec python3 -m http.server $PORT0 --bind 127.0.0.1";

fn pid_of(data_dir: &std::path::Path, task_id: &str) -> i32 {
    let entry = table::load(data_dir)
        .unwrap()
        .into_iter()
        .find(|e| e.spec.task_id == task_id)
        .expect("task in the persisted table");
    match entry.handle {
        Handle::Process { pid, .. } => pid,
        other => panic!("not a process handle: {other:?}"),
    }
}

fn child_pid(data_dir: &std::path::Path, task_id: &str) -> i32 {
    let path = data_dir.join("tasks").join(task_id).join("child.pid");
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn http_task_starts_turns_healthy_and_kill_stops_its_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::open(dir.path(), None).await.unwrap();
    let port = free_port();
    let mut spec = process_spec("web.1", SERVER, port);
    spec.health_checks.push(http_check(port));
    sup.apply(std::slice::from_ref(&spec)).await;

    let status = sup.status("web.1").unwrap();
    assert_eq!(status.state, TaskState::Running);
    assert_eq!(status.host_ports, vec![port]);
    assert!(status.started_at.is_some());
    let healthy = wait_healthy(&sup, "web.1", Duration::from_secs(20)).await;
    assert_eq!(healthy.health[0].consecutive_failures, 0);
    assert_eq!(http_get(port).await.unwrap(), 200);
    let sandbox = dir.path().join("tasks/web.1");
    assert!(
        sandbox.join("stderr").exists(),
        "output lands in the sandbox"
    );

    let pid = pid_of(dir.path(), "web.1");
    let child = child_pid(dir.path(), "web.1");
    assert!(pid_alive(pid) && pid_alive(child));

    // Applying assignments without the task kills it, with its whole group.
    sup.apply(&[]).await;
    assert_eq!(sup.status("web.1").unwrap().state, TaskState::Killing);
    wait_state(&sup, "web.1", TaskState::Killed, Duration::from_secs(10)).await;
    wait_for("the group to be gone", Duration::from_secs(5), || {
        (!pid_alive(pid) && !pid_alive(child)).then_some(())
    })
    .await;
    assert!(
        http_get(port).await.is_err(),
        "nothing answers on the port any more"
    );
    assert!(
        table::load(dir.path()).unwrap().is_empty(),
        "killed tasks leave the table"
    );
}

#[tokio::test]
async fn a_task_ignoring_sigterm_is_sigkilled_after_its_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::open(dir.path(), None).await.unwrap();
    let mut spec = process_spec(
        "stubborn.1",
        "trap '' TERM; sleep 300 & echo $! > child.pid; wait",
        0,
    );
    spec.kill_grace_period_seconds = 2;
    sup.apply(std::slice::from_ref(&spec)).await;
    wait_for("child.pid", Duration::from_secs(5), || {
        std::fs::read_to_string(dir.path().join("tasks/stubborn.1/child.pid"))
            .ok()
            .filter(|s| !s.trim().is_empty())
    })
    .await;
    let child = child_pid(dir.path(), "stubborn.1");
    let started = Instant::now();
    sup.apply(&[]).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        pid_alive(child),
        "SIGTERM is ignored, so the task lives through the grace period"
    );
    let status = wait_state(
        &sup,
        "stubborn.1",
        TaskState::Killed,
        Duration::from_secs(10),
    )
    .await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "killed after {took:?}, before the grace period"
    );
    assert!(took < Duration::from_secs(6), "killed only after {took:?}");
    assert_eq!(status.exit_code, Some(128 + 9));
    wait_for("the child to be gone", Duration::from_secs(5), || {
        (!pid_alive(child)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn exits_are_detected_with_their_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::open(dir.path(), None).await.unwrap();
    let failing = process_spec("fail.1", "echo boom >&2; exit 3", 0);
    let finishing = process_spec("done.1", "true", 0);
    sup.apply(&[failing.clone(), finishing.clone()]).await;
    let failed = wait_state(&sup, "fail.1", TaskState::Failed, Duration::from_secs(5)).await;
    assert_eq!(failed.exit_code, Some(3));
    assert_eq!(
        failed.message.as_deref(),
        Some("Command exited with status 3: boom"),
        "a failure says why, as Marathon's lastTaskFailure does"
    );
    let done = wait_state(&sup, "done.1", TaskState::Finished, Duration::from_secs(5)).await;
    assert_eq!(done.exit_code, Some(0));
    assert_eq!(done.message, None);
    let stderr = std::fs::read_to_string(dir.path().join("tasks/fail.1/stderr")).unwrap();
    assert_eq!(stderr, "boom\n");

    // Terminal tasks are not restarted while assigned, and are forgotten once reported
    // and no longer assigned.
    sup.apply(&[failing.clone(), finishing.clone()]).await;
    assert_eq!(sup.status("fail.1").unwrap().state, TaskState::Failed);
    sup.apply(&[]).await;
    assert!(
        sup.status("fail.1").is_some(),
        "kept until a heartbeat reported it"
    );
    sup.acknowledge(&sup.statuses());
    sup.apply(&[]).await;
    assert!(sup.statuses().is_empty());
}

#[tokio::test]
async fn a_task_whose_port_is_taken_reports_the_servers_error() {
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::open(dir.path(), None).await.unwrap();
    // A listener outside the platform holds the port.
    let stray = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = stray.local_addr().unwrap().port();
    let spec = process_spec(
        "web.1",
        "exec python3 -m http.server $PORT0 --bind 127.0.0.1",
        port,
    );
    sup.apply(std::slice::from_ref(&spec)).await;
    let failed = wait_state(&sup, "web.1", TaskState::Failed, Duration::from_secs(20)).await;
    let message = failed.message.unwrap_or_default();
    assert!(
        message.starts_with("Command exited with status 1: ")
            && message.contains("Address already in use"),
        "{message}"
    );
}

#[tokio::test]
async fn a_command_that_cannot_start_is_reported_failed() {
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::open(dir.path(), None).await.unwrap();
    let mut missing = process_spec("missing.1", "unused", 0);
    missing.cmd = None;
    missing.args = Some(vec!["/nonexistent/binary".into()]);
    let mut empty = process_spec("empty.1", "unused", 0);
    empty.cmd = None;
    sup.apply(&[missing, empty]).await;
    let status = sup.status("empty.1").unwrap();
    assert_eq!(status.state, TaskState::Failed);
    assert!(status.message.unwrap().contains("neither cmd nor args"));
    let status = wait_state(&sup, "missing.1", TaskState::Failed, Duration::from_secs(5)).await;
    assert_eq!(status.exit_code, Some(127));
    let stderr = std::fs::read_to_string(dir.path().join("tasks/missing.1/stderr")).unwrap();
    assert!(stderr.contains("/nonexistent/binary"), "{stderr}");
}

#[tokio::test]
async fn a_recreated_supervisor_adopts_the_running_task_instead_of_restarting_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut spec = process_spec("adopt.1", SERVER, port);
    spec.health_checks.push(http_check(port));
    let pid = {
        let sup = Supervisor::open(dir.path(), None).await.unwrap();
        sup.apply(std::slice::from_ref(&spec)).await;
        wait_healthy(&sup, "adopt.1", Duration::from_secs(20)).await;
        pid_of(dir.path(), "adopt.1")
    };
    // The first supervisor is gone; the task is not.
    assert!(pid_alive(pid));
    assert_eq!(http_get(port).await.unwrap(), 200);

    let sup = Supervisor::open(dir.path(), None).await.unwrap();
    let status = sup.status("adopt.1").expect("adopted");
    assert_eq!(status.state, TaskState::Running);
    assert!(status.started_at.is_some());
    sup.apply(std::slice::from_ref(&spec)).await;
    assert_eq!(
        pid_of(dir.path(), "adopt.1"),
        pid,
        "same process, not a new one"
    );
    wait_healthy(&sup, "adopt.1", Duration::from_secs(20)).await;

    // An adopted task is killed like any other.
    let child = child_pid(dir.path(), "adopt.1");
    sup.apply(&[]).await;
    wait_state(&sup, "adopt.1", TaskState::Killed, Duration::from_secs(10)).await;
    wait_for("the group to be gone", Duration::from_secs(5), || {
        (!pid_alive(pid) && !pid_alive(child)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_adopted_task_that_exits_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let spec = process_spec("short.1", "sleep 2; exit 4", 0);
    {
        let sup = Supervisor::open(dir.path(), None).await.unwrap();
        sup.apply(std::slice::from_ref(&spec)).await;
    }
    let sup = Supervisor::open(dir.path(), None).await.unwrap();
    assert_eq!(sup.status("short.1").unwrap().state, TaskState::Running);
    let status = wait_state(&sup, "short.1", TaskState::Failed, Duration::from_secs(10)).await;
    assert_eq!(status.exit_code, Some(4));
}

#[tokio::test]
async fn a_task_that_exited_while_the_agent_was_down_is_reported_failed() {
    let dir = tempfile::tempdir().unwrap();
    let spec = process_spec("gone.1", "exec sleep 300", 0);
    let pid = {
        let sup = Supervisor::open(dir.path(), None).await.unwrap();
        sup.apply(std::slice::from_ref(&spec)).await;
        pid_of(dir.path(), "gone.1")
    };
    // The task's own command dies (the wrapper shell records its status).
    let task_pid = wait_for(
        "the command under the wrapper",
        Duration::from_secs(5),
        || {
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .ok()?
                .split_whitespace()
                .next()?
                .parse::<i32>()
                .ok()
        },
    )
    .await;
    unsafe { libc::kill(task_pid, libc::SIGKILL) };
    wait_for("the process to die", Duration::from_secs(5), || {
        (!pid_alive(pid)).then_some(())
    })
    .await;
    let sup = Supervisor::open(dir.path(), None).await.unwrap();
    let status = sup.status("gone.1").unwrap();
    assert!(status.state.is_terminal(), "{status:?}");
    assert_eq!(status.state, TaskState::Failed);
    assert_eq!(status.exit_code, Some(137));
    assert!(status.message.unwrap().contains("not running"));
}

#[tokio::test]
async fn task_output_goes_to_syslog_tagged_with_the_app_id() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("log.sock");
    let socket = tokio::net::UnixDatagram::bind(&socket_path).unwrap();
    let sup = Supervisor::open_with_syslog(dir.path(), None, &socket_path)
        .await
        .unwrap();
    let mut spec = process_spec("talk.1", "echo hello from the task; echo oops >&2", 0);
    spec.app_id = "/group/talker".into();
    sup.apply(&[spec]).await;
    let mut received = Vec::new();
    let mut buf = vec![0u8; 4096];
    while received.len() < 2 {
        let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
            .await
            .expect("syslog lines within 5s")
            .unwrap();
        received.push(String::from_utf8_lossy(&buf[..n]).to_string());
    }
    received.sort();
    assert_eq!(
        received,
        vec![
            "<11>group.talker: oops".to_string(),
            "<14>group.talker: hello from the task".to_string()
        ]
    );
}

#[tokio::test]
async fn a_process_task_is_held_to_its_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::open(dir.path(), None).await.unwrap();
    let hog = "exec python3 -c 'import time; x = bytearray(200 * 1024 * 1024); time.sleep(30)'";
    let mut small = process_spec("hog-small.1", hog, 0);
    small.mem = 48.0;
    let mut large = process_spec(
        "hog-large.1",
        "exec python3 -c 'x = bytearray(100 * 1024 * 1024)'",
        0,
    );
    large.mem = 512.0;
    sup.apply(&[small, large]).await;
    let status = wait_state(
        &sup,
        "hog-small.1",
        TaskState::Failed,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        status.exit_code,
        Some(137),
        "killed by the OOM killer: {status:?}"
    );
    let status = wait_state(
        &sup,
        "hog-large.1",
        TaskState::Finished,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(status.exit_code, Some(0));
}
