//! `include_vars`, run on the controller as Ansible's action plugin does: one file (free
//! form or `file:`), found in the role's `vars/`, the task file's folder and the playbook's
//! folder; or every vars file of a `dir:` (under the role's `vars/`, else beside the task
//! file), walked in sorted order with `depth`, `files_matching`, `ignore_files`,
//! `extensions` and `ignore_unknown_extensions`; `name:` puts everything under one key.
//! The result carries Ansible's keys: `ansible_facts` (the variables, which the engine
//! stores at include_vars precedence, not as facts) and `ansible_included_var_files`.

use std::path::{Path, PathBuf};

use regex::Regex;
use serde_json::{json, Value};

use crate::template::find_in_search_path;
use crate::Vars;

/// Where the task runs from.
pub struct Origin<'a> {
    /// `ansible_search_path` (role folder, task file's folder, playbook folder).
    pub search_path: Vec<PathBuf>,
    pub playbook_dir: &'a Path,
    pub role_path: Option<&'a Path>,
    /// The file the task is written in.
    pub task_file: &'a Path,
}

/// What a run loaded: the variables and the files they came from.
#[derive(Debug, Default, PartialEq)]
pub struct Included {
    pub vars: Vars,
    pub files: Vec<String>,
}

impl Included {
    /// The task's result, with Ansible's keys.
    pub fn result(self) -> Vars {
        let mut r = Vars::new();
        r.insert("ansible_facts".into(), Value::Object(self.vars));
        r.insert("ansible_included_var_files".into(), json!(self.files));
        r.insert("changed".into(), Value::Bool(false));
        r
    }
}

const DIR_ARGS: &[&str] = &[
    "dir",
    "depth",
    "files_matching",
    "ignore_files",
    "extensions",
    "ignore_unknown_extensions",
];
const FILE_ARGS: &[&str] = &["file", "_raw_params", "free_form"];

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn truthy(v: &Value) -> bool {
    crate::engine::task::truthy(v)
}

/// Runs `include_vars` with rendered `args`.
pub fn run(args: &Vars, origin: &Origin) -> anyhow::Result<Included> {
    let dirs = args
        .keys()
        .filter(|k| DIR_ARGS.contains(&k.as_str()))
        .count();
    let files = args
        .keys()
        .filter(|k| FILE_ARGS.contains(&k.as_str()))
        .count();
    if dirs > 0 && files > 0 {
        anyhow::bail!("You are mixing file only and dir only arguments, these are incompatible");
    }
    let mut included = match args.get("dir") {
        Some(dir) => load_dir(&text(dir), args, origin)?,
        None => {
            let source = ["file", "_raw_params", "free_form"]
                .iter()
                .find_map(|k| args.get(*k))
                .map(text)
                .map(|s| s.trim_end_matches('\n').to_string())
                .filter(|s| !s.is_empty())
                .ok_or_else(|| anyhow::anyhow!("include_vars needs a file (or dir) to load"))?;
            let path = find_in_search_path(
                &origin.search_path,
                origin.playbook_dir,
                origin.role_path.is_some(),
                Some("vars"),
                &source,
            )
            .map_err(|tried| {
                let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
                anyhow::anyhow!(
                    "Could not find or access '{source}'\nSearched in:\n\t{}",
                    tried.join("\n\t")
                )
            })?;
            let mut out = Included::default();
            load_file(&path, &mut out)?;
            out
        }
    };
    if let Some(name) = args.get("name").map(text).filter(|n| !n.is_empty()) {
        let vars = std::mem::take(&mut included.vars);
        included.vars.insert(name, Value::Object(vars));
    }
    Ok(included)
}

/// Loads one vars file (YAML or JSON, read as Ansible reads YAML; empty is an empty
/// mapping). A syntax error names the file, line and column.
pub fn load_file(path: &Path, into: &mut Included) -> anyhow::Result<()> {
    let data = crate::playbook::load_vars_data(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    match data {
        Value::Null => {}
        Value::Object(map) => into.vars.extend(map),
        _ => anyhow::bail!("{} must be stored as a dictionary/hash", path.display()),
    }
    into.files.push(path.display().to_string());
    Ok(())
}

/// The folder a relative `dir:` means: the role's `vars/<dir>` (or `<role>/<dir>` when it
/// already starts with `vars/`), else beside the task's file.
fn dir_root(dir: &str, origin: &Origin) -> PathBuf {
    if Path::new(dir).is_absolute() {
        return PathBuf::from(dir);
    }
    match origin.role_path {
        Some(role) if dir.split('/').next() == Some("vars") && role.join(dir).exists() => {
            role.join(dir)
        }
        Some(_) if dir.split('/').next() == Some("vars") => PathBuf::from(dir),
        Some(role) => role.join("vars").join(dir),
        None => origin
            .task_file
            .parent()
            .map(|p| p.join(dir))
            .unwrap_or_else(|| PathBuf::from(dir)),
    }
}

fn list_arg(v: Option<&Value>) -> Vec<String> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().map(text).collect(),
        Some(other) => text(other).split_whitespace().map(str::to_string).collect(),
    }
}

fn load_dir(dir: &str, args: &Vars, origin: &Origin) -> anyhow::Result<Included> {
    let root = dir_root(dir, origin);
    if !root.exists() {
        anyhow::bail!("{} directory does not exist", root.display());
    }
    if !root.is_dir() {
        anyhow::bail!("{} is not a directory", root.display());
    }
    let depth = match args.get("depth") {
        None | Some(Value::Null) => 0,
        Some(v) => text(v)
            .trim()
            .parse::<usize>()
            .map_err(|_| anyhow::anyhow!("include_vars: depth must be a number"))?,
    };
    let matcher = match args.get("files_matching").map(text) {
        Some(re) => Some(
            Regex::new(&re)
                .map_err(|e| anyhow::anyhow!("Invalid regular expression: {re}: {e}"))?,
        ),
        None => None,
    };
    let ignore = list_arg(args.get("ignore_files"))
        .iter()
        .map(|p| {
            Regex::new(&format!("(?:{p})$"))
                .map_err(|_| anyhow::anyhow!("Invalid regular expression: {p}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let extensions = match args.get("extensions") {
        None | Some(Value::Null) => vec!["yaml".into(), "yml".into(), "json".into()],
        Some(v @ Value::Array(_)) => list_arg(Some(v)),
        Some(_) => anyhow::bail!("Invalid type for \"extensions\" option, it must be a list"),
    };
    let ignore_unknown = args.get("ignore_unknown_extensions").is_some_and(truthy);
    let role_main = origin.role_path.map(|r| r.join("vars").join("main.yml"));
    let mut out = Included::default();
    for (folder, names) in walk_sorted(&root, depth)? {
        for name in names {
            let path = folder.join(&name);
            if role_main.as_deref() == Some(path.as_path()) {
                continue;
            }
            if matcher.as_ref().is_some_and(|m| !m.is_match(&name)) {
                continue;
            }
            if ignore.iter().any(|re| re.is_match(&name)) {
                continue;
            }
            let ext_ok = Path::new(&name)
                .extension()
                .is_some_and(|e| extensions.iter().any(|x| *x == e.to_string_lossy()));
            if !ext_ok {
                if ignore_unknown {
                    continue;
                }
                anyhow::bail!(
                    "{} does not have a valid extension: {}",
                    path.display(),
                    extensions.join(", ")
                );
            }
            load_file(&path, &mut out)?;
        }
    }
    Ok(out)
}

/// Every folder under `root` (itself included, sorted by path) with its sorted file
/// names, down to `depth` levels (0: all), following symlinks as Ansible's walk does.
fn walk_sorted(root: &Path, depth: usize) -> anyhow::Result<Vec<(PathBuf, Vec<String>)>> {
    let mut folders = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 1usize)];
    while let Some((dir, level)) = stack.pop() {
        let mut files = Vec::new();
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                stack.push((path, level + 1));
            } else {
                files.push(name);
            }
        }
        files.sort();
        if depth == 0 || level <= depth {
            folders.push((dir, files));
        }
    }
    folders.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(folders)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, content: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    fn args(pairs: &[(&str, Value)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn dir_walks_sorted_with_filters_and_depth() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(d, "conf/b.yml", "x: b\nb: 1\n");
        write(d, "conf/a.yaml", "x: a\na: 1\n");
        write(d, "conf/skip.yml", "skipped: 1\n");
        write(d, "conf/notes.txt", "not vars");
        write(d, "conf/sub/c.json", "{\"x\": \"c\", \"c\": 1}");
        let task_file = d.join("play.yml");
        let origin = Origin {
            search_path: vec![d.to_path_buf()],
            playbook_dir: d,
            role_path: None,
            task_file: &task_file,
        };
        let got = run(
            &args(&[
                ("dir", json!("conf")),
                ("ignore_files", json!(["skip.yml"])),
                ("ignore_unknown_extensions", json!(true)),
            ]),
            &origin,
        )
        .unwrap();
        assert_eq!(got.vars["x"], json!("c"), "later files win: {got:?}");
        assert!(!got.vars.contains_key("skipped"));
        assert_eq!(got.files.len(), 3);
        let shallow = run(
            &args(&[
                ("dir", json!("conf")),
                ("depth", json!(1)),
                ("files_matching", json!("^[ab]")),
            ]),
            &origin,
        )
        .unwrap();
        assert_eq!(shallow.vars["x"], json!("b"));
        assert!(!shallow.vars.contains_key("c"));
        let err = run(&args(&[("dir", json!("conf"))]), &origin).unwrap_err();
        assert!(
            err.to_string().contains("does not have a valid extension"),
            "{err}"
        );
        let err = run(
            &args(&[("dir", json!("conf")), ("file", json!("a.yml"))]),
            &origin,
        )
        .unwrap_err();
        assert!(err.to_string().contains("mixing"), "{err}");
    }

    #[test]
    fn file_under_name_and_yaml_errors_name_the_place() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(d, "vars/good.yml", "port: 80\nenabled: yes\nmode: 0644\n");
        write(d, "bad.yml", "a: 1\n  b: [\n");
        write(d, "list.yml", "- 1\n");
        let task_file = d.join("play.yml");
        let origin = Origin {
            search_path: vec![d.to_path_buf()],
            playbook_dir: d,
            role_path: None,
            task_file: &task_file,
        };
        let got = run(
            &args(&[("_raw_params", json!("good.yml")), ("name", json!("cfg"))]),
            &origin,
        )
        .unwrap();
        assert_eq!(got.vars["cfg"]["port"], json!(80));
        // YAML 1.1 as Ansible reads it.
        assert_eq!(got.vars["cfg"]["enabled"], json!(true));
        assert_eq!(got.vars["cfg"]["mode"], json!(420));
        let err = run(&args(&[("file", json!("bad.yml"))]), &origin).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("bad.yml:2:"), "{msg}");
        let err = run(&args(&[("file", json!("list.yml"))]), &origin).unwrap_err();
        assert!(err.to_string().contains("dictionary/hash"), "{err}");
        let err = run(&args(&[("file", json!("nope.yml"))]), &origin).unwrap_err();
        assert!(
            err.to_string()
                .contains("Could not find or access 'nope.yml'"),
            "{err}"
        );
    }
}
