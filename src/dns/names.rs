//! What a query name asks for: the zone apex, a service or a node of this datacenter, a
//! name of another datacenter (to forward), a name in the zone that cannot exist, or a name
//! outside the zone. Pure; the server decides what to answer from the [`Target`].
//!
//! Names below the zone `<domain>`:
//! - `<svc>.service[.<dc>]` and `_<svc>._tcp.service[.<dc>]` (RFC 2782 SRV form);
//! - `<host>.node[.<dc>]` (a host name may have several labels);
//! - where `<dc>` is another datacenter, anything under `service.<dc>` or `node.<dc>`.

use hickory_proto::rr::Name;

use super::config::DnsConfig;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The zone apex (SOA, NS).
    Apex,
    /// A service of this datacenter. `srv_form` is the `_<svc>._tcp` spelling (SRV only);
    /// `qualified` says the query named the datacenter (answers then name it too).
    Service {
        name: String,
        srv_form: bool,
        qualified: bool,
    },
    /// A node (agent host) of this datacenter.
    Node { name: String },
    /// `<svc>.<net>.service`: the instances of a service on container network `<net>`
    /// (what `<app>.<net>` becomes inside a task through its search domain).
    NetworkService { name: String, network: String },
    /// `<a-b-c-d>.addr`: a container network task's own address (the target of its SRV
    /// records); answered only while a task has it.
    TaskAddress { address: std::net::Ipv4Addr },
    /// A name in another datacenter's part of the zone: forward to its servers.
    Forward { datacenter: String },
    /// Inside the zone but no such name can exist: NXDOMAIN.
    NoSuchName,
    /// Outside the zone: REFUSED.
    Outside,
}

/// Classifies a query name (any case, with or without the trailing dot).
pub fn classify(name: &Name, origin: &Name, config: &DnsConfig) -> Target {
    let mut name = name.to_lowercase();
    name.set_fqdn(true);
    if !origin.zone_of(&name) {
        return Target::Outside;
    }
    let below = usize::from(name.num_labels().saturating_sub(origin.num_labels()));
    let labels: Vec<String> = name
        .iter()
        .take(below)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    if labels.is_empty() {
        return Target::Apex;
    }
    classify_relative(&labels, config, false)
}

fn classify_relative(labels: &[String], config: &DnsConfig, qualified: bool) -> Target {
    let Some((last, rest)) = labels.split_last() else {
        return Target::NoSuchName;
    };
    match last.as_str() {
        "service" => classify_service(rest, qualified),
        "node" if !rest.is_empty() => Target::Node {
            name: rest.join("."),
        },
        "addr" => match super::network_names::dashed_address(rest) {
            Some(address) => Target::TaskAddress { address },
            None => Target::NoSuchName,
        },
        dc if !qualified && dc == config.datacenter => classify_relative(rest, config, true),
        dc if !qualified && config.wan.contains_key(dc) => match rest.last().map(String::as_str) {
            Some("service") | Some("node") => Target::Forward {
                datacenter: dc.to_string(),
            },
            _ => Target::NoSuchName,
        },
        _ => Target::NoSuchName,
    }
}

fn classify_service(rest: &[String], qualified: bool) -> Target {
    match rest {
        [name] if !name.starts_with('_') => Target::Service {
            name: name.clone(),
            srv_form: false,
            qualified,
        },
        [service, proto] if proto == "_tcp" && service.len() > 1 && service.starts_with('_') => {
            Target::Service {
                name: service[1..].to_string(),
                srv_form: true,
                qualified,
            }
        }
        [name, network] if !name.starts_with('_') && !network.starts_with('_') => {
            Target::NetworkService {
                name: name.clone(),
                network: network.clone(),
            }
        }
        _ => Target::NoSuchName,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> DnsConfig {
        let mut config = DnsConfig::default();
        config
            .wan
            .insert("dc2".into(), vec!["127.0.0.1:1".parse().unwrap()]);
        config
    }

    fn class(name: &str) -> Target {
        let config = config();
        let origin = config.origin().unwrap();
        classify(&Name::from_ascii(name).unwrap(), &origin, &config)
    }

    fn service(name: &str, srv_form: bool, qualified: bool) -> Target {
        Target::Service {
            name: name.into(),
            srv_form,
            qualified,
        }
    }

    #[test]
    fn names_in_the_zone() {
        assert_eq!(class("infra."), Target::Apex);
        assert_eq!(class("INFRA"), Target::Apex);
        assert_eq!(class("web.service.infra."), service("web", false, false));
        assert_eq!(class("Web.Service.DC1.infra"), service("web", false, true));
        assert_eq!(
            class("_web._tcp.service.infra."),
            service("web", true, false)
        );
        assert_eq!(
            class("_web._tcp.service.dc1.infra."),
            service("web", true, true)
        );
        assert_eq!(
            class("host-1.node.infra."),
            Target::Node {
                name: "host-1".into()
            }
        );
        assert_eq!(
            class("h.example.node.dc1.infra."),
            Target::Node {
                name: "h.example".into()
            }
        );
    }

    #[test]
    fn other_datacenters_are_forwarded() {
        let forward = Target::Forward {
            datacenter: "dc2".into(),
        };
        assert_eq!(class("web.service.dc2.infra."), forward);
        assert_eq!(class("_web._tcp.service.dc2.infra."), forward);
        assert_eq!(class("h.node.dc2.infra."), forward);
        assert_eq!(class("dc2.infra."), Target::NoSuchName);
        assert_eq!(class("web.service.dc3.infra."), Target::NoSuchName);
    }

    #[test]
    fn impossible_and_outside_names() {
        assert_eq!(class("service.infra."), Target::NoSuchName);
        // `<svc>.<net>.service` names a service on a container network (network_names.rs).
        assert_eq!(class("a.b.c.service.infra."), Target::NoSuchName);
        assert_eq!(class("_web._udp.service.infra."), Target::NoSuchName);
        assert_eq!(class("node.infra."), Target::NoSuchName);
        assert_eq!(class("web.service.dc1.dc1.infra."), Target::NoSuchName);
        assert_eq!(class("whatever.infra."), Target::NoSuchName);
        assert_eq!(class("example.com."), Target::Outside);
        assert_eq!(class("infra.example.com."), Target::Outside);
        assert_eq!(class("."), Target::Outside);
    }
}
