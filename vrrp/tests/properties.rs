//! Property tests for the codec and the timer formulas.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use lvskit_vrrp::timing::{adver_interval, master_down_interval, skew_time};
use lvskit_vrrp::wire::{
    AddressFamily, Authentication, ChecksumContext, ChecksumMode, Packet, Repr, Version,
};
use proptest::prelude::*;

fn family_addresses(v6: bool) -> BoxedStrategy<Vec<IpAddr>> {
    if v6 {
        proptest::collection::vec(
            any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
            0..=20,
        )
        .boxed()
    } else {
        proptest::collection::vec(
            any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            0..=40,
        )
        .boxed()
    }
}

/// A representable advert and a checksum context of its family.
fn repr_and_ctx() -> impl Strategy<Value = (Repr, ChecksumContext)> {
    (any::<bool>(), any::<bool>()).prop_flat_map(|(v6, v2)| {
        let version = if v2 && !v6 { Version::V2 } else { Version::V3 };
        let addr = if v6 {
            any::<u128>()
                .prop_map(|a| IpAddr::V6(Ipv6Addr::from(a)))
                .boxed()
        } else {
            any::<u32>()
                .prop_map(|a| IpAddr::V4(Ipv4Addr::from(a)))
                .boxed()
        };
        let auth = match version {
            Version::V3 => Just(Authentication::None).boxed(),
            Version::V2 => prop_oneof![
                Just(Authentication::None),
                any::<[u8; 8]>().prop_map(Authentication::Password),
                (3u8..=255, any::<[u8; 8]>())
                    .prop_map(|(auth_type, data)| Authentication::Unknown { auth_type, data }),
            ]
            .boxed(),
        };
        let adver_int = match version {
            Version::V2 => (0u16..=255).boxed(),
            Version::V3 => (0u16..=0x0fff).boxed(),
        };
        (
            any::<u8>(),
            any::<u8>(),
            adver_int,
            auth,
            family_addresses(v6),
            addr.clone(),
            addr,
            any::<bool>(),
        )
            .prop_map(
                move |(
                    vrid,
                    priority,
                    adver_int,
                    authentication,
                    addresses,
                    source,
                    destination,
                    rfc,
                )| {
                    (
                        Repr {
                            version,
                            vrid,
                            priority,
                            adver_int,
                            authentication,
                            addresses,
                        },
                        ChecksumContext {
                            source,
                            destination,
                            mode: if rfc {
                                ChecksumMode::Rfc9568
                            } else {
                                ChecksumMode::PseudoHeader
                            },
                        },
                    )
                },
            )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn emit_then_parse_is_identity((repr, ctx) in repr_and_ctx()) {
        let mut buffer = vec![0xa5u8; repr.buffer_len() + 3];
        let len = repr.emit(&mut buffer, &ctx).unwrap();
        prop_assert_eq!(len, repr.buffer_len());
        prop_assert!(buffer[len..].iter().all(|&b| b == 0xa5));
        let family = AddressFamily::of(&ctx.source);
        let packet = Packet::new_checked(&buffer[..len], family).unwrap();
        prop_assert_eq!(usize::from(packet.address_count()), repr.addresses.len());
        prop_assert_eq!(Repr::parse(&packet, &ctx).unwrap(), repr);
    }

    #[test]
    fn every_single_bit_flip_is_rejected((repr, ctx) in repr_and_ctx(), bit in any::<usize>()) {
        let mut bytes = repr.to_vec(&ctx).unwrap();
        let bit = bit % (bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        let family = AddressFamily::of(&ctx.source);
        let parsed = Packet::new_checked(&bytes[..], family)
            .and_then(|packet| Repr::parse(&packet, &ctx));
        prop_assert!(parsed.is_err(), "bit {} flipped and still parsed", bit);
    }

    #[test]
    fn parsing_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120), v6 in any::<bool>()) {
        let ctx = ChecksumContext {
            source: if v6 { "fe80::1".parse().unwrap() } else { "10.0.0.1".parse().unwrap() },
            destination: if v6 { "ff02::12".parse().unwrap() } else { "224.0.0.18".parse().unwrap() },
            mode: ChecksumMode::PseudoHeader,
        };
        let family = AddressFamily::of(&ctx.source);
        if let Ok(packet) = Packet::new_checked(&bytes[..], family) {
            let _ = packet.addresses().count();
            let _ = Repr::parse(&packet, &ctx);
        }
    }

    /// v3: Skew_Time = ((256 − p) · Master_Adver_Interval) / 256 cs, rounded
    /// down to the nanosecond only (never to 0 or to whole centiseconds).
    #[test]
    fn v3_skew_is_exact(priority in 1u8..=255, cs in 1u16..=4095) {
        let skew = skew_time(Version::V3, priority, cs).as_nanos();
        let exact_times_256 = u128::from(256 - u16::from(priority)) * u128::from(cs) * 10_000_000;
        prop_assert!(skew * 256 <= exact_times_256);
        prop_assert!(exact_times_256 - skew * 256 < 256);
        prop_assert!(skew > 0);
        prop_assert!(skew < adver_interval(Version::V3, cs).as_nanos());
        prop_assert_eq!(
            master_down_interval(Version::V3, priority, cs),
            3 * adver_interval(Version::V3, cs) + Duration::from_nanos(skew as u64)
        );
    }

    /// v2: Skew_Time = (256 − p) / 256 s whatever the interval, exact.
    #[test]
    fn v2_skew_is_exact(priority in 1u8..=255, seconds in 1u16..=255) {
        let skew = skew_time(Version::V2, priority, seconds);
        prop_assert_eq!(skew.as_nanos() * 256, u128::from(256 - u16::from(priority)) * 1_000_000_000);
        prop_assert_eq!(
            master_down_interval(Version::V2, priority, seconds),
            Duration::from_secs(3 * u64::from(seconds)) + skew
        );
    }

    /// A higher priority never waits longer, so it wins a race to master.
    #[test]
    fn skew_decreases_with_priority(low in 1u8..=254, cs in 1u16..=4095) {
        for version in [Version::V2, Version::V3] {
            prop_assert!(skew_time(version, low + 1, cs) < skew_time(version, low, cs));
        }
    }
}
