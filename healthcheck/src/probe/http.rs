//! HTTP_GET (and the HTTP part of SSL_GET): one `GET` per `url` block, each
//! on its own connection, as keepalived does.
//!
//! The response head is parsed by hyper (RFC 9112 §4 status line, §5
//! fields) with a bounded read buffer, so an oversized or garbage status
//! line or header block ends in [`ProbeError::Http`]. With a `digest`, the
//! body is streamed through MD5 frame by frame (memory stays bounded
//! whatever its size); without one, the body is not read.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{CONNECTION, HOST, USER_AGENT};
use hyper::{Request, Version};
use hyper_util::rt::TokioIo;
use md5::{Digest, Md5};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::{HttpGet, HttpVersion, UrlCheck};
use crate::error::ProbeError;

/// Largest response head (status line and fields) accepted, in bytes.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest number of header fields accepted.
pub const MAX_HEADERS: usize = 64;

/// Sends `GET url.path` over `io` and checks the response against `url`.
/// `host` is the `Host:` value used when neither the url nor the check sets
/// a virtualhost.
pub async fn check_url<S>(
    io: S,
    http: &HttpGet,
    url: &UrlCheck,
    host: &str,
) -> Result<(), ProbeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(io))
        .await
        .map_err(http_error)?;
    // The connection future does the IO; it ends when the exchange does or
    // when this function returns and drops it.
    let conn = async move {
        let _ = conn.await;
    };
    let exchange = async {
        let host = url
            .virtualhost
            .as_deref()
            .or(http.virtualhost.as_deref())
            .unwrap_or(host);
        let request = Request::get(url.path.as_str())
            .version(match http.version {
                HttpVersion::Http10 => Version::HTTP_10,
                HttpVersion::Http11 => Version::HTTP_11,
            })
            .header(HOST, host)
            .header(USER_AGENT, "lvskit-healthcheck")
            .header(CONNECTION, "close")
            .body(Empty::new())
            .map_err(|e| ProbeError::Http(format!("building request: {e}")))?;
        let response = sender.send_request(request).await.map_err(http_error)?;
        let code = response.status().as_u16();
        if !url.status_code.accepts(code) {
            return Err(ProbeError::Status {
                code,
                path: url.path.clone(),
            });
        }
        let Some(expected) = url.digest else {
            return Ok(());
        };
        let mut body = response.into_body();
        let mut md5 = Md5::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(http_error)?;
            if let Some(data) = frame.data_ref() {
                md5.update(data);
            }
        }
        let got: [u8; 16] = md5.finalize().into();
        if got != expected {
            return Err(ProbeError::Digest {
                path: url.path.clone(),
                got: hex(&got),
            });
        }
        Ok(())
    };
    // Poll both; once the connection future ends, the exchange resolves
    // (with the response it delivered, or with hyper's error).
    tokio::pin!(conn);
    tokio::pin!(exchange);
    let mut conn_done = false;
    loop {
        tokio::select! {
            result = &mut exchange => return result,
            () = &mut conn, if !conn_done => conn_done = true,
        }
    }
}

fn http_error(e: hyper::Error) -> ProbeError {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    ProbeError::Http(text)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Host:` value for a destination: `ip:port`, IPv6 in brackets.
pub(crate) fn host_header(dst: SocketAddr) -> String {
    dst.to_string()
}

/// The HTTP_GET probe: every url must pass.
pub(crate) async fn probe(
    dst: SocketAddr,
    co: &crate::config::ConnectOptions,
    http: &HttpGet,
) -> Result<(), ProbeError> {
    let host = host_header(dst);
    for url in default_urls(http) {
        let stream = super::tcp::connect(dst, co).await?;
        check_url(stream, http, url, &host).await?;
    }
    Ok(())
}

/// The urls to check; keepalived requires at least one, and an empty list
/// here means `GET /` accepting 2xx.
pub(crate) fn default_urls(http: &HttpGet) -> impl Iterator<Item = &UrlCheck> {
    static ROOT: std::sync::OnceLock<UrlCheck> = std::sync::OnceLock::new();
    let root = ROOT.get_or_init(|| UrlCheck::new("/"));
    let fallback = http.urls.is_empty().then_some(root);
    http.urls.iter().chain(fallback)
}

/// Checks raw response bytes as if a server had sent them, over an
/// in-memory stream: the entry point of the `http_status` fuzz target.
/// Never panics, whatever `response` holds.
pub fn check_response_bytes(
    response: &[u8],
    http: &HttpGet,
    url: &UrlCheck,
) -> Result<(), ProbeError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ProbeError::Io(crate::error::IoFailure::new("runtime", &e)))?;
    let response = response.to_vec();
    runtime.block_on(async move {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let serve = async move {
            // Read (part of) the request, answer, close.
            let mut buf = [0u8; 1024];
            let _ = server.read(&mut buf).await;
            let _ = server.write_all(&response).await;
            let _ = server.shutdown().await;
            // Keep draining so the client never blocks on a full pipe.
            while matches!(server.read(&mut buf).await, Ok(n) if n > 0) {}
        };
        let (result, ()) = tokio::join!(check_url(client, http, url, "fuzz"), serve);
        result
    })
}
