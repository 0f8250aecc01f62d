//! End-to-end scenarios of issue 11 on one shared HA cluster (the topology of
//! `inventories/ha.yaml`: control1..3, compute1..3, proxy1, registry1, logserver1), brought
//! up once by the real `infra up` (tests/platform/cluster.rs, `ha_platform`). Every control
//! node runs etcd (one 3-member cluster) and `infra scheduler --etcd ...`; exactly one
//! scheduler leads.
//!
//! - convergence: the units point every client at all three control nodes; a second
//!   `infra up` changes nothing;
//! - (a) exactly one leader, named alike by every node; a write through a follower works;
//! - (b) failover: the leader's control host is killed (`docker kill`) while one client sends
//!   requests through the proxy and another polls the API round-robin over all control nodes;
//!   the figures (failover time, failed requests, tasks lost or duplicated) are printed;
//! - (c) etcd quorum lost (etcd stopped on 2 of 3 control nodes): reads and DNS still answer,
//!   writes get 503 with a JSON message, and writes work again once etcd is back.
//!
//! `INFRA_HA_PLATFORM_DIR=/some/dir` keeps the cluster between runs (see the fixture).
//! Run with `cargo test --test ha_e2e -- --nocapture` to see the figures.

#[path = "platform/cluster.rs"]
mod cluster;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::{exclusive, ha_platform, text, Platform};

const CONTROL: [&str; 3] = ["control1", "control2", "control3"];
const COMPUTE: [&str; 3] = ["compute1", "compute2", "compute3"];

/// One HTTP answer: status, headers (lower-case names), body.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

/// One HTTP/1.1 request on a fresh connection (Connection: close), with short timeouts so a
/// dead host costs at most about a second to connect. The scheduler's API (port 8080) is
/// HTTPS with a token: [`api_https`].
fn http(
    ip: &str,
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    read_timeout: Duration,
) -> Result<Answer, String> {
    if port == 8080 {
        return api_https(ip, method, path, body, read_timeout);
    }
    let mut stream = TcpStream::connect_timeout(
        &format!("{ip}:{port}").parse().unwrap(),
        Duration::from_secs(1),
    )
    .map_err(|e| format!("connect {ip}:{port}: {e}"))?;
    stream
        .set_read_timeout(Some(read_timeout))
        .map_err(|e| e.to_string())?;
    let body = body.unwrap_or("");
    let content = if body.is_empty() {
        String::new()
    } else {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        )
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {ip}:{port}\r\nConnection: close\r\n{content}\r\n{body}"
    )
    .map_err(|e| format!("send to {ip}:{port}: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("read from {ip}:{port}: {e}"))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            format!(
                "no HTTP head from {ip}:{port}: {:?}",
                String::from_utf8_lossy(&raw)
            )
        })?;
    let (status, headers) = parse_head(&raw[..split], &format!("{ip}:{port}"))?;
    let mut payload = raw[split + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        payload = dechunk(&payload);
    }
    Ok(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&payload).into_owned(),
    })
}

/// A request to a scheduler's API as the CLI makes it: HTTPS checked against the cluster
/// CA, with the admin token, both from the context file `infra up` wrote (curl, with the
/// same short connect timeout as [`http`]).
fn api_https(
    ip: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
) -> Result<Answer, String> {
    let context_file = ha_platform().home.join("context.json");
    let context: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&context_file).map_err(|e| format!("{}: {e}", context_file.display()))?,
    )
    .map_err(|e| format!("{}: {e}", context_file.display()))?;
    let ca = context["ca"].as_str().ok_or("the context has no CA")?;
    let token = context["token"]
        .as_str()
        .ok_or("the context has no token")?;
    let mut curl = std::process::Command::new("curl");
    curl.args(["-sS", "-i", "--connect-timeout", "1", "--max-time"])
        .arg(format!("{}", timeout.as_secs().max(1) + 1))
        .args(["--cacert", ca, "-X", method])
        .args(["-H", &format!("Authorization: Bearer {token}")]);
    if let Some(body) = body {
        curl.args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ]);
    }
    let out = curl
        .arg(format!("https://{ip}:8080{path}"))
        .output()
        .map_err(|e| format!("curl is needed: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{method} https://{ip}:8080{path}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let raw = out.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no HTTP head from {ip}:8080"))?;
    let (status, headers) = parse_head(&raw[..split], &format!("{ip}:8080"))?;
    // curl has already decoded a chunked body.
    Ok(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&raw[split + 4..]).into_owned(),
    })
}

/// The status and headers (lower-case names) of a response head from `from`.
fn parse_head(head: &[u8], from: &str) -> Result<(u16, BTreeMap<String, String>), String> {
    let head = String::from_utf8_lossy(head).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP response from {from}: {head:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok((status, headers))
}

/// Decodes a chunked body.
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..end])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 || data.len() < end + 2 + size {
            break;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[(end + 4 + size).min(data.len())..];
    }
    out
}

/// A request to a control node's scheduler API.
fn api(
    p: &Platform,
    host: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<Answer, String> {
    http(
        &p.ip(host),
        8080,
        method,
        path,
        body,
        Duration::from_secs(10),
    )
}

/// The leader as one control node names it (`GET /v2/leader`): the inventory host.
fn leader_seen_by(p: &Platform, host: &str) -> Result<String, String> {
    let answer = api(p, host, "GET", "/v2/leader", None)?;
    if answer.status != 200 {
        return Err(format!(
            "{host}: /v2/leader {} {}",
            answer.status, answer.body
        ));
    }
    let leader = answer.json()["leader"]
        .as_str()
        .ok_or_else(|| format!("{host}: no leader in {}", answer.body))?
        .to_string();
    let ip = leader
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split(':')
        .next()
        .unwrap_or_default()
        .to_string();
    CONTROL
        .iter()
        .find(|h| p.ip(h) == ip)
        .map(|h| h.to_string())
        .ok_or_else(|| format!("{host} names {leader}, which is no control node"))
}

/// Waits until every listed control node names the same leader; returns it.
fn agreed_leader(p: &Platform, nodes: &[&str], within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let seen: Vec<Result<String, String>> =
            nodes.iter().map(|h| leader_seen_by(p, h)).collect();
        if let Ok(first) = &seen[0] {
            if seen.iter().all(|s| s.as_ref() == Ok(first)) {
                return first.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "the control nodes {nodes:?} do not agree on one leader after {within:?}: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Running task ids of the app as one control node lists them.
fn task_ids(p: &Platform, host: &str, app: &str) -> Vec<String> {
    let answer = api(p, host, "GET", &format!("/v2/apps/{app}/tasks"), None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] == "TASK_RUNNING")
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

/// `host:port` of the app's running tasks as one control node lists them.
fn task_backends(p: &Platform, host: &str, app: &str) -> Vec<String> {
    let answer = api(p, host, "GET", &format!("/v2/apps/{app}/tasks"), None)
        .unwrap_or_else(|e| panic!("{e}"));
    answer.json()["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] == "TASK_RUNNING")
        .map(|t| format!("{}:{}", t["host"].as_str().unwrap(), t["ports"][0]))
        .collect()
}

/// Waits until the app has exactly `n` running tasks, all healthy, as `host` sees it.
fn wait_healthy(p: &Platform, host: &str, app: &str, n: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let answer = api(p, host, "GET", &format!("/v2/apps/{app}"), None);
        if let Ok(a) = &answer {
            if a.status == 200 {
                let app = &a.json()["app"];
                if app["tasksRunning"].as_u64() == Some(n)
                    && app["tasksHealthy"].as_u64() == Some(n)
                    && app["deployments"].as_array().is_none_or(|d| d.is_empty())
                {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "{app} is not {n}/{n} healthy on {host} after {within:?}: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The `python3 -m http.server` processes (the web server's tasks) on every compute host.
fn webserver_processes(p: &Platform) -> BTreeMap<&'static str, usize> {
    COMPUTE
        .iter()
        .map(|h| {
            let out = p.ssh(h, "pgrep -fc '^python3 -m http.server' || true");
            let n = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or(0);
            (*h, n)
        })
        .collect()
}

/// The web server's processes once their number is `n` (tasks of an earlier scenario may
/// still be stopping), or as they are after 20 s.
fn settled_processes(p: &Platform, n: usize) -> BTreeMap<&'static str, usize> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let processes = webserver_processes(p);
        if processes.values().sum::<usize>() == n || Instant::now() > deadline {
            return processes;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Destroys the app when dropped, so a failed scenario leaves nothing running.
struct AppGuard<'a> {
    platform: &'a Platform,
    app: &'static str,
}

impl Drop for AppGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = destroy(self.platform, self.app) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// `infra destroy --force <app>`, then waits until every control node says the app is gone
/// (a scenario that follows must not find it being deleted).
fn destroy(p: &Platform, app: &str) -> Result<(), String> {
    let mut out = p.infra(&["destroy", "--force", app]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // A refused DELETE (503 while the control plane settles) is sent again.
        if !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("503")
            && Instant::now() < deadline
        {
            eprintln!("destroy {app} refused, again: {}", text(&out));
            std::thread::sleep(Duration::from_secs(1));
            out = p.infra(&["destroy", "--force", app]);
            continue;
        }
        let seen: Vec<(&str, Result<u16, String>)> = CONTROL
            .iter()
            .map(|h| {
                (
                    *h,
                    api(p, h, "GET", &format!("/v2/apps/{app}"), None).map(|a| a.status),
                )
            })
            .collect();
        if seen.iter().all(|(_, s)| s == &Ok(404)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let deployments = api(p, CONTROL[0], "GET", "/v2/deployments", None);
            return Err(format!(
                "{app} is still there 60 s after `infra destroy`: {seen:?}\n{}\ndeployments: {deployments:?}",
                text(&out)
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `infra deploy examples/<app>.json` with the context file (all control nodes, control1
/// first); waits until healthy.
fn deploy<'a>(p: &'a Platform, app: &'static str) -> AppGuard<'a> {
    if let Err(e) = destroy(p, app) {
        panic!("a scenario left {app} behind: {e}");
    }
    let file = format!("examples/{app}.json");
    let out = p.infra(&["deploy", &file]);
    assert!(out.status.success(), "deploy {app}: {}", text(&out));
    AppGuard { platform: p, app }
}

/// Waits until the proxy answers 200 for the app.
fn wait_routed(p: &Platform, app: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = http(
            &p.ip("proxy1"),
            80,
            "GET",
            &format!("/{app}/"),
            None,
            Duration::from_secs(5),
        );
        if matches!(&got, Ok(a) if a.status == 200) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the proxy does not route /{app}/ after 30 s: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The control container of a host (`<cluster>-<host>`).
fn container(p: &Platform, host: &str) -> String {
    format!("{}-{host}", p.cluster)
}

fn docker(args: &[&str]) {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "docker {args:?}: {}", text(&out));
}

/// Waits until the control node's scheduler answers /ping.
fn wait_ping(p: &Platform, host: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while !matches!(api(p, host, "GET", "/ping", None), Ok(a) if a.status == 200) {
        assert!(
            Instant::now() < deadline,
            "{host} does not answer /ping after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The whole control plane is up: every node answers and all agree on a leader.
fn control_plane_whole(p: &Platform) -> String {
    for host in CONTROL {
        wait_ping(p, host, Duration::from_secs(120));
    }
    agreed_leader(p, &CONTROL, Duration::from_secs(60))
}

/// `DELETE /v2/leader` on the leader: another node leads within seconds, and the old
/// leader's scheduler process is the same (it stepped down, it did not restart). Returns the
/// new leader.
fn abdicate(p: &Platform, leader: &str) -> String {
    let pid = p.ssh_ok(leader, "systemctl show -p MainPID --value infra-scheduler");
    let asked = Instant::now();
    let answer = api(p, leader, "DELETE", "/v2/leader", None).unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let deadline = Instant::now() + Duration::from_secs(10);
    let next = loop {
        let next = agreed_leader(p, &CONTROL, Duration::from_secs(10));
        if next != leader {
            break next;
        }
        assert!(
            Instant::now() < deadline,
            "{leader} still leads 10 s after DELETE /v2/leader"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let pid_after = p.ssh_ok(leader, "systemctl show -p MainPID --value infra-scheduler");
    assert_eq!(pid, pid_after, "{leader}'s scheduler was restarted");
    println!(
        "DELETE /v2/leader on {leader}: {next} leads {:.2}s later ({})",
        asked.elapsed().as_secs_f64(),
        answer.body.trim()
    );
    next
}

/// etcdctl on a control node, with etcd's client certificate (the host's).
const ETCDCTL: &str = "ETCDCTL_API=3 etcdctl --cacert /etc/etcd/pki/etcd-ca.crt \
    --cert /etc/etcd/pki/member.crt --key /etc/etcd/pki/member.key";

/// etcd's members as `endpoint status` sees them through `via`: (control node, member id,
/// whether it is etcd's raft leader).
fn etcd_members(p: &Platform, via: &str) -> Vec<(String, String, bool)> {
    let status = p.ssh_ok(
        via,
        &format!(
            "{ETCDCTL} --endpoints https://127.0.0.1:2379 endpoint status --cluster -w simple"
        ),
    );
    // "https://IP:2379, ID, VERSION, DB SIZE, IS LEADER, ..."
    status
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(", ").collect();
            let ip = f
                .first()?
                .trim_start_matches("https://")
                .split(':')
                .next()?;
            let host = CONTROL.iter().find(|h| p.ip(h) == ip)?;
            Some((
                host.to_string(),
                f.get(1)?.to_string(),
                f.get(4) == Some(&"true"),
            ))
        })
        .collect()
}

/// The control node whose etcd member is etcd's raft leader.
fn etcd_raft_leader(p: &Platform, via: &str) -> String {
    etcd_members(p, via)
        .into_iter()
        .find(|(_, _, leads)| *leads)
        .map(|(host, _, _)| host)
        .unwrap_or_else(|| "unknown".to_string())
}

/// Makes `to`'s etcd member etcd's raft leader (`etcdctl move-leader`).
fn move_etcd_leader(p: &Platform, to: &str) {
    let members = etcd_members(p, to);
    let current = etcd_raft_leader(p, to);
    if current == to {
        return;
    }
    let id = &members.iter().find(|(h, _, _)| h == to).expect("member").1;
    p.ssh_ok(
        to,
        &format!(
            "{ETCDCTL} --endpoints https://{}:2379 move-leader {id}",
            p.ip(&current)
        ),
    );
    assert_eq!(etcd_raft_leader(p, to), to, "{members:?}");
}

/// Convergence: the units of an HA datacenter list every control node, the scheduler uses
/// etcd, the context file lists all three schedulers, and a second `infra up` changes nothing.
#[test]
fn ha_up_converges_every_client_lists_every_control_node_and_a_second_up_changes_nothing() {
    let p = ha_platform();
    let _turn = exclusive();
    p.assert_first_up_converged();
    let etcd_urls = CONTROL
        .iter()
        .map(|h| format!("https://{}:2379", p.ip(h)))
        .collect::<Vec<_>>()
        .join(",");
    let api_urls = CONTROL
        .iter()
        .map(|h| format!("https://{}:8080", p.ip(h)))
        .collect::<Vec<_>>()
        .join(",");
    for host in CONTROL {
        let unit = p.ssh_ok(host, "cat /etc/systemd/system/infra-scheduler.service");
        assert!(
            unit.contains(&format!("--etcd {etcd_urls} ")),
            "{host}: {unit}"
        );
        assert!(
            unit.contains(&format!("--advertise https://{}:8080", p.ip(host))),
            "{host}: {unit}"
        );
        assert!(
            unit.contains("--etcd-key /etc/etcd/pki/member.key"),
            "{host}: {unit}"
        );
        let members = p.ssh_ok(
            host,
            "ETCDCTL_API=3 etcdctl --endpoints https://127.0.0.1:2379 --cacert /etc/etcd/pki/etcd-ca.crt \
             --cert /etc/etcd/pki/member.crt --key /etc/etcd/pki/member.key member list",
        );
        assert_eq!(
            members.lines().filter(|l| l.contains("started")).count(),
            3,
            "{host}: {members}"
        );
    }
    // etcd's clients are the control nodes alone: a certificate of the cluster CA, which
    // every host holds (here control1's own, as a compute host's would be), is refused;
    // the member certificate from etcd's CA is accepted.
    let version = |cert: &str, key: &str| {
        p.ssh(
            "control1",
            &format!(
                "curl -sS --max-time 5 --cacert /etc/etcd/pki/etcd-ca.crt --cert {cert} \
                 --key {key} https://127.0.0.1:2379/version"
            ),
        )
    };
    let refused = version("/etc/infra/pki/host.crt", "/etc/infra/pki/host.key");
    assert!(
        !refused.status.success(),
        "etcd took a cluster certificate: {}",
        text(&refused)
    );
    let accepted = version("/etc/etcd/pki/member.crt", "/etc/etcd/pki/member.key");
    assert!(
        accepted.status.success(),
        "etcd refused its client: {}",
        text(&accepted)
    );
    for host in COMPUTE {
        let unit = p.ssh_ok(host, "cat /etc/systemd/system/infra-agent.service");
        assert!(
            unit.contains(&format!("--scheduler {api_urls} ")),
            "{host}: {unit}"
        );
        let dnsmasq = p.ssh_ok(host, "cat /etc/dnsmasq.d/infra.conf");
        for control in CONTROL {
            assert!(
                dnsmasq.contains(&format!("server=/infra/{}#8600", p.ip(control))),
                "{host}: {dnsmasq}"
            );
        }
    }
    let unit = p.ssh_ok("proxy1", "cat /etc/systemd/system/infra-proxy.service");
    assert!(unit.contains(&format!("--scheduler {api_urls} ")), "{unit}");
    let context: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.home.join("context.json")).unwrap()).unwrap();
    let listed: Vec<&str> = context["schedulers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert_eq!(listed.join(","), api_urls, "{context}");
    p.assert_second_up_changes_nothing();
}

/// (a) Exactly one leader: every control node names the same one, only it says it is
/// elected, and a deploy through a follower works (the follower forwards it to the leader).
#[test]
fn exactly_one_leader_and_a_write_through_a_follower_works() {
    let p = ha_platform();
    let _turn = exclusive();
    let leader = control_plane_whole(p);
    for host in CONTROL {
        let info = api(p, host, "GET", "/v2/info", None).unwrap();
        assert_eq!(info.status, 200, "{}", info.body);
        assert_eq!(
            info.json()["elected"].as_bool(),
            Some(host == leader),
            "{host} (leader {leader}): {}",
            info.body
        );
        assert!(
            info.headers
                .get("x-marathon-leader")
                .is_some_and(|l| l.contains(&p.ip(&leader))),
            "{host}: {:?}",
            info.headers
        );
    }
    for host in CONTROL {
        let metrics = api(p, host, "GET", "/metrics", None).unwrap();
        let want = format!("infra_scheduler_leader {}", u8::from(host == leader));
        assert!(
            metrics.body.contains(&want),
            "{host}: no `{want}` in /metrics"
        );
    }
    // The leader steps down on DELETE /v2/leader and another takes over, no process restarted.
    // The context file lists control1 first: while it leads, make it step down again, so
    // `infra deploy` with the context goes through a follower.
    let mut leader = abdicate(p, &leader);
    while leader == CONTROL[0] {
        leader = abdicate(p, &leader);
    }
    let follower = CONTROL[0];
    println!("leader {leader}; deploying webserver with the context, through follower {follower}");
    let _app = deploy(p, "webserver");
    // Every node, the leader and both followers, sees the same tasks.
    let mut seen = BTreeMap::new();
    for host in CONTROL {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut ids = task_ids(p, host, "webserver");
            ids.sort();
            if ids.len() == 2 || Instant::now() > deadline {
                seen.insert(host, ids);
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let first = seen[&CONTROL[0]].clone();
    assert_eq!(first.len(), 2, "{seen:?}");
    assert!(seen.values().all(|ids| *ids == first), "{seen:?}");
    // A raw write through the other follower: accepted, answered with the leader's name.
    let follower = CONTROL[1..].iter().find(|h| **h != leader).unwrap();
    let scaled = api(
        p,
        follower,
        "PUT",
        "/v2/apps/webserver",
        Some(r#"{"instances": 3}"#),
    )
    .unwrap();
    assert!(
        (200..300).contains(&scaled.status),
        "{} {}",
        scaled.status,
        scaled.body
    );
    assert!(
        scaled
            .headers
            .get("x-marathon-leader")
            .is_some_and(|l| l.contains(&p.ip(&leader))),
        "{:?}",
        scaled.headers
    );
    wait_healthy(p, follower, "webserver", 3, Duration::from_secs(60));
    let processes = settled_processes(p, 3);
    assert_eq!(processes.values().sum::<usize>(), 3, "{processes:?}");
}

/// What one load client saw: requests sent, and the failures with their time since the kill.
#[derive(Default, Debug)]
struct Tally {
    sent: usize,
    failed: Vec<(f64, String)>,
}

/// (b) Failover: the leader's control host dies under load; a new leader takes writes within
/// seconds, no request through the proxy fails, API reads fail only on the dead node or
/// during the election, no task is lost or duplicated; the old leader rejoins as a follower.
#[test]
fn killing_the_leader_fails_over_in_seconds_losing_nothing() {
    let p = ha_platform();
    let _turn = exclusive();
    // The hardest case: control1 leads, and it is also the first scheduler of every client
    // (each agent, the proxy's event stream, the CLI's context file), so all of them lose
    // the node they talk to and must fail over. Unless INFRA_HA_ETCD_LEADER_ELSEWHERE is
    // set, its etcd member is etcd's raft leader too: etcd elects a new raft leader first,
    // and a new raft leader renews every lease, the dead scheduler's leadership included.
    let mut leader = control_plane_whole(p);
    for _ in 0..10 {
        if leader == CONTROL[0] {
            break;
        }
        leader = abdicate(p, &leader);
    }
    let _app = deploy(p, "webserver");
    let out = p.infra(&["scale", "webserver", "3"]);
    assert!(out.status.success(), "{}", text(&out));
    let leader = agreed_leader(p, &CONTROL, Duration::from_secs(10));
    let survivors: Vec<&str> = CONTROL.iter().copied().filter(|h| *h != leader).collect();
    wait_healthy(p, survivors[0], "webserver", 3, Duration::from_secs(60));
    wait_routed(p, "webserver");
    let before: BTreeSet<String> = task_ids(p, survivors[0], "webserver").into_iter().collect();
    assert_eq!(before.len(), 3, "{before:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let killed_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let since_kill = {
        let killed_at = killed_at.clone();
        move || -> f64 {
            killed_at
                .lock()
                .unwrap()
                .map(|t| t.elapsed().as_secs_f64())
                .unwrap_or(-1.0)
        }
    };
    // Client 1: requests through the proxy, back to back.
    let proxy_client = {
        let stop = stop.clone();
        let ip = p.ip("proxy1");
        let since_kill = since_kill.clone();
        std::thread::spawn(move || {
            let mut tally = Tally::default();
            while !stop.load(Ordering::SeqCst) {
                tally.sent += 1;
                let path = format!("/webserver/?failover-{}", tally.sent);
                match http(&ip, 80, "GET", &path, None, Duration::from_secs(5)) {
                    Ok(a) if a.status == 200 => {}
                    Ok(a) => tally
                        .failed
                        .push((since_kill(), format!("HTTP {}", a.status))),
                    Err(e) => tally.failed.push((since_kill(), e)),
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            tally
        })
    };
    // Client 2: GET /v2/apps round-robin over all three control nodes.
    let api_client = {
        let stop = stop.clone();
        let ips: Vec<(String, String)> = CONTROL.iter().map(|h| (h.to_string(), p.ip(h))).collect();
        let since_kill = since_kill.clone();
        std::thread::spawn(move || {
            let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let (host, ip) = &ips[i % ips.len()];
                i += 1;
                let tally = tallies.entry(host.clone()).or_default();
                tally.sent += 1;
                match http(ip, 8080, "GET", "/v2/apps", None, Duration::from_secs(5)) {
                    Ok(a) if a.status == 200 && a.body.contains("/webserver") => {}
                    Ok(a) => tally
                        .failed
                        .push((since_kill(), format!("HTTP {} {}", a.status, a.body))),
                    Err(e) => tally.failed.push((since_kill(), e)),
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            tallies
        })
    };
    // Client 3: asks the survivors who leads, every 100 ms, to time the election itself.
    let leader_watch = {
        let stop = stop.clone();
        let ips: Vec<String> = survivors.iter().map(|h| p.ip(h)).collect();
        let old = format!("{}:8080", p.ip(&leader));
        let since_kill = since_kill.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                for ip in &ips {
                    if let Ok(a) = http(ip, 8080, "GET", "/v2/leader", None, Duration::from_secs(2))
                    {
                        if a.status == 200 && !a.body.contains(&old) && since_kill() >= 0.0 {
                            return Some((since_kill(), a.body));
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            None
        })
    };
    std::thread::sleep(Duration::from_secs(3));

    // Kill the leader's host, then write (scale to 4) round-robin over the survivors until a
    // write is accepted: that is the failover time.
    if std::env::var_os("INFRA_HA_ETCD_LEADER_ELSEWHERE").is_some_and(|v| !v.is_empty()) {
        move_etcd_leader(p, survivors[0]);
    } else {
        move_etcd_leader(p, &leader);
    }
    let raft_leader = etcd_raft_leader(p, survivors[0]);
    let kill_start = Instant::now();
    docker(&["kill", &container(p, &leader)]);
    *killed_at.lock().unwrap() = Some(kill_start);
    let kill_cmd = kill_start.elapsed();
    let mut attempts: Vec<String> = Vec::new();
    let mut n = 0;
    let failover = loop {
        let host = survivors[n % 2];
        n += 1;
        let t = kill_start.elapsed().as_secs_f64();
        match api(
            p,
            host,
            "PUT",
            "/v2/apps/webserver?force=true",
            Some(r#"{"instances": 4}"#),
        ) {
            Ok(a) if (200..300).contains(&a.status) => break kill_start.elapsed(),
            Ok(a) => attempts.push(format!("{t:.2}s {host}: {} {}", a.status, a.body.trim())),
            Err(e) => attempts.push(format!("{t:.2}s {host}: {e}")),
        }
        assert!(
            kill_start.elapsed() < Duration::from_secs(30),
            "no write accepted 30 s after killing the leader {leader}: {attempts:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let new_leader = agreed_leader(p, &survivors, Duration::from_secs(10));
    // etcd's own election (1 s) and the lease TTL (2 s, renewed by a new raft leader), plus
    // the followers' forwarding timeouts: well under 10 s even in the worst case.
    assert!(
        failover < Duration::from_secs(10),
        "failover took {failover:?}: {attempts:#?}"
    );
    assert_ne!(new_leader, leader);
    wait_healthy(p, survivors[0], "webserver", 4, Duration::from_secs(60));
    // The proxy followed the change the new leader made: its nginx routes to all 4 tasks.
    let backends = task_backends(p, survivors[0], "webserver");
    let routed_at = Instant::now();
    loop {
        let conf = p.ssh_ok("proxy1", "cat /etc/nginx/conf.d/infra-proxy.conf");
        if backends
            .iter()
            .all(|b| conf.contains(&format!("server {b} ")))
        {
            break;
        }
        assert!(
            routed_at.elapsed() < Duration::from_secs(15),
            "the proxy does not route to the new leader's tasks {backends:?}:\n{conf}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::SeqCst);
    let proxy = proxy_client.join().unwrap();
    let named = leader_watch.join().unwrap();
    let apis = api_client.join().unwrap();

    let after: BTreeSet<String> = task_ids(p, survivors[0], "webserver").into_iter().collect();
    let lost: Vec<&String> = before.difference(&after).collect();
    let processes = settled_processes(p, after.len());
    let duplicates = processes.values().sum::<usize>() as i64 - after.len() as i64;
    let api_failed_survivors: Vec<(f64, String)> = apis
        .iter()
        .filter(|(h, _)| **h != leader)
        .flat_map(|(h, t)| t.failed.iter().map(move |(s, e)| (*s, format!("{h}: {e}"))))
        .collect();
    let api_failed_dead = apis.get(&leader).map_or(0, |t| t.failed.len());
    let api_sent: usize = apis.values().map(|t| t.sent).sum();
    println!("--- failover figures (leader {leader} killed, new leader {new_leader})");
    println!(
        "docker kill took {:.2}s; etcd's raft leader was on {raft_leader}{}",
        kill_cmd.as_secs_f64(),
        if raft_leader == leader {
            " (the killed host: etcd elects a new raft leader first, which renews every lease)"
        } else {
            ""
        }
    );
    println!(
        "failover time (kill -> first accepted write, scale 3 -> 4): {:.2}s after {} refused attempts",
        failover.as_secs_f64(),
        attempts.len()
    );
    for a in &attempts {
        println!("  refused write {a}");
    }
    match &named {
        Some((at, body)) => {
            println!("a survivor named the new leader {at:.2}s after the kill: {body}")
        }
        None => println!("no survivor named a new leader while the clients ran"),
    }
    println!(
        "requests through the proxy: {} sent, {} failed {:?}",
        proxy.sent,
        proxy.failed.len(),
        &proxy.failed[..proxy.failed.len().min(10)]
    );
    println!(
        "API reads (GET /v2/apps round-robin): {api_sent} sent; {} failed on the survivors {:?}; {api_failed_dead} failed on the dead node",
        api_failed_survivors.len(),
        &api_failed_survivors[..api_failed_survivors.len().min(10)]
    );
    println!(
        "tasks: before {before:?}, after {after:?}; lost {}, duplicates {duplicates} (processes {processes:?})",
        lost.len()
    );
    assert!(lost.is_empty(), "tasks lost in the failover: {lost:?}");
    assert_eq!(after.len(), 4, "{after:?}");
    assert_eq!(
        duplicates, 0,
        "more web server processes than tasks: {processes:?}"
    );
    assert!(
        proxy.failed.is_empty(),
        "{} of {} requests through the proxy failed: {:?}",
        proxy.failed.len(),
        proxy.sent,
        proxy.failed
    );
    // Reads on the surviving nodes are served from their own copy of the state: they may only
    // fail while the election is in progress, never after the new leader took over.
    assert!(
        api_failed_survivors
            .iter()
            .all(|(t, _)| *t >= 0.0 && *t <= failover.as_secs_f64() + 1.0),
        "API reads failed on surviving nodes outside the election window: {api_failed_survivors:?}"
    );

    // The old leader's host comes back and rejoins as a follower with the current state.
    let restarted = Instant::now();
    docker(&["start", &container(p, &leader)]);
    wait_ping(p, &leader, Duration::from_secs(120));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let named = leader_seen_by(p, &leader);
        let info = api(p, &leader, "GET", "/v2/info", None);
        let elected = info
            .as_ref()
            .ok()
            .and_then(|a| a.json()["elected"].as_bool());
        let mut ids: BTreeSet<String> = BTreeSet::new();
        if let Ok(a) = api(p, &leader, "GET", "/v2/apps/webserver/tasks", None) {
            if a.status == 200 {
                ids = task_ids(p, &leader, "webserver").into_iter().collect();
            }
        }
        if named.as_deref() == Ok(new_leader.as_str()) && elected == Some(false) && ids == after {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{leader} did not rejoin as a follower of {new_leader}: leader {named:?}, elected {elected:?}, tasks {ids:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    println!(
        "{leader} restarted and rejoined as a follower of {new_leader} in {:.1}s",
        restarted.elapsed().as_secs_f64()
    );
    agreed_leader(p, &CONTROL, Duration::from_secs(10));
    // Writes through every node work again (the rejoined one included): 4 -> 3 -> 4 -> 3.
    let since_rejoin = Instant::now();
    for (i, host) in CONTROL.iter().enumerate() {
        let body = format!(r#"{{"instances": {}}}"#, if i % 2 == 0 { 3 } else { 4 });
        let mut refused = Vec::new();
        loop {
            let sent = Instant::now();
            match api(p, host, "PUT", "/v2/apps/webserver?force=true", Some(&body)) {
                Ok(a) if (200..300).contains(&a.status) => break,
                other => refused.push(format!(
                    "{:.2}s after the rejoin ({:.2}s): {other:?}",
                    sent.duration_since(since_rejoin).as_secs_f64(),
                    sent.elapsed().as_secs_f64()
                )),
            }
            assert!(
                since_rejoin.elapsed() < Duration::from_secs(30),
                "writes through {host} still refused 30 s after the rejoin: {refused:#?}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        println!(
            "write through {host} after the rejoin: accepted after {} refusals {refused:?}",
            refused.len()
        );
    }
    wait_healthy(p, CONTROL[0], "webserver", 3, Duration::from_secs(60));
}

/// (c) etcd quorum lost: etcd stopped on 2 of the 3 control nodes. Reads and DNS keep
/// answering from the last known state, writes get 503 with a JSON message; once etcd is
/// started again, writes work within a bounded time.
#[test]
fn losing_etcd_quorum_keeps_reads_and_dns_and_refuses_writes_until_it_returns() {
    let p = ha_platform();
    let _turn = exclusive();
    let leader = control_plane_whole(p);
    let _app = deploy(p, "webserver");
    wait_routed(p, "webserver");
    let ids: BTreeSet<String> = task_ids(p, &leader, "webserver").into_iter().collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    // The leader's etcd and one follower's.
    let stopped: Vec<&str> = std::iter::once(leader.as_str())
        .chain(CONTROL.iter().copied().filter(|h| *h != leader).take(1))
        .collect();
    let restore = |p: &Platform| {
        for host in &stopped {
            let _ = p.ssh(host, "systemctl start --no-block etcd");
        }
    };
    struct Restore<'a, F: Fn(&Platform)>(&'a Platform, F);
    impl<F: Fn(&Platform)> Drop for Restore<'_, F> {
        fn drop(&mut self) {
            (self.1)(self.0)
        }
    }
    let _restore = Restore(p, restore);
    for host in &stopped {
        p.ssh_ok(host, "systemctl stop etcd");
    }
    let lost_at = Instant::now();
    println!("etcd stopped on {stopped:?} (leader was {leader})");

    // Writes: 503 with a JSON message on every node, once the leadership has lapsed.
    let mut refused = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    for host in CONTROL {
        loop {
            let sent = Instant::now();
            let answer = api(
                p,
                host,
                "PUT",
                "/v2/apps/webserver?force=true",
                Some(r#"{"instances": 3}"#),
            );
            let took = sent.elapsed();
            println!(
                "  write on {host} sent {:.1}s after quorum loss, answered in {:.2}s: {}",
                sent.duration_since(lost_at).as_secs_f64(),
                took.as_secs_f64(),
                match &answer {
                    Ok(a) => format!("{} {}", a.status, a.body.trim()),
                    Err(e) => e.clone(),
                }
            );
            if let Ok(a) = &answer {
                assert!(
                    !(200..300).contains(&a.status),
                    "{host} accepted a write without etcd quorum: {} {}",
                    a.status,
                    a.body
                );
                if a.status == 503 {
                    let message = a.json()["message"].as_str().unwrap_or_default().to_string();
                    assert!(
                        !message.is_empty(),
                        "{host}: 503 without a message: {}",
                        a.body
                    );
                    refused.insert(
                        host,
                        (lost_at.elapsed().as_secs_f64(), took.as_secs_f64(), message),
                    );
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{host} does not answer writes with 503 30 s after quorum loss: {answer:?}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    for (host, (at, took, message)) in &refused {
        println!("write on {host}: first 503 answered {at:.1}s after quorum loss (in {took:.2}s): {message}");
    }

    // Reads on every node, from the last known state.
    for host in CONTROL {
        let answer = api(p, host, "GET", "/v2/apps", None).unwrap();
        assert_eq!(answer.status, 200, "{host}: {}", answer.body);
        assert!(
            answer.body.contains("/webserver"),
            "{host}: {}",
            answer.body
        );
        let seen: BTreeSet<String> = task_ids(p, host, "webserver").into_iter().collect();
        assert_eq!(seen, ids, "{host}");
    }
    // DNS: each scheduler's DNS directly, and a compute host through its dnsmasq.
    let task_hosts: BTreeSet<String> = {
        let a = api(p, CONTROL[0], "GET", "/v2/apps/webserver/tasks", None).unwrap();
        a.json()["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["host"].as_str().unwrap().to_string())
            .collect()
    };
    for host in CONTROL {
        let out = std::process::Command::new("dig")
            .args([
                &format!("@{}", p.ip(host)),
                "-p",
                "8600",
                "+short",
                "+time=2",
                "+tries=1",
            ])
            .arg("webserver.service.infra")
            .output()
            .unwrap();
        let got: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(got, task_hosts, "dig @{host}: {}", text(&out));
    }
    let got: BTreeSet<String> = p
        .ssh_ok("compute1", "dig +short +time=2 webserver.service.infra")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(got, task_hosts, "compute1's resolver");
    // The proxy keeps serving too.
    let answer = http(
        &p.ip("proxy1"),
        80,
        "GET",
        "/webserver/",
        None,
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(answer.status, 200);

    // etcd back: a write works again within a bounded time.
    let back = Instant::now();
    for host in &stopped {
        p.ssh_ok(host, "systemctl start --no-block etcd");
    }
    let recovered = loop {
        let host = CONTROL[(back.elapsed().as_millis() / 500) as usize % 3];
        let answer = api(
            p,
            host,
            "PUT",
            "/v2/apps/webserver?force=true",
            Some(r#"{"instances": 3}"#),
        );
        if matches!(&answer, Ok(a) if (200..300).contains(&a.status)) {
            break back.elapsed();
        }
        assert!(
            back.elapsed() < Duration::from_secs(60),
            "no write accepted 60 s after etcd was started again: {host}: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    println!(
        "quorum back: first accepted write {:.2}s after `systemctl start etcd`",
        recovered.as_secs_f64()
    );
    wait_healthy(p, CONTROL[0], "webserver", 3, Duration::from_secs(60));
    let after: BTreeSet<String> = task_ids(p, CONTROL[0], "webserver").into_iter().collect();
    assert!(after.is_superset(&ids), "tasks lost: {ids:?} -> {after:?}");
    control_plane_whole(p);
}
