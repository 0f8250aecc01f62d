//! Runs plays: variable precedence, host selection and batches (`serial`), strategies
//! (linear, free), forks, loops, conditionals, handlers, check/diff, block/rescue/always,
//! and the recap. A failed or unreachable host leaves the play; the others go on.
//!
//! Owns: the run. May call: inventory, playbook, template, modules, transport, report.

use std::path::PathBuf;

use crate::inventory::Inventory;
use crate::Vars;

/// How results are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputMode {
    /// Progress bars on a TTY, Ansible-style lines otherwise.
    #[default]
    Auto,
    /// Ansible-style lines, always.
    Lines,
    /// One JSON document at the end.
    Json,
}

/// Everything one run needs; `infra play` and `infra up` both build this.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub playbook: PathBuf,
    /// Already loaded (and, for `infra up`, filled in by the provider).
    pub inventory: Inventory,
    pub limit: Option<String>,
    pub check: bool,
    pub diff: bool,
    /// Hosts in parallel (default: all of them, up to 256).
    pub forks: usize,
    pub extra_vars: Vars,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    pub output: OutputMode,
    /// Record unknown host keys instead of failing (OpenSSH's accept-new).
    pub accept_new_host_keys: bool,
    /// known_hosts files to check host keys against, besides `~/.ssh/known_hosts`.
    pub known_hosts: Vec<PathBuf>,
    pub roles_path: Vec<PathBuf>,
    pub verbosity: u8,
}

/// Per-host counts, as in Ansible's PLAY RECAP.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HostStats {
    pub ok: u32,
    pub changed: u32,
    pub unreachable: u32,
    pub failed: u32,
    pub skipped: u32,
    pub rescued: u32,
    pub ignored: u32,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct Recap {
    pub hosts: indexmap::IndexMap<String, HostStats>,
}

impl Recap {
    /// 0 all ok, 2 a task failed on some host, 4 some host unreachable and none failed.
    pub fn exit_code(&self) -> i32 {
        if self.hosts.values().any(|s| s.failed > 0) {
            2
        } else if self.hosts.values().any(|s| s.unreachable > 0) {
            4
        } else {
            0
        }
    }
}

/// Loads, validates and runs a playbook. Errors mean invalid input: nothing ran.
pub async fn run(opts: RunOptions) -> anyhow::Result<Recap> {
    let _ = opts;
    anyhow::bail!("the engine is not implemented yet")
}
