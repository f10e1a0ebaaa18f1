//! The IPVS attribute sets, one enum per nested set of
//! `include/uapi/linux/ip_vs.h`, each with one variant per kernel constant
//! plus `Other(DefaultNla)` so that unknown attributes survive a parse and
//! re-emit.
//!
//! Byte orders follow the kernel (`net/netfilter/ipvs/ip_vs_ctl.c`):
//! ports are big-endian (`nla_put_be16`), every other integer is in host
//! order, addresses are raw `union nf_inet_addr` bytes (16 bytes when sent by
//! the kernel or by `ipvsadm`), and `IPVS_SVC_ATTR_NETMASK` is four raw bytes
//! whose meaning depends on the family (see [`ServiceAttribute::Netmask`]).

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, Nla, NlaBuffer, NlasIterator, Parseable, emit_u16,
    emit_u16_be, emit_u32, emit_u64, parse_u32,
};

/// `IPVS_SVC_ATTR_*`, `IPVS_DEST_ATTR_*`, … numbers from `ip_vs.h`.
pub mod kind {
    #![allow(missing_docs)]
    pub const CMD_ATTR_SERVICE: u16 = 1;
    pub const CMD_ATTR_DEST: u16 = 2;
    pub const CMD_ATTR_DAEMON: u16 = 3;
    pub const CMD_ATTR_TIMEOUT_TCP: u16 = 4;
    pub const CMD_ATTR_TIMEOUT_TCP_FIN: u16 = 5;
    pub const CMD_ATTR_TIMEOUT_UDP: u16 = 6;

    pub const INFO_ATTR_VERSION: u16 = 1;
    pub const INFO_ATTR_CONN_TAB_SIZE: u16 = 2;

    pub const SVC_ATTR_AF: u16 = 1;
    pub const SVC_ATTR_PROTOCOL: u16 = 2;
    pub const SVC_ATTR_ADDR: u16 = 3;
    pub const SVC_ATTR_PORT: u16 = 4;
    pub const SVC_ATTR_FWMARK: u16 = 5;
    pub const SVC_ATTR_SCHED_NAME: u16 = 6;
    pub const SVC_ATTR_FLAGS: u16 = 7;
    pub const SVC_ATTR_TIMEOUT: u16 = 8;
    pub const SVC_ATTR_NETMASK: u16 = 9;
    pub const SVC_ATTR_STATS: u16 = 10;
    pub const SVC_ATTR_PE_NAME: u16 = 11;
    pub const SVC_ATTR_STATS64: u16 = 12;

    pub const DEST_ATTR_ADDR: u16 = 1;
    pub const DEST_ATTR_PORT: u16 = 2;
    pub const DEST_ATTR_FWD_METHOD: u16 = 3;
    pub const DEST_ATTR_WEIGHT: u16 = 4;
    pub const DEST_ATTR_U_THRESH: u16 = 5;
    pub const DEST_ATTR_L_THRESH: u16 = 6;
    pub const DEST_ATTR_ACTIVE_CONNS: u16 = 7;
    pub const DEST_ATTR_INACT_CONNS: u16 = 8;
    pub const DEST_ATTR_PERSIST_CONNS: u16 = 9;
    pub const DEST_ATTR_STATS: u16 = 10;
    pub const DEST_ATTR_ADDR_FAMILY: u16 = 11;
    pub const DEST_ATTR_STATS64: u16 = 12;
    pub const DEST_ATTR_TUN_TYPE: u16 = 13;
    pub const DEST_ATTR_TUN_PORT: u16 = 14;
    pub const DEST_ATTR_TUN_FLAGS: u16 = 15;

    pub const DAEMON_ATTR_STATE: u16 = 1;
    pub const DAEMON_ATTR_MCAST_IFN: u16 = 2;
    pub const DAEMON_ATTR_SYNC_ID: u16 = 3;
    pub const DAEMON_ATTR_SYNC_MAXLEN: u16 = 4;
    pub const DAEMON_ATTR_MCAST_GROUP: u16 = 5;
    pub const DAEMON_ATTR_MCAST_GROUP6: u16 = 6;
    pub const DAEMON_ATTR_MCAST_PORT: u16 = 7;
    pub const DAEMON_ATTR_MCAST_TTL: u16 = 8;

    pub const STATS_ATTR_CONNS: u16 = 1;
    pub const STATS_ATTR_INPKTS: u16 = 2;
    pub const STATS_ATTR_OUTPKTS: u16 = 3;
    pub const STATS_ATTR_INBYTES: u16 = 4;
    pub const STATS_ATTR_OUTBYTES: u16 = 5;
    pub const STATS_ATTR_CPS: u16 = 6;
    pub const STATS_ATTR_INPPS: u16 = 7;
    pub const STATS_ATTR_OUTPPS: u16 = 8;
    pub const STATS_ATTR_INBPS: u16 = 9;
    pub const STATS_ATTR_OUTBPS: u16 = 10;
    pub const STATS_ATTR_PAD: u16 = 11;
}

use kind::*;

pub(crate) fn exact<const N: usize>(value: &[u8], what: &str) -> Result<[u8; N], DecodeError> {
    value
        .try_into()
        .map_err(|_| DecodeError::from(format!("{what}: expected {N} bytes, got {}", value.len())))
}

pub(crate) fn u8_of(v: &[u8], what: &str) -> Result<u8, DecodeError> {
    exact::<1>(v, what).map(|[b]| b)
}
pub(crate) fn u16_of(v: &[u8], what: &str) -> Result<u16, DecodeError> {
    exact(v, what).map(u16::from_ne_bytes)
}
pub(crate) fn be16_of(v: &[u8], what: &str) -> Result<u16, DecodeError> {
    exact(v, what).map(u16::from_be_bytes)
}
pub(crate) fn u32_of(v: &[u8], what: &str) -> Result<u32, DecodeError> {
    exact(v, what).map(u32::from_ne_bytes)
}

/// A NUL-terminated string attribute (`NLA_NUL_STRING`): the trailing NULs
/// are dropped on parse and one is written on emit.
fn string_of(v: &[u8], what: &str) -> Result<String, DecodeError> {
    str_of(v, what).map(str::to_owned)
}

/// [`string_of`] without the copy.
pub(crate) fn str_of<'a>(v: &'a [u8], what: &str) -> Result<&'a str, DecodeError> {
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    if v[end..].iter().any(|&b| b != 0) {
        return Err(DecodeError::from(format!("{what}: bytes after the NUL")));
    }
    std::str::from_utf8(&v[..end]).map_err(|_| DecodeError::from(format!("{what}: not UTF-8")))
}

fn emit_string(buf: &mut [u8], s: &str) {
    buf[..s.len()].copy_from_slice(s.as_bytes());
    buf[s.len()] = 0;
}

fn parse_nested<T>(value: &[u8]) -> Result<Vec<T>, DecodeError>
where
    T: for<'a> Parseable<NlaBuffer<&'a [u8]>>,
{
    // Sized up front: dump replies hold tens of attributes per nest.
    let mut out = Vec::with_capacity(NlasIterator::new(value).count());
    for nla in NlasIterator::new(value) {
        out.push(T::parse(&nla?)?);
    }
    Ok(out)
}

fn nested_len<T: Nla>(attrs: &[T]) -> usize {
    attrs.iter().map(|a| a.buffer_len()).sum()
}

fn emit_nested<T: Nla>(attrs: &[T], buffer: &mut [u8]) {
    attrs.as_ref().emit(buffer)
}

/// A statistics counter as it travels: `IPVS_SVC_ATTR_STATS` carries most
/// counters as `u32` (bytes as `u64`), `IPVS_*_ATTR_STATS64` all as `u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Counter {
    /// A 32-bit counter.
    U32(u32),
    /// A 64-bit counter.
    U64(u64),
}

impl Counter {
    /// The value, widened.
    pub fn get(self) -> u64 {
        match self {
            Counter::U32(v) => u64::from(v),
            Counter::U64(v) => v,
        }
    }
    fn len(self) -> usize {
        match self {
            Counter::U32(_) => 4,
            Counter::U64(_) => 8,
        }
    }
    fn emit(self, buf: &mut [u8]) {
        match self {
            Counter::U32(v) => emit_u32(buf, v).expect("sized by value_len"),
            Counter::U64(v) => emit_u64(buf, v).expect("sized by value_len"),
        }
    }
    pub(crate) fn parse(v: &[u8]) -> Result<Self, DecodeError> {
        if let Ok(v) = v.try_into() {
            return Ok(Counter::U32(u32::from_ne_bytes(v)));
        }
        match v.try_into() {
            Ok(v) => Ok(Counter::U64(u64::from_ne_bytes(v))),
            Err(_) => Err(DecodeError::from(format!(
                "statistics counter: expected 4 or 8 bytes, got {}",
                v.len()
            ))),
        }
    }
}

/// `IPVS_STATS_ATTR_*`: one counter of a service's or destination's
/// statistics (`ip_vs_genl_fill_stats`, `ip_vs_genl_fill_stats64`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatsAttribute {
    /// `IPVS_STATS_ATTR_CONNS`: connections scheduled.
    Connections(Counter),
    /// `IPVS_STATS_ATTR_INPKTS`: incoming packets.
    InPackets(Counter),
    /// `IPVS_STATS_ATTR_OUTPKTS`: outgoing packets.
    OutPackets(Counter),
    /// `IPVS_STATS_ATTR_INBYTES`: incoming bytes.
    InBytes(Counter),
    /// `IPVS_STATS_ATTR_OUTBYTES`: outgoing bytes.
    OutBytes(Counter),
    /// `IPVS_STATS_ATTR_CPS`: current connection rate.
    ConnectionRate(Counter),
    /// `IPVS_STATS_ATTR_INPPS`: current incoming packet rate.
    InPacketRate(Counter),
    /// `IPVS_STATS_ATTR_OUTPPS`: current outgoing packet rate.
    OutPacketRate(Counter),
    /// `IPVS_STATS_ATTR_INBPS`: current incoming byte rate.
    InByteRate(Counter),
    /// `IPVS_STATS_ATTR_OUTBPS`: current outgoing byte rate.
    OutByteRate(Counter),
    /// `IPVS_STATS_ATTR_PAD`: alignment padding before a 64-bit value; its
    /// payload is kept only so that a re-emit is byte-identical.
    Pad(Vec<u8>),
    /// An attribute this crate does not know.
    Other(DefaultNla),
}

impl StatsAttribute {
    /// The counter, unless this is padding or unknown.
    pub(crate) fn counter(&self) -> Option<Counter> {
        use StatsAttribute::*;
        match self {
            Connections(c) | InPackets(c) | OutPackets(c) | InBytes(c) | OutBytes(c)
            | ConnectionRate(c) | InPacketRate(c) | OutPacketRate(c) | InByteRate(c)
            | OutByteRate(c) => Some(*c),
            Pad(_) | Other(_) => None,
        }
    }
}

impl Nla for StatsAttribute {
    fn value_len(&self) -> usize {
        use StatsAttribute::*;
        match self {
            Connections(c) | InPackets(c) | OutPackets(c) | InBytes(c) | OutBytes(c)
            | ConnectionRate(c) | InPacketRate(c) | OutPacketRate(c) | InByteRate(c)
            | OutByteRate(c) => c.len(),
            Pad(v) => v.len(),
            Other(nla) => nla.value_len(),
        }
    }
    fn kind(&self) -> u16 {
        use StatsAttribute::*;
        match self {
            Connections(_) => STATS_ATTR_CONNS,
            InPackets(_) => STATS_ATTR_INPKTS,
            OutPackets(_) => STATS_ATTR_OUTPKTS,
            InBytes(_) => STATS_ATTR_INBYTES,
            OutBytes(_) => STATS_ATTR_OUTBYTES,
            ConnectionRate(_) => STATS_ATTR_CPS,
            InPacketRate(_) => STATS_ATTR_INPPS,
            OutPacketRate(_) => STATS_ATTR_OUTPPS,
            InByteRate(_) => STATS_ATTR_INBPS,
            OutByteRate(_) => STATS_ATTR_OUTBPS,
            Pad(_) => STATS_ATTR_PAD,
            Other(nla) => nla.kind(),
        }
    }
    fn emit_value(&self, buffer: &mut [u8]) {
        use StatsAttribute::*;
        match self {
            Connections(c) | InPackets(c) | OutPackets(c) | InBytes(c) | OutBytes(c)
            | ConnectionRate(c) | InPacketRate(c) | OutPacketRate(c) | InByteRate(c)
            | OutByteRate(c) => c.emit(buffer),
            Pad(v) => buffer.copy_from_slice(v),
            Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for StatsAttribute {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        use StatsAttribute::*;
        let v = buf.value();
        Ok(match buf.kind() {
            STATS_ATTR_CONNS => Connections(Counter::parse(v)?),
            STATS_ATTR_INPKTS => InPackets(Counter::parse(v)?),
            STATS_ATTR_OUTPKTS => OutPackets(Counter::parse(v)?),
            STATS_ATTR_INBYTES => InBytes(Counter::parse(v)?),
            STATS_ATTR_OUTBYTES => OutBytes(Counter::parse(v)?),
            STATS_ATTR_CPS => ConnectionRate(Counter::parse(v)?),
            STATS_ATTR_INPPS => InPacketRate(Counter::parse(v)?),
            STATS_ATTR_OUTPPS => OutPacketRate(Counter::parse(v)?),
            STATS_ATTR_INBPS => InByteRate(Counter::parse(v)?),
            STATS_ATTR_OUTBPS => OutByteRate(Counter::parse(v)?),
            STATS_ATTR_PAD => Pad(v.to_vec()),
            _ => Other(DefaultNla::parse(buf)?),
        })
    }
}

/// `IPVS_SVC_ATTR_*`: the attributes of a virtual service, nested in
/// `IPVS_CMD_ATTR_SERVICE` (`ip_vs_genl_fill_service`,
/// `ip_vs_genl_parse_service`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceAttribute {
    /// `IPVS_SVC_ATTR_AF` (u16): `AF_INET` (2) or `AF_INET6` (10).
    AddressFamily(u16),
    /// `IPVS_SVC_ATTR_PROTOCOL` (u16): an IP protocol number.
    Protocol(u16),
    /// `IPVS_SVC_ATTR_ADDR`: raw `union nf_inet_addr` bytes (an IPv4 address
    /// fills the first four of sixteen).
    Address(Vec<u8>),
    /// `IPVS_SVC_ATTR_PORT` (be16).
    Port(u16),
    /// `IPVS_SVC_ATTR_FWMARK` (u32, host order).
    Fwmark(u32),
    /// `IPVS_SVC_ATTR_SCHED_NAME` (NUL-terminated string).
    SchedulerName(String),
    /// `IPVS_SVC_ATTR_FLAGS`: `struct ip_vs_flags { u32 flags; u32 mask; }`,
    /// host order; the kernel changes only the bits set in `mask`.
    Flags {
        /// `IP_VS_SVC_F_*` bits.
        flags: u32,
        /// Which bits of `flags` apply.
        mask: u32,
    },
    /// `IPVS_SVC_ATTR_TIMEOUT` (u32, host order): persistence timeout in
    /// seconds.
    Timeout(u32),
    /// `IPVS_SVC_ATTR_NETMASK`: four raw bytes. For an IPv4 service they are
    /// the persistence mask in network order (`255.255.255.0` is
    /// `ff ff ff 00`); for IPv6 a prefix length as a host-order u32.
    Netmask([u8; 4]),
    /// `IPVS_SVC_ATTR_STATS`: 32-bit statistics.
    Stats(Vec<StatsAttribute>),
    /// `IPVS_SVC_ATTR_PE_NAME` (NUL-terminated string): persistence engine.
    PersistenceEngine(String),
    /// `IPVS_SVC_ATTR_STATS64`: 64-bit statistics.
    Stats64(Vec<StatsAttribute>),
    /// An attribute this crate does not know.
    Other(DefaultNla),
}

impl Nla for ServiceAttribute {
    fn value_len(&self) -> usize {
        use ServiceAttribute::*;
        match self {
            AddressFamily(_) | Protocol(_) | Port(_) => 2,
            Fwmark(_) | Timeout(_) | Netmask(_) => 4,
            Address(a) => a.len(),
            SchedulerName(s) | PersistenceEngine(s) => s.len() + 1,
            Flags { .. } => 8,
            Stats(s) | Stats64(s) => nested_len(s),
            Other(nla) => nla.value_len(),
        }
    }
    fn kind(&self) -> u16 {
        use ServiceAttribute::*;
        match self {
            AddressFamily(_) => SVC_ATTR_AF,
            Protocol(_) => SVC_ATTR_PROTOCOL,
            Address(_) => SVC_ATTR_ADDR,
            Port(_) => SVC_ATTR_PORT,
            Fwmark(_) => SVC_ATTR_FWMARK,
            SchedulerName(_) => SVC_ATTR_SCHED_NAME,
            Flags { .. } => SVC_ATTR_FLAGS,
            Timeout(_) => SVC_ATTR_TIMEOUT,
            Netmask(_) => SVC_ATTR_NETMASK,
            Stats(_) => SVC_ATTR_STATS,
            PersistenceEngine(_) => SVC_ATTR_PE_NAME,
            Stats64(_) => SVC_ATTR_STATS64,
            Other(nla) => nla.kind(),
        }
    }
    fn emit_value(&self, b: &mut [u8]) {
        use ServiceAttribute::*;
        match self {
            AddressFamily(v) | Protocol(v) => emit_u16(b, *v).expect("2 bytes"),
            Port(v) => emit_u16_be(b, *v).expect("2 bytes"),
            Fwmark(v) | Timeout(v) => emit_u32(b, *v).expect("4 bytes"),
            Netmask(m) => b.copy_from_slice(m),
            Address(a) => b.copy_from_slice(a),
            SchedulerName(s) | PersistenceEngine(s) => emit_string(b, s),
            Flags { flags, mask } => {
                emit_u32(&mut b[..4], *flags).expect("4 bytes");
                emit_u32(&mut b[4..8], *mask).expect("4 bytes");
            }
            Stats(s) | Stats64(s) => emit_nested(s, b),
            Other(nla) => nla.emit_value(b),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for ServiceAttribute {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        use ServiceAttribute::*;
        let v = buf.value();
        Ok(match buf.kind() {
            SVC_ATTR_AF => AddressFamily(u16_of(v, "IPVS_SVC_ATTR_AF")?),
            SVC_ATTR_PROTOCOL => Protocol(u16_of(v, "IPVS_SVC_ATTR_PROTOCOL")?),
            SVC_ATTR_ADDR => {
                if v.len() != 4 && v.len() != 16 {
                    return Err(DecodeError::from(format!(
                        "IPVS_SVC_ATTR_ADDR: expected 4 or 16 bytes, got {}",
                        v.len()
                    )));
                }
                Address(v.to_vec())
            }
            SVC_ATTR_PORT => Port(be16_of(v, "IPVS_SVC_ATTR_PORT")?),
            SVC_ATTR_FWMARK => Fwmark(u32_of(v, "IPVS_SVC_ATTR_FWMARK")?),
            SVC_ATTR_SCHED_NAME => SchedulerName(string_of(v, "IPVS_SVC_ATTR_SCHED_NAME")?),
            SVC_ATTR_FLAGS => {
                let raw = exact::<8>(v, "IPVS_SVC_ATTR_FLAGS")?;
                Flags {
                    flags: parse_u32(&raw[..4])?,
                    mask: parse_u32(&raw[4..])?,
                }
            }
            SVC_ATTR_TIMEOUT => Timeout(u32_of(v, "IPVS_SVC_ATTR_TIMEOUT")?),
            SVC_ATTR_NETMASK => Netmask(exact::<4>(v, "IPVS_SVC_ATTR_NETMASK")?),
            SVC_ATTR_STATS => Stats(parse_nested(v)?),
            SVC_ATTR_PE_NAME => PersistenceEngine(string_of(v, "IPVS_SVC_ATTR_PE_NAME")?),
            SVC_ATTR_STATS64 => Stats64(parse_nested(v)?),
            _ => Other(DefaultNla::parse(buf)?),
        })
    }
}

/// `IPVS_DEST_ATTR_*`: the attributes of a destination (real server), nested
/// in `IPVS_CMD_ATTR_DEST` (`ip_vs_genl_fill_dest`, `ip_vs_genl_parse_dest`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DestinationAttribute {
    /// `IPVS_DEST_ATTR_ADDR`: raw `union nf_inet_addr` bytes.
    Address(Vec<u8>),
    /// `IPVS_DEST_ATTR_PORT` (be16).
    Port(u16),
    /// `IPVS_DEST_ATTR_FWD_METHOD` (u32): `IP_VS_CONN_F_*` forwarding bits.
    ForwardingMethod(u32),
    /// `IPVS_DEST_ATTR_WEIGHT` (u32).
    Weight(u32),
    /// `IPVS_DEST_ATTR_U_THRESH` (u32): upper connection threshold.
    UpperThreshold(u32),
    /// `IPVS_DEST_ATTR_L_THRESH` (u32): lower connection threshold.
    LowerThreshold(u32),
    /// `IPVS_DEST_ATTR_ACTIVE_CONNS` (u32).
    ActiveConnections(u32),
    /// `IPVS_DEST_ATTR_INACT_CONNS` (u32).
    InactiveConnections(u32),
    /// `IPVS_DEST_ATTR_PERSIST_CONNS` (u32).
    PersistentConnections(u32),
    /// `IPVS_DEST_ATTR_STATS`: 32-bit statistics.
    Stats(Vec<StatsAttribute>),
    /// `IPVS_DEST_ATTR_ADDR_FAMILY` (u16): the destination's own family,
    /// which may differ from the service's (IPv6 real server behind an IPv4
    /// virtual service, tunnel mode only).
    AddressFamily(u16),
    /// `IPVS_DEST_ATTR_STATS64`: 64-bit statistics.
    Stats64(Vec<StatsAttribute>),
    /// `IPVS_DEST_ATTR_TUN_TYPE` (u8): `IP_VS_CONN_F_TUNNEL_TYPE_*`.
    TunnelType(u8),
    /// `IPVS_DEST_ATTR_TUN_PORT` (be16).
    TunnelPort(u16),
    /// `IPVS_DEST_ATTR_TUN_FLAGS` (u16): `IP_VS_TUNNEL_ENCAP_FLAG_*`.
    TunnelFlags(u16),
    /// An attribute this crate does not know.
    Other(DefaultNla),
}

impl Nla for DestinationAttribute {
    fn value_len(&self) -> usize {
        use DestinationAttribute::*;
        match self {
            Address(a) => a.len(),
            Port(_) | AddressFamily(_) | TunnelPort(_) | TunnelFlags(_) => 2,
            TunnelType(_) => 1,
            ForwardingMethod(_)
            | Weight(_)
            | UpperThreshold(_)
            | LowerThreshold(_)
            | ActiveConnections(_)
            | InactiveConnections(_)
            | PersistentConnections(_) => 4,
            Stats(s) | Stats64(s) => nested_len(s),
            Other(nla) => nla.value_len(),
        }
    }
    fn kind(&self) -> u16 {
        use DestinationAttribute::*;
        match self {
            Address(_) => DEST_ATTR_ADDR,
            Port(_) => DEST_ATTR_PORT,
            ForwardingMethod(_) => DEST_ATTR_FWD_METHOD,
            Weight(_) => DEST_ATTR_WEIGHT,
            UpperThreshold(_) => DEST_ATTR_U_THRESH,
            LowerThreshold(_) => DEST_ATTR_L_THRESH,
            ActiveConnections(_) => DEST_ATTR_ACTIVE_CONNS,
            InactiveConnections(_) => DEST_ATTR_INACT_CONNS,
            PersistentConnections(_) => DEST_ATTR_PERSIST_CONNS,
            Stats(_) => DEST_ATTR_STATS,
            AddressFamily(_) => DEST_ATTR_ADDR_FAMILY,
            Stats64(_) => DEST_ATTR_STATS64,
            TunnelType(_) => DEST_ATTR_TUN_TYPE,
            TunnelPort(_) => DEST_ATTR_TUN_PORT,
            TunnelFlags(_) => DEST_ATTR_TUN_FLAGS,
            Other(nla) => nla.kind(),
        }
    }
    fn emit_value(&self, b: &mut [u8]) {
        use DestinationAttribute::*;
        match self {
            Address(a) => b.copy_from_slice(a),
            Port(v) | TunnelPort(v) => emit_u16_be(b, *v).expect("2 bytes"),
            AddressFamily(v) | TunnelFlags(v) => emit_u16(b, *v).expect("2 bytes"),
            TunnelType(v) => b[0] = *v,
            ForwardingMethod(v)
            | Weight(v)
            | UpperThreshold(v)
            | LowerThreshold(v)
            | ActiveConnections(v)
            | InactiveConnections(v)
            | PersistentConnections(v) => emit_u32(b, *v).expect("4 bytes"),
            Stats(s) | Stats64(s) => emit_nested(s, b),
            Other(nla) => nla.emit_value(b),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for DestinationAttribute {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        use DestinationAttribute::*;
        let v = buf.value();
        Ok(match buf.kind() {
            DEST_ATTR_ADDR => {
                if v.len() != 4 && v.len() != 16 {
                    return Err(DecodeError::from(format!(
                        "IPVS_DEST_ATTR_ADDR: expected 4 or 16 bytes, got {}",
                        v.len()
                    )));
                }
                Address(v.to_vec())
            }
            DEST_ATTR_PORT => Port(be16_of(v, "IPVS_DEST_ATTR_PORT")?),
            DEST_ATTR_FWD_METHOD => ForwardingMethod(u32_of(v, "IPVS_DEST_ATTR_FWD_METHOD")?),
            DEST_ATTR_WEIGHT => Weight(u32_of(v, "IPVS_DEST_ATTR_WEIGHT")?),
            DEST_ATTR_U_THRESH => UpperThreshold(u32_of(v, "IPVS_DEST_ATTR_U_THRESH")?),
            DEST_ATTR_L_THRESH => LowerThreshold(u32_of(v, "IPVS_DEST_ATTR_L_THRESH")?),
            DEST_ATTR_ACTIVE_CONNS => ActiveConnections(u32_of(v, "IPVS_DEST_ATTR_ACTIVE_CONNS")?),
            DEST_ATTR_INACT_CONNS => InactiveConnections(u32_of(v, "IPVS_DEST_ATTR_INACT_CONNS")?),
            DEST_ATTR_PERSIST_CONNS => {
                PersistentConnections(u32_of(v, "IPVS_DEST_ATTR_PERSIST_CONNS")?)
            }
            DEST_ATTR_STATS => Stats(parse_nested(v)?),
            DEST_ATTR_ADDR_FAMILY => AddressFamily(u16_of(v, "IPVS_DEST_ATTR_ADDR_FAMILY")?),
            DEST_ATTR_STATS64 => Stats64(parse_nested(v)?),
            DEST_ATTR_TUN_TYPE => TunnelType(u8_of(v, "IPVS_DEST_ATTR_TUN_TYPE")?),
            DEST_ATTR_TUN_PORT => TunnelPort(be16_of(v, "IPVS_DEST_ATTR_TUN_PORT")?),
            DEST_ATTR_TUN_FLAGS => TunnelFlags(u16_of(v, "IPVS_DEST_ATTR_TUN_FLAGS")?),
            _ => Other(DefaultNla::parse(buf)?),
        })
    }
}

/// `IPVS_DAEMON_ATTR_*`: a connection-synchronisation daemon, nested in
/// `IPVS_CMD_ATTR_DAEMON` (`ip_vs_genl_fill_daemon`,
/// `ip_vs_genl_new_daemon`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DaemonAttribute {
    /// `IPVS_DAEMON_ATTR_STATE` (u32): `IP_VS_STATE_MASTER` (1) or
    /// `IP_VS_STATE_BACKUP` (2).
    State(u32),
    /// `IPVS_DAEMON_ATTR_MCAST_IFN` (NUL-terminated string).
    MulticastInterface(String),
    /// `IPVS_DAEMON_ATTR_SYNC_ID` (u32).
    SyncId(u32),
    /// `IPVS_DAEMON_ATTR_SYNC_MAXLEN` (u16, host order): UDP payload size.
    SyncMaxLen(u16),
    /// `IPVS_DAEMON_ATTR_MCAST_GROUP`: IPv4 group, network order.
    MulticastGroup([u8; 4]),
    /// `IPVS_DAEMON_ATTR_MCAST_GROUP6`: IPv6 group, network order.
    MulticastGroup6([u8; 16]),
    /// `IPVS_DAEMON_ATTR_MCAST_PORT` (u16, host order, unlike service ports).
    MulticastPort(u16),
    /// `IPVS_DAEMON_ATTR_MCAST_TTL` (u8).
    MulticastTtl(u8),
    /// An attribute this crate does not know.
    Other(DefaultNla),
}

impl Nla for DaemonAttribute {
    fn value_len(&self) -> usize {
        use DaemonAttribute::*;
        match self {
            State(_) | SyncId(_) | MulticastGroup(_) => 4,
            MulticastInterface(s) => s.len() + 1,
            SyncMaxLen(_) | MulticastPort(_) => 2,
            MulticastGroup6(_) => 16,
            MulticastTtl(_) => 1,
            Other(nla) => nla.value_len(),
        }
    }
    fn kind(&self) -> u16 {
        use DaemonAttribute::*;
        match self {
            State(_) => DAEMON_ATTR_STATE,
            MulticastInterface(_) => DAEMON_ATTR_MCAST_IFN,
            SyncId(_) => DAEMON_ATTR_SYNC_ID,
            SyncMaxLen(_) => DAEMON_ATTR_SYNC_MAXLEN,
            MulticastGroup(_) => DAEMON_ATTR_MCAST_GROUP,
            MulticastGroup6(_) => DAEMON_ATTR_MCAST_GROUP6,
            MulticastPort(_) => DAEMON_ATTR_MCAST_PORT,
            MulticastTtl(_) => DAEMON_ATTR_MCAST_TTL,
            Other(nla) => nla.kind(),
        }
    }
    fn emit_value(&self, b: &mut [u8]) {
        use DaemonAttribute::*;
        match self {
            State(v) | SyncId(v) => emit_u32(b, *v).expect("4 bytes"),
            MulticastInterface(s) => emit_string(b, s),
            SyncMaxLen(v) | MulticastPort(v) => emit_u16(b, *v).expect("2 bytes"),
            MulticastGroup(a) => b.copy_from_slice(a),
            MulticastGroup6(a) => b.copy_from_slice(a),
            MulticastTtl(v) => b[0] = *v,
            Other(nla) => nla.emit_value(b),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for DaemonAttribute {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        use DaemonAttribute::*;
        let v = buf.value();
        Ok(match buf.kind() {
            DAEMON_ATTR_STATE => State(u32_of(v, "IPVS_DAEMON_ATTR_STATE")?),
            DAEMON_ATTR_MCAST_IFN => {
                MulticastInterface(string_of(v, "IPVS_DAEMON_ATTR_MCAST_IFN")?)
            }
            DAEMON_ATTR_SYNC_ID => SyncId(u32_of(v, "IPVS_DAEMON_ATTR_SYNC_ID")?),
            DAEMON_ATTR_SYNC_MAXLEN => SyncMaxLen(u16_of(v, "IPVS_DAEMON_ATTR_SYNC_MAXLEN")?),
            DAEMON_ATTR_MCAST_GROUP => {
                MulticastGroup(exact::<4>(v, "IPVS_DAEMON_ATTR_MCAST_GROUP")?)
            }
            DAEMON_ATTR_MCAST_GROUP6 => {
                MulticastGroup6(exact::<16>(v, "IPVS_DAEMON_ATTR_MCAST_GROUP6")?)
            }
            DAEMON_ATTR_MCAST_PORT => MulticastPort(u16_of(v, "IPVS_DAEMON_ATTR_MCAST_PORT")?),
            DAEMON_ATTR_MCAST_TTL => MulticastTtl(u8_of(v, "IPVS_DAEMON_ATTR_MCAST_TTL")?),
            _ => Other(DefaultNla::parse(buf)?),
        })
    }
}

/// A first-level attribute of an IPVS message: `IPVS_CMD_ATTR_*`, or, in the
/// reply to `IPVS_CMD_GET_INFO` (command `IPVS_CMD_SET_INFO`), the
/// `IPVS_INFO_ATTR_*` set, whose numbers overlap and which the parser tells
/// apart by the command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandAttribute {
    /// `IPVS_CMD_ATTR_SERVICE`: nested service attributes.
    Service(Vec<ServiceAttribute>),
    /// `IPVS_CMD_ATTR_DEST`: nested destination attributes.
    Destination(Vec<DestinationAttribute>),
    /// `IPVS_CMD_ATTR_DAEMON`: nested sync-daemon attributes.
    Daemon(Vec<DaemonAttribute>),
    /// `IPVS_CMD_ATTR_TIMEOUT_TCP` (u32 seconds).
    TimeoutTcp(u32),
    /// `IPVS_CMD_ATTR_TIMEOUT_TCP_FIN` (u32 seconds).
    TimeoutTcpFin(u32),
    /// `IPVS_CMD_ATTR_TIMEOUT_UDP` (u32 seconds).
    TimeoutUdp(u32),
    /// `IPVS_INFO_ATTR_VERSION` (u32, `0x010201` for 1.2.1), only in
    /// `IPVS_CMD_SET_INFO`.
    InfoVersion(u32),
    /// `IPVS_INFO_ATTR_CONN_TAB_SIZE` (u32), only in `IPVS_CMD_SET_INFO`.
    InfoConnectionTableSize(u32),
    /// An attribute this crate does not know.
    Other(DefaultNla),
}

impl CommandAttribute {
    /// Whether the attribute is a nested set.
    pub fn is_container(&self) -> bool {
        matches!(
            self,
            CommandAttribute::Service(_)
                | CommandAttribute::Destination(_)
                | CommandAttribute::Daemon(_)
        )
    }

    pub(crate) fn parse_in(buf: &NlaBuffer<&[u8]>, info_reply: bool) -> Result<Self, DecodeError> {
        use CommandAttribute::*;
        let v = buf.value();
        if info_reply {
            return Ok(match buf.kind() {
                INFO_ATTR_VERSION => InfoVersion(u32_of(v, "IPVS_INFO_ATTR_VERSION")?),
                INFO_ATTR_CONN_TAB_SIZE => {
                    InfoConnectionTableSize(u32_of(v, "IPVS_INFO_ATTR_CONN_TAB_SIZE")?)
                }
                _ => Other(DefaultNla::parse(buf)?),
            });
        }
        Ok(match buf.kind() {
            CMD_ATTR_SERVICE => Service(parse_nested(v)?),
            CMD_ATTR_DEST => Destination(parse_nested(v)?),
            CMD_ATTR_DAEMON => Daemon(parse_nested(v)?),
            CMD_ATTR_TIMEOUT_TCP => TimeoutTcp(u32_of(v, "IPVS_CMD_ATTR_TIMEOUT_TCP")?),
            CMD_ATTR_TIMEOUT_TCP_FIN => TimeoutTcpFin(u32_of(v, "IPVS_CMD_ATTR_TIMEOUT_TCP_FIN")?),
            CMD_ATTR_TIMEOUT_UDP => TimeoutUdp(u32_of(v, "IPVS_CMD_ATTR_TIMEOUT_UDP")?),
            _ => Other(DefaultNla::parse(buf)?),
        })
    }
}

impl Nla for CommandAttribute {
    fn value_len(&self) -> usize {
        use CommandAttribute::*;
        match self {
            Service(a) => nested_len(a),
            Destination(a) => nested_len(a),
            Daemon(a) => nested_len(a),
            TimeoutTcp(_)
            | TimeoutTcpFin(_)
            | TimeoutUdp(_)
            | InfoVersion(_)
            | InfoConnectionTableSize(_) => 4,
            Other(nla) => nla.value_len(),
        }
    }
    fn kind(&self) -> u16 {
        use CommandAttribute::*;
        match self {
            Service(_) => CMD_ATTR_SERVICE,
            Destination(_) => CMD_ATTR_DEST,
            Daemon(_) => CMD_ATTR_DAEMON,
            TimeoutTcp(_) => CMD_ATTR_TIMEOUT_TCP,
            TimeoutTcpFin(_) => CMD_ATTR_TIMEOUT_TCP_FIN,
            TimeoutUdp(_) => CMD_ATTR_TIMEOUT_UDP,
            InfoVersion(_) => INFO_ATTR_VERSION,
            InfoConnectionTableSize(_) => INFO_ATTR_CONN_TAB_SIZE,
            Other(nla) => nla.kind(),
        }
    }
    fn emit_value(&self, b: &mut [u8]) {
        use CommandAttribute::*;
        match self {
            Service(a) => emit_nested(a, b),
            Destination(a) => emit_nested(a, b),
            Daemon(a) => emit_nested(a, b),
            TimeoutTcp(v)
            | TimeoutTcpFin(v)
            | TimeoutUdp(v)
            | InfoVersion(v)
            | InfoConnectionTableSize(v) => emit_u32(b, *v).expect("4 bytes"),
            Other(nla) => nla.emit_value(b),
        }
    }
}
