//! stub
use async_trait::async_trait;
use super::{ArgSpec, HostCtx, Module, Plan};
use crate::Vars;
pub struct Service;
#[async_trait]
impl Module for Service {
    fn name(&self) -> &'static str { "service" }
    fn spec(&self) -> ArgSpec { ArgSpec { args: &[], free_form: false, one_of: &[] } }
    async fn plan(&self, _ctx: &HostCtx, _args: &Vars) -> anyhow::Result<Plan> { anyhow::bail!("not implemented") }
}
pub struct Systemd;
#[async_trait]
impl Module for Systemd {
    fn name(&self) -> &'static str { "systemd" }
    fn spec(&self) -> ArgSpec { ArgSpec { args: &[], free_form: false, one_of: &[] } }
    async fn plan(&self, _ctx: &HostCtx, _args: &Vars) -> anyhow::Result<Plan> { anyhow::bail!("not implemented") }
}
