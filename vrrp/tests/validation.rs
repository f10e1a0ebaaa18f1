//! One test per receive check (RFC 3768 §7.1, RFC 9568 §7.1 with errata
//! 8298–8301, and the local rules): the violating packet is dropped with its
//! typed reason, counted, and changes nothing.

mod common;

use std::time::{Duration, Instant};

use common::*;
use lvskit_vrrp::wire::{AddressFamily, Authentication, ChecksumContext, ChecksumMode, Packet};
use lvskit_vrrp::{Config, DropKind, Instance, RxDrop, RxMeta, State, UnicastPeer, VirtualAddress};

const PEER: &str = "10.0.3.2";
const ME: &str = "10.0.3.1";

/// Delivers `bytes` to a started Backup instance and checks that it is
/// dropped for `expected`, counted once under its kind, and that the
/// Master_Down_Timer did not move.
fn assert_dropped(config: Config, meta: RxMeta, bytes: &[u8], expected: RxDrop) -> Instance {
    let now = Instant::now();
    let mut vr = started(config, now);
    assert_eq!(vr.state(), State::Backup);
    let timer = vr.poll_timeout();
    let later = now + Duration::from_millis(500);
    assert_eq!(vr.handle_packet(later, &meta, bytes), Err(expected));
    assert_eq!(vr.statistics().dropped(expected.kind()), 1);
    assert_eq!(vr.statistics().dropped_total(), 1);
    assert_eq!(vr.statistics().adverts_received, 0);
    assert_eq!(vr.poll_timeout(), timer, "a dropped packet moved the timer");
    assert!(vr.poll_action().is_none());
    vr
}

/// Rewrites the checksum of hand-made bytes so that only the intended field
/// is wrong.
fn refill(mut bytes: Vec<u8>, source: &str, destination: &str, mode: ChecksumMode) -> Vec<u8> {
    let ctx = ChecksumContext {
        source: ip(source),
        destination: ip(destination),
        mode,
    };
    let family = AddressFamily::of(&ctx.source);
    Packet::new_unchecked(&mut bytes[..], family)
        .fill_checksum(&ctx)
        .unwrap();
    bytes
}

fn good_v3(priority: u8) -> Vec<u8> {
    emit(
        &repr_for(&config(ME, 100), priority),
        PEER,
        GROUP,
        ChecksumMode::PseudoHeader,
    )
}

#[test]
fn a_valid_advert_is_accepted_and_counted() {
    let now = Instant::now();
    let mut vr = started(config(ME, 100), now);
    let later = now + Duration::from_millis(500);
    vr.handle_packet(later, &meta(PEER, GROUP), &good_v3(200))
        .unwrap();
    assert_eq!(vr.statistics().adverts_received, 1);
    assert_eq!(vr.statistics().dropped_total(), 0);
    assert_eq!(vr.poll_timeout(), Some(later + vr.master_down_interval()));
}

#[test]
fn ttl_must_be_255() {
    let meta = RxMeta::new(ip(PEER), ip(GROUP), 254);
    let vr = assert_dropped(config(ME, 100), meta, &good_v3(200), RxDrop::Ttl(254));
    assert_eq!(vr.statistics().ip_ttl_errors(), 1);
}

#[test]
fn version_must_match() {
    let v2 = config_v2(ME, 100);
    let bytes = emit(&repr_for(&v2, 200), PEER, GROUP, ChecksumMode::PseudoHeader);
    let vr = assert_dropped(
        config(ME, 100),
        meta(PEER, GROUP),
        &bytes,
        RxDrop::Version(2),
    );
    assert_eq!(vr.statistics().version_errors(), 1);
    // And a v3 packet to a v2 instance.
    assert_dropped(v2, meta(PEER, GROUP), &good_v3(200), RxDrop::Version(3));
}

#[test]
fn packet_must_be_complete() {
    let bytes = good_v3(200);
    let vr = assert_dropped(
        config(ME, 100),
        meta(PEER, GROUP),
        &bytes[..bytes.len() - 1],
        RxDrop::Length {
            len: 11,
            needed: 12,
        },
    );
    assert_eq!(vr.statistics().packet_length_errors(), 1);
    // v2 must also carry its 8 bytes of authentication data.
    let v2 = config_v2(ME, 100);
    let bytes = emit(&repr_for(&v2, 200), PEER, GROUP, ChecksumMode::PseudoHeader);
    assert_dropped(
        v2,
        meta(PEER, GROUP),
        &bytes[..19],
        RxDrop::Length {
            len: 19,
            needed: 20,
        },
    );
}

#[test]
fn checksum_must_verify() {
    let mut bytes = good_v3(200);
    bytes[7] ^= 1;
    let expected = u16::from_be_bytes([bytes[6], bytes[7] ^ 1]);
    let received = u16::from_be_bytes([bytes[6], bytes[7]]);
    let vr = assert_dropped(
        config(ME, 100),
        meta(PEER, GROUP),
        &bytes,
        RxDrop::Checksum { received, expected },
    );
    assert_eq!(vr.statistics().checksum_errors(), 1);
}

#[test]
fn checksum_form_must_match_the_instance() {
    // An RFC 9568-form packet to a pseudo-header instance.
    let bytes = emit(
        &repr_for(&config(ME, 100), 200),
        PEER,
        GROUP,
        ChecksumMode::Rfc9568,
    );
    let now = Instant::now();
    let mut vr = started(config(ME, 100), now);
    assert!(matches!(
        vr.handle_packet(now, &meta(PEER, GROUP), &bytes),
        Err(RxDrop::Checksum { .. })
    ));
    // The same packet is fine for an instance configured for that form.
    let mut c = config(ME, 100);
    c.checksum = ChecksumMode::Rfc9568;
    let mut vr = started(c, now);
    vr.handle_packet(now, &meta(PEER, GROUP), &bytes).unwrap();
}

#[test]
fn type_must_be_advertisement() {
    let mut bytes = good_v3(200);
    bytes[0] = 0x32;
    let bytes = refill(bytes, PEER, GROUP, ChecksumMode::PseudoHeader);
    let vr = assert_dropped(config(ME, 100), meta(PEER, GROUP), &bytes, RxDrop::Type(2));
    assert_eq!(vr.statistics().invalid_type_packets(), 1);
}

#[test]
fn vrid_must_be_ours() {
    let mut repr = repr_for(&config(ME, 100), 200);
    repr.vrid = 52;
    let bytes = emit(&repr, PEER, GROUP, ChecksumMode::PseudoHeader);
    let vr = assert_dropped(config(ME, 100), meta(PEER, GROUP), &bytes, RxDrop::Vrid(52));
    assert_eq!(vr.statistics().vrid_errors(), 1);
}

#[test]
fn address_count_must_not_be_zero_erratum_8299() {
    let bytes = refill(
        vec![0x31, 51, 200, 0, 0, 100, 0, 0],
        PEER,
        GROUP,
        ChecksumMode::PseudoHeader,
    );
    let vr = assert_dropped(
        config(ME, 100),
        meta(PEER, GROUP),
        &bytes,
        RxDrop::AddressCountZero,
    );
    assert_eq!(vr.statistics().address_list_errors(), 1);
}

#[test]
fn max_adver_int_must_not_be_zero_erratum_8301() {
    let mut repr = repr_for(&config(ME, 100), 200);
    repr.adver_int = 0;
    let bytes = emit(&repr, PEER, GROUP, ChecksumMode::PseudoHeader);
    let vr = assert_dropped(
        config(ME, 100),
        meta(PEER, GROUP),
        &bytes,
        RxDrop::AdverIntZero,
    );
    assert_eq!(vr.statistics().adv_interval_errors(), 1);
}

fn config_v6(primary: &str) -> Config {
    let mut c = Config::new(
        51,
        ip(primary),
        vec![
            VirtualAddress::new(ip("fe80::100")),
            VirtualAddress::new(ip("2001:db8::100")),
        ],
    );
    c.priority = 100;
    c
}

#[test]
fn ipv6_first_address_must_be_link_local_erratum_8300() {
    let mut repr = repr_for(&config_v6("fe80::1"), 200);
    repr.addresses.reverse();
    let bytes = emit(&repr, "fe80::2", "ff02::12", ChecksumMode::PseudoHeader);
    assert_dropped(
        config_v6("fe80::1"),
        meta("fe80::2", "ff02::12"),
        &bytes,
        RxDrop::FirstAddressNotLinkLocal,
    );
    // keepalived does not check this; the check can be turned off.
    let mut lenient = config_v6("fe80::1");
    lenient.validation.require_link_local_first = false;
    let now = Instant::now();
    let mut vr = started(lenient, now);
    vr.handle_packet(now, &meta("fe80::2", "ff02::12"), &bytes)
        .unwrap();
}

#[test]
fn address_list_must_match_unless_from_the_owner() {
    let mut repr = repr_for(&config(ME, 100), 200);
    repr.addresses = vec![ip("10.0.3.101")];
    let bytes = emit(&repr, PEER, GROUP, ChecksumMode::PseudoHeader);
    let vr = assert_dropped(
        config(ME, 100),
        meta(PEER, GROUP),
        &bytes,
        RxDrop::AddressList,
    );
    assert_eq!(vr.statistics().address_list_errors(), 1);
    // From the owner (priority 255) the same list is accepted.
    repr.priority = 255;
    let bytes = emit(&repr, PEER, GROUP, ChecksumMode::PseudoHeader);
    let now = Instant::now();
    let mut vr = started(config(ME, 100), now);
    vr.handle_packet(now, &meta(PEER, GROUP), &bytes).unwrap();
    // An extra address is a mismatch too, and so is a duplicate that hides
    // a missing one.
    let mut two = config(ME, 100);
    two.virtual_addresses
        .push(VirtualAddress::new(ip("10.0.3.101")));
    let mut repr = repr_for(&two, 200);
    repr.addresses = vec![ip(VIP), ip(VIP)];
    let bytes = emit(&repr, PEER, GROUP, ChecksumMode::PseudoHeader);
    assert_dropped(two, meta(PEER, GROUP), &bytes, RxDrop::AddressList);
}

#[test]
fn v2_adver_int_must_match() {
    let v2 = config_v2(ME, 100);
    let mut repr = repr_for(&v2, 200);
    repr.adver_int = 2;
    let bytes = emit(&repr, PEER, GROUP, ChecksumMode::PseudoHeader);
    let vr = assert_dropped(
        v2,
        meta(PEER, GROUP),
        &bytes,
        RxDrop::AdverInterval {
            received: 2,
            configured: 1,
        },
    );
    assert_eq!(vr.statistics().adv_interval_errors(), 1);
}

#[test]
fn v2_auth_type_must_match() {
    let v2 = config_v2(ME, 100);
    let mut repr = repr_for(&v2, 200);
    repr.authentication = Authentication::None;
    let bytes = emit(&repr, PEER, GROUP, ChecksumMode::PseudoHeader);
    let vr = assert_dropped(
        v2,
        meta(PEER, GROUP),
        &bytes,
        RxDrop::AuthTypeMismatch {
            received: 0,
            configured: 1,
        },
    );
    assert_eq!(vr.statistics().auth_type_mismatch(), 1);
}

#[test]
fn v2_ah_and_unknown_auth_types_are_invalid() {
    for auth_type in [2u8, 3, 255] {
        let v2 = config_v2(ME, 100);
        let mut repr = repr_for(&v2, 200);
        repr.authentication = Authentication::Unknown {
            auth_type,
            data: [0; 8],
        };
        let bytes = emit(&repr, PEER, GROUP, ChecksumMode::PseudoHeader);
        let vr = assert_dropped(
            v2,
            meta(PEER, GROUP),
            &bytes,
            RxDrop::InvalidAuthType(auth_type),
        );
        assert_eq!(vr.statistics().invalid_auth_type(), 1);
    }
}

#[test]
fn v2_password_must_match() {
    let v2 = config_v2(ME, 100);
    let mut repr = repr_for(&v2, 200);
    repr.authentication = Authentication::password("pasS").unwrap();
    let bytes = emit(&repr, PEER, GROUP, ChecksumMode::PseudoHeader);
    let vr = assert_dropped(v2, meta(PEER, GROUP), &bytes, RxDrop::AuthFailure);
    assert_eq!(vr.statistics().auth_failures(), 1);
}

fn unicast(min_ttl: u8, max_ttl: u8) -> Config {
    let mut c = config(ME, 100);
    c.unicast_peers = vec![UnicastPeer::new(ip(PEER)).with_ttl(min_ttl, max_ttl)];
    c
}

#[test]
fn unicast_accepts_only_configured_peers() {
    let repr = repr_for(&config(ME, 100), 200);
    let bytes = emit(&repr, "10.0.3.9", ME, ChecksumMode::PseudoHeader);
    assert_dropped(
        unicast(255, 255),
        meta("10.0.3.9", ME),
        &bytes,
        RxDrop::UnicastSource(ip("10.0.3.9")),
    );
}

#[test]
fn unicast_ttl_bounds_are_per_peer() {
    let repr = repr_for(&config(ME, 100), 200);
    let bytes = emit(&repr, PEER, ME, ChecksumMode::PseudoHeader);
    let low = RxMeta::new(ip(PEER), ip(ME), 249);
    assert_dropped(unicast(250, 254), low, &bytes, RxDrop::Ttl(249));
    let high = RxMeta::new(ip(PEER), ip(ME), 255);
    assert_dropped(unicast(250, 254), high, &bytes, RxDrop::Ttl(255));
    let now = Instant::now();
    let mut vr = started(unicast(250, 254), now);
    let ok = RxMeta::new(ip(PEER), ip(ME), 252);
    vr.handle_packet(now, &ok, &bytes).unwrap();
}

#[test]
fn family_must_match() {
    assert_dropped(
        config(ME, 100),
        meta("fe80::2", "ff02::12"),
        &good_v3(200),
        RxDrop::Family,
    );
}

#[test]
fn interface_must_match_when_known() {
    let mut c = config(ME, 100);
    c.ifindex = Some(3);
    let m = meta(PEER, GROUP).with_ifindex(4);
    assert_dropped(c, m, &good_v3(200), RxDrop::Interface(4));
}

#[test]
fn own_adverts_are_dropped() {
    let bytes = emit(
        &repr_for(&config(ME, 100), 100),
        ME,
        GROUP,
        ChecksumMode::PseudoHeader,
    );
    assert_dropped(config(ME, 100), meta(ME, GROUP), &bytes, RxDrop::OwnAdvert);
}

#[test]
fn a_stopped_instance_processes_nothing() {
    let mut vr = Instance::new(config(ME, 100)).unwrap();
    let now = Instant::now();
    assert_eq!(
        vr.handle_packet(now, &meta(PEER, GROUP), &good_v3(200)),
        Err(RxDrop::NotRunning)
    );
    assert_eq!(vr.statistics().dropped(DropKind::NotRunning), 1);
    assert_eq!(vr.state(), State::Initialize);
}

#[test]
fn owner_hearing_another_owner_processes_it_erratum_8298() {
    // Two owners: the one with the lower primary address backs off.
    let now = Instant::now();
    let mut vr = started(config(ME, 255), now);
    assert_eq!(vr.state(), State::Master);
    let bytes = good_v3(255);
    vr.handle_packet(now, &meta(PEER, GROUP), &bytes).unwrap();
    assert_eq!(vr.statistics().owner_conflicts, 1);
    assert_eq!(vr.state(), State::Backup, "10.0.3.1 < 10.0.3.2 backs off");
    // The one with the higher address stays master.
    let mut high = started(config("10.0.3.3", 255), now);
    high.handle_packet(now, &meta(PEER, GROUP), &bytes).unwrap();
    assert_eq!(high.statistics().owner_conflicts, 1);
    assert_eq!(high.state(), State::Master);
}
