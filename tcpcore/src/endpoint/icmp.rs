//! ICMP at the endpoint: answering echo requests to our own addresses (RFC 792, RFC 4443
//! §4.2, RFC 1122 §3.2.2.6) and routing "fragmentation needed" (RFC 1191), "packet too
//! big" (RFC 8201) and the other errors a connection acts on (destination unreachable, time
//! exceeded, parameter problem; RFC 1122 §4.2.3.9, RFC 5461) to the connection whose
//! segment they quote.
//!
//! Echo data is copied at `handle` time into one of a few preallocated buffers and written
//! into the reply at `poll_transmit` time, so answering a ping never allocates. Error messages
//! are checked here as far as the endpoint can (a connection of ours, a plausible MTU); the
//! sequence-number check of RFC 5927 §4.1 needs the connection's send window and is done by
//! [`crate::Connection::handle_path_mtu`] and [`crate::Connection::handle_icmp_error`].

use std::net::IpAddr;

use super::{ConnectionHandle, DatagramEvent, Endpoint, FourTuple, Reply};
use crate::wire::icmp::{self, Echo, IcmpError, IcmpMessage, IcmpRepr, QuotedTcp};
use crate::wire::{ipv4, ipv6, SeqNum};
use crate::{ConnectionError, Instant};

/// Most echo data we answer: a 1500-byte Ethernet MTU less the IPv4 and ICMP headers. Larger
/// requests are dropped and counted (`icmp_echo_dropped`), as is data that would make the
/// reply larger than the configured interface MTU.
pub const MAX_ECHO_DATA: usize = 1472;

/// Echo replies that can wait in the output queue at once; beyond it requests are dropped.
const ECHO_SLOTS: usize = 8;

/// Smallest MTU an ICMPv4 "fragmentation needed" may report: every IPv4 link carries 68
/// bytes (RFC 791 §3.2, RFC 1191 §3). Smaller values (including the 0 of pre-RFC 1191
/// routers) are dropped.
pub const MIN_MTU_V4: u16 = 68;
/// Smallest MTU an ICMPv6 "packet too big" may report: the IPv6 minimum link MTU (RFC 8200
/// §5); smaller reports are discarded (RFC 8201 §4).
pub const MIN_MTU_V6: u16 = 1280;

/// A smaller path MTU reported by ICMP for one connection: the payload of
/// [`DatagramEvent::PathMtu`]. The owner passes it on with
/// [`crate::Connection::handle_path_mtu`]`(now, mtu, seq)`, which checks that `seq` is in
/// flight (RFC 5927 §4.1) and lowers the segment size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathMtu {
    /// The reported MTU: at least the family's minimum ([`MIN_MTU_V4`], [`MIN_MTU_V6`]) and
    /// below the configured interface MTU.
    pub mtu: u16,
    /// The sequence number of the quoted segment.
    pub seq: SeqNum,
}

/// An ICMP error other than "too big" about one connection's segment: the payload of
/// [`DatagramEvent::IcmpError`]. The owner passes it on with
/// [`crate::Connection::handle_icmp_error`], which checks that `seq` is in flight
/// (RFC 5927 §4.1), aborts a connection still opening on a hard error, and otherwise keeps
/// the error as the cause to report if the connection later times out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpUnreachable {
    /// The error as Linux reports it (`icmp_err_convert`, `icmpv6_err_convert`).
    pub error: ConnectionError,
    /// A hard error (RFC 1122 §4.2.3.9: protocol or port unreachable; RFC 5461 §4 adds
    /// administratively prohibited; Linux's `fatal` flag): it aborts a connection in
    /// SYN-SENT. Soft errors (network or host unreachable) never abort.
    pub hard: bool,
    /// The sequence number of the quoted segment.
    pub seq: SeqNum,
}

/// What an ICMP error of type `ty` and code `code` means for TCP, as Linux maps it: the
/// error and whether it is hard. `None` for "too big", handled as a path MTU report.
fn classify(v4: bool, ty: u8, code: u8) -> Option<(ConnectionError, bool)> {
    use ConnectionError::{HostUnreachable as Host, NetworkUnreachable as Net};
    use ConnectionError::{Prohibited, ProtocolError, Refused};
    let hit = if v4 {
        match (ty, code) {
            // Linux `icmp_err_convert`, in code order (RFC 792, RFC 1122 §3.2.2.1, RFC 1812).
            (icmp::V4_DEST_UNREACHABLE, 0 | 11) => (Net, false),
            (icmp::V4_DEST_UNREACHABLE, 1 | 5 | 12) => (Host, false),
            (icmp::V4_DEST_UNREACHABLE, 2) => (ProtocolError, true),
            (icmp::V4_DEST_UNREACHABLE, 3) => (Refused, true),
            (icmp::V4_DEST_UNREACHABLE, icmp::V4_CODE_FRAG_NEEDED) => return None,
            (icmp::V4_DEST_UNREACHABLE, 6 | 9) => (Net, true),
            (icmp::V4_DEST_UNREACHABLE, 7 | 8 | 10 | 13..=15) => (Host, true),
            (icmp::V4_DEST_UNREACHABLE, _) => (Host, false),
            (icmp::V4_TIME_EXCEEDED, _) => (Host, false),
            _ => (ProtocolError, true),
        }
    } else {
        match (ty, code) {
            // Linux `icmpv6_err_convert` (RFC 4443 §3.1 codes).
            (icmp::V6_DEST_UNREACHABLE, 0) => (Net, false),
            (icmp::V6_DEST_UNREACHABLE, 2 | 3) => (Host, false),
            (icmp::V6_DEST_UNREACHABLE, 4) => (Refused, true),
            (icmp::V6_DEST_UNREACHABLE, 1 | 5 | 6) => (Prohibited, true),
            (icmp::V6_TIME_EXCEEDED, _) => (Host, false),
            _ => (ProtocolError, true),
        }
    };
    Some(hit)
}

/// Preallocated buffers for echo data waiting to be sent back.
#[derive(Debug)]
pub(super) struct EchoPool {
    bufs: Box<[[u8; MAX_ECHO_DATA]]>,
    /// Indices of free buffers. Invariant: each index appears at most once, either here or
    /// in exactly one queued [`Reply::Echo`].
    free: Vec<u8>,
}

impl EchoPool {
    pub(super) fn new() -> Self {
        Self::with_slots(ECHO_SLOTS as u8)
    }

    /// A pool of `n` buffers (also used for the quotes of the ICMP errors we send).
    pub(super) fn with_slots(n: u8) -> Self {
        EchoPool {
            bufs: vec![[0u8; MAX_ECHO_DATA]; usize::from(n)].into_boxed_slice(),
            free: (0..n).rev().collect(),
        }
    }

    /// Every buffer holds a queued reply.
    pub(super) fn is_full(&self) -> bool {
        self.free.is_empty()
    }

    /// Copy the concatenation of `parts`, cut at `max` bytes (at most [`MAX_ECHO_DATA`]),
    /// into a free buffer.
    pub(super) fn store_parts(&mut self, parts: [&[u8]; 2], max: usize) -> Option<u8> {
        let slot = self.free.pop()?;
        let Some(buf) = self.bufs.get_mut(usize::from(slot)) else {
            self.free.push(slot);
            return None;
        };
        let mut at = 0;
        for p in parts {
            let n = p.len().min(max.min(MAX_ECHO_DATA) - at);
            buf[at..at + n].copy_from_slice(&p[..n]);
            at += n;
        }
        Some(slot)
    }

    /// Copy `data` (at most [`MAX_ECHO_DATA`] bytes) into a free buffer.
    fn store(&mut self, data: &[u8]) -> Option<u8> {
        let slot = self.free.pop()?;
        match self.bufs.get_mut(usize::from(slot)).and_then(|b| b.get_mut(..data.len())) {
            Some(dst) => {
                dst.copy_from_slice(data);
                Some(slot)
            }
            None => {
                self.free.push(slot);
                None
            }
        }
    }

    /// The first `len` bytes of buffer `slot`.
    pub(super) fn get(&self, slot: u8, len: u16) -> &[u8] {
        self.bufs.get(usize::from(slot)).and_then(|b| b.get(..usize::from(len))).unwrap_or_default()
    }

    /// Return `slot` to the pool once its reply is written (or dropped).
    pub(super) fn release(&mut self, slot: u8) {
        if usize::from(slot) < self.bufs.len() && !self.free.contains(&slot) {
            self.free.push(slot);
        }
    }
}

impl Endpoint {
    /// Answer echo requests sent to `ip` (RFC 1122 §3.2.2.6: "Every host MUST implement an
    /// ICMP Echo server function"). The endpoint does not otherwise know its addresses, and
    /// requests to any other address are dropped: a stack behind a TUN device may see
    /// traffic for a whole subnet. Multicast, broadcast and unspecified addresses are
    /// refused (Linux `icmp_echo_ignore_broadcasts`).
    pub fn add_local_addr(&mut self, ip: IpAddr) {
        let bad = ip.is_unspecified()
            || ip.is_multicast()
            || matches!(ip, IpAddr::V4(a) if a.is_broadcast());
        if !bad && !self.local_addrs.contains(&ip) {
            self.local_addrs.push(ip);
        }
    }

    /// Stop answering echo requests to `ip`.
    pub fn remove_local_addr(&mut self, ip: IpAddr) {
        self.local_addrs.retain(|a| *a != ip);
    }

    /// The addresses whose echo requests are answered.
    pub fn local_addrs(&self) -> &[IpAddr] {
        &self.local_addrs
    }

    /// A packet that is not TCP: act on it if it is an ICMP message we understand, else pass
    /// it on to UDP.
    pub(super) fn on_not_tcp<'a>(
        &mut self,
        now: Instant,
        packet: &'a [u8],
    ) -> Option<DatagramEvent<'a>> {
        let msg = match icmp::parse(packet) {
            Ok(msg) => msg,
            Err(IcmpError::NotIcmp) => return self.on_udp(now, packet),
            Err(IcmpError::Unsupported) => {
                self.stats.icmp_ignored += 1;
                return None;
            }
            Err(e) => {
                self.stats.icmp_malformed += 1;
                tracing::trace!(reason = %e, "dropped malformed ICMP packet");
                return None;
            }
        };
        match msg.repr {
            IcmpRepr::EchoRequest(echo) => {
                self.on_echo_request(now, &msg, echo);
                None
            }
            IcmpRepr::EchoReply(_) => {
                // We never send echo requests.
                self.stats.icmp_ignored += 1;
                None
            }
            IcmpRepr::FragNeeded { next_hop_mtu, quote } => {
                self.on_too_big(&msg, u32::from(next_hop_mtu), quote, MIN_MTU_V4)
            }
            IcmpRepr::PacketTooBig { mtu, quote } => self.on_too_big(&msg, mtu, quote, MIN_MTU_V6),
            IcmpRepr::Error { ty, code, quote, .. } => self.on_icmp_error(&msg, ty, code, quote),
        }
    }

    /// The connection that sent `quote`, if the message is addressed to the quote's source
    /// (us); counted as unknown otherwise.
    fn quoted_connection(
        &mut self,
        msg: &IcmpMessage<'_>,
        quote: &QuotedTcp<'_>,
    ) -> Option<ConnectionHandle> {
        let tuple = FourTuple { local: quote.src(), remote: quote.dst() };
        let ours = msg.dst == tuple.local.ip() && quote.protocol() == ipv4::PROTO_TCP;
        let handle = if ours { self.table.get(tuple).copied() } else { None };
        if handle.is_none() {
            self.stats.icmp_unknown_connection += 1;
        }
        handle
    }

    /// RFC 1122 §4.2.3.9: pass destination unreachable, time exceeded and parameter problem
    /// to the connection whose segment they quote, classified as Linux does.
    fn on_icmp_error<'a>(
        &mut self,
        msg: &IcmpMessage<'_>,
        ty: u8,
        code: u8,
        quote: QuotedTcp<'_>,
    ) -> Option<DatagramEvent<'a>> {
        let Some((error, hard)) = classify(msg.src.is_ipv4(), ty, code) else {
            self.stats.icmp_ignored += 1;
            return None;
        };
        if quote.protocol() == crate::wire::udp::PROTO_UDP {
            return self.on_udp_icmp_error(msg, &quote, error, hard);
        }
        let handle = self.quoted_connection(msg, &quote)?;
        self.stats.icmp_errors_applied += 1;
        Some(DatagramEvent::IcmpError(handle, IcmpUnreachable { error, hard, seq: quote.seq() }))
    }

    /// RFC 792 / RFC 4443 §4.2: the reply goes from the address the request was sent to,
    /// with the request's identifier, sequence number and data.
    fn on_echo_request(&mut self, now: Instant, msg: &IcmpMessage<'_>, echo: Echo<'_>) {
        let ip_header = if msg.dst.is_ipv4() { ipv4::HEADER_LEN } else { ipv6::HEADER_LEN };
        let max = usize::from(self.cfg.conn.mtu)
            .saturating_sub(ip_header + icmp::HEADER_LEN)
            .min(MAX_ECHO_DATA);
        let ours = self.local_addrs.contains(&msg.dst);
        if !ours || echo.data.len() > max || self.echo_pool.is_full() {
            self.stats.icmp_echo_dropped += 1;
            return;
        }
        if !self.reply_allowed(now) {
            return;
        }
        let Some(slot) = self.echo_pool.store(echo.data) else {
            self.stats.icmp_echo_dropped += 1;
            return;
        };
        // `data.len() <= MAX_ECHO_DATA` fits in a u16.
        let reply = Reply::Echo {
            src: msg.dst,
            dst: msg.src,
            ident: echo.ident,
            seq_no: echo.seq_no,
            slot,
            len: echo.data.len() as u16,
        };
        if self.push_reply(reply) {
            self.stats.icmp_echo_replies += 1;
        } else {
            self.echo_pool.release(slot);
        }
    }

    /// RFC 1191 §6.3 / RFC 8201 §5.2: route a smaller MTU to the connection that sent the
    /// quoted segment. The message must be addressed to the quote's source (us), the MTU must
    /// be at least `min_mtu` and below the interface MTU (PMTU never grows from ICMP).
    fn on_too_big<'a>(
        &mut self,
        msg: &IcmpMessage<'_>,
        mtu: u32,
        quote: QuotedTcp<'_>,
        min_mtu: u16,
    ) -> Option<DatagramEvent<'a>> {
        if quote.protocol() == crate::wire::udp::PROTO_UDP {
            // UDP does no path MTU discovery here: it sends without DF.
            self.stats.icmp_ignored += 1;
            return None;
        }
        let handle = self.quoted_connection(msg, &quote)?;
        let mtu = match u16::try_from(mtu) {
            Ok(m) if m >= min_mtu && m < self.cfg.conn.mtu => m,
            _ => {
                self.stats.icmp_bad_mtu += 1;
                tracing::trace!(mtu, "ignored ICMP with an implausible MTU");
                return None;
            }
        };
        self.stats.icmp_errors_applied += 1;
        Some(DatagramEvent::PathMtu(handle, PathMtu { mtu, seq: quote.seq() }))
    }

    /// Write a queued echo reply into `buf`, releasing its buffer. `None` if it does not fit.
    pub(super) fn emit_echo_reply(
        &mut self,
        buf: &mut [u8],
        (src, dst): (IpAddr, IpAddr),
        (ident, seq_no): (u16, u16),
        (slot, len): (u8, u16),
    ) -> Option<usize> {
        let data = self.echo_pool.get(slot, len);
        let repr = IcmpRepr::EchoReply(Echo { ident, seq_no, data });
        let n = icmp::emit(buf, src, dst, &repr).ok();
        self.echo_pool.release(slot);
        n
    }
}
