//! What to check and how often: the data behind one keepalived checker block.
//!
//! A [`CheckSpec`] is plain, hashable data. Two real servers (in the same or
//! different virtual servers) whose specs compare equal share one probe loop
//! in the [`Scheduler`](crate::Scheduler): that is the deduplication the
//! crate promises.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::error::ConfigError;

/// keepalived's default `delay_loop` for a virtual server (60 s).
pub const DEFAULT_DELAY_LOOP: Duration = Duration::from_secs(60);
/// keepalived's default `connect_timeout` (5 s).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// keepalived's default `helo_name` for SMTP_CHECK.
pub const DEFAULT_HELO_NAME: &str = "smtpchecker.keepalived.org";

/// Options common to every network checker (keepalived's "connection
/// options": `connect_ip`, `connect_port`, `bindto`, `bind_port`, `bind_if`,
/// `fwmark`, `connect_timeout`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConnectOptions {
    /// Address to probe instead of the real server's address.
    pub connect_ip: Option<IpAddr>,
    /// Port to probe instead of the real server's port.
    pub connect_port: Option<u16>,
    /// Source address to bind the probe socket to.
    pub bindto: Option<IpAddr>,
    /// Source port to bind the probe socket to.
    pub bind_port: Option<u16>,
    /// Interface to bind the probe socket to (`SO_BINDTODEVICE`).
    pub bind_if: Option<String>,
    /// Firewall mark put on the probe's packets (`SO_MARK`).
    pub fwmark: Option<u32>,
    /// Upper bound on the whole probe: connect, request and response.
    ///
    /// keepalived applies its timeout to each read; this crate applies it to
    /// the probe as a whole so that a server dripping bytes cannot hold a
    /// checker for longer than this.
    pub connect_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_ip: None,
            connect_port: None,
            bindto: None,
            bind_port: None,
            bind_if: None,
            fwmark: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl ConnectOptions {
    /// The address actually probed for a real server at `real_server`.
    pub fn destination(&self, real_server: SocketAddr) -> SocketAddr {
        SocketAddr::new(
            self.connect_ip.unwrap_or(real_server.ip()),
            self.connect_port.unwrap_or(real_server.port()),
        )
    }
}

/// When to probe and how to count failures (keepalived's `delay_loop`,
/// `retry`, `delay_before_retry`, `warmup`, `alpha`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Timing {
    /// Time between two probes of a settled checker.
    pub delay_loop: Duration,
    /// How many failures an up checker tolerates before it goes down
    /// (keepalived counts "retries", so `retry = 1` means the second
    /// consecutive failure takes it down).
    pub retry: u32,
    /// Time between a failure and the retry that follows it.
    pub delay_before_retry: Duration,
    /// The first probe runs after a uniformly random delay in `0..=warmup`.
    pub warmup: Duration,
    /// Start down and wait for a first success (keepalived's `alpha`).
    pub alpha: bool,
}

impl Timing {
    /// keepalived's defaults for a checker of `kind` under a virtual server
    /// whose `delay_loop` is `delay_loop`: `retry` 1 and
    /// `delay_before_retry` 1 s, except DNS_CHECK (3 retries, one
    /// `delay_loop` apart) and MISC_CHECK (no retry); `warmup` defaults to
    /// `delay_loop`.
    pub fn keepalived_default(kind: &CheckKind, delay_loop: Duration) -> Timing {
        let (retry, delay_before_retry) = match kind {
            CheckKind::Dns(_) => (3, delay_loop),
            CheckKind::Misc(_) | CheckKind::File(_) => (0, delay_loop),
            _ => (1, Duration::from_secs(1)),
        };
        Timing {
            delay_loop,
            retry,
            delay_before_retry,
            warmup: delay_loop,
            alpha: false,
        }
    }
}

/// One checker: what to probe, how, and on what schedule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CheckSpec {
    /// The real server's address (the default destination of the probe).
    pub target: SocketAddr,
    /// The kind of probe and its own options.
    pub kind: CheckKind,
    /// Connection options shared by all network probes.
    pub connect: ConnectOptions,
    /// Probe schedule and failure counting.
    pub timing: Timing,
}

impl CheckSpec {
    /// A spec with keepalived's default connection options and timing.
    pub fn new(target: SocketAddr, kind: CheckKind, delay_loop: Duration) -> CheckSpec {
        let timing = Timing::keepalived_default(&kind, delay_loop);
        CheckSpec {
            target,
            kind,
            connect: ConnectOptions::default(),
            timing,
        }
    }

    /// The socket address the probe connects to.
    pub fn destination(&self) -> SocketAddr {
        self.connect.destination(self.target)
    }
}

/// The kind of a checker, one variant per keepalived checker keyword.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CheckKind {
    /// `TCP_CHECK`: a TCP connect.
    Tcp,
    /// `HTTP_GET`.
    Http(HttpGet),
    /// `SSL_GET`: HTTP over TLS.
    Ssl(SslGet),
    /// `SMTP_CHECK`.
    Smtp(SmtpCheck),
    /// `DNS_CHECK`.
    Dns(DnsCheck),
    /// `UDP_CHECK`.
    Udp(UdpCheck),
    /// `PING_CHECK`: one ICMP or ICMPv6 echo.
    Ping,
    /// `MISC_CHECK`: an external program.
    Misc(MiscCheck),
    /// `FILE_CHECK`: a number read from a file.
    File(FileCheck),
}

impl CheckKind {
    /// keepalived's keyword for this checker.
    pub fn keyword(&self) -> &'static str {
        match self {
            CheckKind::Tcp => "TCP_CHECK",
            CheckKind::Http(_) => "HTTP_GET",
            CheckKind::Ssl(_) => "SSL_GET",
            CheckKind::Smtp(_) => "SMTP_CHECK",
            CheckKind::Dns(_) => "DNS_CHECK",
            CheckKind::Udp(_) => "UDP_CHECK",
            CheckKind::Ping => "PING_CHECK",
            CheckKind::Misc(_) => "MISC_CHECK",
            CheckKind::File(_) => "FILE_CHECK",
        }
    }
}

/// The HTTP version a GET is sent with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum HttpVersion {
    /// HTTP/1.0 (keepalived's default).
    #[default]
    Http10,
    /// HTTP/1.1.
    Http11,
}

/// `HTTP_GET` options.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct HttpGet {
    /// The `url` blocks; all must pass for the checker to succeed.
    pub urls: Vec<UrlCheck>,
    /// Request version.
    pub version: HttpVersion,
    /// `Host:` header for all urls unless a url sets its own.
    pub virtualhost: Option<String>,
}

/// One `url` block of `HTTP_GET` / `SSL_GET`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UrlCheck {
    /// Request path, e.g. `/health`.
    pub path: String,
    /// Acceptable status codes; empty means keepalived's default, 2xx.
    pub status_code: StatusCodes,
    /// Expected MD5 of the body (computed while streaming it).
    pub digest: Option<[u8; 16]>,
    /// `Host:` header for this url.
    pub virtualhost: Option<String>,
}

impl UrlCheck {
    /// A url block for `path` accepting any 2xx status.
    pub fn new(path: impl Into<String>) -> UrlCheck {
        UrlCheck {
            path: path.into(),
            status_code: StatusCodes::default(),
            digest: None,
            virtualhost: None,
        }
    }
}

/// A set of HTTP status codes: keepalived's `status_code 200 301-304`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct StatusCodes {
    ranges: Vec<RangeInclusive<u16>>,
}

impl StatusCodes {
    /// Whether `code` is accepted. An empty set accepts 200..=299.
    pub fn accepts(&self, code: u16) -> bool {
        if self.ranges.is_empty() {
            return (200..=299).contains(&code);
        }
        self.ranges.iter().any(|r| r.contains(&code))
    }

    /// The ranges of the set, in the order they were given.
    pub fn ranges(&self) -> &[RangeInclusive<u16>] {
        &self.ranges
    }
}

impl FromStr for StatusCodes {
    type Err = ConfigError;

    /// Parses `200`, `200-299`, and lists of them separated by spaces or
    /// commas. Each code must lie in 100..=599.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut ranges = Vec::new();
        for item in s.split([' ', ',', '\t']).filter(|t| !t.is_empty()) {
            let (lo, hi) = match item.split_once('-') {
                Some((a, b)) => (parse_code(a, item)?, parse_code(b, item)?),
                None => {
                    let c = parse_code(item, item)?;
                    (c, c)
                }
            };
            if lo > hi {
                return Err(ConfigError::StatusCode(item.to_owned()));
            }
            ranges.push(lo..=hi);
        }
        if ranges.is_empty() {
            return Err(ConfigError::StatusCode(s.to_owned()));
        }
        Ok(StatusCodes { ranges })
    }
}

fn parse_code(s: &str, item: &str) -> Result<u16, ConfigError> {
    match s.parse::<u16>() {
        Ok(c) if (100..=599).contains(&c) => Ok(c),
        _ => Err(ConfigError::StatusCode(item.to_owned())),
    }
}

/// Parses a 32-hex-digit MD5 digest as written in keepalived.conf.
pub fn parse_digest(s: &str) -> Result<[u8; 16], ConfigError> {
    let bad = || ConfigError::Digest(s.to_owned());
    if s.len() != 32 || !s.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// `SSL_GET` options: the HTTP part plus TLS.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct SslGet {
    /// The HTTP GETs sent over TLS.
    pub http: HttpGet,
    /// PEM file of CA certificates. When set, the server certificate is
    /// verified against it; when not (keepalived's default), any certificate
    /// is accepted.
    pub ca_file: Option<PathBuf>,
    /// Server name sent in SNI (and verified when `ca_file` is set).
    pub sni: Option<String>,
    /// A certificate to present when the server asks for one.
    pub client_certificate: Option<ClientCertificate>,
}

/// A client certificate for SSL_GET: PEM files of the chain (leaf first)
/// and of its unencrypted private key (keepalived's `SSL` block
/// `certificate` and `key`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientCertificate {
    /// The certificate chain.
    pub certificate: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `SMTP_CHECK` options.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SmtpCheck {
    /// Name sent with HELO.
    pub helo_name: String,
    /// Send EHLO instead of HELO.
    pub ehlo: bool,
}

impl Default for SmtpCheck {
    fn default() -> Self {
        SmtpCheck {
            helo_name: DEFAULT_HELO_NAME.to_owned(),
            ehlo: false,
        }
    }
}

/// `DNS_CHECK` options.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DnsCheck {
    /// Query type, e.g. `A`, `AAAA`, `SOA` (keepalived's default).
    pub record_type: String,
    /// Query name (default `.`).
    pub name: String,
}

impl Default for DnsCheck {
    fn default() -> Self {
        DnsCheck {
            record_type: "SOA".to_owned(),
            name: ".".to_owned(),
        }
    }
}

/// `UDP_CHECK` options.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct UdpCheck {
    /// Datagram sent to the server.
    pub payload: Vec<u8>,
    /// A reply is required; without one the check fails. Without
    /// `require_reply`, only an ICMP port unreachable fails the check.
    pub require_reply: bool,
    /// When set, the reply must start with these bytes.
    pub expected_reply: Option<Vec<u8>>,
    /// Smallest acceptable reply length.
    pub min_reply_length: usize,
    /// Largest acceptable reply length (`None`: 65507).
    pub max_reply_length: Option<usize>,
}

/// `MISC_CHECK` options.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MiscCheck {
    /// Program to run.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// The script is killed and the check fails after this long.
    pub timeout: Duration,
    /// `misc_dynamic`: exit codes 2..=255 set the weight to code − 2.
    pub dynamic: bool,
    /// Run as this uid:gid (keepalived's `user`).
    pub user: Option<(u32, u32)>,
}

/// `FILE_CHECK` options (keepalived's `track_file` used as a checker).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileCheck {
    /// File holding one integer.
    pub path: PathBuf,
    /// Multiplier: the weight moves by `value * weight`; at 0, any non-zero
    /// value means down.
    pub weight: i32,
    /// Negate the weight change.
    pub reverse: bool,
}
