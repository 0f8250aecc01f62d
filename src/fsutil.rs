//! Writing a local file the one way the design asks: a temp file beside the target, owner
//! and mode set, fsync, rename over the target, fsync of the folder. A reader (or a crash)
//! sees the old content or the new, never half of it. Used by the provider's state folder,
//! the cluster CA, the agent's task table, the CLI's context file, the proxy's nginx config
//! and the local transport (the controller as a host).
//!
//! Owns: local files only. May call: nothing else in the crate.

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The controller's own folder: `$INFRA_HOME`, else `$HOME/.infra`; `None` when neither
/// variable is set.
pub fn infra_home() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("INFRA_HOME").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(home));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".infra"))
}

/// The mode the written file gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Exactly this mode (the umask does not apply).
    Set(u32),
    /// The replaced file's mode; this one when there is no file yet.
    KeepOr(u32),
}

/// Who owns the written file: the given ids, or (where `None`) the replaced file's owner
/// and group, or the writer when there is no file yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Owner {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Replaces `path` with `bytes` atomically; the folder must exist. On failure the target is
/// untouched and no temp file is left behind.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Mode) -> anyhow::Result<()> {
    write_owned(path, bytes, mode, Owner::default())
}

/// [`write_atomic`] that also sets the owner, keeping the replaced file's owner and group
/// where `owner` leaves them open. A file that cannot be renamed over because it is a mount
/// point (a container's bind-mounted `/etc/hosts`) is written in place instead, as
/// Ansible's `atomic_move` falls back to: the only way to change it at all.
pub fn write_owned(path: &Path, bytes: &[u8], mode: Mode, owner: Owner) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let existing = std::fs::metadata(path).ok();
    let mode = match mode {
        Mode::Set(mode) => mode,
        Mode::KeepOr(default) => existing
            .as_ref()
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(default),
    };
    let uid = owner.uid.or(existing.as_ref().map(|m| m.uid()));
    let gid = owner.gid.or(existing.as_ref().map(|m| m.gid()));
    let result = (|| -> anyhow::Result<()> {
        // Dropped (and so removed) on every early return below.
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(dir)
            .with_context(|| format!("creating a temp file in {}", dir.display()))?;
        let created = tmp
            .as_file()
            .metadata()
            .with_context(|| format!("reading {}", tmp.path().display()))?;
        if uid.is_some_and(|u| u != created.uid()) || gid.is_some_and(|g| g != created.gid()) {
            std::os::unix::fs::fchown(tmp.as_file(), uid, gid)
                .with_context(|| format!("setting the owner of {}", tmp.path().display()))?;
        }
        // After chown, which clears set-id bits.
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", tmp.path().display()))?;
        tmp.write_all(bytes)
            .and_then(|_| tmp.as_file().sync_all())
            .with_context(|| format!("writing {}", tmp.path().display()))?;
        if let Err(e) = tmp.persist(path) {
            if e.error.raw_os_error() != Some(libc::EBUSY) {
                return Err(e.error).with_context(|| format!("renaming into {}", path.display()));
            }
            write_in_place(path, bytes)?;
        }
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// Overwrites a file that cannot be replaced (see [`write_owned`]).
fn write_in_place(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("opening {} to write in place", path.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {} in place", path.display()))
}

/// Writes `bytes` to `target` atomically with mode 0600, making its folder first when
/// missing: files only their owner reads (the agent's task table and id, the CLI's context
/// file).
pub fn write_private(target: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = target
        .parent()
        .with_context(|| format!("{} has no parent directory", target.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_atomic(target, bytes, Mode::Set(0o600))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn entries(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn set_mode_is_exact_and_replaces_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write_atomic(&path, b"one", Mode::Set(0o600)).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        write_atomic(&path, b"two", Mode::Set(0o644)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(mode_of(&path), 0o644);
        assert_eq!(entries(dir.path()), 1, "no temp left");
    }

    #[test]
    fn keep_mode_keeps_the_replaced_files_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.conf");
        write_atomic(&path, b"one", Mode::KeepOr(0o644)).unwrap();
        assert_eq!(mode_of(&path), 0o644);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&path, b"two", Mode::KeepOr(0o644)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(entries(dir.path()), 1, "no temp left");
    }

    #[test]
    fn a_failed_write_names_the_target_and_leaves_it_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.conf");
        std::fs::write(&path, "old").unwrap();
        // Renaming a file over a folder fails after the temp file was written.
        let folder = dir.path().join("sub");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("inside"), "").unwrap();
        let err = format!(
            "{:#}",
            write_atomic(&folder, b"new", Mode::Set(0o644)).unwrap_err()
        );
        assert!(err.contains("cannot write") && err.contains("sub"), "{err}");
        assert_eq!(entries(dir.path()), 2, "no temp left");
        let missing = dir.path().join("no/such/file");
        assert!(write_atomic(&missing, b"x", Mode::Set(0o644)).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
    }

    #[test]
    fn the_replaced_files_owner_is_kept_unless_one_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("owned");
        std::fs::write(&path, "old").unwrap();
        // Not running as root: only our own ids can be given; the rule is the same.
        let me = std::fs::metadata(&path).unwrap();
        std::os::unix::fs::chown(&path, Some(me.uid()), Some(me.gid())).unwrap();
        let given = Owner {
            uid: None,
            gid: Some(me.gid()),
        };
        write_owned(&path, b"new", Mode::KeepOr(0o644), given).unwrap();
        let after = std::fs::metadata(&path).unwrap();
        assert_eq!((after.uid(), after.gid()), (me.uid(), me.gid()));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(entries(dir.path()), 1, "no temp left");
    }
}
