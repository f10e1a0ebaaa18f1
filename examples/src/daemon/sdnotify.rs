//! systemd's readiness protocol (sd_notify(3)): when `$NOTIFY_SOCKET`
//! names a Unix datagram socket (a path, or `@name` in the abstract
//! namespace), lvskitd sends `READY=1` once it runs, `RELOADING=1` with
//! `MONOTONIC_USEC=` before a SIGHUP reload and `READY=1` after it, and
//! `STOPPING=1` when it shuts down. Without the variable nothing is sent.

use anyhow::{Context, Result};
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The messages lvskitd sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// Start-up or a reload finished.
    Ready,
    /// A reload begins.
    Reloading,
    /// Shutdown begins.
    Stopping,
}

impl Message {
    /// The datagram, as systemd reads it.
    pub fn text(self) -> String {
        match self {
            Message::Ready => "READY=1\nSTATUS=running\n".to_owned(),
            Message::Reloading => format!(
                "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC={}\n",
                monotonic_usec()
            ),
            Message::Stopping => "STOPPING=1\nSTATUS=stopping\n".to_owned(),
        }
    }
}

/// CLOCK_MONOTONIC in microseconds, as systemd wants with `RELOADING=1`.
fn monotonic_usec() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000
            + u64::try_from(t.tv_nsec()).unwrap_or(0) / 1_000
    })
}

/// Sends `message` to `$NOTIFY_SOCKET` if it is set; a failure is logged
/// (systemd would then time the service out, which says more than we can).
pub fn notify(message: Message) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send(&socket.to_string_lossy(), &message.text()) {
        tracing::warn!("sd_notify {message:?}: {e:#}");
    }
}

/// Sends one datagram to the socket `$NOTIFY_SOCKET` names.
pub fn send(socket: &str, text: &str) -> Result<()> {
    let address = match socket.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt as _;
            SocketAddr::from_abstract_name(name.as_bytes())
        }
        None => SocketAddr::from_pathname(socket),
    }
    .with_context(|| format!("NOTIFY_SOCKET={socket}"))?;
    let sender = UnixDatagram::unbound().context("unix datagram socket")?;
    sender
        .send_to_addr(text.as_bytes(), &address)
        .with_context(|| format!("send to {socket}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_reach_a_path_and_an_abstract_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap();
        send(path.to_str().unwrap(), &Message::Ready.text()).unwrap();
        let mut buffer = [0u8; 256];
        let n = receiver.recv(&mut buffer).unwrap();
        assert!(buffer[..n].starts_with(b"READY=1\n"));

        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("lvskitd-test-{}", std::process::id());
        let abstract_receiver =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        send(&format!("@{name}"), &Message::Reloading.text()).unwrap();
        let n = abstract_receiver.recv(&mut buffer).unwrap();
        let text = std::str::from_utf8(&buffer[..n]).unwrap();
        assert!(text.starts_with("RELOADING=1\n"), "{text}");
        let usec: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
            .unwrap()
            .parse()
            .unwrap();
        assert!(usec > 0);
    }
}
