//! The playbook model and its YAML loader. Loading resolves roles and static includes
//! (`import_tasks`, `import_role`, and `include_*` whose file name has no template), and
//! validates every task (known module, known arguments, known keywords) before anything
//! runs; every error names file:line:col. Module names that are not native are resolved
//! together at the end of the load by the installed Ansible ([`fallback`]).
//!
//! Owns: the model below, YAML parsing with positions, role layout, validation.
//! May call: modules (argument specs, and `modules::ansible` to resolve names), template
//! (syntax checks only).

mod args;
mod error;
pub mod fallback;
mod include;
pub mod keywords;
mod kv;
mod loader;
mod notify;
mod play;
mod role;
mod task;
pub mod yaml;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::{LoadError, LoadErrors};
use loader::{Loader, TaskCtx};
pub use notify::all_tasks;
pub use role::load_vars_data;

use crate::modules::ArgSpec;
use crate::Vars;

/// Where something was written: file, 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

#[derive(Debug, Clone)]
pub struct Playbook {
    pub path: PathBuf,
    pub plays: Vec<Play>,
    /// The tasks that run an Ansible module through the fallback (for `--native-only`).
    pub fallback: Vec<fallback::FallbackUse>,
}

impl Playbook {
    /// The folder holding the playbook (`playbook_dir`).
    pub fn dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    #[default]
    Linear,
    Free,
}

/// A yes/no keyword (`ignore_errors`, `become`, `run_once`, ...): a literal known when the
/// playbook loads, or a template Ansible evaluates per host when the task runs (with the
/// task's variables), then converts with its boolean rules (yes/no/true/false/on/off/1/0).
#[derive(Debug, Clone, PartialEq)]
pub enum Flag {
    Fixed(bool),
    Template(String),
}

impl Flag {
    /// The value when it is a literal; `None` for a template.
    pub fn fixed(&self) -> Option<bool> {
        match self {
            Flag::Fixed(b) => Some(*b),
            Flag::Template(_) => None,
        }
    }
}

/// `serial:` a number, a percentage, or a list of either.
#[derive(Debug, Clone, PartialEq)]
pub enum Batch {
    Count(usize),
    Percent(f64),
}

#[derive(Debug, Clone, Default)]
pub struct Play {
    pub name: String,
    /// The host pattern (`all`, `web:&dc1`, ...), possibly templated.
    pub hosts: String,
    pub vars: Vars,
    pub vars_files: Vec<String>,
    pub roles: Vec<Arc<Role>>,
    pub pre_tasks: Vec<Task>,
    pub tasks: Vec<Task>,
    pub post_tasks: Vec<Task>,
    pub handlers: Vec<Task>,
    pub become_: Option<Flag>,
    pub become_user: Option<String>,
    pub gather_facts: bool,
    /// `gather_subset` (empty: Ansible's default, `all`).
    pub gather_subset: Vec<String>,
    /// `gather_timeout` in seconds (None: Ansible's default, 10).
    pub gather_timeout: Option<u64>,
    /// `fact_path` (None: /etc/ansible/facts.d).
    pub fact_path: Option<String>,
    pub serial: Vec<Batch>,
    pub strategy: Strategy,
    pub any_errors_fatal: Option<Flag>,
    pub max_fail_percentage: Option<f64>,
    pub tags: Vec<String>,
    pub check_mode: Option<Flag>,
    pub diff: Option<Flag>,
    /// `collections:`: where short names of modules that are not native are looked for.
    pub collections: Vec<String>,
    /// `vars_prompt`: asked once before the play runs (see [`VarPrompt`]).
    pub vars_prompt: Vec<VarPrompt>,
    pub loc: Location,
}

/// One `vars_prompt` entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VarPrompt {
    pub name: String,
    /// The question shown (`prompt:`, the name when absent).
    pub prompt: String,
    pub default: Option<String>,
    /// Input is not echoed (Ansible's default is `private: true`).
    pub private: bool,
    /// Asked twice; the answers must match.
    pub confirm: bool,
    pub loc: Location,
}

/// A role in Ansible's layout, loaded from `roles/<name>/`.
#[derive(Debug, Clone, Default)]
pub struct Role {
    pub name: String,
    /// `role_path`.
    pub path: PathBuf,
    pub defaults: Vars,
    pub vars: Vars,
    /// Variables given where the role is used (`roles: [{role: x, vars: {...}}]`).
    pub params: Vars,
    pub tasks: Vec<Task>,
    pub handlers: Vec<Task>,
    /// Tags and `when` given where the role is used; they apply to all its tasks.
    pub tags: Vec<String>,
    pub when: Vec<String>,
    /// `collections:` of its meta/main.yml (its tasks look for short module names there).
    pub collections: Vec<String>,
}

/// `environment:` as written at each level, outermost first: mappings, and templates that
/// render to a mapping at run time (`environment: "{{ proxy_env }}"`). Later entries win.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Environment(pub Vec<serde_json::Value>);

impl Environment {
    /// A variable set by one of the mappings (not by a template, which is known only when
    /// the task runs).
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.0.iter().rev().find_map(|l| l.as_object()?.get(key))
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// This environment followed by `inner` (whose entries win).
    pub fn then(&self, inner: &Environment) -> Environment {
        Environment(self.0.iter().chain(inner.0.iter()).cloned().collect())
    }
}

/// Which files of a role an `include_role`/`import_role` uses instead of `main`: names
/// inside the role's `tasks/`, `vars/`, `defaults/` and `handlers/` (`.yml`/`.yaml` may be
/// left out).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoleFiles {
    pub tasks: Option<String>,
    pub vars: Option<String>,
    pub defaults: Option<String>,
    pub handlers: Option<String>,
}

impl RoleFiles {
    /// Any of the names is only known at run time.
    pub fn templated(&self) -> bool {
        [&self.tasks, &self.vars, &self.defaults, &self.handlers]
            .into_iter()
            .flatten()
            .any(|n| loader::is_template(n))
    }
}

/// The loop of a task: `loop:`, `with_items:` (flattened one level), `with_dict:`.
#[derive(Debug, Clone, PartialEq)]
pub enum LoopSpec {
    /// A list, or a template string that evaluates to one.
    Items(serde_json::Value),
    /// `with_items`: like Items, but nested lists are flattened one level.
    WithItems(serde_json::Value),
    /// `with_dict`: a mapping, items become `{key, value}`.
    Dict(serde_json::Value),
    /// `with_<name>` for any other lookup plugin (`with_first_found`, `with_fileglob`,
    /// `with_nested`, ...): the lookup runs on the rendered terms.
    Lookup {
        name: String,
        terms: serde_json::Value,
    },
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoopControl {
    pub loop_var: Option<String>,
    pub index_var: Option<String>,
    pub label: Option<String>,
    /// Seconds between items: a number, or a template rendered per host.
    pub pause: Option<serde_json::Value>,
    /// `extended`: items see `ansible_loop` (index, first, last, previtem, ...).
    pub extended: bool,
    /// `extended_allitems` (default on): `ansible_loop.allitems` is set.
    pub extended_allitems: Option<bool>,
}

#[derive(Debug, Clone)]
pub enum TaskKind {
    /// A module call; `module` is the short name (`ansible.builtin.` removed), `args`
    /// the arguments (free-form text as `_raw_params`), still untemplated.
    Module { module: String, args: Vars },
    Block {
        block: Vec<Task>,
        rescue: Vec<Task>,
        always: Vec<Task>,
    },
    /// `include_tasks` whose file is only known at run time (templated name); static ones
    /// are loaded into `loaded`.
    IncludeTasks {
        file: String,
        loaded: Option<Vec<Task>>,
        /// `import_tasks`: inlined, never reported or counted itself (Ansible counts each
        /// dynamic `include_tasks` as one `ok` per host and loop item).
        import: bool,
        /// `apply:` keywords given to every included task (include_tasks only).
        apply: Option<Box<Task>>,
    },
    /// `include_role` / `import_role`; `loaded` is filled when the name is static.
    IncludeRole {
        name: String,
        /// `tasks_from`, `vars_from`, `defaults_from`, `handlers_from`.
        from: RoleFiles,
        loaded: Option<Arc<Role>>,
        /// `import_role`: inlined, never reported or counted itself.
        import: bool,
        /// The role's defaults and vars stay visible to the play's later tasks (always so
        /// for `import_role`; `public: true` for `include_role`).
        public: bool,
        /// `apply:` keywords given to every task of the role (include_role only).
        apply: Option<Box<Task>>,
    },
    /// `meta: flush_handlers` and friends.
    Meta(String),
}

#[derive(Debug, Clone)]
pub struct Task {
    pub name: Option<String>,
    pub kind: TaskKind,
    /// Each entry must hold (Ansible's list form of `when`).
    pub when: Vec<String>,
    pub loop_: Option<LoopSpec>,
    pub loop_control: LoopControl,
    pub register: Option<String>,
    pub notify: Vec<String>,
    /// For handlers: the topics they also answer to.
    pub listen: Vec<String>,
    pub changed_when: Option<Vec<String>>,
    pub failed_when: Option<Vec<String>>,
    pub ignore_errors: Option<Flag>,
    pub tags: Vec<String>,
    pub become_: Option<Flag>,
    pub become_user: Option<String>,
    pub no_log: Option<Flag>,
    pub check_mode: Option<Flag>,
    pub diff: Option<Flag>,
    pub run_once: Option<Flag>,
    /// A failure of this task (or any task of this block) stops the play for every host.
    pub any_errors_fatal: Option<Flag>,
    pub delegate_to: Option<String>,
    /// With `delegate_to`: facts the task sets go to the delegated host.
    pub delegate_facts: Option<Flag>,
    pub environment: Environment,
    pub until: Option<String>,
    pub retries: u32,
    pub delay: f64,
    pub vars: Vars,
    /// The role this task came from (for role_path, role vars, files/ and templates/).
    /// This holds the role's metadata (name, path, defaults, vars, params, tags, when);
    /// its `tasks` and `handlers` lists are empty here.
    pub role: Option<Arc<Role>>,
    /// The `collections:` in force (the task's, else its block's, role's or play's): where
    /// a short module name that is not native is looked for.
    pub collections: Vec<String>,
    pub loc: Location,
}

impl Task {
    /// A task with only a name and a location, for messages about a play's keywords.
    pub fn named(name: &str, loc: Location) -> Task {
        Task {
            name: Some(name.to_string()),
            kind: TaskKind::Meta("noop".into()),
            when: Vec::new(),
            loop_: None,
            loop_control: LoopControl::default(),
            register: None,
            notify: Vec::new(),
            listen: Vec::new(),
            changed_when: None,
            failed_when: None,
            ignore_errors: None,
            tags: Vec::new(),
            become_: None,
            become_user: None,
            no_log: None,
            check_mode: None,
            diff: None,
            run_once: None,
            any_errors_fatal: None,
            delegate_to: None,
            delegate_facts: None,
            environment: Environment::default(),
            until: None,
            retries: 0,
            delay: 5.0,
            vars: Vars::new(),
            role: None,
            collections: Vec::new(),
            loc,
        }
    }

    /// The name shown in output: `name:`, else `module` (or `role : name`).
    pub fn display_name(&self) -> String {
        let base = match (&self.name, &self.kind) {
            (Some(n), _) => n.clone(),
            (None, TaskKind::Module { module, .. }) => module.clone(),
            (None, TaskKind::Block { .. }) => "block".to_string(),
            (None, TaskKind::IncludeTasks { file, .. }) => format!("include_tasks {file}"),
            (None, TaskKind::IncludeRole { name, .. }) => format!("include_role {name}"),
            (None, TaskKind::Meta(m)) => format!("meta {m}"),
        };
        match &self.role {
            Some(role) => format!("{} : {}", role.name, base),
            None => base,
        }
    }
}

/// Where the loader finds module argument specs (the real registry, or a test one).
pub trait ModuleRegistry {
    /// The spec of a module by its short name (`copy`), `None` if there is no such module.
    fn spec(&self, name: &str) -> Option<ArgSpec>;
    /// All module names, for "did you mean" suggestions.
    fn names(&self) -> Vec<&'static str>;
    /// Resolves names that are not in this registry with another provider (the installed
    /// Ansible, see [`fallback`]). `None`: there is none, and an unknown name is an error
    /// as soon as it is read.
    fn resolve_fallback(
        &self,
        _names: &[crate::modules::ansible::NameKey],
    ) -> Option<anyhow::Result<Vec<crate::modules::ansible::Resolution>>> {
        None
    }
}

/// The modules of this binary ([`crate::modules::lookup`]).
pub struct BuiltinModules;

impl ModuleRegistry for BuiltinModules {
    fn spec(&self, name: &str) -> Option<ArgSpec> {
        crate::modules::lookup(name).map(|m| m.spec())
    }
    fn names(&self) -> Vec<&'static str> {
        crate::modules::names()
    }
    fn resolve_fallback(
        &self,
        names: &[crate::modules::ansible::NameKey],
    ) -> Option<anyhow::Result<Vec<crate::modules::ansible::Resolution>>> {
        Some(crate::modules::ansible::resolve(names))
    }
}

/// Loads and validates a playbook file, its roles and static includes. On bad input the
/// error is a [`LoadErrors`] listing every problem with its file:line:col.
pub fn load(path: &Path, roles_path: &[PathBuf]) -> anyhow::Result<Playbook> {
    load_with(path, roles_path, &BuiltinModules)
}

/// [`load`] with the given module registry.
pub fn load_with(
    path: &Path,
    roles_path: &[PathBuf],
    registry: &dyn ModuleRegistry,
) -> anyhow::Result<Playbook> {
    let mut loader = Loader::new(registry, roles_path, loader::parent_dir(path));
    let plays = loader.playbook_file(path, None);
    let fallback = loader.resolve_pending();
    loader.finish(Playbook {
        path: path.to_path_buf(),
        plays,
        fallback,
    })
}

/// Loads a task file at run time (a dynamic `include_tasks`), validated like the rest.
/// With a role, relative includes inside it resolve from the role's tasks/ folder.
pub fn load_tasks_file(path: &Path, role: Option<Arc<Role>>) -> anyhow::Result<Vec<Task>> {
    load_tasks_file_with(path, role, &BuiltinModules)
}

/// [`load_tasks_file`] with the given module registry.
pub fn load_tasks_file_with(
    path: &Path,
    role: Option<Arc<Role>>,
    registry: &dyn ModuleRegistry,
) -> anyhow::Result<Vec<Task>> {
    let dir = loader::parent_dir(path);
    let mut loader = Loader::new(registry, &[], dir.clone());
    let ctx = TaskCtx {
        file: path.to_path_buf(),
        playbook_dir: dir,
        role,
        handlers: false,
        inherit: Default::default(),
    };
    let tasks = loader
        .tasks_file(path, &ctx, path, yaml::Pos::default())
        .unwrap_or_default();
    loader.resolve_pending();
    loader.finish(tasks)
}

/// Loads a role by name at run time (a dynamic `include_role`). `search` lists the folders
/// that may hold `<folder>/<name>`, in order (the playbook's `roles/`, each `roles_path`
/// entry, the playbook's folder); a path-like name is also tried as a path. The role's
/// dependencies' tasks and handlers come first in its lists.
pub fn load_role(name: &str, from: &RoleFiles, search: &[PathBuf]) -> anyhow::Result<Arc<Role>> {
    load_role_with(name, from, search, &BuiltinModules)
}

/// [`load_role`] with the given module registry.
pub fn load_role_with(
    name: &str,
    from: &RoleFiles,
    search: &[PathBuf],
    registry: &dyn ModuleRegistry,
) -> anyhow::Result<Arc<Role>> {
    let dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let mut loader = Loader::new(registry, search, dir.clone());
    let ctx = TaskCtx {
        file: PathBuf::from(format!("include_role {name}")),
        playbook_dir: dir.clone(),
        role: None,
        handlers: false,
        inherit: Default::default(),
    };
    let mut dirs = search.to_vec();
    dirs.push(dir);
    let role = loader.role_for_include(name, from, &dirs, &ctx, yaml::Pos::default());
    loader.resolve_pending();
    match role {
        Some(role) => loader.finish(role),
        None => {
            loader.finish(())?;
            anyhow::bail!("role '{name}' could not be loaded")
        }
    }
}
