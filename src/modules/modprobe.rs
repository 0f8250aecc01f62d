//! `modprobe` (community.general): a kernel module loaded (`present`) or not (`absent`),
//! with `params`, and loaded at boot (`persistent: present` writes
//! `/etc/modules-load.d/NAME.conf` and `/etc/modprobe.d/NAME.conf`; `absent` comments the
//! module's lines out). Loaded means listed in `/proc/modules` or built in
//! (`modules.builtin`); like Ansible, the task fails when those cannot be read (as in
//! containers without /proc/modules), and check mode runs `modprobe -n` to fail where a
//! real run would. Ansible rewrites a file whose lines it comments out by joining the
//! lines (which keep their newline) with `\n`, so each line gains an empty one after it;
//! that is reproduced, for the same end state. Observed in one round trip.

use async_trait::async_trait;
use base64::Engine;
use serde_json::Value;

use super::args::{choice, sh_quote, str_opt, str_req};
use super::fileops::exec;
use super::{ArgDef, ArgSpec, Change, HostCtx, Module, Op, Plan};
use crate::transport::FileAttrs;
use crate::Vars;

pub struct Modprobe;

const ARGS: &[ArgDef] = &[
    ArgDef::req("name"),
    ArgDef::opt("state"),
    ArgDef::opt("params"),
    ArgDef::opt("persistent"),
];

const MODULES_LOAD: &str = "/etc/modules-load.d";
const MODPROBE_D: &str = "/etc/modprobe.d";

/// A trailing `#`/`;` comment and spaces, as Ansible's ` *(?:[#;].*)?` allows.
fn rest_is_comment(rest: &str) -> bool {
    let r = rest.trim_start_matches(' ');
    r.is_empty() || r.starts_with('#') || r.starts_with(';')
}

/// Ansible's `re_find_module`: ` *NAME *(comment)?`.
pub fn is_module_line(line: &str, name: &str) -> bool {
    let l = line.strip_suffix('\n').unwrap_or(line);
    l.trim_start_matches(' ')
        .strip_prefix(name)
        .is_some_and(rest_is_comment)
}

/// Ansible's `re_get_params_and_values`: `options NAME key=value (comment)?` -> key=value.
pub fn param_of_line(line: &str, name: &str) -> Option<String> {
    let l = line.strip_suffix('\n').unwrap_or(line);
    let rest = l.strip_prefix(&format!("options {name} "))?;
    let end = rest.find([' ', '#', ';']).unwrap_or(rest.len());
    let (kv, tail) = rest.split_at(end);
    let (k, v) = kv.split_once('=')?;
    let ok = !k.is_empty()
        && k.chars().all(|c| c.is_alphanumeric() || c == '_')
        && !v.is_empty()
        && rest_is_comment(tail);
    ok.then(|| kv.to_string())
}

/// Comments out the lines `hit` matches; None when none does. Lines are joined with `\n`
/// after keeping their own newline, as Ansible writes them.
pub fn comment_out(content: &str, hit: impl Fn(&str) -> bool) -> Option<String> {
    let lines: Vec<String> = content.split_inclusive('\n').map(String::from).collect();
    let mut changed = false;
    let out: Vec<String> = lines
        .into_iter()
        .map(|l| {
            if hit(&l) {
                changed = true;
                format!("#{l}")
            } else {
                l
            }
        })
        .collect();
    changed.then(|| out.join("\n"))
}

/// Files of a folder as (path, content).
type Files = Vec<(String, String)>;

fn parse_files(out: &str, tag: &str) -> anyhow::Result<Files> {
    let b64 = base64::engine::general_purpose::STANDARD;
    out.lines()
        .filter_map(|l| l.strip_prefix(tag))
        .map(|rest| {
            let (path, data) = rest.split_once(' ').unwrap_or((rest, ""));
            Ok((
                path.to_string(),
                String::from_utf8_lossy(&b64.decode(data.trim())?).into_owned(),
            ))
        })
        .collect()
}

#[async_trait]
impl Module for Modprobe {
    fn name(&self) -> &'static str {
        "modprobe"
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
        let present = choice(args, &["state"], &["present", "absent"], "present")? == "present";
        let params = str_opt(args, &["params"])?.unwrap_or_default();
        let persistent = choice(
            args,
            &["persistent"],
            &["disabled", "present", "absent"],
            "disabled",
        )?;
        let q = sh_quote(&name);
        let qparams = params
            .split_whitespace()
            .map(sh_quote)
            .collect::<Vec<_>>()
            .join(" ");
        let proc_name = sh_quote(&format!("{} ", name.replace('-', "_")));
        let ko = sh_quote(&format!("/{name}.ko"));
        let script = format!(
            "command -v modprobe >/dev/null 2>&1 || {{ echo @@NOMODPROBE; exit 0; }}\n\
             rel=$(uname -r)\n\
             if [ ! -r /proc/modules ]; then echo @@NOPROC; \
             elif grep -q \"^\"{proc_name} /proc/modules; then echo @@LOADED; \
             elif [ ! -r /lib/modules/$rel/modules.builtin ]; then echo \"@@NOBUILTIN /lib/modules/$rel/modules.builtin\"; \
             elif grep -q -- {ko}\"\\$\" /lib/modules/$rel/modules.builtin; then echo @@LOADED; fi\n\
             for f in {MODULES_LOAD}/* {MODPROBE_D}/*; do [ -f \"$f\" ] || continue; \
               case $f in {MODULES_LOAD}/*) t=@@ML;; *) t=@@MP;; esac; echo \"$t $f $(base64 -w0 < \"$f\")\"; done\n\
             if [ \"$1\" = dry ]; then err=$(modprobe -n {q} {qparams} 2>&1 >/dev/null); echo \"@@DRY $? $(printf '%s' \"$err\" | base64 -w0)\"; fi\n\
             exit 0\n"
        );
        let dry = if present { "dry" } else { "" };
        let out = ctx.run(&format!("set -- {dry}\n{script}")).await?;
        let text = out.stdout.as_str();
        let mut plan = Plan {
            result: super::args::vars([
                ("name", Value::from(name.clone())),
                ("params", Value::from(params.clone())),
                (
                    "state",
                    Value::from(if present { "present" } else { "absent" }),
                ),
            ]),
            ..Default::default()
        };
        if text.contains("@@NOMODPROBE") {
            plan.failed = Some("Failed to find required executable \"modprobe\"".into());
            return Ok(plan);
        }
        if text.contains("@@NOPROC") {
            plan.failed = Some("[Errno 2] No such file or directory: '/proc/modules'".into());
            return Ok(plan);
        }
        if let Some(p) = text.lines().find_map(|l| l.strip_prefix("@@NOBUILTIN ")) {
            plan.failed = Some(format!("[Errno 2] No such file or directory: '{p}'"));
            return Ok(plan);
        }
        let loaded = text.lines().any(|l| l == "@@LOADED");
        if present && !loaded {
            let dry = text
                .lines()
                .find_map(|l| l.strip_prefix("@@DRY "))
                .unwrap_or("0");
            let (rc, err) = dry.split_once(' ').unwrap_or((dry, ""));
            if rc != "0" {
                let err = base64::engine::general_purpose::STANDARD
                    .decode(err.trim())
                    .map(|e| String::from_utf8_lossy(&e).into_owned())
                    .unwrap_or_default();
                plan.failed = Some(err.trim().to_string());
                return Ok(plan);
            }
            plan.changes.push(Change {
                summary: format!("load {name}"),
                diff: None,
            });
            plan.ops.push(exec(format!("modprobe {q} {qparams}")));
        } else if !present && loaded {
            plan.changes.push(Change {
                summary: format!("unload {name}"),
                diff: None,
            });
            plan.ops.push(exec(format!("modprobe -r {q}")));
        }
        let ml = parse_files(text, "@@ML ")?;
        let mp = parse_files(text, "@@MP ")?;
        let persistently = ml
            .iter()
            .any(|(_, c)| c.split_inclusive('\n').any(|l| is_module_line(l, &name)));
        let mut permanent: Vec<String> = mp
            .iter()
            .flat_map(|(_, c)| {
                c.split_inclusive('\n')
                    .filter_map(|l| param_of_line(l, &name))
                    .collect::<Vec<_>>()
            })
            .collect();
        permanent.sort();
        permanent.dedup();
        let mut wanted: Vec<String> = params.split_whitespace().map(String::from).collect();
        wanted.sort();
        wanted.dedup();
        let params_set = wanted == permanent;
        let write = |plan: &mut Plan, path: String, content: String| {
            plan.ops.push(Op::Write {
                path,
                content: content.into_bytes(),
                attrs: FileAttrs::default(),
                backup: false,
                validate: None,
            });
        };
        let disable_params = |plan: &mut Plan| {
            for (path, c) in &mp {
                if let Some(new) = comment_out(c, |l| param_of_line(l, &name).is_some()) {
                    write(plan, path.clone(), new);
                }
            }
        };
        if persistent == "present" && !(persistently && params_set) {
            if !persistently {
                plan.changes.push(Change {
                    summary: format!("load {name} at boot ({MODULES_LOAD}/{name}.conf)"),
                    diff: None,
                });
                write(
                    &mut plan,
                    format!("{MODULES_LOAD}/{name}.conf"),
                    format!("{name}\n"),
                );
            }
            if !params_set {
                disable_params(&mut plan);
                let lines: Vec<String> = params
                    .split_whitespace()
                    .map(|p| format!("options {name} {p}"))
                    .collect();
                plan.changes.push(Change {
                    summary: format!("options of {name} at boot ({MODPROBE_D}/{name}.conf)"),
                    diff: None,
                });
                plan.ops.push(exec(format!("mkdir -p {MODPROBE_D}")));
                write(
                    &mut plan,
                    format!("{MODPROBE_D}/{name}.conf"),
                    format!("{}\n", lines.join("\n")),
                );
            }
        } else if persistent == "absent" && (persistently || !permanent.is_empty()) {
            plan.changes.push(Change {
                summary: format!("do not load {name} at boot"),
                diff: None,
            });
            for (path, c) in &ml {
                if let Some(new) = comment_out(c, |l| is_module_line(l, &name)) {
                    write(&mut plan, path.clone(), new);
                }
            }
            disable_params(&mut plan);
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_match_like_ansibles_regexes() {
        assert!(is_module_line("dummy\n", "dummy"));
        assert!(is_module_line("  dummy  # at boot\n", "dummy"));
        assert!(!is_module_line("dummy2\n", "dummy"));
        assert_eq!(
            param_of_line("options dummy numdummies=2\n", "dummy").as_deref(),
            Some("numdummies=2")
        );
        assert_eq!(param_of_line("options dummy a=1 b=2\n", "dummy"), None);
        assert_eq!(
            comment_out("a\ndummy\n", |l| is_module_line(l, "dummy")).as_deref(),
            Some("a\n\n#dummy\n")
        );
    }
}
