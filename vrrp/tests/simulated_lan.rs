//! A deterministic simulated LAN: N engines on one segment, a virtual clock,
//! and seeded loss, delay, partitions, crashes and restarts. proptest
//! generates the scenarios; the five properties of the VRRP issue are
//! asserted on every one.
//!
//! 1. Once the network has been healed and stable for a Master_Down_Interval
//!    (plus the delivery delay), there is exactly one master, and it stays.
//! 2. After the master dies, a backup is master exactly at
//!    min over backups of (last advert received + its Master_Down_Interval).
//! 3. In a stable network where all preempt, the highest live priority ends
//!    master.
//! 4. In a stable network no state changes over 10,000 adverts.
//! 5. On a priority-0 handover, a backup is master exactly at
//!    min over backups of (priority-0 advert received + its Skew_Time).
//!
//! And for preempt_delay: a higher-priority backup restarted with a delay
//! leaves the master alone until the delay has passed, then preempts it
//! within its Master_Down_Interval. And for sync groups (two VRIDs per
//! router, loss drawn per VRID, member links going down): members are in
//! one state after every input, one member's fault faults the group, and
//! after the heal one router is master of both VRIDs and stays so.
//!
//! Every scenario also checks that each reported transition starts from the
//! state the engine was in (no transition is invented or lost).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use lvskit_vrrp::wire::Version;
use lvskit_vrrp::{Action, Config, InitialState, Instance, RxMeta, State, VirtualAddress};
use proptest::prelude::*;

/// SplitMix64: a tiny seeded generator, so runs are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// A packet on the wire.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    seq: u64,
    to: usize,
    from: usize,
    destination: IpAddr,
    payload: Bytes,
}

/// Network conditions.
#[derive(Clone, Copy, Debug)]
struct Link {
    /// Loss probability in per mille.
    loss_per_mille: u64,
    /// Uniform delay in `0..=max_delay`.
    max_delay: Duration,
}

struct Node {
    config: Config,
    vr: Option<Instance>,
    partition: u8,
    /// State as reported by StateChanged actions.
    reported: State,
}

/// A transition seen on the wire of the simulation.
#[derive(Debug, Clone, Copy)]
struct Transition {
    at: Instant,
    node: usize,
    to: State,
}

struct Sim {
    now: Instant,
    nodes: Vec<Node>,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    rng: Rng,
    link: Link,
    transitions: Vec<Transition>,
    /// Per node: when it last accepted an advert, with that packet's
    /// priority, its Master_Down_Interval and Skew_Time right after.
    last_rx: Vec<Option<(Instant, u8, Duration, Duration)>>,
    adverts_sent: u64,
    /// Per (sender, receiver): the arrival time of the last packet queued.
    fifo: Vec<Vec<Instant>>,
}

fn address(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + i as u8))
}

fn node_config(
    i: usize,
    version: Version,
    interval: Duration,
    priority: u8,
    preempt: bool,
) -> Config {
    let vip = VirtualAddress::new("10.0.0.100".parse().unwrap());
    let mut c = Config::new(42, address(i), vec![vip]);
    c.version = version;
    c.advert_interval = interval;
    c.priority = priority;
    c.preempt = preempt;
    c.garp.master_repeat = 1;
    c
}

impl Sim {
    fn new(configs: Vec<Config>, seed: u64, link: Link) -> Self {
        let now = Instant::now();
        let n = configs.len();
        let mut sim = Sim {
            now,
            nodes: configs
                .into_iter()
                .map(|config| Node {
                    config,
                    vr: None,
                    partition: 0,
                    reported: State::Initialize,
                })
                .collect(),
            queue: BinaryHeap::new(),
            seq: 0,
            rng: Rng(seed),
            link,
            transitions: Vec::new(),
            last_rx: vec![None; n],
            adverts_sent: 0,
            fifo: vec![vec![now; n]; n],
        };
        for i in 0..n {
            sim.start(i);
        }
        sim
    }

    fn start(&mut self, i: usize) {
        let mut vr = Instance::new(self.nodes[i].config.clone()).unwrap();
        vr.startup(self.now);
        self.nodes[i].vr = Some(vr);
        self.nodes[i].reported = State::Initialize;
        self.last_rx[i] = None;
        self.flush(i);
    }

    /// Kills node `i` without a priority-0 advert. Packets it already sent
    /// stay on the wire.
    fn crash(&mut self, i: usize) {
        if self.nodes[i].vr.take().is_some() {
            self.transitions.push(Transition {
                at: self.now,
                node: i,
                to: State::Initialize,
            });
            self.nodes[i].reported = State::Initialize;
        }
    }

    fn shutdown(&mut self, i: usize) {
        if let Some(vr) = self.nodes[i].vr.as_mut() {
            vr.shutdown(self.now);
            self.flush(i);
            self.nodes[i].vr = None;
        }
    }

    fn alive(&self, i: usize) -> bool {
        self.nodes[i].vr.is_some()
    }

    fn state(&self, i: usize) -> State {
        self.nodes[i]
            .vr
            .as_ref()
            .map_or(State::Initialize, Instance::state)
    }

    fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.state(i) == State::Master)
            .collect()
    }

    /// Applies node `i`'s actions: adverts go on the wire, transitions are
    /// logged and checked.
    fn flush(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let Some(vr) = node.vr.as_mut() else {
            return;
        };
        let mut sends = Vec::new();
        while let Some(action) = vr.poll_action() {
            match action {
                Action::SendAdvert(ad) => sends.push(ad),
                Action::StateChanged { from, to, .. } => {
                    assert_eq!(
                        from, node.reported,
                        "node {i}: transition from a state it was not in"
                    );
                    node.reported = to;
                    self.transitions.push(Transition {
                        at: self.now,
                        node: i,
                        to,
                    });
                }
                _ => {}
            }
        }
        assert_eq!(node.reported, vr.state(), "node {i}: lost a transition");
        for ad in sends {
            self.adverts_sent += 1;
            for to in 0..self.nodes.len() {
                if to == i {
                    continue;
                }
                if self.rng.below(1000) < self.link.loss_per_mille {
                    continue;
                }
                let delay_ns = self.rng.below(self.link.max_delay.as_nanos() as u64 + 1);
                // A LAN does not reorder one sender's frames to one receiver.
                let at = (self.now + Duration::from_nanos(delay_ns)).max(self.fifo[i][to]);
                self.fifo[i][to] = at;
                self.seq += 1;
                self.queue.push(Reverse(InFlight {
                    at,
                    seq: self.seq,
                    to,
                    from: i,
                    destination: ad.destination,
                    payload: ad.payload.clone(),
                }));
            }
        }
    }

    fn next_timer(&self) -> Option<(Instant, usize)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.vr.as_ref()?.poll_timeout().map(|t| (t, i)))
            .min()
    }

    /// The instant of the next event, if any.
    fn next_event(&self) -> Option<Instant> {
        let packet_at = self.queue.peek().map(|Reverse(p)| p.at);
        let timer_at = self.next_timer().map(|(t, _)| t);
        packet_at.into_iter().chain(timer_at).min()
    }

    /// Processes the next event if it is due by `until`; packets first.
    fn step(&mut self, until: Instant) -> bool {
        let Some(next) = self.next_event().filter(|t| *t <= until) else {
            return false;
        };
        self.now = next;
        if self.queue.peek().is_some_and(|Reverse(p)| p.at == next) {
            let Reverse(p) = self.queue.pop().unwrap();
            self.deliver(p);
        } else if let Some((_, i)) = self.next_timer() {
            self.nodes[i].vr.as_mut().unwrap().handle_timeout(next);
            self.flush(i);
        }
        true
    }

    /// Runs every event up to and including `until`.
    fn run_until(&mut self, until: Instant) {
        while self.step(until) {}
        self.now = until;
    }

    /// Runs until some node becomes master (stopping right after that
    /// event), or `until`.
    fn run_until_new_master(&mut self, until: Instant) -> Option<Transition> {
        let start = self.transitions.len();
        while self.step(until) {
            if let Some(t) = self.transitions[start..]
                .iter()
                .find(|t| t.to == State::Master)
            {
                return Some(*t);
            }
        }
        None
    }

    fn deliver(&mut self, p: InFlight) {
        let to = p.to;
        if self.nodes[to].partition != self.nodes[p.from].partition {
            return;
        }
        let Some(vr) = self.nodes[to].vr.as_mut() else {
            return;
        };
        let meta = RxMeta::new(address(p.from), p.destination, 255);
        // What RFC 9568 §6.4.2 says resets a backup's Master_Down_Timer:
        // priority 0, or an advert it follows (nopreempt, or priority at
        // least its own).
        let priority = p.payload[2];
        let follows = vr.state() == State::Backup
            && (priority == 0 || !vr.config().preempt || priority >= vr.effective_priority());
        if vr.handle_packet(self.now, &meta, &p.payload).is_ok() && follows {
            self.last_rx[to] = Some((
                self.now,
                p.payload[2],
                vr.master_down_interval(),
                vr.skew_time(),
            ));
        }
        self.flush(to);
    }

    /// The largest Master_Down_Interval of any node (lowest priority).
    fn max_master_down_interval(&self) -> Duration {
        self.nodes
            .iter()
            .map(|n| {
                lvskit_vrrp::timing::master_down_interval(
                    n.config.version,
                    n.config.priority,
                    n.config.adver_int_units().unwrap(),
                )
            })
            .max()
            .unwrap()
    }

    /// Runs until `until`, asserting exactly one master at every event.
    fn assert_one_master_until(&mut self, until: Instant) -> usize {
        let masters = self.masters();
        assert_eq!(masters.len(), 1, "masters at {:?}: {masters:?}", self.now);
        let master = masters[0];
        let since = self.transitions.len();
        self.run_until(until);
        let changes: Vec<_> = self.transitions[since..].to_vec();
        assert!(
            changes.is_empty(),
            "state changed in a stable network: {changes:?}"
        );
        master
    }
}

#[derive(Debug, Clone)]
struct Phase {
    /// Length in advertisement intervals.
    intervals: u32,
    loss_per_mille: u64,
    /// Maximum delay, in percent of the interval.
    max_delay_percent: u32,
    /// Partition id per node.
    partitions: Vec<u8>,
    crash: Option<usize>,
    restart: Option<usize>,
}

#[derive(Debug, Clone)]
struct Scenario {
    version: Version,
    interval: Duration,
    priorities: Vec<u8>,
    preempt: Vec<bool>,
    /// keepalived's `state MASTER` (startup wait of one interval + skew).
    state_master: Vec<bool>,
    seed: u64,
    phases: Vec<Phase>,
}

fn version_and_interval() -> impl Strategy<Value = (Version, Duration)> {
    prop_oneof![
        Just((Version::V2, Duration::from_secs(1))),
        (1u64..=100).prop_map(|cs| (Version::V3, Duration::from_millis(cs * 10))),
    ]
}

fn scenario(max_nodes: usize) -> impl Strategy<Value = Scenario> {
    (2..=max_nodes, version_and_interval(), any::<u64>()).prop_flat_map(
        |(n, (version, interval), seed)| {
            let phase = (
                1u32..12,
                prop_oneof![Just(0u64), 0u64..1000],
                0u32..200,
                proptest::collection::vec(0u8..2, n),
                proptest::option::weighted(0.3, 0..n),
                proptest::option::weighted(0.3, 0..n),
            )
                .prop_map(
                    |(intervals, loss_per_mille, max_delay_percent, partitions, crash, restart)| {
                        Phase {
                            intervals,
                            loss_per_mille,
                            max_delay_percent,
                            partitions,
                            crash,
                            restart,
                        }
                    },
                );
            (
                proptest::collection::vec(
                    prop_oneof![3 => 1u8..=254, 1 => Just(100u8), 1 => Just(255u8)],
                    n,
                ),
                proptest::collection::vec(proptest::bool::weighted(0.85), n),
                proptest::collection::vec(proptest::bool::weighted(0.2), n),
                proptest::collection::vec(phase, 0..6),
            )
                .prop_map(move |(priorities, preempt, state_master, phases)| {
                    Scenario {
                        version,
                        interval,
                        priorities,
                        preempt,
                        state_master,
                        seed,
                        phases,
                    }
                })
        },
    )
}

fn build(s: &Scenario, link: Link) -> Sim {
    let configs = s
        .priorities
        .iter()
        .zip(&s.preempt)
        .enumerate()
        .map(|(i, (&p, &preempt))| {
            let mut c = node_config(i, s.version, s.interval, p, preempt);
            if s.state_master[i] {
                c.initial_state = InitialState::Master;
            }
            c
        })
        .collect();
    Sim::new(configs, s.seed, link)
}

fn stable_link(interval: Duration) -> Link {
    Link {
        loss_per_mille: 0,
        max_delay: interval / 10,
    }
}

/// Heals the network and lets it settle: returns when exactly one master
/// must exist (stable for a Master_Down_Interval plus two delays).
fn heal(sim: &mut Sim, interval: Duration, flush_delay: Duration) {
    sim.link = stable_link(interval);
    for n in &mut sim.nodes {
        n.partition = 0;
    }
    if (0..sim.nodes.len()).all(|i| !sim.alive(i)) {
        sim.start(0);
    }
    // Packets sent before the heal may still be on the wire.
    let stable_from = sim.now + flush_delay;
    let settle = sim.max_master_down_interval() + 2 * sim.link.max_delay;
    sim.run_until(stable_from + settle);
}

fn highest_live_priority(sim: &Sim) -> u8 {
    (0..sim.nodes.len())
        .filter(|&i| sim.alive(i))
        .map(|i| sim.nodes[i].config.priority)
        .max()
        .unwrap()
}

/// A network of scenario `s`, healed, converged, then stable for `adverts`
/// intervals; returns it with its master and the current time.
fn converged(s: &Scenario, adverts: u32) -> (Sim, usize, Instant) {
    let mut sim = build(s, stable_link(s.interval));
    heal(&mut sim, s.interval, Duration::ZERO);
    let until = sim.now + s.interval * adverts;
    let master = sim.assert_one_master_until(until);
    (sim, master, until)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("SIM_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1500), ..ProptestConfig::default() })]

    /// Properties 1 and 3 under loss, delay, partitions, crashes and restarts.
    #[test]
    fn one_master_after_heal_and_the_highest_priority_wins(s in scenario(5)) {
        let mut sim = build(&s, stable_link(s.interval));
        let mut worst_delay = Duration::ZERO;
        for phase in &s.phases {
            let max_delay = s.interval * phase.max_delay_percent / 100;
            worst_delay = worst_delay.max(max_delay);
            sim.link = Link { loss_per_mille: phase.loss_per_mille, max_delay };
            for (node, &p) in sim.nodes.iter_mut().zip(&phase.partitions) {
                node.partition = p;
            }
            if let Some(i) = phase.crash {
                sim.crash(i);
            }
            if let Some(i) = phase.restart.filter(|&i| !sim.alive(i)) {
                sim.start(i);
            }
            let until = sim.now + s.interval * phase.intervals;
            sim.run_until(until);
        }
        heal(&mut sim, s.interval, worst_delay);
        // Property 1: exactly one master, and it stays for 20 more adverts.
        let until = sim.now + s.interval * 20;
        let master = sim.assert_one_master_until(until);
        // Property 3: when everybody preempts, the highest live priority.
        let all_preempt = (0..sim.nodes.len())
            .filter(|&i| sim.alive(i))
            .all(|i| sim.nodes[i].config.preempt);
        if all_preempt {
            prop_assert_eq!(sim.nodes[master].config.priority, highest_live_priority(&sim));
        }
    }

    /// Property 2: a silent death is noticed exactly Master_Down_Interval
    /// after the last advert each backup received.
    #[test]
    fn backup_takes_over_exactly_master_down_interval_after_a_crash(s in scenario(5), adverts in 1u32..20) {
        let (mut sim, old, _) = converged(&s, adverts);
        sim.crash(old);
        // Packets already sent still arrive; then silence.
        let horizon = sim.now + 2 * sim.max_master_down_interval();
        let first = sim.run_until_new_master(horizon).expect("no backup took over");
        let expected = (0..sim.nodes.len())
            .filter(|&i| i != old && sim.alive(i))
            .filter_map(|i| sim.last_rx[i].map(|(at, _, mdi, _)| at + mdi))
            .min()
            .unwrap();
        prop_assert_eq!(first.at, expected);
        prop_assert!(expected - sim.last_rx[first.node].unwrap().0 == sim.last_rx[first.node].unwrap().2);
    }

    /// Property 5: a priority-0 handover completes exactly Skew_Time after
    /// the first backup hears it.
    #[test]
    fn priority_zero_handover_within_skew(s in scenario(5), adverts in 1u32..20) {
        let (mut sim, old, until) = converged(&s, adverts);
        sim.shutdown(old);
        let horizon = sim.now + sim.max_master_down_interval();
        let first = sim.run_until_new_master(horizon).expect("no backup took over");
        // Every live backup has heard priority 0 by now or has it in flight;
        // the first to take over is the one whose skew ran out first.
        let expected = (0..sim.nodes.len())
            .filter(|&i| i != old && sim.alive(i))
            .filter_map(|i| match sim.last_rx[i] {
                Some((at, 0, _, skew)) => Some(at + skew),
                _ => None,
            })
            .min();
        prop_assert_eq!(Some(first.at), expected);
        let skew = sim.last_rx[first.node].unwrap().3;
        prop_assert!(skew < s.interval.max(Duration::from_secs(1)));
        prop_assert!(first.at - until <= sim.link.max_delay + skew);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("SIM_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(500), ..ProptestConfig::default() })]

    /// preempt_delay: a backup restarted with the highest priority and a
    /// preempt delay of `delay_intervals` follows the current master until
    /// the delay has passed, then preempts it after its own
    /// Master_Down_Interval: it becomes master in
    /// [restart + delay, restart + delay + Master_Down_Interval), and there
    /// is exactly one master before and after.
    #[test]
    fn preempt_delay_holds_back_a_higher_priority_backup(
        s in scenario(5),
        adverts in 1u32..20,
        pick in any::<usize>(),
        delay_intervals in 1u32..=10,
    ) {
        let (mut sim, old, _) = converged(&s, adverts);
        let others: Vec<usize> = (0..sim.nodes.len()).filter(|&i| i != old).collect();
        let highest = highest_live_priority(&sim);
        prop_assume!(highest < 254);
        let node = others[pick % others.len()];
        let delay = s.interval * delay_intervals;
        sim.crash(node);
        let config = &mut sim.nodes[node].config;
        config.priority = highest + 1;
        config.preempt = true;
        config.preempt_delay = delay;
        let mdi = lvskit_vrrp::timing::master_down_interval(
            s.version,
            highest + 1,
            config.adver_int_units().unwrap(),
        );
        let restart = sim.now;
        sim.start(node);
        // Until the delay has passed, the old master stays the only one.
        let master = sim.assert_one_master_until(restart + delay);
        prop_assert_eq!(master, old);
        let takeover = sim
            .run_until_new_master(restart + delay + mdi)
            .expect("the higher priority never preempted");
        prop_assert_eq!(takeover.node, node);
        prop_assert!(takeover.at >= restart + delay && takeover.at < restart + delay + mdi);
        // The old master steps down on the first advert it hears.
        let settled = sim.now + s.interval + sim.link.max_delay;
        sim.run_until(settled);
        let until = sim.now + s.interval * 20;
        prop_assert_eq!(sim.assert_one_master_until(until), node);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Property 4: 10,000 adverts in a stable network, no state change.
    #[test]
    fn no_state_change_over_ten_thousand_adverts(s in scenario(4)) {
        let mut sim = build(&s, stable_link(s.interval));
        heal(&mut sim, s.interval, Duration::ZERO);
        let sent_before = sim.adverts_sent;
        let since = sim.transitions.len();
        while sim.adverts_sent - sent_before < 10_000 {
            let until = sim.now + s.interval * 100;
            sim.run_until(until);
        }
        prop_assert!(sim.transitions[since..].is_empty(), "{:?}", &sim.transitions[since..]);
        prop_assert_eq!(sim.masters().len(), 1);
    }
}

/// Sync groups on the simulated LAN: every router runs one
/// [`SyncGroup`](lvskit_vrrp::SyncGroup) of two instances (VRIDs 42 and 43,
/// the same priority), and loss is drawn per VRID, so the two elections can
/// disagree. Faults are a member's link going down.
mod sync_groups {
    use super::*;
    use lvskit_vrrp::{GroupAction, LinkState, SyncGroup};

    const VRIDS: [u8; 2] = [42, 43];

    /// A packet on the wire: arrival, sequence number, receiving router,
    /// sending router, VRRP bytes.
    type Queued = (Instant, u64, usize, usize, Bytes);

    struct GroupSim {
        now: Instant,
        routers: Vec<SyncGroup>,
        queue: BinaryHeap<Reverse<Queued>>,
        seq: u64,
        rng: Rng,
        /// Loss per VRID, per mille.
        loss: [u64; 2],
        max_delay: Duration,
        links_down: Vec<(usize, usize)>,
    }

    impl GroupSim {
        fn new(version: Version, interval: Duration, priorities: &[u8], seed: u64) -> Self {
            let now = Instant::now();
            let routers = priorities
                .iter()
                .enumerate()
                .map(|(i, &priority)| {
                    let members = VRIDS
                        .iter()
                        .map(|&vrid| {
                            let mut config = node_config(i, version, interval, priority, true);
                            config.vrid = vrid;
                            Instance::new(config).unwrap()
                        })
                        .collect();
                    SyncGroup::new(format!("G{i}"), members)
                })
                .collect();
            let mut sim = GroupSim {
                now,
                routers,
                queue: BinaryHeap::new(),
                seq: 0,
                rng: Rng(seed),
                loss: [0, 0],
                max_delay: interval / 10,
                links_down: Vec::new(),
            };
            for r in 0..sim.routers.len() {
                sim.routers[r].startup(now);
                sim.flush(r);
            }
            sim
        }

        /// Sends router `r`'s adverts and checks that its members agree.
        fn flush(&mut self, r: usize) {
            let mut sends = Vec::new();
            while let Some(action) = self.routers[r].poll_action() {
                if let GroupAction::Member {
                    index,
                    action: Action::SendAdvert(ad),
                } = action
                {
                    sends.push((index, ad.payload));
                }
            }
            let states: Vec<State> = self.routers[r]
                .members()
                .iter()
                .map(|m| m.state())
                .collect();
            assert!(
                states.iter().all(|s| *s == states[0]),
                "router {r}: members disagree at {:?}: {states:?}",
                self.now
            );
            for (index, payload) in sends {
                for to in 0..self.routers.len() {
                    if to == r || self.rng.below(1000) < self.loss[index] {
                        continue;
                    }
                    let delay = self.rng.below(self.max_delay.as_nanos() as u64 + 1);
                    self.seq += 1;
                    self.queue.push(Reverse((
                        self.now + Duration::from_nanos(delay),
                        self.seq,
                        to,
                        r,
                        payload.clone(),
                    )));
                }
            }
        }

        fn step(&mut self, until: Instant) -> bool {
            let packet_at = self.queue.peek().map(|Reverse(p)| p.0);
            let timer = (0..self.routers.len())
                .filter_map(|r| self.routers[r].poll_timeout().map(|t| (t, r)))
                .min();
            let next = packet_at.into_iter().chain(timer.map(|t| t.0)).min();
            let Some(next) = next.filter(|t| *t <= until) else {
                return false;
            };
            self.now = next;
            if packet_at == Some(next) {
                let Reverse((_, _, to, from, payload)) = self.queue.pop().unwrap();
                let meta = RxMeta::new(address(from), "224.0.0.18".parse().unwrap(), 255);
                let _ = self.routers[to].handle_packet(next, &meta, &payload);
                self.flush(to);
            } else if let Some((_, r)) = timer {
                self.routers[r].handle_timeout(next);
                self.flush(r);
            }
            true
        }

        fn run_until(&mut self, until: Instant) {
            while self.step(until) {}
            self.now = until;
        }

        fn set_link(&mut self, router: usize, member: usize, up: bool) {
            let state = if up { LinkState::Up } else { LinkState::Down };
            self.routers[router]
                .handle_link_state(self.now, member, state)
                .unwrap();
            self.flush(router);
        }

        fn masters(&self) -> Vec<usize> {
            (0..self.routers.len())
                .filter(|&r| self.routers[r].state() == State::Master)
                .collect()
        }
    }

    #[derive(Debug, Clone)]
    struct GroupPhase {
        intervals: u32,
        loss: [u64; 2],
        link_down: Option<(usize, usize)>,
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: std::env::var("SIM_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300), ..ProptestConfig::default() })]

        /// Members of a group are always in one state (checked after every
        /// input); a member's link down puts its whole group in FAULT; once
        /// every link is up and nothing is lost, one router is master of
        /// both VRIDs and stays so.
        #[test]
        fn sync_group_members_change_state_together(
            (version, interval) in version_and_interval(),
            priorities in proptest::collection::vec(1u8..=254, 2..=3),
            seed in any::<u64>(),
            phases in proptest::collection::vec(
                (1u32..12, [0u64..1000, 0u64..1000], proptest::option::weighted(0.4, (0usize..3, 0usize..2))),
                0..6,
            ),
        ) {
            let mut sim = GroupSim::new(version, interval, &priorities, seed);
            for (intervals, loss, link_down) in phases {
                let phase = GroupPhase { intervals, loss, link_down: link_down.filter(|(r, _)| *r < priorities.len()) };
                sim.loss = phase.loss;
                for (r, m) in std::mem::take(&mut sim.links_down) {
                    sim.set_link(r, m, true);
                }
                if let Some((r, m)) = phase.link_down {
                    sim.set_link(r, m, false);
                    sim.links_down.push((r, m));
                    prop_assert_eq!(sim.routers[r].state(), State::Fault);
                    prop_assert!(sim.routers[r].members().iter().all(|m| m.state() == State::Fault));
                }
                let until = sim.now + interval * phase.intervals;
                sim.run_until(until);
                if let Some((r, _)) = phase.link_down {
                    prop_assert_eq!(sim.routers[r].state(), State::Fault);
                }
            }
            // Heal, then settle for the longest Master_Down_Interval and
            // two delays (packets in flight included).
            sim.loss = [0, 0];
            for (r, m) in std::mem::take(&mut sim.links_down) {
                sim.set_link(r, m, true);
            }
            let lowest = *priorities.iter().min().unwrap();
            let units = node_config(0, version, interval, lowest, true).adver_int_units().unwrap();
            let settle = lvskit_vrrp::timing::master_down_interval(version, lowest, units)
                + 3 * sim.max_delay;
            let until = sim.now + settle;
            sim.run_until(until);
            let masters = sim.masters();
            prop_assert_eq!(masters.len(), 1, "masters after the heal: {:?}", masters);
            let states: Vec<State> = sim.routers.iter().map(SyncGroup::state).collect();
            let until = sim.now + interval * 20;
            sim.run_until(until);
            let after: Vec<State> = sim.routers.iter().map(SyncGroup::state).collect();
            prop_assert_eq!(states, after);
        }
    }
}
