//! Netlink replies as the IPVS handles receive them: any bytes are split
//! into messages, decoded into the attribute enums, converted into the model
//! and re-emitted, and none of it may panic. The same bytes, read as one
//! reply's genl payload (after a command byte), go through the handles'
//! direct decoders (`lvskit_ipvs::netlink::reply`), which must agree with
//! the attribute enums followed by `from_attributes`: the same values, or
//! the same errors.
//!
//! Seed corpus: the datagrams of `ipvs/tests/golden/ipvsadm-6.1.txt`, one
//! file each:
//!
//! ```text
//! mkdir -p fuzz/corpus/ipvs_reply && grep -E '^(send|recv) ' ipvs/tests/golden/ipvsadm-6.1.txt |
//!   awk '{print $2}' | while read h; do echo "$h" | xxd -r -p > fuzz/corpus/ipvs_reply/$(echo "$h" | sha1sum | cut -c1-16); done
//! ```

#![no_main]

use libfuzzer_sys::fuzz_target;
use lvskit_ipvs::netlink::{Command, CommandAttribute, IpvsMessage, decode_datagram, reply};
use lvskit_ipvs::{DestinationStatus, Error, Family, ServiceKey, ServiceStatus, SyncDaemon};

/// An error reduced to its kind and text.
fn text(e: Error) -> String {
    match e {
        Error::Malformed { source, .. } => format!("malformed: {source}"),
        Error::Invalid { source, .. } => format!("invalid: {source}"),
        other => panic!("unexpected error {other}"),
    }
}

/// `payload` through the direct decoders and through the attribute enums.
fn differential(command: Command, payload: &[u8], family: Family) {
    let direct_service = reply::service(command, payload).map_err(text);
    let mut list = Vec::new();
    let direct_destinations = reply::destinations(command, payload, family, &mut list)
        .map(|()| list)
        .map_err(text);
    let (service, destinations) = match IpvsMessage::parse_payload(command, payload) {
        Ok(m) => (
            m.service_status().map_err(|e| format!("invalid: {e}")),
            m.destination_statuses(family)
                .map_err(|e| format!("invalid: {e}")),
        ),
        Err(e) => (Err(format!("malformed: {e}")), Err(format!("malformed: {e}"))),
    };
    assert_eq!(direct_service, service);
    assert_eq!(direct_destinations, destinations);
}

fuzz_target!(|data: &[u8]| {
    if let Some((&command, payload)) = data.split_first() {
        let family = if command & 0x80 == 0 {
            Family::Ipv4
        } else {
            Family::Ipv6
        };
        differential(Command::from(command & 0x7f), payload, family);
    }
    let Ok(messages) = decode_datagram(data) else {
        return;
    };
    for message in messages {
        let mut out = vec![0u8; message.buffer_len()];
        message.serialize(&mut out);
        if let netlink_packet_core::NetlinkPayload::InnerMessage(genl) = &message.payload {
            let mut family = Family::Ipv4;
            for attribute in &genl.payload.attributes {
                match attribute {
                    CommandAttribute::Service(s) => {
                        if let Ok(key) = ServiceKey::from_attributes(s) {
                            family = key.family();
                        }
                        let _ = ServiceStatus::from_attributes(s);
                    }
                    CommandAttribute::Destination(d) => {
                        let _ = DestinationStatus::from_attributes(d, family);
                    }
                    CommandAttribute::Daemon(d) => {
                        let _ = SyncDaemon::from_attributes(d);
                    }
                    _ => {}
                }
            }
        }
    }
});
