//! The requests behind each handle method, as sans-IO jobs: what is sent,
//! and how the replies become model values. Both handles run these.

use std::sync::atomic::{AtomicUsize, Ordering};

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
/// ([`crate::netlink::reply::service`]).
#[derive(Debug, Default)]
struct ServiceList(Vec<ServiceStatus>);

impl Collect for ServiceList {
    type Output = Vec<ServiceStatus>;
    fn reply(&mut self, command: Command, attributes: &[u8]) -> Result<(), Error> {
        self.0
            .extend(crate::netlink::reply::service(command, attributes)?);
        Ok(())
    }
    fn clear(&mut self) {
        self.0.clear();
    }
    fn finish(self) -> Vec<ServiceStatus> {
        self.0
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

/// What [`destination_lists`] found: per service index, its destinations,
/// or `None` when the service was deleted after the service dump.
pub(crate) type Found = Vec<(usize, Option<Vec<DestinationStatus>>)>;

/// The destination dumps of the services whose indexes this job takes from
/// `next`, one dump after the other. Several jobs sharing `next`, each on its
/// own socket, split the services between them.
pub(crate) fn destination_lists<'a>(
    services: &'a [ServiceStatus],
    next: &'a AtomicUsize,
) -> impl Job<Output = Found> + 'a {
    struct State<'a> {
        services: &'a [ServiceStatus],
        next: &'a AtomicUsize,
        current: usize,
        found: Found,
    }
    fn next_dump(state: &mut State<'_>) -> Option<Dump<DestinationList>> {
        state.current = state.next.fetch_add(1, Ordering::Relaxed);
        state
            .services
            .get(state.current)
            .map(|s| destinations_dump(&s.service.key))
    }
    fn absorb(
        state: &mut State<'_>,
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
        state.found.push((state.current, destinations));
        Ok(())
    }
    Map {
        job: Sequence::new(
            State {
                services,
                next,
                current: 0,
                found: Vec::new(),
            },
            next_dump,
            absorb,
        ),
        f: |state: State<'_>| Ok(state.found),
    }
}

/// The services of a service dump with the destinations found for them, in
/// the dump's order; services deleted in between are left out.
pub(crate) fn assemble(
    services: Vec<ServiceStatus>,
    found: impl IntoIterator<Item = (usize, Option<Vec<DestinationStatus>>)>,
) -> Vec<ServiceState> {
    let mut destinations: Vec<Option<Vec<DestinationStatus>>> = vec![None; services.len()];
    for (index, list) in found {
        destinations[index] = list;
    }
    services
        .into_iter()
        .zip(destinations)
        .filter_map(|(service, destinations)| {
            destinations.map(|destinations| ServiceState {
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
