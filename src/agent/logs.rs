//! Task output to syslog: a task writes stdout/stderr to files in its sandbox (so it never
//! depends on the agent being alive); the agent follows those files and sends each new line
//! to the local syslog socket (`/dev/log`) tagged with the app id, where rsyslog forwards it
//! to the log server. A missing syslog socket only means the lines stay in the files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// The local syslog socket.
pub const SYSLOG_SOCKET: &str = "/dev/log";
/// user.info for stdout, user.err for stderr (RFC 3164 priorities).
const PRI_INFO: u8 = 14;
const PRI_ERR: u8 = 11;

/// The syslog tag for an app: its id without the leading slash, slashes made dots
/// (`/group/app` -> `group.app`), as syslog tags cannot hold `/` sensibly.
pub fn tag_for(app_id: &str) -> String {
    let trimmed = app_id.trim_start_matches('/').replace('/', ".");
    if trimmed.is_empty() {
        "infra-task".to_string()
    } else {
        trimmed
    }
}

/// Follows `stdout` and `stderr` in `sandbox` (from the start for a new task, from their
/// current ends for an adopted one), sending lines to the syslog `socket`, forever (the
/// caller aborts the future when the task ends).
pub async fn follow(sandbox: PathBuf, tag: String, socket: PathBuf, from_start: bool) {
    let out = follow_file(
        sandbox.join("stdout"),
        tag.clone(),
        PRI_INFO,
        &socket,
        from_start,
    );
    let err = follow_file(sandbox.join("stderr"), tag, PRI_ERR, &socket, from_start);
    tokio::join!(out, err);
}

async fn follow_file(path: PathBuf, tag: String, priority: u8, target: &Path, from_start: bool) {
    let socket = match tokio::net::UnixDatagram::unbound() {
        Ok(socket) => socket,
        Err(err) => {
            tracing::debug!("no syslog socket: {err}");
            return;
        }
    };
    let mut offset = if from_start { 0 } else { file_len(&path).await };
    let mut pending = Vec::new();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Ok(mut file) = tokio::fs::File::open(&path).await else {
            continue;
        };
        let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
        if len < offset {
            offset = 0; // truncated
        }
        if len == offset || file.seek(std::io::SeekFrom::Start(offset)).await.is_err() {
            continue;
        }
        let mut chunk = Vec::new();
        if file.read_to_end(&mut chunk).await.is_err() {
            continue;
        }
        offset += chunk.len() as u64;
        pending.extend_from_slice(&chunk);
        while let Some(newline) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=newline).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]);
            let message = format!("<{priority}>{tag}: {text}");
            if let Err(err) = socket.send_to(message.as_bytes(), target).await {
                tracing::debug!("syslog send failed: {err}");
            }
        }
    }
}

async fn file_len(path: &Path) -> u64 {
    tokio::fs::metadata(path)
        .await
        .map(|m| m.len())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_app_ids_without_slashes() {
        assert_eq!(tag_for("/group/app"), "group.app");
        assert_eq!(tag_for("/web"), "web");
        assert_eq!(tag_for("/"), "infra-task");
    }
}
