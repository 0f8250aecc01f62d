//! `blockinfile`: a block of lines between two marker lines (`# {mark} ANSIBLE MANAGED
//! BLOCK`), inserted at the end or after/before a match, replaced in place when the markers
//! are there, removed with `state: absent` (or an empty block). Editing is the pure
//! function [`edit`].

use async_trait::async_trait;
use regex::Regex;
use serde_json::Value;

use super::args::{bool_arg, choice, str_opt, str_req};
use super::fileops::{self, Attrs, WriteOpts};
use super::lineinfile::{compile, plan_text_edit};
use super::{ArgDef, ArgSpec, HostCtx, Module, Plan};
use crate::Vars;

pub struct BlockInFile;

const ARGS: &[ArgDef] = &[
    ArgDef {
        name: "path",
        aliases: &["dest", "destfile", "name"],
        required: true,
    },
    ArgDef::alias("block", &["content"]),
    ArgDef::opt("marker"),
    ArgDef::opt("marker_begin"),
    ArgDef::opt("marker_end"),
    ArgDef::opt("state"),
    ArgDef::opt("insertafter"),
    ArgDef::opt("insertbefore"),
    ArgDef::opt("create"),
    ArgDef::opt("backup"),
    ArgDef::opt("validate"),
    ArgDef::opt("mode"),
    ArgDef::opt("owner"),
    ArgDef::opt("group"),
    ArgDef::opt("unsafe_writes"),
];

/// Where a new block goes when its markers are not in the file.
#[derive(Debug, Clone)]
pub enum Position {
    Eof,
    Bof,
    After(Regex),
    Before(Regex),
}

/// Replaces/inserts/removes the block; returns the content and Ansible's message.
pub fn edit(
    content: &str,
    begin: &str,
    end: &str,
    block: Option<&str>,
    pos: &Position,
) -> (String, String) {
    let mut lines: Vec<String> = content.split_inclusive('\n').map(String::from).collect();
    let block_lines: Vec<String> = match block {
        Some(b) if !b.is_empty() => std::iter::once(begin.to_string())
            .chain(b.lines().map(String::from))
            .chain(std::iter::once(end.to_string()))
            .map(|l| l + "\n")
            .collect(),
        _ => Vec::new(),
    };
    let bare = |l: &String| l.trim_end_matches(['\n', '\r']).to_string();
    let n0 = lines.iter().rposition(|l| bare(l) == begin);
    let n1 = lines.iter().rposition(|l| bare(l) == end);
    let at = match (n0, n1) {
        (Some(a), Some(b)) => {
            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
            lines.drain(lo..=hi);
            lo
        }
        _ => match pos {
            Position::Eof => lines.len(),
            Position::Bof => 0,
            Position::After(re) => lines
                .iter()
                .rposition(|l| re.is_match(&bare(l)))
                .map(|i| i + 1)
                .unwrap_or(lines.len()),
            Position::Before(re) => lines
                .iter()
                .rposition(|l| re.is_match(&bare(l)))
                .unwrap_or(lines.len()),
        },
    };
    if at > 0 && !block_lines.is_empty() && !lines[at - 1].ends_with('\n') {
        lines[at - 1].push('\n');
    }
    let removing = block_lines.is_empty();
    for (i, l) in block_lines.into_iter().enumerate() {
        lines.insert(at + i, l);
    }
    let out = lines.concat();
    let msg = if out == content {
        String::new()
    } else if removing {
        "Block removed".to_string()
    } else {
        "Block inserted".to_string()
    };
    (out, msg)
}

#[async_trait]
impl Module for BlockInFile {
    fn name(&self) -> &'static str {
        "blockinfile"
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
        let marker = str_opt(args, &["marker"])?
            .unwrap_or_else(|| "# {mark} ANSIBLE MANAGED BLOCK".to_string());
        let begin = marker.replace(
            "{mark}",
            &str_opt(args, &["marker_begin"])?.unwrap_or_else(|| "BEGIN".into()),
        );
        let end = marker.replace(
            "{mark}",
            &str_opt(args, &["marker_end"])?.unwrap_or_else(|| "END".into()),
        );
        let block = str_opt(args, &["block"])?.unwrap_or_default();
        let pos = match (
            str_opt(args, &["insertafter"])?,
            str_opt(args, &["insertbefore"])?,
        ) {
            (Some(_), Some(_)) => {
                anyhow::bail!("arguments insertafter and insertbefore are mutually exclusive")
            }
            (Some(a), None) if a == "EOF" => Position::Eof,
            (Some(a), None) => Position::After(compile("insertafter", &a)?),
            (None, Some(b)) if b == "BOF" => Position::Bof,
            (None, Some(b)) => Position::Before(compile("insertbefore", &b)?),
            (None, None) => Position::Eof,
        };
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
                plan.failed = Some(format!("Path {path} does not exist !"));
            }
            plan.result = super::args::vars([("path", Value::String(path))]);
            return Ok(plan);
        }
        let before = obs
            .content
            .as_deref()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .unwrap_or_default();
        let block = if present { Some(block.as_str()) } else { None };
        let (after, msg) = edit(&before, &begin, &end, block, &pos);
        plan_text_edit(ctx, &mut plan, &path, &obs, &after, &msg, &attrs, &opts).await?;
        plan.result =
            super::args::vars([("path", Value::String(path)), ("msg", Value::String(msg))]);
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "# BEGIN ANSIBLE MANAGED BLOCK";
    const E: &str = "# END ANSIBLE MANAGED BLOCK";

    #[test]
    fn inserts_at_the_end_then_is_stable() {
        let (out, msg) = edit("a\n", B, E, Some("x\ny"), &Position::Eof);
        assert_eq!(out, format!("a\n{B}\nx\ny\n{E}\n"));
        assert_eq!(msg, "Block inserted");
        let (again, msg) = edit(&out, B, E, Some("x\ny"), &Position::Eof);
        assert_eq!((again, msg), (out, String::new()));
    }

    #[test]
    fn replaces_in_place() {
        let src = format!("a\n{B}\nold\n{E}\nz\n");
        let (out, _) = edit(&src, B, E, Some("new"), &Position::Eof);
        assert_eq!(out, format!("a\n{B}\nnew\n{E}\nz\n"));
    }

    #[test]
    fn removes_with_absent_or_empty_block() {
        let src = format!("a\n{B}\nold\n{E}\nz\n");
        assert_eq!(edit(&src, B, E, None, &Position::Eof).0, "a\nz\n");
        let (out, msg) = edit(&src, B, E, Some(""), &Position::Eof);
        assert_eq!((out.as_str(), msg.as_str()), ("a\nz\n", "Block removed"));
    }

    #[test]
    fn positions() {
        let re = Regex::new("^b").unwrap();
        assert_eq!(
            edit("a\nb\nc", B, E, Some("x"), &Position::After(re.clone())).0,
            format!("a\nb\n{B}\nx\n{E}\nc")
        );
        assert_eq!(
            edit("a\nb\nc\n", B, E, Some("x"), &Position::Before(re)).0,
            format!("a\n{B}\nx\n{E}\nb\nc\n")
        );
        assert_eq!(
            edit("a\n", B, E, Some("x"), &Position::Bof).0,
            format!("{B}\nx\n{E}\na\n")
        );
        assert_eq!(
            edit("a", B, E, Some("x"), &Position::Eof).0,
            format!("a\n{B}\nx\n{E}\n")
        );
    }
}
