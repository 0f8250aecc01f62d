//! How many SSH round trips a converged run of the benchmark workload costs, counted by the
//! SSH transport itself (`infra::transport::ssh::stats`): one real docker host made by the
//! provider, bench/workload/site.yml run once to converge it, then once more, counted. The
//! test fails when a change makes the converged run chattier than the bound below, so a
//! regression in round trips shows without timing anything.

#[path = "support/provider.rs"]
mod provider_support;

use std::path::PathBuf;

use infra::engine::{self, RunOptions};
use infra::inventory::Inventory;
use infra::provider::{self, Progress};
use infra::transport::ssh::{self, SshStats};
use provider_support::*;

fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn options(inventory: Inventory, known_hosts: PathBuf) -> RunOptions {
    RunOptions {
        known_hosts: vec![known_hosts],
        ..RunOptions::new(project_root().join("bench/workload/site.yml"), inventory)
    }
}

/// Runs the workload once on the cluster's running hosts; returns the SSH work it did and
/// the number of changed tasks.
async fn run_workload(
    inventory_path: &std::path::Path,
    docker: &bollard::Docker,
    spec: &provider::ClusterSpec,
    state: &provider::StateDir,
) -> (SshStats, u32) {
    let mut inventory = Inventory::load(inventory_path).unwrap();
    let missing = provider::attach_running(docker, spec, state, &mut inventory)
        .await
        .unwrap();
    assert!(missing.is_empty(), "hosts not running: {missing:?}");
    let before = ssh::stats();
    let started = std::time::Instant::now();
    let recap = engine::run(options(inventory, state.known_hosts_path()))
        .await
        .unwrap();
    let work = ssh::stats().since(&before);
    eprintln!("run took {:?}", started.elapsed());
    for (host, stats) in &recap.hosts {
        assert_eq!(stats.failed + stats.unreachable, 0, "{host}: {stats:?}");
    }
    let changed = recap.hosts.values().map(|s| s.changed).sum();
    (work, changed)
}

/// The bounds on a converged run of the 24-task workload on one host: the measured
/// counts plus a little slack, so only a real regression (a new exec or file operation in
/// some task) fails. Exec requests are bounded on their own: each starts processes on the
/// host, where an SFTP request is served inside the running sftp-server.
/// Measured: 1 exec (`systemctl show`), 129 SFTP requests, 2 channels. History: 11 execs
/// and 68 SFTP requests at first; a file read asking for the size and the first chunk
/// together (open, fstat + read, close) made it 58 requests; owner/group names read from
/// /etc/passwd and /etc/group over SFTP instead of a `getent` process per task (six tasks
/// name an owner or group) made it 5 execs and 106 SFTP requests (two reads of four
/// requests each, sent together, per such task); the group module reading /etc/group
/// likewise made it 4 execs and 110 SFTP requests; `apt` reading dpkg's status file and
/// `user` the account files, and `daemon_reload` only when systemd reports the unit
/// changed on disk, made it 1 exec and 129 SFTP requests.
const MAX_EXECS: u64 = 1;
const MAX_SFTP_REQUESTS: u64 = 140;
const MAX_CHANNELS: u64 = MAX_EXECS + 1;
/// A first run on a bare host: every exec is a session, a shell and a process on the host,
/// on top of the work (apt, useradd, systemctl) the host must do anyway. Measured: 14
/// (apt observes and installs, group and user observe and create, the symlink, the unit's
/// show and enable+start, the init command, the handler's show and restart). It was 35
/// before a plan's consecutive commands ran as one exec and directories were made over SFTP.
const MAX_FIRST_RUN_EXECS: u64 = 14;

#[tokio::test]
async fn a_converged_run_of_the_bench_workload_stays_within_its_round_trip_bound() {
    let docker = docker().await;
    let image = image(&docker).await;
    let cluster = unique_cluster("rt");
    let _guard = ClusterGuard::new(&cluster);
    let (dir, state) = state_dir(&cluster);
    let spec = spec(&cluster, &["node01"]);
    provider::up(
        &docker,
        &spec,
        &state,
        &image,
        SSH_TIMEOUT,
        &Progress::new("bench host"),
    )
    .await
    .unwrap();
    let inventory_path = dir.path().join(format!("{cluster}.yaml"));
    std::fs::write(
        &inventory_path,
        format!(
            "all:\n  vars:\n    infra_provider: docker\n    infra_cluster: {cluster}\n  hosts:\n    node01:\n"
        ),
    )
    .unwrap();

    let (first, changed) = run_workload(&inventory_path, &docker, &spec, &state).await;
    assert!(changed > 0, "a bare host needs converging");
    eprintln!("first run: {first:?}");
    assert!(
        first.execs <= MAX_FIRST_RUN_EXECS,
        "a first run ran {} commands (bound {MAX_FIRST_RUN_EXECS}): {first:?}",
        first.execs
    );

    let (converged, changed) = run_workload(&inventory_path, &docker, &spec, &state).await;
    eprintln!(
        "converged run: {converged:?}, {} round trips",
        converged.round_trips()
    );
    assert_eq!(changed, 0, "the second run must change nothing");
    assert_eq!(converged.connections, 1, "one SSH connection per host");
    assert!(
        converged.channels <= MAX_CHANNELS,
        "a converged run opened {} channels (bound {MAX_CHANNELS}): {converged:?}",
        converged.channels
    );
    assert!(
        converged.execs <= MAX_EXECS,
        "a converged run ran {} commands (bound {MAX_EXECS}): {converged:?}",
        converged.execs
    );
    assert!(
        converged.sftp_requests <= MAX_SFTP_REQUESTS,
        "a converged run sent {} SFTP requests (bound {MAX_SFTP_REQUESTS}): {converged:?}",
        converged.sftp_requests
    );
}
