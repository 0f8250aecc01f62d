//! What the tasks of a run have read from one host and may read again: unit states
//! ([`UnitStates`]) and system databases ([`SystemFiles`]). Both are forgotten together
//! whenever something was carried out on the host ([`HostReads::invalidate`]).

use std::collections::HashMap;

use tokio::sync::Mutex;

use super::{HostView, UnitStates};
use crate::transport::FileStat;

/// Per host, per run: shared by every task of the run that reaches the host.
#[derive(Default)]
pub struct HostReads {
    pub units: UnitStates,
    pub files: SystemFiles,
}

impl HostReads {
    /// Forgets every observation: a plan carried out (or a module infra cannot see into)
    /// may have changed any unit or database.
    pub async fn invalidate(&self) {
        self.units.invalidate().await;
        self.files.invalidate().await;
    }
}

/// System databases several tasks of a play read (`/etc/passwd` and `/etc/group` for every
/// owner, group and account, dpkg's status and apt's stamps for every package task), read
/// over the transport as the login user once, then taken from here until a change.
///
/// Why: on a converged host these reads are most of what file, template, user and group
/// tasks cost; a play that names an owner on ten files read the same two files ten times.
/// Truthfulness: [`HostReads::invalidate`] runs after every plan carried out, so a read is
/// never older than the last change made in the run (tasks on one host run one at a time;
/// a read that raced an invalidation is not kept, see `generation`).
#[derive(Default)]
pub struct SystemFiles {
    inner: Mutex<Files>,
}

#[derive(Default)]
struct Files {
    contents: HashMap<String, Option<Vec<u8>>>,
    stats: HashMap<String, Option<FileStat>>,
    /// Bumped by every invalidation.
    generation: u64,
}

impl SystemFiles {
    /// The content of `path` (`None`: it does not exist), read as the login user.
    pub async fn read(&self, view: &HostView, path: &str) -> anyhow::Result<Option<Vec<u8>>> {
        self.cached(path, |f| &mut f.contents, view.read_file(path, None))
            .await
    }

    /// `lstat` of `path` (`None`: it does not exist), as the login user.
    pub async fn stat(&self, view: &HostView, path: &str) -> anyhow::Result<Option<FileStat>> {
        self.cached(path, |f| &mut f.stats, view.stat(path, None))
            .await
    }

    /// What `table` holds for `path`, else `load`'s answer, kept unless an invalidation came
    /// while it was read. The lock is not held across the read.
    async fn cached<T: Clone>(
        &self,
        path: &str,
        table: fn(&mut Files) -> &mut HashMap<String, T>,
        load: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        let generation = {
            let mut files = self.inner.lock().await;
            if let Some(known) = table(&mut files).get(path) {
                return Ok(known.clone());
            }
            files.generation
        };
        let loaded = load.await?;
        let mut files = self.inner.lock().await;
        if files.generation == generation {
            table(&mut files).insert(path.to_string(), loaded.clone());
        }
        Ok(loaded)
    }

    /// Forgets every read.
    pub async fn invalidate(&self) {
        let mut files = self.inner.lock().await;
        files.contents.clear();
        files.stats.clear();
        files.generation += 1;
    }
}
