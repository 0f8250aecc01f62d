//! `group_vars/` and `host_vars/` folders: for a name, the file `<name>` (no extension),
//! `<name>.yml`, `<name>.yaml`, `<name>.json`, or a folder `<name>/` whose files are merged
//! in name order (recursively; hidden and backup files skipped), as Ansible finds them.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::yaml::vault_yaml_error;
use super::yaml11::yaml11_bools;
use crate::Vars;

const EXTENSIONS: [&str; 3] = ["yml", "yaml", "json"];

/// The merged vars for `name` in `dir` (`dir` is a `group_vars` or `host_vars` folder);
/// `None` when nothing is there.
pub fn load_named_vars(dir: &Path, name: &str) -> anyhow::Result<Option<Vars>> {
    let mut files = Vec::new();
    let bare = dir.join(name);
    if bare.is_dir() {
        collect_dir_files(&bare, &mut files)?;
    } else if bare.is_file() {
        files.push(bare);
    }
    for ext in EXTENSIONS {
        let f = dir.join(format!("{name}.{ext}"));
        if f.is_file() {
            files.push(f);
        }
    }
    if files.is_empty() {
        return Ok(None);
    }
    let mut vars = Vars::new();
    for f in files {
        for (k, v) in load_vars_file(&f)? {
            vars.insert(k, v);
        }
    }
    Ok(Some(vars))
}

fn collect_dir_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading vars folder {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading vars folder {}", dir.display()))?;
    entries.sort();
    for path in entries {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if file_name.starts_with('.') || file_name.ends_with('~') {
            continue;
        }
        if path.is_dir() {
            collect_dir_files(&path, out)?;
            continue;
        }
        let ext_ok = match path.extension() {
            None => true,
            Some(ext) => EXTENSIONS.contains(&ext.to_string_lossy().as_ref()),
        };
        if ext_ok {
            out.push(path);
        }
    }
    Ok(())
}

/// One vars file: a YAML (or JSON) mapping; an empty file is no vars.
pub fn load_vars_file(path: &Path) -> anyhow::Result<Vars> {
    let text = crate::vault::yaml::read_to_string(path)
        .with_context(|| format!("reading vars file {}", path.display()))?;
    parse_vars(&text, path)
}

/// Parses vars text; errors name `path` and the line:col.
pub fn parse_vars(text: &str, path: &Path) -> anyhow::Result<Vars> {
    let value: Option<serde_yaml::Value> =
        crate::vault::yaml::from_str(&yaml11_bools(text)).map_err(|e| vault_yaml_error(path, e))?;
    match value {
        None | Some(serde_yaml::Value::Null) => Ok(Vars::new()),
        Some(v @ serde_yaml::Value::Mapping(_)) => {
            let json: serde_json::Value = serde_yaml::from_value(v)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            match json {
                serde_json::Value::Object(map) => Ok(map),
                _ => anyhow::bail!("{}: vars must be a mapping", path.display()),
            }
        }
        Some(_) => anyhow::bail!(
            "{}:1:1: vars must be a mapping of names to values",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_files_merge_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let web = dir.path().join("web");
        std::fs::create_dir_all(web.join("sub")).unwrap();
        std::fs::write(web.join("b.yml"), "x: from_b\ny: b\n").unwrap();
        std::fs::write(web.join("a.yaml"), "x: from_a\nz: a\n").unwrap();
        std::fs::write(web.join("sub/c.json"), r#"{"y": "c"}"#).unwrap();
        std::fs::write(web.join("notes.txt"), "ignored: true").unwrap();
        std::fs::write(web.join(".hidden.yml"), "ignored: true").unwrap();
        let vars = load_named_vars(dir.path(), "web").unwrap().unwrap();
        assert_eq!(vars["x"], "from_b");
        assert_eq!(vars["y"], "c");
        assert_eq!(vars["z"], "a");
        assert!(!vars.contains_key("ignored"));
        assert!(load_named_vars(dir.path(), "db").unwrap().is_none());
    }

    #[test]
    fn non_mapping_is_an_error() {
        let err = parse_vars("- a\n- b\n", Path::new("g.yml")).unwrap_err();
        assert!(err.to_string().contains("g.yml"), "{err}");
        assert!(parse_vars("", Path::new("g.yml")).unwrap().is_empty());
    }
}
