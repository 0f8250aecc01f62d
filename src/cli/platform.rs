//! What `infra up` adds around the engine run for the platform's playbooks: the cluster CA
//! and host certificates (src/pki) and the variables that point the roles at them and at the
//! running binary; afterwards, the context file that tells `infra deploy` where the
//! schedulers are.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use crate::client::context;
use crate::inventory::Inventory;
use crate::pki::{HostNames, Pki, ETCD_CA_NAME};
use crate::scheduler::tokens::{self, Role};
use crate::Vars;

/// The group whose hosts run `infra scheduler`, and the port its API listens on.
const CONTROL_GROUP: &str = "control";
const SCHEDULER_PORT: u16 = 8080;

/// Opens (or creates) the CA in `<state>/pki`, issues a certificate to every host of the
/// inventory, makes the admin token on the first run, and returns the variables the roles
/// use: `infra_pki_dir`, `infra_etcd_pki_dir`, `infra_bootstrap_tokens`,
/// `infra_binary`, `infra_binary_arch`.
pub fn prepare(inventory: &Inventory, state: &Path) -> anyhow::Result<Vars> {
    let pki = Pki::open(&state.join("pki"))
        .with_context(|| format!("the cluster CA in {}", state.join("pki").display()))?;
    for host in inventory.hosts.keys() {
        pki.ensure_host(&HostNames {
            host: host.clone(),
            addresses: ansible_host(inventory, host),
        })?;
    }
    // etcd's client port: a CA of its own that certifies the control nodes only.
    let etcd_dir = state.join("pki").join("etcd");
    let etcd_pki = Pki::open_named(&etcd_dir, ETCD_CA_NAME)
        .with_context(|| format!("etcd's CA in {}", etcd_dir.display()))?;
    for host in inventory.group_hosts(CONTROL_GROUP) {
        etcd_pki.ensure_host(&HostNames {
            addresses: ansible_host(inventory, &host),
            host,
        })?;
    }
    let admin = ensure_admin_token(state)?;
    let binary = std::env::current_exe().context("locating the running infra binary")?;
    let mut vars = Vars::new();
    vars.insert(
        "infra_etcd_pki_dir".into(),
        Value::String(etcd_pki.dir().to_string_lossy().into_owned()),
    );
    vars.insert(
        "infra_bootstrap_tokens".into(),
        Value::String(admin.bootstrap_file.to_string_lossy().into_owned()),
    );
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

/// The admin token `infra up` made, and the file that gives its hash to the schedulers.
pub struct AdminToken {
    /// Kept in `<state>/auth/admin.token` (0600) and written into the context file.
    pub token: String,
    /// `<state>/auth/bootstrap-tokens.json`, for the schedulers' `--bootstrap-tokens`.
    pub bootstrap_file: PathBuf,
}

/// The admin token, made on the first run and kept in the cluster's state folder, so a
/// second run changes nothing.
///
/// Bootstrap: the schedulers get the token's record (its id, role and the SHA-256 of its
/// secret, never the secret) in a file they read at start (`--bootstrap-tokens`), rather
/// than `infra up` writing it into the store. Every control node gets the same file, so
/// the token is valid on all of them from their first start, before any of them leads
/// (writing to the store needs a leader, and with etcd a running quorum); and a token
/// that lives in a file on the control nodes cannot be revoked by accident through the
/// API, which would lock the operator out. More tokens are made through the API and live
/// in the store.
pub fn ensure_admin_token(state: &Path) -> anyhow::Result<AdminToken> {
    let dir = state.join("auth");
    let token_file = dir.join("admin.token");
    let bootstrap_file = dir.join("bootstrap-tokens.json");
    if token_file.is_file() && bootstrap_file.is_file() {
        let token = std::fs::read_to_string(&token_file)
            .with_context(|| format!("reading {}", token_file.display()))?
            .trim()
            .to_string();
        return Ok(AdminToken {
            token,
            bootstrap_file,
        });
    }
    let new = tokens::generate(Role::Admin, Vec::new(), "admin (infra up)".into());
    let records = serde_json::to_vec_pretty(&[&new.record]).context("serializing the token")?;
    // The token first: a hash without its token would lock the operator out.
    crate::fsutil::write_private(&token_file, new.token.as_bytes())?;
    crate::fsutil::write_private(&bootstrap_file, &records)?;
    Ok(AdminToken {
        token: new.token,
        bootstrap_file,
    })
}

/// A host's `ansible_host`, the address it is reached at (none when unset).
fn ansible_host(inventory: &Inventory, host: &str) -> Vec<String> {
    let vars = inventory.host_vars(host);
    vars.get("ansible_host")
        .and_then(Value::as_str)
        .map(str::to_string)
        .into_iter()
        .collect()
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
        let bootstrap = vars["infra_bootstrap_tokens"].as_str().unwrap();
        assert!(std::path::Path::new(bootstrap).is_file());
    }

    #[test]
    fn the_admin_token_is_made_once_and_only_its_hash_goes_to_the_schedulers() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = ensure_admin_token(dir.path()).unwrap();
        let again = ensure_admin_token(dir.path()).unwrap();
        assert_eq!(first.token, again.token);
        let records: Vec<tokens::TokenRecord> =
            serde_json::from_slice(&std::fs::read(&first.bootstrap_file).unwrap()).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].role, Role::Admin);
        let (id, secret) = tokens::split(&first.token).unwrap();
        assert_eq!(records[0].id, id);
        assert!(tokens::matches(&records[0], secret));
        let text = std::fs::read_to_string(&first.bootstrap_file).unwrap();
        assert!(!text.contains(secret));
        for file in [dir.path().join("auth/admin.token"), first.bootstrap_file] {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", file.display());
        }
    }
}
