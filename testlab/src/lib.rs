//! The lvskit test lab: network namespaces, fault injection, packet capture
//! and a runner that boots Debian's stock kernel under qemu.
