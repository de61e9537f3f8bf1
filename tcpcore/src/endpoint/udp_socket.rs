//! A UDP socket (RFC 768, RFC 1122 §4.1): the caller-owned half, like [`crate::Connection`]
//! is for TCP. It holds the bounded queue of received datagrams (`SO_RCVBUF`), the queue of
//! datagrams to send (`SO_SNDBUF`), cut into IP fragments when larger than the MTU, and the
//! error an ICMP message left for the next call (Linux `sk_err`).
//!
//! Buffers: each queued datagram owns a `Vec<u8>`, taken from and returned to a small
//! per-socket pool, so after warm-up receiving and sending allocate nothing.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use super::UdpHandle;
use crate::wire::frag::{emit_fragment, emit_ip_header};
use crate::wire::udp::{self, UdpDatagram, HEADER_LEN, PROTO_UDP};
use crate::wire::{ipv4, ipv6};
use crate::{ConnectionError, Instant, ReadError, Transmit};

/// Bytes charged per queued datagram on top of its data, so empty datagrams cannot queue
/// without bound (Linux charges each skb's `truesize`).
pub const DATAGRAM_OVERHEAD: usize = 256;
/// Buffers each socket keeps for reuse.
const POOL: usize = 32;

/// An ICMP error about a datagram a UDP socket sent: the payload of
/// [`crate::DatagramEvent::UdpError`]; pass it to [`UdpSocket::handle_icmp_error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpIcmpError {
    /// The error as Linux reports it (`icmp_err_convert`, `icmpv6_err_convert`).
    pub error: ConnectionError,
    /// A hard error (port or protocol unreachable, prohibited): only these reach a
    /// connected socket (Linux `__udp4_lib_err` without `IP_RECVERR`).
    pub hard: bool,
    /// The destination of the datagram the error is about.
    pub remote: SocketAddr,
}

/// What [`UdpSocket::recv_from`] received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpRecv {
    /// Bytes copied into the caller's buffer.
    pub len: usize,
    /// The datagram's whole length: more than `len` when the buffer was too small and the
    /// rest was discarded (Linux `MSG_TRUNC`).
    pub datagram_len: usize,
    /// The sender.
    pub src: SocketAddr,
    /// The address and port it was sent to (`IP_PKTINFO`): ours, or any for an
    /// intercepting socket.
    pub dst: SocketAddr,
}

/// Why a send was refused: caller mistakes and a full queue; nothing about the network
/// except an ICMP error left by an earlier datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UdpSendError {
    /// [`UdpSocket::send`] on a socket that is not connected (`EDESTADDRREQ`).
    NotConnected,
    /// Port 0, an unspecified or multicast destination, mixed families, or no source
    /// address for a socket bound to the wildcard (`EINVAL`).
    InvalidAddress,
    /// More than 65507 (IPv4) or 65527 (IPv6) bytes (`EMSGSIZE`).
    MessageTooLong,
    /// The send queue is full (`SO_SNDBUF`); the driver drains it with `poll_transmit`.
    Blocked,
    /// An ICMP error about an earlier datagram of this connected socket (reported once).
    Failed(ConnectionError),
}

impl core::fmt::Display for UdpSendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            UdpSendError::NotConnected => f.write_str("destination address required"),
            UdpSendError::InvalidAddress => f.write_str("invalid address"),
            UdpSendError::MessageTooLong => f.write_str("message too long"),
            UdpSendError::Blocked => f.write_str("send queue full"),
            UdpSendError::Failed(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for UdpSendError {}

impl From<UdpSendError> for std::io::Error {
    fn from(e: UdpSendError) -> Self {
        use std::io::ErrorKind as K;
        let kind = match e {
            UdpSendError::NotConnected => K::NotConnected,
            UdpSendError::InvalidAddress | UdpSendError::MessageTooLong => K::InvalidInput,
            UdpSendError::Blocked => K::WouldBlock,
            UdpSendError::Failed(e) => e.kind(),
        };
        std::io::Error::new(kind, e)
    }
}

/// Counters of one UDP socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UdpSocketStats {
    /// Datagrams queued for the application.
    pub datagrams_in: u64,
    /// Datagrams dropped because the receive queue was full (Linux `UDP_MIB_RCVBUFERRORS`,
    /// the `drops` column of `/proc/net/udp`).
    pub rcvbuf_errors: u64,
    /// Datagrams the application queued for sending.
    pub datagrams_out: u64,
    /// IP packets written by `poll_transmit` (fragments count one each).
    pub packets_out: u64,
    /// ICMP errors that set the socket's pending error.
    pub icmp_errors: u64,
}

/// A datagram waiting to be read.
#[derive(Debug)]
struct RxDatagram {
    src: SocketAddr,
    dst: SocketAddr,
    data: Vec<u8>,
}

/// A datagram waiting to be sent: its UDP header (checksum done) and data.
#[derive(Debug)]
struct TxDatagram {
    src: SocketAddr,
    dst: SocketAddr,
    ident: u32,
    /// Bytes of `data` already sent as fragments.
    sent: usize,
    data: Vec<u8>,
}

/// A UDP socket: made by [`crate::Endpoint::udp_bind`], owned by the caller, fed by
/// [`crate::DatagramEvent::Udp`] and [`crate::DatagramEvent::UdpError`], drained by
/// [`UdpSocket::poll_transmit`]. Close it with [`crate::Endpoint::udp_close`].
#[derive(Debug)]
pub struct UdpSocket {
    handle: UdpHandle,
    local: SocketAddr,
    remote: Option<SocketAddr>,
    rx: VecDeque<RxDatagram>,
    /// Bytes charged by `rx` (data plus [`DATAGRAM_OVERHEAD`] each).
    rx_bytes: usize,
    rcvbuf: usize,
    tx: VecDeque<TxDatagram>,
    tx_bytes: usize,
    sndbuf: usize,
    pool: Vec<Vec<u8>>,
    /// Linux `sk_err`: reported, then cleared, by the next receive or send.
    error: Option<ConnectionError>,
    mtu: u16,
    /// IP identification of the next datagram (RFC 6864 §4.2: unique per source,
    /// destination and protocol while fragments may live; the start is keyed per socket).
    ident: u32,
    stats: UdpSocketStats,
    /// Made by [`crate::Endpoint::udp_intercept`]: may send from any address and port.
    intercept: bool,
}

impl UdpSocket {
    pub(super) fn new(
        handle: UdpHandle,
        local: SocketAddr,
        cfg: &crate::EndpointConfig,
        ident: u32,
    ) -> Self {
        UdpSocket {
            handle,
            local,
            remote: None,
            rx: VecDeque::new(),
            rx_bytes: 0,
            rcvbuf: cfg.udp_rcvbuf,
            tx: VecDeque::new(),
            tx_bytes: 0,
            sndbuf: cfg.udp_sndbuf,
            pool: Vec::new(),
            error: None,
            mtu: cfg.conn.mtu,
            ident,
            stats: UdpSocketStats::default(),
            intercept: false,
        }
    }

    /// The endpoint's handle of this socket.
    pub fn handle(&self) -> UdpHandle {
        self.handle
    }

    /// The bound address (the wildcard IP until `connect` picks one).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The connected peer, if any.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// Whether this is the interception socket ([`crate::Endpoint::udp_intercept`]).
    pub fn is_intercept(&self) -> bool {
        self.intercept
    }

    pub(super) fn set_intercept(&mut self) {
        self.intercept = true;
    }

    pub(super) fn set_addrs(&mut self, local: SocketAddr, remote: Option<SocketAddr>) {
        self.local = local;
        self.remote = remote;
    }

    /// Counters.
    pub fn stats(&self) -> &UdpSocketStats {
        &self.stats
    }

    /// The receive queue limit in bytes (`SO_RCVBUF`).
    pub fn recv_buffer_size(&self) -> usize {
        self.rcvbuf
    }

    /// Set the receive queue limit (`SO_RCVBUF`); datagrams already queued stay.
    pub fn set_recv_buffer_size(&mut self, bytes: usize) {
        self.rcvbuf = bytes;
    }

    /// The send queue limit in bytes (`SO_SNDBUF`).
    pub fn send_buffer_size(&self) -> usize {
        self.sndbuf
    }

    /// Set the send queue limit (`SO_SNDBUF`).
    pub fn set_send_buffer_size(&mut self, bytes: usize) {
        self.sndbuf = bytes;
    }

    /// The MTU outgoing datagrams are fragmented to (the interface MTU by default; IPv6
    /// never goes below 1280, RFC 8200 §5).
    pub fn mtu(&self) -> u16 {
        self.mtu
    }

    /// Set the MTU outgoing datagrams are fragmented to.
    pub fn set_mtu(&mut self, mtu: u16) {
        self.mtu = mtu;
    }

    /// Datagrams waiting to be read.
    pub fn recv_queue_len(&self) -> usize {
        self.rx.len()
    }

    /// A receive would not block: a datagram or an error waits.
    pub fn is_readable(&self) -> bool {
        !self.rx.is_empty() || self.error.is_some()
    }

    /// A send of `len` bytes would be queued now (`SO_SNDBUF` has room).
    pub fn is_writable(&self, len: usize) -> bool {
        self.tx.is_empty() || self.tx_bytes + len + DATAGRAM_OVERHEAD <= self.sndbuf
    }

    /// Queue a datagram the endpoint routed here ([`crate::DatagramEvent::Udp`]). Returns
    /// false when the receive queue is full and it was dropped (counted in
    /// `rcvbuf_errors`): whole datagrams or nothing (UDP-01). One datagram is always
    /// accepted into an empty queue, however large.
    pub fn handle_datagram(&mut self, d: &UdpDatagram<'_>) -> bool {
        let charge = d.payload.len() + DATAGRAM_OVERHEAD;
        if !self.rx.is_empty() && self.rx_bytes + charge > self.rcvbuf {
            self.stats.rcvbuf_errors += 1;
            return false;
        }
        let mut data = self.pool.pop().unwrap_or_default();
        data.clear();
        data.extend_from_slice(d.payload);
        self.rx.push_back(RxDatagram { src: d.src, dst: d.dst, data });
        self.rx_bytes += charge;
        self.stats.datagrams_in += 1;
        true
    }

    /// An ICMP error about one of our datagrams ([`crate::DatagramEvent::UdpError`]). As
    /// Linux without `IP_RECVERR`: a hard error on a connected socket whose peer it names
    /// becomes the error of the next receive or send (UDP-02); others are ignored.
    pub fn handle_icmp_error(&mut self, e: UdpIcmpError) {
        if e.hard && self.remote == Some(e.remote) {
            self.error = Some(e.error);
            self.stats.icmp_errors += 1;
        }
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        if self.pool.len() < POOL {
            self.pool.push(buf);
        }
    }

    /// Take the oldest datagram: copy what fits into `buf` and discard the rest (as
    /// `recvfrom` without `MSG_PEEK`).
    ///
    /// # Errors
    /// [`ReadError::Failed`] with the pending ICMP error (reported once, before any queued
    /// datagram, as Linux's `sock_error`); [`ReadError::WouldBlock`] when nothing waits.
    pub fn recv_from(&mut self, buf: &mut [u8]) -> Result<UdpRecv, ReadError> {
        let got = self.peek_from(buf)?;
        if let Some(d) = self.rx.pop_front() {
            self.rx_bytes -= d.data.len() + DATAGRAM_OVERHEAD;
            self.recycle(d.data);
        }
        Ok(got)
    }

    /// As [`UdpSocket::recv_from`], leaving the datagram queued (`MSG_PEEK`). A pending
    /// error is still reported and cleared, as Linux does.
    ///
    /// # Errors
    /// As [`UdpSocket::recv_from`].
    pub fn peek_from(&mut self, buf: &mut [u8]) -> Result<UdpRecv, ReadError> {
        if let Some(e) = self.error.take() {
            return Err(ReadError::Failed(e));
        }
        let d = self.rx.front().ok_or(ReadError::WouldBlock)?;
        let len = d.data.len().min(buf.len());
        buf[..len].copy_from_slice(&d.data[..len]);
        Ok(UdpRecv { len, datagram_len: d.data.len(), src: d.src, dst: d.dst })
    }

    /// Queue `data` for the connected peer.
    ///
    /// # Errors
    /// [`UdpSendError::NotConnected`] without a peer; otherwise as [`UdpSocket::send_to`].
    pub fn send(&mut self, data: &[u8]) -> Result<(), UdpSendError> {
        let dst = self.remote.ok_or(UdpSendError::NotConnected)?;
        self.send_to(dst, data)
    }

    /// Queue `data` for `dst` from the bound address.
    ///
    /// # Errors
    /// [`UdpSendError::InvalidAddress`] for a bad `dst` or a socket bound to the wildcard
    /// (use [`UdpSocket::send_from`]); [`UdpSendError::MessageTooLong`];
    /// [`UdpSendError::Blocked`] when the send queue is full; [`UdpSendError::Failed`] with
    /// a pending ICMP error (reported once).
    pub fn send_to(&mut self, dst: SocketAddr, data: &[u8]) -> Result<(), UdpSendError> {
        self.send_from(self.local.ip(), dst, data)
    }

    /// Queue `data` for `dst` with source address `src_ip`: the bound address, or any
    /// address of its family for a socket bound to the wildcard (`IP_PKTINFO` on send).
    ///
    /// # Errors
    /// As [`UdpSocket::send_to`]; `src_ip` unspecified, or another than a specific bound
    /// address, is [`UdpSendError::InvalidAddress`].
    pub fn send_from(
        &mut self,
        src_ip: IpAddr,
        dst: SocketAddr,
        data: &[u8],
    ) -> Result<(), UdpSendError> {
        let bad = dst.port() == 0
            || dst.ip().is_unspecified()
            || dst.ip().is_multicast()
            || src_ip.is_unspecified()
            || src_ip.is_ipv4() != dst.is_ipv4()
            || (!self.local.ip().is_unspecified() && src_ip != self.local.ip())
            || src_ip.is_ipv4() != self.local.is_ipv4();
        if bad {
            return Err(UdpSendError::InvalidAddress);
        }
        self.queue(SocketAddr::new(src_ip, self.local.port()), dst, data)
    }

    /// Queue `data` for `dst` from `src`, any address and port: the reply of an intercepted
    /// flow, sent from the destination its client dialled (AI-01). Only for the socket of
    /// [`crate::Endpoint::udp_intercept`].
    ///
    /// # Errors
    /// As [`UdpSocket::send_to`]; [`UdpSendError::InvalidAddress`] on another socket, or for
    /// an unspecified or multicast `src`, port 0, or mixed families.
    pub fn send_as(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        data: &[u8],
    ) -> Result<(), UdpSendError> {
        let bad = !self.intercept
            || dst.port() == 0
            || dst.ip().is_unspecified()
            || dst.ip().is_multicast()
            || src.port() == 0
            || src.ip().is_unspecified()
            || src.ip().is_multicast()
            || src.is_ipv4() != dst.is_ipv4();
        if bad {
            return Err(UdpSendError::InvalidAddress);
        }
        self.queue(src, dst, data)
    }

    /// Queue `data` from `src` to `dst` (both checked).
    fn queue(&mut self, src: SocketAddr, dst: SocketAddr, data: &[u8]) -> Result<(), UdpSendError> {
        let max = if dst.is_ipv4() { udp::MAX_PAYLOAD_V4 } else { udp::MAX_PAYLOAD_V6 };
        if data.len() > max {
            return Err(UdpSendError::MessageTooLong);
        }
        if let Some(e) = self.error.take() {
            return Err(UdpSendError::Failed(e));
        }
        if !self.is_writable(data.len()) {
            return Err(UdpSendError::Blocked);
        }
        let mut buf = self.pool.pop().unwrap_or_default();
        buf.clear();
        buf.resize(HEADER_LEN, 0);
        buf.extend_from_slice(data);
        let (hdr, payload) = buf.split_at_mut(HEADER_LEN);
        if let Ok(hdr) = <&mut [u8; HEADER_LEN]>::try_from(hdr) {
            udp::emit_header(hdr, src, dst, payload);
        }
        self.ident = self.ident.wrapping_add(1);
        self.tx_bytes += data.len() + DATAGRAM_OVERHEAD;
        self.tx.push_back(TxDatagram { src, dst, ident: self.ident, sent: 0, data: buf });
        self.stats.datagrams_out += 1;
        Ok(())
    }

    /// Whether [`UdpSocket::poll_transmit`] has something to write.
    pub fn wants_transmit(&self) -> bool {
        !self.tx.is_empty()
    }

    /// Write the next IP packet into `buf`: a whole datagram, or its next fragment when it
    /// is larger than the MTU (FR-02; RFC 791 §3.2, RFC 8200 §4.5). `buf` must hold the MTU.
    /// A datagram that cannot be written (a buffer too small) is dropped.
    pub fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        loop {
            let d = self.tx.front_mut()?;
            let ip_hdr = if d.src.is_ipv4() { ipv4::HEADER_LEN } else { ipv6::HEADER_LEN };
            let min_mtu = if d.src.is_ipv4() { 68 } else { 1280 };
            let mtu = usize::from(self.mtu.max(min_mtu));
            let written = if d.sent == 0 && ip_hdr + d.data.len() <= mtu {
                write_whole(buf, d).map(|n| (n, d.data.len()))
            } else {
                let ends = (d.src.ip(), d.dst.ip());
                emit_fragment(buf, ends, PROTO_UDP, d.ident, &d.data, d.sent, mtu).ok()
            };
            match written {
                Some((n, next)) => {
                    d.sent = next;
                    if d.sent >= d.data.len() {
                        self.finish_front();
                    }
                    self.stats.packets_out += 1;
                    return Some(Transmit::plain(n));
                }
                None => {
                    tracing::debug!(
                        len = d.data.len(),
                        "dropped a datagram that did not fit the buffer"
                    );
                    self.finish_front();
                }
            }
        }
    }

    fn finish_front(&mut self) {
        if let Some(d) = self.tx.pop_front() {
            self.tx_bytes -= d.data.len() - HEADER_LEN + DATAGRAM_OVERHEAD;
            self.recycle(d.data);
        }
    }
}

/// An unfragmented datagram: the IP header, then the UDP header and data as queued.
fn write_whole(buf: &mut [u8], d: &TxDatagram) -> Option<usize> {
    let ip_hdr = if d.src.is_ipv4() { ipv4::HEADER_LEN } else { ipv6::HEADER_LEN };
    let out = buf.get_mut(..ip_hdr + d.data.len())?;
    let (hdr, rest) = out.split_at_mut(ip_hdr);
    emit_ip_header(hdr, d.src.ip(), d.dst.ip(), PROTO_UDP, d.data.len(), d.ident, None).ok()?;
    rest.copy_from_slice(&d.data);
    Some(out.len())
}
