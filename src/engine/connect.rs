//! One connection per host for the whole run: connection specs from a host's variables
//! (`ansible_host`, `ansible_port`, `ansible_user`, `ansible_ssh_private_key_file`,
//! `ansible_connection`, `UserKnownHostsFile` in `ansible_ssh_common_args`), opened on first
//! use (so the hosts of a task connect in parallel) and kept, failures included: a host
//! that could not be reached stays unreachable for the run.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::OnceCell;

use crate::playbook::keywords;
use crate::transport::local::LocalTransport;
use crate::transport::mux::{self, Keep, Persist};
use crate::transport::{self, ConnectSpec, Transport};
use crate::Vars;

type Slot = Arc<OnceCell<Result<Arc<dyn Transport>, String>>>;

/// The run's connections, by host name.
pub struct Pool {
    slots: Mutex<HashMap<String, Slot>>,
    known_hosts: Vec<PathBuf>,
    accept_new: bool,
    /// Connections kept between runs, unless a host's ssh options say otherwise.
    persist: Option<Persist>,
}

impl Pool {
    pub fn new(known_hosts: Vec<PathBuf>, accept_new: bool, persist: Option<Persist>) -> Self {
        Pool {
            slots: Mutex::new(HashMap::new()),
            known_hosts,
            accept_new,
            persist,
        }
    }

    /// The connection to `name`, opened with `vars` the first time. An error is the
    /// reason the host is unreachable.
    pub async fn get(&self, name: &str, vars: &Vars) -> Result<Arc<dyn Transport>, String> {
        let slot = {
            let mut slots = match self.slots.lock() {
                Ok(s) => s,
                Err(poisoned) => poisoned.into_inner(),
            };
            slots.entry(name.to_string()).or_default().clone()
        };
        // Every task asks; only the first on a host reads its connection variables.
        slot.get_or_init(|| async move {
            let spec = spec_from_vars(name, vars, &self.known_hosts, self.accept_new);
            let persist = self.persist.as_ref().map(|p| match host_keep(vars) {
                Some(keep) => p.with_keep(keep),
                None => p.clone(),
            });
            if spec.local {
                let local: Arc<dyn Transport> = Arc::new(LocalTransport::new(&spec.name));
                return Ok(local);
            }
            let connected = match &persist {
                Some(persist) => mux::connect(&spec, persist).await,
                None => transport::connect(&spec).await,
            };
            connected.map_err(|e| format!("{e:#}"))
        })
        .await
        .clone()
    }

    /// Closes the connection to `name` (`meta: reset_connection`); the next task opens a
    /// new one.
    pub async fn reset(&self, name: &str) {
        let slot = match self.slots.lock() {
            Ok(mut s) => s.remove(name),
            Err(poisoned) => poisoned.into_inner().remove(name),
        };
        if let Some(Ok(t)) = slot.as_ref().and_then(|s| s.get()) {
            t.reset().await;
        }
    }

    /// Closes every open connection.
    pub async fn close_all(&self) {
        let slots: Vec<Slot> = match self.slots.lock() {
            Ok(s) => s.values().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().values().cloned().collect(),
        };
        for slot in slots {
            if let Some(Ok(t)) = slot.get() {
                t.close().await;
            }
        }
    }
}

fn str_var(vars: &Vars, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| match vars.get(*n) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// The controller's user name (the default `ansible_user`).
pub fn controller_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            // SAFETY: getpwuid returns a pointer into static storage or null; we only read it.
            unsafe {
                let pw = libc::getpwuid(libc::getuid());
                if pw.is_null() || (*pw).pw_name.is_null() {
                    return None;
                }
                std::ffi::CStr::from_ptr((*pw).pw_name)
                    .to_str()
                    .ok()
                    .map(String::from)
            }
        })
        .unwrap_or_else(|| "root".to_string())
}

/// How to reach a host, from its variables.
pub fn spec_from_vars(
    name: &str,
    vars: &Vars,
    known_hosts: &[PathBuf],
    accept_new: bool,
) -> ConnectSpec {
    let connection = str_var(vars, &["ansible_connection", keywords::CONNECTION_VAR]);
    let address = str_var(vars, &["ansible_host", "ansible_ssh_host"]);
    let local = match connection.as_deref() {
        Some("local") => true,
        Some(_) => false,
        // Ansible's implicit localhost.
        None => address.is_none() && matches!(name, "localhost" | "127.0.0.1"),
    };
    let port = str_var(
        vars,
        &["ansible_port", "ansible_ssh_port", keywords::PORT_VAR],
    )
    .and_then(|p| p.parse().ok())
    .unwrap_or(22);
    let mut known = known_hosts.to_vec();
    for args_var in ["ansible_ssh_common_args", "ansible_ssh_extra_args"] {
        if let Some(args) = str_var(vars, &[args_var]) {
            known.extend(user_known_hosts_files(&args));
        }
    }
    let timeout = str_var(vars, &["ansible_timeout", "ansible_ssh_timeout"])
        .and_then(|t| t.parse().ok())
        .unwrap_or(10);
    ConnectSpec {
        name: name.to_string(),
        address: address.unwrap_or_else(|| name.to_string()),
        port,
        user: str_var(
            vars,
            &[
                "ansible_user",
                "ansible_ssh_user",
                keywords::REMOTE_USER_VAR,
            ],
        )
        .unwrap_or_else(controller_user),
        key_file: str_var(
            vars,
            &["ansible_ssh_private_key_file", "ansible_private_key_file"],
        )
        .map(|p| PathBuf::from(expand_home(&p))),
        local,
        known_hosts: known,
        accept_new,
        connect_timeout: Duration::from_secs(timeout),
        retries: 3,
    }
}

fn expand_home(path: &str) -> String {
    match (path.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => path.to_string(),
    }
}

/// The `-o Key=Value` options in ssh arguments (`-o Key Value` and `-oKey=Value` too).
fn ssh_options(args: &str) -> Vec<(String, String)> {
    let words = shlex::split(args).unwrap_or_default();
    let mut out = Vec::new();
    let mut iter = words.iter();
    while let Some(w) = iter.next() {
        let opt = if w == "-o" {
            iter.next().map(String::as_str)
        } else {
            w.strip_prefix("-o")
        };
        let Some(opt) = opt else { continue };
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => match opt.split_once(' ') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => continue,
            },
        };
        out.push((key.to_string(), value.to_string()));
    }
    out
}

/// `UserKnownHostsFile` values in ssh options (`-o UserKnownHostsFile=/x /y`).
fn user_known_hosts_files(args: &str) -> Vec<PathBuf> {
    ssh_options(args)
        .into_iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case("UserKnownHostsFile"))
        .flat_map(|(_, value)| {
            value
                .split_whitespace()
                .filter(|p| *p != "/dev/null")
                .map(|p| PathBuf::from(expand_home(p)))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A host's own say on keeping its connection: `ControlMaster`/`ControlPersist` in its
/// `ansible_ssh_common_args` or `ansible_ssh_extra_args`. As ssh reads options, the first
/// value of each wins; `ControlMaster=no` keeps nothing whatever `ControlPersist` says.
fn host_keep(vars: &Vars) -> Option<Keep> {
    let mut master = None;
    let mut persist = None;
    for args_var in ["ansible_ssh_common_args", "ansible_ssh_extra_args"] {
        let Some(args) = str_var(vars, &[args_var]) else {
            continue;
        };
        for (key, value) in ssh_options(&args) {
            if key.eq_ignore_ascii_case("ControlMaster") && master.is_none() {
                master = Some(Keep::from_ssh_option(&key, &value));
            } else if key.eq_ignore_ascii_case("ControlPersist") && persist.is_none() {
                persist = Keep::from_ssh_option(&key, &value);
            }
        }
    }
    match master {
        Some(Some(Keep::No)) => Some(Keep::No),
        _ => persist,
    }
}

/// Whether an error means the host cannot be reached (rather than a task failure).
pub fn is_unreachable(err: &anyhow::Error) -> bool {
    transport::is_unreachable(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(v: Value) -> Vars {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_hosts_ssh_options_decide_keeping_as_ssh_reads_them() {
        let keep = |common: &str, extra: &str| {
            host_keep(&vars(json!({
                "ansible_ssh_common_args": common,
                "ansible_ssh_extra_args": extra,
            })))
        };
        assert_eq!(keep("", ""), None);
        assert_eq!(
            keep("-o ControlMaster=auto -o ControlPersist=5m", ""),
            Some(Keep::For(Duration::from_secs(300)))
        );
        assert_eq!(
            keep("-o ControlPersist=10s", "-o ControlPersist=20s"),
            Some(Keep::For(Duration::from_secs(10))),
            "the first value wins"
        );
        assert_eq!(
            keep("-oControlPersist=yes", "-o ControlMaster=no"),
            Some(Keep::No)
        );
        assert_eq!(
            keep("-o 'ControlMaster auto' -o 'ControlPersist no'", ""),
            Some(Keep::No)
        );
        assert_eq!(keep("-o UserKnownHostsFile=/tmp/kh", ""), None);
    }

    #[test]
    fn spec_reads_ansible_vars() {
        let v = vars(json!({
            "ansible_host": "127.0.0.1",
            "ansible_port": 2222,
            "ansible_user": "deploy",
            "ansible_ssh_private_key_file": "/k/id",
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=yes -o UserKnownHostsFile=/tmp/kh"
        }));
        let s = spec_from_vars("web1", &v, &[PathBuf::from("/cli/kh")], true);
        assert_eq!(s.address, "127.0.0.1");
        assert_eq!(s.port, 2222);
        assert_eq!(s.user, "deploy");
        assert_eq!(s.key_file, Some(PathBuf::from("/k/id")));
        assert!(!s.local);
        assert!(s.accept_new);
        assert_eq!(
            s.known_hosts,
            vec![PathBuf::from("/cli/kh"), PathBuf::from("/tmp/kh")]
        );
    }

    /// Ansible: connection variables (from the inventory, say) beat the `remote_user`,
    /// `port` and `connection` keywords; the keywords apply where no variable is set.
    #[test]
    fn connection_variables_beat_keywords() {
        let both = vars(json!({
            "ansible_user": "inventory-user",
            "ansible_port": 2200,
            keywords::REMOTE_USER_VAR: "play-user",
            keywords::PORT_VAR: 2300,
            keywords::CONNECTION_VAR: "local",
            "ansible_connection": "ssh",
        }));
        let s = spec_from_vars("web1", &both, &[], false);
        assert_eq!(
            (s.user.as_str(), s.port, s.local),
            ("inventory-user", 2200, false)
        );
        let keyword_only = vars(json!({
            keywords::REMOTE_USER_VAR: "play-user",
            keywords::PORT_VAR: 2300,
        }));
        let s = spec_from_vars("web1", &keyword_only, &[], false);
        assert_eq!((s.user.as_str(), s.port), ("play-user", 2300));
    }

    #[test]
    fn local_connection_and_implicit_localhost() {
        let s = spec_from_vars(
            "x",
            &vars(json!({"ansible_connection": "local"})),
            &[],
            false,
        );
        assert!(s.local);
        assert!(spec_from_vars("localhost", &Vars::new(), &[], false).local);
        let ssh = vars(json!({"ansible_host": "127.0.0.1"}));
        assert!(!spec_from_vars("localhost", &ssh, &[], false).local);
        let d = spec_from_vars("web", &Vars::new(), &[], false);
        assert_eq!((d.address.as_str(), d.port), ("web", 22));
    }
}
