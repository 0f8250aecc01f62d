//! [`Client`]: typed calls to the scheduler's Marathon v2 API, with Marathon's error bodies
//! turned into [`ClientError`]s. The scheduler URLs come from `--scheduler`,
//! `INFRA_SCHEDULER`, or the context file, and are tried in order when one cannot be
//! reached. The CA that https URLs are checked against comes from `INFRA_CA` or the context
//! file, the token sent as `Authorization: Bearer` from `INFRA_TOKEN` or the context file.

use std::time::Duration;

use anyhow::Context as _;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::context;
use crate::api::marathon::{
    App, AppEnvelope, AppList, Deployment, DeploymentResult, ErrorBody, Queue, Task, TaskList,
};

pub const SCHEDULER_ENV: &str = "INFRA_SCHEDULER";
/// Token management (the scheduler's, outside Marathon's `/v2`).
const TOKENS_PATH: &str = crate::scheduler::http::auth::TOKENS_PATH;
/// The cluster CA certificate (PEM) to check https scheduler URLs against.
pub const CA_ENV: &str = "INFRA_CA";
/// The API token to send.
pub const TOKEN_ENV: &str = "INFRA_TOKEN";

/// How the client proves who it is and checks whom it talks to.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// The cluster CA; None: the public roots (and nothing for http URLs).
    pub ca: Option<std::path::PathBuf>,
    /// Sent as `Authorization: Bearer`.
    pub token: Option<String>,
    /// A client certificate (a host's, from the cluster CA: the proxy's).
    pub identity: Option<crate::tls::Identity>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the scheduler at {url}: {cause} (set --scheduler or INFRA_SCHEDULER, or run infra up)")]
    Unreachable { url: String, cause: String },
    #[error("no scheduler configured (set --scheduler or INFRA_SCHEDULER, or run infra up)")]
    NotConfigured,
    /// The scheduler answered with an error status and (usually) Marathon's error body.
    #[error("{method} {url}: HTTP {status}: {}", .body.message)]
    Api {
        method: String,
        url: String,
        status: u16,
        body: ErrorBody,
    },
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

impl ClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// How long a request keeps retrying 503 answers: an election takes a few seconds.
const ELECTION_PATIENCE: Duration = Duration::from_secs(10);

pub struct Client {
    urls: Vec<String>,
    http: reqwest::Client,
    token: Option<String>,
}

impl Client {
    /// A client of these scheduler URLs (tried in order), trusting `ca` for https.
    pub fn new(urls: Vec<String>, ca: Option<&std::path::Path>) -> Result<Self> {
        Client::with_access(
            urls,
            &Access {
                ca: ca.map(std::path::Path::to_path_buf),
                ..Access::default()
            },
        )
    }

    /// A client of these scheduler URLs (tried in order) with `access`.
    pub fn with_access(urls: Vec<String>, access: &Access) -> Result<Self> {
        if urls.is_empty() {
            return Err(ClientError::NotConfigured);
        }
        let builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(30));
        let builder =
            crate::tls::client_builder(builder, access.ca.as_deref(), access.identity.as_ref())?;
        let http = builder.build().context("building the HTTP client")?;
        let urls = urls
            .into_iter()
            .map(|u| u.trim_end_matches('/').to_string())
            .collect();
        Ok(Client {
            urls,
            http,
            token: access.token.clone(),
        })
    }

    /// The scheduler from `flag` (comma-separated URLs), else `INFRA_SCHEDULER`, else the
    /// context file; the CA and token from `INFRA_CA` and `INFRA_TOKEN`, else the context
    /// file.
    pub fn resolve(flag: Option<&str>) -> Result<Self> {
        Client::resolve_with(flag, Access::default())
    }

    /// As [`Client::resolve`], with what `given` sets winning over the environment and the
    /// context file.
    pub fn resolve_with(flag: Option<&str>, given: Access) -> Result<Self> {
        let split = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string)
                .collect()
        };
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let urls = flag
            .filter(|f| !f.trim().is_empty())
            .map(split)
            .or_else(|| env(SCHEDULER_ENV).map(|e| split(&e)));
        // The context file is needed when it names the schedulers; else it only completes
        // the CA and token, and a broken one is no reason to fail.
        let ctx = match urls {
            None => Some(context::read()?.ok_or(ClientError::NotConfigured)?),
            Some(_) => context::read().ok().flatten(),
        };
        let access = Access {
            ca: given
                .ca
                .or_else(|| env(CA_ENV).map(Into::into))
                .or_else(|| ctx.as_ref().and_then(|c| c.ca.clone())),
            token: given
                .token
                .or_else(|| env(TOKEN_ENV).map(|t| t.trim().to_string()))
                .or_else(|| ctx.as_ref().and_then(|c| c.token.clone())),
            identity: given.identity,
        };
        let urls = match urls {
            Some(urls) => urls,
            None => ctx.map(|c| c.schedulers).unwrap_or_default(),
        };
        Client::with_access(urls, &access)
    }

    pub fn base_url(&self) -> &str {
        &self.urls[0]
    }

    /// Sends one request, failing over between the URLs on connection errors. A 503 (the
    /// control nodes are electing a leader, or etcd has no quorum) is retried for up to
    /// [`ELECTION_PATIENCE`], as Marathon's clients ride out a leader change.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response> {
        let started = std::time::Instant::now();
        loop {
            let response = self.send_once(method.clone(), path, body).await?;
            if response.status() != StatusCode::SERVICE_UNAVAILABLE
                || started.elapsed() >= ELECTION_PATIENCE
            {
                return Ok(response);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn send_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response> {
        let mut last = None;
        for base in &self.urls {
            let url = format!("{base}{path}");
            let mut request = self.authorized(self.http.request(method.clone(), &url));
            if let Some(body) = body {
                request = request.json(body);
            }
            match request.send().await {
                Ok(response) => return Ok(response),
                Err(err) if err.is_connect() || err.is_timeout() => {
                    last = Some(ClientError::Unreachable {
                        url: base.clone(),
                        cause: root_cause(&err),
                    });
                }
                Err(err) => {
                    return Err(ClientError::Unreachable {
                        url: base.clone(),
                        cause: root_cause(&err),
                    })
                }
            }
        }
        Err(last.unwrap_or(ClientError::NotConfigured))
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends and decodes a JSON answer; error statuses become [`ClientError::Api`].
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T> {
        let response = self.send(method.clone(), path, body).await?;
        let status = response.status();
        let url = response.url().to_string();
        let text = response
            .text()
            .await
            .with_context(|| format!("reading the answer of {url}"))?;
        if !status.is_success() {
            let body = serde_json::from_str::<ErrorBody>(&text).unwrap_or(ErrorBody {
                message: text.trim().to_string(),
                details: Vec::new(),
                deployments: None,
            });
            return Err(ClientError::Api {
                method: method.to_string(),
                url,
                status: status.as_u16(),
                body,
            });
        }
        let text = if text.trim().is_empty() {
            "null"
        } else {
            &text
        };
        Ok(serde_json::from_str(text).with_context(|| format!("decoding the answer of {url}"))?)
    }

    /// `GET /v2/apps/{id}` with counts, deployments and the last task failure; `None` when
    /// there is no such app.
    pub async fn app(&self, id: &str) -> Result<Option<App>> {
        let path = format!(
            "/v2/apps{}?embed=app.counts&embed=app.deployments",
            canonical(id)
        );
        match self.call::<AppEnvelope>(Method::GET, &path, None).await {
            Ok(envelope) => Ok(Some(envelope.app)),
            Err(err) if err.status() == Some(StatusCode::NOT_FOUND.as_u16()) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// `GET /v2/apps` with counts, deployments and each app's last task failure.
    pub async fn apps(&self) -> Result<Vec<App>> {
        let list: AppList = self
            .call(
                Method::GET,
                "/v2/apps?embed=apps.counts&embed=apps.deployments&embed=apps.lastTaskFailure",
                None,
            )
            .await?;
        Ok(list.apps)
    }

    /// `POST /v2/apps`.
    pub async fn create_app(&self, definition: &Value) -> Result<App> {
        self.call(Method::POST, "/v2/apps", Some(definition)).await
    }

    /// `PUT /v2/apps/{id}` (a full definition or a partial one such as `{"instances": 3}`).
    pub async fn update_app(
        &self,
        id: &str,
        definition: &Value,
        force: bool,
    ) -> Result<DeploymentResult> {
        let path = format!(
            "/v2/apps{}{}",
            canonical(id),
            if force { "?force=true" } else { "" }
        );
        self.call(Method::PUT, &path, Some(definition)).await
    }

    /// `POST /v2/apps/{id}/restart`.
    pub async fn restart_app(&self, id: &str, force: bool) -> Result<DeploymentResult> {
        self.restart_app_with(id, force, false).await
    }

    /// `POST /v2/apps/{id}/restart?wipe=true` when `wipe`: persistent volumes start empty
    /// (the app is no longer pinned to the agents that held them).
    pub async fn restart_app_with(
        &self,
        id: &str,
        force: bool,
        wipe: bool,
    ) -> Result<DeploymentResult> {
        let mut query: Vec<&str> = Vec::new();
        if force {
            query.push("force=true");
        }
        if wipe {
            query.push("wipe=true");
        }
        let path = format!(
            "/v2/apps{}/restart{}{}",
            canonical(id),
            if query.is_empty() { "" } else { "?" },
            query.join("&")
        );
        self.call(
            Method::POST,
            &path,
            Some(&Value::Object(Default::default())),
        )
        .await
    }

    /// `POST /v2/apps/{id}/move?to=HOST`: starts moving the app's task with its
    /// persistent volumes; the answer is the move's status.
    pub async fn move_app(&self, id: &str, to: &str) -> Result<Value> {
        let path = format!("/v2/apps{}/move?to={}", canonical(id), url_component(to));
        self.call(
            Method::POST,
            &path,
            Some(&Value::Object(Default::default())),
        )
        .await
    }

    /// `GET /v2/apps/{id}/move`: how far the app's last move got.
    pub async fn move_status(&self, id: &str) -> Result<Value> {
        let path = format!("/v2/apps{}/move", canonical(id));
        self.call(Method::GET, &path, None).await
    }

    /// `DELETE /v2/apps/{id}`.
    pub async fn delete_app(&self, id: &str, force: bool) -> Result<DeploymentResult> {
        let path = format!(
            "/v2/apps{}{}",
            canonical(id),
            if force { "?force=true" } else { "" }
        );
        self.call(Method::DELETE, &path, None).await
    }

    /// `GET /v2/tasks`, or `GET /v2/apps/{id}/tasks`.
    pub async fn tasks(&self, app: Option<&str>) -> Result<Vec<Task>> {
        let path = match app {
            Some(id) => format!("/v2/apps{}/tasks", canonical(id)),
            None => "/v2/tasks".to_string(),
        };
        let list: TaskList = self.call(Method::GET, &path, None).await?;
        Ok(list.tasks)
    }

    /// `GET /v2/deployments`.
    pub async fn deployments(&self) -> Result<Vec<Deployment>> {
        self.call(Method::GET, "/v2/deployments", None).await
    }

    /// `GET /v2/queue`.
    pub async fn queue(&self) -> Result<Queue> {
        self.call(Method::GET, "/v2/queue", None).await
    }

    /// `GET /v2/apps?embed=apps.tasks`: every app with its tasks (and their health check
    /// results), as the proxy needs them.
    pub async fn apps_with_tasks(&self) -> Result<Vec<App>> {
        let list: AppList = self
            .call(Method::GET, "/v2/apps?embed=apps.tasks", None)
            .await?;
        Ok(list.apps)
    }

    /// `POST /infra/v1/tokens`: a new token (`{"id", "token", ...}`; the token is shown
    /// once).
    pub async fn create_token(&self, request: &Value) -> Result<Value> {
        self.call(Method::POST, TOKENS_PATH, Some(request)).await
    }

    /// `GET /infra/v1/tokens`: `{"tokens": [...]}`, without secrets.
    pub async fn tokens(&self) -> Result<Value> {
        self.call(Method::GET, TOKENS_PATH, None).await
    }

    /// `DELETE /infra/v1/tokens/{id}`.
    pub async fn revoke_token(&self, id: &str) -> Result<Value> {
        let path = format!("{TOKENS_PATH}/{id}");
        self.call(Method::DELETE, &path, None).await
    }

    /// `GET /v2/events`: the open server-sent event stream of the first scheduler that
    /// answers, without the client's overall timeout (the stream lasts; the caller
    /// watches for silence itself).
    pub async fn event_stream(&self) -> Result<reqwest::Response> {
        let mut last = None;
        for base in &self.urls {
            let url = format!("{base}/v2/events");
            let request = self
                .authorized(self.http.get(&url))
                .header(reqwest::header::ACCEPT, "text/event-stream")
                .timeout(Duration::from_secs(10 * 365 * 24 * 3600));
            match request.send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    last = Some(ClientError::Api {
                        method: "GET".into(),
                        url,
                        status: response.status().as_u16(),
                        body: ErrorBody {
                            message: "the event stream was refused".into(),
                            details: Vec::new(),
                            deployments: None,
                        },
                    })
                }
                Err(err) => {
                    last = Some(ClientError::Unreachable {
                        url: base.clone(),
                        cause: root_cause(&err),
                    })
                }
            }
        }
        Err(last.unwrap_or(ClientError::NotConfigured))
    }
}

/// `nodeapp` -> `/nodeapp`.
pub fn canonical(id: &str) -> String {
    crate::api::marathon::canonical_app_id(id)
}

fn root_cause(err: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// A query value: host names are letters, digits, `-` and `.`; anything else is escaped.
fn url_component(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_scheduler_names_the_url_and_the_fixes() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}");
        let client = Client::new(vec![url.clone()], None).unwrap();
        let err = client.apps().await.unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("cannot reach the scheduler at {url}: ")),
            "{err}"
        );
        assert!(
            err.ends_with("(set --scheduler or INFRA_SCHEDULER, or run infra up)"),
            "{err}"
        );
    }
}
