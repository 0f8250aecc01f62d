//! Modules: one file each (apt, copy, template, file, lineinfile, service, ...).
//!
//! The contract (DESIGN.md): a module *observes* the host through the transport, then
//! *plans*: it returns a [`Plan`], which is data: the changes (one-line summaries and text
//! diffs) and the operations ([`Op`]) that carry them out. `--check` stops after the plan;
//! a real run hands the very same plan to [`apply`]. So the dry run cannot drift from the
//! real run, and nothing outside `apply` changes a host.
//!
//! Owns: argument specs, observing, planning. May call: transport, template (through
//! [`HostCtx`]).

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::transport::{Become, ExecOptions, ExecOutput, FileAttrs, Transport};
use crate::Vars;

/// One argument a module accepts.
#[derive(Debug, Clone, Copy)]
pub struct ArgDef {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub required: bool,
}

impl ArgDef {
    pub const fn opt(name: &'static str) -> Self {
        ArgDef {
            name,
            aliases: &[],
            required: false,
        }
    }
    pub const fn req(name: &'static str) -> Self {
        ArgDef {
            name,
            aliases: &[],
            required: true,
        }
    }
    pub const fn alias(name: &'static str, aliases: &'static [&'static str]) -> Self {
        ArgDef {
            name,
            aliases,
            required: false,
        }
    }
}

/// What a module accepts, checked when the playbook loads (before any host is touched).
#[derive(Debug, Clone, Copy)]
pub struct ArgSpec {
    pub args: &'static [ArgDef],
    /// Accepts free-form text (`command: ls -l`), stored as the `_raw_params` argument.
    pub free_form: bool,
    /// Groups of arguments of which exactly one must be given (e.g. copy: src | content).
    pub one_of: &'static [&'static [&'static str]],
}

/// Everything a module may use while observing and planning on one host.
pub struct HostCtx {
    pub host: String,
    pub transport: Arc<dyn Transport>,
    /// Privilege escalation for this task, when `become` is on.
    pub become_: Option<Become>,
    /// The task's `environment:`.
    pub env: Vec<(String, String)>,
    pub check_mode: bool,
    pub diff: bool,
    /// All variables visible to this task on this host (for the template module).
    pub vars: Vars,
    /// Folders searched for `src:` of copy/unarchive, in order (role's files/, playbook dir).
    pub file_search: Vec<PathBuf>,
    /// Folders searched for `src:` of template, in order (role's templates/, playbook dir).
    pub template_search: Vec<PathBuf>,
    /// Renders a template file's content with `vars` (trim_blocks, lstrip_blocks).
    pub render: Arc<dyn Fn(&str, &Vars, bool, bool) -> anyhow::Result<String> + Send + Sync>,
}

impl HostCtx {
    /// Runs a read-only command while observing (never a change).
    pub async fn run(&self, cmd: &str) -> anyhow::Result<ExecOutput> {
        let opts = ExecOptions {
            become_: self.become_.clone(),
            env: self.env.clone(),
            ..Default::default()
        };
        self.transport.exec(cmd, &opts).await
    }
}

/// A text diff for `--diff`: what a file (or other text state) was and will be.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TextDiff {
    pub before_header: String,
    pub after_header: String,
    pub before: String,
    pub after: String,
}

/// One change a plan makes, as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// One line, e.g. "install nginx" or "mode 0644 -> 0600".
    pub summary: String,
    pub diff: Option<TextDiff>,
}

/// One operation that `apply` carries out. Plans are made of these, so they are data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Runs a command. A non-zero exit fails the task unless `allow_failure`.
    Exec {
        cmd: String,
        stdin: Option<Vec<u8>>,
        chdir: Option<String>,
        allow_failure: bool,
    },
    /// Writes a file atomically, with its attributes.
    Write {
        path: String,
        content: Vec<u8>,
        attrs: FileAttrs,
        /// Keep a timestamped copy of the old file first.
        backup: bool,
        /// A command that must succeed on the temp file (`%s`) before it replaces `path`.
        validate: Option<String>,
    },
}

/// The result of observing and planning.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub ops: Vec<Op>,
    /// Values to return whatever happens (registered, shown with -v): e.g. stat's `stat`.
    pub result: Vars,
    /// The module cannot predict in check mode (command/shell without creates/removes):
    /// the task is reported skipped in check mode.
    pub unpredictable: bool,
    /// The task fails with this message (assert, fail, a precondition seen while observing).
    pub failed: Option<String>,
    /// Changed even though there are no ops (e.g. a forced handler notification).
    pub force_changed: bool,
}

impl Plan {
    pub fn is_changed(&self) -> bool {
        self.force_changed || !self.changes.is_empty()
    }
}

/// A module: validates arguments, observes and plans.
#[async_trait]
pub trait Module: Send + Sync {
    /// The short name (`copy`); `ansible.builtin.copy` maps to it.
    fn name(&self) -> &'static str;
    fn spec(&self) -> ArgSpec;
    /// Observes the host and returns the plan. Must not change the host.
    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan>;
}

/// What `apply` did: the outputs of `Exec` ops (the last one is what `register` shows as
/// stdout/stderr/rc).
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub outputs: Vec<ExecOutput>,
}

/// Carries out a plan's ops in order. The only place a module's change reaches a host.
pub async fn apply(ctx: &HostCtx, plan: &Plan) -> anyhow::Result<Applied> {
    let _ = (ctx, plan);
    anyhow::bail!("modules::apply is not implemented yet")
}

/// Looks a module up by its name, with or without `ansible.builtin.` / `ansible.legacy.`.
pub fn lookup(name: &str) -> Option<&'static dyn Module> {
    let _ = name;
    None
}

/// All module names, for "did you mean" suggestions.
pub fn names() -> Vec<&'static str> {
    Vec::new()
}

/// Reads a module argument as a bool the way Ansible does (yes/no/true/false/1/0/on/off).
pub fn arg_bool(args: &Vars, name: &str, default: bool) -> anyhow::Result<bool> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Number(n)) => Ok(n.as_i64() != Some(0)),
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "yes" | "true" | "1" | "on" | "y" | "t" => Ok(true),
            "no" | "false" | "0" | "off" | "n" | "f" | "" => Ok(false),
            other => anyhow::bail!("argument {name}: {other:?} is not a boolean"),
        },
        Some(other) => anyhow::bail!("argument {name}: {other} is not a boolean"),
    }
}
