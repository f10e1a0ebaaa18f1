//! The asynchronous handle, driven by tokio's reactor.

use std::io;
use std::path::Path;

use netlink_sys::{AsyncSocket, AsyncSocketExt, TokioSocket, protocols::NETLINK_GENERIC};

use crate::error::Error;
use crate::handle::{
    DATAGRAM_MAX, LookupRetry, LookupStep, OpenOptions, configure, deliver, ipvs_api, modprobe,
    open_socket, receive_error,
};
use crate::netlink::exchange::{FamilyLookup, Job, TxContext};

/// An asynchronous handle on the kernel's IPVS table: the same methods as
/// [`crate::Handle`], as `async fn`s. The socket is non-blocking and
/// registered with tokio's reactor; a receive waits for readiness, so
/// `EAGAIN` never spins. It has no receive timeout of its own: wrap calls
/// in `tokio::time::timeout` where one is wanted.
pub struct AsyncHandle {
    socket: TokioSocket,
    tx: TxContext,
    out: Vec<u8>,
    rx: Vec<u8>,
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

    /// Open a handle with options (the receive timeout is not used).
    pub async fn open_with(options: &OpenOptions) -> Result<AsyncHandle, Error> {
        // The socket registers with the reactor of the calling runtime, also
        // when it is created on the namespace thread.
        let runtime = tokio::runtime::Handle::current();
        let mut socket = open_socket(options, move || {
            let _entered = runtime.enter();
            TokioSocket::new(NETLINK_GENERIC)
        })?;
        let window = configure(socket.socket_mut())?;
        let mut handle = AsyncHandle {
            socket,
            tx: TxContext {
                family: 0,
                next_seq: 1,
                window,
            },
            out: Vec::new(),
            rx: Vec::with_capacity(DATAGRAM_MAX),
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
            match self.socket.recv(&mut self.rx).await {
                Ok(()) => deliver(&mut job, &self.rx)?,
                Err(e) => receive_error(&mut job, e)?,
            }
        }
        job.finish()
    }
}

impl AsyncHandle {
    ipvs_api!(async, await);

    /// Every service with its destinations: one service dump, then one
    /// destination dump per service, one after the other.
    pub async fn list(&mut self) -> Result<Vec<crate::reconcile::ServiceState>, Error> {
        let services = self.services().await?;
        let next = std::sync::atomic::AtomicUsize::new(0);
        let found = self
            .run(crate::jobs::destination_lists(&services, &next))
            .await?;
        Ok(crate::jobs::assemble(services, found))
    }
}
