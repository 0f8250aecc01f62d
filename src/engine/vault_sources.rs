//! Vaulted `copy` and `template` sources are decrypted before the first connection: a
//! wrong or missing vault password is then a load error naming the task and the file,
//! and nothing runs (the modules later read the decrypted copy from the vault's cache).
//! Sources named by a template (`src: "{{ x }}.j2"`) are only known per host; they are
//! decrypted when the task runs.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use crate::playbook::{Playbook, Task, TaskKind};

/// Decrypts every static vaulted source of the playbook's copy and template tasks.
pub fn decrypt_sources(playbook: &Playbook) -> anyhow::Result<()> {
    let playbook_dir = playbook.dir();
    let mut result = Ok(());
    for play in &playbook.plays {
        crate::playbook::all_tasks(play, &mut |task, _| {
            if result.is_ok() {
                result = check_task(task, &playbook_dir);
            }
        });
    }
    result
}

fn check_task(task: &Task, playbook_dir: &Path) -> anyhow::Result<()> {
    let TaskKind::Module { module, args } = &task.kind else {
        return Ok(());
    };
    let sub = match module.rsplit('.').next().unwrap_or(module) {
        "copy" => "files",
        "template" => "templates",
        _ => return Ok(()),
    };
    if args.get("remote_src").is_some_and(truthy) {
        return Ok(());
    }
    if sub == "files" && args.get("decrypt").is_some_and(|v| !truthy(v)) {
        return Ok(());
    }
    let Some(src) = args.get("src").and_then(Value::as_str) else {
        return Ok(());
    };
    if src.contains("{{") || src.contains("{%") {
        return Ok(());
    }
    let Some(path) = candidates(task, playbook_dir, sub, src)
        .into_iter()
        .find(|p| p.is_file())
    else {
        return Ok(());
    };
    let head = read_head(&path);
    if !crate::vault::is_vault(&head) {
        return Ok(());
    }
    crate::vault::read_source(&path)
        .map(|_| ())
        .with_context(|| format!("{}: {module} src {src:?}", task.loc))
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(s.to_lowercase().as_str(), "yes" | "true" | "on" | "1"),
        _ => false,
    }
}

/// The first bytes of a file (enough to see the vault header).
fn read_head(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(64);
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(64).read_to_end(&mut buf);
    }
    buf
}

/// Where the module will look for `src`, in the engine's order (role, task file's folder,
/// playbook folder; each with `files/` or `templates/` first).
fn candidates(task: &Task, playbook_dir: &Path, sub: &str, src: &str) -> Vec<PathBuf> {
    let p = Path::new(src);
    if p.is_absolute() {
        return vec![p.to_path_buf()];
    }
    let mut dirs = Vec::new();
    if let Some(role) = &task.role {
        dirs.push(role.path.join(sub));
        dirs.push(role.path.clone());
    }
    if let Some(dir) = task.loc.file.parent().filter(|d| !d.as_os_str().is_empty()) {
        dirs.push(dir.join(sub));
        dirs.push(dir.to_path_buf());
    }
    dirs.push(playbook_dir.join(sub));
    dirs.push(playbook_dir.to_path_buf());
    dirs.into_iter().map(|d| d.join(p)).collect()
}
