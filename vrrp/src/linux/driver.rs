//! The event loop that runs [`Instance`]s on one Linux interface.
//!
//! One [`Driver`] owns, for its interface, one raw socket per address
//! family, one `AF_PACKET` socket for announcements, an rtnetlink
//! connection, a link-event subscription and one precise timer; every
//! instance on the interface shares them. The loop follows the engine's
//! contract: feed an input (`handle_packet`, `handle_timeout`,
//! `handle_link_state`, `handle_track`), then drain `poll_action` and
//! apply the actions (adverts first, the rest in order), then re-arm the
//! timer at the earliest `poll_timeout`.
//!
//! Embedders follow the instances through [`Driver::transitions`] (every
//! state change with its reason) and [`Driver::snapshots`] (the latest
//! state and counters of each).
//!
//! Not done here: Accept_Mode (the engine exposes it; no filter is
//! installed, so a non-owner master accepts traffic to its VIPs, as
//! keepalived does outside `vrrp_strict`).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;

use super::Error;
use super::announce::{FrameSender, gratuitous_arp, unsolicited_na};
use super::netlink::{Interface, LinkEvent, LinkWatcher, Netlink};
use super::script::{ScriptOutcome, ScriptRunner};
use super::socket::{AdvertSocket, Received};
use super::timer::PreciseTimer;
use crate::{
    Action, AddressFamily, Config, Instance, LinkState, Reason, RxMeta, State, Statistics, TrackId,
    TrackKind, TrackStatus,
};

/// One instance as the driver last left it: what a monitor (a status
/// query, a statistics dump, a metrics endpoint) reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSnapshot {
    /// The instance's name.
    pub name: Arc<str>,
    /// Its VRID.
    pub vrid: u8,
    /// Its state.
    pub state: State,
    /// Its priority after tracking adjustments.
    pub effective_priority: u8,
    /// The master it hears (itself when master), if known.
    pub master_address: Option<IpAddr>,
    /// Its counters (RFC 6527 statistics and drops by reason).
    pub statistics: Statistics,
}

/// One state change of an instance, as the engine reported it
/// ([`Action::StateChanged`]), published by the driver when it applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateTransition {
    /// The instance's name.
    pub instance: Arc<str>,
    /// Its VRID.
    pub vrid: u8,
    /// Its address family.
    pub family: AddressFamily,
    /// The state it left.
    pub from: State,
    /// The state it entered.
    pub to: State,
    /// Why.
    pub reason: Reason,
    /// When the driver applied it.
    pub at: SystemTime,
}

/// How many transitions a slow [`Driver::transitions`] subscriber may lag
/// behind before it misses the oldest (it is told how many it missed).
pub const TRANSITION_BACKLOG: usize = 256;

/// Per-instance options that concern the driver, not the protocol.
#[derive(Debug, Clone, Default)]
pub struct InstanceOptions {
    /// keepalived's `use_vmac`: put the VIPs on a macvlan (`vrrp.VRID`, or
    /// `vrrp6.VRID` for IPv6) whose MAC is 00:00:5e:00:01:VRID (IPv6:
    /// 00:00:5e:00:02:VRID) and send adverts, gratuitous ARPs and
    /// unsolicited NAs from it. An IPv6 VMAC gets the instance's link-local
    /// source address (the interface's) as its only link-local address.
    pub use_vmac: bool,
    /// keepalived's `notify`: run with the four notify arguments on every
    /// notification (`INSTANCE name STATE priority`).
    pub notify: Option<String>,
}

/// Driver-wide options.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    /// How scripts (track and notify) are run.
    pub scripts: ScriptRunner,
    /// How often each track script runs (keepalived's `interval`).
    pub track_interval: Duration,
    /// keepalived's `-V` (`--dont-release-vrrp`): on shutdown a master
    /// still sends priority 0 but leaves its VIPs on the interface.
    pub keep_vips_on_shutdown: bool,
}

impl Default for DriverOptions {
    fn default() -> Self {
        Self {
            scripts: ScriptRunner {
                user: None,
                timeout: Duration::from_secs(5),
            },
            track_interval: Duration::from_secs(1),
            keep_vips_on_shutdown: false,
        }
    }
}

/// Where one instance's addresses and announcements go.
#[derive(Debug)]
struct Slot {
    instance: Instance,
    family: AddressFamily,
    /// Interface holding the VIPs (the VMAC or the interface itself).
    vip_ifindex: u32,
    /// Source MAC of announcements.
    mac: [u8; 6],
    /// The VMAC's own sockets, if `use_vmac`.
    vmac: Option<Vmac>,
    options: InstanceOptions,
}

#[derive(Debug)]
struct Vmac {
    index: u32,
    adverts: Arc<AdvertSocket>,
    frames: FrameSender,
}

/// The event the loop is woken by.
enum Event {
    Shutdown,
    /// The deadline that expired.
    Timer(Instant),
    Packet(AddressFamily, Received),
    Link(LinkEvent),
    Track(usize, ScriptOutcome),
    VmacPacket(usize, Received, Vec<u8>),
    /// A failed `recvmsg`: logged, not fatal (the next packet may be fine).
    ReceiveError(Error),
    LinkWatchClosed,
}

/// Runs VRRP instances on one interface. See the module documentation.
///
/// ```no_run
/// use lvskit_vrrp::linux::driver::{Driver, DriverOptions, InstanceOptions, unspecified};
/// use lvskit_vrrp::{Config, VirtualAddress};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let mut driver = Driver::new("eth0", DriverOptions::default()).await?;
/// // VRID 51, the source address taken from eth0, VIP 10.0.3.100/24.
/// let vip = VirtualAddress::new("10.0.3.100".parse()?).with_prefix_len(24);
/// let config = Config::new(51, unspecified(false), vec![vip]);
/// driver.add_instance(config, InstanceOptions::default()).await?;
/// // Until Ctrl-C; then priority 0 is sent and the VIP removed.
/// driver.run(async { tokio::signal::ctrl_c().await.unwrap_or(()) }).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Driver {
    netlink: Netlink,
    interface: Interface,
    v4: Option<AdvertSocket>,
    v6: Option<AdvertSocket>,
    frames: FrameSender,
    link_local: Option<Ipv6Addr>,
    router: bool,
    slots: Vec<Slot>,
    by_vrid: HashMap<(bool, u8), usize>,
    options: DriverOptions,
    /// Running notify scripts; awaited on shutdown so that `STOP` runs.
    notifications: JoinSet<()>,
    /// Published after every input; see [`Driver::snapshots`].
    snapshots: watch::Sender<Vec<InstanceSnapshot>>,
    /// Every state change; see [`Driver::transitions`].
    transitions: broadcast::Sender<StateTransition>,
    /// Set when shutting down with `keep_vips_on_shutdown`: `DelVip`s
    /// are skipped.
    keeping_vips: bool,
}

/// The IPv4 virtual router MAC address 00:00:5e:00:01:VRID (RFC 5798 §7.3).
pub fn virtual_mac(vrid: u8) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, 0x01, vrid]
}

/// The IPv6 virtual router MAC address 00:00:5e:00:02:VRID (RFC 5798 §7.3).
pub fn virtual_mac_v6(vrid: u8) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, 0x02, vrid]
}

impl Driver {
    /// Prepares a driver for interface `name`. Needs CAP_NET_ADMIN and
    /// CAP_NET_RAW and a tokio runtime.
    pub async fn new(name: &str, options: DriverOptions) -> Result<Self, Error> {
        let netlink = Netlink::open()?;
        let interface = netlink.interface(name).await?;
        let frames = FrameSender::open(interface.index)?;
        // The R flag of unsolicited NAs (RFC 4861 §4.4) says whether we route.
        let router = std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{name}/forwarding"))
            .map(|value| value.trim() == "1")
            .unwrap_or(false);
        Ok(Self {
            netlink,
            interface,
            v4: None,
            v6: None,
            frames,
            link_local: None,
            router,
            slots: Vec::new(),
            by_vrid: HashMap::new(),
            options,
            notifications: JoinSet::new(),
            snapshots: watch::Sender::new(Vec::new()),
            transitions: broadcast::Sender::new(TRANSITION_BACKLOG),
            keeping_vips: false,
        })
    }

    /// Subscribes to every state change of every instance, in order, with
    /// its reason: what an embedder reacts to instead of inferring the
    /// state from address events. Subscribe before [`Driver::run`] to see
    /// the startup transitions. A subscriber more than
    /// [`TRANSITION_BACKLOG`] behind gets
    /// [`RecvError::Lagged`](broadcast::error::RecvError::Lagged) once and
    /// then the newest; when the driver stops, `recv` returns
    /// [`RecvError::Closed`](broadcast::error::RecvError::Closed).
    pub fn transitions(&self) -> broadcast::Receiver<StateTransition> {
        self.transitions.subscribe()
    }

    /// Subscribes to the instances' snapshots, one per instance in the
    /// order they were added, published after every input the running
    /// loop handles (and once more after shutdown). Costs nothing while
    /// nobody subscribes.
    pub fn snapshots(&self) -> watch::Receiver<Vec<InstanceSnapshot>> {
        self.snapshots.subscribe()
    }

    fn publish_snapshots(&self) {
        if self.snapshots.receiver_count() == 0 {
            return;
        }
        self.snapshots.send_replace(
            self.slots
                .iter()
                .map(|slot| {
                    let instance = &slot.instance;
                    InstanceSnapshot {
                        name: instance.config().name.clone(),
                        vrid: instance.config().vrid,
                        state: instance.state(),
                        effective_priority: instance.effective_priority(),
                        master_address: instance.master_address(),
                        statistics: instance.statistics().clone(),
                    }
                })
                .collect(),
        );
    }

    /// The interface this driver runs on.
    pub fn interface(&self) -> &Interface {
        &self.interface
    }

    /// The instances, in the order they were added.
    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.slots.iter().map(|slot| &slot.instance)
    }

    /// Adds an instance. An unspecified `primary_address` (0.0.0.0 or ::)
    /// is replaced by the interface's: its primary IPv4 address, or its
    /// IPv6 link-local address (RFC 5798 §5.1.1.1, §5.1.2.1). The instance's
    /// `ifindex` is set to the interface's, so packets from elsewhere drop.
    pub async fn add_instance(
        &mut self,
        mut config: Config,
        options: InstanceOptions,
    ) -> Result<(), Error> {
        let family = config.family();
        let v6 = matches!(family, AddressFamily::Ipv6);
        if config.primary_address.is_unspecified() {
            config.primary_address = self.source_address(v6, &config).await?;
        }
        if v6 && self.link_local.is_none() {
            self.link_local = self.netlink.link_local_v6(self.interface.index).await?;
        }
        config.ifindex = Some(self.interface.index);
        let vrid = config.vrid;
        if self.by_vrid.contains_key(&(v6, vrid)) {
            return Err(Error::DuplicateVrid(vrid));
        }
        if v6 && self.v6.is_none() {
            self.v6 = Some(AdvertSocket::open_v6(
                &self.interface.name,
                self.interface.index,
                true,
            )?);
        }
        if !v6 && self.v4.is_none() {
            self.v4 = Some(AdvertSocket::open_v4(
                &self.interface.name,
                self.interface.index,
                true,
            )?);
        }
        let (vip_ifindex, mac, vmac) = if options.use_vmac {
            let (mac, name) = if v6 {
                (virtual_mac_v6(vrid), format!("vrrp6.{vrid}"))
            } else {
                (virtual_mac(vrid), format!("vrrp.{vrid}"))
            };
            let index = self
                .netlink
                .create_vmac(self.interface.index, &name, mac)
                .await?;
            // Receive on the VMAC too, as keepalived does: a peer's adverts
            // leave from the same virtual MAC, and macvlan hands frames whose
            // source is one of its own MACs to that macvlan, not the parent.
            let adverts = match config.primary_address {
                IpAddr::V6(source) => {
                    self.netlink.set_link_local(index, source).await?;
                    Arc::new(AdvertSocket::open_v6(&name, index, true)?)
                }
                IpAddr::V4(_) => Arc::new(AdvertSocket::open_v4(&name, index, true)?),
            };
            let frames = FrameSender::open(index)?;
            (
                index,
                mac,
                Some(Vmac {
                    index,
                    adverts,
                    frames,
                }),
            )
        } else {
            (self.interface.index, self.interface.mac, None)
        };
        let instance = Instance::new(config).map_err(Error::Config)?;
        self.by_vrid.insert((v6, vrid), self.slots.len());
        self.slots.push(Slot {
            instance,
            family,
            vip_ifindex,
            mac,
            vmac,
            options,
        });
        Ok(())
    }

    async fn source_address(&self, v6: bool, config: &Config) -> Result<IpAddr, Error> {
        let index = self.interface.index;
        if v6 {
            match self.netlink.link_local_v6(index).await? {
                Some(address) => Ok(address.into()),
                None => Err(Error::NoSourceAddress {
                    interface: self.interface.name.clone(),
                    what: "IPv6 link-local",
                }),
            }
        } else {
            let vips: Vec<IpAddr> = config.virtual_addresses.iter().map(|v| v.address).collect();
            match self.netlink.primary_v4(index, &vips).await? {
                Some(address) => Ok(address.into()),
                None => Err(Error::NoSourceAddress {
                    interface: self.interface.name.clone(),
                    what: "IPv4",
                }),
            }
        }
    }

    /// Runs every instance until `shutdown` completes, then shuts them down
    /// (a master sends priority 0 and removes its VIPs, RFC 5798 §6.4.3),
    /// removes the VMAC interfaces and returns.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let mut timer = PreciseTimer::new()?;
        let mut links = LinkWatcher::open()?;
        let (track_tx, mut track_rx) = mpsc::unbounded_channel();
        let tracks = self.start_track_scripts(track_tx);
        let (vmac_tx, mut vmac_rx) = mpsc::unbounded_channel();
        for (index, slot) in self.slots.iter().enumerate() {
            if let Some(vmac) = &slot.vmac {
                let socket = vmac.adverts.clone();
                let sender = vmac_tx.clone();
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 65536];
                    while let Ok(received) = socket.recv(&mut buffer).await {
                        let message = buffer[received.offset..received.end].to_vec();
                        if sender.send((index, received, message)).is_err() {
                            return;
                        }
                    }
                });
            }
        }
        let mut tracked_links = HashMap::new();
        for slot in &self.slots {
            for (id, track) in slot.instance.config().tracks.iter().enumerate() {
                if let TrackKind::Interface(name) = &track.kind {
                    let index = self.netlink.interface(name).await?.index;
                    tracked_links.entry(index).or_insert_with(Vec::new).push(id);
                }
            }
        }

        let now = Instant::now();
        let link = if self.interface.up {
            LinkState::Up
        } else {
            LinkState::Down
        };
        for index in 0..self.slots.len() {
            let instance = &mut self.slots[index].instance;
            instance.handle_link_state(now, link);
            instance.startup(now);
            self.apply(index).await;
        }
        self.publish_snapshots();

        // The engine's clock must not run backwards; `last` is the time of
        // the previous input.
        let mut last = now;
        let mut buffer_v4 = vec![0u8; 65536];
        let mut buffer_v6 = vec![0u8; 65536];
        tokio::pin!(shutdown);
        let result = loop {
            let deadline = self
                .slots
                .iter()
                .filter_map(|s| s.instance.poll_timeout())
                .min();
            if let Err(error) = timer.set(deadline) {
                break Err(error);
            }
            let event = {
                let v4 = self.v4.as_ref();
                let v6 = self.v6.as_ref();
                tokio::select! {
                    biased;
                    () = &mut shutdown => Ok(Event::Shutdown),
                    fired = timer.wait() => fired.map(Event::Timer),
                    received = recv(v4, &mut buffer_v4) => Ok(received.map_or_else(Event::ReceiveError, |r| Event::Packet(AddressFamily::Ipv4, r))),
                    received = recv(v6, &mut buffer_v6) => Ok(received.map_or_else(Event::ReceiveError, |r| Event::Packet(AddressFamily::Ipv6, r))),
                    event = links.next() => Ok(event.map_or(Event::LinkWatchClosed, Event::Link)),
                    Some((script, outcome)) = track_rx.recv() => Ok(Event::Track(script, outcome)),
                    Some((index, received, message)) = vmac_rx.recv() => Ok(Event::VmacPacket(index, received, message)),
                }
            };
            // Inputs are stamped with when they happened, not with when this
            // process got the CPU: a timer with its deadline (so that the
            // advert cadence does not drift by the wake-up latency), a packet
            // with its kernel receive time. Both matter for failover on a
            // loaded host.
            let now = match &event {
                Ok(Event::Timer(deadline)) => *deadline,
                Ok(Event::Packet(_, received) | Event::VmacPacket(_, received, _)) => {
                    received.arrival_instant(Instant::now(), SystemTime::now())
                }
                _ => Instant::now(),
            }
            .max(last);
            last = now;
            match event {
                Err(error) => break Err(error),
                Ok(Event::ReceiveError(error)) => {
                    tracing::warn!(%error, "cannot receive advertisement");
                }
                Ok(Event::Shutdown) => break Ok(()),
                Ok(Event::LinkWatchClosed) => {
                    break Err(Error::Unsupported("rtnetlink link watch closed"));
                }
                Ok(Event::Timer(_)) => {
                    for index in 0..self.slots.len() {
                        if self.slots[index]
                            .instance
                            .poll_timeout()
                            .is_some_and(|at| at <= now)
                        {
                            self.slots[index].instance.handle_timeout(now);
                            self.apply(index).await;
                        }
                    }
                }
                Ok(Event::VmacPacket(index, received, message)) => {
                    // The VMAC stands in for the interface the instance runs on.
                    let meta = RxMeta::new(received.source, received.destination, received.ttl)
                        .with_ifindex(self.interface.index);
                    let _ = self.slots[index]
                        .instance
                        .handle_packet(now, &meta, &message);
                    self.apply(index).await;
                }
                Ok(Event::Packet(family, received)) => {
                    let buffer = if matches!(family, AddressFamily::Ipv4) {
                        &buffer_v4
                    } else {
                        &buffer_v6
                    };
                    let message = &buffer[received.offset..received.end];
                    let v6 = matches!(family, AddressFamily::Ipv6);
                    // Byte 1 of every VRRP message is the VRID (RFC 5798 §5.2).
                    if let Some(&index) = message
                        .get(1)
                        .and_then(|vrid| self.by_vrid.get(&(v6, *vrid)))
                        // A VMAC instance hears its adverts on the VMAC.
                        && self.slots[index].vmac.is_none()
                    {
                        let meta = RxMeta::new(received.source, received.destination, received.ttl)
                            .with_ifindex(self.interface.index);
                        // A drop is counted by the instance and logged at debug.
                        let _ = self.slots[index]
                            .instance
                            .handle_packet(now, &meta, message);
                        self.apply(index).await;
                    }
                }
                Ok(Event::Link(event)) => {
                    if event.index == self.interface.index && event.up != self.interface.up {
                        self.interface.up = event.up;
                        let state = if event.up {
                            LinkState::Up
                        } else {
                            LinkState::Down
                        };
                        tracing::info!(interface = %self.interface.name, up = event.up, "Netlink reports {} {}", self.interface.name, if event.up { "up" } else { "down" });
                        for index in 0..self.slots.len() {
                            self.slots[index].instance.handle_link_state(now, state);
                            self.apply(index).await;
                        }
                    }
                    if let Some(ids) = tracked_links.get(&event.index) {
                        let status = if event.up {
                            TrackStatus::Up
                        } else {
                            TrackStatus::Down
                        };
                        for index in 0..self.slots.len() {
                            for &id in ids {
                                let tracks = &self.slots[index].instance.config().tracks;
                                if matches!(
                                    tracks.get(id).map(|t| &t.kind),
                                    Some(TrackKind::Interface(_))
                                ) {
                                    let _ = self.slots[index].instance.handle_track(
                                        now,
                                        TrackId(id),
                                        status,
                                    );
                                }
                            }
                            self.apply(index).await;
                        }
                    }
                }
                Ok(Event::Track(script, outcome)) => {
                    let status = if outcome.passed() {
                        TrackStatus::Up
                    } else {
                        TrackStatus::Down
                    };
                    let name = &tracks[script];
                    for index in 0..self.slots.len() {
                        let ids: Vec<usize> = self.slots[index]
                            .instance
                            .config()
                            .tracks
                            .iter()
                            .enumerate()
                            .filter(|(_, t)| matches!(&t.kind, TrackKind::Script(s) if s == name))
                            .map(|(id, _)| id)
                            .collect();
                        for id in ids {
                            let _ =
                                self.slots[index]
                                    .instance
                                    .handle_track(now, TrackId(id), status);
                        }
                        self.apply(index).await;
                    }
                }
            }
            self.publish_snapshots();
        };

        let now = Instant::now();
        self.keeping_vips = self.options.keep_vips_on_shutdown;
        for index in 0..self.slots.len() {
            self.slots[index].instance.shutdown(now);
            self.apply(index).await;
        }
        self.publish_snapshots();
        for slot in &self.slots {
            if let Some(vmac) = &slot.vmac
                && let Err(error) = self.netlink.delete_link(vmac.index).await
            {
                tracing::warn!(%error, "cannot remove VMAC interface");
            }
        }
        // Each script is killed after its timeout, so this ends.
        while self.notifications.join_next().await.is_some() {}
        result
    }

    /// Starts one task per distinct track script; each runs its script
    /// every `track_interval` and sends the outcome. Returns the scripts,
    /// indexed as in the messages.
    fn start_track_scripts(
        &self,
        sender: mpsc::UnboundedSender<(usize, ScriptOutcome)>,
    ) -> Vec<String> {
        let mut scripts: Vec<String> = Vec::new();
        for slot in &self.slots {
            for track in &slot.instance.config().tracks {
                if let TrackKind::Script(script) = &track.kind
                    && !scripts.contains(script)
                {
                    scripts.push(script.clone());
                }
            }
        }
        for (index, script) in scripts.iter().enumerate() {
            let runner = self.options.scripts.clone();
            let interval = self.options.track_interval;
            let sender = sender.clone();
            let words: Vec<String> = script.split_whitespace().map(str::to_string).collect();
            tokio::spawn(async move {
                let Some((program, arguments)) = words.split_first() else {
                    return;
                };
                let mut ticks = tokio::time::interval(interval);
                loop {
                    ticks.tick().await;
                    let outcome = match runner.run(program, arguments).await {
                        Ok(outcome) => outcome,
                        Err(error) => {
                            tracing::warn!(%error, "track script failed to run");
                            ScriptOutcome::Failure(-1)
                        }
                    };
                    if sender.send((index, outcome)).is_err() {
                        return;
                    }
                }
            });
        }
        scripts
    }

    /// Drains and applies the actions of instance `index`.
    ///
    /// Advertisements go out first, then the rest in the engine's order.
    /// Becoming master yields `AddVip`s before the first advert; an rtnetlink
    /// round trip per VIP would delay that advert, and with it the failover
    /// as the wire sees it (keepalived also sends the advert before it
    /// installs the addresses). The addresses still precede the gratuitous
    /// ARPs that announce them.
    ///
    /// Failures are logged, not returned: one failed `ip addr add` must not
    /// stop the adverts of every instance.
    async fn apply(&mut self, index: usize) {
        let mut rest = Vec::new();
        while let Some(action) = self.slots[index].instance.poll_action() {
            if matches!(action, Action::SendAdvert(_)) {
                self.apply_logged(index, action).await;
            } else {
                rest.push(action);
            }
        }
        for action in rest {
            self.apply_logged(index, action).await;
        }
    }

    async fn apply_logged(&mut self, index: usize, action: Action) {
        if let Err(error) = self.apply_one(index, action).await {
            tracing::warn!(instance = %self.slots[index].instance.config().name, %error, "action failed");
        }
    }

    async fn apply_one(&mut self, index: usize, action: Action) -> Result<(), Error> {
        let slot = &self.slots[index];
        match action {
            Action::SendAdvert(advert) => {
                let socket = match (&slot.vmac, slot.family) {
                    (Some(vmac), _) => Some(&*vmac.adverts),
                    (None, AddressFamily::Ipv4) => self.v4.as_ref(),
                    (None, AddressFamily::Ipv6) => self.v6.as_ref(),
                };
                match socket {
                    Some(socket) => socket.send(advert.source, advert.destination, &advert.payload),
                    None => Ok(()),
                }
            }
            Action::AddVip(vip) => self.netlink.add_address(slot.vip_ifindex, &vip).await,
            Action::DelVip(_) if self.keeping_vips => Ok(()),
            Action::DelVip(vip) => self.netlink.delete_address(slot.vip_ifindex, &vip).await,
            Action::GratuitousArp(address) => self
                .frames_of(slot)
                .send(&gratuitous_arp(slot.mac, address)),
            Action::UnsolicitedNa(address) => match self.link_local {
                Some(source) => self.frames_of(slot).send(&unsolicited_na(
                    slot.mac,
                    source,
                    address,
                    self.router,
                )),
                None => Err(Error::NoSourceAddress {
                    interface: self.interface.name.clone(),
                    what: "IPv6 link-local",
                }),
            },
            Action::StateChanged { from, to, reason } => {
                let config = slot.instance.config();
                // No subscriber is not an error.
                let _ = self.transitions.send(StateTransition {
                    instance: config.name.clone(),
                    vrid: config.vrid,
                    family: slot.family,
                    from,
                    to,
                    reason,
                    at: SystemTime::now(),
                });
                Ok(())
            }
            Action::Notify(notify) => {
                if let Some(script) = &slot.options.notify {
                    let runner = self.options.scripts.clone();
                    let script = script.clone();
                    let arguments = notify.arguments().to_vec();
                    while self.notifications.try_join_next().is_some() {}
                    self.notifications.spawn(async move {
                        match runner.run(&script, &arguments).await {
                            Ok(ScriptOutcome::Success) => {}
                            Ok(outcome) => {
                                tracing::warn!(script, ?outcome, "notify script did not succeed")
                            }
                            Err(error) => tracing::warn!(%error, "notify script failed to run"),
                        }
                    });
                }
                Ok(())
            }
        }
    }

    fn frames_of<'a>(&'a self, slot: &'a Slot) -> &'a FrameSender {
        slot.vmac.as_ref().map_or(&self.frames, |vmac| &vmac.frames)
    }
}

async fn recv(socket: Option<&AdvertSocket>, buffer: &mut [u8]) -> Result<Received, Error> {
    match socket {
        Some(socket) => socket.recv(buffer).await,
        None => std::future::pending().await,
    }
}

/// Parses `ADDRESS/PREFIX` (prefix optional: /32 or /128).
pub fn parse_vip(text: &str) -> Option<crate::VirtualAddress> {
    let (address, prefix) = match text.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix.parse::<u8>().ok()?)),
        None => (text, None),
    };
    let address: IpAddr = address.parse().ok()?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let vip = crate::VirtualAddress::new(address);
    match prefix {
        Some(prefix) if prefix <= max => Some(vip.with_prefix_len(prefix)),
        Some(_) => None,
        None => Some(vip),
    }
}

/// 0.0.0.0 or ::, meaning "the interface's address" to [`Driver::add_instance`].
pub fn unspecified(v6: bool) -> IpAddr {
    if v6 {
        Ipv6Addr::UNSPECIFIED.into()
    } else {
        Ipv4Addr::UNSPECIFIED.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vips_parse() {
        let vip = parse_vip("10.0.3.100/24").unwrap();
        assert_eq!(vip.address, "10.0.3.100".parse::<IpAddr>().unwrap());
        assert_eq!(vip.prefix_len, 24);
        assert_eq!(parse_vip("2001:db8::1").unwrap().prefix_len, 128);
        assert_eq!(parse_vip("10.0.0.1").unwrap().prefix_len, 32);
        assert!(parse_vip("10.0.0.1/33").is_none());
        assert!(parse_vip("10.0.0.1/x").is_none());
        assert!(parse_vip("nonsense/24").is_none());
    }

    #[test]
    fn vmac() {
        assert_eq!(virtual_mac(51), [0, 0, 0x5e, 0, 1, 51]);
        assert_eq!(virtual_mac_v6(51), [0, 0, 0x5e, 0, 2, 51]);
    }
}
