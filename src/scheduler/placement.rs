//! Placement, Nomad's pipeline over in-memory state: for each instance to start,
//! feasibility (cpus, mem, disk, free host ports, Docker, constraints) -> rank (spread or
//! binpack) -> pick; the chosen agent's free resources shrink before the next instance.
//! Pure functions: the caller commits the result to the store.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::api::appdef::AppSpec;
use crate::api::constraints::{FieldCounts, Operator};

/// How to rank feasible agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Strategy {
    /// Fewest tasks of this app first, then the least loaded agent.
    Spread,
    /// The most loaded agent that fits, to keep others empty.
    Binpack,
}

/// What placement knows about one live agent.
#[derive(Debug, Clone)]
pub struct AgentSlot {
    pub id: String,
    pub hostname: String,
    /// Shared with the state (the view is built per reconcile batch: a copy of every
    /// agent's attributes and ports each time was a tenth of the scheduler's CPU).
    pub attributes: Arc<BTreeMap<String, String>>,
    pub docker: bool,
    pub cpus: f64,
    pub mem: f64,
    pub disk: f64,
    pub used_cpus: f64,
    pub used_mem: f64,
    pub used_disk: f64,
    pub port_range: (u16, u16),
    /// Shared with the state until a placement here adds to it (copied then).
    pub used_ports: Arc<BTreeSet<u16>>,
    /// Ports of `port_range` not in `used_ports` ([`free_in_range`]): counted once when the
    /// view is built and kept as instances are placed, because placement asks it of every
    /// agent for every instance (two B-tree descents each time were a tenth of placing).
    pub free_ports: usize,
    /// Live tasks on this agent of the app being placed (set per app by
    /// [`State::count_app_tasks`](crate::scheduler::state::State::count_app_tasks)): a
    /// count, not a map by app id, because it is read for every agent and instance.
    pub app_tasks: usize,
}

impl AgentSlot {
    fn load(&self) -> f64 {
        let cpu = if self.cpus > 0.0 {
            self.used_cpus / self.cpus
        } else {
            1.0
        };
        let mem = if self.mem > 0.0 {
            self.used_mem / self.mem
        } else {
            1.0
        };
        (cpu + mem) / 2.0
    }

    /// Host ports for one instance, or None when the agent cannot give them.
    fn pick_ports(&self, spec: &AppSpec) -> Option<Vec<u16>> {
        let mut chosen: Vec<u16> = Vec::with_capacity(spec.ports.len());
        for request in &spec.ports {
            match request.fixed {
                Some(p) => {
                    if self.used_ports.contains(&p) || chosen.contains(&p) {
                        return None;
                    }
                    chosen.push(p);
                }
                None => {
                    let (lo, hi) = self.port_range;
                    let port = first_free_port(&self.used_ports, &chosen, lo, hi)?;
                    chosen.push(port);
                }
            }
        }
        Some(chosen)
    }
}

impl AgentSlot {
    /// Whether the agent can give one instance its host ports (no allocation: this runs
    /// for every agent and every instance).
    fn ports_fit(&self, spec: &AppSpec) -> bool {
        let mut dynamic = 0;
        for (i, request) in spec.ports.iter().enumerate() {
            match request.fixed {
                Some(p) => {
                    let repeated = spec.ports[..i].iter().any(|q| q.fixed == Some(p));
                    if self.used_ports.contains(&p) || repeated {
                        return false;
                    }
                }
                None => dynamic += 1,
            }
        }
        if dynamic == 0 {
            return true;
        }
        let (lo, hi) = self.port_range;
        if lo > hi {
            return false;
        }
        // The app's own fixed ports in the range (free, as checked above; distinct).
        let fixed_in_range = spec
            .ports
            .iter()
            .filter(|q| q.fixed.is_some_and(|p| (lo..=hi).contains(&p)))
            .count();
        self.free_ports.saturating_sub(fixed_in_range) >= dynamic
    }
}

/// How many ports of `lo..=hi` are not in `used`. Counted, not searched: a walk of the
/// range looked up every port held below the first free one (more than half the
/// scheduler's CPU at 100 tasks per agent).
pub fn free_in_range((lo, hi): (u16, u16), used: &BTreeSet<u16>) -> usize {
    if lo > hi {
        return 0;
    }
    let size = usize::from(hi - lo) + 1;
    // Held ports are almost always all in the agent's range: then the set's size is the
    // count, found without the two range searches.
    let inside = |p: Option<&u16>| p.is_none_or(|p| (lo..=hi).contains(p));
    let used_in_range = if inside(used.first()) && inside(used.last()) {
        used.len()
    } else {
        let below = used.range(..lo).count();
        let above = match hi.checked_add(1) {
            Some(next) => used.range(next..).count(),
            None => 0,
        };
        used.len() - below - above
    };
    size.saturating_sub(used_in_range)
}

/// The lowest port of `lo..=hi` neither in `used` nor in `chosen`: one walk of the held
/// ports in order (no lookup per port).
fn first_free_port(used: &BTreeSet<u16>, chosen: &[u16], lo: u16, hi: u16) -> Option<u16> {
    let mut held = used.range(lo..=hi).copied().peekable();
    for port in lo..=hi {
        while held.next_if(|&h| h < port).is_some() {}
        if held.next_if_eq(&port).is_some() || chosen.contains(&port) {
            continue;
        }
        return Some(port);
    }
    None
}

/// Why an agent cannot take one more instance (the first check that fails). Cheap to
/// compute for every agent and instance; the text is built only when nothing fits.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Misfit {
    NoDocker,
    Cpus,
    Mem,
    Disk,
    /// The constraint at this index of the app's constraints.
    Constraint(usize),
    Ports,
}

impl Misfit {
    fn describe(self, spec: &AppSpec) -> String {
        let app = &spec.app;
        match self {
            Misfit::NoDocker => "no agent with Docker".to_string(),
            Misfit::Cpus => format!("no agent with {} free cpus", app.cpus),
            Misfit::Mem => format!("no agent with {} MiB free mem", app.mem),
            Misfit::Disk => format!("no agent with {} MiB free disk", app.disk),
            Misfit::Constraint(i) => spec.constraints[i].describe(),
            Misfit::Ports => {
                let fixed: Vec<String> = spec
                    .ports
                    .iter()
                    .filter_map(|p| p.fixed.map(|f| f.to_string()))
                    .collect();
                if fixed.is_empty() {
                    format!("no agent with {} free host ports", spec.ports.len())
                } else {
                    format!("no agent with host ports {} free", fixed.join(","))
                }
            }
        }
    }
}

/// The verdicts of an app's constraints that depend on the agent alone (LIKE, UNLIKE,
/// IS, CLUSTER with a value), worked out once per agent and app rather than once per
/// agent and instance (a regular expression each time): bit `i` set when constraint `i`
/// is one of them and allows the agent.
struct Fixed {
    /// Bit `i` set when constraint `i` depends on the agent alone.
    mask: u64,
    /// Per agent, the verdict bits.
    verdicts: Vec<u64>,
}

impl Fixed {
    fn of(spec: &AppSpec, agents: &[AgentSlot]) -> Fixed {
        let mut mask = 0u64;
        for (i, c) in spec.constraints.iter().enumerate().take(64) {
            let fixed = matches!(
                c.operator,
                Operator::Like(_)
                    | Operator::Unlike(_)
                    | Operator::Is(_)
                    | Operator::Cluster(Some(_))
            );
            if fixed {
                mask |= 1 << i;
            }
        }
        let verdicts = if mask == 0 {
            Vec::new()
        } else {
            agents
                .iter()
                .map(|agent| {
                    let mut bits = 0u64;
                    for (i, c) in spec.constraints.iter().enumerate().take(64) {
                        let value = c.agent_value(&agent.hostname, &agent.attributes);
                        if mask & (1 << i) != 0 && c.allows(value, None, 0) {
                            bits |= 1 << i;
                        }
                    }
                    bits
                })
                .collect()
        };
        Fixed { mask, verdicts }
    }

    /// Constraint `i`'s verdict on agent `index` when it depends on the agent alone.
    fn verdict(&self, i: usize, index: usize) -> Option<bool> {
        if i >= 64 || self.mask & (1 << i) == 0 {
            return None;
        }
        Some(self.verdicts.get(index).is_some_and(|v| v & (1 << i) != 0))
    }
}

/// Per constraint of an app: its tasks per value of the constraint's field, and how many
/// values the field has across agents. Looked up once per instance placed rather than per
/// agent (two hashes of the field name per agent and constraint were a tenth of placing).
type ConstraintCounts<'a> = Vec<(Option<&'a HashMap<String, usize>>, usize)>;

fn constraint_counts<'a>(
    spec: &AppSpec,
    counts: &'a FieldCounts,
    cardinality: &HashMap<String, usize>,
) -> ConstraintCounts<'a> {
    spec.constraints
        .iter()
        .map(|c| {
            let all = cardinality.get(&c.field).copied().unwrap_or(0);
            (counts.get(&c.field), all)
        })
        .collect()
}

/// Whether `agent` (at `index` of the agents `fixed` was worked out for) can take one
/// more instance of `spec`; None when it can.
fn misfit(
    spec: &AppSpec,
    docker: bool,
    (index, agent): (usize, &AgentSlot),
    fixed: &Fixed,
    counts: &ConstraintCounts,
) -> Option<Misfit> {
    let app = &spec.app;
    if docker && !agent.docker {
        return Some(Misfit::NoDocker);
    }
    if agent.cpus - agent.used_cpus + 1e-9 < app.cpus {
        return Some(Misfit::Cpus);
    }
    if agent.mem - agent.used_mem + 1e-9 < app.mem {
        return Some(Misfit::Mem);
    }
    if agent.disk - agent.used_disk + 1e-9 < app.disk {
        return Some(Misfit::Disk);
    }
    for (i, constraint) in spec.constraints.iter().enumerate() {
        let allowed = match fixed.verdict(i, index) {
            Some(verdict) => verdict,
            None => {
                let value = constraint.agent_value(&agent.hostname, &agent.attributes);
                let (field_counts, all) = counts[i];
                constraint.allows(value, field_counts, all)
            }
        };
        if !allowed {
            return Some(Misfit::Constraint(i));
        }
    }
    (!agent.ports_fit(spec)).then_some(Misfit::Ports)
}

/// One placed instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub agent_index: usize,
    pub host_ports: Vec<u16>,
}

/// The outcome of placing `count` instances: what fits, and why the rest does not.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlanResult {
    pub placements: Vec<Placement>,
    /// Set when fewer than `count` were placed.
    pub reason: Option<String>,
}

/// Counts of the app's tasks per constraint field value, from where they run now.
pub fn field_counts(spec: &AppSpec, agents: &[AgentSlot]) -> FieldCounts {
    let mut counts: FieldCounts = HashMap::new();
    for constraint in &spec.constraints {
        let entry = counts.entry(constraint.field.clone()).or_default();
        for agent in agents {
            let n = agent.app_tasks;
            if n == 0 {
                continue;
            }
            if let Some(v) = constraint.agent_value(&agent.hostname, &agent.attributes) {
                *entry.entry(v.to_string()).or_default() += n;
            }
        }
    }
    counts
}

/// Distinct values of each GROUP_BY constraint's field across agents (the only operator
/// that reads it; a set of every agent's hostname per app placed was not free).
fn field_cardinality(spec: &AppSpec, agents: &[AgentSlot]) -> HashMap<String, usize> {
    spec.constraints
        .iter()
        .filter(|c| matches!(c.operator, Operator::GroupBy(_)))
        .map(|c| {
            let values: BTreeSet<&str> = agents
                .iter()
                .filter_map(|a| c.agent_value(&a.hostname, &a.attributes))
                .collect();
            (c.field.clone(), values.len())
        })
        .collect()
}

/// Places up to `count` instances of `spec` onto `agents`, updating their used resources.
pub fn place(
    spec: &AppSpec,
    count: usize,
    agents: &mut [AgentSlot],
    strategy: Strategy,
) -> PlanResult {
    place_with(spec, count, agents, strategy, None)
}

/// The agents by load (least first), for a reconcile batch that places many apps on one
/// view: spreading an instance looks at the least loaded agents that run none of the
/// app's tasks first, and stops at the first that can take it, instead of checking every
/// agent for every instance (a thousand checks per instance were a quarter of the
/// scheduler's CPU while 100,000 tasks were placed). It picks the agent the full scan
/// would: the one with the fewest of the app's tasks, then the least loaded, then the
/// first in the view. Kept up to date with [`LoadOrder::update`] whenever a slot's use
/// changes.
#[derive(Debug, Default)]
pub struct LoadOrder {
    by_load: BTreeSet<(u64, usize)>,
    /// The key each slot is filed under.
    keys: Vec<u64>,
}

/// A load as a key that sorts as the load does (`f64::total_cmp`, with -0 as 0).
fn load_key(load: f64) -> u64 {
    let bits = (load + 0.0).to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

impl LoadOrder {
    pub fn of(agents: &[AgentSlot]) -> LoadOrder {
        let keys: Vec<u64> = agents.iter().map(|a| load_key(a.load())).collect();
        let by_load = keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
        LoadOrder { by_load, keys }
    }

    /// Slot `index` changed its use (an instance placed there).
    pub fn update(&mut self, index: usize, agents: &[AgentSlot]) {
        let (Some(old), Some(agent)) = (self.keys.get(index).copied(), agents.get(index)) else {
            return;
        };
        let new = load_key(agent.load());
        if new != old {
            self.by_load.remove(&(old, index));
            self.by_load.insert((new, index));
            self.keys[index] = new;
        }
    }

    /// The least loaded agent that runs none of the app's tasks and passes `fits`.
    fn first_empty(&self, agents: &[AgentSlot], fits: impl Fn(usize) -> bool) -> Option<usize> {
        self.by_load
            .iter()
            .map(|(_, index)| *index)
            .find(|&index| agents.get(index).is_some_and(|a| a.app_tasks == 0) && fits(index))
    }
}

/// [`place`], with the batch's [`LoadOrder`] of `agents` when it has one (spread only).
pub fn place_with(
    spec: &AppSpec,
    count: usize,
    agents: &mut [AgentSlot],
    strategy: Strategy,
    mut order: Option<&mut LoadOrder>,
) -> PlanResult {
    let mut result = PlanResult::default();
    if count == 0 {
        return result;
    }
    if agents.is_empty() {
        result.reason = Some("no agents registered".to_string());
        return result;
    }
    let mut counts = field_counts(spec, agents);
    let cardinality = field_cardinality(spec, agents);
    let fixed = Fixed::of(spec, agents);
    let docker = spec.is_docker();
    for _ in 0..count {
        let mut best: Option<(usize, (usize, f64))> = None;
        let looked_up = constraint_counts(spec, &counts, &cardinality);
        let fits = |index: usize| {
            misfit(spec, docker, (index, &agents[index]), &fixed, &looked_up).is_none()
        };
        // An agent without the app's tasks beats any with them: the least loaded such
        // agent that fits is the scan's pick, if there is one.
        let picked = match (order.as_deref(), strategy) {
            (Some(order), Strategy::Spread) => order.first_empty(agents, fits),
            _ => None,
        };
        match picked {
            Some(index) => best = Some((index, (0, agents[index].load()))),
            None => {
                for (index, agent) in agents.iter().enumerate() {
                    if misfit(spec, docker, (index, agent), &fixed, &looked_up).is_some() {
                        continue;
                    }
                    let score = match strategy {
                        Strategy::Spread => (agent.app_tasks, agent.load()),
                        Strategy::Binpack => (0, -agent.load()),
                    };
                    let better = match &best {
                        None => true,
                        Some((_, b)) => score.0 < b.0 || (score.0 == b.0 && score.1 < b.1),
                    };
                    if better {
                        best = Some((index, score));
                    }
                }
            }
        }
        let Some((index, _)) = best else {
            // Nothing fits: now find out why, agent by agent.
            let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
            for (index, agent) in agents.iter().enumerate() {
                let why = misfit(spec, docker, (index, agent), &fixed, &looked_up);
                if let Some(why) = why {
                    *reasons.entry(why.describe(spec)).or_default() += 1;
                }
            }
            let mut reasons: Vec<(String, usize)> = reasons.into_iter().collect();
            reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let text: Vec<String> = reasons.into_iter().map(|(r, _)| r).collect();
            result.reason = Some(text.join("; "));
            break;
        };
        let agent = &mut agents[index];
        let Some(ports) = agent.pick_ports(spec) else {
            break;
        };
        agent.used_cpus += spec.app.cpus;
        agent.used_mem += spec.app.mem;
        agent.used_disk += spec.app.disk;
        Arc::make_mut(&mut agent.used_ports).extend(ports.iter().copied());
        let (lo, hi) = agent.port_range;
        let taken = ports.iter().filter(|p| (lo..=hi).contains(*p)).count();
        agent.free_ports = agent.free_ports.saturating_sub(taken);
        agent.app_tasks += 1;
        if let Some(order) = order.as_deref_mut() {
            order.update(index, agents);
        }
        let agent = &agents[index];
        for constraint in &spec.constraints {
            if let Some(v) = constraint.agent_value(&agent.hostname, &agent.attributes) {
                *counts
                    .entry(constraint.field.clone())
                    .or_default()
                    .entry(v.to_string())
                    .or_default() += 1;
            }
        }
        result.placements.push(Placement {
            agent_index: index,
            host_ports: ports,
        });
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn free_host_ports_are_counted_and_picked_past_the_held_ones() {
        let mut a = agent("a", 4.0, "r1");
        a.used_ports = Arc::new([31000, 31001, 31002, 31003, 31004, 31007, 40000].into());
        a.free_ports = free_in_range(a.port_range, &a.used_ports);
        let dynamic = |n: usize| {
            let defs: Vec<serde_json::Value> = (0..n).map(|_| json!({"port": 0})).collect();
            spec(json!({"id": "/p", "cmd": "x", "portDefinitions": defs,
                        "requirePorts": false}))
        };
        let one = dynamic(1);
        assert!(a.ports_fit(&one));
        assert_eq!(a.pick_ports(&one), Some(vec![31005]));
        // 11 ports in the range, 6 of them held (the one outside does not count).
        let five = dynamic(5);
        assert!(a.ports_fit(&five));
        assert_eq!(
            a.pick_ports(&five),
            Some(vec![31005, 31006, 31008, 31009, 31010])
        );
        assert!(!a.ports_fit(&dynamic(6)));
        assert_eq!(a.pick_ports(&dynamic(6)), None);
        // A fixed port of the app's own takes one of the free ones.
        let mut fixed = dynamic(1);
        fixed.ports.insert(0, fixed.ports[0].clone());
        fixed.ports[0].fixed = Some(31005);
        assert!(a.ports_fit(&fixed));
        assert_eq!(a.pick_ports(&fixed), Some(vec![31005, 31006]));
        fixed.ports[0].fixed = Some(31007);
        assert!(!a.ports_fit(&fixed), "held already");
        // A full range.
        a.used_ports = Arc::new((31000..=31010).collect());
        a.free_ports = free_in_range(a.port_range, &a.used_ports);
        assert!(!a.ports_fit(&one));
        assert_eq!(a.pick_ports(&one), None);
    }

    /// The load order picks what the full scan picks, app after app on one view (as a
    /// reconcile batch places them), whatever the constraints, loads and ports.
    #[test]
    fn the_load_order_picks_what_the_scan_picks() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for round in 0..40 {
            let mut scanned: Vec<AgentSlot> = (0..(5 + next(40)))
                .map(|i| {
                    let mut a = agent(
                        &format!("a{i}"),
                        1.0 + next(4) as f64,
                        &format!("r{}", next(4)),
                    );
                    a.used_cpus = next(3) as f64 * 0.5;
                    a.used_mem = next(2000) as f64;
                    if next(3) == 0 {
                        a.hostname = "shared".into();
                    }
                    a
                })
                .collect();
            let mut ordered = scanned.clone();
            let mut order = LoadOrder::of(&ordered);
            for app in 0..20 {
                let constraints = match next(5) {
                    0 => json!([["hostname", "UNIQUE"]]),
                    1 => json!([["rack", "GROUP_BY"]]),
                    2 => json!([["rack", "LIKE", "r[12]"]]),
                    3 => json!([["hostname", "MAX_PER", "2"]]),
                    _ => json!([]),
                };
                let spec = spec(json!({"id": format!("/a{app}"), "cmd": "x",
                    "cpus": 0.25 * (1 + next(3)) as f64, "mem": 64,
                    "constraints": constraints, "portDefinitions": [{"port": 0}]}));
                let count = 1 + next(6) as usize;
                for slots in [&mut scanned, &mut ordered] {
                    for slot in slots.iter_mut() {
                        slot.app_tasks = 0;
                    }
                }
                let want = place(&spec, count, &mut scanned, Strategy::Spread);
                let got = place_with(
                    &spec,
                    count,
                    &mut ordered,
                    Strategy::Spread,
                    Some(&mut order),
                );
                assert_eq!(got, want, "round {round}, app {app}");
            }
        }
    }

    fn spec(v: serde_json::Value) -> AppSpec {
        let def = crate::api::appdef::normalize(
            v.as_object().unwrap().clone(),
            "v",
            "v",
            &|_| false,
            (10000, 20000),
        );
        AppSpec::from_definition(&def).unwrap()
    }

    fn agent(name: &str, cpus: f64, rack: &str) -> AgentSlot {
        AgentSlot {
            id: name.to_string(),
            hostname: name.to_string(),
            attributes: Arc::new([("rack".to_string(), rack.to_string())].into()),
            docker: false,
            cpus,
            mem: 4096.0,
            disk: 10000.0,
            used_cpus: 0.0,
            used_mem: 0.0,
            used_disk: 0.0,
            port_range: (31000, 31010),
            used_ports: Default::default(),
            free_ports: 11,
            app_tasks: 0,
        }
    }

    #[test]
    fn unique_hostname_places_one_per_agent_and_says_why_not_more() {
        let s = spec(json!({"id": "/web", "cmd": "x", "cpus": 0.1, "mem": 16,
            "constraints": [["hostname", "UNIQUE"]]}));
        let mut agents = vec![
            agent("a", 4.0, "r1"),
            agent("b", 4.0, "r1"),
            agent("c", 4.0, "r2"),
        ];
        let plan = place(&s, 5, &mut agents, Strategy::Spread);
        assert_eq!(plan.placements.len(), 3);
        let used: BTreeSet<usize> = plan.placements.iter().map(|p| p.agent_index).collect();
        assert_eq!(used.len(), 3);
        assert_eq!(
            plan.reason.as_deref(),
            Some("constraint hostname UNIQUE not satisfiable")
        );
    }

    #[test]
    fn ports_come_from_the_agent_range_and_do_not_collide() {
        let s = spec(json!({"id": "/web", "cmd": "x", "cpus": 0.1, "mem": 16,
            "portDefinitions": [{"port": 0}, {"port": 0}]}));
        let mut agents = vec![agent("a", 4.0, "r1")];
        let plan = place(&s, 2, &mut agents, Strategy::Spread);
        assert_eq!(plan.placements[0].host_ports, vec![31000, 31001]);
        assert_eq!(plan.placements[1].host_ports, vec![31002, 31003]);
        let plan = place(&s, 5, &mut agents, Strategy::Spread);
        assert_eq!(plan.placements.len(), 3, "11 ports in the range, 4 taken");
        assert_eq!(
            plan.reason.as_deref(),
            Some("no agent with 2 free host ports")
        );
    }

    #[test]
    fn require_ports_needs_the_exact_port() {
        let s = spec(json!({"id": "/web", "cmd": "x", "cpus": 0.1, "mem": 16,
            "requirePorts": true, "portDefinitions": [{"port": 7777}]}));
        let mut agents = vec![agent("a", 4.0, "r1"), agent("b", 4.0, "r1")];
        let plan = place(&s, 3, &mut agents, Strategy::Spread);
        assert_eq!(plan.placements.len(), 2);
        assert!(plan.placements.iter().all(|p| p.host_ports == vec![7777]));
        assert_eq!(
            plan.reason.as_deref(),
            Some("no agent with host ports 7777 free")
        );
    }

    #[test]
    fn resources_limit_placement_with_a_clear_reason() {
        let s = spec(json!({"id": "/big", "cmd": "x", "cpus": 4, "mem": 16}));
        let mut agents = vec![agent("a", 2.0, "r1")];
        let plan = place(&s, 1, &mut agents, Strategy::Spread);
        assert!(plan.placements.is_empty());
        assert_eq!(plan.reason.as_deref(), Some("no agent with 4 free cpus"));
        let docker = spec(
            json!({"id": "/d", "container": {"type": "DOCKER", "docker": {"image": "x"}}, "cpus": 0.1}),
        );
        let plan = place(&docker, 1, &mut agents, Strategy::Spread);
        assert_eq!(plan.reason.as_deref(), Some("no agent with Docker"));
    }

    #[test]
    fn spread_and_binpack_rank_differently() {
        let s = spec(json!({"id": "/w", "cmd": "x", "cpus": 1, "mem": 16, "portDefinitions": []}));
        let mut agents = vec![agent("a", 4.0, "r1"), agent("b", 4.0, "r1")];
        let plan = place(&s, 4, &mut agents, Strategy::Spread);
        let on_a = plan
            .placements
            .iter()
            .filter(|p| p.agent_index == 0)
            .count();
        assert_eq!(on_a, 2);
        let mut agents = vec![agent("a", 4.0, "r1"), agent("b", 4.0, "r1")];
        agents[1].used_cpus = 1.0;
        let plan = place(&s, 3, &mut agents, Strategy::Binpack);
        assert!(plan.placements.iter().all(|p| p.agent_index == 1));
    }

    #[test]
    fn group_by_rack_balances() {
        let s = spec(
            json!({"id": "/g", "cmd": "x", "cpus": 0.1, "mem": 1, "portDefinitions": [],
            "constraints": [["rack", "GROUP_BY"]]}),
        );
        let mut agents = vec![
            agent("a", 8.0, "r1"),
            agent("b", 8.0, "r1"),
            agent("c", 8.0, "r2"),
        ];
        let plan = place(&s, 4, &mut agents, Strategy::Spread);
        let on_r2 = plan
            .placements
            .iter()
            .filter(|p| p.agent_index == 2)
            .count();
        assert_eq!(on_r2, 2);
    }
}
