//! SMTP_CHECK, DNS_CHECK (against Debian's dnsmasq), UDP_CHECK, PING_CHECK,
//! MISC_CHECK and FILE_CHECK against real local peers.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use common::servers::*;
use common::*;
use lvskit_healthcheck::checker::Outcome;
use lvskit_healthcheck::config::{DnsCheck, FileCheck, MiscCheck, SmtpCheck, UdpCheck};
use lvskit_healthcheck::{CheckKind, CheckSpec, DynamicWeight, ProbeError};
use tokio::net::UdpSocket;

const OK: Outcome = Outcome::Success { weight: None };

async fn run(s: &CheckSpec) -> Outcome {
    lvskit_healthcheck::probe::run(s).await
}

fn with_timeout(mut s: CheckSpec, ms: u64) -> CheckSpec {
    s.connect.connect_timeout = Duration::from_millis(ms);
    s
}

// ---- SMTP ----

#[tokio::test]
async fn smtp_helo_ehlo_quit() {
    let (addr, seen) = smtp_server(b"220-mx.test ESMTP\r\n220 ready\r\n", b"250 ok\r\n").await;
    let s = spec(addr, CheckKind::Smtp(SmtpCheck::default()), timing(5, 0, 1));
    assert_eq!(run(&s).await, OK);
    let s = spec(
        addr,
        CheckKind::Smtp(SmtpCheck {
            helo_name: "lb1.test".into(),
            ehlo: true,
        }),
        timing(5, 0, 1),
    );
    assert_eq!(run(&s).await, OK);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            "HELO smtpchecker.keepalived.org",
            "QUIT",
            "EHLO lb1.test",
            "QUIT"
        ]
    );
}

#[tokio::test]
async fn smtp_bad_replies_fail_with_stage() {
    let (addr, _) = smtp_server(b"554 go away\r\n", b"250 ok\r\n").await;
    let s = spec(addr, CheckKind::Smtp(SmtpCheck::default()), timing(5, 0, 1));
    assert_eq!(
        run(&s).await,
        Outcome::Failure(ProbeError::Smtp {
            stage: "banner",
            reply: "554 go away".into()
        })
    );
    let (addr, _) = smtp_server(b"220 hi\r\n", b"501 bad helo\r\n").await;
    let s = spec(addr, CheckKind::Smtp(SmtpCheck::default()), timing(5, 0, 1));
    assert_eq!(
        run(&s).await,
        Outcome::Failure(ProbeError::Smtp {
            stage: "HELO",
            reply: "501 bad helo".into()
        })
    );
    // An endless line is cut at 512 bytes and rejected.
    let long: &'static [u8] = Box::leak(vec![b'2'; 100_000].into_boxed_slice());
    let (addr, _) = smtp_server(long, b"250 ok\r\n").await;
    let s = spec(addr, CheckKind::Smtp(SmtpCheck::default()), timing(5, 0, 1));
    assert!(matches!(
        run(&s).await,
        Outcome::Failure(ProbeError::Smtp {
            stage: "banner",
            ..
        })
    ));
}

// ---- DNS (dnsmasq) ----

fn dns(t: &str, name: &str) -> DnsCheck {
    DnsCheck {
        record_type: t.into(),
        name: name.into(),
    }
}

#[tokio::test]
async fn dns_check_against_dnsmasq() {
    let server = dnsmasq().await;
    let ok = spec(
        server.addr,
        CheckKind::Dns(dns("a", "svc.test")),
        timing(5, 0, 1),
    );
    assert_eq!(run(&ok).await, OK);
    // dnsmasq has no upstream: other names are REFUSED.
    let refused = spec(
        server.addr,
        CheckKind::Dns(dns("SOA", ".")),
        timing(5, 0, 1),
    );
    match run(&refused).await {
        Outcome::Failure(ProbeError::Dns(text)) => assert!(text.contains("rcode"), "{text}"),
        other => panic!("unexpected {other:?}"),
    }
    let bad_type = spec(
        server.addr,
        CheckKind::Dns(dns("NOPE", "svc.test")),
        timing(5, 0, 1),
    );
    assert!(matches!(
        run(&bad_type).await,
        Outcome::Failure(ProbeError::Dns(_))
    ));
}

#[test]
fn dns_reply_judging() {
    use lvskit_healthcheck::probe::dns::{judge_reply, query_bytes};
    let q = query_bytes(&dns("AAAA", "svc.test"), 0x1234).unwrap();
    // Our own query is not a response: ignored.
    assert_eq!(judge_reply(&q, 0x1234), None);
    let mut resp = q.clone();
    resp[2] |= 0x80; // QR
    assert_eq!(judge_reply(&resp, 0x1234), Some(Ok(())));
    assert_eq!(judge_reply(&resp, 0x4321), None, "other id: ignored");
    resp[3] |= 0x03; // NXDOMAIN
    assert!(matches!(
        judge_reply(&resp, 0x1234),
        Some(Err(ProbeError::Dns(_)))
    ));
    assert_eq!(judge_reply(b"\x12", 0x1234), None);
}

// ---- UDP ----

fn udp(payload: &[u8], require_reply: bool) -> UdpCheck {
    UdpCheck {
        payload: payload.to_vec(),
        require_reply,
        ..UdpCheck::default()
    }
}

#[tokio::test]
async fn udp_echo_with_reply_rules() {
    let addr = udp_echo(None).await;
    let s = spec(addr, CheckKind::Udp(udp(b"ping", true)), timing(5, 0, 1));
    assert_eq!(run(&s).await, OK);
    let mut c = udp(b"ping", true);
    c.expected_reply = Some(b"pi".to_vec());
    assert_eq!(
        run(&spec(addr, CheckKind::Udp(c.clone()), timing(5, 0, 1))).await,
        OK
    );
    c.expected_reply = Some(b"pong".to_vec());
    assert!(matches!(
        run(&spec(addr, CheckKind::Udp(c), timing(5, 0, 1))).await,
        Outcome::Failure(ProbeError::UdpReply(_))
    ));
    let mut c = udp(b"ping", true);
    c.min_reply_length = 5;
    assert!(matches!(
        run(&spec(addr, CheckKind::Udp(c), timing(5, 0, 1))).await,
        Outcome::Failure(ProbeError::UdpReply(_))
    ));
    let mut c = udp(b"pingpong", true);
    c.max_reply_length = Some(4);
    assert!(matches!(
        run(&spec(addr, CheckKind::Udp(c), timing(5, 0, 1))).await,
        Outcome::Failure(ProbeError::UdpReply(_))
    ));
}

#[tokio::test]
async fn udp_port_unreachable_is_down() {
    let ip = unique_loopback();
    let port = free_udp_port(ip);
    let closed = SocketAddr::new(ip, port);
    for require_reply in [true, false] {
        let s = with_timeout(
            spec(
                closed,
                CheckKind::Udp(udp(b"x", require_reply)),
                timing(5, 0, 1),
            ),
            2000,
        );
        assert_eq!(
            run(&s).await,
            Outcome::Failure(ProbeError::Refused),
            "require_reply {require_reply}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn udp_silence_without_require_reply_is_up_and_with_it_times_out() {
    let silent = UdpSocket::bind((unique_loopback(), 0)).await.unwrap();
    let addr = silent.local_addr().unwrap();
    let s = with_timeout(
        spec(addr, CheckKind::Udp(udp(b"x", false)), timing(5, 0, 1)),
        3000,
    );
    assert_eq!(run(&s).await, OK);
    let s = with_timeout(
        spec(addr, CheckKind::Udp(udp(b"x", true)), timing(5, 0, 1)),
        3000,
    );
    let t0 = tokio::time::Instant::now();
    assert_eq!(
        run(&s).await,
        Outcome::Failure(ProbeError::Timeout(Duration::from_secs(3)))
    );
    assert_eq!(t0.elapsed(), Duration::from_secs(3));
    drop(silent);
}

// ---- PING ----

/// Tier 2 (as root): an ICMP socket needs CAP_NET_RAW, or a group in
/// `net.ipv4.ping_group_range` (icmp(7)), which admits no group by default.
#[tokio::test]
async fn netns_ping_loopback_v4_and_v6() {
    lvskit_testlab::require_root();
    let v4 = spec(
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        CheckKind::Ping,
        timing(5, 0, 1),
    );
    assert_eq!(run(&v4).await, OK);
    let v6 = spec(
        SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0),
        CheckKind::Ping,
        timing(5, 0, 1),
    );
    assert_eq!(run(&v6).await, OK);
    // Many at once: each matches only its own reply.
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        let s = if i % 2 == 0 { v4.clone() } else { v6.clone() };
        set.spawn(async move { run(&s).await });
    }
    while let Some(r) = set.join_next().await {
        assert_eq!(r.unwrap(), OK);
    }
}

// ---- MISC ----

fn sh(script: &str, timeout_ms: u64, dynamic: bool) -> CheckSpec {
    let misc = MiscCheck {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        timeout: Duration::from_millis(timeout_ms),
        dynamic,
        user: None,
    };
    spec(
        ([127, 0, 0, 1], 0).into(),
        CheckKind::Misc(misc),
        timing(5, 0, 1),
    )
}

#[tokio::test]
async fn misc_exit_codes_and_dynamic_weight() {
    assert_eq!(run(&sh("exit 0", 5000, false)).await, OK);
    assert_eq!(
        run(&sh("exit 1", 5000, false)).await,
        Outcome::Failure(ProbeError::ScriptExit(1))
    );
    assert_eq!(
        run(&sh("exit 7", 5000, false)).await,
        Outcome::Failure(ProbeError::ScriptExit(7))
    );
    assert_eq!(
        run(&sh("exit 7", 5000, true)).await,
        Outcome::Success {
            weight: Some(DynamicWeight::Absolute(5))
        }
    );
    assert_eq!(
        run(&sh("exit 1", 5000, true)).await,
        Outcome::Failure(ProbeError::ScriptExit(1))
    );
    assert_eq!(
        run(&sh("kill -9 $$", 5000, false)).await,
        Outcome::Failure(ProbeError::ScriptSignal(9))
    );
}

#[tokio::test(start_paused = true)]
async fn misc_timeout_kills_the_script() {
    let t0 = tokio::time::Instant::now();
    let r = run(&sh("sleep 30", 1500, false)).await;
    assert_eq!(
        r,
        Outcome::Failure(ProbeError::ScriptTimeout(Duration::from_millis(1500)))
    );
    assert_eq!(t0.elapsed(), Duration::from_millis(1500));
}

/// Tier 2 (as root): switching to another uid needs CAP_SETUID.
#[tokio::test]
async fn netns_misc_runs_as_the_given_user() {
    lvskit_testlab::require_root();
    let mut s = sh("test \"$(id -u):$(id -g)\" = 65534:65534", 5000, false);
    if let CheckKind::Misc(m) = &mut s.kind {
        m.user = Some((65534, 65534));
    }
    assert_eq!(run(&s).await, OK);
    let root = sh("test \"$(id -u)\" = 65534", 5000, false);
    assert_eq!(
        run(&root).await,
        Outcome::Failure(ProbeError::ScriptExit(1))
    );
}

// ---- FILE ----

#[tokio::test]
async fn file_content_becomes_weight_or_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weight");
    let file = |weight: i32, reverse: bool| {
        spec(
            ([127, 0, 0, 1], 0).into(),
            CheckKind::File(FileCheck {
                path: path.clone(),
                weight,
                reverse,
            }),
            timing(5, 0, 1),
        )
    };
    std::fs::write(&path, "0\n").unwrap();
    assert_eq!(run(&file(0, false)).await, OK);
    std::fs::write(&path, "3\n").unwrap();
    assert!(matches!(
        run(&file(0, false)).await,
        Outcome::Failure(ProbeError::File(_))
    ));
    assert_eq!(
        run(&file(10, false)).await,
        Outcome::Success {
            weight: Some(DynamicWeight::Offset(30))
        }
    );
    assert_eq!(
        run(&file(10, true)).await,
        Outcome::Success {
            weight: Some(DynamicWeight::Offset(-30))
        }
    );
    std::fs::write(&path, "-30").unwrap();
    assert!(matches!(
        run(&file(10, false)).await,
        Outcome::Failure(ProbeError::File(_))
    ));
    std::fs::write(&path, "garbage").unwrap();
    assert!(matches!(
        run(&file(1, false)).await,
        Outcome::Failure(ProbeError::File(_))
    ));
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        run(&file(1, false)).await,
        Outcome::Failure(ProbeError::File(_))
    ));
}

#[test]
fn smtp_reply_parsing() {
    use lvskit_healthcheck::probe::smtp::parse_reply;
    assert_eq!(
        parse_reply(b"220 ready\r\n").unwrap(),
        (220, "220 ready".into())
    );
    assert_eq!(parse_reply(b"250-a\r\n250-b\r\n250 c\r\n").unwrap().0, 250);
    assert_eq!(parse_reply(b"220\r\n").unwrap().0, 220);
    for bad in [
        &b""[..],
        b"220 no newline",
        b"22 x\r\n",
        b"abc ok\r\n",
        b"250-a\r\n251 b\r\n",
        b"250xok\r\n",
    ] {
        assert!(
            parse_reply(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let mut long = vec![b'2'; 3];
    long.extend(std::iter::repeat_n(b'x', 1000));
    long.extend(b"\r\n");
    assert!(
        parse_reply(&long).is_err(),
        "lines over 512 bytes are refused"
    );
}
