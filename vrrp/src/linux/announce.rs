//! Gratuitous ARP (RFC 5227 §3 / RFC 5798 §6.4.2) and unsolicited Neighbor
//! Advertisements (RFC 4861 §7.2.6) for the virtual addresses.
//!
//! The frames are built with `pnet_packet`'s Ethernet, ARP, IPv6 and ICMPv6
//! views and sent whole on an `AF_PACKET` socket (packet(7)) opened with
//! protocol 0, so that it receives nothing.

use std::net::{Ipv4Addr, Ipv6Addr};

use pnet_base::MacAddr;
use pnet_packet::MutablePacket;
use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, MutableEthernetPacket};
use pnet_packet::icmpv6::ndp::{MutableNeighborAdvertPacket, NdpOptionTypes, NeighborAdvertFlags};
use pnet_packet::icmpv6::{Icmpv6Packet, Icmpv6Types};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv6::MutableIpv6Packet;
use socket2::{Domain, Socket, Type};

use super::Error;

const ETHERNET_HEADER: usize = 14;
const ARP_LENGTH: usize = 28;
const IPV6_HEADER: usize = 40;
/// An NA with one target link-layer address option: 24 + 8 bytes.
const NA_LENGTH: usize = 32;

/// Length of a gratuitous ARP frame (without FCS and padding).
pub const GARP_FRAME_LENGTH: usize = ETHERNET_HEADER + ARP_LENGTH;
/// Length of an unsolicited NA frame.
pub const NA_FRAME_LENGTH: usize = ETHERNET_HEADER + IPV6_HEADER + NA_LENGTH;

const BROADCAST: [u8; 6] = [0xff; 6];
/// ff02::1, all nodes.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// 33:33:00:00:00:01, the Ethernet address of ff02::1 (RFC 2464 §7).
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];

/// Builds a gratuitous ARP request for `address` from `mac`: sender and
/// target protocol address are both the VIP, the target hardware address
/// is broadcast, as keepalived sends it.
pub fn gratuitous_arp(mac: [u8; 6], address: Ipv4Addr) -> [u8; GARP_FRAME_LENGTH] {
    let mut frame = [0u8; GARP_FRAME_LENGTH];
    let mut ethernet =
        MutableEthernetPacket::new(&mut frame).expect("frame holds an Ethernet header");
    ethernet.set_destination(MacAddr::from(BROADCAST));
    ethernet.set_source(MacAddr::from(mac));
    ethernet.set_ethertype(EtherTypes::Arp);
    let mut arp = MutableArpPacket::new(ethernet.payload_mut()).expect("frame holds an ARP packet");
    arp.set_hardware_type(ArpHardwareTypes::Ethernet);
    arp.set_protocol_type(EtherTypes::Ipv4);
    arp.set_hw_addr_len(6);
    arp.set_proto_addr_len(4);
    arp.set_operation(ArpOperations::Request);
    arp.set_sender_hw_addr(MacAddr::from(mac));
    arp.set_sender_proto_addr(address);
    arp.set_target_hw_addr(MacAddr::from(BROADCAST));
    arp.set_target_proto_addr(address);
    frame
}

/// Builds an unsolicited Neighbor Advertisement for `target` to ff02::1
/// from `source` (the interface's link-local address) and `mac`, with the
/// Override flag set and a target link-layer address option (RFC 4861
/// §7.2.6), hop limit 255 (§7.1.2). `router` sets the R flag.
pub fn unsolicited_na(
    mac: [u8; 6],
    source: Ipv6Addr,
    target: Ipv6Addr,
    router: bool,
) -> [u8; NA_FRAME_LENGTH] {
    let mut frame = [0u8; NA_FRAME_LENGTH];
    let mut ethernet =
        MutableEthernetPacket::new(&mut frame).expect("frame holds an Ethernet header");
    ethernet.set_destination(MacAddr::from(ALL_NODES_MAC));
    ethernet.set_source(MacAddr::from(mac));
    ethernet.set_ethertype(EtherTypes::Ipv6);
    let mut ip =
        MutableIpv6Packet::new(ethernet.payload_mut()).expect("frame holds an IPv6 header");
    ip.set_version(6);
    ip.set_payload_length(NA_LENGTH as u16);
    ip.set_next_header(IpNextHeaderProtocols::Icmpv6);
    ip.set_hop_limit(255);
    ip.set_source(source);
    ip.set_destination(ALL_NODES);
    let mut na = MutableNeighborAdvertPacket::new(ip.payload_mut()).expect("frame holds an NA");
    na.set_icmpv6_type(Icmpv6Types::NeighborAdvert);
    na.set_flags(
        NeighborAdvertFlags::Override
            | if router {
                NeighborAdvertFlags::Router
            } else {
                0
            },
    );
    na.set_target_addr(target);
    {
        let options = &mut na.packet_mut()[24..];
        options[0] = NdpOptionTypes::TargetLLAddr.0;
        options[1] = 1; // in units of 8 bytes
        options[2..8].copy_from_slice(&mac);
    }
    let checksum = {
        let icmp =
            Icmpv6Packet::new(&frame[ETHERNET_HEADER + IPV6_HEADER..]).expect("frame holds ICMPv6");
        pnet_packet::icmpv6::checksum(&icmp, &source, &ALL_NODES)
    };
    frame[ETHERNET_HEADER + IPV6_HEADER + 2..ETHERNET_HEADER + IPV6_HEADER + 4]
        .copy_from_slice(&checksum.to_be_bytes());
    frame
}

/// An `AF_PACKET` socket that sends whole Ethernet frames on one interface.
#[derive(Debug)]
pub struct FrameSender {
    socket: Socket,
    ifindex: u32,
}

impl FrameSender {
    /// Opens the socket for interface `ifindex`. Needs CAP_NET_RAW.
    pub fn open(ifindex: u32) -> Result<Self, Error> {
        // Protocol 0: the socket is never attached to a receive hook.
        let socket = Socket::new(Domain::PACKET, Type::RAW, None).map_err(|source| Error::Io {
            operation: "socket(AF_PACKET, SOCK_RAW, 0)",
            source,
        })?;
        socket.set_nonblocking(true).map_err(|source| Error::Io {
            operation: "O_NONBLOCK",
            source,
        })?;
        Ok(Self { socket, ifindex })
    }

    /// Sends one frame; its destination MAC and EtherType are read from it.
    pub fn send(&self, frame: &[u8]) -> Result<(), Error> {
        if frame.len() < ETHERNET_HEADER {
            return Err(Error::ShortFrame(frame.len()));
        }
        let mut destination = [0u8; 6];
        destination.copy_from_slice(&frame[..6]);
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        let address = super::sys::link_layer_address(self.ifindex, ethertype, destination);
        self.socket
            .send_to(frame, &address)
            .map(|_| ())
            .map_err(|source| Error::Io {
                operation: "sendto(AF_PACKET)",
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

    #[test]
    fn garp_bytes() {
        let frame = gratuitous_arp(MAC, Ipv4Addr::new(10, 0, 3, 100));
        #[rustfmt::skip]
        let expected: [u8; GARP_FRAME_LENGTH] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06,
            0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,
            0x02, 0, 0, 0, 0, 0x01, 10, 0, 3, 100,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 10, 0, 3, 100,
        ];
        assert_eq!(frame, expected);
    }

    #[test]
    fn na_bytes_and_checksum() {
        let source: Ipv6Addr = "fe80::1".parse().unwrap();
        let target: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let frame = unsolicited_na(MAC, source, target, false);
        assert_eq!(&frame[..6], &ALL_NODES_MAC);
        assert_eq!(&frame[12..14], &[0x86, 0xdd]);
        let ip = &frame[ETHERNET_HEADER..];
        assert_eq!(ip[0] >> 4, 6);
        assert_eq!(u16::from_be_bytes([ip[4], ip[5]]), 32);
        assert_eq!(ip[6], 58);
        assert_eq!(ip[7], 255);
        let icmp = &ip[IPV6_HEADER..];
        assert_eq!(icmp[0], 136);
        assert_eq!(icmp[4], 0x20, "override flag only");
        assert_eq!(&icmp[8..24], &target.octets());
        assert_eq!(&icmp[24..32], &[2, 1, 0x02, 0, 0, 0, 0, 0x01]);
        // The one's-complement sum over pseudo-header and message is 0xffff
        // when the checksum is right (RFC 1071).
        let mut sum = 0u32;
        let mut add = |bytes: &[u8]| {
            for pair in bytes.chunks(2) {
                sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
            }
        };
        add(&source.octets());
        add(&ALL_NODES.octets());
        add(&[0, 0, 0, 32, 0, 0, 0, 58]);
        add(icmp);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff);
    }
}
