//! The requests behind each handle method, as sans-IO jobs: what is sent,
//! and how the replies become model values. Both handles run these.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use crate::error::Error;
use crate::model::{
    DestinationStatus, Family, Info, ServiceKey, ServiceStatus, SyncDaemon, Timeouts,
};
use crate::netlink::exchange::{Batch, Collect, Dump, Expect, Job, Map, Sequence};
use crate::netlink::{Command, CommandAttribute, DaemonAttribute, IpvsMessage};
use crate::reconcile::{Operation, ServiceState};

/// One request answered by an acknowledgement (and maybe one reply).
pub(crate) fn single(
    message: IpvsMessage,
    expect: Expect,
) -> impl Job<Output = Option<IpvsMessage>> {
    Map {
        job: Batch::new(vec![(message, expect)]),
        f: |mut results: Vec<(Result<(), Error>, Option<IpvsMessage>)>| {
            let (result, reply) = results.pop().expect("one request");
            result.map(|()| reply)
        },
    }
}

/// One acknowledged request with nothing to return.
pub(crate) fn ack(message: IpvsMessage) -> impl Job<Output = ()> {
    Map {
        job: single(message, Expect::Ack),
        f: |_| Ok(()),
    }
}

/// Many operations, pipelined, each with its own result.
pub(crate) fn execute(operations: &[Operation]) -> impl Job<Output = Vec<Result<(), Error>>> {
    let requests = operations
        .iter()
        .map(|op| (op.to_message(), Expect::Ack))
        .collect();
    Map {
        job: Batch::new(requests),
        f: |results: Vec<(Result<(), Error>, Option<IpvsMessage>)>| {
            Ok(results.into_iter().map(|(r, _)| r).collect())
        },
    }
}

fn invalid(command: Command) -> impl Fn(crate::model::ModelError) -> Error {
    move |source| Error::Invalid { command, source }
}

/// A `GET_SERVICE` dump decoded straight into the model
/// ([`crate::netlink::reply::service`]), each service announced as soon as
/// it arrives if `announce` is given.
#[derive(Default)]
struct ServiceList<'a> {
    list: Vec<ServiceStatus>,
    announce: Option<&'a Announced>,
}

impl Collect for ServiceList<'_> {
    type Output = Vec<ServiceStatus>;
    fn reply(&mut self, command: Command, attributes: &[u8]) -> Result<(), Error> {
        if let Some(service) = crate::netlink::reply::service(command, attributes)? {
            if let Some(announced) = self.announce {
                announced.push(service.service.key);
            }
            self.list.push(service);
        }
        Ok(())
    }
    fn clear(&mut self) {
        // What was announced stays announced: `assemble` matches
        // destinations to the final list by key.
        self.list.clear();
    }
    fn finish(self) -> Vec<ServiceStatus> {
        self.list
    }
}

/// A `GET_DEST` dump decoded straight into the model
/// ([`crate::netlink::reply::destinations`]).
#[derive(Debug)]
struct DestinationList {
    service_family: Family,
    list: Vec<DestinationStatus>,
}

impl Collect for DestinationList {
    type Output = Vec<DestinationStatus>;
    fn reply(&mut self, command: Command, attributes: &[u8]) -> Result<(), Error> {
        crate::netlink::reply::destinations(
            command,
            attributes,
            self.service_family,
            &mut self.list,
        )
    }
    fn clear(&mut self) {
        self.list.clear();
    }
    fn finish(self) -> Vec<DestinationStatus> {
        self.list
    }
}

pub(crate) fn info() -> impl Job<Output = Info> {
    Map {
        job: single(IpvsMessage::new(Command::GetInfo, vec![]), Expect::Reply),
        f: |reply: Option<IpvsMessage>| {
            let reply = reply.ok_or(Error::MissingReply(Command::GetInfo))?;
            let mut version = None;
            let mut size = 0;
            for a in &reply.attributes {
                match a {
                    CommandAttribute::InfoVersion(v) => version = Some(*v),
                    CommandAttribute::InfoConnectionTableSize(v) => size = *v,
                    _ => {}
                }
            }
            let version = version.ok_or(Error::MissingReply(Command::GetInfo))?;
            Ok(Info::from_raw(version, size))
        },
    }
}

pub(crate) fn services() -> impl Job<Output = Vec<ServiceStatus>> {
    Dump::with(
        IpvsMessage::new(Command::GetService, vec![]),
        ServiceList::default(),
    )
}

/// The service dump, announcing each service to the destination dumps
/// that run meanwhile on other sockets.
pub(crate) fn services_announced(
    announced: &Announced,
) -> impl Job<Output = Vec<ServiceStatus>> + '_ {
    Dump::with(
        IpvsMessage::new(Command::GetService, vec![]),
        ServiceList {
            list: Vec::new(),
            announce: Some(announced),
        },
    )
}

pub(crate) fn service(key: &ServiceKey) -> impl Job<Output = ServiceStatus> {
    let message = IpvsMessage::new(
        Command::GetService,
        vec![CommandAttribute::Service(key.to_attributes())],
    );
    Map {
        job: single(message, Expect::Reply),
        f: |reply: Option<IpvsMessage>| {
            let reply = reply.ok_or(Error::MissingReply(Command::GetService))?;
            reply
                .service_status()
                .map_err(invalid(Command::GetService))?
                .ok_or(Error::MissingReply(Command::GetService))
        },
    }
}

/// The destination dump of a service.
fn destinations_dump(key: &ServiceKey) -> Dump<DestinationList> {
    let request = IpvsMessage::new(
        Command::GetDestination,
        vec![CommandAttribute::Service(key.to_attributes())],
    );
    let list = DestinationList {
        service_family: key.family(),
        list: Vec::new(),
    };
    Dump::with(request, list)
}

pub(crate) fn destinations(key: &ServiceKey) -> impl Job<Output = Vec<DestinationStatus>> {
    destinations_dump(key)
}

/// Where destination dumps take the services to dump from; several jobs,
/// each on its own socket, share one.
pub(crate) trait ServiceKeys: Sync {
    /// The next service to dump, or `None` when none is left.
    fn take(&self) -> Option<ServiceKey>;
}

/// The services of a finished service dump.
pub(crate) struct Listed<'a> {
    services: &'a [ServiceStatus],
    next: AtomicUsize,
}

impl<'a> Listed<'a> {
    pub(crate) fn new(services: &'a [ServiceStatus]) -> Self {
        Listed {
            services,
            next: AtomicUsize::new(0),
        }
    }
}

impl ServiceKeys for Listed<'_> {
    fn take(&self) -> Option<ServiceKey> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.services.get(i).map(|s| s.service.key)
    }
}

/// The services of a service dump still running: [`ServiceKeys::take`]
/// waits for the next one until the dump is over ([`Announced::close`]).
/// Only for the blocking handle, whose dumps run on their own threads.
#[derive(Default)]
pub(crate) struct Announced {
    state: Mutex<AnnouncedState>,
    changed: Condvar,
}

#[derive(Default)]
struct AnnouncedState {
    keys: Vec<ServiceKey>,
    next: usize,
    closed: bool,
}

impl Announced {
    fn lock(&self) -> MutexGuard<'_, AnnouncedState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, key: ServiceKey) {
        self.lock().keys.push(key);
        self.changed.notify_one();
    }

    /// No more services will come: once the announced ones are taken,
    /// `take` returns `None`. With `abandon`, the ones not taken yet are
    /// dropped too (the service dump failed).
    pub(crate) fn close(&self, abandon: bool) {
        let mut state = self.lock();
        state.closed = true;
        if abandon {
            state.next = state.keys.len();
        }
        drop(state);
        self.changed.notify_all();
    }
}

impl ServiceKeys for Announced {
    fn take(&self) -> Option<ServiceKey> {
        let mut state = self.lock();
        loop {
            if let Some(&key) = state.keys.get(state.next) {
                state.next += 1;
                return Some(key);
            }
            if state.closed {
                return None;
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// What [`destination_lists`] found: per service, its destinations, or
/// `None` when the service was deleted after the service dump.
pub(crate) type Found = Vec<(ServiceKey, Option<Vec<DestinationStatus>>)>;

/// The destination dumps of the services this job takes from `keys`, one
/// dump after the other.
pub(crate) fn destination_lists<K: ServiceKeys + ?Sized>(
    keys: &K,
) -> impl Job<Output = Found> + '_ {
    struct State<'a, K: ?Sized> {
        keys: &'a K,
        current: Option<ServiceKey>,
        found: Found,
    }
    fn next_dump<K: ServiceKeys + ?Sized>(
        state: &mut State<'_, K>,
    ) -> Option<Dump<DestinationList>> {
        state.current = state.keys.take();
        state.current.as_ref().map(destinations_dump)
    }
    fn absorb<K: ?Sized>(
        state: &mut State<'_, K>,
        destinations: Result<Vec<DestinationStatus>, Error>,
    ) -> Result<(), Error> {
        let destinations = match destinations {
            // Deleted since the service dump: it is no longer listed.
            Err(Error::Kernel {
                errno: nix::errno::Errno::ESRCH,
                ..
            }) => None,
            destinations => Some(destinations?),
        };
        if let Some(key) = state.current {
            state.found.push((key, destinations));
        }
        Ok(())
    }
    Map {
        job: Sequence::new(
            State {
                keys,
                current: None,
                found: Vec::new(),
            },
            next_dump,
            absorb,
        ),
        f: |state: State<'_, K>| Ok(state.found),
    }
}

/// The services of a service dump with the destinations found for them, in
/// the dump's order; services deleted in between are left out.
pub(crate) fn assemble(
    services: Vec<ServiceStatus>,
    found: impl IntoIterator<Item = (ServiceKey, Option<Vec<DestinationStatus>>)>,
) -> Vec<ServiceState> {
    let mut found: HashMap<ServiceKey, Option<Vec<DestinationStatus>>> =
        found.into_iter().collect();
    services
        .into_iter()
        .filter_map(|service| {
            let destinations = found.remove(&service.service.key).flatten()?;
            Some(ServiceState {
                service,
                destinations,
            })
        })
        .collect()
}

pub(crate) fn timeouts() -> impl Job<Output = Timeouts> {
    Map {
        job: single(IpvsMessage::new(Command::GetConfig, vec![]), Expect::Reply),
        f: |reply: Option<IpvsMessage>| {
            let reply = reply.ok_or(Error::MissingReply(Command::GetConfig))?;
            let mut t = Timeouts::default();
            for a in &reply.attributes {
                match a {
                    CommandAttribute::TimeoutTcp(v) => t.tcp = *v,
                    CommandAttribute::TimeoutTcpFin(v) => t.tcp_fin = *v,
                    CommandAttribute::TimeoutUdp(v) => t.udp = *v,
                    _ => {}
                }
            }
            Ok(t)
        },
    }
}

/// `IPVS_CMD_SET_CONFIG`, in `ipvsadm`'s order (tcp, tcp_fin, udp).
pub(crate) fn set_timeouts_message(t: &Timeouts) -> IpvsMessage {
    IpvsMessage::new(
        Command::SetConfig,
        vec![
            CommandAttribute::TimeoutTcp(t.tcp),
            CommandAttribute::TimeoutTcpFin(t.tcp_fin),
            CommandAttribute::TimeoutUdp(t.udp),
        ],
    )
}

pub(crate) fn daemons() -> impl Job<Output = Vec<SyncDaemon>> {
    Map {
        job: Dump::new(IpvsMessage::new(Command::GetDaemon, vec![])),
        f: |replies: Vec<IpvsMessage>| {
            replies
                .iter()
                .flat_map(|m| &m.attributes)
                .filter_map(|a| match a {
                    CommandAttribute::Daemon(d) => Some(d),
                    _ => None,
                })
                .map(|d| SyncDaemon::from_attributes(d).map_err(invalid(Command::GetDaemon)))
                .collect()
        },
    }
}

pub(crate) fn start_daemon_message(daemon: &SyncDaemon) -> IpvsMessage {
    IpvsMessage::new(
        Command::NewDaemon,
        vec![CommandAttribute::Daemon(daemon.to_attributes())],
    )
}

/// `IPVS_CMD_DEL_DAEMON`: the kernel reads only the state.
pub(crate) fn stop_daemon_message(state: crate::model::DaemonState) -> IpvsMessage {
    let raw = match state {
        crate::model::DaemonState::Master => 1,
        crate::model::DaemonState::Backup => 2,
    };
    IpvsMessage::new(
        Command::DelDaemon,
        vec![CommandAttribute::Daemon(vec![DaemonAttribute::State(raw)])],
    )
}

pub(crate) fn zero_message(key: Option<&ServiceKey>) -> IpvsMessage {
    let attributes = key
        .map(|k| vec![CommandAttribute::Service(k.to_attributes())])
        .unwrap_or_default();
    IpvsMessage::new(Command::Zero, attributes)
}

pub(crate) fn dump(message: IpvsMessage) -> impl Job<Output = Vec<IpvsMessage>> {
    Dump::new(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Protocol, SchedulerName, Service, Stats};

    fn key(n: u8) -> ServiceKey {
        ServiceKey::Address {
            protocol: Protocol::Tcp,
            address: std::net::IpAddr::from([10, 0, 0, n]),
            port: 80,
        }
    }

    fn status(n: u8) -> ServiceStatus {
        ServiceStatus {
            service: Service::new(key(n), SchedulerName::Rr),
            stats: Stats::default(),
        }
    }

    /// Consumers on other threads get every announced service once, in
    /// order, waiting while the list is open, and stop when it is closed.
    #[test]
    fn announced_services_reach_waiting_consumers() {
        let announced = Announced::default();
        let taken = std::thread::scope(|scope| {
            let consumers: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| std::iter::from_fn(|| announced.take()).collect::<Vec<_>>())
                })
                .collect();
            for n in 1..=50 {
                announced.push(key(n));
            }
            announced.close(false);
            consumers
                .into_iter()
                .flat_map(|c| c.join().unwrap())
                .collect::<Vec<_>>()
        });
        let mut taken: Vec<ServiceKey> = taken;
        taken.sort();
        let mut expected: Vec<ServiceKey> = (1..=50).map(key).collect();
        expected.sort();
        assert_eq!(taken, expected);
    }

    /// Closing with `abandon` drops what was not taken yet.
    #[test]
    fn abandoned_announcements_are_not_taken() {
        let announced = Announced::default();
        announced.push(key(1));
        announced.push(key(2));
        assert_eq!(announced.take(), Some(key(1)));
        announced.close(true);
        assert_eq!(announced.take(), None);
    }

    /// Destinations are matched to the final service list by key: found in
    /// any order, services deleted meanwhile (`None`) or never dumped are
    /// left out, a key found twice (a restarted service dump) counts once.
    #[test]
    fn assemble_matches_by_key_in_dump_order() {
        let services = vec![status(1), status(2), status(3), status(4)];
        let found = vec![
            (key(3), Some(vec![])),
            (key(1), Some(vec![])),
            (key(2), None),
            (key(1), Some(vec![])),
            (key(9), Some(vec![])),
        ];
        let listed: Vec<ServiceKey> = assemble(services, found)
            .into_iter()
            .map(|s| s.service.service.key)
            .collect();
        assert_eq!(listed, vec![key(1), key(3)]);
    }
}
