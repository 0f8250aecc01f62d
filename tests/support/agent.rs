//! Helpers for the agent's integration tests: task specs, free loopback ports, polling.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use infra::agent::Supervisor;
use infra::api::agent::{HealthCheckSpec, HealthProtocol, TaskSpec, TaskState, TaskStatus};

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A command task with PORT0 set to `port`.
pub fn process_spec(task_id: &str, cmd: &str, port: u16) -> TaskSpec {
    let mut env = BTreeMap::new();
    env.insert("PORT0".to_string(), port.to_string());
    env.insert("PORT".to_string(), port.to_string());
    TaskSpec {
        task_id: task_id.to_string(),
        app_id: "/test/app".to_string(),
        app_version: "2026-01-01T00:00:00.000Z".to_string(),
        cmd: Some(cmd.to_string()),
        args: None,
        env,
        labels: BTreeMap::new(),
        user: None,
        cpus: 0.1,
        mem: 32.0,
        disk: 0.0,
        host_ports: vec![port],
        docker: None,
        health_checks: Vec::new(),
        kill_grace_period_seconds: 3,
    }
}

pub fn http_check(port: u16) -> HealthCheckSpec {
    HealthCheckSpec {
        protocol: HealthProtocol::Http,
        path: Some("/".to_string()),
        port: Some(port),
        command: None,
        grace_period_seconds: 30,
        interval_seconds: 1,
        timeout_seconds: 2,
        max_consecutive_failures: 3,
        ignore_http1xx: false,
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `timeout`.
pub async fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the task reaches `state`.
pub async fn wait_state(sup: &Supervisor, task_id: &str, state: TaskState, timeout: Duration) -> TaskStatus {
    wait_for(&format!("{task_id} to be {state:?}"), timeout, || {
        sup.status(task_id).filter(|s| s.state == state)
    })
    .await
}

/// Waits until the task's first health check reports alive.
pub async fn wait_healthy(sup: &Supervisor, task_id: &str, timeout: Duration) -> TaskStatus {
    wait_for(&format!("{task_id} to be healthy"), timeout, || {
        sup.status(task_id)
            .filter(|s| s.health.first().map(|h| h.alive).unwrap_or(false))
    })
    .await
}

/// GET http://127.0.0.1:port/ and return the status code.
pub async fn http_get(port: u16) -> Result<u16, reqwest::Error> {
    let response = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/"))
        .timeout(Duration::from_secs(5))
        .send()
        .await?;
    Ok(response.status().as_u16())
}

/// Whether a process with this pid exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => {
            let state = text[text.rfind(')').unwrap() + 1..].split_whitespace().next().unwrap().to_string();
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}
