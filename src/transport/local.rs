//! The controller itself as a host (`ansible_connection: local`, `delegate_to: localhost`):
//! commands through `/bin/sh -c`, files through std::fs. Same semantics as ssh: writes are
//! atomic (temp file beside the target, attributes set, fsync, rename, fsync of the
//! folder), owner and group are names or ids (resolved with getpwnam/getgrnam), and
//! `become` goes through `sudo` when we are not already that user (then files go through
//! shell commands run under sudo too).

use std::ffi::CString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;

use anyhow::Context;
use async_trait::async_trait;
use base64::Engine;
use tokio::io::AsyncWriteExt;

use super::shell::quote;
use super::{Become, ExecOptions, ExecOutput, FileAttrs, FileKind, FileStat, Transport};
use crate::fsutil::{write_owned, Mode, Owner};

/// Runs operations on the machine running infra.
pub struct LocalTransport {
    name: String,
}

impl LocalTransport {
    pub fn new(name: &str) -> Self {
        LocalTransport {
            name: name.to_string(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The user we run as.
fn current_user() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; buf outlives the use of pwd's fields.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc != 0 || out.is_null() {
        return None;
    }
    // SAFETY: pw_name points into buf, NUL-terminated by getpwuid_r.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// `Some(user)` when become asks for another user than the one we are.
fn sudo_user(become_: Option<&Become>) -> Option<&Become> {
    let b = become_?;
    let me = current_user();
    if me.as_deref() == Some(b.user.as_str()) {
        return None;
    }
    // SAFETY: geteuid has no preconditions.
    if b.user == unsafe { libc::geteuid() }.to_string() {
        return None;
    }
    Some(b)
}

/// Resolves a user name or numeric uid.
fn lookup_uid(owner: &str) -> anyhow::Result<u32> {
    if let Ok(n) = owner.parse() {
        return Ok(n);
    }
    let c = CString::new(owner).context("user name contains NUL")?;
    let mut buf = vec![0 as libc::c_char; 16384];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: valid pointers for the duration of the call.
    let rc =
        unsafe { libc::getpwnam_r(c.as_ptr(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc != 0 || out.is_null() {
        anyhow::bail!("chown failed: failed to look up user {owner}");
    }
    Ok(pwd.pw_uid)
}

/// Resolves a group name or numeric gid.
fn lookup_gid(group: &str) -> anyhow::Result<u32> {
    if let Ok(n) = group.parse() {
        return Ok(n);
    }
    let c = CString::new(group).context("group name contains NUL")?;
    let mut buf = vec![0 as libc::c_char; 16384];
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::group = std::ptr::null_mut();
    // SAFETY: valid pointers for the duration of the call.
    let rc =
        unsafe { libc::getgrnam_r(c.as_ptr(), &mut grp, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc != 0 || out.is_null() {
        anyhow::bail!("chgrp failed: failed to look up group {group}");
    }
    Ok(grp.gr_gid)
}

fn stat_local(path: &str) -> anyhow::Result<Option<FileStat>> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("stat {path}")),
    };
    let ft = meta.file_type();
    let kind = if ft.is_symlink() {
        FileKind::Symlink
    } else if ft.is_dir() {
        FileKind::Directory
    } else if ft.is_file() {
        FileKind::File
    } else {
        FileKind::Other
    };
    let link_target = if ft.is_symlink() {
        Some(
            std::fs::read_link(path)
                .with_context(|| format!("readlink {path}"))?
                .to_string_lossy()
                .into_owned(),
        )
    } else {
        None
    };
    Ok(Some(FileStat {
        kind,
        mode: meta.permissions().mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        size: meta.len(),
        mtime: meta.mtime(),
        link_target,
    }))
}

/// `statvfs(3)` of `path`; `None` when it fails (as `stat -f` prints nothing then).
fn statvfs_local(path: &str) -> Option<super::FsStat> {
    let c = CString::new(path).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string and `buf` a properly sized out-parameter
    // that statvfs fills before we read it (only on success).
    let mut buf: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut buf) } != 0 {
        return None;
    }
    Some(super::FsStat {
        block_size: buf.f_frsize,
        blocks: buf.f_blocks,
        blocks_available: buf.f_bavail,
        blocks_free: buf.f_bfree,
        inodes: buf.f_files,
        inodes_free: buf.f_ffree,
    })
}

fn write_local(path: &str, content: &[u8], attrs: &FileAttrs) -> anyhow::Result<()> {
    let mode = match attrs.mode {
        Some(mode) => Mode::Set(mode),
        None => Mode::KeepOr(0o644),
    };
    let owner = Owner {
        uid: attrs.owner.as_deref().map(lookup_uid).transpose()?,
        gid: attrs.group.as_deref().map(lookup_gid).transpose()?,
    };
    write_owned(Path::new(path), content, mode, owner)
}

#[async_trait]
impl Transport for LocalTransport {
    fn host(&self) -> &str {
        &self.name
    }

    fn is_local(&self) -> bool {
        true
    }

    async fn exec(&self, cmd: &str, opts: &ExecOptions) -> anyhow::Result<ExecOutput> {
        let mut stdin_bytes = Vec::new();
        let mut command = match sudo_user(opts.become_.as_ref()) {
            Some(b) => {
                let mut c = tokio::process::Command::new("sudo");
                if let Some(pw) = &b.password {
                    c.args(["-S", "-p", ""]);
                    stdin_bytes.extend_from_slice(pw.as_bytes());
                    stdin_bytes.push(b'\n');
                } else {
                    c.arg("-n");
                }
                c.args(["-H", "-u", &b.user, "--", "env"]);
                for (k, v) in &opts.env {
                    c.arg(format!("{k}={v}"));
                }
                c.args(["/bin/sh", "-c", cmd]);
                c
            }
            None => {
                let mut c = tokio::process::Command::new("/bin/sh");
                c.args(["-c", cmd]);
                c.envs(opts.env.iter().map(|(k, v)| (k, v)));
                c
            }
        };
        if let Some(dir) = &opts.chdir {
            command.current_dir(dir);
        }
        if let Some(input) = &opts.stdin {
            stdin_bytes.extend_from_slice(input);
        }
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting /bin/sh -c {cmd:?}"))?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdin pipe"))?;
        let feeder = tokio::spawn(async move {
            let _ = stdin.write_all(&stdin_bytes).await;
            drop(stdin);
        });
        let out = child
            .wait_with_output()
            .await
            .with_context(|| format!("running /bin/sh -c {cmd:?}"))?;
        let _ = feeder.await;
        Ok(ExecOutput {
            rc: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    async fn stat(&self, path: &str, become_: Option<&Become>) -> anyhow::Result<Option<FileStat>> {
        if sudo_user(become_).is_some() {
            return self.stat_as(path, become_).await;
        }
        let p = path.to_string();
        tokio::task::spawn_blocking(move || stat_local(&p))
            .await
            .context("stat task")?
    }

    async fn read_file(
        &self,
        path: &str,
        become_: Option<&Become>,
    ) -> anyhow::Result<Option<Vec<u8>>> {
        if sudo_user(become_).is_some() {
            let opts = ExecOptions {
                become_: become_.cloned(),
                ..Default::default()
            };
            let q = quote(path);
            let out = self
                .exec(
                    &format!("if [ -e {q} ]; then base64 -w0 < {q}; else echo ABSENT; fi"),
                    &opts,
                )
                .await?;
            if out.rc != 0 {
                anyhow::bail!("reading {path}: {}", out.stderr.trim());
            }
            if out.stdout.trim() == "ABSENT" {
                return Ok(None);
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(out.stdout.trim())
                .with_context(|| format!("decoding {path}"))?;
            return Ok(Some(bytes));
        }
        match tokio::fs::read(path).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {path}")),
        }
    }

    async fn read_dir(&self, path: &str) -> anyhow::Result<Option<Vec<String>>> {
        let p = path.to_string();
        tokio::task::spawn_blocking(move || match std::fs::read_dir(&p) {
            Ok(entries) => entries
                .map(|e| {
                    e.map(|e| e.file_name().to_string_lossy().into_owned())
                        .with_context(|| format!("list {p}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()
                .map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("list {p}")),
        })
        .await
        .context("list task")?
    }

    async fn fs_stat(&self, path: &str) -> anyhow::Result<Option<super::FsStat>> {
        let p = path.to_string();
        tokio::task::spawn_blocking(move || statvfs_local(&p))
            .await
            .context("statvfs task")
    }

    async fn write_file(
        &self,
        path: &str,
        content: &[u8],
        attrs: &FileAttrs,
        become_: Option<&Become>,
    ) -> anyhow::Result<()> {
        if sudo_user(become_).is_some() {
            return self.write_as(path, content, attrs, become_).await;
        }
        let (p, c, a) = (path.to_string(), content.to_vec(), attrs.clone());
        tokio::task::spawn_blocking(move || write_local(&p, &c, &a))
            .await
            .context("write task")?
    }
}

impl LocalTransport {
    /// stat through `sudo stat` (become to another user).
    async fn stat_as(
        &self,
        path: &str,
        become_: Option<&Become>,
    ) -> anyhow::Result<Option<FileStat>> {
        let opts = ExecOptions {
            become_: become_.cloned(),
            ..Default::default()
        };
        let q = quote(path);
        let out = self
            .exec(
                &format!("if [ -e {q} ] || [ -L {q} ]; then stat -c '%f %u %g %s %Y' -- {q} && readlink -- {q}; else echo ABSENT; fi"),
                &opts,
            )
            .await?;
        if out.stdout.trim() == "ABSENT" {
            return Ok(None);
        }
        let mut lines = out.stdout.lines();
        let fields: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
        if fields.len() != 5 {
            anyhow::bail!("stat {path}: {}{}", out.stdout.trim(), out.stderr.trim());
        }
        let raw = u32::from_str_radix(fields[0], 16).with_context(|| format!("stat {path}"))?;
        let kind = match raw & 0o170000 {
            0o040000 => FileKind::Directory,
            0o100000 => FileKind::File,
            0o120000 => FileKind::Symlink,
            _ => FileKind::Other,
        };
        let num = |s: &str| s.parse::<i64>().with_context(|| format!("stat {path}"));
        Ok(Some(FileStat {
            kind,
            mode: raw & 0o7777,
            uid: num(fields[1])? as u32,
            gid: num(fields[2])? as u32,
            size: num(fields[3])? as u64,
            mtime: num(fields[4])?,
            link_target: lines
                .next()
                .filter(|_| kind == FileKind::Symlink)
                .map(String::from),
        }))
    }

    /// Atomic write through a shell under sudo: temp beside, attrs, sync, rename.
    async fn write_as(
        &self,
        path: &str,
        content: &[u8],
        attrs: &FileAttrs,
        become_: Option<&Become>,
    ) -> anyhow::Result<()> {
        let dir = match path.rsplit_once('/') {
            Some(("", _)) => "/".to_string(),
            Some((d, _)) => d.to_string(),
            None => ".".to_string(),
        };
        let base = path.rsplit('/').next().unwrap_or(path);
        let tmp = format!("{dir}/.{base}.infra-tmp-{:08x}", rand::random::<u32>());
        let (q, t) = (quote(path), quote(&tmp));
        let mut script = format!(
            "set -e; umask 077; trap 'rm -f {t}' EXIT; base64 -d > {t}; \
             if [ -e {q} ]; then chmod --reference={q} {t}; chown --reference={q} {t} 2>/dev/null || true; \
             else chmod 0644 {t}; fi; "
        );
        if let Some(m) = attrs.mode {
            script.push_str(&format!("chmod {:04o} {t}; ", m));
        }
        if let Some(o) = &attrs.owner {
            script.push_str(&format!("chown {} {t}; ", quote(o)));
        }
        if let Some(g) = &attrs.group {
            script.push_str(&format!("chgrp {} {t}; ", quote(g)));
        }
        script.push_str(&format!("sync {t}; mv -f {t} {q}; trap - EXIT"));
        let opts = ExecOptions {
            stdin: Some(
                base64::engine::general_purpose::STANDARD
                    .encode(content)
                    .into_bytes(),
            ),
            become_: become_.cloned(),
            ..Default::default()
        };
        let out = self.exec(&script, &opts).await?;
        if out.rc != 0 {
            anyhow::bail!("writing {path}: {}", out.stderr.trim());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn write_is_atomic_and_keeps_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let p = path.to_str().unwrap();
        let t = LocalTransport::new("local");
        t.write_file(
            p,
            b"one",
            &FileAttrs {
                mode: Some(0o600),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
        t.write_file(p, b"two", &FileAttrs::default(), None)
            .await
            .unwrap();
        let st = t.stat(p, None).await.unwrap().unwrap();
        assert_eq!((st.kind, st.mode, st.size), (FileKind::File, 0o600, 3));
        assert_eq!(t.read_file(p, None).await.unwrap().unwrap(), b"two");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
        assert!(t
            .read_file(&format!("{p}.missing"), None)
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn exec_passes_stdin_env_and_chdir() {
        let t = LocalTransport::new("local");
        let opts = ExecOptions {
            stdin: Some(b"hello".to_vec()),
            env: vec![("INFRA_X".into(), "42".into())],
            chdir: Some("/tmp".into()),
            become_: None,
        };
        let out = t
            .exec("cat; echo \" $INFRA_X $(pwd)\"; exit 3", &opts)
            .await
            .unwrap();
        assert_eq!(out.stdout, "hello 42 /tmp\n");
        assert_eq!(out.rc, 3);
    }

    #[tokio::test]
    async fn owner_by_name_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let p = p.to_str().unwrap();
        let t = LocalTransport::new("local");
        let attrs = FileAttrs {
            owner: Some("nobody".into()),
            group: Some("nogroup".into()),
            mode: None,
        };
        t.write_file(p, b"x", &attrs, None).await.unwrap();
        let st = t.stat(p, None).await.unwrap().unwrap();
        assert_eq!(st.uid, lookup_uid("nobody").unwrap());
        assert_eq!(st.mode, 0o644);
        let bad = FileAttrs {
            owner: Some("no-such-user-xyz".into()),
            ..Default::default()
        };
        assert!(t.write_file(p, b"y", &bad, None).await.is_err());
        assert_eq!(t.read_file(p, None).await.unwrap().unwrap(), b"x");
        let l = dir.path().join("l");
        std::os::unix::fs::symlink("/etc", &l).unwrap();
        let st = t.stat(l.to_str().unwrap(), None).await.unwrap().unwrap();
        assert_eq!(st.kind, FileKind::Symlink);
        assert_eq!(st.link_target.as_deref(), Some("/etc"));
    }

    #[tokio::test]
    async fn a_bind_mounted_file_is_written_in_place() {
        // Like a container's /etc/hosts: rename over a mount point fails with EBUSY.
        let dir = tempfile::tempdir().unwrap();
        let (src, target) = (dir.path().join("src"), dir.path().join("target"));
        std::fs::write(&src, "old\n").unwrap();
        std::fs::write(&target, "").unwrap();
        let mount = std::process::Command::new("mount")
            .arg("--bind")
            .args([&src, &target])
            .status()
            .expect("mount(8) is needed (tests run as root)");
        assert!(mount.success(), "mount --bind failed (tests run as root)");
        let t = LocalTransport::new("local");
        let res = t
            .write_file(
                target.to_str().unwrap(),
                b"new\n",
                &FileAttrs::default(),
                None,
            )
            .await;
        let _ = std::process::Command::new("umount").arg(&target).status();
        res.unwrap();
        assert_eq!(std::fs::read_to_string(&src).unwrap(), "new\n");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2, "no temp file left behind");
    }

    #[tokio::test]
    async fn become_as_another_user_goes_through_sudo() {
        let t = LocalTransport::new("local");
        let opts = ExecOptions {
            become_: Some(Become {
                user: "nobody".into(),
                password: None,
            }),
            ..Default::default()
        };
        let out = t.exec("id -un", &opts).await.unwrap();
        assert_eq!(out.stdout.trim(), "nobody", "{}", out.stderr);
        let me = current_user().unwrap();
        let same = ExecOptions {
            become_: Some(Become {
                user: me.clone(),
                password: None,
            }),
            ..Default::default()
        };
        assert_eq!(t.exec("id -un", &same).await.unwrap().stdout.trim(), me);
    }
}
