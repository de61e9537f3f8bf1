//! The endpoint: demultiplexing, listeners, ISNs, ephemeral ports and resets for segments
//! that match no connection (RFC 9293 §3.10.7.1). Connections are returned to the caller, who
//! owns and drives each one independently (the quinn-proto split), so an async adapter can
//! lock connections one by one.

mod demux;
mod isn;
mod ports;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use core::time::Duration;

pub use demux::FourTuple;

use crate::config::EndpointConfig;
use crate::conn::{ConnParams, Connection};
use crate::rng::{Rng, SipKey};
use crate::stats::EndpointStats;
use crate::wire::{self, Segment, SeqNum, TcpFlags, TcpRepr};
use crate::{EndpointError, Instant, Transmit};
use demux::Demux;
use ports::PortAllocator;

/// Identifies a connection of this endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionHandle(pub usize);

/// What [`Endpoint::handle`] made of a packet.
#[derive(Debug)]
pub enum DatagramEvent<'a> {
    /// The segment belongs to an existing connection: pass it to that connection's
    /// [`Connection::handle_segment`].
    Connection(ConnectionHandle, Segment<'a>),
    /// A listener accepted a SYN: a new connection in SYN-RECEIVED, now owned by the caller.
    /// Boxed: it is large, and connections are allocated once per open anyway.
    NewConnection(ConnectionHandle, Box<Connection>),
}

/// Most resets queued for sending; beyond it they are dropped (and counted as rate limited).
const RESET_QUEUE: usize = 64;

/// The demultiplexer and connection factory of one TCP/IP stack.
#[derive(Debug)]
pub struct Endpoint {
    cfg: EndpointConfig,
    isn_key: SipKey,
    ts_key: SipKey,
    table: Demux<ConnectionHandle>,
    slots: Vec<Option<FourTuple>>,
    free_slots: Vec<usize>,
    listeners: Vec<SocketAddr>,
    ports: PortAllocator,
    resets: VecDeque<(IpAddr, IpAddr, TcpRepr)>,
    reset_window: (Instant, u32),
    stats: EndpointStats,
}

impl Endpoint {
    /// An endpoint whose every random choice derives from `cfg.seed`.
    pub fn new(cfg: EndpointConfig) -> Self {
        let mut rng = Rng::new(cfg.seed);
        let isn_key = SipKey::random(&mut rng);
        let ts_key = SipKey::random(&mut rng);
        let demux_key = SipKey::random(&mut rng);
        let port_key = SipKey::random(&mut rng);
        Endpoint {
            isn_key,
            ts_key,
            table: Demux::new(demux_key),
            slots: Vec::new(),
            free_slots: Vec::new(),
            listeners: Vec::new(),
            ports: PortAllocator::new(port_key, cfg.ephemeral_start, cfg.ephemeral_end),
            resets: VecDeque::with_capacity(RESET_QUEUE),
            reset_window: (Instant::ZERO, 0),
            stats: EndpointStats::default(),
            cfg,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EndpointConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> &EndpointStats {
        &self.stats
    }

    /// Connections currently in the table.
    pub fn connection_count(&self) -> usize {
        self.table.len()
    }

    /// Accept SYNs to `addr` (an unspecified IP listens on every address of that family).
    ///
    /// # Errors
    /// [`EndpointError::AddrInUse`] if the same address is already listening;
    /// [`EndpointError::InvalidAddress`] for port 0.
    pub fn listen(&mut self, addr: SocketAddr) -> Result<(), EndpointError> {
        if addr.port() == 0 {
            return Err(EndpointError::InvalidAddress);
        }
        if self.listeners.contains(&addr) {
            return Err(EndpointError::AddrInUse);
        }
        self.listeners.push(addr);
        Ok(())
    }

    /// Stop listening on `addr`. Established connections are unaffected.
    pub fn unlisten(&mut self, addr: SocketAddr) {
        self.listeners.retain(|l| *l != addr);
    }

    /// Active open from `local_ip` (ephemeral port) to `remote` (RFC 9293 §3.10.1).
    ///
    /// # Errors
    /// [`EndpointError::InvalidAddress`] for a remote port 0, a multicast/unspecified remote,
    /// or mixed IP families; [`EndpointError::AddrNotAvailable`] when no ephemeral port is free.
    pub fn connect(
        &mut self,
        now: Instant,
        local_ip: IpAddr,
        remote: SocketAddr,
    ) -> Result<(ConnectionHandle, Connection), EndpointError> {
        let bad = remote.port() == 0
            || remote.ip().is_unspecified()
            || remote.ip().is_multicast()
            || local_ip.is_ipv4() != remote.is_ipv4();
        if bad {
            return Err(EndpointError::InvalidAddress);
        }
        let table = &self.table;
        let port = self
            .ports
            .allocate(local_ip, remote, |p| {
                !table.contains(FourTuple { local: SocketAddr::new(local_ip, p), remote })
            })
            .ok_or(EndpointError::AddrNotAvailable)?;
        let tuple = FourTuple { local: SocketAddr::new(local_ip, port), remote };
        let handle = self.insert(tuple);
        self.stats.active_opens += 1;
        Ok((handle, Connection::connect(self.cfg.conn, self.params(now, tuple))))
    }

    fn params(&self, now: Instant, t: FourTuple) -> ConnParams {
        ConnParams {
            local: t.local,
            remote: t.remote,
            iss: isn::isn(&self.isn_key, now, t.local, t.remote),
            ts_offset: isn::hash_tuple(&self.ts_key, t.local, t.remote) as u32,
        }
    }

    fn insert(&mut self, tuple: FourTuple) -> ConnectionHandle {
        let idx = match self.free_slots.pop() {
            Some(i) => {
                self.slots[i] = Some(tuple);
                i
            }
            None => {
                self.slots.push(Some(tuple));
                self.slots.len() - 1
            }
        };
        self.table.insert(tuple, ConnectionHandle(idx));
        ConnectionHandle(idx)
    }

    /// The owner dropped a drained connection: forget its 4-tuple.
    pub fn connection_closed(&mut self, handle: ConnectionHandle) {
        if let Some(tuple) = self.slots.get_mut(handle.0).and_then(Option::take) {
            self.table.remove(tuple);
            self.free_slots.push(handle.0);
        }
    }

    /// Route one IP packet. Packets for no connection are answered here (see
    /// [`Endpoint::poll_transmit`]); malformed ones are dropped and counted.
    pub fn handle<'a>(&mut self, now: Instant, packet: &'a [u8]) -> Option<DatagramEvent<'a>> {
        self.stats.packets_in += 1;
        let seg = match wire::parse(packet) {
            Ok(seg) => seg,
            Err(e) => {
                self.stats.parse_errors[e.index()] += 1;
                tracing::trace!(reason = %e, "dropped malformed packet");
                return None;
            }
        };
        let tuple = FourTuple {
            local: SocketAddr::new(seg.dst, seg.tcp.dst_port),
            remote: SocketAddr::new(seg.src, seg.tcp.src_port),
        };
        if let Some(&h) = self.table.get(tuple) {
            return Some(DatagramEvent::Connection(h, seg));
        }
        if self.listening(tuple.local) {
            return self.on_listener(now, tuple, &seg);
        }
        self.stats.no_connection += 1;
        self.reset_for(now, &seg);
        None
    }

    fn listening(&self, local: SocketAddr) -> bool {
        self.listeners.iter().any(|l| {
            l.port() == local.port()
                && (l.ip() == local.ip()
                    || (l.ip().is_unspecified() && l.is_ipv4() == local.is_ipv4()))
        })
    }

    /// RFC 9293 §3.10.7.2: LISTEN. RST ignored, ACK answered by RST, SYN opens.
    fn on_listener<'a>(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        seg: &Segment<'a>,
    ) -> Option<DatagramEvent<'a>> {
        let f = seg.tcp.flags;
        if f.rst() {
            self.stats.listener_drops += 1;
            return None;
        }
        if f.ack() {
            self.reset_for(now, seg);
            return None;
        }
        if !f.syn() {
            self.stats.listener_drops += 1;
            return None;
        }
        let handle = self.insert(tuple);
        self.stats.passive_opens += 1;
        let conn = Box::new(Connection::accept(self.cfg.conn, self.params(now, tuple), seg, now));
        Some(DatagramEvent::NewConnection(handle, conn))
    }

    /// Queue a reset answering `seg` (RFC 9293 §3.10.7.1), never for a RST, rate limited.
    fn reset_for(&mut self, now: Instant, seg: &Segment<'_>) {
        let t = &seg.tcp;
        if t.flags.rst() {
            return;
        }
        if now - self.reset_window.0 >= Duration::from_secs(1) {
            self.reset_window = (now, 0);
        }
        if self.reset_window.1 >= self.cfg.rst_rate_limit || self.resets.len() >= RESET_QUEUE {
            self.stats.resets_rate_limited += 1;
            return;
        }
        self.reset_window.1 += 1;
        let (seq, ack, flags) = if t.flags.ack() {
            (t.ack, SeqNum(0), TcpFlags::RST)
        } else {
            (SeqNum(0), t.seq + t.seq_len(seg.payload.len()), TcpFlags::RST | TcpFlags::ACK)
        };
        let repr = TcpRepr {
            src_port: t.dst_port,
            dst_port: t.src_port,
            seq,
            ack,
            flags,
            ..TcpRepr::default()
        };
        self.resets.push_back((seg.dst, seg.src, repr));
    }

    /// The next packet the endpoint itself must send (resets), written into `buf`.
    pub fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let (src, dst, repr) = self.resets.pop_front()?;
        let len = wire::emit(buf, src, dst, &repr, [&[], &[]]).ok()?;
        self.stats.packets_out += 1;
        self.stats.resets_sent += 1;
        Some(Transmit { len })
    }
}
