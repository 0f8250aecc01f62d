//! `alternatives` (community.general): a Debian alternative (`update-alternatives`):
//! installed with a `link` and `priority` (`present`), also chosen (`selected`, the
//! default), back to automatic choice (`auto`), or removed (`absent`); `family` and
//! `subcommands` (followers) as in Ansible. Read with `update-alternatives --display`
//! (one round trip) and parsed as Ansible's module parses it; results carry its `msg`
//! and `diff` (before/after dicts).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::args::{choice, get, int_opt, sh_quote, str_opt, str_req};
use super::fileops::exec;
use super::{ArgDef, ArgSpec, Change, HostCtx, Module, Plan};
use crate::Vars;

pub struct Alternatives;

const ARGS: &[ArgDef] = &[
    ArgDef::req("name"),
    ArgDef::opt("path"),
    ArgDef::opt("family"),
    ArgDef::opt("link"),
    ArgDef::opt("priority"),
    ArgDef::opt("state"),
    ArgDef::alias("subcommands", &["slaves"]),
];

/// A follower link: (name, path, link).
pub type Sub = (String, String, String);

/// One installed alternative.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Alt {
    pub priority: i64,
    pub family: String,
    pub subs: Vec<Sub>,
}

/// What `update-alternatives --display NAME` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Display {
    pub mode: Option<String>,
    pub current_path: Option<String>,
    pub link: Option<String>,
    pub alts: BTreeMap<String, Alt>,
}

/// Parses `--display` output (LC_ALL=C) as Ansible's regexes do.
pub fn parse_display(out: &str) -> Display {
    let mut d = Display::default();
    let first = out.lines().next().unwrap_or("");
    let Some((_, m)) = first.split_once(" - ") else {
        return d;
    };
    let m = m.trim_start_matches("status is ").trim_end_matches('.');
    d.mode = Some(m.trim_end_matches(" mode").to_string());
    let mut follower_links: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in out.lines().skip(1) {
        let t = line.trim_start();
        if let Some(p) = t.strip_prefix("link currently points to ") {
            d.current_path = Some(p.to_string());
        } else if let Some(rest) = t.strip_prefix("link ") {
            if let Some((w, p)) = rest.split_once(" is ") {
                if !w.is_empty()
                    && w.chars().all(|c| c.is_alphanumeric() || c == '_')
                    && d.link.is_none()
                {
                    d.link = Some(p.to_string());
                }
            }
        }
        let follower = t
            .strip_prefix("slave ")
            .or_else(|| t.strip_prefix("follower "));
        if line.starts_with('/') {
            if let Some((path, rest)) = line.split_once(" - ") {
                let mut family = String::new();
                let mut rest = rest;
                if let Some(r) = rest.strip_prefix("family ") {
                    if let Some((f, r2)) = r.split_once(' ') {
                        family = f.to_string();
                        rest = r2;
                    }
                }
                if let Some(p) = rest
                    .strip_prefix("priority ")
                    .and_then(|p| p.trim().parse().ok())
                {
                    d.alts.insert(
                        path.to_string(),
                        Alt {
                            priority: p,
                            family,
                            subs: Vec::new(),
                        },
                    );
                    current = Some(path.to_string());
                    continue;
                }
            }
            current = None;
        } else if let Some(f) = follower {
            if line.starts_with(char::is_whitespace) {
                if let Some((name, path)) = f.split_once(": ") {
                    if let Some(alt) = current.as_ref().and_then(|c| d.alts.get_mut(c)) {
                        if path != "(null)" {
                            alt.subs
                                .push((name.to_string(), path.to_string(), String::new()));
                        }
                    }
                } else if let Some((name, link)) = f.split_once(" is ") {
                    if current.is_none() {
                        follower_links.insert(name.to_string(), link.to_string());
                    }
                }
            }
        } else if !line.starts_with(char::is_whitespace) {
            current = None;
        }
    }
    for alt in d.alts.values_mut() {
        for s in alt.subs.iter_mut() {
            s.2 = follower_links.get(&s.0).cloned().unwrap_or_default();
        }
    }
    d
}

fn subs_json(subs: &[Sub]) -> Value {
    Value::from(
        subs.iter()
            .map(|(n, p, l)| json!({"name": n, "path": p, "link": l}))
            .collect::<Vec<_>>(),
    )
}

#[async_trait]
impl Module for Alternatives {
    fn name(&self) -> &'static str {
        "alternatives"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let name = str_req(args, &["name"])?;
        let path = str_opt(args, &["path"])?;
        let family = str_opt(args, &["family"])?;
        if path.is_none() && family.is_none() {
            anyhow::bail!("one of the following is required: path, family");
        }
        let link_arg = str_opt(args, &["link"])?;
        let prio_arg = int_opt(args, &["priority"])?;
        let state = choice(
            args,
            &["state"],
            &["present", "selected", "absent", "auto"],
            "selected",
        )?;
        let subs_arg: Option<Vec<Sub>> = match get(args, &["subcommands"]) {
            None => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|i| {
                        let f = |k: &str| {
                            i.get(k)
                                .and_then(Value::as_str)
                                .map(String::from)
                                .ok_or_else(|| {
                                    anyhow::anyhow!("argument subcommands: each needs {k}")
                                })
                        };
                        Ok((f("name")?, f("path")?, f("link")?))
                    })
                    .collect::<anyhow::Result<_>>()?,
            ),
            Some(other) => anyhow::bail!("argument subcommands: expected a list, got {other}"),
        };
        let out = ctx
            .run(&format!(
                "command -v update-alternatives >/dev/null 2>&1 || {{ echo @@MISSING; exit 0; }}; \
                 LC_ALL=C update-alternatives --display {} 2>/dev/null; \
                 [ -e {} ] && echo @@PATH_EXISTS; exit 0",
                sh_quote(&name),
                sh_quote(path.as_deref().unwrap_or("/nonexistent-path"))
            ))
            .await?;
        let mut plan = Plan::default();
        if out.stdout.starts_with("@@MISSING") {
            plan.failed = Some("Failed to find required executable \"update-alternatives\"".into());
            return Ok(plan);
        }
        let path_exists = out.stdout.contains("@@PATH_EXISTS");
        let d = parse_display(&out.stdout.replace("@@PATH_EXISTS\n", ""));
        let link = link_arg.clone().or_else(|| d.link.clone());
        let cur_alt = path.as_ref().and_then(|p| d.alts.get(p));
        let priority = prio_arg.or(cur_alt.map(|a| a.priority)).unwrap_or(50);
        let subs = subs_arg
            .clone()
            .or_else(|| cur_alt.map(|a| a.subs.clone()).filter(|s| !s.is_empty()));
        let mut before = Map::new();
        match cur_alt {
            Some(a) => {
                before.insert("state".into(), "present".into());
                before.insert("path".into(), Value::from(path.clone()));
                before.insert("priority".into(), Value::from(a.priority));
                before.insert("link".into(), Value::from(d.link.clone()));
                if !a.subs.is_empty() {
                    before.insert("subcommands".into(), subs_json(&a.subs));
                }
                if d.mode.as_deref() == Some("manual") && d.current_path != path {
                    before.insert("state".into(), "selected".into());
                }
            }
            None => {
                before.insert("state".into(), "absent".into());
            }
        }
        let mut after = Map::new();
        let mut messages = Vec::new();
        let q = sh_quote(&name);
        let mut change = |plan: &mut Plan, msg: String, cmd: String| {
            plan.changes.push(Change {
                summary: msg.clone(),
                diff: None,
            });
            plan.ops.push(exec(format!("LC_ALL=C {cmd}")));
            messages.push(msg);
        };
        if state != "absent" {
            let needs_install = path.as_ref().is_some_and(|p| match d.alts.get(p) {
                None => true,
                Some(a) => {
                    prio_arg.is_some_and(|pr| pr != a.priority)
                        || subs_arg.as_ref().is_some_and(|s| {
                            !s.iter().all(|x| {
                                a.subs.iter().any(|y| {
                                    y.0 == x.0 && y.1 == x.1 && (y.2 == x.2 || y.2.is_empty())
                                })
                            }) || !a
                                .subs
                                .iter()
                                .all(|y| s.iter().any(|x| y.0 == x.0 && y.1 == x.1))
                        })
                }
            });
            if needs_install {
                let p = path.clone().unwrap_or_default();
                if !path_exists {
                    plan.failed = Some(format!("Specified path {p} does not exist"));
                    return Ok(plan);
                }
                let Some(l) = &link else {
                    plan.failed = Some(
                        "Needed to install the alternative, but unable to do so as we are missing the link"
                            .into(),
                    );
                    return Ok(plan);
                };
                let mut cmd = format!(
                    "update-alternatives --install {} {q} {} {priority}",
                    sh_quote(l),
                    sh_quote(&p)
                );
                if let Some(f) = &family {
                    cmd.push_str(&format!(" --family {}", sh_quote(f)));
                }
                if subs_arg.is_some() {
                    for (n, sp, sl) in subs.iter().flatten() {
                        cmd.push_str(&format!(
                            " --slave {} {} {}",
                            sh_quote(sl),
                            sh_quote(n),
                            sh_quote(sp)
                        ));
                    }
                }
                change(
                    &mut plan,
                    format!("Install alternative '{p}' for '{name}'."),
                    cmd,
                );
                after.insert("state".into(), "present".into());
                after.insert("path".into(), Value::from(p));
                after.insert("family".into(), Value::from(family.clone()));
                after.insert("priority".into(), Value::from(priority));
                after.insert("link".into(), Value::from(link.clone()));
                if let Some(s) = &subs {
                    after.insert("subcommands".into(), subs_json(s));
                }
            }
            let same_path = path.is_some() && d.current_path == path;
            let same_family = d
                .current_path
                .as_ref()
                .and_then(|c| d.alts.get(c))
                .is_some_and(|a| Some(a.family.as_str()) == family.as_deref());
            if state == "selected" && !(same_path || same_family) {
                let arg = path.clone().or(family.clone()).unwrap_or_default();
                change(
                    &mut plan,
                    format!("Set alternative '{arg}' for '{name}'."),
                    format!("update-alternatives --set {q} {}", sh_quote(&arg)),
                );
                after.insert("state".into(), "selected".into());
            }
            if state == "auto" && d.mode.as_deref() == Some("manual") {
                change(
                    &mut plan,
                    format!("Set alternative to auto for '{name}'."),
                    format!("update-alternatives --auto {q}"),
                );
                after.insert("state".into(), "present".into());
            }
        } else if let Some(p) = path.as_ref().filter(|p| d.alts.contains_key(*p)) {
            change(
                &mut plan,
                format!("Remove alternative '{p}' from '{name}'."),
                format!("update-alternatives --remove {q} {}", sh_quote(p)),
            );
            after.insert("state".into(), "absent".into());
        }
        plan.result = super::args::vars([
            ("msg", Value::from(messages.join(" "))),
            (
                "diff",
                json!({"before": Value::Object(before), "after": Value::Object(after)}),
            ),
        ]);
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_update_alternatives_display() {
        let out = "editor - manual mode\n  link best version is /bin/nano\n  link currently points to /usr/bin/vim.basic\n  link editor is /usr/bin/editor\n  slave editor.1.gz is /usr/share/man/man1/editor.1.gz\n/bin/nano - priority 40\n  slave editor.1.gz: /usr/share/man/man1/nano.1.gz\n/usr/bin/vim.basic - family vim priority 30\n  slave editor.1.gz: (null)\n";
        let d = parse_display(out);
        assert_eq!(d.mode.as_deref(), Some("manual"));
        assert_eq!(d.current_path.as_deref(), Some("/usr/bin/vim.basic"));
        assert_eq!(d.link.as_deref(), Some("/usr/bin/editor"));
        assert_eq!(d.alts["/bin/nano"].priority, 40);
        assert_eq!(
            d.alts["/bin/nano"].subs,
            vec![(
                "editor.1.gz".to_string(),
                "/usr/share/man/man1/nano.1.gz".to_string(),
                "/usr/share/man/man1/editor.1.gz".to_string()
            )]
        );
        assert_eq!(d.alts["/usr/bin/vim.basic"].family, "vim");
        assert!(d.alts["/usr/bin/vim.basic"].subs.is_empty());
        assert_eq!(parse_display(""), Display::default());
    }
}
