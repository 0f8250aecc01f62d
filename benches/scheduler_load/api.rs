//! The harness's client of the scheduler's Marathon API: the app definitions it creates
//! (with the three kinds of constraints the targets name), timed calls, and percentiles.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};

#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub url: String,
}

/// App `i` of the load: `instances` tasks with one host port and one of UNIQUE hostname,
/// GROUP_BY rack or LIKE on an attribute.
pub fn app_definition(i: usize, instances: usize) -> Value {
    let constraints = match i % 3 {
        0 => json!([["hostname", "UNIQUE"]]),
        1 => json!([["rack", "GROUP_BY"]]),
        _ => json!([["zone", "LIKE", "z[01]"]]),
    };
    json!({
        "id": app_id(i),
        "cmd": "sleep 1000000",
        "instances": instances,
        "cpus": 0.1,
        "mem": 32,
        "constraints": constraints,
        "portDefinitions": [{"port": 0}],
    })
}

pub fn app_id(i: usize) -> String {
    format!("/load/g{:03}/app-{i:05}", i / 100)
}

impl Api {
    pub fn new(url: &str) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .context("building the API client")?;
        Ok(Api {
            http,
            url: url.to_string(),
        })
    }

    /// Sends a request and returns its latency (the whole body read) and the body.
    pub async fn timed(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(Duration, Vec<u8>)> {
        let started = Instant::now();
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("{method} {path}: reading the answer"))?;
        let took = started.elapsed();
        anyhow::ensure!(
            status.is_success(),
            "{method} {path}: HTTP {status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        );
        Ok((took, bytes.to_vec()))
    }

    /// GET `path` `times` times in a row: the latencies and the size of the last answer.
    pub async fn sample_get(
        &self,
        path: &str,
        times: usize,
    ) -> anyhow::Result<(Vec<Duration>, usize)> {
        let mut latencies = Vec::with_capacity(times);
        let mut size = 0;
        for _ in 0..times {
            let (took, body) = self.timed(reqwest::Method::GET, path, None).await?;
            latencies.push(took);
            size = body.len();
        }
        Ok((latencies, size))
    }

    /// How many apps GET /v2/apps lists (None while the scheduler does not answer).
    pub async fn app_count(&self) -> Option<usize> {
        let (_, body) = self
            .timed(reqwest::Method::GET, "/v2/apps", None)
            .await
            .ok()?;
        let v: Value = serde_json::from_slice(&body).ok()?;
        v["apps"].as_array().map(Vec::len)
    }
}

impl Api {
    /// Waits until no deployment is in progress (polling every 50 ms); false on timeout.
    pub async fn deployments_done(&self, timeout: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Ok((_, body)) = self
                .timed(reqwest::Method::GET, "/v2/deployments", None)
                .await
            {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if v.as_array().is_some_and(Vec::is_empty) {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

/// p-th percentile (0..=100) of the latencies, in ms.
pub fn percentile_ms(latencies: &[Duration], p: f64) -> f64 {
    if latencies.is_empty() {
        return f64::NAN;
    }
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}
