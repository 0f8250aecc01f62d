//! The engine's own actions in a task: `include_tasks`/`import_tasks` (a static file is
//! loaded now, relative to the role's tasks/ folder, the including file's folder, then the
//! playbook's), `include_role`/`import_role` (loaded now unless the name is templated),
//! and `meta:`.

use std::path::{Path, PathBuf};

use super::keywords::{self, did_you_mean};
use super::kv::parse_kv;
use super::loader::{dedup_paths, first_existing, is_template, Loader, TaskCtx};
use super::task::Action;
use super::yaml::{Kind, Pos};
use super::TaskKind;

impl Loader<'_> {
    pub(super) fn include_tasks_kind(
        &mut self,
        action: &Action,
        ctx: &TaskCtx,
    ) -> Option<TaskKind> {
        let file = ctx.file.clone();
        let name = &action.name;
        let value = &action.value;
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
                        "apply" => {
                            self.error(&file, k.pos, format!("'{name}: apply' is not supported"))
                        }
                        other => self.error(
                            &file,
                            k.pos,
                            format!(
                                "unknown argument '{other}' of '{name}'{}",
                                did_you_mean(other, ["file"])
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
        })
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
        let mut tasks_from = None;
        // vars_from / defaults_from: (key, file name, where it was written).
        let mut from_files: Vec<(&str, String, Pos)> = Vec::new();
        match &value.kind {
            Kind::Str(s) => {
                let kv = parse_kv(s, false);
                name = kv.raw;
                for (k, v) in kv.options {
                    match k.as_str() {
                        "name" => name = Some(v),
                        "tasks_from" => tasks_from = Some(v),
                        "vars_from" => from_files.push(("vars", v, value.pos)),
                        "defaults_from" => from_files.push(("defaults", v, value.pos)),
                        other => self.error(
                            &file,
                            value.pos,
                            format!("unknown argument '{other}' of '{action_name}'"),
                        ),
                    }
                }
            }
            Kind::Map(entries) => {
                const KEYS: &[&str] = &[
                    "name",
                    "tasks_from",
                    "vars_from",
                    "defaults_from",
                    "public",
                    "allow_duplicates",
                    "rolespec_validate",
                ];
                for (k, v) in entries {
                    match k.key_text().as_str() {
                        "name" => name = self.string(&file, v, "name"),
                        "tasks_from" => tasks_from = self.string(&file, v, "tasks_from"),
                        key @ ("vars_from" | "defaults_from") => {
                            if let Some(text) = self.string(&file, v, key) {
                                let sub = if key == "vars_from" {
                                    "vars"
                                } else {
                                    "defaults"
                                };
                                from_files.push((sub, text, v.pos));
                            }
                        }
                        "public" | "allow_duplicates" | "rolespec_validate" => {}
                        other @ ("apply" | "handlers_from") => self.error(
                            &file,
                            k.pos,
                            format!("'{action_name}: {other}' is not supported"),
                        ),
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
        for (sub, from, pos) in &from_files {
            if is_template(from) || is_template(&name) {
                self.error(
                    &file,
                    *pos,
                    format!("'{sub}_from' is only supported with a role name and file name written out (no templates)"),
                );
            }
        }
        if is_template(&name) || tasks_from.as_deref().is_some_and(is_template) {
            return Some(TaskKind::IncludeRole {
                name,
                tasks_from,
                loaded: None,
                import: action_name.ends_with("import_role"),
            });
        }
        let search = self.role_search_dirs(ctx);
        let from: Vec<(&str, String)> = from_files
            .iter()
            .map(|(sub, f, _)| (*sub, f.clone()))
            .collect();
        let dynamic = usize::from(!action_name.ends_with("import_role"));
        self.dynamic += dynamic;
        let loaded = self.role_for_include(
            &name,
            tasks_from.as_deref(),
            &from,
            &search,
            ctx,
            action.key_pos,
        );
        self.dynamic -= dynamic;
        let loaded = loaded?;
        Some(TaskKind::IncludeRole {
            name,
            tasks_from,
            loaded: Some(loaded),
            import: action_name.ends_with("import_role"),
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
