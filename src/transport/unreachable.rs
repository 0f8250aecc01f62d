//! The marker that tells "the host cannot be reached" apart from "a command failed".
//!
//! The engine reports a host as unreachable (Ansible's UNREACHABLE, exit 4) when an error
//! carries this marker anywhere in its chain, and as failed otherwise.

use std::fmt;

/// A connection-level failure: the host could not be connected to, authenticated with, or
/// the connection broke during an operation.
#[derive(Debug)]
pub struct Unreachable {
    /// The inventory name of the host.
    pub host: String,
    /// What was being done and why it failed.
    pub detail: String,
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "host {} unreachable: {}", self.host, self.detail)
    }
}

impl std::error::Error for Unreachable {}

/// Wraps `err` (which happened while doing `operation` on `host`) as an unreachable error.
pub fn unreachable(host: &str, operation: &str, err: impl fmt::Display) -> anyhow::Error {
    anyhow::Error::new(Unreachable {
        host: host.to_string(),
        detail: format!("{operation}: {err:#}"),
    })
}

/// Whether `err` means the host is unreachable (rather than that an operation failed).
pub fn is_unreachable(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|e| e.downcast_ref::<Unreachable>().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn marker_is_found_through_context() {
        let e = unreachable("h1", "connect 10.0.0.1:22", anyhow::anyhow!("refused"));
        assert_eq!(
            e.to_string(),
            "host h1 unreachable: connect 10.0.0.1:22: refused"
        );
        let wrapped = Err::<(), _>(e).context("task x").unwrap_err();
        assert!(is_unreachable(&wrapped));
        assert!(!is_unreachable(&anyhow::anyhow!("rc 1")));
    }
}
