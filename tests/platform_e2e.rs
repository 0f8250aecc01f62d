//! End-to-end scenarios of issue 5 on one shared platform cluster (tests/platform/cluster.rs):
//! `infra up` builds control, compute, proxy, registry, logging and discovery on Docker hosts
//! over SSH, and the original walkthrough works on it. Scenarios 4 and 5 (logs, registry) are
//! in tests/platform/edge.rs.

#[path = "platform/cluster.rs"]
mod cluster;
#[path = "platform/edge.rs"]
mod edge;

use cluster::{counter, exclusive, platform, HOSTS};

/// Scenario 1: the platform converges from nothing, and a second `infra up` changes nothing.
#[test]
fn up_converges_from_nothing_and_a_second_up_changes_nothing() {
    let p = platform();
    let _turn = exclusive();
    for (host, _) in HOSTS {
        assert_eq!(
            counter(&p.first_recap, host, "failed"),
            0,
            "{}",
            p.first_recap
        );
        assert_eq!(
            counter(&p.first_recap, host, "unreachable"),
            0,
            "{}",
            p.first_recap
        );
        if !p.keep {
            assert!(
                counter(&p.first_recap, host, "changed") > 0,
                "{}",
                p.first_recap
            );
        }
    }
    let second = p.up_recap(&[]);
    for (host, _) in HOSTS {
        assert_eq!(counter(&second, host, "changed"), 0, "{host}: {second}");
        assert_eq!(counter(&second, host, "failed"), 0, "{host}: {second}");
        assert_eq!(counter(&second, host, "unreachable"), 0, "{host}: {second}");
    }
}
