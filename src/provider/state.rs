//! The cluster's state folder (`.infra/<cluster>/` or `$INFRA_HOME/<cluster>/`): the cluster
//! SSH key, generated once (ed25519, OpenSSH format, mode 0600), and `known_hosts`, rewritten
//! from the hosts' own keys after each `infra up` so host-key checking stays on.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rand::RngCore;
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::ssh_key::LineEnding;
use russh::keys::PrivateKey;

use crate::fsutil::{write_atomic, Mode};

/// A host's entry in known_hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownHost {
    pub name: String,
    pub ip: String,
    /// `ssh-ed25519 AAAA...` (algorithm and base64, no comment).
    pub key: String,
}

#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    pub fn new(path: PathBuf) -> StateDir {
        StateDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn private_key_path(&self) -> PathBuf {
        self.path.join("id_ed25519")
    }

    pub fn public_key_path(&self) -> PathBuf {
        self.path.join("id_ed25519.pub")
    }

    pub fn known_hosts_path(&self) -> PathBuf {
        self.path.join("known_hosts")
    }

    /// Creates the folder and the cluster key if missing; returns the public key line.
    pub fn ensure_key(&self, cluster: &str) -> anyhow::Result<String> {
        fs::create_dir_all(&self.path)
            .with_context(|| format!("cannot create the state folder {}", self.path.display()))?;
        fs::set_permissions(&self.path, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {}", self.path.display()))?;
        let private = self.private_key_path();
        let key = if private.exists() {
            PrivateKey::read_openssh_file(&private)
                .with_context(|| format!("cannot read the cluster key {}", private.display()))?
        } else {
            let key = generate_ed25519(&format!("infra-{cluster}"))?;
            let pem = key
                .to_openssh(LineEnding::LF)
                .context("cannot encode the cluster key")?;
            write_atomic(&private, pem.as_bytes(), Mode::Set(0o600))?;
            key
        };
        let public = key
            .public_key()
            .to_openssh()
            .context("cannot encode the cluster's public key")?;
        write_atomic(
            &self.public_key_path(),
            format!("{public}\n").as_bytes(),
            Mode::Set(0o644),
        )?;
        Ok(public)
    }

    /// Records `hosts` in known_hosts: one `<ip> <key>` and one `<name> <key>` line each.
    /// Lines of other hosts are kept (an `up --limit` run knows only some hosts), except
    /// those for a name or address given here: a recreated host, or an address reused by
    /// another host, never keeps a stale key.
    pub fn write_known_hosts(&self, hosts: &[KnownHost]) -> anyhow::Result<()> {
        fs::create_dir_all(&self.path)
            .with_context(|| format!("cannot create the state folder {}", self.path.display()))?;
        let existing = match fs::read_to_string(self.known_hosts_path()) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("cannot read {}", self.known_hosts_path().display()))
            }
        };
        write_atomic(
            &self.known_hosts_path(),
            merged_known_hosts(&existing, hosts).as_bytes(),
            Mode::Set(0o644),
        )
    }
}

/// `existing` without the lines of `hosts`' names and addresses, then `hosts`' lines.
fn merged_known_hosts(existing: &str, hosts: &[KnownHost]) -> String {
    let replaced = |line: &str| {
        let first = line.split_whitespace().next().unwrap_or("");
        hosts.iter().any(|h| h.name == first || h.ip == first)
    };
    let mut text: String = existing
        .lines()
        .filter(|line| !line.trim().is_empty() && !replaced(line))
        .map(|line| format!("{line}\n"))
        .collect();
    text.push_str(&known_hosts_text(hosts));
    text
}

pub fn known_hosts_text(hosts: &[KnownHost]) -> String {
    let mut text = String::new();
    for host in hosts {
        text.push_str(&format!("{} {}\n", host.ip, host.key));
        text.push_str(&format!("{} {}\n", host.name, host.key));
    }
    text
}

fn generate_ed25519(comment: &str) -> anyhow::Result<PrivateKey> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let keypair = Ed25519Keypair::from_seed(&seed);
    PrivateKey::new(KeypairData::from(keypair), comment).context("cannot build the cluster key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_generated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("c1"));
        let first = state.ensure_key("c1").unwrap();
        assert!(first.starts_with("ssh-ed25519 "), "{first}");
        let mode = fs::metadata(state.private_key_path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = state.ensure_key("c1").unwrap();
        assert_eq!(first, second);
        // ssh-keygen must accept the private key and derive the same public key.
        let out = std::process::Command::new("ssh-keygen")
            .arg("-y")
            .arg("-f")
            .arg(state.private_key_path())
            .output()
            .expect("ssh-keygen (openssh-client) is needed for this test");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let derived = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            derived.split_whitespace().nth(1),
            first.split_whitespace().nth(1)
        );
    }

    #[test]
    fn known_hosts_keeps_other_hosts_and_replaces_reused_names_and_addresses() {
        let host = |name: &str, ip: &str, key: &str| KnownHost {
            name: name.into(),
            ip: ip.into(),
            key: key.into(),
        };
        let existing = known_hosts_text(&[
            host("web1", "10.0.0.2", "ssh-ed25519 OLD1"),
            host("web2", "10.0.0.3", "ssh-ed25519 OLD2"),
        ]);
        // web1 recreated with a new key; web3 got web2's old address.
        let merged = merged_known_hosts(
            &existing,
            &[
                host("web1", "10.0.0.2", "ssh-ed25519 NEW1"),
                host("web3", "10.0.0.3", "ssh-ed25519 NEW3"),
            ],
        );
        assert_eq!(
            merged,
            "web2 ssh-ed25519 OLD2\n10.0.0.2 ssh-ed25519 NEW1\nweb1 ssh-ed25519 NEW1\n\
             10.0.0.3 ssh-ed25519 NEW3\nweb3 ssh-ed25519 NEW3\n"
        );
    }

    #[test]
    fn known_hosts_lists_ip_and_name() {
        let hosts = [KnownHost {
            name: "web1".into(),
            ip: "10.213.0.10".into(),
            key: "ssh-ed25519 AAAA".into(),
        }];
        assert_eq!(
            known_hosts_text(&hosts),
            "10.213.0.10 ssh-ed25519 AAAA\nweb1 ssh-ed25519 AAAA\n"
        );
    }
}
