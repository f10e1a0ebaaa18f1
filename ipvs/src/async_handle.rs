//! The asynchronous handle, driven by tokio's reactor.

use std::io;
use std::path::Path;
use std::time::Duration;

use netlink_sys::{AsyncSocket, AsyncSocketExt, TokioSocket, protocols::NETLINK_GENERIC};

use crate::error::Error;
use crate::handle::{
    DATAGRAM_MAX, LookupRetry, LookupStep, OpenOptions, configure, deliver, drain_abandoned,
    ipvs_api, modprobe, open_socket, receive_error,
};
use crate::netlink::exchange::{FamilyLookup, Job, TxContext};

/// An asynchronous handle on the kernel's IPVS table: the same methods as
/// [`crate::Handle`], as `async fn`s. The socket is non-blocking and
/// registered with tokio's reactor; a receive waits for readiness, so
/// `EAGAIN` never spins. A request fails with [`Error::Timeout`] when no
/// reply arrives within [`OpenOptions::receive_timeout`] of the last one (a
/// tokio timer, so it needs tokio's `time` driver); a reply that arrives
/// later is recognised by its sequence number and ignored.
pub struct AsyncHandle {
    socket: TokioSocket,
    tx: TxContext,
    out: Vec<u8>,
    rx: Vec<u8>,
    receive_timeout: Duration,
    /// A job ended early (failed, or its future was dropped): its replies
    /// may still be queued, a dump of it still running.
    abandoned: bool,
}

impl std::fmt::Debug for AsyncHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncHandle")
            .field("family", &self.tx.family)
            .field("next_seq", &self.tx.next_seq)
            .finish_non_exhaustive()
    }
}

impl AsyncHandle {
    /// Open a handle in the current network namespace.
    pub async fn open() -> Result<AsyncHandle, Error> {
        AsyncHandle::open_with(&OpenOptions::default()).await
    }

    /// Open a handle in the network namespace of `path`.
    pub async fn open_in_netns(path: impl AsRef<Path>) -> Result<AsyncHandle, Error> {
        AsyncHandle::open_with(&OpenOptions::default().netns(path)).await
    }

    /// Open a handle with options.
    pub async fn open_with(options: &OpenOptions) -> Result<AsyncHandle, Error> {
        // The socket registers with the reactor of the calling runtime, also
        // when it is created on the namespace thread.
        let runtime = tokio::runtime::Handle::current();
        let mut socket = open_socket(options, move || {
            let _entered = runtime.enter();
            TokioSocket::new(NETLINK_GENERIC)
        })?;
        let window = configure(socket.socket_mut(), options)?;
        let mut handle = AsyncHandle {
            socket,
            tx: TxContext {
                family: 0,
                next_seq: 1,
                window,
            },
            out: Vec::new(),
            rx: Vec::with_capacity(DATAGRAM_MAX),
            receive_timeout: options.receive_timeout,
            abandoned: false,
        };
        let mut retry = LookupRetry::default();
        handle.tx.family = loop {
            let result = handle.run(FamilyLookup::default()).await;
            match retry.next(result, options)? {
                LookupStep::Found(id) => break id,
                LookupStep::LoadModule => tokio::task::spawn_blocking(modprobe)
                    .await
                    .map_err(io::Error::other)?,
                LookupStep::Retry => {}
            }
        };
        Ok(handle)
    }

    /// The resolved generic-netlink family id of IPVS.
    pub fn family_id(&self) -> u16 {
        self.tx.family
    }

    async fn send_all(&mut self) -> Result<(), Error> {
        loop {
            match self.socket.send(&self.out).await {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub(crate) async fn run<J: Job>(&mut self, mut job: J) -> Result<J::Output, Error> {
        if self.abandoned {
            drain_abandoned(self.socket.socket_ref(), &mut self.rx)?;
        }
        self.abandoned = true;
        loop {
            self.out.clear();
            job.transmit(&mut self.tx, &mut self.out);
            if !self.out.is_empty() {
                self.send_all().await?;
            }
            if job.is_done() {
                break;
            }
            self.rx.clear();
            let receive = self.socket.recv(&mut self.rx);
            let received = if self.receive_timeout.is_zero() {
                receive.await
            } else {
                tokio::time::timeout(self.receive_timeout, receive)
                    .await
                    .map_err(|_| Error::Timeout)?
            };
            match received {
                Ok(()) => deliver(&mut job, &self.rx)?,
                // The socket is non-blocking: the drain after an overrun
                // reads it directly, without the reactor.
                Err(e) => receive_error(self.socket.socket_ref(), &mut self.rx, &mut job, e)?,
            }
        }
        self.abandoned = false;
        job.finish()
    }
}

impl AsyncHandle {
    ipvs_api!(async, await);

    /// Every service with its destinations: one service dump, then one
    /// destination dump per service, one after the other.
    pub async fn list(&mut self) -> Result<Vec<crate::reconcile::ServiceState>, Error> {
        let services = self.services().await?;
        let found = self
            .run(crate::jobs::destination_lists(&crate::jobs::Listed::new(
                &services,
            )))
            .await?;
        Ok(crate::jobs::assemble(services, found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::exchange::{Incoming, push_message};
    use crate::netlink::{Command, IpvsMessage};
    use netlink_packet_generic::{GenlHeader, constants::GENL_ID_CTRL};

    /// Sends one message that the kernel drops without a word: it lacks
    /// `NLM_F_REQUEST` (and `NLM_F_ACK`), and the kernel handles and
    /// acknowledges requests only. Counts what comes back.
    #[derive(Default)]
    struct Unanswered {
        sent: bool,
        received: usize,
    }

    impl Job for Unanswered {
        type Output = usize;
        fn transmit(&mut self, tx: &mut TxContext, out: &mut Vec<u8>) {
            if !std::mem::replace(&mut self.sent, true) {
                let genl = GenlHeader { cmd: 3, version: 2 };
                let empty = IpvsMessage::new(Command::GetInfo, vec![]);
                push_message(out, GENL_ID_CTRL, 0, tx.take_seq(), genl, &empty);
            }
        }
        fn receive(&mut self, _: Incoming<'_>) -> Result<(), Error> {
            self.received += 1;
            Ok(())
        }
        fn overrun(&mut self) -> Result<(), Error> {
            Ok(())
        }
        fn is_done(&self) -> bool {
            false
        }
        fn finish(self) -> Result<usize, Error> {
            Ok(self.received)
        }
    }

    /// A handle on the host's generic-netlink controller (the host has no
    /// IPVS; the controller is enough to exercise the driver).
    fn controller_handle(receive_timeout: Duration) -> AsyncHandle {
        let mut socket = TokioSocket::new(NETLINK_GENERIC).expect("netlink socket");
        let window = configure(socket.socket_mut(), &OpenOptions::new()).expect("bind");
        AsyncHandle {
            socket,
            tx: TxContext {
                family: GENL_ID_CTRL,
                next_seq: 1,
                window,
            },
            out: Vec::new(),
            rx: Vec::with_capacity(DATAGRAM_MAX),
            receive_timeout,
            abandoned: false,
        }
    }

    /// A request the kernel never answers fails with `Error::Timeout` after
    /// the receive timeout (virtual time), and the handle still works: the
    /// next request gets its real reply.
    #[tokio::test(start_paused = true)]
    async fn unanswered_request_times_out() {
        let timeout = Duration::from_secs(5);
        let mut handle = controller_handle(timeout);
        let start = tokio::time::Instant::now();
        let result = handle.run(Unanswered::default()).await;
        assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
        assert!(start.elapsed() >= timeout, "{:?}", start.elapsed());
        // The controller answers the family lookup (IPVS is absent here).
        let lookup = handle.run(FamilyLookup::default()).await;
        assert!(matches!(lookup, Err(Error::NotAvailable)), "{lookup:?}");
    }
}
