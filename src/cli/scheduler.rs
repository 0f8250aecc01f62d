//! `infra scheduler`: the control nodes' scheduler daemon (Marathon-compatible API,
//! placement, self-healing), on a redb store under `--data-dir`, or, with `--etcd`, one of
//! several schedulers sharing the datacenter's etcd with one elected leader.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::cli::values::{parse_duration, parse_port_range, parse_positive_duration};
use crate::scheduler::etcd_store::EtcdConfig;
use crate::scheduler::leadership::ElectionConfig;
use crate::scheduler::tokens::TokenRecord;
use crate::scheduler::{AuthConfig, Config, Strategy, TlsConfig};
use crate::tls::Identity;

#[derive(Args, Debug)]
pub struct SchedulerArgs {
    /// Address and port of the API (Marathon's v2 API and the agent protocol).
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Where the durable state lives (scheduler.redb).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// An agent silent for longer is lost and its tasks are replaced (e.g. 15s, 500ms, 1m).
    #[arg(long, default_value = "15s", value_parser = parse_positive_duration)]
    pub agent_timeout: Duration,
    /// How agents are ranked: spread (fewest tasks of the app, least loaded) or binpack.
    #[arg(long, value_enum, default_value = "spread")]
    pub placement: Strategy,
    /// Range service ports that are 0 are assigned from.
    #[arg(long, default_value = "10000-20000", value_parser = parse_port_range)]
    pub service_ports: (u16, u16),
    /// How often agents heartbeat (default: a third of the agent timeout, at most 2s).
    #[arg(long, value_parser = parse_positive_duration)]
    pub heartbeat_interval: Option<Duration>,
    /// etcd client URLs, comma-separated: the state lives in etcd (under
    /// /infra/<datacenter>/) and the schedulers sharing it elect one leader. Without it, the
    /// state is a redb file under --data-dir and this scheduler always leads.
    #[arg(long, env = "INFRA_ETCD", value_delimiter = ',')]
    pub etcd: Vec<String>,
    /// The CA that signed etcd's certificates (https etcd URLs).
    #[arg(long, requires = "etcd")]
    pub etcd_ca: Option<PathBuf>,
    /// Client certificate for etcd (with --etcd-key).
    #[arg(long, requires = "etcd_key")]
    pub etcd_cert: Option<PathBuf>,
    /// The client certificate's key.
    #[arg(long, requires = "etcd_cert")]
    pub etcd_key: Option<PathBuf>,
    /// The URL other control nodes and clients reach this scheduler's API at (followers
    /// forward writes to the leader's). Default: https://<listen address> (http:// with
    /// --insecure-http).
    #[arg(long)]
    pub advertise: Option<String>,
    /// Time to live of the leader's etcd lease: a leader that dies is replaced about this
    /// long after (whole seconds, at least etcd's minimum of 1.5x its election timeout).
    #[arg(long, default_value = "2s", value_parser = parse_positive_duration)]
    pub leader_ttl: Duration,
    /// How long to wait before campaigning again after etcd failed.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub election_retry: Duration,
    /// How long a client may take to send a request's headers before it is disconnected
    /// (a slow-loris client otherwise holds its connection forever).
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration)]
    pub header_read_timeout: Duration,
    /// The API's TLS certificate (PEM; from the cluster CA: `infra up` installs the host's).
    #[arg(long, requires = "tls_key", conflicts_with = "insecure_http")]
    pub tls_cert: Option<PathBuf>,
    /// The TLS certificate's key.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The cluster CA: client certificates (agents, other control nodes) must chain to it,
    /// and the leader's certificate is checked against it when a write is forwarded.
    #[arg(long, requires = "tls_cert")]
    pub tls_ca: Option<PathBuf>,
    /// Serve the API over plain HTTP, readable and forgeable by anyone on the network: for
    /// tests and a laptop only. Without it the scheduler needs --tls-cert and --tls-key.
    #[arg(long)]
    pub insecure_http: bool,
    /// Serve the API to anyone, without tokens or certificates: for tests and a laptop only.
    #[arg(long)]
    pub no_auth: bool,
    /// A JSON file with a list of tokens (as the store keeps them: id, role, SHA-256 of the
    /// secret) that are valid besides those in the store: `infra up` gives the control
    /// nodes its admin token this way.
    #[arg(long, conflicts_with = "no_auth")]
    pub bootstrap_tokens: Option<PathBuf>,
    #[command(flatten)]
    pub dns: crate::dns::DnsArgs,
}

/// The tokens of a `--bootstrap-tokens` file.
fn read_bootstrap_tokens(file: &std::path::Path) -> anyhow::Result<Vec<TokenRecord>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading --bootstrap-tokens {}", file.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a list of tokens ([{{\"id\", \"role\", \"hash\"}}, ...])",
            file.display()
        )
    })
}

/// The API's TLS from the flags; refuses to go on without TLS unless --insecure-http says
/// plain HTTP is meant.
fn tls_config(args: &SchedulerArgs) -> anyhow::Result<Option<TlsConfig>> {
    match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Ok(Some(TlsConfig {
            identity: Identity {
                cert: cert.clone(),
                key: key.clone(),
            },
            ca: args.tls_ca.clone(),
        })),
        _ if args.insecure_http => Ok(None),
        _ => anyhow::bail!(
            "the scheduler's API needs TLS: pass --tls-cert and --tls-key (a certificate \
             from the cluster CA; `infra up` installs one), or --insecure-http to serve plain \
             HTTP that anyone on the network can read and forge"
        ),
    }
}

pub async fn run(args: SchedulerArgs) -> anyhow::Result<i32> {
    let tls = tls_config(&args)?;
    let mut config = Config::new(args.listen, args.data_dir);
    config.tls = tls;
    config.auth = AuthConfig {
        enabled: !args.no_auth,
        bootstrap: match &args.bootstrap_tokens {
            Some(file) => read_bootstrap_tokens(file)?,
            None => Vec::new(),
        },
    };
    if config.auth.enabled && config.tls.is_none() {
        tracing::warn!("tokens over plain HTTP (--insecure-http) can be read on the network");
    }
    config.agent_timeout = args.agent_timeout;
    config.placement = args.placement;
    config.service_ports = (args.service_ports.0.into(), args.service_ports.1.into());
    config.heartbeat_interval = args.heartbeat_interval.unwrap_or_else(|| {
        (args.agent_timeout / 3).clamp(Duration::from_millis(100), Duration::from_secs(2))
    });
    config.datacenter = args.dns.datacenter.to_ascii_lowercase();
    config.advertise = args.advertise.clone();
    config.header_read_timeout = args.header_read_timeout;
    config.election = ElectionConfig {
        ttl: args.leader_ttl,
        retry: args.election_retry,
    };
    let endpoints: Vec<String> = args
        .etcd
        .iter()
        .map(|url| url.trim().to_string())
        .filter(|url| !url.is_empty())
        .collect();
    if !endpoints.is_empty() {
        config.etcd = Some(EtcdConfig {
            endpoints,
            ca: args.etcd_ca.clone(),
            cert: args.etcd_cert.clone(),
            key: args.etcd_key.clone(),
            prefix: format!("/infra/{}/", config.datacenter),
        });
    }
    let dns = args.dns.config()?;
    crate::scheduler::serve(config, args.dns.dns_listen, dns)
        .await
        .context("infra scheduler")?;
    Ok(0)
}
