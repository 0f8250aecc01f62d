//! Running a task's module through the fallback (`modules::ansible`): the module infra
//! does not implement natively, resolved by the installed Ansible when the playbook
//! loaded, run on the host over the task's transport, its JSON result mapped onto an
//! [`Outcome`] (status, registered dict, diffs, warnings).

use std::sync::Arc;

use serde_json::Value;

use super::play::PlayRun;
use super::result::Outcome;
use super::state::Frame;
use super::task::{value_text, HostKeywords};
use crate::modules::ansible::{self, Resolution, Verdict};
use crate::playbook::Task;
use crate::report::Status;
use crate::Vars;

/// The host's Python when `ansible_python_interpreter` is not set (what Ansible's
/// interpreter discovery finds on Debian and most current distributions).
const DEFAULT_INTERPRETER: &str = "/usr/bin/python3";

/// `--native-only`: an error naming every task that would run one of Ansible's modules.
pub fn refuse_fallback(playbook: &crate::playbook::Playbook) -> anyhow::Result<()> {
    if playbook.fallback.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = playbook
        .fallback
        .iter()
        .map(|u| format!("{}: module '{}' ({}) is not native", u.loc, u.name, u.fqcn))
        .collect();
    anyhow::bail!(
        "--native-only: {} task(s) would run Ansible's own module:\n{}",
        lines.len(),
        lines.join("\n")
    )
}

#[allow(clippy::too_many_arguments)]
impl PlayRun<'_> {
    /// Runs `module` (as the task names it) with the installed Ansible's module.
    pub(super) async fn run_fallback(
        &self,
        task: &Task,
        frame: &Frame,
        host: &str,
        module: &str,
        args: &Vars,
        vars: &Arc<Vars>,
        kw: &HostKeywords,
    ) -> Outcome {
        let (fqcn, path) = match ansible::resolution(module, &task.collections) {
            Some(Resolution::Module { fqcn, path }) => (fqcn, path),
            Some(Resolution::NeedsAction { fqcn, action }) => {
                return Outcome::failed(format!(
                    "{}: module '{module}' ({fqcn}) needs Ansible's controller-side action plugin '{action}', which infra cannot run",
                    task.loc
                ))
            }
            _ => {
                return Outcome::failed(format!(
                    "{}: couldn't resolve module/action '{module}'",
                    task.loc
                ))
            }
        };
        let transport = match self.transport_for(task, frame, host, vars).await {
            Ok(t) => t,
            Err(o) => return *o,
        };
        let env = match self.environment(task, frame, vars) {
            Ok(env) => env,
            Err(msg) => return Outcome::failed(msg),
        };
        let call = ansible::Call {
            fqcn: fqcn.clone(),
            path,
            args: args.clone(),
            check_mode: kw.check,
            diff: kw.diff,
            no_log: kw.no_log,
            verbosity: self.r.opts.verbosity,
            interpreter: vars
                .get("ansible_python_interpreter")
                .map(value_text)
                .unwrap_or_else(|| DEFAULT_INTERPRETER.to_string()),
            become_: self.become_for(task, frame, vars, kw),
            env,
        };
        let ran = ansible::run(transport.as_ref(), &call).await;
        // A module infra cannot see into may have changed any unit or database.
        self.r.host_reads(transport.host()).invalidate().await;
        let ran = match ran {
            Ok(ran) => ran,
            Err(e) if crate::transport::is_unreachable(&e) => {
                return Outcome::unreachable(format!("{e:#}"))
            }
            Err(e) => return Outcome::failed(format!("{e:#}")),
        };
        for w in &ran.warnings {
            self.r.reporter.warning(w);
        }
        let status = match ran.verdict {
            Verdict::Ok => Status::Ok,
            Verdict::Changed => Status::Changed,
            Verdict::Skipped => Status::Skipped,
            Verdict::Failed => Status::Failed,
        };
        let mut result = ran.result;
        // Ansible registers a module's result without `invocation` (and shows it only
        // from -vvv).
        result.remove("invocation");
        let mut o = Outcome::new(status, result);
        if status == Status::Failed {
            o.result.entry("msg").or_insert_with(|| {
                Value::from(format!("the module {fqcn} failed without a message"))
            });
        }
        o.changes = vec![format!("(ansible module {fqcn})")];
        if call.diff {
            o.diffs = ran.diffs;
        }
        o
    }
}
