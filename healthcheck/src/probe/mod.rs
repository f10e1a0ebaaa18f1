//! The probes: one async function per checker kind, each bounded by the
//! checker's `connect_timeout` as a whole.

pub mod http;
pub(crate) mod socket;
pub(crate) mod tcp;
pub(crate) mod tls;

use crate::checker::Outcome;
use crate::config::{CheckKind, CheckSpec};
use crate::error::ProbeError;

/// Runs one probe for `spec` and returns its outcome. Never panics on
/// anything the peer sends, and never outlives the spec's timeout.
pub async fn run(spec: &CheckSpec) -> Outcome {
    let timeout = spec.connect.connect_timeout;
    match tokio::time::timeout(timeout, run_inner(spec)).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(error)) => Outcome::Failure(error),
        Err(_) => Outcome::Failure(ProbeError::Timeout(timeout)),
    }
}

async fn run_inner(spec: &CheckSpec) -> Result<Outcome, ProbeError> {
    let dst = spec.destination();
    match &spec.kind {
        CheckKind::Tcp => tcp::probe(dst, &spec.connect).await?,
        CheckKind::Http(http) => http::probe(dst, &spec.connect, http).await?,
        CheckKind::Ssl(ssl) => tls::probe(dst, &spec.connect, ssl).await?,
    }
    Ok(Outcome::Success { weight: None })
}
