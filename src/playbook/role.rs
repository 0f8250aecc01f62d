//! Roles in Ansible's layout: `roles/<name>/{tasks,handlers,defaults,vars,meta}/main.yml`
//! (or `.yaml`; a missing folder is fine; vars and defaults may also be `main.json` or a
//! `main/` folder of files). Finds a role beside the playbook, in each
//! `roles_path` entry, beside the role that uses it, or by path; reads role entries
//! (`- name`, `- {role: x, vars: ..., tags: ..., when: ...}`) and loads `meta/main.yml`
//! dependencies before the role, once each per play unless `allow_duplicates`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::loader::{dedup_paths, Inherited, Loader, TaskCtx};
use super::yaml::{Kind, Node, Pos};
use super::{Role, RoleFiles};
use crate::Vars;

/// A role as it is used: `roles:` entries, `dependencies:`, `include_role`.
#[derive(Debug, Clone, Default)]
pub(super) struct RoleEntry {
    pub name: String,
    pub pos: Pos,
    /// The file holding the entry (for errors).
    pub file: PathBuf,
    pub params: Vars,
    pub tags: Vec<String>,
    pub when: Vec<String>,
    pub inherit: Inherited,
}

/// What `meta/main.yml` says.
struct RoleMeta {
    dependencies: Vec<RoleEntry>,
    allow_duplicates: bool,
}

/// Role entry keys that are keywords we do not act on (everything else that is not a
/// keyword read below is a role parameter).
const ENTRY_IGNORED: &[&str] = &["collections", "debugger", "throttle", "timeout"];

impl Loader<'_> {
    /// Folders searched for `<folder>/<name>`, in order.
    pub(super) fn role_search_dirs(&self, ctx: &TaskCtx) -> Vec<PathBuf> {
        let mut dirs = vec![
            ctx.playbook_dir.join("roles"),
            self.playbook_dir.join("roles"),
        ];
        dirs.extend(self.roles_path.iter().cloned());
        if let Some(parent) = ctx.role.as_ref().and_then(|r| r.path.parent()) {
            dirs.push(parent.to_path_buf());
        }
        dirs.push(ctx.playbook_dir.clone());
        dirs.push(self.playbook_dir.clone());
        dedup_paths(dirs)
    }

    /// Finds a role folder by name (or path); records an error when there is none.
    fn find_role(
        &mut self,
        name: &str,
        search: &[PathBuf],
        file: &Path,
        pos: Pos,
    ) -> Option<PathBuf> {
        let name_path = expand_home(name);
        let mut candidates: Vec<PathBuf> = search.iter().map(|d| d.join(&name_path)).collect();
        if name_path.is_absolute() {
            candidates = vec![name_path];
        }
        let candidates = dedup_paths(candidates);
        if let Some(found) = candidates.iter().find(|p| p.is_dir()) {
            return Some(found.canonicalize().unwrap_or_else(|_| found.clone()));
        }
        let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        self.error(
            file,
            pos,
            format!("role '{name}' not found (looked in {})", looked.join(", ")),
        );
        None
    }

    /// Reads one role entry.
    pub(super) fn role_entry(&mut self, node: &Node, file: &Path) -> Option<RoleEntry> {
        let mut entry = RoleEntry {
            pos: node.pos,
            file: file.to_path_buf(),
            ..Default::default()
        };
        match &node.kind {
            Kind::Str(s) => entry.name = s.clone(),
            Kind::Map(entries) => {
                let mut name = None;
                for (k, v) in entries {
                    let key = k.key_text();
                    match key.as_str() {
                        "role" | "name" => name = self.string(file, v, &key),
                        "vars" => entry.params.extend(self.vars(file, v, "vars")),
                        "tags" => entry.tags = self.string_list(file, v, "tags", true),
                        "when" => entry.when = self.conditions(file, v, "when"),
                        k if entry.inherit.read(self, file, k, v) => {}
                        "become_method" => self.check_become_method(file, v),
                        "environment" => entry.inherit.environment = self.environment(file, v),
                        k if ENTRY_IGNORED.contains(&k) => {}
                        _ => {
                            entry.params.insert(key, v.to_json());
                        }
                    }
                }
                match name {
                    Some(name) => entry.name = name,
                    None => {
                        self.error(file, node.pos, "role entry needs a 'role' (or 'name')");
                        return None;
                    }
                }
            }
            _ => {
                self.error(
                    file,
                    node.pos,
                    format!(
                        "a role entry must be a name or a mapping, not {}",
                        node.type_name()
                    ),
                );
                return None;
            }
        }
        Some(entry)
    }

    /// A play's `roles:`: each role after its dependencies, each once (unless it allows
    /// duplicates or is used with other parameters).
    pub(super) fn play_roles(&mut self, node: &Node, ctx: &TaskCtx) -> Vec<Arc<Role>> {
        let mut out = Vec::new();
        for item in self.items(&ctx.file, node, "'roles'") {
            if let Some(entry) = self.role_entry(item, &ctx.file) {
                let search = self.role_search_dirs(ctx);
                self.add_role_with_deps(&entry, &search, ctx, &mut out);
            }
        }
        out
    }

    fn add_role_with_deps(
        &mut self,
        entry: &RoleEntry,
        search: &[PathBuf],
        ctx: &TaskCtx,
        out: &mut Vec<Arc<Role>>,
    ) {
        let Some(path) = self.find_role(&entry.name, search, &entry.file, entry.pos) else {
            return;
        };
        let Some(meta) = self.role_dependencies(&path, ctx, entry, out) else {
            return;
        };
        let duplicate = out
            .iter()
            .any(|r| r.path == path && r.params == entry.params);
        if duplicate && !meta.allow_duplicates {
            return;
        }
        if let Some(role) = self.load_role_dir(
            &path,
            entry,
            &RoleFiles::default(),
            ctx,
            &entry.file,
            entry.pos,
        ) {
            out.push(Arc::new(role));
        }
    }

    /// Reads `meta/main.yml` and adds the role's dependencies to `out`. `None` on a cycle.
    fn role_dependencies(
        &mut self,
        path: &Path,
        ctx: &TaskCtx,
        entry: &RoleEntry,
        out: &mut Vec<Arc<Role>>,
    ) -> Option<RoleMeta> {
        let meta_key = path.join("meta");
        self.enter(&meta_key, &entry.file, entry.pos, "role dependency")?;
        let meta = self.role_meta(path);
        let dep_ctx = TaskCtx {
            role: Some(Arc::new(Role {
                name: entry.name.clone(),
                path: path.to_path_buf(),
                ..Default::default()
            })),
            ..ctx.clone()
        };
        let search = self.role_search_dirs(&dep_ctx);
        for dep in &meta.dependencies {
            self.add_role_with_deps(dep, &search, &dep_ctx, out);
        }
        self.leave();
        Some(meta)
    }

    fn role_meta(&mut self, path: &Path) -> RoleMeta {
        let mut meta = RoleMeta {
            dependencies: Vec::new(),
            allow_duplicates: false,
        };
        let Some(file) = main_file(&path.join("meta")) else {
            return meta;
        };
        let Some(root) = self.parse_yaml(&file) else {
            return meta;
        };
        if root.is_null() {
            return meta;
        }
        let Some(entries) = self.entries(&file, &root, "meta/main.yml") else {
            return meta;
        };
        for (k, v) in entries {
            match k.key_text().as_str() {
                "dependencies" => {
                    for item in self.items(&file, v, "'dependencies'") {
                        if let Some(dep) = self.role_entry(item, &file) {
                            meta.dependencies.push(dep);
                        }
                    }
                }
                "allow_duplicates" => {
                    meta.allow_duplicates =
                        self.boolean(&file, v, "allow_duplicates").unwrap_or(false)
                }
                _ => {}
            }
        }
        meta
    }

    /// A role's file in `dir`: `main` when `name` is `None`, else `name` (with or without
    /// `.yml`/`.yaml`). A named file that is missing is an error at `from`.
    fn role_file(
        &mut self,
        dir: &Path,
        name: Option<&str>,
        what: &str,
        role: &str,
        (from_file, from): (&Path, Pos),
    ) -> Result<Option<PathBuf>, ()> {
        let Some(name) = name else {
            return Ok(main_file(dir));
        };
        let candidates = [
            dir.join(name),
            dir.join(format!("{name}.yml")),
            dir.join(format!("{name}.yaml")),
        ];
        match candidates.iter().find(|p| p.is_file()) {
            Some(found) => Ok(Some(found.clone())),
            None => {
                self.error(from_file, from, missing_role_file(what, name, role, dir));
                Err(())
            }
        }
    }

    /// Loads one role folder: defaults, vars, tasks, handlers (each `main` or the file
    /// `from` names).
    fn load_role_dir(
        &mut self,
        path: &Path,
        entry: &RoleEntry,
        files: &RoleFiles,
        ctx: &TaskCtx,
        from_file: &Path,
        from: Pos,
    ) -> Option<Role> {
        let name = Path::new(&entry.name)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| entry.name.clone());
        let at = (from_file, from);
        let defaults = self.role_vars(
            &path.join("defaults"),
            files.defaults.as_deref(),
            "defaults",
            at,
        )?;
        let vars = self.role_vars(&path.join("vars"), files.vars.as_deref(), "vars", at)?;
        let tasks_file = self
            .role_file(
                &path.join("tasks"),
                files.tasks.as_deref(),
                "tasks",
                &entry.name,
                at,
            )
            .ok()?;
        let handlers_file = self
            .role_file(
                &path.join("handlers"),
                files.handlers.as_deref(),
                "handlers",
                &entry.name,
                at,
            )
            .ok()?;
        let info = Arc::new(Role {
            name,
            path: path.to_path_buf(),
            defaults,
            vars,
            params: entry.params.clone(),
            tags: entry.tags.clone(),
            when: entry.when.clone(),
            tasks: Vec::new(),
            handlers: Vec::new(),
            collections: self.role_collections(path),
        });
        let mut inherit = entry.inherit.over(&ctx.inherit);
        if !info.collections.is_empty() {
            inherit.collections = info.collections.clone();
        }
        let role_ctx = TaskCtx {
            file: path.join("tasks").join("main.yml"),
            playbook_dir: ctx.playbook_dir.clone(),
            role: Some(info.clone()),
            handlers: false,
            inherit,
        };
        let tasks = match tasks_file {
            Some(f) => self
                .tasks_file(&f, &role_ctx, from_file, from)
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let handlers = match handlers_file {
            Some(f) => {
                let handler_ctx = TaskCtx {
                    handlers: true,
                    ..role_ctx.clone()
                };
                self.tasks_file(&f, &handler_ctx, from_file, from)
                    .unwrap_or_default()
            }
            None => Vec::new(),
        };
        Some(Role {
            tasks,
            handlers,
            ..(*info).clone()
        })
    }

    /// `collections:` of a role's meta/main.yml (read apart from its dependencies, which
    /// are read only where the role is used from `roles:`).
    fn role_collections(&mut self, path: &Path) -> Vec<String> {
        let Some(file) = main_file(&path.join("meta")) else {
            return Vec::new();
        };
        let Ok(root) = super::yaml::parse_file(&file) else {
            return Vec::new();
        };
        match root.get("collections") {
            Some(v) => self.string_list(&file, v, "collections", false),
            None => Vec::new(),
        }
    }

    /// A role's `vars/` or `defaults/`: `main` or the file `from` names, either as a file
    /// or as a folder of files merged in sorted order (see [`vars_files`]). A named one
    /// that is missing is an error at `at`, as in Ansible.
    fn role_vars(
        &mut self,
        dir: &Path,
        from: Option<&str>,
        what: &str,
        (from_file, pos): (&Path, Pos),
    ) -> Option<Vars> {
        let found = vars_files(dir, from);
        if let (Some(name), true) = (from, found.is_empty()) {
            let role = dir.parent().and_then(Path::file_name).unwrap_or_default();
            let message = missing_role_file(what, name, &role.to_string_lossy(), dir);
            self.error(from_file, pos, message);
            return None;
        }
        let mut out = Vars::new();
        for file in found {
            if let Some(root) = self.parse_yaml(&file) {
                out.extend(self.vars(&file, &root, "a role variables file"));
            }
        }
        Some(out)
    }

    /// A role for `include_role`/`import_role` (and [`super::load_role`]): its dependencies'
    /// tasks and handlers come first in its own lists.
    /// `files` names the `tasks_from`/`vars_from`/`defaults_from`/`handlers_from` files.
    pub(super) fn role_for_include(
        &mut self,
        name: &str,
        files: &RoleFiles,
        search: &[PathBuf],
        ctx: &TaskCtx,
        pos: Pos,
    ) -> Option<Arc<Role>> {
        let entry = RoleEntry {
            name: name.to_string(),
            pos,
            file: ctx.file.clone(),
            ..Default::default()
        };
        let path = self.find_role(name, search, &ctx.file, pos)?;
        let mut deps = Vec::new();
        self.role_dependencies(&path, ctx, &entry, &mut deps)?;
        let mut role = self.load_role_dir(&path, &entry, files, ctx, &ctx.file, pos)?;
        let mut tasks: Vec<_> = deps.iter().flat_map(|d| d.tasks.clone()).collect();
        tasks.append(&mut role.tasks);
        role.tasks = tasks;
        let mut handlers: Vec<_> = deps.iter().flat_map(|d| d.handlers.clone()).collect();
        handlers.append(&mut role.handlers);
        role.handlers = handlers;
        Some(Arc::new(role))
    }
}

/// `main.yml`, `main.yaml` or `main` in a role folder.
/// Ansible's words for a `*_from` file that a role does not have, with where it looked.
fn missing_role_file(what: &str, name: &str, role: &str, dir: &Path) -> String {
    format!(
        "Could not find specified file in role: {what}/{name} (role '{role}', looked in {})",
        dir.display()
    )
}

pub(super) fn main_file(dir: &Path) -> Option<PathBuf> {
    ["main.yml", "main.yaml", "main"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// Reads a vars file (YAML or JSON) the way playbooks are read, with Ansible's YAML 1.1
/// scalars (`yes` is true, `0644` octal); for `include_vars`. Errors carry file:line:col.
pub fn load_vars_data(path: &Path) -> Result<serde_json::Value, super::LoadError> {
    super::yaml::parse_file(path).map(|node| node.to_json())
}

/// The files of a role's vars or defaults, as Ansible finds them: `main.yml`,
/// `main.yaml`, `main.json`, then `main` (a named `vars_from` tries the bare name first);
/// the first that exists wins, and a folder stands for every file in it with one of those
/// extensions or none (sorted, subfolders included, hidden and `~` files skipped).
pub(super) fn vars_files(dir: &Path, from: Option<&str>) -> Vec<PathBuf> {
    const EXTS: &[&str] = &[".yml", ".yaml", ".json"];
    let (name, exts): (&str, Vec<&str>) = match from {
        None => ("main", EXTS.iter().copied().chain([""]).collect()),
        Some(n) => (n, [""].into_iter().chain(EXTS.iter().copied()).collect()),
    };
    for ext in exts {
        let candidate = dir.join(format!("{name}{ext}"));
        if candidate.is_dir() {
            return dir_vars_files(&candidate, EXTS);
        }
        if candidate.is_file() {
            return vec![candidate];
        }
    }
    Vec::new()
}

fn dir_vars_files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && !n.ends_with('~'))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let path = dir.join(&name);
        let ext = Path::new(&name)
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()));
        if path.is_dir() && ext.is_none() {
            out.extend(dir_vars_files(&path, exts));
        } else if path.is_file() && ext.as_deref().is_none_or(|e| exts.contains(&e)) {
            out.push(path);
        }
    }
    out
}

fn expand_home(name: &str) -> PathBuf {
    match (name.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vars_files_as_file_or_sorted_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let put = |rel: &str| {
            let p = d.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "a: 1\n").unwrap();
        };
        assert!(vars_files(d, None).is_empty());
        put("main/20-b.yml");
        put("main/10-a.yaml");
        put("main/.hidden.yml");
        put("main/backup.yml~");
        put("main/notes.txt");
        put("main/sub/30.json");
        let names: Vec<String> = vars_files(d, None)
            .iter()
            .map(|p| p.strip_prefix(d).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            ["main/10-a.yaml", "main/20-b.yml", "main/sub/30.json"]
        );
        put("main.json");
        assert_eq!(vars_files(d, None), vec![d.join("main.json")]);
        put("main.yml");
        assert_eq!(vars_files(d, None), vec![d.join("main.yml")]);
        put("Debian.yml");
        assert_eq!(vars_files(d, Some("Debian")), vec![d.join("Debian.yml")]);
        put("Debian");
        assert_eq!(vars_files(d, Some("Debian")), vec![d.join("Debian")]);
        assert!(vars_files(d, Some("RedHat")).is_empty());
    }
}
