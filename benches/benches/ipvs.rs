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
//! 4.9 µs). A 10,000-service dump decodes 10,000
//! service and 40,000 destination messages; under TCG the 10,000
//! destination dumps spend 2.01 s of their 3.49 s in user space (see
//! `ipvs/examples/ipvs_bench.rs`), by estimate largely this decode.
//! Decoding dump replies straight into the model, without the per-attribute
//! `Vec`s, is the next step for the dump target. Re-measure with
//! `cargo bench -p lvskit-benches --bench ipvs`.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use lvskit_ipvs::netlink::decode_datagram;
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

criterion_group!(benches, codec);
criterion_main!(benches);
