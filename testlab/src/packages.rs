//! The Debian packages the lab needs, installed on demand with `apt-get`.
//!
//! Both the test command (`lvskit-test`) and `lvskit-lab run` call
//! [`ensure_installed`] first, so that a fresh Debian machine needs nothing
//! beyond the command itself.

use anyhow::{Result, bail};
use std::process::{Command, Stdio};

/// Everything the three test tiers and the lb1/lb2 lab use: qemu and the
/// initramfs tools for the stock-kernel VM, iproute2 and nftables for the
/// namespaces, Debian's keepalived and ipvsadm as peers and witnesses,
/// tshark for a second opinion on packet bytes, ping, and dnsmasq as a real
/// DNS server for the health checks. The tests that build trixie's
/// keepalived install [`KEEPALIVED_BUILD`] when they first need it.
pub const LAB: &[&str] = &[
    "qemu-system-x86",
    "busybox-static",
    "kmod",
    "cpio",
    "iproute2",
    "nftables",
    "ipvsadm",
    "keepalived",
    "tshark",
    "iputils-ping",
    "dnsmasq-base",
];

/// What [`crate::keepalived::trixie_build`] needs to fetch and build
/// keepalived's VRRP-only configuration: curl, a C toolchain, OpenSSL's
/// headers (keepalived links libcrypto) and pkg-config.
pub const KEEPALIVED_BUILD: &[&str] = &[
    "curl",
    "gcc",
    "make",
    "libc6-dev",
    "libssl-dev",
    "pkg-config",
];

/// Whether dpkg knows `package` as installed.
pub fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Status}", package])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout == b"installed")
}

/// Installs whichever of `packages` are missing (as root, non-interactive),
/// running `apt-get update` first when there are no package lists, and once
/// more if the install fails on stale lists.
///
/// Inside the lab's VM (`LVSKIT_IN_VM` set) it does nothing: the initramfs
/// carries its tools and has no package manager.
pub fn ensure_installed(packages: &[&str]) -> Result<()> {
    if crate::vm::in_vm() {
        return Ok(());
    }
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !is_installed(p))
        .collect();
    if missing.is_empty() {
        println!(
            "lvskit: all {} Debian packages are installed",
            packages.len()
        );
        return Ok(());
    }
    if !crate::is_root() {
        bail!(
            "missing Debian packages ({}); run as root to install them",
            missing.join(" ")
        );
    }
    let mut install = vec!["install", "-y", "-q", "--no-install-recommends"];
    install.extend(&missing);
    if lists_are_empty() {
        apt_get(&["update", "-q"])?;
    }
    if !apt_get(&install)? {
        // Stale package lists are the usual cause.
        apt_get(&["update", "-q"])?;
        if !apt_get(&install)? {
            bail!("cannot install {}", missing.join(" "));
        }
    }
    Ok(())
}

fn apt_get(args: &[&str]) -> Result<bool> {
    println!("lvskit: apt-get {}", args.join(" "));
    Ok(Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .status()
        .map_err(|e| anyhow::anyhow!("run apt-get: {e}"))?
        .success())
}

fn lists_are_empty() -> bool {
    std::fs::read_dir("/var/lib/apt/lists").map_or(true, |dir| {
        !dir.flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with("_Packages"))
    })
}
