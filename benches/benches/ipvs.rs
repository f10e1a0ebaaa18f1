//! lvskit-ipvs codec: encode and decode a service message and a
//! destination message (with the kernel's STATS and STATS64 nests, as in a
//! dump reply). The bytes decoded are the kernel 6.1 replies captured in
//! `ipvs/tests/golden/ipvsadm-6.1.txt`.
//!
//! Target: the codec must not be what bounds a 10,000-service dump; each
//! message should encode and decode in a few microseconds.
//!
//! Re-measured at load average about 1.4 on the shared 2-core host: encode
//! service 0.68 µs, encode destination 1.00 µs, decode service 1.54 µs,
//! decode destination 1.89 µs (at load average 10: 3.2, 7.2, 10.9 and
//! 4.9 µs). Those decodes go through the attribute enums; the handles now
//! decode dump replies straight into the model (`netlink::reply`).
//!
//! "decode a 10k-service x 4 dump" compares the two on the messages of a
//! whole 10,000 × 4 dump. Instruction counts (callgrind, deterministic):
//! 165.4 M instructions per dump through the attribute enums, 100.5 M
//! straight into the model (2,327 per service message, 1,888 per
//! destination message). Criterion at load average 7.5-8.3 (unreliable):
//! 138.6 ms against 94.6 ms, measured before the attribute walk stopped
//! using `NlasIterator`. Re-measure with
//! `cargo bench -p lvskit-benches --bench ipvs`, and the instruction counts
//! with `valgrind --tool=callgrind` on the bench binary
//! (`target/release/deps/ipvs-*`) run with
//! `--bench "straight into" --profile-time 3` (and `"attribute enums"`),
//! dividing the inclusive count of `reply::service` and
//! `reply::destinations` by their calls.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use lvskit_ipvs::netlink::{Command, CommandAttribute, IpvsMessage, decode_datagram, reply};
use lvskit_ipvs::{
    Destination, DestinationStatus, Family, ForwardingMethod, Operation, Protocol, SchedulerName,
    Service, ServiceKey, ServiceStatus,
};

/// A kernel reply datagram from the golden file: the first `recv` of the
/// given command whose length is `len` bytes.
fn golden(command: &str, len: usize) -> Vec<u8> {
    let text = include_str!("../../ipvs/tests/golden/ipvsadm-6.1.txt");
    let mut in_command = false;
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("## ipvsadm ") {
            in_command = c == command;
        } else if in_command && let Some(hex) = line.strip_prefix("recv ") {
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            if bytes.len() >= len {
                return bytes[..len].to_vec();
            }
        }
    }
    panic!("no reply of {len} bytes to {command}")
}

fn codec(c: &mut Criterion) {
    let key = ServiceKey::Address {
        protocol: Protocol::Tcp,
        address: "10.0.0.1".parse::<IpAddr>().unwrap(),
        port: 80,
    };
    let service = Operation::AddService(Service::new(key, SchedulerName::Wrr));
    let destination = Operation::AddDestination {
        service: key,
        destination: Destination::new(
            "192.168.1.10".parse().unwrap(),
            80,
            ForwardingMethod::DirectRoute,
        ),
    };
    c.bench_function("ipvs/encode service (NEW_SERVICE)", |b| {
        b.iter(|| {
            black_box(&service)
                .to_message()
                .to_netlink_bytes(0x20, 5, 1, 0)
        })
    });
    c.bench_function("ipvs/encode destination (NEW_DEST)", |b| {
        b.iter(|| {
            black_box(&destination)
                .to_message()
                .to_netlink_bytes(0x20, 5, 1, 0)
        })
    });

    // One service of the GET_SERVICE dump (300 bytes with both stats nests).
    let service_reply = golden("-Ln --exact --stats -t 10.0.0.1:80", 0x140);
    // One destination of the GET_DEST dump (356 bytes).
    let dest_reply = golden("-Ln --exact --stats -t 10.0.0.1:80", 0x164);
    c.bench_function("ipvs/decode service (dump reply, to ServiceStatus)", |b| {
        b.iter(|| {
            let m = decode_datagram(black_box(&service_reply)).unwrap();
            let netlink_packet_core::NetlinkPayload::InnerMessage(genl) = &m[0].payload else {
                unreachable!()
            };
            let lvskit_ipvs::netlink::CommandAttribute::Service(attrs) =
                &genl.payload.attributes[0]
            else {
                unreachable!()
            };
            black_box(ServiceStatus::from_attributes(attrs).unwrap())
        })
    });
    c.bench_function(
        "ipvs/decode destination (dump reply, to DestinationStatus)",
        |b| {
            b.iter(|| {
                let m = decode_datagram(black_box(&dest_reply)).unwrap();
                let netlink_packet_core::NetlinkPayload::InnerMessage(genl) = &m[0].payload else {
                    unreachable!()
                };
                let lvskit_ipvs::netlink::CommandAttribute::Destination(attrs) =
                    &genl.payload.attributes[0]
                else {
                    unreachable!()
                };
                black_box(DestinationStatus::from_attributes(attrs, Family::Ipv4).unwrap())
            })
        },
    );
}

/// A 10,000-service × 4-destination dump as `Handle::list` receives it:
/// 10,000 `GET_SERVICE` reply messages and 40,000 `GET_DEST` ones (the
/// kernel sends one message per object), here the captured service and
/// destination replies repeated. Decoded through the attribute enums then
/// `from_attributes` (the path before the direct decoders), and straight
/// into the model (`netlink::reply`, what the handles use).
fn dump_decode(c: &mut Criterion) {
    const SERVICES: usize = 10_000;
    let service_reply = golden("-Ln --exact --stats -t 10.0.0.1:80", 0x140);
    let dest_reply = golden("-Ln --exact --stats -t 10.0.0.1:80", 0x164);
    // The genl command and what follows the 20 bytes of headers.
    let (service_command, service) = (Command::from(service_reply[16]), &service_reply[20..]);
    let (dest_command, destination) = (Command::from(dest_reply[16]), &dest_reply[20..]);
    let mut group = c.benchmark_group("ipvs/decode a 10k-service x 4 dump");
    group.sample_size(10);
    group.bench_function("attribute enums then model", |b| {
        b.iter(|| {
            let mut services = Vec::with_capacity(SERVICES);
            let mut destinations = Vec::with_capacity(4 * SERVICES);
            for _ in 0..SERVICES {
                let m = IpvsMessage::parse_payload(service_command, black_box(service)).unwrap();
                let CommandAttribute::Service(attrs) = &m.attributes[0] else {
                    unreachable!()
                };
                services.push(ServiceStatus::from_attributes(attrs).unwrap());
                for _ in 0..4 {
                    let m =
                        IpvsMessage::parse_payload(dest_command, black_box(destination)).unwrap();
                    let CommandAttribute::Destination(attrs) = &m.attributes[0] else {
                        unreachable!()
                    };
                    destinations
                        .push(DestinationStatus::from_attributes(attrs, Family::Ipv4).unwrap());
                }
            }
            (services, destinations)
        })
    });
    group.bench_function("straight into the model", |b| {
        b.iter(|| {
            let mut services = Vec::with_capacity(SERVICES);
            let mut destinations = Vec::with_capacity(4 * SERVICES);
            for _ in 0..SERVICES {
                services.extend(reply::service(service_command, black_box(service)).unwrap());
                for _ in 0..4 {
                    reply::destinations(
                        dest_command,
                        black_box(destination),
                        Family::Ipv4,
                        &mut destinations,
                    )
                    .unwrap();
                }
            }
            (services, destinations)
        })
    });
    group.finish();
}

criterion_group!(benches, codec, dump_decode);
criterion_main!(benches);
