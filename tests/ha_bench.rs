//! Benchmarks of the HA scheduler on loopback (ignored by `cargo test`; run them with
//! `bench/failover.sh`, which builds in release mode and prints the machine):
//!
//! - failover: 3 etcd members + 3 schedulers; 20 times kill -9 the leader and measure the
//!   time from the kill to the first write (POST /v2/apps) answered 201 through a surviving
//!   node, then restart the killed node and let the cluster settle. p50/p95/max.
//! - throughput: POST /v2/apps of N = 200 apps (0 instances, so only the store is measured),
//!   sequentially and from 8 concurrent clients, against the 3-scheduler etcd cluster (to
//!   the leader, and round-robin over all nodes so 2 of 3 writes are forwarded) and against
//!   one scheduler on the embedded redb store.
//!
//! Figures only: nothing here asserts a time.

#[path = "support/agent.rs"]
mod agent_support;
#[path = "support/etcd.rs"]
mod etcd;
#[path = "support/ha.rs"]
mod ha;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ha::*;
use reqwest::Method;
use serde_json::{json, Value};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "{cores} cores, {cpu}, load average {}, {} build of infra",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    )
}

/// Nearest-rank percentile of sorted durations.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn app(id: &str) -> Value {
    json!({"id": id, "cmd": "sleep 1000", "instances": 0, "cpus": 0.1, "mem": 16})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: bench/failover.sh"]
async fn bench_failover_over_20_leader_kills() {
    let _serial = SERIAL.lock().await;
    let rounds: usize = std::env::var("FAILOVER_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut cluster = HaCluster::start(3, 0).await;
    let mut to_write = Vec::new();
    let mut to_agreement = Vec::new();
    let mut failed_writes = 0usize;
    for round in 0..rounds {
        let leader = cluster.leader().await;
        let survivors: Vec<String> = (0..3)
            .filter(|&i| i != leader)
            .map(|i| cluster.url(i).to_string())
            .collect();
        let killed = Instant::now();
        cluster.kill_scheduler(leader);
        // Writes round-robin over the survivors until one is answered 201.
        let mut attempt = 0usize;
        let write_time = loop {
            let url = &survivors[attempt % survivors.len()];
            attempt += 1;
            let reply = request(
                url,
                Method::POST,
                "/v2/apps",
                Some(&app(&format!("/failover/r{round}-a{attempt}"))),
                &[],
                Duration::from_secs(2),
            )
            .await;
            match reply {
                Ok(r) if r.status == 201 => break killed.elapsed(),
                _ => failed_writes += 1,
            }
            assert!(
                killed.elapsed() < Duration::from_secs(60),
                "round {round}: no write accepted within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let (new_leader, _) = cluster
            .wait_leader(&[leader], Duration::from_secs(60))
            .await;
        let agreed = killed.elapsed();
        eprintln!(
            "round {round:2}: killed node {leader}, node {new_leader} leads; first write after {write_time:?} ({} attempts)",
            attempt
        );
        to_write.push(write_time);
        to_agreement.push(agreed);
        cluster.spawn_scheduler(leader);
        // Settle: the restarted node follows the new leader.
        let start = Instant::now();
        while cluster.agreed_leader().await != Some(new_leader) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "round {round}: the restarted node does not follow"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    to_write.sort();
    println!("machine: {}", machine());
    println!(
        "failover, kill -9 of the leader to the first write answered 201 by a surviving node ({} rounds, default --leader-ttl):",
        to_write.len()
    );
    println!(
        "  p50 {:.2} s  p95 {:.2} s  max {:.2} s  min {:.2} s  (write attempts refused or failed meanwhile, retried every 20 ms: {failed_writes})",
        percentile(&to_write, 50.0).as_secs_f64(),
        percentile(&to_write, 95.0).as_secs_f64(),
        to_write.last().unwrap().as_secs_f64(),
        to_write.first().unwrap().as_secs_f64(),
    );
    to_agreement.sort();
    println!(
        "  (kill to both survivors naming the same new leader, measured after the first write: p50 {:.2} s  max {:.2} s)",
        percentile(&to_agreement, 50.0).as_secs_f64(),
        to_agreement.last().unwrap().as_secs_f64(),
    );
}

/// POSTs `n` apps to `urls` (round-robin) from `clients` concurrent clients; apps/s.
async fn post_apps(urls: &[String], prefix: &str, n: usize, clients: usize) -> f64 {
    let urls = Arc::new(urls.to_vec());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let urls = urls.clone();
            let next = next.clone();
            let prefix = prefix.to_string();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if k >= n {
                        break;
                    }
                    let url = &urls[k % urls.len()];
                    let resp = http
                        .post(format!("{url}/v2/apps"))
                        .json(&app(&format!("{prefix}/a{k}")))
                        .timeout(Duration::from_secs(30))
                        .send()
                        .await
                        .expect("POST /v2/apps");
                    assert_eq!(resp.status(), 201, "{:?}", resp.text().await);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// One `infra scheduler` on the embedded redb store (no --etcd).
fn redb_scheduler(dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["scheduler", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(["--insecure-http", "--no-auth"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start infra scheduler");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("infra scheduler listening on ")
        .expect("listening line")
        .to_string();
    (child, format!("http://{addr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: bench/failover.sh"]
async fn bench_write_throughput_etcd_against_redb() {
    let _serial = SERIAL.lock().await;
    let n: usize = std::env::var("THROUGHPUT_APPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    println!("machine: {}", machine());
    println!("write throughput, POST /v2/apps of {n} apps (0 instances):");

    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = redb_scheduler(dir.path());
    let seq = post_apps(std::slice::from_ref(&url), "/seq", n, 1).await;
    let par = post_apps(std::slice::from_ref(&url), "/par", n, 8).await;
    println!("  redb, one scheduler:                     sequential {seq:7.1} apps/s   8 clients {par:7.1} apps/s");
    let _ = child.kill();
    let _ = child.wait();

    let cluster = HaCluster::start(3, 0).await;
    let leader = cluster.leader().await;
    let leader_url = vec![cluster.url(leader).to_string()];
    let seq = post_apps(&leader_url, "/seq", n, 1).await;
    let par = post_apps(&leader_url, "/par", n, 8).await;
    println!("  etcd (3 members), to the leader:         sequential {seq:7.1} apps/s   8 clients {par:7.1} apps/s");
    let all = cluster.urls();
    let seq = post_apps(&all, "/rrseq", n, 1).await;
    let par = post_apps(&all, "/rrpar", n, 8).await;
    println!("  etcd (3 members), round-robin, 2/3 forwarded: sequential {seq:7.1} apps/s   8 clients {par:7.1} apps/s");
}
