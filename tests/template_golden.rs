//! Template files rendered byte for byte as Ansible's template module renders them.
//! The expected outputs in `tests/template_golden/` come from Jinja2 3.1 and PyYAML 6
//! configured like Ansible (`render.py` there regenerates them): loops and whitespace
//! control, Python's printing of values, macros, namespaces, and the
//! to_json/to_nice_json/to_yaml/to_nice_yaml filters on awkward strings.

use std::fs;
use std::path::Path;

use infra::template::Templar;

#[test]
fn template_files_match_jinja2_output() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/template_golden");
    let vars: infra::Vars =
        serde_json::from_str(&fs::read_to_string(dir.join("vars.json")).unwrap()).unwrap();
    let templar = Templar::new();
    let mut names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "j2"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 7,
        "golden templates missing in {}",
        dir.display()
    );
    for path in names {
        let source = fs::read_to_string(&path).unwrap();
        let expected = fs::read_to_string(path.with_extension("expected")).unwrap();
        let got = templar.render_file(&source, &vars, true, false).unwrap();
        if got != expected {
            let diff = similar::TextDiff::from_lines(&expected, &got)
                .unified_diff()
                .header("jinja2", "infra")
                .to_string();
            panic!("{} differs:\n{diff}", path.display());
        }
    }
}
