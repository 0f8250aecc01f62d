//! Helpers for the engine's integration tests: write a playbook tree into a temp dir, run
//! it through `engine::run_with` with a line reporter whose output is captured, or through
//! the built `infra` binary.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use infra::engine::{self, Recap, RunOptions};
use infra::inventory::Inventory;
use infra::report::{lines::Lines, shared};

/// A writer whose bytes the test can read afterwards.
#[derive(Clone, Default)]
pub struct Buf(pub Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Writes `files` (relative path, content) under a new temp dir. `@DIR@` in contents is
/// replaced by the temp dir's path.
pub fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), files);
    dir
}

pub fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (rel, content) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let content = content.replace("@DIR@", &dir.display().to_string());
        std::fs::write(path, content).unwrap();
    }
}

/// Options for running `playbook` in `dir` with the inventory `inv.yaml` there.
pub fn options(dir: &Path, playbook: &str) -> RunOptions {
    let inventory = Inventory::load(&dir.join("inv.yaml")).unwrap();
    RunOptions::new(dir.join(playbook), inventory)
}

/// Runs through the engine, capturing the line output.
pub async fn run(opts: RunOptions) -> (anyhow::Result<Recap>, String) {
    let buf = Buf::default();
    let reporter = Arc::new(Lines::new(
        shared(Box::new(buf.clone())),
        false,
        opts.verbosity,
    ));
    let result = engine::run_with(opts, reporter).await;
    (result, buf.text())
}

/// Runs and expects success of the load; panics with the output otherwise.
pub async fn run_ok(opts: RunOptions) -> (Recap, String) {
    let (recap, out) = run(opts).await;
    match recap {
        Ok(r) => (r, out),
        Err(e) => panic!("run failed: {e:#}\noutput:\n{out}"),
    }
}

/// Runs the `infra` binary; returns (exit code, stdout, stderr).
pub fn infra(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_infra"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A local-connection inventory with these hosts, each with `base: @DIR@/<host>`.
pub fn local_inventory(hosts: &[&str]) -> String {
    let mut s = String::from("all:\n  vars:\n    ansible_connection: local\n  hosts:\n");
    for h in hosts {
        s.push_str(&format!("    {h}:\n      base: \"@DIR@/{h}\"\n"));
    }
    s
}
