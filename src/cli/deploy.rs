//! `infra deploy APP.json`: create or update an app from a Marathon app definition, then
//! wait for its deployment with a progress bar of healthy/desired instances (plain lines
//! when not on a terminal). `--dry-run` prints a unified diff between the running definition
//! and the file, and what would happen ("scale 2 -> 3", "restart 2 tasks (cmd changed)"),
//! changing nothing.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde_json::Value;

use super::scheduler_client::{report_client_error, wait_for_deployment, SchedulerArg};
use crate::api::appdef;
use crate::api::marathon::App;
use crate::client::api::canonical;
use crate::report::TextDiff;

#[derive(Args, Debug)]
pub struct DeployArgs {
    /// The Marathon app definition (JSON).
    pub file: PathBuf,
    #[command(flatten)]
    pub scheduler: SchedulerArg,
    /// Show the diff against the running definition and what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Return once the scheduler accepted the definition, without waiting.
    #[arg(long)]
    pub detach: bool,
    /// Override a deployment in progress.
    #[arg(long)]
    pub force: bool,
}

pub async fn run(args: DeployArgs) -> anyhow::Result<i32> {
    let label = args.file.display().to_string();
    let (definition, app) = read_definition(&args.file)?;
    let id = canonical(&app.id);
    let client = args.scheduler.client()?;
    let running = client.app(&id).await?;
    if args.dry_run {
        let compared = match &running {
            Some(running) => as_the_scheduler_keeps_it(&definition, running)?,
            None => app.clone(),
        };
        print!("{}", dry_run_report(&label, running.as_ref(), &compared));
        return Ok(0);
    }
    let deployment_id = match &running {
        None => match client.create_app(&definition).await {
            Ok(created) => {
                println!("creating {id} with {} instances", created.instances);
                created
                    .deployments
                    .and_then(|d| d.into_iter().next())
                    .map(|d| d.id)
            }
            Err(err) => return Ok(report_client_error(&label, &err)),
        },
        Some(_) => match client.update_app(&id, &definition, args.force).await {
            Ok(result) => {
                println!("updating {id} (deployment {})", result.deployment_id);
                Some(result.deployment_id)
            }
            Err(err) => return Ok(report_client_error(&label, &err)),
        },
    };
    if args.detach {
        return Ok(0);
    }
    wait_for_deployment(&client, &id, deployment_id.as_deref().unwrap_or("")).await
}

/// Reads and parses the file: JSON syntax errors name file:line:col, shape errors the file.
pub fn read_definition(file: &std::path::Path) -> anyhow::Result<(Value, App)> {
    let label = file.display();
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {label}"))?;
    let definition: Value = serde_json::from_str(&text)
        .map_err(|err| anyhow::anyhow!("{label}:{}:{}: {err}", err.line(), err.column()))?;
    let app: App = serde_json::from_value(definition.clone())
        .map_err(|err| anyhow::anyhow!("{label}: not a Marathon app definition: {err}"))?;
    Ok((definition, app))
}

/// Fields the API adds that are not part of a definition.
const SERVER_FIELDS: &[&str] = &[
    "version",
    "versionInfo",
    "tasksStaged",
    "tasksRunning",
    "tasksHealthy",
    "tasksUnhealthy",
    "deployments",
    "tasks",
    "lastTaskFailure",
];

/// The definition as comparable JSON: defaults filled in, server fields dropped, keys sorted.
pub fn normalize(app: &App) -> Value {
    let mut value = serde_json::to_value(app).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        for field in SERVER_FIELDS {
            map.remove(*field);
        }
        if let Some(Value::String(id)) = map.get("id") {
            let id = canonical(id);
            map.insert("id".into(), Value::String(id));
        }
    }
    sort_keys(value)
}

fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

/// The dry run: a colored unified diff and a summary of what would happen.
/// The file's definition as the scheduler would keep it next to the running one: the
/// running app's service ports where the file asks for any (0), and the scheduler's
/// defaults for the fields the file leaves out, so only what the user changed differs.
pub fn as_the_scheduler_keeps_it(definition: &Value, running: &App) -> anyhow::Result<App> {
    let Value::Object(file) = definition else {
        anyhow::bail!("an app definition is a JSON object");
    };
    let running_def = match serde_json::to_value(running).context("encoding the running app")? {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    let mut merged = file.clone();
    appdef::inherit_service_ports(&mut merged, &running_def);
    let version = running.version.clone().unwrap_or_default();
    let normalized = appdef::normalize(merged, &version, &version, &|_| false, (0, 0));
    serde_json::from_value(Value::Object(normalized))
        .context("the file's definition with the scheduler's defaults")
}

pub fn dry_run_report(label: &str, running: Option<&App>, file: &App) -> String {
    let id = canonical(&file.id);
    let after = normalize(file);
    let after_text = pretty(&after);
    let Some(running) = running else {
        let mut out = colored_diff("", &after_text, "(not running)", label);
        out.push_str(&format!(
            "create app {id} with {} instances\n",
            file.instances
        ));
        return out;
    };
    let before = normalize(running);
    let before_text = pretty(&before);
    let mut out = colored_diff(&before_text, &after_text, &format!("running {id}"), label);
    out.push_str(&summary(running, &before, &after));
    out
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

fn colored_diff(before: &str, after: &str, before_name: &str, after_name: &str) -> String {
    let diff = TextDiff {
        before_header: before_name.to_string(),
        after_header: after_name.to_string(),
        before: before.to_string(),
        after: after.to_string(),
    };
    crate::report::diff::unified(&diff, crate::report::stdout_color())
}

/// "no changes", "scale 2 -> 3", "restart 2 tasks (cmd changed)", or both.
pub fn summary(running: &App, before: &Value, after: &Value) -> String {
    let empty = serde_json::Map::new();
    let before_map = before.as_object().unwrap_or(&empty);
    let after_map = after.as_object().unwrap_or(&empty);
    let mut changed: Vec<&str> = before_map
        .keys()
        .chain(after_map.keys())
        .map(String::as_str)
        .filter(|k| *k != "instances" && before_map.get(*k) != after_map.get(*k))
        .collect();
    changed.sort();
    changed.dedup();
    let before_instances = before_map
        .get("instances")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let after_instances = after_map
        .get("instances")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let mut lines = Vec::new();
    if !changed.is_empty() {
        let tasks = running
            .tasks_running
            .map(u64::from)
            .unwrap_or(before_instances);
        let plural = if tasks == 1 { "" } else { "s" };
        lines.push(format!(
            "restart {tasks} task{plural} ({} changed)",
            changed.join(", ")
        ));
    }
    if before_instances != after_instances {
        lines.push(format!("scale {before_instances} -> {after_instances}"));
    }
    if lines.is_empty() {
        lines.push("no changes".to_string());
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(json: &str) -> App {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn summary_names_scale_and_restart() {
        let mut running = app(r#"{"id":"/web","cmd":"a","instances":2}"#);
        running.tasks_running = Some(2);
        let scaled = app(r#"{"id":"web","cmd":"a","instances":3}"#);
        let changed = app(r#"{"id":"/web","cmd":"b","instances":2}"#);
        let same = app(r#"{"id":"/web","cmd":"a","instances":2,"mem":128}"#);
        let s = |f: &App| summary(&running, &normalize(&running), &normalize(f));
        assert_eq!(s(&scaled), "scale 2 -> 3\n");
        assert_eq!(s(&changed), "restart 2 tasks (cmd changed)\n");
        assert_eq!(s(&same), "no changes\n");
    }

    #[test]
    fn dry_run_of_a_new_app_says_create() {
        let file = app(r#"{"id":"/x","cmd":"a","instances":3}"#);
        let report = console::strip_ansi_codes(&dry_run_report("x.json", None, &file)).to_string();
        assert!(report.contains("+  \"cmd\": \"a\","), "{report}");
        assert!(
            report.ends_with("create app /x with 3 instances\n"),
            "{report}"
        );
    }

    #[test]
    fn dry_run_diff_shows_the_changed_line() {
        let running = app(r#"{"id":"/x","cmd":"a","instances":1,"version":"v1","tasksRunning":1}"#);
        let file = app(r#"{"id":"/x","cmd":"b","instances":1}"#);
        let report =
            console::strip_ansi_codes(&dry_run_report("x.json", Some(&running), &file)).to_string();
        assert!(report.contains("-  \"cmd\": \"a\","), "{report}");
        assert!(report.contains("+  \"cmd\": \"b\","), "{report}");
        assert!(
            !report.contains("version\""),
            "server fields are not part of the diff: {report}"
        );
        assert!(
            report.ends_with("restart 1 task (cmd changed)\n"),
            "{report}"
        );
    }

    #[test]
    fn bad_json_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.json");
        std::fs::write(&file, "{\n  \"id\": \"/x\",\n  \"cmd\": }\n").unwrap();
        let err = read_definition(&file).unwrap_err().to_string();
        assert!(err.contains("app.json:3:"), "{err}");
    }
}
