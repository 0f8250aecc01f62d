//! `lineinfile`: one line in a text file, with Ansible's exact semantics: with `regexp` the
//! *last* matching line is replaced (the first with `firstmatch`); when nothing matches and
//! the line is not already there, it is inserted after the last `insertafter` match (or
//! before the `insertbefore` match, `BOF`, `EOF`), else at the end; never duplicated. With
//! `backrefs` and no match, nothing changes. `state: absent` removes every matching line.
//! The editing is a pure function ([`edit`]) so it is tested without a host.

use async_trait::async_trait;
use regex::Regex;
use serde_json::Value;

use super::args::{bool_arg, choice, str_opt, str_req};
use super::fileops::{self, Attrs, WriteOpts};
use super::{ArgDef, ArgSpec, Change, HostCtx, Module, Plan, TextDiff};
use crate::Vars;

pub struct LineInFile;

const ARGS: &[ArgDef] = &[
    ArgDef {
        name: "path",
        aliases: &["dest", "destfile", "name"],
        required: true,
    },
    ArgDef::alias("regexp", &["regex"]),
    ArgDef::opt("search_string"),
    ArgDef::alias("line", &["value"]),
    ArgDef::opt("state"),
    ArgDef::opt("insertafter"),
    ArgDef::opt("insertbefore"),
    ArgDef::opt("create"),
    ArgDef::opt("backrefs"),
    ArgDef::opt("firstmatch"),
    ArgDef::opt("backup"),
    ArgDef::opt("validate"),
    ArgDef::opt("mode"),
    ArgDef::opt("owner"),
    ArgDef::opt("group"),
    ArgDef::opt("unsafe_writes"),
];

/// What to do to the file's lines.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pub regexp: Option<Regex>,
    pub search_string: Option<String>,
    pub line: Option<String>,
    pub present: bool,
    pub insertafter: Option<String>,
    pub insertbefore: Option<String>,
    pub backrefs: bool,
    pub firstmatch: bool,
}

/// The edited content and Ansible's message ("line added", "line replaced",
/// "2 line(s) removed", "" when nothing changed).
pub fn edit(content: &str, p: &Params) -> anyhow::Result<(String, String)> {
    let mut lines: Vec<String> = content.split_inclusive('\n').map(String::from).collect();
    if !p.present {
        let before = lines.len();
        lines.retain(|l| {
            let bare = strip_eol(l);
            if let Some(re) = &p.regexp {
                !re.is_match(bare)
            } else if let Some(s) = &p.search_string {
                !bare.contains(s.as_str())
            } else {
                Some(bare) != p.line.as_deref()
            }
        });
        let removed = before - lines.len();
        let msg = if removed > 0 {
            format!("{removed} line(s) removed")
        } else {
            String::new()
        };
        return Ok((lines.concat(), msg));
    }
    let line = p
        .line
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("argument line: required with state=present"))?;
    let anchor = match (&p.insertafter, &p.insertbefore) {
        (Some(a), _) if a != "BOF" && a != "EOF" => Some(compile("insertafter", a)?),
        (None, Some(b)) if b != "BOF" => Some(compile("insertbefore", b)?),
        _ => None,
    };

    let mut found: Option<usize> = None;
    let mut new_line = line.to_string();
    let mut matched = false;
    if let Some(re) = &p.regexp {
        for (i, l) in lines.iter().enumerate() {
            if let Some(caps) = re.captures(strip_eol(l)) {
                found = Some(i);
                matched = true;
                if p.backrefs {
                    new_line = String::new();
                    caps.expand(&python_to_rust_replacement(line), &mut new_line);
                }
                if p.firstmatch {
                    break;
                }
            }
        }
    } else if let Some(s) = &p.search_string {
        for (i, l) in lines.iter().enumerate() {
            if strip_eol(l).contains(s.as_str()) {
                found = Some(i);
                matched = true;
                if p.firstmatch {
                    break;
                }
            }
        }
    }
    let mut insert_at: Option<usize> = None;
    if !matched {
        for (i, l) in lines.iter().enumerate() {
            if strip_eol(l) == line {
                found = Some(i);
            } else if let Some(re) = &anchor {
                if re.is_match(strip_eol(l)) {
                    insert_at = Some(if p.insertafter.is_some() { i + 1 } else { i });
                    if p.firstmatch {
                        break;
                    }
                }
            }
        }
    }

    let with_eol = format!("{line}\n");
    let msg;
    if let Some(i) = found {
        let replacement = format!("{new_line}\n");
        if lines[i] == replacement {
            return Ok((lines.concat(), String::new()));
        }
        lines[i] = replacement;
        msg = "line replaced";
    } else if p.backrefs {
        return Ok((lines.concat(), String::new()));
    } else if p.insertbefore.as_deref() == Some("BOF") || p.insertafter.as_deref() == Some("BOF") {
        lines.insert(0, with_eol);
        msg = "line added";
    } else if p.insertafter.as_deref() == Some("EOF") || insert_at.is_none() {
        ensure_final_newline(&mut lines);
        lines.push(with_eol);
        msg = "line added";
    } else if let (Some(at), true) = (insert_at, p.insertafter.is_some()) {
        if at == lines.len() {
            if strip_eol(&lines[at - 1]) != line {
                ensure_final_newline(&mut lines);
                lines.push(with_eol);
            }
        } else if strip_eol(&lines[at]) != line {
            lines.insert(at, with_eol);
        }
        msg = "line added";
    } else {
        let at = insert_at.unwrap_or(0);
        lines.insert(at, with_eol);
        msg = "line added";
    }
    let out = lines.concat();
    let msg = if out == content { "" } else { msg };
    Ok((out, msg.to_string()))
}

fn ensure_final_newline(lines: &mut [String]) {
    if let Some(last) = lines.last_mut() {
        if !last.ends_with('\n') {
            last.push('\n');
        }
    }
}

fn strip_eol(l: &str) -> &str {
    l.trim_end_matches(['\n', '\r'])
}

/// Compiles an argument's regular expression, naming the argument on error.
pub fn compile(name: &str, re: &str) -> anyhow::Result<Regex> {
    Regex::new(re).map_err(|e| anyhow::anyhow!("argument {name}: invalid regular expression: {e}"))
}

/// Turns Python's `\1`, `\g<1>`, `\g<name>` into the regex crate's `${1}`, `${name}`
/// (and escapes `$`).
pub fn python_to_rust_replacement(s: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '$' {
            out.push_str("$$");
        } else if c == '\\' && i + 1 < chars.len() {
            let n = chars[i + 1];
            if n.is_ascii_digit() {
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_ascii_digit() && j < i + 3 {
                    j += 1;
                }
                let num: String = chars[i + 1..j].iter().collect();
                out.push_str(&format!("${{{num}}}"));
                i = j;
                continue;
            } else if n == 'g' && chars.get(i + 2) == Some(&'<') {
                if let Some(end) = chars[i + 3..].iter().position(|&c| c == '>') {
                    let name: String = chars[i + 3..i + 3 + end].iter().collect();
                    out.push_str(&format!("${{{name}}}"));
                    i = i + 4 + end;
                    continue;
                }
                out.push(c);
            } else if n == '\\' {
                out.push('\\');
                i += 2;
                continue;
            } else if n == 'n' {
                out.push('\n');
                i += 2;
                continue;
            } else if n == 't' {
                out.push('\t');
                i += 2;
                continue;
            } else {
                out.push(c);
            }
        } else {
            out.push(c);
        }
        i += 1;
    }
    out
}

/// Plans writing `after` over a text file observed as `obs` (shared with blockinfile):
/// creates the parent folder when `create` asks for a missing file.
#[allow(clippy::too_many_arguments)]
pub async fn plan_text_edit(
    ctx: &HostCtx,
    plan: &mut Plan,
    path: &str,
    obs: &fileops::Observed,
    after: &str,
    msg: &str,
    attrs: &Attrs,
    opts: &WriteOpts,
) -> anyhow::Result<()> {
    let ids = fileops::resolve_ids(ctx, attrs).await?;
    let before = obs
        .content
        .as_deref()
        .map(|c| String::from_utf8_lossy(c).into_owned());
    if before.as_deref() == Some(after) {
        if let Some(st) = &obs.stat {
            fileops::plan_attrs(plan, path, st, attrs, &ids)?;
        }
        return Ok(());
    }
    if obs.stat.is_none() {
        let parent = fileops::parent(path);
        if ctx
            .transport
            .stat(parent, ctx.become_.as_ref())
            .await?
            .is_none()
        {
            plan.changes.push(Change {
                summary: format!("create directory {parent}"),
                diff: None,
            });
            plan.ops.push(fileops::mkdir(parent));
        }
    }
    let mut sub = Plan::default();
    fileops::plan_content(&mut sub, path, obs, after.as_bytes(), attrs, &ids, opts)?;
    if let Some(first) = sub.changes.first_mut() {
        first.summary = format!("{path}: {msg}");
        first.diff = Some(TextDiff {
            before_header: format!("before: {path} (content)"),
            after_header: format!("after: {path} (content)"),
            before: before.unwrap_or_default(),
            after: after.to_string(),
        });
    }
    plan.changes.extend(sub.changes);
    plan.ops.extend(sub.ops);
    Ok(())
}

#[async_trait]
impl Module for LineInFile {
    fn name(&self) -> &'static str {
        "lineinfile"
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
        let present = choice(args, &["state"], &["present", "absent"], "present")? == "present";
        let params = Params {
            regexp: str_opt(args, &["regexp"])?
                .map(|r| compile("regexp", &r))
                .transpose()?,
            search_string: str_opt(args, &["search_string"])?,
            line: str_opt(args, &["line"])?,
            present,
            insertafter: str_opt(args, &["insertafter"])?,
            insertbefore: str_opt(args, &["insertbefore"])?,
            backrefs: bool_arg(args, &["backrefs"], false)?,
            firstmatch: bool_arg(args, &["firstmatch"], false)?,
        };
        if params.insertafter.is_some() && params.insertbefore.is_some() {
            anyhow::bail!("arguments insertafter and insertbefore are mutually exclusive");
        }
        if params.backrefs && params.regexp.is_none() {
            anyhow::bail!("argument backrefs: requires regexp");
        }
        if !present
            && params.regexp.is_none()
            && params.search_string.is_none()
            && params.line.is_none()
        {
            anyhow::bail!("one of line, regexp or search_string is required with state=absent");
        }
        let create = bool_arg(args, &["create"], false)?;
        let attrs = Attrs::from_args(args)?;
        let opts = WriteOpts {
            after_header: path.clone(),
            backup: bool_arg(args, &["backup"], false)?,
            validate: str_opt(args, &["validate"])?,
            force: true,
        };
        let obs = fileops::observe(ctx, &path, true).await?;
        let mut plan = Plan::default();
        if obs.stat.is_none() && (!present || !create) {
            if present {
                plan.failed = Some(format!("Destination {path} does not exist !"));
            }
            plan.result = super::args::vars([
                ("path", Value::String(path)),
                ("msg", Value::String(String::new())),
            ]);
            return Ok(plan);
        }
        let before = obs
            .content
            .as_deref()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .unwrap_or_default();
        let (after, msg) = edit(&before, &params)?;
        plan_text_edit(ctx, &mut plan, &path, &obs, &after, &msg, &attrs, &opts).await?;
        plan.result =
            super::args::vars([("path", Value::String(path)), ("msg", Value::String(msg))]);
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(regexp: Option<&str>, line: &str) -> Params {
        Params {
            regexp: regexp.map(|r| Regex::new(r).unwrap()),
            line: Some(line.into()),
            present: true,
            ..Default::default()
        }
    }

    fn run(content: &str, params: &Params) -> (String, String) {
        edit(content, params).unwrap()
    }

    #[test]
    fn regexp_replaces_the_last_match() {
        let (out, msg) = run("a=1\nb=2\na=3\n", &p(Some("^a="), "a=9"));
        assert_eq!(out, "a=1\nb=2\na=9\n");
        assert_eq!(msg, "line replaced");
    }

    #[test]
    fn firstmatch_replaces_the_first() {
        let mut params = p(Some("^a="), "a=9");
        params.firstmatch = true;
        assert_eq!(run("a=1\nb=2\na=3\n", &params).0, "a=9\nb=2\na=3\n");
    }

    #[test]
    fn no_match_appends_at_the_end() {
        let (out, msg) = run("x\ny\n", &p(Some("^a="), "a=1"));
        assert_eq!(out, "x\ny\na=1\n");
        assert_eq!(msg, "line added");
    }

    #[test]
    fn missing_final_newline_is_added_before_appending() {
        assert_eq!(run("x", &p(None, "y")).0, "x\ny\n");
        assert_eq!(run("", &p(None, "y")).0, "y\n");
    }

    #[test]
    fn never_duplicates() {
        let params = p(Some("^nomatch"), "y");
        let (out, msg) = run("x\ny\n", &params);
        assert_eq!(out, "x\ny\n");
        assert_eq!(msg, "");
        let (out, _) = run("x\ny\n", &p(None, "y"));
        assert_eq!(out, "x\ny\n");
    }

    #[test]
    fn replaced_line_equal_is_unchanged() {
        let (out, msg) = run("a=1\n", &p(Some("^a="), "a=1"));
        assert_eq!((out.as_str(), msg.as_str()), ("a=1\n", ""));
    }

    #[test]
    fn insertafter_regex_uses_the_last_match() {
        let mut params = p(None, "new");
        params.insertafter = Some("^#".into());
        assert_eq!(run("#a\nx\n#b\ny\n", &params).0, "#a\nx\n#b\nnew\ny\n");
        params.firstmatch = true;
        assert_eq!(run("#a\nx\n#b\ny\n", &params).0, "#a\nnew\nx\n#b\ny\n");
    }

    #[test]
    fn insertafter_at_the_last_line() {
        let mut params = p(None, "new");
        params.insertafter = Some("^last".into());
        assert_eq!(run("a\nlast\n", &params).0, "a\nlast\nnew\n");
    }

    #[test]
    fn insertafter_without_anchor_match_appends() {
        let mut params = p(None, "new");
        params.insertafter = Some("^nothing".into());
        assert_eq!(run("a\n", &params).0, "a\nnew\n");
    }

    #[test]
    fn insertafter_is_ignored_when_regexp_matches() {
        let mut params = p(Some("^k="), "k=2");
        params.insertafter = Some("^a".into());
        assert_eq!(run("a\nb\nk=1\n", &params).0, "a\nb\nk=2\n");
    }

    #[test]
    fn insertbefore_and_bof_eof() {
        let mut params = p(None, "new");
        params.insertbefore = Some("^b".into());
        assert_eq!(run("a\nb\nc\n", &params).0, "a\nnew\nb\nc\n");
        params.insertbefore = Some("BOF".into());
        assert_eq!(run("a\nb\n", &params).0, "new\na\nb\n");
        params.insertbefore = None;
        params.insertafter = Some("EOF".into());
        assert_eq!(run("a\nb\n", &params).0, "a\nb\nnew\n");
        params.insertafter = Some("BOF".into());
        assert_eq!(run("a\n", &params).0, "new\na\n");
    }

    #[test]
    fn insertbefore_at_the_first_line() {
        let mut params = p(None, "new");
        params.insertbefore = Some("^a".into());
        assert_eq!(run("a\nb\n", &params).0, "new\na\nb\n");
    }

    #[test]
    fn backrefs_expand_groups_and_do_nothing_without_a_match() {
        let mut params = p(Some(r"^(\w+)=(\d+)$"), r"\1: \2 \g<1>$");
        params.backrefs = true;
        assert_eq!(run("port=22\n", &params).0, "port: 22 port$\n");
        let (out, msg) = run("nothing here\n", &params);
        assert_eq!((out.as_str(), msg.as_str()), ("nothing here\n", ""));
    }

    #[test]
    fn absent_removes_every_match() {
        let params = Params {
            regexp: Some(Regex::new("^#").unwrap()),
            present: false,
            ..Default::default()
        };
        let (out, msg) = run("#a\nb\n#c\n", &params);
        assert_eq!(out, "b\n");
        assert_eq!(msg, "2 line(s) removed");
        let params = Params {
            line: Some("b".into()),
            present: false,
            ..Default::default()
        };
        assert_eq!(run("a\nb\nbb\n", &params).0, "a\nbb\n");
    }

    #[test]
    fn search_string_is_literal() {
        let params = Params {
            search_string: Some("a.b".into()),
            line: Some("a.b = 2".into()),
            present: true,
            ..Default::default()
        };
        assert_eq!(run("axb = 0\na.b = 1\n", &params).0, "axb = 0\na.b = 2\n");
    }

    #[test]
    fn replacement_translation() {
        assert_eq!(python_to_rust_replacement(r"\1-\g<x>$"), "${1}-${x}$$");
    }
}
