//! `lvskit-lab run`: the article's lb1/lb2 LVS-DR setup in network
//! namespaces, driven through a scripted scenario and measured on the wire.
//!
//! ```text
//!            client (10.0.0.51-54)
//!               │
//!  ┌────────────┴───────── bridge `lan` (captured) ─────────────┐
//!  │             │                  │              │            │
//! lb1 .2       lb2 .3             app1 .11       app2 .12     ...
//! MASTER 100   BACKUP 50          VIP on lo      VIP on lo
//! VIP .100 + IPVS (DR, rr)        lvskit-app     lvskit-app
//! ```
//!
//! The scenario: steady traffic; SIGKILL lb1 (failover to lb2, 20
//! long-lived connections kept by the sync daemon); lb1 comes back and
//! preempts; app1 stops and the health check removes it; app1 returns and is
//! added back; SIGHUP with a changed weight. Every expectation is checked
//! from the capture, the clients' own results and the kernel's IPVS tables.

pub mod config;
mod report;
pub mod scenario;
pub mod traffic;

pub use config::Topology;
pub use scenario::{Expectation, Outcome};

use anyhow::{Context, Result, bail};
use lvskit_testlab::vm::GuestClock;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the lab runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VmChoice {
    /// Here if this kernel has IPVS (`modprobe ip_vs`), else in the VM.
    Auto,
    /// Always in the stock-kernel VM.
    Always,
    /// Never in a VM (fails without IPVS).
    Never,
}

/// Which program runs a director.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DirectorKind {
    /// `lvskitd`, this package's daemon.
    Lvskitd,
    /// Debian's keepalived.
    Keepalived,
}

impl DirectorKind {
    fn name(self) -> &'static str {
        match self {
            DirectorKind::Lvskitd => "lvskitd",
            DirectorKind::Keepalived => "keepalived",
        }
    }
}

/// Settings of one lab run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where to run.
    pub vm: VmChoice,
    /// What runs lb1 (and lb2 unless `peer` is set).
    pub director: DirectorKind,
    /// What runs lb2.
    pub peer: Option<DirectorKind>,
    /// Number of app nodes (at least 2).
    pub apps: usize,
    /// VRRP advertisement interval.
    pub advert_int: Duration,
    /// Health-check `delay_loop`.
    pub delay_loop: Duration,
    /// Write `index.html` (with an SVG timeline) here.
    pub report: Option<PathBuf>,
    /// The `lvskit-app` binary.
    pub app_bin: PathBuf,
    /// The `lvskitd` binary.
    pub lvskitd_bin: PathBuf,
    /// How far the measured failover gap may be from Master_Down_Interval
    /// (the target is 1 ms).
    pub failover_tolerance: Duration,
    /// Print the HTML report on stdout between markers (used inside the VM,
    /// whose file system is gone when it powers off).
    pub report_to_stdout: bool,
}

/// Marks the start of an inline report on the console.
const REPORT_BEGIN: &str = "LVSKIT-LAB-REPORT-BEGIN";
/// Marks its end.
const REPORT_END: &str = "LVSKIT-LAB-REPORT-END";

/// Whether this kernel has IPVS (loading the module if needed).
pub fn host_has_ipvs() -> bool {
    let _ = std::process::Command::new("modprobe")
        .arg("ip_vs")
        .stderr(std::process::Stdio::null())
        .status();
    Path::new("/proc/net/ip_vs").exists()
}

/// Runs the lab: here, or in the VM. Returns whether every expectation
/// held.
pub fn run(options: &Options) -> Result<bool> {
    // A fresh Debian machine needs nothing beyond this command: qemu, the
    // initramfs tools, keepalived, ipvsadm, nft and tshark come from apt.
    lvskit_testlab::packages::ensure_installed(lvskit_testlab::packages::LAB)?;
    let here = match options.vm {
        VmChoice::Never => true,
        VmChoice::Always => false,
        VmChoice::Auto => host_has_ipvs(),
    };
    if here {
        if !host_has_ipvs() {
            bail!("this kernel has no IPVS (modprobe ip_vs failed); use --vm auto or --vm always");
        }
        let outcome = scenario::run(options)?;
        if let Some(dir) = &options.report {
            let path = report::write(dir, &outcome)?;
            println!("report: {}", path.display());
        }
        if options.report_to_stdout {
            println!("{REPORT_BEGIN}");
            println!("{}", report::html(&outcome));
            println!("{REPORT_END}");
        }
        Ok(outcome.passed())
    } else {
        run_in_vm(options)
    }
}

/// Copies `binary` into `dir` without debug information (`strip
/// --strip-debug`), or as it is when `strip` is not installed.
fn stripped_copy(binary: &Path, dir: &Path) -> Result<PathBuf> {
    let name = binary.file_name().context("binary without a file name")?;
    let out = dir.join(name);
    let stripped = std::process::Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&out)
        .arg(binary)
        .status()
        .is_ok_and(|s| s.success());
    if !stripped {
        std::fs::copy(binary, &out)
            .with_context(|| format!("copy {} to {}", binary.display(), out.display()))?;
    }
    Ok(out)
}

/// Boots the stock-kernel VM with this binary and the app binary, runs the
/// lab there and brings the report back.
fn run_in_vm(options: &Options) -> Result<bool> {
    // Debug builds carry ~100 MB of debug info per binary; the VM unpacks
    // everything into RAM, so it gets copies without it. They are staged
    // next to this binary: the VM mounts a fresh /tmp over the archive's.
    let current = std::env::current_exe().context("current_exe")?;
    let staging = tempfile::Builder::new()
        .prefix("lvskit-lab-vm-")
        .tempdir_in(current.parent().context("binary directory")?)
        .context("staging directory")?;
    let exe = stripped_copy(&current, staging.path())?;
    let app_bin = stripped_copy(&options.app_bin, staging.path())?;
    let lvskitd_bin = stripped_copy(&options.lvskitd_bin, staging.path())?;
    let mut args = vec![
        exe.to_string_lossy().into_owned(),
        "run".into(),
        "--vm".into(),
        "never".into(),
        "--director".into(),
        options.director.name().into(),
        "--apps".into(),
        options.apps.to_string(),
        "--advert-int".into(),
        options.advert_int.as_secs_f64().to_string(),
        "--delay-loop".into(),
        options.delay_loop.as_secs_f64().to_string(),
        "--app-bin".into(),
        app_bin.to_string_lossy().into_owned(),
        "--lvskitd-bin".into(),
        lvskitd_bin.to_string_lossy().into_owned(),
        "--failover-tolerance-ms".into(),
        (options.failover_tolerance.as_secs_f64() * 1000.0).to_string(),
    ];
    if let Some(peer) = options.peer {
        args.extend(["--peer".into(), peer.name().into()]);
    }
    if options.report.is_some() {
        args.push("--report-to-stdout".into());
    }
    let script = format!(
        "exec {}\n",
        args.iter()
            .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "lvskit-lab: this kernel has no IPVS; booting Debian's stock kernel under qemu (TCG, \
         instruction-counted clock) and running the lab there"
    );
    // Every timing the lab checks is taken inside the guest, by the guest's
    // clock (capture timestamps, IPVS samples). With qemu's default clock
    // the guest's timers fire whenever the shared host gets round to qemu:
    // the failover gap came out 11 ms to 370 ms long, for keepalived as for
    // lvskitd. Counting guest instructions instead (1 ns each) takes the
    // host out of guest time, while the daemons' own work still costs
    // guest time; the gap then lands within 0.1 ms of the RFC value.
    let vm = lvskit_testlab::vm::Vm::new()
        .binary(&exe)
        .binary(&app_bin)
        .binary(&lvskitd_bin)
        .cpus(1)
        .clock(GuestClock::InstructionCounted { shift: 0 })
        .memory_mib(1024)
        .timeout(Duration::from_secs(900));
    let out = vm.run(&script).context("the lab VM failed")?;
    println!(
        "lvskit-lab: VM booted in {:.1} s, lab finished after {:.1} s (exit code {})",
        out.boot_time.as_secs_f64(),
        out.total_time.as_secs_f64(),
        out.exit_code
    );
    if let Some(dir) = &options.report {
        let text = out.output.replace('\r', "");
        let html = text
            .split_once(REPORT_BEGIN)
            .and_then(|(_, rest)| rest.split_once(REPORT_END))
            .map(|(html, _)| html.trim())
            .context("the VM printed no report")?;
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let path = dir.join("index.html");
        std::fs::write(&path, html).with_context(|| format!("write {}", path.display()))?;
        println!("report: {}", path.display());
    }
    Ok(out.exit_code == 0)
}
