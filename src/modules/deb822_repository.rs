//! `deb822_repository`: an APT source in deb822 format,
//! `/etc/apt/sources.list.d/<slug>.sources`, byte for byte what Ansible writes: the given
//! fields in alphabetical order of their argument names, named as Ansible names them
//! (`name` -> `X-Repolib-Name`, `uris` -> `URIs`, `signed_by` -> `Signed-By`), booleans as
//! yes/no, lists space-separated, multi-line values (an inline key) indented with empty
//! lines as `.`.
//!
//! `signed_by`: a file on the host is referenced as is; a URL is downloaded on the host
//! (while observing, to stdout only) into `/etc/apt/keyrings/<slug>.asc` (armored) or
//! `.gpg`, mode 0644; anything else (an inline key) goes into the file. `state: absent`
//! removes the sources file and the slug's keyrings. Observing is one round trip, two with
//! a key URL. Beyond Ansible, `--diff` shows the sources file's text.

use async_trait::async_trait;
use base64::Engine;
use serde_json::Value;

use super::args::{bool_opt, choice, get, int_opt, list, sh_quote, str_opt, str_req};
use super::fileops::{exec, mkdir};
use super::{mode, ArgDef, ArgSpec, Change, HostCtx, Module, Op, Plan, TextDiff};
use crate::transport::FileAttrs;
use crate::Vars;

pub struct Deb822Repository;

/// The deb822 fields, in the (alphabetical) order Ansible writes them.
const FIELDS: &[(&str, Kind)] = &[
    ("allow_downgrade_to_insecure", Kind::Bool),
    ("allow_insecure", Kind::Bool),
    ("allow_weak", Kind::Bool),
    ("architectures", Kind::List),
    ("by_hash", Kind::Bool),
    ("check_date", Kind::Bool),
    ("check_valid_until", Kind::Bool),
    ("components", Kind::List),
    ("date_max_future", Kind::Int),
    ("enabled", Kind::Bool),
    ("inrelease_path", Kind::Str),
    ("languages", Kind::List),
    ("name", Kind::Str),
    ("pdiffs", Kind::Bool),
    ("signed_by", Kind::Str),
    ("suites", Kind::List),
    ("targets", Kind::List),
    ("trusted", Kind::Bool),
    ("types", Kind::List),
    ("uris", Kind::List),
];

#[derive(Debug, Clone, Copy)]
enum Kind {
    Bool,
    List,
    Int,
    Str,
}

const ARGS: &[ArgDef] = &[
    ArgDef::opt("allow_downgrade_to_insecure"),
    ArgDef::opt("allow_insecure"),
    ArgDef::opt("allow_weak"),
    ArgDef::opt("architectures"),
    ArgDef::opt("by_hash"),
    ArgDef::opt("check_date"),
    ArgDef::opt("check_valid_until"),
    ArgDef::opt("components"),
    ArgDef::opt("date_max_future"),
    ArgDef::opt("enabled"),
    ArgDef::opt("inrelease_path"),
    ArgDef::opt("languages"),
    ArgDef::req("name"),
    ArgDef::opt("pdiffs"),
    ArgDef::opt("signed_by"),
    ArgDef::opt("suites"),
    ArgDef::opt("targets"),
    ArgDef::opt("trusted"),
    ArgDef::opt("types"),
    ArgDef::opt("uris"),
    ArgDef::opt("mode"),
    ArgDef::opt("state"),
];

const KEYRINGS_DIR: &str = "/etc/apt/keyrings";

/// Ansible's slug: lower case, runs of `_`/whitespace -> `-`, then only `[a-z0-9-]` kept.
pub fn slug(name: &str) -> String {
    let mut dashed = String::new();
    let mut in_run = false;
    for c in name.to_lowercase().chars() {
        if c == '_' || c.is_whitespace() {
            if !in_run {
                dashed.push('-');
            }
            in_run = true;
        } else {
            dashed.push(c);
            in_run = false;
        }
    }
    dashed
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
        .collect()
}

/// Python's `str.title()` of `allow-weak` etc., plus Ansible's two special names.
pub fn field_name(arg: &str) -> String {
    match arg {
        "name" => return "X-Repolib-Name".into(),
        "uris" => return "URIs".into(),
        _ => {}
    }
    let mut out = String::new();
    let mut prev_alpha = false;
    for c in arg.replace('_', "-").chars() {
        if c.is_alphabetic() {
            out.extend(if prev_alpha {
                c.to_lowercase().collect::<Vec<_>>()
            } else {
                c.to_uppercase().collect::<Vec<_>>()
            });
            prev_alpha = true;
        } else {
            out.push(c);
            prev_alpha = false;
        }
    }
    out
}

/// A multi-line value: a newline, then each line stripped and indented, empty ones `.`.
pub fn multiline(v: &str) -> String {
    let lines: Vec<String> = v
        .trim()
        .lines()
        .map(|l| {
            let t = l.trim();
            format!("    {}", if t.is_empty() { "." } else { t })
        })
        .collect();
    format!("\n{}", lines.join("\n"))
}

/// Renders the fields as python-debian's `Deb822.dump` does.
pub fn render(fields: &[(String, String)]) -> String {
    let mut out = String::new();
    for (k, v) in fields {
        let v = if v.contains('\n') {
            multiline(v)
        } else {
            v.clone()
        };
        if v.is_empty() || v.starts_with('\n') {
            out.push_str(&format!("{k}:{v}\n"));
        } else {
            out.push_str(&format!("{k}: {v}\n"));
        }
    }
    out
}

/// What the host has, read in one round trip.
#[derive(Debug, Default)]
struct Observed {
    sources: Option<(u32, Vec<u8>)>,
    /// Existing keyrings of this slug: (path, mode, content).
    keyrings: Vec<(String, u32, Vec<u8>)>,
    keyrings_dir: Option<u32>,
    signed_by_is_file: bool,
}

fn probe(sources: &str, slug: &str, signed_by: Option<&str>) -> String {
    let mut s = String::from("show() { if [ -f \"$1\" ]; then echo \"@@F $(stat -c %a \"$1\") $1 $(base64 -w0 < \"$1\")\"; fi; }\n");
    s.push_str(&format!("show {}\n", sh_quote(sources)));
    for ext in ["asc", "gpg"] {
        s.push_str(&format!(
            "show {}\n",
            sh_quote(&format!("{KEYRINGS_DIR}/{slug}.{ext}"))
        ));
    }
    s.push_str(&format!(
        "[ -d {KEYRINGS_DIR} ] && echo \"@@D $(stat -c %a {KEYRINGS_DIR})\"\n"
    ));
    if let Some(p) = signed_by {
        s.push_str(&format!(
            "[ -f {} ] && echo @@SIGNED_BY_FILE\n",
            sh_quote(p)
        ));
    }
    s.push_str("exit 0\n");
    s
}

fn parse(out: &str, sources: &str) -> anyhow::Result<Observed> {
    let mut o = Observed::default();
    let b64 = base64::engine::general_purpose::STANDARD;
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("@@F ") {
            let mut parts = rest.splitn(3, ' ');
            let (Some(m), Some(path)) = (parts.next(), parts.next()) else {
                continue;
            };
            let mode = u32::from_str_radix(m, 8).unwrap_or(0);
            let content = b64.decode(parts.next().unwrap_or("").trim())?;
            if path == sources {
                o.sources = Some((mode, content));
            } else {
                o.keyrings.push((path.to_string(), mode, content));
            }
        } else if let Some(m) = line.strip_prefix("@@D ") {
            o.keyrings_dir = u32::from_str_radix(m.trim(), 8).ok();
        } else if line == "@@SIGNED_BY_FILE" {
            o.signed_by_is_file = true;
        }
    }
    Ok(o)
}

/// A URL as Python's urlparse sees one: a scheme before `:`.
fn has_scheme(v: &str) -> bool {
    v.split_once(':').is_some_and(|(s, _)| {
        !s.is_empty()
            && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    }) && !v.contains('\n')
}

#[async_trait]
impl Module for Deb822Repository {
    fn name(&self) -> &'static str {
        "deb822_repository"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let name = str_req(args, &["name"])?;
        let present = choice(args, &["state"], &["present", "absent"], "present")? == "present";
        let file_mode = match get(args, &["mode"]) {
            Some(v) => mode::parse(v)?.resolve(None, false)?.unwrap_or(0o644),
            None => 0o644,
        };
        let slug = slug(&name);
        let dest = format!("/etc/apt/sources.list.d/{slug}.sources");
        let signed_by = str_opt(args, &["signed_by"])?;
        let out = ctx.run(&probe(&dest, &slug, signed_by.as_deref())).await?;
        let o = parse(&out.stdout, &dest)?;
        let mut plan = Plan::default();
        let mut key_filename: Option<String> = None;
        if !present {
            if let Some((_, content)) = &o.sources {
                plan.changes.push(Change {
                    summary: format!("remove {dest}"),
                    diff: Some(TextDiff {
                        before_header: dest.clone(),
                        after_header: "/dev/null".into(),
                        before: String::from_utf8_lossy(content).into_owned(),
                        after: String::new(),
                    }),
                });
                plan.ops.push(exec(format!("rm -f {}", sh_quote(&dest))));
            }
            for (path, _, _) in &o.keyrings {
                plan.changes.push(Change {
                    summary: format!("remove {path}"),
                    diff: None,
                });
                plan.ops.push(exec(format!("rm -f {}", sh_quote(path))));
            }
            plan.result = super::args::vars([
                ("repo", Value::Null),
                ("dest", Value::from(dest)),
                (
                    "key_filename",
                    Value::from(format!("{KEYRINGS_DIR}/{slug}.gpg")),
                ),
            ]);
            return Ok(plan);
        }
        let mut fields: Vec<(String, String)> = Vec::new();
        for (arg, kind) in FIELDS {
            let value = match kind {
                Kind::Bool => {
                    bool_opt(args, &[arg])?.map(|b| if b { "yes" } else { "no" }.to_string())
                }
                Kind::Int => int_opt(args, &[arg])?.map(|n| n.to_string()),
                Kind::List => {
                    let items = if *arg == "types" && get(args, &[arg]).is_none() {
                        vec!["deb".to_string()]
                    } else {
                        list(args, &[arg])?
                    };
                    if *arg == "types" {
                        if let Some(bad) = items.iter().find(|t| *t != "deb" && *t != "deb-src") {
                            anyhow::bail!("argument types: {bad:?} is not one of deb, deb-src");
                        }
                    }
                    (get(args, &[arg]).is_some() || *arg == "types").then(|| items.join(" "))
                }
                Kind::Str if *arg == "signed_by" => match &signed_by {
                    None => None,
                    Some(v) if o.signed_by_is_file => {
                        key_filename = Some(v.clone());
                        Some(v.clone())
                    }
                    Some(url) if has_scheme(url) => {
                        let fetched = ctx
                            .run(&format!(
                                "{} | base64 -w0",
                                super::apt_key::download_cmd(url, false)
                            ))
                            .await?;
                        let key = base64::engine::general_purpose::STANDARD
                            .decode(fetched.stdout.trim())
                            .unwrap_or_default();
                        if key.is_empty() {
                            plan.failed = Some(format!(
                                "Could not fetch signed_by key: {url}: {}",
                                fetched.stderr.trim()
                            ));
                            return Ok(plan);
                        }
                        let armored = String::from_utf8_lossy(&key)
                            .contains("-----BEGIN PGP PUBLIC KEY BLOCK-----");
                        let path = format!(
                            "{KEYRINGS_DIR}/{slug}.{}",
                            if armored { "asc" } else { "gpg" }
                        );
                        plan_keyring(&mut plan, &o, &path, key);
                        key_filename = Some(path.clone());
                        Some(path)
                    }
                    Some(inline) => Some(inline.clone()),
                },
                Kind::Str => str_opt(args, &[arg])?,
            };
            if let Some(v) = value {
                fields.push((field_name(arg), v));
            }
        }
        let repo = render(&fields);
        let (before, old_mode) = match &o.sources {
            Some((m, c)) => (Some(String::from_utf8_lossy(c).into_owned()), Some(*m)),
            None => (None, None),
        };
        if before.as_deref() != Some(repo.as_str()) {
            plan.changes.push(Change {
                summary: format!("write {dest}"),
                diff: Some(TextDiff {
                    before_header: if before.is_some() {
                        dest.clone()
                    } else {
                        "/dev/null".into()
                    },
                    after_header: dest.clone(),
                    before: before.clone().unwrap_or_default(),
                    after: repo.clone(),
                }),
            });
            plan.ops.push(Op::Write {
                path: dest.clone(),
                content: repo.clone().into_bytes(),
                attrs: FileAttrs {
                    mode: Some(file_mode),
                    ..Default::default()
                },
                backup: false,
                validate: None,
            });
        } else if old_mode != Some(file_mode) {
            plan.changes.push(Change {
                summary: format!(
                    "mode of {dest} {} -> {}",
                    mode::fmt(old_mode.unwrap_or(0)),
                    mode::fmt(file_mode)
                ),
                diff: None,
            });
            plan.ops
                .push(exec(format!("chmod {file_mode:o} {}", sh_quote(&dest))));
        }
        plan.result = super::args::vars([
            ("repo", Value::from(repo)),
            ("dest", Value::from(dest)),
            (
                "key_filename",
                key_filename.map(Value::from).unwrap_or(Value::Null),
            ),
        ]);
        Ok(plan)
    }
}

/// Plans the downloaded key into `path` (mode 0644), creating the keyrings folder (0755).
fn plan_keyring(plan: &mut Plan, o: &Observed, path: &str, key: Vec<u8>) {
    let current = o.keyrings.iter().find(|(p, _, _)| p == path);
    if o.keyrings_dir.is_none() {
        plan.changes.push(Change {
            summary: format!("create {KEYRINGS_DIR}"),
            diff: None,
        });
        plan.ops.push(mkdir(KEYRINGS_DIR));
        plan.ops.push(exec(format!("chmod 0755 {KEYRINGS_DIR}")));
    } else if o.keyrings_dir != Some(0o755) {
        plan.changes.push(Change {
            summary: format!("mode of {KEYRINGS_DIR} -> 0755"),
            diff: None,
        });
        plan.ops.push(exec(format!("chmod 0755 {KEYRINGS_DIR}")));
    }
    match current {
        Some((_, m, c)) if *c == key => {
            if *m != 0o644 {
                plan.changes.push(Change {
                    summary: format!("mode of {path} -> 0644"),
                    diff: None,
                });
                plan.ops
                    .push(exec(format!("chmod 0644 {}", sh_quote(path))));
            }
        }
        _ => {
            plan.changes.push(Change {
                summary: format!("write key {path}"),
                diff: None,
            });
            plan.ops.push(Op::Write {
                path: path.to_string(),
                content: key,
                attrs: FileAttrs {
                    mode: Some(0o644),
                    ..Default::default()
                },
                backup: false,
                validate: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_field_names_as_ansible() {
        assert_eq!(slug("Docker CE_stable"), "docker-ce-stable");
        assert_eq!(slug("My Repo (v2)"), "my-repo-v2");
        assert_eq!(
            field_name("allow_downgrade_to_insecure"),
            "Allow-Downgrade-To-Insecure"
        );
        assert_eq!(field_name("signed_by"), "Signed-By");
        assert_eq!(field_name("inrelease_path"), "Inrelease-Path");
        assert_eq!(field_name("uris"), "URIs");
        assert_eq!(field_name("name"), "X-Repolib-Name");
    }

    #[test]
    fn renders_like_deb822_dump() {
        let f = vec![
            ("Components".to_string(), "main contrib".to_string()),
            (
                "Signed-By".to_string(),
                "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nabc\n-----END PGP PUBLIC KEY BLOCK-----\n"
                    .to_string(),
            ),
            ("Types".to_string(), "deb".to_string()),
        ];
        assert_eq!(
            render(&f),
            "Components: main contrib\nSigned-By:\n    -----BEGIN PGP PUBLIC KEY BLOCK-----\n    .\n    abc\n    -----END PGP PUBLIC KEY BLOCK-----\nTypes: deb\n"
        );
        assert!(has_scheme("https://example.com/k.asc"));
        assert!(!has_scheme("/etc/apt/keyrings/k.gpg"));
    }
}
