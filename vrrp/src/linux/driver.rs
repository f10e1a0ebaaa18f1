//! The event loop that runs [`Instance`]s and [`SyncGroup`]s on Linux
//! interfaces.
//!
//! One [`Driver`] owns, for each interface its instances name, one raw
//! socket per address family, one `AF_PACKET` socket for announcements,
//! and shares one rtnetlink connection, one link-event subscription and
//! one precise timer between all. Each socket is read by its own task into
//! one queue; the loop follows the engine's contract: feed an input
//! (`handle_packet`, `handle_timeout`, `handle_link_state`,
//! `handle_track`), then drain the actions and apply them (adverts first,
//! the rest in order), then re-arm the timer at the earliest
//! `poll_timeout`.
//!
//! A sync group's members may run on different interfaces: the group is
//! one engine ([`SyncGroup`]) whose members' actions go to each member's
//! own interface.
//!
//! While it runs, a [`DriverHandle`] adds, updates (in place: a master
//! stays master) and removes instances and groups.
//!
//! Embedders follow the instances through [`Driver::transitions`] (every
//! state change with its reason), [`Driver::group_transitions`] and
//! [`Driver::snapshots`] (the latest state and counters of each).
//!
//! Not done here: Accept_Mode (the engine exposes it; no filter is
//! installed, so a non-owner master accepts traffic to its VIPs, as
//! keepalived does outside `vrrp_strict`).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinSet};

use super::Error;
use super::announce::{FrameSender, gratuitous_arp, unsolicited_na};
use super::netlink::{Interface, LinkEvent, LinkWatcher, Netlink};
use super::script::{ScriptOutcome, ScriptRunner};
use super::socket::{AdvertSocket, Received};
use super::timer::PreciseTimer;
use crate::{
    Action, AddressFamily, Config, GroupAction, Instance, LinkState, Notify, NotifyEvent, Reason,
    ReconfigureError, RxMeta, State, Statistics, SyncGroup, TrackId, TrackKind, TrackStatus,
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
    /// The instance's effective priority right after the change (what
    /// keepalived's notifications carry).
    pub priority: u8,
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

/// One instance to run, as given to [`Driver::add_instance`],
/// [`Driver::add_sync_group`] or a [`DriverHandle`].
#[derive(Debug, Clone)]
pub struct InstanceSpec {
    /// The interface it runs on (its adverts, VIPs and link state).
    pub interface: String,
    /// The engine's configuration. An unspecified `primary_address`
    /// (0.0.0.0 or ::) is replaced by the interface's: its primary IPv4
    /// address, or its IPv6 link-local address (RFC 5798 §5.1.1.1,
    /// §5.1.2.1). `ifindex` is set to the interface's, so packets from
    /// elsewhere drop.
    pub config: Config,
    /// What concerns the driver.
    pub options: InstanceOptions,
}

impl InstanceSpec {
    /// An instance on `interface` with default options.
    pub fn new(interface: impl Into<String>, config: Config) -> Self {
        InstanceSpec {
            interface: interface.into(),
            config,
            options: InstanceOptions::default(),
        }
    }
}

/// A sync group's state change (its `GROUP name STATE` notification),
/// published by the driver when the group's members have all changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupTransition {
    /// The group's name.
    pub group: Arc<str>,
    /// `MASTER`, `BACKUP`, `FAULT` or `STOP`.
    pub event: NotifyEvent,
    /// When the driver applied it.
    pub at: SystemTime,
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

/// What the driver keeps per interface in use, shared by every instance
/// on it.
#[derive(Debug)]
struct Link {
    interface: Interface,
    v4: Option<Arc<AdvertSocket>>,
    v6: Option<Arc<AdvertSocket>>,
    frames: FrameSender,
    link_local: Option<Ipv6Addr>,
    /// The R flag of unsolicited NAs (RFC 4861 §4.4): whether we route.
    router: bool,
}

/// Where one instance's adverts, addresses and announcements go.
#[derive(Debug)]
struct Member {
    /// Index into [`Driver::links`].
    link: usize,
    family: AddressFamily,
    /// Interface holding the VIPs (the VMAC or the interface itself).
    vip_ifindex: u32,
    /// Source MAC of announcements.
    mac: [u8; 6],
    /// The VMAC's own sockets, if `use_vmac`.
    vmac: Option<Vmac>,
    options: InstanceOptions,
    /// `(ifindex, track)` of each tracked interface.
    tracked_links: Vec<(u32, TrackId)>,
}

#[derive(Debug)]
struct Vmac {
    index: u32,
    adverts: Arc<AdvertSocket>,
    frames: FrameSender,
    reader: AbortHandle,
}

/// The engine behind one unit: an instance alone or a sync group.
#[derive(Debug)]
enum Engine {
    /// Boxed: an instance is ten times a group's size.
    Single(Box<Instance>),
    Group(SyncGroup),
}

/// An output of an [`Engine`].
enum Output {
    Member(usize, Action),
    Group(Notify),
}

impl Engine {
    fn instances(&self) -> &[Instance] {
        match self {
            Engine::Single(instance) => std::slice::from_ref(instance),
            Engine::Group(group) => group.members(),
        }
    }

    /// The name a removal names: the instance's, or the group's.
    fn name(&self) -> &str {
        match self {
            Engine::Single(instance) => &instance.config().name,
            Engine::Group(group) => group.name(),
        }
    }

    fn startup(&mut self, now: Instant) {
        match self {
            Engine::Single(instance) => instance.startup(now),
            Engine::Group(group) => group.startup(now),
        }
    }

    fn shutdown(&mut self, now: Instant) {
        match self {
            Engine::Single(instance) => instance.shutdown(now),
            Engine::Group(group) => group.shutdown(now),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Engine::Single(instance) => instance.poll_timeout(),
            Engine::Group(group) => group.poll_timeout(),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Engine::Single(instance) => instance.handle_timeout(now),
            Engine::Group(group) => group.handle_timeout(now),
        }
    }

    /// A drop is counted by the instance and logged at debug.
    fn handle_packet(&mut self, now: Instant, meta: &RxMeta, bytes: &[u8]) {
        let _ = match self {
            Engine::Single(instance) => instance.handle_packet(now, meta, bytes),
            // The group finds the member by VRID, family and interface.
            Engine::Group(group) => group.handle_packet(now, meta, bytes),
        };
    }

    fn handle_link_state(&mut self, now: Instant, member: usize, link: LinkState) {
        match self {
            Engine::Single(instance) => instance.handle_link_state(now, link),
            Engine::Group(group) => {
                let _ = group.handle_link_state(now, member, link);
            }
        }
    }

    fn handle_track(&mut self, now: Instant, member: usize, track: TrackId, status: TrackStatus) {
        // The driver only reports tracks it read from the configuration.
        let _ = match self {
            Engine::Single(instance) => instance.handle_track(now, track, status),
            Engine::Group(group) => group.handle_track(now, member, track, status),
        };
    }

    fn reconfigure(&mut self, now: Instant, member: usize, config: Config) -> Result<(), Error> {
        match self {
            Engine::Single(instance) => instance.reconfigure(now, config).map_err(Error::Config),
            Engine::Group(group) => match group.reconfigure_member(now, member, config) {
                Ok(()) => Ok(()),
                Err(ReconfigureError::Config(e)) => Err(Error::Config(e)),
                Err(e) => Err(Error::NoSuchInstance(e.to_string())),
            },
        }
    }

    fn poll(&mut self) -> Option<Output> {
        match self {
            Engine::Single(instance) => instance.poll_action().map(|a| Output::Member(0, a)),
            Engine::Group(group) => group.poll_action().map(|output| match output {
                GroupAction::Member { index, action } => Output::Member(index, action),
                GroupAction::Notify(notify) => Output::Group(notify),
            }),
        }
    }
}

/// An instance alone or a sync group, with where each member's traffic
/// goes.
#[derive(Debug)]
struct Unit {
    engine: Engine,
    members: Vec<Member>,
}

/// A packet read by one of the receive tasks.
struct Inbound {
    /// The interface of the socket that read it (a VMAC's, or the link's).
    rx_ifindex: u32,
    received: Received,
    message: Vec<u8>,
}

/// A change requested through a [`DriverHandle`].
#[derive(Debug)]
enum Command {
    AddInstance(InstanceSpec),
    AddGroup(Arc<str>, Vec<InstanceSpec>),
    Update(InstanceSpec),
    Remove(Arc<str>),
}

type Reply = oneshot::Sender<Result<(), Error>>;

/// Changes the instances of a running [`Driver`]: what a reload uses.
/// Each call waits until the driver has applied the change.
///
/// - [`add_instance`](Self::add_instance) and
///   [`add_sync_group`](Self::add_sync_group) start the new instances at
///   once (Initialize → Backup, or Master for an owner).
/// - [`update_instance`](Self::update_instance) applies a new
///   configuration in place: the state is kept, so a master stays master
///   ([`Instance::reconfigure`]). The interface, VRID, family and
///   `use_vmac` are the instance's identity and are refused
///   ([`Error::NotInPlace`], [`ConfigError::Identity`](crate::ConfigError::Identity)):
///   remove and add instead.
/// - [`remove`](Self::remove) stops an instance or a whole group: a master
///   sends priority 0 and removes its VIPs (RFC 5798 §6.4.3).
#[derive(Debug, Clone)]
pub struct DriverHandle {
    commands: mpsc::UnboundedSender<(Command, Reply)>,
}

impl DriverHandle {
    async fn send(&self, command: Command) -> Result<(), Error> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send((command, reply))
            .map_err(|_| Error::Stopped)?;
        answer.await.map_err(|_| Error::Stopped)?
    }

    /// Adds and starts one instance.
    pub async fn add_instance(&self, spec: InstanceSpec) -> Result<(), Error> {
        self.send(Command::AddInstance(spec)).await
    }

    /// Adds and starts a sync group of these members.
    pub async fn add_sync_group(
        &self,
        name: impl Into<Arc<str>>,
        members: Vec<InstanceSpec>,
    ) -> Result<(), Error> {
        self.send(Command::AddGroup(name.into(), members)).await
    }

    /// Gives the instance named `spec.config.name` (alone or in a group)
    /// its new configuration and options, keeping its state.
    pub async fn update_instance(&self, spec: InstanceSpec) -> Result<(), Error> {
        self.send(Command::Update(spec)).await
    }

    /// Stops and removes the instance or sync group named `name`. A group
    /// member cannot be removed alone: remove the group.
    pub async fn remove(&self, name: impl Into<Arc<str>>) -> Result<(), Error> {
        self.send(Command::Remove(name.into())).await
    }
}

/// The event the loop is woken by.
enum Event {
    Shutdown,
    /// The deadline that expired.
    Timer(Instant),
    Packet(Inbound),
    Link(LinkEvent),
    Track(Arc<str>, ScriptOutcome),
    /// Boxed: a command carries a whole configuration.
    Command(Box<(Command, Reply)>),
    /// A failed `recvmsg`: logged, not fatal (the next packet may be fine).
    ReceiveError(Error),
    LinkWatchClosed,
}

/// Runs VRRP instances and sync groups. See the module documentation.
///
/// ```no_run
/// use lvskit_vrrp::linux::driver::{Driver, DriverOptions, InstanceSpec, unspecified};
/// use lvskit_vrrp::{Config, VirtualAddress};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let mut driver = Driver::new(DriverOptions::default())?;
/// // VRID 51 on eth0, the source address taken from eth0, VIP 10.0.3.100/24.
/// let vip = VirtualAddress::new("10.0.3.100".parse()?).with_prefix_len(24);
/// let config = Config::new(51, unspecified(false), vec![vip]);
/// driver.add_instance(InstanceSpec::new("eth0", config)).await?;
/// // Until Ctrl-C; then priority 0 is sent and the VIP removed.
/// driver.run(async { tokio::signal::ctrl_c().await.unwrap_or(()) }).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Driver {
    netlink: Netlink,
    links: Vec<Link>,
    units: Vec<Unit>,
    /// `(receiving ifindex, IPv6, VRID)` → `(unit, member)`.
    routes: HashMap<(u32, bool, u8), (usize, usize)>,
    options: DriverOptions,
    /// Running notify scripts; awaited on shutdown so that `STOP` runs.
    notifications: JoinSet<()>,
    /// Published after every input; see [`Driver::snapshots`].
    snapshots: watch::Sender<Vec<InstanceSnapshot>>,
    /// Every state change; see [`Driver::transitions`].
    transitions: broadcast::Sender<StateTransition>,
    /// Every group state change; see [`Driver::group_transitions`].
    group_transitions: broadcast::Sender<GroupTransition>,
    /// Set when shutting down with `keep_vips_on_shutdown`: `DelVip`s
    /// are skipped.
    keeping_vips: bool,
    /// One task per socket reads packets into `inbound`.
    readers: JoinSet<()>,
    inbound_tx: mpsc::UnboundedSender<Result<Inbound, Error>>,
    inbound: mpsc::UnboundedReceiver<Result<Inbound, Error>>,
    /// One task per distinct track script, while running.
    track_scripts: HashMap<Arc<str>, AbortHandle>,
    script_tasks: JoinSet<()>,
    tracks_tx: mpsc::UnboundedSender<(Arc<str>, ScriptOutcome)>,
    tracks: mpsc::UnboundedReceiver<(Arc<str>, ScriptOutcome)>,
    commands_tx: mpsc::UnboundedSender<(Command, Reply)>,
    commands: mpsc::UnboundedReceiver<(Command, Reply)>,
    /// Whether [`Driver::run`] has started the units.
    running: bool,
    /// A receive buffer for packets read outside the receive tasks.
    scratch: Vec<u8>,
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
    /// Prepares a driver with no instance yet. Needs CAP_NET_ADMIN and
    /// CAP_NET_RAW (when instances are added) and a tokio runtime.
    pub fn new(options: DriverOptions) -> Result<Self, Error> {
        let netlink = Netlink::open()?;
        let (inbound_tx, inbound) = mpsc::unbounded_channel();
        let (tracks_tx, tracks) = mpsc::unbounded_channel();
        let (commands_tx, commands) = mpsc::unbounded_channel();
        Ok(Self {
            netlink,
            links: Vec::new(),
            units: Vec::new(),
            routes: HashMap::new(),
            options,
            notifications: JoinSet::new(),
            snapshots: watch::Sender::new(Vec::new()),
            transitions: broadcast::Sender::new(TRANSITION_BACKLOG),
            group_transitions: broadcast::Sender::new(TRANSITION_BACKLOG),
            keeping_vips: false,
            readers: JoinSet::new(),
            inbound_tx,
            inbound,
            track_scripts: HashMap::new(),
            script_tasks: JoinSet::new(),
            tracks_tx,
            tracks,
            commands_tx,
            commands,
            running: false,
            scratch: vec![0; 65536],
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

    /// Subscribes to the sync groups' state changes, published after the
    /// members' own transitions, with the same backlog rules as
    /// [`Driver::transitions`].
    pub fn group_transitions(&self) -> broadcast::Receiver<GroupTransition> {
        self.group_transitions.subscribe()
    }

    /// Subscribes to the instances' snapshots, one per instance in the
    /// order they were added (a group's members in member order), published
    /// after every input the running loop handles (and once more after
    /// shutdown). Costs nothing while nobody subscribes.
    pub fn snapshots(&self) -> watch::Receiver<Vec<InstanceSnapshot>> {
        self.snapshots.subscribe()
    }

    /// A handle to add, update and remove instances while the driver runs
    /// (commands sent before [`Driver::run`] are applied when it starts).
    pub fn handle(&self) -> DriverHandle {
        DriverHandle {
            commands: self.commands_tx.clone(),
        }
    }

    fn publish_snapshots(&self) {
        if self.snapshots.receiver_count() == 0 {
            return;
        }
        self.snapshots.send_replace(
            self.instances()
                .map(|instance| InstanceSnapshot {
                    name: instance.config().name.clone(),
                    vrid: instance.config().vrid,
                    state: instance.state(),
                    effective_priority: instance.effective_priority(),
                    master_address: instance.master_address(),
                    statistics: instance.statistics().clone(),
                })
                .collect(),
        );
    }

    /// The interfaces in use, in the order instances first named them.
    pub fn interfaces(&self) -> impl Iterator<Item = &Interface> {
        self.links.iter().map(|link| &link.interface)
    }

    /// The instances, in the order they were added (a group's members in
    /// member order).
    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.units.iter().flat_map(|unit| unit.engine.instances())
    }

    /// Adds an instance on its own (see [`InstanceSpec`] for the
    /// addresses filled in). Before [`Driver::run`]; afterwards, use a
    /// [`DriverHandle`].
    pub async fn add_instance(&mut self, spec: InstanceSpec) -> Result<(), Error> {
        self.check_name(&spec.config.name)?;
        let (instance, member) = self.prepare(spec, &[]).await?;
        self.push_unit(Unit {
            engine: Engine::Single(Box::new(instance)),
            members: vec![member],
        });
        Ok(())
    }

    /// Adds a sync group (keepalived's `vrrp_sync_group`): its members,
    /// possibly on different interfaces, change state together, and one
    /// member's FAULT puts all in FAULT ([`SyncGroup`]).
    pub async fn add_sync_group(
        &mut self,
        name: impl Into<Arc<str>>,
        members: Vec<InstanceSpec>,
    ) -> Result<(), Error> {
        let name = name.into();
        self.check_name(&name)?;
        let mut instances = Vec::new();
        let mut prepared: Vec<Member> = Vec::new();
        let mut pending = Vec::new();
        for spec in members {
            self.check_name(&spec.config.name)?;
            if instances
                .iter()
                .any(|i: &Instance| i.config().name == spec.config.name)
            {
                return Err(Error::DuplicateName(spec.config.name.to_string()));
            }
            match self.prepare(spec, &pending).await {
                Ok((instance, member)) => {
                    pending.push(route_key(&self.links, &member, &instance));
                    instances.push(instance);
                    prepared.push(member);
                }
                Err(error) => {
                    self.release(&prepared).await;
                    return Err(error);
                }
            }
        }
        self.push_unit(Unit {
            engine: Engine::Group(SyncGroup::new(name, instances)),
            members: prepared,
        });
        Ok(())
    }

    fn check_name(&self, name: &str) -> Result<(), Error> {
        let taken = self.units.iter().any(|unit| {
            unit.engine.name() == name
                || unit
                    .engine
                    .instances()
                    .iter()
                    .any(|i| &*i.config().name == name)
        });
        if taken {
            Err(Error::DuplicateName(name.to_owned()))
        } else {
            Ok(())
        }
    }

    fn push_unit(&mut self, unit: Unit) {
        self.units.push(unit);
        self.rebuild_routes();
    }

    fn rebuild_routes(&mut self) {
        self.routes.clear();
        for (u, unit) in self.units.iter().enumerate() {
            for (m, (member, instance)) in
                unit.members.iter().zip(unit.engine.instances()).enumerate()
            {
                self.routes
                    .insert(route_key(&self.links, member, instance), (u, m));
            }
        }
    }

    /// The link named `name`, opened on first use.
    async fn link(&mut self, name: &str) -> Result<usize, Error> {
        if let Some(index) = self.links.iter().position(|l| l.interface.name == name) {
            return Ok(index);
        }
        let interface = self.netlink.interface(name).await?;
        let frames = FrameSender::open(interface.index)?;
        let router = std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{name}/forwarding"))
            .map(|value| value.trim() == "1")
            .unwrap_or(false);
        self.links.push(Link {
            interface,
            v4: None,
            v6: None,
            frames,
            link_local: None,
            router,
        });
        Ok(self.links.len() - 1)
    }

    /// Starts a task that reads `socket` into the loop's inbound queue.
    fn spawn_reader(&mut self, socket: Arc<AdvertSocket>, rx_ifindex: u32) -> AbortHandle {
        let sender = self.inbound_tx.clone();
        self.readers.spawn(async move {
            let mut buffer = vec![0u8; 65536];
            loop {
                let inbound = socket.recv(&mut buffer).await.map(|received| Inbound {
                    rx_ifindex,
                    message: buffer[received.offset..received.end].to_vec(),
                    received,
                });
                if sender.send(inbound).is_err() {
                    return;
                }
            }
        })
    }

    /// Resolves one instance's addresses, opens what it needs and builds
    /// its engine. `pending` are the route keys of members being added
    /// with it.
    async fn prepare(
        &mut self,
        spec: InstanceSpec,
        pending: &[(u32, bool, u8)],
    ) -> Result<(Instance, Member), Error> {
        let InstanceSpec {
            interface,
            mut config,
            options,
        } = spec;
        let link = self.link(&interface).await?;
        let family = config.family();
        let v6 = matches!(family, AddressFamily::Ipv6);
        let index = self.links[link].interface.index;
        if config.primary_address.is_unspecified() {
            config.primary_address = self.source_address(link, v6, &config).await?;
        }
        if v6 && self.links[link].link_local.is_none() {
            self.links[link].link_local = self.netlink.link_local_v6(index).await?;
        }
        config.ifindex = Some(index);
        let vrid = config.vrid;
        let key = (index, v6, vrid);
        if self.routes.contains_key(&key) || pending.contains(&key) {
            return Err(Error::DuplicateVrid(vrid));
        }
        let tracked_links = self.tracked_links(&config).await?;
        let instance = Instance::new(config).map_err(Error::Config)?;
        let name = self.links[link].interface.name.clone();
        if v6 && self.links[link].v6.is_none() {
            let socket = Arc::new(AdvertSocket::open_v6(&name, index, true)?);
            self.spawn_reader(socket.clone(), index);
            self.links[link].v6 = Some(socket);
        }
        if !v6 && self.links[link].v4.is_none() {
            let socket = Arc::new(AdvertSocket::open_v4(&name, index, true)?);
            self.spawn_reader(socket.clone(), index);
            self.links[link].v4 = Some(socket);
        }
        let (vip_ifindex, mac, vmac) = if options.use_vmac {
            let (mac, name) = if v6 {
                (virtual_mac_v6(vrid), format!("vrrp6.{vrid}"))
            } else {
                (virtual_mac(vrid), format!("vrrp.{vrid}"))
            };
            let vmac_index = self.netlink.create_vmac(index, &name, mac).await?;
            // Receive on the VMAC too, as keepalived does: a peer's adverts
            // leave from the same virtual MAC, and macvlan hands frames whose
            // source is one of its own MACs to that macvlan, not the parent.
            let opened = async {
                let adverts = match instance.config().primary_address {
                    IpAddr::V6(source) => {
                        self.netlink.set_link_local(vmac_index, source).await?;
                        Arc::new(AdvertSocket::open_v6(&name, vmac_index, true)?)
                    }
                    IpAddr::V4(_) => Arc::new(AdvertSocket::open_v4(&name, vmac_index, true)?),
                };
                Ok::<_, Error>((adverts, FrameSender::open(vmac_index)?))
            }
            .await;
            let (adverts, frames) = match opened {
                Ok(opened) => opened,
                Err(error) => {
                    let _ = self.netlink.delete_link(vmac_index).await;
                    return Err(error);
                }
            };
            let reader = self.spawn_reader(adverts.clone(), vmac_index);
            (
                vmac_index,
                mac,
                Some(Vmac {
                    index: vmac_index,
                    adverts,
                    frames,
                    reader,
                }),
            )
        } else {
            (index, self.links[link].interface.mac, None)
        };
        Ok((
            instance,
            Member {
                link,
                family,
                vip_ifindex,
                mac,
                vmac,
                options,
                tracked_links,
            },
        ))
    }

    async fn tracked_links(&self, config: &Config) -> Result<Vec<(u32, TrackId)>, Error> {
        let mut tracked = Vec::new();
        for (id, track) in config.tracks.iter().enumerate() {
            if let TrackKind::Interface(name) = &track.kind {
                tracked.push((self.netlink.interface(name).await?.index, TrackId(id)));
            }
        }
        Ok(tracked)
    }

    /// Removes what [`Driver::prepare`] created for members that will not
    /// run: their VMACs.
    async fn release(&self, members: &[Member]) {
        for vmac in members.iter().filter_map(|m| m.vmac.as_ref()) {
            vmac.reader.abort();
            if let Err(error) = self.netlink.delete_link(vmac.index).await {
                tracing::warn!(%error, "cannot remove VMAC interface");
            }
        }
    }

    async fn source_address(
        &self,
        link: usize,
        v6: bool,
        config: &Config,
    ) -> Result<IpAddr, Error> {
        let interface = &self.links[link].interface;
        let index = interface.index;
        if v6 {
            match self.netlink.link_local_v6(index).await? {
                Some(address) => Ok(address.into()),
                None => Err(Error::NoSourceAddress {
                    interface: interface.name.clone(),
                    what: "IPv6 link-local",
                }),
            }
        } else {
            let vips: Vec<IpAddr> = config.virtual_addresses.iter().map(|v| v.address).collect();
            match self.netlink.primary_v4(index, &vips).await? {
                Some(address) => Ok(address.into()),
                None => Err(Error::NoSourceAddress {
                    interface: interface.name.clone(),
                    what: "IPv4",
                }),
            }
        }
    }

    /// Starts unit `u`: each member learns its link state, then the
    /// engine starts (Initialize → Backup, Master for an owner, FAULT with
    /// a link down).
    async fn start_unit(&mut self, u: usize, now: Instant) {
        let unit = &mut self.units[u];
        for (m, member) in unit.members.iter().enumerate() {
            let link = if self.links[member.link].interface.up {
                LinkState::Up
            } else {
                LinkState::Down
            };
            unit.engine.handle_link_state(now, m, link);
        }
        unit.engine.startup(now);
        self.apply(u).await;
    }

    /// Runs one track-script task per distinct script of the running
    /// instances, and stops those no instance tracks any more.
    fn sync_track_scripts(&mut self) {
        let mut wanted: Vec<Arc<str>> = Vec::new();
        for instance in self.instances() {
            for track in &instance.config().tracks {
                if let TrackKind::Script(script) = &track.kind
                    && !wanted.iter().any(|w| **w == **script)
                {
                    wanted.push(script.as_str().into());
                }
            }
        }
        self.track_scripts.retain(|script, task| {
            let keep = wanted.contains(script);
            if !keep {
                task.abort();
            }
            keep
        });
        for script in wanted {
            if self.track_scripts.contains_key(&script) {
                continue;
            }
            let runner = self.options.scripts.clone();
            let interval = self.options.track_interval;
            let sender = self.tracks_tx.clone();
            let name = script.clone();
            let task = self.script_tasks.spawn(async move {
                let words: Vec<String> = name.split_whitespace().map(str::to_string).collect();
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
                    if sender.send((name.clone(), outcome)).is_err() {
                        return;
                    }
                }
            });
            self.track_scripts.insert(script, task);
        }
    }

    /// Runs every instance and group until `shutdown` completes, applying
    /// the [`DriverHandle`]s' commands as they come, then shuts them down
    /// (a master sends priority 0 and removes its VIPs, RFC 5798 §6.4.3),
    /// removes the VMAC interfaces and returns.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let mut timer = PreciseTimer::new()?;
        let mut links = LinkWatcher::open()?;
        let now = Instant::now();
        self.running = true;
        self.sync_track_scripts();
        for u in 0..self.units.len() {
            self.start_unit(u, now).await;
        }
        self.publish_snapshots();

        // The engine's clock must not run backwards; `last` is the time of
        // the previous input.
        let mut last = now;
        tokio::pin!(shutdown);
        let result = loop {
            let deadline = self
                .units
                .iter()
                .filter_map(|u| u.engine.poll_timeout())
                .min();
            if let Err(error) = timer.set(deadline) {
                break Err(error);
            }
            let event = tokio::select! {
                biased;
                () = &mut shutdown => Ok(Event::Shutdown),
                fired = timer.wait() => fired.map(Event::Timer),
                Some(inbound) = self.inbound.recv() => Ok(inbound.map_or_else(Event::ReceiveError, Event::Packet)),
                event = links.next() => Ok(event.map_or(Event::LinkWatchClosed, Event::Link)),
                Some((script, outcome)) = self.tracks.recv() => Ok(Event::Track(script, outcome)),
                Some((command, reply)) = self.commands.recv() => Ok(Event::Command(Box::new((command, reply)))),
            };
            // Inputs are stamped with when they happened, not with when this
            // process got the CPU: a timer with its deadline (so that the
            // advert cadence does not drift by the wake-up latency), a packet
            // with its kernel receive time. Both matter for failover on a
            // loaded host.
            let now = match &event {
                Ok(Event::Timer(deadline)) => *deadline,
                Ok(Event::Packet(inbound)) => inbound
                    .received
                    .arrival_instant(Instant::now(), SystemTime::now()),
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
                    // A packet that arrived before the deadline but is not
                    // read yet (the process did not run: load) would stop
                    // this timer: read everything waiting first.
                    let now = self.take_waiting_packets(now).await;
                    last = now;
                    for u in 0..self.units.len() {
                        if self.units[u]
                            .engine
                            .poll_timeout()
                            .is_some_and(|at| at <= now)
                        {
                            self.units[u].engine.handle_timeout(now);
                            self.apply(u).await;
                        }
                    }
                }
                Ok(Event::Packet(inbound)) => self.handle_inbound(now, &inbound).await,
                Ok(Event::Link(event)) => self.handle_link_event(now, event).await,
                Ok(Event::Track(script, outcome)) => {
                    let status = if outcome.passed() {
                        TrackStatus::Up
                    } else {
                        TrackStatus::Down
                    };
                    for u in 0..self.units.len() {
                        let ids: Vec<(usize, TrackId)> = tracks_matching(
                            self.units[u].engine.instances(),
                            |kind| matches!(kind, TrackKind::Script(s) if **s == *script),
                        );
                        for (m, id) in ids {
                            self.units[u].engine.handle_track(now, m, id, status);
                        }
                        self.apply(u).await;
                    }
                }
                Ok(Event::Command(command)) => {
                    let (command, reply) = *command;
                    let result = self.handle_command(now, command).await;
                    // The caller sees the change in the snapshots once told.
                    self.publish_snapshots();
                    // The caller may have stopped waiting.
                    let _ = reply.send(result);
                }
            }
            self.publish_snapshots();
        };

        let now = Instant::now().max(last);
        self.keeping_vips = self.options.keep_vips_on_shutdown;
        for u in 0..self.units.len() {
            self.units[u].engine.shutdown(now);
            self.apply(u).await;
        }
        self.publish_snapshots();
        for unit in std::mem::take(&mut self.units) {
            self.release(&unit.members).await;
        }
        // Each script is killed after its timeout, so this ends.
        while self.notifications.join_next().await.is_some() {}
        result
    }

    /// Handles every packet already received, by the receive tasks or
    /// still queued on a socket, each stamped with its arrival time (not
    /// before `last`). Returns the time of the last input handled.
    async fn take_waiting_packets(&mut self, last: Instant) -> Instant {
        let mut waiting = Vec::new();
        while let Ok(Ok(inbound)) = self.inbound.try_recv() {
            waiting.push(inbound);
        }
        let mut buffer = std::mem::take(&mut self.scratch);
        let sockets: Vec<(Arc<AdvertSocket>, u32)> = self
            .links
            .iter()
            .flat_map(|link| {
                [&link.v4, &link.v6]
                    .into_iter()
                    .flatten()
                    .map(|socket| (socket.clone(), link.interface.index))
            })
            .chain(self.units.iter().flat_map(|unit| {
                unit.members
                    .iter()
                    .filter_map(|m| m.vmac.as_ref())
                    .map(|vmac| (vmac.adverts.clone(), vmac.index))
            }))
            .collect();
        for (socket, rx_ifindex) in sockets {
            while let Ok(Some(received)) = socket.try_recv(&mut buffer) {
                waiting.push(Inbound {
                    rx_ifindex,
                    message: buffer[received.offset..received.end].to_vec(),
                    received,
                });
            }
        }
        self.scratch = buffer;
        let (now, wall) = (Instant::now(), SystemTime::now());
        let mut stamped: Vec<(Instant, Inbound)> = waiting
            .into_iter()
            .map(|inbound| {
                (
                    inbound.received.arrival_instant(now, wall).max(last),
                    inbound,
                )
            })
            .collect();
        stamped.sort_by_key(|(at, _)| *at);
        let mut latest = last;
        for (at, inbound) in stamped {
            self.handle_inbound(at, &inbound).await;
            latest = at;
        }
        latest
    }

    async fn handle_inbound(&mut self, now: Instant, inbound: &Inbound) {
        let received = &inbound.received;
        let v6 = received.source.is_ipv6();
        // Byte 1 of every VRRP message is the VRID (RFC 5798 §5.2).
        let Some(&(u, m)) = inbound
            .message
            .get(1)
            .and_then(|vrid| self.routes.get(&(inbound.rx_ifindex, v6, *vrid)))
        else {
            return;
        };
        // A VMAC stands in for the interface the instance runs on.
        let ifindex = self.links[self.units[u].members[m].link].interface.index;
        let meta =
            RxMeta::new(received.source, received.destination, received.ttl).with_ifindex(ifindex);
        self.units[u]
            .engine
            .handle_packet(now, &meta, &inbound.message);
        self.apply(u).await;
    }

    async fn handle_link_event(&mut self, now: Instant, event: LinkEvent) {
        let state = if event.up {
            LinkState::Up
        } else {
            LinkState::Down
        };
        if let Some(l) = self
            .links
            .iter()
            .position(|link| link.interface.index == event.index && link.interface.up != event.up)
        {
            let link = &mut self.links[l].interface;
            link.up = event.up;
            tracing::info!(interface = %link.name, up = event.up, "Netlink reports {} {}", link.name, if event.up { "up" } else { "down" });
            for u in 0..self.units.len() {
                let on_link: Vec<usize> = (0..self.units[u].members.len())
                    .filter(|&m| self.units[u].members[m].link == l)
                    .collect();
                for &m in &on_link {
                    self.units[u].engine.handle_link_state(now, m, state);
                }
                if !on_link.is_empty() {
                    self.apply(u).await;
                }
            }
        }
        let status = if event.up {
            TrackStatus::Up
        } else {
            TrackStatus::Down
        };
        for u in 0..self.units.len() {
            let ids: Vec<(usize, TrackId)> = self.units[u]
                .members
                .iter()
                .enumerate()
                .flat_map(|(m, member)| {
                    member
                        .tracked_links
                        .iter()
                        .filter(|(index, _)| *index == event.index)
                        .map(move |(_, id)| (m, *id))
                })
                .collect();
            if ids.is_empty() {
                continue;
            }
            for (m, id) in ids {
                self.units[u].engine.handle_track(now, m, id, status);
            }
            self.apply(u).await;
        }
    }

    async fn handle_command(&mut self, now: Instant, command: Command) -> Result<(), Error> {
        match command {
            Command::AddInstance(spec) => {
                self.add_instance(spec).await?;
                self.started_last(now).await;
            }
            Command::AddGroup(name, members) => {
                self.add_sync_group(name, members).await?;
                self.started_last(now).await;
            }
            Command::Update(spec) => self.update(now, spec).await?,
            Command::Remove(name) => self.remove(now, &name).await?,
        }
        Ok(())
    }

    /// Starts the unit just added, if the loop runs.
    async fn started_last(&mut self, now: Instant) {
        if self.running {
            self.start_unit(self.units.len() - 1, now).await;
            self.sync_track_scripts();
        }
    }

    async fn update(&mut self, now: Instant, spec: InstanceSpec) -> Result<(), Error> {
        let name = spec.config.name.clone();
        let (u, m) = self
            .units
            .iter()
            .enumerate()
            .find_map(|(u, unit)| {
                unit.engine
                    .instances()
                    .iter()
                    .position(|i| i.config().name == name)
                    .map(|m| (u, m))
            })
            .ok_or_else(|| Error::NoSuchInstance(name.to_string()))?;
        let member = &self.units[u].members[m];
        let link = &self.links[member.link];
        let not_in_place = |what| Error::NotInPlace {
            instance: name.to_string(),
            what,
        };
        if link.interface.name != spec.interface {
            return Err(not_in_place("interface"));
        }
        if member.vmac.is_some() != spec.options.use_vmac {
            return Err(not_in_place("use_vmac"));
        }
        let mut config = spec.config;
        if config.primary_address.is_unspecified() {
            let v6 = config.primary_address.is_ipv6();
            config.primary_address = self.source_address(member.link, v6, &config).await?;
        }
        config.ifindex = Some(link.interface.index);
        let tracked_links = self.tracked_links(&config).await?;
        self.units[u].engine.reconfigure(now, m, config)?;
        let member = &mut self.units[u].members[m];
        member.options = spec.options;
        member.tracked_links = tracked_links;
        self.apply(u).await;
        if self.running {
            self.sync_track_scripts();
        }
        Ok(())
    }

    async fn remove(&mut self, now: Instant, name: &str) -> Result<(), Error> {
        let Some(u) = self
            .units
            .iter()
            .position(|unit| unit.engine.name() == name)
        else {
            if let Some(group) = self.units.iter().find(|unit| {
                unit.engine
                    .instances()
                    .iter()
                    .any(|i| &*i.config().name == name)
            }) {
                return Err(Error::GroupMember {
                    instance: name.to_owned(),
                    group: group.engine.name().to_owned(),
                });
            }
            return Err(Error::NoSuchInstance(name.to_owned()));
        };
        self.units[u].engine.shutdown(now);
        self.apply(u).await;
        let unit = self.units.remove(u);
        self.release(&unit.members).await;
        self.rebuild_routes();
        self.sync_track_scripts();
        Ok(())
    }

    /// Drains and applies the actions of unit `u`.
    ///
    /// Advertisements go out first, then the rest in the engine's order.
    /// Becoming master yields `AddVip`s before the first advert; an rtnetlink
    /// round trip per VIP would delay that advert, and with it the failover
    /// as the wire sees it (keepalived also sends the advert before it
    /// installs the addresses). The addresses still precede the gratuitous
    /// ARPs that announce them. A group's notification follows its
    /// members' actions.
    ///
    /// Failures are logged, not returned: one failed `ip addr add` must not
    /// stop the adverts of every instance.
    async fn apply(&mut self, u: usize) {
        let mut rest = Vec::new();
        while let Some(output) = self.units[u].engine.poll() {
            match output {
                Output::Member(m, action @ Action::SendAdvert(_)) => {
                    self.apply_logged(u, m, action).await;
                }
                other => rest.push(other),
            }
        }
        for output in rest {
            match output {
                Output::Member(m, action) => self.apply_logged(u, m, action).await,
                Output::Group(notify) => {
                    // No subscriber is not an error.
                    let _ = self.group_transitions.send(GroupTransition {
                        group: notify.name,
                        event: notify.event,
                        at: SystemTime::now(),
                    });
                }
            }
        }
    }

    async fn apply_logged(&mut self, u: usize, m: usize, action: Action) {
        if let Err(error) = self.apply_one(u, m, action).await {
            let name = self.units[u].engine.instances()[m].config().name.clone();
            tracing::warn!(instance = %name, %error, "action failed");
        }
    }

    async fn apply_one(&mut self, u: usize, m: usize, action: Action) -> Result<(), Error> {
        let member = &self.units[u].members[m];
        let instance = &self.units[u].engine.instances()[m];
        let link = &self.links[member.link];
        let frames = member
            .vmac
            .as_ref()
            .map_or(&link.frames, |vmac| &vmac.frames);
        match action {
            Action::SendAdvert(advert) => {
                let socket = match (&member.vmac, member.family) {
                    (Some(vmac), _) => Some(&vmac.adverts),
                    (None, AddressFamily::Ipv4) => link.v4.as_ref(),
                    (None, AddressFamily::Ipv6) => link.v6.as_ref(),
                };
                match socket {
                    Some(socket) => socket.send(advert.source, advert.destination, &advert.payload),
                    None => Ok(()),
                }
            }
            Action::AddVip(vip) => self.netlink.add_address(member.vip_ifindex, &vip).await,
            Action::DelVip(_) if self.keeping_vips => Ok(()),
            Action::DelVip(vip) => self.netlink.delete_address(member.vip_ifindex, &vip).await,
            Action::GratuitousArp(address) => frames.send(&gratuitous_arp(member.mac, address)),
            Action::UnsolicitedNa(address) => match link.link_local {
                Some(source) => {
                    frames.send(&unsolicited_na(member.mac, source, address, link.router))
                }
                None => Err(Error::NoSourceAddress {
                    interface: link.interface.name.clone(),
                    what: "IPv6 link-local",
                }),
            },
            Action::StateChanged { from, to, reason } => {
                let config = instance.config();
                // No subscriber is not an error.
                let _ = self.transitions.send(StateTransition {
                    instance: config.name.clone(),
                    vrid: config.vrid,
                    family: member.family,
                    from,
                    to,
                    reason,
                    priority: instance.effective_priority(),
                    at: SystemTime::now(),
                });
                Ok(())
            }
            Action::Notify(notify) => {
                if let Some(script) = &member.options.notify {
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
}

/// Where a member's adverts arrive: `(ifindex of the socket, IPv6, VRID)`.
/// A VMAC member hears its adverts on the VMAC, not on the parent.
fn route_key(links: &[Link], member: &Member, instance: &Instance) -> (u32, bool, u8) {
    let rx = member
        .vmac
        .as_ref()
        .map_or(links[member.link].interface.index, |vmac| vmac.index);
    (
        rx,
        matches!(member.family, AddressFamily::Ipv6),
        instance.config().vrid,
    )
}

/// `(member, track)` of every track of `instances` whose kind matches.
fn tracks_matching(
    instances: &[Instance],
    wanted: impl Fn(&TrackKind) -> bool,
) -> Vec<(usize, TrackId)> {
    instances
        .iter()
        .enumerate()
        .flat_map(|(m, instance)| {
            instance
                .config()
                .tracks
                .iter()
                .enumerate()
                .filter(|(_, track)| wanted(&track.kind))
                .map(move |(id, _)| (m, TrackId(id)))
                .collect::<Vec<_>>()
        })
        .collect()
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

/// 0.0.0.0 or ::, meaning "the interface's address" to [`InstanceSpec::config`].
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
