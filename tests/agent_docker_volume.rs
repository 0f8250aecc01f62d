//! A Docker task's persistent volume against the real engine, Marathon's way: a persistent
//! volume at the relative path `dbdata`, mounted at `/var/lib/db` by a second volume whose
//! `hostPath` is `dbdata`. What one task writes there, the next task of the same app reads
//! (also under `/mnt/mesos/sandbox/dbdata`), and it lives in the agent's volumes directory.

#[path = "support/agent.rs"]
mod agent_support;

use std::time::Duration;

use agent_support::*;
use infra::agent::{docker, Supervisor};
use infra::api::agent::TaskState;
use infra::api::volumes::PersistentVolume;

#[tokio::test]
async fn a_docker_task_finds_what_the_previous_one_wrote_in_its_volume() {
    let engine = docker::connect()
        .await
        .expect("this test needs a running Docker engine (dockerd)");
    build_test_image(&engine).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let sup = Supervisor::open(dir.path(), Some(engine.clone()))
        .await
        .expect("supervisor");
    let volume = PersistentVolume {
        container_path: "dbdata".into(),
        size_mib: 8,
        mode: "RW".into(),
    };
    let task = |n: u32, script: &str| {
        let id = format!("dockervol{n}.{}", uuid::Uuid::new_v4());
        let mut spec = docker_httpd_spec(&id, free_port());
        spec.health_checks.clear();
        spec.args = Some(vec![
            "/bin/busybox".into(),
            "sh".into(),
            "-c".into(),
            script.into(),
        ]);
        spec.persistent_volumes = vec![volume.clone()];
        if let Some(docker) = spec.docker.as_mut() {
            docker.volumes.push(infra::api::agent::Volume {
                container_path: "/var/lib/db".into(),
                host_path: "dbdata".into(),
                mode: "RW".into(),
            });
        }
        spec
    };

    let first = task(1, "echo written-by-first > /var/lib/db/file");
    sup.apply(std::slice::from_ref(&first)).await;
    let status = wait_state(
        &sup,
        &first.task_id,
        TaskState::Finished,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(status.exit_code, Some(0), "{status:?}");
    let on_host = infra::agent::volumes::volume_dir(dir.path(), "/test/app", "dbdata");
    assert_eq!(
        std::fs::read_to_string(on_host.join("file")).expect("the file on the agent"),
        "written-by-first\n"
    );

    // The second task exits 0 only if it reads the first one's file.
    let second = task(
        2,
        "grep -qx written-by-first /var/lib/db/file && \
         grep -qx written-by-first /mnt/mesos/sandbox/dbdata/file",
    );
    sup.apply(std::slice::from_ref(&second)).await;
    let status = wait_state(
        &sup,
        &second.task_id,
        TaskState::Finished,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(status.exit_code, Some(0), "{status:?}");
    sup.apply(&[]).await;
    for spec in [&first, &second] {
        docker::remove(&engine, &docker::container_name(&spec.task_id))
            .await
            .expect("remove the finished container");
    }
}
