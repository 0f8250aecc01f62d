//! `infra proxy` against the real things: a real scheduler and agents (processes of the
//! built binary) running `python3 -m http.server` tasks, and a private real nginx. Proves
//! routing by path, by Host header and by service port; that the upstreams follow scaling;
//! that an unchanged config is not reloaded; and that a config nginx rejects leaves the
//! last good one in place, nginx serving, and `/health` degraded.

#[path = "support/cli.rs"]
mod cli_support;
#[path = "support/proxy.rs"]
mod proxy_support;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cli_support::*;
use proxy_support::*;

/// A web app whose tasks serve `id.txt` containing their own port.
fn app(id: &str, instances: u32, service_port: u16) -> String {
    format!(
        r#"{{
  "id": "/{id}",
  "cmd": "echo $PORT0 > id.txt && exec python3 -m http.server $PORT0 --bind 127.0.0.1",
  "instances": {instances},
  "cpus": 0.1,
  "mem": 32,
  "portDefinitions": [{{"port": {service_port}}}],
  "backoffSeconds": 1,
  "healthChecks": [{{"protocol": "HTTP", "path": "/", "portIndex": 0,
    "gracePeriodSeconds": 30, "intervalSeconds": 1, "timeoutSeconds": 2,
    "maxConsecutiveFailures": 3}}]
}}"#
    )
}

fn deploy(cluster: &Cluster, id: &str, instances: u32, service_port: u16) {
    let file = cluster.dir.path().join(format!("{id}.json"));
    std::fs::write(&file, app(id, instances, service_port)).unwrap();
    let out = cluster.cli(&["deploy", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The backend ports seen over `n` requests through nginx.
fn seen(port: u16, host: &str, path: &str, n: usize) -> BTreeSet<String> {
    (0..n)
        .filter_map(|_| get(port, host, path))
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body.trim().to_string())
        .collect()
}

/// The healthy running tasks' ports, as strings (what `id.txt` says).
fn task_ports(cluster: &Cluster, app: &str) -> BTreeSet<String> {
    let out = cluster.cli(&["tasks", app, "--output", "json"]);
    let tasks: Vec<infra::api::marathon::Task> = serde_json::from_slice(&out.stdout).unwrap();
    tasks
        .iter()
        .filter(|t| t.state == "TASK_RUNNING")
        .filter(|t| !t.health_check_results.is_empty())
        .filter(|t| t.health_check_results.iter().all(|r| r.alive))
        .map(|t| t.ports[0].to_string())
        .collect()
}

fn health(port: u16) -> serde_json::Value {
    let (status, body) = get(port, "127.0.0.1", "/health").expect("the health endpoint answers");
    assert_eq!(status, 200);
    serde_json::from_str(&body).unwrap()
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_proxy(args: &[String]) -> Daemon {
    Daemon(
        Command::new(BIN)
            .args(args)
            .env("INFRA_LOG", "info")
            .stdout(Stdio::null())
            .spawn()
            .expect("start infra proxy"),
    )
}

#[test]
fn routes_by_path_host_and_service_port_and_follows_scaling() {
    let cluster = Cluster::start(3);
    cluster.wait_agents_registered();
    let service_port = free_port();
    deploy(&cluster, "web", 2, service_port);
    let nginx = Nginx::start(cluster.dir.path());
    let health_port = free_port();
    let mut args = nginx.proxy_args(Some(&template()));
    args.extend(
        [
            "--scheduler",
            &cluster.url,
            "--listen-health",
            &format!("127.0.0.1:{health_port}"),
            "--debounce",
            "200ms",
            "--resync",
            "1s",
        ]
        .map(String::from),
    );
    let _proxy = spawn_proxy(&args);

    // Both tasks are reached by path, by Host header and on the service port.
    let two = task_ports(&cluster, "web");
    assert_eq!(two.len(), 2);
    wait_until(
        "nginx to route /web/ to both tasks",
        Duration::from_secs(15),
        || seen(nginx.http_port, "127.0.0.1", "/web/id.txt", 20) == two,
    );
    assert_eq!(seen(nginx.http_port, "web.infra", "/id.txt", 20), two);
    assert_eq!(seen(service_port, "127.0.0.1", "/id.txt", 20), two);
    // An unknown path or host is not routed to the app.
    assert_eq!(get(nginx.http_port, "127.0.0.1", "/nope/").unwrap().0, 404);

    let h = health(health_port);
    assert_eq!(h["status"], "ok", "{h}");
    assert_eq!(h["apps"], 1, "{h}");
    assert_eq!(h["backends"], 2, "{h}");
    assert!(h["last_sync"].is_string(), "{h}");

    // Nothing changed: the periodic resyncs (every second) do not reload nginx.
    let reloads = nginx.reload_count();
    assert_eq!(reloads, 1, "one reload for the first config");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(nginx.reload_count(), reloads, "no reload without a change");

    // Scale up: the third task joins the upstream within 5 s of being healthy.
    let out = cluster.cli(&["scale", "web", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_until("3 healthy tasks", Duration::from_secs(30), || {
        task_ports(&cluster, "web").len() == 3
    });
    let three = task_ports(&cluster, "web");
    wait_until("nginx to route to 3 tasks", Duration::from_secs(5), || {
        seen(nginx.http_port, "web.infra", "/id.txt", 30) == three
    });

    // Scale down: the removed backends get no more traffic.
    let out = cluster.cli(&["scale", "web", "1", "--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_until("1 healthy task", Duration::from_secs(30), || {
        task_ports(&cluster, "web").len() == 1
    });
    let one = task_ports(&cluster, "web");
    wait_until(
        "the upstream to shrink to 1",
        Duration::from_secs(5),
        || health(health_port)["backends"] == 1,
    );
    let generated = std::fs::read_to_string(&nginx.generated).unwrap();
    for port in three.difference(&one) {
        assert!(
            !generated.contains(&format!("127.0.0.1:{port} ")),
            "{generated}"
        );
    }
    // `nginx -s reload` returns before the new workers take over: give it a moment.
    wait_until(
        "nginx to route only to the 1 task",
        Duration::from_secs(5),
        || seen(nginx.http_port, "127.0.0.1", "/web/id.txt", 20) == one,
    );

    // Destroyed: the route is gone.
    let out = cluster.cli(&["destroy", "web"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_until("the /web/ route to go", Duration::from_secs(10), || {
        get(nginx.http_port, "127.0.0.1", "/web/").map(|r| r.0) == Some(404)
    });
    assert_eq!(health(health_port)["apps"], 0);
}

#[test]
fn a_config_nginx_rejects_keeps_the_last_good_one() {
    let cluster = Cluster::start(1);
    cluster.wait_agents_registered();
    let service_port = free_port();
    deploy(&cluster, "shop", 1, service_port);
    // An app without any task: a 503 route, not a broken upstream.
    deploy(&cluster, "empty", 0, free_port());
    let nginx = Nginx::start(cluster.dir.path());
    let once = |template: &std::path::Path| {
        let mut args = nginx.proxy_args(Some(template));
        args.push("--once".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cluster.cli(&args)
    };

    // A good first sync: nginx routes to the task.
    let out = once(&template());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("2 apps, 1 backends, reloaded"),
        "{}",
        stdout(&out)
    );
    let ports = task_ports(&cluster, "shop");
    wait_until("nginx to route /shop/", Duration::from_secs(10), || {
        seen(nginx.http_port, "127.0.0.1", "/shop/id.txt", 3) == ports
    });
    assert_eq!(get(nginx.http_port, "127.0.0.1", "/empty/").unwrap().0, 503);
    assert_eq!(get(nginx.http_port, "empty.infra", "/").unwrap().0, 503);
    let good = std::fs::read_to_string(&nginx.generated).unwrap();
    let last_good = format!("{}.last-good", nginx.generated.display());
    assert_eq!(std::fs::read_to_string(&last_good).unwrap(), good);
    assert_eq!(nginx.reload_count(), 1);

    // The same again: unchanged, no reload.
    let out = once(&template());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("unchanged"), "{}", stdout(&out));
    assert_eq!(nginx.reload_count(), 1);

    // A template that produces a config nginx rejects: exit 1 with nginx's message, the
    // good config back in place, no reload, nginx still serving.
    let bad = cluster.dir.path().join("bad.conf.j2");
    let source = std::fs::read_to_string(template()).unwrap();
    std::fs::write(
        &bad,
        format!("{source}\nthis_is_not_a_directive {{{{ domain }}}};\n"),
    )
    .unwrap();
    let out = once(&bad);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("nginx -t rejected"), "{err}");
    assert!(err.contains("this_is_not_a_directive"), "{err}");
    assert_eq!(std::fs::read_to_string(&nginx.generated).unwrap(), good);
    assert_eq!(nginx.reload_count(), 1);
    assert_eq!(seen(nginx.http_port, "127.0.0.1", "/shop/id.txt", 3), ports);

    // The daemon with the bad template says it is degraded, with the message.
    let health_port = free_port();
    let mut args = nginx.proxy_args(Some(&bad));
    args.extend(
        [
            "--scheduler",
            &cluster.url,
            "--listen-health",
            &format!("127.0.0.1:{health_port}"),
            "--resync",
            "1s",
        ]
        .map(String::from),
    );
    let _proxy = spawn_proxy(&args);
    wait_until("/health to say degraded", Duration::from_secs(10), || {
        get(health_port, "127.0.0.1", "/health")
            .map(|(_, body)| body.contains("\"degraded\""))
            .unwrap_or(false)
    });
    let h = health(health_port);
    assert!(
        h["last_error"]
            .as_str()
            .unwrap()
            .contains("this_is_not_a_directive"),
        "{h}"
    );
    assert_eq!(std::fs::read_to_string(&nginx.generated).unwrap(), good);
    assert_eq!(seen(nginx.http_port, "127.0.0.1", "/shop/id.txt", 3), ports);
    assert_eq!(nginx.reload_count(), 1);
    // The periodic resyncs render the same rejected config: it is not written again (the
    // file, replaced by every atomic write, keeps its inode).
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(&nginx.generated).unwrap().ino();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(std::fs::metadata(&nginx.generated).unwrap().ino(), inode);
    assert_eq!(health(health_port)["status"], "degraded");
}

#[test]
fn reattaches_to_a_restarted_scheduler_and_follows_its_events() {
    let mut cluster = Cluster::start(1);
    cluster.wait_agents_registered();
    deploy(&cluster, "api", 1, free_port());
    let nginx = Nginx::start(cluster.dir.path());
    let health_port = free_port();
    // The built-in template (no --template).
    let mut args = nginx.proxy_args(None);
    // No periodic resync during the test: only the event stream drives the syncs.
    args.extend(
        [
            "--scheduler",
            &cluster.url,
            "--listen-health",
            &format!("127.0.0.1:{health_port}"),
            "--resync",
            "1h",
            "--debounce",
            "100ms",
        ]
        .map(String::from),
    );
    let _proxy = spawn_proxy(&args);
    let one = task_ports(&cluster, "api");
    wait_until("nginx to route /api/", Duration::from_secs(15), || {
        seen(nginx.http_port, "api.infra", "/id.txt", 5) == one
    });

    cluster.restart_scheduler();
    // Events from the new scheduler process reach the proxy: a scale-up shows in nginx.
    let out = cluster.cli(&["scale", "api", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_until("2 healthy tasks", Duration::from_secs(30), || {
        task_ports(&cluster, "api").len() == 2
    });
    let two = task_ports(&cluster, "api");
    wait_until("nginx to route to both", Duration::from_secs(10), || {
        seen(nginx.http_port, "api.infra", "/id.txt", 20) == two
    });
    assert_eq!(health(health_port)["backends"], 2);
}
