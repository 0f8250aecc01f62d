//! `package_facts`: the installed packages as `ansible_facts.packages`, a dict from name to
//! a list of `{name, version, arch, category, origin, source: apt}` (one entry per
//! installed architecture), the shape Ansible's apt backend gives.
//!
//! Ansible reads apt's cache through python3-apt (and fails when the host lacks it); here
//! one round trip reads dpkg's database (`dpkg-query`) and `apt-cache policy`, which names
//! the package file each installed version came from and that file's origin, so no Python
//! is needed. Only apt (`manager: auto` or `apt`) is supported: on other hosts the task
//! fails as Ansible's does when it finds no manager. Read-only: never changed.

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::args::{choice, list};
use super::{ArgDef, ArgSpec, HostCtx, Module, Plan};
use crate::Vars;

pub struct PackageFacts;

const ARGS: &[ArgDef] = &[ArgDef::opt("manager"), ArgDef::opt("strategy")];

/// dpkg's installed packages ("@@PKG" lines), apt's package files ("@@FILES": the output
/// of `apt-cache policy`), and each installed package's version table ("@@POLICY").
const SCRIPT: &str = r#"LANG=C; LC_ALL=C; export LANG LC_ALL
command -v dpkg-query >/dev/null 2>&1 || { echo @@NODPKG; exit 0; }
pkgs=$(dpkg-query -W -f '${db:Status-Abbrev}\t${Package}\t${Architecture}\t${Version}\t${Section}\n' 2>/dev/null | awk -F'\t' '$1 ~ /^.i/')
echo @@PKG; printf '%s\n' "$pkgs"
if command -v apt-cache >/dev/null 2>&1; then
  echo @@FILES; apt-cache policy 2>/dev/null
  echo @@POLICY; printf '%s\n' "$pkgs" | awk -F'\t' 'NF>=3 {print $2 ":" $3}' | xargs -r apt-cache policy 2>/dev/null
  echo @@SECTIONS; printf '%s\n' "$pkgs" | awk -F'\t' 'NF>=4 {print $2 ":" $3 "=" $4}' | xargs -r apt-cache show 2>/dev/null | grep -E '^(Package|Architecture|Section):'
fi
"#;

/// One installed package as dpkg reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub name: String,
    pub arch: String,
    pub version: String,
    pub section: String,
}

/// Splits the probe's output into its sections.
fn sections(out: &str) -> HashMap<&str, Vec<&str>> {
    let mut map: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut cur = "";
    for line in out.lines() {
        if let Some(name) = line.strip_prefix("@@") {
            cur = name;
            map.entry(cur).or_default();
            continue;
        }
        map.entry(cur).or_default().push(line);
    }
    map
}

/// `ii \tname\tarch\tversion\tsection` lines.
pub fn parse_installed(lines: &[&str]) -> Vec<Installed> {
    lines
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() >= 5).then(|| Installed {
                name: f[1].to_string(),
                arch: f[2].to_string(),
                version: f[3].to_string(),
                section: f[4].to_string(),
            })
        })
        .collect()
}

/// `apt-cache policy` without arguments: each package file (" 500 URI DIST/COMP ARCH
/// Packages") followed by its `release ... o=ORIGIN,...` line. Returns file -> origin.
pub fn parse_origins(lines: &[&str]) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let mut file: Option<String> = None;
    for line in lines {
        let t = line.trim();
        if let Some(rel) = t.strip_prefix("release ") {
            if let Some(f) = file.take() {
                let origin = rel
                    .split(',')
                    .find_map(|kv| kv.strip_prefix("o="))
                    .unwrap_or("");
                map.insert(f, origin.to_string());
            }
        } else if let Some(f) = package_file(t) {
            file = Some(f);
        }
    }
    map
}

/// " 500 http://deb.debian.org/debian bookworm/main amd64 Packages" -> the part after the
/// priority (the same text appears in a package's version table).
fn package_file(t: &str) -> Option<String> {
    let (prio, rest) = t.split_once(' ')?;
    (prio.trim_start_matches('-').parse::<i64>().is_ok() && !rest.is_empty())
        .then(|| rest.trim().to_string())
}

/// `apt-cache policy NAME:ARCH...`: for each package, the first package file listed under
/// its installed version (marked `***`). Returns "name:arch" -> package file.
pub fn parse_installed_files(lines: &[&str]) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let mut pkg: Option<String> = None;
    let mut in_installed = false;
    for line in lines {
        if !line.starts_with(' ') && line.ends_with(':') {
            pkg = Some(line.trim_end_matches(':').to_string());
            in_installed = false;
            continue;
        }
        let t = line.trim();
        if t.starts_with("*** ") {
            in_installed = true;
            continue;
        }
        if !line.starts_with("        ") {
            // A version line (another candidate) or a header ends the file list.
            in_installed = false;
            continue;
        }
        if in_installed {
            if let (Some(p), Some(f)) = (&pkg, package_file(t)) {
                map.entry(p.clone()).or_insert(f);
            }
        }
    }
    map
}

/// `apt-cache show NAME:ARCH=VERSION...` (Package, Architecture, Section lines): the
/// section apt's cache has for the installed version, which is the archive's when the
/// version is also in a package list (dpkg's status may say otherwise, e.g. `oldlibs`).
/// Returns "name:arch" -> section.
pub fn parse_sections(lines: &[&str]) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let (mut name, mut arch) = (String::new(), String::new());
    for line in lines {
        if let Some(v) = line.strip_prefix("Package: ") {
            name = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("Architecture: ") {
            arch = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("Section: ") {
            map.entry(format!("{name}:{arch}"))
                .or_insert_with(|| v.trim().to_string());
        }
    }
    map
}

/// Builds Ansible's `packages` dict.
pub fn packages(
    installed: &[Installed],
    files: &HashMap<String, String>,
    origins: &HashMap<String, String>,
    sections: &HashMap<String, String>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for p in installed {
        let key = format!("{}:{}", p.name, p.arch);
        // apt-cache prints native-architecture packages without the suffix.
        let file = files.get(&key).or_else(|| files.get(&p.name));
        let origin = file
            .and_then(|f| origins.get(f))
            .cloned()
            .unwrap_or_default();
        let mut m = Map::new();
        m.insert("name".into(), Value::from(p.name.clone()));
        m.insert("version".into(), Value::from(p.version.clone()));
        m.insert("arch".into(), Value::from(p.arch.clone()));
        let section = sections.get(&key).unwrap_or(&p.section);
        m.insert("category".into(), Value::from(section.clone()));
        m.insert("origin".into(), Value::from(origin));
        m.insert("source".into(), Value::from("apt"));
        if let Value::Array(list) = out
            .entry(p.name.clone())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            list.push(Value::Object(m));
        }
    }
    out
}

#[async_trait]
impl Module for PackageFacts {
    fn name(&self) -> &'static str {
        "package_facts"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let managers = list(args, &["manager"])?;
        choice(args, &["strategy"], &["first", "all"], "first")?;
        let mut plan = Plan::default();
        if let Some(m) = managers
            .iter()
            .find(|m| !matches!(m.as_str(), "auto" | "apt"))
        {
            plan.failed = Some(format!(
                "Unsupported package managers requested: {m} (only apt is native here)"
            ));
            return Ok(plan);
        }
        let out = ctx.run(SCRIPT).await?;
        let s = sections(&out.stdout);
        if s.contains_key("NODPKG") {
            plan.failed = Some(
                "Could not detect a supported package manager from the following list: \
                 ['apt'], or the required Python library is not installed. Check warnings \
                 for details."
                    .into(),
            );
            return Ok(plan);
        }
        let empty = Vec::new();
        let installed = parse_installed(s.get("PKG").unwrap_or(&empty));
        let origins = parse_origins(s.get("FILES").unwrap_or(&empty));
        let files = parse_installed_files(s.get("POLICY").unwrap_or(&empty));
        let sections = parse_sections(s.get("SECTIONS").unwrap_or(&empty));
        let mut facts = Map::new();
        facts.insert(
            "packages".into(),
            Value::Object(packages(&installed, &files, &origins, &sections)),
        );
        plan.result
            .insert("ansible_facts".into(), Value::Object(facts));
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const POLICY_FILES: &str = "Package files:
 100 /var/lib/dpkg/status
     release a=now
 500 http://deb.debian.org/debian bookworm/main amd64 Packages
     release v=12.15,o=Debian,a=oldstable,n=bookworm,l=Debian,c=main,b=amd64
     origin deb.debian.org
Pinned packages:";

    const POLICY_PKGS: &str = "bash:
  Installed: 5.2.15-2+b8
  Candidate: 5.2.15-2+b8
  Version table:
 *** 5.2.15-2+b8 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
local-tool:
  Installed: 1.0
  Candidate: 1.0
  Version table:
 *** 1.0 100
        100 /var/lib/dpkg/status
libc6:i386:
  Installed: 2.36-9
  Candidate: 2.36-9+deb12u1
  Version table:
     2.36-9+deb12u1 500
        500 http://deb.debian.org/debian bookworm/main i386 Packages
 *** 2.36-9 100
        100 /var/lib/dpkg/status";

    #[test]
    fn names_origin_of_the_installed_version() {
        let origins = parse_origins(&POLICY_FILES.lines().collect::<Vec<_>>());
        assert_eq!(
            origins["http://deb.debian.org/debian bookworm/main amd64 Packages"],
            "Debian"
        );
        assert_eq!(origins["/var/lib/dpkg/status"], "");
        let files = parse_installed_files(&POLICY_PKGS.lines().collect::<Vec<_>>());
        assert_eq!(
            files["bash"],
            "http://deb.debian.org/debian bookworm/main amd64 Packages"
        );
        assert_eq!(files["local-tool"], "/var/lib/dpkg/status");
        assert_eq!(files["libc6:i386"], "/var/lib/dpkg/status");
        let installed = parse_installed(&[
            "ii \tbash\tamd64\t5.2.15-2+b8\tshells",
            "ii \tlocal-tool\tall\t1.0\tmisc",
            "ii \tlibc6\ti386\t2.36-9\tlibs",
            "ii \tlibc6\tamd64\t2.36-9\tlibs",
        ]);
        let sections = parse_sections(&[
            "Package: local-tool",
            "Architecture: all",
            "Section: oldlibs",
        ]);
        let p = packages(&installed, &files, &origins, &sections);
        assert_eq!(p["local-tool"][0]["category"], "oldlibs");
        assert_eq!(
            p["bash"],
            json!([{"name": "bash", "version": "5.2.15-2+b8", "arch": "amd64",
                    "category": "shells", "origin": "Debian", "source": "apt"}])
        );
        assert_eq!(p["local-tool"][0]["origin"], "");
        assert_eq!(p["libc6"].as_array().map(Vec::len), Some(2));
    }
}
