//! `lblc` and `lblcr`: locality-based least connection, without and with
//! replication (net/netfilter/ipvs/ip_vs_lblc.c, ip_vs_lblcr.c).
//!
//! Both keep a cache from the address a client connected to (`iph->daddr`;
//! the schedulers were made for cache clusters, where that address is the
//! origin server) to a destination, or a set of them.
//!
//! Difference from the kernel: the kernel also runs a garbage collector every
//! minute that, only when a cache holds more than 16384 entries, drops
//! entries idle for 6 minutes in hash-bucket order. We implement the
//! full expiry (entries idle for the expiration time, 24 hours by default)
//! in [`Scheduler::expire`] but not that size-triggered collection, whose
//! choice of victims depends on the kernel's bucket order.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::least::{Ratio, weighted_least_scan};
use super::{Change, Destination, Request, Scheduler, View};

/// The default `lblc_expiration` and `lblcr_expiration` sysctls: 24 hours.
pub const DEFAULT_EXPIRATION: Duration = Duration::from_secs(24 * 60 * 60);

/// lblc's and lblcr's own test for "overloaded": more active connections
/// than its weight while some destination of the service has fewer than half
/// its weight active.
fn is_overloaded(destination: &Destination, all: &[Destination]) -> bool {
    u64::from(destination.active_connections()) > u64::from(destination.weight())
        && all
            .iter()
            .any(|d| u64::from(d.active_connections()) * 2 < u64::from(d.weight()))
}

#[derive(Debug, Clone)]
struct Entry {
    destination: SocketAddr,
    last_use: Instant,
}

/// Locality-based least-connection scheduling, as `ip_vs_lblc.c`.
///
/// If the cache maps the request's virtual address to a destination that is
/// still in the list, has weight above 0 and is not overloaded in lblc's
/// sense (more active connections than its weight while another destination
/// has fewer than half its weight active), that destination is the pick.
/// Otherwise the wlc rule picks one and the cache maps the address to it.
/// Each hit refreshes the entry's last use.
#[derive(Debug, Clone)]
pub struct LocalityBasedLeastConnection {
    cache: HashMap<IpAddr, Entry>,
    expiration: Duration,
}

impl Default for LocalityBasedLeastConnection {
    fn default() -> Self {
        LocalityBasedLeastConnection {
            cache: HashMap::new(),
            expiration: DEFAULT_EXPIRATION,
        }
    }
}

impl LocalityBasedLeastConnection {
    /// An lblc scheduler with the default expiration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the expiration (the `lblc_expiration` sysctl).
    pub fn with_expiration(mut self, expiration: Duration) -> Self {
        self.expiration = expiration;
        self
    }

    /// The number of cache entries.
    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }
}

impl Scheduler for LocalityBasedLeastConnection {
    fn name(&self) -> &'static str {
        "lblc"
    }

    fn destinations_changed(&mut self, _view: View<'_>, _change: Change) {}

    fn schedule(&mut self, view: View<'_>, request: &Request) -> Option<usize> {
        let key = request.virtual_address.ip();
        let all = view.destinations();
        if let Some(entry) = self.cache.get_mut(&key) {
            entry.last_use = request.now;
            if let Some(i) = view.index_of(entry.destination) {
                let d = &all[i];
                if d.weight() > 0 && !is_overloaded(d, all) {
                    return Some(i);
                }
            }
        }
        let pick = weighted_least_scan(all)?;
        let address = all[pick].address();
        match self.cache.get_mut(&key) {
            Some(entry) if entry.destination == address => {}
            _ => {
                self.cache.insert(
                    key,
                    Entry {
                        destination: address,
                        last_use: request.now,
                    },
                );
            }
        }
        Some(pick)
    }

    fn expire(&mut self, now: Instant) {
        let expiration = self.expiration;
        self.cache
            .retain(|_, e| now < e.last_use.checked_add(expiration).unwrap_or(now));
    }
}

#[derive(Debug, Clone)]
struct SetEntry {
    /// Most recently inserted first, as the kernel's `list_add_rcu`.
    set: Vec<SocketAddr>,
    last_modified: Instant,
    last_use: Instant,
}

/// Locality-based least-connection with replication, as `ip_vs_lblcr.c`.
///
/// The cache maps a virtual address to a *set* of destinations (most
/// recently added first). A pick takes the set's least-loaded member (wlc
/// rule, members still in the list with weight above 0 and not overloaded).
/// If the set has more than one member and was last modified longer ago
/// than the expiration, its most-loaded member is dropped. If the chosen
/// member is overloaded in lblc's sense, or there is none, the wlc rule
/// over the whole list picks one, which joins the set.
#[derive(Debug, Clone)]
pub struct LocalityBasedLeastConnectionReplicated {
    cache: HashMap<IpAddr, SetEntry>,
    expiration: Duration,
}

impl Default for LocalityBasedLeastConnectionReplicated {
    fn default() -> Self {
        LocalityBasedLeastConnectionReplicated {
            cache: HashMap::new(),
            expiration: DEFAULT_EXPIRATION,
        }
    }
}

impl LocalityBasedLeastConnectionReplicated {
    /// An lblcr scheduler with the default expiration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the expiration (the `lblcr_expiration` sysctl).
    pub fn with_expiration(mut self, expiration: Duration) -> Self {
        self.expiration = expiration;
        self
    }

    /// The destinations cached for `virtual_address`, most recent first.
    pub fn cached_set(&self, virtual_address: IpAddr) -> Option<&[SocketAddr]> {
        self.cache.get(&virtual_address).map(|e| e.set.as_slice())
    }
}

/// `ip_vs_dest_set_min`: the first member of least `overhead / weight`
/// among members in the list, with weight above 0, not overloaded.
fn set_min(set: &[SocketAddr], view: &View<'_>) -> Option<usize> {
    let all = view.destinations();
    set.iter()
        .enumerate()
        .filter_map(|(position, &a)| {
            let i = view.index_of(a)?;
            let d = &all[i];
            d.is_available()
                .then(|| (Ratio::new(d.overhead(), u64::from(d.weight())), position, i))
        })
        .min_by(|x, y| x.0.cmp(&y.0).then(x.1.cmp(&y.1)))
        .map(|(_, _, i)| i)
}

/// `ip_vs_dest_set_max`: the position in the set of the first member of
/// greatest `overhead / weight` among members with weight above 0. Members
/// no longer in the list are skipped (the kernel still sees their last
/// weight and counters there; we no longer know them).
fn set_max(set: &[SocketAddr], view: &View<'_>) -> Option<usize> {
    let all = view.destinations();
    let mut most: Option<(Ratio, usize)> = None;
    for (position, &a) in set.iter().enumerate() {
        let Some(i) = view.index_of(a) else { continue };
        let d = &all[i];
        if d.weight() == 0 {
            continue;
        }
        let load = Ratio::new(d.overhead(), u64::from(d.weight()));
        if most.is_none_or(|(m, _)| load > m) {
            most = Some((load, position));
        }
    }
    most.map(|(_, position)| position)
}

impl Scheduler for LocalityBasedLeastConnectionReplicated {
    fn name(&self) -> &'static str {
        "lblcr"
    }

    fn destinations_changed(&mut self, _view: View<'_>, _change: Change) {}

    fn schedule(&mut self, view: View<'_>, request: &Request) -> Option<usize> {
        let key = request.virtual_address.ip();
        let all = view.destinations();
        let now = request.now;
        if let Some(entry) = self.cache.get_mut(&key) {
            entry.last_use = now;
            let chosen = set_min(&entry.set, &view);
            let stale = entry
                .last_modified
                .checked_add(self.expiration)
                .is_some_and(|deadline| now > deadline);
            if entry.set.len() > 1
                && stale
                && let Some(position) = set_max(&entry.set, &view)
            {
                entry.set.remove(position);
                entry.last_modified = now;
            }
            if let Some(i) = chosen
                && !is_overloaded(&all[i], all)
            {
                return Some(i);
            }
            let pick = weighted_least_scan(all)?;
            let address = all[pick].address();
            if !entry.set.contains(&address) {
                entry.set.insert(0, address);
                entry.last_modified = now;
            }
            return Some(pick);
        }
        let pick = weighted_least_scan(all)?;
        self.cache.insert(
            key,
            SetEntry {
                set: vec![all[pick].address()],
                last_modified: now,
                last_use: now,
            },
        );
        Some(pick)
    }

    fn expire(&mut self, now: Instant) {
        let expiration = self.expiration;
        self.cache
            .retain(|_, e| now < e.last_use.checked_add(expiration).unwrap_or(now));
    }
}

#[cfg(test)]
mod tests {
    use super::super::ConnectionState;
    use super::super::testing::{address, pool};
    use super::*;

    fn to(vip: u8, now: Instant) -> Request {
        Request::new(
            now,
            SocketAddr::from(([192, 0, 2, 1], 1000)),
            SocketAddr::from(([203, 0, 113, vip], 80)),
        )
    }

    #[test]
    fn lblc_sticks_until_overloaded_in_its_sense() {
        // [A w2, B w2]. VIP .1 -> wlc picks A (tie, first); cached.
        let now = Instant::now();
        let mut p = pool(Box::new(LocalityBasedLeastConnection::new()), &[2, 2]);
        assert_eq!(p.schedule(&to(1, now)), Some(0));
        p.bind(0, ConnectionState::Active);
        p.bind(0, ConnectionState::Active);
        p.bind(0, ConnectionState::Active);
        // A has 3 active > weight 2, and B has 0*2 < 2: overloaded -> wlc
        // picks B, and the cache moves to B.
        assert_eq!(p.schedule(&to(1, now)), Some(1));
        // B gets 1 active: A (3 active) is no longer the cache entry; B
        // stays because B is not above its weight.
        p.bind(1, ConnectionState::Active);
        assert_eq!(p.schedule(&to(1, now)), Some(1));
        // Another VIP goes by wlc: A 768/2 vs B 256/2 -> B.
        assert_eq!(p.schedule(&to(2, now)), Some(1));
    }

    #[test]
    fn lblc_forgets_removed_destinations_and_expires() {
        let now = Instant::now();
        let mut lblc = LocalityBasedLeastConnection::new().with_expiration(Duration::from_secs(10));
        let mut p = pool(Box::new(LocalityBasedLeastConnection::new()), &[1, 1]);
        assert_eq!(p.schedule(&to(1, now)), Some(0));
        p.remove(address(1)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.schedule(&to(1, now)), Some(0)); // B, now index 0

        let p2 = pool(Box::new(LocalityBasedLeastConnection::new()), &[1]);
        assert_eq!(lblc.schedule(p2.as_view(), &to(1, now)), Some(0));
        lblc.expire(now + Duration::from_secs(9));
        assert_eq!(lblc.cache_len(), 1);
        lblc.expire(now + Duration::from_secs(10));
        assert_eq!(lblc.cache_len(), 0);
    }

    #[test]
    fn lblcr_grows_and_shrinks_its_set() {
        // The pool only holds the list here (its own scheduler is unused);
        // the lblcr under test is driven directly so its set can be read.
        let now = Instant::now();
        let exp = Duration::from_secs(60);
        let vip = IpAddr::from([203, 0, 113, 1]);
        let mut lblcr = LocalityBasedLeastConnectionReplicated::new().with_expiration(exp);
        let mut p = pool(Box::new(super::super::RoundRobin::new()), &[1, 1]);
        // First pick: wlc over [A, B] with equal loads -> A; set {A}.
        assert_eq!(lblcr.schedule(p.as_view(), &to(1, now)), Some(0));
        assert_eq!(lblcr.cached_set(vip), Some(&[address(1)][..]));
        // A gets 2 active (> weight 1) while B has 0 (0 < 1/2): A is
        // overloaded in lblc's sense, so wlc picks B, which joins the set at
        // the front: {B, A}.
        p.bind(0, ConnectionState::Active);
        p.bind(0, ConnectionState::Active);
        assert_eq!(lblcr.schedule(p.as_view(), &to(1, now)), Some(1));
        assert_eq!(lblcr.cached_set(vip), Some(&[address(2), address(1)][..]));
        // Within the expiration the set keeps both; the least loaded is B.
        let soon = now + Duration::from_secs(1);
        assert_eq!(lblcr.schedule(p.as_view(), &to(1, soon)), Some(1));
        assert_eq!(lblcr.cached_set(vip).map(<[_]>::len), Some(2));
        // Strictly after the expiration since the last change the
        // most-loaded member (A, 512/1) is dropped.
        let later = now + exp + Duration::from_secs(1);
        assert_eq!(lblcr.schedule(p.as_view(), &to(1, later)), Some(1));
        assert_eq!(lblcr.cached_set(vip), Some(&[address(2)][..]));
        // Entries idle for the expiration are dropped by expire().
        lblcr.expire(later + exp);
        assert_eq!(lblcr.cached_set(vip), None);
    }
}
