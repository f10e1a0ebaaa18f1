//! Golden bytes: every test below reads `tests/golden/ipvsadm-6.1.txt`,
//! captured from `ipvsadm` v1.31 on Debian's kernel 6.1 inside a QEMU VM
//! with `strace -e trace=sendmsg,recvmsg -e write=all -e read=all` (the file
//! header says exactly how). Each test parses a captured datagram, compares
//! the result with the expected model value, and emits — either the parsed
//! message (lossless round trip) or the message this crate builds from the
//! model — and compares the bytes with the captured ones.

use std::net::{IpAddr, Ipv4Addr};

use lvskit_ipvs::netlink::{
    Command, CommandAttribute, IpvsMessage, ServiceAttribute, decode_datagram,
};
use lvskit_ipvs::{
    DaemonState, Destination, DestinationStatus, Errno, Family, ForwardingMethod, Netmask,
    Operation, Protocol, SchedulerName, Service, ServiceFlags, ServiceKey, ServiceStatus,
    SyncDaemon, Timeouts, TunnelFlags, TunnelType,
};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_generic::GenlMessage;

/// The IPVS family id in the capture's boot.
const FAMILY: u16 = 0x20;

struct Capture {
    command: String,
    datagrams: Vec<(bool, Vec<u8>)>,
}

fn captures() -> Vec<Capture> {
    let text = include_str!("golden/ipvsadm-6.1.txt");
    let mut out: Vec<Capture> = Vec::new();
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("## ipvsadm ") {
            out.push(Capture {
                command: c.to_string(),
                datagrams: Vec::new(),
            });
        } else if let Some((dir, hex)) = line.split_once(' ')
            && (dir == "send" || dir == "recv")
        {
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect();
            out.last_mut()
                .expect("a command first")
                .datagrams
                .push((dir == "send", bytes));
        }
    }
    out
}

fn capture(command: &str) -> Capture {
    captures()
        .into_iter()
        .find(|c| c.command == command)
        .unwrap_or_else(|| panic!("no capture of `ipvsadm {command}`"))
}

type Message = NetlinkMessage<GenlMessage<IpvsMessage>>;

fn ipvs_of(message: &Message) -> Option<&IpvsMessage> {
    match &message.payload {
        NetlinkPayload::InnerMessage(genl) => Some(&genl.payload),
        _ => None,
    }
}

/// The datagram ipvsadm sent for `command` (skipping its GET_INFO).
fn sent(capture: &Capture, command: Command) -> Vec<u8> {
    capture
        .datagrams
        .iter()
        .filter(|(send, _)| *send)
        .map(|(_, b)| b.clone())
        .find(|b| {
            let m = decode_datagram(b).expect("decodes");
            ipvs_of(&m[0]).map(|i| i.command) == Some(command)
        })
        .unwrap_or_else(|| panic!("{}: no {command:?} sent", capture.command))
}

fn received(capture: &Capture) -> Vec<Message> {
    capture
        .datagrams
        .iter()
        .filter(|(send, _)| !*send)
        .flat_map(|(_, b)| decode_datagram(b).expect("decodes"))
        .collect()
}

fn parse_one(bytes: &[u8]) -> Message {
    let mut messages = decode_datagram(bytes).expect("decodes");
    assert_eq!(messages.len(), 1);
    messages.pop().unwrap()
}

/// Our request for `message`, with the captured header's flags, sequence
/// number and port id, must equal the captured bytes.
fn assert_emits_as_ipvsadm(message: &IpvsMessage, captured: &[u8]) {
    let header = parse_one(captured).header;
    let ours = message.to_netlink_bytes(
        FAMILY,
        header.flags,
        header.sequence_number,
        header.port_number,
    );
    assert_eq!(
        hex(&ours),
        hex(captured),
        "emitted bytes differ from ipvsadm's"
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn service_nest(m: &IpvsMessage) -> &[ServiceAttribute] {
    m.attributes
        .iter()
        .find_map(|a| match a {
            CommandAttribute::Service(s) => Some(s.as_slice()),
            _ => None,
        })
        .expect("service nest")
}

fn dest_nest(m: &IpvsMessage) -> &[lvskit_ipvs::netlink::DestinationAttribute] {
    m.attributes
        .iter()
        .find_map(|a| match a {
            CommandAttribute::Destination(d) => Some(d.as_slice()),
            _ => None,
        })
        .expect("destination nest")
}

fn v4(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Address {
        protocol: Protocol::Tcp,
        address: v4(addr),
        port,
    }
}

/// Every captured datagram, sent or received, parses and re-emits to the
/// same bytes.
#[test]
fn every_captured_datagram_round_trips() {
    let mut count = 0;
    for capture in captures() {
        for (_, bytes) in &capture.datagrams {
            let messages =
                decode_datagram(bytes).unwrap_or_else(|e| panic!("{}: {e}", capture.command));
            let mut again = Vec::new();
            for m in &messages {
                let mut buf = vec![0xa5; m.buffer_len()];
                m.serialize(&mut buf);
                again.extend_from_slice(&buf);
                // Padding between messages is part of the datagram.
                again.resize(again.len().next_multiple_of(4), 0);
            }
            again.truncate(bytes.len());
            assert_eq!(hex(&again), hex(bytes), "{}", capture.command);
            count += messages.len();
        }
    }
    assert!(count > 200, "only {count} messages captured");
}

/// `ipvsadm -A -t 10.0.0.1:80 -s wrr`: IPv4 TCP service, no persistence
/// (timeout 0, netmask 255.255.255.255), flags 0 with an all-ones mask.
#[test]
fn new_service_ipv4_tcp() {
    let bytes = sent(&capture("-A -t 10.0.0.1:80 -s wrr"), Command::NewService);
    let m = parse_one(&bytes);
    let service = Service::from_attributes(service_nest(ipvs_of(&m).unwrap())).unwrap();
    let mut expected = Service::new(tcp("10.0.0.1", 80), SchedulerName::Wrr);
    expected.netmask = Some(Netmask::Ipv4(Ipv4Addr::BROADCAST));
    assert_eq!(service, expected);
    assert_emits_as_ipvsadm(&Operation::AddService(expected).to_message(), &bytes);
}

/// `ipvsadm -A -u [2001:db8::1]:53 -s rr -p 300 -M 64`: IPv6 netmask is a
/// prefix length in host order (`40 00 00 00`), not a 16-byte mask.
#[test]
fn new_service_ipv6_persistent_prefix() {
    let bytes = sent(
        &capture("-A -u [2001:db8::1]:53 -s rr -p 300 -M 64"),
        Command::NewService,
    );
    let service =
        Service::from_attributes(service_nest(ipvs_of(&parse_one(&bytes)).unwrap())).unwrap();
    let mut expected = Service::new(
        ServiceKey::Address {
            protocol: Protocol::Udp,
            address: "2001:db8::1".parse().unwrap(),
            port: 53,
        },
        SchedulerName::Rr,
    );
    expected.flags = ServiceFlags::PERSISTENT;
    expected.timeout = 300;
    expected.netmask = Some(Netmask::Ipv6Prefix(64));
    assert_eq!(service, expected);
    assert_emits_as_ipvsadm(&Operation::AddService(expected).to_message(), &bytes);
}

/// `ipvsadm -A -f 42 -6 -s mh -b mh-fallback,mh-port`: fwmark in host order,
/// scheduler flags SCHED1|SCHED2.
#[test]
fn new_service_fwmark_ipv6_mh_flags() {
    let bytes = sent(
        &capture("-A -f 42 -6 -s mh -b mh-fallback,mh-port"),
        Command::NewService,
    );
    let service =
        Service::from_attributes(service_nest(ipvs_of(&parse_one(&bytes)).unwrap())).unwrap();
    let mut expected = Service::new(
        ServiceKey::Fwmark {
            family: Family::Ipv6,
            mark: 42,
        },
        SchedulerName::Mh,
    );
    expected.flags = ServiceFlags::MH_FALLBACK | ServiceFlags::MH_PORT;
    expected.netmask = Some(Netmask::Ipv6Prefix(128));
    assert_eq!(service, expected);
    assert_emits_as_ipvsadm(&Operation::AddService(expected).to_message(), &bytes);
}

/// `ipvsadm -A -f 7 -s sh -b sh-fallback,sh-port -p 600 -M 255.255.255.0`:
/// an IPv4 mask in network order (`ff ff ff 00`).
#[test]
fn new_service_fwmark_ipv4_sh_persistent_mask() {
    let bytes = sent(
        &capture("-A -f 7 -s sh -b sh-fallback,sh-port -p 600 -M 255.255.255.0"),
        Command::NewService,
    );
    let service =
        Service::from_attributes(service_nest(ipvs_of(&parse_one(&bytes)).unwrap())).unwrap();
    let mut expected = Service::new(
        ServiceKey::Fwmark {
            family: Family::Ipv4,
            mark: 7,
        },
        SchedulerName::Sh,
    );
    expected.flags = ServiceFlags::PERSISTENT | ServiceFlags::SH_FALLBACK | ServiceFlags::SH_PORT;
    expected.timeout = 600;
    expected.netmask = Some(Netmask::Ipv4(Ipv4Addr::new(255, 255, 255, 0)));
    assert_eq!(service, expected);
    assert_emits_as_ipvsadm(&Operation::AddService(expected).to_message(), &bytes);
}

/// `ipvsadm -A -u 10.0.0.3:5060 -s lc -p 60 --pe sip`: PE_NAME follows the
/// scheduler name.
#[test]
fn new_service_persistence_engine() {
    let c = capture("-A -u 10.0.0.3:5060 -s lc -p 60 --pe sip");
    let bytes = sent(&c, Command::NewService);
    let service =
        Service::from_attributes(service_nest(ipvs_of(&parse_one(&bytes)).unwrap())).unwrap();
    let mut expected = Service::new(
        ServiceKey::Address {
            protocol: Protocol::Udp,
            address: v4("10.0.0.3"),
            port: 5060,
        },
        SchedulerName::Lc,
    );
    expected.flags = ServiceFlags::PERSISTENT;
    expected.timeout = 60;
    expected.netmask = Some(Netmask::Ipv4(Ipv4Addr::BROADCAST));
    expected.persistence_engine = Some("sip".into());
    assert_eq!(service, expected);
    assert_emits_as_ipvsadm(&Operation::AddService(expected).to_message(), &bytes);
}

/// `ipvsadm -A -u 10.0.0.4:53 -s wlc -o`: one-packet scheduling flag.
#[test]
fn new_service_one_packet() {
    let bytes = sent(&capture("-A -u 10.0.0.4:53 -s wlc -o"), Command::NewService);
    let service =
        Service::from_attributes(service_nest(ipvs_of(&parse_one(&bytes)).unwrap())).unwrap();
    assert_eq!(service.flags, ServiceFlags::ONE_PACKET);
    assert_emits_as_ipvsadm(&Operation::AddService(service).to_message(), &bytes);
}

/// `ipvsadm -E -t 10.0.0.1:80 -s wlc -p 120`: SET_SERVICE.
#[test]
fn set_service() {
    let bytes = sent(
        &capture("-E -t 10.0.0.1:80 -s wlc -p 120"),
        Command::SetService,
    );
    let service =
        Service::from_attributes(service_nest(ipvs_of(&parse_one(&bytes)).unwrap())).unwrap();
    let mut expected = Service::new(tcp("10.0.0.1", 80), SchedulerName::Wlc);
    expected.flags = ServiceFlags::PERSISTENT;
    expected.timeout = 120;
    expected.netmask = Some(Netmask::Ipv4(Ipv4Addr::BROADCAST));
    assert_eq!(service, expected);
    assert_emits_as_ipvsadm(&Operation::EditService(expected).to_message(), &bytes);
}

/// ipvsadm sends a destination request with the whole service nest; our
/// destination nest must equal its destination nest byte for byte.
fn check_destination(command: &str, cmd: Command, expected: &Destination) {
    let bytes = sent(&capture(command), cmd);
    let m = parse_one(&bytes);
    let ipvs = ipvs_of(&m).unwrap();
    let key = ServiceKey::from_attributes(service_nest(ipvs)).unwrap();
    let dest = Destination::from_attributes(dest_nest(ipvs), key.family()).unwrap();
    assert_eq!(&dest, expected, "{command}");
    let rebuilt = IpvsMessage::new(
        cmd,
        vec![
            CommandAttribute::Service(service_nest(ipvs).to_vec()),
            CommandAttribute::Destination(expected.to_attributes()),
        ],
    );
    assert_emits_as_ipvsadm(&rebuilt, &bytes);
}

/// `-g -w 5`: direct routing; ipvsadm rewrites the port to the service's.
#[test]
fn new_destination_direct_route() {
    let mut d = Destination::new(v4("192.168.1.10"), 80, ForwardingMethod::DirectRoute);
    d.weight = 5;
    check_destination(
        "-a -t 10.0.0.1:80 -r 192.168.1.10:8080 -g -w 5",
        Command::NewDestination,
        &d,
    );
}

/// `-m -w 3 -x 100 -y 10`: masquerading with thresholds.
#[test]
fn new_destination_masq_thresholds() {
    let mut d = Destination::new(v4("192.168.1.11"), 8080, ForwardingMethod::Masq);
    d.weight = 3;
    d.upper_threshold = 100;
    d.lower_threshold = 10;
    check_destination(
        "-a -t 10.0.0.1:80 -r 192.168.1.11:8080 -m -w 3 -x 100 -y 10",
        Command::NewDestination,
        &d,
    );
}

/// `-i --tun-type gue --tun-port 6080 --tun-remcsum`: TUN_TYPE (u8),
/// TUN_PORT (be16 `17 c0`), TUN_FLAGS (u16).
#[test]
fn new_destination_tunnel_gue() {
    let d = Destination::new(
        v4("192.168.1.12"),
        80,
        ForwardingMethod::Tunnel {
            tunnel_type: TunnelType::Gue,
            port: 6080,
            flags: TunnelFlags::REMCSUM,
        },
    );
    check_destination(
        "-a -t 10.0.0.1:80 -r 192.168.1.12:8080 -i --tun-type gue --tun-port 6080 --tun-remcsum -w 1",
        Command::NewDestination,
        &d,
    );
}

/// An IPv6 destination behind an IPv4 service (GRE tunnel): the
/// destination's ADDR_FAMILY says AF_INET6.
#[test]
fn new_destination_mixed_family() {
    let mut d = Destination::new(
        "2001:db8::20".parse().unwrap(),
        80,
        ForwardingMethod::Tunnel {
            tunnel_type: TunnelType::Gre,
            port: 0,
            flags: TunnelFlags::CSUM,
        },
    );
    d.weight = 2;
    check_destination(
        "-a -t 10.0.0.1:80 -r [2001:db8::20]:8080 -i --tun-type gre --tun-csum -w 2",
        Command::NewDestination,
        &d,
    );
}

/// `-e … -g -w 7`: SET_DEST.
#[test]
fn set_destination() {
    let mut d = Destination::new(v4("192.168.1.10"), 80, ForwardingMethod::DirectRoute);
    d.weight = 7;
    check_destination(
        "-e -t 10.0.0.1:80 -r 192.168.1.10:8080 -g -w 7",
        Command::SetDestination,
        &d,
    );
}

/// `ipvsadm --start-daemon master …`: sync id, maxlen (u16), port (u16 in
/// host order: `91 22` is 8849), ttl (u8), group.
#[test]
fn new_daemon_master() {
    let bytes = sent(
        &capture(
            "--start-daemon master --mcast-interface sync0 --syncid 5 --sync-maxlen 1400 --mcast-group 239.1.2.3 --mcast-port 8849 --mcast-ttl 2",
        ),
        Command::NewDaemon,
    );
    let expected = SyncDaemon {
        state: DaemonState::Master,
        interface: "sync0".into(),
        sync_id: 5,
        max_len: Some(1400),
        group: Some(v4("239.1.2.3")),
        port: Some(8849),
        ttl: Some(2),
    };
    let m = parse_one(&bytes);
    let CommandAttribute::Daemon(attrs) = &ipvs_of(&m).unwrap().attributes[0] else {
        panic!("daemon nest")
    };
    assert_eq!(SyncDaemon::from_attributes(attrs).unwrap(), expected);
    let ours = IpvsMessage::new(
        Command::NewDaemon,
        vec![CommandAttribute::Daemon(expected.to_attributes())],
    );
    assert_emits_as_ipvsadm(&ours, &bytes);
}

/// `ipvsadm --start-daemon backup … --mcast-group ff02::1:3`: MCAST_GROUP6.
#[test]
fn new_daemon_backup_ipv6_group() {
    let bytes = sent(
        &capture(
            "--start-daemon backup --mcast-interface sync0 --syncid 6 --mcast-group ff02::1:3",
        ),
        Command::NewDaemon,
    );
    let mut expected = SyncDaemon::new(DaemonState::Backup, "sync0", 6);
    expected.group = Some("ff02::1:3".parse().unwrap());
    let ours = IpvsMessage::new(
        Command::NewDaemon,
        vec![CommandAttribute::Daemon(expected.to_attributes())],
    );
    assert_emits_as_ipvsadm(&ours, &bytes);
}

/// `ipvsadm -L --daemon`: the dump reply holds one message per daemon; the
/// kernel filled in the backup's defaults (maxlen 1452, port 8848, ttl 1).
#[test]
fn get_daemon_reply() {
    let daemons: Vec<SyncDaemon> = received(&capture("-L --daemon"))
        .iter()
        .filter_map(ipvs_of)
        .flat_map(|m| &m.attributes)
        .filter_map(|a| match a {
            CommandAttribute::Daemon(d) => Some(SyncDaemon::from_attributes(d).unwrap()),
            _ => None,
        })
        .collect();
    let backup = SyncDaemon {
        state: DaemonState::Backup,
        interface: "sync0".into(),
        sync_id: 6,
        max_len: Some(1452),
        group: Some("ff02::1:3".parse().unwrap()),
        port: Some(8848),
        ttl: Some(1),
    };
    assert_eq!(daemons.len(), 2);
    assert_eq!(daemons[0].state, DaemonState::Master);
    assert_eq!(daemons[0].port, Some(8849));
    assert_eq!(daemons[1], backup);
}

/// `ipvsadm --set 900 120 300` and `-L --timeout`: SET_CONFIG and the
/// GET_CONFIG reply (command SET_CONFIG).
#[test]
fn set_and_get_config() {
    let bytes = sent(&capture("--set 900 120 300"), Command::SetConfig);
    let t = Timeouts {
        tcp: 900,
        tcp_fin: 120,
        udp: 300,
    };
    let ours = IpvsMessage::new(
        Command::SetConfig,
        vec![
            CommandAttribute::TimeoutTcp(t.tcp),
            CommandAttribute::TimeoutTcpFin(t.tcp_fin),
            CommandAttribute::TimeoutUdp(t.udp),
        ],
    );
    assert_emits_as_ipvsadm(&ours, &bytes);
    let reply = received(&capture("-L --timeout"));
    let config = reply
        .iter()
        .filter_map(ipvs_of)
        .find(|m| m.command == Command::SetConfig)
        .expect("config reply");
    assert_eq!(config.attributes, ours.attributes);
}

/// The GET_INFO reply (command SET_INFO) reuses numbers 1 and 2 for
/// version and connection-table size.
#[test]
fn get_info_reply() {
    let reply = received(&capture("-Z"));
    let info = reply
        .iter()
        .filter_map(ipvs_of)
        .find(|m| m.command == Command::SetInfo)
        .expect("info reply");
    assert_eq!(
        info.attributes,
        vec![
            CommandAttribute::InfoVersion(0x010201),
            CommandAttribute::InfoConnectionTableSize(4096)
        ]
    );
    assert_eq!(
        lvskit_ipvs::Info::from_raw(0x010201, 4096).version,
        (1, 2, 1)
    );
}

/// `ipvsadm -Z` and `ipvsadm -C`: bare ZERO and FLUSH.
#[test]
fn zero_and_flush() {
    assert_emits_as_ipvsadm(
        &IpvsMessage::new(Command::Zero, vec![]),
        &sent(&capture("-Z"), Command::Zero),
    );
    assert_emits_as_ipvsadm(
        &IpvsMessage::new(Command::Flush, vec![]),
        &sent(&capture("-C"), Command::Flush),
    );
    let bytes = sent(&capture("-Z -t 10.0.0.1:80"), Command::Zero);
    let m = parse_one(&bytes);
    assert_eq!(
        ServiceKey::from_attributes(service_nest(ipvs_of(&m).unwrap())).unwrap(),
        tcp("10.0.0.1", 80)
    );
}

/// `ipvsadm -Ln --exact --stats`: the service dump, every service with
/// STATS and STATS64 (the latter with PAD attributes), the HASHED flag set
/// by the kernel.
#[test]
fn service_dump_reply() {
    let messages = received(&capture("-Ln --exact --stats"));
    let services: Vec<ServiceStatus> = messages
        .iter()
        .filter_map(ipvs_of)
        .filter(|m| m.command == Command::NewService)
        .map(|m| ServiceStatus::from_attributes(service_nest(m)).unwrap())
        .collect();
    let keys: Vec<String> = services.iter().map(|s| s.service.key.to_string()).collect();
    assert_eq!(services.len(), 6, "{keys:?}");
    let web = services
        .iter()
        .find(|s| s.service.key == tcp("10.0.0.1", 80))
        .expect("10.0.0.1:80");
    assert_eq!(web.service.scheduler, SchedulerName::Wlc);
    assert_eq!(
        web.service.flags,
        ServiceFlags::PERSISTENT | ServiceFlags::HASHED
    );
    assert_eq!(web.service.timeout, 120);
    let mut configured = Service::new(tcp("10.0.0.1", 80), SchedulerName::Wlc);
    configured.flags = ServiceFlags::PERSISTENT;
    configured.timeout = 120;
    assert!(web.service.same_config(&configured));
    let fwm = services
        .iter()
        .find(|s| {
            s.service.key
                == ServiceKey::Fwmark {
                    family: Family::Ipv4,
                    mark: 7,
                }
        })
        .expect("fwmark 7");
    assert_eq!(
        fwm.service.netmask,
        Some(Netmask::Ipv4(Ipv4Addr::new(255, 255, 255, 0)))
    );
    // The dump ends with NLMSG_DONE.
    assert!(matches!(
        messages.last().unwrap().payload,
        NetlinkPayload::Done(_)
    ));
}

/// `ipvsadm -Ln --exact --stats -t 10.0.0.1:80`: the destination dump,
/// with IPv6 and IPv4 destinations, tunnel settings and statistics.
#[test]
fn destination_dump_reply() {
    let messages = received(&capture("-Ln --exact --stats -t 10.0.0.1:80"));
    let dests: Vec<DestinationStatus> = messages
        .iter()
        .filter_map(ipvs_of)
        .filter(|m| m.command == Command::NewDestination)
        .map(|m| DestinationStatus::from_attributes(dest_nest(m), Family::Ipv4).unwrap())
        .collect();
    assert_eq!(dests.len(), 4);
    assert_eq!(
        dests[0].destination.address,
        "2001:db8::20".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        dests[1].destination.forwarding,
        ForwardingMethod::Tunnel {
            tunnel_type: TunnelType::Gue,
            port: 6080,
            flags: TunnelFlags::REMCSUM
        }
    );
    assert_eq!(dests[2].destination.upper_threshold, 100);
    assert_eq!(dests[3].destination.weight, 7);
    assert!(dests.iter().all(|d| d.stats == Default::default()));
}

/// Kernel refusals: EEXIST for a second NEW_SERVICE, ESRCH for an unknown
/// service, ENOENT for an unknown destination and for an unknown
/// persistence engine when its module is absent.
#[test]
fn error_replies_carry_errno() {
    let errno_of = |command: &str| {
        received(&capture(command))
            .iter()
            .filter_map(|m| match &m.payload {
                NetlinkPayload::Error(e) => e.code.map(|c| Errno::from_raw(-c.get())),
                _ => None,
            })
            .next_back()
    };
    assert_eq!(errno_of("-A -t 10.0.0.1:80 -s wrr"), None);
    let second_add = captures()
        .into_iter()
        .filter(|c| c.command == "-A -t 10.0.0.1:80 -s wrr")
        .nth(1)
        .expect("second add");
    let codes: Vec<Errno> = second_add
        .datagrams
        .iter()
        .flat_map(|(_, b)| decode_datagram(b).unwrap())
        .filter_map(|m| match m.payload {
            NetlinkPayload::Error(e) => e.code.map(|c| Errno::from_raw(-c.get())),
            _ => None,
        })
        .collect();
    assert_eq!(codes, vec![Errno::EEXIST]);
    assert_eq!(errno_of("-D -t 10.9.9.9:80"), Some(Errno::ESRCH));
    assert_eq!(
        errno_of("-d -t 10.0.0.1:80 -r 192.168.1.99:8080"),
        Some(Errno::ENOENT)
    );
    assert_eq!(errno_of("--stop-daemon master"), None);
}
