//! Browser tests' helpers: a real headless Chromium driven through WebDriver (Debian's
//! `chromium` and `chromium-driver`, installed by scripts/install.sh), a small platform
//! on loopback (the real `infra scheduler` and real `infra agent` processes), and
//! screenshots of every page saved as artifacts when a test fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::scheduler_support::SchedulerProc;

pub const BIN: &str = env!("CARGO_BIN_EXE_infra");

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// One chromedriver process, stopped on drop.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Driver {
    pub fn start() -> Driver {
        let binary = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or_else(|| {
                panic!("chromedriver is missing: apt-get install chromium chromium-driver (scripts/install.sh does)")
            });
        let port = free_port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port} in 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { child, url }
    }

    /// A new headless Chromium session of `width` x `height`.
    pub async fn session(&self, width: u32, height: u32) -> Client {
        let chromium = ["/usr/bin/chromium", "/usr/lib/chromium/chromium"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or_else(|| {
                panic!("chromium is missing: apt-get install chromium (scripts/install.sh does)")
            });
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", format!("--window-size={width},{height}")],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session through chromedriver")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A block of `n` consecutive free host ports for an agent (every port binds now), not
/// one of the blocks `taken` by the other agents.
fn free_port_block(n: u16, taken: &[u16]) -> u16 {
    for attempt in 0..200u32 {
        let base = 20000 + ((std::process::id() * 7 + attempt * 131) % 400) as u16 * 100;
        if taken.contains(&base) {
            continue;
        }
        let free = (base..base + n).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no block of {n} free ports found");
}

/// The real platform on loopback: one scheduler and `agents` real agents (datacenter dc1,
/// rack r<i>), which run task processes.
pub struct Platform {
    pub scheduler: SchedulerProc,
    agents: Vec<Child>,
    pub dir: tempfile::TempDir,
}

impl Platform {
    pub async fn start(agents: usize) -> Platform {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("scheduler");
        let scheduler = SchedulerProc::start(&data, &[]);
        let mut children = Vec::new();
        let mut blocks = Vec::new();
        for i in 0..agents {
            let low = free_port_block(100, &blocks);
            blocks.push(low);
            let log =
                std::fs::File::create(dir.path().join(format!("agent{i}.log"))).expect("agent log");
            children.push(
                Command::new(BIN)
                    .args(["agent", "--scheduler", &scheduler.url])
                    .args(["--hostname", &format!("ui-agent-{i}")])
                    .args(["--port-range", &format!("{low}-{}", low + 99)])
                    .args(["--cpus", "4", "--mem", "4096", "--address", "127.0.0.1"])
                    .args([
                        "--attribute",
                        "datacenter=dc1",
                        "--attribute",
                        &format!("rack=r{i}"),
                    ])
                    .args(["--heartbeat-interval", "300ms", "--data-dir"])
                    .arg(dir.path().join(format!("agent{i}")))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .expect("start infra agent"),
            );
        }
        let platform = Platform {
            scheduler,
            agents: children,
            dir,
        };
        let url = platform.scheduler.url.clone();
        wait_until("every agent registered", Duration::from_secs(20), || {
            let url = url.clone();
            async move {
                let v = get(&format!("{url}/v2/infra/agents")).await;
                v["agents"].as_array().map(Vec::len) == Some(agents)
            }
        })
        .await;
        platform
    }

    pub fn url(&self) -> &str {
        &self.scheduler.url
    }

    fn agent_dirs(&self) -> Vec<PathBuf> {
        (0..self.agents.len())
            .map(|i| self.dir.path().join(format!("agent{i}")))
            .collect()
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        for agent in &mut self.agents {
            let _ = agent.kill();
            let _ = agent.wait();
        }
        self.scheduler.kill();
        // The agents' task processes outlive them by design: kill their process groups.
        for dir in self.agent_dirs() {
            for entry in infra::agent::table::load(&dir).unwrap_or_default() {
                if let infra::agent::table::Handle::Process { pgid, .. } = entry.handle {
                    if pgid > 1 {
                        unsafe { libc::kill(-pgid, libc::SIGKILL) };
                    }
                }
            }
        }
    }
}

pub async fn get(url: &str) -> Value {
    match reqwest::get(url).await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// Polls `check` every 200 ms until true; panics naming `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `script` in the page and returns its value (`return ...` in the script).
pub async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

/// The text of the element `css`, or "" when there is none.
pub async fn text(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until the page's element `css` has text containing `needle`.
pub async fn wait_text(c: &Client, css: &str, needle: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let t = text(c, css).await;
        if t.contains(needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {css:?} to show {needle:?}; it shows {t:?}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Where test artifacts go: $INFRA_TEST_ARTIFACTS, else `<target dir>/ui-artifacts`.
pub fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("INFRA_TEST_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
            target.join("ui-artifacts")
        });
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

pub async fn screenshot(c: &Client, path: &Path) {
    match c.screenshot().await {
        Ok(png) => {
            if let Err(e) = std::fs::write(path, png) {
                eprintln!("cannot write {}: {e}", path.display());
            }
        }
        Err(e) => eprintln!("cannot take a screenshot for {}: {e}", path.display()),
    }
}

/// Opens the UI's `route` (`/apps`, `/app/<id>`, ...) on the page's own address.
pub async fn open_route(c: &Client, route: &str) -> Result<(), String> {
    let url = c.current_url().await.map_err(|e| e.to_string())?;
    let base = url.as_str().split('#').next().unwrap_or_default();
    c.goto(&format!("{base}#{route}"))
        .await
        .map_err(|e| format!("open {route}: {e}"))
}

/// After a failure: the page as it was, then every page of the UI, as PNGs named after
/// the test, in [`artifacts_dir`].
pub async fn screenshot_pages(c: &Client, test: &str, pages: &[&str]) {
    let dir = artifacts_dir();
    screenshot(c, &dir.join(format!("{test}-failed.png"))).await;
    for page in pages {
        if open_route(c, page).await.is_err() {
            continue;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        let name = page.trim_matches('/').replace('/', "_");
        screenshot(c, &dir.join(format!("{test}-{name}.png"))).await;
    }
    eprintln!("screenshots of the UI's pages are in {}", dir.display());
}

/// Runs a browser test's `body`; if it panics, screenshots of `pages` are saved first (see
/// [`screenshot_pages`]). The browser session is closed either way.
pub async fn guarded(
    c: &Client,
    test: &str,
    pages: &[&str],
    body: impl std::future::Future<Output = ()>,
) {
    use futures::FutureExt;
    let outcome = std::panic::AssertUnwindSafe(body).catch_unwind().await;
    if let Err(panic) = outcome {
        screenshot_pages(c, test, pages).await;
        let _ = c.clone().close().await;
        std::panic::resume_unwind(panic);
    }
    c.clone().close().await.expect("close the browser");
}
