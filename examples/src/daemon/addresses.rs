//! The addresses on this node, kept current from the kernel: a dump, then
//! the `RTNLGRP_IPV4_IFADDR`/`RTNLGRP_IPV6_IFADDR` events. `ha_suspend`
//! follows a virtual server's address through it.

use anyhow::{Context, Result, bail};
use futures::{StreamExt as _, TryStreamExt as _};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_core::NetlinkPayload;
use std::collections::HashSet;
use std::net::IpAddr;
use tokio::sync::watch;

/// Starts following the node's addresses; the receiver holds the current
/// set. The task ends with an error logged if the event socket fails, and
/// the set then stays as it was last seen.
pub async fn watch_local() -> Result<watch::Receiver<HashSet<IpAddr>>> {
    use rtnetlink::MulticastGroup;
    let (connection, handle, mut messages) = rtnetlink::new_multicast_connection(&[
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
    ])
    .context("rtnetlink address events")?;
    tokio::spawn(connection);
    // (interface, address): the same address may sit on two interfaces.
    let mut present: HashSet<(u32, IpAddr)> = HashSet::new();
    let mut dump = handle.address().get().execute();
    while let Some(message) = dump.try_next().await.context("address dump")? {
        if let Some(key) = address_key(&message) {
            present.insert(key);
        }
    }
    let addresses = |present: &HashSet<(u32, IpAddr)>| present.iter().map(|(_, ip)| *ip).collect();
    let (sender, receiver) = watch::channel(addresses(&present));
    tokio::spawn(async move {
        let result: Result<()> = async {
            while let Some((message, _)) = messages.next().await {
                match message.payload {
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(m)) => {
                        present.extend(address_key(&m));
                    }
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(m)) => {
                        if let Some(key) = address_key(&m) {
                            present.remove(&key);
                        }
                    }
                    _ => continue,
                }
                let now: HashSet<IpAddr> = addresses(&present);
                sender.send_if_modified(|seen| {
                    let changed = *seen != now;
                    *seen = now;
                    changed
                });
                if sender.is_closed() {
                    return Ok(());
                }
            }
            bail!("the address event socket closed")
        }
        .await;
        if let Err(e) = result {
            tracing::error!("local address watcher: {e:#}");
        }
    });
    Ok(receiver)
}

/// (interface index, local address) of an address message.
pub fn address_key(message: &AddressMessage) -> Option<(u32, IpAddr)> {
    let local = message.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let address = message.attributes.iter().find_map(|a| match a {
        AddressAttribute::Address(ip) => Some(*ip),
        _ => None,
    });
    Some((message.header.index, local.or(address)?))
}
