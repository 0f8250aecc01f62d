//! What the file-writing modules (copy, template, file, lineinfile, blockinfile, get_url,
//! unarchive) share: observing a path (one stat, one read; a big file that copy would
//! write is compared by size and by the host's SHA-1 instead), resolving owner and group
//! names on the host (one exec, only when asked for), and planning content and attribute
//! changes as ops.

use serde_json::Value;

use super::args::{sh_quote, str_opt};
use super::mode::{self, ModeArg};
use super::{diff, Change, HostCtx, Op, Plan};
use crate::transport::{FileAttrs, FileKind, FileStat};
use crate::Vars;

/// A path as the host has it.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub stat: Option<FileStat>,
    /// The content, when it is a regular file (or a link to one) and was asked for.
    pub content: Option<Vec<u8>>,
    /// Whether the file holds the content it was compared with, when that was settled
    /// without reading it ([`observe_content`]: big content, compared by size and by the
    /// SHA-1 the host computes). `None`: compare [`Observed::content`].
    pub same_content: Option<bool>,
}

/// Stats `path` and, when `read` and it is a file, reads it.
pub async fn observe(ctx: &HostCtx, path: &str, read: bool) -> anyhow::Result<Observed> {
    let stat = ctx.transport.stat(path, ctx.become_.as_ref()).await?;
    observe_stated(ctx, path, stat, read).await
}

/// Like [`observe`] when the stat is already known (saves a round trip).
pub async fn observe_stated(
    ctx: &HostCtx,
    path: &str,
    stat: Option<FileStat>,
    read: bool,
) -> anyhow::Result<Observed> {
    let content = match &stat {
        Some(st) if read && matches!(st.kind, FileKind::File | FileKind::Symlink) => {
            ctx.transport.read_file(path, ctx.become_.as_ref()).await?
        }
        _ => None,
    };
    Ok(Observed {
        stat,
        content,
        same_content: None,
    })
}

/// From this size on, content a task would write is compared with the host's file without
/// reading the file back: by size, then by the SHA-1 the host computes ([`observe_content`]).
/// Why 1 MiB: content bigger than [`diff::MAX_DIFF_BYTES`] (102 KiB) gets no `--diff` (it is
/// summarised), so reading it back serves only the comparison; a read moves the whole file
/// over the connection (a 95 MB `infra` binary on every `infra up`) while `sha1sum` is one
/// exec of a few milliseconds plus the host's hashing, faster than the transfer from about
/// a megabyte on. Smaller files keep the read, which starts no process: a converged run of
/// config files stays at the exec count tests/bench_roundtrips.rs bounds.
pub const HOST_CHECKSUM_MIN_BYTES: usize = 1024 * 1024;
// Content compared on the host is never read, so it must be content that gets no diff.
const _: () = assert!(HOST_CHECKSUM_MIN_BYTES > diff::MAX_DIFF_BYTES);

/// Observes `path` (its stat already known) to compare it with `want`, the content a task
/// would write there (`want_sha1` its [`sha1_hex`], which the caller reports as
/// `checksum` anyway). Like [`observe_stated`] with a read, except for content of
/// [`HOST_CHECKSUM_MIN_BYTES`] or more in a regular file on a remote host, which is not
/// read: a different size is a different content; an equal size is compared by the SHA-1
/// the host computes (Ansible's copy compares checksums too). A host where that does not
/// work (no `sha1sum`) gets the file read, as smaller files are.
pub async fn observe_content(
    ctx: &HostCtx,
    path: &str,
    stat: Option<FileStat>,
    want: &[u8],
    want_sha1: &str,
) -> anyhow::Result<Observed> {
    let big_file = stat.as_ref().filter(|st| {
        st.kind == FileKind::File
            && want.len() >= HOST_CHECKSUM_MIN_BYTES
            && !ctx.transport.is_local()
    });
    if let Some(st) = big_file {
        let same = if st.size != want.len() as u64 {
            Some(false)
        } else {
            host_sha1(ctx, path).await?.map(|sum| sum == want_sha1)
        };
        if same.is_some() {
            return Ok(Observed {
                stat,
                content: None,
                same_content: same,
            });
        }
    }
    observe_stated(ctx, path, stat, true).await
}

/// The SHA-1 (hex) of the host's file `path`, computed there by one `sha1sum` exec (with
/// the task's become); `None` when that gave no checksum (no `sha1sum` on the host, a file
/// it cannot read): the caller then reads the file, which reports a real read error.
async fn host_sha1(ctx: &HostCtx, path: &str) -> anyhow::Result<Option<String>> {
    // From stdin: the output is `<sum>  -`, whatever characters the path has.
    let out = ctx.run(&format!("sha1sum < {}", sh_quote(path))).await?;
    let sum = out
        .stdout
        .split_whitespace()
        .next()
        .filter(|s| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()));
    match sum {
        Some(sum) if out.rc == 0 => Ok(Some(sum.to_ascii_lowercase())),
        _ => {
            tracing::debug!(
                host = %ctx.host,
                rc = out.rc,
                "sha1sum of {path} gave no checksum ({}): reading the file to compare it",
                out.stderr.trim()
            );
            Ok(None)
        }
    }
}

/// The `mode`, `owner` and `group` arguments.
#[derive(Debug, Clone, Default)]
pub struct Attrs {
    pub mode: Option<ModeArg>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

impl Attrs {
    /// The numeric mode of a new file or directory (a symbolic mode applies to none).
    pub fn new_mode(&self, is_dir: bool) -> anyhow::Result<Option<u32>> {
        Ok(self
            .mode
            .as_ref()
            .map(|m| m.resolve(None, is_dir))
            .transpose()?
            .flatten())
    }

    pub fn from_args(args: &Vars) -> anyhow::Result<Attrs> {
        Ok(Attrs {
            mode: super::args::get(args, &["mode"])
                .map(mode::parse)
                .transpose()?,
            owner: str_opt(args, &["owner"])?,
            group: str_opt(args, &["group"])?,
        })
    }
}

/// The numeric ids `owner` and `group` stand for on the host (`None`: not asked for, or
/// unknown there — then a change is planned and chown reports the error).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ids {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Resolves owner/group names: from `/etc/passwd` and `/etc/group`, read over the
/// transport (two reads, no process on the host), then with one `getent` exec for a name
/// those files do not list (users from NSS: LDAP, sssd, ...). With a `become` that
/// escalates, reads would go through sudo anyway, so it is the one `getent` exec. None when numeric or not given.
/// Every call reads the host afresh: a task may create the user the next one names.
pub async fn resolve_ids(ctx: &HostCtx, attrs: &Attrs) -> anyhow::Result<Ids> {
    let mut ids = Ids {
        uid: attrs.owner.as_deref().and_then(|o| o.parse().ok()),
        gid: attrs.group.as_deref().and_then(|g| g.parse().ok()),
    };
    let mut owner = attrs.owner.as_deref().filter(|_| ids.uid.is_none());
    let mut group = attrs.group.as_deref().filter(|_| ids.gid.is_none());
    if owner.is_none() && group.is_none() {
        return Ok(ids);
    }
    if !ctx.escalates() {
        // Both files at once: one round trip's wait, not two.
        let (passwd, groups) = futures::try_join!(
            read_if(ctx, "/etc/passwd", owner.is_some()),
            read_if(ctx, "/etc/group", group.is_some())
        )?;
        if let Some(name) = owner {
            ids.uid = passwd.as_deref().and_then(|t| id_in_db(t, name));
            owner = owner.filter(|_| ids.uid.is_none());
        }
        if let Some(name) = group {
            ids.gid = groups.as_deref().and_then(|t| id_in_db(t, name));
            group = group.filter(|_| ids.gid.is_none());
        }
        if owner.is_none() && group.is_none() {
            return Ok(ids);
        }
    }
    let lookup = |db: &str, name: Option<&str>| match name {
        Some(n) => format!("$(getent {db} {} | cut -d: -f3)", sh_quote(n)),
        None => String::new(),
    };
    let cmd = format!(
        "printf 'u=%s\\ng=%s\\n' \"{}\" \"{}\"",
        lookup("passwd", owner),
        lookup("group", group)
    );
    let out = ctx.run(&cmd).await?;
    for line in out.stdout.lines() {
        if let Some(v) = line.strip_prefix("u=") {
            if owner.is_some() {
                ids.uid = v.trim().parse().ok();
            }
        } else if let Some(v) = line.strip_prefix("g=") {
            if group.is_some() {
                ids.gid = v.trim().parse().ok();
            }
        }
    }
    Ok(ids)
}

/// Reads the account database `path` as the login user when `wanted` (`Ok(None)` when not,
/// or when it does not exist), so the files a task needs can be read together, in one
/// round trip's wait, with `join!`; through the host's [`super::SystemFiles`], so the tasks
/// of a run read each at most once between changes.
pub async fn read_if(ctx: &HostCtx, path: &str, wanted: bool) -> anyhow::Result<Option<Vec<u8>>> {
    match wanted {
        true => ctx.reads.files.read(&ctx.transport, path).await,
        false => Ok(None),
    }
}

/// The fields of `name`'s line in an account database text (`/etc/passwd`, `/etc/group`,
/// `/etc/shadow`: `name:field:field...`).
pub fn db_entry<'a>(text: &'a str, name: &str) -> Option<Vec<&'a str>> {
    text.lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&name))
}

/// The id (third field) of `name` in an `/etc/passwd` or `/etc/group` text.
pub fn id_in_db(text: &[u8], name: &str) -> Option<u32> {
    db_entry(&String::from_utf8_lossy(text), name)?
        .get(2)?
        .trim()
        .parse()
        .ok()
}

/// Plans chmod/chown/chgrp for an existing entry whose content is not rewritten.
pub fn plan_attrs(
    plan: &mut Plan,
    path: &str,
    cur: &FileStat,
    attrs: &Attrs,
    ids: &Ids,
) -> anyhow::Result<()> {
    let is_dir = cur.kind == FileKind::Directory;
    if cur.kind != FileKind::Symlink {
        if let Some(want) = attrs
            .mode
            .as_ref()
            .map(|m| m.resolve(Some(cur.mode), is_dir))
            .transpose()?
            .flatten()
        {
            if want != cur.mode {
                plan.changes.push(Change {
                    summary: format!(
                        "mode of {path}: {} -> {}",
                        mode::fmt(cur.mode),
                        mode::fmt(want)
                    ),
                    diff: None,
                });
                plan.ops.push(exec(format!(
                    "chmod {} {}",
                    mode::fmt(want),
                    sh_quote(path)
                )));
            }
        }
    }
    let link_flag = if cur.kind == FileKind::Symlink {
        "-h "
    } else {
        ""
    };
    if let Some(owner) = &attrs.owner {
        if ids.uid != Some(cur.uid) {
            plan.changes.push(Change {
                summary: format!("owner of {path}: {} -> {owner}", cur.uid),
                diff: None,
            });
            plan.ops.push(exec(format!(
                "chown {link_flag}{} {}",
                sh_quote(owner),
                sh_quote(path)
            )));
        }
    }
    if let Some(group) = &attrs.group {
        if ids.gid != Some(cur.gid) {
            plan.changes.push(Change {
                summary: format!("group of {path}: {} -> {group}", cur.gid),
                diff: None,
            });
            plan.ops.push(exec(format!(
                "chgrp {link_flag}{} {}",
                sh_quote(group),
                sh_quote(path)
            )));
        }
    }
    Ok(())
}

/// An `Exec` op that must succeed.
pub fn exec(cmd: String) -> Op {
    Op::Exec {
        cmd,
        stdin: None,
        chdir: None,
        allow_failure: false,
    }
}

/// Options of a planned file write.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    /// The `after:` header of the diff (the source file, or "dynamically generated").
    pub after_header: String,
    pub backup: bool,
    pub validate: Option<String>,
    /// Replace an existing file whose content differs (copy's `force`, default true).
    pub force: bool,
}

/// Plans writing `content` to `path` (observed as `obs`) with `attrs`: a `Write` op with a
/// diff when the content differs, else attribute ops only. Nothing when all matches.
pub fn plan_content(
    plan: &mut Plan,
    path: &str,
    obs: &Observed,
    content: &[u8],
    attrs: &Attrs,
    ids: &Ids,
    opts: &WriteOpts,
) -> anyhow::Result<()> {
    match &obs.stat {
        Some(st) if st.kind == FileKind::Directory => {
            anyhow::bail!("{path} is a directory on the host, not a file")
        }
        Some(st) => {
            let same = obs
                .same_content
                .unwrap_or_else(|| obs.content.as_deref() == Some(content));
            if same || !opts.force {
                return plan_attrs(plan, path, st, attrs, ids);
            }
            // Content compared without reading it is too big for a diff anyway.
            let diff = match &obs.content {
                None if obs.same_content.is_some() => None,
                before => diff::file_diff(
                    path,
                    &opts.after_header,
                    before.as_deref().unwrap_or_default(),
                    content,
                ),
            };
            let mut attr_plan = Plan::default();
            plan_attrs(&mut attr_plan, path, st, attrs, ids)?;
            plan.changes.push(Change {
                summary: format!("update {path} ({} bytes)", content.len()),
                diff,
            });
            plan.changes.extend(attr_plan.changes);
            let mode = attrs
                .mode
                .as_ref()
                .map(|m| m.resolve(Some(st.mode), false))
                .transpose()?
                .flatten();
            plan.ops
                .push(write_op(path, content, mode, attrs, ids, opts));
        }
        None => {
            plan.changes.push(Change {
                summary: format!("create {path} ({} bytes)", content.len()),
                diff: diff::file_diff(path, &opts.after_header, b"", content),
            });
            let mode = attrs.new_mode(false)?;
            plan.ops
                .push(write_op(path, content, mode, attrs, ids, opts));
        }
    }
    Ok(())
}

/// The write of a planned content. Owner and group go as the ids planning resolved, so
/// the transport does not look the names up again; a name that did not resolve goes as
/// the name, and the write reports it.
fn write_op(
    path: &str,
    content: &[u8],
    mode: Option<u32>,
    attrs: &Attrs,
    ids: &Ids,
    opts: &WriteOpts,
) -> Op {
    let id_or_name = |id: Option<u32>, name: &Option<String>| {
        name.as_ref()
            .map(|n| id.map_or_else(|| n.clone(), |i| i.to_string()))
    };
    Op::Write {
        path: path.to_string(),
        content: content.to_vec(),
        attrs: FileAttrs {
            mode,
            owner: id_or_name(ids.uid, &attrs.owner),
            group: id_or_name(ids.gid, &attrs.group),
        },
        backup: opts.backup,
        validate: opts.validate.clone(),
    }
}

/// The result keys Ansible's file modules return for a path after the plan is applied.
pub fn file_result(
    key: &str,
    path: &str,
    obs: &Observed,
    attrs: &Attrs,
    state: &str,
) -> anyhow::Result<Vars> {
    let mut r = Vars::new();
    r.insert(key.into(), Value::String(path.into()));
    if key != "path" {
        r.insert("path".into(), Value::String(path.into()));
    }
    r.insert("state".into(), Value::String(state.into()));
    let is_dir = state == "directory";
    let cur = obs.stat.as_ref().map(|s| s.mode);
    let mode = match &attrs.mode {
        Some(m) => m.resolve(cur, is_dir)?.or(cur),
        None => cur,
    };
    if let Some(m) = mode {
        r.insert("mode".into(), Value::String(mode::fmt(m)));
    }
    if let Some(st) = &obs.stat {
        r.insert("uid".into(), Value::from(st.uid));
        r.insert("gid".into(), Value::from(st.gid));
    }
    if let Some(o) = &attrs.owner {
        r.insert("owner".into(), Value::String(o.clone()));
    }
    if let Some(g) = &attrs.group {
        r.insert("group".into(), Value::String(g.clone()));
    }
    Ok(r)
}

/// A new directory's numeric mode and owner, for [`Op::Mkdir`]; `None` when an owner or
/// group name did not resolve to an id (then `chown` runs, and reports it).
pub fn new_dir_attrs(
    attrs: &Attrs,
    ids: &Ids,
) -> anyhow::Result<Option<(Option<u32>, crate::transport::Owner)>> {
    if (attrs.owner.is_some() && ids.uid.is_none()) || (attrs.group.is_some() && ids.gid.is_none())
    {
        return Ok(None);
    }
    Ok(Some((attrs.new_mode(true)?, (ids.uid, ids.gid))))
}

/// Makes a missing directory and its missing parents, as `mkdir -p` would (the default
/// mode, the connecting or become user as owner).
pub fn mkdir(path: &str) -> Op {
    Op::Mkdir {
        path: path.to_string(),
        mode: None,
        owner: (None, None),
    }
}

/// sha1 of content, as hex (Ansible's `checksum`).
pub fn sha1_hex(content: &[u8]) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(content))
}

/// The folder part of a path (`/` for top-level entries, `.` for bare names).
pub fn parent(path: &str) -> &str {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) => "/",
        Some((d, _)) => d,
        None => ".",
    }
}

/// The last component of a path.
pub fn basename(path: &str) -> &str {
    let p = path.trim_end_matches('/');
    p.rsplit_once('/').map(|(_, b)| b).unwrap_or(p)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_read_from_passwd_and_group_texts() {
        let passwd = b"root:x:0:0:root:/root:/bin/bash\napp:x:3001:3001::/home/app:/bin/bash\n";
        assert_eq!(super::id_in_db(passwd, "app"), Some(3001));
        assert_eq!(super::id_in_db(passwd, "root"), Some(0));
        assert_eq!(super::id_in_db(passwd, "ap"), None);
        assert_eq!(super::id_in_db(b"+::::::\nbroken\n", "broken"), None);
        let group = b"app:x:3001:\nwheel:x:10:a,b\n";
        assert_eq!(super::id_in_db(group, "wheel"), Some(10));
        assert_eq!(super::id_in_db(group, "nobody"), None);
    }

    use super::*;

    fn st(kind: FileKind, mode: u32) -> FileStat {
        FileStat {
            kind,
            mode,
            uid: 0,
            gid: 0,
            size: 3,
            mtime: 0,
            link_target: None,
        }
    }

    #[test]
    fn same_content_and_attrs_plans_nothing() {
        let obs = Observed {
            stat: Some(st(FileKind::File, 0o644)),
            content: Some(b"abc".to_vec()),
            same_content: None,
        };
        let attrs = Attrs {
            mode: Some(ModeArg::Octal(0o644)),
            ..Default::default()
        };
        let mut plan = Plan::default();
        let opts = WriteOpts {
            force: true,
            ..Default::default()
        };
        plan_content(
            &mut plan,
            "/x",
            &obs,
            b"abc",
            &attrs,
            &Ids::default(),
            &opts,
        )
        .unwrap();
        assert!(plan.changes.is_empty() && plan.ops.is_empty());
    }

    #[test]
    fn mode_only_change_is_a_chmod() {
        let obs = Observed {
            stat: Some(st(FileKind::File, 0o600)),
            content: Some(b"abc".to_vec()),
            same_content: None,
        };
        let attrs = Attrs {
            mode: Some(ModeArg::Symbolic("go+r".into())),
            ..Default::default()
        };
        let mut plan = Plan::default();
        let opts = WriteOpts {
            force: true,
            ..Default::default()
        };
        plan_content(
            &mut plan,
            "/x",
            &obs,
            b"abc",
            &attrs,
            &Ids::default(),
            &opts,
        )
        .unwrap();
        assert_eq!(plan.changes[0].summary, "mode of /x: 0600 -> 0644");
        assert_eq!(plan.ops, vec![exec("chmod 0644 /x".into())]);
    }

    #[test]
    fn new_content_is_one_write_with_a_diff() {
        let obs = Observed {
            stat: Some(st(FileKind::File, 0o600)),
            content: Some(b"old\n".to_vec()),
            same_content: None,
        };
        let attrs = Attrs {
            mode: Some(ModeArg::Octal(0o640)),
            owner: Some("root".into()),
            group: None,
        };
        let ids = Ids {
            uid: Some(0),
            gid: None,
        };
        let mut plan = Plan::default();
        let opts = WriteOpts {
            force: true,
            after_header: "dynamically generated".into(),
            ..Default::default()
        };
        plan_content(&mut plan, "/x", &obs, b"new\n", &attrs, &ids, &opts).unwrap();
        assert_eq!(plan.ops.len(), 1);
        assert!(matches!(&plan.ops[0], Op::Write { attrs, .. } if attrs.mode == Some(0o640)));
        let d = plan.changes[0].diff.as_ref().unwrap();
        assert_eq!((d.before.as_str(), d.after.as_str()), ("old\n", "new\n"));
        assert_eq!(plan.changes.len(), 2, "content and mode");
    }

    #[test]
    fn force_false_keeps_an_existing_file() {
        let obs = Observed {
            stat: Some(st(FileKind::File, 0o644)),
            content: Some(b"old".to_vec()),
            same_content: None,
        };
        let mut plan = Plan::default();
        let opts = WriteOpts::default();
        plan_content(
            &mut plan,
            "/x",
            &obs,
            b"new",
            &Attrs::default(),
            &Ids::default(),
            &opts,
        )
        .unwrap();
        assert!(plan.ops.is_empty());
    }

    #[test]
    fn content_compared_on_the_host_is_planned_without_a_diff() {
        let big = vec![b'a'; HOST_CHECKSUM_MIN_BYTES];
        let mut stat = st(FileKind::File, 0o644);
        stat.size = big.len() as u64;
        let mut obs = Observed {
            stat: Some(stat),
            content: None,
            same_content: Some(true),
        };
        let opts = WriteOpts {
            force: true,
            ..Default::default()
        };
        let attrs = Attrs::default();
        let mut plan = Plan::default();
        plan_content(&mut plan, "/x", &obs, &big, &attrs, &Ids::default(), &opts).unwrap();
        assert!(plan.changes.is_empty() && plan.ops.is_empty());
        obs.same_content = Some(false);
        plan_content(&mut plan, "/x", &obs, &big, &attrs, &Ids::default(), &opts).unwrap();
        assert_eq!(plan.ops.len(), 1);
        assert_eq!(plan.changes.len(), 1);
        assert!(plan.changes[0].diff.is_none());
    }

    #[test]
    fn paths() {
        assert_eq!(parent("/etc/motd"), "/etc");
        assert_eq!(parent("/motd"), "/");
        assert_eq!(parent("motd"), ".");
        assert_eq!(basename("/a/b/"), "b");
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }
}
