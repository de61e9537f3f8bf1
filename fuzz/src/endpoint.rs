//! The `endpoint` target's harness: one tcpcore [`Endpoint`] (a listener, or an active open)
//! facing the fuzz [`Peer`], driven by a fuzz-chosen sequence of [`Action`]s, with every
//! invariant checked after every step.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use tcpcore::wire::SeqNum;
use tcpcore::{
    ConnConfig, Connection, ConnectionHandle, DatagramEvent, Endpoint, EndpointConfig, Instant,
    ListenOptions, ReadError, State, SynCookies,
};

use crate::invariants::check_conn;
use crate::peer::{self, Peer, SegSpec, OURS, PEER};
use crate::{stream_fill, stream_mismatch};
use tcpcore::sim::ConnWatch;

/// How the run is set up.
#[derive(Arbitrary, Clone, Debug)]
pub struct Setup {
    /// Listen and let the peer open (else connect to the peer).
    pub passive: bool,
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// Offer timestamps.
    pub timestamps: bool,
    /// Offer SACK.
    pub sack: bool,
    /// Offer window scaling.
    pub window_scaling: bool,
    /// Send and receive buffers: 1 KiB << (n % 9).
    pub buffers: u8,
    /// Interface MTU: 576 (1280 for IPv6) plus this modulo 8424.
    pub mtu: u16,
    /// Nagle off.
    pub nodelay: bool,
    /// Keepalive on.
    pub keepalive: bool,
    /// A user timeout of this many seconds.
    pub user_timeout: Option<u8>,
    /// SYN cookies: when full, always, never (modulo 3).
    pub cookies: u8,
    /// The peer's port (passive) and ISN.
    pub port: u16,
    /// The peer's ISN.
    pub isn: u32,
    /// The endpoint's seed.
    pub seed: u8,
}

/// One step of the run.
#[derive(Arbitrary, Clone, Debug)]
pub enum Action {
    /// The peer sends a segment.
    Send(SegSpec),
    /// Time passes: 2^(n % 36) microseconds, firing every timer due on the way.
    Advance(u8),
    /// Time passes to the earliest deadline.
    ToDeadline,
    /// The application writes this many bytes.
    Write(u16),
    /// The application reads up to this many bytes.
    Read(u16),
    /// The application shuts down writing.
    ShutdownWrite,
    /// The application closes.
    Close,
    /// The application aborts.
    Abort,
    /// Arbitrary bytes arrive (never for the peer's own 4-tuple, which the model tracks).
    Raw(Vec<u8>),
    /// A router reports a smaller MTU for a segment at SND.UNA plus this offset.
    TooBig {
        /// The reported MTU.
        mtu: u16,
        /// Offset of the quoted sequence number from SND.UNA.
        seq: i16,
    },
}

/// The whole fuzz input.
#[derive(Arbitrary, Clone, Debug)]
pub struct Input {
    /// The setup.
    pub setup: Setup,
    /// The steps.
    pub actions: Vec<Action>,
}

/// The application of the connection to the peer: how much it wrote and read.
#[derive(Clone, Copy, Debug, Default)]
struct App {
    written: u64,
    read: u64,
    /// The connection reached a synchronized state (IRS is meaningful).
    synced: bool,
}

/// Timer firings allowed in one advance before the run is declared a livelock.
const MAX_FIRINGS: u32 = 100_000;
/// Packets allowed out of one flush before the run is declared a livelock.
const MAX_BURST: u32 = 100_000;
/// The peer's port when the endpoint opens, and the listener's port.
const PORT: u16 = 80;

/// The endpoint, its connections, the peer and the application.
pub struct Harness {
    now: Instant,
    ep: Endpoint,
    cfg: ConnConfig,
    conns: BTreeMap<ConnectionHandle, (Connection, ConnWatch)>,
    listen: Option<SocketAddr>,
    /// The connection of the peer's 4-tuple, if live.
    main: Option<ConnectionHandle>,
    app: App,
    peer: Peer,
    buf: Vec<u8>,
}

fn addrs(v6: bool) -> (IpAddr, IpAddr) {
    if v6 {
        ("fd00::1".parse().expect("addr"), "fd00::2".parse().expect("addr"))
    } else {
        ([10, 0, 0, 1].into(), [10, 0, 0, 2].into())
    }
}

impl Harness {
    /// Set up the endpoint as `s` says; an active open sends its SYN at once.
    pub fn new(s: &Setup) -> Self {
        let mut cfg = ConnConfig {
            timestamps: s.timestamps,
            sack: s.sack,
            window_scaling: s.window_scaling,
            nodelay: s.nodelay,
            keepalive: s.keepalive,
            user_timeout: s.user_timeout.map(|t| Duration::from_secs(u64::from(t))),
            ..ConnConfig::default()
        };
        cfg.send_buffer = 1024 << (s.buffers % 9);
        cfg.recv_buffer = 1024 << ((s.buffers / 9) % 9);
        let min_mtu = if s.v6 { 1280 } else { 576 };
        cfg.mtu = min_mtu + s.mtu % (9000 - min_mtu);
        let ecfg = EndpointConfig { seed: u64::from(s.seed), conn: cfg, ..Default::default() };
        let mut ep = Endpoint::new(ecfg);
        let (ours, theirs) = addrs(s.v6);
        ep.add_local_addr(ours);
        let now = Instant::ZERO;
        let mut conns = BTreeMap::new();
        let (local, peer_addr, listen, main) = if s.passive {
            let local = SocketAddr::new(ours, PORT);
            let cookies = [SynCookies::WhenFull, SynCookies::Always, SynCookies::Never];
            let opts = ListenOptions {
                syn_cookies: cookies[usize::from(s.cookies % 3)],
                ..Default::default()
            };
            ep.listen_with(local, opts).expect("listen");
            (local, SocketAddr::new(theirs, s.port.max(1)), Some(local), None)
        } else {
            let remote = SocketAddr::new(theirs, PORT);
            let (h, conn) = ep.connect(now, ours, remote).expect("connect");
            let local = conn.local_addr();
            conns.insert(h, (conn, ConnWatch::default()));
            (local, remote, None, Some(h))
        };
        let peer = Peer::new(peer_addr, local, SeqNum(s.isn));
        let buf = vec![0u8; 1 << 16];
        let mut h = Harness { now, ep, cfg, conns, listen, main, app: App::default(), peer, buf };
        h.settle();
        h
    }

    /// Run one action, then flush output, run the application's event loop, drop drained
    /// connections and check every invariant.
    pub fn step(&mut self, action: &Action) {
        match action {
            Action::Send(spec) => {
                let v = self.main_conn().map(Connection::seq_vars);
                let packet = self.peer.build(self.now, spec, v.as_ref());
                if self.peer.sending(&packet) {
                    self.deliver(&packet);
                }
            }
            Action::Raw(bytes) => {
                if !self.peer.is_own_tuple(bytes) {
                    self.deliver(bytes);
                }
            }
            Action::TooBig { mtu, seq } => {
                let una = self.main_conn().map_or(SeqNum(0), |c| c.seq_vars().snd_una);
                let at = una + *seq as i32 as u32;
                let packet = peer::too_big(self.peer.local, self.peer.addr, at, *mtu);
                self.deliver(&packet);
            }
            Action::Advance(n) => {
                let to = self.now + Duration::from_micros(1 << (n % 36));
                self.advance(to);
            }
            Action::ToDeadline => {
                if let Some(t) = self.deadline() {
                    self.advance(t);
                }
            }
            Action::Write(n) => self.write(usize::from(*n)),
            Action::Read(n) => self.read(usize::from(*n)),
            Action::ShutdownWrite => self.with_main(Connection::shutdown_write),
            Action::Close => self.with_main(Connection::close),
            Action::Abort => self.with_main(Connection::abort),
        }
        self.settle();
    }

    fn main_conn(&self) -> Option<&Connection> {
        self.main.and_then(|h| self.conns.get(&h)).map(|(c, _)| c)
    }

    fn with_main(&mut self, f: impl FnOnce(&mut Connection)) {
        if let Some((c, _)) = self.main.and_then(|h| self.conns.get_mut(&h)) {
            f(c);
        }
    }

    fn deliver(&mut self, packet: &[u8]) {
        let now = self.now;
        match self.ep.handle(now, packet) {
            None => {}
            Some(DatagramEvent::Connection(h, seg)) => {
                if let Some((c, _)) = self.conns.get_mut(&h) {
                    c.handle_segment(now, &seg);
                }
            }
            Some(DatagramEvent::PathMtu(h, p)) => {
                if let Some((c, _)) = self.conns.get_mut(&h) {
                    c.handle_path_mtu(now, p.mtu, p.seq);
                }
            }
            Some(DatagramEvent::IcmpError(h, e)) => {
                if let Some((c, _)) = self.conns.get_mut(&h) {
                    c.handle_icmp_error(now, e);
                }
            }
            Some(DatagramEvent::Reassembled(r)) => {
                // Reassembly output goes through the same entry point as any packet.
                self.deliver(r.packet());
                self.ep.recycle(r);
            }
            // The fuzzed endpoint binds no UDP sockets.
            Some(DatagramEvent::Udp(..) | DatagramEvent::UdpError(..)) => {}
            Some(DatagramEvent::NewConnection(h, conn)) => {
                let listen = self.listen.expect("only a listener makes connections");
                assert_eq!(self.ep.accept(listen), Some(h), "the new connection is queued");
                if conn.local_addr() == self.peer.local && conn.remote_addr() == self.peer.addr {
                    self.main = Some(h);
                    self.app = App::default();
                }
                self.conns.insert(h, (*conn, ConnWatch::default()));
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        let conns = self.conns.values().filter_map(|(c, _)| c.poll_timeout());
        conns.chain(self.ep.poll_timeout()).min()
    }

    /// Fire every deadline up to `to`, in order, each at its own time, then stop at `to`.
    fn advance(&mut self, to: Instant) {
        let mut fired = 0;
        while let Some(t) = self.deadline().filter(|t| *t <= to) {
            self.now = self.now.max(t);
            let now = self.now;
            if self.ep.poll_timeout().is_some_and(|t| t <= now) {
                self.ep.handle_timeout(now);
            }
            for (c, _) in self.conns.values_mut() {
                if c.poll_timeout().is_some_and(|t| t <= now) {
                    c.handle_timeout(now);
                }
            }
            self.settle();
            fired += 1;
            assert!(fired < MAX_FIRINGS, "timers keep firing at {now} (deadline {t})");
        }
        self.now = self.now.max(to);
    }

    fn write(&mut self, n: usize) {
        let Some((c, _)) = self.main.and_then(|h| self.conns.get_mut(&h)) else { return };
        let n = n.min(self.buf.len());
        stream_fill(OURS, self.app.written as u32, &mut self.buf[..n]);
        if let Ok(k) = c.write(&self.buf[..n]) {
            assert!(k <= n, "write took {k} of {n} bytes");
            self.app.written += k as u64;
        }
    }

    fn read(&mut self, n: usize) {
        let Some((c, _)) = self.main.and_then(|h| self.conns.get_mut(&h)) else { return };
        let n = n.min(self.buf.len());
        let irs = c.seq_vars().irs;
        match c.read(&mut self.buf[..n]) {
            Ok(k) if k > 0 => {
                let at = (irs + 1 + self.app.read as u32).0;
                if let Some(i) = stream_mismatch(PEER, at, &self.buf[..k]) {
                    panic!("read byte {} is not the one the peer sent", self.app.read + i as u64);
                }
                self.app.read += k as u64;
            }
            Ok(_) | Err(ReadError::WouldBlock | ReadError::NotConnected | ReadError::Failed(_)) => {
            }
        }
    }

    /// Send everything due, run the application's event loop, drop drained connections,
    /// check the invariants.
    fn settle(&mut self) {
        self.flush();
        for (&h, (c, _)) in self.conns.iter_mut() {
            while c.poll_event().is_some() {}
            // FA-02: closed but held for the application: its 4-tuple is free again.
            if c.state() == tcpcore::State::Closed {
                self.ep.release_tuple(h, c);
            }
        }
        self.check();
        let drained: Vec<_> =
            self.conns.iter().filter(|(_, (c, _))| c.is_drained()).map(|(h, _)| *h).collect();
        for h in drained {
            let (c, _) = self.conns.remove(&h).expect("a live connection");
            self.ep.connection_closed(h, &c);
            if self.main == Some(h) {
                self.main = None;
            }
        }
    }

    fn flush(&mut self) {
        let now = self.now;
        let mut sent = 0;
        while let Some(t) = self.ep.poll_transmit(now, &mut self.buf) {
            if let Some(seg) = peer::emitted(&mut self.peer, &self.buf[..t.len]) {
                peer::check_endpoint_reply(&self.peer, &seg);
            }
            sent += 1;
            assert!(sent < MAX_BURST, "the endpoint keeps sending at {now}");
        }
        for (h, (c, _)) in self.conns.iter_mut() {
            // IRS means something once the connection left SYN-SENT.
            let synced = self.app.synced
                || !matches!(c.state(), State::SynSent | State::Closed | State::Listen);
            let main = self.main == Some(*h) && synced;
            while let Some(t) = c.poll_transmit(now, &mut self.buf) {
                assert!(t.gso_size.is_none() && !t.csum_partial, "no offload was configured");
                let seg = peer::emitted(&mut self.peer, &self.buf[..t.len]);
                if let (true, Some(seg)) = (main, seg) {
                    peer::check_conn_segment(&self.peer, &seg, &c.seq_vars(), self.app.written);
                }
                sent += 1;
                assert!(sent < MAX_BURST, "{h:?} keeps sending at {now}");
            }
        }
    }

    fn check(&mut self) {
        for (h, (c, w)) in self.conns.iter_mut() {
            check_conn(self.now, &self.cfg, c, w);
            if self.main != Some(*h) {
                continue;
            }
            if !matches!(c.state(), State::SynSent | State::Closed | State::Listen) {
                self.app.synced = true;
            }
            if self.app.synced {
                let v = c.seq_vars();
                assert!(
                    self.peer.covered(v.irs + 1, v.rcv_nxt),
                    "RCV.NXT {:?} (IRS {:?}) beyond what the peer sent",
                    v.rcv_nxt,
                    v.irs
                );
                let received = u64::from(v.rcv_nxt.since(v.irs + 1));
                assert!(self.app.read <= received, "read {} of {received} received", self.app.read);
            }
        }
    }
}
