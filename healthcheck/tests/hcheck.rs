//! `hcheck`, the example binary, run against real local servers: the UP and
//! DOWN lines it prints, with their reasons, for several checker kinds and
//! options.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::servers::*;
use common::*;
use md5::{Digest, Md5};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// The `hcheck` example, built next to this test by `cargo test`.
fn hcheck_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("examples")
        .join("hcheck");
    assert!(
        path.is_file(),
        "{} is missing: `cargo test -p lvskit-healthcheck` builds it \
         (or `cargo build -p lvskit-healthcheck --example hcheck`)",
        path.display()
    );
    path
}

/// How long to wait for a line that a short delay loop makes due within a
/// second: generous, for a loaded machine. Not a timing assertion.
const LINE_WAIT: Duration = Duration::from_secs(30);

/// A running `hcheck`, killed when dropped.
struct Hcheck {
    _child: tokio::process::Child,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Hcheck {
    fn start(args: &[&str]) -> Hcheck {
        let mut child = tokio::process::Command::new(hcheck_path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("run hcheck");
        let stdout = child.stdout.take().expect("hcheck stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Hcheck {
            _child: child,
            lines,
        }
    }

    /// The next transition: (`UP` or `DOWN`, reason).
    async fn next(&mut self) -> (String, String) {
        self.next_at().await.1
    }

    /// The next transition with its time in seconds since `hcheck` started.
    async fn next_at(&mut self) -> (f64, (String, String)) {
        let line = tokio::time::timeout(LINE_WAIT, self.lines.recv())
            .await
            .unwrap_or_else(|_| panic!("hcheck printed nothing for {LINE_WAIT:?}"))
            .expect("hcheck exited");
        let at = line
            .trim_start()
            .split_once("s ")
            .and_then(|(seconds, _)| seconds.parse().ok())
            .unwrap_or_else(|| panic!("no time at the start of {line:?}"));
        let transition =
            parse_line(&line).unwrap_or_else(|| panic!("not a transition line: {line:?}"));
        (at, transition)
    }
}

/// Splits `   0.001s TCP_CHECK 127.0.0.1:80 UP: check succeeded` into
/// `("UP", "check succeeded")`.
fn parse_line(line: &str) -> Option<(String, String)> {
    ["UP", "DOWN"].iter().find_map(|state| {
        let (_, reason) = line.split_once(&format!(" {state}: "))?;
        Some(((*state).to_owned(), reason.to_owned()))
    })
}

fn up(reason: &str) -> (String, String) {
    ("UP".to_owned(), reason.to_owned())
}

fn down(reason: &str) -> (String, String) {
    ("DOWN".to_owned(), reason.to_owned())
}

/// A fast loop: checks 0.2 s apart, retries 0.1 s apart.
const FAST: [&str; 4] = ["--delay-loop", "0.2", "--delay-before-retry", "0.1"];

fn args<'a>(kind: &'a str, target: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![kind, target];
    v.extend(FAST);
    v.extend(extra);
    v
}

/// Runs `hcheck` once to its first transition.
async fn first(kind: &str, target: SocketAddr, extra: &[&str]) -> (String, String) {
    let target = target.to_string();
    Hcheck::start(&args(kind, &target, extra)).next().await
}

#[tokio::test]
async fn tcp_up_then_down_after_retries_then_up_again() {
    let addr = SocketAddr::new(unique_loopback(), 0);
    let listener = std::net::TcpListener::bind(addr).unwrap();
    let addr = listener.local_addr().unwrap();
    let target = addr.to_string();
    let mut hcheck = Hcheck::start(&args("tcp", &target, &["--retry", "2"]));
    assert_eq!(hcheck.next().await, up("check succeeded"));
    drop(listener);
    assert_eq!(
        hcheck.next().await,
        down("check failed after 2 retries: connection refused")
    );
    let _listener = std::net::TcpListener::bind(addr).unwrap();
    assert_eq!(hcheck.next().await, up("check succeeded"));
}

#[tokio::test]
async fn alpha_starts_down_until_a_first_success() {
    let refused = {
        let l = std::net::TcpListener::bind((unique_loopback(), 0)).unwrap();
        l.local_addr().unwrap()
    };
    let target = refused.to_string();
    let mut hcheck = Hcheck::start(&args("tcp", &target, &["--alpha"]));
    assert_eq!(
        hcheck.next().await,
        down("alpha mode: down until a first success")
    );
    // Failures while down print nothing; the first success does.
    let _listener = std::net::TcpListener::bind(refused).unwrap();
    assert_eq!(hcheck.next().await, up("check succeeded"));
}

/// `--warmup 4`: each run's first check comes after its own random delay
/// in 0..=4 s, where without it the first check is due at once. Eight runs
/// start together; all eight drawing under 1 s has probability 4^-8
/// (1.5e-5), so the latest first check past 1 s shows the delay applied.
/// The upper bound allows 5 s past the warmup for a loaded machine.
#[tokio::test]
async fn warmup_delays_the_first_check_randomly() {
    let listener = std::net::TcpListener::bind((unique_loopback(), 0)).unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let mut runs: Vec<Hcheck> = (0..8)
        .map(|_| Hcheck::start(&args("tcp", &target, &["--warmup", "4"])))
        .collect();
    let mut firsts = Vec::new();
    for run in &mut runs {
        let (at, transition) = run.next_at().await;
        assert_eq!(transition, up("check succeeded"));
        firsts.push(at);
    }
    let latest = firsts.iter().copied().fold(0.0, f64::max);
    assert!(latest > 1.0, "no first check was delayed: {firsts:?}");
    assert!(
        firsts.iter().all(|at| *at <= 4.0 + 5.0),
        "a first check came long after the warmup: {firsts:?}"
    );
}

#[tokio::test]
async fn tcp_bindto_and_bind_if() {
    let listener = tokio::net::TcpListener::bind((unique_loopback(), 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let src = unique_loopback().to_string();
    let mut hcheck = Hcheck::start(&args(
        "tcp",
        &addr.to_string(),
        &["--bindto", &src, "--bind-if", "lo"],
    ));
    let (_, peer) = tokio::time::timeout(LINE_WAIT, listener.accept())
        .await
        .expect("hcheck connected")
        .unwrap();
    assert_eq!(peer.ip().to_string(), src);
    assert_eq!(hcheck.next().await, up("check succeeded"));
    let (state, reason) = first("tcp", addr, &["--bind-if", "nosuchif0"]).await;
    assert_eq!(state, "DOWN");
    assert!(
        reason.starts_with("check failed: SO_BINDTODEVICE"),
        "{reason}"
    );
}

fn md5_hex(body: &[u8]) -> String {
    Md5::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn http_path_status_code_digest_and_virtualhost() {
    let body = b"healthy\n";
    let (addr, seen) = hyper_server(Reply {
        status: 200,
        body,
        delay: Duration::ZERO,
    })
    .await;
    let digest = md5_hex(body);
    let options = [
        "--path",
        "/health",
        "--status-code",
        "200",
        "--digest",
        &digest,
        "--virtualhost",
        "app.example",
    ];
    assert_eq!(first("http", addr, &options).await, up("check succeeded"));
    let (version, host, path) = seen.lock().unwrap()[0].clone();
    assert_eq!(
        (version, host.as_str(), path.as_str()),
        (hyper::Version::HTTP_10, "app.example", "/health")
    );
    let wrong = md5_hex(b"something else");
    assert_eq!(
        first("http", addr, &["--path", "/health", "--digest", &wrong]).await,
        down(&format!(
            "check failed: MD5 digest mismatch for /health: got {digest}"
        ))
    );
    assert_eq!(
        first("http", addr, &["--status-code", "300-399 500"]).await,
        down("check failed: HTTP status code 200 for / not accepted")
    );
}

#[tokio::test]
async fn http_status_code_lists_and_ranges() {
    let (addr, _) = hyper_server(Reply {
        status: 503,
        body: b"busy",
        delay: Duration::ZERO,
    })
    .await;
    assert_eq!(
        first("http", addr, &[]).await,
        down("check failed: HTTP status code 503 for / not accepted")
    );
    assert_eq!(
        first("http", addr, &["--status-code", "200,500-599"]).await,
        up("check succeeded")
    );
}

#[tokio::test]
async fn http_slow_server_times_out_with_connect_timeout() {
    let (addr, _) = hyper_server(Reply {
        status: 200,
        body: b"late",
        delay: Duration::from_secs(60),
    })
    .await;
    assert_eq!(
        first("http", addr, &["--connect-timeout", "0.3"]).await,
        down("check failed: timeout after 300ms")
    );
}

#[tokio::test]
async fn ssl_without_verification_and_with_ca_and_sni() {
    let server = tls_server(Reply {
        status: 200,
        body: b"ok",
        delay: Duration::ZERO,
    })
    .await;
    assert_eq!(first("ssl", server.addr, &[]).await, up("check succeeded"));
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), &server.ca_pem).unwrap();
    let ca = ca.path().to_str().unwrap();
    assert_eq!(
        first("ssl", server.addr, &["--ca", ca, "--sni", "localhost"]).await,
        up("check succeeded")
    );
    let (state, reason) = first("ssl", server.addr, &["--ca", ca, "--sni", "other.example"]).await;
    assert_eq!(state, "DOWN");
    assert!(reason.starts_with("check failed: TLS error"), "{reason}");
}

#[tokio::test]
async fn smtp_helo_name_and_bad_banner() {
    let (addr, seen) = smtp_server(b"220 mx ready\r\n", b"250 hello\r\n").await;
    assert_eq!(
        first("smtp", addr, &["--helo-name", "probe.example"]).await,
        up("check succeeded")
    );
    assert_eq!(seen.lock().unwrap()[..2], ["HELO probe.example", "QUIT"]);
    let (addr, _) = smtp_server(b"554 go away\r\n", b"250 hello\r\n").await;
    let (state, reason) = first("smtp", addr, &[]).await;
    assert_eq!(state, "DOWN");
    assert!(reason.contains("554 go away"), "{reason}");
}

#[tokio::test]
async fn udp_payload_and_require_reply() {
    let echo = udp_echo(None).await;
    assert_eq!(
        first("udp", echo, &["--payload", "ping", "--require-reply"]).await,
        up("check succeeded")
    );
    // Outside the ephemeral range: once closed, the port stays closed.
    let ip = unique_loopback();
    let silent = std::net::UdpSocket::bind((ip, free_udp_port(ip))).unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let options = ["--require-reply", "--connect-timeout", "0.3"];
    assert_eq!(
        first("udp", silent_addr, &options).await,
        down("check failed: timeout after 300ms")
    );
    drop(silent);
    assert_eq!(
        first("udp", silent_addr, &["--payload", "ping"]).await,
        down("check failed: connection refused")
    );
}

#[tokio::test]
async fn dns_type_and_name_against_dnsmasq() {
    let server = dnsmasq().await;
    assert_eq!(
        first("dns", server.addr, &["--type", "A", "--name", "svc.test"]).await,
        up("check succeeded")
    );
    let (state, reason) = first("dns", server.addr, &["--type", "A", "--name", "nx.test"]).await;
    assert_eq!(state, "DOWN");
    assert!(reason.starts_with("check failed: DNS: "), "{reason}");
}

#[tokio::test]
async fn invalid_options_are_refused() {
    for (bad, message) in [
        (["--status-code", "99"], "invalid status_code"),
        (["--digest", "xyz"], "invalid digest"),
    ] {
        let out = Command::new(hcheck_path())
            .args(["http", "127.0.0.1:80"])
            .args(bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad:?} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{bad:?}: {stderr}");
    }
}

/// Tier 2 (as root): ICMP echo needs CAP_NET_RAW, `SO_MARK` CAP_NET_ADMIN.
#[tokio::test]
async fn netns_hcheck_ping_and_fwmark() {
    lvskit_testlab::require_root();
    let localhost = SocketAddr::from(([127, 0, 0, 1], 0));
    assert_eq!(first("ping", localhost, &[]).await, up("check succeeded"));
    let listener = std::net::TcpListener::bind((unique_loopback(), 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    assert_eq!(
        first("tcp", addr, &["--fwmark", "66"]).await,
        up("check succeeded")
    );
}
