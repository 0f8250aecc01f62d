//! The network facts from `ip -4/-6 route get`, `ip addr show` and /sys/class/net, shaped
//! as Ansible's Linux network collector shapes them.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// One interface as /sys/class/net/<dev>/ describes it (the script's `netsys` line).
pub struct SysNet {
    pub device: String,
    pub fields: Map<String, Value>,
}

/// The script's `netsys` lines -> per-interface dicts without addresses.
pub fn netsys(text: &str) -> Vec<SysNet> {
    let mut out = Vec::new();
    for line in text.lines() {
        let p: Vec<&str> = line.split('|').collect();
        if p.len() < 9 || p[0].is_empty() {
            continue;
        }
        let mut f = Map::new();
        f.insert("device".into(), json!(p[0]));
        if !matches!(p[1], "-" | "?" | "" | "00:00:00:00:00:00") {
            f.insert("macaddress".into(), json!(p[1]));
        }
        if let Ok(mtu) = p[2].parse::<u64>() {
            f.insert("mtu".into(), json!(mtu));
        }
        if p[3] != "-" {
            f.insert("active".into(), json!(p[3] != "down"));
        }
        if !p[8].is_empty() {
            f.insert("module".into(), json!(p[8]));
        }
        if p[5] != "-" {
            let t = match p[5] {
                "1" => "ether",
                "32" => "infiniband",
                "512" => "ppp",
                "772" => "loopback",
                "65534" => "tunnel",
                _ => "unknown",
            };
            f.insert("type".into(), json!(t));
        }
        if p[7].contains("bridge") {
            f.insert("type".into(), json!("bridge"));
        } else if p[7].contains("bonding") {
            f.insert("type".into(), json!("bonding"));
        }
        if let Ok(speed) = p[6].parse::<i64>() {
            f.insert("speed".into(), json!(speed));
        }
        if let Ok(flags) = u64::from_str_radix(p[4].trim_start_matches("0x"), 16) {
            f.insert("promisc".into(), json!(flags & 0x100 > 0));
        }
        out.push(SysNet {
            device: p[0].to_string(),
            fields: f,
        });
    }
    out
}

/// One IPv4 address line of `ip addr show`.
struct Inet {
    label: String,
    secondary: bool,
    entry: Map<String, Value>,
}

/// `ip addr show` -> device -> (inet lines, inet6 entries).
fn ip_addr(text: &str) -> BTreeMap<String, (Vec<Inet>, Vec<Value>)> {
    let mut out: BTreeMap<String, (Vec<Inet>, Vec<Value>)> = BTreeMap::new();
    let mut device = String::new();
    for line in text.lines() {
        if !line.starts_with(' ') {
            // "2: eth0@if12: <BROADCAST,...> mtu 1500 ..."
            if let Some(name) = line.split(": ").nth(1) {
                device = name.split('@').next().unwrap_or(name).to_string();
                out.entry(device.clone()).or_default();
            }
            continue;
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.first().copied() {
            Some("inet") if w.len() > 1 => {
                let (address, prefix) = w[1].split_once('/').unwrap_or((w[1], "32"));
                let broadcast = if w.len() > 3 && w[2] == "brd" {
                    w[3]
                } else {
                    ""
                };
                let Ok(addr) = address.parse::<std::net::Ipv4Addr>() else {
                    continue;
                };
                let plen: u32 = prefix.parse().unwrap_or(32).min(32);
                let mask = if plen == 0 {
                    0
                } else {
                    u32::MAX << (32 - plen)
                };
                let net = std::net::Ipv4Addr::from(u32::from(addr) & mask);
                let entry = json!({
                    "address": address,
                    "broadcast": broadcast,
                    "netmask": std::net::Ipv4Addr::from(mask).to_string(),
                    "network": net.to_string(),
                    "prefix": prefix,
                });
                let label = w.last().map(|s| s.to_string()).unwrap_or_default();
                if let (Some(d), Value::Object(entry)) = (out.get_mut(&device), entry) {
                    d.0.push(Inet {
                        label,
                        secondary: w.contains(&"secondary"),
                        entry,
                    });
                }
            }
            Some("inet6") if w.len() > 3 => {
                let (address, prefix, scope) = if w[2] == "peer" && w.len() > 5 {
                    let prefix = w[3].split_once('/').map(|x| x.1).unwrap_or("");
                    (w[1], prefix, w[5])
                } else {
                    let (a, p) = w[1].split_once('/').unwrap_or((w[1], "128"));
                    (a, p, w[3])
                };
                if let Some(d) = out.get_mut(&device) {
                    d.1.push(json!({"address": address, "prefix": prefix, "scope": scope}));
                }
            }
            _ => {}
        }
    }
    out
}

/// The network facts: `interfaces`, one dict per interface, `default_ipv4`/`default_ipv6`,
/// `all_ipv4_addresses`/`all_ipv6_addresses`, as Ansible's Linux network collector builds
/// them (default_ipv4 from `ip -4 route get 8.8.8.8`, completed from the interface that
/// carries its source address).
pub fn network(route: &str, route6: &str, addr: &str, sys: &str) -> Map<String, Value> {
    let mut default4 = default_route(route, "8.8.8.8");
    let mut default6 = default_route(route6, "2404:6800:400a:800::1012");
    let addrs = ip_addr(addr);
    // In /sys/class/net's directory order, which is the order Ansible lists them in.
    let mut ifaces: Vec<(String, Map<String, Value>)> = Vec::new();
    let mut all4 = Vec::new();
    let mut all6 = Vec::new();
    for s in netsys(sys) {
        let mut iface = s.fields.clone();
        if let Some((inets, inet6)) = addrs.get(&s.device) {
            let primaries = inets.iter().filter(|i| !i.secondary);
            let secondaries = inets.iter().filter(|i| i.secondary);
            for inet in primaries.chain(secondaries) {
                if !inet.secondary && !iface.contains_key("ipv4") {
                    iface.insert("ipv4".into(), Value::Object(inet.entry.clone()));
                } else {
                    let list = iface.entry("ipv4_secondaries").or_insert_with(|| json!([]));
                    if let Value::Array(a) = list {
                        a.push(Value::Object(inet.entry.clone()));
                    }
                }
                let address = inet.entry["address"].as_str().unwrap_or("");
                if default4.get("address").and_then(Value::as_str) == Some(address) {
                    for k in ["broadcast", "netmask", "network", "prefix"] {
                        default4.insert(k.into(), inet.entry[k].clone());
                    }
                    if let Some(mac) = s.fields.get("macaddress") {
                        default4.insert("macaddress".into(), mac.clone());
                    }
                    if let Some(mtu) = s.fields.get("mtu") {
                        default4.insert("mtu".into(), mtu.clone());
                    }
                    let t = s.fields.get("type").cloned().unwrap_or(json!("unknown"));
                    default4.insert("type".into(), t);
                    default4.insert("alias".into(), json!(inet.label));
                }
                if !address.starts_with("127.") {
                    all4.push(json!(address));
                }
            }
            if !inet6.is_empty() {
                iface.insert("ipv6".into(), json!(inet6));
                for a in inet6 {
                    if default6.get("address") == Some(&a["address"]) {
                        default6.insert("prefix".into(), a["prefix"].clone());
                        default6.insert("scope".into(), a["scope"].clone());
                        for k in ["macaddress", "mtu"] {
                            if let Some(v) = s.fields.get(k) {
                                default6.insert(k.into(), v.clone());
                            }
                        }
                        let t = s.fields.get("type").cloned().unwrap_or(json!("unknown"));
                        default6.insert("type".into(), t);
                    }
                    if a["address"] != "::1" {
                        all6.push(a["address"].clone());
                    }
                }
            }
        }
        ifaces.push((s.device.replace(':', "_"), iface));
    }
    let mut f = Map::new();
    f.insert(
        "interfaces".into(),
        json!(ifaces.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()),
    );
    f.insert("default_ipv4".into(), Value::Object(default4));
    f.insert("default_ipv6".into(), Value::Object(default6));
    f.insert("all_ipv4_addresses".into(), json!(all4));
    f.insert("all_ipv6_addresses".into(), json!(all6));
    for (name, iface) in ifaces {
        f.insert(name.replace('-', "_"), Value::Object(iface));
    }
    f
}

/// `ip route get <probe>`'s first line -> interface, source address and gateway, as
/// Ansible reads them (only when the line answers for the probe address).
fn default_route(line: &str, probe: &str) -> Map<String, Value> {
    let mut out = Map::new();
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.first() != Some(&probe) {
        return out;
    }
    for pair in words.windows(2) {
        match pair[0] {
            "dev" => out.insert("interface".into(), json!(pair[1])),
            "src" => out.insert("address".into(), json!(pair[1])),
            "via" if pair[1] != probe => out.insert("gateway".into(), json!(pair[1])),
            _ => None,
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_matches_ansible_for_a_docker_host() {
        let route = "8.8.8.8 via 10.1.0.1 dev eth0 src 10.1.0.5 uid 0 \n";
        let addr = "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue\n    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n    inet 127.0.0.1/8 scope host lo\n       valid_lft forever preferred_lft forever\n\
5: eth0@if6: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500\n    link/ether 02:42:0a:01:00:05 brd ff:ff:ff:ff:ff:ff link-netnsid 0\n    inet 10.1.0.5/24 brd 10.1.0.255 scope global eth0\n       valid_lft forever preferred_lft forever\n    inet 10.1.0.9/24 scope global secondary eth0:1\n    inet6 fe80::1/64 scope link \n";
        let sys = "eth0|02:42:0a:01:00:05|1500|up|0x1003|1|10000||\nlo|00:00:00:00:00:00|65536|unknown|0x9|772|?||\n";
        let route6 = "2404:6800:400a:800::1012 from :: via fd00::1 dev eth0 proto static src fd00::5 metric 1024 pref medium\n";
        let addr = addr.replace(
            "    inet6 fe80::1/64 scope link \n",
            "    inet6 fd00::5/64 scope global \n    inet6 fe80::1/64 scope link \n",
        );
        let f = network(route, route6, &addr, sys);
        let d6 = &f["default_ipv6"];
        assert_eq!(d6["address"], "fd00::5");
        assert_eq!(d6["gateway"], "fd00::1");
        assert_eq!(d6["prefix"], "64");
        assert_eq!(d6["scope"], "global");
        assert_eq!(d6["mtu"], 1500);
        assert_eq!(f["all_ipv6_addresses"], json!(["fd00::5", "fe80::1"]));
        assert_eq!(f["interfaces"], json!(["eth0", "lo"]));
        let d = &f["default_ipv4"];
        assert_eq!(d["address"], "10.1.0.5");
        assert_eq!(d["gateway"], "10.1.0.1");
        assert_eq!(d["interface"], "eth0");
        assert_eq!(d["netmask"], "255.255.255.0");
        assert_eq!(d["network"], "10.1.0.0");
        assert_eq!(d["broadcast"], "10.1.0.255");
        assert_eq!(d["prefix"], "24");
        assert_eq!(d["macaddress"], "02:42:0a:01:00:05");
        assert_eq!(d["mtu"], 1500);
        assert_eq!(d["type"], "ether");
        assert_eq!(d["alias"], "eth0");
        assert_eq!(f["all_ipv4_addresses"], json!(["10.1.0.5", "10.1.0.9"]));
        assert_eq!(f["eth0"]["active"], true);
        assert_eq!(f["eth0"]["promisc"], false);
        assert_eq!(f["eth0"]["speed"], 10000);
        assert_eq!(f["eth0"]["ipv4_secondaries"][0]["address"], "10.1.0.9");
        assert_eq!(f["eth0"]["ipv6"][1]["scope"], "link");
        assert_eq!(f["lo"]["type"], "loopback");
        assert!(f["lo"].get("macaddress").is_none());
        assert!(f["lo"].get("speed").is_none());
        assert_eq!(f["lo"]["ipv4"]["network"], "127.0.0.0");
    }
}
