//! A probe task that really panics: tokio's blocking pool panics ("OS can't
//! spawn worker thread") when the OS refuses it a thread and it has none.
//! FILE_CHECK reads through that pool, and `prlimit --as` on this process
//! leaves no address space for a new thread's stack. The runner must fail
//! that probe, keep the checker scheduled, and see it succeed once threads
//! can start again.
//!
//! Alone in its test binary: the limit applies to the whole process.

mod common;

use std::time::{Duration, Instant};

use common::*;
use lvskit_healthcheck::config::FileCheck;
use lvskit_healthcheck::{CheckKind, Event, Scheduler};

/// Sets this process's address-space limit (`None`: unlimited) with
/// util-linux `prlimit`.
fn limit_address_space(bytes: Option<u64>) {
    let value = bytes.map_or_else(|| "unlimited".to_owned(), |b| b.to_string());
    let status = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--as={value}:"))
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(status.success(), "prlimit --as={value}: {status}");
}

/// This process's address space now, from `/proc/self/statm` (pages).
fn address_space() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().next().unwrap().parse().unwrap();
    pages * 4096
}

/// Lifts the limit however the test ends.
struct Unlimit;

impl Drop for Unlimit {
    fn drop(&mut self) {
        limit_address_space(None);
    }
}

#[tokio::test]
async fn a_panicking_probe_fails_its_check_and_the_checker_runs_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("value");
    std::fs::write(&path, "0\n").unwrap();
    let mut check = spec(
        "127.0.0.1:80".parse().unwrap(),
        CheckKind::File(FileCheck {
            path,
            weight: 0,
            reverse: false,
        }),
        timing(1, 0, 1),
    );
    check.connect.connect_timeout = Duration::from_secs(5);
    let mut sched = Scheduler::with_seed(16, 1);
    sched.add_real_server(Instant::now(), vec![check]);

    // 1 MiB above what is mapped now: room for the probe's allocations,
    // not for a 2 MiB thread stack.
    let unlimit = Unlimit;
    limit_address_space(Some(address_space() + (1 << 20)));
    let mut rx = run(sched, 64);
    let (_, up, reason) = next_checker(&mut rx, Instant::now()).await;
    drop(unlimit);
    assert!(!up);
    assert!(
        reason.contains("probe panicked: OS can't spawn worker thread"),
        "{reason}"
    );
    // The runner is still there and the checker still scheduled: with
    // threads available again, its next probe passes.
    let (_, up, reason) = next_checker(&mut rx, Instant::now()).await;
    assert!(up, "{reason}");
    match rx.recv().await {
        Some(Event::RealServer { up: true, .. }) => {}
        other => panic!("expected the real server up, got {other:?}"),
    }
}
