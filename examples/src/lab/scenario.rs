//! The scripted scenario, its measurements and its expectations.

use super::config::Topology;
use super::traffic::{self, Connection, LongLived, REQUEST_TIMEOUT, Request, Traffic};
use super::{DirectorKind, Options};
use anyhow::{Context, Result, bail};
use lvskit_testlab::keepalived::Keepalived;
use lvskit_testlab::{Frame, Lab, Node, Process};
use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// IP protocol number of VRRP.
const IPPROTO_VRRP: u8 = 112;
/// IP protocol number of TCP.
const IPPROTO_TCP: u8 = 6;
/// Long-lived connections held through the failover.
const LONG_LIVED: usize = 20;
/// Time between two requests of one client address.
const REQUEST_INTERVAL: Duration = Duration::from_millis(200);
/// How often the IPVS tables of the directors are read.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// A VRRP advertisement seen on the bridge.
#[derive(Debug, Clone, Copy)]
pub struct Advert {
    /// Capture timestamp.
    pub time: SystemTime,
    /// Which director (0 = lb1) sent it.
    pub director: usize,
    /// Its priority.
    pub priority: u8,
}

/// One reading of a director's IPVS table: real servers and weights.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it was read.
    pub time: SystemTime,
    /// Which director (0 = lb1).
    pub director: usize,
    /// Destinations of the VIP's service and their weights.
    pub destinations: Vec<(Ipv4Addr, u32)>,
}

/// A named stretch of the scenario.
#[derive(Debug, Clone)]
pub struct Phase {
    /// Short name for the table.
    pub name: String,
    /// Start.
    pub start: SystemTime,
    /// End.
    pub end: SystemTime,
}

/// A stretch in which failed requests are expected (failover, app down).
#[derive(Debug, Clone)]
pub struct Window {
    /// Why requests may fail here.
    pub why: String,
    /// Start (requests started from here on may fail).
    pub start: SystemTime,
    /// End.
    pub end: SystemTime,
}

/// One checked expectation.
#[derive(Debug, Clone)]
pub struct Expectation {
    /// What was expected.
    pub what: String,
    /// What was measured.
    pub measured: String,
    /// Whether it held.
    pub passed: bool,
}

/// Everything a run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The topology and timers.
    pub topology: Topology,
    /// What ran lb1 and lb2.
    pub directors: [String; 2],
    /// When the lab started.
    pub start: SystemTime,
    /// Narration lines with their time.
    pub events: Vec<(SystemTime, String)>,
    /// The phases.
    pub phases: Vec<Phase>,
    /// Where failures are allowed.
    pub windows: Vec<Window>,
    /// Every short request.
    pub requests: Vec<Request>,
    /// The long-lived connections at the end.
    pub connections: Vec<Connection>,
    /// VRRP adverts on the wire.
    pub adverts: Vec<Advert>,
    /// IPVS table readings.
    pub samples: Vec<Sample>,
    /// The expectations and their verdicts.
    pub expectations: Vec<Expectation>,
    /// The final table, as printed.
    pub table: String,
}

impl Outcome {
    /// Whether every expectation held.
    pub fn passed(&self) -> bool {
        self.expectations.iter().all(|e| e.passed)
    }
}

/// A director process: keepalived or lvskitd in a node.
enum Director {
    Keepalived(Keepalived),
    Lvskitd {
        process: Process,
        config_path: std::path::PathBuf,
    },
}

impl Director {
    fn start(
        kind: DirectorKind,
        options: &Options,
        node: &Node,
        name: &str,
        config: &str,
    ) -> Result<Director> {
        match kind {
            DirectorKind::Keepalived => {
                Ok(Director::Keepalived(Keepalived::start(node, name, config)?))
            }
            DirectorKind::Lvskitd => {
                let dir = node.dir();
                let config_path = dir.join(format!("{name}.conf"));
                std::fs::write(&config_path, config)
                    .with_context(|| format!("write {}", config_path.display()))?;
                let path = |what: &str| {
                    dir.join(format!("{name}.{what}"))
                        .to_string_lossy()
                        .into_owned()
                };
                let process = node.spawn(
                    name,
                    [
                        options.lvskitd_bin.to_string_lossy().into_owned(),
                        "--dont-fork".into(),
                        "--log-console".into(),
                        "--log-detail".into(),
                        "--use-file".into(),
                        config_path.to_string_lossy().into_owned(),
                        "--pid".into(),
                        path("pid"),
                        "--status-socket".into(),
                        path("sock"),
                    ],
                )?;
                Ok(Director::Lvskitd {
                    process,
                    config_path,
                })
            }
        }
    }

    fn process(&self) -> &Process {
        match self {
            Director::Keepalived(k) => k.process(),
            Director::Lvskitd { process, .. } => process,
        }
    }

    fn kill(&mut self) {
        match self {
            Director::Keepalived(k) => {
                k.kill();
            }
            Director::Lvskitd { process, .. } => {
                process.kill();
            }
        }
    }

    /// Rewrites the configuration file and sends SIGHUP.
    fn reload(&self, config: &str) -> Result<()> {
        match self {
            Director::Keepalived(k) => {
                std::fs::write(k.config_path(), config).context("rewrite config")?;
                k.reload()
            }
            Director::Lvskitd {
                process,
                config_path,
            } => {
                std::fs::write(config_path, config).context("rewrite config")?;
                let pid = i32::try_from(process.pid()).context("pid")?;
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGHUP)
                    .context("SIGHUP lvskitd")
            }
        }
    }

    fn log(&self) -> String {
        self.process().stdout() + &self.process().stderr()
    }
}

/// The running lab: nodes, processes and observers.
struct Run<'a> {
    options: &'a Options,
    topology: Topology,
    /// Owns the namespaces: dropping it kills what runs in them.
    _lab: Lab,
    nodes: Nodes,
    apps: Vec<Option<Process>>,
    app_starts: Vec<u32>,
    directors: [Option<Director>; 2],
    starts: [u32; 2],
    start: SystemTime,
    events: Vec<(SystemTime, String)>,
    phases: Vec<Phase>,
    windows: Vec<Window>,
    samples: Arc<Mutex<Vec<Sample>>>,
    capture: Option<lvskit_testlab::Capture>,
    port_owner: BTreeMap<String, String>,
    mac_owner: BTreeMap<[u8; 6], String>,
}

struct Nodes {
    client: Node,
    lbs: [Node; 2],
    apps: Vec<Node>,
}

/// Runs the scenario here (the kernel must have IPVS).
pub(super) fn run(options: &Options) -> Result<Outcome> {
    let mut topology = Topology::new(options.apps.max(2), 4);
    topology.advert_int = options.advert_int;
    topology.delay_loop = options.delay_loop;
    if options.delay_loop < Duration::from_secs(6) {
        // Short lab runs: keep the article's proportions (3 s of 6 s).
        topology.connect_timeout = Duration::from_secs(1);
    }
    let kinds = [options.director, options.peer.unwrap_or(options.director)];
    let mut run = Run::build(options, topology)?;
    let result = run.scenario(kinds);
    run.finish(kinds, result)
}

impl<'a> Run<'a> {
    fn build(options: &'a Options, topology: Topology) -> Result<Run<'a>> {
        let lab = Lab::new()?;
        let lan = lab.bridge("lan")?;
        let client = lab.node("client")?;
        let lbs = [lab.node("lb1")?, lab.node("lb2")?];
        let apps = (1..=topology.apps.len())
            .map(|i| lab.node(&format!("app{i}")))
            .collect::<Result<Vec<_>>>()?;
        let mut port_owner = BTreeMap::new();
        let mut mac_owner = BTreeMap::new();
        for node in std::iter::once(&client).chain(&lbs).chain(&apps) {
            let port = lab.connect(node, "eth0", &lan)?;
            port_owner.insert(port.name().to_owned(), node.name().to_owned());
            mac_owner.insert(parse_mac(&node.mac("eth0")?)?, node.name().to_owned());
        }
        for address in &topology.clients {
            client.add_addr("eth0", &format!("{address}/24"))?;
        }
        for (node, address) in lbs.iter().zip(topology.directors) {
            node.add_addr("eth0", &format!("{address}/24"))?;
            // A connection entry whose real server was removed keeps
            // forwarding to it (kernel default 0): a client that reuses a
            // port of such an entry would be sent to the dead app. The
            // usual LVS setting drops the entry on the next packet instead
            // (Documentation/networking/ipvs-sysctl.rst).
            node.sysctl("net.ipv4.vs.expire_nodest_conn", "1")?;
        }
        for (node, address) in apps.iter().zip(&topology.apps) {
            node.add_addr("eth0", &format!("{address}/24"))?;
        }
        let capture = lab.capture(&lan)?;
        let start = SystemTime::now();
        Ok(Run {
            options,
            apps: apps.iter().map(|_| None).collect(),
            app_starts: vec![0; apps.len()],
            nodes: Nodes { client, lbs, apps },
            topology,
            _lab: lab,
            directors: [None, None],
            starts: [0, 0],
            start,
            events: Vec::new(),
            phases: Vec::new(),
            windows: Vec::new(),
            samples: Arc::new(Mutex::new(Vec::new())),
            capture: Some(capture),
            port_owner,
            mac_owner,
        })
    }

    /// Prints and records a narration line.
    fn say(&mut self, text: impl Into<String>) {
        let text = text.into();
        let now = SystemTime::now();
        let t = now.duration_since(self.start).unwrap_or_default();
        println!("[{:7.2} s] {text}", t.as_secs_f64());
        self.events.push((now, text));
    }

    fn vip_target(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.topology.vip, 80)
    }

    fn start_app(&mut self, index: usize) -> Result<()> {
        let name = format!("app{}", index + 1);
        let node = self.nodes.apps[index].clone();
        self.app_starts[index] += 1;
        let process = node.spawn(
            &format!("{name}-{}", self.app_starts[index]),
            [
                self.options.app_bin.to_string_lossy().as_ref(),
                "--name",
                &name,
                "--vip",
                &self.topology.vip.to_string(),
                "--listen",
                "0.0.0.0:80",
            ],
        )?;
        process
            .wait_for_output("ready on", Duration::from_secs(20))
            .with_context(|| format!("{name} did not start"))?;
        self.apps[index] = Some(process);
        Ok(())
    }

    fn start_director(&mut self, index: usize, kind: DirectorKind, weights: &[u32]) -> Result<()> {
        let config = self.topology.keepalived_conf(index, weights);
        self.starts[index] += 1;
        let name = format!("lb{}-{}", index + 1, self.starts[index]);
        let director = Director::start(kind, self.options, &self.nodes.lbs[index], &name, &config)?;
        self.directors[index] = Some(director);
        Ok(())
    }

    fn adverts(&self) -> Vec<Advert> {
        self.capture
            .as_ref()
            .map(|c| adverts(&c.frames(), &self.topology))
            .unwrap_or_default()
    }

    /// Waits until director `index` sends an advert with its own priority
    /// after `after`; returns its time.
    fn wait_advert(
        &self,
        index: usize,
        after: SystemTime,
        timeout: Duration,
    ) -> Result<SystemTime> {
        let priority = Topology::priority(index);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(a) = self
                .adverts()
                .into_iter()
                .find(|a| a.director == index && a.priority == priority && a.time > after)
            {
                return Ok(a.time);
            }
            if Instant::now() > deadline {
                bail!(
                    "lb{} sent no advert within {timeout:?}; its log:\n{}",
                    index + 1,
                    self.directors[index]
                        .as_ref()
                        .map(Director::log)
                        .unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_vip(&self, index: usize, timeout: Duration) -> Result<()> {
        let vip = self.topology.vip.to_string();
        wait_until(timeout, &format!("lb{} to hold the VIP", index + 1), || {
            self.nodes.lbs[index].has_addr("eth0", &vip)
        })
    }

    /// Waits until director `index`'s IPVS table satisfies `pred`; returns
    /// the time of the first reading that does.
    fn wait_table(
        &self,
        index: usize,
        after: SystemTime,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&[(Ipv4Addr, u32)]) -> bool,
    ) -> Result<SystemTime> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(sample) = self
                .samples
                .lock()
                .expect("samples")
                .iter()
                .find(|s| s.director == index && s.time > after && pred(&s.destinations))
            {
                return Ok(sample.time);
            }
            if Instant::now() > deadline {
                bail!("lb{}: {what} did not happen within {timeout:?}", index + 1);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pause(&self, d: Duration) {
        std::thread::sleep(d);
    }

    fn settle(&self) -> Duration {
        (self.topology.advert_int * 3).max(Duration::from_secs(3))
    }

    fn phase(&mut self, name: &str, start: SystemTime) {
        self.phases.push(Phase {
            name: name.to_owned(),
            start,
            end: SystemTime::now(),
        });
    }

    fn window(&mut self, why: &str, start: SystemTime, end: SystemTime) {
        self.windows.push(Window {
            why: why.to_owned(),
            start: start - REQUEST_TIMEOUT,
            end: end + REQUEST_TIMEOUT,
        });
    }

    /// Starts a thread per director that reads its IPVS table every
    /// [`SAMPLE_EVERY`].
    fn start_sampling(&self, stop: &Arc<AtomicBool>) -> Result<()> {
        for (index, node) in self.nodes.lbs.iter().enumerate() {
            let samples = self.samples.clone();
            let stop = stop.clone();
            let vip = self.topology.vip;
            traffic::spawn_in(node, &format!("ipvs lb{}", index + 1), move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(text) = std::fs::read_to_string("/proc/thread-self/net/ip_vs") {
                        samples.lock().expect("samples").push(Sample {
                            time: SystemTime::now(),
                            director: index,
                            destinations: parse_ip_vs(&text, vip),
                        });
                    }
                    std::thread::sleep(SAMPLE_EVERY);
                }
            })?;
        }
        Ok(())
    }

    /// Established connections to the VIP in director `index`'s table.
    fn established(&self, index: usize) -> Result<usize> {
        let vip = format!("{:08X}", u32::from(self.topology.vip));
        let text = self.nodes.lbs[index]
            .in_netns(|| std::fs::read_to_string("/proc/thread-self/net/ip_vs_conn"))??;
        Ok(text
            .lines()
            .filter(|l| l.starts_with("TCP") && l.contains(&vip) && l.contains("ESTABLISHED"))
            .count())
    }

    fn scenario(&mut self, kinds: [DirectorKind; 2]) -> Result<ScenarioData> {
        let stop = Arc::new(AtomicBool::new(false));
        self.start_sampling(&stop)?;
        let _stop_sampling = StopOnDrop(stop);
        let weights = vec![10; self.topology.apps.len()];
        let topo = &self.topology;
        let line = format!(
            "topology: VIP {}, lb1 {} ({}), lb2 {} ({}), apps {}, clients {}; VRRPv{} advert_int {:?}, delay_loop {:?}",
            topo.vip,
            topo.directors[0],
            kinds[0].name(),
            topo.directors[1],
            kinds[1].name(),
            join(&topo.apps),
            join(&topo.clients),
            topo.vrrp_version(),
            topo.advert_int,
            topo.delay_loop
        );
        self.say(line);
        for i in 0..self.topology.apps.len() {
            self.start_app(i)?;
        }
        self.say(format!(
            "{} apps up: VIP on lo, arp_ignore=1, arp_announce=2, HTTP on :80",
            self.apps.len()
        ));
        let t0 = SystemTime::now();
        self.start_director(0, kinds[0], &weights)?;
        self.wait_advert(0, t0, Duration::from_secs(30))?;
        self.wait_vip(0, Duration::from_secs(10))?;
        self.say("lb1 is MASTER and holds the VIP");
        let n_apps = self.topology.apps.len();
        self.wait_table(0, t0, Duration::from_secs(30), "all apps in IPVS", |d| {
            d.len() == n_apps
        })?;
        self.start_director(1, kinds[1], &weights)?;
        self.wait_table(1, t0, Duration::from_secs(30), "lb2's IPVS table", |d| {
            d.len() == n_apps
        })?;
        self.pause(self.settle());
        self.say("lb2 is BACKUP with the same IPVS table");

        // Phase 1: steady traffic and the long-lived connections.
        let clients = self.topology.clients.clone();
        let traffic = Traffic::start(
            &self.nodes.client,
            &clients,
            self.vip_target(),
            REQUEST_INTERVAL,
        )?;
        let long = LongLived::start(
            &self.nodes.client,
            &clients,
            self.vip_target(),
            LONG_LIVED,
            Duration::from_millis(500),
        )?;
        let steady = SystemTime::now();
        self.say(format!(
            "traffic: a request every {REQUEST_INTERVAL:?} from each of {} client addresses; {LONG_LIVED} long-lived keep-alive connections",
            clients.len()
        ));
        self.pause(self.settle());
        let split = split(&traffic.requests(), steady, SystemTime::now());
        self.say(format!("split so far: {split}"));
        let synced_deadline = Instant::now() + Duration::from_secs(15);
        let mut synced = self.established(1)?;
        while synced < LONG_LIVED && Instant::now() < synced_deadline {
            std::thread::sleep(Duration::from_millis(200));
            synced = self.established(1)?;
        }
        self.say(format!(
            "lvs_sync_daemon: lb2 knows {synced} established connections"
        ));
        self.phase("steady", steady);

        // Phase 2: SIGKILL lb1.
        let kill = SystemTime::now();
        if let Some(d) = self.directors[0].as_mut() {
            d.kill();
        }
        self.say("SIGKILL lb1 (no priority-0 advert)");
        let lb2_first = self.wait_advert(1, kill, Duration::from_secs(30))?;
        self.wait_vip(1, Duration::from_secs(10))?;
        self.say(format!(
            "lb2 took over: first advert {:.3} s after the kill",
            secs(lb2_first.duration_since(kill).unwrap_or_default())
        ));
        self.window("failover to lb2", kill, lb2_first);
        self.pause(self.settle());
        let after_failover = long.snapshot();
        let alive = after_failover
            .iter()
            .filter(|c| c.failure.is_none())
            .count();
        self.say(format!(
            "long-lived connections alive after the failover: {alive}/{LONG_LIVED}"
        ));
        self.phase("failover", kill);

        // Phase 3: lb1 returns and preempts.
        let back = SystemTime::now();
        self.start_director(0, kinds[0], &weights)?;
        let lb1_back = self.wait_advert(0, back, Duration::from_secs(30))?;
        self.wait_vip(0, Duration::from_secs(10))?;
        self.say("lb1 restarted and preempted: MASTER again");
        self.window(
            "preemption by lb1",
            back,
            lb1_back + self.topology.advert_int,
        );
        self.pause(self.settle());
        self.phase("preempt", back);

        // Phase 4: app1 stops. The check bound runs from the moment the
        // process is gone.
        let phase_start = SystemTime::now();
        if let Some(mut app) = self.apps[0].take() {
            app.signal(Signal::SIGTERM);
            app.wait_timeout(Duration::from_secs(10))?;
        }
        let down = SystemTime::now();
        let app1 = self.topology.apps[0];
        self.say("app1 stopped (SIGTERM: it removed its VIP and closed :80)");
        let bound = self.topology.removal_bound();
        let removed = self.wait_table(0, down, bound * 2, "app1 removal", |d| {
            !d.iter().any(|(a, _)| *a == app1)
        })?;
        self.say(format!(
            "health check removed app1 after {:.2} s (bound {:.2} s)",
            secs(removed.duration_since(down).unwrap_or_default()),
            secs(bound)
        ));
        self.window("app1 down, not yet removed", phase_start, removed);
        self.pause(self.settle());
        self.phase("app1 down", phase_start);

        // Phase 5: app1 returns.
        let up_start = SystemTime::now();
        self.start_app(0)?;
        let up = SystemTime::now();
        let readded =
            self.wait_table(0, up, self.topology.delay_loop * 3, "app1 re-added", |d| {
                d.iter().any(|(a, _)| *a == app1)
            })?;
        self.say(format!(
            "app1 is back; re-added after {:.2} s (bound: one delay_loop, {:.2} s)",
            secs(readded.duration_since(up).unwrap_or_default()),
            secs(self.topology.delay_loop)
        ));
        self.pause(self.settle());
        self.phase("app1 up", up_start);

        // Phase 6: SIGHUP with a changed weight.
        let before_reload_alive = long
            .snapshot()
            .iter()
            .filter(|c| c.failure.is_none())
            .count();
        let reload = SystemTime::now();
        let mut new_weights = weights.clone();
        new_weights[0] = 20;
        let config = self.topology.keepalived_conf(0, &new_weights);
        if let Some(d) = self.directors[0].as_ref() {
            d.reload(&config)?;
        }
        self.say("lb1: weight of app1 10 → 20 in the config, SIGHUP");
        let reweighted =
            self.wait_table(0, reload, Duration::from_secs(20), "new weight", |d| {
                d.iter().any(|&(a, w)| a == app1 && w == 20)
            })?;
        self.say(format!(
            "lb1's IPVS shows weight 20 for app1 {:.2} s after SIGHUP",
            secs(reweighted.duration_since(reload).unwrap_or_default())
        ));
        self.pause(self.settle());
        self.phase("reload", reload);

        let requests = traffic.stop();
        let connections = long.stop();
        Ok(ScenarioData {
            kill,
            lb2_first,
            back,
            lb1_back,
            down,
            removed,
            up,
            readded,
            reload,
            reweighted,
            synced,
            requests,
            after_failover,
            before_reload_alive,
            connections,
        })
    }

    fn finish(mut self, kinds: [DirectorKind; 2], result: Result<ScenarioData>) -> Result<Outcome> {
        let frames = self.capture.take().map(|c| c.stop()).unwrap_or_default();
        let adverts = adverts(&frames, &self.topology);
        let samples = self.samples.lock().expect("samples").clone();
        let data = match result {
            Ok(data) => data,
            Err(e) => {
                for (i, d) in self.directors.iter().enumerate() {
                    if let Some(d) = d {
                        eprintln!("--- lb{} log ---\n{}", i + 1, d.log());
                    }
                }
                return Err(e);
            }
        };
        let mut expectations = Vec::new();
        let topo = self.topology.clone();

        // Failover on the wire.
        let last_lb1 = adverts
            .iter()
            .filter(|a| a.director == 0 && a.time < data.kill)
            .map(|a| a.time)
            .max();
        let first_lb2 = adverts
            .iter()
            .filter(|a| a.director == 1 && a.time > data.kill)
            .map(|a| a.time)
            .min();
        let expected = topo.master_down_interval();
        let gap = match (last_lb1, first_lb2) {
            (Some(a), Some(b)) => b.duration_since(a).ok(),
            _ => None,
        };
        expectations.push(Expectation {
            what: format!(
                "failover gap (lb1's last advert → lb2's first) = 3×{:?} + skew = {:.4} s ± {:.1} ms",
                topo.advert_int,
                secs(expected),
                secs(self.options.failover_tolerance) * 1000.0
            ),
            measured: gap.map_or("no adverts".into(), |g| {
                let offset_ms = (secs(g) - secs(expected)) * 1000.0;
                format!("{:.4} s ({offset_ms:+.3} ms)", secs(g))
            }),
            passed: gap.is_some_and(|g| g.abs_diff(expected) <= self.options.failover_tolerance),
        });

        // DR: replies straight from the apps.
        let paths = dr_paths(&frames, &topo, &self.port_owner);
        expectations.push(Expectation {
            what: "replies from VIP:80 enter the bridge from app ports only (direct routing)".into(),
            measured: format!(
                "{} reply frames from apps, {} from directors; {} request frames forwarded by directors; {} RSTs sent by directors themselves",
                paths.from_apps, paths.from_directors, paths.forwarded, paths.director_resets.len()
            ),
            passed: paths.from_apps > 0 && paths.from_directors == 0 && paths.forwarded > 0,
        });
        for (time, text) in &paths.director_resets {
            let line = format!("analysis: RST sent by {text}");
            self.events.push((*time, line));
        }
        for (time, text) in paths.director_frames.iter().take(20) {
            let at = time.duration_since(self.start).unwrap_or_default();
            let line = format!("analysis: frame from VIP:80 sent by {text}");
            println!("[{:7.2} s] {line}", secs(at));
            self.events.push((*time, line));
        }

        // Requests.
        let failed_outside: Vec<&Request> = data
            .requests
            .iter()
            .filter(|r| r.outcome.is_err())
            .filter(|r| {
                !self
                    .windows
                    .iter()
                    .any(|w| r.start >= w.start && r.start <= w.end)
            })
            .collect();
        for r in failed_outside.iter().take(5) {
            let line = format!(
                "analysis: request from {}:{} failed outside the windows ({}); on the wire: {}",
                r.client,
                r.port,
                r.outcome.as_ref().err().map_or("", String::as_str),
                trace_flow(&frames, r.client, r.port, &self.port_owner, &self.mac_owner)
            );
            println!("{line}");
            self.events.push((r.start, line));
        }
        expectations.push(Expectation {
            what: "no failed request outside the failover / app-down windows".into(),
            measured: match failed_outside.first() {
                None => format!("{} requests, 0 failed outside", data.requests.len()),
                Some(r) => format!(
                    "{} failed outside, first at {:.2} s from {}: {}",
                    failed_outside.len(),
                    secs(r.start.duration_since(self.start).unwrap_or_default()),
                    r.client,
                    r.outcome.as_ref().err().map_or("", String::as_str)
                ),
            },
            passed: failed_outside.is_empty() && !data.requests.is_empty(),
        });
        let steady = &self.phases[0];
        let steady_split = split_counts(&data.requests, steady.start, steady.end);
        expectations.push(Expectation {
            what: "steady traffic is split across the apps".into(),
            measured: format_split(&steady_split),
            passed: steady_split.len() >= 2,
        });

        // Long-lived connections.
        let survived = data
            .after_failover
            .iter()
            .filter(|c| c.failure.is_none())
            .count();
        expectations.push(Expectation {
            what: format!(
                "all {LONG_LIVED} long-lived connections survive the failover (lvs_sync_daemon)"
            ),
            measured: format!(
                "{survived}/{} alive; lb2 had {} synced",
                data.after_failover.len(),
                data.synced
            ),
            passed: survived == LONG_LIVED,
        });
        let alive_end = data
            .connections
            .iter()
            .filter(|c| c.failure.is_none())
            .count();
        expectations.push(Expectation {
            what: "SIGHUP reload drops no connection".into(),
            measured: format!(
                "{} alive before the reload, {alive_end} after",
                data.before_reload_alive
            ),
            passed: alive_end == data.before_reload_alive && alive_end > 0,
        });

        // Preemption.
        let lb2_after = adverts
            .iter()
            .filter(|a| a.director == 1 && a.time > data.lb1_back + topo.advert_int * 2)
            .count();
        expectations.push(Expectation {
            what: "lb1 comes back and preempts; lb2 stops advertising".into(),
            measured: format!(
                "lb1 advertised {:.3} s after restart; {lb2_after} lb2 adverts after that",
                secs(data.lb1_back.duration_since(data.back).unwrap_or_default())
            ),
            passed: lb2_after == 0,
        });

        // Health checks.
        let removal = data.removed.duration_since(data.down).unwrap_or_default();
        let bound = topo.removal_bound() + SAMPLE_EVERY;
        expectations.push(Expectation {
            what: format!(
                "dead app1 removed within delay_loop + connect_timeout + retry × delay_before_retry = {:.1} s",
                secs(topo.removal_bound())
            ),
            measured: format!("{:.2} s", secs(removal)),
            passed: removal <= bound,
        });
        let readd = data.readded.duration_since(data.up).unwrap_or_default();
        expectations.push(Expectation {
            what: format!(
                "app1 re-added within one delay_loop ({:.1} s)",
                secs(topo.delay_loop)
            ),
            measured: format!("{:.2} s", secs(readd)),
            passed: readd <= topo.delay_loop + SAMPLE_EVERY,
        });
        let served_in_down: BTreeMap<String, usize> =
            split_counts(&data.requests, data.removed + REQUEST_TIMEOUT, data.up);
        expectations.push(Expectation {
            what: "while app1 is out, traffic continues through the other apps".into(),
            measured: format_split(&served_in_down),
            passed: !served_in_down.is_empty() && !served_in_down.contains_key("app1"),
        });
        expectations.push(Expectation {
            what: "SIGHUP applies the new weight".into(),
            measured: format!(
                "weight 20 in lb1's IPVS {:.2} s after SIGHUP",
                secs(
                    data.reweighted
                        .duration_since(data.reload)
                        .unwrap_or_default()
                )
            ),
            passed: true,
        });

        let table = self.table(&data, &expectations);
        println!("\n{table}");
        Ok(Outcome {
            topology: topo,
            directors: kinds.map(|k| k.name().to_owned()),
            start: self.start,
            events: {
                let mut events = std::mem::take(&mut self.events);
                events.sort_by_key(|(time, _)| *time);
                events
            },
            phases: self.phases.clone(),
            windows: self.windows.clone(),
            requests: data.requests,
            connections: data.connections,
            adverts,
            samples,
            expectations,
            table,
        })
    }

    fn table(&self, data: &ScenarioData, expectations: &[Expectation]) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<10} {:>8} {:>8} {:>7}  split",
            "phase", "seconds", "requests", "failed"
        );
        for phase in &self.phases {
            let in_phase: Vec<&Request> = data
                .requests
                .iter()
                .filter(|r| r.start >= phase.start && r.start < phase.end)
                .collect();
            let failed = in_phase.iter().filter(|r| r.outcome.is_err()).count();
            let _ = writeln!(
                s,
                "{:<10} {:>8.1} {:>8} {:>7}  {}",
                phase.name,
                secs(phase.end.duration_since(phase.start).unwrap_or_default()),
                in_phase.len(),
                failed,
                format_split(&split_counts(&data.requests, phase.start, phase.end))
            );
        }
        let _ = writeln!(s);
        for e in expectations {
            let _ = writeln!(
                s,
                "{} {}\n       measured: {}",
                if e.passed { "[ ok ]" } else { "[FAIL]" },
                e.what,
                e.measured
            );
        }
        let failed = expectations.iter().filter(|e| !e.passed).count();
        let _ = writeln!(
            s,
            "\n{} of {} expectations hold",
            expectations.len() - failed,
            expectations.len()
        );
        s
    }
}

/// What the scenario measured, before the analysis.
struct ScenarioData {
    kill: SystemTime,
    #[allow(dead_code)] // kept for the report's narration
    lb2_first: SystemTime,
    back: SystemTime,
    lb1_back: SystemTime,
    down: SystemTime,
    removed: SystemTime,
    up: SystemTime,
    readded: SystemTime,
    reload: SystemTime,
    reweighted: SystemTime,
    synced: usize,
    requests: Vec<Request>,
    after_failover: Vec<Connection>,
    before_reload_alive: usize,
    connections: Vec<Connection>,
}

struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn join(addresses: &[Ipv4Addr]) -> String {
    addresses
        .iter()
        .map(Ipv4Addr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn wait_until(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if check()? {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The VRRP adverts among `frames` from the two directors.
fn adverts(frames: &[Frame], topology: &Topology) -> Vec<Advert> {
    frames
        .iter()
        .filter_map(|frame| {
            let ip = frame.ipv4()?;
            if ip.protocol != IPPROTO_VRRP {
                return None;
            }
            let director = topology.directors.iter().position(|d| *d == ip.src)?;
            Some(Advert {
                time: frame.time,
                director,
                priority: *ip.payload.get(2)?,
            })
        })
        .collect()
}

/// How the VIP's TCP traffic crossed the bridge.
#[derive(Debug, Default)]
struct Paths {
    /// Frames from VIP:80 sent by apps (direct replies).
    from_apps: usize,
    /// Frames from VIP:80 relayed or sent by directors, RSTs excepted.
    from_directors: usize,
    /// Frames to VIP:80 that directors forwarded to an app.
    forwarded: usize,
    /// RSTs from VIP:80 that a director's own stack sent, described.
    director_resets: Vec<(SystemTime, String)>,
    /// The other frames from VIP:80 that left a director, described.
    director_frames: Vec<(SystemTime, String)>,
}

/// TCP flag RST (RFC 9293 §3.1).
const TCP_RST: u8 = 0x04;

/// Counts TCP frames of the VIP's service by the node they came from.
fn dr_paths(frames: &[Frame], topology: &Topology, port_owner: &BTreeMap<String, String>) -> Paths {
    let mut paths = Paths::default();
    for frame in frames {
        let Some(ip) = frame.ipv4() else { continue };
        if ip.protocol != IPPROTO_TCP || ip.payload.len() < 14 {
            continue;
        }
        let source_port = u16::from_be_bytes([ip.payload[0], ip.payload[1]]);
        let destination_port = u16::from_be_bytes([ip.payload[2], ip.payload[3]]);
        let flags = ip.payload[13];
        let owner = port_owner.get(&frame.interface).map_or("", String::as_str);
        let is_director = owner.starts_with("lb");
        if ip.src == topology.vip && source_port == 80 {
            if owner.starts_with("app") {
                paths.from_apps += 1;
            } else if is_director && flags & TCP_RST != 0 {
                paths.director_resets.push((
                    frame.time,
                    format!("{owner} to {}:{destination_port}", ip.dst),
                ));
            } else if is_director {
                paths.from_directors += 1;
                paths.director_frames.push((
                    frame.time,
                    format!(
                        "{owner} to {}:{destination_port}, TCP flags {flags:#04x}",
                        ip.dst
                    ),
                ));
            }
        } else if ip.dst == topology.vip && destination_port == 80 && is_director {
            paths.forwarded += 1;
        }
    }
    paths
}

/// Describes where the frames of one client flow went: for each frame of
/// `client:port` → VIP:80, which node put it on the bridge and to whose MAC.
fn trace_flow(
    frames: &[Frame],
    client: Ipv4Addr,
    port: u16,
    port_owner: &BTreeMap<String, String>,
    mac_owner: &BTreeMap<[u8; 6], String>,
) -> String {
    let mut hops: BTreeMap<String, usize> = BTreeMap::new();
    let mut answers = 0;
    for frame in frames {
        let Some(ip) = frame.ipv4() else { continue };
        if ip.protocol != IPPROTO_TCP || ip.payload.len() < 4 {
            continue;
        }
        let source_port = u16::from_be_bytes([ip.payload[0], ip.payload[1]]);
        let destination_port = u16::from_be_bytes([ip.payload[2], ip.payload[3]]);
        if ip.src == client && source_port == port {
            let from = port_owner.get(&frame.interface).map_or("?", String::as_str);
            let mac: Option<[u8; 6]> = frame.data.get(..6).and_then(|m| m.try_into().ok());
            let to = mac
                .and_then(|m| mac_owner.get(&m))
                .map_or("?", String::as_str);
            *hops.entry(format!("{from}→{to}")).or_insert(0) += 1;
        } else if ip.dst == client && destination_port == port {
            answers += 1;
        }
    }
    let hops = hops
        .iter()
        .map(|(hop, n)| format!("{hop} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("client frames {hops}; {answers} frames back")
}

/// `"02:11:22:33:44:55"` as bytes.
fn parse_mac(text: &str) -> Result<[u8; 6]> {
    let bytes = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<Vec<u8>, _>>()
        .with_context(|| format!("bad MAC {text:?}"))?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("bad MAC {text:?}"))
}

/// Parses `/proc/net/ip_vs` (kernel `ip_vs_info_seq_show`): the
/// destinations of the TCP service `vip:80` and their weights.
pub(crate) fn parse_ip_vs(text: &str, vip: Ipv4Addr) -> Vec<(Ipv4Addr, u32)> {
    let service = format!("TCP  {:08X}:0050", u32::from(vip));
    let mut inside = false;
    let mut destinations = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.trim_start().strip_prefix("-> ") {
            if !inside {
                continue;
            }
            let mut fields = rest.split_whitespace();
            let (Some(address), Some(_forward), Some(weight)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let Some((hex, _port)) = address.split_once(':') else {
                continue;
            };
            if let (Ok(a), Ok(w)) = (u32::from_str_radix(hex, 16), weight.parse()) {
                destinations.push((Ipv4Addr::from(a), w));
            }
        } else {
            inside = line.starts_with(&service);
        }
    }
    destinations
}

/// Requests served per app between `from` and `to`, plus failures.
fn split_counts(requests: &[Request], from: SystemTime, to: SystemTime) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in requests.iter().filter(|r| r.start >= from && r.start < to) {
        let key = match &r.outcome {
            Ok(app) => app.clone(),
            Err(_) => continue,
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

fn split(requests: &[Request], from: SystemTime, to: SystemTime) -> String {
    format_split(&split_counts(requests, from, to))
}

fn format_split(counts: &BTreeMap<String, usize>) -> String {
    let total: usize = counts.values().sum();
    if total == 0 {
        return "no answers".into();
    }
    counts
        .iter()
        .map(|(app, n)| format!("{app} {n} ({:.0}%)", 100.0 * *n as f64 / total as f64))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_ip_vs_is_parsed() {
        // Layout of kernel 6.1 net/netfilter/ipvs/ip_vs_ctl.c
        // ip_vs_info_seq_show, as printed for the lab's service.
        let text = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n\
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n\
TCP  0A000064:0050 rr persistent 50000\n\
  -> 0A00000C:0050      Route   10     0          3         \n\
  -> 0A00000B:0050      Route   20     1          2         \n\
TCP  0A000065:0050 rr \n\
  -> 0A00000D:0050      Route   1      0          0         \n";
        let vip = Ipv4Addr::new(10, 0, 0, 100);
        assert_eq!(
            parse_ip_vs(text, vip),
            vec![
                (Ipv4Addr::new(10, 0, 0, 12), 10),
                (Ipv4Addr::new(10, 0, 0, 11), 20)
            ]
        );
        assert!(parse_ip_vs("garbage\n  -> x\n", vip).is_empty());
    }

    #[test]
    fn split_counts_answers_per_app() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let request = |offset: u64, outcome: Result<&str, &str>| Request {
            start: t + Duration::from_secs(offset),
            duration: Duration::from_millis(1),
            client: Ipv4Addr::new(10, 0, 0, 51),
            port: 40000,
            outcome: outcome.map(str::to_owned).map_err(str::to_owned),
        };
        let requests = [
            request(0, Ok("app1")),
            request(1, Ok("app2")),
            request(2, Ok("app2")),
            request(3, Err("timeout")),
            request(9, Ok("app1")),
        ];
        let counts = split_counts(&requests, t, t + Duration::from_secs(5));
        assert_eq!(counts.get("app1"), Some(&1));
        assert_eq!(counts.get("app2"), Some(&2));
        assert_eq!(format_split(&counts), "app1 1 (33%), app2 2 (67%)");
    }
}
