//! The blocking [`Handle`], how handles are opened ([`OpenOptions`]), and
//! the API both handles share.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use netlink_sys::{Socket, protocols::NETLINK_GENERIC};
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, setsockopt, sockopt};

use crate::error::Error;
use crate::netlink::exchange::{FamilyLookup, Job, TxContext, split};

/// How a handle is opened.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    pub(crate) netns: Option<PathBuf>,
    pub(crate) load_module: bool,
    pub(crate) receive_timeout: Duration,
    pub(crate) lookup_attempts: u32,
    pub(crate) list_parallelism: usize,
    pub(crate) receive_buffer: usize,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            netns: None,
            load_module: false,
            receive_timeout: Duration::from_secs(30),
            lookup_attempts: 3,
            list_parallelism: std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(MAX_LIST_PARALLELISM),
            receive_buffer: RECEIVE_BUFFER,
        }
    }
}

impl OpenOptions {
    /// The defaults: current namespace, no module loading, 30 s receive
    /// timeout, 3 family-lookup attempts, destination dumps on as many
    /// sockets as there are CPUs (at most 4).
    pub fn new() -> Self {
        Self::default()
    }
    /// Open the socket inside the network namespace of this file (e.g.
    /// `/run/netns/NAME` or `/proc/PID/ns/net`). The socket is created on a
    /// short-lived thread that entered the namespace with `setns(2)`; it stays
    /// bound to that namespace.
    pub fn netns(mut self, path: impl AsRef<Path>) -> Self {
        self.netns = Some(path.as_ref().to_path_buf());
        self
    }
    /// Run `modprobe ip_vs` if the family is absent, then look again.
    /// Off by default: loading kernel modules is the operator's decision.
    pub fn load_module(mut self, yes: bool) -> Self {
        self.load_module = yes;
        self
    }
    /// How long a handle waits for the next reply before the request fails
    /// with [`Error::Timeout`]: `SO_RCVTIMEO` for the blocking handle, a
    /// tokio timer for the async one. Zero waits forever.
    pub fn receive_timeout(mut self, timeout: Duration) -> Self {
        self.receive_timeout = timeout;
        self
    }
    /// On how many sockets at once the blocking [`Handle::list`] dumps
    /// destinations, each socket driven by its own thread; 1 dumps them one
    /// after the other on the handle's socket, as the async handle does.
    pub fn list_parallelism(mut self, sockets: usize) -> Self {
        self.list_parallelism = sockets.max(1);
        self
    }
    /// The socket's receive buffer in bytes (default 8 MiB): forced with
    /// `SO_RCVBUFFORCE` (needs `CAP_NET_ADMIN`), else `SO_RCVBUF` (capped by
    /// `net.core.rmem_max`). Pipelined requests keep up to 1,024
    /// acknowledgements outstanding when it could be forced, 128 when not,
    /// about 1 KiB of buffer each: with a smaller buffer the kernel drops
    /// the acknowledgements that do not fit (`ENOBUFS`) and those requests
    /// end with [`Error::AckLost`] (the kernel may have applied them). Dumps
    /// lose nothing: the kernel sends a dump's next part only when the
    /// buffer has room.
    pub fn receive_buffer(mut self, bytes: usize) -> Self {
        self.receive_buffer = bytes;
        self
    }
    /// How many times the family lookup is tried on transient failures.
    pub fn lookup_attempts(mut self, attempts: u32) -> Self {
        self.lookup_attempts = attempts.max(1);
        self
    }
}

/// The default [`OpenOptions::list_parallelism`] is the number of CPUs, up
/// to this.
const MAX_LIST_PARALLELISM: usize = 4;

/// Outstanding acknowledged requests when the receive buffer could be
/// enlarged (`SO_RCVBUFFORCE`, needs `CAP_NET_ADMIN`) and when not: each
/// acknowledgement takes about 1 KiB of receive buffer.
const WIDE_WINDOW: usize = 1024;
const NARROW_WINDOW: usize = 128;
const RECEIVE_BUFFER: usize = 8 << 20;
/// The receive buffer: large enough for any datagram the kernel sends, and
/// as large as it uses. The kernel sizes a dump's skbs from the largest
/// `recvmsg` length seen on the socket, up to 32 KiB less its overhead
/// (`netlink_recvmsg`, Linux 6.1), and `IPVS_CMD_GET_SERVICE` re-walks the
/// service table from its start for every skb it fills: with 32 KiB skbs a
/// 10,000-service dump takes about 4 times fewer walks than with 8 KiB.
pub(crate) const DATAGRAM_MAX: usize = 32 * 1024;

/// Bind, ask for capped acknowledgements, and set the receive buffer;
/// returns the pipelining window.
pub(crate) fn configure(socket: &mut Socket, options: &OpenOptions) -> io::Result<usize> {
    socket.bind_auto()?;
    // Errors carry only the request's header, not its attributes.
    let _ = socket.set_cap_ack(true);
    let bytes = options.receive_buffer;
    if setsockopt(&*socket, sockopt::RcvBufForce, &bytes).is_ok() {
        return Ok(WIDE_WINDOW);
    }
    let _ = setsockopt(&*socket, sockopt::RcvBuf, &bytes);
    Ok(NARROW_WINDOW)
}

/// Create a socket with `make`, inside the namespace of `options.netns` if
/// given: `make` then runs on a short-lived thread that entered it.
pub(crate) fn open_socket<S: Send>(
    options: &OpenOptions,
    make: impl FnOnce() -> io::Result<S> + Send,
) -> Result<S, Error> {
    let Some(path) = &options.netns else {
        return Ok(make()?);
    };
    let namespace_error = |source: io::Error| Error::Namespace {
        path: path.display().to_string(),
        source,
    };
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let file = std::fs::File::open(path)?;
                nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(io::Error::from)?;
                make()
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
    })
    .map_err(namespace_error)
}

/// Whether a failed lookup is worth retrying.
pub(crate) fn transient(e: &Error) -> bool {
    matches!(
        e.errno(),
        Some(Errno::EINTR | Errno::EAGAIN | Errno::EBUSY | Errno::ENOBUFS)
    ) || matches!(e, Error::Timeout | Error::AckLost { .. })
}

/// What to do after a family-lookup attempt.
pub(crate) enum LookupStep {
    /// The family id.
    Found(u16),
    /// Run `modprobe ip_vs`, then look again.
    LoadModule,
    /// Look again.
    Retry,
}

/// The retry policy of the family lookup, shared by both handles.
#[derive(Default)]
pub(crate) struct LookupRetry {
    attempt: u32,
    loaded: bool,
}

impl LookupRetry {
    pub(crate) fn next(
        &mut self,
        result: Result<u16, Error>,
        options: &OpenOptions,
    ) -> Result<LookupStep, Error> {
        self.attempt += 1;
        match result {
            Ok(id) => Ok(LookupStep::Found(id)),
            Err(Error::NotAvailable) if options.load_module && !self.loaded => {
                self.loaded = true;
                Ok(LookupStep::LoadModule)
            }
            Err(e) if transient(&e) && self.attempt < options.lookup_attempts => {
                tracing::debug!(error = %e, attempt = self.attempt, "IPVS family lookup failed, retrying");
                Ok(LookupStep::Retry)
            }
            Err(e) => Err(e),
        }
    }
}

/// Handle a failed `recv`: `Ok` to receive again (`EINTR`, or `ENOBUFS`
/// after [`drain_after_overrun`]), else the error (`EAGAIN` is the blocking
/// handle's receive timeout). `socket` is the handle's socket.
pub(crate) fn receive_error<J: Job>(
    socket: &Socket,
    rx: &mut Vec<u8>,
    job: &mut J,
    e: io::Error,
) -> Result<(), Error> {
    match Errno::from_raw(e.raw_os_error().unwrap_or(0)) {
        Errno::EINTR => Ok(()),
        Errno::ENOBUFS => drain_after_overrun(socket, rx, job),
        Errno::EAGAIN => Err(Error::Timeout),
        _ => Err(e.into()),
    }
}

/// After a receive-queue overrun (`ENOBUFS`): hand the job every message
/// still queued, without waiting, then tell it that the rest is lost. The
/// drain matters: Linux marks an overrun netlink socket congested and drops
/// everything sent to it, without another `ENOBUFS`, until its queue is
/// empty (`netlink_attachskb`, `netlink_rcv_wake`), so the acknowledgements
/// of requests sent before the drain would never come.
fn drain_after_overrun<J: Job>(
    socket: &Socket,
    rx: &mut Vec<u8>,
    job: &mut J,
) -> Result<(), Error> {
    tracing::warn!("netlink receive buffer overrun");
    read_queued(socket, rx, |datagram| deliver(job, datagram))?;
    job.overrun()
}

/// Read out, without waiting, what a job that ended early left on the
/// socket: it failed, or the async handle's future was dropped. A dump
/// left running matters: the kernel refuses another dump on the socket
/// (`EBUSY`) until the last part of that one was read, and it makes each
/// next part while the previous one is read (`netlink_recvmsg`), so reading
/// until nothing is queued ends it.
pub(crate) fn drain_abandoned(socket: &Socket, rx: &mut Vec<u8>) -> Result<(), Error> {
    tracing::debug!("reading out the replies of an abandoned request");
    read_queued(socket, rx, |_| Ok(()))
}

/// Hand every datagram queued on the socket to `each`, without waiting.
fn read_queued(
    socket: &Socket,
    rx: &mut Vec<u8>,
    mut each: impl FnMut(&[u8]) -> Result<(), Error>,
) -> Result<(), Error> {
    loop {
        rx.clear();
        match socket.recv(rx, MsgFlags::MSG_DONTWAIT.bits()) {
            Ok(_) => each(rx)?,
            Err(e) => match Errno::from_raw(e.raw_os_error().unwrap_or(0)) {
                Errno::EINTR | Errno::ENOBUFS => {}
                Errno::EAGAIN => return Ok(()),
                _ => return Err(e.into()),
            },
        }
    }
}

/// Hand every message of a datagram to the job.
pub(crate) fn deliver<J: Job>(job: &mut J, datagram: &[u8]) -> Result<(), Error> {
    for message in split(datagram) {
        let message = message.map_err(|source| Error::Malformed {
            command: crate::netlink::Command::Other(0),
            source,
        })?;
        job.receive(message)?;
    }
    Ok(())
}

pub(crate) fn modprobe() {
    match std::process::Command::new("modprobe").arg("ip_vs").status() {
        Ok(status) if status.success() => tracing::info!("loaded kernel module ip_vs"),
        Ok(status) => tracing::warn!(%status, "modprobe ip_vs failed"),
        Err(error) => tracing::warn!(%error, "cannot run modprobe"),
    }
}

/// A blocking handle on the kernel's IPVS table.
///
/// Each handle owns a generic-netlink socket and resolves the "IPVS"
/// family when opened ([`Handle::list`] may open a few more). Requests are synchronous: a method returns when the
/// kernel has answered. [`Handle::execute`] and [`Handle::apply`] pipeline
/// many requests per `sendmsg`.
///
/// ```no_run
/// use lvskit_ipvs::{Handle, ServiceKey, Protocol};
/// let mut ipvs = Handle::open()?;
/// for s in ipvs.list()? {
///     println!("{} {} destinations", s.service.service.key, s.destinations.len());
/// }
/// # Ok::<(), lvskit_ipvs::Error>(())
/// ```
#[derive(Debug)]
pub struct Handle {
    main: Connection,
    /// Extra sockets for [`Handle::list`]'s parallel destination dumps,
    /// opened on first use.
    helpers: Vec<Connection>,
    options: OpenOptions,
}

/// One blocking generic-netlink socket and its request state.
#[derive(Debug)]
struct Connection {
    socket: Socket,
    tx: TxContext,
    out: Vec<u8>,
    rx: Vec<u8>,
    /// A job ended early: its replies may still be queued, a dump of it
    /// still running.
    abandoned: bool,
}

impl Connection {
    /// A bound socket (in `options.netns` if given) with the receive
    /// timeout set, for the IPVS family `family` (0 before the lookup).
    fn open(options: &OpenOptions, family: u16) -> Result<Connection, Error> {
        let mut socket = open_socket(options, || Socket::new(NETLINK_GENERIC))?;
        let window = configure(&mut socket, options)?;
        let timeout = nix::sys::time::TimeVal::new(
            options.receive_timeout.as_secs() as _,
            options.receive_timeout.subsec_micros() as _,
        );
        setsockopt(&socket, sockopt::ReceiveTimeout, &timeout).map_err(io::Error::from)?;
        Ok(Connection {
            socket,
            tx: TxContext {
                family,
                next_seq: 1,
                window,
            },
            out: Vec::new(),
            rx: Vec::with_capacity(DATAGRAM_MAX),
            abandoned: false,
        })
    }

    fn send_all(&mut self) -> Result<(), Error> {
        loop {
            match self.socket.send(&self.out, 0) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn run<J: Job>(&mut self, mut job: J) -> Result<J::Output, Error> {
        if self.abandoned {
            drain_abandoned(&self.socket, &mut self.rx)?;
        }
        self.abandoned = true;
        loop {
            self.out.clear();
            job.transmit(&mut self.tx, &mut self.out);
            if !self.out.is_empty() {
                self.send_all()?;
            }
            if job.is_done() {
                break;
            }
            self.rx.clear();
            match self.socket.recv(&mut self.rx, 0) {
                Ok(_) => deliver(&mut job, &self.rx)?,
                Err(e) => receive_error(&self.socket, &mut self.rx, &mut job, e)?,
            }
        }
        self.abandoned = false;
        job.finish()
    }
}

impl Handle {
    /// Open a handle in the current network namespace.
    pub fn open() -> Result<Handle, Error> {
        Handle::open_with(&OpenOptions::default())
    }

    /// Open a handle in the network namespace of `path`.
    pub fn open_in_netns(path: impl AsRef<Path>) -> Result<Handle, Error> {
        Handle::open_with(&OpenOptions::default().netns(path))
    }

    /// Open a handle with options.
    pub fn open_with(options: &OpenOptions) -> Result<Handle, Error> {
        let mut main = Connection::open(options, 0)?;
        let mut retry = LookupRetry::default();
        main.tx.family = loop {
            let result = main.run(FamilyLookup::default());
            match retry.next(result, options)? {
                LookupStep::Found(id) => break id,
                LookupStep::LoadModule => modprobe(),
                LookupStep::Retry => {}
            }
        };
        Ok(Handle {
            main,
            helpers: Vec::new(),
            options: options.clone(),
        })
    }

    /// The resolved generic-netlink family id of IPVS.
    pub fn family_id(&self) -> u16 {
        self.main.tx.family
    }

    pub(crate) fn run<J: Job>(&mut self, job: J) -> Result<J::Output, Error> {
        self.main.run(job)
    }

    /// Every service with its destinations: one service dump and one
    /// destination dump per service. The kernel runs one dump at a time per
    /// socket, so the destination dumps are spread over up to
    /// [`OpenOptions::list_parallelism`] sockets, each driven by its own
    /// thread (the extra sockets are opened on first use and kept). They
    /// start while the service dump still runs: each service is handed to
    /// the other sockets as soon as its reply arrives, and the handle's own
    /// socket joins in when the service dump is over.
    pub fn list(&mut self) -> Result<Vec<crate::reconcile::ServiceState>, Error> {
        let sockets = self.options.list_parallelism;
        if sockets == 1 {
            let services = self.services()?;
            let found =
                self.main
                    .run(crate::jobs::destination_lists(&crate::jobs::Listed::new(
                        &services,
                    )))?;
            return Ok(crate::jobs::assemble(services, found));
        }
        while self.helpers.len() + 1 < sockets {
            let helper = Connection::open(&self.options, self.main.tx.family)?;
            self.helpers.push(helper);
        }
        let announced = crate::jobs::Announced::default();
        let (services, found) = std::thread::scope(|scope| {
            let workers: Vec<_> = self.helpers[..sockets - 1]
                .iter_mut()
                .map(|helper| {
                    let announced = &announced;
                    scope.spawn(move || helper.run(crate::jobs::destination_lists(announced)))
                })
                .collect();
            // Closed on every path, a panic included: the workers wait
            // for services until it is.
            let closer = CloseOnDrop(&announced);
            let services = self.main.run(crate::jobs::services_announced(&announced));
            closer.close(services.is_err());
            let mut found = Vec::new();
            if services.is_ok() {
                found.push(self.main.run(crate::jobs::destination_lists(&announced)));
            }
            for worker in workers {
                found.push(
                    worker
                        .join()
                        .unwrap_or_else(|p| std::panic::resume_unwind(p)),
                );
            }
            (services, found)
        });
        let services = services?;
        let found = found.into_iter().collect::<Result<Vec<_>, Error>>()?;
        Ok(crate::jobs::assemble(services, found.into_iter().flatten()))
    }
}

/// Closes an [`Announced`](crate::jobs::Announced) list when dropped, so
/// that the threads waiting on it end even if its producer panics.
struct CloseOnDrop<'a>(&'a crate::jobs::Announced);

impl CloseOnDrop<'_> {
    fn close(self, abandon: bool) {
        self.0.close(abandon);
        // Closed as asked: the drop must not abandon what is left.
        std::mem::forget(self);
    }
}

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close(true);
    }
}

/// The methods both handles have; `$($async)?` / `$(.$await)?` make the
/// async variants.
macro_rules! ipvs_api {
    ($($async:ident)?, $($await:ident)?) => {
        /// Version and connection-table size (`IPVS_CMD_GET_INFO`).
        pub $($async)? fn info(&mut self) -> Result<crate::model::Info, Error> {
            self.run(crate::jobs::info())$(.$await)?
        }

        /// Every virtual service with its statistics (dump of
        /// `IPVS_CMD_GET_SERVICE`).
        pub $($async)? fn services(&mut self) -> Result<Vec<crate::model::ServiceStatus>, Error> {
            self.run(crate::jobs::services())$(.$await)?
        }

        /// One virtual service (`IPVS_CMD_GET_SERVICE`); `ESRCH` if absent.
        pub $($async)? fn service(
            &mut self,
            key: &crate::model::ServiceKey,
        ) -> Result<crate::model::ServiceStatus, Error> {
            self.run(crate::jobs::service(key))$(.$await)?
        }

        /// The destinations of a service (dump of `IPVS_CMD_GET_DEST`).
        pub $($async)? fn destinations(
            &mut self,
            key: &crate::model::ServiceKey,
        ) -> Result<Vec<crate::model::DestinationStatus>, Error> {
            self.run(crate::jobs::destinations(key))$(.$await)?
        }

        /// Add a virtual service (`IPVS_CMD_NEW_SERVICE`); `EEXIST` if present.
        pub $($async)? fn add_service(&mut self, service: &crate::model::Service) -> Result<(), Error> {
            self.one(crate::reconcile::Operation::AddService(service.clone()))$(.$await)?
        }

        /// Edit a virtual service (`IPVS_CMD_SET_SERVICE`); `ESRCH` if absent.
        pub $($async)? fn edit_service(&mut self, service: &crate::model::Service) -> Result<(), Error> {
            self.one(crate::reconcile::Operation::EditService(service.clone()))$(.$await)?
        }

        /// Delete a virtual service and its destinations
        /// (`IPVS_CMD_DEL_SERVICE`); `ESRCH` if absent.
        pub $($async)? fn delete_service(&mut self, key: &crate::model::ServiceKey) -> Result<(), Error> {
            self.one(crate::reconcile::Operation::DeleteService(*key))$(.$await)?
        }

        /// Add a destination (`IPVS_CMD_NEW_DEST`); `EEXIST` if present.
        pub $($async)? fn add_destination(
            &mut self,
            service: &crate::model::ServiceKey,
            destination: &crate::model::Destination,
        ) -> Result<(), Error> {
            self.one(crate::reconcile::Operation::AddDestination {
                service: *service,
                destination: destination.clone(),
            })$(.$await)?
        }

        /// Edit a destination (`IPVS_CMD_SET_DEST`); `ENOENT` if absent.
        pub $($async)? fn edit_destination(
            &mut self,
            service: &crate::model::ServiceKey,
            destination: &crate::model::Destination,
        ) -> Result<(), Error> {
            self.one(crate::reconcile::Operation::EditDestination {
                service: *service,
                destination: destination.clone(),
            })$(.$await)?
        }

        /// Delete a destination (`IPVS_CMD_DEL_DEST`); `ENOENT` if absent.
        pub $($async)? fn delete_destination(
            &mut self,
            service: &crate::model::ServiceKey,
            destination: &crate::model::DestinationKey,
        ) -> Result<(), Error> {
            self.one(crate::reconcile::Operation::DeleteDestination {
                service: *service,
                destination: *destination,
            })$(.$await)?
        }

        /// Connection timeouts (`IPVS_CMD_GET_CONFIG`).
        pub $($async)? fn timeouts(&mut self) -> Result<crate::model::Timeouts, Error> {
            self.run(crate::jobs::timeouts())$(.$await)?
        }

        /// Set connection timeouts (`IPVS_CMD_SET_CONFIG`); 0 keeps a value.
        pub $($async)? fn set_timeouts(&mut self, timeouts: &crate::model::Timeouts) -> Result<(), Error> {
            self.run(crate::jobs::ack(crate::jobs::set_timeouts_message(timeouts)))$(.$await)?
        }

        /// Running sync daemons (dump of `IPVS_CMD_GET_DAEMON`).
        pub $($async)? fn daemons(&mut self) -> Result<Vec<crate::model::SyncDaemon>, Error> {
            self.run(crate::jobs::daemons())$(.$await)?
        }

        /// Start a sync daemon (`IPVS_CMD_NEW_DAEMON`); `EEXIST` if running.
        pub $($async)? fn start_daemon(&mut self, daemon: &crate::model::SyncDaemon) -> Result<(), Error> {
            self.run(crate::jobs::ack(crate::jobs::start_daemon_message(daemon)))$(.$await)?
        }

        /// Stop a sync daemon (`IPVS_CMD_DEL_DAEMON`); `ESRCH` if not running.
        pub $($async)? fn stop_daemon(&mut self, state: crate::model::DaemonState) -> Result<(), Error> {
            self.run(crate::jobs::ack(crate::jobs::stop_daemon_message(state)))$(.$await)?
        }

        /// Zero the counters of one service, or of all (`IPVS_CMD_ZERO`).
        pub $($async)? fn zero(&mut self, service: Option<&crate::model::ServiceKey>) -> Result<(), Error> {
            self.run(crate::jobs::ack(crate::jobs::zero_message(service)))$(.$await)?
        }

        /// Delete every service (`IPVS_CMD_FLUSH`).
        pub $($async)? fn flush(&mut self) -> Result<(), Error> {
            self.run(crate::jobs::ack(crate::netlink::IpvsMessage::new(
                crate::netlink::Command::Flush,
                vec![],
            )))$(.$await)?
        }

        /// Send any request and return its reply, if any (then the
        /// acknowledgement).
        pub $($async)? fn request(
            &mut self,
            message: crate::netlink::IpvsMessage,
        ) -> Result<Option<crate::netlink::IpvsMessage>, Error> {
            self.run(crate::jobs::single(message, crate::netlink::exchange::Expect::Ack))$(.$await)?
        }

        /// Send any dump request and return every reply.
        pub $($async)? fn dump(
            &mut self,
            message: crate::netlink::IpvsMessage,
        ) -> Result<Vec<crate::netlink::IpvsMessage>, Error> {
            self.run(crate::jobs::dump(message))$(.$await)?
        }

        /// Send operations pipelined (many per `sendmsg`, acknowledgements
        /// matched by sequence number); one result per operation, in order.
        /// A failed operation does not stop the others.
        pub $($async)? fn execute(
            &mut self,
            operations: &[crate::reconcile::Operation],
        ) -> Result<Vec<Result<(), Error>>, Error> {
            self.run(crate::jobs::execute(operations))$(.$await)?
        }

        /// Read the kernel's state and compute the plan to reach `desired`,
        /// without applying it (dry run).
        pub $($async)? fn plan(
            &mut self,
            desired: &crate::reconcile::Desired,
        ) -> Result<crate::reconcile::Plan, Error> {
            let current = self.list()$(.$await)??;
            Ok(crate::reconcile::plan(&current, desired)?)
        }

        /// Read the kernel's state, compute the smallest plan to reach
        /// `desired`, and execute it. Applying the same desired state again
        /// performs no operation.
        pub $($async)? fn apply(
            &mut self,
            desired: &crate::reconcile::Desired,
        ) -> Result<crate::reconcile::ApplyReport, Error> {
            let plan = self.plan(desired)$(.$await)??;
            let results = self.execute(&plan.operations)$(.$await)??;
            Ok(crate::reconcile::ApplyReport { plan, results })
        }

        $($async)? fn one(&mut self, operation: crate::reconcile::Operation) -> Result<(), Error> {
            self.run(crate::jobs::ack(operation.to_message()))$(.$await)?
        }
    };
}

pub(crate) use ipvs_api;

impl Handle {
    ipvs_api!(,);
}
