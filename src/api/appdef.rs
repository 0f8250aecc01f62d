//! App definitions: Marathon's validation (422 details naming the field), Marathon's
//! defaults, and the typed view the scheduler acts on ([`AppSpec`]). The definition itself
//! is kept as the JSON object the user sent, so fields infra does not act on round-trip
//! unchanged; defaults are only added where a field is missing.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::{json, Map, Value};

use crate::api::marathon::{self, App, ErrorDetail};

/// Constraint operators Marathon knows.
pub const OPERATORS: [&str; 7] = [
    "UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS",
];

const ID_SEGMENT: &str =
    r"^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])$";

/// The longest delay (seconds) a definition may ask for: i32::MAX, as Marathon's other
/// second counts.
pub const MAX_DELAY_SECONDS: f64 = i32::MAX as f64;

/// One host port an instance needs, in the order of PORT0..n.
#[derive(Debug, Clone, PartialEq)]
pub struct PortRequest {
    /// `Some(p)`: exactly host port p (requirePorts, or a fixed hostPort); `None`: any free one.
    pub fixed: Option<u16>,
    pub name: Option<String>,
    pub container_port: Option<u16>,
    pub protocol: String,
    /// The service port (after assignment), for PORT_<port> and the tasks' servicePorts.
    pub service_port: u32,
}

/// The typed view of an app the scheduler acts on.
#[derive(Debug, Clone)]
pub struct AppSpec {
    pub app: App,
    /// Host ports each instance needs.
    pub ports: Vec<PortRequest>,
    /// Docker network for Docker apps ("BRIDGE", "HOST", "USER", "NONE").
    pub docker_network: Option<String>,
    /// The container network each task joins (`networks` mode `container`, or the older
    /// `ipAddress.networkName`): tasks get their own address there (src/api/networks.rs).
    pub container_network: Option<String>,
    /// The container ports of the port mappings, in order, for container network apps (DNS
    /// SRV answers and the proxy reach tasks on these at the task's own address).
    pub container_ports: Vec<u16>,
    pub constraints: Vec<crate::api::constraints::Constraint>,
}

impl AppSpec {
    pub fn is_docker(&self) -> bool {
        self.app
            .container
            .as_ref()
            .is_some_and(|c| c.kind == "DOCKER" && c.docker.is_some())
    }

    /// The app's local persistent volumes (`container.volumes` with `persistent`).
    pub fn persistent_volumes(&self) -> Vec<crate::api::volumes::PersistentVolume> {
        self.app
            .container
            .as_ref()
            .map(|c| crate::api::volumes::from_container_volumes(&c.volumes))
            .unwrap_or_default()
    }

    /// Whether the app is resident (placement pins it to the agents holding its data).
    pub fn has_persistent_volumes(&self) -> bool {
        self.app
            .container
            .as_ref()
            .is_some_and(|c| crate::api::volumes::has_persistent(&c.volumes))
    }

    /// Parses a definition that passed [`validate`].
    pub fn from_definition(def: &Map<String, Value>) -> Result<AppSpec, Vec<ErrorDetail>> {
        let app: App = serde_json::from_value(Value::Object(def.clone()))
            .map_err(|err| vec![detail("/", &format!("invalid app definition: {err}"))])?;
        let constraints = app
            .constraints
            .iter()
            .map(|c| crate::api::constraints::Constraint::parse(c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| vec![detail("/constraints", &err)])?;
        let (ports, docker_network) = port_requests(&app);
        let container_network = crate::api::networks::container_network(&app);
        let container_ports = match container_network {
            Some(_) => port_mappings(&app)
                .map(|m| m.iter().map(|m| m.container_port as u16).collect())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        Ok(AppSpec {
            app,
            ports,
            docker_network,
            container_network,
            container_ports,
            constraints,
        })
    }
}

fn detail(path: &str, error: &str) -> ErrorDetail {
    ErrorDetail {
        path: path.to_string(),
        errors: vec![error.to_string()],
    }
}

fn network_mode(app: &App) -> Option<String> {
    if crate::api::networks::container_network(app).is_some() {
        return Some("USER".to_string());
    }
    if let Some(docker) = app.container.as_ref().and_then(|c| c.docker.as_ref()) {
        if let Some(net) = &docker.network {
            return Some(net.to_uppercase());
        }
    }
    app.networks.first().map(|n| match n.mode.as_str() {
        "container/bridge" => "BRIDGE".to_string(),
        "container" => "USER".to_string(),
        _ => "HOST".to_string(),
    })
}

fn port_mappings(app: &App) -> Option<&Vec<marathon::PortMapping>> {
    let container = app.container.as_ref()?;
    container.port_mappings.as_ref().or_else(|| {
        container
            .docker
            .as_ref()
            .and_then(|d| d.port_mappings.as_ref())
    })
}

/// Which host ports an instance needs: port mappings in bridge/container networks,
/// port definitions otherwise.
fn port_requests(app: &App) -> (Vec<PortRequest>, Option<String>) {
    let network = network_mode(app);
    let is_docker = app.container.as_ref().is_some_and(|c| c.docker.is_some());
    let docker_network = if is_docker {
        Some(network.clone().unwrap_or_else(|| "HOST".to_string()))
    } else {
        None
    };
    let mapped = matches!(network.as_deref(), Some("BRIDGE") | Some("USER"));
    if mapped {
        let bridge = network.as_deref() == Some("BRIDGE");
        let requests = port_mappings(app)
            .map(|mappings| {
                mappings
                    .iter()
                    .filter_map(|m| {
                        let host = match m.host_port {
                            Some(p) => Some(p),
                            None if bridge => Some(0),
                            None => None,
                        }?;
                        Some(PortRequest {
                            fixed: (host != 0).then_some(host as u16),
                            name: m.name.clone(),
                            container_port: Some(m.container_port as u16),
                            protocol: m.protocol.clone(),
                            service_port: m.service_port.unwrap_or(0),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        return (requests, docker_network);
    }
    let requests = app
        .port_definitions
        .iter()
        .map(|p| PortRequest {
            fixed: (app.require_ports && p.port != 0).then_some(p.port as u16),
            name: p.name.clone(),
            container_port: None,
            protocol: p.protocol.clone(),
            service_port: p.port,
        })
        .collect();
    (requests, docker_network)
}

struct Checker {
    details: Vec<ErrorDetail>,
}

impl Checker {
    fn err(&mut self, path: &str, msg: impl Into<String>) {
        match self.details.iter_mut().find(|d| d.path == path) {
            Some(d) => d.errors.push(msg.into()),
            None => self.details.push(ErrorDetail {
                path: path.to_string(),
                errors: vec![msg.into()],
            }),
        }
    }

    fn number(&mut self, def: &Map<String, Value>, key: &str, min: f64, strict: bool) {
        let path = format!("/{key}");
        match def.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) => {
                let v = n.as_f64().unwrap_or(f64::NAN);
                if strict && v <= min {
                    self.err(&path, format!("must be greater than {min}"));
                } else if !strict && v < min {
                    self.err(&path, format!("got {v}, expected {min} or more"));
                }
            }
            Some(_) => self.err(&path, "error.expected.jsnumber"),
        }
    }

    /// Refuses a number above `max` (only numbers: `number` reports other types).
    fn at_most(&mut self, def: &Map<String, Value>, key: &str, max: f64) {
        if let Some(v) = def.get(key).and_then(Value::as_f64) {
            if v > max {
                self.err(
                    &format!("/{key}"),
                    format!("got {v}, expected {max} or less"),
                );
            }
        }
    }

    fn integer(&mut self, value: Option<&Value>, path: &str, min: i64, max: i64) {
        match value {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) => match n.as_i64() {
                Some(v) if v >= min && v <= max => {}
                Some(v) => self.err(path, format!("got {v}, expected between {min} and {max}")),
                None => self.err(path, "error.expected.integer"),
            },
            Some(_) => self.err(path, "error.expected.jsnumber"),
        }
    }

    fn string(&mut self, value: Option<&Value>, path: &str) {
        if let Some(v) = value {
            if !v.is_string() && !v.is_null() {
                self.err(path, "error.expected.jsstring");
            }
        }
    }
}

/// Checks an app id (absolute or relative): slash-separated segments of lowercase letters,
/// digits, hyphens and dots. `.` and `..` segments are refused: an id names one app and
/// is a key of the store, so it must not walk out of its group (`/a/../b`).
pub fn check_app_id(id: &str) -> Result<(), String> {
    check_path(id, false)
}

/// Checks an app id a definition refers to (`dependencies`), which Marathon lets be
/// relative to the app's group: `.` and `..` segments are allowed there.
pub fn check_dependency_id(id: &str) -> Result<(), String> {
    check_path(id, true)
}

fn check_path(id: &str, relative_ok: bool) -> Result<(), String> {
    // Compiled once: every app write checks its id (compiling it per write was 3 % of the
    // scheduler's CPU while 10,000 apps were created).
    static SEGMENT: std::sync::LazyLock<Result<Regex, String>> =
        std::sync::LazyLock::new(|| Regex::new(ID_SEGMENT).map_err(|e| e.to_string()));
    let re = SEGMENT.as_ref().map_err(Clone::clone)?;
    // Shown escaped: an id may hold control characters, which must not reach a log line
    // or a terminal as they are.
    let shown = id.escape_debug();
    let trimmed = id.trim_start_matches('/');
    if trimmed.is_empty() {
        return Err("id must not be empty".to_string());
    }
    for segment in trimmed.split('/') {
        if segment == "." || segment == ".." {
            if relative_ok {
                continue;
            }
            return Err(format!(
                "'{shown}': an app id must not contain '.' or '..' segments"
            ));
        }
        if !re.is_match(segment) {
            return Err(format!(
                "'{shown}': path segments must be lowercase letters, digits, hyphens and dots \
                 (must fully match regular expression '{ID_SEGMENT}')"
            ));
        }
    }
    Ok(())
}

/// Marathon's validation of an app definition. Every problem is reported with its path.
pub fn validate(def: &Map<String, Value>) -> Result<(), Vec<ErrorDetail>> {
    let mut c = Checker {
        details: Vec::new(),
    };
    match def.get("id") {
        Some(Value::String(id)) => {
            if let Err(e) = check_app_id(id) {
                c.err("/id", e);
            }
        }
        Some(_) => c.err("/id", "error.expected.jsstring"),
        None => c.err("/id", "error.path.missing"),
    }
    c.number(def, "cpus", 0.0, true);
    c.number(def, "mem", 0.0, false);
    c.number(def, "disk", 0.0, false);
    c.number(def, "gpus", 0.0, false);
    c.integer(def.get("instances"), "/instances", 0, i64::from(i32::MAX));
    c.number(def, "backoffSeconds", 0.0, false);
    c.number(def, "backoffFactor", 1.0, false);
    c.number(def, "maxLaunchDelaySeconds", 0.0, false);
    // Delays become timer deadlines: past ~68 years a deadline no longer fits a Duration.
    c.at_most(def, "backoffSeconds", MAX_DELAY_SECONDS);
    c.at_most(def, "maxLaunchDelaySeconds", MAX_DELAY_SECONDS);
    c.integer(
        def.get("taskKillGracePeriodSeconds"),
        "/taskKillGracePeriodSeconds",
        0,
        i64::from(i32::MAX),
    );
    c.string(def.get("cmd"), "/cmd");
    c.string(def.get("user"), "/user");
    let has_cmd = def.get("cmd").is_some_and(|v| !v.is_null());
    let has_args = match def.get("args") {
        None | Some(Value::Null) => false,
        Some(Value::Array(items)) => {
            if items.iter().any(|i| !i.is_string()) {
                c.err("/args", "args must be strings");
            }
            true
        }
        Some(_) => {
            c.err("/args", "error.expected.jsarray");
            true
        }
    };
    let has_container = def.get("container").is_some_and(|v| v.is_object());
    if has_cmd && has_args {
        c.err(
            "/",
            "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'. \
             Both 'cmd' and 'args' are given.",
        );
    } else if !has_cmd && !has_args && !has_container {
        c.err(
            "/",
            "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.",
        );
    }
    check_map_of(&mut c, def, "labels", false);
    check_map_of(&mut c, def, "env", true);
    if let Some(kill) = def.get("killSelection") {
        if !matches!(kill.as_str(), Some("YOUNGEST_FIRST") | Some("OLDEST_FIRST")) {
            c.err(
                "/killSelection",
                "must be one of YOUNGEST_FIRST, OLDEST_FIRST",
            );
        }
    }
    check_constraints(&mut c, def.get("constraints"));
    check_dependencies(&mut c, def.get("dependencies"));
    check_upgrade_strategy(&mut c, def.get("upgradeStrategy"));
    for (path, message) in crate::api::volumes::check_resident_strategy(def) {
        c.err(&path, message);
    }
    let port_count = check_ports(&mut c, def);
    let mapping_count = check_container(&mut c, def);
    check_networks(&mut c, def.get("networks"));
    for (path, error) in crate::api::networks::check(def) {
        c.err(&path, error);
    }
    check_health_checks(
        &mut c,
        def.get("healthChecks"),
        port_count.max(mapping_count),
    );
    if c.details.is_empty() {
        Ok(())
    } else {
        Err(c.details)
    }
}

fn check_map_of(c: &mut Checker, def: &Map<String, Value>, key: &str, secrets_ok: bool) {
    match def.get(key) {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                let ok =
                    v.is_string() || (secrets_ok && v.get("secret").is_some_and(|s| s.is_string()));
                if !ok {
                    c.err(&format!("/{key}({k})"), "error.expected.jsstring");
                }
            }
        }
        Some(_) => c.err(&format!("/{key}"), "error.expected.jsobject"),
    }
}

fn check_constraints(c: &mut Checker, value: Option<&Value>) {
    let items = match value {
        None | Some(Value::Null) => return,
        Some(Value::Array(items)) => items,
        Some(_) => return c.err("/constraints", "error.expected.jsarray"),
    };
    for (i, item) in items.iter().enumerate() {
        let parts: Option<Vec<String>> = item.as_array().and_then(|a| {
            a.iter()
                .map(|p| p.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
        });
        let result = match parts {
            Some(parts) => crate::api::constraints::Constraint::parse(&parts).map(|_| ()),
            None => Err("a constraint is an array of strings [field, operator, value]".into()),
        };
        if let Err(e) = result {
            c.err("/constraints", format!("constraint {i}: {e}"));
        }
    }
}

fn check_dependencies(c: &mut Checker, value: Option<&Value>) {
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                match item.as_str() {
                    Some(id) => {
                        if let Err(e) = check_dependency_id(id) {
                            c.err("/dependencies", e);
                        }
                    }
                    None => c.err("/dependencies", "error.expected.jsstring"),
                }
            }
        }
        Some(_) => c.err("/dependencies", "error.expected.jsarray"),
    }
}

fn check_upgrade_strategy(c: &mut Checker, value: Option<&Value>) {
    let Some(Value::Object(strategy)) = value else {
        if value.is_some_and(|v| !v.is_null()) {
            c.err("/upgradeStrategy", "error.expected.jsobject");
        }
        return;
    };
    for key in ["minimumHealthCapacity", "maximumOverCapacity"] {
        if let Some(v) = strategy.get(key) {
            match v.as_f64() {
                Some(f) if (0.0..=1.0).contains(&f) => {}
                _ => c.err(&format!("/upgradeStrategy/{key}"), "is not between 0 and 1"),
            }
        }
    }
}

fn check_port_number(c: &mut Checker, value: Option<&Value>, path: &str) {
    c.integer(value, path, 0, 65535);
}

fn check_protocol(c: &mut Checker, value: Option<&Value>, path: &str) {
    if let Some(p) = value {
        if !matches!(
            p.as_str(),
            Some("tcp") | Some("udp") | Some("tcp,udp") | Some("udp,tcp")
        ) {
            c.err(path, "protocol must be one of tcp, udp, tcp,udp");
        }
    }
}

/// Checks portDefinitions / ports; returns how many ports they declare.
fn check_ports(c: &mut Checker, def: &Map<String, Value>) -> usize {
    let mut count = 0;
    match def.get("portDefinitions") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            count = items.len();
            let mut names = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let path = format!("/portDefinitions({i})");
                let Some(obj) = item.as_object() else {
                    c.err(&path, "error.expected.jsobject");
                    continue;
                };
                check_port_number(c, obj.get("port"), &format!("{path}/port"));
                check_protocol(c, obj.get("protocol"), &format!("{path}/protocol"));
                if let Some(name) = obj.get("name").and_then(Value::as_str) {
                    if names.contains(&name) {
                        c.err(
                            "/portDefinitions",
                            format!("port name '{name}' is not unique"),
                        );
                    }
                    names.push(name);
                }
            }
        }
        Some(_) => c.err("/portDefinitions", "error.expected.jsarray"),
    }
    match def.get("ports") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            count = count.max(items.len());
            for (i, item) in items.iter().enumerate() {
                check_port_number(c, Some(item), &format!("/ports({i})"));
            }
        }
        Some(_) => c.err("/ports", "error.expected.jsarray"),
    }
    count
}

fn check_mappings(c: &mut Checker, value: Option<&Value>, path: &str) -> usize {
    match value {
        None | Some(Value::Null) => 0,
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let p = format!("{path}({i})");
                let Some(obj) = item.as_object() else {
                    c.err(&p, "error.expected.jsobject");
                    continue;
                };
                check_port_number(c, obj.get("containerPort"), &format!("{p}/containerPort"));
                check_port_number(c, obj.get("hostPort"), &format!("{p}/hostPort"));
                check_port_number(c, obj.get("servicePort"), &format!("{p}/servicePort"));
                check_protocol(c, obj.get("protocol"), &format!("{p}/protocol"));
            }
            items.len()
        }
        Some(_) => {
            c.err(path, "error.expected.jsarray");
            0
        }
    }
}

/// Checks `container`; returns how many port mappings it declares.
fn check_container(c: &mut Checker, def: &Map<String, Value>) -> usize {
    let container = match def.get("container") {
        None | Some(Value::Null) => return 0,
        Some(Value::Object(o)) => o,
        Some(_) => {
            c.err("/container", "error.expected.jsobject");
            return 0;
        }
    };
    let kind = container
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("DOCKER");
    if !matches!(kind, "DOCKER" | "MESOS") {
        c.err("/container/type", "must be DOCKER or MESOS");
    }
    let mut count = check_mappings(c, container.get("portMappings"), "/container/portMappings");
    match container.get("docker") {
        None | Some(Value::Null) => {
            if kind == "DOCKER" {
                c.err(
                    "/container/docker",
                    "a DOCKER container needs a docker image",
                );
            }
        }
        Some(Value::Object(docker)) => {
            match docker.get("image") {
                Some(Value::String(image)) if !image.trim().is_empty() => {}
                _ => c.err("/container/docker/image", "must not be empty"),
            }
            if let Some(net) = docker.get("network") {
                if !matches!(
                    net.as_str(),
                    Some("BRIDGE") | Some("HOST") | Some("USER") | Some("NONE")
                ) {
                    c.err(
                        "/container/docker/network",
                        "must be one of BRIDGE, HOST, USER, NONE",
                    );
                }
            }
            count += check_mappings(
                c,
                docker.get("portMappings"),
                "/container/docker/portMappings",
            );
        }
        Some(_) => c.err("/container/docker", "error.expected.jsobject"),
    }
    if let Some(v) = container.get("volumes") {
        for (path, message) in crate::api::volumes::check(v) {
            c.err(&path, message);
        }
    }
    count
}

fn check_networks(c: &mut Checker, value: Option<&Value>) {
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let mode = item.get("mode").and_then(Value::as_str).unwrap_or("host");
                if !matches!(mode, "host" | "container/bridge" | "container") {
                    c.err(
                        &format!("/networks({i})/mode"),
                        "must be one of host, container/bridge, container",
                    );
                }
            }
        }
        Some(_) => c.err("/networks", "error.expected.jsarray"),
    }
}

fn check_health_checks(c: &mut Checker, value: Option<&Value>, port_count: usize) {
    let items = match value {
        None | Some(Value::Null) => return,
        Some(Value::Array(items)) => items,
        Some(_) => return c.err("/healthChecks", "error.expected.jsarray"),
    };
    for (i, item) in items.iter().enumerate() {
        let path = format!("/healthChecks({i})");
        let Some(hc) = item.as_object() else {
            c.err(&path, "error.expected.jsobject");
            continue;
        };
        let protocol = hc.get("protocol").and_then(Value::as_str).unwrap_or("HTTP");
        let known = [
            "HTTP",
            "HTTPS",
            "TCP",
            "COMMAND",
            "MESOS_HTTP",
            "MESOS_HTTPS",
            "MESOS_TCP",
        ];
        if !known.contains(&protocol) {
            c.err(
                &format!("{path}/protocol"),
                format!("must be one of {}", known.join(", ")),
            );
        }
        if protocol == "COMMAND" {
            if !hc
                .get("command")
                .is_some_and(|v| v.get("value").is_some_and(Value::is_string))
            {
                c.err(
                    &format!("{path}/command"),
                    "a COMMAND health check needs command.value",
                );
            }
        } else if hc.get("port").is_none_or(Value::is_null) {
            let index = hc.get("portIndex").and_then(Value::as_u64).unwrap_or(0) as usize;
            if index >= port_count.max(1) {
                c.err(
                    &format!("{path}/portIndex"),
                    "Health check port indices must address an element of the ports array \
                     or container port mappings.",
                );
            }
        }
        for key in ["gracePeriodSeconds", "intervalSeconds", "timeoutSeconds"] {
            c.integer(
                hc.get(key),
                &format!("{path}/{key}"),
                0,
                i64::from(i32::MAX),
            );
        }
        c.integer(
            hc.get("maxConsecutiveFailures"),
            &format!("{path}/maxConsecutiveFailures"),
            0,
            i64::from(i32::MAX),
        );
    }
}

/// Adds Marathon's defaults for missing fields (never changes a field that is present),
/// makes the id absolute, assigns service ports that are 0, and stamps the version.
pub fn normalize(
    mut def: Map<String, Value>,
    version: &str,
    last_config_change_at: &str,
    used_service_ports: &dyn Fn(u32) -> bool,
    service_port_range: (u32, u32),
) -> Map<String, Value> {
    if let Some(Value::String(id)) = def.get("id") {
        let canonical = marathon::canonical_app_id(id);
        def.insert("id".into(), Value::String(canonical));
    }
    crate::api::volumes::resident_defaults(&mut def);
    let defaults: [(&str, Value); 17] = [
        ("cpus", json!(marathon::DEFAULT_CPUS)),
        ("mem", json!(marathon::DEFAULT_MEM)),
        ("disk", json!(0)),
        ("instances", json!(marathon::DEFAULT_INSTANCES)),
        ("env", json!({})),
        ("labels", json!({})),
        ("constraints", json!([])),
        ("healthChecks", json!([])),
        ("dependencies", json!([])),
        ("requirePorts", json!(false)),
        ("backoffSeconds", json!(1)),
        ("backoffFactor", json!(marathon::DEFAULT_BACKOFF_FACTOR)),
        ("maxLaunchDelaySeconds", json!(300)),
        ("killSelection", json!(marathon::DEFAULT_KILL_SELECTION)),
        (
            "unreachableStrategy",
            json!({"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0}),
        ),
        (
            "upgradeStrategy",
            json!({"minimumHealthCapacity": 1, "maximumOverCapacity": 1}),
        ),
        (
            "taskKillGracePeriodSeconds",
            Value::from(marathon::DEFAULT_TASK_KILL_GRACE_PERIOD_SECONDS),
        ),
    ];
    for (key, value) in defaults {
        if def.get(key).is_none_or(Value::is_null) {
            def.insert(key.to_string(), value);
        }
    }
    if let Some(Value::Object(strategy)) = def.get_mut("upgradeStrategy") {
        for key in ["minimumHealthCapacity", "maximumOverCapacity"] {
            strategy.entry(key).or_insert(json!(1));
        }
    }
    if let Some(Value::Array(checks)) = def.get_mut("healthChecks") {
        for hc in checks.iter_mut().filter_map(Value::as_object_mut) {
            let protocol = hc
                .get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("HTTP")
                .to_string();
            let mut defaults = vec![
                ("protocol", json!("HTTP")),
                (
                    "gracePeriodSeconds",
                    json!(marathon::DEFAULT_HC_GRACE_SECONDS),
                ),
                (
                    "intervalSeconds",
                    json!(marathon::DEFAULT_HC_INTERVAL_SECONDS),
                ),
                (
                    "timeoutSeconds",
                    json!(marathon::DEFAULT_HC_TIMEOUT_SECONDS),
                ),
                (
                    "maxConsecutiveFailures",
                    json!(marathon::DEFAULT_HC_MAX_FAILURES),
                ),
            ];
            if protocol.contains("HTTP") {
                defaults.push(("path", json!("/")));
                defaults.push(("ignoreHttp1xx", json!(false)));
            }
            if protocol != "COMMAND" && !hc.contains_key("port") {
                defaults.push(("portIndex", json!(0)));
            }
            for (key, value) in defaults {
                hc.entry(key).or_insert(value);
            }
        }
    }
    let uses_mappings = {
        let container = def.get("container");
        let docker_net = container
            .and_then(|c| c.get("docker"))
            .and_then(|d| d.get("network"))
            .and_then(Value::as_str);
        let net_mode = def
            .get("networks")
            .and_then(|n| n.get(0))
            .and_then(|n| n.get("mode"))
            .and_then(Value::as_str);
        matches!(docker_net, Some("BRIDGE") | Some("USER"))
            || matches!(net_mode, Some("container/bridge") | Some("container"))
    };
    if !uses_mappings && def.get("portDefinitions").is_none_or(Value::is_null) {
        let defs: Vec<Value> = match def.get("ports").and_then(Value::as_array) {
            Some(ports) => ports
                .iter()
                .map(|p| json!({"port": p.clone(), "protocol": "tcp"}))
                .collect(),
            None => vec![json!({"port": 0, "protocol": "tcp", "name": "default"})],
        };
        def.insert("portDefinitions".into(), Value::Array(defs));
    }
    assign_service_ports(&mut def, used_service_ports, service_port_range);
    if def.contains_key("ports") {
        let ports: Vec<Value> = def
            .get("portDefinitions")
            .and_then(Value::as_array)
            .map(|defs| defs.iter().filter_map(|d| d.get("port").cloned()).collect())
            .unwrap_or_default();
        if !ports.is_empty() {
            def.insert("ports".into(), Value::Array(ports));
        }
    }
    def.insert("version".into(), Value::String(version.to_string()));
    def.insert(
        "versionInfo".into(),
        json!({"lastScalingAt": version, "lastConfigChangeAt": last_config_change_at}),
    );
    def
}

/// Replaces service ports that are 0 with free ones from the range (Marathon's
/// `local_port_min..local_port_max`), in portDefinitions and port mappings.
fn assign_service_ports(
    def: &mut Map<String, Value>,
    used: &dyn Fn(u32) -> bool,
    range: (u32, u32),
) {
    let mut taken: Vec<u32> = Vec::new();
    let next_free = |taken: &mut Vec<u32>| -> Option<u32> {
        let port = (range.0..=range.1).find(|p| !used(*p) && !taken.contains(p))?;
        taken.push(port);
        Some(port)
    };
    if let Some(Value::Array(defs)) = def.get_mut("portDefinitions") {
        for pd in defs.iter_mut().filter_map(Value::as_object_mut) {
            if pd.get("port").and_then(Value::as_u64).unwrap_or(0) == 0 {
                if let Some(p) = next_free(&mut taken) {
                    pd.insert("port".into(), json!(p));
                }
            }
        }
    }
    let bridge = def
        .get("container")
        .and_then(|c| c.get("docker"))
        .and_then(|d| d.get("network"))
        .and_then(Value::as_str)
        == Some("BRIDGE")
        || def
            .get("networks")
            .and_then(|n| n.get(0))
            .and_then(|n| n.get("mode"))
            .and_then(Value::as_str)
            == Some("container/bridge");
    if !bridge {
        return;
    }
    let Some(Value::Object(container)) = def.get_mut("container") else {
        return;
    };
    let mut mapping_lists: Vec<&mut Vec<Value>> = Vec::new();
    let (top, docker) = {
        let mut top = None;
        let mut docker = None;
        for (key, value) in container.iter_mut() {
            if key == "portMappings" {
                top = value.as_array_mut();
            } else if key == "docker" {
                docker = value
                    .as_object_mut()
                    .and_then(|d| d.get_mut("portMappings"))
                    .and_then(Value::as_array_mut);
            }
        }
        (top, docker)
    };
    mapping_lists.extend(top);
    mapping_lists.extend(docker);
    for list in mapping_lists {
        for m in list.iter_mut().filter_map(Value::as_object_mut) {
            if m.get("servicePort").and_then(Value::as_u64).unwrap_or(0) == 0 {
                if let Some(p) = next_free(&mut taken) {
                    m.insert("servicePort".into(), json!(p));
                }
            }
        }
    }
}

/// The service ports a stored definition uses.
pub fn service_ports(spec: &AppSpec) -> Vec<u32> {
    spec.ports
        .iter()
        .map(|p| p.service_port)
        .filter(|p| *p != 0)
        .collect()
}

/// Fields that differ between two definitions, ignoring version stamps: decides scale
/// (only `instances` changed) versus a configuration change (tasks are replaced).
pub fn changed_fields(old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<String> {
    let ignore = ["version", "versionInfo"];
    let mut keys: BTreeMap<&str, ()> = BTreeMap::new();
    for k in old.keys().chain(new.keys()) {
        if !ignore.contains(&k.as_str()) {
            keys.insert(k, ());
        }
    }
    keys.into_keys()
        .filter(|k| match (old.get(*k), new.get(*k)) {
            (Some(a), Some(b)) => !json_eq(a, b),
            (None, None) => false,
            _ => true,
        })
        .map(str::to_string)
        .collect()
}

/// JSON equality where numbers compare by value (`128` equals `128.0`).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Where `new` asks for service port 0 at a position `old` had one assigned, keeps the
/// assigned one, so deploying the same file twice changes nothing.
pub fn inherit_service_ports(new: &mut Map<String, Value>, old: &Map<String, Value>) {
    fn fill(new: Option<&mut Value>, old: Option<&Value>, key: Option<&str>) {
        let (Some(Value::Array(new)), Some(Value::Array(old))) = (new, old) else {
            return;
        };
        for (n, o) in new.iter_mut().zip(old) {
            match key {
                None => {
                    if n.as_u64() == Some(0) {
                        *n = o.clone();
                    }
                }
                Some(key) => {
                    if let (Some(n), Some(o)) = (n.as_object_mut(), o.as_object()) {
                        if n.get(key).and_then(Value::as_u64).unwrap_or(0) == 0 {
                            if let Some(v) = o.get(key) {
                                n.insert(key.to_string(), v.clone());
                            }
                        }
                    }
                }
            }
        }
    }
    fill(
        new.get_mut("portDefinitions"),
        old.get("portDefinitions"),
        Some("port"),
    );
    fill(new.get_mut("ports"), old.get("ports"), None);
    let old_container = old.get("container");
    if let Some(Value::Object(container)) = new.get_mut("container") {
        fill(
            container.get_mut("portMappings"),
            old_container.and_then(|c| c.get("portMappings")),
            Some("servicePort"),
        );
        if let Some(Value::Object(docker)) = container.get_mut("docker") {
            fill(
                docker.get_mut("portMappings"),
                old_container
                    .and_then(|c| c.get("docker"))
                    .and_then(|d| d.get("portMappings")),
                Some("servicePort"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn paths(v: Value) -> Vec<String> {
        validate(&obj(v))
            .unwrap_err()
            .into_iter()
            .map(|d| d.path)
            .collect()
    }

    #[test]
    fn accepts_a_minimal_app() {
        validate(&obj(json!({"id": "/a/b-c.d", "cmd": "sleep 1"}))).unwrap();
        validate(&obj(json!({"id": "rel", "args": ["sleep", "1"]}))).unwrap();
    }

    #[test]
    fn rejects_bad_fields_with_their_paths() {
        assert_eq!(paths(json!({"id": "/Bad_Id", "cmd": "x"})), vec!["/id"]);
        assert_eq!(
            paths(json!({"id": "/a", "cmd": "x", "cpus": 0})),
            vec!["/cpus"]
        );
        assert_eq!(
            paths(json!({"id": "/a", "cmd": "x", "mem": -1})),
            vec!["/mem"]
        );
        assert_eq!(
            paths(json!({"id": "/a", "cmd": "x", "instances": -1})),
            vec!["/instances"]
        );
        assert_eq!(
            paths(json!({"id": "/a", "cmd": "x", "constraints": [["hostname", "NEAR"]]})),
            vec!["/constraints"]
        );
        assert_eq!(
            paths(json!({"id": "/a", "cmd": "x", "args": ["y"]})),
            vec!["/"]
        );
        assert_eq!(paths(json!({"id": "/a"})), vec!["/"]);
        assert_eq!(
            paths(json!({"id": "/a", "cmd": "x", "upgradeStrategy": {"minimumHealthCapacity": 2}})),
            vec!["/upgradeStrategy/minimumHealthCapacity"]
        );
        assert_eq!(
            paths(json!({"id": "/a", "container": {"type": "DOCKER", "docker": {"image": ""}}})),
            vec!["/container/docker/image"]
        );
        assert_eq!(
            paths(
                json!({"id": "/a", "cmd": "x", "healthChecks": [{"protocol": "HTTP", "portIndex": 3}]})
            ),
            vec!["/healthChecks(0)/portIndex"]
        );
    }

    #[test]
    fn normalize_adds_defaults_and_keeps_unknown_fields() {
        let def = obj(json!({"id": "web", "cmd": "x", "fetch": [{"uri": "u"}], "cpus": 0.5}));
        let out = normalize(def, "v1", "v1", &|p| p == 10000, (10000, 20000));
        assert_eq!(out["id"], json!("/web"));
        assert_eq!(out["cpus"], json!(0.5));
        assert_eq!(out["mem"], json!(128.0));
        assert_eq!(out["fetch"], json!([{"uri": "u"}]));
        assert_eq!(out["portDefinitions"][0]["port"], json!(10001));
        let spec = AppSpec::from_definition(&out).unwrap();
        assert_eq!(spec.ports.len(), 1);
        assert_eq!(spec.ports[0].fixed, None);
    }

    #[test]
    fn bridge_port_mappings_become_port_requests() {
        let def = obj(
            json!({"id": "b", "container": {"type": "DOCKER", "docker": {
            "image": "x", "network": "BRIDGE",
            "portMappings": [{"containerPort": 80, "hostPort": 0}, {"containerPort": 81, "hostPort": 8081}]}}}),
        );
        let out = normalize(def, "v", "v", &|_| false, (10000, 20000));
        assert!(out.get("portDefinitions").is_none());
        let spec = AppSpec::from_definition(&out).unwrap();
        assert_eq!(spec.docker_network.as_deref(), Some("BRIDGE"));
        assert_eq!(spec.ports[0].fixed, None);
        assert_eq!(spec.ports[1].fixed, Some(8081));
        assert_eq!(spec.ports[0].container_port, Some(80));
        assert_eq!(spec.ports[0].service_port, 10000);
    }

    #[test]
    fn scale_is_only_an_instances_change() {
        let a = obj(json!({"id": "/a", "instances": 1, "version": "1"}));
        let b = obj(json!({"id": "/a", "instances": 3, "version": "2"}));
        assert_eq!(changed_fields(&a, &b), vec!["instances"]);
    }
}
