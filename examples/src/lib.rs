//! Glue shared by the lvskit binaries: `lvskitd`, `lvskit-app` and
//! `lvskit-lab`. This is the only package that combines the four libraries.
//!
//! - [`app`]: the application-node role of LVS-DR (VIP on `lo` or an
//!   nftables redirect, ARP sysctls, an HTTP server that names itself).

pub mod app;
