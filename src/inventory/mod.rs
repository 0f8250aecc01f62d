//! Ansible-compatible YAML inventories: hosts, groups (nested `children`), vars, host
//! ranges (`web[01:03]`), `group_vars/` and `host_vars/` folders, the implicit groups
//! `all` and `ungrouped`, and host patterns (`a:b`, `a:&b`, `a:!b`, wildcards).
//!
//! Owns: the model and the variable precedence *within* the inventory
//! (all < parent groups < child groups < host; files beside the inventory or playbook
//! override the inventory file's own vars at the same level). May call: nothing else.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::Vars;

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
}

impl Inventory {
    /// Loads an inventory file and the `group_vars/` / `host_vars/` beside it.
    pub fn load(path: &Path) -> anyhow::Result<Inventory> {
        let _ = path;
        anyhow::bail!("inventory loading is not implemented yet")
    }

    /// Adds `group_vars/` and `host_vars/` found in `dir` (the playbook's folder); they win
    /// over those beside the inventory.
    pub fn load_vars_dir(&mut self, dir: &Path) -> anyhow::Result<()> {
        let _ = dir;
        Ok(())
    }

    /// `inventory_dir`.
    pub fn dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// A host's variables from the inventory, merged by Ansible's precedence.
    pub fn host_vars(&self, host: &str) -> Vars {
        let _ = host;
        Vars::new()
    }

    /// The groups a host belongs to, directly or through children, without `all`, sorted.
    pub fn group_names(&self, host: &str) -> Vec<String> {
        let _ = host;
        Vec::new()
    }

    /// The `groups` variable: every group name to its hosts (recursively), in order.
    pub fn groups_var(&self) -> IndexMap<String, Vec<String>> {
        IndexMap::new()
    }

    /// The hosts matching an Ansible host pattern, in inventory order.
    pub fn select(&self, pattern: &str) -> anyhow::Result<Vec<String>> {
        let _ = pattern;
        Ok(Vec::new())
    }
}
