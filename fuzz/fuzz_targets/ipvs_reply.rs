//! Netlink replies as the IPVS handles receive them: any bytes are split
//! into messages, decoded into the attribute enums, converted into the model
//! and re-emitted, and none of it may panic.
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
use lvskit_ipvs::netlink::{CommandAttribute, decode_datagram};
use lvskit_ipvs::{DestinationStatus, Family, ServiceKey, ServiceStatus, SyncDaemon};

fuzz_target!(|data: &[u8]| {
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
