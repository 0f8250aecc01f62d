//! `raw`: a command line sent to the host's shell as it is: no Python, no quoting, no
//! module machinery (what bootstraps a host that has nothing yet). Always `changed`; in
//! check mode it is skipped, as Ansible's. `executable` runs it with `<executable> -c`.

use async_trait::async_trait;
use serde_json::Value;

use super::args::{sh_quote, str_opt};
use super::{ArgDef, ArgSpec, Change, HostCtx, Module, Op, Plan};
use crate::Vars;

pub struct Raw;

const ARGS: &[ArgDef] = &[ArgDef::opt("executable")];

#[async_trait]
impl Module for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: true,
            one_of: &[],
        }
    }

    async fn plan(&self, _ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let text = str_opt(args, &["_raw_params"])?
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| anyhow::anyhow!("raw: no command given (free form)"))?;
        let cmd = match str_opt(args, &["executable"])? {
            Some(exe) => format!("{} -c {}", sh_quote(&exe), sh_quote(&text)),
            None => text,
        };
        Ok(run_plan(cmd, None))
    }
}

/// A plan that runs `cmd` once, always changed, registering rc/stdout/stderr (and their
/// lines) as `raw` and `script` do; unpredictable in check mode.
pub fn run_plan(cmd: String, chdir: Option<String>) -> Plan {
    let mut plan = Plan::default();
    for key in ["rc", "stdout", "stderr", "stdout_lines", "stderr_lines"] {
        plan.result.insert(key.into(), Value::Null);
    }
    plan.changes.push(Change {
        summary: format!("run {cmd}"),
        diff: None,
    });
    plan.ops.push(Op::Exec {
        cmd,
        stdin: None,
        chdir,
        allow_failure: false,
    });
    plan.unpredictable = true;
    plan
}
