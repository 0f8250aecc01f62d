//! Giving a root filesystem to Docker's import (`POST /images/create?fromSrc=-`) as a tar
//! stream: GNU tar writes it (hard links, device nodes and owners kept), we forward its output
//! in chunks, so the ~300 MB image is never held in memory. A failed tar aborts the upload.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use bollard::query_parameters::CreateImageOptions;
use bollard::Docker;
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::provider::progress::Progress;

const CHUNK: usize = 256 * 1024;

/// Imports `root` as `repo:tag` with the given image config changes; returns the image id.
pub async fn import_rootfs(
    docker: &Docker,
    root: &Path,
    repo: &str,
    tag: &str,
    changes: Vec<String>,
    progress: &Progress,
) -> anyhow::Result<String> {
    let mut child = Command::new("tar")
        .arg("--numeric-owner")
        .arg("-C")
        .arg(root)
        .args(["-cf", "-", "."])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run tar")?;
    let mut stdout = child.stdout.take().context("tar's output is missing")?;
    let mut stderr = child.stderr.take().context("tar's errors are missing")?;
    let sent = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&sent);
    let body = async_stream::stream! {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match stdout.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                    yield Ok(Bytes::copy_from_slice(&buf[..n]));
                }
                Err(err) => {
                    yield Err(err);
                    return;
                }
            }
        }
        let mut errors = String::new();
        let _ = stderr.read_to_string(&mut errors).await;
        match child.wait().await {
            Ok(status) if status.success() => {}
            Ok(status) => yield Err(std::io::Error::other(format!("tar failed ({status}): {}", errors.trim()))),
            Err(err) => yield Err(err),
        }
    };
    let options = CreateImageOptions {
        from_src: Some("-".to_string()),
        repo: Some(repo.to_string()),
        tag: Some(tag.to_string()),
        message: Some("infra host image (debootstrap)".to_string()),
        changes,
        ..Default::default()
    };
    let mut replies =
        docker.create_image(Some(options), Some(bollard::body_try_stream(body)), None);
    let mut image_id = None;
    while let Some(reply) = replies.next().await {
        let reply = reply.context("Docker refused the image import")?;
        progress.detail(format!(
            "importing into Docker: {} MB sent",
            sent.load(Ordering::Relaxed) / (1024 * 1024)
        ));
        if let Some(error) = reply.error {
            bail!("Docker refused the image import: {error}");
        }
        if let Some(status) = reply.status {
            if status.starts_with("sha256:") {
                image_id = Some(status);
            }
        }
    }
    image_id.context("Docker's import answered without an image id")
}
