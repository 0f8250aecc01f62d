//! `infra proxy`: the proxy nodes' nginx syncer (see [`crate::proxy`]); this file only
//! turns flags into a [`crate::proxy::Config`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::cli::values::parse_duration;
use crate::client::api::{Access, Client};
use crate::proxy::{self, nginx::Nginx, Config};
use crate::tls::Identity;

#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// Scheduler URL(s), comma-separated (else INFRA_SCHEDULER, else the context file).
    #[arg(long)]
    pub scheduler: Option<String>,
    /// The generated config file nginx includes.
    #[arg(long, default_value = "/etc/nginx/conf.d/infra-proxy.conf")]
    pub nginx_config: PathBuf,
    /// The nginx template (minijinja, infra's filters; data: `apps`, `domain`,
    /// `http_listen`, `service_address`). Default: the built-in
    /// templates/nginx-proxy.conf.j2.
    #[arg(long)]
    pub template: Option<PathBuf>,
    /// Host routes are `<app>.<domain>`.
    #[arg(long, default_value = "infra")]
    pub domain: String,
    /// Where `/health` is served.
    #[arg(long, default_value = "0.0.0.0:6000")]
    pub listen_health: SocketAddr,
    /// What the path/host routing server listens on (nginx `listen` syntax).
    #[arg(long, default_value = "80")]
    pub http_listen: String,
    /// Address the apps' service-port listeners bind (default: all addresses).
    #[arg(long, default_value = "")]
    pub service_address: String,
    /// The nginx binary used for `nginx -t`.
    #[arg(long, default_value = "nginx")]
    pub nginx_bin: String,
    /// nginx's main config, passed as `-c` to `nginx -t` (and the default reload).
    #[arg(long)]
    pub nginx_main_config: Option<PathBuf>,
    /// Bursts of events within this window produce one sync.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub debounce: Duration,
    /// A full resync this often, whatever the events say.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub resync: Duration,
    /// How nginx is reloaded (default: `<nginx-bin> [-c main] -s reload`).
    #[arg(long)]
    pub reload_cmd: Option<String>,
    /// The cluster CA (PEM) that https scheduler URLs are checked against (else INFRA_CA,
    /// else the context file's).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// This host's certificate from the cluster CA: the scheduler lets a client with one
    /// read (the proxy needs nothing else), without a token.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's key.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Sync once and exit (0 when nginx has the config, 1 with the error otherwise).
    #[arg(long)]
    pub once: bool,
}

pub async fn run(args: ProxyArgs) -> anyhow::Result<i32> {
    let access = Access {
        ca: args.ca.clone(),
        token: None,
        identity: match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(Identity {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        },
    };
    let client = Client::resolve_with(args.scheduler.as_deref(), access)?;
    let reload_cmd = args.reload_cmd.clone().unwrap_or_else(|| {
        let mut words = vec![args.nginx_bin.clone()];
        if let Some(main) = &args.nginx_main_config {
            words.push("-c".into());
            words.push(main.display().to_string());
        }
        words.extend(["-s".to_string(), "reload".to_string()]);
        shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" "))
    });
    let config = Config {
        template: args.template,
        domain: args.domain,
        http_listen: args.http_listen,
        service_address: args.service_address,
        nginx: Nginx {
            config: args.nginx_config,
            bin: args.nginx_bin,
            main_config: args.nginx_main_config,
            reload_cmd,
        },
        debounce: args.debounce,
        resync: args.resync,
        stream_idle: Duration::from_secs(60),
    };
    if args.once {
        let status = proxy::health::SharedStatus::default();
        let outcome = proxy::sync_once(&client, &config, &status, &mut Default::default()).await?;
        println!(
            "infra proxy: {} apps, {} backends, {}",
            outcome.apps,
            outcome.backends,
            match outcome.applied {
                proxy::nginx::Applied::Unchanged => "unchanged",
                proxy::nginx::Applied::Reloaded => "reloaded",
            }
        );
        return Ok(0);
    }
    proxy::run(client, config, args.listen_health).await?;
    Ok(0)
}
