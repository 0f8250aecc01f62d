//! Playbook and play parsing: the list of plays, `import_playbook` (loaded inline), and
//! each play's keywords, vars_files, roles and task lists.

use std::path::Path;

use super::keywords::{self, did_you_mean, short_name};
use super::loader::{is_template, parent_dir, Inherited, Loader, TaskCtx};
use super::yaml::{Kind, Node, Pos};
use super::{Batch, Play, Strategy, VarPrompt};
use crate::Vars;

impl Loader<'_> {
    /// Loads a playbook file's plays (`from`: the `import_playbook` that names it).
    pub(super) fn playbook_file(&mut self, path: &Path, from: Option<(&Path, Pos)>) -> Vec<Play> {
        let (from_file, from_pos) = from.unwrap_or((path, Pos::default()));
        if self
            .enter(path, from_file, from_pos, "import_playbook")
            .is_none()
        {
            return Vec::new();
        }
        let plays = match self.parse_yaml(path) {
            Some(root) => self.plays(&root, path),
            None => Vec::new(),
        };
        self.leave();
        plays
    }

    fn plays(&mut self, root: &Node, file: &Path) -> Vec<Play> {
        if root.is_null() {
            self.error(file, Pos { line: 1, col: 1 }, "the playbook is empty");
            return Vec::new();
        }
        let mut plays = Vec::new();
        for item in self.items(file, root, "a playbook") {
            let Some(entries) = self.entries(file, item, "a play") else {
                continue;
            };
            let import = entries
                .iter()
                .find(|(k, _)| short_name(&k.key_text()) == "import_playbook");
            match import {
                Some((key, value)) => plays.extend(self.import_playbook(item, key, value, file)),
                None => plays.extend(self.play(item, file)),
            }
        }
        plays
    }

    fn import_playbook(&mut self, item: &Node, key: &Node, value: &Node, file: &Path) -> Vec<Play> {
        let mut vars = Vars::new();
        let mut tags = Vec::new();
        for (k, v) in item.as_map().unwrap_or_default() {
            let name = k.key_text();
            match name.as_str() {
                _ if k == key => {}
                "name" => {}
                "vars" => vars = self.vars(file, v, "vars"),
                "tags" => tags = self.string_list(file, v, "tags", true),
                "when" => self.error(file, k.pos, "'when' on import_playbook is not supported"),
                other => self.error(
                    file,
                    k.pos,
                    format!(
                        "unknown import_playbook keyword '{other}'{}",
                        did_you_mean(other, ["name", "vars", "tags"])
                    ),
                ),
            }
        }
        let Some(name) = self.string(file, value, "import_playbook") else {
            self.error(file, value.pos, "'import_playbook' needs a file name");
            return Vec::new();
        };
        if is_template(&name) {
            self.error(
                file,
                value.pos,
                "a templated import_playbook name is not supported",
            );
            return Vec::new();
        }
        let path = parent_dir(file).join(&name);
        if !path.is_file() {
            self.error(
                file,
                value.pos,
                format!("playbook '{name}' not found ({})", path.display()),
            );
            return Vec::new();
        }
        let mut plays = self.playbook_file(&path, Some((file, key.pos)));
        for play in &mut plays {
            for (k, v) in &vars {
                play.vars.entry(k.clone()).or_insert_with(|| v.clone());
            }
            play.tags.extend(tags.iter().cloned());
        }
        plays
    }

    fn play(&mut self, node: &Node, file: &Path) -> Option<Play> {
        let entries = node.as_map()?;
        let errors_before = self.errors.len();
        let mut play = Play {
            gather_facts: true,
            loc: node.pos.at(file),
            ..Default::default()
        };
        let mut inherit = Inherited::default();
        let mut connection_vars: Vec<(&str, serde_json::Value)> = Vec::new();
        let mut sections: Vec<(&str, &Node)> = Vec::new();
        let mut has_hosts = false;
        for (k, v) in entries {
            let key = k.key_text();
            let key = key.as_str();
            match key {
                "name" => play.name = self.string(file, v, key).unwrap_or_default(),
                "hosts" => {
                    has_hosts = true;
                    play.hosts = match &v.kind {
                        Kind::Seq(_) => self.string_list(file, v, key, false).join(","),
                        _ => self.string(file, v, key).unwrap_or_default(),
                    };
                }
                "vars" => play.vars.extend(self.vars(file, v, key)),
                "vars_files" => play.vars_files = self.vars_files(file, v),
                "roles" | "pre_tasks" | "tasks" | "post_tasks" | "handlers" => {
                    sections.push((keywords::PLAY.iter().find(|p| **p == key)?, v))
                }
                "become" => play.become_ = self.flag(file, v, key),
                "become_user" => play.become_user = self.string(file, v, key),
                "become_method" => self.check_become_method(file, v),
                "gather_facts" => play.gather_facts = self.boolean(file, v, key).unwrap_or(true),
                "gather_subset" => {
                    play.gather_subset = self.string_list(file, v, key, true);
                    if let Err(e) = crate::engine::facts::collectors(&play.gather_subset) {
                        self.error(file, v.pos, format!("gather_subset: {e}"));
                    }
                }
                "gather_timeout" => {
                    play.gather_timeout = self.number(file, v, key).map(|n| n.max(1.0) as u64)
                }
                "fact_path" => play.fact_path = self.string(file, v, key),
                "serial" => play.serial = self.serial(file, v),
                "strategy" => play.strategy = self.strategy(file, v),
                "any_errors_fatal" => play.any_errors_fatal = self.flag(file, v, key),
                "ignore_errors" | "no_log" | "run_once" => {
                    inherit.read(self, file, key, v);
                }
                "vars_prompt" => play.vars_prompt = self.vars_prompt(file, v),
                "max_fail_percentage" => {
                    let text = v.key_text();
                    play.max_fail_percentage = match text.trim().strip_suffix('%') {
                        Some(n) => n.trim().parse().ok().or_else(|| {
                            self.error(file, v.pos, "'max_fail_percentage' must be a number");
                            None
                        }),
                        None => self.number(file, v, key),
                    };
                }
                "tags" => play.tags = self.string_list(file, v, key, true),
                "check_mode" => play.check_mode = self.flag(file, v, key),
                "diff" => play.diff = self.flag(file, v, key),
                "remote_user" => connection_vars.push((keywords::REMOTE_USER_VAR, v.to_json())),
                "connection" => connection_vars.push((keywords::CONNECTION_VAR, v.to_json())),
                "port" => connection_vars.push((keywords::PORT_VAR, v.to_json())),
                "environment" => inherit.environment = self.environment(file, v),
                "collections" => play.collections = self.string_list(file, v, key, false),
                _ if keywords::PLAY_IGNORED.contains(&key) => {}
                _ if keywords::PLAY_UNSUPPORTED.contains(&key) => self.error(
                    file,
                    k.pos,
                    format!("play keyword '{key}' is not supported"),
                ),
                _ => {
                    let hint = if self.registry.spec(short_name(key)).is_some()
                        || keywords::TASK.contains(&key)
                        || keywords::ENGINE_ACTIONS.contains(&short_name(key))
                    {
                        " (tasks belong under 'tasks:')".to_string()
                    } else {
                        let known = keywords::PLAY.iter().chain(keywords::PLAY_IGNORED);
                        did_you_mean(key, known.copied())
                    };
                    self.error(file, k.pos, format!("unknown play keyword '{key}'{hint}"));
                }
            }
        }
        if !has_hosts {
            self.error(file, node.pos, "a play needs 'hosts'");
        }
        for (var, value) in connection_vars {
            play.vars.entry(var).or_insert(value);
        }
        let ctx = TaskCtx {
            file: file.to_path_buf(),
            playbook_dir: parent_dir(file),
            role: None,
            handlers: false,
            inherit: Inherited {
                collections: play.collections.clone(),
                ..inherit
            },
        };
        // Roles first: they run between pre_tasks and tasks, but errors read best in order.
        for (section, value) in sections {
            let what = format!("'{section}'");
            match section {
                "roles" => play.roles = self.play_roles(value, &ctx),
                "pre_tasks" => play.pre_tasks = self.task_list(value, &ctx, &what),
                "tasks" => play.tasks = self.task_list(value, &ctx, &what),
                "post_tasks" => play.post_tasks = self.task_list(value, &ctx, &what),
                _ => {
                    let handler_ctx = TaskCtx {
                        handlers: true,
                        ..ctx.clone()
                    };
                    play.handlers = self.task_list(value, &handler_ctx, &what);
                }
            }
        }
        if self.errors.len() == errors_before {
            self.check_notify(&play);
        }
        (self.errors.len() == errors_before).then_some(play)
    }

    /// `vars_files`: each entry a file (relative to the playbook) or a list of
    /// alternatives (the first that exists). Templated names are left for run time.
    fn vars_files(&mut self, file: &Path, node: &Node) -> Vec<String> {
        let dir = parent_dir(file);
        let mut out = Vec::new();
        for item in self.items(file, node, "'vars_files'") {
            let alternatives: Vec<&Node> = match &item.kind {
                Kind::Seq(alts) => alts.iter().collect(),
                _ => vec![item],
            };
            let mut chosen = None;
            let mut templated = None;
            let mut missing = Vec::new();
            for alt in alternatives {
                let Some(name) = self.string(file, alt, "vars_files") else {
                    continue;
                };
                if is_template(&name) {
                    templated.get_or_insert(name);
                    continue;
                }
                let path = dir.join(&name);
                if path.is_file() {
                    chosen = Some(path);
                    break;
                }
                missing.push(name);
            }
            match (chosen, templated) {
                (Some(path), _) => {
                    self.check_vars_file(&path);
                    out.push(path.display().to_string());
                }
                (None, Some(name)) => out.push(name),
                (None, None) => {
                    if !missing.is_empty() {
                        self.error(
                            file,
                            item.pos,
                            format!(
                                "vars file '{}' not found in {}",
                                missing.join("' or '"),
                                dir.display()
                            ),
                        );
                    }
                }
            }
        }
        out
    }

    /// A vars file must be YAML holding a mapping.
    fn check_vars_file(&mut self, path: &Path) {
        if let Some(root) = self.parse_yaml(path) {
            if !root.is_null() && root.as_map().is_none() {
                self.error(
                    path,
                    root.pos,
                    format!("a vars file must hold a mapping, not {}", root.type_name()),
                );
            }
        }
    }

    /// `vars_prompt`: a list of `{name, prompt, default, private, confirm}`. `encrypt`
    /// (crypt hashing of the answer) is refused: it needs passlib-compatible hashing we do
    /// not carry.
    fn vars_prompt(&mut self, file: &Path, node: &Node) -> Vec<VarPrompt> {
        const KEYS: &[&str] = &[
            "name",
            "prompt",
            "default",
            "private",
            "confirm",
            "encrypt",
            "salt",
            "salt_size",
            "unsafe",
        ];
        let mut out = Vec::new();
        for item in self.items(file, node, "'vars_prompt'") {
            let Some(entries) = self.entries(file, item, "a vars_prompt entry") else {
                continue;
            };
            let mut prompt = VarPrompt {
                private: true,
                loc: item.pos.at(file),
                ..Default::default()
            };
            for (k, v) in entries {
                let key = k.key_text();
                match key.as_str() {
                    "name" => prompt.name = self.string(file, v, "name").unwrap_or_default(),
                    "prompt" => prompt.prompt = self.string(file, v, "prompt").unwrap_or_default(),
                    "default" => prompt.default = self.string(file, v, "default"),
                    "private" => prompt.private = self.boolean(file, v, "private").unwrap_or(true),
                    "confirm" => prompt.confirm = self.boolean(file, v, "confirm").unwrap_or(false),
                    "unsafe" => {}
                    "encrypt" | "salt" | "salt_size" => self.error(
                        file,
                        k.pos,
                        format!("vars_prompt '{key}' is not supported (answers are not hashed); hash the value with the password_hash filter instead"),
                    ),
                    other => self.error(
                        file,
                        k.pos,
                        format!(
                            "unknown vars_prompt key '{other}'{}",
                            did_you_mean(other, KEYS.iter().copied())
                        ),
                    ),
                }
            }
            if prompt.name.is_empty() {
                self.error(file, item.pos, "a vars_prompt entry needs a 'name'");
                continue;
            }
            if prompt.prompt.is_empty() {
                prompt.prompt = prompt.name.clone();
            }
            out.push(prompt);
        }
        out
    }

    fn serial(&mut self, file: &Path, node: &Node) -> Vec<Batch> {
        let items: Vec<&Node> = match &node.kind {
            Kind::Null => return Vec::new(),
            Kind::Seq(items) => items.iter().collect(),
            _ => vec![node],
        };
        let mut out = Vec::new();
        for item in items {
            let batch = match &item.kind {
                Kind::Int(n) if *n >= 0 => Some(Batch::Count(*n as usize)),
                Kind::Str(s) => {
                    let s = s.trim();
                    match s.strip_suffix('%') {
                        Some(p) => p.trim().parse::<f64>().ok().map(Batch::Percent),
                        None => s.parse::<usize>().ok().map(Batch::Count),
                    }
                }
                _ => None,
            };
            match batch {
                Some(b) => out.push(b),
                None => self.error(
                    file,
                    item.pos,
                    "'serial' must be a number, a percentage (\"30%\") or a list of them",
                ),
            }
        }
        out
    }

    fn strategy(&mut self, file: &Path, node: &Node) -> Strategy {
        match node.as_str() {
            Some("linear") => Strategy::Linear,
            Some("free") => Strategy::Free,
            _ => {
                let text = node.key_text();
                self.error(
                    file,
                    node.pos,
                    format!(
                        "unknown strategy '{text}' (linear or free){}",
                        did_you_mean(&text, ["linear", "free"])
                    ),
                );
                Strategy::Linear
            }
        }
    }
}
