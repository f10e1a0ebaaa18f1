//! FILE_CHECK: the file holds an integer. With a weight factor of 0, any
//! non-zero value means down; otherwise the weight moves by
//! `value × weight` (negated with `reverse`), and a move at or below −254
//! (keepalived's `IPVS_WEIGHT_FAULT`) means down.

use crate::checker::{DynamicWeight, Outcome};
use crate::config::FileCheck;
use crate::error::ProbeError;

/// keepalived's threshold for a fault weight.
pub const WEIGHT_FAULT: i64 = -254;

/// Judges the file's content.
pub fn judge_content(content: &str, check: &FileCheck) -> Outcome {
    let value: i64 = match content.split_whitespace().next().map(str::parse) {
        Some(Ok(v)) => v,
        _ => {
            return Outcome::Failure(ProbeError::File(format!(
                "no integer in {:?}",
                truncate(content)
            )));
        }
    };
    if check.weight == 0 {
        return if value == 0 {
            Outcome::Success { weight: None }
        } else {
            Outcome::Failure(ProbeError::File(format!("value {value}")))
        };
    }
    let delta = value
        .saturating_mul(check.weight as i64)
        .saturating_mul(if check.reverse { -1 } else { 1 });
    if delta <= WEIGHT_FAULT {
        return Outcome::Failure(ProbeError::File(format!(
            "value {value} gives weight change {delta}"
        )));
    }
    Outcome::Success {
        weight: Some(DynamicWeight::Offset(delta)),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(32).collect()
}

/// The FILE_CHECK probe: reads at most 64 bytes.
pub(crate) async fn probe(check: &FileCheck) -> Outcome {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::with_capacity(64);
    let read = async {
        let file = tokio::fs::File::open(&check.path).await?;
        file.take(64).read_to_end(&mut buf).await
    };
    match read.await {
        Ok(_) => judge_content(&String::from_utf8_lossy(&buf), check),
        Err(e) => Outcome::Failure(ProbeError::File(format!("{}: {e}", check.path.display()))),
    }
}
