//! `authorized_key` (ansible.posix): SSH public keys in a user's `authorized_keys`
//! (`~user/.ssh/authorized_keys` or `path`), one or many (`key` may hold several lines,
//! or be an `http(s)://` URL or a `file:` path read on the host).
//!
//! The file is edited as Ansible's module does (pure functions below): lines are keyed by
//! the key blob, comments and unparsable lines kept in place; a present key whose options
//! or comment differ is removed and re-added at the end; `key_options` / `comment` replace
//! the key's own; `exclusive` drops every other key; lines are written as
//! `[options ]type blob comment` (a trailing space when the comment is empty, as Ansible).
//! Writing creates `.ssh` (0700, owned by the user, with `manage_dir`) and gives the file
//! 0600 and the user's ownership. Observed in one round trip.

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::args::{bool_arg, choice, sh_quote, str_opt, str_req};
use super::fileops::exec;
use super::{ArgDef, ArgSpec, Change, HostCtx, Module, Op, Plan, TextDiff};
use crate::transport::FileAttrs;
use crate::Vars;

pub struct AuthorizedKey;

const ARGS: &[ArgDef] = &[
    ArgDef::req("user"),
    ArgDef::req("key"),
    ArgDef::opt("path"),
    ArgDef::opt("manage_dir"),
    ArgDef::opt("state"),
    ArgDef::opt("key_options"),
    ArgDef::opt("exclusive"),
    ArgDef::opt("comment"),
    ArgDef::opt("validate_certs"),
    ArgDef::opt("follow"),
];

const KEY_TYPES: &[&str] = &[
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "ssh-ed25519",
    "ssh-ed25519-cert-v01@openssh.com",
    "ssh-dss",
    "ssh-rsa",
    "ssh-xmss@openssh.com",
    "ssh-xmss-cert-v01@openssh.com",
    "rsa-sha2-256",
    "rsa-sha2-512",
    "ssh-rsa-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "ssh-dss-cert-v01@openssh.com",
];

/// Key options in order (`no-pty`, `from="10.0.0.1"` -> (from, Some("\"10.0.0.1\""))).
pub type Options = Vec<(String, Option<String>)>;

/// One line of the file: a key, or a line kept as it is (`skipped`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key blob, or the raw line for a skipped one.
    pub id: String,
    /// None: a skipped line (comment, blank, unparsable).
    pub key_type: Option<String>,
    pub options: Options,
    pub comment: String,
    pub rank: usize,
}

impl Entry {
    fn same(&self, other: &Entry) -> bool {
        self.id == other.id
            && self.key_type == other.key_type
            && self.options == other.options
            && self.comment == other.comment
    }
}

/// Ansible's `parseoptions`: comma-separated, commas inside quotes kept.
pub fn parse_options(s: &str) -> Options {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for ch in s.chars() {
        match (quote, ch) {
            (None, ',') => parts.push(std::mem::take(&mut cur)),
            (None, '"' | '\'') => {
                quote = Some(ch);
                cur.push(ch);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(ch);
            }
            _ => cur.push(ch),
        }
    }
    parts.push(cur);
    let mut out: Options = Vec::new();
    for p in parts.into_iter().filter(|p| !p.is_empty()) {
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (p, None),
        };
        match out.iter_mut().find(|(ok, _)| *ok == k) {
            Some(e) => e.1 = v,
            None => out.push((k, v)),
        }
    }
    out
}

/// Ansible's `parsekey`: None when the line has no known key type.
pub fn parse_key(raw: &str, rank: usize) -> Option<Entry> {
    let raw = raw.replace(r"\#", "#");
    let parts: Vec<&str> = raw.split_whitespace().collect();
    if parts.first() == Some(&"#") {
        return Some(skipped(&raw, rank));
    }
    let ti = parts.iter().position(|p| KEY_TYPES.contains(p))?;
    let blob = parts.get(ti + 1)?;
    Some(Entry {
        id: blob.to_string(),
        key_type: Some(parts[ti].to_string()),
        options: if ti > 0 {
            parse_options(&parts[..ti].join(" "))
        } else {
            Vec::new()
        },
        comment: parts.get(ti + 2..).map(|c| c.join(" ")).unwrap_or_default(),
        rank,
    })
}

fn skipped(line: &str, rank: usize) -> Entry {
    Entry {
        id: line.to_string(),
        key_type: None,
        options: Vec::new(),
        comment: String::new(),
        rank,
    }
}

/// The file's entries keyed by id, in first-seen order (a later duplicate replaces the
/// earlier one's data, as a Python dict does).
#[derive(Debug, Clone, Default)]
pub struct Keys {
    order: Vec<String>,
    map: HashMap<String, Entry>,
}

impl Keys {
    pub fn parse(content: &str) -> Keys {
        let mut k = Keys::default();
        for (rank, line) in content.split_inclusive('\n').enumerate() {
            let e = parse_key(line, rank).unwrap_or_else(|| skipped(line, rank));
            k.insert(e);
        }
        k
    }

    fn insert(&mut self, e: Entry) {
        if !self.map.contains_key(&e.id) {
            self.order.push(e.id.clone());
        }
        self.map.insert(e.id.clone(), e);
    }

    fn remove(&mut self, id: &str) {
        self.map.remove(id);
        self.order.retain(|o| o != id);
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    /// Ansible's `serialize`: by rank; skipped lines as they were.
    pub fn serialize(&self) -> String {
        let mut entries: Vec<&Entry> = self.order.iter().filter_map(|o| self.map.get(o)).collect();
        entries.sort_by_key(|e| e.rank);
        let mut out = String::new();
        for e in entries {
            match &e.key_type {
                None => out.push_str(&e.id),
                Some(t) => {
                    if !e.options.is_empty() {
                        let opts: Vec<String> = e
                            .options
                            .iter()
                            .map(|(k, v)| match v {
                                Some(v) => format!("{k}={v}"),
                                None => k.clone(),
                            })
                            .collect();
                        out.push_str(&opts.join(","));
                        out.push(' ');
                    }
                    out.push_str(&format!("{t} {} {}\n", e.id, e.comment));
                }
            }
        }
        out
    }
}

/// Ansible's `enforce_state` on the file's content; Err names an invalid key.
pub fn enforce(
    existing: &str,
    key: &str,
    present: bool,
    key_options: Option<&str>,
    comment: Option<&str>,
    exclusive: bool,
) -> Result<Option<String>, String> {
    let mut keys = Keys::parse(existing);
    let max_rank = keys.len();
    let mut write = false;
    let mut to_exist = Vec::new();
    let new_keys = key.lines().filter(|l| !l.is_empty() && !l.starts_with('#'));
    for (rank, line) in new_keys.enumerate() {
        let mut parsed = parse_key(line, rank).ok_or(format!("invalid key specified: {line}"))?;
        if let Some(o) = key_options {
            parsed.options = parse_options(o);
        }
        if let Some(c) = comment {
            parsed.comment = c.to_string();
        }
        let mut matched = false;
        let mut mismatch = false;
        if let Some(old) = keys.map.get(&parsed.id) {
            if !parsed.same(old) && present {
                mismatch = true;
            } else {
                matched = true;
            }
        }
        if present {
            to_exist.push(parsed.id.clone());
            if mismatch {
                keys.remove(&parsed.id);
                write = true;
            }
            if !matched {
                parsed.rank += max_rank;
                keys.insert(parsed);
                write = true;
            }
        } else if matched {
            keys.remove(&parsed.id);
            write = true;
        }
    }
    if present && exclusive {
        let extra: Vec<String> = keys
            .order
            .iter()
            .filter(|k| !to_exist.contains(k))
            .cloned()
            .collect();
        for k in extra {
            keys.remove(&k);
            write = true;
        }
    }
    Ok(write.then(|| keys.serialize()))
}

#[async_trait]
impl Module for AuthorizedKey {
    fn name(&self) -> &'static str {
        "authorized_key"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let user = str_req(args, &["user"])?;
        let key_arg = str_req(args, &["key"])?;
        let path = str_opt(args, &["path"])?;
        let manage_dir = bool_arg(args, &["manage_dir"], true)?;
        let state = choice(args, &["state"], &["present", "absent"], "present")?;
        let key_options = str_opt(args, &["key_options"])?;
        let exclusive = bool_arg(args, &["exclusive"], false)?;
        let comment = str_opt(args, &["comment"])?;
        let validate = bool_arg(args, &["validate_certs"], true)?;
        let follow = bool_arg(args, &["follow"], false)?;
        let mut plan = Plan::default();
        // One round trip: the user's passwd entry, the key source, the file.
        let file_expr = match &path {
            Some(p) => sh_quote(p),
            None => "\"$home/.ssh/authorized_keys\"".into(),
        };
        let key_src = if key_arg.starts_with("http") {
            format!(
                "echo @@KEY; {} || echo @@KEYFAILED",
                super::apt_key::download_cmd(&key_arg, !validate)
            )
        } else if key_arg.starts_with("file") {
            let p = key_arg
                .split_once(':')
                .map(|(_, r)| r.trim_start_matches("//"))
                .unwrap_or("");
            let p = if p.starts_with('/') {
                p.to_string()
            } else {
                format!("/{p}")
            };
            format!(
                "echo @@KEY; if [ -f {q} ]; then cat {q}; echo; else echo @@KEYFAILED; fi",
                q = sh_quote(&p)
            )
        } else {
            String::new()
        };
        let real = if follow {
            "f=$(realpath -m \"$f\")"
        } else {
            ":"
        };
        let script = format!(
            "pw=$(getent passwd {u}) || {{ echo @@NOUSER; }}\n\
             home=$(printf '%s' \"$pw\" | cut -d: -f6); uid=$(printf '%s' \"$pw\" | cut -d: -f3); gid=$(printf '%s' \"$pw\" | cut -d: -f4)\n\
             f={file_expr}; {real}\n\
             echo \"@@USER $uid $gid\"; echo \"@@PATH $f\"\n\
             {key_src}\n\
             echo @@FILE; [ -f \"$f\" ] && cat \"$f\"\n\
             exit 0\n",
            u = sh_quote(&user)
        );
        let out = ctx.run(&script).await?;
        let text = out.stdout.as_str();
        let no_user = text.starts_with("@@NOUSER");
        if no_user && !(ctx.check_mode && path.is_some()) {
            plan.failed = Some(if ctx.check_mode {
                "Either user must exist or you must provide full path to key file in check mode"
                    .into()
            } else {
                format!("Failed to lookup user {user}: getpwnam(): name not found: '{user}'")
            });
            return Ok(plan);
        }
        let field = |tag: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(tag))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let ids = field("@@USER ");
        let mut ids = ids.split_whitespace();
        let (uid, gid) = (
            ids.next().unwrap_or("").to_string(),
            ids.next().unwrap_or("").to_string(),
        );
        let keyfile = field("@@PATH ");
        let (before_file, existing) = text.split_once("@@FILE\n").unwrap_or((text, ""));
        let key = match before_file.split_once("@@KEY\n") {
            Some((_, k)) if k.contains("@@KEYFAILED") => {
                plan.failed = Some(if key_arg.starts_with("http") {
                    format!("Error getting key from: {key_arg}")
                } else {
                    format!("Path to a key file not found: {key_arg}")
                });
                return Ok(plan);
            }
            Some((_, k)) => k.to_string(),
            None => key_arg.clone(),
        };
        let new = match enforce(
            existing,
            &key,
            state == "present",
            key_options.as_deref(),
            comment.as_deref(),
            exclusive,
        ) {
            Ok(n) => n,
            Err(msg) => {
                plan.failed = Some(msg);
                return Ok(plan);
            }
        };
        let mut result = args.clone();
        result.insert("keyfile".into(), Value::from(keyfile.clone()));
        for (k, d) in [
            ("path", Value::Null),
            ("manage_dir", Value::Bool(true)),
            ("state", Value::from("present")),
            ("key_options", Value::Null),
            ("exclusive", Value::Bool(false)),
            ("comment", Value::Null),
            ("validate_certs", Value::Bool(true)),
            ("follow", Value::Bool(false)),
        ] {
            result.entry(k.to_string()).or_insert(d);
        }
        if let Some(after) = new {
            let diff = TextDiff {
                before_header: keyfile.clone(),
                after_header: keyfile.clone(),
                before: existing.to_string(),
                after: after.clone(),
            };
            result.insert(
                "diff".into(),
                json!({"before_header": diff.before_header, "after_header": diff.after_header,
                       "before": diff.before, "after": diff.after}),
            );
            plan.changes.push(Change {
                summary: format!(
                    "{} key(s) in {keyfile}",
                    if state == "present" { "add" } else { "remove" }
                ),
                diff: Some(diff),
            });
            let owner = format!("{uid}:{gid}");
            if manage_dir {
                let dir = super::fileops::parent(&keyfile).to_string();
                plan.ops.push(exec(format!(
                    "mkdir -p {d} && chown {owner} {d} && chmod 0700 {d}",
                    d = sh_quote(&dir)
                )));
            }
            plan.ops.push(Op::Write {
                path: keyfile.clone(),
                content: after.into_bytes(),
                attrs: FileAttrs {
                    mode: Some(0o600),
                    owner: Some(uid.clone()),
                    group: Some(gid.clone()),
                },
                backup: false,
                validate: None,
            });
        }
        plan.result = result;
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOne one@example";
    const K2: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQTwo";

    #[test]
    fn options_keep_order_and_quoted_commas() {
        let o = parse_options("no-pty,from=\"10.0.0.1,10.0.0.2\",command=\"/bin/x\"");
        assert_eq!(
            o,
            vec![
                ("no-pty".to_string(), None),
                (
                    "from".to_string(),
                    Some("\"10.0.0.1,10.0.0.2\"".to_string())
                ),
                ("command".to_string(), Some("\"/bin/x\"".to_string())),
            ]
        );
    }

    #[test]
    fn adds_with_ansibles_layout_and_is_idempotent() {
        let after = enforce(
            "# keep me\n",
            &format!("{K1}\n{K2}"),
            true,
            None,
            None,
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            after,
            format!("# keep me\n{K1}\nssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQTwo \n")
        );
        assert_eq!(enforce(&after, K1, true, None, None, false).unwrap(), None);
        // Options differ: the key moves to the end with the new options.
        let moved = enforce(&after, K1, true, Some("no-pty"), None, false)
            .unwrap()
            .unwrap();
        assert!(moved.ends_with(&format!("no-pty {K1}\n")), "{moved}");
        let only = enforce(&after, K2, true, None, None, true)
            .unwrap()
            .unwrap();
        assert_eq!(only, "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQTwo \n");
        let removed = enforce(&after, K1, false, None, None, false)
            .unwrap()
            .unwrap();
        assert!(!removed.contains("one@example"));
        assert!(enforce("", "not a key", true, None, None, false).is_err());
    }
}
