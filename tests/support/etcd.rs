//! A real etcd cluster for tests: Debian's `etcd` (etcd-server, v3.4) members on 127.0.0.1
//! with free ports, plain http, temp data dirs and fast elections (`--heartbeat-interval 100
//! --election-timeout 1000`). Members can be killed (SIGKILL), frozen (SIGSTOP), thawed
//! (SIGCONT) and restarted on their data dir; everything is killed at Drop.
//!
//! Reads and writes go through etcd's v3 JSON gateway (`POST /v3/kv/put`, `/v3/kv/range`,
//! `/v3/watch`, base64 keys and values), so the tests need no etcd client library and
//! observe exactly what the scheduler committed, including the revision history.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

const ETCD: &str = "/usr/bin/etcd";

/// `n` distinct free TCP ports on 127.0.0.1 (all bound at once, then released).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

pub struct EtcdMember {
    pub name: String,
    pub client_url: String,
    pub peer_url: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    /// The certificate and key it presents to its peers (peer TLS only).
    pub peer_identity: Option<(PathBuf, PathBuf)>,
    /// Added to a running cluster (`--initial-cluster-state existing`).
    joining: bool,
    child: Option<Child>,
    stopped: bool,
}

/// Peer TLS as the control play sets it up: https peer URLs, each member presenting its
/// certificate, and only certificates from `ca` accepted from a peer.
pub struct PeerTls {
    pub ca: PathBuf,
    /// Member `i`'s certificate and key.
    pub identities: Vec<(PathBuf, PathBuf)>,
}

pub struct EtcdCluster {
    pub dir: tempfile::TempDir,
    pub members: Vec<EtcdMember>,
    initial_cluster: String,
    token: String,
    /// The CA peers must present a certificate from (peer TLS only).
    peer_ca: Option<PathBuf>,
}

impl EtcdCluster {
    /// Starts an `n`-member cluster and waits until every member reports healthy.
    pub async fn start(n: usize) -> EtcdCluster {
        EtcdCluster::start_with(n, None).await
    }

    /// Starts an `n`-member cluster whose peers speak TLS with `tls` (clients stay plain
    /// http, so the JSON gateway helpers work unchanged).
    pub async fn start_with_peer_tls(n: usize, tls: PeerTls) -> EtcdCluster {
        EtcdCluster::start_with(n, Some(tls)).await
    }

    async fn start_with(n: usize, tls: Option<PeerTls>) -> EtcdCluster {
        assert!(
            std::path::Path::new(ETCD).exists(),
            "{ETCD} is missing: apt-get install etcd-server"
        );
        let dir = tempfile::tempdir().unwrap();
        let ports = free_ports(2 * n);
        let peer_scheme = if tls.is_some() { "https" } else { "http" };
        let members: Vec<EtcdMember> = (0..n)
            .map(|i| EtcdMember {
                name: format!("etcd{i}"),
                client_url: format!("http://127.0.0.1:{}", ports[2 * i]),
                peer_url: format!("{peer_scheme}://127.0.0.1:{}", ports[2 * i + 1]),
                data_dir: dir.path().join(format!("etcd{i}")),
                log: dir.path().join(format!("etcd{i}.log")),
                peer_identity: tls.as_ref().map(|t| t.identities[i].clone()),
                joining: false,
                child: None,
                stopped: false,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            token: format!("infra-test-{}", ports[0]),
            dir,
            members,
            initial_cluster,
            peer_ca: tls.map(|t| t.ca),
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        cluster
            .wait_healthy(&(0..n).collect::<Vec<_>>(), Duration::from_secs(30))
            .await;
        cluster
    }

    fn spawn(&mut self, i: usize) {
        let m = &self.members[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log)
            .unwrap();
        let mut command = Command::new(ETCD);
        if let (Some(ca), Some((cert, key))) = (&self.peer_ca, &m.peer_identity) {
            command
                .arg("--peer-trusted-ca-file")
                .arg(ca)
                .arg("--peer-cert-file")
                .arg(cert)
                .arg("--peer-key-file")
                .arg(key)
                .arg("--peer-client-cert-auth");
        }
        let state = if m.joining { "existing" } else { "new" };
        let child = command
            .args(["--name", &m.name, "--data-dir"])
            .arg(&m.data_dir)
            .args(["--listen-client-urls", &m.client_url])
            .args(["--advertise-client-urls", &m.client_url])
            .args(["--listen-peer-urls", &m.peer_url])
            .args(["--initial-advertise-peer-urls", &m.peer_url])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-token", &self.token])
            .args(["--initial-cluster-state", state])
            .args(["--heartbeat-interval", "100", "--election-timeout", "1000"])
            .args(["--logger", "zap", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        let m = &mut self.members[i];
        m.child = Some(child);
        m.stopped = false;
    }

    /// The comma-separated client URLs of all members (what `--etcd` takes).
    pub fn client_urls(&self) -> String {
        self.members
            .iter()
            .map(|m| m.client_url.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn client_url(&self, i: usize) -> &str {
        &self.members[i].client_url
    }

    /// SIGKILL member `i` (its data dir stays for [`restart`](Self::restart)).
    pub fn kill(&mut self, i: usize) {
        let m = &mut self.members[i];
        if let Some(mut child) = m.child.take() {
            if m.stopped {
                signal(&child, libc::SIGCONT);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        m.stopped = false;
    }

    /// SIGSTOP member `i`: it keeps its sockets but answers nothing (a frozen or
    /// partitioned host, not a refused connection).
    pub fn stop(&mut self, i: usize) {
        let m = &mut self.members[i];
        let child = m.child.as_ref().expect("member is not running");
        signal(child, libc::SIGSTOP);
        m.stopped = true;
    }

    /// SIGCONT member `i`.
    pub fn cont(&mut self, i: usize) {
        let m = &mut self.members[i];
        let child = m.child.as_ref().expect("member is not running");
        signal(child, libc::SIGCONT);
        m.stopped = false;
    }

    /// Adds a member presenting `identity` to its peers: `member add` through member 0,
    /// then starts it to join. Returns its index. Whether it really joins is for the caller
    /// to see ([`member_names`](Self::member_names)).
    pub async fn add_member(&mut self, identity: Option<(PathBuf, PathBuf)>) -> usize {
        let i = self.members.len();
        let ports = free_ports(2);
        let scheme = if self.peer_ca.is_some() {
            "https"
        } else {
            "http"
        };
        let member = EtcdMember {
            name: format!("etcd{i}"),
            client_url: format!("http://127.0.0.1:{}", ports[0]),
            peer_url: format!("{scheme}://127.0.0.1:{}", ports[1]),
            data_dir: self.dir.path().join(format!("etcd{i}")),
            log: self.dir.path().join(format!("etcd{i}.log")),
            peer_identity: identity,
            joining: true,
            child: None,
            stopped: false,
        };
        let answer = http()
            .post(format!(
                "{}/v3/cluster/member/add",
                self.members[0].client_url
            ))
            .json(&json!({"peerURLs": [member.peer_url]}))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("member add");
        let _ = answer.bytes().await;
        self.initial_cluster = format!(
            "{},{}={}",
            self.initial_cluster, member.name, member.peer_url
        );
        self.members.push(member);
        self.spawn(i);
        i
    }

    /// The member list as member `i` serves it: (name, peer URLs). A member added but
    /// never started (it could not join) has an empty name.
    pub async fn member_names(&self, i: usize) -> Result<Vec<(String, String)>, String> {
        let body: Value = http()
            .post(format!(
                "{}/v3/cluster/member/list",
                self.members[i].client_url
            ))
            .json(&json!({}))
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        Ok(body["members"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                (
                    m["name"].as_str().unwrap_or_default().to_string(),
                    m["peerURLs"].to_string(),
                )
            })
            .collect())
    }

    /// Starts a killed member again on its data dir (it rejoins the cluster).
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
    }

    /// Members that should run but whose process has exited (killed by something outside
    /// the test, or crashed), with their exit status.
    pub fn exited(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for m in &mut self.members {
            if let Some(child) = m.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    out.push(format!("{} ({}): {status}", m.name, m.client_url));
                }
            }
        }
        out
    }

    /// Whether `GET /health` on member `i` says `{"health":"true"}` within a second.
    pub async fn healthy(&self, i: usize) -> bool {
        let url = format!("{}/health", self.members[i].client_url);
        let Ok(resp) = http()
            .get(&url)
            .timeout(Duration::from_secs(1))
            .send()
            .await
        else {
            return false;
        };
        let Ok(body) = resp.json::<Value>().await else {
            return false;
        };
        body["health"] == "true"
    }

    /// Waits until each of `members` is healthy; panics with their logs after `timeout`.
    pub async fn wait_healthy(&self, members: &[usize], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let mut sick = Vec::new();
            for &i in members {
                if !self.healthy(i).await {
                    sick.push(i);
                }
            }
            if sick.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = sick
                    .iter()
                    .map(|&i| {
                        let log = std::fs::read_to_string(&self.members[i].log).unwrap_or_default();
                        let tail: Vec<&str> = log.lines().rev().take(20).collect();
                        format!(
                            "--- {} ({}):\n{}",
                            self.members[i].name,
                            self.members[i].client_url,
                            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                        )
                    })
                    .collect();
                panic!(
                    "etcd members {sick:?} not healthy after {timeout:?}\n{}",
                    logs.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The first member answering `GET /health` healthy (for reads through the gateway).
    pub async fn healthy_url(&self) -> String {
        for i in 0..self.members.len() {
            if self.members[i].child.is_some() && !self.members[i].stopped && self.healthy(i).await
            {
                return self.members[i].client_url.clone();
            }
        }
        panic!("no etcd member is healthy");
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    let rc = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(rc, 0, "kill({}, {sig}) failed", child.id());
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A key-value pair as etcd stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Kv {
    pub key: String,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub lease: i64,
}

impl Kv {
    pub fn value_str(&self) -> String {
        String::from_utf8_lossy(&self.value).into_owned()
    }

    pub fn value_json(&self) -> Option<Value> {
        serde_json::from_slice(&self.value).ok()
    }

    fn from_json(kv: &Value) -> Kv {
        Kv {
            key: String::from_utf8_lossy(&b64_field(&kv["key"])).into_owned(),
            value: b64_field(&kv["value"]),
            create_revision: int_field(&kv["create_revision"]),
            mod_revision: int_field(&kv["mod_revision"]),
            version: int_field(&kv["version"]),
            lease: int_field(&kv["lease"]),
        }
    }
}

/// One change in etcd's history.
#[derive(Debug, Clone)]
pub struct KvEvent {
    pub delete: bool,
    pub kv: Kv,
    pub prev: Option<Kv>,
}

impl KvEvent {
    pub fn revision(&self) -> i64 {
        self.kv.mod_revision
    }
}

/// The gRPC gateway writes int64 as strings and leaves out zero values.
fn int_field(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn b64_field(v: &Value) -> Vec<u8> {
    v.as_str()
        .map(|s| B64.decode(s).expect("base64 from the etcd gateway"))
        .unwrap_or_default()
}

fn b64(s: &[u8]) -> String {
    B64.encode(s)
}

/// The end of the range of keys starting with `prefix` (etcd's `--prefix`).
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

async fn post(url: &str, path: &str, body: Value) -> Result<Value, String> {
    let resp = http()
        .post(format!("{url}{path}"))
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("POST {url}{path}: {e}"))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("POST {url}{path}: {status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("POST {url}{path}: {e}: {text}"))
}

/// Puts `key` = `value` through member `url`; the revision of the write.
pub async fn put(url: &str, key: &str, value: &str) -> Result<i64, String> {
    let answer = post(
        url,
        "/v3/kv/put",
        json!({"key": b64(key.as_bytes()), "value": b64(value.as_bytes())}),
    )
    .await?;
    Ok(int_field(&answer["header"]["revision"]))
}

/// [`put`], retried for up to `timeout`: right after etcd's raft leader died or froze, a
/// write proposed to it times out until the others have elected a new one.
pub async fn put_retry(url: &str, key: &str, value: &str, timeout: Duration) -> i64 {
    let start = Instant::now();
    loop {
        match put(url, key, value).await {
            Ok(revision) => return revision,
            Err(e) if start.elapsed() > timeout => {
                panic!("put {key} through {url}: no success within {timeout:?}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A linearizable read of `key` through member `url`.
pub async fn get(url: &str, key: &str) -> Result<Option<Kv>, String> {
    let answer = post(url, "/v3/kv/range", json!({"key": b64(key.as_bytes())})).await?;
    Ok(answer["kvs"]
        .as_array()
        .and_then(|kvs| kvs.first())
        .map(Kv::from_json))
}

/// Every key under `prefix` (linearizable) and the store's current revision.
pub async fn get_prefix(url: &str, prefix: &str) -> Result<(Vec<Kv>, i64), String> {
    get_prefix_at(url, prefix, 0).await
}

/// Every key under `prefix` as it was at `revision` (0: now), and the current revision.
pub async fn get_prefix_at(
    url: &str,
    prefix: &str,
    revision: i64,
) -> Result<(Vec<Kv>, i64), String> {
    let answer = post(
        url,
        "/v3/kv/range",
        json!({
            "key": b64(prefix.as_bytes()),
            "range_end": b64(&prefix_end(prefix)),
            "revision": revision.to_string(),
        }),
    )
    .await?;
    let kvs = answer["kvs"]
        .as_array()
        .map(|kvs| kvs.iter().map(Kv::from_json).collect())
        .unwrap_or_default();
    Ok((kvs, int_field(&answer["header"]["revision"])))
}

/// The store's current revision, read through member `url`.
pub async fn revision(url: &str) -> Result<i64, String> {
    let answer = post(
        url,
        "/v3/kv/range",
        json!({"key": b64(b"\0"), "count_only": true}),
    )
    .await?;
    Ok(int_field(&answer["header"]["revision"]))
}

/// Every change under `prefix` from revision `from` (inclusive) up to the revision current
/// when called, in order, with the previous value of each key: etcd's history, read with a
/// watch that starts in the past (the cluster is never compacted in tests).
pub async fn history(url: &str, prefix: &str, from: i64) -> Result<Vec<KvEvent>, String> {
    use futures::StreamExt;
    let until = revision(url).await?;
    if until < from {
        return Ok(Vec::new());
    }
    let resp = reqwest::Client::new()
        .post(format!("{url}/v3/watch"))
        .json(&json!({"create_request": {
            "key": b64(prefix.as_bytes()),
            "range_end": b64(&prefix_end(prefix)),
            "start_revision": from.to_string(),
            "prev_kv": true,
        }}))
        .send()
        .await
        .map_err(|e| format!("watch through {url}: {e}"))?;
    let mut stream = resp.bytes_stream();
    let mut buffer: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // The gateway streams one JSON object per message; split on complete objects.
        while let Some(end) = json_object_end(&buffer) {
            let message: Value = serde_json::from_slice(&buffer[..end])
                .map_err(|e| format!("watch message: {e}"))?;
            buffer.drain(..end);
            let result = &message["result"];
            if result["canceled"] == true {
                return Err(format!("watch canceled: {result}"));
            }
            for e in result["events"].as_array().into_iter().flatten() {
                let event = KvEvent {
                    delete: e["type"] == "DELETE",
                    kv: Kv::from_json(&e["kv"]),
                    prev: e.get("prev_kv").map(Kv::from_json),
                };
                events.push(event);
            }
            if events.last().is_some_and(|e| e.revision() >= until) {
                return Ok(events);
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "watch from {from} did not reach revision {until} within 20 s ({} events)",
                events.len()
            ));
        }
        match tokio::time::timeout(Duration::from_secs(2), stream.next()).await {
            Ok(Some(Ok(chunk))) => buffer.extend_from_slice(&chunk),
            Ok(Some(Err(e))) => return Err(format!("watch stream: {e}")),
            Ok(None) => return Ok(events),
            // Nothing more under the prefix up to `until`.
            Err(_) => return Ok(events),
        }
    }
}

/// The length of the first complete top-level JSON object in `bytes` (skipping leading
/// whitespace), if there is one.
fn json_object_end(bytes: &[u8]) -> Option<usize> {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}
