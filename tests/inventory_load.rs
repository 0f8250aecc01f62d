//! Inventory loading from real files: nested groups, ranges, group_vars/host_vars folders
//! beside the inventory and the playbook, precedence, patterns and error locations.

use std::fs;
use std::path::Path;

use infra::inventory::Inventory;
use serde_json::json;

const INVENTORY: &str = r#"
all:
  vars:
    level: all
    only_all: yes
  hosts:
    solo:
  children:
    web:
      vars:
        level: web
        web_var: 1
      hosts:
        web[01:03]:
          ansible_host: 10.0.0.1
      children:
        web_eu:
          vars:
            level: web_eu
          hosts:
            web02:
              level: host
            edge:2222:
    db:
      vars:
        level: db
      hosts:
        db-[a:c]:
        web01:
    aaa:
      vars:
        level: aaa
      hosts:
        web03:
"#;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn load(text: &str) -> (tempfile::TempDir, Inventory) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "inv/hosts.yaml", text);
    let inv = Inventory::load(&dir.path().join("inv/hosts.yaml")).unwrap();
    (dir, inv)
}

#[test]
fn hosts_groups_and_ranges() {
    let (_d, inv) = load(INVENTORY);
    let hosts: Vec<&str> = inv.hosts.keys().map(String::as_str).collect();
    assert_eq!(
        hosts,
        ["solo", "web01", "web02", "web03", "edge", "db-a", "db-b", "db-c"]
    );
    let groups = inv.groups_var();
    assert_eq!(groups["ungrouped"], ["solo"]);
    assert_eq!(groups["web"], ["web01", "web02", "web03", "edge"]);
    assert_eq!(groups["web_eu"], ["web02", "edge"]);
    // A group's own hosts as listed, then its children's (Ansible's `groups`), not in
    // inventory order: web01 is listed last in db.
    assert_eq!(groups["db"], ["db-a", "db-b", "db-c", "web01"]);
    // `all` level by level: edge (in web's child web_eu) comes after db's hosts.
    assert_eq!(
        groups["all"],
        ["solo", "web01", "web02", "web03", "db-a", "db-b", "db-c", "edge"]
    );
    assert_eq!(inv.group_names("web02"), ["web", "web_eu"]);
    assert_eq!(inv.group_names("web01"), ["db", "web"]);
    assert_eq!(inv.group_names("solo"), ["ungrouped"]);
    assert_eq!(inv.host_vars("edge")["ansible_port"], json!(2222));
    assert_eq!(inv.host_vars("web03")["ansible_host"], json!("10.0.0.1"));
}

#[test]
fn precedence_across_nested_groups() {
    let (_d, inv) = load(INVENTORY);
    // child group beats parent, host beats groups
    assert_eq!(inv.host_vars("edge")["level"], json!("web_eu"));
    assert_eq!(inv.host_vars("web02")["level"], json!("host"));
    // same depth: alphabetical, the later name wins (db < web)
    assert_eq!(inv.host_vars("web01")["level"], json!("web"));
    // aaa < web alphabetically, so web wins for web03
    assert_eq!(inv.host_vars("web03")["level"], json!("web"));
    assert_eq!(inv.host_vars("solo")["level"], json!("all"));
    assert_eq!(inv.host_vars("db-b")["level"], json!("db"));
    assert_eq!(inv.host_vars("db-b")["only_all"], json!(true));
}

#[test]
fn group_and_host_vars_folders_beside_inventory_and_playbook() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "inv/hosts.yaml", INVENTORY);
    write(
        d,
        "inv/group_vars/all.yml",
        "from_all_file: inv\nlevel: all_file\n",
    );
    write(d, "inv/group_vars/web.yaml", "web_var: 2\nweb_file: inv\n");
    write(
        d,
        "inv/group_vars/db/10-first.yml",
        "db_file: first\nshared: first\n",
    );
    write(d, "inv/group_vars/db/20-second.yml", "shared: second\n");
    write(d, "inv/host_vars/web02.json", r#"{"level": "host_file"}"#);
    write(d, "inv/group_vars/nosuchgroup.yml", "ignored: true\n");
    write(d, "play/group_vars/web.yml", "web_file: play\n");
    write(d, "play/host_vars/web02.yml", "level: play_host_file\n");

    let mut inv = Inventory::load(&d.join("inv/hosts.yaml")).unwrap();
    let solo = inv.host_vars("solo");
    assert_eq!(solo["from_all_file"], json!("inv"));
    assert_eq!(solo["level"], json!("all_file"));
    // Ansible: group_vars/all files outrank every group's inline vars ...
    let web01 = inv.host_vars("web01");
    assert_eq!(web01["level"], json!("all_file"));
    // ... and group_vars/<group> files outrank the inventory's inline group vars.
    assert_eq!(web01["web_var"], json!(2));
    assert_eq!(web01["shared"], json!("second"));
    assert_eq!(web01["db_file"], json!("first"));
    assert_eq!(inv.host_vars("web02")["level"], json!("host_file"));
    assert!(!inv.host_vars("web01").contains_key("ignored"));

    inv.load_vars_dir(&d.join("play")).unwrap();
    assert_eq!(inv.host_vars("web01")["web_file"], json!("play"));
    assert_eq!(inv.host_vars("web02")["level"], json!("play_host_file"));
    assert_eq!(inv.host_vars("edge")["web_file"], json!("play"));
}

#[test]
fn patterns() {
    let (_d, inv) = load(INVENTORY);
    let sel = |p: &str| inv.select(p).unwrap();
    assert_eq!(sel("all").len(), 8);
    assert_eq!(sel("*").len(), 8);
    assert_eq!(sel("web_eu"), ["web02", "edge"]);
    assert_eq!(sel("db-b"), ["db-b"]);
    assert_eq!(
        sel("db:web_eu"),
        ["web01", "web02", "edge", "db-a", "db-b", "db-c"]
    );
    assert_eq!(sel("db,solo"), ["solo", "web01", "db-a", "db-b", "db-c"]);
    assert_eq!(sel("web:&db"), ["web01"]);
    assert_eq!(sel("web:!web_eu"), ["web01", "web03"]);
    assert_eq!(sel("!web"), ["solo", "db-a", "db-b", "db-c"]);
    assert_eq!(sel("web0*"), ["web01", "web02", "web03"]);
    assert_eq!(sel("~db-[ab]"), ["db-a", "db-b"]);
    assert_eq!(sel("web[0]"), ["web01"]);
    assert_eq!(sel("web[-1]"), ["edge"]);
    assert_eq!(sel("web[1:2]"), ["web02", "web03"]);
    assert!(sel("nothing").is_empty());
    assert!(sel("nothing*").is_empty());
    assert!(inv.select("~(").is_err());
    // the implicit localhost
    assert_eq!(sel("localhost"), ["localhost"]);
    assert_eq!(
        inv.host_vars("localhost")["ansible_connection"],
        json!("local")
    );
}

#[test]
fn add_host_and_set_host_var() {
    let (_d, mut inv) = load(INVENTORY);
    inv.add_host("new1", &["web_eu", "brand_new"]);
    inv.set_host_var("new1", "ansible_host", json!("172.20.0.5"));
    inv.set_host_var("solo", "ansible_user", json!("root"));
    assert_eq!(inv.group_names("new1"), ["brand_new", "web", "web_eu"]);
    assert_eq!(inv.select("brand_new").unwrap(), ["new1"]);
    assert_eq!(inv.host_vars("new1")["level"], json!("web_eu"));
    assert_eq!(inv.host_vars("new1")["ansible_host"], json!("172.20.0.5"));
    assert_eq!(inv.host_vars("solo")["ansible_user"], json!("root"));
    inv.add_host("lonely", &[] as &[&str]);
    assert_eq!(inv.groups_var()["ungrouped"], ["solo", "lonely"]);
}

fn load_err(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "bad.yaml", text);
    let err = Inventory::load(&dir.path().join("bad.yaml")).unwrap_err();
    format!("{err:#}")
}

#[test]
fn errors_name_file_line_and_column() {
    let e = load_err("all:\n  hosts:\n    a: [1\n");
    assert!(e.contains("bad.yaml:"), "{e}");
    assert!(
        e.contains("bad.yaml:4:1") || e.contains("bad.yaml:3:"),
        "{e}"
    );

    let e = load_err("all:\n  children:\n    web:\n      - a\n      - b\n");
    assert!(e.contains("bad.yaml:4:7"), "{e}");

    let e = load_err("all:\n  hosts:\n    ok:\n    web[3:1]:\n");
    assert!(e.contains("bad.yaml:4:"), "{e}");
    assert!(e.contains("begin <= end"), "{e}");

    let e = load_err("all:\n  childrn:\n    web: {}\n");
    assert!(e.contains("bad.yaml:2:3"), "{e}");
    assert!(e.contains("childrn"), "{e}");

    let e = load_err("all:\n  children:\n    a:\n      children:\n        b:\n    b:\n      children:\n        a:\n");
    assert!(e.contains("its own ancestor"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let missing = Inventory::load(&dir.path().join("nope.yaml")).unwrap_err();
    assert!(format!("{missing:#}").contains("nope.yaml"));
}

#[test]
fn vars_file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "hosts.yaml", INVENTORY);
    write(dir.path(), "group_vars/web.yml", "a: 1\n  b: 2\n");
    let err = Inventory::load(&dir.path().join("hosts.yaml")).unwrap_err();
    let e = format!("{err:#}");
    assert!(e.contains("group_vars/web.yml:2:"), "{e}");
}

const INI: &str = r#"
# hosts before any section are ungrouped
solo ansible_host=10.1.1.1

[web]
web[01:02] http_port=80 label="front end" # trailing comment
edge:2222 ansible_user=deploy

[db]
db-[a:b]

[web:vars]
level=web
max=10
flag=True
text='quoted'

[prod:children]
web
db

[prod:vars]
level=prod
"#;

#[test]
fn ini_inventories() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "hosts", INI);
    write(dir.path(), "group_vars/prod.yml", "from_file: yes\n");
    let inv = Inventory::load(&dir.path().join("hosts")).unwrap();
    let hosts: Vec<&str> = inv.hosts.keys().map(String::as_str).collect();
    assert_eq!(hosts, ["solo", "web01", "web02", "edge", "db-a", "db-b"]);
    assert_eq!(inv.groups_var()["ungrouped"], ["solo"]);
    assert_eq!(inv.group_names("edge"), ["prod", "web"]);
    let web01 = inv.host_vars("web01");
    assert_eq!(web01["http_port"], json!(80));
    assert_eq!(web01["label"], json!("front end"));
    assert_eq!(web01["level"], json!("web"));
    assert_eq!(web01["max"], json!(10));
    assert_eq!(web01["flag"], json!(true));
    assert_eq!(web01["text"], json!("quoted"));
    assert_eq!(web01["from_file"], json!(true));
    assert_eq!(inv.host_vars("db-a")["level"], json!("prod"));
    assert_eq!(inv.host_vars("edge")["ansible_port"], json!(2222));
    assert_eq!(inv.host_vars("solo")["ansible_host"], json!("10.1.1.1"));
    assert_eq!(inv.select("prod:!db").unwrap(), ["web01", "web02", "edge"]);
}

#[test]
fn ini_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "hosts.ini", "[web]\nh1\n[web:bogus]\n");
    let e = format!(
        "{:#}",
        Inventory::load(&dir.path().join("hosts.ini")).unwrap_err()
    );
    assert!(e.contains("hosts.ini:3:1"), "{e}");
    write(dir.path(), "hosts2.ini", "[web]\nh1 novalue\n");
    let e = format!(
        "{:#}",
        Inventory::load(&dir.path().join("hosts2.ini")).unwrap_err()
    );
    assert!(
        e.contains("hosts2.ini:2:1") && e.contains("key=value"),
        "{e}"
    );
    write(dir.path(), "hosts3.ini", "[web]\nw[5:1]\n");
    let e = format!(
        "{:#}",
        Inventory::load(&dir.path().join("hosts3.ini")).unwrap_err()
    );
    assert!(
        e.contains("hosts3.ini:2:1") && e.contains("begin <= end"),
        "{e}"
    );
}

#[test]
fn inventory_folders_merge_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("inv");
    write(
        &d,
        "01-hosts.yaml",
        "all:\n  children:\n    web:\n      hosts:\n        w1:\n",
    );
    write(
        &d,
        "02-more.ini",
        "[db]\nd1\n[web]\nw2\n[web:vars]\nport=80\n",
    );
    write(&d, "README.md", "not an inventory\n");
    write(&d, "group_vars/db.yml", "engine: pg\n");
    let inv = Inventory::load(&d).unwrap();
    assert_eq!(inv.groups_var()["web"], ["w1", "w2"]);
    assert_eq!(inv.host_vars("w1")["port"], json!(80));
    assert_eq!(inv.host_vars("d1")["engine"], json!("pg"));
    assert_eq!(inv.dir(), d);
    // hosts in the order the files list them
    assert_eq!(inv.select("all").unwrap(), ["w1", "d1", "w2"]);
}

#[test]
fn group_priority_orders_groups_of_the_same_depth() {
    let text = "all:\n  children:\n    zeta:\n      vars: {v: zeta}\n      hosts: {h1: }\n    alpha:\n      vars: {v: alpha, ansible_group_priority: 10}\n      hosts: {h1: }\n";
    let (_d, inv) = load(text);
    // alphabetically zeta would win; the higher priority makes alpha win
    assert_eq!(inv.host_vars("h1")["v"], json!("alpha"));
}

#[test]
fn datacenters_come_from_the_datacenter_var() {
    let text = "all:\n  children:\n    east:\n      vars: {datacenter: dc2}\n      hosts: {e1: , e2: {datacenter: dc3}}\n    west:\n      hosts: {w1: }\n";
    let (_d, inv) = load(text);
    assert_eq!(inv.datacenter("e1"), "dc2");
    assert_eq!(inv.datacenter("e2"), "dc3");
    assert_eq!(inv.datacenter("w1"), "dc1");
    let dcs = inv.datacenters();
    assert_eq!(dcs.keys().collect::<Vec<_>>(), ["dc2", "dc3", "dc1"]);
    assert_eq!(dcs["dc1"], ["w1"]);
}
