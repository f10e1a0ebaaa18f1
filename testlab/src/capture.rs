//! Capturing frames with kernel timestamps, so tests can assert timing as
//! seen on the wire.
//!
//! A capture is an `AF_PACKET` socket (`ETH_P_ALL`, `SO_TIMESTAMPNS`) on a
//! thread that has entered the namespace. It is open when
//! [`Lab::capture`] or [`Node::capture`] returns, so no frame sent after
//! that is missed.

use crate::netns::{Bridge, Lab, Node};
use anyhow::{Context, Result, anyhow, bail};
use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, LinkAddr, MsgFlags, SockFlag, SockProtocol, SockType,
    recvmsg, setsockopt, socket, sockopt,
};
use nix::sys::time::{TimeSpec, TimeVal, TimeValLike};
use std::collections::HashMap;
use std::fs::File;
use std::io::{IoSliceMut, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `PACKET_OUTGOING` from `<linux/if_packet.h>`: a frame this host sent.
const PACKET_OUTGOING: u8 = 4;

/// One captured Ethernet frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Kernel receive timestamp (`SO_TIMESTAMPNS`, `CLOCK_REALTIME`).
    pub time: SystemTime,
    /// The interface it was seen on: the bridge port (`p3`) for a bridge
    /// capture, the node's interface for a node capture.
    pub interface: String,
    /// Whether the capturing namespace sent it (only in node captures;
    /// bridge captures keep only frames entering the bridge).
    pub outgoing: bool,
    /// The whole frame, from the destination MAC on.
    pub data: Vec<u8>,
}

/// The fields of an IPv4 header, as parsed by [`Frame::ipv4`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header<'a> {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// IP protocol number (112 is VRRP).
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// The bytes after the header, up to the total length.
    pub payload: &'a [u8],
}

impl Frame {
    /// The EtherType (bytes 12..14), if the frame is long enough.
    pub fn ethertype(&self) -> Option<u16> {
        self.data
            .get(12..14)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    /// The IPv4 header and payload, if this is an untagged IPv4 frame with a
    /// sane header (RFC 791 section 3.1). Never panics.
    pub fn ipv4(&self) -> Option<Ipv4Header<'_>> {
        if self.ethertype()? != 0x0800 {
            return None;
        }
        let ip = self.data.get(14..)?;
        let first = *ip.first()?;
        let header_len = usize::from(first & 0x0f) * 4;
        if first >> 4 != 4 || header_len < 20 {
            return None;
        }
        let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
        let header = ip.get(..header_len)?;
        let payload = ip.get(header_len..total.max(header_len).min(ip.len()))?;
        Some(Ipv4Header {
            src: Ipv4Addr::new(header[12], header[13], header[14], header[15]),
            dst: Ipv4Addr::new(header[16], header[17], header[18], header[19]),
            protocol: header[9],
            ttl: header[8],
            payload,
        })
    }
}

/// A running capture. Stop it with [`Capture::stop`] (or drop it).
#[derive(Debug)]
pub struct Capture {
    frames: Arc<Mutex<Vec<Frame>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Lab {
    /// Captures every frame that enters `bridge` from one of its ports (each
    /// frame once, as its sender put it on the wire, before any
    /// [`crate::Fault`] drops it). Ports added later are not captured.
    pub fn capture(&self, bridge: &Bridge) -> Result<Capture> {
        let json = self
            .switch()
            .run(["ip", "-j", "link", "show", "master", bridge.name()])?;
        let ports = interfaces(&json)?;
        if ports.is_empty() {
            bail!("bridge {} has no ports to capture on", bridge.name());
        }
        Capture::start(self.switch(), ports, false)
    }
}

impl Node {
    /// Captures every frame sent or received on `ifname` of this node.
    pub fn capture(&self, ifname: &str) -> Result<Capture> {
        let json = self.run(["ip", "-j", "link", "show", "dev", ifname])?;
        Capture::start(self, interfaces(&json)?, true)
    }
}

/// Maps ifindex to name from `ip -j link` output.
fn interfaces(json: &str) -> Result<HashMap<usize, String>> {
    let value: serde_json::Value = serde_json::from_str(json).context("ip -j link")?;
    Ok(value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|link| {
            let index = usize::try_from(link["ifindex"].as_u64()?).ok()?;
            Some((index, link["ifname"].as_str()?.to_owned()))
        })
        .collect())
}

impl Capture {
    fn start(
        node: &Node,
        interfaces: HashMap<usize, String>,
        keep_outgoing: bool,
    ) -> Result<Capture> {
        let netns = File::open(node.netns_path()).context("open namespace")?;
        let frames = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
        let thread = {
            let frames = frames.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("capture {}", node.netns()))
                .spawn(move || {
                    let socket = nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET)
                        .context("setns")
                        .and_then(|()| open_socket());
                    let socket = match socket {
                        Ok(socket) => {
                            let _ = ready_tx.send(Ok(()));
                            socket
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    receive_loop(&socket, &interfaces, keep_outgoing, &frames, &stop);
                })
                .context("spawn capture thread")?
        };
        ready_rx
            .recv()
            .map_err(|_| anyhow!("capture thread died"))??;
        Ok(Capture {
            frames,
            stop,
            thread: Some(thread),
        })
    }

    /// The frames captured so far, in order of arrival.
    pub fn frames(&self) -> Vec<Frame> {
        self.frames.lock().expect("frames").clone()
    }

    /// Waits until a frame matching `predicate` has been captured, and
    /// returns the first such frame.
    pub fn wait_for(&self, timeout: Duration, predicate: impl Fn(&Frame) -> bool) -> Result<Frame> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(frame) = self
                .frames
                .lock()
                .expect("frames")
                .iter()
                .find(|f| predicate(f))
            {
                return Ok(frame.clone());
            }
            if Instant::now() >= deadline {
                bail!("no matching frame within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops capturing and returns every frame.
    pub fn stop(mut self) -> Vec<Frame> {
        self.halt();
        std::mem::take(&mut *self.frames.lock().expect("frames"))
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Writes `frames` as a classic pcap file (Ethernet, nanosecond
/// timestamps), for `tshark -r` when a test fails.
pub fn write_pcap(path: &Path, frames: &[Frame]) -> Result<()> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_3c4d_u32.to_le_bytes()); // nanosecond magic
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&262_144u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for frame in frames {
        let since = frame.time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let len = u32::try_from(frame.data.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(
            &u32::try_from(since.as_secs())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        out.extend_from_slice(&since.subsec_nanos().to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&frame.data);
    }
    File::create(path)
        .and_then(|mut f| f.write_all(&out))
        .with_context(|| format!("write {}", path.display()))
}

fn open_socket() -> Result<std::os::fd::OwnedFd> {
    let fd = socket(
        AddressFamily::Packet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::EthAll,
    )
    .context("AF_PACKET socket")?;
    setsockopt(&fd, sockopt::ReceiveTimestampns, &true).context("SO_TIMESTAMPNS")?;
    setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::milliseconds(50)).context("SO_RCVTIMEO")?;
    setsockopt(&fd, sockopt::RcvBufForce, &(8 << 20)).context("SO_RCVBUFFORCE")?;
    Ok(fd)
}

fn receive_loop(
    socket: &std::os::fd::OwnedFd,
    interfaces: &HashMap<usize, String>,
    keep_outgoing: bool,
    frames: &Mutex<Vec<Frame>>,
    stop: &AtomicBool,
) {
    let mut buffer = vec![0u8; 65_536];
    let mut control = nix::cmsg_space!(TimeSpec);
    while !stop.load(Ordering::Relaxed) {
        let mut iov = [IoSliceMut::new(&mut buffer)];
        let Ok(message) = recvmsg::<LinkAddr>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut control),
            MsgFlags::empty(),
        ) else {
            continue; // timeout (EAGAIN) or EINTR: check `stop` and go on
        };
        let Some(address) = message.address else {
            continue;
        };
        let outgoing = address.pkttype() == PACKET_OUTGOING;
        let Some(interface) = interfaces.get(&address.ifindex()) else {
            continue;
        };
        if outgoing && !keep_outgoing {
            continue;
        }
        let time = message
            .cmsgs()
            .ok()
            .and_then(|mut cmsgs| {
                cmsgs.find_map(|c| match c {
                    ControlMessageOwned::ScmTimestampns(ts) => Some(
                        UNIX_EPOCH
                            + Duration::new(
                                u64::try_from(ts.tv_sec()).unwrap_or(0),
                                u32::try_from(ts.tv_nsec()).unwrap_or(0),
                            ),
                    ),
                    _ => None,
                })
            })
            .unwrap_or_else(SystemTime::now);
        let bytes = message.bytes;
        frames.lock().expect("frames").push(Frame {
            time,
            interface: interface.clone(),
            outgoing,
            data: buffer[..bytes].to_vec(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(data: Vec<u8>) -> Frame {
        Frame {
            time: UNIX_EPOCH,
            interface: "p1".into(),
            outgoing: false,
            data,
        }
    }

    #[test]
    fn ipv4_header_is_parsed() {
        // A VRRPv2 advert from 10.0.0.1 to 224.0.0.18, hand-built.
        let mut data = vec![
            0x01, 0x00, 0x5e, 0, 0, 0x12, 0, 0, 0x5e, 0, 1, 51, 0x08, 0x00,
        ];
        data.extend_from_slice(&[
            0x45, 0xc0, 0, 28, 0, 0, 0, 0, 255, 112, 0, 0, 10, 0, 0, 1, 224, 0, 0, 18,
        ]);
        data.extend_from_slice(&[0x21, 51, 100, 1, 0, 1, 0, 0]);
        let f = frame(data);
        let ip = f.ipv4().expect("ipv4");
        assert_eq!(ip.src, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(ip.dst, Ipv4Addr::new(224, 0, 0, 18));
        assert_eq!(ip.protocol, 112);
        assert_eq!(ip.ttl, 255);
        assert_eq!(ip.payload, &[0x21, 51, 100, 1, 0, 1, 0, 0]);
    }

    #[test]
    fn ipv4_never_panics_on_short_or_odd_frames() {
        for len in 0..60 {
            let mut data = vec![0u8; len];
            if len > 14 {
                data[12] = 0x08;
                data[14] = 0x4f;
            }
            let _ = frame(data).ipv4();
        }
        let mut data = vec![0u8; 40];
        data[12] = 0x08;
        data[14] = 0x45;
        data[16] = 0xff; // total length beyond the frame
        data[17] = 0xff;
        assert!(frame(data).ipv4().is_some());
    }
}
