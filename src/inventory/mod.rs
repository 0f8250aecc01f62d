//! Ansible-compatible inventories (YAML, and the INI format): hosts, groups (nested `children`), vars, host
//! ranges (`web[01:03]`), `group_vars/` and `host_vars/` folders, the implicit groups
//! `all` and `ungrouped`, and host patterns (`a:b`, `a:&b`, `a:!b`, wildcards).
//!
//! Owns: the model and the variable precedence *within* the inventory, as ansible-core
//! applies it (its default `VARIABLE_PRECEDENCE`):
//! `all`'s inline vars < other groups' inline vars < `group_vars/all` files (inventory's,
//! then playbook's) < other groups' `group_vars` files < the host's inline vars <
//! `host_vars` files (inventory's, then playbook's). Groups are ordered by depth (parents
//! before children), then `ansible_group_priority`, then name. May call: nothing else.

mod ini;
mod pattern;
mod range;
mod vars_files;
mod yaml;
mod yaml11;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::Context;
use indexmap::IndexMap;

use crate::Vars;

pub use ini::literal_value;
pub use range::expand_host_range;
pub use vars_files::{load_vars_file, parse_vars};
pub use yaml11::yaml11_bools;

/// The implicit group every host belongs to.
pub const ALL: &str = "all";
/// The datacenter of a host without a `datacenter` var.
pub const DEFAULT_DATACENTER: &str = "dc1";
/// The implicit group of hosts that belong to no other group.
pub const UNGROUPED: &str = "ungrouped";

#[derive(Debug, Clone, Default)]
pub struct Host {
    pub name: String,
    /// Vars set on the host itself (inventory file, then host_vars files).
    pub vars: Vars,
}

#[derive(Debug, Clone, Default)]
pub struct Group {
    pub name: String,
    pub vars: Vars,
    /// Hosts listed directly in this group.
    pub hosts: Vec<String>,
    /// Child group names.
    pub children: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// The inventory file.
    pub path: PathBuf,
    pub hosts: IndexMap<String, Host>,
    /// Every group, `all` and `ungrouped` included.
    pub groups: IndexMap<String, Group>,
    /// Vars from `group_vars/` files by group (the inventory's, then the playbook's merged
    /// over them). They rank above every group's inline vars, as in Ansible.
    pub group_file_vars: IndexMap<String, Vars>,
}

impl Inventory {
    /// Loads an inventory file and the `group_vars/` / `host_vars/` beside it. A folder
    /// is loaded as Ansible does: every inventory file in it (name order), then its
    /// `group_vars/` and `host_vars/`.
    pub fn load(path: &Path) -> anyhow::Result<Inventory> {
        if path.is_dir() {
            return Inventory::load_dir(path);
        }
        let text = crate::vault::yaml::read_to_string(path)
            .with_context(|| format!("reading inventory {}", path.display()))?;
        let mut inv = Inventory::parse(&text, path)?;
        let dir = inv.dir();
        inv.load_vars_dir(&dir)?;
        Ok(inv)
    }

    fn load_dir(dir: &Path) -> anyhow::Result<Inventory> {
        const IGNORED: [&str; 12] = [
            ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg",
            ".retry",
        ];
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("reading inventory folder {}", dir.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .with_context(|| format!("reading inventory folder {}", dir.display()))?;
        files.retain(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            p.is_file() && !name.starts_with('.') && !IGNORED.iter().any(|x| name.ends_with(x))
        });
        files.sort();
        let Some(first) = files.first() else {
            anyhow::bail!("inventory folder {} has no inventory files", dir.display());
        };
        let mut inv = Inventory::empty(first);
        for file in &files {
            let text = crate::vault::yaml::read_to_string(file)
                .with_context(|| format!("reading inventory {}", file.display()))?;
            let part = Inventory::parse(&text, file)?;
            inv.merge(part);
        }
        inv.finish()
            .with_context(|| format!("in inventory folder {}", dir.display()))?;
        inv.load_vars_dir(dir)?;
        Ok(inv)
    }

    /// Merges another parsed inventory into this one (hosts, groups, vars; later wins).
    fn merge(&mut self, other: Inventory) {
        for (name, host) in other.hosts {
            self.add_host_vars(&name, host.vars);
        }
        for (name, group) in other.groups {
            let g = self.ensure_group(&name);
            g.vars.extend(group.vars);
            for h in group.hosts {
                if !g.hosts.contains(&h) {
                    g.hosts.push(h);
                }
            }
            for c in group.children {
                if !g.children.contains(&c) {
                    g.children.push(c);
                }
            }
        }
    }

    /// Parses inventory text as if read from `path`, without looking at any
    /// `group_vars/` or `host_vars/` folder. A `.yml`/`.yaml`/`.json` file is YAML; any
    /// other is tried as YAML, then as Ansible's INI format.
    pub fn parse(text: &str, path: &Path) -> anyhow::Result<Inventory> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let mut inv = Inventory::empty(path);
        if matches!(ext.as_str(), "yml" | "yaml" | "json") {
            yaml::parse_into(&mut inv, text, path)?;
        } else if let Err(yaml_err) = yaml::parse_into(&mut inv, text, path) {
            inv = Inventory::empty(path);
            if let Err(ini_err) = ini::parse_into(&mut inv, text, path) {
                let looks_ini = ext == "ini"
                    || text.lines().any(|l| l.trim_start().starts_with('['))
                    || !text.contains(':');
                return Err(if looks_ini { ini_err } else { yaml_err });
            }
        }
        inv.finish()
            .with_context(|| format!("in inventory {}", path.display()))?;
        Ok(inv)
    }

    /// An inventory with only the implicit groups.
    pub fn empty(path: &Path) -> Inventory {
        let mut inv = Inventory {
            path: path.to_path_buf(),
            ..Inventory::default()
        };
        inv.ensure_group(ALL);
        inv.ensure_group(UNGROUPED);
        inv
    }

    /// Adds `group_vars/` and `host_vars/` found in `dir` (the playbook's folder); they win
    /// over those beside the inventory.
    pub fn load_vars_dir(&mut self, dir: &Path) -> anyhow::Result<()> {
        let group_dir = dir.join("group_vars");
        if group_dir.is_dir() {
            let names: Vec<String> = self.groups.keys().cloned().collect();
            for name in names {
                if let Some(vars) = vars_files::load_named_vars(&group_dir, &name)? {
                    let slot = self.group_file_vars.entry(name).or_default();
                    slot.extend(vars);
                }
            }
        }
        let host_dir = dir.join("host_vars");
        if host_dir.is_dir() {
            let names: Vec<String> = self.hosts.keys().cloned().collect();
            for name in names {
                if let Some(vars) = vars_files::load_named_vars(&host_dir, &name)? {
                    if let Some(host) = self.hosts.get_mut(&name) {
                        host.vars.extend(vars);
                    }
                }
            }
        }
        Ok(())
    }

    /// `inventory_dir`.
    pub fn dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// A host's variables from the inventory, merged by Ansible's precedence (see the
    /// module doc). A host not in the inventory gets `all`'s vars; the implicit
    /// `localhost` also gets `ansible_connection: local`.
    pub fn host_vars(&self, host: &str) -> Vars {
        let mut groups = self.host_groups(host);
        if !self.hosts.contains_key(host) {
            groups = vec![ALL.to_string()];
        }
        let depths = self.group_depths();
        groups.sort_by(|a, b| {
            let key = |g: &String| {
                let depth = depths.get(g.as_str()).copied().unwrap_or(1);
                (depth, self.group_priority(g))
            };
            key(a).cmp(&key(b)).then_with(|| a.cmp(b))
        });
        let mut vars = Vars::new();
        for g in &groups {
            if let Some(group) = self.groups.get(g) {
                vars.extend(group.vars.clone());
            }
        }
        for g in &groups {
            if let Some(file_vars) = self.group_file_vars.get(g) {
                vars.extend(file_vars.clone());
            }
        }
        match self.hosts.get(host) {
            Some(h) => vars.extend(h.vars.clone()),
            None if is_localhost(host) => {
                vars.insert("ansible_connection".into(), "local".into());
            }
            None => {}
        }
        vars
    }

    /// The groups a host belongs to, directly or through children, without `all`, sorted.
    pub fn group_names(&self, host: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .host_groups(host)
            .into_iter()
            .filter(|g| g != ALL)
            .collect();
        names.sort();
        names
    }

    /// The `groups` variable: every group name to its hosts (recursively), in order.
    pub fn groups_var(&self) -> IndexMap<String, Vec<String>> {
        self.groups
            .keys()
            .map(|g| (g.clone(), self.group_hosts(g)))
            .collect()
    }

    /// An inventory of groups and hosts only, from a `groups` variable (group name to its
    /// hosts): what Ansible's `inventory_hostnames` lookup matches patterns against.
    pub fn from_groups_var(groups: &serde_json::Value) -> Inventory {
        let mut inv = Inventory::default();
        if let serde_json::Value::Object(map) = groups {
            for (group, hosts) in map {
                for host in hosts.as_array().into_iter().flatten() {
                    if let Some(host) = host.as_str() {
                        inv.add_host(host, &[group.as_str()]);
                    }
                }
            }
        }
        inv
    }

    /// The hosts matching an Ansible host pattern, in inventory order. Nothing matching
    /// is an empty list, not an error; a bad regex or subscript is an error.
    pub fn select(&self, pattern: &str) -> anyhow::Result<Vec<String>> {
        pattern::select(self, pattern)
    }

    /// The same hosts in the order Ansible's `get_hosts` lists them (union terms in the
    /// order written), as the `inventory_hostnames` lookup returns them.
    pub fn select_in_pattern_order(&self, pattern: &str) -> anyhow::Result<Vec<String>> {
        pattern::select_in_pattern_order(self, pattern)
    }

    /// The datacenter a host belongs to: its `datacenter` var, else [`DEFAULT_DATACENTER`].
    pub fn datacenter(&self, host: &str) -> String {
        match self.host_vars(host).get("datacenter") {
            Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
            Some(v @ serde_json::Value::Number(_)) => v.to_string(),
            _ => DEFAULT_DATACENTER.to_string(),
        }
    }

    /// Every datacenter to its hosts, in inventory order (datacenters by first host).
    pub fn datacenters(&self) -> IndexMap<String, Vec<String>> {
        let mut out: IndexMap<String, Vec<String>> = IndexMap::new();
        for host in self.hosts.keys() {
            out.entry(self.datacenter(host))
                .or_default()
                .push(host.clone());
        }
        out
    }

    /// Sets one variable on a host (creating the host, ungrouped, if it is new). Used by
    /// providers to fill in `ansible_host`, `ansible_port` and friends.
    pub fn set_host_var(&mut self, host: &str, key: &str, value: serde_json::Value) {
        if !self.hosts.contains_key(host) {
            self.add_host(host, &[] as &[&str]);
        }
        if let Some(h) = self.hosts.get_mut(host) {
            h.vars.insert(key.to_string(), value);
        }
    }

    /// Adds a host (if new) to the given groups (created as children of `all` if new).
    pub fn add_host<S: AsRef<str>>(&mut self, name: &str, groups: &[S]) {
        self.add_host_vars(name, Vars::new());
        for g in groups {
            let g = g.as_ref();
            let is_new = !self.groups.contains_key(g);
            self.add_host_to_group(name, g);
            if is_new && g != ALL {
                let all = self.ensure_group(ALL);
                if !all.children.iter().any(|c| c == g) {
                    all.children.push(g.to_string());
                }
            }
        }
        self.recompute_ungrouped();
    }

    /// Every group containing `host` (directly or through a child group), `all` included,
    /// in the inventory's group order. Empty for an unknown host.
    pub fn host_groups(&self, host: &str) -> Vec<String> {
        if !self.hosts.contains_key(host) {
            return Vec::new();
        }
        let parents = self.parents();
        let mut found: HashSet<&str> = HashSet::new();
        let mut queue: Vec<&str> = self
            .groups
            .values()
            .filter(|g| g.hosts.iter().any(|h| h == host))
            .map(|g| g.name.as_str())
            .collect();
        queue.push(ALL);
        while let Some(g) = queue.pop() {
            if found.insert(g) {
                if let Some(ps) = parents.get(g) {
                    queue.extend(ps.iter().copied());
                }
            }
        }
        self.groups
            .keys()
            .filter(|g| found.contains(g.as_str()))
            .cloned()
            .collect()
    }

    /// The hosts of a group and of all its descendants, in the order Ansible's
    /// `Group.get_hosts` gives them (which its `groups` variable and host patterns use):
    /// the group's own hosts as listed, then its children's (in their order), then the
    /// grandchildren's, level by level; each host once. Below the children Ansible walks
    /// the groups of a level through a set, so its order there is arbitrary; here it is
    /// each parent's children in order. Empty for an unknown group.
    pub fn group_hosts(&self, group: &str) -> Vec<String> {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut out: Vec<String> = Vec::new();
        for g in self.descendants_by_level(group) {
            for h in self.groups.get(g).into_iter().flat_map(|g| &g.hosts) {
                if self.hosts.contains_key(h) && seen.insert(h.as_str()) {
                    out.push(h.clone());
                }
            }
        }
        if group == ALL {
            // Every host is in `all`, also one that no group lists (not expected: such a
            // host is `ungrouped`).
            let rest: Vec<String> = self
                .hosts
                .keys()
                .filter(|h| !seen.contains(h.as_str()))
                .cloned()
                .collect();
            out.extend(rest);
        }
        out
    }

    /// A group, then its children, then theirs, level by level (breadth first, each group
    /// once).
    fn descendants_by_level<'a>(&'a self, group: &'a str) -> Vec<&'a str> {
        let mut ordered: Vec<&str> = vec![group];
        let mut seen: HashSet<&str> = HashSet::from([group]);
        let mut next = 0;
        while let Some(&g) = ordered.get(next) {
            next += 1;
            for c in self.groups.get(g).into_iter().flat_map(|g| &g.children) {
                if seen.insert(c.as_str()) {
                    ordered.push(c.as_str());
                }
            }
        }
        ordered
    }

    fn parents(&self) -> HashMap<&str, Vec<&str>> {
        let mut parents: HashMap<&str, Vec<&str>> = HashMap::new();
        for g in self.groups.values() {
            for c in &g.children {
                parents.entry(c.as_str()).or_default().push(g.name.as_str());
            }
        }
        parents
    }

    /// Each group's depth: `all` is 0, a group is one deeper than its deepest parent.
    fn group_depths(&self) -> HashMap<&str, usize> {
        let parents = self.parents();
        let mut depths: HashMap<&str, usize> = HashMap::new();
        fn depth<'a>(
            g: &'a str,
            parents: &HashMap<&'a str, Vec<&'a str>>,
            depths: &mut HashMap<&'a str, usize>,
            guard: usize,
        ) -> usize {
            if g == ALL {
                return 0;
            }
            if let Some(d) = depths.get(g) {
                return *d;
            }
            let d = match parents.get(g) {
                Some(ps) if guard < 1000 => ps
                    .iter()
                    .map(|p| depth(p, parents, depths, guard + 1) + 1)
                    .max()
                    .unwrap_or(1),
                _ => 1,
            };
            depths.insert(g, d);
            d
        }
        for g in self.groups.keys() {
            depth(g, &parents, &mut depths, 0);
        }
        depths
    }

    fn group_priority(&self, group: &str) -> i64 {
        let priority = |vars: &Vars| vars.get("ansible_group_priority").and_then(as_i64);
        self.group_file_vars
            .get(group)
            .and_then(priority)
            .or_else(|| self.groups.get(group).and_then(|g| priority(&g.vars)))
            .unwrap_or(1)
    }

    pub(crate) fn ensure_group(&mut self, name: &str) -> &mut Group {
        self.groups
            .entry(name.to_string())
            .or_insert_with(|| Group {
                name: name.to_string(),
                ..Group::default()
            })
    }

    /// Creates the host if new and merges `vars` into its own vars.
    pub(crate) fn add_host_vars(&mut self, name: &str, vars: Vars) {
        let host = self.hosts.entry(name.to_string()).or_insert_with(|| Host {
            name: name.to_string(),
            vars: Vars::new(),
        });
        host.vars.extend(vars);
    }

    pub(crate) fn add_host_to_group(&mut self, host: &str, group: &str) {
        let g = self.ensure_group(group);
        if !g.hosts.iter().any(|h| h == host) {
            g.hosts.push(host.to_string());
        }
    }

    /// After parsing: groups without a parent become children of `all`, cycles are
    /// rejected, and `ungrouped` is filled.
    fn finish(&mut self) -> anyhow::Result<()> {
        self.ensure_group(ALL);
        self.ensure_group(UNGROUPED);
        let parented: HashSet<String> = self
            .groups
            .values()
            .flat_map(|g| g.children.iter().cloned())
            .collect();
        let orphans: Vec<String> = self
            .groups
            .keys()
            .filter(|g| g.as_str() != ALL && !parented.contains(*g))
            .cloned()
            .collect();
        for g in orphans {
            let all = self.ensure_group(ALL);
            // `ungrouped` first, as Ansible creates it before any other group.
            if g == UNGROUPED {
                all.children.insert(0, g);
            } else {
                all.children.push(g);
            }
        }
        self.check_cycles()?;
        self.recompute_ungrouped();
        Ok(())
    }

    fn check_cycles(&self) -> anyhow::Result<()> {
        // 0 = unvisited, 1 = on the current path, 2 = done.
        let mut state: HashMap<&str, u8> = HashMap::new();
        fn visit<'a>(
            inv: &'a Inventory,
            g: &'a str,
            state: &mut HashMap<&'a str, u8>,
            path: &mut Vec<&'a str>,
        ) -> anyhow::Result<()> {
            match state.get(g) {
                Some(2) => return Ok(()),
                Some(1) => {
                    path.push(g);
                    anyhow::bail!("group `{g}` is its own ancestor: {}", path.join(" -> "));
                }
                _ => {}
            }
            state.insert(g, 1);
            path.push(g);
            if let Some(grp) = inv.groups.get(g) {
                for c in &grp.children {
                    visit(inv, c, state, path)?;
                }
            }
            path.pop();
            state.insert(g, 2);
            Ok(())
        }
        for g in self.groups.keys() {
            visit(self, g, &mut state, &mut Vec::new())?;
        }
        Ok(())
    }

    /// `ungrouped` holds exactly the hosts that are in no group besides `all`/`ungrouped`.
    fn recompute_ungrouped(&mut self) {
        let grouped: HashSet<&str> = self
            .groups
            .values()
            .filter(|g| g.name != ALL && g.name != UNGROUPED)
            .flat_map(|g| g.hosts.iter().map(String::as_str))
            .collect();
        let ungrouped: Vec<String> = self
            .hosts
            .keys()
            .filter(|h| !grouped.contains(h.as_str()))
            .cloned()
            .collect();
        self.ensure_group(UNGROUPED).hosts = ungrouped;
    }
}

/// Names Ansible treats as the implicit localhost when the inventory lacks them.
pub fn is_localhost(name: &str) -> bool {
    matches!(name, "localhost" | "127.0.0.1" | "::1")
}

fn as_i64(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}
