//! What `infra up` adds around the engine run for the platform's playbooks: the cluster CA
//! and host certificates (src/pki) and the variables that point the roles at them and at the
//! running binary; afterwards, the context file that tells `infra deploy` where the
//! schedulers are.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use crate::client::context;
use crate::inventory::Inventory;
use crate::pki::{HostNames, Pki};
use crate::Vars;

/// The group whose hosts run `infra scheduler`, and the port its API listens on.
const CONTROL_GROUP: &str = "control";
const SCHEDULER_PORT: u16 = 8080;

/// Opens (or creates) the CA in `<state>/pki`, issues a certificate to every host of the
/// inventory, and returns the variables the roles use: `infra_pki_dir`, `infra_binary`,
/// `infra_binary_arch`.
pub fn prepare(inventory: &Inventory, state: &Path) -> anyhow::Result<Vars> {
    let pki = Pki::open(&state.join("pki"))
        .with_context(|| format!("the cluster CA in {}", state.join("pki").display()))?;
    for host in inventory.hosts.keys() {
        let vars = inventory.host_vars(host);
        let addresses = ["ansible_host"]
            .iter()
            .filter_map(|k| vars.get(*k).and_then(Value::as_str))
            .map(str::to_string)
            .collect();
        pki.ensure_host(&HostNames {
            host: host.clone(),
            addresses,
        })?;
    }
    let binary = std::env::current_exe().context("locating the running infra binary")?;
    let mut vars = Vars::new();
    vars.insert(
        "infra_pki_dir".into(),
        Value::String(pki.dir().to_string_lossy().into_owned()),
    );
    vars.insert(
        "infra_binary".into(),
        Value::String(binary.to_string_lossy().into_owned()),
    );
    vars.insert(
        "infra_binary_arch".into(),
        Value::String(std::env::consts::ARCH.into()),
    );
    Ok(vars)
}

/// Adds `ours` to the run's extra variables, without overriding what the user gave with -e.
pub fn merge_under(extra_vars: &mut Vars, ours: Vars) {
    for (key, value) in ours {
        extra_vars.entry(key).or_insert(value);
    }
}

/// The scheduler URLs of the inventory's control hosts, as the machine that ran `infra up`
/// reaches them (their `ansible_host`, else their name).
pub fn scheduler_urls(inventory: &Inventory) -> Vec<String> {
    inventory
        .group_hosts(CONTROL_GROUP)
        .iter()
        .map(|host| {
            let vars = inventory.host_vars(host);
            let address = vars
                .get("ansible_host")
                .and_then(Value::as_str)
                .unwrap_or(host)
                .to_string();
            format!("https://{address}:{SCHEDULER_PORT}")
        })
        .collect()
}

/// Writes the context file (mode 0600): the scheduler URLs, the cluster CA and the admin
/// token; returns its path.
pub fn write_context(
    schedulers: Vec<String>,
    ca: PathBuf,
    token: Option<String>,
) -> anyhow::Result<PathBuf> {
    context::write(&context::Context {
        schedulers,
        ca: Some(ca),
        token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_urls_use_the_control_hosts_addresses() {
        let inv = Inventory::parse(
            "all:\n  children:\n    control:\n      hosts:\n        c1:\n          ansible_host: 10.0.0.2\n        c2:\n    compute:\n      hosts:\n        n1:\n",
            Path::new("inv.yaml"),
        )
        .unwrap();
        assert_eq!(
            scheduler_urls(&inv),
            vec!["https://10.0.0.2:8080", "https://c2:8080"]
        );
    }

    #[test]
    fn user_extra_vars_win_over_ours() {
        let mut extra = Vars::new();
        extra.insert("infra_binary".into(), "/mine".into());
        let mut ours = Vars::new();
        ours.insert("infra_binary".into(), "/ours".into());
        ours.insert("infra_pki_dir".into(), "/pki".into());
        merge_under(&mut extra, ours);
        assert_eq!(extra["infra_binary"], "/mine");
        assert_eq!(extra["infra_pki_dir"], "/pki");
    }

    #[test]
    fn prepare_issues_a_certificate_per_host_with_its_address() {
        let dir = tempfile::tempdir().unwrap();
        let inv = Inventory::parse(
            "all:\n  hosts:\n    a:\n      ansible_host: 10.9.8.7\n    b:\n",
            Path::new("inv.yaml"),
        )
        .unwrap();
        let vars = prepare(&inv, dir.path()).unwrap();
        let pki = dir.path().join("pki");
        assert_eq!(vars["infra_pki_dir"], pki.to_str().unwrap());
        assert_eq!(vars["infra_binary_arch"], std::env::consts::ARCH);
        let sans = std::fs::read_to_string(pki.join("hosts/a.sans")).unwrap();
        assert!(sans.contains("10.9.8.7"), "{sans}");
        assert!(pki.join("hosts/b.crt").is_file() && pki.join("ca.crt").is_file());
    }
}
