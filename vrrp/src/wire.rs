//! VRRP advertisements on the wire: a zero-copy [`Packet`] view and a parsed
//! [`Repr`], in the style of smoltcp's `wire` module.
//!
//! VRRPv2 (RFC 3768 §5.1), IPv4 only:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Auth Type   |   Adver Int   |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         IP Address (1..n)                     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Authentication Data (8 bytes)             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! VRRPv3 (RFC 9568 §5.1), IPv4 or IPv6; the address length follows the IP
//! version of the enclosing packet:
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |(rsvd) |     Max Adver Int     |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       IPvX Address (1..n)                     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The address count, the length and the checksum are never stored in
//! [`Repr`]: [`Repr::emit`] derives them and [`Repr::parse`] verifies them.
//!
//! Checksums ([`ChecksumContext`]):
//! - v2: the one's complement sum over the VRRP message only (RFC 3768 §5.3.8);
//! - v3 over IPv6: the VRRP message plus the IPv6 pseudo-header (RFC 8200 §8.1);
//! - v3 over IPv4: either with the IPv4 pseudo-header ([`ChecksumMode::PseudoHeader`],
//!   what keepalived, FRR and Wireshark do by default) or over the message only
//!   ([`ChecksumMode::Rfc9568`], keepalived's `v3_checksum_as_v2`, RFC 9568 §5.2.8).
//!
//! For unicast, the pseudo-header carries the real destination address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol number of VRRP (RFC 3768 §5.2.4, RFC 9568 §5.1.1.3).
pub const IP_PROTOCOL: u8 = 112;
/// IPv4 multicast group of VRRP (RFC 3768 §5.2.2, RFC 9568 §5.1.1.2).
pub const MULTICAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group of VRRP (RFC 9568 §5.1.2.2).
pub const MULTICAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The only packet type, ADVERTISEMENT (RFC 9568 §5.2.2).
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// Length of the fixed header of both versions.
pub const HEADER_LEN: usize = 8;
/// Length of the v2 authentication data (RFC 3768 §5.3.10).
pub const AUTH_DATA_LEN: usize = 8;
/// The largest v3 Max Adver Int, in centiseconds (12 bits).
pub const MAX_ADVER_INT_V3: u16 = 0x0fff;

/// Byte ranges of the fixed header.
mod field {
    pub(super) type Field = std::ops::Range<usize>;
    pub(super) const VER_TYPE: usize = 0;
    pub(super) const VRID: usize = 1;
    pub(super) const PRIORITY: usize = 2;
    pub(super) const COUNT: usize = 3;
    /// v2: Auth Type; v3: reserved nibble and the top of Max Adver Int.
    pub(super) const AUTH_TYPE: usize = 4;
    /// v2: Adver Int in seconds.
    pub(super) const ADVER_INT_V2: usize = 5;
    /// v3: 4 reserved bits then 12 bits of Max Adver Int.
    pub(super) const RSVD_ADVER_INT_V3: Field = 4..6;
    pub(super) const CHECKSUM: Field = 6..8;
    pub(super) const ADDRESSES: usize = 8;
}

/// Errors of the wire layer. Every parse failure maps to one of these; no
/// input makes the parser panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The buffer is shorter than the header, the addresses it announces and
    /// (v2) the authentication data.
    #[error("VRRP packet truncated: {len} bytes, {needed} needed")]
    Truncated {
        /// Bytes present.
        len: usize,
        /// Bytes the header requires.
        needed: usize,
    },
    /// The version nibble is neither 2 nor 3, or v2 arrived over IPv6.
    #[error("VRRP version {0} is not supported here")]
    Version(u8),
    /// The type nibble is not ADVERTISEMENT (1).
    #[error("VRRP packet type {0} is not ADVERTISEMENT")]
    Type(u8),
    /// The checksum does not verify.
    #[error("VRRP checksum {received:#06x} is wrong (expected {expected:#06x})")]
    Checksum {
        /// The checksum field of the packet.
        received: u16,
        /// What the packet should carry.
        expected: u16,
    },
    /// v2 Auth Type 2 (IP Authentication Header) was removed by RFC 3768 §5.3.6
    /// and is not implemented.
    #[error("VRRPv2 authentication type {0} (IPsec AH) is not supported")]
    UnsupportedAuthentication(u8),
    /// An address in a [`Repr`] is not of the packet's address family, or the
    /// source and destination of a [`ChecksumContext`] differ in family.
    #[error("address family mismatch in VRRP packet")]
    AddressFamily,
    /// A [`Repr`] holds more than 255 addresses.
    #[error("{0} addresses do not fit a VRRP packet (at most 255)")]
    TooManyAddresses(usize),
    /// A v3 interval above 4095 cs or a v2 interval above 255 s.
    #[error("advertisement interval {0} does not fit the field")]
    AdverInterval(u16),
    /// The output buffer is shorter than [`Repr::buffer_len`].
    #[error("output buffer of {len} bytes is shorter than the {needed} bytes needed")]
    BufferTooShort {
        /// Buffer length.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
}

/// The VRRP protocol version (RFC 3768 is 2, RFC 5798/9568 is 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// VRRPv2, RFC 3768, IPv4 only, interval in seconds, authentication field.
    V2,
    /// VRRPv3, RFC 5798 / RFC 9568, IPv4 and IPv6, interval in centiseconds.
    V3,
}

impl Version {
    /// The version nibble on the wire.
    pub const fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

/// The address family carried by a packet (taken from the IP header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// IPv4: 4-byte addresses.
    Ipv4,
    /// IPv6: 16-byte addresses (VRRPv3 only).
    Ipv6,
}

impl AddressFamily {
    /// Bytes per address.
    pub const fn address_len(self) -> usize {
        match self {
            AddressFamily::Ipv4 => 4,
            AddressFamily::Ipv6 => 16,
        }
    }

    /// The family of an address.
    pub const fn of(address: &IpAddr) -> Self {
        match address {
            IpAddr::V4(_) => AddressFamily::Ipv4,
            IpAddr::V6(_) => AddressFamily::Ipv6,
        }
    }

    /// The VRRP multicast group of this family.
    pub const fn multicast_group(self) -> IpAddr {
        match self {
            AddressFamily::Ipv4 => IpAddr::V4(MULTICAST_V4),
            AddressFamily::Ipv6 => IpAddr::V6(MULTICAST_V6),
        }
    }
}

/// How a VRRPv3 packet over IPv4 is checksummed. v2 always uses the message
/// only and v3 over IPv6 always uses the pseudo-header, whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChecksumMode {
    /// Include the IPv4 pseudo-header (RFC 5798 §5.2.8; keepalived, FRR and
    /// Wireshark by default).
    #[default]
    PseudoHeader,
    /// The VRRP message only, as RFC 9568 §5.2.8 specifies for IPv4
    /// (keepalived's `v3_checksum_as_v2`).
    Rfc9568,
}

/// What a checksum covers besides the VRRP message: the IP source and
/// destination (the real unicast destination in unicast mode) and the mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChecksumContext {
    /// IP source address of the packet.
    pub source: IpAddr,
    /// IP destination address of the packet.
    pub destination: IpAddr,
    /// The v3/IPv4 checksum form.
    pub mode: ChecksumMode,
}

impl ChecksumContext {
    /// The address family of the enclosing IP packet, or an error when the two
    /// addresses differ in family.
    pub fn family(&self) -> Result<AddressFamily, Error> {
        let family = AddressFamily::of(&self.source);
        if family != AddressFamily::of(&self.destination) {
            return Err(Error::AddressFamily);
        }
        Ok(family)
    }

    /// Whether a packet of `version` has its checksum over the pseudo-header.
    fn uses_pseudo_header(&self, version: Version) -> bool {
        match (version, self.source) {
            (Version::V2, _) => false,
            (Version::V3, IpAddr::V6(_)) => true,
            (Version::V3, IpAddr::V4(_)) => self.mode == ChecksumMode::PseudoHeader,
        }
    }

    /// The one's complement sum of the pseudo-header for `length` bytes.
    fn pseudo_header_sum(&self, length: usize) -> u32 {
        let mut sum = 0u32;
        match (self.source, self.destination) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                sum = add_bytes(sum, &s.octets());
                sum = add_bytes(sum, &d.octets());
                sum += u32::from(IP_PROTOCOL);
                sum += length as u32;
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                sum = add_bytes(sum, &s.octets());
                sum = add_bytes(sum, &d.octets());
                let length = length as u32;
                sum += length >> 16;
                sum += length & 0xffff;
                sum += u32::from(IP_PROTOCOL);
            }
            // Mixed families never reach here: callers check `family()` first.
            _ => {}
        }
        sum
    }
}

/// Adds `data` as big-endian 16-bit words to a one's complement sum.
fn add_bytes(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for pair in &mut chunks {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    // Fold now and then so that very long inputs cannot overflow.
    (sum & 0xffff) + (sum >> 16)
}

/// Folds a one's complement sum to 16 bits and complements it (RFC 1071).
fn finish(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Authentication of a VRRPv2 advertisement (RFC 3768 §5.3.6, §5.3.10).
/// VRRPv3 has no authentication; its [`Repr`] always carries `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Authentication {
    /// Auth Type 0. The 8 data bytes are sent as zero and ignored on receipt.
    None,
    /// Auth Type 1, "Simple Text Password": up to 8 bytes, zero padded.
    Password([u8; AUTH_DATA_LEN]),
    /// An auth type this crate does not know (3..=255); kept so that a
    /// parse-then-emit round trip preserves it.
    Unknown {
        /// The Auth Type byte.
        auth_type: u8,
        /// The authentication data.
        data: [u8; AUTH_DATA_LEN],
    },
}

impl Authentication {
    /// Auth Type of IP Authentication Header, rejected by this crate.
    pub const TYPE_AH: u8 = 2;

    /// A simple text password, zero padded to 8 bytes. Longer passwords are
    /// an error (keepalived silently truncates them to 8 bytes).
    pub fn password(password: &str) -> Result<Self, PasswordTooLong> {
        let bytes = password.as_bytes();
        if bytes.len() > AUTH_DATA_LEN {
            return Err(PasswordTooLong(bytes.len()));
        }
        let mut data = [0u8; AUTH_DATA_LEN];
        data[..bytes.len()].copy_from_slice(bytes);
        Ok(Authentication::Password(data))
    }

    /// The Auth Type byte.
    pub const fn auth_type(&self) -> u8 {
        match self {
            Authentication::None => 0,
            Authentication::Password(_) => 1,
            Authentication::Unknown { auth_type, .. } => *auth_type,
        }
    }

    fn data(&self) -> [u8; AUTH_DATA_LEN] {
        match self {
            Authentication::None => [0; AUTH_DATA_LEN],
            Authentication::Password(d) | Authentication::Unknown { data: d, .. } => *d,
        }
    }
}

/// A VRRPv2 password longer than the 8 bytes of the authentication field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("VRRP password of {0} bytes is longer than 8 bytes")]
pub struct PasswordTooLong(pub usize);

/// A zero-copy view of a VRRP advertisement.
///
/// [`Packet::new_checked`] checks the length against the header; after that,
/// no accessor panics. The address family comes from the enclosing IP header.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
    family: AddressFamily,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic until
    /// [`Packet::check_len`] has succeeded.
    pub const fn new_unchecked(buffer: T, family: AddressFamily) -> Self {
        Packet { buffer, family }
    }

    /// Wraps a buffer and checks that it holds the whole packet its header
    /// announces.
    pub fn new_checked(buffer: T, family: AddressFamily) -> Result<Self, Error> {
        let packet = Packet::new_unchecked(buffer, family);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer holds the fixed header, the announced addresses
    /// and, for version 2, the authentication data; also that the version
    /// nibble is 2 or 3 (needed to know the length), and v2 is not over IPv6.
    pub fn check_len(&self) -> Result<(), Error> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(Error::Truncated {
                len: data.len(),
                needed: HEADER_LEN,
            });
        }
        let version = data[field::VER_TYPE] >> 4;
        let needed = match (version, self.family) {
            (2, AddressFamily::Ipv4) => self.addresses_end() + AUTH_DATA_LEN,
            (3, _) => self.addresses_end(),
            _ => return Err(Error::Version(version)),
        };
        if data.len() < needed {
            return Err(Error::Truncated {
                len: data.len(),
                needed,
            });
        }
        Ok(())
    }

    /// Consumes the view and returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The address family given at construction.
    pub const fn family(&self) -> AddressFamily {
        self.family
    }

    /// The version nibble.
    #[inline]
    pub fn version_number(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] >> 4
    }

    /// The version, if it is 2 or 3.
    pub fn version(&self) -> Option<Version> {
        match self.version_number() {
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            _ => None,
        }
    }

    /// The type nibble.
    #[inline]
    pub fn packet_type(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] & 0x0f
    }

    /// The Virtual Router Identifier.
    #[inline]
    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[field::VRID]
    }

    /// The sender's priority.
    #[inline]
    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[field::PRIORITY]
    }

    /// The address count field.
    #[inline]
    pub fn address_count(&self) -> u8 {
        self.buffer.as_ref()[field::COUNT]
    }

    /// v2 Auth Type (for v3 this byte is the reserved nibble and the high
    /// bits of Max Adver Int).
    pub fn auth_type(&self) -> u8 {
        self.buffer.as_ref()[field::AUTH_TYPE]
    }

    /// The advertisement interval: seconds for v2, centiseconds (12 bits,
    /// reserved bits masked off) for v3.
    #[inline]
    pub fn adver_int(&self) -> u16 {
        let data = self.buffer.as_ref();
        if self.version_number() == 2 {
            u16::from(data[field::ADVER_INT_V2])
        } else {
            let r = field::RSVD_ADVER_INT_V3;
            u16::from_be_bytes([data[r.start], data[r.start + 1]]) & MAX_ADVER_INT_V3
        }
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        let data = self.buffer.as_ref();
        u16::from_be_bytes([data[field::CHECKSUM.start], data[field::CHECKSUM.start + 1]])
    }

    #[inline]
    fn addresses_end(&self) -> usize {
        let count = usize::from(self.buffer.as_ref()[field::COUNT]);
        field::ADDRESSES + count * self.family.address_len()
    }

    /// The raw bytes of address `index` (`index < address_count()`).
    pub fn address_bytes(&self, index: usize) -> &[u8] {
        let len = self.family.address_len();
        let start = field::ADDRESSES + index * len;
        &self.buffer.as_ref()[start..start + len]
    }

    /// The raw bytes of every address, in packet order
    /// (`address_count()` times 4 or 16 bytes).
    pub fn address_block(&self) -> &[u8] {
        &self.buffer.as_ref()[field::ADDRESSES..self.addresses_end()]
    }

    /// Address `index` (`index < address_count()`).
    pub fn address(&self, index: usize) -> IpAddr {
        let bytes = self.address_bytes(index);
        match self.family {
            AddressFamily::Ipv4 => {
                IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
            }
            AddressFamily::Ipv6 => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(bytes);
                IpAddr::V6(Ipv6Addr::from(octets))
            }
        }
    }

    /// All addresses, in packet order.
    pub fn addresses(&self) -> impl ExactSizeIterator<Item = IpAddr> + '_ {
        (0..usize::from(self.address_count())).map(move |i| self.address(i))
    }

    /// The v2 authentication data (v2 only).
    pub fn auth_data(&self) -> [u8; AUTH_DATA_LEN] {
        let start = self.addresses_end();
        let mut data = [0u8; AUTH_DATA_LEN];
        data.copy_from_slice(&self.buffer.as_ref()[start..start + AUTH_DATA_LEN]);
        data
    }

    /// The length of the VRRP message (what the checksum covers).
    pub fn message_len(&self) -> usize {
        match self.version_number() {
            2 => self.addresses_end() + AUTH_DATA_LEN,
            _ => self.addresses_end(),
        }
    }

    /// The checksum this packet should carry under `ctx`.
    pub fn compute_checksum(&self, ctx: &ChecksumContext) -> Result<u16, Error> {
        ctx.family()?;
        let version = self
            .version()
            .ok_or(Error::Version(self.version_number()))?;
        Ok(self.checksum_for(version, ctx))
    }

    /// The checksum for a `version` already read from this packet and a
    /// `ctx` whose family is already checked (the work
    /// [`compute_checksum`](Self::compute_checksum) and
    /// [`validate`](Self::validate) share).
    fn checksum_for(&self, version: Version, ctx: &ChecksumContext) -> u16 {
        let len = self.message_len();
        let data = &self.buffer.as_ref()[..len];
        let mut sum = if ctx.uses_pseudo_header(version) {
            ctx.pseudo_header_sum(len)
        } else {
            0
        };
        sum = add_bytes(sum, &data[..field::CHECKSUM.start]);
        sum = add_bytes(sum, &data[field::CHECKSUM.end..]);
        finish(sum)
    }

    /// Checks the version, the type and the checksum: everything about a
    /// packet that does not depend on configuration. The fast path of the
    /// receive validation; [`Repr::parse`] calls it too.
    pub fn validate(&self, ctx: &ChecksumContext) -> Result<Version, Error> {
        let family = ctx.family()?;
        if family != self.family {
            return Err(Error::AddressFamily);
        }
        let version = self
            .version()
            .ok_or(Error::Version(self.version_number()))?;
        if version == Version::V2 && family == AddressFamily::Ipv6 {
            return Err(Error::Version(2));
        }
        if self.packet_type() != TYPE_ADVERTISEMENT {
            return Err(Error::Type(self.packet_type()));
        }
        let expected = self.checksum_for(version, ctx);
        if expected != self.checksum() {
            return Err(Error::Checksum {
                received: self.checksum(),
                expected,
            });
        }
        Ok(version)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the checksum field for `ctx`.
    pub fn fill_checksum(&mut self, ctx: &ChecksumContext) -> Result<(), Error> {
        let checksum = self.compute_checksum(ctx)?;
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&checksum.to_be_bytes());
        Ok(())
    }
}

/// The parsed meaning of an advertisement (RFC 3768 §5, RFC 9568 §5.2).
///
/// The address count, length and checksum are derived on emit and verified
/// on parse; they are not fields here.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Protocol version.
    pub version: Version,
    /// Virtual Router Identifier (1..=255).
    pub vrid: u8,
    /// Sender priority: 0 = stop, 255 = address owner.
    pub priority: u8,
    /// Advertisement interval: seconds (v2, 8 bits) or centiseconds (v3,
    /// 12 bits, Max Adver Int).
    pub adver_int: u16,
    /// v2 authentication; always [`Authentication::None`] for v3.
    pub authentication: Authentication,
    /// The virtual addresses, all of the packet's family.
    pub addresses: Vec<IpAddr>,
}

impl Repr {
    /// Parses and verifies a packet: length, version, type, checksum and
    /// v2 authentication type. Semantic checks (VRID, priority, TTL, ...) are
    /// the engine's job (see `Instance::handle_packet`).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>, ctx: &ChecksumContext) -> Result<Repr, Error> {
        packet.check_len()?;
        let version = packet.validate(ctx)?;
        let authentication = match version {
            Version::V3 => Authentication::None,
            Version::V2 => match packet.auth_type() {
                0 => Authentication::None,
                1 => Authentication::Password(packet.auth_data()),
                Authentication::TYPE_AH => {
                    return Err(Error::UnsupportedAuthentication(Authentication::TYPE_AH));
                }
                auth_type => Authentication::Unknown {
                    auth_type,
                    data: packet.auth_data(),
                },
            },
        };
        Ok(Repr {
            version,
            vrid: packet.vrid(),
            priority: packet.priority(),
            adver_int: packet.adver_int(),
            authentication,
            addresses: packet.addresses().collect(),
        })
    }

    /// The length of the emitted packet.
    pub fn buffer_len(&self) -> usize {
        let family = match self.addresses.first() {
            Some(IpAddr::V6(_)) => AddressFamily::Ipv6,
            _ => AddressFamily::Ipv4,
        };
        let auth = match self.version {
            Version::V2 => AUTH_DATA_LEN,
            Version::V3 => 0,
        };
        HEADER_LEN + self.addresses.len() * family.address_len() + auth
    }

    /// Emits the packet into the start of `buffer`, checksum included, and
    /// returns its length. Every byte of `buffer[..len]` is written.
    pub fn emit(&self, buffer: &mut [u8], ctx: &ChecksumContext) -> Result<usize, Error> {
        let family = ctx.family()?;
        if self
            .addresses
            .iter()
            .any(|a| AddressFamily::of(a) != family)
        {
            return Err(Error::AddressFamily);
        }
        if self.version == Version::V2 && family == AddressFamily::Ipv6 {
            return Err(Error::Version(2));
        }
        let count = u8::try_from(self.addresses.len())
            .map_err(|_| Error::TooManyAddresses(self.addresses.len()))?;
        let len = self.buffer_len();
        if buffer.len() < len {
            return Err(Error::BufferTooShort {
                len: buffer.len(),
                needed: len,
            });
        }
        let out = &mut buffer[..len];
        out[field::VER_TYPE] = (self.version.number() << 4) | TYPE_ADVERTISEMENT;
        out[field::VRID] = self.vrid;
        out[field::PRIORITY] = self.priority;
        out[field::COUNT] = count;
        match self.version {
            Version::V2 => {
                let adver_int = u8::try_from(self.adver_int)
                    .map_err(|_| Error::AdverInterval(self.adver_int))?;
                out[field::AUTH_TYPE] = self.authentication.auth_type();
                out[field::ADVER_INT_V2] = adver_int;
            }
            Version::V3 => {
                if self.adver_int > MAX_ADVER_INT_V3 {
                    return Err(Error::AdverInterval(self.adver_int));
                }
                out[field::RSVD_ADVER_INT_V3].copy_from_slice(&self.adver_int.to_be_bytes());
            }
        }
        out[field::CHECKSUM].copy_from_slice(&[0, 0]);
        let mut at = field::ADDRESSES;
        for address in &self.addresses {
            match address {
                IpAddr::V4(a) => out[at..at + 4].copy_from_slice(&a.octets()),
                IpAddr::V6(a) => out[at..at + 16].copy_from_slice(&a.octets()),
            }
            at += family.address_len();
        }
        if self.version == Version::V2 {
            out[at..at + AUTH_DATA_LEN].copy_from_slice(&self.authentication.data());
        }
        let mut packet = Packet::new_unchecked(out, family);
        packet.fill_checksum(ctx)?;
        Ok(len)
    }

    /// Emits into a fresh vector.
    pub fn to_vec(&self, ctx: &ChecksumContext) -> Result<Vec<u8>, Error> {
        let mut buffer = vec![0u8; self.buffer_len()];
        let len = self.emit(&mut buffer, ctx)?;
        buffer.truncate(len);
        Ok(buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(source: &str, destination: &str, mode: ChecksumMode) -> ChecksumContext {
        ChecksumContext {
            source: source.parse().unwrap(),
            destination: destination.parse().unwrap(),
            mode,
        }
    }

    #[test]
    fn truncated_and_bad_version_are_errors() {
        assert_eq!(
            Packet::new_checked(&[0x31u8, 1, 100][..], AddressFamily::Ipv4).unwrap_err(),
            Error::Truncated { len: 3, needed: 8 }
        );
        let bytes = [0x31u8, 1, 100, 2, 0, 100, 0, 0, 10, 0, 0, 1];
        assert_eq!(
            Packet::new_checked(&bytes[..], AddressFamily::Ipv4).unwrap_err(),
            Error::Truncated {
                len: 12,
                needed: 16
            }
        );
        let bytes = [0x41u8, 1, 100, 0, 0, 100, 0, 0];
        assert_eq!(
            Packet::new_checked(&bytes[..], AddressFamily::Ipv4).unwrap_err(),
            Error::Version(4)
        );
        let bytes = [0x21u8, 1, 100, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            Packet::new_checked(&bytes[..], AddressFamily::Ipv6).unwrap_err(),
            Error::Version(2)
        );
    }

    #[test]
    fn ah_is_rejected_with_a_clear_error() {
        let repr = Repr {
            version: Version::V2,
            vrid: 1,
            priority: 100,
            adver_int: 1,
            authentication: Authentication::Unknown {
                auth_type: Authentication::TYPE_AH,
                data: [0; 8],
            },
            addresses: vec!["10.0.0.1".parse().unwrap()],
        };
        let c = ctx("10.0.0.2", "224.0.0.18", ChecksumMode::PseudoHeader);
        let bytes = repr.to_vec(&c).unwrap();
        let packet = Packet::new_checked(&bytes[..], AddressFamily::Ipv4).unwrap();
        assert_eq!(
            Repr::parse(&packet, &c).unwrap_err(),
            Error::UnsupportedAuthentication(2)
        );
    }

    #[test]
    fn unknown_auth_type_round_trips() {
        let repr = Repr {
            version: Version::V2,
            vrid: 7,
            priority: 1,
            adver_int: 255,
            authentication: Authentication::Unknown {
                auth_type: 9,
                data: *b"abcdefgh",
            },
            addresses: vec!["10.0.0.1".parse().unwrap()],
        };
        let c = ctx("10.0.0.2", "224.0.0.18", ChecksumMode::PseudoHeader);
        let bytes = repr.to_vec(&c).unwrap();
        let packet = Packet::new_checked(&bytes[..], AddressFamily::Ipv4).unwrap();
        assert_eq!(Repr::parse(&packet, &c).unwrap(), repr);
    }

    #[test]
    fn emit_rejects_mixed_families_and_short_buffers() {
        let mut repr = Repr {
            version: Version::V3,
            vrid: 7,
            priority: 1,
            adver_int: 100,
            authentication: Authentication::None,
            addresses: vec!["10.0.0.1".parse().unwrap(), "fe80::1".parse().unwrap()],
        };
        let c = ctx("10.0.0.2", "224.0.0.18", ChecksumMode::PseudoHeader);
        assert_eq!(repr.to_vec(&c).unwrap_err(), Error::AddressFamily);
        repr.addresses.pop();
        let mut short = [0u8; 11];
        assert_eq!(
            repr.emit(&mut short, &c).unwrap_err(),
            Error::BufferTooShort {
                len: 11,
                needed: 12
            }
        );
        repr.adver_int = 4096;
        assert_eq!(repr.to_vec(&c).unwrap_err(), Error::AdverInterval(4096));
    }

    #[test]
    fn password_is_padded_and_bounded() {
        assert_eq!(
            Authentication::password("pass").unwrap(),
            Authentication::Password(*b"pass\0\0\0\0")
        );
        assert_eq!(
            Authentication::password("123456789").unwrap_err(),
            PasswordTooLong(9)
        );
    }
}
