//! Configuration of one virtual router instance (RFC 9568 §6.1 parameters,
//! plus keepalived's knobs that change behaviour on the wire).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::wire::{AddressFamily, Authentication, ChecksumMode, Version};

/// Priority of the address owner (RFC 9568 §6.1).
pub const PRIORITY_OWNER: u8 = 255;
/// Priority a master sends when it stops (RFC 9568 §6.1).
pub const PRIORITY_STOP: u8 = 0;
/// The largest weight of a tracked object (keepalived's ±253).
pub const MAX_TRACK_WEIGHT: i16 = 253;

/// The state the instance starts in (keepalived's `state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum InitialState {
    /// Start as Backup and wait a full Master_Down_Interval.
    #[default]
    Backup,
    /// keepalived's `state MASTER`: an owner (priority 255) becomes master at
    /// once; any other router starts as Backup but waits only one
    /// advertisement interval plus the skew time before taking over.
    Master,
}

/// A virtual address with what the driver needs to install it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct VirtualAddress {
    /// The address; this goes on the wire.
    pub address: IpAddr,
    /// Prefix length for the interface address (32/128 by default).
    pub prefix_len: u8,
    /// Optional IPv4 label, e.g. `eth0:vip`.
    pub label: Option<String>,
    /// Address scope.
    pub scope: Scope,
}

impl VirtualAddress {
    /// A host address (/32 or /128) of global scope, no label.
    pub fn new(address: IpAddr) -> Self {
        let prefix_len = match address {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        VirtualAddress {
            address,
            prefix_len,
            label: None,
            scope: if is_link_local(&address) {
                Scope::Link
            } else {
                Scope::Global
            },
        }
    }

    /// The same address with another prefix length.
    pub fn with_prefix_len(mut self, prefix_len: u8) -> Self {
        self.prefix_len = prefix_len;
        self
    }
}

/// Address scope (the `ip addr ... scope` values of rtnetlink).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Scope {
    /// `global` (0).
    #[default]
    Global,
    /// `site` (200).
    Site,
    /// `link` (253).
    Link,
    /// `host` (254).
    Host,
    /// Any other value.
    Other(u8),
}

/// A unicast peer (keepalived's `unicast_peer { IP min_ttl N max_ttl M }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct UnicastPeer {
    /// The peer's source address; adverts from others are dropped.
    pub address: IpAddr,
    /// Lowest accepted TTL / hop limit.
    pub min_ttl: u8,
    /// Highest accepted TTL / hop limit.
    pub max_ttl: u8,
}

impl UnicastPeer {
    /// A peer on the same link: TTL must be 255 as RFC 9568 §7.1 requires.
    /// keepalived checks no TTL for unicast unless `min_ttl`/`max_ttl` are
    /// set; use [`UnicastPeer::with_ttl`] for routed peers.
    pub fn new(address: IpAddr) -> Self {
        UnicastPeer {
            address,
            min_ttl: 255,
            max_ttl: 255,
        }
    }

    /// A peer whose adverts may arrive with a TTL in `min..=max`.
    pub fn with_ttl(mut self, min: u8, max: u8) -> Self {
        self.min_ttl = min;
        self.max_ttl = max;
        self
    }
}

/// The gratuitous ARP / unsolicited NA schedule (keepalived's `garp_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct GarpConfig {
    /// Delay of the second burst after becoming master (`garp_master_delay`,
    /// default 5 s; zero disables the second burst).
    pub master_delay: Duration,
    /// Messages per address per burst after becoming master
    /// (`garp_master_repeat`, default 5).
    pub master_repeat: u32,
    /// Delay of the burst sent after a lower-priority advert was heard while
    /// master (`garp_lower_prio_delay`, default `master_delay`; zero disables).
    pub lower_prio_delay: Duration,
    /// Messages per address in that burst (`garp_lower_prio_repeat`).
    pub lower_prio_repeat: u32,
    /// Period of refresh bursts while master (`garp_master_refresh`; zero
    /// means none, the default).
    pub refresh: Duration,
    /// Messages per address per refresh (`garp_master_refresh_repeat`, 1).
    pub refresh_repeat: u32,
    /// Spacing of the messages of a burst (`garp_interval`, default 0: all at
    /// once).
    pub interval: Duration,
}

impl Default for GarpConfig {
    fn default() -> Self {
        GarpConfig {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            lower_prio_delay: Duration::from_secs(5),
            lower_prio_repeat: 5,
            refresh: Duration::ZERO,
            refresh_repeat: 1,
            interval: Duration::ZERO,
        }
    }
}

/// What a tracked object is; the engine only uses it in notifications and
/// logs, the driver uses it to know what to watch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TrackKind {
    /// An interface's link state (`track_interface`).
    Interface(String),
    /// A check script's exit status (`track_script`).
    Script(String),
    /// Anything else the embedding program reports (files, processes, BFD).
    Other(String),
}

/// A tracked object (keepalived's `track_interface`, `track_script`).
///
/// The object is *effectively up* when its (rise/fall debounced) status is up,
/// inverted when `reverse` is set. Then:
/// - weight 0: effectively down puts the instance in FAULT;
/// - weight > 0: effectively up adds the weight to the priority;
/// - weight < 0: effectively down adds the (negative) weight.
///
/// The effective priority is clamped to 1..=254; an owner (255) is never
/// changed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Track {
    /// What is tracked.
    pub kind: TrackKind,
    /// −253..=253.
    pub weight: i16,
    /// Invert the status (keepalived's `weight N reverse`).
    pub reverse: bool,
    /// Consecutive up results needed to go up (≥ 1).
    pub rise: u32,
    /// Consecutive down results needed to go down (≥ 1).
    pub fall: u32,
    /// Status before the first report (keepalived's `init_fail` is `false`).
    pub initially_up: bool,
}

impl Track {
    /// A tracked object with weight 0 (down ⇒ FAULT), rise = fall = 1,
    /// initially up.
    pub fn new(kind: TrackKind) -> Self {
        Track {
            kind,
            weight: 0,
            reverse: false,
            rise: 1,
            fall: 1,
            initially_up: true,
        }
    }

    /// Sets the weight.
    pub fn with_weight(mut self, weight: i16) -> Self {
        self.weight = weight;
        self
    }
}

/// Receive checks where keepalived is more lenient than the RFCs. Both are on
/// by default; turn one off only to interoperate with a peer that needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Validation {
    /// RFC 9568 §7.1: the receiver MAY compare the advertised address list
    /// with its own; if it does and they differ, it MUST drop unless the
    /// sender is the owner. keepalived only logs a mismatch unless
    /// `strict_mode` is set.
    pub verify_addresses: bool,
    /// RFC 9568 erratum 8300: for IPv6 the first address MUST be link-local.
    /// keepalived accepts any first address.
    pub require_link_local_first: bool,
}

impl Default for Validation {
    fn default() -> Self {
        Validation {
            verify_addresses: true,
            require_link_local_first: true,
        }
    }
}

/// Configuration of one VRRP instance.
///
/// Build one with [`Config::new`] and set the public fields; the
/// [`Instance`](crate::Instance) constructor validates it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Instance name, passed to notify scripts.
    pub name: Arc<str>,
    /// Virtual Router Identifier, 1..=255.
    pub vrid: u8,
    /// VRRP version. v2 is IPv4 only.
    pub version: Version,
    /// Priority 1..=255; 255 makes this router the address owner.
    pub priority: u8,
    /// Advertisement_Interval: whole seconds 1..=255 for v2, whole
    /// centiseconds 10 ms..=40.95 s for v3. Default 1 s.
    pub advert_interval: Duration,
    /// The virtual addresses (1..=255 of the instance's family). For IPv6 the
    /// first SHOULD be link-local (RFC 9568 §5.2.9).
    pub virtual_addresses: Vec<VirtualAddress>,
    /// This router's primary address on the interface: the IP source of its
    /// adverts and the tie-breaker (for IPv6 the link-local address).
    pub primary_address: IpAddr,
    /// v2 authentication: None or a password. Ignored by v3.
    pub authentication: Authentication,
    /// Unicast peers; empty means multicast to 224.0.0.18 / ff02::12.
    pub unicast_peers: Vec<UnicastPeer>,
    /// Preempt_Mode (RFC 9568 §6.1); `false` is keepalived's `nopreempt`.
    pub preempt: bool,
    /// keepalived's `preempt_delay`: after startup, or after first hearing a
    /// lower-priority master, wait this long before preempting it.
    pub preempt_delay: Duration,
    /// Accept_Mode (RFC 9568 §6.1): whether a non-owner master accepts
    /// packets addressed to the virtual addresses. The engine does not act on
    /// it; the driver installs or omits its filter accordingly.
    pub accept: bool,
    /// Checksum form for v3 over IPv4.
    pub checksum: ChecksumMode,
    /// Startup state.
    pub initial_state: InitialState,
    /// Gratuitous ARP / unsolicited NA schedule.
    pub garp: GarpConfig,
    /// When master and a lower-priority advert arrives, send an advert at
    /// once (RFC 9568 §6.4.3; keepalived unless `lower_prio_no_advert`).
    pub readvertise_on_lower_priority: bool,
    /// Tracked objects, addressed by [`TrackId`](crate::TrackId) = index.
    pub tracks: Vec<Track>,
    /// Lenient receive checks.
    pub validation: Validation,
    /// If set, packets whose [`RxMeta::ifindex`](crate::RxMeta) differs are
    /// dropped.
    pub ifindex: Option<u32>,
}

impl Config {
    /// A VRRPv3 instance with RFC defaults: priority 100, 1 s interval,
    /// preempt on, accept off, multicast, pseudo-header checksum, start as
    /// Backup, keepalived's GARP defaults.
    pub fn new(vrid: u8, primary_address: IpAddr, virtual_addresses: Vec<VirtualAddress>) -> Self {
        Config {
            name: Arc::from(format!("VR_{vrid}")),
            vrid,
            version: Version::V3,
            priority: 100,
            advert_interval: Duration::from_secs(1),
            virtual_addresses,
            primary_address,
            authentication: Authentication::None,
            unicast_peers: Vec::new(),
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept: false,
            checksum: ChecksumMode::PseudoHeader,
            initial_state: InitialState::Backup,
            garp: GarpConfig::default(),
            readvertise_on_lower_priority: true,
            tracks: Vec::new(),
            validation: Validation::default(),
            ifindex: None,
        }
    }

    /// The address family (that of the primary address).
    pub fn family(&self) -> AddressFamily {
        AddressFamily::of(&self.primary_address)
    }

    /// Whether this router owns the addresses (priority 255).
    pub fn is_owner(&self) -> bool {
        self.priority == PRIORITY_OWNER
    }

    /// The advertisement interval in wire units: seconds for v2,
    /// centiseconds for v3.
    pub fn adver_int_units(&self) -> Result<u16, ConfigError> {
        let nanos = self.advert_interval.as_nanos();
        let (unit, max) = match self.version {
            Version::V2 => (1_000_000_000u128, 255u128),
            Version::V3 => (10_000_000u128, u128::from(crate::wire::MAX_ADVER_INT_V3)),
        };
        if !nanos.is_multiple_of(unit) || nanos / unit == 0 || nanos / unit > max {
            return Err(ConfigError::AdvertInterval(self.advert_interval));
        }
        Ok((nanos / unit) as u16)
    }

    /// Checks every constraint; [`Instance::new`](crate::Instance::new) calls it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.vrid == 0 {
            return Err(ConfigError::Vrid);
        }
        if self.priority == PRIORITY_STOP {
            return Err(ConfigError::Priority);
        }
        self.adver_int_units()?;
        let family = self.family();
        if self.version == Version::V2 && family == AddressFamily::Ipv6 {
            return Err(ConfigError::V2OverIpv6);
        }
        if self.virtual_addresses.is_empty() || self.virtual_addresses.len() > 255 {
            return Err(ConfigError::AddressCount(self.virtual_addresses.len()));
        }
        for vip in &self.virtual_addresses {
            if AddressFamily::of(&vip.address) != family {
                return Err(ConfigError::Family(vip.address));
            }
        }
        if self.version == Version::V2
            && let Authentication::Unknown { auth_type, .. } = self.authentication
        {
            return Err(ConfigError::Authentication(auth_type));
        }
        for peer in &self.unicast_peers {
            if AddressFamily::of(&peer.address) != family {
                return Err(ConfigError::Family(peer.address));
            }
            if peer.min_ttl > peer.max_ttl {
                return Err(ConfigError::PeerTtl(peer.address));
            }
        }
        for (index, track) in self.tracks.iter().enumerate() {
            if !(-MAX_TRACK_WEIGHT..=MAX_TRACK_WEIGHT).contains(&track.weight) {
                return Err(ConfigError::TrackWeight {
                    index,
                    weight: track.weight,
                });
            }
            if track.rise == 0 || track.fall == 0 {
                return Err(ConfigError::TrackRiseFall(index));
            }
        }
        Ok(())
    }
}

/// A configuration the engine refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// VRID 0 is not valid (RFC 9568 §5.2.3).
    #[error("VRID must be 1..=255")]
    Vrid,
    /// Priority 0 is reserved for stopping (RFC 9568 §5.2.4).
    #[error("priority must be 1..=255")]
    Priority,
    /// Not a whole number of seconds (v2) / centiseconds (v3) in range.
    #[error(
        "advertisement interval {0:?} is not representable (v2: 1..=255 s; v3: 10 ms..=40.95 s in 10 ms steps)"
    )]
    AdvertInterval(Duration),
    /// VRRPv2 is IPv4 only.
    #[error("VRRPv2 is IPv4 only; use version 3 for IPv6")]
    V2OverIpv6,
    /// 1..=255 virtual addresses are required.
    #[error("{0} virtual addresses configured; 1..=255 are needed")]
    AddressCount(usize),
    /// An address of the wrong family.
    #[error("address {0} is not of the instance's address family")]
    Family(IpAddr),
    /// IPsec AH (2) or an unknown auth type was configured.
    #[error("authentication type {0} is not supported (only none and PASS)")]
    Authentication(u8),
    /// `min_ttl > max_ttl` for a unicast peer.
    #[error("unicast peer {0}: min_ttl is above max_ttl")]
    PeerTtl(IpAddr),
    /// A track weight outside −253..=253.
    #[error("track {index}: weight {weight} is outside -253..=253")]
    TrackWeight {
        /// Index into `tracks`.
        index: usize,
        /// The weight.
        weight: i16,
    },
    /// rise or fall of 0.
    #[error("track {0}: rise and fall must be at least 1")]
    TrackRiseFall(usize),
    /// A running instance cannot take a configuration of another VRID or
    /// address family in place: that is another virtual router.
    #[error("VRID and address family cannot change in place")]
    Identity,
}

/// Whether an address is link-local (169.254/16 or fe80::/10).
pub(crate) fn is_link_local(address: &IpAddr) -> bool {
    match address {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
    }
}
