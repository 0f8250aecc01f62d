//! `setup`: gathers facts on demand (`gather_subset`, `filter`, `fact_path`,
//! `gather_timeout`), with the very collector the play's fact gathering uses (one exec, no
//! Python on the host). The result carries `ansible_facts`, which the engine merges into the
//! host's facts like any module's. Read-only, so it runs in check mode too; never changed.
//!
//! The one module that uses something under `engine`: `engine::facts` is a leaf (a transport
//! in, facts out, no engine state), shared so the play's gathering and `setup` cannot differ.

use async_trait::async_trait;
use serde_json::Value;

use super::args::{int_opt, list, str_opt};
use super::{ArgDef, ArgSpec, HostCtx, Module, Plan};
use crate::engine::facts::{self, GatherOptions};
use crate::transport::ExecOptions;
use crate::Vars;

pub struct Setup;

const ARGS: &[ArgDef] = &[
    ArgDef::opt("gather_subset"),
    ArgDef::opt("filter"),
    ArgDef::opt("fact_path"),
    ArgDef::opt("gather_timeout"),
];

/// The module's arguments as gathering options (Ansible's defaults where absent).
pub fn options(args: &Vars) -> anyhow::Result<GatherOptions> {
    let mut opts = GatherOptions::default();
    let subset = list(args, &["gather_subset"])?;
    if !subset.is_empty() {
        opts.subset = subset;
    }
    opts.filter = list(args, &["filter"])?;
    if let Some(p) = str_opt(args, &["fact_path"])? {
        opts.fact_path = p;
    }
    if let Some(t) = int_opt(args, &["gather_timeout"])? {
        opts.timeout = u64::try_from(t).unwrap_or(1).max(1);
    }
    opts.validate()?;
    Ok(opts)
}

#[async_trait]
impl Module for Setup {
    fn name(&self) -> &'static str {
        "setup"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let opts = options(args)?;
        let exec_opts = ExecOptions {
            become_: ctx.become_.clone(),
            env: ctx.env.clone(),
            ..Default::default()
        };
        let out = ctx.transport.gather_facts(&opts, &exec_opts).await?;
        let gathered = facts::collect(&out.stdout, &opts).map_err(|e| {
            anyhow::anyhow!(
                "gathering facts failed (rc {}): {e:#}: {}",
                out.rc,
                out.stderr.trim()
            )
        })?;
        let mut plan = Plan::default();
        plan.result
            .insert("ansible_facts".into(), Value::Object(gathered));
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_become_gather_options() {
        let args = json!({"gather_subset": "!all,network", "filter": ["ansible_eth*"],
                          "fact_path": "/srv/facts", "gather_timeout": "5"});
        let o = options(args.as_object().unwrap()).unwrap();
        assert_eq!(o.subset, vec!["!all", "network"]);
        assert_eq!(o.filter, vec!["ansible_eth*"]);
        assert_eq!(o.fact_path, "/srv/facts");
        assert_eq!(o.timeout, 5);
        let bad = json!({"gather_subset": ["hardwre"]});
        let err = options(bad.as_object().unwrap()).unwrap_err().to_string();
        assert!(err.contains("hardwre"), "{err}");
        assert_eq!(options(&Vars::new()).unwrap(), GatherOptions::default());
    }
}
