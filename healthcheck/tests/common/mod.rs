//! Helpers shared by the probe tests.
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lvskit_healthcheck::runner::{self, Lateness};
use lvskit_healthcheck::{CheckKind, CheckSpec, Event, Scheduler, Timing};
use tokio::sync::mpsc;

pub mod servers;

/// A loopback address unique to this process and call, so parallel tests
/// never share a listener address.
pub fn unique_loopback() -> IpAddr {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) + std::process::id() * 64;
    IpAddr::V4(Ipv4Addr::new(
        127,
        10 + ((n >> 16) % 200) as u8,
        (n >> 8) as u8,
        (n as u8).max(1),
    ))
}

pub fn timing(delay_loop: u64, retry: u32, delay_before_retry: u64) -> Timing {
    Timing {
        delay_loop: Duration::from_secs(delay_loop),
        retry,
        delay_before_retry: Duration::from_secs(delay_before_retry),
        warmup: Duration::ZERO,
        alpha: false,
    }
}

pub fn spec(target: std::net::SocketAddr, kind: CheckKind, t: Timing) -> CheckSpec {
    let mut s = CheckSpec::new(target, kind, t.delay_loop);
    s.timing = t;
    s
}

/// Starts a runner for one real server checked by `spec`; returns its
/// event stream.
pub fn start(spec: CheckSpec) -> mpsc::Receiver<Event> {
    let mut sched = Scheduler::with_seed(16, 1);
    sched.add_real_server(tokio::time::Instant::now().into_std(), vec![spec]);
    run(sched, 64)
}

/// Runs `sched` with an event channel of `capacity`; returns its stream.
pub fn run(sched: Scheduler, capacity: usize) -> mpsc::Receiver<Event> {
    let (tx, rx) = mpsc::channel(capacity);
    tokio::spawn(runner::run(
        sched,
        tx,
        Arc::new(Mutex::new(Lateness::default())),
    ));
    rx
}

/// The next checker transition: (offset from `t0`, up, reason text).
pub async fn next_checker(
    rx: &mut mpsc::Receiver<Event>,
    t0: std::time::Instant,
) -> (Duration, bool, String) {
    loop {
        match rx.recv().await.expect("runner stopped") {
            Event::Checker { at, transition, .. } => {
                return (at - t0, transition.up, transition.reason.to_string());
            }
            _ => continue,
        }
    }
}
