//! The loader's state and its small helpers: the error list (one load reports every
//! problem it finds), the stack of files being loaded (include cycles), path resolution,
//! and typed reads of YAML fields (string, bool, list, conditions, vars) that record an
//! error with the field's position when the value has the wrong shape.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{LoadError, LoadErrors};
use super::yaml::{self, Kind, Node, Pos};
use super::{Environment, Flag, ModuleRegistry, Role};
use crate::Vars;

/// Settings that come from where tasks are used (a play's `environment`, a role entry's
/// `become`), applied to every task that does not set them itself.
#[derive(Debug, Clone, Default)]
pub(super) struct Inherited {
    pub become_: Option<Flag>,
    pub become_user: Option<String>,
    pub environment: Environment,
    pub ignore_errors: Option<Flag>,
    pub no_log: Option<Flag>,
    pub run_once: Option<Flag>,
    pub check_mode: Option<Flag>,
    pub diff: Option<Flag>,
    pub any_errors_fatal: Option<Flag>,
    pub delegate_to: Option<String>,
    pub delegate_facts: Option<Flag>,
    /// `collections:` of the play, role (meta/main.yml) or block.
    pub collections: Vec<String>,
}

impl Inherited {
    /// `outer` overlaid with the values set here (a role entry inside a play).
    pub fn over(&self, outer: &Inherited) -> Inherited {
        let environment = outer.environment.then(&self.environment);
        Inherited {
            become_: self.become_.clone().or_else(|| outer.become_.clone()),
            become_user: self
                .become_user
                .clone()
                .or_else(|| outer.become_user.clone()),
            environment,
            ignore_errors: pick(&self.ignore_errors, &outer.ignore_errors),
            no_log: pick(&self.no_log, &outer.no_log),
            run_once: pick(&self.run_once, &outer.run_once),
            check_mode: pick(&self.check_mode, &outer.check_mode),
            diff: pick(&self.diff, &outer.diff),
            any_errors_fatal: pick(&self.any_errors_fatal, &outer.any_errors_fatal),
            delegate_to: self
                .delegate_to
                .clone()
                .or_else(|| outer.delegate_to.clone()),
            delegate_facts: pick(&self.delegate_facts, &outer.delegate_facts),
            // A role's own list replaces the play's; without one it inherits it.
            collections: if self.collections.is_empty() {
                outer.collections.clone()
            } else {
                self.collections.clone()
            },
        }
    }

    /// Reads a keyword every task inherits (`ignore_errors`, `no_log`, ...) from a play or a
    /// role entry; `false` when `key` is not one of them.
    pub fn read(&mut self, loader: &mut Loader<'_>, file: &Path, key: &str, v: &Node) -> bool {
        let slot = match key {
            "ignore_errors" => &mut self.ignore_errors,
            "no_log" => &mut self.no_log,
            "run_once" => &mut self.run_once,
            "check_mode" => &mut self.check_mode,
            "diff" => &mut self.diff,
            "any_errors_fatal" => &mut self.any_errors_fatal,
            "delegate_facts" => &mut self.delegate_facts,
            "become" => &mut self.become_,
            "delegate_to" => {
                self.delegate_to = loader.string(file, v, key);
                return true;
            }
            "become_user" => {
                self.become_user = loader.string(file, v, key);
                return true;
            }
            _ => return false,
        };
        *slot = loader.flag(file, v, key);
        true
    }
}

fn pick(inner: &Option<Flag>, outer: &Option<Flag>) -> Option<Flag> {
    inner.clone().or_else(|| outer.clone())
}

/// Where the tasks being parsed come from.
#[derive(Debug, Clone)]
pub(super) struct TaskCtx {
    /// The file holding the tasks (positions, relative includes).
    pub file: PathBuf,
    /// The folder of the playbook file these tasks belong to (relative includes, roles).
    pub playbook_dir: PathBuf,
    /// The role the tasks come from (its metadata; its own task list is empty).
    pub role: Option<Arc<Role>>,
    /// Parsing a `handlers:` list (`listen` is allowed).
    pub handlers: bool,
    pub inherit: Inherited,
}

impl TaskCtx {
    pub fn file_dir(&self) -> PathBuf {
        parent_dir(&self.file)
    }
}

pub(super) struct Loader<'r> {
    pub registry: &'r dyn ModuleRegistry,
    pub roles_path: Vec<PathBuf>,
    /// The top playbook's folder (`playbook_dir`).
    pub playbook_dir: PathBuf,
    pub errors: Vec<LoadError>,
    /// Canonical paths of the playbooks, task files and roles being loaded, innermost last.
    pub stack: Vec<PathBuf>,
    /// Module names not in the registry, resolved together at the end of the load.
    pub pending: Vec<super::fallback::Pending>,
    /// How many dynamic includes (`include_tasks`, `include_role`) the tasks being read
    /// are inside: an unknown module there is an error only on a host that includes it.
    pub dynamic: usize,
    /// The registry resolves unknown names with a fallback (see [`ModuleRegistry`]).
    pub fallback: bool,
}

impl<'r> Loader<'r> {
    pub fn new(
        registry: &'r dyn ModuleRegistry,
        roles_path: &[PathBuf],
        playbook_dir: PathBuf,
    ) -> Self {
        Loader {
            registry,
            roles_path: roles_path.to_vec(),
            playbook_dir,
            errors: Vec::new(),
            stack: Vec::new(),
            pending: Vec::new(),
            dynamic: 0,
            fallback: registry.resolve_fallback(&[]).is_some(),
        }
    }

    /// Turns the collected errors into the load's result.
    pub fn finish<T>(self, value: T) -> anyhow::Result<T> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(LoadErrors {
                errors: self.errors,
            }
            .into())
        }
    }

    pub fn error(&mut self, file: &Path, pos: Pos, message: impl Into<String>) {
        self.errors.push(LoadError {
            loc: pos.at(file),
            message: message.into(),
        });
    }

    /// Parses a YAML file, recording a syntax or read error.
    pub fn parse_yaml(&mut self, path: &Path) -> Option<Node> {
        match yaml::parse_file(path) {
            Ok(node) => Some(node),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    /// Enters a file for cycle detection; `None` (and an error at `from`) when it is
    /// already being loaded.
    pub fn enter(
        &mut self,
        path: &Path,
        from_file: &Path,
        from: Pos,
        what: &str,
    ) -> Option<PathBuf> {
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if let Some(i) = self.stack.iter().position(|p| *p == canonical) {
            let chain: Vec<String> = self.stack[i..]
                .iter()
                .chain(std::iter::once(&canonical))
                .map(|p| p.display().to_string())
                .collect();
            self.error(
                from_file,
                from,
                format!("{what} cycle: {}", chain.join(" -> ")),
            );
            return None;
        }
        self.stack.push(canonical.clone());
        Some(canonical)
    }

    pub fn leave(&mut self) {
        self.stack.pop();
    }

    // ---- typed field reads -------------------------------------------------------------

    /// A string field; numbers and booleans are turned into their text (as Ansible does).
    pub fn string(&mut self, file: &Path, node: &Node, field: &str) -> Option<String> {
        match &node.kind {
            Kind::Null => None,
            Kind::Str(s) => Some(s.clone()),
            Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) => Some(node.key_text()),
            _ => {
                self.error(
                    file,
                    node.pos,
                    format!("'{field}' must be a string, not {}", node.type_name()),
                );
                None
            }
        }
    }

    /// A yes/no keyword that may be a template (evaluated per host when the task runs).
    pub fn flag(&mut self, file: &Path, node: &Node, field: &str) -> Option<Flag> {
        match node.as_str() {
            Some(s) if is_template(s) => Some(Flag::Template(s.to_string())),
            _ => self.boolean(file, node, field).map(Flag::Fixed),
        }
    }

    /// A yes/no field that must be known when loading (e.g. `gather_facts`).
    pub fn boolean(&mut self, file: &Path, node: &Node, field: &str) -> Option<bool> {
        let parsed = match &node.kind {
            Kind::Null => return None,
            Kind::Bool(b) => Some(*b),
            Kind::Int(0) => Some(false),
            Kind::Int(1) => Some(true),
            Kind::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "yes" | "true" | "on" | "y" | "1" => Some(true),
                "no" | "false" | "off" | "n" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        };
        if parsed.is_none() {
            let hint = match node.as_str() {
                Some(s) if s.contains("{{") => " (templates are not supported here)",
                _ => "",
            };
            self.error(
                file,
                node.pos,
                format!("'{field}' must be true or false{hint}"),
            );
        }
        parsed
    }

    /// A string or a list of strings; with `commas`, `"a, b"` is two entries (tags).
    pub fn string_list(
        &mut self,
        file: &Path,
        node: &Node,
        field: &str,
        commas: bool,
    ) -> Vec<String> {
        let mut out = Vec::new();
        let items: Vec<&Node> = match &node.kind {
            Kind::Null => return out,
            Kind::Seq(items) => items.iter().collect(),
            _ => vec![node],
        };
        for item in items {
            match &item.kind {
                Kind::Str(_) | Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) => {
                    let text = item.key_text();
                    if commas {
                        out.extend(
                            text.split(',')
                                .map(str::trim)
                                .filter(|t| !t.is_empty())
                                .map(String::from),
                        );
                    } else {
                        out.push(text);
                    }
                }
                _ => self.error(
                    file,
                    item.pos,
                    format!(
                        "'{field}' must be a string or a list of strings, not {}",
                        item.type_name()
                    ),
                ),
            }
        }
        out
    }

    /// Conditions (`when`, `changed_when`, `failed_when`): a string, a boolean or a list.
    pub fn conditions(&mut self, file: &Path, node: &Node, field: &str) -> Vec<String> {
        let items: Vec<&Node> = match &node.kind {
            Kind::Null => return Vec::new(),
            Kind::Seq(items) => items.iter().collect(),
            _ => vec![node],
        };
        let mut out = Vec::new();
        for item in items {
            match &item.kind {
                Kind::Bool(b) => out.push(if *b { "true" } else { "false" }.to_string()),
                Kind::Str(_) | Kind::Int(_) | Kind::Float(_) => out.push(item.key_text()),
                _ => self.error(
                    file,
                    item.pos,
                    format!("'{field}' must be a condition (a string, a boolean or a list of them), not {}", item.type_name()),
                ),
            }
        }
        out
    }

    /// A mapping of variables (also the old list-of-mappings form of `vars:`).
    pub fn vars(&mut self, file: &Path, node: &Node, field: &str) -> Vars {
        let mut out = Vars::new();
        match &node.kind {
            Kind::Null => {}
            Kind::Map(entries) => {
                for (k, v) in entries {
                    out.insert(k.key_text(), v.to_json());
                }
            }
            Kind::Seq(items) if items.iter().all(|i| i.as_map().is_some()) => {
                for item in items {
                    out.extend(self.vars(file, item, field));
                }
            }
            _ => self.error(
                file,
                node.pos,
                format!("'{field}' must be a mapping, not {}", node.type_name()),
            ),
        }
        out
    }

    /// A number (int, float, or numeric string).
    pub fn number(&mut self, file: &Path, node: &Node, field: &str) -> Option<f64> {
        let parsed = match &node.kind {
            Kind::Int(i) => Some(*i as f64),
            Kind::Float(f) => Some(*f),
            Kind::Str(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        if parsed.is_none() {
            self.error(file, node.pos, format!("'{field}' must be a number"));
        }
        parsed
    }

    /// A mapping node's entries, or an error naming what was expected.
    pub fn entries<'n>(
        &mut self,
        file: &Path,
        node: &'n Node,
        what: &str,
    ) -> Option<&'n [(Node, Node)]> {
        match node.as_map() {
            Some(entries) => Some(entries),
            None => {
                self.error(
                    file,
                    node.pos,
                    format!("{what} must be a mapping, not {}", node.type_name()),
                );
                None
            }
        }
    }

    /// A list node's items (`null` is an empty list), or an error.
    pub fn items<'n>(&mut self, file: &Path, node: &'n Node, what: &str) -> &'n [Node] {
        match &node.kind {
            Kind::Null => &[],
            Kind::Seq(items) => items,
            _ => {
                self.error(
                    file,
                    node.pos,
                    format!("{what} must be a list, not {}", node.type_name()),
                );
                &[]
            }
        }
    }
}

/// The folder holding a file (`.` for a bare file name).
pub(super) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Whether a name is only known at run time.
pub(super) fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// The first existing candidate.
pub(super) fn first_existing(candidates: &[PathBuf]) -> Option<PathBuf> {
    candidates.iter().find(|p| p.exists()).cloned()
}

/// Candidates without repeats, in order.
pub(super) fn dedup_paths(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for p in paths {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}
