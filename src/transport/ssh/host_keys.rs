//! Host-key verification, OpenSSH style: the server's key must be in `~/.ssh/known_hosts`
//! or one of the extra known_hosts files (plain, hashed and `[host]:port` entries); an
//! unknown key fails unless accept-new is on (then it is recorded); a changed key always
//! fails, naming the file and line that hold the old key. Never prompts.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use russh::keys::{Algorithm, HashAlg, PublicKey, PublicKeyOrCertificate};

/// Why a server's host key was not accepted. Not retried: connecting again cannot help.
#[derive(Debug)]
pub struct HostKeyRejected(pub String);

impl std::fmt::Display for HostKeyRejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HostKeyRejected {}

/// Serialises appends to known_hosts files when many hosts accept new keys at once.
static RECORD_LOCK: Mutex<()> = Mutex::new(());

/// Which keys a host may present, and where new ones are recorded.
#[derive(Debug, Clone)]
pub struct HostKeyPolicy {
    host: String,
    port: u16,
    /// Checked in this order; all of them count.
    files: Vec<PathBuf>,
    /// Where accept-new records a key.
    record_to: Option<PathBuf>,
    accept_new: bool,
}

/// `~/.ssh/known_hosts`, when there is a home directory.
pub fn user_known_hosts() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".ssh").join("known_hosts"))
}

impl HostKeyPolicy {
    /// `extra` are the inventory's / CLI's known_hosts files; the first one (else the user's
    /// file) receives keys learnt with `accept_new`.
    pub fn new(host: &str, port: u16, extra: &[PathBuf], accept_new: bool) -> Self {
        let user = user_known_hosts();
        let mut files: Vec<PathBuf> = user.iter().cloned().collect();
        for f in extra {
            if !files.contains(f) {
                files.push(f.clone());
            }
        }
        HostKeyPolicy {
            host: host.to_string(),
            port,
            files,
            record_to: extra.first().cloned().or(user),
            accept_new,
        }
    }

    /// The server host-key algorithms to offer, those already known for this host first
    /// (as OpenSSH does), so a host known by its RSA key is not asked for an ed25519 one.
    pub fn preferred_algorithms(&self) -> Vec<Algorithm> {
        let defaults = russh::Preferred::DEFAULT.key.to_vec();
        let mut known: Vec<Algorithm> = Vec::new();
        for file in &self.files {
            let Ok(entries) =
                russh::keys::known_hosts::known_host_keys_path(&self.host, self.port, file)
            else {
                continue;
            };
            for (_, key) in entries {
                let alg = key.algorithm();
                let candidates: Vec<Algorithm> = if alg.clone().is_rsa() {
                    vec![
                        Algorithm::Rsa {
                            hash: Some(HashAlg::Sha512),
                        },
                        Algorithm::Rsa {
                            hash: Some(HashAlg::Sha256),
                        },
                    ]
                } else {
                    vec![alg]
                };
                for c in candidates {
                    if defaults.contains(&c) && !known.contains(&c) {
                        known.push(c);
                    }
                }
            }
        }
        let mut out = known.clone();
        out.extend(defaults.into_iter().filter(|a| !known.contains(a)));
        out
    }

    /// Accepts `key` or says why not; records it when it is new and accept-new is on.
    pub fn verify(&self, key: &PublicKey) -> Result<(), HostKeyRejected> {
        let target = self.target();
        let mut changed: Option<(PathBuf, usize)> = None;
        for file in &self.files {
            match russh::keys::check_known_hosts_path(&self.host, self.port, key, file) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(russh::keys::Error::KeyChanged { line }) => {
                    if changed.is_none() {
                        changed = Some((file.clone(), physical_line(file, line)));
                    }
                }
                Err(e) => {
                    return Err(HostKeyRejected(format!(
                        "cannot check the host key of {target} against {}: {e}",
                        file.display()
                    )))
                }
            }
        }
        let fingerprint = key.fingerprint(HashAlg::Sha256);
        let alg = key.algorithm();
        if let Some((file, line)) = changed {
            return Err(HostKeyRejected(format!(
                "host key for {target} has CHANGED: the server presents {} key {fingerprint}, \
                 but {}:{line} holds a different one (possible man-in-the-middle attack; if the \
                 change is expected, remove that line)",
                alg.as_str(),
                file.display()
            )));
        }
        if !self.accept_new {
            return Err(HostKeyRejected(format!(
                "host key for {target} not known ({} key {fingerprint}); run with \
                 --accept-new-host-keys or add it to known_hosts",
                alg.as_str()
            )));
        }
        let Some(record_to) = &self.record_to else {
            return Err(HostKeyRejected(format!(
                "host key for {target} not known and there is no known_hosts file to record it \
                 in (no HOME and no known_hosts file given)"
            )));
        };
        self.record(key, record_to).map_err(|e| {
            HostKeyRejected(format!(
                "cannot record the host key of {target} in {}: {e:#}",
                record_to.display()
            ))
        })?;
        tracing::warn!(
            "permanently added the {} host key of {target} ({fingerprint}) to {}",
            alg.as_str(),
            record_to.display()
        );
        Ok(())
    }

    fn record(&self, key: &PublicKey, path: &Path) -> anyhow::Result<()> {
        let _guard = RECORD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        // Another connection to the same host may have recorded it meanwhile.
        if let Ok(true) = russh::keys::check_known_hosts_path(&self.host, self.port, key, path) {
            return Ok(());
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let mut line = String::new();
        if needs_newline(&mut file)? {
            line.push('\n');
        }
        line.push_str(&format!("{} {}\n", self.target(), key.to_openssh()?));
        // One write on an O_APPEND file: concurrent recorders cannot interleave.
        file.write_all(line.as_bytes())?;
        file.sync_all()?;
        Ok(())
    }

    fn target(&self) -> String {
        if self.port == 22 {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        }
    }
}

/// Whether a non-empty file lacks its final newline.
fn needs_newline(file: &mut std::fs::File) -> std::io::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// russh numbers known_hosts lines without counting comment lines; this maps its number
/// back to the line an editor shows.
fn physical_line(path: &Path, counted: usize) -> usize {
    let Ok(text) = std::fs::read_to_string(path) else {
        return counted;
    };
    let mut seen = 0;
    for (index, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        seen += 1;
        if seen == counted {
            return index + 1;
        }
    }
    counted
}

/// The russh client handler: host-key checking is all it does.
pub struct HostKeyCheck {
    pub policy: HostKeyPolicy,
}

impl russh::client::Handler for HostKeyCheck {
    type Error = anyhow::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        self.policy.verify(&server_public_key.public_key())?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const KEY_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIA6rWI3G2sz07DnfFlrouTcysQlj2P+jpNSOEWD9OJ3X";

    fn key(b64: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b64).unwrap()
    }

    fn policy(dir: &Path, accept_new: bool) -> HostKeyPolicy {
        // Only the given file: the user's own known_hosts must not influence the test.
        HostKeyPolicy {
            host: "10.1.2.3".into(),
            port: 2222,
            files: vec![dir.join("kh")],
            record_to: Some(dir.join("kh")),
            accept_new,
        }
    }

    #[test]
    fn unknown_key_is_refused_without_accept_new() {
        let dir = tempfile::tempdir().unwrap();
        let err = policy(dir.path(), false).verify(&key(KEY_A)).unwrap_err();
        assert!(
            err.0.contains("host key for [10.1.2.3]:2222 not known"),
            "{err}"
        );
        assert!(err.0.contains("--accept-new-host-keys"));
        assert!(!dir.path().join("kh").exists());
    }

    #[test]
    fn accept_new_records_then_recognises_and_detects_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path(), true);
        p.verify(&key(KEY_A)).unwrap();
        let text = std::fs::read_to_string(dir.path().join("kh")).unwrap();
        assert_eq!(text, format!("[10.1.2.3]:2222 ssh-ed25519 {KEY_A}\n"));
        p.verify(&key(KEY_A)).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("kh")).unwrap(),
            text
        );
        let err = p.verify(&key(KEY_B)).unwrap_err();
        assert!(err.0.contains("CHANGED"), "{err}");
        assert!(
            err.0
                .contains(&format!("{}:1", dir.path().join("kh").display())),
            "{err}"
        );
    }

    #[test]
    fn recording_appends_after_a_file_without_final_newline() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kh"), format!("other ssh-ed25519 {KEY_B}")).unwrap();
        policy(dir.path(), true).verify(&key(KEY_A)).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("kh")).unwrap(),
            format!("other ssh-ed25519 {KEY_B}\n[10.1.2.3]:2222 ssh-ed25519 {KEY_A}\n")
        );
    }

    #[test]
    fn changed_key_names_the_physical_line_despite_comments() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("kh"),
            format!("# comment\n# another\nother.host ssh-ed25519 {KEY_B}\n[10.1.2.3]:2222 ssh-ed25519 {KEY_B}\n"),
        )
        .unwrap();
        let err = policy(dir.path(), true).verify(&key(KEY_A)).unwrap_err();
        assert!(
            err.0
                .contains(&format!("{}:4", dir.path().join("kh").display())),
            "{err}"
        );
    }

    #[test]
    fn known_algorithms_are_preferred() {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("ecdsa");
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ecdsa", "-N", "", "-f"])
            .arg(&key_path)
            .status()
            .expect("ssh-keygen (openssh-client) is needed");
        assert!(status.success());
        let public = std::fs::read_to_string(key_path.with_extension("pub")).unwrap();
        std::fs::write(dir.path().join("kh"), format!("[10.1.2.3]:2222 {public}")).unwrap();
        let algs = policy(dir.path(), false).preferred_algorithms();
        assert_eq!(
            algs[0],
            Algorithm::Ecdsa {
                curve: russh::keys::EcdsaCurve::NistP256
            }
        );
        assert_eq!(algs.len(), russh::Preferred::DEFAULT.key.len());
        let unknown = policy(tempfile::tempdir().unwrap().path(), false).preferred_algorithms();
        assert_eq!(unknown, russh::Preferred::DEFAULT.key.to_vec());
    }
}
