//! Ansible Vault: files and `!vault` values that `ansible-vault` made are read, and what
//! `infra vault` writes `ansible-vault` reads (format 1.1 and 1.2, AES256).
//!
//! The crypto ([`cipher`], [`format`]) is pure. [`secrets`] reads passwords. This module
//! also holds the run's keyring and the list of decrypted values: the YAML loader, the
//! inventory, vars files and the copy/template modules all meet vault data, and they are
//! reached from many places; the keyring is set once by the command line before anything
//! is loaded (so a wrong password stops the run before any host is contacted), and every
//! value that came out of a vault is remembered so output can refuse to show it
//! ([`contains_secret`]).
//!
//! Owns: vault crypto, passwords, the process's keyring. May call: nothing but std and
//! the crypto crates.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context;

pub mod cipher;
pub mod format;
pub mod secrets;
pub mod yaml;

pub use format::is_vault;
pub use secrets::{Keyring, Secret, Source, VaultId};

/// Values shorter than this are not looked for in output: a one-letter secret would
/// hide every diff.
const MIN_SECRET_LEN: usize = 3;

static KEYRING: RwLock<Option<Arc<Keyring>>> = RwLock::new(None);
static REVEALED: RwLock<Vec<String>> = RwLock::new(Vec::new());
/// Vaulted controller files already decrypted (copy and template sources): each is
/// decrypted once per run however many hosts and tasks use it.
static OPENED: Mutex<Option<HashMap<PathBuf, Arc<Vec<u8>>>>> = Mutex::new(None);

/// Makes `keyring` the one every later decryption uses.
pub fn install(keyring: Keyring) {
    if let Ok(mut k) = KEYRING.write() {
        *k = Some(Arc::new(keyring));
    }
}

fn keyring() -> Arc<Keyring> {
    KEYRING
        .read()
        .ok()
        .and_then(|k| k.clone())
        .unwrap_or_default()
}

/// Decrypts vault text with the installed keyring. The caller [`remember`]s what in the
/// plaintext is secret (a whole value, or each value of a vaulted vars file).
pub fn decrypt(text: &str) -> anyhow::Result<Vec<u8>> {
    keyring().decrypt(text)
}

/// Decrypts vault text that must hold UTF-8 (a YAML file, an inline value).
pub fn decrypt_to_string(text: &str) -> anyhow::Result<String> {
    String::from_utf8(decrypt(text)?)
        .map_err(|_| anyhow::anyhow!("the decrypted vault data is not UTF-8 text"))
}

/// File content as it is meant: decrypted when it is a vault file (its whole plaintext
/// is then remembered as secret), else unchanged. The flag says whether it was vaulted.
pub fn open_bytes(data: Vec<u8>) -> anyhow::Result<(Vec<u8>, bool)> {
    if !is_vault(&data) {
        return Ok((data, false));
    }
    let text = String::from_utf8(data).map_err(|_| anyhow::anyhow!("vault file is not text"))?;
    let plain = decrypt(&text)?;
    remember(&String::from_utf8_lossy(&plain));
    Ok((plain, true))
}

/// A controller file a module sends (a `copy` source, a template): its plaintext when it
/// is a vault file (and whether it was one). The plaintext is remembered as secret.
pub fn read_source(path: &Path) -> anyhow::Result<(Vec<u8>, bool)> {
    if let Some(hit) = OPENED
        .lock()
        .ok()
        .and_then(|m| m.as_ref().and_then(|m| m.get(path).cloned()))
    {
        return Ok((hit.as_ref().clone(), true));
    }
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (plain, vaulted) =
        open_bytes(data).with_context(|| format!("cannot decrypt {}", path.display()))?;
    if vaulted {
        if let Ok(mut m) = OPENED.lock() {
            m.get_or_insert_with(HashMap::new)
                .insert(path.to_path_buf(), Arc::new(plain.clone()));
        }
    }
    Ok((plain, vaulted))
}

/// Records a value that came out of a vault, so output can hide it.
pub fn remember(secret: &str) {
    let secret = secret.trim();
    if secret.len() < MIN_SECRET_LEN {
        return;
    }
    if let Ok(mut r) = REVEALED.write() {
        if !r.iter().any(|s| s == secret) {
            r.push(secret.to_string());
        }
    }
}

/// Whether `text` contains a value that came out of a vault.
pub fn contains_secret(text: &str) -> bool {
    let Ok(r) = REVEALED.read() else {
        return false;
    };
    r.iter().any(|s| text.contains(s.as_str()))
}

/// For unit tests: installs the one keyring every test uses (tests run in parallel and
/// the keyring is process-wide, so they must agree) and returns a copy to encrypt with.
#[cfg(test)]
pub(crate) fn test_keyring() -> Keyring {
    let ring = Keyring::new(vec![Secret::new("default", "unit-test-vault-pw")]);
    install(ring.clone());
    ring
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_values_are_found_short_ones_ignored() {
        remember("  unit-test-secret-value\n");
        remember("ab");
        assert!(contains_secret("x=unit-test-secret-value;"));
        assert!(!contains_secret("unit-test-secret"));
        assert!(!contains_secret("ab"));
    }
}
