//! Placement throughput: 10,000 tasks (100 apps x 100 instances, each app with
//! constraints and a host port) onto 1,000 in-memory agents, through the same pure
//! feasibility -> rank -> pick pipeline the scheduler runs.

use std::collections::BTreeMap;

use criterion::{criterion_group, criterion_main, Criterion};
use infra::api::appdef::{normalize, AppSpec};
use infra::scheduler::placement::{place_with, AgentSlot, LoadOrder, Strategy};
use serde_json::json;

fn agents(n: usize) -> Vec<AgentSlot> {
    (0..n)
        .map(|i| AgentSlot {
            id: format!("agent-{i}"),
            hostname: format!("node-{i}"),
            attributes: std::sync::Arc::new(BTreeMap::from([
                ("rack".to_string(), format!("r{}", i % 20)),
                ("zone".to_string(), format!("z{}", i % 3)),
            ])),
            docker: i % 2 == 0,
            cpus: 16.0,
            mem: 65536.0,
            disk: 100_000.0,
            used_cpus: 0.0,
            used_mem: 0.0,
            used_disk: 0.0,
            port_range: (31000, 32000),
            used_ports: Default::default(),
            free_ports: 1001,
            app_tasks: 0,
        })
        .collect()
}

fn apps(n: usize) -> Vec<AppSpec> {
    (0..n)
        .map(|i| {
            let constraints = match i % 4 {
                0 => json!([["hostname", "UNIQUE"]]),
                1 => json!([["rack", "GROUP_BY"], ["hostname", "MAX_PER", "2"]]),
                2 => json!([["zone", "LIKE", "z[01]"], ["hostname", "MAX_PER", "3"]]),
                _ => json!([["rack", "UNLIKE", "r1[0-9]"]]),
            };
            let def = json!({
                "id": format!("/bench/app-{i}"), "cmd": "sleep 1000", "instances": 100,
                "cpus": 0.1, "mem": 64, "constraints": constraints,
                "portDefinitions": [{"port": 0}]
            });
            let def = normalize(
                def.as_object().cloned().unwrap_or_default(),
                "2020-01-01T00:00:00.000Z",
                "2020-01-01T00:00:00.000Z",
                &|_| false,
                (10000, 20000),
            );
            match AppSpec::from_definition(&def) {
                Ok(spec) => spec,
                Err(e) => panic!("bench app is invalid: {e:?}"),
            }
        })
        .collect()
}

/// Places every app on one view; `ordered`: through the view's load order, as a reconcile
/// batch does.
fn place_all(specs: &[AppSpec], cluster: &[AgentSlot], strategy: Strategy, ordered: bool) -> usize {
    let mut slots = cluster.to_vec();
    let mut order = ordered.then(|| LoadOrder::of(&slots));
    specs
        .iter()
        .map(|spec| {
            // Each app starts with no tasks anywhere (the scheduler counts them per app).
            for slot in slots.iter_mut() {
                slot.app_tasks = 0;
            }
            place_with(spec, 100, &mut slots, strategy, order.as_mut())
                .placements
                .len()
        })
        .sum()
}

fn bench(c: &mut Criterion) {
    let cluster = agents(1000);
    let specs = apps(100);
    assert_eq!(place_all(&specs, &cluster, Strategy::Spread, false), 10_000);
    assert_eq!(place_all(&specs, &cluster, Strategy::Spread, true), 10_000);
    let mut group = c.benchmark_group("placement");
    group.sample_size(10);
    group.bench_function("10k tasks on 1k agents, spread", |b| {
        b.iter(|| place_all(&specs, &cluster, Strategy::Spread, false))
    });
    group.bench_function("10k tasks on 1k agents, spread, batch load order", |b| {
        b.iter(|| place_all(&specs, &cluster, Strategy::Spread, true))
    });
    group.bench_function("10k tasks on 1k agents, binpack", |b| {
        b.iter(|| place_all(&specs, &cluster, Strategy::Binpack, false))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
