//! Load harness of the scheduler (issue 17): a real `infra scheduler` process on redb, a
//! fleet of simulated agents speaking the real agent protocol over HTTP (in this process),
//! and a driver that creates apps (single `POST /v2/apps` and batch `PUT /v2/apps` writes at
//! the same time), reads them back at full load, scales, restarts and destroys them, loses
//! a tenth of the agents at once and restarts the scheduler with everything loaded. Prints
//! the figures as a Markdown table, with the machine.
//!
//! Run it with `bench/scheduler/run.sh` (builds the release `infra` first), or
//! `cargo bench --bench scheduler_load -- --agents 100 --apps 1000` for a quick run.

mod api;
mod fleet;
mod scheduler;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use serde_json::{json, Value};

use api::{app_definition, app_id, percentile_ms, Api};
use fleet::{Fleet, TaskBehaviour};
use scheduler::Launch;

#[derive(Parser, Debug)]
#[command(about = "Load harness of infra scheduler")]
struct Args {
    /// Simulated agents.
    #[arg(long, default_value_t = 1000)]
    agents: usize,
    /// Apps created.
    #[arg(long, default_value_t = 10_000)]
    apps: usize,
    /// Instances per app.
    #[arg(long, default_value_t = 10)]
    instances: usize,
    /// Apps per batch `PUT /v2/apps` write (half the apps come this way, half one by one).
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Concurrent single `POST /v2/apps` clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// The scheduler's --agent-timeout in ms (agents heartbeat at a third of it, at most 2 s).
    #[arg(long, default_value_t = 6000)]
    agent_timeout_ms: u64,
    /// How long a simulated task starts before it runs, in ms.
    #[arg(long, default_value_t = 0)]
    start_delay_ms: u64,
    /// Share of simulated tasks that fail instead of running (0.0-1.0).
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Agents send every status in every heartbeat (the protocol before deltas).
    #[arg(long)]
    full_heartbeats: bool,
    /// Samples of each GET measured at full load.
    #[arg(long, default_value_t = 20)]
    reads: usize,
    /// The `infra` binary (default: the release build next to this benchmark).
    #[arg(long)]
    infra: Option<std::path::PathBuf>,
    /// Give up waiting for a phase to converge after this many seconds.
    #[arg(long, default_value_t = 300)]
    phase_timeout_s: u64,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

/// One row of the results table.
struct Row {
    figure: String,
    value: String,
    target: String,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
}

impl Report {
    fn add(&mut self, figure: impl Into<String>, value: impl Into<String>, target: &str) {
        let row = Row {
            figure: figure.into(),
            value: value.into(),
            target: target.to_string(),
        };
        eprintln!("  {}: {} (target {})", row.figure, row.value, row.target);
        self.rows.push(row);
    }

    fn print(&self) {
        println!("| figure | measured | target |");
        println!("|---|---|---|");
        for r in &self.rows {
            println!("| {} | {} | {} |", r.figure, r.value, r.target);
        }
    }
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or(0.0, |kib| kib as f64 / 1024.0 / 1024.0);
    format!(
        "{cpus} CPUs ({model}), {mem:.1} GiB RAM, load average {}",
        load_average()
    )
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Polls `done` every 20 ms until it holds (the time it took) or `timeout` passes (None).
async fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if done() {
            return Some(started.elapsed());
        }
        if started.elapsed() > timeout {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn secs(d: Option<Duration>) -> String {
    match d {
        Some(d) => format!("{:.2} s", d.as_secs_f64()),
        None => "not reached".to_string(),
    }
}

fn ms_pair(latencies: &[Duration]) -> String {
    format!(
        "p50 {:.1} ms, p99 {:.1} ms (n={})",
        percentile_ms(latencies, 50.0),
        percentile_ms(latencies, 99.0),
        latencies.len()
    )
}

/// Creates every app: half with single POSTs from `clients` concurrent clients, half with
/// batch PUTs, both at once. Returns the POST latencies.
async fn create_apps(api: &Api, args: &Args) -> anyhow::Result<Vec<Duration>> {
    let singles: Vec<usize> = (0..args.apps)
        .filter(|i| (i / args.batch).is_multiple_of(2))
        .collect();
    let batched: Vec<usize> = (0..args.apps)
        .filter(|i| (i / args.batch) % 2 == 1)
        .collect();
    let per_client = singles.len().div_ceil(args.clients.max(1)).max(1);
    let posts = singles.chunks(per_client).map(|chunk| {
        let api = api.clone();
        let chunk = chunk.to_vec();
        let instances = args.instances;
        async move {
            let mut latencies = Vec::with_capacity(chunk.len());
            for i in chunk {
                let def = app_definition(i, instances);
                let (took, _) = api
                    .timed(reqwest::Method::POST, "/v2/apps", Some(&def))
                    .await?;
                latencies.push(took);
            }
            anyhow::Ok(latencies)
        }
    });
    let batches = async {
        for chunk in batched.chunks(args.batch.max(1)) {
            let defs: Vec<Value> = chunk
                .iter()
                .map(|&i| app_definition(i, args.instances))
                .collect();
            api.timed(reqwest::Method::PUT, "/v2/apps", Some(&Value::Array(defs)))
                .await?;
        }
        anyhow::Ok(())
    };
    let (posted, batched) = tokio::join!(futures::future::join_all(posts), batches);
    batched?;
    let mut latencies = Vec::new();
    for client in posted {
        latencies.extend(client?);
    }
    Ok(latencies)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let total = args.apps * args.instances;
    let timeout = Duration::from_secs(args.phase_timeout_s);
    let agent_timeout = Duration::from_millis(args.agent_timeout_ms);
    let data = tempfile::tempdir().context("a data dir for the scheduler")?;
    let launch = Launch {
        binary: args.infra.clone().unwrap_or_else(scheduler::default_binary),
        data_dir: data.path().to_path_buf(),
        agent_timeout,
        listen: format!("127.0.0.1:{}", scheduler::free_port()?),
    };
    println!("# infra scheduler under load");
    println!();
    println!(
        "{} agents, {} apps x {} instances = {total} tasks; agent timeout {} ms; heartbeats {}; store redb; machine: {}",
        args.agents,
        args.apps,
        args.instances,
        args.agent_timeout_ms,
        if args.full_heartbeats { "full" } else { "delta" },
        machine()
    );
    println!();
    let mut report = Report::default();
    let mut sched = launch.start()?;
    let api = Api::new(&sched.url)?;
    eprintln!("scheduler at {} ({})", sched.url, launch.binary.display());
    let behaviour = TaskBehaviour {
        start_delay: Duration::from_millis(args.start_delay_ms),
        fail_rate: args.fail_rate,
        delta_heartbeats: !args.full_heartbeats,
    };
    let fleet: Fleet = fleet::start(
        &sched.url,
        args.agents,
        behaviour,
        fleet::agent_http_client()?,
    )
    .await?;
    eprintln!("{} agents registered", fleet.agents.len());

    // Create: API to TASK_RUNNING, with POST latencies while the cluster converges.
    eprintln!("creating {} apps ...", args.apps);
    let cpu_before = sched.cpu_seconds();
    let acked_before = fleet.counters.running_acked.load(Ordering::Relaxed);
    let started = Instant::now();
    let post_latencies = create_apps(&api, &args).await?;
    let written = started.elapsed();
    let converged = wait_until(timeout, || {
        fleet.counters.running_acked.load(Ordering::Relaxed) >= acked_before + total as u64
    })
    .await;
    let cpu = sched.cpu_seconds() - cpu_before;
    let deployed = api.deployments_done(timeout).await;
    eprintln!(
        "  deployments finished {:.2} s after the first write",
        started.elapsed().as_secs_f64()
    );
    if !deployed {
        report.add(
            "create deployments finished",
            format!("not within {} s", timeout.as_secs()),
            "-",
        );
    }
    match converged {
        Some(_) => {
            let span = fleet.last_ack().duration_since(started);
            report.add(
                "tasks placed and reported running per second (first API call to last TASK_RUNNING)",
                format!(
                    "{:.0}/s ({total} tasks in {:.2} s; API writes took {:.2} s)",
                    total as f64 / span.as_secs_f64(),
                    span.as_secs_f64(),
                    written.as_secs_f64()
                ),
                ">= 10,000/s",
            );
        }
        None => report.add(
            "tasks placed and reported running per second",
            format!(
                "not converged: {} of {total} running after {:.0} s",
                fleet.counters.running_acked.load(Ordering::Relaxed) - acked_before,
                started.elapsed().as_secs_f64()
            ),
            ">= 10,000/s",
        ),
    }
    report.add(
        "POST /v2/apps while converging",
        ms_pair(&post_latencies),
        "p99 < 20 ms",
    );
    report.add(
        "scheduler CPU seconds per 1,000 placements",
        format!("{:.2} s", cpu / (total as f64 / 1000.0)),
        "-",
    );

    // Reads at full load.
    eprintln!("reading at full load ...");
    let (apps_lat, apps_size) = api.sample_get("/v2/apps", args.reads).await?;
    report.add(
        format!(
            "GET /v2/apps, {} apps ({:.1} MB)",
            args.apps,
            apps_size as f64 / 1e6
        ),
        ms_pair(&apps_lat),
        "< 200 ms",
    );
    let (tasks_lat, tasks_size) = api.sample_get("/v2/tasks", args.reads).await?;
    report.add(
        format!(
            "GET /v2/tasks, {total} tasks ({:.1} MB)",
            tasks_size as f64 / 1e6
        ),
        ms_pair(&tasks_lat),
        "-",
    );
    let (embed_lat, embed_size) = api
        .sample_get("/v2/apps?embed=apps.tasks", args.reads.clamp(1, 5))
        .await?;
    report.add(
        format!(
            "GET /v2/apps?embed=apps.tasks ({:.1} MB)",
            embed_size as f64 / 1e6
        ),
        ms_pair(&embed_lat),
        "-",
    );

    // Scale a tenth of the apps to twice their instances, then back.
    let scaled: Vec<usize> = (0..args.apps).step_by(10).collect();
    let scale_to = |n: usize| -> Value {
        Value::Array(
            scaled
                .iter()
                .map(|&i| json!({"id": app_id(i), "instances": n}))
                .collect(),
        )
    };
    let up_total = total + scaled.len() * args.instances;
    eprintln!("scaling {} apps up ...", scaled.len());
    let t = Instant::now();
    api.timed(
        reqwest::Method::PUT,
        "/v2/apps",
        Some(&scale_to(args.instances * 2)),
    )
    .await?;
    let up = wait_until(timeout, || fleet.running_on_live_agents() >= up_total).await;
    let up = (up.is_some() && api.deployments_done(timeout).await).then(|| t.elapsed());
    report.add(
        format!(
            "scale {} apps x2 ({} more tasks) to all running",
            scaled.len(),
            up_total - total
        ),
        secs(up),
        "-",
    );
    let t = Instant::now();
    api.timed(
        reqwest::Method::PUT,
        "/v2/apps",
        Some(&scale_to(args.instances)),
    )
    .await?;
    let down = wait_until(timeout, || fleet.running_total() <= total).await;
    let down = (down.is_some() && api.deployments_done(timeout).await).then(|| t.elapsed());
    report.add("scale them back down to all killed", secs(down), "-");

    // Restart a hundredth of the apps (rolling: new tasks, then the old ones killed).
    let restarted: Vec<usize> = (0..args.apps).step_by(100).collect();
    eprintln!("restarting {} apps ...", restarted.len());
    let acked = fleet.counters.running_acked.load(Ordering::Relaxed);
    let t = Instant::now();
    for &i in &restarted {
        let path = format!("/v2/apps{}/restart", app_id(i));
        if let Err(err) = api.timed(reqwest::Method::POST, &path, None).await {
            // An earlier phase that did not finish still holds the app.
            eprintln!("  {err:#}");
            break;
        }
    }
    let replaced = (restarted.len() * args.instances) as u64;
    let restart = wait_until(timeout, || {
        fleet.counters.running_acked.load(Ordering::Relaxed) >= acked + replaced
            && fleet.running_total() <= total
    })
    .await;
    let restart = (restart.is_some() && api.deployments_done(timeout).await).then(|| t.elapsed());
    report.add(
        format!(
            "restart {} apps ({replaced} tasks replaced)",
            restarted.len()
        ),
        secs(restart),
        "-",
    );

    // Lose a tenth of the agents at once.
    let lost = (args.agents / 10).max(1);
    eprintln!("losing {lost} agents ...");
    let t = Instant::now();
    for agent in fleet.agents.iter().take(lost) {
        agent.silent.store(true, Ordering::Relaxed);
    }
    let recovered = wait_until(timeout, || fleet.running_on_live_agents() >= total)
        .await
        .map(|_| t.elapsed());
    report.add(
        format!("{lost} agents lost: all their tasks running elsewhere"),
        secs(recovered),
        &format!(
            "<= agent timeout + 2 s = {:.1} s",
            agent_timeout.as_secs_f64() + 2.0
        ),
    );

    // Restart the scheduler with everything loaded.
    let peak_first = sched.peak_rss_mib();
    eprintln!("restarting the scheduler ...");
    sched.kill();
    let t = Instant::now();
    sched = launch.start()?;
    let listening = sched.startup;
    let mut serving = None;
    while t.elapsed() < timeout {
        if api.app_count().await == Some(args.apps) {
            serving = Some(t.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    report.add(
        format!("scheduler restart with {total} tasks: listening / serving GET /v2/apps"),
        format!("{:.2} s / {}", listening.as_secs_f64(), secs(serving)),
        "serving < 2 s",
    );
    // Nothing is replaced by the restart itself: the running count stays.
    tokio::time::sleep(agent_timeout).await;
    report.add(
        "tasks running after the restart (one agent timeout later)",
        format!("{} of {total}", fleet.running_on_live_agents()),
        &format!("{total}"),
    );

    // Destroy everything.
    eprintln!("destroying {} apps ...", args.apps);
    let t = Instant::now();
    for chunk in (0..args.apps)
        .collect::<Vec<_>>()
        .chunks(args.clients.max(1) * 8)
    {
        let deletes = chunk.iter().map(|&i| {
            let api = api.clone();
            async move {
                api.timed(
                    reqwest::Method::DELETE,
                    &format!("/v2/apps{}", app_id(i)),
                    None,
                )
                .await
            }
        });
        for result in futures::future::join_all(deletes).await {
            result?;
        }
    }
    let destroyed = wait_until(timeout, || fleet.running_on_live_agents() == 0)
        .await
        .map(|_| t.elapsed());
    report.add(
        format!("destroy {} apps: all tasks killed", args.apps),
        secs(destroyed),
        "-",
    );
    report.add(
        "scheduler peak RSS (first run / after restart)",
        format!("{peak_first:.0} MiB / {:.0} MiB", sched.peak_rss_mib()),
        "< 1 GB",
    );
    report.add(
        "agent heartbeats (errors)",
        format!(
            "{} ({})",
            fleet.counters.heartbeats.load(Ordering::Relaxed),
            fleet.counters.heartbeat_errors.load(Ordering::Relaxed)
        ),
        "-",
    );
    println!();
    report.print();
    println!();
    println!("load average at the end: {}", load_average());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(run(args))
}
