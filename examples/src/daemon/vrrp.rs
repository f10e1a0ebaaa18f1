//! keepalived.conf `vrrp_instance` and `vrrp_sync_group` blocks →
//! `lvskit_vrrp` configurations, and the driver that runs them on its own
//! thread and takes a reload's differences while running.

use anyhow::{Context, Result, bail};
use futures::{StreamExt as _, TryStreamExt as _};
use lvskit_kconf::model::{self as kconf, AuthType};
use lvskit_vrrp::linux::driver::{
    Driver, DriverHandle, DriverOptions, GroupTransition, InstanceSpec, unspecified,
};
use lvskit_vrrp::{
    AddressFamily, Authentication, Config, InitialState, Track, TrackKind, UnicastPeer, Version,
    VirtualAddress,
};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::packet_core::NetlinkPayload;
use std::collections::HashSet;
use std::net::IpAddr;
use tokio::sync::{broadcast, mpsc};

/// One instance, ready for a driver.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    config.tracks = instance
        .track_interface
        .iter()
        .map(|tracked| {
            // keepalived's default weight 0: the interface down is FAULT.
            let weight = tracked.weight.unwrap_or(0);
            let weight = i16::try_from(weight)
                .ok()
                .filter(|w| (-253..=253).contains(w))
                .with_context(|| {
                    format!(
                        "{name}: track_interface {} weight {weight} is outside -253..253",
                        tracked.name
                    )
                })?;
            let mut track =
                Track::new(TrackKind::Interface(tracked.name.clone())).with_weight(weight);
            track.reverse = tracked.reverse;
            Ok(track)
        })
        .collect::<Result<_>>()?;
    if !instance.track_script.is_empty() {
        // Said out loud rather than ignored.
        tracing::warn!(
            "({name}) track_script is not applied by lvskitd yet: its scripts do not change the priority"
        );
    }
    config.initial_state = match instance.state {
        kconf::InitialState::Master => InitialState::Master,
        kconf::InitialState::Backup => InitialState::Backup,
    };
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("vrrp_instance {name}: {e}"))?;
    Ok(PlannedInstance { interface, config })
}

/// A `vrrp_sync_group` with its members' configurations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedGroup {
    /// The group name.
    pub name: String,
    /// Its members, in the order of its `group { }` block.
    pub members: Vec<PlannedInstance>,
}

/// What the VRRP driver runs: instances alone, and sync groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Instances in no sync group.
    pub instances: Vec<PlannedInstance>,
    /// Sync groups.
    pub groups: Vec<PlannedGroup>,
}

impl Plan {
    /// Every instance, alone or in a group.
    pub fn all(&self) -> impl Iterator<Item = &PlannedInstance> {
        self.instances
            .iter()
            .chain(self.groups.iter().flat_map(|g| &g.members))
    }
}

impl PlannedInstance {
    fn spec(&self) -> InstanceSpec {
        // Notify scripts are run by the daemon from the driver's
        // transitions, not by the driver.
        InstanceSpec::new(self.interface.clone(), self.config.clone())
    }

    /// What cannot change in place: the interface, the VRID and the
    /// address family (a changed one is another virtual router).
    fn identity(&self) -> (&str, u8, AddressFamily) {
        (&self.interface, self.config.vrid, self.config.family())
    }
}

/// The instances of `config`, alone or in their sync groups. A group
/// naming an unknown instance, or an instance in two groups, is an error.
pub fn plan(config: &kconf::Config) -> Result<Plan> {
    let mut alone: Vec<PlannedInstance> = config
        .vrrp_instances
        .iter()
        .map(|instance| instance_config(instance, config.global.vrrp_version))
        .collect::<Result<_>>()?;
    let mut groups = Vec::new();
    for group in &config.vrrp_sync_groups {
        let mut members = Vec::new();
        for name in &group.group {
            let Some(index) = alone.iter().position(|p| &*p.config.name == name) else {
                if config.vrrp_instances.iter().any(|i| &i.name == name) {
                    bail!(
                        "vrrp_sync_group {}: {name} is already in another group",
                        group.name
                    );
                }
                bail!("vrrp_sync_group {}: no vrrp_instance {name}", group.name);
            };
            members.push(alone.remove(index));
        }
        groups.push(PlannedGroup {
            name: group.name.clone(),
            members,
        });
    }
    Ok(Plan {
        instances: alone,
        groups,
    })
}

/// The VRRP thread as the main loop drives it: start, reload by
/// difference, group notifications, stop.
#[derive(Debug)]
pub struct Vrrp {
    thread: std::thread::JoinHandle<Result<()>>,
    driver: DriverHandle,
    groups: broadcast::Receiver<GroupTransition>,
    plan: Plan,
    roles: mpsc::UnboundedSender<(String, bool)>,
    role_watcher: tokio::task::JoinHandle<()>,
}

impl Vrrp {
    /// Starts the driver on a dedicated thread with its own
    /// single-threaded runtime, so that nothing the checkers do (load, a
    /// panic) can delay an advertisement. Its snapshots and transitions go
    /// to `monitor`, each instance's role (its VIPs present) to `roles`;
    /// with `keep_vips` (`-V`) the VIPs stay on the interfaces at shutdown;
    /// with `rt_priority` (`vrrp_rt_priority`) the thread runs SCHED_RR.
    /// The thread ends when `shutdown` fires and every instance has sent
    /// its priority-0 adverts and removed its VIPs.
    pub async fn start(
        plan: Plan,
        shutdown: tokio::sync::watch::Receiver<bool>,
        monitor: super::monitor::VrrpMonitor,
        keep_vips: bool,
        roles: mpsc::UnboundedSender<(String, bool)>,
        rt_priority: Option<u8>,
    ) -> Result<Vrrp> {
        let (ready, started) = tokio::sync::oneshot::channel();
        let setup = plan.clone();
        let thread = std::thread::Builder::new()
            .name("vrrp".into())
            .spawn(move || {
                if let Some(priority) = rt_priority {
                    super::realtime::set_current_thread("VRRP", priority);
                }
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("VRRP runtime")?;
                runtime.block_on(run(setup, shutdown, monitor, keep_vips, ready))
            })
            .context("spawn the VRRP thread")?;
        let Ok((driver, groups)) = started.await else {
            return match thread.join() {
                Ok(Err(e)) => Err(e),
                _ => bail!("the VRRP thread ended before it started"),
            };
        };
        let role_watcher = spawn_role_watcher(&plan, roles.clone());
        Ok(Vrrp {
            thread,
            driver,
            groups,
            plan,
            roles,
            role_watcher,
        })
    }

    /// The next state change of a sync group.
    pub async fn next_group_transition(&mut self) -> GroupTransition {
        loop {
            match self.groups.recv().await {
                Ok(transition) => return transition,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!("{missed} sync group state changes were not notified");
                }
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            }
        }
    }

    /// SIGHUP: applies `config`'s VRRP part by difference.
    ///
    /// - An instance or group that is gone is removed (a master sends
    ///   priority 0 and releases its VIPs).
    /// - One whose interface, VRID and address family are unchanged (and,
    ///   for a group, whose members are the same) is updated in place: it
    ///   keeps its state, so a master stays master, with its new priority,
    ///   VIPs, advert interval and the rest.
    /// - Otherwise it is removed and added again, and a new one is added:
    ///   it starts in BACKUP (or MASTER as an owner).
    ///
    /// Every change is tried; the first error is returned after.
    pub async fn reload(&mut self, config: &kconf::Config) -> Result<()> {
        let new = plan(config)?;
        let mut first_error = None;
        let mut note = |what: String, result: Result<(), lvskit_vrrp::linux::Error>| {
            if let Err(e) = result {
                tracing::error!("{what}: {e}");
                first_error.get_or_insert(anyhow::anyhow!("{what}: {e}"));
            } else {
                tracing::info!("{what}");
            }
        };
        let driver = &self.driver;
        let mut kept_groups = Vec::new();
        for group in &self.plan.groups {
            let same = new.groups.iter().find(|g| {
                g.name == group.name
                    && g.members.len() == group.members.len()
                    && g.members.iter().zip(&group.members).all(|(a, b)| {
                        a.identity() == b.identity() && a.config.name == b.config.name
                    })
            });
            match same {
                Some(same) => kept_groups.push((group, same)),
                None => note(
                    format!("vrrp_sync_group {} removed", group.name),
                    driver.remove(group.name.as_str()).await,
                ),
            }
        }
        let mut kept = Vec::new();
        for instance in &self.plan.instances {
            let same = new.instances.iter().find(|i| {
                i.config.name == instance.config.name && i.identity() == instance.identity()
            });
            match same {
                Some(same) => kept.push((instance, same)),
                None => note(
                    format!("({}) removed", instance.config.name),
                    driver.remove(instance.config.name.clone()).await,
                ),
            }
        }
        let updates = kept.iter().copied().chain(
            kept_groups
                .iter()
                .flat_map(|(old, new)| old.members.iter().zip(&new.members)),
        );
        for (old, new) in updates {
            if old != new {
                note(
                    format!("({}) updated in place", new.config.name),
                    driver.update_instance(new.spec()).await,
                );
            }
        }
        for group in &new.groups {
            if !kept_groups.iter().any(|(_, kept)| kept.name == group.name) {
                note(
                    format!("vrrp_sync_group {} added", group.name),
                    driver
                        .add_sync_group(
                            group.name.as_str(),
                            group.members.iter().map(PlannedInstance::spec).collect(),
                        )
                        .await,
                );
            }
        }
        for instance in &new.instances {
            if !kept
                .iter()
                .any(|(_, kept)| kept.config.name == instance.config.name)
            {
                note(
                    format!("({}) added", instance.config.name),
                    driver.add_instance(instance.spec()).await,
                );
            }
        }
        // Restarted only for a change: a restart reports every role again.
        if Watched::from_plan(&new) != Watched::from_plan(&self.plan) {
            self.role_watcher.abort();
            self.role_watcher = spawn_role_watcher(&new, self.roles.clone());
        }
        self.plan = new;
        match first_error {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// Waits for the VRRP thread to end (after the shutdown signal) and
    /// returns the group state changes not yet taken (the groups' STOP).
    pub async fn join(mut self) -> Result<Vec<GroupTransition>> {
        self.role_watcher.abort();
        let thread = self.thread;
        match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(result)) => result?,
            _ => bail!("the VRRP thread panicked"),
        }
        let mut left = Vec::new();
        while let Ok(transition) = self.groups.try_recv() {
            left.push(transition);
        }
        Ok(left)
    }
}

fn spawn_role_watcher(
    plan: &Plan,
    roles: mpsc::UnboundedSender<(String, bool)>,
) -> tokio::task::JoinHandle<()> {
    let watched = Watched::from_plan(plan);
    tokio::spawn(async move {
        if let Err(e) = watch_roles(watched, roles).await {
            tracing::error!("role watcher: {e:#}");
        }
    })
}

type Started = tokio::sync::oneshot::Sender<(DriverHandle, broadcast::Receiver<GroupTransition>)>;

async fn run(
    plan: Plan,
    shutdown: tokio::sync::watch::Receiver<bool>,
    monitor: super::monitor::VrrpMonitor,
    keep_vips: bool,
    ready: Started,
) -> Result<()> {
    let options = DriverOptions {
        keep_vips_on_shutdown: keep_vips,
        ..DriverOptions::default()
    };
    let mut driver = Driver::new(options).context("VRRP driver")?;
    for instance in &plan.instances {
        driver
            .add_instance(instance.spec())
            .await
            .with_context(|| format!("vrrp_instance {}", instance.config.name))?;
    }
    for group in &plan.groups {
        driver
            .add_sync_group(
                group.name.as_str(),
                group.members.iter().map(PlannedInstance::spec).collect(),
            )
            .await
            .with_context(|| format!("vrrp_sync_group {}", group.name))?;
    }
    monitor.watch(driver.snapshots(), driver.transitions());
    let _ = ready.send((driver.handle(), driver.group_transitions()));
    let mut shutdown = shutdown;
    driver
        .run(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await
        .context("VRRP driver stopped")
}

/// One instance as the role watcher sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    pub fn from_plan(plan: &Plan) -> Vec<Watched> {
        plan.all()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> kconf::Config {
        lvskit_kconf::parse_str(text, &lvskit_kconf::Options::offline()).config
    }

    fn instance(name: &str, interface: &str, vrid: u8, vip: &str) -> String {
        format!(
            "vrrp_instance {name} {{\n interface {interface}\n virtual_router_id {vrid}\n priority 100\n\
             virtual_ipaddress {{\n {vip}\n }}\n}}\n"
        )
    }

    #[test]
    fn sync_group_members_leave_the_instances_alone() {
        let config = parse(&format!(
            "vrrp_sync_group VG_1 {{\n group {{\n VI_B\n VI_A\n }}\n}}\n{}{}{}",
            instance("VI_A", "eth0", 51, "10.0.0.100/24"),
            instance("VI_B", "eth1", 52, "10.0.1.100/24"),
            instance("VI_C", "eth0", 53, "10.0.0.103/24"),
        ));
        let plan = plan(&config).unwrap();
        let names = |instances: &[PlannedInstance]| -> Vec<String> {
            instances
                .iter()
                .map(|i| i.config.name.to_string())
                .collect()
        };
        assert_eq!(names(&plan.instances), ["VI_C"]);
        assert_eq!(plan.groups.len(), 1);
        assert_eq!(plan.groups[0].name, "VG_1");
        // In the group's order, each on its own interface.
        assert_eq!(names(&plan.groups[0].members), ["VI_B", "VI_A"]);
        assert_eq!(plan.groups[0].members[0].interface, "eth1");
        assert_eq!(plan.all().count(), 3);
        assert_eq!(Watched::from_plan(&plan).len(), 3);
    }

    #[test]
    fn a_group_of_an_unknown_or_grouped_instance_is_refused() {
        let a = instance("VI_A", "eth0", 51, "10.0.0.100/24");
        let unknown = parse(&format!(
            "vrrp_sync_group VG_1 {{\n group {{\n VI_A\n VI_X\n }}\n}}\n{a}"
        ));
        let error = plan(&unknown).unwrap_err().to_string();
        assert!(error.contains("no vrrp_instance VI_X"), "{error}");
        let twice = parse(&format!(
            "vrrp_sync_group VG_1 {{\n group {{\n VI_A\n }}\n}}\n\
             vrrp_sync_group VG_2 {{\n group {{\n VI_A\n }}\n}}\n{a}"
        ));
        let error = plan(&twice).unwrap_err().to_string();
        assert!(error.contains("already in another group"), "{error}");
    }

    #[test]
    fn track_interface_becomes_an_interface_track_with_its_weight() {
        let text = instance("VI_A", "eth0", 51, "10.0.0.100/24").replace(
            " priority 100\n",
            " priority 100\n track_interface {\n eth1\n eth2 weight -20\n eth3 weight 10 reverse\n }\n",
        );
        let planned = plan(&parse(&text)).unwrap().instances.remove(0);
        let tracks: Vec<(TrackKind, i16, bool)> = planned
            .config
            .tracks
            .iter()
            .map(|t| (t.kind.clone(), t.weight, t.reverse))
            .collect();
        let interface = |name: &str| TrackKind::Interface(name.into());
        assert_eq!(
            tracks,
            [
                (interface("eth1"), 0, false),
                (interface("eth2"), -20, false),
                (interface("eth3"), 10, true),
            ]
        );
    }

    #[test]
    fn identity_is_interface_vrid_and_family() {
        let config = parse(&instance("VI_A", "eth0", 51, "10.0.0.100/24"));
        let planned = plan(&config).unwrap().instances.remove(0);
        let mut changed = planned.clone();
        changed.config.priority = 200;
        changed
            .config
            .virtual_addresses
            .push(VirtualAddress::new("10.0.0.101".parse().unwrap()));
        assert_eq!(planned.identity(), changed.identity());
        assert_ne!(planned, changed);
        changed.interface = "eth1".into();
        assert_ne!(planned.identity(), changed.identity());
    }
}
