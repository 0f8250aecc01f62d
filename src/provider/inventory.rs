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
    if !inventory.hosts.contains_key(host) {
        return;
    }
    inventory.set_host_var(host, "ansible_host", Value::String(ip.to_string()));
    inventory.set_host_var(host, "ansible_user", Value::String("root".into()));
    inventory.set_host_var(
        host,
        "ansible_ssh_private_key_file",
        Value::String(key_file.to_string_lossy().into_owned()),
    );
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

    #[test]
    fn fill_and_drop() {
        let mut inv = Inventory::parse(
            "all:\n  vars:\n    infra_provider: docker\n  children:\n    web:\n      hosts:\n        a:\n        b:\n",
            Path::new("/x/lab.yaml"),
        )
        .unwrap();
        let spec = cluster_spec(&inv).unwrap().unwrap();
        assert_eq!(spec.name, "lab");
        assert_eq!(spec.hosts.len(), 2);
        fill_host(&mut inv, "a", "10.213.0.10", Path::new("/s/id_ed25519"));
        assert_eq!(inv.hosts["a"].vars["ansible_host"], "10.213.0.10");
        assert_eq!(inv.hosts["a"].vars["ansible_user"], "root");
        assert_eq!(
            inv.hosts["a"].vars["ansible_ssh_private_key_file"],
            "/s/id_ed25519"
        );
        drop_hosts(&mut inv, &["b".to_string()]);
        assert!(!inv.hosts.contains_key("b"));
        assert_eq!(inv.select("all").unwrap(), vec!["a".to_string()]);
        assert_eq!(inv.select("web").unwrap(), vec!["a".to_string()]);
        assert_eq!(inv.host_vars("a")["ansible_host"], "10.213.0.10");
    }

    fn project_inventory(name: &str) -> Inventory {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("inventories")
            .join(name);
        Inventory::load(&path).unwrap()
    }

    #[test]
    fn the_local_inventory_is_a_six_host_docker_cluster() {
        let inv = project_inventory("local.yaml");
        let spec = cluster_spec(&inv).unwrap().unwrap();
        assert_eq!(spec.name, "local");
        let hosts: Vec<&str> = spec.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            hosts,
            [
                "control1",
                "compute1",
                "compute2",
                "proxy1",
                "registry1",
                "logserver1"
            ]
        );
        for group in ["control", "compute", "proxy", "registry", "logserver"] {
            assert!(!inv.select(group).unwrap().is_empty(), "{group}");
        }
        assert_eq!(inv.host_vars("compute2")["datacenter"], "dc1");
    }

    #[test]
    fn the_multi_dc_inventory_has_two_datacenters() {
        let inv = project_inventory("multi-dc.yaml");
        let spec = cluster_spec(&inv).unwrap().unwrap();
        assert_eq!(spec.name, "multidc");
        assert_eq!(spec.hosts.len(), 5);
        assert_eq!(inv.host_vars("dc1-compute2")["datacenter"], "dc1");
        assert_eq!(inv.host_vars("dc2-control1")["datacenter"], "dc2");
        assert_eq!(
            inv.select("control").unwrap(),
            ["dc1-control1", "dc2-control1"]
        );
        assert_eq!(inv.select("dc2").unwrap(), ["dc2-control1", "dc2-compute1"]);
    }

    #[test]
    fn the_vagrant_inventory_creates_nothing() {
        let inv = project_inventory("vagrant.yaml");
        assert_eq!(cluster_spec(&inv).unwrap(), None);
        assert_eq!(inv.host_vars("proxy1")["ansible_host"], "192.168.56.31");
        assert_eq!(inv.select("all").unwrap().len(), 6);
    }
}
