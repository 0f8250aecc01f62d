//! The run's shared state: per-host facts and flags, recap counters, the cached inventory
//! variables, and the [`Frame`] of keywords a task inherits from its blocks, includes and
//! role.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use indexmap::IndexMap;
use serde_json::Value;

use super::{connect::Pool, HostStats, RunOptions};
use crate::inventory::Inventory;
use crate::modules::HostReads;
use crate::playbook::{Environment, Flag, Role, Task};
use crate::report::Reporter;
use crate::template::{untrusted, Templar};
use crate::Vars;

/// What the run knows about one host.
#[derive(Debug, Default)]
pub struct HostState {
    /// Gathered facts (`ansible_*` and `ansible_facts`). Shared, not copied, with every
    /// task's variables: a host's facts are tens of kilobytes of nested maps, and a
    /// converged run reads them for every task but writes them a few times
    /// (`Arc::make_mut` copies only when a task still holds the old ones).
    pub facts: Arc<Vars>,
    /// `set_fact` and `register` results.
    pub host_facts: Arc<Vars>,
    /// Variables `include_vars` loaded (below `set_fact` in precedence, above task vars).
    pub included_vars: Arc<Vars>,
    /// Failed: out of the rest of the run (unless a rescue takes it back).
    pub failed: bool,
    pub unreachable: bool,
    /// `meta: end_host`, `end_play`, or the play stopped (any_errors_fatal): out of this play.
    pub ended: bool,
    /// Indexes of notified handlers (in the play's handler list).
    pub notified: HashSet<usize>,
    /// The last failed result, for `ansible_failed_result` in a rescue.
    pub last_failure: Option<(String, Value)>,
}

/// Keywords inherited from enclosing blocks, includes and roles.
#[derive(Clone, Default)]
pub struct Frame {
    pub vars: Vec<Arc<Vars>>,
    pub tags: Vec<String>,
    pub when: Vec<String>,
    pub role: Option<Arc<Role>>,
    /// Roles that included this one (`include_role` inside a role), nearest first:
    /// `ansible_parent_role_names`, and searched by lookups after the role itself.
    pub parent_roles: Vec<Arc<Role>>,
    pub become_: Option<Flag>,
    pub become_user: Option<String>,
    pub environment: Environment,
    pub no_log: Option<Flag>,
    pub ignore_errors: Option<Flag>,
    pub check_mode: Option<Flag>,
    pub diff: Option<Flag>,
    pub run_once: Option<Flag>,
    pub any_errors_fatal: Option<Flag>,
    pub delegate_to: Option<String>,
    pub delegate_facts: Option<Flag>,
    /// A failure here is caught by an enclosing block's `rescue`.
    pub rescuable: bool,
    /// Running handlers.
    pub handler: bool,
    /// The dynamic includes (task files, roles) this frame runs inside, outermost first:
    /// bounds their nesting, since a file that includes itself through a templated name
    /// escapes the loader's cycle check.
    pub includes: Vec<String>,
}

/// How deep dynamic includes may nest before the include fails (Ansible has no bound
/// but Python's recursion limit; real playbooks nest a handful).
pub const MAX_INCLUDE_DEPTH: usize = 64;

impl Frame {
    /// The frame of a block's (or import's) children.
    pub fn child(&self, task: &Task) -> Frame {
        let mut f = self.clone();
        if !task.vars.is_empty() {
            f.vars.push(Arc::new(task.vars.clone()));
        }
        for t in &task.tags {
            if !f.tags.contains(t) {
                f.tags.push(t.clone());
            }
        }
        f.when.extend(task.when.iter().cloned());
        // A keyword set on the block (or include) replaces the inherited one, as in Ansible.
        for (inner, own) in [
            (&mut f.become_, &task.become_),
            (&mut f.no_log, &task.no_log),
            (&mut f.ignore_errors, &task.ignore_errors),
            (&mut f.check_mode, &task.check_mode),
            (&mut f.diff, &task.diff),
            (&mut f.run_once, &task.run_once),
            (&mut f.any_errors_fatal, &task.any_errors_fatal),
            (&mut f.delegate_facts, &task.delegate_facts),
        ] {
            if own.is_some() {
                inner.clone_from(own);
            }
        }
        if task.become_user.is_some() {
            f.become_user = task.become_user.clone();
        }
        if task.delegate_to.is_some() {
            f.delegate_to = task.delegate_to.clone();
        }
        f.environment = f.environment.then(&task.environment);
        if task.role.is_some() {
            f.role = task.role.clone();
        }
        f
    }

    /// The frame of a role's tasks.
    pub fn for_role(&self, role: &Arc<Role>) -> Frame {
        let mut f = self.clone();
        if let Some(parent) = &self.role {
            f.parent_roles.insert(0, parent.clone());
        }
        f.role = Some(role.clone());
        for t in &role.tags {
            if !f.tags.contains(t) {
                f.tags.push(t.clone());
            }
        }
        f.when.extend(role.when.iter().cloned());
        f
    }

    /// The task's effective tags: inherited plus its own.
    pub fn tags_of(&self, task: &Task) -> Vec<String> {
        let mut tags = self.tags.clone();
        for t in &task.tags {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        tags
    }
}

/// Everything shared by the plays of one run.
pub struct Runner {
    pub opts: RunOptions,
    pub inventory: Inventory,
    pub playbook_dir: PathBuf,
    pub templar: Arc<Templar>,
    pub reporter: Arc<dyn Reporter>,
    pub pool: Pool,
    pub forks: Arc<tokio::sync::Semaphore>,
    pub hosts: Mutex<HashMap<String, HostState>>,
    pub stats: Mutex<IndexMap<String, HostStats>>,
    inventory_vars: Mutex<HashMap<String, Arc<Vars>>>,
    /// `groups`, computed once.
    pub groups: Value,
    /// Bumped whenever facts change, so `hostvars` can be cached between changes.
    pub facts_version: AtomicU64,
    hostvars_cache: Mutex<Option<(u64, Arc<Value>)>>,
    next_task_id: AtomicUsize,
    /// Task files loaded at run time (dynamic includes), by path.
    pub include_cache: Mutex<HashMap<PathBuf, Arc<Vec<Task>>>>,
    /// What each host's tasks have read and share: unit states read ahead for the play's
    /// service tasks, system databases (by transport host).
    reads: Mutex<HashMap<String, Arc<HostReads>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Runner {
    pub fn new(
        opts: RunOptions,
        inventory: Inventory,
        playbook_dir: PathBuf,
        reporter: Arc<dyn Reporter>,
    ) -> Runner {
        let forks = if opts.forks == 0 { 256 } else { opts.forks };
        crate::template::lookups::set_host_patterns(|groups, pattern| {
            Inventory::from_groups_var(groups).select_in_pattern_order(pattern)
        });
        let groups = serde_json::to_value(inventory.groups_var()).unwrap_or(Value::Null);
        Runner {
            pool: Pool::new(
                opts.known_hosts.clone(),
                opts.accept_new_host_keys,
                opts.ssh_persist.clone(),
            ),
            opts,
            inventory,
            playbook_dir,
            templar: Arc::new(Templar::new()),
            reporter,
            forks: Arc::new(tokio::sync::Semaphore::new(forks)),
            hosts: Mutex::new(HashMap::new()),
            stats: Mutex::new(IndexMap::new()),
            inventory_vars: Mutex::new(HashMap::new()),
            groups,
            facts_version: AtomicU64::new(0),
            hostvars_cache: Mutex::new(None),
            next_task_id: AtomicUsize::new(1),
            include_cache: Mutex::new(HashMap::new()),
            reads: Mutex::new(HashMap::new()),
        }
    }

    /// What the tasks of the run on `host` (the one a task's transport reaches) have read
    /// and share.
    pub fn host_reads(&self, host: &str) -> Arc<HostReads> {
        lock(&self.reads)
            .entry(host.to_string())
            .or_default()
            .clone()
    }

    pub fn next_task_id(&self) -> usize {
        self.next_task_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The host's inventory variables (computed once).
    pub fn inventory_vars(&self, host: &str) -> Arc<Vars> {
        let mut cache = lock(&self.inventory_vars);
        cache
            .entry(host.to_string())
            .or_insert_with(|| Arc::new(self.inventory.host_vars(host)))
            .clone()
    }

    /// Runs `f` on a host's state.
    pub fn with_host<R>(&self, host: &str, f: impl FnOnce(&mut HostState) -> R) -> R {
        let mut hosts = lock(&self.hosts);
        f(hosts.entry(host.to_string()).or_default())
    }

    /// Runs `f` on a host's recap counters.
    pub fn with_stats<R>(&self, host: &str, f: impl FnOnce(&mut HostStats) -> R) -> R {
        let mut stats = lock(&self.stats);
        f(stats.entry(host.to_string()).or_default())
    }

    /// A host may run tasks of the current play.
    pub fn is_active(&self, host: &str) -> bool {
        self.with_host(host, |h| !h.failed && !h.unreachable && !h.ended)
    }

    /// Records variables `include_vars` loaded on a host.
    pub fn set_included_vars(&self, host: &str, vars: Vars) {
        self.with_host(host, |h| {
            let included = Arc::make_mut(&mut h.included_vars);
            for (k, v) in vars {
                included.insert(k, v);
            }
        });
        self.facts_version.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets facts (`set_fact`, `register`) on a host. They are data, never templates:
    /// text with template syntax in them is marked so (`template::untrusted`).
    pub fn set_host_facts(&self, host: &str, facts: Vars) {
        self.with_host(host, |h| {
            let host_facts = Arc::make_mut(&mut h.host_facts);
            for (k, v) in facts {
                host_facts.insert(k, untrusted::mark(v));
            }
        });
        self.facts_version.fetch_add(1, Ordering::Relaxed);
    }

    /// Stores a module result's `ansible_facts` where Ansible's strategy puts them:
    /// `set_fact` as host variables, `include_vars` at its own level; every other module (setup,
    /// service_facts, a fallback Ansible module) into the fact cache, so they are both
    /// injected variables and `ansible_facts.x`; `set_fact` with `cacheable` (the result says
    /// `_ansible_facts_cacheable: true`) in both places.
    pub fn store_result_facts(&self, host: &str, module: &str, result: &Vars) {
        let Some(Value::Object(facts)) = result.get("ansible_facts") else {
            return;
        };
        let short = module.rsplit('.').next().unwrap_or(module);
        if short == "include_vars" {
            // Their own precedence level, above task vars and below set_fact.
            self.set_included_vars(host, facts.clone());
            return;
        }
        let as_vars = short == "set_fact";
        let cacheable = result.get("_ansible_facts_cacheable") == Some(&Value::Bool(true));
        if as_vars {
            self.set_host_facts(host, facts.clone());
        }
        if !as_vars || (short == "set_fact" && cacheable) {
            self.merge_gathered_facts(host, facts);
        }
    }

    /// `meta: clear_facts`: the host's fact cache goes (gathered facts, cacheable set_fact).
    pub fn clear_gathered_facts(&self, host: &str) {
        self.with_host(host, |h| h.facts = Arc::default());
        self.facts_version.fetch_add(1, Ordering::Relaxed);
    }

    /// Merges facts (gathered, or a module's `ansible_facts`) into a host's fact cache:
    /// injected as variables and under `ansible_facts`, as Ansible does.
    pub fn merge_gathered_facts(&self, host: &str, facts: &serde_json::Map<String, Value>) {
        // What a host reports is data, never a template (`template::untrusted`).
        if facts.values().any(untrusted::needs_mark) {
            let marked = untrusted::mark_vars(facts.clone());
            self.with_host(host, |h| {
                super::facts::merge(Arc::make_mut(&mut h.facts), &marked)
            });
        } else {
            self.with_host(host, |h| {
                super::facts::merge(Arc::make_mut(&mut h.facts), facts)
            });
        }
        self.facts_version.fetch_add(1, Ordering::Relaxed);
    }

    /// `hostvars`: every inventory host's variables (inventory, facts, set_fact/register),
    /// rebuilt only when some fact changed since the last call.
    pub fn hostvars(&self) -> Arc<Value> {
        let version = self.facts_version.load(Ordering::Relaxed);
        if let Some((v, cached)) = lock(&self.hostvars_cache).as_ref() {
            if *v == version {
                return cached.clone();
            }
        }
        let mut all = serde_json::Map::new();
        let names: Vec<String> = self.inventory.hosts.keys().cloned().collect();
        for name in names {
            let mut vars = (*self.inventory_vars(&name)).clone();
            self.with_host(&name, |h| {
                let layers = h.facts.iter().chain(h.included_vars.iter());
                for (k, v) in layers.chain(h.host_facts.iter()) {
                    vars.insert(k.clone(), v.clone());
                }
            });
            vars.insert("inventory_hostname".into(), Value::from(name.clone()));
            vars.insert(
                "inventory_hostname_short".into(),
                Value::from(short_name(&name)),
            );
            vars.insert(
                "group_names".into(),
                serde_json::to_value(self.inventory.group_names(&name)).unwrap_or_default(),
            );
            all.insert(name, Value::Object(vars));
        }
        let value = Arc::new(Value::Object(all));
        *lock(&self.hostvars_cache) = Some((version, value.clone()));
        value
    }
}

/// `inventory_hostname_short`: the name up to the first dot.
pub fn short_name(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}
