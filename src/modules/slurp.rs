//! `slurp`: a file's content from the host, base64-encoded (`content`, `encoding`,
//! `source`). One read; never changed.

use async_trait::async_trait;
use base64::Engine;
use serde_json::Value;

use super::args::str_req;
use super::{ArgDef, ArgSpec, HostCtx, Module, Plan};
use crate::Vars;

pub struct Slurp;

const ARGS: &[ArgDef] = &[ArgDef {
    name: "src",
    aliases: &["path"],
    required: true,
}];

#[async_trait]
impl Module for Slurp {
    fn name(&self) -> &'static str {
        "slurp"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let src = str_req(args, &["src"])?;
        let mut plan = Plan::default();
        match ctx.transport.read_file(&src, ctx.become_.as_ref()).await? {
            Some(bytes) => {
                plan.result = super::args::vars([
                    (
                        "content",
                        Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
                    ),
                    ("encoding", Value::String("base64".into())),
                    ("source", Value::String(src)),
                ]);
            }
            None => plan.failed = Some(format!("file not found: {src}")),
        }
        Ok(plan)
    }
}
