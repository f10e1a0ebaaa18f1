//! `lvskit-lab run`: the article's lb1/lb2 LVS-DR setup, reproduced in
//! network namespaces (in a stock-kernel VM when this kernel lacks IPVS),
//! driven through failover, preemption, a dead app and a reload, and
//! measured on the wire. Exits non-zero if any expectation fails.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use lvskit::lab::{DirectorKind, Options, VmChoice};
use std::path::PathBuf;
use std::time::Duration;

/// The lvskit lab.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the lb1/lb2 scenario and print the measured table.
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Where to run: here when the kernel has IPVS, else in the VM (auto).
    #[arg(long, value_enum, default_value = "auto")]
    vm: VmChoice,
    /// What runs the directors.
    #[arg(long, value_enum, default_value = "lvskitd")]
    director: DirectorKind,
    /// What runs lb2 (default: the same as --director).
    #[arg(long, value_enum)]
    peer: Option<DirectorKind>,
    /// Number of app nodes (at least 2).
    #[arg(long, default_value_t = 2)]
    apps: usize,
    /// VRRP advertisement interval in seconds (below 1 uses VRRPv3).
    #[arg(long, default_value_t = 1.0)]
    advert_int: f64,
    /// Health-check delay_loop in seconds (the article: 6).
    #[arg(long, default_value_t = 6.0)]
    delay_loop: f64,
    /// Write an HTML report with an SVG timeline into this directory.
    #[arg(long)]
    report: Option<PathBuf>,
    /// The lvskit-app binary (default: next to this one, built if missing).
    #[arg(long)]
    app_bin: Option<PathBuf>,
    /// The lvskitd binary (default: next to this one, built if missing).
    #[arg(long)]
    lvskitd_bin: Option<PathBuf>,
    /// Allowed distance of the measured failover gap from 3·interval +
    /// skew, in milliseconds (the target: 1 ms).
    #[arg(long, default_value_t = 1.0)]
    failover_tolerance_ms: f64,
    /// Print the HTML report on stdout (used inside the VM).
    #[arg(long, hide = true)]
    report_to_stdout: bool,
}

/// A sibling binary of this one; built with cargo when it is missing and
/// this binary was started by `cargo run`.
fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("current_exe")?;
    let path = exe.with_file_name(name);
    if path.exists() {
        return Ok(path);
    }
    let Some(cargo) = std::env::var_os("CARGO") else {
        bail!(
            "{} is missing; build it with `cargo build -p lvskit --bins`",
            path.display()
        );
    };
    println!("lvskit-lab: building {name}");
    let mut command = std::process::Command::new(cargo);
    command.args(["build", "-p", "lvskit", "--bin", name]);
    if exe.components().any(|c| c.as_os_str() == "release") {
        command.arg("--release");
    }
    let status = command.status().context("cargo build")?;
    if !status.success() || !path.exists() {
        bail!("cargo build of {name} failed ({status})");
    }
    Ok(path)
}

fn seconds(value: f64, what: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{what} must be a positive number of seconds, not {value}"))
}

fn main() -> Result<()> {
    let Args {
        command: Command::Run(args),
    } = Args::parse();
    if !lvskit_testlab::is_root() {
        bail!("the lab needs root (network namespaces, IPVS, qemu)");
    }
    if args.apps < 2 {
        bail!("--apps must be at least 2");
    }
    let options = Options {
        vm: args.vm,
        director: args.director,
        peer: args.peer,
        apps: args.apps,
        advert_int: seconds(args.advert_int, "--advert-int")?,
        delay_loop: seconds(args.delay_loop, "--delay-loop")?,
        report: args.report,
        app_bin: match args.app_bin {
            Some(path) => path,
            None => sibling("lvskit-app")?,
        },
        lvskitd_bin: match args.lvskitd_bin {
            Some(path) => path,
            None => sibling("lvskitd")?,
        },
        failover_tolerance: Duration::try_from_secs_f64(args.failover_tolerance_ms / 1000.0)
            .context("--failover-tolerance-ms must be a non-negative number")?,
        report_to_stdout: args.report_to_stdout,
    };
    if !lvskit::lab::run(&options)? {
        eprintln!("lvskit-lab: some expectations failed");
        std::process::exit(1);
    }
    Ok(())
}
