//! `template`: renders a controller template (found in the template search path) with the
//! task's variables through [`HostCtx::render`] and writes the result like `copy`
//! (`trim_blocks` default true, `lstrip_blocks` default false, as Ansible).

use anyhow::Context;
use async_trait::async_trait;
use serde_json::Value;

use super::args::{bool_arg, str_opt, str_req};
use super::fileops::{self, Attrs, WriteOpts};
use super::{ArgDef, ArgSpec, HostCtx, Module, Plan};
use crate::transport::FileKind;
use crate::Vars;

pub struct Template;

const ARGS: &[ArgDef] = &[
    ArgDef::req("src"),
    ArgDef::req("dest"),
    ArgDef::opt("mode"),
    ArgDef::opt("owner"),
    ArgDef::opt("group"),
    ArgDef::opt("backup"),
    ArgDef::opt("validate"),
    ArgDef::opt("force"),
    ArgDef::opt("trim_blocks"),
    ArgDef::opt("lstrip_blocks"),
    ArgDef::opt("newline_sequence"),
    ArgDef::opt("output_encoding"),
    ArgDef::opt("follow"),
    ArgDef::opt("unsafe_writes"),
];

#[async_trait]
impl Module for Template {
    fn name(&self) -> &'static str {
        "template"
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
        let dest = str_req(args, &["dest"])?;
        let attrs = Attrs::from_args(args)?;
        let trim_blocks = bool_arg(args, &["trim_blocks"], true)?;
        let lstrip_blocks = bool_arg(args, &["lstrip_blocks"], false)?;
        let local = super::copy::find_src(&src, &ctx.template_search, "template")?;
        // A vaulted template is rendered from its plaintext, as Ansible does.
        let (source, vaulted) = crate::vault::read_source(&local)?;
        let source = String::from_utf8(source)
            .with_context(|| format!("template {} is not UTF-8 text", local.display()))?;

        let dest_stat = ctx.transport.stat(&dest, ctx.become_.as_ref()).await?;
        let into_dir = dest.ends_with('/')
            || dest_stat
                .as_ref()
                .is_some_and(|s| s.kind == FileKind::Directory);
        let dest_path = if into_dir {
            format!("{}/{}", dest.trim_end_matches('/'), fileops::basename(&src))
        } else {
            dest.clone()
        };

        // The template's own names, on top of the task's.
        let mut over = Vars::new();
        let full = local.display().to_string();
        over.insert("template_path".into(), Value::String(full.clone()));
        over.insert("template_fullpath".into(), Value::String(full.clone()));
        over.insert("template_destpath".into(), Value::String(dest_path.clone()));
        over.insert("template_host".into(), Value::String(ctx.host.clone()));
        // Ansible's default `ansible_managed` string, unless the play sets its own.
        if !ctx.vars.contains_key("ansible_managed") {
            over.insert(
                "ansible_managed".into(),
                Value::String("Ansible managed".into()),
            );
        }
        let rendered = (ctx.render)(&source, &ctx.vars, &over, trim_blocks, lstrip_blocks)
            .with_context(|| format!("rendering template {}", local.display()))?;
        if vaulted {
            // All of a vaulted template is secret, so is what it renders to (--diff).
            crate::vault::remember(&rendered);
        }

        let ids = fileops::resolve_ids(ctx, &attrs).await?;
        let obs = if into_dir {
            fileops::observe(ctx, &dest_path, true).await?
        } else {
            fileops::observe_stated(ctx, &dest_path, dest_stat, true).await?
        };
        let opts = WriteOpts {
            after_header: full.clone(),
            backup: bool_arg(args, &["backup"], false)?,
            validate: str_opt(args, &["validate"])?,
            force: bool_arg(args, &["force"], true)?,
        };
        let mut plan = Plan::default();
        if obs.stat.is_none() {
            let parent = fileops::parent(&dest_path);
            if ctx
                .transport
                .stat(parent, ctx.become_.as_ref())
                .await?
                .is_none()
            {
                plan.failed = Some(format!("Destination directory {parent} does not exist"));
                return Ok(plan);
            }
        }
        fileops::plan_content(
            &mut plan,
            &dest_path,
            &obs,
            rendered.as_bytes(),
            &attrs,
            &ids,
            &opts,
        )?;
        let mut result = fileops::file_result("dest", &dest_path, &obs, &attrs, "file")?;
        result.insert(
            "checksum".into(),
            Value::String(fileops::sha1_hex(rendered.as_bytes())),
        );
        result.insert("size".into(), Value::from(rendered.len()));
        result.insert("src".into(), Value::String(full));
        plan.result = result;
        Ok(plan)
    }
}
