//! Scale bench for the health-check runner (figures for the report, not a
//! timed test).
//!
//! ```text
//! hc_bench tcp  --servers 10000 --seconds 60   # TCP_CHECK every 1 s
//! hc_bench http --servers 2000  --seconds 60   # HTTP_GET every 1 s
//! hc_bench bare --servers 10000 --seconds 60   # bare tokio connect loop
//! ```
//!
//! The real servers run in a child process (this binary with `serve`), on
//! listeners spread over many addresses in 127.0.0.0/8, so that
//! `getrusage(RUSAGE_SELF)` in the parent counts the checker's CPU only.
//! The checker runs on a single-threaded tokio runtime. Lateness is how long
//! after its due time each probe started.

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
}

fn raise_nofile() -> anyhow::Result<u64> {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let want = 65_536u64.max(hard);
    if setrlimit(Resource::RLIMIT_NOFILE, want, want).is_err() {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
        return Ok(hard);
    }
    Ok(want)
}

fn cpu_time() -> anyhow::Result<Duration> {
    let u = getrusage(UsageWho::RUSAGE_SELF)?;
    let tv =
        |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    Ok(tv(u.user_time()) + tv(u.system_time()))
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
            let listener = socket.listen(1024)?;
            writeln!(out, "{}", listener.local_addr()?)?;
            let http = args.http;
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    if http {
                        tokio::spawn(serve_http(stream));
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
    cpu: Duration,
    wall: Duration,
}

impl Report {
    fn print(&self, mode: Mode, servers: usize) {
        let cores = self.cpu.as_secs_f64() / self.wall.as_secs_f64();
        let per_check = self.cpu.as_secs_f64() * 1e6 / self.probes.max(1) as f64;
        println!(
            "mode={mode:?} servers={servers} wall={:.1}s probes={} failures={} rate={:.0}/s",
            self.wall.as_secs_f64(),
            self.probes,
            self.failures,
            self.probes as f64 / self.wall.as_secs_f64()
        );
        println!(
            "lateness p50={:?} p99={:?} p99.9={:?} max={:?}",
            self.lateness.quantile(0.50),
            self.lateness.quantile(0.99),
            self.lateness.quantile(0.999),
            self.lateness.max
        );
        println!(
            "cpu={:.2}s cores={cores:.3} cpu_per_check={per_check:.1}us",
            self.cpu.as_secs_f64()
        );
    }
}

async fn run_checker(args: &Args, targets: &[SocketAddr]) -> anyhow::Result<Report> {
    let mut scheduler = Scheduler::new(args.max_in_flight);
    let now = tokio::time::Instant::now().into_std();
    for target in targets {
        let kind = if args.mode == Mode::Http {
            CheckKind::Http(HttpGet {
                urls: vec![UrlCheck::new("/")],
                ..HttpGet::default()
            })
        } else {
            CheckKind::Tcp
        };
        let mut spec = CheckSpec::new(*target, kind, Duration::from_secs(1));
        spec.connect.connect_timeout = Duration::from_secs(1);
        spec.timing.warmup = Duration::from_secs(1); // jittered first probes
        scheduler.add_real_server(now, vec![spec]);
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
    let (cpu0, wall0) = (cpu_time()?, Instant::now());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (cpu, wall) = (cpu_time()? - cpu0, wall0.elapsed());
    let lateness = std::mem::take(&mut *lateness.lock().unwrap());
    let failures = failures.load(Ordering::Relaxed);
    Ok(Report {
        probes: lateness.probes,
        failures,
        lateness,
        cpu,
        wall,
    })
}

/// The baseline: one task per server doing what TCP_CHECK does, nothing more.
async fn run_bare(args: &Args, targets: &[SocketAddr]) -> anyhow::Result<Report> {
    let lateness = Arc::new(Mutex::new(Lateness::default()));
    let failures = Arc::new(AtomicU64::new(0));
    let start = tokio::time::Instant::now();
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
                match tokio::time::timeout(
                    Duration::from_secs(1),
                    tokio::net::TcpStream::connect(target),
                )
                .await
                {
                    Ok(Ok(s)) => drop(s),
                    _ => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                due = tokio::time::Instant::now() + Duration::from_secs(1);
            }
        });
    }
    measure(args.seconds, &lateness, &failures).await
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(async {
        if args.mode == Mode::Bare {
            run_bare(&args, &targets).await
        } else {
            run_checker(&args, &targets).await
        }
    })?;
    report.print(args.mode, args.servers);
    drop(child.stdin.take());
    let _ = child.wait();
    Ok(())
}
