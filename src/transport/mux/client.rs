//! A run's side of a kept connection: a [`Transport`] whose calls go over the keeper's
//! socket. Calls are numbered and answered in any order, so the engine's tasks keep
//! several operations in flight on one host, as they do on a direct connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::oneshot;

use super::super::unreachable::unreachable;
use super::super::{
    Become, ExecOptions, ExecOutput, FileAttrs, FileStat, FsStat, Owner, Transport,
};
use super::lock;
use super::wire::{self, Answer, Op, Request, Response};

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Response>>>>;

pub struct MuxTransport {
    name: String,
    login_user: String,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Pending,
    next_id: AtomicU64,
    reader: tokio::task::JoinHandle<()>,
}

impl MuxTransport {
    /// Takes over a socket connection whose hello was answered `Ready`.
    pub fn new(name: &str, login_user: String, stream: UnixStream) -> MuxTransport {
        let (mut read_half, write_half) = stream.into_split();
        let pending: Pending = Arc::default();
        let answers = pending.clone();
        let reader = tokio::spawn(async move {
            while let Ok(Some(response)) = wire::read_frame::<_, Response>(&mut read_half).await {
                let waiter = lock(&answers).remove(&response.id);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(response);
                }
            }
            // The keeper went away: every call still waiting fails (its sender is dropped).
            lock(&answers).clear();
        });
        MuxTransport {
            name: name.to_string(),
            login_user,
            writer: tokio::sync::Mutex::new(write_half),
            pending,
            next_id: AtomicU64::new(1),
            reader,
        }
    }

    async fn call(&self, what: &str, op: Op) -> anyhow::Result<Answer> {
        Ok(self.call_with_bytes(what, op, Vec::new()).await?.0)
    }

    /// A call whose request or answer carries bytes (stdin, a file's content).
    async fn call_with_bytes(
        &self,
        what: &str,
        op: Op,
        bytes: Vec<u8>,
    ) -> anyhow::Result<(Answer, Vec<u8>)> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        let sent = {
            let mut writer = self.writer.lock().await;
            wire::write_frame(&mut *writer, &Request { id, op, bytes }).await
        };
        if let Err(e) = sent {
            lock(&self.pending).remove(&id);
            return Err(self.keeper_gone(what, e));
        }
        match rx.await {
            Ok(Response {
                result: Ok(answer),
                bytes,
                ..
            }) => Ok((answer, bytes)),
            Ok(Response { result: Err(e), .. }) => Err(e.into_error()),
            Err(_) => Err(self.keeper_gone(what, "the connection keeper closed the socket")),
        }
    }

    /// The keeper process died or closed the socket: the host is as good as unreachable
    /// for this run.
    fn keeper_gone(&self, what: &str, err: impl std::fmt::Display) -> anyhow::Error {
        unreachable(&self.name, what, format!("kept connection lost: {err}"))
    }

    fn unexpected(&self, what: &str, answer: Answer) -> anyhow::Error {
        anyhow::anyhow!(
            "{}: {what}: the connection keeper answered {answer:?}",
            self.name
        )
    }
}

impl Drop for MuxTransport {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

#[async_trait]
impl Transport for MuxTransport {
    fn host(&self) -> &str {
        &self.name
    }

    async fn exec(&self, cmd: &str, opts: &ExecOptions) -> anyhow::Result<ExecOutput> {
        let what = format!("exec `{}`", super::super::ssh::summary(cmd));
        let started = std::time::Instant::now();
        let op = Op::Exec {
            cmd: cmd.to_string(),
            opts: ExecOptions {
                stdin: None,
                ..opts.clone()
            },
            stdin: opts.stdin.is_some(),
        };
        let stdin = opts.stdin.clone().unwrap_or_default();
        match self.call_with_bytes(&what, op, stdin).await?.0 {
            Answer::Exec(out) => {
                // The same debug line a direct connection prints: the keeper logs nothing
                // (it cannot tell a `no_log` task's command from another).
                tracing::debug!(
                    host = %self.name,
                    rc = out.rc,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "{} (kept connection)",
                    super::super::loggable(&what)
                );
                Ok(out)
            }
            other => Err(self.unexpected(&what, other)),
        }
    }

    async fn stat(&self, path: &str, become_: Option<&Become>) -> anyhow::Result<Option<FileStat>> {
        let what = format!("stat {path}");
        let op = Op::Stat {
            path: path.to_string(),
            become_: become_.cloned(),
        };
        match self.call(&what, op).await? {
            Answer::Stat(stat) => Ok(stat),
            other => Err(self.unexpected(&what, other)),
        }
    }

    async fn read_file(
        &self,
        path: &str,
        become_: Option<&Become>,
    ) -> anyhow::Result<Option<Vec<u8>>> {
        let what = format!("read {path}");
        let op = Op::Read {
            path: path.to_string(),
            become_: become_.cloned(),
        };
        match self.call_with_bytes(&what, op, Vec::new()).await? {
            (Answer::Read(found), content) => Ok(found.then_some(content)),
            (other, _) => Err(self.unexpected(&what, other)),
        }
    }

    async fn write_file(
        &self,
        path: &str,
        content: &[u8],
        attrs: &FileAttrs,
        become_: Option<&Become>,
    ) -> anyhow::Result<()> {
        let what = format!("write {path}");
        let op = Op::Write {
            path: path.to_string(),
            attrs: attrs.clone(),
            become_: become_.cloned(),
        };
        match self.call_with_bytes(&what, op, content.to_vec()).await?.0 {
            Answer::Done => Ok(()),
            other => Err(self.unexpected(&what, other)),
        }
    }

    async fn mkdir(
        &self,
        path: &str,
        mode: Option<u32>,
        owner: Owner,
        become_: Option<&Become>,
    ) -> anyhow::Result<()> {
        let what = format!("mkdir {path}");
        let op = Op::Mkdir {
            path: path.to_string(),
            mode,
            owner,
            become_: become_.cloned(),
        };
        match self.call(&what, op).await? {
            Answer::Done => Ok(()),
            other => Err(self.unexpected(&what, other)),
        }
    }

    fn escalates(&self, become_: Option<&Become>) -> bool {
        become_.is_some_and(|b| super::super::ssh::become_user(b) != self.login_user)
    }

    async fn read_dir(&self, path: &str) -> anyhow::Result<Option<Vec<String>>> {
        let what = format!("list {path}");
        let op = Op::ReadDir {
            path: path.to_string(),
        };
        match self.call(&what, op).await? {
            Answer::Names(names) => Ok(names),
            other => Err(self.unexpected(&what, other)),
        }
    }

    async fn fs_stat(&self, path: &str) -> anyhow::Result<Option<FsStat>> {
        let what = format!("statvfs {path}");
        let op = Op::FsStat {
            path: path.to_string(),
        };
        match self.call(&what, op).await? {
            Answer::FsStat(stat) => Ok(stat),
            other => Err(self.unexpected(&what, other)),
        }
    }

    /// The run is over: the socket closes, the connection stays with the keeper.
    async fn close(&self) {}

    /// `meta: reset_connection`: the keeper closes the host connection itself.
    async fn reset(&self) {
        let _ = self.call("reset the connection", Op::Reset).await;
    }
}
