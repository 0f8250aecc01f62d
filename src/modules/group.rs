//! `group`: a local group present (with `gid`, `system`) or absent, through
//! groupadd/groupmod/groupdel. Observed by reading `/etc/group` (one `getent group` exec
//! when the group is not listed there).

use async_trait::async_trait;
use serde_json::Value;

use super::args::{bool_arg, choice, int_opt, sh_quote, str_req};
use super::fileops::exec;
use super::{ArgDef, ArgSpec, Change, HostCtx, Module, Plan};
use crate::Vars;

pub struct Group;

const ARGS: &[ArgDef] = &[
    ArgDef::req("name"),
    ArgDef::opt("gid"),
    ArgDef::opt("state"),
    ArgDef::opt("system"),
    ArgDef::opt("non_unique"),
    ArgDef::opt("force"),
    ArgDef::opt("local"),
];

/// Plans a group from its observed gid (`None`: absent). Pure.
pub fn plan_group(
    name: &str,
    cur: Option<u32>,
    present: bool,
    gid: Option<i64>,
    system: bool,
    non_unique: bool,
) -> Plan {
    let mut plan = Plan::default();
    let q = sh_quote(name);
    let o = if non_unique { " -o" } else { "" };
    match (cur, present) {
        (None, true) => {
            let mut cmd = String::from("groupadd");
            if let Some(g) = gid {
                cmd.push_str(&format!(" -g {g}{o}"));
            }
            if system {
                cmd.push_str(" -r");
            }
            plan.changes.push(Change {
                summary: format!("create group {name}"),
                diff: None,
            });
            plan.ops.push(exec(format!("{cmd} {q}")));
        }
        (Some(have), true) => {
            if let Some(g) = gid.filter(|g| *g != i64::from(have)) {
                plan.changes.push(Change {
                    summary: format!("group {name}: gid {have} -> {g}"),
                    diff: None,
                });
                plan.ops.push(exec(format!("groupmod -g {g}{o} {q}")));
            }
        }
        (Some(_), false) => {
            plan.changes.push(Change {
                summary: format!("remove group {name}"),
                diff: None,
            });
            plan.ops.push(exec(format!("groupdel {q}")));
        }
        (None, false) => {}
    }
    plan
}

/// The group's gid (`None`: no such group): from `/etc/group` read over the transport (no
/// process on the host), else one `getent group` for a group that file lacks (NSS) or
/// under a `become` that escalates (where a read would go through sudo anyway).
async fn observe_gid(ctx: &HostCtx, name: &str) -> anyhow::Result<Option<u32>> {
    if !ctx.escalates() {
        if let Some(text) = ctx.reads.files.read(&ctx.transport, "/etc/group").await? {
            if let Some(gid) = super::fileops::id_in_db(&text, name) {
                return Ok(Some(gid));
            }
        }
    }
    let out = ctx
        .run(&format!("getent group {} || true", sh_quote(name)))
        .await?;
    Ok(out
        .stdout
        .lines()
        .next()
        .and_then(|l| l.split(':').nth(2))
        .and_then(|g| g.trim().parse::<u32>().ok()))
}

#[async_trait]
impl Module for Group {
    fn name(&self) -> &'static str {
        "group"
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
        let gid = int_opt(args, &["gid"])?;
        let system = bool_arg(args, &["system"], false)?;
        let non_unique = bool_arg(args, &["non_unique"], false)?;
        let cur = observe_gid(ctx, &name).await?;
        let mut plan = plan_group(&name, cur, present, gid, system, non_unique);
        let mut result = super::args::vars([
            ("name", Value::String(name)),
            (
                "state",
                Value::String(if present { "present" } else { "absent" }.into()),
            ),
            ("system", Value::Bool(system)),
        ]);
        if let Some(g) = gid.or(cur.map(i64::from)) {
            result.insert("gid".into(), Value::from(g));
        }
        plan.result = result;
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_plans() {
        assert_eq!(
            plan_group("g", None, true, Some(2000), true, false).ops,
            vec![exec("groupadd -g 2000 -r g".into())]
        );
        assert!(plan_group("g", Some(2000), true, Some(2000), false, false)
            .ops
            .is_empty());
        assert!(plan_group("g", Some(2000), true, None, false, false)
            .ops
            .is_empty());
        assert_eq!(
            plan_group("g", Some(1), true, Some(2), false, false).ops,
            vec![exec("groupmod -g 2 g".into())]
        );
        assert_eq!(
            plan_group("g", Some(1), false, None, false, false).ops,
            vec![exec("groupdel g".into())]
        );
        assert!(plan_group("g", None, false, None, false, false)
            .ops
            .is_empty());
    }
}
