//! Reaping what killed runs left behind.
//!
//! Every name the lab creates starts with [`PREFIX`] followed by the id of
//! the process that owns it and `x`: namespaces (`/run/netns/lvsk4711x3-a`),
//! lab directories in the temp directory, and the `-name` of qemu processes.
//! A run that is killed (SIGKILL, a crash, a power cut of the terminal)
//! cannot clean up; the next lab or VM that starts calls [`reap_leftovers`],
//! which removes everything whose owner process no longer exists. Live
//! owners are left alone, so runs side by side don't disturb each other.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Once;

/// The first characters of every namespace, directory and VM name the lab
/// creates.
pub const PREFIX: &str = "lvsk";

/// What [`reap_leftovers`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reaped {
    /// Namespaces deleted (their processes were killed first).
    pub namespaces: Vec<String>,
    /// Process ids of qemu VMs killed.
    pub vms: Vec<u32>,
    /// Lab and VM directories removed.
    pub directories: Vec<String>,
}

static REAP: Once = Once::new();

/// Calls [`reap_leftovers`] once per process (when root).
pub(crate) fn reap_once() {
    REAP.call_once(|| {
        if crate::is_root() {
            let reaped = reap_leftovers();
            if reaped != Reaped::default() {
                eprintln!("lvskit-testlab: reaped leftovers of dead runs: {reaped:?}");
            }
        }
    });
}

/// The owner process id encoded in a lab name (`lvsk<pid>x...`).
pub fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let end = rest.find('x')?;
    rest[..end].parse().ok()
}

/// Whether the process `pid` exists.
fn alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Whether `name` belongs to a run whose process is gone.
fn orphaned(name: &str) -> bool {
    owner_pid(name).is_some_and(|pid| !alive(pid))
}

/// Removes namespaces, processes inside them, qemu VMs and directories left
/// by runs whose owner process is dead. Needs root for namespaces and VMs.
pub fn reap_leftovers() -> Reaped {
    let mut reaped = Reaped::default();
    for name in dir_names(Path::new("/run/netns")) {
        if orphaned(&name) {
            kill_and_delete_netns(&name);
            reaped.namespaces.push(name);
        }
    }
    for pid in dir_names(Path::new("/proc")).filter_map(|n| n.parse::<u32>().ok()) {
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let vm_name = args
            .windows(2)
            .find(|w| w[0] == b"-name")
            .map(|w| String::from_utf8_lossy(w[1]).into_owned());
        if vm_name.is_some_and(|name| orphaned(&name)) {
            kill(pid);
            reaped.vms.push(pid);
        }
    }
    let temp = std::env::temp_dir();
    for name in dir_names(&temp) {
        if orphaned(&name) && std::fs::remove_dir_all(temp.join(&name)).is_ok() {
            reaped.directories.push(name);
        }
    }
    reaped
}

/// Kills every process inside the namespace `netns`, then deletes it.
/// Errors are ignored: this is cleanup.
pub(crate) fn kill_and_delete_netns(netns: &str) {
    if let Ok(out) = Command::new("ip")
        .args(["netns", "pids", netns])
        .stderr(Stdio::null())
        .output()
    {
        for pid in String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
        {
            kill(pid);
        }
    }
    let _ = Command::new("ip")
        .args(["netns", "del", netns])
        .stderr(Stdio::null())
        .status();
}

fn kill(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Names of entries in `dir` that start with [`PREFIX`] (all entries for
/// `/proc`).
fn dir_names(dir: &Path) -> impl Iterator<Item = String> {
    let all = dir == Path::new("/proc");
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(move |n| all || n.starts_with(PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_is_parsed_from_names() {
        assert_eq!(owner_pid("lvsk4711x3-a"), Some(4711));
        assert_eq!(owner_pid("lvsk4711x3.sw"), Some(4711));
        assert_eq!(owner_pid("lvskx3"), None);
        assert_eq!(owner_pid("lvsk12"), None);
        assert_eq!(owner_pid("other4711x3"), None);
    }

    #[test]
    fn own_process_is_not_orphaned() {
        let name = format!("{PREFIX}{}x1-a", std::process::id());
        assert!(!orphaned(&name));
    }
}
