//! The sans-IO core shared by the blocking and the async handle.
//!
//! A [`Job`] owns no socket: the driver asks it for bytes to send
//! ([`Job::transmit`]), hands it every message received ([`Job::receive`]),
//! tells it about a receive-queue overrun ([`Job::overrun`]), and stops when
//! [`Job::is_done`]. Replies are matched to requests by sequence number;
//! messages of other sequence numbers (left over from an abandoned job) are
//! ignored.

use netlink_packet_core::{
    Emitable, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR,
    NetlinkBuffer, NetlinkHeader, Parseable,
};
use netlink_packet_generic::{
    GenlHeader, GenlMessage,
    constants::GENL_ID_CTRL,
    ctrl::{GenlCtrl, GenlCtrlCmd, nlas::GenlCtrlAttrs},
};
use nix::errno::Errno;

use super::{Command, IpvsMessage};
use crate::error::Error;

/// How many times a dump interrupted by `NLM_F_DUMP_INTR` is restarted.
pub(crate) const DUMP_ATTEMPTS: u32 = 8;

/// What a job may use to build requests.
#[derive(Debug)]
pub(crate) struct TxContext {
    /// The resolved IPVS family id.
    pub(crate) family: u16,
    /// The next sequence number.
    pub(crate) next_seq: u32,
    /// How many acknowledged requests may be outstanding at once.
    pub(crate) window: usize,
}

impl TxContext {
    pub(crate) fn take_seq(&mut self) -> u32 {
        let s = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        s
    }
}

/// Append one request (netlink header, genl header, attributes) to `out`.
pub(crate) fn push_message<F: Emitable>(
    out: &mut Vec<u8>,
    message_type: u16,
    flags: u16,
    seq: u32,
    genl: GenlHeader,
    payload: &F,
) {
    let len = 16 + 4 + payload.buffer_len();
    let start = out.len();
    out.resize(start + len, 0);
    let mut header = NetlinkHeader::default();
    header.length = len as u32;
    header.message_type = message_type;
    header.flags = flags;
    header.sequence_number = seq;
    header.port_number = 0;
    header.emit(&mut out[start..start + 16]);
    genl.emit(&mut out[start + 16..start + 20]);
    payload.emit(&mut out[start + 20..]);
}

/// One netlink message of a received datagram.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Incoming<'a> {
    pub(crate) message_type: u16,
    pub(crate) flags: u16,
    pub(crate) seq: u32,
    /// Everything after the 16-byte netlink header.
    pub(crate) payload: &'a [u8],
}

/// What an incoming message means for its request.
pub(crate) enum Meaning<'a> {
    /// `NLMSG_ERROR` with code 0.
    Ack,
    /// `NLMSG_ERROR` with a negative errno.
    Error(Errno),
    /// `NLMSG_DONE`, ending a dump.
    Done,
    /// A family message: genl header and attributes.
    Data(GenlHeader, &'a [u8]),
}

impl<'a> Incoming<'a> {
    pub(crate) fn meaning(&self) -> Result<Meaning<'a>, netlink_packet_core::DecodeError> {
        match self.message_type {
            NLMSG_ERROR => {
                let code: [u8; 4] = self
                    .payload
                    .get(..4)
                    .and_then(|s| s.try_into().ok())
                    .ok_or(netlink_packet_core::DecodeError::from(
                        "NLMSG_ERROR shorter than its code",
                    ))?;
                let code = i32::from_ne_bytes(code);
                if code == 0 {
                    Ok(Meaning::Ack)
                } else {
                    Ok(Meaning::Error(Errno::from_raw(code.saturating_neg())))
                }
            }
            NLMSG_DONE => Ok(Meaning::Done),
            _ => {
                let genl = GenlHeader::parse(self.payload)?;
                Ok(Meaning::Data(genl, &self.payload[4..]))
            }
        }
    }
}

/// Split a datagram into its messages. Stops with an error at the first
/// message whose length field does not fit.
pub(crate) fn split(
    datagram: &[u8],
) -> impl Iterator<Item = Result<Incoming<'_>, netlink_packet_core::DecodeError>> {
    let mut offset = 0usize;
    std::iter::from_fn(move || {
        if offset >= datagram.len() {
            return None;
        }
        let rest = &datagram[offset..];
        match NetlinkBuffer::new_checked(rest) {
            Ok(buf) => {
                let header = match NetlinkHeader::parse(&buf) {
                    Ok(h) => h,
                    Err(e) => {
                        offset = datagram.len();
                        return Some(Err(e));
                    }
                };
                let len = header.length as usize;
                let message = Incoming {
                    message_type: header.message_type,
                    flags: header.flags,
                    seq: header.sequence_number,
                    payload: &rest[16..len],
                };
                offset += (len + 3) & !3;
                Some(Ok(message))
            }
            Err(e) => {
                offset = datagram.len();
                Some(Err(e))
            }
        }
    })
}

/// A request/response conversation with the kernel.
pub(crate) trait Job {
    /// What the job produces.
    type Output;
    /// Append the requests that may be sent now.
    fn transmit(&mut self, tx: &mut TxContext, out: &mut Vec<u8>);
    /// Handle one received message.
    fn receive(&mut self, message: Incoming<'_>) -> Result<(), Error>;
    /// The receive queue overflowed: some replies are lost.
    fn overrun(&mut self) -> Result<(), Error>;
    /// Whether every reply has arrived.
    fn is_done(&self) -> bool;
    /// The result.
    fn finish(self) -> Result<Self::Output, Error>;
}

/// Look up the "IPVS" family id through nlctrl (`CTRL_CMD_GETFAMILY`).
#[derive(Debug, Default)]
pub(crate) struct FamilyLookup {
    seq: Option<u32>,
    result: Option<Result<u16, Error>>,
}

impl Job for FamilyLookup {
    type Output = u16;
    fn transmit(&mut self, tx: &mut TxContext, out: &mut Vec<u8>) {
        if self.seq.is_some() {
            return;
        }
        let seq = tx.take_seq();
        self.seq = Some(seq);
        let ctrl = GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName(super::FAMILY_NAME.to_string())],
        };
        let genl = GenlHeader {
            cmd: GenlCtrlCmd::GetFamily.into(),
            version: 2,
        };
        push_message(
            out,
            GENL_ID_CTRL,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            genl,
            &ctrl,
        );
    }
    fn receive(&mut self, message: Incoming<'_>) -> Result<(), Error> {
        if Some(message.seq) != self.seq || self.result.is_some() {
            return Ok(());
        }
        let malformed = |source| Error::Malformed {
            command: Command::Other(0),
            source,
        };
        match message.meaning().map_err(malformed)? {
            Meaning::Ack => self.result = Some(Err(Error::NotAvailable)),
            Meaning::Error(Errno::ENOENT) => self.result = Some(Err(Error::NotAvailable)),
            Meaning::Error(errno) => self.result = Some(Err(Error::FamilyLookup(errno))),
            Meaning::Done => {}
            Meaning::Data(genl, payload) => {
                use netlink_packet_core::ParseableParametrized;
                let ctrl = GenlCtrl::parse_with_param(payload, genl).map_err(malformed)?;
                let id = ctrl.nlas.iter().find_map(|a| match a {
                    GenlCtrlAttrs::FamilyId(id) => Some(*id),
                    _ => None,
                });
                self.result = Some(id.ok_or(Error::NotAvailable));
            }
        }
        Ok(())
    }
    fn overrun(&mut self) -> Result<(), Error> {
        // Ask again under a new sequence number.
        self.seq = None;
        Ok(())
    }
    fn is_done(&self) -> bool {
        self.result.is_some()
    }
    fn finish(self) -> Result<u16, Error> {
        self.result.unwrap_or(Err(Error::NotAvailable))
    }
}

/// What a request in a batch waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Only the acknowledgement.
    Ack,
    /// One reply message, then the acknowledgement.
    Reply,
}

/// Many acknowledged requests, pipelined: up to `window` outstanding, as
/// many per `sendmsg` as fit, each answered on its own.
#[derive(Debug)]
pub(crate) struct Batch {
    requests: Vec<(IpvsMessage, Expect)>,
    /// Sequence number of request 0 (requests take consecutive numbers).
    base: Option<u32>,
    sent: usize,
    outstanding: usize,
    replies: Vec<Option<IpvsMessage>>,
    results: Vec<Option<Result<(), Error>>>,
    completed: usize,
}

impl Batch {
    pub(crate) fn new(requests: Vec<(IpvsMessage, Expect)>) -> Batch {
        let n = requests.len();
        Batch {
            requests,
            base: None,
            sent: 0,
            outstanding: 0,
            replies: (0..n).map(|_| None).collect(),
            results: (0..n).map(|_| None).collect(),
            completed: 0,
        }
    }

    fn index_of(&self, seq: u32) -> Option<usize> {
        let base = self.base?;
        let i = seq.wrapping_sub(base) as usize;
        (i < self.sent).then_some(i)
    }

    fn complete(&mut self, i: usize, result: Result<(), Error>) {
        if self.results[i].is_none() {
            self.results[i] = Some(result);
            self.completed += 1;
            self.outstanding -= 1;
        }
    }
}

/// Bytes put in one `sendmsg`; well under the default socket send buffer.
const MAX_SEND: usize = 96 * 1024;

impl Job for Batch {
    type Output = Vec<(Result<(), Error>, Option<IpvsMessage>)>;
    fn transmit(&mut self, tx: &mut TxContext, out: &mut Vec<u8>) {
        while self.sent < self.requests.len()
            && self.outstanding < tx.window
            && out.len() < MAX_SEND
        {
            // Consecutive sequence numbers: restart the numbering if it
            // would wrap inside this batch.
            if self.base.is_none() {
                if tx
                    .next_seq
                    .checked_add(self.requests.len() as u32)
                    .is_none()
                {
                    tx.next_seq = 1;
                }
                self.base = Some(tx.next_seq);
            }
            let seq = tx.take_seq();
            let (msg, _) = &self.requests[self.sent];
            let genl = GenlHeader {
                cmd: msg.command.into(),
                version: super::FAMILY_VERSION,
            };
            push_message(out, tx.family, NLM_F_REQUEST | NLM_F_ACK, seq, genl, msg);
            self.sent += 1;
            self.outstanding += 1;
        }
    }
    fn receive(&mut self, message: Incoming<'_>) -> Result<(), Error> {
        let Some(i) = self.index_of(message.seq) else {
            return Ok(());
        };
        if self.results[i].is_some() {
            return Ok(());
        }
        let command = self.requests[i].0.command;
        let meaning = match message.meaning() {
            Ok(m) => m,
            Err(source) => {
                self.complete(i, Err(Error::Malformed { command, source }));
                return Ok(());
            }
        };
        match meaning {
            Meaning::Ack => {
                let missing = self.requests[i].1 == Expect::Reply && self.replies[i].is_none();
                self.complete(
                    i,
                    if missing {
                        Err(Error::MissingReply(command))
                    } else {
                        Ok(())
                    },
                );
            }
            Meaning::Error(errno) => self.complete(i, Err(Error::Kernel { command, errno })),
            Meaning::Done => {}
            Meaning::Data(genl, payload) => {
                match IpvsMessage::parse_payload(Command::from(genl.cmd), payload) {
                    Ok(reply) => self.replies[i] = Some(reply),
                    Err(source) => self.complete(i, Err(Error::Malformed { command, source })),
                }
            }
        }
        Ok(())
    }
    fn overrun(&mut self) -> Result<(), Error> {
        for i in 0..self.sent {
            if self.results[i].is_none() {
                let command = self.requests[i].0.command;
                self.complete(i, Err(Error::AckLost { command }));
            }
        }
        Ok(())
    }
    fn is_done(&self) -> bool {
        self.completed == self.requests.len()
    }
    fn finish(self) -> Result<Self::Output, Error> {
        Ok(self
            .results
            .into_iter()
            .zip(self.replies)
            .map(|(r, reply)| (r.unwrap_or(Err(Error::Timeout)), reply))
            .collect())
    }
}

/// What a [`Dump`] makes of its replies.
pub(crate) trait Collect {
    /// What the dump produces.
    type Output;
    /// Take in one reply: its generic-netlink command and what follows its
    /// `genlmsghdr`.
    fn reply(&mut self, command: Command, attributes: &[u8]) -> Result<(), Error>;
    /// The dump restarts: forget what was taken in.
    fn clear(&mut self);
    /// The result.
    fn finish(self) -> Self::Output;
}

/// Collects every reply as an [`IpvsMessage`].
#[derive(Debug)]
pub(crate) struct Messages {
    /// The request's command, for errors.
    request: Command,
    messages: Vec<IpvsMessage>,
}

impl Collect for Messages {
    type Output = Vec<IpvsMessage>;
    fn reply(&mut self, command: Command, attributes: &[u8]) -> Result<(), Error> {
        let message =
            IpvsMessage::parse_payload(command, attributes).map_err(|source| Error::Malformed {
                command: self.request,
                source,
            })?;
        self.messages.push(message);
        Ok(())
    }
    fn clear(&mut self) {
        self.messages.clear();
    }
    fn finish(self) -> Vec<IpvsMessage> {
        self.messages
    }
}

/// One dump (`NLM_F_DUMP`): every reply up to `NLMSG_DONE`, handed to a
/// [`Collect`], restarted when the kernel marks it interrupted
/// (`NLM_F_DUMP_INTR`, the table changed while it was being read) or when
/// replies were lost to an overrun.
#[derive(Debug)]
pub(crate) struct Dump<C = Messages> {
    request: IpvsMessage,
    seq: Option<u32>,
    attempts: u32,
    interrupted: bool,
    collect: C,
    result: Option<Result<(), Error>>,
}

impl Dump {
    /// A dump whose replies are kept as messages.
    pub(crate) fn new(request: IpvsMessage) -> Dump {
        let messages = Messages {
            request: request.command,
            messages: Vec::new(),
        };
        Dump::with(request, messages)
    }
}

impl<C: Collect> Dump<C> {
    /// A dump whose replies go to `collect`.
    pub(crate) fn with(request: IpvsMessage, collect: C) -> Dump<C> {
        Dump {
            request,
            seq: None,
            attempts: 0,
            interrupted: false,
            collect,
            result: None,
        }
    }

    fn restart(&mut self) -> Result<(), Error> {
        if self.attempts >= DUMP_ATTEMPTS {
            self.result = Some(Err(Error::DumpInterrupted {
                command: self.request.command,
                attempts: self.attempts,
            }));
        } else {
            self.seq = None;
            self.interrupted = false;
            self.collect.clear();
        }
        Ok(())
    }
}

impl<C: Collect> Job for Dump<C> {
    type Output = C::Output;
    fn transmit(&mut self, tx: &mut TxContext, out: &mut Vec<u8>) {
        if self.seq.is_some() || self.result.is_some() {
            return;
        }
        let seq = tx.take_seq();
        self.seq = Some(seq);
        self.attempts += 1;
        let genl = GenlHeader {
            cmd: self.request.command.into(),
            version: super::FAMILY_VERSION,
        };
        push_message(
            out,
            tx.family,
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            genl,
            &self.request,
        );
    }
    fn receive(&mut self, message: Incoming<'_>) -> Result<(), Error> {
        if Some(message.seq) != self.seq || self.result.is_some() {
            return Ok(());
        }
        let command = self.request.command;
        if message.flags & NLM_F_DUMP_INTR != 0 {
            self.interrupted = true;
        }
        match message
            .meaning()
            .map_err(|source| Error::Malformed { command, source })?
        {
            Meaning::Ack => {}
            Meaning::Error(errno) => self.result = Some(Err(Error::Kernel { command, errno })),
            Meaning::Done => {
                if self.interrupted {
                    tracing::debug!(?command, "dump interrupted, restarting");
                    self.restart()?;
                } else {
                    self.result = Some(Ok(()));
                }
            }
            Meaning::Data(genl, payload) => {
                self.collect.reply(Command::from(genl.cmd), payload)?;
            }
        }
        Ok(())
    }
    fn overrun(&mut self) -> Result<(), Error> {
        if self.seq.is_some() && self.result.is_none() {
            self.restart()?;
        }
        Ok(())
    }
    fn is_done(&self) -> bool {
        self.result.is_some()
    }
    fn finish(self) -> Result<C::Output, Error> {
        self.result.unwrap_or(Err(Error::Timeout))?;
        Ok(self.collect.finish())
    }
}

/// A job followed by a conversion of its output.
pub(crate) struct Map<J, F> {
    pub(crate) job: J,
    pub(crate) f: F,
}

impl<J: Job, T, F: FnOnce(J::Output) -> Result<T, Error>> Job for Map<J, F> {
    type Output = T;
    fn transmit(&mut self, tx: &mut TxContext, out: &mut Vec<u8>) {
        self.job.transmit(tx, out)
    }
    fn receive(&mut self, message: Incoming<'_>) -> Result<(), Error> {
        self.job.receive(message)
    }
    fn overrun(&mut self) -> Result<(), Error> {
        self.job.overrun()
    }
    fn is_done(&self) -> bool {
        self.job.is_done()
    }
    fn finish(self) -> Result<T, Error> {
        (self.f)(self.job.finish()?)
    }
}

/// Dumps run one after the other (the kernel allows one dump in progress
/// per socket), each built from the results so far.
pub(crate) struct Sequence<S, C: Collect, N> {
    pub(crate) state: S,
    pub(crate) current: Option<Dump<C>>,
    /// Build the next dump from the state, or `None` when finished.
    pub(crate) next: N,
    pub(crate) error: Option<Error>,
    /// Take in one dump's outcome; an error returned ends the sequence.
    pub(crate) absorb: Absorb<S, C>,
}

/// How a [`Sequence`] takes in one dump's outcome.
pub(crate) type Absorb<S, C> =
    fn(&mut S, Result<<C as Collect>::Output, Error>) -> Result<(), Error>;

impl<S, C: Collect, N: FnMut(&mut S) -> Option<Dump<C>>> Sequence<S, C, N> {
    pub(crate) fn new(mut state: S, mut next: N, absorb: Absorb<S, C>) -> Self {
        let current = next(&mut state);
        Sequence {
            state,
            current,
            next,
            error: None,
            absorb,
        }
    }

    fn advance(&mut self) {
        while let Some(dump) = self.current.take_if(|d| d.is_done()) {
            match (self.absorb)(&mut self.state, dump.finish()) {
                Ok(()) => self.current = (self.next)(&mut self.state),
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            }
        }
    }
}

impl<S, C: Collect, N: FnMut(&mut S) -> Option<Dump<C>>> Job for Sequence<S, C, N> {
    type Output = S;
    fn transmit(&mut self, tx: &mut TxContext, out: &mut Vec<u8>) {
        if let Some(d) = &mut self.current {
            d.transmit(tx, out)
        }
    }
    fn receive(&mut self, message: Incoming<'_>) -> Result<(), Error> {
        if let Some(d) = &mut self.current {
            d.receive(message)?;
        }
        self.advance();
        Ok(())
    }
    fn overrun(&mut self) -> Result<(), Error> {
        if let Some(d) = &mut self.current {
            d.overrun()?;
        }
        self.advance();
        Ok(())
    }
    fn is_done(&self) -> bool {
        self.error.is_some() || self.current.is_none()
    }
    fn finish(self) -> Result<S, Error> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.state),
        }
    }
}

/// Parse every message of a datagram as an IPVS generic-netlink message
/// (control messages are given as they are). Used by the fuzz target and the
/// golden tests; never panics, and what it returns serialises without
/// panicking (header lengths are recomputed from the decoded payloads).
pub fn decode_datagram(
    datagram: &[u8],
) -> Result<
    Vec<netlink_packet_core::NetlinkMessage<GenlMessage<IpvsMessage>>>,
    netlink_packet_core::DecodeError,
> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < datagram.len() {
        let buf = NetlinkBuffer::new_checked(&datagram[offset..])?;
        let len = buf.length() as usize;
        let mut message =
            netlink_packet_core::NetlinkMessage::deserialize(&datagram[offset..offset + len])?;
        // The header's length is recomputed from what was kept: a NOOP's
        // payload is dropped by the decoder, and serialising a message whose
        // length field exceeds its payload would panic in
        // netlink-packet-core (found by the fuzz target).
        message.finalize();
        out.push(message);
        offset += (len + 3) & !3;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{NLMSG_DONE, NLMSG_ERROR};
    const NLM_F_MULTI: u16 = 2;

    fn tx() -> TxContext {
        TxContext {
            family: 0x20,
            next_seq: 100,
            window: 2,
        }
    }

    /// A kernel message as `netlink_ack` / `genlmsg_put` would build it.
    fn kernel(message_type: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let len = 16 + payload.len();
        out.extend_from_slice(&(len as u32).to_ne_bytes());
        out.extend_from_slice(&message_type.to_ne_bytes());
        out.extend_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(payload);
        out.resize(out.len().next_multiple_of(4), 0);
        out
    }

    fn ack(seq: u32, errno: i32) -> Vec<u8> {
        let mut payload = (-errno).to_ne_bytes().to_vec();
        payload.extend_from_slice(&[0; 16]);
        kernel(NLMSG_ERROR, 0x100, seq, &payload)
    }

    fn feed<J: Job>(job: &mut J, datagram: &[u8]) {
        for m in split(datagram) {
            job.receive(m.unwrap()).unwrap();
        }
    }

    #[test]
    fn push_message_matches_netlink_packet_core() {
        let msg = IpvsMessage::new(Command::Flush, vec![]);
        let mut out = Vec::new();
        let genl = GenlHeader {
            cmd: 17,
            version: 1,
        };
        push_message(&mut out, 0x20, NLM_F_REQUEST | NLM_F_ACK, 9, genl, &msg);
        assert_eq!(
            out,
            msg.to_netlink_bytes(0x20, NLM_F_REQUEST | NLM_F_ACK, 9, 0)
        );
    }

    /// Acknowledgements are matched by sequence number, in any order; the
    /// window bounds what is outstanding; errors are per request and carry
    /// the command and errno.
    #[test]
    fn batch_pipelines_within_window_and_matches_acks() {
        let requests = vec![
            (IpvsMessage::new(Command::NewService, vec![]), Expect::Ack),
            (
                IpvsMessage::new(Command::NewDestination, vec![]),
                Expect::Ack,
            ),
            (IpvsMessage::new(Command::DelService, vec![]), Expect::Ack),
        ];
        let mut batch = Batch::new(requests);
        let mut tx = tx();
        let mut out = Vec::new();
        batch.transmit(&mut tx, &mut out);
        assert_eq!(split(&out).count(), 2, "window of 2");
        feed(&mut batch, &ack(101, libc_errno(Errno::ENOENT)));
        out.clear();
        batch.transmit(&mut tx, &mut out);
        assert_eq!(split(&out).count(), 1);
        // A stale reply of another job is ignored.
        feed(&mut batch, &ack(7, 0));
        let mut both = ack(102, libc_errno(Errno::ESRCH));
        both.extend(ack(100, 0));
        feed(&mut batch, &both);
        assert!(batch.is_done());
        let results = batch.finish().unwrap();
        assert!(results[0].0.is_ok());
        assert!(matches!(
            results[1].0,
            Err(Error::Kernel {
                command: Command::NewDestination,
                errno: Errno::ENOENT
            })
        ));
        assert!(matches!(
            results[2].0,
            Err(Error::Kernel {
                command: Command::DelService,
                errno: Errno::ESRCH
            })
        ));
    }

    fn libc_errno(e: Errno) -> i32 {
        e as i32
    }

    /// An overrun loses acknowledgements: the outstanding requests fail
    /// with `AckLost`, the job ends instead of waiting forever.
    #[test]
    fn batch_overrun_reports_lost_acks() {
        let mut batch = Batch::new(vec![(
            IpvsMessage::new(Command::NewService, vec![]),
            Expect::Ack,
        )]);
        let mut out = Vec::new();
        batch.transmit(&mut tx(), &mut out);
        batch.overrun().unwrap();
        assert!(batch.is_done());
        assert!(matches!(
            batch.finish().unwrap()[0].0,
            Err(Error::AckLost { .. })
        ));
    }

    /// A dump whose messages carry NLM_F_DUMP_INTR is restarted under a new
    /// sequence number and only the clean attempt's replies are kept.
    #[test]
    fn interrupted_dump_restarts() {
        let mut dump = Dump::new(IpvsMessage::new(Command::GetService, vec![]));
        let mut tx = tx();
        let mut out = Vec::new();
        dump.transmit(&mut tx, &mut out);
        let first = split(&out).next().unwrap().unwrap();
        assert_eq!(first.flags, NLM_F_REQUEST | NLM_F_DUMP);
        let data = [1u8, 1, 0, 0];
        feed(
            &mut dump,
            &kernel(0x20, NLM_F_MULTI | NLM_F_DUMP_INTR, 100, &data),
        );
        feed(
            &mut dump,
            &kernel(NLMSG_DONE, NLM_F_MULTI | NLM_F_DUMP_INTR, 100, &[0; 4]),
        );
        assert!(!dump.is_done());
        out.clear();
        dump.transmit(&mut tx, &mut out);
        assert_eq!(split(&out).next().unwrap().unwrap().seq, 101);
        feed(&mut dump, &kernel(0x20, NLM_F_MULTI, 101, &data));
        feed(&mut dump, &kernel(0x20, NLM_F_MULTI, 101, &data));
        feed(&mut dump, &kernel(NLMSG_DONE, NLM_F_MULTI, 101, &[0; 4]));
        assert!(dump.is_done());
        assert_eq!(dump.finish().unwrap().len(), 2);
    }

    /// A dump interrupted on every attempt gives up with a typed error.
    #[test]
    fn dump_gives_up_after_attempts() {
        let mut dump = Dump::new(IpvsMessage::new(Command::GetService, vec![]));
        let mut tx = tx();
        for _ in 0..DUMP_ATTEMPTS {
            let mut out = Vec::new();
            dump.transmit(&mut tx, &mut out);
            let seq = split(&out).next().unwrap().unwrap().seq;
            feed(
                &mut dump,
                &kernel(NLMSG_DONE, NLM_F_MULTI | NLM_F_DUMP_INTR, seq, &[0; 4]),
            );
        }
        assert!(dump.is_done());
        assert!(matches!(
            dump.finish(),
            Err(Error::DumpInterrupted {
                attempts: DUMP_ATTEMPTS,
                ..
            })
        ));
    }

    /// Truncated and oversized length fields are errors, not panics.
    #[test]
    fn split_rejects_bad_lengths() {
        let mut m = kernel(NLMSG_DONE, 0, 1, &[0; 4]);
        m[0] = 200;
        assert!(split(&m).next().unwrap().is_err());
        m[0] = 3;
        assert!(split(&m).next().unwrap().is_err());
        assert!(split(&m[..10]).next().unwrap().is_err());
    }
}
