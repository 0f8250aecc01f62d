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

/// The task's arguments, checked.
#[derive(Debug, Clone)]
pub struct GetUrlArgs {
    pub url: String,
    pub dest: String,
    /// `(algorithm, hex digest)`.
    pub checksum: Option<(String, String)>,
    pub force: bool,
    pub timeout: i64,
    pub insecure: bool,
    pub attrs: Attrs,
}

impl GetUrlArgs {
    pub fn parse(args: &Vars) -> anyhow::Result<GetUrlArgs> {
        let url = str_req(args, &["url"])?;
        if !["http://", "https://", "ftp://", "file://"]
            .iter()
            .any(|p| url.starts_with(p))
        {
            anyhow::bail!("argument url: {url:?} is not an http, https, ftp or file URL");
        }
        Ok(GetUrlArgs {
            url,
            dest: str_req(args, &["dest"])?,
            checksum: str_opt(args, &["checksum"])?
                .filter(|c| !c.is_empty())
                .map(|c| parse_checksum(&c))
                .transpose()?,
            force: bool_arg(args, &["force"], false)?,
            timeout: int_opt(args, &["timeout"])?.unwrap_or(10).max(1),
            insecure: !bool_arg(args, &["validate_certs"], true)?,
            attrs: Attrs::from_args(args)?,
        })
    }

    /// The hash command: the checksum's algorithm, sha256 without one.
    fn hasher(&self) -> anyhow::Result<&'static str> {
        hash_cmd(self.checksum.as_ref().map_or("sha256", |(a, _)| a.as_str()))
    }
}

/// Where the download goes: `dest` itself, or the URL's last path segment inside `dest`
/// when that is a folder (as Ansible names it).
pub fn target_path(dest: &str, url: &str, dest_is_dir: bool) -> String {
    if !dest_is_dir {
        return dest.to_string();
    }
    let name = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("index.html");
    format!("{}/{name}", dest.trim_end_matches('/'))
}

/// Whether to download, given what is there: nothing (download), a file with no checksum
/// asked and no `force` (keep it), or the file's digest against the wanted one (or, with
/// `force`, against the remote content's digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Download,
    Keep,
    /// The remote content does not match the given checksum: fail before writing.
    Mismatch {
        remote: String,
    },
}

pub fn decide(
    checksum: Option<&str>,
    force: bool,
    dest_sum: Option<&str>,
    remote_sum: Option<&str>,
) -> Decision {
    let Some(have) = dest_sum else {
        return Decision::Download;
    };
    match (checksum, remote_sum) {
        (Some(want), Some(remote)) if want != remote => Decision::Mismatch {
            remote: remote.to_string(),
        },
        (_, Some(remote)) if remote != have => Decision::Download,
        (Some(want), None) if !force && want != have => Decision::Download,
        _ => Decision::Keep,
    }
}

/// What the host has: the target's stat and, where the decision needs them, the digests of
/// the target and of the remote content (streamed through a hash, nothing written).
struct Observed {
    dest: String,
    stat: Option<crate::transport::FileStat>,
    dest_sum: Option<String>,
    remote_sum: Option<String>,
}

async fn observe(ctx: &HostCtx, a: &GetUrlArgs) -> anyhow::Result<Observed> {
    let dest_stat = ctx.transport.stat(&a.dest, ctx.become_.as_ref()).await?;
    let is_dir = dest_stat
        .as_ref()
        .is_some_and(|s| s.kind == FileKind::Directory);
    let dest = target_path(&a.dest, &a.url, is_dir);
    let stat = match is_dir {
        false => dest_stat,
        true => ctx.transport.stat(&dest, ctx.become_.as_ref()).await?,
    };
    let mut obs = Observed {
        dest,
        stat,
        dest_sum: None,
        remote_sum: None,
    };
    if obs.stat.is_none() || (a.checksum.is_none() && !a.force) {
        return Ok(obs);
    }
    let hasher = a.hasher()?;
    let q = sh_quote(&obs.dest);
    let out = ctx.run(&format!("{hasher} < {q} | cut -d' ' -f1")).await?;
    obs.dest_sum = Some(out.stdout.trim().to_string());
    if a.force {
        let fetch = fetch_snippet(&a.url, "-", a.timeout, a.insecure);
        let url = sh_quote(&a.url);
        let out = ctx
            .run(&format!(
                "set -- {url}; ( {fetch} ) | {hasher} | cut -d' ' -f1"
            ))
            .await?;
        let remote = out.stdout.trim().to_string();
        if remote.is_empty() || out.rc != 0 {
            anyhow::bail!(
                "get_url: fetching {} on the host failed: {}",
                a.url,
                out.stderr.trim()
            );
        }
        obs.remote_sum = Some(remote);
    }
    Ok(obs)
}

/// The download: to a temp file beside the target, checked against the checksum, given
/// the replaced file's (or the asked) mode and owner, then renamed over the target.
fn download_script(
    a: &GetUrlArgs,
    dest: &str,
    tmp: &str,
    mode: Option<u32>,
) -> anyhow::Result<String> {
    let (q, t) = (sh_quote(dest), sh_quote(tmp));
    let hasher = a.hasher()?;
    let mut script = format!(
        "set -e; set -- {}; trap 'rm -f {t}' EXIT; umask 077; {}; ",
        sh_quote(&a.url),
        fetch_snippet(&a.url, &t, a.timeout, a.insecure)
    );
    if let Some((_, want)) = &a.checksum {
        script.push_str(&format!(
            "got=$({hasher} < {t} | cut -d' ' -f1); if [ \"$got\" != {want} ]; then \
             echo \"The checksum for {dest} did not match {want}; it was $got.\" >&2; exit 1; fi; "
        ));
    }
    script.push_str(&format!(
        "if [ -e {q} ]; then chmod --reference={q} {t}; chown --reference={q} {t}; else chmod 0644 {t}; fi; "
    ));
    if let Some(m) = mode {
        script.push_str(&format!("chmod {} {t}; ", super::mode::fmt(m)));
    }
    if let Some(o) = &a.attrs.owner {
        script.push_str(&format!("chown {} {t}; ", sh_quote(o)));
    }
    if let Some(g) = &a.attrs.group {
        script.push_str(&format!("chgrp {} {t}; ", sh_quote(g)));
    }
    script.push_str(&format!("sync {t}; mv -f {t} {q}; trap - EXIT"));
    Ok(script)
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
        let a = GetUrlArgs::parse(args)?;
        let obs = observe(ctx, &a).await?;
        let want = a.checksum.as_ref().map(|(_, hex)| hex.as_str());
        let decision = decide(
            want,
            a.force,
            obs.dest_sum.as_deref(),
            obs.remote_sum.as_deref(),
        );
        let mut plan = Plan::default();
        match decision {
            Decision::Mismatch { remote } => {
                plan.failed = Some(format!(
                    "The checksum for {} did not match {}; it was {remote}.",
                    a.url,
                    want.unwrap_or_default()
                ));
                return Ok(plan);
            }
            Decision::Download => {
                let parent = fileops::parent(&obs.dest);
                let parent_stat = ctx.transport.stat(parent, ctx.become_.as_ref()).await?;
                if parent_stat.is_none() {
                    plan.failed = Some(format!("Destination {parent} does not exist"));
                    return Ok(plan);
                }
                let tmp = format!(
                    "{}/.{}.infra-dl-{:08x}",
                    parent.trim_end_matches('/'),
                    fileops::basename(&obs.dest),
                    rand::random::<u32>()
                );
                let mode = a
                    .attrs
                    .mode
                    .as_ref()
                    .map(|m| m.resolve(obs.stat.as_ref().map(|s| s.mode), false))
                    .transpose()?
                    .flatten();
                plan.changes.push(Change {
                    summary: format!("download {} to {}", a.url, obs.dest),
                    diff: None,
                });
                plan.ops
                    .push(exec(download_script(&a, &obs.dest, &tmp, mode)?));
            }
            Decision::Keep => {
                if let Some(st) = &obs.stat {
                    let ids = fileops::resolve_ids(ctx, &a.attrs).await?;
                    fileops::plan_attrs(&mut plan, &obs.dest, st, &a.attrs, &ids)?;
                }
            }
        }
        let downloaded = decision == Decision::Download;
        let file = fileops::Observed {
            stat: obs.stat,
            content: None,
            same_content: None,
        };
        let mut result = fileops::file_result("dest", &obs.dest, &file, &a.attrs, "file")?;
        result.insert("url".into(), Value::String(a.url.clone()));
        let msg = if downloaded {
            "OK"
        } else {
            "file already exists"
        };
        result.insert("msg".into(), Value::String(msg.into()));
        if let Some(s) = obs.dest_sum {
            result.insert("checksum_dest".into(), Value::String(s));
        }
        if let Some(want) = want {
            result.insert("checksum_src".into(), Value::String(want.to_string()));
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

    #[test]
    fn a_folder_dest_takes_the_urls_file_name() {
        assert_eq!(
            target_path("/opt/x", "http://h/a/b.tgz?v=1", true),
            "/opt/x/b.tgz"
        );
        assert_eq!(
            target_path("/opt/x/", "http://h/", true),
            "/opt/x/index.html"
        );
        assert_eq!(
            target_path("/opt/x.tgz", "http://h/a/b.tgz", false),
            "/opt/x.tgz"
        );
    }

    #[test]
    fn the_decision_follows_ansible() {
        use Decision::*;
        // Nothing there: download.
        assert_eq!(decide(None, false, None, None), Download);
        // A file and no checksum, no force: kept, whatever the remote has.
        assert_eq!(decide(None, false, Some("aa"), None), Keep);
        // A checksum: the file's digest decides.
        assert_eq!(decide(Some("aa"), false, Some("aa"), None), Keep);
        assert_eq!(decide(Some("bb"), false, Some("aa"), None), Download);
        // force: the remote content's digest decides; a checksum it fails is an error.
        assert_eq!(decide(None, true, Some("aa"), Some("aa")), Keep);
        assert_eq!(decide(None, true, Some("aa"), Some("bb")), Download);
        assert_eq!(
            decide(Some("cc"), true, Some("aa"), Some("bb")),
            Mismatch {
                remote: "bb".into()
            }
        );
    }
}
