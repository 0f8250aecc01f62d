//! The scheduler's API over TLS: the real `infra scheduler` on loopback with a certificate
//! from a cluster CA made by src/pki; clients that trust that CA are answered, clients
//! that trust another CA refuse the server, plain HTTP is served only with
//! `--insecure-http`, and without TLS material or that flag the scheduler refuses to start.

#[path = "support/scheduler.rs"]
mod scheduler_support;
#[path = "support/tls.rs"]
mod tls_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use scheduler_support::SchedulerProc;
use tls_support::{https_client, ClusterPki};

#[tokio::test]
async fn a_client_trusting_the_cluster_ca_is_answered_over_https() {
    let pki = ClusterPki::new(&["control1"]);
    let data = tempfile::tempdir().unwrap();
    let scheduler = SchedulerProc::start(data.path(), &pki.scheduler_args("control1"));
    assert!(scheduler.url.starts_with("https://"), "{}", scheduler.url);
    let response = https_client(&pki.ca(), None)
        .get(format!("{}/ping", scheduler.url))
        .send()
        .await
        .expect("the scheduler answers over TLS");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "pong");
}

#[tokio::test]
async fn a_client_trusting_another_ca_refuses_the_scheduler() {
    let pki = ClusterPki::new(&["control1"]);
    let other = ClusterPki::new(&["control1"]);
    let data = tempfile::tempdir().unwrap();
    let scheduler = SchedulerProc::start(data.path(), &pki.scheduler_args("control1"));
    let error = https_client(&other.ca(), None)
        .get(format!("{}/ping", scheduler.url))
        .send()
        .await
        .expect_err("a certificate from another CA must not be trusted");
    let text = format!("{:?}", error);
    // Both CAs have the same name (src/pki's): the chain is refused for its signature.
    assert!(text.contains("InvalidCertificate"), "{text}");
}

#[tokio::test]
async fn plain_http_to_the_tls_port_gets_no_api_answer() {
    let pki = ClusterPki::new(&["control1"]);
    let data = tempfile::tempdir().unwrap();
    let scheduler = SchedulerProc::start(data.path(), &pki.scheduler_args("control1"));
    let plain = scheduler.url.replacen("https://", "http://", 1);
    let answer = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(format!("{plain}/ping"))
        .send()
        .await;
    if let Ok(response) = answer {
        assert_ne!(
            response.status(),
            200,
            "plain HTTP was served on the TLS port"
        );
    }
}

#[tokio::test]
async fn insecure_http_serves_plain_http() {
    let data = tempfile::tempdir().unwrap();
    let scheduler = SchedulerProc::start(data.path(), &[]);
    assert!(scheduler.url.starts_with("http://"), "{}", scheduler.url);
    let response = reqwest::get(format!("{}/ping", scheduler.url))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[test]
fn without_tls_or_insecure_http_the_scheduler_refuses_to_start() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_infra"))
        .args(["scheduler", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--tls-cert") && stderr.contains("--insecure-http"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).is_empty());
}

#[test]
fn an_unreadable_certificate_is_a_start_up_error_naming_the_file() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_infra"))
        .args(["scheduler", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .args(["--tls-cert", "/nonexistent/api.crt", "--tls-key"])
        .arg(data.path().join("api.key"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/api.crt"), "{stderr}");
}
