//! VRRPv2 and VRRPv3 (RFC 3768, RFC 5798, RFC 9568) for IPv4 and IPv6.
//!
//! The crate has two layers:
//!
//! - [`wire`]: advertisements as a zero-copy [`Packet`] view and a parsed
//!   [`Repr`]; count, length and checksum are derived on emit and verified on
//!   parse. Both v3/IPv4 checksum forms ([`ChecksumMode`]) are supported.
//! - [`Instance`]: the sans-IO engine of one virtual router: the RFC 9568 §6
//!   state machine plus keepalived's FAULT state, tracking, startup rule,
//!   preemption delay and GARP schedule. It owns no socket and no clock:
//!   inputs are `handle_*(now, …)`, outputs are [`Instance::poll_action`] and
//!   [`Instance::poll_timeout`]. [`SyncGroup`] coordinates several instances.
//!
//! A Linux driver (raw sockets, VIPs over rtnetlink, gratuitous ARP and
//! unsolicited NA) sits on top of the engine behind the `linux` feature.
//!
//! # Example
//!
//! Two routers on a simulated wire: the higher priority one becomes master,
//! and when it shuts down (priority 0) the other takes over after Skew_Time.
//!
//! ```
//! use std::time::Instant;
//! use lvskit_vrrp::{Action, Config, Instance, RxMeta, State, VirtualAddress};
//!
//! let vip = VirtualAddress::new("10.0.3.100".parse().unwrap());
//! let mut a = Config::new(51, "10.0.3.1".parse().unwrap(), vec![vip.clone()]);
//! a.priority = 100;
//! let mut b = Config::new(51, "10.0.3.2".parse().unwrap(), vec![vip]);
//! b.priority = 50;
//! let (mut a, mut b) = (Instance::new(a).unwrap(), Instance::new(b).unwrap());
//! let now = Instant::now();
//! a.startup(now);
//! b.startup(now);
//! let t = a.poll_timeout().unwrap();
//! a.handle_timeout(t);
//! assert_eq!(a.state(), State::Master);
//!
//! // Deliver a's actions to b.
//! fn deliver(from: &mut Instance, to: &mut Instance, now: Instant) {
//!     while let Some(action) = from.poll_action() {
//!         if let Action::SendAdvert(ad) = action {
//!             let meta = RxMeta::new(ad.source, ad.destination, 255);
//!             to.handle_packet(now, &meta, &ad.payload).unwrap();
//!         }
//!     }
//! }
//! deliver(&mut a, &mut b, t);
//! assert_eq!(b.state(), State::Backup);
//! a.shutdown(t);
//! deliver(&mut a, &mut b, t);
//! assert_eq!(b.poll_timeout(), Some(t + b.skew_time()));
//! b.handle_timeout(t + b.skew_time());
//! assert_eq!(b.state(), State::Master);
//! ```
//!
//! # Guarantees
//!
//! - The parsers never panic, on any bytes; every rejected packet yields a
//!   typed [`RxDrop`] and increments its counter in [`Statistics`].
//! - Skew_Time and Master_Down_Interval are exact to the nanosecond
//!   ([`timing`]); v3 learns Master_Adver_Interval from the master.
//! - Every state change is reported as [`Action::StateChanged`] with a
//!   [`Reason`]; the engine never changes state without an input.
//! - The effective priority stays in 1..=254 for non-owners; an owner keeps 255.

mod action;
mod config;
mod instance;
#[cfg(feature = "linux")]
pub mod linux;
mod log;
mod stats;
mod sync_group;
pub mod timing;
pub mod wire;

pub use action::{
    Action, Advertisement, FaultCause, Notify, NotifyEvent, NotifyScope, Reason, State,
};
pub use config::{
    Config, ConfigError, GarpConfig, InitialState, MAX_TRACK_WEIGHT, PRIORITY_OWNER, PRIORITY_STOP,
    Scope, Track, TrackKind, UnicastPeer, Validation, VirtualAddress,
};
pub use instance::{InputError, Instance, LinkState, RxMeta, TrackId, TrackStatus};
pub use stats::{DropKind, NewMasterReason, RxDrop, Statistics};
pub use sync_group::{GroupAction, SyncGroup};
pub use wire::{
    AddressFamily, Authentication, ChecksumContext, ChecksumMode, Packet, Repr, Version,
};
