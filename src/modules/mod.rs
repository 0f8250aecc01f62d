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
//!
//! # What the engine does with a plan
//!
//! 1. `lookup(name)` (accepts `copy`, `ansible.builtin.copy`, `ansible.legacy.copy`), then
//!    `plan(ctx, args)` with the task's args already templated.
//! 2. `plan.failed` set: the task fails with that message; `plan.result` is registered
//!    (with `failed: true`, `msg`).
//! 3. Check mode: `plan.unpredictable` means "skipped" (command/shell without
//!    creates/removes); otherwise report `plan.is_changed()` and stop. Never call `apply`.
//! 4. Real run: if `plan.ops` is not empty call [`apply`]; register `applied.result` (it is
//!    `plan.result` with the last command's `rc`/`stdout`/`stderr`/`*_lines`/`start`/`end`/
//!    `delta` filled in where the plan left a placeholder for them, and `backup_file`).
//!    When an op fails, `apply` returns an error; if it downcasts to [`OpFailed`], its
//!    `result` is what to register (Ansible registers rc/stdout of a failed command too).
//!    A plan may have ops but no changes: housekeeping Ansible does without reporting a
//!    change (apt's cache refresh, systemd's daemon-reload); apply it, the task stays ok.
//! 5. `changed` = `plan.is_changed()`; the task's `changed_when`/`failed_when` override.
//!
//! # Action modules (need the engine beyond the generic steps above)
//!
//! - `debug`: `msg` is already templated by the engine, the result has `msg`. With `var`,
//!   the module evaluates the expression itself through [`HostCtx::render`] and the result
//!   has `<var>: value` (the engine has nothing special to do).
//! - `set_fact`: `plan.result["ansible_facts"]` is the args (without `cacheable`); the engine
//!   must merge them into the host's variables at set_fact precedence. Never changed.
//! - `assert`: the conditions (`that`) are evaluated by the module through
//!   [`HostCtx::render`] (`{% if COND %}`, Jinja truthiness); the engine needs to do nothing
//!   but honour `plan.failed`. The conditions evaluated are in `plan.result["assertion"]`
//!   (the first one that failed) and `evaluated_to`.
//! - `fail`: `plan.failed` is the message.
//! - `pause`: the module sleeps while planning (in check mode too, as Ansible); a `prompt`
//!   is an error (no interactive input).
//! - `wait_for`: waiting is observation: the loop runs on the host (a shell loop using
//!   bash's `/dev/tcp` or `test -e`/`grep`) inside `plan`, read-only, so it runs in check
//!   mode too (as Ansible's wait_for does) and its plan is never changed; on timeout the
//!   plan is `failed`.
//! - `ping`: one round trip while planning; result `ping: pong`.
//! - `meta`, `include_*`, `import_*` are not modules: the engine handles them.
//!
//! `no_log` is the engine's job: modules put values in results and diffs as they are.
//! Modes in results and summaries are 4-digit octal strings (`"0644"`).

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::transport::{Become, ExecOptions, ExecOutput, FileAttrs};
use crate::Vars;

mod actions;
mod alternatives;
pub mod ansible;
mod apply;
mod apt;
mod apt_key;
mod apt_repository;
pub mod args;
mod authorized_key;
mod blockinfile;
mod command;
mod copy;
mod cron;
mod deb822_repository;
mod debconf;
pub mod diff;
mod fetch;
mod file;
pub mod fileops;
mod find;
mod get_url;
mod getent;
mod git;
mod group;
mod host_reads;
mod hostname;
mod iptables;
mod lineinfile;
mod locale_gen;
pub mod mode;
mod modprobe;
mod mount;
mod package_facts;
mod pip;
mod raw;
mod replace;
mod script;
mod service;
mod service_facts;
mod setup;
mod slurp;
mod stat;
mod sysctl;
mod tempfile;
mod template;
mod timezone;
mod unarchive;
mod unit_states;
mod uri;
mod user;
mod wait_for;

pub use host_reads::{HostReads, SystemFiles};
pub use unit_states::{ReadAhead, UnitStates};

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

impl ArgSpec {
    /// Renames every alias in `args` to its argument's own name, so that a module reads
    /// each argument under one name. The loader does this once, after checking the
    /// arguments (where an argument given under two of its names is already an error).
    pub fn resolve_aliases(&self, args: &mut Vars) {
        for def in self.args {
            for alias in def.aliases {
                if let Some(value) = args.remove(*alias) {
                    args.entry(def.name).or_insert(value);
                }
            }
        }
    }
}

/// Everything a module may use while observing and planning on one host.
pub struct HostCtx {
    pub host: String,
    /// The host as planning may use it: to look, never to write (only [`apply`] writes).
    pub transport: HostView,
    /// Privilege escalation for this task, when `become` is on.
    pub become_: Option<Become>,
    /// The task's `environment:`.
    pub env: Vec<(String, String)>,
    pub check_mode: bool,
    pub diff: bool,
    /// All variables visible to this task on this host (for the template module), shared
    /// with the engine: a copy per task was most of a converged run's work.
    pub vars: Arc<Vars>,
    /// Folders searched for `src:` of copy/unarchive, in order (role's files/, playbook dir).
    pub file_search: Vec<PathBuf>,
    /// Folders searched for `src:` of template, in order (role's templates/, playbook dir).
    pub template_search: Vec<PathBuf>,
    /// What the run's tasks on this host have read and may share: unit states, read ahead
    /// for every unit the play names ([`UnitStates`]: service tasks observe through it),
    /// and system databases ([`SystemFiles`]).
    pub reads: Arc<HostReads>,
    /// Renders a template file's content with `vars` and, on top of them, the names of the
    /// second map (trim_blocks, lstrip_blocks).
    #[allow(clippy::type_complexity)]
    pub render:
        Arc<dyn Fn(&str, &Arc<Vars>, &Vars, bool, bool) -> anyhow::Result<String> + Send + Sync>,
}

impl HostCtx {
    /// Does this task's `become` run reads as another user than the login (through sudo)?
    /// When it does not, files can be read over SFTP, without a process on the host.
    pub fn escalates(&self) -> bool {
        self.transport.escalates(self.become_.as_ref())
    }

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

/// Plans carry their text diffs in the type the report renders.
pub use crate::report::TextDiff;

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
    /// Creates a directory and its missing parents, then gives it its mode and owner
    /// (numeric uid, gid): SFTP requests over SSH, no process on the host.
    Mkdir {
        path: String,
        mode: Option<u32>,
        owner: crate::transport::Owner,
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
    /// What to register: the plan's result completed with what applying learnt (see the
    /// module doc).
    pub result: Vars,
}

pub use apply::{apply, HostView, OpFailed};

/// Every module, once. `systemd_service` is an alias of `systemd` (see [`lookup`]).
static MODULES: &[&dyn Module] = &[
    &apt::Apt,
    &apt::Package,
    &copy::Copy,
    &template::Template,
    &file::File,
    &lineinfile::LineInFile,
    &blockinfile::BlockInFile,
    &service::Service,
    &service::Systemd,
    &command::Command,
    &command::Shell,
    &user::User,
    &group::Group,
    &get_url::GetUrl,
    &unarchive::Unarchive,
    &wait_for::WaitFor,
    &stat::Stat,
    &slurp::Slurp,
    &actions::Debug,
    &actions::SetFact,
    &actions::Assert,
    &actions::Fail,
    &actions::Pause,
    &actions::Ping,
    &hostname::Hostname,
    &sysctl::Sysctl,
    &setup::Setup,
    &replace::Replace,
    &find::Find,
    &getent::Getent,
    &raw::Raw,
    &script::Script,
    &tempfile::TempFile,
    &fetch::Fetch,
    &uri::Uri,
    &pip::Pip,
    &git::Git,
    &iptables::Iptables,
    &service_facts::ServiceFacts,
    &package_facts::PackageFacts,
    &timezone::Timezone,
    &apt_repository::AptRepository,
    &apt_key::AptKey,
    &deb822_repository::Deb822Repository,
    &debconf::Debconf,
    &cron::Cron,
    &authorized_key::AuthorizedKey,
    &mount::Mount,
    &locale_gen::LocaleGen,
    &alternatives::Alternatives,
    &modprobe::Modprobe,
];

/// Looks a module up by its name, with or without `ansible.builtin.` / `ansible.legacy.`,
/// or by its collection name for the collections in [`COLLECTION_MODULES`].
pub fn lookup(name: &str) -> Option<&'static dyn Module> {
    let short = name
        .strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.legacy."))
        .or_else(|| collection_short_name(name))
        .unwrap_or(name);
    let short = if short == "systemd_service" {
        "systemd"
    } else {
        short
    };
    MODULES.iter().copied().find(|m| m.name() == short)
}

/// The modules of collections other than ansible.builtin that are native here, by
/// collection. Only these names resolve: `community.general.copy` is not `copy`, it is a
/// module nobody provides (or the fallback's business).
const COLLECTION_MODULES: &[(&str, &[&str])] = &[
    (
        "community.general.",
        &["timezone", "alternatives", "locale_gen", "modprobe"],
    ),
    ("ansible.posix.", &["mount", "authorized_key", "sysctl"]),
];

/// `community.general.timezone` -> `timezone` when that collection has such a module.
fn collection_short_name(name: &str) -> Option<&str> {
    COLLECTION_MODULES.iter().find_map(|(prefix, shorts)| {
        name.strip_prefix(prefix)
            .filter(|short| shorts.contains(short))
    })
}

/// All module names, for "did you mean" suggestions.
pub fn names() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = MODULES.iter().map(|m| m.name()).collect();
    all.push("systemd_service");
    all
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
