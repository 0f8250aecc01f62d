//! The discovery DNS server on a real 127.0.0.1 port, asked by real DNS clients (hickory-net
//! over UDP and TCP, and `dig`): service A and SRV records of healthy tasks only, node
//! names, the app-id naming convention, NXDOMAIN/REFUSED, SOA/NS, TTL, live catalog changes.

#[path = "support/dns.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use infra::dns::{DnsConfig, StaticCatalog};
use support::*;

async fn sample_server() -> (infra::dns::DnsServer, Arc<StaticCatalog>) {
    let catalog = Arc::new(StaticCatalog::new(sample_snapshot()));
    (start(DnsConfig::default(), catalog.clone()).await, catalog)
}

#[tokio::test]
async fn a_records_are_the_hosts_of_healthy_tasks() {
    let (server, _catalog) = sample_server().await;
    let mut client = udp_client(server.local_addr()).await;
    for name in ["web.service.infra.", "WEB.service.dc1.infra."] {
        let reply = ask(&mut client, name, RecordType::A).await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert!(reply.metadata.authoritative, "{name}");
        // c3 (127.0.0.13) runs an unhealthy task: not answered.
        assert_eq!(
            answer_data(&reply),
            vec!["127.0.0.11", "127.0.0.12"],
            "{name}"
        );
        assert!(reply.answers.iter().all(|r| r.ttl == 5), "{name}");
    }
    // Only unhealthy tasks: the name does not exist.
    let sick = ask(&mut client, "sick.service.infra.", RecordType::A).await;
    assert_eq!(sick.metadata.response_code, ResponseCode::NXDomain);
}

#[tokio::test]
async fn group_apps_use_reversed_path_segments() {
    let (server, _catalog) = sample_server().await;
    let mut client = udp_client(server.local_addr()).await;
    let reply = ask(&mut client, "api-shop.service.infra.", RecordType::A).await;
    assert_eq!(answer_data(&reply), vec!["127.0.0.12"]);
}

#[tokio::test]
async fn srv_records_carry_host_ports_and_node_targets_with_glue() {
    let (server, _catalog) = sample_server().await;
    let mut client = udp_client(server.local_addr()).await;
    for name in ["_web._tcp.service.infra.", "web.service.infra."] {
        let reply = ask(&mut client, name, RecordType::SRV).await;
        assert_eq!(
            answer_data(&reply),
            vec![
                "1 1 31000 c1.node.infra.",
                "1 1 31001 c1.node.infra.",
                "1 1 31002 c2.node.infra."
            ],
            "{name}"
        );
        let mut glue: Vec<String> = reply
            .additionals
            .iter()
            .map(|r| format!("{} {}", r.name, r.data))
            .collect();
        glue.sort();
        assert_eq!(
            glue,
            vec!["c1.node.infra. 127.0.0.11", "c2.node.infra. 127.0.0.12"]
        );
    }
    // Naming the datacenter names it in the targets too (resolvable from other DCs).
    let reply = ask(&mut client, "_web._tcp.service.dc1.infra.", RecordType::SRV).await;
    assert!(answer_data(&reply)
        .iter()
        .all(|d| d.ends_with(".node.dc1.infra.")));
}

#[tokio::test]
async fn node_names_answer_agent_addresses() {
    let (server, _catalog) = sample_server().await;
    let mut client = udp_client(server.local_addr()).await;
    let reply = ask(&mut client, "c2.node.infra.", RecordType::A).await;
    assert_eq!(answer_data(&reply), vec!["127.0.0.12"]);
    let reply = ask(&mut client, "c1.node.dc1.infra.", RecordType::A).await;
    assert_eq!(answer_data(&reply), vec!["127.0.0.11"]);
    let reply = ask(&mut client, "c9.node.infra.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
}

#[tokio::test]
async fn unknown_names_are_nxdomain_with_the_soa_and_outside_names_refused() {
    let (server, _catalog) = sample_server().await;
    let mut client = udp_client(server.local_addr()).await;
    for name in [
        "nothing.service.infra.",
        "whatever.infra.",
        "web.service.dc7.infra.",
    ] {
        let reply = ask(&mut client, name, RecordType::A).await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NXDomain,
            "{name}"
        );
        assert_eq!(reply.authorities.len(), 1, "{name}");
        assert_eq!(
            reply.authorities[0].record_type(),
            RecordType::SOA,
            "{name}"
        );
        assert_eq!(reply.authorities[0].ttl, 5);
    }
    for name in ["example.com.", "infra.example.com."] {
        let reply = ask(&mut client, name, RecordType::A).await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::Refused,
            "{name}"
        );
        assert!(reply.answers.is_empty());
    }
    // A name that exists, a type it has not: NODATA.
    let reply = ask(&mut client, "web.service.infra.", RecordType::MX).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.answers.is_empty());
}

#[tokio::test]
async fn the_apex_has_soa_and_ns() {
    let (server, _catalog) = sample_server().await;
    let mut client = udp_client(server.local_addr()).await;
    let soa = ask(&mut client, "infra.", RecordType::SOA).await;
    assert_eq!(soa.answers.len(), 1);
    assert!(soa.answers[0]
        .data
        .to_string()
        .starts_with("ns.infra. hostmaster.infra. 42 "));
    let ns = ask(&mut client, "infra.", RecordType::NS).await;
    assert_eq!(answer_data(&ns), vec!["ns.infra."]);
}

#[tokio::test]
async fn ttl_and_domain_are_configurable() {
    let catalog = Arc::new(StaticCatalog::new(sample_snapshot()));
    let config = DnsConfig {
        domain: "disco.example".into(),
        datacenter: "east".into(),
        ttl: Duration::from_secs(2),
        ..DnsConfig::default()
    };
    let server = start(config, catalog).await;
    let mut client = udp_client(server.local_addr()).await;
    let reply = ask(
        &mut client,
        "web.service.east.disco.example.",
        RecordType::A,
    )
    .await;
    assert_eq!(answer_data(&reply), vec!["127.0.0.11", "127.0.0.12"]);
    assert!(reply.answers.iter().all(|r| r.ttl == 2));
    let old = ask(&mut client, "web.service.infra.", RecordType::A).await;
    assert_eq!(old.metadata.response_code, ResponseCode::Refused);
}

#[tokio::test]
async fn answers_follow_the_catalog() {
    let (server, catalog) = sample_server().await;
    let mut client = udp_client(server.local_addr()).await;
    let mut snapshot = sample_snapshot();
    for instance in &mut snapshot.instances {
        if instance.node == "c1" {
            instance.healthy = false;
        }
        if instance.node == "c3" {
            instance.healthy = true;
        }
    }
    catalog.replace(snapshot);
    let reply = ask(&mut client, "web.service.infra.", RecordType::A).await;
    assert_eq!(answer_data(&reply), vec!["127.0.0.12", "127.0.0.13"]);
    let mut empty = sample_snapshot();
    empty.instances.retain(|i| i.app_id != "/web");
    catalog.replace(empty);
    let reply = ask(&mut client, "web.service.infra.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
}

#[tokio::test]
async fn tcp_gives_the_same_answers() {
    let (server, _catalog) = sample_server().await;
    let mut client = tcp_client(server.local_addr()).await;
    let reply = ask(&mut client, "web.service.infra.", RecordType::A).await;
    assert_eq!(answer_data(&reply), vec!["127.0.0.11", "127.0.0.12"]);
    let reply = ask(&mut client, "_web._tcp.service.infra.", RecordType::SRV).await;
    assert_eq!(reply.answers.len(), 3);
}

#[tokio::test]
async fn dig_sees_the_same_answers() {
    let (server, _catalog) = sample_server().await;
    let addr = server.local_addr();
    let answers = tokio::task::spawn_blocking(move || {
        (
            dig_short(addr, &["web.service.infra", "A"]),
            dig_short(addr, &["+tcp", "web.service.dc1.infra", "SRV"]),
            dig(addr, &["nothing.service.infra", "A"]),
            dig(addr, &["example.com", "A"]),
        )
    })
    .await
    .unwrap();
    assert_eq!(answers.0, vec!["127.0.0.11", "127.0.0.12"]);
    assert_eq!(
        answers.1,
        vec![
            "1 1 31000 c1.node.dc1.infra.",
            "1 1 31001 c1.node.dc1.infra.",
            "1 1 31002 c2.node.dc1.infra."
        ]
    );
    assert!(answers.2.contains("status: NXDOMAIN"), "{}", answers.2);
    assert!(answers.3.contains("status: REFUSED"), "{}", answers.3);
}

#[tokio::test]
async fn binding_a_taken_port_names_the_address() {
    let (server, _catalog) = sample_server().await;
    let catalog: Arc<dyn infra::dns::ServiceCatalog> = Arc::new(StaticCatalog::default());
    let error = infra::dns::DnsServer::bind(server.local_addr(), DnsConfig::default(), catalog)
        .await
        .err()
        .expect("the port is taken");
    assert!(
        format!("{error:#}").contains(&server.local_addr().to_string()),
        "{error:#}"
    );
}

#[tokio::test]
async fn large_answers_are_truncated_over_udp_without_edns_and_whole_over_tcp() {
    let mut snapshot = sample_snapshot();
    for i in 0..80u16 {
        let ip = format!("127.0.1.{i}");
        snapshot
            .instances
            .push(instance("/big", &format!("b{i}"), &ip, &[30000 + i], true));
    }
    let server = start(DnsConfig::default(), Arc::new(StaticCatalog::new(snapshot))).await;
    let addr = server.local_addr();
    let (udp, tcp) = tokio::task::spawn_blocking(move || {
        (
            dig(addr, &["+noedns", "+ignore", "big.service.infra", "A"]),
            dig_short(addr, &["+tcp", "big.service.infra", "A"]),
        )
    })
    .await
    .unwrap();
    assert!(
        udp.contains("flags: qr tc") || udp.contains(" tc "),
        "{udp}"
    );
    assert!(udp.contains("status: NOERROR"), "{udp}");
    assert_eq!(tcp.len(), 80);
    // A client that follows TC (dig's default) gets all of them.
    let all =
        tokio::task::spawn_blocking(move || dig_short(addr, &["+noedns", "big.service.infra"]))
            .await
            .unwrap();
    assert_eq!(all.len(), 80);
}
