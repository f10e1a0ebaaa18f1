//! The per-checker state machine: keepalived's retry counting, sans IO.
//!
//! One [`CheckerState`] follows one checker. The caller starts a probe when
//! [`CheckerState::next_probe`] is due, runs it however it likes, and
//! reports the outcome with [`CheckerState::handle_outcome`], which returns a
//! [`CheckerTransition`] when keepalived would log one.
//!
//! The rules (from keepalived's `check_*.c` epilogues, as of 2.2):
//!
//! ```text
//!                 success                        failure
//! up, has run     stay up, next in delay_loop    retry_it < retry: retry_it += 1,
//!                                                  next in delay_before_retry
//!                                                retry_it >= retry: DOWN,
//!                                                  retry_it = 0, next in delay_loop
//! down, has run   UP, next in delay_loop         stay down, next in delay_loop
//! not yet run     report UP (first),             report DOWN (first),
//!                   next in delay_loop             next in delay_loop
//! ```
//!
//! At start-up `retry_it = retry`, so the very first failure is enough to
//! take a checker down ("for non alpha mode, one failure is enough
//! initially"). With `alpha` the checker starts down. Delays are counted
//! from the moment the outcome is handled, as keepalived re-arms its timer
//! in the epilogue.

use std::time::{Duration, Instant};

use crate::config::Timing;
use crate::error::ProbeError;

/// What one probe produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The probe succeeded; `weight` carries a weight the probe itself
    /// computed (MISC_CHECK with `misc_dynamic`, FILE_CHECK).
    Success {
        /// A weight set by the probe, if any.
        weight: Option<DynamicWeight>,
    },
    /// The probe failed, for this reason.
    Failure(ProbeError),
}

/// A weight computed by a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DynamicWeight {
    /// Replace the configured weight (MISC_CHECK `misc_dynamic`: exit code − 2).
    Absolute(u32),
    /// Add to the configured weight (FILE_CHECK: value × weight).
    Offset(i64),
}

/// Why a checker changed state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Started down because of `alpha`.
    Alpha,
    /// A probe succeeded.
    Succeeded,
    /// Probes failed: `attempts` consecutive failures, the last with `error`.
    Failed {
        /// Consecutive failed probes, the last included.
        attempts: u32,
        /// The last error.
        error: ProbeError,
    },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Alpha => f.write_str("alpha mode: down until a first success"),
            Reason::Succeeded => f.write_str("check succeeded"),
            Reason::Failed { attempts: 1, error } => write!(f, "check failed: {error}"),
            Reason::Failed { attempts, error } => {
                write!(f, "check failed after {} retries: {error}", attempts - 1)
            }
        }
    }
}

/// A change reported by [`CheckerState::handle_outcome`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckerTransition {
    /// The new state.
    pub up: bool,
    /// The state before (for a first result this may equal `up`).
    pub was_up: bool,
    /// Whether this is the checker's first result.
    pub first: bool,
    /// Why.
    pub reason: Reason,
}

/// One checker's state: up/down, retry counter and next probe time.
#[derive(Clone, Debug)]
pub struct CheckerState {
    timing: Timing,
    up: bool,
    has_run: bool,
    retry_it: u32,
    attempts: u32,
    next_at: Instant,
    probing: bool,
}

impl CheckerState {
    /// A checker created at `now` whose first probe runs `first_delay` later
    /// (the caller draws it from `0..=timing.warmup`).
    pub fn new(now: Instant, timing: Timing, first_delay: Duration) -> CheckerState {
        CheckerState {
            up: !timing.alpha,
            has_run: false,
            retry_it: timing.retry,
            attempts: 0,
            next_at: now + first_delay,
            probing: false,
            timing,
        }
    }

    /// Whether the checker is up.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Whether a result has been handled yet.
    pub fn has_run(&self) -> bool {
        self.has_run
    }

    /// The checker's timing.
    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    /// When the next probe is due, or `None` while one is running.
    pub fn next_probe(&self) -> Option<Instant> {
        (!self.probing).then_some(self.next_at)
    }

    /// Marks a probe as started.
    pub fn start_probe(&mut self) {
        self.probing = true;
    }

    /// Handles the outcome of the running probe at `now`; returns the
    /// transition to report, if any.
    #[must_use]
    pub fn handle_outcome(&mut self, now: Instant, outcome: &Outcome) -> Option<CheckerTransition> {
        self.probing = false;
        let was_up = self.up;
        let first = !self.has_run;
        let mut delay = self.timing.delay_loop;
        let mut transition = None;
        match outcome {
            Outcome::Success { .. } => {
                self.retry_it = 0;
                self.attempts = 0;
                if !self.up || first {
                    self.up = true;
                    transition = Some(CheckerTransition {
                        up: true,
                        was_up,
                        first,
                        reason: Reason::Succeeded,
                    });
                }
            }
            Outcome::Failure(error) => {
                self.attempts = self.attempts.saturating_add(1);
                if (self.up || first) && self.retry_it >= self.timing.retry {
                    self.retry_it = 0;
                    self.up = false;
                    let attempts = if first { 1 } else { self.attempts };
                    transition = Some(CheckerTransition {
                        up: false,
                        was_up,
                        first,
                        reason: Reason::Failed {
                            attempts,
                            error: error.clone(),
                        },
                    });
                } else if self.up {
                    self.retry_it += 1;
                    delay = self.timing.delay_before_retry;
                }
            }
        }
        self.has_run = true;
        self.next_at = now + delay;
        transition
    }
}
