//! The lookups that read the controller's files and commands: `file`, `template`,
//! `pipe`/`lines`, `vars`, `first_found`, `fileglob`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::ErrorKind;

use super::*;
use crate::template::lazy::LazyCtx;
use crate::Vars;

/// `file`: a file's content found under `files/`; `rstrip` (default on), `lstrip`.
pub(super) fn file(call: &Call, term: &Json) -> Result<Json, Error> {
    let name = term_text(term);
    let path = call
        .find(Some("files"), &name)
        .ok_or_else(|| err(format!("Could not locate file in lookup: {name}")))?;
    // A vaulted file is decrypted, as Ansible's file lookup does.
    let content = crate::vault::yaml::read_to_string(&path).map_err(|e| {
        err(format!(
            "The 'file' lookup had an issue accessing the file '{name}' ({}): {e:#}",
            path.display()
        ))
    })?;
    let mut s = content.as_str();
    if call.opt_bool("rstrip", true) {
        s = s.trim_end();
    }
    if call.opt_bool("lstrip", false) {
        s = s.trim_start();
    }
    Ok(Json::String(s.to_string()))
}

/// `template`: a template file under `templates/` rendered with the current variables
/// and `template_vars`.
pub(super) fn template(call: &Call, term: &Json) -> Result<Json, Error> {
    let name = term_text(term);
    let path = call.find(Some("templates"), &name).ok_or_else(|| {
        err(format!(
            "the template file {name} could not be found for the lookup"
        ))
    })?;
    // A vaulted template is rendered from its plaintext, as Ansible's template lookup does.
    let source = crate::vault::read_source(&path)
        .and_then(|(bytes, _)| {
            String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("not UTF-8 text"))
        })
        .map_err(|e| err(format!("reading {}: {e:#}", path.display())))?;
    let root = call
        .state
        .lookup(ROOT_KEY)
        .and_then(|v| v.downcast_object::<RootHandle>())
        .ok_or_else(|| err("the template lookup needs the task's variables"))?;
    let mut vars: Vars = root.0.vars().as_ref().clone();
    // The variables Ansible adds for a template (`template_path`, ...).
    vars.insert("template_path".into(), Json::String(name.clone()));
    vars.insert(
        "template_fullpath".into(),
        Json::String(path.display().to_string()),
    );
    vars.entry("ansible_managed")
        .or_insert_with(|| Json::String("Ansible managed".into()));
    if let Some(Json::Object(extra)) = call.opt("template_vars") {
        for (k, v) in extra {
            vars.insert(k.clone(), v.clone());
        }
    }
    let env = root.0.env();
    let ctx = LazyCtx::root(env.clone(), Arc::new(vars));
    let rendered = env
        .template_from_str(&source)
        .and_then(|t| t.render(&ctx))
        .map_err(|e| err(format!("template lookup {}: {e:#}", path.display())))?;
    // `convert_data` is accepted and, as in ansible-core 2.19, no longer used.
    Ok(Json::String(rendered))
}

/// `pipe`/`lines`: a shell command run on the controller in the playbook's folder.
pub(super) fn shell(call: &Call, command: &str) -> Result<String, Error> {
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .current_dir(call.basedir())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| err(format!("lookup_plugin.pipe({command}): {e}")))?;
    if !out.status.success() {
        return Err(err(format!(
            "lookup_plugin.pipe({command}) returned {}",
            out.status.code().unwrap_or(-1)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `vars`: variables by name (rendered), or `default`.
pub(super) fn vars(call: &Call, terms: &[Json]) -> Result<Vec<Json>, Error> {
    let mut out = Vec::new();
    for t in terms {
        let name = term_text(t);
        match call.state.lookup(&name).filter(|v| !v.is_undefined()) {
            Some(v) => out.push(to_json(&v)?),
            None => match call.options.get("default") {
                Some(d) => out.push(d.clone()),
                None => {
                    return Err(Error::new(
                        ErrorKind::UndefinedError,
                        format!("No variable found with this name: {name}"),
                    ))
                }
            },
        }
    }
    Ok(out)
}

/// `varnames`: for each term (a Python regular expression, searched anywhere in the
/// name), the names of the variables it matches, sorted.
pub(super) fn varnames(call: &Call, terms: &[Json]) -> Result<Vec<Json>, Error> {
    let root = call
        .state
        .lookup(ROOT_KEY)
        .and_then(|v| v.downcast_object::<RootHandle>())
        .ok_or_else(|| err("the varnames lookup needs the task's variables"))?;
    let mut names: Vec<&String> = root.0.vars().keys().collect();
    names.sort();
    let mut out = Vec::new();
    for t in terms {
        let text = term_text(t);
        let pattern = regex::Regex::new(&text)
            .map_err(|e| err(format!("varnames: invalid expression {text:?}: {e}")))?;
        out.extend(
            names
                .iter()
                .filter(|n| pattern.is_match(n))
                .map(|n| Json::String((*n).clone())),
        );
    }
    Ok(out)
}

/// Splits on any of `seps` (Ansible's deprecated but still working magic splitting).
fn split_on(items: &Json, seps: &[char]) -> Vec<String> {
    let list: Vec<String> = match items {
        Json::Array(a) => a.iter().map(term_text).collect(),
        Json::Null => Vec::new(),
        other => vec![term_text(other)],
    };
    list.iter()
        .flat_map(|s| s.split(seps).map(str::to_string).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `first_found` terms to candidate paths: strings, `{files, paths, skip}` mappings and
/// lists of either; `paths` prefixes each of `files`.
pub(super) fn first_found_candidates(
    terms: &[Json],
    paths: &Json,
    skip: &mut bool,
) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for term in terms {
        let (files, paths) = match term {
            Json::Object(m) => {
                if let Some(s) = m.get("skip") {
                    *skip = truthy(s);
                }
                (
                    split_on(m.get("files").unwrap_or(&Json::Null), &[',', ';']),
                    split_on(m.get("paths").unwrap_or(&Json::Null), &[',', ':', ';']),
                )
            }
            Json::String(s) => (vec![s.clone()], split_on(paths, &[',', ':', ';'])),
            Json::Array(inner) => {
                out.extend(first_found_candidates(inner, paths, skip)?);
                continue;
            }
            other => {
                return Err(err(format!(
                    "Invalid term supplied. A string, dict or list is required, not {}",
                    match other {
                        Json::Null => "NoneType",
                        Json::Bool(_) => "bool",
                        _ => "number",
                    }
                )))
            }
        };
        if paths.is_empty() {
            out.extend(files);
        } else {
            for p in &paths {
                for f in &files {
                    out.push(Path::new(p).join(f).display().to_string());
                }
            }
        }
    }
    Ok(out)
}

pub(super) fn first_found(call: &Call, mut terms: Vec<Json>) -> Result<Vec<Json>, Error> {
    let mut skip = call.opt_bool("skip", false);
    if terms.is_empty() {
        if let Some(files) = call.opt("files") {
            terms = vec![Json::Object(call.options.clone())];
            if !files.is_array() && !files.is_string() {
                return Err(err("first_found: 'files' must be a list"));
            }
        }
    }
    let paths = call.opt("paths").cloned().unwrap_or(Json::Null);
    for candidate in first_found_candidates(&terms, &paths, &mut skip)? {
        if let Some(found) = call.find(call.subdir.as_deref(), &candidate) {
            return Ok(vec![Json::String(normalize(&found))]);
        }
    }
    if skip {
        return Ok(Vec::new());
    }
    Err(err("No file was found when using first_found."))
}

/// `a/./b/../c` -> `a/c` without touching the file system (Python's `normpath`).
fn normalize(p: &Path) -> String {
    let mut out: Vec<&str> = Vec::new();
    let text = p.to_string_lossy();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    if text.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

/// `fileglob`: files (not folders) matching each pattern, in the first folder of the
/// search path where the pattern matches something.
pub(super) fn fileglob(call: &Call, terms: &[Json]) -> Result<Vec<Json>, Error> {
    let mut out = Vec::new();
    for t in terms {
        let term = term_text(t);
        let path = Path::new(&term);
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dirs: Vec<PathBuf> = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(dir) => call
                .find(Some("files"), &dir.to_string_lossy())
                .into_iter()
                .collect(),
            None => call
                .search_path()
                .into_iter()
                .flat_map(|p| [p.join("files"), p])
                .collect(),
        };
        for dir in dirs {
            let pattern = dir.join(&file);
            let Ok(entries) = glob::glob(&pattern.to_string_lossy()) else {
                return Err(err(format!("fileglob: bad pattern {term}")));
            };
            let found: Vec<Json> = entries
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .map(|p| Json::String(p.display().to_string()))
                .collect();
            if !found.is_empty() {
                out.extend(found);
                break;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn first_found_terms_expand_paths() {
        let mut skip = false;
        let terms = vec![
            json!({"files": ["a.yml", "b.yml"], "paths": ["vars", "other"], "skip": true}),
            json!("c.yml"),
            json!(["d.yml"]),
        ];
        let out = first_found_candidates(&terms, &json!(null), &mut skip).unwrap();
        assert_eq!(
            out,
            [
                "vars/a.yml",
                "vars/b.yml",
                "other/a.yml",
                "other/b.yml",
                "c.yml",
                "d.yml"
            ]
        );
        assert!(skip);
        assert!(first_found_candidates(&[json!(3)], &json!(null), &mut skip).is_err());
    }
}
