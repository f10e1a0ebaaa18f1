//! Typed errors: configuration errors and the reasons a probe fails.

use std::io;
use std::time::Duration;

/// A bad value in a checker's configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A `status_code` item is not a code or range of codes in 100..=599.
    #[error("invalid status_code {0:?}: expected codes or ranges in 100-599")]
    StatusCode(String),
    /// A `digest` is not 32 hexadecimal digits.
    #[error("invalid digest {0:?}: expected 32 hexadecimal digits")]
    Digest(String),
    /// A DNS query type is unknown.
    #[error("unknown DNS query type {0:?}")]
    DnsType(String),
    /// A DNS name is malformed.
    #[error("invalid DNS name {0:?}")]
    DnsName(String),
}

/// An I/O failure, kept as data (kind and errno) so reasons can be cloned
/// and compared.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {kind}{}", errno.map(|e| format!(" (errno {e})")).unwrap_or_default())]
pub struct IoFailure {
    /// What was being done: `connect`, `bind`, `read`, ...
    pub op: &'static str,
    /// The error kind.
    pub kind: io::ErrorKind,
    /// The OS errno, when there is one.
    pub errno: Option<i32>,
}

impl IoFailure {
    pub(crate) fn new(op: &'static str, err: &io::Error) -> IoFailure {
        IoFailure {
            op,
            kind: err.kind(),
            errno: err.raw_os_error(),
        }
    }
}

/// Why a probe failed. Every probe ends in success or in one of these.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The probe did not complete within `connect_timeout`.
    #[error("timeout after {0:?}")]
    Timeout(Duration),
    /// The server refused the connection (TCP RST, or ICMP port unreachable
    /// for UDP).
    #[error("connection refused")]
    Refused,
    /// A socket operation failed.
    #[error(transparent)]
    Io(#[from] IoFailure),
    /// The HTTP exchange failed (malformed response, reset, oversized head).
    #[error("HTTP error: {0}")]
    Http(String),
    /// The HTTP status code is not in the accepted set.
    #[error("HTTP status code {code} for {path} not accepted")]
    Status {
        /// The status code received.
        code: u16,
        /// The url path.
        path: String,
    },
    /// The MD5 of the body is not the expected one.
    #[error("MD5 digest mismatch for {path}: got {got}")]
    Digest {
        /// The url path.
        path: String,
        /// The digest computed, in hex.
        got: String,
    },
    /// The TLS handshake or record layer failed.
    #[error("TLS error: {0}")]
    Tls(String),
    /// The SMTP server answered with an unexpected reply.
    #[error("SMTP {stage}: unexpected reply {reply:?}")]
    Smtp {
        /// Which step: banner, HELO, QUIT.
        stage: &'static str,
        /// The first line of the reply, truncated.
        reply: String,
    },
    /// The DNS reply is malformed or reports an error.
    #[error("DNS: {0}")]
    Dns(String),
    /// The UDP reply is missing, too short, too long or wrong.
    #[error("UDP reply: {0}")]
    UdpReply(String),
    /// The ICMP echo failed.
    #[error("ICMP: {0}")]
    Icmp(String),
    /// The script exited with a failing status.
    #[error("script exited with status {0}")]
    ScriptExit(i32),
    /// The script was killed by a signal.
    #[error("script killed by signal {0}")]
    ScriptSignal(i32),
    /// The script ran past its timeout and was killed.
    #[error("script timed out after {0:?}")]
    ScriptTimeout(Duration),
    /// The tracked file could not be read or holds no integer.
    #[error("file check: {0}")]
    File(String),
    /// The probe task panicked (with this message); the runner counts it
    /// as a failed probe and keeps the checker scheduled.
    #[error("probe panicked: {0}")]
    Panicked(String),
}
