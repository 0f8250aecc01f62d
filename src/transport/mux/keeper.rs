//! The connection keeper, `infra ssh-mux`: a background process that holds SSH connections
//! between runs. The first run that wants a kept connection starts it; each run connects to
//! its socket, names the host connection it wants, and sends its operations there. A
//! connection that no run has used for its idle time is closed, and the keeper exits once
//! it holds none.
//!
//! Only processes of the keeper's own user are served (the socket is 0600 in a 0700
//! folder, and the peer's uid is checked on every connection), since whoever reaches the
//! socket runs commands on the hosts.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use super::super::ssh::SshTransport;
use super::super::{ConnectSpec, Transport};
use super::lock;
use super::wire::{self, Answer, Hello, HelloReply, Op, Request, Response, WireError};

/// How long a kept connection may take to answer a keepalive before a run gives up on it
/// and logs in anew.
const ALIVE_WITHIN: Duration = Duration::from_secs(2);
/// How often idle connections are looked for.
const SWEEP_EVERY: Duration = Duration::from_millis(500);
/// The keeper stays this long with nothing to hold, so a run that just started it (or
/// follows a run whose connections all failed) still finds it.
const EMPTY_GRACE: Duration = Duration::from_secs(2);

/// Serves `socket` until no connection is left to keep. Returns at once when another
/// keeper holds the socket.
pub async fn serve(socket: &Path) -> anyhow::Result<()> {
    let Some(_lock) = take_lock(socket).await? else {
        return Ok(());
    };
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("remove stale {}", socket.display())),
    }
    let listener =
        UnixListener::bind(socket).with_context(|| format!("listen on {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod 0600 {}", socket.display()))?;
    let keeper = Arc::new(Keeper::default());
    // The run that started the keeper connects within its grace time.
    keeper.touch();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let own_uid = unsafe { libc::geteuid() };
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of descriptors, say: wait instead of spinning on the error.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                if !stream.peer_cred().is_ok_and(|c| c.uid() == own_uid) {
                    continue;
                }
                keeper.clients.fetch_add(1, Ordering::SeqCst);
                keeper.touch();
                let keeper = keeper.clone();
                tokio::spawn(async move {
                    serve_client(&keeper, stream).await;
                    keeper.clients.fetch_sub(1, Ordering::SeqCst);
                    keeper.touch();
                });
            }
            _ = sweep.tick() => {
                if keeper.sweep() {
                    break;
                }
            }
        }
    }
    // New runs start a keeper of their own from here on; this one's lock goes with it.
    let _ = std::fs::remove_file(socket);
    Ok(())
}

/// The lock file beside the socket: one keeper per socket, even when several runs start
/// one at the same moment. Waits a little for a keeper that is on its way out.
async fn take_lock(socket: &Path) -> anyhow::Result<Option<std::fs::File>> {
    let mut path = socket.as_os_str().to_owned();
    path.push(".lock");
    let path = PathBuf::from(path);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        // SAFETY: flock on a descriptor this function owns; no memory is passed.
        let taken = unsafe {
            libc::flock(
                std::os::fd::AsRawFd::as_raw_fd(&file),
                libc::LOCK_EX | libc::LOCK_NB,
            )
        } == 0;
        if taken {
            return Ok(Some(file));
        }
        if Instant::now() > deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(Default)]
struct Keeper {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    /// Socket connections open now (runs attached, or saying hello).
    clients: AtomicUsize,
    last_activity: Mutex<Option<Instant>>,
}

/// One host connection, kept or not yet opened.
#[derive(Default)]
struct Slot {
    connection: tokio::sync::Mutex<Option<Arc<SshTransport>>>,
    /// Runs using it now; a used slot is never closed for idleness.
    attached: AtomicUsize,
    last_used: Mutex<Option<Instant>>,
    /// `None`: kept until reset.
    idle: Mutex<Option<Duration>>,
}

/// What makes two runs' connections the same one: everything that decides where the
/// connection goes and how it is checked and logged in. Timeouts and retries only shape
/// the connecting, so they are left out.
fn key_of(spec: &ConnectSpec) -> String {
    format!(
        "{}\0{}\0{}\0{}\0{:?}\0{:?}\0{}",
        spec.name,
        spec.address,
        spec.port,
        spec.user,
        spec.key_file,
        spec.known_hosts,
        spec.accept_new
    )
}

impl Keeper {
    fn touch(&self) {
        *lock(&self.last_activity) = Some(Instant::now());
    }

    /// The slot for `spec`, counted as used from here on (so no sweep closes it between
    /// the lookup and the hello's answer).
    fn check_out(&self, spec: &ConnectSpec) -> Arc<Slot> {
        let mut slots = lock(&self.slots);
        let slot = slots.entry(key_of(spec)).or_default().clone();
        slot.attached.fetch_add(1, Ordering::SeqCst);
        slot
    }

    /// Closes the connections idle past their time; `true` when the keeper has nothing
    /// left to do and should exit.
    fn sweep(&self) -> bool {
        let mut slots = lock(&self.slots);
        slots.retain(|_, slot| {
            if slot.attached.load(Ordering::SeqCst) > 0 {
                return true;
            }
            let Ok(mut connection) = slot.connection.try_lock() else {
                return true;
            };
            let Some(open) = connection.as_ref() else {
                return false;
            };
            let expired = match (*lock(&slot.idle), *lock(&slot.last_used)) {
                (Some(idle), Some(used)) => used.elapsed() >= idle,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if expired {
                let open = open.clone();
                *connection = None;
                tokio::spawn(async move { open.close().await });
            }
            !expired
        });
        let quiet = lock(&self.last_activity).is_none_or(|t| t.elapsed() >= EMPTY_GRACE);
        slots.is_empty() && self.clients.load(Ordering::SeqCst) == 0 && quiet
    }
}

impl Slot {
    /// The open connection when it still answers, else a new one. Two runs asking at once
    /// for the same host log in once.
    async fn attach(&self, hello: &Hello) -> anyhow::Result<(Arc<SshTransport>, bool)> {
        let mut connection = self.connection.lock().await;
        *lock(&self.idle) = hello.idle_secs.map(Duration::from_secs);
        if let Some(open) = connection.take() {
            if open.alive(ALIVE_WITHIN).await {
                open.forget_ids().await;
                *connection = Some(open.clone());
                return Ok((open, true));
            }
            tokio::spawn(async move { open.close().await });
        }
        let fresh = Arc::new(SshTransport::connect(&hello.spec).await?);
        *connection = Some(fresh.clone());
        Ok((fresh, false))
    }

    fn detach(&self) {
        *lock(&self.last_used) = Some(Instant::now());
        self.attached.fetch_sub(1, Ordering::SeqCst);
    }

    /// Closes `used` for good, unless a run has already replaced it.
    async fn reset(&self, used: &Arc<SshTransport>) {
        let mut connection = self.connection.lock().await;
        if connection.as_ref().is_some_and(|c| Arc::ptr_eq(c, used)) {
            *connection = None;
        }
        drop(connection);
        used.close().await;
    }
}

async fn serve_client(keeper: &Keeper, stream: UnixStream) {
    let (mut input, mut output) = stream.into_split();
    let hello = match tokio::time::timeout(
        Duration::from_secs(10),
        wire::read_frame::<_, Hello>(&mut input),
    )
    .await
    {
        Ok(Ok(Some(hello))) => hello,
        _ => return,
    };
    if hello.version != wire::VERSION {
        let refusal = HelloReply::Failed(WireError {
            message: format!(
                "the connection keeper speaks version {}, the run {}",
                wire::VERSION,
                hello.version
            ),
            unreachable: None,
        });
        let _ = wire::write_frame(&mut output, &refusal).await;
        return;
    }
    let slot = keeper.check_out(&hello.spec);
    let attached = slot.attach(&hello).await;
    let reply = match &attached {
        Ok((open, reused)) => HelloReply::Ready {
            login_user: open.login_user().to_string(),
            reused: *reused,
        },
        Err(e) => HelloReply::Failed(WireError::from_error(e)),
    };
    let replied = wire::write_frame(&mut output, &reply).await;
    if let (Ok((open, _)), Ok(())) = (attached, replied) {
        serve_requests(&slot, open, input, output).await;
    }
    slot.detach();
}

/// Runs each request on its own task and writes the answers as they come.
async fn serve_requests(
    slot: &Arc<Slot>,
    open: Arc<SshTransport>,
    mut input: tokio::net::unix::OwnedReadHalf,
    mut output: tokio::net::unix::OwnedWriteHalf,
) {
    let (answers, mut to_write) = mpsc::unbounded_channel::<Response>();
    let writer = tokio::spawn(async move {
        while let Some(response) = to_write.recv().await {
            if wire::write_frame(&mut output, &response).await.is_err() {
                break;
            }
        }
    });
    while let Ok(Some(request)) = wire::read_frame::<_, Request>(&mut input).await {
        let Request { id, op, bytes } = request;
        let open = open.clone();
        let slot = slot.clone();
        let answers = answers.clone();
        tokio::spawn(async move {
            let (result, bytes) = match run(&slot, &open, op, bytes).await {
                Ok((answer, bytes)) => (Ok(answer), bytes),
                Err(e) => (Err(WireError::from_error(&e)), Vec::new()),
            };
            let _ = answers.send(Response { id, result, bytes });
        });
    }
    drop(answers);
    let _ = writer.await;
}

/// Carries out one request (`bytes`: its stdin or content); the answer and its bytes (a
/// file read).
async fn run(
    slot: &Slot,
    open: &Arc<SshTransport>,
    op: Op,
    bytes: Vec<u8>,
) -> anyhow::Result<(Answer, Vec<u8>)> {
    Ok((
        match op {
            Op::Read { path, become_ } => {
                return Ok(match open.read_file(&path, become_.as_ref()).await? {
                    Some(content) => (Answer::Read(true), content),
                    None => (Answer::Read(false), Vec::new()),
                })
            }
            Op::Exec {
                cmd,
                mut opts,
                stdin,
            } => {
                opts.stdin = stdin.then_some(bytes);
                Answer::Exec(open.exec(&cmd, &opts).await?)
            }
            Op::Stat { path, become_ } => Answer::Stat(open.stat(&path, become_.as_ref()).await?),
            Op::Write {
                path,
                attrs,
                become_,
            } => {
                open.write_file(&path, &bytes, &attrs, become_.as_ref())
                    .await?;
                Answer::Done
            }
            Op::Mkdir {
                path,
                mode,
                owner,
                become_,
            } => {
                open.mkdir(&path, mode, owner, become_.as_ref()).await?;
                Answer::Done
            }
            Op::ReadDir { path } => Answer::Names(open.read_dir(&path).await?),
            Op::FsStat { path } => Answer::FsStat(open.fs_stat(&path).await?),
            Op::Reset => {
                slot.reset(open).await;
                Answer::Done
            }
        },
        Vec::new(),
    ))
}
