//! A sans-IO TCP/IP engine: IP packets and the current time go in; IP packets, the next timer
//! deadline and application events come out. No sockets, clocks, OS randomness, threads,
//! async or `unsafe`: the caller owns all I/O, so the same engine runs under tokio, over a TUN
//! device, inside the deterministic simulator (module `sim`, feature `sim`) or a fuzzer.
//!
//! # The pieces
//! - [`Endpoint`]: routes each incoming IP packet to its connection (keyed hash of the
//!   4-tuple), opens connections for listeners and for [`Endpoint::connect`], chooses ISNs
//!   (RFC 6528) and ephemeral ports (RFC 6056), and answers segments for no connection with
//!   RST (RFC 9293 §3.10.7.1). It answers pings to its addresses, turns ICMP
//!   "fragmentation needed" / "packet too big" into path MTU events (RFC 1191, RFC 8201)
//!   and other ICMP errors into connection errors (RFC 1122 §4.2.3.9, RFC 5461).
//! - [`Connection`]: one TCB (RFC 9293), owned and driven by the caller, so an async adapter
//!   can lock connections one at a time.
//! - [`wire`]: IPv4/IPv6/TCP and ICMP/ICMPv6 parsing and emission.
//!
//! # Call order
//! 1. For every received IP packet: [`Endpoint::handle`]. It returns
//!    [`DatagramEvent::Connection`] (pass the segment to that connection's
//!    [`Connection::handle_segment`]), [`DatagramEvent::NewConnection`] (store it),
//!    [`DatagramEvent::PathMtu`] (an ICMP error: pass it to that connection's
//!    [`Connection::handle_path_mtu`]), [`DatagramEvent::IcmpError`] (another ICMP error:
//!    pass it to that connection's [`Connection::handle_icmp_error`], which may close it,
//!    then poll its events), [`DatagramEvent::Udp`] / [`DatagramEvent::UdpError`] (a UDP
//!    datagram or ICMP error for a [`UdpSocket`] of the caller's, see
//!    [`Endpoint::udp_bind`]), [`DatagramEvent::Reassembled`] (a datagram reassembled from
//!    fragments: handle it like a received packet, then [`Endpoint::recycle`] it), or
//!    nothing (the packet was dropped and counted, or answered by the endpoint, as echo
//!    requests are). With interception deciding first ([`Endpoint::set_interception`],
//!    [`InterceptMode::Decide`]), also take each new [`Endpoint::poll_request`] and answer
//!    it, now or later, with [`Endpoint::decide`].
//! 2. When the earliest [`Connection::poll_timeout`] has passed: [`Connection::handle_timeout`]
//!    (spurious calls are harmless).
//! 3. After any input or application call: [`Endpoint::poll_transmit`] and each touched
//!    connection's [`Connection::poll_transmit`] until `None`, sending each packet written.
//! 4. Application events: [`Connection::poll_event`]; data with [`Connection::read`] and
//!    [`Connection::write`]. App calls never take `now` and never emit; after one,
//!    [`Connection::wants_transmit`] says whether step 3 has work.
//! 5. When a connection [`Connection::is_drained`], drop it and tell the endpoint
//!    ([`Endpoint::connection_closed`]), which keeps a compact entry for TIME-WAIT. One
//!    that is [`State::Closed`] but not drained (reset before the application's first call,
//!    FA-02) is kept for the application; give its 4-tuple back at once with
//!    [`Endpoint::release_tuple`], so that a new SYN on it reaches the listener.
//! 6. The endpoint has timers of its own (SYN-ACK retransmission, TIME-WAIT expiry):
//!    [`Endpoint::poll_timeout`] and [`Endpoint::handle_timeout`]. Connections made by a
//!    listener wait in its accept queue until [`Endpoint::accept`].
//!
//! Polling what has nothing to do is cheap, so a driver may poll every connection after
//! every step: [`Connection::poll_timeout`] and [`Endpoint::poll_timeout`] read one cached
//! deadline (kept exact as timers change), and [`Connection::poll_transmit`],
//! [`Endpoint::poll_transmit`], [`Connection::poll_event`] and a [`Connection::read`] that
//! finds nothing answer `None` (or `WouldBlock`) with a few inlined tests. The earliest
//! deadline over all connections is needed only when nothing was sent, to know how long to
//! sleep, as in the loop below.
//!
//! Time is an [`Instant`] (microseconds since an epoch the caller picks). Randomness comes
//! from [`EndpointConfig::seed`]: the same seed and inputs give byte-identical outputs.
//!
//! # A complete run loop
//! Two endpoints joined back to back, a client sending a request and reading the echo:
//! ```
//! use std::collections::BTreeMap;
//! use std::net::SocketAddr;
//! use std::time::Duration;
//! use tcpcore::{Connection, ConnectionHandle, DatagramEvent, Endpoint, EndpointConfig, Instant};
//!
//! struct Host { ep: Endpoint, conns: BTreeMap<ConnectionHandle, Connection> }
//!
//! impl Host {
//!     /// Step 1: route a received packet.
//!     fn receive(&mut self, now: Instant, packet: &[u8]) {
//!         match self.ep.handle(now, packet) {
//!             Some(DatagramEvent::Connection(h, seg)) => {
//!                 if let Some(c) = self.conns.get_mut(&h) { c.handle_segment(now, &seg) }
//!             }
//!             Some(DatagramEvent::NewConnection(h, c)) => { self.conns.insert(h, *c); }
//!             Some(DatagramEvent::PathMtu(h, p)) => {
//!                 if let Some(c) = self.conns.get_mut(&h) { c.handle_path_mtu(now, p.mtu, p.seq) }
//!             }
//!             Some(DatagramEvent::IcmpError(h, e)) => {
//!                 if let Some(c) = self.conns.get_mut(&h) { c.handle_icmp_error(now, e) }
//!             }
//!             // A datagram completed by this fragment: route the whole packet.
//!             Some(DatagramEvent::Reassembled(r)) => {
//!                 self.receive(now, r.packet());
//!                 self.ep.recycle(r);
//!             }
//!             // No UDP sockets here (see `Endpoint::udp_bind`).
//!             Some(DatagramEvent::Udp(..) | DatagramEvent::UdpError(..)) => {}
//!             None => {}
//!         }
//!     }
//!     /// Steps 2, 3 and 5: timers, output, cleanup. Returns the packets to send.
//!     fn drive(&mut self, now: Instant) -> Vec<Vec<u8>> {
//!         let mut out = Vec::new();
//!         let mut buf = [0u8; 1500];
//!         while let Some(t) = self.ep.poll_transmit(now, &mut buf) { out.push(buf[..t.len].to_vec()) }
//!         for (&h, c) in self.conns.iter_mut() {
//!             if c.poll_timeout().is_some_and(|t| t <= now) { c.handle_timeout(now) }
//!             while let Some(t) = c.poll_transmit(now, &mut buf) { out.push(buf[..t.len].to_vec()) }
//!             if c.state() == tcpcore::State::Closed { self.ep.release_tuple(h, c) } // FA-02
//!         }
//!         if self.ep.poll_timeout().is_some_and(|t| t <= now) { self.ep.handle_timeout(now) }
//!         let drained: Vec<_> = self.conns.iter().filter(|(_, c)| c.is_drained()).map(|(h, _)| *h).collect();
//!         for h in drained {
//!             let c = self.conns.remove(&h).unwrap();
//!             self.ep.connection_closed(h, &c); // keeps a compact TIME-WAIT entry if needed
//!         }
//!         out
//!     }
//!     fn next_deadline(&self) -> Option<Instant> {
//!         self.conns.values().filter_map(Connection::poll_timeout).chain(self.ep.poll_timeout()).min()
//!     }
//! }
//!
//! let server_addr: SocketAddr = "10.0.0.2:7".parse().unwrap();
//! let mut server = Host { ep: Endpoint::new(EndpointConfig { seed: 1, ..Default::default() }), conns: BTreeMap::new() };
//! let mut client = Host { ep: Endpoint::new(EndpointConfig { seed: 2, ..Default::default() }), conns: BTreeMap::new() };
//! server.ep.listen(server_addr).unwrap();
//! let mut now = Instant::ZERO;
//! let (h, conn) = client.ep.connect(now, "10.0.0.1".parse().unwrap(), server_addr).unwrap();
//! client.conns.insert(h, conn);
//!
//! let mut echoed = Vec::new();
//! let mut sent = false;
//! while now < Instant::from_secs(5) {
//!     // The applications: the client writes once, the server echoes, the client reads.
//!     let c = client.conns.get_mut(&h).unwrap();
//!     while let Some(event) = c.poll_event() {
//!         if event == tcpcore::Event::Connected && !sent {
//!             c.write(b"ping").unwrap();
//!             sent = true;
//!         }
//!     }
//!     let mut buf = [0u8; 64];
//!     while let Ok(n @ 1..) = c.read(&mut buf) { echoed.extend_from_slice(&buf[..n]) }
//!     for s in server.conns.values_mut() {
//!         while let Ok(n @ 1..) = s.read(&mut buf) { s.write(&buf[..n]).unwrap(); }
//!     }
//!     if echoed == b"ping" { break }
//!     // The network: deliver everything after 1 ms, or sleep until the next deadline.
//!     let (to_server, to_client) = (client.drive(now), server.drive(now));
//!     if to_server.is_empty() && to_client.is_empty() {
//!         now = [client.next_deadline(), server.next_deadline()].into_iter().flatten().min()
//!             .unwrap_or(now + Duration::from_millis(1)).max(now + Duration::from_millis(1));
//!         continue;
//!     }
//!     now += Duration::from_millis(1);
//!     for p in to_server { server.receive(now, &p) }
//!     for p in to_client { client.receive(now, &p) }
//! }
//! assert_eq!(echoed, b"ping");
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cc;
pub mod config;
pub mod conn;
pub mod endpoint;
mod error;
mod event;
pub mod pcap;
pub mod rng;
mod stats;
mod time;
pub mod wire;

pub use config::{ConnConfig, EcnMode, EndpointConfig, FastOpenConfig, Offload, SharedConnConfig};
pub use conn::{
    CaState, ConnParams, Connection, SeqVars, State, SynInfo, TcpInfo, SCOREBOARD_CAPACITY,
};
pub use endpoint::{
    ConnectionHandle, ConnectionRequest, DatagramEvent, Decision, Endpoint, FourTuple,
    IcmpUnreachable, InterceptMode, InterceptOptions, InterceptStats, ListenOptions, PathMtu,
    Reassembled, RequestId, SynCookies, TimeWaitEntry, UdpHandle, UdpIcmpError, UdpRecv,
    UdpSendError, UdpSocket, UdpSocketStats, Unreachable,
};
pub use error::{ConnectionError, EndpointError, ReadError, WriteError};
pub use event::Event;
pub use stats::{EndpointStats, StateCounts};
pub use time::Instant;
pub use wire::udp::UdpDatagram;

/// One IP packet written by `poll_transmit` into the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Length of the packet at the start of the buffer.
    pub len: usize,
    /// Set when the packet is a TCP super-segment for the device to cut into segments of this
    /// many payload bytes (GSO/TSO; only with [`Offload::gso_max_size`]). Each segment gets a
    /// copy of the headers, as Linux's TSO does: same options, PSH and FIN on the last only.
    pub gso_size: Option<u16>,
    /// The TCP checksum field holds only the pseudo-header sum, for the device to complete
    /// from the start of the TCP header to the end of the packet ([`Offload::tx_checksum`]).
    pub csum_partial: bool,
}

impl Transmit {
    /// An ordinary packet of `len` bytes with a complete checksum.
    pub fn plain(len: usize) -> Self {
        Transmit { len, gso_size: None, csum_partial: false }
    }
}
#[cfg(feature = "sim")]
pub mod sim;
