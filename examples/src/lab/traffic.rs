//! Client traffic: short requests from several client addresses, and
//! long-lived keep-alive connections, all from threads inside the client's
//! namespace.

use anyhow::{Context, Result, bail};
use lvskit_testlab::Node;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// How long one request may take before it counts as failed (generous:
/// under qemu TCG on a shared host a guest can stall for a second).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a long-lived connection waits for an answer: TCP retransmits
/// through a failover (RTO backoff 0.2, 0.4, 0.8, 1.6, 3.2 s ...).
pub const LONG_LIVED_TIMEOUT: Duration = Duration::from_secs(15);

/// One short request (a fresh TCP connection).
#[derive(Debug, Clone)]
pub struct Request {
    /// When it started.
    pub start: SystemTime,
    /// How long it took.
    pub duration: Duration,
    /// The client address it came from.
    pub client: Ipv4Addr,
    /// The client's port (0 if the socket could not be bound).
    pub port: u16,
    /// The app that answered, or why it failed.
    pub outcome: Result<String, String>,
}

/// Runs `f` on a new thread that has entered `node`'s network namespace.
pub fn spawn_in<F>(node: &Node, name: &str, f: F) -> Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    let file = std::fs::File::open(node.netns_path())
        .with_context(|| format!("open namespace of {}", node.name()))?;
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            if let Err(e) = nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET) {
                eprintln!("setns failed: {e}");
                return;
            }
            f();
        })
        .context("spawn thread")
}

/// Steady traffic: one thread per client address, a request every
/// `interval`, each on a new connection.
#[derive(Debug)]
pub struct Traffic {
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Traffic {
    /// Starts the request threads in `client`.
    pub fn start(
        client: &Node,
        sources: &[Ipv4Addr],
        target: SocketAddrV4,
        interval: Duration,
    ) -> Result<Traffic> {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for &source in sources {
            let requests = requests.clone();
            let stop = stop.clone();
            threads.push(spawn_in(client, &format!("client {source}"), move || {
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let start = SystemTime::now();
                    let began = Instant::now();
                    let mut port = 0;
                    let outcome = get_once(source, target, &mut port).map_err(|e| format!("{e:#}"));
                    requests.lock().expect("requests").push(Request {
                        start,
                        duration: began.elapsed(),
                        client: source,
                        port,
                        outcome,
                    });
                    next += interval;
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    } else {
                        next = now;
                    }
                }
            })?);
        }
        Ok(Traffic {
            requests,
            stop,
            threads,
        })
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("requests").clone()
    }

    /// Stops the threads and returns every request.
    pub fn stop(self) -> Vec<Request> {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
        std::mem::take(&mut *self.requests.lock().expect("requests"))
    }
}

/// One `GET /` on a fresh connection from `source`; returns the app's name.
fn get_once(source: Ipv4Addr, target: SocketAddrV4, port: &mut u16) -> Result<String> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((source, 0)).into())?;
    if let Some(local) = socket.local_addr()?.as_socket() {
        *port = local.port();
    }
    socket
        .connect_timeout(&SocketAddr::V4(target).into(), REQUEST_TIMEOUT)
        .context("connect")?;
    let mut stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n")?;
    read_response(&mut stream)
}

/// Reads one HTTP/1.1 response with a `Content-Length` and returns its body
/// (trimmed). Fails on a status other than 200.
pub fn read_response(stream: &mut TcpStream) -> Result<String> {
    let mut buffer = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    let header_end = loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            break end + 4;
        }
        if buffer.len() > 16 * 1024 {
            bail!("response header too long");
        }
        let n = stream.read(&mut chunk).context("read")?;
        if n == 0 {
            bail!("connection closed before the response");
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        bail!("HTTP status {status:?}");
    }
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .context("no content-length")?;
    if length > 4096 {
        bail!("body of {length} bytes is not an app name");
    }
    while buffer.len() < header_end + length {
        let n = stream.read(&mut chunk).context("read body")?;
        if n == 0 {
            bail!("connection closed in the body");
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Ok(
        String::from_utf8_lossy(&buffer[header_end..header_end + length])
            .trim()
            .to_owned(),
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One long-lived keep-alive connection and what happened to it.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Source address and port.
    pub local: SocketAddr,
    /// The app that answered first.
    pub app: String,
    /// Successful requests on it.
    pub ok: u32,
    /// The first failure (the connection is not used after it).
    pub failure: Option<(SystemTime, String)>,
}

/// Long-lived connections, each carrying a request every `interval`.
#[derive(Debug)]
pub struct LongLived {
    connections: Arc<Mutex<Vec<Connection>>>,
    stop: Arc<AtomicBool>,
}

impl LongLived {
    /// Opens `count` connections from `sources` (round robin) to `target`
    /// in `client` and keeps them busy. Fails if they cannot be opened.
    pub fn start(
        client: &Node,
        sources: &[Ipv4Addr],
        target: SocketAddrV4,
        count: usize,
        interval: Duration,
    ) -> Result<LongLived> {
        let connections = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let sources = sources.to_vec();
        // One thread per connection: a connection whose packets vanish
        // (its app is gone) waits out its timeout without holding up the
        // others.
        for i in 0..count {
            let source = sources[i % sources.len()];
            let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
            let connections = connections.clone();
            let stop = stop.clone();
            // Detached: a thread still waiting on a dead connection ends at
            // its timeout.
            spawn_in(client, &format!("long-lived {i}"), move || {
                // A few attempts: opening 20 connections at once may meet a
                // busy director.
                let mut attempt = 0;
                let (mut stream, app) = loop {
                    attempt += 1;
                    match open_keepalive(source, target) {
                        Ok(opened) => break opened,
                        Err(e) if attempt >= 3 => {
                            let _ = ready_tx.send(Err(e.context(format!("connection {i}"))));
                            return;
                        }
                        Err(_) => continue,
                    }
                };
                let index = {
                    let mut all = connections.lock().expect("connections");
                    all.push(Connection {
                        local: stream.local_addr().unwrap_or(SocketAddr::from((source, 0))),
                        app: app.clone(),
                        ok: 1,
                        failure: None,
                    });
                    all.len() - 1
                };
                let _ = ready_tx.send(Ok(()));
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(interval);
                    let result = keepalive_get(&mut stream);
                    let mut all = connections.lock().expect("connections");
                    let connection = &mut all[index];
                    match result {
                        Ok(answer) if answer == app => connection.ok += 1,
                        Ok(answer) => {
                            connection.failure =
                                Some((SystemTime::now(), format!("moved from {app} to {answer}")));
                            return;
                        }
                        Err(e) => {
                            connection.failure = Some((SystemTime::now(), format!("{e:#}")));
                            return;
                        }
                    }
                }
            })?;
            ready_rx
                .recv()
                .context("long-lived connection thread died")??;
        }
        Ok(LongLived { connections, stop })
    }

    /// The connections' state now.
    pub fn snapshot(&self) -> Vec<Connection> {
        self.connections.lock().expect("connections").clone()
    }

    /// Stops and returns the final state.
    pub fn stop(self) -> Vec<Connection> {
        self.stop.store(true, Ordering::Relaxed);
        self.snapshot()
    }
}

fn open_keepalive(source: Ipv4Addr, target: SocketAddrV4) -> Result<(TcpStream, String)> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((source, 0)).into())?;
    socket
        .connect_timeout(&SocketAddr::V4(target).into(), REQUEST_TIMEOUT)
        .context("connect")?;
    let mut stream: TcpStream = socket.into();
    // A failover takes up to Master_Down_Interval: let TCP retransmit
    // through it rather than give up.
    stream.set_read_timeout(Some(LONG_LIVED_TIMEOUT))?;
    stream.set_write_timeout(Some(LONG_LIVED_TIMEOUT))?;
    let app = keepalive_get(&mut stream)?;
    Ok((stream, app))
}

fn keepalive_get(stream: &mut TcpStream) -> Result<String> {
    stream.write_all(b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n")?;
    read_response(stream)
}
