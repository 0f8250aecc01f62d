//! `infra scale | apps | tasks | restart | destroy`: small clients of the scheduler's API.
//! Tables for people, `--output json` for scripts; writes wait for their deployment unless
//! `--detach`.

use clap::{Args, ValueEnum};

use super::scheduler_client::{
    last_failure_line, report_client_error, wait_for_deployment, SchedulerArg,
};
use crate::api::marathon::{App, Task};
use crate::client::api::canonical;

#[derive(Clone, Copy, Debug, Default, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct ScaleArgs {
    /// The app id, e.g. `nodeapp` or `/group/app`.
    pub app: String,
    /// The new instance count.
    pub instances: u32,
    #[command(flatten)]
    pub scheduler: SchedulerArg,
    /// Return once the scheduler accepted the change, without waiting for the deployment.
    #[arg(long)]
    pub detach: bool,
    /// Override a deployment in progress.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct AppsArgs {
    #[command(flatten)]
    pub scheduler: SchedulerArg,
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Args, Debug)]
pub struct TasksArgs {
    /// Only this app's tasks.
    pub app: Option<String>,
    #[command(flatten)]
    pub scheduler: SchedulerArg,
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Args, Debug)]
pub struct AppRefArgs {
    /// The app id.
    pub app: String,
    #[command(flatten)]
    pub scheduler: SchedulerArg,
    /// Return once the scheduler accepted the change, without waiting for the deployment.
    #[arg(long)]
    pub detach: bool,
    /// Override a deployment in progress.
    #[arg(long)]
    pub force: bool,
}

pub async fn scale(args: ScaleArgs) -> anyhow::Result<i32> {
    let client = args.scheduler.client()?;
    let id = canonical(&args.app);
    let body = serde_json::json!({ "instances": args.instances });
    let result = match client.update_app(&id, &body, args.force).await {
        Ok(result) => result,
        Err(err) => return Ok(report_client_error(&id, &err)),
    };
    println!(
        "scaling {id} to {} instances (deployment {})",
        args.instances, result.deployment_id
    );
    if args.detach {
        return Ok(0);
    }
    wait_for_deployment(&client, &id, &result.deployment_id).await
}

pub async fn list_apps(args: AppsArgs) -> anyhow::Result<i32> {
    let client = args.scheduler.client()?;
    let apps = client.apps().await?;
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&apps)?),
        OutputFormat::Table => {
            print!("{}", apps_table(&apps));
            for app in &apps {
                if let Some(line) = last_failure_line(app) {
                    println!("{line}");
                }
            }
        }
    }
    Ok(0)
}

pub async fn list_tasks(args: TasksArgs) -> anyhow::Result<i32> {
    let client = args.scheduler.client()?;
    let app = args.app.as_deref().map(canonical);
    let tasks = match client.tasks(app.as_deref()).await {
        Ok(tasks) => tasks,
        Err(err) => return Ok(report_client_error(app.as_deref().unwrap_or("tasks"), &err)),
    };
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&tasks)?),
        OutputFormat::Table => {
            print!("{}", tasks_table(&tasks));
            if let Some(id) = app.as_deref() {
                if let Ok(Some(app)) = client.app(id).await {
                    if let Some(line) = last_failure_line(&app) {
                        println!("{line}");
                    }
                }
            }
        }
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct RestartArgs {
    #[command(flatten)]
    pub app: AppRefArgs,
    /// Start with empty persistent volumes, anywhere: for an app whose volumes are on an
    /// agent that is gone (without it, the app waits for that agent to come back).
    #[arg(long)]
    pub wipe: bool,
}

pub async fn restart(restart: RestartArgs) -> anyhow::Result<i32> {
    let args = restart.app;
    let client = args.scheduler.client()?;
    let id = canonical(&args.app);
    let result = match client.restart_app_with(&id, args.force, restart.wipe).await {
        Ok(result) => result,
        Err(err) => return Ok(report_client_error(&id, &err)),
    };
    println!("restarting {id} (deployment {})", result.deployment_id);
    if args.detach {
        return Ok(0);
    }
    wait_for_deployment(&client, &id, &result.deployment_id).await
}

pub async fn destroy(args: AppRefArgs) -> anyhow::Result<i32> {
    let client = args.scheduler.client()?;
    let id = canonical(&args.app);
    let result = match client.delete_app(&id, args.force).await {
        Ok(result) => result,
        Err(err) => return Ok(report_client_error(&id, &err)),
    };
    println!("destroying {id} (deployment {})", result.deployment_id);
    if args.detach {
        return Ok(0);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        if client.app(&id).await?.is_none() {
            println!("{id} destroyed");
            return Ok(0);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    eprintln!("{id} is still there after 120s");
    Ok(1)
}

pub fn apps_table(apps: &[App]) -> String {
    let mut rows = vec![vec![
        "ID".to_string(),
        "INSTANCES".to_string(),
        "HEALTHY".to_string(),
        "CPUS".to_string(),
        "MEM".to_string(),
        "DEPLOYMENTS".to_string(),
    ]];
    for app in apps {
        let deployments = app.deployments.as_ref().map(|d| d.len()).unwrap_or(0);
        rows.push(vec![
            app.id.clone(),
            format!("{}/{}", app.tasks_running.unwrap_or(0), app.instances),
            if app.health_checks.is_empty() {
                "-".to_string()
            } else {
                format!("{}/{}", app.tasks_healthy.unwrap_or(0), app.instances)
            },
            format!("{}", app.cpus),
            format!("{}", app.mem),
            deployments.to_string(),
        ]);
    }
    render_table(&rows)
}

pub fn tasks_table(tasks: &[Task]) -> String {
    let mut rows = vec![[
        "TASK ID", "APP", "HOST", "PORTS", "STATE", "HEALTH", "STARTED",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect::<Vec<_>>()];
    for task in tasks {
        let ports = task
            .ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let health = if task.health_check_results.is_empty() {
            "-"
        } else if task.health_check_results.iter().all(|h| h.alive) {
            "healthy"
        } else {
            "unhealthy"
        };
        rows.push(vec![
            task.id.clone(),
            task.app_id.clone(),
            task.host.clone(),
            if ports.is_empty() { "-".into() } else { ports },
            task.state.clone(),
            health.to_string(),
            task.started_at.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    render_table(&rows)
}

/// Left-aligned columns separated by two spaces.
pub fn render_table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| console::measure_text_width(s))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 < row.len() {
                line.push_str(&console::pad_str(
                    cell,
                    widths[c],
                    console::Alignment::Left,
                    None,
                ));
                line.push_str("  ");
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_table_shows_counts_and_health() {
        let mut app: App = serde_json::from_str(
            r#"{"id":"/web","cmd":"x","instances":3,"healthChecks":[{"protocol":"HTTP"}]}"#,
        )
        .unwrap();
        app.tasks_running = Some(2);
        app.tasks_healthy = Some(1);
        let table = apps_table(&[app]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "ID    INSTANCES  HEALTHY  CPUS  MEM  DEPLOYMENTS");
        assert_eq!(lines[1], "/web  2/3        1/3      1     128  0");
    }
}
