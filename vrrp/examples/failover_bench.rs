//! Failover time measured on the wire, in network namespaces (root).
//!
//! ```text
//! cargo run -p lvskit-vrrp --example failover_bench -- --version 3 --interval 100ms --trials 10
//! cargo run -p lvskit-vrrp --example failover_bench -- --peer keepalived --version 2 --interval 1s
//! ```
//!
//! Each trial builds a fresh lab: a master (priority 100, `state MASTER`)
//! and a backup (priority 50) on one bridge, lets the master advertise,
//! SIGKILLs it (no priority-0 advert: a crash) and reads from a capture on
//! the bridge the gap between the master's last advert and the backup's
//! first. The ideal gap is Master_Down_Interval = 3·interval + skew, with
//! skew = (256 − 50)·interval/256 (v3; v2 uses whole seconds, the same at
//! 1 s). It prints every trial, the median and the worst deviation.
//!
//! A separate binary and not a test: ten trials at 1 s take over a minute,
//! and statistics are measurements to report, not pass/fail checks. The
//! namespace tests assert the bound once per interop scenario.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use clap::Parser;
use lvskit_testlab::keepalived::{Keepalived, VrrpInstance};
use lvskit_testlab::{Frame, Lab, Node, require_root};

#[derive(Debug, Parser)]
struct Args {
    /// VRRP version, 2 or 3.
    #[arg(long, default_value_t = 3)]
    version: u8,
    /// Advertisement interval.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Number of trials.
    #[arg(long, default_value_t = 10)]
    trials: usize,
    /// Run both routers under SCHED_RR priority 50 (`chrt`), as
    /// keepalived's `vrrp_rt_priority` would: the measurement then shows the
    /// implementation rather than the wake-up latency of a loaded host.
    #[arg(long)]
    realtime: bool,
    /// Which implementation runs both routers: `vrrpd` or `keepalived`.
    #[arg(long, default_value = "vrrpd", value_parser = ["vrrpd", "keepalived"])]
    peer: String,
}

const MASTER_PRIORITY: u8 = 100;
const BACKUP_PRIORITY: u8 = 50;

fn vrrpd_path() -> Result<String> {
    let exe = std::env::current_exe()?;
    let path = exe.parent().context("examples dir")?.join("vrrpd");
    path.to_str().map(str::to_string).context("vrrpd path")
}

/// A router under test: either implementation, killable.
enum Router {
    Vrrpd(lvskit_testlab::Process),
    Keepalived(Keepalived),
}

impl Router {
    fn start(args: &Args, node: &Node, name: &str, priority: u8, state: &str) -> Result<Router> {
        if args.peer == "keepalived" {
            let config = VrrpInstance::new("VI_1", "eth0", 51, priority)
                .vip("10.0.0.100/24")
                .version(args.version)
                .advert_int(args.interval)
                .state(state)
                .config();
            return Ok(Router::Keepalived(Keepalived::start(node, name, &config)?));
        }
        let interval = format!("{}ms", args.interval.as_millis());
        let version = args.version.to_string();
        let priority = priority.to_string();
        let path = vrrpd_path()?;
        let argv = [
            path.as_str(),
            "--interface",
            "eth0",
            "--vrid",
            "51",
            "--vip",
            "10.0.0.100/24",
            "--version",
            &version,
            "--advert-int",
            &interval,
            "--priority",
            &priority,
            "--state",
            state,
        ];
        Ok(Router::Vrrpd(node.spawn(name, argv)?))
    }

    /// The processes to make real-time: vrrpd, or keepalived's parent and
    /// VRRP child (waited for: it writes its pid file once started).
    fn pids(&self) -> Result<Vec<u32>> {
        match self {
            Router::Vrrpd(process) => Ok(vec![process.pid()]),
            Router::Keepalived(keepalived) => {
                let mut child = None;
                wait_until(Duration::from_secs(5), || {
                    child = keepalived.vrrp_pid();
                    Ok(child.is_some())
                })?;
                Ok(vec![
                    keepalived.process().pid(),
                    child.context("VRRP child")?,
                ])
            }
        }
    }

    fn make_realtime(&self) -> Result<()> {
        for pid in self.pids()? {
            let status = std::process::Command::new("chrt")
                .args(["-a", "-r", "-p", "50", &pid.to_string()])
                .status()?;
            if !status.success() {
                bail!("chrt -r 50 on pid {pid} failed");
            }
        }
        Ok(())
    }

    fn kill(&mut self) {
        match self {
            Router::Vrrpd(process) => {
                process.kill();
            }
            Router::Keepalived(keepalived) => {
                keepalived.kill();
            }
        }
    }
}

fn wait_until(timeout: Duration, mut condition: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !condition()? {
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Source address (last byte) and timestamp of each IPv4 VRRP advert.
fn adverts(frames: &[Frame]) -> Vec<(u8, SystemTime)> {
    frames
        .iter()
        .filter_map(|frame| {
            let ip = frame.ipv4()?;
            (ip.protocol == 112).then(|| (ip.src.octets()[3], frame.time))
        })
        .collect()
}

fn trial(args: &Args) -> Result<Duration> {
    let lab = Lab::new()?;
    let lan = lab.bridge("lan")?;
    let master = lab.node("m")?;
    let backup = lab.node("b")?;
    lab.connect(&master, "eth0", &lan)?;
    lab.connect(&backup, "eth0", &lan)?;
    master.add_addr("eth0", "10.0.0.1/24")?;
    backup.add_addr("eth0", "10.0.0.2/24")?;
    let mut m = Router::start(args, &master, "master", MASTER_PRIORITY, "MASTER")?;
    if args.realtime {
        m.make_realtime()?;
    }
    let slow = args.interval * 6 + Duration::from_secs(5);
    wait_until(slow, || master.has_addr("eth0", "10.0.0.100"))?;
    let b = Router::start(args, &backup, "backup", BACKUP_PRIORITY, "BACKUP")?;
    if args.realtime {
        b.make_realtime()?;
    }
    // Let the backup settle on the master's adverts.
    std::thread::sleep(args.interval * 5 + Duration::from_millis(500));
    if backup.has_addr("eth0", "10.0.0.100")? {
        bail!("the backup took the VIP while the master was alive");
    }
    let capture = lab.capture(&lan)?;
    std::thread::sleep(args.interval * 2);
    m.kill();
    wait_until(slow, || backup.has_addr("eth0", "10.0.0.100"))?;
    std::thread::sleep(args.interval * 2);
    let adverts = adverts(&capture.stop());
    let last_master = adverts
        .iter()
        .filter(|(src, _)| *src == 1)
        .map(|(_, t)| *t)
        .max()
        .context("no master advert")?;
    let first_backup = adverts
        .iter()
        .filter(|(src, t)| *src == 2 && *t > last_master)
        .map(|(_, t)| *t)
        .min()
        .context("no backup advert")?;
    Ok(first_backup.duration_since(last_master)?)
}

fn main() -> Result<()> {
    let args = Args::parse();
    require_root();
    let ideal = if args.version == 2 {
        Duration::from_secs(3)
            + Duration::from_secs(u64::from(256 - u32::from(BACKUP_PRIORITY))) / 256
    } else {
        args.interval * 3 + args.interval * (256 - u32::from(BACKUP_PRIORITY)) / 256
    };
    println!(
        "{}{} v{} at {:?}: ideal Master_Down_Interval {:.4} s",
        args.peer,
        if args.realtime { " (SCHED_RR 50)" } else { "" },
        args.version,
        args.interval,
        ideal.as_secs_f64()
    );
    let mut gaps = Vec::new();
    for n in 1..=args.trials {
        let gap = trial(&args).with_context(|| format!("trial {n}"))?;
        println!(
            "trial {n:2}: gap {:.4} s ({:+.2} ms)",
            gap.as_secs_f64(),
            (gap.as_secs_f64() - ideal.as_secs_f64()) * 1e3
        );
        gaps.push(gap);
    }
    gaps.sort();
    let median = if gaps.len() % 2 == 1 {
        gaps[gaps.len() / 2]
    } else {
        (gaps[gaps.len() / 2 - 1] + gaps[gaps.len() / 2]) / 2
    };
    let worst = gaps
        .iter()
        .max_by_key(|g| g.abs_diff(ideal))
        .copied()
        .context("no trials")?;
    println!(
        "median {:.4} s ({:+.2} ms), worst {:.4} s ({:+.2} ms), ideal {:.4} s",
        median.as_secs_f64(),
        (median.as_secs_f64() - ideal.as_secs_f64()) * 1e3,
        worst.as_secs_f64(),
        (worst.as_secs_f64() - ideal.as_secs_f64()) * 1e3,
        ideal.as_secs_f64()
    );
    Ok(())
}
