//! Making the host's root filesystem: debootstrap into a folder (as root), then the recipe's
//! files, removals, links and chroot commands. Packages are cached between builds in
//! `/var/cache/infra/debootstrap`.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::recipe;
use crate::provider::progress::Progress;

const PACKAGE_CACHE: &str = "/var/cache/infra/debootstrap";

/// Fails early, with what to do, when the build cannot work here.
pub fn check_prerequisites() -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("building the host image needs root (debootstrap): run it as root, e.g. `sudo infra image build`");
    }
    if which("debootstrap").is_none() {
        bail!("building the host image needs debootstrap: apt-get install debootstrap");
    }
    if which("tar").is_none() {
        bail!("building the host image needs tar: apt-get install tar");
    }
    Ok(())
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Runs debootstrap into `target` (an empty folder), showing its current step.
pub async fn debootstrap(target: &Path, progress: &Progress) -> anyhow::Result<()> {
    std::fs::create_dir_all(PACKAGE_CACHE)
        .with_context(|| format!("cannot create the package cache {PACKAGE_CACHE}"))?;
    let program = which("debootstrap").context("debootstrap is not installed")?;
    let mut command = Command::new(program);
    command
        .args(recipe::debootstrap_args())
        .arg(format!("--cache-dir={PACKAGE_CACHE}"))
        .arg(recipe::SUITE)
        .arg(target)
        .arg(recipe::MIRROR)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().context("cannot run debootstrap")?;
    let stdout = child
        .stdout
        .take()
        .context("debootstrap's output is missing")?;
    let stderr = child
        .stderr
        .take()
        .context("debootstrap's output is missing")?;
    let errors = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut kept = VecDeque::new();
        while let Ok(Some(line)) = lines.next_line().await {
            if kept.len() == 20 {
                kept.pop_front();
            }
            kept.push_back(line);
        }
        kept
    });
    let mut lines = BufReader::new(stdout).lines();
    let mut tail: VecDeque<String> = VecDeque::new();
    while let Some(line) = lines
        .next_line()
        .await
        .context("cannot read debootstrap's output")?
    {
        progress.detail(format!("debootstrap: {}", line.trim_start_matches("I: ")));
        if tail.len() == 20 {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    let status = child.wait().await.context("debootstrap did not finish")?;
    let errors = errors.await.unwrap_or_default();
    if !status.success() {
        let log = target.join("debootstrap/debootstrap.log");
        let log_tail = std::fs::read_to_string(&log)
            .map(|t| {
                t.lines()
                    .rev()
                    .take(15)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default();
        bail!(
            "debootstrap failed ({status}); its last lines:\n{}\n{}\n{}",
            tail.into_iter().collect::<Vec<_>>().join("\n"),
            errors.into_iter().collect::<Vec<_>>().join("\n"),
            log_tail
        );
    }
    Ok(())
}

/// Applies the recipe's changes to a debootstrapped root filesystem.
pub async fn customize(root: &Path) -> anyhow::Result<()> {
    for pattern in recipe::REMOVE {
        let full = root.join(pattern);
        let full = full.to_string_lossy();
        for entry in glob::glob(&full).with_context(|| format!("bad pattern {full}"))? {
            let path = entry.with_context(|| format!("cannot list {full}"))?;
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    for (path, mode, content) in recipe::FILES {
        let full = root.join(path);
        if let Some(dir) = full.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        if full.exists() {
            std::fs::remove_file(&full)
                .with_context(|| format!("cannot replace {}", full.display()))?;
        }
        crate::fsutil::write_atomic(&full, content.as_bytes(), crate::fsutil::Mode::Set(*mode))?;
    }
    for (link, target) in recipe::LINKS {
        let full = root.join(link);
        if full.symlink_metadata().is_ok() {
            continue;
        }
        if let Some(dir) = full.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::os::unix::fs::symlink(target, &full)
            .with_context(|| format!("cannot link {} to {target}", full.display()))?;
    }
    for command in recipe::CHROOT_COMMANDS {
        let output = Command::new("chroot")
            .arg(root)
            .args(command.iter())
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| format!("cannot run `{}` in the new root", command.join(" ")))?;
        if !output.status.success() {
            bail!(
                "`{}` failed in the new root ({}): {}",
                command.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
    }
    Ok(())
}
