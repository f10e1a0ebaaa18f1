//! Many checkers, many real servers, one timer queue: sans IO.
//!
//! Call order, in the style of `quinn-proto`:
//!
//! 1. [`Scheduler::add_real_server`] for each real server, with its checks;
//! 2. loop:
//!    - [`Scheduler::poll_probe`]`(now)` until `None`, starting each probe;
//!    - [`Scheduler::handle_result`]`(now, …)` when a probe ends;
//!    - [`Scheduler::poll_event`] until `None`;
//!    - wait until [`Scheduler::poll_timeout`] or the next probe result.
//!
//! Guarantees:
//! - **Deduplication**: checks with equal [`CheckSpec`] share one
//!   [`CheckerId`] and are probed once, whatever the number of real servers
//!   (or virtual servers) that use them.
//! - **A real server is up only while all its checkers are up**, as in
//!   keepalived (`num_failed_checkers == 0`).
//! - **Bounded concurrency**: at most `max_in_flight` probes run at once;
//!   due probes wait in deadline order.
//! - **Jitter**: each checker's first probe is drawn uniformly from
//!   `0..=warmup` (keepalived's default `warmup` is `delay_loop`), so checks
//!   spread over the loop instead of firing together.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::checker::{CheckerState, CheckerTransition, DynamicWeight, Outcome, Reason};
use crate::config::CheckSpec;

/// Identifies a deduplicated checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckerId(pub u32);

/// Identifies a real server registration (one per virtual server entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RealServerId(pub u32);

/// A probe the caller must start now.
#[derive(Clone, Debug)]
#[must_use]
pub struct ProbeRequest {
    /// Which checker.
    pub checker: CheckerId,
    /// What to probe.
    pub spec: Arc<CheckSpec>,
    /// When it was due; `now - due` is the lateness.
    pub due: Instant,
}

/// Something that happened, with a timestamp and a reason.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A checker reported a state (on a change, and on its first result).
    Checker {
        /// Which checker.
        checker: CheckerId,
        /// When.
        at: Instant,
        /// Its state and why.
        transition: CheckerTransition,
    },
    /// A real server went up or down.
    RealServer {
        /// Which real server.
        server: RealServerId,
        /// When.
        at: Instant,
        /// New state.
        up: bool,
        /// The reason given by the checker that caused the change.
        reason: Reason,
    },
    /// A probe set a dynamic weight for the real servers using it.
    Weight {
        /// Which real server.
        server: RealServerId,
        /// When.
        at: Instant,
        /// The weight.
        weight: DynamicWeight,
    },
    /// A probe ended. Only reported after [`Scheduler::report_probes`]
    /// (one event per probe: for metrics, not for state).
    Probe {
        /// Which checker.
        checker: CheckerId,
        /// When it ended.
        at: Instant,
        /// How long it ran, from its start to its outcome.
        duration: Duration,
        /// Whether it succeeded.
        success: bool,
    },
}

struct Slot {
    spec: Arc<CheckSpec>,
    state: CheckerState,
    servers: Vec<RealServerId>,
    last_weight: Option<DynamicWeight>,
}

struct Server {
    checkers: Vec<CheckerId>,
    failed: usize,
}

/// The scheduler. See the module documentation for the call order.
pub struct Scheduler {
    slots: Vec<Slot>,
    by_spec: HashMap<Arc<CheckSpec>, CheckerId>,
    servers: Vec<Server>,
    timers: BinaryHeap<Reverse<(Instant, CheckerId)>>,
    in_flight: usize,
    max_in_flight: usize,
    events: VecDeque<Event>,
    report_probes: bool,
    rng: StdRng,
}

impl Scheduler {
    /// A scheduler running at most `max_in_flight` probes at once, with a
    /// random jitter seed.
    pub fn new(max_in_flight: usize) -> Scheduler {
        Scheduler::with_seed(max_in_flight, rand::random())
    }

    /// As [`Scheduler::new`] with a fixed seed for the warmup jitter
    /// (deterministic tests).
    pub fn with_seed(max_in_flight: usize, seed: u64) -> Scheduler {
        Scheduler {
            slots: Vec::new(),
            by_spec: HashMap::new(),
            servers: Vec::new(),
            timers: BinaryHeap::new(),
            in_flight: 0,
            max_in_flight: max_in_flight.max(1),
            events: VecDeque::new(),
            report_probes: false,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Registers a real server checked by `checks` at `now`. Checks equal to
    /// ones already registered are shared. A server with no check is always
    /// up.
    pub fn add_real_server(&mut self, now: Instant, checks: Vec<CheckSpec>) -> RealServerId {
        let server = RealServerId(self.servers.len() as u32);
        let mut ids = Vec::with_capacity(checks.len());
        for spec in checks {
            let id = self.checker_for(now, spec);
            if !ids.contains(&id) {
                ids.push(id);
                self.slots[id.0 as usize].servers.push(server);
            }
        }
        let failed = ids
            .iter()
            .filter(|id| !self.slots[id.0 as usize].state.is_up())
            .count();
        self.servers.push(Server {
            checkers: ids,
            failed,
        });
        server
    }

    fn checker_for(&mut self, now: Instant, spec: CheckSpec) -> CheckerId {
        if let Some(id) = self.by_spec.get(&spec) {
            return *id;
        }
        let spec = Arc::new(spec);
        let id = CheckerId(self.slots.len() as u32);
        let warmup = spec.timing.warmup;
        let first_delay = if warmup.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_nanos(self.rng.random_range(0..=warmup.as_nanos() as u64))
        };
        let state = CheckerState::new(now, spec.timing.clone(), first_delay);
        self.timers.push(Reverse((now + first_delay, id)));
        self.by_spec.insert(spec.clone(), id);
        self.slots.push(Slot {
            spec,
            state,
            servers: Vec::new(),
            last_weight: None,
        });
        id
    }

    /// Number of distinct checkers (after deduplication).
    pub fn checker_count(&self) -> usize {
        self.slots.len()
    }

    /// The checkers of a real server.
    pub fn checkers_of(&self, server: RealServerId) -> &[CheckerId] {
        &self.servers[server.0 as usize].checkers
    }

    /// The spec of a checker.
    pub fn spec(&self, checker: CheckerId) -> &CheckSpec {
        &self.slots[checker.0 as usize].spec
    }

    /// A checker's state machine.
    pub fn checker(&self, checker: CheckerId) -> &CheckerState {
        &self.slots[checker.0 as usize].state
    }

    /// Whether a real server is up (all of its checkers up).
    pub fn is_up(&self, server: RealServerId) -> bool {
        self.servers[server.0 as usize].failed == 0
    }

    /// Probes currently running.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The next probe due at or before `now`, if the concurrency bound
    /// allows one more.
    pub fn poll_probe(&mut self, now: Instant) -> Option<ProbeRequest> {
        if self.in_flight >= self.max_in_flight {
            return None;
        }
        while let Some(Reverse((due, id))) = self.timers.peek().copied() {
            if due > now {
                return None;
            }
            self.timers.pop();
            let slot = &mut self.slots[id.0 as usize];
            if slot.state.next_probe() != Some(due) {
                continue; // stale entry
            }
            slot.state.start_probe();
            self.in_flight += 1;
            return Some(ProbeRequest {
                checker: id,
                spec: slot.spec.clone(),
                due,
            });
        }
        None
    }

    /// When the caller must call [`Scheduler::poll_probe`] next; `None`
    /// when nothing is scheduled or the concurrency bound is reached (then
    /// wait for a probe result).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.in_flight >= self.max_in_flight {
            return None;
        }
        self.timers.peek().map(|Reverse((due, _))| *due)
    }

    /// Whether [`Scheduler::handle_timed_result`] reports each probe as an
    /// [`Event::Probe`] (off by default: one event per probe).
    pub fn report_probes(&mut self, on: bool) {
        self.report_probes = on;
    }

    /// As [`Scheduler::handle_result`], for a probe that ran for
    /// `duration`; reported as an [`Event::Probe`] (before any state change
    /// it causes) when [`Scheduler::report_probes`] is on.
    pub fn handle_timed_result(
        &mut self,
        now: Instant,
        checker: CheckerId,
        outcome: Outcome,
        duration: Duration,
    ) {
        if self.report_probes {
            self.events.push_back(Event::Probe {
                checker,
                at: now,
                duration,
                success: matches!(outcome, Outcome::Success { .. }),
            });
        }
        self.handle_result(now, checker, outcome);
    }

    /// Handles the outcome of a probe started by [`Scheduler::poll_probe`].
    pub fn handle_result(&mut self, now: Instant, checker: CheckerId, outcome: Outcome) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let slot = &mut self.slots[checker.0 as usize];
        let transition = slot.state.handle_outcome(now, &outcome);
        if let Some(next) = slot.state.next_probe() {
            self.timers.push(Reverse((next, checker)));
        }
        if let Outcome::Success { weight: Some(w) } = outcome
            && slot.last_weight != Some(w)
        {
            slot.last_weight = Some(w);
            for server in &slot.servers {
                self.events.push_back(Event::Weight {
                    server: *server,
                    at: now,
                    weight: w,
                });
            }
        }
        let Some(transition) = transition else { return };
        let changed = transition.up != transition.was_up;
        self.events.push_back(Event::Checker {
            checker,
            at: now,
            transition: transition.clone(),
        });
        if !changed {
            return;
        }
        let servers = self.slots[checker.0 as usize].servers.clone();
        for server in servers {
            let entry = &mut self.servers[server.0 as usize];
            let was_up = entry.failed == 0;
            if transition.up {
                entry.failed = entry.failed.saturating_sub(1);
            } else {
                entry.failed += 1;
            }
            let up = entry.failed == 0;
            if up != was_up {
                self.events.push_back(Event::RealServer {
                    server,
                    at: now,
                    up,
                    reason: transition.reason.clone(),
                });
            }
        }
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}
