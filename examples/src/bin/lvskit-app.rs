//! `lvskit-app`: an LVS-DR real server.
//!
//! Accepts packets for the VIP (on `lo` with `arp_ignore=1` and
//! `arp_announce=2`, or through an nftables redirect with `--mode nft`),
//! serves HTTP answering with its own name (`/`) and `ok` (`/health`), and
//! on SIGTERM or SIGINT removes everything it set before exiting.
//!
//! ```text
//! lvskit-app --name app1 --vip 10.0.0.100 [--listen 0.0.0.0:80] [--mode lo|nft]
//! ```

use anyhow::{Context, Result};
use clap::Parser;
use lvskit::app::{Mode, Plan, Setup, serve};
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use tokio::signal::unix::{SignalKind, signal};

/// An LVS-DR real server: VIP on lo (or an nftables redirect) and HTTP.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The name the server answers with (default: the host name).
    #[arg(long)]
    name: Option<String>,
    /// A virtual address to accept (repeat for several).
    #[arg(long = "vip", required = true)]
    vips: Vec<Ipv4Addr>,
    /// Where to serve HTTP.
    #[arg(long, default_value = "0.0.0.0:80")]
    listen: SocketAddr,
    /// How packets for the VIP are accepted: `lo` (VIP on lo + ARP sysctls)
    /// or `nft` (nftables redirect, the article's alternative).
    #[arg(long, value_enum, default_value = "lo")]
    mode: Mode,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let name = match args.name {
        Some(name) => name,
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .context("host name")?
            .trim()
            .to_owned(),
    };
    // Signals first: a SIGTERM during setup must still lead to cleanup.
    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let plan = Plan {
        vips: args.vips,
        mode: args.mode,
        port: args.listen.port(),
    };
    let mut setup = Setup::apply(&plan).await?;
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            setup.undo().await?;
            return Err(e).with_context(|| format!("cannot listen on {}", args.listen));
        }
    };
    println!("lvskit-app {name} ready on {}", args.listen);
    std::io::stdout().flush()?;
    let outcome = tokio::select! {
        result = serve(listener, name.clone()) => result,
        _ = terminate.recv() => { tracing::info!("SIGTERM: cleaning up"); Ok(()) }
        _ = interrupt.recv() => { tracing::info!("SIGINT: cleaning up"); Ok(()) }
    };
    let undone = setup.undo().await;
    outcome?;
    undone?;
    println!("lvskit-app {name} stopped, everything it set is removed");
    Ok(())
}
