//! TLS for the scheduler's API and its clients (the CLI, agents, the proxy, and followers
//! forwarding to the leader), with the cluster CA of src/pki. The server asks every client
//! for a certificate but lets one without connect (users present tokens instead); a
//! certificate that is presented must chain to the cluster CA, and the API then knows whose
//! it is ([`PeerCertificate`]). Clients trust the cluster CA only, never the public roots:
//! a scheduler URL reached through the wrong network must not be answered by anyone else.
//!
//! rustls with the ring provider, named explicitly: other crates of the build may enable a
//! second provider, and rustls refuses to guess between two.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// The files a TLS server (or a client that authenticates itself) needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file (a chain, or a CA bundle).
pub fn load_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not a PEM certificate file", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{}: no certificate in the file",
        path.display()
    );
    Ok(certs)
}

fn load_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("{}: not a PEM private key", path.display()))
}

fn root_store(ca: &Path) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca)? {
        roots
            .add(cert)
            .with_context(|| format!("{}: not a usable CA certificate", ca.display()))?;
    }
    Ok(roots)
}

/// The server side: `identity` is the server's certificate and key; with `client_ca`,
/// clients may present a certificate, which must then chain to that CA.
pub fn server_config(
    identity: &Identity,
    client_ca: Option<&Path>,
) -> anyhow::Result<Arc<ServerConfig>> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match client_ca {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(root_store(ca)?), provider())
                    .allow_unauthenticated()
                    .build()
                    .context("the client certificate verifier")?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = with_identity(builder, identity)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The last step of both server configurations: the server's own certificate and key.
fn with_identity(
    builder: rustls::ConfigBuilder<ServerConfig, rustls::server::WantsServerCert>,
    identity: &Identity,
) -> anyhow::Result<ServerConfig> {
    builder
        .with_single_cert(load_certs(&identity.cert)?, load_key(&identity.key)?)
        .with_context(|| {
            format!(
                "{} and {} are not a certificate and its key",
                identity.cert.display(),
                identity.key.display()
            )
        })
}

/// A server that admits only clients with a certificate from `ca` (mutual TLS): agents'
/// volume servers, which other agents alone may read.
pub fn mutual_server_config(identity: &Identity, ca: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(root_store(ca)?), provider())
            .build()
            .context("the client certificate verifier")?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_client_cert_verifier(verifier);
    let mut config = with_identity(builder, identity)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A reqwest client builder that trusts `ca` alone (when given; else the public roots, for
/// plain-HTTP schedulers nothing is checked anyway) and presents `identity` to servers
/// that ask for a client certificate.
pub fn client_builder(
    builder: reqwest::ClientBuilder,
    ca: Option<&Path>,
    identity: Option<&Identity>,
) -> anyhow::Result<reqwest::ClientBuilder> {
    let mut builder = builder.use_rustls_tls();
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).with_context(|| format!("reading the CA {}", ca.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{}: not a PEM certificate", ca.display()))?;
        builder = builder.tls_built_in_root_certs(false);
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let Some(identity) = identity {
        let mut pem = std::fs::read(&identity.cert)
            .with_context(|| format!("reading {}", identity.cert.display()))?;
        pem.push(b'\n');
        pem.extend(
            std::fs::read(&identity.key)
                .with_context(|| format!("reading {}", identity.key.display()))?,
        );
        let identity = reqwest::Identity::from_pem(&pem).with_context(|| {
            format!(
                "{} and {} are not a PEM certificate and key",
                identity.cert.display(),
                identity.key.display()
            )
        })?;
        builder = builder.identity(identity);
    }
    Ok(builder)
}

/// The certificate a client presented on its TLS connection, already verified against the
/// cluster CA by the handshake. Each request of the connection carries it as an extension.
#[derive(Debug, Clone)]
pub struct PeerCertificate(pub Arc<CertificateDer<'static>>);

impl PeerCertificate {
    /// Whether the certificate was issued for `name` (a DNS name or an IP address in its
    /// subject alternative names; src/pki puts the host's inventory name there).
    pub fn is_for(&self, name: &str) -> bool {
        let Ok(cert) = webpki::EndEntityCert::try_from(self.0.as_ref()) else {
            return false;
        };
        let Ok(name) = ServerName::try_from(name) else {
            return false;
        };
        cert.verify_is_valid_for_subject_name(&name).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{HostNames, Pki};

    #[test]
    fn a_host_certificate_is_for_its_names_only() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::open(dir.path()).unwrap();
        pki.ensure_host(&HostNames {
            host: "node1".into(),
            addresses: vec!["10.0.0.7".into()],
        })
        .unwrap();
        let cert = load_certs(&dir.path().join("hosts/node1.crt")).unwrap();
        let peer = PeerCertificate(Arc::new(cert[0].clone()));
        assert!(peer.is_for("node1"));
        assert!(peer.is_for("10.0.0.7"));
        assert!(!peer.is_for("node2"));
        assert!(!peer.is_for("node1.evil"));
    }

    #[test]
    fn a_missing_certificate_file_is_named() {
        let err = server_config(
            &Identity {
                cert: "/nonexistent/x.crt".into(),
                key: "/nonexistent/x.key".into(),
            },
            None,
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/x.crt"), "{err:#}");
    }
}
