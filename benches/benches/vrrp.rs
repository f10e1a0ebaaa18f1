//! Per-packet cost of the VRRP engine.
//!
//! Targets (from the VRRP issue):
//! - decode and validate a one-VIP v3 advert: ≤ 50 ns;
//! - one engine step (`handle_packet` plus polling its actions): ≤ 200 ns.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use lvskit_vrrp::wire::{
    AddressFamily, Authentication, ChecksumContext, ChecksumMode, Packet, Repr, Version,
};
use lvskit_vrrp::{Config, Instance, RxMeta, State, VirtualAddress};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn one_vip_v3() -> (Vec<u8>, ChecksumContext) {
    let ctx = ChecksumContext {
        source: ip("10.0.3.2"),
        destination: ip("224.0.0.18"),
        mode: ChecksumMode::PseudoHeader,
    };
    let repr = Repr {
        version: Version::V3,
        vrid: 51,
        priority: 200,
        adver_int: 100,
        authentication: Authentication::None,
        addresses: vec![ip("10.0.3.100")],
    };
    (repr.to_vec(&ctx).unwrap(), ctx)
}

fn decode(c: &mut Criterion) {
    let (bytes, ctx) = one_vip_v3();
    // What the engine does per packet: length/version checks, type and
    // checksum (pseudo-header), then field reads.
    c.bench_function("vrrp/decode_validate_v3_one_vip_view", |b| {
        b.iter(|| {
            let packet = Packet::new_checked(black_box(&bytes[..]), AddressFamily::Ipv4).unwrap();
            packet.validate(black_box(&ctx)).unwrap();
            black_box((
                packet.vrid(),
                packet.priority(),
                packet.adver_int(),
                packet.address(0),
            ))
        })
    });
    // The owned representation (allocates the address list).
    c.bench_function("vrrp/decode_validate_v3_one_vip_repr", |b| {
        b.iter(|| {
            let packet = Packet::new_checked(black_box(&bytes[..]), AddressFamily::Ipv4).unwrap();
            black_box(Repr::parse(&packet, black_box(&ctx)).unwrap())
        })
    });
}

fn engine(c: &mut Criterion) {
    let (bytes, ctx) = one_vip_v3();
    let meta = RxMeta::new(ctx.source, ctx.destination, 255);
    let mut config = Config::new(
        51,
        ip("10.0.3.1"),
        vec![VirtualAddress::new(ip("10.0.3.100"))],
    );
    config.priority = 100;
    let mut backup = Instance::new(config.clone()).unwrap();
    let start = Instant::now();
    backup.startup(start);
    while backup.poll_action().is_some() {}
    let mut now = start;
    // A backup hearing its master: validate, follow, re-arm the timer.
    c.bench_function("vrrp/engine_step_backup_follows_master", |b| {
        b.iter(|| {
            now += Duration::from_millis(1);
            backup.handle_packet(now, &meta, black_box(&bytes)).unwrap();
            while let Some(action) = backup.poll_action() {
                black_box(action);
            }
        })
    });
    assert_eq!(backup.state(), State::Backup);

    // A master hearing a lower priority: re-advertises (one SendAdvert).
    config.priority = 250;
    let mut master = Instance::new(config).unwrap();
    master.startup(start);
    let t = master.poll_timeout().unwrap();
    master.handle_timeout(t);
    while master.poll_action().is_some() {}
    let mut now = t;
    c.bench_function("vrrp/engine_step_master_readvertises", |b| {
        b.iter(|| {
            now += Duration::from_millis(1);
            master.handle_packet(now, &meta, black_box(&bytes)).unwrap();
            while let Some(action) = master.poll_action() {
                black_box(action);
            }
        })
    });
    assert_eq!(master.state(), State::Master);
}

criterion_group!(benches, decode, engine);
criterion_main!(benches);
