//! Property tests (a bounded fuzz run, the same number of cases every CI run) of the three
//! parsers that read network or user input: the app JSON path (serde_json -> Marathon
//! validation -> defaults -> the typed spec), the playbook YAML loader, and the discovery
//! DNS server (a real server on 127.0.0.1, sent random and mutated packets over UDP and
//! TCP). None may panic or hang, and the DNS server must answer a valid query after every
//! bad one. Below them, the DNS cases by name (truncated, garbage, oversized).
//!
//! Crashes are fixed and kept as named regression tests at the end (`regression_*`).

#[path = "support/dns.rs"]
mod dns_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use infra::api::appdef;
use infra::dns::{DnsConfig, StaticCatalog};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunConfig, TestRunner};
use serde_json::{Map, Value};

/// Cases per property: enough to find shallow crashes, small enough that the whole file
/// runs in a few seconds.
const CASES: u32 = 256;

// ---- app JSON ---------------------------------------------------------------------------

/// Everything the scheduler does with a body before it stores it; never panics.
fn app_pipeline(body: &[u8]) {
    let Ok(Value::Object(def)) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    check_definition(def);
}

fn check_definition(def: Map<String, Value>) {
    if appdef::validate(&def).is_err() {
        return;
    }
    let normalized = appdef::normalize(def, "v1", "v1", &|_| false, (10000, 10100));
    if let Ok(spec) = appdef::AppSpec::from_definition(&normalized) {
        let _ = appdef::service_ports(&spec);
    }
}

/// JSON values shaped like app definitions: Marathon's field names with values of any
/// type, nested a few levels, so validation's deeper branches are reached.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just(-1.0e300),
            Just(1.0e300),
            Just(0.0),
            Just(-0.0),
            Just(4_294_967_296.0)
        ]
        .prop_map(Value::from),
        "[a-z0-9/.\\-]{0,12}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
        prop_oneof![
            Just("BRIDGE"),
            Just("DOCKER"),
            Just("HTTP"),
            Just("COMMAND"),
            Just("tcp"),
            Just("UNIQUE"),
            Just("hostname"),
            Just("container/bridge")
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((field_name(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "id",
            "cmd",
            "args",
            "cpus",
            "mem",
            "disk",
            "instances",
            "container",
            "docker",
            "type",
            "image",
            "network",
            "portMappings",
            "containerPort",
            "hostPort",
            "servicePort",
            "portDefinitions",
            "port",
            "ports",
            "protocol",
            "name",
            "requirePorts",
            "healthChecks",
            "portIndex",
            "command",
            "value",
            "constraints",
            "dependencies",
            "upgradeStrategy",
            "minimumHealthCapacity",
            "labels",
            "env",
            "networks",
            "mode",
            "backoffSeconds",
            "backoffFactor",
            "maxLaunchDelaySeconds",
            "killSelection",
            "volumes",
        ])
        .prop_map(str::to_string),
        "[a-zA-Z]{1,8}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn app_json_arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        app_pipeline(&body);
    }

    #[test]
    fn app_json_shaped_definitions_never_panic(
        fields in prop::collection::vec((field_name(), json_value()), 0..12),
        id in prop_oneof!["[a-z0-9/.\\-]{1,16}", any::<String>()],
    ) {
        let mut def: Map<String, Value> = fields.into_iter().collect();
        def.insert("id".into(), Value::String(id));
        app_pipeline(Value::Object(def.clone()).to_string().as_bytes());
        // Also with a command, so more definitions get past the first checks.
        def.insert("cmd".into(), Value::String("sleep 1".into()));
        def.remove("args");
        check_definition(def);
    }

    #[test]
    fn yaml_arbitrary_text_never_panics(text in any::<String>()) {
        let _ = yaml_parse(&text);
    }

    #[test]
    fn yaml_shaped_text_never_panics(
        parts in prop::collection::vec(
            prop::sample::select(vec![
                "- ", "a: ", "b: ", "<<: ", "&x ", "*x", "&y ", "*y", "[", "]", "{", "}", ", ",
                "\n", "\n  ", "\n    ", "? ", "'q'", "\"d\"", "|\n  t", ">\n  f", "!!str ",
                "!!int ", "!vault ", "yes", "0x1F", "1e3", "~", "---\n", "...\n", "# c\n",
            ]),
            0..40,
        )
    ) {
        let _ = yaml_parse(&parts.concat());
    }
}

fn yaml_parse(text: &str) -> Result<serde_json::Value, String> {
    infra::playbook::yaml::parse_str(text, Path::new("fuzz.yml"))
        .map(|node| node.to_json())
        .map_err(|e| e.to_string())
}

// ---- DNS ----------------------------------------------------------------------------------

/// A real discovery DNS server on a runtime of its own (the property runner is sync).
struct DnsUnderTest {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
    _server: infra::dns::DnsServer,
}

fn dns_server() -> DnsUnderTest {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let catalog = Arc::new(StaticCatalog::new(dns_support::sample_snapshot()));
    let server = runtime.block_on(dns_support::start(DnsConfig::default(), catalog));
    // The server's tasks were spawned on `runtime` and keep running on its worker.
    let addr = server.local_addr();
    DnsUnderTest {
        addr,
        _runtime: runtime,
        _server: server,
    }
}

fn valid_query(id: u16, name: &str) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(
        Name::from_str(name).expect("name"),
        RecordType::A,
    ));
    message.to_vec().expect("encode")
}

fn udp_socket(server: SocketAddr) -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.connect(server).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    socket
}

/// Asks `web.service.infra.` over UDP and checks the answer (two healthy hosts).
fn answers_over_udp(socket: &UdpSocket, id: u16) -> Result<(), String> {
    socket
        .send(&valid_query(id, "web.service.infra."))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4096];
    loop {
        let n = socket
            .recv(&mut buf)
            .map_err(|e| format!("no answer to a valid query: {e}"))?;
        // Answers to earlier garbage (FORMERR) may still be queued: skip them.
        let Ok(reply) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if reply.metadata.id == id {
            return match reply.answers.len() {
                2 => Ok(()),
                other => Err(format!("{other} answers: {reply:?}")),
            };
        }
    }
}

fn answers_over_tcp(server: SocketAddr) -> Result<(), String> {
    let mut stream = TcpStream::connect(server).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let query = valid_query(7, "web.service.infra.");
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend(&query);
    stream.write_all(&framed).map_err(|e| e.to_string())?;
    let mut len = [0u8; 2];
    stream
        .read_exact(&mut len)
        .map_err(|e| format!("no TCP answer: {e}"))?;
    let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut reply).map_err(|e| e.to_string())?;
    let reply = Message::from_vec(&reply).map_err(|e| e.to_string())?;
    if reply.answers.len() == 2 {
        Ok(())
    } else {
        Err(format!("{reply:?}"))
    }
}

/// Random datagrams, and valid queries with bytes changed and cut, each followed by a
/// valid query that must be answered.
#[test]
fn dns_random_and_mutated_packets_never_stop_the_server() {
    let dns = dns_server();
    let socket = udp_socket(dns.addr);
    let base = valid_query(1, "_web._tcp.service.infra.");
    let packets = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..600),
        (
            prop::collection::vec((0..base.len(), any::<u8>()), 1..6),
            0..=base.len()
        )
            .prop_map(move |(changes, keep)| {
                let mut packet = base.clone();
                for (at, byte) in changes {
                    packet[at] = byte;
                }
                packet.truncate(keep);
                packet
            }),
    ];
    let mut runner = TestRunner::new(RunConfig::with_cases(CASES));
    let next_id = std::sync::atomic::AtomicU16::new(1000);
    runner
        .run(&packets, |packet| {
            socket
                .send(&packet)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let id = next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            answers_over_udp(&socket, id).map_err(TestCaseError::fail)?;
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    answers_over_tcp(dns.addr).expect("TCP still answers");
}

#[test]
fn dns_truncated_packets_are_survived() {
    let dns = dns_server();
    let socket = udp_socket(dns.addr);
    let query = valid_query(1, "web.service.infra.");
    for keep in 0..query.len() {
        socket.send(&query[..keep]).expect("send");
    }
    answers_over_udp(&socket, 2).expect("UDP answers after truncated packets");
    // Over TCP: a length prefix promising more than is sent, then the connection closes.
    let mut stream = TcpStream::connect(dns.addr).expect("connect");
    stream.write_all(&[0, 200]).expect("prefix");
    stream.write_all(&query[..10]).expect("part");
    drop(stream);
    // Half a length prefix.
    let mut stream = TcpStream::connect(dns.addr).expect("connect");
    stream.write_all(&[0]).expect("half prefix");
    drop(stream);
    answers_over_tcp(dns.addr).expect("TCP answers after truncated messages");
}

#[test]
fn dns_garbage_is_survived() {
    let dns = dns_server();
    let socket = udp_socket(dns.addr);
    for garbage in [
        &b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        &[0u8; 12],
        // A header claiming 65535 questions and nothing after it.
        &[0, 1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        // A name whose compression pointer points at itself.
        &[0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1],
    ] {
        socket.send(garbage).expect("send");
    }
    answers_over_udp(&socket, 3).expect("UDP answers after garbage");
    let mut stream = TcpStream::connect(dns.addr).expect("connect");
    stream.write_all(b"\x00\x10garbage garbage!").expect("send");
    drop(stream);
    answers_over_tcp(dns.addr).expect("TCP answers after garbage");
}

#[test]
fn dns_oversized_messages_are_survived() {
    let dns = dns_server();
    let socket = udp_socket(dns.addr);
    // The largest UDP datagram loopback carries, starting like a real query.
    let mut big = valid_query(4, "web.service.infra.");
    big.resize(65_000, 0xab);
    socket.send(&big).expect("send a 65000-byte datagram");
    answers_over_udp(&socket, 5).expect("UDP answers after an oversized datagram");
    // The largest TCP message (65535 bytes), of garbage.
    let mut stream = TcpStream::connect(dns.addr).expect("connect");
    let mut framed = vec![0xff, 0xff];
    framed.resize(2 + 65_535, 0x41);
    // The server may close while we are still sending.
    let _ = stream.write_all(&framed);
    drop(stream);
    answers_over_tcp(dns.addr).expect("TCP answers after an oversized message");
}

// ---- regressions --------------------------------------------------------------------------

/// Found reading the path a definition's numbers take while writing these properties (the
/// fuzz runs themselves found no crash): a launch delay past Duration's range made
/// `Duration::from_secs_f64` panic in the heartbeat that reports a failed task. Now refused
/// (422) and capped where the delay is computed.
#[test]
fn regression_huge_backoff_is_refused_and_capped() {
    let def: Map<String, Value> = serde_json::from_str(
        r#"{"id": "/b", "cmd": "x", "backoffSeconds": 1e300, "maxLaunchDelaySeconds": 1e300}"#,
    )
    .expect("json");
    let paths: Vec<String> = appdef::validate(&def)
        .expect_err("refused")
        .into_iter()
        .map(|d| d.path)
        .collect();
    assert_eq!(paths, ["/backoffSeconds", "/maxLaunchDelaySeconds"]);
    let delay = infra::scheduler::deployments::backoff_delay(50, 1e300, 1e300, 1e300);
    assert!(Duration::try_from_secs_f64(delay).is_ok(), "{delay}");
    let nan = infra::scheduler::deployments::backoff_delay(3, 0.0, f64::INFINITY, 10.0);
    assert!(Duration::try_from_secs_f64(nan).is_ok(), "{nan}");
}

/// Deep block nesting (`- - - ...`, which the YAML scanner does not bound) recursed in the
/// loader without a bound, one stack frame per level; now refused at a fixed depth.
#[test]
fn regression_deeply_nested_yaml_is_an_error_not_a_crash() {
    let err = yaml_parse(&"- ".repeat(50_000)).expect_err("refused");
    assert!(err.contains("nested more than 128 levels"), "{err}");
    let err = yaml_parse(&format!("{}{}", "[".repeat(200), "]".repeat(200))).expect_err("refused");
    assert!(err.contains("fuzz.yml:"), "{err}");
}
