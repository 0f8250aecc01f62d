//! What a cluster should look like, read from inventory variables: which hosts the docker
//! provider creates (`infra_provider: docker` and no `ansible_host`), the cluster's name
//! (`infra_cluster`, default the inventory file's stem), its subnet (`infra_subnet`) and each
//! host's limits (`infra_cpus`, `infra_memory`). Pure logic over variables; no Docker calls.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::Value;

use super::subnet::Ipv4Net;
use crate::Vars;

/// One host the provider creates.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSpec {
    /// The inventory name; also the container's hostname.
    pub name: String,
    /// `NanoCpus` (1e9 = one CPU), from `infra_cpus`.
    pub nano_cpus: Option<i64>,
    /// Bytes, from `infra_memory`.
    pub memory: Option<i64>,
}

/// One cluster of containers on one network.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSpec {
    pub name: String,
    /// `infra_subnet`, when the inventory names one.
    pub subnet: Option<Ipv4Net>,
    pub hosts: Vec<HostSpec>,
}

impl ClusterSpec {
    /// The Docker network's name.
    pub fn network_name(&self) -> String {
        network_name(&self.name)
    }

    /// The container's name for an inventory host.
    pub fn container_name(&self, host: &str) -> String {
        format!("{}-{}", self.name, host)
    }

    /// The same cluster cut in two: the hosts named in `chosen` (an `up --limit`'s hosts),
    /// and the others, both on the same network.
    pub fn split(&self, chosen: &[String]) -> (ClusterSpec, ClusterSpec) {
        let (inside, outside) = self
            .hosts
            .iter()
            .cloned()
            .partition(|h| chosen.contains(&h.name));
        let with = |hosts| ClusterSpec {
            hosts,
            ..self.clone()
        };
        (with(inside), with(outside))
    }
}

pub fn network_name(cluster: &str) -> String {
    format!("infra-{cluster}")
}

/// The default cluster name: the inventory file's stem (`inventories/local.yaml` -> `local`).
pub fn default_cluster_name(inventory: &Path) -> String {
    inventory
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "infra".to_string())
}

/// The cluster's state folder: `$INFRA_HOME/<cluster>` or `.infra/<cluster>` beside the
/// inventory.
pub fn state_dir(inventory: &Path, cluster: &str, infra_home: Option<&Path>) -> PathBuf {
    match infra_home {
        Some(home) => home.join(cluster),
        None => inventory
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or_else(|| Path::new("."))
            .join(".infra")
            .join(cluster),
    }
}

/// The state folder as `infra up` and `infra down` use it: `INFRA_HOME` from the
/// environment, made absolute (the key's path goes into the run's variables).
pub fn state_dir_from_env(inventory: &Path, cluster: &str) -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("INFRA_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    let dir = state_dir(inventory, cluster, home.as_deref());
    std::path::absolute(&dir)
        .with_context(|| format!("cannot make the state folder {} absolute", dir.display()))
}

/// Builds the spec from each host's merged variables, in inventory order. Returns `None`
/// when no host asks for the docker provider.
pub fn spec_from_host_vars<'a>(
    default_name: &str,
    hosts: impl IntoIterator<Item = (&'a str, &'a Vars)>,
) -> anyhow::Result<Option<ClusterSpec>> {
    let mut name: Option<String> = None;
    let mut subnet: Option<(String, Ipv4Net)> = None;
    let mut specs = Vec::new();
    for (host, vars) in hosts {
        match vars.get("infra_provider") {
            None | Some(Value::Null) => continue,
            Some(Value::String(p)) if p == "docker" => {}
            Some(other) => {
                bail!("host `{host}`: infra_provider is {other}, but the only provider is `docker`")
            }
        }
        if vars.get("ansible_host").is_some_and(|v| !v.is_null()) {
            continue;
        }
        validate_host_name(host)?;
        let cluster = match vars.get("infra_cluster") {
            Some(v) => scalar_string(v).with_context(|| format!("host `{host}`: infra_cluster"))?,
            None => default_name.to_string(),
        };
        validate_cluster_name(&cluster)?;
        match &name {
            Some(n) if *n != cluster => bail!(
                "hosts of one inventory must share one infra_cluster: `{n}` and `{cluster}` (host `{host}`)"
            ),
            _ => name = Some(cluster),
        }
        if let Some(v) = vars.get("infra_subnet") {
            let text = scalar_string(v).with_context(|| format!("host `{host}`: infra_subnet"))?;
            let net: Ipv4Net = text
                .parse()
                .with_context(|| format!("host `{host}`: infra_subnet"))?;
            match &subnet {
                Some((first, n)) if *n != net => bail!(
                    "hosts of one cluster must share one infra_subnet: {n} (host `{first}`) and {net} (host `{host}`)"
                ),
                Some(_) => {}
                None => subnet = Some((host.to_string(), net)),
            }
        }
        let nano_cpus = match vars.get("infra_cpus") {
            Some(v) => Some(parse_cpus(v).with_context(|| format!("host `{host}`: infra_cpus"))?),
            None => None,
        };
        let memory = match vars.get("infra_memory") {
            Some(v) => {
                Some(parse_memory(v).with_context(|| format!("host `{host}`: infra_memory"))?)
            }
            None => None,
        };
        specs.push(HostSpec {
            name: host.to_string(),
            nano_cpus,
            memory,
        });
    }
    Ok(name.map(|name| ClusterSpec {
        name,
        subnet: subnet.map(|(_, n)| n),
        hosts: specs,
    }))
}

fn scalar_string(value: &Value) -> anyhow::Result<String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => bail!("expected a string, found {other}"),
    }
}

/// Host names become hostnames and part of container names: letters, digits, `-`, `.`.
fn validate_host_name(host: &str) -> anyhow::Result<()> {
    let ok = !host.is_empty()
        && host.len() <= 63
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !host.starts_with(['-', '.']);
    if !ok {
        bail!(
            "host `{host}` cannot be a container: its name must be a hostname (letters, digits, \
             `-`, `.`, at most 63 characters)"
        );
    }
    Ok(())
}

fn validate_cluster_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric());
    if !ok {
        bail!(
            "infra_cluster `{name}` must start with a letter or digit and hold only letters, \
             digits, `-` and `_` (at most 40 characters)"
        );
    }
    Ok(())
}

/// `2`, `1.5`, `"0.5"` -> NanoCpus.
pub fn parse_cpus(value: &Value) -> anyhow::Result<i64> {
    let cpus: f64 = match value {
        Value::Number(n) => n.as_f64().context("not a number")?,
        Value::String(s) => s
            .trim()
            .parse()
            .with_context(|| format!("`{s}` is not a number of CPUs"))?,
        other => bail!("expected a number of CPUs, found {other}"),
    };
    if !(cpus > 0.0 && cpus <= 1024.0) {
        bail!("{cpus} is not a sensible number of CPUs");
    }
    Ok((cpus * 1e9).round() as i64)
}

/// `536870912`, `"512m"`, `"1g"`, `"1.5G"`, `"256MiB"` -> bytes (binary units, as Docker).
pub fn parse_memory(value: &Value) -> anyhow::Result<i64> {
    let text = match value {
        Value::Number(n) => {
            return n
                .as_i64()
                .filter(|b| *b > 0)
                .context("expected a positive byte count")
        }
        Value::String(s) => s.trim().to_ascii_lowercase(),
        other => bail!("expected a size like 512m or 2g, found {other}"),
    };
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number: f64 = number
        .parse()
        .with_context(|| format!("`{text}` is not a size like 512m or 2g"))?;
    let factor: f64 = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        other => bail!("`{text}`: unknown unit `{other}` (use k, m or g)"),
    };
    let bytes = (number * factor).round() as i64;
    if bytes < 6 * 1024 * 1024 {
        bail!("`{text}` is below Docker's minimum of 6m");
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(v: Value) -> Vars {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn picks_docker_hosts_without_an_address() {
        let a = vars(json!({"infra_provider": "docker", "infra_cpus": 2, "infra_memory": "512m"}));
        let b = vars(json!({"infra_provider": "docker", "ansible_host": "10.0.0.5"}));
        let c = vars(json!({}));
        let spec = spec_from_host_vars("local", [("a", &a), ("b", &b), ("c", &c)])
            .unwrap()
            .unwrap();
        assert_eq!(spec.name, "local");
        assert_eq!(spec.network_name(), "infra-local");
        assert_eq!(spec.container_name("a"), "local-a");
        assert_eq!(
            spec.hosts,
            vec![HostSpec {
                name: "a".into(),
                nano_cpus: Some(2_000_000_000),
                memory: Some(512 << 20)
            }]
        );
    }

    #[test]
    fn no_docker_host_means_no_cluster() {
        let c = vars(json!({"ansible_host": "1.2.3.4"}));
        assert_eq!(spec_from_host_vars("x", [("c", &c)]).unwrap(), None);
    }

    #[test]
    fn cluster_and_subnet_come_from_vars() {
        let a = vars(
            json!({"infra_provider": "docker", "infra_cluster": "lab", "infra_subnet": "10.9.8.0/24"}),
        );
        let spec = spec_from_host_vars("local", [("a", &a)]).unwrap().unwrap();
        assert_eq!(spec.name, "lab");
        assert_eq!(spec.subnet.unwrap().to_string(), "10.9.8.0/24");
    }

    #[test]
    fn bad_values_name_the_host_and_field() {
        let a = vars(json!({"infra_provider": "docker", "infra_memory": "lots"}));
        let err = format!("{:#}", spec_from_host_vars("l", [("a", &a)]).unwrap_err());
        assert!(err.contains("host `a`: infra_memory"), "{err}");
        let b = vars(json!({"infra_provider": "vbox"}));
        let err = format!("{:#}", spec_from_host_vars("l", [("b", &b)]).unwrap_err());
        assert!(err.contains("infra_provider"), "{err}");
        let c = vars(json!({"infra_provider": "docker"}));
        let err = format!(
            "{:#}",
            spec_from_host_vars("l", [("bad_name", &c)]).unwrap_err()
        );
        assert!(err.contains("bad_name"), "{err}");
    }

    #[test]
    fn sizes_and_cpus() {
        assert_eq!(parse_memory(&json!("1g")).unwrap(), 1 << 30);
        assert_eq!(parse_memory(&json!("1.5G")).unwrap(), 3 << 29);
        assert_eq!(parse_memory(&json!("256MiB")).unwrap(), 256 << 20);
        assert_eq!(parse_memory(&json!(536870912)).unwrap(), 512 << 20);
        assert!(parse_memory(&json!("1k")).is_err());
        assert_eq!(parse_cpus(&json!("0.5")).unwrap(), 500_000_000);
        assert!(parse_cpus(&json!(0)).is_err());
    }

    #[test]
    fn state_dir_is_beside_the_inventory_unless_overridden() {
        let inv = Path::new("inventories/local.yaml");
        assert_eq!(
            state_dir(inv, "local", None),
            Path::new("inventories/.infra/local")
        );
        assert_eq!(
            state_dir(Path::new("local.yaml"), "local", None),
            Path::new("./.infra/local")
        );
        assert_eq!(
            state_dir(inv, "local", Some(Path::new("/srv/infra"))),
            Path::new("/srv/infra/local")
        );
        assert_eq!(default_cluster_name(inv), "local");
    }
}
