//! The cluster's certificate authority: made once by `infra up` with rcgen and kept in the
//! cluster's state folder (`<state>/pki/`), so every run hands the hosts the same files and a
//! second run changes nothing. Each host gets a certificate for its names and address, usable
//! as a TLS server and client certificate (etcd peers authenticate each other with it).
//!
//! Layout: `ca.crt`, `ca.key` (never leaves the controller), `hosts/<host>.crt`,
//! `hosts/<host>.key`, `hosts/<host>.sans` (the names the certificate was issued for: a host
//! whose names or address change gets a new certificate, with the same key).
//!
//! Owns: the files under `<state>/pki`. May call: provider's atomic writer.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

use crate::fsutil::{write_atomic, Mode};

/// The CA's subject; the same on every run, so a CA rebuilt from its key signs certificates
/// that chain to the `ca.crt` on disk.
const CA_NAME: &str = "infra cluster CA";
/// Certificates are valid this long; the CA and host certificates are kept across runs.
const VALID_YEARS: i32 = 10;

/// A host to issue a certificate for: its inventory name and the addresses it is reached at.
#[derive(Debug, Clone)]
pub struct HostNames {
    pub host: String,
    pub addresses: Vec<String>,
}

/// The subject of etcd's CA: it certifies only the control nodes, for etcd's client port
/// (the member's server certificate, and the schedulers' client certificates).
pub const ETCD_CA_NAME: &str = "infra etcd CA";

/// The cluster CA in `<state>/pki`, loaded or created.
pub struct Pki {
    dir: PathBuf,
    ca: Certificate,
    ca_key: KeyPair,
}

impl Pki {
    /// Loads the CA from `dir`, or creates it (key and certificate) when there is none.
    pub fn open(dir: &Path) -> anyhow::Result<Pki> {
        Pki::open_named(dir, CA_NAME)
    }

    /// As [`Pki::open`], for a CA of another name: etcd's client port uses a CA of its own
    /// ([`ETCD_CA_NAME`]) that certifies only the control nodes, because every host holds a
    /// certificate from the cluster CA (agents and proxies prove their names with it) and
    /// none but the control nodes may read or write etcd. The member's server certificate
    /// on that port comes from the same CA: etcd's own gateway dials the port with it and
    /// checks the server against the same trusted CA file.
    pub fn open_named(dir: &Path, ca_name: &str) -> anyhow::Result<Pki> {
        let key_path = dir.join("ca.key");
        let cert_path = dir.join("ca.crt");
        std::fs::create_dir_all(dir.join("hosts"))
            .with_context(|| format!("creating {}", dir.join("hosts").display()))?;
        let ca_key = load_or_generate_key(&key_path)?;
        let ca = ca_params(ca_name)?
            .self_signed(&ca_key)
            .context("signing the cluster CA certificate")?;
        if !key_path.exists() || !cert_path.exists() {
            // The key first: a CA certificate without its key would be useless.
            write_atomic(
                &key_path,
                ca_key.serialize_pem().as_bytes(),
                Mode::Set(0o600),
            )?;
            write_atomic(&cert_path, ca.pem().as_bytes(), Mode::Set(0o644))?;
        }
        Ok(Pki {
            dir: dir.to_path_buf(),
            ca,
            ca_key,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes sure `hosts/<host>.crt` and `.key` exist and name exactly the host's names;
    /// returns whether anything was (re)issued.
    pub fn ensure_host(&self, names: &HostNames) -> anyhow::Result<bool> {
        if names.host.is_empty() || names.host.contains(['/', '\0']) || names.host == ".." {
            bail!("cannot issue a certificate for host name {:?}", names.host);
        }
        let base = self.dir.join("hosts");
        let key_path = base.join(format!("{}.key", names.host));
        let cert_path = base.join(format!("{}.crt", names.host));
        let sans_path = base.join(format!("{}.sans", names.host));
        let sans = subject_alt_names(names);
        let recorded = std::fs::read_to_string(&sans_path).unwrap_or_default();
        if key_path.exists() && cert_path.exists() && recorded == sans.join("\n") {
            return Ok(false);
        }
        let key = load_or_generate_key(&key_path)?;
        let cert = host_params(&names.host, &sans)?
            .signed_by(&key, &self.ca, &self.ca_key)
            .with_context(|| format!("signing {}'s certificate", names.host))?;
        write_atomic(&key_path, key.serialize_pem().as_bytes(), Mode::Set(0o600))?;
        write_atomic(&cert_path, cert.pem().as_bytes(), Mode::Set(0o644))?;
        write_atomic(&sans_path, sans.join("\n").as_bytes(), Mode::Set(0o644))?;
        Ok(true)
    }
}

/// The key at `path`, or a new one when there is none yet (the caller writes it).
fn load_or_generate_key(path: &Path) -> anyhow::Result<KeyPair> {
    if !path.exists() {
        return KeyPair::generate().with_context(|| format!("generating {}", path.display()));
    }
    let pem =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    KeyPair::from_pem(&pem).with_context(|| format!("{}: not a PEM private key", path.display()))
}

/// The host's names, its addresses, then the loopback names, without duplicates.
fn subject_alt_names(names: &HostNames) -> Vec<String> {
    let mut sans: Vec<String> = Vec::new();
    let all = std::iter::once(names.host.as_str())
        .chain(names.addresses.iter().map(String::as_str))
        .chain(["localhost", "127.0.0.1"]);
    for name in all {
        if !name.is_empty() && !sans.iter().any(|s| s == name) {
            sans.push(name.to_string());
        }
    }
    sans
}

fn ca_params(name: &str) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params);
    Ok(params)
}

fn host_params(host: &str, sans: &[String]) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, host);
    params.subject_alt_names = sans
        .iter()
        .map(|name| match name.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => Ok(SanType::DnsName(name.clone().try_into().with_context(
                || format!("{name:?} is not a valid DNS name for a certificate"),
            )?)),
        })
        .collect::<anyhow::Result<_>>()?;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params);
    Ok(params)
}

/// From yesterday (clocks of hosts drift) for [`VALID_YEARS`].
fn set_validity(params: &mut CertificateParams) {
    use chrono::Datelike;
    let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
    let (y, m, d) = (
        yesterday.year(),
        yesterday.month() as u8,
        yesterday.day() as u8,
    );
    params.not_before = rcgen::date_time_ymd(y, m, d);
    params.not_after = rcgen::date_time_ymd(y + VALID_YEARS, m, d.min(28));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(host: &str, addresses: &[&str]) -> HostNames {
        HostNames {
            host: host.into(),
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn the_ca_and_host_files_are_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::open(dir.path()).unwrap();
        assert!(pki.ensure_host(&names("web1", &["10.0.0.5"])).unwrap());
        let ca = std::fs::read(dir.path().join("ca.crt")).unwrap();
        let cert = std::fs::read(dir.path().join("hosts/web1.crt")).unwrap();

        let again = Pki::open(dir.path()).unwrap();
        assert!(!again.ensure_host(&names("web1", &["10.0.0.5"])).unwrap());
        assert_eq!(std::fs::read(dir.path().join("ca.crt")).unwrap(), ca);
        assert_eq!(
            std::fs::read(dir.path().join("hosts/web1.crt")).unwrap(),
            cert
        );
    }

    #[test]
    fn a_new_address_reissues_with_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::open(dir.path()).unwrap();
        pki.ensure_host(&names("web1", &["10.0.0.5"])).unwrap();
        let key = std::fs::read(dir.path().join("hosts/web1.key")).unwrap();
        assert!(pki.ensure_host(&names("web1", &["10.0.0.6"])).unwrap());
        assert_eq!(
            std::fs::read(dir.path().join("hosts/web1.key")).unwrap(),
            key
        );
        let sans = std::fs::read_to_string(dir.path().join("hosts/web1.sans")).unwrap();
        assert_eq!(sans, "web1\n10.0.0.6\nlocalhost\n127.0.0.1");
    }

    /// A host certificate of the cluster CA does not verify against etcd's CA: etcd refuses
    /// every client but the control nodes.
    #[test]
    fn the_etcd_ca_does_not_trust_cluster_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = Pki::open(dir.path()).unwrap();
        cluster.ensure_host(&names("compute1", &[])).unwrap();
        let etcd_dir = dir.path().join("etcd");
        let etcd = Pki::open_named(&etcd_dir, ETCD_CA_NAME).unwrap();
        etcd.ensure_host(&names("control1", &[])).unwrap();
        let verify = |ca: &Path, cert: &Path| {
            std::process::Command::new("openssl")
                .args(["verify", "-purpose", "sslclient", "-CAfile"])
                .arg(ca)
                .arg(cert)
                .output()
                .expect("openssl must be installed")
                .status
                .success()
        };
        let etcd_ca = etcd_dir.join("ca.crt");
        assert!(verify(&etcd_ca, &etcd_dir.join("hosts/control1.crt")));
        assert!(!verify(&etcd_ca, &dir.path().join("hosts/compute1.crt")));
        let reopened = Pki::open_named(&etcd_dir, ETCD_CA_NAME).unwrap();
        assert!(!reopened.ensure_host(&names("control1", &[])).unwrap());
    }

    #[test]
    fn a_host_name_that_escapes_the_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::open(dir.path()).unwrap();
        assert!(pki.ensure_host(&names("../x", &[])).is_err());
    }

    /// The real check: openssl verifies the host certificate against the CA on disk, for the
    /// purposes etcd and the registry use it for, after the CA was reloaded from its key.
    #[test]
    fn openssl_verifies_host_certificates_against_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        Pki::open(dir.path()).unwrap();
        let pki = Pki::open(dir.path()).unwrap();
        pki.ensure_host(&names("etcd1", &["10.1.2.3"])).unwrap();
        for purpose in ["sslserver", "sslclient"] {
            let out = std::process::Command::new("openssl")
                .args(["verify", "-purpose", purpose, "-CAfile"])
                .arg(dir.path().join("ca.crt"))
                .arg(dir.path().join("hosts/etcd1.crt"))
                .output()
                .expect("openssl must be installed");
            assert!(
                out.status.success(),
                "{purpose}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
            .arg(dir.path().join("hosts/etcd1.crt"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(
            text.contains("DNS:etcd1") && text.contains("IP Address:10.1.2.3"),
            "{text}"
        );
    }
}
