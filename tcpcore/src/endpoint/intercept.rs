//! Any-IP interception (AI-01) and the decision before the handshake (AI-02): what a VPN
//! client or a tun2socks proxy needs to terminate TCP to every address behind a TUN.
//!
//! With interception on, a SYN to any unicast address and port that no listener takes goes
//! to an implicit listener of its own: the SYN queue, SYN cookies, the accept queue and
//! their bounds apply as for any listener ([`InterceptOptions::listen`]), and the connection's
//! local address is the one the client dialled. Demultiplexing stays O(1): the connection
//! table and the SYN queue are keyed by the whole 4-tuple whatever the local address.
//!
//! In [`InterceptMode::Decide`], a new SYN is not answered at once: it becomes a
//! [`ConnectionRequest`] ([`Endpoint::poll_request`]) and waits, with the first bytes of the
//! SYN to quote in an ICMP error, in a table bounded by [`InterceptOptions::max_pending`]
//! (like `tcp_max_syn_backlog`) until [`Endpoint::decide`] or
//! [`InterceptOptions::decision_timeout`]. The client's SYN retransmissions meanwhile are
//! absorbed (not answered, not queued again). While the table is full, new SYNs get a cookie
//! if the listener's cookie policy allows one (the connection then completes without a
//! decision and waits in the interception accept queue), and are dropped otherwise.
//!
//! The policy is protocol-neutral on purpose: [`Endpoint::intercepts`] says whether a
//! destination is intercepted at all, and [`Unreachable`] maps to ICMP codes for either
//! family, so UDP's demultiplexer can consult the same switch when no socket matches.

use core::time::Duration;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::demux::{Demux, FourTuple};
use super::listener::Listener;
use super::{ConnectionHandle, Endpoint, ListenOptions, SynCookies};
use crate::conn::SynInfo;
use crate::rng::SipKey;
use crate::wire::icmp::{self, IcmpRepr, QuotedTcp};
use crate::wire::{SeqNum, TcpFlags, TcpRepr};
use crate::{EndpointError, Instant};

/// Whether `dst` could be intercepted at all: a unicast address with a port.
pub(super) fn interceptable(dst: SocketAddr) -> bool {
    let unicast = match dst.ip() {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    };
    unicast && dst.port() != 0
}

/// Bytes of a held SYN kept to quote in an ICMP error: its IP and TCP headers with the
/// usual options (RFC 792 needs the IP header and 8 bytes; RFC 1812 §4.3.2.3 and RFC 4443
/// §2.4 (c) ask for as much as fits, which Linux does up to 576 bytes).
const QUOTE_LEN: usize = 96;

/// Most ICMP refusals waiting to be sent; beyond it they are dropped and counted.
const ICMP_QUEUE: usize = 1024;

/// What the endpoint does with SYNs that no listener takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InterceptMode {
    /// Nothing: they are answered with a RST (RFC 9293 §3.10.7.1), as without interception.
    #[default]
    Off,
    /// Accept them as a listener on every address and port would; the connections wait for
    /// [`Endpoint::accept_intercepted`] (AI-01).
    Accept,
    /// Hold each new SYN, unanswered, as a [`ConnectionRequest`] for the application to
    /// [`Endpoint::decide`] (AI-02).
    Decide,
}

/// The interception policy of an endpoint ([`Endpoint::set_interception`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterceptOptions {
    /// Off, accept, or decide first.
    pub mode: InterceptMode,
    /// The implicit listener's options: accept-queue `backlog`, `syn_backlog`, the cookie
    /// policy (which also applies while the pending-request table is full) and the rest.
    pub listen: ListenOptions,
    /// Most requests waiting for a decision (`tcp_max_syn_backlog`, 1024).
    pub max_pending: u32,
    /// How long a request waits for a decision before it is dropped: as long as a half-open
    /// entry lives with `tcp_synack_retries` = 5 (1 + 2 + 4 + 8 + 16 + 32 = 63 s).
    pub decision_timeout: Duration,
}

impl Default for InterceptOptions {
    fn default() -> Self {
        InterceptOptions {
            mode: InterceptMode::Off,
            listen: ListenOptions::default(),
            max_pending: 1024,
            decision_timeout: Duration::from_secs(63),
        }
    }
}

/// Names one connection request. A request for the same 4-tuple made after this one
/// expired or was decided has another id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestId {
    tuple: FourTuple,
    serial: u64,
}

impl RequestId {
    /// The request's 4-tuple: `local` is the address and port the client dialled.
    pub fn tuple(&self) -> FourTuple {
        self.tuple
    }
}

/// A SYN held for the application's decision (AI-02).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionRequest {
    /// Pass it to [`Endpoint::decide`].
    pub id: RequestId,
    /// What the SYN offered: ISN, window, MSS, window scale, SACK permitted, timestamp.
    pub syn: SynInfo,
}

impl ConnectionRequest {
    /// The address and port the client dialled.
    pub fn local(&self) -> SocketAddr {
        self.id.tuple.local
    }

    /// The client's address and port.
    pub fn remote(&self) -> SocketAddr {
        self.id.tuple.remote
    }
}

/// Which ICMP "destination unreachable" refuses a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unreachable {
    /// Host unreachable (ICMPv4 code 1, RFC 792; ICMPv6 code 3, address unreachable,
    /// RFC 4443 §3.1). Linux clients treat it as a soft error and keep retrying.
    Host,
    /// Port unreachable (ICMPv4 code 3; ICMPv6 code 4): the client fails with
    /// `ECONNREFUSED`.
    Port,
    /// Communication administratively prohibited (ICMPv4 code 13, RFC 1812 §5.2.7.1;
    /// ICMPv6 code 1).
    AdminProhibited,
}

impl Unreachable {
    /// The ICMP type and code for the family (`v4`).
    pub fn type_code(self, v4: bool) -> (u8, u8) {
        let code = match (self, v4) {
            (Unreachable::Host, true) => 1,
            (Unreachable::Port, true) => 3,
            (Unreachable::AdminProhibited, true) => 13,
            (Unreachable::Host, false) => 3,
            (Unreachable::Port, false) => 4,
            (Unreachable::AdminProhibited, false) => 1,
        };
        (if v4 { icmp::V4_DEST_UNREACHABLE } else { icmp::V6_DEST_UNREACHABLE }, code)
    }
}

/// The application's answer to a [`ConnectionRequest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Answer the SYN: the handshake proceeds as a passive open, and the connection is
    /// handed out by [`Endpoint::handle`] as a `NewConnection` when it completes (it also
    /// waits in the interception accept queue, [`Endpoint::accept_intercepted`]).
    Complete,
    /// Refuse with `<SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>` (RFC 9293 §3.10.7.1).
    Reset,
    /// Refuse with an ICMP destination unreachable quoting the SYN, sent from the dialled
    /// address.
    Unreachable(Unreachable),
    /// Forget the SYN without answering; the client's next retransmission is a new request.
    Drop,
}

/// Counters of interception ([`crate::EndpointStats::intercept`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct InterceptStats {
    /// SYNs held as connection requests.
    pub requests: u64,
    /// SYNs for a request already waiting: absorbed, not answered.
    pub absorbed: u64,
    /// New SYNs dropped because the pending-request table was full and cookies were off.
    pub pending_overflows: u64,
    /// New SYNs answered with a cookie because the pending-request table was full.
    pub overflow_cookies: u64,
    /// Requests dropped undecided after the decision timeout.
    pub expired: u64,
    /// Requests completed.
    pub completed: u64,
    /// Requests refused with RST.
    pub reset: u64,
    /// Requests refused with ICMP unreachable.
    pub unreachable: u64,
    /// Requests the application dropped.
    pub dropped: u64,
    /// ICMP refusals not sent: the SYN could not be quoted (IPv6 extension headers) or
    /// the queue was full.
    pub unsent_icmp: u64,
}

/// A held SYN.
#[derive(Clone, Copy, Debug)]
struct Pending {
    serial: u64,
    syn: SynInfo,
    /// The first bytes of the SYN's IP packet, for an ICMP quote.
    quote: [u8; QUOTE_LEN],
    quote_len: u8,
}

/// An ICMP refusal waiting for `poll_transmit`.
#[derive(Clone, Copy, Debug)]
struct Refusal {
    from: IpAddr,
    to: IpAddr,
    ty: u8,
    code: u8,
    quote: [u8; QUOTE_LEN],
    quote_len: u8,
}

/// The endpoint's interception state.
#[derive(Debug)]
pub(super) struct Intercept {
    opts: InterceptOptions,
    /// Index of the implicit listener while interception is on.
    listener: Option<u32>,
    /// Requests waiting for a decision, by 4-tuple (keyed hash: attackers choose them).
    pending: Demux<Pending>,
    /// Deadlines in arrival order (the timeout is fixed, so this is deadline order); stale
    /// items (decided requests) are skipped.
    order: VecDeque<(Instant, FourTuple, u64)>,
    /// Requests not yet handed out by `poll_request`, in arrival order; stale items skipped.
    fresh: VecDeque<(FourTuple, u64)>,
    serial: u64,
    icmp_out: VecDeque<Refusal>,
}

impl Intercept {
    pub(super) fn new(key: SipKey) -> Self {
        Intercept {
            opts: InterceptOptions::default(),
            listener: None,
            pending: Demux::new(key),
            order: VecDeque::new(),
            fresh: VecDeque::new(),
            serial: 0,
            icmp_out: VecDeque::new(),
        }
    }

    fn is_live(&self, t: FourTuple, serial: u64) -> bool {
        self.pending.get(t).is_some_and(|p| p.serial == serial)
    }

    /// Drop stale items at the fronts of both queues, and compact them when stale items
    /// dominate (amortized O(1) per request).
    fn trim(&mut self) {
        while let Some(&(_, t, s)) = self.order.front() {
            if self.is_live(t, s) {
                break;
            }
            self.order.pop_front();
        }
        let live = self.pending.len();
        if self.order.len() > 64 && self.order.len() > 2 * live {
            let pending = &self.pending;
            self.order.retain(|&(_, t, s)| pending.get(t).is_some_and(|p| p.serial == s));
        }
        if self.fresh.len() > 64 && self.fresh.len() > 2 * live {
            let pending = &self.pending;
            self.fresh.retain(|&(t, s)| pending.get(t).is_some_and(|p| p.serial == s));
        }
    }

    fn clear_pending(&mut self) {
        let tuples: Vec<_> = self.order.drain(..).map(|(_, t, _)| t).collect();
        for t in tuples {
            self.pending.remove(t);
        }
        self.fresh.clear();
    }
}

/// The IP packet `packet` cut to its own length (dropping link padding) and to
/// [`QUOTE_LEN`].
fn quote_of(packet: &[u8]) -> ([u8; QUOTE_LEN], u8) {
    let ip_len = match packet.first().map(|b| b >> 4) {
        Some(4) => packet.get(2..4).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))),
        Some(6) => packet.get(4..6).map(|b| 40 + usize::from(u16::from_be_bytes([b[0], b[1]]))),
        _ => None,
    };
    let n = ip_len.unwrap_or(0).min(packet.len()).min(QUOTE_LEN);
    let mut quote = [0u8; QUOTE_LEN];
    quote[..n].copy_from_slice(&packet[..n]);
    // `n <= QUOTE_LEN < 256`.
    (quote, n as u8)
}

impl Endpoint {
    /// Set the interception policy (AI-01, AI-02); off by default. Turning it off (or
    /// changing modes) forgets the requests waiting for a decision; turning it off also
    /// forgets the implicit listener's half-open entries and returns the connections still
    /// in its accept queue, for the owner to abort (as [`Endpoint::unlisten`]).
    pub fn set_interception(&mut self, opts: InterceptOptions) -> Vec<ConnectionHandle> {
        if opts.mode != InterceptMode::Decide || opts.mode != self.intercept.opts.mode {
            self.intercept.clear_pending();
            self.refresh_deadline();
        }
        let mut orphans = Vec::new();
        match (opts.mode, self.intercept.listener) {
            (InterceptMode::Off, Some(li)) => {
                orphans = self.remove_listener(li as usize);
                self.intercept.listener = None;
            }
            (InterceptMode::Off, None) => {}
            (_, Some(li)) => {
                if let Some(Some(l)) = self.listeners.get_mut(li as usize) {
                    l.set_options(opts.listen, self.cfg.somaxconn);
                }
            }
            (_, None) => {
                let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
                let mut l = Listener::new(any, opts.listen, self.cfg.somaxconn);
                l.intercept = true;
                self.intercept.listener = Some(self.add_listener(l) as u32);
            }
        }
        self.intercept.opts = opts;
        orphans
    }

    /// The interception policy.
    pub fn interception(&self) -> &InterceptOptions {
        &self.intercept.opts
    }

    /// Whether a segment or datagram to `dst` that no listener or socket takes is
    /// intercepted: interception is on and `dst` is a unicast address with a port.
    pub fn intercepts(&self, dst: SocketAddr) -> bool {
        self.intercept.opts.mode != InterceptMode::Off && interceptable(dst)
    }

    /// Take the oldest connection from the interception accept queue (AI-01).
    pub fn accept_intercepted(&mut self) -> Option<ConnectionHandle> {
        let li = self.intercept.listener?;
        let h = self.listeners.get_mut(li as usize)?.as_mut()?.accept_queue.pop_front()?;
        if let Some(Some(slot)) = self.slots.get_mut(h.0) {
            slot.queued_at = None;
        }
        Some(h)
    }

    /// Connections waiting in the interception accept queue.
    pub fn intercepted_queue_len(&self) -> usize {
        let l = self.intercept.listener.and_then(|li| self.listeners.get(li as usize));
        l.and_then(Option::as_ref).map_or(0, |l| l.accept_queue.len())
    }

    /// The next connection request not yet handed out, oldest first (AI-02). Call after
    /// [`Endpoint::handle`] until `None`; answer each with [`Endpoint::decide`].
    pub fn poll_request(&mut self) -> Option<ConnectionRequest> {
        while let Some((tuple, serial)) = self.intercept.fresh.pop_front() {
            match self.intercept.pending.get(tuple) {
                Some(p) if p.serial == serial => {
                    return Some(ConnectionRequest { id: RequestId { tuple, serial }, syn: p.syn })
                }
                _ => continue,
            }
        }
        None
    }

    /// Requests waiting for a decision.
    pub fn pending_requests(&self) -> usize {
        self.intercept.pending.len()
    }

    /// Answer a connection request (AI-02). [`Decision::Complete`] sends the SYN-ACK now, as
    /// a listener would have (the SYN queue, cookies and the accept queue's limits apply).
    ///
    /// # Errors
    /// [`EndpointError::RequestGone`] when the request was decided already, expired, or
    /// interception was turned off meanwhile.
    pub fn decide(
        &mut self,
        now: Instant,
        id: RequestId,
        decision: Decision,
    ) -> Result<(), EndpointError> {
        let li = self.intercept.listener.ok_or(EndpointError::RequestGone)?;
        let p = match self.intercept.pending.get(id.tuple) {
            Some(p) if p.serial == id.serial => *p,
            _ => return Err(EndpointError::RequestGone),
        };
        self.intercept.pending.remove(id.tuple);
        self.intercept.trim();
        self.refresh_deadline();
        let (t, st) = (id.tuple, &mut self.stats.intercept);
        match decision {
            Decision::Complete => {
                st.completed += 1;
                self.answer_syn(now, li, t, p.syn);
            }
            Decision::Reset => {
                st.reset += 1;
                self.stats.resets_sent += 1;
                // RFC 9293 §3.10.7.1: the SYN carried no ACK.
                let repr = TcpRepr {
                    src_port: t.local.port(),
                    dst_port: t.remote.port(),
                    seq: SeqNum(0),
                    ack: p.syn.seq + 1,
                    flags: TcpFlags::RST | TcpFlags::ACK,
                    ..TcpRepr::default()
                };
                self.queue(t.local.ip(), t.remote.ip(), repr);
            }
            Decision::Unreachable(u) => {
                st.unreachable += 1;
                self.queue_unreachable(t, u, &p);
            }
            Decision::Drop => st.dropped += 1,
        }
        Ok(())
    }

    /// Queue an ICMP destination unreachable from the dialled address quoting the SYN.
    fn queue_unreachable(&mut self, t: FourTuple, u: Unreachable, p: &Pending) {
        let quotable = QuotedTcp::new_checked(&p.quote[..usize::from(p.quote_len)]).is_ok();
        if !quotable || self.intercept.icmp_out.len() >= ICMP_QUEUE {
            self.stats.intercept.unsent_icmp += 1;
            return;
        }
        let (ty, code) = u.type_code(t.local.is_ipv4());
        self.intercept.icmp_out.push_back(Refusal {
            from: t.local.ip(),
            to: t.remote.ip(),
            ty,
            code,
            quote: p.quote,
            quote_len: p.quote_len,
        });
    }

    /// The index of the implicit listener, if `local` is intercepted.
    pub(super) fn intercept_listener(&self, local: SocketAddr) -> Option<usize> {
        self.intercepts(local).then_some(self.intercept.listener?).map(|li| li as usize)
    }

    /// Whether a listener on the unspecified address takes segments to `ip`. While
    /// interception is on it takes only the endpoint's own addresses
    /// ([`Endpoint::add_local_addr`], when any are given), as a wildcard socket does in
    /// Linux: the other addresses are left to interception.
    pub(super) fn wildcard_serves(&self, ip: IpAddr) -> bool {
        self.intercept.opts.mode == InterceptMode::Off
            || self.local_addrs.is_empty()
            || self.local_addrs.contains(&ip)
    }

    /// Whether SYNs at listener `li` wait for a decision.
    pub(super) fn intercept_decides(&self, li: u32) -> bool {
        self.intercept.listener == Some(li) && self.intercept.opts.mode == InterceptMode::Decide
    }

    /// AI-02: hold a new SYN at the implicit listener for the application's decision;
    /// absorb it if its request is already waiting.
    pub(super) fn hold_syn(
        &mut self,
        now: Instant,
        li: u32,
        tuple: FourTuple,
        syn: SynInfo,
        packet: &[u8],
    ) {
        let Some(Some(l)) = self.listeners.get_mut(li as usize) else { return };
        if l.accept_queue_full() {
            // As for any listener: Linux drops SYNs while the accept queue is full.
            self.stats.listen_overflows += 1;
            return;
        }
        let it = &mut self.intercept;
        if it.pending.contains(tuple) {
            self.stats.intercept.absorbed += 1;
            return;
        }
        if it.pending.len() >= it.opts.max_pending as usize {
            if l.opts.syn_cookies == SynCookies::Never {
                self.stats.intercept.pending_overflows += 1;
                return;
            }
            // RFC 4987 §3.6: keep nothing; a cookie-verified ACK makes the connection.
            l.last_overflow = Some(now);
            self.stats.intercept.overflow_cookies += 1;
            self.send_cookie(now, li, tuple, syn);
            return;
        }
        it.serial += 1;
        let serial = it.serial;
        let (quote, quote_len) = quote_of(packet);
        it.pending.insert(tuple, Pending { serial, syn, quote, quote_len });
        it.order.push_back((now + it.opts.decision_timeout, tuple, serial));
        it.fresh.push_back((tuple, serial));
        it.trim();
        self.stats.intercept.requests += 1;
        self.refresh_deadline();
    }

    /// The earliest decision deadline (possibly of a request decided since; handling it is
    /// then a no-op).
    pub(super) fn intercept_deadline(&self) -> Option<Instant> {
        self.intercept.order.front().map(|&(at, _, _)| at)
    }

    /// Drop the requests whose decision timeout has passed.
    pub(super) fn expire_requests(&mut self, now: Instant) {
        let it = &mut self.intercept;
        while let Some(&(at, t, serial)) = it.order.front() {
            if at > now {
                break;
            }
            it.order.pop_front();
            if it.is_live(t, serial) {
                it.pending.remove(t);
                self.stats.intercept.expired += 1;
            }
        }
        it.trim();
    }

    /// An ICMP refusal waits for [`Endpoint::poll_transmit`].
    #[inline]
    pub(super) fn intercept_transmit_pending(&self) -> bool {
        !self.intercept.icmp_out.is_empty()
    }

    /// Write the next queued ICMP refusal into `buf`.
    pub(super) fn poll_intercept_transmit(&mut self, buf: &mut [u8]) -> Option<usize> {
        while let Some(r) = self.intercept.icmp_out.pop_front() {
            let Ok(quote) = QuotedTcp::new_checked(&r.quote[..usize::from(r.quote_len)]) else {
                continue;
            };
            let repr = IcmpRepr::Error { ty: r.ty, code: r.code, rest: [0; 4], quote };
            if let Ok(n) = icmp::emit(buf, r.from, r.to, &repr) {
                return Some(n);
            }
            self.stats.intercept.unsent_icmp += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ai_02_a_pending_request_is_small() {
        // With its key in the table and its items in the two queues, a request costs about
        // 350 bytes: the default bound of 1024 keeps the table under 400 KiB.
        let size = core::mem::size_of::<Pending>();
        assert!(size <= 160, "Pending is {size} bytes");
    }
}
