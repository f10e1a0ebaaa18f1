//! `hcheck`: run one keepalived-style checker in a loop and print each
//! transition (one line containing UP or DOWN and the reason). With
//! `--alpha` the first line says the checker starts down.
//!
//! ```text
//! hcheck tcp|http|ssl|smtp|dns|udp|ping HOST:PORT [options]
//! ```
//!
//! Options are keepalived's keywords with dashes, e.g.
//! `hcheck http 127.0.0.1:80 --path /health --status-code 200-299
//! --delay-loop 2 --retry 3 --delay-before-retry 1`.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use lvskit_healthcheck::config::{
    DnsCheck, HttpGet, HttpVersion, SmtpCheck, SslGet, UdpCheck, UrlCheck, parse_digest,
};
use lvskit_healthcheck::runner::{self, Lateness};
use lvskit_healthcheck::{CheckKind, CheckSpec, Event, Reason, Scheduler};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Kind {
    Tcp,
    Http,
    Ssl,
    Smtp,
    Dns,
    Udp,
    Ping,
}

/// Run one health checker in a loop; print UP/DOWN transitions.
#[derive(Debug, Parser)]
#[command(name = "hcheck")]
struct Args {
    /// Checker kind.
    kind: Kind,
    /// Real server, HOST:PORT (port ignored for ping).
    target: String,
    /// Seconds between checks.
    #[arg(long, default_value_t = 5.0)]
    delay_loop: f64,
    /// Seconds allowed for one whole check.
    #[arg(long, default_value_t = 5.0)]
    connect_timeout: f64,
    /// Failures tolerated before DOWN (keepalived default 1; DNS 3).
    #[arg(long)]
    retry: Option<u32>,
    /// Seconds between a failure and its retry.
    #[arg(long)]
    delay_before_retry: Option<f64>,
    /// First check after a random delay in 0..=warmup seconds.
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Start down until a first success.
    #[arg(long)]
    alpha: bool,
    /// HTTP/SSL url path (repeatable: one url block each).
    #[arg(long)]
    path: Vec<String>,
    /// Accepted status codes for the urls, e.g. "200 301-304".
    #[arg(long)]
    status_code: Option<String>,
    /// Expected MD5 of the body (32 hex digits).
    #[arg(long)]
    digest: Option<String>,
    /// Host header.
    #[arg(long)]
    virtualhost: Option<String>,
    /// Use HTTP/1.1 instead of HTTP/1.0.
    #[arg(long)]
    http11: bool,
    /// SSL: CA file to verify the server against.
    #[arg(long)]
    ca: Option<std::path::PathBuf>,
    /// SSL: server name for SNI.
    #[arg(long)]
    sni: Option<String>,
    /// SMTP HELO name.
    #[arg(long)]
    helo_name: Option<String>,
    /// DNS query type.
    #[arg(long = "type", default_value = "SOA")]
    query_type: String,
    /// DNS query name.
    #[arg(long, default_value = ".")]
    name: String,
    /// UDP payload (text).
    #[arg(long, default_value = "")]
    payload: String,
    /// UDP: a reply is required.
    #[arg(long)]
    require_reply: bool,
    /// Source address.
    #[arg(long)]
    bindto: Option<IpAddr>,
    /// Source port.
    #[arg(long)]
    bind_port: Option<u16>,
    /// Interface to bind to (SO_BINDTODEVICE).
    #[arg(long)]
    bind_if: Option<String>,
    /// Firewall mark (SO_MARK).
    #[arg(long)]
    fwmark: Option<u32>,
}

fn secs(s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).context("durations are non-negative seconds")
}

fn target(text: &str, kind: Kind) -> anyhow::Result<SocketAddr> {
    let with_port = if matches!(kind, Kind::Ping) && text.parse::<IpAddr>().is_ok() {
        format!("{}", SocketAddr::new(text.parse()?, 0))
    } else {
        text.to_owned()
    };
    with_port
        .to_socket_addrs()?
        .next()
        .with_context(|| format!("cannot resolve {text}"))
}

fn build(args: &Args) -> anyhow::Result<CheckSpec> {
    let addr = target(&args.target, args.kind)?;
    let http = || -> anyhow::Result<HttpGet> {
        let paths = if args.path.is_empty() {
            vec!["/".to_owned()]
        } else {
            args.path.clone()
        };
        let mut urls = Vec::new();
        for path in paths {
            let mut url = UrlCheck::new(path);
            if let Some(codes) = &args.status_code {
                url.status_code = codes.parse()?;
            }
            if let Some(d) = &args.digest {
                url.digest = Some(parse_digest(d)?);
            }
            urls.push(url);
        }
        let version = if args.http11 {
            HttpVersion::Http11
        } else {
            HttpVersion::Http10
        };
        Ok(HttpGet {
            urls,
            version,
            virtualhost: args.virtualhost.clone(),
        })
    };
    let kind = match args.kind {
        Kind::Tcp => CheckKind::Tcp,
        Kind::Http => CheckKind::Http(http()?),
        Kind::Ssl => CheckKind::Ssl(SslGet {
            http: http()?,
            ca_file: args.ca.clone(),
            sni: args.sni.clone(),
            client_certificate: None,
        }),
        Kind::Smtp => {
            let mut s = SmtpCheck::default();
            if let Some(n) = &args.helo_name {
                s.helo_name = n.clone();
            }
            CheckKind::Smtp(s)
        }
        Kind::Dns => CheckKind::Dns(DnsCheck {
            record_type: args.query_type.clone(),
            name: args.name.clone(),
        }),
        Kind::Udp => CheckKind::Udp(UdpCheck {
            payload: args.payload.as_bytes().to_vec(),
            require_reply: args.require_reply,
            ..UdpCheck::default()
        }),
        Kind::Ping => CheckKind::Ping,
    };
    let mut spec = CheckSpec::new(addr, kind, secs(args.delay_loop)?);
    if let Some(r) = args.retry {
        spec.timing.retry = r;
    }
    if let Some(d) = args.delay_before_retry {
        spec.timing.delay_before_retry = secs(d)?;
    }
    spec.timing.warmup = secs(args.warmup)?;
    spec.timing.alpha = args.alpha;
    spec.connect.connect_timeout = secs(args.connect_timeout)?;
    spec.connect.bindto = args.bindto;
    spec.connect.bind_port = args.bind_port;
    spec.connect.bind_if = args.bind_if.clone();
    spec.connect.fwmark = args.fwmark;
    if spec.connect.connect_timeout.is_zero() || spec.timing.delay_loop.is_zero() {
        bail!("--connect-timeout and --delay-loop must be positive");
    }
    Ok(spec)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let spec = build(&args)?;
    let name = format!("{} {}", spec.kind.keyword(), spec.destination());
    let alpha = spec.timing.alpha;
    let mut scheduler = Scheduler::new(1);
    let start = tokio::time::Instant::now();
    scheduler.add_real_server(start.into_std(), vec![spec]);
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(runner::run(
        scheduler,
        tx,
        Arc::new(Mutex::new(Lateness::default())),
    ));
    let line = |at: Duration, up: bool, reason: &dyn std::fmt::Display| {
        let state = if up { "UP" } else { "DOWN" };
        println!("{:9.3}s {name} {state}: {reason}", at.as_secs_f64());
    };
    // The state last printed: with `alpha` the checker starts down, and a
    // first failure then changes nothing.
    let mut shown = None;
    if alpha {
        line(Duration::ZERO, false, &Reason::Alpha);
        shown = Some(false);
    }
    while let Some(event) = rx.recv().await {
        if let Event::Checker { at, transition, .. } = event
            && shown != Some(transition.up)
        {
            line(
                at.duration_since(start.into_std()),
                transition.up,
                &transition.reason,
            );
            shown = Some(transition.up);
        }
    }
    Ok(())
}
