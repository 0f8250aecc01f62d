//! The context file: where the CLI finds the cluster `infra up` built. JSON,
//! `{"schedulers": ["https://10.0.0.2:8080", ...], "ca": "/path/ca.pem" | null,
//! "token": "..."}`, at `$INFRA_HOME/context.json` or else `~/.infra/context.json`.
//! Written atomically, mode 0600: it holds the admin token.

use std::path::PathBuf;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Context {
    /// Scheduler base URLs, tried in order.
    pub schedulers: Vec<String>,
    /// The cluster CA certificate (PEM) to trust for https scheduler URLs.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// The API token the CLI sends (the admin token `infra up` made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// `$INFRA_HOME/context.json`, else `$HOME/.infra/context.json`.
pub fn path() -> anyhow::Result<PathBuf> {
    crate::fsutil::infra_home()
        .map(|home| home.join("context.json"))
        .context("neither INFRA_HOME nor HOME is set: cannot locate the context file")
}

/// Reads the context file; `None` when there is none.
pub fn read() -> anyhow::Result<Option<Context>> {
    let file = path()?;
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("reading {}", file.display())),
    };
    let context = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a valid context file (expected {{\"schedulers\": [...], \"ca\": null}})",
            file.display()
        )
    })?;
    Ok(Some(context))
}

/// Writes the context file atomically (temp file beside it, fsync, rename).
pub fn write(context: &Context) -> anyhow::Result<PathBuf> {
    let file = path()?;
    let json = serde_json::to_vec_pretty(context).context("serializing the context")?;
    crate::fsutil::write_private(&file, &json)?;
    Ok(file)
}
