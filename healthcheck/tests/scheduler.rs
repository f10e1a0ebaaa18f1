//! Exact-timing tests of the checker state machine and the scheduler
//! (virtual clock: `Instant`s built from a fixed origin, no sleeping).

use std::time::{Duration, Instant};

use lvskit_healthcheck::{
    CheckKind, CheckSpec, CheckerState, Event, Outcome, ProbeError, Reason, Scheduler, Timing,
};
use proptest::prelude::*;

const S: Duration = Duration::from_secs(1);

fn timing(delay_loop: u64, retry: u32, delay_before_retry: u64, alpha: bool) -> Timing {
    Timing {
        delay_loop: S * delay_loop as u32,
        retry,
        delay_before_retry: S * delay_before_retry as u32,
        warmup: Duration::ZERO,
        alpha,
    }
}

fn ok() -> Outcome {
    Outcome::Success { weight: None }
}

fn fail() -> Outcome {
    Outcome::Failure(ProbeError::Refused)
}

/// Drives a single checker: each outcome is handled at the time it is due
/// (probes take no time); returns (time offset in s, transition summary).
fn drive(t: Timing, outcomes: &[Outcome]) -> Vec<(u64, Option<(bool, bool)>)> {
    let t0 = Instant::now();
    let mut c = CheckerState::new(t0, t, Duration::ZERO);
    let mut out = Vec::new();
    for o in outcomes {
        let now = c.next_probe().unwrap();
        c.start_probe();
        assert_eq!(c.next_probe(), None, "no probe while one runs");
        let tr = c.handle_outcome(now, o);
        out.push(((now - t0).as_secs(), tr.map(|t| (t.up, t.first))));
    }
    out
}

#[test]
fn first_failure_is_enough_at_startup() {
    // retry 3 does not delay the first down: keepalived starts retry_it at retry.
    let r = drive(timing(10, 3, 2, false), &[fail(), fail()]);
    assert_eq!(r, vec![(0, Some((false, true))), (10, None)]);
}

#[test]
fn up_checker_uses_retries_then_goes_down() {
    // delay_loop 10, retry 2, delay_before_retry 3.
    let r = drive(
        timing(10, 2, 3, false),
        &[ok(), ok(), fail(), fail(), fail(), fail(), fail()],
    );
    assert_eq!(
        r,
        vec![
            (0, Some((true, true))), // first result reported
            (10, None),
            (20, None),                 // 1st failure: retry in 3
            (23, None),                 // 2nd failure: retry in 3
            (26, Some((false, false))), // 3rd failure: down, back to delay_loop
            (36, None),                 // down: probed every delay_loop, no retry
            (46, None),
        ]
    );
}

#[test]
fn one_success_brings_it_back_up_and_resets_retries() {
    let r = drive(
        timing(10, 1, 2, false),
        &[ok(), fail(), ok(), fail(), fail(), ok()],
    );
    assert_eq!(
        r,
        vec![
            (0, Some((true, true))),
            (10, None),                 // failure, retry in 2
            (12, None),                 // success: counter reset, stays up
            (22, None),                 // failure, retry in 2
            (24, Some((false, false))), // second consecutive failure: down
            (34, Some((true, false))),  // one success: up
        ]
    );
}

#[test]
fn retry_zero_goes_down_on_first_failure() {
    let r = drive(timing(5, 0, 1, false), &[ok(), fail(), ok()]);
    assert_eq!(
        r,
        vec![
            (0, Some((true, true))),
            (5, Some((false, false))),
            (10, Some((true, false)))
        ]
    );
}

#[test]
fn alpha_starts_down_and_needs_one_success() {
    let t0 = Instant::now();
    let c = CheckerState::new(t0, timing(10, 3, 1, true), Duration::ZERO);
    assert!(!c.is_up());
    let r = drive(timing(10, 3, 1, true), &[fail(), fail(), ok()]);
    // First failure is reported (first result), then silence, then UP.
    assert_eq!(
        r,
        vec![
            (0, Some((false, true))),
            (10, None),
            (20, Some((true, false)))
        ]
    );
}

#[test]
fn reason_counts_retries() {
    let t0 = Instant::now();
    let mut c = CheckerState::new(t0, timing(10, 2, 1, false), Duration::ZERO);
    let mut last = None;
    for o in [ok(), fail(), fail(), fail()] {
        let now = c.next_probe().unwrap();
        c.start_probe();
        if let Some(t) = c.handle_outcome(now, &o) {
            last = Some(t);
        }
    }
    let last = last.unwrap();
    assert_eq!(
        last.reason,
        Reason::Failed {
            attempts: 3,
            error: ProbeError::Refused
        }
    );
    assert_eq!(
        last.reason.to_string(),
        "check failed after 2 retries: connection refused"
    );
}

#[test]
fn delays_count_from_the_end_of_the_probe() {
    let t0 = Instant::now();
    let mut c = CheckerState::new(t0, timing(10, 1, 2, false), Duration::ZERO);
    c.start_probe();
    // The probe took 4 s.
    let _ = c.handle_outcome(t0 + 4 * S, &ok());
    assert_eq!(c.next_probe(), Some(t0 + 14 * S));
}

fn spec(port: u16, t: Timing) -> CheckSpec {
    let mut s = CheckSpec::new(([127, 0, 0, 1], port).into(), CheckKind::Tcp, t.delay_loop);
    s.timing = t;
    s
}

#[test]
fn same_check_shared_by_servers_is_probed_once() {
    let t0 = Instant::now();
    let mut s = Scheduler::with_seed(100, 7);
    let t = timing(10, 0, 1, false);
    let a = s.add_real_server(t0, vec![spec(80, t.clone())]);
    let b = s.add_real_server(t0, vec![spec(80, t.clone())]);
    let c = s.add_real_server(t0, vec![spec(80, t.clone()), spec(81, t.clone())]);
    assert_eq!(s.checker_count(), 2);
    assert_eq!(s.checkers_of(a), s.checkers_of(b));
    let mut probes = Vec::new();
    while let Some(p) = s.poll_probe(t0) {
        probes.push(p);
    }
    assert_eq!(probes.len(), 2);
    // The port-80 check fails: all three servers go down, each once.
    let p80 = probes
        .iter()
        .find(|p| p.spec.target.port() == 80)
        .unwrap()
        .checker;
    let p81 = probes
        .iter()
        .find(|p| p.spec.target.port() == 81)
        .unwrap()
        .checker;
    s.handle_result(t0, p80, fail());
    s.handle_result(t0, p81, ok());
    let events: Vec<Event> = std::iter::from_fn(|| s.poll_event()).collect();
    let downs: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::RealServer {
                server, up: false, ..
            } => Some(*server),
            _ => None,
        })
        .collect();
    assert_eq!(downs, vec![a, b, c]);
    assert!(!s.is_up(c));
}

#[test]
fn server_is_up_only_while_all_checkers_are_up() {
    let t0 = Instant::now();
    let mut s = Scheduler::with_seed(100, 7);
    let t = timing(10, 0, 1, true); // alpha: both start down
    let rs = s.add_real_server(t0, vec![spec(80, t.clone()), spec(81, t.clone())]);
    assert!(!s.is_up(rs));
    let p1 = s.poll_probe(t0).unwrap();
    let p2 = s.poll_probe(t0).unwrap();
    s.handle_result(t0, p1.checker, ok());
    assert!(!s.is_up(rs), "one of two checkers up is not enough");
    s.handle_result(t0 + S, p2.checker, ok());
    assert!(s.is_up(rs));
    let ups: Vec<_> = std::iter::from_fn(|| s.poll_event())
        .filter_map(|e| match e {
            Event::RealServer {
                up: true,
                at,
                reason,
                ..
            } => Some((at, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(ups, vec![(t0 + S, Reason::Succeeded)]);
    // Now one checker fails: the server goes down.
    let p = s.poll_probe(t0 + 10 * S).unwrap();
    s.handle_result(t0 + 10 * S, p.checker, fail());
    assert!(!s.is_up(rs));
}

#[test]
fn concurrency_is_bounded_and_resumes_on_results() {
    let t0 = Instant::now();
    let mut s = Scheduler::with_seed(3, 7);
    for port in 0..10 {
        s.add_real_server(t0, vec![spec(1000 + port, timing(10, 0, 1, false))]);
    }
    let running: Vec<_> = std::iter::from_fn(|| s.poll_probe(t0)).collect();
    assert_eq!(running.len(), 3);
    assert_eq!(s.poll_timeout(), None, "at the bound: wait for a result");
    s.handle_result(t0 + S, running[0].checker, ok());
    assert_eq!(s.poll_timeout(), Some(t0), "overdue probes are next");
    let next = s.poll_probe(t0 + S).unwrap();
    assert_eq!(next.due, t0);
    assert!(s.poll_probe(t0 + S).is_none());
}

#[test]
fn probes_come_out_in_deadline_order() {
    let t0 = Instant::now();
    let mut s = Scheduler::with_seed(100, 3);
    let mut t = timing(10, 0, 1, false);
    t.warmup = 10 * S;
    for port in 0..50 {
        s.add_real_server(t0, vec![spec(2000 + port, t.clone())]);
    }
    let all: Vec<_> = std::iter::from_fn(|| s.poll_probe(t0 + 10 * S)).collect();
    assert_eq!(all.len(), 50);
    assert!(all.windows(2).all(|w| w[0].due <= w[1].due));
}

proptest! {
    /// The first probe of each checker falls in 0..=warmup, and the starts
    /// are spread: no more than a third of them in any tenth of the window.
    #[test]
    fn warmup_jitter_is_bounded_and_spread(seed in any::<u64>(), warmup_ms in 100u64..100_000) {
        let t0 = Instant::now();
        let warmup = Duration::from_millis(warmup_ms);
        let mut s = Scheduler::with_seed(1000, seed);
        let mut t = timing(60, 1, 1, false);
        t.warmup = warmup;
        for port in 0..300 {
            s.add_real_server(t0, vec![spec(port + 1, t.clone())]);
        }
        let probes: Vec<_> = std::iter::from_fn(|| s.poll_probe(t0 + warmup)).collect();
        prop_assert_eq!(probes.len(), 300);
        let mut tenths = [0u32; 10];
        for p in &probes {
            let off = p.due - t0;
            prop_assert!(off <= warmup);
            tenths[((off.as_nanos() * 10 / (warmup.as_nanos() + 1)) as usize).min(9)] += 1;
        }
        prop_assert!(tenths.iter().all(|n| *n <= 100), "{:?}", tenths);
    }

    /// Whatever the outcomes, a checker never goes down while it still has
    /// retries, and the gap to the next probe is delay_loop or
    /// delay_before_retry.
    #[test]
    fn retry_arithmetic(outcomes in proptest::collection::vec(any::<bool>(), 1..60), retry in 0u32..4) {
        let t = timing(10, retry, 3, false);
        let t0 = Instant::now();
        let mut c = CheckerState::new(t0, t, Duration::ZERO);
        let mut consecutive = 0u32;
        let mut has_run = false;
        for success in outcomes {
            let now = c.next_probe().unwrap();
            let was_up = c.is_up();
            c.start_probe();
            let tr = c.handle_outcome(now, &if success { ok() } else { fail() });
            consecutive = if success { 0 } else { consecutive + 1 };
            if !success && was_up && has_run {
                let down = tr.as_ref().is_some_and(|t| !t.up);
                prop_assert_eq!(down, consecutive == retry + 1);
            }
            if success { prop_assert!(c.is_up()); }
            let gap = c.next_probe().unwrap() - now;
            prop_assert!(gap == 10 * S || gap == 3 * S);
            has_run = true;
        }
    }
}
