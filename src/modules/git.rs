//! `git`: a checkout of a repository at a version (branch, tag, commit or `HEAD`), as
//! Ansible's `git` module: cloned when `dest` is missing, updated when the remote's
//! version differs from the checkout (`update`), refused when the checkout has local
//! modifications unless `force`. Results `before`/`after` (commit ids) and
//! `remote_url_changed`.
//!
//! Observing is one exec: the checkout's `HEAD`, `origin` URL and modified files, and the
//! remote's refs (`git ls-remote`), so check mode knows `after` without fetching.
//! A version that is neither a ref of the remote nor a commit the checkout has is assumed
//! to be a commit the fetch will bring.

use async_trait::async_trait;
use serde_json::Value;

use super::args::{bool_arg, int_opt, sh_quote, str_opt, str_req};
use super::{fileops, ArgDef, ArgSpec, Change, HostCtx, Module, Plan, TextDiff};
use crate::Vars;

pub struct Git;

const ARGS: &[ArgDef] = &[
    ArgDef {
        name: "repo",
        aliases: &["name"],
        required: true,
    },
    ArgDef::opt("dest"),
    ArgDef::opt("version"),
    ArgDef::opt("force"),
    ArgDef::opt("depth"),
    ArgDef::opt("update"),
    ArgDef::opt("clone"),
    ArgDef::opt("remote"),
    ArgDef::opt("executable"),
    ArgDef::opt("accept_hostkey"),
    ArgDef::opt("accept_newhostkey"),
    ArgDef::opt("key_file"),
    ArgDef::opt("ssh_opts"),
    ArgDef::opt("single_branch"),
    ArgDef::opt("recursive"),
    ArgDef::opt("track_submodules"),
    ArgDef::opt("umask"),
    ArgDef::opt("bare"),
    ArgDef::opt("refspec"),
    ArgDef::opt("reference"),
    ArgDef::opt("verify_commit"),
];

/// What a version names on the remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Branch(String, String),
    Tag(String, String),
    /// `HEAD` of the remote (its default branch's commit).
    Head(String),
    /// A commit id (full or abbreviated).
    Commit(String),
}

impl Target {
    pub fn sha(&self) -> &str {
        match self {
            Target::Branch(_, s) | Target::Tag(_, s) | Target::Head(s) | Target::Commit(s) => s,
        }
    }
}

/// Resolves `version` against `git ls-remote` output (`<sha>\t<ref>` lines).
pub fn resolve(version: &str, ls_remote: &str) -> Target {
    let refs: Vec<(&str, &str)> = ls_remote
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .collect();
    let find = |name: &str| {
        refs.iter()
            .find(|(_, r)| *r == name)
            .map(|(s, _)| s.to_string())
    };
    if version == "HEAD" {
        if let Some(s) = find("HEAD") {
            return Target::Head(s);
        }
    }
    if let Some(s) = find(&format!("refs/heads/{version}")) {
        return Target::Branch(version.into(), s);
    }
    let peeled = find(&format!("refs/tags/{version}^{{}}"));
    if let Some(s) = peeled.or_else(|| find(&format!("refs/tags/{version}"))) {
        return Target::Tag(version.into(), s);
    }
    Target::Commit(version.into())
}

/// The checkout as observed.
#[derive(Debug, Default)]
struct Checkout {
    head: Option<String>,
    url: Option<String>,
    dirty: bool,
    /// `version` resolved by the checkout itself (a commit it has).
    local_commit: Option<String>,
    ls_remote: String,
    ls_ok: bool,
    ls_err: String,
}

fn parse_observation(out: &str) -> Checkout {
    let mut c = Checkout::default();
    let mut in_ls = false;
    for line in out.lines() {
        if in_ls {
            if let Some(rc) = line.strip_prefix("@@LSRC=") {
                c.ls_ok = rc == "0";
                in_ls = false;
            } else {
                c.ls_remote.push_str(line);
                c.ls_remote.push('\n');
            }
            continue;
        }
        let val = |p: &str| {
            line.strip_prefix(p)
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        if let Some(v) = val("@@HEAD=") {
            c.head = Some(v.into());
        } else if let Some(v) = val("@@URL=") {
            c.url = Some(v.into());
        } else if let Some(v) = val("@@DIRTY=") {
            c.dirty = !v.is_empty();
        } else if let Some(v) = val("@@LOCAL=") {
            c.local_commit = Some(v.into());
        } else if line == "@@LS" {
            in_ls = true;
        }
    }
    if !c.ls_ok {
        c.ls_err = c.ls_remote.trim().to_string();
    }
    c
}

#[async_trait]
impl Module for Git {
    fn name(&self) -> &'static str {
        "git"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let repo = str_req(args, &["repo"])?;
        let clone = bool_arg(args, &["clone"], true)?;
        let dest = match (str_opt(args, &["dest"])?, clone) {
            (Some(d), _) => d,
            (None, false) => String::new(),
            (None, true) => {
                anyhow::bail!("missing required argument: dest (needed unless clone=no)")
            }
        };
        let version = str_opt(args, &["version"])?.unwrap_or_else(|| "HEAD".into());
        let force = bool_arg(args, &["force"], false)?;
        let update = bool_arg(args, &["update"], true)?;
        let depth = int_opt(args, &["depth"])?;
        let remote = str_opt(args, &["remote"])?.unwrap_or_else(|| "origin".into());
        let git = sh_quote(&str_opt(args, &["executable"])?.unwrap_or_else(|| "git".into()));
        let (qd, qr, qremote) = (sh_quote(&dest), sh_quote(&repo), sh_quote(&remote));
        let qv = sh_quote(&format!("{version}^{{commit}}"));
        let script = format!(
            "if [ -n {qd} ] && [ -e {qd}/.git ]; then \
               echo \"@@HEAD=$({git} -C {qd} rev-parse HEAD 2>/dev/null)\"; \
               echo \"@@URL=$({git} -C {qd} config --get remote.{qremote}.url)\"; \
               echo \"@@DIRTY=$({git} -C {qd} status --porcelain --untracked-files=no 2>/dev/null | head -1)\"; \
               echo \"@@LOCAL=$({git} -C {qd} rev-parse --verify -q {qv} 2>/dev/null)\"; \
             fi; echo @@LS; {git} ls-remote {qr} 2>&1; echo \"@@LSRC=$?\""
        );
        let out = ctx.run(&script).await?;
        let obs = parse_observation(&out.stdout);
        let mut plan = Plan::default();
        if !obs.ls_ok && obs.head.is_none() {
            plan.failed = Some(format!("Failed to read the remote {repo}: {}", obs.ls_err));
            return Ok(plan);
        }
        let target = resolve(&version, &obs.ls_remote);
        let after = match (&target, &obs.local_commit) {
            (Target::Commit(_), Some(local)) => local.clone(),
            _ => target.sha().to_string(),
        };
        let set = |plan: &mut Plan, k: &str, v: Value| {
            plan.result.insert(k.into(), v);
        };
        let opt = |s: &Option<String>| s.clone().map_or(Value::Null, Value::String);
        set(&mut plan, "before", opt(&obs.head));
        set(&mut plan, "after", Value::String(after.clone()));
        if !clone {
            // Only asks the remote (Ansible's "clone: no" without a checkout).
            set(&mut plan, "after", Value::String(target.sha().to_string()));
            return Ok(plan);
        }
        let checkout_cmd = |dir: &str| match &target {
            Target::Branch(b, _) => format!(
                "{git} -C {dir} checkout --force -B {b} {qremote}/{b}",
                b = sh_quote(b)
            ),
            Target::Tag(t, _) => format!(
                "{git} -C {dir} checkout --force {}",
                sh_quote(&format!("refs/tags/{t}"))
            ),
            Target::Head(s) | Target::Commit(s) => {
                format!("{git} -C {dir} checkout --force {}", sh_quote(s))
            }
        };
        let depth_arg = depth.map(|d| format!(" --depth {d}")).unwrap_or_default();
        let Some(before) = obs.head.clone() else {
            // Clone.
            if ctx
                .transport
                .stat(&dest, ctx.become_.as_ref())
                .await?
                .is_some()
            {
                let entries = ctx.run(&format!("ls -A {qd} | head -1")).await?;
                if !entries.stdout.trim().is_empty() {
                    plan.failed = Some(format!(
                        "Destination path '{dest}' already exists and is not an empty directory."
                    ));
                    return Ok(plan);
                }
            }
            let branch = match &target {
                Target::Branch(n, _) | Target::Tag(n, _) => format!(" --branch {}", sh_quote(n)),
                _ => String::new(),
            };
            plan.changes.push(Change {
                summary: format!("clone {repo} into {dest} at {version} ({after})"),
                diff: Some(TextDiff {
                    before_header: dest.clone(),
                    after_header: dest.clone(),
                    before: String::new(),
                    after: format!("{after}\n"),
                }),
            });
            let parent = fileops::parent(&dest).to_string();
            if ctx
                .transport
                .stat(&parent, ctx.become_.as_ref())
                .await?
                .is_none()
            {
                plan.ops.push(fileops::mkdir(&parent));
            }
            plan.ops.push(fileops::exec(format!(
                "{git} clone{depth_arg} --origin {qremote}{branch} -- {qr} {qd}"
            )));
            if matches!(target, Target::Commit(_)) {
                plan.ops.push(fileops::exec(checkout_cmd(&qd)));
            }
            return Ok(plan);
        };

        let url_changed = obs.url.as_deref() != Some(repo.as_str());
        set(&mut plan, "remote_url_changed", Value::Bool(url_changed));
        if obs.dirty && !force {
            plan.failed = Some(format!(
                "Local modifications exist in the destination: {dest} (force=no)."
            ));
            return Ok(plan);
        }
        if url_changed {
            plan.changes.push(Change {
                summary: format!("{dest}: remote {remote} url -> {repo}"),
                diff: None,
            });
            plan.ops.push(fileops::exec(format!(
                "{git} -C {qd} remote set-url {qremote} {qr}"
            )));
        }
        if !update {
            set(&mut plan, "after", Value::String(before));
            return Ok(plan);
        }
        let local_ok = before == after && !(obs.dirty && force);
        if local_ok {
            return Ok(plan);
        }
        plan.changes.push(Change {
            summary: format!("update {dest} to {version}: {before} -> {after}"),
            diff: Some(TextDiff {
                before_header: dest.clone(),
                after_header: dest.clone(),
                before: format!("{before}\n"),
                after: format!("{after}\n"),
            }),
        });
        if obs.local_commit.as_deref() != Some(after.as_str())
            || matches!(target, Target::Branch(..))
        {
            plan.ops.push(fileops::exec(format!(
                "{git} -C {qd} fetch{depth_arg} --tags --force {qremote} '+refs/heads/*:refs/remotes/{remote}/*'"
            )));
        }
        if obs.dirty {
            plan.ops
                .push(fileops::exec(format!("{git} -C {qd} reset --hard")));
        }
        plan.ops.push(fileops::exec(checkout_cmd(&qd)));
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LS: &str = "aaa\tHEAD\naaa\trefs/heads/main\nbbb\trefs/heads/dev\nccc\trefs/tags/v1\nddd\trefs/tags/v1^{}\n";

    #[test]
    fn versions_resolve_against_the_remote() {
        assert_eq!(resolve("HEAD", LS), Target::Head("aaa".into()));
        assert_eq!(
            resolve("dev", LS),
            Target::Branch("dev".into(), "bbb".into())
        );
        assert_eq!(resolve("v1", LS), Target::Tag("v1".into(), "ddd".into()));
        assert_eq!(resolve("1234abc", LS), Target::Commit("1234abc".into()));
    }

    #[test]
    fn observation_is_parsed() {
        let out =
            "@@HEAD=abc\n@@URL=/srv/r.git\n@@DIRTY= M x\n@@LOCAL=\n@@LS\naaa\tHEAD\n@@LSRC=0\n";
        let c = parse_observation(out);
        assert_eq!(c.head.as_deref(), Some("abc"));
        assert!(c.dirty && c.ls_ok);
        assert_eq!(c.local_commit, None);
        assert_eq!(c.ls_remote, "aaa\tHEAD\n");
    }
}
