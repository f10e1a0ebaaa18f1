//! The pool rules: weights, inhibit_on_failure, quorum with hysteresis and
//! the sorry server (virtual clock, pure data).

use std::net::SocketAddr;
use std::time::Instant;

use lvskit_healthcheck::pool::Role;
use lvskit_healthcheck::{DynamicWeight, Pool, RealServerConfig, SorryServer, VirtualServerConfig};

fn addr(i: u8) -> SocketAddr {
    ([10, 0, 0, i], 80).into()
}

fn rs(i: u8, weight: u32, inhibit: bool) -> RealServerConfig {
    RealServerConfig {
        address: addr(i),
        weight,
        inhibit_on_failure: inhibit,
    }
}

fn weights(p: &Pool) -> Vec<(SocketAddr, u32)> {
    p.desired()
        .into_iter()
        .map(|d| (d.address, d.weight))
        .collect()
}

#[test]
fn dead_servers_are_removed_or_inhibited() {
    let t = Instant::now();
    let cfg = VirtualServerConfig {
        real_servers: vec![rs(1, 3, false), rs(2, 5, true)],
        quorum: 1,
        hysteresis: 0,
        sorry_server: None,
    };
    let mut p = Pool::new(t, cfg, &[true, true]);
    assert_eq!(weights(&p), vec![(addr(1), 3), (addr(2), 5)]);
    p.set_alive(t, 0, false);
    p.set_alive(t, 1, false);
    assert_eq!(
        weights(&p),
        vec![(addr(2), 0)],
        "inhibit_on_failure keeps it at weight 0"
    );
}

#[test]
fn quorum_with_hysteresis() {
    // quorum 5, hysteresis 2: gained at >= 7, lost below 3 (or at 0).
    let t = Instant::now();
    let cfg = VirtualServerConfig {
        real_servers: (1..=4).map(|i| rs(i, 2, false)).collect(),
        quorum: 5,
        hysteresis: 2,
        sorry_server: None,
    };
    let mut p = Pool::new(t, cfg, &[true, true, true, true]); // sum 8 >= 7
    let init = p.poll_event().unwrap();
    assert!(init.up && init.initial && init.weight_sum == 8 && init.threshold == 7);
    p.set_alive(t, 0, false); // 6
    p.set_alive(t, 1, false); // 4: still >= 3
    assert!(p.quorum_up());
    assert_eq!(p.poll_event(), None);
    p.set_alive(t, 2, false); // 2 < 3: lost
    let ev = p.poll_event().unwrap();
    assert!(!ev.up && ev.weight_sum == 2 && ev.threshold == 3);
    p.set_alive(t, 2, true); // 4 < 7: still down
    p.set_alive(t, 1, true); // 6 < 7: still down
    assert!(!p.quorum_up());
    p.set_alive(t, 0, true); // 8 >= 7: gained
    let ev = p.poll_event().unwrap();
    assert!(ev.up && ev.weight_sum == 8 && ev.threshold == 7);
}

#[test]
fn zero_weight_sum_loses_quorum_even_below_hysteresis() {
    // quorum 1, hysteresis 1: threshold for loss is 0, but a zero sum loses.
    let t = Instant::now();
    let cfg = VirtualServerConfig {
        real_servers: vec![rs(1, 2, false)],
        quorum: 1,
        hysteresis: 1,
        sorry_server: None,
    };
    let mut p = Pool::new(t, cfg, &[true]);
    assert!(p.quorum_up());
    p.set_alive(t, 0, false);
    assert!(!p.quorum_up());
}

#[test]
fn sorry_server_replaces_the_pool_while_quorum_is_down() {
    let t = Instant::now();
    let sorry = SorryServer {
        address: addr(99),
        weight: 1,
        inhibit: false,
    };
    let cfg = VirtualServerConfig {
        real_servers: vec![rs(1, 1, false), rs(2, 1, true), rs(3, 1, false)],
        quorum: 3,
        hysteresis: 0,
        sorry_server: Some(sorry),
    };
    let mut p = Pool::new(t, cfg, &[true, true, true]);
    assert_eq!(weights(&p), vec![(addr(1), 1), (addr(2), 1), (addr(3), 1)]);
    p.set_alive(t, 2, false); // sum 2 < 3: sorry server in, alive servers out
    assert_eq!(weights(&p), vec![(addr(2), 0), (addr(99), 1)]);
    let roles: Vec<Role> = p.desired().into_iter().map(|d| d.role).collect();
    assert_eq!(roles, vec![Role::RealServer(1), Role::SorryServer]);
    p.set_alive(t, 2, true);
    assert_eq!(weights(&p), vec![(addr(1), 1), (addr(2), 1), (addr(3), 1)]);
}

#[test]
fn inhibited_sorry_server_stays_at_weight_zero() {
    let t = Instant::now();
    let sorry = SorryServer {
        address: addr(99),
        weight: 1,
        inhibit: true,
    };
    let cfg = VirtualServerConfig {
        real_servers: vec![rs(1, 1, false)],
        quorum: 1,
        hysteresis: 0,
        sorry_server: Some(sorry),
    };
    let mut p = Pool::new(t, cfg, &[true]);
    assert_eq!(weights(&p), vec![(addr(1), 1), (addr(99), 0)]);
    p.set_alive(t, 0, false);
    assert_eq!(weights(&p), vec![(addr(99), 1)]);
}

#[test]
fn alpha_start_without_quorum_uses_sorry_server() {
    let t = Instant::now();
    let sorry = SorryServer {
        address: addr(99),
        weight: 1,
        inhibit: false,
    };
    let cfg = VirtualServerConfig {
        real_servers: vec![rs(1, 1, false)],
        quorum: 1,
        hysteresis: 0,
        sorry_server: Some(sorry),
    };
    let mut p = Pool::new(t, cfg, &[false]);
    let ev = p.poll_event().unwrap();
    assert!(!ev.up && ev.initial);
    assert_eq!(weights(&p), vec![(addr(99), 1)]);
}

#[test]
fn dynamic_weights_count_towards_quorum() {
    let t = Instant::now();
    let cfg = VirtualServerConfig {
        real_servers: vec![rs(1, 10, false), rs(2, 10, false)],
        quorum: 15,
        hysteresis: 0,
        sorry_server: None,
    };
    let mut p = Pool::new(t, cfg, &[true, true]);
    p.set_dynamic_weight(t, 0, DynamicWeight::Absolute(2)); // 12 < 15
    assert!(!p.quorum_up());
    assert_eq!(weights(&p), vec![(addr(1), 2), (addr(2), 10)]);
    p.set_dynamic_weight(t, 1, DynamicWeight::Offset(5)); // 17
    assert!(p.quorum_up());
    p.set_dynamic_weight(t, 1, DynamicWeight::Offset(-50)); // clamped at 0
    assert_eq!(p.effective_weight(1), 0);
}
