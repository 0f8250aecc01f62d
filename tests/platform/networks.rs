//! Issue 16's container networks on the shared platform (tests/platform/cluster.rs): an app
//! on the container network `apps` (playbooks/container-network.yaml) gets one address per
//! task in its node's subnet; a task on compute1 resolves the app by its short names and
//! reaches the instance on compute2; a host reaches a task's address; the control node's DNS
//! answers A and SRV (container port) records and the proxy routes to task address and
//! container port; a task killed through the API leaves the answers. It also prints the
//! time from a task starting to its name resolving.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::cluster::{exclusive, platform, text, Platform};
use crate::edge::{build_image_tar, curl, run_token, ssh_with_input, AppGuard};

const IMAGE: &str = "infra-test/netbox:1";
const APP: &str = "netweb";
/// A second app, pinned to compute1: the client that looks the first one up by name.
const CLIENT: &str = "netclient";
const NET: &str = "apps";

/// `infra deploy` of an app definition (waits until it is healthy).
fn deploy(p: &Platform, definition: &serde_json::Value) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("app.json");
    std::fs::write(&file, definition.to_string()).expect("app file");
    let out = p.infra(&["deploy", file.to_str().expect("utf-8 path")]);
    assert!(out.status.success(), "deploy: {}", text(&out));
}

/// One running task: its id, agent host address and container network address.
#[derive(Debug, Clone)]
struct NetTask {
    id: String,
    host: String,
    address: String,
    started_at: Option<String>,
}

/// The busybox image (from the tar of tests/platform/edge.rs) imported on both compute
/// nodes; nothing is pulled.
fn import_image(p: &Platform) {
    let dir = tempfile::tempdir().expect("temp dir");
    let tar = build_image_tar(dir.path(), "netbox\n");
    for host in ["compute1", "compute2"] {
        let import = format!(
            "docker image inspect {IMAGE} >/dev/null 2>&1 || \
             docker import --change 'ENTRYPOINT [\"/bin/busybox\"]' - {IMAGE}"
        );
        let out = ssh_with_input(p, host, &import, &tar);
        assert!(out.status.success(), "import on {host}: {}", text(&out));
    }
}

/// An app of busybox httpd on container port 8080 (no host port) serving its task id,
/// healthy once it answers itself, placed by `constraint`.
fn app_definition(id: &str, instances: u32, constraint: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "id": format!("/{id}"),
        "instances": instances,
        "cpus": 0.1,
        "mem": 32,
        "args": ["sh", "-c",
            "/bin/busybox --install -s /bin && echo $MESOS_TASK_ID > /www/index.html \
             && exec httpd -f -p 8080 -h /www"],
        "container": {
            "type": "DOCKER",
            "docker": {"image": IMAGE},
            "portMappings": [{"containerPort": 8080, "name": "http"}]
        },
        "networks": [{"mode": "container", "name": NET}],
        "constraints": [constraint],
        "healthChecks": [{
            "protocol": "COMMAND",
            "command": {"value": "wget -qO- http://127.0.0.1:8080/ >/dev/null"},
            "gracePeriodSeconds": 10,
            "intervalSeconds": 2,
            "timeoutSeconds": 2,
            "maxConsecutiveFailures": 2
        }]
    })
}

/// The app's running tasks by agent host address.
fn net_tasks(p: &Platform, app: &str) -> BTreeMap<String, NetTask> {
    let out = p.infra(&["tasks", app, "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("tasks json");
    list.as_array()
        .expect("a task list")
        .iter()
        .filter(|t| t["state"] == "TASK_RUNNING")
        .map(|t| {
            let task = NetTask {
                id: t["id"].as_str().unwrap_or_default().to_string(),
                host: t["host"].as_str().unwrap_or_default().to_string(),
                address: t["ipAddresses"][0]["ipAddress"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                started_at: t["startedAt"].as_str().map(str::to_string),
            };
            (task.host.clone(), task)
        })
        .collect()
}

/// Waits until the app runs `count` tasks, each with its container network address.
fn wait_addresses(p: &Platform, app: &str, count: usize) -> BTreeMap<String, NetTask> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tasks = net_tasks(p, app);
        if tasks.len() == count && tasks.values().all(|t| t.address.starts_with("10.200.")) {
            return tasks;
        }
        assert!(
            Instant::now() < deadline,
            "tasks have no container network address after 30 s: {tasks:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `dig +short` on compute1 against its resolver (dnsmasq -> the control node's DNS).
fn dig(p: &Platform, args: &str) -> Vec<String> {
    let out = p.ssh_ok("compute1", &format!("dig +short {args}"));
    let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// A command inside the task's container on `host`.
fn exec_in(p: &Platform, host: &str, task: &NetTask, command: &str) -> std::process::Output {
    p.ssh(
        host,
        &format!("docker exec infra-{} sh -c '{command}'", task.id),
    )
}

/// A JSON POST to control1's API with the context's CA and token.
fn api_post(p: &Platform, path: &str, body: &serde_json::Value) -> (u16, String) {
    let context: serde_json::Value = serde_json::from_slice(
        &std::fs::read(p.home.join("context.json")).expect("the context file"),
    )
    .expect("context json");
    let ca = context["ca"].as_str().expect("the context names the CA");
    let bearer = format!(
        "Authorization: Bearer {}",
        context["token"].as_str().expect("a token")
    );
    let body = body.to_string();
    curl(
        &[
            "--cacert",
            ca,
            "-H",
            &bearer,
            "-H",
            "Content-Type: application/json",
            "--data",
            &body,
        ],
        &format!("https://{}:8080{path}", p.ip("control1")),
    )
}

/// The scenario of issue 16's container networks. Clients resolving through glibc sort the
/// addresses of a name and put one in their own subnet (same node) first (RFC 6724 rule 9),
/// so "reaches the instance on the other host by name" is shown with the app on compute2
/// only, after its compute1 instance was killed; the rotation itself is asked of the DNS.
#[test]
fn container_network_tasks_resolve_and_reach_each_other_across_hosts() {
    let p = platform();
    let _turn = exclusive();
    // Each compute node has its own subnet of the network.
    let subnets: Vec<String> = ["compute1", "compute2"]
        .iter()
        .map(|h| {
            p.ssh_ok(
                h,
                &format!("docker network inspect --format '{{{{range .IPAM.Config}}}}{{{{.Subnet}}}}{{{{end}}}}' {NET}"),
            )
            .trim()
            .to_string()
        })
        .collect();
    assert!(
        subnets[0].starts_with("10.200.")
            && subnets[1].starts_with("10.200.")
            && subnets[0] != subnets[1],
        "{subnets:?}"
    );
    import_image(p);

    let _app = AppGuard {
        platform: p,
        id: APP,
    };
    let _client = AppGuard {
        platform: p,
        id: CLIENT,
    };
    deploy(p, &app_definition(APP, 2, &["hostname", "UNIQUE"]));
    deploy(
        p,
        &app_definition(CLIENT, 1, &["hostname", "CLUSTER", "compute1"]),
    );
    let tasks = wait_addresses(p, APP, 2);
    let on1 = tasks
        .get(&p.ip("compute1"))
        .expect("a task on compute1")
        .clone();
    let on2 = tasks
        .get(&p.ip("compute2"))
        .expect("a task on compute2")
        .clone();
    assert_ne!(on1.address, on2.address);
    let client = wait_addresses(p, CLIENT, 1)
        .remove(&p.ip("compute1"))
        .expect("the client runs on compute1");

    // A host (the control node) reaches a task's own address on another node.
    let page = p.ssh_ok(
        "control1",
        &format!("curl -fsS --max-time 5 http://{}:8080/", on2.address),
    );
    assert_eq!(page.trim(), on2.id);

    // The control node's DNS: A answers the task addresses, SRV the container port.
    let mut want = vec![on1.address.clone(), on2.address.clone()];
    want.sort();
    assert_eq!(dig(p, &format!("{APP}.service.infra")), want);
    assert_eq!(dig(p, &format!("{APP}.{NET}.service.infra")), want);
    let srv = dig(p, &format!("SRV _{APP}._tcp.service.infra"));
    let mut want_srv: Vec<String> = [&on1, &on2]
        .iter()
        .map(|t| format!("1 1 8080 {}.addr.infra.", t.address.replace('.', "-")))
        .collect();
    want_srv.sort();
    assert_eq!(srv, want_srv);
    // Asked directly (no dnsmasq cache in between), the order rotates.
    let orders = p.ssh_ok(
        "compute1",
        &format!(
            "for i in 1 2 3 4; do dig +short @control1 -p 8600 {APP}.{NET}.service.infra | tr '\\n' ' '; echo; done"
        ),
    );
    let distinct: std::collections::BTreeSet<&str> = orders.lines().collect();
    assert_eq!(distinct.len(), 2, "answers do not rotate: {orders}");

    // The proxy routes to task address and container port.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, page) = curl(&[], &format!("http://{}/{APP}/", p.ip("proxy1")));
        if status == 200 && (page.trim() == on1.id || page.trim() == on2.id) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the proxy does not route /{APP}/ to the tasks: {status} {page}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // A task killed through the API leaves the answers within the TTL (5 s), once gone.
    let (status, body) = api_post(
        p,
        "/v2/tasks/delete?scale=true",
        &serde_json::json!({"ids": [on1.id]}),
    );
    assert_eq!(status, 200, "{body}");
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(20);
    loop {
        let answers = dig(p, &format!("{APP}.{NET}.service.infra"));
        if answers == vec![on2.address.clone()] {
            println!(
                "the killed task left DNS {:.1} s after the kill request",
                killed.elapsed().as_secs_f64()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} still answered 20 s after its task was killed: {answers:?}",
            on1.address
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The client task on compute1 resolves both short names to the instance on compute2 and
    // reaches it (busybox `timeout` rather than `wget -T`, which crashes in Debian's static
    // busybox); the killed task's address is no longer answered inside the task either.
    for name in [APP.to_string(), format!("{APP}.{NET}")] {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = exec_in(
                p,
                "compute1",
                &client,
                &format!("timeout 5 wget -qO- http://{name}:8080/"),
            );
            let page = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if page == on2.id {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name} from the task on compute1 did not reach {} on compute2: {}",
                on2.id,
                text(&out)
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    // (busybox nslookup applies no search domain: the full name.)
    let out = exec_in(
        p,
        "compute1",
        &client,
        &format!("nslookup {APP}.{NET}.service.infra"),
    );
    let answer = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        answer.contains(&on2.address) && !answer.contains(&on1.address),
        "{}",
        text(&out)
    );

    // Time from a task starting to its name resolving (printed for the note): at the
    // control node's DNS, and through compute1's resolver (dnsmasq, which may keep the
    // previous answer for the TTL).
    let out = p.infra(&["scale", APP, "2"]);
    assert!(out.status.success(), "scale: {}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(60);
    let token = run_token();
    let name = format!("{APP}.{NET}.service.infra");
    let mut at_control: Option<f64> = None;
    loop {
        let tasks = net_tasks(p, APP);
        let new = tasks
            .values()
            .find(|t| t.id != on2.id && t.address.starts_with("10.200."));
        if let Some(new) = new {
            let both = p.ssh_ok(
                "compute1",
                &format!("dig +short @control1 -p 8600 {name}; echo --; dig +short {name}"),
            );
            let (direct, via_host) = both.split_once("--").unwrap_or_default();
            let since_start = || {
                let started = new
                    .started_at
                    .as_deref()
                    .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                    .expect("the new task has startedAt");
                chrono::Utc::now()
                    .signed_duration_since(started)
                    .num_milliseconds() as f64
                    / 1000.0
            };
            if at_control.is_none() && direct.contains(&new.address) {
                at_control = Some(since_start());
            }
            if via_host.contains(&new.address) {
                println!(
                    "[{token}] task start to name resolving: {:.2} s at the control node's \
                     DNS, {:.2} s through compute1's resolver (polled every ~0.2 s)",
                    at_control.unwrap_or(f64::NAN),
                    since_start()
                );
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the new task never resolved: {tasks:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
