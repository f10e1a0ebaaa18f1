//! The requests behind each handle method, as sans-IO jobs: what is sent,
//! and how the replies become model values. Both handles run these.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::Error;
use crate::model::{DestinationStatus, Info, ServiceKey, ServiceStatus, SyncDaemon, Timeouts};
use crate::netlink::exchange::{Batch, Dump, Expect, Job, Map, Sequence};
use crate::netlink::{Command, CommandAttribute, DaemonAttribute, IpvsMessage, ServiceAttribute};
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

fn service_nest(message: &IpvsMessage) -> Option<&[ServiceAttribute]> {
    message.attributes.iter().find_map(|a| match a {
        CommandAttribute::Service(s) => Some(s.as_slice()),
        _ => None,
    })
}

fn parse_services(replies: Vec<IpvsMessage>) -> Result<Vec<ServiceStatus>, Error> {
    replies
        .iter()
        .filter_map(service_nest)
        .map(|s| ServiceStatus::from_attributes(s).map_err(invalid(Command::GetService)))
        .collect()
}

fn parse_destinations(
    replies: Vec<IpvsMessage>,
    key: &ServiceKey,
) -> Result<Vec<DestinationStatus>, Error> {
    let family = key.family();
    replies
        .iter()
        .flat_map(|m| &m.attributes)
        .filter_map(|a| match a {
            CommandAttribute::Destination(d) => Some(d),
            _ => None,
        })
        .map(|d| {
            DestinationStatus::from_attributes(d, family).map_err(invalid(Command::GetDestination))
        })
        .collect()
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
    Map {
        job: Dump::new(IpvsMessage::new(Command::GetService, vec![])),
        f: parse_services,
    }
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
            parse_services(vec![reply])?
                .pop()
                .ok_or(Error::MissingReply(Command::GetService))
        },
    }
}

fn destinations_request(key: &ServiceKey) -> IpvsMessage {
    IpvsMessage::new(
        Command::GetDestination,
        vec![CommandAttribute::Service(key.to_attributes())],
    )
}

pub(crate) fn destinations(key: &ServiceKey) -> impl Job<Output = Vec<DestinationStatus>> {
    let key = *key;
    Map {
        job: Dump::new(destinations_request(&key)),
        f: move |replies| parse_destinations(replies, &key),
    }
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
    fn next_request(state: &mut State<'_>) -> Option<IpvsMessage> {
        state.current = state.next.fetch_add(1, Ordering::Relaxed);
        state
            .services
            .get(state.current)
            .map(|s| destinations_request(&s.service.key))
    }
    fn absorb(
        state: &mut State<'_>,
        replies: Result<Vec<IpvsMessage>, Error>,
    ) -> Result<(), Error> {
        let destinations = match replies {
            // Deleted since the service dump: it is no longer listed.
            Err(Error::Kernel {
                errno: nix::errno::Errno::ESRCH,
                ..
            }) => None,
            replies => Some(parse_destinations(
                replies?,
                &state.services[state.current].service.key,
            )?),
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
            next_request,
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
