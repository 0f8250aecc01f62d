//! SSH connections kept between runs, as OpenSSH's `ControlPersist` keeps them for
//! ansible-playbook (Ansible's default is `ControlPersist=60s`). A run that follows another
//! within the idle time skips the login: on a converged host the login is the larger part
//! of what a run costs there (TCP, key exchange, authentication, the PAM session).
//!
//! The connections live in a keeper process ([`keeper`], `infra ssh-mux`) that the first
//! run starts; runs reach it through a socket in `$INFRA_HOME/mux/` (default
//! `~/.infra/mux/`, mode 0700). Each build of infra has its own keeper (the socket is named
//! after the binary), so an upgrade never talks to an older keeper. When the keeper cannot
//! be reached the run connects directly: keeping connections is an optimisation, never a
//! reason to fail.
//!
//! A kept connection is not checked against known_hosts again (OpenSSH's mux does the
//! same); it is checked to still answer before each run reuses it.

pub mod client;
pub mod keeper;
pub mod wire;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::UnixStream;

use super::{ConnectSpec, Transport};
use wire::{Hello, HelloReply};

/// A mutex's guard, even when a thread panicked holding it: the keeper's and the client's
/// maps stay usable (a panicked request leaves nothing half-written in them).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// How long a connection is kept once no run uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Not kept: each run logs in and the connection closes with it.
    No,
    For(Duration),
    /// Until `meta: reset_connection` closes it.
    Forever,
}

/// The default, Ansible's: `ControlPersist=60s`.
pub const DEFAULT_KEEP: Keep = Keep::For(Duration::from_secs(60));

impl Keep {
    /// `--ssh-persist` / `INFRA_SSH_PERSIST`: `no`, `yes` (forever) or a time (`60`,
    /// `90s`, `10m`, `1h`). `0` is refused, as OpenSSH reads it as "forever" and a user
    /// may mean "off".
    pub fn parse_setting(text: &str) -> anyhow::Result<Keep> {
        match text.trim().to_ascii_lowercase().as_str() {
            "no" | "off" | "false" => Ok(Keep::No),
            "yes" | "on" | "true" => Ok(Keep::Forever),
            t => match parse_time(t) {
                Some(d) if !d.is_zero() => Ok(Keep::For(d)),
                Some(_) => anyhow::bail!(
                    "ssh persist time 0: say `no` to keep no connection, `yes` to keep them until reset"
                ),
                None => anyhow::bail!(
                    "ssh persist {text:?}: expected no, yes or a time such as 60s, 10m or 1h"
                ),
            },
        }
    }

    /// An OpenSSH option of a host's `ansible_ssh_common_args`/`ansible_ssh_extra_args`
    /// that decides keeping: `ControlMaster=no` keeps nothing, `ControlPersist` as
    /// `ssh_config(5)` reads it (`yes` or `0` forever, `no`, or a time). `None` for any
    /// other option or value.
    pub fn from_ssh_option(key: &str, value: &str) -> Option<Keep> {
        let value = value.trim().to_ascii_lowercase();
        if key.eq_ignore_ascii_case("ControlMaster") {
            return (value == "no").then_some(Keep::No);
        }
        if !key.eq_ignore_ascii_case("ControlPersist") {
            return None;
        }
        match value.as_str() {
            "no" => Some(Keep::No),
            "yes" => Some(Keep::Forever),
            t => parse_time(t).map(|d| {
                if d.is_zero() {
                    Keep::Forever
                } else {
                    Keep::For(d)
                }
            }),
        }
    }
}

/// A time as `ssh_config(5)` writes it: seconds, or numbers each followed by s, m, h, d
/// or w (`1h30m`).
fn parse_time(text: &str) -> Option<Duration> {
    if text.is_empty() {
        return None;
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        let n: u64 = number.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        number.clear();
    }
    if !number.is_empty() {
        return None;
    }
    Some(Duration::from_secs(total))
}

/// Where a run finds (or starts) its keeper, and how long it asks connections to be kept.
#[derive(Debug, Clone)]
pub struct Persist {
    pub keep: Keep,
    /// The infra binary that runs the keeper (`infra ssh-mux`).
    pub program: PathBuf,
    /// The keeper's folder (made 0700).
    pub folder: PathBuf,
}

impl Persist {
    /// The run's own binary as keeper, in `$INFRA_HOME/mux`; `None` when either is unknown
    /// (the run then connects directly).
    pub fn for_this_binary(keep: Keep) -> Option<Persist> {
        let program = std::env::current_exe().ok()?;
        // Absolute: the keeper runs from `/` and must find the same folder.
        let folder = std::path::absolute(crate::fsutil::infra_home()?.join("mux")).ok()?;
        Some(Persist {
            keep,
            program,
            folder,
        })
    }

    /// The same keeper, with a host's own keep setting.
    pub fn with_keep(&self, keep: Keep) -> Persist {
        Persist {
            keep,
            ..self.clone()
        }
    }
}

/// Opens the connection to `spec`'s host through the keeper, or directly when keeping is
/// off or the keeper cannot be reached. Connection errors are [`Unreachable`](super::Unreachable),
/// as on a direct connection.
pub async fn connect(spec: &ConnectSpec, persist: &Persist) -> anyhow::Result<Arc<dyn Transport>> {
    let idle_secs = match persist.keep {
        Keep::No => return super::connect(spec).await,
        Keep::For(d) => Some(d.as_secs().max(1)),
        Keep::Forever => None,
    };
    let mut stream = match reach_keeper(persist).await {
        Ok(stream) => stream,
        Err(e) => {
            tracing::debug!(
                "{}: no kept connection, connecting directly: {e:#}",
                spec.name
            );
            return super::connect(spec).await;
        }
    };
    let hello = Hello {
        version: wire::VERSION,
        spec: absolute_paths(spec),
        idle_secs,
    };
    let reply = match wire::write_frame(&mut stream, &hello).await {
        Ok(()) => wire::read_frame::<_, HelloReply>(&mut stream).await,
        Err(e) => Err(e),
    };
    match reply {
        Ok(Some(HelloReply::Ready { login_user, reused })) => {
            tracing::debug!(host = %spec.name, reused, "kept connection");
            Ok(Arc::new(client::MuxTransport::new(
                &spec.name, login_user, stream,
            )))
        }
        Ok(Some(HelloReply::Failed(e))) if e.unreachable.is_some() => Err(e.into_error()),
        Ok(Some(HelloReply::Failed(e))) => {
            tracing::debug!("{}: the keeper refused: {}", spec.name, e.message);
            super::connect(spec).await
        }
        Ok(None) | Err(_) => {
            tracing::debug!("{}: the keeper hung up, connecting directly", spec.name);
            super::connect(spec).await
        }
    }
}

/// `spec` with its key and known_hosts paths made absolute: the keeper runs from `/`, and
/// two runs from different folders naming `keys/id` mean different files.
fn absolute_paths(spec: &ConnectSpec) -> ConnectSpec {
    let absolute = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
    ConnectSpec {
        key_file: spec.key_file.as_ref().map(absolute),
        known_hosts: spec.known_hosts.iter().map(absolute).collect(),
        ..spec.clone()
    }
}

/// A socket connection to the keeper, started when none is running.
async fn reach_keeper(persist: &Persist) -> anyhow::Result<UnixStream> {
    let socket = socket_path(persist)?;
    if let Ok(stream) = UnixStream::connect(&socket).await {
        return Ok(stream);
    }
    // A run's hosts all connect at once: one of them starts the keeper, the rest wait.
    static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one_at_a_time = STARTING.lock().await;
    if let Ok(stream) = UnixStream::connect(&socket).await {
        return Ok(stream);
    }
    start_keeper(persist, &socket)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        tokio::time::sleep(Duration::from_millis(5)).await;
        match UnixStream::connect(&socket).await {
            Ok(stream) => return Ok(stream),
            Err(e) if std::time::Instant::now() > deadline => {
                return Err(e).context("the connection keeper did not start within 3 s")
            }
            Err(_) => {}
        }
    }
}

/// `infra ssh-mux --socket <socket>`, detached: its own session (a terminal's hang-up or
/// Ctrl-C does not reach it), no output, and no debug log (it cannot tell a `no_log`
/// task's command from another).
fn start_keeper(persist: &Persist, socket: &Path) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(&persist.program);
    command
        .arg("ssh-mux")
        .arg("--socket")
        .arg(socket)
        .current_dir("/")
        .env_remove("INFRA_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut keeper = command
        .spawn()
        .with_context(|| format!("start {} ssh-mux", persist.program.display()))?;
    // Reaped if it exits while this run still goes (it usually outlives the run).
    std::thread::spawn(move || keeper.wait());
    Ok(())
}

/// The keeper's socket: `<folder>/<binary's fingerprint>.sock`, in a folder that only this
/// user can enter.
pub fn socket_path(persist: &Persist) -> anyhow::Result<PathBuf> {
    let folder = &persist.folder;
    std::fs::create_dir_all(folder).with_context(|| format!("create {}", folder.display()))?;
    let meta =
        std::fs::symlink_metadata(folder).with_context(|| format!("stat {}", folder.display()))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let own_uid = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != own_uid {
        anyhow::bail!(
            "{} is not a folder of this user's: no kept connections",
            folder.display()
        );
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod 0700 {}", folder.display()))?;
    }
    let socket = folder.join(format!("{}.sock", fingerprint(&persist.program)));
    // sun_path holds 108 bytes with its terminating NUL.
    if socket.as_os_str().len() > 100 {
        anyhow::bail!("socket path {} is too long", socket.display());
    }
    Ok(socket)
}

/// Names a build of the binary: its path, size and modification time.
fn fingerprint(program: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    program.hash(&mut hasher);
    if let Ok(meta) = std::fs::metadata(program) {
        meta.len().hash(&mut hasher);
        meta.mtime().hash(&mut hasher);
        meta.mtime_nsec().hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_as_ssh_config_does() {
        assert_eq!(Keep::parse_setting("no").ok(), Some(Keep::No));
        assert_eq!(Keep::parse_setting("yes").ok(), Some(Keep::Forever));
        assert_eq!(
            Keep::parse_setting("60").ok(),
            Some(Keep::For(Duration::from_secs(60)))
        );
        assert_eq!(
            Keep::parse_setting("1h30m").ok(),
            Some(Keep::For(Duration::from_secs(5400)))
        );
        let zero = Keep::parse_setting("0").expect_err("0 is ambiguous");
        assert!(zero.to_string().contains("say `no`"), "{zero}");
        assert!(Keep::parse_setting("soon").is_err());
        assert!(Keep::parse_setting("10x").is_err());

        assert_eq!(Keep::from_ssh_option("ControlMaster", "no"), Some(Keep::No));
        assert_eq!(Keep::from_ssh_option("controlmaster", "auto"), None);
        assert_eq!(
            Keep::from_ssh_option("ControlPersist", "0"),
            Some(Keep::Forever)
        );
        assert_eq!(
            Keep::from_ssh_option("ControlPersist", "5m"),
            Some(Keep::For(Duration::from_secs(300)))
        );
        assert_eq!(
            Keep::from_ssh_option("ControlPersist", "no"),
            Some(Keep::No)
        );
        assert_eq!(Keep::from_ssh_option("UserKnownHostsFile", "/x"), None);
    }

    #[test]
    fn the_keepers_folder_is_made_private_and_its_socket_named_per_binary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = dir.path().join("mux");
        std::fs::create_dir(&folder).expect("mkdir");
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let program = dir.path().join("infra");
        std::fs::write(&program, b"one build").expect("write");
        let persist = Persist {
            keep: DEFAULT_KEEP,
            program: program.clone(),
            folder: folder.clone(),
        };
        let first = socket_path(&persist).expect("socket");
        let mode = std::fs::metadata(&folder).expect("stat").mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert_eq!(first.parent(), Some(folder.as_path()));
        std::fs::write(&program, b"another, longer build").expect("rewrite");
        let second = socket_path(&persist).expect("socket");
        assert_ne!(first, second, "a rebuilt binary gets its own keeper");
    }
}
