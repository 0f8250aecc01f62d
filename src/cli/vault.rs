//! `infra vault encrypt|decrypt|view|edit|encrypt_string|rekey`, like `ansible-vault`, and
//! the vault password options `infra play` and `infra up` share ([`VaultArgs`]). Files
//! written here open with `ansible-vault` and the other way round (see [`crate::vault`]).

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use crate::fsutil;
use crate::vault::{self, Keyring, Source, VaultId};

/// Where vault passwords come from (as ansible-playbook's options).
#[derive(Args, Debug, Clone, Default)]
pub struct VaultArgs {
    /// A file holding a vault password; an executable file is run and prints it (repeatable).
    #[arg(
        long = "vault-password-file",
        alias = "vault-pass-file",
        value_name = "FILE"
    )]
    pub vault_password_files: Vec<PathBuf>,
    /// Ask for the vault password on the terminal.
    #[arg(short = 'J', long = "ask-vault-pass", alias = "ask-vault-password")]
    pub ask_vault_pass: bool,
    /// A labelled vault password: `label@FILE`, `label@prompt` or `FILE` (repeatable).
    #[arg(long = "vault-id", value_name = "ID")]
    pub vault_ids: Vec<String>,
}

impl VaultArgs {
    /// The password sources in Ansible's order: `ANSIBLE_VAULT_IDENTITY_LIST` (comma
    /// separated ids), `--vault-id`s, `--vault-password-file`s, then
    /// `ANSIBLE_VAULT_PASSWORD_FILE`, then the prompt.
    pub fn ids(&self) -> anyhow::Result<Vec<VaultId>> {
        let mut ids = Vec::new();
        let listed = std::env::var("ANSIBLE_VAULT_IDENTITY_LIST").unwrap_or_default();
        let from_env = listed.split(',').map(str::trim).filter(|s| !s.is_empty());
        for text in from_env.chain(self.vault_ids.iter().map(String::as_str)) {
            ids.push(VaultId::parse(text)?);
        }
        let env_file = std::env::var_os("ANSIBLE_VAULT_PASSWORD_FILE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        for file in self.vault_password_files.iter().cloned().chain(env_file) {
            ids.push(VaultId {
                label: vault::secrets::DEFAULT_LABEL.into(),
                source: Source::File(file),
            });
        }
        if self.ask_vault_pass && !ids.iter().any(|i| i.source == Source::Prompt) {
            ids.push(VaultId {
                label: vault::secrets::DEFAULT_LABEL.into(),
                source: Source::Prompt,
            });
        }
        Ok(ids)
    }

    /// Reads every password.
    pub fn keyring(&self) -> anyhow::Result<Keyring> {
        Keyring::load(&self.ids()?)
    }

    /// Reads the passwords and makes them the process's keyring, before anything is loaded.
    pub fn install(&self) -> anyhow::Result<()> {
        vault::install(self.keyring()?);
        Ok(())
    }

    /// For `infra vault`: like [`Self::keyring`], but asks on the terminal when no source
    /// is given (as ansible-vault does).
    fn keyring_or_prompt(&self) -> anyhow::Result<Keyring> {
        let mut ids = self.ids()?;
        if ids.is_empty() {
            ids.push(VaultId {
                label: vault::secrets::DEFAULT_LABEL.into(),
                source: Source::Prompt,
            });
        }
        Keyring::load(&ids)
    }
}

#[derive(Subcommand, Debug)]
pub enum VaultCommand {
    /// Encrypt files in place (or into --output).
    Encrypt(FilesArgs),
    /// Decrypt files in place (or into --output, `-` for stdout).
    Decrypt(FilesArgs),
    /// Print the decrypted content of files.
    View(FilesArgs),
    /// Decrypt a file into a private temp file, open $EDITOR, encrypt it back.
    Edit(EditArgs),
    /// Encrypt a string into a `!vault |` value for a YAML file.
    #[command(name = "encrypt_string", alias = "encrypt-string")]
    EncryptString(EncryptStringArgs),
    /// Encrypt files again with a new password.
    Rekey(RekeyArgs),
}

#[derive(Args, Debug)]
pub struct FilesArgs {
    /// The files (`-` for stdin).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Write the result here (`-` for stdout) instead of in place (one input file only).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// The vault-id label whose password encrypts (default: the first given).
    #[arg(long = "encrypt-vault-id", value_name = "LABEL")]
    pub encrypt_vault_id: Option<String>,
    #[command(flatten)]
    pub vault: VaultArgs,
}

#[derive(Args, Debug)]
pub struct EditArgs {
    /// The vault file to edit.
    pub file: PathBuf,
    /// The vault-id label whose password encrypts (default: the file's own label, else
    /// the first given).
    #[arg(long = "encrypt-vault-id", value_name = "LABEL")]
    pub encrypt_vault_id: Option<String>,
    #[command(flatten)]
    pub vault: VaultArgs,
}

#[derive(Args, Debug)]
pub struct EncryptStringArgs {
    /// The strings to encrypt (read from stdin when there are none).
    pub strings: Vec<String>,
    /// The variable name for each string (`name: !vault |`).
    #[arg(short = 'n', long = "name")]
    pub names: Vec<String>,
    /// The variable name for the string read from stdin.
    #[arg(long = "stdin-name")]
    pub stdin_name: Option<String>,
    /// The vault-id label whose password encrypts (default: the first given).
    #[arg(long = "encrypt-vault-id", value_name = "LABEL")]
    pub encrypt_vault_id: Option<String>,
    #[command(flatten)]
    pub vault: VaultArgs,
}

#[derive(Args, Debug)]
pub struct RekeyArgs {
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The file holding the new password (or a script printing it).
    #[arg(long = "new-vault-password-file", value_name = "FILE")]
    pub new_vault_password_file: Option<PathBuf>,
    /// The new labelled password: `label@FILE` or `label@prompt`.
    #[arg(long = "new-vault-id", value_name = "ID")]
    pub new_vault_id: Option<String>,
    #[command(flatten)]
    pub vault: VaultArgs,
}

pub async fn run(cmd: VaultCommand) -> anyhow::Result<i32> {
    match cmd {
        VaultCommand::Encrypt(a) => encrypt(a),
        VaultCommand::Decrypt(a) => decrypt(a),
        VaultCommand::View(a) => view(a),
        VaultCommand::Edit(a) => edit(a),
        VaultCommand::EncryptString(a) => encrypt_string(a),
        VaultCommand::Rekey(a) => rekey(a),
    }?;
    Ok(0)
}

fn is_dash(p: &Path) -> bool {
    p.as_os_str() == "-"
}

fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    if is_dash(path) {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read stdin")?;
        return Ok(buf);
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Writes a result in place, to `--output`, or to stdout (`-`); files are replaced
/// atomically and keep their mode (new ones are 0600: they may hold plaintext secrets).
fn write_output(input: &Path, output: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    let target = output.unwrap_or(input);
    if is_dash(target) {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes).context("cannot write to stdout")?;
        return out.flush().context("cannot write to stdout");
    }
    fsutil::write_atomic(target, bytes, fsutil::Mode::KeepOr(0o600))
        .with_context(|| format!("cannot write {}", target.display()))
}

fn check_single_output(files: &[PathBuf], output: Option<&Path>) -> anyhow::Result<()> {
    if output.is_some() && files.len() > 1 {
        bail!("--output takes one input file only");
    }
    Ok(())
}

fn text_of(path: &Path, data: Vec<u8>) -> anyhow::Result<String> {
    String::from_utf8(data).with_context(|| format!("{} is not vault text", path.display()))
}

fn decrypt_file(ring: &Keyring, path: &Path) -> anyhow::Result<Vec<u8>> {
    let data = read_input(path)?;
    if !vault::is_vault(&data) {
        bail!("{} is not vault-encrypted", path.display());
    }
    ring.decrypt(&text_of(path, data)?)
        .with_context(|| format!("cannot decrypt {}", path.display()))
}

fn encrypt(a: FilesArgs) -> anyhow::Result<()> {
    check_single_output(&a.files, a.output.as_deref())?;
    let ring = a.vault.keyring_or_prompt()?;
    for file in &a.files {
        let data = read_input(file)?;
        if vault::is_vault(&data) {
            bail!("{} is already vault-encrypted", file.display());
        }
        let text = ring.encrypt(&data, a.encrypt_vault_id.as_deref())?;
        write_output(file, a.output.as_deref(), text.as_bytes())?;
        if a.output.is_none() && !is_dash(file) {
            eprintln!("Encryption successful: {}", file.display());
        }
    }
    Ok(())
}

fn decrypt(a: FilesArgs) -> anyhow::Result<()> {
    check_single_output(&a.files, a.output.as_deref())?;
    let ring = a.vault.keyring_or_prompt()?;
    for file in &a.files {
        let plain = decrypt_file(&ring, file)?;
        write_output(file, a.output.as_deref(), &plain)?;
    }
    Ok(())
}

fn view(a: FilesArgs) -> anyhow::Result<()> {
    let ring = a.vault.keyring_or_prompt()?;
    for file in &a.files {
        let plain = decrypt_file(&ring, file)?;
        write_output(file, Some(Path::new("-")), &plain)?;
    }
    Ok(())
}

/// The vault-id label a file was encrypted with (1.2), so edit and rekey keep it.
fn label_of(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    vault::format::parse(&text).ok()?.label
}

fn edit(a: EditArgs) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() && std::env::var_os("EDITOR").is_none() {
        bail!("infra vault edit needs a terminal or $EDITOR");
    }
    let ring = a.vault.keyring_or_prompt()?;
    let plain = decrypt_file(&ring, &a.file)?;
    // A private folder (0700) holds the plaintext while the editor runs; it is removed
    // when `dir` drops, whatever happens.
    let dir = tempfile::Builder::new()
        .prefix("infra-vault-")
        .tempdir()
        .context("cannot create a temp folder")?;
    let name = a
        .file
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "vault".into());
    let temp = dir.path().join(name);
    fsutil::write_atomic(&temp, &plain, fsutil::Mode::Set(0o600))?;
    let editor = std::env::var("EDITOR")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".into());
    let mut words = shlex::split(&editor).unwrap_or_else(|| vec![editor.clone()]);
    if words.is_empty() {
        words.push("vi".into());
    }
    let status = std::process::Command::new(&words[0])
        .args(&words[1..])
        .arg(&temp)
        .status()
        .with_context(|| format!("cannot run the editor {editor:?}"))?;
    if !status.success() {
        bail!(
            "the editor {editor:?} failed ({status}); {} is unchanged",
            a.file.display()
        );
    }
    let edited = std::fs::read(&temp).context("cannot read the edited file")?;
    if edited == plain {
        eprintln!("{} is unchanged", a.file.display());
        return Ok(());
    }
    let label = a.encrypt_vault_id.or_else(|| label_of(&a.file));
    let label = label.filter(|l| ring.has_label(l));
    let text = ring.encrypt(&edited, label.as_deref())?;
    write_output(&a.file, None, text.as_bytes())
}

/// `!vault |` and the envelope indented by 10 spaces, as ansible-vault prints it.
fn vault_block(name: Option<&str>, text: &str) -> String {
    let mut out = match name {
        Some(n) => format!("{n}: !vault |\n"),
        None => "!vault |\n".to_string(),
    };
    for line in text.lines() {
        out.push_str("          ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn encrypt_string(a: EncryptStringArgs) -> anyhow::Result<()> {
    let ring = a.vault.keyring_or_prompt()?;
    let label = a.encrypt_vault_id.as_deref();
    let mut blocks = Vec::new();
    if a.strings.is_empty() {
        let mut input = String::new();
        std::io::stdin()
            .read_to_string(&mut input)
            .context("cannot read the string to encrypt from stdin")?;
        if input.is_empty() {
            bail!("nothing to encrypt: stdin was empty");
        }
        let text = ring.encrypt(input.as_bytes(), label)?;
        blocks.push(vault_block(a.stdin_name.as_deref(), &text));
    }
    for (i, s) in a.strings.iter().enumerate() {
        let text = ring.encrypt(s.as_bytes(), label)?;
        blocks.push(vault_block(a.names.get(i).map(String::as_str), &text));
    }
    print!("{}", blocks.join(""));
    std::io::stdout().flush().context("cannot write to stdout")
}

fn rekey(a: RekeyArgs) -> anyhow::Result<()> {
    let ring = a.vault.keyring_or_prompt()?;
    let new_id = match (&a.new_vault_id, &a.new_vault_password_file) {
        (Some(id), _) => VaultId::parse(id)?,
        (None, Some(file)) => VaultId {
            label: vault::secrets::DEFAULT_LABEL.into(),
            source: Source::File(file.clone()),
        },
        (None, None) => VaultId {
            label: vault::secrets::DEFAULT_LABEL.into(),
            source: Source::Prompt,
        },
    };
    let new_ring = Keyring::load(std::slice::from_ref(&new_id))?;
    // Decrypt everything first: one wrong password changes no file.
    let mut plain = Vec::new();
    for file in &a.files {
        plain.push(decrypt_file(&ring, file)?);
    }
    for (file, data) in a.files.iter().zip(plain) {
        let text = new_ring.encrypt(&data, None)?;
        write_output(file, None, text.as_bytes())?;
        eprintln!("Rekey successful: {}", file.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_block_matches_ansible_vault_layout() {
        let b = vault_block(Some("db_password"), "$ANSIBLE_VAULT;1.1;AES256\nabc\n");
        assert_eq!(
            b,
            "db_password: !vault |\n          $ANSIBLE_VAULT;1.1;AES256\n          abc\n"
        );
    }

    #[test]
    fn sources_keep_ansibles_order() {
        let a = VaultArgs {
            vault_password_files: vec!["/pw".into()],
            ask_vault_pass: true,
            vault_ids: vec!["prod@/prod".into()],
        };
        let ids = a.ids().unwrap();
        assert_eq!(ids[0].label, "prod");
        assert_eq!(ids[1].source, Source::File("/pw".into()));
        assert_eq!(ids.last().map(|i| &i.source), Some(&Source::Prompt));
    }
}
