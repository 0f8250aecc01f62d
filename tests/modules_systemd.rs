//! The host-level modules (apt, service/systemd, user, group, hostname, sysctl) against a
//! real Debian + systemd host: a container from the provider's host image, reached with
//! `docker exec` (test-only transport). Each: check mode reports changed and changes
//! nothing (verified on the host), the first run changes, the second is ok.

#[path = "support/modules_docker.rs"]
mod support_docker;
#[path = "support/modules.rs"]
mod support_modules;

use std::sync::Arc;

use serde_json::{json, Value};
use support_docker::{Container, DockerExec};
use support_modules::{ctx_on, plan_only, run, Outcome};

fn ctx(c: &Container, check: bool) -> infra::modules::HostCtx {
    ctx_on(
        Arc::new(DockerExec {
            container: c.name.clone(),
        }),
        check,
        vec![],
        Default::default(),
    )
}

async fn converge(
    c: &Container,
    module: &str,
    args: Value,
    state: impl Fn() -> String,
) -> (Outcome, Outcome) {
    let before = state();
    let check = run(&ctx(c, true), module, args.clone()).await.unwrap();
    assert!(check.changed(), "{module}: check mode must report changed");
    assert_eq!(state(), before, "{module}: check mode changed the host");
    let first = run(&ctx(c, false), module, args.clone()).await.unwrap();
    assert!(first.changed(), "{module}: first run must change");
    assert_ne!(
        state(),
        before,
        "{module}: first run changed nothing on the host"
    );
    let second = run(&ctx(c, false), module, args.clone()).await.unwrap();
    assert!(
        !second.changed(),
        "{module}: second run changed: {:?}",
        second.plan.changes
    );
    let recheck = run(&ctx(c, true), module, args).await.unwrap();
    assert!(!recheck.changed(), "{module}: check after converge changed");
    (check, first)
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_hostname_sysctl() {
    let c = Container::start();
    converge(&c, "group", json!({"name": "deploy", "gid": 2500}), || {
        c.sh("getent group deploy")
    })
    .await;
    assert_eq!(c.sh("getent group deploy").trim(), "deploy:x:2500:");
    converge(&c, "group", json!({"name": "ops", "system": true}), || {
        c.sh("getent group ops")
    })
    .await;

    let user = json!({
        "name": "app", "uid": 2001, "group": "deploy", "groups": ["ops", "sudo"],
        "shell": "/bin/bash", "comment": "App user", "password": "$6$salt$abcdefghijklmnop",
    });
    converge(&c, "user", user.clone(), || {
        c.sh("getent passwd app; id -Gn app")
    })
    .await;
    assert_eq!(
        c.sh("getent passwd app").trim(),
        "app:x:2001:2500:App user:/home/app:/bin/bash"
    );
    let mut groups: Vec<String> = c
        .sh("id -Gn app")
        .split_whitespace()
        .map(String::from)
        .collect();
    groups.sort();
    assert_eq!(groups, vec!["deploy", "ops", "sudo"]);
    assert_eq!(
        c.sh("getent shadow app | cut -d: -f2").trim(),
        "$6$salt$abcdefghijklmnop"
    );
    assert_eq!(c.sh("test -d /home/app && echo yes").trim(), "yes");

    // append adds without removing; without append the list is exact.
    converge(
        &c,
        "user",
        json!({"name": "app", "groups": "users", "append": true}),
        || c.sh("id -Gn app"),
    )
    .await;
    assert!(c.sh("id -Gn app").contains("users") && c.sh("id -Gn app").contains("ops"));
    converge(
        &c,
        "user",
        json!({"name": "app", "groups": ["ops"]}),
        || c.sh("id -Gn app"),
    )
    .await;
    let mut groups: Vec<String> = c
        .sh("id -Gn app")
        .split_whitespace()
        .map(String::from)
        .collect();
    groups.sort();
    assert_eq!(groups, vec!["deploy", "ops"]);

    let plan = plan_only(
        &ctx(&c, false),
        "user",
        json!({"name": "x", "groups": ["nosuchgroup"]}),
    )
    .await
    .unwrap();
    assert!(plan.failed.unwrap().contains("nosuchgroup"));

    converge(
        &c,
        "user",
        json!({"name": "app", "state": "absent", "remove": true}),
        || c.sh("getent passwd app"),
    )
    .await;
    assert_eq!(
        c.sh("getent passwd app; test -d /home/app && echo home"),
        ""
    );
    converge(
        &c,
        "group",
        json!({"name": "deploy", "state": "absent"}),
        || c.sh("getent group deploy"),
    )
    .await;

    let (check, _) = converge(&c, "hostname", json!({"name": "web-01"}), || {
        c.sh("cat /etc/hostname; hostname")
    })
    .await;
    assert_eq!(c.sh("cat /etc/hostname; hostname"), "web-01\nweb-01\n");
    assert!(
        check
            .diff_text()
            .contains("-hostname = modtest\n+hostname = web-01"),
        "{}",
        check.diff_text()
    );

    converge(&c, "sysctl", json!({"name": "net.core.somaxconn", "value": 1024, "sysctl_file": "/etc/sysctl.d/99-infra.conf", "reload": false}), || {
        c.sh("cat /etc/sysctl.d/99-infra.conf 2>/dev/null")
    })
    .await;
    assert_eq!(
        c.sh("cat /etc/sysctl.d/99-infra.conf"),
        "net.core.somaxconn=1024\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn systemd_units() {
    let c = Container::start();
    let unit = "[Unit]\nDescription=infra test\n[Service]\nExecStart=/bin/sleep infinity\nExecReload=/bin/true\n[Install]\nWantedBy=multi-user.target\n";
    let out = run(
        &ctx(&c, false),
        "copy",
        json!({"content": unit, "dest": "/usr/lib/systemd/system/infra-test.service"}),
    )
    .await
    .unwrap();
    assert!(out.changed());
    let state = || c.sh("systemctl is-active infra-test; systemctl is-enabled infra-test");
    converge(
        &c,
        "ansible.builtin.systemd_service",
        json!({"name": "infra-test", "state": "started", "enabled": true, "daemon_reload": true}),
        state,
    )
    .await;
    assert_eq!(state(), "active\nenabled\n");

    // daemon_reload on a unit systemd has loaded as it is on disk reloads nothing...
    let reload_args = json!({"name": "infra-test", "state": "started", "daemon_reload": true});
    let plan = plan_only(&ctx(&c, false), "systemd", reload_args.clone())
        .await
        .unwrap();
    assert!(plan.ops.is_empty(), "{:?}", plan.ops);
    // ...and reloads once the unit file changes on disk, so systemd runs the new file.
    c.sh("sed -i 's/^Description=.*/Description=infra test v2/' /usr/lib/systemd/system/infra-test.service");
    let out = run(&ctx(&c, false), "systemd", reload_args).await.unwrap();
    assert!(!out.changed(), "a reload alone is not a change");
    assert_eq!(
        c.sh("systemctl show -p Description,NeedDaemonReload infra-test"),
        "Description=infra test v2\nNeedDaemonReload=no\n"
    );

    // restarted is always a change (and the unit gets a new main PID).
    let pid = c.sh("systemctl show -p MainPID --value infra-test");
    let out = run(
        &ctx(&c, false),
        "service",
        json!({"name": "infra-test", "state": "restarted"}),
    )
    .await
    .unwrap();
    assert!(out.changed());
    assert_ne!(c.sh("systemctl show -p MainPID --value infra-test"), pid);
    let out = run(
        &ctx(&c, false),
        "service",
        json!({"name": "infra-test", "state": "reloaded"}),
    )
    .await
    .unwrap();
    assert!(out.changed());

    converge(
        &c,
        "service",
        json!({"name": "infra-test", "state": "stopped", "enabled": false}),
        state,
    )
    .await;
    assert_eq!(state(), "inactive\ndisabled\n");
    converge(
        &c,
        "systemd",
        json!({"name": "infra-test", "masked": true}),
        state,
    )
    .await;
    assert!(state().contains("masked"));
    converge(
        &c,
        "systemd",
        json!({"name": "infra-test", "masked": false}),
        state,
    )
    .await;

    let plan = plan_only(
        &ctx(&c, false),
        "service",
        json!({"name": "no-such-unit", "state": "started"}),
    )
    .await
    .unwrap();
    assert!(plan
        .failed
        .unwrap()
        .contains("Could not find the requested service"));
}

/// The unit states a play's tasks share (read ahead, one exec for every unit named) are
/// never an observation older than a change: a unit started by a command after its state
/// was read is seen running by the next service task, which plans to stop it.
#[tokio::test(flavor = "multi_thread")]
async fn a_unit_is_read_again_after_a_change_in_the_same_run() {
    let c = Container::start();
    let ctx = ctx(&c, false);
    ctx.reads
        .units
        .want(["infra-a".to_string(), "infra-b".to_string()])
        .await;
    let unit = "[Service]\nExecStart=/bin/sleep infinity\n";
    for name in ["infra-a", "infra-b"] {
        let dest = format!("/usr/lib/systemd/system/{name}.service");
        run(&ctx, "copy", json!({"content": unit, "dest": dest}))
            .await
            .unwrap();
    }
    // Planning for infra-a reads infra-b too (inactive)...
    let plan = plan_only(
        &ctx,
        "service",
        json!({"name": "infra-a", "state": "started"}),
    )
    .await
    .unwrap();
    assert_eq!(plan.changes.len(), 1, "{:?}", plan.changes);
    assert_eq!(c.sh("systemctl is-active infra-b").trim(), "inactive");
    // ...then a command starts it...
    let started = run(
        &ctx,
        "command",
        json!({"_raw_params": "systemctl start infra-b"}),
    )
    .await
    .unwrap();
    assert!(started.changed());
    assert_eq!(c.sh("systemctl is-active infra-b").trim(), "active");
    // ...and the next service task sees it running, not the state read before.
    let stop = plan_only(
        &ctx,
        "service",
        json!({"name": "infra-b", "state": "stopped"}),
    )
    .await
    .unwrap();
    let summaries: Vec<_> = stop.changes.iter().map(|c| c.summary.as_str()).collect();
    assert_eq!(summaries, vec!["stop infra-b"]);
}

/// The account files the tasks of a run share (read once, see `SystemFiles`) are never
/// older than a change: a shell a command sets after they were read is seen by the next
/// user task, which plans to set it back (a stale read would plan nothing).
#[tokio::test(flavor = "multi_thread")]
async fn an_account_database_is_read_again_after_a_change_in_the_same_run() {
    let c = Container::start();
    let ctx = ctx(&c, false);
    let sh = |cmd: &str| json!({ "_raw_params": cmd });
    let user = json!({"name": "infra-cached", "shell": "/bin/sh"});
    run(
        &ctx,
        "command",
        sh("useradd --system -s /bin/sh infra-cached"),
    )
    .await
    .unwrap();
    let read = run(&ctx, "user", user.clone()).await.unwrap();
    assert!(!read.changed(), "{:?}", read.plan.changes);
    let changed = run(&ctx, "command", sh("usermod -s /bin/bash infra-cached"))
        .await
        .unwrap();
    assert!(changed.changed());
    let plan = plan_only(&ctx, "user", user).await.unwrap();
    assert_eq!(plan.changes.len(), 1, "{:?}", plan.changes);
}

#[tokio::test(flavor = "multi_thread")]
async fn apt_packages() {
    let c = Container::start();
    let installed = || c.sh("dpkg-query -W -f '${Status}' hello 2>/dev/null");
    // A cache older than cache_valid_time is refreshed (an op, not a change of its own).
    let plan = plan_only(
        &ctx(&c, false),
        "apt",
        json!({"name": "hello", "update_cache": true, "cache_valid_time": 1}),
    )
    .await
    .unwrap();
    assert_eq!(plan.result["cache_updated"], true);
    assert!(
        matches!(&plan.ops[0], infra::modules::Op::Exec { cmd, .. } if cmd.contains("apt-get update"))
    );
    // Check mode neither updates nor installs.
    let args = json!({"name": "hello", "update_cache": true, "cache_valid_time": 86400, "install_recommends": false});
    converge(&c, "apt", args, installed).await;
    assert_eq!(installed(), "install ok installed");
    assert!(c.sh("hello").contains("Hello, world!"));

    // A fresh cache is not refreshed again (cache_valid_time), so nothing runs at all.
    let plan = plan_only(
        &ctx(&c, false),
        "apt",
        json!({"name": "hello", "update_cache": true, "cache_valid_time": 86400}),
    )
    .await
    .unwrap();
    assert!(plan.ops.is_empty());
    assert_eq!(plan.result["cache_updated"], false);

    let out = run(
        &ctx(&c, false),
        "package",
        json!({"name": "hello", "state": "latest"}),
    )
    .await
    .unwrap();
    assert!(!out.changed());

    let plan = plan_only(
        &ctx(&c, false),
        "apt",
        json!({"name": "no-such-package-xyz"}),
    )
    .await
    .unwrap();
    assert!(plan.failed.unwrap().contains("No package matching"));

    converge(
        &c,
        "apt",
        json!({"name": ["hello"], "state": "absent", "purge": true}),
        installed,
    )
    .await;
    assert_eq!(installed(), "");
}
