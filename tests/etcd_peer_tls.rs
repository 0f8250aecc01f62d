//! etcd's peer port as the control play configures it (templates/etcd.conf.j2): peers speak
//! TLS with certificates from etcd's own CA and must present one (`--peer-client-cert-auth`).
//! Every host of the cluster holds a certificate from the *cluster* CA, so this proves that
//! such a certificate (or none) can neither read the peer API nor join as a member, while a
//! certificate from etcd's CA does both. Real etcd (Debian's etcd-server) on loopback.

#[path = "support/etcd.rs"]
mod etcd;
#[path = "support/tls.rs"]
mod tls_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use etcd::{EtcdCluster, PeerTls};
use infra::pki::{HostNames, Pki, ETCD_CA_NAME};
use infra::tls::Identity;
use tls_support::https_client;

/// A certificate for `host` (valid for 127.0.0.1) from `pki`: (cert, key).
fn issue(pki: &Pki, host: &str) -> (PathBuf, PathBuf) {
    pki.ensure_host(&HostNames {
        host: host.into(),
        addresses: vec!["127.0.0.1".into()],
    })
    .expect("issue a certificate");
    (
        pki.dir().join(format!("hosts/{host}.crt")),
        pki.dir().join(format!("hosts/{host}.key")),
    )
}

fn identity((cert, key): &(PathBuf, PathBuf)) -> Identity {
    Identity {
        cert: cert.clone(),
        key: key.clone(),
    }
}

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test]
async fn a_peer_without_a_certificate_from_etcds_ca_cannot_read_or_join() {
    let dir = tempfile::tempdir().unwrap();
    let etcd_ca = Pki::open_named(&dir.path().join("etcd"), ETCD_CA_NAME).unwrap();
    let cluster_ca = Pki::open(&dir.path().join("cluster")).unwrap();
    let member0 = issue(&etcd_ca, "control1");
    let member1 = issue(&etcd_ca, "control2");
    // A host of the cluster: its certificate is real, but from the cluster CA.
    let intruder = issue(&cluster_ca, "compute1");
    let etcd_ca_file = etcd_ca.dir().join("ca.crt");

    let mut cluster = EtcdCluster::start_with_peer_tls(
        1,
        PeerTls {
            ca: etcd_ca_file.clone(),
            identities: vec![member0.clone()],
        },
    )
    .await;
    let peer = cluster.members[0].peer_url.clone();
    assert!(peer.starts_with("https://"), "{peer}");

    // Reading the peer API (`GET /members`): a member's certificate may...
    let member_client = https_client(&etcd_ca_file, Some(&identity(&member1)));
    let members = member_client
        .get(format!("{peer}/members"))
        .send()
        .await
        .expect("a member's certificate reaches the peer API");
    assert_eq!(members.status(), 200);
    assert!(members.text().await.unwrap().contains(&peer));
    // ...a cluster-CA certificate or none may not: the handshake fails.
    for (what, client) in [
        (
            "a cluster-CA certificate",
            https_client(&etcd_ca_file, Some(&identity(&intruder))),
        ),
        ("no certificate", https_client(&etcd_ca_file, None)),
    ] {
        let result = client.get(format!("{peer}/members")).send().await;
        assert!(
            result.is_err(),
            "{what} read the peer API: {:?}",
            result.map(|r| r.status())
        );
    }

    // Joining: the member is added, but a process with a cluster-CA certificate cannot
    // become it...
    let added = cluster.add_member(Some(intruder)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let names = cluster.member_names(0).await.expect("member list");
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names.iter().any(|(name, _)| name.is_empty()),
        "the intruder started as a member: {names:?}"
    );
    let log = log_of(&cluster.members[0].log);
    assert!(
        log.contains("bad certificate") || log.contains("certificate signed by unknown"),
        "member 0 logs no refused certificate:\n{log}"
    );
    // ...while the same slot with a certificate from etcd's CA joins (so it was the
    // certificate that kept the intruder out, not the test's setup).
    cluster.kill(added);
    let _ = std::fs::remove_dir_all(&cluster.members[added].data_dir);
    cluster.members[added].peer_identity = Some(member1);
    cluster.restart(added);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let names = cluster.member_names(0).await.unwrap_or_default();
        if names.iter().any(|(name, _)| name == "etcd1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a member with etcd's certificate did not join: {names:?}\n{}",
            log_of(&cluster.members[added].log)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster
        .wait_healthy(&[0, added], Duration::from_secs(30))
        .await;
}
