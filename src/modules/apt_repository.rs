//! `apt_repository`: a one-line APT source (`deb [opts] URI suite comps`) present in or
//! absent from `/etc/apt/sources.list` and `/etc/apt/sources.list.d/*.list`.
//!
//! Ansible's rules, which decide what "same end state" means: a source line is compared
//! after normalising whitespace; an existing matching line anywhere is enabled (uncommented)
//! instead of adding one; a new line goes to `sources.list.d/<filename>.list`, the name
//! derived from the URI's host and path (`deb http://dl.example.com/repo stable main` ->
//! `dl_example_com_repo.list`) unless `filename` is given; `state: absent` removes every
//! enabled matching line and deletes a file left empty; a changed file is written back with
//! its lines normalised (`#comment` -> `# comment`); a new file gets `mode` (default 0644);
//! `update_cache` (default yes) runs `apt-get update` after a change. The diff, as Ansible's,
//! shows files added or removed. PPAs (Ubuntu) are refused: they need Launchpad.
//! Observing is one round trip (every sources file with its mode).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::Value;

use super::args::{bool_arg, choice, get, sh_quote, str_opt, str_req};
use super::fileops::exec;
use super::{mode, ArgDef, ArgSpec, Change, HostCtx, Module, Op, Plan, TextDiff};
use crate::transport::FileAttrs;
use crate::Vars;

pub struct AptRepository;

const ARGS: &[ArgDef] = &[
    ArgDef::req("repo"),
    ArgDef::opt("state"),
    ArgDef::opt("mode"),
    ArgDef::alias("update_cache", &["update-cache"]),
    ArgDef::opt("update_cache_retries"),
    ArgDef::opt("update_cache_retry_max_delay"),
    ArgDef::opt("filename"),
    ArgDef::opt("install_python_apt"),
    ArgDef::opt("validate_certs"),
    ArgDef::opt("codename"),
];

const SOURCES_DIR: &str = "/etc/apt/sources.list.d";
const VALID_TYPES: &[&str] = &["deb", "deb-src"];

/// One line of a sources file, as Ansible's `_parse` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub valid: bool,
    pub enabled: bool,
    pub source: String,
    pub comment: String,
}

impl Line {
    pub fn parse(raw: &str) -> Line {
        let mut line = raw.trim();
        let mut enabled = true;
        if let Some(rest) = line.strip_prefix('#') {
            enabled = false;
            line = rest;
        }
        let mut comment = String::new();
        if let Some(i) = line.find('#').filter(|i| *i > 0) {
            comment = line[i + 1..].trim().to_string();
            line = &line[..i];
        }
        let mut source = line.trim().to_string();
        let mut valid = false;
        let chunks: Vec<&str> = source.split_whitespace().collect();
        if chunks.first().is_some_and(|c| VALID_TYPES.contains(c)) {
            valid = true;
            source = chunks.join(" ");
        }
        Line {
            valid,
            enabled,
            source,
            comment,
        }
    }

    /// The line as Ansible writes it back.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if !self.enabled {
            s.push_str("# ");
        }
        s.push_str(&self.source);
        if !self.comment.is_empty() {
            s.push_str(" # ");
            s.push_str(&self.comment);
        }
        s.push('\n');
        s
    }
}

/// All sources files: path -> lines (sorted by path, sources.list first by name order).
pub type Sources = BTreeMap<String, Vec<Line>>;

/// A file's text as Ansible dumps it (None: the file would not exist).
pub fn dump(lines: &[Line]) -> Option<String> {
    (!lines.is_empty()).then(|| lines.iter().map(Line::render).collect())
}

/// Ansible's `_suggest_filename`: options, scheme, type words and credentials dropped, the
/// rest of the URI's non-alphanumerics turned into `_`.
pub fn suggest_filename(source: &str, filename: Option<&str>) -> String {
    if let Some(f) = filename {
        return format!("{f}.list");
    }
    let mut line = String::new();
    let mut depth = 0;
    for ch in source.chars() {
        match ch {
            '[' => depth += 1,
            ']' if depth > 0 => depth -= 1,
            _ if depth == 0 => line.push(ch),
            _ => {}
        }
    }
    let first = line
        .split_whitespace()
        .filter(|p| !VALID_TYPES.contains(p))
        .map(|p| match p.find("://") {
            Some(i) if p[..i].chars().all(|c| c.is_alphanumeric() || c == '_') => &p[i + 3..],
            _ => p,
        })
        .next()
        .unwrap_or("");
    let first = first.split_once('@').map(|(_, h)| h).unwrap_or(first);
    let cleaned: String = first
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
        .collect();
    format!(
        "{}.list",
        cleaned.split_whitespace().collect::<Vec<_>>().join("_")
    )
}

/// The file a new source goes to: the name joined to sources.list.d unless it has a `/`.
fn expand_path(file: &str) -> String {
    if file.contains('/') {
        file.to_string()
    } else {
        format!("{SOURCES_DIR}/{file}")
    }
}

/// Adds `source` (enables existing copies, else appends to `file`). Returns the files that
/// received a new line (they get `mode`).
pub fn add(sources: &mut Sources, source: &str, file: &str) -> Vec<String> {
    let mut found = false;
    for lines in sources.values_mut() {
        for l in lines.iter_mut().filter(|l| l.valid && l.source == source) {
            l.enabled = true;
            found = true;
        }
    }
    if found {
        return Vec::new();
    }
    let path = expand_path(file);
    sources.entry(path.clone()).or_default().push(Line {
        valid: true,
        enabled: true,
        source: source.to_string(),
        comment: String::new(),
    });
    vec![path]
}

/// Removes every enabled copy of `source`.
pub fn remove(sources: &mut Sources, source: &str) {
    for lines in sources.values_mut() {
        lines.retain(|l| !(l.valid && l.enabled && l.source == source));
    }
}

/// The probe: each sources file as "@@FILE MODE PATH" then its lines.
const SCRIPT: &str = r#"for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  if [ -f "$f" ]; then echo "@@FILE $(stat -L -c %a "$f") $f"; cat "$f"; echo; fi
done
exit 0
"#;

/// Parses the probe: path -> (mode, lines).
pub fn parse_files(out: &str) -> BTreeMap<String, (u32, Vec<Line>)> {
    let mut files = BTreeMap::new();
    let mut cur: Option<String> = None;
    for raw in out.lines() {
        if let Some(rest) = raw.strip_prefix("@@FILE ") {
            if let Some((m, path)) = rest.split_once(' ') {
                let mode = u32::from_str_radix(m, 8).unwrap_or(0o644);
                files.insert(path.to_string(), (mode, Vec::new()));
                cur = Some(path.to_string());
            }
            continue;
        }
        if let Some((_, lines)) = cur.as_ref().and_then(|c| files.get_mut(c)) {
            lines.push(Line::parse(raw));
        }
    }
    // Each file's content was followed by one extra newline (files may lack a final one).
    for (_, lines) in files.values_mut() {
        if lines
            .last()
            .is_some_and(|l| !l.valid && l.source.is_empty() && l.enabled)
        {
            lines.pop();
        }
    }
    files
}

#[async_trait]
impl Module for AptRepository {
    fn name(&self) -> &'static str {
        "apt_repository"
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
        let state = choice(args, &["state"], &["present", "absent"], "present")?;
        let update_cache = bool_arg(args, &["update_cache"], true)?;
        let filename = str_opt(args, &["filename"])?;
        let new_mode = match get(args, &["mode"]) {
            Some(v) => mode::parse(v)?.resolve(None, false)?.unwrap_or(0o644),
            None => 0o644,
        };
        let mut plan = Plan::default();
        if repo.trim().is_empty() {
            plan.failed = Some("Please set argument 'repo' to a non-empty value".into());
            return Ok(plan);
        }
        if repo.trim_start().starts_with("ppa:") {
            plan.failed = Some(format!(
                "{repo}: PPAs are Ubuntu's (Launchpad); write the deb line instead"
            ));
            return Ok(plan);
        }
        let line = Line::parse(&repo);
        if !line.valid || !line.enabled {
            plan.failed = Some(format!(
                "Invalid repository string: {}",
                repo.trim().trim_start_matches('#')
            ));
            return Ok(plan);
        }
        let out = ctx.run(SCRIPT).await?;
        let observed = parse_files(&out.stdout);
        let mut sources: Sources = observed
            .iter()
            .map(|(p, (_, lines))| (p.clone(), lines.clone()))
            .collect();
        let before: BTreeMap<String, String> = sources
            .iter()
            .filter_map(|(p, l)| dump(l).map(|d| (p.clone(), d)))
            .collect();
        let mut new_files = Vec::new();
        if state == "present" {
            let file = suggest_filename(&line.source, filename.as_deref());
            new_files = add(&mut sources, &line.source, &file);
        } else {
            remove(&mut sources, &line.source);
        }
        let after: BTreeMap<String, String> = sources
            .iter()
            .filter_map(|(p, l)| dump(l).map(|d| (p.clone(), d)))
            .collect();
        let added: Vec<String> = after
            .keys()
            .filter(|k| !before.contains_key(*k))
            .cloned()
            .collect();
        let removed: Vec<String> = before
            .keys()
            .filter(|k| !after.contains_key(*k))
            .cloned()
            .collect();
        let mut diffs = Vec::new();
        for path in before
            .keys()
            .chain(after.keys().filter(|k| !before.contains_key(*k)))
        {
            let (b, a) = (before.get(path), after.get(path));
            if b == a {
                continue;
            }
            let verb = match (b, a) {
                (None, _) => "create",
                (_, None) => "remove",
                _ => "update",
            };
            let diff = (b.is_none() || a.is_none()).then(|| TextDiff {
                before_header: if b.is_some() {
                    path.clone()
                } else {
                    "/dev/null".into()
                },
                after_header: if a.is_some() {
                    path.clone()
                } else {
                    "/dev/null".into()
                },
                before: b.cloned().unwrap_or_default(),
                after: a.cloned().unwrap_or_default(),
            });
            if let Some(d) = &diff {
                diffs.push(serde_json::json!({
                    "before": d.before, "after": d.after,
                    "before_header": d.before_header, "after_header": d.after_header,
                }));
            }
            plan.changes.push(Change {
                summary: format!("{verb} {path} ({state} {})", line.source),
                diff,
            });
            match a {
                None => plan.ops.push(exec(format!("rm -f {}", sh_quote(path)))),
                Some(text) => {
                    let mode = if new_files.contains(path) {
                        Some(new_mode)
                    } else {
                        observed.get(path).map(|(m, _)| *m)
                    };
                    plan.ops.push(Op::Write {
                        path: path.clone(),
                        content: text.clone().into_bytes(),
                        attrs: FileAttrs {
                            mode,
                            ..Default::default()
                        },
                        backup: false,
                        validate: None,
                    });
                }
            }
        }
        if plan.is_changed() && update_cache {
            plan.ops.push(exec("apt-get update -q".into()));
        }
        plan.result = super::args::vars([
            ("repo", Value::from(repo)),
            ("state", Value::from(state)),
            ("sources_added", Value::from(added)),
            ("sources_removed", Value::from(removed)),
            ("diff", Value::from(diffs)),
        ]);
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_as_ansible_names_them() {
        assert_eq!(
            suggest_filename(
                "deb [arch=amd64 signed-by=/k.gpg] https://download.docker.com/linux/debian bookworm stable",
                None
            ),
            "download_docker_com_linux_debian.list"
        );
        assert_eq!(
            suggest_filename("deb http://user:pw@repo.example.org/apt/ x main", None),
            "repo_example_org_apt.list"
        );
        assert_eq!(
            suggest_filename("deb http://x/ y", Some("docker")),
            "docker.list"
        );
    }

    #[test]
    fn lines_normalise_and_match() {
        let l = Line::parse("  deb   http://a/b   stable  main # mine ");
        assert!(l.valid && l.enabled);
        assert_eq!(l.source, "deb http://a/b stable main");
        assert_eq!(l.render(), "deb http://a/b stable main # mine\n");
        let c = Line::parse("#deb http://a/b stable main");
        assert!(c.valid && !c.enabled);
        assert_eq!(c.render(), "# deb http://a/b stable main\n");
        assert!(!Line::parse("hello").valid);
    }

    #[test]
    fn add_enables_a_commented_copy_and_remove_empties_the_file() {
        let mut s = Sources::new();
        s.insert(
            "/etc/apt/sources.list".into(),
            vec![Line::parse("#deb http://a/b stable main")],
        );
        assert!(add(&mut s, "deb http://a/b stable main", "a_b.list").is_empty());
        assert!(s["/etc/apt/sources.list"][0].enabled);
        let added = add(&mut s, "deb http://c/d x y", "c_d.list");
        assert_eq!(added, vec!["/etc/apt/sources.list.d/c_d.list"]);
        remove(&mut s, "deb http://c/d x y");
        assert_eq!(dump(&s["/etc/apt/sources.list.d/c_d.list"]), None);
    }

    #[test]
    fn probe_output_keeps_blank_lines_but_not_the_separator() {
        let f = parse_files("@@FILE 644 /etc/apt/sources.list\ndeb http://a b c\n\n#x\n\n");
        let (mode, lines) = &f["/etc/apt/sources.list"];
        assert_eq!(*mode, 0o644);
        assert_eq!(lines.len(), 3);
    }
}
