//! Linux IPVS over generic netlink: bindings for every command and attribute,
//! a declarative reconcile, and userspace versions of the kernel's schedulers.

pub mod sched;
