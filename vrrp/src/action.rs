//! What the engine asks its driver to do, and the states and reasons it
//! reports.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use bytes::Bytes;

use crate::config::VirtualAddress;

/// The state of an instance (RFC 9568 §6.4, plus keepalived's FAULT).
///
/// RFC 9568 renamed Master/Backup to Active/Backup; this crate keeps
/// keepalived's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not running: before [`startup`](crate::Instance::startup) and after
    /// [`shutdown`](crate::Instance::shutdown).
    Initialize,
    /// Monitoring the master; Master_Down_Timer armed.
    Backup,
    /// Forwarding for the virtual addresses; Adver_Timer armed.
    Master,
    /// A tracked object with weight 0 is down, the link is down, or a
    /// sync-group member is in fault: no adverts, no addresses.
    Fault,
}

impl State {
    /// keepalived's upper-case name, as passed to notify scripts.
    pub const fn keepalived_name(self) -> &'static str {
        match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keepalived_name())
    }
}

/// Why a state changed. Every transition carries one: there are no causeless
/// changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// `startup()`: Initialize → Backup, or → Master for an owner.
    Startup,
    /// Master_Down_Timer fired after silence of the master
    /// (RFC 6527 `masterNoResponse`).
    MasterNoResponse,
    /// Master_Down_Timer fired after we discarded a lower-priority master's
    /// adverts (RFC 6527 `preempted`).
    Preempted,
    /// Master_Down_Timer fired Skew_Time after the master sent priority 0.
    MasterReleased,
    /// keepalived's `state MASTER` startup wait (one interval + skew) ended.
    StartupAsMaster,
    /// As master, an advert with a higher priority (or equal priority and a
    /// higher primary address) arrived.
    HigherPriority {
        /// The sender's IP source.
        source: IpAddr,
        /// The sender's priority.
        priority: u8,
    },
    /// Entered FAULT.
    Fault(FaultCause),
    /// Every fault cause cleared.
    FaultCleared,
    /// `shutdown()`.
    Shutdown,
    /// A sync-group member changed state and this one follows it.
    SyncGroup,
}

/// Why an instance is in FAULT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultCause {
    /// The VRRP interface is down.
    LinkDown,
    /// A tracked object with weight 0 is effectively down.
    Track(crate::TrackId),
    /// Another member of the sync group is in FAULT.
    SyncGroup,
}

/// An advertisement to send.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Advertisement {
    /// IP source: the configured primary address.
    pub source: IpAddr,
    /// 224.0.0.18, ff02::12, or a unicast peer.
    pub destination: IpAddr,
    /// The VRRP message, checksum included (for `destination`).
    pub payload: Bytes,
    /// The priority in the payload (0 when stopping).
    pub priority: u8,
}

/// Whom a notification is about (keepalived's first notify argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotifyScope {
    /// `INSTANCE`.
    Instance,
    /// `GROUP` (a sync group).
    Group,
}

/// The event of a notification (keepalived's third notify argument, or the
/// notify FIFO's word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotifyEvent {
    /// `MASTER` (`notify_master`).
    Master,
    /// `BACKUP` (`notify_backup`).
    Backup,
    /// `FAULT` (`notify_fault`).
    Fault,
    /// `STOP` (`notify_stop`), instances only.
    Stop,
    /// `MASTER_RX_LOWER_PRI` (`notify_master_rx_lower_pri`).
    MasterRxLowerPriority,
}

impl NotifyEvent {
    /// keepalived's word for the event.
    pub const fn keepalived_name(self) -> &'static str {
        match self {
            NotifyEvent::Master => "MASTER",
            NotifyEvent::Backup => "BACKUP",
            NotifyEvent::Fault => "FAULT",
            NotifyEvent::Stop => "STOP",
            NotifyEvent::MasterRxLowerPriority => "MASTER_RX_LOWER_PRI",
        }
    }
}

/// A notify event, carrying keepalived's four `notify` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Notify {
    /// `INSTANCE` or `GROUP`.
    pub scope: NotifyScope,
    /// Instance or group name.
    pub name: Arc<str>,
    /// What happened.
    pub event: NotifyEvent,
    /// The effective priority (0 for groups).
    pub priority: u8,
}

impl Notify {
    /// The arguments keepalived appends to a `notify` script:
    /// `"INSTANCE"|"GROUP"`, name, state, priority.
    pub fn arguments(&self) -> [String; 4] {
        [
            match self.scope {
                NotifyScope::Instance => "INSTANCE".to_owned(),
                NotifyScope::Group => "GROUP".to_owned(),
            },
            self.name.to_string(),
            self.event.keepalived_name().to_owned(),
            self.priority.to_string(),
        ]
    }
}

/// Something the driver must do. Drain with
/// [`Instance::poll_action`](crate::Instance::poll_action) after every input,
/// and apply in order: VIPs are added before the announcements that
/// advertise them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Send this advertisement with TTL / hop limit 255.
    SendAdvert(Advertisement),
    /// Install a virtual address on the interface (becoming master).
    AddVip(VirtualAddress),
    /// Remove a virtual address (leaving master).
    DelVip(VirtualAddress),
    /// Send one gratuitous ARP for this address.
    GratuitousArp(Ipv4Addr),
    /// Send one unsolicited neighbour advertisement to ff02::1 for this
    /// address.
    UnsolicitedNa(Ipv6Addr),
    /// The state changed.
    StateChanged {
        /// Previous state.
        from: State,
        /// New state.
        to: State,
        /// Cause.
        reason: Reason,
    },
    /// Run notify scripts / write the notify FIFO.
    Notify(Notify),
}
