//! Health checks run by the agent next to its tasks: HTTP(S) GET on 127.0.0.1:port+path
//! (2xx/3xx healthy, 1xx too when `ignore_http1xx`), TCP connect, or a shell COMMAND that
//! must exit 0. Marathon's rules: failures inside the grace period do not count until the
//! first success; the result of each check lands in a shared [`HealthReport`] slot that the
//! heartbeat reads. The scheduler decides what to do with `max_consecutive_failures`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::api::agent::{HealthCheckSpec, HealthProtocol, HealthReport};

/// The latest report of each of a task's checks, by index; `None` before the first result.
pub type HealthSlots = Arc<Mutex<Vec<Option<HealthReport>>>>;

pub fn new_slots(count: usize) -> HealthSlots {
    Arc::new(Mutex::new(vec![None; count]))
}

/// The reports that exist so far.
pub fn snapshot(slots: &HealthSlots) -> Vec<HealthReport> {
    match slots.lock() {
        Ok(slots) => slots.iter().flatten().cloned().collect(),
        Err(_) => Vec::new(),
    }
}

/// Where a COMMAND check runs: on the agent's host for a process task, inside the task's
/// container for a Docker task (what the command sees is the task's filesystem).
#[derive(Clone)]
pub enum CheckPlace {
    Host,
    Container {
        engine: bollard::Docker,
        name: String,
    },
}

/// Runs check `index` forever (the caller aborts it when the task ends). `started` is when
/// the task started (adopted tasks: when the agent adopted them).
pub async fn run_check(
    index: usize,
    spec: HealthCheckSpec,
    slots: HealthSlots,
    started: Instant,
    place: CheckPlace,
    changed: Arc<tokio::sync::Notify>,
) {
    let interval = Duration::from_secs(spec.interval_seconds.max(1));
    let timeout = Duration::from_secs(spec.timeout_seconds.max(1));
    let grace = Duration::from_secs(spec.grace_period_seconds);
    let mut report = HealthReport {
        index,
        alive: false,
        consecutive_failures: 0,
        first_success: None,
        last_success: None,
        last_failure: None,
        last_failure_cause: None,
    };
    loop {
        let outcome = match tokio::time::timeout(timeout, check_once(&spec, &place)).await {
            Ok(result) => result,
            Err(_) => Err(format!("timed out after {}s", timeout.as_secs())),
        };
        let now = chrono::Utc::now().to_rfc3339();
        match outcome {
            Ok(()) => {
                report.alive = true;
                report.consecutive_failures = 0;
                report.first_success.get_or_insert_with(|| now.clone());
                report.last_success = Some(now);
            }
            Err(cause) => {
                report.alive = false;
                let in_grace = report.first_success.is_none() && started.elapsed() < grace;
                if !in_grace {
                    report.consecutive_failures += 1;
                }
                report.last_failure = Some(now);
                report.last_failure_cause = Some(cause);
            }
        }
        let flipped = match slots.lock() {
            Ok(mut slots) => match slots.get_mut(index) {
                Some(slot) => {
                    let flipped = slot.as_ref().map(|old| old.alive) != Some(report.alive);
                    *slot = Some(report.clone());
                    flipped
                }
                None => false,
            },
            Err(_) => false,
        };
        if flipped {
            changed.notify_one();
        }
        tokio::time::sleep(interval).await;
    }
}

/// One check; `Err` carries the cause, as Marathon's `lastFailureCause`.
pub async fn check_once(spec: &HealthCheckSpec, place: &CheckPlace) -> Result<(), String> {
    match spec.protocol {
        HealthProtocol::Http | HealthProtocol::Https => http_check(spec).await,
        HealthProtocol::Tcp => {
            let port = spec.port.ok_or("TCP health check without a port")?;
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .map(|_| ())
                .map_err(|err| format!("connect 127.0.0.1:{port}: {err}"))
        }
        HealthProtocol::Command => {
            let command = spec
                .command
                .as_deref()
                .ok_or("COMMAND health check without a command")?;
            if let CheckPlace::Container { engine, name } = place {
                return super::docker::exec_check(engine, name, command).await;
            }
            let status = tokio::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(command)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .status()
                .await
                .map_err(|err| format!("running {command:?}: {err}"))?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("command exited with {status}"))
            }
        }
    }
}

async fn http_check(spec: &HealthCheckSpec) -> Result<(), String> {
    let port = spec.port.ok_or("HTTP health check without a port")?;
    let scheme = if spec.protocol == HealthProtocol::Https {
        "https"
    } else {
        "http"
    };
    let path = spec.path.as_deref().unwrap_or("/");
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let url = format!("{scheme}://127.0.0.1:{port}{path}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(true)
        .build()
        .map_err(|err| format!("building an HTTP client: {err}"))?;
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|err| format!("GET {url}: {err}"))?;
    let status = response.status();
    let healthy = status.is_success()
        || status.is_redirection()
        || (spec.ignore_http1xx && status.is_informational());
    if healthy {
        Ok(())
    } else {
        Err(format!("GET {url}: HTTP {}", status.as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(protocol: HealthProtocol, port: Option<u16>, command: Option<&str>) -> HealthCheckSpec {
        HealthCheckSpec {
            protocol,
            path: Some("/".into()),
            port,
            command: command.map(str::to_string),
            grace_period_seconds: 0,
            interval_seconds: 1,
            timeout_seconds: 2,
            max_consecutive_failures: 3,
            ignore_http1xx: false,
        }
    }

    #[tokio::test]
    async fn tcp_check_follows_a_real_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(check_once(
            &spec(HealthProtocol::Tcp, Some(port), None),
            &CheckPlace::Host
        )
        .await
        .is_ok());
        drop(listener);
        assert!(check_once(
            &spec(HealthProtocol::Tcp, Some(port), None),
            &CheckPlace::Host
        )
        .await
        .is_err());
    }

    #[tokio::test]
    async fn command_check_uses_the_exit_status() {
        assert!(check_once(
            &spec(HealthProtocol::Command, None, Some("true")),
            &CheckPlace::Host
        )
        .await
        .is_ok());
        let err = check_once(
            &spec(HealthProtocol::Command, None, Some("exit 3")),
            &CheckPlace::Host,
        )
        .await
        .unwrap_err();
        assert!(err.contains('3'), "{err}");
    }

    #[tokio::test]
    async fn failures_in_the_grace_period_do_not_count() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let mut check = spec(HealthProtocol::Tcp, Some(port), None);
        check.grace_period_seconds = 60;
        let slots = new_slots(1);
        let changed = Arc::new(tokio::sync::Notify::new());
        let runner = tokio::spawn(run_check(
            0,
            check,
            slots.clone(),
            Instant::now(),
            CheckPlace::Host,
            changed.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
        runner.abort();
        let reports = snapshot(&slots);
        assert_eq!(reports.len(), 1);
        assert!(!reports[0].alive);
        assert_eq!(reports[0].consecutive_failures, 0);
        assert!(reports[0].last_failure_cause.is_some());
        // The first report is news for the scheduler: the agent is told to heartbeat.
        let told = tokio::time::timeout(Duration::from_millis(50), changed.notified()).await;
        assert!(
            told.is_ok(),
            "the first health report did not signal a change"
        );
    }
}
