//! Glue shared by the lvskit binaries: `lvskitd`, `lvskit-app` and
//! `lvskit-lab`. This is the only package that combines the four libraries.
//!
//! - [`app`]: the application-node role of LVS-DR (VIP on `lo` or an
//!   nftables redirect, ARP sysctls, an HTTP server that names itself);
//! - [`daemon`]: `lvskitd`, keepalived.conf driving VRRP, checks and IPVS;
//! - [`lab`]: the lb1/lb2 scenario of `lvskit-lab run`.

pub mod app;
pub mod daemon;
pub mod lab;

/// The README's library examples, compiled and run as doctests so that they
/// stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;
