//! `get_url`: downloads a URL on the host (curl, else wget, else python3's urllib —
//! whichever the host has) to a temp file beside `dest`, verifies `checksum`
//! (`sha256:HEX`, ...) before the atomic rename, and sets mode/owner/group.
//!
//! Without `force` an existing `dest` is kept unless a given checksum differs. With
//! `force`, observing streams the URL through a hash on the host (read-only: nothing is
//! written) so an unchanged download is not a change.

use async_trait::async_trait;
use serde_json::Value;

use super::args::{bool_arg, int_opt, sh_quote, str_opt, str_req};
use super::fileops::{self, exec, Attrs};
use super::{ArgDef, ArgSpec, Change, HostCtx, Module, Plan};
use crate::transport::FileKind;
use crate::Vars;

pub struct GetUrl;

const ARGS: &[ArgDef] = &[
    ArgDef::req("url"),
    ArgDef::req("dest"),
    ArgDef::opt("checksum"),
    ArgDef::opt("mode"),
    ArgDef::opt("owner"),
    ArgDef::opt("group"),
    ArgDef::opt("force"),
    ArgDef::opt("timeout"),
    ArgDef::opt("validate_certs"),
    ArgDef::opt("headers"),
    ArgDef::opt("backup"),
    ArgDef::opt("tmp_dest"),
    ArgDef::opt("url_username"),
    ArgDef::opt("url_password"),
];

/// The hash command for an algorithm name.
fn hash_cmd(algo: &str) -> anyhow::Result<&'static str> {
    Ok(match algo {
        "sha1" => "sha1sum",
        "sha224" => "sha224sum",
        "sha256" => "sha256sum",
        "sha384" => "sha384sum",
        "sha512" => "sha512sum",
        "md5" => "md5sum",
        other => anyhow::bail!("argument checksum: unsupported algorithm {other:?}"),
    })
}

/// Parses `algo:hex`.
pub fn parse_checksum(s: &str) -> anyhow::Result<(String, String)> {
    let (algo, hex) = s
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("argument checksum: expected ALGORITHM:HEX, got {s:?}"))?;
    let algo = algo.trim().to_ascii_lowercase();
    hash_cmd(&algo)?;
    let hex = hex.trim().to_ascii_lowercase();
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        anyhow::bail!(
            "argument checksum: {hex:?} is not a hex digest (checksum URLs are not supported)"
        );
    }
    Ok((algo, hex))
}

/// A shell snippet that writes the URL to stdout (`-`) or a file, with whatever the host has.
fn fetch_snippet(url: &str, out: &str, timeout: i64, insecure: bool) -> String {
    let u = sh_quote(url);
    let k = if insecure { " -k" } else { "" };
    let wk = if insecure {
        " --no-check-certificate"
    } else {
        ""
    };
    let py_ctx = if insecure {
        "import ssl; c=ssl._create_unverified_context()"
    } else {
        "c=None"
    };
    let py = format!(
        "import sys,shutil,urllib.request; {py_ctx}; r=urllib.request.urlopen(sys.argv[1], timeout={timeout}, context=c); \
         o=sys.stdout.buffer if sys.argv[2]=='-' else open(sys.argv[2],'wb'); shutil.copyfileobj(r,o); o.flush()"
    );
    format!(
        "if command -v curl >/dev/null 2>&1; then curl -fsSL{k} --max-time {timeout} -o {out} {u}; \
         elif command -v wget >/dev/null 2>&1 && [ \"${{1#file:}}\" = \"$1\" ]; then wget -q{wk} -T {timeout} -O {out} {u}; \
         elif command -v python3 >/dev/null 2>&1; then python3 -c {} {u} {out}; \
         else echo 'get_url: the host has neither curl, wget nor python3' >&2; exit 127; fi",
        sh_quote(&py)
    )
}

#[async_trait]
impl Module for GetUrl {
    fn name(&self) -> &'static str {
        "get_url"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let url = str_req(args, &["url"])?;
        let dest_arg = str_req(args, &["dest"])?;
        let checksum = str_opt(args, &["checksum"])?
            .filter(|c| !c.is_empty())
            .map(|c| parse_checksum(&c))
            .transpose()?;
        let force = bool_arg(args, &["force"], false)?;
        let timeout = int_opt(args, &["timeout"])?.unwrap_or(10).max(1);
        let insecure = !bool_arg(args, &["validate_certs"], true)?;
        let attrs = Attrs::from_args(args)?;
        if !["http://", "https://", "ftp://", "file://"]
            .iter()
            .any(|p| url.starts_with(p))
        {
            anyhow::bail!("argument url: {url:?} is not an http, https, ftp or file URL");
        }

        let dest_stat = ctx.transport.stat(&dest_arg, ctx.become_.as_ref()).await?;
        let dest = if dest_stat
            .as_ref()
            .is_some_and(|s| s.kind == FileKind::Directory)
        {
            let name = url
                .split(['?', '#'])
                .next()
                .unwrap_or(&url)
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .unwrap_or("index.html");
            format!("{}/{name}", dest_arg.trim_end_matches('/'))
        } else {
            dest_arg.clone()
        };
        let stat = if dest == dest_arg {
            dest_stat
        } else {
            ctx.transport.stat(&dest, ctx.become_.as_ref()).await?
        };
        let q = sh_quote(&dest);
        let algo = checksum
            .as_ref()
            .map(|(a, _)| a.clone())
            .unwrap_or_else(|| "sha256".into());
        let hasher = hash_cmd(&algo)?;

        // Decide whether to download, reading only.
        let mut dest_sum = None;
        let download = match &stat {
            None => true,
            Some(_) if checksum.is_none() && !force => false,
            Some(_) => {
                let out = ctx.run(&format!("{hasher} < {q} | cut -d' ' -f1")).await?;
                let have = out.stdout.trim().to_string();
                dest_sum = Some(have.clone());
                match (&checksum, force) {
                    (Some((_, want)), false) => *want != have,
                    _ => {
                        let fetch = fetch_snippet(&url, "-", timeout, insecure);
                        let out = ctx
                            .run(&format!(
                                "set -- {}; ( {fetch} ) | {hasher} | cut -d' ' -f1",
                                sh_quote(&url)
                            ))
                            .await?;
                        let remote = out.stdout.trim().to_string();
                        if remote.is_empty() || out.rc != 0 {
                            anyhow::bail!(
                                "get_url: fetching {url} on the host failed: {}",
                                out.stderr.trim()
                            );
                        }
                        if let Some((_, want)) = &checksum {
                            if *want != remote {
                                return Ok(Plan {
                                    failed: Some(format!(
                                        "The checksum for {url} did not match {want}; it was {remote}."
                                    )),
                                    ..Default::default()
                                });
                            }
                        }
                        remote != have
                    }
                }
            }
        };

        let mut plan = Plan::default();
        if download {
            let parent = fileops::parent(&dest);
            if ctx
                .transport
                .stat(parent, ctx.become_.as_ref())
                .await?
                .is_none()
            {
                plan.failed = Some(format!("Destination {parent} does not exist"));
                return Ok(plan);
            }
            let tmp = format!(
                "{}/.{}.infra-dl-{:08x}",
                parent.trim_end_matches('/'),
                fileops::basename(&dest),
                rand::random::<u32>()
            );
            let t = sh_quote(&tmp);
            let mut script = format!(
                "set -e; set -- {}; trap 'rm -f {t}' EXIT; umask 077; {}; ",
                sh_quote(&url),
                fetch_snippet(&url, &t, timeout, insecure)
            );
            if let Some((_, want)) = &checksum {
                script.push_str(&format!(
                    "got=$({hasher} < {t} | cut -d' ' -f1); if [ \"$got\" != {want} ]; then \
                     echo \"The checksum for {dest} did not match {want}; it was $got.\" >&2; exit 1; fi; "
                ));
            }
            script.push_str(&format!(
                "if [ -e {q} ]; then chmod --reference={q} {t}; chown --reference={q} {t}; else chmod 0644 {t}; fi; "
            ));
            let mode = attrs
                .mode
                .as_ref()
                .map(|m| m.resolve(stat.as_ref().map(|s| s.mode), false))
                .transpose()?
                .flatten();
            if let Some(m) = mode {
                script.push_str(&format!("chmod {} {t}; ", super::mode::fmt(m)));
            }
            if let Some(o) = &attrs.owner {
                script.push_str(&format!("chown {} {t}; ", sh_quote(o)));
            }
            if let Some(g) = &attrs.group {
                script.push_str(&format!("chgrp {} {t}; ", sh_quote(g)));
            }
            script.push_str(&format!("sync {t}; mv -f {t} {q}; trap - EXIT"));
            plan.changes.push(Change {
                summary: format!("download {url} to {dest}"),
                diff: None,
            });
            plan.ops.push(exec(script));
        } else if let Some(st) = &stat {
            let ids = fileops::resolve_ids(ctx, &attrs).await?;
            fileops::plan_attrs(&mut plan, &dest, st, &attrs, &ids)?;
        }
        let obs = fileops::Observed {
            stat,
            content: None,
        };
        let mut result = fileops::file_result("dest", &dest, &obs, &attrs, "file")?;
        result.insert("url".into(), Value::String(url));
        result.insert(
            "msg".into(),
            Value::String(
                if download {
                    "OK"
                } else {
                    "file already exists"
                }
                .into(),
            ),
        );
        if let Some(s) = dest_sum {
            result.insert("checksum_dest".into(), Value::String(s));
        }
        if let Some((_, want)) = checksum {
            result.insert("checksum_src".into(), Value::String(want));
        }
        plan.result = result;
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_parse() {
        assert_eq!(
            parse_checksum("SHA256:ABcd").unwrap(),
            ("sha256".to_string(), "abcd".to_string())
        );
        assert!(parse_checksum("abcd").is_err());
        assert!(parse_checksum("crc:12").is_err());
        assert!(parse_checksum("sha256:https://x/sums").is_err());
    }
}
