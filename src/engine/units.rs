//! Which systemd units a play will ask about on a host, so that the host's
//! [`UnitStates`](crate::modules::UnitStates) reads them all with the play's first service
//! task (one `systemctl show` instead of one per task).
//!
//! Best effort and read-only: every `service`/`systemd`/`systemd_service` task of the play
//! (pre_tasks, roles, tasks, post_tasks, handlers, blocks, static includes) has its `name`
//! rendered with the host's variables of the moment (the play's and inventory's when facts
//! are gathered, the first service task's otherwise), once per item for a loop over a list
//! (`loop`, `with_items`; lookups are not run here: some have side effects). A name that
//! does not render here (a role variable, a registered result not there yet) is simply
//! left out: its task reads it when it runs. Nothing here can make an observation wrong,
//! only one exec more or less.

use std::sync::Arc;

use serde_json::Value;

use super::loops;
use super::task::short_module;
use crate::playbook::{LoopSpec, Play, Task, TaskKind};
use crate::template::Templar;
use crate::Vars;

/// Is this module one that observes units (and so reads through `UnitStates`)?
pub fn observes_units(module: &str) -> bool {
    matches!(
        short_module(module),
        "service" | "systemd" | "systemd_service"
    )
}

/// The unit names the play's service tasks give, rendered with `vars`; duplicates kept out.
pub fn play_unit_names(play: &Play, templar: &Templar, vars: &Arc<Vars>) -> Vec<String> {
    let mut names = Vec::new();
    let roles = play
        .roles
        .iter()
        .flat_map(|r| r.tasks.iter().chain(r.handlers.iter()));
    let own = play
        .pre_tasks
        .iter()
        .chain(&play.tasks)
        .chain(&play.post_tasks)
        .chain(&play.handlers);
    for task in roles.chain(own) {
        collect(task, templar, vars, &mut names);
    }
    names
}

fn collect(task: &Task, templar: &Templar, vars: &Arc<Vars>, names: &mut Vec<String>) {
    match &task.kind {
        TaskKind::Module { module, args } if observes_units(module) => {
            for name in task_names(task, args, templar, vars) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        TaskKind::Block {
            block,
            rescue,
            always,
        } => {
            for t in block.iter().chain(rescue).chain(always) {
                collect(t, templar, vars, names);
            }
        }
        TaskKind::IncludeTasks {
            loaded: Some(tasks),
            ..
        } => {
            for t in tasks {
                collect(t, templar, vars, names);
            }
        }
        TaskKind::IncludeRole {
            loaded: Some(role), ..
        } => {
            for t in role.tasks.iter().chain(&role.handlers) {
                collect(t, templar, vars, names);
            }
        }
        _ => {}
    }
}

/// The names one task gives: one, or one per item of a loop over a list. A name or loop
/// that calls a lookup is left alone: lookups run on the controller and some have side
/// effects (`password` writes a file, `pipe` runs a command), which must happen when the
/// task runs, if it runs, not ahead of it.
fn task_names(task: &Task, args: &Vars, templar: &Templar, vars: &Arc<Vars>) -> Vec<String> {
    let Some(raw) = args.get("name") else {
        return Vec::new();
    };
    let loop_text = match &task.loop_ {
        Some(LoopSpec::Items(v) | LoopSpec::WithItems(v)) => v.to_string(),
        _ => String::new(),
    };
    if calls_lookup(&raw.to_string()) || calls_lookup(&loop_text) {
        return Vec::new();
    }
    let mut task_vars = vars.clone();
    if !task.vars.is_empty() {
        let task_vars = Arc::make_mut(&mut task_vars);
        for (k, v) in &task.vars {
            task_vars.insert(k.clone(), v.clone());
        }
    }
    let render = |v: &Arc<Vars>| match templar.render_value_shared(raw, v) {
        Ok(Value::String(s)) => Some(s),
        _ => None,
    };
    match &task.loop_ {
        None => render(&task_vars).into_iter().collect(),
        Some(spec @ (LoopSpec::Items(_) | LoopSpec::WithItems(_))) => {
            let Ok(items) = loops::items(templar, spec, &task_vars, "service") else {
                return Vec::new();
            };
            let loop_var = task
                .loop_control
                .loop_var
                .clone()
                .unwrap_or_else(|| "item".into());
            // One copy of the vars for all items: each render drops its hold on them, so
            // the next item's `make_mut` writes in place.
            let mut v = task_vars;
            items
                .into_iter()
                .filter_map(|item| {
                    Arc::make_mut(&mut v).insert(loop_var.clone(), item);
                    render(&v)
                })
                .collect()
        }
        Some(_) => Vec::new(),
    }
}

/// Does template text call a lookup (`lookup(`, `query(`, `q(`)?
fn calls_lookup(text: &str) -> bool {
    ["lookup(", "query(", "q("]
        .iter()
        .any(|call| text.contains(call))
}

#[cfg(test)]
mod tests {
    use super::calls_lookup;

    #[test]
    fn lookups_are_not_run_ahead() {
        assert!(calls_lookup("{{ lookup('pipe', 'date') }}"));
        assert!(calls_lookup("{{ q('password', 'x') }}"));
        assert!(!calls_lookup("{{ item }}"));
    }
}
