//! Helpers shared by the engine tests.
#![allow(dead_code, unreachable_pub)]

use std::net::IpAddr;
use std::time::Instant;

use lvskit_vrrp::wire::{Authentication, ChecksumContext, ChecksumMode, Repr, Version};
use lvskit_vrrp::{Action, Config, Instance, RxMeta, VirtualAddress};

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub const VIP: &str = "10.0.3.100";
pub const GROUP: &str = "224.0.0.18";

/// A v3/IPv4 instance with VIP 10.0.3.100 on VRID 51.
pub fn config(primary: &str, priority: u8) -> Config {
    let mut c = Config::new(51, ip(primary), vec![VirtualAddress::new(ip(VIP))]);
    c.priority = priority;
    c
}

/// A v2 instance with PASS "pass".
pub fn config_v2(primary: &str, priority: u8) -> Config {
    let mut c = config(primary, priority);
    c.version = Version::V2;
    c.authentication = Authentication::password("pass").unwrap();
    c
}

/// The advert a peer at `source` would send for `config`'s virtual router.
pub fn repr_for(config: &Config, priority: u8) -> Repr {
    Repr {
        version: config.version,
        vrid: config.vrid,
        priority,
        adver_int: config.adver_int_units().unwrap(),
        authentication: match config.version {
            Version::V2 => config.authentication,
            Version::V3 => Authentication::None,
        },
        addresses: config.virtual_addresses.iter().map(|v| v.address).collect(),
    }
}

pub fn emit(repr: &Repr, source: &str, destination: &str, mode: ChecksumMode) -> Vec<u8> {
    repr.to_vec(&ChecksumContext {
        source: ip(source),
        destination: ip(destination),
        mode,
    })
    .unwrap()
}

pub fn meta(source: &str, destination: &str) -> RxMeta {
    RxMeta::new(ip(source), ip(destination), 255)
}

pub fn drain(instance: &mut Instance) -> Vec<Action> {
    std::iter::from_fn(|| instance.poll_action()).collect()
}

/// A started instance, its actions drained.
pub fn started(config: Config, now: Instant) -> Instance {
    let mut instance = Instance::new(config).unwrap();
    instance.startup(now);
    drain(&mut instance);
    instance
}
