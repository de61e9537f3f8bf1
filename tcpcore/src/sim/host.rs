//! A TCP host for the simulator: an [`Endpoint`], the connections it made or accepted, one
//! application per connection, and optional invariant checks after every step.
//!
//! [`Host`] implements [`Node`]: packets go to the endpoint and on to their connection; output
//! is the endpoint's resets first, then the connections' segments round-robin (one segment
//! per connection per turn, so a bulk sender cannot starve the others); the deadline is the
//! earliest connection timer or application deadline ([`App::poll_timeout`]). After every
//! step the applications run and drained connections are dropped (their applications move to
//! [`Host::finished`]).
//!
//! With [`Host::intercept`] the host also terminates connections to any address and port
//! (AI-01), and in [`InterceptMode::Decide`] its decision policy answers each connection
//! request in the step the SYN arrives (AI-02). Pair it with
//! [`Network::set_default_route`](super::Network::set_default_route) so that packets to
//! every address reach it.
//!
//! Nothing here allocates in steady state: connections live in a `BTreeMap` (deterministic
//! order, no allocation for lookups) and applications reuse their own buffers.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::Bound;

use super::{check_connection, ConnWatch, Node};
use crate::config::EndpointConfig;
use crate::endpoint::{
    ConnectionHandle, ConnectionRequest, DatagramEvent, Decision, Endpoint, InterceptMode,
    InterceptOptions, ListenOptions,
};
use crate::{Connection, EndpointError, Event, Instant};

/// The application side of one connection, run by its [`Host`] after every simulator step.
pub trait App {
    /// An event the connection reported (called before [`App::poll`] in the same step).
    fn on_event(&mut self, now: Instant, conn: &mut Connection, event: Event) {
        let _ = (now, conn, event);
    }

    /// Read, write, shut down: whatever the application does at `now`.
    fn poll(&mut self, now: Instant, conn: &mut Connection);

    /// When the application next wants [`App::poll`] called although nothing happened on its
    /// connection (a reader that reads on a schedule). After a poll at or past it, it must
    /// move on or be `None`, or the simulator livelocks.
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}

/// A live connection with its application.
#[derive(Debug)]
struct Slot<A> {
    conn: Connection,
    app: A,
    watch: ConnWatch,
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

/// Answers a connection request held for a decision ([`Host::intercept`], AI-02).
pub type Decider = Box<dyn FnMut(Instant, &ConnectionRequest) -> Decision>;

/// A host's interception: who gets the intercepted connections, and who decides.
struct Intercepting<A> {
    accept: Acceptor<A>,
    decide: Decider,
}

/// An endpoint plus its connections and their applications, as a simulator [`Node`].
pub struct Host<A: App> {
    endpoint: Endpoint,
    conns: BTreeMap<ConnectionHandle, Slot<A>>,
    accept: Option<Acceptor<A>>,
    intercept: Option<Intercepting<A>>,
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
            intercept: None,
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

    /// Intercept connections to every address and port that no listener takes (AI-01): the
    /// endpoint's interception is set to `opts`, and each intercepted connection gets the
    /// application `accept` makes. In [`InterceptMode::Decide`], `decide` answers every
    /// connection request in the step its SYN arrives, as an application that decides at
    /// once (AI-02); in the other modes it is never called. [`InterceptMode::Off`] turns
    /// interception off again.
    pub fn intercept(
        &mut self,
        opts: InterceptOptions,
        accept: impl FnMut(&Connection) -> A + 'static,
        decide: impl FnMut(Instant, &ConnectionRequest) -> Decision + 'static,
    ) {
        // Intercepted connections are accepted as they complete: the queue is empty.
        let orphans = self.endpoint.set_interception(opts);
        debug_assert!(orphans.is_empty());
        self.intercept = (opts.mode != InterceptMode::Off)
            .then(|| Intercepting { accept: Box::new(accept), decide: Box::new(decide) });
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
        self.conns.insert(h, Slot { conn, app, watch: ConnWatch::default() });
        Ok(h)
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The endpoint, to change its settings mid-run (a key rotation, listener options).
    pub fn endpoint_mut(&mut self) -> &mut Endpoint {
        &mut self.endpoint
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

    /// Check every live connection's invariants with [`check_connection`], panicking with
    /// the connection's variables if one fails.
    pub fn check_invariants(&mut self, now: Instant) {
        for slot in self.conns.values_mut() {
            check_connection(now, &slot.conn, &mut slot.watch);
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
        // FA-02: closed (by a timeout too) but held: its 4-tuple is free for a new one.
        for (&h, slot) in &self.conns {
            if slot.conn.state() == crate::State::Closed {
                self.endpoint.release_tuple(h, &slot.conn);
            }
        }
        self.drained.clear();
        // A drained connection may still hold bytes a slow application has not read yet
        // (TIME-WAIT after both FINs): it stays until they are read, as a socket would.
        let gone = |s: &Slot<A>| s.conn.is_drained() && s.conn.readable_bytes() == 0;
        self.drained.extend(self.conns.iter().filter(|(_, s)| gone(s)).map(|(h, _)| *h));
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

    /// AI-02: answer every new connection request at once with the host's decider.
    fn decide_requests(&mut self, now: Instant) {
        let Some(i) = self.intercept.as_mut() else { return };
        while let Some(req) = self.endpoint.poll_request() {
            let decision = (i.decide)(now, &req);
            // Just handed out, so still waiting: this cannot fail.
            let decided = self.endpoint.decide(now, req.id, decision);
            debug_assert!(decided.is_ok());
        }
    }
}

impl<A: App> Node for Host<A> {
    fn handle(&mut self, now: Instant, packet: &[u8]) {
        match self.endpoint.handle(now, packet) {
            None => {}
            Some(DatagramEvent::Connection(h, seg)) => {
                if let Some(slot) = self.conns.get_mut(&h) {
                    slot.conn.handle_segment(now, &seg);
                    // FA-02: closed but held: its 4-tuple is free for a new connection.
                    if slot.conn.state() == crate::State::Closed {
                        self.endpoint.release_tuple(h, &slot.conn);
                    }
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
            Some(DatagramEvent::Reassembled(r)) => {
                self.handle(now, r.packet());
                self.endpoint.recycle(r);
            }
            // Simulated hosts run TCP applications only.
            Some(DatagramEvent::Udp(..) | DatagramEvent::UdpError(..)) => {}
            Some(DatagramEvent::NewConnection(h, conn)) => {
                // The application accepts at once: take it off its listener's accept queue
                // (the only connection there), the regular listener's or interception's.
                let listener = self.listen_addr.filter(|&a| self.endpoint.accept_queue_len(a) > 0);
                let (accepted, accept) = match listener {
                    Some(addr) => (self.endpoint.accept(addr), self.accept.as_mut()),
                    None => (
                        self.endpoint.accept_intercepted(),
                        self.intercept.as_mut().map(|i| &mut i.accept),
                    ),
                };
                debug_assert!(accepted.is_none_or(|a| a == h), "another connection was queued");
                let Some(accept) = accept.filter(|_| accepted == Some(h)) else {
                    self.endpoint.connection_closed(h, &conn);
                    return;
                };
                let app = accept(&conn);
                self.conns.insert(h, Slot { conn: *conn, app, watch: ConnWatch::default() });
            }
        }
        self.decide_requests(now);
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
        // A drained connection kept for its unread bytes has no timer left to honour.
        let live = self.conns.values().filter(|s| !s.conn.is_drained());
        let conns = live.filter_map(|s| s.conn.poll_timeout());
        let apps = self.conns.values().filter_map(|s| s.app.poll_timeout());
        conns.chain(apps).chain(self.endpoint.poll_timeout()).min()
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
