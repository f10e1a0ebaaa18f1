//! TCP_CHECK: a TCP connect (RFC 9293 §3.5 three-way handshake), then close.
//!
//! The connect is started on a non-blocking socket we create ourselves.
//! When the real server runs on this host, Linux usually completes the
//! whole handshake inside connect(2) (the SYN, SYN-ACK and ACK are processed
//! in the caller's softirq before it returns `EINPROGRESS`), so one
//! `getpeername(2)` tells whether the socket is already established. Only a
//! connect still in progress is registered with the reactor and waited for.
//! For TCP_CHECK this saves, per check, two `epoll_ctl(2)` calls, a
//! `getsockopt(SO_ERROR)` and a task wake-up; on a real network it costs
//! one `getpeername(2)`.

use std::net::SocketAddr;

use socket2::{Protocol, SockAddr, Socket, Type};
use tokio::net::TcpStream;

use super::socket::{io, new_socket};
use crate::config::ConnectOptions;
use crate::error::ProbeError;

/// A started connect: established already, or still in progress.
enum Started {
    Established(Socket),
    InProgress(Socket),
}

/// Creates a socket carrying the connection options and starts connecting
/// it to `dst` without blocking.
fn start(dst: SocketAddr, co: &ConnectOptions) -> Result<Started, ProbeError> {
    let socket = new_socket(dst, Type::STREAM, Protocol::TCP, co)?;
    match socket.connect(&SockAddr::from(dst)) {
        Ok(()) => return Ok(Started::Established(socket)),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(io("connect")(e)),
    }
    // getpeername(2) succeeds once the socket left SYN-SENT for a
    // synchronized state; ENOTCONN means still connecting, or refused
    // (then the reactor reports the error at once).
    Ok(match socket.peer_addr() {
        Ok(_) => Started::Established(socket),
        Err(_) => Started::InProgress(socket),
    })
}

/// Waits for a connect in progress to end; its error if it failed.
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
    // Close with a FIN either way; a reset-on-close would be noisier for
    // the server.
    match start(dst, co)? {
        Started::Established(socket) => drop(socket),
        Started::InProgress(socket) => drop(finish(socket).await?),
    }
    Ok(())
}
