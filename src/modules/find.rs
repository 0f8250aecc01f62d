//! `find`: the files under some folders that match patterns, age, size, mode and content,
//! with Ansible's result (`files` with the stat keys of each, `matched`, `examined`,
//! `skipped_paths`, `msg`). Never changed; runs in check mode.
//!
//! Observing is one exec: GNU `find -printf` lists every entry (with its lstat data) down
//! to one level below the wanted depth, which is what Python's `os.walk` looks at; the
//! listing is put back in `os.walk`'s top-down order (a folder's files, then its folders,
//! then each sub-folder) and filtered here, so `examined` and the order of `files` are
//! Ansible's. `contains` and `get_checksum` cost one more exec, for the candidates only.
//!
//! Differences: with `follow`, `find -L` reports a link's target's data (Ansible lstat()s
//! the link); `use_regex` and `contains` use the regex crate (see `replace`).

use std::collections::HashMap;

use async_trait::async_trait;
use base64::Engine;
use regex::Regex;
use serde_json::{json, Map, Value};

use super::args::{bool_arg, choice, get, int_opt, list, sh_quote, str_opt};
use super::replace::compile_python;
use super::{ArgDef, ArgSpec, HostCtx, Module, Plan};
use crate::Vars;

pub struct Find;

const ARGS: &[ArgDef] = &[
    ArgDef {
        name: "paths",
        aliases: &["name", "path"],
        required: true,
    },
    ArgDef::alias("patterns", &["pattern"]),
    ArgDef::alias("excludes", &["exclude"]),
    ArgDef::opt("contains"),
    ArgDef::opt("read_whole_file"),
    ArgDef::opt("file_type"),
    ArgDef::opt("age"),
    ArgDef::opt("age_stamp"),
    ArgDef::opt("size"),
    ArgDef::opt("recurse"),
    ArgDef::opt("hidden"),
    ArgDef::opt("follow"),
    ArgDef::opt("get_checksum"),
    ArgDef::alias("checksum_algorithm", &["checksum", "checksum_algo"]),
    ArgDef::opt("use_regex"),
    ArgDef::opt("depth"),
    ArgDef::opt("mode"),
    ArgDef::opt("exact_mode"),
    ArgDef::opt("encoding"),
    ArgDef::opt("limit"),
];

/// One entry as `find -printf` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The path relative to the searched folder (`a/b.conf`).
    pub rel: String,
    /// `find`'s type letter of the entry itself (`f`, `d`, `l`, ...).
    pub kind: char,
    /// The type letter after following a link (`d` for a link to a folder).
    pub target_kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub user: String,
    pub group: String,
    pub size: u64,
    pub inode: u64,
    pub dev: u64,
    pub nlink: u64,
    pub atime: f64,
    pub mtime: f64,
    pub ctime: f64,
}

/// The `-printf` format matching [`parse_entries`]: one record per entry, NUL-ended.
const FORMAT: &str = r"%y|%Y|%m|%U|%G|%u|%g|%s|%i|%D|%n|%A@|%T@|%C@|%P\0";

/// Parses `find -printf FORMAT` output.
pub fn parse_entries(out: &str) -> anyhow::Result<Vec<Entry>> {
    out.split('\0')
        .filter(|r| !r.is_empty())
        .map(|r| {
            let f: Vec<&str> = r.splitn(15, '|').collect();
            let bad = || anyhow::anyhow!("unexpected find output: {r:?}");
            if f.len() != 15 {
                return Err(bad());
            }
            let n = |s: &str| s.parse::<u64>().map_err(|_| bad());
            let t = |s: &str| s.parse::<f64>().map_err(|_| bad());
            Ok(Entry {
                kind: f[0].chars().next().ok_or_else(bad)?,
                target_kind: f[1].chars().next().ok_or_else(bad)?,
                mode: u32::from_str_radix(f[2], 8).map_err(|_| bad())?,
                uid: n(f[3])?,
                gid: n(f[4])?,
                user: f[5].to_string(),
                group: f[6].to_string(),
                size: n(f[7])?,
                inode: n(f[8])?,
                dev: n(f[9])?,
                nlink: n(f[10])?,
                atime: t(f[11])?,
                mtime: t(f[12])?,
                ctime: t(f[13])?,
                rel: f[14].to_string(),
            })
        })
        .collect()
}

/// The entries in `os.walk(topdown=True)` order, one group per folder walked: each
/// folder's non-folders, then its folders (links to folders count as folders), then the
/// walk of each sub-folder listed.
pub fn walk_order(entries: Vec<Entry>) -> Vec<Vec<Entry>> {
    let mut children: HashMap<String, Vec<Entry>> = HashMap::new();
    for e in entries {
        let parent = match e.rel.rsplit_once('/') {
            Some((p, _)) => p.to_string(),
            None => String::new(),
        };
        children.entry(parent).or_default().push(e);
    }
    let mut out = Vec::new();
    let mut stack = vec![String::new()];
    while let Some(dir) = stack.pop() {
        let Some(list) = children.remove(&dir) else {
            continue;
        };
        let (dirs, files): (Vec<Entry>, Vec<Entry>) =
            list.into_iter().partition(|e| e.target_kind == 'd');
        let subdirs: Vec<String> = dirs.iter().map(|d| d.rel.clone()).collect();
        let mut group = files;
        group.extend(dirs);
        out.push(group);
        stack.extend(subdirs.into_iter().rev());
    }
    out
}

/// Ansible's `age` (`-3d`, `1w`, `30`) in seconds.
pub fn parse_age(s: &str) -> anyhow::Result<i64> {
    parse_unit(
        s,
        &[
            ('s', 1),
            ('m', 60),
            ('h', 3600),
            ('d', 86400),
            ('w', 604800),
        ],
    )
    .ok_or_else(|| anyhow::anyhow!("argument age: failed to process age {s:?}"))
}

/// Ansible's `size` (`10k`, `-1m`, `200`) in bytes.
pub fn parse_size(s: &str) -> anyhow::Result<i64> {
    let k = 1024i64;
    parse_unit(
        s,
        &[
            ('b', 1),
            ('k', k),
            ('m', k * k),
            ('g', k * k * k),
            ('t', k * k * k * k),
        ],
    )
    .ok_or_else(|| anyhow::anyhow!("argument size: failed to process size {s:?}"))
}

fn parse_unit(s: &str, units: &[(char, i64)]) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.chars().last() {
        Some(c) if c.is_ascii_alphabetic() => {
            let m = units.iter().find(|(u, _)| *u == c)?.1;
            (&s[..s.len() - 1], m)
        }
        _ => (s.as_str(), 1),
    };
    let digits = num.strip_prefix('-').unwrap_or(num);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    num.parse::<i64>().ok().map(|n| n * mult)
}

/// A basename filter: Python's `fnmatch` globs, or `re.match` regexes.
pub enum NameFilter {
    Glob(Vec<glob::Pattern>, Vec<glob::Pattern>),
    Regex(Vec<Regex>, Vec<Regex>),
}

impl NameFilter {
    pub fn new(patterns: &[String], excludes: &[String], regex: bool) -> anyhow::Result<Self> {
        if regex {
            let c = |name: &str, ps: &[String]| -> anyhow::Result<Vec<Regex>> {
                ps.iter()
                    .map(|p| compile_python(name, &format!("^(?:{p})")))
                    .collect()
            };
            let pats = if patterns.is_empty() {
                vec![".*".to_string()]
            } else {
                patterns.to_vec()
            };
            Ok(NameFilter::Regex(
                c("patterns", &pats)?,
                c("excludes", excludes)?,
            ))
        } else {
            let c = |name: &str, ps: &[String]| -> anyhow::Result<Vec<glob::Pattern>> {
                ps.iter()
                    .map(|p| {
                        glob::Pattern::new(p)
                            .map_err(|e| anyhow::anyhow!("argument {name}: bad pattern {p:?}: {e}"))
                    })
                    .collect()
            };
            let pats = if patterns.is_empty() {
                vec!["*".to_string()]
            } else {
                patterns.to_vec()
            };
            Ok(NameFilter::Glob(
                c("patterns", &pats)?,
                c("excludes", excludes)?,
            ))
        }
    }

    /// Matches one of the patterns and none of the excludes.
    pub fn matches(&self, name: &str) -> bool {
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: false,
            require_literal_leading_dot: false,
        };
        match self {
            NameFilter::Glob(p, e) => {
                p.iter().any(|p| p.matches_with(name, opts))
                    && !e.iter().any(|e| e.matches_with(name, opts))
            }
            NameFilter::Regex(p, e) => {
                p.iter().any(|p| p.is_match(name)) && !e.iter().any(|e| e.is_match(name))
            }
        }
    }
}

/// The stat keys Ansible's find gives each file.
pub fn statinfo(path: &str, e: &Entry) -> Map<String, Value> {
    let m = e.mode;
    let v = json!({
        "path": path,
        "mode": super::mode::fmt(m & 0o7777),
        "isdir": e.kind == 'd',
        "ischr": e.kind == 'c',
        "isblk": e.kind == 'b',
        "isreg": e.kind == 'f',
        "isfifo": e.kind == 'p',
        "islnk": e.kind == 'l',
        "issock": e.kind == 's',
        "uid": e.uid,
        "gid": e.gid,
        "size": e.size,
        "inode": e.inode,
        "dev": e.dev,
        "nlink": e.nlink,
        "atime": e.atime,
        "mtime": e.mtime,
        "ctime": e.ctime,
        "gr_name": if e.group == e.gid.to_string() { "" } else { e.group.as_str() },
        "pw_name": if e.user == e.uid.to_string() { "" } else { e.user.as_str() },
        "wusr": m & 0o200 != 0, "rusr": m & 0o400 != 0, "xusr": m & 0o100 != 0,
        "wgrp": m & 0o020 != 0, "rgrp": m & 0o040 != 0, "xgrp": m & 0o010 != 0,
        "woth": m & 0o002 != 0, "roth": m & 0o004 != 0, "xoth": m & 0o001 != 0,
        "isuid": m & 0o4000 != 0, "isgid": m & 0o2000 != 0,
    });
    match v {
        Value::Object(o) => o,
        _ => Map::new(),
    }
}

/// Everything that decides whether an entry matches, except its content.
pub struct Filter {
    pub names: NameFilter,
    pub file_type: String,
    pub age: Option<i64>,
    pub age_stamp: String,
    pub size: Option<i64>,
    pub mode: Option<u32>,
    pub exact_mode: bool,
    pub hidden: bool,
    pub depth: Option<i64>,
}

impl Filter {
    /// Does the entry match (before `contains`)? `now` is the host's clock.
    pub fn matches(&self, e: &Entry, now: f64) -> bool {
        if let Some(d) = self.depth.filter(|d| *d > 0) {
            if e.rel.matches('/').count() as i64 + 1 > d {
                return false;
            }
        }
        let name = e.rel.rsplit('/').next().unwrap_or(&e.rel);
        if name.starts_with('.') && !self.hidden {
            return false;
        }
        let stamp = match self.age_stamp.as_str() {
            "atime" => e.atime,
            "ctime" => e.ctime,
            _ => e.mtime,
        };
        let age_ok = match self.age {
            None => true,
            Some(a) if a >= 0 => now - stamp >= a as f64,
            Some(a) => now - stamp <= a.unsigned_abs() as f64,
        };
        let size_ok = match self.size {
            None => true,
            Some(s) if s >= 0 => e.size >= s as u64,
            Some(s) => e.size <= s.unsigned_abs(),
        };
        let mode_ok = match self.mode {
            None => true,
            Some(m) if self.exact_mode => e.mode & 0o7777 == m,
            Some(m) => e.mode & m != 0,
        };
        let common = self.names.matches(name) && age_ok && mode_ok;
        match self.file_type.as_str() {
            "any" => common && (e.kind != 'f' || size_ok),
            "directory" => e.kind == 'd' && common,
            "link" => e.kind == 'l' && common,
            _ => e.kind == 'f' && common && size_ok,
        }
    }
}

/// Does `content` match `contains` (each line from its start, or the whole text)?
pub fn content_matches(re: &Regex, content: &str, whole: bool) -> bool {
    if whole {
        return re.is_match(content);
    }
    content
        .split_inclusive('\n')
        .any(|line| re.find(line).is_some_and(|m| m.start() == 0))
}

#[async_trait]
impl Module for Find {
    fn name(&self) -> &'static str {
        "find"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let paths = list(args, &["paths"])?;
        if paths.is_empty() {
            anyhow::bail!("missing required argument: paths");
        }
        let use_regex = bool_arg(args, &["use_regex"], false)?;
        let filter = Filter {
            names: NameFilter::new(
                &list(args, &["patterns"])?,
                &list(args, &["excludes"])?,
                use_regex,
            )?,
            file_type: choice(
                args,
                &["file_type"],
                &["any", "directory", "file", "link"],
                "file",
            )?,
            age: str_opt(args, &["age"])?
                .map(|a| parse_age(&a))
                .transpose()?,
            age_stamp: choice(args, &["age_stamp"], &["atime", "ctime", "mtime"], "mtime")?,
            size: str_opt(args, &["size"])?
                .map(|s| parse_size(&s))
                .transpose()?,
            mode: match get(args, &["mode"]) {
                None => None,
                Some(v) => super::mode::parse(v)?
                    .resolve(Some(0), false)?
                    .map(|m| m & 0o7777),
            },
            exact_mode: bool_arg(args, &["exact_mode"], true)?,
            hidden: bool_arg(args, &["hidden"], false)?,
            depth: int_opt(args, &["depth"])?,
        };
        let contains = str_opt(args, &["contains"])?
            .map(|c| compile_python("contains", &c))
            .transpose()?;
        let whole = bool_arg(args, &["read_whole_file"], false)?;
        let recurse = bool_arg(args, &["recurse"], false)?;
        let follow = bool_arg(args, &["follow"], false)?;
        let get_checksum = bool_arg(args, &["get_checksum"], false)?;
        let algo = choice(
            args,
            &["checksum_algorithm"],
            &["md5", "sha1", "sha224", "sha256", "sha384", "sha512"],
            "sha1",
        )?;
        let limit = int_opt(args, &["limit"])?;
        if let Some(l) = limit.filter(|l| *l <= 0) {
            anyhow::bail!("argument limit: limit cannot be {l} (use None for unlimited)");
        }
        let maxdepth = match (recurse, filter.depth.filter(|d| *d > 0)) {
            (false, _) => " -maxdepth 1".to_string(),
            (true, Some(d)) => format!(" -maxdepth {}", d + 1),
            (true, None) => String::new(),
        };
        let l = if follow { "-L " } else { "" };
        let mut script = String::from("date +%s.%N; ");
        for p in &paths {
            let q = sh_quote(p);
            script.push_str(&format!(
                "printf '\\0@@path\\0'; if [ -d {q} ]; then find {l}{q} -mindepth 1{maxdepth} \
                 -printf '{FORMAT}'; else printf '@@notdir\\0'; fi; "
            ));
        }
        let out = ctx.run(&script).await?;
        let (clock, listing) = out.stdout.split_once('\n').unwrap_or(("0", ""));
        let now: f64 = clock.trim().parse().unwrap_or(0.0);
        let sections: Vec<&str> = listing.split("\0@@path\0").skip(1).collect();
        if sections.len() != paths.len() {
            anyhow::bail!("find: unexpected output: {}", out.stderr.trim());
        }

        let mut skipped = Map::new();
        for line in out.stderr.lines() {
            // find: '/x/y': Permission denied
            if let Some(rest) = line.strip_prefix("find: '") {
                if let Some((p, why)) = rest.split_once("': ") {
                    skipped.insert(p.to_string(), Value::String(why.to_string()));
                }
            }
        }
        let mut warned = !skipped.is_empty();
        let mut examined = 0u64;
        let mut candidates: Vec<(String, Entry)> = Vec::new();
        'paths: for (p, section) in paths.iter().zip(sections) {
            if section == "@@notdir\0" || section.starts_with("@@notdir") {
                skipped.insert(
                    p.clone(),
                    Value::String(format!("'{p}' is not a directory")),
                );
                warned = true;
                continue;
            }
            let base = p.trim_end_matches('/');
            for group in walk_order(parse_entries(section)?) {
                // Ansible counts a folder's entries as it enters it.
                examined += group.len() as u64;
                for e in group {
                    if filter.matches(&e, now) {
                        candidates.push((format!("{base}/{}", e.rel), e));
                        if contains.is_none() && limit == Some(candidates.len() as i64) {
                            break 'paths;
                        }
                    }
                }
            }
        }

        // contains (regular files only) and checksums: one more exec, candidates only.
        let regular: Vec<&str> = candidates
            .iter()
            .filter(|(_, e)| e.kind == 'f')
            .map(|(p, _)| p.as_str())
            .collect();
        let want_content = contains.is_some() && filter.file_type == "file";
        let want_sum =
            get_checksum && filter.file_type != "directory" && filter.file_type != "link";
        let extra = if (want_content || want_sum) && !regular.is_empty() {
            fetch_extra(
                ctx,
                &regular,
                want_content,
                want_sum.then_some(algo.as_str()),
            )
            .await?
        } else {
            HashMap::new()
        };
        let mut files = Vec::new();
        let mut limited = false;
        for (path, e) in &candidates {
            let info = extra.get(path.as_str());
            if want_content {
                let ok = match (&contains, info.and_then(|i| i.content.as_deref())) {
                    (Some(re), Some(text)) => content_matches(re, text, whole),
                    _ => false,
                };
                if !ok {
                    continue;
                }
            }
            let mut st = statinfo(path, e);
            if let Some(sum) = info.and_then(|i| i.checksum.clone()).filter(|_| want_sum) {
                st.insert("checksum".into(), Value::String(sum));
            }
            files.push(Value::Object(st));
            if limit == Some(files.len() as i64) {
                limited = true;
                break;
            }
        }
        limited |= contains.is_none() && limit == Some(files.len() as i64);
        let msg = if warned {
            "Not all paths examined, check warnings for details"
        } else if limited {
            "Limit of matches reached"
        } else {
            "All paths examined"
        };
        let matched = files.len();
        Ok(Plan {
            result: super::args::vars([
                ("files", Value::Array(files)),
                ("msg", Value::String(msg.into())),
                ("matched", Value::from(matched)),
                ("examined", Value::from(examined)),
                ("skipped_paths", Value::Object(skipped)),
            ]),
            ..Default::default()
        })
    }
}

/// What the second exec learnt about a regular file.
#[derive(Default)]
struct Extra {
    content: Option<String>,
    checksum: Option<String>,
}

/// Reads the candidates' contents (base64) and/or checksums in one exec.
async fn fetch_extra(
    ctx: &HostCtx,
    files: &[&str],
    content: bool,
    algo: Option<&str>,
) -> anyhow::Result<HashMap<String, Extra>> {
    let mut script = String::new();
    for (i, f) in files.iter().enumerate() {
        let q = sh_quote(f);
        script.push_str(&format!("echo '@@{i}'; "));
        if content {
            script.push_str(&format!("base64 -w0 < {q} 2>/dev/null; echo; "));
        }
        if let Some(a) = algo {
            script.push_str(&format!("{a}sum < {q} 2>/dev/null | cut -d' ' -f1; "));
        }
    }
    let out = ctx.run(&script).await?;
    let mut map = HashMap::new();
    let mut lines = out.stdout.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(i) = line
            .strip_prefix("@@")
            .and_then(|i| i.parse::<usize>().ok())
        else {
            continue;
        };
        let Some(path) = files.get(i) else { continue };
        let mut extra = Extra::default();
        if content {
            let b64 = lines.next().unwrap_or("");
            extra.content = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
        }
        if algo.is_some() {
            extra.checksum = lines
                .next_if(|l| !l.starts_with("@@"))
                .map(|l| l.trim().to_string())
                .filter(|s| !s.is_empty());
        }
        map.insert(path.to_string(), extra);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(rel: &str, kind: char) -> Entry {
        Entry {
            rel: rel.into(),
            kind,
            target_kind: kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            user: "root".into(),
            group: "root".into(),
            size: 10,
            inode: 1,
            dev: 1,
            nlink: 1,
            atime: 100.0,
            mtime: 100.0,
            ctime: 100.0,
        }
    }

    #[test]
    fn parses_printf_records() {
        let out = "f|f|644|0|0|root|root|3|12|2049|1|1.5|2.5|3.5|a|b.conf\0d|d|755|1|1|daemon|1|0|13|2049|2|1|2|3|sub\0";
        let e = parse_entries(out).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].rel, "a|b.conf");
        assert_eq!(e[0].mtime, 2.5);
        let st = statinfo("/x/sub", &e[1]);
        assert_eq!(st["mode"], "0755");
        assert_eq!(st["isdir"], true);
        assert_eq!(st["gr_name"], "");
        assert_eq!(st["pw_name"], "daemon");
        assert!(parse_entries("garbage\0").is_err());
    }

    #[test]
    fn walk_order_is_os_walks() {
        let got = walk_order(vec![
            entry("d1", 'd'),
            entry("d1/x", 'f'),
            entry("a", 'f'),
            entry("d2", 'd'),
            entry("d2/y", 'f'),
            entry("b", 'f'),
        ]);
        let rels: Vec<Vec<&str>> = got
            .iter()
            .map(|g| g.iter().map(|e| e.rel.as_str()).collect())
            .collect();
        assert_eq!(
            rels,
            [vec!["a", "b", "d1", "d2"], vec!["d1/x"], vec!["d2/y"]]
        );
    }

    #[test]
    fn age_and_size_units() {
        assert_eq!(parse_age("2d").unwrap(), 172800);
        assert_eq!(parse_age("-1W").unwrap(), -604800);
        assert_eq!(parse_age("30").unwrap(), 30);
        assert!(parse_age("3x").is_err());
        assert_eq!(parse_size("10k").unwrap(), 10240);
        assert_eq!(parse_size("-1m").unwrap(), -1048576);
        assert!(parse_size("m").is_err());
    }

    #[test]
    fn filters_names_types_hidden_depth_age() {
        let f = Filter {
            names: NameFilter::new(&["*.conf".into()], &["bad*".into()], false).unwrap(),
            file_type: "file".into(),
            age: Some(50),
            age_stamp: "mtime".into(),
            size: None,
            mode: None,
            exact_mode: true,
            hidden: false,
            depth: Some(1),
        };
        assert!(f.matches(&entry("a.conf", 'f'), 200.0));
        assert!(!f.matches(&entry("a.conf", 'f'), 120.0), "too young");
        assert!(!f.matches(&entry("bad.conf", 'f'), 200.0), "excluded");
        assert!(!f.matches(&entry(".h.conf", 'f'), 200.0), "hidden");
        assert!(!f.matches(&entry("s/a.conf", 'f'), 200.0), "too deep");
        assert!(!f.matches(&entry("a.conf", 'd'), 200.0), "a folder");
        let r = NameFilter::new(&["a.*".into()], &[], true).unwrap();
        assert!(r.matches("abc") && !r.matches("ba"));
    }

    #[test]
    fn contains_matches_lines_from_their_start() {
        let re = Regex::new("port").unwrap();
        assert!(content_matches(&re, "x\nport=1\n", false));
        assert!(!content_matches(&re, "x\n#port=1\n", false));
        assert!(content_matches(&re, "x\n#port=1\n", true));
    }
}
