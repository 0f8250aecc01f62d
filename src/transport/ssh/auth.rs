//! Public-key authentication, in OpenSSH's order: the inventory's key file
//! (`ansible_ssh_private_key_file`) and the ssh-agent's keys when a key file is given;
//! otherwise the agent's keys and then `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`.
//! ed25519, ECDSA and RSA keys (RSA signs with rsa-sha2-512/256 as the server allows).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use russh::client::Handle;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};

use super::host_keys::HostKeyCheck;

/// Logs `user` in on `handle`, or says which keys were tried.
pub async fn authenticate(
    handle: &mut Handle<HostKeyCheck>,
    user: &str,
    key_file: Option<&Path>,
) -> anyhow::Result<()> {
    let mut tried: Vec<String> = Vec::new();
    let mut rsa_hash: Option<Option<HashAlg>> = None;

    if let Some(path) = key_file {
        let key = load_key(path)?;
        if try_key(handle, user, key, &mut rsa_hash).await? {
            return Ok(());
        }
        tried.push(path.display().to_string());
    }

    if let Some(sock) = std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty()) {
        match try_agent(handle, user, &mut rsa_hash, &mut tried).await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => tracing::debug!("ssh-agent at {:?} not usable: {e:#}", sock),
        }
    }

    if key_file.is_none() {
        for path in default_key_files() {
            if !path.exists() {
                continue;
            }
            let key = match load_key(&path) {
                Ok(key) => key,
                Err(e) => {
                    tracing::debug!("skipping {}: {e:#}", path.display());
                    continue;
                }
            };
            if try_key(handle, user, key, &mut rsa_hash).await? {
                return Ok(());
            }
            tried.push(path.display().to_string());
        }
    }

    if tried.is_empty() {
        anyhow::bail!(
            "no SSH key to log in as {user}: give ansible_ssh_private_key_file, run an ssh-agent, \
             or create ~/.ssh/id_ed25519"
        );
    }
    anyhow::bail!(
        "authentication as {user} failed: the server accepted none of the keys tried ({})",
        tried.join(", ")
    )
}

fn default_key_files() -> Vec<PathBuf> {
    let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
        return Vec::new();
    };
    let ssh = PathBuf::from(home).join(".ssh");
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|name| ssh.join(name))
        .collect()
}

fn load_key(path: &Path) -> anyhow::Result<PrivateKey> {
    match russh::keys::load_secret_key(path, None) {
        Ok(key) => Ok(key),
        Err(russh::keys::Error::KeyIsEncrypted) => anyhow::bail!(
            "key file {} is protected by a passphrase; add it to ssh-agent instead",
            path.display()
        ),
        Err(e) => Err(e).with_context(|| format!("cannot load key file {}", path.display())),
    }
}

/// The RSA signature hash the server accepts (asked once per connection).
async fn rsa_hash_for(
    handle: &Handle<HostKeyCheck>,
    cache: &mut Option<Option<HashAlg>>,
) -> Option<HashAlg> {
    if let Some(hash) = *cache {
        return hash;
    }
    let hash = match handle.best_supported_rsa_hash().await {
        Ok(Some(hash)) => hash,
        // No server-sig-algs: assume a modern server (rsa-sha2-256 since OpenSSH 7.2).
        _ => Some(HashAlg::Sha256),
    };
    *cache = Some(hash);
    hash
}

async fn try_key(
    handle: &mut Handle<HostKeyCheck>,
    user: &str,
    key: PrivateKey,
    rsa_hash: &mut Option<Option<HashAlg>>,
) -> anyhow::Result<bool> {
    let hash = if key.algorithm().is_rsa() {
        rsa_hash_for(handle, rsa_hash).await
    } else {
        None
    };
    let result = handle
        .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
        .await
        .context("public key authentication")?;
    Ok(result.success())
}

async fn try_agent(
    handle: &mut Handle<HostKeyCheck>,
    user: &str,
    rsa_hash: &mut Option<Option<HashAlg>>,
    tried: &mut Vec<String>,
) -> anyhow::Result<bool> {
    let mut agent = russh::keys::agent::client::AgentClient::connect_env()
        .await
        .context("connect to ssh-agent")?;
    let identities = agent
        .request_identities()
        .await
        .context("list ssh-agent keys")?;
    for identity in identities {
        let key: PublicKey = match identity {
            russh::keys::agent::AgentIdentity::PublicKey { key, .. } => key,
            russh::keys::agent::AgentIdentity::Certificate { .. } => continue,
        };
        let hash = if key.algorithm().is_rsa() {
            rsa_hash_for(handle, rsa_hash).await
        } else {
            None
        };
        let label = format!("agent key {}", key.fingerprint(HashAlg::Sha256));
        match handle
            .authenticate_publickey_with(user, key, hash, &mut agent)
            .await
        {
            Ok(result) if result.success() => return Ok(true),
            Ok(_) => tried.push(label),
            Err(e) => tracing::debug!("{label}: {e}"),
        }
    }
    Ok(false)
}
