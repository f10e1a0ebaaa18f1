//! The destinations of one virtual service, their counters, and the
//! scheduler that picks among them.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::{AddressFamily, Change, Error, Request, Scheduler, View};

/// The scheduling state of one real server (the fields of the kernel's
/// `struct ip_vs_dest` that schedulers read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    address: SocketAddr,
    weight: u32,
    last_weight: u32,
    active_connections: u32,
    inactive_connections: u32,
    persistent_connections: u32,
    upper_threshold: u32,
    lower_threshold: u32,
    overloaded: bool,
}

impl Destination {
    /// A destination at `address` with `weight`, no connections and no
    /// thresholds.
    pub fn new(address: SocketAddr, weight: u32) -> Self {
        Destination {
            address,
            weight,
            last_weight: weight,
            active_connections: 0,
            inactive_connections: 0,
            persistent_connections: 0,
            upper_threshold: 0,
            lower_threshold: 0,
            overloaded: false,
        }
    }

    /// Sets the upper and lower connection thresholds (`-x` and `-y` of
    /// ipvsadm; 0 means none).
    pub fn with_thresholds(mut self, upper: u32, lower: u32) -> Self {
        self.upper_threshold = upper;
        self.lower_threshold = lower;
        self
    }

    /// Sets the connection counters, e.g. from a kernel dump.
    pub fn with_connections(mut self, active: u32, inactive: u32) -> Self {
        self.active_connections = active;
        self.inactive_connections = inactive;
        self
    }

    /// Sets the overload flag (`IP_VS_DEST_F_OVERLOAD`).
    pub fn with_overloaded(mut self, overloaded: bool) -> Self {
        self.overloaded = overloaded;
        self
    }

    /// The real server's address and port.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The current weight; 0 quiesces the destination.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// The latest non-zero weight (`last_weight`; mh builds its table from
    /// it, so quiescing a destination does not reshuffle the table).
    pub fn last_weight(&self) -> u32 {
        self.last_weight
    }

    /// Established connections (`activeconns`).
    pub fn active_connections(&self) -> u32 {
        self.active_connections
    }

    /// Connections in other states (`inactconns`).
    pub fn inactive_connections(&self) -> u32 {
        self.inactive_connections
    }

    /// Persistence templates (`persistconns`).
    pub fn persistent_connections(&self) -> u32 {
        self.persistent_connections
    }

    /// The upper connection threshold, 0 for none.
    pub fn upper_threshold(&self) -> u32 {
        self.upper_threshold
    }

    /// The lower connection threshold, 0 for none.
    pub fn lower_threshold(&self) -> u32 {
        self.lower_threshold
    }

    /// Whether `IP_VS_DEST_F_OVERLOAD` is set.
    pub fn is_overloaded(&self) -> bool {
        self.overloaded
    }

    /// `ip_vs_dest_conn_overhead()` (include/net/ip_vs.h): active connections
    /// weigh 256 times an inactive one.
    pub fn overhead(&self) -> u64 {
        (u64::from(self.active_connections) << 8) + u64::from(self.inactive_connections)
    }

    /// `ip_vs_dest_totalconns()`: active plus inactive connections.
    pub fn total_connections(&self) -> u64 {
        u64::from(self.active_connections) + u64::from(self.inactive_connections)
    }

    /// Eligible for the common rule of rr, wrr, wlc, sed, twos: weight above 0
    /// and not overloaded.
    pub(crate) fn is_available(&self) -> bool {
        self.weight > 0 && !self.overloaded
    }
}

/// An edit of a destination (ipvsadm `-e`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestinationUpdate {
    /// The new weight.
    pub weight: u32,
    /// The new upper threshold, 0 for none.
    pub upper_threshold: u32,
    /// The new lower threshold, 0 for none.
    pub lower_threshold: u32,
}

/// How a connection counts against its destination (the kernel's
/// `IP_VS_CONN_F_INACTIVE` and `IP_VS_CONN_F_TEMPLATE` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Counted in `activeconns` (a TCP connection in ESTABLISHED).
    Active,
    /// Counted in `inactconns`. A new connection starts here: the kernel
    /// binds it inactive and moves it to active when TCP reaches ESTABLISHED.
    Inactive,
    /// A persistence template, counted in `persistconns`.
    Template,
}

/// The destinations of one virtual service in the kernel's list order, and
/// its scheduler.
///
/// Use [`Pool::add`], [`Pool::remove`] and [`Pool::update`] to change the
/// list, [`Pool::bind`], [`Pool::establish`] and [`Pool::unbind`] to account
/// connections (these maintain the overload flag as `ip_vs_conn.c` does), and
/// [`Pool::schedule`] to pick.
pub struct Pool {
    family: AddressFamily,
    destinations: Vec<Destination>,
    index: HashMap<SocketAddr, usize>,
    scheduler: Box<dyn Scheduler>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("family", &self.family)
            .field("scheduler", &self.scheduler.name())
            .field("destinations", &self.destinations)
            .finish()
    }
}

fn check_weight(weight: u32) -> Result<(), Error> {
    if weight > i32::MAX as u32 {
        return Err(Error::WeightOutOfRange(weight));
    }
    Ok(())
}

impl Pool {
    /// An empty pool.
    pub fn new(family: AddressFamily, scheduler: Box<dyn Scheduler>) -> Self {
        let mut pool = Pool {
            family,
            destinations: Vec::new(),
            index: HashMap::new(),
            scheduler,
        };
        pool.notify(Change::Initialized);
        pool
    }

    /// A pool whose list is `destinations`, in this order (as a kernel dump
    /// lists them), as if the service had been created with them.
    pub fn with_destinations(
        family: AddressFamily,
        scheduler: Box<dyn Scheduler>,
        destinations: Vec<Destination>,
    ) -> Result<Self, Error> {
        let mut index = HashMap::with_capacity(destinations.len());
        for (i, d) in destinations.iter().enumerate() {
            check_weight(d.weight)?;
            if index.insert(d.address, i).is_some() {
                return Err(Error::DestinationExists(d.address));
            }
        }
        let mut pool = Pool {
            family,
            destinations,
            index,
            scheduler,
        };
        pool.notify(Change::Initialized);
        Ok(pool)
    }

    fn view(&self) -> View<'_> {
        View {
            family: self.family,
            destinations: &self.destinations,
            index: &self.index,
        }
    }

    fn notify(&mut self, change: Change) {
        let view = View {
            family: self.family,
            destinations: &self.destinations,
            index: &self.index,
        };
        self.scheduler.destinations_changed(view, change);
    }

    fn reindex(&mut self) {
        self.index.clear();
        for (i, d) in self.destinations.iter().enumerate() {
            self.index.insert(d.address, i);
        }
    }

    /// The service's address family.
    pub fn family(&self) -> AddressFamily {
        self.family
    }

    /// The scheduler's kernel name.
    pub fn scheduler_name(&self) -> &'static str {
        self.scheduler.name()
    }

    /// The destinations in list order.
    pub fn destinations(&self) -> &[Destination] {
        &self.destinations
    }

    /// The destination at `index`.
    ///
    /// # Panics
    /// If `index` is out of bounds.
    pub fn destination(&self, index: usize) -> &Destination {
        &self.destinations[index]
    }

    /// The index of the destination with this address.
    pub fn index_of(&self, address: SocketAddr) -> Option<usize> {
        self.index.get(&address).copied()
    }

    /// Adds a destination at the front of the list, as the kernel's
    /// `__ip_vs_update_dest` does (`list_add_rcu` after the head). Returns its
    /// index, always 0.
    pub fn add(&mut self, destination: Destination) -> Result<usize, Error> {
        check_weight(destination.weight)?;
        if self.index.contains_key(&destination.address) {
            return Err(Error::DestinationExists(destination.address));
        }
        let mut destination = destination;
        destination.last_weight = destination.weight;
        self.destinations.insert(0, destination);
        self.reindex();
        self.notify(Change::Added(0));
        Ok(0)
    }

    /// Removes the destination with this address and returns it.
    pub fn remove(&mut self, address: SocketAddr) -> Result<Destination, Error> {
        let index = self
            .index_of(address)
            .ok_or(Error::NoSuchDestination(address))?;
        let removed = self.destinations.remove(index);
        self.reindex();
        self.notify(Change::Removed(index));
        Ok(removed)
    }

    /// Edits the destination with this address as `__ip_vs_update_dest`
    /// does: `last_weight` keeps the latest non-zero weight, and raising or
    /// clearing the upper threshold clears the overload flag.
    pub fn update(&mut self, address: SocketAddr, update: DestinationUpdate) -> Result<(), Error> {
        check_weight(update.weight)?;
        let index = self
            .index_of(address)
            .ok_or(Error::NoSuchDestination(address))?;
        let d = &mut self.destinations[index];
        if update.weight != 0 {
            d.last_weight = update.weight;
        }
        d.weight = update.weight;
        if update.upper_threshold == 0 || update.upper_threshold > d.upper_threshold {
            d.overloaded = false;
        }
        d.upper_threshold = update.upper_threshold;
        d.lower_threshold = update.lower_threshold;
        self.notify(Change::Updated(index));
        Ok(())
    }

    fn counters_changed(&mut self, index: usize) {
        let view = View {
            family: self.family,
            destinations: &self.destinations,
            index: &self.index,
        };
        self.scheduler.counters_changed(view, index);
    }

    /// Accounts a new connection to destination `index`, as `ip_vs_bind_dest`
    /// does: the counter of `state` goes up, and the overload flag is set
    /// when active plus inactive connections reach the upper threshold.
    ///
    /// # Panics
    /// If `index` is out of bounds.
    pub fn bind(&mut self, index: usize, state: ConnectionState) {
        let d = &mut self.destinations[index];
        match state {
            ConnectionState::Active => d.active_connections += 1,
            ConnectionState::Inactive => d.inactive_connections += 1,
            ConnectionState::Template => d.persistent_connections += 1,
        }
        if d.upper_threshold != 0 && d.total_connections() >= u64::from(d.upper_threshold) {
            d.overloaded = true;
        }
        self.counters_changed(index);
    }

    /// Moves one connection of destination `index` from inactive to active,
    /// as the TCP state machine does on reaching ESTABLISHED. Does nothing if
    /// it has no inactive connection.
    ///
    /// # Panics
    /// If `index` is out of bounds.
    pub fn establish(&mut self, index: usize) {
        let d = &mut self.destinations[index];
        if d.inactive_connections == 0 {
            return;
        }
        d.inactive_connections -= 1;
        d.active_connections += 1;
        self.counters_changed(index);
    }

    /// Releases a connection of destination `index`, as `ip_vs_unbind_dest`
    /// does: the counter goes down, and the overload flag is cleared below
    /// the lower threshold, or below 3/4 of the upper one if there is no
    /// lower threshold, or at once if there are no thresholds. A counter that
    /// is already 0 stays 0.
    ///
    /// # Panics
    /// If `index` is out of bounds.
    pub fn unbind(&mut self, index: usize, state: ConnectionState) {
        let d = &mut self.destinations[index];
        let counter = match state {
            ConnectionState::Active => &mut d.active_connections,
            ConnectionState::Inactive => &mut d.inactive_connections,
            ConnectionState::Template => &mut d.persistent_connections,
        };
        *counter = counter.saturating_sub(1);
        let total = d.total_connections();
        if d.lower_threshold != 0 {
            if total < u64::from(d.lower_threshold) {
                d.overloaded = false;
            }
        } else if d.upper_threshold != 0 {
            if total * 4 < u64::from(d.upper_threshold) * 3 {
                d.overloaded = false;
            }
        } else {
            d.overloaded = false;
        }
        self.counters_changed(index);
    }

    /// Sets the counters of destination `index`, e.g. from a kernel dump.
    /// The overload flag is left as it is.
    ///
    /// # Panics
    /// If `index` is out of bounds.
    pub fn set_connections(&mut self, index: usize, active: u32, inactive: u32) {
        let d = &mut self.destinations[index];
        d.active_connections = active;
        d.inactive_connections = inactive;
        self.counters_changed(index);
    }

    /// Sets the overload flag of destination `index`.
    ///
    /// # Panics
    /// If `index` is out of bounds.
    pub fn set_overloaded(&mut self, index: usize, overloaded: bool) {
        self.destinations[index].overloaded = overloaded;
        self.counters_changed(index);
    }

    /// Picks the destination for `request`: its index, or `None` for the
    /// kernel's "no destination available". Does not account the connection;
    /// call [`Pool::bind`] for that.
    pub fn schedule(&mut self, request: &Request) -> Option<usize> {
        let view = View {
            family: self.family,
            destinations: &self.destinations,
            index: &self.index,
        };
        self.scheduler.schedule(view, request)
    }

    /// Lets the scheduler drop cache entries that expired by `now`.
    pub fn expire(&mut self, now: std::time::Instant) {
        self.scheduler.expire(now);
    }

    /// A read-only view of the list, as schedulers see it.
    pub fn as_view(&self) -> View<'_> {
        self.view()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{address, pool};
    use super::super::{RoundRobin, WeightedLeastConnection};
    use super::*;

    #[test]
    fn add_puts_the_destination_first() {
        let mut p = Pool::new(AddressFamily::Inet, Box::new(RoundRobin::new()));
        for n in 1..=3 {
            assert_eq!(p.add(Destination::new(address(n), 1)), Ok(0));
        }
        let order: Vec<_> = p.destinations().iter().map(|d| d.address()).collect();
        assert_eq!(order, vec![address(3), address(2), address(1)]);
        assert_eq!(
            p.add(Destination::new(address(2), 1)),
            Err(Error::DestinationExists(address(2)))
        );
        assert_eq!(
            p.add(Destination::new(address(9), u32::MAX)),
            Err(Error::WeightOutOfRange(u32::MAX))
        );
    }

    #[test]
    fn thresholds_set_and_clear_the_overload_flag() {
        // Upper 4, no lower: overloaded at 4 connections, cleared when
        // total*4 < 4*3, i.e. below 3.
        let mut p = pool(Box::new(WeightedLeastConnection::new()), &[1]);
        p.update(
            address(1),
            DestinationUpdate {
                weight: 1,
                upper_threshold: 4,
                lower_threshold: 0,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..3 {
            p.bind(0, ConnectionState::Inactive);
        }
        assert!(!p.destination(0).is_overloaded());
        p.bind(0, ConnectionState::Active);
        assert!(p.destination(0).is_overloaded());
        assert_eq!(p.schedule(&super::super::testing::request(1, 1)), None);
        p.unbind(0, ConnectionState::Inactive); // total 3: 12 < 12 is false
        assert!(p.destination(0).is_overloaded());
        p.unbind(0, ConnectionState::Inactive); // total 2: 8 < 12
        assert!(!p.destination(0).is_overloaded());

        // With a lower threshold of 2 the flag clears below 2.
        p.update(
            address(1),
            DestinationUpdate {
                weight: 1,
                upper_threshold: 3,
                lower_threshold: 2,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        p.bind(0, ConnectionState::Inactive); // total 3
        assert!(p.destination(0).is_overloaded());
        p.unbind(0, ConnectionState::Inactive); // total 2, not < 2
        assert!(p.destination(0).is_overloaded());
        // Raising the upper threshold clears the flag.
        p.update(
            address(1),
            DestinationUpdate {
                weight: 1,
                upper_threshold: 10,
                lower_threshold: 2,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!p.destination(0).is_overloaded());
    }

    #[test]
    fn last_weight_keeps_the_latest_non_zero_weight() {
        let mut p = pool(Box::new(RoundRobin::new()), &[5]);
        let set = super::super::testing::weight;
        p.update(address(1), set(0))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (p.destination(0).weight(), p.destination(0).last_weight()),
            (0, 5)
        );
        p.update(address(1), set(7))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (p.destination(0).weight(), p.destination(0).last_weight()),
            (7, 7)
        );
    }
}
