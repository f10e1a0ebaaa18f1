//! Probe sockets we create ourselves (socket2), so that `bindto`,
//! `bind_port`, `bind_if` (`SO_BINDTODEVICE`, socket(7)) and `fwmark`
//! (`SO_MARK`, socket(7)) apply before connecting.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::config::ConnectOptions;
use crate::error::{IoFailure, ProbeError};

pub(crate) fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> ProbeError {
    move |e| {
        if e.kind() == std::io::ErrorKind::ConnectionRefused {
            ProbeError::Refused
        } else {
            ProbeError::Io(IoFailure::new(op, &e))
        }
    }
}

/// Creates a non-blocking socket for `dst` with the connection options
/// applied (bound, marked, tied to a device), not yet connected.
pub(crate) fn new_socket(
    dst: SocketAddr,
    ty: Type,
    protocol: Protocol,
    co: &ConnectOptions,
) -> Result<Socket, ProbeError> {
    let domain = Domain::for_address(dst);
    let socket =
        Socket::new(domain, ty.nonblocking().cloexec(), Some(protocol)).map_err(io("socket"))?;
    apply_options(&socket, dst.ip(), co)?;
    Ok(socket)
}

/// Applies `bind_if`, `fwmark`, `bindto` and `bind_port` to `socket`.
pub(crate) fn apply_options(
    socket: &Socket,
    dst: IpAddr,
    co: &ConnectOptions,
) -> Result<(), ProbeError> {
    if let Some(ifname) = &co.bind_if {
        socket
            .bind_device(Some(ifname.as_bytes()))
            .map_err(io("SO_BINDTODEVICE"))?;
    }
    if let Some(mark) = co.fwmark {
        socket.set_mark(mark).map_err(io("SO_MARK"))?;
    }
    if co.bindto.is_some() || co.bind_port.is_some() {
        let ip = co.bindto.unwrap_or(match dst {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        });
        if co.bind_port.is_some() {
            socket.set_reuse_address(true).map_err(io("SO_REUSEADDR"))?;
        }
        let local = SocketAddr::new(ip, co.bind_port.unwrap_or(0));
        socket.bind(&SockAddr::from(local)).map_err(io("bind"))?;
    }
    Ok(())
}
