//! Service discovery end to end: a real `infra scheduler` with `--dns-listen` on loopback,
//! a real `infra agent`, a deployed `python3 -m http.server $PORT0` app. The scheduler's DNS
//! answers `<app>.service.infra` (A) and the SRV record with the task's host port, and
//! `/v1/catalog/service/<app>` lists it in Consul's shape. Queried with `dig`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_infra");

struct Killed(Vec<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn dig(port: u16, args: &[&str]) -> String {
    let out = Command::new("dig")
        .args([
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "+short",
            "+time=2",
            "+tries=1",
        ])
        .args(args)
        .output()
        .expect("dig is needed (apt-get install dnsutils; scripts/install.sh does)");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduler_dns_answers_for_healthy_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let api_port = free_port();
    let dns_port = free_port();
    let url = format!("http://127.0.0.1:{api_port}");
    let mut scheduler = Command::new(BIN)
        .args([
            "scheduler",
            "--agent-timeout",
            "5s",
            "--heartbeat-interval",
            "500ms",
        ])
        .args(["--listen", &format!("127.0.0.1:{api_port}")])
        .args(["--dns-listen", &format!("127.0.0.1:{dns_port}")])
        .arg("--data-dir")
        .arg(dir.path().join("scheduler"))
        .args(["--insecure-http", "--no-auth"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start infra scheduler");
    let mut lines = BufReader::new(scheduler.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("infra scheduler listening on"), "{first}");
    let second = lines.next().unwrap().unwrap();
    assert_eq!(
        second,
        format!("infra scheduler DNS on 127.0.0.1:{dns_port}")
    );
    let low = 31000 + (dns_port % 500) * 2;
    let agent = Command::new(BIN)
        .args(["agent", "--scheduler", &url, "--hostname", "node1"])
        .args(["--port-range", &format!("{low}-{}", low + 1)])
        .args(["--cpus", "2", "--mem", "1024", "--data-dir"])
        .arg(dir.path().join("agent"))
        .stdout(Stdio::null())
        .spawn()
        .expect("start infra agent");
    let _guard = Killed(vec![scheduler, agent]);

    let http = reqwest::Client::new();
    let app = serde_json::json!({
        "id": "/web",
        "cmd": "python3 -m http.server $PORT0 --bind 127.0.0.1",
        "cpus": 0.1, "mem": 32, "instances": 1,
        "portDefinitions": [{"port": 0}],
        "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0,
                          "gracePeriodSeconds": 5, "intervalSeconds": 1}]
    });
    let created = http
        .post(format!("{url}/v2/apps"))
        .json(&app)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());

    // Nothing is healthy yet, or soon: the name resolves once the health check passes.
    wait_for(
        "web.service.infra to resolve",
        Duration::from_secs(60),
        || dig(dns_port, &["web.service.infra", "A"]) == "127.0.0.1",
    );
    let tasks: serde_json::Value = http
        .get(format!("{url}/v2/apps/web/tasks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let host_port = tasks["tasks"][0]["ports"][0].as_u64().unwrap();
    let srv = dig(dns_port, &["_web._tcp.service.infra", "SRV"]);
    assert_eq!(srv, format!("1 1 {host_port} node1.node.infra."));
    assert_eq!(dig(dns_port, &["node1.node.infra", "A"]), "127.0.0.1");
    assert_eq!(dig(dns_port, &["nothing.service.infra", "A"]), "");

    let catalog: serde_json::Value = http
        .get(format!("{url}/v1/catalog/service/web"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(catalog[0]["ServiceName"], "web");
    assert_eq!(catalog[0]["ServicePort"].as_u64(), Some(host_port));
    assert_eq!(catalog[0]["Node"], "node1");

    // Scaled to zero, the name is gone again.
    let scaled = http
        .put(format!("{url}/v2/apps/web?force=true"))
        .json(&serde_json::json!({"instances": 0}))
        .send()
        .await
        .unwrap();
    assert!(scaled.status().is_success());
    wait_for(
        "web.service.infra to disappear",
        Duration::from_secs(30),
        || dig(dns_port, &["web.service.infra", "A"]).is_empty(),
    );
}
