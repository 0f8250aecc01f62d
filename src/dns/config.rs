//! How the discovery DNS server is configured: the zone (`--dns-domain`), this datacenter,
//! the TTL, where it listens, and the other datacenters' control nodes for WAN forwarding.
//! [`DnsArgs`] is the clap form the scheduler flattens into its own flags.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use hickory_proto::rr::Name;

/// The resolved configuration of a [`super::DnsServer`].
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// The zone served, e.g. `infra` (lowercased, no trailing dot needed).
    pub domain: String,
    /// The datacenter this server answers for (`<app>.service.<dc>.<domain>`).
    pub datacenter: String,
    /// TTL of every answer, and the negative-caching TTL in the SOA.
    pub ttl: Duration,
    /// Other datacenters: their control nodes' DNS servers, tried in order.
    pub wan: BTreeMap<String, Vec<SocketAddr>>,
    /// How long to wait for one forwarded server before trying the next.
    pub forward_timeout: Duration,
}

impl Default for DnsConfig {
    fn default() -> DnsConfig {
        DnsConfig {
            domain: "infra".into(),
            datacenter: "dc1".into(),
            ttl: Duration::from_secs(5),
            wan: BTreeMap::new(),
            forward_timeout: Duration::from_millis(1000),
        }
    }
}

impl DnsConfig {
    /// Checks the names (they become DNS labels) and returns the zone's origin.
    pub fn origin(&self) -> anyhow::Result<Name> {
        let mut origin = Name::from_ascii(&self.domain)
            .with_context(|| format!("--dns-domain '{}' is not a domain name", self.domain))?;
        origin.set_fqdn(true);
        if origin.is_root() {
            bail!("--dns-domain must not be empty");
        }
        for dc in std::iter::once(&self.datacenter).chain(self.wan.keys()) {
            if dc.is_empty() || dc.contains('.') || Name::from_ascii(dc).is_err() {
                bail!("datacenter '{dc}' is not a single DNS label");
            }
            if dc == "service" || dc == "node" {
                bail!("datacenter '{dc}' collides with the zone's '{dc}' label");
            }
        }
        Ok(origin.to_lowercase())
    }

    pub fn ttl_secs(&self) -> u32 {
        u32::try_from(self.ttl.as_secs()).unwrap_or(u32::MAX)
    }
}

/// The `infra scheduler` flags for discovery DNS (`#[command(flatten)]`).
#[derive(Args, Debug, Clone)]
pub struct DnsArgs {
    /// Where service-discovery DNS listens (UDP and TCP). Off unless given; the platform's
    /// control nodes run it on 0.0.0.0:8600 (the port dnsmasq forwards the domain to).
    #[arg(long)]
    pub dns_listen: Option<SocketAddr>,
    /// The zone: `<app>.service.<domain>`, `<app>.service.<dc>.<domain>`, `<host>.node.<domain>`.
    #[arg(long, default_value = "infra")]
    pub dns_domain: String,
    /// The datacenter this scheduler belongs to.
    #[arg(long, default_value = "dc1")]
    pub datacenter: String,
    /// TTL of DNS answers, in seconds.
    #[arg(long, default_value_t = 5)]
    pub dns_ttl: u64,
    /// Another datacenter's control nodes, `DC=IP:PORT[,IP:PORT...]`; repeatable. Names in
    /// that datacenter are forwarded to them.
    #[arg(long = "dns-wan", value_parser = parse_wan)]
    pub dns_wan: Vec<(String, Vec<SocketAddr>)>,
    /// How long to wait for one forwarded server before trying the next, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub dns_forward_timeout_ms: u64,
}

impl DnsArgs {
    pub fn config(&self) -> anyhow::Result<DnsConfig> {
        let mut wan: BTreeMap<String, Vec<SocketAddr>> = BTreeMap::new();
        for (dc, servers) in &self.dns_wan {
            wan.entry(dc.clone()).or_default().extend(servers);
        }
        let config = DnsConfig {
            domain: self.dns_domain.to_ascii_lowercase(),
            datacenter: self.datacenter.to_ascii_lowercase(),
            ttl: Duration::from_secs(self.dns_ttl),
            wan,
            forward_timeout: Duration::from_millis(self.dns_forward_timeout_ms),
        };
        config.origin()?;
        Ok(config)
    }
}

/// `dc2=10.0.2.10:8600,10.0.2.11:8600`.
pub fn parse_wan(text: &str) -> Result<(String, Vec<SocketAddr>), String> {
    let (dc, servers) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}' is not DC=IP:PORT[,IP:PORT...]"))?;
    let dc = dc.trim().to_ascii_lowercase();
    if dc.is_empty() {
        return Err(format!("'{text}': the datacenter name is empty"));
    }
    let servers = servers
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<SocketAddr>()
                .map_err(|_| format!("'{s}' in '{text}' is not IP:PORT"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((dc, servers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wan_flags_parse() {
        let (dc, servers) = parse_wan("DC2=127.0.0.1:53,127.0.0.2:8600").unwrap();
        assert_eq!(dc, "dc2");
        assert_eq!(servers.len(), 2);
        assert!(parse_wan("dc2").is_err());
        assert!(parse_wan("dc2=host:53").is_err());
    }

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        dns: DnsArgs,
    }

    #[test]
    fn flags_give_a_config() {
        use clap::Parser;
        let defaults = Cli::try_parse_from(["infra"]).unwrap().dns;
        assert_eq!(defaults.dns_listen, None);
        let config = defaults.config().unwrap();
        assert_eq!(
            (config.domain.as_str(), config.datacenter.as_str()),
            ("infra", "dc1")
        );
        assert_eq!(config.ttl, Duration::from_secs(5));
        let cli = Cli::try_parse_from([
            "infra",
            "--dns-listen=127.0.0.1:5353",
            "--datacenter=EAST",
            "--dns-ttl=2",
            "--dns-wan=west=127.0.0.1:1,127.0.0.1:2",
            "--dns-wan=west=127.0.0.1:3",
            "--dns-wan=north=127.0.0.1:4",
            "--dns-forward-timeout-ms=250",
        ])
        .unwrap();
        let config = cli.dns.config().unwrap();
        assert_eq!(cli.dns.dns_listen.map(|a| a.port()), Some(5353));
        assert_eq!(config.datacenter, "east");
        assert_eq!(config.wan["west"].len(), 3);
        assert_eq!(config.wan["north"].len(), 1);
        assert_eq!(config.forward_timeout, Duration::from_millis(250));
        assert!(Cli::try_parse_from(["infra", "--dns-wan=west"]).is_err());
        let bad = Cli::try_parse_from(["infra", "--datacenter=a.b"]).unwrap();
        assert!(bad.dns.config().is_err());
    }

    #[test]
    fn bad_names_are_refused() {
        let config = DnsConfig {
            datacenter: "a.b".into(),
            ..DnsConfig::default()
        };
        assert!(config.origin().is_err());
        let config = DnsConfig {
            domain: "Infra.Example".into(),
            ..DnsConfig::default()
        };
        assert_eq!(config.origin().unwrap().to_ascii(), "infra.example.");
    }
}
