//! Every app definition of the Marathon corpus (/work/shared/corpus/marathon, or
//! $INFRA_MARATHON_CORPUS) against the real scheduler: accepted with every field it sent
//! coming back from GET unchanged (service ports 0 are assigned, as Marathon does), or
//! rejected with a 422 naming the field where Marathon rejects it too.

#[path = "support/scheduler.rs"]
mod scheduler_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use infra::api::appdef::json_eq;
use scheduler_support::{client, get_json, SchedulerProc};
use serde_json::{Map, Value};

fn corpus_dir() -> PathBuf {
    std::env::var_os("INFRA_MARATHON_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/corpus/marathon"))
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} (the corpus is required): {e}",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Apps of a group, recursively (groups themselves are not apps).
fn group_apps(group: &Value, out: &mut Vec<Value>) {
    for app in group["apps"].as_array().into_iter().flatten() {
        out.push(app.clone());
    }
    for g in group["groups"].as_array().into_iter().flatten() {
        group_apps(g, out);
    }
}

/// (label, app definition) for every app definition in the corpus.
fn corpus_apps() -> Vec<(String, Value)> {
    let dir = corpus_dir();
    let mut out = Vec::new();
    for sub in ["legacy-examples", "system-apps"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(sub))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join(sub).display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for file in files {
            let v = read(&file);
            let name = format!("{sub}/{}", file.file_name().unwrap().to_string_lossy());
            if v.get("apps").is_some() || v.get("groups").is_some() {
                // A group (Group.json): its apps are app definitions with relative ids.
                let mut apps = Vec::new();
                group_apps(&v, &mut apps);
                for (i, app) in apps.into_iter().enumerate() {
                    out.push((format!("{name}#{i}"), app));
                }
            } else {
                out.push((name, v));
            }
        }
    }
    let api = dir.join("api-examples");
    out.push(("api-examples/app.json".into(), read(&api.join("app.json"))));
    out.push((
        "api-examples/app-check-http-example.json".into(),
        read(&api.join("app-check-http-example.json")),
    ));
    for (i, app) in read(&api.join("apps_create.json"))
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        out.push((format!("api-examples/apps_create.json#{i}"), app.clone()));
    }
    for file in ["app_list.json", "group.json"] {
        let mut apps = Vec::new();
        group_apps(&read(&api.join(file)), &mut apps);
        for (i, app) in apps.into_iter().enumerate() {
            out.push((format!("api-examples/{file}#{i}"), app));
        }
    }
    for (i, item) in read(&api.join("queue.json"))["queue"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        out.push((format!("api-examples/queue.json#{i}"), item["app"].clone()));
    }
    for file in ["155_100.json", "155_1000.json"] {
        let v = read(&dir.join("real").join(file));
        for (i, app) in v["apps"].as_array().unwrap().iter().enumerate() {
            out.push((format!("real/{file}#{i}"), app.clone()));
        }
    }
    out
}

/// Where Marathon rejects a corpus app, and the field it names.
fn expected_rejections() -> BTreeMap<&'static str, &'static str> {
    [
        // The API reference's "every field" example sets both cmd and args, which
        // Marathon's AppValidation refuses.
        ("api-examples/app.json", "/"),
    ]
    .into()
}

/// Fields the server owns: stamped or computed on every answer.
const SERVER_FIELDS: [&str; 9] = [
    "version",
    "versionInfo",
    "tasksStaged",
    "tasksRunning",
    "tasksHealthy",
    "tasksUnhealthy",
    "deployments",
    "tasks",
    "lastTaskFailure",
];

/// `sent` comes back in `got`, except service ports 0, which are assigned.
fn round_trips(sent: &Value, got: &Value, key: &str) -> bool {
    match (sent, got) {
        (Value::Number(n), Value::Number(_)) if n.as_u64() == Some(0) && is_service_port(key) => {
            true
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| round_trips(x, y, key))
        }
        (Value::Object(a), Value::Object(b)) => a
            .iter()
            .all(|(k, v)| b.get(k).is_some_and(|w| round_trips(v, w, k))),
        _ => json_eq(sent, got),
    }
}

fn is_service_port(key: &str) -> bool {
    matches!(key, "port" | "servicePort" | "ports")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_app_is_accepted_and_round_trips_or_rejected_like_marathon() {
    let dir = tempfile::tempdir().unwrap();
    let sched = SchedulerProc::start(dir.path(), &[]);
    let url = &sched.url;
    let expected = expected_rejections();
    let apps = corpus_apps();
    assert!(apps.len() > 1100, "the corpus has its 1100 real apps");
    let mut failures = Vec::new();
    let mut accepted = 0;
    let mut rejected = 0;
    for (label, def) in &apps {
        let resp = client()
            .post(format!("{url}/v2/apps"))
            .json(def)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        match expected.get(label.as_str()) {
            Some(path) => {
                rejected += 1;
                let paths: Vec<&str> = body["details"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d["path"].as_str())
                    .collect();
                if status != 422 || !paths.contains(path) {
                    failures.push(format!(
                        "{label}: expected 422 on {path}, got {status} {body}"
                    ));
                }
                continue;
            }
            None if status != 201 => {
                failures.push(format!("{label}: expected 201, got {status} {body}"));
                continue;
            }
            None => accepted += 1,
        }
        let id = body["id"].as_str().unwrap().to_string();
        let got = client()
            .get(format!("{url}/v2/apps{id}"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["app"]
            .clone();
        if let Err(e) = serde_json::from_value::<infra::api::marathon::App>(got.clone()) {
            failures.push(format!("{label}: GET answer is not a marathon::App: {e}"));
        }
        let sent: &Map<String, Value> = def.as_object().unwrap();
        for (key, value) in sent {
            if SERVER_FIELDS.contains(&key.as_str()) {
                continue;
            }
            let back = got.get(key).cloned().unwrap_or(Value::Null);
            let same = if key == "id" {
                back.as_str()
                    == Some(&format!(
                        "/{}",
                        value.as_str().unwrap().trim_start_matches('/')
                    ))
            } else {
                round_trips(value, &back, key)
            };
            if !same {
                failures.push(format!(
                    "{label}: field {key} sent {value} came back {back}"
                ));
            }
        }
        let resp = client()
            .delete(format!("{url}/v2/apps{id}?force=true"))
            .send()
            .await
            .unwrap();
        if resp.status() != 200 {
            failures.push(format!("{label}: delete answered {}", resp.status()));
        }
        // The removal is a deployment of its own; several corpus files share an id
        // (legacy Tomcat and Tomcat-Docker are both /tomcat), so wait until it is gone and
        // its deployment has finished (until then the id is locked, as in Marathon: a POST
        // gets 409).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let status = client()
                .get(format!("{url}/v2/apps{id}"))
                .send()
                .await
                .unwrap()
                .status();
            let deployments = get_json(&format!("{url}/v2/deployments")).await;
            let locked = deployments.as_array().into_iter().flatten().any(|d| {
                d["affectedApps"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|a| a.as_str() == Some(id.as_str()))
            });
            if status == 404 && !locked {
                break;
            }
            if std::time::Instant::now() > deadline {
                failures.push(format!("{label}: {id} still there 15 s after its delete"));
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(rejected, expected.len());
    assert_eq!(accepted + rejected, apps.len());
}
