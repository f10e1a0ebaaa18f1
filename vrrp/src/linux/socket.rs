//! Raw IP-protocol-112 sockets for VRRP advertisements (RFC 5798 §5.1).
//!
//! One [`AdvertSocket`] per interface and address family carries every
//! virtual router on that interface: it is bound to the device, joined to
//! 224.0.0.18 or ff02::12 there, and sends with TTL / hop limit 255
//! (RFC 5798 §5.1.1.3 and §5.1.2.3). On receive it reports what the engine
//! needs for the §7.1 checks: the source, the destination and the TTL or hop
//! limit. For IPv4 these come from the IP header that a raw IPv4 socket
//! returns (raw(7)); for IPv6 from the `IPV6_HOPLIMIT` and `IPV6_PKTINFO`
//! ancillary data (RFC 3542 §6), because a raw IPv6 socket returns no header.

use std::io::{IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn, SockaddrIn6, SockaddrStorage,
    recvmsg, sendmsg, setsockopt, sockopt,
};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::Error;

/// IANA protocol number of VRRP (RFC 5798 §5.1.1.4).
pub const IPPROTO_VRRP: i32 = 112;
/// The IPv4 multicast group of VRRP (RFC 5798 §5.1.1.2).
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group of VRRP (RFC 5798 §5.1.2.2).
pub const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// TTL and hop limit of every advertisement sent (RFC 5798 §5.1.1.3).
pub const TTL: u8 = 255;

/// An advertisement read from the wire, with what the IP layer said about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// The IP source address.
    pub source: IpAddr,
    /// The IP destination address (the group, or ours in unicast mode).
    pub destination: IpAddr,
    /// The IPv4 TTL or IPv6 hop limit the packet arrived with.
    pub ttl: u8,
    /// Where the VRRP message starts in the receive buffer.
    pub offset: usize,
    /// Where it ends.
    pub end: usize,
    /// When the kernel received it (`SO_TIMESTAMPNS`, CLOCK_REALTIME), if
    /// it said so.
    pub arrival: Option<SystemTime>,
}

impl Received {
    /// The arrival time on the monotonic clock, given the current time on
    /// both clocks: the engine then measures Master_Down_Interval from when
    /// the advert arrived, not from when this process got to run.
    pub fn arrival_instant(&self, now: Instant, wall: SystemTime) -> Instant {
        match self
            .arrival
            .and_then(|arrival| wall.duration_since(arrival).ok())
        {
            Some(age) => now.checked_sub(age).unwrap_or(now),
            None => now,
        }
    }
}

/// A raw VRRP socket on one interface for one address family.
#[derive(Debug)]
pub struct AdvertSocket {
    socket: AsyncFd<Socket>,
    ifindex: u32,
    v6: bool,
}

fn io(operation: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { operation, source }
}

fn errno(operation: &'static str) -> impl FnOnce(nix::Error) -> Error {
    move |errno| Error::Io {
        operation,
        source: std::io::Error::from(errno),
    }
}

impl AdvertSocket {
    /// Opens the IPv4 socket on interface `name` (index `ifindex`) and, if
    /// `join`, joins 224.0.0.18 there (a send-only socket, as on a VMAC,
    /// does not). Needs CAP_NET_RAW.
    pub fn open_v4(name: &str, ifindex: u32, join: bool) -> Result<Self, Error> {
        let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_VRRP)))
            .map_err(io("socket(AF_INET, SOCK_RAW, 112)"))?;
        socket
            .bind_device(Some(name.as_bytes()))
            .map_err(io("SO_BINDTODEVICE"))?;
        if join {
            socket
                .join_multicast_v4_n(&GROUP_V4, &InterfaceIndexOrAddress::Index(ifindex))
                .map_err(io("IP_ADD_MEMBERSHIP 224.0.0.18"))?;
        }
        socket
            .set_multicast_ttl_v4(u32::from(TTL))
            .map_err(io("IP_MULTICAST_TTL"))?;
        socket.set_ttl_v4(u32::from(TTL)).map_err(io("IP_TTL"))?;
        socket
            .set_multicast_loop_v4(false)
            .map_err(io("IP_MULTICAST_LOOP"))?;
        Self::finish(socket, ifindex, false)
    }

    /// Opens the IPv6 socket on interface `name` (index `ifindex`) and, if
    /// `join`, joins ff02::12 there. Needs CAP_NET_RAW.
    pub fn open_v6(name: &str, ifindex: u32, join: bool) -> Result<Self, Error> {
        let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(IPPROTO_VRRP)))
            .map_err(io("socket(AF_INET6, SOCK_RAW, 112)"))?;
        socket
            .bind_device(Some(name.as_bytes()))
            .map_err(io("SO_BINDTODEVICE"))?;
        if join {
            socket
                .join_multicast_v6(&GROUP_V6, ifindex)
                .map_err(io("IPV6_JOIN_GROUP ff02::12"))?;
        }
        socket
            .set_multicast_hops_v6(u32::from(TTL))
            .map_err(io("IPV6_MULTICAST_HOPS"))?;
        socket
            .set_unicast_hops_v6(u32::from(TTL))
            .map_err(io("IPV6_UNICAST_HOPS"))?;
        socket
            .set_multicast_loop_v6(false)
            .map_err(io("IPV6_MULTICAST_LOOP"))?;
        socket
            .set_multicast_if_v6(ifindex)
            .map_err(io("IPV6_MULTICAST_IF"))?;
        socket
            .set_recv_hoplimit_v6(true)
            .map_err(io("IPV6_RECVHOPLIMIT"))?;
        setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true)
            .map_err(errno("IPV6_RECVPKTINFO"))?;
        Self::finish(socket, ifindex, true)
    }

    fn finish(socket: Socket, ifindex: u32, v6: bool) -> Result<Self, Error> {
        socket.set_nonblocking(true).map_err(io("O_NONBLOCK"))?;
        setsockopt(&socket, sockopt::ReceiveTimestampns, &true).map_err(errno("SO_TIMESTAMPNS"))?;
        let socket = super::sys::register(socket).map_err(io("register with tokio"))?;
        Ok(Self {
            socket,
            ifindex,
            v6,
        })
    }

    /// The interface index this socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Waits for the next advertisement and reads it into `buffer`.
    ///
    /// Packets that are too short to carry an IP header, or whose ancillary
    /// data is missing, are skipped: the kernel always supplies both, so
    /// they cannot be VRRP.
    pub async fn recv(&self, buffer: &mut [u8]) -> Result<Received, Error> {
        loop {
            let mut guard = self
                .socket
                .readable()
                .await
                .map_err(io("poll raw socket"))?;
            let result = guard.try_io(|socket| {
                let fd = socket.get_ref().as_raw_fd();
                if self.v6 {
                    recv_v6(fd, buffer)
                } else {
                    recv_v4(fd, buffer)
                }
                .map_err(std::io::Error::from)
            });
            match result {
                Ok(Ok(Some(received))) => return Ok(received),
                Ok(Ok(None)) => continue,
                Ok(Err(source)) => {
                    return Err(Error::Io {
                        operation: "recvmsg",
                        source,
                    });
                }
                Err(_would_block) => continue,
            }
        }
    }

    /// Reads an advertisement already queued on the socket, without
    /// waiting: `None` when there is none. Lets a loop take every packet
    /// that arrived before a timer deadline ahead of that timer.
    pub fn try_recv(&self, buffer: &mut [u8]) -> Result<Option<Received>, Error> {
        let fd = self.socket.get_ref().as_raw_fd();
        loop {
            let result = if self.v6 {
                recv_v6(fd, buffer)
            } else {
                recv_v4(fd, buffer)
            };
            match result {
                Ok(Some(received)) => return Ok(Some(received)),
                Ok(None) => continue,
                Err(nix::errno::Errno::EAGAIN) => return Ok(None),
                Err(errno) => {
                    return Err(Error::Io {
                        operation: "recvmsg",
                        source: errno.into(),
                    });
                }
            }
        }
    }

    /// Sends one VRRP message from `source` to `destination` (the group or
    /// a unicast peer). The source is given per packet with `IP_PKTINFO` /
    /// `IPV6_PKTINFO` (ip(7), ipv6(7)) so that one socket serves every
    /// virtual router on the interface and the receive side stays unbound.
    pub fn send(&self, source: IpAddr, destination: IpAddr, message: &[u8]) -> Result<(), Error> {
        let fd = self.socket.get_ref().as_raw_fd();
        let iov = [IoSlice::new(message)];
        let sent = match (source, destination) {
            (IpAddr::V4(source), IpAddr::V4(destination)) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: self.ifindex as libc::c_int,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(source).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                let to = SockaddrIn::from(SocketAddrV4::new(destination, 0));
                sendmsg(
                    fd,
                    &iov,
                    &[ControlMessage::Ipv4PacketInfo(&info)],
                    MsgFlags::MSG_DONTWAIT,
                    Some(&to),
                )
            }
            (IpAddr::V6(source), IpAddr::V6(destination)) => {
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: source.octets(),
                    },
                    ipi6_ifindex: self.ifindex,
                };
                let scope = if is_link_local(&destination) || destination.is_multicast() {
                    self.ifindex
                } else {
                    0
                };
                let to = SockaddrIn6::from(SocketAddrV6::new(destination, 0, 0, scope));
                sendmsg(
                    fd,
                    &iov,
                    &[ControlMessage::Ipv6PacketInfo(&info)],
                    MsgFlags::MSG_DONTWAIT,
                    Some(&to),
                )
            }
            _ => {
                return Err(Error::FamilyMismatch {
                    from: source,
                    to: destination,
                });
            }
        };
        sent.map(|_| ()).map_err(errno("sendmsg"))
    }
}

/// Whether `address` is in fe80::/10.
pub fn is_link_local(address: &Ipv6Addr) -> bool {
    address.segments()[0] & 0xffc0 == 0xfe80
}

fn recv_v4(fd: i32, buffer: &mut [u8]) -> nix::Result<Option<Received>> {
    let mut control = nix::cmsg_space!(libc::timespec);
    let (length, arrival) = {
        let mut iov = [IoSliceMut::new(buffer)];
        let message =
            recvmsg::<SockaddrIn>(fd, &mut iov, Some(&mut control), MsgFlags::MSG_DONTWAIT)?;
        let mut arrival = None;
        for cmsg in message.cmsgs()? {
            if let ControlMessageOwned::ScmTimestampns(time) = cmsg {
                arrival = Some(wall_time(time));
            }
        }
        (message.bytes, arrival)
    };
    Ok(parse_ipv4_header(&buffer[..length]).map(|r| Received { arrival, ..r }))
}

fn wall_time(time: nix::sys::time::TimeSpec) -> SystemTime {
    UNIX_EPOCH + Duration::new(time.tv_sec() as u64, time.tv_nsec() as u32)
}

/// Reads source, destination and TTL from the IPv4 header a raw IPv4 socket
/// hands over with each packet (raw(7)), and where the payload lies.
/// `None` for anything that is not a whole IPv4 packet; never panics.
pub fn parse_ipv4_header(packet: &[u8]) -> Option<Received> {
    if packet.len() < 20 || packet[0] >> 4 != 4 {
        return None;
    }
    let header_length = usize::from(packet[0] & 0x0f) * 4;
    let total_length = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if header_length < 20 || total_length < header_length || total_length > packet.len() {
        return None;
    }
    let source = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let destination = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    Some(Received {
        source: source.into(),
        destination: destination.into(),
        ttl: packet[8],
        offset: header_length,
        end: total_length,
        arrival: None,
    })
}

fn recv_v6(fd: i32, buffer: &mut [u8]) -> nix::Result<Option<Received>> {
    let mut control = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int, libc::timespec);
    let mut iov = [IoSliceMut::new(buffer)];
    let message =
        recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut control), MsgFlags::MSG_DONTWAIT)?;
    let source = match message.address.as_ref().and_then(|a| a.as_sockaddr_in6()) {
        Some(address) => address.ip(),
        None => return Ok(None),
    };
    let mut destination = None;
    let mut hop_limit = None;
    let mut arrival = None;
    for cmsg in message.cmsgs()? {
        match cmsg {
            ControlMessageOwned::Ipv6PacketInfo(info) => {
                destination = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr))
            }
            ControlMessageOwned::Ipv6HopLimit(limit) => hop_limit = u8::try_from(limit).ok(),
            ControlMessageOwned::ScmTimestampns(time) => arrival = Some(wall_time(time)),
            _ => {}
        }
    }
    match (destination, hop_limit) {
        (Some(destination), Some(ttl)) => Ok(Some(Received {
            source: source.into(),
            destination: destination.into(),
            ttl,
            offset: 0,
            end: message.bytes,
            arrival,
        })),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An IPv4 VRRP packet as received on a raw socket in the namespace
    /// tests: 10.0.0.1 → 224.0.0.18, TTL 255, protocol 112, and a 12-byte
    /// VRRPv3 body.
    #[rustfmt::skip]
    const PACKET: [u8; 32] = [
        0x45, 0xc0, 0x00, 0x20, 0x00, 0x00, 0x40, 0x00, 0xff, 0x70, 0x00, 0x00,
        10, 0, 0, 1, 224, 0, 0, 18,
        0x31, 0x07, 0x64, 0x01, 0x00, 0x0a, 0x00, 0x00, 10, 0, 0, 100,
    ];

    #[test]
    fn ipv4_header() {
        let received = parse_ipv4_header(&PACKET).unwrap();
        assert_eq!(received.source, IpAddr::from([10, 0, 0, 1]));
        assert_eq!(received.destination, IpAddr::from(GROUP_V4));
        assert_eq!(received.ttl, 255);
        assert_eq!(&PACKET[received.offset..received.end][..2], &[0x31, 0x07]);
        // Truncated, or a total length beyond what was read: dropped.
        assert_eq!(parse_ipv4_header(&PACKET[..31]), None);
        assert_eq!(parse_ipv4_header(&PACKET[..19]), None);
        let mut options = PACKET;
        options[0] = 0x4f; // IHL 60 > total length 32
        assert_eq!(parse_ipv4_header(&options), None);
    }

    #[test]
    fn arrival_on_the_monotonic_clock() {
        let received = parse_ipv4_header(&PACKET).unwrap();
        let now = Instant::now();
        let wall = SystemTime::now();
        assert_eq!(
            received.arrival_instant(now, wall),
            now,
            "no timestamp: now"
        );
        let early = Received {
            arrival: Some(wall - Duration::from_millis(3)),
            ..received
        };
        assert_eq!(
            early.arrival_instant(now, wall),
            now - Duration::from_millis(3)
        );
        // A timestamp from the future (the wall clock stepped back) is now.
        let future = Received {
            arrival: Some(wall + Duration::from_secs(1)),
            ..received
        };
        assert_eq!(future.arrival_instant(now, wall), now);
    }

    proptest! {
        #[test]
        fn ipv4_header_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Some(received) = parse_ipv4_header(&bytes) {
                prop_assert!(received.offset <= received.end && received.end <= bytes.len());
            }
        }
    }
}
