//! Userspace versions of the kernel's IPVS schedulers.
//!
//! Each scheduler here follows the algorithm of the Linux 6.1 module of the
//! same name in `net/netfilter/ipvs/ip_vs_<name>.c`, re-expressed in Rust:
//!
//! | name | module | kind |
//! |---|---|---|
//! | `rr` | [`RoundRobin`] | deterministic |
//! | `wrr` | [`WeightedRoundRobin`] | deterministic |
//! | `lc` | [`LeastConnection`] | count-based |
//! | `wlc` | [`WeightedLeastConnection`] | count-based |
//! | `sed` | [`ShortestExpectedDelay`] | count-based |
//! | `nq` | [`NeverQueue`] | count-based |
//! | `fo` | [`WeightedFailover`] | deterministic |
//! | `ovf` | [`Overflow`] | deterministic (reads active counts) |
//! | `sh` | [`SourceHashing`] | deterministic |
//! | `dh` | [`DestinationHashing`] | deterministic |
//! | `mh` | [`MaglevHashing`] | deterministic |
//! | `lblc` | [`LocalityBasedLeastConnection`] | count-based, with a cache |
//! | `lblcr` | [`LocalityBasedLeastConnectionReplicated`] | count-based, with a cache |
//! | `twos` | [`PowerOfTwoChoices`] | random (injectable RNG) |
//!
//! A [`Pool`] holds the destinations of one virtual service *in the kernel's
//! list order* (the order `ipvsadm -Ln` and the netlink dump show; the kernel
//! puts a newly added destination at the front) together with one
//! [`Scheduler`], keeps the connection counters and the overload flag the way
//! `ip_vs_conn.c` does, and tells the scheduler about every change, as the
//! kernel calls a scheduler's `add_dest`/`del_dest`/`upd_dest` hooks.
//!
//! ```
//! use std::time::Instant;
//! use lvskit_ipvs::sched::{AddressFamily, ConnectionState, Destination, Pool, Request, by_name};
//!
//! let mut pool = Pool::new(AddressFamily::Inet, by_name("wrr")?);
//! pool.add(Destination::new("10.0.0.1:80".parse()?, 1))?;
//! pool.add(Destination::new("10.0.0.2:80".parse()?, 2))?;
//! // The list is now [10.0.0.2 (weight 2), 10.0.0.1 (weight 1)]: the kernel
//! // puts a new destination first.
//! let request = Request::new(Instant::now(), "192.0.2.7:40000".parse()?, "198.51.100.1:80".parse()?);
//! let mut picks = Vec::new();
//! for _ in 0..6 {
//!     let i = pool.schedule(&request).ok_or("no destination available")?;
//!     pool.bind(i, ConnectionState::Inactive);
//!     picks.push(pool.destination(i).address().to_string());
//! }
//! // As in the kernel, the current weight was set to 1 when the first
//! // destination joined the empty service and is only clamped, not reset,
//! // by the second: the first pass is at weight 1 (both), then at 2 (only
//! // .2), then at 1 again.
//! assert_eq!(picks, ["10.0.0.2:80", "10.0.0.1:80", "10.0.0.2:80", "10.0.0.2:80", "10.0.0.1:80", "10.0.0.2:80"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Guarantees: the deterministic schedulers make the same picks as the kernel
//! for the same list, the same counters and the same sequence of requests;
//! the count-based ones apply the kernel's selection rule, including its
//! iteration order and tie-breaking. Where we knowingly differ (integer
//! overflow at tens of millions of connections, the size-triggered garbage
//! collection of the lblc/lblcr caches), the scheduler's doc says so.

mod failover;
pub(crate) mod hash;
mod hashing;
mod least;
mod locality;
mod maglev;
mod pool;
mod round_robin;
mod twos;
mod weighted_round_robin;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::model::{SchedulerName, ServiceFlags};

pub use failover::{Overflow, WeightedFailover};
pub use hashing::{DestinationHashing, HASH_TABLE_SIZE, HashFlags, SourceHashing};
pub use least::{LeastConnection, NeverQueue, ShortestExpectedDelay, WeightedLeastConnection};
pub use locality::{
    DEFAULT_EXPIRATION, LocalityBasedLeastConnection, LocalityBasedLeastConnectionReplicated,
};
pub use maglev::{KERNEL_DEFAULT_TABLE_INDEX, KERNEL_TABLE_SIZES, MaglevHashing, MaglevTable};
pub use pool::{ConnectionState, Destination, DestinationUpdate, Pool};
pub use round_robin::RoundRobin;
pub use twos::PowerOfTwoChoices;
pub use weighted_round_robin::WeightedRoundRobin;

/// The address family of a virtual service (`svc->af`). The hashing
/// schedulers fold addresses according to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// `AF_INET`.
    Inet,
    /// `AF_INET6`.
    Inet6,
}

/// What a scheduler sees of the packet that opens a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// When the packet arrived (lblc/lblcr stamp their cache entries with it).
    pub now: Instant,
    /// The client's address and port (`iph->saddr` and the source port).
    /// Pass port 0 for protocols without ports, as the kernel does.
    pub client: SocketAddr,
    /// The address the client connected to (`iph->daddr`): the VIP.
    pub virtual_address: SocketAddr,
}

impl Request {
    /// A request at `now` from `client` to `virtual_address`.
    pub fn new(now: Instant, client: SocketAddr, virtual_address: SocketAddr) -> Self {
        Request {
            now,
            client,
            virtual_address,
        }
    }
}

/// A change of the destination list, as the kernel reports it to a
/// scheduler's hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The list was set as a whole (the kernel's `init_service`).
    Initialized,
    /// A destination was inserted at this index (`add_dest`).
    Added(usize),
    /// The destination that was at this index was removed (`del_dest`).
    Removed(usize),
    /// The weight or thresholds of the destination at this index were edited
    /// (`upd_dest`).
    Updated(usize),
}

/// The destination list a scheduler reads: the service's family and its
/// destinations in list order.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    family: AddressFamily,
    destinations: &'a [Destination],
    index: &'a HashMap<SocketAddr, usize>,
}

impl<'a> View<'a> {
    /// The service's address family.
    pub fn family(&self) -> AddressFamily {
        self.family
    }

    /// The destinations in the kernel's list order.
    pub fn destinations(&self) -> &'a [Destination] {
        self.destinations
    }

    /// The index of the destination with this address, if it is in the list.
    pub fn index_of(&self, address: SocketAddr) -> Option<usize> {
        self.index.get(&address).copied()
    }

    /// The kernel's fold of an address for hashing (see [`hash`]).
    pub(crate) fn fold(&self, address: IpAddr) -> u32 {
        hash::fold(self.family, address)
    }
}

/// A connection scheduler: picks the destination for a new connection.
///
/// The [`Pool`] calls [`Scheduler::destinations_changed`] after every change
/// of the list, [`Scheduler::counters_changed`] after every change of one
/// destination's connection counters or overload flag, and
/// [`Scheduler::schedule`] for each new connection.
pub trait Scheduler: Send {
    /// The kernel's name of this scheduler (`rr`, `wlc`, ...).
    fn name(&self) -> &'static str;

    /// The destination list changed; `change` says how.
    fn destinations_changed(&mut self, view: View<'_>, change: Change);

    /// The counters or the overload flag of destination `index` changed.
    fn counters_changed(&mut self, view: View<'_>, index: usize) {
        let _ = (view, index);
    }

    /// Picks the destination for `request`, as an index into the list, or
    /// `None` where the kernel answers "no destination available".
    fn schedule(&mut self, view: View<'_>, request: &Request) -> Option<usize>;

    /// Drops cache entries that have expired by `now` (lblc and lblcr only;
    /// the kernel does this from a timer).
    fn expire(&mut self, now: Instant) {
        let _ = now;
    }
}

/// Errors of the scheduler module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No scheduler has this name.
    #[error("unknown scheduler {0:?}")]
    UnknownScheduler(String),
    /// The kernel rejects weights above `i32::MAX` (`-ERANGE`).
    #[error("weight {0} is out of range (0..=2147483647)")]
    WeightOutOfRange(u32),
    /// A destination with this address is already in the pool (`-EEXIST`).
    #[error("destination {0} already exists")]
    DestinationExists(SocketAddr),
    /// No destination with this address is in the pool (`-ENOENT`).
    #[error("destination {0} does not exist")]
    NoSuchDestination(SocketAddr),
    /// A Maglev table must be a prime number of slots.
    #[error("Maglev table size {0} is not a prime")]
    TableSizeNotPrime(usize),
    /// The kernel refuses more destinations than Maglev slots (`-EINVAL`).
    #[error("{destinations} destinations do not fit a Maglev table of {size} slots")]
    TooManyDestinations {
        /// Number of destinations.
        destinations: usize,
        /// Table size.
        size: usize,
    },
    /// A kernel configuration index outside `8..=17` for the Maglev table.
    #[error("CONFIG_IP_VS_MH_TAB_INDEX {0} is outside 8..=17")]
    TableIndexOutOfRange(u8),
}

/// A scheduler by its kernel name, with the kernel's defaults (no sh/mh
/// flags, the default Maglev table of 4093 slots, a `twos` seeded from the
/// operating system).
pub fn by_name(name: &str) -> Result<Box<dyn Scheduler>, Error> {
    for_service(&SchedulerName::from(name), ServiceFlags::empty())
}

/// The scheduler a service of the [model](crate::model) names, with the
/// service's sh/mh flags (`SH_FALLBACK`/`MH_FALLBACK`, `SH_PORT`/`MH_PORT`).
/// [`SchedulerName::Other`] is an [`Error::UnknownScheduler`].
pub fn for_service(name: &SchedulerName, flags: ServiceFlags) -> Result<Box<dyn Scheduler>, Error> {
    let hash_flags = HashFlags::from(flags);
    Ok(match name {
        SchedulerName::Rr => Box::new(RoundRobin::new()),
        SchedulerName::Wrr => Box::new(WeightedRoundRobin::new()),
        SchedulerName::Lc => Box::new(LeastConnection::new()),
        SchedulerName::Wlc => Box::new(WeightedLeastConnection::new()),
        SchedulerName::Sed => Box::new(ShortestExpectedDelay::new()),
        SchedulerName::Nq => Box::new(NeverQueue::new()),
        SchedulerName::Fo => Box::new(WeightedFailover::new()),
        SchedulerName::Ovf => Box::new(Overflow::new()),
        SchedulerName::Sh => Box::new(SourceHashing::new(hash_flags)),
        SchedulerName::Dh => Box::new(DestinationHashing::new()),
        SchedulerName::Mh => Box::new(MaglevHashing::new(
            MaglevTable::kernel_default(),
            hash_flags,
        )),
        SchedulerName::Lblc => Box::new(LocalityBasedLeastConnection::new()),
        SchedulerName::Lblcr => Box::new(LocalityBasedLeastConnectionReplicated::new()),
        SchedulerName::Twos => Box::new(PowerOfTwoChoices::from_os_rng()),
        other => return Err(Error::UnknownScheduler(other.as_str().to_owned())),
    })
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers shared by the schedulers' unit tests.
    use super::*;

    /// A pool of IPv4 destinations 10.0.0.<n>:80 with these weights, in this
    /// list order (index 0 first).
    pub(crate) fn pool(scheduler: Box<dyn Scheduler>, weights: &[u32]) -> Pool {
        let destinations = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Destination::new(address(i as u8 + 1), w))
            .collect();
        Pool::with_destinations(AddressFamily::Inet, scheduler, destinations)
            .unwrap_or_else(|e| panic!("test pool: {e}"))
    }

    /// 10.0.0.<n>:80.
    pub(crate) fn address(n: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, n], 80))
    }

    /// A request from 192.0.2.<n>:<port> to 198.51.100.1:80.
    pub(crate) fn request(n: u8, port: u16) -> Request {
        Request::new(
            Instant::now(),
            SocketAddr::from(([192, 0, 2, n], port)),
            SocketAddr::from(([198, 51, 100, 1], 80)),
        )
    }

    /// An edit to `weight`, without thresholds.
    pub(crate) fn weight(weight: u32) -> DestinationUpdate {
        DestinationUpdate {
            weight,
            upper_threshold: 0,
            lower_threshold: 0,
        }
    }

    /// `count` picks, each bound as a new (inactive) connection.
    pub(crate) fn picks(pool: &mut Pool, count: usize) -> Vec<Option<usize>> {
        (0..count)
            .map(|_| {
                let pick = pool.schedule(&request(1, 1000));
                if let Some(i) = pick {
                    pool.bind(i, ConnectionState::Inactive);
                }
                pick
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_builds_its_scheduler() {
        for name in SchedulerName::ALL {
            let scheduler =
                for_service(&name, ServiceFlags::empty()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(scheduler.name(), name.as_str());
        }
        assert_eq!(
            by_name("wlcx").err(),
            Some(Error::UnknownScheduler("wlcx".into()))
        );
    }
}
