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
