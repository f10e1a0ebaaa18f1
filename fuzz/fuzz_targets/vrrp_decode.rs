//! Fuzzes the VRRP decoder: any bytes, either family, any checksum mode.
//! Parsing never panics, and whatever parses re-emits to a packet that parses
//! back to the same `Repr`.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use lvskit_vrrp::wire::{AddressFamily, ChecksumContext, ChecksumMode, Packet, Repr};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let (source, destination): (IpAddr, IpAddr) = if selector & 1 == 0 {
        ("10.0.3.1".parse().unwrap(), "224.0.0.18".parse().unwrap())
    } else {
        ("fe80::1".parse().unwrap(), "ff02::12".parse().unwrap())
    };
    let mode = if selector & 2 == 0 {
        ChecksumMode::PseudoHeader
    } else {
        ChecksumMode::Rfc9568
    };
    let ctx = ChecksumContext {
        source,
        destination,
        mode,
    };
    let family = AddressFamily::of(&source);
    // The unchecked view's accessors are only used after check_len.
    let Ok(packet) = Packet::new_checked(bytes, family) else {
        return;
    };
    let _ = packet.addresses().count();
    let _ = packet.validate(&ctx);
    let Ok(repr) = Repr::parse(&packet, &ctx) else {
        return;
    };
    let mut out = vec![0xa5u8; repr.buffer_len()];
    let len = repr.emit(&mut out, &ctx).expect("a parsed Repr emits");
    assert_eq!(len, packet.message_len());
    let again = Packet::new_checked(&out[..len], family).expect("emitted packet checks");
    assert_eq!(Repr::parse(&again, &ctx).expect("emitted packet parses"), repr);
});
