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
