//! Keywords that take templates (evaluated per host), delegation with run_once and
//! delegate_facts, meta actions with `when`, include_role's `*_from`/`public`/`apply`,
//! handlers reached through `listen` from an included role, FQCN engine actions,
//! vars_prompt without a terminal, and the action modules as the engine runs them. Real
//! playbooks through the engine on local hosts (and the `infra` binary for vars_prompt).

#[path = "support/engine.rs"]
mod support;

use support::*;

/// Two local hosts whose variables make every templated keyword differ between them.
const INVENTORY: &str = r#"all:
  vars:
    ansible_connection: local
  hosts:
    h1:
      base: "@DIR@/h1"
      tolerate: true
      use_sudo: "yes"
      dry: "on"
      secret: 1
      once: "True"
      gap: 0.2
    h2:
      base: "@DIR@/h2"
      tolerate: false
      use_sudo: "no"
      dry: "off"
      secret: 0
      once: "True"
      gap: 0
"#;

#[tokio::test]
async fn templated_keywords_are_evaluated_per_host() {
    let dir = tree(&[
        ("inv.yaml", INVENTORY),
        (
            "site.yaml",
            r#"
- hosts: all
  gather_facts: false
  vars:
    extra_env: {B: "b-{{ inventory_hostname }}"}
    task_env: {C: c}
  environment: [{A: play}, "{{ extra_env }}"]
  tasks:
    - file: {path: "{{ base }}", state: directory}
    - name: environment from templates
      shell: echo $A-$B-$C
      environment: "{{ task_env }}"
      register: envout
      changed_when: false
    - name: become from a template
      command: id -un
      become: "{{ use_sudo }}"
      become_user: daemon
      register: who
      changed_when: false
    - name: check mode from a template
      copy: {dest: "{{ base }}/dry", content: x}
      check_mode: "{{ dry }}"
    - name: no_log from a template
      debug: {msg: "secret-{{ inventory_hostname }}"}
      no_log: "{{ secret }}"
    - name: paused loop
      debug: {msg: "{{ item }}"}
      loop: [a, b, c]
      loop_control: {pause: "{{ gap }}", label: "L-{{ item }}"}
    - name: once for the batch, on the controller
      command: echo {{ inventory_hostname }}
      run_once: "{{ once }}"
      delegate_to: localhost
      register: one
    - name: facts for the delegated host
      ansible.builtin.set_fact: {gift: "from {{ inventory_hostname }}"}
      delegate_to: h2
      delegate_facts: "{{ true }}"
      run_once: true
    - ansible.builtin.assert:
        that:
          - "who.stdout == ('daemon' if inventory_hostname == 'h1' else 'root')"
          - "envout.stdout == 'play-b-' ~ inventory_hostname ~ '-c'"
          - one.stdout == 'h1'
          - hostvars['h2'].gift == 'from h1'
          - hostvars['h1'].gift is not defined
    - name: tolerated where the host says so
      command: "false"
      ignore_errors: "{{ tolerate }}"
    - name: only the tolerant host gets here
      file: {path: "{{ base }}/after", state: touch}
"#,
        ),
    ]);
    let started = std::time::Instant::now();
    let (recap, out) = run_ok(options(dir.path(), "site.yaml")).await;
    let (h1, h2) = (&recap.hosts["h1"], &recap.hosts["h2"]);
    assert_eq!((h1.failed, h1.ignored), (0, 1), "{out}");
    assert_eq!((h2.failed, h2.ignored), (1, 0), "{out}");
    assert!(dir.path().join("h1/after").exists());
    assert!(!dir.path().join("h2/after").exists());
    assert!(!dir.path().join("h1/dry").exists(), "h1 ran in check mode");
    assert!(dir.path().join("h2/dry").exists(), "h2 ran for real");
    assert!(
        !out.contains("secret-h1"),
        "h1's no_log result shown: {out}"
    );
    assert!(out.contains("secret-h2"), "h2's result hidden: {out}");
    assert!(out.contains("L-b"), "loop label: {out}");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(400),
        "h1 pauses 0.2s between its 3 items"
    );
}

#[tokio::test]
async fn a_keyword_template_that_is_not_a_boolean_fails_the_task_with_its_name() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1"])),
        (
            "site.yaml",
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: odd\n      command: \"true\"\n      ignore_errors: \"{{ 'maybe' }}\"\n",
        ),
    ]);
    let (recap, out) = run_ok(options(dir.path(), "site.yaml")).await;
    assert_eq!(recap.hosts["h1"].failed, 1, "{out}");
    assert!(
        out.contains("site.yaml:4:7: task 'odd': keyword 'ignore_errors' must be a boolean")
            && out.contains("gave 'maybe'"),
        "{out}"
    );
}

#[tokio::test]
async fn keywords_on_plays_blocks_and_role_entries_reach_their_tasks() {
    let dir = tree(&[
        ("inv.yaml", INVENTORY),
        (
            "roles/r/tasks/main.yml",
            "- command: \"false\"\n- file: {path: \"{{ base }}/role-done\", state: touch}\n",
        ),
        (
            "site.yaml",
            r#"
- hosts: all
  gather_facts: false
  ignore_errors: "{{ tolerate }}"
  pre_tasks:
    - file: {path: "{{ base }}", state: directory}
      ignore_errors: false
  roles:
    - role: r
      become: "{{ use_sudo }}"
  tasks:
    - block:
        - command: "false"
      ignore_errors: true
    - file: {path: "{{ base }}/play-done", state: touch}
"#,
        ),
    ]);
    let (recap, out) = run_ok(options(dir.path(), "site.yaml")).await;
    assert_eq!(recap.hosts["h1"].ignored, 2, "{out}");
    assert!(dir.path().join("h1/play-done").exists(), "{out}");
    assert_eq!(recap.hosts["h2"].failed, 1, "{out}");
    assert!(!dir.path().join("h2/role-done").exists(), "{out}");
}

#[tokio::test]
async fn meta_end_host_and_end_batch_with_when() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1", "h2", "h3"])),
        (
            "site.yaml",
            r#"
- hosts: all
  gather_facts: false
  tasks:
    - file: {path: "{{ base }}", state: directory}
    - ansible.builtin.meta: end_host
      when: inventory_hostname == 'h2'
    - file: {path: "{{ base }}/one", state: touch}
- hosts: all
  gather_facts: false
  serial: 1
  tasks:
    - meta: end_batch
      when: inventory_hostname == 'h1'
    - file: {path: "{{ base }}/two", state: touch}
    - meta: noop
    - meta: clear_facts
    - meta: reset_connection
"#,
        ),
    ]);
    let (recap, out) = run_ok(options(dir.path(), "site.yaml")).await;
    for h in ["h1", "h2", "h3"] {
        assert_eq!(recap.hosts[h].failed, 0, "{out}");
    }
    let exists = |p: &str| dir.path().join(p).exists();
    assert!(
        exists("h1/one") && !exists("h2/one") && exists("h3/one"),
        "{out}"
    );
    assert!(
        !exists("h1/two") && exists("h2/two") && exists("h3/two"),
        "{out}"
    );
}

#[tokio::test]
async fn include_role_files_public_apply_and_listen_handlers() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1"])),
        ("roles/r/tasks/main.yml", "- debug: {msg: main}\n"),
        (
            "roles/r/tasks/other.yml",
            "- command: id -un\n  register: role_user\n  changed_when: true\n  notify: topic\n- set_fact: {seen_user: \"{{ role_user.stdout }}\"}\n",
        ),
        ("roles/r/vars/main.yml", "x: main\n"),
        ("roles/r/vars/alt.yml", "x: alt\n"),
        ("roles/r/defaults/main.yml", "d: main\n"),
        ("roles/r/defaults/alt.yml", "d: alt\n"),
        (
            "roles/r/handlers/main.yml",
            "- name: main handler\n  file: {path: \"{{ base }}/main-handler\", state: touch}\n",
        ),
        (
            "roles/r/handlers/extra.yml",
            "- name: listening handler\n  listen: topic\n  file: {path: \"{{ base }}/listened\", state: touch}\n",
        ),
        ("roles/private/tasks/main.yml", "- debug: {msg: \"{{ y }}\"}\n"),
        ("roles/private/vars/main.yml", "y: hidden\n"),
        (
            "site.yaml",
            r#"
- hosts: all
  gather_facts: false
  tasks:
    - file: {path: "{{ base }}", state: directory}
    - ansible.builtin.include_role:
        name: r
        tasks_from: other
        vars_from: alt.yml
        defaults_from: alt
        handlers_from: extra
        public: true
        apply:
          become: true
          become_user: daemon
    - ansible.builtin.assert:
        that: [x == 'alt', d == 'alt', seen_user == 'daemon']
    - ansible.builtin.meta: flush_handlers
    - ansible.builtin.include_role: {name: private}
    - ansible.builtin.assert:
        that: [y is not defined]
    - ansible.builtin.import_tasks: more.yml
    - ansible.builtin.include_tasks: more.yml
"#,
        ),
        ("more.yml", "- ansible.builtin.debug: {var: x}\n"),
    ]);
    let (recap, out) = run_ok(options(dir.path(), "site.yaml")).await;
    assert_eq!(recap.hosts["h1"].failed, 0, "{out}");
    assert!(dir.path().join("h1/listened").exists(), "{out}");
    assert!(!dir.path().join("h1/main-handler").exists(), "{out}");
}

#[tokio::test]
async fn a_missing_vars_from_file_names_the_role_and_file() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1"])),
        ("roles/r/tasks/main.yml", "- debug: {msg: main}\n"),
        (
            "site.yaml",
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - import_role: {name: r, vars_from: nope}\n",
        ),
    ]);
    let (result, _) = run(options(dir.path(), "site.yaml")).await;
    let err = format!("{:#}", result.unwrap_err());
    assert!(
        err.contains("site.yaml:4:7")
            && err.contains("Could not find specified file in role: vars/nope")
            && err.contains("role 'r'"),
        "{err}"
    );
}

#[test]
fn vars_prompt_without_a_terminal() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1"])),
        (
            "asks.yaml",
            "- hosts: all\n  gather_facts: false\n  vars_prompt:\n    - name: secret\n      prompt: Secret?\n  tasks:\n    - copy: {dest: \"@DIR@/out\", content: \"{{ secret }}\"}\n",
        ),
        (
            "defaults.yaml",
            "- hosts: all\n  gather_facts: false\n  vars_prompt:\n    - name: colour\n      default: blue\n      private: false\n  tasks:\n    - copy: {dest: \"@DIR@/colour\", content: \"{{ colour }}\"}\n",
        ),
    ]);
    let (code, stdout, stderr) = infra(&["play", "asks.yaml", "-i", "inv.yaml"], dir.path());
    assert_ne!(code, 0, "{stdout}{stderr}");
    assert!(
        stderr.contains(
            "asks.yaml:4:7: vars_prompt 'secret' needs an answer but stdin is not a terminal"
        ),
        "{stderr}"
    );
    assert!(!dir.path().join("out").exists(), "no host was touched");

    let (code, stdout, stderr) = infra(
        &["play", "asks.yaml", "-i", "inv.yaml", "-e", "secret=given"],
        dir.path(),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out")).unwrap(),
        "given"
    );

    let (code, stdout, stderr) = infra(&["play", "defaults.yaml", "-i", "inv.yaml"], dir.path());
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("colour")).unwrap(),
        "blue"
    );
}

#[tokio::test]
async fn action_modules_run_as_the_module_tests_check_them() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1"])),
        (
            "site.yaml",
            r#"
- hosts: all
  gather_facts: false
  tasks:
    - debug: {msg: loud, verbosity: 2}
      register: quiet_debug
    - set_fact: {kept: 1, typed: [1, 2], flag: true}
      register: facts
    - set_fact: {cached: yes}
      args: {cacheable: true}
    - assert:
        that: kept == 1
        success_msg: fine
      register: passed
    - assert: {that: "typed | length == 2", quiet: true}
      register: silent
    - assert: {that: "kept == 2", fail_msg: "custom failure"}
      register: failed_assert
      ignore_errors: true
    - fail: {msg: "told to"}
      register: failed_task
      ignore_errors: true
    - pause: {seconds: 0}
      register: paused
    - ping:
      register: pong
    - assert:
        that:
          - quiet_debug is skipped
          - facts.ansible_facts.typed == [1, 2]
          - facts.ansible_facts.flag is sameas true
          - facts._ansible_facts_cacheable is not defined
          - ansible_facts.cached
          - passed.msg == 'fine'
          - silent.msg is not defined
          - failed_assert.msg == 'custom failure'
          - failed_assert.assertion == 'kept == 2'
          - failed_assert.evaluated_to == false
          - failed_task.msg == 'told to'
          - paused.stdout.startswith('Paused for')
          - pong.ping == 'pong'
"#,
        ),
    ]);
    let (recap, out) = run_ok(options(dir.path(), "site.yaml")).await;
    let h1 = &recap.hosts["h1"];
    assert_eq!((h1.failed, h1.ignored, h1.skipped), (0, 2, 1), "{out}");
}

#[tokio::test]
async fn templated_any_errors_fatal_stops_every_host() {
    let dir = tree(&[
        ("inv.yaml", &local_inventory(&["h1", "h2"])),
        (
            "site.yaml",
            r#"
- hosts: all
  gather_facts: false
  vars: {stop_all: "yes"}
  tasks:
    - file: {path: "{{ base }}", state: directory}
    - command: "{{ 'false' if inventory_hostname == 'h1' else 'true' }}"
      any_errors_fatal: "{{ stop_all }}"
    - file: {path: "{{ base }}/after", state: touch}
"#,
        ),
    ]);
    let (recap, out) = run_ok(options(dir.path(), "site.yaml")).await;
    assert_eq!(recap.hosts["h1"].failed, 1, "{out}");
    assert!(!dir.path().join("h2/after").exists(), "{out}");
}
