//! Ansible's builtin lookup plugins, all run on the controller: `lookup(name, ...)`,
//! `query`/`q` (always a list) and the `with_<name>` loops the engine expands through
//! [`with_loop`]. Files are found the way Ansible's `find_file_in_search_path` finds them:
//! in each entry of `ansible_search_path` (the role, the task file's folder, the playbook
//! folder; the engine sets it per task), first under the plugin's subfolder (`files/`,
//! `templates/`, `vars/`), then directly.
//!
//! Plugins work on JSON data: minijinja values come in, are converted once, and the
//! results go back as minijinja values.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::value::{Kwargs, Object, Rest, Value, ValueKind};
use minijinja::{Error, ErrorKind, State};
use rand::Rng as _;
use serde_json::{Map, Value as Json};

use super::lazy::LazyCtx;
use super::pyfmt::py_str;
use crate::Vars;

/// The lookups this module implements (the names `with_<name>` loops accept).
pub const NAMES: &[&str] = &[
    "file",
    "template",
    "env",
    "pipe",
    "vars",
    "first_found",
    "fileglob",
    "items",
    "list",
    "dict",
    "indexed_items",
    "together",
    "nested",
    "cartesian",
    "subelements",
    "sequence",
    "random_choice",
    "lines",
    "password",
];

/// The name of the hidden function the engine calls to expand a `with_<name>` loop.
pub const WITH_FUNCTION: &str = "__infra_with_lookup";

/// The hidden root-context key that hands the current variables to lookups that render
/// (`template`): minijinja's `State` only gives single names.
pub(super) const ROOT_KEY: &str = "__infra_lookup_root";

/// The current render's variables and environment, reachable from a `State` through
/// [`ROOT_KEY`].
#[derive(Debug)]
pub(super) struct RootHandle(pub Arc<LazyCtx>);

impl Object for RootHandle {}

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

fn to_json(v: &Value) -> Result<Json, Error> {
    if v.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "a lookup term is undefined",
        ));
    }
    serde_json::to_value(v).map_err(|e| err(format!("cannot convert lookup term to data: {e}")))
}

/// A term as text, the way Python's `str()` shows it.
fn term_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => py_str(&Value::from_serialize(other)),
    }
}

/// `ansible.builtin.file` -> `file`.
fn short(name: &str) -> &str {
    name.strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.legacy."))
        .unwrap_or(name)
}

/// What every lookup call shares: where it runs from and its options.
struct Call<'a, 's, 'e> {
    state: &'a State<'s, 'e>,
    /// The subfolder `first_found` adds (only for `with_` loops, as in Ansible).
    subdir: Option<String>,
    options: Map<String, Json>,
}

impl Call<'_, '_, '_> {
    fn var_text(&self, name: &str) -> Option<String> {
        self.state
            .lookup(name)
            .filter(|v| v.kind() == ValueKind::String)
            .map(|v| py_str(&v))
    }

    /// The playbook's folder (Ansible's loader basedir); pipe and password are relative to it.
    fn basedir(&self) -> PathBuf {
        self.var_text("playbook_dir")
            .map(PathBuf::from)
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("."))
    }

    fn search_path(&self) -> Vec<PathBuf> {
        if let Some(v) = self.state.lookup("ansible_search_path") {
            if let Ok(Json::Array(items)) = to_json(&v) {
                return items.iter().map(|p| PathBuf::from(term_text(p))).collect();
            }
        }
        let mut out = Vec::new();
        if let Some(role) = self.var_text("role_path") {
            out.push(PathBuf::from(role));
        }
        out.push(self.basedir());
        out
    }

    fn is_role(&self) -> bool {
        self.state
            .lookup("role_path")
            .is_some_and(|v| !v.is_undefined())
    }

    fn find(&self, subdir: Option<&str>, needle: &str) -> Option<PathBuf> {
        find_in_search_path(
            &self.search_path(),
            &self.basedir(),
            self.is_role(),
            subdir,
            needle,
        )
        .ok()
    }

    fn opt(&self, name: &str) -> Option<&Json> {
        self.options.get(name).filter(|v| !v.is_null())
    }

    fn opt_bool(&self, name: &str, default: bool) -> bool {
        self.opt(name).map(truthy).unwrap_or(default)
    }
}

/// Finds `needle` as Ansible's `path_dwim_relative_stack` does: for each folder of the
/// search path, `<folder>/<subdir>/<needle>` then `<folder>/<needle>` (plus the role's
/// `<subdir>` for a folder inside a role's `tasks/`), then the same under `basedir`. An
/// absolute (or `~`) path is taken as it is. The error lists every place tried.
pub fn find_in_search_path(
    search: &[PathBuf],
    basedir: &Path,
    is_role: bool,
    subdir: Option<&str>,
    needle: &str,
) -> Result<PathBuf, Vec<PathBuf>> {
    let candidates = if needle.starts_with('/') || needle.starts_with('~') {
        vec![expand_home(needle)]
    } else {
        let first = needle.split('/').next().unwrap_or("");
        let mut out = Vec::new();
        let push_dir = |out: &mut Vec<PathBuf>, dir: &Path| {
            if let Some(sub) = subdir.filter(|s| *s != first) {
                out.push(dir.join(sub).join(needle));
            }
            out.push(dir.join(needle));
        };
        for path in search {
            if let Some(base) = path.parent() {
                if is_role && base.ends_with("tasks") {
                    if let (Some(sub), Some(role)) = (subdir, base.parent()) {
                        out.push(role.join(sub).join(needle));
                    }
                    out.push(base.join(needle));
                }
            }
            push_dir(&mut out, path);
        }
        push_dir(&mut out, basedir);
        out
    };
    match candidates.iter().find(|p| p.exists()) {
        Some(found) => Ok(found.clone()),
        None => Err(candidates),
    }
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

fn truthy(v: &Json) -> bool {
    match v {
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Json::String(s) => matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "yes" | "true" | "1" | "on" | "y" | "t"
        ),
        _ => false,
    }
}

/// Runs plugin `name` on `terms`.
fn run(call: &Call, name: &str, terms: Vec<Json>) -> Result<Vec<Json>, Error> {
    match short(name) {
        "file" => terms.iter().map(|t| file(call, t)).collect(),
        "template" => terms.iter().map(|t| template(call, t)).collect(),
        "env" => Ok(terms
            .iter()
            .map(|t| match std::env::var(term_text(t)) {
                Ok(v) => Json::String(v),
                Err(_) => call.opt("default").cloned().unwrap_or(Json::from("")),
            })
            .collect()),
        "pipe" => terms
            .iter()
            .map(|t| shell(call, &term_text(t)).map(|out| Json::String(out.trim_end().into())))
            .collect(),
        "lines" => {
            let mut out = Vec::new();
            for t in &terms {
                let text = shell(call, &term_text(t))?;
                out.extend(text.lines().map(|l| Json::String(l.to_string())));
            }
            Ok(out)
        }
        "vars" => vars(call, &terms),
        "first_found" => first_found(call, terms),
        "fileglob" => fileglob(call, &terms),
        "items" => Ok(flatten_once(terms)),
        "list" => Ok(terms),
        "dict" => dict(terms),
        "indexed_items" => Ok(flatten_once(terms)
            .into_iter()
            .enumerate()
            .map(|(i, t)| Json::Array(vec![Json::from(i), t]))
            .collect()),
        "together" => together(terms),
        "nested" | "cartesian" => nested(terms),
        "subelements" => subelements(terms),
        "sequence" => {
            let mut out = Vec::new();
            for t in &terms {
                out.extend(sequence(&term_text(t))?.into_iter().map(Json::String));
            }
            Ok(out)
        }
        "random_choice" => {
            if terms.is_empty() {
                return Ok(terms);
            }
            let i = rand::thread_rng().gen_range(0..terms.len());
            Ok(vec![terms[i].clone()])
        }
        "password" => terms
            .iter()
            .map(|t| password(call, &term_text(t)).map(Json::String))
            .collect(),
        other => Err(err(format!(
            "lookup plugin '{other}' not found (infra has: {})",
            NAMES.join(", ")
        ))),
    }
}

/// Ansible's `LookupBase._flatten`: lists among the terms are spliced in, one level.
fn flatten_once(terms: Vec<Json>) -> Vec<Json> {
    terms
        .into_iter()
        .flat_map(|t| match t {
            Json::Array(inner) => inner,
            other => vec![other],
        })
        .collect()
}

/// `file`: a file's content found under `files/`; `rstrip` (default on), `lstrip`.
fn file(call: &Call, term: &Json) -> Result<Json, Error> {
    let name = term_text(term);
    let path = call
        .find(Some("files"), &name)
        .ok_or_else(|| err(format!("Could not locate file in lookup: {name}")))?;
    let content = std::fs::read_to_string(&path).map_err(|e| {
        err(format!(
            "The 'file' lookup had an issue accessing the file '{name}' ({}): {e}",
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
fn template(call: &Call, term: &Json) -> Result<Json, Error> {
    let name = term_text(term);
    let path = call.find(Some("templates"), &name).ok_or_else(|| {
        err(format!(
            "the template file {name} could not be found for the lookup"
        ))
    })?;
    let source = std::fs::read_to_string(&path)
        .map_err(|e| err(format!("reading {}: {e}", path.display())))?;
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
fn shell(call: &Call, command: &str) -> Result<String, Error> {
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
fn vars(call: &Call, terms: &[Json]) -> Result<Vec<Json>, Error> {
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
fn first_found_candidates(
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

fn first_found(call: &Call, mut terms: Vec<Json>) -> Result<Vec<Json>, Error> {
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
fn fileglob(call: &Call, terms: &[Json]) -> Result<Vec<Json>, Error> {
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

fn dict(terms: Vec<Json>) -> Result<Vec<Json>, Error> {
    let mut out = Vec::new();
    for t in terms {
        let Json::Object(map) = t else {
            return Err(err(format!(
                "with_dict expects a dict, got {}",
                term_text(&t)
            )));
        };
        for (k, v) in map {
            out.push(serde_json::json!({"key": k, "value": v}));
        }
    }
    Ok(out)
}

fn as_list(t: Json, what: &str) -> Result<Vec<Json>, Error> {
    match t {
        Json::Array(a) => Ok(a),
        Json::String(_) | Json::Number(_) | Json::Bool(_) => Ok(vec![t]),
        other => Err(err(format!(
            "{what} requires lists, got {}",
            term_text(&other)
        ))),
    }
}

/// `together`: the lists zipped, shorter ones padded with None.
fn together(terms: Vec<Json>) -> Result<Vec<Json>, Error> {
    if terms.is_empty() {
        return Err(err(
            "with_together requires at least one element in each list",
        ));
    }
    let lists = terms
        .into_iter()
        .map(|t| as_list(t, "with_together"))
        .collect::<Result<Vec<_>, _>>()?;
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    Ok((0..longest)
        .map(|i| {
            Json::Array(
                lists
                    .iter()
                    .map(|l| l.get(i).cloned().unwrap_or(Json::Null))
                    .collect(),
            )
        })
        .collect())
}

/// `nested`: every combination of one item of each list, first list outermost.
fn nested(terms: Vec<Json>) -> Result<Vec<Json>, Error> {
    if terms.is_empty() {
        return Err(err(
            "with_nested requires at least one element in the nested list",
        ));
    }
    let mut combos: Vec<Vec<Json>> = vec![Vec::new()];
    for t in terms {
        let list = as_list(t, "with_nested")?;
        combos = combos
            .into_iter()
            .flat_map(|prefix| {
                list.iter().map(move |x| {
                    let mut next = prefix.clone();
                    next.push(x.clone());
                    next
                })
            })
            .collect();
    }
    Ok(combos.into_iter().map(Json::Array).collect())
}

/// `subelements`: `[list of dicts, 'key.path', {skip_missing}]` -> `[element, sub]` pairs;
/// the element loses the key, as in Ansible.
fn subelements(terms: Vec<Json>) -> Result<Vec<Json>, Error> {
    let usage = "subelements lookup expects a list of two or three items";
    if !(2..=3).contains(&terms.len()) {
        return Err(err(usage));
    }
    let elements = match &terms[0] {
        Json::Array(a) => a.clone(),
        Json::Object(m) if m.get("skipped").is_some_and(truthy) => return Ok(Vec::new()),
        Json::Object(m) => m.values().cloned().collect(),
        _ => {
            return Err(err(format!(
                "{usage}, first a dict or a list, second a string pointing to the subkey"
            )))
        }
    };
    let Json::String(keys) = &terms[1] else {
        return Err(err(format!(
            "{usage}, first a dict or a list, second a string pointing to the subkey"
        )));
    };
    let skip_missing = match terms.get(2) {
        None => false,
        Some(Json::Object(flags)) => flags.get("skip_missing").is_some_and(truthy),
        Some(_) => {
            return Err(err(format!(
                "{usage}, the optional third item must be a dict with flags ('skip_missing',)"
            )))
        }
    };
    let keys: Vec<&str> = keys.split('.').collect();
    let mut out = Vec::new();
    for mut element in elements {
        let Json::Object(map) = &element else {
            return Err(err(format!(
                "subelements lookup expects a dictionary, got '{}'",
                term_text(&element)
            )));
        };
        if map.get("skipped").is_some_and(truthy) {
            continue;
        }
        let sublist = match take_sub(&mut element, &keys)? {
            Some(list) => list,
            None if skip_missing => continue,
            None => {
                return Err(err(format!(
                    "could not find '{}' key in iterated item '{}'",
                    keys.join("."),
                    term_text(&element)
                )))
            }
        };
        for sub in sublist {
            out.push(Json::Array(vec![element.clone(), sub]));
        }
    }
    Ok(out)
}

/// Removes and returns the list at `keys` (dicts along the way).
fn take_sub(element: &mut Json, keys: &[&str]) -> Result<Option<Vec<Json>>, Error> {
    let (last, parents) = keys
        .split_last()
        .ok_or_else(|| err("empty subelements key"))?;
    let mut current = element;
    for k in parents {
        current = match current.get_mut(*k) {
            Some(next @ Json::Object(_)) => next,
            Some(other) => {
                return Err(err(format!(
                    "the key {k} should point to a dictionary, got '{}'",
                    term_text(other)
                )))
            }
            None => return Ok(None),
        };
    }
    let Json::Object(map) = current else {
        return Ok(None);
    };
    match map.get(*last) {
        None => Ok(None),
        Some(Json::Array(_)) => match map.remove(*last) {
            Some(Json::Array(a)) => Ok(Some(a)),
            _ => Ok(None),
        },
        Some(other) => Err(err(format!(
            "the key {last} should point to a list, got '{}'",
            term_text(other)
        ))),
    }
}

/// `sequence`: `start=1 end=10 stride=2 format=host%02d` or `[start-]end[/stride][:format]`,
/// `count=` instead of `end`. Numbers may be hexadecimal (`0x10`) or octal (`0o10`).
pub(super) fn sequence(term: &str) -> Result<Vec<String>, Error> {
    let mut start: i64 = 1;
    let mut end: Option<i64> = None;
    let mut count: Option<i64> = None;
    let mut stride: i64 = 1;
    let mut format = "%d".to_string();
    let num = |s: &str| -> Result<i64, Error> {
        let s = s.trim();
        let parsed = if let Some(h) = s.strip_prefix("0x") {
            i64::from_str_radix(h, 16)
        } else if let Some(o) = s.strip_prefix("0o").or_else(|| s.strip_prefix("0")) {
            if o.is_empty() {
                Ok(0)
            } else {
                i64::from_str_radix(o, 8)
            }
        } else {
            s.parse()
        };
        parsed.map_err(|_| err(format!("can't parse arg={s:?} as integer")))
    };
    let words = shlex::split(term).unwrap_or_else(|| vec![term.to_string()]);
    if words.iter().any(|w| w.contains('=')) {
        for w in &words {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| err(format!("unrecognized arguments to with_sequence: {w}")))?;
            match k {
                "start" => start = num(v)?,
                "end" => end = Some(num(v)?),
                "count" => count = Some(num(v)?),
                "stride" => stride = num(v)?,
                "format" => format = v.to_string(),
                other => {
                    return Err(err(format!(
                        "unrecognized arguments to with_sequence: ['{other}']"
                    )))
                }
            }
        }
    } else {
        let mut rest = term.trim();
        if let Some((r, f)) = rest.split_once(':') {
            format = f.to_string();
            rest = r;
        }
        if let Some((r, s)) = rest.split_once('/') {
            stride = num(s)?;
            rest = r;
        }
        match rest.split_once('-') {
            Some((s, e)) if !s.is_empty() => {
                start = num(s)?;
                end = Some(num(e)?);
            }
            _ => end = Some(num(rest)?),
        }
    }
    let end = match (end, count) {
        (Some(_), Some(_)) => return Err(err("can't specify both count and end in with_sequence")),
        (Some(e), None) => e,
        (None, Some(0)) => return Ok(Vec::new()),
        (None, Some(c)) => start + (c - 1) * stride,
        (None, None) => return Err(err("must specify count or end in with_sequence")),
    };
    if stride == 0 {
        return Ok(Vec::new());
    }
    if (stride > 0 && end < start) || (stride < 0 && end > start) {
        return Err(err("to count backwards make stride negative"));
    }
    let mut out = Vec::new();
    let mut i = start;
    while (stride > 0 && i <= end) || (stride < 0 && i >= end) {
        out.push(printf_int(&format, i)?);
        i += stride;
    }
    Ok(out)
}

/// Python's `format % i` for one integer conversion (`%d`, `%02x`, `%o`, `%5d`, `%%`).
fn printf_int(format: &str, value: i64) -> Result<String, Error> {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut used = false;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        let mut spec = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() || d == '-' || d == '0' {
                spec.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let conv = chars
            .next()
            .ok_or_else(|| err(format!("bad formatting string: {format}")))?;
        let body = match conv {
            'd' | 'i' | 'u' => value.to_string(),
            'x' => format!("{value:x}"),
            'X' => format!("{value:X}"),
            'o' => format!("{value:o}"),
            _ => return Err(err(format!("bad formatting string: {format}"))),
        };
        let left = spec.starts_with('-');
        let zero = spec.trim_start_matches('-').starts_with('0');
        let width: usize = spec.trim_start_matches(['-', '0']).parse().unwrap_or(0);
        let padded = if body.len() >= width {
            body
        } else if left {
            format!("{body:<width$}")
        } else if zero {
            format!("{body:0>width$}")
        } else {
            format!("{body:>width$}")
        };
        out.push_str(&padded);
        used = true;
    }
    if !used {
        return Err(err(format!("bad formatting string: {format}")));
    }
    Ok(out)
}

/// Character sets Python's `string` module names.
fn charset(name: &str) -> String {
    const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
    const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const DIGITS: &str = "0123456789";
    const PUNCT: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
    match name {
        "ascii_letters" => format!("{LOWER}{UPPER}"),
        "ascii_lowercase" => LOWER.into(),
        "ascii_uppercase" => UPPER.into(),
        "digits" => DIGITS.into(),
        "hexdigits" => "0123456789abcdefABCDEF".into(),
        "octdigits" => "01234567".into(),
        "punctuation" => PUNCT.into(),
        other => other.into(),
    }
}

/// The parameters of a `password` term: `path [length=N] [chars=a,b] [seed=x]`.
struct PasswordSpec {
    path: String,
    length: usize,
    chars: Vec<String>,
    seed: Option<String>,
}

fn password_spec(call: &Call, term: &str) -> Result<PasswordSpec, Error> {
    let mut words = term.split(' ');
    let mut path = words.next().unwrap_or("").to_string();
    let mut params: Vec<(String, String)> = Vec::new();
    for w in words.filter(|w| !w.is_empty()) {
        match w.split_once('=') {
            Some((k, v)) => params.push((k.to_string(), v.to_string())),
            None if params.is_empty() => {
                path.push(' ');
                path.push_str(w);
            }
            None => {
                return Err(err(
                    "Unrecognized value after key=value parameters given to password lookup",
                ))
            }
        }
    }
    let mut spec = PasswordSpec {
        path,
        length: 20,
        chars: vec!["ascii_letters".into(), "digits".into(), ".,:-_".into()],
        seed: None,
    };
    let mut apply = |k: &str, v: &Json| -> Result<(), Error> {
        match k {
            "length" => {
                spec.length = term_text(v).trim().parse().map_err(|_| {
                    err(format!(
                        "password lookup: length must be a number, not {}",
                        term_text(v)
                    ))
                })?
            }
            "chars" => {
                spec.chars = match v {
                    Json::Array(a) => a.iter().map(term_text).collect(),
                    other => {
                        let s = term_text(other);
                        let mut out = Vec::new();
                        if s.contains(",,") {
                            out.push(",".to_string());
                        }
                        out.extend(
                            s.replace(",,", ",")
                                .split(',')
                                .filter(|c| !c.is_empty())
                                .map(str::to_string),
                        );
                        out
                    }
                }
            }
            "seed" => spec.seed = Some(term_text(v)),
            "encrypt" | "ident" => {
                if !v.is_null() {
                    return Err(err(
                        "password lookup: 'encrypt' is not supported by infra; hash the value with a filter",
                    ));
                }
            }
            other => {
                return Err(err(format!(
                    "Unrecognized parameter(s) given to password lookup: {other}"
                )))
            }
        }
        Ok(())
    };
    for (k, v) in &call.options {
        apply(k, v)?;
    }
    for (k, v) in &params {
        apply(k, &Json::String(v.clone()))?;
    }
    Ok(spec)
}

/// `password`: the password stored in a file on the controller, created with a random
/// password the first time (mode 0600, folders 0700); `/dev/null` gives a fresh one each
/// call. A stored `password salt=...` keeps its password part.
fn password(call: &Call, term: &str) -> Result<String, Error> {
    let spec = password_spec(call, term)?;
    let path = {
        let p = expand_home(&spec.path);
        if p.is_absolute() {
            p
        } else {
            call.basedir().join(p)
        }
    };
    let dev_null = path == Path::new("/dev/null");
    // Hosts render concurrently: one at a time reads or creates the file (Ansible locks
    // it too), so every host gets the same password.
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !dev_null {
        if let Ok(content) = std::fs::read_to_string(&path) {
            return Ok(stored_password(&content));
        }
    }
    let chars: Vec<char> = spec
        .chars
        .iter()
        .map(|c| charset(c))
        .collect::<String>()
        .chars()
        .filter(|c| *c != '"' && *c != '\'')
        .collect();
    if chars.is_empty() {
        return Err(err("password lookup: no characters to choose from"));
    }
    let generated: String = match &spec.seed {
        Some(seed) => {
            use rand::SeedableRng as _;
            let digest = sha1_seed(seed);
            let mut rng = rand::rngs::StdRng::seed_from_u64(digest);
            (0..spec.length)
                .map(|_| chars[rng.gen_range(0..chars.len())])
                .collect()
        }
        None => {
            let mut rng = rand::rngs::OsRng;
            (0..spec.length)
                .map(|_| chars[rng.gen_range(0..chars.len())])
                .collect()
        }
    };
    if !dev_null {
        write_password(&path, &generated).map_err(|e| {
            err(format!(
                "password lookup: writing {}: {e:#}",
                path.display()
            ))
        })?;
    }
    Ok(generated)
}

/// The password part of a stored `password [salt=...]` line.
fn stored_password(content: &str) -> String {
    let content = content.trim_end();
    match content.rfind(" salt=") {
        Some(i) => content[..i].to_string(),
        None => content.to_string(),
    }
}

fn sha1_seed(seed: &str) -> u64 {
    use sha1::Digest as _;
    let d = sha1::Sha1::digest(seed.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&d[..8]);
    u64::from_le_bytes(bytes)
}

fn write_password(path: &Path, password: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(password.as_bytes())?;
    f.sync_all()
}

/// The options every lookup takes from the call (`wantlist`, `errors`) and the plugin's.
struct Common {
    wantlist: bool,
    errors: String,
    options: Map<String, Json>,
}

fn common(kw: &Kwargs) -> Result<Common, Error> {
    let mut out = Common {
        wantlist: false,
        errors: "strict".into(),
        options: Map::new(),
    };
    for key in kw.args().map(str::to_string).collect::<Vec<_>>() {
        let v: Value = kw.get(&key)?;
        match key.as_str() {
            "wantlist" => out.wantlist = v.is_true(),
            "errors" => out.errors = py_str(&v),
            _ => {
                out.options.insert(key, to_json(&v)?);
            }
        }
    }
    if !matches!(out.errors.as_str(), "strict" | "warn" | "ignore") {
        return Err(err(format!(
            "Invalid value for 'errors' option: {:?} (expected strict, warn or ignore)",
            out.errors
        )));
    }
    Ok(out)
}

/// Runs a lookup with `errors=` handling: `ignore`/`warn` turn a failure into no value.
fn run_checked(
    state: &State,
    name: &str,
    terms: &[Value],
    c: Common,
) -> Result<Option<Vec<Json>>, Error> {
    let terms = terms.iter().map(to_json).collect::<Result<Vec<_>, _>>()?;
    let call = Call {
        state,
        subdir: None,
        options: c.options,
    };
    match run(&call, name, terms) {
        Ok(v) => Ok(Some(v)),
        Err(e) if c.errors != "strict" => {
            if c.errors == "warn" {
                eprintln!("[WARNING]: An unhandled exception occurred while running the lookup plugin '{name}': {e}");
            }
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// `lookup(name, terms..., wantlist=False, errors='strict', **options)`: one value, or
/// the values joined with commas when there are several (Ansible's behaviour).
pub fn lookup(state: &State, name: String, terms: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let c = common(&kw)?;
    let wantlist = c.wantlist;
    let Some(found) = run_checked(state, &name, &terms, c)? else {
        // A failure let through by `errors=`: None, or [] with wantlist (as Ansible).
        return Ok(if wantlist {
            Value::from(Vec::<Value>::new())
        } else {
            Value::from(())
        });
    };
    if wantlist {
        return Ok(Value::from_serialize(&found));
    }
    Ok(match found.len() {
        0 => Value::from(Vec::<Value>::new()),
        1 => Value::from_serialize(&found[0]),
        _ if found.iter().all(|v| v.is_string()) => {
            Value::from(found.iter().map(term_text).collect::<Vec<_>>().join(","))
        }
        _ => Value::from_serialize(&found),
    })
}

/// `query(name, terms..., errors='strict', **options)` (alias `q`): always a list.
pub fn query(state: &State, name: String, terms: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let c = common(&kw)?;
    let found = run_checked(state, &name, &terms, c)?.unwrap_or_default();
    Ok(Value::from_serialize(&found))
}

/// The terms of a `with_` loop as text without template syntax (base64 of the JSON).
pub(super) fn encode_terms(terms: &Json) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(terms.to_string())
}

fn decode_terms(text: &str) -> Result<Json, Error> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| err(format!("with_ loop terms: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| err(format!("with_ loop terms: {e}")))
}

/// The `with_<name>` loop: `terms` as the task wrote them (rendered), made a list the way
/// Ansible's `listify_lookup_plugin_terms` does; `subdir` is the folder `first_found`
/// adds, chosen by the engine from the task's action.
pub fn with_loop(
    state: &State,
    name: String,
    terms: String,
    subdir: Option<String>,
) -> Result<Value, Error> {
    let terms = match decode_terms(&terms)? {
        Json::Array(a) => a,
        Json::Null => Vec::new(),
        other => vec![other],
    };
    let call = Call {
        state,
        subdir,
        options: Map::new(),
    };
    let found = run(&call, &name, terms)?;
    Ok(Value::from_serialize(&found))
}

#[cfg(test)]
mod unit {
    use super::*;
    use serde_json::json;

    #[test]
    fn sequence_forms() {
        assert_eq!(sequence("start=1 end=3").unwrap(), ["1", "2", "3"]);
        assert_eq!(sequence("4").unwrap(), ["1", "2", "3", "4"]);
        assert_eq!(sequence("2-6/2").unwrap(), ["2", "4", "6"]);
        assert_eq!(
            sequence("start=0 count=3 format=host%02d").unwrap(),
            ["host00", "host01", "host02"]
        );
        assert_eq!(sequence("0x0a-0x0c:%x").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            sequence("start=5 end=1 stride=-2").unwrap(),
            ["5", "3", "1"]
        );
        assert!(sequence("start=5 end=1").is_err());
        assert!(sequence("start=1 end=2 count=2").is_err());
        assert!(sequence("start=1 bogus=2").is_err());
    }

    #[test]
    fn nested_and_together() {
        let out = nested(vec![json!(["a", "b"]), json!([1, 2])]).unwrap();
        assert_eq!(
            out,
            vec![
                json!(["a", 1]),
                json!(["a", 2]),
                json!(["b", 1]),
                json!(["b", 2])
            ]
        );
        let out = together(vec![json!(["a", "b"]), json!([1])]).unwrap();
        assert_eq!(out, vec![json!(["a", 1]), json!(["b", null])]);
    }

    #[test]
    fn subelements_pairs_and_skip_missing() {
        let users = json!([
            {"name": "alice", "keys": ["k1", "k2"]},
            {"name": "bob"}
        ]);
        assert!(subelements(vec![users.clone(), json!("keys")]).is_err());
        let out = subelements(vec![users, json!("keys"), json!({"skip_missing": true})]).unwrap();
        assert_eq!(
            out,
            vec![
                json!([{"name": "alice"}, "k1"]),
                json!([{"name": "alice"}, "k2"])
            ]
        );
        let nested_key = json!([{"n": 1, "mysql": {"hosts": ["a"]}}]);
        let out = subelements(vec![nested_key, json!("mysql.hosts")]).unwrap();
        assert_eq!(out, vec![json!([{"n": 1, "mysql": {}}, "a"])]);
    }

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

    #[test]
    fn printf_like_python() {
        assert_eq!(printf_int("%05d", 42).unwrap(), "00042");
        assert_eq!(printf_int("x%-3dy", 7).unwrap(), "x7  y");
        assert_eq!(printf_int("100%%-%d", 1).unwrap(), "100%-1");
        assert!(printf_int("none", 1).is_err());
    }
}
