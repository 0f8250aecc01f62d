//! Ctrl-C in the middle of a run leaves no half-written file: `infra play` copies a large
//! file to many destinations and gets SIGINT while it writes; every destination is then
//! either absent or complete (writes go to a temp file beside the target and are renamed).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SIZE: usize = 8 * 1024 * 1024;
const COPIES: usize = 40;

fn destinations(dir: &Path) -> Vec<std::path::PathBuf> {
    (0..COPIES)
        .map(|i| dir.join(format!("out/copy-{i}.bin")))
        .collect()
}

#[test]
fn sigint_mid_run_leaves_every_target_absent_or_complete() {
    let dir = tempfile::tempdir().unwrap();
    let source: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("big.bin"), &source).unwrap();
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    std::fs::write(
        dir.path().join("inventory.yaml"),
        "all:\n  hosts:\n    h1:\n      ansible_connection: local\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("site.yml"),
        format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: many large copies\n      copy:\n        src: big.bin\n        dest: \"{}/out/copy-{{{{ item }}}}.bin\"\n      loop: \"{{{{ range({COPIES}) | list }}}}\"\n",
            dir.path().display()
        ),
    )
    .unwrap();

    let mut command = Command::new(env!("CARGO_BIN_EXE_infra"));
    // A shell that runs the tests in the background (`nohup .ci/run &`) starts them with
    // SIGINT ignored, which the child would inherit: give it the terminal's default back,
    // as when a user presses Ctrl-C.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = command
        .args([
            "play",
            "site.yml",
            "-i",
            "inventory.yaml",
            "--output",
            "lines",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Interrupt once the first copies have landed, while others are being written.
    let started = Instant::now();
    while !destinations(dir.path())[0].exists() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();

    let mut complete = 0;
    for path in destinations(dir.path()) {
        if let Ok(content) = std::fs::read(&path) {
            assert_eq!(
                content.len(),
                SIZE,
                "{} is half-written after Ctrl-C",
                path.display()
            );
            assert!(
                content == source,
                "{} differs from the source",
                path.display()
            );
            complete += 1;
        }
    }
    eprintln!("{complete} of {COPIES} copies had landed at Ctrl-C (exit {status:?})");
    assert!(
        complete >= 1,
        "the run was interrupted before any copy landed"
    );
    assert!(
        complete < COPIES,
        "the run finished before the interrupt: nothing was tested"
    );
}
