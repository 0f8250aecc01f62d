//! Module names the registry does not know: recorded while tasks are read, then resolved
//! all together with the installed Ansible (one Python invocation per load, none when
//! every module is native). A name nobody provides, or a module that needs its own
//! controller-side action plugin, is a load error at the module's file:line:col, unless
//! the task was read inside a dynamic include (`include_tasks`, `include_role`): there it
//! is an error only on a host that includes the file ([`unresolved_modules`]), as in
//! Ansible (a role's `setup-Archlinux.yml` must not stop a Debian run).

use super::keywords::{self, did_you_mean};
use super::loader::Loader;
use super::{Location, Task, TaskKind};
use crate::modules::ansible::{self, Resolution};

/// A module name read in a task, waiting to be resolved.
#[derive(Debug, Clone)]
pub struct Pending {
    /// As written (`timezone`, `community.general.ini_file`).
    pub name: String,
    pub collections: Vec<String>,
    /// Where the module's key is.
    pub loc: Location,
    /// Read inside a dynamic include.
    pub deferred: bool,
}

/// A task that runs an Ansible module through the fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackUse {
    pub loc: Location,
    /// As written in the task.
    pub name: String,
    /// What Ansible resolved it to.
    pub fqcn: String,
}

impl Loader<'_> {
    /// Resolves the pending names; records errors for the ones that cannot run and returns
    /// the tasks that will use the fallback.
    pub(super) fn resolve_pending(&mut self) -> Vec<FallbackUse> {
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return Vec::new();
        }
        let keys: Vec<ansible::NameKey> = pending
            .iter()
            .map(|p| (p.name.clone(), p.collections.clone()))
            .collect();
        let answers = match self.registry.resolve_fallback(&keys) {
            Some(Ok(answers)) => answers,
            Some(Err(e)) => {
                let why = format!(" (Ansible could not be asked: {e:#})");
                vec![Resolution::NotFound { reason: Some(why) }; keys.len()]
            }
            None => vec![Resolution::NotFound { reason: None }; keys.len()],
        };
        let mut names = self.registry.names();
        names.extend_from_slice(keywords::ENGINE_ACTIONS);
        let mut uses = Vec::new();
        for (p, answer) in pending.into_iter().zip(answers) {
            let message = match answer {
                Resolution::Module { fqcn, .. } => {
                    uses.push(FallbackUse {
                        loc: p.loc,
                        name: p.name,
                        fqcn,
                    });
                    continue;
                }
                _ if p.deferred => continue,
                Resolution::NeedsAction { fqcn, action } => needs_action(&p.name, &fqcn, &action),
                Resolution::NotFound { reason } => {
                    let short = keywords::short_name(&p.name);
                    let hint = did_you_mean(short, names.iter().copied());
                    match reason {
                        // Ansible could not be asked: the hint still helps with typos.
                        Some(r) if r.starts_with(' ') => {
                            format!("unknown module '{}'{hint}{r}", p.name)
                        }
                        Some(r) => format!("unknown module '{}': {r}", p.name),
                        None => format!("unknown module '{}'{hint}", p.name),
                    }
                }
            };
            self.errors.push(super::LoadError {
                loc: p.loc,
                message,
            });
        }
        uses
    }
}

fn needs_action(name: &str, fqcn: &str, action: &str) -> String {
    format!(
        "module '{name}' ({fqcn}) needs Ansible's controller-side action plugin '{action}', which infra cannot run"
    )
}

/// The modules of `tasks` that cannot run (checked when a host includes a file
/// dynamically): one message per task, naming its file:line:col. Looks into blocks and
/// static imports, not into further dynamic includes (they are checked when they run).
pub fn unresolved_modules(tasks: &[Task]) -> Vec<String> {
    let mut out = Vec::new();
    for task in tasks {
        match &task.kind {
            TaskKind::Module { module, .. } => {
                if crate::modules::lookup(module).is_some() {
                    continue;
                }
                match ansible::resolution(module, &task.collections) {
                    Some(Resolution::Module { .. }) => {}
                    Some(Resolution::NeedsAction { fqcn, action }) => out.push(format!(
                        "{}: {}",
                        task.loc,
                        needs_action(module, &fqcn, &action)
                    )),
                    _ => out.push(format!(
                        "{}: couldn't resolve module/action '{module}'",
                        task.loc
                    )),
                }
            }
            TaskKind::Block {
                block,
                rescue,
                always,
            } => {
                out.extend(unresolved_modules(block));
                out.extend(unresolved_modules(rescue));
                out.extend(unresolved_modules(always));
            }
            TaskKind::IncludeTasks {
                loaded: Some(loaded),
                import: true,
                ..
            } => out.extend(unresolved_modules(loaded)),
            TaskKind::IncludeRole {
                loaded: Some(role),
                import: true,
                ..
            } => out.extend(unresolved_modules(&role.tasks)),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::modules::ansible::NameKey;
    use crate::modules::ArgSpec;
    use crate::playbook::{load_with, BuiltinModules, ModuleRegistry};

    /// The real module specs, and a fallback that knows the names starting with `ok_`
    /// and records what it was asked.
    #[derive(Default)]
    struct Recording(Mutex<Vec<Vec<NameKey>>>);

    impl ModuleRegistry for Recording {
        fn spec(&self, name: &str) -> Option<ArgSpec> {
            BuiltinModules.spec(name)
        }
        fn names(&self) -> Vec<&'static str> {
            BuiltinModules.names()
        }
        fn resolve_fallback(&self, names: &[NameKey]) -> Option<anyhow::Result<Vec<Resolution>>> {
            if !names.is_empty() {
                self.0.lock().unwrap().push(names.to_vec());
            }
            Some(Ok(names
                .iter()
                .map(|(n, _)| match n.strip_prefix("ok_") {
                    Some(short) => Resolution::Module {
                        fqcn: format!("x.y.{short}"),
                        path: "/m.py".into(),
                    },
                    None => Resolution::NotFound { reason: None },
                })
                .collect()))
        }
    }

    fn write(dir: &std::path::Path, files: &[(&str, &str)]) {
        for (rel, text) in files {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }

    #[test]
    fn names_are_resolved_once_with_the_collections_in_force() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                (
                    "play.yml",
                    "- hosts: all\n  collections: [p.c]\n  roles: [r]\n  tasks:\n    - ok_a: {x: 1}\n    - block:\n        - ok_b: x=1 y=2\n      collections: [b.c]\n    - ok_c: {}\n      collections: [t.c]\n    - debug: msg=native\n",
                ),
                ("roles/r/meta/main.yml", "collections: [r.c]\n"),
                ("roles/r/tasks/main.yml", "- ok_d: {}\n"),
            ],
        );
        let reg = Recording::default();
        let book = load_with(&dir.path().join("play.yml"), &[], &reg).unwrap();
        let asked = reg.0.lock().unwrap().clone();
        let key = |n: &str, c: &str| (n.to_string(), vec![c.to_string()]);
        assert_eq!(
            asked,
            [vec![
                key("ok_d", "r.c"),
                key("ok_a", "p.c"),
                key("ok_b", "b.c"),
                key("ok_c", "t.c"),
            ]]
        );
        let names: Vec<&str> = book.fallback.iter().map(|u| u.fqcn.as_str()).collect();
        assert_eq!(names, ["x.y.d", "x.y.a", "x.y.b", "x.y.c"]);
        assert_eq!(book.plays[0].collections, ["p.c"]);
        assert_eq!(book.plays[0].roles[0].collections, ["r.c"]);
    }

    #[test]
    fn unknown_names_fail_the_load_unless_dynamically_included() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                (
                    "play.yml",
                    "- hosts: all\n  tasks:\n    - include_tasks: dyn.yml\n    - import_tasks: static.yml\n",
                ),
                ("dyn.yml", "- nope_dynamic: {}\n"),
                ("static.yml", "- name: s\n  nope_static: {}\n"),
            ],
        );
        let reg = Recording::default();
        let err = load_with(&dir.path().join("play.yml"), &[], &reg).unwrap_err();
        let errors = err
            .downcast::<crate::playbook::LoadErrors>()
            .unwrap()
            .errors;
        let messages: Vec<String> = errors
            .iter()
            .map(|e| format!("{}:{}: {}", e.loc.line, e.loc.col, e.message))
            .collect();
        assert_eq!(messages, ["2:3: unknown module 'nope_static'"]);
        assert_eq!(reg.0.lock().unwrap()[0].len(), 2, "both names asked once");
    }

    #[test]
    fn a_native_playbook_asks_nothing() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[("play.yml", "- hosts: all\n  tasks:\n    - debug: msg=x\n")],
        );
        let reg = Recording::default();
        load_with(&dir.path().join("play.yml"), &[], &reg).unwrap();
        assert!(reg.0.lock().unwrap().is_empty());
    }
}
