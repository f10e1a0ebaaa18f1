//! MISC_CHECK: run a program; exit 0 is success. With `misc_dynamic`,
//! exit codes 2..=255 are successes that set the weight to code − 2 and 1
//! is a failure (keepalived's check_misc.c rules). The program runs as the
//! configured uid/gid (std's `CommandExt::uid`/`gid`), is killed at its
//! timeout, and never inherits our stdin/stdout.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::checker::{DynamicWeight, Outcome};
use crate::config::MiscCheck;
use crate::error::{IoFailure, ProbeError};

/// Maps an exit status to an outcome under keepalived's rules.
pub fn judge_exit(code: Option<i32>, signal: Option<i32>, dynamic: bool) -> Outcome {
    match (code, signal) {
        (Some(0), _) => Outcome::Success { weight: None },
        (Some(c), _) if dynamic && (2..=255).contains(&c) => Outcome::Success {
            weight: Some(DynamicWeight::Absolute((c - 2) as u32)),
        },
        (Some(c), _) => Outcome::Failure(ProbeError::ScriptExit(c)),
        (None, Some(s)) => Outcome::Failure(ProbeError::ScriptSignal(s)),
        (None, None) => Outcome::Failure(ProbeError::ScriptExit(-1)),
    }
}

/// The MISC_CHECK probe.
pub(crate) async fn probe(check: &MiscCheck) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    let mut command = Command::new(&check.program);
    command
        .args(&check.args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if let Some((uid, gid)) = check.user {
        command.uid(uid).gid(gid);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return Outcome::Failure(ProbeError::Io(IoFailure::new("spawn", &e))),
    };
    let timeout = if check.timeout.is_zero() {
        Duration::from_secs(1)
    } else {
        check.timeout
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => judge_exit(status.code(), status.signal(), check.dynamic),
        Ok(Err(e)) => Outcome::Failure(ProbeError::Io(IoFailure::new("wait", &e))),
        Err(_) => {
            // SIGKILL now; tokio reaps the child in the background.
            let _ = child.start_kill();
            Outcome::Failure(ProbeError::ScriptTimeout(timeout))
        }
    }
}
