//! Userspace IPVS schedulers (issue 4, section 4).
//!
//! Targets:
//! * one pick of rr, wrr, wlc and mh with 1,000 destinations: <= 20 ns;
//! * a Maglev table of 65,537 slots for 1,000 destinations: built in <= 5 ms.
//!
//! "Pick" is `Pool::schedule` alone. For wlc, whose pick depends on the
//! counters, `wlc/pick+account` also charges the connection to the picked
//! destination and releases one elsewhere, so the tree is updated twice per
//! pick, as in a simulation.
//!
//! wrr, instructions per pick (`Pool::schedule` inclusive, callgrind, exact
//! whatever the load) before and after its scan of the current pass became
//! one `position` over the weights: equal weights 62.0 -> 49.0, weights 1-4
//! 66.2 -> 52.6, weights 1-100 69.0 -> 54.9; rr, for scale, 44.0. Wall
//! time at load average about 1 (the shared host briefly quiet), criterion,
//! runs a minute apart: wrr 10.0 / 9.6 / 9.8 ns
//! (before the change 10.4 / 10.7 / 11.6 ns), rr 10.3 ns, wlc 8.8 ns, mh
//! 16.4 ns: all within the 20 ns target. At load average 8-9 the same
//! binary gave rr 39 ns and wrr 35-53 ns: loaded figures are not
//! comparable.
//! Re-measure on a quiet machine with
//! `cargo bench -p lvskit-benches --bench ipvs_sched -- pick_1000_destinations`,
//! and count instructions with
//! `valgrind --tool=callgrind --toggle-collect='*Pool*schedule*' <bench
//! binary> --bench --profile-time 2 'pick_1000_destinations/wrr/equal_weights$'`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use lvskit_ipvs::sched::{
    AddressFamily, ConnectionState, Destination, HashFlags, MaglevHashing, MaglevTable, Pool,
    Request, by_name,
};

const DESTINATIONS: usize = 1_000;

/// A bench label, the scheduler's name, and the weight of destination `i`.
type Case = (&'static str, &'static str, fn(usize) -> u32);

fn destinations(weight: impl Fn(usize) -> u32) -> Vec<Destination> {
    (0..DESTINATIONS)
        .map(|i| {
            let address = SocketAddr::from(([10, 1, (i / 250) as u8, (i % 250) as u8 + 1], 8080));
            Destination::new(address, weight(i))
        })
        .collect()
}

fn pool(scheduler: &str, weight: impl Fn(usize) -> u32) -> Pool {
    let scheduler = by_name(scheduler).unwrap_or_else(|e| panic!("{e}"));
    Pool::with_destinations(AddressFamily::Inet, scheduler, destinations(weight))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// 4,096 requests from distinct client addresses and ports.
fn requests() -> Vec<Request> {
    let now = Instant::now();
    (0..4096u32)
        .map(|i| {
            let client = SocketAddr::from((
                [100, 64 + (i >> 16) as u8, (i >> 8) as u8, i as u8],
                1024 + i as u16,
            ));
            Request::new(now, client, SocketAddr::from(([198, 51, 100, 1], 80)))
        })
        .collect()
}

fn picks(c: &mut Criterion) {
    let requests = requests();
    let mut group = c.benchmark_group("ipvs_sched/pick_1000_destinations");
    let cases: [Case; 6] = [
        ("rr", "rr", |_| 1),
        ("wrr/equal_weights", "wrr", |_| 10),
        ("wrr/weights_1_to_4", "wrr", |i| (i % 4) as u32 + 1),
        ("wrr/weights_1_to_100", "wrr", |i| (i * 37 % 100) as u32 + 1),
        ("wlc", "wlc", |i| (i % 4) as u32 + 1),
        ("mh", "mh", |i| (i % 4) as u32 + 1),
    ];
    for (label, name, weight) in cases {
        let mut p = pool(name, weight);
        // Spread some load so wlc has work to compare.
        for i in 0..DESTINATIONS {
            p.set_connections(i, (i * 7 % 13) as u32, (i * 3 % 5) as u32);
        }
        let mut k = 0usize;
        group.bench_function(label, |b| {
            b.iter(|| {
                k = (k + 1) & 4095;
                black_box(p.schedule(black_box(&requests[k])))
            })
        });
    }
    let mut p = pool("wlc", |i| (i % 4) as u32 + 1);
    let mut k = 0usize;
    group.bench_function("wlc/pick+account", |b| {
        b.iter(|| {
            k = (k + 1) % DESTINATIONS;
            let i = p.schedule(&requests[k & 4095]);
            if let Some(i) = i {
                p.bind(i, ConnectionState::Active);
            }
            p.unbind(k, ConnectionState::Active);
            black_box(i)
        })
    });
    group.finish();
}

fn maglev_build(c: &mut Criterion) {
    let params = MaglevTable::custom(65_537, 8).unwrap_or_else(|e| panic!("{e}"));
    let p = pool("rr", |i| (i % 4) as u32 + 1);
    let equal = pool("rr", |_| 1);
    let mut group = c.benchmark_group("ipvs_sched/maglev_build_65537_slots_1000_destinations");
    group.sample_size(30);
    for (label, pool) in [("weights_1_to_4", &p), ("equal_weights", &equal)] {
        group.bench_function(label, |b| {
            b.iter_batched_ref(
                || MaglevHashing::new(params, HashFlags::default()),
                |mh| mh.rebuild(black_box(pool.as_view())),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, picks, maglev_build);
criterion_main!(benches);
