//! The authoritative answers of this datacenter's part of the zone, built from a catalog
//! snapshot: A/AAAA for services (hosts of healthy tasks) and nodes, SRV with host ports
//! (target `<host>.node[.<dc>].<domain>` plus address glue), SOA/NS at the apex, NXDOMAIN
//! with the SOA for names that do not exist, NODATA for other types. Pure.

use std::collections::BTreeSet;
use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, NS, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::catalog::{CatalogSnapshot, ServiceInstance};
use super::names::Target;

/// The part of the zone this server is the authority for.
#[derive(Debug, Clone)]
pub struct Zone {
    /// `<domain>.` (lowercase, fully qualified).
    pub origin: Name,
    pub datacenter: String,
    pub ttl: u32,
}

/// A response's code and sections.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub code: ResponseCode,
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
}

impl Answer {
    /// An answer with only a response code (REFUSED, SERVFAIL, ...), not authoritative.
    pub fn code(code: ResponseCode) -> Answer {
        Answer {
            code,
            authoritative: false,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
        }
    }
}

impl Zone {
    /// The answer for a local target (not [`Target::Forward`] nor [`Target::Outside`]).
    pub fn answer(
        &self,
        target: &Target,
        qname: &Name,
        qtype: RecordType,
        snap: &CatalogSnapshot,
    ) -> Answer {
        let mut owner = qname.clone();
        owner.set_fqdn(true);
        let found = match target {
            Target::Apex => Some(self.apex(qtype, snap)),
            Target::Service {
                name,
                srv_form,
                qualified,
            } => self.service(name, *srv_form, *qualified, &owner, qtype, snap),
            Target::Node { name } => self.node(name, &owner, qtype, snap),
            Target::NetworkService { name, network } => {
                super::network_names::network_service(self, name, network, &owner, qtype, snap)
            }
            Target::TaskAddress { address } => {
                super::network_names::task_address(self, *address, &owner, qtype, snap)
            }
            Target::NoSuchName => None,
            Target::Forward { .. } | Target::Outside => return Answer::code(ResponseCode::Refused),
        };
        match found {
            Some((answers, additionals)) => Answer {
                code: ResponseCode::NoError,
                authoritative: true,
                authorities: if answers.is_empty() {
                    vec![self.soa(snap)]
                } else {
                    Vec::new()
                },
                answers,
                additionals,
            },
            None => Answer {
                code: ResponseCode::NXDomain,
                authoritative: true,
                answers: Vec::new(),
                authorities: vec![self.soa(snap)],
                additionals: Vec::new(),
            },
        }
    }

    fn ns_name(&self) -> Name {
        self.child("ns")
    }

    fn child(&self, label: &str) -> Name {
        Name::from_labels([label.as_bytes()])
            .and_then(|n| n.append_domain(&self.origin))
            .unwrap_or_else(|_| self.origin.clone())
    }

    /// The zone's SOA (its minimum is the negative-caching TTL, as small as answers).
    pub fn soa(&self, snap: &CatalogSnapshot) -> Record {
        let serial = u32::try_from(snap.index % u64::from(u32::MAX))
            .unwrap_or(1)
            .max(1);
        let soa = SOA::new(
            self.ns_name(),
            self.child("hostmaster"),
            serial,
            3600,
            600,
            86400,
            self.ttl,
        );
        Record::from_rdata(self.origin.clone(), self.ttl, RData::SOA(soa))
    }

    fn apex(&self, qtype: RecordType, snap: &CatalogSnapshot) -> (Vec<Record>, Vec<Record>) {
        let mut answers = Vec::new();
        if matches!(qtype, RecordType::SOA | RecordType::ANY) {
            answers.push(self.soa(snap));
        }
        if matches!(qtype, RecordType::NS | RecordType::ANY) {
            answers.push(Record::from_rdata(
                self.origin.clone(),
                self.ttl,
                RData::NS(NS(self.ns_name())),
            ));
        }
        (answers, Vec::new())
    }

    /// `<host>.node[.<dc>].<domain>.`
    fn node_name(&self, host: &str, qualified: bool) -> Option<Name> {
        let mut suffix = vec!["node".to_string()];
        if qualified {
            suffix.push(self.datacenter.clone());
        }
        let text = format!("{host}.{}", suffix.join("."));
        Name::from_ascii(text)
            .ok()
            .and_then(|n| n.append_domain(&self.origin).ok())
    }

    pub(super) fn address_records(
        &self,
        owner: &Name,
        addresses: &BTreeSet<IpAddr>,
        qtype: RecordType,
    ) -> Vec<Record> {
        addresses
            .iter()
            .filter_map(|ip| match (ip, qtype) {
                (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => Some(RData::A(A(*v4))),
                (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => {
                    Some(RData::AAAA(AAAA(*v6)))
                }
                _ => None,
            })
            .map(|data| Record::from_rdata(owner.clone(), self.ttl, data))
            .collect()
    }

    fn service(
        &self,
        name: &str,
        srv_form: bool,
        qualified: bool,
        owner: &Name,
        qtype: RecordType,
        snap: &CatalogSnapshot,
    ) -> Option<(Vec<Record>, Vec<Record>)> {
        let healthy: Vec<&ServiceInstance> =
            snap.instances_of(name).filter(|i| i.healthy).collect();
        if healthy.is_empty() {
            return None;
        }
        let mut answers = Vec::new();
        let mut additionals = Vec::new();
        if !srv_form {
            let addresses: BTreeSet<IpAddr> = healthy.iter().map(|i| i.address).collect();
            answers = self.address_records(owner, &addresses, qtype);
            super::network_names::rotate(&mut answers);
        }
        if matches!(qtype, RecordType::SRV | RecordType::ANY) {
            let mut seen = BTreeSet::new();
            let mut glued = BTreeSet::new();
            for instance in &healthy {
                let target = match instance.network {
                    Some(_) => super::network_names::address_name(self, instance.address),
                    None => self.node_name(&instance.node, qualified),
                };
                let Some(target) = target else {
                    tracing::warn!(node = %instance.node, "node name is not a DNS name; no SRV");
                    continue;
                };
                for port in &instance.ports {
                    if seen.insert((target.clone(), *port)) {
                        let srv = SRV::new(1, 1, *port, target.clone());
                        answers.push(Record::from_rdata(owner.clone(), self.ttl, RData::SRV(srv)));
                    }
                }
                if !instance.ports.is_empty() && glued.insert((target.clone(), instance.address)) {
                    let one = BTreeSet::from([instance.address]);
                    additionals.extend(self.address_records(&target, &one, RecordType::ANY));
                }
            }
        }
        Some((answers, additionals))
    }

    fn node(
        &self,
        name: &str,
        owner: &Name,
        qtype: RecordType,
        snap: &CatalogSnapshot,
    ) -> Option<(Vec<Record>, Vec<Record>)> {
        let mut addresses: BTreeSet<IpAddr> =
            snap.node(name).map(|n| n.address).into_iter().collect();
        if addresses.is_empty() {
            // Nodes not listed on their own are still known by the tasks they run.
            addresses = snap
                .instances
                .iter()
                .filter(|i| i.node.eq_ignore_ascii_case(name))
                .map(|i| i.address)
                .collect();
        }
        if addresses.is_empty() {
            return None;
        }
        Some((self.address_records(owner, &addresses, qtype), Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::catalog::Node;

    fn zone() -> Zone {
        Zone {
            origin: Name::from_ascii("infra.").unwrap(),
            datacenter: "dc1".into(),
            ttl: 5,
        }
    }

    fn instance(app: &str, node: &str, ip: &str, ports: &[u16], healthy: bool) -> ServiceInstance {
        ServiceInstance {
            app_id: app.into(),
            task_id: format!("{app}-{node}"),
            node: node.into(),
            address: ip.parse().unwrap(),
            ports: ports.to_vec(),
            healthy,
            tags: vec![],
            network: None,
        }
    }

    fn snap() -> CatalogSnapshot {
        CatalogSnapshot {
            instances: vec![
                instance("/web", "c1", "10.0.0.1", &[31000, 31001], true),
                instance("/web", "c2", "10.0.0.2", &[31005], true),
                instance("/web", "c3", "10.0.0.3", &[31009], false),
                instance("/sick", "c1", "10.0.0.1", &[31010], false),
            ],
            nodes: vec![Node {
                id: "a1".into(),
                name: "c9".into(),
                address: "10.0.0.9".parse().unwrap(),
            }],
            index: 7,
        }
    }

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn service(n: &str, srv_form: bool) -> Target {
        Target::Service {
            name: n.into(),
            srv_form,
            qualified: false,
        }
    }

    #[test]
    fn a_records_are_healthy_hosts_only() {
        let answer = zone().answer(
            &service("web", false),
            &name("web.service.infra."),
            RecordType::A,
            &snap(),
        );
        assert_eq!(answer.code, ResponseCode::NoError);
        let ips: Vec<String> = answer.answers.iter().map(|r| r.data.to_string()).collect();
        assert_eq!(ips, vec!["10.0.0.1", "10.0.0.2"]);
        assert!(answer.answers.iter().all(|r| r.ttl == 5));
    }

    #[test]
    fn srv_records_carry_host_ports_and_glue() {
        let answer = zone().answer(
            &service("web", true),
            &name("_web._tcp.service.infra."),
            RecordType::SRV,
            &snap(),
        );
        let srvs: Vec<String> = answer.answers.iter().map(|r| r.data.to_string()).collect();
        assert_eq!(
            srvs,
            vec![
                "1 1 31000 c1.node.infra.",
                "1 1 31001 c1.node.infra.",
                "1 1 31005 c2.node.infra."
            ]
        );
        assert_eq!(answer.additionals.len(), 2);
        assert_eq!(answer.additionals[0].name, name("c1.node.infra."));
    }

    #[test]
    fn missing_and_unhealthy_services_are_nxdomain_with_soa() {
        for svc in ["sick", "nothing"] {
            let answer = zone().answer(
                &service(svc, false),
                &name("x.service.infra."),
                RecordType::A,
                &snap(),
            );
            assert_eq!(answer.code, ResponseCode::NXDomain);
            assert_eq!(answer.authorities[0].record_type(), RecordType::SOA);
        }
    }

    #[test]
    fn other_types_are_nodata() {
        let answer = zone().answer(
            &service("web", true),
            &name("_web._tcp.service.infra."),
            RecordType::A,
            &snap(),
        );
        assert_eq!(answer.code, ResponseCode::NoError);
        assert!(answer.answers.is_empty());
        assert_eq!(answer.authorities.len(), 1);
    }

    #[test]
    fn nodes_listed_or_known_from_tasks() {
        let z = zone();
        let listed = z.answer(
            &Target::Node { name: "C9".into() },
            &name("c9.node.infra."),
            RecordType::A,
            &snap(),
        );
        assert_eq!(listed.answers[0].data.to_string(), "10.0.0.9");
        let from_task = z.answer(
            &Target::Node { name: "c3".into() },
            &name("c3.node.infra."),
            RecordType::A,
            &snap(),
        );
        assert_eq!(from_task.answers[0].data.to_string(), "10.0.0.3");
        let none = z.answer(
            &Target::Node { name: "zz".into() },
            &name("zz.node.infra."),
            RecordType::A,
            &snap(),
        );
        assert_eq!(none.code, ResponseCode::NXDomain);
    }

    #[test]
    fn apex_has_soa_and_ns() {
        let z = zone();
        let soa = z.answer(&Target::Apex, &name("infra."), RecordType::SOA, &snap());
        assert_eq!(soa.answers[0].record_type(), RecordType::SOA);
        let ns = z.answer(&Target::Apex, &name("infra."), RecordType::NS, &snap());
        assert_eq!(ns.answers[0].data.to_string(), "ns.infra.");
    }
}
