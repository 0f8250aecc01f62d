//! `file`: the state of a path: file (attributes only), directory (created with parents,
//! `recurse`), link, hard, absent, touch; mode (octal or symbolic), owner, group.

use async_trait::async_trait;

use super::args::{bool_arg, choice, sh_quote, str_opt, str_req};
use super::fileops::{self, Attrs, Ids};
use super::mode;
use super::{diff, ArgDef, ArgSpec, Change, HostCtx, Module, Op, Plan};
use crate::transport::{FileKind, FileStat};
use crate::Vars;

pub struct File;

const ARGS: &[ArgDef] = &[
    ArgDef {
        name: "path",
        aliases: &["dest", "name"],
        required: true,
    },
    ArgDef::opt("state"),
    ArgDef::opt("mode"),
    ArgDef::opt("owner"),
    ArgDef::opt("group"),
    ArgDef::opt("recurse"),
    ArgDef::opt("src"),
    ArgDef::opt("force"),
    ArgDef::opt("follow"),
    ArgDef::opt("access_time"),
    ArgDef::opt("modification_time"),
    ArgDef::opt("access_time_format"),
    ArgDef::opt("modification_time_format"),
    ArgDef::opt("unsafe_writes"),
];

const STATES: &[&str] = &["file", "directory", "link", "hard", "absent", "touch"];

fn kind_name(kind: FileKind) -> &'static str {
    match kind {
        FileKind::File => "file",
        FileKind::Directory => "directory",
        FileKind::Symlink => "link",
        FileKind::Other => "file",
    }
}

#[async_trait]
impl Module for File {
    fn name(&self) -> &'static str {
        "file"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let path = str_req(args, &["path"])?;
        let attrs = Attrs::from_args(args)?;
        let src = str_opt(args, &["src"])?;
        let force = bool_arg(args, &["force"], false)?;
        let recurse = bool_arg(args, &["recurse"], false)?;
        let stat = ctx.transport.stat(&path, ctx.become_.as_ref()).await?;
        let state = match str_opt(args, &["state"])? {
            Some(_) => choice(args, &["state"], STATES, "file")?,
            None if recurse => "directory".to_string(),
            None => match &stat {
                Some(st) => kind_name(st.kind).to_string(),
                None if src.is_some() => "link".to_string(),
                None => "file".to_string(),
            },
        };
        if recurse && state != "directory" {
            anyhow::bail!("argument recurse: only valid with state=directory");
        }
        // `follow` (default yes): state=file/directory on a link act on what it points to.
        let stat = match &stat {
            Some(st)
                if st.kind == FileKind::Symlink
                    && bool_arg(args, &["follow"], true)?
                    && (state == "file" || state == "directory") =>
            {
                let target = st.link_target.clone().unwrap_or_default();
                let resolved = if target.starts_with('/') {
                    target
                } else {
                    format!("{}/{target}", fileops::parent(&path).trim_end_matches('/'))
                };
                match ctx.transport.stat(&resolved, ctx.become_.as_ref()).await? {
                    Some(t) => Some(t),
                    None => stat,
                }
            }
            _ => stat,
        };
        let ids = fileops::resolve_ids(ctx, &attrs).await?;
        let mut plan = Plan::default();
        let before_state = stat.as_ref().map(|s| kind_name(s.kind)).unwrap_or("absent");
        let q = sh_quote(&path);
        match state.as_str() {
            "absent" => {
                if stat.is_some() {
                    plan.changes
                        .push(state_change(&path, before_state, "absent"));
                    plan.ops.push(fileops::exec(format!("rm -rf -- {q}")));
                }
            }
            "file" => match &stat {
                None => {
                    plan.failed = Some(format!("file ({path}) is absent, cannot continue"));
                }
                Some(st) if st.kind == FileKind::Directory => {
                    plan.failed = Some(format!("{path} is a directory, not a file"));
                }
                Some(st) => fileops::plan_attrs(&mut plan, &path, st, &attrs, &ids)?,
            },
            "directory" => match &stat {
                None => {
                    plan.changes
                        .push(state_change(&path, "absent", "directory"));
                    match fileops::new_dir_attrs(&attrs, &ids)? {
                        Some((mode, owner)) => plan.ops.push(Op::Mkdir {
                            path: path.clone(),
                            mode,
                            owner,
                        }),
                        None => {
                            plan.ops.push(fileops::exec(format!("mkdir -p -- {q}")));
                            plan_new_attrs(&mut plan, &path, &attrs, true, recurse)?;
                        }
                    }
                }
                Some(st) if st.kind == FileKind::Directory => {
                    if recurse {
                        plan_recursive(ctx, &mut plan, &path, &attrs, &ids).await?;
                    } else {
                        fileops::plan_attrs(&mut plan, &path, st, &attrs, &ids)?;
                    }
                }
                Some(_) => {
                    plan.failed = Some(format!("{path} already exists as a {before_state}"));
                }
            },
            "link" => {
                let target =
                    src.ok_or_else(|| anyhow::anyhow!("argument src: required with state=link"))?;
                plan_link(
                    &mut plan,
                    &path,
                    stat.as_ref(),
                    &target,
                    force,
                    &attrs,
                    &ids,
                )?;
            }
            "hard" => {
                let target =
                    src.ok_or_else(|| anyhow::anyhow!("argument src: required with state=hard"))?;
                let same = ctx
                    .run(&format!("[ {q} -ef {} ] && echo same", sh_quote(&target)))
                    .await?;
                if !same.stdout.contains("same") {
                    if stat.as_ref().is_some_and(|s| s.kind == FileKind::Directory) {
                        plan.failed = Some(format!("{path} is a directory"));
                        return Ok(plan);
                    }
                    if stat.is_some() && !force {
                        plan.failed = Some(format!(
                            "refusing to convert from {before_state} to hard link for {path}"
                        ));
                        return Ok(plan);
                    }
                    plan.changes.push(state_change(&path, before_state, "hard"));
                    plan.ops
                        .push(fileops::exec(format!("ln -f -- {} {q}", sh_quote(&target))));
                    plan_new_attrs(&mut plan, &path, &attrs, false, false)?;
                } else if let Some(st) = &stat {
                    fileops::plan_attrs(&mut plan, &path, st, &attrs, &ids)?;
                }
            }
            _ => {
                // touch
                let preserve = str_opt(args, &["modification_time"])?.as_deref()
                    == Some("preserve")
                    && str_opt(args, &["access_time"])?.as_deref() == Some("preserve");
                match &stat {
                    None => {
                        plan.changes.push(state_change(&path, "absent", "file"));
                        plan.ops.push(fileops::exec(format!("touch -- {q}")));
                        plan_new_attrs(&mut plan, &path, &attrs, false, false)?;
                    }
                    Some(st) => {
                        if !preserve {
                            plan.changes.push(Change {
                                summary: format!("touch {path}"),
                                diff: None,
                            });
                            plan.ops.push(fileops::exec(format!("touch -- {q}")));
                        }
                        fileops::plan_attrs(&mut plan, &path, st, &attrs, &ids)?;
                    }
                }
            }
        }
        let obs = fileops::Observed {
            stat,
            content: None,
            same_content: None,
        };
        let shown_state = if state == "touch" { "file" } else { &state };
        plan.result = fileops::file_result("path", &path, &obs, &attrs, shown_state)?;
        Ok(plan)
    }
}

fn state_change(path: &str, before: &str, after: &str) -> Change {
    Change {
        summary: format!("{path}: {before} -> {after}"),
        diff: Some(diff::state_diff(
            path,
            format!("state: {before}\n"),
            format!("state: {after}\n"),
        )),
    }
}

/// Attribute ops for an entry the plan creates (its current mode is the default).
fn plan_new_attrs(
    plan: &mut Plan,
    path: &str,
    attrs: &Attrs,
    is_dir: bool,
    recurse: bool,
) -> anyhow::Result<()> {
    let q = sh_quote(path);
    let r = if recurse { "-R " } else { "" };
    if let Some(m) = attrs
        .mode
        .as_ref()
        .map(|m| m.resolve(None, is_dir))
        .transpose()?
        .flatten()
    {
        plan.ops
            .push(fileops::exec(format!("chmod {r}{} {q}", mode::fmt(m))));
    }
    if let Some(o) = &attrs.owner {
        plan.ops
            .push(fileops::exec(format!("chown {r}{} {q}", sh_quote(o))));
    }
    if let Some(g) = &attrs.group {
        plan.ops
            .push(fileops::exec(format!("chgrp {r}{} {q}", sh_quote(g))));
    }
    Ok(())
}

fn plan_link(
    plan: &mut Plan,
    path: &str,
    stat: Option<&FileStat>,
    target: &str,
    force: bool,
    attrs: &Attrs,
    ids: &Ids,
) -> anyhow::Result<()> {
    let q = sh_quote(path);
    match stat {
        Some(st) if st.kind == FileKind::Symlink => {
            if st.link_target.as_deref() == Some(target) {
                return fileops::plan_attrs(plan, path, st, attrs, ids);
            }
            plan.changes.push(Change {
                summary: format!(
                    "link {path}: {} -> {target}",
                    st.link_target.as_deref().unwrap_or("?")
                ),
                diff: Some(diff::state_diff(
                    path,
                    format!("src: {}\n", st.link_target.as_deref().unwrap_or("")),
                    format!("src: {target}\n"),
                )),
            });
        }
        Some(st) if st.kind == FileKind::Directory => {
            plan.failed = Some(format!(
                "refusing to convert from directory to symlink for {path}"
            ));
            return Ok(());
        }
        Some(st) => {
            if !force {
                plan.failed = Some(format!(
                    "refusing to convert from {} to symlink for {path}",
                    kind_name(st.kind)
                ));
                return Ok(());
            }
            plan.changes
                .push(state_change(path, kind_name(st.kind), "link"));
        }
        None => plan.changes.push(state_change(path, "absent", "link")),
    }
    plan.ops.push(fileops::exec(format!(
        "ln -sfn -- {} {q}",
        sh_quote(target)
    )));
    if let Some(o) = &attrs.owner {
        plan.ops
            .push(fileops::exec(format!("chown -h {} {q}", sh_quote(o))));
    }
    if let Some(g) = &attrs.group {
        plan.ops
            .push(fileops::exec(format!("chgrp -h {} {q}", sh_quote(g))));
    }
    Ok(())
}

/// `recurse`: lists every entry under the folder with its type, mode and ids in one exec
/// and plans `chmod -R`/`chown -R`/`chgrp -R` when any of them differs.
async fn plan_recursive(
    ctx: &HostCtx,
    plan: &mut Plan,
    path: &str,
    attrs: &Attrs,
    ids: &Ids,
) -> anyhow::Result<()> {
    if attrs.mode.is_none() && attrs.owner.is_none() && attrs.group.is_none() {
        return Ok(());
    }
    let out = ctx
        .run(&format!("find {} -printf '%y %m %U %G\\n'", sh_quote(path)))
        .await?;
    if out.rc != 0 {
        anyhow::bail!("listing {path}: {}", out.stderr.trim());
    }
    let entries = parse_find(&out.stdout)?;
    let q = sh_quote(path);
    if let Some(m) = &attrs.mode {
        let mut differs = 0;
        for (kind, cur, _, _) in &entries {
            if *kind == 'l' {
                continue;
            }
            if m.resolve(Some(*cur), *kind == 'd')?
                .is_some_and(|w| w != *cur)
            {
                differs += 1;
            }
        }
        if differs > 0 {
            let spec = match m {
                mode::ModeArg::Octal(o) => mode::fmt(*o),
                mode::ModeArg::Symbolic(s) => s.clone(),
                mode::ModeArg::Preserve => anyhow::bail!("argument mode: preserve is for copy"),
            };
            plan.changes.push(Change {
                summary: format!("mode {spec} on {differs} entries under {path}"),
                diff: None,
            });
            plan.ops.push(fileops::exec(format!("chmod -R {spec} {q}")));
        }
    }
    if let Some(o) = &attrs.owner {
        let differs = entries.iter().filter(|e| Some(e.2) != ids.uid).count();
        if differs > 0 {
            plan.changes.push(Change {
                summary: format!("owner {o} on {differs} entries under {path}"),
                diff: None,
            });
            plan.ops
                .push(fileops::exec(format!("chown -R {} {q}", sh_quote(o))));
        }
    }
    if let Some(g) = &attrs.group {
        let differs = entries.iter().filter(|e| Some(e.3) != ids.gid).count();
        if differs > 0 {
            plan.changes.push(Change {
                summary: format!("group {g} on {differs} entries under {path}"),
                diff: None,
            });
            plan.ops
                .push(fileops::exec(format!("chgrp -R {} {q}", sh_quote(g))));
        }
    }
    Ok(())
}

/// Parses `find -printf '%y %m %U %G\n'` lines: (type, mode, uid, gid).
fn parse_find(out: &str) -> anyhow::Result<Vec<(char, u32, u32, u32)>> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let bad = || anyhow::anyhow!("unexpected find output: {line:?}");
            if f.len() != 4 {
                return Err(bad());
            }
            Ok((
                f[0].chars().next().ok_or_else(bad)?,
                u32::from_str_radix(f[1], 8).map_err(|_| bad())?,
                f[2].parse().map_err(|_| bad())?,
                f[3].parse().map_err(|_| bad())?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_output_parses() {
        let e = parse_find("d 755 0 0\nf 644 1000 100\n").unwrap();
        assert_eq!(e, vec![('d', 0o755, 0, 0), ('f', 0o644, 1000, 100)]);
        assert!(parse_find("garbage\n").is_err());
    }

    #[test]
    fn link_to_the_same_target_is_ok() {
        let st = FileStat {
            kind: FileKind::Symlink,
            mode: 0o777,
            uid: 0,
            gid: 0,
            size: 4,
            mtime: 0,
            link_target: Some("/tmp/a".into()),
        };
        let mut plan = Plan::default();
        plan_link(
            &mut plan,
            "/tmp/l",
            Some(&st),
            "/tmp/a",
            false,
            &Attrs::default(),
            &Ids::default(),
        )
        .unwrap();
        assert!(plan.ops.is_empty());
        let mut plan = Plan::default();
        plan_link(
            &mut plan,
            "/tmp/l",
            Some(&st),
            "/tmp/b",
            false,
            &Attrs::default(),
            &Ids::default(),
        )
        .unwrap();
        assert_eq!(plan.ops.len(), 1);
    }

    #[test]
    fn a_file_is_not_replaced_by_a_link_without_force() {
        let st = FileStat {
            kind: FileKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 4,
            mtime: 0,
            link_target: None,
        };
        let mut plan = Plan::default();
        plan_link(
            &mut plan,
            "/tmp/l",
            Some(&st),
            "/tmp/a",
            false,
            &Attrs::default(),
            &Ids::default(),
        )
        .unwrap();
        assert!(plan.failed.is_some() && plan.ops.is_empty());
    }
}
