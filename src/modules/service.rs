//! `service`, `systemd` (and `systemd_service`): a unit's run state (started, stopped,
//! restarted, reloaded), whether it is enabled or masked, and `daemon_reload`. Observed
//! with `systemctl show -p ActiveState,UnitFileState,LoadState,NeedDaemonReload`, through
//! the host's [`super::UnitStates`]: one exec reads every unit the play names.
//! As in Ansible, `daemon_reload` runs first and is not a change by itself; `restarted` and
//! `reloaded` are always changes.
//!
//! With a unit named, `daemon_reload: true` reloads only when systemd says that unit needs
//! it: its unit file, source file (fstab, init script) or drop-ins changed on disk since
//! systemd loaded them (`NeedDaemonReload`), or it is not loaded (a new unit file). A
//! reload reruns every generator and reparses every unit, the largest cost of a converged
//! run on the host, and skipping it when systemd reports nothing to reload leaves the
//! same state. A change to *another* unit is not looked at: name that unit, or use
//! `daemon_reload` without a name, which always reloads.

use async_trait::async_trait;
use serde_json::Value;

use super::args::{bool_arg, bool_opt, choice, sh_quote, str_opt};
use super::fileops::exec;
use super::{ArgDef, ArgSpec, Change, HostCtx, Module, Plan};
use crate::Vars;

pub struct Service;
pub struct Systemd;

const ARGS: &[ArgDef] = &[
    ArgDef::alias("name", &["service", "unit"]),
    ArgDef::opt("state"),
    ArgDef::opt("enabled"),
    ArgDef::alias("daemon_reload", &["daemon-reload"]),
    ArgDef::alias("daemon_reexec", &["daemon-reexec"]),
    ArgDef::opt("masked"),
    ArgDef::opt("scope"),
    ArgDef::opt("no_block"),
    ArgDef::opt("force"),
    ArgDef::opt("pattern"),
    ArgDef::opt("sleep"),
    ArgDef::opt("arguments"),
    ArgDef::opt("runlevel"),
    ArgDef::opt("use"),
];

const STATES: &[&str] = &["started", "stopped", "restarted", "reloaded"];

/// A unit as `systemctl show` describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitState {
    pub active: String,
    pub unit_file: String,
    pub load: String,
    /// systemd's `NeedDaemonReload`: the unit's files changed on disk since it was loaded.
    pub need_reload: bool,
}

impl UnitState {
    pub fn parse(out: &str) -> UnitState {
        let mut s = UnitState::default();
        for line in out.lines() {
            if let Some((k, v)) = line.split_once('=') {
                match k {
                    "ActiveState" => s.active = v.trim().to_string(),
                    "UnitFileState" => s.unit_file = v.trim().to_string(),
                    "LoadState" => s.load = v.trim().to_string(),
                    "NeedDaemonReload" => s.need_reload = v.trim() == "yes",
                    _ => {}
                }
            }
        }
        s
    }

    pub fn is_running(&self) -> bool {
        matches!(self.active.as_str(), "active" | "activating" | "reloading")
    }

    /// `systemctl is-enabled` would exit 0.
    pub fn is_enabled(&self) -> bool {
        matches!(
            self.unit_file.as_str(),
            "enabled" | "enabled-runtime" | "static" | "generated" | "transient"
        )
    }
}

/// Plans the state of one unit from its observed state (pure).
pub fn plan_unit(
    name: &str,
    cur: &UnitState,
    state: Option<&str>,
    enabled: Option<bool>,
    masked: Option<bool>,
    daemon_reload: bool,
    no_block: bool,
) -> Plan {
    let mut plan = Plan::default();
    let q = sh_quote(name);
    let nb = if no_block { " --no-block" } else { "" };
    if daemon_reload && (cur.need_reload || cur.load != "loaded") {
        plan.ops.push(exec("systemctl daemon-reload".into()));
    }
    let wants_unit = state.is_some() || enabled.is_some() || masked == Some(false);
    if cur.load == "not-found" && wants_unit && !daemon_reload {
        plan.failed = Some(format!("Could not find the requested service {name}: host"));
        return plan;
    }
    let change = |plan: &mut Plan, summary: String, cmd: String| {
        plan.changes.push(Change {
            summary,
            diff: None,
        });
        plan.ops.push(exec(cmd));
    };
    if masked == Some(false) && cur.unit_file == "masked" {
        change(
            &mut plan,
            format!("unmask {name}"),
            format!("systemctl unmask {q}"),
        );
    }
    if masked == Some(true) && cur.unit_file != "masked" {
        change(
            &mut plan,
            format!("mask {name}"),
            format!("systemctl mask {q}"),
        );
    }
    match enabled {
        Some(true) if !cur.is_enabled() => change(
            &mut plan,
            format!("enable {name}"),
            format!("systemctl enable {q}"),
        ),
        Some(false) if cur.is_enabled() && cur.unit_file != "static" => change(
            &mut plan,
            format!("disable {name}"),
            format!("systemctl disable {q}"),
        ),
        _ => {}
    }
    match state {
        Some("started") if !cur.is_running() => change(
            &mut plan,
            format!("start {name}"),
            format!("systemctl{nb} start {q}"),
        ),
        Some("stopped") if cur.is_running() || cur.active == "deactivating" => change(
            &mut plan,
            format!("stop {name}"),
            format!("systemctl{nb} stop {q}"),
        ),
        Some("restarted") => change(
            &mut plan,
            format!("restart {name}"),
            format!("systemctl{nb} restart {q}"),
        ),
        Some("reloaded") if cur.is_running() => change(
            &mut plan,
            format!("reload {name}"),
            format!("systemctl{nb} reload {q}"),
        ),
        Some("reloaded") => change(
            &mut plan,
            format!("start {name}"),
            format!("systemctl{nb} start {q}"),
        ),
        _ => {}
    }
    plan
}

async fn plan_service(ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
    let name = str_opt(args, &["name"])?;
    let state = match str_opt(args, &["state"])? {
        Some(_) => Some(choice(args, &["state"], STATES, "started")?),
        None => None,
    };
    let enabled = bool_opt(args, &["enabled"])?;
    let masked = bool_opt(args, &["masked"])?;
    let daemon_reload = bool_arg(args, &["daemon_reload"], false)?;
    let daemon_reexec = bool_arg(args, &["daemon_reexec"], false)?;
    let no_block = bool_arg(args, &["no_block"], false)?;
    if let Some(scope) = str_opt(args, &["scope"])? {
        if scope != "system" {
            anyhow::bail!("argument scope: only system is supported, not {scope:?}");
        }
    }
    let Some(name) = name else {
        if state.is_some() || enabled.is_some() || masked.is_some() {
            anyhow::bail!("missing required argument: name");
        }
        let mut plan = Plan::default();
        if daemon_reload {
            plan.ops.push(exec("systemctl daemon-reload".into()));
        }
        if daemon_reexec {
            plan.ops.push(exec("systemctl daemon-reexec".into()));
        }
        return Ok(plan);
    };
    let cur = ctx.reads.units.get(ctx, &name).await?;
    let mut plan = plan_unit(
        &name,
        &cur,
        state.as_deref(),
        enabled,
        masked,
        daemon_reload,
        no_block,
    );
    let mut result = super::args::vars([
        ("name", Value::String(name.clone())),
        (
            "status",
            serde_json::json!({
                "ActiveState": cur.active,
                "UnitFileState": cur.unit_file,
                "LoadState": cur.load,
            }),
        ),
    ]);
    if let Some(s) = &state {
        result.insert("state".into(), Value::String(s.clone()));
    }
    if let Some(e) = enabled {
        result.insert("enabled".into(), Value::Bool(e));
    }
    plan.result = result;
    Ok(plan)
}

#[async_trait]
impl Module for Service {
    fn name(&self) -> &'static str {
        "service"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        if str_opt(args, &["name"])?.is_none() {
            anyhow::bail!("missing required argument: name");
        }
        plan_service(ctx, args).await
    }
}

#[async_trait]
impl Module for Systemd {
    fn name(&self) -> &'static str {
        "systemd"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        plan_service(ctx, args).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(active: &str, file: &str) -> UnitState {
        UnitState {
            active: active.into(),
            unit_file: file.into(),
            load: "loaded".into(),
            need_reload: false,
        }
    }

    #[test]
    fn parses_systemctl_show() {
        let s = UnitState::parse(
            "LoadState=loaded\nActiveState=inactive\nUnitFileState=disabled\nNeedDaemonReload=no\n",
        );
        assert_eq!(s, unit("inactive", "disabled"));
        let s = UnitState::parse("LoadState=loaded\nNeedDaemonReload=yes\n");
        assert!(s.need_reload);
    }

    #[test]
    fn converged_unit_plans_nothing() {
        let p = plan_unit(
            "ssh",
            &unit("active", "enabled"),
            Some("started"),
            Some(true),
            None,
            false,
            false,
        );
        assert!(p.ops.is_empty() && !p.is_changed());
        let p = plan_unit(
            "x",
            &unit("inactive", "static"),
            Some("stopped"),
            Some(true),
            None,
            false,
            false,
        );
        assert!(p.ops.is_empty());
    }

    #[test]
    fn start_enable_and_restart() {
        let p = plan_unit(
            "nginx",
            &unit("inactive", "disabled"),
            Some("started"),
            Some(true),
            None,
            false,
            false,
        );
        let s: Vec<_> = p.changes.iter().map(|c| c.summary.as_str()).collect();
        assert_eq!(s, vec!["enable nginx", "start nginx"]);
        let p = plan_unit(
            "nginx",
            &unit("active", "enabled"),
            Some("restarted"),
            None,
            None,
            false,
            false,
        );
        assert!(p.is_changed());
        let p = plan_unit(
            "nginx",
            &unit("inactive", "enabled"),
            Some("reloaded"),
            None,
            None,
            false,
            false,
        );
        assert_eq!(p.changes[0].summary, "start nginx");
    }

    #[test]
    fn daemon_reload_alone_is_not_a_change() {
        let stale = UnitState {
            need_reload: true,
            ..unit("active", "enabled")
        };
        let p = plan_unit("x", &stale, Some("started"), None, None, true, false);
        assert_eq!(p.ops.len(), 1);
        assert!(!p.is_changed());
    }

    #[test]
    fn daemon_reload_only_when_systemd_says_the_unit_needs_it() {
        let reloads = |cur: &UnitState| {
            plan_unit("x", cur, Some("started"), None, None, true, false)
                .ops
                .iter()
                .any(|op| matches!(op, crate::modules::Op::Exec { cmd, .. } if cmd == "systemctl daemon-reload"))
        };
        assert!(!reloads(&unit("active", "enabled")));
        let stale = UnitState {
            need_reload: true,
            ..unit("active", "enabled")
        };
        assert!(reloads(&stale));
        let new_file = UnitState {
            load: "not-found".into(),
            ..unit("inactive", "")
        };
        assert!(reloads(&new_file));
    }

    #[test]
    fn masking_and_missing_units() {
        let p = plan_unit(
            "x",
            &unit("inactive", "masked"),
            None,
            None,
            Some(false),
            false,
            false,
        );
        assert_eq!(p.changes[0].summary, "unmask x");
        let p = plan_unit(
            "x",
            &unit("inactive", "enabled"),
            Some("stopped"),
            None,
            Some(true),
            false,
            false,
        );
        assert_eq!(p.changes[0].summary, "mask x");
        let missing = UnitState {
            load: "not-found".into(),
            ..unit("inactive", "")
        };
        let p = plan_unit("nope", &missing, Some("started"), None, None, false, false);
        assert!(p.failed.is_some());
    }
}
