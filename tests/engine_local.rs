//! The engine end to end on the controller itself (`ansible_connection: local`, files under
//! a temp dir): variable precedence, loops and `register`, handlers, blocks, `when` and
//! tags, check mode, idempotence, diffs, `no_log`, includes and strategies.

#[path = "support/engine.rs"]
mod support;

use std::path::Path;

use infra::report::json::Json;
use infra::report::shared;
use serde_json::Value;
use support::*;

fn stats(recap: &infra::engine::Recap, host: &str) -> infra::engine::HostStats {
    recap.hosts.get(host).cloned().unwrap_or_default()
}

#[tokio::test]
async fn variables_follow_ansible_precedence_at_every_level() {
    let dir = tree(&[
        (
            "inv.yaml",
            "all:\n  vars:\n    ansible_connection: local\n    v_inv: inventory\n    v_hvfile: inventory\n    v_play: inventory\n    v_vf: inventory\n    v_rv: inventory\n    v_block: inventory\n    v_task: inventory\n    v_fact: inventory\n    v_extra: inventory\n  children:\n    web:\n      hosts:\n        h1.example.org:\n",
        ),
        ("host_vars/h1.example.org.yaml", "v_hvfile: hostvars-file\n"),
        (
            "roles/r/defaults/main.yml",
            "v_def: defaults\nv_inv: defaults\nv_play: defaults\nv_extra: defaults\nfrom_default: \"{{ v_play }}-x\"\n",
        ),
        (
            "roles/r/vars/main.yml",
            "v_rv: rolevars\nv_block: rolevars\nv_task: rolevars\nv_fact: rolevars\nv_extra: rolevars\n",
        ),
        ("vf.yaml", "v_vf: vars_files\nv_rv: vars_files\nv_extra: vars_files\n"),
        (
            "roles/r/tasks/main.yml",
            r#"
- set_fact:
    v_fact: fact
    v_extra: fact
- block:
    - name: check every level
      vars:
        v_task: task
        v_fact: task
        v_extra: task
      assert:
        that:
          - v_def == 'defaults'
          - v_inv == 'inventory'
          - v_hvfile == 'hostvars-file'
          - v_play == 'play'
          - v_vf == 'vars_files'
          - v_rv == 'rolevars'
          - v_block == 'block'
          - v_task == 'task'
          - v_fact == 'fact'
          - v_extra == 'extra'
          - from_default == 'play-x'
          - role_name == 'r'
          - role_path.endswith('/roles/r')
  vars:
    v_block: block
    v_task: block
    v_fact: block
    v_extra: block
"#,
        ),
        (
            "site.yaml",
            r#"
- hosts: web
  gather_facts: false
  vars:
    v_play: play
    v_vf: play
    v_rv: play
    v_extra: play
  vars_files: [vf.yaml]
  roles: [r]
  tasks:
    - name: magic variables
      assert:
        that:
          - inventory_hostname == 'h1.example.org'
          - inventory_hostname_short == 'h1'
          - group_names == ['web']
          - groups['web'] == ['h1.example.org']
          - hostvars['h1.example.org']['v_hvfile'] == 'hostvars-file'
          - ansible_play_hosts == ['h1.example.org']
          - ansible_play_batch == ['h1.example.org']
          - not ansible_check_mode
          - playbook_dir == '@DIR@'
          - inventory_dir == '@DIR@'
          - v_fact == 'fact'
    - name: omitted arguments are dropped
      file:
        path: "@DIR@"
        state: directory
        mode: "{{ omit }}"
"#,
        ),
    ]);
    let mut opts = options(dir.path(), "site.yaml");
    opts.extra_vars.insert("v_extra".into(), "extra".into());
    let (recap, out) = run_ok(opts).await;
    let s = stats(&recap, "h1.example.org");
    assert_eq!((s.failed, s.ok), (0, 4), "{out}");
    assert!(!out.contains("FAILED"), "{out}");
}

#[tokio::test]
async fn loops_register_results_in_ansible_shape() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1"])),
        (
            "site.yaml",
            r#"
- hosts: all
  gather_facts: false
  tasks:
    - file: {path: "{{ base }}", state: directory}
    - name: copy items
      copy: {dest: "{{ base }}/{{ item }}", content: "{{ item }}\n"}
      loop: [a, b]
      register: copied
    - command: echo {{ item.key }}={{ item.value }}
      with_dict: {x: 1, y: 2}
      register: dictout
      changed_when: false
    - debug: msg="{{ fruit }} {{ idx }}"
      loop: "{{ ['p', 'q'] }}"
      loop_control: {loop_var: fruit, index_var: idx, label: "L{{ idx }}"}
      register: custom
    - set_fact: {flat: "{{ flat | default([]) + [item] }}"}
      with_items: [[1, 2], 3]
    - command: echo never
      loop: []
      register: empty
    - assert:
        that:
          - copied.changed
          - copied.msg == 'All items completed'
          - copied.results | length == 2
          - copied.results[0].item == 'a'
          - copied.results[1].changed
          - copied.results[0].ansible_loop_var == 'item'
          - dictout.results[1].stdout == 'y=2'
          - dictout.results[0].rc == 0
          - dictout.results[0].item.key == 'x'
          - not dictout.changed
          - custom.results[1].fruit == 'q'
          - custom.results[1].idx == 1
          - flat == [1, 2, 3]
          - empty.skipped
"#,
        ),
    ]);
    let (recap, out) = run_ok(options(dir.path(), "site.yaml")).await;
    let s = stats(&recap, "h1");
    assert_eq!(s.failed, 0, "{out}");
    assert_eq!(read(dir.path().join("h1/b")), "b\n");
    assert!(out.contains("changed: [h1] => (item=a)"), "{out}");
    assert!(
        out.contains("ok: [h1] => (item={'key': 'y', 'value': 2})"),
        "{out}"
    );
    assert!(out.contains("ok: [h1] => (item=L1)"), "{out}");
    assert_eq!(s.skipped, 1, "the empty loop is skipped: {out}");
}

const HANDLERS: &str = r#"
- hosts: all
  gather_facts: false
  handlers:
    - name: h_one
      shell: echo one >> {{ base }}/handlers.log
    - name: h_two
      shell: echo two >> {{ base }}/handlers.log
      listen: topic
    - name: h_never
      shell: echo never >> {{ base }}/handlers.log
  tasks:
    - file: {path: "{{ base }}", state: directory}
    - copy: {dest: "{{ base }}/a", content: "a\n"}
      notify: h_one
    - copy: {dest: "{{ base }}/b", content: "b\n"}
      notify: [topic, h_one]
    - name: unchanged
      copy: {dest: "{{ base }}/a", content: "a\n"}
      notify: h_never
    - meta: flush_handlers
    - command: cat {{ base }}/handlers.log
      register: log
      changed_when: false
    - assert: {that: ["log.stdout_lines == ['one', 'two']"]}
"#;

#[tokio::test]
async fn handlers_run_once_in_order_only_when_notified_by_a_change() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1", "h2"])),
        ("site.yaml", HANDLERS),
    ]);
    let (recap, out) = run_ok(options(dir.path(), "site.yaml")).await;
    for h in ["h1", "h2"] {
        assert_eq!(stats(&recap, h).failed, 0, "{out}");
        assert_eq!(read(dir.path().join(h).join("handlers.log")), "one\ntwo\n");
    }
    assert!(out.contains("RUNNING HANDLER [h_one]"), "{out}");
    // Second run: nothing changes, so no handler runs.
    let (recap, out) = run_ok(options(dir.path(), "site.yaml")).await;
    assert_eq!(stats(&recap, "h1").changed, 0, "{out}");
    assert_eq!(stats(&recap, "h1").failed, 0, "{out}");
    assert!(!out.contains("RUNNING HANDLER"), "{out}");
    assert_eq!(read(dir.path().join("h1/handlers.log")), "one\ntwo\n");
}

#[tokio::test]
async fn block_rescue_always_are_counted_like_ansible() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1"])),
        (
            "site.yaml",
            r#"
- hosts: all
  gather_facts: false
  tasks:
    - file: {path: "{{ base }}", state: directory}
    - block:
        - command: "false"
        - copy: {dest: "{{ base }}/not-reached", content: x}
      rescue:
        - copy: {dest: "{{ base }}/rescued", content: "rc={{ ansible_failed_result.rc }}\n"}
      always:
        - copy: {dest: "{{ base }}/always1", content: x}
    - block:
        - fail: msg=unrescued
      always:
        - copy: {dest: "{{ base }}/always2", content: x}
    - copy: {dest: "{{ base }}/after", content: x}
"#,
        ),
    ]);
    let (recap, out) = run_ok(options(dir.path(), "site.yaml")).await;
    let s = stats(&recap, "h1");
    assert_eq!((s.rescued, s.failed), (1, 1), "{out}");
    assert_eq!(recap.exit_code(), 2);
    let base = dir.path().join("h1");
    assert_eq!(read(base.join("rescued")), "rc=1\n");
    assert!(base.join("always1").exists() && base.join("always2").exists());
    assert!(!base.join("not-reached").exists());
    assert!(
        !base.join("after").exists(),
        "a failed host leaves the play"
    );
}

const TAGS: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - file: {path: "{{ base }}", state: directory}
      tags: [always]
    - copy: {dest: "{{ base }}/web", content: x}
      tags: [web]
    - copy: {dest: "{{ base }}/db", content: x}
      tags: [db]
    - copy: {dest: "{{ base }}/never", content: x}
      tags: [never, debug]
    - copy: {dest: "{{ base }}/untagged", content: x}
    - copy: {dest: "{{ base }}/when-false", content: x}
      when: inventory_hostname == 'nope'
    - copy: {dest: "{{ base }}/when-list", content: x}
      when: [true, "inventory_hostname == 'h1'"]
    - block:
        - copy: {dest: "{{ base }}/blocktag", content: x}
      tags: [web]
"#;

fn present(base: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(base)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn when_and_tags_select_tasks() {
    let dir = tree(&[("inv.yaml", &local_inventory(&["h1"])), ("site.yaml", TAGS)]);
    let base = dir.path().join("h1");

    let mut opts = options(dir.path(), "site.yaml");
    opts.tags = vec!["web".into()];
    let (recap, out) = run_ok(opts).await;
    assert_eq!(present(&base), vec!["blocktag", "web"], "{out}");
    assert_eq!(stats(&recap, "h1").changed, 3);

    let mut opts = options(dir.path(), "site.yaml");
    opts.skip_tags = vec!["web".into()];
    let (recap, out) = run_ok(opts).await;
    assert_eq!(
        present(&base),
        vec!["blocktag", "db", "untagged", "web", "when-list"],
        "{out}"
    );
    assert_eq!(stats(&recap, "h1").skipped, 1, "when false: {out}");

    let mut opts = options(dir.path(), "site.yaml");
    opts.tags = vec!["debug".into()];
    run_ok(opts).await;
    assert!(base.join("never").exists());
}

#[tokio::test]
async fn check_mode_changes_nothing_then_runs_converge_idempotently_with_diffs() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1"])),
        (
            "site.yaml",
            r#"
- hosts: all
  gather_facts: false
  tasks:
    - copy: {dest: "{{ base }}/conf", content: "line1\nline2\n"}
    - command: touch {{ base }}/cmd-ran
      args: {creates: "{{ base }}/cmd-ran"}
    - command: echo hi
      changed_when: false
"#,
        ),
    ]);
    let base = dir.path().join("h1");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::write(base.join("conf"), "line1\nold\n").unwrap();

    let mut opts = options(dir.path(), "site.yaml");
    opts.check = true;
    opts.diff = true;
    let (recap, out) = run_ok(opts).await;
    let s = stats(&recap, "h1");
    assert_eq!((s.changed, s.skipped, s.failed), (2, 1, 0), "{out}");
    assert!(out.contains("-old\n+line2\n"), "diff shown: {out}");
    assert_eq!(
        read(base.join("conf")),
        "line1\nold\n",
        "check changed nothing"
    );
    assert!(!base.join("cmd-ran").exists());

    let (recap, out) = run_ok(options(dir.path(), "site.yaml")).await;
    assert_eq!(stats(&recap, "h1").changed, 2, "{out}");
    assert_eq!(read(base.join("conf")), "line1\nline2\n");
    assert!(base.join("cmd-ran").exists());

    let (recap, out) = run_ok(options(dir.path(), "site.yaml")).await;
    let s = stats(&recap, "h1");
    assert_eq!((s.changed, s.ok, s.failed), (0, 3, 0), "second run: {out}");
}

#[tokio::test]
async fn no_log_hides_values_in_lines_diffs_and_json() {
    let playbook = r#"
- hosts: all
  gather_facts: false
  vars: {secret: hunter2}
  tasks:
    - file: {path: "{{ base }}", state: directory}
    - copy: {dest: "{{ base }}/s", content: "{{ secret }}\n"}
      no_log: true
    - debug: msg="{{ secret }}"
      no_log: true
    - command: echo {{ secret }}
      no_log: true
      loop: [1]
    - fail: msg="{{ secret }}"
      no_log: true
      ignore_errors: true
"#;
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1"])),
        ("site.yaml", playbook),
    ]);
    let mut opts = options(dir.path(), "site.yaml");
    opts.diff = true;
    opts.verbosity = 2;
    let (recap, out) = run_ok(opts).await;
    assert_eq!(
        read(dir.path().join("h1/s")),
        "hunter2\n",
        "the task did run"
    );
    assert!(!out.contains("hunter2"), "{out}");
    assert!(out.contains("'no_log: true' was specified"), "{out}");
    assert!(out.contains("(item=None)"), "{out}");
    assert_eq!(stats(&recap, "h1").ignored, 1);

    std::fs::remove_file(dir.path().join("h1/s")).unwrap();
    let buf = Buf::default();
    let mut opts = options(dir.path(), "site.yaml");
    opts.diff = true;
    let reporter = std::sync::Arc::new(Json::new(shared(Box::new(buf.clone()))));
    infra::engine::run_with(opts, reporter).await.unwrap();
    let text = buf.text();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(doc["plays"][0]["tasks"].as_array().unwrap().len() >= 5);
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn includes_and_free_strategy_with_serial() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1", "h2", "h3"])),
        (
            "inc.yaml",
            "- copy: {dest: \"{{ base }}/inc-{{ item }}\", content: \"{{ item }}\\n\"}\n",
        ),
        (
            "roles/dyn/tasks/main.yml",
            "- copy: {dest: \"{{ base }}/role-{{ role_name }}\", content: \"{{ dyn_value }}\\n\"}\n",
        ),
        ("roles/dyn/defaults/main.yml", "dyn_value: default\n"),
        (
            "site.yaml",
            r#"
- hosts: all
  gather_facts: false
  strategy: free
  serial: 2
  tasks:
    - file: {path: "{{ base }}", state: directory}
    - include_tasks: "{{ 'inc' }}.yaml"
      loop: [x, y]
    - include_role: {name: dyn}
      vars: {dyn_value: given}
"#,
        ),
    ]);
    let (recap, out) = run_ok(options(dir.path(), "site.yaml")).await;
    for h in ["h1", "h2", "h3"] {
        let base = dir.path().join(h);
        assert_eq!(stats(&recap, h).failed, 0, "{out}");
        assert_eq!(read(base.join("inc-y")), "y\n", "{out}");
        assert_eq!(read(base.join("role-dyn")), "given\n", "{out}");
    }
    assert!(out.contains("included: "), "{out}");
}

/// A task file that includes itself through a templated name escapes the loader's cycle
/// check (the name is known only at run time): the engine stops it at a fixed depth with
/// an error naming the chain, instead of recursing until it runs out of memory.
#[tokio::test]
async fn a_dynamic_include_of_itself_fails_at_the_depth_limit() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1"])),
        ("again.yaml", "- include_tasks: \"{{ 'again' }}.yaml\"\n"),
        (
            "site.yaml",
            r#"
- hosts: all
  gather_facts: false
  tasks:
    - include_tasks: "{{ 'again' }}.yaml"
    - debug: msg=never
"#,
        ),
    ]);
    let started = std::time::Instant::now();
    let (recap, out) = run_ok(options(dir.path(), "site.yaml")).await;
    assert_eq!(stats(&recap, "h1").failed, 1, "{out}");
    assert!(
        out.contains("includes nested more than 64 deep (an include cycle?): again.yaml -> again.yaml -> ... -> again.yaml"),
        "{out}"
    );
    assert!(!out.contains("never"), "{out}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

/// A template file sees `hostvars` and `groups` when it names them, and renders without
/// them when it does not (the engine scans the file to leave every host's facts out of a
/// template that does not need them).
#[tokio::test]
async fn a_template_that_names_hostvars_sees_every_host() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1", "h2"])),
        (
            "peers.j2",
            "{% for h in groups['all'] | sort %}{{ h }}={{ hostvars[h].colour }}\n{% endfor %}",
        ),
        ("plain.j2", "{{ inventory_hostname }} {{ colour }}\n"),
        (
            "site.yaml",
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - set_fact:\n        colour: \"{{ 'red' if inventory_hostname == 'h1' else 'blue' }}\"\n    - file: {path: \"{{ base }}\", state: directory}\n    - template: {src: peers.j2, dest: \"{{ base }}/peers\"}\n    - template: {src: plain.j2, dest: \"{{ base }}/plain\"}\n",
        ),
    ]);
    let (_, out) = run_ok(options(dir.path(), "site.yaml")).await;
    for h in ["h1", "h2"] {
        let peers = std::fs::read_to_string(dir.path().join(h).join("peers")).unwrap();
        assert_eq!(peers, "h1=red\nh2=blue\n", "{h}: {out}");
    }
    let plain = std::fs::read_to_string(dir.path().join("h2/plain")).unwrap();
    assert_eq!(plain, "h2 blue\n");
}
