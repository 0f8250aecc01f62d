//! Authentication and roles against the real `infra scheduler` on loopback, over TLS with a
//! cluster CA from src/pki: every write route is tried by nobody, a bad token, a
//! read-only token, a deployer of `/team/*` (on an app of its own and on another's) and
//! the admin token; agents register and heartbeat only with a certificate for their host.

#[path = "support/scheduler.rs"]
mod scheduler_support;
#[path = "support/tls.rs"]
mod tls_support;

use std::time::Duration;

use infra::scheduler::tokens::{self, Role};
use reqwest::{Method, StatusCode};
use scheduler_support::{SchedulerProc, TestAgent};
use serde_json::{json, Value};
use tls_support::{https_client, ClusterPki};

struct Fixture {
    _pki: ClusterPki,
    _data: tempfile::TempDir,
    scheduler: SchedulerProc,
    http: reqwest::Client,
    admin: String,
    read_only: String,
    deployer: String,
    pki_ca: std::path::PathBuf,
}

/// A scheduler whose admin token comes from `--bootstrap-tokens` (as `infra up` does), and
/// a read-only and a deployer token made through the API with it.
async fn fixture() -> Fixture {
    let pki = ClusterPki::new(&["control1", "agent1", "agent2"]);
    let data = tempfile::tempdir().unwrap();
    let admin = tokens::generate(Role::Admin, Vec::new(), "admin".into());
    let bootstrap = data.path().join("bootstrap.json");
    std::fs::write(&bootstrap, serde_json::to_vec(&[&admin.record]).unwrap()).unwrap();
    let mut args = pki.scheduler_args("control1");
    args.extend(["--agent-timeout", "60s", "--bootstrap-tokens"]);
    let bootstrap_arg: &'static str = Box::leak(bootstrap.display().to_string().into());
    args.push(bootstrap_arg);
    let scheduler = SchedulerProc::start(&data.path().join("sched"), &args);
    let http = https_client(&pki.ca(), None);
    let mut fixture = Fixture {
        pki_ca: pki.ca(),
        _pki: pki,
        _data: data,
        scheduler,
        http,
        admin: admin.token,
        read_only: String::new(),
        deployer: String::new(),
    };
    fixture.read_only = fixture.create_token(json!({"role": "read-only"})).await;
    fixture.deployer = fixture
        .create_token(json!({"role": "deployer", "apps": ["/team/*"], "name": "team"}))
        .await;
    fixture
}

impl Fixture {
    async fn create_token(&self, body: Value) -> String {
        let (status, answer) = self
            .send(
                Some(&self.admin),
                Method::POST,
                "/infra/v1/tokens",
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        answer["token"].as_str().unwrap().to_string()
    }

    async fn send(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, body) = self.send_full(token, method, path, body).await;
        (status, body)
    }

    async fn send_full(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.scheduler.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the scheduler answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// An app (admin) with `instances` and, when `instances` > 0, run by `agent`.
    async fn app(&self, id: &str, instances: u64) {
        let (status, body) = self
            .send(
                Some(&self.admin),
                Method::POST,
                "/v2/apps",
                Some(
                    json!({"id": id, "cmd": "sleep 1000", "instances": instances,
                            "cpus": 0.01, "mem": 8}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{id}: {body}");
    }

    /// The first task of an app.
    async fn task_of(&self, app: &str) -> String {
        let (_, body) = self
            .send(
                Some(&self.admin),
                Method::GET,
                &format!("/v2/apps{app}/tasks"),
                None,
            )
            .await;
        body["tasks"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The deployment in progress of an app.
    async fn deployment_of(&self, app: &str) -> String {
        let (_, body) = self
            .send(Some(&self.admin), Method::GET, "/v2/deployments", None)
            .await;
        body.as_array()
            .unwrap()
            .iter()
            .find(|d| d["affectedApps"].to_string().contains(app))
            .and_then(|d| d["id"].as_str())
            .unwrap_or_else(|| panic!("no deployment of {app}: {body}"))
            .to_string()
    }
}

/// An agent that presents `cert_host`'s certificate (or none) and registers as `hostname`.
fn agent(f: &Fixture, pki: &ClusterPki, hostname: &str, cert_host: Option<&str>) -> TestAgent {
    let mut agent = TestAgent::new(hostname, (31000, 31100));
    let identity = cert_host.map(|h| pki.identity(h));
    agent.http = https_client(&f.pki_ca, identity.as_ref());
    agent
}

/// One write route with the app it touches in `/team/` (the deployer's) and in `/other/`.
struct Route {
    method: Method,
    path: (String, String),
    body: Option<(Value, Value)>,
    /// Only admin may (not an app write).
    admin_only: bool,
}

fn app_route(method: Method, path: &str, body: Option<Value>) -> Route {
    let body = body.map(|b| {
        let text = b.to_string();
        let other: Value = serde_json::from_str(&text.replace("/team/", "/other/")).unwrap();
        (b, other)
    });
    Route {
        method,
        path: (path.to_string(), path.replace("/team/", "/other/")),
        body,
        admin_only: false,
    }
}

fn admin_route(method: Method, path: &str, body: Option<Value>) -> Route {
    Route {
        method,
        path: (path.to_string(), path.to_string()),
        body: body.map(|b| (b.clone(), b)),
        admin_only: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_route_checks_the_callers_role() {
    let f = fixture().await;
    let url = f.scheduler.url.clone();
    // Tasks to kill and deployments to cancel, of /team/ and /other/ apps.
    let cert_pki_dir = f._pki.identity("agent1");
    let mut runner = TestAgent::new("agent1", (31000, 31100));
    runner.http = https_client(&f.pki_ca, Some(&cert_pki_dir));
    runner.register(&url).await;
    for group in ["team", "other"] {
        f.app(&format!("/{group}/run"), 1).await;
        f.app(&format!("/{group}/web"), 0).await;
        // Two instances of 0.01 cpus and 2000 GB: never placed, its deployment stays.
        let (status, body) = f
            .send(
                Some(&f.admin),
                Method::POST,
                "/v2/apps",
                Some(json!({"id": format!("/{group}/stuck"), "cmd": "sleep 1",
                            "instances": 1, "cpus": 0.01, "mem": 2_000_000})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for _ in 0..5 {
        runner.heartbeat(&url).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let team_task = f.task_of("/team/run").await;
    let other_task = f.task_of("/other/run").await;
    assert!(!team_task.is_empty() && !other_task.is_empty());
    let team_deployment = f.deployment_of("/team/stuck").await;
    let other_deployment = f.deployment_of("/other/stuck").await;
    let app = |id: &str| json!({"id": id, "cmd": "sleep 1", "instances": 0});

    let routes = vec![
        app_route(Method::POST, "/v2/apps", Some(app("/team/new"))),
        app_route(Method::PUT, "/v2/apps", Some(json!([app("/team/web")]))),
        app_route(Method::PATCH, "/v2/apps", Some(json!([app("/team/web")]))),
        app_route(
            Method::PUT,
            "/v2/apps/team/web",
            Some(json!({"instances": 0})),
        ),
        app_route(
            Method::PATCH,
            "/v2/apps/team/web",
            Some(json!({"instances": 0})),
        ),
        app_route(Method::POST, "/v2/apps/team/web/restart", Some(json!({}))),
        app_route(Method::DELETE, "/v2/apps/team/web/tasks", None),
        app_route(Method::DELETE, "/v2/apps/team/web/tasks/team_web.x", None),
        app_route(Method::DELETE, "/v2/queue/team/web/delay", None),
        Route {
            method: Method::POST,
            path: ("/v2/tasks/delete".into(), "/v2/tasks/delete".into()),
            body: Some((json!({"ids": [team_task]}), json!({"ids": [other_task]}))),
            admin_only: false,
        },
        Route {
            method: Method::DELETE,
            path: (
                format!("/v2/deployments/{team_deployment}"),
                format!("/v2/deployments/{other_deployment}"),
            ),
            body: None,
            admin_only: false,
        },
        app_route(Method::DELETE, "/v2/apps/team/web", None),
        admin_route(Method::DELETE, "/v2/leader", None),
        admin_route(
            Method::POST,
            "/infra/v1/tokens",
            Some(json!({"role": "read-only"})),
        ),
        admin_route(Method::DELETE, "/infra/v1/tokens/0123456789abcdef", None),
        admin_route(
            Method::POST,
            "/internal/v1/agents/register",
            Some(json!({"agent_id": "x"})),
        ),
        admin_route(
            Method::POST,
            "/internal/v1/agents/x/heartbeat",
            Some(json!({})),
        ),
    ];

    let bad = "0123456789abcdef.0000000000000000000000000000000000000000000000000000000000000000";
    let mut failures = Vec::new();
    for route in &routes {
        for (scope, path, body) in [
            (
                "own",
                &route.path.0,
                route.body.as_ref().map(|b| b.0.clone()),
            ),
            (
                "other",
                &route.path.1,
                route.body.as_ref().map(|b| b.1.clone()),
            ),
        ] {
            let cases: [(&str, Option<&str>, bool); 5] = [
                ("nobody", None, false),
                ("bad token", Some(bad), false),
                ("read-only", Some(&f.read_only), false),
                (
                    "deployer",
                    Some(&f.deployer),
                    !route.admin_only && scope == "own",
                ),
                ("admin", Some(&f.admin), true),
            ];
            for (who, token, allowed) in cases {
                let (status, headers, answer) = f
                    .send_full(token, route.method.clone(), path, body.clone())
                    .await;
                let expected = if token.is_none() || token == Some(bad) {
                    Some(StatusCode::UNAUTHORIZED)
                } else if !allowed {
                    Some(StatusCode::FORBIDDEN)
                } else {
                    None
                };
                let ok = match expected {
                    Some(code) => {
                        status == code
                            && answer["message"].is_string()
                            && (code != StatusCode::UNAUTHORIZED
                                || headers.contains_key("www-authenticate"))
                    }
                    None => status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                };
                if !ok {
                    failures.push(format!(
                        "{who} {} {path}: {status} {answer} (expected {})",
                        route.method,
                        expected.map_or("allowed".into(), |c| c.to_string())
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // A path that reads as /team/... but decodes to another app is refused.
    let (status, answer) = f
        .send(
            Some(&f.deployer),
            Method::DELETE,
            "/v2/apps/team/..%2Fother%2Frun",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (status, _) = f
        .send(Some(&f.admin), Method::GET, "/v2/apps/other/run", None)
        .await;
    assert_eq!(status, StatusCode::OK, "/other/run is still there");
}

#[tokio::test]
async fn reads_need_a_token_or_a_cluster_certificate_and_ping_is_open() {
    let f = fixture().await;
    let (status, headers, answer) = f.send_full(None, Method::GET, "/v2/apps", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let challenges: Vec<_> = headers.get_all("www-authenticate").iter().collect();
    assert!(challenges
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("Basic")));
    assert!(challenges
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("Bearer")));
    // A script in a browser (the web UI) gets no Basic challenge: the browser would open
    // its own login prompt over the page's token dialog.
    let scripted = f
        .http
        .get(format!("{}/v2/apps", f.scheduler.url))
        .header("X-Requested-With", "infra-ui")
        .send()
        .await
        .unwrap();
    assert_eq!(scripted.status(), StatusCode::UNAUTHORIZED);
    let challenges: Vec<_> = scripted
        .headers()
        .get_all("www-authenticate")
        .iter()
        .collect();
    assert_eq!(challenges.len(), 1, "{challenges:?}");
    assert!(challenges[0].to_str().unwrap().starts_with("Bearer"));
    assert_eq!(
        f.send(None, Method::GET, "/ping", None).await.0,
        StatusCode::OK
    );
    for token in [&f.read_only, &f.deployer, &f.admin] {
        let (status, answer) = f.send(Some(token), Method::GET, "/v2/apps", None).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    // HTTP basic, as Marathon's clients send it: the token as the password.
    let response = f
        .http
        .get(format!("{}/v2/apps", f.scheduler.url))
        .basic_auth("anyone", Some(&f.read_only))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // A host of the cluster (the proxy) reads with its certificate, without a token.
    let host = https_client(&f.pki_ca, Some(&f._pki.identity("agent2")));
    let response = host
        .get(format!("{}/v2/apps", f.scheduler.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = host
        .post(format!("{}/v2/apps", f.scheduler.url))
        .json(&json!({"id": "/x", "cmd": "sleep 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_revoked_token_is_refused_and_tokens_are_listed_without_secrets() {
    let f = fixture().await;
    let made = f
        .create_token(json!({"role": "read-only", "name": "ci"}))
        .await;
    let (id, secret) = tokens::split(&made).unwrap();
    let (status, list) = f
        .send(Some(&f.admin), Method::GET, "/infra/v1/tokens", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.to_string().contains(id), "{list}");
    assert!(!list.to_string().contains(secret), "{list}");
    assert!(!list.to_string().contains("hash"), "{list}");
    assert_eq!(
        f.send(Some(&made), Method::GET, "/v2/apps", None).await.0,
        StatusCode::OK
    );
    let (status, answer) = f
        .send(
            Some(&f.admin),
            Method::DELETE,
            &format!("/infra/v1/tokens/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        f.send(Some(&made), Method::GET, "/v2/apps", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The store keeps hashes only: the secret is nowhere in the data dir.
    let store = std::fs::read(f.scheduler.data_dir.join("scheduler.redb")).unwrap();
    let deployer_secret = tokens::split(&f.deployer).unwrap().1;
    assert!(!contains(&store, deployer_secret.as_bytes()));
    assert!(contains(
        &store,
        tokens::hash_secret(deployer_secret).as_bytes()
    ));
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn an_agent_registers_and_heartbeats_only_with_a_certificate_for_its_host() {
    let f = fixture().await;
    let url = f.scheduler.url.clone();
    let pki = &f._pki;
    // No certificate: refused (nobody).
    let none = agent(&f, pki, "agent1", None);
    assert_eq!(
        none.try_register(&url).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Another host's certificate: refused.
    let impostor = agent(&f, pki, "agent1", Some("agent2"));
    assert_eq!(
        impostor.try_register(&url).await.status(),
        StatusCode::FORBIDDEN
    );
    // A certificate from another CA: the handshake fails.
    let other = ClusterPki::new(&["agent1"]);
    let mut foreign = TestAgent::new("agent1", (31000, 31100));
    foreign.http = https_client(&f.pki_ca, Some(&other.identity("agent1")));
    assert!(foreign
        .http
        .post(format!("{url}{}", infra::api::agent::REGISTER_PATH))
        .json(&json!({}))
        .send()
        .await
        .is_err());
    // Its own: registered, and heartbeats pass.
    let mut real = agent(&f, pki, "agent1", Some("agent1"));
    real.register(&url).await;
    assert_eq!(real.heartbeat(&url).await, StatusCode::OK);
    // agent2's certificate cannot heartbeat for agent1.
    let mut hijack = agent(&f, pki, "agent1", Some("agent2"));
    assert_eq!(hijack.heartbeat(&url).await, StatusCode::FORBIDDEN);
}

/// The CLI with `INFRA_SCHEDULER`, `INFRA_CA` and `INFRA_TOKEN`: `infra token create`
/// prints the token alone, `list` shows it without the secret, `revoke` ends it; without a
/// token the CLI reports the 401.
#[tokio::test]
async fn the_cli_manages_tokens_with_the_admin_token() {
    let f = fixture().await;
    let home = tempfile::tempdir().unwrap();
    let infra = |token: Option<&str>, args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_infra"));
        command
            .args(args)
            .env("INFRA_HOME", home.path())
            .env("INFRA_SCHEDULER", &f.scheduler.url)
            .env("INFRA_CA", &f.pki_ca)
            .env_remove("INFRA_TOKEN");
        if let Some(token) = token {
            command.env("INFRA_TOKEN", token);
        }
        command.output().unwrap()
    };
    let out = infra(
        Some(&f.admin),
        &[
            "token", "create", "--role", "deployer", "--apps", "/team/*", "--name", "ci",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (id, secret) = tokens::split(&made).expect("stdout is the token alone");

    let out = infra(Some(&f.admin), &["token", "list"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && listed.contains(id), "{listed}");
    assert!(
        listed.contains("/team/*") && !listed.contains(secret),
        "{listed}"
    );

    // `-o json`: the list is an array of records (no secret, no hash); create's answer is
    // an object with the token and its id.
    let out = infra(Some(&f.admin), &["token", "list", "-o", "json"]);
    assert!(out.status.success());
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("list is JSON");
    let mine = listed
        .as_array()
        .expect("an array")
        .iter()
        .find(|t| t["id"] == id)
        .expect("the new token is listed");
    assert_eq!(mine["role"], "deployer");
    assert_eq!(mine["apps"], serde_json::json!(["/team/*"]));
    assert!(!String::from_utf8_lossy(&out.stdout).contains(secret));
    let out = infra(
        Some(&f.admin),
        &["token", "create", "--role", "read-only", "--output", "json"],
    );
    let created: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("create -o json is JSON");
    let token = created["token"]
        .as_str()
        .expect("the token is in the answer");
    assert_eq!(
        tokens::split(token).map(|(id, _)| id),
        created["id"].as_str()
    );
    assert_eq!(created["role"], "read-only");

    let out = infra(Some(&made), &["apps"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = infra(None, &["apps"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = infra(Some(&made), &["token", "list"]);
    assert_eq!(out.status.code(), Some(1), "a deployer may not list tokens");

    let out = infra(Some(&f.admin), &["token", "revoke", id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = infra(Some(&made), &["apps"]);
    assert_eq!(out.status.code(), Some(1), "a revoked token still works");
}

/// A real `infra agent` process with its host's certificate, and the task processes it
/// started (killed by process group on drop: they outlive their agent by design).
struct RealAgent {
    child: std::process::Child,
    data: tempfile::TempDir,
}

impl RealAgent {
    fn start(f: &Fixture, host: &str) -> RealAgent {
        let data = tempfile::tempdir().unwrap();
        let identity = f._pki.identity(host);
        // No app of the test has ports: the range only has to be valid.
        let low = 41000;
        let log = std::fs::File::create(data.path().join("agent.log")).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_infra"))
            .args(["agent", "--scheduler", &f.scheduler.url, "--hostname", host])
            .arg("--ca")
            .arg(&f.pki_ca)
            .arg("--tls-cert")
            .arg(&identity.cert)
            .arg("--tls-key")
            .arg(&identity.key)
            .args(["--port-range", &format!("{low}-{}", low + 9)])
            .args(["--cpus", "2", "--mem", "1024", "--address", "127.0.0.1"])
            .args(["--heartbeat-interval", "300ms", "--data-dir"])
            .arg(data.path().join("agent"))
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start infra agent");
        RealAgent { child, data }
    }
}

impl Drop for RealAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let tasks = infra::agent::table::load(&self.data.path().join("agent")).unwrap_or_default();
        for entry in tasks {
            if let infra::agent::table::Handle::Process { pgid, .. } = entry.handle {
                if pgid > 1 {
                    unsafe { libc::kill(-pgid, libc::SIGKILL) };
                }
            }
        }
    }
}

/// The numbers of lines `"<prefix> N"`.
fn numbered(lines: &Value, prefix: &str) -> Vec<u64> {
    lines
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str()?.strip_prefix(prefix)?.trim().parse().ok())
        .collect()
}

/// A task's recent output comes from its real agent (with the heartbeats), holds the last
/// 40 lines of each stream (the bound), follows the task as it writes more, and is read
/// with a read-only token, never without one.
#[tokio::test]
async fn a_tasks_recent_output_comes_from_its_agent_and_needs_a_token() {
    let f = fixture().await;
    let _agent = RealAgent::start(&f, "agent1");
    let cmd = "i=0; while true; do i=$((i+1)); echo \"out $i\"; echo \"err $i\" >&2; \
               sleep 0.02; done";
    let (status, body) = f
        .send(
            Some(&f.admin),
            Method::POST,
            "/v2/apps",
            Some(json!({"id": "/chatty", "cmd": cmd, "instances": 1, "cpus": 0.1, "mem": 16})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let task = loop {
        let task = f.task_of("/chatty").await;
        if !task.is_empty() {
            break task;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the task was not placed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let path = format!("/v2/infra/tasks/{task}/output");

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let first = loop {
        let (status, out) = f.send(Some(&f.read_only), Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        if numbered(&out["stdout"], "out")
            .last()
            .is_some_and(|n| *n > 60)
        {
            break out;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no output of 60 lines arrived: {out}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(first["taskId"], task.as_str());
    assert_eq!(first["host"], "127.0.0.1", "the agent's address");
    for (stream, prefix) in [("stdout", "out"), ("stderr", "err")] {
        let numbers = numbered(&first[stream], prefix);
        assert_eq!(
            numbers.len(),
            40,
            "{stream} keeps the last 40 lines: {first}"
        );
        assert!(
            numbers.windows(2).all(|w| w[1] == w[0] + 1),
            "{stream}: the last lines, in order: {numbers:?}"
        );
    }
    // It follows the task: a later read shows later lines.
    let seen = numbered(&first["stdout"], "out")
        .last()
        .copied()
        .unwrap_or(0);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, out) = f.send(Some(&f.read_only), Method::GET, &path, None).await;
        if numbered(&out["stdout"], "out")
            .last()
            .is_some_and(|n| *n > seen)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no newer output: {out}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let (status, _, body) = f.send_full(None, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "without a token: {body}");
    assert!(!body.to_string().contains("out "), "{body}");
    let (status, _) = f
        .send(
            Some(&f.read_only),
            Method::GET,
            "/v2/infra/tasks/nope.1/output",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
