//! CPU cost of many virtual routers on one interface, side by side with
//! keepalived (root; network namespaces).
//!
//! ```text
//! cargo run --release -p lvskit-vrrp --example scale_bench -- --count 255 --interval 100ms --window 10s
//! ```
//!
//! Two routers on one bridge each run `count` VRIDs (1..=count, VIP
//! 10.1.VRID.1/32 each) at `interval`: one is master of all of them
//! (priority 200), the other backup (priority 100), so one side sends
//! count/interval adverts a second and the other receives and checks them.
//! Once every VIP is on the master, the bench reads utime+stime from
//! /proc/PID/stat of each process over `window` and prints the share of
//! one core. Then it does the same with keepalived on both routers
//! (parent and VRRP child summed).
//!
//! With `daemon`, this program is the lvskit router itself: one
//! [`Driver`] with `count` instances, stopped by SIGTERM.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use lvskit_testlab::keepalived::{Keepalived, VrrpInstance, config};
use lvskit_testlab::{Lab, Node, require_root};
use lvskit_vrrp::linux::driver::{Driver, DriverOptions, InstanceSpec, unspecified};
use lvskit_vrrp::{Config, VirtualAddress};

#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Virtual routers per side.
    #[arg(long, default_value_t = 255)]
    count: u8,
    /// Advertisement interval (VRRPv3).
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Measurement window.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    window: Duration,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run `count` instances on `interface` until SIGTERM.
    Daemon {
        #[arg(long)]
        interface: String,
        #[arg(long)]
        priority: u8,
    },
}

fn vip(vrid: u8) -> String {
    format!("10.1.{vrid}.1")
}

fn daemon(args: &Args, interface: &str, priority: u8) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut driver = Driver::new(DriverOptions::default())?;
        for vrid in 1..=args.count {
            let address = VirtualAddress::new(vip(vrid).parse()?);
            let mut config = Config::new(vrid, unspecified(false), vec![address]);
            config.priority = priority;
            config.advert_interval = args.interval;
            // As the testlab's keepalived configuration: no second GARP burst.
            config.garp.master_delay = Duration::ZERO;
            driver
                .add_instance(InstanceSpec::new(interface, config))
                .await?;
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        driver
            .run(async move {
                term.recv().await;
            })
            .await?;
        Ok(())
    })
}

/// utime + stime of a process, in clock ticks (proc(5)).
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may contain spaces: fields count from after ')'.
    let rest = stat.rsplit_once(')').context("/proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, utime 14, stime 15 (1-based in proc(5)).
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

fn measure(pids: &[Vec<u32>], window: Duration) -> Result<Vec<f64>> {
    let ticks_per_second =
        nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)?.context("CLK_TCK")? as f64;
    let before: Vec<u64> = pids
        .iter()
        .map(|g| g.iter().map(|p| cpu_ticks(*p)).sum())
        .collect::<Result<_>>()?;
    let start = Instant::now();
    std::thread::sleep(window);
    let elapsed = start.elapsed().as_secs_f64();
    let after: Vec<u64> = pids
        .iter()
        .map(|g| g.iter().map(|p| cpu_ticks(*p)).sum())
        .collect::<Result<_>>()?;
    Ok(before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a - b) as f64 / ticks_per_second / elapsed * 100.0)
        .collect())
}

fn vip_count(node: &Node) -> Result<usize> {
    let out = node.run(["ip", "-4", "-o", "addr", "show", "dev", "eth0"])?;
    Ok(out.lines().filter(|l| l.contains(" 10.1.")).count())
}

fn wait_vips(master: &Node, backup: &Node, count: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if vip_count(master)? == count && vip_count(backup)? == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "VIPs did not settle: master {} backup {}",
                vip_count(master)?,
                vip_count(backup)?
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn lab() -> Result<(Lab, Node, Node)> {
    let lab = Lab::new()?;
    let lan = lab.bridge("lan")?;
    let a = lab.node("a")?;
    let b = lab.node("b")?;
    lab.connect(&a, "eth0", &lan)?;
    lab.connect(&b, "eth0", &lan)?;
    a.add_addr("eth0", "10.0.0.1/24")?;
    b.add_addr("eth0", "10.0.0.2/24")?;
    Ok((lab, a, b))
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(Command::Daemon {
        interface,
        priority,
    }) = &args.command
    {
        return daemon(&args, interface, *priority);
    }
    require_root();
    let count = usize::from(args.count);
    let exe = std::env::current_exe()?;
    let exe = exe.to_str().context("exe path")?;
    let (interval, count_s) = (
        humantime::format_duration(args.interval).to_string(),
        args.count.to_string(),
    );
    println!(
        "{count} VRIDs at {interval} on one interface, window {:?}",
        args.window
    );

    let lvskit = {
        let (_lab, a, b) = lab()?;
        let spawn = |node: &Node, priority: &str| {
            node.spawn(
                &format!("lvskit-{priority}"),
                [
                    exe,
                    "--count",
                    &count_s,
                    "--interval",
                    &interval,
                    "daemon",
                    "--interface",
                    "eth0",
                    "--priority",
                    priority,
                ],
            )
        };
        let master = spawn(&a, "200")?;
        let backup = spawn(&b, "100")?;
        wait_vips(&a, &b, count)?;
        std::thread::sleep(Duration::from_secs(2));
        measure(&[vec![master.pid()], vec![backup.pid()]], args.window)?
    };
    println!(
        "lvskit     master {:5.2} %  backup {:5.2} % of one core",
        lvskit[0], lvskit[1]
    );

    let keepalived = {
        let (_lab, a, b) = lab()?;
        let conf = |priority| {
            let instances: Vec<VrrpInstance> = (1..=args.count)
                .map(|vrid| {
                    VrrpInstance::new(&format!("VI_{vrid}"), "eth0", vrid, priority)
                        .vip(&format!("{}/32", vip(vrid)))
                        .version(3)
                        .advert_int(args.interval)
                })
                .collect();
            config(&instances)
        };
        let master = Keepalived::start(&a, "ka-master", &conf(200))?;
        let backup = Keepalived::start(&b, "ka-backup", &conf(100))?;
        wait_vips(&a, &b, count)?;
        std::thread::sleep(Duration::from_secs(2));
        let pids = |k: &Keepalived| -> Result<Vec<u32>> {
            Ok(vec![
                k.process().pid(),
                k.vrrp_pid().context("keepalived VRRP child pid")?,
            ])
        };
        measure(&[pids(&master)?, pids(&backup)?], args.window)?
    };
    println!(
        "keepalived master {:5.2} %  backup {:5.2} % of one core",
        keepalived[0], keepalived[1]
    );
    Ok(())
}
