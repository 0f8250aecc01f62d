//! File operations for `become` to another user. SFTP runs as the login user, so these go
//! through sudo'd shell commands instead: `stat -c`, `cat`, and an atomic write (the temp
//! file is created beside the target by the become user from stdin, given owner and mode,
//! synced, then `mv -f` onto the target in the same sudo call).

use rand::Rng;

use super::channel::RawOutput;
use crate::transport::shell::quote;
use crate::transport::{FileAttrs, FileKind, FileStat};

/// What the stat script prints for a path that does not exist.
const MISSING: &str = "infra-missing";
/// The read script's exit status for a file that does not exist.
const MISSING_RC: i32 = 97;

/// `.<name>.infra-tmp-<random>` beside `path`.
pub fn temp_path(path: &str) -> Result<String, String> {
    if path.is_empty() || path.ends_with('/') {
        return Err(format!("{path:?} is not a file path"));
    }
    let token: u64 = rand::thread_rng().gen();
    let (dir, name) = match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    };
    let temp_name = format!(".{name}.infra-tmp-{token:016x}");
    Ok(match dir {
        "" => temp_name,
        "/" => format!("/{temp_name}"),
        d => format!("{d}/{temp_name}"),
    })
}

pub fn stat_script(path: &str) -> String {
    format!(
        "p={}\n\
         if [ ! -e \"$p\" ] && [ ! -L \"$p\" ]; then echo {MISSING}; exit 0; fi\n\
         stat -c '%f %u %g %s %Y' -- \"$p\" || exit 1\n\
         if [ -L \"$p\" ]; then readlink -- \"$p\" || exit 1; fi",
        quote(path)
    )
}

pub fn parse_stat(out: &RawOutput) -> Result<Option<FileStat>, String> {
    let text = String::from_utf8_lossy(&out.stdout);
    if out.rc != 0 {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    if first == MISSING {
        return Ok(None);
    }
    let bad = || format!("unexpected stat output {first:?}");
    let fields: Vec<&str> = first.split_whitespace().collect();
    let [raw_mode, uid, gid, size, mtime] = fields[..] else {
        return Err(bad());
    };
    let raw_mode = u32::from_str_radix(raw_mode, 16).map_err(|_| bad())?;
    let kind = match raw_mode & 0o170000 {
        0o100000 => FileKind::File,
        0o040000 => FileKind::Directory,
        0o120000 => FileKind::Symlink,
        _ => FileKind::Other,
    };
    let link_target = if kind == FileKind::Symlink {
        lines.next().map(str::to_string)
    } else {
        None
    };
    Ok(Some(FileStat {
        kind,
        mode: raw_mode & 0o7777,
        uid: uid.parse().map_err(|_| bad())?,
        gid: gid.parse().map_err(|_| bad())?,
        size: size.parse().map_err(|_| bad())?,
        mtime: mtime.parse().map_err(|_| bad())?,
        link_target,
    }))
}

pub fn read_script(path: &str) -> String {
    format!(
        "p={}\nif [ ! -e \"$p\" ]; then exit {MISSING_RC}; fi\nexec cat -- \"$p\"",
        quote(path)
    )
}

pub fn parse_read(out: RawOutput) -> Result<Option<Vec<u8>>, String> {
    match out.rc {
        0 => Ok(Some(out.stdout)),
        MISSING_RC => Ok(None),
        rc => Err(format!(
            "exit status {rc}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// Writes stdin to `path` through `temp` (beside it). An existing file keeps its owner,
/// group and mode unless `attrs` says otherwise; a new one gets `default_mode`.
pub fn write_script(path: &str, temp: &str, attrs: &FileAttrs, default_mode: u32) -> String {
    let mut s = format!(
        "set -e\n\
         p={}\n\
         t={}\n\
         trap 'rm -f -- \"$t\"' EXIT\n\
         umask 077\n\
         cat > \"$t\"\n\
         if [ -f \"$p\" ]; then\n\
         chown --reference=\"$p\" -- \"$t\"\n\
         chmod --reference=\"$p\" -- \"$t\"\n\
         else\n\
         chmod {default_mode:04o} -- \"$t\"\n\
         fi\n",
        quote(path),
        quote(temp)
    );
    if let Some(owner) = &attrs.owner {
        s.push_str(&format!("chown {} -- \"$t\"\n", quote(owner)));
    }
    if let Some(group) = &attrs.group {
        s.push_str(&format!("chgrp {} -- \"$t\"\n", quote(group)));
    }
    if let Some(mode) = attrs.mode {
        s.push_str(&format!("chmod {:04o} -- \"$t\"\n", mode & 0o7777));
    }
    s.push_str("sync -- \"$t\" 2>/dev/null || sync\nmv -f -- \"$t\" \"$p\"\ntrap - EXIT\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn sh(script: &str, stdin: &[u8]) -> RawOutput {
        use std::io::Write;
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        RawOutput {
            rc: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: out.stderr,
        }
    }

    #[test]
    fn temp_path_is_beside_the_target() {
        let t = temp_path("/etc/app/conf.yml").unwrap();
        assert!(t.starts_with("/etc/app/.conf.yml.infra-tmp-"), "{t}");
        assert!(temp_path("/x").unwrap().starts_with("/.x.infra-tmp-"));
        assert!(temp_path("rel").unwrap().starts_with(".rel.infra-tmp-"));
        assert!(temp_path("/etc/").is_err());
        assert_ne!(temp_path("/a").unwrap(), temp_path("/a").unwrap());
    }

    #[test]
    fn stat_script_reports_files_dirs_links_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "hello").unwrap();
        std::os::unix::fs::symlink("f", dir.path().join("l")).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        }
        let f_stat = parse_stat(&sh(&stat_script(f.to_str().unwrap()), b""))
            .unwrap()
            .unwrap();
        assert_eq!(f_stat.kind, FileKind::File);
        assert_eq!(f_stat.size, 5);
        let d = parse_stat(&sh(&stat_script(dir.path().to_str().unwrap()), b""))
            .unwrap()
            .unwrap();
        assert_eq!(d.kind, FileKind::Directory);
        assert_eq!(d.mode, 0o711);
        let l = parse_stat(&sh(
            &stat_script(dir.path().join("l").to_str().unwrap()),
            b"",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(l.kind, FileKind::Symlink);
        assert_eq!(l.link_target.as_deref(), Some("f"));
        let missing = sh(&stat_script(dir.path().join("nope").to_str().unwrap()), b"");
        assert_eq!(parse_stat(&missing).unwrap(), None);
    }

    #[test]
    fn read_script_distinguishes_missing_from_content() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"\x00bin\xff").unwrap();
        let got = parse_read(sh(&read_script(f.to_str().unwrap()), b"")).unwrap();
        assert_eq!(got, Some(b"\x00bin\xff".to_vec()));
        let missing = parse_read(sh(&read_script("/nonexistent/x"), b"")).unwrap();
        assert_eq!(missing, None);
    }

    #[test]
    fn write_script_keeps_mode_and_leaves_no_temp() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("conf");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let path = p.to_str().unwrap();
        let out = sh(
            &write_script(
                path,
                &temp_path(path).unwrap(),
                &FileAttrs::default(),
                0o644,
            ),
            b"new",
        );
        assert_eq!(out.rc, 0, "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        let attrs = FileAttrs {
            mode: Some(0o600),
            ..FileAttrs::default()
        };
        let fresh = dir.path().join("fresh");
        let fresh_path = fresh.to_str().unwrap();
        let out = sh(
            &write_script(fresh_path, &temp_path(fresh_path).unwrap(), &attrs, 0o644),
            b"x",
        );
        assert_eq!(out.rc, 0);
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn failed_write_removes_the_temp_and_keeps_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("conf");
        std::fs::write(&p, "old").unwrap();
        let path = p.to_str().unwrap();
        let attrs = FileAttrs {
            owner: Some("no-such-user-xyz".into()),
            ..FileAttrs::default()
        };
        let out = sh(
            &write_script(path, &temp_path(path).unwrap(), &attrs, 0o644),
            b"new",
        );
        assert_ne!(out.rc, 0);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
