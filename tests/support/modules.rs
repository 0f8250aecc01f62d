//! Test helpers for the modules' integration tests: a `HostCtx` on any transport (with a
//! minijinja renderer standing in for the engine's), and running a module the way the
//! engine does: plan, then apply unless in check mode.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use infra::modules::{self, Applied, HostCtx, Plan};
use infra::transport::local::LocalTransport;
use infra::transport::Transport;
use infra::Vars;
use serde_json::Value;

/// Renders like Ansible's template module: strict undefined, trailing newline kept.
pub fn render(
    source: &str,
    vars: &Arc<Vars>,
    over: &Vars,
    trim: bool,
    lstrip: bool,
) -> anyhow::Result<String> {
    let mut env = minijinja::Environment::new();
    env.set_trim_blocks(trim);
    env.set_lstrip_blocks(lstrip);
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let mut all = (**vars).clone();
    all.extend(over.clone());
    Ok(env.render_str(source, all)?)
}

/// A context on `transport`.
pub fn ctx_on(
    transport: Arc<dyn Transport>,
    check: bool,
    search: Vec<PathBuf>,
    vars: Vars,
) -> HostCtx {
    HostCtx {
        host: transport.host().to_string(),
        transport: infra::modules::HostView::new(transport),
        become_: None,
        env: Vec::new(),
        check_mode: check,
        diff: true,
        vars: Arc::new(vars),
        file_search: search.clone(),
        template_search: search,
        reads: Default::default(),
        render: Arc::new(render),
    }
}

/// A context on the local machine.
pub fn local_ctx(check: bool, search: Vec<PathBuf>, vars: Vars) -> HostCtx {
    ctx_on(
        Arc::new(LocalTransport::new("localhost")),
        check,
        search,
        vars,
    )
}

/// The outcome of one task.
pub struct Outcome {
    pub plan: Plan,
    pub applied: Option<Applied>,
}

impl Outcome {
    pub fn changed(&self) -> bool {
        self.plan.is_changed()
    }

    /// What the engine registers.
    pub fn result(&self) -> &Vars {
        self.applied
            .as_ref()
            .map(|a| &a.result)
            .unwrap_or(&self.plan.result)
    }

    /// All diffs as unified text.
    pub fn diff_text(&self) -> String {
        self.plan
            .changes
            .iter()
            .filter_map(|c| c.diff.as_ref())
            .map(|d| infra::report::diff::unified(d, false))
            .collect()
    }
}

/// Runs a module as the engine does (aliases resolved as the loader does): plan; apply
/// when not in check mode.
pub async fn run(ctx: &HostCtx, module: &str, args: Value) -> anyhow::Result<Outcome> {
    let m = modules::lookup(module).ok_or_else(|| anyhow::anyhow!("no module {module}"))?;
    let mut args = args.as_object().cloned().unwrap_or_default();
    m.spec().resolve_aliases(&mut args);
    let plan = m.plan(ctx, &args).await?;
    if let Some(f) = &plan.failed {
        anyhow::bail!("plan failed: {f}");
    }
    let applied = if ctx.check_mode || plan.ops.is_empty() {
        None
    } else {
        Some(modules::apply(ctx, &plan).await?)
    };
    Ok(Outcome { plan, applied })
}

/// Runs a module and returns the plan even when it is `failed` (no apply then).
pub async fn plan_only(ctx: &HostCtx, module: &str, args: Value) -> anyhow::Result<Plan> {
    let m = modules::lookup(module).ok_or_else(|| anyhow::anyhow!("no module {module}"))?;
    let mut args = args.as_object().cloned().unwrap_or_default();
    m.spec().resolve_aliases(&mut args);
    m.plan(ctx, &args).await
}
