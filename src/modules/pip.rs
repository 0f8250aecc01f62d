//! `pip`: Python packages in the system's or a virtualenv's pip. Observes what is
//! installed with one `pip list --format=freeze` and plans only what is needed: `present`
//! installs when a package is missing or its version does not satisfy the spec, `absent`
//! uninstalls when one is there, `latest` when one is missing or `pip list --outdated`
//! lists it, `forcereinstall` always; a `requirements` file is judged with
//! `pip install --dry-run` ("Would install ..."). A missing `virtualenv` is created first
//! with `virtualenv_command` (then everything is installed).
//!
//! Unlike Ansible's module (which always runs `pip install` and reports "changed" when pip
//! says "Successfully installed", and in check mode reports changed whenever `extra_args`
//! is given), a converged host runs no install at all and check mode predicts exactly.
//! Versions are compared numerically segment by segment (`1.10 > 1.9`), enough for the
//! specifiers roles use (`==`, `>=`, `<=`, `>`, `<`, `!=`, `~=`), not all of PEP 440.

use async_trait::async_trait;
use serde_json::Value;

use super::args::{choice, list, sh_quote, str_opt};
use super::{ArgDef, ArgSpec, Change, HostCtx, Module, Op, Plan};
use crate::Vars;

pub struct Pip;

const ARGS: &[ArgDef] = &[
    ArgDef::opt("name"),
    ArgDef::opt("version"),
    ArgDef::opt("requirements"),
    ArgDef::opt("virtualenv"),
    ArgDef::opt("virtualenv_site_packages"),
    ArgDef::opt("virtualenv_command"),
    ArgDef::opt("virtualenv_python"),
    ArgDef::opt("state"),
    ArgDef::opt("extra_args"),
    ArgDef::opt("editable"),
    ArgDef::opt("chdir"),
    ArgDef::opt("executable"),
    ArgDef::opt("umask"),
    ArgDef::opt("break_system_packages"),
];

/// A package argument: its name and version constraints.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub raw: String,
    pub name: String,
    pub constraints: Vec<(String, String)>,
}

/// PEP 503 normal form of a distribution name.
pub fn normalize(name: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    for c in name.trim().chars() {
        if c == '-' || c == '_' || c == '.' {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Parses `foo`, `foo==1.0`, `foo>=1,<2`, `foo[extra]>=1`.
pub fn parse_spec(raw: &str) -> anyhow::Result<Spec> {
    let s = raw.trim();
    let end = s.find(|c: char| "=<>!~ ;[".contains(c)).unwrap_or(s.len());
    let name = &s[..end];
    if name.is_empty() {
        anyhow::bail!("argument name: {raw:?} is not a package name");
    }
    let mut rest = &s[end..];
    if rest.starts_with('[') {
        rest = rest.find(']').map(|i| &rest[i + 1..]).unwrap_or("");
    }
    let rest = rest.split(';').next().unwrap_or("");
    let mut constraints = Vec::new();
    for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let op_len = part
            .find(|c: char| !"=<>!~".contains(c))
            .unwrap_or(part.len());
        let (op, v) = part.split_at(op_len);
        if !["==", ">=", "<=", ">", "<", "!=", "~=", "==="].contains(&op) {
            anyhow::bail!("argument name: bad version specifier {part:?} in {raw:?}");
        }
        constraints.push((op.to_string(), v.trim().to_string()));
    }
    Ok(Spec {
        raw: s.to_string(),
        name: normalize(name),
        constraints,
    })
}

/// Compares versions segment by segment, numbers numerically.
pub fn cmp_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let seg = |v: &str| -> Vec<(u64, String)> {
        v.split(['.', '-', '+'])
            .map(|p| {
                let digits: String = p.chars().take_while(|c| c.is_ascii_digit()).collect();
                (digits.parse().unwrap_or(0), p[digits.len()..].to_string())
            })
            .collect()
    };
    let (mut x, mut y) = (seg(a), seg(b));
    let n = x.len().max(y.len());
    x.resize(n, (0, String::new()));
    y.resize(n, (0, String::new()));
    x.cmp(&y)
}

/// Does an installed version satisfy the spec?
pub fn satisfies(spec: &Spec, installed: &str) -> bool {
    use std::cmp::Ordering::*;
    spec.constraints.iter().all(|(op, v)| {
        let wild = v.strip_suffix(".*");
        let ord = cmp_versions(installed, v);
        match op.as_str() {
            "==" | "===" => match wild {
                Some(prefix) => installed == prefix || installed.starts_with(&format!("{prefix}.")),
                None => ord == Equal,
            },
            "!=" => ord != Equal,
            ">=" => ord != Less,
            "<=" => ord != Greater,
            ">" => ord == Greater,
            "<" => ord == Less,
            "~=" => {
                let prefix: Vec<&str> = v.split('.').collect();
                let head = prefix[..prefix.len().saturating_sub(1).max(1)].join(".");
                ord != Less && (installed == head || installed.starts_with(&format!("{head}.")))
            }
            _ => false,
        }
    })
}

/// `name==version` lines of `pip list --format=freeze` as (normalized name, version).
pub fn parse_freeze(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| l.split_once("=="))
        .map(|(n, v)| (normalize(n), v.trim().to_string()))
        .collect()
}

#[async_trait]
impl Module for Pip {
    fn name(&self) -> &'static str {
        "pip"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let state = choice(
            args,
            &["state"],
            &["present", "absent", "latest", "forcereinstall"],
            "present",
        )?;
        let names = list(args, &["name"])?;
        let version = str_opt(args, &["version"])?;
        let requirements = str_opt(args, &["requirements"])?;
        if !names.is_empty() && requirements.is_some() {
            anyhow::bail!("arguments name and requirements are mutually exclusive");
        }
        if names.is_empty() && requirements.is_none() {
            anyhow::bail!("one of the following is required: name, requirements");
        }
        let mut specs: Vec<Spec> = names
            .iter()
            .map(|n| parse_spec(n))
            .collect::<anyhow::Result<_>>()?;
        if let Some(v) = &version {
            if state == "latest" {
                anyhow::bail!("argument version: version is incompatible with state=latest");
            }
            if specs.len() != 1 {
                anyhow::bail!("argument version: 'version' argument is ambiguous when installing multiple package distributions. Please specify version restrictions next to each package in 'name' argument.");
            }
            if !specs[0].constraints.is_empty() {
                anyhow::bail!("argument version: The 'version' argument conflicts with any version specifier provided along with a package name.");
            }
            let v = v.trim();
            let raw = if v.starts_with(['=', '<', '>', '!', '~']) {
                format!("{}{v}", specs[0].raw)
            } else {
                format!("{}=={v}", specs[0].raw)
            };
            specs[0] = parse_spec(&raw)?;
        }
        let extra = str_opt(args, &["extra_args"])?.unwrap_or_default();
        let env = str_opt(args, &["virtualenv"])?;
        let chdir = str_opt(args, &["chdir"])?;
        let pip = match (str_opt(args, &["executable"])?, &env) {
            (Some(exe), _) => sh_quote(&exe),
            (None, Some(env)) => sh_quote(&format!("{}/bin/pip", env.trim_end_matches('/'))),
            (None, None) => {
                let out = ctx.run("command -v pip3 || command -v pip").await?;
                let found = out.stdout.lines().next().unwrap_or("").trim().to_string();
                if found.is_empty() {
                    let plan = Plan {
                        failed: Some(
                            "Unable to find any of pip3 to use.  pip needs to be installed.".into(),
                        ),
                        ..Default::default()
                    };
                    return Ok(plan);
                }
                sh_quote(&found)
            }
        };
        let mut plan = Plan::default();
        let mut create_env = None;
        if let Some(env) = &env {
            let activate = format!("{}/bin/activate", env.trim_end_matches('/'));
            if ctx
                .transport
                .stat(&activate, ctx.become_.as_ref())
                .await?
                .is_none()
            {
                let command =
                    str_opt(args, &["virtualenv_command"])?.unwrap_or_else(|| "virtualenv".into());
                let mut cmd = command.clone();
                let site = super::args::bool_arg(args, &["virtualenv_site_packages"], false)?;
                if site {
                    cmd.push_str(" --system-site-packages");
                }
                if let Some(py) = str_opt(args, &["virtualenv_python"])? {
                    if !command.contains("venv") {
                        cmd.push_str(&format!(" -p{py}"));
                    }
                }
                cmd.push_str(&format!(" {}", sh_quote(env)));
                create_env = Some(cmd);
            }
        }
        let verb = match state.as_str() {
            "absent" => " uninstall -y",
            "latest" => " install -U",
            "forcereinstall" => " install -U --force-reinstall",
            _ => " install",
        };
        let mut cmd = format!("{pip}{verb}");
        if !extra.is_empty() {
            cmd.push_str(&format!(" {extra}"));
        }
        match &requirements {
            Some(r) => cmd.push_str(&format!(" -r {}", sh_quote(r))),
            None => {
                for s in &specs {
                    cmd.push_str(&format!(" {}", sh_quote(&s.raw)));
                }
            }
        }

        // Observe (nothing to observe in a virtualenv that does not exist yet).
        let needed: Vec<String> = if create_env.is_some() {
            vec!["a new virtualenv".into()]
        } else if let Some(r) = &requirements {
            let dry = ctx
                .run(&format!(
                    "{pip} install --dry-run --disable-pip-version-check {extra} -r {} 2>&1",
                    sh_quote(r)
                ))
                .await?;
            let would = dry
                .stdout
                .lines()
                .find_map(|l| l.strip_prefix("Would install "));
            match (dry.rc, would, state.as_str()) {
                (_, _, "forcereinstall") => vec![r.clone()],
                (0, None, _) => vec![],
                (0, Some(list), _) => vec![list.to_string()],
                _ => vec![r.clone()],
            }
        } else {
            let out = ctx
                .run(&format!(
                    "{pip} list --format=freeze --disable-pip-version-check"
                ))
                .await?;
            if out.rc != 0 {
                anyhow::bail!(
                    "Could not get output from {pip} list: {}",
                    out.stderr.trim()
                );
            }
            let installed = parse_freeze(&out.stdout);
            let version_of = |name: &str| {
                installed
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            };
            let outdated = if state == "latest" {
                let o = ctx
                    .run(&format!(
                        "{pip} list --outdated --format=freeze --disable-pip-version-check {extra}"
                    ))
                    .await?;
                (o.rc == 0).then(|| parse_freeze(&o.stdout))
            } else {
                Some(Vec::new())
            };
            specs
                .iter()
                .filter(|s| match (state.as_str(), version_of(&s.name)) {
                    ("absent", v) => v.is_some(),
                    ("forcereinstall", _) => true,
                    (_, None) => true,
                    ("latest", Some(_)) => outdated
                        .as_ref()
                        .is_none_or(|o| o.iter().any(|(n, _)| *n == s.name)),
                    (_, Some(v)) => !satisfies(s, &v),
                })
                .map(|s| s.raw.clone())
                .collect()
        };

        let mut result = super::args::vars([
            ("cmd", Value::String(cmd.clone())),
            (
                "name",
                Value::Array(names.iter().cloned().map(Value::String).collect()),
            ),
            (
                "version",
                version.clone().map_or(Value::Null, Value::String),
            ),
            ("state", Value::String(state.clone())),
            (
                "requirements",
                requirements.clone().map_or(Value::Null, Value::String),
            ),
            ("virtualenv", env.clone().map_or(Value::Null, Value::String)),
        ]);
        if needed.is_empty() {
            result.insert("stdout".into(), Value::String(String::new()));
            result.insert("stderr".into(), Value::String(String::new()));
            plan.result = result;
            return Ok(plan);
        }
        for key in ["stdout", "stderr"] {
            result.insert(key.into(), Value::Null);
        }
        if let Some(c) = create_env {
            plan.changes.push(Change {
                summary: format!("create virtualenv {}", env.clone().unwrap_or_default()),
                diff: None,
            });
            plan.ops.push(Op::Exec {
                cmd: c,
                stdin: None,
                chdir: chdir.clone(),
                allow_failure: false,
            });
        }
        let what = if state == "absent" {
            "uninstall"
        } else {
            "install"
        };
        plan.changes.push(Change {
            summary: format!("pip {what} {}", needed.join(", ")),
            diff: None,
        });
        plan.ops.push(Op::Exec {
            cmd,
            stdin: None,
            chdir,
            allow_failure: false,
        });
        plan.result = result;
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_names() {
        let s = parse_spec("Django_Rest.framework[x]>=3.1, <4").unwrap();
        assert_eq!(s.name, "django-rest-framework");
        assert_eq!(
            s.constraints,
            vec![(">=".into(), "3.1".into()), ("<".into(), "4".into())]
        );
        assert!(parse_spec("foo=>1").is_err());
        assert_eq!(parse_spec("requests").unwrap().constraints, vec![]);
    }

    #[test]
    fn version_constraints() {
        let s = |r: &str| parse_spec(r).unwrap();
        assert!(satisfies(&s("a>=1.9"), "1.10"));
        assert!(!satisfies(&s("a==1.0"), "1.0.1"));
        assert!(satisfies(&s("a==1.0"), "1.0.0"));
        assert!(satisfies(&s("a==1.*"), "1.4"));
        assert!(satisfies(&s("a~=2.2"), "2.9") && !satisfies(&s("a~=2.2"), "3.0"));
        assert!(satisfies(&s("a!=2,<3"), "2.5"));
    }

    #[test]
    fn freeze_lines() {
        let got = parse_freeze("Example==21.12\npip==23.2.1\n-e git+x#egg=y\n");
        assert_eq!(got[0], ("example".into(), "21.12".into()));
        assert_eq!(got.len(), 2);
    }
}
