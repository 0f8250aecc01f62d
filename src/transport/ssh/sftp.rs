//! File operations over the connection's one SFTP session, as the login user: `lstat`
//! (+ `readlink`), whole-file reads, and atomic writes (temp file beside the target, owner
//! and mode set on it, fsync, then posix-rename over the target).

use futures::{StreamExt, TryStreamExt};
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::client::RawSftpSession;
use russh_sftp::protocol::{FileAttributes, FileType, OpenFlags, Packet, StatusCode};

use super::stats::{received, sftp_request};
use crate::transport::{FileKind, FileStat, FsStat};

const POSIX_RENAME: &str = "posix-rename@openssh.com";
const FSYNC: &str = "fsync@openssh.com";
const STATVFS: &str = "statvfs@openssh.com";
/// Bytes per read/write request (OpenSSH accepts up to 256 KiB; stay well below).
const CHUNK: usize = 32 * 1024;
/// SFTP requests kept in flight for one read or write.
const PIPELINE: usize = 16;
/// Seconds one SFTP request may take (an fsync of a big file included).
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// An open SFTP session and the extensions the server offers.
pub struct Sftp {
    raw: RawSftpSession,
    has_fsync: bool,
    has_posix_rename: bool,
    has_statvfs: bool,
}

/// Whether an SFTP error means "no such file".
pub fn is_not_found(err: &SftpError) -> bool {
    matches!(err, SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile)
}

/// What to give the temp file before it replaces the target.
#[derive(Debug, Clone, Copy, Default)]
pub struct TempAttrs {
    pub mode: u32,
    /// Owner to give it; `None` keeps the login user.
    pub uid: Option<u32>,
    /// Group to give it; `None` keeps the login user's group.
    pub gid: Option<u32>,
}

impl Sftp {
    /// Starts the SFTP subsystem on `channel`.
    pub async fn start(channel: russh::Channel<russh::client::Msg>) -> anyhow::Result<Sftp> {
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|e| anyhow::anyhow!("request the sftp subsystem: {e}"))?;
        let raw = RawSftpSession::new(channel.into_stream());
        raw.set_timeout(REQUEST_TIMEOUT_SECS);
        let version = raw
            .init()
            .await
            .map_err(|e| anyhow::anyhow!("start SFTP: {e}"))?;
        Ok(Sftp {
            raw,
            has_fsync: version.extensions.contains_key(FSYNC),
            has_posix_rename: version.extensions.contains_key(POSIX_RENAME),
            has_statvfs: version.extensions.contains_key(STATVFS),
        })
    }

    /// The session, for one request (counted: each is a round trip).
    fn req(&self) -> &RawSftpSession {
        sftp_request();
        &self.raw
    }

    /// `lstat`, plus the target of a symlink.
    pub async fn stat(&self, path: &str) -> Result<Option<FileStat>, SftpError> {
        let attrs = match self.req().lstat(path).await {
            Ok(a) => a.attrs,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let kind = match attrs.file_type() {
            FileType::File => FileKind::File,
            FileType::Dir => FileKind::Directory,
            FileType::Symlink => FileKind::Symlink,
            FileType::Other => FileKind::Other,
        };
        let link_target = if kind == FileKind::Symlink {
            let name = self.req().readlink(path).await?;
            name.files.into_iter().next().map(|f| f.filename)
        } else {
            None
        };
        Ok(Some(FileStat {
            kind,
            mode: attrs.permissions.unwrap_or(0) & 0o7777,
            uid: attrs.uid.unwrap_or(0),
            gid: attrs.gid.unwrap_or(0),
            size: attrs.size.unwrap_or(0),
            mtime: i64::from(attrs.mtime.unwrap_or(0)),
            link_target,
        }))
    }

    /// The entry names of a directory in the server's order, `.` and `..` left out;
    /// `None` when it does not exist.
    pub async fn read_dir(&self, path: &str) -> Result<Option<Vec<String>>, SftpError> {
        let handle = match self.req().opendir(path).await {
            Ok(h) => h.handle,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut names = Vec::new();
        let listed = loop {
            match self.req().readdir(handle.as_str()).await {
                Ok(batch) => names.extend(
                    batch
                        .files
                        .into_iter()
                        .map(|f| f.filename)
                        .filter(|n| n != "." && n != ".."),
                ),
                Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        let closed = self.req().close(handle).await;
        listed?;
        closed?;
        Ok(Some(names))
    }

    /// `statvfs@openssh.com`; `None` when the server lacks it or refuses the path.
    pub async fn fs_stat(&self, path: &str) -> Result<Option<FsStat>, SftpError> {
        if !self.has_statvfs {
            return Ok(None);
        }
        match self.req().statvfs(path).await {
            Ok(v) => Ok(Some(FsStat {
                block_size: v.fragment_size,
                blocks: v.blocks,
                blocks_available: v.blocks_avail,
                blocks_free: v.blocks_free,
                inodes: v.inodes,
                inodes_free: v.inodes_free,
            })),
            Err(SftpError::Status(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The whole file; `None` when it does not exist.
    pub async fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SftpError> {
        let handle = match self
            .req()
            .open(path, OpenFlags::READ, FileAttributes::empty())
            .await
        {
            Ok(h) => h.handle,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        // Most files fit one chunk: their size, content and the close go out together (the
        // server answers in order), one round trip after the open instead of two.
        let (attrs, first, closed) = futures::join!(
            self.req().fstat(&handle),
            self.req().read(&handle, 0, CHUNK as u32),
            self.req().close(handle.clone())
        );
        let size = attrs?.attrs.size.unwrap_or(0) as usize;
        let data = match first {
            Ok(chunk) => {
                received(chunk.data.len());
                chunk.data
            }
            Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => Vec::new(),
            Err(e) => return Err(e),
        };
        closed?;
        if data.len() < CHUNK && data.len() >= size {
            return Ok(Some(data));
        }
        // A bigger file (or one that grew): open it again and read it all.
        let handle = match self
            .req()
            .open(path, OpenFlags::READ, FileAttributes::empty())
            .await
        {
            Ok(h) => h.handle,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let result = self.read_all(&handle).await;
        let closed = self.req().close(handle).await;
        let data = result?;
        closed?;
        Ok(Some(data))
    }

    async fn read_all(&self, handle: &str) -> Result<Vec<u8>, SftpError> {
        // The size and the first chunk in one round trip: most files fit one chunk, and a
        // short read that covers the size the file has is its end.
        let (attrs, first) = futures::join!(
            self.req().fstat(handle),
            self.req().read(handle, 0, CHUNK as u32)
        );
        let size = attrs?.attrs.size.unwrap_or(0) as usize;
        let mut data = match first {
            Ok(chunk) => {
                received(chunk.data.len());
                chunk.data
            }
            Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => Vec::new(),
            Err(e) => return Err(e),
        };
        if data.len() < CHUNK && data.len() >= size {
            return Ok(data);
        }
        // A bigger file: read the rest of the size it has now with several requests in
        // flight, then go on one request at a time until EOF (it may be growing, or a
        // read came short).
        if data.len() == CHUNK {
            let offsets: Vec<u64> = (CHUNK..size).step_by(CHUNK).map(|o| o as u64).collect();
            let mut chunks = futures::stream::iter(offsets)
                .map(|offset| self.req().read(handle, offset, CHUNK as u32))
                .buffered(PIPELINE);
            while let Some(result) = chunks.next().await {
                match result {
                    Ok(chunk) => {
                        received(chunk.data.len());
                        let full = chunk.data.len() == CHUNK;
                        data.extend_from_slice(&chunk.data);
                        if !full {
                            break;
                        }
                    }
                    Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => break,
                    Err(e) => return Err(e),
                }
            }
        }
        loop {
            match self
                .req()
                .read(handle, data.len() as u64, CHUNK as u32)
                .await
            {
                Ok(chunk) if chunk.data.is_empty() => return Ok(data),
                Ok(chunk) => {
                    received(chunk.data.len());
                    data.extend_from_slice(&chunk.data)
                }
                Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => return Ok(data),
                Err(e) => return Err(e),
            }
        }
    }

    /// Creates `temp` (which must not exist) with `content` and `attrs`, fsynced.
    pub async fn write_temp(
        &self,
        temp: &str,
        content: &[u8],
        attrs: TempAttrs,
    ) -> Result<(), SftpError> {
        let initial = FileAttributes {
            permissions: Some(0o600),
            ..FileAttributes::empty()
        };
        let handle = self
            .req()
            .open(
                temp,
                OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE | OpenFlags::TRUNCATE,
                initial,
            )
            .await?
            .handle;
        let result = self.fill(&handle, content, attrs).await;
        let closed = self.req().close(handle).await;
        result?;
        closed?;
        Ok(())
    }

    async fn fill(&self, handle: &str, content: &[u8], attrs: TempAttrs) -> Result<(), SftpError> {
        // Several writes in flight at once: one round trip per chunk would make big files
        // slow over real networks.
        let chunks: Vec<(u64, Vec<u8>)> = content
            .chunks(CHUNK)
            .enumerate()
            .map(|(index, chunk)| ((index * CHUNK) as u64, chunk.to_vec()))
            .collect();
        futures::stream::iter(chunks)
            .map(|(offset, chunk)| self.req().write(handle, offset, chunk))
            .buffer_unordered(PIPELINE)
            .try_for_each(|_| async { Ok(()) })
            .await?;
        // Owner first: chown clears set-id bits, so the mode goes on afterwards.
        if attrs.uid.is_some() || attrs.gid.is_some() {
            let current = self.req().fstat(handle).await?.attrs;
            let uid = attrs.uid.or(current.uid).unwrap_or(0);
            let gid = attrs.gid.or(current.gid).unwrap_or(0);
            // Only when it changes: a non-root login user may not chown at all.
            if current.uid != Some(uid) || current.gid != Some(gid) {
                self.req()
                    .fsetstat(
                        handle,
                        FileAttributes {
                            uid: Some(uid),
                            gid: Some(gid),
                            ..FileAttributes::empty()
                        },
                    )
                    .await?;
            }
        }
        self.req()
            .fsetstat(
                handle,
                FileAttributes {
                    permissions: Some(attrs.mode & 0o7777),
                    ..FileAttributes::empty()
                },
            )
            .await?;
        if self.has_fsync {
            self.req().fsync(handle).await?;
        }
        Ok(())
    }

    /// Whether `rename` can replace an existing file atomically.
    pub fn can_replace(&self) -> bool {
        self.has_posix_rename
    }

    /// Renames `from` over `to`, replacing it atomically (posix-rename@openssh.com).
    pub async fn replace(&self, from: &str, to: &str) -> Result<(), SftpError> {
        let mut data = Vec::with_capacity(from.len() + to.len() + 8);
        for s in [from, to] {
            data.extend_from_slice(&(s.len() as u32).to_be_bytes());
            data.extend_from_slice(s.as_bytes());
        }
        match self.req().extended(POSIX_RENAME, data).await? {
            Packet::Status(s) if s.status_code == StatusCode::Ok => Ok(()),
            Packet::Status(s) => Err(SftpError::Status(s)),
            _ => Err(SftpError::UnexpectedPacket),
        }
    }

    /// `mkdir -p` with SFTP requests, then the directory gets `owner` (uid, gid) and `mode`
    /// when given, owner first as chown clears set-id bits. The directory is made first:
    /// its parent usually exists, so that is one request; a missing parent (`no such file`)
    /// is made first the same way, going up. New directories get mode 0777 less the
    /// server's umask, as `mkdir` gives them.
    pub async fn mkdir_all(
        &self,
        path: &str,
        mode: Option<u32>,
        owner: crate::transport::Owner,
    ) -> Result<(), SftpError> {
        // The directories to make, deepest first, until one is made or already there.
        let mut pending: Vec<&str> = Vec::new();
        let mut current = path.trim_end_matches('/');
        loop {
            match self.mkdir_one(current).await {
                Ok(()) => break,
                Err(e) if is_not_found(&e) => {
                    pending.push(current);
                    match current.rsplit_once('/') {
                        Some((parent, _)) if !parent.is_empty() => current = parent,
                        _ => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        for dir in pending.into_iter().rev() {
            self.mkdir_one(dir).await?;
        }
        if owner.0.is_some() || owner.1.is_some() {
            let attrs = FileAttributes {
                uid: owner.0,
                gid: owner.1,
                ..FileAttributes::empty()
            };
            self.set_owner(path, attrs).await?;
        }
        if let Some(m) = mode {
            let attrs = FileAttributes {
                permissions: Some(m & 0o7777),
                ..FileAttributes::empty()
            };
            self.req().setstat(path.to_string(), attrs).await?;
        }
        Ok(())
    }

    /// Makes one directory; one that is already there is fine, anything else in its place
    /// is not.
    async fn mkdir_one(&self, dir: &str) -> Result<(), SftpError> {
        match self
            .req()
            .mkdir(dir.to_string(), FileAttributes::empty())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Err(e),
            Err(e) => match self.stat(dir).await? {
                Some(st) if st.kind == FileKind::Directory => Ok(()),
                _ => Err(e),
            },
        }
    }

    /// Sets uid and gid; SFTP sends both, so a missing one is the current one.
    async fn set_owner(&self, path: &str, mut attrs: FileAttributes) -> Result<(), SftpError> {
        if attrs.uid.is_none() || attrs.gid.is_none() {
            let current = self.req().lstat(path.to_string()).await?.attrs;
            attrs.uid = attrs.uid.or(current.uid);
            attrs.gid = attrs.gid.or(current.gid);
        }
        self.req()
            .setstat(path.to_string(), attrs)
            .await
            .map(|_| ())
    }

    /// Removes a file (best effort cleanup of a temp file).
    pub async fn remove(&self, path: &str) -> Result<(), SftpError> {
        self.req().remove(path).await.map(|_| ())
    }
}
