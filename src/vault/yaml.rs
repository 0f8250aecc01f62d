//! Vault data in YAML read with serde_yaml (inventories, `group_vars`/`host_vars`, play
//! `vars_files`, `-e @file`): whole vaulted files and inline `!vault |` values. The
//! playbook loader (`crate::playbook::yaml`) has its own hook; this is for the rest.

use std::path::Path;

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde_yaml::Value;

/// Why vault YAML could not be read.
#[derive(Debug)]
pub enum YamlError {
    /// A YAML syntax or shape error (the caller formats its position).
    Syntax(serde_yaml::Error),
    /// A vault value could not be decrypted (the message names the variable and line).
    Vault(anyhow::Error),
}

/// Reads a text file, decrypting it when it is a vault file; the values of a vaulted YAML
/// file are remembered as secrets (so output hides them). Errors do not repeat the path:
/// every caller already says which file it reads.
pub fn read_to_string(path: &Path) -> anyhow::Result<String> {
    let data = std::fs::read(path)?;
    let text = String::from_utf8(data).map_err(|_| anyhow::anyhow!("not UTF-8 text"))?;
    if !super::is_vault(text.as_bytes()) {
        return Ok(text);
    }
    let plain = super::decrypt_to_string(&text).context("cannot decrypt the vault file")?;
    remember_values(&plain);
    Ok(plain)
}

/// Remembers every string value of a decrypted YAML document (all of a vaulted file is
/// secret, but its keys are not what a diff would leak); text that is not YAML is
/// remembered whole.
pub fn remember_values(plain: &str) {
    match serde_yaml::from_str::<Value>(plain) {
        Ok(v) => remember_scalars(&v),
        Err(_) => super::remember(plain),
    }
}

fn remember_scalars(v: &Value) {
    match v {
        Value::String(s) => super::remember(s),
        Value::Sequence(items) => items.iter().for_each(remember_scalars),
        Value::Mapping(m) => m.values().for_each(remember_scalars),
        Value::Tagged(t) => remember_scalars(&t.value),
        // Numbers (ports, sizes) would hide every diff that mentions them.
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Deserializes YAML text with every `!vault` value replaced by its plaintext. Text
/// without `!vault` is deserialized exactly as `serde_yaml::from_str` would.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    if !text.contains("!vault") {
        return serde_yaml::from_str(text).map_err(YamlError::Syntax);
    }
    let mut value: Value = serde_yaml::from_str(text).map_err(YamlError::Syntax)?;
    let mut seen = 0;
    reveal(&mut value, text, "", &mut seen).map_err(YamlError::Vault)?;
    serde_yaml::from_value(value).map_err(YamlError::Syntax)
}

/// Replaces `!vault` values in place (depth first, in document order, so the n-th one met
/// is the n-th `!vault` written: that is how its line is found for errors).
fn reveal(v: &mut Value, text: &str, path: &str, seen: &mut usize) -> anyhow::Result<()> {
    match v {
        Value::Tagged(t) if t.tag == "vault" => {
            *seen += 1;
            let line = nth_vault_line(text, *seen);
            let at = match line {
                Some(l) => format!("line {l}: "),
                None => String::new(),
            };
            let Value::String(cipher) = &t.value else {
                anyhow::bail!("{at}{path}: !vault must tag a string (the vault text)");
            };
            let plain = super::decrypt_to_string(cipher)
                .with_context(|| format!("{at}{path}: cannot decrypt the !vault value"))?;
            super::remember(&plain);
            *v = Value::String(plain);
        }
        Value::Tagged(t) => reveal(&mut t.value, text, path, seen)?,
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                reveal(item, text, &format!("{path}[{i}]"), seen)?;
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m.iter_mut() {
                let key = match k {
                    Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                let sub = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                reveal(item, text, &sub, seen)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The 1-based line of the n-th `!vault` tag in the text (comments skipped).
fn nth_vault_line(text: &str, n: usize) -> Option<usize> {
    let mut count = 0;
    for (i, line) in text.lines().enumerate() {
        let code = line.split(" #").next().unwrap_or(line);
        if code.trim_start().starts_with('#') {
            continue;
        }
        count += code.matches("!vault").count();
        if count >= n {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::{Keyring, Secret};

    #[test]
    fn inline_values_are_decrypted_and_errors_name_the_line() {
        let ring = crate::vault::test_keyring();
        let v = ring.encrypt(b"s3cr3t-inline", None).unwrap();
        let indented: String = v.lines().map(|l| format!("    {l}\n")).collect();
        let text = format!("plain: 1\nnested:\n  pw: !vault |\n{indented}");
        let parsed: serde_json::Value = from_str(&text).unwrap();
        assert_eq!(parsed["nested"]["pw"], "s3cr3t-inline");
        assert_eq!(parsed["plain"], 1);
        assert!(crate::vault::contains_secret("x s3cr3t-inline y"));
        let other = Keyring::new(vec![Secret::new("default", "other")]);
        let bad = other.encrypt(b"x", None).unwrap();
        let indented: String = bad.lines().map(|l| format!("  {l}\n")).collect();
        let text = format!("# !vault in a comment\na: 1\nb: !vault |\n{indented}");
        let Err(YamlError::Vault(e)) = from_str::<serde_json::Value>(&text) else {
            panic!("expected a vault error");
        };
        let msg = format!("{e:#}");
        assert!(msg.contains("line 3: b: cannot decrypt"), "{msg}");
    }
}
