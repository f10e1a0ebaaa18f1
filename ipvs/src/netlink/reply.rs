//! `GET_SERVICE` and `GET_DEST` dump replies decoded straight into the
//! model.
//!
//! The handles read their dumps with these: a zero-copy walk over each
//! reply's attributes (`NlasIterator` on the received bytes) fills the
//! model's values directly, without the attribute enums and their `Vec`s and
//! `String`s in between (only a persistence-engine name or an unknown
//! scheduler name is copied). They accept and reject exactly what
//! [`IpvsMessage::parse_payload`](super::IpvsMessage::parse_payload)
//! followed by the model's `from_attributes` does, with the same errors: a
//! malformed attribute is [`Error::Malformed`], a well-formed but invalid
//! nest [`Error::Invalid`]. The `ipvs_reply` fuzz target and a property test
//! hold them to it.

use netlink_packet_core::{DecodeError, NLA_TYPE_MASK, NlaBuffer};

use super::Command;
use super::attr::{
    CommandAttribute, Counter, be16_of, exact, kind::*, str_of, u8_of, u16_of, u32_of,
};
use crate::error::Error;
use crate::model::{
    DestinationFields, DestinationStatus, Family, ServiceFields, ServiceStatus, Stats,
};

/// The service of one `GET_SERVICE` reply: `command` is the reply's
/// generic-netlink command, `attributes` what follows its `genlmsghdr`.
/// `None` if the reply has no service nest; of several, the first counts
/// (each is checked to be well-formed).
pub fn service(command: Command, attributes: &[u8]) -> Result<Option<ServiceStatus>, Error> {
    let mut first = None;
    each_nest(command, attributes, CMD_ATTR_SERVICE, |nest| {
        let fields = service_fields(nest)?;
        first.get_or_insert(fields);
        Ok(())
    })
    .map_err(|source| Error::Malformed {
        command: Command::GetService,
        source,
    })?;
    first
        .map(|fields| fields.status())
        .transpose()
        .map_err(|source| Error::Invalid {
            command: Command::GetService,
            source,
        })
}

/// Append the destinations of one `GET_DEST` reply to `out`, in order;
/// `service_family` stands in for an absent `IPVS_DEST_ATTR_ADDR_FAMILY`.
/// On error `out` is left as it was.
pub fn destinations(
    command: Command,
    attributes: &[u8],
    service_family: Family,
    out: &mut Vec<DestinationStatus>,
) -> Result<(), Error> {
    let start = out.len();
    let mut invalid = None;
    let walked = each_nest(command, attributes, CMD_ATTR_DEST, |nest| {
        let fields = destination_fields(nest)?;
        if invalid.is_none() {
            match fields.status(service_family) {
                Ok(destination) => out.push(destination),
                Err(e) => invalid = Some(e),
            }
        }
        Ok(())
    });
    let result = match (walked, invalid) {
        (Err(source), _) => Err(Error::Malformed {
            command: Command::GetDestination,
            source,
        }),
        (Ok(()), Some(source)) => Err(Error::Invalid {
            command: Command::GetDestination,
            source,
        }),
        (Ok(()), None) => Ok(()),
    };
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// The attributes of `bytes` as views: the whole attribute, its kind
/// (flags masked off) and its value. Stops at the first malformed one with
/// `NlasIterator`'s error; does what `NlasIterator` does, with the header
/// read once per attribute (`NlaBuffer`'s accessors each re-read and
/// re-check it, which made the iteration half of the decoding's cost).
fn each_attribute<'a>(
    bytes: &'a [u8],
    mut f: impl FnMut(&'a [u8], u16, &'a [u8]) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let mut rest = bytes;
    while !rest.is_empty() {
        let header = rest.first_chunk::<4>().map(|h| {
            let length = usize::from(u16::from_ne_bytes([h[0], h[1]]));
            (length, u16::from_ne_bytes([h[2], h[3]]) & NLA_TYPE_MASK)
        });
        let Some((length, kind)) = header.filter(|(length, _)| (4..=rest.len()).contains(length))
        else {
            return Err(NlaBuffer::new_checked(rest)
                .err()
                .unwrap_or_else(|| DecodeError::from("malformed attribute")));
        };
        let attribute = &rest[..length];
        f(attribute, kind, &attribute[4..])?;
        rest = rest.get((length + 3) & !3..).unwrap_or_default();
    }
    Ok(())
}

/// Call `f` with the value of every first-level attribute of kind `nest`;
/// every other attribute is checked as [`CommandAttribute`] checks it. In
/// the reply to `GET_INFO` (`SET_INFO`) the numbers mean other attributes.
fn each_nest<'a>(
    command: Command,
    attributes: &'a [u8],
    nest: u16,
    mut f: impl FnMut(&'a [u8]) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let info = command == Command::SetInfo;
    each_attribute(attributes, |attribute, kind, value| {
        if !info && kind == nest {
            f(value)
        } else {
            CommandAttribute::parse_in(&NlaBuffer::new(attribute), info).map(drop)
        }
    })
}

fn address_of<'a>(v: &'a [u8], what: &str) -> Result<&'a [u8], DecodeError> {
    if v.len() != 4 && v.len() != 16 {
        return Err(DecodeError::from(format!(
            "{what}: expected 4 or 16 bytes, got {}",
            v.len()
        )));
    }
    Ok(v)
}

/// A `STATS` or `STATS64` nest; `PAD` and unknown counters are skipped.
fn stats_of(nest: &[u8]) -> Result<Stats, DecodeError> {
    let mut stats = Stats::default();
    each_attribute(nest, |_, kind, value| {
        if (STATS_ATTR_CONNS..=STATS_ATTR_OUTBPS).contains(&kind) {
            stats.set(kind, Counter::parse(value)?.get());
        }
        Ok(())
    })?;
    Ok(stats)
}

fn service_fields(nest: &[u8]) -> Result<ServiceFields<'_>, DecodeError> {
    let mut s = ServiceFields::default();
    each_attribute(nest, |_, kind, v| {
        match kind {
            SVC_ATTR_AF => s.af = Some(u16_of(v, "IPVS_SVC_ATTR_AF")?),
            SVC_ATTR_PROTOCOL => s.protocol = Some(u16_of(v, "IPVS_SVC_ATTR_PROTOCOL")?),
            SVC_ATTR_ADDR => s.address = Some(address_of(v, "IPVS_SVC_ATTR_ADDR")?),
            SVC_ATTR_PORT => s.port = Some(be16_of(v, "IPVS_SVC_ATTR_PORT")?),
            SVC_ATTR_FWMARK => s.fwmark = Some(u32_of(v, "IPVS_SVC_ATTR_FWMARK")?),
            SVC_ATTR_SCHED_NAME => s.scheduler = Some(str_of(v, "IPVS_SVC_ATTR_SCHED_NAME")?),
            SVC_ATTR_FLAGS => {
                let raw = exact::<8>(v, "IPVS_SVC_ATTR_FLAGS")?;
                let flags = u32_of(&raw[..4], "IPVS_SVC_ATTR_FLAGS")?;
                let mask = u32_of(&raw[4..], "IPVS_SVC_ATTR_FLAGS")?;
                s.flags = Some(flags & mask);
            }
            SVC_ATTR_TIMEOUT => s.timeout = Some(u32_of(v, "IPVS_SVC_ATTR_TIMEOUT")?),
            SVC_ATTR_NETMASK => s.netmask(exact::<4>(v, "IPVS_SVC_ATTR_NETMASK")?),
            SVC_ATTR_STATS => s.stats(stats_of(v)?, false),
            SVC_ATTR_PE_NAME => s.persistence_engine = Some(str_of(v, "IPVS_SVC_ATTR_PE_NAME")?),
            SVC_ATTR_STATS64 => s.stats(stats_of(v)?, true),
            _ => {}
        }
        Ok(())
    })?;
    Ok(s)
}

fn destination_fields(nest: &[u8]) -> Result<DestinationFields<'_>, DecodeError> {
    let mut d = DestinationFields::default();
    each_attribute(nest, |_, kind, v| {
        match kind {
            DEST_ATTR_ADDR => d.address = Some(address_of(v, "IPVS_DEST_ATTR_ADDR")?),
            DEST_ATTR_PORT => d.port = Some(be16_of(v, "IPVS_DEST_ATTR_PORT")?),
            DEST_ATTR_FWD_METHOD => d.forwarding = Some(u32_of(v, "IPVS_DEST_ATTR_FWD_METHOD")?),
            DEST_ATTR_WEIGHT => d.weight = u32_of(v, "IPVS_DEST_ATTR_WEIGHT")?,
            DEST_ATTR_U_THRESH => d.upper_threshold = u32_of(v, "IPVS_DEST_ATTR_U_THRESH")?,
            DEST_ATTR_L_THRESH => d.lower_threshold = u32_of(v, "IPVS_DEST_ATTR_L_THRESH")?,
            DEST_ATTR_ACTIVE_CONNS => {
                d.active_connections = u32_of(v, "IPVS_DEST_ATTR_ACTIVE_CONNS")?
            }
            DEST_ATTR_INACT_CONNS => {
                d.inactive_connections = u32_of(v, "IPVS_DEST_ATTR_INACT_CONNS")?
            }
            DEST_ATTR_PERSIST_CONNS => {
                d.persistent_connections = u32_of(v, "IPVS_DEST_ATTR_PERSIST_CONNS")?
            }
            DEST_ATTR_STATS => d.stats(stats_of(v)?, false),
            DEST_ATTR_ADDR_FAMILY => d.af = Some(u16_of(v, "IPVS_DEST_ATTR_ADDR_FAMILY")?),
            DEST_ATTR_STATS64 => d.stats(stats_of(v)?, true),
            DEST_ATTR_TUN_TYPE => d.tunnel_type = u8_of(v, "IPVS_DEST_ATTR_TUN_TYPE")?,
            DEST_ATTR_TUN_PORT => d.tunnel_port = be16_of(v, "IPVS_DEST_ATTR_TUN_PORT")?,
            DEST_ATTR_TUN_FLAGS => d.tunnel_flags = u16_of(v, "IPVS_DEST_ATTR_TUN_FLAGS")?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(d)
}
