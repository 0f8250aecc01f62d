//! Test helpers for TLS: a cluster CA made by src/pki in a temp dir with certificates for
//! the named hosts (each valid for its name, 127.0.0.1 and localhost), the scheduler flags
//! that use them, and reqwest clients that trust one CA and may present a host certificate.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use infra::pki::{HostNames, Pki};
use infra::tls::Identity;

pub struct ClusterPki {
    dir: tempfile::TempDir,
}

impl ClusterPki {
    pub fn new(hosts: &[&str]) -> ClusterPki {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::open(dir.path()).expect("make a CA");
        for host in hosts {
            pki.ensure_host(&HostNames {
                host: host.to_string(),
                addresses: Vec::new(),
            })
            .expect("issue a host certificate");
        }
        ClusterPki { dir }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    pub fn identity(&self, host: &str) -> Identity {
        Identity {
            cert: self.dir.path().join(format!("hosts/{host}.crt")),
            key: self.dir.path().join(format!("hosts/{host}.key")),
        }
    }

    /// `--tls-cert`, `--tls-key` and `--tls-ca` for a scheduler on `host`.
    pub fn scheduler_args(&self, host: &str) -> Vec<&'static str> {
        let identity = self.identity(host);
        let leak = |p: PathBuf| -> &'static str { Box::leak(p.display().to_string().into()) };
        vec![
            "--tls-cert",
            leak(identity.cert),
            "--tls-key",
            leak(identity.key),
            "--tls-ca",
            leak(self.ca()),
        ]
    }
}

/// A client that trusts `ca` only and presents `identity` when given.
pub fn https_client(ca: &std::path::Path, identity: Option<&Identity>) -> reqwest::Client {
    let builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
    infra::tls::client_builder(builder, Some(ca), identity)
        .unwrap()
        .build()
        .unwrap()
}
