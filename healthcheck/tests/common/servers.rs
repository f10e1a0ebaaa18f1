//! Real local servers for the probe and `hcheck` tests: hyper (HTTP and
//! HTTPS with rustls), an SMTP responder, a UDP echo and Debian's dnsmasq.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};

use lvskit_healthcheck::CheckKind;
use lvskit_healthcheck::checker::Outcome;
use lvskit_healthcheck::config::DnsCheck;

use super::{spec, timing, unique_loopback};

#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub body: &'static [u8],
    pub delay: Duration,
}

pub type Seen = Arc<Mutex<Vec<(hyper::Version, String, String)>>>;

/// A hyper server answering every request with `reply`; records
/// (version, Host, path) of each request.
pub async fn hyper_server(reply: Reply) -> (SocketAddr, Seen) {
    let listener = TcpListener::bind((unique_loopback(), 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let reply = reply.clone();
            let seen = seen2.clone();
            tokio::spawn(serve(TokioIo::new(stream), reply, seen));
        }
    });
    (addr, seen)
}

pub async fn serve<I>(io: I, reply: Reply, seen: Seen)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
        let reply = reply.clone();
        let seen = seen.clone();
        async move {
            let host = req
                .headers()
                .get("host")
                .map(|h| h.to_str().unwrap().to_owned())
                .unwrap_or_default();
            seen.lock()
                .unwrap()
                .push((req.version(), host, req.uri().path().to_owned()));
            tokio::time::sleep(reply.delay).await;
            let mut resp = Response::new(Full::new(Bytes::from_static(reply.body)));
            *resp.status_mut() = hyper::StatusCode::from_u16(reply.status).unwrap();
            Ok::<_, Infallible>(resp)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, svc)
        .await;
}

pub struct TlsServer {
    pub addr: SocketAddr,
    pub ca_pem: String,
}

pub async fn tls_server(reply: Reply) -> TlsServer {
    tls_server_for_clients(reply, None).await
}

/// As [`tls_server`]; with `client_ca`, the server requires a client
/// certificate issued by it (here: that self-signed certificate itself).
pub async fn tls_server_for_clients(
    reply: Reply,
    client_ca: Option<rustls::pki_types::CertificateDer<'static>>,
) -> TlsServer {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let ca_pem = ck.cert.pem();
    let cert = ck.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(vec![cert], key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind((unique_loopback(), 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let reply = reply.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    serve(TokioIo::new(tls), reply, Seen::default()).await;
                }
            });
        }
    });
    TlsServer { addr, ca_pem }
}

/// An SMTP responder: sends `banner`, answers HELO/EHLO with `helo_reply`
/// and QUIT with 221; records the lines it received.
pub async fn smtp_server(
    banner: &'static [u8],
    helo_reply: &'static [u8],
) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind((unique_loopback(), 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let seen = seen2.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut r = BufReader::new(r);
                let _ = w.write_all(banner).await;
                let mut line = String::new();
                while r.read_line(&mut line).await.unwrap_or(0) > 0 {
                    seen.lock().unwrap().push(line.trim_end().to_owned());
                    let reply: &[u8] = if line.starts_with("QUIT") {
                        b"221 bye\r\n"
                    } else {
                        helo_reply
                    };
                    let _ = w.write_all(reply).await;
                    line.clear();
                }
            });
        }
    });
    (addr, seen)
}

pub async fn udp_echo(reply: Option<&'static [u8]>) -> SocketAddr {
    let socket = UdpSocket::bind((unique_loopback(), 0)).await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let out = reply.unwrap_or(&buf[..n]).to_vec();
            let _ = socket.send_to(&out, from).await;
        }
    });
    addr
}

// ---- DNS (dnsmasq) ----

/// A dnsmasq process, killed when dropped.
pub struct Dnsmasq {
    child: std::process::Child,
    pub addr: SocketAddr,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A UDP port free on `ip`, below the kernel's ephemeral range
/// (`ip_local_port_range`, ip(7)). A port in that range can be given at any
/// moment to an unbound UDP socket of any process on the host, bound to the
/// wildcard address; it would then take what a test sends to a port it
/// expects closed, and no ICMP port unreachable would come back.
pub fn free_udp_port(ip: IpAddr) -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let ephemeral_low: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768);
    let base = 10_000.min(ephemeral_low / 2).max(1024);
    let span = ephemeral_low.saturating_sub(base).max(1);
    let seed = std::process::id()
        .wrapping_mul(7919)
        .wrapping_add(NEXT.fetch_add(101, std::sync::atomic::Ordering::Relaxed));
    (0..span)
        .map(|i| (base + seed.wrapping_add(i) % span) as u16)
        .find(|port| std::net::UdpSocket::bind((ip, *port)).is_ok())
        .expect("a free UDP port below the ephemeral range")
}

/// Starts Debian's dnsmasq answering `svc.test` with 10.1.2.3, and waits
/// (bounded) until it answers.
pub async fn dnsmasq() -> Dnsmasq {
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let port = free_udp_port(ip);
    let child = std::process::Command::new("dnsmasq")
        .args([
            "--no-daemon",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--interface=lo",
            &format!("--port={port}"),
            "--address=/svc.test/10.1.2.3",
            "--pid-file=",
            "--user=root",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run dnsmasq ({e}): this tier-1 test needs Debian's \
                 dnsmasq (package dnsmasq-base, apt-get install dnsmasq-base)"
            )
        });
    let mut server = Dnsmasq {
        child,
        addr: SocketAddr::new(ip, port),
    };
    let mut probe = spec(
        server.addr,
        CheckKind::Dns(DnsCheck {
            record_type: "A".into(),
            name: "svc.test".into(),
        }),
        timing(5, 0, 1),
    );
    probe.connect.connect_timeout = Duration::from_millis(100);
    for _ in 0..100 {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!(
                "dnsmasq exited at startup ({status}) instead of serving on {}",
                server.addr
            );
        }
        if lvskit_healthcheck::probe::run(&probe).await == (Outcome::Success { weight: None }) {
            return server;
        }
        // Startup wait only (bounded: 100 × 50 ms), not a timing assertion.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("dnsmasq did not answer on {}", server.addr);
}
