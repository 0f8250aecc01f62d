//! System facts read from files: distribution (os-release), DMI, load average, SELinux,
//! SSH host keys.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::parsers;

/// Ansible's distribution facts from os-release (Debian's point release from
/// /etc/debian_version, as Ansible reads it).
pub fn distribution(os_release: &str, debian_version: &str) -> Map<String, Value> {
    let os = parsers::key_values(os_release);
    let id = os.get("ID").map(String::as_str).unwrap_or("");
    let distro = match id {
        "debian" => "Debian".to_string(),
        "ubuntu" => "Ubuntu".into(),
        "centos" => "CentOS".into(),
        "rhel" => "RedHat".into(),
        "fedora" => "Fedora".into(),
        "alpine" => "Alpine".into(),
        "arch" => "Archlinux".into(),
        "rocky" => "Rocky".into(),
        "almalinux" => "AlmaLinux".into(),
        "opensuse-leap" | "opensuse" => "openSUSE Leap".into(),
        "sles" => "SLES".into(),
        "amzn" => "Amazon".into(),
        "" => "Linux".into(),
        other => {
            let mut c = other.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        }
    };
    let version = if distro == "Debian"
        && debian_version
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    {
        debian_version.to_string()
    } else {
        os.get("VERSION_ID").cloned().unwrap_or_default()
    };
    let major = version.split('.').next().unwrap_or("").to_string();
    let release = os
        .get("VERSION_CODENAME")
        .filter(|s| !s.is_empty())
        .cloned()
        .or_else(|| {
            // "12 (bookworm)"
            os.get("VERSION").and_then(|v| {
                let start = v.find('(')?;
                let end = v.find(')')?;
                v.get(start + 1..end).map(|s| s.to_string())
            })
        })
        .unwrap_or_else(|| "NA".into());
    let like = os.get("ID_LIKE").map(String::as_str).unwrap_or("");
    let family = match distro.as_str() {
        "Debian" | "Ubuntu" => "Debian",
        "CentOS" | "RedHat" | "Fedora" | "Rocky" | "AlmaLinux" | "Amazon" => "RedHat",
        "openSUSE Leap" | "SLES" => "Suse",
        "Alpine" => "Alpine",
        "Archlinux" => "Archlinux",
        _ if like.contains("debian") => "Debian",
        _ if like.contains("rhel") || like.contains("fedora") => "RedHat",
        other => other,
    }
    .to_string();
    let mut f = Map::new();
    f.insert("distribution".into(), json!(distro));
    f.insert("distribution_version".into(), json!(version));
    f.insert("distribution_major_version".into(), json!(major));
    if let Some((_, minor)) = version.split_once('.') {
        f.insert("distribution_minor_version".into(), json!(minor));
    }
    f.insert("distribution_release".into(), json!(release));
    f.insert("os_family".into(), json!(family));
    if distro == "Debian" && !os_release.is_empty() {
        f.insert("distribution_file_path".into(), json!("/etc/os-release"));
        f.insert("distribution_file_variety".into(), json!("Debian"));
        f.insert("distribution_file_parsed".into(), json!(true));
    }
    f
}

/// The DMI facts (`bios_*`, `board_*`, `chassis_*`, `product_*`, `system_vendor`,
/// `form_factor`): "NA" where /sys has no such file, as Ansible without dmidecode.
pub fn dmi_facts(dmi: &HashMap<String, String>) -> Map<String, Value> {
    const FORM_FACTOR: &[&str] = &[
        "Unknown",
        "Other",
        "Unknown",
        "Desktop",
        "Low Profile Desktop",
        "Pizza Box",
        "Mini Tower",
        "Tower",
        "Portable",
        "Laptop",
        "Notebook",
        "Hand Held",
        "Docking Station",
        "All In One",
        "Sub Notebook",
        "Space-saving",
        "Lunch Box",
        "Main Server Chassis",
        "Expansion Chassis",
        "Sub Chassis",
        "Bus Expansion Chassis",
        "Peripheral Chassis",
        "RAID Chassis",
        "Rack Mount Chassis",
        "Sealed-case PC",
        "Multi-system",
        "CompactPCI",
        "AdvancedTCA",
        "Blade",
        "Blade Enclosure",
        "Tablet",
        "Convertible",
        "Detachable",
        "IoT Gateway",
        "Embedded PC",
        "Mini PC",
        "Stick PC",
    ];
    let mut f = Map::new();
    for key in [
        "bios_date",
        "bios_vendor",
        "bios_version",
        "board_asset_tag",
        "board_name",
        "board_serial",
        "board_vendor",
        "board_version",
        "chassis_asset_tag",
        "chassis_serial",
        "chassis_vendor",
        "chassis_version",
        "product_name",
        "product_serial",
        "product_uuid",
        "product_version",
    ] {
        let v = dmi.get(key).cloned().unwrap_or_else(|| "NA".into());
        f.insert(key.into(), json!(v));
    }
    let vendor = dmi
        .get("sys_vendor")
        .cloned()
        .unwrap_or_else(|| "NA".into());
    f.insert("system_vendor".into(), json!(vendor));
    let form = match dmi.get("chassis_type") {
        None => "NA".to_string(),
        Some(t) => match t.parse::<usize>().ok().and_then(|i| FORM_FACTOR.get(i)) {
            Some(name) => name.to_string(),
            None => format!("unknown ({t})"),
        },
    };
    f.insert("form_factor".into(), json!(form));
    f
}

/// /proc/loadavg -> {"1m", "5m", "15m"} as floats.
pub fn loadavg(line: &str) -> Option<Value> {
    let n: Vec<f64> = line
        .split_whitespace()
        .take(3)
        .filter_map(|v| v.parse().ok())
        .collect();
    (n.len() == 3).then(|| json!({"1m": n[0], "5m": n[1], "15m": n[2]}))
}

/// SELinux status from /sys/fs/selinux and /etc/selinux/config.
pub fn selinux(text: &str) -> Value {
    let kv = parsers::key_values(text);
    let Some(enforce) = kv.get("enforce") else {
        return json!({"status": "disabled"});
    };
    let mode = if enforce == "1" {
        "enforcing"
    } else {
        "permissive"
    };
    json!({
        "status": "enabled",
        "mode": mode,
        "config_mode": kv.get("SELINUX").cloned().unwrap_or_else(|| "unknown".into()),
        "type": kv.get("SELINUXTYPE").cloned().unwrap_or_else(|| "unknown".into()),
        "policyvers": kv.get("policyvers").and_then(|v| v.parse::<u64>().ok()).map(Value::from).unwrap_or_else(|| json!("unknown")),
    })
}

/// `ssh_host_key_<type>_public` and `_keytype`, as Ansible's ssh_pub_keys collector.
pub fn ssh_keys(text: &str) -> Map<String, Value> {
    let mut f = Map::new();
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() >= 3 {
            f.insert(format!("ssh_host_key_{}_public", w[0]), json!(w[2]));
            f.insert(format!("ssh_host_key_{}_public_keytype", w[0]), json!(w[1]));
        }
    }
    f
}
