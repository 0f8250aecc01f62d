//! `copy` of a big file to a real host over SSH: a docker host made by the provider, as
//! `infra up` makes them, reached by the SSH transport. A converged big copy compares the
//! host's file by size and by the SHA-1 the host computes (`sha1sum`, through sudo when the
//! task becomes root) instead of reading it back; a file of the same size with other
//! content is found changed and rewritten; check mode writes nothing; a host without
//! `sha1sum` gets the file read as before. What crossed the connection is what the SSH
//! transport counts (`infra::transport::ssh::stats`: execs, bytes the host sent back), and
//! the host's file is checked with `docker exec`, outside the code under test.

#[path = "support/provider.rs"]
mod provider_support;
#[path = "support/modules.rs"]
mod support_modules;

use std::path::Path;
use std::sync::Arc;

use infra::modules::HostCtx;
use infra::transport::ssh::{self, SshStats};
use infra::transport::{connect, Become, ConnectSpec, Transport};
use provider_support::{docker_exec, OneHost};
use serde_json::{json, Value};
use support_modules::{ctx_on, run, Outcome};

/// Bigger than the size from which copy compares on the host (1 MiB), not a multiple of
/// the SFTP chunk.
const SIZE: usize = 2 * 1024 * 1024 + 3;

/// Content that compresses badly and has no long runs: a simple xorshift stream.
fn big_content() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sha1_hex(content: &[u8]) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(content))
}

/// The SSH connection to the host as `user`, with the cluster's key and known_hosts.
async fn transport(host: &OneHost, user: &str) -> Arc<dyn Transport> {
    let inventory = host.attached_inventory().await;
    let vars = inventory.host_vars("node01");
    let var = |name: &str| match vars.get(name) {
        Some(Value::String(s)) => s.clone(),
        other => panic!("{name} of the attached host: {other:?}"),
    };
    let spec = ConnectSpec {
        name: "node01".into(),
        address: var("ansible_host"),
        port: 22,
        user: user.into(),
        key_file: Some(var("ansible_ssh_private_key_file").into()),
        known_hosts: vec![host.state.known_hosts_path()],
        connect_timeout: std::time::Duration::from_secs(10),
        retries: 3,
        ..Default::default()
    };
    connect(&spec).await.expect("connect to the test host")
}

fn ctx(transport: &Arc<dyn Transport>, check: bool, dir: &Path, become_: bool) -> HostCtx {
    let mut ctx = ctx_on(
        transport.clone(),
        check,
        vec![dir.to_path_buf()],
        Default::default(),
    );
    if become_ {
        ctx.become_ = Some(Become {
            user: "root".into(),
            password: None,
        });
    }
    ctx
}

/// Runs the copy task; the outcome and the SSH work it did.
async fn copy(ctx: &HostCtx, args: &Value) -> (Outcome, SshStats) {
    let before = ssh::stats();
    let outcome = run(ctx, "copy", args.clone())
        .await
        .unwrap_or_else(|e| panic!("copy {args}: {e:#}"));
    (outcome, ssh::stats().since(&before))
}

/// The host's SHA-1 of `path`, or "missing", read with `docker exec`.
fn host_sum(container: &str, path: &str) -> String {
    docker_exec(
        container,
        &format!("if [ -e {path} ]; then sha1sum < {path} | cut -d' ' -f1; else echo missing; fi"),
    )
    .trim()
    .to_string()
}

/// Overwrites one byte of the host's file in place (same size, other content).
fn flip_byte(container: &str, path: &str, content: &[u8], offset: usize) {
    let other = content[offset] ^ 0xff;
    docker_exec(
        container,
        &format!(
            "printf '\\{other:03o}' | dd of={path} bs=1 seek={offset} conv=notrunc status=none"
        ),
    );
}

/// Each converged plan below must be far from a read-back: the file is 2 MiB.
const SMALL_TRANSFER: u64 = 4096;

#[tokio::test]
async fn big_copy_compares_on_the_host_without_reading_the_file_back() {
    let host = OneHost::up("bigcopy", &[]).await;
    let container = host.container();
    let dir = tempfile::tempdir().unwrap();
    let content = big_content();
    let want = sha1_hex(&content);
    std::fs::write(dir.path().join("big.bin"), &content).unwrap();
    let dest = "/opt/big.bin";
    let args = json!({"src": "big.bin", "dest": dest, "mode": "0755"});
    let root = transport(&host, "root").await;

    // Check mode on a host without the file: changed, nothing written.
    let (check, _) = copy(&ctx(&root, true, dir.path(), false), &args).await;
    assert!(check.changed());
    assert_eq!(host_sum(&container, dest), "missing");

    let (first, _) = copy(&ctx(&root, false, dir.path(), false), &args).await;
    assert!(first.changed());
    assert_eq!(host_sum(&container, dest), want);
    assert_eq!(first.result()["checksum"], json!(want));

    // (a) Converged: ok, one exec (sha1sum) and a few bytes back, not the file.
    for check_mode in [false, true] {
        let (again, work) = copy(&ctx(&root, check_mode, dir.path(), false), &args).await;
        assert!(
            !again.changed(),
            "check {check_mode}: {:?}",
            again.plan.changes
        );
        assert!(again.plan.ops.is_empty());
        assert_eq!(work.execs, 1, "check {check_mode}: {work:?}");
        assert!(work.bytes_received < SMALL_TRANSFER, "{work:?}");
        assert_eq!(again.result()["checksum"], json!(want));
    }

    // (b) and (c): the same size, other content. Check mode finds it changed (by the
    // host's checksum, without reading the file back) and leaves it; a run rewrites it.
    flip_byte(&container, dest, &content, SIZE / 2);
    let tampered = host_sum(&container, dest);
    assert_ne!(tampered, want);
    let (check, work) = copy(&ctx(&root, true, dir.path(), false), &args).await;
    assert!(check.changed(), "{:?}", check.plan.changes);
    assert_eq!(work.execs, 1, "{work:?}");
    assert!(work.bytes_received < SMALL_TRANSFER, "{work:?}");
    assert_eq!(
        check.diff_text(),
        "",
        "a big file is summarised, not diffed"
    );
    assert_eq!(host_sum(&container, dest), tampered, "check mode wrote");
    let (fixed, _) = copy(&ctx(&root, false, dir.path(), false), &args).await;
    assert!(fixed.changed());
    assert_eq!(host_sum(&container, dest), want);

    // Another size: changed without running anything or reading the file.
    docker_exec(&container, &format!("truncate -s -1 {dest}"));
    let (check, work) = copy(&ctx(&root, true, dir.path(), false), &args).await;
    assert!(check.changed());
    assert_eq!(work.execs, 0, "{work:?}");
    assert!(work.bytes_received < SMALL_TRANSFER, "{work:?}");
    let (fixed, _) = copy(&ctx(&root, false, dir.path(), false), &args).await;
    assert!(fixed.changed());
    assert_eq!(host_sum(&container, dest), want);

    // With become: a login user that cannot read the file (root's, mode 0600) gets the
    // checksum through sudo, still without the file coming back.
    docker_exec(
        &container,
        "useradd -m deploy && install -d -o deploy -m 0700 /home/deploy/.ssh \
         && install -o deploy -m 0600 /root/.ssh/authorized_keys /home/deploy/.ssh/ \
         && echo 'deploy ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/deploy",
    );
    let private = json!({"src": "big.bin", "dest": dest, "mode": "0600"});
    let (chmod, _) = copy(&ctx(&root, false, dir.path(), false), &private).await;
    assert!(chmod.changed());
    let deploy = transport(&host, "deploy").await;
    let (again, work) = copy(&ctx(&deploy, false, dir.path(), true), &private).await;
    assert!(!again.changed(), "{:?}", again.plan.changes);
    assert!(work.bytes_received < SMALL_TRANSFER, "{work:?}");
    flip_byte(&container, dest, &content, 7);
    let (fixed, _) = copy(&ctx(&deploy, false, dir.path(), true), &private).await;
    assert!(fixed.changed());
    assert_eq!(host_sum(&container, dest), want);

    // A host without sha1sum: the file is read back and compared, as smaller files are.
    docker_exec(&container, "mv /usr/bin/sha1sum /usr/bin/sha1sum.off");
    let (again, work) = copy(&ctx(&root, false, dir.path(), false), &private).await;
    assert!(!again.changed(), "{:?}", again.plan.changes);
    assert!(work.bytes_received >= SIZE as u64, "{work:?}");
    flip_byte(&container, dest, &content, 0);
    let (fixed, _) = copy(&ctx(&root, false, dir.path(), false), &private).await;
    assert!(fixed.changed());
    docker_exec(&container, "mv /usr/bin/sha1sum.off /usr/bin/sha1sum");
    assert_eq!(host_sum(&container, dest), want);
}
