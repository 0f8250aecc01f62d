//! The scheduler under test: a real `infra scheduler` process on loopback with a redb data
//! dir. Its launch flags live here only (the place to add TLS and auth flags once the
//! scheduler requires them). Reads its CPU time and peak RSS from /proc.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

pub struct SchedulerProcess {
    child: Child,
    pub url: String,
    /// From spawn to the "listening on" line.
    pub startup: Duration,
}

/// How the scheduler is started.
#[derive(Debug, Clone)]
pub struct Launch {
    pub binary: PathBuf,
    pub data_dir: PathBuf,
    pub agent_timeout: Duration,
    /// Keep the same port across restarts so the agents find it again.
    pub listen: String,
}

impl Launch {
    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .args(["scheduler", "--listen", &self.listen, "--data-dir"])
            .arg(&self.data_dir)
            // Plain HTTP without tokens: the harness measures scheduling, not TLS or auth.
            .args(["--insecure-http", "--no-auth"])
            .args([
                "--agent-timeout",
                &format!("{}ms", self.agent_timeout.as_millis()),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        command
    }

    /// Starts the scheduler and waits for it to say where it listens.
    pub fn start(&self) -> anyhow::Result<SchedulerProcess> {
        let spawned = Instant::now();
        let mut child = self
            .command()
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        let stdout = child.stdout.take().context("the scheduler's stdout")?;
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .context("reading the scheduler's first line")?;
        let startup = spawned.elapsed();
        let addr = line
            .trim()
            .strip_prefix("infra scheduler listening on ")
            .with_context(|| format!("unexpected first line of the scheduler: {line:?}"))?
            .to_string();
        // Keep reading its stdout so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        Ok(SchedulerProcess {
            child,
            url: format!("http://{addr}"),
            startup,
        })
    }
}

impl SchedulerProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU seconds the process has used.
    pub fn cpu_seconds(&self) -> f64 {
        proc_cpu_seconds(self.pid()).unwrap_or(0.0)
    }

    /// Peak resident set size in MiB (VmHWM).
    pub fn peak_rss_mib(&self) -> f64 {
        proc_status_kib(self.pid(), "VmHWM:").unwrap_or(0) as f64 / 1024.0
    }

    /// SIGKILL: the restart measured is a crash's, nothing flushed on the way out.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SchedulerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn proc_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let ticks = 100.0; // USER_HZ on Linux
    Some((utime + stime) / ticks)
}

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The release `infra` binary next to this benchmark's own (the same target dir).
pub fn default_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/release/deps/scheduler_load-HASH -> target/release/infra
    exe.parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("infra"))
        .unwrap_or_else(|| PathBuf::from("infra"))
}

/// A free loopback port to keep across restarts.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}
