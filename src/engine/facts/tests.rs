//! The fact script run on this machine, and subset/filter/local-fact handling on its output.

use super::*;

fn run_here(opts: &GatherOptions) -> String {
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(opts.script())
        .output()
        .expect("run sh");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn script_runs_here_and_parses() {
    let opts = GatherOptions::default();
    let f = collect(&run_here(&opts), &opts).expect("collect");
    assert!(!f["ansible_hostname"].as_str().unwrap_or("").is_empty());
    assert!(f["ansible_memtotal_mb"].as_u64().unwrap_or(0) > 0);
    assert!(f["ansible_processor_vcpus"].as_u64().unwrap_or(0) > 0);
    assert_eq!(f["ansible_os_family"], "Debian");
    assert_eq!(f["ansible_system"], "Linux");
    assert!(f["ansible_env"]["PATH"].is_string());
    assert!(f["ansible_date_time"]["epoch"].is_string());
    assert_eq!(f["ansible_local"], json!({}));
    assert_eq!(f["module_setup"], true);
}

#[test]
fn local_facts_json_ini_executable_and_broken() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path();
    std::fs::write(p.join("app.fact"), "{\"port\": 8080, \"@@end\": \"x\"}\n").unwrap();
    std::fs::write(p.join("prefs.fact"), "[general]\nAsdf=1\nbar=2\n").unwrap();
    std::fs::write(p.join("bad.fact"), "not json, not ini\n").unwrap();
    std::fs::write(p.join("ignored.txt"), "{}").unwrap();
    let exe = p.join("dyn.fact");
    std::fs::write(&exe, "#!/bin/sh\necho '{\"n\": 1}'\n").unwrap();
    let fail = p.join("fail.fact");
    std::fs::write(&fail, "#!/bin/sh\necho oops >&2\nexit 3\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    for f in [&exe, &fail] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let opts = GatherOptions {
        fact_path: p.display().to_string(),
        subset: vec!["!all".into()],
        ..Default::default()
    };
    let f = collect(&run_here(&opts), &opts).expect("collect");
    let local = &f["ansible_local"];
    assert_eq!(local["app"]["port"], 8080);
    assert_eq!(local["prefs"]["general"]["asdf"], "1");
    assert_eq!(local["dyn"]["n"], 1);
    assert!(local["bad"]
        .as_str()
        .unwrap_or("")
        .starts_with("error loading facts as JSON or ini"));
    let failed = local["fail"].as_str().unwrap_or("");
    assert!(
        failed.contains("rc: 3") && failed.contains("oops"),
        "{failed}"
    );
    assert!(local.get("ignored").is_none());
    let mut store = Vars::new();
    merge(&mut store, &f);
    assert_eq!(store["ansible_local"]["dyn"]["n"], 1);
    assert_eq!(store["ansible_facts"]["ansible_local"]["dyn"]["n"], 1);
}

#[test]
fn subsets_follow_ansibles_arithmetic() {
    let s = |v: &[&str]| collectors(&v.iter().map(|x| x.to_string()).collect::<Vec<_>>());
    let all = s(&["all"]).unwrap();
    assert!(all.contains("hardware") && all.contains("network") && all.contains("virtual"));
    let min = s(&["!all"]).unwrap();
    assert!(min.contains("distribution") && !min.contains("hardware"));
    let no_hw = s(&["!hardware"]).unwrap();
    assert!(no_hw.contains("network") && !no_hw.contains("hardware"));
    let net = s(&["network"]).unwrap();
    assert!(net.contains("network") && net.contains("platform") && !net.contains("virtual"));
    assert!(s(&["!all", "!min"]).unwrap().is_empty());
    assert_eq!(s(&["facter", "!all"]).unwrap(), min);
    let err = s(&["hardwar"]).unwrap_err().to_string();
    assert!(err.contains("Bad subset 'hardwar'"), "{err}");
}

#[test]
fn subset_and_filter_limit_the_facts() {
    let opts = GatherOptions {
        subset: vec!["!all".into()],
        ..Default::default()
    };
    let out = run_here(&GatherOptions::default());
    let f = collect(&out, &opts).unwrap();
    assert!(f.contains_key("ansible_distribution"));
    assert!(!f.contains_key("ansible_memtotal_mb"));
    assert!(!f.contains_key("ansible_default_ipv4"));
    assert_eq!(f["gather_subset"], json!(["!all"]));
    let opts = GatherOptions {
        filter: vec!["ansible_distribution*".into()],
        ..Default::default()
    };
    let f = collect(&out, &opts).unwrap();
    assert!(f.contains_key("ansible_distribution_version"));
    assert!(!f.contains_key("ansible_hostname"));
}

#[test]
fn merge_injects_and_namespaces_like_the_fact_cache() {
    let mut store = Vars::new();
    let a = json!({"ansible_distribution": "Debian", "services": {"ssh": {}}});
    merge(&mut store, a.as_object().unwrap());
    let b = json!({"ansible_distribution": "Ubuntu"});
    merge(&mut store, b.as_object().unwrap());
    assert_eq!(store["ansible_distribution"], "Ubuntu");
    assert_eq!(store["ansible_facts"]["distribution"], "Ubuntu");
    assert_eq!(store["ansible_facts"]["services"], json!({"ssh": {}}));
    assert_eq!(store["services"], json!({"ssh": {}}));
}

#[test]
fn cut_short_output_is_an_error() {
    assert!(collect("@@uname\nLinux\n", &GatherOptions::default()).is_err());
}

/// Drops what changes by itself between two gatherings a moment apart.
fn steady(mut f: Map<String, Value>) -> Map<String, Value> {
    for k in [
        "ansible_date_time",
        "ansible_memfree_mb",
        "ansible_memory_mb",
        "ansible_uptime_seconds",
        "ansible_loadavg",
    ] {
        f.remove(k);
    }
    if let Some(Value::Array(mounts)) = f.get_mut("ansible_mounts") {
        for m in mounts.iter_mut().filter_map(Value::as_object_mut) {
            for k in [
                "size_available",
                "block_available",
                "block_used",
                "inode_available",
                "inode_used",
            ] {
                m.remove(k);
            }
        }
    }
    f
}

/// The file-reading path and the script give the same facts, key by key, on this
/// machine's own files (the local transport reads them as SFTP does on a host:
/// tests/facts_ansible.rs compares the SSH path with Ansible's `setup`).
#[tokio::test]
async fn reading_files_gives_the_facts_the_script_gives() {
    let t = crate::transport::local::LocalTransport::new("here");
    let opts = GatherOptions::default();
    let by_files = files::from_files(&t, &opts, &Default::default(), None)
        .await
        .expect("the exec runs")
        .expect("this machine has /proc: the file path is taken");
    let from_files = steady(collect(&by_files.stdout, &opts).expect("collect files"));
    let from_script = steady(collect(&run_here(&opts), &opts).expect("collect script"));
    let keys = |m: &Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&from_files), keys(&from_script));
    for (k, v) in &from_script {
        assert_eq!(&from_files[k], v, "{k}");
    }
    assert!(from_files["ansible_default_ipv4"].is_object());
    assert!(!from_files["ansible_mounts"]
        .as_array()
        .unwrap_or(&vec![])
        .is_empty());
}

/// Local facts still run: a `*.fact` executable puts the local part in the exec.
#[tokio::test]
async fn reading_files_still_runs_local_facts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("dyn.fact");
    std::fs::write(&exe, "#!/bin/sh\necho '{\"n\": 1}'\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.path().join("app.fact"), "{\"port\": 8080}\n").unwrap();
    let opts = GatherOptions {
        fact_path: dir.path().display().to_string(),
        subset: vec!["!all".into()],
        ..Default::default()
    };
    let t = crate::transport::local::LocalTransport::new("here");
    let out = files::from_files(
        &t,
        &opts,
        &Default::default(),
        Some(script::Beside {
            marker: "@@after",
            command: "echo read-ahead",
        }),
    )
    .await
    .expect("the exec runs")
    .expect("the file path is taken");
    assert!(
        out.stdout.ends_with("@@end\n@@after\nread-ahead\n"),
        "{}",
        out.stdout
    );
    let f = collect(&out.stdout, &opts).expect("collect");
    assert_eq!(f["ansible_local"]["dyn"]["n"], 1);
    assert_eq!(f["ansible_local"]["app"]["port"], 8080);
    let empty = tempfile::tempdir().expect("tempdir");
    let opts = GatherOptions {
        fact_path: empty.path().display().to_string(),
        ..opts
    };
    let out = files::from_files(&t, &opts, &Default::default(), None)
        .await
        .expect("the exec runs")
        .expect("the file path is taken");
    assert_eq!(
        collect(&out.stdout, &opts).expect("collect")["ansible_local"],
        json!({})
    );
}

/// The exec of the file path starts few processes: none of those the script needs for
/// what files hold; every file goes through one `head`.
#[test]
fn the_exec_of_the_file_path_reads_files_in_one_head() {
    let files = vec!["/proc/cpuinfo".to_string(), "/etc/hosts".to_string()];
    let s = script::exec_script(
        DEFAULT_FACT_PATH,
        10,
        &files,
        "b0und",
        &script::KnownPaths::default(),
    );
    for gone in [
        "cat ",
        "nproc",
        "hostname",
        "readlink",
        "tr ",
        "getent",
        "ls ",
        "grep",
        "$(command -v",
        "stat -c",
    ] {
        assert!(!s.contains(gone), "{gone} is back in the exec: {s}");
    }
    assert_eq!(s.matches("head ").count(), 1, "one `head` for every file");
    assert_eq!(
        s.matches("ip ").count(),
        1,
        "one `ip` for routes and addresses"
    );
    assert!(s.contains("set -- /proc/cpuinfo /etc/hosts\n"));
    assert!(s.contains("; b=b0und; sv=; pv=\n"), "{s}");
    // Conditional in the shell: only on hosts that need them.
    assert!(s.contains("[ -r /proc/sys/kernel/arch ] || uname -m"));
    assert!(s.contains("*.fact; do [ -e \"$f\" ] || continue"));
    let both = script::follow_up_script(&script::FollowUp {
        fqdn: true,
        passwd_uid: Some(0),
        systemctl: Some("/usr/bin/systemctl".into()),
        python: Some("/usr/bin/python 3".into()),
    });
    for back in [
        "hostname -f",
        "getent passwd 0",
        "/usr/bin/systemctl --version",
        "'/usr/bin/python 3' --version",
        "@@end",
    ] {
        assert!(both.contains(back), "{back}");
    }
    assert!(!script::FollowUp::default().is_needed());
}

/// The programs the controller knows are skipped by the exec at their known paths only;
/// the shell finds them as `command -v` does.
#[test]
fn the_exec_skips_a_program_at_its_known_path_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    for (name, says) in [
        ("systemctl", "systemd 999\n+FEATURE"),
        ("python3.14", "Python 3.99.1"),
    ] {
        let p = bin.join(name);
        std::fs::write(
            &p,
            format!("#!/bin/sh\necho ran >> \"$0.log\"\nprintf '%s\\n' '{says}'\n"),
        )
        .expect("write");
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
    }
    let systemctl = bin.join("systemctl").display().to_string();
    let python = bin.join("python3.14").display().to_string();
    let run = |known: script::KnownPaths| {
        let s = script::exec_script("/nonexistent", 10, &[], "b", &known);
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&s)
            // Only our folder: no python3.x of the machine's own comes first.
            .env("PATH", bin.display().to_string())
            .output()
            .expect("sh");
        split_sections(&String::from_utf8_lossy(&out.stdout))
    };
    let sections = run(script::KnownPaths::default());
    assert_eq!(
        section(&sections, "systemctl_version"),
        format!("@path {systemctl}\nsystemd 999\n+FEATURE\n")
    );
    assert!(section(&sections, "python").starts_with(&format!("{python}\nPython 3.99.1")));
    let sections = run(script::KnownPaths {
        systemctl: Some(systemctl.clone()),
        python: Some(python.clone()),
    });
    assert_eq!(
        section(&sections, "systemctl_version").trim_end(),
        format!("@cached {systemctl}")
    );
    assert_eq!(
        section(&sections, "python").trim_end(),
        format!("{python}\n@cached")
    );
    let sections = run(script::KnownPaths {
        systemctl: Some("/usr/bin/systemctl".into()),
        python: Some("/usr/bin/python3.14".into()),
    });
    assert!(section(&sections, "systemctl_version").starts_with("@path "));
    assert!(section(&sections, "python").contains("Python 3.99.1"));
    let ran = |p: &std::path::Path| {
        std::fs::read_to_string(format!("{}.log", p.display()))
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert_eq!(
        ran(&bin.join("systemctl")),
        2,
        "asked in the first and last runs"
    );
    assert_eq!(
        ran(&bin.join("python3.14")),
        2,
        "asked in the first and last runs"
    );
}

/// `beside`: both sides' output, the script's first and the read-ahead after its end
/// marker, and the script's commands do not read the read-ahead's pipe.
#[test]
fn the_read_ahead_runs_beside_the_script_and_prints_after_it() {
    let script = "echo one; cat; echo \"@@end\"";
    let ahead = script::Beside {
        marker: "@@ahead",
        command: "sh -c 'sleep 0.2; printf \"a\\nb\"'",
    };
    let s = script::beside(script, Some(ahead));
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&s)
        .output()
        .expect("sh");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "one\n@@end\n@@ahead\na\nb\n",
        "{s}"
    );
    assert!(out.status.success());
    assert_eq!(
        script::beside(script, None),
        script,
        "nothing to read ahead"
    );
}
