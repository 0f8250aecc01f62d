//! Writing a local file the one way the design asks: a temp file beside the target, fsync,
//! rename over the target, fsync of the folder. A reader (or a crash) sees the old content
//! or the new, never half of it. Used by the provider's state folder, the cluster CA, the
//! agent's task table, the CLI's context file and the proxy's nginx config.
//!
//! Owns: local files only. May call: nothing else in the crate.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Context as _;

/// The mode the written file gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Exactly this mode (the umask does not apply).
    Set(u32),
    /// The replaced file's mode; this one when there is no file yet.
    KeepOr(u32),
}

/// Replaces `path` with `bytes` atomically; the folder must exist. On failure the target is
/// untouched and no temp file is left behind.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Mode) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mode = match mode {
        Mode::Set(mode) => mode,
        Mode::KeepOr(default) => std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(default),
    };
    let result = (|| -> anyhow::Result<()> {
        // Dropped (and so removed) on every early return below.
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(dir)
            .with_context(|| format!("creating a temp file in {}", dir.display()))?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", tmp.path().display()))?;
        tmp.write_all(bytes)
            .and_then(|_| tmp.as_file().sync_all())
            .with_context(|| format!("writing {}", tmp.path().display()))?;
        tmp.persist(path)
            .with_context(|| format!("renaming into {}", path.display()))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.with_context(|| format!("cannot write {}", path.display()))
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
}
