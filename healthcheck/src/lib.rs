//! Real-server health checks with keepalived's retry and quorum semantics.
//!
//! `lvskit-healthcheck` is the health-checking part of keepalived's
//! `check` process, rebuilt as a library:
//!
//! - [`probe`]: async probes (tokio) for TCP_CHECK and the other keepalived
//!   checkers, each bounded by its `connect_timeout` as a whole;
//! - [`checker`]: keepalived's per-checker retry state machine, sans IO;
//! - [`scheduler`]: many checkers and real servers on one timer queue, sans
//!   IO, with deduplication, bounded concurrency and jittered starts;
//! - [`pool`]: per virtual server weights, `inhibit_on_failure`, quorum with
//!   hysteresis and the sorry server, as pure data;
//! - [`runner`]: the tokio driver that ties the scheduler to the probes.
//!
//! It does not depend on the IPVS crate: [`pool::Pool::desired`] returns
//! plain [`pool::Destination`]s for the caller to apply.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, Instant};
//! use lvskit_healthcheck::{CheckKind, CheckSpec, Outcome, Scheduler};
//!
//! let t0 = Instant::now();
//! let mut sched = Scheduler::with_seed(64, 1);
//! let mut spec = CheckSpec::new("127.0.0.1:80".parse().unwrap(), CheckKind::Tcp, Duration::from_secs(6));
//! spec.timing.warmup = Duration::ZERO;
//! let rs = sched.add_real_server(t0, vec![spec]);
//!
//! // The first probe is due at once; report a failure for it.
//! let probe = sched.poll_probe(t0).unwrap();
//! let error = lvskit_healthcheck::ProbeError::Refused;
//! sched.handle_result(t0, probe.checker, Outcome::Failure(error));
//! assert!(!sched.is_up(rs)); // one failure is enough at start-up
//! assert_eq!(sched.poll_timeout(), Some(t0 + Duration::from_secs(6)));
//! ```
//!
//! # Guarantees
//!
//! - A probe ends in success or in a typed [`ProbeError`] within its
//!   `connect_timeout`; nothing a peer sends makes it panic or grow memory
//!   without bound.
//! - Timers are data: the state machines take `Instant`s and never read a
//!   clock, so their timing is tested exactly.

pub mod checker;
pub mod config;
pub mod error;
pub mod pool;
pub mod probe;
pub mod runner;
pub mod scheduler;

pub use checker::{CheckerState, CheckerTransition, DynamicWeight, Outcome, Reason};
pub use config::{CheckKind, CheckSpec, ConnectOptions, Timing};
pub use error::{ConfigError, IoFailure, ProbeError};
pub use pool::{
    Destination, Pool, QuorumEvent, RealServerConfig, SorryServer, VirtualServerConfig,
};
pub use scheduler::{CheckerId, Event, ProbeRequest, RealServerId, Scheduler};
