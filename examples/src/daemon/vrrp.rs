//! keepalived.conf `vrrp_instance` blocks → `lvskit_vrrp` configurations,
//! and the drivers that run them on their own thread.

use anyhow::{Context, Result, bail};
use futures::{StreamExt as _, TryStreamExt as _};
use lvskit_kconf::model::{self as kconf, AuthType};
use lvskit_vrrp::linux::driver::{Driver, DriverOptions, InstanceOptions, unspecified};
use lvskit_vrrp::{Authentication, Config, InitialState, UnicastPeer, Version, VirtualAddress};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::packet_core::NetlinkPayload;
use std::collections::BTreeMap;
use std::collections::HashSet;
use std::net::IpAddr;
use tokio::sync::mpsc;

/// One instance, ready for a driver.
#[derive(Debug, Clone)]
pub struct PlannedInstance {
    /// The interface it runs on.
    pub interface: String,
    /// The engine's configuration.
    pub config: Config,
}

/// Maps a parsed `vrrp_instance` to the engine's configuration.
pub fn instance_config(
    instance: &kconf::VrrpInstance,
    global_version: u8,
) -> Result<PlannedInstance> {
    let name = &instance.name;
    let interface = instance
        .interface
        .clone()
        .with_context(|| format!("vrrp_instance {name} has no interface"))?;
    let vrid = instance
        .virtual_router_id
        .with_context(|| format!("vrrp_instance {name} has no virtual_router_id"))?;
    let vips: Vec<VirtualAddress> = instance
        .virtual_ipaddress
        .iter()
        .map(|v| {
            let mut vip = VirtualAddress::new(v.address);
            vip.prefix_len = v.prefix_len;
            vip
        })
        .collect();
    if vips.is_empty() {
        bail!("vrrp_instance {name} has no virtual_ipaddress");
    }
    let v6 = vips[0].address.is_ipv6();
    let primary = instance
        .unicast_src_ip
        .or(instance.mcast_src_ip)
        .unwrap_or(unspecified(v6));
    let mut config = Config::new(vrid, primary, vips);
    config.name = name.as_str().into();
    config.priority = instance.priority;
    let version = if instance.version == 0 {
        global_version
    } else {
        instance.version
    };
    config.version = if version == 2 {
        Version::V2
    } else {
        Version::V3
    };
    config.advert_interval = instance.advert_int;
    if let Some(auth) = &instance.authentication {
        if config.version == Version::V2 {
            match auth.auth_type {
                AuthType::Pass => {
                    config.authentication = Authentication::password(&auth.auth_pass)
                        .map_err(|e| anyhow::anyhow!("{name}: auth_pass of {} bytes", e.0))?;
                }
                AuthType::Ah => bail!("{name}: auth_type AH is not supported by lvskitd"),
            }
        } else {
            tracing::warn!("({name}) authentication is ignored with VRRPv3 (RFC 5798 §9)");
        }
    }
    config.unicast_peers = instance
        .unicast_peer
        .iter()
        .map(|p| UnicastPeer::new(*p))
        .collect();
    config.preempt = !instance.nopreempt;
    config.preempt_delay = instance.preempt_delay;
    config.initial_state = match instance.state {
        kconf::InitialState::Master => InitialState::Master,
        kconf::InitialState::Backup => InitialState::Backup,
    };
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("vrrp_instance {name}: {e}"))?;
    Ok(PlannedInstance { interface, config })
}

/// The instances of `config`, grouped by interface.
pub fn plan(config: &kconf::Config) -> Result<BTreeMap<String, Vec<PlannedInstance>>> {
    let mut by_interface: BTreeMap<String, Vec<PlannedInstance>> = BTreeMap::new();
    for group in &config.vrrp_sync_groups {
        // Said out loud rather than ignored: the Linux driver cannot tie
        // instances together yet, so each member elects on its own.
        tracing::warn!(
            "vrrp_sync_group {} is not applied yet: its members {:?} change state independently",
            group.name,
            group.group
        );
    }
    for instance in &config.vrrp_instances {
        let planned = instance_config(instance, config.global.vrrp_version)?;
        by_interface
            .entry(planned.interface.clone())
            .or_default()
            .push(planned);
    }
    Ok(by_interface)
}

/// Runs the drivers on a dedicated thread with its own single-threaded
/// runtime, so that nothing the checkers do (load, a panic) can delay an
/// advertisement. Returns when `shutdown` fires and every driver has sent
/// its priority-0 adverts and removed its VIPs.
/// Each driver's snapshots are handed to `monitor`; with `keep_vips` (`-V`)
/// the VIPs stay on the interfaces at shutdown.
pub fn spawn(
    plan: BTreeMap<String, Vec<PlannedInstance>>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    monitor: super::monitor::VrrpMonitor,
    keep_vips: bool,
) -> Result<std::thread::JoinHandle<Result<()>>> {
    std::thread::Builder::new()
        .name("vrrp".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("VRRP runtime")?;
            runtime.block_on(run(plan, shutdown, monitor, keep_vips))
        })
        .context("spawn the VRRP thread")
}

async fn run(
    plan: BTreeMap<String, Vec<PlannedInstance>>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    monitor: super::monitor::VrrpMonitor,
    keep_vips: bool,
) -> Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for (interface, instances) in plan {
        let options = DriverOptions {
            keep_vips_on_shutdown: keep_vips,
            ..DriverOptions::default()
        };
        let mut driver = Driver::new(&interface, options)
            .await
            .with_context(|| format!("VRRP on {interface}"))?;
        for instance in instances {
            let name = instance.config.name.clone();
            // Notify scripts are run by the daemon from the VIP events
            // (see `watch_roles`), not by the driver.
            let options = InstanceOptions::default();
            driver
                .add_instance(instance.config, options)
                .await
                .with_context(|| format!("vrrp_instance {name}"))?;
        }
        monitor.watch(driver.snapshots(), driver.transitions());
        let mut shutdown = shutdown.clone();
        tasks.spawn(async move {
            let result = driver
                .run(async move {
                    let _ = shutdown.wait_for(|stop| *stop).await;
                })
                .await;
            (interface, result)
        });
    }
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((_, Ok(()))) => {}
            Ok((interface, Err(e))) => {
                tracing::error!("VRRP driver on {interface} stopped: {e}");
                first_error.get_or_insert(anyhow::anyhow!("VRRP on {interface}: {e}"));
            }
            Err(e) => {
                tracing::error!("VRRP driver task failed: {e}");
                first_error.get_or_insert(anyhow::anyhow!("VRRP driver task: {e}"));
            }
        }
    }
    match first_error {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

/// One instance as the role watcher sees it.
#[derive(Debug, Clone)]
pub struct Watched {
    /// Instance name.
    pub name: String,
    /// Interface holding its VIPs.
    pub interface: String,
    /// Its VIPs.
    pub vips: Vec<IpAddr>,
}

impl Watched {
    /// The instances of a plan.
    pub fn from_plan(plan: &BTreeMap<String, Vec<PlannedInstance>>) -> Vec<Watched> {
        plan.values()
            .flatten()
            .map(|p| Watched {
                name: p.config.name.to_string(),
                interface: p.interface.clone(),
                vips: p
                    .config
                    .virtual_addresses
                    .iter()
                    .map(|v| v.address)
                    .collect(),
            })
            .collect()
    }
}

/// Follows each instance's role from the kernel's address events: an
/// instance whose VIPs are on its interface is master (RFC 5798 §6.4.3:
/// a master holds the virtual addresses; a backup does not).
///
/// The VRRP driver reports state changes only to notify scripts, and a
/// process per change is too slow to drive the IPVS sync daemon; the
/// address events of `RTNLGRP_IPV4_IFADDR`/`RTNLGRP_IPV6_IFADDR` arrive
/// at once and cost nothing. Sends `(instance, is_master)` on every change,
/// starting with the initial state.
pub async fn watch_roles(
    instances: Vec<Watched>,
    roles: mpsc::UnboundedSender<(String, bool)>,
) -> Result<()> {
    use rtnetlink::MulticastGroup;
    let (connection, handle, mut messages) = rtnetlink::new_multicast_connection(&[
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
    ])
    .context("rtnetlink address events")?;
    tokio::spawn(connection);
    let indexes: Vec<u32> = instances
        .iter()
        .map(|i| {
            nix::net::if_::if_nametoindex(i.interface.as_str())
                .with_context(|| format!("no interface {}", i.interface))
        })
        .collect::<Result<_>>()?;
    let mut present: HashSet<(u32, IpAddr)> = HashSet::new();
    let mut dump = handle.address().get().execute();
    while let Some(message) = dump.try_next().await.context("address dump")? {
        if let Some(key) = super::addresses::address_key(&message) {
            present.insert(key);
        }
    }
    let mut last: Vec<Option<bool>> = vec![None; instances.len()];
    let mut report = |present: &HashSet<(u32, IpAddr)>| {
        for (i, instance) in instances.iter().enumerate() {
            let master = instance
                .vips
                .iter()
                .any(|vip| present.contains(&(indexes[i], *vip)));
            if last[i] != Some(master) {
                last[i] = Some(master);
                let _ = roles.send((instance.name.clone(), master));
            }
        }
    };
    report(&present);
    while let Some((message, _)) = messages.next().await {
        match message.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(m)) => {
                if let Some(key) = super::addresses::address_key(&m) {
                    present.insert(key);
                }
            }
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(m)) => {
                if let Some(key) = super::addresses::address_key(&m) {
                    present.remove(&key);
                }
            }
            _ => continue,
        }
        report(&present);
    }
    bail!("the address event socket closed")
}
