//! The Docker runtime, through the engine API (bollard): pull the image only when it is
//! missing or `forcePullImage`, create the container `infra-<task_id>` labelled with
//! `infra.task_id`/`infra.app_id`, with BRIDGE port bindings (hostPort -> containerPort) or
//! the HOST network, env, labels, volumes, cpu (NanoCpus) and memory limits, `cmd` (via
//! `sh -c`) or `args`; stop with the grace period and remove on kill; read the exit code.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, InspectContainerOptions, ListContainersOptions,
    RemoveContainerOptions, StopContainerOptions,
};
use bollard::Docker;
use futures::StreamExt;

use super::process::Exit;
use crate::api::agent::TaskSpec;

pub const LABEL_TASK_ID: &str = "infra.task_id";
pub const LABEL_APP_ID: &str = "infra.app_id";
/// The data dir of the agent that owns the container: several agents may share one engine
/// (a test cluster on one machine), and each adopts or removes only its own containers.
pub const LABEL_OWNER: &str = "infra.owner";

/// The container name of a task.
pub fn container_name(task_id: &str) -> String {
    format!("infra-{task_id}")
}

/// The last `lines` lines of a container's stdout and stderr, as `docker logs --tail`
/// reads them: the engine keeps them for the json-file driver, and in its local cache
/// ("dual logging", Docker 20.10 and later) when the syslog driver sends them away. The
/// engine's tail counts both streams together before it picks one, so ten times as many
/// lines are asked for and each stream keeps its last `lines`: a stream that wrote nothing
/// during the other's last `10 x lines` lines shows nothing.
pub async fn log_tail(
    engine: &Docker,
    container: &str,
    lines: usize,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let options = bollard::query_parameters::LogsOptions {
        stdout: true,
        stderr: true,
        tail: (lines * 10).to_string(),
        ..Default::default()
    };
    let mut stream = engine.logs(container, Some(options));
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    while let Some(item) = stream.next().await {
        let (into, message) = match item.with_context(|| format!("docker logs {container}"))? {
            bollard::container::LogOutput::StdOut { message } => (&mut stdout, message),
            bollard::container::LogOutput::StdErr { message } => (&mut stderr, message),
            bollard::container::LogOutput::Console { message } => (&mut stdout, message),
            bollard::container::LogOutput::StdIn { .. } => continue,
        };
        into.extend(
            String::from_utf8_lossy(&message)
                .lines()
                .map(str::trim_end)
                .filter(|line| !line.is_empty())
                .map(str::to_string),
        );
    }
    let last = |mut stream: Vec<String>| stream.split_off(stream.len().saturating_sub(lines));
    Ok((last(stdout), last(stderr)))
}

/// The engine's timestamp of the container's last output line (either stream), or None
/// when it wrote nothing: one line asked for, so that an unchanged container costs the
/// agent one small request per heartbeat instead of its whole tail.
pub async fn last_output_stamp(engine: &Docker, container: &str) -> anyhow::Result<Option<String>> {
    let options = bollard::query_parameters::LogsOptions {
        stdout: true,
        stderr: true,
        timestamps: true,
        tail: "1".to_string(),
        ..Default::default()
    };
    let mut stream = engine.logs(container, Some(options));
    let mut stamp = None;
    while let Some(item) = stream.next().await {
        let message = item
            .with_context(|| format!("docker logs {container}"))?
            .into_bytes();
        let text = String::from_utf8_lossy(&message);
        stamp = text.split_whitespace().next().map(str::to_string).or(stamp);
    }
    Ok(stamp)
}

/// Connects to the local engine and negotiates the API version; `None` when Docker does not
/// answer (the agent then runs only process tasks).
pub async fn connect() -> Option<Docker> {
    let docker = Docker::connect_with_local_defaults().ok()?;
    let docker = docker.negotiate_version().await.ok()?;
    docker.ping().await.ok()?;
    Some(docker)
}

/// Pulls the image when needed, then creates and starts the container. Returns its name.
/// With `syslog`, the container's output goes to that syslog socket tagged with the app id
/// (as process tasks' output does), through the engine's syslog log driver, so no line
/// depends on the agent being alive.
pub async fn start(
    docker: &Docker,
    spec: &TaskSpec,
    owner: &str,
    syslog: Option<&std::path::Path>,
) -> anyhow::Result<String> {
    let docker_spec = spec
        .docker
        .as_ref()
        .with_context(|| format!("task {} is not a Docker task", spec.task_id))?;
    let image = docker_spec.image.as_str();
    let present = docker.inspect_image(image).await.is_ok();
    if !present || docker_spec.force_pull_image {
        pull(docker, image).await?;
    }
    let name = container_name(&spec.task_id);
    // A leftover container of the same task (e.g. created before an agent crash) goes first.
    let _ = docker
        .remove_container(
            &name,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await;
    docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.clone()),
                ..Default::default()
            }),
            container_config(spec, owner, syslog),
        )
        .await
        .with_context(|| format!("creating container {name} from {image}"))?;
    docker
        .start_container(
            &name,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .with_context(|| format!("starting container {name}"))?;
    Ok(name)
}

async fn pull(docker: &Docker, image: &str) -> anyhow::Result<()> {
    let (repo, tag) = split_image(image);
    let mut stream = docker.create_image(
        Some(CreateImageOptions {
            from_image: Some(repo.to_string()),
            tag: Some(tag.to_string()),
            ..Default::default()
        }),
        None,
        None,
    );
    while let Some(item) = stream.next().await {
        item.with_context(|| format!("pulling image {image}"))?;
    }
    Ok(())
}

/// `registry:5000/app:1.2` -> (`registry:5000/app`, `1.2`); no tag means `latest`.
pub fn split_image(image: &str) -> (&str, &str) {
    let name_start = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[name_start..].rfind(':') {
        Some(i) => (&image[..name_start + i], &image[name_start + i + 1..]),
        None => (image, "latest"),
    }
}

/// The engine's container config for a task.
pub fn container_config(
    spec: &TaskSpec,
    owner: &str,
    syslog: Option<&std::path::Path>,
) -> ContainerCreateBody {
    let docker_spec = spec
        .docker
        .clone()
        .unwrap_or_else(|| crate::api::agent::DockerSpec {
            image: String::new(),
            network: "HOST".into(),
            port_mappings: Vec::new(),
            force_pull_image: false,
            parameters: Vec::new(),
            volumes: Vec::new(),
            privileged: false,
            network_name: None,
            dns_domain: None,
        });
    let mut labels: HashMap<String, String> = spec
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(LABEL_TASK_ID.into(), spec.task_id.clone());
    labels.insert(LABEL_APP_ID.into(), spec.app_id.clone());
    labels.insert(LABEL_OWNER.into(), owner.to_string());
    let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for (key, value) in &docker_spec.parameters {
        match key.as_str() {
            "label" => {
                if let Some((k, v)) = value.split_once('=') {
                    labels.insert(k.into(), v.into());
                }
            }
            "env" | "e" => env.push(value.clone()),
            other => tracing::debug!("docker parameter {other} is not applied"),
        }
    }
    let network_mode = match docker_spec.network.to_ascii_uppercase().as_str() {
        "HOST" => "host",
        "NONE" => "none",
        _ => "bridge",
    };
    let mut exposed = HashMap::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    if network_mode == "bridge" {
        for mapping in &docker_spec.port_mappings {
            let protocol = if mapping.protocol.is_empty() {
                "tcp"
            } else {
                mapping.protocol.as_str()
            };
            for proto in protocol.split(',') {
                let key = format!("{}/{}", mapping.container_port, proto.trim());
                exposed.insert(key.clone(), HashMap::new());
                bindings
                    .entry(key)
                    .or_insert_with(|| Some(Vec::new()))
                    .get_or_insert_with(Vec::new)
                    .push(PortBinding {
                        host_ip: Some("0.0.0.0".into()),
                        host_port: Some(mapping.host_port.to_string()),
                    });
            }
        }
    }
    let binds: Vec<String> = docker_spec
        .volumes
        .iter()
        .map(|v| {
            let mode = if v.mode.eq_ignore_ascii_case("RO") {
                "ro"
            } else {
                "rw"
            };
            format!("{}:{}:{}", v.host_path, v.container_path, mode)
        })
        .collect();
    let cmd = match (&spec.cmd, &spec.args) {
        (Some(cmd), _) => Some(vec!["/bin/sh".to_string(), "-c".to_string(), cmd.clone()]),
        (None, Some(args)) if !args.is_empty() => Some(args.clone()),
        _ => None,
    };
    // Docker refuses less than 6 MB; such tiny limits are treated as "no limit".
    let memory = (spec.mem >= 6.0).then_some((spec.mem * 1024.0 * 1024.0) as i64);
    let nano_cpus = (spec.cpus > 0.0).then_some((spec.cpus * 1e9) as i64);
    let mut body = ContainerCreateBody {
        image: Some(docker_spec.image.clone()),
        cmd,
        env: Some(env),
        labels: Some(labels),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        host_config: Some(HostConfig {
            network_mode: Some(network_mode.into()),
            port_bindings: (!bindings.is_empty()).then_some(bindings),
            binds: (!binds.is_empty()).then_some(binds),
            nano_cpus,
            memory,
            privileged: Some(docker_spec.privileged),
            log_config: syslog.map(|socket| syslog_log_config(socket, &spec.app_id)),
            ..Default::default()
        }),
        ..Default::default()
    };
    super::container_network::apply(&mut body, &docker_spec);
    body
}

/// The syslog log driver: lines go to `socket` as `user` facility, tagged like a process
/// task's (`logs::tag_for`). Docker keeps a local copy too, so `docker logs` still works.
fn syslog_log_config(socket: &std::path::Path, app_id: &str) -> HostConfigLogConfig {
    let config = HashMap::from([
        (
            "syslog-address".to_string(),
            format!("unixgram://{}", socket.display()),
        ),
        ("syslog-facility".to_string(), "user".to_string()),
        ("tag".to_string(), super::logs::tag_for(app_id)),
    ]);
    HostConfigLogConfig {
        typ: Some("syslog".into()),
        config: Some(config),
    }
}

/// Runs `command` with `/bin/sh -c` inside the running container `name` (a Docker task's
/// COMMAND health check runs where the task runs, as in Marathon); `Ok` when it exits 0.
pub async fn exec_check(docker: &Docker, name: &str, command: &str) -> Result<(), String> {
    use bollard::exec::{CreateExecOptions, StartExecResults};
    let exec = docker
        .create_exec(
            name,
            CreateExecOptions {
                cmd: Some(vec!["/bin/sh".to_string(), "-c".into(), command.into()]),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(|err| format!("docker exec in {name}: {err}"))?;
    if let StartExecResults::Attached { mut output, .. } =
        docker
            .start_exec(&exec.id, None)
            .await
            .map_err(|err| format!("docker exec in {name}: {err}"))?
    {
        // Drained so the command runs to its end; its output is not kept.
        while output.next().await.is_some() {}
    }
    let inspected = docker
        .inspect_exec(&exec.id)
        .await
        .map_err(|err| format!("docker exec in {name}: {err}"))?;
    match inspected.exit_code {
        Some(0) => Ok(()),
        Some(code) => Err(format!("command exited with exit status: {code}")),
        None => Err("command did not report an exit status".into()),
    }
}

/// What the engine says about a container: `Ok(None)` while it runs, `Ok(Some(exit))` when
/// it has stopped, `Err` when it does not exist or the engine fails.
pub async fn state(docker: &Docker, name: &str) -> anyhow::Result<Option<Exit>> {
    let info = docker
        .inspect_container(name, None::<InspectContainerOptions>)
        .await
        .with_context(|| format!("inspecting container {name}"))?;
    let state = info.state.unwrap_or_default();
    if state.running.unwrap_or(false) {
        return Ok(None);
    }
    let error = state.error.filter(|e| !e.is_empty());
    let exit = Exit {
        code: state.exit_code.map(|c| c as i32),
        message: error.or_else(|| state.oom_killed.filter(|o| *o).map(|_| "OOM killed".into())),
    };
    Ok(Some(super::process::explain_failure(exit, &[])))
}

/// Polls the container until it stops.
pub async fn wait_exit(docker: &Docker, name: &str) -> Exit {
    loop {
        match state(docker, name).await {
            Ok(None) => {}
            Ok(Some(exit)) => return exit,
            Err(err) => {
                return Exit {
                    code: None,
                    message: Some(format!("{err:#}")),
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `docker stop -t grace`, then remove the container.
pub async fn kill(docker: &Docker, name: &str, grace: Duration) -> anyhow::Result<()> {
    let stopped = docker
        .stop_container(
            name,
            Some(StopContainerOptions {
                t: Some(grace.as_secs() as i32),
                ..Default::default()
            }),
        )
        .await;
    if let Err(err) = stopped {
        tracing::debug!("stopping {name}: {err}");
    }
    remove(docker, name).await
}

/// Removes a (stopped) container; a container that is already gone is fine.
pub async fn remove(docker: &Docker, name: &str) -> anyhow::Result<()> {
    match docker
        .remove_container(
            name,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        Err(err) => Err(err).with_context(|| format!("removing container {name}")),
    }
}

/// Names and task ids of every task container of this owner (running or not).
pub async fn list_ours(docker: &Docker, owner: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut filters = HashMap::new();
    filters.insert(
        "label".to_string(),
        vec![LABEL_TASK_ID.to_string(), format!("{LABEL_OWNER}={owner}")],
    );
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .context("listing containers")?;
    Ok(containers
        .into_iter()
        .filter_map(|c| {
            let name = c.names?.first()?.trim_start_matches('/').to_string();
            let task_id = c.labels?.get(LABEL_TASK_ID)?.clone();
            Some((name, task_id))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_image_names() {
        assert_eq!(split_image("busybox"), ("busybox", "latest"));
        assert_eq!(split_image("a/b:1.2"), ("a/b", "1.2"));
        assert_eq!(
            split_image("registry:5000/app"),
            ("registry:5000/app", "latest")
        );
        assert_eq!(
            split_image("registry:5000/app:v1"),
            ("registry:5000/app", "v1")
        );
    }
}
