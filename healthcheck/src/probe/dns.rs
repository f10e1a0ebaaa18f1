//! DNS_CHECK: one query over UDP (RFC 1035 §4.1), built and parsed with
//! hickory-proto. As in keepalived, replies with another id or without the
//! QR bit are ignored, a non-zero RCODE fails the check, and any other reply
//! passes it.

use std::net::SocketAddr;
use std::str::FromStr;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use socket2::{Protocol, Type};
use tokio::net::UdpSocket;

use super::socket::{io, new_socket};
use crate::config::{ConnectOptions, DnsCheck};
use crate::error::{ConfigError, ProbeError};

/// Builds the query message for `check` with transaction `id`.
pub fn query_bytes(check: &DnsCheck, id: u16) -> Result<Vec<u8>, ConfigError> {
    let record_type = RecordType::from_str(&check.record_type.to_ascii_uppercase())
        .map_err(|_| ConfigError::DnsType(check.record_type.clone()))?;
    let name =
        Name::from_ascii(&check.name).map_err(|_| ConfigError::DnsName(check.name.clone()))?;
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(name, record_type));
    message
        .to_vec()
        .map_err(|_| ConfigError::DnsName(check.name.clone()))
}

/// Judges one datagram: `None` if it is not the reply to query `id`
/// (keep waiting), `Some(result)` otherwise.
pub fn judge_reply(bytes: &[u8], id: u16) -> Option<Result<(), ProbeError>> {
    let message = Message::from_vec(bytes).ok()?;
    if message.metadata.id != id || message.metadata.message_type != MessageType::Response {
        return None;
    }
    match message.metadata.response_code {
        ResponseCode::NoError => Some(Ok(())),
        code => Some(Err(ProbeError::Dns(format!("rcode {code}")))),
    }
}

/// The DNS_CHECK probe.
pub(crate) async fn probe(
    dst: SocketAddr,
    co: &ConnectOptions,
    check: &DnsCheck,
) -> Result<(), ProbeError> {
    let id: u16 = rand::random();
    let query = query_bytes(check, id).map_err(|e| ProbeError::Dns(e.to_string()))?;
    let socket = new_socket(dst, Type::DGRAM, Protocol::UDP, co)?;
    socket.connect(&dst.into()).map_err(io("connect"))?;
    let socket = UdpSocket::from_std(std::net::UdpSocket::from(socket)).map_err(io("socket"))?;
    socket.send(&query).await.map_err(io("send"))?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = socket.recv(&mut buf).await.map_err(io("recv"))?;
        if let Some(result) = judge_reply(&buf[..n], id) {
            return result;
        }
    }
}
