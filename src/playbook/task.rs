//! Task parsing: one YAML mapping into a [`Task`]: finds its one action (a module, a block,
//! an include or a meta action), reads the task keywords, and loads static includes.
//! Unknown keywords and modules are reported with "did you mean" suggestions.

use std::path::Path;

use super::keywords::{self, best_match, did_you_mean, short_name};
use super::loader::{is_template, Loader, TaskCtx};
use super::yaml::{Kind, Node, Pos};
use super::{Environment, LoopControl, LoopSpec, Task, TaskKind};

/// What a module of the fallback accepts: anything (Ansible's module checks its own
/// arguments on the host); `key=value` text, as Ansible reads it for modules other than
/// its few free-form ones (which are native here).
const FALLBACK_SPEC: crate::modules::ArgSpec = crate::modules::ArgSpec {
    args: &[crate::modules::ArgDef::opt("*")],
    free_form: false,
    one_of: &[],
};

/// The action a task names: its short name (as written for a module of the fallback,
/// which Ansible resolves), where the key is, and its value.
pub(super) struct Action {
    pub name: String,
    pub key_pos: Pos,
    pub value: Node,
}

impl Loader<'_> {
    /// A list of tasks (`tasks:`, a task file, a block's parts).
    pub(super) fn task_list(&mut self, node: &Node, ctx: &TaskCtx, what: &str) -> Vec<Task> {
        let items = self.items(&ctx.file, node, what);
        items.iter().filter_map(|n| self.task(n, ctx)).collect()
    }

    /// Loads a task file (an include or a role's tasks/handlers file).
    pub(super) fn tasks_file(
        &mut self,
        path: &Path,
        ctx: &TaskCtx,
        from_file: &Path,
        from: Pos,
    ) -> Option<Vec<Task>> {
        self.enter(path, from_file, from, "include")?;
        let tasks = self.parse_yaml(path).map(|root| {
            let sub = TaskCtx {
                file: path.to_path_buf(),
                ..ctx.clone()
            };
            self.task_list(&root, &sub, "a task file")
        });
        self.leave();
        tasks
    }

    fn task(&mut self, node: &Node, ctx: &TaskCtx) -> Option<Task> {
        let file = ctx.file.clone();
        let entries = self.entries(&file, node, "a task")?;
        let errors_before = self.errors.len();

        let mut keywords: Vec<(&str, &Node, &Node)> = Vec::new();
        let mut parts: Vec<(&str, &Node, &Node)> = Vec::new();
        let mut actions: Vec<Action> = Vec::new();
        let mut unknown: Vec<&Node> = Vec::new();
        let mut delegate_local = false;
        let mut collections_kw: Option<&Node> = None;
        for (k, v) in entries {
            let key = k.key_text();
            let key = key.as_str();
            if let Some(part) = keywords::BLOCK_PARTS.iter().find(|p| **p == key) {
                parts.push((part, k, v));
            } else if key == "action" || key == "local_action" {
                delegate_local |= key == "local_action";
                if let Some(action) = self.action_keyword(&file, k, v) {
                    actions.push(action);
                }
            } else if let Some(kw) = keywords::TASK.iter().find(|p| **p == key) {
                keywords.push((kw, k, v));
            } else if key == "listen" {
                if ctx.handlers {
                    keywords.push(("listen", k, v));
                } else {
                    self.error(&file, k.pos, "'listen' is only valid on handlers");
                }
            } else if key == "collections" {
                collections_kw = Some(v);
            } else if keywords::TASK_IGNORED.contains(&key) {
            } else if keywords::TASK_UNSUPPORTED.contains(&key) {
                self.error(
                    &file,
                    k.pos,
                    format!("task keyword '{key}' is not supported"),
                );
            } else if matches!(short_name(key), "include") {
                self.error(
                    &file,
                    k.pos,
                    "'include' was removed from Ansible; use 'include_tasks' or 'import_tasks'",
                );
            } else if let Some(name) = key.strip_prefix("with_") {
                if crate::template::LOOKUP_NAMES.contains(&name) {
                    keywords.push(("with_lookup", k, v));
                } else {
                    self.error(
                        &file,
                        k.pos,
                        format!(
                            "'{key}': no lookup plugin '{name}'{} (infra has {})",
                            did_you_mean(name, crate::template::LOOKUP_NAMES.iter().copied()),
                            crate::template::LOOKUP_NAMES.join(", ")
                        ),
                    );
                }
            } else if self.is_action(short_name(key)) {
                actions.push(Action {
                    name: short_name(key).to_string(),
                    key_pos: k.pos,
                    value: v.clone(),
                });
            } else {
                unknown.push(k);
            }
        }
        if actions.is_empty() && parts.is_empty() {
            if let Some(action) = self.fallback_candidate(entries, &mut unknown, ctx.handlers) {
                actions.push(action);
            }
        }
        self.report_unknown_keys(&file, &unknown, actions.is_empty(), ctx.handlers);
        let collections = match collections_kw {
            Some(v) => self.string_list(&file, v, "collections", false),
            None => ctx.inherit.collections.clone(),
        };
        let ctx = &TaskCtx {
            inherit: super::loader::Inherited {
                collections: collections.clone(),
                ..ctx.inherit.clone()
            },
            ..ctx.clone()
        };

        let is_block = !parts.is_empty();
        if is_block {
            if let Some(action) = actions.first() {
                self.error(
                    &file,
                    action.key_pos,
                    format!("a block cannot also run an action ('{}')", action.name),
                );
            }
            for (kw, k, _) in &keywords {
                if keywords::NOT_ON_BLOCK.contains(kw) {
                    let key = k.key_text();
                    self.error(&file, k.pos, format!("'{key}' is not valid on a block"));
                }
            }
        } else if actions.len() > 1 {
            self.error(
                &file,
                actions[1].key_pos,
                format!(
                    "a task can run only one action, this one has '{}' and '{}'",
                    actions[0].name, actions[1].name
                ),
            );
        } else if actions.is_empty() && unknown.is_empty() && self.errors.len() == errors_before {
            self.error(
                &file,
                node.pos,
                "task has no action: give it a module (e.g. 'command:'), an include or a 'block:'",
            );
        }

        let mut task = self.task_keywords(&keywords, ctx, node.pos);
        if delegate_local && task.delegate_to.is_none() {
            task.delegate_to = Some("localhost".to_string());
        }
        let args_kw = keywords
            .iter()
            .find(|(kw, _, _)| *kw == "args")
            .map(|(_, _, v)| *v);

        let kind = if is_block {
            self.block_kind(&parts, ctx, node.pos)
        } else if let Some(action) = actions.first() {
            match action.name.as_str() {
                "include_tasks" | "import_tasks" => self.include_tasks_kind(action, ctx),
                "include_role" | "import_role" => self.include_role_kind(action, ctx),
                "meta" => self.meta_kind(action, &file),
                "include_vars" => self.include_vars_kind(action, args_kw, &file),
                module => {
                    let spec = match self.registry.spec(module) {
                        Some(spec) => spec,
                        None => {
                            self.pending.push(super::fallback::Pending {
                                name: module.to_string(),
                                collections: collections.clone(),
                                loc: action.key_pos.at(&file),
                                deferred: self.dynamic > 0,
                            });
                            FALLBACK_SPEC
                        }
                    };
                    let args = self.module_args(
                        module,
                        &spec,
                        &action.value,
                        args_kw,
                        &file,
                        action.key_pos,
                    );
                    Some(TaskKind::Module {
                        module: module.to_string(),
                        args,
                    })
                }
            }
        } else {
            None
        };
        if args_kw.is_some() && !matches!(kind, Some(TaskKind::Module { .. })) && actions.len() == 1
        {
            if let Some((_, k, _)) = keywords.iter().find(|(kw, _, _)| *kw == "args") {
                self.error(&file, k.pos, "'args' is only valid on a module call");
            }
        }
        task.kind = kind?;
        if self.errors.len() > errors_before {
            return None;
        }
        Some(task)
    }

    /// `include_vars`: a file (free form or `file:`) or a `dir:` with its filters; run
    /// by the engine on the controller.
    fn include_vars_kind(
        &mut self,
        action: &Action,
        args_kw: Option<&Node>,
        file: &Path,
    ) -> Option<TaskKind> {
        const KEYS: &[&str] = &[
            "file",
            "dir",
            "depth",
            "files_matching",
            "ignore_files",
            "extensions",
            "ignore_unknown_extensions",
            "name",
            "hash_behaviour",
            "free_form",
        ];
        let spec = crate::modules::ArgSpec {
            args: &[],
            free_form: true,
            one_of: &[],
        };
        let args = self.module_args(
            "include_vars",
            &spec,
            &action.value,
            args_kw,
            file,
            action.key_pos,
        );
        for key in args.keys() {
            if key != super::args::RAW_PARAMS && !KEYS.contains(&key.as_str()) {
                self.error(
                    file,
                    action.value.pos,
                    format!(
                        "'{key}' is not a valid option in include_vars{}",
                        did_you_mean(key, KEYS.iter().copied())
                    ),
                );
            }
        }
        Some(TaskKind::Module {
            module: "include_vars".into(),
            args,
        })
    }

    fn is_action(&self, name: &str) -> bool {
        keywords::ENGINE_ACTIONS.contains(&name) || self.registry.spec(name).is_some()
    }

    /// `action: copy src=a dest=b` / `action: {module: copy, src: a}` (and `local_action`).
    fn action_keyword(&mut self, file: &Path, key: &Node, value: &Node) -> Option<Action> {
        let (name, rest) = match &value.kind {
            Kind::Str(s) => {
                let s = s.trim();
                let (name, rest) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
                let kind = if rest.trim().is_empty() {
                    Kind::Null
                } else {
                    Kind::Str(rest.trim().to_string())
                };
                let rest = Node::new(kind, value.pos);
                (name.to_string(), rest)
            }
            Kind::Map(entries) => {
                let Some(name) = value.get("module").and_then(Node::as_str) else {
                    self.error(file, value.pos, "'action' needs a 'module' name");
                    return None;
                };
                let rest: Vec<(Node, Node)> = entries
                    .iter()
                    .filter(|(k, _)| k.key_text() != "module")
                    .cloned()
                    .collect();
                (name.to_string(), Node::new(Kind::Map(rest), value.pos))
            }
            _ => {
                self.error(file, value.pos, "'action' must be a string or a mapping");
                return None;
            }
        };
        let short = short_name(&name).to_string();
        if !self.is_action(&short) && self.fallback {
            // Resolved with the installed Ansible at the end of the load.
            return Some(Action {
                name,
                key_pos: key.pos,
                value: rest,
            });
        }
        if !self.is_action(&short) {
            let names = self.action_names();
            self.error(
                file,
                value.pos,
                format!(
                    "unknown module '{name}'{}",
                    did_you_mean(&short, names.iter().copied())
                ),
            );
            return None;
        }
        Some(Action {
            name: short,
            key_pos: key.pos,
            value: rest,
        })
    }

    /// With a fallback registry, a task without a known action runs the first key that is
    /// neither a keyword nor a likely misspelt one, as a module to resolve with Ansible.
    fn fallback_candidate(
        &self,
        entries: &[(Node, Node)],
        unknown: &mut Vec<&Node>,
        handlers: bool,
    ) -> Option<Action> {
        if !self.fallback {
            return None;
        }
        let mut known: Vec<&str> = keywords::TASK.to_vec();
        known.extend_from_slice(keywords::BLOCK_PARTS);
        if handlers {
            known.extend_from_slice(keywords::HANDLER_ONLY);
        }
        let i = unknown.iter().position(|k| {
            let text = k.key_text();
            text.contains('.') || best_match(&text, known.iter().copied()).is_none()
        })?;
        let key = unknown.remove(i);
        let value = entries
            .iter()
            .find(|(k, _)| k.pos == key.pos)
            .map(|(_, v)| v.clone())?;
        Some(Action {
            name: key.key_text(),
            key_pos: key.pos,
            value,
        })
    }

    fn action_names(&self) -> Vec<&'static str> {
        let mut names = self.registry.names();
        names.extend_from_slice(keywords::ENGINE_ACTIONS);
        names
    }

    fn report_unknown_keys(
        &mut self,
        file: &Path,
        unknown: &[&Node],
        no_action: bool,
        handlers: bool,
    ) {
        let mut known: Vec<&str> = keywords::TASK.to_vec();
        known.extend_from_slice(keywords::BLOCK_PARTS);
        if handlers {
            known.extend_from_slice(keywords::HANDLER_ONLY);
        }
        let names = self.action_names();
        for key in unknown {
            let text = key.key_text();
            let keyword = best_match(&text, known.iter().copied());
            let module = best_match(short_name(&text), names.iter().copied());
            let message = match (keyword, module) {
                (Some((kw, ks)), m) if m.is_none_or(|(_, ms)| ks > ms) => {
                    format!("unknown task keyword '{text}', did you mean '{kw}'?")
                }
                (_, Some((m, _))) if no_action => {
                    format!("unknown module '{text}', did you mean '{m}'?")
                }
                (_, None) if no_action => format!("unknown module '{text}'"),
                _ => format!("unknown task keyword '{text}'"),
            };
            self.error(file, key.pos, message);
        }
    }

    /// Reads the task keywords into a task (its kind is filled in by the caller).
    pub(super) fn task_keywords(
        &mut self,
        keywords: &[(&str, &Node, &Node)],
        ctx: &TaskCtx,
        pos: Pos,
    ) -> Task {
        let file = ctx.file.clone();
        let f = file.as_path();
        let mut task = Task {
            name: None,
            role: ctx.role.clone(),
            collections: ctx.inherit.collections.clone(),
            ..Task::named("", pos.at(f))
        };
        let mut retries = None;
        let mut connection_vars: Vec<(&str, serde_json::Value)> = Vec::new();
        for (kw, key, value) in keywords {
            match *kw {
                "name" => task.name = self.string(f, value, kw),
                "when" => task.when = self.conditions(f, value, kw),
                "loop" | "with_list" | "with_items" | "with_dict" | "with_lookup" => {
                    if task.loop_.is_some() {
                        self.error(f, key.pos, "a task can have only one loop");
                    }
                    let v = value.to_json();
                    task.loop_ = Some(match *kw {
                        "with_items" => LoopSpec::WithItems(v),
                        "with_dict" => LoopSpec::Dict(v),
                        "with_lookup" => LoopSpec::Lookup {
                            name: key.key_text().trim_start_matches("with_").to_string(),
                            terms: v,
                        },
                        _ => LoopSpec::Items(v),
                    });
                }
                "loop_control" => task.loop_control = self.loop_control(f, value),
                "register" => {
                    task.register = self.string(f, value, kw);
                    if let Some(name) = &task.register {
                        if !is_identifier(name) {
                            self.error(
                                f,
                                value.pos,
                                format!("'register' must be a variable name, not '{name}'"),
                            );
                        }
                    }
                }
                "notify" => task.notify = self.string_list(f, value, kw, false),
                "listen" => task.listen = self.string_list(f, value, kw, false),
                "changed_when" => task.changed_when = Some(self.conditions(f, value, kw)),
                "failed_when" => task.failed_when = Some(self.conditions(f, value, kw)),
                "ignore_errors" => task.ignore_errors = self.flag(f, value, kw),
                "tags" => task.tags = self.string_list(f, value, kw, true),
                "become" => task.become_ = self.flag(f, value, kw),
                "become_user" => task.become_user = self.string(f, value, kw),
                "become_method" => self.check_become_method(f, value),
                "no_log" => task.no_log = self.flag(f, value, kw),
                "check_mode" => task.check_mode = self.flag(f, value, kw),
                "diff" => task.diff = self.flag(f, value, kw),
                "run_once" => task.run_once = self.flag(f, value, kw),
                "any_errors_fatal" => task.any_errors_fatal = self.flag(f, value, kw),
                "delegate_to" => task.delegate_to = self.string(f, value, kw),
                "delegate_facts" => task.delegate_facts = self.flag(f, value, kw),
                "environment" => task.environment = self.environment(f, value),
                "until" => {
                    let conditions = self.conditions(f, value, kw);
                    task.until = match conditions.len() {
                        0 => None,
                        1 => conditions.into_iter().next(),
                        _ => Some(
                            conditions
                                .iter()
                                .map(|c| format!("({c})"))
                                .collect::<Vec<_>>()
                                .join(" and "),
                        ),
                    };
                }
                "retries" => {
                    retries = self.number(f, value, kw).and_then(|n| {
                        if n >= 0.0 && n.fract() == 0.0 {
                            Some(n as u32)
                        } else {
                            self.error(f, value.pos, "'retries' must be a whole number");
                            None
                        }
                    })
                }
                "delay" => task.delay = self.number(f, value, kw).unwrap_or(5.0),
                "vars" => task.vars = self.vars(f, value, kw),
                "remote_user" => connection_vars.push((keywords::REMOTE_USER_VAR, value.to_json())),
                "connection" => connection_vars.push((keywords::CONNECTION_VAR, value.to_json())),
                "port" => connection_vars.push((keywords::PORT_VAR, value.to_json())),
                // `args` is read with the module; the rest are checked by the caller.
                _ => {}
            }
        }
        for (var, value) in connection_vars {
            task.vars.entry(var).or_insert(value);
        }
        task.retries = retries.unwrap_or(if task.until.is_some() { 3 } else { 0 });
        let inherit = &ctx.inherit;
        for (own, outer) in [
            (&mut task.become_, &inherit.become_),
            (&mut task.ignore_errors, &inherit.ignore_errors),
            (&mut task.no_log, &inherit.no_log),
            (&mut task.run_once, &inherit.run_once),
            (&mut task.check_mode, &inherit.check_mode),
            (&mut task.diff, &inherit.diff),
            (&mut task.any_errors_fatal, &inherit.any_errors_fatal),
            (&mut task.delegate_facts, &inherit.delegate_facts),
        ] {
            if own.is_none() {
                own.clone_from(outer);
            }
        }
        if task.become_user.is_none() {
            task.become_user = inherit.become_user.clone();
        }
        if task.delegate_to.is_none() {
            task.delegate_to = inherit.delegate_to.clone();
        }
        task.environment = ctx.inherit.environment.then(&task.environment);
        task
    }

    pub(super) fn check_become_method(&mut self, file: &Path, value: &Node) {
        if value.as_str() != Some("sudo") {
            self.error(
                file,
                value.pos,
                format!(
                    "become_method '{}' is not supported (only sudo)",
                    value.key_text()
                ),
            );
        }
    }

    /// `environment:` a mapping, a template that renders to one, or a list of either.
    pub(super) fn environment(&mut self, file: &Path, value: &Node) -> Environment {
        let items: Vec<&Node> = match &value.kind {
            Kind::Null => return Environment::default(),
            Kind::Seq(items) => items.iter().collect(),
            _ => vec![value],
        };
        let mut out = Environment::default();
        for item in items {
            match item.as_str() {
                Some(s) if is_template(s) => out.0.push(serde_json::Value::from(s)),
                Some(_) => self.error(
                    file,
                    item.pos,
                    "'environment' must be a mapping or a template giving one",
                ),
                None => {
                    let vars = self.vars(file, item, "environment");
                    out.0.push(serde_json::Value::Object(vars));
                }
            }
        }
        out
    }

    fn loop_control(&mut self, file: &Path, value: &Node) -> LoopControl {
        let mut control = LoopControl::default();
        let Some(entries) = self.entries(file, value, "'loop_control'") else {
            return control;
        };
        const KEYS: &[&str] = &[
            "loop_var",
            "index_var",
            "label",
            "pause",
            "extended",
            "extended_allitems",
        ];
        for (k, v) in entries {
            let key = k.key_text();
            match key.as_str() {
                "loop_var" => control.loop_var = self.string(file, v, "loop_var"),
                "index_var" => control.index_var = self.string(file, v, "index_var"),
                "label" => control.label = self.string(file, v, "label"),
                "pause" => {
                    control.pause = match v.as_str() {
                        Some(t) if is_template(t) => Some(serde_json::Value::from(t)),
                        _ => self.number(file, v, "pause").map(serde_json::Value::from),
                    }
                }
                "extended" => control.extended = self.boolean(file, v, "extended").unwrap_or(false),
                "extended_allitems" => {
                    control.extended_allitems = self.boolean(file, v, "extended_allitems")
                }
                other => self.error(
                    file,
                    k.pos,
                    format!(
                        "unknown loop_control key '{other}'{}",
                        did_you_mean(other, KEYS.iter().copied())
                    ),
                ),
            }
        }
        control
    }

    fn block_kind(
        &mut self,
        parts: &[(&str, &Node, &Node)],
        ctx: &TaskCtx,
        pos: Pos,
    ) -> Option<TaskKind> {
        let mut block = Vec::new();
        let mut rescue = Vec::new();
        let mut always = Vec::new();
        let mut has_block = false;
        for (part, _, value) in parts {
            let what = format!("'{part}'");
            let tasks = self.task_list(value, ctx, &what);
            match *part {
                "block" => {
                    has_block = true;
                    block = tasks;
                }
                "rescue" => rescue = tasks,
                _ => always = tasks,
            }
        }
        if !has_block {
            self.error(&ctx.file, pos, "'rescue' and 'always' need a 'block'");
            return None;
        }
        Some(TaskKind::Block {
            block,
            rescue,
            always,
        })
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
