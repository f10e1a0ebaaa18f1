//! The probes: one async function per checker kind, each bounded by the
//! checker's `connect_timeout` as a whole.

pub mod dns;
pub mod file;
pub mod http;
pub mod misc;
pub(crate) mod ping;
pub mod smtp;
pub(crate) mod socket;
pub(crate) mod tcp;
pub(crate) mod tls;
pub(crate) mod udp;

use crate::checker::Outcome;
use crate::config::{CheckKind, CheckSpec};
use crate::error::ProbeError;

/// Runs one probe for `spec` and returns its outcome. Never panics on
/// anything the peer sends, and never outlives the spec's timeout.
pub async fn run(spec: &CheckSpec) -> Outcome {
    let timeout = match &spec.kind {
        // A script has its own timeout; give the kill a moment past it.
        CheckKind::Misc(misc) => misc.timeout + std::time::Duration::from_secs(1),
        _ => spec.connect.connect_timeout,
    };
    match tokio::time::timeout(timeout, run_inner(spec)).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(error)) => Outcome::Failure(error),
        Err(_) => Outcome::Failure(ProbeError::Timeout(timeout)),
    }
}

async fn run_inner(spec: &CheckSpec) -> Result<Outcome, ProbeError> {
    let dst = spec.destination();
    // Every check spawns this future, so its size is copied once per check.
    // The probes other than TCP_CHECK hold kilobytes of state (hyper,
    // rustls, hickory); boxing them keeps the common TCP_CHECK task small,
    // and one allocation is cheap next to their exchanges.
    match &spec.kind {
        CheckKind::Tcp => tcp::probe(dst, &spec.connect).await?,
        CheckKind::Http(http) => Box::pin(http::probe(dst, &spec.connect, http)).await?,
        CheckKind::Ssl(ssl) => Box::pin(tls::probe(dst, &spec.connect, ssl)).await?,
        CheckKind::Smtp(smtp) => Box::pin(smtp::probe(dst, &spec.connect, smtp)).await?,
        CheckKind::Dns(dns) => Box::pin(dns::probe(dst, &spec.connect, dns)).await?,
        CheckKind::Udp(udp) => {
            let timeout = spec.connect.connect_timeout;
            Box::pin(udp::probe(dst, &spec.connect, udp, timeout)).await?
        }
        CheckKind::Ping => Box::pin(ping::probe(dst, &spec.connect)).await?,
        CheckKind::Misc(misc) => return Ok(Box::pin(misc::probe(misc)).await),
        CheckKind::File(file) => return Ok(Box::pin(file::probe(file)).await),
    }
    Ok(Outcome::Success { weight: None })
}
