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

mod files;
mod lists;
mod password;

use files::{file, fileglob, first_found, shell, template, varnames, vars};
use lists::{dict, nested, sequence, subelements, together};
use password::password;

/// The lookups this module implements (the names `with_<name>` loops accept).
pub const NAMES: &[&str] = &[
    "file",
    "template",
    "env",
    "pipe",
    "vars",
    "varnames",
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
    "inventory_hostnames",
];

/// Matches an Ansible host pattern against the `groups` variable (group name to its
/// hosts), giving the matching host names in inventory order.
pub type HostPatterns = fn(&Json, &str) -> anyhow::Result<Vec<String>>;

/// The inventory's own pattern matcher, which this layer may not call itself: the engine
/// hands it over once ([`set_host_patterns`]) for `inventory_hostnames`.
static HOST_PATTERNS: std::sync::OnceLock<HostPatterns> = std::sync::OnceLock::new();

/// Gives `inventory_hostnames` its pattern matcher (the first call wins).
pub fn set_host_patterns(matcher: HostPatterns) {
    let _ = HOST_PATTERNS.set(matcher);
}

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
        "varnames" => varnames(call, &terms),
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
        "inventory_hostnames" => inventory_hostnames(call, &terms),
        other => Err(err(format!(
            "lookup plugin '{other}' not found (infra has: {})",
            NAMES.join(", ")
        ))),
    }
}

/// `inventory_hostnames`: the hosts matching the terms (a union, as Ansible's patterns
/// `a,b`), from the `groups` variable as it is now (hosts added by `add_host` and
/// `group_by` included), as Ansible's plugin builds its own inventory from it.
fn inventory_hostnames(call: &Call, terms: &[Json]) -> Result<Vec<Json>, Error> {
    let matcher = HOST_PATTERNS
        .get()
        .ok_or_else(|| err("lookup('inventory_hostnames'): no inventory here"))?;
    let groups = call
        .state
        .lookup("groups")
        .filter(|v| !v.is_undefined())
        .ok_or_else(|| err("lookup('inventory_hostnames'): the `groups` variable is not set"))?;
    let pattern = terms.iter().map(term_text).collect::<Vec<_>>().join(",");
    let hosts = matcher(&to_json(&groups)?, &pattern)
        .map_err(|e| err(format!("lookup('inventory_hostnames', {pattern:?}): {e:#}")))?;
    Ok(hosts.into_iter().map(Json::String).collect())
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
