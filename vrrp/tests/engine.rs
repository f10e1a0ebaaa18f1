//! Behaviour of one engine (and of sync groups), input by input, on a
//! virtual clock.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::*;
use lvskit_vrrp::wire::{ChecksumMode, Version};
use lvskit_vrrp::{
    Action, FaultCause, GroupAction, InitialState, InputError, Instance, LinkState,
    NewMasterReason, NotifyEvent, Reason, State, SyncGroup, Track, TrackId, TrackKind, TrackStatus,
    UnicastPeer, VirtualAddress,
};

const PEER: &str = "10.0.3.2";
const ME: &str = "10.0.3.1";

fn advert_from(vr: &Instance, source: &str, priority: u8, adver_int_cs: u16) -> Vec<u8> {
    let mut repr = repr_for(vr.config(), priority);
    repr.adver_int = adver_int_cs;
    emit(&repr, source, GROUP, ChecksumMode::PseudoHeader)
}

fn receive(vr: &mut Instance, now: Instant, source: &str, priority: u8) -> Vec<Action> {
    let units = vr.config().adver_int_units().unwrap();
    let bytes = advert_from(vr, source, priority, units);
    vr.handle_packet(now, &meta(source, GROUP), &bytes).unwrap();
    drain(vr)
}

fn sent(actions: &[Action]) -> Vec<u8> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendAdvert(ad) => Some(ad.priority),
            _ => None,
        })
        .collect()
}

fn transitions(actions: &[Action]) -> Vec<(State, State, Reason)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::StateChanged { from, to, reason } => Some((*from, *to, *reason)),
            _ => None,
        })
        .collect()
}

/// Drives an instance through its own timers up to `until`.
fn run_until(vr: &mut Instance, until: Instant) -> Vec<Action> {
    let mut all = Vec::new();
    while let Some(at) = vr.poll_timeout().filter(|at| *at <= until) {
        vr.handle_timeout(at);
        all.extend(drain(vr));
    }
    all
}

fn master(config: lvskit_vrrp::Config, now: Instant) -> Instance {
    let mut vr = started(config, now);
    let at = vr.poll_timeout().unwrap();
    vr.handle_timeout(at);
    drain(&mut vr);
    assert_eq!(vr.state(), State::Master);
    vr
}

#[test]
fn owner_becomes_master_at_startup_with_actions_in_order() {
    let now = Instant::now();
    let mut vr = Instance::new(config(ME, 255)).unwrap();
    vr.startup(now);
    let actions = drain(&mut vr);
    assert_eq!(
        actions[0],
        Action::StateChanged {
            from: State::Initialize,
            to: State::Master,
            reason: Reason::Startup
        }
    );
    assert_eq!(actions[1], Action::AddVip(VirtualAddress::new(ip(VIP))));
    assert!(
        matches!(&actions[2], Action::SendAdvert(ad) if ad.priority == 255 && ad.destination == ip(GROUP))
    );
    let garps = actions
        .iter()
        .filter(|a| matches!(a, Action::GratuitousArp(_)))
        .count();
    assert_eq!(garps, 5, "garp_master_repeat 5");
    let Some(Action::Notify(n)) = actions.last() else {
        panic!("no notify: {actions:?}")
    };
    assert_eq!(n.arguments(), ["INSTANCE", "VR_51", "MASTER", "255"]);
    assert_eq!(vr.statistics().new_master_reason, NewMasterReason::Priority);
    assert!(vr.accept(), "an owner always accepts");
}

#[test]
fn backup_waits_master_down_interval_exactly() {
    let now = Instant::now();
    let mut c = config(ME, 50);
    c.version = Version::V2;
    let vr = started(c, now);
    assert_eq!(
        vr.poll_timeout(),
        Some(now + Duration::from_nanos(3_804_687_500))
    );
}

#[test]
fn state_master_non_owner_waits_one_interval_plus_skew() {
    let now = Instant::now();
    let mut c = config(ME, 100);
    c.initial_state = InitialState::Master;
    let mut vr = started(c, now);
    assert_eq!(vr.state(), State::Backup);
    let skew = Duration::from_nanos(156 * 1_000_000_000 / 256);
    assert_eq!(vr.poll_timeout(), Some(now + Duration::from_secs(1) + skew));
    let actions = run_until(&mut vr, now + Duration::from_secs(2));
    assert_eq!(
        transitions(&actions),
        [(State::Backup, State::Master, Reason::StartupAsMaster)]
    );
    // A higher-priority master heard during the wait keeps it Backup.
    let mut c = config(ME, 100);
    c.initial_state = InitialState::Master;
    let mut vr = started(c, now);
    receive(&mut vr, now + Duration::from_millis(500), PEER, 200);
    assert!(run_until(&mut vr, now + Duration::from_secs(2)).is_empty());
    assert_eq!(vr.state(), State::Backup);
}

#[test]
fn v3_backup_learns_the_master_interval() {
    let now = Instant::now();
    let mut vr = started(config(ME, 100), now);
    let bytes = advert_from(&vr, PEER, 200, 50);
    vr.handle_packet(now, &meta(PEER, GROUP), &bytes).unwrap();
    assert_eq!(vr.master_adver_interval(), Duration::from_millis(500));
    // 3 · 50 cs + (156 · 50 / 256) cs
    let expected = Duration::from_millis(1500) + Duration::from_nanos(156 * 50 * 10_000_000 / 256);
    assert_eq!(vr.master_down_interval(), expected);
    assert_eq!(vr.poll_timeout(), Some(now + expected));
}

#[test]
fn shutdown_sends_priority_zero_and_backup_takes_over_after_skew() {
    let now = Instant::now();
    let mut m = master(config(PEER, 200), now);
    m.shutdown(now);
    let actions = drain(&mut m);
    assert_eq!(sent(&actions), [0]);
    assert!(actions.contains(&Action::DelVip(VirtualAddress::new(ip(VIP)))));
    assert!(matches!(actions.last(), Some(Action::Notify(n)) if n.event == NotifyEvent::Stop));
    assert_eq!(m.state(), State::Initialize);
    assert_eq!(m.poll_timeout(), None);
    assert_eq!(m.statistics().priority_zero_sent, 1);

    let mut b = started(config(ME, 100), now);
    let t = now + Duration::from_secs(1);
    receive(&mut b, t, PEER, 0);
    assert_eq!(b.statistics().priority_zero_received, 1);
    assert_eq!(b.poll_timeout(), Some(t + b.skew_time()));
    let skew = b.skew_time();
    let actions = run_until(&mut b, t + skew);
    assert_eq!(
        transitions(&actions),
        [(State::Backup, State::Master, Reason::MasterReleased)]
    );
}

#[test]
fn master_answers_priority_zero_with_an_advert() {
    let now = Instant::now();
    let mut m = master(config(ME, 100), now);
    let actions = receive(&mut m, now, PEER, 0);
    assert_eq!(sent(&actions), [100]);
    assert_eq!(m.state(), State::Master);
}

#[test]
fn master_steps_down_for_higher_priority_or_equal_with_higher_address() {
    let now = Instant::now();
    let mut m = master(config(ME, 100), now);
    let actions = receive(&mut m, now, PEER, 150);
    assert_eq!(
        transitions(&actions),
        [(
            State::Master,
            State::Backup,
            Reason::HigherPriority {
                source: ip(PEER),
                priority: 150
            }
        )]
    );
    assert!(actions.contains(&Action::DelVip(VirtualAddress::new(ip(VIP)))));

    let mut m = master(config(ME, 100), now);
    receive(&mut m, now, PEER, 100);
    assert_eq!(m.state(), State::Backup, "10.0.3.2 > 10.0.3.1 wins the tie");

    let mut m = master(config("10.0.3.3", 100), now);
    let actions = receive(&mut m, now, PEER, 100);
    assert_eq!(
        m.state(),
        State::Master,
        "10.0.3.2 < 10.0.3.3 loses the tie"
    );
    assert_eq!(sent(&actions), [100], "and is answered at once");
}

#[test]
fn master_readvertises_on_lower_priority_unless_switched_off() {
    let now = Instant::now();
    let mut m = master(config(ME, 100), now);
    let t = now + Duration::from_millis(300);
    let actions = receive(&mut m, t, PEER, 50);
    assert_eq!(sent(&actions), [100]);
    assert!(
        actions.iter().any(
            |a| matches!(a, Action::Notify(n) if n.event == NotifyEvent::MasterRxLowerPriority)
        )
    );
    // The Adver_Timer restarted from now.
    assert_eq!(m.poll_timeout(), Some(t + Duration::from_secs(1)));

    let mut c = config(ME, 100);
    c.readvertise_on_lower_priority = false;
    let mut m = master(c, now);
    let actions = receive(&mut m, t, PEER, 50);
    assert!(sent(&actions).is_empty());
    assert_eq!(m.state(), State::Master);
}

#[test]
fn preempt_takes_over_from_a_lower_master_after_master_down_interval() {
    let now = Instant::now();
    let mut b = started(config(ME, 200), now);
    let t = now + Duration::from_millis(100);
    receive(&mut b, t, PEER, 100);
    // The lower-priority advert was discarded: the timer still runs from startup.
    assert_eq!(b.poll_timeout(), Some(now + b.master_down_interval()));
    let actions = run_until(&mut b, now + Duration::from_secs(4));
    assert_eq!(
        transitions(&actions),
        [(State::Backup, State::Master, Reason::Preempted)]
    );
    assert_eq!(b.statistics().new_master_reason, NewMasterReason::Preempted);
}

#[test]
fn nopreempt_follows_a_lower_master() {
    let now = Instant::now();
    let mut c = config(ME, 200);
    c.preempt = false;
    let mut b = started(c, now);
    for i in 1..10 {
        receive(&mut b, now + Duration::from_secs(i), PEER, 100);
        assert!(run_until(&mut b, now + Duration::from_secs(i)).is_empty());
    }
    assert_eq!(b.state(), State::Backup);
    assert_eq!(b.master_address(), Some(ip(PEER)));
}

#[test]
fn preempt_delay_follows_a_lower_master_until_the_delay_ends() {
    let now = Instant::now();
    let mut c = config(ME, 200);
    c.preempt_delay = Duration::from_secs(10);
    let mut b = started(c, now);
    let mut t = now;
    // Adverts every second from a lower master: followed for 10 s.
    while t < now + Duration::from_secs(10) {
        t += Duration::from_secs(1);
        assert!(
            run_until(&mut b, t).is_empty(),
            "took over too early at {:?}",
            t - now
        );
        receive(&mut b, t, PEER, 100);
    }
    // After the delay its adverts are discarded: master after one more
    // Master_Down_Interval counted from the last followed advert.
    let actions = run_until(&mut b, now + Duration::from_secs(20));
    assert_eq!(
        transitions(&actions),
        [(State::Backup, State::Master, Reason::Preempted)]
    );
    assert_eq!(b.state(), State::Master);
}

fn tracked(priority: u8, tracks: Vec<Track>) -> lvskit_vrrp::Config {
    let mut c = config(ME, priority);
    c.tracks = tracks;
    c
}

fn script(weight: i16) -> Track {
    Track::new(TrackKind::Script("chk".into())).with_weight(weight)
}

#[test]
fn track_weights_change_priority_clamped_and_never_for_owners() {
    let now = Instant::now();
    let mut vr = started(tracked(100, vec![script(50), script(-30)]), now);
    assert_eq!(vr.effective_priority(), 150, "+50 while up");
    vr.handle_track(now, TrackId(0), TrackStatus::Down).unwrap();
    vr.handle_track(now, TrackId(1), TrackStatus::Down).unwrap();
    assert_eq!(vr.effective_priority(), 70, "−30 while down");

    let mut vr = started(tracked(200, vec![script(253)]), now);
    assert_eq!(vr.effective_priority(), 254, "clamped to 254");
    let mut vr2 = started(tracked(10, vec![script(-253)]), now);
    vr2.handle_track(now, TrackId(0), TrackStatus::Down)
        .unwrap();
    assert_eq!(vr2.effective_priority(), 1, "clamped to 1");
    vr.handle_track(now, TrackId(0), TrackStatus::Down).unwrap();
    assert_eq!(vr.effective_priority(), 200);

    let mut owner = started(tracked(255, vec![script(-100)]), now);
    owner
        .handle_track(now, TrackId(0), TrackStatus::Down)
        .unwrap();
    assert_eq!(owner.effective_priority(), 255);

    assert_eq!(
        vr.handle_track(now, TrackId(9), TrackStatus::Up),
        Err(InputError::UnknownTrack(TrackId(9)))
    );
}

#[test]
fn rise_fall_and_reverse() {
    let now = Instant::now();
    let mut t = script(20);
    t.rise = 2;
    t.fall = 3;
    let mut r = script(0);
    r.reverse = true;
    r.initially_up = false;
    let mut vr = started(tracked(100, vec![t, r]), now);
    assert_eq!(vr.effective_priority(), 120);
    vr.handle_track(now, TrackId(0), TrackStatus::Down).unwrap();
    vr.handle_track(now, TrackId(0), TrackStatus::Down).unwrap();
    assert_eq!(vr.effective_priority(), 120, "fall 3 not reached");
    vr.handle_track(now, TrackId(0), TrackStatus::Up).unwrap();
    vr.handle_track(now, TrackId(0), TrackStatus::Down).unwrap();
    vr.handle_track(now, TrackId(0), TrackStatus::Down).unwrap();
    assert_eq!(
        vr.effective_priority(),
        120,
        "an up result resets the streak"
    );
    vr.handle_track(now, TrackId(0), TrackStatus::Down).unwrap();
    assert_eq!(vr.effective_priority(), 100);
    vr.handle_track(now, TrackId(0), TrackStatus::Up).unwrap();
    assert_eq!(vr.effective_priority(), 100);
    vr.handle_track(now, TrackId(0), TrackStatus::Up).unwrap();
    assert_eq!(vr.effective_priority(), 120, "rise 2");
    // Reverse, weight 0: "up" means fault.
    assert_eq!(vr.state(), State::Backup);
    vr.handle_track(now, TrackId(1), TrackStatus::Up).unwrap();
    assert_eq!(vr.state(), State::Fault);
}

#[test]
fn weight_zero_down_is_fault_and_a_master_sends_priority_zero() {
    let now = Instant::now();
    let mut m = master(tracked(100, vec![script(0)]), now);
    m.handle_track(now, TrackId(0), TrackStatus::Down).unwrap();
    let actions = drain(&mut m);
    assert_eq!(sent(&actions), [0]);
    assert!(actions.contains(&Action::DelVip(VirtualAddress::new(ip(VIP)))));
    assert_eq!(
        transitions(&actions),
        [(
            State::Master,
            State::Fault,
            Reason::Fault(FaultCause::Track(TrackId(0)))
        )]
    );
    assert_eq!(m.poll_timeout(), None, "no adverts in FAULT");
    m.handle_track(now, TrackId(0), TrackStatus::Up).unwrap();
    let actions = drain(&mut m);
    assert_eq!(
        transitions(&actions),
        [(State::Fault, State::Backup, Reason::FaultCleared)]
    );
    assert_eq!(m.poll_timeout(), Some(now + m.master_down_interval()));
}

#[test]
fn link_down_is_fault() {
    let now = Instant::now();
    let mut vr = started(config(ME, 100), now);
    vr.handle_link_state(now, LinkState::Down);
    assert_eq!(vr.state(), State::Fault);
    assert_eq!(vr.own_fault(), Some(FaultCause::LinkDown));
    vr.handle_link_state(now, LinkState::Up);
    assert_eq!(vr.state(), State::Backup);
    // Starting with the link down starts in FAULT.
    let mut vr = Instance::new(config(ME, 100)).unwrap();
    vr.handle_link_state(now, LinkState::Down);
    vr.startup(now);
    assert_eq!(vr.state(), State::Fault);
}

#[test]
fn garp_schedule_delay_refresh_and_interval() {
    let now = Instant::now();
    let mut c = config(ME, 255);
    c.virtual_addresses
        .push(VirtualAddress::new(ip("10.0.3.101")));
    c.garp.master_repeat = 2;
    c.garp.master_delay = Duration::from_secs(5);
    c.garp.refresh = Duration::from_secs(60);
    c.garp.refresh_repeat = 1;
    c.garp.interval = Duration::from_millis(10);
    let mut vr = Instance::new(c).unwrap();
    vr.startup(now);
    let garps = |actions: &[Action]| {
        actions
            .iter()
            .filter(|a| matches!(a, Action::GratuitousArp(_)))
            .count()
    };
    // First round at once (one per VIP), the second 10 ms later.
    assert_eq!(garps(&drain(&mut vr)), 2);
    assert_eq!(
        garps(&run_until(&mut vr, now + Duration::from_millis(9))),
        0
    );
    assert_eq!(
        garps(&run_until(&mut vr, now + Duration::from_millis(10))),
        2
    );
    // Second burst at garp_master_delay.
    assert_eq!(
        garps(&run_until(&mut vr, now + Duration::from_millis(4999))),
        0
    );
    assert_eq!(
        garps(&run_until(&mut vr, now + Duration::from_millis(5010))),
        4
    );
    // Refresh every 60 s, one round.
    assert_eq!(garps(&run_until(&mut vr, now + Duration::from_secs(60))), 2);
    assert_eq!(
        garps(&run_until(&mut vr, now + Duration::from_secs(120))),
        2
    );
}

#[test]
fn ipv6_masters_send_unsolicited_na() {
    let now = Instant::now();
    let mut c = lvskit_vrrp::Config::new(
        7,
        ip("fe80::1"),
        vec![
            VirtualAddress::new(ip("fe80::7")),
            VirtualAddress::new(ip("2001:db8::7")),
        ],
    );
    c.priority = 255;
    c.garp.master_repeat = 1;
    let mut vr = Instance::new(c).unwrap();
    vr.startup(now);
    let actions = drain(&mut vr);
    let nas: Vec<IpAddr> = actions
        .iter()
        .filter_map(|a| match a {
            Action::UnsolicitedNa(a) => Some(IpAddr::V6(*a)),
            _ => None,
        })
        .collect();
    assert_eq!(nas, [ip("fe80::7"), ip("2001:db8::7")]);
    let Some(Action::SendAdvert(ad)) = actions.iter().find(|a| matches!(a, Action::SendAdvert(_)))
    else {
        panic!()
    };
    assert_eq!(ad.destination, ip("ff02::12"));
}

#[test]
fn unicast_sends_one_advert_per_peer_with_its_own_checksum() {
    let now = Instant::now();
    let mut c = config(ME, 255);
    c.unicast_peers = vec![
        UnicastPeer::new(ip("10.0.3.2")),
        UnicastPeer::new(ip("10.0.3.3")),
    ];
    let mut vr = Instance::new(c).unwrap();
    vr.startup(now);
    let ads: Vec<_> = drain(&mut vr)
        .into_iter()
        .filter_map(|a| match a {
            Action::SendAdvert(ad) => Some(ad),
            _ => None,
        })
        .collect();
    assert_eq!(ads.len(), 2);
    assert_eq!(ads[0].destination, ip("10.0.3.2"));
    assert_eq!(ads[1].destination, ip("10.0.3.3"));
    assert_ne!(ads[0].payload[6..8], ads[1].payload[6..8]);
}

#[test]
fn configuration_errors_are_typed() {
    use lvskit_vrrp::ConfigError;
    let mut c = config(ME, 100);
    c.advert_interval = Duration::from_millis(15);
    assert_eq!(
        Instance::new(c).unwrap_err(),
        ConfigError::AdvertInterval(Duration::from_millis(15))
    );
    let mut c = config(ME, 100);
    c.version = Version::V2;
    c.advert_interval = Duration::from_millis(500);
    assert!(matches!(
        Instance::new(c),
        Err(ConfigError::AdvertInterval(_))
    ));
    let mut c = config(ME, 100);
    c.tracks = vec![script(254)];
    assert!(matches!(
        Instance::new(c),
        Err(ConfigError::TrackWeight { .. })
    ));
    let mut c = config(ME, 100);
    c.version = Version::V2;
    c.authentication = lvskit_vrrp::Authentication::Unknown {
        auth_type: 2,
        data: [0; 8],
    };
    assert_eq!(
        Instance::new(c).unwrap_err(),
        ConfigError::Authentication(2)
    );
    assert_eq!(
        Instance::new(config(ME, 0)).unwrap_err(),
        ConfigError::Priority
    );
}

fn member(vrid: u8, primary: &str, vip: &str, tracks: Vec<Track>) -> Instance {
    let mut c = lvskit_vrrp::Config::new(vrid, ip(primary), vec![VirtualAddress::new(ip(vip))]);
    c.priority = 100;
    c.tracks = tracks;
    Instance::new(c).unwrap()
}

fn drain_group(g: &mut SyncGroup) -> Vec<GroupAction> {
    std::iter::from_fn(|| g.poll_action()).collect()
}

#[test]
fn sync_group_members_follow_each_other() {
    let now = Instant::now();
    let mut g = SyncGroup::new(
        "G1",
        vec![
            member(1, ME, "10.0.3.100", vec![]),
            member(2, ME, "10.0.3.101", vec![]),
        ],
    );
    g.startup(now);
    drain_group(&mut g);
    assert_eq!(g.state(), State::Backup);
    // Member 1 hears a master, member 0 does not: member 0 times out first
    // and pulls member 1 along.
    let peer_ad = {
        let m = &g.members()[1];
        advert_from(m, PEER, 200, 100)
    };
    g.handle_packet(
        now + Duration::from_millis(10),
        &meta(PEER, GROUP),
        &peer_ad,
    )
    .unwrap();
    let at = g.poll_timeout().unwrap();
    g.handle_timeout(at);
    assert_eq!(g.members()[0].state(), State::Master);
    assert_eq!(g.members()[1].state(), State::Master);
    let actions = drain_group(&mut g);
    assert!(actions.iter().any(|a| matches!(
        a,
        GroupAction::Member {
            index: 1,
            action: Action::StateChanged {
                reason: Reason::SyncGroup,
                ..
            }
        }
    )));
    let Some(GroupAction::Notify(n)) = actions.last() else {
        panic!("{actions:?}")
    };
    assert_eq!(n.arguments(), ["GROUP", "G1", "MASTER", "0"]);
    // Member 1 hears a higher master: both go back to Backup.
    g.handle_packet(at, &meta(PEER, GROUP), &peer_ad).unwrap();
    assert_eq!(g.members()[0].state(), State::Backup);
    assert_eq!(g.members()[1].state(), State::Backup);
}

#[test]
fn sync_group_one_fault_faults_all() {
    let now = Instant::now();
    let mut g = SyncGroup::new(
        "G2",
        vec![
            member(1, ME, "10.0.3.100", vec![script(0)]),
            member(2, ME, "10.0.3.101", vec![]),
        ],
    );
    g.startup(now);
    let at = g.poll_timeout().unwrap();
    g.handle_timeout(at);
    assert_eq!(g.state(), State::Master);
    drain_group(&mut g);
    g.handle_track(at, 0, TrackId(0), TrackStatus::Down)
        .unwrap();
    assert_eq!(g.state(), State::Fault);
    assert_eq!(g.members()[1].state(), State::Fault);
    let actions = drain_group(&mut g);
    // Both masters sent priority 0 on their way to FAULT.
    let zeros = actions
        .iter()
        .filter(|a| matches!(a, GroupAction::Member { action: Action::SendAdvert(ad), .. } if ad.priority == 0))
        .count();
    assert_eq!(zeros, 2);
    g.handle_track(at, 0, TrackId(0), TrackStatus::Up).unwrap();
    assert_eq!(g.members()[0].state(), State::Backup);
    assert_eq!(g.members()[1].state(), State::Backup);
    assert_eq!(
        g.handle_link_state(at, 5, LinkState::Down),
        Err(InputError::NoSuchMember(5))
    );
}

#[test]
fn lower_priority_advert_schedules_one_garp_burst() {
    let now = Instant::now();
    let mut c = config(ME, 100);
    c.garp.master_delay = Duration::ZERO;
    c.garp.lower_prio_delay = Duration::from_secs(2);
    c.garp.lower_prio_repeat = 3;
    let mut m = master(c, now);
    let t = m.poll_timeout().unwrap() - Duration::from_millis(1);
    for i in 0..4 {
        receive(&mut m, t + Duration::from_millis(10 * i), PEER, 50);
    }
    let garps = run_until(&mut m, t + Duration::from_secs(3))
        .iter()
        .filter(|a| matches!(a, Action::GratuitousArp(_)))
        .count();
    assert_eq!(
        garps, 3,
        "one burst of lower_prio_repeat, not one per advert"
    );
}

#[test]
fn sync_group_follows_an_owner_at_startup() {
    let now = Instant::now();
    let mut owner =
        lvskit_vrrp::Config::new(3, ip(ME), vec![VirtualAddress::new(ip("10.0.3.102"))]);
    owner.priority = 255;
    let mut g = SyncGroup::new(
        "G3",
        vec![
            member(1, ME, "10.0.3.100", vec![]),
            Instance::new(owner).unwrap(),
        ],
    );
    g.startup(now);
    assert_eq!(g.members()[0].state(), State::Master);
    assert_eq!(g.state(), State::Master);
}

#[test]
fn reconfigure_keeps_a_master_master_and_moves_its_addresses() {
    let now = Instant::now();
    let mut m = master(config(ME, 100), now);
    let t = now + Duration::from_secs(5);
    let mut c = m.config().clone();
    c.priority = 120;
    c.advert_interval = Duration::from_millis(500);
    c.virtual_addresses = vec![VirtualAddress::new(ip("10.0.3.200"))];
    m.reconfigure(t, c).unwrap();
    assert_eq!(m.state(), State::Master);
    assert_eq!(m.effective_priority(), 120);
    let actions = drain(&mut m);
    assert!(transitions(&actions).is_empty(), "{actions:?}");
    assert!(actions.contains(&Action::DelVip(VirtualAddress::new(ip(VIP)))));
    assert!(actions.contains(&Action::AddVip(VirtualAddress::new(ip("10.0.3.200")))));
    assert!(actions.contains(&Action::GratuitousArp("10.0.3.200".parse().unwrap())));
    // An advert at once, at the new priority, then every 500 ms.
    assert_eq!(sent(&actions), [120]);
    assert_eq!(m.poll_timeout(), Some(t + Duration::from_millis(500)));
}

#[test]
fn reconfigure_keeps_a_backup_s_timer_and_track_state() {
    let now = Instant::now();
    let mut c = config(ME, 100);
    c.tracks = vec![script(-30)];
    let mut b = started(c, now);
    receive(&mut b, now, PEER, 150);
    b.handle_track(now, TrackId(0), TrackStatus::Down).unwrap();
    assert_eq!(b.effective_priority(), 70);
    let down_at = b.poll_timeout().unwrap();
    let mut c = b.config().clone();
    c.priority = 90;
    b.reconfigure(now, c).unwrap();
    assert_eq!(b.state(), State::Backup);
    assert_eq!(b.poll_timeout(), Some(down_at));
    // The script is still down: 90 - 30.
    assert_eq!(b.effective_priority(), 60);
    let actions = drain(&mut b);
    assert!(sent(&actions).is_empty() && transitions(&actions).is_empty());
}

#[test]
fn reconfigure_refuses_another_vrid_and_applies_a_new_weight_0_track() {
    let now = Instant::now();
    let mut m = master(config(ME, 100), now);
    let mut other = m.config().clone();
    other.vrid += 1;
    assert_eq!(
        m.reconfigure(now, other),
        Err(lvskit_vrrp::ConfigError::Identity)
    );
    assert_eq!(m.state(), State::Master);
    let mut c = m.config().clone();
    let mut track = script(0);
    track.initially_up = false;
    c.tracks = vec![track];
    m.reconfigure(now, c).unwrap();
    assert_eq!(m.state(), State::Fault);
    assert_eq!(sent(&drain(&mut m)), [0], "leaving master sends priority 0");
}

#[test]
fn sync_group_member_reconfigured_in_place() {
    let now = Instant::now();
    let mut g = SyncGroup::new(
        "G4",
        vec![
            member(1, ME, "10.0.3.100", vec![]),
            member(2, ME, "10.0.3.101", vec![]),
        ],
    );
    g.startup(now);
    let at = g.poll_timeout().unwrap();
    g.handle_timeout(at);
    drain_group(&mut g);
    let index = g
        .member_index(&g.members()[1].config().name.clone())
        .unwrap();
    let mut c = g.members()[index].config().clone();
    c.priority = 200;
    g.reconfigure_member(at, index, c).unwrap();
    assert_eq!(g.state(), State::Master);
    assert_eq!(g.members()[index].effective_priority(), 200);
    assert!(
        g.reconfigure_member(at, 9, g.members()[0].config().clone())
            .is_err()
    );
    g.shutdown(at);
    let Some(GroupAction::Notify(n)) = drain_group(&mut g).pop() else {
        panic!("no group notification")
    };
    assert_eq!(n.arguments(), ["GROUP", "G4", "STOP", "0"]);
}
