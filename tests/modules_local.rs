//! File-level modules through the real LocalTransport on temp folders: check mode changes
//! nothing and reports changed; the first run changes; the second is ok with an empty
//! plan; diffs are right. Everything is verified by reading the filesystem.

#[path = "support/modules.rs"]
mod support_modules;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use infra::modules::{self, OpFailed};
use serde_json::{json, Value};
use support_modules::{local_ctx, plan_only, run, Outcome};

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

fn mode_of(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// check (changed, nothing written) -> run (changed) -> run (ok, no ops) -> check (ok).
/// `state` reads what the test cares about on the filesystem.
async fn converge(
    dir: &Path,
    module: &str,
    args: Value,
    state: impl Fn() -> String,
) -> (Outcome, Outcome) {
    let search = vec![dir.to_path_buf()];
    let before = state();
    let check = run(
        &local_ctx(true, search.clone(), Default::default()),
        module,
        args.clone(),
    )
    .await
    .unwrap();
    assert!(check.changed(), "{module}: check mode must report changed");
    assert!(check.applied.is_none());
    assert_eq!(
        state(),
        before,
        "{module}: check mode changed the filesystem"
    );
    let ctx = local_ctx(false, search.clone(), Default::default());
    let first = run(&ctx, module, args.clone()).await.unwrap();
    assert!(first.changed(), "{module}: first run must change");
    assert_ne!(
        state(),
        before,
        "{module}: first run changed nothing on disk"
    );
    let second = run(&ctx, module, args.clone()).await.unwrap();
    assert!(
        !second.changed(),
        "{module}: second run changed: {:?}",
        second.plan.changes
    );
    assert!(second.plan.ops.is_empty(), "{module}: second run has ops");
    let recheck = run(&local_ctx(true, search, Default::default()), module, args)
        .await
        .unwrap();
    assert!(!recheck.changed());
    (check, first)
}

#[tokio::test]
async fn lookup_accepts_prefixes_and_aliases() {
    for n in ["copy", "ansible.builtin.copy", "ansible.legacy.copy"] {
        assert_eq!(modules::lookup(n).unwrap().name(), "copy");
    }
    assert_eq!(
        modules::lookup("ansible.builtin.systemd_service")
            .unwrap()
            .name(),
        "systemd"
    );
    assert!(modules::lookup("copyy").is_none());
    let names = modules::names();
    for n in [
        "apt",
        "package",
        "copy",
        "template",
        "file",
        "lineinfile",
        "blockinfile",
        "service",
        "systemd",
        "systemd_service",
        "command",
        "shell",
        "user",
        "group",
        "get_url",
        "unarchive",
        "wait_for",
        "stat",
        "slurp",
        "debug",
        "set_fact",
        "assert",
        "fail",
        "pause",
        "ping",
        "hostname",
        "sysctl",
    ] {
        assert!(names.contains(&n), "{n} missing");
        assert!(modules::lookup(n).is_some(), "{n} not found");
    }
}

#[tokio::test]
async fn copy_content_converges_with_mode_and_diff() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("motd");
    std::fs::write(&dest, "old\n").unwrap();
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o600)).unwrap();
    let args = json!({"content": "hello\nworld\n", "dest": s(&dest), "mode": "0644"});
    let (check, first) = converge(dir.path(), "copy", args, || {
        format!("{} {:o}", read(&dest), mode_of(&dest))
    })
    .await;
    assert_eq!(read(&dest), "hello\nworld\n");
    assert_eq!(mode_of(&dest), 0o644);
    let expected = format!(
        "--- before: {d}\n+++ after: dynamically generated\n@@ -1 +1,2 @@\n-old\n+hello\n+world\n",
        d = s(&dest)
    );
    assert_eq!(check.diff_text(), expected);
    assert_eq!(first.result()["mode"], "0644");
    let sha1 = {
        use sha1::Digest;
        hex::encode(sha1::Sha1::digest(b"hello\nworld\n"))
    };
    assert_eq!(first.result()["checksum"], sha1);
}

#[tokio::test]
async fn copy_mode_only_change_and_owner() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("f");
    std::fs::write(&dest, "same").unwrap();
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o644)).unwrap();
    let args = json!({"content": "same", "dest": s(&dest), "mode": "u=rw,g=,o=", "owner": "nobody", "group": "nogroup"});
    let (check, _) = converge(dir.path(), "copy", args, || {
        let m = std::fs::metadata(&dest).unwrap();
        format!(
            "{:o} {} {}",
            m.permissions().mode() & 0o7777,
            m.uid(),
            m.gid()
        )
    })
    .await;
    let summaries: Vec<_> = check
        .plan
        .changes
        .iter()
        .map(|c| c.summary.clone())
        .collect();
    assert!(summaries[0].contains("0644 -> 0600"), "{summaries:?}");
    assert_eq!(mode_of(&dest), 0o600);
    let out = std::process::Command::new("stat")
        .args(["-c", "%U:%G"])
        .arg(&dest)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "nobody:nogroup"
    );
}

#[tokio::test]
async fn copy_src_into_a_directory_and_a_whole_folder() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir_all(files.join("conf/sub")).unwrap();
    std::fs::write(files.join("app.conf"), "a=1\n").unwrap();
    std::fs::write(files.join("conf/one"), "1\n").unwrap();
    std::fs::write(files.join("conf/sub/two"), "2\n").unwrap();
    let dest = dir.path().join("etc");
    std::fs::create_dir(&dest).unwrap();
    let search = vec![files.clone()];
    let ctx = local_ctx(false, search.clone(), Default::default());

    let out = run(
        &ctx,
        "copy",
        json!({"src": "app.conf", "dest": format!("{}/", s(&dest))}),
    )
    .await
    .unwrap();
    assert!(out.changed());
    assert_eq!(read(&dest.join("app.conf")), "a=1\n");
    assert_eq!(out.result()["src"], s(&files.join("app.conf")));

    // A folder without a trailing slash lands as dest/conf, with its tree.
    let args = json!({"src": "conf", "dest": s(&dest)});
    let check = run(
        &local_ctx(true, search, Default::default()),
        "copy",
        args.clone(),
    )
    .await
    .unwrap();
    assert!(check.changed() && !dest.join("conf").exists());
    assert!(run(&ctx, "copy", args.clone()).await.unwrap().changed());
    assert_eq!(read(&dest.join("conf/sub/two")), "2\n");
    assert_eq!(read(&dest.join("conf/one")), "1\n");
    assert!(!run(&ctx, "copy", args.clone()).await.unwrap().changed());
    std::fs::write(dest.join("conf/one"), "drift\n").unwrap();
    let again = run(&ctx, "copy", args).await.unwrap();
    assert_eq!(again.plan.changes.len(), 1, "only the drifted file");
    assert_eq!(read(&dest.join("conf/one")), "1\n");

    let missing = run(&ctx, "copy", json!({"src": "nope", "dest": s(&dest)})).await;
    let err = format!("{:#}", missing.err().unwrap());
    assert!(err.contains("could not find src \"nope\""), "{err}");
}

/// The directories `plan` makes, in order.
fn mkdirs(out: &Outcome) -> Vec<String> {
    out.plan
        .ops
        .iter()
        .filter_map(|op| match op {
            modules::Op::Mkdir { path, .. } => Some(path.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn copy_and_lineinfile_make_missing_folders_as_file_does() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir_all(files.join("conf")).unwrap();
    std::fs::write(files.join("app.conf"), "a=1\n").unwrap();
    std::fs::write(files.join("conf/one"), "1\n").unwrap();
    let ctx = local_ctx(false, vec![files], Default::default());

    let dest = format!("{}/", s(&dir.path().join("etc/app")));
    let out = run(&ctx, "copy", json!({"src": "app.conf", "dest": dest}))
        .await
        .unwrap();
    assert_eq!(mkdirs(&out), vec![dest.clone()]);
    assert_eq!(read(&dir.path().join("etc/app/app.conf")), "a=1\n");

    let tree = dir.path().join("tree");
    let out = run(&ctx, "copy", json!({"src": "conf", "dest": s(&tree)}))
        .await
        .unwrap();
    assert_eq!(mkdirs(&out), vec![s(&tree.join("conf"))]);
    assert_eq!(read(&tree.join("conf/one")), "1\n");

    let newf = dir.path().join("deep/er/conf");
    let args = json!({"path": s(&newf), "line": "a=1", "create": true});
    let out = run(&ctx, "lineinfile", args).await.unwrap();
    assert_eq!(mkdirs(&out), vec![s(&dir.path().join("deep/er"))]);
    assert_eq!(read(&newf), "a=1\n");
}

#[tokio::test]
async fn copy_validate_and_backup() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("sudoers");
    std::fs::write(&dest, "good\n").unwrap();
    let ctx = local_ctx(false, vec![], Default::default());
    // A failing validation leaves the old file in place and no temp file behind.
    let plan = plan_only(
        &ctx,
        "copy",
        json!({"content": "bad\n", "dest": s(&dest), "validate": "grep -q good %s"}),
    )
    .await
    .unwrap();
    let err = modules::apply(&ctx, &plan).await.unwrap_err();
    let failed = err.downcast_ref::<OpFailed>().expect("OpFailed");
    assert!(
        failed.message.contains("failed to validate"),
        "{}",
        failed.message
    );
    assert_eq!(read(&dest), "good\n");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let out = run(&ctx, "copy", json!({"content": "good too\n", "dest": s(&dest), "validate": "grep -q good %s", "backup": true}))
        .await
        .unwrap();
    assert_eq!(read(&dest), "good too\n");
    let backup = out.result()["backup_file"].as_str().unwrap().to_string();
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), "good\n");
    assert!(backup.ends_with('~'));
}

/// A big file on a local connection is compared by reading it (no checksum process: the
/// read moves nothing over a network); a byte changed in place, same size, is found.
#[tokio::test]
async fn copy_of_a_big_file_converges_and_finds_a_same_size_change() {
    let dir = tempfile::tempdir().unwrap();
    let content: Vec<u8> = (0..2 * 1024 * 1024 + 5)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    std::fs::write(dir.path().join("big.bin"), &content).unwrap();
    let dest = dir.path().join("out.bin");
    let args = json!({"src": "big.bin", "dest": s(&dest)});
    let state = || format!("{:?}", std::fs::read(&dest).ok().map(|c| c == content));
    let (_, first) = converge(dir.path(), "copy", args.clone(), state).await;
    assert!(first.diff_text().is_empty(), "a big file is summarised");
    let mut tampered = content.clone();
    tampered[content.len() / 2] ^= 0xff;
    std::fs::write(&dest, &tampered).unwrap();
    let ctx = local_ctx(false, vec![dir.path().to_path_buf()], Default::default());
    let fixed = run(&ctx, "copy", args).await.unwrap();
    assert!(fixed.changed());
    assert!(std::fs::read(&dest).unwrap() == content);
}

#[tokio::test]
async fn copy_into_a_missing_folder_fails_without_changes() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = local_ctx(false, vec![], Default::default());
    let plan = plan_only(
        &ctx,
        "copy",
        json!({"content": "x", "dest": s(&dir.path().join("no/such/file"))}),
    )
    .await
    .unwrap();
    assert!(plan.failed.unwrap().contains("does not exist"));
    assert!(plan.ops.is_empty());
}

#[tokio::test]
async fn template_renders_with_ansible_whitespace_rules() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hosts.j2"),
        "# {{ title }} ({{ ansible_managed }})\n{% for h in hosts %}\n{{ h }} {{ loop.index }}\n{% endfor %}\n  {% if true %}\nend\n  {% endif %}\n",
    )
    .unwrap();
    let dest = dir.path().join("hosts");
    let vars: infra::Vars = json!({"title": "cluster", "hosts": ["a", "b"]})
        .as_object()
        .unwrap()
        .clone();
    let args = json!({"src": "hosts.j2", "dest": s(&dest), "mode": 0o640});
    let search = vec![dir.path().to_path_buf()];
    let check = run(
        &local_ctx(true, search.clone(), vars.clone()),
        "template",
        args.clone(),
    )
    .await
    .unwrap();
    assert!(check.changed() && !dest.exists());
    let ctx = local_ctx(false, search, vars);
    assert!(run(&ctx, "template", args.clone()).await.unwrap().changed());
    // trim_blocks on, lstrip_blocks off: the indentation before {% if %} stays.
    assert_eq!(
        read(&dest),
        "# cluster (Ansible managed)\na 1\nb 2\n  end\n  "
    );
    assert_eq!(mode_of(&dest), 0o640);
    let again = run(&ctx, "template", args.clone()).await.unwrap();
    assert!(!again.changed());
    let header = check.plan.changes[0]
        .diff
        .as_ref()
        .unwrap()
        .after_header
        .clone();
    assert_eq!(
        header,
        format!("after: {}", s(&dir.path().join("hosts.j2")))
    );

    let mut lstrip = args.clone();
    lstrip["lstrip_blocks"] = json!(true);
    run(&ctx, "template", lstrip).await.unwrap();
    assert_eq!(read(&dest), "# cluster (Ansible managed)\na 1\nb 2\nend\n");

    let bad = run(
        &ctx,
        "template",
        json!({"src": "hosts.j2", "dest": s(&dest)}),
    )
    .await;
    assert!(bad.is_ok());
    std::fs::write(dir.path().join("undef.j2"), "{{ nope }}\n").unwrap();
    let err = run(
        &ctx,
        "template",
        json!({"src": "undef.j2", "dest": s(&dest)}),
    )
    .await
    .err()
    .unwrap();
    assert!(format!("{err:#}").contains("undef.j2"), "{err:#}");
}

#[tokio::test]
async fn file_directory_link_hard_touch_absent() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("a/b");
    converge(
        dir.path(),
        "file",
        json!({"path": s(&d), "state": "directory", "mode": "0750"}),
        || {
            if d.is_dir() {
                format!("{:o}", mode_of(&d))
            } else {
                "absent".into()
            }
        },
    )
    .await;
    assert_eq!(mode_of(&d), 0o750);

    let l = dir.path().join("link");
    converge(
        dir.path(),
        "file",
        json!({"path": s(&l), "src": s(&d), "state": "link"}),
        || std::fs::read_link(&l).map(|t| s(&t)).unwrap_or_default(),
    )
    .await;
    assert_eq!(std::fs::read_link(&l).unwrap(), d);

    let f = dir.path().join("f");
    std::fs::write(&f, "x").unwrap();
    let h = dir.path().join("hard");
    converge(
        dir.path(),
        "file",
        json!({"path": s(&h), "src": s(&f), "state": "hard"}),
        || {
            std::fs::metadata(&h)
                .map(|m| m.ino().to_string())
                .unwrap_or_default()
        },
    )
    .await;
    assert_eq!(
        std::fs::metadata(&h).unwrap().ino(),
        std::fs::metadata(&f).unwrap().ino()
    );

    // touch: creates, then (like Ansible) changes every time unless times are preserved.
    let t = dir.path().join("touched");
    let ctx = local_ctx(false, vec![], Default::default());
    assert!(run(
        &ctx,
        "file",
        json!({"path": s(&t), "state": "touch", "mode": "u=rw,go=r"})
    )
    .await
    .unwrap()
    .changed());
    assert_eq!(mode_of(&t), 0o644);
    assert!(run(&ctx, "file", json!({"path": s(&t), "state": "touch"}))
        .await
        .unwrap()
        .changed());
    let keep = json!({"path": s(&t), "state": "touch", "modification_time": "preserve", "access_time": "preserve"});
    assert!(!run(&ctx, "file", keep).await.unwrap().changed());

    let check = converge(
        dir.path(),
        "file",
        json!({"path": s(&dir.path().join("a")), "state": "absent"}),
        || dir.path().join("a").exists().to_string(),
    )
    .await
    .0;
    assert_eq!(
        check.diff_text(),
        format!(
            "--- before: {p}\n+++ after: {p}\n@@ -1 +1 @@\n-state: directory\n+state: absent\n",
            p = s(&dir.path().join("a"))
        )
    );

    // state=file on a link follows it (follow defaults to yes): the target's mode changes.
    let target = dir.path().join("target");
    std::fs::write(&target, "t").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let via = dir.path().join("via");
    std::os::unix::fs::symlink("target", &via).unwrap();
    converge(
        dir.path(),
        "file",
        json!({"path": s(&via), "state": "file", "mode": "0640"}),
        || format!("{:o}", mode_of(&target)),
    )
    .await;
    assert_eq!(mode_of(&target), 0o640);
    assert!(std::fs::symlink_metadata(&via)
        .unwrap()
        .file_type()
        .is_symlink());

    // A file is not replaced by a link without force; state=file on a missing path fails.
    let plan = plan_only(
        &ctx,
        "file",
        json!({"path": s(&f), "src": "/etc", "state": "link"}),
    )
    .await
    .unwrap();
    assert!(plan.failed.is_some() && plan.ops.is_empty());
    let plan = plan_only(
        &ctx,
        "file",
        json!({"path": s(&dir.path().join("zz")), "state": "file"}),
    )
    .await
    .unwrap();
    assert!(plan.failed.unwrap().contains("is absent"));
}

#[tokio::test]
async fn file_recurse_sets_modes_and_owners_below() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("sub/f"), "x").unwrap();
    std::fs::set_permissions(root.join("sub/f"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let args = json!({"path": s(&root), "state": "directory", "recurse": true, "mode": "u=rwX,go=rX", "owner": "nobody"});
    converge(dir.path(), "file", args, || {
        format!(
            "{:o} {:o} {}",
            mode_of(&root.join("sub")),
            mode_of(&root.join("sub/f")),
            std::fs::metadata(root.join("sub/f")).unwrap().uid()
        )
    })
    .await;
    assert_eq!(mode_of(&root.join("sub/f")), 0o644);
    assert_eq!(mode_of(&root.join("sub")), 0o755);
}

#[tokio::test]
async fn lineinfile_replaces_last_match_and_converges() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sshd_config");
    std::fs::write(
        &p,
        "Port 22\n#PermitRootLogin yes\nPermitRootLogin yes\nX 1\n",
    )
    .unwrap();
    let args = json!({"path": s(&p), "regexp": "^#?PermitRootLogin", "line": "PermitRootLogin no"});
    let (check, first) = converge(dir.path(), "lineinfile", args, || read(&p)).await;
    assert_eq!(
        read(&p),
        "Port 22\n#PermitRootLogin yes\nPermitRootLogin no\nX 1\n"
    );
    assert_eq!(first.result()["msg"], "line replaced");
    assert_eq!(
        check.diff_text(),
        format!(
            "--- before: {p} (content)\n+++ after: {p} (content)\n@@ -1,4 +1,4 @@\n Port 22\n #PermitRootLogin yes\n-PermitRootLogin yes\n+PermitRootLogin no\n X 1\n",
            p = s(&p)
        )
    );
    // insertafter a regex; create a missing file.
    let args = json!({"path": s(&p), "line": "Port 2222", "insertafter": "^Port"});
    converge(dir.path(), "lineinfile", args, || read(&p)).await;
    assert_eq!(
        read(&p),
        "Port 22\nPort 2222\n#PermitRootLogin yes\nPermitRootLogin no\nX 1\n"
    );
    let newf = dir.path().join("new/conf");
    let args = json!({"path": s(&newf), "line": "a=1", "create": true, "mode": "0600"});
    converge(dir.path(), "lineinfile", args, || {
        std::fs::read_to_string(&newf).unwrap_or_default()
    })
    .await;
    assert_eq!((read(&newf).as_str(), mode_of(&newf)), ("a=1\n", 0o600));
    // absent; missing file without create fails.
    converge(
        dir.path(),
        "lineinfile",
        json!({"path": s(&p), "regexp": "^Port", "state": "absent"}),
        || read(&p),
    )
    .await;
    assert_eq!(read(&p), "#PermitRootLogin yes\nPermitRootLogin no\nX 1\n");
    let ctx = local_ctx(false, vec![], Default::default());
    let plan = plan_only(
        &ctx,
        "lineinfile",
        json!({"path": s(&dir.path().join("none")), "line": "x"}),
    )
    .await
    .unwrap();
    assert!(plan.failed.unwrap().contains("does not exist"));
}

#[tokio::test]
async fn blockinfile_inserts_updates_removes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("hosts");
    std::fs::write(&p, "127.0.0.1 localhost\n").unwrap();
    let args =
        json!({"path": s(&p), "block": "10.0.0.1 a\n10.0.0.2 b", "marker": "# {mark} infra"});
    converge(dir.path(), "blockinfile", args, || read(&p)).await;
    assert_eq!(
        read(&p),
        "127.0.0.1 localhost\n# BEGIN infra\n10.0.0.1 a\n10.0.0.2 b\n# END infra\n"
    );
    let args = json!({"path": s(&p), "block": "10.0.0.3 c", "marker": "# {mark} infra"});
    converge(dir.path(), "blockinfile", args, || read(&p)).await;
    assert_eq!(
        read(&p),
        "127.0.0.1 localhost\n# BEGIN infra\n10.0.0.3 c\n# END infra\n"
    );
    converge(
        dir.path(),
        "blockinfile",
        json!({"path": s(&p), "marker": "# {mark} infra", "state": "absent"}),
        || read(&p),
    )
    .await;
    assert_eq!(read(&p), "127.0.0.1 localhost\n");
}

#[tokio::test]
async fn stat_and_slurp_read_without_changing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    std::fs::write(&p, "abc").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
    let ctx = local_ctx(false, vec![], Default::default());
    let out = run(&ctx, "stat", json!({"path": s(&p)})).await.unwrap();
    assert!(!out.changed() && out.plan.ops.is_empty());
    let st = &out.result()["stat"];
    assert_eq!(st["exists"], true);
    assert_eq!(st["isreg"], true);
    assert_eq!(st["mode"], "0640");
    assert_eq!(st["size"], 3);
    assert_eq!(st["pw_name"], "root");
    assert_eq!(st["checksum"], "a9993e364706816aba3e25717850c26c9cd0d89d");
    let out = run(&ctx, "stat", json!({"path": s(&dir.path().join("none"))}))
        .await
        .unwrap();
    assert_eq!(out.result()["stat"], json!({"exists": false}));
    let out = run(&ctx, "stat", json!({"path": s(dir.path())}))
        .await
        .unwrap();
    assert_eq!(out.result()["stat"]["isdir"], true);

    let out = run(&ctx, "slurp", json!({"src": s(&p)})).await.unwrap();
    assert_eq!(out.result()["content"], "YWJj");
    assert_eq!(out.result()["encoding"], "base64");
    let plan = plan_only(&ctx, "slurp", json!({"src": s(&dir.path().join("none"))}))
        .await
        .unwrap();
    assert!(plan.failed.is_some());
}

#[tokio::test]
async fn command_and_shell_results_creates_removes() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = local_ctx(false, vec![], Default::default());
    let out = run(&ctx, "command", json!({"_raw_params": "echo 'a  b' $HOME"}))
        .await
        .unwrap();
    assert!(out.changed());
    let r = out.result();
    assert_eq!(r["rc"], 0);
    assert_eq!(r["stdout"], "a  b $HOME", "command does not expand");
    assert_eq!(r["stdout_lines"], json!(["a  b $HOME"]));
    assert_eq!(r["cmd"], json!(["echo", "a  b", "$HOME"]));
    assert!(r["delta"].as_str().unwrap().starts_with("0:00:00"));

    let out = run(&ctx, "shell", json!({"_raw_params": "echo one; echo two >&2; cat", "stdin": "in", "chdir": s(dir.path())})).await.unwrap();
    assert_eq!(out.result()["stdout"], "one\nin");
    assert_eq!(out.result()["stderr"], "two");
    assert_eq!(out.result()["stdout_lines"], json!(["one", "in"]));

    // In check mode an unconditional command is unpredictable and nothing runs.
    let marker = dir.path().join("made");
    let args = json!({"cmd": format!("touch {}", s(&marker)), "creates": s(&marker)});
    let check = run(
        &local_ctx(true, vec![], Default::default()),
        "shell",
        json!({"cmd": format!("touch {}", s(&marker))}),
    )
    .await
    .unwrap();
    assert!(check.plan.unpredictable && !marker.exists());
    let check = run(
        &local_ctx(true, vec![], Default::default()),
        "shell",
        args.clone(),
    )
    .await
    .unwrap();
    assert!(check.changed() && !check.plan.unpredictable && !marker.exists());
    assert!(run(&ctx, "shell", args.clone()).await.unwrap().changed());
    assert!(marker.exists());
    let again = run(&ctx, "shell", args).await.unwrap();
    assert!(!again.changed());
    assert!(again.result()["stdout"]
        .as_str()
        .unwrap()
        .starts_with("skipped, since"));
    // creates with a glob, removes.
    let glob = json!({"cmd": "false", "creates": format!("{}/ma*", s(dir.path()))});
    assert!(!run(&ctx, "shell", glob).await.unwrap().changed());
    let rm = json!({"_raw_params": format!("rm {}", s(&marker)), "removes": s(&marker)});
    assert!(run(&ctx, "command", rm.clone()).await.unwrap().changed());
    assert!(!run(&ctx, "command", rm).await.unwrap().changed());

    // A failing command fails the task with rc/stdout registered.
    let plan = plan_only(&ctx, "shell", json!({"_raw_params": "echo out; exit 3"}))
        .await
        .unwrap();
    let err = modules::apply(&ctx, &plan).await.unwrap_err();
    let f = err.downcast_ref::<OpFailed>().unwrap();
    assert_eq!(f.result["rc"], 3);
    assert_eq!(f.result["stdout"], "out");
    assert_eq!(f.result["failed"], true);
    assert_eq!(f.message, "non-zero return code");
}

/// A python http.server on 127.0.0.1, stopped on drop.
struct HttpServer {
    child: std::process::Child,
    port: u16,
}

impl HttpServer {
    fn start(root: &Path) -> HttpServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 is needed for the get_url test");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        HttpServer { child, port }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn get_url_downloads_verifies_and_converges() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("tool.bin"), "payload v1\n").unwrap();
    let server = HttpServer::start(&www);
    let url = format!("http://127.0.0.1:{}/tool.bin", server.port);
    let sum = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b"payload v1\n"))
    };
    let dest = dir.path().join("tool");
    let args =
        json!({"url": url, "dest": s(&dest), "checksum": format!("sha256:{sum}"), "mode": "0755"});
    converge(dir.path(), "get_url", args, || {
        std::fs::read_to_string(&dest).unwrap_or_default()
    })
    .await;
    assert_eq!(read(&dest), "payload v1\n");
    assert_eq!(mode_of(&dest), 0o755);

    // A wrong checksum fails and leaves nothing behind.
    let ctx = local_ctx(false, vec![], Default::default());
    let bad_dest = dir.path().join("bad");
    let plan = plan_only(
        &ctx,
        "get_url",
        json!({"url": url, "dest": s(&bad_dest), "checksum": "sha256:00"}),
    )
    .await
    .unwrap();
    let err = modules::apply(&ctx, &plan).await.unwrap_err();
    assert!(format!("{err:#}").contains("did not match"), "{err:#}");
    assert!(!bad_dest.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "no temp file left"
    );

    // force: a changed remote file is downloaded again, an unchanged one is not.
    let forced = json!({"url": url, "dest": s(&dest), "force": true});
    assert!(!run(&ctx, "get_url", forced.clone())
        .await
        .unwrap()
        .changed());
    std::fs::write(www.join("tool.bin"), "payload v2\n").unwrap();
    assert!(run(&ctx, "get_url", forced).await.unwrap().changed());
    assert_eq!(read(&dest), "payload v2\n");
    assert_eq!(mode_of(&dest), 0o755, "mode kept");

    // file:// URLs work too; a folder dest takes the URL's file name.
    let out = run(
        &ctx,
        "get_url",
        json!({"url": format!("file://{}", s(&www.join("tool.bin"))), "dest": s(dir.path())}),
    )
    .await
    .unwrap();
    assert!(out.changed());
    assert_eq!(read(&dir.path().join("tool.bin")), "payload v2\n");
}

fn make_tarball(path: &Path, files: &[(&str, &str)]) {
    let file = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut builder = tar::Builder::new(gz);
    for (name, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder
            .append_data(&mut header, name, content.as_bytes())
            .unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap();
}

#[tokio::test]
async fn unarchive_local_and_remote_tarballs() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    make_tarball(
        &files.join("app.tar.gz"),
        &[("app/bin/run", "#!/bin/sh\n"), ("app/README", "hi\n")],
    );
    let dest = dir.path().join("opt");
    std::fs::create_dir(&dest).unwrap();
    let args = json!({"src": "app.tar.gz", "dest": s(&dest)});
    converge(
        dir.path().join("files").as_path(),
        "unarchive",
        args,
        || std::fs::read_to_string(dest.join("app/README")).unwrap_or_default(),
    )
    .await;
    assert_eq!(read(&dest.join("app/bin/run")), "#!/bin/sh\n");
    let leftovers = std::fs::read_dir("/tmp")
        .unwrap()
        .filter(|e| {
            let n = e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .into_owned();
            n.starts_with(".infra-archive-") && n.ends_with("-app.tar.gz")
        })
        .count();
    assert_eq!(leftovers, 0, "the uploaded archive is removed");

    // A drifted file is restored.
    std::fs::write(dest.join("app/README"), "changed\n").unwrap();
    let ctx = local_ctx(false, vec![files.clone()], Default::default());
    assert!(run(
        &ctx,
        "unarchive",
        json!({"src": "app.tar.gz", "dest": s(&dest)})
    )
    .await
    .unwrap()
    .changed());
    assert_eq!(read(&dest.join("app/README")), "hi\n");

    // remote_src with tar --compare; creates short-circuits.
    let dest2 = dir.path().join("srv");
    std::fs::create_dir(&dest2).unwrap();
    let args = json!({"src": s(&files.join("app.tar.gz")), "dest": s(&dest2), "remote_src": true});
    converge(dir.path(), "unarchive", args, || {
        std::fs::read_to_string(dest2.join("app/README")).unwrap_or_default()
    })
    .await;
    let creates = json!({"src": "app.tar.gz", "dest": s(&dest2), "creates": s(&dest2.join("app"))});
    std::fs::remove_file(dest2.join("app/README")).unwrap();
    assert!(!run(&ctx, "unarchive", creates).await.unwrap().changed());

    let plan = plan_only(
        &ctx,
        "unarchive",
        json!({"src": "app.tar.gz", "dest": s(&dir.path().join("nodir"))}),
    )
    .await
    .unwrap();
    assert!(plan.failed.unwrap().contains("must be an existing dir"));
}

#[tokio::test]
async fn wait_for_ports_and_paths() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = local_ctx(true, vec![], Default::default());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = run(&ctx, "wait_for", json!({"port": port, "timeout": 5}))
        .await
        .unwrap();
    assert!(!out.changed());
    drop(listener);
    let plan = plan_only(
        &ctx,
        "wait_for",
        json!({"port": port, "timeout": 1, "sleep": 0.2}),
    )
    .await
    .unwrap();
    assert!(plan.failed.unwrap().contains(&format!("127.0.0.1:{port}")));
    let out = run(
        &ctx,
        "wait_for",
        json!({"port": port, "state": "stopped", "timeout": 2}),
    )
    .await
    .unwrap();
    assert!(!out.changed());

    // search_regex on a port reads what the service sends (a banner).
    let banner = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bport = banner.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in banner.incoming().flatten() {
            use std::io::Write;
            let _ = conn.write_all(b"SSH-2.0-infra_test\r\n");
        }
    });
    let out = run(
        &ctx,
        "wait_for",
        json!({"port": bport, "search_regex": "^SSH-2\\.0", "timeout": 5}),
    )
    .await
    .unwrap();
    assert!(!out.changed());
    let plan = plan_only(
        &ctx,
        "wait_for",
        json!({"port": bport, "search_regex": "nginx", "timeout": 1, "sleep": 0.3}),
    )
    .await
    .unwrap();
    assert!(plan.failed.is_some());

    // A file that appears with the right content while waiting.
    let p = dir.path().join("ready");
    let p2 = p.clone();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        std::fs::write(&p2, "status: ready\n").unwrap();
    });
    let started = std::time::Instant::now();
    run(
        &ctx,
        "wait_for",
        json!({"path": s(&p), "search_regex": "ready$", "timeout": 10, "sleep": 0.2}),
    )
    .await
    .unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(600));
    writer.await.unwrap();
}

#[tokio::test]
async fn action_modules() {
    let vars: infra::Vars = json!({"port": 8080, "names": ["a", "b"]})
        .as_object()
        .unwrap()
        .clone();
    let ctx = local_ctx(false, vec![], vars);
    let out = run(
        &ctx,
        "assert",
        json!({"that": ["port == 8080", "{{ names | length == 2 }}"]}),
    )
    .await
    .unwrap();
    assert_eq!(out.result()["msg"], "All assertions passed");
    let plan = plan_only(
        &ctx,
        "assert",
        json!({"that": "port > 9000", "fail_msg": "too low"}),
    )
    .await
    .unwrap();
    assert_eq!(plan.failed.as_deref(), Some("too low"));
    assert_eq!(plan.result["assertion"], "port > 9000");

    let out = run(&ctx, "debug", json!({"var": "names"})).await.unwrap();
    assert_eq!(out.result()["names"], json!(["a", "b"]));
    let out = run(&ctx, "debug", json!({"var": "missing"})).await.unwrap();
    assert_eq!(out.result()["missing"], "VARIABLE IS NOT DEFINED!");
    let out = run(&ctx, "debug", json!({"msg": "hi"})).await.unwrap();
    assert_eq!(out.result()["msg"], "hi");

    let out = run(&ctx, "set_fact", json!({"x": 1, "cacheable": true}))
        .await
        .unwrap();
    assert_eq!(out.result()["ansible_facts"], json!({"x": 1}));
    assert_eq!(out.result()["_ansible_facts_cacheable"], json!(true));
    let plan = plan_only(&ctx, "fail", json!({"msg": "stop"}))
        .await
        .unwrap();
    assert_eq!(plan.failed.as_deref(), Some("stop"));
    let out = run(&ctx, "ping", json!({})).await.unwrap();
    assert_eq!(out.result()["ping"], "pong");
    let started = std::time::Instant::now();
    run(&ctx, "pause", json!({"seconds": 1})).await.unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    // A timed pause shows its prompt and waits without reading input, as Ansible's does.
    let plan = plan_only(&ctx, "pause", json!({"prompt": "continue?", "seconds": 1}))
        .await
        .unwrap();
    assert_eq!(plan.result["user_input"], "");
    assert!(plan.result["stdout"]
        .as_str()
        .is_some_and(|s| s.starts_with("Paused for 1")));
    assert!(plan_only(&ctx, "pause", json!({"seconds": -1}))
        .await
        .is_err());
}

#[tokio::test]
async fn sysctl_file_only() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("99-infra.conf");
    std::fs::write(&p, "# tuning\nvm.swappiness = 60\n").unwrap();
    let args =
        json!({"name": "vm.swappiness", "value": "10", "sysctl_file": s(&p), "reload": false});
    converge(dir.path(), "sysctl", args, || read(&p)).await;
    assert_eq!(read(&p), "# tuning\nvm.swappiness=10\n");
}

#[tokio::test]
async fn unarchive_zip_archives() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("site")).unwrap();
    std::fs::write(src.join("site/index.html"), "<h1>hi</h1>\n").unwrap();
    let zip = dir.path().join("site.zip");
    let made = std::process::Command::new("python3")
        .args(["-m", "zipfile", "-c"])
        .arg(&zip)
        .arg("site")
        .current_dir(&src)
        .status()
        .expect("python3 is needed to build the zip");
    assert!(made.success());
    let dest = dir.path().join("www");
    std::fs::create_dir(&dest).unwrap();
    let args = json!({"src": "site.zip", "dest": s(&dest)});
    converge(dir.path(), "unarchive", args, || {
        std::fs::read_to_string(dest.join("site/index.html")).unwrap_or_default()
    })
    .await;
    assert_eq!(read(&dest.join("site/index.html")), "<h1>hi</h1>\n");
    let dest2 = dir.path().join("www2");
    std::fs::create_dir(&dest2).unwrap();
    let args = json!({"src": s(&zip), "dest": s(&dest2), "remote_src": true});
    converge(dir.path(), "unarchive", args, || {
        std::fs::read_to_string(dest2.join("site/index.html")).unwrap_or_default()
    })
    .await;
}
