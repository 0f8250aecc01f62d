//! `debconf`: one answer in the debconf database (`name` = package, `question`, `vtype`,
//! `value`, `unseen`), read with `debconf-show PKG` and set with `debconf-set-selections`,
//! as Ansible does. Booleans compare lower-cased, a `multiselect` list compares sorted, a
//! password (which `debconf-show` hides) is read with `debconf-get-selections`
//! (debconf-utils, required as in Ansible). Results: `current`, `previous`, `msg`, `diff`.
//!
//! Unlike Ansible, a non-string value (`value: 8080`) compares as its text: Ansible compares
//! the number with debconf's string and so reports a change on every run.

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::args::{bool_arg, get, scalar_text, sh_quote, str_opt, str_req};
use super::{ArgDef, ArgSpec, Change, HostCtx, Module, Op, Plan, TextDiff};
use crate::Vars;

pub struct Debconf;

const ARGS: &[ArgDef] = &[
    ArgDef {
        name: "name",
        aliases: &["pkg"],
        required: true,
    },
    ArgDef::alias("question", &["selection", "setting"]),
    ArgDef::opt("vtype"),
    ArgDef::alias("value", &["answer"]),
    ArgDef::opt("unseen"),
];

const VTYPES: &[&str] = &[
    "boolean",
    "error",
    "multiselect",
    "note",
    "password",
    "seen",
    "select",
    "string",
    "text",
    "title",
];

/// `debconf-show` output: `* question: value` lines -> question -> value.
pub fn parse_show(out: &str) -> Map<String, Value> {
    let mut m = Map::new();
    for line in out.lines() {
        if let Some((k, v)) = line.split_once(':') {
            m.insert(
                k.trim().trim_matches('*').trim().to_string(),
                Value::from(v.trim()),
            );
        }
    }
    m
}

/// A password from `debconf-get-selections` output (Ansible's `get_password_value`).
pub fn password_value(out: &str, pkg: &str, question: &str, vtype: &str) -> String {
    for line in out.lines().filter(|l| l.starts_with(pkg)) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() <= 3 {
            return String::new();
        }
        if f[1] == question && f[2] == vtype {
            return f[3].to_string();
        }
    }
    String::new()
}

/// The wanted value as text, and whether it differs from `existing`.
pub fn differs(vtype: &str, value: &Value, existing: &str) -> anyhow::Result<(String, bool)> {
    match (vtype, value) {
        ("multiselect", Value::Array(items)) => {
            let mut want: Vec<String> = items
                .iter()
                .map(|v| scalar_text("value", v))
                .collect::<anyhow::Result<_>>()?;
            want.sort();
            let mut have: Vec<String> = existing.split(',').map(|s| s.trim().to_string()).collect();
            have.sort();
            Ok((want.join(", "), want != have))
        }
        ("boolean", v) => {
            let t = scalar_text("value", v)?.to_lowercase();
            let changed = t != existing.to_lowercase();
            Ok((t, changed))
        }
        (_, v) => {
            let t = scalar_text("value", v)?;
            let changed = t != existing;
            Ok((t, changed))
        }
    }
}

#[async_trait]
impl Module for Debconf {
    fn name(&self) -> &'static str {
        "debconf"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let pkg = str_req(args, &["name"])?;
        let question = str_opt(args, &["question"])?;
        let vtype = str_opt(args, &["vtype"])?;
        let value = get(args, &["value"]).cloned();
        let unseen = bool_arg(args, &["unseen"], false)?;
        if let Some(v) = &vtype {
            if !VTYPES.contains(&v.as_str()) {
                anyhow::bail!("argument vtype: {v:?} is not one of {}", VTYPES.join(", "));
            }
        }
        let given = [question.is_some(), vtype.is_some(), value.is_some()];
        if given.iter().any(|g| *g) && !given.iter().all(|g| *g) {
            anyhow::bail!("parameters are required together: question, vtype, value");
        }
        let mut plan = Plan::default();
        let password = vtype.as_deref() == Some("password");
        let mut script = format!("debconf-show {}", sh_quote(&pkg));
        if password {
            script.push_str(
                "; rc=$?; echo @@SELECTIONS; debconf-get-selections || echo @@NOGETSEL; exit $rc",
            );
        }
        let out = ctx.run(&script).await?;
        if out.rc != 0 {
            plan.failed = Some(out.stderr.trim().to_string());
            return Ok(plan);
        }
        let (show, selections) = match out.stdout.split_once("@@SELECTIONS\n") {
            Some((a, b)) => (a, Some(b)),
            None => (out.stdout.as_str(), None),
        };
        let prev = parse_show(show);
        let (Some(q), Some(vt), Some(val)) = (question, vtype, value) else {
            plan.result =
                super::args::vars([("msg", Value::from("")), ("current", Value::Object(prev))]);
            return Ok(plan);
        };
        let existing = match prev.get(&q) {
            None => None,
            Some(_) if password => {
                let sel = selections.unwrap_or("");
                if sel.contains("@@NOGETSEL") {
                    plan.failed = Some(
                        "Failed to find required executable \"debconf-get-selections\" \
                         (package debconf-utils)"
                            .into(),
                    );
                    return Ok(plan);
                }
                Some(password_value(sel, &pkg, &q, &vt))
            }
            Some(v) => Some(v.as_str().unwrap_or("").to_string()),
        };
        let (text, changed) = match &existing {
            None => (differs(&vt, &val, "")?.0, true),
            Some(e) => differs(&vt, &val, e)?,
        };
        if !changed {
            plan.result =
                super::args::vars([("msg", Value::from("")), ("current", Value::Object(prev))]);
            return Ok(plan);
        }
        let before = existing.clone().unwrap_or_default();
        // As Ansible: a new question's `previous` is every answer of the package plus it.
        let previous = if existing.is_some() {
            json!({ q.clone(): before })
        } else {
            let mut all = prev.clone();
            all.insert(q.clone(), Value::from(""));
            Value::Object(all)
        };
        let current = json!({ q.clone(): text.clone() });
        let mut after = previous.clone();
        if let Some(a) = after.as_object_mut() {
            a.insert(q.clone(), Value::from(text.clone()));
        }
        plan.changes.push(Change {
            summary: format!(
                "{pkg} {q} ({vt}) = {}",
                if password { "********" } else { &text }
            ),
            diff: Some(TextDiff {
                before_header: "before".into(),
                after_header: "after".into(),
                before: format!("{q}: {before}\n"),
                after: format!("{q}: {text}\n"),
            }),
        });
        let u = if unseen { " -u" } else { "" };
        plan.ops.push(Op::Exec {
            cmd: format!("debconf-set-selections{u}"),
            stdin: Some(format!("{pkg} {q} {vt} {text}").into_bytes()),
            chdir: None,
            allow_failure: false,
        });
        plan.result = super::args::vars([
            ("msg", Value::from("")),
            ("current", current.clone()),
            ("previous", previous.clone()),
            ("diff", json!({"before": previous, "after": after})),
        ]);
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_debconf_show_and_compares_as_ansible() {
        let m = parse_show("* tzdata/Areas: Europe\n  tzdata/Zones/Etc: UTC\n  x/empty:\n");
        assert_eq!(m["tzdata/Areas"], "Europe");
        assert_eq!(m["tzdata/Zones/Etc"], "UTC");
        assert_eq!(m["x/empty"], "");
        assert!(!differs("boolean", &json!(true), "true").unwrap().1);
        assert!(!differs("boolean", &json!("True"), "true").unwrap().1);
        let (t, c) = differs("multiselect", &json!(["b", "a"]), "a, b").unwrap();
        assert_eq!((t.as_str(), c), ("a, b", false));
        assert!(differs("string", &json!(8080), "8081").unwrap().1);
        assert_eq!(
            password_value(
                "mysql\tmysql/pw\tpassword\tsecret\n",
                "mysql",
                "mysql/pw",
                "password"
            ),
            "secret"
        );
    }
}
