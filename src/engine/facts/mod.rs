//! Fact gathering without Python, in one exec per host: most facts are files (/proc, /sys,
//! /etc) read over the connection's SFTP session ([`files`], no process on the host), and
//! one exec runs only what has no file (`env`, `ip`, `date`, ...); a host where files
//! cannot be read that way (a become that escalates, no SFTP, no /proc) runs the whole
//! shell script ([`script`]) instead. Both give the same `@@name` sections, parsed
//! ([`collect`]) into the facts Ansible's `setup` returns, with Ansible's names, types and
//! formats (`ansible_hostname`, `ansible_default_ipv4`, `ansible_local`, ...).
//!
//! The engine stores them the way Ansible's fact cache does ([`merge`]): each fact both as an
//! injected variable (`ansible_distribution`) and, without the prefix, under `ansible_facts`
//! (`ansible_facts.distribution`). Any module whose result carries `ansible_facts` (setup,
//! service_facts, a fallback Ansible module) goes through the same merge.
//!
//! The parsers are a leaf: pure text in, JSON out, no engine state. The `setup` module uses
//! them too (through the script), so gathering at play start and `setup:` in a task cannot
//! differ; [`gather`] is the one part that talks to a host.

mod files;
mod local;
mod network;
pub mod parsers;
mod script;
mod system;
mod versions;

use std::collections::BTreeSet;

use anyhow::{bail, Context};
use serde_json::{json, Map, Value};

use crate::Vars;

pub use files::gather;
pub use script::Beside;

/// Where Ansible looks for local facts unless told otherwise.
pub const DEFAULT_FACT_PATH: &str = "/etc/ansible/facts.d";
/// Ansible's default `gather_timeout` (seconds).
pub const DEFAULT_GATHER_TIMEOUT: u64 = 10;

/// The collectors in Ansible's `min` subset (always gathered unless `!min`).
const MIN: &[&str] = &[
    "apparmor",
    "caps",
    "cmdline",
    "date_time",
    "distribution",
    "dns",
    "env",
    "fips",
    "local",
    "lsb",
    "pkg_mgr",
    "platform",
    "python",
    "selinux",
    "service_mgr",
    "ssh_pub_keys",
    "user",
];
/// The collectors `all` adds to `min`.
const EXTRA: &[&str] = &[
    "chroot", "hardware", "loadavg", "network", "systemd", "virtual",
];
/// Accepted for compatibility, gather nothing (no facter/ohai on our hosts).
const IGNORED: &[&str] = &["facter", "ohai"];

/// What to gather: `setup`'s arguments, or the play's `gather_subset`/`gather_timeout`/
/// `fact_path` keywords.
#[derive(Debug, Clone, PartialEq)]
pub struct GatherOptions {
    pub subset: Vec<String>,
    /// fnmatch patterns on the prefixed names (`ansible_eth*`); empty keeps everything.
    pub filter: Vec<String>,
    pub fact_path: String,
    pub timeout: u64,
}

impl Default for GatherOptions {
    fn default() -> Self {
        GatherOptions {
            subset: vec!["all".into()],
            filter: vec![],
            fact_path: DEFAULT_FACT_PATH.into(),
            timeout: DEFAULT_GATHER_TIMEOUT,
        }
    }
}

impl GatherOptions {
    /// The script to run on the host (one exec).
    pub fn script(&self) -> String {
        script::script(&self.fact_path, self.timeout)
    }

    /// Checks subsets and filter patterns before any host is touched.
    pub fn validate(&self) -> anyhow::Result<()> {
        collectors(&self.subset)?;
        for f in &self.filter {
            glob::Pattern::new(f).with_context(|| format!("filter: bad pattern {f:?}"))?;
        }
        Ok(())
    }
}

/// Ansible's subset arithmetic: names add collectors (`all`, `min`, `hardware`, `network`,
/// `virtual`, or one collector such as `distribution`), `!name` removes them, only
/// exclusions means "all but those", and `min` stays unless `!min` is given.
pub fn collectors(subset: &[String]) -> anyhow::Result<BTreeSet<&'static str>> {
    let every: Vec<&'static str> = MIN.iter().chain(EXTRA).copied().collect();
    let resolve =
        |name: &str| -> anyhow::Result<Vec<&'static str>> {
            Ok(match name {
                "all" => every.clone(),
                "min" => MIN.to_vec(),
                n if IGNORED.contains(&n) => vec![],
                n => {
                    match every.iter().find(|c| **c == n) {
                        Some(c) => vec![*c],
                        None => bail!(
                    "Bad subset '{n}' given to Ansible. gather_subset options allowed: all, {}",
                    {
                        let mut names: Vec<&str> =
                            every.iter().chain(IGNORED).chain(&["min"]).copied().collect();
                        names.sort();
                        names.join(", ")
                    }
                ),
                    }
                }
            })
        };
    let mut add: BTreeSet<&'static str> = BTreeSet::new();
    let mut remove: BTreeSet<&'static str> = BTreeSet::new();
    let mut any_positive = false;
    let mut exclude_all = false;
    let mut exclude_min = false;
    for raw in subset {
        let s = raw.trim();
        if s.is_empty() {
            continue;
        }
        match s.strip_prefix('!') {
            Some("all") => exclude_all = true,
            Some("min") => {
                exclude_min = true;
                remove.extend(MIN);
            }
            Some(name) => remove.extend(resolve(name)?),
            None => {
                any_positive = true;
                add.extend(resolve(s)?);
            }
        }
    }
    if !any_positive && !exclude_all {
        add.extend(every.iter().copied());
    }
    if !exclude_min {
        add.extend(MIN.iter().filter(|c| !remove.contains(*c)));
    }
    Ok(add.difference(&remove).copied().collect())
}

/// The script's `@@name` sections, in order.
/// The body of section `name` (empty when absent).
pub(super) fn section<'a>(sections: &'a [(String, String)], name: &str) -> &'a str {
    sections
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, b)| b.as_str())
        .unwrap_or("")
}

fn split_sections(output: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in output.lines() {
        if let Some(name) = line.strip_prefix("@@") {
            if !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
            {
                out.push((name.to_string(), String::new()));
                continue;
            }
        }
        if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

/// Parses the script's output into the facts `setup` returns: every name prefixed with
/// `ansible_`, plus `gather_subset` and `module_setup`, limited to the selected collectors
/// and `filter`. Fails when the output is cut short (no end marker).
pub fn collect(output: &str, opts: &GatherOptions) -> anyhow::Result<Map<String, Value>> {
    let sections = split_sections(output);
    if !sections.iter().any(|(n, _)| n == "end") {
        bail!("the fact script's output is incomplete (no end marker)");
    }
    let wanted = collectors(&opts.subset)?;
    let get = |name: &str| -> String { section(&sections, name).to_string() };
    let first_line = |name: &str| get(name).lines().next().unwrap_or("").trim().to_string();
    let exists_text = get("exists");
    let exists: Vec<&str> = exists_text.lines().map(str::trim).collect();

    let service_mgr = parsers::service_mgr(&get("pid1"), &get("init_link"), &exists);
    let mut f = Map::new();
    let mut put = |collector: &str, facts: Map<String, Value>| {
        if wanted.contains(collector) {
            f.extend(facts);
        }
    };

    // platform
    let uname: Vec<String> = get("uname").lines().map(String::from).collect();
    let u = |i: usize| uname.get(i).cloned().unwrap_or_default();
    let machine = u(3);
    let nodename = u(4);
    let fqdn = match first_line("fqdn") {
        s if s.is_empty() => nodename.clone(),
        s => s,
    };
    let architecture = match machine.as_str() {
        "i386" | "i486" | "i586" | "i686" => "i386".to_string(),
        other => other.to_string(),
    };
    let mut p = Map::new();
    p.insert("system".into(), json!(u(0)));
    p.insert("kernel".into(), json!(u(1)));
    p.insert("kernel_version".into(), json!(u(2)));
    p.insert("machine".into(), json!(machine));
    p.insert("architecture".into(), json!(architecture));
    p.insert("userspace_architecture".into(), json!(architecture));
    p.insert(
        "userspace_bits".into(),
        json!(if machine.contains("64") { "64" } else { "32" }),
    );
    p.insert("nodename".into(), json!(nodename));
    p.insert(
        "hostname".into(),
        json!(nodename.split('.').next().unwrap_or("")),
    );
    p.insert(
        "domain".into(),
        json!(fqdn.split_once('.').map(|x| x.1).unwrap_or("")),
    );
    p.insert("fqdn".into(), json!(fqdn));
    let machine_id = first_line("machine_id");
    if !machine_id.is_empty() {
        p.insert("machine_id".into(), json!(machine_id));
    }
    put("platform", p);

    put(
        "distribution",
        system::distribution(&get("os_release"), &first_line("debian_version")),
    );
    put("lsb", {
        let mut m = Map::new();
        m.insert(
            "lsb".into(),
            Value::Object(parsers::lsb(&get("lsb_release"), &get("lsb_file"))),
        );
        m
    });
    put("env", one("env", Value::Object(parsers::env(&get("env")))));
    put("user", parsers::user(&get("user")));
    put("service_mgr", one("service_mgr", json!(service_mgr)));
    put("pkg_mgr", one("pkg_mgr", json!(parsers::pkg_mgr(&exists))));
    if let Some(py) = parsers::python(&get("python")) {
        put("python", py);
    }
    put(
        "dns",
        one("dns", Value::Object(parsers::dns(&get("resolv")))),
    );
    let (cmd, proc_cmd) = parsers::cmdline(&get("cmdline"));
    put("cmdline", {
        let mut m = one("cmdline", Value::Object(cmd));
        m.insert("proc_cmdline".into(), Value::Object(proc_cmd));
        m
    });
    put(
        "date_time",
        one("date_time", Value::Object(parsers::date_time(&get("date")))),
    );
    put("fips", one("fips", json!(first_line("fips") == "1")));
    put(
        "apparmor",
        one(
            "apparmor",
            json!({"status": if first_line("apparmor") == "enabled" { "enabled" } else { "disabled" }}),
        ),
    );
    put("selinux", one("selinux", system::selinux(&get("selinux"))));
    put("ssh_pub_keys", system::ssh_keys(&get("ssh_keys")));
    put(
        "local",
        one("local", json!(local::local_facts(&get("local")))),
    );

    // hardware
    let dmi = parsers::key_values(&get("dmi"));
    let mut hw = parsers::cpu(&get("cpuinfo"), &machine, first_line("nproc").parse().ok());
    hw.extend(parsers::memory(&get("meminfo")));
    hw.insert(
        "mounts".into(),
        json!(parsers::mounts(&get("mounts"), &get("mount_sizes"))),
    );
    if let Some(up) = first_line("uptime")
        .split_whitespace()
        .next()
        .and_then(|s| s.parse::<f64>().ok())
    {
        hw.insert("uptime_seconds".into(), json!(up as u64));
    }
    hw.extend(system::dmi_facts(&dmi));
    put("hardware", hw);

    if let Some(l) = system::loadavg(&first_line("loadavg")) {
        put("loadavg", one("loadavg", l));
    }
    let chroot: Vec<String> = get("chroot").lines().map(String::from).collect();
    if let [root, init_root] = chroot.as_slice() {
        put("chroot", one("is_chroot", json!(root != init_root)));
    }
    let sd: Vec<String> = get("systemctl_version").lines().map(String::from).collect();
    let sd_version = sd
        .first()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok());
    if let (Some(version), true) = (sd_version, service_mgr == "systemd") {
        let features = sd.get(1).cloned().unwrap_or_default();
        put(
            "systemd",
            one("systemd", json!({"version": version, "features": features})),
        );
    }

    put(
        "network",
        network::network(&get("route"), &get("route6"), &get("addr"), &get("netsys")),
    );

    let (vtype, vrole, guest) = parsers::virtualization(
        &get("cgroup"),
        &get("environ1"),
        &get("systemd_container"),
        &exists,
        &dmi,
    );
    put("virtual", {
        let mut m = Map::new();
        m.insert("virtualization_type".into(), json!(vtype));
        m.insert("virtualization_role".into(), json!(vrole));
        m.insert("virtualization_tech_guest".into(), json!(guest));
        m.insert("virtualization_tech_host".into(), json!([]));
        m
    });

    let patterns: Vec<glob::Pattern> = opts
        .filter
        .iter()
        .map(|p| glob::Pattern::new(p).with_context(|| format!("filter: bad pattern {p:?}")))
        .collect::<anyhow::Result<_>>()?;
    let mut out = Map::new();
    for (k, v) in f {
        let name = format!("ansible_{k}");
        if patterns.is_empty() || patterns.iter().any(|p| p.matches(&name)) {
            out.insert(name, v);
        }
    }
    out.insert("gather_subset".into(), json!(opts.subset));
    out.insert("module_setup".into(), json!(true));
    Ok(out)
}

fn one(key: &str, value: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(key.into(), value);
    m
}

/// Merges facts (a module's `ansible_facts`, keys as the module returned them) into a host's
/// fact store the way Ansible's fact cache does: top-level keys replace, each is injected as
/// a variable under its own name and put under `ansible_facts` without the `ansible_` prefix
/// (except `ansible_local`, which keeps it there too).
pub fn merge(store: &mut Vars, facts: &Map<String, Value>) {
    let mut ns = match store.remove("ansible_facts") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for (k, v) in facts {
        let short = match k.strip_prefix("ansible_") {
            Some(s) if k != "ansible_local" => s.to_string(),
            _ => k.clone(),
        };
        ns.insert(short, v.clone());
        store.insert(k.clone(), v.clone());
    }
    store.insert("ansible_facts".into(), Value::Object(ns));
}

#[cfg(test)]
mod tests;
