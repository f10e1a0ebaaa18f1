//! Property tests: codec round trips (model → attributes → bytes → parse →
//! model, and bytes → parse → bytes), a parser that never panics, and the
//! reconcile plan's idempotence and minimality.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lvskit_ipvs::netlink::{
    Command, CommandAttribute, Counter, DestinationAttribute, IpvsMessage, ServiceAttribute,
    StatsAttribute, decode_datagram, reply,
};
use lvskit_ipvs::reconcile::{self, Desired, DesiredService, Operation, ServiceState};
use lvskit_ipvs::{
    DaemonState, Destination, DestinationStatus, Family, ForwardingMethod, Netmask, Protocol,
    SchedulerName, Service, ServiceFlags, ServiceKey, ServiceStatus, Stats, SyncDaemon,
    TunnelFlags, TunnelType,
};
use netlink_packet_core::NetlinkPayload;
use proptest::prelude::*;

fn address() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    ]
}

fn service_key() -> impl Strategy<Value = ServiceKey> {
    prop_oneof![
        (
            prop_oneof![
                Just(Protocol::Tcp),
                Just(Protocol::Udp),
                Just(Protocol::Sctp)
            ],
            address(),
            any::<u16>()
        )
            .prop_map(|(protocol, address, port)| ServiceKey::Address {
                protocol,
                address,
                port
            }),
        (prop_oneof![Just(Family::Ipv4), Just(Family::Ipv6)], 1u32..)
            .prop_map(|(family, mark)| ServiceKey::Fwmark { family, mark }),
    ]
}

fn scheduler() -> impl Strategy<Value = SchedulerName> {
    prop_oneof![
        proptest::sample::select(SchedulerName::ALL.to_vec()),
        "[a-z]{5,8}".prop_map(|s| SchedulerName::from(s.as_str())),
    ]
}

fn service() -> impl Strategy<Value = Service> {
    (
        service_key(),
        scheduler(),
        any::<u32>(),
        any::<u32>(),
        any::<Option<u8>>(),
        proptest::option::of("[a-z]{1,8}"),
    )
        .prop_map(|(key, scheduler, flags, timeout, mask, pe)| {
            let netmask = mask.map(|m| match key.family() {
                Family::Ipv4 => Netmask::Ipv4(Ipv4Addr::from(u32::MAX << (m % 32))),
                Family::Ipv6 => Netmask::Ipv6Prefix(m % 129),
            });
            Service {
                key,
                scheduler,
                flags: ServiceFlags::from_bits_retain(flags),
                timeout,
                netmask,
                persistence_engine: pe,
            }
        })
}

fn forwarding() -> impl Strategy<Value = ForwardingMethod> {
    prop_oneof![
        Just(ForwardingMethod::Masq),
        Just(ForwardingMethod::Local),
        Just(ForwardingMethod::DirectRoute),
        Just(ForwardingMethod::Bypass),
        (0u8..5, any::<u16>(), 0u16..4).prop_map(|(t, port, flags)| ForwardingMethod::Tunnel {
            tunnel_type: match t {
                0 => TunnelType::Ipip,
                1 => TunnelType::Gue,
                2 => TunnelType::Gre,
                n => TunnelType::Other(n),
            },
            port,
            flags: TunnelFlags::from_bits_retain(flags),
        }),
    ]
}

fn destination() -> impl Strategy<Value = Destination> {
    (
        address(),
        any::<u16>(),
        forwarding(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(address, port, forwarding, weight, upper, lower)| Destination {
                address,
                port,
                forwarding,
                weight,
                upper_threshold: upper,
                lower_threshold: lower,
            },
        )
}

/// A statistics nest as the kernel sends it: `STATS` with 32-bit counters
/// (bytes 64-bit), `STATS64` with a `PAD` before each 64-bit counter.
fn stats_nest(seed: u64, wide: bool) -> Vec<StatsAttribute> {
    use StatsAttribute::*;
    let counters: [fn(Counter) -> StatsAttribute; 10] = [
        Connections,
        InPackets,
        OutPackets,
        InBytes,
        OutBytes,
        ConnectionRate,
        InPacketRate,
        OutPacketRate,
        InByteRate,
        OutByteRate,
    ];
    let mut nest = Vec::new();
    for (i, counter) in counters.iter().enumerate() {
        let value = seed.wrapping_mul(i as u64 + 1);
        if wide || i == 3 || i == 4 {
            if wide {
                nest.push(Pad(vec![]));
            }
            nest.push(counter(Counter::U64(value)));
        } else {
            nest.push(counter(Counter::U32(value as u32)));
        }
    }
    nest
}

/// The genl payload of a kernel dump reply for `s` and of one for `d`,
/// with statistics and connection counts.
fn dump_replies(s: &Service, d: &Destination, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut service = s.to_attributes();
    service.push(ServiceAttribute::Stats(stats_nest(seed, false)));
    service.push(ServiceAttribute::Stats64(stats_nest(seed ^ 1, true)));
    let mut destination = d.to_attributes();
    destination.extend([
        DestinationAttribute::ActiveConnections(seed as u32),
        DestinationAttribute::InactiveConnections((seed >> 32) as u32),
        DestinationAttribute::PersistentConnections(3),
        DestinationAttribute::Stats(stats_nest(seed, false)),
        DestinationAttribute::Stats64(stats_nest(seed ^ 2, true)),
    ]);
    let payload = |command, attribute| {
        IpvsMessage::new(command, vec![attribute]).to_netlink_bytes(0x20, 2, 1, 0)[20..].to_vec()
    };
    (
        payload(Command::NewService, CommandAttribute::Service(service)),
        payload(
            Command::NewDestination,
            CommandAttribute::Destination(destination),
        ),
    )
}

/// What a decoder made of a reply, errors reduced to their kind and text.
type Outcome<T> = Result<T, String>;

/// A reply's service and destinations, as a decoder made them.
type Decoded = (
    Outcome<Option<ServiceStatus>>,
    Outcome<Vec<DestinationStatus>>,
);

fn outcome<T>(result: Result<T, lvskit_ipvs::Error>) -> Outcome<T> {
    result.map_err(|e| match e {
        lvskit_ipvs::Error::Malformed { source, .. } => format!("malformed: {source}"),
        lvskit_ipvs::Error::Invalid { source, .. } => format!("invalid: {source}"),
        other => panic!("unexpected error {other}"),
    })
}

/// A reply through the attribute enums, then the model.
fn via_attributes(command: Command, payload: &[u8], family: Family) -> Decoded {
    match IpvsMessage::parse_payload(command, payload) {
        Ok(m) => (
            m.service_status().map_err(|e| format!("invalid: {e}")),
            m.destination_statuses(family)
                .map_err(|e| format!("invalid: {e}")),
        ),
        Err(e) => (
            Err(format!("malformed: {e}")),
            Err(format!("malformed: {e}")),
        ),
    }
}

/// The same reply decoded straight into the model.
fn direct(command: Command, payload: &[u8], family: Family) -> Decoded {
    let mut destinations = Vec::new();
    let listed = reply::destinations(command, payload, family, &mut destinations);
    (
        outcome(reply::service(command, payload)),
        outcome(listed.map(|()| destinations)),
    )
}

fn through_wire(message: &IpvsMessage) -> IpvsMessage {
    let bytes = message.to_netlink_bytes(0x20, 5, 7, 0);
    let mut decoded = decode_datagram(&bytes).expect("decodes");
    let NetlinkPayload::InnerMessage(genl) = decoded.remove(0).payload else {
        panic!("not an IPVS message")
    };
    assert_eq!(genl.payload.to_netlink_bytes(0x20, 5, 7, 0), bytes);
    genl.payload
}

proptest! {
    #[test]
    fn service_round_trips(s in service()) {
        let m = through_wire(&Operation::AddService(s.clone()).to_message());
        let CommandAttribute::Service(attrs) = &m.attributes[0] else { panic!() };
        let back = Service::from_attributes(attrs).unwrap();
        let mut expected = s.clone();
        expected.netmask = Some(s.effective_netmask());
        prop_assert_eq!(back, expected);
    }

    #[test]
    fn destination_round_trips(key in service_key(), d in destination()) {
        let op = Operation::AddDestination { service: key, destination: d.clone() };
        let m = through_wire(&op.to_message());
        let CommandAttribute::Destination(attrs) = &m.attributes[1] else { panic!() };
        prop_assert_eq!(Destination::from_attributes(attrs, key.family()).unwrap(), d);
        let CommandAttribute::Service(attrs) = &m.attributes[0] else { panic!() };
        prop_assert_eq!(ServiceKey::from_attributes(attrs).unwrap(), key);
    }

    #[test]
    fn daemon_round_trips(
        backup in any::<bool>(),
        interface in "[a-z0-9]{1,15}",
        sync_id in 0u32..256,
        max_len in any::<Option<u16>>(),
        group in proptest::option::of(address()),
        port in any::<Option<u16>>(),
        ttl in any::<Option<u8>>(),
    ) {
        let d = SyncDaemon {
            state: if backup { DaemonState::Backup } else { DaemonState::Master },
            interface, sync_id, max_len, group, port, ttl,
        };
        let m = through_wire(&IpvsMessage::new(
            Command::NewDaemon,
            vec![CommandAttribute::Daemon(d.to_attributes())],
        ));
        let CommandAttribute::Daemon(attrs) = &m.attributes[0] else { panic!() };
        prop_assert_eq!(SyncDaemon::from_attributes(attrs).unwrap(), d);
    }

    /// Arbitrary bytes never panic the decoder; what decodes re-emits.
    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_datagram(&bytes);
    }

    /// Mutating a valid message never panics the decoder nor the model.
    #[test]
    fn mutated_messages_never_panic(s in service(), d in destination(), at in any::<usize>(), byte in any::<u8>()) {
        let op = Operation::AddDestination { service: s.key, destination: d };
        let mut bytes = op.to_message().to_netlink_bytes(0x20, 5, 1, 0);
        let i = at % bytes.len();
        bytes[i] = byte;
        if let Ok(messages) = decode_datagram(&bytes) {
            for m in messages {
                if let NetlinkPayload::InnerMessage(genl) = m.payload {
                    for a in &genl.payload.attributes {
                        match a {
                            CommandAttribute::Service(s) => { let _ = ServiceStatus::from_attributes(s); }
                            CommandAttribute::Destination(d) => { let _ = DestinationStatus::from_attributes(d, Family::Ipv4); }
                            _ => {}
                        }
                    }
                }
            }
        }
    }

    /// Dump replies decoded straight into the model give what the attribute
    /// enums and `from_attributes` give, intact or with bytes overwritten:
    /// the same values, or errors of the same kind and text.
    #[test]
    fn direct_decode_matches_attributes(
        s in service(),
        d in destination(),
        seed in any::<u64>(),
        changes in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
    ) {
        let (mut service, mut destination) = dump_replies(&s, &d, seed);
        let family = s.key.family();
        for (at, byte) in &changes {
            let i = at % service.len();
            service[i] = *byte;
            let i = at % destination.len();
            destination[i] = *byte;
        }
        for (command, payload) in [(Command::NewService, &service), (Command::NewDestination, &destination)] {
            prop_assert_eq!(direct(command, payload, family), via_attributes(command, payload, family));
        }
        if changes.is_empty() {
            let (service, destinations) = direct(Command::NewService, &service, family);
            let service = service.unwrap().unwrap();
            prop_assert_eq!(service.stats.connections, seed ^ 1, "STATS64 wins");
            prop_assert_eq!(&service.service.key, &s.key);
            prop_assert_eq!(destinations, Ok(vec![]));
            let (_, destinations) = direct(Command::NewDestination, &destination, family);
            let destinations = destinations.unwrap();
            prop_assert_eq!(&destinations[0].destination, &d);
            prop_assert_eq!(destinations[0].stats.in_packets, (seed ^ 2).wrapping_mul(2));
        }
    }

    /// Applying a plan to the state it was computed from gives the desired
    /// state, and planning again gives no operation.
    #[test]
    fn plan_is_idempotent(
        current in proptest::collection::vec((service(), proptest::collection::vec(destination(), 0..4)), 0..6),
        desired in proptest::collection::vec((service(), proptest::collection::vec(destination(), 0..4)), 0..6),
    ) {
        let state: Vec<ServiceState> = dedup(current).into_iter().map(|(s, ds)| to_state(s, ds)).collect();
        let desired = Desired {
            services: dedup(desired)
                .into_iter()
                .map(|(service, destinations)| DesiredService { service, destinations })
                .collect(),
            scope: Default::default(),
        };
        let plan = reconcile::plan(&state, &desired).unwrap();
        prop_assert!(plan.operations.iter().all(|op| !matches!(op, Operation::DeleteService(k) if desired.services.iter().any(|d| d.service.key == *k))));
        let after = simulate(state, &plan.operations);
        prop_assert!(reconcile::plan(&after, &desired).unwrap().is_empty());
    }
}

fn dedup(list: Vec<(Service, Vec<Destination>)>) -> Vec<(Service, Vec<Destination>)> {
    let mut seen = std::collections::BTreeSet::new();
    list.into_iter()
        .filter(|(s, _)| seen.insert(s.key))
        .map(|(s, ds)| {
            let mut dseen = std::collections::BTreeSet::new();
            (
                s,
                ds.into_iter().filter(|d| dseen.insert(d.key())).collect(),
            )
        })
        .collect()
}

fn to_state(service: Service, destinations: Vec<Destination>) -> ServiceState {
    ServiceState {
        service: ServiceStatus {
            service,
            stats: Stats::default(),
        },
        destinations: destinations
            .into_iter()
            .map(|destination| DestinationStatus {
                destination,
                active_connections: 0,
                inactive_connections: 0,
                persistent_connections: 0,
                stats: Stats::default(),
            })
            .collect(),
    }
}

/// What the kernel does with each operation (a model of
/// `ip_vs_genl_set_cmd`, for the property above only).
fn simulate(mut state: Vec<ServiceState>, ops: &[Operation]) -> Vec<ServiceState> {
    for op in ops {
        match op {
            Operation::AddService(s) => state.push(to_state(s.clone(), vec![])),
            Operation::EditService(s) => {
                let e = state
                    .iter_mut()
                    .find(|e| e.service.service.key == s.key)
                    .unwrap();
                e.service.service = s.clone();
            }
            Operation::DeleteService(k) => state.retain(|e| e.service.service.key != *k),
            Operation::AddDestination {
                service,
                destination,
            } => {
                let e = state
                    .iter_mut()
                    .find(|e| e.service.service.key == *service)
                    .unwrap();
                e.destinations.push(
                    to_state(e.service.service.clone(), vec![destination.clone()])
                        .destinations
                        .remove(0),
                );
            }
            Operation::EditDestination {
                service,
                destination,
            } => {
                let e = state
                    .iter_mut()
                    .find(|e| e.service.service.key == *service)
                    .unwrap();
                let d = e
                    .destinations
                    .iter_mut()
                    .find(|d| d.destination.key() == destination.key())
                    .unwrap();
                d.destination = destination.clone();
            }
            Operation::DeleteDestination {
                service,
                destination,
            } => {
                let e = state
                    .iter_mut()
                    .find(|e| e.service.service.key == *service)
                    .unwrap();
                e.destinations
                    .retain(|d| d.destination.key() != *destination);
            }
            _ => unreachable!(),
        }
    }
    state
}

/// A single weight change is exactly one SET_DEST; nothing is deleted.
#[test]
fn weight_change_is_one_edit() {
    let key = ServiceKey::Address {
        protocol: Protocol::Tcp,
        address: "192.0.2.1".parse().unwrap(),
        port: 80,
    };
    let service = Service::new(key, SchedulerName::Wrr);
    let dests: Vec<Destination> = (1..=4)
        .map(|i| {
            Destination::new(
                format!("10.0.0.{i}").parse().unwrap(),
                80,
                ForwardingMethod::DirectRoute,
            )
        })
        .collect();
    let state = vec![to_state(service.clone(), dests.clone())];
    let mut wanted = dests.clone();
    wanted[2].weight = 9;
    let desired = Desired {
        services: vec![DesiredService {
            service,
            destinations: wanted.clone(),
        }],
        scope: Default::default(),
    };
    let plan = reconcile::plan(&state, &desired).unwrap();
    assert_eq!(
        plan.operations,
        vec![Operation::EditDestination {
            service: key,
            destination: wanted[2].clone()
        }]
    );
}

/// A scheduler change is an edit, not a delete and re-add; services outside
/// the scope are left alone.
#[test]
fn scheduler_change_is_an_edit_and_scope_is_respected() {
    let mine = ServiceKey::Address {
        protocol: Protocol::Tcp,
        address: "192.0.2.1".parse().unwrap(),
        port: 80,
    };
    let theirs = ServiceKey::Address {
        protocol: Protocol::Tcp,
        address: "192.0.2.2".parse().unwrap(),
        port: 80,
    };
    let state = vec![
        to_state(Service::new(mine, SchedulerName::Rr), vec![]),
        to_state(Service::new(theirs, SchedulerName::Rr), vec![]),
    ];
    let desired = Desired {
        services: vec![DesiredService {
            service: Service::new(mine, SchedulerName::Mh),
            destinations: vec![],
        }],
        scope: lvskit_ipvs::Scope::Addresses(["192.0.2.1".parse().unwrap()].into()),
    };
    let plan = reconcile::plan(&state, &desired).unwrap();
    assert_eq!(
        plan.operations,
        vec![Operation::EditService(Service::new(
            mine,
            SchedulerName::Mh
        ))]
    );
}

/// Duplicates in the desired state are a typed error.
#[test]
fn duplicate_desired_service_is_an_error() {
    let key = ServiceKey::Fwmark {
        family: Family::Ipv4,
        mark: 1,
    };
    let s = DesiredService {
        service: Service::new(key, SchedulerName::Rr),
        destinations: vec![],
    };
    let desired = Desired {
        services: vec![s.clone(), s],
        scope: Default::default(),
    };
    assert_eq!(
        reconcile::plan(&[], &desired),
        Err(reconcile::DesiredError::DuplicateService(key))
    );
}

/// The desired state reads from JSON.
#[test]
fn desired_state_from_json() {
    let json = r#"{
        "scope": {"addresses": ["192.0.2.1"]},
        "services": [{
            "key": {"address": {"protocol": "tcp", "address": "192.0.2.1", "port": 80}},
            "scheduler": "wlc",
            "destinations": [
                {"address": "10.0.0.1", "port": 80, "forwarding": "direct_route", "weight": 3},
                {"address": "2001:db8::1", "port": 80,
                 "forwarding": {"tunnel": {"tunnel_type": "gue", "port": 6080}}, "weight": 1}
            ]
        }]
    }"#;
    let desired: Desired = serde_json::from_str(json).unwrap();
    assert_eq!(desired.services[0].service.scheduler, SchedulerName::Wlc);
    assert_eq!(
        desired.services[0].destinations[0].forwarding,
        ForwardingMethod::DirectRoute
    );
    assert_eq!(
        desired.services[0].destinations[1].forwarding,
        ForwardingMethod::Tunnel {
            tunnel_type: TunnelType::Gue,
            port: 6080,
            flags: TunnelFlags::empty()
        }
    );
    let again: Desired = serde_json::from_str(&serde_json::to_string(&desired).unwrap()).unwrap();
    assert_eq!(again, desired);
}

/// Found by the fuzz target: a NOOP message whose length field covers
/// bytes the decoder drops must still serialise without panicking.
#[test]
fn decoded_noop_with_long_length_serialises() {
    let mut bytes = vec![0u8; 104];
    bytes[0] = 104;
    bytes[4] = 1; // NLMSG_NOOP
    for m in decode_datagram(&bytes).unwrap() {
        let mut out = vec![0u8; m.buffer_len()];
        m.serialize(&mut out);
        assert_eq!(out.len(), 16);
    }
}
