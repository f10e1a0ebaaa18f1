//! The lvskit test lab: real network namespaces, fault injection, packet
//! capture, Debian's keepalived as a peer, and a runner that boots Debian's
//! stock kernel under qemu.
//!
//! Every crate of the workspace proves itself against the real thing. Tests
//! are sorted into three tiers by name (the `lvskit-test` runner relies on
//! it):
//!
//! | tier | test name | runs where | needs |
//! |---|---|---|---|
//! | 1 | anything else | anywhere | nothing |
//! | 2 | `netns_*` | network namespaces on the host | root, `ip`, `nft` |
//! | 3 | `vm_*` | inside a qemu VM on Debian's stock kernel | root, qemu |
//!
//! # A two-node lab
//!
//! ```no_run
//! use lvskit_testlab::{require_root, Lab};
//!
//! # fn main() -> anyhow::Result<()> {
//! require_root();
//! let lab = Lab::new()?; // unique prefix, e.g. `lvsk4711x3`
//! let lan = lab.bridge("lan")?; // a bridge in the lab's own switch namespace
//! let a = lab.node("a")?; // a namespace with `lo` up
//! let b = lab.node("b")?;
//! let port_a = lab.connect(&a, "eth0", &lan)?; // veth: `eth0` in a, a port on `lan`
//! lab.connect(&b, "eth0", &lan)?;
//! a.add_addr("eth0", "10.0.0.1/24")?;
//! b.add_addr("eth0", "10.0.0.2/24")?;
//! let link_local = b.link_local("eth0")?; // usable at once: DAD is off
//!
//! a.run(["ping", "-c", "1", "-W", "2", "10.0.0.2"])?; // fails the test on non-zero exit
//! let out = a.exec(["ping", "-c", "1", "-W", "1", "10.0.0.3"])?; // any exit status
//! assert!(!out.status.success());
//!
//! let capture = lab.capture(&lan)?; // frames as they enter the bridge, kernel timestamps
//! let loss = lab.loss(&port_a, 30)?; // 30 % of the frames a sends are dropped
//! let server = b.spawn("server", ["sleep", "60"])?; // killed on drop, output in the lab dir
//! drop(loss); // fault removed
//! let frames = capture.stop();
//! # let _ = (link_local, server, frames);
//! # Ok(())
//! # }
//! // Dropping `lab` kills every process in its namespaces and deletes them.
//! ```
//!
//! # Debian's keepalived as a peer
//!
//! ```no_run
//! use lvskit_testlab::keepalived::{Keepalived, VrrpInstance};
//! use std::time::Duration;
//! # fn main() -> anyhow::Result<()> {
//! # let lab = lvskit_testlab::Lab::new()?;
//! # let node = lab.node("lb1")?;
//! let config = VrrpInstance::new("VI_1", "eth0", 51, 100)
//!     .vip("10.0.0.100/24")
//!     .config();
//! let mut ka = Keepalived::start(&node, "lb1", &config)?;
//! ka.wait_for_log("Entering MASTER STATE", Duration::from_secs(10))?;
//! ka.kill(); // SIGKILL to the whole process group: no priority-0 advert
//! # Ok(())
//! # }
//! ```
//!
//! # A test that runs inside the VM
//!
//! ```no_run
//! #[test]
//! fn vm_ipvs_service() {
//!     lvskit_testlab::vm::run_test_in_vm(|| {
//!         // Inside the VM, as root, on Debian's kernel with ip_vs.
//!         let out = std::process::Command::new("/usr/sbin/ipvsadm").arg("-Ln").output()?;
//!         anyhow::ensure!(out.status.success());
//!         Ok(())
//!     });
//! }
//! ```
//!
//! See [`vm`] for what is in the VM and how to add binaries
//! ([`vm::Vm::binary`]) or run a plain command ([`vm::Vm::run`]).
//!
//! # Guarantees
//!
//! - Names never collide between parallel tests or parallel runs: every
//!   [`Lab`] has a prefix made of the process id and a per-process counter,
//!   and interface names stay inside the lab's own namespaces.
//! - Nothing touches the host's network: bridges live in a switch namespace
//!   of the lab, not on the host.
//! - Cleanup runs on drop, also while unwinding from a panic. A run that was
//!   killed leaves namespaces, processes and VMs behind; the next [`Lab::new`]
//!   or VM start reaps those whose owning process is dead.
//! - Commands are Debian's own tools (`ip`, `nft`, `keepalived`, `qemu`); the
//!   lab adds no mock.

pub mod capture;
mod cpio;
pub mod fault;
pub mod keepalived;
mod netns;
pub mod packages;
mod process;
pub mod reap;
pub mod vm;

pub use capture::{Capture, Frame};
pub use fault::Fault;
pub use netns::{Bridge, Lab, MAX_IFNAME_LEN, Node, Port};
pub use process::{Output, Process};

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Fails the calling test with a clear message unless it runs as root.
///
/// Call it first in every `netns_` and `vm_` test. The `lvskit-test` runner
/// only starts those tiers as root, so this fires only when such a test is
/// started by hand.
///
/// # Panics
///
/// When the effective uid is not 0.
pub fn require_root() {
    assert!(
        is_root(),
        "this test needs root (network namespaces, nftables, qemu): run it as root, \
         or run the whole suite with `cargo run -p lvskit-testlab --bin lvskit-test`, \
         which skips the tiers it cannot run"
    );
}
