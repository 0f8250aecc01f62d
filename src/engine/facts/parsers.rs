//! Pure parsers: one function per file or command the fact script reads, each turning its
//! text into the values Ansible's collectors report (same keys, types and formats).

use std::collections::HashMap;

use serde_json::{json, Map, Value};

/// `KEY=value` lines (os-release, lsb-release), quotes removed.
pub fn key_values(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim().trim_matches('"').trim_matches('\'').to_string();
            (k.trim().to_string(), v)
        })
        .collect()
}

/// Processor counts as Ansible's Linux hardware collector computes them from /proc/cpuinfo
/// (sockets from `physical id`/`cpu cores`, threads from `siblings`), plus the
/// `processor` list. `nproc` is the CPUs this process may use (Ansible: sched_getaffinity).
pub fn cpu(cpuinfo: &str, arch: &str, nproc: Option<u64>) -> Map<String, Value> {
    let mut processor = Vec::new();
    let (mut i, mut vendor, mut model, mut procs) = (0u64, 0u64, 0u64, 0u64);
    let mut physid = String::new();
    let mut coreid = String::new();
    // Insertion-ordered maps: Ansible reads the first value of each.
    let mut sockets: Vec<(String, u64)> = Vec::new();
    let mut cores: Vec<(String, u64)> = Vec::new();
    fn set(list: &mut Vec<(String, u64)>, key: &str, v: u64) {
        match list.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = v,
            None => list.push((key.to_string(), v)),
        }
    }
    let mut flags = None;
    for line in cpuinfo.lines() {
        let (key, val) = match line.split_once(':') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (line.trim(), ""),
        };
        match key {
            "flags" => flags = Some(val.split_whitespace().map(String::from).collect::<Vec<_>>()),
            "model name" | "Processor" | "vendor_id" | "cpu" | "Vendor" | "processor" => {
                processor.push(val.to_string());
                match key {
                    "vendor_id" => vendor += 1,
                    "model name" => model += 1,
                    "processor" => procs += 1,
                    _ => {}
                }
                i += 1;
            }
            "physical id" => {
                physid = val.to_string();
                if !sockets.iter().any(|(k, _)| *k == physid) {
                    sockets.push((physid.clone(), 1));
                }
            }
            "core id" => {
                coreid = val.to_string();
                // Ansible checks `sockets` here, not `cores` (kept for identical counts).
                if !sockets.iter().any(|(k, _)| *k == coreid) {
                    set(&mut cores, &coreid, 1);
                }
            }
            "cpu cores" => set(&mut sockets, &physid, val.parse().unwrap_or(0)),
            "siblings" => set(&mut cores, &coreid, val.parse().unwrap_or(0)),
            _ => {}
        }
    }
    if vendor > 0 && vendor == model {
        i = vendor;
    }
    if ["armv", "aarch", "ppc"].iter().any(|p| arch.starts_with(p)) {
        i = procs;
    }
    let count = if sockets.is_empty() {
        i
    } else {
        sockets.len() as u64
    };
    let cores_per = match sockets.first() {
        Some((_, v)) if *v > 0 => *v,
        _ => 1,
    };
    let threads = match cores.first() {
        Some((_, v)) => (*v as f64 / cores_per as f64).round() as u64,
        None => (1.0 / cores_per as f64).round() as u64,
    };
    let mut f = Map::new();
    f.insert("processor".into(), json!(processor));
    f.insert("processor_count".into(), json!(count));
    f.insert("processor_cores".into(), json!(cores_per));
    f.insert("processor_threads_per_core".into(), json!(threads));
    f.insert("processor_vcpus".into(), json!(threads * count * cores_per));
    f.insert("processor_nproc".into(), json!(nproc.unwrap_or(procs)));
    if let Some(flags) = flags {
        f.insert("flags".into(), json!(flags));
    }
    f
}

/// Memory facts in MB, as Ansible computes them from /proc/meminfo.
pub fn memory(meminfo: &str) -> Map<String, Value> {
    let kb: HashMap<&str, u64> = meminfo
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim(), v.split_whitespace().next()?.parse().ok()?))
        })
        .collect();
    let mb = |k: &str| kb.get(k).copied().unwrap_or(0) / 1024;
    let (total, free) = (mb("MemTotal"), mb("MemFree"));
    let (swap_total, swap_free) = (mb("SwapTotal"), mb("SwapFree"));
    let (buffers, cached) = (mb("Buffers"), mb("Cached"));
    let nocache_free = free + buffers + cached;
    let mut f = Map::new();
    f.insert("memtotal_mb".into(), json!(total));
    f.insert("memfree_mb".into(), json!(free));
    f.insert("swaptotal_mb".into(), json!(swap_total));
    f.insert("swapfree_mb".into(), json!(swap_free));
    f.insert(
        "memory_mb".into(),
        json!({
            "real": {"total": total, "free": free, "used": total.saturating_sub(free)},
            "nocache": {"free": nocache_free, "used": total.saturating_sub(nocache_free)},
            "swap": {"total": swap_total, "free": swap_free,
                     "used": swap_total.saturating_sub(swap_free), "cached": mb("SwapCached")},
        }),
    );
    f
}

/// `getent passwd` line plus the ids: Ansible's user collector.
pub fn user(text: &str) -> Map<String, Value> {
    let lines: Vec<&str> = text.lines().collect();
    let num = |i: usize| -> Value {
        lines
            .get(i)
            .and_then(|l| l.trim().parse::<u64>().ok())
            .map(Value::from)
            .unwrap_or(Value::Null)
    };
    let mut f = Map::new();
    f.insert("effective_user_id".into(), num(0));
    f.insert("effective_group_id".into(), num(1));
    f.insert("real_user_id".into(), num(2));
    f.insert("real_group_id".into(), num(3));
    let pw: Vec<&str> = lines
        .get(4)
        .map(|l| l.split(':').collect())
        .unwrap_or_default();
    let field = |i: usize| pw.get(i).map(|s| s.to_string()).unwrap_or_default();
    f.insert("user_id".into(), json!(field(0)));
    if pw.len() >= 7 {
        f.insert(
            "user_uid".into(),
            json!(field(2).parse::<u64>().unwrap_or(0)),
        );
        f.insert(
            "user_gid".into(),
            json!(field(3).parse::<u64>().unwrap_or(0)),
        );
        f.insert("user_gecos".into(), json!(field(4)));
        f.insert("user_dir".into(), json!(field(5)));
        f.insert("user_shell".into(), json!(field(6)));
    }
    f
}

/// `env` output; a line without `NAME=` continues the previous value.
pub fn env(text: &str) -> Map<String, Value> {
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

/// Ansible's service_mgr: PID 1's name (unless it is `init` or a shell), else the
/// systemd/upstart/openrc/sysvinit canaries.
pub fn service_mgr(pid1: &str, init_link: &str, exists: &[&str]) -> String {
    let has = |p: &str| exists.contains(&p);
    let mut proc1 = pid1.trim().to_string();
    if proc1.is_empty() || proc1 == "COMMAND" {
        proc1 = init_link.trim().to_string();
    }
    let proc1 = proc1.rsplit('/').next().unwrap_or("").trim().to_string();
    if !proc1.is_empty() && proc1 != "init" && !proc1.ends_with("sh") {
        return match proc1.as_str() {
            "procd" => "openwrt_init".into(),
            "runit-init" => "runit".into(),
            "svscan" => "svc".into(),
            "openrc-init" => "openrc".into(),
            other => other.into(),
        };
    }
    let systemctl = has("cmd:systemctl");
    let link_base = init_link.trim().rsplit('/').next().unwrap_or("");
    if systemctl
        && [
            "/run/systemd/system/",
            "/dev/.run/systemd/",
            "/dev/.systemd/",
        ]
        .iter()
        .any(|p| has(p))
    {
        "systemd".into()
    } else if has("cmd:initctl") && has("/etc/init/") {
        "upstart".into()
    } else if has("/sbin/openrc") {
        "openrc".into()
    } else if systemctl && link_base == "systemd" {
        "systemd".into()
    } else if has("/etc/init.d/") {
        "sysvinit".into()
    } else if has("/etc/dinit.d/") {
        "dinit".into()
    } else {
        "service".into()
    }
}

/// Ansible's pkg_mgr: the first package manager binary present, in Ansible's order (dnf
/// and yum resolved as Ansible does on Fedora/RHEL: dnf5 > dnf > yum).
pub fn pkg_mgr(exists: &[&str]) -> String {
    let has = |p: &str| exists.contains(&p);
    if has("/usr/bin/rpm-ostree") {
        return "atomic_container".into();
    }
    if has("/usr/bin/dnf5") {
        return "dnf5".into();
    }
    if has("/usr/bin/dnf") || has("/usr/bin/dnf-3") || has("/usr/bin/yum") {
        return "dnf".into();
    }
    const ORDER: &[(&str, &str)] = &[
        ("/usr/bin/apt-get", "apt"),
        ("/usr/bin/zypper", "zypper"),
        ("/usr/sbin/urpmi", "urpmi"),
        ("/usr/bin/pacman", "pacman"),
        ("/bin/opkg", "opkg"),
        ("/sbin/apk", "apk"),
        ("/usr/bin/emerge", "portage"),
        ("/usr/bin/xbps-install", "xbps"),
        ("/usr/bin/swupd", "swupd"),
    ];
    ORDER
        .iter()
        .find(|(p, _)| has(p))
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Ansible's container checks, in its order: PID 1's cgroups, PID 1's environment,
/// /run/systemd/container, /.dockerenv; then a DMI product name for virtual machines.
/// Returns (type, role, guest technologies).
pub fn virtualization(
    cgroup: &str,
    environ1: &str,
    systemd_container: &str,
    exists: &[&str],
    dmi: &HashMap<String, String>,
) -> (String, String, Vec<String>) {
    let mut guest: Vec<String> = Vec::new();
    let mut found: Option<String> = None;
    fn add(guest: &mut Vec<String>, tech: &str, found: &mut Option<String>) {
        if !guest.iter().any(|g| g == tech) {
            guest.push(tech.to_string());
        }
        found.get_or_insert_with(|| tech.to_string());
    }
    for line in cgroup.lines() {
        if line.contains("/docker/") || docker_scope(line) {
            add(&mut guest, "docker", &mut found);
        }
        if line.contains("/lxc/") || line.contains("/machine.slice/machine-lxc") {
            add(&mut guest, "lxc", &mut found);
        }
        if line.contains("/system.slice/containerd.service") {
            add(&mut guest, "containerd", &mut found);
        }
    }
    for line in environ1.lines() {
        if line.contains("container=lxc") {
            add(&mut guest, "lxc", &mut found);
        }
        if line.contains("container=podman") {
            add(&mut guest, "podman", &mut found);
        }
        if line.starts_with("container=") && line.len() > "container=".len() {
            add(&mut guest, "container", &mut found);
        }
    }
    let sc = systemd_container.trim();
    if !sc.is_empty() {
        add(&mut guest, sc, &mut found);
    }
    if exists.contains(&"/.dockerenv") || exists.contains(&"/.dockerinit") {
        add(&mut guest, "docker", &mut found);
    }
    if !sc.is_empty()
        || guest
            .iter()
            .any(|g| ["docker", "lxc", "podman", "openvz", "containerd"].contains(&g.as_str()))
    {
        add(&mut guest, "container", &mut found);
    }
    if let Some(t) = found {
        return (t, "guest".into(), guest);
    }
    let product = dmi.get("product_name").map(String::as_str).unwrap_or("");
    let vendor = dmi.get("sys_vendor").map(String::as_str).unwrap_or("");
    let vm = match (product, vendor) {
        (p, _) if p.contains("KVM") || p.contains("Bochs") => Some("kvm"),
        (_, v) if v.contains("QEMU") => Some("kvm"),
        (p, _) if p.starts_with("VMware") => Some("VMware"),
        ("VirtualBox", _) => Some("virtualbox"),
        (_, v) if v.contains("Microsoft Corporation") => Some("VirtualPC"),
        (_, "Amazon EC2") => Some("kvm"),
        (_, v) if v.contains("Xen") => Some("xen"),
        _ => None,
    };
    match vm {
        Some(t) => (t.into(), "guest".into(), vec![t.into()]),
        None => ("NA".into(), "NA".into(), vec![]),
    }
}

/// `/docker-<64 hex>.scope` in a cgroup line.
fn docker_scope(line: &str) -> bool {
    line.match_indices("/docker-").any(|(i, _)| {
        let rest = &line[i + "/docker-".len()..];
        let hex = rest.chars().take_while(|c| c.is_ascii_hexdigit()).count();
        hex > 0 && rest[hex..].starts_with(".scope")
    })
}

/// /etc/resolv.conf as Ansible's dns collector reads it.
pub fn dns(resolv: &str) -> Map<String, Value> {
    let mut f = Map::new();
    for line in resolv.lines() {
        if line.starts_with('#') || line.starts_with(';') || line.trim().is_empty() {
            continue;
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let Some((&key, rest)) = tokens.split_first() else {
            continue;
        };
        match key {
            "nameserver" => {
                let list = f.entry("nameservers").or_insert_with(|| json!([]));
                if let (Value::Array(a), Some(v)) = (list, rest.first()) {
                    a.push(json!(v));
                }
            }
            "domain" => {
                if let Some(v) = rest.first() {
                    f.insert("domain".into(), json!(v));
                }
            }
            "search" | "sortlist" => {
                let list = f.entry(key).or_insert_with(|| json!([]));
                if let Value::Array(a) = list {
                    a.extend(rest.iter().map(|v| json!(v)));
                }
            }
            "options" => {
                let opts = f.entry("options").or_insert_with(|| json!({}));
                if let Value::Object(o) = opts {
                    for opt in rest {
                        match opt.split_once(':') {
                            Some((k, v)) => o.insert(k.into(), json!(v)),
                            None => o.insert(opt.to_string(), json!(true)),
                        };
                    }
                }
            }
            _ => {}
        }
    }
    f
}

/// /proc/cmdline: `k=v` -> "v", a bare word -> true; the last value of a key wins
/// (`cmdline`), every value kept in a list when repeated (`proc_cmdline`).
pub fn cmdline(text: &str) -> (Map<String, Value>, Map<String, Value>) {
    let mut last = Map::new();
    let mut all = Map::new();
    for word in shell_words(text.trim()) {
        let (k, v) = match word.split_once('=') {
            Some((k, v)) => (k.to_string(), json!(v)),
            None => (word.clone(), json!(true)),
        };
        last.insert(k.clone(), v.clone());
        match all.get_mut(&k) {
            Some(Value::Array(a)) => a.push(v),
            Some(prev) => *prev = json!([prev.clone(), v]),
            None => {
                all.insert(k, v);
            }
        }
    }
    (last, all)
}

/// Splits like shlex (double and single quotes group words).
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// The `date` lines of the script (now, 1 January, 1 July, each in the same `|` format) ->
/// Ansible's date_time dict (all values strings).
pub fn date_time(text: &str) -> Map<String, Value> {
    let lines: Vec<&str> = text.lines().collect();
    let p: Vec<&str> = lines
        .first()
        .map(|l| l.split('|').collect())
        .unwrap_or_default();
    if p.len() < 14 {
        return Map::new();
    }
    // UTC from the epoch here rather than from a second `date -u` process on the host.
    let utc = p[9]
        .parse::<i64>()
        .ok()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_default();
    // %N is nanoseconds; Ansible prints microseconds. Busybox prints "%N" or "N".
    let micro: String = {
        let n = p[10];
        if n.len() >= 6 && n.chars().all(|c| c.is_ascii_digit()) {
            n[..6].to_string()
        } else {
            "000000".into()
        }
    };
    // Lines 2 and 3: the same format on 1 January and 1 July; their zone names.
    let zone_on = |i: usize| lines.get(i).and_then(|l| l.split('|').nth(11));
    let tz_std = zone_on(1).unwrap_or(p[11]);
    let tz_dst = zone_on(2).unwrap_or(tz_std);
    let mut f = Map::new();
    let mut put = |k: &str, v: String| {
        f.insert(k.into(), json!(v));
    };
    put("year", p[0].into());
    put("month", p[1].into());
    put("weekday", p[2].into());
    put("weekday_number", p[3].into());
    put("weeknumber", p[4].into());
    put("day", p[5].into());
    put("hour", p[6].into());
    put("minute", p[7].into());
    put("second", p[8].into());
    put("epoch", p[9].into());
    put("epoch_int", p[9].into());
    put("date", format!("{}-{}-{}", p[0], p[1], p[5]));
    put("time", format!("{}:{}:{}", p[6], p[7], p[8]));
    put("iso8601_micro", format!("{utc}.{micro}Z"));
    put("iso8601", format!("{utc}Z"));
    put("iso8601_basic", format!("{}{micro}", p[13]));
    put("iso8601_basic_short", p[13].into());
    put("tz", p[11].into());
    // Python's time.tzname[1]: the zone's DST name (the standard name when it has none).
    put(
        "tz_dst",
        if tz_dst != tz_std {
            tz_dst.into()
        } else {
            tz_std.into()
        },
    );
    put("tz_offset", p[12].into());
    f
}

/// /proc/self/mounts plus `stat -f` sizes: Ansible's mounts list (real devices only).
pub fn mounts(mtab: &str, sizes: &str) -> Vec<Value> {
    let mut by_mount: HashMap<String, Vec<u64>> = HashMap::new();
    for line in sizes.lines() {
        let parts: Vec<&str> = line.splitn(7, '|').collect();
        if parts.len() == 7 {
            let nums: Vec<u64> = parts[..6].iter().filter_map(|n| n.parse().ok()).collect();
            if nums.len() == 6 {
                by_mount.insert(parts[6].to_string(), nums);
            }
        }
    }
    let mut out = Vec::new();
    for line in mtab.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 {
            continue;
        }
        let (device, mount, fstype, options) = (f[0], f[1], f[2], f[3]);
        if (!device.starts_with('/') && !device.starts_with('\\') && !device.contains(":/"))
            || fstype == "none"
        {
            continue;
        }
        let mut m = Map::new();
        m.insert("mount".into(), json!(unescape_octal(mount)));
        m.insert("device".into(), json!(unescape_octal(device)));
        m.insert("fstype".into(), json!(fstype));
        m.insert("options".into(), json!(options));
        m.insert("dump".into(), json!(f[4].parse::<u64>().unwrap_or(0)));
        m.insert("passno".into(), json!(f[5].parse::<u64>().unwrap_or(0)));
        if let Some(n) = by_mount.get(mount) {
            let (bsize, blocks, avail, _free, files, ffree) = (n[0], n[1], n[2], n[3], n[4], n[5]);
            m.insert("size_total".into(), json!(bsize * blocks));
            m.insert("size_available".into(), json!(bsize * avail));
            m.insert("block_size".into(), json!(bsize));
            m.insert("block_total".into(), json!(blocks));
            m.insert("block_available".into(), json!(avail));
            m.insert("block_used".into(), json!(blocks.saturating_sub(n[3])));
            m.insert("inode_total".into(), json!(files));
            m.insert("inode_available".into(), json!(ffree));
            m.insert("inode_used".into(), json!(files.saturating_sub(ffree)));
        }
        m.insert("uuid".into(), json!("N/A"));
        out.push(Value::Object(m));
    }
    out
}

/// `\040` (space) and friends in /proc/mounts fields.
pub fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `python3 --version` ("Python 3.11.2", "Python 3.13.0rc1") -> Ansible's python dict.
pub fn python(text: &str) -> Option<Map<String, Value>> {
    let mut lines = text.lines();
    let exe = lines.next()?.trim().to_string();
    let version = lines.next()?.trim().strip_prefix("Python ")?.to_string();
    let mut nums: Vec<u64> = Vec::new();
    let mut level = "final".to_string();
    let mut serial = 0u64;
    for (i, part) in version.splitn(3, '.').enumerate() {
        let digits: String = part.chars().take_while(|c| c.is_ascii_digit()).collect();
        nums.push(digits.parse().unwrap_or(0));
        let rest = &part[digits.len()..];
        if i == 2 && !rest.is_empty() {
            let tag: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            level = match tag.as_str() {
                "a" => "alpha",
                "b" => "beta",
                "rc" => "candidate",
                _ => "final",
            }
            .into();
            serial = rest[tag.len()..].parse().unwrap_or(0);
        }
    }
    nums.resize(3, 0);
    let mut f = Map::new();
    f.insert(
        "python".into(),
        json!({
            "executable": exe,
            "has_sslcontext": true,
            "type": "cpython",
            "version": {"major": nums[0], "minor": nums[1], "micro": nums[2],
                        "releaselevel": level, "serial": serial},
            "version_info": [nums[0], nums[1], nums[2], level, serial],
        }),
    );
    f.insert(
        "python_version".into(),
        json!(format!("{}.{}.{}", nums[0], nums[1], nums[2])),
    );
    Some(f)
}

/// `lsb_release -a` output (or /etc/lsb-release) -> Ansible's lsb dict.
pub fn lsb(release_a: &str, file: &str) -> Map<String, Value> {
    let mut f = Map::new();
    if !release_a.trim().is_empty() {
        for line in release_a.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let key = match k.trim() {
                "LSB Version" => "release_lsb",
                "Distributor ID" => "id",
                "Description" => "description",
                "Release" => "release",
                "Codename" => "codename",
                _ => continue,
            };
            f.insert(key.into(), json!(v.trim()));
        }
    } else {
        let kv = key_values(file);
        for (k, key) in [
            ("DISTRIB_ID", "id"),
            ("DISTRIB_RELEASE", "release"),
            ("DISTRIB_DESCRIPTION", "description"),
            ("DISTRIB_CODENAME", "codename"),
        ] {
            if let Some(v) = kv.get(k) {
                f.insert(key.into(), json!(v));
            }
        }
    }
    if let Some(Value::String(r)) = f.get("release") {
        let major = r.split('.').next().unwrap_or("").to_string();
        f.insert("major_release".into(), json!(major));
    }
    f
}

/// INI text as Python's configparser reads it (option names lower-cased, `=` or `:`,
/// `#`/`;` comments, indented continuation lines); None when it is not INI.
pub fn ini(text: &str) -> Option<Map<String, Value>> {
    let mut out: Map<String, Value> = Map::new();
    let mut section: Option<String> = None;
    let mut last_key: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let (Some(s), Some(k)) = (&section, &last_key) {
                if let Some(Value::String(v)) = out.get_mut(s).and_then(|m| m.get_mut(k)) {
                    v.push('\n');
                    v.push_str(trimmed);
                    continue;
                }
            }
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            out.entry(name.to_string()).or_insert_with(|| json!({}));
            section = Some(name.to_string());
            last_key = None;
            continue;
        }
        let s = section.as_ref()?;
        let split = trimmed.find(['=', ':']);
        let (k, v) = match split {
            Some(i) => (trimmed[..i].trim(), trimmed[i + 1..].trim()),
            None => return None,
        };
        let key = k.to_lowercase();
        if let Some(Value::Object(m)) = out.get_mut(s) {
            m.insert(key.clone(), json!(v));
        }
        last_key = Some(key);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_counts_sockets_cores_and_threads_like_ansible() {
        let one = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Xeon\n\
physical id\t: 0\nsiblings\t: 4\ncore id\t: 0\ncpu cores\t: 2\nflags\t: fpu vme\n\n";
        let mut text = String::new();
        for i in 0..4 {
            text.push_str(&one.replace("processor\t: 0", &format!("processor\t: {i}")));
        }
        let f = cpu(&text, "x86_64", Some(3));
        assert_eq!(f["processor_count"], 1);
        assert_eq!(f["processor_cores"], 2);
        assert_eq!(f["processor_threads_per_core"], 2);
        assert_eq!(f["processor_vcpus"], 4);
        assert_eq!(f["processor_nproc"], 3);
        assert_eq!(f["processor"].as_array().map(Vec::len), Some(12));
        // No topology lines (some VMs): counted from vendor_id/model name.
        let f = cpu(
            "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: EPYC\n\n\
processor\t: 1\nvendor_id\t: AuthenticAMD\nmodel name\t: EPYC\n",
            "x86_64",
            None,
        );
        assert_eq!(f["processor_count"], 2);
        assert_eq!(f["processor_cores"], 1);
        assert_eq!(f["processor_vcpus"], 2);
    }

    #[test]
    fn memory_in_mb() {
        let f = memory("MemTotal: 2048000 kB\nMemFree: 1024000 kB\nBuffers: 1024 kB\nCached: 10240 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n");
        assert_eq!(f["memtotal_mb"], 2000);
        assert_eq!(f["memfree_mb"], 1000);
        assert_eq!(f["memory_mb"]["nocache"]["free"], 1011);
    }

    #[test]
    fn service_and_package_managers() {
        assert_eq!(service_mgr("systemd\n", "", &[]), "systemd");
        assert_eq!(service_mgr("bash", "", &["/etc/init.d/"]), "sysvinit");
        let sd = ["cmd:systemctl", "/run/systemd/system/"];
        assert_eq!(service_mgr("sh", "", &sd), "systemd");
        assert_eq!(service_mgr("runit-init", "", &[]), "runit");
        assert_eq!(pkg_mgr(&["/usr/bin/apt-get"]), "apt");
        assert_eq!(pkg_mgr(&["/usr/bin/yum", "/usr/bin/dnf"]), "dnf");
        assert_eq!(pkg_mgr(&[]), "unknown");
    }

    #[test]
    fn containers_are_detected_in_ansibles_order() {
        let none = HashMap::new();
        let (t, r, g) = virtualization("0::/\n", "", "", &["/.dockerenv"], &none);
        assert_eq!((t.as_str(), r.as_str()), ("docker", "guest"));
        assert_eq!(g, vec!["docker", "container"]);
        let (t, _, _) = virtualization(
            "0::/system.slice/docker-0123abcd.scope\n",
            "",
            "",
            &[],
            &none,
        );
        assert_eq!(t, "docker");
        let (t, _, _) = virtualization("", "container=podman\n", "", &[], &none);
        assert_eq!(t, "podman");
        let (t, r, _) = virtualization("", "", "", &[], &none);
        assert_eq!((t.as_str(), r.as_str()), ("NA", "NA"));
    }

    #[test]
    fn dns_cmdline_date_and_user() {
        let d = dns("# c\nnameserver 1.1.1.1\nnameserver 8.8.8.8\nsearch a.org b.org\noptions ndots:0 rotate\n");
        assert_eq!(d["nameservers"], json!(["1.1.1.1", "8.8.8.8"]));
        assert_eq!(d["search"], json!(["a.org", "b.org"]));
        assert_eq!(d["options"], json!({"ndots": "0", "rotate": true}));
        let (c, all) =
            cmdline("BOOT_IMAGE=/vmlinuz root=UUID=x ro quiet console=tty0 console=ttyS0\n");
        assert_eq!(c["root"], "UUID=x");
        assert_eq!(c["quiet"], true);
        assert_eq!(c["console"], "ttyS0");
        assert_eq!(all["console"], json!(["tty0", "ttyS0"]));
        // Berlin: local time in the fields, UTC in iso8601, CEST from the July line.
        let dt = date_time(
            "2026|12|Sunday|0|48|06|07|34|59|1796538899|579426123|CET|+0100|20261206T073459\n\
             2026|01|Thursday|4|00|01|00|00|00|1767222000|000000000|CET|+0100|20260101T000000\n\
             2026|07|Wednesday|3|26|01|00|00|00|1782856800|000000000|CEST|+0200|20260701T000000\n",
        );
        assert_eq!(dt["iso8601"], "2026-12-06T06:34:59Z");
        assert_eq!(dt["iso8601_micro"], "2026-12-06T06:34:59.579426Z");
        assert_eq!(dt["iso8601_basic"], "20261206T073459579426");
        assert_eq!(dt["date"], "2026-12-06");
        assert_eq!(dt["hour"], "07");
        assert_eq!(dt["weekday_number"], "0");
        assert_eq!(dt["tz"], "CET");
        assert_eq!(dt["tz_dst"], "CEST");
        let u = user("0\n0\n0\n0\nroot:x:0:0:root:/root:/bin/bash\n");
        assert_eq!(u["user_id"], "root");
        assert_eq!(u["user_uid"], 0);
        assert_eq!(u["user_dir"], "/root");
        assert_eq!(u["user_shell"], "/bin/bash");
        assert_eq!(u["effective_user_id"], 0);
    }

    #[test]
    fn python_lsb_ini_mounts() {
        let p = python("/usr/bin/python3.11\nPython 3.11.2\n").unwrap();
        assert_eq!(p["python"]["version"]["minor"], 11);
        assert_eq!(p["python"]["version_info"], json!([3, 11, 2, "final", 0]));
        assert_eq!(p["python_version"], "3.11.2");
        let p = python("/x/python3\nPython 3.13.0rc1\n").unwrap();
        assert_eq!(p["python"]["version"]["releaselevel"], "candidate");
        assert_eq!(p["python"]["version"]["serial"], 1);
        let l = lsb(
            "Distributor ID:\tDebian\nRelease:\t12\nCodename:\tbookworm\n",
            "",
        );
        assert_eq!(l["id"], "Debian");
        assert_eq!(l["major_release"], "12");
        let i = ini("[general]\nAsdf = 1\nbar: two\n  more\n").unwrap();
        assert_eq!(i["general"]["asdf"], "1");
        assert_eq!(i["general"]["bar"], "two\nmore");
        assert!(ini("not ini at all").is_none());
        let m = mounts(
            "overlay / overlay rw 0 0\n/dev/vda /etc/my\\040hosts ext4 rw,relatime 0 0\n",
            "4096|100|50|60|1000|900|/etc/my\\040hosts\n",
        );
        assert_eq!(m.len(), 1);
        assert_eq!(m[0]["mount"], "/etc/my hosts");
        assert_eq!(m[0]["size_total"], 409600);
        assert_eq!(m[0]["block_used"], 40);
    }
}

/// The probes `route get` asks about, as the script asks them (`ip -4 route get`, `ip -6
/// route get`).
const ROUTE_PROBE_4: &str = "8.8.8.8";
const ROUTE_PROBE_6: &str = "2404:6800:400a:800::1012";

/// One `ip -force -batch -` run of `route get <v4 probe>`, `route get <v6 probe>` and
/// `addr show` -> the script's `route`, `route6` (the first line of each answer) and
/// `addr` sections. A family without a route answers nothing on stdout; the addresses
/// start at the first `N: dev:` line.
pub fn ip_batch(text: &str) -> (String, String, String) {
    let (mut route, mut route6, mut addr) = (String::new(), String::new(), String::new());
    let mut in_addr = false;
    for line in text.lines() {
        if !in_addr {
            let link = line
                .split_once(": ")
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if !link {
                let mut head = line.split_whitespace().take(2);
                if head.clone().any(|w| w == ROUTE_PROBE_4) && route.is_empty() {
                    route = format!("{line}\n");
                } else if head.any(|w| w == ROUTE_PROBE_6) && route6.is_empty() {
                    route6 = format!("{line}\n");
                }
                continue;
            }
            in_addr = true;
        }
        addr.push_str(line);
        addr.push('\n');
    }
    (route, route6, addr)
}

#[cfg(test)]
mod ip_batch_tests {
    use super::ip_batch;

    #[test]
    fn batch_output_splits_into_the_scripts_sections() {
        let out = "8.8.8.8 via 192.0.2.1 dev eth0 src 192.0.2.2 uid 0 \n    cache \n\
                   1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN\n    \
                   inet 127.0.0.1/8 scope host lo\n";
        let (r, r6, a) = ip_batch(out);
        assert_eq!(r, "8.8.8.8 via 192.0.2.1 dev eth0 src 192.0.2.2 uid 0 \n");
        assert_eq!(r6, "");
        assert!(
            a.starts_with("1: lo:") && a.contains("inet 127.0.0.1/8"),
            "{a}"
        );
        let out6 = "2404:6800:400a:800::1012 from :: via fd00::1 dev eth0 src fd00::2\n";
        assert_eq!(ip_batch(out6).1, format!("{out6}"));
    }
}
