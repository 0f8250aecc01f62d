//! `replace`: every match of a regular expression in a file replaced, as Ansible's
//! `replace` does (Python's `re.subn` with MULTILINE), optionally only in the section after
//! `after` and/or before `before` (a DOTALL search, as Ansible builds it). The editing is a
//! pure function ([`edit`]) so it is tested without a host.
//!
//! The expressions run on Rust's `regex` crate, not Python's `re`: the syntax is the same
//! for classes, groups (`(?P<name>...)`), anchors and flags, and Python's `\Z` is
//! translated to `\z`; look-around and backreferences inside the pattern do not exist in
//! the crate and are refused with an error naming the argument before the host is touched.
//! The replacement takes Python's `\1`, `\g<1>`, `\g<name>`, `\n`, `\t`. One difference in
//! substitution: an empty match right after a match is not replaced here (Python 3.7+
//! replaces it: `x*` -> `-` on `abxd` gives `-a-b--d-` there, `-a-b-d-` here).

use async_trait::async_trait;
use regex::Regex;
use serde_json::Value;

use super::args::{bool_arg, str_opt, str_req};
use super::fileops::{self, Attrs, WriteOpts};
use super::lineinfile::{plan_text_edit, python_to_rust_replacement};
use super::{ArgDef, ArgSpec, HostCtx, Module, Plan};
use crate::transport::FileKind;
use crate::Vars;

pub struct Replace;

const ARGS: &[ArgDef] = &[
    ArgDef {
        name: "path",
        aliases: &["dest", "destfile", "name"],
        required: true,
    },
    ArgDef::req("regexp"),
    ArgDef::opt("replace"),
    ArgDef::opt("after"),
    ArgDef::opt("before"),
    ArgDef::opt("backup"),
    ArgDef::opt("validate"),
    ArgDef::opt("encoding"),
    ArgDef::opt("mode"),
    ArgDef::opt("owner"),
    ArgDef::opt("group"),
    ArgDef::opt("seuser"),
    ArgDef::opt("serole"),
    ArgDef::opt("setype"),
    ArgDef::opt("selevel"),
    ArgDef::opt("attributes"),
    ArgDef::opt("unsafe_writes"),
];

/// The compiled arguments of one replace.
#[derive(Debug)]
pub struct Params {
    pub regexp: Regex,
    /// The replacement in the regex crate's syntax (`${1}`).
    pub replace: String,
    /// The DOTALL section pattern built from `after`/`before`, and its Python text for the
    /// "did not match" message.
    pub section: Option<(Regex, String)>,
}

/// What an edit did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The new content and the number of replacements.
    Replaced(String, usize),
    /// Nothing to replace (or the replacements give the same text).
    Unchanged,
    /// `after`/`before` did not match: Ansible's message.
    NoSection(String),
}

impl Params {
    pub fn new(
        regexp: &str,
        replace: &str,
        after: Option<&str>,
        before: Option<&str>,
    ) -> anyhow::Result<Params> {
        let after = after.filter(|s| !s.is_empty());
        let before = before.filter(|s| !s.is_empty());
        let section_text = match (after, before) {
            (Some(a), Some(b)) => Some(format!("{a}(?P<subsection>.*?){b}")),
            (Some(a), None) => Some(format!("{a}(?P<subsection>.*)")),
            (None, Some(b)) => Some(format!("(?P<subsection>.*){b}")),
            (None, None) => None,
        };
        let section = section_text
            .map(|text| compile_python("after/before", &format!("(?s){text}")).map(|re| (re, text)))
            .transpose()?;
        Ok(Params {
            regexp: compile_python("regexp", &format!("(?m){regexp}"))?,
            replace: python_to_rust_replacement(replace),
            section,
        })
    }
}

/// Compiles a Python regular expression with the regex crate, naming the argument when it
/// uses what the crate does not have.
pub fn compile_python(name: &str, re: &str) -> anyhow::Result<Regex> {
    let translated = re.replace(r"\Z", r"\z");
    Regex::new(&translated).map_err(|e| {
        let hint = if ["(?=", "(?!", "(?<=", "(?<!", "(?P="]
            .iter()
            .any(|s| re.contains(s))
        {
            " (look-around and backreferences are not supported natively)"
        } else {
            ""
        };
        anyhow::anyhow!("argument {name}: invalid regular expression{hint}: {e}")
    })
}

/// Replaces every match of `p.regexp` in `content` (or in its section).
pub fn edit(content: &str, p: &Params) -> Outcome {
    let (start, end) = match &p.section {
        None => (0, content.len()),
        Some((re, text)) => match re.captures(content).and_then(|c| c.name("subsection")) {
            Some(m) => (m.start(), m.end()),
            None => {
                return Outcome::NoSection(format!(
                    "Pattern for before/after params did not match the given file: {text}"
                ))
            }
        },
    };
    let section = &content[start..end];
    let count = p.regexp.find_iter(section).count();
    let replaced = p.regexp.replace_all(section, p.replace.as_str());
    if count == 0 || replaced == section {
        return Outcome::Unchanged;
    }
    let out = format!("{}{}{}", &content[..start], replaced, &content[end..]);
    Outcome::Replaced(out, count)
}

#[async_trait]
impl Module for Replace {
    fn name(&self) -> &'static str {
        "replace"
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
        let regexp = str_req(args, &["regexp"])?;
        let replace = str_opt(args, &["replace"])?.unwrap_or_default();
        let after = str_opt(args, &["after"])?;
        let before = str_opt(args, &["before"])?;
        let params = Params::new(&regexp, &replace, after.as_deref(), before.as_deref())?;
        let attrs = Attrs::from_args(args)?;
        let opts = WriteOpts {
            after_header: path.clone(),
            backup: bool_arg(args, &["backup"], false)?,
            validate: str_opt(args, &["validate"])?,
            force: true,
        };
        let mut plan = Plan {
            result: super::args::vars([("rc", Value::from(0))]),
            ..Default::default()
        };
        // Follow a link to the file it names, as Ansible writes the real path.
        let real = realpath(ctx, &path).await?;
        let obs = fileops::observe(ctx, &real, true).await?;
        match &obs.stat {
            None => {
                plan.result.insert("rc".into(), Value::from(257));
                plan.failed = Some(format!("Path {path} does not exist !"));
                return Ok(plan);
            }
            Some(st) if st.kind == FileKind::Directory => {
                plan.result.insert("rc".into(), Value::from(256));
                plan.failed = Some(format!("Path {path} is a directory !"));
                return Ok(plan);
            }
            Some(_) => {}
        }
        let before_text = obs
            .content
            .as_deref()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .unwrap_or_default();
        let (after_text, msg) = match edit(&before_text, &params) {
            Outcome::NoSection(msg) => {
                plan.result.insert("msg".into(), Value::String(msg));
                return Ok(plan);
            }
            Outcome::Unchanged => (before_text, String::new()),
            Outcome::Replaced(text, n) => (text, format!("{n} replacements made")),
        };
        plan_text_edit(
            ctx,
            &mut plan,
            &real,
            &obs,
            &after_text,
            &msg,
            &attrs,
            &opts,
        )
        .await?;
        let msg = match (msg.is_empty(), plan.is_changed()) {
            (true, true) => "ownership, perms or SE linux context changed".to_string(),
            (false, true) if plan.changes.len() > 1 => {
                format!("{msg} and ownership, perms or SE linux context changed")
            }
            _ => msg,
        };
        plan.result.insert("msg".into(), Value::String(msg));
        Ok(plan)
    }
}

/// The path a link leads to (the path itself when it is not a link), in one exec only when
/// the path is a link.
async fn realpath(ctx: &HostCtx, path: &str) -> anyhow::Result<String> {
    match ctx.transport.stat(path, ctx.become_.as_ref()).await? {
        Some(st) if st.kind == FileKind::Symlink => {
            let out = ctx
                .run(&format!("readlink -f -- {}", super::args::sh_quote(path)))
                .await?;
            let real = out.stdout.trim();
            Ok(if out.rc == 0 && !real.is_empty() {
                real.to_string()
            } else {
                path.to_string()
            })
        }
        _ => Ok(path.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        content: &str,
        re: &str,
        rep: &str,
        after: Option<&str>,
        before: Option<&str>,
    ) -> Outcome {
        edit(content, &Params::new(re, rep, after, before).unwrap())
    }

    #[test]
    fn replaces_every_match_multiline() {
        let out = run("a=1\nb=2\na=3\n", r"^a=(\d)$", r"a=\1\1", None, None);
        assert_eq!(out, Outcome::Replaced("a=11\nb=2\na=33\n".into(), 2));
        let out = run("x\n", r"^(?P<w>x)$", r"\g<w>y", None, None);
        assert_eq!(out, Outcome::Replaced("xy\n".into(), 1));
    }

    #[test]
    fn same_text_or_no_match_is_unchanged() {
        assert_eq!(run("a\n", "b", "c", None, None), Outcome::Unchanged);
        assert_eq!(run("a\n", "a", "a", None, None), Outcome::Unchanged);
    }

    #[test]
    fn after_and_before_limit_the_section() {
        let text = "x=1\n[s]\nx=1\n[t]\nx=1\n";
        let out = run(text, "^x=1$", "x=2", Some(r"\[s\]"), Some(r"\[t\]"));
        assert_eq!(
            out,
            Outcome::Replaced("x=1\n[s]\nx=2\n[t]\nx=1\n".into(), 1)
        );
        let out = run(text, "^x=1$", "x=2", Some(r"\[t\]"), None);
        assert_eq!(
            out,
            Outcome::Replaced("x=1\n[s]\nx=1\n[t]\nx=2\n".into(), 1)
        );
        let out = run(text, "^x=1$", "x=2", None, Some(r"\[s\]"));
        assert_eq!(
            out,
            Outcome::Replaced("x=2\n[s]\nx=1\n[t]\nx=1\n".into(), 1)
        );
        match run(text, "x", "y", Some("nope"), None) {
            Outcome::NoSection(m) => assert!(m.contains("nope(?P<subsection>.*)"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn blank_lines_and_empty_matches() {
        // A common role task: drop blank lines.
        assert_eq!(
            run("a\n\n  \nb\n", r"^\s*\n", "", None, None),
            Outcome::Replaced("a\nb\n".into(), 1)
        );
        // Python (3.7+) also replaces the empty match right after "x": "-a-b--d-".
        assert_eq!(
            run("abxd", "x*", "-", None, None),
            Outcome::Replaced("-a-b-d-".into(), 4)
        );
    }

    #[test]
    fn python_only_syntax_is_refused_naming_the_argument() {
        let e = Params::new("a(?=b)", "", None, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("argument regexp") && e.contains("look-around"),
            "{e}"
        );
        // \Z is Python's end of text.
        assert_eq!(
            run("a\na", r"a\Z", "b", None, None),
            Outcome::Replaced("a\nb".into(), 1)
        );
    }
}
