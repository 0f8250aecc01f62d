//! Loads a realistic playbook from real files (tests/fixtures/playbook/site): roles with
//! dependencies, handlers, blocks, static and dynamic includes, loops, key=value strings,
//! `ansible.builtin.` names and import_playbook, and checks the model it produces.

#[path = "support/playbook.rs"]
mod sp;

use std::path::Path;

use infra::playbook::{Batch, Flag, LoopSpec, Play, Strategy, Task, TaskKind};
use serde_json::json;

fn site() -> infra::playbook::Playbook {
    let path = sp::fixtures().join("site/site.yml");
    match sp::load(&path, &[]) {
        Ok(pb) => pb,
        Err(e) => panic!("site.yml failed to load:\n{e:#}"),
    }
}

fn module(task: &Task) -> (&str, &infra::Vars) {
    match &task.kind {
        TaskKind::Module { module, args } => (module, args),
        other => panic!("{} is not a module call: {other:?}", task.display_name()),
    }
}

fn by_name<'a>(tasks: &'a [Task], name: &str) -> &'a Task {
    tasks
        .iter()
        .find(|t| t.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no task named {name}"))
}

fn first_play() -> Play {
    site().plays.into_iter().next().unwrap()
}

#[test]
fn plays_and_import_playbook() {
    let pb = site();
    assert_eq!(pb.plays.len(), 2);
    assert_eq!(pb.dir(), sp::fixtures().join("site"));
    let other = &pb.plays[1];
    assert_eq!(other.hosts, "all");
    assert!(other.gather_facts);
    assert_eq!(other.tags, vec!["imported"]);
    let (name, args) = module(&other.tasks[0]);
    assert_eq!(name, "set_fact");
    assert_eq!(args.get("count"), Some(&json!(3)));
    assert_eq!(other.loc.file, sp::fixtures().join("site/other.yml"));
    assert_eq!((other.loc.line, other.loc.col), (1, 3));
}

#[test]
fn play_keywords() {
    let play = first_play();
    assert_eq!(play.name, "Web servers");
    assert_eq!(play.hosts, "web:&dc1");
    assert_eq!(play.become_, Some(Flag::Fixed(true)));
    assert!(!play.gather_facts);
    assert_eq!(play.serial, vec![Batch::Count(1), Batch::Percent(50.0)]);
    assert_eq!(play.strategy, Strategy::Free);
    assert_eq!(play.max_fail_percentage, Some(20.0));
    assert_eq!(play.any_errors_fatal, Some(Flag::Fixed(false)));
    assert_eq!(play.tags, vec!["site"]);
    assert_eq!((play.loc.line, play.loc.col), (3, 3));
}

#[test]
fn play_vars_are_yaml_1_1_scalars_in_order() {
    let play = first_play();
    let vars = serde_json::Value::Object(play.vars.clone());
    assert_eq!(
        vars,
        json!({"port": 8080, "enabled": true, "mode": 420, "version": "1.10",
               "release": "1.2.3", "infra_keyword_remote_user": "deploy"})
    );
    let keys: Vec<&String> = play.vars.keys().collect();
    assert_eq!(
        keys,
        [
            "port",
            "enabled",
            "mode",
            "version",
            "release",
            "infra_keyword_remote_user"
        ]
    );
}

#[test]
fn vars_files_resolve_static_names_and_keep_templated_ones() {
    let play = first_play();
    let common = sp::fixtures()
        .join("site/vars/common.yml")
        .display()
        .to_string();
    assert_eq!(
        play.vars_files,
        vec![
            common.clone(),
            "vars/{{ env_name }}.yml".to_string(),
            common
        ]
    );
}

#[test]
fn roles_come_after_their_dependencies_once_each() {
    let play = first_play();
    let names: Vec<&str> = play.roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["base", "common", "web"]);
    let base = &play.roles[0];
    assert_eq!(
        base.path,
        sp::fixtures()
            .join("site/roles/base")
            .canonicalize()
            .unwrap()
    );
    assert_eq!(base.handlers.len(), 1);
    assert_eq!(base.handlers[0].display_name(), "base : base changed");

    let common = &play.roles[1];
    assert_eq!(common.defaults.get("common_flag"), Some(&json!(true)));

    let web = &play.roles[2];
    assert_eq!(web.params.get("web_port"), Some(&json!(8080)));
    assert_eq!(web.tags, vec!["web"]);
    assert_eq!(web.when, vec!["install_web | bool"]);
    assert_eq!(web.vars.get("web_root"), Some(&json!("/var/www")));
    assert_eq!(web.defaults.get("web_port"), Some(&json!(80)));
    assert_eq!(web.handlers[0].name.as_deref(), Some("reload nginx"));
}

#[test]
fn role_tasks_carry_their_role_and_entry_keywords() {
    let play = first_play();
    let web = &play.roles[2];
    let install = &web.tasks[0];
    assert_eq!(install.display_name(), "web : Web install");
    assert_eq!(install.role.as_ref().unwrap().name, "web");
    // The role entry's become_user and the play's environment reach the role's tasks.
    assert_eq!(install.become_user.as_deref(), Some("www-data"));
    assert_eq!(
        install.environment.get("http_proxy"),
        Some(&json!("http://proxy.example:3128"))
    );
    // include_tasks inside a role resolves from the role's tasks/ folder.
    match &install.kind {
        TaskKind::IncludeTasks { file, loaded, .. } => {
            assert!(file.ends_with("roles/web/tasks/install.yml"), "{file}");
            let loaded = loaded.as_ref().unwrap();
            let (name, args) = module(&loaded[0]);
            assert_eq!(name, "apt");
            // Written as the alias `pkg`; the loader keeps it under the argument's name.
            assert_eq!(args.get("name"), Some(&json!("nginx")));
            assert_eq!(args.get("pkg"), None);
            assert_eq!(loaded[0].role.as_ref().unwrap().name, "web");
        }
        other => panic!("{other:?}"),
    }
    // The role's own task metadata keeps the role's vars, without its task list.
    let info = install.role.as_ref().unwrap();
    assert!(info.tasks.is_empty());
    assert_eq!(info.vars.get("web_root"), Some(&json!("/var/www")));
}

#[test]
fn key_value_strings_and_collection_prefixes() {
    let play = first_play();
    let (name, args) = module(&play.pre_tasks[0]);
    assert_eq!(name, "apt");
    assert_eq!(
        serde_json::Value::Object(args.clone()),
        json!({"update_cache": "yes", "cache_valid_time": "3600"})
    );
    let (name, args) = module(by_name(&play.tasks, "Say hello"));
    assert_eq!(name, "debug");
    assert_eq!(
        args.get("msg"),
        Some(&json!("Hello {{ inventory_hostname }}"))
    );
    let (name, args) = module(by_name(&play.tasks, "Old style items"));
    assert_eq!(name, "file");
    assert_eq!(
        serde_json::Value::Object(args.clone()),
        json!({"path": "{{ item }}", "state": "directory", "mode": "0755"})
    );
    let (name, _) = module(by_name(&play.tasks, "Users"));
    assert_eq!(name, "shell");
    let done = &play.post_tasks[0];
    let (name, args) = module(done);
    assert_eq!((name, args.get("msg")), ("debug", Some(&json!("done"))));
}

#[test]
fn loops_and_loop_control() {
    let play = first_play();
    let install = by_name(&play.tasks, "Install packages");
    assert_eq!(
        install.loop_,
        Some(LoopSpec::Items(json!(["nginx", "curl"])))
    );
    assert_eq!(install.loop_control.loop_var.as_deref(), Some("pkg"));
    assert_eq!(install.loop_control.index_var.as_deref(), Some("idx"));
    assert_eq!(install.loop_control.label.as_deref(), Some("{{ pkg }}"));
    assert_eq!(install.loop_control.pause, Some(json!(0.5)));
    assert_eq!(install.register.as_deref(), Some("pkgs"));
    assert_eq!(install.notify, vec!["restart nginx"]);
    assert_eq!(install.tags, vec!["packages", "base"]);
    assert_eq!((install.loc.line, install.loc.col), (39, 7));

    let users = by_name(&play.tasks, "Users");
    assert_eq!(users.loop_, Some(LoopSpec::Dict(json!("{{ users }}"))));
    let items = by_name(&play.tasks, "Old style items");
    assert_eq!(
        items.loop_,
        Some(LoopSpec::WithItems(json!([["/srv/a", "/srv/b"], "/srv/c"])))
    );
    assert_eq!(items.ignore_errors, Some(Flag::Fixed(true)));
}

#[test]
fn task_keywords() {
    let play = first_play();
    let users = by_name(&play.tasks, "Users");
    assert_eq!(users.changed_when, Some(vec!["false".to_string()]));
    assert_eq!(
        users.failed_when,
        Some(vec![
            "out.rc > 1".to_string(),
            "'ERROR' in out.stderr".to_string()
        ])
    );
    assert_eq!(users.delegate_to.as_deref(), Some("localhost"));
    assert_eq!(users.run_once, Some(Flag::Fixed(true)));
    assert_eq!(users.no_log, Some(Flag::Fixed(true)));
    assert_eq!(users.check_mode, Some(Flag::Fixed(false)));
    assert_eq!(users.diff, Some(Flag::Fixed(true)));
    assert_eq!((users.retries, users.delay), (5, 2.0));
    assert_eq!(users.until.as_deref(), Some("out is succeeded"));
    assert_eq!(users.vars.get("greeting"), Some(&json!("hi")));
    assert_eq!(users.when, Vec::<String>::new());

    let hello = by_name(&play.tasks, "Say hello");
    assert_eq!(
        (hello.retries, hello.delay, hello.until.clone()),
        (0, 5.0, None)
    );
    assert_eq!(
        hello.environment.get("http_proxy"),
        Some(&json!("http://proxy.example:3128"))
    );
}

#[test]
fn blocks_with_rescue_always_and_free_form_commands() {
    let play = first_play();
    let build = by_name(&play.tasks, "Build");
    assert_eq!(
        build.when,
        vec!["ansible_os_family == \"Debian\"", "port > 0"]
    );
    let TaskKind::Block {
        block,
        rescue,
        always,
    } = &build.kind
    else {
        panic!("{:?}", build.kind)
    };
    let make = &block[0];
    let (name, args) = module(make);
    assert_eq!(name, "command");
    assert_eq!(
        serde_json::Value::Object(args.clone()),
        json!({"chdir": "/src", "creates": "/usr/local/bin/app",
               "_raw_params": "/usr/bin/make install"})
    );
    assert_eq!(make.until.as_deref(), Some("out.rc == 0"));
    assert_eq!((make.retries, make.delay), (3, 5.0));
    assert_eq!(make.environment.get("CC"), Some(&json!("gcc")));
    assert_eq!(
        make.environment.get("http_proxy"),
        Some(&json!("http://proxy.example:3128"))
    );
    match &block[1].kind {
        TaskKind::IncludeTasks {
            loaded: Some(loaded),
            ..
        } => {
            assert_eq!(loaded.len(), 2);
            // tasks/extra.yml imports more.yml from its own folder.
            let TaskKind::IncludeTasks {
                file,
                loaded: Some(more),
                ..
            } = &loaded[1].kind
            else {
                panic!("{:?}", loaded[1].kind)
            };
            assert!(file.ends_with("tasks/more.yml"), "{file}");
            assert_eq!(module(&more[0]).0, "template");
            assert_eq!(more[0].loc.file, Path::new(file));
        }
        other => panic!("{other:?}"),
    }
    let (name, args) = module(&rescue[0]);
    assert_eq!((name, args.get("var")), ("debug", Some(&json!("out"))));
    assert!(matches!(&always[0].kind, TaskKind::Meta(m) if m == "flush_handlers"));
}

#[test]
fn dynamic_includes_are_left_for_run_time() {
    let play = first_play();
    let dynamic = play
        .tasks
        .iter()
        .find_map(|t| match &t.kind {
            TaskKind::IncludeTasks { file, loaded, .. } if file.contains("{{") => Some(loaded),
            _ => None,
        })
        .expect("the templated include_tasks");
    assert!(dynamic.is_none());
}

#[test]
fn include_role_is_loaded_with_tasks_from_and_dependencies() {
    let play = first_play();
    let include = play
        .tasks
        .iter()
        .find(|t| matches!(t.kind, TaskKind::IncludeRole { .. }))
        .unwrap();
    let TaskKind::IncludeRole {
        name,
        from,
        loaded: Some(role),
        ..
    } = &include.kind
    else {
        panic!("{:?}", include.kind)
    };
    assert_eq!(name, "web");
    assert_eq!(from.tasks.as_deref(), Some("config"));
    let names: Vec<String> = role.tasks.iter().map(Task::display_name).collect();
    assert_eq!(names, ["base : Base package", "web : Configure nginx"]);
    let handlers: Vec<String> = role.handlers.iter().map(Task::display_name).collect();
    assert_eq!(handlers, ["base : base changed", "web : reload nginx"]);
}

#[test]
fn handlers_with_listen() {
    let play = first_play();
    let handler = &play.handlers[0];
    assert_eq!(handler.name.as_deref(), Some("restart nginx"));
    assert_eq!(handler.listen, vec!["web restarts"]);
    let (name, args) = module(handler);
    assert_eq!(name, "service");
    assert_eq!(args.get("state"), Some(&json!("restarted")));
}

#[test]
fn other_task_forms() {
    let dir = sp::write_tree(&[
        (
            "play.yml",
            r#"- hosts: [web, db]
  serial: 2
  connection: local
  tasks:
    - local_action: command touch /tmp/x creates=/tmp/x
    - action:
        module: ansible.builtin.copy
        content: "a b"
        dest: /tmp/y
    - name: args keyword merged, inline wins
      copy: dest=/inline
      args:
        dest: /from-args
        content: c
        mode: "0600"
    - debug: msg={{ item }}
      with_list: [1, 2]
      when: true
      tags: [1, two]
      notify: [h1, topic]
    - include_role: name=r tasks_from=extra
    - import_role:
        name: r
    - set_fact: a=1 b="two words"
    - name: templated args are kept verbatim
      shell: |
        echo one
        echo "{{ x }}"
  handlers:
    - name: h1
      debug: msg=h1
      listen: [topic, other]
"#,
        ),
        (
            "roles/r/tasks/main.yml",
            "- name: main\n  debug: msg=main\n",
        ),
        (
            "roles/r/tasks/extra.yaml",
            "- name: extra\n  debug: msg=extra\n",
        ),
    ]);
    let pb = sp::load(&dir.path().join("play.yml"), &[]).unwrap();
    let play = &pb.plays[0];
    assert_eq!(play.hosts, "web,db");
    assert_eq!(play.serial, vec![Batch::Count(2)]);
    assert_eq!(
        play.vars.get("infra_keyword_connection"),
        Some(&json!("local"))
    );
    let t = &play.tasks;

    let (name, args) = module(&t[0]);
    assert_eq!(name, "command");
    assert_eq!(t[0].delegate_to.as_deref(), Some("localhost"));
    assert_eq!(
        serde_json::Value::Object(args.clone()),
        json!({"creates": "/tmp/x", "_raw_params": "touch /tmp/x"})
    );

    let (name, args) = module(&t[1]);
    assert_eq!(name, "copy");
    assert_eq!(args.get("content"), Some(&json!("a b")));

    let (_, args) = module(&t[2]);
    assert_eq!(
        serde_json::Value::Object(args.clone()),
        json!({"dest": "/inline", "content": "c", "mode": "0600"})
    );

    assert_eq!(t[3].loop_, Some(LoopSpec::Items(json!([1, 2]))));
    assert_eq!(t[3].when, vec!["true"]);
    assert_eq!(t[3].tags, vec!["1", "two"]);
    assert_eq!(t[3].notify, vec!["h1", "topic"]);

    let TaskKind::IncludeRole {
        loaded: Some(role), ..
    } = &t[4].kind
    else {
        panic!("{:?}", t[4].kind)
    };
    assert_eq!(role.tasks[0].name.as_deref(), Some("extra"));
    let TaskKind::IncludeRole {
        loaded: Some(role), ..
    } = &t[5].kind
    else {
        panic!("{:?}", t[5].kind)
    };
    assert_eq!(role.tasks[0].name.as_deref(), Some("main"));

    let (name, args) = module(&t[6]);
    assert_eq!(name, "set_fact");
    assert_eq!(
        serde_json::Value::Object(args.clone()),
        json!({"a": "1", "b": "two words"})
    );

    let (_, args) = module(&t[7]);
    assert_eq!(
        args.get("_raw_params"),
        Some(&json!("echo one\necho \"{{ x }}\""))
    );
    assert_eq!(play.handlers[0].listen, vec!["topic", "other"]);
}

#[test]
fn import_playbook_cycle_is_an_error() {
    let dir = sp::write_tree(&[
        ("play.yml", "- import_playbook: b.yml\n"),
        (
            "b.yml",
            "- hosts: all\n  tasks: []\n- import_playbook: play.yml\n",
        ),
    ]);
    let errors = sp::load_errors(&dir.path().join("play.yml"), &[]);
    let messages = sp::short(&errors, dir.path());
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert!(
        messages[0].starts_with("b.yml:3:3: import_playbook cycle: "),
        "{}",
        messages[0]
    );
}
