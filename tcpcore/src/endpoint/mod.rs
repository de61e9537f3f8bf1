//! The endpoint: demultiplexing, listeners with a SYN queue, an accept queue and SYN cookies,
//! ISNs, ephemeral ports, compact TIME-WAIT entries, and replies for segments that match no
//! connection (RFC 9293 §3.10.7.1), echo replies to pings and path MTU reports from ICMP
//! (`icmp.rs`), and any-IP interception with decisions before the handshake
//! (`intercept.rs`). Established connections are handed to the caller, who owns
//! and drives each one independently (the quinn-proto split), so an async adapter can lock
//! connections one at a time.

mod demux;
mod fastopen;
mod frag;
mod icmp;
mod icmp_out;
mod intercept;
mod isn;
mod listener;
mod passive;
mod ports;
mod syn_cookie;
mod syn_queue;
mod time_wait;
mod udp;
mod udp_intercept;
mod udp_socket;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use core::time::Duration;

pub use demux::FourTuple;
pub use frag::{Reassembled, ENTRY_OVERHEAD};
pub use icmp::{IcmpUnreachable, PathMtu, MAX_ECHO_DATA, MIN_MTU_V4, MIN_MTU_V6};
pub use intercept::{
    ConnectionRequest, Decision, InterceptMode, InterceptOptions, InterceptStats, RequestId,
    Unreachable,
};
pub use listener::{ListenOptions, SynCookies};
pub use time_wait::TimeWaitEntry;
pub use udp::UdpHandle;
pub use udp_socket::{
    UdpIcmpError, UdpRecv, UdpSendError, UdpSocket, UdpSocketStats, DATAGRAM_OVERHEAD,
};

use crate::config::{ConnConfig, EndpointConfig, SharedConnConfig};
use crate::conn::{ConnParams, Connection, MemBudget};
use crate::rng::{Rng, SipKey};
use crate::stats::EndpointStats;
use crate::wire::{self, Segment, SeqNum, TcpChecksum, TcpFlags, TcpOptions, TcpRepr, Timestamps};
use crate::{EndpointError, Instant, Transmit};
use demux::ConnTable;
use listener::Listener;
use ports::{HeldPorts, PortAllocator};
use syn_cookie::CookieJar;
use syn_queue::SynQueue;
use time_wait::TimeWaitTable;

/// Identifies a connection of this endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionHandle(pub usize);

/// What [`Endpoint::handle`] made of a packet.
#[derive(Debug)]
pub enum DatagramEvent<'a> {
    /// The segment belongs to an existing connection: pass it to that connection's
    /// [`Connection::handle_segment`].
    Connection(ConnectionHandle, Segment<'a>),
    /// A listener's handshake completed: a new connection (already past the completing ACK),
    /// now owned by the caller, and queued for [`Endpoint::accept`]. Boxed: it is large, and
    /// connections are allocated once per open anyway.
    NewConnection(ConnectionHandle, Box<Connection>),
    /// An ICMP "fragmentation needed" (RFC 1191) or ICMPv6 "packet too big" (RFC 8201)
    /// quoting a segment of this connection reports a smaller path MTU: pass it to the
    /// connection's [`Connection::handle_path_mtu`]`(now, p.mtu, p.seq)`, which checks that
    /// the quoted segment is in flight (RFC 5927 §4.1) before shrinking its segments.
    PathMtu(ConnectionHandle, PathMtu),
    /// Another ICMP or ICMPv6 error quoting a segment of this connection (destination
    /// unreachable, time exceeded, parameter problem): pass it to the connection's
    /// [`Connection::handle_icmp_error`], which checks the quoted segment is in flight
    /// (RFC 5927 §4.1), aborts a connection in SYN-SENT on a hard error (RFC 1122
    /// §4.2.3.9) and otherwise remembers the error as the cause of a later timeout.
    IcmpError(ConnectionHandle, IcmpUnreachable),
    /// A UDP datagram for the socket `UdpHandle`: pass it to that socket's
    /// [`UdpSocket::handle_datagram`], which queues it or drops it when its queue is full.
    Udp(UdpHandle, wire::udp::UdpDatagram<'a>),
    /// An ICMP error quoting a datagram the socket `UdpHandle` sent: pass it to that
    /// socket's [`UdpSocket::handle_icmp_error`].
    UdpError(UdpHandle, UdpIcmpError),
    /// The packet was the missing fragment of a datagram (or an IPv6 atomic fragment): pass
    /// the whole packet, [`Reassembled::packet`], to [`Endpoint::handle`] like any other,
    /// then give it back with [`Endpoint::recycle`].
    Reassembled(Reassembled),
}

/// The peer of an active open: a unicast address and port of `local_ip`'s family.
fn check_remote(local_ip: IpAddr, remote: SocketAddr) -> Result<(), EndpointError> {
    let bad = remote.port() == 0
        || remote.ip().is_unspecified()
        || remote.ip().is_multicast()
        || local_ip.is_ipv4() != remote.is_ipv4();
    if bad {
        return Err(EndpointError::InvalidAddress);
    }
    Ok(())
}

/// A packet the endpoint itself will send.
#[derive(Clone, Copy, Debug)]
enum Reply {
    /// A reset, SYN-ACK or TIME-WAIT ACK.
    Tcp { src: IpAddr, dst: IpAddr, repr: TcpRepr, ip: wire::IpFields },
    /// An echo reply whose data waits in buffer `slot` of the echo pool.
    Echo { src: IpAddr, dst: IpAddr, ident: u16, seq_no: u16, slot: u8, len: u16 },
    /// An ICMP error whose quote waits in buffer `slot` of the error pool.
    IcmpError { src: IpAddr, dst: IpAddr, ty: u8, code: u8, slot: u8, len: u16 },
}

/// Most packets the endpoint queues for sending; beyond it replies are dropped and counted.
const OUT_QUEUE: usize = 1024;

/// A connection handle's slot. Not its 4-tuple: the demultiplexing table has it, and the
/// connection itself when it is closed (64 bytes per connection less).
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// The listener whose accept queue still holds this connection.
    queued_at: Option<u32>,
    /// Opened by a listener: it holds its local port as a bind would (PT-01).
    passive: bool,
    /// An active open that tried Fast Open: its SYN-ACK teaches the cookie cache (0: no,
    /// 1: its option was kind 34, 2: the experimental kind).
    fast_open_client: u8,
    /// A Fast Open child still counted in this listener's Fast Open queue
    /// ([`NO_LISTENER`]: none).
    fast_open_listener: u32,
    /// CLOSED but held by its owner for the application (FA-02): its 4-tuple is out of the
    /// table already ([`Endpoint::release_tuple`]).
    unhashed: bool,
}

/// `Slot::fast_open_listener` of a connection that is no pending Fast Open child.
const NO_LISTENER: u32 = u32::MAX;

/// The demultiplexer and connection factory of one TCP/IP stack.
#[derive(Debug)]
pub struct Endpoint {
    cfg: EndpointConfig,
    /// `cfg.conn`, shared by the connections opened with it.
    conn_cfg: SharedConnConfig,
    /// The buffer memory of every connection opened here (`cfg.mem_pressure`).
    budget: MemBudget,
    /// The key of ISNs and timestamp offsets (`isn.rs`).
    isn_key: SipKey,
    table: ConnTable<ConnectionHandle>,
    /// Connections whose slot is live but whose 4-tuple left the table (FA-02).
    unhashed: usize,
    slots: Vec<Option<Slot>>,
    free_slots: Vec<usize>,
    listeners: Vec<Option<Listener>>,
    syn_queue: SynQueue,
    cookies: CookieJar,
    time_wait: TimeWaitTable,
    ports: PortAllocator,
    /// Local addresses of live connections (PT-01).
    held: HeldPorts,
    out: VecDeque<Reply>,
    /// Echo data of the queued echo replies.
    echo_pool: icmp::EchoPool,
    /// Addresses whose echo requests we answer ([`Endpoint::add_local_addr`]).
    local_addrs: Vec<IpAddr>,
    /// Rate limit of resets and TIME-WAIT ACKs: (window start, replies in it).
    reply_window: (Instant, u32),
    /// UDP sockets.
    udp: udp::UdpTable,
    /// IP reassembly queues.
    frags: frag::Reassembler,
    /// Quotes of the queued ICMP errors.
    err_pool: icmp::EchoPool,
    /// Rate limit of the ICMP errors we send.
    icmp_limit: icmp_out::IcmpLimiter,
    stats: EndpointStats,
    /// Any-IP interception and the requests waiting for a decision (AI-01, AI-02).
    intercept: intercept::Intercept,
    /// TCP Fast Open: cookie keys, the client's cookie cache (RFC 7413).
    fast_open: fastopen::FastOpen,
    /// The earliest of the four deadlines above (SYN queue, TIME-WAIT, reassembly,
    /// interception requests), what [`Endpoint::poll_timeout`] returns: refreshed by
    /// [`Endpoint::refresh_deadline`] wherever one of their queues changes, so that the
    /// drivers' call after every poll reads one field (debug builds compare it with the
    /// queues).
    deadline: Option<Instant>,
}

impl Endpoint {
    /// An endpoint whose every random choice derives from `cfg.seed`.
    pub fn new(cfg: EndpointConfig) -> Self {
        let mut rng = Rng::new(cfg.seed);
        let mut key = || SipKey::random(&mut rng);
        // The second key, once the timestamp offsets' own, is drawn still so that the
        // keys after it stay what they were for a given seed.
        let (isn_key, _, demux_key, port_key) = (key(), key(), key(), key());
        let (syn_key, tw_key, c1, c2) = (key(), key(), key(), key());
        // Drawn after the TCP keys, so those stay what they were for a given seed.
        let udp_keys = [key(), key(), key()];
        let (frag_key, icmp_key) = (key(), key());
        let intercept_key = key();
        let fast_open_key = key();
        Endpoint {
            isn_key,
            table: ConnTable::new(demux_key),
            unhashed: 0,
            slots: Vec::new(),
            free_slots: Vec::new(),
            listeners: Vec::new(),
            syn_queue: SynQueue::new(syn_key),
            cookies: CookieJar::new(c1, c2),
            time_wait: TimeWaitTable::new(tw_key, cfg.max_time_wait),
            ports: PortAllocator::new(port_key, cfg.ephemeral_start, cfg.ephemeral_end),
            held: HeldPorts::default(),
            out: VecDeque::with_capacity(OUT_QUEUE),
            echo_pool: icmp::EchoPool::new(),
            local_addrs: Vec::new(),
            reply_window: (Instant::ZERO, 0),
            udp: udp::UdpTable::new(udp_keys, (cfg.ephemeral_start, cfg.ephemeral_end)),
            frags: frag::Reassembler::new(frag_key),
            err_pool: icmp::EchoPool::with_slots(icmp_out::ERROR_SLOTS),
            icmp_limit: icmp_out::IcmpLimiter::new(icmp_key),
            stats: EndpointStats::default(),
            intercept: intercept::Intercept::new(intercept_key),
            fast_open: fastopen::FastOpen::new(&cfg.fast_open, fast_open_key),
            deadline: None,
            conn_cfg: cfg.conn.into(),
            budget: MemBudget::new(cfg.mem_pressure),
            cfg,
        }
    }

    /// Change the defaults of connections opened from now on (as Linux's TCP sysctls apply
    /// to new sockets); live connections keep theirs.
    pub fn set_conn_config(&mut self, conn: ConnConfig) {
        self.cfg.conn = conn;
        self.conn_cfg = conn.into();
    }

    /// The configuration.
    pub fn config(&self) -> &EndpointConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> &EndpointStats {
        &self.stats
    }

    /// Connections handed out and not yet closed.
    pub fn connection_count(&self) -> usize {
        self.table.len() + self.unhashed
    }

    /// Buffer memory held by the connections this endpoint opened (as Linux reports
    /// `tcp_mem` usage in `/proc/net/sockstat`), in bytes.
    pub fn buffer_memory(&self) -> usize {
        self.budget.allocated()
    }

    /// The connections' buffer memory is above [`EndpointConfig::mem_pressure`]: they hold
    /// their buffer sizes and offer small windows.
    pub fn under_memory_pressure(&self) -> bool {
        self.budget.under_pressure()
    }

    /// Half-open entries in all SYN queues.
    pub fn half_open_count(&self) -> usize {
        self.syn_queue.len()
    }

    /// Entries in the TIME-WAIT table.
    pub fn time_wait_count(&self) -> usize {
        self.time_wait.len()
    }

    /// Listen on `addr` with default options; see [`Endpoint::listen_with`].
    ///
    /// # Errors
    /// As [`Endpoint::listen_with`].
    pub fn listen(&mut self, addr: SocketAddr) -> Result<(), EndpointError> {
        self.listen_with(addr, ListenOptions::default())
    }

    /// Accept SYNs to `addr` (an unspecified IP listens on every address of that family).
    ///
    /// # Errors
    /// [`EndpointError::AddrInUse`] if the address already listens or a bound socket
    /// reserved a conflicting one ([`Endpoint::bind`]; a socket listening on its own
    /// reservation ends it first); [`EndpointError::InvalidAddress`] for port 0.
    pub fn listen_with(
        &mut self,
        addr: SocketAddr,
        opts: ListenOptions,
    ) -> Result<(), EndpointError> {
        if addr.port() == 0 {
            return Err(EndpointError::InvalidAddress);
        }
        if self.listeners.iter().flatten().any(|l| l.is(addr)) || self.reserved(addr) {
            return Err(EndpointError::AddrInUse);
        }
        self.add_listener(Listener::new(addr, opts, self.cfg.somaxconn));
        Ok(())
    }

    /// Put `l` in a free listener slot; returns its index.
    fn add_listener(&mut self, l: Listener) -> usize {
        match self.listeners.iter().position(Option::is_none) {
            Some(i) => {
                self.listeners[i] = Some(l);
                i
            }
            None => {
                self.listeners.push(Some(l));
                self.listeners.len() - 1
            }
        }
    }

    /// Change the options of the listener on `addr` (as `setsockopt` on a listening socket,
    /// or `listen` again with another backlog): they apply to SYNs from now on.
    ///
    /// # Errors
    /// [`EndpointError::InvalidAddress`] if nothing listens on `addr`.
    pub fn set_listen_options(
        &mut self,
        addr: SocketAddr,
        opts: ListenOptions,
    ) -> Result<(), EndpointError> {
        let l = self
            .listeners
            .iter_mut()
            .flatten()
            .find(|l| l.is(addr))
            .ok_or(EndpointError::InvalidAddress)?;
        l.set_options(opts, self.cfg.somaxconn);
        Ok(())
    }

    /// The options of the connections the listener on `addr` accepts, as set on a listening
    /// socket (`setsockopt` before or after `listen`; Linux copies them into each accepted
    /// socket): from now on, SYN-ACKs and new connections use `cfg` (its `offload` excepted,
    /// which stays the endpoint's) instead of [`EndpointConfig::conn`].
    ///
    /// # Errors
    /// [`EndpointError::InvalidAddress`] if nothing listens on `addr`.
    pub fn set_listener_conn_config(
        &mut self,
        addr: SocketAddr,
        cfg: ConnConfig,
    ) -> Result<(), EndpointError> {
        let l = self
            .listeners
            .iter_mut()
            .flatten()
            .find(|l| l.addr == addr)
            .ok_or(EndpointError::InvalidAddress)?;
        l.conn = Some(cfg);
        Ok(())
    }

    /// The options the listener on `addr` gives the connections it accepts: its own
    /// ([`Endpoint::set_listener_conn_config`]) or the endpoint's; `None` if nothing listens
    /// there.
    pub fn listener_conn_config(&self, addr: SocketAddr) -> Option<ConnConfig> {
        let l = self.listeners.iter().flatten().find(|l| l.addr == addr)?;
        Some(l.conn.unwrap_or(self.cfg.conn))
    }

    /// Stop listening on `addr`. Its half-open entries are forgotten; the connections still
    /// waiting in its accept queue are returned so the owner can abort them (as closing a
    /// listening socket resets them in Linux).
    pub fn unlisten(&mut self, addr: SocketAddr) -> Vec<ConnectionHandle> {
        let Some(idx) = self.listeners.iter().position(|l| l.as_ref().is_some_and(|l| l.is(addr)))
        else {
            return Vec::new();
        };
        self.remove_listener(idx)
    }

    /// Take listener `idx` away: forget its half-open entries, and return the connections
    /// still in its accept queue.
    fn remove_listener(&mut self, idx: usize) -> Vec<ConnectionHandle> {
        let Some(l) = self.listeners.get_mut(idx).and_then(Option::take) else {
            return Vec::new();
        };
        let mut scratch = Vec::new();
        self.syn_queue.forget_listener(idx as u32, &mut scratch);
        let queued: Vec<_> = l.accept_queue.into_iter().collect();
        for h in &queued {
            if let Some(Some(slot)) = self.slots.get_mut(h.0) {
                slot.queued_at = None;
            }
        }
        queued
    }

    /// Take the oldest established connection from `listener`'s accept queue.
    pub fn accept(&mut self, listener: SocketAddr) -> Option<ConnectionHandle> {
        let l = self.listeners.iter_mut().flatten().find(|l| l.is(listener))?;
        let h = l.accept_queue.pop_front()?;
        if let Some(Some(slot)) = self.slots.get_mut(h.0) {
            slot.queued_at = None;
        }
        Some(h)
    }

    /// Connections waiting in `listener`'s accept queue.
    pub fn accept_queue_len(&self, listener: SocketAddr) -> usize {
        self.listeners.iter().flatten().find(|l| l.is(listener)).map_or(0, |l| l.accept_queue.len())
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
        let cfg = self.conn_cfg.clone();
        self.connect_shared(now, local_ip, remote, cfg)
    }

    /// [`Endpoint::connect`] with this connection's own options (the socket options an
    /// application set before `connect`, such as `TCP_MAXSEG`).
    ///
    /// # Errors
    /// As [`Endpoint::connect`].
    pub fn connect_with(
        &mut self,
        now: Instant,
        local_ip: IpAddr,
        remote: SocketAddr,
        cfg: ConnConfig,
    ) -> Result<(ConnectionHandle, Connection), EndpointError> {
        let cfg = self.conn_cfg.share_or_new(&cfg);
        self.connect_shared(now, local_ip, remote, cfg)
    }

    /// [`Endpoint::connect_with`] with the settings already shared.
    fn connect_shared(
        &mut self,
        now: Instant,
        local_ip: IpAddr,
        remote: SocketAddr,
        cfg: SharedConnConfig,
    ) -> Result<(ConnectionHandle, Connection), EndpointError> {
        check_remote(local_ip, remote)?;
        let (i, port) = self
            .ports
            .walk(local_ip, remote)
            .find(|&(_, p)| self.port_free_for_connect(SocketAddr::new(local_ip, p), remote))
            .ok_or(EndpointError::AddrNotAvailable)?;
        self.ports.took(i);
        let tuple = FourTuple { local: SocketAddr::new(local_ip, port), remote };
        Ok(self.open_active(now, tuple, cfg))
    }

    /// The common end of every active open: the table entry, the connection, and its
    /// charge to the endpoint's memory budget (MEM-04).
    fn open_active(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        cfg: SharedConnConfig,
    ) -> (ConnectionHandle, Connection) {
        let handle = self.insert(tuple, None);
        self.stats.active_opens += 1;
        let fast_open = cfg.fast_open_connect;
        let mut conn = Connection::connect(cfg, self.params(now, tuple));
        conn.attach_budget(self.budget.clone());
        if fast_open {
            self.fast_open_connect(handle, &mut conn);
        }
        (handle, conn)
    }

    /// Active open from `local`, an address a socket bound ([`Endpoint::bind`], whose
    /// reservation the caller ends first): the connection takes that port (port 0: an
    /// ephemeral one, as [`Endpoint::connect_with`]).
    ///
    /// # Errors
    /// As [`Endpoint::connect`]; [`EndpointError::AddrNotAvailable`] when the 4-tuple is
    /// live or in TIME-WAIT (Linux `EADDRNOTAVAIL`), or a listener holds the port.
    pub fn connect_from(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        cfg: ConnConfig,
    ) -> Result<(ConnectionHandle, Connection), EndpointError> {
        if local.port() == 0 {
            return self.connect_with(now, local.ip(), remote, cfg);
        }
        check_remote(local.ip(), remote)?;
        if local.ip().is_unspecified() || !self.port_free_for_connect(local, remote) {
            return Err(EndpointError::AddrNotAvailable);
        }
        let tuple = FourTuple { local, remote };
        let cfg = self.conn_cfg.share_or_new(&cfg);
        Ok(self.open_active(now, tuple, cfg))
    }

    fn params(&self, now: Instant, t: FourTuple) -> ConnParams {
        let (iss, ts_offset) = isn::isn_and_ts_offset(&self.isn_key, now, t.local, t.remote);
        ConnParams { local: t.local, remote: t.remote, iss, ts_offset }
    }

    fn insert(&mut self, tuple: FourTuple, queued_at: Option<u32>) -> ConnectionHandle {
        let passive = queued_at.is_some();
        self.held.hold(tuple.local, passive);
        let slot = Some(Slot {
            queued_at,
            passive,
            fast_open_client: 0,
            fast_open_listener: NO_LISTENER,
            unhashed: false,
        });
        let idx = match self.free_slots.pop() {
            Some(i) => {
                self.slots[i] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        self.table.insert(tuple, ConnectionHandle(idx));
        ConnectionHandle(idx)
    }

    /// The owner is dropping a drained connection ([`Connection::is_drained`]): forget its
    /// 4-tuple, and keep a compact entry if it is in TIME-WAIT (CL-09).
    pub fn connection_closed(&mut self, handle: ConnectionHandle, conn: &Connection) {
        let tuple = FourTuple { local: conn.local_addr(), remote: conn.remote_addr() };
        let slot = if self.slots.get(handle.0).is_some_and(|s| s.is_some_and(|s| s.unhashed)) {
            // FA-02: its 4-tuple left the table when it closed ([`Endpoint::release_tuple`]);
            // the table's entry for it, if any, is a newer connection's.
            self.unhashed -= 1;
            self.slots[handle.0].take()
        } else {
            // One lookup: taken out, and put back in the rare case it is not this handle's.
            let Some(h) = self.table.remove(tuple) else { return };
            let slot = self.slots.get_mut(handle.0).filter(|_| h == handle).and_then(Option::take);
            if slot.is_none() {
                self.table.insert(tuple, h); // not this handle's connection: a caller mistake
            }
            slot
        };
        let Some(slot) = slot else { return };
        self.held.release(tuple.local, slot.passive);
        self.free_slots.push(handle.0);
        if slot.fast_open_listener != NO_LISTENER {
            self.fast_open_done(slot.fast_open_listener);
        }
        if let Some(li) = slot.queued_at {
            if let Some(Some(l)) = self.listeners.get_mut(li as usize) {
                l.accept_queue.retain(|h| *h != handle);
            }
        }
        if let Some(entry) = conn.time_wait_entry() {
            self.stats.time_wait_entered += 1;
            if !self.time_wait.insert(entry) {
                self.stats.time_wait_overflows += 1;
            }
            self.refresh_deadline();
        }
    }

    /// The owner keeps connection `handle`, now CLOSED (reset, timed out, aborted or
    /// refused), for the application (FA-02: its data, then its error, are still to be
    /// read): take its 4-tuple out of the table now, as Linux unhashes a socket entering
    /// TCP_CLOSE (`tcp_done`), so that a new SYN from the same peer address and port reaches
    /// the listener (RFC 9293 §3.10.7.1: a CLOSED connection has no TCB to answer for) and
    /// an active open may use the 4-tuple again. Everything else about the connection stays
    /// (its slot, its place in an accept queue, its local port) until
    /// [`Endpoint::connection_closed`]. Call it whenever the connection is
    /// [`State::Closed`](crate::State::Closed) and not yet drained; it does nothing
    /// otherwise, or when called again.
    pub fn release_tuple(&mut self, handle: ConnectionHandle, conn: &Connection) {
        if conn.state() != crate::State::Closed {
            return;
        }
        let Some(Some(slot)) = self.slots.get_mut(handle.0) else { return };
        if slot.unhashed {
            return;
        }
        let tuple = FourTuple { local: conn.local_addr(), remote: conn.remote_addr() };
        if self.table.get(tuple) != Some(&handle) {
            return; // not this handle's connection: a caller mistake
        }
        self.table.remove(tuple);
        slot.unhashed = true;
        self.unhashed += 1;
        self.stats.tuples_released += 1;
    }

    /// Route one IP packet. Segments for no connection are answered here (see
    /// [`Endpoint::poll_transmit`]); malformed ones are dropped and counted. ICMP and ICMPv6
    /// packets are handled too: echo requests to an address given to
    /// [`Endpoint::add_local_addr`] are answered, "fragmentation needed" / "packet too
    /// big" messages for a connection become [`DatagramEvent::PathMtu`], and the other
    /// errors quoting its segments [`DatagramEvent::IcmpError`]. UDP datagrams go to their
    /// socket ([`DatagramEvent::Udp`], or port unreachable when none is bound), ICMP errors
    /// about them likewise ([`DatagramEvent::UdpError`]). IP fragments are reassembled first
    /// (`frag.rs`): the fragment that completes a datagram returns it as
    /// [`DatagramEvent::Reassembled`], to be passed here again like any packet.
    pub fn handle<'a>(&mut self, now: Instant, packet: &'a [u8]) -> Option<DatagramEvent<'a>> {
        self.stats.packets_in += 1;
        // Receive checksum offload: the device vouches for the TCP checksum.
        let csum = if self.cfg.conn.offload.rx_checksum {
            wire::TcpChecksum::Partial
        } else {
            wire::TcpChecksum::Full
        };
        // Matched by reference: the segment (~150 bytes) is copied once, into the event.
        let parsed = wire::parse_with(packet, csum);
        let seg = match &parsed {
            Ok(seg) => seg,
            Err(wire::ParseError::NotTcp) => return self.on_not_tcp(now, packet),
            Err(wire::ParseError::Fragment) => return self.on_fragment(now, packet),
            Err(e) => {
                self.stats.parse_errors[e.index()] += 1;
                tracing::trace!(reason = %e, "dropped malformed packet");
                return None;
            }
        };
        let (local, remote) = ((seg.dst, seg.tcp.dst_port), (seg.src, seg.tcp.src_port));
        let tuple =
            || FourTuple { local: SocketAddr::from(local), remote: SocketAddr::from(remote) };
        if let Some(h) = self.table.lookup(local, remote) {
            if seg.tcp.flags.syn() || self.fast_open.pending > 0 {
                self.fast_open_on_segment(h, tuple(), seg);
            }
            return Some(DatagramEvent::Connection(h, *seg));
        }
        let tuple = tuple();
        if let Some(tw) = self.time_wait.get(tuple).copied() {
            if !self.on_time_wait(now, tw, seg) {
                return None;
            }
        }
        if let Some(li) = self.listener_for(tuple.local) {
            return self.on_listener(now, li, tuple, seg, packet);
        }
        self.stats.no_connection += 1;
        self.reset_for(now, seg);
        None
    }

    fn listener_for(&self, local: SocketAddr) -> Option<u32> {
        // An exact address beats the wildcard.
        let exact = self.listeners.iter().position(|l| l.as_ref().is_some_and(|l| l.is(local)));
        let any = || {
            self.listeners
                .iter()
                .position(|l| l.as_ref().is_some_and(|l| l.matches(local)))
                .filter(|_| self.wildcard_serves(local.ip()))
        };
        // AI-01: interception takes what no listener does.
        exact.or_else(any).or_else(|| self.intercept_listener(local)).map(|i| i as u32)
    }

    /// A segment for a TIME-WAIT entry (RFC 9293 §3.10.7.4 in TIME-WAIT; RFC 6191). Returns
    /// true when the segment is a new SYN that may reuse the 4-tuple.
    fn on_time_wait(&mut self, now: Instant, tw: TimeWaitEntry, seg: &Segment<'_>) -> bool {
        let t = &seg.tcp;
        if t.flags.rst() {
            // Linux (tcp_rfc1337 = 0): a reset ends TIME-WAIT, but only one at exactly RCV.NXT
            // (RFC 5961 §3.2, Linux `tcp_timewait_state_process`); others are dropped, never
            // answered, so a blind reset cannot clear the entry.
            if t.seq == tw.rcv_nxt {
                self.time_wait.remove(tw.tuple);
                self.stats.time_wait_recycled += 1;
            }
            return false;
        }
        if t.flags.syn() && !t.flags.ack() {
            // RFC 6191 §2: a newer timestamp, or without timestamps a higher sequence number.
            let newer = match (tw.ts_recent, t.options.timestamps) {
                (Some(recent), Some(ts)) => ts.tsval.wrapping_sub(recent) as i32 > 0,
                _ => t.seq > tw.rcv_nxt,
            };
            if newer {
                self.time_wait.remove(tw.tuple);
                self.stats.time_wait_recycled += 1;
                return true;
            }
        } else if t.flags.fin() && t.seq + seg.payload.len() as u32 + 1 == tw.rcv_nxt {
            // CL-08: the peer's FIN again: our ACK was lost. Restart 2 MSL.
            self.time_wait.restart(tw.tuple, now + self.cfg.conn.msl * 2);
            self.refresh_deadline();
        } else if !t.flags.syn() && !t.flags.fin() && seg.payload.is_empty() && t.seq == tw.rcv_nxt
        {
            // RFC 9293 §3.10.7.4: an acceptable bare ACK carries nothing to answer (Linux
            // TCP_TW_SUCCESS unless PAWS rejects it). Answering would ping-pong with a peer
            // whose own TIME-WAIT ACKs every segment.
            let paws_ok = match (tw.ts_recent, t.options.timestamps) {
                (Some(recent), Some(ts)) => ts.tsval.wrapping_sub(recent) as i32 >= 0,
                _ => true,
            };
            if paws_ok {
                return false;
            }
            self.stats.time_wait_paws_rejected += 1;
        }
        // CL-09: anything else gets an ACK of what we have (rate limited).
        let options = TcpOptions {
            timestamps: tw
                .ts_recent
                .map(|tsecr| Timestamps { tsval: crate::conn::ts_clock(now, tw.ts_offset), tsecr }),
            ..TcpOptions::default()
        };
        let repr = TcpRepr {
            src_port: tw.tuple.local.port(),
            dst_port: tw.tuple.remote.port(),
            seq: tw.snd_nxt,
            ack: tw.rcv_nxt,
            flags: TcpFlags::ACK,
            options,
            ..TcpRepr::default()
        };
        if self.reply_allowed(now) {
            self.stats.time_wait_acks += 1;
            self.queue(seg.dst, seg.src, repr);
        }
        false
    }

    /// One more rate-limited reply allowed now?
    fn reply_allowed(&mut self, now: Instant) -> bool {
        if now - self.reply_window.0 >= Duration::from_secs(1) {
            self.reply_window = (now, 0);
        }
        if self.reply_window.1 >= self.cfg.rst_rate_limit || self.out.len() >= OUT_QUEUE {
            self.stats.replies_rate_limited += 1;
            return false;
        }
        self.reply_window.1 += 1;
        true
    }

    fn queue(&mut self, src: IpAddr, dst: IpAddr, repr: TcpRepr) {
        self.queue_ip(src, dst, repr, wire::IpFields::default());
    }

    /// [`Endpoint::queue`] with a socket's IP header fields (a listener's SYN-ACK).
    fn queue_ip(&mut self, src: IpAddr, dst: IpAddr, repr: TcpRepr, ip: wire::IpFields) {
        self.push_reply(Reply::Tcp { src, dst, repr, ip });
    }

    /// Queue `reply` unless the queue is full (counted); true when queued.
    fn push_reply(&mut self, reply: Reply) -> bool {
        if self.out.len() < OUT_QUEUE {
            self.out.push_back(reply);
            true
        } else {
            self.stats.replies_rate_limited += 1;
            false
        }
    }

    /// Queue a reset answering `seg` (RFC 9293 §3.10.7.1), never for a RST, rate limited.
    fn reset_for(&mut self, now: Instant, seg: &Segment<'_>) {
        let t = &seg.tcp;
        if t.flags.rst() || !self.reply_allowed(now) {
            return;
        }
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
        self.stats.resets_sent += 1;
        self.queue(seg.dst, seg.src, repr);
    }

    /// The next packet the endpoint itself must send, written into `buf`.
    #[inline]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if self.out.is_empty() && !self.intercept_transmit_pending() {
            return None; // the usual answer, inlined into the caller: drivers ask every step
        }
        self.poll_transmit_queued(now, buf)
    }

    /// [`Endpoint::poll_transmit`] with something queued.
    fn poll_transmit_queued(&mut self, _now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        while let Some(reply) = self.out.pop_front() {
            let len = match reply {
                Reply::Tcp { src, dst, repr, ip } => {
                    wire::emit_ip(buf, src, dst, &repr, [&[], &[]], TcpChecksum::Full, ip).ok()
                }
                Reply::Echo { src, dst, ident, seq_no, slot, len } => {
                    self.emit_echo_reply(buf, (src, dst), (ident, seq_no), (slot, len))
                }
                Reply::IcmpError { src, dst, ty, code, slot, len } => {
                    self.emit_icmp_error(buf, (src, dst), (ty, code), (slot, len))
                }
            };
            if let Some(len) = len {
                self.stats.packets_out += 1;
                return Some(Transmit::plain(len));
            }
        }
        let len = self.poll_intercept_transmit(buf)?;
        self.stats.packets_out += 1;
        Some(Transmit::plain(len))
    }

    /// The earliest deadline of the endpoint's own timers (SYN-ACK retransmissions,
    /// TIME-WAIT expiry, fragment reassembly timeouts, the decision timeout of connection
    /// requests).
    #[inline]
    pub fn poll_timeout(&self) -> Option<Instant> {
        // Called after every poll by every driver: one field, kept by `refresh_deadline`.
        #[cfg(debug_assertions)]
        assert_eq!(self.deadline, self.scan_deadline(), "endpoint deadline is stale");
        self.deadline
    }

    /// The earliest deadline of the endpoint's queues, from the queues themselves.
    fn scan_deadline(&self) -> Option<Instant> {
        let a = earliest(self.syn_queue.next_deadline(), self.time_wait.next_deadline());
        let b = earliest(self.frags.next_deadline(), self.intercept_deadline());
        earliest(a, b)
    }

    /// Recompute [`Endpoint::poll_timeout`]'s answer: after any change to the SYN queue's,
    /// the TIME-WAIT table's, the reassembler's or the interception requests' deadlines
    /// (none of which changes on the path of a segment for an established connection).
    pub(crate) fn refresh_deadline(&mut self) {
        self.deadline = self.scan_deadline();
    }

    /// Run the endpoint's timers due at `now`. Spurious calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.time_wait.expire(now);
        self.expire_requests(now);
        self.expire_fragments(now);
        while let Some(entry) = self.syn_queue.pop_due(now) {
            self.on_syn_ack_timeout(now, entry);
        }
        self.refresh_deadline();
    }
}

/// The earlier of two optional deadlines.
#[inline]
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}
