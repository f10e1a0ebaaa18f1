//! Errors of the IPVS handles.

use std::io;

use netlink_packet_core::DecodeError;
pub use nix::errno::Errno;

use crate::model::ModelError;
use crate::netlink::Command;

/// Everything an IPVS operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The generic-netlink family "IPVS" is not registered: the `ip_vs`
    /// module is not loaded (or not built) in this kernel, or this network
    /// namespace cannot see it. Load it with `modprobe ip_vs`, or open the
    /// handle with [`crate::OpenOptions::load_module`].
    #[error(
        "IPVS is not available: generic netlink family \"IPVS\" is not registered (is the ip_vs module loaded?)"
    )]
    NotAvailable,
    /// The kernel refused a request. `errno` carries the meaning:
    /// `EEXIST` (already exists), `ESRCH` (no such service), `ENOENT` (no
    /// such destination, scheduler or persistence engine), `EPERM` (needs
    /// `CAP_NET_ADMIN`), `EINVAL`, `EBUSY`, ….
    #[error("IPVS {command:?} failed: {errno} ({})", errno.desc())]
    Kernel {
        /// The command that failed.
        command: Command,
        /// The kernel's errno.
        errno: Errno,
    },
    /// The generic-netlink controller refused the family lookup.
    #[error("looking up the IPVS generic netlink family failed: {0}")]
    FamilyLookup(Errno),
    /// A socket operation failed.
    #[error("netlink socket: {0}")]
    Io(#[from] io::Error),
    /// The socket could not be opened in the requested network namespace.
    #[error("entering network namespace {path}: {source}")]
    Namespace {
        /// The namespace file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// A reply did not decode as netlink.
    #[error("malformed netlink reply to {command:?}: {source}")]
    Malformed {
        /// The command whose reply was malformed.
        command: Command,
        /// The decoder's error.
        source: DecodeError,
    },
    /// A reply decoded but does not describe a valid object.
    #[error("invalid reply to {command:?}: {source}")]
    Invalid {
        /// The command whose reply was invalid.
        command: Command,
        /// What is wrong.
        source: ModelError,
    },
    /// A dump was interrupted (`NLM_F_DUMP_INTR`) on every attempt.
    #[error("IPVS {command:?} dump was interrupted {attempts} times in a row")]
    DumpInterrupted {
        /// The dump command.
        command: Command,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The socket's receive queue overflowed (`ENOBUFS`) and this request's
    /// acknowledgement was lost: the kernel may or may not have applied it.
    #[error("acknowledgement of IPVS {command:?} lost to a receive-buffer overrun")]
    AckLost {
        /// The command whose acknowledgement was lost.
        command: Command,
    },
    /// No reply arrived within the handle's receive timeout (`EAGAIN`).
    #[error("no reply from the kernel within the receive timeout")]
    Timeout,
    /// The desired state is inconsistent.
    #[error(transparent)]
    Desired(#[from] crate::reconcile::DesiredError),
    /// The kernel's reply did not contain what the command returns.
    #[error("reply to IPVS {0:?} lacks the expected attribute")]
    MissingReply(Command),
}

impl Error {
    /// The kernel's errno, if the kernel refused the request.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Kernel { errno, .. } | Error::FamilyLookup(errno) => Some(*errno),
            Error::Io(e) => e.raw_os_error().map(Errno::from_raw),
            _ => None,
        }
    }

    /// The object already exists (`EEXIST`).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(Errno::EEXIST)
    }

    /// No such service (`ESRCH`) or no such destination (`ENOENT`).
    pub fn is_not_found(&self) -> bool {
        matches!(self.errno(), Some(Errno::ESRCH) | Some(Errno::ENOENT))
    }

    /// The caller lacks `CAP_NET_ADMIN` (`EPERM`).
    pub fn is_permission(&self) -> bool {
        self.errno() == Some(Errno::EPERM)
    }
}
