//! `locale_gen` (community.general): locales generated (`present`) or not (`absent`), the
//! glibc way Debian uses: the locale's line in `/etc/locale.gen` uncommented (or commented)
//! and `locale-gen` run. As Ansible decides, a locale is present when `locale -a` lists it
//! (`.utf8` and `.UTF-8` are the same), and a name must be listed in
//! `/usr/share/i18n/SUPPORTED` (or already be generated). Ubuntu's legacy
//! `/var/lib/locales/supported.d` mechanism is not native. Observed in one round trip.

use async_trait::async_trait;
use serde_json::Value;

use super::args::{choice, list};
use super::fileops::exec;
use super::{ArgDef, ArgSpec, Change, HostCtx, Module, Op, Plan, TextDiff};
use crate::transport::FileAttrs;
use crate::Vars;

pub struct LocaleGen;

const ARGS: &[ArgDef] = &[ArgDef::req("name"), ArgDef::opt("state")];

/// Ansible's LOCALE_NORMALIZATION: `locale -a` spells encodings in lower case.
const NORMALIZATION: &[(&str, &str)] = &[
    (".utf8", ".UTF-8"),
    (".eucjp", ".EUC-JP"),
    (".iso885915", ".ISO-8859-15"),
    (".cp1251", ".CP1251"),
    (".koi8r", ".KOI8-R"),
    (".armscii8", ".ARMSCII-8"),
    (".euckr", ".EUC-KR"),
    (".gbk", ".GBK"),
    (".gb18030", ".GB18030"),
    (".euctw", ".EUC-TW"),
];

pub fn fix_case(name: &str) -> String {
    NORMALIZATION
        .iter()
        .fold(name.to_string(), |n, (s, r)| n.replace(s, r))
}

/// The names of `locales` that `locale -a` does not list.
pub fn not_present<'a>(locales: &'a [String], locale_a: &str) -> Vec<&'a String> {
    locales
        .iter()
        .filter(|l| !locale_a.lines().any(|a| fix_case(a) == fix_case(l)))
        .collect()
}

/// A locale named in SUPPORTED (`de_CH.UTF-8 UTF-8`, possibly commented).
pub fn supported(lines: &str, name: &str) -> bool {
    lines.lines().any(|l| {
        let t = l.trim_start().trim_start_matches('#').trim_start();
        let mut parts = t.split(' ');
        let (Some(loc), Some(cs)) = (parts.next(), parts.next()) else {
            return false;
        };
        loc == name && !cs.trim().is_empty() && parts.all(|p| p.trim().is_empty())
    })
}

/// Ansible's `set_locale_glibc`: `#? *NAME CHARSET` lines become `NAME CHARSET` (enable)
/// or `# NAME CHARSET`.
pub fn set_locale_gen(content: &str, names: &[String], enable: bool) -> String {
    let mut out = String::new();
    for line in content.split_inclusive('\n') {
        let mut line = line.to_string();
        for name in names {
            let body = line.strip_prefix('#').unwrap_or(&line).trim_start();
            if let Some(rest) = body
                .strip_prefix(name.as_str())
                .and_then(|r| r.strip_prefix(' '))
            {
                let charset = rest.trim_end_matches('\n');
                if !charset.is_empty() {
                    let nl = if line.ends_with('\n') { "\n" } else { "" };
                    line = if enable {
                        format!("{name} {charset}{nl}")
                    } else {
                        format!("# {name} {charset}{nl}")
                    };
                }
            }
        }
        out.push_str(&line);
    }
    out
}

const SCRIPT: &str = "LANG=C; export LANG\n\
    [ -e /etc/locale.gen ] || { [ -e /var/lib/locales/supported.d ] && echo @@LEGACY || echo @@MISSING; exit 0; }\n\
    echo @@LOCALES; locale -a 2>/dev/null\n\
    echo @@SUPPORTED; cat /usr/share/i18n/SUPPORTED 2>/dev/null\n\
    echo @@GEN; cat /etc/locale.gen\n";

#[async_trait]
impl Module for LocaleGen {
    fn name(&self) -> &'static str {
        "locale_gen"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let names = list(args, &["name"])?;
        anyhow::ensure!(!names.is_empty(), "missing required argument: name");
        let present = choice(args, &["state"], &["present", "absent"], "present")? == "present";
        let out = ctx.run(SCRIPT).await?;
        let mut plan = Plan::default();
        let text = out.stdout.as_str();
        if text.starts_with("@@MISSING") {
            plan.failed = Some(
                "/var/lib/locales/supported.d and /etc/locale.gen are missing. Is the package \"locales\" installed?"
                    .into(),
            );
            return Ok(plan);
        }
        if text.starts_with("@@LEGACY") {
            plan.failed = Some(
                "locale_gen: Ubuntu's legacy /var/lib/locales/supported.d mechanism is not native"
                    .into(),
            );
            return Ok(plan);
        }
        let section = |start: &str, end: Option<&str>| -> String {
            let after = text.split_once(start).map(|(_, a)| a).unwrap_or("");
            match end {
                Some(e) => after.split_once(e).map(|(a, _)| a).unwrap_or(after),
                None => after,
            }
            .to_string()
        };
        let locale_a = section("@@LOCALES\n", Some("@@SUPPORTED\n"));
        let supported_text = section("@@SUPPORTED\n", Some("@@GEN\n"));
        let gen = section("@@GEN\n", None);
        let unknown: Vec<String> = names
            .iter()
            .filter(|n| !supported(&supported_text, n))
            .cloned()
            .collect();
        let unknown = not_present(&unknown, &locale_a);
        if !unknown.is_empty() {
            let list: Vec<&str> = unknown.iter().map(|s| s.as_str()).collect();
            plan.failed = Some(format!(
                "The following locales you have entered are not available on your system: {}",
                list.join(", ")
            ));
            return Ok(plan);
        }
        let is_present = not_present(&names, &locale_a).is_empty();
        if is_present != present {
            let after = set_locale_gen(&gen, &names, present);
            plan.changes.push(Change {
                summary: format!(
                    "{} locale {}",
                    if present { "generate" } else { "remove" },
                    names.join(", ")
                ),
                diff: Some(TextDiff {
                    before_header: "/etc/locale.gen".into(),
                    after_header: "/etc/locale.gen".into(),
                    before: gen.clone(),
                    after: after.clone(),
                }),
            });
            if after != gen {
                plan.ops.push(Op::Write {
                    path: "/etc/locale.gen".into(),
                    content: after.into_bytes(),
                    attrs: FileAttrs::default(),
                    backup: false,
                    validate: None,
                });
            }
            plan.ops.push(exec("locale-gen".into()));
        }
        plan.result = super::args::vars([
            ("name", Value::from(names)),
            ("mechanism", Value::from("glibc")),
        ]);
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locale_gen_lines_toggle_like_ansible() {
        let gen = "# en_US.UTF-8 UTF-8\n#de_CH.UTF-8 UTF-8\n# de_CH ISO-8859-1\n";
        let names = vec!["de_CH.UTF-8".to_string()];
        let on = set_locale_gen(gen, &names, true);
        assert_eq!(
            on,
            "# en_US.UTF-8 UTF-8\nde_CH.UTF-8 UTF-8\n# de_CH ISO-8859-1\n"
        );
        assert_eq!(
            set_locale_gen(&on, &names, false),
            "# en_US.UTF-8 UTF-8\n# de_CH.UTF-8 UTF-8\n# de_CH ISO-8859-1\n"
        );
        assert!(supported(
            "de_CH.UTF-8 UTF-8\nen_US ISO-8859-1\n",
            "de_CH.UTF-8"
        ));
        assert!(!supported("de_CH.UTF-8 UTF-8\n", "de_CH"));
        let names = vec!["de_CH.UTF-8".to_string(), "C.UTF-8".to_string()];
        assert!(not_present(&names, "C\nC.utf8\nde_CH.utf8\nPOSIX\n").is_empty());
    }
}
