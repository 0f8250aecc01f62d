//! Bad input: every case is written to real files and loaded; the error must name the
//! file, line and column of the offending key and say what is wrong (with a suggestion
//! where one helps). One load reports every problem it finds.

#[path = "support/playbook.rs"]
mod sp;

use std::path::Path;

/// Loads `play.yml` (plus other files) from a temp folder; returns the errors, shortened.
fn errors_of(files: &[(&str, &str)]) -> Vec<String> {
    let dir = sp::write_tree(files);
    let errors = sp::load_errors(&dir.path().join("play.yml"), &[]);
    sp::short(&errors, dir.path())
}

fn one_error(play: &str) -> String {
    let errors = errors_of(&[("play.yml", play)]);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    errors.into_iter().next().unwrap()
}

#[test]
fn yaml_syntax_error() {
    let error = one_error("- hosts: all\n  tasks:\n    - name: [unclosed\n      debug: msg=x\n");
    assert!(error.starts_with("play.yml:4:"), "{error}");
    assert!(error.contains("YAML syntax error"), "{error}");
}

#[test]
fn yaml_bad_indentation() {
    let error =
        one_error("- hosts: all\n  tasks:\n    - name: x\n      debug: msg=x\n     bad: 1\n");
    assert!(error.starts_with("play.yml:5:"), "{error}");
    assert!(error.contains("YAML syntax error"), "{error}");
}

#[test]
fn unknown_play_keyword_suggests() {
    assert_eq!(
        one_error("- hosts: all\n  gather_fact: no\n"),
        "play.yml:2:3: unknown play keyword 'gather_fact', did you mean 'gather_facts'?"
    );
}

#[test]
fn module_at_play_level_points_to_tasks() {
    assert_eq!(
        one_error("- hosts: all\n  copy: {dest: /x, content: y}\n"),
        "play.yml:2:3: unknown play keyword 'copy' (tasks belong under 'tasks:')"
    );
}

#[test]
fn play_without_hosts() {
    assert_eq!(
        one_error("- name: p\n  tasks: []\n"),
        "play.yml:1:3: a play needs 'hosts'"
    );
}

#[test]
fn unsupported_play_keyword() {
    assert_eq!(
        one_error("- hosts: all\n  module_defaults: {}\n"),
        "play.yml:2:3: play keyword 'module_defaults' is not supported"
    );
}

#[test]
fn unknown_task_keyword_suggests() {
    assert_eq!(
        one_error("- hosts: all\n  tasks:\n    - name: t\n      debug: msg=x\n      whne: x\n"),
        "play.yml:5:7: unknown task keyword 'whne', did you mean 'when'?"
    );
}

#[test]
fn unknown_module_suggests_closest() {
    assert_eq!(
        one_error(
            "- hosts: all\n  tasks:\n    - name: t\n      ansible.builtin.cpy:\n        dest: /x\n"
        ),
        "play.yml:4:7: unknown module 'ansible.builtin.cpy', did you mean 'copy'?"
    );
    assert_eq!(
        one_error("- hosts: all\n  tasks:\n    - name: t\n      frobnicate: {}\n"),
        "play.yml:4:7: unknown module 'frobnicate'"
    );
}

#[test]
fn task_without_module() {
    assert_eq!(
        one_error("- hosts: all\n  tasks:\n    - name: nothing\n      when: x\n"),
        "play.yml:3:7: task has no action: give it a module (e.g. 'command:'), an include or a 'block:'"
    );
}

#[test]
fn task_with_two_modules() {
    assert_eq!(
        one_error(
            "- hosts: all\n  tasks:\n    - name: t\n      copy: {dest: /x, content: y}\n      \
             ansible.builtin.debug: msg=x\n"
        ),
        "play.yml:5:7: a task can run only one action, this one has 'copy' and 'debug'"
    );
}

#[test]
fn unknown_argument_suggests() {
    assert_eq!(
        one_error("- hosts: all\n  tasks:\n    - copy:\n        content: x\n        dst: /x\n        dest: /y\n"),
        "play.yml:5:9: module 'copy' has no argument 'dst', did you mean 'dest'?"
    );
}

#[test]
fn unknown_argument_in_key_value_string() {
    assert_eq!(
        one_error("- hosts: all\n  tasks:\n    - service: name=nginx stat=started\n"),
        "play.yml:3:27: module 'service' has no argument 'stat', did you mean 'state'?"
    );
}

#[test]
fn unknown_argument_in_args_keyword() {
    assert_eq!(
        one_error(
            "- hosts: all\n  tasks:\n    - copy: content=x\n      args:\n        dest: /x\n        \
             mdoe: '0644'\n"
        ),
        "play.yml:6:9: module 'copy' has no argument 'mdoe', did you mean 'mode'?"
    );
}

#[test]
fn missing_required_argument() {
    assert_eq!(
        one_error("- hosts: all\n  tasks:\n    - name: t\n      template:\n        src: a.j2\n"),
        "play.yml:4:7: module 'template' is missing the required argument 'dest'"
    );
}

#[test]
fn one_of_group_none_and_both() {
    assert_eq!(
        one_error("- hosts: all\n  tasks:\n    - copy: dest=/x\n"),
        "play.yml:3:7: module 'copy' needs one of: src, content"
    );
    assert_eq!(
        one_error("- hosts: all\n  tasks:\n    - copy: dest=/x src=a content=b\n"),
        "play.yml:3:7: module 'copy': only one of src, content may be given"
    );
}

#[test]
fn free_form_counts_for_command_but_not_twice() {
    // `command: ls` satisfies the cmd/argv group; `cmd` and free text together do not.
    let dir = sp::write_tree(&[(
        "play.yml",
        "- hosts: all\n  tasks:\n    - command: ls -l\n    - shell: echo a\n      args:\n        chdir: /tmp\n",
    )]);
    sp::load(&dir.path().join("play.yml"), &[]).unwrap();
    assert_eq!(
        one_error("- hosts: all\n  tasks:\n    - command: ls\n      args:\n        cmd: pwd\n"),
        "play.yml:3:7: module 'command': only one of cmd, argv may be given"
    );
}

#[test]
fn alias_given_twice() {
    assert_eq!(
        one_error("- hosts: all\n  tasks:\n    - file:\n        path: /a\n        dest: /b\n"),
        "play.yml:5:9: module 'file': argument 'path' is given twice (as 'path' and 'dest')"
    );
}

#[test]
fn free_form_text_for_a_key_value_module() {
    let errors = errors_of(&[("play.yml", "- hosts: all\n  tasks:\n    - service: nginx\n")]);
    assert_eq!(
        errors,
        [
            "play.yml:3:16: module 'service' takes key=value arguments, not free-form text ('nginx')",
            "play.yml:3:7: module 'service' is missing the required argument 'name'",
        ]
    );
}

#[test]
fn missing_role() {
    let error = one_error("- hosts: all\n  roles:\n    - nosuchrole\n");
    assert!(
        error.starts_with("play.yml:3:7: role 'nosuchrole' not found (looked in "),
        "{error}"
    );
}

#[test]
fn missing_task_file() {
    let error = one_error("- hosts: all\n  tasks:\n    - import_tasks: nope.yml\n");
    assert!(
        error.starts_with("play.yml:3:7: task file 'nope.yml' not found (looked for "),
        "{error}"
    );
}

#[test]
fn missing_vars_file() {
    let error =
        one_error("- hosts: all\n  vars_files:\n    - vars/none.yml\n    - \"{{ later }}.yml\"\n");
    assert!(
        error.starts_with("play.yml:3:7: vars file 'vars/none.yml' not found in "),
        "{error}"
    );
}

#[test]
fn bad_vars_file_content() {
    let errors = errors_of(&[
        ("play.yml", "- hosts: all\n  vars_files: [v.yml]\n"),
        ("v.yml", "- just\n- a list\n"),
    ]);
    assert_eq!(
        errors,
        ["v.yml:1:1: a vars file must hold a mapping, not a list"]
    );
}

#[test]
fn unknown_meta_action() {
    assert_eq!(
        one_error("- hosts: all\n  tasks:\n    - meta: flush_handler\n"),
        "play.yml:3:13: unknown meta action 'flush_handler', did you mean 'flush_handlers'?"
    );
}

#[test]
fn loop_on_a_block() {
    assert_eq!(
        one_error(
            "- hosts: all\n  tasks:\n    - block:\n        - debug: msg=x\n      loop: [1]\n"
        ),
        "play.yml:5:7: 'loop' is not valid on a block"
    );
}

#[test]
fn listen_outside_handlers() {
    assert_eq!(
        one_error("- hosts: all\n  tasks:\n    - debug: msg=x\n      listen: t\n"),
        "play.yml:4:7: 'listen' is only valid on handlers"
    );
}

#[test]
fn bad_strategy_and_templated_gather_facts() {
    let errors = errors_of(&[(
        "play.yml",
        "- hosts: all\n  strategy: lineer\n  gather_facts: \"{{ b }}\"\n  become: maybe\n",
    )]);
    assert_eq!(
        errors,
        [
            "play.yml:2:13: unknown strategy 'lineer' (linear or free), did you mean 'linear'?",
            "play.yml:3:17: 'gather_facts' must be true or false (templates are not supported here)",
            "play.yml:4:11: 'become' must be true or false",
        ]
    );
}

#[test]
fn removed_include_and_unknown_lookup_loops() {
    let errors = errors_of(&[(
        "play.yml",
        "- hosts: all\n  tasks:\n    - include: x.yml\n    - debug: msg={{ item }}\n      with_filegob: '*'\n    - debug: msg={{ item }}\n      with_fileglob: '*'\n",
    )]);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(
        errors[0],
        "play.yml:3:7: 'include' was removed from Ansible; use 'include_tasks' or 'import_tasks'"
    );
    assert!(
        errors[1].starts_with(
            "play.yml:5:7: 'with_filegob': no lookup plugin 'filegob', did you mean 'fileglob'? (infra has file, "
        ),
        "{errors:?}"
    );
}

#[test]
fn errors_inside_roles_name_the_role_file() {
    let errors = errors_of(&[
        ("play.yml", "- hosts: all\n  roles: [r]\n"),
        (
            "roles/r/tasks/main.yml",
            "- name: ok\n  debug: msg=x\n- name: bad\n  copy: {dest: /x, content: y, color: red}\n",
        ),
        ("roles/r/handlers/main.yml", "- name: h\n  servce: name=x\n"),
    ]);
    assert_eq!(
        errors,
        [
            "roles/r/tasks/main.yml:4:32: module 'copy' has no argument 'color'",
            "roles/r/handlers/main.yml:2:3: unknown module 'servce', did you mean 'service'?",
        ]
    );
}

#[test]
fn all_errors_of_one_load_are_reported() {
    let errors = errors_of(&[
        (
            "play.yml",
            "- hosts: all\n  tasks:\n    - copy: {dest: /x}\n    - include_tasks: inc.yml\n    - debgu: msg=x\n\
             - hosts: db\n  post_task: []\n",
        ),
        ("inc.yml", "- name: in include\n  template: {src: a}\n"),
    ]);
    assert_eq!(
        errors,
        [
            "play.yml:3:7: module 'copy' needs one of: src, content",
            "inc.yml:2:3: module 'template' is missing the required argument 'dest'",
            "play.yml:5:7: unknown module 'debgu', did you mean 'debug'?",
            "play.yml:7:3: unknown play keyword 'post_task', did you mean 'post_tasks'?",
        ]
    );
}

#[test]
fn error_display_lists_every_error_with_position() {
    let dir = sp::write_tree(&[(
        "play.yml",
        "- hosts: all\n  tasks:\n    - copy: {dest: /x}\n    - debgu: msg=x\n",
    )]);
    let path = dir.path().join("play.yml");
    let message = format!("{:#}", sp::load(&path, &[]).unwrap_err());
    let p = path.display();
    assert_eq!(
        message,
        format!(
            "2 errors in the playbook:\n{p}:3:7: module 'copy' needs one of: src, content\n\
             {p}:4:7: unknown module 'debgu', did you mean 'debug'?"
        )
    );
}

#[test]
fn missing_playbook() {
    let errors = sp::load_errors(Path::new("/nonexistent/play.yml"), &[]);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]
            .to_string()
            .starts_with("/nonexistent/play.yml: cannot read /nonexistent/play.yml"),
        "{}",
        errors[0]
    );
}

#[test]
fn empty_playbook() {
    assert_eq!(
        one_error("# nothing\n"),
        "play.yml:1:1: the playbook is empty"
    );
}

#[test]
fn notify_must_name_a_handler() {
    let errors = errors_of(&[(
        "play.yml",
        "- hosts: all\n  tasks:\n    - name: t\n      debug: msg=x\n      notify: [restart nginx, reload ngnix, \"{{ later }}\"]\n  \
         handlers:\n    - name: restart nginx\n      debug: msg=r\n    - name: other\n      debug: msg=o\n      listen: reload nginx\n",
    )]);
    assert_eq!(
        errors,
        ["play.yml:3:7: notify: no handler named 'reload ngnix' in this play, did you mean 'reload nginx'?"]
    );
}

#[test]
fn free_form_module_without_a_command() {
    // The test registry's shell has no one_of group (like the real command/shell).
    assert_eq!(
        one_error("- hosts: all\n  tasks:\n    - shell: creates=/x chdir=/tmp\n"),
        "play.yml:3:7: module 'shell' needs a command (free-form text, 'cmd' or 'argv')"
    );
}

#[test]
fn key_value_positions_inside_quoted_strings() {
    assert_eq!(
        one_error("- hosts: all\n  tasks:\n    - copy: \"dest=/x content=y colr=1\"\n"),
        "play.yml:3:32: module 'copy' has no argument 'colr'"
    );
}
