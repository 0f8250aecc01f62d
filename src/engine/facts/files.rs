//! Fact gathering that reads files instead of starting a process per fact: most facts are
//! files under /proc, /sys and /etc. ONE exec reads them all with one `head` and runs
//! what has no file (the environment of a command, the kernel's route choice, the zone's
//! names, systemd's and the interpreter's versions, ...): [`script::exec_script`]. The
//! caller's other reads (unit states) ride in the same exec. A few SFTP requests, sent
//! while the exec runs, read what the shell would need a process for: the target of
//! `/sbin/init`, the directory order of the interfaces, the size of each mounted file
//! system.
//!
//! The result is the very text the shell script ([`script::script`]) prints: the same
//! `@@name` sections, so [`super::collect`] and its parsers turn both into facts the same
//! way, and nothing downstream knows which path ran. The script stays the path whenever
//! this one cannot be taken: a become that escalates (files must be read as the other
//! user), a transport without cheap reads, a host without /proc (not Linux) or without a
//! `head` that frames files.

use std::collections::HashMap;

use futures::future::join_all;

use super::script::{self, FollowUp, KnownPaths};
use super::versions::{Program, Versions};
use super::{section, split_sections, GatherOptions};
use crate::transport::{ExecOptions, ExecOutput, FileKind, FileStat, Transport};

/// Where the DMI files are.
const DMI_DIR: &str = "/sys/devices/virtual/dmi/id";

/// The DMI files, in the script's order.
const DMI: &[&str] = &[
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
    "chassis_type",
    "product_name",
    "product_serial",
    "product_uuid",
    "product_version",
    "sys_vendor",
];

/// Every file read ahead, whatever it is needed for.
const FILES: &[&str] = &[
    "/proc/sys/kernel/ostype",
    "/proc/sys/kernel/osrelease",
    "/proc/sys/kernel/version",
    "/proc/sys/kernel/hostname",
    "/proc/sys/kernel/arch",
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/self/status",
    "/etc/passwd",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/proc/1/comm",
    "/etc/os-release",
    "/usr/lib/os-release",
    "/etc/debian_version",
    "/etc/lsb-release",
    "/proc/1/cgroup",
    "/proc/1/environ",
    "/run/systemd/container",
    "/proc/loadavg",
    "/sys/fs/selinux/enforce",
    "/sys/fs/selinux/policyvers",
    "/etc/selinux/config",
    "/proc/sys/crypto/fips_enabled",
    "/etc/machine-id",
    "/var/lib/dbus/machine-id",
    "/etc/resolv.conf",
    "/proc/cmdline",
    "/proc/uptime",
    "/proc/self/mounts",
    "/etc/ssh/ssh_host_dsa_key.pub",
    "/etc/ssh/ssh_host_rsa_key.pub",
    "/etc/ssh/ssh_host_ecdsa_key.pub",
    "/etc/ssh/ssh_host_ed25519_key.pub",
];

/// One file as the host gave it.
#[derive(Debug, Clone)]
enum Read {
    Missing,
    /// There but not readable by the login user (or the read failed: sysfs answers some
    /// reads with an error, `speed` of a link that is down).
    Unreadable,
    Text(String),
}

impl Read {
    fn text(&self) -> Option<&str> {
        match self {
            Read::Text(t) => Some(t),
            _ => None,
        }
    }
}

/// Splits the exec's `files` block (`head -v` output: `==> path <==` before each file's
/// content, a blank line between files) into files; `errors` is what `head` printed on
/// stderr (LC_ALL=C): a file it could not open is missing or unreadable, one whose read
/// failed after its header (sysfs `speed` of a link that is down) unreadable. A file of
/// `asked` that `head` never named is missing.
fn split_head(block: &str, errors: &str, asked: &[String]) -> HashMap<String, Read> {
    let mut out: HashMap<String, Read> = HashMap::new();
    // Headers in output order: (start of the header, start of the content, path).
    let mut headers: Vec<(usize, usize, &str)> = Vec::new();
    let mut from = 0;
    for path in asked {
        let header = format!("==> {path} <==\n");
        let found = if from == 0 && block.starts_with(&header) {
            Some(0)
        } else {
            block[from..]
                .find(&format!("\n{header}"))
                .map(|at| from + at + 1)
        };
        if let Some(at) = found {
            headers.push((at, at + header.len(), path));
            from = at + header.len();
        }
    }
    for (i, (_, content_start, path)) in headers.iter().enumerate() {
        // The content runs to the newline head writes before the next header.
        let end = match headers.get(i + 1) {
            Some((next, _, _)) => next - 1,
            None => block.len(),
        };
        let text = &block[*content_start..end.max(*content_start)];
        out.insert(path.to_string(), Read::Text(text.to_string()));
    }
    for line in errors.lines() {
        for path in asked {
            if line.contains(&format!("'{path}'")) {
                let read = if line.contains("No such file") {
                    Read::Missing
                } else {
                    Read::Unreadable
                };
                out.insert(path.clone(), read);
            }
        }
    }
    out
}

/// A token no file holds by chance, to frame the `head` output.
fn boundary() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The sysfs files read for each interface (the script's `netsys` columns).
const NET_FIELDS: &[&str] = &["address", "mtu", "operstate", "flags", "type", "speed"];

/// Gathers facts on `t`: the script's output text (plus whatever `extra` printed after
/// it), from the cheap reads and one exec when the transport has them for this become,
/// else from the script in one exec. `extra` is shell text run in the same exec beside
/// the facts, its output after theirs (the unit states read ahead: [`script::beside`]).
pub async fn gather(
    t: &dyn Transport,
    opts: &GatherOptions,
    exec_opts: &ExecOptions,
    extra: Option<script::Beside<'_>>,
) -> anyhow::Result<ExecOutput> {
    if !t.escalates(exec_opts.become_.as_ref()) {
        if let Some(out) = from_files(t, opts, exec_opts, extra).await? {
            return Ok(out);
        }
    }
    t.exec(&script::beside(&opts.script(), extra), exec_opts)
        .await
}

/// The file-reading path; `Ok(None)` when it cannot be taken on this host (the caller
/// runs the script), `Err` only from the exec.
pub(super) async fn from_files(
    t: &dyn Transport,
    opts: &GatherOptions,
    exec_opts: &ExecOptions,
    extra: Option<script::Beside<'_>>,
) -> anyhow::Result<Option<ExecOutput>> {
    let asked: Vec<String> = FILES
        .iter()
        .map(|f| f.to_string())
        .chain(DMI.iter().map(|k| format!("{DMI_DIR}/{k}")))
        .collect();
    let boundary = boundary();
    let versions = Versions::global();
    let known = KnownPaths {
        systemctl: versions.latest(Program::Systemctl),
        python: versions.latest(Program::Python),
    };
    let exec_text = script::beside(
        &script::exec_script(&opts.fact_path, opts.timeout, &asked, &boundary, &known),
        extra,
    );
    // The SFTP reads go out while the exec runs.
    let (exec, init, net_dir, known_systemctl, known_python) = futures::join!(
        t.exec(&exec_text, exec_opts),
        t.stat("/sbin/init", None),
        t.read_dir("/sys/class/net"),
        stat_of(t, known.systemctl.as_deref()),
        stat_of(t, known.python.as_deref()),
    );
    let exec = exec?;
    let (Ok(init), Ok(net_dir)) = (init, net_dir) else {
        return Ok(None);
    };

    // The exec's own sections, and what comes after its end marker (`extra`'s output).
    let (own, after) = match exec.stdout.find("\n@@end\n") {
        Some(at) => exec.stdout.split_at(at + "\n@@end\n".len()),
        None => (exec.stdout.as_str(), ""),
    };
    // The files' block comes out before the sections are split: a file may hold a line
    // that looks like a section marker.
    let open = format!("@@files {boundary}\n");
    let close = format!("\n@@files-end {boundary}\n");
    let (Some(block_start), Some(block_end)) = (own.find(&open), own.find(&close)) else {
        // Cut short, or no `head` that frames files: the script decides.
        return Ok(None);
    };
    let block = &own[block_start + open.len()..block_end.max(block_start + open.len())];
    let rest = format!("{}{}", &own[..block_start], &own[block_end + close.len()..]);
    let sections = split_sections(&rest);
    let get = |name: &str| section(&sections, name);
    let net_paths: Vec<String> = get("netinfo")
        .lines()
        .filter_map(|l| l.split('|').next())
        .flat_map(|n| {
            NET_FIELDS
                .iter()
                .map(move |f| format!("/sys/class/net/{n}/{f}"))
        })
        .collect();
    let all_asked: Vec<String> = asked.iter().chain(&net_paths).cloned().collect();
    let files = split_head(block, get("files_errors"), &all_asked);
    let Some(Read::Text(ostype)) = files.get("/proc/sys/kernel/ostype") else {
        // No /proc (not Linux): the script knows the other ways.
        return Ok(None);
    };
    let file = |p: &str| files.get(p).and_then(Read::text).unwrap_or("");
    // `c a || c b`: the first readable one.
    let first_of = |a: &str, b: &str| files.get(a).and_then(Read::text).unwrap_or(file(b));

    let hostname = first_line(file("/proc/sys/kernel/hostname"));
    let status = file("/proc/self/status");
    let ids = status_ids(status);
    let fqdn = fqdn_from_hosts(
        &hostname,
        files.get("/etc/nsswitch.conf").and_then(Read::text),
        file("/etc/hosts"),
    );
    let passwd = ids.and_then(|(_, eu, _, _)| {
        passwd_line(
            eu,
            files.get("/etc/nsswitch.conf").and_then(Read::text),
            file("/etc/passwd"),
        )
    });
    let systemctl = ProgramAnswer::systemctl(get("systemctl_version"), known_systemctl, versions);
    let python = ProgramAnswer::python(get("python"), known_python, versions);
    let follow_up = FollowUp {
        systemctl: systemctl.to_run(),
        python: python.to_run(),
        fqdn: fqdn.is_none(),
        passwd_uid: match (&passwd, ids) {
            (None, Some((_, eu, _, _))) => Some(eu),
            _ => None,
        },
    };
    let mounts = file("/proc/self/mounts").to_string();
    let (follow_up, mount_sizes, fresh_systemctl, fresh_python) = futures::join!(
        async {
            if follow_up.is_needed() {
                t.exec(&script::follow_up_script(&follow_up), exec_opts)
                    .await
                    .map(|o| split_sections(&o.stdout))
            } else {
                Ok(Vec::new())
            }
        },
        mount_sizes(t, &mounts),
        stat_of(t, systemctl.fresh_path()),
        stat_of(t, python.fresh_path()),
    );
    let follow_up = follow_up?;
    let get2 = |name: &str| section(&follow_up, name);
    let systemctl_version = systemctl.settle(get2("systemctl_version"), fresh_systemctl, versions);
    let python_version = python.settle(get2("python_version"), fresh_python, versions);
    let netsys = netsys(get("netinfo"), net_dir.unwrap_or_default(), &files);
    let present: Vec<&str> = get("exists").lines().collect();
    let dmi: Vec<Read> = DMI
        .iter()
        .map(|k| {
            files
                .get(&format!("{DMI_DIR}/{k}"))
                .cloned()
                .unwrap_or(Read::Missing)
        })
        .collect();

    let (route, route6, addr) = super::parsers::ip_batch(get("ip"));

    let mut out = Vec::<(&str, String)>::new();
    out.push(("env", get("env").to_string()));
    let machine = match files.get("/proc/sys/kernel/arch").and_then(Read::text) {
        Some(arch) => first_line(arch),
        None => first_line(get("machine")),
    };
    out.push((
        "uname",
        [
            first_line(ostype),
            first_line(file("/proc/sys/kernel/osrelease")),
            first_line(file("/proc/sys/kernel/version")),
            machine,
            hostname.clone(),
        ]
        .join("\n"),
    ));
    out.push(("fqdn", fqdn.unwrap_or_else(|| get2("fqdn").to_string())));
    out.push(("cpuinfo", file("/proc/cpuinfo").to_string()));
    out.push((
        "nproc",
        nproc(status).map(|n| n.to_string()).unwrap_or_default(),
    ));
    out.push(("meminfo", file("/proc/meminfo").to_string()));
    let mut user = String::new();
    if let Some((ru, eu, rg, eg)) = ids {
        user = format!("{eu}\n{eg}\n{ru}\n{rg}\n");
        user.push_str(&passwd.unwrap_or_else(|| first_line(get2("passwd"))));
    }
    out.push(("user", user));
    out.push(("pid1", file("/proc/1/comm").to_string()));
    out.push((
        "init_link",
        init.filter(|s| s.kind == FileKind::Symlink)
            .and_then(|s| s.link_target)
            .unwrap_or_default(),
    ));
    out.push(("exists", present.join("\n")));
    out.push(("route", route));
    out.push(("route6", route6));
    out.push(("addr", addr));
    out.push(("netsys", netsys));
    out.push((
        "os_release",
        first_of("/etc/os-release", "/usr/lib/os-release").to_string(),
    ));
    out.push(("debian_version", file("/etc/debian_version").to_string()));
    out.push(("lsb_release", get("lsb_release").to_string()));
    out.push(("lsb_file", file("/etc/lsb-release").to_string()));
    out.push(("cgroup", file("/proc/1/cgroup").to_string()));
    out.push(("environ1", file("/proc/1/environ").replace('\0', "\n")));
    out.push((
        "systemd_container",
        file("/run/systemd/container").to_string(),
    ));
    let dmi_lines: Vec<String> = DMI
        .iter()
        .zip(&dmi)
        .filter_map(|(k, r)| match r {
            Read::Text(v) if !v.is_empty() => Some(format!("{k}={}", first_line(v))),
            _ => None,
        })
        .collect();
    out.push(("dmi", dmi_lines.join("\n")));
    out.push(("systemctl_version", systemctl_version));
    out.push(("loadavg", file("/proc/loadavg").to_string()));
    out.push(("chroot", get("chroot").to_string()));
    out.push((
        "selinux",
        selinux(
            files.get("/sys/fs/selinux/enforce"),
            file("/sys/fs/selinux/policyvers"),
            file("/etc/selinux/config"),
        ),
    ));
    let apparmor = present.contains(&"/sys/kernel/security/apparmor");
    out.push((
        "apparmor",
        if apparmor { "enabled" } else { "" }.to_string(),
    ));
    out.push(("fips", file("/proc/sys/crypto/fips_enabled").to_string()));
    out.push((
        "machine_id",
        first_of("/etc/machine-id", "/var/lib/dbus/machine-id").to_string(),
    ));
    out.push(("resolv", file("/etc/resolv.conf").to_string()));
    out.push(("cmdline", file("/proc/cmdline").to_string()));
    out.push(("uptime", file("/proc/uptime").to_string()));
    out.push(("date", get("date").to_string()));
    out.push(("mounts", mounts.clone()));
    out.push(("mount_sizes", mount_sizes?));
    out.push((
        "python",
        match python.path() {
            Some(path) => format!("{path}\n{python_version}"),
            None => String::new(),
        },
    ));
    let keys: Vec<String> = ["dsa", "rsa", "ecdsa", "ed25519"]
        .iter()
        .filter_map(|k| {
            let v = files
                .get(format!("/etc/ssh/ssh_host_{k}_key.pub").as_str())?
                .text()?;
            Some(format!("{k} {}", first_line(v)))
        })
        .collect();
    out.push(("ssh_keys", keys.join("\n")));
    out.push(("local", get("local").to_string()));

    let mut stdout = String::new();
    for (name, body) in out {
        stdout.push_str("@@");
        stdout.push_str(name);
        stdout.push('\n');
        stdout.push_str(&body);
        if !body.is_empty() && !body.ends_with('\n') {
            stdout.push('\n');
        }
    }
    // The end marker only when the exec printed its own: an exec cut short stays
    // incomplete, and `collect` says so.
    if own.contains("@@end") {
        stdout.push_str("@@end\n");
    }
    stdout.push_str(after);
    Ok(Some(ExecOutput {
        rc: exec.rc,
        stdout,
        stderr: exec.stderr,
    }))
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").to_string()
}

/// The script's `netsys` lines: one per interface the exec found (`netinfo`: name,
/// bridge/bonding, driver module), in directory order (`order`, the SFTP listing; the
/// shell's glob sorts), the sysfs fields from the exec's files: `-` for a missing one,
/// `?` for one that could not be read.
fn netsys(netinfo: &str, order: Vec<String>, files: &HashMap<String, Read>) -> String {
    let found: Vec<(&str, &str, &str)> = netinfo
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, '|');
            Some((f.next()?, f.next()?, f.next()?))
        })
        .collect();
    let mut names: Vec<&str> = order
        .iter()
        .map(String::as_str)
        .filter(|n| found.iter().any(|(m, _, _)| m == n))
        .collect();
    for (n, _, _) in &found {
        if !names.contains(n) {
            names.push(n);
        }
    }
    let mut out = String::new();
    for n in names {
        let Some((_, kind, module)) = found.iter().find(|(m, _, _)| *m == n) else {
            continue;
        };
        let fields: Vec<String> = NET_FIELDS
            .iter()
            .map(|f| match files.get(&format!("/sys/class/net/{n}/{f}")) {
                None | Some(Read::Missing) => "-".to_string(),
                Some(Read::Unreadable) => "?".to_string(),
                Some(Read::Text(v)) => first_line(v),
            })
            .collect();
        out.push_str(&format!("{n}|{}|{kind}|{module}\n", fields.join("|")));
    }
    out
}

/// The metadata of `path` (none when not asked, or on any error: the answer is then not
/// taken from the cache, nor stored).
async fn stat_of(t: &dyn Transport, path: Option<&str>) -> Option<FileStat> {
    t.stat(path?, None).await.ok().flatten()
}

/// What the exec said about one program's `--version` ([`super::versions`]).
#[derive(Debug, Clone, PartialEq, Eq)]
enum ProgramAnswer {
    /// Not on the host.
    Absent,
    /// The exec ran it: its path and answer, to be stored.
    Fresh {
        program: Program,
        path: String,
        text: String,
    },
    /// Skipped at the known path, and the controller's answer fits the file there.
    Known { path: String, text: String },
    /// Skipped at the known path, but no answer fits the file: the follow-up runs it, and
    /// its answer is stored under `stat`.
    Rerun {
        program: Program,
        path: String,
        stat: Option<FileStat>,
    },
}

impl ProgramAnswer {
    /// From the exec's `systemctl_version` section: `@cached <path>`, or `@path <path>`
    /// and the answer, or nothing.
    fn systemctl(section: &str, known: Option<FileStat>, versions: &Versions) -> Self {
        let (first, rest) = section.split_once('\n').unwrap_or((section, ""));
        if let Some(path) = first.strip_prefix("@cached ") {
            Self::known_or_rerun(Program::Systemctl, path, known, versions)
        } else if let Some(path) = first.strip_prefix("@path ") {
            Self::Fresh {
                program: Program::Systemctl,
                path: path.to_string(),
                text: rest.to_string(),
            }
        } else {
            Self::Absent
        }
    }

    /// From the exec's `python` section: the path, then `@cached` or the answer.
    fn python(section: &str, known: Option<FileStat>, versions: &Versions) -> Self {
        let (path, rest) = section.split_once('\n').unwrap_or((section, ""));
        if path.is_empty() {
            Self::Absent
        } else if rest.trim_end() == "@cached" {
            Self::known_or_rerun(Program::Python, path, known, versions)
        } else {
            Self::Fresh {
                program: Program::Python,
                path: path.to_string(),
                text: rest.to_string(),
            }
        }
    }

    fn known_or_rerun(
        program: Program,
        path: &str,
        stat: Option<FileStat>,
        versions: &Versions,
    ) -> Self {
        match stat.as_ref().and_then(|st| versions.lookup(path, st)) {
            Some(text) => Self::Known {
                path: path.to_string(),
                text,
            },
            None => Self::Rerun {
                program,
                path: path.to_string(),
                stat,
            },
        }
    }

    fn path(&self) -> Option<&str> {
        match self {
            Self::Absent => None,
            Self::Fresh { path, .. } | Self::Known { path, .. } | Self::Rerun { path, .. } => {
                Some(path)
            }
        }
    }

    /// The path the follow-up exec must run the program at.
    fn to_run(&self) -> Option<String> {
        match self {
            Self::Rerun { path, .. } => Some(path.clone()),
            _ => None,
        }
    }

    /// The path whose metadata is read to store a fresh answer.
    fn fresh_path(&self) -> Option<&str> {
        match self {
            Self::Fresh { path, .. } => Some(path),
            _ => None,
        }
    }

    /// The answer, stored for the next run when it came from the host: `rerun` is the
    /// follow-up's section, `fresh_stat` the metadata read for a fresh answer.
    fn settle(&self, rerun: &str, fresh_stat: Option<FileStat>, versions: &Versions) -> String {
        match self {
            Self::Absent => String::new(),
            Self::Known { text, .. } => text.clone(),
            Self::Fresh {
                program,
                path,
                text,
            } => {
                if let Some(st) = fresh_stat.filter(|_| !text.trim().is_empty()) {
                    versions.store(*program, path, &st, text);
                }
                text.clone()
            }
            Self::Rerun {
                program,
                path,
                stat,
            } => {
                if let Some(st) = stat.as_ref().filter(|_| !rerun.trim().is_empty()) {
                    versions.store(*program, path, st, rerun);
                }
                rerun.to_string()
            }
        }
    }
}

/// The script's `mount_sizes` lines (`stat -f` of every mount of a device or a network
/// share): `frsize|blocks|avail|free|files|ffree|<mount as /proc/self/mounts escapes it>`.
async fn mount_sizes(t: &dyn Transport, mounts: &str) -> anyhow::Result<String> {
    let points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let dev = f.next()?;
            let mnt = f.next()?;
            (dev.starts_with('/') || dev.contains(":/")).then_some(mnt)
        })
        .collect();
    let paths: Vec<String> = points
        .iter()
        .map(|m| super::parsers::unescape_octal(m))
        .collect();
    let sizes = join_all(paths.iter().map(|p| t.fs_stat(p))).await;
    let mut out = String::new();
    for (m, size) in points.iter().zip(sizes) {
        if let Some(s) = size? {
            out.push_str(&format!(
                "{}|{}|{}|{}|{}|{}|{m}\n",
                s.block_size, s.blocks, s.blocks_available, s.blocks_free, s.inodes, s.inodes_free
            ));
        }
    }
    Ok(out)
}

/// (real uid, effective uid, real gid, effective gid) from a /proc/<pid>/status: the
/// ids of the reading process, which runs as the login user as the exec would.
fn status_ids(status: &str) -> Option<(u32, u32, u32, u32)> {
    let ids = |key: &str| -> Option<(u32, u32)> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        let mut f = line[key.len()..].split_whitespace();
        Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
    };
    let (ru, eu) = ids("Uid:")?;
    let (rg, eg) = ids("Gid:")?;
    Some((ru, eu, rg, eg))
}

/// The CPUs the reading process may run on (`nproc`: its affinity), from
/// `Cpus_allowed_list` (`0-3,6`).
fn nproc(status: &str) -> Option<u64> {
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?
        .trim();
    let mut n = 0u64;
    for part in list.split(',').filter(|p| !p.is_empty()) {
        n += match part.split_once('-') {
            Some((a, b)) => b
                .parse::<u64>()
                .ok()?
                .checked_sub(a.parse::<u64>().ok()?)?
                .checked_add(1)?,
            None => {
                part.parse::<u64>().ok()?;
                1
            }
        };
    }
    (n > 0).then_some(n)
}

/// The sources of one NSS database in nsswitch.conf (`hosts: files dns` -> files, dns),
/// `[...]` actions left out.
fn nss_sources<'a>(nsswitch: &'a str, db: &str) -> Option<Vec<&'a str>> {
    nsswitch.lines().find_map(|l| {
        let l = l.split('#').next().unwrap_or("").trim();
        let rest = l.strip_prefix(db)?.trim_start().strip_prefix(':')?;
        Some(
            rest.split_whitespace()
                .filter(|w| !w.starts_with('['))
                .collect(),
        )
    })
}

/// What `hostname -f` prints when /etc/hosts answers for the host name: NSS asks `files`
/// first, and a line names the host (canonical name or alias): its canonical name, the
/// first name on the first such line. `None` when another source would answer (the exec
/// then runs `hostname -f`).
fn fqdn_from_hosts(hostname: &str, nsswitch: Option<&str>, hosts: &str) -> Option<String> {
    if hostname.is_empty() || nss_sources(nsswitch?, "hosts")?.first() != Some(&"files") {
        return None;
    }
    hosts.lines().find_map(|l| {
        let mut f = l.split('#').next().unwrap_or("").split_whitespace();
        let _address = f.next()?;
        let names: Vec<&str> = f.collect();
        names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(hostname))
            .then(|| names[0].to_string())
    })
}

/// The /etc/passwd line of `uid` when NSS reads passwd from files first (`getent passwd
/// <uid>` prints it as stored); `None` when another source may hold the user.
fn passwd_line(uid: u32, nsswitch: Option<&str>, passwd: &str) -> Option<String> {
    // Without nsswitch.conf glibc reads files (compat) for passwd.
    let first = match nsswitch {
        Some(n) => nss_sources(n, "passwd").and_then(|s| s.first().copied()),
        None => Some("files"),
    };
    if !matches!(first, Some("files" | "compat")) {
        return None;
    }
    let uid = uid.to_string();
    passwd
        .lines()
        .find(|l| {
            !l.starts_with('+') && !l.starts_with('-') && l.split(':').nth(2) == Some(uid.as_str())
        })
        .map(String::from)
}

/// The script's `selinux` section: only when /sys/fs/selinux/enforce exists.
fn selinux(enforce: Option<&Read>, policyvers: &str, config: &str) -> String {
    let enforce = match enforce {
        None | Some(Read::Missing) => return String::new(),
        Some(r) => r.text().unwrap_or(""),
    };
    let mut s = format!(
        "enforce={}\npolicyvers={}\n",
        enforce.trim_end_matches('\n'),
        policyvers.trim_end_matches('\n')
    );
    for l in config.lines() {
        if l.starts_with("SELINUX=") || l.starts_with("SELINUXTYPE=") {
            s.push_str(l);
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regular(size: u64) -> FileStat {
        super::super::versions::regular(size, 1)
    }

    /// The exec's sections read as fresh, known, rerun or absent answers, and only answers
    /// that came from the host are stored.
    #[test]
    fn program_answers_are_taken_from_the_cache_only_when_the_file_fits() {
        let versions = Versions::at(None);
        let fresh =
            ProgramAnswer::systemctl("@path /bin/systemctl\nsystemd 252\n+PAM\n", None, &versions);
        assert_eq!(fresh.fresh_path(), Some("/bin/systemctl"));
        assert_eq!(fresh.to_run(), None);
        assert_eq!(
            fresh.settle("", Some(regular(10)), &versions),
            "systemd 252\n+PAM\n"
        );
        assert_eq!(
            versions.lookup("/bin/systemctl", &regular(10)).as_deref(),
            Some("systemd 252\n+PAM\n")
        );

        let known =
            ProgramAnswer::systemctl("@cached /bin/systemctl", Some(regular(10)), &versions);
        assert_eq!(known.to_run(), None);
        assert_eq!(known.settle("", None, &versions), "systemd 252\n+PAM\n");

        // Replaced on the host: asked again, and the new answer kept under its metadata.
        let rerun =
            ProgramAnswer::systemctl("@cached /bin/systemctl", Some(regular(11)), &versions);
        assert_eq!(rerun.to_run().as_deref(), Some("/bin/systemctl"));
        assert_eq!(
            rerun.settle("systemd 253\n", None, &versions),
            "systemd 253\n"
        );
        assert_eq!(
            versions.lookup("/bin/systemctl", &regular(11)).as_deref(),
            Some("systemd 253\n")
        );
        // A stat that failed: asked again, nothing stored.
        let unknown = ProgramAnswer::systemctl("@cached /bin/systemctl", None, &versions);
        assert!(unknown.to_run().is_some());
        assert_eq!(
            ProgramAnswer::systemctl("", None, &versions),
            ProgramAnswer::Absent
        );

        let python = ProgramAnswer::python("/usr/bin/python3.11\nPython 3.11.2\n", None, &versions);
        assert_eq!(python.path(), Some("/usr/bin/python3.11"));
        assert_eq!(python.settle("", None, &versions), "Python 3.11.2\n");
        assert_eq!(
            versions.lookup("/usr/bin/python3.11", &regular(3)),
            None,
            "no metadata: not stored"
        );
        let cached = ProgramAnswer::python(
            "/usr/bin/python3.11\n@cached\n",
            Some(regular(3)),
            &versions,
        );
        assert_eq!(cached.to_run().as_deref(), Some("/usr/bin/python3.11"));
        assert_eq!(
            ProgramAnswer::python("", None, &versions),
            ProgramAnswer::Absent
        );
    }

    #[test]
    fn hosts_answer_only_when_files_come_first() {
        let hosts = "127.0.0.1 localhost\n# c\n10.0.0.5 web1.example.org web1 # x\n";
        let ns = "passwd: files\nhosts:          files dns\n";
        assert_eq!(
            fqdn_from_hosts("web1", Some(ns), hosts).as_deref(),
            Some("web1.example.org")
        );
        assert_eq!(fqdn_from_hosts("db", Some(ns), hosts), None);
        assert_eq!(
            fqdn_from_hosts("web1", Some("hosts: dns files\n"), hosts),
            None
        );
        assert_eq!(fqdn_from_hosts("web1", None, hosts), None);
    }

    #[test]
    fn ids_cpus_and_passwd_from_files() {
        let status = "Name:\tsftp-server\nUid:\t1000\t1001\t1001\t1001\nGid:\t50\t51\t51\t51\nCpus_allowed_list:\t0-3,6\n";
        assert_eq!(status_ids(status), Some((1000, 1001, 50, 51)));
        assert_eq!(nproc(status), Some(5));
        let passwd = "root:x:0:0:root:/root:/bin/bash\nbob:x:1001:1001::/home/bob:/bin/sh\n";
        assert_eq!(
            passwd_line(1001, Some("passwd: files systemd\n"), passwd).as_deref(),
            Some("bob:x:1001:1001::/home/bob:/bin/sh")
        );
        assert_eq!(passwd_line(1001, Some("passwd: sss files\n"), passwd), None);
        assert_eq!(passwd_line(7, None, passwd), None);
    }

    #[test]
    fn head_output_splits_into_files() {
        let asked: Vec<String> = ["/a", "/gone", "/b", "/empty", "/secret", "/speed", "/last"]
            .iter()
            .map(|p| p.to_string())
            .collect();
        // As GNU head -v prints them: no blank line before the first header, one before
        // every other; a file without a final newline runs into the next header's.
        let block = "==> /a <==\nline 1\n==> /not-a-header <==\n\n\
                     ==> /b <==\nno newline\n\
                     ==> /empty <==\n\n\
                     ==> /speed <==\n\n\
                     ==> /last <==\nx\n";
        let errors = "head: cannot open '/gone' for reading: No such file or directory\n\
                      head: cannot open '/secret' for reading: Permission denied\n\
                      head: error reading '/speed': Invalid argument\n";
        let files = split_head(block, errors, &asked);
        let text = |p: &str| files.get(p).and_then(Read::text);
        assert_eq!(text("/a"), Some("line 1\n==> /not-a-header <==\n"));
        assert_eq!(text("/b"), Some("no newline"));
        assert_eq!(text("/empty"), Some(""));
        assert_eq!(text("/last"), Some("x\n"));
        assert!(matches!(files.get("/gone"), Some(Read::Missing)));
        assert!(matches!(files.get("/secret"), Some(Read::Unreadable)));
        assert!(matches!(files.get("/speed"), Some(Read::Unreadable)));
        assert!(!files.contains_key("/never-asked"));
    }
}
