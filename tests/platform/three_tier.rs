//! Issue 16's demo on the shared platform (tests/platform/cluster.rs), from
//! examples/three-tier: the image its build script makes is pushed to the cluster registry
//! from compute1, and the three apps are deployed from their JSON files. The front end's
//! answer through the proxy names the front task, the nodeapp task it reached by the name
//! `nodeapp` and the db task nodeapp reached by the name `db`, with the visit count the db
//! (Debian's redis-server) keeps in its persistent volume. Then nodeapp is scaled to 3 (each
//! instance serves), and the db is moved to the other compute node: the count goes on from
//! where it was.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cluster::{exclusive, platform, project_root, text, Platform};
use crate::edge::{curl, ssh_with_input};

const IMAGE: &str = "registry1:5000/three-tier:1";
/// The apps, in deploy order (the db first, so nodeapp finds it).
const APPS: [&str; 3] = ["db", "nodeapp", "front"];
/// Where the agents keep the db's volume (docs/volumes.md).
const DB_VOLUMES: &str = "/var/lib/infra/agent/volumes/db";

/// Destroys the demo's apps and deletes the db's volume on both compute nodes (a destroyed
/// app's volumes stay on disk), when created and when dropped: a kept platform
/// (INFRA_PLATFORM_DIR) starts each run from no data, and other scenarios see none of it.
struct Demo<'a> {
    platform: &'a Platform,
}

impl Demo<'_> {
    fn clean(&self) {
        for app in APPS.iter().rev() {
            let _ = self.platform.infra(&["destroy", app]);
        }
        for host in ["compute1", "compute2"] {
            let _ = self.platform.ssh(host, &format!("rm -rf {DB_VOLUMES}"));
        }
    }
}

impl Drop for Demo<'_> {
    fn drop(&mut self) {
        self.clean();
    }
}

/// One running task: id and agent host address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Running {
    id: String,
    host: String,
}

fn running(p: &Platform, app: &str) -> Vec<Running> {
    let out = p.infra(&["tasks", app, "-o", "json"]);
    assert!(out.status.success(), "infra tasks {app}: {}", text(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("tasks json");
    let mut tasks: Vec<Running> = list
        .as_array()
        .expect("a task list")
        .iter()
        .filter(|t| t["state"] == "TASK_RUNNING")
        .map(|t| Running {
            id: t["id"].as_str().unwrap_or_default().to_string(),
            host: t["host"].as_str().unwrap_or_default().to_string(),
        })
        .collect();
    tasks.sort();
    tasks
}

/// The chain one visit went through, parsed from
/// `front <id> -> nodeapp <id> -> db <id> visits <n>`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Visit {
    front: String,
    nodeapp: String,
    db: String,
    count: u64,
}

fn parse_visit(page: &str) -> Option<Visit> {
    let words: Vec<&str> = page.split_whitespace().collect();
    match words.as_slice() {
        ["front", front, "->", "nodeapp", nodeapp, "->", "db", db, "visits", count] => {
            Some(Visit {
                front: front.to_string(),
                nodeapp: nodeapp.to_string(),
                db: db.to_string(),
                count: count.parse().ok()?,
            })
        }
        _ => None,
    }
}

/// One visit through the proxy's route to the front end: the parsed chain, or what came.
fn visit(p: &Platform) -> Result<Visit, String> {
    let (status, page) = curl(
        &["--max-time", "15"],
        &format!("http://{}/front/cgi-bin/visit", p.ip("proxy1")),
    );
    match (status, parse_visit(&page)) {
        (200, Some(v)) => Ok(v),
        _ => Err(format!("{status} {page:?}")),
    }
}

/// Visits until one succeeds (the proxy follows events, names follow health within the
/// DNS TTL), for at most `timeout`; every failed attempt leaves the count as it was (a
/// failed hop counts nothing).
fn first_visit(p: &Platform, timeout: Duration) -> Visit {
    let deadline = Instant::now() + timeout;
    loop {
        match visit(p) {
            Ok(v) => return v,
            Err(last) => assert!(
                Instant::now() < deadline,
                "the front end did not answer a visit through the proxy within {timeout:?}: {last}"
            ),
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The demo's image (examples/three-tier/build-image.sh), imported on compute1 and pushed
/// to the cluster registry, as the example's README does.
fn build_and_push(p: &Platform) {
    let dir = tempfile::tempdir().expect("temp dir");
    let tar = dir.path().join("three-tier.tar");
    let out = Command::new("sh")
        .arg("-c")
        .arg("examples/three-tier/build-image.sh > \"$0\"")
        .arg(&tar)
        .current_dir(project_root())
        .output()
        .expect("sh is needed");
    assert!(out.status.success(), "build-image.sh: {}", text(&out));
    let import = format!(
        "docker import --change 'ENTRYPOINT [\"/bin/busybox\", \"sh\", \"/start\"]' - {IMAGE} \
         && docker push {IMAGE} && docker rmi {IMAGE}"
    );
    let out = ssh_with_input(p, "compute1", &import, &tar);
    assert!(out.status.success(), "import and push: {}", text(&out));
}

#[test]
fn three_tier_demo_serves_by_name_scales_and_keeps_its_data_across_a_move() {
    let p = platform();
    let _turn = exclusive();
    let started = Instant::now();
    let demo = Demo { platform: p };
    demo.clean();
    build_and_push(p);
    for app in APPS {
        let out = p.infra(&["deploy", &format!("examples/three-tier/{app}.json")]);
        assert!(out.status.success(), "deploy {app}: {}", text(&out));
    }
    let dbs = running(p, "db");
    assert_eq!(dbs.len(), 1, "{dbs:?}");
    let db = dbs[0].clone();
    let nodeapps = running(p, "nodeapp");
    assert_eq!(nodeapps.len(), 2, "{nodeapps:?}");
    let fronts = running(p, "front");
    assert_eq!(fronts.len(), 1, "{fronts:?}");

    // Through the proxy, the front end reached a nodeapp task by name, which reached the
    // db by name; the db counted the first visit of its fresh volume.
    let first = first_visit(p, Duration::from_secs(30));
    assert_eq!(first.front, fronts[0].id, "{first:?}");
    assert!(
        nodeapps.iter().any(|t| t.id == first.nodeapp),
        "{first:?} {nodeapps:?}"
    );
    assert_eq!(first.db, db.id, "{first:?}");
    assert_eq!(first.count, 1, "a fresh volume starts at 0: {first:?}");

    // Scaled to 3, every nodeapp instance serves and counts through the db (through the
    // proxy's route to nodeapp, which spreads the requests over the instances).
    let out = p.infra(&["scale", "nodeapp", "3"]);
    assert!(out.status.success(), "scale: {}", text(&out));
    let three: BTreeSet<String> = running(p, "nodeapp").into_iter().map(|t| t.id).collect();
    assert_eq!(three.len(), 3, "{three:?}");
    let mut served = BTreeSet::new();
    let mut count = first.count;
    let deadline = Instant::now() + Duration::from_secs(30);
    while served != three {
        let (status, page) = curl(
            &["--max-time", "15"],
            &format!("http://{}/nodeapp/cgi-bin/visit", p.ip("proxy1")),
        );
        let words: Vec<&str> = page.split_whitespace().collect();
        if let (200, ["nodeapp", id, "->", "db", db_id, "visits", n]) = (status, &words[..]) {
            assert_eq!(*db_id, db.id, "{page}");
            let n: u64 = n.parse().expect("a count");
            assert!(n > count, "the count went from {count} to {n}: {page}");
            count = n;
            served.insert(id.to_string());
        }
        assert!(
            Instant::now() < deadline,
            "30 s after scaling, only {served:?} of {three:?} answered; last: {status} {page}"
        );
    }

    // Write data: visits through the front end, each counted once.
    for _ in 0..5 {
        let v = visit(p).expect("a visit through the front end");
        assert_eq!(v.count, count + 1, "{v:?}");
        assert_eq!(v.db, db.id, "{v:?}");
        assert!(three.contains(&v.nodeapp), "{v:?}");
        count = v.count;
    }
    let db_host = if db.host == p.ip("compute1") {
        "compute1"
    } else {
        "compute2"
    };
    // Redis keeps its append-only file in the volume, on the db's agent.
    let aof = format!("{DB_VOLUMES}/data/appendonlydir/appendonly.aof.manifest");
    p.ssh_ok(db_host, &format!("test -s {aof}"));

    // Move the db, with its volume, to the other compute node.
    let to = if db_host == "compute1" {
        "compute2"
    } else {
        "compute1"
    };
    let out = p.infra(&["move", "db", "--to", to]);
    assert!(
        out.status.success(),
        "infra move db --to {to}: {}",
        text(&out)
    );
    println!("{}", String::from_utf8_lossy(&out.stdout).trim());
    let moved = running(p, "db");
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(moved[0].host, p.ip(to), "{moved:?}");
    assert_ne!(moved[0].id, db.id);

    // The front end still answers, through the new db (found by the same name), and the
    // count goes on from the moved data.
    let after = first_visit(p, Duration::from_secs(30));
    assert_eq!(after.db, moved[0].id, "{after:?}");
    assert_eq!(after.count, count + 1, "the moved data: {after:?}");
    assert_eq!(after.front, fronts[0].id, "{after:?}");
    // The data is on the new agent; the old copy is deleted after the checksums agreed and
    // the scheduler committed the new agent (told with the old agent's next heartbeats).
    p.ssh_ok(to, &format!("test -s {aof}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while p
        .ssh(db_host, &format!("test -e {DB_VOLUMES}/data"))
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "{db_host} still holds the db's volume 10 s after the move"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    println!(
        "three-tier demo: {} visits counted, scenario took {:.1} s",
        after.count,
        started.elapsed().as_secs_f64()
    );
}
