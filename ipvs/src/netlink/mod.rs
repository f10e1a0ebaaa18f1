//! The IPVS generic-netlink message, built on `netlink-packet-core` and
//! `netlink-packet-generic`.
//!
//! ```text
//!  nlmsghdr (16)  | genlmsghdr (4): cmd, version=1, reserved | attributes …
//!  type = family id of "IPVS", resolved per handle through nlctrl
//! ```
//!
//! Commands and attribute numbers are those of
//! `include/uapi/linux/ip_vs.h`; the kernel side is
//! `net/netfilter/ipvs/ip_vs_ctl.c` (`ip_vs_genl_ops`).

pub mod attr;
pub(crate) mod exchange;
pub mod reply;
pub use exchange::decode_datagram;

use netlink_packet_core::{
    DecodeError, Emitable, NLA_F_NESTED, NetlinkMessage, NlaBuffer, NlasIterator,
    ParseableParametrized,
};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};

pub use attr::{
    CommandAttribute, Counter, DaemonAttribute, DestinationAttribute, ServiceAttribute,
    StatsAttribute,
};

/// `IPVS_GENL_NAME`: the generic-netlink family name.
pub const FAMILY_NAME: &str = "IPVS";
/// `IPVS_GENL_VERSION`.
pub const FAMILY_VERSION: u8 = 1;

/// `IPVS_CMD_*`: the generic-netlink commands of the IPVS family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Command {
    /// `IPVS_CMD_NEW_SERVICE` (1): add a virtual service.
    NewService,
    /// `IPVS_CMD_SET_SERVICE` (2): edit a virtual service.
    SetService,
    /// `IPVS_CMD_DEL_SERVICE` (3): delete a virtual service and its
    /// destinations.
    DelService,
    /// `IPVS_CMD_GET_SERVICE` (4): get one service, or dump all.
    GetService,
    /// `IPVS_CMD_NEW_DEST` (5): add a destination.
    NewDestination,
    /// `IPVS_CMD_SET_DEST` (6): edit a destination.
    SetDestination,
    /// `IPVS_CMD_DEL_DEST` (7): delete a destination.
    DelDestination,
    /// `IPVS_CMD_GET_DEST` (8): dump the destinations of a service.
    GetDestination,
    /// `IPVS_CMD_NEW_DAEMON` (9): start a sync daemon (also the command of
    /// each `GET_DAEMON` dump reply).
    NewDaemon,
    /// `IPVS_CMD_DEL_DAEMON` (10): stop a sync daemon.
    DelDaemon,
    /// `IPVS_CMD_GET_DAEMON` (11): dump the running sync daemons.
    GetDaemon,
    /// `IPVS_CMD_SET_CONFIG` (12): set the connection timeouts (also the
    /// command of the `GET_CONFIG` reply).
    SetConfig,
    /// `IPVS_CMD_GET_CONFIG` (13): get the connection timeouts.
    GetConfig,
    /// `IPVS_CMD_SET_INFO` (14): only the command of the `GET_INFO` reply.
    SetInfo,
    /// `IPVS_CMD_GET_INFO` (15): version and connection-table size.
    GetInfo,
    /// `IPVS_CMD_ZERO` (16): zero the counters of one service or of all.
    Zero,
    /// `IPVS_CMD_FLUSH` (17): delete every service.
    Flush,
    /// A command number this crate does not know.
    Other(u8),
}

impl From<Command> for u8 {
    fn from(c: Command) -> u8 {
        use Command::*;
        match c {
            NewService => 1,
            SetService => 2,
            DelService => 3,
            GetService => 4,
            NewDestination => 5,
            SetDestination => 6,
            DelDestination => 7,
            GetDestination => 8,
            NewDaemon => 9,
            DelDaemon => 10,
            GetDaemon => 11,
            SetConfig => 12,
            GetConfig => 13,
            SetInfo => 14,
            GetInfo => 15,
            Zero => 16,
            Flush => 17,
            Other(n) => n,
        }
    }
}

impl From<u8> for Command {
    fn from(n: u8) -> Command {
        use Command::*;
        match n {
            1 => NewService,
            2 => SetService,
            3 => DelService,
            4 => GetService,
            5 => NewDestination,
            6 => SetDestination,
            7 => DelDestination,
            8 => GetDestination,
            9 => NewDaemon,
            10 => DelDaemon,
            11 => GetDaemon,
            12 => SetConfig,
            13 => GetConfig,
            14 => SetInfo,
            15 => GetInfo,
            16 => Zero,
            17 => Flush,
            n => Other(n),
        }
    }
}

/// One IPVS generic-netlink message: a command and its first-level
/// attributes.
///
/// `nested_flag` records whether the first-level nests (service,
/// destination, daemon) carry `NLA_F_NESTED`: `ipvsadm` (libnl) sets it, the
/// kernel's replies do not (`nla_nest_start_noflag`). The kernel accepts
/// both; keeping the bit makes parse-then-emit byte-identical for either
/// sender. Messages this crate builds set it, like `ipvsadm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsMessage {
    /// The command.
    pub command: Command,
    /// The first-level attributes, in wire order.
    pub attributes: Vec<CommandAttribute>,
    /// Whether first-level nests carry `NLA_F_NESTED`.
    pub nested_flag: bool,
}

impl IpvsMessage {
    /// A message with `NLA_F_NESTED` set on its nests.
    pub fn new(command: Command, attributes: Vec<CommandAttribute>) -> Self {
        IpvsMessage {
            command,
            attributes,
            nested_flag: true,
        }
    }

    /// Serialise as one complete netlink message (`nlmsghdr`, `genlmsghdr`,
    /// attributes) with `netlink-packet-core`'s emitter.
    pub fn to_netlink_bytes(
        &self,
        family_id: u16,
        flags: u16,
        sequence: u32,
        port: u32,
    ) -> Vec<u8> {
        let mut genl = GenlMessage::from_payload(self.clone());
        genl.set_resolved_family_id(family_id);
        let mut message = NetlinkMessage::from(genl);
        message.header.flags = flags;
        message.header.sequence_number = sequence;
        message.header.port_number = port;
        message.finalize();
        let mut bytes = vec![0; message.buffer_len()];
        message.serialize(&mut bytes);
        bytes
    }

    /// Parse the generic-netlink payload (after the `genlmsghdr`).
    pub fn parse_payload(command: Command, payload: &[u8]) -> Result<Self, DecodeError> {
        let info = command == Command::SetInfo;
        let mut attributes = Vec::with_capacity(NlasIterator::new(payload).count());
        let mut nested_flag = false;
        for nla in NlasIterator::new(payload) {
            let nla: NlaBuffer<&[u8]> = nla?;
            let attribute = CommandAttribute::parse_in(&nla, info)?;
            if attribute.is_container() && nla.nested_flag() {
                nested_flag = true;
            }
            attributes.push(attribute);
        }
        Ok(IpvsMessage {
            command,
            attributes,
            nested_flag,
        })
    }
}

impl IpvsMessage {
    /// The first service nest in the model, `None` if there is none (a
    /// `GET_SERVICE` reply has one).
    pub fn service_status(
        &self,
    ) -> Result<Option<crate::model::ServiceStatus>, crate::model::ModelError> {
        self.attributes
            .iter()
            .find_map(|a| match a {
                CommandAttribute::Service(s) => {
                    Some(crate::model::ServiceStatus::from_attributes(s))
                }
                _ => None,
            })
            .transpose()
    }

    /// Every destination nest in the model, in order (a `GET_DEST` reply
    /// has one); `service_family` stands in for an absent
    /// `IPVS_DEST_ATTR_ADDR_FAMILY`.
    pub fn destination_statuses(
        &self,
        service_family: crate::model::Family,
    ) -> Result<Vec<crate::model::DestinationStatus>, crate::model::ModelError> {
        self.attributes
            .iter()
            .filter_map(|a| match a {
                CommandAttribute::Destination(d) => Some(
                    crate::model::DestinationStatus::from_attributes(d, service_family),
                ),
                _ => None,
            })
            .collect()
    }
}

impl GenlFamily for IpvsMessage {
    fn family_name() -> &'static str {
        FAMILY_NAME
    }
    fn command(&self) -> u8 {
        self.command.into()
    }
    fn version(&self) -> u8 {
        FAMILY_VERSION
    }
}

impl Emitable for IpvsMessage {
    fn buffer_len(&self) -> usize {
        self.attributes.iter().map(|a| a.buffer_len()).sum()
    }
    fn emit(&self, buffer: &mut [u8]) {
        let mut offset = 0;
        for attribute in &self.attributes {
            let len = attribute.buffer_len();
            attribute.emit(&mut buffer[offset..offset + len]);
            if self.nested_flag && attribute.is_container() {
                let kind = u16::from_ne_bytes([buffer[offset + 2], buffer[offset + 3]]);
                let kind = (kind | NLA_F_NESTED).to_ne_bytes();
                buffer[offset + 2..offset + 4].copy_from_slice(&kind);
            }
            offset += len;
        }
    }
}

impl ParseableParametrized<[u8], GenlHeader> for IpvsMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        Self::parse_payload(Command::from(header.cmd), buf)
    }
}
