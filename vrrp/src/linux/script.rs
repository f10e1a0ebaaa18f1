//! Track and notify scripts, run with a timeout as an unprivileged user.
//!
//! keepalived runs its scripts as `script_user` (default `keepalived_script`
//! or nobody) and kills them after `timeout`; so does [`ScriptRunner`]. The
//! user switch is std's `CommandExt::uid`/`gid` (through tokio's
//! `Command`), which also clears the supplementary groups when the daemon
//! runs as root.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::Error;

/// How a script ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptOutcome {
    /// Exit status 0: for a track script, the check passed.
    Success,
    /// A non-zero exit status.
    Failure(i32),
    /// Killed by a signal it did not ask for.
    Signalled,
    /// Still running after the timeout; it was killed.
    TimedOut,
}

impl ScriptOutcome {
    /// Whether a track script with this outcome counts as passing.
    pub fn passed(self) -> bool {
        self == Self::Success
    }
}

/// The user scripts run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptUser {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

impl ScriptUser {
    /// Looks a user up in the password database.
    pub fn by_name(name: &str) -> Result<Self, Error> {
        match nix::unistd::User::from_name(name) {
            Ok(Some(user)) => Ok(Self {
                uid: user.uid.as_raw(),
                gid: user.gid.as_raw(),
            }),
            Ok(None) => Err(Error::NoSuchUser(name.to_string())),
            Err(errno) => Err(Error::Io {
                operation: "getpwnam",
                source: errno.into(),
            }),
        }
    }
}

/// Runs scripts: as `user` if given, killed after `timeout`.
#[derive(Debug, Clone)]
pub struct ScriptRunner {
    /// The user to run as; `None` keeps the daemon's own identity.
    pub user: Option<ScriptUser>,
    /// How long a script may run.
    pub timeout: Duration,
}

impl ScriptRunner {
    /// Runs `program` with `arguments`, stdin from /dev/null, stdout and
    /// stderr discarded, and waits for it at most `self.timeout`.
    pub async fn run(&self, program: &str, arguments: &[String]) -> Result<ScriptOutcome, Error> {
        let mut command = Command::new(program);
        command
            .args(arguments)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some(user) = self.user {
            command.gid(user.gid).uid(user.uid);
        }
        let mut child = command.spawn().map_err(|source| Error::Script {
            program: program.to_string(),
            source,
        })?;
        match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(Ok(status)) => Ok(match status.code() {
                Some(0) => ScriptOutcome::Success,
                Some(code) => ScriptOutcome::Failure(code),
                None => ScriptOutcome::Signalled,
            }),
            Ok(Err(source)) => Err(Error::Script {
                program: program.to_string(),
                source,
            }),
            Err(_elapsed) => {
                // kill(2) then reap, so no zombie is left behind.
                let _ = child.kill().await;
                Ok(ScriptOutcome::TimedOut)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner(timeout: Duration) -> ScriptRunner {
        ScriptRunner {
            user: None,
            timeout,
        }
    }

    #[tokio::test]
    async fn exit_codes() {
        let r = runner(Duration::from_secs(10));
        assert_eq!(r.run("true", &[]).await.unwrap(), ScriptOutcome::Success);
        assert_eq!(
            r.run("sh", &["-c".into(), "exit 3".into()]).await.unwrap(),
            ScriptOutcome::Failure(3)
        );
        assert_eq!(
            r.run("sh", &["-c".into(), "kill -9 $$".into()])
                .await
                .unwrap(),
            ScriptOutcome::Signalled
        );
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_kills() {
        // With the clock paused, tokio advances it as soon as every task
        // waits, so the 3600 s timeout fires at once while `sleep` runs.
        let r = runner(Duration::from_secs(3600));
        assert_eq!(
            r.run("sleep", &["1000".into()]).await.unwrap(),
            ScriptOutcome::TimedOut
        );
    }

    #[tokio::test]
    async fn missing_program_is_an_error() {
        let r = runner(Duration::from_secs(1));
        assert!(matches!(
            r.run("/nonexistent/lvskit-script", &[]).await,
            Err(Error::Script { .. })
        ));
    }

    #[test]
    fn unknown_user_is_an_error() {
        assert!(matches!(
            ScriptUser::by_name("lvskit-no-such-user"),
            Err(Error::NoSuchUser(_))
        ));
    }
}
