//! stub
use async_trait::async_trait;
use super::{ArgSpec, HostCtx, Module, Plan};
use crate::Vars;
pub struct WaitFor;
#[async_trait]
impl Module for WaitFor {
    fn name(&self) -> &'static str { "wait_for" }
    fn spec(&self) -> ArgSpec { ArgSpec { args: &[], free_form: false, one_of: &[] } }
    async fn plan(&self, _ctx: &HostCtx, _args: &Vars) -> anyhow::Result<Plan> { anyhow::bail!("not implemented") }
}
