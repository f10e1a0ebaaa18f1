//! PING_CHECK: one ICMP echo (RFC 792) or ICMPv6 echo (RFC 4443 §4.1).
//!
//! An unprivileged ICMP datagram socket is used when
//! `net.ipv4.ping_group_range` admits our group (the kernel then owns the
//! identifier and strips the IP header); otherwise a raw socket, which
//! needs CAP_NET_RAW. The socket is connected, so the kernel only hands us
//! packets from the target; replies are matched on type, identifier (raw),
//! sequence number and payload.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};

use pnet_packet::Packet;
use pnet_packet::icmp::{self, IcmpPacket, IcmpTypes};
use pnet_packet::icmpv6::Icmpv6Types;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::socket::{apply_options, io};
use crate::config::ConnectOptions;
use crate::error::ProbeError;

const PAYLOAD: &[u8] = b"lvskit-healthcheck ping";

fn open(dst: IpAddr) -> Result<(Socket, bool), ProbeError> {
    let (domain, protocol) = match dst {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    match Socket::new(domain, Type::DGRAM.nonblocking().cloexec(), Some(protocol)) {
        Ok(s) => Ok((s, false)),
        Err(_) => Socket::new(domain, Type::RAW.nonblocking().cloexec(), Some(protocol))
            .map(|s| (s, true))
            .map_err(io("ICMP socket")),
    }
}

/// The echo request: type, code, checksum, identifier, sequence, payload.
fn echo_request(v6: bool, id: u16, seq: u16) -> Vec<u8> {
    let mut packet = vec![0u8; 8 + PAYLOAD.len()];
    packet[0] = if v6 {
        Icmpv6Types::EchoRequest.0
    } else {
        IcmpTypes::EchoRequest.0
    };
    packet[4..6].copy_from_slice(&id.to_be_bytes());
    packet[6..8].copy_from_slice(&seq.to_be_bytes());
    packet[8..].copy_from_slice(PAYLOAD);
    if !v6 {
        // The kernel fills the ICMPv6 checksum (RFC 3542 §3.1); ICMPv4's is ours.
        if let Some(p) = IcmpPacket::new(&packet) {
            let sum = icmp::checksum(&p);
            packet[2..4].copy_from_slice(&sum.to_be_bytes());
        }
    }
    packet
}

/// Whether `bytes` (ICMP message, IP header already stripped) is the reply
/// to our request.
fn is_our_reply(bytes: &[u8], v6: bool, raw: bool, id: u16, seq: u16) -> bool {
    let reply_type = if v6 {
        Icmpv6Types::EchoReply.0
    } else {
        IcmpTypes::EchoReply.0
    };
    bytes.len() >= 8
        && bytes[0] == reply_type
        && (!raw || bytes[4..6] == id.to_be_bytes())
        && bytes[6..8] == seq.to_be_bytes()
        && &bytes[8..] == PAYLOAD
}

/// The PING_CHECK probe.
pub(crate) async fn probe(dst: SocketAddr, co: &ConnectOptions) -> Result<(), ProbeError> {
    static SEQ: AtomicU16 = AtomicU16::new(1);
    let ip = dst.ip();
    let v6 = ip.is_ipv6();
    let (socket, raw) = open(ip)?;
    apply_options(
        &socket,
        ip,
        &ConnectOptions {
            bind_port: None,
            ..co.clone()
        },
    )?;
    socket
        .connect(&SockAddr::from(SocketAddr::new(ip, 0)))
        .map_err(io("connect"))?;
    let id: u16 = rand::random();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    // recv(2)/send(2) on a connected socket are what UdpSocket does, so
    // tokio's UdpSocket drives the ICMP socket without any unsafe code.
    let socket = tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(socket))
        .map_err(io("ICMP socket"))?;
    socket
        .send(&echo_request(v6, id, seq))
        .await
        .map_err(io("send"))?;
    let mut buf = vec![0u8; 2048];
    loop {
        let n = socket.recv(&mut buf).await.map_err(io("recv"))?;
        let mut message = &buf[..n];
        if raw && !v6 {
            // Raw IPv4 sockets deliver the IP header (RFC 791 §3.1, IHL in words).
            let ihl = message
                .first()
                .map(|b| usize::from(b & 0x0f) * 4)
                .unwrap_or(0);
            if ihl < 20 || message.len() < ihl {
                continue;
            }
            message = &message[ihl..];
        }
        if is_our_reply(message, v6, raw, id, seq) {
            return Ok(());
        }
        if let Some(p) = IcmpPacket::new(message)
            && !v6
            && p.get_icmp_type() == IcmpTypes::DestinationUnreachable
            && p.payload().len() >= 4
        {
            return Err(ProbeError::Icmp("destination unreachable".into()));
        }
    }
}
