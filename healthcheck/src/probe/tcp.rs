//! TCP_CHECK: a TCP connect (RFC 9293 §3.5 three-way handshake), then close.
//!
//! The connect is started on a non-blocking socket we create ourselves.
//! When the real server runs on this host, Linux usually completes the
//! whole handshake inside connect(2) (the SYN, SYN-ACK and ACK are processed
//! in the caller's softirq before it returns `EINPROGRESS`), so for
//! TCP_CHECK one `getpeername(2)` tells whether the socket is already
//! established, and only a connect still in progress is registered with the
//! reactor and waited for. That saves, per check, two `epoll_ctl(2)` calls,
//! a `getsockopt(SO_ERROR)` and a task wake-up; on a real network it costs
//! one `getpeername(2)`. The probes that go on to talk over the connection
//! need it registered anyway, and always wait through the reactor.

use std::net::SocketAddr;

use socket2::{Protocol, SockAddr, Socket, Type};
use tokio::net::TcpStream;

use super::socket::{io, new_socket};
use crate::config::ConnectOptions;
use crate::error::ProbeError;

/// A started connect: established already, or in progress.
enum Started {
    Established(Socket),
    InProgress(Socket),
}

/// Creates a socket carrying the connection options and starts connecting
/// it to `dst` without blocking.
fn start(dst: SocketAddr, co: &ConnectOptions) -> Result<Started, ProbeError> {
    let socket = new_socket(dst, Type::STREAM, Protocol::TCP, co)?;
    match socket.connect(&SockAddr::from(dst)) {
        Ok(()) => Ok(Started::Established(socket)),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(Started::InProgress(socket)),
        Err(e) => Err(io("connect")(e)),
    }
}

/// Registers `socket` with the reactor and waits for its connect to end;
/// its error if it failed.
async fn finish(socket: Socket) -> Result<TcpStream, ProbeError> {
    let stream = TcpStream::from_std(std::net::TcpStream::from(socket)).map_err(io("connect"))?;
    // Writable once the handshake completes or fails (connect(2), EINPROGRESS).
    stream.writable().await.map_err(io("connect"))?;
    if let Some(e) = stream.take_error().map_err(io("connect"))? {
        return Err(io("connect")(e));
    }
    Ok(stream)
}

/// Connects to `dst` over a socket carrying the connection options.
pub(crate) async fn connect(dst: SocketAddr, co: &ConnectOptions) -> Result<TcpStream, ProbeError> {
    match start(dst, co)? {
        Started::Established(socket) => {
            TcpStream::from_std(std::net::TcpStream::from(socket)).map_err(io("connect"))
        }
        Started::InProgress(socket) => finish(socket).await,
    }
}

/// The TCP_CHECK probe: success once the handshake completes.
pub(crate) async fn probe(dst: SocketAddr, co: &ConnectOptions) -> Result<(), ProbeError> {
    // Close with a FIN either way: a reset (SO_LINGER 0) would be noisier
    // for the server, and on loopback it costs the checker more, since the
    // server's side of the reset then runs in the checker's softirq.
    match start(dst, co)? {
        Started::Established(socket) => drop(socket),
        // getpeername(2) succeeds once the socket left SYN-SENT for a
        // synchronized state; ENOTCONN means still connecting, or refused
        // (then the reactor reports the error at once).
        Started::InProgress(socket) if socket.peer_addr().is_ok() => drop(socket),
        Started::InProgress(socket) => drop(finish(socket).await?),
    }
    Ok(())
}
