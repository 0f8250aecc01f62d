//! WAN forwarding between two real DNS servers on 127.0.0.1 configured as dc1 and dc2:
//! dc2's names asked at dc1 are answered with dc2's records (also when dc2's first server
//! is dead), and a datacenter whose servers all fail gives SERVFAIL within the timeout.

#[path = "support/dns.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use infra::dns::{CatalogSnapshot, DnsConfig, StaticCatalog};
use support::*;

fn dc2_snapshot() -> CatalogSnapshot {
    CatalogSnapshot {
        instances: vec![
            instance("/x", "west1", "127.0.0.21", &[32000], true),
            instance("/x", "west2", "127.0.0.22", &[32001], false),
        ],
        nodes: vec![node("west1", "127.0.0.21"), node("west2", "127.0.0.22")],
        index: 3,
    }
}

/// A port on 127.0.0.1 that is bound (so no ICMP refusal) but never answers.
async fn silent_server() -> (tokio::net::UdpSocket, std::net::SocketAddr) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

#[tokio::test]
async fn another_datacenters_names_are_answered_by_its_servers() {
    let dc2 = start(
        dc_config("dc2"),
        Arc::new(StaticCatalog::new(dc2_snapshot())),
    )
    .await;
    let (_silent, silent_addr) = silent_server().await;
    let mut dc1_config = dc_config("dc1");
    dc1_config.forward_timeout = Duration::from_millis(300);
    // The first server of dc2 is dead: the second one answers.
    dc1_config
        .wan
        .insert("dc2".into(), vec![silent_addr, dc2.local_addr()]);
    let dc1 = start(dc1_config, Arc::new(StaticCatalog::new(sample_snapshot()))).await;
    let mut client = udp_client(dc1.local_addr()).await;

    let reply = ask(&mut client, "x.service.dc2.infra.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answer_data(&reply), vec!["127.0.0.21"]);

    let reply = ask(&mut client, "_x._tcp.service.dc2.infra.", RecordType::SRV).await;
    assert_eq!(answer_data(&reply), vec!["1 1 32000 west1.node.dc2.infra."]);
    assert_eq!(reply.additionals.len(), 1);
    assert_eq!(reply.additionals[0].data.to_string(), "127.0.0.21");

    let reply = ask(&mut client, "west1.node.dc2.infra.", RecordType::A).await;
    assert_eq!(answer_data(&reply), vec!["127.0.0.21"]);

    // dc2's NXDOMAIN comes back as it is.
    let reply = ask(&mut client, "web.service.dc2.infra.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);

    // The local names stay local: x does not run in dc1, web does not run in dc2.
    let reply = ask(&mut client, "x.service.infra.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    let reply = ask(&mut client, "web.service.dc1.infra.", RecordType::A).await;
    assert_eq!(answer_data(&reply), vec!["127.0.0.11", "127.0.0.12"]);

    // Over TCP, and with dig, the same.
    let mut tcp = tcp_client(dc1.local_addr()).await;
    let reply = ask(&mut tcp, "x.service.dc2.infra.", RecordType::A).await;
    assert_eq!(answer_data(&reply), vec!["127.0.0.21"]);
    let addr = dc1.local_addr();
    let short = tokio::task::spawn_blocking(move || dig_short(addr, &["x.service.dc2.infra"]))
        .await
        .unwrap();
    assert_eq!(short, vec!["127.0.0.21"]);
}

#[tokio::test]
async fn a_dead_datacenter_is_servfail_within_the_timeout() {
    let (_silent, silent_addr) = silent_server().await;
    // A port nothing listens on (refused at once) and a silent one.
    let closed = {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap()
    };
    let mut config = dc_config("dc1");
    config.forward_timeout = Duration::from_millis(400);
    config.wan.insert("dc2".into(), vec![closed, silent_addr]);
    let dc1 = start(config, Arc::new(StaticCatalog::new(sample_snapshot()))).await;
    let mut client = udp_client(dc1.local_addr()).await;
    let started = Instant::now();
    let reply = ask(&mut client, "x.service.dc2.infra.", RecordType::A).await;
    let elapsed = started.elapsed();
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    assert!(reply.answers.is_empty());
    // Two servers at 400 ms at most each, and the silent one took its full timeout.
    assert!(elapsed >= Duration::from_millis(390), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
}

#[tokio::test]
async fn a_datacenter_without_servers_is_servfail() {
    let mut config: DnsConfig = dc_config("dc1");
    config.wan.insert("dc3".into(), vec![]);
    let dc1 = start(config, Arc::new(StaticCatalog::new(sample_snapshot()))).await;
    let mut client = udp_client(dc1.local_addr()).await;
    let reply = ask(&mut client, "x.service.dc3.infra.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
}

/// A free 127.0.0.1 port (UDP and TCP both free when it is returned).
fn free_port() -> std::net::SocketAddr {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = udp.local_addr().unwrap();
    std::net::TcpListener::bind(addr).unwrap();
    addr
}

#[tokio::test]
async fn a_wan_map_pointing_back_cannot_make_a_forwarding_loop() {
    // a (dc1) forwards dc2 to b; b (dc3) is misconfigured to forward dc2 back to a.
    let a_addr = free_port();
    let b = {
        let mut config = dc_config("dc3");
        config.wan.insert("dc2".into(), vec![a_addr]);
        start(config, Arc::new(StaticCatalog::default())).await
    };
    let mut config = dc_config("dc1");
    config.wan.insert("dc2".into(), vec![b.local_addr()]);
    config.forward_timeout = Duration::from_millis(500);
    let catalog: Arc<dyn infra::dns::ServiceCatalog> = Arc::new(StaticCatalog::default());
    let a = infra::dns::DnsServer::bind(a_addr, config, catalog)
        .await
        .unwrap();
    let mut client = udp_client(a.local_addr()).await;
    let started = Instant::now();
    let reply = ask(&mut client, "x.service.dc2.infra.", RecordType::A).await;
    // b refuses to forward a forwarded query, and a relays that at once.
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
}
