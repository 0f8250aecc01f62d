//! `stat`: what a path is, in Ansible's `stat` result dict (exists, isdir, isreg, islnk,
//! mode as "0644", uid, gid, pw_name, gr_name, size, mtime, checksum (sha1), ...), all
//! from one exec on the host. Read-only: never changed.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::args::{bool_arg, sh_quote, str_opt, str_req};
use super::{ArgDef, ArgSpec, HostCtx, Module, Plan};
use crate::Vars;

pub struct Stat;

const ARGS: &[ArgDef] = &[
    ArgDef {
        name: "path",
        aliases: &["dest", "name"],
        required: true,
    },
    ArgDef::opt("follow"),
    ArgDef::opt("get_checksum"),
    ArgDef::alias("checksum_algorithm", &["checksum", "checksum_algo"]),
    ArgDef::opt("get_mime"),
    ArgDef::opt("get_attributes"),
    ArgDef::opt("get_md5"),
];

#[async_trait]
impl Module for Stat {
    fn name(&self) -> &'static str {
        "stat"
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
        let follow = bool_arg(args, &["follow"], false)?;
        let get_checksum = bool_arg(args, &["get_checksum"], true)?;
        let algo = str_opt(args, &["checksum_algorithm"])?.unwrap_or_else(|| "sha1".into());
        let sum_cmd = match algo.as_str() {
            "sha1" => "sha1sum",
            "sha224" => "sha224sum",
            "sha256" => "sha256sum",
            "sha384" => "sha384sum",
            "sha512" => "sha512sum",
            "md5" => "md5sum",
            other => anyhow::bail!("argument checksum_algorithm: unsupported {other:?}"),
        };
        let q = sh_quote(&path);
        let l = if follow { "-L " } else { "" };
        let checksum = if get_checksum {
            format!(
                "if [ -f {q} ] && [ -r {q} ]; then {sum_cmd} < {q} | cut -d' ' -f1; else echo; fi"
            )
        } else {
            "echo".to_string()
        };
        let cmd = format!(
            "if [ -e {q} ] || [ -L {q} ]; then \
               stat {l}-c '%F|%a|%u|%g|%U|%G|%s|%Y|%X|%Z|%i|%h|%d' -- {q} || exit 3; \
               r=false; w=false; x=false; [ -r {q} ] && r=true; [ -w {q} ] && w=true; \
               [ -x {q} ] && x=true; echo \"$r|$w|$x\"; {checksum}; \
               readlink -- {q} || echo; readlink -f -- {q} || echo; \
             else echo absent; fi"
        );
        let out = ctx.run(&cmd).await?;
        if out.rc != 0 {
            anyhow::bail!("stat {path}: {}", out.stderr.trim());
        }
        let stat = parse(&path, &out.stdout, get_checksum)?;
        Ok(Plan {
            result: super::args::vars([("stat", stat)]),
            ..Default::default()
        })
    }
}

/// Parses the stat exec's output into Ansible's dict.
pub fn parse(path: &str, out: &str, with_checksum: bool) -> anyhow::Result<Value> {
    let mut lines = out.lines();
    let first = lines.next().unwrap_or("absent");
    if first == "absent" {
        return Ok(json!({"exists": false}));
    }
    let bad = || anyhow::anyhow!("unexpected stat output for {path}: {out:?}");
    let f: Vec<&str> = first.split('|').collect();
    if f.len() != 13 {
        return Err(bad());
    }
    let num = |s: &str| s.parse::<u64>().map_err(|_| bad());
    let kind = f[0];
    let mode = u32::from_str_radix(f[1], 8).map_err(|_| bad())?;
    let flags: Vec<&str> = lines
        .next()
        .unwrap_or("false|false|false")
        .split('|')
        .collect();
    let flag = |i: usize| flags.get(i) == Some(&"true");
    let checksum = lines.next().unwrap_or("").trim().to_string();
    let link = lines.next().unwrap_or("").to_string();
    let real = lines.next().unwrap_or("").to_string();
    let is_lnk = kind == "symbolic link";
    let mut st = json!({
        "exists": true,
        "path": path,
        "mode": super::mode::fmt(mode),
        "isdir": kind == "directory",
        "isreg": kind.starts_with("regular"),
        "islnk": is_lnk,
        "isfifo": kind == "fifo",
        "issock": kind == "socket",
        "isblk": kind == "block special file",
        "ischr": kind == "character special file",
        "uid": num(f[2])?,
        "gid": num(f[3])?,
        "pw_name": f[4],
        "gr_name": f[5],
        "size": num(f[6])?,
        "mtime": num(f[7])?,
        "atime": num(f[8])?,
        "ctime": num(f[9])?,
        "inode": num(f[10])?,
        "nlink": num(f[11])?,
        "dev": num(f[12])?,
        "readable": flag(0),
        "writeable": flag(1),
        "executable": flag(2),
        "xusr": mode & 0o100 != 0, "wusr": mode & 0o200 != 0, "rusr": mode & 0o400 != 0,
        "xgrp": mode & 0o010 != 0, "wgrp": mode & 0o020 != 0, "rgrp": mode & 0o040 != 0,
        "xoth": mode & 0o001 != 0, "woth": mode & 0o002 != 0, "roth": mode & 0o004 != 0,
        "isuid": mode & 0o4000 != 0, "isgid": mode & 0o2000 != 0,
    });
    if let Some(obj) = st.as_object_mut() {
        if with_checksum && !checksum.is_empty() {
            obj.insert("checksum".into(), Value::String(checksum));
        }
        if is_lnk {
            obj.insert("lnk_target".into(), Value::String(link));
            obj.insert("lnk_source".into(), Value::String(real));
        }
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_regular_file() {
        let out = "regular file|644|0|0|root|root|3|1700000000|1700000001|1700000002|42|1|2049\n\
                   true|true|false\na9993e364706816aba3e25717850c26c9cd0d89d\n\n/tmp/x\n";
        let st = parse("/tmp/x", out, true).unwrap();
        assert_eq!(st["exists"], true);
        assert_eq!(st["isreg"], true);
        assert_eq!(st["mode"], "0644");
        assert_eq!(st["pw_name"], "root");
        assert_eq!(st["size"], 3);
        assert_eq!(st["checksum"], "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(st["executable"], false);
        assert!(st.get("lnk_target").is_none());
    }

    #[test]
    fn parses_absent_and_links() {
        assert_eq!(
            parse("/x", "absent\n", true).unwrap(),
            json!({"exists": false})
        );
        let out =
            "symbolic link|777|0|0|root|root|4|1|1|1|1|1|1\nfalse|false|false\n\n/etc\n/etc\n";
        let st = parse("/l", out, true).unwrap();
        assert_eq!(st["islnk"], true);
        assert_eq!(st["lnk_target"], "/etc");
        assert!(parse("/x", "garbage\n", true).is_err());
    }
}
