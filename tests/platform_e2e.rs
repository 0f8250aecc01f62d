//! End-to-end scenarios of issue 5 on one shared platform cluster (tests/platform/cluster.rs):
//! `infra up` builds control, compute, proxy, registry, logging and discovery on Docker hosts
//! over SSH, and the original walkthrough works on it. Scenarios 4 and 5 (logs, registry) are
//! in tests/platform/edge.rs; issue 16's demo (examples/three-tier) in
//! tests/platform/three_tier.rs.
//!
//! Which backend served a request is read from the backends themselves: `python3 -m
//! http.server` logs every request line to its stderr, which the agent keeps in the task's
//! sandbox (`/var/lib/infra/agent/tasks/<task id>/stderr`), so a request carrying a unique
//! marker in its query string is counted where it landed.

#[path = "platform/cluster.rs"]
mod cluster;
#[path = "platform/edge.rs"]
mod edge;
#[path = "platform/firewall.rs"]
mod firewall;
#[path = "platform/networks.rs"]
mod networks;
#[path = "platform/three_tier.rs"]
mod three_tier;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::{counter, exclusive, platform, text, Platform, HOSTS};

/// One running task of an app: its id, host address and first host port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Task {
    id: String,
    host: String,
    port: u16,
}

/// The app's running tasks as `infra tasks <app> -o json` lists them (not those being
/// killed after a scale-down).
fn tasks(p: &Platform, app: &str) -> Vec<Task> {
    let out = p.infra(&["tasks", app, "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut tasks: Vec<Task> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] == "TASK_RUNNING")
        .map(|t| Task {
            id: t["id"].as_str().unwrap().to_string(),
            host: t["host"].as_str().unwrap().to_string(),
            port: t["ports"][0].as_u64().unwrap() as u16,
        })
        .collect();
    tasks.sort();
    tasks
}

/// The inventory name of the host with this cluster address.
fn host_named(p: &Platform, ip: &str) -> &'static str {
    HOSTS
        .iter()
        .map(|(h, _)| *h)
        .find(|h| p.ip(h) == ip)
        .unwrap_or_else(|| panic!("no platform host has address {ip}"))
}

/// Destroys the app when dropped, so a failed scenario leaves nothing running.
struct AppGuard<'a> {
    platform: &'a Platform,
    app: &'static str,
}

impl Drop for AppGuard<'_> {
    fn drop(&mut self) {
        let _ = self.platform.infra(&["destroy", self.app]);
    }
}

/// `infra deploy examples/<app>.json`, which waits until the app is healthy.
fn deploy<'a>(p: &'a Platform, app: &'static str) -> AppGuard<'a> {
    let file = format!("examples/{app}.json");
    let out = p.infra(&["deploy", &file]);
    assert!(out.status.success(), "deploy {app}: {}", text(&out));
    AppGuard { platform: p, app }
}

fn scale(p: &Platform, app: &str, instances: u32) {
    let out = p.infra(&["scale", app, &instances.to_string()]);
    assert!(
        out.status.success(),
        "scale {app} {instances}: {}",
        text(&out)
    );
}

/// One HTTP/1.1 GET on a fresh connection; the status code, or what went wrong.
fn http_get(ip: &str, port: u16, path: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect_timeout(
        &format!("{ip}:{port}").parse().unwrap(),
        Duration::from_secs(5),
    )
    .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    let head = String::from_utf8_lossy(&response[..response.len().min(64)]).to_string();
    head.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {head:?}"))
}

/// GET through the proxy's path route for the app.
fn via_proxy(p: &Platform, app: &str, query: &str) -> Result<u16, String> {
    http_get(&p.ip("proxy1"), 80, &format!("/{app}/?{query}"))
}

/// Waits until the proxy answers 200 for the app (it follows the scheduler's events).
fn wait_routed(p: &Platform, app: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match via_proxy(p, app, "wait") {
            Ok(200) => return,
            other if Instant::now() > deadline => {
                panic!("the proxy does not route /{app}/ after 30 s: {other:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Sends requests through the proxy until each of `tasks` has answered one: the proxy
/// learns of a new task from the event stream, so the first 200 may come while only some
/// tasks are in its configuration.
fn wait_routed_to_each(p: &Platform, app: &str, tasks: &[Task]) {
    let marker = unique_marker("route");
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 0.. {
        let _ = via_proxy(p, app, &format!("{marker}-{i}"));
        if i % 4 == 3 {
            let seen = hits(p, tasks, &marker);
            if seen.values().all(|&n| n > 0) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the proxy did not route to every task of /{app}/ within 30 s: {seen:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How many request lines carrying `marker` each task logged (0 when its sandbox is gone).
fn hits(p: &Platform, tasks: &[Task], marker: &str) -> BTreeMap<String, usize> {
    tasks
        .iter()
        .map(|t| {
            let out = p.ssh(
                host_named(p, &t.host),
                &format!(
                    "cat /var/lib/infra/agent/tasks/{}/stderr 2>/dev/null | grep -c -- '{marker}' || true",
                    t.id
                ),
            );
            let count = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
            (t.id.clone(), count)
        })
        .collect()
}

/// Sends `n` requests marked `marker-<i>` through the proxy; every one must answer 200.
fn send_marked(p: &Platform, app: &str, marker: &str, n: usize) {
    for i in 0..n {
        let status = via_proxy(p, app, &format!("{marker}-{i}"));
        assert_eq!(status, Ok(200), "request {i} of {marker}");
    }
}

fn unique_marker(name: &str) -> String {
    format!("{name}{}x{}", std::process::id(), rand::random::<u32>())
}

/// Scenario 1: the platform converges from nothing, and a second `infra up` changes nothing.
#[test]
fn up_converges_from_nothing_and_a_second_up_changes_nothing() {
    let p = platform();
    let _turn = exclusive();
    p.assert_first_up_converged();
    p.assert_second_up_changes_nothing();
}

/// Scenario 2: the web server behind the proxy: both tasks get traffic, a third one within
/// 5 s of scaling up, and after scaling down to 1 every request lands on the survivor.
#[test]
fn the_proxy_routes_to_every_healthy_task_and_follows_scaling() {
    let p = platform();
    let _turn = exclusive();
    let _app = deploy(p, "webserver");
    let two = tasks(p, "webserver");
    assert_eq!(two.len(), 2, "{two:?}");
    wait_routed_to_each(p, "webserver", &two);

    let marker = unique_marker("two");
    send_marked(p, "webserver", &marker, 20);
    let seen = hits(p, &two, &marker);
    assert_eq!(seen.values().sum::<usize>(), 20, "{seen:?}");
    assert!(
        seen.values().all(|&n| n > 0),
        "a task got no request: {seen:?}"
    );

    scale(p, "webserver", 3);
    let scaled = Instant::now();
    let three = tasks(p, "webserver");
    assert_eq!(three.len(), 3, "{three:?}");
    let marker = unique_marker("three");
    let mut sent = 0;
    loop {
        send_marked(p, "webserver", &format!("{marker}-{sent}"), 6);
        sent += 1;
        let seen = hits(p, &three, &marker);
        if seen.values().all(|&n| n > 0) {
            break;
        }
        assert!(
            scaled.elapsed() < Duration::from_secs(5),
            "the proxy does not route to all 3 tasks 5 s after scaling: {seen:?}"
        );
    }

    scale(p, "webserver", 1);
    let one = tasks(p, "webserver");
    assert_eq!(one.len(), 1, "{one:?}");
    let removed: Vec<Task> = three.iter().filter(|t| !one.contains(t)).cloned().collect();
    assert_eq!(removed.len(), 2, "{three:?} -> {one:?}");
    // The proxy drops the removed tasks within 5 s (they keep serving until it has).
    let scaled = Instant::now();
    let settle = unique_marker("settle");
    for round in 0.. {
        let marker = format!("{settle}-{round}-");
        send_marked(p, "webserver", &marker, 10);
        if hits(p, &one, &marker).values().sum::<usize>() == 10 {
            break;
        }
        assert!(
            scaled.elapsed() < Duration::from_secs(5),
            "5 s after scaling to 1 the proxy still routes to removed tasks: {:?}",
            hits(p, &removed, &marker)
        );
    }
    let marker = unique_marker("one");
    send_marked(p, "webserver", &marker, 20);
    assert_eq!(hits(p, &one, &marker).values().sum::<usize>(), 20);
    let stray = hits(p, &removed, &marker);
    assert!(stray.values().all(|&n| n == 0), "{stray:?}");
}

/// Scenario 3: a compute host finds the tasks by name through its dnsmasq and the
/// schedulers' DNS: A records of the task hosts, SRV records with their host ports.
#[test]
fn a_compute_host_resolves_the_app_by_name_and_srv() {
    let p = platform();
    let _turn = exclusive();
    let _app = deploy(p, "webserver");
    let running = tasks(p, "webserver");
    assert_eq!(running.len(), 2, "{running:?}");
    let want_hosts: BTreeSet<String> = running.iter().map(|t| t.host.clone()).collect();
    let want_srv: BTreeSet<(u16, String)> = running
        .iter()
        .map(|t| (t.port, host_named(p, &t.host).to_string()))
        .collect();

    // DNS follows health with a small TTL: allow it a few seconds to settle.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let getent = p.ssh("compute1", "getent hosts webserver.service.infra");
        let got_hosts: BTreeSet<String> = String::from_utf8_lossy(&getent.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect();
        let srv = p.ssh_ok("compute1", "dig +short SRV webserver.service.dc1.infra");
        // "priority weight port target", target = <host>.node.<dc>.infra.
        let got_srv: BTreeSet<(u16, String)> = srv
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let port = f.get(2)?.parse().ok()?;
                let host = f.get(3)?.split('.').next()?.to_string();
                Some((port, host))
            })
            .collect();
        if got_hosts == want_hosts && got_srv == want_srv {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "getent gave {got_hosts:?} (want {want_hosts:?}), SRV gave {got_srv:?} (want {want_srv:?})\n{srv}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Names outside the service domain still resolve through the host's old resolver.
    let names = p.ssh_ok("compute1", "getent hosts control1 && cat /etc/resolv.conf");
    assert!(names.contains("nameserver 127.0.0.1"), "{names}");
}

/// common refuses a host whose architecture is not the shipped binary's, with a message
/// that says so (a dry run limited to one host: nothing else runs, nothing changes).
#[test]
fn up_refuses_a_host_of_another_architecture() {
    let p = platform();
    let _turn = exclusive();
    let inventory = p.inventory().to_str().unwrap().to_string();
    let mut args = vec![
        "up",
        "-i",
        inventory.as_str(),
        "--check",
        "--limit",
        "compute2",
    ];
    let vars = std::env::var("INFRA_PLATFORM_EXTRA_VARS").unwrap_or_default();
    for kv in vars.split_whitespace() {
        args.extend(["-e", kv]);
    }
    args.extend(["-e", "infra_binary_arch=riscv64"]);
    let out = p.infra(&args);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The hosts run the controller's architecture (Docker on this machine).
    let expected = format!(
        "compute2 is {} but the infra binary that runs `infra up` is built for riscv64",
        std::env::consts::ARCH
    );
    assert!(stdout.contains(&expected), "{stdout}");
}

/// The files the platform's roles render, on every host (those present).
const MANAGED_FILES: &[&str] = &[
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/dnsmasq.d/infra.conf",
    "/etc/default/etcd",
    "/etc/systemd/system/infra-scheduler.service",
    "/etc/systemd/system/infra-agent.service",
    "/etc/docker/daemon.json",
    "/usr/local/share/ca-certificates/infra-ca.crt",
    "/usr/local/bin/infra",
];

/// The platform's services whose restarts are compared.
const SERVICES: &[&str] = &[
    "dnsmasq",
    "etcd",
    "infra-scheduler",
    "docker",
    "infra-agent",
    "nginx",
    "infra-proxy",
    "rsyslog",
    "docker-registry",
];

/// host -> path -> sha256 of every managed file present.
fn checksums(p: &Platform) -> BTreeMap<String, BTreeMap<String, String>> {
    let command = format!("sha256sum {} 2>/dev/null; true", MANAGED_FILES.join(" "));
    HOSTS
        .iter()
        .map(|(host, _)| {
            let out = p.ssh_ok(host, &command);
            let sums = out
                .lines()
                .filter_map(|l| l.split_once("  "))
                .map(|(sum, path)| (path.to_string(), sum.to_string()))
                .collect();
            (host.to_string(), sums)
        })
        .collect()
}

/// host -> service -> when it last became active (monotonic µs; 0 when not running).
fn start_times(p: &Platform) -> BTreeMap<String, BTreeMap<String, String>> {
    let command = SERVICES
        .iter()
        .map(|s| {
            format!(
                "echo {s} $(systemctl show -p ActiveEnterTimestampMonotonic --value {s}.service)"
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    HOSTS
        .iter()
        .map(|(host, _)| {
            let out = p.ssh_ok(host, &command);
            let times = out
                .lines()
                .filter_map(|l| l.split_once(' '))
                .map(|(s, t)| (s.to_string(), t.to_string()))
                .collect();
            (host.to_string(), times)
        })
        .collect()
}

/// Paths whose value differs between two per-host maps, per host.
fn differing(
    before: &BTreeMap<String, BTreeMap<String, String>>,
    after: &BTreeMap<String, BTreeMap<String, String>>,
) -> BTreeMap<String, BTreeSet<String>> {
    before
        .iter()
        .map(|(host, b)| {
            let a = &after[host];
            let keys: BTreeSet<String> = b
                .keys()
                .chain(a.keys())
                .filter(|k| b.get(*k) != a.get(*k))
                .cloned()
                .collect();
            (host.clone(), keys)
        })
        .collect()
}

/// Scenario 6: a template variable change: the dry run shows exactly the dependent file on
/// every host and changes nothing; the real run changes that file and restarts only the
/// service that reads it; a plain `infra up` restores the platform.
#[test]
fn a_variable_change_shows_and_restarts_only_what_depends_on_it() {
    let p = platform();
    let _turn = exclusive();
    let inventory = p.inventory().to_str().unwrap().to_string();
    let files_before = checksums(p);
    let times_before = start_times(p);

    let mut check_args = vec!["up", "-i", inventory.as_str(), "--check", "--diff"];
    let vars = std::env::var("INFRA_PLATFORM_EXTRA_VARS").unwrap_or_default();
    for kv in vars.split_whitespace() {
        check_args.extend(["-e", kv]);
    }
    check_args.extend(["-e", "dnsmasq_cache_size=2345"]);
    let dry = p.infra(&check_args);
    assert!(dry.status.success(), "{}", text(&dry));
    let stdout = String::from_utf8_lossy(&dry.stdout);
    let shown: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("--- before: "))
        .collect();
    assert_eq!(
        shown,
        vec!["/etc/dnsmasq.d/infra.conf"; HOSTS.len()],
        "{stdout}"
    );
    assert!(stdout.contains("+cache-size=2345"), "{stdout}");
    assert_eq!(files_before, checksums(p), "--check changed a file");
    assert_eq!(times_before, start_times(p), "--check restarted a service");

    let recap = p.up_recap(&["-e", "dnsmasq_cache_size=2345"]);
    let files_changed = differing(&files_before, &checksums(p));
    let restarted = differing(&times_before, &start_times(p));
    for (host, _) in HOSTS {
        assert_eq!(counter(&recap, host, "failed"), 0, "{recap}");
        assert_eq!(
            files_changed[*host],
            BTreeSet::from(["/etc/dnsmasq.d/infra.conf".to_string()]),
            "{host}"
        );
        assert_eq!(
            restarted[*host],
            BTreeSet::from(["dnsmasq".to_string()]),
            "{host}"
        );
    }
    let conf = p.ssh_ok("compute1", "grep cache-size /etc/dnsmasq.d/infra.conf");
    assert_eq!(conf.trim(), "cache-size=2345");

    let restore = p.up_recap(&[]);
    for (host, _) in HOSTS {
        assert_eq!(counter(&restore, host, "failed"), 0, "{restore}");
    }
    assert_eq!(
        files_before,
        checksums(p),
        "a plain up did not restore the files"
    );
}

/// Scenario 7: load through the proxy while scaling 2 -> 5 -> 2: not one failed request
/// (a non-2xx answer or a connection error). The load is bounded: 4 workers send requests
/// until the scaling is over (and at least 2000 in all), at most 20000.
#[test]
fn scaling_under_load_fails_no_request() {
    let p = platform();
    let _turn = exclusive();
    let _app = deploy(p, "webserver");
    wait_routed(p, "webserver");
    let proxy = p.ip("proxy1");

    let done = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (done, sent, proxy) = (done.clone(), sent.clone(), proxy.clone());
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                loop {
                    let n = sent.load(Ordering::SeqCst);
                    if (done.load(Ordering::SeqCst) && n >= 2000) || n >= 20000 {
                        return failures;
                    }
                    let n = sent.fetch_add(1, Ordering::SeqCst);
                    match http_get(&proxy, 80, &format!("/webserver/?load-{w}-{n}")) {
                        Ok(status) if (200..300).contains(&status) => {}
                        other => failures.push(format!("request {n}: {other:?}")),
                    }
                }
            })
        })
        .collect();

    std::thread::sleep(Duration::from_secs(1));
    scale(p, "webserver", 5);
    assert_eq!(tasks(p, "webserver").len(), 5);
    std::thread::sleep(Duration::from_secs(2));
    scale(p, "webserver", 2);
    assert_eq!(tasks(p, "webserver").len(), 2);
    std::thread::sleep(Duration::from_secs(2));
    done.store(true, Ordering::SeqCst);

    let failures: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let total = sent.load(Ordering::SeqCst);
    assert!(total >= 2000, "only {total} requests were sent");
    assert!(
        failures.is_empty(),
        "{} of {total} requests failed while scaling: {:?}",
        failures.len(),
        &failures[..failures.len().min(20)]
    );
}

/// curl from this machine to control1's API: (HTTP status, body); status 0 when TLS or the
/// connection failed.
fn curl_api(p: &Platform, extra: &[&str], path: &str) -> (u16, String) {
    edge::curl(extra, &format!("https://{}:8080{path}", p.ip("control1")))
}

/// Issue 14's control plane on the converged platform: the API is HTTPS from the cluster
/// CA, refuses a request without the token (401), answers the admin token `infra up` put
/// in the 0600 context file, and the CLI works from that file alone. (The second `infra
/// up` of `up_converges_from_nothing...` keeps the certificates and the token: changed=0.)
#[test]
fn the_api_is_https_with_the_cluster_ca_and_refuses_a_request_without_the_token() {
    use std::os::unix::fs::PermissionsExt;
    let p = platform();
    let context_file = p.home.join("context.json");
    let mode = std::fs::metadata(&context_file)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "{}", context_file.display());
    let context: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&context_file).unwrap()).unwrap();
    let ca = context["ca"].as_str().expect("the context names the CA");
    let token = context["token"]
        .as_str()
        .expect("the context holds the token");
    assert!(context["schedulers"][0]
        .as_str()
        .unwrap()
        .starts_with("https://"));

    let (status, body) = curl_api(p, &["--cacert", ca], "/v2/apps");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("\"message\""), "{body}");
    let bearer = format!("Authorization: Bearer {token}");
    let (status, body) = curl_api(p, &["--cacert", ca, "-H", &bearer], "/v2/apps");
    assert_eq!(status, 200, "{body}");
    // Without the cluster CA, curl does not trust the scheduler.
    let (status, _) = curl_api(p, &["-H", &bearer], "/v2/apps");
    assert_eq!(
        status, 0,
        "the scheduler's certificate was trusted without the CA"
    );
    // Plain HTTP is not served.
    let plain = std::process::Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(format!("http://{}:8080/v2/apps", p.ip("control1")))
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200");

    let out = p.infra(&["apps"]);
    assert!(out.status.success(), "infra apps: {}", text(&out));
    let out = p.infra(&["token", "list"]);
    assert!(out.status.success(), "infra token list: {}", text(&out));
    assert!(text(&out).contains("admin (infra up)"), "{}", text(&out));
    assert!(!text(&out).contains(token), "a token list shows no token");
}
