//! Issue 14 on the shared platform: the control node's API (8080) and DNS (8600) ports
//! answer the cluster's networks only, unless the inventory lists another network
//! (`infra_control_allowed_networks`, playbooks/control.yaml). The outside client is a
//! container on a Docker network of its own, to which control1 is connected too (as a
//! control node with a second, public interface would be): it reaches control1's sshd on
//! that network (so the route works) but not the scheduler's ports, while compute1, on the
//! cluster network, reaches both.

use std::process::Command;

use crate::cluster::{exclusive, platform, text, Platform};

/// A Docker network outside the cluster with control1 attached; both undone on drop.
struct Outside<'a> {
    platform: &'a Platform,
    network: String,
}

impl<'a> Outside<'a> {
    fn create(platform: &'a Platform) -> Outside<'a> {
        let network = format!("{}-outside", platform.cluster);
        docker(&["network", "create", &network]);
        let outside = Outside { platform, network };
        docker(&["network", "connect", &outside.network, &outside.control1()]);
        outside
    }

    fn control1(&self) -> String {
        format!("{}-control1", self.platform.cluster)
    }

    /// control1's address on the outside network.
    fn control1_ip(&self) -> String {
        let format = format!(
            "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
            self.network
        );
        docker(&["inspect", "-f", &format, &self.control1()])
            .trim()
            .to_string()
    }

    /// The subnet Docker gave the outside network.
    fn subnet(&self) -> String {
        docker(&[
            "network",
            "inspect",
            "-f",
            "{{(index .IPAM.Config 0).Subnet}}",
            &self.network,
        ])
        .trim()
        .to_string()
    }

    /// Which of `ports` a client on the outside network can open a TCP connection to on
    /// `ip` ("22 open", "8080 closed", ...).
    fn probe(&self, ip: &str, ports: &[u16]) -> String {
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        let script = format!(
            "for port in {}; do if timeout 5 bash -c \"exec 3<>/dev/tcp/{ip}/$port\" \
             2>/dev/null; then echo \"$port open\"; else echo \"$port closed\"; fi; done",
            ports.join(" ")
        );
        docker(&[
            "run",
            "--rm",
            "--network",
            &self.network,
            "--entrypoint",
            "bash",
            "infra-host",
            "-c",
            &script,
        ])
    }
}

impl Drop for Outside<'_> {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args([
                "network",
                "disconnect",
                "-f",
                &self.network,
                &self.control1(),
            ])
            .output();
        let _ = Command::new("docker")
            .args(["network", "rm", &self.network])
            .output();
    }
}

/// Runs `docker args`, which must succeed; its stdout.
fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI is needed");
    assert!(out.status.success(), "docker {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_api_and_dns_ports_refuse_a_network_outside_the_cluster_unless_the_inventory_allows_it() {
    let p = platform();
    let _turn = exclusive();
    let outside = Outside::create(p);
    let ip = outside.control1_ip();

    let seen = outside.probe(&ip, &[22, 8080, 8600]);
    assert_eq!(
        seen.lines().collect::<Vec<_>>(),
        ["22 open", "8080 closed", "8600 closed"],
        "from the outside network to control1 ({ip})"
    );

    // A cluster host gets through, to the API and to DNS (udp).
    let control1 = p.ip("control1");
    let pong = p.ssh_ok(
        "compute1",
        &format!(
            "curl -fsS --max-time 5 --cacert /etc/infra/pki/ca.crt https://{control1}:8080/ping"
        ),
    );
    assert_eq!(pong.trim(), "pong");
    // Any answer (NOERROR or NXDOMAIN) shows the server was reached; a refused or dropped
    // query gives none.
    let answer = p.ssh(
        "compute1",
        &format!("dig +time=3 +tries=1 -p 8600 @{control1} compute1.node.dc1.infra"),
    );
    assert!(
        String::from_utf8_lossy(&answer.stdout).contains("status: "),
        "DNS from compute1: {}",
        text(&answer)
    );

    // The inventory asks for the outside network: it gets through; a plain `infra up`
    // closes the ports again.
    let allow = format!(
        "{{\"infra_control_allowed_networks\": [\"{}\"]}}",
        outside.subnet()
    );
    let recap = p.up_recap(&["-e", &allow]);
    assert_eq!(
        crate::cluster::counter(&recap, "control1", "failed"),
        0,
        "{recap}"
    );
    let seen = outside.probe(&ip, &[8080, 8600]);
    assert_eq!(
        seen.lines().collect::<Vec<_>>(),
        ["8080 open", "8600 open"],
        "with the outside network allowed"
    );
    let recap = p.up_recap(&[]);
    assert_eq!(
        crate::cluster::counter(&recap, "control1", "failed"),
        0,
        "{recap}"
    );
    let seen = outside.probe(&ip, &[8080]);
    assert_eq!(seen.trim(), "8080 closed", "after a plain infra up");
}
