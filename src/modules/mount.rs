//! `mount` (ansible.posix): a mount point's line in fstab (`fstab`, default /etc/fstab)
//! and, for `mounted`/`unmounted`/`remounted`/`absent`, whether it is mounted now.
//!
//! The fstab editing is Ansible's (pure functions below): fields are escaped (`\040` for
//! a space), the line of the same mount point is rewritten only when src, fstype, opts,
//! dump or passno differ, else a line is appended; `absent` drops lines with exactly six
//! fields for the path. `boot: no` adds `noauto`. Whether the path is mounted is
//! `mountpoint -q` (bind mounts included). A failed mount restores the previous fstab, as
//! Ansible does. Observed in one round trip. `ephemeral` is not native (use the fallback).

use async_trait::async_trait;
use serde_json::Value;

use super::args::{bool_arg, choice, sh_quote, str_opt, str_req};
use super::fileops::exec;
use super::{ArgDef, ArgSpec, Change, HostCtx, Module, Op, Plan, TextDiff};
use crate::transport::FileAttrs;
use crate::Vars;

pub struct Mount;

const ARGS: &[ArgDef] = &[
    ArgDef::opt("boot"),
    ArgDef::opt("dump"),
    ArgDef::opt("fstab"),
    ArgDef::opt("fstype"),
    ArgDef {
        name: "path",
        aliases: &["name"],
        required: true,
    },
    ArgDef::opt("opts"),
    ArgDef::opt("opts_no_log"),
    ArgDef::opt("passno"),
    ArgDef::opt("src"),
    ArgDef::opt("backup"),
    ArgDef::req("state"),
];

const STATES: &[&str] = &[
    "absent",
    "absent_from_fstab",
    "mounted",
    "present",
    "unmounted",
    "remounted",
    "ephemeral",
];

/// The wanted fstab entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub src: String,
    pub name: String,
    pub fstype: String,
    pub opts: String,
    pub dump: String,
    pub passno: String,
}

/// Ansible's `_escape_fstab`.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('&', "\\046")
}

impl Entry {
    fn escaped(&self) -> Entry {
        Entry {
            src: escape(&self.src),
            name: escape(&self.name),
            fstype: escape(&self.fstype),
            opts: escape(&self.opts),
            dump: escape(&self.dump),
            passno: escape(&self.passno),
        }
    }

    fn line(&self) -> String {
        format!(
            "{} {} {} {} {} {}\n",
            self.src, self.name, self.fstype, self.opts, self.dump, self.passno
        )
    }
}

/// Ansible's `_set_mount_save_old` on fstab's text: the new text and whether it changed.
pub fn set_mount(fstab: &str, want: &Entry, src_given: bool) -> (String, bool) {
    let e = want.escaped();
    let mut out = String::new();
    let mut exists = false;
    let mut changed = false;
    for raw in fstab.split_inclusive('\n') {
        let line = if raw.ends_with('\n') {
            raw.to_string()
        } else {
            format!("{raw}\n")
        };
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            out.push_str(&line);
            continue;
        }
        let fields: Vec<&str> = line
            .split('#')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        if !(4..=6).contains(&fields.len()) {
            out.push_str(&line);
            continue;
        }
        let mut ld = Entry {
            src: fields[0].into(),
            name: fields[1].into(),
            fstype: fields[2].into(),
            opts: fields[3].into(),
            dump: fields.get(4).unwrap_or(&"0").to_string(),
            passno: fields.get(5).unwrap_or(&"0").to_string(),
        };
        let other_swap =
            src_given && ld.name == "none" && ld.fstype == "swap" && ld.src != want.src;
        if ld.name != e.name || other_swap {
            out.push_str(&line);
            continue;
        }
        exists = true;
        // As in Ansible, `changed` carries over from an earlier line of the same path.
        for (cur, new) in [
            (&mut ld.src, &e.src),
            (&mut ld.fstype, &e.fstype),
            (&mut ld.opts, &e.opts),
            (&mut ld.dump, &e.dump),
            (&mut ld.passno, &e.passno),
        ] {
            if cur != new {
                *cur = new.clone();
                changed = true;
            }
        }
        if changed {
            out.push_str(&ld.line());
        } else {
            out.push_str(&line);
        }
    }
    if !exists {
        out.push_str(&e.line());
        changed = true;
    }
    (out, changed)
}

/// Ansible's `unset_mount`: lines of exactly six fields for the path are dropped.
pub fn unset_mount(fstab: &str, name: &str, src: Option<&str>) -> (String, bool) {
    let en = escape(name);
    let mut out = String::new();
    let mut changed = false;
    for line in fstab.split_inclusive('\n') {
        let t = line.trim();
        let f: Vec<&str> = line.split_whitespace().collect();
        if t.is_empty() || t.starts_with('#') || f.len() != 6 {
            out.push_str(line);
            continue;
        }
        let other_swap = src.is_some_and(|s| f[1] == "none" && f[2] == "swap" && f[0] != s);
        if f[1] != en || other_swap {
            out.push_str(line);
            continue;
        }
        changed = true;
    }
    (out, changed)
}

#[async_trait]
impl Module for Mount {
    fn name(&self) -> &'static str {
        "mount"
    }

    fn spec(&self) -> ArgSpec {
        ArgSpec {
            args: ARGS,
            free_form: false,
            one_of: &[],
        }
    }

    async fn plan(&self, ctx: &HostCtx, args: &Vars) -> anyhow::Result<Plan> {
        let name = str_req(args, &["path"])?;
        let state = choice(args, &["state"], STATES, "")?;
        let src = str_opt(args, &["src"])?;
        let fstype = str_opt(args, &["fstype"])?;
        if matches!(state.as_str(), "mounted" | "present" | "ephemeral")
            && (src.is_none() || fstype.is_none())
        {
            anyhow::bail!(
                "state is {state} but all of the following are missing or empty: src, fstype"
            );
        }
        if state == "ephemeral" {
            anyhow::bail!(
                "mount: state ephemeral is not native; run it through the Ansible fallback"
            );
        }
        let boot = bool_arg(args, &["boot"], true)?;
        let backup = bool_arg(args, &["backup"], false)?;
        let fstab = str_opt(args, &["fstab"])?.unwrap_or_else(|| "/etc/fstab".into());
        let mut opts = str_opt(args, &["opts"])?.unwrap_or_else(|| "defaults".into());
        let mut warnings: Vec<Value> = Vec::new();
        if boot && opts.split(',').any(|o| o == "noauto") {
            warnings.push("Ignore the 'boot' due to 'opts' contains 'noauto'.".into());
        } else if !boot {
            opts.push_str(",noauto");
        }
        let want = Entry {
            src: src.clone().unwrap_or_default(),
            name: name.clone(),
            fstype: fstype.clone().unwrap_or_default(),
            opts: opts.clone(),
            dump: str_opt(args, &["dump"])?.unwrap_or_else(|| "0".into()),
            passno: str_opt(args, &["passno"])?.unwrap_or_else(|| "0".into()),
        };
        let (q, qf) = (sh_quote(&name), sh_quote(&fstab));
        let out = ctx
            .run(&format!(
                "if mountpoint -q {q} 2>/dev/null; then echo @@MOUNTED; fi; [ -e {q} ] && echo @@EXISTS; \
                 if [ -f {qf} ]; then echo @@FSTAB; cat {qf}; fi; exit 0"
            ))
            .await?;
        let text = out.stdout.as_str();
        let (head, fstab_text) = match text.split_once("@@FSTAB\n") {
            Some((h, f)) => (h, f),
            None => (text, ""),
        };
        let mounted = head.contains("@@MOUNTED");
        let exists = head.contains("@@EXISTS");
        let t_arg = if fstab != "/etc/fstab" {
            format!(" -T {qf}")
        } else {
            String::new()
        };
        let mut plan = Plan::default();
        let write = |plan: &mut Plan, after: &str| {
            plan.changes.push(Change {
                summary: format!("{name} in {fstab}"),
                diff: Some(TextDiff {
                    before_header: fstab.clone(),
                    after_header: fstab.clone(),
                    before: fstab_text.to_string(),
                    after: after.to_string(),
                }),
            });
            plan.ops.push(Op::Write {
                path: fstab.clone(),
                content: after.as_bytes().to_vec(),
                attrs: FileAttrs::default(),
                backup,
                validate: None,
            });
        };
        let remount =
            format!("mount -o remount{t_arg} {q} || {{ umount {q} && mount{t_arg} {q}; }}");
        match state.as_str() {
            "absent" | "absent_from_fstab" => {
                let (after, changed) = unset_mount(fstab_text, &name, src.as_deref());
                if changed {
                    write(&mut plan, &after);
                    if state == "absent" {
                        if mounted {
                            plan.ops.push(exec(format!("umount {q}")));
                        }
                        if exists || mounted {
                            plan.ops.push(exec(format!("rmdir {q}")));
                        }
                    }
                }
            }
            "present" => {
                let (after, changed) = set_mount(fstab_text, &want, src.is_some());
                if changed {
                    write(&mut plan, &after);
                }
            }
            "unmounted" => {
                if mounted {
                    plan.changes.push(Change {
                        summary: format!("unmount {name}"),
                        diff: None,
                    });
                    plan.ops.push(exec(format!("umount {q}")));
                }
            }
            "remounted" => {
                plan.changes.push(Change {
                    summary: format!("remount {name}"),
                    diff: None,
                });
                plan.ops.push(exec(remount.clone()));
            }
            _ => {
                // mounted
                if !exists {
                    plan.ops.push(exec(format!("mkdir -p {q}")));
                }
                let (after, changed) = set_mount(fstab_text, &want, src.is_some());
                if changed {
                    write(&mut plan, &after);
                }
                let action = if mounted {
                    changed.then(|| remount.clone())
                } else {
                    Some(format!("mount{t_arg} {q}"))
                };
                if let Some(cmd) = action {
                    if !mounted {
                        plan.changes.push(Change {
                            summary: format!("mount {name}"),
                            diff: None,
                        });
                    }
                    // A failed mount puts the old fstab back (stdin), as Ansible does.
                    let (cmd, stdin) = if changed {
                        (
                            format!("{cmd} || {{ rc=$?; cat > {qf}; exit $rc; }}"),
                            Some(fstab_text.as_bytes().to_vec()),
                        )
                    } else {
                        (cmd, None)
                    };
                    plan.ops.push(Op::Exec {
                        cmd,
                        stdin,
                        chdir: None,
                        allow_failure: false,
                    });
                }
            }
        }
        plan.result = super::args::vars([
            ("name", Value::from(name)),
            ("opts", Value::from(opts)),
            ("dump", Value::from(want.dump)),
            ("passno", Value::from(want.passno)),
            ("fstab", Value::from(fstab)),
            ("boot", Value::from(if boot { "yes" } else { "no" })),
            ("warnings", Value::from(warnings)),
            ("backup_file", Value::from("")),
        ]);
        if let Some(s) = src {
            plan.result.insert("src".into(), Value::from(s));
        }
        if let Some(f) = fstype {
            plan.result.insert("fstype".into(), Value::from(f));
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(src: &str, name: &str, opts: &str) -> Entry {
        Entry {
            src: src.into(),
            name: name.into(),
            fstype: "tmpfs".into(),
            opts: opts.into(),
            dump: "0".into(),
            passno: "0".into(),
        }
    }

    #[test]
    fn fstab_lines_are_added_updated_and_removed_as_ansible() {
        let fstab = "# comment\nproc /proc proc defaults 0 0\n";
        let (a, c) = set_mount(fstab, &entry("tmpfs", "/srv/my data", "size=1m"), true);
        assert!(c);
        assert_eq!(
            a,
            format!("{fstab}tmpfs /srv/my\\040data tmpfs size=1m 0 0\n")
        );
        assert_eq!(
            set_mount(&a, &entry("tmpfs", "/srv/my data", "size=1m"), true),
            (a.clone(), false)
        );
        let (b, c) = set_mount(&a, &entry("tmpfs", "/srv/my data", "size=2m"), true);
        assert!(c && b.ends_with("tmpfs /srv/my\\040data tmpfs size=2m 0 0\n"));
        // A four-field line counts, missing dump/passno are 0.
        let (_, c) = set_mount(
            "tmpfs /x tmpfs defaults\n",
            &entry("tmpfs", "/x", "defaults"),
            true,
        );
        assert!(!c);
        let (d, c) = unset_mount(&b, "/srv/my data", None);
        assert!(c);
        assert_eq!(d, fstab);
    }
}
