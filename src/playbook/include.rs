//! The engine's own actions in a task: `include_tasks`/`import_tasks` (a static file is
//! loaded now, relative to the role's tasks/ folder, the including file's folder, then the
//! playbook's), `include_role`/`import_role` (loaded now unless the name is templated),
//! and `meta:`.

use std::path::{Path, PathBuf};

use super::keywords::{self, did_you_mean};
use super::kv::parse_kv;
use super::loader::{dedup_paths, first_existing, is_template, Loader, TaskCtx};
use super::task::Action;
use super::yaml::Node;
use super::yaml::{Kind, Pos};
use super::{RoleFiles, Task, TaskKind};

impl Loader<'_> {
    pub(super) fn include_tasks_kind(
        &mut self,
        action: &Action,
        ctx: &TaskCtx,
    ) -> Option<TaskKind> {
        let file = ctx.file.clone();
        let name = &action.name;
        let value = &action.value;
        let mut apply = None;
        let task_file = match &value.kind {
            Kind::Str(s) => {
                let kv = parse_kv(s, false);
                match (kv.raw, kv.options.as_slice()) {
                    (Some(raw), []) => Some(raw),
                    (None, [(k, v)]) if k == "file" => Some(v.clone()),
                    _ => {
                        self.error(&file, value.pos, format!("'{name}' takes a file name"));
                        None
                    }
                }
            }
            Kind::Map(entries) => {
                let mut found = None;
                for (k, v) in entries {
                    match k.key_text().as_str() {
                        "file" | "_raw_params" => found = self.string(&file, v, "file"),
                        "apply" if name.ends_with("include_tasks") => {
                            apply = self.apply_keywords(v, ctx)
                        }
                        "apply" => self.error(
                            &file,
                            k.pos,
                            "'apply' is only valid on include_tasks and include_role (imports take the keywords themselves)",
                        ),
                        other => self.error(
                            &file,
                            k.pos,
                            format!(
                                "unknown argument '{other}' of '{name}'{}",
                                did_you_mean(other, ["file", "apply"])
                            ),
                        ),
                    }
                }
                if found.is_none() {
                    self.error(&file, value.pos, format!("'{name}' needs a 'file'"));
                }
                found
            }
            _ => {
                self.error(&file, value.pos, format!("'{name}' takes a file name"));
                None
            }
        }?;
        if is_template(&task_file) {
            return Some(TaskKind::IncludeTasks {
                file: task_file,
                loaded: None,
                import: name.ends_with("import_tasks"),
                apply,
            });
        }
        let path = self.resolve_task_file(&task_file, ctx, action.key_pos)?;
        let dynamic = usize::from(!name.ends_with("import_tasks"));
        self.dynamic += dynamic;
        let loaded = self.tasks_file(&path, ctx, &file, action.key_pos);
        self.dynamic -= dynamic;
        let loaded = loaded?;
        Some(TaskKind::IncludeTasks {
            file: path.display().to_string(),
            loaded: Some(loaded),
            import: name.ends_with("import_tasks"),
            apply,
        })
    }

    /// `apply:` of include_tasks/include_role: block keywords (become, tags, when,
    /// environment, ...) given to every included task.
    fn apply_keywords(&mut self, node: &Node, ctx: &TaskCtx) -> Option<Box<Task>> {
        let file = ctx.file.clone();
        let entries = self.entries(&file, node, "'apply'")?;
        let mut kws: Vec<(&str, &Node, &Node)> = Vec::new();
        for (k, v) in entries {
            let key = k.key_text();
            match keywords::TASK.iter().find(|kw| **kw == key) {
                Some(kw) if !keywords::NOT_ON_BLOCK.contains(kw) && *kw != "name" => {
                    kws.push((kw, k, v))
                }
                _ => self.error(
                    &file,
                    k.pos,
                    format!("'{key}' cannot be applied to included tasks"),
                ),
            }
        }
        let bare = TaskCtx {
            inherit: Default::default(),
            ..ctx.clone()
        };
        Some(Box::new(self.task_keywords(&kws, &bare, node.pos)))
    }

    /// Where a relative task file is: for a role task, the role's tasks/ folder first;
    /// then the including file's folder, then the playbook's.
    fn resolve_task_file(&mut self, name: &str, ctx: &TaskCtx, pos: Pos) -> Option<PathBuf> {
        let mut candidates = Vec::new();
        if let Some(role) = &ctx.role {
            candidates.push(role.path.join("tasks").join(name));
        }
        candidates.push(ctx.file_dir().join(name));
        candidates.push(ctx.playbook_dir.join(name));
        candidates.push(self.playbook_dir.join(name));
        let candidates = dedup_paths(candidates);
        let found = first_existing(&candidates).filter(|p| p.is_file());
        if found.is_none() {
            let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
            self.error(
                &ctx.file,
                pos,
                format!(
                    "task file '{name}' not found (looked for {})",
                    looked.join(", ")
                ),
            );
        }
        found
    }

    pub(super) fn include_role_kind(&mut self, action: &Action, ctx: &TaskCtx) -> Option<TaskKind> {
        let file = ctx.file.clone();
        let action_name = &action.name;
        let value = &action.value;
        let mut name = None;
        let mut from = RoleFiles::default();
        let import = action_name.ends_with("import_role");
        let mut public = import;
        let mut apply = None;
        const KEYS: &[&str] = &[
            "name",
            "tasks_from",
            "vars_from",
            "defaults_from",
            "handlers_from",
            "public",
            "apply",
            "allow_duplicates",
            "rolespec_validate",
        ];
        match &value.kind {
            Kind::Str(s) => {
                let kv = parse_kv(s, false);
                name = kv.raw;
                for (k, v) in kv.options {
                    match k.as_str() {
                        "name" => name = Some(v),
                        "tasks_from" => from.tasks = Some(v),
                        "vars_from" => from.vars = Some(v),
                        "defaults_from" => from.defaults = Some(v),
                        "handlers_from" => from.handlers = Some(v),
                        "public" => {
                            public = matches!(
                                v.to_ascii_lowercase().as_str(),
                                "yes" | "true" | "1" | "on"
                            )
                        }
                        "allow_duplicates" | "rolespec_validate" => {}
                        other => self.error(
                            &file,
                            value.pos,
                            format!(
                                "unknown argument '{other}' of '{action_name}'{}",
                                did_you_mean(other, KEYS.iter().copied())
                            ),
                        ),
                    }
                }
            }
            Kind::Map(entries) => {
                for (k, v) in entries {
                    let key = k.key_text();
                    match key.as_str() {
                        "name" => name = self.string(&file, v, "name"),
                        "tasks_from" => from.tasks = self.string(&file, v, &key),
                        "vars_from" => from.vars = self.string(&file, v, &key),
                        "defaults_from" => from.defaults = self.string(&file, v, &key),
                        "handlers_from" => from.handlers = self.string(&file, v, &key),
                        "public" => public = self.boolean(&file, v, "public").unwrap_or(import),
                        "apply" if !import => apply = self.apply_keywords(v, ctx),
                        "apply" => self.error(
                            &file,
                            k.pos,
                            "'apply' is only valid on include_tasks and include_role (imports take the keywords themselves)",
                        ),
                        // Each include_role runs the role's tasks again, as in Ansible.
                        "allow_duplicates" | "rolespec_validate" => {}
                        other => self.error(
                            &file,
                            k.pos,
                            format!(
                                "unknown argument '{other}' of '{action_name}'{}",
                                did_you_mean(other, KEYS.iter().copied())
                            ),
                        ),
                    }
                }
            }
            _ => {}
        }
        let Some(name) = name else {
            self.error(
                &file,
                value.pos,
                format!("'{action_name}' needs a role 'name'"),
            );
            return None;
        };
        if is_template(&name) || from.templated() {
            return Some(TaskKind::IncludeRole {
                name,
                from,
                loaded: None,
                import,
                public,
                apply,
            });
        }
        let search = self.role_search_dirs(ctx);
        let dynamic = usize::from(!import);
        self.dynamic += dynamic;
        let loaded = self.role_for_include(&name, &from, &search, ctx, action.key_pos);
        self.dynamic -= dynamic;
        let loaded = loaded?;
        Some(TaskKind::IncludeRole {
            name,
            from,
            loaded: Some(loaded),
            import,
            public,
            apply,
        })
    }

    pub(super) fn meta_kind(&mut self, action: &Action, file: &Path) -> Option<TaskKind> {
        let value = &action.value;
        let Some(name) = value.as_str().map(str::trim) else {
            self.error(file, value.pos, "'meta' takes the name of a meta action");
            return None;
        };
        if !keywords::META_ACTIONS.contains(&name) {
            self.error(
                file,
                value.pos,
                format!(
                    "unknown meta action '{name}'{}",
                    did_you_mean(name, keywords::META_ACTIONS.iter().copied())
                ),
            );
            return None;
        }
        Some(TaskKind::Meta(name.to_string()))
    }
}
