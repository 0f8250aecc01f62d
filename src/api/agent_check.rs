//! Checks of an agent's registration beyond its JSON shape: the values the scheduler acts
//! on (its id in URLs and store keys, its name in DNS answers and constraints, its
//! resources in placement) must make sense, or a malformed or hostile agent could poison
//! placement and discovery. Answered 422 with Marathon's error details.

use crate::api::agent::Registration;
use crate::api::marathon::ErrorDetail;

/// The longest agent id or hostname accepted (a DNS name's limit).
const MAX_NAME: usize = 253;

/// Every problem of `registration`, each with its field's path; empty when it is fine.
pub fn check_registration(registration: &Registration) -> Vec<ErrorDetail> {
    let mut details = Vec::new();
    let mut err = |path: &str, message: String| {
        details.push(ErrorDetail {
            path: path.to_string(),
            errors: vec![message],
        })
    };
    let id = &registration.agent_id;
    if id.is_empty()
        || id.len() > MAX_NAME
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || id == "."
        || id == ".."
    {
        err(
            "/agentId",
            format!(
                "'{}': 1 to {MAX_NAME} letters, digits, '-', '_' and '.'",
                id.escape_debug()
            ),
        );
    }
    let host = &registration.hostname;
    // Underscores are let through: Ansible inventory names (`--hostname
    // {{ inventory_hostname }}`) often have them.
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if host.is_empty() || host.len() > MAX_NAME || !host.split('.').all(label_ok) {
        err(
            "/hostname",
            format!(
                "'{}': a host name (dot-separated labels of letters, digits, '-' and '_')",
                host.escape_debug()
            ),
        );
    }
    for (path, value) in [
        ("/cpus", registration.cpus),
        ("/mem", registration.mem),
        ("/disk", registration.disk),
    ] {
        if !value.is_finite() || value < 0.0 {
            err(path, format!("got {value}, expected a number 0 or more"));
        }
    }
    let (low, high) = registration.port_range;
    if low > high {
        err(
            "/portRange",
            format!("got {low}-{high}, expected LOW-HIGH with LOW <= HIGH"),
        );
    }
    details
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration() -> Registration {
        Registration {
            agent_id: "agent-c1".into(),
            hostname: "c1".into(),
            address: "127.0.0.1".into(),
            cpus: 2.0,
            mem: 1024.0,
            disk: 0.0,
            port_range: (31000, 32000),
            attributes: Default::default(),
            docker: false,
            version: "test".into(),
            volume_url: None,
        }
    }

    fn paths(r: &Registration) -> Vec<String> {
        check_registration(r).into_iter().map(|d| d.path).collect()
    }

    #[test]
    fn a_real_registration_passes() {
        assert!(paths(&registration()).is_empty());
        let mut r = registration();
        r.hostname = "compute-1.dc1.example.com".into();
        assert!(paths(&r).is_empty());
    }

    #[test]
    fn bad_values_are_named_by_field() {
        let mut r = registration();
        r.agent_id = "../x".into();
        r.hostname = "c1\nevil".into();
        r.cpus = -1.0;
        r.port_range = (32000, 31000);
        assert_eq!(paths(&r), ["/agentId", "/hostname", "/cpus", "/portRange"]);
        assert!(check_registration(&r)[1].errors[0].contains("c1\\nevil"));
    }
}
