//! What the scheduler's client subcommands (`deploy`, `scale`, `apps`, `tasks`, `restart`,
//! `destroy`) share: where the scheduler is, how its errors are shown, and waiting for a
//! deployment with a progress bar. Calls only `client` and the `api` types.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use clap::Args;

use crate::api::marathon::App;
use crate::client::api::canonical;
use crate::client::{Client, ClientError};

/// Where the scheduler is (shared by the client subcommands).
#[derive(Args, Debug, Clone, Default)]
pub struct SchedulerArg {
    /// Scheduler URL(s), comma separated (default: INFRA_SCHEDULER, then the context file
    /// `infra up` writes).
    #[arg(long, env = "INFRA_SCHEDULER")]
    pub scheduler: Option<String>,
}

impl SchedulerArg {
    pub fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::resolve(self.scheduler.as_deref())?)
    }
}

/// Prints a client error for people: Marathon's 422 details one per line as
/// `LABEL: /path: why`; returns the exit status (1).
pub fn report_client_error(label: &str, err: &ClientError) -> i32 {
    match err {
        ClientError::Api { status, body, .. } if !body.details.is_empty() => {
            for detail in &body.details {
                for why in &detail.errors {
                    eprintln!("{label}: {}: {why}", detail.path);
                }
            }
            if *status != 422 {
                eprintln!("{label}: {}", body.message);
            }
        }
        ClientError::Api {
            status: 409, body, ..
        } => eprintln!(
            "{label}: {} (a deployment is in progress; --force overrides it)",
            body.message
        ),
        ClientError::Api {
            status: 404, body, ..
        } => eprintln!("{label}: not found: {}", body.message),
        other => eprintln!("error: {other}"),
    }
    1
}

/// How long an app may sit in the queue with a placement problem before giving up.
const UNPLACEABLE_AFTER: Duration = Duration::from_secs(10);
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(600);

/// Waits until the deployment is gone and healthy instances reach the desired count,
/// showing progress. Exit 1 when the app cannot be placed (with the queue's reason) or the
/// deployment ends short of healthy.
pub async fn wait_for_deployment(
    client: &Client,
    id: &str,
    deployment_id: &str,
) -> anyhow::Result<i32> {
    let mut progress = Progress::new(id);
    let started = Instant::now();
    let mut unplaceable_since: Option<Instant> = None;
    let mut short_since: Option<Instant> = None;
    loop {
        let deployments = client.deployments().await?;
        let active = deployments.iter().any(|d| {
            d.id == deployment_id
                || (deployment_id.is_empty() && d.affected_apps.iter().any(|a| a == id))
        });
        let Some(app) = client.app(id).await? else {
            progress.finish(&format!("{id} is gone"));
            return Ok(0);
        };
        let healthy = healthy_count(&app);
        progress.update(healthy, app.instances);
        // Why tasks keep failing, for every way of giving up below.
        let why = last_failure_line(&app)
            .map(|line| format!("\n{line}"))
            .unwrap_or_default();
        if !active && healthy >= app.instances {
            progress.finish(&format!("{id}: {healthy}/{} healthy", app.instances));
            return Ok(0);
        }
        if !active {
            let since = *short_since.get_or_insert_with(Instant::now);
            if since.elapsed() > UNPLACEABLE_AFTER {
                progress.finish(&format!(
                    "{id}: the deployment ended with {healthy}/{} healthy{why}",
                    app.instances
                ));
                return Ok(1);
            }
        } else {
            short_since = None;
        }
        let reason = client
            .queue()
            .await?
            .queue
            .into_iter()
            .find(|item| canonical(&item.app.id) == id)
            .and_then(|item| item.reason);
        match reason {
            Some(reason) => {
                let since = *unplaceable_since.get_or_insert_with(Instant::now);
                if since.elapsed() > UNPLACEABLE_AFTER {
                    progress.finish(&format!(
                        "{id} cannot be placed: {reason} (it stays queued; the scheduler places it when an agent fits){why}"
                    ));
                    return Ok(1);
                }
            }
            None => unplaceable_since = None,
        }
        if started.elapsed() > DEPLOY_TIMEOUT {
            progress.finish(&format!(
                "{id}: still deploying after {}s{why}",
                DEPLOY_TIMEOUT.as_secs()
            ));
            return Ok(1);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A bar on a terminal, plain lines otherwise.
struct Progress {
    id: String,
    bar: Option<indicatif::ProgressBar>,
    last: Option<(u32, u32)>,
}

impl Progress {
    fn new(id: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} healthy {elapsed}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(id.to_string());
            bar
        });
        Progress {
            id: id.to_string(),
            bar,
            last: None,
        }
    }

    fn update(&mut self, healthy: u32, desired: u32) {
        if self.last == Some((healthy, desired)) {
            return;
        }
        self.last = Some((healthy, desired));
        match &self.bar {
            Some(bar) => {
                bar.set_length(desired as u64);
                bar.set_position(healthy.min(desired) as u64);
            }
            None => println!("{}: {healthy}/{desired} healthy", self.id),
        }
    }

    fn finish(&mut self, message: &str) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        println!("{message}");
    }
}

/// `/web: last task failure (2026-01-01T00:00:00.000Z on compute1): Command exited with
/// status 1: ...`, for an app that has one.
pub fn last_failure_line(app: &App) -> Option<String> {
    let failure = app.last_task_failure.as_ref()?;
    if failure.message.is_empty() {
        return None;
    }
    Some(format!(
        "{}: last task failure ({} on {}): {}",
        app.id, failure.timestamp, failure.host, failure.message
    ))
}

/// Counted as healthy: passing health checks when the app has some, else running.
pub fn healthy_count(app: &App) -> u32 {
    if app.health_checks.is_empty() {
        app.tasks_running.unwrap_or(0)
    } else {
        app.tasks_healthy.unwrap_or(0)
    }
}
