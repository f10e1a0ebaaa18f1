//! Labs, nodes (network namespaces), bridges and veth ports.

use crate::process::{Output, Process, command_line, output_of};
use crate::reap;
use anyhow::{Context, Result, bail, ensure};
use nix::sched::CloneFlags;
use std::ffi::OsStr;
use std::fs::File;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where `ip netns` keeps its namespaces.
const NETNS_DIR: &str = "/run/netns";

/// Counter that makes each lab of this process unique.
static NEXT_LAB: AtomicU32 = AtomicU32::new(1);

/// A name no other lab or VM of any live run has: `lvsk<pid>x<n>`.
pub(crate) fn unique_prefix() -> String {
    format!(
        "{}{}x{}",
        reap::PREFIX,
        std::process::id(),
        NEXT_LAB.fetch_add(1, Ordering::Relaxed)
    )
}

/// The longest interface name Linux accepts (`IFNAMSIZ - 1`).
pub const MAX_IFNAME_LEN: usize = 15;

/// A lab: a set of network namespaces with a unique prefix, owned by one test.
///
/// The prefix is `lvsk<pid>x<n>`: the test process id and a per-process
/// counter, so parallel tests and parallel runs never collide. Nodes are
/// namespaces named `<prefix>-<node>`; bridges live in the lab's switch
/// namespace `<prefix>.sw`, never on the host. Logs and configuration files
/// go to [`Lab::dir`].
///
/// Dropping the lab SIGKILLs every process inside its namespaces and deletes
/// the namespaces; the directory is removed too, unless the thread is
/// panicking (then its path is printed, so that logs can be read).
///
/// The first `Lab::new` of a process reaps what killed runs left behind (see
/// [`crate::reap`]).
#[derive(Debug)]
pub struct Lab {
    inner: Arc<LabInner>,
}

#[derive(Debug)]
struct LabInner {
    prefix: String,
    dir: PathBuf,
    switch: Node,
    namespaces: Mutex<Vec<String>>,
    next_id: AtomicU32,
}

impl Lab {
    /// Creates a lab with a fresh prefix and its switch namespace.
    pub fn new() -> Result<Lab> {
        reap::reap_once();
        let prefix = unique_prefix();
        let dir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create lab directory {}", dir.display()))?;
        let switch = Node {
            name: "switch".into(),
            netns: format!("{prefix}.sw"),
            dir: dir.clone(),
        };
        let lab = Lab {
            inner: Arc::new(LabInner {
                prefix,
                dir,
                switch: switch.clone(),
                namespaces: Mutex::new(Vec::new()),
                next_id: AtomicU32::new(1),
            }),
        };
        lab.add_namespace(&switch)?;
        // Ports and bridges carry no addresses: no IPv6 chatter on the wire.
        switch.sysctl("net.ipv6.conf.all.disable_ipv6", "1")?;
        switch.sysctl("net.ipv6.conf.default.disable_ipv6", "1")?;
        Ok(lab)
    }

    /// The unique prefix of this lab, e.g. `lvsk4711x3`.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The lab's directory for logs, configuration and pid files.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The switch namespace that holds the bridges, as a [`Node`], e.g. to
    /// run `bridge fdb` or `nft list ruleset` in it.
    pub fn switch(&self) -> &Node {
        &self.inner.switch
    }

    /// A fresh number, unique within this lab.
    pub(crate) fn next_id(&self) -> u32 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn add_namespace(&self, node: &Node) -> Result<()> {
        ip(["netns", "add", &node.netns])?;
        self.inner
            .namespaces
            .lock()
            .expect("namespace list")
            .push(node.netns.clone());
        node.run(["ip", "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Creates a node: a network namespace `<prefix>-<name>` with `lo` up and
    /// IPv6 duplicate address detection off (so link-local addresses are
    /// usable as soon as the link is up).
    ///
    /// `name` is letters, digits, `-` and `_`, at most 32 characters, unique
    /// in this lab.
    pub fn node(&self, name: &str) -> Result<Node> {
        ensure!(
            !name.is_empty()
                && name.len() <= 32
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "bad node name {name:?}: use 1 to 32 letters, digits, '-' or '_'"
        );
        let node = Node {
            name: name.to_owned(),
            netns: format!("{}-{name}", self.inner.prefix),
            dir: self.inner.dir.clone(),
        };
        self.add_namespace(&node)?;
        for key in [
            "net.ipv6.conf.all.accept_dad",
            "net.ipv6.conf.default.accept_dad",
        ] {
            node.sysctl(key, "0")?;
        }
        Ok(node)
    }

    /// Creates a bridge in the switch namespace: no STP, no forwarding delay
    /// and no multicast snooping (VRRP multicast reaches every port).
    pub fn bridge(&self, name: &str) -> Result<Bridge> {
        check_ifname(name)?;
        let sw = &self.inner.switch;
        sw.run([
            "ip",
            "link",
            "add",
            name,
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
            "mcast_snooping",
            "0",
        ])?;
        sw.run(["ip", "link", "set", name, "up"])?;
        Ok(Bridge {
            name: name.to_owned(),
            switch_netns: sw.netns.clone(),
        })
    }

    /// Connects `node` to `bridge` with a veth pair: `ifname` inside the
    /// node, a port named `p<n>` on the bridge. Both ends are up.
    pub fn connect(&self, node: &Node, ifname: &str, bridge: &Bridge) -> Result<Port> {
        check_ifname(ifname)?;
        let port = format!("p{}", self.next_id());
        node.run([
            "ip",
            "link",
            "add",
            ifname,
            "type",
            "veth",
            "peer",
            "name",
            &port,
            "netns",
            &bridge.switch_netns,
        ])?;
        let sw = &self.inner.switch;
        sw.run(["ip", "link", "set", &port, "master", &bridge.name, "up"])?;
        node.link_up(ifname)?;
        Ok(Port {
            name: port,
            bridge: bridge.name.clone(),
            switch: sw.clone(),
            node: node.name.clone(),
            ifname: ifname.to_owned(),
        })
    }

    /// Connects two nodes directly with a veth pair (`ifname_a` in `a`,
    /// `ifname_b` in `b`), both ends up.
    pub fn veth(&self, a: &Node, ifname_a: &str, b: &Node, ifname_b: &str) -> Result<()> {
        check_ifname(ifname_a)?;
        check_ifname(ifname_b)?;
        a.run([
            "ip", "link", "add", ifname_a, "type", "veth", "peer", "name", ifname_b, "netns",
            &b.netns,
        ])?;
        a.link_up(ifname_a)?;
        b.link_up(ifname_b)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let namespaces = std::mem::take(&mut *self.inner.namespaces.lock().expect("namespaces"));
        for netns in namespaces.iter().rev() {
            reap::kill_and_delete_netns(netns);
        }
        if std::thread::panicking() {
            eprintln!(
                "lvskit-testlab: lab {} kept its logs in {}",
                self.inner.prefix,
                self.inner.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.inner.dir);
        }
    }
}

/// A network namespace of a [`Lab`]: a host, router or load balancer.
///
/// Cheap to clone; the [`Lab`] owns the namespace and deletes it on drop.
#[derive(Debug, Clone)]
pub struct Node {
    name: String,
    netns: String,
    dir: PathBuf,
}

impl Node {
    /// The node's name within the lab.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace's name for `ip netns exec` / `ip -n` (`<prefix>-<name>`).
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// The namespace's bind mount, e.g. for `setns(2)` or `nsenter --net=`.
    pub fn netns_path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.netns)
    }

    /// The lab directory (logs, configs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A [`Command`] that runs `args` inside this namespace (through
    /// `ip netns exec`, which also mounts a matching `/sys`). Use it when the
    /// helpers below don't fit.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.netns]).args(args);
        command
    }

    /// Runs `args` inside the namespace to completion and returns its output,
    /// whatever the exit status.
    pub fn exec<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S> + Clone,
        S: AsRef<OsStr>,
    {
        let shown = format!("[{}] {}", self.name, command_line(args.clone()));
        output_of(self.command(args), shown)
    }

    /// Runs `args` inside the namespace, fails unless it exits with 0, and
    /// returns its stdout.
    pub fn run<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S> + Clone,
        S: AsRef<OsStr>,
    {
        Ok(self.exec(args)?.success()?.stdout)
    }

    /// Runs a `sh -c` script inside the namespace, fails unless it exits with
    /// 0, and returns its stdout.
    pub fn sh(&self, script: &str) -> Result<String> {
        self.run(["sh", "-c", script])
    }

    /// Starts a long-lived process inside the namespace.
    ///
    /// `name` names the output files `<lab dir>/<name>.stdout` and
    /// `.stderr` (so it must be unique in the lab). The process runs in its
    /// own process group; dropping the [`Process`] kills the group, and
    /// dropping the lab kills whatever still runs in the namespace.
    pub fn spawn<I, S>(&self, name: &str, args: I) -> Result<Process>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        ensure!(
            !name.is_empty() && !name.contains('/'),
            "bad process name {name:?}"
        );
        Process::start(self.command(args), name, &self.dir)
    }

    /// Runs `f` on a short-lived thread that has entered this namespace, and
    /// returns its result. Sockets created by `f` stay in the namespace.
    pub fn in_netns<T, F>(&self, f: F) -> Result<T>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        let file = File::open(self.netns_path())
            .with_context(|| format!("namespace {} is gone", self.netns))?;
        std::thread::scope(|scope| {
            scope
                .spawn(move || -> Result<T> {
                    nix::sched::setns(&file, CloneFlags::CLONE_NEWNET)
                        .context("setns(CLONE_NEWNET)")?;
                    Ok(f())
                })
                .join()
                .map_err(|_| anyhow::anyhow!("thread inside {} panicked", self.netns))?
        })
    }

    /// Sets a `net.*` sysctl of this namespace, e.g.
    /// `node.sysctl("net.ipv4.ip_forward", "1")`.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        ensure!(
            key.starts_with("net.") && !key.contains('/') && !key.contains(".."),
            "only net.* sysctls are per namespace, not {key:?}"
        );
        let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        self.in_netns(|| std::fs::write(&path, value))?
            .with_context(|| format!("[{}] sysctl {key}={value}", self.name))
    }

    /// Reads a `net.*` sysctl of this namespace.
    pub fn sysctl_get(&self, key: &str) -> Result<String> {
        ensure!(
            key.starts_with("net.") && !key.contains('/') && !key.contains(".."),
            "only net.* sysctls are per namespace, not {key:?}"
        );
        let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        let value = self
            .in_netns(|| std::fs::read_to_string(&path))?
            .with_context(|| format!("[{}] sysctl {key}", self.name))?;
        Ok(value.trim().to_owned())
    }

    /// Adds an address (`"10.0.0.1/24"`, `"fd00::1/64"`) to an interface.
    pub fn add_addr(&self, ifname: &str, cidr: &str) -> Result<()> {
        self.run(["ip", "addr", "add", cidr, "dev", ifname])
            .map(drop)
    }

    /// Removes an address from an interface.
    pub fn del_addr(&self, ifname: &str, cidr: &str) -> Result<()> {
        self.run(["ip", "addr", "del", cidr, "dev", ifname])
            .map(drop)
    }

    /// Whether `addr` (without prefix length) is configured on `ifname`.
    pub fn has_addr(&self, ifname: &str, addr: &str) -> Result<bool> {
        let json = self.run(["ip", "-j", "addr", "show", "dev", ifname])?;
        let value: serde_json::Value = serde_json::from_str(&json).context("ip -j addr")?;
        Ok(addr_infos(&value).any(|info| info["local"].as_str() == Some(addr)))
    }

    /// Sets an interface up.
    pub fn link_up(&self, ifname: &str) -> Result<()> {
        self.run(["ip", "link", "set", ifname, "up"]).map(drop)
    }

    /// Sets an interface down (a fault: the carrier of the peer goes down too
    /// for a veth).
    pub fn link_down(&self, ifname: &str) -> Result<()> {
        self.run(["ip", "link", "set", ifname, "down"]).map(drop)
    }

    /// The MAC address of an interface, e.g. `"02:11:22:33:44:55"`.
    pub fn mac(&self, ifname: &str) -> Result<String> {
        let value = self.link_json(ifname)?;
        value["address"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no MAC on {ifname}"))
    }

    /// The interface index of an interface.
    pub fn ifindex(&self, ifname: &str) -> Result<u32> {
        let value = self.link_json(ifname)?;
        value["ifindex"]
            .as_u64()
            .and_then(|i| u32::try_from(i).ok())
            .with_context(|| format!("no ifindex for {ifname}"))
    }

    fn link_json(&self, ifname: &str) -> Result<serde_json::Value> {
        let json = self.run(["ip", "-j", "link", "show", "dev", ifname])?;
        let mut value: serde_json::Value = serde_json::from_str(&json).context("ip -j link")?;
        Ok(value[0].take())
    }

    /// The IPv6 link-local address of `ifname`, waiting (up to 5 s) until it
    /// exists and is no longer tentative. The link must be up.
    pub fn link_local(&self, ifname: &str) -> Result<Ipv6Addr> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let json = self.run([
                "ip", "-j", "-6", "addr", "show", "dev", ifname, "scope", "link",
            ])?;
            let value: serde_json::Value = serde_json::from_str(&json).context("ip -j addr")?;
            // `ip -j` may list an empty `{}` for an address it filtered out;
            // only entries that carry an address count.
            let ready = addr_infos(&value).find(|info| {
                info["local"].is_string()
                    && info["tentative"].as_bool() != Some(true)
                    && info["dadfailed"].as_bool() != Some(true)
            });
            if let Some(addr) = ready.and_then(|info| info["local"].as_str()) {
                return addr.parse().context("link-local address");
            }
            if Instant::now() >= deadline {
                bail!(
                    "[{}] {ifname} has no usable link-local address: {json}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn addr_infos(value: &serde_json::Value) -> impl Iterator<Item = &serde_json::Value> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|link| link["addr_info"].as_array())
        .flatten()
}

/// A bridge in the lab's switch namespace.
#[derive(Debug, Clone)]
pub struct Bridge {
    name: String,
    switch_netns: String,
}

impl Bridge {
    /// The bridge's interface name (in the switch namespace).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The bridge side of a veth pair made by [`Lab::connect`].
#[derive(Debug, Clone)]
pub struct Port {
    name: String,
    bridge: String,
    switch: Node,
    node: String,
    ifname: String,
}

impl Port {
    /// The port's interface name in the switch namespace, e.g. `p3`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bridge this port belongs to.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The node on the other end.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The interface name on the node's side.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Sets the bridge side down (the node sees its carrier go away).
    pub fn down(&self) -> Result<()> {
        self.switch.link_down(&self.name)
    }

    /// Sets the bridge side up again.
    pub fn up(&self) -> Result<()> {
        self.switch.link_up(&self.name)
    }

    pub(crate) fn switch(&self) -> &Node {
        &self.switch
    }
}

/// Fails unless `name` is a valid Linux interface name.
fn check_ifname(name: &str) -> Result<()> {
    ensure!(
        !name.is_empty()
            && name.len() <= MAX_IFNAME_LEN
            && name != "."
            && name != ".."
            && !name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace()),
        "bad interface name {name:?}: 1 to {MAX_IFNAME_LEN} characters, no '/', ':' or spaces"
    );
    Ok(())
}

/// Runs `ip ARGS` on the host and fails unless it exits with 0.
fn ip<const N: usize>(args: [&str; N]) -> Result<()> {
    let mut command = Command::new("ip");
    command.args(args);
    output_of(command, format!("ip {}", args.join(" ")))?
        .success()
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_are_checked() {
        assert!(check_ifname("eth0").is_ok());
        assert!(check_ifname("a23456789012345").is_ok());
        assert!(check_ifname("a234567890123456").is_err());
        assert!(check_ifname("").is_err());
        assert!(check_ifname("a/b").is_err());
        assert!(check_ifname("a b").is_err());
    }
}
