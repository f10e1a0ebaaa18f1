//! The sans-IO VRRP engine: one virtual router instance (RFC 9568 §6,
//! RFC 3768 §6), plus keepalived's FAULT state, tracking and startup rule.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use subtle::ConstantTimeEq;

use crate::action::{
    Action, Advertisement, FaultCause, Notify, NotifyEvent, NotifyScope, Reason, State,
};
use crate::config::{
    Config, ConfigError, InitialState, PRIORITY_OWNER, PRIORITY_STOP, is_link_local,
};
use crate::log;
use crate::stats::{NewMasterReason, RxDrop, Statistics};
use crate::timing;
use crate::wire::{AddressFamily, Authentication, ChecksumContext, Packet, Repr, Version};

/// What the driver knows about a received packet besides its VRRP bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RxMeta {
    /// IP source address.
    pub source: IpAddr,
    /// IP destination address (the multicast group, or ours for unicast).
    pub destination: IpAddr,
    /// IPv4 TTL or IPv6 hop limit (from `IP_RECVTTL` / `IPV6_RECVHOPLIMIT`).
    pub ttl: u8,
    /// Receiving interface, if known.
    pub ifindex: Option<u32>,
}

impl RxMeta {
    /// Metadata of a packet without interface information.
    pub const fn new(source: IpAddr, destination: IpAddr, ttl: u8) -> Self {
        RxMeta {
            source,
            destination,
            ttl,
            ifindex: None,
        }
    }

    /// The same metadata with the receiving interface.
    pub const fn with_ifindex(mut self, ifindex: u32) -> Self {
        self.ifindex = Some(ifindex);
        self
    }
}

/// Index of a tracked object in [`Config::tracks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId(pub usize);

/// One result reported for a tracked object (before rise/fall).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackStatus {
    /// Interface up / script exited 0.
    Up,
    /// Interface down / script failed or timed out.
    Down,
}

/// The VRRP interface's link state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkState {
    /// Carrier up.
    Up,
    /// Carrier down or interface removed: FAULT.
    Down,
}

/// An input that names something the instance does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// No tracked object with this index.
    #[error("no tracked object {0:?}")]
    UnknownTrack(TrackId),
    /// No sync-group member with this index.
    #[error("sync group has no member {0}")]
    NoSuchMember(usize),
}

/// The timers, as data (RFC 9568 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// Adver_Timer: next advert while master.
    Adver = 0,
    /// Master_Down_Timer: taking over while backup.
    MasterDown = 1,
    /// Next gratuitous ARP / NA round or refresh while master.
    Garp = 2,
}

#[derive(Debug, Clone, Default)]
struct Timers([Option<Instant>; 3]);

impl Timers {
    fn get(&self, timer: Timer) -> Option<Instant> {
        self.0[timer as usize]
    }
    fn set(&mut self, timer: Timer, at: Instant) {
        self.0[timer as usize] = Some(at);
    }
    fn stop(&mut self, timer: Timer) {
        self.0[timer as usize] = None;
    }
    fn expired(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| at <= now)
    }
    fn earliest(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }
    fn clear(&mut self) {
        self.0 = [None; 3];
    }
}

/// A burst of announcements: `rounds` rounds, one message per VIP each.
#[derive(Debug, Clone, Copy)]
struct Burst {
    at: Instant,
    rounds: u32,
}

/// The gratuitous ARP / unsolicited NA schedule while master.
#[derive(Debug, Clone, Default)]
struct GarpSchedule {
    bursts: Vec<Burst>,
    refresh_at: Option<Instant>,
    /// When the pending lower-priority burst starts, if one is pending.
    lower_prio_at: Option<Instant>,
}

impl GarpSchedule {
    fn next(&self) -> Option<Instant> {
        self.bursts
            .iter()
            .map(|b| b.at)
            .chain(self.refresh_at)
            .min()
    }
}

/// Debounced state of a tracked object.
#[derive(Debug, Clone, Copy)]
struct TrackState {
    up: bool,
    /// Consecutive reports contradicting `up`.
    streak: u32,
}

/// The last received packet that passed every receive check, and its
/// metadata. In a stable network every advert a router hears is the same
/// bytes from the same master, and the checks (checksum, address list, ...)
/// are a function of the configuration, which never changes, and of these
/// inputs: an identical packet is known valid without checking again.
/// Not used with a v2 password, whose comparison must stay constant-time.
#[derive(Debug, Clone, Default)]
struct LastValid {
    meta: Option<RxMeta>,
    bytes: Vec<u8>,
}

impl LastValid {
    fn holds(&self, meta: &RxMeta, bytes: &[u8]) -> bool {
        // Bytes first: when something differs, it is usually them.
        self.bytes == bytes && self.meta.as_ref() == Some(meta)
    }

    fn remember(&mut self, meta: &RxMeta, bytes: &[u8]) {
        self.meta = Some(*meta);
        self.bytes.clear();
        self.bytes.extend_from_slice(bytes);
    }
}

/// What will make the Master_Down_Timer fire, for the reason it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DownCause {
    NoResponse,
    Preempted,
    Released,
    StartupAsMaster,
}

/// One VRRP virtual router instance, sans IO.
///
/// The instance owns no socket and no clock: time is passed in, outputs are
/// polled. Call order:
///
/// 1. [`Instance::new`] with a [`Config`], then [`Instance::startup`].
/// 2. On every input call the matching `handle_*`:
///    [`handle_packet`](Instance::handle_packet) for a received VRRP packet,
///    [`handle_timeout`](Instance::handle_timeout) when
///    [`poll_timeout`](Instance::poll_timeout)'s instant has passed,
///    [`handle_track`](Instance::handle_track),
///    [`handle_link_state`](Instance::handle_link_state).
/// 3. After every input, drain [`poll_action`](Instance::poll_action) and
///    apply each [`Action`] in order, then re-arm your timer with
///    [`poll_timeout`](Instance::poll_timeout).
/// 4. On exit, [`shutdown`](Instance::shutdown) and drain the actions once
///    more (a master sends priority 0 and removes its addresses).
///
/// ```
/// use std::time::{Duration, Instant};
/// use lvskit_vrrp::{Action, Config, Instance, State, VirtualAddress};
///
/// let vip = VirtualAddress::new("10.0.3.100".parse().unwrap());
/// let mut config = Config::new(51, "10.0.3.1".parse().unwrap(), vec![vip]);
/// config.priority = 100;
/// let mut vr = Instance::new(config).unwrap();
/// let start = Instant::now();
/// vr.startup(start);
/// assert_eq!(vr.state(), State::Backup);
/// // Nobody else speaks: after Master_Down_Interval it takes over.
/// let deadline = vr.poll_timeout().unwrap();
/// assert_eq!(deadline - start, vr.master_down_interval());
/// vr.handle_timeout(deadline);
/// assert_eq!(vr.state(), State::Master);
/// let mut sent = 0;
/// while let Some(action) = vr.poll_action() {
///     if let Action::SendAdvert(_) = action { sent += 1 }
/// }
/// assert_eq!(sent, 1);
/// ```
#[derive(Debug, Clone)]
pub struct Instance {
    config: Config,
    family: AddressFamily,
    adver_int: u16,
    state: State,
    effective_priority: u8,
    /// Master_Adver_Interval in wire units (learned from the master in v3).
    master_adver_int: u16,
    timers: Timers,
    down_cause: DownCause,
    garp: GarpSchedule,
    /// Emitted advert per destination at the effective priority, plus the
    /// template it came from.
    adverts: Vec<Advertisement>,
    /// The last packet that passed [`Instance::check`].
    last_valid: LastValid,
    /// The configured addresses' octets in configuration order, as an
    /// advert of this instance carries them (empty if one is of the other
    /// family): the fast path of [`Instance::same_addresses`].
    address_block: Box<[u8]>,
    tracks: Vec<TrackState>,
    link_up: bool,
    group_fault: bool,
    preempt_after: Option<Instant>,
    master: Option<IpAddr>,
    actions: VecDeque<Action>,
    stats: Statistics,
}

impl Instance {
    /// Validates the configuration and builds a stopped instance
    /// ([`State::Initialize`]).
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        let adver_int = config.adver_int_units()?;
        let tracks = config
            .tracks
            .iter()
            .map(|t| TrackState {
                up: t.initially_up,
                streak: 0,
            })
            .collect();
        let mut instance = Instance {
            family: config.family(),
            adver_int,
            state: State::Initialize,
            effective_priority: config.priority,
            master_adver_int: adver_int,
            timers: Timers::default(),
            down_cause: DownCause::NoResponse,
            garp: GarpSchedule::default(),
            adverts: Vec::new(),
            last_valid: LastValid::default(),
            address_block: address_block(&config),
            tracks,
            link_up: true,
            group_fault: false,
            preempt_after: None,
            master: None,
            actions: VecDeque::with_capacity(16),
            stats: Statistics::default(),
            config,
        };
        instance.effective_priority = instance.compute_priority();
        instance.rebuild_adverts()?;
        Ok(instance)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The priority in use: the configured one plus tracking weights,
    /// clamped to 1..=254; always 255 for an owner.
    pub fn effective_priority(&self) -> u8 {
        self.effective_priority
    }

    /// Counters.
    pub fn statistics(&self) -> &Statistics {
        &self.stats
    }

    /// Whether the master should accept packets addressed to the virtual
    /// addresses: the configured Accept_Mode, always true for an owner
    /// (RFC 9568 §6.4.3). The driver enforces it.
    pub fn accept(&self) -> bool {
        self.config.accept || self.config.is_owner()
    }

    /// The primary address of the master last heard (or ours when master).
    pub fn master_address(&self) -> Option<IpAddr> {
        match self.state {
            State::Master => Some(self.config.primary_address),
            State::Backup => self.master,
            _ => None,
        }
    }

    /// Master_Adver_Interval: the configured interval, or the one learned from
    /// the current master (v3).
    pub fn master_adver_interval(&self) -> Duration {
        timing::adver_interval(self.config.version, self.master_adver_int)
    }

    /// Skew_Time at the effective priority and Master_Adver_Interval.
    pub fn skew_time(&self) -> Duration {
        timing::skew_time(
            self.config.version,
            self.effective_priority,
            self.master_adver_int,
        )
    }

    /// Master_Down_Interval at the effective priority and
    /// Master_Adver_Interval.
    pub fn master_down_interval(&self) -> Duration {
        timing::master_down_interval(
            self.config.version,
            self.effective_priority,
            self.master_adver_int,
        )
    }

    /// Whether this instance is in FAULT because of its own link or tracked
    /// objects (not because of its sync group).
    pub fn own_fault(&self) -> Option<FaultCause> {
        if !self.link_up {
            return Some(FaultCause::LinkDown);
        }
        self.config
            .tracks
            .iter()
            .zip(&self.tracks)
            .position(|(t, s)| t.weight == 0 && !(s.up ^ t.reverse))
            .map(|i| FaultCause::Track(crate::TrackId(i)))
    }

    fn fault_cause(&self) -> Option<FaultCause> {
        self.own_fault()
            .or(self.group_fault.then_some(FaultCause::SyncGroup))
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout)
    /// must be called, if any timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.earliest()
    }

    /// The next thing to do, in order. Drain after every input.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Startup event (RFC 9568 §6.4.1). No-op unless in Initialize.
    ///
    /// - In FAULT conditions (link down, tracked weight-0 object down): FAULT.
    /// - An owner (priority 255) becomes master at once.
    /// - [`InitialState::Master`] (keepalived's `state MASTER`): Backup, but
    ///   the Master_Down_Timer is one advertisement interval plus Skew_Time.
    /// - Otherwise Backup with Master_Down_Timer = Master_Down_Interval.
    pub fn startup(&mut self, now: Instant) {
        if self.state != State::Initialize {
            return;
        }
        self.master_adver_int = self.adver_int;
        self.master = None;
        self.preempt_after =
            (!self.config.preempt_delay.is_zero()).then(|| now + self.config.preempt_delay);
        if let Some(cause) = self.fault_cause() {
            self.enter_fault(now, cause);
        } else if self.config.is_owner() {
            self.become_master(now, Reason::Startup);
        } else if self.config.initial_state == InitialState::Master {
            let wait = self.master_adver_interval() + self.skew_time();
            self.become_backup(now, Reason::Startup, wait, DownCause::StartupAsMaster);
        } else {
            let wait = self.master_down_interval();
            self.become_backup(now, Reason::Startup, wait, DownCause::NoResponse);
        }
    }

    /// Shutdown event (RFC 9568 §6.4.2, §6.4.3): a master sends one advert
    /// with priority 0 and removes its addresses; every state goes to
    /// Initialize and a `STOP` notification follows.
    pub fn shutdown(&mut self, _now: Instant) {
        if self.state == State::Initialize {
            return;
        }
        self.stop_running(State::Initialize, Reason::Shutdown, NotifyEvent::Stop);
    }

    /// Processes expired timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timers.expired(Timer::Adver, now) {
            if self.state == State::Master {
                self.send_advert();
                self.timers
                    .set(Timer::Adver, now + self.master_adver_interval_configured());
            } else {
                self.timers.stop(Timer::Adver);
            }
        }
        if self.timers.expired(Timer::MasterDown, now) {
            self.timers.stop(Timer::MasterDown);
            if self.state == State::Backup {
                let reason = match self.down_cause {
                    DownCause::NoResponse => Reason::MasterNoResponse,
                    DownCause::Preempted => Reason::Preempted,
                    DownCause::Released => Reason::MasterReleased,
                    DownCause::StartupAsMaster => Reason::StartupAsMaster,
                };
                self.become_master(now, reason);
            }
        }
        if self.timers.expired(Timer::Garp, now) {
            self.run_garp(now);
        }
    }

    /// Processes one received VRRP packet (the IP payload). Returns why it
    /// was dropped, if it was; every drop is counted in
    /// [`statistics`](Self::statistics).
    pub fn handle_packet(
        &mut self,
        now: Instant,
        meta: &RxMeta,
        bytes: &[u8],
    ) -> Result<(), RxDrop> {
        match self.receive(now, meta, bytes) {
            Ok(()) => Ok(()),
            Err(drop) => {
                self.stats.count_drop(&drop);
                log::dropped(&self.config.name, &meta.source, &drop);
                Err(drop)
            }
        }
    }

    /// Reports one result for a tracked object; rise/fall debouncing, weights,
    /// reverse and weight-0 FAULT apply.
    pub fn handle_track(
        &mut self,
        now: Instant,
        track: TrackId,
        status: TrackStatus,
    ) -> Result<(), InputError> {
        let config = self
            .config
            .tracks
            .get(track.0)
            .ok_or(InputError::UnknownTrack(track))?;
        let state = &mut self.tracks[track.0];
        let reported_up = status == TrackStatus::Up;
        if reported_up == state.up {
            state.streak = 0;
        } else {
            state.streak += 1;
            let needed = if reported_up {
                config.rise
            } else {
                config.fall
            };
            if state.streak >= needed {
                state.up = reported_up;
                state.streak = 0;
                log::track_changed(&self.config.name, &config.kind, reported_up);
                self.apply_conditions(now);
            }
        }
        Ok(())
    }

    /// Reports the VRRP interface's link state. Down means FAULT.
    pub fn handle_link_state(&mut self, now: Instant, link: LinkState) {
        let up = link == LinkState::Up;
        if up != self.link_up {
            self.link_up = up;
            self.apply_conditions(now);
        }
    }

    /// Takes a new configuration while running, keeping the state: a master
    /// stays master, a backup keeps its Master_Down_Timer (what keepalived
    /// applies in place on a reload).
    ///
    /// - A master removes the virtual addresses no longer configured, adds
    ///   and announces the new ones, and sends an advert at once with the
    ///   new settings, restarting its Adver_Timer at the new interval.
    /// - Tracked objects still configured keep their debounced state; new
    ///   ones start as their `initially_up` says. The priority and FAULT
    ///   are then re-evaluated as after any tracking input.
    ///
    /// The VRID and the address family are the identity of the virtual
    /// router (RFC 9568 §5.2.3): changing either is refused with
    /// [`ConfigError::Identity`]; remove the instance and add a new one.
    pub fn reconfigure(&mut self, now: Instant, config: Config) -> Result<(), ConfigError> {
        config.validate()?;
        if config.vrid != self.config.vrid || config.family() != self.family {
            return Err(ConfigError::Identity);
        }
        let adver_int = config.adver_int_units()?;
        let tracks = config
            .tracks
            .iter()
            .map(|track| {
                self.config
                    .tracks
                    .iter()
                    .position(|old| old.kind == track.kind)
                    .map_or(
                        TrackState {
                            up: track.initially_up,
                            streak: 0,
                        },
                        |old| self.tracks[old],
                    )
            })
            .collect();
        let old = std::mem::replace(&mut self.config, config);
        self.tracks = tracks;
        self.adver_int = adver_int;
        if self.config.version == Version::V2 || self.state == State::Master {
            self.master_adver_int = adver_int;
        }
        self.address_block = address_block(&self.config);
        self.last_valid = LastValid::default();
        if self.config.preempt_delay.is_zero() {
            self.preempt_after = None;
        }
        self.rebuild_adverts()?;
        let was_master = self.state == State::Master;
        if was_master {
            for vip in &old.virtual_addresses {
                if !self.config.virtual_addresses.contains(vip) {
                    self.actions.push_back(Action::DelVip(vip.clone()));
                }
            }
        }
        self.apply_conditions(now);
        if was_master && self.state == State::Master {
            self.send_advert();
            self.timers
                .set(Timer::Adver, now + self.master_adver_interval_configured());
            for vip in &self.config.virtual_addresses {
                if !old.virtual_addresses.contains(vip) {
                    self.actions.push_back(Action::AddVip(vip.clone()));
                    self.actions.push_back(match vip.address {
                        IpAddr::V4(a) => Action::GratuitousArp(a),
                        IpAddr::V6(a) => Action::UnsolicitedNa(a),
                    });
                }
            }
        }
        Ok(())
    }

    // ----- sync-group hooks -------------------------------------------------

    pub(crate) fn set_group_fault(&mut self, now: Instant, fault: bool) {
        if fault != self.group_fault {
            self.group_fault = fault;
            self.apply_conditions(now);
        }
    }

    pub(crate) fn follow_master(&mut self, now: Instant) {
        if self.state == State::Backup {
            self.become_master(now, Reason::SyncGroup);
        }
    }

    pub(crate) fn follow_backup(&mut self, now: Instant) {
        if self.state == State::Master {
            let wait = self.master_down_interval();
            self.become_backup(now, Reason::SyncGroup, wait, DownCause::NoResponse);
        }
    }

    // ----- receive ----------------------------------------------------------

    fn receive(&mut self, now: Instant, meta: &RxMeta, bytes: &[u8]) -> Result<(), RxDrop> {
        if self.last_valid.holds(meta, bytes) {
            // Every check but this one gave its verdict on these very inputs.
            if matches!(self.state, State::Initialize | State::Fault) {
                return Err(RxDrop::NotRunning);
            }
        } else {
            self.check(meta, bytes)?;
            if !matches!(self.config.authentication, Authentication::Password(_)) {
                self.last_valid.remember(meta, bytes);
            }
        }
        let packet = Packet::new_unchecked(bytes, self.family);
        let priority = packet.priority();
        // Erratum 8298: an owner hearing another owner processes the advert
        // (so that all but one back off) and counts the misconfiguration.
        if self.config.is_owner() && priority == PRIORITY_OWNER {
            self.stats.owner_conflicts += 1;
            log::owner_conflict(&self.config.name, &meta.source);
        }
        self.stats.adverts_received += 1;
        if priority == PRIORITY_STOP {
            self.stats.priority_zero_received += 1;
        }
        self.process_advert(now, meta.source, priority, packet.adver_int());
        Ok(())
    }

    /// Every receive check of RFC 3768 §7.1 and RFC 9568 §7.1 (and the
    /// errata), in order; the first that fails is the drop reason. All but
    /// the running-state check depend only on the configuration, `meta` and
    /// `bytes`.
    fn check(&self, meta: &RxMeta, bytes: &[u8]) -> Result<(), RxDrop> {
        if let (Some(want), Some(got)) = (self.config.ifindex, meta.ifindex)
            && want != got
        {
            return Err(RxDrop::Interface(got));
        }
        if AddressFamily::of(&meta.source) != self.family
            || AddressFamily::of(&meta.destination) != self.family
        {
            return Err(RxDrop::Family);
        }
        if matches!(self.state, State::Initialize | State::Fault) {
            return Err(RxDrop::NotRunning);
        }
        // RFC 9568 §7.1: TTL / hop limit 255; unicast: configured peers and
        // their TTL bounds.
        if self.config.unicast_peers.is_empty() {
            if meta.ttl != 255 {
                return Err(RxDrop::Ttl(meta.ttl));
            }
        } else {
            let peer = self
                .config
                .unicast_peers
                .iter()
                .find(|p| p.address == meta.source)
                .ok_or(RxDrop::UnicastSource(meta.source))?;
            if !(peer.min_ttl..=peer.max_ttl).contains(&meta.ttl) {
                return Err(RxDrop::Ttl(meta.ttl));
            }
        }
        // Complete packet, version, type, checksum.
        let packet = Packet::new_checked(bytes, self.family)?;
        if packet.version_number() != self.config.version.number() {
            return Err(RxDrop::Version(packet.version_number()));
        }
        let ctx = ChecksumContext {
            source: meta.source,
            destination: meta.destination,
            mode: self.config.checksum,
        };
        packet.validate(&ctx)?;
        if packet.vrid() != self.config.vrid {
            return Err(RxDrop::Vrid(packet.vrid()));
        }
        if meta.source == self.config.primary_address {
            return Err(RxDrop::OwnAdvert);
        }
        if packet.address_count() == 0 {
            return Err(RxDrop::AddressCountZero);
        }
        let adver_int = packet.adver_int();
        match self.config.version {
            Version::V3 if adver_int == 0 => return Err(RxDrop::AdverIntZero),
            Version::V2 if adver_int != self.adver_int => {
                return Err(RxDrop::AdverInterval {
                    received: adver_int,
                    configured: self.adver_int,
                });
            }
            _ => {}
        }
        if self.config.version == Version::V2 {
            self.check_authentication(&packet)?;
        }
        if self.family == AddressFamily::Ipv6
            && self.config.validation.require_link_local_first
            && !is_link_local(&packet.address(0))
        {
            return Err(RxDrop::FirstAddressNotLinkLocal);
        }
        let priority = packet.priority();
        if self.config.validation.verify_addresses
            && priority != PRIORITY_OWNER
            && !self.same_addresses(&packet)
        {
            return Err(RxDrop::AddressList);
        }
        Ok(())
    }

    fn check_authentication(&self, packet: &Packet<&[u8]>) -> Result<(), RxDrop> {
        let received = packet.auth_type();
        if received == Authentication::TYPE_AH || received > 2 {
            return Err(RxDrop::InvalidAuthType(received));
        }
        let configured = self.config.authentication.auth_type();
        if received != configured {
            return Err(RxDrop::AuthTypeMismatch {
                received,
                configured,
            });
        }
        if let Authentication::Password(password) = &self.config.authentication
            && !bool::from(packet.auth_data().ct_eq(password))
        {
            return Err(RxDrop::AuthFailure);
        }
        Ok(())
    }

    /// Whether the advertised list equals the configured set.
    fn same_addresses(&self, packet: &Packet<&[u8]>) -> bool {
        // The usual case: the same addresses in the same order.
        if packet.address_block() == &*self.address_block {
            return true;
        }
        let count = usize::from(packet.address_count());
        if count != self.config.virtual_addresses.len() {
            return false;
        }
        let configured = |a: &IpAddr| {
            self.config
                .virtual_addresses
                .iter()
                .any(|v| v.address == *a)
        };
        let received = |a: &IpAddr| (0..count).any(|i| packet.address(i) == *a);
        (0..count).all(|i| configured(&packet.address(i)))
            && self
                .config
                .virtual_addresses
                .iter()
                .all(|v| received(&v.address))
    }

    /// RFC 9568 §6.4.2 / §6.4.3 "If an ADVERTISEMENT is received".
    fn process_advert(&mut self, now: Instant, source: IpAddr, priority: u8, adver_int: u16) {
        let local = self.effective_priority;
        match self.state {
            State::Backup => {
                if priority == PRIORITY_STOP {
                    self.timers.set(Timer::MasterDown, now + self.skew_time());
                    self.down_cause = DownCause::Released;
                    self.master = None;
                } else if !self.config.preempt || priority >= local || self.preempt_delayed(now) {
                    if priority >= local {
                        self.preempt_after = None;
                    }
                    if self.config.version == Version::V3 {
                        self.master_adver_int = adver_int;
                    }
                    self.master = Some(source);
                    self.timers
                        .set(Timer::MasterDown, now + self.master_down_interval());
                    self.down_cause = DownCause::NoResponse;
                } else {
                    // Preempt: discard, let the Master_Down_Timer run out.
                    self.down_cause = DownCause::Preempted;
                }
            }
            State::Master => {
                if priority == PRIORITY_STOP {
                    self.send_advert();
                    self.timers
                        .set(Timer::Adver, now + self.master_adver_interval_configured());
                } else if priority > local
                    || (priority == local && higher_address(&source, &self.config.primary_address))
                {
                    if self.config.version == Version::V3 {
                        self.master_adver_int = adver_int;
                    }
                    self.master = Some(source);
                    let wait = self.master_down_interval();
                    self.become_backup(
                        now,
                        Reason::HigherPriority { source, priority },
                        wait,
                        DownCause::NoResponse,
                    );
                } else {
                    if self.config.readvertise_on_lower_priority {
                        self.send_advert();
                        self.timers
                            .set(Timer::Adver, now + self.master_adver_interval_configured());
                    }
                    if priority < local {
                        self.schedule_lower_priority_garp(now);
                        self.notify(NotifyEvent::MasterRxLowerPriority);
                    }
                }
            }
            State::Initialize | State::Fault => {}
        }
    }

    /// keepalived's `garp_lower_prio_delay`/`_repeat`: a master that hears a
    /// lower priority announces its addresses again after the delay, with
    /// one such burst pending at a time.
    fn schedule_lower_priority_garp(&mut self, now: Instant) {
        let garp = self.config.garp;
        if garp.lower_prio_delay.is_zero()
            || garp.lower_prio_repeat == 0
            || self.garp.lower_prio_at.is_some()
        {
            return;
        }
        let at = now + garp.lower_prio_delay;
        self.garp.lower_prio_at = Some(at);
        self.garp.bursts.push(Burst {
            at,
            rounds: garp.lower_prio_repeat,
        });
        self.arm_garp();
    }

    /// keepalived's `preempt_delay`: while the window runs, a lower-priority
    /// master is still followed.
    fn preempt_delayed(&mut self, now: Instant) -> bool {
        if self.config.preempt_delay.is_zero() {
            return false;
        }
        match self.preempt_after {
            None => {
                self.preempt_after = Some(now + self.config.preempt_delay);
                true
            }
            Some(at) => now < at,
        }
    }

    // ----- transitions ------------------------------------------------------

    fn master_adver_interval_configured(&self) -> Duration {
        timing::adver_interval(self.config.version, self.adver_int)
    }

    fn transition(&mut self, from: State, to: State, reason: Reason) {
        self.state = to;
        log::transition(&self.config.name, from, to, &reason);
        self.actions
            .push_back(Action::StateChanged { from, to, reason });
    }

    fn notify(&mut self, event: NotifyEvent) {
        self.actions.push_back(Action::Notify(Notify {
            scope: NotifyScope::Instance,
            name: self.config.name.clone(),
            event,
            priority: self.effective_priority,
        }));
    }

    fn become_master(&mut self, now: Instant, reason: Reason) {
        let from = self.state;
        self.stats.master_transitions += 1;
        self.stats.new_master_reason = match reason {
            Reason::Preempted => NewMasterReason::Preempted,
            Reason::MasterNoResponse | Reason::MasterReleased => NewMasterReason::MasterNoResponse,
            _ => NewMasterReason::Priority,
        };
        self.transition(from, State::Master, reason);
        for vip in &self.config.virtual_addresses {
            self.actions.push_back(Action::AddVip(vip.clone()));
        }
        self.send_advert();
        self.master_adver_int = self.adver_int;
        self.master = None;
        self.timers.stop(Timer::MasterDown);
        self.timers
            .set(Timer::Adver, now + self.master_adver_interval_configured());
        let garp = self.config.garp;
        self.garp = GarpSchedule::default();
        if garp.master_repeat > 0 {
            self.garp.bursts.push(Burst {
                at: now,
                rounds: garp.master_repeat,
            });
            if !garp.master_delay.is_zero() {
                self.garp.bursts.push(Burst {
                    at: now + garp.master_delay,
                    rounds: garp.master_repeat,
                });
            }
        }
        if !garp.refresh.is_zero() && garp.refresh_repeat > 0 {
            self.garp.refresh_at = Some(now + garp.refresh);
        }
        self.run_garp(now);
        self.notify(NotifyEvent::Master);
    }

    fn become_backup(&mut self, now: Instant, reason: Reason, wait: Duration, cause: DownCause) {
        let from = self.state;
        if from == State::Master {
            self.remove_vips();
        }
        self.timers.clear();
        self.garp = GarpSchedule::default();
        self.timers.set(Timer::MasterDown, now + wait);
        self.down_cause = cause;
        self.transition(from, State::Backup, reason);
        self.notify(NotifyEvent::Backup);
    }

    fn enter_fault(&mut self, _now: Instant, cause: FaultCause) {
        self.stop_running(State::Fault, Reason::Fault(cause), NotifyEvent::Fault);
    }

    /// Leaves Backup/Master for Initialize or FAULT. A master sends priority
    /// 0 first so that a backup takes over after Skew_Time, then removes its
    /// addresses.
    fn stop_running(&mut self, to: State, reason: Reason, event: NotifyEvent) {
        let from = self.state;
        if from == State::Master {
            self.send_priority_zero();
            self.remove_vips();
        }
        self.timers.clear();
        self.garp = GarpSchedule::default();
        self.master = None;
        self.transition(from, to, reason);
        self.notify(event);
    }

    /// Re-evaluates priority and FAULT after a tracking, link or group input.
    fn apply_conditions(&mut self, now: Instant) {
        let priority = self.compute_priority();
        if priority != self.effective_priority {
            log::priority_changed(&self.config.name, self.effective_priority, priority);
            self.effective_priority = priority;
            // Cannot fail: the same template emitted at construction.
            let _ = self.rebuild_adverts();
        }
        match (self.state, self.fault_cause()) {
            (State::Initialize, _) | (State::Fault, Some(_)) => {}
            (State::Fault, None) => {
                self.master_adver_int = self.adver_int;
                if self.config.is_owner() {
                    self.become_master(now, Reason::FaultCleared);
                } else {
                    let wait = self.master_down_interval();
                    self.become_backup(now, Reason::FaultCleared, wait, DownCause::NoResponse);
                }
            }
            (_, Some(cause)) => self.enter_fault(now, cause),
            (_, None) => {}
        }
    }

    fn compute_priority(&self) -> u8 {
        if self.config.is_owner() {
            return PRIORITY_OWNER;
        }
        let delta: i32 = self
            .config
            .tracks
            .iter()
            .zip(&self.tracks)
            .map(|(t, s)| {
                let up = s.up ^ t.reverse;
                match t.weight {
                    w if w > 0 && up => i32::from(w),
                    w if w < 0 && !up => i32::from(w),
                    _ => 0,
                }
            })
            .sum();
        (i32::from(self.config.priority) + delta).clamp(1, 254) as u8
    }

    // ----- output -----------------------------------------------------------

    fn destinations(&self) -> Vec<IpAddr> {
        if self.config.unicast_peers.is_empty() {
            vec![self.family.multicast_group()]
        } else {
            self.config
                .unicast_peers
                .iter()
                .map(|p| p.address)
                .collect()
        }
    }

    fn advert_repr(&self, priority: u8) -> Repr {
        Repr {
            version: self.config.version,
            vrid: self.config.vrid,
            priority,
            adver_int: self.adver_int,
            authentication: match self.config.version {
                Version::V2 => self.config.authentication,
                Version::V3 => Authentication::None,
            },
            addresses: self
                .config
                .virtual_addresses
                .iter()
                .map(|v| v.address)
                .collect(),
        }
    }

    fn emit_adverts(&self, priority: u8) -> Result<Vec<Advertisement>, crate::wire::Error> {
        let repr = self.advert_repr(priority);
        self.destinations()
            .into_iter()
            .map(|destination| {
                let ctx = ChecksumContext {
                    source: self.config.primary_address,
                    destination,
                    mode: self.config.checksum,
                };
                Ok(Advertisement {
                    source: self.config.primary_address,
                    destination,
                    payload: Bytes::from(repr.to_vec(&ctx)?),
                    priority,
                })
            })
            .collect()
    }

    fn rebuild_adverts(&mut self) -> Result<(), ConfigError> {
        self.adverts = self
            .emit_adverts(self.effective_priority)
            .map_err(|_| ConfigError::AddressCount(self.config.virtual_addresses.len()))?;
        Ok(())
    }

    fn send_advert(&mut self) {
        for advert in &self.adverts {
            self.actions.push_back(Action::SendAdvert(advert.clone()));
            self.stats.adverts_sent += 1;
        }
    }

    fn send_priority_zero(&mut self) {
        // Same inputs as the validated template, only the priority differs.
        if let Ok(adverts) = self.emit_adverts(PRIORITY_STOP) {
            for advert in adverts {
                self.actions.push_back(Action::SendAdvert(advert));
                self.stats.adverts_sent += 1;
                self.stats.priority_zero_sent += 1;
            }
        }
    }

    fn remove_vips(&mut self) {
        for vip in &self.config.virtual_addresses {
            self.actions.push_back(Action::DelVip(vip.clone()));
        }
    }

    fn arm_garp(&mut self) {
        match self.garp.next() {
            Some(at) => self.timers.set(Timer::Garp, at),
            None => self.timers.stop(Timer::Garp),
        }
    }

    /// Sends every announcement round that is due and re-arms the timer.
    fn run_garp(&mut self, now: Instant) {
        if self.state != State::Master {
            self.garp = GarpSchedule::default();
            self.arm_garp();
            return;
        }
        let garp = self.config.garp;
        if let Some(at) = self.garp.refresh_at
            && at <= now
        {
            self.garp.bursts.push(Burst {
                at: now,
                rounds: garp.refresh_repeat,
            });
            self.garp.refresh_at = Some(now + garp.refresh);
        }
        if self.garp.lower_prio_at.is_some_and(|at| at <= now) {
            self.garp.lower_prio_at = None;
        }
        let mut rounds = 0u32;
        for burst in &mut self.garp.bursts {
            while burst.rounds > 0 && burst.at <= now {
                rounds += 1;
                burst.rounds -= 1;
                if !garp.interval.is_zero() {
                    burst.at = now + garp.interval;
                }
            }
        }
        self.garp.bursts.retain(|b| b.rounds > 0);
        for _ in 0..rounds {
            for vip in &self.config.virtual_addresses {
                self.actions.push_back(match vip.address {
                    IpAddr::V4(a) => Action::GratuitousArp(a),
                    IpAddr::V6(a) => Action::UnsolicitedNa(a),
                });
            }
        }
        self.arm_garp();
    }
}

/// The octets of `config`'s virtual addresses, in order, if all are of the
/// instance's family; else nothing.
fn address_block(config: &Config) -> Box<[u8]> {
    let family = config.family();
    let mut block = Vec::new();
    for vip in &config.virtual_addresses {
        match (vip.address, family) {
            (IpAddr::V4(a), AddressFamily::Ipv4) => block.extend_from_slice(&a.octets()),
            (IpAddr::V6(a), AddressFamily::Ipv6) => block.extend_from_slice(&a.octets()),
            _ => return Box::default(),
        }
    }
    block.into_boxed_slice()
}

/// RFC 9568 §6.4.3: addresses compared as unsigned integers in network byte
/// order.
fn higher_address(sender: &IpAddr, local: &IpAddr) -> bool {
    match (sender, local) {
        (IpAddr::V4(s), IpAddr::V4(l)) => s.octets() > l.octets(),
        (IpAddr::V6(s), IpAddr::V6(l)) => s.octets() > l.octets(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VirtualAddress;
    use crate::wire::ChecksumMode;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Received packets to pick from: adverts at several priorities, and
    /// the same bytes with one input changed (TTL, source, a byte, the
    /// interface).
    fn inputs() -> Vec<(RxMeta, Vec<u8>)> {
        let group = ip("224.0.0.18");
        let advert = |source: &str, priority: u8, vip: &str| {
            let repr = Repr {
                version: Version::V3,
                vrid: 51,
                priority,
                adver_int: 100,
                authentication: Authentication::None,
                addresses: vec![ip(vip)],
            };
            let ctx = ChecksumContext {
                source: ip(source),
                destination: group,
                mode: ChecksumMode::PseudoHeader,
            };
            repr.to_vec(&ctx).unwrap()
        };
        let peer = RxMeta::new(ip("10.0.3.2"), group, 255);
        let mut inputs = Vec::new();
        for priority in [0, 50, 100, 200, 255] {
            inputs.push((peer, advert("10.0.3.2", priority, "10.0.3.100")));
        }
        let high = advert("10.0.3.2", 200, "10.0.3.100");
        inputs.push((RxMeta::new(ip("10.0.3.2"), group, 254), high.clone()));
        inputs.push((RxMeta::new(ip("10.0.3.3"), group, 255), high.clone()));
        inputs.push((peer.with_ifindex(9), high.clone()));
        let mut corrupt = high.clone();
        corrupt[7] ^= 1;
        inputs.push((peer, corrupt));
        inputs.push((peer, advert("10.0.3.2", 200, "10.0.3.101")));
        inputs.push((
            RxMeta::new(ip("10.0.3.3"), group, 255),
            advert("10.0.3.3", 150, "10.0.3.100"),
        ));
        inputs
    }

    #[derive(Debug, Clone)]
    enum Input {
        Packet(usize),
        Timeout,
        Link(bool),
    }

    proptest! {
        /// The remembered last valid packet changes no verdict: at every
        /// step an instance that never remembers anything drops or accepts
        /// the same packets, counts the same and does the same.
        #[test]
        fn remembering_the_last_valid_packet_changes_nothing(
            priority in 1u8..=255,
            script in proptest::collection::vec(
                prop_oneof![
                    8 => (0usize..11).prop_map(Input::Packet),
                    1 => Just(Input::Timeout),
                    1 => any::<bool>().prop_map(Input::Link),
                ],
                1..60,
            ),
        ) {
            let inputs = inputs();
            let mut config = Config::new(
                51,
                ip("10.0.3.1"),
                vec![VirtualAddress::new(ip("10.0.3.100"))],
            );
            config.priority = priority;
            config.ifindex = Some(2);
            let mut instance = Instance::new(config).unwrap();
            let mut now = Instant::now();
            instance.startup(now);
            while instance.poll_action().is_some() {}
            for input in script {
                now += Duration::from_millis(150);
                let mut reference = instance.clone();
                reference.last_valid = LastValid::default();
                for vr in [&mut instance, &mut reference] {
                    match input {
                        Input::Packet(i) => {
                            let (meta, bytes) = &inputs[i];
                            let _ = vr.handle_packet(now, meta, bytes);
                        }
                        Input::Timeout => vr.handle_timeout(now),
                        Input::Link(up) => vr.handle_link_state(
                            now,
                            if up { LinkState::Up } else { LinkState::Down },
                        ),
                    }
                }
                prop_assert_eq!(instance.state(), reference.state());
                prop_assert_eq!(instance.statistics(), reference.statistics());
                prop_assert_eq!(instance.poll_timeout(), reference.poll_timeout());
                let actions = |vr: &mut Instance| {
                    std::iter::from_fn(|| vr.poll_action()).collect::<Vec<_>>()
                };
                prop_assert_eq!(actions(&mut instance), actions(&mut reference));
            }
        }
    }
}
