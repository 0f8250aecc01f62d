//! Scenarios 4 and 5 of issue 5 on the shared platform (tests/platform/cluster.rs):
//! the log server receives what apps print and loses nothing, doubles nothing, while it is
//! down (playbooks/logging.yaml); an image built here is pushed to the cluster registry over
//! TLS, run as a Docker app and reached through the proxy (playbooks/registry.yaml,
//! playbooks/proxy.yaml, examples/nodeapp.json).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::{exclusive, platform, text, Platform};

/// Destroys an app when dropped, so a failed scenario leaves nothing running.
pub struct AppGuard<'a> {
    pub platform: &'a Platform,
    pub id: &'static str,
}

impl Drop for AppGuard<'_> {
    fn drop(&mut self) {
        let _ = self.platform.infra(&["destroy", self.id]);
    }
}

/// A token unique to this run, so lines and pages of earlier runs never count.
pub fn run_token() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    )
}

/// Polls `check` every `every` until it gives a value or `timeout` passes.
fn wait_for<T>(
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// How often each numbered line `<marker> <n>` occurs in `log`.
fn numbered_lines(log: &str, marker: &str) -> BTreeMap<u32, usize> {
    let mut seen = BTreeMap::new();
    let needle = format!("{marker} ");
    for line in log.lines() {
        if let Some(at) = line.find(&needle) {
            let rest = &line[at + needle.len()..];
            if let Ok(n) = rest.trim().parse::<u32>() {
                *seen.entry(n).or_insert(0) += 1;
            }
        }
    }
    seen
}

fn deploy(p: &Platform, app_file: &Path) {
    let out = p.infra(&["deploy", app_file.to_str().expect("utf-8 path")]);
    assert!(
        out.status.success(),
        "infra deploy {}: {}",
        app_file.display(),
        text(&out)
    );
}

/// Scenario 4: a line a deployed app prints reaches the log server's file for its host and
/// app id; with the log server's rsyslog stopped for 30 s while the app keeps printing
/// numbered lines, every line arrives once it is back, and none twice.
#[test]
fn app_output_reaches_the_log_server_and_survives_its_downtime() {
    const LINES: u32 = 600; // 10 a second: about 5 s before the stop, 30 s down, 25 s after
    let p = platform();
    let _turn = exclusive();
    let token = run_token();
    let marker = format!("edge-log-{token}");
    let app = serde_json::json!({
        "id": "/edge-logs",
        "cmd": format!(
            "for i in $(seq 1 {LINES}); do echo \"{marker} $i\"; sleep 0.1; done; exec sleep 100000"
        ),
        "cpus": 0.05,
        "mem": 16,
        "instances": 1,
        "constraints": [["hostname", "CLUSTER", "compute1"]]
    });
    let dir = tempfile::tempdir().unwrap();
    let app_file = dir.path().join("edge-logs.json");
    std::fs::write(&app_file, serde_json::to_vec_pretty(&app).unwrap()).unwrap();
    let _app = AppGuard {
        platform: p,
        id: "edge-logs",
    };
    deploy(p, &app_file);

    // The agent tags task output with the app id; rsyslog files it per host and program.
    let log_file = "/var/log/remote/compute1/edge-logs.log";
    let read_log = || {
        let out = p.ssh("logserver1", &format!("cat {log_file} 2>/dev/null || true"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = wait_for(Duration::from_secs(30), Duration::from_millis(500), || {
        let seen = numbered_lines(&read_log(), &marker);
        seen.contains_key(&1).then_some(seen)
    });
    assert!(
        first.is_some(),
        "the app's first line never reached {log_file} on logserver1; found:\n{}",
        p.ssh_ok("logserver1", "find /var/log/remote -type f | sort")
    );

    // Other senders may use plain TCP on 514.
    p.ssh_ok(
        "compute1",
        &format!("logger --tcp -n logserver1 -P 514 -t edge-tcp '{marker} tcp'"),
    );
    let tcp = wait_for(Duration::from_secs(15), Duration::from_millis(500), || {
        let out = p.ssh("logserver1", "cat /var/log/remote/compute1/edge-tcp.log");
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("{marker} tcp"))
            .then_some(())
    });
    assert!(tcp.is_some(), "a message sent over TCP 514 never arrived");

    // The log server goes away (its socket unit too, or a local message would restart it).
    p.ssh_ok("logserver1", "systemctl stop syslog.socket rsyslog.service");
    let stopped_at = numbered_lines(&read_log(), &marker);
    let check_down = |when: &str| {
        let out = p.ssh("logserver1", "systemctl is-active rsyslog.service");
        let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_ne!(state, "active", "rsyslog on logserver1 came back {when}");
    };
    check_down("right after the stop");
    std::thread::sleep(Duration::from_secs(30));
    check_down("during the 30 s");
    let during = numbered_lines(&read_log(), &marker);
    assert_eq!(
        during, stopped_at,
        "lines were written while the log server's rsyslog was stopped"
    );
    let printed = p.ssh_ok(
        "compute1",
        &format!(
            "grep -c '^{marker} ' /var/lib/infra/agent/tasks/*/stdout | grep -v ':0$' || true"
        ),
    );
    p.ssh_ok("logserver1", "systemctl start rsyslog.service");

    // Every line arrives, and none twice.
    let complete = wait_for(Duration::from_secs(120), Duration::from_secs(1), || {
        let seen = numbered_lines(&read_log(), &marker);
        (seen.len() as u32 == LINES).then_some(())
    });
    std::thread::sleep(Duration::from_secs(5)); // a late duplicate would show by now
    let seen = numbered_lines(&read_log(), &marker);
    let missing: Vec<u32> = (1..=LINES).filter(|n| !seen.contains_key(n)).collect();
    let doubled: Vec<(u32, usize)> = seen
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(n, c)| (*n, *c))
        .collect();
    let unexpected: Vec<u32> = seen
        .keys()
        .copied()
        .filter(|n| *n == 0 || *n > LINES)
        .collect();
    assert!(
        complete.is_some() && missing.is_empty() && doubled.is_empty() && unexpected.is_empty(),
        "after the log server came back: {} distinct lines of {LINES}; missing {missing:?}; \
         doubled {doubled:?}; unexpected {unexpected:?}; \
         {} lines had arrived when it stopped; the app's output files on compute1: {printed}",
        seen.len(),
        stopped_at.len()
    );
    let total: usize = seen.values().sum();
    assert_eq!(total, LINES as usize, "every line exactly once");
    assert!(
        (stopped_at.len() as u32) < LINES - 100,
        "the app had printed almost everything before the stop ({} lines): the test proves nothing",
        stopped_at.len()
    );
}

/// Runs `command` on `host` over ssh (as [`Platform::ssh`]) with `input` as its stdin.
pub fn ssh_with_input(p: &Platform, host: &str, command: &str, input: &Path) -> Output {
    let stdin = std::fs::File::open(input).unwrap();
    p.ssh_command(host, command)
        .stdin(Stdio::from(stdin))
        .output()
        .expect("the OpenSSH client (ssh) is needed")
}

/// A root filesystem with the static busybox and one page, as a tar for `docker import`.
pub fn build_image_tar(dir: &Path, page: &str) -> std::path::PathBuf {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "/bin/busybox is missing: apt-get install busybox-static (scripts/install.sh does)"
    );
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("www")).unwrap();
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    std::fs::write(root.join("www/index.html"), page).unwrap();
    let tar = dir.join("nodeapp.tar");
    let out = Command::new("tar")
        .arg("--numeric-owner")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()
        .expect("tar is needed");
    assert!(out.status.success(), "tar: {}", text(&out));
    tar
}

/// `curl` from this machine: (HTTP status, body); status 0 when there was no answer.
fn http_get(url: &str) -> (u16, String) {
    curl(&[], url)
}

/// `curl` with `extra` options (a CA, a header): (HTTP status, body); status 0 when there
/// was no answer (or TLS failed).
pub fn curl(extra: &[&str], url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "5", "-w", "\n%{http_code}"])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl is needed");
    let body = String::from_utf8_lossy(&out.stdout).into_owned();
    let (page, code) = body.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), page.to_string())
}

/// Scenario 5: an image built here is pushed from compute1's Docker to the cluster registry
/// over TLS (trusting the cluster CA, no --insecure-registry), deployed from
/// examples/nodeapp.json (every task pulls it from the registry), reached through the
/// proxy, then destroyed.
#[test]
fn an_image_pushed_to_the_registry_runs_behind_the_proxy() {
    let p = platform();
    let _turn = exclusive();
    let token = run_token();
    let page = format!("nodeapp {token}\n");
    let dir = tempfile::tempdir().unwrap();
    let tar = build_image_tar(dir.path(), &page);
    let image = "registry1:5000/nodeapp:1";

    // compute1's Docker trusts the registry by its CA alone.
    let info = p.ssh_ok(
        "compute1",
        "docker info --format '{{json .RegistryConfig.IndexConfigs}} {{json .RegistryConfig.InsecureRegistryCIDRs}}'",
    );
    assert!(
        !info.contains("registry1") && !info.contains(&p.ip("registry1")),
        "compute1's Docker treats the registry as insecure: {info}"
    );
    p.ssh_ok(
        "compute1",
        "test -s /etc/docker/certs.d/registry1:5000/ca.crt",
    );
    let plain = p.ssh(
        "compute1",
        "curl -fsS --max-time 5 http://registry1:5000/v2/",
    );
    assert!(
        !plain.status.success(),
        "the registry answers plain HTTP: {}",
        text(&plain)
    );

    let import = format!(
        "docker import --change 'ENTRYPOINT [\"/bin/busybox\"]' \
         --change 'CMD [\"httpd\", \"-f\", \"-vv\", \"-p\", \"8080\", \"-h\", \"/www\"]' - {image} \
         && docker push {image} && docker rmi {image}"
    );
    let out = ssh_with_input(p, "compute1", &import, &tar);
    assert!(
        out.status.success(),
        "import and push on compute1: {}",
        text(&out)
    );
    let catalog = p.ssh_ok(
        "compute1",
        "curl -fsS --max-time 5 --cacert /etc/docker/certs.d/registry1:5000/ca.crt \
         https://registry1:5000/v2/nodeapp/tags/list",
    );
    assert!(
        catalog.contains("\"1\""),
        "the registry has no nodeapp:1: {catalog}"
    );

    let _app = AppGuard {
        platform: p,
        id: "nodeapp",
    };
    deploy(p, &p_root().join("examples/nodeapp.json"));
    let tasks = p.infra(&["tasks", "nodeapp"]);
    assert!(tasks.status.success(), "infra tasks: {}", text(&tasks));
    let listing = String::from_utf8_lossy(&tasks.stdout).into_owned();
    assert_eq!(
        listing.matches("TASK_RUNNING").count(),
        2,
        "2 running tasks: {listing}"
    );

    // Through the proxy: this run's page, on every request.
    let url = format!("http://{}/nodeapp/", p.ip("proxy1"));
    let reached = wait_for(Duration::from_secs(30), Duration::from_millis(500), || {
        let (status, body) = http_get(&url);
        (status == 200 && body == page).then_some(())
    });
    assert!(
        reached.is_some(),
        "{url} never served this run's page; last answer: {:?}",
        http_get(&url)
    );
    for _ in 0..10 {
        assert_eq!(http_get(&url), (200, page.clone()), "{url}");
    }

    // What the containers print (httpd -vv logs each URL) reaches the log server too.
    let probe = format!("/edge-probe-{token}");
    for _ in 0..4 {
        http_get(&format!("{url}{}", &probe[1..]));
    }
    let logged = wait_for(Duration::from_secs(30), Duration::from_secs(1), || {
        let out = p.ssh(
            "logserver1",
            &format!("grep -l 'url:{probe}' /var/log/remote/compute*/nodeapp.log"),
        );
        out.status.success().then_some(())
    });
    assert!(
        logged.is_some(),
        "nodeapp's request log never reached /var/log/remote/<compute host>/nodeapp.log; files: {}",
        p.ssh_ok("logserver1", "find /var/log/remote -name 'nodeapp*'")
    );

    let out = p.infra(&["destroy", "nodeapp"]);
    assert!(out.status.success(), "infra destroy: {}", text(&out));
    let gone = wait_for(Duration::from_secs(15), Duration::from_millis(500), || {
        (http_get(&url).0 != 200).then_some(())
    });
    assert!(gone.is_some(), "{url} still answers after the destroy");
    // The agents stop the containers (with their grace period) and remove them.
    for host in ["compute1", "compute2"] {
        let list = "docker ps -a --filter label=infra.app_id=/nodeapp --format '{{.Names}}'";
        let removed = wait_for(Duration::from_secs(60), Duration::from_secs(1), || {
            p.ssh_ok(host, list).trim().is_empty().then_some(())
        });
        assert!(
            removed.is_some(),
            "{host} still has nodeapp's containers: {}",
            p.ssh_ok(host, list)
        );
    }
}

fn p_root() -> std::path::PathBuf {
    crate::cluster::project_root()
}
