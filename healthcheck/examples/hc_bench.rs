//! Scale bench for the health-check runner (figures for the report, not a
//! timed test).
//!
//! ```text
//! hc_bench tcp  --servers 10000 --seconds 60   # TCP_CHECK every 1 s
//! hc_bench http --servers 2000  --seconds 60   # HTTP_GET every 1 s
//! hc_bench bare --servers 10000 --seconds 60   # bare tokio connect loop
//! # checker and bare loop alternating, 3 rounds of 20 s each, real-time:
//! chrt -f 10 hc_bench tcp --servers 10000 --seconds 20 --rounds 3 --baseline
//! ```
//!
//! The real servers run in a child process (this binary with `serve`), on
//! listeners spread over many addresses in 127.0.0.0/8, so that
//! `getrusage(RUSAGE_SELF)` in the parent counts the checker's CPU only.
//! The checker runs on a single-threaded tokio runtime, a fresh one per
//! measured phase. A probe is due one `delay_loop` after the previous one
//! ended (keepalived's rule); its lateness is how long after that it began,
//! the connect not included. With `--baseline`, each round measures a bare
//! tokio loop doing the same work (connect; or connect, GET and read for
//! `http`) right before the checker, against the same servers, so the two
//! see the same machine load.
//!
//! Figures, shared 2-core host at load average 7-10 (other builds and
//! tests running), under `chrt -f 10`, two 60 s rounds with the bare loop
//! measured before each checker phase:
//! - TCP_CHECK, 10,000 servers every 1 s: p99 lateness 5 and 3 ms (p99.9
//!   27 and 6 ms; the bare loop 5 and 4 ms), target < 50 ms. CPU 0.395 and
//!   0.401 core, target <= 0.5 (the bare loop 0.478 both rounds): 39.9 us
//!   per check against 47.9 us, 0.83x, target <= 1.5x. The checker costs
//!   less than the bare loop because its TCP connect does not go through
//!   the reactor when the handshake completed inside connect(2), as it does
//!   on loopback (see `probe::tcp`): no `epoll_ctl` add and delete, no
//!   `SO_ERROR` read, no wake-up (`strace -c`: 4 system calls per check,
//!   socket, connect, getpeername and close, against the bare loop's 6).
//!   Against servers on other hosts the handshake is never complete by
//!   then, the reactor path is taken, and the checker costs about what the
//!   bare loop does (1.06-1.09x measured on loopback before the change).
//!   89% of the rest is system time: the kernel runs the server's side of
//!   each handshake and close in the connecting process's softirq (perf,
//!   checker's samples: connect 51%, close 23%, socket 9%, user 11%). Not
//!   the cost: the ephemeral port search (`__inet_hash_connect` 2%), the
//!   TIME_WAIT sockets (2%), netfilter (no samples). Closing with a reset
//!   (`SO_LINGER` 0) instead of a FIN made it worse, 50 us against 38 us
//!   per check in the same run, so the checker keeps the FIN.
//! - HTTP_GET, 2,000 servers every 1 s (one 60 s round, load 10-11): p99
//!   2 ms (bare connect + GET loop 2 ms), CPU 0.175 core, 87.6 us per check
//!   against 77.4 us, 1.13x; the same system time, the difference is user
//!   time (hyper, the status and digest checks).
//!
//! Re-measure on a quiet host with
//! `cargo build --release -p lvskit-healthcheck --example hc_bench`, then
//! `chrt -f 10 target/release/examples/hc_bench tcp --servers 10000
//! --seconds 60 --rounds 2 --baseline` and the same with `http --servers
//! 2000`. Where the time goes: `perf record -g -- hc_bench tcp --servers
//! 10000 --seconds 10`, then `perf report --no-children` on the parent's
//! pid; system calls per check: `strace -c hc_bench tcp --servers 2000
//! --seconds 5` (the parent only: the servers run in the child).

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use lvskit_healthcheck::config::{HttpGet, UrlCheck};
use lvskit_healthcheck::runner::{self, Lateness};
use lvskit_healthcheck::{CheckKind, CheckSpec, Event, Scheduler};
use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage, setrlimit};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// TCP_CHECK through the scheduler and runner.
    Tcp,
    /// HTTP_GET through the scheduler and runner.
    Http,
    /// A bare tokio loop: one task per server, sleep_until + connect.
    Bare,
    /// Internal: run the servers (child process).
    Serve,
}

#[derive(Debug, Parser)]
struct Args {
    mode: Mode,
    /// Number of real servers.
    #[arg(long, default_value_t = 10_000)]
    servers: usize,
    /// Measured duration.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Listeners per loopback address.
    #[arg(long, default_value_t = 50)]
    per_address: usize,
    /// Serve HTTP instead of plain TCP (child mode).
    #[arg(long)]
    http: bool,
    /// Probes in flight at most.
    #[arg(long, default_value_t = 4096)]
    max_in_flight: usize,
    /// Measured phases of each kind.
    #[arg(long, default_value_t = 1)]
    rounds: u32,
    /// Before each checker phase, measure the bare loop doing the same work.
    #[arg(long)]
    baseline: bool,
}

/// Listen backlog of each real server (the kernel caps it at
/// `net.core.somaxconn`, 4096 by default since Linux 5.4).
const LISTEN_BACKLOG: u32 = 1024;

fn raise_nofile() -> anyhow::Result<u64> {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let want = 65_536u64.max(hard);
    if setrlimit(Resource::RLIMIT_NOFILE, want, want).is_err() {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
        return Ok(hard);
    }
    Ok(want)
}

/// User and system CPU time of this process so far.
fn cpu_time() -> anyhow::Result<(Duration, Duration)> {
    let u = getrusage(UsageWho::RUSAGE_SELF)?;
    let tv =
        |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    Ok((tv(u.user_time()), tv(u.system_time())))
}

fn address(i: usize, per_address: usize) -> IpAddr {
    let a = i / per_address;
    IpAddr::V4(Ipv4Addr::new(
        127,
        200,
        (a / 250) as u8,
        (a % 250 + 1) as u8,
    ))
}

/// Child: bind the listeners, print their addresses, serve until stdin closes.
fn serve(args: &Args) -> anyhow::Result<()> {
    raise_nofile()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut out = std::io::stdout().lock();
        for i in 0..args.servers {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(address(i, args.per_address), 0))?;
            // Each listener sees about one connection per second; the
            // backlog only has to cover a stall of the accept loop.
            let listener = socket.listen(LISTEN_BACKLOG)?;
            writeln!(out, "{}", listener.local_addr()?)?;
            let http = args.http;
            tokio::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) if http => drop(tokio::spawn(serve_http(stream))),
                        Ok(_) => {}
                        // Out of descriptors: keep the listener and retry
                        // shortly (the kernel completes handshakes anyway).
                        Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
                    }
                }
            });
        }
        writeln!(out, "READY")?;
        out.flush()?;
        drop(out);
        // Serve until the parent closes our stdin.
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin()
                .read_line(&mut line)
                .map(|n| n > 0)
                .unwrap_or(false)
            {}
        })
        .await?;
        anyhow::Ok(())
    })
}

async fn serve_http(stream: tokio::net::TcpStream) {
    use http_body_util::Full;
    let svc = hyper::service::service_fn(|_req| async {
        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
            bytes::Bytes::from_static(b"ok\n"),
        )))
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
        .await;
}

struct Report {
    probes: u64,
    failures: u64,
    lateness: Lateness,
    user: Duration,
    system: Duration,
    wall: Duration,
}

impl Report {
    fn cpu(&self) -> Duration {
        self.user + self.system
    }

    fn cpu_per_check(&self) -> Duration {
        self.cpu().div_f64(self.probes.max(1) as f64)
    }

    fn print(&self, label: &str, servers: usize, load: &str) {
        let cores = self.cpu().as_secs_f64() / self.wall.as_secs_f64();
        println!(
            "{label} servers={servers} wall={:.1}s probes={} failures={} rate={:.0}/s loadavg=[{load}]",
            self.wall.as_secs_f64(),
            self.probes,
            self.failures,
            self.probes as f64 / self.wall.as_secs_f64()
        );
        println!(
            "  lateness p50={:?} p99={:?} p99.9={:?} max={:?}",
            self.lateness.quantile(0.50),
            self.lateness.quantile(0.99),
            self.lateness.quantile(0.999),
            self.lateness.max
        );
        println!(
            "  cpu={:.2}s (user {:.2}s, system {:.2}s) cores={cores:.3} cpu_per_check={:.1}us",
            self.cpu().as_secs_f64(),
            self.user.as_secs_f64(),
            self.system.as_secs_f64(),
            self.cpu_per_check().as_secs_f64() * 1e6
        );
    }
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// This process's scheduling policy and real-time priority, from
/// `/proc/self/stat` (fields 41 and 40, proc(5)).
fn scheduling() -> String {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // `fields[0]` is field 3 (state).
    let priority = fields.get(37).copied().unwrap_or("?");
    match fields.get(38).copied() {
        Some("0") => "SCHED_OTHER".to_owned(),
        Some("1") => format!("SCHED_FIFO priority {priority}"),
        Some("2") => format!("SCHED_RR priority {priority}"),
        other => format!("policy {other:?}"),
    }
}

fn checker_spec(mode: Mode, target: SocketAddr) -> CheckSpec {
    let kind = if mode == Mode::Http {
        CheckKind::Http(HttpGet {
            urls: vec![UrlCheck::new("/")],
            ..HttpGet::default()
        })
    } else {
        CheckKind::Tcp
    };
    let mut spec = CheckSpec::new(target, kind, Duration::from_secs(1));
    spec.connect.connect_timeout = Duration::from_secs(1);
    spec.timing.warmup = Duration::from_secs(1); // jittered first probes
    spec
}

async fn run_checker(args: &Args, targets: &[SocketAddr]) -> anyhow::Result<Report> {
    let mut scheduler = Scheduler::new(args.max_in_flight);
    let now = tokio::time::Instant::now().into_std();
    for target in targets {
        scheduler.add_real_server(now, vec![checker_spec(args.mode, *target)]);
    }
    let lateness = Arc::new(Mutex::new(Lateness::default()));
    let (tx, mut rx) = tokio::sync::mpsc::channel(4096);
    tokio::spawn(runner::run(scheduler, tx, lateness.clone()));
    let failures = Arc::new(AtomicU64::new(0));
    let f2 = failures.clone();
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            if let Event::Checker { transition, .. } = event
                && !transition.up
            {
                f2.fetch_add(1, Ordering::Relaxed);
                eprintln!("DOWN: {}", transition.reason);
            }
        }
    });
    measure(args.seconds, &lateness, &failures).await
}

/// Lets the first (jittered) probes spread for 2 s, then measures for
/// `seconds`.
async fn measure(
    seconds: u64,
    lateness: &Mutex<Lateness>,
    failures: &AtomicU64,
) -> anyhow::Result<Report> {
    tokio::time::sleep(Duration::from_secs(2)).await;
    lateness.lock().unwrap().reset();
    failures.store(0, Ordering::Relaxed);
    let ((user0, system0), wall0) = (cpu_time()?, Instant::now());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let ((user1, system1), wall) = (cpu_time()?, wall0.elapsed());
    let lateness = std::mem::take(&mut *lateness.lock().unwrap());
    let failures = failures.load(Ordering::Relaxed);
    Ok(Report {
        probes: lateness.probes,
        failures,
        lateness,
        user: user1 - user0,
        system: system1 - system0,
        wall,
    })
}

/// What the bare loop does with one server: the checker's work with
/// nothing around it.
async fn bare_check(target: SocketAddr, http: bool) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(target).await?;
    if !http {
        return Ok(());
    }
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = Vec::with_capacity(256);
    stream.read_to_end(&mut response).await?;
    if response.starts_with(b"HTTP/1.0 200") || response.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(std::io::Error::other("not a 200 response"))
    }
}

/// The baseline: one task per server doing the checker's work on the same
/// schedule (due one second after the previous check ended).
async fn run_bare(args: &Args, targets: &[SocketAddr]) -> anyhow::Result<Report> {
    let lateness = Arc::new(Mutex::new(Lateness::default()));
    let failures = Arc::new(AtomicU64::new(0));
    let start = tokio::time::Instant::now();
    let http = args.mode == Mode::Http;
    for (i, target) in targets.iter().enumerate() {
        let target = *target;
        let lateness = lateness.clone();
        let failures = failures.clone();
        let offset = Duration::from_secs(1) * i as u32 / targets.len() as u32;
        tokio::spawn(async move {
            let mut due = start + offset;
            loop {
                tokio::time::sleep_until(due).await;
                let late = tokio::time::Instant::now() - due;
                if let Ok(mut l) = lateness.lock() {
                    l.record(late);
                }
                let check = tokio::time::timeout(Duration::from_secs(1), bare_check(target, http));
                if !matches!(check.await, Ok(Ok(()))) {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                due = tokio::time::Instant::now() + Duration::from_secs(1);
            }
        });
    }
    measure(args.seconds, &lateness, &failures).await
}

/// Measures one phase on a fresh single-threaded runtime; dropping the
/// runtime at the end stops every task of the phase.
fn phase(args: &Args, targets: &[SocketAddr], bare: bool) -> anyhow::Result<Report> {
    let load = load_average();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(async {
        if bare {
            run_bare(args, targets).await
        } else {
            run_checker(args, targets).await
        }
    })?;
    let label = match (bare, args.mode) {
        (true, Mode::Http) => "bare-http",
        (true, _) => "bare-tcp",
        (false, Mode::Http) => "checker-http",
        (false, _) => "checker-tcp",
    };
    report.print(label, targets.len(), &load);
    Ok(report)
}

/// Sums phases: probes, CPU and wall time add up, lateness merges.
fn total(reports: &[Report]) -> Report {
    let mut sum = Report {
        probes: 0,
        failures: 0,
        lateness: Lateness::default(),
        user: Duration::ZERO,
        system: Duration::ZERO,
        wall: Duration::ZERO,
    };
    for r in reports {
        sum.probes += r.probes;
        sum.failures += r.failures;
        sum.user += r.user;
        sum.system += r.system;
        sum.wall += r.wall;
        sum.lateness.merge(&r.lateness);
    }
    sum
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.mode == Mode::Serve {
        return serve(&args);
    }
    let nofile = raise_nofile()?;
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args([
            "serve",
            "--servers",
            &args.servers.to_string(),
            "--per-address",
            &args.per_address.to_string(),
        ])
        .args(if args.mode == Mode::Http {
            &["--http"][..]
        } else {
            &[][..]
        })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut targets = Vec::with_capacity(args.servers);
    for line in BufReader::new(child.stdout.take().context("child stdout")?).lines() {
        let line = line?;
        if line == "READY" {
            break;
        }
        targets.push(line.parse::<SocketAddr>()?);
    }
    if targets.len() != args.servers {
        bail!(
            "server child started {} of {} listeners",
            targets.len(),
            args.servers
        );
    }
    let addresses: std::collections::HashSet<_> = targets.iter().map(|t| t.ip()).collect();
    eprintln!(
        "{} listeners on {} addresses; RLIMIT_NOFILE {nofile}",
        targets.len(),
        addresses.len()
    );
    println!("scheduling: {}", scheduling());
    let (mut checker, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..args.rounds.max(1) {
        if args.mode == Mode::Bare || args.baseline {
            bare.push(phase(&args, &targets, true)?);
        }
        if args.mode != Mode::Bare {
            checker.push(phase(&args, &targets, false)?);
        }
    }
    let load = load_average();
    if args.rounds > 1 {
        for (label, reports) in [("total-bare", &bare), ("total-checker", &checker)] {
            if !reports.is_empty() {
                total(reports).print(label, targets.len(), &load);
            }
        }
    }
    if !bare.is_empty() && !checker.is_empty() {
        let ratio = total(&checker).cpu_per_check().as_secs_f64()
            / total(&bare).cpu_per_check().as_secs_f64();
        println!("cpu_per_check checker/bare = {ratio:.2}x (target <= 1.5x)");
    }
    drop(child.stdin.take());
    let _ = child.wait();
    Ok(())
}
