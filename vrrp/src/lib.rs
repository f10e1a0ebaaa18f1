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
//!
//! # Receive validation, and where keepalived is more lenient
//!
//! [`Instance::handle_packet`] applies, in order: interface and family;
//! running state; TTL / hop limit 255 (multicast) or the unicast peer's
//! source and `min_ttl..=max_ttl`; complete packet; version; type;
//! checksum; VRID; own advert; address count ≠ 0 (erratum 8299); v3 Max Adver
//! Int ≠ 0 (erratum 8301) or v2 Adver Int equal to ours; v2 auth type and
//! password (constant time); IPv6 first address link-local (erratum 8300);
//! address list equal to ours unless the sender is the owner. An owner that
//! hears another owner processes the advert (erratum 8298) and counts
//! [`Statistics::owner_conflicts`].
//!
//! keepalived accepts some packets the RFCs drop. To interoperate with such a
//! peer, relax the matching check in [`Validation`] / [`UnicastPeer`]:
//! - it does not require the first IPv6 address to be link-local
//!   ([`Validation::require_link_local_first`]);
//! - it only logs an address-list mismatch unless `strict_mode` is set
//!   ([`Validation::verify_addresses`]);
//! - for unicast it checks no TTL unless `min_ttl`/`max_ttl` are configured
//!   ([`UnicastPeer::with_ttl`]; ours defaults to 255..=255).

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
pub use sync_group::{GroupAction, ReconfigureError, SyncGroup};
pub use wire::{
    AddressFamily, Authentication, ChecksumContext, ChecksumMode, Packet, Repr, Version,
};
