//! Task and play keywords through the engine on local hosts: delegate_to, run_once,
//! environment, until/retries, changed_when/failed_when, ignore_errors, meta end_host,
//! any_errors_fatal and max_fail_percentage, role handlers.

#[path = "support/engine.rs"]
mod support;

use support::*;

/// The output of one task, from its banner to the next.
fn section<'a>(out: &'a str, task: &str) -> &'a str {
    let start = out.find(&format!("TASK [{task}]")).expect("task banner");
    let rest = &out[start + 1..];
    let end = rest.find("\nTASK [").map(|e| e + 1).unwrap_or(rest.len());
    &rest[..end]
}

#[tokio::test]
async fn task_keywords_behave_like_ansible() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1", "h2"])),
        (
            "site.yaml",
            r#"
- hosts: all
  gather_facts: false
  tasks:
    - file: {path: "{{ base }}", state: directory}
    - name: once for the batch
      command: echo {{ inventory_hostname }}
      run_once: true
      register: once
    - name: delegated to the controller
      copy: {dest: "@DIR@/delegated-{{ inventory_hostname }}", content: x}
      delegate_to: localhost
    - name: environment reaches commands
      command: printenv GREETING
      environment: {GREETING: "hi {{ inventory_hostname }}"}
      register: env_out
    - name: retried until it holds
      shell: n=$(cat {{ base }}/n 2>/dev/null || echo 0); echo $((n+1)) > {{ base }}/n; cat {{ base }}/n
      register: counter
      until: counter.stdout | int >= 3
      retries: 5
      delay: 0
    - name: failure judged by failed_when
      command: sh -c 'echo out; exit 3'
      register: rc3
      failed_when: rc3.rc != 3
      changed_when: false
    - name: ignored failure
      command: "false"
      ignore_errors: true
      register: ignored
    - meta: end_host
      when: inventory_hostname == 'h2'
    - assert:
        that:
          - once.stdout == 'h1'
          - env_out.stdout == 'hi h1'
          - counter.attempts == 3
          - counter.stdout == '3'
          - rc3.stdout == 'out'
          - not rc3.failed
          - ignored.failed
          - ignored.rc == 1
"#,
        ),
    ]);
    let (recap, out) = run_ok(options(dir.path(), "site.yaml")).await;
    let h1 = &recap.hosts["h1"];
    let h2 = &recap.hosts["h2"];
    assert_eq!((h1.failed, h1.ignored), (0, 1), "{out}");
    assert_eq!((h2.failed, h2.ignored), (0, 1), "{out}");
    assert_eq!(
        h1.ok,
        h2.ok + 2,
        "h2 ran no run_once task and ended before the assert: {out}"
    );
    assert!(dir.path().join("delegated-h2").exists());
    assert!(
        out.contains("ok: [h1 -> localhost]") || out.contains("changed: [h1 -> localhost]"),
        "{out}"
    );
    assert!(
        out.contains("FAILED - RETRYING: [h1]: retried until it holds (5 retries left)."),
        "{out}"
    );
    let once = section(&out, "once for the batch");
    assert!(
        once.contains("[h1]") && !once.contains("[h2]"),
        "run_once: {once}"
    );
    assert_eq!(recap.exit_code(), 0);
}

#[tokio::test]
async fn any_errors_fatal_stops_every_host() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1", "h2"])),
        (
            "site.yaml",
            r#"
- hosts: all
  gather_facts: false
  any_errors_fatal: true
  tasks:
    - fail: msg=stop
      when: inventory_hostname == 'h1'
    - file: {path: "{{ base }}", state: directory}
"#,
        ),
    ]);
    let (recap, out) = run_ok(options(dir.path(), "site.yaml")).await;
    assert_eq!(recap.exit_code(), 2, "{out}");
    assert!(!dir.path().join("h2").exists(), "h2 stopped too: {out}");
}

#[tokio::test]
async fn max_fail_percentage_stops_the_play() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1", "h2", "h3", "h4"])),
        (
            "site.yaml",
            r#"
- hosts: all
  gather_facts: false
  max_fail_percentage: 30
  tasks:
    - fail: msg=stop
      when: inventory_hostname in ['h1', 'h2']
    - file: {path: "{{ base }}", state: directory}
- hosts: all
  gather_facts: false
  max_fail_percentage: 30
  tasks:
    - fail: msg=stop
      when: inventory_hostname == 'h3'
    - file: {path: "{{ base }}", state: directory}
"#,
        ),
    ]);
    let (recap, out) = run_ok(options(dir.path(), "site.yaml")).await;
    assert_eq!(recap.exit_code(), 2, "{out}");
    // First play: 2 of 4 failed (50% > 30%): the others stop. Second play: h3 and h4
    // remain; h3 failing is 50% again, so h4 makes no directory either.
    assert!(!dir.path().join("h3").exists(), "{out}");
    assert!(!dir.path().join("h4").exists(), "{out}");
    assert_eq!(recap.hosts["h3"].failed, 1, "{out}");
}

#[tokio::test]
async fn role_handlers_and_static_include_role() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1"])),
        (
            "roles/svc/tasks/main.yml",
            "- copy: {dest: \"{{ base }}/svc.conf\", content: \"port {{ svc_port }}\\n\"}\n  notify: restart svc\n",
        ),
        ("roles/svc/defaults/main.yml", "svc_port: 80\n"),
        (
            "roles/svc/handlers/main.yml",
            "- name: restart svc\n  shell: echo restarted >> {{ base }}/svc.log\n",
        ),
        (
            "site.yaml",
            r#"
- hosts: all
  gather_facts: false
  pre_tasks:
    - file: {path: "{{ base }}", state: directory}
  roles:
    - role: svc
      vars: {svc_port: 8080}
  tasks:
    - include_role: {name: svc}
      vars: {svc_port: 9090}
"#,
        ),
    ]);
    let (recap, out) = run_ok(options(dir.path(), "site.yaml")).await;
    assert_eq!(recap.hosts["h1"].failed, 0, "{out}");
    assert_eq!(read(dir.path().join("h1/svc.conf")), "port 9090\n");
    assert_eq!(
        read(dir.path().join("h1/svc.log")),
        "restarted\n",
        "handler ran once: {out}"
    );
}

#[tokio::test]
async fn become_keywords_and_variables_and_per_task_check_mode() {
    let inv = "all:\n  vars:\n    ansible_connection: local\n  hosts:\n    h1:\n      base: \"@DIR@/h1\"\n    h2:\n      base: \"@DIR@/h2\"\n      ansible_become: true\n      ansible_become_user: nobody\n";
    let dir = tree(&[
        ("inv.yaml", inv),
        (
            "site.yaml",
            r#"
- hosts: all
  gather_facts: false
  become_user: daemon
  tasks:
    - command: id -un
      register: plain
      changed_when: false
    - command: id -un
      become: true
      register: play_user
      changed_when: false
    - command: id -un
      become: true
      become_user: bin
      register: task_user
      changed_when: false
    - block:
        - command: id -un
          register: block_user
          changed_when: false
      become: true
      become_user: sys
    - copy: {dest: "@DIR@/never-{{ inventory_hostname }}", content: x}
      check_mode: true
    - assert:
        that:
          - "plain.stdout == ('root' if inventory_hostname == 'h1' else 'nobody')"
          - "play_user.stdout == ('daemon' if inventory_hostname == 'h1' else 'nobody')"
          - "task_user.stdout == ('bin' if inventory_hostname == 'h1' else 'nobody')"
          - "block_user.stdout == ('sys' if inventory_hostname == 'h1' else 'nobody')"
      become: false
- hosts: h1
  gather_facts: true
  become: true
  become_user: daemon
  tasks:
    - assert: {that: ["ansible_user_id == 'daemon'"]}
"#,
        ),
    ]);
    let (recap, out) = run_ok(options(dir.path(), "site.yaml")).await;
    for h in ["h1", "h2"] {
        assert_eq!(recap.hosts[h].failed, 0, "{out}");
        assert_eq!(
            recap.hosts[h].changed, 1,
            "check_mode task reports changed: {out}"
        );
        assert!(!dir.path().join(format!("never-{h}")).exists());
    }
}

#[tokio::test]
async fn meta_end_play_stops_the_play_for_every_host_and_the_next_play_runs() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1", "h2"])),
        (
            "site.yaml",
            r#"
- hosts: all
  gather_facts: false
  tasks:
    - meta: end_play
      when: inventory_hostname == 'h2'
    - file: {path: "{{ base }}", state: directory}
- hosts: all
  gather_facts: false
  tasks:
    - copy: {dest: "@DIR@/second-{{ inventory_hostname }}", content: x}
"#,
        ),
    ]);
    let (recap, out) = run_ok(options(dir.path(), "site.yaml")).await;
    assert_eq!(recap.exit_code(), 0, "{out}");
    assert!(
        !dir.path().join("h1").exists(),
        "end_play stopped h1 too: {out}"
    );
    assert!(dir.path().join("second-h1").exists() && dir.path().join("second-h2").exists());
}

/// In check mode a command with `until` is skipped once, not retried until it fails: the
/// dry run of a play that waits for a service (`until: ping.rc == 0`) passes.
#[tokio::test]
async fn check_mode_does_not_retry_a_skipped_command() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1"])),
        (
            "site.yaml",
            r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: wait for the service
      command: curl -fsS http://127.0.0.1:1/ping
      register: ping
      until: ping.rc == 0
      retries: 3
      delay: 1
"#,
        ),
    ]);
    let mut opts = options(dir.path(), "site.yaml");
    opts.check = true;
    let (recap, out) = run_ok(opts).await;
    let stats = &recap.hosts["h1"];
    assert_eq!((stats.skipped, stats.failed), (1, 0), "{out}");
    assert!(!out.contains("RETRYING"), "{out}");
}
