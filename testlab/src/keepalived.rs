//! Debian's keepalived (2.2.7) as a live VRRP peer inside a lab node.
//!
//! [`VrrpInstance`] renders the common `vrrp_instance` block;
//! [`Keepalived::start`] runs
//! `keepalived -n -l -D -G -f CONF -p PID -r VRRPPID -c CHECKPID -b BFDPID`
//! in a node, with the configuration and pid files in the lab directory, so
//! any number of instances run side by side. Anything the builder lacks can
//! be written as configuration text by hand.
//!
//! Some keywords are newer than Debian 12's package: [`trixie_build`] builds
//! the keepalived of Debian 13 (trixie) from its source package once, caches
//! the binary, and [`Keepalived::start_binary`] runs it.

use crate::netns::Node;
use crate::process::Process;
use anyhow::{Context, Result, bail, ensure};
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::Signal;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs keepalived. `LVSKIT_KEEPALIVED` overrides it.
pub const KEEPALIVED: &str = "/usr/sbin/keepalived";

/// One `vrrp_instance` block of a keepalived configuration.
///
/// Defaults: `state BACKUP`, `advert_int 1`, VRRP version 2, preemption on,
/// no authentication, no VIP.
#[derive(Debug, Clone, PartialEq)]
pub struct VrrpInstance {
    /// Instance name, e.g. `VI_1`.
    pub name: String,
    /// Interface the instance runs on.
    pub interface: String,
    /// Virtual router id (1..=255).
    pub vrid: u8,
    /// Priority (1..=255; 255 means address owner).
    pub priority: u8,
    /// Initial state, `BACKUP` or `MASTER`.
    pub state: String,
    /// Advertisement interval.
    pub advert_int: Duration,
    /// VRRP version, 2 or 3.
    pub version: u8,
    /// Virtual addresses, e.g. `10.0.0.100/24`.
    pub vips: Vec<String>,
    /// `nopreempt`.
    pub nopreempt: bool,
    /// VRRPv2 simple-text password (`auth_type PASS`).
    pub auth_pass: Option<String>,
    /// Unicast source address; with peers, the instance sends unicast.
    pub unicast_src: Option<String>,
    /// Unicast peers.
    pub unicast_peers: Vec<String>,
    /// Extra lines copied verbatim into the block.
    pub extra: Vec<String>,
}

impl VrrpInstance {
    /// An instance with the defaults above.
    pub fn new(name: &str, interface: &str, vrid: u8, priority: u8) -> VrrpInstance {
        VrrpInstance {
            name: name.to_owned(),
            interface: interface.to_owned(),
            vrid,
            priority,
            state: "BACKUP".to_owned(),
            advert_int: Duration::from_secs(1),
            version: 2,
            vips: Vec::new(),
            nopreempt: false,
            auth_pass: None,
            unicast_src: None,
            unicast_peers: Vec::new(),
            extra: Vec::new(),
        }
    }

    /// Adds a virtual address.
    pub fn vip(mut self, cidr: &str) -> VrrpInstance {
        self.vips.push(cidr.to_owned());
        self
    }

    /// Sets the initial state (`MASTER` or `BACKUP`).
    pub fn state(mut self, state: &str) -> VrrpInstance {
        self.state = state.to_owned();
        self
    }

    /// Sets the advertisement interval (fractions need VRRPv3).
    pub fn advert_int(mut self, interval: Duration) -> VrrpInstance {
        self.advert_int = interval;
        self
    }

    /// Sets the VRRP version (2 or 3).
    pub fn version(mut self, version: u8) -> VrrpInstance {
        self.version = version;
        self
    }

    /// Sets `nopreempt`.
    pub fn nopreempt(mut self) -> VrrpInstance {
        self.nopreempt = true;
        self
    }

    /// Sets a VRRPv2 simple-text password.
    pub fn auth_pass(mut self, password: &str) -> VrrpInstance {
        self.auth_pass = Some(password.to_owned());
        self
    }

    /// Sends unicast from `src` to `peers` instead of multicast.
    pub fn unicast(mut self, src: &str, peers: &[&str]) -> VrrpInstance {
        self.unicast_src = Some(src.to_owned());
        self.unicast_peers = peers.iter().map(|p| (*p).to_owned()).collect();
        self
    }

    /// Adds a verbatim line to the block.
    pub fn line(mut self, line: &str) -> VrrpInstance {
        self.extra.push(line.to_owned());
        self
    }

    /// The `vrrp_instance NAME { ... }` block.
    pub fn block(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "vrrp_instance {} {{", self.name);
        let _ = writeln!(s, "    state {}", self.state);
        let _ = writeln!(s, "    interface {}", self.interface);
        let _ = writeln!(s, "    virtual_router_id {}", self.vrid);
        let _ = writeln!(s, "    priority {}", self.priority);
        let _ = writeln!(s, "    version {}", self.version);
        let interval = self.advert_int.as_secs_f64();
        let _ = writeln!(s, "    advert_int {interval}");
        if self.nopreempt {
            let _ = writeln!(s, "    nopreempt");
        }
        if let Some(pass) = &self.auth_pass {
            let _ = writeln!(
                s,
                "    authentication {{\n        auth_type PASS\n        auth_pass {pass}\n    }}"
            );
        }
        if let Some(src) = &self.unicast_src {
            let _ = writeln!(s, "    unicast_src_ip {src}");
            let _ = writeln!(s, "    unicast_peer {{");
            for peer in &self.unicast_peers {
                let _ = writeln!(s, "        {peer}");
            }
            let _ = writeln!(s, "    }}");
        }
        if !self.vips.is_empty() {
            let _ = writeln!(s, "    virtual_ipaddress {{");
            for vip in &self.vips {
                let _ = writeln!(s, "        {vip}");
            }
            let _ = writeln!(s, "    }}");
        }
        for line in &self.extra {
            let _ = writeln!(s, "    {line}");
        }
        s.push_str("}\n");
        s
    }

    /// A whole configuration with this one instance (see [`config`]).
    pub fn config(&self) -> String {
        config(std::slice::from_ref(self))
    }
}

/// A whole keepalived configuration: a `global_defs` block (router id
/// `lvskit`, no GARP repeat after becoming master, no script security
/// checks) and the instances.
pub fn config(instances: &[VrrpInstance]) -> String {
    config_with_globals(&[], instances)
}

/// Like [`config`], with `globals` added verbatim to `global_defs`, e.g.
/// `v3_checksum_as_v2`. keepalived applies such instance defaults when it
/// reads an instance, so they must come first, as they do here.
pub fn config_with_globals(globals: &[&str], instances: &[VrrpInstance]) -> String {
    let mut s = String::from(
        "global_defs {\n    router_id lvskit\n    vrrp_garp_master_delay 0\n    vrrp_garp_master_refresh 0\n",
    );
    for line in globals {
        let _ = writeln!(s, "    {line}");
    }
    s.push_str("}\n");
    for instance in instances {
        s.push_str(&instance.block());
    }
    s
}

/// A keepalived daemon running in a lab node.
///
/// Dropping it SIGKILLs the whole process group (parent, VRRP and checker
/// children).
#[derive(Debug)]
pub struct Keepalived {
    process: Process,
    config_path: PathBuf,
    vrrp_pid_path: PathBuf,
}

impl Keepalived {
    /// Writes `config` to `<lab dir>/<name>.conf` and starts keepalived in
    /// `node` with its own pid files and the log on the console (captured to
    /// `<lab dir>/<name>.stderr`). `name` must be unique in the lab.
    pub fn start(node: &Node, name: &str, config: &str) -> Result<Keepalived> {
        let binary = std::env::var_os("LVSKIT_KEEPALIVED")
            .map_or_else(|| PathBuf::from(KEEPALIVED), PathBuf::from);
        Keepalived::start_binary(&binary, node, name, config)
    }

    /// Like [`Keepalived::start`], with another keepalived binary, e.g. the
    /// one [`trixie_build`] returns.
    pub fn start_binary(
        binary: &Path,
        node: &Node,
        name: &str,
        config: &str,
    ) -> Result<Keepalived> {
        let dir = node.dir();
        let config_path = dir.join(format!("{name}.conf"));
        std::fs::write(&config_path, config)
            .with_context(|| format!("write {}", config_path.display()))?;
        let path = |what: &str| dir.join(format!("{name}.{what}.pid"));
        let vrrp_pid_path = path("vrrp");
        let mut args: Vec<String> = vec![
            display(binary),
            "--dont-fork".into(),
            "--log-console".into(),
            "--log-detail".into(),
            "--no-syslog".into(),
            "--use-file".into(),
            display(&config_path),
            "--pid".into(),
            display(&path("main")),
            "--vrrp_pid".into(),
            display(&vrrp_pid_path),
        ];
        // A build without IPVS or BFD (like `trixie_build`'s) has no such
        // child and rejects its pid option.
        let help = help_text(binary);
        for (option, child) in [("--checkers_pid", "checkers"), ("--bfd_pid", "bfd")] {
            if help.contains(option) {
                args.extend([option.to_owned(), display(&path(child))]);
            }
        }
        let process = node.spawn(name, &args)?;
        Ok(Keepalived {
            process,
            config_path,
            vrrp_pid_path,
        })
    }

    /// The configuration file.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The process (the keepalived parent).
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// The pid of the VRRP child, once it has written its pid file.
    pub fn vrrp_pid(&self) -> Option<u32> {
        std::fs::read_to_string(&self.vrrp_pid_path)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Everything keepalived logged so far (stdout and stderr).
    pub fn log(&self) -> String {
        self.process.stdout() + &self.process.stderr()
    }

    /// Waits until the log contains `needle`, e.g. `"Entering MASTER STATE"`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<()> {
        self.wait_for_log_count(needle, 1, timeout)
    }

    /// Waits until the log contains `needle` at least `count` times.
    pub fn wait_for_log_count(&self, needle: &str, count: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if log.matches(needle).count() >= count {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "keepalived {} did not log {needle:?} {count} time(s) within {timeout:?}; log:\n{log}",
                    self.process.name()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILLs parent and children at once: the instance vanishes without
    /// a priority-0 advertisement, like a crashed router.
    pub fn kill(&mut self) -> ExitStatus {
        self.process.kill()
    }

    /// SIGTERM to the parent, as `systemctl stop` does: a master sends
    /// priority-0 adverts and removes its VIPs. Waits up to `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let pid = i32::try_from(self.process.pid()).context("pid")?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM)
            .context("SIGTERM keepalived")?;
        self.process.wait_timeout(timeout)
    }

    /// SIGHUP: reload the configuration file (rewrite it first).
    pub fn reload(&self) -> Result<()> {
        let pid = i32::try_from(self.process.pid()).context("pid")?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGHUP)
            .context("SIGHUP keepalived")
    }
}

/// The upstream version of Debian 13's (trixie's) keepalived source package.
pub const TRIXIE_VERSION: &str = "2.3.3";

/// The source tarball's path on a Debian mirror.
const TRIXIE_TARBALL: &str = "pool/main/k/keepalived/keepalived_2.3.3.orig.tar.gz";

/// SHA-256 of that tarball, from the `Checksums-Sha256` field of trixie's
/// `keepalived_2.3.3-1.dsc` (it is also in trixie's `Sources` index).
const TRIXIE_TARBALL_SHA256: &str =
    "2288c5c7609fa452782b7acefa19acce742d0204dc17f54d36da46b10f8b590c";

/// `./configure` flags: VRRP only. IPVS, iptables, nftables and systemd
/// would need more `-dev` packages and play no part in VRRP interop.
const TRIXIE_CONFIGURE: &[&str] = &[
    "--disable-lvs",
    "--disable-iptables",
    "--disable-nftables",
    "--disable-systemd",
];

/// keepalived 2.3.3, built from Debian trixie's source package, for the
/// keywords Debian 12's 2.2.7 lacks (`v3_checksum_as_v2`, RFC 9568's IPv4
/// checksum). Returns the path of the binary.
///
/// The first call downloads the upstream tarball from the Debian mirror apt
/// is configured with ([`debian_mirror`]), checks its pinned SHA-256,
/// builds it with a VRRP-only `./configure` (the build packages are in
/// [`crate::packages::KEEPALIVED_BUILD`]) and keeps only the binary, in
/// `<cache dir>/keepalived-2.3.3/` (see [`crate::vm::cache_dir`]). Later
/// calls, from any process, return the cached binary once it runs. The
/// cache is locked while building, so parallel tests build once.
pub fn trixie_build() -> Result<PathBuf> {
    let cache = crate::vm::cache_dir();
    std::fs::create_dir_all(&cache).with_context(|| format!("create {}", cache.display()))?;
    let dir = cache.join(format!("keepalived-{TRIXIE_VERSION}"));
    let binary = dir.join("keepalived");
    let lock_file = std::fs::File::create(cache.join("keepalived-build.lock"))?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow::anyhow!("lock the keepalived build: {e}"))?;
    if runs_as_version(&binary, TRIXIE_VERSION) {
        return Ok(binary);
    }
    crate::packages::ensure_installed(crate::packages::KEEPALIVED_BUILD)?;
    let started = Instant::now();
    let work = tempfile::Builder::new()
        .prefix("keepalived-build-")
        .tempdir_in(&cache)
        .context("create the build directory")?;
    let tarball = work.path().join("keepalived.tar.gz");
    let url = format!("{}{TRIXIE_TARBALL}", debian_mirror()?);
    run_logged(
        Command::new("curl")
            .args(["--fail", "--silent", "--show-error", "--location"])
            .args(["--retry", "3", "--output"])
            .arg(&tarball)
            .arg(&url),
        &work.path().join("download.log"),
    )?;
    let sum = sha256(&tarball)?;
    ensure!(
        sum == TRIXIE_TARBALL_SHA256,
        "{url}: SHA-256 {sum}, expected {TRIXIE_TARBALL_SHA256}"
    );
    run_logged(
        Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(work.path()),
        &work.path().join("tar.log"),
    )?;
    let source = work.path().join(format!("keepalived-{TRIXIE_VERSION}"));
    let build_log = work.path().join("build.log");
    run_logged(
        Command::new("./configure")
            .args(TRIXIE_CONFIGURE)
            .current_dir(&source),
        &build_log,
    )?;
    let jobs = std::thread::available_parallelism().map_or(1, usize::from);
    run_logged(
        Command::new("make")
            .arg(format!("-j{jobs}"))
            .current_dir(&source),
        &build_log,
    )?;
    std::fs::create_dir_all(&dir)?;
    let staged = dir.join("keepalived.new");
    std::fs::copy(source.join("keepalived/keepalived"), &staged)
        .context("copy the built keepalived")?;
    std::fs::rename(&staged, &binary)?;
    ensure!(
        runs_as_version(&binary, TRIXIE_VERSION),
        "the built {} does not report version {TRIXIE_VERSION}",
        binary.display()
    );
    println!(
        "lvskit: built keepalived {TRIXIE_VERSION} in {:.0?}, cached as {}",
        started.elapsed(),
        binary.display()
    );
    Ok(binary)
}

/// The Debian mirror apt uses (e.g. `http://mirror.example/debian/`, with
/// the trailing slash): `$LVSKIT_DEBIAN_MIRROR` if set, else the first
/// repository `apt-get indextargets` labels `Debian`, else the first whose
/// path ends in `/debian/`.
pub fn debian_mirror() -> Result<String> {
    if let Ok(mirror) = std::env::var("LVSKIT_DEBIAN_MIRROR") {
        return Ok(with_trailing_slash(mirror));
    }
    let output = Command::new("apt-get")
        .args(["indextargets", "--format", "$(REPO_URI)\t$(LABEL)"])
        .stderr(Stdio::null())
        .output()
        .context("run apt-get indextargets")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let repositories: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .collect();
    repositories
        .iter()
        .find(|(_, label)| *label == "Debian")
        .or_else(|| {
            repositories
                .iter()
                .find(|(uri, _)| uri.trim_end_matches('/').ends_with("/debian"))
        })
        .map(|(uri, _)| with_trailing_slash((*uri).to_owned()))
        .context("no Debian repository in apt's sources (set LVSKIT_DEBIAN_MIRROR)")
}

fn with_trailing_slash(mut uri: String) -> String {
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// Whether `binary --version` runs and names `version`.
fn runs_as_version(binary: &Path, version: &str) -> bool {
    output_text(binary, "--version").contains(&format!("Keepalived v{version} "))
}

/// What `binary --help` prints (empty if it does not run).
fn help_text(binary: &Path) -> String {
    output_text(binary, "--help")
}

/// stdout and stderr of `binary option`, or nothing if it does not run.
fn output_text(binary: &Path, option: &str) -> String {
    Command::new(binary)
        .arg(option)
        .stdin(Stdio::null())
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
        })
        .unwrap_or_default()
}

/// Runs `command` with its output appended to `log`; on failure the error
/// carries the log's last lines.
fn run_logged(command: &mut Command, log: &Path) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("open {}", log.display()))?;
    let status = command
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .with_context(|| format!("run {command:?}"))?;
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("{command:?} failed ({status}):\n{}", tail.join("\n"));
    }
    Ok(())
}

/// The SHA-256 of `path` in hex, by coreutils' `sha256sum`.
fn sha256(path: &Path) -> Result<String> {
    let output = Command::new("sha256sum")
        .arg(path)
        .output()
        .context("run sha256sum")?;
    ensure!(
        output.status.success(),
        "sha256sum {} failed",
        path.display()
    );
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .map(str::to_owned)
        .context("sha256sum printed nothing")
}

fn display(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_block_has_every_setting() {
        let block = VrrpInstance::new("VI_1", "eth0", 51, 100)
            .state("MASTER")
            .vip("10.0.0.100/24")
            .auth_pass("secret")
            .unicast("10.0.0.1", &["10.0.0.2"])
            .nopreempt()
            .line("garp_master_delay 1")
            .block();
        for needle in [
            "vrrp_instance VI_1 {",
            "state MASTER",
            "interface eth0",
            "virtual_router_id 51",
            "priority 100",
            "version 2",
            "advert_int 1\n",
            "nopreempt",
            "auth_type PASS",
            "auth_pass secret",
            "unicast_src_ip 10.0.0.1",
            "        10.0.0.2",
            "        10.0.0.100/24",
            "garp_master_delay 1",
        ] {
            assert!(block.contains(needle), "{needle:?} missing in\n{block}");
        }
        assert_eq!(block.matches('{').count(), block.matches('}').count());
    }

    #[test]
    fn globals_come_before_the_instances() {
        let instance = VrrpInstance::new("VI_1", "eth0", 1, 50).version(3);
        let config = config_with_globals(&["v3_checksum_as_v2"], &[instance]);
        let global = config.find("    v3_checksum_as_v2\n").expect("global line");
        let end_of_globals = config.find("}\n").expect("end of global_defs");
        let instance = config.find("vrrp_instance VI_1").expect("instance");
        assert!(
            global < end_of_globals && end_of_globals < instance,
            "{config}"
        );
    }

    #[test]
    fn fractional_advert_interval_is_rendered() {
        let block = VrrpInstance::new("VI_1", "eth0", 1, 50)
            .version(3)
            .advert_int(Duration::from_millis(250))
            .block();
        assert!(block.contains("advert_int 0.25\n"), "{block}");
    }
}
