//! UDP at the endpoint (RFC 768, RFC 1122 §4.1): the socket table and its keyed demux,
//! ephemeral ports in UDP's own port space (RFC 6056 §3.3.3, the same algorithm as TCP's
//! with its own key), ICMP port unreachable for datagrams to closed ports (rate-limited, see
//! `icmp_out.rs`), and ICMP errors routed to the socket that sent the quoted datagram.
//!
//! Demux, as Linux's `compute_score` ranks sockets: a connected socket matching the whole
//! 4-tuple, else an unconnected socket bound to the destination address and port, else one
//! bound to the wildcard address of that family and the port. Each step is one lookup in a
//! table hashed with SipHash under a secret key (the same table type as TCP's), so the cost
//! per datagram is O(1) whatever the number of sockets and attackers cannot flood one bucket.
//! No `SO_REUSEADDR`/`SO_REUSEPORT`: a bind conflicting with another socket's address is
//! `AddrInUse`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::demux::{Demux, FourTuple};
use super::ports::{conflicts, PortAllocator};
use super::udp_socket::{UdpIcmpError, UdpSocket};
use super::{DatagramEvent, Endpoint};
use crate::rng::SipKey;
use crate::wire::icmp::{IcmpMessage, QuotedTcp};
use crate::wire::udp::{self, UdpError};
use crate::{ConnectionError, EndpointError, Instant};

/// Identifies a UDP socket of this endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UdpHandle(pub usize);

/// The remote of an unconnected socket's table key.
const UNCONNECTED: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

/// The UDP sockets of one endpoint.
#[derive(Debug)]
pub(super) struct UdpTable {
    /// `(local, remote or UNCONNECTED)` → socket.
    demux: Demux<UdpHandle>,
    /// Every socket's local address, by port, for bind conflicts.
    by_local: BTreeMap<(u16, IpAddr), UdpHandle>,
    /// Per handle: its local address and peer.
    slots: Vec<Option<(SocketAddr, Option<SocketAddr>)>>,
    free: Vec<usize>,
    ports: PortAllocator,
    /// Key of the sockets' first IP identifications.
    ident_key: SipKey,
    /// The socket taking datagrams no other socket takes (`udp_intercept.rs`).
    pub(super) intercept: Option<UdpHandle>,
}

impl UdpTable {
    pub(super) fn new(keys: [SipKey; 3], range: (u16, u16)) -> Self {
        let [demux, ports, ident_key] = keys;
        UdpTable {
            demux: Demux::new(demux),
            by_local: BTreeMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            ports: PortAllocator::new(ports, range.0, range.1),
            ident_key,
            intercept: None,
        }
    }

    fn key(local: SocketAddr, remote: Option<SocketAddr>) -> FourTuple {
        FourTuple { local, remote: remote.unwrap_or(UNCONNECTED) }
    }

    /// Whether a socket is bound to an address conflicting with `local`.
    fn in_use(&self, local: SocketAddr) -> bool {
        let port = local.port();
        let (lo, hi) = ((port, IpAddr::from([0u8; 4])), (port, IpAddr::from([0xffu8; 16])));
        self.by_local.range(lo..=hi).any(|(&(p, ip), _)| conflicts(local, SocketAddr::new(ip, p)))
    }

    /// The socket a datagram from `remote` to `local` is for.
    fn lookup(&self, local: SocketAddr, remote: SocketAddr) -> Option<UdpHandle> {
        let wildcard = SocketAddr::new(
            if local.is_ipv4() {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            } else {
                IpAddr::from([0u16; 8])
            },
            local.port(),
        );
        self.demux
            .get(Self::key(local, Some(remote)))
            .or_else(|| self.demux.get(Self::key(local, None)))
            .or_else(|| self.demux.get(Self::key(wildcard, None)))
            .copied()
    }

    /// A handle for a new socket at `local`, not in the demux yet, and its first IP
    /// identification.
    pub(super) fn new_slot(&mut self, local: SocketAddr) -> (UdpHandle, u32) {
        let idx = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        self.slots[idx] = Some((local, None));
        let ident = super::isn::hash_tuple(&self.ident_key, local, UNCONNECTED) as u32;
        (UdpHandle(idx), ident)
    }

    /// Sockets bound.
    pub(super) fn len(&self) -> usize {
        self.by_local.len()
    }
}

impl Endpoint {
    /// Bind a UDP socket to `addr` (an unspecified IP receives on every address of its
    /// family; port 0 picks a free ephemeral port, RFC 6056 §3.3.3). The socket is the
    /// caller's, like a [`crate::Connection`].
    ///
    /// # Errors
    /// [`EndpointError::InvalidAddress`] for a multicast IP; [`EndpointError::AddrInUse`]
    /// when a socket is bound to a conflicting address (same port, same IP or either the
    /// wildcard); [`EndpointError::AddrNotAvailable`] when no ephemeral port is free.
    pub fn udp_bind(&mut self, addr: SocketAddr) -> Result<UdpSocket, EndpointError> {
        if addr.ip().is_multicast() {
            return Err(EndpointError::InvalidAddress);
        }
        let local = if addr.port() == 0 {
            let mut walk = self.udp.ports.walk(addr.ip(), SocketAddr::new(addr.ip(), 0));
            let t = &self.udp;
            let (i, port) = walk
                .find(|&(_, p)| !t.in_use(SocketAddr::new(addr.ip(), p)))
                .ok_or(EndpointError::AddrNotAvailable)?;
            self.udp.ports.took(i);
            SocketAddr::new(addr.ip(), port)
        } else if self.udp.in_use(addr) {
            return Err(EndpointError::AddrInUse);
        } else {
            addr
        };
        let (h, ident) = self.udp.new_slot(local);
        let t = &mut self.udp;
        t.by_local.insert((local.port(), local.ip()), h);
        t.demux.insert(UdpTable::key(local, None), h);
        Ok(UdpSocket::new(h, local, &self.cfg, ident))
    }

    /// Connect `sock` to `remote`: only its datagrams are delivered to it from now on, and
    /// ICMP errors about what it sends there become its pending error. A socket bound to the
    /// wildcard takes `local_ip` as its address (Linux `ip4_datagram_connect` sets the source
    /// address the route gives); connecting again changes the peer.
    ///
    /// # Errors
    /// [`EndpointError::InvalidAddress`] for port 0, an unspecified or multicast remote,
    /// mixed families, an unspecified `local_ip`, or a socket this endpoint does not know.
    pub fn udp_connect(
        &mut self,
        sock: &mut UdpSocket,
        local_ip: IpAddr,
        remote: SocketAddr,
    ) -> Result<(), EndpointError> {
        let old = sock.local_addr();
        let bad = remote.port() == 0
            || remote.ip().is_unspecified()
            || remote.ip().is_multicast()
            || remote.is_ipv4() != old.is_ipv4()
            || local_ip.is_ipv4() != old.is_ipv4()
            || (old.ip().is_unspecified() && local_ip.is_unspecified());
        let h = sock.handle();
        let t = &mut self.udp;
        let Some(Some((local, peer))) = t.slots.get(h.0).copied() else {
            return Err(EndpointError::InvalidAddress);
        };
        if bad || local != old {
            return Err(EndpointError::InvalidAddress);
        }
        let new_local = if local.ip().is_unspecified() {
            SocketAddr::new(local_ip, local.port())
        } else {
            local
        };
        t.demux.remove(UdpTable::key(local, peer));
        t.by_local.remove(&(local.port(), local.ip()));
        t.by_local.insert((new_local.port(), new_local.ip()), h);
        t.demux.insert(UdpTable::key(new_local, Some(remote)), h);
        t.slots[h.0] = Some((new_local, Some(remote)));
        sock.set_addrs(new_local, Some(remote));
        Ok(())
    }

    /// Unbind the socket `handle`: datagrams to its address get port unreachable again.
    pub fn udp_close(&mut self, handle: UdpHandle) {
        let t = &mut self.udp;
        let Some((local, peer)) = t.slots.get_mut(handle.0).and_then(Option::take) else { return };
        t.demux.remove(UdpTable::key(local, peer));
        t.by_local.remove(&(local.port(), local.ip()));
        if t.intercept == Some(handle) {
            t.intercept = None;
        }
        t.free.push(handle.0);
    }

    /// UDP sockets bound.
    pub fn udp_socket_count(&self) -> usize {
        self.udp.len()
    }

    /// A packet neither TCP nor ICMP: a UDP datagram for a socket
    /// ([`DatagramEvent::Udp`]), or for none (answered with port unreachable), or dropped
    /// and counted by reason.
    pub(super) fn on_udp<'a>(
        &mut self,
        now: Instant,
        packet: &'a [u8],
    ) -> Option<DatagramEvent<'a>> {
        let verify = !self.cfg.conn.offload.rx_checksum;
        let d = match udp::parse_with(packet, verify) {
            Ok(d) => d,
            Err(UdpError::NotUdp) => {
                self.stats.parse_errors[crate::wire::ParseError::NotTcp.index()] += 1;
                return None;
            }
            Err(e) => {
                match e {
                    UdpError::Ip(e) => self.stats.parse_errors[e.index()] += 1,
                    UdpError::Truncated | UdpError::BadLength => self.stats.udp_malformed += 1,
                    UdpError::BadChecksum => self.stats.udp_bad_checksum += 1,
                    UdpError::ZeroChecksumV6 => self.stats.udp_zero_checksum_v6 += 1,
                    UdpError::NotUdp => {}
                }
                tracing::trace!(reason = %e, "dropped a UDP datagram");
                return None;
            }
        };
        self.stats.udp_datagrams_in += 1;
        match self.udp.lookup(d.dst, d.src).or_else(|| self.udp_interceptor(d.dst)) {
            Some(h) => Some(DatagramEvent::Udp(h, d)),
            None => {
                self.stats.udp_no_port += 1;
                self.port_unreachable(now, packet, d.src.ip(), d.dst.ip());
                None
            }
        }
    }

    /// An ICMP error quoting a UDP datagram: to the socket that sent it (found as an
    /// incoming datagram from the quote's destination would find it), if the message is
    /// addressed to the quote's source (us).
    pub(super) fn on_udp_icmp_error<'a>(
        &mut self,
        msg: &IcmpMessage<'_>,
        quote: &QuotedTcp<'_>,
        error: ConnectionError,
        hard: bool,
    ) -> Option<DatagramEvent<'a>> {
        let (local, remote) = (quote.src(), quote.dst());
        let h = if msg.dst == local.ip() { self.udp.lookup(local, remote) } else { None };
        let Some(h) = h else {
            self.stats.icmp_unknown_connection += 1;
            return None;
        };
        self.stats.icmp_errors_applied += 1;
        Some(DatagramEvent::UdpError(h, UdpIcmpError { error, hard, remote }))
    }
}
