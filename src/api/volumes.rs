//! Marathon's local persistent volumes: `container.volumes[i]` with `persistent: {size}`
//! (MiB) and `containerPath`. Kept apart from the other volume kinds (`hostPath` binds)
//! because a persistent volume changes placement: its data lives on one agent, so the task
//! must go back there (see docs/volumes.md).
//!
//! Here: what the agent is sent ([`PersistentVolume`]), how it is read from an app
//! definition, and the validation of the fields (errors name the field, Marathon style).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One persistent volume of a task, as the agent receives it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolume {
    /// A path relative to the sandbox (Marathon's rule), where the volume appears: in a
    /// command task's sandbox, or under `/mnt/mesos/sandbox` in a Docker container (which
    /// mounts it elsewhere with a `hostPath` volume naming this path).
    pub container_path: String,
    /// `persistent.size`, MiB. Recorded, checked against the agent's disk at placement.
    pub size_mib: u64,
    /// "RW" or "RO".
    pub mode: String,
}

/// The persistent volumes of `container.volumes` (entries without `persistent` are other
/// kinds and are left out). Assumes [`check`] passed.
pub fn from_container_volumes(volumes: &[Value]) -> Vec<PersistentVolume> {
    volumes
        .iter()
        .filter_map(|v| {
            let persistent = v.get("persistent")?;
            Some(PersistentVolume {
                container_path: v.get("containerPath")?.as_str()?.to_string(),
                size_mib: persistent.get("size")?.as_u64()?,
                mode: v
                    .get("mode")
                    .and_then(Value::as_str)
                    .unwrap_or("RW")
                    .to_string(),
            })
        })
        .collect()
}

/// Whether a definition's `container.volumes` holds a persistent volume.
pub fn has_persistent(volumes: &[Value]) -> bool {
    volumes.iter().any(|v| v.get("persistent").is_some())
}

/// Validation errors of `container.volumes` as (JSON path, message). A persistent
/// volume's `containerPath` is relative (a sandbox directory), for Docker containers too,
/// as in Marathon; a Docker container mounts it at an absolute path with a second volume
/// whose `hostPath` is that relative path.
pub fn check(volumes: &Value) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let Some(items) = volumes.as_array() else {
        if !volumes.is_null() {
            errors.push(("/container/volumes".into(), "error.expected.jsarray".into()));
        }
        return errors;
    };
    let mut paths = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = |field: &str| format!("/container/volumes({i}){field}");
        let Some(volume) = item.as_object() else {
            errors.push((at(""), "error.expected.jsobject".into()));
            continue;
        };
        let container_path = match volume.get("containerPath") {
            Some(Value::String(p)) if !p.trim().is_empty() => Some(p.as_str()),
            _ => {
                errors.push((at("/containerPath"), "must not be empty".into()));
                None
            }
        };
        if let Some(mode) = volume.get("mode") {
            if !matches!(mode.as_str(), Some("RW") | Some("RO")) {
                errors.push((at("/mode"), "must be one of RW, RO".into()));
            }
        }
        let Some(persistent) = volume.get("persistent") else {
            continue;
        };
        match persistent.get("size") {
            Some(size) if size.as_u64().is_some_and(|s| s > 0) => {}
            Some(_) => errors.push((
                at("/persistent/size"),
                "must be a whole number of MiB greater than 0".into(),
            )),
            None => errors.push((at("/persistent/size"), "error.path.missing".into())),
        }
        if let Some(kind) = persistent.get("type") {
            if kind.as_str() != Some("root") {
                errors.push((
                    at("/persistent/type"),
                    "only root (a directory on the agent's disk) is supported".into(),
                ));
            }
        }
        if volume.contains_key("hostPath") {
            errors.push((
                at("/hostPath"),
                "a persistent volume has no hostPath: the agent keeps its data".into(),
            ));
        }
        if let Some(path) = container_path {
            if path.starts_with('/') || path.split('/').any(|p| p == "..") {
                errors.push((
                    at("/containerPath"),
                    "must be a relative path inside the sandbox (no leading / nor ..)".into(),
                ));
            }
            if paths.contains(&path) {
                errors.push((at("/containerPath"), "is used by another volume".into()));
            }
            paths.push(path);
        }
    }
    errors
}

/// Whether an app definition (raw JSON) has a persistent volume.
pub fn definition_has_persistent(def: &Map<String, Value>) -> bool {
    def.get("container")
        .and_then(|c| c.get("volumes"))
        .and_then(Value::as_array)
        .is_some_and(|v| has_persistent(v))
}

/// Marathon's upgrade strategy for resident apps: the new task can only start where the
/// old one holds the volume, so the old one must stop first (`maximumOverCapacity` 0) and
/// may stop before the new one is healthy (`minimumHealthCapacity` at most 0.5).
pub fn check_resident_strategy(def: &Map<String, Value>) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    if !definition_has_persistent(def) {
        return errors;
    }
    let strategy = def.get("upgradeStrategy");
    let get = |key: &str| strategy.and_then(|s| s.get(key)).and_then(Value::as_f64);
    if get("maximumOverCapacity").is_some_and(|v| v != 0.0) {
        errors.push((
            "/upgradeStrategy/maximumOverCapacity".into(),
            "must be 0 for an app with persistent volumes".into(),
        ));
    }
    if get("minimumHealthCapacity").is_some_and(|v| v > 0.5) {
        errors.push((
            "/upgradeStrategy/minimumHealthCapacity".into(),
            "must be at most 0.5 for an app with persistent volumes".into(),
        ));
    }
    errors
}

/// Fills the resident upgrade strategy's defaults (0.5 and 0) before the general ones.
pub fn resident_defaults(def: &mut Map<String, Value>) {
    if !definition_has_persistent(def) {
        return;
    }
    let entry = def
        .entry("upgradeStrategy")
        .or_insert_with(|| Value::Object(Map::new()));
    if entry.is_null() {
        *entry = Value::Object(Map::new());
    }
    if let Value::Object(strategy) = entry {
        strategy
            .entry("minimumHealthCapacity")
            .or_insert(serde_json::json!(0.5));
        strategy
            .entry("maximumOverCapacity")
            .or_insert(serde_json::json!(0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_persistent_volumes_and_leaves_host_paths_out() {
        let volumes = json!([
            {"containerPath": "data", "mode": "RW", "persistent": {"size": 64}},
            {"containerPath": "/etc/x", "hostPath": "/etc/x", "mode": "RO"}
        ]);
        let got = from_container_volumes(volumes.as_array().unwrap());
        assert_eq!(
            got,
            vec![PersistentVolume {
                container_path: "data".into(),
                size_mib: 64,
                mode: "RW".into()
            }]
        );
    }

    #[test]
    fn errors_name_the_field() {
        let volumes = json!([
            {"containerPath": "/abs", "persistent": {"size": 0}},
            {"containerPath": "", "persistent": {}},
            {"containerPath": "ok", "persistent": {"size": 1, "type": "mount"}, "mode": "X"}
        ]);
        let errors = check(&volumes);
        let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "/container/volumes(0)/persistent/size",
                "/container/volumes(0)/containerPath",
                "/container/volumes(1)/containerPath",
                "/container/volumes(1)/persistent/size",
                "/container/volumes(2)/mode",
                "/container/volumes(2)/persistent/type",
            ]
        );
    }

    #[test]
    fn a_docker_container_mounts_the_relative_volume_with_a_host_path() {
        let volumes = json!([
            {"containerPath": "home", "mode": "RW", "persistent": {"type": "root", "size": 500}},
            {"containerPath": "/home", "hostPath": "home", "mode": "RW"}
        ]);
        assert!(check(&volumes).is_empty());
        let absolute = json!([{"containerPath": "/data", "persistent": {"size": 1}}]);
        assert_eq!(
            check(&absolute),
            vec![(
                "/container/volumes(0)/containerPath".to_string(),
                "must be a relative path inside the sandbox (no leading / nor ..)".to_string()
            )]
        );
    }

    #[test]
    fn resident_apps_get_and_keep_a_stop_first_upgrade_strategy() {
        let mut def = json!({"id": "/db", "container": {"type": "MESOS",
            "volumes": [{"containerPath": "data", "persistent": {"size": 8}}]}})
        .as_object()
        .unwrap()
        .clone();
        resident_defaults(&mut def);
        assert_eq!(
            def["upgradeStrategy"],
            json!({"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0})
        );
        assert!(check_resident_strategy(&def).is_empty());
        def.insert(
            "upgradeStrategy".into(),
            json!({"minimumHealthCapacity": 1, "maximumOverCapacity": 1}),
        );
        let paths: Vec<String> = check_resident_strategy(&def)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(
            paths,
            vec![
                "/upgradeStrategy/maximumOverCapacity",
                "/upgradeStrategy/minimumHealthCapacity"
            ]
        );
    }
}
