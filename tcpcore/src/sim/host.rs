//! A TCP host for the simulator: an [`Endpoint`], the connections it made or accepted, one
//! application per connection, and optional invariant checks after every step.
//!
//! [`Host`] implements [`Node`]: packets go to the endpoint and on to their connection; output
//! is the endpoint's resets first, then the connections' segments round-robin (one segment
//! per connection per turn, so a bulk sender cannot starve the others); the deadline is the
//! earliest connection timer. After every step the applications run and drained connections
//! are dropped (their applications move to [`Host::finished`]).
//!
//! Nothing here allocates in steady state: connections live in a `BTreeMap` (deterministic
//! order, no allocation for lookups) and applications reuse their own buffers.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::Bound;

use super::Node;
use crate::config::EndpointConfig;
use crate::endpoint::{ConnectionHandle, DatagramEvent, Endpoint, ListenOptions};
use crate::wire::SeqNum;
use crate::{Connection, EndpointError, Event, Instant, State};

/// The application side of one connection, run by its [`Host`] after every simulator step.
pub trait App {
    /// An event the connection reported (called before [`App::poll`] in the same step).
    fn on_event(&mut self, now: Instant, conn: &mut Connection, event: Event) {
        let _ = (now, conn, event);
    }

    /// Read, write, shut down: whatever the application does at `now`.
    fn poll(&mut self, now: Instant, conn: &mut Connection);
}

/// What [`Host`] remembers per connection for the invariant checks.
#[derive(Clone, Copy, Debug, Default)]
struct Watch {
    /// RCV.NXT after the previous step, once the peer's ISN is known.
    rcv_nxt: Option<SeqNum>,
    /// SND.UNA and SND.MAX after the previous step.
    snd: Option<(SeqNum, SeqNum)>,
    /// The right edge of the send window (SND.UNA + SND.WND) furthest to the right so far.
    edge: Option<SeqNum>,
}

/// A live connection with its application.
#[derive(Debug)]
struct Slot<A> {
    conn: Connection,
    app: A,
    watch: Watch,
}

/// A connection that drained and was dropped, with its application's final state.
#[derive(Debug)]
pub struct Finished<A> {
    /// The handle it had (the endpoint may reuse it).
    pub handle: ConnectionHandle,
    /// Our address.
    pub local: SocketAddr,
    /// The peer's address.
    pub remote: SocketAddr,
    /// Why it closed: `None` for a clean close.
    pub error: Option<crate::ConnectionError>,
    /// When it was dropped.
    pub at: Instant,
    /// The application.
    pub app: A,
}

/// Makes the application of a connection accepted by a listener.
pub type Acceptor<A> = Box<dyn FnMut(&Connection) -> A>;

/// An endpoint plus its connections and their applications, as a simulator [`Node`].
pub struct Host<A: App> {
    endpoint: Endpoint,
    conns: BTreeMap<ConnectionHandle, Slot<A>>,
    accept: Option<Acceptor<A>>,
    /// The address `accept` listens on.
    listen_addr: Option<SocketAddr>,
    /// Scratch list of drained connections (kept to avoid allocating per step).
    drained: Vec<ConnectionHandle>,
    finished: Vec<Finished<A>>,
    /// The connection whose turn it is to transmit first.
    cursor: Option<ConnectionHandle>,
    check: bool,
}

impl<A: App + core::fmt::Debug> core::fmt::Debug for Host<A> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Host")
            .field("endpoint", &self.endpoint)
            .field("conns", &self.conns)
            .field("finished", &self.finished)
            .field("check", &self.check)
            .finish_non_exhaustive()
    }
}

impl<A: App> Host<A> {
    /// A host with a fresh endpoint and no connections.
    pub fn new(cfg: EndpointConfig) -> Self {
        Host {
            endpoint: Endpoint::new(cfg),
            conns: BTreeMap::new(),
            accept: None,
            listen_addr: None,
            drained: Vec::new(),
            finished: Vec::new(),
            cursor: None,
            check: false,
        }
    }

    /// Check the invariants (see [`Host::check_invariants`]) after every step.
    pub fn set_checks(&mut self, on: bool) {
        self.check = on;
    }

    /// Accept connections on `addr`, giving each the application `accept` makes.
    ///
    /// # Errors
    /// As [`Endpoint::listen`].
    pub fn listen(
        &mut self,
        addr: SocketAddr,
        accept: impl FnMut(&Connection) -> A + 'static,
    ) -> Result<(), EndpointError> {
        self.listen_with(addr, ListenOptions::default(), accept)
    }

    /// Like [`Host::listen`], with the listener's queue sizes and SYN-cookie policy.
    ///
    /// # Errors
    /// As [`Endpoint::listen_with`].
    pub fn listen_with(
        &mut self,
        addr: SocketAddr,
        opts: ListenOptions,
        accept: impl FnMut(&Connection) -> A + 'static,
    ) -> Result<(), EndpointError> {
        self.endpoint.listen_with(addr, opts)?;
        self.accept = Some(Box::new(accept));
        self.listen_addr = Some(addr);
        Ok(())
    }

    /// Open a connection from `local_ip` to `remote`, driven by `app`.
    ///
    /// # Errors
    /// As [`Endpoint::connect`].
    pub fn connect(
        &mut self,
        now: Instant,
        local_ip: IpAddr,
        remote: SocketAddr,
        app: A,
    ) -> Result<ConnectionHandle, EndpointError> {
        let (h, conn) = self.endpoint.connect(now, local_ip, remote)?;
        self.conns.insert(h, Slot { conn, app, watch: Watch::default() });
        Ok(h)
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Live connections and their applications, in handle order.
    pub fn connections(&self) -> impl Iterator<Item = (ConnectionHandle, &Connection, &A)> {
        self.conns.iter().map(|(h, s)| (*h, &s.conn, &s.app))
    }

    /// The live connection `h` and its application.
    pub fn connection(&self, h: ConnectionHandle) -> Option<(&Connection, &A)> {
        self.conns.get(&h).map(|s| (&s.conn, &s.app))
    }

    /// The live connection `h` and its application, mutably (for application calls between
    /// steps).
    pub fn connection_mut(&mut self, h: ConnectionHandle) -> Option<(&mut Connection, &mut A)> {
        self.conns.get_mut(&h).map(|s| (&mut s.conn, &mut s.app))
    }

    /// The live connection from `local` to `remote`, if any.
    pub fn find(&self, local: SocketAddr, remote: SocketAddr) -> Option<&Connection> {
        let mut it = self.conns.values().map(|s| &s.conn);
        it.find(|c| c.local_addr() == local && c.remote_addr() == remote)
    }

    /// Connections that drained and were dropped, oldest first.
    pub fn finished(&self) -> &[Finished<A>] {
        &self.finished
    }

    /// Take the connections that drained so far (so a long run does not keep them all).
    pub fn take_finished(&mut self) -> Vec<Finished<A>> {
        core::mem::take(&mut self.finished)
    }

    /// Every application, live ones first (in handle order), then finished ones.
    pub fn apps(&self) -> impl Iterator<Item = &A> {
        self.conns.values().map(|s| &s.app).chain(self.finished.iter().map(|f| &f.app))
    }

    /// Check every live connection's invariants, panicking with the connection's variables
    /// if one fails, and remember what the next check compares against:
    ///
    /// - SND.UNA ≤ SND.NXT ≤ SND.MAX, and neither SND.UNA nor SND.MAX ever moves left;
    /// - SND.MAX ≤ E (+ 1 while our SYN is unacknowledged), where E is the furthest right
    ///   edge SND.UNA + SND.WND this connection has held after any step. We send only within
    ///   the window offered when sending (data and FIN alike), and a well-behaved receiver
    ///   never moves its right edge left (RFC 9293 §3.8.6.2.2), so as data is acknowledged
    ///   and the window shrinks, E stays put and everything sent stays below it. The SYN is
    ///   sent before any window is known, hence the + 1;
    /// - RCV.NXT never moves left once the peer's ISN is known;
    /// - the send buffer holds no more than its capacity, the receive buffer no more than its
    ///   limit (capacity plus the slack for scale round-off, RFC 7323 §2.4), and the window
    ///   we advertised (RCV.ADV - RCV.NXT) fits the space left below that limit.
    pub fn check_invariants(&mut self, now: Instant) {
        for slot in self.conns.values_mut() {
            check_conn(now, &slot.conn, &mut slot.watch);
        }
    }

    /// Run the applications and drop drained connections (what `after_step` does, without
    /// the invariant checks).
    pub fn run_apps(&mut self, now: Instant) {
        for slot in self.conns.values_mut() {
            while let Some(ev) = slot.conn.poll_event() {
                slot.app.on_event(now, &mut slot.conn, ev);
            }
            slot.app.poll(now, &mut slot.conn);
        }
        self.drained.clear();
        self.drained
            .extend(self.conns.iter().filter(|(_, s)| s.conn.is_drained()).map(|(h, _)| *h));
        for i in 0..self.drained.len() {
            let h = self.drained[i];
            let Some(Slot { conn, app, .. }) = self.conns.remove(&h) else { continue };
            // Keeps a compact TIME-WAIT entry when the connection is in TIME-WAIT.
            self.endpoint.connection_closed(h, &conn);
            self.finished.push(Finished {
                handle: h,
                local: conn.local_addr(),
                remote: conn.remote_addr(),
                error: conn.error(),
                at: now,
                app,
            });
        }
    }
}

/// The invariants of [`Host::check_invariants`] for one connection.
#[track_caller]
fn check_conn(now: Instant, conn: &Connection, w: &mut Watch) {
    let v = conn.seq_vars();
    let who = || {
        format!(
            "{} -> {} at {now} in {:?}: {v:?}",
            conn.local_addr(),
            conn.remote_addr(),
            conn.state()
        )
    };
    assert!(
        v.snd_una <= v.snd_nxt && v.snd_nxt <= v.snd_max,
        "SND.UNA <= SND.NXT <= SND.MAX violated: {}",
        who()
    );
    if let Some((una, max)) = w.snd {
        assert!(v.snd_una >= una, "SND.UNA moved left from {una:?}: {}", who());
        assert!(v.snd_max >= max, "SND.MAX moved left from {max:?}: {}", who());
    }
    w.snd = Some((v.snd_una, v.snd_max));
    let edge = v.snd_una + v.snd_wnd;
    let e = w.edge.map_or(edge, |e| e.max(edge));
    w.edge = Some(e);
    let syn_unacked = u32::from(v.snd_una == v.iss);
    assert!(v.snd_max <= e + syn_unacked, "sent beyond the offered window (edge {e:?}): {}", who());
    if !matches!(conn.state(), State::SynSent | State::Listen) {
        if let Some(prev) = w.rcv_nxt {
            assert!(v.rcv_nxt >= prev, "RCV.NXT moved left from {prev:?}: {}", who());
        }
        w.rcv_nxt = Some(v.rcv_nxt);
    }
    assert!(v.send_buffered <= v.send_capacity, "send buffer over capacity: {}", who());
    assert!(v.recv_buffered <= v.recv_limit, "receive buffer over its limit: {}", who());
    if conn.state().can_receive() && v.rcv_adv > v.rcv_nxt {
        let free = (v.recv_limit - v.recv_buffered) as u32;
        assert!(
            v.rcv_adv.since(v.rcv_nxt) <= free,
            "advertised more than the free space {free}: {}",
            who()
        );
    }
}

impl<A: App> Node for Host<A> {
    fn handle(&mut self, now: Instant, packet: &[u8]) {
        match self.endpoint.handle(now, packet) {
            None => {}
            Some(DatagramEvent::Connection(h, seg)) => {
                if let Some(slot) = self.conns.get_mut(&h) {
                    slot.conn.handle_segment(now, &seg);
                }
            }
            Some(DatagramEvent::PathMtu(h, p)) => {
                if let Some(slot) = self.conns.get_mut(&h) {
                    slot.conn.handle_path_mtu(now, p.mtu, p.seq);
                }
            }
            Some(DatagramEvent::IcmpError(h, e)) => {
                if let Some(slot) = self.conns.get_mut(&h) {
                    slot.conn.handle_icmp_error(now, e);
                }
            }
            Some(DatagramEvent::NewConnection(h, conn)) => {
                let (Some(accept), Some(addr)) = (self.accept.as_mut(), self.listen_addr) else {
                    self.endpoint.connection_closed(h, &conn);
                    return;
                };
                // The application accepts at once: take it off the listener's accept queue.
                let accepted = self.endpoint.accept(addr);
                debug_assert_eq!(accepted, Some(h));
                let app = accept(&conn);
                self.conns.insert(h, Slot { conn: *conn, app, watch: Watch::default() });
            }
        }
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if let Some(t) = self.endpoint.poll_transmit(now, buf) {
            return Some(t.len);
        }
        // Round-robin: from the cursor to the end, then from the start up to the cursor.
        let start = self.cursor.map_or(Bound::Unbounded, Bound::Included);
        let mut sent = None;
        for (h, slot) in self.conns.range_mut((start, Bound::Unbounded)) {
            if let Some(t) = slot.conn.poll_transmit(now, buf) {
                sent = Some((*h, t.len));
                break;
            }
        }
        if let (None, Some(cursor)) = (sent, self.cursor) {
            for (h, slot) in self.conns.range_mut(..cursor) {
                if let Some(t) = slot.conn.poll_transmit(now, buf) {
                    sent = Some((*h, t.len));
                    break;
                }
            }
        }
        let (h, len) = sent?;
        // Next turn starts after the connection that just sent.
        let next = self.conns.range((Bound::Excluded(h), Bound::Unbounded)).next();
        self.cursor = next.map(|(h, _)| *h);
        Some(len)
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        let conns = self.conns.values().filter_map(|s| s.conn.poll_timeout());
        conns.chain(self.endpoint.poll_timeout()).min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.endpoint.poll_timeout().is_some_and(|t| t <= now) {
            self.endpoint.handle_timeout(now);
        }
        for slot in self.conns.values_mut() {
            if slot.conn.poll_timeout().is_some_and(|t| t <= now) {
                slot.conn.handle_timeout(now);
            }
        }
    }

    fn after_step(&mut self, now: Instant) {
        if self.check {
            self.check_invariants(now);
        }
        self.run_apps(now);
    }
}

/// Bytes of the deterministic stream `seed` starting at stream offset `offset`: word `i` of
/// the stream is SplitMix64 of `seed + i`, little-endian.
pub fn pattern_fill(seed: u64, offset: u64, out: &mut [u8]) {
    let mut pos = offset;
    let mut i = 0;
    while i < out.len() {
        let word = splitmix(seed.wrapping_add(pos / 8)).to_le_bytes();
        let skip = (pos % 8) as usize;
        let n = (8 - skip).min(out.len() - i);
        out[i..i + n].copy_from_slice(&word[skip..skip + n]);
        i += n;
        pos += n as u64;
    }
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A running hash of a byte stream that does not depend on how the stream was split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamHash {
    h: u64,
    carry: [u8; 8],
    carried: usize,
    len: u64,
}

impl Default for StreamHash {
    fn default() -> Self {
        StreamHash { h: 0xcbf2_9ce4_8422_2325, carry: [0; 8], carried: 0, len: 0 }
    }
}

impl StreamHash {
    /// Mix in the next bytes of the stream.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.carried > 0 {
            let n = (8 - self.carried).min(data.len());
            self.carry[self.carried..self.carried + n].copy_from_slice(&data[..n]);
            self.carried += n;
            data = &data[n..];
            if self.carried < 8 {
                return;
            }
            self.word(u64::from_le_bytes(self.carry));
            self.carried = 0;
        }
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            self.word(u64::from_le_bytes(w.try_into().unwrap_or_default()));
        }
        let rest = words.remainder();
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carried = rest.len();
    }

    fn word(&mut self, w: u64) {
        let h = (self.h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.h = h ^ (h >> 29);
    }

    /// The hash of the stream so far (its length included).
    pub fn value(&self) -> u64 {
        let mut tail = [0u8; 8];
        tail[..self.carried].copy_from_slice(&self.carry[..self.carried]);
        let mut h = *self;
        h.word(u64::from_le_bytes(tail));
        h.word(self.len);
        h.h
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Nothing hashed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Scratch size for [`BulkApp`] writes and checks.
const CHUNK: usize = 64 * 1024;

/// Sends `to_send` bytes of the stream `send_seed` (see [`pattern_fill`]), then shuts down
/// writing; reads everything, checking it against the stream `recv_seed` and hashing it.
#[derive(Debug)]
pub struct BulkApp {
    /// Bytes to send.
    pub to_send: u64,
    /// Bytes written into the connection so far.
    pub written: u64,
    /// Seed of the stream we send.
    pub send_seed: u64,
    /// Hash of what we wrote.
    pub sent_hash: StreamHash,
    /// Seed of the stream we expect.
    pub recv_seed: u64,
    /// Hash of what we read.
    pub recv_hash: StreamHash,
    /// Stream offset of the first byte that differed from the expected stream.
    pub first_mismatch: Option<u64>,
    /// The peer's FIN was read (end of stream).
    pub eof: bool,
    /// When everything was sent and acknowledged (FIN included) and the peer's stream ended.
    pub done_at: Option<Instant>,
    /// The connection failed with this error.
    pub error: Option<crate::ConnectionError>,
    /// The connection was established at this time.
    pub connected_at: Option<Instant>,
    out: Box<[u8]>,
    expect: Box<[u8]>,
}

impl BulkApp {
    /// An application sending `to_send` bytes of stream `send_seed` and expecting stream
    /// `recv_seed`.
    pub fn new(to_send: u64, send_seed: u64, recv_seed: u64) -> Self {
        BulkApp {
            to_send,
            written: 0,
            send_seed,
            sent_hash: StreamHash::default(),
            recv_seed,
            recv_hash: StreamHash::default(),
            first_mismatch: None,
            eof: false,
            done_at: None,
            error: None,
            connected_at: None,
            out: vec![0; CHUNK].into_boxed_slice(),
            expect: vec![0; CHUNK].into_boxed_slice(),
        }
    }

    /// Everything sent and acknowledged, and the peer's whole stream read.
    pub fn is_done(&self) -> bool {
        self.done_at.is_some()
    }

    fn check(&mut self, data: &[u8]) {
        let mut off = 0;
        while off < data.len() {
            let n = (data.len() - off).min(self.expect.len());
            let at = self.recv_hash.len();
            pattern_fill(self.recv_seed, at, &mut self.expect[..n]);
            let got = &data[off..off + n];
            if self.first_mismatch.is_none() && got != &self.expect[..n] {
                let i = got.iter().zip(self.expect.iter()).position(|(a, b)| a != b);
                self.first_mismatch = Some(at + i.unwrap_or(0) as u64);
            }
            self.recv_hash.update(got);
            off += n;
        }
    }

    fn write(&mut self, conn: &mut Connection) {
        while self.written < self.to_send && conn.writable_bytes() > 0 {
            let n = (self.to_send - self.written).min(CHUNK as u64) as usize;
            let n = n.min(conn.writable_bytes());
            pattern_fill(self.send_seed, self.written, &mut self.out[..n]);
            match conn.write(&self.out[..n]) {
                Ok(0) | Err(_) => break,
                Ok(k) => {
                    self.sent_hash.update(&self.out[..k]);
                    self.written += k as u64;
                }
            }
        }
        if self.written == self.to_send {
            conn.shutdown_write();
        }
    }

    fn read(&mut self, conn: &mut Connection) {
        // One call sees every unread byte (as up to two slices) and consumes them all.
        conn.read_with(|bufs| {
            bufs.iter()
                .map(|b| {
                    self.check(b);
                    b.len()
                })
                .sum()
        });
        let mut one = [0u8; 1];
        match conn.read(&mut one) {
            Ok(0) => self.eof = true,
            Ok(_) => self.check(&one),
            Err(crate::ReadError::Failed(e)) => self.error = Some(e),
            Err(_) => {}
        }
    }
}

impl App for BulkApp {
    fn on_event(&mut self, now: Instant, conn: &mut Connection, event: Event) {
        match event {
            Event::Connected => self.connected_at = Some(now),
            Event::Closed(e) => self.error = self.error.or(e),
            _ => {}
        }
        let _ = conn;
    }

    fn poll(&mut self, now: Instant, conn: &mut Connection) {
        if conn.error().is_some() {
            self.error = self.error.or(conn.error());
            return;
        }
        self.write(conn);
        self.read(conn);
        let fin_acked = matches!(conn.state(), State::TimeWait | State::Closed);
        if self.done_at.is_none() && self.eof && self.written == self.to_send && fin_acked {
            self.done_at = Some(now);
        }
    }
}
