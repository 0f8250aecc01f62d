//! The fallback: any module infra does not implement natively, run as Ansible runs it.
//!
//! At load time the playbook loader asks [`resolve`] for every non-native module name of
//! the playbook in one go; the installed Ansible's plugin loader answers (collections
//! path, routing and redirects such as `timezone` -> `community.general.timezone`, the
//! `collections:` keyword). The answers are kept for the run ([`resolution`]).
//!
//! At run time [`run`] has Ansible build the module's AnsiballZ payload (the module and
//! the module_utils it imports, with the arguments and Ansible's `_ansible_*` internal
//! arguments embedded) on the controller, sends it over the host's existing transport as
//! the stdin of one `python3` exec (Ansible's pipelining), and reads the JSON result back
//! ([`result`]). Building happens in one long-lived Python process per run ([`bridge`]).
//!
//! Modules that need a controller-side action plugin of their own (e.g. `synchronize`)
//! cannot be run this way and are refused at load time.
//!
//! Owns: the Python bridge, the resolution table, payload execution, result reading.
//! May call: transport.

mod bridge;
mod result;

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use anyhow::Context;
use base64::Engine as _;
use serde_json::{json, Value};

pub use bridge::python;
pub use result::{parse as parse_result, ModuleResult, Verdict};

use crate::transport::{shell, Become, ExecOptions, Transport};
use crate::Vars;

/// What the installed Ansible says a module name is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// A module infra can run: its fully qualified name and its source file.
    Module { fqcn: String, path: String },
    /// A module that needs its own controller-side action plugin.
    NeedsAction { fqcn: String, action: String },
    /// Nobody provides it (`reason` when Ansible knows more, e.g. a broken redirect).
    NotFound { reason: Option<String> },
}

/// A name as a task writes it, with the `collections:` in force there.
pub type NameKey = (String, Vec<String>);

static TABLE: LazyLock<Mutex<HashMap<NameKey, Resolution>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Resolves module names with the installed Ansible: one Python request for all the names
/// not resolved before in this process. Blocking.
pub fn resolve(keys: &[NameKey]) -> anyhow::Result<Vec<Resolution>> {
    let mut missing: Vec<NameKey> = Vec::new();
    {
        let table = TABLE.lock().unwrap_or_else(|p| p.into_inner());
        for k in keys {
            if !table.contains_key(k) && !missing.contains(k) {
                missing.push(k.clone());
            }
        }
    }
    if !missing.is_empty() {
        let items: Vec<Value> = missing
            .iter()
            .map(|(name, colls)| json!({"name": name, "collections": colls}))
            .collect();
        let answer = bridge::call(&json!({"op": "resolve", "items": items}))
            .context("resolving modules with Ansible")?;
        let answers = answer
            .get("items")
            .and_then(Value::as_array)
            .context("the Ansible bridge's answer has no items")?;
        let mut table = TABLE.lock().unwrap_or_else(|p| p.into_inner());
        for (key, a) in missing.into_iter().zip(answers) {
            table.insert(key, resolution_of(a));
        }
    }
    let table = TABLE.lock().unwrap_or_else(|p| p.into_inner());
    Ok(keys
        .iter()
        .map(|k| {
            table
                .get(k)
                .cloned()
                .unwrap_or(Resolution::NotFound { reason: None })
        })
        .collect())
}

fn resolution_of(a: &Value) -> Resolution {
    let s = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_string);
    match (s("fqcn"), s("path"), s("action")) {
        (Some(fqcn), _, Some(action)) => Resolution::NeedsAction { fqcn, action },
        (Some(fqcn), Some(path), None) => Resolution::Module { fqcn, path },
        _ => Resolution::NotFound { reason: s("error") },
    }
}

/// What [`resolve`] said about a name earlier in this process, if it was asked.
pub fn resolution(name: &str, collections: &[String]) -> Option<Resolution> {
    let table = TABLE.lock().unwrap_or_else(|p| p.into_inner());
    table
        .get(&(name.to_string(), collections.to_vec()))
        .cloned()
}

/// One call of an Ansible module on one host.
#[derive(Debug, Clone)]
pub struct Call {
    pub fqcn: String,
    pub path: String,
    /// The task's arguments, templated.
    pub args: Vars,
    pub check_mode: bool,
    pub diff: bool,
    pub no_log: bool,
    pub verbosity: u8,
    /// The host's Python (`ansible_python_interpreter`, default /usr/bin/python3).
    pub interpreter: String,
    pub become_: Option<Become>,
    pub env: Vec<(String, String)>,
}

/// What the host's Python runs: the payload read from stdin in one go. (`python3` reading
/// a script from a pipe itself reads it a byte per system call: 600 000 reads for a
/// typical payload, about a third of a second.)
const READ_STDIN: &str = "import sys;exec(compile(sys.stdin.buffer.read(),'<stdin>','exec'))";

/// Builds the payload on the controller and runs it on the host over `transport`: one
/// exec, the payload on stdin. Errors are transport errors (the module's own failures
/// are a result with `failed`).
pub async fn run(transport: &dyn Transport, call: &Call) -> anyhow::Result<ModuleResult> {
    let request = json!({
        "op": "build",
        "fqcn": call.fqcn,
        "path": call.path,
        "args": Value::Object(call.args.clone()),
        "interpreter": call.interpreter,
        // The bridge adds Ansible's `_ansible_*` internal arguments from these.
        "task": {
            "check_mode": call.check_mode,
            "diff": call.diff,
            "no_log": call.no_log,
            "verbosity": call.verbosity,
        },
    });
    let answer = tokio::task::spawn_blocking(move || bridge::call(&request))
        .await
        .context("the Ansible bridge task")?
        .with_context(|| format!("building the payload of {}", call.fqcn))?;
    let payload = answer
        .get("payload")
        .and_then(Value::as_str)
        .context("the Ansible bridge sent no payload")?;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .context("the Ansible bridge's payload is not base64")?;
    let opts = ExecOptions {
        stdin: Some(payload),
        become_: call.become_.clone(),
        env: call.env.clone(),
        chdir: None,
    };
    let cmd = format!(
        "{} -c {}",
        shell::quote(&call.interpreter),
        shell::quote(READ_STDIN)
    );
    let out = transport.exec(&cmd, &opts).await?;
    Ok(result::parse(&out))
}
