//! The SSH transport against real OpenSSH sshd processes on 127.0.0.1 (as root): exec,
//! stat/read/write over SFTP, concurrency on one connection, host-key checking, key types,
//! and unreachable hosts.

#[path = "support/sshd.rs"]
mod sshd;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

use infra::transport::{connect, is_unreachable, ExecOptions, FileAttrs, FileKind, Transport};
use sshd::TestSshd;

async fn connected(server: &TestSshd) -> Arc<dyn Transport> {
    connect(&server.connect_spec("h1"))
        .await
        .unwrap_or_else(|e| panic!("connect: {e:#}\nsshd log:\n{}", server.log()))
}

fn opts() -> ExecOptions {
    ExecOptions::default()
}

#[tokio::test]
async fn exec_returns_stdout_stderr_and_exit_status() {
    let server = TestSshd::start();
    let t = connected(&server).await;
    assert_eq!(t.host(), "h1");
    let out = t
        .exec("echo out; echo err >&2; exit 3", &opts())
        .await
        .unwrap();
    assert_eq!(out.rc, 3);
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    let ok = t.exec("true", &opts()).await.unwrap();
    assert_eq!((ok.rc, ok.stdout.as_str()), (0, ""));
    // Non-UTF-8 output is converted lossily, not an error.
    let bin = t.exec("printf 'a\\377b'", &opts()).await.unwrap();
    assert_eq!(bin.stdout, "a\u{fffd}b");
}

#[tokio::test]
async fn exec_feeds_stdin_then_eof() {
    let server = TestSshd::start();
    let t = connected(&server).await;
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let o = ExecOptions {
        stdin: Some(big.clone()),
        ..opts()
    };
    let out = t.exec("wc -c", &o).await.unwrap();
    assert_eq!(out.stdout.trim(), big.len().to_string());
    let o = ExecOptions {
        stdin: Some(b"line1\nline2\n".to_vec()),
        ..opts()
    };
    assert_eq!(t.exec("cat", &o).await.unwrap().stdout, "line1\nline2\n");
    // Without stdin the command sees EOF at once instead of hanging.
    assert_eq!(t.exec("cat", &opts()).await.unwrap().stdout, "");
    // A command that does not read its (large) stdin still finishes.
    let o = ExecOptions {
        stdin: Some(vec![b'x'; 8_000_000]),
        ..opts()
    };
    let out = tokio::time::timeout(Duration::from_secs(30), t.exec("echo done", &o))
        .await
        .expect("must not wait for stdin nobody reads")
        .unwrap();
    assert_eq!(out.stdout, "done\n");
    assert_eq!(
        t.exec("echo still usable", &opts()).await.unwrap().stdout,
        "still usable\n"
    );
}

#[tokio::test]
async fn exec_sets_environment_and_working_directory() {
    let server = TestSshd::start();
    let t = connected(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("with space");
    std::fs::create_dir(&sub).unwrap();
    let o = ExecOptions {
        env: vec![
            ("GREETING".into(), "it's $HOME `x`".into()),
            ("OTHER".into(), "2".into()),
        ],
        chdir: Some(sub.to_str().unwrap().to_string()),
        ..opts()
    };
    let out = t
        .exec("printf '%s|%s|%s' \"$GREETING\" \"$OTHER\" \"$(pwd)\"", &o)
        .await
        .unwrap();
    assert_eq!(out.stdout, format!("it's $HOME `x`|2|{}", sub.display()));
    let missing = ExecOptions {
        chdir: Some("/nonexistent/dir".into()),
        ..opts()
    };
    let out = t.exec("echo should-not-run", &missing).await.unwrap();
    assert_ne!(out.rc, 0);
    assert_eq!(out.stdout, "");
}

#[tokio::test]
async fn stat_sees_files_directories_symlinks_and_missing_paths() {
    let server = TestSshd::start();
    let t = connected(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    std::fs::write(&f, "12345").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink("f", dir.path().join("link")).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();

    let s = t.stat(f.to_str().unwrap(), None).await.unwrap().unwrap();
    assert_eq!(s.kind, FileKind::File);
    assert_eq!(s.mode, 0o640);
    assert_eq!(s.size, 5);
    assert_eq!(s.uid, 0);
    let meta = std::fs::metadata(&f).unwrap();
    assert_eq!(s.mtime, meta.mtime());

    let d = t
        .stat(dir.path().to_str().unwrap(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.kind, FileKind::Directory);
    assert_eq!(d.mode, 0o711);

    let l = t
        .stat(dir.path().join("link").to_str().unwrap(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(l.kind, FileKind::Symlink);
    assert_eq!(l.link_target.as_deref(), Some("f"));

    let missing = dir.path().join("nope");
    assert_eq!(t.stat(missing.to_str().unwrap(), None).await.unwrap(), None);
    assert_eq!(
        t.stat(missing.join("deeper").to_str().unwrap(), None)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn read_file_returns_bytes_or_none() {
    let server = TestSshd::start();
    let t = connected(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("data.bin");
    let content: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&f, &content).unwrap();
    assert_eq!(
        t.read_file(f.to_str().unwrap(), None).await.unwrap(),
        Some(content)
    );
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    assert_eq!(
        t.read_file(empty.to_str().unwrap(), None).await.unwrap(),
        Some(Vec::new())
    );
    let missing = dir.path().join("missing");
    assert_eq!(
        t.read_file(missing.to_str().unwrap(), None).await.unwrap(),
        None
    );
    // A directory is an error that names host and operation, not "missing".
    let err = t
        .read_file(dir.path().to_str().unwrap(), None)
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("h1") && msg.contains("read"), "{msg}");
    assert!(!is_unreachable(&err));
}

fn dir_names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn write_file_is_atomic_and_sets_content_mode_and_owner() {
    let server = TestSshd::start();
    let t = connected(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("app.conf");
    let path = target.to_str().unwrap();

    // New file with explicit attributes (names resolved on the host).
    let attrs = FileAttrs {
        mode: Some(0o600),
        owner: Some("nobody".into()),
        group: Some("nogroup".into()),
    };
    t.write_file(path, b"first\n", &attrs, None).await.unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"first\n");
    let meta = std::fs::metadata(&target).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o600);
    assert_eq!(meta.uid(), 65534);
    assert_eq!(meta.gid(), 65534);
    assert_eq!(dir_names(dir.path()), vec!["app.conf"]);

    // Rewriting without attributes keeps owner and mode, and replaces the inode.
    let inode_before = meta.ino();
    let reader = std::fs::File::open(&target).unwrap();
    t.write_file(path, b"second\n", &FileAttrs::default(), None)
        .await
        .unwrap();
    let meta = std::fs::metadata(&target).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"second\n");
    assert_eq!(meta.mode() & 0o7777, 0o600);
    assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
    assert_ne!(
        meta.ino(),
        inode_before,
        "the file must be replaced by rename"
    );
    // A reader that had the old file open still sees the old content, whole.
    let mut old = String::new();
    std::io::Read::read_to_string(&mut &reader, &mut old).unwrap();
    assert_eq!(old, "first\n");
    assert_eq!(dir_names(dir.path()), vec!["app.conf"]);

    // Only the mode changes when only the mode is given; numeric ids work too.
    let attrs = FileAttrs {
        mode: Some(0o4755),
        owner: Some("0".into()),
        group: None,
    };
    t.write_file(path, b"third", &attrs, None).await.unwrap();
    let meta = std::fs::metadata(&target).unwrap();
    assert_eq!(
        meta.mode() & 0o7777,
        0o4755,
        "mode set after chown keeps setuid"
    );
    assert_eq!((meta.uid(), meta.gid()), (0, 65534));

    // A new file without attributes gets 0644.
    let fresh = dir.path().join("fresh");
    t.write_file(fresh.to_str().unwrap(), b"", &FileAttrs::default(), None)
        .await
        .unwrap();
    assert_eq!(std::fs::metadata(&fresh).unwrap().mode() & 0o7777, 0o644);
    assert_eq!(dir_names(dir.path()), vec!["app.conf", "fresh"]);

    // A big file arrives whole.
    let big: Vec<u8> = (0..1_500_000u32).map(|i| (i % 253) as u8).collect();
    t.write_file(path, &big, &FileAttrs::default(), None)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), big);
}

#[tokio::test]
async fn mkdir_makes_missing_parents_then_sets_owner_and_mode() {
    let server = TestSshd::start();
    let t = connected(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let leaf = dir.path().join("a/b/c");
    let path = leaf.to_str().unwrap();

    t.mkdir(path, Some(0o2750), (Some(65534), Some(65534)), None)
        .await
        .unwrap();
    let meta = std::fs::metadata(&leaf).unwrap();
    assert!(meta.is_dir());
    assert_eq!(
        meta.mode() & 0o7777,
        0o2750,
        "mode set after chown keeps setgid"
    );
    assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
    // Parents are made as `mkdir -p` makes them: the login user's, the default mode.
    let parent = std::fs::metadata(dir.path().join("a/b")).unwrap();
    assert_eq!(parent.uid(), 0);
    assert_eq!(parent.mode() & 0o7777, 0o755);

    // An existing directory only gets the owner and mode; only the group is given here.
    t.mkdir(path, None, (None, Some(0)), None).await.unwrap();
    let meta = std::fs::metadata(&leaf).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (65534, 0));

    // A file in the way is an error naming the path.
    std::fs::write(dir.path().join("file"), "x").unwrap();
    let blocked = dir.path().join("file/sub");
    let err = t
        .mkdir(blocked.to_str().unwrap(), None, (None, None), None)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("file/sub"), "{err:#}");
}

#[tokio::test]
async fn failed_write_leaves_target_and_no_temp_file() {
    let server = TestSshd::start();
    let t = connected(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("keep");
    std::fs::write(&target, "original").unwrap();
    let attrs = FileAttrs {
        owner: Some("no-such-user-infra".into()),
        ..FileAttrs::default()
    };
    let err = t
        .write_file(target.to_str().unwrap(), b"new", &attrs, None)
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("h1") && msg.contains("no-such-user-infra"),
        "{msg}"
    );
    assert!(!is_unreachable(&err));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "original");
    assert_eq!(dir_names(dir.path()), vec!["keep"]);

    // Into a directory that does not exist: an error, nothing created.
    let err = t
        .write_file(
            "/nonexistent-infra-dir/x",
            b"new",
            &FileAttrs::default(),
            None,
        )
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("write /nonexistent-infra-dir/x"));
}

#[tokio::test]
async fn concurrent_execs_share_one_connection() {
    let server = TestSshd::start();
    let t = connected(&server).await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let cmd = format!("s=$(date +%s%N); sleep 0.5; e=$(date +%s%N); echo {i} $s $e");
            t.exec(&cmd, &ExecOptions::default()).await
        }));
    }
    // SFTP interleaves with the execs on the same connection.
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5 {
        let p = dir.path().join(format!("f{i}"));
        t.write_file(
            p.to_str().unwrap(),
            format!("{i}").as_bytes(),
            &FileAttrs::default(),
            None,
        )
        .await
        .unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), i.to_string());
    }
    let mut spans: Vec<(u128, u128)> = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let out = task.await.unwrap().unwrap();
        let fields: Vec<&str> = out.stdout.split_whitespace().collect();
        assert_eq!(fields[0], i.to_string());
        spans.push((fields[1].parse().unwrap(), fields[2].parse().unwrap()));
    }
    // How many commands ran at the same moment, as the host's clock saw it.
    let most_at_once = spans
        .iter()
        .map(|(start, _)| {
            spans
                .iter()
                .filter(|(s, e)| s <= start && start < e)
                .count()
        })
        .max()
        .unwrap();
    assert!(most_at_once >= 3, "commands did not overlap: {spans:?}");
    assert!(
        most_at_once <= 8,
        "more channels than MaxSessions allows: {most_at_once}"
    );
    let logins = server.log().matches("Accepted publickey for root").count();
    assert_eq!(
        logins,
        1,
        "one SSH connection for everything:\n{}",
        server.log()
    );
}

#[tokio::test]
async fn unknown_host_key_fails_unless_accept_new_and_is_then_recorded() {
    let server = TestSshd::start();
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("sub").join("known_hosts");
    let mut spec = server.connect_spec("web1");
    spec.known_hosts = vec![known.clone()];

    let err = connect(&spec).await.err().expect("unknown key must fail");
    let msg = format!("{err:#}");
    assert!(is_unreachable(&err), "{msg}");
    assert!(
        msg.contains(&format!(
            "host key for [127.0.0.1]:{} not known",
            server.port
        )),
        "{msg}"
    );
    assert!(msg.contains("--accept-new-host-keys"), "{msg}");
    assert!(msg.contains("web1"), "{msg}");
    assert!(!known.exists());

    spec.accept_new = true;
    let t = connect(&spec).await.unwrap();
    assert_eq!(t.exec("echo hi", &opts()).await.unwrap().stdout, "hi\n");
    let recorded = std::fs::read_to_string(&known).unwrap();
    assert_eq!(recorded, format!("{}\n", server.known_hosts_line()));

    // Now known: passes without the flag, and nothing more is recorded.
    spec.accept_new = false;
    connect(&spec).await.unwrap();
    assert_eq!(std::fs::read_to_string(&known).unwrap(), recorded);
}

#[tokio::test]
async fn known_hosts_accepts_hashed_entries_and_any_listed_file() {
    let server = TestSshd::start();
    let dir = tempfile::tempdir().unwrap();
    let hashed = dir.path().join("hashed");
    std::fs::write(
        &hashed,
        format!("# a comment\n{}\n", server.known_hosts_line()),
    )
    .unwrap();
    let status = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&hashed)
        .output()
        .unwrap();
    assert!(status.status.success());
    let text = std::fs::read_to_string(&hashed).unwrap();
    assert!(
        text.contains("|1|") && !text.contains("127.0.0.1"),
        "{text}"
    );

    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let mut spec = server.connect_spec("h1");
    spec.known_hosts = vec![empty.clone(), hashed];
    let t = connect(&spec).await.unwrap();
    assert_eq!(t.exec("echo ok", &opts()).await.unwrap().stdout, "ok\n");
    assert_eq!(std::fs::read_to_string(&empty).unwrap(), "");
}

#[tokio::test]
async fn changed_host_key_always_fails_and_names_the_old_line() {
    let first = TestSshd::start();
    let port = first.port;
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known_hosts");
    std::fs::write(
        &known,
        format!("# header\nother.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ\n{}\n", first.known_hosts_line()),
    )
    .unwrap();
    let mut spec = first.connect_spec("db1");
    spec.known_hosts = vec![known.clone()];
    connect(&spec).await.unwrap();
    drop(first);

    // Another server (other host keys) on the same address and port.
    let second = TestSshd::builder().port(port).start();
    spec.key_file = Some(second.client_key_path.clone());
    for accept_new in [false, true] {
        spec.accept_new = accept_new;
        let err = connect(&spec).await.err().expect("changed key must fail");
        let msg = format!("{err:#}");
        assert!(is_unreachable(&err), "{msg}");
        assert!(msg.contains("CHANGED"), "{msg}");
        assert!(msg.contains(&format!("{}:3", known.display())), "{msg}");
        assert!(msg.contains("db1"), "{msg}");
    }
    // Nothing was recorded over the old key.
    assert_eq!(std::fs::read_to_string(&known).unwrap().lines().count(), 3);
}

#[tokio::test]
async fn server_with_only_rsa_or_ecdsa_host_keys_is_verified() {
    for key_type in ["rsa", "ecdsa"] {
        let server = TestSshd::builder().host_key_types(&[key_type]).start();
        let t = connected(&server).await;
        assert_eq!(t.exec("echo ok", &opts()).await.unwrap().stdout, "ok\n");
    }
    // A host known only by its RSA key is checked against that key even though it also
    // offers ed25519 (which russh would otherwise prefer and find "unknown").
    let server = TestSshd::builder()
        .host_key_types(&["rsa", "ed25519"])
        .start();
    assert!(server.host_pubkey.starts_with("ssh-rsa "));
    let t = connected(&server).await;
    assert_eq!(t.exec("echo ok", &opts()).await.unwrap().stdout, "ok\n");
}

#[tokio::test]
async fn rsa_and_ecdsa_client_keys_log_in() {
    let server = TestSshd::start();
    for key_type in ["rsa", "ecdsa"] {
        let mut spec = server.connect_spec("h1");
        spec.key_file = Some(server.new_client_key("root", key_type));
        let t = connect(&spec)
            .await
            .unwrap_or_else(|e| panic!("{key_type}: {e:#}\n{}", server.log()));
        assert_eq!(t.exec("id -u", &opts()).await.unwrap().stdout, "0\n");
    }
    let log = server.log();
    assert!(
        log.contains("Accepted publickey for root") && log.contains("RSA"),
        "{log}"
    );
    assert!(log.contains("ECDSA"), "{log}");
}

#[tokio::test]
async fn wrong_key_is_an_unreachable_login_failure() {
    let server = TestSshd::start();
    let dir = tempfile::tempdir().unwrap();
    let stranger = sshd::keygen(dir.path(), "stranger", "ed25519");
    let mut spec = server.connect_spec("h1");
    spec.key_file = Some(stranger.clone());
    let err = connect(&spec).await.err().expect("must fail");
    let msg = format!("{err:#}");
    assert!(is_unreachable(&err), "{msg}");
    assert!(msg.contains("authentication as root failed"), "{msg}");
    assert!(msg.contains(stranger.to_str().unwrap()), "{msg}");

    spec.key_file = Some(dir.path().join("no-such-key"));
    let msg = format!("{:#}", connect(&spec).await.err().unwrap());
    assert!(msg.contains("no-such-key"), "{msg}");
}

#[tokio::test]
async fn refused_connection_is_unreachable_after_retries() {
    // A port with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spec = infra::transport::ConnectSpec {
        name: "down1".into(),
        address: "127.0.0.1".into(),
        port,
        user: "root".into(),
        retries: 2,
        connect_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let started = Instant::now();
    let err = connect(&spec).await.err().expect("nothing listens there");
    let msg = format!("{err:#}");
    assert!(is_unreachable(&err), "{msg}");
    assert!(
        msg.contains("down1") && msg.contains("after 3 attempts"),
        "{msg}"
    );
    assert!(msg.to_lowercase().contains("refused"), "{msg}");
    // Backoff between the attempts (250 ms + 500 ms).
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_server_that_comes_up_during_the_retries_is_reached() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let key = sshd::keygen(dir.path(), "client", "ed25519");
    let server_key = key.clone();
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(600));
        TestSshd::builder()
            .port(port)
            .client_key(&server_key)
            .start()
    });
    let spec = infra::transport::ConnectSpec {
        name: "late".into(),
        address: "127.0.0.1".into(),
        port,
        user: "root".into(),
        key_file: Some(key),
        known_hosts: vec![dir.path().join("known_hosts")],
        accept_new: true,
        retries: 10,
        connect_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let t = connect(&spec).await.unwrap();
    let server = starter.join().unwrap();
    assert_eq!(t.exec("echo up", &opts()).await.unwrap().stdout, "up\n");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("known_hosts")).unwrap(),
        format!("{}\n", server.known_hosts_line())
    );
}

#[tokio::test]
async fn a_dropped_connection_makes_later_operations_unreachable() {
    let mut server = TestSshd::start();
    let t = connected(&server).await;
    t.exec("true", &opts()).await.unwrap();
    server.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = t.exec("true", &opts()).await.unwrap_err();
    assert!(is_unreachable(&err), "{err:#}");
    assert!(format!("{err:#}").contains("h1"));
    let err = t.stat("/etc/hostname", None).await.unwrap_err();
    assert!(is_unreachable(&err), "{err:#}");
}

#[tokio::test]
async fn a_host_that_stops_answering_is_unreachable_within_seconds() {
    let server = TestSshd::start();
    let t = connected(&server).await;
    t.exec("true", &opts()).await.unwrap();
    server.freeze();
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(60), t.exec("true", &opts())).await;
    server.thaw();
    let err = result
        .expect("a silent host must not hang the run")
        .unwrap_err();
    assert!(is_unreachable(&err), "{err:#}");
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_failing_command_is_not_unreachable() {
    let server = TestSshd::start();
    let t = connected(&server).await;
    let out = t.exec("exit 42", &opts()).await.unwrap();
    assert_eq!(out.rc, 42);
    let out = t.exec("kill -TERM $$", &opts()).await.unwrap();
    assert_ne!(out.rc, 0);
    t.close().await;
}

#[tokio::test]
async fn connect_with_local_gives_the_controller_itself() {
    let spec = infra::transport::ConnectSpec {
        name: "localhost".into(),
        local: true,
        ..Default::default()
    };
    let t = connect(&spec).await.unwrap();
    assert_eq!(t.host(), "localhost");
    let out = t.exec("echo hello; exit 4", &opts()).await.unwrap();
    assert_eq!((out.rc, out.stdout.as_str()), (4, "hello\n"));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x");
    t.write_file(p.to_str().unwrap(), b"local", &FileAttrs::default(), None)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"local");
}
