//! `copy`: puts a controller file (found in the file search path), a whole folder, or
//! literal `content` on the host, with mode/owner/group, backup, validate and force.

use std::path::{Path, PathBuf};

use anyhow::Context;
use async_trait::async_trait;
use serde_json::Value;

use super::args::{bool_arg, sh_quote, str_opt, str_req};
use super::fileops::{self, Attrs, Observed, WriteOpts};
use super::mode::ModeArg;
use super::{ArgDef, ArgSpec, Change, HostCtx, Module, Op, Plan};
use crate::transport::FileKind;
use crate::Vars;

pub struct Copy;

const ARGS: &[ArgDef] = &[
    ArgDef::opt("src"),
    ArgDef::opt("content"),
    ArgDef::req("dest"),
    ArgDef::opt("mode"),
    ArgDef::opt("owner"),
    ArgDef::opt("group"),
    ArgDef::opt("backup"),
    ArgDef::opt("validate"),
    ArgDef::opt("force"),
    ArgDef::opt("remote_src"),
    ArgDef::opt("directory_mode"),
    ArgDef::opt("follow"),
    ArgDef::opt("local_follow"),
    ArgDef::opt("unsafe_writes"),
    ArgDef::opt("decrypt"),
    ArgDef::opt("checksum"),
];

/// Finds `src` in the search folders (an absolute path is taken as is).
pub fn find_src(src: &str, search: &[PathBuf], what: &str) -> anyhow::Result<PathBuf> {
    let p = Path::new(src);
    if p.is_absolute() {
        if p.exists() {
            return Ok(p.to_path_buf());
        }
        anyhow::bail!("{what} {src} does not exist on the controller");
    }
    for dir in search {
        let candidate = dir.join(p);
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    let searched: Vec<String> = search.iter().map(|d| d.display().to_string()).collect();
    anyhow::bail!(
        "could not find {what} {src:?} (searched: {})",
        searched.join(", ")
    )
}

#[async_trait]
impl Module for Copy {
    fn name(&self) -> &'static str {
        "copy"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[&["src", "content"]],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let dest = str_req(args, &["dest"])?;
        let mut attrs = Attrs::from_args(args)?;
        let opts = WriteOpts {
            after_header: String::new(),
            backup: bool_arg(args, &["backup"], false)?,
            validate: str_opt(args, &["validate"])?,
            force: bool_arg(args, &["force"], true)?,
        };
        let remote_src = bool_arg(args, &["remote_src"], false)?;
        // `decrypt: false` sends a vaulted source as it is (Ansible's option).
        let decrypt = bool_arg(args, &["decrypt"], true)?;
        let ids = fileops::resolve_ids(ctx, &attrs).await?;
        let mut plan = Plan::default();

        let src = str_opt(args, &["src"])?;
        let (content, after_header, src_path) = match (&src, args.get("content")) {
            (Some(_), Some(c)) if !c.is_null() => {
                anyhow::bail!("arguments src and content are mutually exclusive")
            }
            (None, Some(c)) if !c.is_null() => {
                let text = match c {
                    Value::String(s) => s.clone(),
                    other => serde_json::to_string(other).context("serialising content")?,
                };
                (text.into_bytes(), "dynamically generated".to_string(), None)
            }
            (Some(s), _) if remote_src => {
                let bytes = ctx
                    .transport
                    .read_file(s, ctx.become_.as_ref())
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("src {s} does not exist on the host"))?;
                (bytes, s.clone(), Some(s.clone()))
            }
            (Some(s), _) => {
                let local = find_src(s, &ctx.file_search, "src")?;
                if local.is_dir() {
                    plan_directory(ctx, &mut plan, &local, s, &dest, &attrs, &ids, &opts).await?;
                    plan.result = super::args::vars([
                        ("dest", Value::String(dest.clone())),
                        ("src", Value::String(local.display().to_string())),
                    ]);
                    return Ok(plan);
                }
                // A vaulted source is sent decrypted, as Ansible's copy does.
                let bytes = if decrypt {
                    crate::vault::read_source(&local)?.0
                } else {
                    std::fs::read(&local).with_context(|| format!("reading {}", local.display()))?
                };
                if attrs.mode == Some(ModeArg::Preserve) {
                    attrs.mode = Some(ModeArg::Octal(local_mode(&local)?));
                }
                let shown = local.display().to_string();
                (bytes, shown.clone(), Some(shown))
            }
            (None, _) => anyhow::bail!("one of the arguments src or content is required"),
        };

        let mut dest_path = dest.clone();
        let dest_stat = ctx.transport.stat(&dest, ctx.become_.as_ref()).await?;
        let dest_is_dir = dest.ends_with('/')
            || dest_stat
                .as_ref()
                .is_some_and(|s| s.kind == FileKind::Directory);
        if dest_is_dir {
            let base = match &src {
                Some(s) => fileops::basename(s).to_string(),
                None => anyhow::bail!("dest {dest} is a directory: content needs a file path"),
            };
            dest_path = format!("{}/{base}", dest.trim_end_matches('/'));
            if dest_stat.is_none() {
                plan.changes.push(Change {
                    summary: format!("create directory {dest}"),
                    diff: None,
                });
                plan.ops.push(fileops::mkdir(&dest));
            }
        }
        let checksum = fileops::sha1_hex(&content);
        let obs = if dest_is_dir && dest_stat.is_none() {
            Observed::default()
        } else if dest_is_dir {
            let stat = ctx.transport.stat(&dest_path, ctx.become_.as_ref()).await?;
            fileops::observe_content(ctx, &dest_path, stat, &content, &checksum).await?
        } else {
            fileops::observe_content(ctx, &dest_path, dest_stat, &content, &checksum).await?
        };
        if obs.stat.is_none() && !dest_is_dir {
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
        let opts = WriteOpts {
            after_header,
            ..opts
        };
        fileops::plan_content(&mut plan, &dest_path, &obs, &content, &attrs, &ids, &opts)?;
        let mut result = fileops::file_result("dest", &dest_path, &obs, &attrs, "file")?;
        result.insert("checksum".into(), Value::String(checksum));
        result.insert("size".into(), Value::from(content.len()));
        if let Some(s) = src_path {
            result.insert("src".into(), Value::String(s));
        }
        plan.result = result;
        Ok(plan)
    }
}

/// The permission bits of a controller file.
fn local_mode(path: &Path) -> anyhow::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).with_context(|| format!("stat {}", path.display()))?;
    Ok(meta.permissions().mode() & 0o7777)
}

/// Copies a controller folder: `src/` copies its content into `dest`, `src` copies the
/// folder itself into `dest/src`.
#[allow(clippy::too_many_arguments)]
async fn plan_directory(
    ctx: &HostCtx,
    plan: &mut Plan,
    local: &Path,
    src_arg: &str,
    dest: &str,
    attrs: &Attrs,
    ids: &fileops::Ids,
    opts: &WriteOpts,
) -> anyhow::Result<()> {
    let root = if src_arg.ends_with('/') {
        dest.trim_end_matches('/').to_string()
    } else {
        format!(
            "{}/{}",
            dest.trim_end_matches('/'),
            fileops::basename(src_arg)
        )
    };
    let mut entries = Vec::new();
    walk(local, Path::new(""), &mut entries)?;
    let dir_attrs = Attrs {
        mode: None,
        owner: attrs.owner.clone(),
        group: attrs.group.clone(),
    };
    let mut dirs = vec![(root.clone(), true)];
    dirs.extend(
        entries
            .iter()
            .map(|(rel, is_dir)| (format!("{root}/{}", rel.display()), *is_dir)),
    );
    for (path, is_dir) in dirs {
        if is_dir {
            let obs = fileops::observe(ctx, &path, false).await?;
            match &obs.stat {
                Some(st) if st.kind == FileKind::Directory => {
                    fileops::plan_attrs(plan, &path, st, &dir_attrs, ids)?
                }
                Some(_) => anyhow::bail!("{path} exists on the host and is not a directory"),
                None => {
                    plan.changes.push(Change {
                        summary: format!("create directory {path}"),
                        diff: None,
                    });
                    match fileops::new_dir_attrs(&dir_attrs, ids)? {
                        Some((mode, owner)) => plan.ops.push(Op::Mkdir {
                            path: path.clone(),
                            mode,
                            owner,
                        }),
                        None => {
                            plan.ops.push(fileops::mkdir(&path));
                            if let Some(o) = &attrs.owner {
                                plan.ops.push(fileops::exec(format!(
                                    "chown {} {}",
                                    sh_quote(o),
                                    sh_quote(&path)
                                )));
                            }
                            if let Some(g) = &attrs.group {
                                plan.ops.push(fileops::exec(format!(
                                    "chgrp {} {}",
                                    sh_quote(g),
                                    sh_quote(&path)
                                )));
                            }
                        }
                    }
                }
            }
        } else {
            let rel = path.strip_prefix(&format!("{root}/")).unwrap_or(&path);
            let local_file = local.join(rel);
            let (content, _) = crate::vault::read_source(&local_file)?;
            let stat = ctx.transport.stat(&path, ctx.become_.as_ref()).await?;
            let checksum = fileops::sha1_hex(&content);
            let obs = fileops::observe_content(ctx, &path, stat, &content, &checksum).await?;
            let mut file_attrs = attrs.clone();
            if attrs.mode == Some(ModeArg::Preserve) {
                file_attrs.mode = Some(ModeArg::Octal(local_mode(&local_file)?));
            }
            let file_opts = WriteOpts {
                after_header: local_file.display().to_string(),
                ..opts.clone()
            };
            fileops::plan_content(plan, &path, &obs, &content, &file_attrs, ids, &file_opts)?;
        }
    }
    Ok(())
}

/// Lists a controller folder recursively (sorted, folders before their content).
fn walk(base: &Path, rel: &Path, out: &mut Vec<(PathBuf, bool)>) -> anyhow::Result<()> {
    let dir = base.join(rel);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading folder {}", dir.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading folder {}", dir.display()))?;
    names.sort_by_key(|e| e.file_name());
    for entry in names {
        let rel_path = rel.join(entry.file_name());
        let is_dir = base.join(&rel_path).is_dir();
        out.push((rel_path.clone(), is_dir));
        if is_dir {
            walk(base, &rel_path, out)?;
        }
    }
    Ok(())
}
