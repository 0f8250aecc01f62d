//! What a volume holds, as both sides of a move see it: every directory and regular file
//! (relative path, size, modification time, and with `hashed` its SHA-256), and one
//! checksum over all of it. The receiver copies the files whose size or time differ; the
//! checksums of both sides must agree before the sender deletes its copy.
//!
//! Symlinks, sockets and devices are not copied (a database's data directory holds none);
//! they are listed in `skipped` so that a move of a volume holding them says so.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    /// Relative to the volume directory, `/`-separated.
    pub path: String,
    pub size: u64,
    /// Nanoseconds since the epoch.
    pub mtime_ns: i128,
    pub mode: u32,
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Relative directory paths, parents first.
    pub dirs: Vec<String>,
    pub files: Vec<FileEntry>,
    pub skipped: Vec<String>,
    /// SHA-256 over every path and file hash (only when hashed).
    pub checksum: Option<String>,
}

/// Lists `root` (an app's volumes directory); an absent root is an empty volume.
pub fn scan(root: &Path, hashed: bool) -> anyhow::Result<Manifest> {
    let mut manifest = Manifest::default();
    if root.exists() {
        walk(root, "", hashed, &mut manifest)?;
    }
    manifest.dirs.sort();
    manifest.files.sort_by(|a, b| a.path.cmp(&b.path));
    if hashed {
        manifest.checksum = Some(checksum(&manifest));
    }
    Ok(manifest)
}

fn walk(dir: &Path, prefix: &str, hashed: bool, out: &mut Manifest) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{}", name)
        };
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        if meta.is_dir() {
            out.dirs.push(relative.clone());
            walk(&path, &relative, hashed, out)?;
        } else if meta.is_file() {
            use std::os::unix::fs::MetadataExt;
            out.files.push(FileEntry {
                path: relative,
                size: meta.len(),
                mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
                mode: meta.mode() & 0o7777,
                sha256: if hashed {
                    Some(hash_file(&path)?)
                } else {
                    None
                },
            });
        } else {
            out.skipped.push(relative);
        }
    }
    Ok(())
}

pub fn hash_file(path: &Path) -> anyhow::Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(hasher.finalize()))
}

/// The volume's checksum: directories, then each file's path, size and hash.
fn checksum(manifest: &Manifest) -> String {
    let mut hasher = Sha256::new();
    for dir in &manifest.dirs {
        hasher.update(format!("d {dir}\n"));
    }
    for file in &manifest.files {
        hasher.update(format!(
            "f {} {} {}\n",
            file.path,
            file.size,
            file.sha256.as_deref().unwrap_or("-")
        ));
    }
    hex::encode(hasher.finalize())
}

/// Whether a relative path from a peer stays inside the volume (no absolute path, no `..`).
pub fn is_safe_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_follows_the_content() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/f"), "one").unwrap();
        let first = scan(dir.path(), true).unwrap();
        assert_eq!(first.dirs, vec!["a", "a/b"]);
        assert_eq!(first.files[0].path, "a/b/f");
        std::fs::write(dir.path().join("a/b/f"), "two").unwrap();
        let second = scan(dir.path(), true).unwrap();
        assert_ne!(first.checksum, second.checksum);
    }

    #[test]
    fn peer_paths_stay_inside() {
        assert!(is_safe_relative("data/x"));
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a"] {
            assert!(!is_safe_relative(bad), "{bad}");
        }
    }
}
