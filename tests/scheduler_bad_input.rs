//! Bad input against the real `infra scheduler` binary on loopback: each case is refused
//! with the status and message it should get, and the server still serves a valid request
//! afterwards (app JSON of wrong types and out-of-range numbers, ids with `..` or control
//! characters, bodies past the limit, deeply nested JSON, event-stream clients that never
//! read, slow-loris connections, malformed agent messages).

#[path = "support/scheduler.rs"]
mod scheduler_support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use infra::api::agent::REGISTER_PATH;
use scheduler_support::{client, get_json, get_text, SchedulerProc, TestAgent};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn start(dir: &std::path::Path) -> SchedulerProc {
    SchedulerProc::start(dir, &["--header-read-timeout", "1s"])
}

/// POSTs `body` (raw bytes) to `path`; the status and the body as JSON (Null when not JSON).
async fn post_raw(url: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
    let resp = client()
        .post(format!("{url}{path}"))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the scheduler answers");
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn post_app(url: &str, app: &Value) -> (u16, Value) {
    post_raw(url, "/v2/apps", app.to_string().into_bytes()).await
}

/// The server still works: `/ping` answers and a valid app is accepted.
async fn still_serving(url: &str, id: &str) {
    let pong = client()
        .get(format!("{url}/ping"))
        .send()
        .await
        .expect("ping");
    assert_eq!(pong.status(), 200);
    let (status, body) =
        post_app(url, &json!({"id": id, "cmd": "sleep 100", "instances": 0})).await;
    assert_eq!(status, 201, "{body}");
}

fn error_paths(body: &Value) -> Vec<String> {
    body["details"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(|d| d["path"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn app_ids(url: &str) -> Vec<String> {
    let mut ids: Vec<String> = get_json(&format!("{url}/v2/apps")).await["apps"]
        .as_array()
        .map(|apps| {
            apps.iter()
                .filter_map(|a| a["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// Sends raw bytes on a fresh connection and reads the whole answer (the request asks the
/// server to close).
async fn raw_http(url: &str, request: &[u8]) -> String {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("send");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Announces a body of `length` bytes, sends its first KiB and reads the answer: the
/// status and the JSON body. (Sending all of it races the server, which answers and
/// closes without reading the rest.)
async fn refused_by_length(url: &str, path: &str, length: usize) -> (u16, Value) {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    );
    stream
        .write_all(head.as_bytes())
        .await
        .expect("send headers");
    stream.write_all(&[b' '; 1024]).await.expect("send a KiB");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
            let text = String::from_utf8_lossy(&answer);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_string)
                    })
                    .and_then(|n| n.trim().parse::<usize>().ok());
                if length.is_some_and(|n| body.len() >= n) {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read_all)
        .await
        .expect("answered before the body was sent");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test]
async fn app_json_of_wrong_types_is_422_naming_each_field() {
    let dir = tempfile::tempdir().unwrap();
    let sched = start(dir.path());
    let url = &sched.url;
    let cases = [
        (json!({"id": 5, "cmd": "x"}), "/id"),
        (
            json!({"id": "/t1", "cmd": "x", "instances": "3"}),
            "/instances",
        ),
        (json!({"id": "/t2", "cmd": "x", "cpus": "lots"}), "/cpus"),
        (json!({"id": "/t3", "cmd": "x", "mem": [1]}), "/mem"),
        (json!({"id": "/t4", "cmd": 7}), "/cmd"),
        (json!({"id": "/t5", "cmd": "x", "env": {"A": 1}}), "/env(A)"),
        (
            json!({"id": "/t6", "cmd": "x", "portDefinitions": "80"}),
            "/portDefinitions",
        ),
        (
            json!({"id": "/t7", "cmd": "x", "healthChecks": {}}),
            "/healthChecks",
        ),
    ];
    for (app, path) in cases {
        let (status, body) = post_app(url, &app).await;
        assert_eq!(status, 422, "{app}: {body}");
        assert_eq!(body["message"], "Object is not valid", "{body}");
        assert!(
            error_paths(&body).contains(&path.to_string()),
            "{app}: {body}"
        );
        assert!(body["details"][0]["errors"][0].is_string(), "{body}");
    }
    assert!(app_ids(url).await.is_empty());
    still_serving(url, "/after-types").await;
}

#[tokio::test]
async fn out_of_range_numbers_are_422() {
    let dir = tempfile::tempdir().unwrap();
    let sched = start(dir.path());
    let url = &sched.url;
    let cases = [
        (
            json!({"id": "/n1", "cmd": "x", "instances": -1}),
            "/instances",
        ),
        (
            json!({"id": "/n2", "cmd": "x", "instances": 1e20}),
            "/instances",
        ),
        (
            json!({"id": "/n3", "cmd": "x", "instances": 4_294_967_296_u64}),
            "/instances",
        ),
        (json!({"id": "/n4", "cmd": "x", "cpus": -0.5}), "/cpus"),
        (json!({"id": "/n5", "cmd": "x", "cpus": 0}), "/cpus"),
        (json!({"id": "/n6", "cmd": "x", "mem": -128}), "/mem"),
        (
            json!({"id": "/n7", "cmd": "x", "backoffSeconds": 1e300}),
            "/backoffSeconds",
        ),
        (
            json!({"id": "/n8", "cmd": "x", "maxLaunchDelaySeconds": 1e300}),
            "/maxLaunchDelaySeconds",
        ),
        (
            json!({"id": "/n9", "cmd": "x", "portDefinitions": [{"port": 70000}]}),
            "/portDefinitions(0)/port",
        ),
        (
            json!({"id": "/n10", "cmd": "x", "taskKillGracePeriodSeconds": -5}),
            "/taskKillGracePeriodSeconds",
        ),
    ];
    for (app, path) in cases {
        let (status, body) = post_app(url, &app).await;
        assert_eq!(status, 422, "{app}: {body}");
        assert_eq!(error_paths(&body), vec![path.to_string()], "{app}: {body}");
    }
    // Numbers JSON cannot hold as a double (NaN has no JSON spelling): invalid JSON.
    for text in [
        r#"{"id": "/big", "cmd": "x", "cpus": 1e400}"#,
        r#"{"id": "/nan", "cmd": "x", "cpus": NaN}"#,
    ] {
        let (status, body) = post_raw(url, "/v2/apps", text.as_bytes().to_vec()).await;
        assert_eq!(status, 400, "{text}: {body}");
        assert_eq!(body["message"], "Invalid JSON", "{body}");
    }
    assert!(app_ids(url).await.is_empty());
    still_serving(url, "/after-numbers").await;
}

#[tokio::test]
async fn ids_with_dot_segments_or_control_characters_are_422_on_id() {
    let dir = tempfile::tempdir().unwrap();
    let sched = start(dir.path());
    let url = &sched.url;
    for id in [
        "/a/../b",
        "../escape",
        "/a/./b",
        "/..",
        "/a\u{0}b",
        "/line\nbreak",
        "/tab\tid",
        "/bell\u{7}",
        "/UPPER",
        "/a//b",
        "",
    ] {
        let (status, body) = post_app(url, &json!({"id": id, "cmd": "x"})).await;
        assert_eq!(status, 422, "{id:?}: {body}");
        assert_eq!(error_paths(&body), vec!["/id"], "{id:?}: {body}");
        let message = body["details"][0]["errors"][0].as_str().unwrap_or("");
        assert!(
            !message.chars().any(|c| c.is_control()),
            "the message shows control characters escaped: {message:?}"
        );
    }
    // The same through the URL path, which reqwest would normalise: a raw request.
    let body = r#"{"cmd": "x"}"#;
    let answer = raw_http(
        url,
        format!(
            "PUT /v2/apps/a/../b HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 422"), "{answer}");
    assert!(answer.contains(r#""path":"/id""#), "{answer}");
    // Dependencies may still be relative, as in Marathon.
    let (status, body) = post_app(
        url,
        &json!({"id": "/g/web", "cmd": "x", "instances": 0, "dependencies": ["../db"]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(app_ids(url).await, vec!["/g/web"]);
    still_serving(url, "/after-ids").await;
}

#[tokio::test]
async fn bodies_past_the_limit_are_413_with_a_json_message() {
    let dir = tempfile::tempdir().unwrap();
    let sched = start(dir.path());
    let url = &sched.url;
    // A 10 MB body announced by its Content-Length: refused before it is read (only its
    // first KiB is ever sent).
    let (status, body) = refused_by_length(url, "/v2/apps", 10 * 1024 * 1024).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["message"].as_str().is_some_and(
            |m| m.contains("Request body too large") && m.contains("at most 4194304 bytes")
        ),
        "{body}"
    );
    let mut big = br#"{"id": "/big", "cmd": "x", "labels": {"a": ""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    big.extend(br#""}}"#);
    // The same streamed without a length (chunked): cut off at the limit.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let resp = client()
        .put(format!("{url}/v2/apps"))
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await;
    // The server may answer and close before the client finished sending.
    if let Ok(resp) = resp {
        assert_eq!(resp.status(), 413);
    }
    // The agent protocol has its own, larger limit; past it, 413 too.
    let (status, body) = refused_by_length(url, REGISTER_PATH, 17 * 1024 * 1024).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("at most 16777216 bytes")),
        "{body}"
    );
    // A large, valid app list (a thousand apps is about 1.8 MB) is within the limit.
    let apps: Vec<Value> = (0..1000)
        .map(|i| {
            json!({"id": format!("/many/app-{i}"), "cmd": "sleep 1000", "instances": 0,
                         "labels": {"owner": "x".repeat(1500)}})
        })
        .collect();
    let body = serde_json::to_vec(&apps).unwrap();
    assert!(body.len() > 1024 * 1024, "{}", body.len());
    let resp = client()
        .put(format!("{url}/v2/apps"))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(!app_ids(url).await.contains(&"/big".to_string()));
    still_serving(url, "/after-big").await;
}

#[tokio::test]
async fn deeply_nested_or_non_object_json_is_400() {
    let dir = tempfile::tempdir().unwrap();
    let sched = start(dir.path());
    let url = &sched.url;
    let deep = format!(
        r#"{{"id": "/deep", "cmd": "x", "labels": {}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    for (body, hint) in [
        (deep.as_str(), "recursion limit exceeded"),
        ("[1, 2]", "expected a JSON object"),
        ("\"just a string\"", "expected a JSON object"),
        ("{\"id\": \"/x\", ", "EOF"),
        ("\u{0}\u{1}garbage", ""),
        ("", "EOF"),
    ] {
        let (status, resp) = post_raw(url, "/v2/apps", body.as_bytes().to_vec()).await;
        assert_eq!(status, 400, "{hint}: {resp}");
        assert_eq!(resp["message"], "Invalid JSON", "{resp}");
        assert!(
            resp["details"][0]["errors"][0]
                .as_str()
                .is_some_and(|e| e.contains(hint)),
            "{hint}: {resp}"
        );
    }
    // PUT /v2/apps (a list) refuses the nested one the same way.
    let (status, _) = {
        let resp = client()
            .put(format!("{url}/v2/apps"))
            .body(format!(
                "[{}{}]",
                "{\"a\":".repeat(50_000),
                "1}".repeat(50_000)
            ))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), ())
    };
    assert_eq!(status, 400);
    assert!(app_ids(url).await.is_empty());
    still_serving(url, "/after-nesting").await;
}

/// An event-stream client that never reads cannot block the scheduler or the other
/// subscribers: 1000 writes go through and a reading client sees the last one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_client_that_never_reads_blocks_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let sched = start(dir.path());
    let url = sched.url.clone();
    // The client that never reads, with a tiny receive buffer so it stalls at once.
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stuck = socket.connect(addr).await.unwrap();
    stuck
        .write_all(b"GET /v2/events HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .unwrap();
    // The client that reads: collects the api_post_event events.
    let seen =
        scheduler_support::watch_events(format!("{url}/v2/events?event_type=api_post_event"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // 1000 writes, 8 at a time, each event carrying 4 KiB so the stuck client's buffers
    // fill long before the end.
    let started = Instant::now();
    let padding = "p".repeat(4096);
    let writes = futures::stream::iter(0..1000)
        .map(|i| {
            let url = url.clone();
            let padding = padding.clone();
            async move {
                let resp = client()
                    .put(format!("{url}/v2/apps/flood/app-{i}"))
                    .json(&json!({"cmd": "sleep 1000", "instances": 0,
                                  "labels": {"padding": padding}}))
                    .send()
                    .await
                    .expect("write answered");
                resp.status().as_u16()
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<u16>>()
        .await;
    assert!(writes.iter().all(|s| *s == 201), "{writes:?}");
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "1000 writes took {:?}",
        started.elapsed()
    );
    // The reading client gets events up to the last write.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let count = seen.lock().unwrap().len();
        if count >= 1000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reading client saw only {count} of 1000 events"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The stuck client is still connected, and the server still answers.
    let mut probe = [0u8; 1];
    assert!(
        stuck.try_read(&mut probe).is_ok() || stuck.peer_addr().is_ok(),
        "the stuck client's connection is open"
    );
    still_serving(&url, "/after-events").await;
}

/// A client that trickles its headers (or sends nothing) is disconnected after the header
/// read timeout; other clients are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_connections_are_cut_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let sched = start(dir.path());
    let url = sched.url.clone();
    let addr = url.trim_start_matches("http://").to_string();
    let trickle = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut stream = TcpStream::connect(&addr).await.unwrap();
            stream
                .write_all(b"GET /ping HTTP/1.1\r\nHost: t\r\n")
                .await
                .unwrap();
            let started = Instant::now();
            // One header byte every 200 ms; never the blank line that ends the headers.
            for _ in 0..100 {
                if stream.write_all(b"X").await.is_err() {
                    break;
                }
                let mut buf = [0u8; 256];
                match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await
                {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(_)) => break,
                    Err(_) => {}
                }
            }
            started.elapsed()
        })
    };
    let silent = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut stream = TcpStream::connect(&addr).await.unwrap();
            let started = Instant::now();
            let mut buf = [0u8; 256];
            let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf)).await;
            (
                started.elapsed(),
                read.map(|r| r.map(|n| n == 0 || buf.starts_with(b"HTTP/1.1 408"))),
            )
        })
    };
    // Served while both are connected.
    for _ in 0..5 {
        still_serving_ping(&url).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let trickled = trickle.await.unwrap();
    assert!(
        trickled < Duration::from_secs(5),
        "the trickling client was cut after {trickled:?}"
    );
    let (waited, read) = silent.await.unwrap();
    assert!(
        matches!(read, Ok(Ok(true)) | Ok(Err(_))),
        "the silent client was not disconnected: {read:?}"
    );
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    still_serving(&url, "/after-loris").await;
}

async fn still_serving_ping(url: &str) {
    let resp = client()
        .get(format!("{url}/ping"))
        .send()
        .await
        .expect("ping while slow clients are connected");
    assert_eq!(resp.status(), 200);
}

/// Malformed agent messages: 400 for what is not the protocol's JSON, 422 for values that
/// make no sense; nothing changes in the scheduler's state, and agents keep working.
#[tokio::test]
async fn malformed_agent_messages_are_refused_without_changing_state() {
    let dir = tempfile::tempdir().unwrap();
    let sched = start(dir.path());
    let url = sched.url.clone();
    let mut agent = TestAgent::new("h1", (31000, 31009));
    agent.register(&url).await;
    let (status, body) = post_app(
        &url,
        &json!({"id": "/web", "cmd": "sleep 100", "instances": 1}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    for _ in 0..3 {
        assert_eq!(agent.heartbeat(&url).await, 200);
    }
    let tasks_before = get_json(&format!("{url}/v2/tasks")).await;
    let heartbeat = infra::api::agent::heartbeat_path(&agent.id);
    let registration = json!({"agentId": "agent-x", "hostname": "x", "address": "127.0.0.1",
        "cpus": 1.0, "mem": 1.0, "disk": 1.0, "portRange": [31000, 31001], "attributes": {},
        "docker": false, "version": "t"});
    let with = |key: &str, value: Value| {
        let mut r = registration.clone();
        r[key] = value;
        r.to_string().into_bytes()
    };
    let bad_json: Vec<(&str, Vec<u8>)> = vec![
        (REGISTER_PATH, b"{".to_vec()),
        (REGISTER_PATH, b"null".to_vec()),
        (REGISTER_PATH, br#"{"agentId": 5}"#.to_vec()),
        (REGISTER_PATH, with("cpus", json!("many"))),
        (REGISTER_PATH, with("portRange", json!([70000, 1]))),
        (heartbeat.as_str(), b"\xff\xfe garbage".to_vec()),
        (heartbeat.as_str(), br#"{"tasks": "all"}"#.to_vec()),
        (
            heartbeat.as_str(),
            br#"{"tasks": [{"taskId": 1}]}"#.to_vec(),
        ),
        (
            heartbeat.as_str(),
            br#"{"tasks": [], "busyPorts": [-1]}"#.to_vec(),
        ),
    ];
    for (path, body) in bad_json {
        let (status, resp) = post_raw(&url, path, body.clone()).await;
        assert_eq!(
            status,
            400,
            "{path} {}: {resp}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(resp["message"], "Invalid JSON", "{resp}");
    }
    let invalid = [
        (with("agentId", json!("../../etc")), "/agentId"),
        (with("agentId", json!("")), "/agentId"),
        (with("hostname", json!("evil\nname")), "/hostname"),
        (with("mem", json!(-1)), "/mem"),
        (with("portRange", json!([32000, 31000])), "/portRange"),
    ];
    for (body, path) in invalid {
        let (status, resp) = post_raw(&url, REGISTER_PATH, body).await;
        assert_eq!(status, 422, "{resp}");
        assert_eq!(error_paths(&resp), vec![path], "{resp}");
    }
    // A heartbeat for an agent that does not exist: 404, as before.
    let (status, _) = post_raw(
        &url,
        &infra::api::agent::heartbeat_path("nobody"),
        br#"{"tasks": []}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 404);
    // Nothing changed: the same tasks, no agent registered by the refused messages, and
    // the real agent's heartbeats still work.
    assert_eq!(get_json(&format!("{url}/v2/tasks")).await, tasks_before);
    assert_eq!(agent.heartbeat(&url).await, 200);
    let metrics = get_text(&format!("{url}/metrics")).await;
    assert!(
        metrics.lines().any(|l| l == "infra_scheduler_agents 1"),
        "only the real agent is registered: {metrics}"
    );
    still_serving(&url, "/after-agents").await;
}
