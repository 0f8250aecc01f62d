//! `infra agent`: the compute nodes' agent daemon. Parses flags into an
//! [`AgentConfig`](crate::agent::AgentConfig) and runs [`crate::agent::daemon`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::agent::config::{self, AgentConfig, AgentTls};
use crate::cli::values::{parse_port_range, parse_positive_duration};
use crate::tls::Identity;

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// Scheduler URLs, comma separated, tried in order (e.g. http://10.0.0.1:8080).
    #[arg(long, value_delimiter = ',', required = true, env = "INFRA_SCHEDULER")]
    pub scheduler: Vec<String>,
    /// Where the agent keeps its id, task table and task sandboxes.
    #[arg(long, default_value = "/var/lib/infra/agent")]
    pub data_dir: PathBuf,
    /// The name `hostname` constraints match on (default: the system's host name).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Inclusive range of host ports given to tasks.
    #[arg(long, default_value = "31000-32000", value_parser = parse_port_range)]
    pub port_range: (u16, u16),
    /// KEY=VALUE attributes for constraints (datacenter, rack, ...); repeatable.
    #[arg(long = "attribute")]
    pub attributes: Vec<String>,
    /// CPUs offered (default: detected).
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Memory offered in MB (default: detected from /proc/meminfo).
    #[arg(long)]
    pub mem: Option<f64>,
    /// The address tasks are reachable at (default: the route to the scheduler).
    #[arg(long)]
    pub address: Option<String>,
    /// How often to heartbeat until the scheduler says otherwise (e.g. 2s, 500ms).
    #[arg(long, default_value = "2s", value_parser = parse_positive_duration)]
    pub heartbeat_interval: Duration,
    /// The cluster CA (PEM) that https scheduler URLs are checked against.
    #[arg(long, env = "INFRA_CA")]
    pub ca: Option<PathBuf>,
    /// This host's certificate from the cluster CA (its name must be --hostname): the
    /// scheduler accepts an agent's registration and heartbeats only with it.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's key.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Where other agents pull persistent volumes from when a task moves (mutual TLS with
    /// the cluster CA: only with --ca and --tls-cert; otherwise no volume server runs).
    #[arg(long, default_value = "0.0.0.0:5052")]
    pub volume_listen: std::net::SocketAddr,
}

pub async fn run(args: AgentArgs) -> anyhow::Result<i32> {
    let mut attributes = BTreeMap::new();
    for text in &args.attributes {
        let (key, value) = config::parse_attribute(text)?;
        attributes.insert(key, value);
    }
    let hostname = match args.hostname {
        Some(name) => name,
        None => system_hostname(),
    };
    let config = AgentConfig {
        schedulers: args.scheduler,
        data_dir: args.data_dir,
        hostname,
        address: args.address,
        port_range: args.port_range,
        attributes,
        cpus: args.cpus,
        mem: args.mem,
        heartbeat_interval: args.heartbeat_interval,
        tls: AgentTls {
            ca: args.ca,
            identity: match (args.tls_cert, args.tls_key) {
                (Some(cert), Some(key)) => Some(Identity { cert, key }),
                _ => None,
            },
        },
        volume_listen: Some(args.volume_listen),
    };
    crate::agent::daemon::run(config).await?;
    Ok(0)
}

fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
