//! Interfaces, addresses and links over rtnetlink (rtnetlink(7)).
//!
//! Everything here goes through the `rtnetlink` crate: interface lookup,
//! the choice of the advertisement source address, adding and removing the
//! virtual addresses, the VMAC macvlan, and the link up/down events.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::StreamExt;
use futures::channel::mpsc::UnboundedReceiver;
use netlink_packet_core::NetlinkMessage;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, MacVlanMode};
use netlink_sys::{AsyncSocket, SocketAddr};
use rtnetlink::{Handle, LinkMacVlan, LinkUnspec};

use super::Error;
use crate::{Scope, VirtualAddress};

/// What the driver needs to know about one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The kernel's interface index.
    pub index: u32,
    /// The interface name.
    pub name: String,
    /// Its MAC address (all zeros when it has none).
    pub mac: [u8; 6],
    /// Whether it is administratively up and has carrier (IFF_UP and
    /// IFF_RUNNING).
    pub up: bool,
}

/// A link state change seen on the rtnetlink link group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkEvent {
    /// The interface index.
    pub index: u32,
    /// Whether the interface is now up and running; `false` also when it
    /// was deleted.
    pub up: bool,
}

/// An rtnetlink connection (its driver task runs on the tokio runtime).
#[derive(Debug, Clone)]
pub struct Netlink {
    handle: Handle,
}

fn netlink(operation: &'static str) -> impl FnOnce(rtnetlink::Error) -> Error {
    move |error| match error {
        rtnetlink::Error::NetlinkError(message) => Error::Netlink {
            operation,
            errno: -message.raw_code(),
        },
        other => Error::NetlinkProtocol {
            operation,
            message: other.to_string(),
        },
    }
}

fn errno_of(error: &Error) -> Option<i32> {
    match error {
        Error::Netlink { errno, .. } => Some(*errno),
        _ => None,
    }
}

impl Netlink {
    /// Opens a connection and spawns its task on the current runtime.
    pub fn open() -> Result<Self, Error> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(|source| Error::Io {
            operation: "open rtnetlink",
            source,
        })?;
        tokio::spawn(connection);
        Ok(Self { handle })
    }

    /// Looks an interface up by name.
    pub async fn interface(&self, name: &str) -> Result<Interface, Error> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.next().await {
            Some(Ok(message)) => Ok(interface_of(&message)),
            Some(Err(rtnetlink::Error::NetlinkError(m))) if -m.raw_code() == libc::ENODEV => {
                Err(Error::NoSuchInterface(name.to_string()))
            }
            Some(Err(error)) => Err(netlink("RTM_GETLINK")(error)),
            None => Err(Error::NoSuchInterface(name.to_string())),
        }
    }

    /// Looks an interface up by index.
    pub async fn interface_by_index(&self, index: u32) -> Result<Interface, Error> {
        let mut links = self.handle.link().get().match_index(index).execute();
        match links.next().await {
            Some(Ok(message)) => Ok(interface_of(&message)),
            Some(Err(error)) => Err(netlink("RTM_GETLINK")(error)),
            None => Err(Error::NoSuchInterface(index.to_string())),
        }
    }

    async fn addresses(&self, index: u32) -> Result<Vec<AddressMessage>, Error> {
        let mut stream = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let mut out = Vec::new();
        while let Some(message) = stream.next().await {
            out.push(message.map_err(netlink("RTM_GETADDR"))?);
        }
        Ok(out)
    }

    /// The interface's primary IPv4 address: the first address that is not
    /// flagged secondary, skipping `exclude` (the VIPs, should a previous
    /// run have left them). This is the source of IPv4 adverts (RFC 5798
    /// §5.1.1.1: "the primary IPv4 address of the interface").
    pub async fn primary_v4(
        &self,
        index: u32,
        exclude: &[IpAddr],
    ) -> Result<Option<Ipv4Addr>, Error> {
        for message in self.addresses(index).await? {
            if message.header.flags.contains(AddressHeaderFlags::Secondary) {
                continue;
            }
            if let Some(IpAddr::V4(address)) = local_address(&message)
                && !exclude.contains(&IpAddr::V4(address))
            {
                return Ok(Some(address));
            }
        }
        Ok(None)
    }

    /// The interface's IPv6 link-local address that has finished duplicate
    /// address detection: the source of IPv6 adverts (RFC 5798 §5.1.2.1).
    pub async fn link_local_v6(&self, index: u32) -> Result<Option<Ipv6Addr>, Error> {
        for message in self.addresses(index).await? {
            let tentative = message.header.flags.contains(AddressHeaderFlags::Tentative)
                || address_flags(&message).is_some_and(|f| f.contains(AddressFlags::Tentative));
            if let Some(IpAddr::V6(address)) = local_address(&message)
                && super::socket::is_link_local(&address)
                && !tentative
            {
                return Ok(Some(address));
            }
        }
        Ok(None)
    }

    /// Whether `address` is configured on interface `index`.
    pub async fn has_address(&self, index: u32, address: IpAddr) -> Result<bool, Error> {
        Ok(self
            .addresses(index)
            .await?
            .iter()
            .any(|m| local_address(m) == Some(address)))
    }

    /// Adds a virtual address (`ip addr add`). IPv6 addresses get
    /// IFA_F_NODAD so that they are usable at once, as a VIP that moves
    /// between routers must be. An address that is already there is not
    /// an error.
    pub async fn add_address(&self, index: u32, vip: &VirtualAddress) -> Result<(), Error> {
        let mut request = self
            .handle
            .address()
            .add(index, vip.address, vip.prefix_len);
        let message = request.message_mut();
        message.header.scope = address_scope(vip.scope);
        if vip.address.is_ipv6() {
            message.header.flags |= AddressHeaderFlags::Nodad;
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        } else if let Some(label) = &vip.label {
            message
                .attributes
                .push(AddressAttribute::Label(label.clone()));
        }
        match request.execute().await.map_err(netlink("RTM_NEWADDR")) {
            Err(error) if errno_of(&error) == Some(libc::EEXIST) => Ok(()),
            other => other,
        }
    }

    /// Removes a virtual address (`ip addr del`). An address that is not
    /// there is not an error.
    pub async fn delete_address(&self, index: u32, vip: &VirtualAddress) -> Result<(), Error> {
        let mut message = AddressMessage::default();
        message.header.family = match vip.address {
            IpAddr::V4(_) => netlink_packet_route::AddressFamily::Inet,
            IpAddr::V6(_) => netlink_packet_route::AddressFamily::Inet6,
        };
        message.header.index = index;
        message.header.prefix_len = vip.prefix_len;
        if vip.address.is_ipv4() {
            message
                .attributes
                .push(AddressAttribute::Local(vip.address));
        }
        message
            .attributes
            .push(AddressAttribute::Address(vip.address));
        match self
            .handle
            .address()
            .del(message)
            .execute()
            .await
            .map_err(netlink("RTM_DELADDR"))
        {
            Err(error)
                if matches!(
                    errno_of(&error),
                    Some(libc::EADDRNOTAVAIL | libc::ENOENT | libc::ENODEV)
                ) =>
            {
                Ok(())
            }
            other => other,
        }
    }

    /// Creates the VMAC interface of `use_vmac`: a macvlan on `parent` in
    /// private mode whose MAC is the virtual router MAC 00:00:5e:00:01:VRID
    /// (RFC 5798 §7.3), and brings it up. Returns its index. A leftover
    /// interface of the same name is deleted first.
    pub async fn create_vmac(&self, parent: u32, name: &str, mac: [u8; 6]) -> Result<u32, Error> {
        if let Ok(old) = self.interface(name).await {
            self.delete_link(old.index).await?;
        }
        let message = LinkMacVlan::new(name, parent, MacVlanMode::Private)
            .address(mac.to_vec())
            .up()
            .build();
        self.handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(netlink("RTM_NEWLINK macvlan"))?;
        Ok(self.interface(name).await?.index)
    }

    /// Gives interface `index` the link-local `address` (/64, no DAD) as
    /// its only link-local address: the one the kernel derived from the
    /// MAC is removed. An IPv6 VMAC carries its parent's link-local address
    /// this way, so that adverts sent on it keep the instance's source, and
    /// the VMACs of one VRID on two routers (the same MAC, so the same
    /// derived address) do not collide.
    pub async fn set_link_local(&self, index: u32, address: Ipv6Addr) -> Result<(), Error> {
        for message in self.addresses(index).await? {
            if let Some(IpAddr::V6(other)) = local_address(&message)
                && super::socket::is_link_local(&other)
                && other != address
            {
                let vip =
                    VirtualAddress::new(other.into()).with_prefix_len(message.header.prefix_len);
                self.delete_address(index, &vip).await?;
            }
        }
        let own = VirtualAddress::new(address.into()).with_prefix_len(64);
        self.add_address(index, &own).await
    }

    /// Deletes a link (the VMAC on shutdown).
    pub async fn delete_link(&self, index: u32) -> Result<(), Error> {
        match self
            .handle
            .link()
            .del(index)
            .execute()
            .await
            .map_err(netlink("RTM_DELLINK"))
        {
            Err(error) if errno_of(&error) == Some(libc::ENODEV) => Ok(()),
            other => other,
        }
    }

    /// Sets a link administratively up or down (used by tests and by
    /// `use_vmac`).
    pub async fn set_link_up(&self, index: u32, up: bool) -> Result<(), Error> {
        let builder = LinkUnspec::new_with_index(index);
        let message = if up { builder.up() } else { builder.down() }.build();
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(netlink("RTM_SETLINK"))
    }
}

fn address_scope(scope: Scope) -> AddressScope {
    match scope {
        Scope::Global => AddressScope::Universe,
        Scope::Site => AddressScope::Site,
        Scope::Link => AddressScope::Link,
        Scope::Host => AddressScope::Host,
        Scope::Other(value) => AddressScope::from(value),
    }
}

fn local_address(message: &AddressMessage) -> Option<IpAddr> {
    let mut address = None;
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(ip) => return Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            _ => {}
        }
    }
    address
}

fn address_flags(message: &AddressMessage) -> Option<AddressFlags> {
    message.attributes.iter().find_map(|a| match a {
        AddressAttribute::Flags(flags) => Some(*flags),
        _ => None,
    })
}

fn interface_of(message: &LinkMessage) -> Interface {
    let mut name = String::new();
    let mut mac = [0u8; 6];
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::IfName(n) => name = n.clone(),
            LinkAttribute::Address(bytes) if bytes.len() == 6 => mac.copy_from_slice(bytes),
            _ => {}
        }
    }
    let flags = message.header.flags;
    Interface {
        index: message.header.index,
        name,
        mac,
        up: flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::Running),
    }
}

/// A subscription to rtnetlink link events (RTMGRP_LINK), which is how the
/// driver learns that an interface went down or came back (keepalived
/// does the same rather than polling).
#[derive(Debug)]
pub struct LinkWatcher {
    messages: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
}

impl LinkWatcher {
    /// Subscribes; spawns the connection task on the current runtime.
    pub fn open() -> Result<Self, Error> {
        let (mut connection, _, messages) =
            rtnetlink::new_connection().map_err(|source| Error::Io {
                operation: "open rtnetlink",
                source,
            })?;
        connection
            .socket_mut()
            .socket_mut()
            .bind(&SocketAddr::new(0, rtnetlink::constants::RTMGRP_LINK))
            .map_err(|source| Error::Io {
                operation: "bind RTMGRP_LINK",
                source,
            })?;
        tokio::spawn(connection);
        Ok(Self { messages })
    }

    /// The next link event; `None` if the connection closed.
    pub async fn next(&mut self) -> Option<LinkEvent> {
        while let Some((message, _)) = self.messages.next().await {
            if let netlink_packet_core::NetlinkPayload::InnerMessage(inner) = message.payload {
                match inner {
                    RouteNetlinkMessage::NewLink(link) => {
                        let interface = interface_of(&link);
                        return Some(LinkEvent {
                            index: interface.index,
                            up: interface.up,
                        });
                    }
                    RouteNetlinkMessage::DelLink(link) => {
                        return Some(LinkEvent {
                            index: link.header.index,
                            up: false,
                        });
                    }
                    _ => {}
                }
            }
        }
        None
    }
}
