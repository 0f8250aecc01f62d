//! Shared helpers for the discovery DNS tests: an in-memory catalog, a server on a free
//! 127.0.0.1 port, a real DNS client (hickory-net over UDP or TCP) and `dig`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::Message;
use hickory_proto::rr::{DNSClass, Name, RecordType};
use infra::dns::{
    CatalogSnapshot, DnsConfig, DnsServer, Node, ServiceCatalog, ServiceInstance, StaticCatalog,
};

pub fn instance(app: &str, node: &str, ip: &str, ports: &[u16], healthy: bool) -> ServiceInstance {
    ServiceInstance {
        app_id: app.into(),
        task_id: format!("{}.{node}", app.trim_start_matches('/').replace('/', "_")),
        node: node.into(),
        address: ip.parse().unwrap(),
        ports: ports.to_vec(),
        healthy,
        tags: vec![],
        network: None,
    }
}

pub fn node(name: &str, ip: &str) -> Node {
    Node {
        id: format!("agent-{name}"),
        name: name.into(),
        address: ip.parse().unwrap(),
    }
}

/// `web` on c1 (healthy, two ports) and c2 (healthy), and c3 (unhealthy); `/shop/api` on c2;
/// `sick` only unhealthy.
pub fn sample_snapshot() -> CatalogSnapshot {
    CatalogSnapshot {
        instances: vec![
            instance("/web", "c1", "127.0.0.11", &[31000, 31001], true),
            instance("/web", "c2", "127.0.0.12", &[31002], true),
            instance("/web", "c3", "127.0.0.13", &[31003], false),
            instance("/shop/api", "c2", "127.0.0.12", &[31100], true),
            instance("/sick", "c1", "127.0.0.11", &[31200], false),
        ],
        nodes: vec![
            node("c1", "127.0.0.11"),
            node("c2", "127.0.0.12"),
            node("c3", "127.0.0.13"),
        ],
        index: 42,
    }
}

pub async fn start(config: DnsConfig, catalog: Arc<StaticCatalog>) -> DnsServer {
    let catalog: Arc<dyn ServiceCatalog> = catalog;
    DnsServer::bind("127.0.0.1:0".parse().unwrap(), config, catalog)
        .await
        .unwrap()
}

pub fn dc_config(dc: &str) -> DnsConfig {
    DnsConfig {
        datacenter: dc.into(),
        ..DnsConfig::default()
    }
}

pub async fn udp_client(server: SocketAddr) -> Client<TokioRuntimeProvider> {
    let stream = UdpClientStream::builder(server, TokioRuntimeProvider::new())
        .with_timeout(Some(Duration::from_secs(5)))
        .build();
    let (client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
    tokio::spawn(background);
    client
}

pub async fn tcp_client(server: SocketAddr) -> Client<TokioRuntimeProvider> {
    let (connect, sender) = TcpClientStream::new(
        server,
        None,
        Some(Duration::from_secs(5)),
        TokioRuntimeProvider::new(),
    );
    let stream = connect.await.unwrap();
    let (client, background) = Client::<TokioRuntimeProvider>::new(stream, sender);
    tokio::spawn(background);
    client
}

pub async fn ask(
    client: &mut Client<TokioRuntimeProvider>,
    name: &str,
    qtype: RecordType,
) -> Message {
    client
        .query(Name::from_str(name).unwrap(), DNSClass::IN, qtype)
        .await
        .unwrap_or_else(|e| panic!("query {name} {qtype}: {e}"))
        .into_message()
}

/// The answer section's data as text, sorted.
pub fn answer_data(message: &Message) -> Vec<String> {
    let mut data: Vec<String> = message.answers.iter().map(|r| r.data.to_string()).collect();
    data.sort();
    data
}

/// `dig @127.0.0.1 -p PORT ARGS...`; panics with a clear message when dig is missing.
pub fn dig(server: SocketAddr, args: &[&str]) -> String {
    let output = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string())
        .args(["+time=3", "+tries=1"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("dig is required (apt-get install -y dnsutils): {e}"));
    assert!(
        output.status.success() || !output.stdout.is_empty(),
        "dig failed: {output:?}"
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `dig +short` lines, sorted.
pub fn dig_short(server: SocketAddr, args: &[&str]) -> Vec<String> {
    let mut all = vec!["+short"];
    all.extend_from_slice(args);
    let mut lines: Vec<String> = dig(server, &all).lines().map(str::to_string).collect();
    lines.sort();
    lines
}
