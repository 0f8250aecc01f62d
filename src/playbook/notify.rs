//! Checks, once a play is loaded, that every `notify:` names a handler of the play (by
//! name, `role : name`, or a `listen` topic), as Ansible would only find out mid-run.
//! Skipped when handlers can still appear at run time (a templated handler name or a
//! dynamic `include_role`); templated notify names are left for the engine.

use std::collections::HashSet;

use super::keywords::did_you_mean;
use super::loader::{is_template, Loader};
use super::{Play, Task, TaskKind};

/// Calls `f` on every task, inside blocks and statically loaded includes too.
/// `handlers` of statically included roles are visited with `in_handlers` set.
fn walk<'a>(tasks: &'a [Task], in_handlers: bool, f: &mut impl FnMut(&'a Task, bool)) {
    for task in tasks {
        f(task, in_handlers);
        match &task.kind {
            TaskKind::Block {
                block,
                rescue,
                always,
            } => {
                walk(block, in_handlers, f);
                walk(rescue, in_handlers, f);
                walk(always, in_handlers, f);
            }
            TaskKind::IncludeTasks {
                loaded: Some(loaded),
                ..
            } => walk(loaded, in_handlers, f),
            TaskKind::IncludeRole {
                loaded: Some(role), ..
            } => {
                walk(&role.tasks, in_handlers, f);
                walk(&role.handlers, true, f);
            }
            _ => {}
        }
    }
}

/// Calls `f` on every task of a play (pre_tasks, roles, tasks, post_tasks, handlers),
/// inside blocks and static includes; the flag says whether it is a handler.
pub fn all_tasks(play: &Play, f: &mut impl FnMut(&Task, bool)) {
    walk(&play.pre_tasks, false, f);
    for role in &play.roles {
        walk(&role.tasks, false, f);
        walk(&role.handlers, true, f);
    }
    walk(&play.tasks, false, f);
    walk(&play.post_tasks, false, f);
    walk(&play.handlers, true, f);
}

impl Loader<'_> {
    pub(super) fn check_notify(&mut self, play: &Play) {
        let mut handlers: HashSet<String> = HashSet::new();
        let mut dynamic = false;
        all_tasks(play, &mut |task, in_handlers| {
            match &task.kind {
                TaskKind::IncludeRole { loaded: None, .. } => dynamic = true,
                TaskKind::IncludeTasks { loaded: None, .. } if in_handlers => dynamic = true,
                _ => {}
            }
            if !in_handlers {
                return;
            }
            if let Some(name) = &task.name {
                dynamic |= is_template(name);
                if let Some(role) = &task.role {
                    handlers.insert(format!("{} : {name}", role.name));
                }
                handlers.insert(name.clone());
            }
            handlers.extend(task.listen.iter().cloned());
        });
        if dynamic {
            return;
        }
        let mut missing = Vec::new();
        all_tasks(play, &mut |task, _| {
            for name in &task.notify {
                if !is_template(name) && !handlers.contains(name) {
                    missing.push((task.loc.clone(), name.clone()));
                }
            }
        });
        for (loc, name) in missing {
            let hint = did_you_mean(&name, handlers.iter().map(String::as_str));
            self.error(
                &loc.file,
                super::yaml::Pos {
                    line: loc.line,
                    col: loc.col,
                },
                format!("notify: no handler named '{name}' in this play{hint}"),
            );
        }
    }
}
