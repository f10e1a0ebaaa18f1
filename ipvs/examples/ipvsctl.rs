//! `ipvsctl`: a small IPVS tool on lvskit-ipvs.
//!
//! ```text
//! ipvsctl list [--json]      what `ipvsadm -Ln` shows, plus statistics
//! ipvsctl apply FILE.json    desired state in; the plan printed, applied,
//!                            and the number of operations reported
//! ipvsctl plan FILE.json     the plan only (dry run)
//! ipvsctl flush              delete every service
//! ipvsctl info               IPVS version, connection table, timeouts, daemons
//! ```
//!
//! `--netns PATH` runs any of them inside a network namespace. The JSON of
//! `apply` is a [`lvskit_ipvs::Desired`].

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use lvskit_ipvs::{
    Desired, ForwardingMethod, Handle, OpenOptions, ServiceFlags, ServiceKey, ServiceState,
};

#[derive(Parser)]
#[command(about = "Inspect and reconcile the kernel's IPVS table")]
struct Cli {
    /// Open the netlink socket inside this network namespace.
    #[arg(long, global = true)]
    netns: Option<PathBuf>,
    /// Run `modprobe ip_vs` if IPVS is not loaded.
    #[arg(long, global = true)]
    load_module: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List services and destinations with statistics.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Apply a desired state from a JSON file.
    Apply {
        /// The desired state.
        file: PathBuf,
    },
    /// Print the plan for a desired state without applying it.
    Plan {
        /// The desired state.
        file: PathBuf,
    },
    /// Delete every service.
    Flush,
    /// Version, connection table size, timeouts and sync daemons.
    Info,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut options = OpenOptions::new().load_module(cli.load_module);
    if let Some(path) = &cli.netns {
        options = options.netns(path);
    }
    let mut ipvs = Handle::open_with(&options).context("opening IPVS")?;
    match cli.command {
        Cmd::List { json } => {
            let state = ipvs.list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&state)?);
            } else {
                print_table(&ipvs.info()?, &state);
            }
        }
        Cmd::Apply { file } => {
            let desired = read_desired(&file)?;
            let report = ipvs.apply(&desired)?;
            for (op, result) in report.plan.operations.iter().zip(&report.results) {
                match result {
                    Ok(()) => println!("{op}"),
                    Err(e) => println!("{op}: FAILED: {e}"),
                }
            }
            let failed = report.failures().count();
            println!("{} operations, {failed} failed", report.operations());
            anyhow::ensure!(failed == 0, "{failed} operations failed");
        }
        Cmd::Plan { file } => {
            let plan = ipvs.plan(&read_desired(&file)?)?;
            for op in &plan.operations {
                println!("{op}");
            }
            println!("{} operations", plan.len());
        }
        Cmd::Flush => ipvs.flush()?,
        Cmd::Info => {
            let info = ipvs.info()?;
            let (a, b, c) = info.version;
            println!(
                "IP Virtual Server version {a}.{b}.{c} (size={})",
                info.connection_table_size
            );
            let t = ipvs.timeouts()?;
            println!(
                "Timeout (tcp tcpfin udp): {} {} {}",
                t.tcp, t.tcp_fin, t.udp
            );
            for d in ipvs.daemons()? {
                println!("{d:?}");
            }
        }
    }
    Ok(())
}

fn read_desired(file: &PathBuf) -> Result<Desired> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))
}

fn print_table(info: &lvskit_ipvs::Info, state: &[ServiceState]) {
    let (a, b, c) = info.version;
    println!(
        "IP Virtual Server version {a}.{b}.{c} (size={})",
        info.connection_table_size
    );
    println!("Prot LocalAddress:Port Scheduler Flags");
    println!(
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn      Conns   InBytes  OutBytes"
    );
    for entry in state {
        let s = &entry.service.service;
        let head = match s.key {
            ServiceKey::Address {
                protocol,
                address,
                port,
            } => format!("{protocol}  {}", SocketAddr::new(address, port)),
            ServiceKey::Fwmark { .. } => s.key.to_string(),
        };
        let mut flags = String::new();
        if s.flags.contains(ServiceFlags::PERSISTENT) {
            flags.push_str(&format!(" persistent {}", s.timeout));
        }
        if let Some(pe) = &s.persistence_engine {
            flags.push_str(&format!(" pe {pe}"));
        }
        let st = &entry.service.stats;
        println!(
            "{head} {}{flags}   conns {} in {}B out {}B",
            s.scheduler, st.connections, st.in_bytes, st.out_bytes
        );
        for d in &entry.destinations {
            let forward = match d.destination.forwarding {
                ForwardingMethod::Masq => "Masq",
                ForwardingMethod::Local => "Local",
                ForwardingMethod::Tunnel { .. } => "Tunnel",
                ForwardingMethod::DirectRoute => "Route",
                ForwardingMethod::Bypass => "Bypass",
                _ => "Other",
            };
            println!(
                "  -> {:<28} {:<7} {:<6} {:<10} {:<10} {:>8} {:>9} {:>9}",
                d.destination.key().to_string(),
                forward,
                d.destination.weight,
                d.active_connections,
                d.inactive_connections,
                d.stats.connections,
                d.stats.in_bytes,
                d.stats.out_bytes
            );
        }
    }
}
