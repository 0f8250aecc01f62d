//! A test-only way to reach a real systemd host: a container from the provider's host image
//! (Debian + systemd, built by `infra image build`, the same image `infra up` uses), reached
//! through `docker exec`. Only tests use this; the behaviour
//! under test (dpkg, systemctl, useradd) is the real one. The container is removed on drop,
//! also when the test fails.
#![allow(dead_code)]

use std::process::Stdio;

use anyhow::Context;
use async_trait::async_trait;
use base64::Engine;
use infra::transport::{Become, ExecOptions, ExecOutput, FileAttrs, FileKind, FileStat, Transport};
use tokio::io::AsyncWriteExt;

/// The tag `infra image build` gives the current recipe's image.
pub const IMAGE: &str = "infra-host:latest";

/// Builds the host image once per test binary (a no-op when its recipe hash is built).
fn ensure_image() {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_infra"))
            .args(["image", "build"])
            .output()
            .expect("run infra image build");
        assert!(
            out.status.success(),
            "infra image build failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// A running systemd container, removed on drop.
pub struct Container {
    pub name: String,
}

impl Container {
    /// Starts one and waits until systemd has booted. Fails clearly without Docker or image.
    pub fn start() -> Container {
        ensure_image();
        let name = format!("infra-modtest-{:08x}", rand::random::<u32>());
        let out = std::process::Command::new("docker")
            .args([
                "run",
                "-d",
                "--name",
                &name,
                "--hostname",
                "modtest",
                "--cap-add",
                "SYS_ADMIN",
                "--cap-add",
                "NET_ADMIN",
                "--cap-add",
                "SYS_PTRACE",
                "--security-opt",
                "seccomp=unconfined",
                "--security-opt",
                "apparmor=unconfined",
                "--cgroupns=host",
                "--tmpfs",
                "/run",
                "--tmpfs",
                "/run/lock",
                "-v",
                "/sys/fs/cgroup:/sys/fs/cgroup:rw",
                IMAGE,
                "/lib/systemd/systemd",
            ])
            .output()
            .expect("docker is required for the systemd module tests");
        let container = Container { name };
        assert!(
            out.status.success(),
            "docker run {IMAGE} failed (is the image built?): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for _ in 0..120 {
            let st = std::process::Command::new("docker")
                .args(["exec", &container.name, "systemctl", "is-system-running"])
                .output()
                .expect("docker exec");
            let state = String::from_utf8_lossy(&st.stdout).trim().to_string();
            if state == "running" || state == "degraded" {
                return container;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        panic!("systemd in {} did not finish booting", container.name);
    }

    /// Runs a shell command in the container and returns its stdout (test assertions).
    pub fn sh(&self, cmd: &str) -> String {
        let out = std::process::Command::new("docker")
            .args(["exec", &self.name, "/bin/sh", "-c", cmd])
            .output()
            .expect("docker exec");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `docker exec` as a Transport (root in the container; become is a no-op).
pub struct DockerExec {
    pub container: String,
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[async_trait]
impl Transport for DockerExec {
    fn host(&self) -> &str {
        &self.container
    }

    async fn exec(&self, cmd: &str, opts: &ExecOptions) -> anyhow::Result<ExecOutput> {
        let mut c = tokio::process::Command::new("docker");
        c.args(["exec", "-i"]);
        if let Some(dir) = &opts.chdir {
            c.args(["-w", dir]);
        }
        for (k, v) in &opts.env {
            c.args(["-e", &format!("{k}={v}")]);
        }
        c.args([&self.container, "/bin/sh", "-c", cmd]);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().context("docker exec")?;
        let mut stdin = child.stdin.take().context("stdin")?;
        let input = opts.stdin.clone().unwrap_or_default();
        let feeder = tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        });
        let out = child.wait_with_output().await.context("docker exec")?;
        let _ = feeder.await;
        Ok(ExecOutput {
            rc: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    async fn stat(&self, path: &str, _b: Option<&Become>) -> anyhow::Result<Option<FileStat>> {
        let q = quote(path);
        let out = self
            .exec(
                &format!("if [ -e {q} ] || [ -L {q} ]; then stat -c '%f %u %g %s %Y' -- {q}; readlink -- {q}; else echo ABSENT; fi"),
                &ExecOptions::default(),
            )
            .await?;
        if out.stdout.trim() == "ABSENT" {
            return Ok(None);
        }
        let mut lines = out.stdout.lines();
        let f: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
        anyhow::ensure!(f.len() == 5, "stat {path}: {}", out.stderr);
        let raw = u32::from_str_radix(f[0], 16)?;
        let kind = match raw & 0o170000 {
            0o040000 => FileKind::Directory,
            0o100000 => FileKind::File,
            0o120000 => FileKind::Symlink,
            _ => FileKind::Other,
        };
        Ok(Some(FileStat {
            kind,
            mode: raw & 0o7777,
            uid: f[1].parse()?,
            gid: f[2].parse()?,
            size: f[3].parse()?,
            mtime: f[4].parse()?,
            link_target: lines
                .next()
                .filter(|_| kind == FileKind::Symlink)
                .map(String::from),
        }))
    }

    async fn read_file(&self, path: &str, _b: Option<&Become>) -> anyhow::Result<Option<Vec<u8>>> {
        let q = quote(path);
        let out = self
            .exec(
                &format!("if [ -e {q} ]; then base64 -w0 < {q}; else echo ABSENT; fi"),
                &ExecOptions::default(),
            )
            .await?;
        if out.stdout.trim() == "ABSENT" {
            return Ok(None);
        }
        Ok(Some(
            base64::engine::general_purpose::STANDARD.decode(out.stdout.trim())?,
        ))
    }

    async fn write_file(
        &self,
        path: &str,
        content: &[u8],
        attrs: &FileAttrs,
        _b: Option<&Become>,
    ) -> anyhow::Result<()> {
        let tmp = format!("{path}.infra-tmp-{:08x}", rand::random::<u32>());
        let (q, t) = (quote(path), quote(&tmp));
        let mut script = format!(
            "set -e; umask 077; base64 -d > {t}; if [ -e {q} ]; then chmod --reference={q} {t}; chown --reference={q} {t}; else chmod 0644 {t}; fi; "
        );
        if let Some(m) = attrs.mode {
            script.push_str(&format!("chmod {m:o} {t}; "));
        }
        if let Some(o) = &attrs.owner {
            script.push_str(&format!("chown {} {t}; ", quote(o)));
        }
        if let Some(g) = &attrs.group {
            script.push_str(&format!("chgrp {} {t}; ", quote(g)));
        }
        script.push_str(&format!("sync {t}; mv -f {t} {q}"));
        let opts = ExecOptions {
            stdin: Some(
                base64::engine::general_purpose::STANDARD
                    .encode(content)
                    .into_bytes(),
            ),
            ..Default::default()
        };
        let out = self.exec(&script, &opts).await?;
        anyhow::ensure!(out.rc == 0, "writing {path}: {}", out.stderr);
        Ok(())
    }
}
