//! The controller-side Python process that asks the installed Ansible to resolve module
//! names and to build module payloads (bridge.py). One process per run, started on first
//! use and kept: a run pays Python's and Ansible's start-up once, however many fallback
//! tasks it has. It exits when infra does (its stdin closes).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

use anyhow::{bail, Context};
use serde_json::Value;

const SCRIPT: &str = include_str!("bridge.py");

/// Where the Python that has Ansible is: `INFRA_ANSIBLE_PYTHON`, else the interpreter of
/// `ansible-playbook` on PATH (its shebang), else /opt/infra-venv/bin/python3.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("INFRA_ANSIBLE_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(p) = ansible_playbook_on_path().and_then(|path| shebang_python(&path)) {
        return p;
    }
    PathBuf::from("/opt/infra-venv/bin/python3")
}

fn ansible_playbook_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("ansible-playbook"))
        .find(|p| p.is_file())
}

/// The interpreter a script's `#!` line names (`#!/usr/bin/env python3` gives `python3`).
fn shebang_python(script: &Path) -> Option<PathBuf> {
    let text = std::fs::read(script).ok()?;
    let first = text.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(first).ok()?.strip_prefix("#!")?.trim();
    let mut words = line.split_whitespace();
    let interp = words.next()?;
    if interp.ends_with("/env") {
        return words.find(|w| !w.starts_with('-')).map(PathBuf::from);
    }
    Some(PathBuf::from(interp))
}

struct Process {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Process {
    fn start() -> anyhow::Result<Process> {
        let python = python();
        let mut child = Command::new(&python)
            .arg("-c")
            .arg(SCRIPT)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} for Ansible's modules (set INFRA_ANSIBLE_PYTHON to a Python that has ansible-core)",
                    python.display()
                )
            })?;
        let stdin = child.stdin.take().context("bridge stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("bridge stdout")?);
        Ok(Process {
            child,
            stdin,
            stdout,
        })
    }

    fn call(&mut self, request: &Value) -> anyhow::Result<Value> {
        let mut line = serde_json::to_string(request)?;
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .and_then(|_| self.stdin.flush())
            .context("writing to the Ansible bridge")?;
        let mut answer = String::new();
        let n = self
            .stdout
            .read_line(&mut answer)
            .context("reading from the Ansible bridge")?;
        if n == 0 {
            let status = self.child.try_wait().ok().flatten();
            bail!(
                "the Ansible bridge ({}) exited ({status:?}); is ansible-core installed there?",
                python().display()
            );
        }
        let answer: Value =
            serde_json::from_str(&answer).context("the Ansible bridge answered no JSON")?;
        if answer.get("ok") != Some(&Value::Bool(true)) {
            let error = answer
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown error");
            bail!("Ansible: {error}");
        }
        Ok(answer)
    }
}

static PROCESS: Mutex<Option<Process>> = Mutex::new(None);

/// Sends one request to the run's bridge (starting it when needed) and returns its answer.
/// Blocking: the engine calls it from `spawn_blocking`.
pub fn call(request: &Value) -> anyhow::Result<Value> {
    let mut guard = PROCESS.lock().unwrap_or_else(|p| p.into_inner());
    if guard.is_none() {
        *guard = Some(Process::start()?);
    }
    let Some(process) = guard.as_mut() else {
        bail!("the Ansible bridge is not running");
    };
    let answer = process.call(request);
    if answer.is_err() {
        // A broken bridge is started afresh by the next request.
        if let Some(mut dead) = guard.take() {
            let _ = dead.child.kill();
            let _ = dead.child.wait();
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_names_the_interpreter() {
        let dir = tempfile::tempdir().unwrap();
        let direct = dir.path().join("a");
        std::fs::write(&direct, "#!/opt/venv/bin/python3\nprint()\n").unwrap();
        assert_eq!(
            shebang_python(&direct),
            Some(PathBuf::from("/opt/venv/bin/python3"))
        );
        let env = dir.path().join("b");
        std::fs::write(&env, "#!/usr/bin/env -S python3.11\n").unwrap();
        assert_eq!(shebang_python(&env), Some(PathBuf::from("python3.11")));
        let none = dir.path().join("c");
        std::fs::write(&none, "echo hi\n").unwrap();
        assert_eq!(shebang_python(&none), None);
    }
}
