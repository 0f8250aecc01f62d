//! `infra scale | apps | tasks | restart | destroy`: small clients of the scheduler's API.

use clap::Args;

#[derive(Args, Debug)]
pub struct ScaleArgs {
    /// The app id, e.g. `nodeapp` or `/group/app`.
    pub app: String,
    /// The new instance count.
    pub instances: u32,
}

#[derive(Args, Debug)]
pub struct AppsArgs {}

#[derive(Args, Debug)]
pub struct TasksArgs {
    /// Only this app's tasks.
    pub app: Option<String>,
}

#[derive(Args, Debug)]
pub struct AppRefArgs {
    /// The app id.
    pub app: String,
}

pub async fn scale(_args: ScaleArgs) -> anyhow::Result<i32> {
    anyhow::bail!("`infra scale` is not implemented yet")
}

pub async fn list_apps(_args: AppsArgs) -> anyhow::Result<i32> {
    anyhow::bail!("`infra apps` is not implemented yet")
}

pub async fn list_tasks(_args: TasksArgs) -> anyhow::Result<i32> {
    anyhow::bail!("`infra tasks` is not implemented yet")
}

pub async fn restart(_args: AppRefArgs) -> anyhow::Result<i32> {
    anyhow::bail!("`infra restart` is not implemented yet")
}

pub async fn destroy(_args: AppRefArgs) -> anyhow::Result<i32> {
    anyhow::bail!("`infra destroy` is not implemented yet")
}
