//! TCP_CHECK against real loopback listeners, driven by the runner under
//! paused tokio time (exact timing).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use lvskit_healthcheck::checker::Outcome;
use lvskit_healthcheck::error::IoFailure;
use lvskit_healthcheck::{CheckKind, CheckSpec, Event, ProbeError};
use tokio::net::TcpListener;

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind((unique_loopback(), 0)).await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

/// A loopback address whose port refuses connections.
async fn refused_address() -> SocketAddr {
    listener().await.1
}

/// A UDP_CHECK of `target` that sends `ping` and needs a reply within
/// `timeout`; delay_loop 10 s, no retry.
fn udp_reply_check(target: SocketAddr, timeout: Duration) -> CheckSpec {
    use lvskit_healthcheck::config::UdpCheck;
    let mut check = spec(
        target,
        CheckKind::Udp(UdpCheck {
            payload: b"ping".to_vec(),
            require_reply: true,
            ..UdpCheck::default()
        }),
        timing(10, 0, 1),
    );
    check.connect.connect_timeout = timeout;
    check
}

#[tokio::test(start_paused = true)]
async fn up_then_down_after_retry_with_exact_timing() {
    let (l, addr) = listener().await;
    let t0 = tokio::time::Instant::now().into_std();
    // delay_loop 2 s, retry 1, delay_before_retry 1 s.
    let mut rx = start(spec(addr, CheckKind::Tcp, timing(2, 1, 1)));
    let (at, up, reason) = next_checker(&mut rx, t0).await;
    assert_eq!((at, up), (Duration::ZERO, true));
    assert_eq!(reason, "check succeeded");
    drop(l); // the port now refuses
    // Fails at t=2, retries at t=3, down at t=3.
    let (at, up, reason) = next_checker(&mut rx, t0).await;
    assert_eq!((at, up), (Duration::from_secs(3), false));
    assert_eq!(reason, "check failed after 1 retries: connection refused");
    match rx.recv().await.unwrap() {
        Event::RealServer { up: false, at, .. } => assert_eq!(at - t0, Duration::from_secs(3)),
        other => panic!("unexpected {other:?}"),
    }
    // The port comes back: up at the next delay_loop (t=5).
    let l2 = TcpListener::bind(addr).await.unwrap();
    let (at, up, _) = next_checker(&mut rx, t0).await;
    assert_eq!((at, up), (Duration::from_secs(5), true));
    drop(l2);
}

#[tokio::test]
async fn bindto_sets_the_source_address() {
    let (l, addr) = listener().await;
    let mut s = spec(addr, CheckKind::Tcp, timing(1, 0, 1));
    let src = unique_loopback();
    s.connect.bindto = Some(src);
    let (peer, outcome) = accept_and_probe(&l, s).await;
    assert_eq!(peer.ip(), src);
    assert_eq!(outcome, Outcome::Success { weight: None });
}

/// Runs the probe for `s` while accepting on `l`: the peer address of the
/// probe's connection and the probe's outcome. Never waits on `accept`
/// alone: a probe that fails before connecting (e.g. EPERM on a socket
/// option) would leave it waiting forever, so that ends the test with the
/// probe's outcome instead. A probe may also succeed (and close) before
/// the accept is polled: its connection then waits in the accept queue.
async fn accept_and_probe(l: &TcpListener, s: CheckSpec) -> (SocketAddr, Outcome) {
    let mut probe = tokio::spawn(async move { lvskit_healthcheck::probe::run(&s).await });
    tokio::select! {
        accepted = l.accept() => {
            let (_conn, peer) = accepted.unwrap();
            (peer, probe.await.unwrap())
        }
        outcome = &mut probe => match outcome.unwrap() {
            success @ Outcome::Success { .. } => (l.accept().await.unwrap().1, success),
            failure => panic!("the probe never connected: {failure:?}"),
        },
    }
}

/// Probes a fresh listener from a free `bind_port` on a unique loopback
/// source, tied to `lo` and marked with `fwmark` if given; asserts the
/// connection came from that source and the probe succeeded.
async fn bound_probe_succeeds(fwmark: Option<u32>) {
    let (l, addr) = listener().await;
    // Find a free source port by binding and releasing it.
    let src = unique_loopback();
    let port = std::net::TcpListener::bind((src, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut s = spec(addr, CheckKind::Tcp, timing(1, 0, 1));
    s.connect.bindto = Some(src);
    s.connect.bind_port = Some(port);
    s.connect.bind_if = Some("lo".into());
    s.connect.fwmark = fwmark;
    let (peer, outcome) = accept_and_probe(&l, s).await;
    assert_eq!(peer, SocketAddr::new(src, port));
    assert_eq!(outcome, Outcome::Success { weight: None });
}

#[tokio::test]
async fn bind_port_and_bind_if_apply_without_privileges() {
    // SO_BINDTODEVICE needs no capability since Linux 5.7 (socket(7)).
    bound_probe_succeeds(None).await;
}

/// Tier 2 (as root): `SO_MARK` needs CAP_NET_ADMIN (socket(7)).
#[tokio::test]
async fn netns_bind_port_bind_if_and_fwmark_apply() {
    lvskit_testlab::require_root();
    bound_probe_succeeds(Some(0x42)).await;
}

#[tokio::test]
async fn missing_interface_is_a_typed_error() {
    let (_l, addr) = listener().await;
    let mut s = spec(addr, CheckKind::Tcp, timing(1, 0, 1));
    s.connect.bind_if = Some("nosuchif0".into());
    match lvskit_healthcheck::probe::run(&s).await {
        Outcome::Failure(ProbeError::Io(IoFailure {
            op: "SO_BINDTODEVICE",
            errno,
            ..
        })) => {
            assert_eq!(errno, Some(19)); // ENODEV
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn connect_ip_and_connect_port_override_the_target() {
    let (l, addr) = listener().await;
    let mut s = spec(([127, 0, 0, 1], 9).into(), CheckKind::Tcp, timing(1, 0, 1));
    s.connect.connect_ip = Some(addr.ip());
    s.connect.connect_port = Some(addr.port());
    let (peer, outcome) = accept_and_probe(&l, s).await;
    assert!(peer.ip().is_loopback());
    assert_eq!(outcome, Outcome::Success { weight: None });
}

#[tokio::test(start_paused = true)]
async fn servers_sharing_a_check_cause_one_connection_per_loop() {
    let listener = std::net::TcpListener::bind((unique_loopback(), 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let t = timing(2, 0, 1);
    let mut sched = lvskit_healthcheck::Scheduler::with_seed(16, 1);
    let now = tokio::time::Instant::now().into_std();
    // Three virtual servers list the same real server with the same check.
    for _ in 0..3 {
        sched.add_real_server(now, vec![spec(addr, CheckKind::Tcp, t.clone())]);
    }
    assert_eq!(sched.checker_count(), 1);
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let lateness = std::sync::Arc::new(std::sync::Mutex::new(
        lvskit_healthcheck::runner::Lateness::default(),
    ));
    tokio::spawn(lvskit_healthcheck::runner::run(sched, tx, lateness.clone()));
    // Probes at t = 0, 2 and 4 s; stop before the one at 6 s.
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    let mut accepted = 0;
    while listener.accept().is_ok() {
        accepted += 1;
    }
    assert_eq!(
        accepted, 3,
        "one connection per delay_loop, not one per virtual server"
    );
    let l = lateness.lock().unwrap();
    assert_eq!(
        (l.probes, l.max),
        (3, Duration::ZERO),
        "no probe started late under a paused clock"
    );
    let first: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert_eq!(
        first.len(),
        1,
        "one checker event (its first result): {first:?}"
    );
}

/// The runner times each checker's next probe from the end of its own
/// probe, even when it collects several results in one wake-up (here: late,
/// because it was blocked on a full event channel). Stamping them all with
/// the collection time would make those checkers fire together from then on.
#[tokio::test(start_paused = true)]
async fn runner_times_each_probe_from_its_own_end() {
    // Checker A: a refused port, down at once; its two events fill the
    // channel (capacity 1) and block the runner.
    let refused = refused_address().await;
    // Checker B: a UDP server that stays silent until t=5; with
    // `require_reply` its first probe times out at t=2.
    let udp = tokio::net::UdpSocket::bind((unique_loopback(), 0))
        .await
        .unwrap();
    let b = udp_reply_check(udp.local_addr().unwrap(), Duration::from_secs(2));
    let t0 = tokio::time::Instant::now().into_std();
    let mut sched = lvskit_healthcheck::Scheduler::with_seed(16, 1);
    sched.add_real_server(t0, vec![spec(refused, CheckKind::Tcp, timing(10, 0, 1))]);
    let b_server = sched.add_real_server(t0, vec![b]);
    let mut rx = run(sched, 1);
    tokio::time::sleep(Duration::from_secs(5)).await;
    // From t=5 the server answers.
    tokio::spawn(async move {
        let mut buf = [0u8; 64];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            let _ = udp.send_to(&buf[..n], from).await;
        }
    });
    let mut b_events = Vec::new();
    while b_events.len() < 2 {
        if let Event::RealServer { server, at, up, .. } = rx.recv().await.unwrap()
            && server == b_server
        {
            b_events.push((at - t0, up));
        }
    }
    // B went down when its probe ended (t=2), though the runner only saw it
    // at t=5, and its next probe ran one delay_loop after t=2: up at t=12.
    assert_eq!(
        b_events,
        [
            (Duration::from_secs(2), false),
            (Duration::from_secs(12), true)
        ]
    );
}

/// With `report_probes`, each probe's duration reaches the caller: a
/// refused connection ends at once, a UDP probe whose server stays silent
/// ends at its `connect_timeout`. The clock is paused, so both are exact.
#[tokio::test(start_paused = true)]
async fn probe_events_carry_how_long_each_probe_ran() {
    let refused = refused_address().await;
    let silent = tokio::net::UdpSocket::bind((unique_loopback(), 0))
        .await
        .unwrap();
    let udp = udp_reply_check(silent.local_addr().unwrap(), Duration::from_secs(3));
    let t0 = tokio::time::Instant::now().into_std();
    let mut sched = lvskit_healthcheck::Scheduler::with_seed(16, 1);
    sched.report_probes(true);
    sched.add_real_server(t0, vec![spec(refused, CheckKind::Tcp, timing(10, 0, 1))]);
    sched.add_real_server(t0, vec![udp]);
    let mut rx = run(sched, 64);
    let mut probes = Vec::new();
    while probes.len() < 2 {
        if let Event::Probe {
            at,
            duration,
            success,
            ..
        } = rx.recv().await.unwrap()
        {
            probes.push((at - t0, duration, success));
        }
    }
    assert_eq!(
        probes,
        [
            (Duration::ZERO, Duration::ZERO, false),
            (Duration::from_secs(3), Duration::from_secs(3), false),
        ]
    );
    drop(silent);
}

/// The reactor path: a handshake that is still in progress when connect(2)
/// returns. The listener's accept queue (backlog 0: one connection) is kept
/// full, so the kernel drops the probe's SYN; the probe must then wait, and
/// succeed once the queue has room and the SYN is retransmitted (RFC 6298:
/// about 1 s).
#[tokio::test]
async fn probe_waits_for_a_handshake_that_completes_later() {
    let ip = unique_loopback();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::new(ip, 0).into()).unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let filler = std::net::TcpStream::connect(addr).unwrap();
    let mut s = spec(addr, CheckKind::Tcp, timing(1, 0, 1));
    s.connect.connect_timeout = Duration::from_secs(10);
    let probe = tokio::spawn(async move { lvskit_healthcheck::probe::run(&s).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !probe.is_finished(),
        "the probe ended while the accept queue was full: {:?}",
        probe.await
    );
    // Make room: the retransmitted SYN now completes the handshake.
    let listener = std::net::TcpListener::from(socket);
    drop(listener.accept().unwrap());
    drop(filler);
    assert_eq!(probe.await.unwrap(), Outcome::Success { weight: None });
}
