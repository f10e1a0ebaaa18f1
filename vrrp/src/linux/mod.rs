//! The Linux driver (feature `linux`): tokio, raw sockets, rtnetlink.
//!
//! [`driver::Driver`] runs [`Instance`](crate::Instance)s and
//! [`SyncGroup`](crate::SyncGroup)s on any number of interfaces, and takes
//! additions, updates and removals while running ([`driver::DriverHandle`]).
//! Its pieces, one file per concern:
//! - [`socket`]: raw IP-protocol-112 sockets, TTL 255 out, TTL and
//!   destination reported in.
//! - [`netlink`]: interface lookup, source address selection, VIPs, the
//!   VMAC macvlan and link events, all over rtnetlink.
//! - [`announce`]: gratuitous ARP and unsolicited NA frames (pnet) sent on
//!   an `AF_PACKET` socket.
//! - [`script`]: track and notify scripts with a timeout, as a given user.
//! - [`timer`]: a timerfd-backed timer, finer than tokio's 1 ms wheel.

pub mod announce;
pub mod driver;
pub mod netlink;
pub mod script;
pub mod socket;
mod sys;
pub mod timer;

use std::net::IpAddr;

/// What can go wrong in the driver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    #[error("{operation}: {source}")]
    Io {
        /// The call, e.g. `IP_ADD_MEMBERSHIP 224.0.0.18`.
        operation: &'static str,
        /// The error the kernel returned.
        source: std::io::Error,
    },
    /// The kernel refused a netlink request.
    #[error("{operation}: {}", std::io::Error::from_raw_os_error(*errno))]
    Netlink {
        /// The request, e.g. `RTM_NEWADDR`.
        operation: &'static str,
        /// The errno of the kernel's answer.
        errno: i32,
    },
    /// A netlink answer could not be understood.
    #[error("{operation}: {message}")]
    NetlinkProtocol {
        /// The request.
        operation: &'static str,
        /// What the netlink library said.
        message: String,
    },
    /// No interface of that name or index.
    #[error("no interface {0}")]
    NoSuchInterface(String),
    /// The interface has no address to send adverts from.
    #[error("interface {interface} has no {what} address to send advertisements from")]
    NoSourceAddress {
        /// The interface.
        interface: String,
        /// `IPv4` or `IPv6 link-local`.
        what: &'static str,
    },
    /// Source and destination of a send are of different families.
    #[error("cannot send from {from} to {to}")]
    FamilyMismatch {
        /// The source address.
        from: IpAddr,
        /// The destination address.
        to: IpAddr,
    },
    /// A frame too short for an Ethernet header.
    #[error("frame of {0} bytes has no Ethernet header")]
    ShortFrame(usize),
    /// No such user for scripts.
    #[error("no user {0}")]
    NoSuchUser(String),
    /// Two instances of one family with the same VRID on one interface.
    #[error("VRID {0} is configured twice on this interface")]
    DuplicateVrid(u8),
    /// Two instances or groups of the same name.
    #[error("{0} is configured twice")]
    DuplicateName(String),
    /// No instance or group of that name.
    #[error("no instance or sync group {0}")]
    NoSuchInstance(String),
    /// A change that is not applied in place: remove and add the instance.
    #[error("{instance}: {what} cannot change in place")]
    NotInPlace {
        /// The instance.
        instance: String,
        /// What changed, e.g. `interface`.
        what: &'static str,
    },
    /// A sync group's member cannot be removed alone.
    #[error("{instance} is a member of sync group {group}: remove the group")]
    GroupMember {
        /// The instance.
        instance: String,
        /// Its group.
        group: String,
    },
    /// The driver has stopped and takes no more commands.
    #[error("the VRRP driver has stopped")]
    Stopped,
    /// The engine refused the configuration.
    #[error("invalid instance configuration: {0}")]
    Config(crate::ConfigError),
    /// Something this driver does not do.
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    /// A script could not be started or waited for.
    #[error("script {program}: {source}")]
    Script {
        /// The program.
        program: String,
        /// The error.
        source: std::io::Error,
    },
}
