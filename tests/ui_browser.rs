//! The web UI in a real headless Chromium (WebDriver), against the real `infra scheduler`
//! with real `infra agent`s on loopback: an operator's journey through every page (create
//! an app with the form and see it go healthy, scale it with the button and see the tasks
//! appear without a reload, kill a task and see its replacement, the editor's errors, a
//! rollback, destroy), the Apps page with 1,000 apps rendering only the rows in view, and
//! (ignored, `bench/ui.sh`) the benchmark with 1,000 apps and 10,000 tasks.
//! On failure, screenshots of every page land in $INFRA_TEST_ARTIFACTS (default
//! `<target dir>/ui-artifacts`). With INFRA_UI_SCREENSHOTS=<dir>, the journey also saves
//! the README's screenshots there (ui-apps.png, ui-app.png).

#[path = "support/scheduler.rs"]
mod scheduler_support;

#[path = "support/browser.rs"]
mod browser;

// The HA control plane on loopback (real etcd, three schedulers), for the Nodes page.
#[path = "support/agent.rs"]
mod agent_support;
#[path = "support/etcd.rs"]
mod etcd;
#[path = "support/ha.rs"]
mod ha;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use browser::{
    get, guarded, js, open_route, screenshot, text, wait_text, wait_until, Driver, Platform,
};
use fantoccini::elements::Element;
use fantoccini::{Client, Locator};
use scheduler_support::{client, SchedulerProc, TestAgent};
use serde_json::{json, Value};

const APP: &str = "/ui-test/web";
/// A real web server per task (busybox httpd), so the HTTP health check really passes; it
/// says so on stdout and stderr first (the app page shows the task's recent output).
const CMD: &str = "mkdir -p www && echo hello > www/index.html && echo \"serving on $PORT0\" \
                   && echo 'httpd starts' >&2 && exec busybox httpd -f -p $PORT0 -h www";
const PAGES: &[&str] = &[
    "/apps",
    "/app/ui-test/web",
    "/create",
    "/deployments",
    "/nodes",
    "/services",
];
const LONG: Duration = Duration::from_secs(40);

/// Runs `act` on the element `css` once it is there: pages draw after their API answers,
/// and a live update may redraw an element between finding and using it, so both are
/// retried for [`LONG`].
async fn on_element<F, Fut>(c: &Client, css: &str, act: F)
where
    F: Fn(Element) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + LONG;
    loop {
        let error = match c.find(Locator::Css(css)).await {
            Ok(el) => match act(el).await {
                Ok(()) => return,
                Err(e) => e,
            },
            Err(e) => format!("no element {css}: {e}"),
        };
        if Instant::now() > deadline {
            panic!("{error}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn click(c: &Client, css: &str) {
    on_element(c, css, |el| async move {
        el.click()
            .await
            .map_err(|e| format!("cannot click {css}: {e}"))
    })
    .await;
}

/// Replaces the value of the field `css`.
async fn type_into(c: &Client, css: &str, value: &str) {
    on_element(c, css, |el| async move {
        el.clear()
            .await
            .map_err(|e| format!("cannot clear {css}: {e}"))?;
        el.send_keys(value)
            .await
            .map_err(|e| format!("cannot type into {css}: {e}"))
    })
    .await;
}

/// The ids of the task rows the app page shows.
async fn task_rows(c: &Client) -> Vec<String> {
    let v = js(
        c,
        "return [...document.querySelectorAll('.vrow.task')].map(r => r.dataset.key)",
    )
    .await;
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(String::from))
        .collect()
}

async fn wait_rows(c: &Client, what: &str, check: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + LONG;
    loop {
        let rows = task_rows(c).await;
        if check(&rows) {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; task rows: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// The page was not reloaded since the journey began (a reload drops the marker).
async fn assert_same_page(c: &Client) {
    assert_eq!(
        js(c, "return window.__journey || null").await,
        json!("started"),
        "the page was reloaded"
    );
}

/// Sets the JSON editor's text as if typed (an input event follows).
async fn set_editor(c: &Client, text: &str) {
    c.execute(
        "const a = document.getElementById('config-editor'); a.value = arguments[0]; a.dispatchEvent(new Event('input')); return true",
        vec![json!(text)],
    )
    .await
    .expect("set the editor's text");
}

async fn api_app(url: &str) -> Value {
    get(&format!("{url}/v2/apps{APP}")).await["app"].clone()
}

async fn post_app(url: &str, app: Value) {
    let resp = client()
        .post(format!("{url}/v2/apps"))
        .json(&app)
        .send()
        .await
        .expect("POST /v2/apps");
    assert_eq!(resp.status(), 201, "{:?}", resp.text().await);
}

async fn journey(c: &Client, url: &str) {
    // Two more apps, so the Apps page has a group and a suspended app to show.
    post_app(
        url,
        json!({"id": "/shop/cart", "cmd": CMD, "instances": 1, "cpus": 0.1, "mem": 32,
        "portDefinitions": [{"port": 0}], "labels": {"team": "shop"},
        "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0, "intervalSeconds": 1}]}),
    )
    .await;
    post_app(url, json!({"id": "/batch/report", "cmd": "sleep 3600", "instances": 0, "cpus": 0.5, "mem": 128})).await;

    // `/` redirects to the UI; the Apps page lists the apps.
    c.goto(&format!("{url}/")).await.expect("open the UI");
    let here = c.current_url().await.expect("url").to_string();
    assert!(here.ends_with("/ui/"), "/ redirects to /ui/, got {here}");
    wait_text(c, "main h1", "Apps", LONG).await;
    wait_text(c, "main", "2 apps", LONG).await;
    js(c, "window.__journey = 'started'; return true").await;

    // Create an app with the form: review the dry run, then deploy; it goes healthy.
    click(c, "nav a[data-page=create]").await;
    type_into(c, "#f-id", APP).await;
    type_into(c, "#f-cmd", CMD).await;
    type_into(c, "#f-mem", "32").await;
    type_into(c, "#f-instances", "1").await;
    type_into(c, "#f-ports", "0").await;
    c.find(Locator::Css("#f-health"))
        .await
        .expect("health select")
        .select_by_value("HTTP")
        .await
        .expect("select HTTP");
    type_into(c, "#f-healthPath", "/").await;
    // A value the scheduler refuses: its 422 lands next to the form field.
    type_into(c, "#f-cpus", "-1").await;
    click(c, "#review-button").await;
    click(c, "#deploy-button").await;
    wait_text(c, "#err-cpus", "/cpus: must be greater than 0", LONG).await;
    type_into(c, "#f-cpus", "0.1").await;
    click(c, "#review-button").await;
    wait_text(c, "#dry-run", "is new", LONG).await;
    wait_text(c, "#dry-run", "+   \"id\": \"/ui-test/web\"", LONG).await;
    click(c, "#deploy-button").await;
    wait_text(c, "main h1", APP, LONG).await;
    wait_text(c, "#app-instances", "1 of 1 running", LONG).await;
    wait_text(c, "#app-healthy", "1 healthy", LONG).await;
    let first = wait_rows(c, "one task row", |r| r.len() == 1).await;
    // The task's recent output, sent by its agent: what the command printed.
    let port = get(&format!("{url}/v2/apps{APP}/tasks")).await["tasks"][0]["ports"][0].clone();
    wait_text(c, "#output-task", &first[0], LONG).await;
    wait_text(c, "#output-stdout", &format!("serving on {port}"), LONG).await;
    wait_text(c, "#output-stderr", "httpd starts", LONG).await;

    // Scale to 3 with the button: three tasks appear, live, without a reload.
    type_into(c, "#scale-input", "3").await;
    click(c, "#scale-button").await;
    wait_rows(c, "three task rows", |r| r.len() == 3).await;
    wait_text(c, "#app-healthy", "3 healthy", LONG).await;
    wait_text(c, "#app-status", "Running", LONG).await;
    let rows = task_rows(c).await;
    assert_same_page(c).await;
    assert_eq!(api_app(url).await["instances"], 3, "the API agrees");

    if let Some(dir) = std::env::var_os("INFRA_UI_SCREENSHOTS") {
        readme_screenshots(c, &PathBuf::from(dir)).await;
    }

    // Kill one task: its row goes, a replacement's row appears.
    let victim = rows[0].clone();
    let kill = format!(".vrow.task[data-key=\"{victim}\"] .kill");
    click(c, &kill).await;
    let after = wait_rows(c, "the killed task replaced", |r| {
        r.len() == 3 && !r.contains(&victim)
    })
    .await;
    assert!(
        after.iter().any(|id| !rows.contains(id)),
        "a new task row: {rows:?} -> {after:?}"
    );
    wait_text(c, "#app-healthy", "3 healthy", LONG).await;
    assert_same_page(c).await;

    // The editor: invalid JSON is refused in the page with its place...
    let good = js(c, "return document.getElementById('config-editor').value").await;
    let good = good.as_str().expect("editor text").to_string();
    type_into(
        c,
        "#config-editor",
        "{\"id\": \"/ui-test/web\",\n \"cpus\": }",
    )
    .await;
    click(c, "#config-submit").await;
    wait_text(c, "#config-errors", "invalid JSON", LONG).await;
    wait_text(c, "#config-errors", "line 2", LONG).await;
    // ...and a field the scheduler rejects (422) is named, with the line it is on.
    let mut bad: Value = serde_json::from_str(&good).expect("the editor shows JSON");
    bad["cpus"] = json!(-1);
    let bad_text = serde_json::to_string_pretty(&bad).expect("json");
    let cpus_line = bad_text
        .lines()
        .position(|l| l.contains("\"cpus\""))
        .expect("cpus line")
        + 1;
    set_editor(c, &bad_text).await;
    click(c, "#config-submit").await;
    wait_text(c, "#config-errors", "/cpus", LONG).await;
    wait_text(c, "#config-errors", "must be greater than 0", LONG).await;
    wait_text(c, "#config-errors", &format!("(line {cpus_line})"), LONG).await;
    assert_eq!(
        api_app(url).await["cpus"],
        0.1,
        "the invalid version was not applied"
    );

    // Roll back a deployment: a version nothing can run stays deploying; Rollback on the
    // Deployments page returns the app to the version before.
    let mut stuck: Value = serde_json::from_str(&good).expect("json");
    stuck["constraints"] = json!([["hostname", "LIKE", "nowhere"]]);
    set_editor(c, &serde_json::to_string_pretty(&stuck).expect("json")).await;
    click(c, "#config-submit").await;
    wait_text(c, "main", "Deployment in progress", LONG).await;
    click(c, "nav a[data-page=deployments]").await;
    wait_text(c, "#deployments", APP, LONG).await;
    click(c, ".deployment .rollback").await;
    click(c, "#confirm-ok").await;
    wait_until("the rollback to finish", LONG, || async {
        let app = api_app(url).await;
        let deployments = get(&format!("{url}/v2/deployments")).await;
        app["constraints"].as_array().is_none_or(|c| c.is_empty())
            && deployments.as_array().is_some_and(|d| d.is_empty())
    })
    .await;
    wait_text(c, "#deployments", "No deployment is running", LONG).await;

    // Versions: the diff between the stuck version and the one after it shows the change.
    c.goto(&format!("{url}/ui/#/app{APP}"))
        .await
        .expect("app page");
    wait_text(c, "#version-diff", "nowhere", LONG).await;
    wait_text(c, "#app-healthy", "3 healthy", LONG).await;

    // Nodes: both agents with datacenter and rack; Services: the DNS names and SRV records.
    click(c, "nav a[data-page=nodes]").await;
    wait_text(c, "main", "ui-agent-0", LONG).await;
    wait_text(c, "main", "ui-agent-1", LONG).await;
    wait_text(c, "main", "r1", LONG).await;
    wait_text(c, "#control-self", "leader", LONG).await;
    assert_eq!(
        js(
            c,
            "return document.querySelectorAll('tr.control-node').length"
        )
        .await,
        json!(1),
        "one scheduler, one control node"
    );
    click(c, "nav a[data-page=services]").await;
    wait_text(c, "#services", "web-ui-test.service.infra", LONG).await;
    wait_text(
        c,
        "#services",
        "_web-ui-test._tcp.service.infra. SRV 1 1",
        LONG,
    )
    .await;

    // Destroy, with confirmation: back to the Apps page, the app is gone.
    c.goto(&format!("{url}/ui/#/app{APP}"))
        .await
        .expect("app page");
    wait_text(c, "#app-healthy", "3 healthy", LONG).await;
    click(c, "#destroy-button").await;
    click(c, "#confirm-ok").await;
    wait_text(c, "main h1", "Apps", LONG).await;
    wait_until("the app to be destroyed", LONG, || async {
        let status = client()
            .get(format!("{url}/v2/apps{APP}"))
            .send()
            .await
            .map(|r| r.status().as_u16());
        status.is_ok_and(|s| s == 404)
    })
    .await;
    type_into(c, "#filter-name", "ui-test").await;
    wait_text(c, ".vlist", "No apps match.", LONG).await;
}

/// The README's screenshots: the Apps page with its folders open, and the app's page.
async fn readme_screenshots(c: &Client, dir: &std::path::Path) {
    std::fs::create_dir_all(dir).expect("screenshot dir");
    open_route(c, "/apps").await.expect("apps page");
    wait_text(c, "main", "3 apps", LONG).await;
    for _ in 0..3 {
        js(c, "document.querySelectorAll('.folder button[aria-expanded=false]').forEach(b => b.click()); return true").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    screenshot(c, &dir.join("ui-apps.png")).await;
    open_route(c, &format!("/app{APP}"))
        .await
        .expect("app page");
    wait_text(c, "#app-healthy", "3 healthy", LONG).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    screenshot(c, &dir.join("ui-app.png")).await;
    js(c, "window.__journey = 'started'; return true").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_creates_scales_heals_edits_rolls_back_and_destroys_an_app() {
    let platform = Platform::start(2).await;
    let driver = Driver::start();
    let c = driver.session(1280, 900).await;
    guarded(&c, "journey", PAGES, journey(&c, platform.url())).await;
}

/// The benchmark: 1,000 apps with 10 tasks each (agents that speak the real protocol, so
/// 10,000 tasks need no 10,000 processes): the Apps page's time to first render and to
/// apply one event, printed, not asserted. Ignored by `cargo test` (placing 10,000 tasks
/// takes the debug scheduler minutes); `bench/ui.sh` runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: bench/ui.sh"]
async fn apps_page_with_1000_apps_and_10000_tasks() {
    const APPS: usize = 1000;
    const PER_APP: usize = 10;
    let dir = tempfile::tempdir().expect("temp dir");
    let sched = SchedulerProc::start(dir.path(), &["--agent-timeout", "600s"]);
    let url = sched.url.clone();
    let mut agents: Vec<TestAgent> = (0..10)
        .map(|i| {
            TestAgent::new(
                &format!("perf-{i}"),
                (30000 + i as u16 * 10, 30000 + i as u16 * 10 + 9),
            )
        })
        .collect();
    for a in &agents {
        a.register(&url).await;
    }
    let apps: Vec<Value> = (1..=APPS)
        .map(|i| json!({"id": format!("/app-{i:04}"), "cmd": "sleep 3600", "instances": PER_APP,
                        "cpus": 0.001, "mem": 1, "portDefinitions": [], "labels": {"team": format!("t{}", i % 7)}}))
        .collect();
    let resp = client()
        .put(format!("{url}/v2/apps"))
        .json(&apps)
        .send()
        .await
        .expect("PUT /v2/apps");
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    let started = Instant::now();
    loop {
        for a in agents.iter_mut() {
            a.heartbeat(&url).await;
        }
        let running: usize = agents.iter().map(|a| a.running().len()).sum();
        // Running as the scheduler counts it. (Not "no deployment": a deployment of 1,000
        // apps at once can stay open after every app reached its target; see the note of
        // the branch that added this test.)
        if running == APPS * PER_APP && scheduler_running(&url).await == APPS * PER_APP {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "10,000 tasks not running in 600 s ({running})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Once more, so every task is reported RUNNING.
    for a in agents.iter_mut() {
        a.heartbeat(&url).await;
    }

    // What the page's first request costs the scheduler alone.
    let fetch = Instant::now();
    let all = client()
        .get(format!(
            "{url}/v2/apps?embed=apps.tasks&embed=apps.lastTaskFailure"
        ))
        .send()
        .await
        .expect("GET /v2/apps")
        .bytes()
        .await
        .expect("body");
    let (fetch_ms, fetch_mb) = (
        fetch.elapsed().as_secs_f64() * 1000.0,
        all.len() as f64 / 1e6,
    );
    let driver = Driver::start();
    let c = driver.session(1280, 900).await;
    let body = async {
        c.goto(&format!("{url}/ui/")).await.expect("open the UI");
        wait_text(
            &c,
            "main",
            &format!("{APPS} apps, {} tasks", APPS * PER_APP),
            Duration::from_secs(60),
        )
        .await;
        let first = js(&c, "return window.__infraStats.firstRenderMs").await;
        let loaded = js(&c, "return window.__infraStats.dataLoadedMs").await;
        let rows = js(
            &c,
            "return document.querySelectorAll('.vlist .vrow').length",
        )
        .await;
        let rows = rows.as_u64().expect("row count");
        assert!(rows < 100, "only the rows in view are rendered, not {rows}");

        // One event at a time: kill a task, wait for the page to apply its status update.
        let mut applied = Vec::new();
        for i in 0..5 {
            let app = format!("/app-{:04}", 1 + i * 97);
            let tasks = get(&format!("{url}/v2/apps{app}/tasks")).await;
            let task = tasks["tasks"][0]["id"]
                .as_str()
                .expect("a task")
                .to_string();
            let before = js(&c, "return window.__infraStats.eventsApplied").await;
            let resp = client()
                .delete(format!("{url}/v2/apps{app}/tasks/{task}"))
                .send()
                .await
                .expect("kill");
            assert_eq!(resp.status(), 200);
            let deadline = Instant::now() + Duration::from_secs(20);
            while js(&c, "return window.__infraStats.eventsApplied").await == before {
                assert!(
                    Instant::now() < deadline,
                    "the page never applied the kill's event"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let ms = js(&c, "return window.__infraStats.lastEventApplyMs").await;
            applied.push(ms.as_f64().expect("ms"));
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        applied.sort_by(f64::total_cmp);

        // The last app is reachable by scrolling.
        js(
            &c,
            "const l = document.querySelector('.vlist'); l.scrollTop = l.scrollHeight; return true",
        )
        .await;
        wait_text(
            &c,
            ".vlist",
            &format!("/app-{APPS:04}"),
            Duration::from_secs(10),
        )
        .await;
        println!(
            "UI benchmark: {APPS} apps / {} tasks: first render {:.0} ms after navigation start \
             (data loaded at {:.0} ms; GET /v2/apps?embed=apps.tasks alone: {fetch_ms:.0} ms, \
             {fetch_mb:.1} MB); applying one event {:.1} ms (median of 5; min {:.1}, max {:.1}); \
             {rows} rows in the DOM",
            APPS * PER_APP,
            first.as_f64().unwrap_or(f64::NAN),
            loaded.as_f64().unwrap_or(f64::NAN),
            applied[2],
            applied[0],
            applied[4],
        );
        let _ = text(&c, "main").await;
    };
    guarded(&c, "perf", &["/apps"], body).await;
    drop(sched);
}

/// Tasks RUNNING over all apps, as `/v2/apps` counts them.
async fn scheduler_running(url: &str) -> usize {
    let apps = get(&format!("{url}/v2/apps")).await;
    apps["apps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["tasksRunning"].as_u64().unwrap_or(0) as usize)
        .sum()
}

/// 1,000 apps (suspended, so nothing needs placing): the Apps page keeps only the rows in
/// view in the DOM, scrolling reaches the last app, and the name filter finds one app.
/// With authentication on, the page still loads (its files are open), asks for a token
/// when the API answers 401, and shows the apps once given the admin token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_asks_for_a_token_when_the_api_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let admin = infra::scheduler::tokens::generate(
        infra::scheduler::tokens::Role::Admin,
        Vec::new(),
        "admin".into(),
    );
    let bootstrap = dir.path().join("bootstrap.json");
    std::fs::write(&bootstrap, serde_json::to_vec(&[&admin.record]).unwrap()).unwrap();
    let bootstrap = bootstrap.display().to_string();
    let sched = SchedulerProc::start(
        &dir.path().join("sched"),
        &["--bootstrap-tokens", &bootstrap],
    );
    let url = sched.url.clone();
    let app =
        json!({"id": "/guarded", "cmd": "sleep 3600", "instances": 0, "cpus": 0.1, "mem": 16});
    let unauthenticated = client()
        .post(format!("{url}/v2/apps"))
        .json(&app)
        .send()
        .await
        .expect("POST /v2/apps");
    assert_eq!(unauthenticated.status(), 401, "the API asks for a token");
    let created = client()
        .post(format!("{url}/v2/apps"))
        .bearer_auth(&admin.token)
        .json(&app)
        .send()
        .await
        .expect("POST /v2/apps");
    assert_eq!(created.status(), 201, "{:?}", created.text().await);
    let driver = Driver::start();
    let c = driver.session(1280, 900).await;
    let body = async {
        c.goto(&format!("{url}/ui/")).await.expect("open the UI");
        wait_until("the token dialog", LONG, || async {
            js(&c, "return document.getElementById('token').open").await == json!(true)
        })
        .await;
        type_into(&c, "#token-input", &admin.token).await;
        click(&c, "#token button[value=ok]").await;
        wait_text(&c, "main", "/guarded", LONG).await;
    };
    guarded(&c, "token", &["/apps"], body).await;
    drop(sched);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_page_renders_only_the_rows_in_view() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sched = SchedulerProc::start(dir.path(), &[]);
    let url = sched.url.clone();
    let apps: Vec<Value> = (1..=1000)
        .map(|i| json!({"id": format!("/many-{i:04}"), "cmd": "sleep 3600", "instances": 0, "cpus": 0.1, "mem": 16}))
        .collect();
    let resp = client()
        .put(format!("{url}/v2/apps"))
        .json(&apps)
        .send()
        .await
        .expect("PUT /v2/apps");
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    let driver = Driver::start();
    let c = driver.session(1280, 900).await;
    let body = async {
        c.goto(&format!("{url}/ui/")).await.expect("open the UI");
        wait_text(&c, "main", "1000 apps, 0 tasks", LONG).await;
        let rows = js(
            &c,
            "return document.querySelectorAll('.vlist .vrow').length",
        )
        .await;
        let rows = rows.as_u64().expect("row count");
        assert!(
            rows > 5 && rows < 100,
            "only the rows in view (and a few) are in the DOM, not {rows}"
        );
        assert!(
            !text(&c, ".vlist").await.contains("/many-1000"),
            "the last app is not rendered before scrolling"
        );
        js(
            &c,
            "const l = document.querySelector('.vlist'); l.scrollTop = l.scrollHeight; return true",
        )
        .await;
        wait_text(&c, ".vlist", "/many-1000", LONG).await;
        type_into(&c, "#filter-name", "many-0500").await;
        wait_text(&c, ".vlist", "/many-0500", LONG).await;
        let rows = js(
            &c,
            "return document.querySelectorAll('.vlist .vrow').length",
        )
        .await;
        assert_eq!(rows, json!(1), "the filter leaves one row");
    };
    guarded(&c, "rows", &["/apps"], body).await;
    drop(sched);
}

/// The Nodes page, opened on a follower of three schedulers sharing a real etcd, lists the
/// three control nodes (from `GET /v2/infra/control-nodes`) and marks the one that leads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_page_lists_every_control_node_and_the_leader() {
    let cluster = ha::HaCluster::start(3, 0).await;
    let leader = cluster.leader().await;
    let follower = (leader + 1) % 3;
    let url = cluster.url(follower).to_string();
    let leader_url = cluster.url(leader).to_string();
    let driver = Driver::start();
    let c = driver.session(1280, 900).await;
    let body = async {
        c.goto(&format!("{url}/ui/#/nodes"))
            .await
            .expect("open the UI");
        wait_text(&c, "main", "Control nodes (3)", LONG).await;
        let rows = js(
            &c,
            "return [...document.querySelectorAll('tr.control-node')].map(r => [r.dataset.url, r.textContent])",
        )
        .await;
        let rows: Vec<(String, String)> = rows
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    r[0].as_str().unwrap_or_default().to_string(),
                    r[1].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let mut urls: Vec<&str> = rows.iter().map(|(u, _)| u.as_str()).collect();
        urls.sort();
        let mut want = cluster.urls();
        want.sort();
        assert_eq!(urls, want, "every scheduler once: {rows:?}");
        for (row_url, row) in &rows {
            let leads = row_url == &leader_url;
            assert_eq!(
                row.contains("leader"),
                leads,
                "{row_url}: {row:?} (leader {leader_url})"
            );
            assert_eq!(row.contains("(this node)"), row_url == &url, "{row:?}");
        }
    };
    guarded(&c, "nodes-ha", &["/nodes"], body).await;
    drop(cluster);
}
