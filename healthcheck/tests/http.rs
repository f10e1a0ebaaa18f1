//! HTTP_GET and SSL_GET against real local servers (hyper, rustls), and
//! against hostile ones: each must end in a clean failure with a reason.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::servers::*;
use common::*;
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use lvskit_healthcheck::checker::Outcome;
use lvskit_healthcheck::config::{
    HttpGet, HttpVersion, SslGet, StatusCodes, UrlCheck, parse_digest,
};
use lvskit_healthcheck::{CheckKind, ProbeError};
use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn url(path: &str, codes: Option<&str>, digest: Option<&[u8]>) -> UrlCheck {
    let mut u = UrlCheck::new(path);
    if let Some(c) = codes {
        u.status_code = c.parse().unwrap();
    }
    u.digest = digest.map(|body| Md5::digest(body).into());
    u
}

fn http_spec(addr: SocketAddr, urls: Vec<UrlCheck>, timeout: u64) -> lvskit_healthcheck::CheckSpec {
    let mut s = spec(
        addr,
        CheckKind::Http(HttpGet {
            urls,
            ..HttpGet::default()
        }),
        timing(5, 0, 1),
    );
    s.connect.connect_timeout = Duration::from_secs(timeout);
    s
}

async fn run(s: &lvskit_healthcheck::CheckSpec) -> Outcome {
    lvskit_healthcheck::probe::run(s).await
}

const OK: Outcome = Outcome::Success { weight: None };

#[tokio::test]
async fn status_digest_and_versions() {
    let (addr, seen) = hyper_server(Reply {
        status: 200,
        body: b"hello",
        delay: Duration::ZERO,
    })
    .await;
    let mut s = http_spec(
        addr,
        vec![
            url("/a", None, Some(b"hello")),
            url("/b", Some("200-204"), None),
        ],
        5,
    );
    assert_eq!(run(&s).await, OK);
    if let CheckKind::Http(h) = &mut s.kind {
        h.version = HttpVersion::Http11;
        h.virtualhost = Some("www.example.test".into());
    }
    assert_eq!(run(&s).await, OK);
    let seen = seen.lock().unwrap().clone();
    let host = addr.to_string();
    assert_eq!(
        seen,
        vec![
            (hyper::Version::HTTP_10, host.clone(), "/a".into()),
            (hyper::Version::HTTP_10, host, "/b".into()),
            (
                hyper::Version::HTTP_11,
                "www.example.test".into(),
                "/a".into()
            ),
            (
                hyper::Version::HTTP_11,
                "www.example.test".into(),
                "/b".into()
            ),
        ]
    );
}

#[tokio::test]
async fn wrong_status_or_digest_fails_with_reason() {
    let (addr, _) = hyper_server(Reply {
        status: 503,
        body: b"busy",
        delay: Duration::ZERO,
    })
    .await;
    let s = http_spec(addr, vec![url("/", None, None)], 5);
    assert_eq!(
        run(&s).await,
        Outcome::Failure(ProbeError::Status {
            code: 503,
            path: "/".into()
        })
    );
    let s = http_spec(addr, vec![url("/", Some("500-599"), Some(b"other"))], 5);
    match run(&s).await {
        Outcome::Failure(ProbeError::Digest { path, got }) => {
            assert_eq!(path, "/");
            let want: String = Md5::digest(b"busy")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(got, want);
        }
        other => panic!("unexpected {other:?}"),
    }
    // A url-level virtualhost wins over the check's.
    let mut u = url("/", Some("503"), Some(b"busy"));
    u.virtualhost = Some("vh".into());
    assert_eq!(run(&http_spec(addr, vec![u], 5)).await, OK);
}

#[test]
fn status_code_and_digest_parsing() {
    let c: StatusCodes = "200 301-304,404".parse().unwrap();
    assert!(c.accepts(200) && c.accepts(303) && c.accepts(404));
    assert!(!c.accepts(201) && !c.accepts(305));
    assert!(StatusCodes::default().accepts(299) && !StatusCodes::default().accepts(300));
    for bad in ["", "99", "600", "300-200", "2x0", "200-"] {
        assert!(bad.parse::<StatusCodes>().is_err(), "{bad}");
    }
    assert_eq!(
        parse_digest("5d41402abc4b2a76b9719d911017c592").unwrap(),
        <[u8; 16]>::from(Md5::digest(b"hello"))
    );
    assert!(parse_digest("5d41402abc4b2a76b9719d911017c59").is_err());
    assert!(parse_digest("zz41402abc4b2a76b9719d911017c592").is_err());
}

#[tokio::test(start_paused = true)]
async fn slow_server_times_out_exactly() {
    let (addr, _) = hyper_server(Reply {
        status: 200,
        body: b"",
        delay: Duration::from_secs(60),
    })
    .await;
    let s = http_spec(addr, vec![url("/", None, None)], 3);
    let t0 = tokio::time::Instant::now();
    assert_eq!(
        run(&s).await,
        Outcome::Failure(ProbeError::Timeout(Duration::from_secs(3)))
    );
    assert_eq!(t0.elapsed(), Duration::from_secs(3));
}

/// A raw TCP server: reads the request, then runs `behave` on the stream.
async fn raw_server<F, Fut>(behave: F) -> SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind((unique_loopback(), 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let behave = Arc::new(behave);
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let behave = behave.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                behave(stream).await;
            });
        }
    });
    addr
}

#[tokio::test(start_paused = true)]
async fn never_answering_server_times_out_exactly() {
    let addr = raw_server(|s| async move {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        drop(s);
    })
    .await;
    let s = http_spec(addr, vec![url("/", None, None)], 2);
    let t0 = tokio::time::Instant::now();
    assert_eq!(
        run(&s).await,
        Outcome::Failure(ProbeError::Timeout(Duration::from_secs(2)))
    );
    assert_eq!(t0.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn slowloris_headers_time_out() {
    let addr = raw_server(|mut s| async move {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nX-Drip: ").await;
        for _ in 0..100_000 {
            if s.write_all(b"a").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let s = http_spec(addr, vec![url("/", None, None)], 4);
    let t0 = tokio::time::Instant::now();
    assert_eq!(
        run(&s).await,
        Outcome::Failure(ProbeError::Timeout(Duration::from_secs(4)))
    );
    assert_eq!(t0.elapsed(), Duration::from_secs(4));
}

fn assert_http_error(o: Outcome, needle: &str) {
    match o {
        Outcome::Failure(ProbeError::Http(text)) => assert!(text.contains(needle), "{text}"),
        other => panic!("expected an HTTP error containing {needle:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn oversized_status_line_fails_cleanly() {
    let addr = raw_server(|mut s| async move {
        let line = vec![b'A'; 1 << 20];
        let _ = s.write_all(b"HTTP/1.1 200 ").await;
        let _ = s.write_all(&line).await;
    })
    .await;
    assert_http_error(
        run(&http_spec(addr, vec![url("/", None, None)], 10)).await,
        "too large",
    );
}

#[tokio::test]
async fn garbage_status_lines_fail_cleanly() {
    for garbage in [
        &b"HTTP/1.1 abc OK\r\n\r\n"[..],
        b"\x00\xff\xfe garbage\r\n\r\n",
        b"SSH-2.0-OpenSSH\r\n",
    ] {
        let addr = raw_server(move |mut s| async move {
            let _ = s.write_all(garbage).await;
        })
        .await;
        assert_http_error(
            run(&http_spec(addr, vec![url("/", None, None)], 10)).await,
            "",
        );
    }
}

#[tokio::test]
async fn reset_mid_response_fails_cleanly() {
    let addr = raw_server(|s| async move {
        let mut s = s;
        let _ = s
            .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 100000\r\n\r\npartial body")
            .await;
        let std = s.into_std().unwrap();
        let sock = socket2::Socket::from(std);
        sock.set_linger(Some(Duration::ZERO)).unwrap(); // close sends RST
        drop(sock);
    })
    .await;
    assert_http_error(
        run(&http_spec(addr, vec![url("/", None, Some(b"x"))], 10)).await,
        "",
    );
}

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn hundred_megabyte_body_is_digested_in_bounded_memory() {
    const TOTAL: usize = 100 << 20;
    const CHUNK: usize = 64 << 10;
    let chunk: &'static [u8] = Box::leak(vec![0x5au8; CHUNK].into_boxed_slice());
    let mut expected = Md5::new();
    for _ in 0..TOTAL / CHUNK {
        expected.update(chunk);
    }
    let expected: [u8; 16] = expected.finalize().into();
    let listener = TcpListener::bind((unique_loopback(), 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let svc = service_fn(move |_req: Request<hyper::body::Incoming>| async move {
            let frames = futures_like_stream(chunk, TOTAL / CHUNK);
            Ok::<_, Infallible>(Response::new(frames))
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), svc)
            .await;
    });
    let mut u = UrlCheck::new("/big");
    u.digest = Some(expected);
    let before = vm_hwm_kib();
    assert_eq!(run(&http_spec(addr, vec![u], 120)).await, OK);
    let grown_mib = (vm_hwm_kib() - before) / 1024;
    assert!(
        grown_mib < 48,
        "peak RSS grew by {grown_mib} MiB for a 100 MiB body"
    );
}

/// A stream of `n` frames of `chunk`, without pulling in `futures`.
fn futures_like_stream(
    chunk: &'static [u8],
    n: usize,
) -> impl hyper::body::Body<Data = Bytes, Error = Infallible> + Send {
    struct Chunks {
        chunk: &'static [u8],
        left: usize,
    }
    impl hyper::body::Body for Chunks {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            if self.left == 0 {
                return std::task::Poll::Ready(None);
            }
            self.left -= 1;
            std::task::Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(self.chunk)))))
        }
    }
    Chunks { chunk, left: n }
}

// ---- SSL_GET ----

fn ssl_spec(addr: SocketAddr, ssl: SslGet) -> lvskit_healthcheck::CheckSpec {
    spec(addr, CheckKind::Ssl(ssl), timing(5, 0, 1))
}

#[tokio::test]
async fn ssl_get_without_verification_like_keepalived() {
    let server = tls_server(Reply {
        status: 200,
        body: b"tls",
        delay: Duration::ZERO,
    })
    .await;
    let ssl = SslGet {
        http: HttpGet {
            urls: vec![url("/", None, Some(b"tls"))],
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(run(&ssl_spec(server.addr, ssl)).await, OK);
}

#[tokio::test]
async fn ssl_get_with_ca_and_sni() {
    let server = tls_server(Reply {
        status: 200,
        body: b"tls",
        delay: Duration::ZERO,
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &server.ca_pem).unwrap();
    let mut ssl = SslGet {
        ca_file: Some(ca),
        sni: Some("localhost".into()),
        ..Default::default()
    };
    assert_eq!(run(&ssl_spec(server.addr, ssl.clone())).await, OK);
    ssl.sni = Some("other.example".into());
    match run(&ssl_spec(server.addr, ssl)).await {
        Outcome::Failure(ProbeError::Tls(text)) => assert!(text.contains("certificate"), "{text}"),
        other => panic!("unexpected {other:?}"),
    }
}

/// A server that requires a client certificate: refused without one,
/// passed with the configured PEM certificate and key.
#[tokio::test]
async fn ssl_get_presents_its_client_certificate() {
    use lvskit_healthcheck::config::ClientCertificate;
    let client = rcgen::generate_simple_self_signed(vec!["lb.example".into()]).unwrap();
    let server = tls_server_for_clients(
        Reply {
            status: 200,
            body: b"tls",
            delay: Duration::ZERO,
        },
        Some(client.cert.der().clone()),
    )
    .await;
    let mut ssl = SslGet::default();
    // With TLS 1.3 the server's alert arrives after the client's side of
    // the handshake, so it surfaces on the HTTP exchange.
    match run(&ssl_spec(server.addr, ssl.clone())).await {
        Outcome::Failure(e) if e.to_string().contains("CertificateRequired") => {}
        other => panic!("no client certificate, yet {other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    let certificate = dir.path().join("lb.pem");
    let key = dir.path().join("lb.key");
    std::fs::write(&certificate, client.cert.pem()).unwrap();
    std::fs::write(&key, client.signing_key.serialize_pem()).unwrap();
    ssl.client_certificate = Some(ClientCertificate { certificate, key });
    assert_eq!(run(&ssl_spec(server.addr, ssl)).await, OK);
}

#[tokio::test]
async fn tls_garbage_fails_cleanly() {
    let addr = raw_server(|mut s| async move {
        let _ = s
            .write_all(&[0x16, 0x03, 0x03, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9])
            .await;
        let _ = s.write_all(b"this is not TLS at all").await;
    })
    .await;
    match run(&ssl_spec(addr, SslGet::default())).await {
        Outcome::Failure(ProbeError::Tls(_)) => {}
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn raw_response_bytes_never_panic() {
    let http = HttpGet::default();
    let u = url("/", None, None);
    assert!(
        lvskit_healthcheck::probe::http::check_response_bytes(
            b"HTTP/1.1 200 OK\r\n\r\n",
            &http,
            &u
        )
        .is_ok()
    );
    for bytes in [
        &b""[..],
        b"HTTP/1.1",
        b"HTTP/9.9 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA\r\n\r\n",
    ] {
        assert!(lvskit_healthcheck::probe::http::check_response_bytes(bytes, &http, &u).is_err());
    }
}
