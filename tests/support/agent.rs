//! Helpers for the agent's integration tests: task specs, free loopback ports, polling.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use infra::agent::Supervisor;
use infra::api::agent::{HealthCheckSpec, HealthProtocol, TaskSpec, TaskState, TaskStatus};

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A command task with PORT0 set to `port`.
pub fn process_spec(task_id: &str, cmd: &str, port: u16) -> TaskSpec {
    let mut env = BTreeMap::new();
    env.insert("PORT0".to_string(), port.to_string());
    env.insert("PORT".to_string(), port.to_string());
    TaskSpec {
        task_id: task_id.to_string(),
        app_id: "/test/app".to_string(),
        app_version: "2026-01-01T00:00:00.000Z".to_string(),
        cmd: Some(cmd.to_string()),
        args: None,
        env,
        labels: BTreeMap::new(),
        user: None,
        cpus: 0.1,
        mem: 32.0,
        disk: 0.0,
        host_ports: vec![port],
        docker: None,
        health_checks: Vec::new(),
        kill_grace_period_seconds: 3,
        persistent_volumes: Vec::new(),
    }
}

pub fn http_check(port: u16) -> HealthCheckSpec {
    HealthCheckSpec {
        protocol: HealthProtocol::Http,
        path: Some("/".to_string()),
        port: Some(port),
        command: None,
        grace_period_seconds: 30,
        interval_seconds: 1,
        timeout_seconds: 2,
        max_consecutive_failures: 3,
        ignore_http1xx: false,
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `timeout`.
pub async fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the task reaches `state`.
pub async fn wait_state(
    sup: &Supervisor,
    task_id: &str,
    state: TaskState,
    timeout: Duration,
) -> TaskStatus {
    wait_for(&format!("{task_id} to be {state:?}"), timeout, || {
        sup.status(task_id).filter(|s| s.state == state)
    })
    .await
}

/// Waits until the task's first health check reports alive.
pub async fn wait_healthy(sup: &Supervisor, task_id: &str, timeout: Duration) -> TaskStatus {
    wait_for(&format!("{task_id} to be healthy"), timeout, || {
        sup.status(task_id)
            .filter(|s| s.health.first().map(|h| h.alive).unwrap_or(false))
    })
    .await
}

/// GET http://127.0.0.1:port/ and return the status code.
pub async fn http_get(port: u16) -> Result<u16, reqwest::Error> {
    let response = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/"))
        .timeout(Duration::from_secs(5))
        .send()
        .await?;
    Ok(response.status().as_u16())
}

/// Whether a process with this pid exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => {
            let state = text[text.rfind(')').unwrap() + 1..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

/// The tiny test image: the static busybox binary (Debian's busybox-static) with `sh` and
/// `httpd` links and a `/www/index.html`, imported into the local engine as
/// `infra-test/busybox:latest` (nothing is pulled). Panics with the fix when busybox is
/// missing or not static.
pub const TEST_IMAGE: &str = "infra-test/busybox:latest";

pub async fn build_test_image(docker: &bollard::Docker) {
    use bollard::query_parameters::CreateImageOptions;
    use futures::StreamExt;
    if docker.inspect_image(TEST_IMAGE).await.is_ok() {
        return;
    }
    let busybox = std::fs::read("/bin/busybox")
        .expect("/bin/busybox is missing: apt-get install busybox-static");
    let dynamic = elf_has_interpreter(&busybox);
    assert!(
        !dynamic,
        "/bin/busybox is dynamically linked: apt-get install busybox-static"
    );
    let mut archive = tar::Builder::new(Vec::new());
    let add_dir = |archive: &mut tar::Builder<Vec<u8>>, path: &str| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        archive
            .append_data(&mut header, path, std::io::empty())
            .unwrap();
    };
    add_dir(&mut archive, "bin/");
    add_dir(&mut archive, "www/");
    add_dir(&mut archive, "tmp/");
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o755);
    header.set_size(busybox.len() as u64);
    archive
        .append_data(&mut header, "bin/busybox", busybox.as_slice())
        .unwrap();
    for link in ["sh", "httpd", "sleep"] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_mode(0o777);
        header.set_size(0);
        archive
            .append_link(&mut header, format!("bin/{link}"), "busybox")
            .unwrap();
    }
    let page = b"hello from infra-test\n";
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o644);
    header.set_size(page.len() as u64);
    archive
        .append_data(&mut header, "www/index.html", &page[..])
        .unwrap();
    let bytes = archive.into_inner().unwrap();
    let mut stream = docker.create_image(
        Some(CreateImageOptions {
            from_src: Some("-".to_string()),
            repo: Some("infra-test/busybox".to_string()),
            tag: Some("latest".to_string()),
            ..Default::default()
        }),
        Some(bollard::body_full(bytes.into())),
        None,
    );
    while let Some(item) = stream.next().await {
        item.expect("docker import of the busybox image");
    }
    docker
        .inspect_image(TEST_IMAGE)
        .await
        .expect("imported image");
}

/// A Docker task running `busybox httpd` on container port 8080, published on `host_port`.
pub fn docker_httpd_spec(task_id: &str, host_port: u16) -> TaskSpec {
    let mut spec = process_spec(task_id, "unused", host_port);
    spec.cmd = None;
    spec.args = Some(
        ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    );
    spec.mem = 64.0;
    spec.cpus = 0.5;
    spec.labels.insert("team".into(), "infra".into());
    spec.docker = Some(infra::api::agent::DockerSpec {
        image: TEST_IMAGE.to_string(),
        network: "BRIDGE".to_string(),
        port_mappings: vec![infra::api::agent::PortMapping {
            container_port: 8080,
            host_port,
            protocol: "tcp".to_string(),
            name: Some("http".to_string()),
        }],
        force_pull_image: false,
        parameters: Vec::new(),
        volumes: Vec::new(),
        privileged: false,
        network_name: None,
        dns_domain: None,
    });
    spec.health_checks.push(http_check(host_port));
    spec
}

/// Whether a 64-bit ELF file has a PT_INTERP program header (is dynamically linked).
fn elf_has_interpreter(elf: &[u8]) -> bool {
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) == 3
    })
}
