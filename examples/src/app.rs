//! The application-node role of LVS-DR (`lvskit-app`).
//!
//! In direct routing the director rewrites only the destination MAC of a
//! client's frame: the real server receives a packet addressed to the VIP and
//! must accept it as its own, without answering ARP for the VIP (that is the
//! director's job). Two ways, both from the article:
//!
//! - [`Mode::Loopback`]: the VIP as a `/32` on `lo`, with
//!   `net.ipv4.conf.all.arp_ignore=1` (answer ARP only for addresses of the
//!   receiving interface) and `arp_announce=2` (never use the VIP as the
//!   source of our own ARP requests) — `Documentation/networking/ip-sysctl.rst`.
//! - [`Mode::Redirect`]: an nftables `nat prerouting` rule that redirects
//!   TCP to the VIP to the local port; the VIP never becomes a local address,
//!   so no ARP setting is needed.
//!
//! [`Setup::apply`] records exactly what it changed and [`Setup::undo`]
//! reverts only that (an address that was already there stays, a sysctl gets
//! its old value back).

use anyhow::{Context, Result, bail};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;

/// How the node accepts packets addressed to the VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// VIP on `lo`, `arp_ignore=1`, `arp_announce=2`.
    #[value(name = "lo")]
    Loopback,
    /// nftables `redirect` of TCP to the VIP on the served port.
    #[value(name = "nft")]
    Redirect,
}

/// What an application node should set up.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The virtual addresses the node must accept.
    pub vips: Vec<Ipv4Addr>,
    /// How.
    pub mode: Mode,
    /// The TCP port that is served (for the redirect rule).
    pub port: u16,
}

/// The sysctls LVS-DR real servers need in [`Mode::Loopback`]. The kernel
/// applies the larger of `all` and the interface's value for both, so `all`
/// covers every interface.
const ARP_SYSCTLS: [(&str, &str); 2] = [
    ("net/ipv4/conf/all/arp_ignore", "1"),
    ("net/ipv4/conf/all/arp_announce", "2"),
];

/// What [`Setup::apply`] changed, so that [`Setup::undo`] reverts exactly that.
#[derive(Debug, Default)]
pub struct Setup {
    /// VIPs this process added to `lo` (not those that were there before).
    added: Vec<Ipv4Addr>,
    /// Sysctls this process changed, with their previous values.
    sysctls: Vec<(PathBuf, String)>,
    /// The nftables table this process created.
    nft_table: Option<String>,
}

impl Setup {
    /// Applies `plan`. On error, whatever was already changed is reverted
    /// before the error is returned.
    pub async fn apply(plan: &Plan) -> Result<Setup> {
        let mut setup = Setup::default();
        let result = setup.apply_steps(plan).await;
        match result {
            Ok(()) => Ok(setup),
            Err(error) => {
                if let Err(undo) = setup.undo().await {
                    tracing::warn!("while undoing a failed setup: {undo:#}");
                }
                Err(error)
            }
        }
    }

    async fn apply_steps(&mut self, plan: &Plan) -> Result<()> {
        match plan.mode {
            Mode::Loopback => {
                for (key, value) in ARP_SYSCTLS {
                    let path = PathBuf::from("/proc/sys").join(key);
                    let old = std::fs::read_to_string(&path)
                        .with_context(|| format!("read {}", path.display()))?;
                    let old = old.trim().to_owned();
                    if old != value {
                        std::fs::write(&path, value)
                            .with_context(|| format!("write {value} to {}", path.display()))?;
                        tracing::info!("set {key} = {value} (was {old})");
                        self.sysctls.push((path, old));
                    }
                }
                let (connection, handle, _) =
                    rtnetlink::new_connection().context("rtnetlink socket")?;
                let task = tokio::spawn(connection);
                let lo = nix::net::if_::if_nametoindex("lo").context("ifindex of lo")?;
                for vip in &plan.vips {
                    match handle
                        .address()
                        .add(lo, IpAddr::V4(*vip), 32)
                        .execute()
                        .await
                    {
                        Ok(()) => {
                            tracing::info!("added {vip}/32 to lo");
                            self.added.push(*vip);
                        }
                        Err(rtnetlink::Error::NetlinkError(e))
                            if e.raw_code() == -libc_eexist() =>
                        {
                            tracing::info!("{vip}/32 already on lo; leaving it there on exit");
                        }
                        Err(e) => {
                            task.abort();
                            bail!("cannot add {vip}/32 to lo: {e}");
                        }
                    }
                }
                task.abort();
            }
            Mode::Redirect => {
                let table = format!("lvskit_app_{}", std::process::id());
                let vips = plan
                    .vips
                    .iter()
                    .map(Ipv4Addr::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                let script = format!(
                    "table ip {table} {{\n  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n    ip daddr {{ {vips} }} tcp dport {port} redirect\n  }}\n}}\n",
                    port = plan.port
                );
                nft(&script).await?;
                tracing::info!(
                    "nftables: redirect tcp to {{ {vips} }}:{} (table ip {table})",
                    plan.port
                );
                self.nft_table = Some(table);
            }
        }
        Ok(())
    }

    /// Reverts everything [`Setup::apply`] changed, in reverse order. Every
    /// step is tried; the first error is returned.
    pub async fn undo(&mut self) -> Result<()> {
        let mut first_error = None;
        if let Some(table) = self.nft_table.take() {
            match nft(&format!("delete table ip {table}\n")).await {
                Ok(()) => tracing::info!("nftables: deleted table ip {table}"),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if !self.added.is_empty() {
            match remove_from_lo(&self.added).await {
                Ok(()) => self.added.clear(),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        while let Some((path, old)) = self.sysctls.pop() {
            match std::fs::write(&path, &old) {
                Ok(()) => tracing::info!("restored {} = {old}", path.display()),
                Err(e) => {
                    first_error.get_or_insert(
                        anyhow::Error::new(e).context(format!("restore {}", path.display())),
                    );
                }
            }
        }
        match first_error {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}

/// `EEXIST`, as netlink reports it (negated).
fn libc_eexist() -> i32 {
    nix::errno::Errno::EEXIST as i32
}

/// Removes `vips` (as `/32`) from `lo` over rtnetlink.
async fn remove_from_lo(vips: &[Ipv4Addr]) -> Result<()> {
    use futures::TryStreamExt as _;
    let (connection, handle, _) = rtnetlink::new_connection().context("rtnetlink socket")?;
    let task = tokio::spawn(connection);
    let lo = nix::net::if_::if_nametoindex("lo").context("ifindex of lo")?;
    let mut result = Ok(());
    let mut addresses = handle.address().get().set_link_index_filter(lo).execute();
    let mut found = Vec::new();
    while let Some(message) = addresses.try_next().await.context("list addresses of lo")? {
        let has_vip = message.attributes.iter().any(|a| {
            matches!(a, netlink_packet_route::address::AddressAttribute::Local(IpAddr::V4(ip)) if vips.contains(ip))
        });
        if has_vip && message.header.prefix_len == 32 {
            found.push(message);
        }
    }
    for message in found {
        if let Err(e) = handle.address().del(message).execute().await {
            result = Err(anyhow::anyhow!("cannot remove a VIP from lo: {e}"));
        }
    }
    if result.is_ok() {
        for vip in vips {
            tracing::info!("removed {vip}/32 from lo");
        }
    }
    task.abort();
    result
}

/// Runs `nft -f -` with `script` on stdin.
async fn nft(script: &str) -> Result<()> {
    use tokio::io::AsyncWriteExt as _;
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("cannot run nft (is nftables installed?)")?;
    let mut stdin = child.stdin.take().context("nft stdin")?;
    stdin.write_all(script.as_bytes()).await?;
    drop(stdin);
    let output = child.wait_with_output().await?;
    if !output.status.success() {
        bail!(
            "nft failed ({}): {}\nscript:\n{script}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Serves HTTP/1.1 on `listener` until the future is dropped: `GET /`
/// answers with `name` and a newline, `GET /health` with `ok`, anything
/// else with 404. Keep-alive is on, so one TCP connection can carry many
/// requests (the lab's long-lived connections rely on it).
pub async fn serve(listener: TcpListener, name: String) -> Result<()> {
    let name = Arc::new(name);
    loop {
        let (stream, peer) = listener.accept().await.context("accept")?;
        let name = name.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let name = name.clone();
                async move { Ok::<_, Infallible>(respond(&name, peer, &request)) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!("connection from {peer}: {e}");
            }
        });
    }
}

/// The answer to one request.
fn respond<B>(name: &str, peer: SocketAddr, request: &Request<B>) -> Response<Full<Bytes>> {
    let (status, body) = match request.uri().path() {
        "/" => (StatusCode::OK, format!("{name}\n")),
        "/health" => (StatusCode::OK, "ok\n".to_owned()),
        _ => (StatusCode::NOT_FOUND, "not found\n".to_owned()),
    };
    tracing::debug!("{peer} {} {} -> {status}", request.method(), request.uri());
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(name) {
        response.headers_mut().insert("x-lvskit-app", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_name_the_app_and_answer_health() {
        let peer: SocketAddr = "10.0.0.9:4000".parse().unwrap();
        let get = |path: &str| Request::get(path).body(()).unwrap();
        let root = respond("app1", peer, &get("/"));
        assert_eq!(root.status(), StatusCode::OK);
        assert_eq!(root.headers()["x-lvskit-app"], "app1");
        assert_eq!(
            respond("app1", peer, &get("/health")).status(),
            StatusCode::OK
        );
        assert_eq!(
            respond("app1", peer, &get("/x")).status(),
            StatusCode::NOT_FOUND
        );
    }
}
