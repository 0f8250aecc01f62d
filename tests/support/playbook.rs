//! Test helpers for the playbook loader tests: a small module registry with the argument
//! specs of a few modules (the loader's logic is what is tested, not the modules), and
//! helpers to write playbooks into temporary folders and read load errors.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use infra::modules::{ArgDef, ArgSpec};
use infra::playbook::{LoadError, LoadErrors, ModuleRegistry, Playbook};

pub struct TestModules;

const COPY: ArgSpec = ArgSpec {
    args: &[
        ArgDef::opt("src"),
        ArgDef::opt("content"),
        ArgDef::req("dest"),
        ArgDef::opt("mode"),
        ArgDef::opt("owner"),
        ArgDef::opt("group"),
        ArgDef::opt("backup"),
    ],
    free_form: false,
    one_of: &[&["src", "content"]],
};

const COMMAND: ArgSpec = ArgSpec {
    args: &[
        ArgDef::opt("cmd"),
        ArgDef::opt("argv"),
        ArgDef::opt("chdir"),
        ArgDef::opt("creates"),
        ArgDef::opt("removes"),
        ArgDef::opt("stdin"),
    ],
    free_form: true,
    one_of: &[&["cmd", "argv"]],
};

/// Like the real shell: free-form, no one_of group.
const SHELL: ArgSpec = ArgSpec {
    args: &[
        ArgDef::opt("cmd"),
        ArgDef::opt("chdir"),
        ArgDef::opt("creates"),
        ArgDef::opt("removes"),
        ArgDef::opt("executable"),
    ],
    free_form: true,
    one_of: &[],
};

const DEBUG: ArgSpec = ArgSpec {
    args: &[
        ArgDef::opt("msg"),
        ArgDef::opt("var"),
        ArgDef::opt("verbosity"),
    ],
    free_form: false,
    one_of: &[],
};

const FILE: ArgSpec = ArgSpec {
    args: &[
        ArgDef {
            name: "path",
            aliases: &["dest", "name"],
            required: true,
        },
        ArgDef::opt("state"),
        ArgDef::opt("mode"),
        ArgDef::opt("owner"),
        ArgDef::opt("group"),
        ArgDef::opt("src"),
        ArgDef::opt("recurse"),
    ],
    free_form: false,
    one_of: &[],
};

const TEMPLATE: ArgSpec = ArgSpec {
    args: &[
        ArgDef::req("src"),
        ArgDef::req("dest"),
        ArgDef::opt("mode"),
        ArgDef::opt("owner"),
        ArgDef::opt("group"),
    ],
    free_form: false,
    one_of: &[],
};

const APT: ArgSpec = ArgSpec {
    args: &[
        ArgDef::alias("name", &["pkg", "package"]),
        ArgDef::opt("state"),
        ArgDef::opt("update_cache"),
        ArgDef::opt("cache_valid_time"),
        ArgDef::opt("install_recommends"),
    ],
    free_form: false,
    one_of: &[],
};

const SERVICE: ArgSpec = ArgSpec {
    args: &[
        ArgDef::req("name"),
        ArgDef::opt("state"),
        ArgDef::opt("enabled"),
    ],
    free_form: false,
    one_of: &[],
};

const SET_FACT: ArgSpec = ArgSpec {
    args: &[ArgDef::opt("cacheable")],
    free_form: false,
    one_of: &[],
};

impl ModuleRegistry for TestModules {
    fn spec(&self, name: &str) -> Option<ArgSpec> {
        Some(match name {
            "copy" => COPY,
            "command" => COMMAND,
            "shell" => SHELL,
            "debug" => DEBUG,
            "file" => FILE,
            "template" => TEMPLATE,
            "apt" => APT,
            "service" => SERVICE,
            "set_fact" => SET_FACT,
            _ => return None,
        })
    }

    fn names(&self) -> Vec<&'static str> {
        vec![
            "copy", "command", "shell", "debug", "file", "template", "apt", "service", "set_fact",
        ]
    }
}

/// The folder holding this area's fixtures.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/playbook")
}

/// Loads a playbook with the test registry.
pub fn load(path: &Path, roles_path: &[PathBuf]) -> anyhow::Result<Playbook> {
    infra::playbook::load_with(path, roles_path, &TestModules)
}

/// Loads and expects failure; returns the individual errors.
pub fn load_errors(path: &Path, roles_path: &[PathBuf]) -> Vec<LoadError> {
    match load(path, roles_path) {
        Ok(_) => panic!("{} loaded without errors", path.display()),
        Err(e) => match e.downcast::<LoadErrors>() {
            Ok(errors) => errors.errors,
            Err(other) => panic!("not a LoadErrors: {other:#}"),
        },
    }
}

/// Writes files (relative path, content) into a new temporary folder.
pub fn write_tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

/// `file:line:col: message` with the file name relative to `base`, for compact asserts.
pub fn short(errors: &[LoadError], base: &Path) -> Vec<String> {
    errors
        .iter()
        .map(|e| {
            let file = e.loc.file.strip_prefix(base).unwrap_or(&e.loc.file);
            format!(
                "{}:{}:{}: {}",
                file.display(),
                e.loc.line,
                e.loc.col,
                e.message
            )
        })
        .collect()
}
