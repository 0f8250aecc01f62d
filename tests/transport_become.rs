//! `become` through sudo over SSH, against a real sshd and real users created for the test
//! (useradd, a sudoers.d rule, chpasswd for the password case; removed afterwards).
//! Needs root and sudo (Debian: apt-get install sudo).

#[path = "support/sshd.rs"]
mod sshd;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use infra::transport::{
    connect, is_unreachable, Become, ExecOptions, FileAttrs, FileKind, Transport,
};
use sshd::TestSshd;

/// useradd/userdel lock /etc/passwd; one at a time within this test binary.
static USERS: Mutex<()> = Mutex::new(());

/// A Unix user that exists for the duration of a test.
struct TestUser {
    name: String,
    uid: u32,
    sudoers: PathBuf,
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn with_retries(mut f: impl FnMut() -> bool) {
    for _ in 0..20 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("user database stayed locked");
}

impl TestUser {
    /// `tag` keeps names apart; `password` is set with chpasswd (else the account gets `*`,
    /// unlocked for key logins); `sudo_rule` is the sudoers line's right-hand side.
    fn create(tag: &str, password: Option<&str>, sudo_rule: &str) -> TestUser {
        assert!(
            std::path::Path::new("/usr/bin/sudo").exists(),
            "sudo is not installed (apt-get install sudo)"
        );
        let name = format!("inftr{tag}{}", std::process::id());
        let _lock = USERS.lock().unwrap_or_else(|p| p.into_inner());
        // Left over from an aborted run?
        let _ = Command::new("userdel").args(["-r", "-f", &name]).output();
        with_retries(|| {
            Command::new("useradd")
                .args(["-m", "-s", "/bin/sh", &name])
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        });
        match password {
            Some(pw) => {
                use std::io::Write;
                let mut child = Command::new("chpasswd")
                    .stdin(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                writeln!(child.stdin.take().unwrap(), "{name}:{pw}").unwrap();
                assert!(child.wait().unwrap().success(), "chpasswd failed");
            }
            None => {
                run(Command::new("usermod").args(["-p", "*", &name]));
            }
        }
        let uid: u32 = run(Command::new("id").args(["-u", &name]))
            .trim()
            .parse()
            .unwrap();
        let sudoers = PathBuf::from(format!("/etc/sudoers.d/{name}"));
        std::fs::write(&sudoers, format!("{name} {sudo_rule}\n")).unwrap();
        std::fs::set_permissions(&sudoers, std::fs::Permissions::from_mode(0o440)).unwrap();
        run(Command::new("visudo").arg("-cf").arg(&sudoers));
        TestUser { name, uid, sudoers }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.sudoers);
        let _lock = USERS.lock().unwrap_or_else(|p| p.into_inner());
        let _ = Command::new("pkill")
            .args(["-KILL", "-u", &self.name])
            .output();
        with_retries(|| {
            Command::new("userdel")
                .args(["-r", "-f", &self.name])
                .output()
                .map(|o| o.status.success() || !String::from_utf8_lossy(&o.stderr).contains("lock"))
                .unwrap_or(true)
        });
    }
}

async fn login_as(server: &TestSshd, user: &TestUser) -> Arc<dyn Transport> {
    let mut spec = server.connect_spec("b1");
    spec.user = user.name.clone();
    spec.key_file = Some(server.new_client_key(&user.name, "ed25519"));
    connect(&spec)
        .await
        .unwrap_or_else(|e| panic!("login as {}: {e:#}\n{}", user.name, server.log()))
}

fn become_root(password: Option<&str>) -> Become {
    Become {
        user: "root".into(),
        password: password.map(str::to_string),
    }
}

/// A root-only directory (0700) holding a root-only file.
fn root_only_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "top secret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    (dir, secret)
}

#[tokio::test]
async fn passwordless_sudo_from_a_plain_user() {
    let user = TestUser::create("k", None, "ALL=(ALL:ALL) NOPASSWD: ALL");
    let server = TestSshd::start();
    let t = login_as(&server, &user).await;
    let root = become_root(None);
    let as_root = ExecOptions {
        become_: Some(root.clone()),
        ..Default::default()
    };

    let plain = t.exec("id -un", &ExecOptions::default()).await.unwrap();
    assert_eq!(plain.stdout.trim(), user.name);
    let out = t.exec("id -u", &as_root).await.unwrap();
    assert_eq!((out.rc, out.stdout.as_str()), (0, "0\n"), "{}", out.stderr);

    // stdin, environment, chdir and the exit status pass through sudo.
    let o = ExecOptions {
        stdin: Some(b"from stdin\n".to_vec()),
        env: vec![("X".into(), "it's x".into())],
        chdir: Some("/root".into()),
        become_: Some(root.clone()),
    };
    let out = t.exec("cat; echo \"$X\"; pwd; exit 5", &o).await.unwrap();
    assert_eq!(out.rc, 5);
    assert_eq!(out.stdout, "from stdin\nit's x\n/root\n");

    // Files only root can see.
    let (dir, secret) = root_only_dir();
    let secret_path = secret.to_str().unwrap();
    let err = t.read_file(secret_path, None).await.unwrap_err();
    assert!(!is_unreachable(&err), "{err:#}");
    assert!(format!("{err:#}").contains("b1"), "{err:#}");
    assert_eq!(
        t.read_file(secret_path, Some(&root)).await.unwrap(),
        Some(b"top secret\n".to_vec())
    );
    let s = t.stat(secret_path, Some(&root)).await.unwrap().unwrap();
    assert_eq!(
        (s.kind, s.mode, s.uid, s.size),
        (FileKind::File, 0o600, 0, 11)
    );
    let d = t
        .stat(dir.path().to_str().unwrap(), Some(&root))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((d.kind, d.mode), (FileKind::Directory, 0o700));
    std::os::unix::fs::symlink("secret", dir.path().join("link")).unwrap();
    let l = t
        .stat(dir.path().join("link").to_str().unwrap(), Some(&root))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (l.kind, l.link_target.as_deref()),
        (FileKind::Symlink, Some("secret"))
    );
    let missing = dir.path().join("missing");
    let missing = missing.to_str().unwrap();
    assert_eq!(t.stat(missing, Some(&root)).await.unwrap(), None);
    assert_eq!(t.read_file(missing, Some(&root)).await.unwrap(), None);

    // Writes as root: new file with attributes, then a rewrite that keeps them.
    let target = dir.path().join("conf");
    let path = target.to_str().unwrap();
    let attrs = FileAttrs {
        mode: Some(0o640),
        owner: Some(user.name.clone()),
        group: Some("root".into()),
    };
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 256) as u8).collect();
    t.write_file(path, &content, &attrs, Some(&root))
        .await
        .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), content);
    let meta = std::fs::metadata(&target).unwrap();
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        (0o640, user.uid, 0)
    );
    let inode = meta.ino();
    t.write_file(path, b"v2\n", &FileAttrs::default(), Some(&root))
        .await
        .unwrap();
    let meta = std::fs::metadata(&target).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"v2\n");
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        (0o640, user.uid, 0)
    );
    assert_ne!(meta.ino(), inode, "replaced by rename");
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, vec!["conf", "link", "secret"], "no temp file left");

    // A new file written as root without attributes: root's, 0644.
    let fresh = dir.path().join("fresh");
    t.write_file(
        fresh.to_str().unwrap(),
        b"x",
        &FileAttrs::default(),
        Some(&root),
    )
    .await
    .unwrap();
    let meta = std::fs::metadata(&fresh).unwrap();
    assert_eq!((meta.mode() & 0o7777, meta.uid()), (0o644, 0));
}

#[tokio::test]
async fn root_login_skips_sudo_for_root_and_uses_it_for_other_users() {
    let user = TestUser::create("o", None, "ALL=(ALL:ALL) NOPASSWD: ALL");
    let server = TestSshd::start();
    let t = connect(&server.connect_spec("r1")).await.unwrap();

    let same = ExecOptions {
        become_: Some(become_root(None)),
        ..Default::default()
    };
    let out = t
        .exec("echo \"${SUDO_USER:-no sudo}\"", &same)
        .await
        .unwrap();
    assert_eq!(out.stdout, "no sudo\n");

    let other = Become {
        user: user.name.clone(),
        password: None,
    };
    let o = ExecOptions {
        become_: Some(other.clone()),
        ..Default::default()
    };
    let out = t.exec("id -un; echo \"$SUDO_USER\"", &o).await.unwrap();
    assert_eq!(out.stdout, format!("{}\nroot\n", user.name));

    // A file written as that user belongs to it.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(dir.path(), Some(user.uid), None).unwrap();
    let target = dir.path().join("mine");
    t.write_file(
        target.to_str().unwrap(),
        b"hi",
        &FileAttrs::default(),
        Some(&other),
    )
    .await
    .unwrap();
    let meta = std::fs::metadata(&target).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (user.uid, 0o644));
    // ... and that user cannot write where it has no permission: a failure, not unreachable.
    let err = t
        .write_file(
            "/root/infra-not-allowed",
            b"x",
            &FileAttrs::default(),
            Some(&other),
        )
        .await
        .unwrap_err();
    assert!(!is_unreachable(&err), "{err:#}");
    assert!(
        format!("{err:#}").contains("write /root/infra-not-allowed"),
        "{err:#}"
    );
    assert!(!std::path::Path::new("/root/infra-not-allowed").exists());
}

#[tokio::test]
async fn sudo_with_a_password() {
    let password = "s3cret 'pw'";
    let user = TestUser::create("p", Some(password), "ALL=(ALL:ALL) ALL");
    let server = TestSshd::start();
    let t = login_as(&server, &user).await;
    let root = become_root(Some(password));

    let o = ExecOptions {
        stdin: Some(b"only this\n".to_vec()),
        become_: Some(root.clone()),
        ..Default::default()
    };
    let out = t.exec("id -u; cat", &o).await.unwrap();
    assert_eq!(out.rc, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout, "0\nonly this\n",
        "the password must not reach the command"
    );
    assert!(
        !out.stderr.contains("password"),
        "prompt leaked: {}",
        out.stderr
    );

    // Files through a password sudo: the content follows the password on stdin.
    let (dir, secret) = root_only_dir();
    assert_eq!(
        t.read_file(secret.to_str().unwrap(), Some(&root))
            .await
            .unwrap(),
        Some(b"top secret\n".to_vec())
    );
    let target = dir.path().join("written");
    t.write_file(
        target.to_str().unwrap(),
        b"content\n",
        &FileAttrs {
            mode: Some(0o600),
            ..Default::default()
        },
        Some(&root),
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"content\n");
    assert_eq!(std::fs::metadata(&target).unwrap().uid(), 0);

    // Wrong password: a clear failure (not unreachable), without waiting for 3 attempts.
    let wrong = ExecOptions {
        become_: Some(become_root(Some("wrong"))),
        ..Default::default()
    };
    let started = Instant::now();
    let err = t.exec("id -u", &wrong).await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("incorrect become password"), "{msg}");
    assert!(msg.contains("b1"), "{msg}");
    assert!(!is_unreachable(&err));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );

    // No password where sudo needs one.
    let none = ExecOptions {
        become_: Some(become_root(None)),
        ..Default::default()
    };
    let err = t.exec("id -u", &none).await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("requires a password"), "{msg}");
    assert!(!is_unreachable(&err));

    // The connection is still fine after the refusals.
    assert_eq!(
        t.exec("echo ok", &ExecOptions::default())
            .await
            .unwrap()
            .stdout,
        "ok\n"
    );
}
