//! `apt` (and `package`, which delegates to it): Debian packages present, absent or
//! latest, with `update_cache`/`cache_valid_time` (age of
//! `/var/lib/apt/periodic/update-success-stamp`, else of `/var/lib/apt/lists`),
//! `install_recommends` and `purge`.
//!
//! Observing is one exec: `dpkg-query -W` for every package, the cache's age and
//! `apt-cache policy` (installed and candidate versions) together. When candidates do not
//! decide (`present` with every package installed, or `absent`), no process is started:
//! dpkg's status file is read and the stamp stat'ed over the transport, and the cache's age
//! is measured with the controller's clock (a skew of minutes against a `cache_valid_time`
//! of hours does not matter). As in Ansible, a cache
//! refresh alone is a change only when no package is named; with packages, only package
//! changes count (the refresh is then an op without a change).

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::Value;

use super::args::{bool_arg, bool_opt, choice, int_opt, list, sh_quote, str_opt};
use super::{ArgDef, ArgSpec, Change, HostCtx, Module, Op, Plan};
use crate::Vars;

pub struct Apt;
pub struct Package;

const ARGS: &[ArgDef] = &[
    ArgDef::alias("name", &["pkg", "package"]),
    ArgDef::opt("state"),
    ArgDef::alias("update_cache", &["update-cache"]),
    ArgDef::opt("cache_valid_time"),
    ArgDef::alias("install_recommends", &["install-recommends"]),
    ArgDef::opt("purge"),
    ArgDef::opt("autoremove"),
    ArgDef::opt("force"),
    ArgDef::opt("default_release"),
    ArgDef::opt("dpkg_options"),
    ArgDef::opt("only_upgrade"),
    ArgDef::opt("allow_unauthenticated"),
    ArgDef::opt("allow_downgrade"),
    ArgDef::opt("lock_timeout"),
];

const STATES: &[&str] = &["present", "installed", "absent", "removed", "latest"];

/// A package as dpkg and apt-cache see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PkgInfo {
    /// The installed version (`install ok installed`).
    pub installed: Option<String>,
    /// Removed but its configuration files remain.
    pub config_files: bool,
    /// `apt-cache policy`'s candidate (`None`: unknown to apt, or `(none)`).
    pub candidate: Option<String>,
    /// apt knows the package (`apt-cache policy` listed it).
    pub known: bool,
}

/// Parses `dpkg-query -W -f '${Package}\t${Status}\t${Version}\n'`.
pub fn parse_dpkg(out: &str, pkgs: &mut HashMap<String, PkgInfo>) {
    for line in out.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 3 {
            continue;
        }
        let name = f[0].split(':').next().unwrap_or(f[0]).to_string();
        let status: Vec<&str> = f[1].split_whitespace().collect();
        let info = pkgs.entry(name).or_default();
        match status.last() {
            Some(&"installed") => info.installed = Some(f[2].to_string()),
            Some(&"config-files") => info.config_files = true,
            _ => {}
        }
    }
}

/// Parses `apt-cache policy a b c`.
pub fn parse_policy(out: &str, pkgs: &mut HashMap<String, PkgInfo>) {
    let mut current: Option<String> = None;
    for line in out.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            let name = line.trim_end_matches(':');
            let name = name.split(':').next().unwrap_or(name).to_string();
            pkgs.entry(name.clone()).or_default().known = true;
            current = Some(name);
        } else if let Some(name) = &current {
            let t = line.trim();
            if let Some(v) = t.strip_prefix("Candidate:") {
                let v = v.trim();
                if let Some(info) = pkgs.get_mut(name) {
                    info.candidate = (v != "(none)").then(|| v.to_string());
                }
            }
        }
    }
}

/// Splits `name=version` (a pinned version).
fn split_version(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (spec, None),
    }
}

/// The age in seconds of the apt cache, from the stamp section of the observation.
fn cache_age(section: &str) -> Option<i64> {
    let mut mtime = None;
    let mut now = None;
    for line in section.lines() {
        if let Some(v) = line.strip_prefix("mtime=") {
            mtime = v.trim().parse::<i64>().ok();
        } else if let Some(v) = line.strip_prefix("now=") {
            now = v.trim().parse::<i64>().ok();
        }
    }
    Some(now? - mtime?)
}

/// Splits the observation's output into its sections.
fn section<'a>(out: &'a str, name: &str) -> &'a str {
    let marker = format!("@@{name}\n");
    match out.find(&marker) {
        Some(i) => {
            let rest = &out[i + marker.len()..];
            match rest.find("@@") {
                Some(j) => &rest[..j],
                None => rest,
            }
        }
        None => "",
    }
}

/// When the observation needs `apt-cache policy` (candidate versions): loading apt's cache
/// costs the host more than everything else a converged `apt` task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PolicyWhen {
    /// `state: latest` or a version pin: candidates decide the plan.
    Always,
    /// `state: present`: only a package that is not installed needs its candidate (for
    /// the summary, and to fail early on an unknown name).
    SomeMissing,
    /// `state: absent`: candidates are never used.
    Never,
}

/// The `@@DPKG` and `@@POLICY` sections of the observing script, in one exec: dpkg's status
/// of every package, then `apt-cache policy` only when [`PolicyWhen`] says it is used.
fn packages_script(bare: &[&str], when: PolicyWhen) -> String {
    let quoted = bare
        .iter()
        .map(|n| sh_quote(n))
        .collect::<Vec<_>>()
        .join(" ");
    let mut s = format!(
        "echo @@DPKG; d=$(dpkg-query -W -f '${{Package}}\\t${{Status}}\\t${{Version}}\\n' {quoted} 2>/dev/null); \
         [ -n \"$d\" ] && printf '%s\\n' \"$d\"; echo @@POLICY; "
    );
    let policy = format!("LC_ALL=C apt-cache policy {quoted} 2>/dev/null; ");
    match when {
        PolicyWhen::Never => {}
        PolicyWhen::Always => s.push_str(&policy),
        PolicyWhen::SomeMissing => {
            // awk exits 1 when a wanted name has no installed line (`pkg[:arch]`).
            let all_installed = format!(
                "printf '%s\\n' \"$d\" | awk -F '\\t' -v want={} \
                 'BEGIN {{ n = split(want, w, \" \") }} \
                  {{ split($1, a, \":\"); if ($2 ~ / installed$/) ok[a[1]] = 1 }} \
                  END {{ for (i = 1; i <= n; i++) if (!(w[i] in ok)) exit 1 }}'",
                sh_quote(&bare.join(" "))
            );
            s.push_str(&format!("if ! {all_installed}; then {policy}fi; "));
        }
    }
    s
}

/// The packages' dpkg status and the cache's age in seconds, without a process on the
/// host: `/var/lib/dpkg/status` read, the stamp (else the lists directory) stat'ed, all at
/// once. `None` when the exec must observe: under a `become` that escalates (reads would
/// go through sudo anyway), when candidates are needed (`PolicyWhen::Always`, or a package that is not
/// installed), or for an architecture-qualified name.
async fn observe_files(
    ctx: &HostCtx,
    bare: &[&str],
    when: PolicyWhen,
) -> anyhow::Result<Option<(HashMap<String, PkgInfo>, Option<i64>)>> {
    if ctx.escalates() || when == PolicyWhen::Always || bare.iter().any(|n| n.contains(':')) {
        return Ok(None);
    }
    // Through the host's SystemFiles: the play's other package tasks read them too.
    let (t, files) = (&ctx.transport, &ctx.reads.files);
    let (status, stamp, lists) = futures::try_join!(
        async {
            match bare.is_empty() {
                true => Ok(Some(Vec::new())),
                false => files.read(t, "/var/lib/dpkg/status").await,
            }
        },
        files.stat(t, "/var/lib/apt/periodic/update-success-stamp"),
        files.stat(t, "/var/lib/apt/lists"),
    )?;
    let Some(status) = status else {
        return Ok(None);
    };
    let mut pkgs = HashMap::new();
    parse_status_file(&String::from_utf8_lossy(&status), bare, &mut pkgs);
    let all_installed = bare
        .iter()
        .all(|n| pkgs.get(*n).is_some_and(|p| p.installed.is_some()));
    if when == PolicyWhen::SomeMissing && !all_installed {
        return Ok(None);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let age = stamp.or(lists).map(|st| now - st.mtime);
    Ok(Some((pkgs, age)))
}

/// Reads dpkg's status file (`/var/lib/dpkg/status`) for the `wanted` packages, as
/// [`parse_dpkg`] reads `dpkg-query`'s output: one stanza per package and architecture,
/// `Status: want flag state`.
pub fn parse_status_file(text: &str, wanted: &[&str], pkgs: &mut HashMap<String, PkgInfo>) {
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .map(str::trim)
            })
        };
        let Some(package) = field("Package") else {
            continue;
        };
        if !wanted.contains(&package) {
            continue;
        }
        let info = pkgs.entry(package.to_string()).or_default();
        match field("Status").and_then(|s| s.split_whitespace().last()) {
            Some("installed") => info.installed = field("Version").map(str::to_string),
            Some("config-files") => info.config_files = true,
            _ => {}
        }
    }
}

/// The task's arguments, checked.
#[derive(Debug, Clone, Default)]
pub struct AptArgs {
    /// Package specs, `name` or `name=version`.
    pub names: Vec<String>,
    /// present, absent or latest (installed and removed mapped to them).
    pub state: String,
    pub update_cache: bool,
    pub cache_valid_time: i64,
    pub recommends: Option<bool>,
    pub purge: bool,
    pub autoremove: bool,
    pub default_release: Option<String>,
    pub dpkg_options: String,
}

impl AptArgs {
    pub fn parse(args: &Vars) -> anyhow::Result<AptArgs> {
        let names = list(args, &["name"])?;
        let state = match choice(args, &["state"], STATES, "present")?.as_str() {
            "installed" => "present".to_string(),
            "removed" => "absent".to_string(),
            s => s.to_string(),
        };
        let a = AptArgs {
            names,
            state,
            update_cache: bool_arg(args, &["update_cache"], false)?,
            cache_valid_time: int_opt(args, &["cache_valid_time"])?.unwrap_or(0),
            recommends: bool_opt(args, &["install_recommends"])?,
            purge: bool_arg(args, &["purge"], false)?,
            autoremove: bool_arg(args, &["autoremove"], false)?,
            default_release: str_opt(args, &["default_release"])?,
            dpkg_options: str_opt(args, &["dpkg_options"])?
                .unwrap_or_else(|| "force-confdef,force-confold".into()),
        };
        if a.names.is_empty() && !a.update_cache && !a.autoremove {
            anyhow::bail!("apt: one of name, update_cache or autoremove is required");
        }
        if let Some(n) = a
            .names
            .iter()
            .find(|n| n.starts_with('-') || n.contains(char::is_whitespace))
        {
            anyhow::bail!("argument name: {n:?} is not a package name");
        }
        Ok(a)
    }

    /// When candidates (`apt-cache policy`) are needed.
    fn candidates(&self) -> PolicyWhen {
        if self.state == "absent" {
            PolicyWhen::Never
        } else if self.state == "latest" || self.names.iter().any(|n| split_version(n).1.is_some())
        {
            PolicyWhen::Always
        } else {
            PolicyWhen::SomeMissing
        }
    }

    /// `apt-get -y -q` with the dpkg options.
    fn apt_get(&self) -> String {
        let mut c = String::from("DEBIAN_FRONTEND=noninteractive apt-get -y -q");
        let options = self.dpkg_options.split(',').map(str::trim);
        for o in options.filter(|o| !o.is_empty()) {
            c.push_str(&format!(" -o Dpkg::Options::=--{o}"));
        }
        c
    }
}

/// What the host has: the named packages, the cache's age in seconds, and (only with
/// `autoremove`) how many packages an autoremove would remove.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub packages: HashMap<String, PkgInfo>,
    pub cache_age: Option<i64>,
    pub autoremovable: usize,
}

async fn observe(ctx: &HostCtx, a: &AptArgs) -> anyhow::Result<Observed> {
    let bare: Vec<&str> = a.names.iter().map(|n| split_version(n).0).collect();
    let candidates = a.candidates();
    let (packages, cache_age) = match observe_files(ctx, &bare, candidates).await? {
        Some(seen) => seen,
        None => {
            let mut script = String::from(
                "echo @@STAMP; for f in /var/lib/apt/periodic/update-success-stamp /var/lib/apt/lists; do \
                 if [ -e \"$f\" ]; then echo \"mtime=$(stat -c %Y \"$f\")\"; break; fi; done; echo \"now=$(date +%s)\"; ",
            );
            if !bare.is_empty() {
                script.push_str(&packages_script(&bare, candidates));
            }
            script.push_str("echo @@END");
            let out = ctx.run(&script).await?;
            let mut pkgs = HashMap::new();
            parse_dpkg(section(&out.stdout, "DPKG"), &mut pkgs);
            parse_policy(section(&out.stdout, "POLICY"), &mut pkgs);
            (pkgs, cache_age(section(&out.stdout, "STAMP")))
        }
    };
    let mut autoremovable = 0;
    if a.autoremove {
        // Whether anything would be removed needs a simulation: one more read-only exec.
        let sim = ctx
            .run("LC_ALL=C apt-get -s -q autoremove 2>/dev/null | grep -c '^Remv ' || true")
            .await?;
        autoremovable = sim.stdout.trim().parse().unwrap_or(0);
    }
    Ok(Observed {
        packages,
        cache_age,
        autoremovable,
    })
}

fn change(summary: String) -> Change {
    Change {
        summary,
        diff: None,
    }
}

fn quoted(packages: &[String]) -> String {
    let quoted: Vec<String> = packages.iter().map(|p| sh_quote(p)).collect();
    quoted.join(" ")
}

/// The plan: pure, from the arguments and what the host has.
pub fn plan_apt(a: &AptArgs, obs: &Observed) -> Plan {
    let mut plan = Plan::default();
    let age = obs.cache_age;
    let refresh = a.update_cache
        && (a.cache_valid_time <= 0 || age.is_none_or(|age| age > a.cache_valid_time));
    let apt_get = a.apt_get();
    let mut ops = Vec::new();
    if refresh {
        ops.push(exec(
            "DEBIAN_FRONTEND=noninteractive apt-get update -q".to_string(),
        ));
        if a.names.is_empty() {
            plan.changes.push(change("update the apt cache".into()));
        }
    }
    let info_of = |name: &str| obs.packages.get(name).cloned().unwrap_or_default();

    let mut to_install = Vec::new();
    let mut to_remove = Vec::new();
    let mut unknown = Vec::new();
    for spec in &a.names {
        let (name, version) = split_version(spec);
        let info = info_of(name);
        if a.state == "absent" {
            if info.installed.is_some() || (a.purge && info.config_files) {
                to_remove.push(name.to_string());
            }
            continue;
        }
        let wanted = match (&info.installed, version) {
            (None, _) => true,
            (Some(have), Some(v)) => !version_matches(have, v),
            (Some(have), None) => {
                a.state == "latest" && info.candidate.as_deref().is_some_and(|c| c != have)
            }
        };
        if wanted {
            if info.installed.is_none() && !info.known && !refresh {
                unknown.push(name.to_string());
            }
            to_install.push(spec.clone());
        }
    }
    if !unknown.is_empty() {
        plan.failed = Some(format!(
            "No package matching '{}' is available",
            unknown.join("', '")
        ));
        return plan;
    }
    if !to_install.is_empty() {
        let mut cmd = apt_get.clone();
        match a.recommends {
            Some(true) => cmd.push_str(" -o APT::Install-Recommends=yes"),
            Some(false) => cmd.push_str(" --no-install-recommends"),
            None => {}
        }
        if let Some(r) = &a.default_release {
            cmd.push_str(&format!(" -t {}", sh_quote(r)));
        }
        cmd.push_str(" install ");
        cmd.push_str(&quoted(&to_install));
        for p in &to_install {
            let (name, _) = split_version(p);
            let info = info_of(name);
            let summary = match (&info.installed, &info.candidate) {
                (Some(have), Some(c)) => format!("upgrade {name} {have} -> {c}"),
                (None, Some(c)) => format!("install {name} ({c})"),
                _ => format!("install {p}"),
            };
            plan.changes.push(change(summary));
        }
        ops.push(exec(cmd));
    }
    if !to_remove.is_empty() {
        let verb = if a.purge { "purge" } else { "remove" };
        ops.push(exec(format!("{apt_get} {verb} {}", quoted(&to_remove))));
        for p in &to_remove {
            plan.changes.push(change(format!("{verb} {p}")));
        }
    }
    if a.autoremove && obs.autoremovable > 0 {
        let n = obs.autoremovable;
        plan.changes
            .push(change(format!("autoremove {n} packages")));
        let purge = if a.purge { " --purge" } else { "" };
        ops.push(exec(format!("{apt_get} autoremove{purge}")));
    }
    plan.ops = ops;
    let mut result = super::args::vars([
        ("cache_updated", Value::Bool(refresh)),
        ("cache_update_time", Value::from(age.unwrap_or(0))),
    ]);
    if plan.ops.len() > usize::from(refresh) {
        result.insert("stdout".into(), Value::Null);
        result.insert("stderr".into(), Value::Null);
    }
    plan.result = result;
    plan
}

#[async_trait]
impl Module for Apt {
    fn name(&self) -> &'static str {
        "apt"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let args = AptArgs::parse(args)?;
        let observed = observe(ctx, &args).await?;
        Ok(plan_apt(&args, &observed))
    }
}

/// `nginx=1.22*` matches installed `1.22.1-9` (apt's glob pin); else exact.
fn version_matches(have: &str, want: &str) -> bool {
    match want.strip_suffix('*') {
        Some(prefix) => have.starts_with(prefix),
        None => have == want,
    }
}

fn exec(cmd: String) -> Op {
    super::fileops::exec(cmd)
}

#[async_trait]
impl Module for Package {
    fn name(&self) -> &'static str {
        "package"
    }

    fn spec(&self) -> ArgSpec {
        const ARGS: &[ArgDef] = &[
            ArgDef::req("name"),
            ArgDef::opt("state"),
            ArgDef::opt("use"),
        ];
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        if let Some(manager) = str_opt(args, &["use"])? {
            if manager != "auto" && manager != "apt" {
                anyhow::bail!("argument use: only apt is supported, not {manager:?}");
            }
        }
        let mut apt_args = args.clone();
        apt_args.remove("use");
        Apt.plan(ctx, &apt_args).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_output() {
        let mut m = HashMap::new();
        parse_dpkg(
            "nginx\tinstall ok installed\t1.22.1-9\nvim\tdeinstall ok config-files\t2:9.0\ncurl\tunknown ok not-installed\t\nlibc6:amd64\tinstall ok installed\t2.36\n",
            &mut m,
        );
        assert_eq!(m["nginx"].installed.as_deref(), Some("1.22.1-9"));
        assert!(m["vim"].installed.is_none() && m["vim"].config_files);
        assert!(m["curl"].installed.is_none() && !m["curl"].config_files);
        assert_eq!(m["libc6"].installed.as_deref(), Some("2.36"));
    }

    #[test]
    fn policy_output() {
        let mut m = HashMap::new();
        parse_policy(
            "nginx:\n  Installed: (none)\n  Candidate: 1.22.1-9\n  Version table:\n     1.22.1-9 500\n        500 http://deb.debian.org/debian bookworm/main amd64 Packages\nghost:\n  Installed: (none)\n  Candidate: (none)\n  Version table:\n",
            &mut m,
        );
        assert_eq!(m["nginx"].candidate.as_deref(), Some("1.22.1-9"));
        assert!(m["nginx"].known);
        assert!(m["ghost"].candidate.is_none() && m["ghost"].known);
        assert!(!m.contains_key("other"));
    }

    /// The status file read directly says what `dpkg-query` says, for every package the
    /// controller's own dpkg database (Debian) lists.
    #[test]
    fn the_status_file_reads_as_dpkg_query_does() {
        let query = std::process::Command::new("dpkg-query")
            .args(["-W", "-f", "${Package}\t${Status}\t${Version}\n"])
            .output()
            .expect("dpkg-query");
        let query = String::from_utf8(query.stdout).unwrap();
        let mut want = HashMap::new();
        parse_dpkg(&query, &mut want);
        assert!(want.len() > 50, "{query}");
        let names: Vec<&str> = want.keys().map(String::as_str).collect();
        let status = std::fs::read_to_string("/var/lib/dpkg/status").unwrap();
        let mut got = HashMap::new();
        parse_status_file(&status, &names, &mut got);
        for (name, info) in &want {
            assert_eq!(got.get(name).unwrap_or(&PkgInfo::default()), info, "{name}");
        }
    }

    /// Runs the packages script with the controller's own dpkg and apt (Debian).
    fn run_packages_script(bare: &[&str], when: PolicyWhen) -> String {
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{}echo @@END", packages_script(bare, when)))
            .output()
            .expect("/bin/sh");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn policy_runs_only_when_a_package_is_missing_or_candidates_decide() {
        let installed = ["dpkg", "coreutils"];
        let out = run_packages_script(&installed, PolicyWhen::SomeMissing);
        let mut pkgs = HashMap::new();
        parse_dpkg(section(&out, "DPKG"), &mut pkgs);
        assert!(pkgs["dpkg"].installed.is_some(), "{out}");
        assert!(pkgs["coreutils"].installed.is_some(), "{out}");
        assert_eq!(
            section(&out, "POLICY"),
            "",
            "all installed: no policy\n{out}"
        );

        let out = run_packages_script(&installed, PolicyWhen::Always);
        assert!(section(&out, "POLICY").contains("dpkg:"), "{out}");
        let out = run_packages_script(&installed, PolicyWhen::Never);
        assert_eq!(section(&out, "POLICY"), "", "{out}");

        let missing = ["dpkg", "infra-no-such-package"];
        let out = run_packages_script(&missing, PolicyWhen::SomeMissing);
        assert!(section(&out, "POLICY").contains("dpkg:"), "{out}");
    }

    #[test]
    fn sections_and_cache_age() {
        let out =
            "@@STAMP\nmtime=100\nnow=160\n@@DPKG\nx\tinstall ok installed\t1\n@@POLICY\n@@END\n";
        assert_eq!(cache_age(section(out, "STAMP")), Some(60));
        assert_eq!(section(out, "DPKG"), "x\tinstall ok installed\t1\n");
        assert_eq!(section(out, "POLICY"), "");
        assert_eq!(cache_age("now=5\n"), None);
    }

    #[test]
    fn versions() {
        assert_eq!(split_version("nginx=1.2"), ("nginx", Some("1.2")));
        assert!(version_matches("1.22.1-9", "1.22*"));
        assert!(!version_matches("1.22.1-9", "1.22"));
    }

    fn apt_args(names: &[&str], state: &str) -> AptArgs {
        AptArgs {
            names: names.iter().map(|n| n.to_string()).collect(),
            state: state.into(),
            dpkg_options: "force-confdef".into(),
            ..Default::default()
        }
    }

    fn observed(packages: &[(&str, Option<&str>, Option<&str>)]) -> Observed {
        let packages = packages
            .iter()
            .map(|(name, installed, candidate)| {
                let info = PkgInfo {
                    installed: installed.map(String::from),
                    candidate: candidate.map(String::from),
                    known: candidate.is_some(),
                    config_files: false,
                };
                (name.to_string(), info)
            })
            .collect();
        Observed {
            packages,
            cache_age: Some(100),
            autoremovable: 0,
        }
    }

    fn commands(plan: &Plan) -> Vec<String> {
        plan.ops
            .iter()
            .map(|op| match op {
                Op::Exec { cmd, .. } => cmd.clone(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn present_installs_only_what_is_missing() {
        let obs = observed(&[("jq", Some("1.6"), None), ("rsync", None, Some("3.2"))]);
        let plan = plan_apt(&apt_args(&["jq", "rsync"], "present"), &obs);
        assert_eq!(plan.changes[0].summary, "install rsync (3.2)");
        assert_eq!(
            commands(&plan),
            vec!["DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Options::=--force-confdef install rsync"]
        );
        let converged = observed(&[("jq", Some("1.6"), None)]);
        assert!(plan_apt(&apt_args(&["jq"], "present"), &converged)
            .ops
            .is_empty());
    }

    #[test]
    fn latest_upgrades_to_the_candidate_and_absent_removes() {
        let obs = observed(&[("jq", Some("1.6"), Some("1.7"))]);
        let plan = plan_apt(&apt_args(&["jq"], "latest"), &obs);
        assert_eq!(plan.changes[0].summary, "upgrade jq 1.6 -> 1.7");
        let mut absent = apt_args(&["jq"], "absent");
        absent.purge = true;
        assert!(commands(&plan_apt(&absent, &obs))[0].ends_with(" purge jq"));
    }

    #[test]
    fn an_unknown_package_fails_unless_the_cache_is_refreshed() {
        let obs = observed(&[]);
        let plan = plan_apt(&apt_args(&["nosuch"], "present"), &obs);
        assert_eq!(
            plan.failed.as_deref(),
            Some("No package matching 'nosuch' is available")
        );
        let mut refreshing = apt_args(&["nosuch"], "present");
        refreshing.update_cache = true;
        assert!(plan_apt(&refreshing, &obs).failed.is_none());
    }

    #[test]
    fn the_cache_refresh_follows_cache_valid_time() {
        let mut a = apt_args(&[], "present");
        a.update_cache = true;
        a.cache_valid_time = 3600;
        let fresh = observed(&[]);
        assert!(plan_apt(&a, &fresh).ops.is_empty());
        a.cache_valid_time = 50;
        let plan = plan_apt(&a, &fresh);
        assert_eq!(plan.changes[0].summary, "update the apt cache");
        assert_eq!(plan.result["cache_updated"], true);
    }
}
