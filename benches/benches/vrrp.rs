//! Per-packet cost of the VRRP engine.
//!
//! Targets (from the VRRP issue):
//! - decode and validate a one-VIP v3 advert: ≤ 50 ns;
//! - one engine step (`handle_packet` plus polling its actions): ≤ 200 ns.
//!
//! Engine steps in instructions (callgrind, the `vrrp_engine_steps` example;
//! deterministic, unlike times on the shared 2-core host): a master hearing
//! a lower priority went from 803 to 526 per step (the receive checks are
//! skipped for a repeat of the last valid packet), 902 when the advert
//! changes every step; a backup following its master from 575 to 282. The
//! last time measured before, 231 ns for the master step, was measured
//! under load; re-time on a quiet machine with
//! `cargo bench -p lvskit-benches --bench vrrp -- engine_step`.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lvskit_benches::vrrp::{EngineStep, Step, one_vip_v3};
use lvskit_vrrp::State;
use lvskit_vrrp::wire::{AddressFamily, Packet, Repr};

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
    let mut backup = EngineStep::new(Step::BackupFollowsMaster);
    c.bench_function("vrrp/engine_step_backup_follows_master", |b| {
        b.iter(|| backup.step())
    });
    assert_eq!(backup.state(), State::Backup);

    let mut master = EngineStep::new(Step::MasterReadvertises);
    c.bench_function("vrrp/engine_step_master_readvertises", |b| {
        b.iter(|| master.step())
    });
    assert_eq!(master.state(), State::Master);

    let mut changing = EngineStep::new(Step::MasterReadvertisesChanging);
    c.bench_function("vrrp/engine_step_master_readvertises_changing", |b| {
        b.iter(|| changing.step())
    });
    assert_eq!(changing.state(), State::Master);
}

criterion_group!(benches, decode, engine);
criterion_main!(benches);
