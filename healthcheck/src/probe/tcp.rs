//! TCP_CHECK: a TCP connect (RFC 9293 §3.5 three-way handshake), then close.

use std::net::SocketAddr;

use socket2::{Protocol, Type};
use tokio::net::{TcpSocket, TcpStream};

use super::socket::{io, new_socket};
use crate::config::ConnectOptions;
use crate::error::ProbeError;

/// Connects to `dst` over a socket carrying the connection options.
pub(crate) async fn connect(dst: SocketAddr, co: &ConnectOptions) -> Result<TcpStream, ProbeError> {
    let socket = new_socket(dst, Type::STREAM, Protocol::TCP, co)?;
    let socket = TcpSocket::from_std_stream(std::net::TcpStream::from(socket));
    socket.connect(dst).await.map_err(io("connect"))
}

/// The TCP_CHECK probe: success once the handshake completes.
pub(crate) async fn probe(dst: SocketAddr, co: &ConnectOptions) -> Result<(), ProbeError> {
    let stream = connect(dst, co).await?;
    // Close with a FIN; a reset-on-close would be noisier for the server.
    drop(stream);
    Ok(())
}
