//! UDP_CHECK: send a payload on a connected UDP socket. An ICMP port
//! unreachable comes back as `ECONNREFUSED` on the next receive (udp(7)),
//! which fails the check. With `require_reply`, a reply within the timeout
//! is required and must fit the length bounds (and start with the expected
//! bytes, when given); without it, silence until the timeout passes.

use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Protocol, Type};
use tokio::net::UdpSocket;

use super::socket::{io, new_socket};
use crate::config::{ConnectOptions, UdpCheck};
use crate::error::ProbeError;

/// Largest UDP payload over IPv4.
const MAX_DATAGRAM: usize = 65_507;

/// The UDP_CHECK probe. `timeout` is the probe's whole budget; without
/// `require_reply`, the probe waits until shortly before it for an ICMP
/// error.
pub(crate) async fn probe(
    dst: SocketAddr,
    co: &ConnectOptions,
    check: &UdpCheck,
    timeout: Duration,
) -> Result<(), ProbeError> {
    let socket = new_socket(dst, Type::DGRAM, Protocol::UDP, co)?;
    socket.connect(&dst.into()).map_err(io("connect"))?;
    let socket = UdpSocket::from_std(std::net::UdpSocket::from(socket)).map_err(io("socket"))?;
    socket.send(&check.payload).await.map_err(io("send"))?;
    let max = check
        .max_reply_length
        .unwrap_or(MAX_DATAGRAM)
        .min(MAX_DATAGRAM);
    let mut buf = vec![0u8; max + 1];
    let recv = socket.recv(&mut buf);
    if !check.require_reply {
        // Leave a margin so the silence verdict beats the outer timeout.
        let wait = timeout.saturating_sub(timeout / 10);
        return match tokio::time::timeout(wait, recv).await {
            Err(_) | Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(io("recv")(e)),
        };
    }
    let n = recv.await.map_err(io("recv"))?;
    if n < check.min_reply_length || n > max {
        return Err(ProbeError::UdpReply(format!(
            "length {n} outside {}..={max}",
            check.min_reply_length
        )));
    }
    if let Some(expected) = &check.expected_reply
        && !buf[..n].starts_with(expected)
    {
        return Err(ProbeError::UdpReply("reply data mismatch".into()));
    }
    Ok(())
}
