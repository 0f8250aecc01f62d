//! `infra move APP --to HOST`: moves a resident app's task with its persistent volumes to
//! another agent, waits until it runs there, and reports the downtime (from the old task
//! being told to stop to the new one running, as polled every 100 ms).

use std::time::{Duration, Instant};

use clap::Args;
use serde_json::Value;

use crate::cli::scheduler_client::{report_client_error, SchedulerArg};
use crate::client::api::Client;

#[derive(Args, Debug)]
pub struct MoveArgs {
    /// The app id (an app with a persistent volume and one instance).
    pub app: String,
    /// The host name of the agent to move it to.
    #[arg(long)]
    pub to: String,
    #[command(flatten)]
    pub scheduler: SchedulerArg,
    /// Give up waiting after this many seconds (the move goes on).
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

fn text<'a>(status: &'a Value, key: &str) -> &'a str {
    status.get(key).and_then(Value::as_str).unwrap_or("")
}

pub async fn run(args: MoveArgs) -> anyhow::Result<i32> {
    let client = args.scheduler.client()?;
    let id = crate::api::marathon::canonical_app_id(&args.app);
    let started = Instant::now();
    let status = match client.move_app(&id, &args.to).await {
        Ok(status) => status,
        Err(err) => return Ok(report_client_error(&id, &err)),
    };
    println!(
        "moving {id} from {} to {}: copying its volumes while it runs",
        text(&status, "from"),
        text(&status, "to")
    );
    let deadline = started + Duration::from_secs(args.timeout);
    let mut stopped_at: Option<Instant> = None;
    loop {
        if Instant::now() > deadline {
            eprintln!(
                "{id}: still moving after {}s; see GET /v2/apps{id}/move",
                args.timeout
            );
            return Ok(1);
        }
        let status = match client.move_status(&id).await {
            Ok(status) => status,
            Err(err) => return Ok(report_client_error(&id, &err)),
        };
        match text(&status, "status") {
            "final" if stopped_at.is_none() => {
                stopped_at = Some(Instant::now());
                println!("pre-copy done; the old task stops for the final copy");
            }
            "failed" => {
                eprintln!(
                    "{id}: the move failed, the app stays on {}: {}",
                    text(&status, "from"),
                    text(&status, "detail")
                );
                return Ok(1);
            }
            "done" => {
                let stopped = stopped_at.unwrap_or(started);
                if running_on(&client, &id, text(&status, "toAgentId")).await {
                    println!(
                        "moved {id} to {} (checksum {}); final copy {} ms; downtime {:.2}s",
                        text(&status, "to"),
                        text(&status, "detail"),
                        status
                            .get("finalMillis")
                            .and_then(Value::as_u64)
                            .unwrap_or(0),
                        stopped.elapsed().as_secs_f64()
                    );
                    return Ok(0);
                }
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether a task of the app runs on the agent `agent_id`.
async fn running_on(client: &Client, id: &str, agent_id: &str) -> bool {
    let Ok(tasks) = client.tasks(Some(id)).await else {
        return false;
    };
    tasks
        .iter()
        .any(|t| t.state == "TASK_RUNNING" && t.slave_id.as_deref() == Some(agent_id))
}
