//! `vrrpd`: one VRRP instance on one interface, configured from flags.
//!
//! ```text
//! vrrpd --interface eth0 --vrid 51 --priority 100 --vip 10.0.3.100/24 \
//!       --version 2 --advert-int 1s --auth-pass secret
//! ```
//!
//! It runs in the foreground and logs one line per state transition
//! (keepalived's wording: `(VR_51) Entering MASTER STATE`). On SIGTERM or
//! SIGINT a master sends one advert with priority 0, removes its VIPs, and
//! the program exits with status 0.
//!
//! The defaults follow keepalived where it is more lenient than the RFCs,
//! so that it interoperates: the IPv6 address list need not start with a
//! link-local address and the VIP list is not compared. `--strict` turns
//! both RFC 9568 §7.1 checks on.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use lvskit_vrrp::linux::driver::{
    Driver, DriverOptions, InstanceOptions, InstanceSpec, parse_vip, unspecified,
};
use lvskit_vrrp::linux::script::{ScriptRunner, ScriptUser};
use lvskit_vrrp::{
    Authentication, ChecksumMode, Config, InitialState, Scope, Track, TrackKind, UnicastPeer,
    Version,
};

#[derive(Debug, Parser)]
#[command(about = "Run one VRRP (RFC 3768 / RFC 9568) instance in the foreground")]
struct Args {
    /// The interface to run on.
    #[arg(long)]
    interface: String,
    /// Virtual router id, 1..=255.
    #[arg(long)]
    vrid: u8,
    /// Priority, 1..=255 (255: address owner).
    #[arg(long, default_value_t = 100)]
    priority: u8,
    /// A virtual address, ADDRESS[/PREFIX]; repeat for more.
    #[arg(long = "vip", required = true, value_parser = vip)]
    vips: Vec<lvskit_vrrp::VirtualAddress>,
    /// Label of every IPv4 VIP, as `ip addr ... label` (e.g. `eth0:vip`;
    /// it must start with the interface name).
    #[arg(long)]
    vip_label: Option<String>,
    /// Scope of every VIP: global, site, link or host (default: link for
    /// link-local addresses, else global). Linux refuses a scope other than
    /// the primary address's for a VIP in the primary's subnet.
    #[arg(long, value_parser = ["global", "site", "link", "host"])]
    vip_scope: Option<String>,
    /// VRRP version, 2 or 3.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=3))]
    version: u8,
    /// Advertisement interval, e.g. `1s`, `100ms`.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    advert_int: Duration,
    /// VRRPv2 simple password (at most 8 bytes).
    #[arg(long)]
    auth_pass: Option<String>,
    /// Source address in unicast mode (default: the interface's).
    #[arg(long)]
    unicast_src: Option<IpAddr>,
    /// A unicast peer; repeat for more. Without any, adverts are multicast.
    #[arg(long = "unicast-peer")]
    unicast_peers: Vec<IpAddr>,
    /// Do not preempt a lower-priority master.
    #[arg(long)]
    nopreempt: bool,
    /// Wait this long before preempting after startup.
    #[arg(long, value_parser = humantime::parse_duration)]
    preempt_delay: Option<Duration>,
    /// v3 over IPv4 checksum: `pseudo` (with the IPv4 pseudo-header, as
    /// keepalived by default) or `rfc9568` (keepalived's v3_checksum_as_v2).
    #[arg(long, default_value = "pseudo", value_parser = ["pseudo", "rfc9568"])]
    checksum: String,
    /// Initial state, as keepalived's `state`: MASTER or BACKUP.
    #[arg(long, default_value = "BACKUP", value_parser = ["MASTER", "BACKUP"])]
    state: String,
    /// Instance name, for logs and notify scripts (default VR_<vrid>).
    #[arg(long)]
    name: Option<String>,
    /// Put the VIPs on a macvlan with MAC 00:00:5e:00:01:VRID
    /// (IPv6: 00:00:5e:00:02:VRID).
    #[arg(long)]
    use_vmac: bool,
    /// Script run with `INSTANCE name STATE priority` on every change.
    #[arg(long)]
    notify: Option<String>,
    /// A track script (its exit status: 0 up); repeat for more.
    #[arg(long = "track-script")]
    track_scripts: Vec<String>,
    /// A tracked interface (up and running: up); repeat for more.
    #[arg(long = "track-interface")]
    track_interfaces: Vec<String>,
    /// Weight of the track scripts and interfaces (0: down means FAULT).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    track_weight: i16,
    /// How often track scripts run.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    track_interval: Duration,
    /// Run scripts as this user.
    #[arg(long)]
    script_user: Option<String>,
    /// Kill scripts after this long.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    script_timeout: Duration,
    /// Apply RFC 9568 §7.1's optional checks that keepalived skips.
    #[arg(long)]
    strict: bool,
}

fn vip(text: &str) -> Result<lvskit_vrrp::VirtualAddress, String> {
    parse_vip(text).ok_or_else(|| format!("`{text}` is not ADDRESS[/PREFIX]"))
}

fn config(args: &Args) -> anyhow::Result<Config> {
    let v6 = args.vips[0].address.is_ipv6();
    let primary = args.unicast_src.unwrap_or(unspecified(v6));
    let mut vips = args.vips.clone();
    for vip in &mut vips {
        if let Some(label) = &args.vip_label {
            if vip.address.is_ipv6() {
                bail!("--vip-label: IPv6 addresses have no label");
            }
            vip.label = Some(label.clone());
        }
        if let Some(scope) = &args.vip_scope {
            vip.scope = match scope.as_str() {
                "site" => Scope::Site,
                "link" => Scope::Link,
                "host" => Scope::Host,
                _ => Scope::Global,
            };
        }
    }
    let mut config = Config::new(args.vrid, primary, vips);
    if let Some(name) = &args.name {
        config.name = name.as_str().into();
    }
    config.priority = args.priority;
    config.version = if args.version == 2 {
        Version::V2
    } else {
        Version::V3
    };
    config.advert_interval = args.advert_int;
    if let Some(password) = &args.auth_pass {
        if args.version != 2 {
            bail!("--auth-pass needs --version 2 (VRRPv3 has no authentication)");
        }
        config.authentication = Authentication::password(password)
            .map_err(|e| anyhow::anyhow!("--auth-pass: {} bytes, at most 8", e.0))?;
    }
    config.unicast_peers = args
        .unicast_peers
        .iter()
        .map(|p| UnicastPeer::new(*p))
        .collect();
    config.preempt = !args.nopreempt;
    if let Some(delay) = args.preempt_delay {
        config.preempt_delay = delay;
    }
    config.checksum = if args.checksum == "rfc9568" {
        ChecksumMode::Rfc9568
    } else {
        ChecksumMode::PseudoHeader
    };
    config.initial_state = if args.state == "MASTER" {
        InitialState::Master
    } else {
        InitialState::Backup
    };
    config.tracks = args
        .track_scripts
        .iter()
        .map(|script| TrackKind::Script(script.clone()))
        .chain(
            args.track_interfaces
                .iter()
                .map(|name| TrackKind::Interface(name.clone())),
        )
        .map(|kind| Track::new(kind).with_weight(args.track_weight))
        .collect();
    config.validation.verify_addresses = args.strict;
    config.validation.require_link_local_first = args.strict;
    config.validate().context("invalid configuration")?;
    Ok(config)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("Received SIGTERM, stopping"),
        _ = int.recv() => tracing::info!("Received SIGINT, stopping"),
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let config = config(&args)?;
    let user = args
        .script_user
        .as_deref()
        .map(ScriptUser::by_name)
        .transpose()?;
    let options = DriverOptions {
        scripts: ScriptRunner {
            user,
            timeout: args.script_timeout,
        },
        track_interval: args.track_interval,
        ..DriverOptions::default()
    };
    let instance_options = InstanceOptions {
        use_vmac: args.use_vmac,
        notify: args.notify.clone(),
    };
    // One thread: the driver is a single event loop, and a second thread
    // would only add wake-up latency to the timers.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut driver = Driver::new(options)?;
        driver
            .add_instance(InstanceSpec {
                interface: args.interface.clone(),
                config,
                options: instance_options,
            })
            .await?;
        tracing::info!(interface = %args.interface, vrid = args.vrid, "vrrpd started");
        driver.run(shutdown_signal()).await?;
        tracing::info!("vrrpd stopped");
        Ok(())
    })
}
