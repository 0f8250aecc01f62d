//! The agent's Docker runtime against the real engine, with a tiny image built here from
//! the static busybox binary: BRIDGE port mapping answering on 127.0.0.1, health checks,
//! labels and limits, kill with removal, exit codes, pull errors, and adoption of running
//! containers by a recreated supervisor.

#[path = "support/agent.rs"]
mod agent_support;

use std::time::Duration;

use agent_support::*;
use bollard::query_parameters::InspectContainerOptions;
use infra::agent::{docker, Supervisor};
use infra::api::agent::TaskState;

async fn engine() -> bollard::Docker {
    let engine = docker::connect()
        .await
        .expect("these tests need a running Docker engine (dockerd)");
    build_test_image(&engine).await;
    engine
}

/// Waits up to 10 s for the container to no longer exist.
async fn wait_gone(engine: &bollard::Docker, name: &str) {
    for _ in 0..100 {
        if engine
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("container {name} still exists");
}

fn unique(prefix: &str) -> String {
    format!("{prefix}.{}", uuid::Uuid::new_v4())
}

#[tokio::test]
async fn bridge_task_answers_on_its_host_port_and_kill_removes_the_container() {
    let engine = engine().await;
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::open(dir.path(), Some(engine.clone()))
        .await
        .unwrap();
    let task_id = unique("dockerweb");
    let port = free_port();
    let spec = docker_httpd_spec(&task_id, port);
    sup.apply(std::slice::from_ref(&spec)).await;
    wait_state(&sup, &task_id, TaskState::Running, Duration::from_secs(30)).await;
    wait_healthy(&sup, &task_id, Duration::from_secs(30)).await;
    assert_eq!(http_get(port).await.unwrap(), 200);

    let name = docker::container_name(&task_id);
    let info = engine
        .inspect_container(&name, None::<InspectContainerOptions>)
        .await
        .unwrap();
    let labels = info.config.unwrap().labels.unwrap();
    assert_eq!(labels.get("infra.task_id"), Some(&task_id));
    assert_eq!(
        labels.get("infra.app_id").map(String::as_str),
        Some("/test/app")
    );
    assert_eq!(labels.get("team").map(String::as_str), Some("infra"));
    let host = info.host_config.unwrap();
    assert_eq!(host.nano_cpus, Some(500_000_000));
    assert_eq!(host.memory, Some(64 * 1024 * 1024));

    sup.apply(&[]).await;
    wait_state(&sup, &task_id, TaskState::Killed, Duration::from_secs(20)).await;
    wait_gone(&engine, &name).await;
    assert!(http_get(port).await.is_err());
}

#[tokio::test]
async fn a_container_exit_is_reported_with_its_code() {
    let engine = engine().await;
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::open(dir.path(), Some(engine.clone()))
        .await
        .unwrap();
    let task_id = unique("dockerexit");
    let mut spec = docker_httpd_spec(&task_id, free_port());
    spec.health_checks.clear();
    spec.args = None;
    spec.cmd = Some("sleep 1; exit 5".into());
    sup.apply(std::slice::from_ref(&spec)).await;
    let status = wait_state(&sup, &task_id, TaskState::Failed, Duration::from_secs(30)).await;
    assert_eq!(status.exit_code, Some(5));
    sup.acknowledge(&sup.statuses());
    sup.apply(&[]).await;
    let name = docker::container_name(&task_id);
    wait_gone(&engine, &name).await;
}

#[tokio::test]
async fn a_pull_error_is_reported_in_the_task_status() {
    let engine = engine().await;
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::open(dir.path(), Some(engine)).await.unwrap();
    let task_id = unique("dockerpull");
    let mut spec = docker_httpd_spec(&task_id, free_port());
    // A registry that does not exist, on loopback: the pull must fail, and say so.
    spec.docker.as_mut().unwrap().image = "127.0.0.1:9/infra-test/missing:1".into();
    sup.apply(std::slice::from_ref(&spec)).await;
    let status = wait_state(&sup, &task_id, TaskState::Failed, Duration::from_secs(60)).await;
    let message = status.message.unwrap();
    assert!(
        message.contains("pulling image 127.0.0.1:9/infra-test/missing:1"),
        "{message}"
    );
}

#[tokio::test]
async fn a_recreated_supervisor_adopts_the_running_container() {
    let engine = engine().await;
    let dir = tempfile::tempdir().unwrap();
    let task_id = unique("dockeradopt");
    let port = free_port();
    let spec = docker_httpd_spec(&task_id, port);
    let name = docker::container_name(&task_id);
    let started_at = {
        let sup = Supervisor::open(dir.path(), Some(engine.clone()))
            .await
            .unwrap();
        sup.apply(std::slice::from_ref(&spec)).await;
        wait_healthy(&sup, &task_id, Duration::from_secs(30)).await;
        let info = engine
            .inspect_container(&name, None::<InspectContainerOptions>)
            .await
            .unwrap();
        info.state.unwrap().started_at.unwrap()
    };
    let sup = Supervisor::open(dir.path(), Some(engine.clone()))
        .await
        .unwrap();
    assert_eq!(sup.status(&task_id).unwrap().state, TaskState::Running);
    sup.apply(std::slice::from_ref(&spec)).await;
    wait_healthy(&sup, &task_id, Duration::from_secs(30)).await;
    let info = engine
        .inspect_container(&name, None::<InspectContainerOptions>)
        .await
        .unwrap();
    assert_eq!(
        info.state.unwrap().started_at.unwrap(),
        started_at,
        "not restarted"
    );
    assert_eq!(http_get(port).await.unwrap(), 200);

    sup.apply(&[]).await;
    wait_state(&sup, &task_id, TaskState::Killed, Duration::from_secs(20)).await;
}

#[tokio::test]
async fn an_agent_removes_only_its_own_unknown_containers() {
    let engine = engine().await;
    let mine = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let task_id = unique("dockerowner");
    let mut spec = docker_httpd_spec(&task_id, free_port());
    spec.health_checks.clear();
    let name = docker::container_name(&task_id);
    {
        let sup = Supervisor::open(mine.path(), Some(engine.clone()))
            .await
            .unwrap();
        sup.apply(std::slice::from_ref(&spec)).await;
        wait_state(&sup, &task_id, TaskState::Running, Duration::from_secs(30)).await;
    }
    // Another agent on the same engine leaves the container alone.
    let _other = Supervisor::open(other.path(), Some(engine.clone()))
        .await
        .unwrap();
    let info = engine
        .inspect_container(&name, None::<InspectContainerOptions>)
        .await
        .unwrap();
    assert_eq!(info.state.unwrap().running, Some(true));
    // Its own agent, having lost its table, removes the container it no longer knows.
    std::fs::remove_file(mine.path().join("tasks.json")).unwrap();
    let sup = Supervisor::open(mine.path(), Some(engine.clone()))
        .await
        .unwrap();
    assert!(sup.statuses().is_empty());
    wait_gone(&engine, &name).await;
}

#[tokio::test]
async fn host_network_task_with_a_volume_and_env_serves_the_mounted_file() {
    let engine = engine().await;
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("index.html"), "served from a volume\n").unwrap();
    let sup = Supervisor::open(dir.path(), Some(engine.clone()))
        .await
        .unwrap();
    let task_id = unique("dockerhost");
    let port = free_port();
    let mut spec = docker_httpd_spec(&task_id, port);
    spec.args = None;
    // PORT0 comes from the spec's env; the page comes from the read-only volume.
    spec.cmd = Some("exec /bin/busybox httpd -f -p 127.0.0.1:$PORT0 -h /site".into());
    let docker_spec = spec.docker.as_mut().unwrap();
    docker_spec.network = "HOST".into();
    docker_spec.port_mappings.clear();
    docker_spec.volumes.push(infra::api::agent::Volume {
        container_path: "/site".into(),
        host_path: site.display().to_string(),
        mode: "RO".into(),
    });
    sup.apply(std::slice::from_ref(&spec)).await;
    wait_healthy(&sup, &task_id, Duration::from_secs(30)).await;
    let body = reqwest::get(format!("http://127.0.0.1:{port}/index.html"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "served from a volume\n");
    let info = engine
        .inspect_container(
            &docker::container_name(&task_id),
            None::<InspectContainerOptions>,
        )
        .await
        .unwrap();
    let host = info.host_config.unwrap();
    assert_eq!(host.network_mode.as_deref(), Some("host"));
    assert_eq!(
        host.binds.unwrap(),
        vec![format!("{}:/site:ro", site.display())]
    );
    sup.apply(&[]).await;
    wait_state(&sup, &task_id, TaskState::Killed, Duration::from_secs(20)).await;
}

/// A Docker task is checked and logged where it runs: its COMMAND health check runs inside
/// the container (the file it tests exists only there), and what the container prints reaches
/// the agent's syslog socket tagged with the app id, like a process task's output.
#[tokio::test]
async fn docker_task_command_checks_run_inside_and_output_goes_to_syslog() {
    let engine = engine().await;
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("log.sock");
    let socket = tokio::net::UnixDatagram::bind(&socket_path).unwrap();
    let sup = Supervisor::open_with_syslog(dir.path(), Some(engine.clone()), &socket_path)
        .await
        .unwrap();
    let task_id = unique("dockercmd");
    let mut spec = docker_httpd_spec(&task_id, free_port());
    spec.args = None;
    spec.cmd = Some("echo hello from the container; exec httpd -f -p 8080 -h /www".into());
    assert!(
        !std::path::Path::new("/www/index.html").exists(),
        "the check must be able to fail on the host"
    );
    let mut check = http_check(0);
    check.protocol = infra::api::agent::HealthProtocol::Command;
    check.port = None;
    check.command = Some("test -f /www/index.html".into());
    spec.health_checks = vec![check];
    sup.apply(std::slice::from_ref(&spec)).await;
    wait_healthy(&sup, &task_id, Duration::from_secs(30)).await;

    let mut buf = vec![0u8; 4096];
    let line = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let n = socket.recv(&mut buf).await.unwrap();
            let line = String::from_utf8_lossy(&buf[..n]).to_string();
            if line.contains("hello from the container") {
                return line;
            }
        }
    })
    .await
    .expect("the container's line on the syslog socket within 10 s");
    assert!(line.contains("test.app"), "tagged with the app id: {line}");

    sup.apply(&[]).await;
    wait_state(&sup, &task_id, TaskState::Killed, Duration::from_secs(20)).await;
}

/// A Docker task's recent output comes from the engine (`docker logs --tail`), both with
/// the engine's own log driver and with the syslog driver the platform uses (Docker keeps a
/// copy for `docker logs`): the last 40 lines of each stream, then nothing while it is
/// unchanged, then the newer lines once the container writes more.
#[tokio::test]
async fn a_docker_tasks_recent_output_is_read_from_the_engine() {
    let engine = engine().await;
    for syslog in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        // A real datagram socket for the syslog driver to send to, drained as a syslog
        // daemon would (a full socket would block the container's output).
        let socket_path = dir.path().join("log.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 65536];
            while socket.recv(&mut buffer).is_ok() {}
        });
        let sup = if syslog {
            Supervisor::open_with_syslog(dir.path(), Some(engine.clone()), &socket_path).await
        } else {
            Supervisor::open(dir.path(), Some(engine.clone())).await
        }
        .unwrap();
        let task_id = unique("chatty");
        let mut spec = docker_httpd_spec(&task_id, free_port());
        spec.health_checks.clear();
        spec.args = Some(vec![
            "/bin/busybox".into(),
            "sh".into(),
            "-c".into(),
            "i=1; while [ $i -le 50 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done; \
             while [ ! -e /tmp/more ]; do sleep 0.2; done; echo out51; sleep 600"
                .into(),
        ]);
        sup.apply(std::slice::from_ref(&spec)).await;
        wait_state(&sup, &task_id, TaskState::Running, Duration::from_secs(30)).await;

        let mut tracker = infra::agent::output::OutputTracker::default();
        let (engine_of_sup, containers) = sup.containers().expect("the supervisor has Docker");
        assert_eq!(containers.len(), 1);
        let mut sent = Vec::new();
        for _ in 0..50 {
            sent = tracker
                .changed_containers(&engine_of_sup, &containers)
                .await;
            if sent.first().is_some_and(|(t, _)| {
                t.stdout.last().map(String::as_str) == Some("out50")
                    && t.stderr.last().map(String::as_str) == Some("err50")
            }) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(sent.len(), 1, "syslog driver: {syslog}");
        let tail = &sent[0].0;
        assert_eq!(tail.task_id, task_id);
        let expected = |stream: &str, from: u32, to: u32| -> Vec<String> {
            (from..=to).map(|i| format!("{stream}{i}")).collect()
        };
        assert_eq!(
            tail.stdout,
            expected("out", 11, 50),
            "syslog driver: {syslog}"
        );
        assert_eq!(
            tail.stderr,
            expected("err", 11, 50),
            "syslog driver: {syslog}"
        );

        tracker.accepted(&sent, &sup.statuses());
        assert!(
            tracker
                .changed_containers(&engine_of_sup, &containers)
                .await
                .is_empty(),
            "an unchanged tail is sent again"
        );

        let name = docker::container_name(&task_id);
        docker::exec_check(&engine, &name, "touch /tmp/more")
            .await
            .expect("docker exec");
        let mut newer = Vec::new();
        for _ in 0..50 {
            newer = tracker
                .changed_containers(&engine_of_sup, &containers)
                .await;
            if !newer.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(newer.len(), 1, "the newer line was not sent");
        assert_eq!(newer[0].0.stdout.last().map(String::as_str), Some("out51"));
        assert_eq!(newer[0].0.stdout.len(), 40);

        sup.apply(&[]).await;
        wait_state(&sup, &task_id, TaskState::Killed, Duration::from_secs(20)).await;
        wait_gone(&engine, &name).await;
    }
}

/// A Docker task that fails: its last lines (why it failed) are still read from its
/// container after it ended, so they reach the scheduler with the failure.
#[tokio::test]
async fn an_ended_docker_tasks_last_output_is_still_read() {
    let engine = engine().await;
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::open(dir.path(), Some(engine.clone()))
        .await
        .unwrap();
    let task_id = unique("last-words");
    let mut spec = docker_httpd_spec(&task_id, free_port());
    spec.health_checks.clear();
    spec.args = Some(vec![
        "/bin/busybox".into(),
        "sh".into(),
        "-c".into(),
        "echo starting; echo 'config error: no such file' >&2; exit 3".into(),
    ]);
    sup.apply(std::slice::from_ref(&spec)).await;
    wait_state(&sup, &task_id, TaskState::Failed, Duration::from_secs(30)).await;

    let (engine_of_sup, containers) = sup.containers().expect("the supervisor has Docker");
    assert_eq!(
        containers
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>(),
        vec![task_id.as_str()],
        "the ended task's container is still listed"
    );
    let tracker = infra::agent::output::OutputTracker::default();
    let sent = tracker
        .changed_containers(&engine_of_sup, &containers)
        .await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0.stdout, vec!["starting".to_string()]);
    assert_eq!(
        sent[0].0.stderr,
        vec!["config error: no such file".to_string()]
    );
    docker::remove(&engine, &docker::container_name(&task_id))
        .await
        .expect("remove the container");
}
