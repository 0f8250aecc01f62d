//! `unarchive`: unpacks a tar (plain, gz, bz2, xz) or zip archive into `dest` on the host,
//! from the controller (uploaded to a temp file by the plan's first op) or already on the
//! host (`remote_src`). `creates` short-circuits.
//!
//! Idempotence without writing anything while observing:
//! - controller tar archives are listed here (tar/flate2 crates) and every file's sha1 is
//!   compared with one `sha1sum` exec on the host;
//! - host tar archives are compared with `tar --compare` (content, mode, mtime);
//! - zip archives (either side) are listed with `unzip -Z1` and compared by existence.
//!
//! `owner`/`group`/`mode` are applied (recursively) to what was extracted, when it is.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use anyhow::Context;
use async_trait::async_trait;
use serde_json::Value;

use super::args::{bool_arg, list, sh_quote, str_opt, str_req};
use super::fileops::{self, exec, Attrs};
use super::{ArgDef, ArgSpec, Change, HostCtx, Module, Op, Plan};
use crate::transport::{FileAttrs, FileKind};
use crate::Vars;

pub struct Unarchive;

const ARGS: &[ArgDef] = &[
    ArgDef::req("src"),
    ArgDef::req("dest"),
    ArgDef::opt("remote_src"),
    ArgDef::opt("copy"),
    ArgDef::opt("creates"),
    ArgDef::opt("mode"),
    ArgDef::opt("owner"),
    ArgDef::opt("group"),
    ArgDef::opt("extra_opts"),
    ArgDef::opt("keep_newer"),
    ArgDef::opt("list_files"),
    ArgDef::opt("exclude"),
    ArgDef::opt("include"),
    ArgDef::opt("validate_certs"),
];

/// The archive formats we unpack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Tar,
    Zip,
}

/// The format from the file name (`.zip` is zip; every tar flavour is tar).
pub fn format_of(name: &str) -> Format {
    if name.to_ascii_lowercase().ends_with(".zip") {
        Format::Zip
    } else {
        Format::Tar
    }
}

/// An archive's regular files (path, sha1) and its top-level names.
pub type TarListing = (Vec<(String, String)>, Vec<String>);

/// Lists a controller tar archive: regular files with their sha1, and top-level names.
pub fn list_tar(bytes: &[u8]) -> anyhow::Result<TarListing> {
    let reader: Box<dyn Read> = if bytes.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    let mut archive = tar::Archive::new(reader);
    let mut files = Vec::new();
    let mut tops: Vec<String> = Vec::new();
    for entry in archive.entries().context("reading the archive")? {
        let mut entry = entry.context("reading the archive")?;
        let path = entry
            .path()
            .context("an entry's path")?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if path.is_empty() {
            continue;
        }
        let top = path.split('/').next().unwrap_or(&path).to_string();
        if !tops.contains(&top) {
            tops.push(top);
        }
        if entry.header().entry_type().is_file() {
            let mut content = Vec::new();
            entry
                .read_to_end(&mut content)
                .with_context(|| format!("reading {path} in the archive"))?;
            files.push((path, fileops::sha1_hex(&content)));
        }
    }
    Ok((files, tops))
}

/// Parses `sha1sum` output into path -> digest.
fn parse_sums(out: &str) -> HashMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(sum, path)| (path.to_string(), sum.to_string()))
        .collect()
}

#[async_trait]
impl Module for Unarchive {
    fn name(&self) -> &'static str {
        "unarchive"
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
        let remote = bool_arg(args, &["remote_src"], false)? || !bool_arg(args, &["copy"], true)?;
        let creates = str_opt(args, &["creates"])?;
        let attrs = Attrs::from_args(args)?;
        let extra = list(args, &["extra_opts"])?;
        let format = format_of(&src);
        let mut plan = Plan {
            result: super::args::vars([
                ("dest", Value::String(dest.clone())),
                ("src", Value::String(src.clone())),
            ]),
            ..Default::default()
        };
        if let Some(c) = &creates {
            if super::command::exists(ctx, c).await? {
                return Ok(plan);
            }
        }
        match ctx.transport.stat(&dest, ctx.become_.as_ref()).await? {
            Some(st) if st.kind == FileKind::Directory => {}
            _ => {
                plan.failed = Some(format!("dest '{dest}' must be an existing dir"));
                return Ok(plan);
            }
        }
        let d = sh_quote(&dest);
        let (archive_on_host, upload, tops, differs) = if remote {
            let a = sh_quote(&src);
            let (differs, tops) = match format {
                Format::Tar => {
                    let out = ctx
                        .run(&format!("[ -f {a} ] || {{ echo MISSING; exit 0; }}; tar --compare -f {a} -C {d} >/dev/null 2>&1 && echo SAME; tar -tf {a} 2>/dev/null | cut -d/ -f1 | sort -u"))
                        .await?;
                    if out.stdout.starts_with("MISSING") {
                        plan.failed = Some(format!("Source '{src}' does not exist"));
                        return Ok(plan);
                    }
                    let mut lines = out.stdout.lines();
                    let same = lines.clone().next() == Some("SAME");
                    if same {
                        lines.next();
                    }
                    (
                        !same,
                        lines
                            .filter(|l| !l.is_empty() && *l != ".")
                            .map(String::from)
                            .collect(),
                    )
                }
                Format::Zip => zip_state(ctx, &format!("unzip -Z1 {a}"), &dest).await?,
            };
            (src.clone(), None, tops, differs)
        } else {
            let local = super::copy::find_src(&src, &ctx.file_search, "src")?;
            let bytes =
                std::fs::read(&local).with_context(|| format!("reading {}", local.display()))?;
            let (differs, tops) = match format {
                Format::Tar => {
                    let (files, tops) = list_tar(&bytes)
                        .with_context(|| format!("reading archive {}", local.display()))?;
                    let differs = if files.is_empty() {
                        false
                    } else {
                        let names = files
                            .iter()
                            .map(|(p, _)| sh_quote(p))
                            .collect::<Vec<_>>()
                            .join(" ");
                        let out = ctx
                            .run(&format!("cd {d} && sha1sum -- {names} 2>/dev/null; true"))
                            .await?;
                        let sums = parse_sums(&out.stdout);
                        files.iter().any(|(p, sum)| sums.get(p) != Some(sum))
                    };
                    (differs, tops)
                }
                Format::Zip => {
                    let listing = std::process::Command::new("unzip")
                        .arg("-Z1")
                        .arg(&local)
                        .output()
                        .context("running unzip -Z1 on the controller (is unzip installed?)")?;
                    let names = String::from_utf8_lossy(&listing.stdout).into_owned();
                    zip_names_state(ctx, &names, &dest).await?
                }
            };
            let tmp = format!(
                "/tmp/.infra-archive-{:08x}-{}",
                rand::random::<u32>(),
                fileops::basename(&src)
            );
            (tmp.clone(), Some((tmp, bytes)), tops, differs)
        };
        if !differs {
            return Ok(plan);
        }
        let a = sh_quote(&archive_on_host);
        if let Some((tmp, bytes)) = upload {
            plan.ops.push(Op::Write {
                path: tmp,
                content: bytes,
                attrs: FileAttrs {
                    mode: Some(0o600),
                    ..Default::default()
                },
                backup: false,
                validate: None,
            });
        }
        let extra = extra
            .iter()
            .map(|e| sh_quote(e))
            .collect::<Vec<_>>()
            .join(" ");
        let unpack = match format {
            Format::Tar => format!("tar -xf {a} -C {d} {extra}"),
            Format::Zip => format!("unzip -o -q {extra} {a} -d {d}"),
        };
        let cleanup = if remote {
            String::new()
        } else {
            format!("; rm -f {a}")
        };
        plan.changes.push(Change {
            summary: format!("unpack {src} into {dest}"),
            diff: None,
        });
        plan.ops
            .push(exec(format!("rc=0; {unpack} || rc=$?{cleanup}; exit $rc")));
        let targets = tops
            .iter()
            .map(|t| sh_quote(&format!("{}/{t}", dest.trim_end_matches('/'))))
            .collect::<Vec<_>>()
            .join(" ");
        if !targets.is_empty() {
            if let Some(m) = &attrs.mode {
                let spec = match m {
                    super::mode::ModeArg::Octal(o) => super::mode::fmt(*o),
                    super::mode::ModeArg::Symbolic(s) => s.clone(),
                    super::mode::ModeArg::Preserve => {
                        anyhow::bail!("argument mode: preserve is for copy")
                    }
                };
                plan.ops.push(exec(format!("chmod -R {spec} {targets}")));
            }
            if let Some(o) = &attrs.owner {
                plan.ops
                    .push(exec(format!("chown -R {} {targets}", sh_quote(o))));
            }
            if let Some(g) = &attrs.group {
                plan.ops
                    .push(exec(format!("chgrp -R {} {targets}", sh_quote(g))));
            }
        }
        Ok(plan)
    }
}

/// Lists a zip on the host and checks that every entry exists under dest.
async fn zip_state(
    ctx: &HostCtx,
    list_cmd: &str,
    dest: &str,
) -> anyhow::Result<(bool, Vec<String>)> {
    let out = ctx.run(list_cmd).await?;
    if out.rc != 0 {
        anyhow::bail!("listing the zip archive: {}", out.stderr.trim());
    }
    zip_names_state(ctx, &out.stdout, dest).await
}

/// Checks by existence that every zip entry is under dest (one exec).
async fn zip_names_state(
    ctx: &HostCtx,
    names: &str,
    dest: &str,
) -> anyhow::Result<(bool, Vec<String>)> {
    let entries: Vec<&str> = names.lines().filter(|l| !l.is_empty()).collect();
    let mut tops: Vec<String> = Vec::new();
    for e in &entries {
        let top = e.split('/').next().unwrap_or(e).to_string();
        if !tops.contains(&top) {
            tops.push(top);
        }
    }
    let checks = entries
        .iter()
        .map(|e| {
            format!(
                "[ -e {} ] || echo MISSING",
                sh_quote(&Path::new(dest).join(e).display().to_string())
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    if checks.is_empty() {
        return Ok((false, tops));
    }
    let out = ctx.run(&checks).await?;
    Ok((out.stdout.contains("MISSING"), tops))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_a_gzipped_tarball() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(3);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, "top/a.txt", &b"abc"[..])
            .unwrap();
        let raw = builder.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        let bytes = gz.finish().unwrap();
        let (files, tops) = list_tar(&bytes).unwrap();
        assert_eq!(
            files,
            vec![(
                "top/a.txt".to_string(),
                "a9993e364706816aba3e25717850c26c9cd0d89d".to_string()
            )]
        );
        assert_eq!(tops, vec!["top"]);
        assert_eq!(format_of("x.tar.gz"), Format::Tar);
        assert_eq!(format_of("x.ZIP"), Format::Zip);
    }

    #[test]
    fn sums_parse() {
        let s = parse_sums("a9993e364706816aba3e25717850c26c9cd0d89d  top/a.txt\n");
        assert_eq!(s["top/a.txt"], "a9993e364706816aba3e25717850c26c9cd0d89d");
    }
}
