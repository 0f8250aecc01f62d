//! The modules common roles use (second list: replace, find, getent, raw, script, ...)
//! against a real Debian + systemd host container, reached with `docker exec` (test-only
//! transport, as in modules_systemd.rs). Each changing module: check mode reports changed
//! and changes nothing, the first run changes, the second is ok. Where the result's shape
//! matters, it is compared with what Ansible's own module returns on the same container
//! (`ansible -c community.docker.docker`, from /opt/infra-venv).

#[path = "support/modules_docker.rs"]
mod support_docker;
#[path = "support/modules.rs"]
mod support_modules;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Value};
use support_docker::{Container, DockerExec};
use support_modules::{ctx_on, plan_only, run, Outcome};

fn ctx(c: &Container, check: bool) -> infra::modules::HostCtx {
    ctx_with(c, check, vec![])
}

fn ctx_with(c: &Container, check: bool, search: Vec<PathBuf>) -> infra::modules::HostCtx {
    ctx_on(
        Arc::new(DockerExec {
            container: c.name.clone(),
        }),
        check,
        search,
        Default::default(),
    )
}

/// Check (changed, host untouched), run (changed, host changed), run again (ok), check
/// again (ok). Returns the check and the first run.
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
    assert_ne!(state(), before, "{module}: first run changed nothing");
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

/// What Ansible's own module returns on the container (the host's result dict).
fn ansible(c: &Container, module: &str, args: Value) -> Value {
    let out = std::process::Command::new("/opt/infra-venv/bin/ansible")
        .args([
            "all",
            "-i",
            &format!("{},", c.name),
            "-c",
            "community.docker.docker",
            "-m",
            module,
            "-a",
            &args.to_string(),
        ])
        .env("ANSIBLE_LOAD_CALLBACK_PLUGINS", "1")
        .env("ANSIBLE_STDOUT_CALLBACK", "json")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_PYTHON_INTERPRETER", "/usr/bin/python3")
        .output()
        .expect("run /opt/infra-venv/bin/ansible");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "ansible output is not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    doc["plays"][0]["tasks"][0]["hosts"][&c.name].clone()
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

#[tokio::test(flavor = "multi_thread")]
async fn replace_converges_with_diff_backup_and_sections() {
    let c = Container::start();
    c.sh("printf 'listen 80\\n[a]\\nport=1\\n[b]\\nport=1\\n' > /etc/app.conf");
    let args = json!({"path": "/etc/app.conf", "regexp": "^port=(\\d)$", "replace": "port=\\g<1>0",
                      "after": "\\[b\\]", "backup": true});
    let (check, first) = converge(&c, "replace", args, || c.sh("cat /etc/app.conf")).await;
    assert_eq!(
        c.sh("cat /etc/app.conf"),
        "listen 80\n[a]\nport=1\n[b]\nport=10\n"
    );
    assert_eq!(check.plan.result["msg"], "1 replacements made");
    assert!(
        check.diff_text().contains("+port=10"),
        "{}",
        check.diff_text()
    );
    let backup = first.result()["backup_file"].as_str().unwrap().to_string();
    assert!(backup.starts_with("/etc/app.conf."), "{backup}");
    assert_eq!(
        c.sh(&format!("cat {backup}")),
        "listen 80\n[a]\nport=1\n[b]\nport=1\n"
    );

    // Every match, across the whole file (MULTILINE), through a link to the file.
    c.sh("ln -s /etc/app.conf /etc/app-link.conf");
    converge(
        &c,
        "replace",
        json!({"dest": "/etc/app-link.conf", "regexp": "^(listen|port)", "replace": "# \\1"}),
        || c.sh("cat /etc/app.conf"),
    )
    .await;
    assert_eq!(
        c.sh("cat /etc/app.conf"),
        "# listen 80\n[a]\n# port=1\n[b]\n# port=10\n"
    );
    assert_eq!(
        c.sh("test -L /etc/app-link.conf && echo link").trim(),
        "link"
    );

    // A missing file fails with Ansible's message and rc; a section that is not there is ok.
    let plan = plan_only(
        &ctx(&c, false),
        "replace",
        json!({"path": "/etc/nope", "regexp": "x"}),
    )
    .await
    .unwrap();
    assert_eq!(
        plan.failed.as_deref(),
        Some("Path /etc/nope does not exist !")
    );
    assert_eq!(plan.result["rc"], 257);
    let plan = plan_only(
        &ctx(&c, false),
        "replace",
        json!({"path": "/etc/app.conf", "regexp": "x", "before": "nothere"}),
    )
    .await
    .unwrap();
    assert!(!plan.is_changed() && plan.failed.is_none());
    assert!(plan.result["msg"]
        .as_str()
        .unwrap()
        .starts_with("Pattern for before/after params did not match"));

    // A failing validate leaves the file as it was.
    let before = c.sh("cat /etc/app.conf");
    let err = run(
        &ctx(&c, false),
        "replace",
        json!({"path": "/etc/app.conf", "regexp": "#", "replace": ";", "validate": "false %s"}),
    )
    .await;
    assert!(err.is_err(), "validate must fail the task");
    assert_eq!(c.sh("cat /etc/app.conf"), before);

    // Ansible's replace on the same file gives the same content and message.
    c.sh("printf 'a=1\\nb=2\\na=3\\n' > /tmp/twin1; cp /tmp/twin1 /tmp/twin2");
    let theirs = ansible(
        &c,
        "replace",
        json!({"path": "/tmp/twin1", "regexp": "^a=(\\d)$", "replace": "a=\\1\\1"}),
    );
    let ours = run(
        &ctx(&c, false),
        "replace",
        json!({"path": "/tmp/twin2", "regexp": "^a=(\\d)$", "replace": "a=\\1\\1"}),
    )
    .await
    .unwrap();
    assert_eq!(c.sh("cat /tmp/twin1"), c.sh("cat /tmp/twin2"));
    assert_eq!(theirs["msg"], ours.result()["msg"]);
    assert_eq!(theirs["changed"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn find_and_getent_return_what_ansible_returns() {
    let c = Container::start();
    c.sh(
        "mkdir -p /srv/f/sub/.hid /srv/f/.h2 /srv/f/sub/deep && echo 'port=1' > /srv/f/a.conf \
         && echo x > /srv/f/b.txt && echo y > /srv/f/sub/c.conf && echo z > /srv/f/sub/.hid/d.conf \
         && echo q > /srv/f/.h2/e.conf && echo '#port' > /srv/f/sub/deep/f.conf \
         && ln -s /srv/f/sub /srv/f/lnk && head -c 5000 /dev/zero > /srv/f/big.conf \
         && touch -d '10 days ago' /srv/f/b.txt",
    );
    let cases = [
        json!({"paths": "/srv/f", "recurse": true, "patterns": "*.conf"}),
        json!({"paths": "/srv/f", "patterns": ["*.conf", "*.txt"], "excludes": "big*"}),
        json!({"paths": "/srv/f", "recurse": true, "hidden": true, "depth": 2}),
        json!({"paths": ["/srv/f", "/srv/nope"], "file_type": "directory", "recurse": true}),
        json!({"paths": "/srv/f", "file_type": "any"}),
        json!({"paths": "/srv/f", "file_type": "link"}),
        json!({"paths": "/srv/f", "recurse": true, "contains": "port"}),
        json!({"paths": "/srv/f", "age": "5d"}),
        json!({"paths": "/srv/f", "size": "4k", "get_checksum": true}),
        json!({"paths": "/srv/f", "patterns": "^[ab]\\..*$", "use_regex": true}),
        json!({"paths": "/srv/f", "recurse": true, "limit": 2}),
    ];
    for args in cases {
        let ours = run(&ctx(&c, true), "find", args.clone()).await.unwrap();
        assert!(!ours.changed());
        let ours = Value::Object(ours.result().clone());
        let theirs = ansible(&c, "find", args.clone());
        let paths = |v: &Value| -> Vec<String> {
            v["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["path"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(paths(&ours), paths(&theirs), "{args}");
        for key in ["matched", "examined", "msg"] {
            assert_eq!(ours[key], theirs[key], "{key} of {args}");
        }
        assert_eq!(
            keys(&ours["skipped_paths"]),
            keys(&theirs["skipped_paths"]),
            "{args}"
        );
        let (o, t) = (&ours["files"][0], &theirs["files"][0]);
        assert_eq!(keys(o), keys(t), "file keys of {args}");
        for key in [
            "mode", "uid", "size", "isdir", "islnk", "pw_name", "gr_name", "inode",
        ] {
            assert_eq!(o[key], t[key], "{key} of {args}");
        }
        if let Some(sum) = t.get("checksum") {
            assert_eq!(&o["checksum"], sum);
        }
    }

    for args in [
        json!({"database": "passwd", "key": "root"}),
        json!({"database": "group"}),
        json!({"database": "hosts", "key": "localhost"}),
        json!({"database": "passwd", "key": "nobody-here", "fail_key": false}),
    ] {
        let plan = plan_only(&ctx(&c, true), "getent", args.clone())
            .await
            .unwrap();
        assert!(!plan.is_changed() && plan.failed.is_none(), "{args}");
        let theirs = ansible(&c, "getent", args.clone());
        let db = format!("getent_{}", args["database"].as_str().unwrap());
        assert_eq!(
            plan.result["ansible_facts"][&db], theirs["ansible_facts"][&db],
            "{args}"
        );
    }
    let plan = plan_only(
        &ctx(&c, false),
        "getent",
        json!({"database": "passwd", "key": "nobody-here"}),
    )
    .await
    .unwrap();
    assert_eq!(
        plan.failed.as_deref(),
        Some("One or more supplied key could not be found in the database.")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_and_script_run_on_the_host() {
    let c = Container::start();
    // raw: skipped in check mode, always changed, rc/stdout registered.
    let check = plan_only(
        &ctx(&c, true),
        "raw",
        json!({"_raw_params": "touch /tmp/raw"}),
    )
    .await
    .unwrap();
    assert!(check.unpredictable);
    let out = run(
        &ctx(&c, false),
        "raw",
        json!({"_raw_params": "echo $0; echo err >&2", "executable": "/bin/bash"}),
    )
    .await
    .unwrap();
    assert!(out.changed());
    assert_eq!(out.result()["rc"], 0);
    assert_eq!(out.result()["stdout"], "/bin/bash");
    assert_eq!(out.result()["stderr_lines"], json!(["err"]));
    let failed = run(&ctx(&c, false), "raw", json!({"_raw_params": "exit 3"})).await;
    assert!(failed.is_err());

    // script: copied, run with its arguments in chdir, removed; creates makes it idempotent.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("setup.sh"),
        "#!/bin/sh\necho \"args: $1 $2\"\npwd\ntouch /tmp/done-$1\n",
    )
    .unwrap();
    let args = json!({"_raw_params": "setup.sh one 'two words'", "chdir": "/srv",
                      "creates": "/tmp/done-one"});
    let search = vec![dir.path().to_path_buf()];
    let check = run(&ctx_with(&c, true, search.clone()), "script", args.clone())
        .await
        .unwrap();
    assert!(check.changed() && !check.plan.unpredictable);
    assert_eq!(
        c.sh("ls /tmp/done-one 2>&1 | grep -c 'No such'").trim(),
        "1"
    );
    let first = run(&ctx_with(&c, false, search.clone()), "script", args.clone())
        .await
        .unwrap();
    assert!(first.changed());
    assert_eq!(
        first.result()["stdout_lines"],
        json!(["args: one two words", "/srv"])
    );
    assert_eq!(c.sh("ls -d /tmp/.infra-script-* 2>/dev/null").trim(), "");
    let second = run(&ctx_with(&c, false, search.clone()), "script", args)
        .await
        .unwrap();
    assert!(!second.changed());
    assert_eq!(
        second.result()["msg"],
        "/tmp/done-one exists, matching creates option"
    );
    // Without creates/removes, check mode cannot predict: skipped.
    let plan = plan_only(
        &ctx_with(&c, true, search.clone()),
        "script",
        json!({"_raw_params": "setup.sh x"}),
    )
    .await
    .unwrap();
    assert!(plan.unpredictable);
    // A script that is not there is an error naming it, before the host is touched.
    let err = plan_only(
        &ctx_with(&c, false, search),
        "script",
        json!({"_raw_params": "missing.sh"}),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("missing.sh"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tempfile_and_fetch() {
    let c = Container::start();
    // tempfile: skipped in check mode (as Ansible's), a new private file or folder each run.
    let check = plan_only(&ctx(&c, true), "tempfile", json!({}))
        .await
        .unwrap();
    assert!(check.unpredictable && check.ops.is_empty());
    let f = run(&ctx(&c, false), "tempfile", json!({"suffix": ".conf"}))
        .await
        .unwrap();
    assert!(f.changed());
    let path = f.result()["path"].as_str().unwrap().to_string();
    assert!(
        path.starts_with("/tmp/ansible.") && path.ends_with(".conf"),
        "{path}"
    );
    assert_eq!(
        c.sh(&format!("stat -c '%F %a' {path}")).trim(),
        "regular empty file 600"
    );
    c.sh("mkdir -p /srv/tmp");
    let d = run(
        &ctx(&c, false),
        "tempfile",
        json!({"state": "directory", "path": "/srv/tmp", "prefix": "build-"}),
    )
    .await
    .unwrap();
    let dir = d.result()["path"].as_str().unwrap().to_string();
    assert!(dir.starts_with("/srv/tmp/build-"), "{dir}");
    assert_eq!(
        c.sh(&format!("stat -c '%F %a' {dir}")).trim(),
        "directory 700"
    );
    let again = run(&ctx(&c, false), "tempfile", json!({"suffix": ".conf"}))
        .await
        .unwrap();
    assert_ne!(again.result()["path"], f.result()["path"]);
    assert!(
        plan_only(&ctx(&c, false), "tempfile", json!({"prefix": "a/b"}))
            .await
            .is_err(),
        "a prefix with a slash is refused"
    );

    // fetch: dest/<host>/<src>; changed once, then ok; check mode skipped; missing file.
    c.sh("mkdir -p /etc/app && printf 'key=1\\n' > /etc/app/app.conf");
    let local = tempfile::tempdir().unwrap();
    let dest = local.path().join("fetched");
    let args = json!({"src": "/etc/app/app.conf", "dest": dest.to_str().unwrap()});
    let check = plan_only(&ctx(&c, true), "fetch", args.clone())
        .await
        .unwrap();
    assert!(check.unpredictable);
    assert!(!dest.exists(), "check mode wrote the copy");
    let first = run(&ctx(&c, false), "fetch", args.clone()).await.unwrap();
    assert!(first.changed());
    let copy = dest.join(&c.name).join("etc/app/app.conf");
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), "key=1\n");
    assert_eq!(first.result()["dest"], copy.to_str().unwrap());
    let second = run(&ctx(&c, false), "fetch", args.clone()).await.unwrap();
    assert!(!second.changed());

    // The same keys as Ansible's fetch, and the same layout.
    let theirs_dest = local.path().join("ansible");
    let theirs = ansible(
        &c,
        "fetch",
        json!({"src": "/etc/app/app.conf", "dest": theirs_dest.to_str().unwrap()}),
    );
    assert_eq!(
        std::fs::read_to_string(theirs_dest.join(&c.name).join("etc/app/app.conf")).unwrap(),
        "key=1\n"
    );
    let mut ours = Value::Object(first.result().clone());
    ours["changed"] = json!(true);
    let theirs_keys: Vec<String> = keys(&theirs)
        .into_iter()
        .filter(|k| !k.starts_with('_') && !["diff", "invocation", "action"].contains(&k.as_str()))
        .collect();
    assert_eq!(keys(&ours), theirs_keys);
    assert_eq!(ours["checksum"], theirs["checksum"]);

    // flat with a trailing slash: dest/<basename>.
    let flat = local.path().join("flat/");
    run(
        &ctx(&c, false),
        "fetch",
        json!({"src": "/etc/app/app.conf", "dest": format!("{}/", flat.display()), "flat": true}),
    )
    .await
    .unwrap();
    assert!(flat.join("app.conf").exists());

    let plan = plan_only(
        &ctx(&c, false),
        "fetch",
        json!({"src": "/nope", "dest": dest.to_str().unwrap()}),
    )
    .await
    .unwrap();
    assert_eq!(
        plan.failed.as_deref(),
        Some("the remote file does not exist, not transferring, ignored")
    );
    let plan = plan_only(
        &ctx(&c, false),
        "fetch",
        json!({"src": "/nope", "dest": dest.to_str().unwrap(), "fail_on_missing": false}),
    )
    .await
    .unwrap();
    assert!(plan.failed.is_none() && !plan.is_changed());
}

#[tokio::test(flavor = "multi_thread")]
async fn uri_requests_from_the_host_like_ansible() {
    let c = Container::start();
    // A web server only the host can reach (127.0.0.1 inside the container).
    c.sh(
        "mkdir -p /srv/www && printf '{\"a\": 1}' > /srv/www/x.json && echo hi > /srv/www/page.txt \
         && cd /srv/www && (nohup python3 -m http.server 8080 >/dev/null 2>&1 &) \
         && for i in $(seq 50); do python3 -c 'import urllib.request as u; u.urlopen(\"http://127.0.0.1:8080/\")' 2>/dev/null && break; sleep 0.1; done",
    );
    let cases = [
        json!({"url": "http://127.0.0.1:8080/x.json"}),
        json!({"url": "http://127.0.0.1:8080/nope", "status_code": [200, 404], "return_content": true}),
        json!({"url": "http://127.0.0.1:8080/page.txt", "return_content": true, "headers": {"X-Test": "1"}}),
    ];
    let volatile = [
        "date",
        "last_modified",
        "elapsed",
        "changed",
        "action",
        "warnings",
        "ansible_facts",
        "invocation",
        "_ansible_no_log",
    ];
    for args in cases {
        let check = plan_only(&ctx(&c, true), "uri", args.clone())
            .await
            .unwrap();
        assert!(check.unpredictable, "uri is skipped in check mode");
        let ours = run(&ctx(&c, false), "uri", args.clone()).await.unwrap();
        assert!(!ours.changed());
        let mut ours = Value::Object(ours.result().clone());
        let mut theirs = ansible(&c, "uri", args.clone());
        for v in [&mut ours, &mut theirs] {
            if let Some(o) = v.as_object_mut() {
                for k in volatile {
                    o.remove(k);
                }
            }
        }
        assert_eq!(ours, theirs, "{args}");
    }
    // A refused connection and an unexpected status fail with Ansible's message.
    let plan = plan_only(
        &ctx(&c, false),
        "uri",
        json!({"url": "http://127.0.0.1:9/"}),
    )
    .await
    .unwrap();
    let theirs = ansible(&c, "uri", json!({"url": "http://127.0.0.1:9/"}));
    assert_eq!(plan.failed.as_deref(), theirs["msg"].as_str());
    assert_eq!(plan.result["status"], -1);
    let plan = plan_only(
        &ctx(&c, false),
        "uri",
        json!({"url": "http://127.0.0.1:8080/nope"}),
    )
    .await
    .unwrap();
    assert_eq!(
        plan.failed.as_deref(),
        Some("Status code was 404 and not [200]: HTTP Error 404: File not found")
    );

    // dest: written through an op (changed), then ok when it is the same.
    let args =
        json!({"url": "http://127.0.0.1:8080/page.txt", "dest": "/tmp/page.txt", "mode": "0640"});
    let first = run(&ctx(&c, false), "uri", args.clone()).await.unwrap();
    assert!(first.changed());
    assert_eq!(
        c.sh("stat -c %a /tmp/page.txt; cat /tmp/page.txt"),
        "640\nhi\n"
    );
    assert_eq!(first.result()["path"], "/tmp/page.txt");
    let second = run(&ctx(&c, false), "uri", args).await.unwrap();
    assert!(!second.changed());
    // creates skips the request.
    let skip = run(
        &ctx(&c, false),
        "uri",
        json!({"url": "http://127.0.0.1:9/", "creates": "/tmp/page.txt"}),
    )
    .await
    .unwrap();
    assert_eq!(
        skip.result()["stdout"],
        "skipped, since '/tmp/page.txt' exists"
    );
}

/// Wheels on this machine that need no index: pip itself and two tiny test distributions.
const WHEELS: &[&str] = &[
    "/root/.pyenv/versions/3.11.7/lib/python3.11/ensurepip/_bundled/pip-23.2.1-py3-none-any.whl",
    "/root/.pyenv/versions/3.13.0/lib/python3.13/test/test_importlib/metadata/data/example-21.12-py3-none-any.whl",
    "/root/.pyenv/versions/3.13.0/lib/python3.13/test/test_importlib/metadata/data/example2-1.0.0-py3-none-any.whl",
];

#[tokio::test(flavor = "multi_thread")]
async fn pip_converges_in_a_virtualenv() {
    if let Some(missing) = WHEELS.iter().find(|w| !std::path::Path::new(w).exists()) {
        panic!("test wheel {missing} is missing on this machine");
    }
    let c = Container::start();
    c.sh("mkdir -p /tmp/wheels");
    for w in WHEELS {
        let st = std::process::Command::new("docker")
            .args(["cp", w, &format!("{}:/tmp/wheels/", c.name)])
            .status()
            .unwrap();
        assert!(st.success());
    }
    // The image has no pip and no ensurepip: a venv gets pip from its wheel.
    c.sh(
        "python3 -m venv --without-pip /opt/venv && /opt/venv/bin/python \
         /tmp/wheels/pip-23.2.1-py3-none-any.whl/pip install -q --no-index \
         /tmp/wheels/pip-23.2.1-py3-none-any.whl",
    );
    assert!(c
        .sh("/opt/venv/bin/pip --version")
        .starts_with("pip 23.2.1"));
    let freeze = || c.sh("/opt/venv/bin/pip list --format=freeze 2>/dev/null");
    let offline = "--no-index --find-links /tmp/wheels";
    let (_, first) = converge(
        &c,
        "pip",
        json!({"name": ["example", "example2>=1.0"], "virtualenv": "/opt/venv", "extra_args": offline}),
        freeze,
    )
    .await;
    assert!(freeze().contains("example==21.12") && freeze().contains("example2==1.0.0"));
    let r = first.result();
    assert!(r["stdout"]
        .as_str()
        .unwrap()
        .contains("Successfully installed"));
    assert_eq!(r["virtualenv"], "/opt/venv");
    assert_eq!(r["state"], "present");
    assert!(r["cmd"]
        .as_str()
        .unwrap()
        .starts_with("/opt/venv/bin/pip install"));

    // A version that is there is ok; one that is not is a change (and fails: not offline).
    let ok = run(
        &ctx(&c, true),
        "pip",
        json!({"name": "example", "version": "21.12", "virtualenv": "/opt/venv"}),
    )
    .await
    .unwrap();
    assert!(!ok.changed());
    let other = run(
        &ctx(&c, true),
        "pip",
        json!({"name": "example==22.0", "virtualenv": "/opt/venv"}),
    )
    .await
    .unwrap();
    assert!(other.changed());

    converge(
        &c,
        "pip",
        json!({"name": "example2", "state": "absent", "virtualenv": "/opt/venv"}),
        freeze,
    )
    .await;
    assert!(!freeze().contains("example2"));
    assert!(freeze().contains("example==21.12"));

    // requirements: judged with pip's dry run.
    c.sh("echo example2==1.0.0 > /tmp/req.txt");
    converge(
        &c,
        "pip",
        json!({"requirements": "/tmp/req.txt", "virtualenv": "/opt/venv", "extra_args": offline}),
        freeze,
    )
    .await;
    assert!(freeze().contains("example2==1.0.0"));

    let err = plan_only(
        &ctx(&c, false),
        "pip",
        json!({"name": ["a", "b"], "version": "1"}),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("ambiguous"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn git_clones_and_updates_from_a_local_bare_repo() {
    let c = Container::start();
    // The image has no git: this machine's (static enough: libc, zlib, pcre2) is copied in,
    // with the two helpers a local clone runs.
    let git = std::process::Command::new("sh")
        .args(["-c", "command -v git"])
        .output()
        .unwrap();
    let git = String::from_utf8_lossy(&git.stdout).trim().to_string();
    assert!(
        !git.is_empty(),
        "git is needed on this machine for the test"
    );
    let st = std::process::Command::new("docker")
        .args(["cp", "-L", &git, &format!("{}:/usr/local/bin/git", c.name)])
        .status()
        .unwrap();
    assert!(st.success());
    let exec_path = c.sh("/usr/local/bin/git --exec-path").trim().to_string();
    c.sh(&format!(
        "mkdir -p {exec_path} && for h in upload-pack receive-pack; do ln -sf /usr/local/bin/git {exec_path}/git-$h; done"
    ));
    let git_env = "export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@x GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@x;";
    c.sh(&format!(
        "{git_env} git init -q --bare -b main /srv/repo.git && git init -q -b main /tmp/work && cd /tmp/work \
         && echo one > f && git add f && git commit -qm one && git tag v1 \
         && git remote add origin /srv/repo.git && git push -q origin main v1"
    ));
    assert!(c.sh("git -C /srv/repo.git rev-parse main").trim().len() == 40);
    let head = || c.sh("git -C /opt/app rev-parse HEAD 2>&1; cat /opt/app/f 2>&1");
    let args = json!({"repo": "/srv/repo.git", "dest": "/opt/app"});
    let (check, first) = converge(&c, "git", args.clone(), head).await;
    let v1 = c
        .sh("git -C /srv/repo.git rev-parse main")
        .trim()
        .to_string();
    assert_eq!(
        check.plan.result["after"],
        v1.as_str(),
        "check mode knows after"
    );
    assert_eq!(first.result()["before"], Value::Null);
    assert_eq!(first.result()["after"], v1.as_str());
    assert_eq!(c.sh("cat /opt/app/f"), "one\n");

    // A new commit on the remote: updated; before/after as Ansible.
    c.sh(&format!(
        "{git_env} cd /tmp/work && echo two > f && git commit -qam two && git push -q origin main"
    ));
    let v2 = c
        .sh("git -C /srv/repo.git rev-parse main")
        .trim()
        .to_string();
    let (_, upd) = converge(&c, "git", args.clone(), head).await;
    assert_eq!(upd.result()["before"], v1.as_str());
    assert_eq!(upd.result()["after"], v2.as_str());
    assert_eq!(c.sh("cat /opt/app/f"), "two\n");

    // A tag, then a branch name.
    converge(
        &c,
        "git",
        json!({"repo": "/srv/repo.git", "dest": "/opt/app", "version": "v1"}),
        head,
    )
    .await;
    assert_eq!(c.sh("cat /opt/app/f"), "one\n");
    converge(
        &c,
        "git",
        json!({"repo": "/srv/repo.git", "dest": "/opt/app", "version": "main"}),
        head,
    )
    .await;
    assert_eq!(c.sh("cat /opt/app/f"), "two\n");

    // Local modifications: refused without force, discarded with it.
    c.sh("echo local > /opt/app/f");
    c.sh(&format!(
        "{git_env} cd /tmp/work && echo three > f && git commit -qam three && git push -q origin main"
    ));
    let plan = plan_only(&ctx(&c, false), "git", args.clone())
        .await
        .unwrap();
    assert_eq!(
        plan.failed.as_deref(),
        Some("Local modifications exist in the destination: /opt/app (force=no).")
    );
    let mut forced = args.clone();
    forced["force"] = json!(true);
    converge(&c, "git", forced, head).await;
    assert_eq!(c.sh("cat /opt/app/f"), "three\n");

    // update: no leaves the checkout; a depth-1 clone has one commit.
    let no_update = run(
        &ctx(&c, false),
        "git",
        json!({"repo": "/srv/repo.git", "dest": "/opt/app", "version": "v1", "update": false}),
    )
    .await
    .unwrap();
    assert!(!no_update.changed());
    converge(
        &c,
        "git",
        json!({"repo": "file:///srv/repo.git", "dest": "/opt/shallow", "depth": 1}),
        || c.sh("git -C /opt/shallow rev-list --count HEAD 2>&1"),
    )
    .await;
    assert_eq!(
        c.sh("git -C /opt/shallow rev-list --count HEAD").trim(),
        "1"
    );
}

/// Copies this machine's iptables (nft backend, Debian 12 like the image) into the
/// container, which has NET_ADMIN but no iptables package.
fn install_iptables(c: &Container) {
    let cp = |src: &str, dest: &str| {
        let st = std::process::Command::new("docker")
            .args(["cp", "-L", src, &format!("{}:{dest}", c.name)])
            .status()
            .unwrap();
        assert!(st.success(), "docker cp {src}");
    };
    cp("/usr/sbin/xtables-nft-multi", "/usr/sbin/");
    for lib in ["libxtables.so.12", "libmnl.so.0", "libnftnl.so.11"] {
        cp(
            &format!("/lib/x86_64-linux-gnu/{lib}"),
            "/lib/x86_64-linux-gnu/",
        );
    }
    cp(
        "/usr/lib/x86_64-linux-gnu/xtables",
        "/usr/lib/x86_64-linux-gnu/",
    );
    c.sh("ln -sf /usr/sbin/xtables-nft-multi /usr/sbin/iptables");
}

#[tokio::test(flavor = "multi_thread")]
async fn iptables_rules_and_policy_like_ansible() {
    assert!(
        std::path::Path::new("/usr/sbin/xtables-nft-multi").exists(),
        "the test copies this machine's iptables into the host container"
    );
    let c = Container::start();
    install_iptables(&c);
    let rules = || c.sh("iptables -S");
    let ssh = json!({"chain": "INPUT", "protocol": "tcp", "destination_port": "22",
                     "ctstate": ["NEW", "ESTABLISHED"], "jump": "ACCEPT", "comment": "ssh in"});
    let (_, first) = converge(&c, "iptables", ssh.clone(), rules).await;
    assert!(
        rules().contains(
            "-A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW,ESTABLISHED -m comment --comment \"ssh in\" -j ACCEPT"
        ),
        "{}",
        rules()
    );
    // Ansible's module sees our rule as present (ok) and reports the same result keys.
    let theirs = ansible(&c, "iptables", ssh.clone());
    assert_eq!(theirs["changed"], false, "{theirs}");
    assert_eq!(theirs["rule"], first.result()["rule"]);
    for key in [
        "chain",
        "table",
        "state",
        "ip_version",
        "flush",
        "chain_management",
    ] {
        assert_eq!(theirs[key], first.result()[key], "{key}");
    }
    // A rule Ansible adds is one ours finds present.
    let web = json!({"chain": "INPUT", "protocol": "tcp", "destination_ports": ["80", "443"],
                     "jump": "ACCEPT", "action": "insert", "rule_num": "1"});
    assert_eq!(ansible(&c, "iptables", web.clone())["changed"], true);
    let ours = run(&ctx(&c, true), "iptables", web).await.unwrap();
    assert!(!ours.changed());
    assert!(rules().contains("-A INPUT -p tcp -m multiport --dports 80,443 -j ACCEPT"));

    let mut gone = ssh.clone();
    gone["state"] = json!("absent");
    converge(&c, "iptables", gone, rules).await;
    assert!(!rules().contains("ssh in"));

    converge(
        &c,
        "iptables",
        json!({"chain": "FORWARD", "policy": "DROP"}),
        rules,
    )
    .await;
    assert!(rules().contains("-P FORWARD DROP"));
}
