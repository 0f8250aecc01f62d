//! What a run and the connection keeper say to each other over the keeper's socket: one
//! `Hello` naming the connection, then requests (one per [`Transport`](super::super::Transport)
//! call, numbered, so a run's tasks can have several in flight) and their answers, in any
//! order. Each message is a frame: the length of its JSON as 4 big-endian bytes, the JSON,
//! then the length of its bytes (a file's content, a command's stdin) and the bytes as they
//! are, so a 40 MB file crosses the socket as 40 MB, not as an escaped base64 string.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::super::{Become, ConnectSpec, ExecOptions, ExecOutput, FileAttrs, FileStat, FsStat};

/// Raised whenever a message changes shape; a keeper of another version refuses the hello.
pub const VERSION: u32 = 1;

/// A frame larger than this is refused: no file or command output a run moves is near it,
/// and a corrupt length must not make the reader allocate gigabytes.
const MAX_FRAME: usize = 256 << 20;

/// The first message of a run's socket connection: which host connection it wants.
#[derive(Debug, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    pub spec: ConnectSpec,
    /// How long the connection stays open once no run uses it; `None`: until the keeper
    /// is told to close it.
    pub idle_secs: Option<u64>,
}

/// The keeper's answer to a [`Hello`].
#[derive(Debug, Serialize, Deserialize)]
pub enum HelloReply {
    Ready {
        /// The user the connection is logged in as (decides what `become` escalates).
        login_user: String,
        /// Whether the connection was open already (no login on the host for this run).
        reused: bool,
    },
    Failed(WireError),
}

/// An error as it crosses the socket, keeping what the engine tells apart: a host that
/// cannot be reached, or an operation that failed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireError {
    pub message: String,
    /// `Some((host, detail))` when the error was [`Unreachable`](super::super::Unreachable).
    pub unreachable: Option<(String, String)>,
}

impl WireError {
    pub fn from_error(err: &anyhow::Error) -> WireError {
        let unreachable = err
            .chain()
            .find_map(|e| e.downcast_ref::<super::super::Unreachable>())
            .map(|u| (u.host.clone(), u.detail.clone()));
        WireError {
            message: format!("{err:#}"),
            unreachable,
        }
    }

    pub fn into_error(self) -> anyhow::Error {
        match self.unreachable {
            Some((host, detail)) => anyhow::Error::new(super::super::Unreachable { host, detail }),
            None => anyhow::anyhow!(self.message),
        }
    }
}

/// One [`Transport`](super::super::Transport) call.
#[derive(Debug, Serialize, Deserialize)]
pub enum Op {
    /// `opts.stdin`, when `stdin`, is the request's bytes.
    Exec {
        cmd: String,
        opts: ExecOptions,
        stdin: bool,
    },
    Stat {
        path: String,
        become_: Option<Become>,
    },
    Read {
        path: String,
        become_: Option<Become>,
    },
    /// The content is the request's bytes.
    Write {
        path: String,
        attrs: FileAttrs,
        become_: Option<Become>,
    },
    Mkdir {
        path: String,
        mode: Option<u32>,
        owner: (Option<u32>, Option<u32>),
        become_: Option<Become>,
    },
    ReadDir {
        path: String,
    },
    FsStat {
        path: String,
    },
    /// Close the host connection for good (`meta: reset_connection`): the next run logs in
    /// again.
    Reset,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    pub op: Op,
    /// Sent after the JSON, as they are.
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

/// What a call returns, one variant per kind of result.
#[derive(Debug, Serialize, Deserialize)]
pub enum Answer {
    Exec(ExecOutput),
    Stat(Option<FileStat>),
    /// Whether the file exists; its content is the response's bytes.
    Read(bool),
    Names(Option<Vec<String>>),
    FsStat(Option<FsStat>),
    Done,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Response {
    pub id: u64,
    pub result: Result<Answer, WireError>,
    /// Sent after the JSON, as they are.
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

/// A message and the bytes that travel after its JSON (none for most).
pub trait Framed {
    fn bytes(&self) -> &[u8] {
        &[]
    }
    fn set_bytes(&mut self, _bytes: Vec<u8>) {}
}

impl Framed for Hello {}
impl Framed for HelloReply {}

impl Framed for Request {
    fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    fn set_bytes(&mut self, bytes: Vec<u8>) {
        self.bytes = bytes;
    }
}

impl Framed for Response {
    fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    fn set_bytes(&mut self, bytes: Vec<u8>) {
        self.bytes = bytes;
    }
}

/// Writes one frame: the JSON, then the message's bytes.
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize + Framed>(
    out: &mut W,
    message: &T,
) -> anyhow::Result<()> {
    let body = serde_json::to_vec(message)?;
    let bytes = message.bytes();
    let mut frame = Vec::with_capacity(8 + body.len());
    frame.extend_from_slice(&frame_len(body.len())?.to_be_bytes());
    frame.extend_from_slice(&body);
    frame.extend_from_slice(&frame_len(bytes.len())?.to_be_bytes());
    out.write_all(&frame).await?;
    out.write_all(bytes).await?;
    out.flush().await?;
    Ok(())
}

fn frame_len(len: usize) -> anyhow::Result<u32> {
    u32::try_from(len)
        .ok()
        .filter(|n| (*n as usize) <= MAX_FRAME)
        .ok_or_else(|| anyhow::anyhow!("message of {len} bytes is too large"))
}

/// Reads one frame; `Ok(None)` at a clean end of the stream.
pub async fn read_frame<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de> + Framed>(
    input: &mut R,
) -> anyhow::Result<Option<T>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let body = read_part(input, len).await?;
    let mut message: T = serde_json::from_slice(&body)?;
    input.read_exact(&mut len).await?;
    message.set_bytes(read_part(input, len).await?);
    Ok(Some(message))
}

/// The `len` bytes announced, refused past [`MAX_FRAME`] before allocating.
async fn read_part<R: AsyncRead + Unpin>(input: &mut R, len: [u8; 4]) -> anyhow::Result<Vec<u8>> {
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        anyhow::bail!("frame of {len} bytes announced: refused");
    }
    let mut part = vec![0u8; len];
    input.read_exact(&mut part).await?;
    Ok(part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_carry_bytes_and_errors_across() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let request = Request {
            id: 7,
            op: Op::Write {
                path: "/etc/x".into(),
                attrs: FileAttrs::default(),
                become_: None,
            },
            bytes: vec![0, 255, 10, 13],
        };
        write_frame(&mut a, &request).await.expect("write");
        let back: Request = read_frame(&mut b).await.expect("read").expect("a frame");
        assert!(matches!(back.op, Op::Write { .. }), "{:?}", back.op);
        assert_eq!(back.bytes, vec![0, 255, 10, 13]);
        let err = crate::transport::unreachable::unreachable("h1", "exec `x`", "reset");
        let wire = WireError::from_error(&err.context("task t"));
        let again = wire.into_error();
        assert!(crate::transport::is_unreachable(&again));
        assert_eq!(again.to_string(), "host h1 unreachable: exec `x`: reset");
        let plain = WireError::from_error(&anyhow::anyhow!("rc 1")).into_error();
        assert!(!crate::transport::is_unreachable(&plain));
        drop(a);
        assert!(read_frame::<_, Request>(&mut b)
            .await
            .expect("eof")
            .is_none());
    }

    #[tokio::test]
    async fn a_huge_announced_length_is_refused_before_allocating() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&u32::MAX.to_be_bytes()).await.expect("write");
        let err = read_frame::<_, Request>(&mut b).await.expect_err("refused");
        assert!(err.to_string().contains("refused"), "{err}");
    }
}
