//! keepalived.conf `virtual_server` blocks → health checks, pool state and
//! the kernel's IPVS table; and the IPVS sync daemon following VRRP.

use anyhow::{Context, Result, bail};
use lvskit_healthcheck::pool::{Pool, Role};
use lvskit_healthcheck::{
    CheckSpec, CheckerId, Event, RealServerConfig, RealServerId, Scheduler, SorryServer,
    VirtualServerConfig,
};
use lvskit_ipvs::{
    AsyncHandle, DaemonState, Desired, DesiredService, Destination, Family, ForwardingMethod,
    Protocol, SchedulerName, Scope, Service, ServiceFlags, ServiceKey, SyncDaemon, TunnelFlags,
    TunnelType,
};
use lvskit_kconf::model as kconf;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, watch};

use super::metrics::SharedCheckDurations;
use super::{addresses, checks, vsgroup};

/// One virtual server, ready to run.
#[derive(Debug, Clone)]
pub struct VirtualServerPlan {
    /// keepalived's name for it: `[10.0.0.100]:tcp:80`, `FWM 7` or
    /// `group NAME`.
    pub name: String,
    /// The IPVS services: one, or one per member of a
    /// `virtual_server_group`, all with the same real servers.
    pub services: Vec<Service>,
    /// How each real server is reached (by index): its `lvs_method`, else
    /// the virtual server's `lb_kind`.
    pub forwarding: Vec<ForwardingMethod>,
    /// How the sorry server is reached (`sorry_server_lvs_method`).
    pub sorry_forwarding: ForwardingMethod,
    /// Weights, inhibit flags, quorum and sorry server.
    pub pool: VirtualServerConfig,
    /// The checkers of each real server (by index).
    pub checks: Vec<Vec<CheckSpec>>,
    /// Real servers that start down (`alpha`).
    pub alpha: bool,
    /// `ha_suspend`: its checkers run only while one of its addresses is
    /// on this node.
    pub ha_suspend: bool,
    /// Its `quorum_up`/`quorum_down` and real servers' `notify_up`/
    /// `notify_down` scripts.
    pub scripts: HealthScripts,
}

/// The scripts a virtual server runs as its health changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthScripts {
    /// `quorum_up`: run when the virtual server gains quorum.
    pub quorum_up: Option<kconf::Script>,
    /// `quorum_down`: run when it loses quorum.
    pub quorum_down: Option<kconf::Script>,
    /// Each real server's `notify_up` and `notify_down` (by index), run
    /// when its checkers take it up or down.
    pub real_servers: Vec<(Option<kconf::Script>, Option<kconf::Script>)>,
}

impl VirtualServerPlan {
    /// The keys of its services.
    pub fn keys(&self) -> impl Iterator<Item = ServiceKey> + '_ {
        self.services.iter().map(|s| s.key)
    }

    /// Whether `ha_suspend` holds its checkers now, given the node's
    /// addresses: none of its virtual addresses is local. A fwmark
    /// service has no address and is never suspended.
    pub fn suspended(&self, local: &HashSet<IpAddr>) -> bool {
        let addresses: Vec<IpAddr> = self
            .keys()
            .filter_map(|key| match key {
                ServiceKey::Address { address, .. } => Some(address),
                ServiceKey::Fwmark { .. } => None,
            })
            .collect();
        self.ha_suspend && !addresses.is_empty() && !addresses.iter().any(|a| local.contains(a))
    }
}

/// keepalived's `[ADDR]:proto:PORT`.
pub fn service_name(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Address {
            protocol,
            address,
            port,
        } => format!("[{address}]:{}:{port}", protocol_name(*protocol)),
        ServiceKey::Fwmark { mark, .. } => format!("FWM {mark}"),
    }
}

fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
        _ => "ip",
    }
}

fn real_server_name(address: SocketAddr, protocol: &str) -> String {
    format!("[{}]:{protocol}:{}", address.ip(), address.port())
}

/// Maps the parsed `virtual_server` blocks and their checkers
/// ([`checks::specs`]).
pub fn plan(config: &kconf::Config) -> Result<Vec<VirtualServerPlan>> {
    config
        .virtual_servers
        .iter()
        .map(|vs| virtual_server(config, vs))
        .collect()
}

fn virtual_server(config: &kconf::Config, vs: &kconf::VirtualServer) -> Result<VirtualServerPlan> {
    let protocol = match vs.protocol {
        kconf::Protocol::Tcp => Protocol::Tcp,
        kconf::Protocol::Udp => Protocol::Udp,
        kconf::Protocol::Sctp => Protocol::Sctp,
    };
    // keepalived takes a fwmark service's family from its real servers.
    let family = vs
        .real_servers
        .first()
        .map_or(Family::Ipv4, |rs| Family::of(&rs.address));
    let (name, keys) = match &vs.service {
        kconf::ServiceAddress::Address { ip, port } => {
            let key = ServiceKey::Address {
                protocol,
                address: *ip,
                port: *port,
            };
            (service_name(&key), vec![key])
        }
        kconf::ServiceAddress::Fwmark(mark) => {
            let key = ServiceKey::Fwmark {
                family,
                mark: *mark,
            };
            (service_name(&key), vec![key])
        }
        kconf::ServiceAddress::Group(group) => {
            let name = format!("group {group}");
            let members = config
                .virtual_server_groups
                .iter()
                .find(|g| &g.name == group)
                .with_context(|| format!("{name}: no virtual_server_group {group}"))?;
            let keys = vsgroup::service_keys(&members.entries, protocol, family)
                .with_context(|| format!("virtual_server_group {group}"))?;
            if keys.is_empty() {
                bail!("virtual_server_group {group} has no members");
            }
            (name, keys)
        }
    };
    let scheduler_text = format!("{:?}", vs.lb_algo).to_lowercase();
    let scheduler = SchedulerName::from_str(&scheduler_text)
        .map_err(|_| anyhow::anyhow!("{name}: scheduler {scheduler_text} is not known to IPVS"))?;
    let services = keys
        .into_iter()
        .map(|key| {
            let mut service = Service::new(key, scheduler.clone());
            if let Some(timeout) = vs.persistence_timeout {
                service.flags |= ServiceFlags::PERSISTENT;
                service.timeout = u32::try_from(timeout.as_secs()).unwrap_or(u32::MAX);
            }
            service
        })
        .collect();
    let default_forwarding = match vs.lb_kind {
        kconf::ForwardingMethod::Nat => ForwardingMethod::Masq,
        kconf::ForwardingMethod::Dr => ForwardingMethod::DirectRoute,
        kconf::ForwardingMethod::Tun => {
            tunnel(&vs.lb_kind_options).with_context(|| format!("{name}: lb_kind TUN"))?
        }
    };
    let forwarding_of = |extra: &[kconf::Directive], keyword: &str| {
        lvs_method(extra, keyword, default_forwarding).with_context(|| format!("{name}: {keyword}"))
    };
    let mut real_servers = Vec::new();
    let mut forwarding = Vec::new();
    let mut check_specs = Vec::new();
    for rs in &vs.real_servers {
        let address = SocketAddr::new(rs.address, rs.port);
        real_servers.push(RealServerConfig {
            address,
            weight: rs.weight,
            inhibit_on_failure: rs.inhibit_on_failure || vs.inhibit_on_failure,
        });
        forwarding.push(forwarding_of(&rs.extra, "lvs_method")?);
        let mut specs = Vec::new();
        for checker in &rs.checkers {
            specs.extend(
                checks::specs(config, vs, rs, checker)
                    .with_context(|| format!("{name}: real server {address}"))?,
            );
        }
        check_specs.push(specs);
    }
    let sorry_server = vs.sorry_server.map(|(ip, port)| SorryServer {
        address: SocketAddr::new(ip, port),
        // keepalived gives the sorry server weight 1.
        weight: 1,
        inhibit: vs.extra.iter().any(|d| d.keyword == "sorry_server_inhibit"),
    });
    Ok(VirtualServerPlan {
        sorry_forwarding: forwarding_of(&vs.extra, "sorry_server_lvs_method")?,
        name,
        services,
        forwarding,
        pool: VirtualServerConfig {
            real_servers,
            quorum: vs.quorum,
            hysteresis: vs.hysteresis,
            sorry_server,
        },
        checks: check_specs,
        alpha: vs.alpha,
        ha_suspend: vs.ha_suspend,
        scripts: HealthScripts {
            quorum_up: vs.quorum_up.clone(),
            quorum_down: vs.quorum_down.clone(),
            real_servers: (vs.real_servers.iter())
                .map(|rs| (rs.notify_up.clone(), rs.notify_down.clone()))
                .collect(),
        },
    })
}

/// `lvs_method NAT|DR|TUN [tunnel options]` (or `sorry_server_lvs_method`)
/// among `extra`, else `default`.
fn lvs_method(
    extra: &[kconf::Directive],
    keyword: &str,
    default: ForwardingMethod,
) -> Result<ForwardingMethod> {
    let Some(directive) = extra.iter().find(|d| d.keyword == keyword) else {
        return Ok(default);
    };
    match directive.args.split_first() {
        Some((method, [])) if method == "NAT" => Ok(ForwardingMethod::Masq),
        Some((method, [])) if method == "DR" => Ok(ForwardingMethod::DirectRoute),
        Some((method, options)) if method == "TUN" => tunnel(options),
        _ => bail!(
            "expected NAT, DR or TUN [tunnel options], not {:?}",
            directive.args
        ),
    }
}

/// The options after `TUN`, as keepalived takes them: `type ipip|gue|gre`
/// (default ipip), `port N` (GUE's UDP port: required for GUE, refused
/// otherwise), and one of `nocsum` (default), `csum`, `remcsum` (not with
/// ipip; `remcsum` not with gre).
fn tunnel(options: &[String]) -> Result<ForwardingMethod> {
    let mut tunnel_type = TunnelType::Ipip;
    let mut port = 0u16;
    let mut flags = TunnelFlags::empty();
    let mut words = options.iter().map(String::as_str);
    while let Some(word) = words.next() {
        match word {
            "type" => {
                tunnel_type = match words.next() {
                    Some("ipip") => TunnelType::Ipip,
                    Some("gue") => TunnelType::Gue,
                    Some("gre") => TunnelType::Gre,
                    other => bail!("tunnel type {other:?}: expected ipip, gue or gre"),
                }
            }
            "port" => {
                port = words
                    .next()
                    .and_then(|p| p.parse().ok())
                    .filter(|p| *p > 0)
                    .context("tunnel port must be 1-65535")?;
            }
            "nocsum" => flags = TunnelFlags::empty(),
            "csum" => flags = TunnelFlags::CSUM,
            "remcsum" => flags = TunnelFlags::REMCSUM,
            other => bail!("unknown tunnel option {other:?}"),
        }
    }
    if (tunnel_type == TunnelType::Gue) != (port != 0) {
        bail!("a gue tunnel needs a port, and only a gue tunnel takes one");
    }
    if tunnel_type == TunnelType::Ipip && !flags.is_empty() {
        bail!("an ipip tunnel has no checksum option");
    }
    if tunnel_type == TunnelType::Gre && flags == TunnelFlags::REMCSUM {
        bail!("a gre tunnel has no remote checksum option");
    }
    Ok(ForwardingMethod::Tunnel {
        tunnel_type,
        port,
        flags,
    })
}

/// `lvs_sync_daemon IFACE INSTANCE [id N]` of `global_defs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    /// Multicast interface.
    pub interface: String,
    /// The VRRP instance whose state the daemon follows.
    pub instance: String,
    /// Sync id.
    pub sync_id: u32,
}

/// Reads `lvs_sync_daemon` from `global_defs`.
pub fn sync_settings(config: &kconf::Config) -> Result<Option<SyncSettings>> {
    let Some(directive) = config
        .global
        .extra
        .iter()
        .find(|d| d.keyword == "lvs_sync_daemon")
    else {
        return Ok(None);
    };
    let (Some(interface), Some(instance)) = (directive.args.first(), directive.args.get(1)) else {
        bail!("lvs_sync_daemon needs an interface and a VRRP instance");
    };
    // keepalived's default sync id is the instance's virtual_router_id.
    let mut sync_id = config
        .vrrp_instances
        .iter()
        .find(|vi| &vi.name == instance)
        .and_then(|vi| vi.virtual_router_id)
        .map_or(0, u32::from);
    let mut rest = directive.args[2..].iter();
    while let Some(word) = rest.next() {
        if word == "id" {
            sync_id = rest
                .next()
                .and_then(|v| v.parse().ok())
                .filter(|v| *v <= 255)
                .context("lvs_sync_daemon id must be 0..=255")?;
        }
    }
    Ok(Some(SyncSettings {
        interface: interface.clone(),
        instance: instance.clone(),
        sync_id,
    }))
}

/// What a real server looked like to its checkers, kept across reloads:
/// by virtual server name and real server address.
pub type CheckState = HashMap<(String, SocketAddr), bool>;

struct Running {
    plan: VirtualServerPlan,
    pool: Pool,
}

/// A virtual server's name and quorum state, with each real server's name
/// and liveness (names in keepalived's `[ADDR]:proto:PORT` form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceHealth {
    /// The virtual server.
    pub name: String,
    /// Whether its quorum is met.
    pub quorum_up: bool,
    /// Its real servers: (name, alive).
    pub real_servers: Vec<(String, bool)>,
}

/// The checkers, the pools and the IPVS table of every virtual server.
pub struct Lvs {
    handle: AsyncHandle,
    servers: Vec<Running>,
    by_id: HashMap<RealServerId, (usize, usize)>,
    /// The (virtual server, real server) names each checker's probes
    /// count for in `check_durations`.
    probe_targets: ProbeTargets,
    check_durations: SharedCheckDurations,
    scope: Scope,
    events: mpsc::Receiver<Event>,
    runner: tokio::task::JoinHandle<()>,
    sync: Option<SyncSettings>,
    sync_state: Option<DaemonState>,
    /// The node's addresses, followed once some virtual server has
    /// `ha_suspend`.
    local: Option<watch::Receiver<HashSet<IpAddr>>>,
    /// Names of the virtual servers whose checkers `ha_suspend` holds.
    suspended: BTreeSet<String>,
}

impl std::fmt::Debug for Lvs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lvs")
            .field("servers", &self.servers.len())
            .finish_non_exhaustive()
    }
}

impl Lvs {
    /// Opens IPVS, starts the checkers, and applies the initial table.
    /// Real servers named in `carried` start in that state (a reload);
    /// others start up unless `alpha`.
    pub async fn start(
        plans: Vec<VirtualServerPlan>,
        sync: Option<SyncSettings>,
        carried: &CheckState,
    ) -> Result<Lvs> {
        let handle = AsyncHandle::open_with(&lvskit_ipvs::OpenOptions::new().load_module(true))
            .await
            .context("IPVS (is the ip_vs module available?)")?;
        let local = follow_addresses(None, &plans).await?;
        let suspended = suspended(&plans, local.as_ref());
        let (servers, by_id, scheduler) = build(plans, carried, &suspended);
        let probe_targets = probe_targets(&servers, &by_id, &scheduler);
        let (tx, events) = mpsc::channel(1024);
        let runner = spawn_runner(scheduler, tx);
        let scope = Scope::Services(servers.iter().flat_map(|s| s.plan.keys()).collect());
        let mut handle = handle;
        if sync.is_some() {
            // A daemon killed without cleanup leaves its sync threads in
            // the kernel; start from none.
            for state in [DaemonState::Master, DaemonState::Backup] {
                let _ = handle.stop_daemon(state).await;
            }
        }
        let mut lvs = Lvs {
            handle,
            servers,
            by_id,
            probe_targets,
            check_durations: SharedCheckDurations::default(),
            scope,
            events,
            runner,
            sync,
            sync_state: None,
            local,
            suspended,
        };
        lvs.apply().await?;
        Ok(lvs)
    }

    /// The check state of every real server, for a reload.
    pub fn check_state(&self) -> CheckState {
        let mut state = CheckState::new();
        for server in &self.servers {
            for (index, rs) in server.plan.pool.real_servers.iter().enumerate() {
                state.insert(
                    (server.plan.name.clone(), rs.address),
                    server.pool.is_alive(index),
                );
            }
        }
        state
    }

    /// Reload by difference: new checkers (surviving real servers keep
    /// their state), then one reconcile that edits what changed. Nothing
    /// is flushed; services no longer configured are removed.
    pub async fn reload(
        &mut self,
        plans: Vec<VirtualServerPlan>,
        sync: Option<SyncSettings>,
    ) -> Result<()> {
        let carried = self.check_state();
        self.runner.abort();
        self.local = follow_addresses(self.local.take(), &plans).await?;
        self.suspended = suspended(&plans, self.local.as_ref());
        let (servers, by_id, scheduler) = build(plans, &carried, &self.suspended);
        self.set_probe_targets(probe_targets(&servers, &by_id, &scheduler));
        let (tx, events) = mpsc::channel(1024);
        self.runner = spawn_runner(scheduler, tx);
        self.events = events;
        let mut keys: BTreeSet<ServiceKey> = match &self.scope {
            Scope::Services(keys) => keys.clone(),
            _ => BTreeSet::new(),
        };
        keys.extend(servers.iter().flat_map(|s| s.plan.keys()));
        self.scope = Scope::Services(keys);
        self.servers = servers;
        self.by_id = by_id;
        self.apply().await?;
        self.scope = Scope::Services(self.servers.iter().flat_map(|s| s.plan.keys()).collect());
        if sync != self.sync {
            let state = self.sync_state.take();
            self.stop_sync().await;
            self.sync = sync;
            if let Some(state) = state {
                self.set_sync(state).await;
            }
        }
        Ok(())
    }

    /// Waits for the next checker event, restarting the checkers if their
    /// task died (a panic in a probe must not end health checking), and
    /// suspending or resuming them as `ha_suspend` addresses come and go.
    /// Each probe's duration is recorded on the way, not returned.
    pub async fn next_event(&mut self) -> Event {
        loop {
            let local = async {
                match self.local.as_mut() {
                    Some(local) => local.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = self.events.recv() => {
                    match event {
                        Some(Event::Probe { checker, duration, success, .. }) => {
                            self.record_probe(checker, duration, success);
                            continue;
                        }
                        Some(event) => return event,
                        None => {}
                    }
                }
                joined = &mut self.runner => {
                    tracing::error!("health-check runner ended ({joined:?}); restarting it with the current states");
                }
                alive = local => {
                    if !alive {
                        // The watcher logged why; suspended servers stay so.
                        self.local = None;
                        continue;
                    }
                    let plans: Vec<VirtualServerPlan> = self.servers.iter().map(|s| s.plan.clone()).collect();
                    let now = suspended(&plans, self.local.as_ref());
                    if now == self.suspended {
                        continue;
                    }
                    for name in now.difference(&self.suspended) {
                        tracing::info!("Suspending checkers of VS {name} (ha_suspend: its address left this node)");
                    }
                    for name in self.suspended.difference(&now) {
                        tracing::info!("Resuming checkers of VS {name} (ha_suspend: its address is on this node)");
                    }
                    self.suspended = now;
                    self.runner.abort();
                }
            }
            self.restart_checkers();
        }
    }

    /// New checkers for the running plans, starting from the current
    /// states (the caller has stopped or lost the old ones).
    fn restart_checkers(&mut self) {
        let plans = self.servers.iter().map(|s| s.plan.clone()).collect();
        let carried = self.check_state();
        let (servers, by_id, scheduler) = build(plans, &carried, &self.suspended);
        self.set_probe_targets(probe_targets(&servers, &by_id, &scheduler));
        let (tx, events) = mpsc::channel(1024);
        self.runner = spawn_runner(scheduler, tx);
        self.events = events;
        self.servers = servers;
        self.by_id = by_id;
    }

    /// The real servers' probe durations, for `/metrics`.
    pub fn check_durations(&self) -> SharedCheckDurations {
        self.check_durations.clone()
    }

    /// Takes the new checkers' targets, and forgets the durations of real
    /// servers no longer checked (their series leave `/metrics`).
    fn set_probe_targets(&mut self, targets: ProbeTargets) {
        let kept: HashSet<&(String, String)> = targets.values().flatten().collect();
        if let Ok(mut table) = self.check_durations.lock() {
            table.retain(|key, _| kept.contains(key));
        }
        self.probe_targets = targets;
    }

    /// Counts a probe's duration for each real server its checker checks.
    fn record_probe(&self, checker: CheckerId, duration: std::time::Duration, success: bool) {
        let (Some(targets), Ok(mut table)) = (
            self.probe_targets.get(&checker),
            self.check_durations.lock(),
        ) else {
            return;
        };
        for target in targets {
            match table.get_mut(target) {
                Some(entry) => entry.record(duration, success),
                None => table
                    .entry(target.clone())
                    .or_default()
                    .record(duration, success),
            }
        }
    }

    /// Applies a checker event to the pools and the kernel. A panic on
    /// the way is caught and logged: it must not unwind through the
    /// daemon's main loop and end the process, VRRP included. The table
    /// is reconciled as a whole at the next event, so a half-done apply
    /// heals.
    pub async fn handle_event(&mut self, event: Event) -> Result<()> {
        use futures::FutureExt as _;
        let handled = std::panic::AssertUnwindSafe(self.apply_event(event))
            .catch_unwind()
            .await;
        handled.unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!("handling a checker event panicked: {message}");
            Ok(())
        })
    }

    async fn apply_event(&mut self, event: Event) -> Result<()> {
        match event {
            Event::RealServer {
                server, up, reason, ..
            } => {
                let Some(&(vs, rs)) = self.by_id.get(&server) else {
                    return Ok(());
                };
                let running = &mut self.servers[vs];
                let address = running.plan.pool.real_servers[rs].address;
                let protocol = protocol_of(&running.plan.services[0].key);
                let rs_name = real_server_name(address, protocol);
                let vs_name = &running.plan.name;
                if up {
                    tracing::info!("Check on service {rs_name} succeeded ({reason}).");
                    tracing::info!("Adding service {rs_name} to VS {vs_name}");
                } else {
                    tracing::info!("Check on service {rs_name} failed ({reason}).");
                    tracing::info!("Removing service {rs_name} from VS {vs_name}");
                }
                running.pool.set_alive(Instant::now(), rs, up);
                log_quorum(running);
                self.apply().await
            }
            Event::Weight { server, weight, .. } => {
                if let Some(&(vs, rs)) = self.by_id.get(&server) {
                    let running = &mut self.servers[vs];
                    running.pool.set_dynamic_weight(Instant::now(), rs, weight);
                    log_quorum(running);
                    self.apply().await?;
                }
                Ok(())
            }
            other => {
                tracing::debug!("checker: {other:?}");
                Ok(())
            }
        }
    }

    /// Sends the desired table to the kernel (only the difference).
    async fn apply(&mut self) -> Result<()> {
        let mut services = Vec::new();
        for running in &self.servers {
            let destinations: Vec<Destination> = running
                .pool
                .desired()
                .into_iter()
                .map(|d| {
                    let forwarding = match d.role {
                        Role::RealServer(index) => running.plan.forwarding[index],
                        Role::SorryServer => running.plan.sorry_forwarding,
                    };
                    let mut destination =
                        Destination::new(d.address.ip(), d.address.port(), forwarding);
                    destination.weight = d.weight;
                    destination
                })
                .collect();
            services.extend(running.plan.services.iter().map(|service| DesiredService {
                service: service.clone(),
                destinations: destinations.clone(),
            }));
        }
        let desired = Desired {
            services,
            scope: self.scope.clone(),
        };
        let report = self.handle.apply(&desired).await.context("IPVS apply")?;
        for (operation, error) in report.failures() {
            tracing::error!("IPVS: {operation:?} failed: {error}");
        }
        if report.operations() > 0 {
            tracing::debug!("IPVS: {} operations", report.operations());
        }
        Ok(())
    }

    /// The pools, for the status query.
    pub fn status(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.servers
                .iter()
                .map(|running| {
                    let real_servers: Vec<serde_json::Value> = running
                        .plan
                        .pool
                        .real_servers
                        .iter()
                        .enumerate()
                        .map(|(i, rs)| {
                            serde_json::json!({
                                "address": rs.address.to_string(),
                                "configured_weight": rs.weight,
                                "alive": running.pool.is_alive(i),
                                "effective_weight": running.pool.effective_weight(i),
                            })
                        })
                        .collect();
                    serde_json::json!({
                        "service": running.plan.name,
                        "quorum_up": running.pool.quorum_up(),
                        "real_servers": real_servers,
                    })
                })
                .collect(),
        )
    }

    /// Each virtual server's scripts, in the order of [`Lvs::health`].
    pub fn health_scripts(&self) -> impl Iterator<Item = &HealthScripts> {
        self.servers.iter().map(|running| &running.plan.scripts)
    }

    /// Each virtual server's health, for notifications and metrics.
    pub fn health(&self) -> Vec<ServiceHealth> {
        self.servers
            .iter()
            .map(|running| {
                let protocol = protocol_of(&running.plan.services[0].key);
                let real_servers = (running.plan.pool.real_servers.iter().enumerate())
                    .map(|(i, rs)| {
                        (
                            real_server_name(rs.address, protocol),
                            running.pool.is_alive(i),
                        )
                    })
                    .collect();
                ServiceHealth {
                    name: running.plan.name.clone(),
                    quorum_up: running.pool.quorum_up(),
                    real_servers,
                }
            })
            .collect()
    }

    /// Follows a VRRP state change of `instance` with the sync daemon:
    /// master → sending, anything else → receiving.
    pub async fn vrrp_state(&mut self, instance: &str, state: &str) {
        let Some(sync) = &self.sync else { return };
        if sync.instance != instance {
            return;
        }
        let wanted = if state == "MASTER" {
            DaemonState::Master
        } else {
            DaemonState::Backup
        };
        self.set_sync(wanted).await;
    }

    async fn set_sync(&mut self, wanted: DaemonState) {
        let Some(sync) = self.sync.clone() else {
            return;
        };
        if self.sync_state == Some(wanted) {
            return;
        }
        self.stop_sync().await;
        let daemon = SyncDaemon::new(wanted, &sync.interface, sync.sync_id);
        match self.handle.start_daemon(&daemon).await {
            Ok(()) => {
                tracing::info!(
                    "Starting IPVS sync daemon as {wanted:?} on {} (syncid {})",
                    sync.interface,
                    sync.sync_id
                );
                self.sync_state = Some(wanted);
            }
            Err(e) => tracing::error!("IPVS sync daemon as {wanted:?}: {e}"),
        }
    }

    async fn stop_sync(&mut self) {
        if let Some(state) = self.sync_state.take()
            && let Err(e) = self.handle.stop_daemon(state).await
        {
            tracing::warn!("stopping the IPVS sync daemon ({state:?}): {e}");
        }
    }

    /// Stops the checkers and the sync daemon and, unless `keep`, removes
    /// every service this daemon configured.
    pub async fn shutdown(mut self, keep: bool) -> Result<()> {
        self.runner.abort();
        self.stop_sync().await;
        if keep {
            tracing::info!("keeping IPVS services (-I)");
            return Ok(());
        }
        let desired = Desired {
            services: Vec::new(),
            scope: self.scope.clone(),
        };
        let report = self.handle.apply(&desired).await.context("IPVS cleanup")?;
        tracing::info!("removed {} IPVS services", report.operations());
        Ok(())
    }
}

/// keepalived's log lines for a quorum change of a virtual server.
fn log_quorum(running: &mut Running) {
    while let Some(event) = running.pool.poll_event() {
        if event.initial {
            continue;
        }
        let verb = if event.up { "Gained" } else { "Lost" };
        tracing::info!(
            "{verb} quorum for VS {}: alive weight {} against {}",
            running.plan.name,
            event.weight_sum,
            event.threshold
        );
    }
}

fn protocol_of(key: &ServiceKey) -> &'static str {
    match key {
        ServiceKey::Address { protocol, .. } => protocol_name(*protocol),
        ServiceKey::Fwmark { .. } => "fwm",
    }
}

/// Each checker's (virtual server, real server) names.
type ProbeTargets = HashMap<CheckerId, Vec<(String, String)>>;

/// Which real servers each checker of `scheduler` checks, by name.
fn probe_targets(
    servers: &[Running],
    by_id: &HashMap<RealServerId, (usize, usize)>,
    scheduler: &Scheduler,
) -> ProbeTargets {
    let mut targets = ProbeTargets::new();
    for (id, &(vs, rs)) in by_id {
        let running = &servers[vs];
        let protocol = protocol_of(&running.plan.services[0].key);
        let name = (
            running.plan.name.clone(),
            real_server_name(running.plan.pool.real_servers[rs].address, protocol),
        );
        for checker in scheduler.checkers_of(*id) {
            targets.entry(*checker).or_default().push(name.clone());
        }
    }
    targets
}

type Built = (
    Vec<Running>,
    HashMap<RealServerId, (usize, usize)>,
    Scheduler,
);

/// Starts following the node's addresses when some plan has `ha_suspend`
/// (keeps `running` if there is one).
async fn follow_addresses(
    running: Option<watch::Receiver<HashSet<IpAddr>>>,
    plans: &[VirtualServerPlan],
) -> Result<Option<watch::Receiver<HashSet<IpAddr>>>> {
    if running.is_some() || !plans.iter().any(|p| p.ha_suspend) {
        return Ok(running);
    }
    Ok(Some(addresses::watch_local().await?))
}

/// The names of the plans `ha_suspend` holds now.
fn suspended(
    plans: &[VirtualServerPlan],
    local: Option<&watch::Receiver<HashSet<IpAddr>>>,
) -> BTreeSet<String> {
    let Some(local) = local else {
        return BTreeSet::new();
    };
    let local = local.borrow();
    plans
        .iter()
        .filter(|p| p.suspended(&local))
        .map(|p| p.name.clone())
        .collect()
}

/// Pools for `plans` and a scheduler with the checkers of those not in
/// `suspended`.
fn build(
    plans: Vec<VirtualServerPlan>,
    carried: &CheckState,
    suspended: &BTreeSet<String>,
) -> Built {
    let now = Instant::now();
    let mut scheduler = Scheduler::new(256);
    scheduler.report_probes(true);
    let mut by_id = HashMap::new();
    let mut servers = Vec::new();
    for (vs_index, plan) in plans.into_iter().enumerate() {
        let mut alive = Vec::new();
        for (rs_index, rs) in plan.pool.real_servers.iter().enumerate() {
            let was = carried.get(&(plan.name.clone(), rs.address)).copied();
            let up = was.unwrap_or(!plan.alpha);
            alive.push(up);
            if suspended.contains(&plan.name) {
                continue;
            }
            let specs = plan.checks[rs_index]
                .iter()
                .cloned()
                .map(|mut spec| {
                    // A server that was down stays down until a check
                    // succeeds; one that was up stays up until they fail.
                    spec.timing.alpha = !up;
                    if was.is_some() {
                        spec.timing.warmup = std::time::Duration::ZERO;
                    }
                    spec
                })
                .collect();
            let id = scheduler.add_real_server(now, specs);
            by_id.insert(id, (vs_index, rs_index));
        }
        let pool = Pool::new(now, plan.pool.clone(), &alive);
        servers.push(Running { plan, pool });
    }
    (servers, by_id, scheduler)
}

fn spawn_runner(scheduler: Scheduler, events: mpsc::Sender<Event>) -> tokio::task::JoinHandle<()> {
    let lateness = Arc::new(Mutex::new(lvskit_healthcheck::runner::Lateness::default()));
    tokio::spawn(lvskit_healthcheck::runner::run(scheduler, events, lateness))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> kconf::Config {
        lvskit_kconf::parse_str(text, &lvskit_kconf::Options::offline()).config
    }

    #[test]
    fn tunnel_options_map_to_the_ipvs_encapsulation() {
        let text = "virtual_server 10.0.0.100 80 {\n lb_algo rr\n lb_kind TUN type gue port 6080 csum\n \
                    sorry_server 10.0.0.9 80\n sorry_server_lvs_method TUN\n \
                    real_server 10.0.0.11 80 {\n }\n \
                    real_server 10.0.0.12 80 {\n lvs_method TUN type gre csum\n }\n \
                    real_server 10.0.0.13 80 {\n lvs_method DR\n }\n}\n";
        let vs = &plan(&parse(text)).unwrap()[0];
        let tunnel = |tunnel_type, port, flags| ForwardingMethod::Tunnel {
            tunnel_type,
            port,
            flags,
        };
        assert_eq!(
            vs.forwarding,
            [
                tunnel(TunnelType::Gue, 6080, TunnelFlags::CSUM),
                tunnel(TunnelType::Gre, 0, TunnelFlags::CSUM),
                ForwardingMethod::DirectRoute,
            ]
        );
        assert_eq!(vs.sorry_forwarding, ForwardingMethod::TUNNEL);
        // keepalived's rules: gue needs a port and only gue takes one, ipip
        // has no checksum option, gre no remote checksum.
        for (options, error) in [
            ("type gue", "needs a port"),
            ("port 6080", "only a gue tunnel"),
            ("csum", "no checksum"),
            ("type gre remcsum", "no remote checksum"),
            ("type vxlan", "expected ipip, gue or gre"),
            ("port 0 type gue", "1-65535"),
            ("fast", "unknown tunnel option"),
        ] {
            let text = format!(
                "virtual_server 10.0.0.100 80 {{\n lb_algo rr\n lb_kind TUN {options}\n}}\n"
            );
            let refused = plan(&parse(&text)).unwrap_err();
            assert!(
                format!("{refused:#}").contains(error),
                "{options}: {refused:#}"
            );
        }
    }

    #[test]
    fn the_lab_config_maps_to_one_persistent_dr_service() {
        let text = crate::lab::Topology::new(2, 4).keepalived_conf(0, &[10, 20]);
        let plans = plan(&parse(&text)).unwrap();
        assert_eq!(plans.len(), 1);
        let vs = &plans[0];
        assert_eq!(vs.name, "[10.0.0.100]:tcp:80");
        assert_eq!(vs.services.len(), 1);
        let service = &vs.services[0];
        assert_eq!(service.scheduler, SchedulerName::Rr);
        assert!(service.flags.contains(ServiceFlags::PERSISTENT));
        assert_eq!(service.timeout, 50);
        assert_eq!(vs.forwarding, [ForwardingMethod::DirectRoute; 2]);
        assert_eq!(vs.pool.sorry_server, None);
        let weights: Vec<u32> = vs.pool.real_servers.iter().map(|r| r.weight).collect();
        assert_eq!(weights, [10, 20]);
        let check = &vs.checks[1][0];
        assert_eq!(check.destination(), "10.0.0.12:80".parse().unwrap());
        assert_eq!(
            check.connect.connect_timeout,
            std::time::Duration::from_secs(3)
        );
        assert_eq!(check.timing.delay_loop, std::time::Duration::from_secs(6));
    }

    #[test]
    fn sync_daemon_id_defaults_to_the_instance_vrid_as_in_keepalived() {
        let text = crate::lab::Topology::new(2, 4).keepalived_conf(1, &[10, 10]);
        let sync = sync_settings(&parse(&text)).unwrap().unwrap();
        assert_eq!(sync.interface, "eth0");
        assert_eq!(sync.instance, "VI_1");
        assert_eq!(sync.sync_id, 51);
        let explicit = text.replace(
            "lvs_sync_daemon eth0 VI_1",
            "lvs_sync_daemon eth0 VI_1 id 7",
        );
        assert_eq!(
            sync_settings(&parse(&explicit)).unwrap().unwrap().sync_id,
            7
        );
    }

    const GROUPS: &str = "virtual_server_group web {\n    10.0.0.100-101 80\n    fwmark 5\n}\n\
        virtual_server group web {\n    lb_algo wrr\n    lb_kind DR\n    protocol TCP\n    quorum 15\n    \
        hysteresis 2\n    sorry_server 10.0.0.50 8080\n    sorry_server_inhibit\n    \
        sorry_server_lvs_method NAT\n    real_server 10.0.0.11 80 {\n        weight 10\n    }\n    \
        real_server 10.0.0.12 80 {\n        weight 10\n        lvs_method TUN\n        \
        inhibit_on_failure\n    }\n}\n\
        virtual_server fwmark 9 {\n    lb_algo rr\n    lb_kind DR\n    real_server fd00::11 0 {\n    }\n}\n";

    #[test]
    fn groups_fwmarks_and_sorry_servers_are_planned() {
        let plans = plan(&parse(GROUPS)).unwrap();
        let group = &plans[0];
        assert_eq!(group.name, "group web");
        let keys: Vec<String> = group.keys().map(|k| service_name(&k)).collect();
        assert_eq!(
            keys,
            ["[10.0.0.100]:tcp:80", "[10.0.0.101]:tcp:80", "FWM 5"]
        );
        assert!(
            group
                .services
                .iter()
                .all(|s| s.scheduler == SchedulerName::Wrr)
        );
        assert_eq!(
            group.forwarding,
            [ForwardingMethod::DirectRoute, ForwardingMethod::TUNNEL]
        );
        assert_eq!(group.sorry_forwarding, ForwardingMethod::Masq);
        assert_eq!(
            group.pool.sorry_server,
            Some(SorryServer {
                address: "10.0.0.50:8080".parse().unwrap(),
                weight: 1,
                inhibit: true
            })
        );
        assert_eq!((group.pool.quorum, group.pool.hysteresis), (15, 2));
        let inhibit: Vec<bool> = group
            .pool
            .real_servers
            .iter()
            .map(|r| r.inhibit_on_failure)
            .collect();
        assert_eq!(inhibit, [false, true]);

        // A fwmark service takes its family from its real servers.
        let fwmark = &plans[1];
        assert_eq!(fwmark.name, "FWM 9");
        assert_eq!(
            fwmark.services[0].key,
            ServiceKey::Fwmark {
                family: Family::Ipv6,
                mark: 9
            }
        );
    }

    #[test]
    fn ha_suspend_holds_a_server_whose_addresses_are_all_elsewhere() {
        let text = GROUPS.replace("    quorum 15\n", "    quorum 15\n    ha_suspend\n");
        let mut plans = plan(&parse(&text)).unwrap();
        let group = &plans[0];
        assert!(group.ha_suspend);
        let local = |ips: &[&str]| -> HashSet<IpAddr> {
            ips.iter().map(|ip| ip.parse().unwrap()).collect()
        };
        assert!(group.suspended(&local(&[])));
        assert!(group.suspended(&local(&["10.0.0.2"])));
        // One member's address is enough.
        assert!(!group.suspended(&local(&["10.0.0.101"])));
        // Without ha_suspend, or without an address, nothing is held.
        assert!(!plans[1].suspended(&local(&[])));
        plans[1].ha_suspend = true;
        assert!(!plans[1].suspended(&local(&[])));
        plans[0].ha_suspend = false;
        assert!(!plans[0].suspended(&local(&[])));
    }

    #[test]
    fn a_group_that_does_not_exist_is_an_error() {
        let text = GROUPS.replace("virtual_server group web", "virtual_server group nosuch");
        let error = format!("{:#}", plan(&parse(&text)).unwrap_err());
        assert!(error.contains("no virtual_server_group nosuch"), "{error}");
    }

    #[test]
    fn checker_errors_name_the_service_and_real_server() {
        let text = crate::lab::Topology::new(2, 4)
            .keepalived_conf(0, &[10, 10])
            .replacen("TCP_CHECK {", "BFD_CHECK {", 1);
        let error = format!("{:#}", plan(&parse(&text)).unwrap_err());
        assert!(
            error.contains("[10.0.0.100]:tcp:80: real server 10.0.0.11:80")
                && error.contains("BFD_CHECK"),
            "{error}"
        );
    }
}
