//! Role search order (beside the playbook, then each roles_path entry in order, then by
//! path), include cycles (task files, role dependencies, a role including itself), and
//! the run-time loaders `load_tasks_file` and `load_role`.

#[path = "support/playbook.rs"]
mod sp;

use std::sync::Arc;

use infra::playbook::{self, Role, TaskKind};

fn task_names(role: &Role) -> Vec<String> {
    role.tasks
        .iter()
        .map(|t| t.name.clone().unwrap_or_default())
        .collect()
}

#[test]
fn role_search_order() {
    let base = sp::fixtures().join("search");
    let roles_path = [base.join("extra1"), base.join("extra2")];
    let pb = sp::load(&base.join("play.yml"), &roles_path).unwrap();
    let roles = &pb.plays[0].roles;
    let found: Vec<(String, Vec<String>)> = roles
        .iter()
        .map(|r| (r.name.clone(), task_names(r)))
        .collect();
    assert_eq!(
        found,
        [
            // beside the playbook wins over roles_path
            ("dup".to_string(), vec!["from roles/dup".to_string()]),
            // the first roles_path entry wins over the second
            ("multi".to_string(), vec!["from extra1/multi".to_string()]),
            (
                "only_in_path".to_string(),
                vec!["from extra2/only_in_path".to_string()]
            ),
            // a path-like name is used as a path from the playbook's folder
            (
                "pathrole".to_string(),
                vec!["from local/pathrole".to_string()]
            ),
        ]
    );
}

#[test]
fn role_not_found_lists_where_it_looked() {
    let base = sp::fixtures().join("search");
    // Without roles_path, only_in_path cannot be found.
    let errors = sp::load_errors(&base.join("play.yml"), &[]);
    let messages: Vec<String> = sp::short(&errors, &base);
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(
        messages[0].starts_with("play.yml:4:7: role 'multi' not found (looked in "),
        "{}",
        messages[0]
    );
    assert!(messages[0].contains(&base.join("roles/multi").display().to_string()));
    assert!(messages[1].starts_with("play.yml:5:7: role 'only_in_path' not found"));
}

#[test]
fn task_include_cycle() {
    let base = sp::fixtures().join("cycle");
    let errors = sp::load_errors(&base.join("play.yml"), &[]);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let error = &errors[0];
    assert_eq!(error.loc.file, base.join("b.yml"));
    assert_eq!((error.loc.line, error.loc.col), (3, 3));
    let a = base.join("a.yml").canonicalize().unwrap();
    let b = base.join("b.yml").canonicalize().unwrap();
    assert_eq!(
        error.message,
        format!(
            "include cycle: {} -> {} -> {}",
            a.display(),
            b.display(),
            a.display()
        )
    );
}

#[test]
fn role_dependency_cycle() {
    let base = sp::fixtures().join("cycle");
    let errors = sp::load_errors(&base.join("roles.yml"), &[]);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].loc.file, base.join("roles/rb/meta/main.yml"));
    assert_eq!((errors[0].loc.line, errors[0].loc.col), (1, 16));
    assert!(
        errors[0].message.starts_with("role dependency cycle: "),
        "{}",
        errors[0]
    );
}

#[test]
fn role_including_itself() {
    let base = sp::fixtures().join("cycle");
    let errors = sp::load_errors(&base.join("self.yml"), &[]);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let role_tasks = base.join("roles/self/tasks/main.yml");
    assert_eq!(errors[0].loc.file, role_tasks);
    assert_eq!((errors[0].loc.line, errors[0].loc.col), (2, 3));
    assert!(
        errors[0].message.starts_with("include cycle: "),
        "{}",
        errors[0]
    );
}

#[test]
fn load_tasks_file_at_run_time() {
    let dir = sp::write_tree(&[
        (
            "tasks/dyn.yml",
            "- name: one\n  debug: msg=1\n- include_tasks: sub.yml\n",
        ),
        (
            "tasks/sub.yml",
            "- name: two\n  ansible.builtin.debug: msg=2\n",
        ),
    ]);
    let tasks =
        playbook::load_tasks_file_with(&dir.path().join("tasks/dyn.yml"), None, &sp::TestModules)
            .unwrap();
    assert_eq!(tasks.len(), 2);
    let TaskKind::IncludeTasks {
        loaded: Some(sub), ..
    } = &tasks[1].kind
    else {
        panic!("{:?}", tasks[1].kind)
    };
    assert_eq!(sub[0].name.as_deref(), Some("two"));
}

#[test]
fn load_tasks_file_for_a_role_resolves_from_its_tasks_folder() {
    let dir = sp::write_tree(&[
        ("roles/r/tasks/main.yml", "- debug: msg=main\n"),
        ("roles/r/tasks/step.yml", "- include_tasks: inner.yml\n"),
        ("roles/r/tasks/inner.yml", "- name: inner\n  debug: msg=x\n"),
    ]);
    let role = Arc::new(Role {
        name: "r".into(),
        path: dir.path().join("roles/r"),
        ..Default::default()
    });
    let tasks = playbook::load_tasks_file_with(
        &dir.path().join("roles/r/tasks/step.yml"),
        Some(role),
        &sp::TestModules,
    )
    .unwrap();
    let TaskKind::IncludeTasks {
        loaded: Some(inner),
        ..
    } = &tasks[0].kind
    else {
        panic!("{:?}", tasks[0].kind)
    };
    assert_eq!(inner[0].display_name(), "r : inner");
}

#[test]
fn load_tasks_file_reports_errors() {
    let dir = sp::write_tree(&[("t.yml", "- name: x\n  debug: {mgs: hi}\n")]);
    let err = playbook::load_tasks_file_with(&dir.path().join("t.yml"), None, &sp::TestModules)
        .unwrap_err();
    let errors = err.downcast::<playbook::LoadErrors>().unwrap().errors;
    assert_eq!(
        sp::short(&errors, dir.path()),
        ["t.yml:2:11: module 'debug' has no argument 'mgs', did you mean 'msg'?"]
    );
}

#[test]
fn load_role_at_run_time() {
    let base = sp::fixtures().join("site");
    let role = playbook::load_role_with(
        "web",
        &Default::default(),
        &[base.join("roles")],
        &sp::TestModules,
    )
    .unwrap();
    assert_eq!(role.name, "web");
    let names: Vec<String> = role.tasks.iter().map(|t| t.display_name()).collect();
    assert_eq!(
        names,
        [
            "base : Base package",
            "web : Web install",
            "web : Web config"
        ]
    );
    let missing = playbook::load_role_with(
        "nope",
        &Default::default(),
        &[base.join("roles")],
        &sp::TestModules,
    )
    .unwrap_err();
    assert!(
        missing.to_string().contains("role 'nope' not found"),
        "{missing:#}"
    );
    let missing_from = playbook::load_role_with(
        "web",
        &playbook::RoleFiles {
            tasks: Some("absent".into()),
            ..Default::default()
        },
        &[base.join("roles")],
        &sp::TestModules,
    )
    .unwrap_err();
    let message = missing_from.to_string();
    assert!(
        message.contains("Could not find specified file in role: tasks/absent")
            && message.contains("role 'web'"),
        "{missing_from:#}"
    );
}

#[test]
fn builtin_load_uses_the_module_registry() {
    // `load` goes through crate::modules; a module it does not know is an error there.
    let dir = sp::write_tree(&[(
        "play.yml",
        "- hosts: all\n  tasks:\n    - no_such_module_xyz: {}\n",
    )]);
    let err = playbook::load(&dir.path().join("play.yml"), &[]).unwrap_err();
    assert!(
        err.to_string()
            .contains("play.yml:3:7: unknown module 'no_such_module_xyz'"),
        "{err:#}"
    );
}

#[test]
fn builtin_registry_loads_the_realistic_playbook() {
    // The same fixture as playbook_load.rs, checked against the real module specs.
    let path = sp::fixtures().join("site/site.yml");
    if let Err(e) = playbook::load(&path, &[]) {
        panic!("site.yml with the real modules:\n{e:#}");
    }
}

#[test]
fn builtin_registry_reports_bad_arguments() {
    let dir = sp::write_tree(&[(
        "play.yml",
        "- hosts: all\n  tasks:\n    - ansible.builtin.copy:\n        dest: /x\n        content: y\n        colour: red\n    - ansible.builtin.servic: name=x\n",
    )]);
    let err = playbook::load(&dir.path().join("play.yml"), &[]).unwrap_err();
    let errors = err.downcast::<playbook::LoadErrors>().unwrap().errors;
    let messages = sp::short(&errors, dir.path());
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert_eq!(
        messages[0],
        "play.yml:6:9: module 'copy' has no argument 'colour'"
    );
    assert_eq!(
        messages[1],
        "play.yml:7:7: unknown module 'ansible.builtin.servic', did you mean 'service'?"
    );
}
