//! Names of container network tasks (issue 16): `<svc>.<net>.service.<domain>` answers the
//! healthy instances of a service on network `<net>` (inside a task, `<app>.<net>` reaches it
//! through the search domain `service.<domain>`), and `<a-b-c-d>.addr.<domain>` names one
//! task address so SRV answers can point at a task rather than at its host. Address answers
//! rotate from query to query so clients that take the first address spread their load.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};

use hickory_proto::rr::{Name, Record, RecordType};

use super::answer::Zone;
use super::catalog::{CatalogSnapshot, ServiceInstance};

/// `["10-200-1-5"]` -> 10.200.1.5.
pub fn dashed_address(labels: &[String]) -> Option<Ipv4Addr> {
    match labels {
        [one] => one.replace('-', ".").parse().ok(),
        _ => None,
    }
}

/// `<a-b-c-d>.addr.<domain>.`, the SRV target of a container network task.
pub fn address_name(zone: &Zone, address: IpAddr) -> Option<Name> {
    let IpAddr::V4(v4) = address else {
        return None;
    };
    let label = v4.to_string().replace('.', "-");
    Name::from_ascii(format!("{label}.addr"))
        .ok()
        .and_then(|n| n.append_domain(&zone.origin).ok())
}

static TURN: AtomicUsize = AtomicUsize::new(0);

/// Rotates the records by one more place on every call (round-robin answers).
pub fn rotate(records: &mut [Record]) {
    if records.len() > 1 {
        let by = TURN.fetch_add(1, Ordering::Relaxed) % records.len();
        records.rotate_left(by);
    }
}

/// Healthy instances of `name` on `network`, their addresses in rotating order.
pub fn network_service(
    zone: &Zone,
    name: &str,
    network: &str,
    owner: &Name,
    qtype: RecordType,
    snap: &CatalogSnapshot,
) -> Option<(Vec<Record>, Vec<Record>)> {
    let healthy: Vec<&ServiceInstance> = snap
        .instances_of(name)
        .filter(|i| i.healthy)
        .filter(|i| {
            i.network
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(network))
        })
        .collect();
    if healthy.is_empty() {
        return None;
    }
    let addresses: BTreeSet<IpAddr> = healthy.iter().map(|i| i.address).collect();
    let mut answers = zone.address_records(owner, &addresses, qtype);
    rotate(&mut answers);
    Some((answers, Vec::new()))
}

/// The A record of a running container network task's address.
pub fn task_address(
    zone: &Zone,
    address: Ipv4Addr,
    owner: &Name,
    qtype: RecordType,
    snap: &CatalogSnapshot,
) -> Option<(Vec<Record>, Vec<Record>)> {
    let known = snap
        .instances
        .iter()
        .any(|i| i.network.is_some() && i.address == IpAddr::V4(address));
    if !known {
        return None;
    }
    let one = BTreeSet::from([IpAddr::V4(address)]);
    Some((zone.address_records(owner, &one, qtype), Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::names::Target;
    use hickory_proto::rr::RData;

    fn zone() -> Zone {
        Zone {
            origin: Name::from_ascii("infra.").expect("name"),
            datacenter: "dc1".into(),
            ttl: 5,
        }
    }

    fn instance(app: &str, ip: &str, network: Option<&str>, healthy: bool) -> ServiceInstance {
        ServiceInstance {
            app_id: app.into(),
            task_id: format!("{app}.{ip}"),
            node: "compute1".into(),
            address: ip.parse().expect("ip"),
            ports: vec![8080],
            healthy,
            tags: vec![],
            network: network.map(str::to_string),
        }
    }

    fn snap() -> CatalogSnapshot {
        CatalogSnapshot {
            instances: vec![
                instance("/web", "10.200.1.2", Some("apps"), true),
                instance("/web", "10.200.2.2", Some("apps"), true),
                instance("/web", "10.200.2.3", Some("apps"), false),
                instance("/db", "172.20.0.5", None, true),
            ],
            nodes: vec![],
            index: 1,
        }
    }

    fn ask(name: &str, qtype: RecordType) -> Vec<String> {
        let zone = zone();
        let config = crate::dns::DnsConfig::default();
        let qname = Name::from_ascii(name).expect("name");
        let target = crate::dns::names::classify(&qname, &zone.origin, &config);
        zone.answer(&target, &qname, qtype, &snap())
            .answers
            .iter()
            .map(|r| match &r.data {
                RData::A(a) => a.0.to_string(),
                RData::SRV(srv) => format!("{}:{}", srv.target, srv.port),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn names_below_service_and_addr() {
        let config = crate::dns::DnsConfig::default();
        let origin = config.origin().expect("origin");
        let class = |n: &str| {
            crate::dns::names::classify(&Name::from_ascii(n).expect("name"), &origin, &config)
        };
        assert_eq!(
            class("web.apps.service.infra."),
            Target::NetworkService {
                name: "web".into(),
                network: "apps".into()
            }
        );
        assert_eq!(
            class("10-200-1-2.addr.infra."),
            Target::TaskAddress {
                address: Ipv4Addr::new(10, 200, 1, 2)
            }
        );
        assert_eq!(class("nonsense.addr.infra."), Target::NoSuchName);
    }

    #[test]
    fn network_names_answer_healthy_task_addresses_in_rotating_order() {
        let first = ask("web.apps.service.infra.", RecordType::A);
        let mut sorted = first.clone();
        sorted.sort();
        assert_eq!(sorted, vec!["10.200.1.2", "10.200.2.2"]);
        let orders: BTreeSet<Vec<String>> = (0..10)
            .map(|_| ask("web.apps.service.infra.", RecordType::A))
            .collect();
        assert_eq!(orders.len(), 2, "queries answer in rotating order");
        assert!(ask("web.other.service.infra.", RecordType::A).is_empty());
        assert!(ask("db.apps.service.infra.", RecordType::A).is_empty());
    }

    #[test]
    fn srv_points_at_task_addresses_with_container_ports() {
        let mut srv = ask("_web._tcp.service.infra.", RecordType::SRV);
        srv.sort();
        assert_eq!(
            srv,
            vec![
                "10-200-1-2.addr.infra.:8080".to_string(),
                "10-200-2-2.addr.infra.:8080".to_string()
            ]
        );
        assert_eq!(
            ask("10-200-2-2.addr.infra.", RecordType::A),
            vec!["10.200.2.2"]
        );
        assert!(ask("10-9-9-9.addr.infra.", RecordType::A).is_empty());
    }
}
