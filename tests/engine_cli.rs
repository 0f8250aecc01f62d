//! `infra play` as a user runs it (the built binary): exit codes 0/1/2/4, a failing or
//! unreachable host leaving the others to finish, bad input changing nothing, and JSON
//! output that parses.

#[path = "support/engine.rs"]
mod support;

use serde_json::Value;
use support::*;

const TWO_STEPS: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - file: {path: "{{ base }}", state: directory}
    - fail: msg="h1 breaks"
      when: inventory_hostname == 'h1'
    - copy: {dest: "{{ base }}/done", content: "done\n"}
"#;

fn dead_port() -> u16 {
    // Bind then drop: nothing listens there afterwards.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn a_failing_host_gives_exit_2_and_the_others_finish() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1", "h2"])),
        ("site.yaml", TWO_STEPS),
    ]);
    let (code, out, err) = infra(&["play", "site.yaml", "-i", "inv.yaml"], dir.path());
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(dir.path().join("h2/done").exists(), "{out}");
    assert!(!dir.path().join("h1/done").exists(), "{out}");
    assert!(
        out.contains("fatal: [h1]: FAILED! => {\"changed\": false, \"msg\": \"h1 breaks\"}"),
        "{out}"
    );
    assert!(
        out.contains("h1                         : ok=1    changed=1    unreachable=0    failed=1"),
        "{out}"
    );
    assert!(out.contains("h2                         : ok=2    changed=2    unreachable=0    failed=0    skipped=1"), "{out}");
}

#[test]
fn an_unreachable_host_gives_exit_4_and_the_others_finish() {
    let inv = format!(
        "{}    h2:\n      ansible_connection: ssh\n      ansible_host: 127.0.0.1\n      ansible_port: {}\n      base: \"@DIR@/h2\"\n",
        local_inventory(&["h1"]),
        dead_port()
    );
    let dir = tree(&[
        ("inv.yaml", &inv),
        (
            "site.yaml",
            "- hosts: all\n  tasks:\n    - file: {path: \"{{ base }}\", state: directory}\n    - copy: {dest: \"{{ base }}/done\", content: x}\n",
        ),
    ]);
    let (code, out, err) = infra(&["play", "site.yaml", "-i", "inv.yaml"], dir.path());
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(out.contains("fatal: [h2]: UNREACHABLE!"), "{out}");
    assert!(dir.path().join("h1/done").exists(), "{out}");
    assert!(
        out.contains("h2                         : ok=0    changed=0    unreachable=1    failed=0"),
        "{out}"
    );
}

#[test]
fn a_bad_playbook_gives_exit_1_and_changes_nothing() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1"])),
        (
            "site.yaml",
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - file: {path: \"{{ base }}\", state: directory}\n    - coppy: {dest: /tmp/x, content: x}\n",
        ),
    ]);
    let (code, out, err) = infra(&["play", "site.yaml", "-i", "inv.yaml"], dir.path());
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("site.yaml:5"), "error names file:line: {err}");
    assert!(err.contains("copy"), "suggests the closest module: {err}");
    assert!(!dir.path().join("h1").exists(), "nothing ran");
    assert!(!out.contains("PLAY RECAP"), "{out}");
}

#[test]
fn missing_inventory_or_bad_extra_vars_give_exit_1() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1"])),
        ("site.yaml", TWO_STEPS),
    ]);
    let (code, _, err) = infra(&["play", "site.yaml", "-i", "nope.yaml"], dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("nope.yaml"), "{err}");
    let (code, _, err) = infra(
        &["play", "site.yaml", "-i", "inv.yaml", "-e", "@missing.yaml"],
        dir.path(),
    );
    assert_eq!(code, 1, "{err}");
    assert!(!dir.path().join("h1").exists());
}

#[test]
fn json_output_is_one_document_with_every_result() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1", "h2"])),
        ("site.yaml", TWO_STEPS),
    ]);
    let (code, out, err) = infra(
        &[
            "play",
            "site.yaml",
            "-i",
            "inv.yaml",
            "--output",
            "json",
            "-l",
            "h2",
            "-e",
            "unused=1",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let tasks = doc["plays"][0]["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 3, "{out}");
    assert_eq!(tasks[0]["hosts"]["h2"]["status"], "changed");
    assert_eq!(tasks[1]["hosts"]["h2"]["status"], "skipped");
    assert_eq!(tasks[2]["hosts"]["h2"]["changed"], true);
    assert!(tasks[0]["hosts"].get("h1").is_none(), "--limit h2");
    assert_eq!(doc["stats"]["h2"]["changed"], 2);
    assert!(doc["stats"].get("h1").is_none());
}

#[test]
fn check_and_diff_flags_reach_the_engine() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1"])),
        (
            "site.yaml",
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - copy: {dest: \"@DIR@/f\", content: \"new\\n\"}\n",
        ),
    ]);
    std::fs::write(dir.path().join("f"), "old\n").unwrap();
    let (code, out, err) = infra(
        &["play", "site.yaml", "-i", "inv.yaml", "-C", "-D"],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("-old\n+new\n"), "{out}");
    assert!(out.contains("changed: [h1]"), "{out}");
    assert_eq!(read(dir.path().join("f")), "old\n");
}

/// A playbook named by a relative path from another folder: `vars_files` and
/// `{{ playbook_dir }}` resolve beside the playbook, as with ansible-playbook.
#[test]
fn a_relative_playbook_path_resolves_vars_files_and_playbook_dir() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1"])),
        (
            "playbooks/site.yaml",
            "- hosts: all\n  gather_facts: false\n  vars_files: [vars.yaml]\n  tasks:\n    - file: {path: \"{{ base }}\", state: directory}\n    - template: {src: \"{{ playbook_dir }}/../templates/t.j2\", dest: \"{{ base }}/out\"}\n",
        ),
        ("playbooks/vars.yaml", "greeting: hello\n"),
        ("templates/t.j2", "{{ greeting }} from {{ inventory_hostname }}\n"),
    ]);
    let (code, out, err) = infra(
        &["play", "playbooks/site.yaml", "-i", "inv.yaml"],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("h1/out")).unwrap(),
        "hello from h1\n"
    );
}
