//! Linux IPVS over generic netlink: bindings for every command and
//! attribute, a declarative reconcile, and userspace versions of the
//! kernel's schedulers.
//!
//! - [`netlink`]: the IPVS generic-netlink messages, one enum per attribute
//!   set of `include/uapi/linux/ip_vs.h`, built on `netlink-packet-core` and
//!   `netlink-packet-generic`.
//! - [`model`]: [`Service`], [`Destination`], [`SchedulerName`],
//!   [`ForwardingMethod`], [`ServiceFlags`], [`Timeouts`], [`SyncDaemon`],
//!   with serde support.
//! - [`Handle`] (blocking) and [`AsyncHandle`] (tokio): every IPVS command,
//!   each handle openable inside a network namespace.
//! - [`reconcile`]: `apply(desired)` computes and sends the smallest plan.
//! - [`sched`]: the kernel's schedulers in userspace.
//!
//! ```no_run
//! use lvskit_ipvs::*;
//! use std::net::IpAddr;
//!
//! let vip: IpAddr = "192.0.2.10".parse()?;
//! let key = ServiceKey::Address { protocol: Protocol::Tcp, address: vip, port: 80 };
//! let desired = Desired {
//!     services: vec![DesiredService {
//!         service: Service::new(key, SchedulerName::Wrr),
//!         destinations: vec![
//!             Destination::new("10.0.0.11".parse()?, 80, ForwardingMethod::DirectRoute),
//!             Destination::new("10.0.0.12".parse()?, 80, ForwardingMethod::DirectRoute),
//!         ],
//!     }],
//!     scope: Scope::Addresses([vip].into()),
//! };
//! let mut ipvs = Handle::open()?;
//! let report = ipvs.apply(&desired)?;
//! println!("{} operations", report.operations());
//! assert_eq!(ipvs.apply(&desired)?.operations(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guarantees
//!
//! - Encodings are the kernel's: ports big-endian, fwmark and timeouts in
//!   host order, the netmask a mask for IPv4 and a prefix length for IPv6,
//!   flags sent with their mask, the destination address family always sent.
//! - Parsing never panics on any bytes; a malformed reply is a typed
//!   [`Error::Malformed`] or [`Error::Invalid`]. Unknown attributes survive a
//!   parse and re-emit.
//! - Kernel refusals are [`Error::Kernel`] with the command and the errno
//!   (`EEXIST`, `ESRCH`, `ENOENT`, `EPERM`, …). An absent IPVS is
//!   [`Error::NotAvailable`]; the module is loaded only when asked
//!   ([`OpenOptions::load_module`]).
//! - Dumps are restarted when interrupted (`NLM_F_DUMP_INTR`); `EAGAIN` and
//!   `ENOBUFS` never make a handle spin.
//! - [`Handle::apply`] never flushes, never deletes what it can edit, only
//!   touches the owner's [`Scope`], and is idempotent.

mod error;
mod handle;
mod jobs;
pub mod model;
pub mod netlink;
pub mod reconcile;
pub mod sched;

#[cfg(feature = "tokio")]
mod async_handle;

#[cfg(feature = "tokio")]
pub use async_handle::AsyncHandle;
pub use error::{Errno, Error};
pub use handle::{Handle, OpenOptions};
pub use model::{
    DaemonState, Destination, DestinationKey, DestinationStatus, Family, ForwardingMethod, Info,
    Netmask, Protocol, SchedulerName, Service, ServiceFlags, ServiceKey, ServiceStatus, Stats,
    SyncDaemon, Timeouts, TunnelFlags, TunnelType,
};
pub use reconcile::{Desired, DesiredService, Operation, Plan, Scope, ServiceState};
