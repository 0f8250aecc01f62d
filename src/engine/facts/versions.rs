//! The answers of `systemctl --version` and the interpreter's `--version`, kept on the
//! controller between runs.
//!
//! Why: fact gathering asks both on every run, and each is a process on the host
//! (`systemctl` loads systemd's shared library: about 4 ms of host CPU; the interpreter
//! about 2 ms) for an answer that changes only when the program's file is replaced. The
//! fact exec is told the path the controller knows for each; a host that finds that same
//! path skips the program, and the controller checks the file's metadata instead (one SFTP
//! stat, sent while the exec runs). Only an exact match of path, size, mtime, owner and
//! mode is used, and only for a regular file; anything else runs the program (in a second
//! exec on that host) and the answer is stored for the next run.
//!
//! Not per host: the answer is a function of the file, so two hosts built from one image
//! share an entry. Stored in `cache/program-versions.json` under the controller's infra
//! home ([`crate::fsutil::infra_home`]), written atomically; a cache that cannot be read is
//! empty, one that cannot be written is kept in memory for this run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use crate::transport::{FileKind, FileStat};

/// The programs whose answers are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    Systemctl,
    Python,
}

impl Program {
    fn name(self) -> &'static str {
        match self {
            Program::Systemctl => "systemctl",
            Program::Python => "python",
        }
    }
}

/// At most this many answers are kept (the most recently stored).
const MAX_ENTRIES: usize = 256;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    /// By [`key`].
    #[serde(default)]
    answers: BTreeMap<String, Answer>,
    /// Per program, the path its last answer came from: the one the exec is told.
    #[serde(default)]
    latest: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Answer {
    text: String,
    /// Order of storing, to drop the oldest past [`MAX_ENTRIES`].
    stored: u64,
}

/// The cache (see the module doc).
pub struct Versions {
    file: Option<PathBuf>,
    stored: Mutex<Stored>,
}

/// The key of a file's answer; `None` for anything but a regular file (a symlink's own
/// metadata does not change when its target does).
fn key(path: &str, st: &FileStat) -> Option<String> {
    (st.kind == FileKind::File).then(|| {
        format!(
            "{path}|{}|{}|{}|{}|{:o}",
            st.size, st.mtime, st.uid, st.gid, st.mode
        )
    })
}

impl Versions {
    /// The process-wide cache, read from the infra home on first use.
    pub fn global() -> &'static Versions {
        static GLOBAL: OnceLock<Versions> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            Versions::at(
                crate::fsutil::infra_home()
                    .map(|home| home.join("cache").join("program-versions.json")),
            )
        })
    }

    /// A cache kept in `file` (in memory only when `None`).
    pub fn at(file: Option<PathBuf>) -> Versions {
        let stored = file
            .as_ref()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Versions {
            file,
            stored: Mutex::new(stored),
        }
    }

    /// The path the last answer for `program` came from.
    pub fn latest(&self, program: Program) -> Option<String> {
        let stored = self.stored.lock().ok()?;
        stored.latest.get(program.name()).cloned()
    }

    /// The stored answer for the file at `path` with metadata `st`.
    pub fn lookup(&self, path: &str, st: &FileStat) -> Option<String> {
        let key = key(path, st)?;
        let stored = self.stored.lock().ok()?;
        stored.answers.get(&key).map(|a| a.text.clone())
    }

    /// Keeps `text` as the answer of `program` at `path` with metadata `st`, and writes
    /// the cache out. Nothing is kept for a file that is not a regular one.
    pub fn store(&self, program: Program, path: &str, st: &FileStat, text: &str) {
        let Some(key) = key(path, st) else {
            return;
        };
        let Ok(mut stored) = self.stored.lock() else {
            return;
        };
        let unchanged = stored.answers.get(&key).is_some_and(|a| a.text == text)
            && stored.latest.get(program.name()).map(String::as_str) == Some(path);
        if unchanged {
            return;
        }
        let next = stored.answers.values().map(|a| a.stored).max().unwrap_or(0) + 1;
        stored.answers.insert(
            key,
            Answer {
                text: text.to_string(),
                stored: next,
            },
        );
        stored
            .latest
            .insert(program.name().to_string(), path.to_string());
        while stored.answers.len() > MAX_ENTRIES {
            let oldest = stored
                .answers
                .iter()
                .min_by_key(|(_, a)| a.stored)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => stored.answers.remove(&k),
                None => break,
            };
        }
        // Written after the lock is let go (the write syncs to disk; other hosts' gatherings
        // need the lock meanwhile). Two stores racing may write their snapshots out of
        // order: the file then misses an answer, which the next run asks again.
        let snapshot = serde_json::to_vec_pretty(&*stored);
        drop(stored);
        if let Err(e) = self.write(snapshot) {
            tracing::debug!("program versions cache not written: {e:#}");
        }
    }

    fn write(&self, snapshot: serde_json::Result<Vec<u8>>) -> anyhow::Result<()> {
        use anyhow::Context as _;
        let Some(file) = &self.file else {
            return Ok(());
        };
        let bytes = snapshot.context("serialising the cache")?;
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        crate::fsutil::write_atomic(file, &bytes, crate::fsutil::Mode::Set(0o600))
            .with_context(|| format!("writing {}", file.display()))
    }
}

/// A root-owned executable regular file's metadata, for the tests of the cache's users.
#[cfg(test)]
pub(super) fn regular(size: u64, mtime: i64) -> FileStat {
    FileStat {
        kind: FileKind::File,
        mode: 0o755,
        uid: 0,
        gid: 0,
        size,
        mtime,
        link_target: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_used_only_for_the_same_file_metadata() {
        let v = Versions::at(None);
        let st = regular(1000, 1_700_000_000);
        assert_eq!(v.latest(Program::Systemctl), None);
        v.store(
            Program::Systemctl,
            "/usr/bin/systemctl",
            &st,
            "systemd 252\n+PAM\n",
        );
        assert_eq!(
            v.latest(Program::Systemctl).as_deref(),
            Some("/usr/bin/systemctl")
        );
        assert_eq!(
            v.lookup("/usr/bin/systemctl", &st).as_deref(),
            Some("systemd 252\n+PAM\n")
        );
        for changed in [
            regular(1001, 1_700_000_000),
            regular(1000, 1_700_000_001),
            FileStat {
                uid: 5,
                ..st.clone()
            },
            FileStat {
                mode: 0o700,
                ..st.clone()
            },
        ] {
            assert_eq!(
                v.lookup("/usr/bin/systemctl", &changed),
                None,
                "{changed:?}"
            );
        }
        assert_eq!(v.lookup("/bin/systemctl", &st), None, "another path");
        assert_eq!(v.latest(Program::Python), None, "per program");
    }

    #[test]
    fn a_symlink_is_never_answered_from_the_cache() {
        let v = Versions::at(None);
        let link = FileStat {
            kind: FileKind::Symlink,
            link_target: Some("python3.11".into()),
            ..regular(9, 1)
        };
        v.store(Program::Python, "/usr/bin/python3", &link, "Python 3.11.2");
        assert_eq!(v.lookup("/usr/bin/python3", &link), None);
        assert_eq!(v.latest(Program::Python), None);
    }

    #[test]
    fn the_cache_survives_the_process_and_a_broken_file_reads_as_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("cache").join("program-versions.json");
        let st = regular(7, 8);
        Versions::at(Some(file.clone())).store(
            Program::Python,
            "/usr/bin/python3.11",
            &st,
            "Python 3.11.2",
        );
        let again = Versions::at(Some(file.clone()));
        assert_eq!(
            again.lookup("/usr/bin/python3.11", &st).as_deref(),
            Some("Python 3.11.2")
        );
        assert_eq!(
            again.latest(Program::Python).as_deref(),
            Some("/usr/bin/python3.11")
        );
        std::fs::write(&file, b"{ not json").expect("write");
        let broken = Versions::at(Some(file));
        assert_eq!(broken.lookup("/usr/bin/python3.11", &st), None);
    }

    #[test]
    fn the_oldest_answers_go_past_the_bound() {
        let v = Versions::at(None);
        for i in 0..(MAX_ENTRIES as u64 + 5) {
            v.store(Program::Python, "/p", &regular(i, 0), &format!("v{i}"));
        }
        assert_eq!(v.lookup("/p", &regular(0, 0)), None, "the first went");
        assert_eq!(
            v.lookup("/p", &regular(MAX_ENTRIES as u64 + 4, 0))
                .as_deref(),
            Some(&*format!("v{}", MAX_ENTRIES + 4))
        );
        assert_eq!(v.stored.lock().expect("lock").answers.len(), MAX_ENTRIES);
    }
}
