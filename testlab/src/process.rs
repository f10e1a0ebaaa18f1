//! Finished commands ([`Output`]) and long-lived processes ([`Process`]).

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The result of a command that ran to completion.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line, for messages.
    pub command: String,
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output, lossily decoded as UTF-8.
    pub stdout: String,
    /// Standard error, lossily decoded as UTF-8.
    pub stderr: String,
}

impl Output {
    /// Returns `self` if the command exited with status 0, else an error
    /// carrying the command line, status and both outputs.
    pub fn success(self) -> Result<Output> {
        if self.status.success() {
            Ok(self)
        } else {
            bail!("{self}")
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` exited with {}", self.command, self.status)?;
        for (name, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            if !text.trim().is_empty() {
                write!(f, "\n--- {name} ---\n{}", text.trim_end())?;
            }
        }
        Ok(())
    }
}

/// Renders a command line for messages.
pub(crate) fn command_line<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    args.into_iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `command` to completion with stdin closed and returns its output.
pub(crate) fn output_of(mut command: Command, shown: String) -> Result<Output> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start `{shown}`"))?;
    Ok(Output {
        command: shown,
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// A long-lived process, started with [`crate::Node::spawn`].
///
/// It runs in its own process group, with stdin closed and stdout and stderr
/// written to files. Dropping it sends SIGKILL to the whole group (so also
/// to the children it forked) and reaps it.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    status: Option<ExitStatus>,
}

impl Process {
    /// Starts `command` in a new process group, stdout/stderr to
    /// `<dir>/<name>.stdout` and `<dir>/<name>.stderr`.
    pub(crate) fn start(mut command: Command, name: &str, dir: &Path) -> Result<Process> {
        let stdout_path = dir.join(format!("{name}.stdout"));
        let stderr_path = dir.join(format!("{name}.stderr"));
        let stdout = File::create(&stdout_path)
            .with_context(|| format!("cannot create {}", stdout_path.display()))?;
        let stderr = File::create(&stderr_path)
            .with_context(|| format!("cannot create {}", stderr_path.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot spawn {name}: {command:?}"))?;
        Ok(Process {
            name: name.to_owned(),
            child,
            stdout_path,
            stderr_path,
            status: None,
        })
    }

    /// The process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The name given at spawn time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Each of its threads: name, scheduling policy (0 normal, 1 FIFO, 2
    /// RR) and realtime priority (`/proc/PID/task/TID/stat` fields 41 and
    /// 40).
    pub fn thread_scheduling(&self) -> Result<Vec<(String, u32, u32)>> {
        let mut threads = Vec::new();
        for task in std::fs::read_dir(format!("/proc/{}/task", self.pid()))? {
            let dir = task?.path();
            let name = std::fs::read_to_string(dir.join("comm"))?.trim().to_owned();
            let stat = std::fs::read_to_string(dir.join("stat"))?;
            // Fields after the name (which may hold spaces) start at field 3.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .context("stat without a name")?
                .1
                .split_whitespace()
                .collect();
            let field =
                |n: usize| -> Result<u32> { Ok(fields.get(n - 3).context("short stat")?.parse()?) };
            threads.push((name, field(41)?, field(40)?));
        }
        Ok(threads)
    }

    /// Everything the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        read_lossy(&self.stdout_path)
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr_path)
    }

    /// The file that receives stdout.
    pub fn stdout_path(&self) -> &Path {
        &self.stdout_path
    }

    /// The file that receives stderr.
    pub fn stderr_path(&self) -> &Path {
        &self.stderr_path
    }

    /// Sends `signal` to the whole process group. Errors are ignored: the
    /// group may already be gone.
    pub fn signal(&self, signal: Signal) {
        let pid = i32::try_from(self.child.id()).expect("pid fits in i32");
        let _ = killpg(Pid::from_raw(pid), signal);
    }

    /// SIGKILLs the whole process group and reaps the process.
    pub fn kill(&mut self) -> ExitStatus {
        self.signal(Signal::SIGKILL);
        self.wait()
    }

    /// Waits for the process to exit (no timeout; see [`Process::wait_timeout`]).
    pub fn wait(&mut self) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        let status = self.child.wait().expect("wait for own child");
        self.status = Some(status);
        status
    }

    /// The exit status if the process has exited, without blocking.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} (pid {}) still runs after {timeout:?}",
                    self.name,
                    self.pid()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Polls stdout and stderr until one of them contains `needle`.
    pub fn wait_for_output(&self, needle: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stdout().contains(needle) || self.stderr().contains(needle) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not print {needle:?} within {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    self.name,
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}
