//! Parses Ansible's YAML inventory format into the [`Inventory`] model: `all` (or any
//! top-level group) with `hosts`, `vars` and `children`, nested to any depth, host ranges
//! and `host:port` keys. Errors carry the file and the line:col serde_yaml reports.

use std::path::Path;

use indexmap::IndexMap;
use serde::de::{self, Deserializer};
use serde::Deserialize;

use super::range::expand_host_range;
use super::yaml11::yaml11_bools;
use super::Inventory;
use crate::Vars;

/// A group's definition as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupDef {
    #[serde(default)]
    hosts: Option<IndexMap<RawHostKey, Option<Vars>>>,
    #[serde(default)]
    vars: Option<Vars>,
    #[serde(default)]
    children: Option<IndexMap<String, Option<GroupDef>>>,
}

/// A key under `hosts:` as written (a name, maybe a range, maybe a `:port`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RawHostKey(String);

/// A parsed host key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostKey {
    names: Vec<String>,
    port: Option<u16>,
}

impl<'de> Deserialize<'de> for RawHostKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Host names may be written as numbers or IPs; take any scalar as text.
        let raw = match serde_yaml::Value::deserialize(d)? {
            serde_yaml::Value::String(s) => s,
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::Bool(b) => b.to_string(),
            other => {
                return Err(de::Error::custom(format!(
                    "a host name must be a string, found {other:?}"
                )))
            }
        };
        Ok(RawHostKey(raw))
    }
}

fn parse_host_key(raw: &str) -> Result<HostKey, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("empty host name".into());
    }
    let (name, port) = split_port(raw)?;
    Ok(HostKey {
        names: expand_host_range(name)?,
        port,
    })
}

/// Splits `name:port`. Only a single `:` outside range brackets is a port separator, so
/// IPv6 addresses stay whole.
fn split_port(raw: &str) -> Result<(&str, Option<u16>), String> {
    let mut depth = 0usize;
    let mut colons = Vec::new();
    for (i, c) in raw.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => colons.push(i),
            _ => {}
        }
    }
    let [i] = colons[..] else {
        return Ok((raw, None));
    };
    let port_text = &raw[i + 1..];
    let port = port_text
        .parse::<u16>()
        .map_err(|_| format!("`{port_text}` in host `{raw}` is not a port number"))?;
    Ok((&raw[..i], Some(port)))
}

/// Parses `text` (the content of `file`) into `inv`.
pub(super) fn parse_into(inv: &mut Inventory, text: &str, file: &Path) -> anyhow::Result<()> {
    let top: Option<IndexMap<String, Option<GroupDef>>> =
        crate::vault::yaml::from_str(&yaml11_bools(text)).map_err(|e| vault_yaml_error(file, e))?;
    let source = Source { text, file };
    for (name, def) in top.unwrap_or_default() {
        add_group(inv, &name, def.unwrap_or_default(), None, &source)?;
    }
    Ok(())
}

/// The file being parsed, to locate errors found after serde is done.
struct Source<'a> {
    text: &'a str,
    file: &'a Path,
}

impl Source<'_> {
    /// `file:line:col` of the first line whose content starts with `key:` (or the file
    /// alone when it cannot be found).
    fn locate_key(&self, key: &str) -> String {
        for (i, line) in self.text.lines().enumerate() {
            let content = line.trim_start();
            let col = line.len() - content.len() + 1;
            let unquoted = content.trim_start_matches(['"', '\'']);
            if let Some(rest) = unquoted.strip_prefix(key) {
                if rest.trim_start_matches(['"', '\'']).starts_with(':') {
                    return format!("{}:{}:{}", self.file.display(), i + 1, col);
                }
            }
        }
        self.file.display().to_string()
    }
}

fn add_group(
    inv: &mut Inventory,
    name: &str,
    def: GroupDef,
    parent: Option<&str>,
    source: &Source,
) -> anyhow::Result<()> {
    inv.ensure_group(name);
    if let Some(parent) = parent {
        let p = inv.ensure_group(parent);
        if !p.children.iter().any(|c| c == name) {
            p.children.push(name.to_string());
        }
    }
    for (raw, vars) in def.hosts.unwrap_or_default() {
        let key = parse_host_key(&raw.0)
            .map_err(|e| anyhow::anyhow!("{}: group `{name}`: {e}", source.locate_key(&raw.0)))?;
        for host in key.names {
            let mut host_vars = vars.clone().unwrap_or_default();
            if let Some(port) = key.port {
                host_vars.insert("ansible_port".into(), port.into());
            }
            inv.add_host_vars(&host, host_vars);
            inv.add_host_to_group(&host, name);
        }
    }
    if let Some(vars) = def.vars {
        let g = inv.ensure_group(name);
        for (k, v) in vars {
            g.vars.insert(k, v);
        }
    }
    for (child, child_def) in def.children.unwrap_or_default() {
        add_group(
            inv,
            &child,
            child_def.unwrap_or_default(),
            Some(name),
            source,
        )?;
    }
    Ok(())
}

/// A serde_yaml error as `file:line:col: message`.
/// A YAML error, or a `!vault` value that could not be decrypted, naming the file.
pub(super) fn vault_yaml_error(file: &Path, e: crate::vault::yaml::YamlError) -> anyhow::Error {
    match e {
        crate::vault::yaml::YamlError::Syntax(e) => yaml_error(file, &e),
        crate::vault::yaml::YamlError::Vault(e) => e.context(file.display().to_string()),
    }
}

pub(super) fn yaml_error(file: &Path, e: &serde_yaml::Error) -> anyhow::Error {
    let msg = e.to_string();
    match e.location() {
        Some(loc) => {
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            let msg = msg.strip_suffix(&suffix).unwrap_or(&msg);
            anyhow::anyhow!(
                "{}:{}:{}: {}",
                file.display(),
                loc.line(),
                loc.column(),
                msg
            )
        }
        None => anyhow::anyhow!("{}: {}", file.display(), msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_keys_with_ports_and_ranges() {
        let k = parse_host_key("web1.example.com:2222").unwrap();
        assert_eq!(k.names, ["web1.example.com"]);
        assert_eq!(k.port, Some(2222));
        let k = parse_host_key("web[1:2]:2200").unwrap();
        assert_eq!(k.names, ["web1", "web2"]);
        assert_eq!(k.port, Some(2200));
        let k = parse_host_key("web[1:2]").unwrap();
        assert_eq!(k.port, None);
        let k = parse_host_key("fe80::1").unwrap();
        assert_eq!(k.names, ["fe80::1"]);
        assert!(parse_host_key("h:notaport").is_err());
    }
}

/// Hostile inventories and vars files: serde_yaml (libyaml) bounds alias expansion and
/// nesting itself; these pin that it stays so, with the file named.
#[cfg(test)]
mod hostile_input {
    use std::path::Path;

    use crate::inventory::vars_files::parse_vars;
    use crate::inventory::Inventory;

    fn billion_laughs(top: &str) -> String {
        let mut text =
            format!("{top}\n  vars:\n    a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..10 {
            let items = vec![format!("*a{}", i - 1); 9].join(", ");
            text.push_str(&format!("    a{i}: &a{i} [{items}]\n"));
        }
        text
    }

    #[test]
    fn billion_laughs_inventory_is_refused() {
        let err =
            Inventory::parse(&billion_laughs("all:"), Path::new("inv.yml")).expect_err("refused");
        let err = format!("{err:#}");
        assert!(err.contains("inv.yml"), "{err}");
        assert!(err.contains("repetition limit exceeded"), "{err}");
    }

    #[test]
    fn billion_laughs_vars_file_is_refused() {
        let text = billion_laughs("x:")
            .replace("\n  vars:\n    ", "\n")
            .replace("\n    ", "\n");
        let err = parse_vars(&text, Path::new("group_vars/all.yml")).expect_err("refused");
        let err = format!("{err:#}");
        assert!(err.contains("group_vars/all.yml"), "{err}");
        assert!(err.contains("repetition limit exceeded"), "{err}");
    }

    #[test]
    fn deeply_nested_inventory_is_refused() {
        let text = format!(
            "all:\n  vars:\n    x: {}1{}\n",
            "[".repeat(1000),
            "]".repeat(1000)
        );
        let err = Inventory::parse(&text, Path::new("deep.yml")).expect_err("refused");
        let err = format!("{err:#}");
        assert!(
            err.contains("deep.yml") && err.contains("recursion limit"),
            "{err}"
        );
    }
}
