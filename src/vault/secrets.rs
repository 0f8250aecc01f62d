//! Vault passwords and where they come from: `--vault-password-file F`, `--ask-vault-pass`,
//! `--vault-id label@source` (a file, an executable script, or `prompt`) and the
//! `ANSIBLE_VAULT_PASSWORD_FILE` environment variable, read the way ansible-vault reads
//! them. A [`Keyring`] holds the passwords and decrypts with the right one.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::{cipher, format};

/// The label of a password given without one.
pub const DEFAULT_LABEL: &str = "default";

/// Where one password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Asked on the terminal.
    Prompt,
    /// A file holding the password, or an executable printing it.
    File(PathBuf),
}

/// A password source with its vault-id label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultId {
    pub label: String,
    pub source: Source,
}

impl VaultId {
    /// Parses `--vault-id`'s value: `label@source` or `source` alone (label `default`);
    /// the source `prompt` asks on the terminal.
    pub fn parse(text: &str) -> anyhow::Result<VaultId> {
        let (label, source) = match text.split_once('@') {
            Some((l, s)) => (l, s),
            None => (DEFAULT_LABEL, text),
        };
        if source.is_empty() || label.is_empty() {
            bail!("--vault-id {text:?}: expected label@source (a file, a script or `prompt`)");
        }
        let source = if source == "prompt" {
            Source::Prompt
        } else {
            Source::File(PathBuf::from(source))
        };
        Ok(VaultId {
            label: label.to_string(),
            source,
        })
    }
}

/// One loaded password.
#[derive(Clone)]
pub struct Secret {
    pub label: String,
    password: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password itself, even in a debug log.
        write!(f, "Secret({})", self.label)
    }
}

impl Secret {
    pub fn new(label: &str, password: impl Into<Vec<u8>>) -> Secret {
        Secret {
            label: label.to_string(),
            password: password.into(),
        }
    }
}

/// The passwords of a run, in the order given (the first one encrypts).
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    secrets: Vec<Secret>,
}

impl Keyring {
    pub fn new(secrets: Vec<Secret>) -> Keyring {
        Keyring { secrets }
    }

    /// Whether a password has this vault-id label.
    pub fn has_label(&self, label: &str) -> bool {
        self.secrets.iter().any(|s| s.label == label)
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Loads every source (asking on the terminal where one says `prompt`).
    pub fn load(ids: &[VaultId]) -> anyhow::Result<Keyring> {
        let mut secrets = Vec::new();
        for id in ids {
            let password = match &id.source {
                Source::Prompt => prompt(&format!("Vault password ({}): ", id.label))?,
                Source::File(path) => read_password_file(path, &id.label)?,
            };
            secrets.push(Secret::new(&id.label, password));
        }
        Ok(Keyring { secrets })
    }

    /// Decrypts vault text: passwords whose label matches the envelope's are tried first,
    /// then the others (as Ansible does unless `vault_id_match` is set).
    pub fn decrypt(&self, text: &str) -> anyhow::Result<Vec<u8>> {
        let env = format::parse(text).map_err(anyhow::Error::msg)?;
        if self.secrets.is_empty() {
            bail!(
                "it is vault-encrypted and no vault password was given \
                 (use --ask-vault-pass, --vault-password-file or --vault-id)"
            );
        }
        let label = env.label.as_deref().unwrap_or(DEFAULT_LABEL);
        let (first, rest): (Vec<&Secret>, Vec<&Secret>) =
            self.secrets.iter().partition(|s| s.label == label);
        for s in first.into_iter().chain(rest) {
            match cipher::decrypt(&env.payload, &s.password) {
                Ok(plain) => return Ok(plain),
                Err(cipher::CipherError::BadPassword) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let labels: Vec<&str> = self.secrets.iter().map(|s| s.label.as_str()).collect();
        bail!(
            "the vault password is wrong: none of the given vault passwords ({}) decrypts it",
            labels.join(", ")
        )
    }

    /// Encrypts with the password labelled `label`, else the first one; the envelope
    /// carries the label (1.2) unless it is `default` (1.1).
    pub fn encrypt(&self, plaintext: &[u8], label: Option<&str>) -> anyhow::Result<String> {
        let secret = match label {
            Some(l) => self
                .secrets
                .iter()
                .find(|s| s.label == l)
                .with_context(|| format!("no vault password has the vault-id {l:?}"))?,
            None => self
                .secrets
                .first()
                .context("a vault password is needed to encrypt")?,
        };
        let payload = cipher::encrypt(plaintext, &secret.password);
        Ok(format::format(&payload, Some(&secret.label)))
    }
}

/// Reads a password file as ansible-vault does: an executable is run and its stdout
/// (without trailing newlines) is the password; a `*-client` script is asked for the
/// label with `--vault-id`. Any other file's content, trimmed, is the password.
pub fn read_password_file(path: &Path, label: &str) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read vault password file {}", path.display()))?;
    let password = if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
        // `pw.sh` means the file here, not a program on PATH.
        let exe = if path.is_relative() {
            Path::new(".").join(path)
        } else {
            path.to_path_buf()
        };
        let mut cmd = std::process::Command::new(exe);
        let is_client = path
            .file_stem()
            .and_then(|s| s.to_str())
            .is_some_and(|s| s.ends_with("-client"));
        if is_client {
            cmd.args(["--vault-id", label]);
        }
        let out = cmd
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("cannot run vault password script {}", path.display()))?;
        if !out.status.success() {
            bail!(
                "vault password script {} failed ({})",
                path.display(),
                out.status
            );
        }
        trim_newlines(&out.stdout).to_vec()
    } else {
        let data = std::fs::read(path)
            .with_context(|| format!("cannot read vault password file {}", path.display()))?;
        data.trim_ascii().to_vec()
    };
    if password.is_empty() {
        bail!("the vault password file {} is empty", path.display());
    }
    Ok(password)
}

fn trim_newlines(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !matches!(c, b'\r' | b'\n'))
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !matches!(c, b'\r' | b'\n'))
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// Asks for a password on the controlling terminal without echo; refuses without one.
pub fn prompt(question: &str) -> anyhow::Result<Vec<u8>> {
    use std::io::BufRead;
    use std::os::fd::AsRawFd;
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| {
            anyhow::anyhow!(
                "a vault password prompt needs a terminal and there is none; \
                 use --vault-password-file FILE (or --vault-id label@FILE)"
            )
        })?;
    let fd = tty.as_raw_fd();
    // SAFETY: termios is plain data; tcgetattr fills it for a valid open fd.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
        bail!("a vault password prompt needs a terminal: /dev/tty is not one");
    }
    let mut quiet = saved;
    quiet.c_lflag &= !libc::ECHO;
    quiet.c_lflag |= libc::ECHONL;
    // SAFETY: fd is open and `quiet` a valid termios from tcgetattr.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    let mut out = &tty;
    let _ = out.write_all(question.as_bytes());
    let _ = out.flush();
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    // SAFETY: restores the settings read above on the same fd.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    read.context("cannot read the vault password from the terminal")?;
    let password = line.trim_end_matches(['\r', '\n']).as_bytes().to_vec();
    if password.is_empty() {
        bail!("an empty vault password was given");
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_ids_parse_like_ansible() {
        let id = VaultId::parse("prod@/tmp/pw").unwrap();
        assert_eq!(id.label, "prod");
        assert_eq!(id.source, Source::File("/tmp/pw".into()));
        assert_eq!(VaultId::parse("dev@prompt").unwrap().source, Source::Prompt);
        assert_eq!(VaultId::parse("/tmp/pw").unwrap().label, DEFAULT_LABEL);
        assert!(VaultId::parse("x@").is_err());
    }

    #[test]
    fn matching_label_is_tried_first_then_the_others() {
        let ring = Keyring::new(vec![Secret::new("dev", "d"), Secret::new("prod", "p")]);
        let prod = ring.encrypt(b"hi", Some("prod")).unwrap();
        assert!(prod.starts_with("$ANSIBLE_VAULT;1.2;AES256;prod\n"));
        assert_eq!(ring.decrypt(&prod).unwrap(), b"hi");
        // A label no password has: every password is still tried.
        let other = Keyring::new(vec![Secret::new("x", "p")])
            .encrypt(b"hi", None)
            .unwrap();
        assert_eq!(ring.decrypt(&other).unwrap(), b"hi");
        let wrong = Keyring::new(vec![Secret::new("default", "nope")]);
        let err = format!("{:#}", wrong.decrypt(&prod).unwrap_err());
        assert!(err.contains("wrong"), "{err}");
        let none = format!("{:#}", Keyring::default().decrypt(&prod).unwrap_err());
        assert!(none.contains("no vault password"), "{none}");
    }

    #[test]
    fn password_files_are_trimmed_and_scripts_run() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "  s3cret \n").unwrap();
        assert_eq!(read_password_file(&file, "default").unwrap(), b"s3cret");
        let script = dir.path().join("pw.sh");
        std::fs::write(&script, "#!/bin/sh\nprintf 'from script\\n'\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            read_password_file(&script, "default").unwrap(),
            b"from script"
        );
        let client = dir.path().join("pw-client.sh");
        std::fs::write(&client, "#!/bin/sh\necho \"$1 $2\"\n").unwrap();
        std::fs::set_permissions(&client, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            read_password_file(&client, "prod").unwrap(),
            b"--vault-id prod"
        );
        std::fs::write(&file, "\n").unwrap();
        assert!(read_password_file(&file, "default").is_err());
        assert!(read_password_file(&dir.path().join("missing"), "default").is_err());
    }
}
