//! The one place of this crate that needs `unsafe`.
//!
//! Sending a gratuitous ARP or an unsolicited NA on an `AF_PACKET` socket
//! needs a `struct sockaddr_ll` (packet(7)): neither socket2 nor nix offer a
//! safe constructor for it (nix's `LinkAddr` can only be read, socket2's
//! `SockAddr` only be built from raw storage). This module fills one in a
//! zeroed `sockaddr_storage`.
//!
//! tokio 1.54 made `AsyncFd::register` unsafe (its old safe constructor is
//! deprecated as unsound): the caller promises that the file descriptor
//! stays open and the same for the lifetime of the `AsyncFd`. A
//! `socket2::Socket` owns its descriptor and never changes it, which
//! [`register`] relies on.
#![allow(unsafe_code)]

use socket2::{SockAddr, SockAddrStorage, Socket, socklen_t};
use tokio::io::unix::AsyncFd;

/// A `sockaddr_ll` for `sendto(2)` on an `AF_PACKET` socket: the frame goes
/// out on interface `ifindex`, with EtherType `protocol` (host order) and
/// link-layer destination `destination`.
pub(crate) fn link_layer_address(ifindex: u32, protocol: u16, destination: [u8; 6]) -> SockAddr {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: `sockaddr_ll` is one of the `sockaddr_*` types of this
    // platform and is smaller than `sockaddr_storage` (checked by
    // `view_as`'s own assertion); the storage is zeroed, a valid value.
    let address = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    address.sll_family = libc::AF_PACKET as libc::sa_family_t;
    address.sll_protocol = protocol.to_be();
    address.sll_ifindex = ifindex as libc::c_int;
    address.sll_halen = 6;
    address.sll_addr[..6].copy_from_slice(&destination);
    let length = std::mem::size_of::<libc::sockaddr_ll>() as socklen_t;
    // SAFETY: the storage holds an initialised `sockaddr_ll` whose family
    // is AF_PACKET, and `length` is exactly its size.
    unsafe { SockAddr::new(storage, length) }
}

/// A file descriptor owner whose `as_raw_fd` is stable: it owns the
/// descriptor, closes it only on drop, and never swaps it.
pub(crate) trait OwnsFd: std::os::fd::AsRawFd {}
impl OwnsFd for Socket {}
impl OwnsFd for super::timer::OwnedTimerFd {}

/// Registers a socket or timerfd with the tokio reactor.
pub(crate) fn register<T: OwnsFd>(owner: T) -> std::io::Result<AsyncFd<T>> {
    // SAFETY: `OwnsFd` types own their file descriptor: it stays open until
    // the value is dropped, which happens only when the `AsyncFd` is, and
    // `as_raw_fd` always returns that same descriptor.
    unsafe { AsyncFd::register(owner) }.map_err(std::io::Error::from)
}
