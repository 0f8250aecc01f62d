//! How commands and files reach a host. `ssh` (russh + SFTP, one connection per host for the
//! whole run) and `local` (the controller itself, for `ansible_connection: local`).
//!
//! Owns: connecting, host-key checking, exec, stat/read/write, privilege escalation (sudo).
//! May call: nothing else in the crate. Modules and the engine only see the `Transport` trait.

use async_trait::async_trait;

tokio::task_local! {
    /// Set while a `no_log` task runs on a host: the debug log (`INFRA_LOG=debug`) then
    /// names no command, since commands carry the task's (secret) arguments.
    static NO_LOG: bool;
}

/// Runs `fut` (one task on one host) with the transport's logs of its commands hidden
/// when `no_log` is set.
pub async fn with_no_log<F: std::future::Future>(no_log: bool, fut: F) -> F::Output {
    NO_LOG.scope(no_log, fut).await
}

/// How an operation is named in the debug log: not at all under `no_log`.
pub fn loggable(op: &str) -> &str {
    if NO_LOG.try_with(|hide| *hide).unwrap_or(false) {
        "(command hidden: no_log)"
    } else {
        op
    }
}

/// Privilege escalation for one operation, like Ansible's `become`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Become {
    /// The user to become (Ansible's `become_user`, default `root`).
    pub user: String,
    /// The sudo password (`ansible_become_password`), when sudo asks for one.
    pub password: Option<String>,
}

/// Options of one command run on a host.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ExecOptions {
    /// Bytes written to the command's stdin, then stdin is closed.
    /// Not in the JSON: the mux sends it as the request's bytes.
    #[serde(skip)]
    pub stdin: Option<Vec<u8>>,
    /// Run as this user through sudo.
    pub become_: Option<Become>,
    /// Extra environment for the command (task `environment:`).
    pub env: Vec<(String, String)>,
    /// Working directory (`chdir`).
    pub chdir: Option<String>,
}

/// The outcome of one command.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ExecOutput {
    pub rc: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The kind of a filesystem entry, as `lstat` sees it (links are not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FileKind {
    File,
    Directory,
    Symlink,
    Other,
}

/// What `lstat` says about a path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileStat {
    pub kind: FileKind,
    /// Permission bits only (e.g. 0o644), without the file-type bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// The link's target, for symlinks.
    pub link_target: Option<String>,
}

/// Owner, group and mode to give a file that is written. `None` keeps what the file had
/// (or the default for a new file).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileAttrs {
    pub mode: Option<u32>,
    /// User name or numeric uid.
    pub owner: Option<String>,
    /// Group name or numeric gid.
    pub group: Option<String>,
}

/// A connection to one host. Implementations keep one connection for the whole run and
/// may be used from several tasks at once.
#[async_trait]
pub trait Transport: Send + Sync {
    /// The inventory name of the host, for messages.
    fn host(&self) -> &str;

    /// Runs `cmd` through `/bin/sh -c` on the host.
    async fn exec(&self, cmd: &str, opts: &ExecOptions) -> anyhow::Result<ExecOutput>;

    /// `lstat` of a path; `Ok(None)` when it does not exist.
    async fn stat(&self, path: &str, become_: Option<&Become>) -> anyhow::Result<Option<FileStat>>;

    /// The whole content of a file; `Ok(None)` when it does not exist.
    async fn read_file(
        &self,
        path: &str,
        become_: Option<&Become>,
    ) -> anyhow::Result<Option<Vec<u8>>>;

    /// Writes a file atomically: a temp file beside `path`, attrs set on it, fsync, rename.
    /// An existing file's owner and mode are kept unless `attrs` says otherwise.
    async fn write_file(
        &self,
        path: &str,
        content: &[u8],
        attrs: &FileAttrs,
        become_: Option<&Become>,
    ) -> anyhow::Result<()>;

    /// Creates a directory and its missing parents (`mkdir -p`: parents get the default
    /// mode and owner), then gives the directory owner `uid`/`gid` and `mode` when given.
    /// By default one exec; the SSH transport does it with SFTP requests, starting no
    /// process on the host.
    async fn mkdir(
        &self,
        path: &str,
        mode: Option<u32>,
        owner: Owner,
        become_: Option<&Become>,
    ) -> anyhow::Result<()> {
        let opts = ExecOptions {
            become_: become_.cloned(),
            ..Default::default()
        };
        let out = self.exec(&mkdir_script(path, mode, owner), &opts).await?;
        if out.rc != 0 {
            anyhow::bail!("mkdir {path}: {}", out.stderr.trim());
        }
        Ok(())
    }

    /// Does `become_` make operations run as another user than the one logged in? By
    /// default any become does. The SSH transport knows its login user: becoming that very
    /// user (root logging in as root, the usual `become: true` on a root login) escalates
    /// nothing, so modules may read files over SFTP instead of starting a process.
    fn escalates(&self, become_: Option<&Become>) -> bool {
        become_.is_some()
    }

    /// Is the host this very machine (`ansible_connection: local`)? Reading a file then
    /// moves nothing over a network, so modules compare a big file by reading it rather
    /// than by starting a checksum process on the host (which reads it as well).
    fn is_local(&self) -> bool {
        false
    }

    /// The names in a directory (`.` and `..` left out), in the order the host lists them
    /// (`ls -U`); `Ok(None)` when it does not exist. As the login user, without a process
    /// on the host. The cheap reads (this and [`Transport::fs_stat`]) serve fact
    /// gathering; a transport without them answers `Err` and its callers start a process
    /// instead.
    async fn read_dir(&self, path: &str) -> anyhow::Result<Option<Vec<String>>> {
        anyhow::bail!(
            "{}: list {path}: no cheap reads on this transport",
            self.host()
        )
    }

    /// `statvfs` of the filesystem holding `path` (`stat -f`); `Ok(None)` when the host
    /// does not answer it for that path.
    async fn fs_stat(&self, path: &str) -> anyhow::Result<Option<FsStat>> {
        anyhow::bail!(
            "{}: statvfs {path}: no cheap reads on this transport",
            self.host()
        )
    }

    /// Closes the connection (best effort). A connection kept between runs
    /// ([`mux`]) stays open with its keeper.
    async fn close(&self) {}

    /// Closes the connection for good (`meta: reset_connection`), a kept one included:
    /// the host's next connection logs in again.
    async fn reset(&self) {
        self.close().await
    }
}

/// What `statvfs` says of a filesystem, in the units `stat -f` prints (`%S %b %a %f %c %d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FsStat {
    /// The fundamental block size (`f_frsize`): the unit of the block counts.
    pub block_size: u64,
    pub blocks: u64,
    /// Free blocks an unprivileged user may use.
    pub blocks_available: u64,
    pub blocks_free: u64,
    pub inodes: u64,
    pub inodes_free: u64,
}

/// A numeric owner to give: (uid, gid), `None` keeping the current one.
pub type Owner = (Option<u32>, Option<u32>);

/// The shell script of [`Transport::mkdir`]: owner before mode, as chown clears set-id bits.
pub fn mkdir_script(path: &str, mode: Option<u32>, owner: Owner) -> String {
    let q = shell::quote(path);
    let mut script = format!("mkdir -p -- {q}");
    match owner {
        (Some(u), Some(g)) => script.push_str(&format!(" && chown {u}:{g} -- {q}")),
        (Some(u), None) => script.push_str(&format!(" && chown {u} -- {q}")),
        (None, Some(g)) => script.push_str(&format!(" && chgrp {g} -- {q}")),
        (None, None) => {}
    }
    if let Some(m) = mode {
        script.push_str(&format!(" && chmod {:04o} -- {q}", m & 0o7777));
    }
    script
}

pub mod local;
pub mod mux;
pub mod shell;
pub mod ssh;
mod unreachable;

pub use unreachable::{is_unreachable, Unreachable};

/// How to reach one host, from its inventory variables and the run's options.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ConnectSpec {
    /// The inventory name (for messages and `Transport::host`).
    pub name: String,
    /// `ansible_host`, else the inventory name.
    pub address: String,
    /// `ansible_port`, default 22.
    pub port: u16,
    /// `ansible_user`, default the controller's user.
    pub user: String,
    /// `ansible_ssh_private_key_file`; when `None`, ssh-agent and the default key files.
    pub key_file: Option<std::path::PathBuf>,
    /// `ansible_connection: local`.
    pub local: bool,
    /// known_hosts files checked besides `~/.ssh/known_hosts` (the first one is where
    /// `accept_new` records new keys when given, else `~/.ssh/known_hosts`).
    pub known_hosts: Vec<std::path::PathBuf>,
    /// Record unknown host keys (OpenSSH's accept-new); a changed key always fails.
    pub accept_new: bool,
    pub connect_timeout: std::time::Duration,
    /// Connection attempts when the connection is refused or times out.
    pub retries: u32,
}

/// Opens a connection. An error here makes the host *unreachable* (not failed).
/// The error is marked [`Unreachable`] (test it with [`is_unreachable`]).
pub async fn connect(spec: &ConnectSpec) -> anyhow::Result<std::sync::Arc<dyn Transport>> {
    if spec.local {
        return Ok(std::sync::Arc::new(local::LocalTransport::new(&spec.name)));
    }
    Ok(std::sync::Arc::new(ssh::SshTransport::connect(spec).await?))
}

#[cfg(test)]
mod no_log_tests {
    use super::*;

    #[tokio::test]
    async fn commands_of_no_log_tasks_are_not_logged() {
        assert_eq!(loggable("exec `echo s3cret`"), "exec `echo s3cret`");
        with_no_log(true, async {
            assert!(!loggable("exec `echo s3cret`").contains("s3cret"));
        })
        .await;
        with_no_log(false, async {
            assert_eq!(loggable("exec `x`"), "exec `x`");
        })
        .await;
    }
}
