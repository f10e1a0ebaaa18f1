//! Tier 2: probes from one network namespace to another through a bridge
//! (lvskit-testlab), including a peer that goes silent (blackholed port):
//! the checks must end in DOWN with a timeout, within the timeout.

use std::time::{Duration, Instant};

use lvskit_healthcheck::checker::Outcome;
use lvskit_healthcheck::{CheckKind, CheckSpec, ProbeError};
use lvskit_testlab::{Lab, require_root};

fn spec(target: &str, kind: CheckKind, timeout_ms: u64) -> CheckSpec {
    let mut s = CheckSpec::new(target.parse().unwrap(), kind, Duration::from_secs(1));
    s.connect.connect_timeout = Duration::from_millis(timeout_ms);
    s
}

/// Runs each spec from inside `node`; returns (outcome, elapsed) per spec.
fn probe_from(node: &lvskit_testlab::Node, specs: Vec<CheckSpec>) -> Vec<(Outcome, Duration)> {
    node.in_netns(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut out = Vec::new();
            for s in &specs {
                let t0 = Instant::now();
                let o = lvskit_healthcheck::probe::run(s).await;
                out.push((o, t0.elapsed()));
            }
            out
        })
    })
    .unwrap()
}

#[test]
fn netns_ping_tcp_bind_if_and_silent_peer() {
    require_root();
    let lab = Lab::new().unwrap();
    let lan = lab.bridge("lan").unwrap();
    let lb = lab.node("lb").unwrap();
    let rs = lab.node("rs").unwrap();
    lab.connect(&lb, "eth0", &lan).unwrap();
    let rs_port = lab.connect(&rs, "eth0", &lan).unwrap();
    lb.add_addr("eth0", "10.0.0.1/24").unwrap();
    rs.add_addr("eth0", "10.0.0.2/24").unwrap();
    lb.add_addr("eth0", "fd00::1/64").unwrap();
    rs.add_addr("eth0", "fd00::2/64").unwrap();
    let listener = rs
        .in_netns(|| std::net::TcpListener::bind("10.0.0.2:8080"))
        .unwrap()
        .unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });

    let mut bound = spec("10.0.0.2:8080", CheckKind::Tcp, 2000);
    bound.connect.bind_if = Some("eth0".into());
    bound.connect.bindto = Some("10.0.0.1".parse().unwrap());
    let mut wrong_if = spec("10.0.0.2:8080", CheckKind::Tcp, 500);
    wrong_if.connect.bind_if = Some("lo".into());
    let results = probe_from(
        &lb,
        vec![
            spec("10.0.0.2:0", CheckKind::Ping, 2000),
            spec("[fd00::2]:0", CheckKind::Ping, 2000),
            spec("10.0.0.2:8080", CheckKind::Tcp, 2000),
            spec("10.0.0.2:8081", CheckKind::Tcp, 2000),
            bound,
            wrong_if,
        ],
    );
    let outcomes: Vec<_> = results.iter().map(|(o, _)| o.clone()).collect();
    assert_eq!(
        outcomes[..3],
        [
            Outcome::Success { weight: None },
            Outcome::Success { weight: None },
            Outcome::Success { weight: None }
        ]
    );
    assert_eq!(
        outcomes[3],
        Outcome::Failure(ProbeError::Refused),
        "closed port: RST"
    );
    assert_eq!(outcomes[4], Outcome::Success { weight: None });
    // Bound to lo, the packets never reach rs.
    assert!(
        matches!(outcomes[5], Outcome::Failure(_)),
        "{:?}",
        outcomes[5]
    );

    // rs goes silent: its frames are dropped at the bridge.
    let fault = lab.blackhole(&rs_port).unwrap();
    let results = probe_from(
        &lb,
        vec![
            spec("10.0.0.2:0", CheckKind::Ping, 800),
            spec("10.0.0.2:8080", CheckKind::Tcp, 800),
        ],
    );
    for (outcome, elapsed) in results {
        assert_eq!(
            outcome,
            Outcome::Failure(ProbeError::Timeout(Duration::from_millis(800)))
        );
        assert!(
            // Bounded: the timeout plus scheduling slack on a loaded machine.
            elapsed >= Duration::from_millis(800) && elapsed < Duration::from_millis(3000),
            "{elapsed:?}"
        );
    }
    drop(fault);
    let back = probe_from(&lb, vec![spec("10.0.0.2:8080", CheckKind::Tcp, 2000)]);
    assert_eq!(back[0].0, Outcome::Success { weight: None });
}
