//! Feeds random packets (raw, and well-formed adverts with fuzzed fields),
//! timer events, tracking and link inputs, startups and shutdowns into a
//! running `Instance`, and checks its invariants after every input.
#![no_main]

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use lvskit_vrrp::wire::{
    AddressFamily, Authentication, ChecksumContext, ChecksumMode, Packet, Repr, Version,
};
use lvskit_vrrp::{
    Action, Config, InitialState, Instance, LinkState, RxMeta, State, Track, TrackId, TrackKind,
    TrackStatus, UnicastPeer, VirtualAddress,
};

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const PEERS: [&str; 3] = ["10.0.3.2", "10.0.3.3", "10.0.3.1"];

fn config(input: &mut Input<'_>) -> Option<Config> {
    let flags = input.byte()?;
    let priority = input.byte()?.max(1);
    let interval = input.byte()?;
    let mut c = Config::new(
        51,
        ip("10.0.3.1"),
        vec![
            VirtualAddress::new(ip("10.0.3.100")),
            VirtualAddress::new(ip("10.0.3.101")),
        ],
    );
    c.priority = priority;
    if flags & 1 != 0 {
        c.version = Version::V2;
        c.advert_interval = Duration::from_secs(u64::from(interval % 3 + 1));
        c.authentication = Authentication::password("pass").unwrap();
    } else {
        c.advert_interval = Duration::from_millis(10 * u64::from(interval.max(1)));
    }
    c.preempt = flags & 2 == 0;
    if flags & 4 != 0 {
        c.preempt_delay = Duration::from_millis(u64::from(interval) * 37);
    }
    if flags & 8 != 0 {
        c.initial_state = InitialState::Master;
    }
    if flags & 16 != 0 {
        c.unicast_peers = vec![
            UnicastPeer::new(ip(PEERS[0])),
            UnicastPeer::new(ip(PEERS[1])).with_ttl(250, 255),
        ];
    }
    if flags & 32 != 0 {
        c.checksum = ChecksumMode::Rfc9568;
    }
    c.readvertise_on_lower_priority = flags & 64 == 0;
    c.garp.interval = Duration::from_millis(u64::from(flags >> 7) * 3);
    for weight in [input.byte()?, input.byte()?] {
        let mut t = Track::new(TrackKind::Script("s".into()));
        t.weight = i16::from(weight as i8).clamp(-253, 253);
        t.reverse = weight & 1 == 1;
        t.rise = u32::from(weight % 3 + 1);
        t.fall = u32::from(weight % 2 + 1);
        c.tracks.push(t);
    }
    Some(c)
}

struct Checker {
    state: State,
    vips: BTreeSet<IpAddr>,
}

impl Checker {
    fn drain(&mut self, vr: &mut Instance) {
        while let Some(action) = vr.poll_action() {
            match action {
                Action::StateChanged { from, to, .. } => {
                    assert_eq!(from, self.state, "transition from a state it was not in");
                    assert_ne!(from, to);
                    self.state = to;
                }
                Action::AddVip(v) => assert!(self.vips.insert(v.address), "VIP added twice"),
                Action::DelVip(v) => assert!(self.vips.remove(&v.address), "VIP removed twice"),
                Action::SendAdvert(ad) => {
                    let ctx = ChecksumContext {
                        source: ad.source,
                        destination: ad.destination,
                        mode: vr.config().checksum,
                    };
                    let packet = Packet::new_checked(&ad.payload[..], AddressFamily::Ipv4).unwrap();
                    let repr = Repr::parse(&packet, &ctx).expect("own advert parses");
                    assert_eq!(repr.priority, ad.priority);
                    assert_eq!(repr.vrid, 51);
                }
                _ => {}
            }
        }
        assert_eq!(self.state, vr.state(), "a transition was not reported");
        let priority = vr.effective_priority();
        if vr.config().priority == 255 {
            assert_eq!(priority, 255);
        } else {
            assert!((1..=254).contains(&priority));
        }
        match vr.state() {
            State::Master => {
                assert_eq!(self.vips.len(), 2, "a master holds every VIP");
                assert!(vr.poll_timeout().is_some(), "a master always has a timer");
            }
            State::Backup => {
                assert!(self.vips.is_empty());
                assert!(vr.poll_timeout().is_some(), "a backup always has a timer");
            }
            State::Initialize | State::Fault => {
                assert!(self.vips.is_empty());
                assert!(vr.poll_timeout().is_none());
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let Some(config) = config(&mut input) else {
        return;
    };
    let Ok(mut vr) = Instance::new(config) else {
        return;
    };
    let start = Instant::now();
    let mut now = start;
    let mut checker = Checker {
        state: State::Initialize,
        vips: BTreeSet::new(),
    };
    vr.startup(now);
    checker.drain(&mut vr);
    while let Some(op) = input.byte() {
        match op % 8 {
            0 => {
                // Raw bytes from a peer.
                let len = usize::from(input.byte().unwrap_or(0));
                let bytes = input.bytes(len).to_vec();
                let meta = RxMeta::new(ip(PEERS[usize::from(op >> 3) % 3]), ip("224.0.0.18"), 255);
                let _ = vr.handle_packet(now, &meta, &bytes);
            }
            1 | 2 => {
                // A well-formed advert with fuzzed priority, interval, TTL.
                let priority = input.byte().unwrap_or(0);
                let interval = input.byte().unwrap_or(100);
                let ttl = if op & 0x80 != 0 { input.byte().unwrap_or(255) } else { 255 };
                let source = ip(PEERS[usize::from(op >> 3) % 3]);
                let destination = if vr.config().unicast_peers.is_empty() {
                    ip("224.0.0.18")
                } else {
                    ip("10.0.3.1")
                };
                let repr = Repr {
                    version: vr.config().version,
                    vrid: 51,
                    priority,
                    adver_int: match vr.config().version {
                        Version::V2 => vr.config().adver_int_units().unwrap(),
                        Version::V3 => u16::from(interval),
                    },
                    authentication: match vr.config().version {
                        Version::V2 => Authentication::password("pass").unwrap(),
                        Version::V3 => Authentication::None,
                    },
                    addresses: vec![ip("10.0.3.100"), ip("10.0.3.101")],
                };
                let ctx = ChecksumContext {
                    source,
                    destination,
                    mode: vr.config().checksum,
                };
                let bytes = repr.to_vec(&ctx).unwrap();
                let _ = vr.handle_packet(now, &RxMeta::new(source, destination, ttl), &bytes);
            }
            3 => {
                // Time passes; fire what is due.
                let step = u64::from(input.byte().unwrap_or(0)) * 7;
                now += Duration::from_millis(step);
                while let Some(at) = vr.poll_timeout().filter(|at| *at <= now) {
                    assert!(at >= start);
                    vr.handle_timeout(at);
                    checker.drain(&mut vr);
                }
            }
            4 => {
                // Jump straight to the next timer.
                if let Some(at) = vr.poll_timeout() {
                    now = now.max(at);
                    vr.handle_timeout(now);
                }
            }
            5 => {
                let status = if op & 0x10 != 0 { TrackStatus::Up } else { TrackStatus::Down };
                let _ = vr.handle_track(now, TrackId(usize::from(op >> 5) % 3), status);
            }
            6 => {
                let link = if op & 0x10 != 0 { LinkState::Up } else { LinkState::Down };
                vr.handle_link_state(now, link);
            }
            _ => {
                if op & 0x10 != 0 {
                    vr.shutdown(now);
                } else {
                    vr.startup(now);
                }
            }
        }
        checker.drain(&mut vr);
    }
});
