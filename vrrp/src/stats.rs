//! Receive drop reasons and the RFC 6527 (VRRPv3 MIB) / RFC 2787 (VRRPv2
//! MIB) statistics.

use std::net::IpAddr;

use crate::wire;

/// Why a received packet was dropped. Each variant is one receive check of
/// RFC 3768 §7.1 or RFC 9568 §7.1 (with errata 8299–8301), or a local rule,
/// and has a counter in [`Statistics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RxDrop {
    /// "MUST verify that the IPv4 TTL or IPv6 Hop Limit is 255" (multicast),
    /// or outside the unicast peer's `min_ttl..=max_ttl`.
    #[error("TTL/hop limit {0} is not accepted")]
    Ttl(u8),
    /// "MUST verify that the VRRP version is 3" (2 for v2 instances).
    #[error("VRRP version {0} does not match the instance")]
    Version(u8),
    /// "MUST verify that the received packet contains the complete VRRP
    /// packet".
    #[error("truncated VRRP packet: {len} bytes, {needed} needed")]
    Length {
        /// Bytes received.
        len: usize,
        /// Bytes the header requires.
        needed: usize,
    },
    /// "MUST verify the VRRP checksum".
    #[error("bad VRRP checksum {received:#06x}, expected {expected:#06x}")]
    Checksum {
        /// Received field.
        received: u16,
        /// Computed value.
        expected: u16,
    },
    /// Packet type other than ADVERTISEMENT (RFC 9568 §5.2.2: MUST be
    /// discarded).
    #[error("VRRP packet type {0} is not ADVERTISEMENT")]
    Type(u8),
    /// "MUST verify that the VRID is configured on the receiving interface".
    #[error("VRID {0} is not this instance's")]
    Vrid(u8),
    /// Erratum 8299: "MUST verify that IPvX Addr Count is non zero".
    #[error("address count is zero")]
    AddressCountZero,
    /// Erratum 8301: "MUST verify that the Max Advertise Interval is non zero".
    #[error("advertisement interval is zero")]
    AdverIntZero,
    /// Erratum 8300: for IPv6 "MUST verify that the first address ... is an
    /// IPv6 link-local address". Switchable: [`Validation`](crate::Validation).
    #[error("first IPv6 address is not link-local")]
    FirstAddressNotLinkLocal,
    /// The address list differs from ours and the sender is not the owner
    /// ("MAY verify ...; if ... not the address owner ... MUST drop").
    #[error("advertised addresses differ from the configured ones")]
    AddressList,
    /// v2: "MUST verify that the Adver Interval in the packet is the same as
    /// the locally configured".
    #[error("advertisement interval {received} differs from the configured {configured}")]
    AdverInterval {
        /// Received, seconds.
        received: u16,
        /// Configured, seconds.
        configured: u16,
    },
    /// v2: "MUST verify that the Auth Type matches the locally configured
    /// authentication method".
    #[error("authentication type {received} differs from the configured {configured}")]
    AuthTypeMismatch {
        /// Received Auth Type.
        received: u8,
        /// Configured Auth Type.
        configured: u8,
    },
    /// v2 Auth Type 2 (IPsec AH) or an unknown type: not supported.
    #[error("authentication type {0} is not supported")]
    InvalidAuthType(u8),
    /// v2 password mismatch ("perform that authentication method").
    #[error("authentication failure")]
    AuthFailure,
    /// Unicast mode: the source is not a configured peer.
    #[error("source {0} is not a configured unicast peer")]
    UnicastSource(IpAddr),
    /// The IP family of the packet differs from the instance's.
    #[error("address family differs from the instance's")]
    Family,
    /// [`RxMeta::ifindex`](crate::RxMeta) differs from the configured one.
    #[error("received on interface {0}, not the instance's")]
    Interface(u32),
    /// Our own advert came back (source is our primary address).
    #[error("own advertisement looped back")]
    OwnAdvert,
    /// The instance is in Initialize or FAULT and processes no adverts.
    #[error("instance is not running (Initialize or FAULT)")]
    NotRunning,
}

impl RxDrop {
    /// The counter this drop increments.
    pub const fn kind(&self) -> DropKind {
        match self {
            RxDrop::Ttl(_) => DropKind::Ttl,
            RxDrop::Version(_) => DropKind::Version,
            RxDrop::Length { .. } => DropKind::Length,
            RxDrop::Checksum { .. } => DropKind::Checksum,
            RxDrop::Type(_) => DropKind::Type,
            RxDrop::Vrid(_) => DropKind::Vrid,
            RxDrop::AddressCountZero => DropKind::AddressCountZero,
            RxDrop::AdverIntZero => DropKind::AdverIntZero,
            RxDrop::FirstAddressNotLinkLocal => DropKind::FirstAddressNotLinkLocal,
            RxDrop::AddressList => DropKind::AddressList,
            RxDrop::AdverInterval { .. } => DropKind::AdverInterval,
            RxDrop::AuthTypeMismatch { .. } => DropKind::AuthTypeMismatch,
            RxDrop::InvalidAuthType(_) => DropKind::InvalidAuthType,
            RxDrop::AuthFailure => DropKind::AuthFailure,
            RxDrop::UnicastSource(_) => DropKind::UnicastSource,
            RxDrop::Family => DropKind::Family,
            RxDrop::Interface(_) => DropKind::Interface,
            RxDrop::OwnAdvert => DropKind::OwnAdvert,
            RxDrop::NotRunning => DropKind::NotRunning,
        }
    }
}

impl From<wire::Error> for RxDrop {
    fn from(error: wire::Error) -> Self {
        match error {
            wire::Error::Truncated { len, needed } => RxDrop::Length { len, needed },
            wire::Error::Version(v) => RxDrop::Version(v),
            wire::Error::Type(t) => RxDrop::Type(t),
            wire::Error::Checksum { received, expected } => RxDrop::Checksum { received, expected },
            wire::Error::UnsupportedAuthentication(t) => RxDrop::InvalidAuthType(t),
            wire::Error::AddressFamily => RxDrop::Family,
            // Emit-side errors never come out of a receive path; count them
            // as malformed.
            wire::Error::TooManyAddresses(_)
            | wire::Error::AdverInterval(_)
            | wire::Error::BufferTooShort { .. } => RxDrop::Length { len: 0, needed: 0 },
        }
    }
}

/// One counter per [`RxDrop`] variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)] // Each mirrors the RxDrop variant of the same name.
pub enum DropKind {
    Ttl,
    Version,
    Length,
    Checksum,
    Type,
    Vrid,
    AddressCountZero,
    AdverIntZero,
    FirstAddressNotLinkLocal,
    AddressList,
    AdverInterval,
    AuthTypeMismatch,
    InvalidAuthType,
    AuthFailure,
    UnicastSource,
    Family,
    Interface,
    OwnAdvert,
    NotRunning,
}

impl DropKind {
    /// Every kind, in counter order.
    pub const ALL: [DropKind; 19] = [
        DropKind::Ttl,
        DropKind::Version,
        DropKind::Length,
        DropKind::Checksum,
        DropKind::Type,
        DropKind::Vrid,
        DropKind::AddressCountZero,
        DropKind::AdverIntZero,
        DropKind::FirstAddressNotLinkLocal,
        DropKind::AddressList,
        DropKind::AdverInterval,
        DropKind::AuthTypeMismatch,
        DropKind::InvalidAuthType,
        DropKind::AuthFailure,
        DropKind::UnicastSource,
        DropKind::Family,
        DropKind::Interface,
        DropKind::OwnAdvert,
        DropKind::NotRunning,
    ];
}

/// RFC 6527 `vrrpv3NewMasterReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NewMasterReason {
    /// `notMaster(0)`: never became master.
    #[default]
    NotMaster,
    /// `priority(1)`: became master because it is the owner (or as
    /// configured, or by its sync group).
    Priority,
    /// `preempted(2)`: preempted a lower-priority master.
    Preempted,
    /// `masterNoResponse(3)`: the master went silent or sent priority 0.
    MasterNoResponse,
}

/// Counters of one instance: RFC 6527 `vrrpv3StatisticsEntry`, the v2 auth
/// counters of RFC 2787, and one counter per drop reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Statistics {
    /// `vrrpv3StatisticsMasterTransitions`.
    pub master_transitions: u64,
    /// `vrrpv3StatisticsNewMasterReason`.
    pub new_master_reason: NewMasterReason,
    /// `vrrpv3StatisticsRcvdAdvertisements`: valid adverts processed.
    pub adverts_received: u64,
    /// Adverts this instance sent (all destinations).
    pub adverts_sent: u64,
    /// `vrrpv3StatisticsRcvdPriZeroPackets`.
    pub priority_zero_received: u64,
    /// `vrrpv3StatisticsSentPriZeroPackets`.
    pub priority_zero_sent: u64,
    /// Adverts from another address owner while we are the owner (RFC 9568
    /// erratum 8298: processed, not dropped; a misconfiguration).
    pub owner_conflicts: u64,
    /// Drops, indexed by [`DropKind`] in [`DropKind::ALL`] order.
    drops: [u64; DropKind::ALL.len()],
}

impl Statistics {
    /// Packets dropped for `kind`.
    pub fn dropped(&self, kind: DropKind) -> u64 {
        self.drops[kind as usize]
    }

    /// All drops.
    pub fn dropped_total(&self) -> u64 {
        self.drops.iter().sum()
    }

    pub(crate) fn count_drop(&mut self, drop: &RxDrop) {
        self.drops[drop.kind() as usize] += 1;
    }

    /// `vrrpv3StatisticsIpTtlErrors`.
    pub fn ip_ttl_errors(&self) -> u64 {
        self.dropped(DropKind::Ttl)
    }

    /// `vrrpv3StatisticsAdvIntervalErrors`.
    pub fn adv_interval_errors(&self) -> u64 {
        self.dropped(DropKind::AdverInterval) + self.dropped(DropKind::AdverIntZero)
    }

    /// `vrrpv3StatisticsRcvdInvalidTypePackets`.
    pub fn invalid_type_packets(&self) -> u64 {
        self.dropped(DropKind::Type)
    }

    /// `vrrpv3StatisticsAddressListErrors`.
    pub fn address_list_errors(&self) -> u64 {
        self.dropped(DropKind::AddressList)
            + self.dropped(DropKind::AddressCountZero)
            + self.dropped(DropKind::FirstAddressNotLinkLocal)
    }

    /// `vrrpv3StatisticsPacketLengthErrors`.
    pub fn packet_length_errors(&self) -> u64 {
        self.dropped(DropKind::Length)
    }

    /// `vrrpv3RouterChecksumErrors` (per instance here).
    pub fn checksum_errors(&self) -> u64 {
        self.dropped(DropKind::Checksum)
    }

    /// `vrrpv3RouterVersionErrors` (per instance here).
    pub fn version_errors(&self) -> u64 {
        self.dropped(DropKind::Version)
    }

    /// `vrrpv3RouterVrIdErrors` (per instance here).
    pub fn vrid_errors(&self) -> u64 {
        self.dropped(DropKind::Vrid)
    }

    /// RFC 2787 `vrrpStatsAuthFailures`.
    pub fn auth_failures(&self) -> u64 {
        self.dropped(DropKind::AuthFailure)
    }

    /// RFC 2787 `vrrpStatsInvalidAuthType`.
    pub fn invalid_auth_type(&self) -> u64 {
        self.dropped(DropKind::InvalidAuthType)
    }

    /// RFC 2787 `vrrpStatsAuthTypeMismatch`.
    pub fn auth_type_mismatch(&self) -> u64 {
        self.dropped(DropKind::AuthTypeMismatch)
    }

    /// The counts since `earlier` (a copy of these statistics taken
    /// before): what a "clear" shows without stopping the counters. A count
    /// below its `earlier` value (counters restarted) is taken whole; the
    /// new-master reason is the current one.
    pub fn since(&self, earlier: &Statistics) -> Statistics {
        let delta = |now: u64, then: u64| now.checked_sub(then).unwrap_or(now);
        let mut drops = self.drops;
        for (count, then) in drops.iter_mut().zip(earlier.drops) {
            *count = delta(*count, then);
        }
        Statistics {
            master_transitions: delta(self.master_transitions, earlier.master_transitions),
            new_master_reason: self.new_master_reason,
            adverts_received: delta(self.adverts_received, earlier.adverts_received),
            adverts_sent: delta(self.adverts_sent, earlier.adverts_sent),
            priority_zero_received: delta(
                self.priority_zero_received,
                earlier.priority_zero_received,
            ),
            priority_zero_sent: delta(self.priority_zero_sent, earlier.priority_zero_sent),
            owner_conflicts: delta(self.owner_conflicts, earlier.owner_conflicts),
            drops,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_counts_from_a_copy_and_takes_restarted_counters_whole() {
        let mut earlier = Statistics {
            adverts_sent: 40,
            adverts_received: 7,
            master_transitions: 2,
            ..Statistics::default()
        };
        earlier.drops[DropKind::Ttl as usize] = 3;
        let mut now = earlier.clone();
        now.adverts_sent = 45;
        now.drops[DropKind::Ttl as usize] = 4;
        now.drops[DropKind::AuthFailure as usize] = 1;
        now.new_master_reason = NewMasterReason::Preempted;
        let cleared = now.since(&earlier);
        assert_eq!(cleared.adverts_sent, 5);
        assert_eq!(cleared.adverts_received, 0);
        assert_eq!(cleared.master_transitions, 0);
        assert_eq!(cleared.dropped(DropKind::Ttl), 1);
        assert_eq!(cleared.dropped(DropKind::AuthFailure), 1);
        assert_eq!(cleared.dropped_total(), 2);
        assert_eq!(cleared.new_master_reason, NewMasterReason::Preempted);
        // A driver restarted (counters from zero): its counts are whole.
        let restarted = Statistics {
            adverts_sent: 3,
            ..Statistics::default()
        };
        assert_eq!(restarted.since(&earlier).adverts_sent, 3);
    }
}
