//! VRRPv2 and VRRPv3 (RFC 3768, RFC 5798, RFC 9568) for IPv4 and IPv6.
//!
//! The engine is sans-IO: it owns no socket and no clock. A Linux driver
//! (raw sockets, VIPs over rtnetlink, gratuitous ARP and unsolicited NA)
//! sits on top of it.

#[cfg(feature = "linux")]
pub mod linux;
