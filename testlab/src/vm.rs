//! Boot Debian's stock kernel under qemu and run a command, or a test, in it.
//!
//! The host kernel has no `ip_vs`, so IPVS tests run in a VM:
//!
//! 1. the exact package behind `linux-image-cloud-amd64` is resolved with
//!    `apt-cache depends`, fetched with `apt-get download` and unpacked with
//!    `dpkg -x` into the cache directory ([`cache_dir`]);
//! 2. a base initramfs is built once per kernel and cached: busybox-static,
//!    the modules `ip_vs*`, veth, bridge, macvlan, dummy, sch_netem and
//!    nftables with their dependencies (`depmod -b`), and Debian's `ip`,
//!    `ipvsadm`, `keepalived`, `nft`, `kmod` and `bash` with their shared
//!    libraries;
//! 3. each run appends a small cpio archive with the command and the
//!    binaries it names (at the same path as on the host) and boots
//!    `qemu-system-x86_64 -accel tcg` (nested KVM hangs here), with the
//!    host's clock or, for timing measured inside the guest, an
//!    instruction-counted one ([`GuestClock`]).
//!
//! The console is streamed to stderr (captured by libtest, shown when a
//! test fails) and returned. qemu is killed on drop, on timeout, when the
//! calling thread dies (`setpriv --pdeathsig KILL`), and, if the whole run
//! was killed, by the next run's reaper.
//!
//! Inside the VM, busybox applets live in `/bin`, Debian's tools in
//! `/usr/sbin` and `/usr/bin`; `PATH` prefers Debian's. Start tools by
//! absolute path to be sure. The root file system is the initramfs (in
//! memory, writable; `/tmp` is part of it, so binaries under `/tmp` on the
//! host keep their path; `/run` is a fresh tmpfs): the source tree is not
//! there, only the binaries.
//!
//! # Tests that run inside the VM
//!
//! ```no_run
//! #[test]
//! fn vm_ipvs_is_there() {
//!     lvskit_testlab::vm::run_test_in_vm(|| {
//!         // Here we are inside the VM, as root, on Debian's kernel.
//!         let out = std::process::Command::new("/usr/sbin/ipvsadm").arg("-Ln").output()?;
//!         anyhow::ensure!(out.status.success());
//!         Ok(())
//!     });
//! }
//! ```
//!
//! On the host, [`run_test_in_vm`] boots a VM with this very test binary
//! ([`std::env::current_exe`]) and runs `<exe> --exact <test name>
//! --nocapture` there with `LVSKIT_IN_VM=1`; inside, it just calls the
//! closure. Other binaries (e.g. `env!("CARGO_BIN_EXE_lvskitd")`) are added
//! with [`Vm::binary`] and appear at the same path.

use crate::cpio::Archive;
use anyhow::{Context, Result, anyhow, bail, ensure};
use nix::fcntl::{Flock, FlockArg};
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Set to `1` in the environment of commands inside the VM.
pub const IN_VM_ENV: &str = "LVSKIT_IN_VM";

/// Host environment variables copied into the VM when set.
pub const PASS_THROUGH: &[&str] = &["RUST_LOG", "RUST_BACKTRACE", "RUST_LIB_BACKTRACE"];

/// The Debian metapackage whose kernel the VM boots.
pub const KERNEL_METAPACKAGE: &str = "linux-image-cloud-amd64";

/// Printed by the VM's init when it is ready to run the command.
const READY: &str = "LVSKIT-READY";
/// Printed by the VM's init after the command, followed by its exit code.
const EXIT: &str = "LVSKIT-EXIT ";

/// Host binaries in every VM (with their shared libraries).
const BASE_BINARIES: &[&str] = &[
    "/usr/sbin/ip",
    "/usr/sbin/ipvsadm",
    "/usr/sbin/keepalived",
    "/usr/sbin/nft",
    "/usr/bin/kmod",
    "/bin/bash",
];

/// Modules in every VM, by file name (dependencies are added).
const MODULES: &[&str] = &[
    "veth",
    "bridge",
    "macvlan",
    "dummy",
    "sch_netem",
    "nf_tables",
    "nf_conntrack",
    "nf_nat",
];

/// Module file name prefixes that are all included.
const MODULE_PREFIXES: &[&str] = &["ip_vs", "nft_", "nf_reject", "nf_tables_"];

/// Modules loaded at boot. The rest load on demand: the kernel calls
/// `/sbin/modprobe` for `ip link add type veth|bridge|macvlan|dummy`,
/// `tc qdisc add ... netem` and nftables expressions (each load costs about
/// half a second under TCG, so only IPVS is loaded up front).
const PRELOAD: &[&str] = &["ip_vs"];

/// Whether this process runs inside the lvskit VM.
pub fn in_vm() -> bool {
    std::env::var(IN_VM_ENV).is_ok_and(|v| v == "1")
}

/// Where kernels and initramfs images are cached: `$LVSKIT_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/lvskit`, else `/var/cache/lvskit` for root, else
/// `~/.cache/lvskit`. Never inside the source tree.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LVSKIT_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("lvskit");
    }
    if crate::is_root() {
        return PathBuf::from("/var/cache/lvskit");
    }
    std::env::var_os("HOME").map_or_else(
        || std::env::temp_dir().join("lvskit-cache"),
        |home| PathBuf::from(home).join(".cache/lvskit"),
    )
}

/// What a VM run produced.
#[derive(Debug, Clone)]
pub struct VmOutput {
    /// Exit code of the command inside the VM.
    pub exit_code: i32,
    /// The command's console output (between the ready and exit markers).
    pub output: String,
    /// The whole console, kernel messages included.
    pub console: String,
    /// From starting qemu to the VM being ready to run the command.
    pub boot_time: Duration,
    /// From starting qemu to qemu's exit.
    pub total_time: Duration,
}

impl VmOutput {
    /// Whether the command exited with 0.
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

/// How the guest's clocks advance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GuestClock {
    /// With the host's clock (qemu's default). Guest timers fire when the
    /// host gets round to running qemu: on a loaded host, milliseconds to
    /// hundreds of milliseconds late.
    #[default]
    Host,
    /// Counted in guest instructions (`-icount shift=N,sleep=off`): each
    /// instruction advances the guest's clocks by 2^N ns, and when every
    /// guest CPU is idle the clocks jump to the next timer deadline. Guest
    /// time no longer depends on how the host schedules qemu, so timing
    /// measured inside the guest (by its own clock, e.g. capture
    /// timestamps) is repeatable; the cost of guest code still counts, as
    /// instructions. Idle stretches take no host time. qemu then runs all
    /// guest CPUs on one host thread (no multi-threaded TCG), and with two
    /// CPUs Debian's kernel hangs bringing up the second one (qemu 7.2), so
    /// [`Vm::run`] requires one.
    InstructionCounted {
        /// log2 of the nanoseconds per guest instruction (0: a 1 GHz guest
        /// CPU that retires one instruction per cycle).
        shift: u8,
    },
}

/// A VM to boot: binaries to include, resources and a timeout.
#[derive(Debug, Clone)]
pub struct Vm {
    binaries: Vec<PathBuf>,
    files: Vec<(String, Vec<u8>, u32)>,
    env: Vec<(String, String)>,
    memory_mib: u32,
    cpus: u32,
    clock: GuestClock,
    timeout: Duration,
}

impl Default for Vm {
    fn default() -> Vm {
        Vm::new()
    }
}

impl Vm {
    /// 1 GiB of memory, one CPU, the host's clock, a 300 s timeout, the
    /// base tools only.
    pub fn new() -> Vm {
        Vm {
            binaries: Vec::new(),
            files: Vec::new(),
            env: Vec::new(),
            memory_mib: 1024,
            cpus: 1,
            clock: GuestClock::Host,
            timeout: Duration::from_secs(300),
        }
    }

    /// Includes a host binary, with its shared libraries, at the same path.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Vm {
        self.binaries.push(path.into());
        self
    }

    /// Includes a file with the given contents and permission bits.
    pub fn file(mut self, guest_path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> Vm {
        self.files
            .push((guest_path.to_owned(), contents.into(), mode));
        self
    }

    /// Sets an environment variable for the command (besides
    /// `LVSKIT_IN_VM=1` and the host's [`PASS_THROUGH`] variables).
    pub fn env(mut self, key: &str, value: &str) -> Vm {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Memory in MiB.
    pub fn memory_mib(mut self, mib: u32) -> Vm {
        self.memory_mib = mib;
        self
    }

    /// Number of virtual CPUs.
    pub fn cpus(mut self, cpus: u32) -> Vm {
        self.cpus = cpus;
        self
    }

    /// How the guest's clocks advance (default [`GuestClock::Host`]).
    pub fn clock(mut self, clock: GuestClock) -> Vm {
        self.clock = clock;
        self
    }

    /// Time allowed from start to qemu's exit; on expiry qemu is killed.
    pub fn timeout(mut self, timeout: Duration) -> Vm {
        self.timeout = timeout;
        self
    }

    /// Boots the VM, runs `script` with bash inside, powers off, and returns
    /// the exit code and output. Errors only if the VM itself fails (no
    /// kernel, qemu crash, timeout); a failing command is a non-zero
    /// [`VmOutput::exit_code`].
    pub fn run(&self, script: &str) -> Result<VmOutput> {
        ensure!(
            !in_vm(),
            "already inside the lvskit VM: nested VMs are not supported"
        );
        ensure!(
            self.clock == GuestClock::Host || self.cpus == 1,
            "an instruction-counted guest clock needs exactly one CPU, not {}",
            self.cpus
        );
        crate::reap::reap_once();
        let image = BaseImage::get()?;
        let name = crate::netns::unique_prefix();
        let dir = std::env::temp_dir().join(format!("{name}-vm"));
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let _dir_guard = RemoveDir(dir.clone());

        let mut archive = Archive::new();
        let mut env = String::new();
        let passed_through = PASS_THROUGH
            .iter()
            .filter_map(|key| Some(((*key).to_owned(), std::env::var(key).ok()?)));
        for (key, value) in std::iter::once((IN_VM_ENV.to_owned(), "1".to_owned()))
            .chain(passed_through)
            .chain(self.env.iter().cloned())
        {
            env.push_str(&format!("export {key}={}\n", shell_quote(&value)));
        }
        archive.file("lvskit/env", 0o644, env.as_bytes());
        archive.file("lvskit/cmd", 0o755, script.as_bytes());
        let mut libraries = BTreeSet::new();
        for binary in &self.binaries {
            add_file(&mut archive, binary, binary)?;
            libraries.extend(shared_libraries(binary)?);
        }
        for library in &libraries {
            add_file(&mut archive, library, library)?;
        }
        for (path, contents, mode) in &self.files {
            archive.file(path, *mode, contents);
        }
        let mut initrd = std::fs::read(&image.initramfs)
            .with_context(|| format!("read {}", image.initramfs.display()))?;
        initrd.extend_from_slice(&archive.finish());
        let initrd_path = dir.join("initrd.cpio");
        std::fs::write(&initrd_path, &initrd)?;

        let boot = || Qemu::start(&name, &image.kernel, &initrd_path, self)?.wait(self.timeout);
        match boot() {
            // The kernel died before init ran the command (under TCG on a busy
            // host, e.g. a timer check): that is the VM, not the test. Once more.
            Err(e) if e.downcast_ref::<NeverReady>().is_some() => {
                eprintln!("lvskit-testlab: VM did not come up, booting once more: {e:#}");
                boot()
            }
            result => result,
        }
    }

    /// Runs the calling test inside this VM (see [`run_test_in_vm`]).
    pub fn run_test<F>(&self, test: F)
    where
        F: FnOnce() -> Result<()>,
    {
        if in_vm() {
            if let Err(e) = test() {
                panic!("test failed inside the VM: {e:#}");
            }
            return;
        }
        crate::require_root();
        let name = std::thread::current()
            .name()
            .filter(|n| *n != "main")
            .map(str::to_owned)
            .expect("run_test_in_vm must be called from a libtest test thread, whose name is the test's name");
        let exe = std::env::current_exe().expect("current_exe");
        let script = format!(
            "exec {} --exact {} --nocapture --test-threads=1\n",
            shell_quote(&exe.to_string_lossy()),
            shell_quote(&name)
        );
        let vm = self.clone().binary(&exe);
        let out = vm
            .run(&script)
            .unwrap_or_else(|e| panic!("VM for {name} failed: {e:#}"));
        eprintln!(
            "lvskit-testlab: VM booted in {:.1} s, ran {name} in {:.1} s total",
            out.boot_time.as_secs_f64(),
            out.total_time.as_secs_f64()
        );
        assert!(
            out.success(),
            "{name} failed inside the VM (exit code {}):\n{}",
            out.exit_code,
            out.output
        );
        assert!(
            out.output.contains("test result: ok. 1 passed"),
            "{name} did not run inside the VM (filter mismatch?):\n{}",
            out.output
        );
    }
}

/// Runs the calling `vm_*` test's body inside a default [`Vm`].
///
/// On the host (as root) it boots a VM with the current test binary and
/// runs only this test there, then fails if it failed inside. Inside the VM
/// (`LVSKIT_IN_VM=1`) it calls `test` and panics if it returns an error.
/// Use [`Vm::run_test`] to add binaries or change resources.
///
/// # Panics
///
/// When not root on the host, when the VM cannot boot, or when the test
/// fails inside.
pub fn run_test_in_vm<F>(test: F)
where
    F: FnOnce() -> Result<()>,
{
    Vm::new().run_test(test);
}

/// Removes a directory on drop.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Adds the host file `host` to the archive at `guest`, following symlinks.
fn add_file(archive: &mut Archive, host: &Path, guest: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let data = std::fs::read(host).with_context(|| format!("read {}", host.display()))?;
    let mode = std::fs::metadata(host)?.permissions().mode();
    archive.file(&guest.to_string_lossy(), mode, &data);
    Ok(())
}

/// The shared libraries (and ELF interpreter) `binary` needs, from `ldd`.
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(binary)
        .stdin(Stdio::null())
        .output()
        .context("run ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // Static binaries: "not a dynamic executable".
        return Ok(Vec::new());
    }
    Ok(text
        .lines()
        .filter_map(|line| {
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}

/// The cached kernel and base initramfs.
struct BaseImage {
    kernel: PathBuf,
    initramfs: PathBuf,
}

impl BaseImage {
    /// Downloads the kernel and builds the base initramfs unless cached.
    /// Parallel callers (threads and processes) wait on a file lock.
    fn get() -> Result<BaseImage> {
        let cache = cache_dir();
        std::fs::create_dir_all(&cache).with_context(|| format!("create {}", cache.display()))?;
        let lock_file = std::fs::File::create(cache.join("lock"))?;
        let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
            .map_err(|(_, e)| anyhow!("lock the VM cache: {e}"))?;

        let package = resolve_kernel_package()?;
        let version = package
            .strip_prefix("linux-image-")
            .context("kernel package name")?
            .to_owned();
        let root = cache.join(&package);
        if !root.join(".complete").exists() {
            download_kernel(&package, &root)?;
        }
        let kernel = root.join(format!("boot/vmlinuz-{version}"));
        ensure!(kernel.is_file(), "no kernel at {}", kernel.display());

        let recipe = recipe_hash(&version)?;
        let initramfs = cache.join(format!("base-{version}-{recipe:016x}.cpio"));
        if !initramfs.exists() {
            // Images of an older recipe for this kernel are stale.
            for entry in std::fs::read_dir(&cache)?.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(&format!("base-{version}-")) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
            let bytes = build_base(&root, &version)?;
            let partial = initramfs.with_extension("partial");
            std::fs::write(&partial, bytes)?;
            std::fs::rename(&partial, &initramfs)?;
        }
        Ok(BaseImage { kernel, initramfs })
    }
}

/// `linux-image-cloud-amd64` → `linux-image-6.1.0-NN-cloud-amd64`.
fn resolve_kernel_package() -> Result<String> {
    let depends = || -> Result<Option<String>> {
        let out = Command::new("apt-cache")
            .args(["depends", KERNEL_METAPACKAGE])
            .stdin(Stdio::null())
            .output()
            .context("run apt-cache")?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|line| {
                let dep = line.trim().strip_prefix("Depends:")?.trim();
                dep.starts_with("linux-image-").then(|| dep.to_owned())
            }))
    };
    if let Some(package) = depends()? {
        return Ok(package);
    }
    let status = Command::new("apt-get")
        .args(["update", "-q"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .status()
        .context("run apt-get update")?;
    ensure!(status.success(), "apt-get update failed");
    depends()?.with_context(|| format!("`apt-cache depends {KERNEL_METAPACKAGE}` names no kernel"))
}

fn download_kernel(package: &str, root: &Path) -> Result<()> {
    let parent = root.parent().context("cache root")?;
    let work = parent.join(format!("{package}.download"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let status = Command::new("apt-get")
        .args(["download", "-q", package])
        .current_dir(&work)
        .stdin(Stdio::null())
        .status()
        .context("run apt-get download")?;
    ensure!(status.success(), "apt-get download {package} failed");
    let deb = std::fs::read_dir(&work)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .context("apt-get download produced no .deb")?;
    let extracted = work.join("root");
    let status = Command::new("dpkg")
        .arg("-x")
        .arg(&deb)
        .arg(&extracted)
        .status()
        .context("run dpkg -x")?;
    ensure!(status.success(), "dpkg -x {} failed", deb.display());
    std::fs::write(extracted.join(".complete"), package)?;
    let _ = std::fs::remove_dir_all(root);
    std::fs::rename(&extracted, root)?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// The init script of the VM (busybox sh).
const INIT: &str = r#"#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
export HOME=/root TMPDIR=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /tmp /run/netns /var/run /root
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mkdir -p /run/netns
mount -t tmpfs tmpfs /dev/shm
hostname lvskit-vm
/usr/sbin/ip link set lo up
for module in $(cat /etc/lvskit-preload); do
    /sbin/modprobe "$module" || echo "lvskit-vm: modprobe $module failed"
done
. /lvskit/env
echo LVSKIT-READY
cd /tmp
/bin/bash /lvskit/cmd
echo "LVSKIT-EXIT $?"
poweroff -f
echo o > /proc/sysrq-trigger
"#;

/// Hash of everything the base initramfs is made from, for the cache name.
fn recipe_hash(version: &str) -> Result<u64> {
    let mut hasher = DefaultHasher::new();
    (
        version,
        INIT,
        BASE_BINARIES,
        MODULES,
        MODULE_PREFIXES,
        PRELOAD,
    )
        .hash(&mut hasher);
    for binary in BASE_BINARIES.iter().chain(["/bin/busybox"].iter()) {
        let meta = std::fs::metadata(binary).with_context(|| format!("{binary} is missing"))?;
        (meta.len(), meta.modified().ok()).hash(&mut hasher);
    }
    Ok(hasher.finish())
}

/// Builds the base initramfs for the unpacked kernel package at `root`.
fn build_base(root: &Path, version: &str) -> Result<Vec<u8>> {
    let mut archive = Archive::new();
    for dir in [
        "bin", "sbin", "usr/bin", "usr/sbin", "lib", "lib64", "etc", "proc", "sys", "dev", "tmp",
        "run", "root", "var",
    ] {
        archive.dir(dir);
    }
    archive.file("init", 0o755, INIT.as_bytes());
    add_file(
        &mut archive,
        Path::new("/bin/busybox"),
        Path::new("/bin/busybox"),
    )?;
    archive.symlink("bin/sh", "busybox");
    let mut libraries = BTreeSet::new();
    for binary in BASE_BINARIES {
        let path = Path::new(binary);
        add_file(&mut archive, path, path)?;
        libraries.extend(shared_libraries(path)?);
    }
    for library in &libraries {
        add_file(&mut archive, library, library)?;
    }
    for tool in ["modprobe", "insmod", "rmmod", "lsmod", "modinfo", "depmod"] {
        archive.symlink(&format!("sbin/{tool}"), "/usr/bin/kmod");
    }
    archive.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    );
    archive.file("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n");
    archive.file(
        "etc/hosts",
        0o644,
        b"127.0.0.1 localhost lvskit-vm\n::1 localhost\n",
    );
    for file in ["/etc/protocols", "/etc/services"] {
        if Path::new(file).exists() {
            add_file(&mut archive, Path::new(file), Path::new(file))?;
        }
    }
    archive.file("etc/lvskit-preload", 0o644, PRELOAD.join("\n").as_bytes());
    add_modules(&mut archive, root, version)?;
    Ok(archive.finish())
}

/// Adds the wanted modules and their dependencies, with fresh `depmod`
/// indexes, under `/lib/modules/<version>`.
fn add_modules(archive: &mut Archive, root: &Path, version: &str) -> Result<()> {
    let modules = root.join("lib/modules").join(version);
    if !modules.join("modules.dep").exists() {
        depmod(root, version)?;
    }
    let dep_text = std::fs::read_to_string(modules.join("modules.dep"))?;
    let deps: BTreeMap<&str, Vec<&str>> = dep_text
        .lines()
        .filter_map(|line| {
            let (module, deps) = line.split_once(':')?;
            Some((module, deps.split_whitespace().collect()))
        })
        .collect();
    let stem = |path: &str| -> String {
        Path::new(path)
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split('.').next())
            .unwrap_or_default()
            .to_owned()
    };
    let mut wanted: Vec<&str> = deps
        .keys()
        .copied()
        .filter(|path| {
            let name = stem(path);
            MODULES.contains(&name.as_str()) || MODULE_PREFIXES.iter().any(|p| name.starts_with(p))
        })
        .collect();
    for name in MODULES {
        ensure!(
            deps.keys().any(|p| stem(p) == *name),
            "module {name} is not in kernel {version}"
        );
    }
    let mut chosen = BTreeSet::new();
    while let Some(module) = wanted.pop() {
        if chosen.insert(module) {
            wanted.extend(deps.get(module).into_iter().flatten().copied());
        }
    }
    // A staging tree with only the chosen modules, indexed by depmod.
    let stage = tempfile::Builder::new()
        .prefix("lvskit-modules")
        .tempdir()?;
    let staged = stage.path().join("lib/modules").join(version);
    for module in &chosen {
        let target = staged.join(module);
        std::fs::create_dir_all(target.parent().context("module dir")?)?;
        std::fs::copy(modules.join(module), &target)?;
    }
    for file in [
        "modules.order",
        "modules.builtin",
        "modules.builtin.modinfo",
    ] {
        std::fs::copy(modules.join(file), staged.join(file))?;
    }
    depmod(stage.path(), version)?;
    for entry in walk(&staged)? {
        let relative = entry.strip_prefix(stage.path())?;
        add_file(archive, &entry, relative)?;
    }
    Ok(())
}

fn depmod(base: &Path, version: &str) -> Result<()> {
    let status = Command::new("depmod")
        .arg("-b")
        .arg(base)
        .arg(version)
        .stdin(Stdio::null())
        .status()
        .context("run depmod (package kmod)")?;
    ensure!(
        status.success(),
        "depmod -b {} {version} failed",
        base.display()
    );
    Ok(())
}

/// Every regular file below `dir`.
fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The VM stopped before its init printed the ready marker.
#[derive(Debug, thiserror::Error)]
#[error("the VM stopped before it was ready")]
struct NeverReady;

/// A running qemu; killed on drop.
struct Qemu {
    child: Child,
    lines: mpsc::Receiver<String>,
    started: Instant,
}

impl Qemu {
    fn start(name: &str, kernel: &Path, initrd: &Path, vm: &Vm) -> Result<Qemu> {
        let mut command = Command::new("setpriv");
        command
            .args(["--pdeathsig", "KILL", "--", "qemu-system-x86_64"])
            .args(["-name", name])
            .args(["-accel", "tcg"])
            .args(["-m", &vm.memory_mib.to_string()])
            .args(["-smp", &vm.cpus.to_string()]);
        if let GuestClock::InstructionCounted { shift } = vm.clock {
            command.args(["-icount", &format!("shift={shift},sleep=off")]);
        }
        command
            .args(["-nodefaults", "-no-user-config", "-display", "none"])
            .args(["-serial", "stdio", "-no-reboot"])
            .arg("-kernel")
            .arg(kernel)
            .arg("-initrd")
            .arg(initrd)
            .args([
                "-append",
                "console=ttyS0 panic=-1 quiet loglevel=3 mitigations=off cryptomgr.notests no_timer_check",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = command.spawn().context("start qemu-system-x86_64")?;
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().context("qemu stdout")?;
        let mut stderr = child.stderr.take().context("qemu stderr")?;
        let tx_err = tx.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            for line in text.lines() {
                let _ = tx_err.send(format!("qemu: {line}"));
            }
        });
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\r', '\n'])
                    .to_owned();
                buf.clear();
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Qemu {
            child,
            lines,
            started,
        })
    }

    fn wait(mut self, timeout: Duration) -> Result<VmOutput> {
        let deadline = self.started + timeout;
        let mut console = String::new();
        let mut output = String::new();
        let mut boot_time = None;
        let mut exit_code = None;
        loop {
            let now = Instant::now();
            if now >= deadline {
                bail!(
                    "VM timed out after {timeout:?}; console:\n{}",
                    tail(&console, 60)
                );
            }
            match self.lines.recv_timeout(deadline - now) {
                Ok(line) => {
                    eprintln!("[vm] {line}");
                    console.push_str(&line);
                    console.push('\n');
                    if line == READY {
                        boot_time = Some(self.started.elapsed());
                    } else if let Some(code) = line.strip_prefix(EXIT) {
                        exit_code = code.trim().parse().ok();
                    } else if boot_time.is_some() && exit_code.is_none() {
                        output.push_str(&line);
                        output.push('\n');
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        // Console closed: qemu exited (or is exiting).
        let status = self.child.wait().context("wait for qemu")?;
        let total_time = self.started.elapsed();
        if boot_time.is_none() {
            return Err(anyhow::Error::new(NeverReady).context(format!(
                "qemu exited ({status}) before the VM was ready; console:\n{}",
                tail(&console, 60)
            )));
        }
        let exit_code = exit_code.with_context(|| {
            format!(
                "qemu exited ({status}) before the command finished; console:\n{}",
                tail(&console, 60)
            )
        })?;
        Ok(VmOutput {
            exit_code,
            output,
            console,
            boot_time: boot_time.unwrap_or_default(),
            total_time,
        })
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
