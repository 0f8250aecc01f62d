//! SSH transport: russh with key auth, one connection per host for the whole run,
//! exec channels for commands, SFTP for stat/read/write, sudo for become.
//!
//! Connection-level failures (connect, host key, login, a broken connection) come back as
//! [`Unreachable`](super::Unreachable) errors; everything else is a plain failure. Every
//! error names the host and the operation.

mod auth;
mod channel;
mod host_keys;
mod sftp;
pub mod stats;
mod sudo_files;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use russh::client::{self, Handle};
use tokio::sync::{Mutex, OnceCell, Semaphore};

use self::channel::{ChannelError, RawOutput, SudoDialog};
use self::host_keys::{HostKeyCheck, HostKeyPolicy, HostKeyRejected};
use self::sftp::{Sftp, TempAttrs};
pub use self::stats::{snapshot as stats, SshStats};
use super::shell::{self, SudoMarkers};
use super::unreachable::unreachable;
use super::{
    Become, ConnectSpec, ExecOptions, ExecOutput, FileAttrs, FileKind, FileStat, Transport,
};

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// OpenSSH allows 10 sessions per connection (MaxSessions); one is the SFTP session.
const MAX_CONCURRENT_EXECS: usize = 8;
/// Mode of a new file when the caller gives none (what umask 022 makes of 0666).
const DEFAULT_FILE_MODE: u32 = 0o644;

/// One SSH connection to one host, shared by every task that runs there.
pub struct SshTransport {
    name: String,
    login_user: String,
    handle: Handle<HostKeyCheck>,
    exec_slots: Semaphore,
    sftp: OnceCell<Sftp>,
    /// uid/gid of user and group names, resolved once per connection.
    ids: Mutex<HashMap<String, u32>>,
}

/// The user infra runs as: `$USER`, else root.
pub fn default_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "root".to_string())
}

enum AttemptError {
    /// Connecting again may help (refused, timed out, reset).
    Retry(anyhow::Error),
    /// It will not (the host key was rejected).
    Final(anyhow::Error),
}

/// One TCP connect + SSH handshake (host key checked).
async fn open_session(
    config: &Arc<client::Config>,
    address: &str,
    port: u16,
    timeout: Duration,
    policy: &HostKeyPolicy,
) -> Result<Handle<HostKeyCheck>, AttemptError> {
    let stream = match tokio::time::timeout(
        timeout,
        tokio::net::TcpStream::connect((address, port)),
    )
    .await
    {
        Err(_) => {
            return Err(AttemptError::Retry(anyhow::anyhow!(
                "TCP connect timed out after {timeout:?}"
            )))
        }
        Ok(Err(e)) => {
            return Err(AttemptError::Retry(
                anyhow::Error::new(e).context("TCP connect"),
            ))
        }
        Ok(Ok(stream)) => stream,
    };
    let _ = stream.set_nodelay(true);
    let handler = HostKeyCheck {
        policy: policy.clone(),
    };
    let handshake_timeout = timeout.max(Duration::from_secs(10));
    match tokio::time::timeout(
        handshake_timeout,
        client::connect_stream(config.clone(), stream, handler),
    )
    .await
    {
        Err(_) => Err(AttemptError::Retry(anyhow::anyhow!(
            "SSH handshake timed out after {handshake_timeout:?}"
        ))),
        Ok(Ok(handle)) => Ok(handle),
        Ok(Err(e)) if e.downcast_ref::<HostKeyRejected>().is_some() => Err(AttemptError::Final(e)),
        Ok(Err(e)) => {
            let retry = matches!(
                e.downcast_ref::<russh::Error>(),
                Some(
                    russh::Error::IO(_)
                        | russh::Error::Disconnect
                        | russh::Error::HUP
                        | russh::Error::ConnectionTimeout
                        | russh::Error::Elapsed(_)
                )
            );
            let e = e.context("SSH handshake");
            if retry {
                Err(AttemptError::Retry(e))
            } else {
                Err(AttemptError::Final(e))
            }
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250 * u64::from(attempt.min(8)))
}

impl SshTransport {
    /// Connects (with retries), checks the host key and logs in.
    pub async fn connect(spec: &ConnectSpec) -> anyhow::Result<SshTransport> {
        let name = spec.name.clone();
        let address = if spec.address.is_empty() {
            spec.name.clone()
        } else {
            spec.address.clone()
        };
        let port = if spec.port == 0 { 22 } else { spec.port };
        let user = if spec.user.is_empty() {
            default_user()
        } else {
            spec.user.clone()
        };
        let timeout = if spec.connect_timeout.is_zero() {
            DEFAULT_CONNECT_TIMEOUT
        } else {
            spec.connect_timeout
        };
        let target = format!("{user}@{address}:{port}");
        let policy = HostKeyPolicy::new(&address, port, &spec.known_hosts, spec.accept_new);
        let config = Arc::new(client::Config {
            preferred: russh::Preferred {
                key: Cow::Owned(policy.preferred_algorithms()),
                ..russh::Preferred::default()
            },
            keepalive_interval: Some(Duration::from_secs(5)),
            keepalive_max: 3,
            nodelay: true,
            ..client::Config::default()
        });

        let attempts = spec.retries.saturating_add(1);
        let mut attempt = 0;
        let mut handle = loop {
            attempt += 1;
            match open_session(&config, &address, port, timeout, &policy).await {
                Ok(handle) => break handle,
                Err(AttemptError::Final(e)) => {
                    return Err(unreachable(&name, &format!("connect to {target}"), e))
                }
                Err(AttemptError::Retry(e)) if attempt < attempts => {
                    tracing::debug!("{name}: connect to {target}, attempt {attempt}: {e:#}");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(AttemptError::Retry(e)) => {
                    let what = if attempts > 1 {
                        format!("connect to {target} (after {attempts} attempts)")
                    } else {
                        format!("connect to {target}")
                    };
                    return Err(unreachable(&name, &what, e));
                }
            }
        };

        let login_timeout = timeout.max(Duration::from_secs(30));
        match tokio::time::timeout(
            login_timeout,
            auth::authenticate(&mut handle, &user, spec.key_file.as_deref()),
        )
        .await
        {
            Err(_) => {
                return Err(unreachable(
                    &name,
                    &format!("log in to {target}"),
                    format!("timed out after {login_timeout:?}"),
                ))
            }
            Ok(Err(e)) => return Err(unreachable(&name, &format!("log in to {target}"), e)),
            Ok(Ok(())) => {}
        }
        stats::connection();

        Ok(SshTransport {
            name,
            login_user: user,
            handle,
            exec_slots: Semaphore::new(MAX_CONCURRENT_EXECS),
            sftp: OnceCell::new(),
            ids: Mutex::new(HashMap::new()),
        })
    }

    /// The user this connection is logged in as.
    pub fn login_user(&self) -> &str {
        &self.login_user
    }

    /// Whether the connection still answers: a keepalive that wants a reply comes back
    /// within `within`. A kept connection is checked before a run reuses it: a host that
    /// went away (a container removed, a network gone) sends no reset, and an operation on
    /// such a connection would wait for the keepalives to give up.
    pub async fn alive(&self, within: Duration) -> bool {
        if self.handle.is_closed() {
            return false;
        }
        let answered = tokio::time::timeout(within, self.handle.send_ping()).await;
        matches!(answered, Ok(Ok(()))) && !self.handle.is_closed()
    }

    /// Forgets the user and group ids looked up so far: a kept connection serves several
    /// runs, and a run may have recreated a user with another uid since.
    pub async fn forget_ids(&self) {
        self.ids.lock().await.clear();
    }

    /// The become to go through sudo for: none when the login user already is that user.
    fn sudo_for<'a>(&self, become_: Option<&'a Become>) -> Option<&'a Become> {
        become_.filter(|b| become_user(b) != self.login_user)
    }

    /// Runs the exec string `command` on a new channel.
    async fn run_raw(
        &self,
        op: &str,
        command: &str,
        stdin: &[u8],
        sudo: Option<(&Become, &SudoMarkers)>,
    ) -> anyhow::Result<RawOutput> {
        let _slot = self
            .exec_slots
            .acquire()
            .await
            .map_err(|e| anyhow::anyhow!("{}: {op}: {e}", self.name))?;
        let channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(|e| unreachable(&self.name, op, format!("open a session channel: {e}")))?;
        stats::channel();
        stats::exec();
        let dialog = sudo.map(|(b, markers)| SudoDialog {
            markers,
            password: b.password.as_deref(),
        });
        match channel::run(channel, command, stdin, dialog).await {
            Ok(out) => Ok(out),
            Err(ChannelError::Connection(detail)) => Err(unreachable(&self.name, op, detail)),
            Err(ChannelError::SudoRefused { stderr, rc }) => {
                let user = sudo.map(|(b, _)| become_user(b)).unwrap_or("root");
                anyhow::bail!(
                    "{}: {op}: {}",
                    self.name,
                    shell::sudo_refusal(&stderr, rc, user)
                )
            }
        }
    }

    /// Runs a `/bin/sh` script, through sudo when `become_` asks for another user.
    async fn run_script(
        &self,
        op: &str,
        script: &str,
        stdin: &[u8],
        become_: Option<&Become>,
    ) -> anyhow::Result<RawOutput> {
        match self.sudo_for(become_) {
            None => self.run_raw(op, script, stdin, None).await,
            Some(b) => {
                let markers = SudoMarkers::random();
                let command =
                    shell::sudo_command(script, become_user(b), &markers, b.password.is_some());
                self.run_raw(op, &command, stdin, Some((b, &markers))).await
            }
        }
    }

    /// The SFTP session, started on first use.
    async fn sftp(&self, op: &str) -> anyhow::Result<&Sftp> {
        tracing::trace!("{}: sftp {op}", self.name);
        self.sftp
            .get_or_try_init(|| async {
                let channel = self.handle.channel_open_session().await.map_err(|e| {
                    unreachable(&self.name, op, format!("open the SFTP channel: {e}"))
                })?;
                stats::channel();
                Sftp::start(channel)
                    .await
                    .map_err(|e| self.sftp_error(op, e))
            })
            .await
    }

    /// An SFTP failure: unreachable when the connection is gone, else a plain error.
    fn sftp_error(&self, op: &str, err: impl std::fmt::Display) -> anyhow::Error {
        if self.handle.is_closed() {
            unreachable(&self.name, op, err)
        } else {
            anyhow::anyhow!("{}: {op}: {err}", self.name)
        }
    }

    /// uid of a user or gid of a group name (numbers pass through), cached.
    async fn resolve_id(&self, name: &str, group: bool) -> anyhow::Result<u32> {
        if let Ok(n) = name.parse::<u32>() {
            return Ok(n);
        }
        let key = format!("{}:{name}", if group { "g" } else { "u" });
        if let Some(id) = self.ids.lock().await.get(&key) {
            return Ok(*id);
        }
        let (op, script) = if group {
            (
                format!("look up group {name}"),
                format!("getent group {} | cut -d: -f3", shell::quote(name)),
            )
        } else {
            (
                format!("look up user {name}"),
                format!("id -u {}", shell::quote(name)),
            )
        };
        let out = self.run_raw(&op, &script, &[], None).await?;
        let text = String::from_utf8_lossy(&out.stdout);
        let id = text.trim().parse::<u32>().map_err(|_| {
            anyhow::anyhow!(
                "{}: {op}: no such {} {name:?}",
                self.name,
                if group { "group" } else { "user" }
            )
        })?;
        self.ids.lock().await.insert(key, id);
        Ok(id)
    }

    async fn write_with_sftp(
        &self,
        path: &str,
        content: &[u8],
        attrs: &FileAttrs,
    ) -> anyhow::Result<()> {
        let op = format!("write {path}");
        let sftp = self.sftp(&op).await?;
        let existing = sftp
            .stat(path)
            .await
            .map_err(|e| self.sftp_error(&op, e))?
            .filter(|s| s.kind == FileKind::File);
        let uid = match &attrs.owner {
            Some(owner) => Some(self.resolve_id(owner, false).await?),
            None => existing.as_ref().map(|s| s.uid),
        };
        let gid = match &attrs.group {
            Some(group) => Some(self.resolve_id(group, true).await?),
            None => existing.as_ref().map(|s| s.gid),
        };
        let mode = attrs
            .mode
            .or(existing.as_ref().map(|s| s.mode))
            .unwrap_or(DEFAULT_FILE_MODE);
        let temp =
            sudo_files::temp_path(path).map_err(|e| anyhow::anyhow!("{}: {op}: {e}", self.name))?;
        let temp_attrs = TempAttrs { mode, uid, gid };
        if let Err(e) = sftp.write_temp(&temp, content, temp_attrs).await {
            let _ = sftp.remove(&temp).await;
            return Err(self.sftp_error(&op, format!("write temp file {temp}: {e}")));
        }
        let renamed = if sftp.can_replace() {
            sftp.replace(&temp, path)
                .await
                .map_err(|e| self.sftp_error(&op, format!("rename {temp} over {path}: {e}")))
        } else {
            let script = format!("mv -f -- {} {}", shell::quote(&temp), shell::quote(path));
            match self.run_raw(&op, &script, &[], None).await {
                Ok(out) if out.rc == 0 => Ok(()),
                Ok(out) => Err(anyhow::anyhow!(
                    "{}: {op}: rename {temp} over {path}: {}",
                    self.name,
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
                Err(e) => Err(e),
            }
        };
        if renamed.is_err() {
            let _ = sftp.remove(&temp).await;
        }
        renamed
    }
}

/// The user a become switches to (`root` when unnamed).
pub(super) fn become_user(b: &Become) -> &str {
    if b.user.is_empty() {
        "root"
    } else {
        &b.user
    }
}

/// How much of a command messages and the debug log show.
const SHOWN_COMMAND_CHARS: usize = 120;

/// A command as messages and the debug log show it: on one line (its non-empty lines
/// joined with `⏎`, runs of spaces made one, so a script that starts with a newline still
/// shows its first words), cut after [`SHOWN_COMMAND_CHARS`] characters with the number
/// of bytes left out, so a long script can still be told from another.
pub fn summary(cmd: &str) -> String {
    let flat = cmd
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ⏎ ");
    match flat.char_indices().nth(SHOWN_COMMAND_CHARS) {
        None => flat,
        Some((cut, _)) => format!("{}…({} more bytes)", &flat[..cut], flat.len() - cut),
    }
}

#[async_trait]
impl Transport for SshTransport {
    fn host(&self) -> &str {
        &self.name
    }

    async fn exec(&self, cmd: &str, opts: &ExecOptions) -> anyhow::Result<ExecOutput> {
        let op = format!("exec `{}`", summary(cmd));
        let script = shell::script(cmd, &opts.env, opts.chdir.as_deref())
            .with_context(|| format!("{}: {op}", self.name))?;
        let stdin = opts.stdin.as_deref().unwrap_or(&[]);
        let started = std::time::Instant::now();
        let out = self
            .run_script(&op, &script, stdin, opts.become_.as_ref())
            .await?;
        // What runs on the host and for how long: `INFRA_LOG=debug` shows where a run's
        // time goes on the hosts. The engine runs each task inside a `task` span, so the
        // line names the task the command belongs to.
        tracing::debug!(
            host = %self.name,
            rc = out.rc,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "{}",
            super::loggable(&op)
        );
        Ok(ExecOutput {
            rc: out.rc,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    fn escalates(&self, become_: Option<&Become>) -> bool {
        self.sudo_for(become_).is_some()
    }

    async fn stat(&self, path: &str, become_: Option<&Become>) -> anyhow::Result<Option<FileStat>> {
        let op = format!("stat {path}");
        if self.sudo_for(become_).is_some() {
            let out = self
                .run_script(&op, &sudo_files::stat_script(path), &[], become_)
                .await?;
            return sudo_files::parse_stat(&out)
                .map_err(|e| anyhow::anyhow!("{}: {op}: {e}", self.name));
        }
        let sftp = self.sftp(&op).await?;
        sftp.stat(path).await.map_err(|e| self.sftp_error(&op, e))
    }

    async fn read_file(
        &self,
        path: &str,
        become_: Option<&Become>,
    ) -> anyhow::Result<Option<Vec<u8>>> {
        let op = format!("read {path}");
        if self.sudo_for(become_).is_some() {
            let out = self
                .run_script(&op, &sudo_files::read_script(path), &[], become_)
                .await?;
            return sudo_files::parse_read(out)
                .map_err(|e| anyhow::anyhow!("{}: {op}: {e}", self.name));
        }
        let sftp = self.sftp(&op).await?;
        sftp.read(path).await.map_err(|e| self.sftp_error(&op, e))
    }

    async fn write_file(
        &self,
        path: &str,
        content: &[u8],
        attrs: &FileAttrs,
        become_: Option<&Become>,
    ) -> anyhow::Result<()> {
        if self.sudo_for(become_).is_none() {
            return self.write_with_sftp(path, content, attrs).await;
        }
        let op = format!("write {path}");
        let temp =
            sudo_files::temp_path(path).map_err(|e| anyhow::anyhow!("{}: {op}: {e}", self.name))?;
        let script = sudo_files::write_script(path, &temp, attrs, DEFAULT_FILE_MODE);
        let out = self.run_script(&op, &script, content, become_).await?;
        if out.rc != 0 {
            anyhow::bail!(
                "{}: {op}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    async fn mkdir(
        &self,
        path: &str,
        mode: Option<u32>,
        owner: super::Owner,
        become_: Option<&Become>,
    ) -> anyhow::Result<()> {
        let op = format!("mkdir {path}");
        if self.sudo_for(become_).is_some() {
            let script = super::mkdir_script(path, mode, owner);
            let out = self.run_script(&op, &script, &[], become_).await?;
            if out.rc != 0 {
                anyhow::bail!(
                    "{}: {op}: {}",
                    self.name,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            return Ok(());
        }
        let sftp = self.sftp(&op).await?;
        sftp.mkdir_all(path, mode, owner)
            .await
            .map_err(|e| self.sftp_error(&op, e))
    }

    async fn read_dir(&self, path: &str) -> anyhow::Result<Option<Vec<String>>> {
        let op = format!("list {path}");
        let sftp = self.sftp(&op).await?;
        sftp.read_dir(path)
            .await
            .map_err(|e| self.sftp_error(&op, e))
    }

    async fn fs_stat(&self, path: &str) -> anyhow::Result<Option<super::FsStat>> {
        let op = format!("statvfs {path}");
        let sftp = self.sftp(&op).await?;
        sftp.fs_stat(path)
            .await
            .map_err(|e| self.sftp_error(&op, e))
    }

    async fn close(&self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn a_shown_command_is_one_line_cut_with_a_count() {
        assert_eq!(
            summary("systemctl show -p ActiveState -- app"),
            "systemctl show -p ActiveState -- app"
        );
        assert_eq!(
            summary("\necho \"@@env\"; env\n  uname  -s\n"),
            "echo \"@@env\"; env ⏎ uname -s"
        );
        let long = format!("echo {}", "x".repeat(200));
        let shown = summary(&long);
        assert!(shown.starts_with("echo xxx"), "{shown}");
        assert!(shown.ends_with("…(85 more bytes)"), "{shown}");
    }
}
