//! Pool logic for one virtual server: weights, `inhibit_on_failure`,
//! `quorum`/`hysteresis`, `sorry_server`. Pure: state in, desired
//! destinations out.
//!
//! The rules follow keepalived's `ipwrapper.c` (2.2):
//!
//! - the weight sum is the sum of the effective weights of the alive real
//!   servers;
//! - at start, quorum is up iff `sum >= quorum + hysteresis`;
//! - quorum is gained when it is down and `sum >= quorum + hysteresis`;
//! - quorum is lost when it is up and `sum == 0 || sum < quorum - hysteresis`;
//! - a dead real server is removed, or kept at weight 0 with
//!   `inhibit_on_failure`;
//! - while quorum is down and a sorry server is configured, the sorry server
//!   is in the pool and the alive real servers are out of it (or at weight 0
//!   with `inhibit_on_failure`); without a sorry server, losing quorum only
//!   raises the event;
//! - a sorry server with `inhibit` stays in the pool at weight 0 while
//!   quorum is up.
//!
//! [`Pool::desired`] returns the destinations as plain data; connecting
//! them to IPVS is the caller's job.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use crate::checker::DynamicWeight;

/// Upper bound this crate puts on an effective weight.
pub const MAX_WEIGHT: u32 = 65535;

/// One real server of a virtual server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealServerConfig {
    /// Its address.
    pub address: SocketAddr,
    /// Configured weight (keepalived's default is 1).
    pub weight: u32,
    /// Keep it at weight 0 instead of removing it when down.
    pub inhibit_on_failure: bool,
}

/// The sorry server of a virtual server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SorryServer {
    /// Its address.
    pub address: SocketAddr,
    /// Its weight while in use (keepalived uses 1).
    pub weight: u32,
    /// `sorry_server_inhibit`: keep it at weight 0 instead of removing it.
    pub inhibit: bool,
}

/// A virtual server's pool configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualServerConfig {
    /// Real servers, indexed by position.
    pub real_servers: Vec<RealServerConfig>,
    /// Minimum alive weight sum (keepalived's default 1).
    pub quorum: u32,
    /// Hysteresis around `quorum` (default 0).
    pub hysteresis: u32,
    /// The server used while quorum is down.
    pub sorry_server: Option<SorryServer>,
}

/// Whether a destination is a real server or the sorry server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Real server at this index of [`VirtualServerConfig::real_servers`].
    RealServer(usize),
    /// The sorry server.
    SorryServer,
}

/// A destination that should exist in the kernel for this virtual server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    /// Its address.
    pub address: SocketAddr,
    /// Its weight (0: present but receiving no new connection).
    pub weight: u32,
    /// What it is.
    pub role: Role,
}

/// A quorum change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumEvent {
    /// When.
    pub at: Instant,
    /// New quorum state.
    pub up: bool,
    /// Whether this is the initial state rather than a change.
    pub initial: bool,
    /// The alive weight sum.
    pub weight_sum: u64,
    /// The threshold that was crossed (`quorum ± hysteresis`).
    pub threshold: i64,
}

/// The pool state of one virtual server.
#[derive(Clone, Debug)]
pub struct Pool {
    config: VirtualServerConfig,
    alive: Vec<bool>,
    dynamic: Vec<Option<DynamicWeight>>,
    quorum_up: bool,
    events: VecDeque<QuorumEvent>,
}

impl Pool {
    /// A pool at `now` whose real servers start alive as `alive` says (by
    /// index; missing entries count as alive). Emits the initial quorum
    /// event.
    pub fn new(now: Instant, config: VirtualServerConfig, alive: &[bool]) -> Pool {
        let n = config.real_servers.len();
        let alive = (0..n)
            .map(|i| alive.get(i).copied().unwrap_or(true))
            .collect();
        let mut pool = Pool {
            dynamic: vec![None; n],
            alive,
            quorum_up: false,
            events: VecDeque::new(),
            config,
        };
        let sum = pool.weight_sum();
        let threshold = pool.config.quorum as i64 + pool.config.hysteresis as i64;
        pool.quorum_up = sum as i64 >= threshold;
        pool.events.push_back(QuorumEvent {
            at: now,
            up: pool.quorum_up,
            initial: true,
            weight_sum: sum,
            threshold,
        });
        pool
    }

    /// The configuration.
    pub fn config(&self) -> &VirtualServerConfig {
        &self.config
    }

    /// Whether quorum is up.
    pub fn quorum_up(&self) -> bool {
        self.quorum_up
    }

    /// Whether real server `index` is alive.
    pub fn is_alive(&self, index: usize) -> bool {
        self.alive.get(index).copied().unwrap_or(false)
    }

    /// Effective weight of real server `index`: the configured weight, or
    /// the one a dynamic checker set, clamped to `0..=MAX_WEIGHT`.
    pub fn effective_weight(&self, index: usize) -> u32 {
        let base = self.config.real_servers[index].weight;
        match self.dynamic[index] {
            None => base,
            Some(DynamicWeight::Absolute(w)) => w.min(MAX_WEIGHT),
            Some(DynamicWeight::Offset(d)) => (base as i64 + d).clamp(0, MAX_WEIGHT as i64) as u32,
        }
    }

    /// Sum of the effective weights of the alive real servers.
    pub fn weight_sum(&self) -> u64 {
        (0..self.alive.len())
            .filter(|i| self.alive[*i])
            .map(|i| self.effective_weight(i) as u64)
            .sum()
    }

    /// Marks real server `index` alive or dead at `now`.
    pub fn set_alive(&mut self, now: Instant, index: usize, alive: bool) {
        if index < self.alive.len() && self.alive[index] != alive {
            self.alive[index] = alive;
            self.update_quorum(now);
        }
    }

    /// Sets a dynamic weight for real server `index` at `now`.
    pub fn set_dynamic_weight(&mut self, now: Instant, index: usize, weight: DynamicWeight) {
        if index < self.dynamic.len() {
            self.dynamic[index] = Some(weight);
            self.update_quorum(now);
        }
    }

    fn update_quorum(&mut self, now: Instant) {
        let sum = self.weight_sum();
        let quorum = self.config.quorum as i64;
        let hysteresis = self.config.hysteresis as i64;
        if !self.quorum_up {
            let threshold = quorum + hysteresis;
            if sum as i64 >= threshold {
                self.quorum_up = true;
                self.events.push_back(QuorumEvent {
                    at: now,
                    up: true,
                    initial: false,
                    weight_sum: sum,
                    threshold,
                });
            }
        } else {
            let threshold = quorum - hysteresis;
            if sum == 0 || (sum as i64) < threshold {
                self.quorum_up = false;
                self.events.push_back(QuorumEvent {
                    at: now,
                    up: false,
                    initial: false,
                    weight_sum: sum,
                    threshold,
                });
            }
        }
    }

    /// The next quorum event (`quorum_up` / `quorum_down`), oldest first.
    pub fn poll_event(&mut self) -> Option<QuorumEvent> {
        self.events.pop_front()
    }

    /// The destinations this virtual server should have now.
    pub fn desired(&self) -> Vec<Destination> {
        let sorry_active = !self.quorum_up && self.config.sorry_server.is_some();
        let mut out = Vec::with_capacity(self.config.real_servers.len() + 1);
        for (index, rs) in self.config.real_servers.iter().enumerate() {
            let serving = self.alive[index] && !sorry_active;
            let weight = if serving {
                Some(self.effective_weight(index))
            } else {
                None
            };
            let weight = match weight {
                Some(w) => Some(w),
                None if rs.inhibit_on_failure => Some(0),
                None => None,
            };
            if let Some(weight) = weight {
                out.push(Destination {
                    address: rs.address,
                    weight,
                    role: Role::RealServer(index),
                });
            }
        }
        if let Some(sorry) = &self.config.sorry_server {
            let weight = if sorry_active {
                Some(sorry.weight)
            } else if sorry.inhibit {
                Some(0)
            } else {
                None
            };
            if let Some(weight) = weight {
                out.push(Destination {
                    address: sorry.address,
                    weight,
                    role: Role::SorryServer,
                });
            }
        }
        out
    }
}
