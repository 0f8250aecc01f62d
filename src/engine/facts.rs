//! Fact gathering without Python: one shell script, one exec round trip, its output parsed
//! into Ansible's fact names (`ansible_hostname`, `ansible_default_ipv4`, ...) and the same
//! facts without the prefix under `ansible_facts`.

use serde_json::{json, Map, Value};

use crate::Vars;

/// The script run on the host. Each section starts with a `@@name` line.
pub const SCRIPT: &str = r#"
echo "@@hostname"; hostname -s 2>/dev/null || hostname 2>/dev/null || cat /proc/sys/kernel/hostname
echo "@@fqdn"; hostname -f 2>/dev/null || hostname 2>/dev/null || cat /proc/sys/kernel/hostname
echo "@@arch"; uname -m
echo "@@nproc"; nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || grep -c ^processor /proc/cpuinfo
echo "@@memtotal_kb"; awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null
echo "@@user_id"; id -un 2>/dev/null || whoami
echo "@@pid1"; cat /proc/1/comm 2>/dev/null
echo "@@route"; ip -4 route show default 2>/dev/null | head -n 1
echo "@@addrs"; ip -4 -o addr show 2>/dev/null
echo "@@os_release"; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null
echo "@@debian_version"; cat /etc/debian_version 2>/dev/null
echo "@@env"; env
echo "@@end"
"#;

/// Parses the script's output into facts (both `ansible_x` and `ansible_facts.x`).
pub fn parse(output: &str) -> Vars {
    let sections = split_sections(output);
    let get = |name: &str| {
        sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, body)| body.trim().to_string())
            .unwrap_or_default()
    };
    let first_line = |name: &str| get(name).lines().next().unwrap_or("").trim().to_string();

    let mut f = Map::new();
    let hostname = first_line("hostname");
    f.insert("hostname".into(), json!(hostname));
    f.insert("nodename".into(), json!(hostname));
    let fqdn = first_line("fqdn");
    f.insert(
        "fqdn".into(),
        json!(if fqdn.is_empty() {
            hostname.clone()
        } else {
            fqdn
        }),
    );
    let arch = first_line("arch");
    f.insert("architecture".into(), json!(arch));
    f.insert("machine".into(), json!(arch));
    let vcpus: u64 = first_line("nproc").parse().unwrap_or(1);
    f.insert("processor_vcpus".into(), json!(vcpus));
    f.insert("processor_count".into(), json!(vcpus));
    f.insert("processor_cores".into(), json!(vcpus));
    let mem_kb: u64 = first_line("memtotal_kb").parse().unwrap_or(0);
    f.insert("memtotal_mb".into(), json!(mem_kb / 1024));
    f.insert("user_id".into(), json!(first_line("user_id")));
    f.insert(
        "service_mgr".into(),
        json!(service_mgr(&first_line("pid1"))),
    );

    let (default_ipv4, all) = ipv4(&get("route"), &get("addrs"));
    f.insert("default_ipv4".into(), default_ipv4);
    f.insert("all_ipv4_addresses".into(), json!(all));

    let os = os_release(&get("os_release"));
    let distro = distribution(&os);
    let debian_version = first_line("debian_version");
    let version = if distro == "Debian"
        && debian_version
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    {
        debian_version
    } else {
        os.get("VERSION_ID").cloned().unwrap_or_default()
    };
    let major = version.split('.').next().unwrap_or("").to_string();
    let release = os
        .get("VERSION_CODENAME")
        .cloned()
        .or_else(|| {
            // "12 (bookworm)"
            os.get("VERSION").and_then(|v| {
                let start = v.find('(')?;
                let end = v.find(')')?;
                v.get(start + 1..end).map(|s| s.to_string())
            })
        })
        .unwrap_or_default();
    f.insert("os_family".into(), json!(os_family(&distro, &os)));
    f.insert("distribution".into(), json!(distro));
    f.insert("distribution_release".into(), json!(release));
    f.insert("distribution_version".into(), json!(version));
    f.insert("distribution_major_version".into(), json!(major));
    f.insert("system".into(), json!("Linux"));
    f.insert("env".into(), Value::Object(env(&get("env"))));

    let mut vars = Vars::new();
    for (k, v) in &f {
        vars.insert(format!("ansible_{k}"), v.clone());
    }
    vars.insert("ansible_facts".into(), Value::Object(f));
    vars
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

fn service_mgr(pid1: &str) -> &'static str {
    match pid1 {
        "systemd" => "systemd",
        "init" => "sysvinit",
        "runit" | "runsvdir" => "runit",
        "openrc" | "openrc-init" => "openrc",
        "s6-svscan" => "s6",
        _ => "service",
    }
}

/// The default route's interface, address and gateway, and every address but loopback's.
fn ipv4(route: &str, addrs: &str) -> (Value, Vec<String>) {
    // "default via 172.17.0.1 dev eth0 ..."
    let words: Vec<&str> = route.split_whitespace().collect();
    let after = |key: &str| {
        words
            .iter()
            .position(|w| *w == key)
            .and_then(|i| words.get(i + 1))
            .map(|s| s.to_string())
    };
    let gateway = after("via");
    let interface = after("dev");
    let mut all = Vec::new();
    let mut default = None;
    // "2: eth0    inet 172.17.0.2/16 brd 172.17.255.255 scope global eth0 ..."
    for line in addrs.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let Some(i) = w.iter().position(|x| *x == "inet") else {
            continue;
        };
        let (Some(dev), Some(cidr)) = (w.get(1), w.get(i + 1)) else {
            continue;
        };
        let (addr, prefix) = cidr.split_once('/').unwrap_or((cidr, "32"));
        if addr.starts_with("127.") {
            continue;
        }
        all.push(addr.to_string());
        if default.is_none() && interface.as_deref() == Some(*dev) {
            let mut m = Map::new();
            m.insert("address".into(), json!(addr));
            m.insert("interface".into(), json!(dev));
            m.insert("alias".into(), json!(dev));
            if let Ok(p) = prefix.parse::<u32>() {
                m.insert("prefix".into(), json!(p.to_string()));
                m.insert("netmask".into(), json!(netmask(p)));
            }
            if let Some(gw) = &gateway {
                m.insert("gateway".into(), json!(gw));
            }
            default = Some(Value::Object(m));
        }
    }
    (default.unwrap_or_else(|| json!({})), all)
}

fn netmask(prefix: u32) -> String {
    let bits: u32 = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix.min(32))
    };
    let b = bits.to_be_bytes();
    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
}

fn os_release(text: &str) -> std::collections::HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim().trim_matches('"').trim_matches('\'').to_string();
            (k.trim().to_string(), v)
        })
        .collect()
}

fn distribution(os: &std::collections::HashMap<String, String>) -> String {
    let id = os.get("ID").map(String::as_str).unwrap_or("");
    match id {
        "debian" => "Debian".into(),
        "ubuntu" => "Ubuntu".into(),
        "centos" => "CentOS".into(),
        "rhel" => "RedHat".into(),
        "fedora" => "Fedora".into(),
        "alpine" => "Alpine".into(),
        "arch" => "Archlinux".into(),
        "" => "Linux".into(),
        other => {
            let mut c = other.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        }
    }
}

fn os_family(distro: &str, os: &std::collections::HashMap<String, String>) -> String {
    let like = os.get("ID_LIKE").map(String::as_str).unwrap_or("");
    match distro {
        "Debian" | "Ubuntu" => "Debian".into(),
        "CentOS" | "RedHat" | "Fedora" => "RedHat".into(),
        "Alpine" => "Alpine".into(),
        "Archlinux" => "Archlinux".into(),
        _ if like.contains("debian") => "Debian".into(),
        _ if like.contains("rhel") || like.contains("fedora") => "RedHat".into(),
        other => other.into(),
    }
}

/// `env` output; a line without `NAME=` continues the previous value.
fn env(text: &str) -> Map<String, Value> {
    let mut out: Map<String, Value> = Map::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        let named = line.split_once('=').filter(|(k, _)| {
            !k.is_empty()
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !k.starts_with(|c: char| c.is_ascii_digit())
        });
        match (named, &last) {
            (Some((k, v)), _) => {
                out.insert(k.to_string(), json!(v));
                last = Some(k.to_string());
            }
            (None, Some(k)) => {
                if let Some(Value::String(s)) = out.get_mut(k) {
                    s.push('\n');
                    s.push_str(line);
                }
            }
            (None, None) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "@@hostname\nweb1\n@@fqdn\nweb1.example.org\n@@arch\nx86_64\n@@nproc\n4\n\
@@memtotal_kb\n2048000\n@@user_id\nroot\n@@pid1\nsystemd\n\
@@route\ndefault via 172.17.0.1 dev eth0 \n\
@@addrs\n1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n\
2: eth0    inet 172.17.0.2/16 brd 172.17.255.255 scope global eth0\\       valid_lft forever\n\
@@os_release\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n\
@@debian_version\n12.5\n@@env\nHOME=/root\nMULTI=a\nb\nPATH=/usr/bin\n@@end\n";

    #[test]
    fn parses_every_fact() {
        let f = parse(SAMPLE);
        assert_eq!(f["ansible_hostname"], "web1");
        assert_eq!(f["ansible_fqdn"], "web1.example.org");
        assert_eq!(f["ansible_architecture"], "x86_64");
        assert_eq!(f["ansible_processor_vcpus"], 4);
        assert_eq!(f["ansible_memtotal_mb"], 2000);
        assert_eq!(f["ansible_user_id"], "root");
        assert_eq!(f["ansible_service_mgr"], "systemd");
        assert_eq!(f["ansible_default_ipv4"]["address"], "172.17.0.2");
        assert_eq!(f["ansible_default_ipv4"]["interface"], "eth0");
        assert_eq!(f["ansible_default_ipv4"]["gateway"], "172.17.0.1");
        assert_eq!(f["ansible_default_ipv4"]["netmask"], "255.255.0.0");
        assert_eq!(f["ansible_all_ipv4_addresses"], json!(["172.17.0.2"]));
        assert_eq!(f["ansible_distribution"], "Debian");
        assert_eq!(f["ansible_distribution_release"], "bookworm");
        assert_eq!(f["ansible_distribution_version"], "12.5");
        assert_eq!(f["ansible_distribution_major_version"], "12");
        assert_eq!(f["ansible_os_family"], "Debian");
        assert_eq!(f["ansible_env"]["HOME"], "/root");
        assert_eq!(f["ansible_env"]["MULTI"], "a\nb");
        assert_eq!(f["ansible_facts"]["hostname"], "web1");
        assert_eq!(f["ansible_facts"]["default_ipv4"]["address"], "172.17.0.2");
    }

    #[test]
    fn missing_tools_give_empty_but_present_facts() {
        let f = parse("@@hostname\nh\n@@end\n");
        assert_eq!(f["ansible_hostname"], "h");
        assert_eq!(f["ansible_default_ipv4"], json!({}));
        assert_eq!(f["ansible_all_ipv4_addresses"], json!([]));
        assert_eq!(f["ansible_processor_vcpus"], 1);
    }

    #[test]
    fn script_runs_here_and_parses() {
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .output()
            .unwrap();
        let f = parse(&String::from_utf8_lossy(&out.stdout));
        assert!(!f["ansible_hostname"].as_str().unwrap().is_empty());
        assert!(f["ansible_memtotal_mb"].as_u64().unwrap() > 0);
        assert_eq!(f["ansible_os_family"], "Debian");
        assert!(f["ansible_env"]["PATH"].is_string());
    }
}
