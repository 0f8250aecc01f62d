//! Between the provider and the inventory: which hosts the inventory asks the provider to
//! create, and filling in what a run needs to reach them (`ansible_host`, `ansible_user`,
//! `ansible_ssh_private_key_file`) once they exist.

use std::path::Path;

use serde_json::Value;

use super::cluster::{default_cluster_name, spec_from_host_vars, ClusterSpec};
use crate::inventory::Inventory;
use crate::Vars;

/// The cluster the inventory asks for, if any host has `infra_provider: docker`.
pub fn cluster_spec(inventory: &Inventory) -> anyhow::Result<Option<ClusterSpec>> {
    let merged: Vec<(String, Vars)> = inventory
        .hosts
        .keys()
        .map(|name| (name.clone(), inventory.host_vars(name)))
        .collect();
    spec_from_host_vars(
        &default_cluster_name(&inventory.path),
        merged.iter().map(|(n, v)| (n.as_str(), v)),
    )
}

/// Sets connection variables on a created host (host-level vars win within the inventory).
pub fn fill_host(inventory: &mut Inventory, host: &str, ip: &str, key_file: &Path) {
    if let Some(entry) = inventory.hosts.get_mut(host) {
        entry.vars.insert("ansible_host".into(), Value::String(ip.to_string()));
        entry.vars.insert("ansible_user".into(), Value::String("root".into()));
        entry.vars.insert(
            "ansible_ssh_private_key_file".into(),
            Value::String(key_file.to_string_lossy().into_owned()),
        );
    }
}

/// Takes hosts out of the run (not created in check mode, or unreachable).
pub fn drop_hosts(inventory: &mut Inventory, hosts: &[String]) {
    for host in hosts {
        inventory.hosts.shift_remove(host);
        for group in inventory.groups.values_mut() {
            group.hosts.retain(|h| h != host);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Group, Host};

    #[test]
    fn fill_and_drop() {
        let mut inv = Inventory::default();
        for name in ["a", "b"] {
            inv.hosts.insert(name.into(), Host { name: name.into(), vars: Vars::new() });
        }
        inv.groups.insert(
            "all".into(),
            Group { name: "all".into(), hosts: vec!["a".into(), "b".into()], ..Default::default() },
        );
        fill_host(&mut inv, "a", "10.213.0.10", Path::new("/s/id_ed25519"));
        assert_eq!(inv.hosts["a"].vars["ansible_host"], "10.213.0.10");
        assert_eq!(inv.hosts["a"].vars["ansible_user"], "root");
        assert_eq!(inv.hosts["a"].vars["ansible_ssh_private_key_file"], "/s/id_ed25519");
        drop_hosts(&mut inv, &["b".to_string()]);
        assert!(!inv.hosts.contains_key("b"));
        assert_eq!(inv.groups["all"].hosts, vec!["a".to_string()]);
    }
}
