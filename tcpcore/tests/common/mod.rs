//! Shared test harnesses: `Sc` drives one connection against a hand-played peer (exact
//! segments in, exact segments out, virtual time); `Pair` joins two real connections with a
//! fixed latency and a drop filter.
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tcpcore::wire::{self, SeqNum, TcpFlags, TcpOptions, TcpRepr, Timestamps};
use tcpcore::{ConnConfig, ConnParams, Connection, Event, Instant, State};

pub const US: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40000);
pub const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);
/// Our ISS in scenario tests.
pub const ISS: u32 = 1_000;
/// The hand-played peer's ISS.
pub const PEER_ISS: u32 = 5_000;

/// Our first data byte.
pub const D: u32 = ISS + 1;
/// The hand-played peer's first data byte.
pub const P: u32 = PEER_ISS + 1;
/// The MSS `Sc` peers announce (and ours at MTU 1500).
pub const MSS: u32 = 1460;

/// The virtual instant `ms` milliseconds after the epoch.
pub fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// Stream bytes `off..off + len` of a recognisable pattern (byte i = i mod 251).
pub fn bytes(off: usize, len: usize) -> Vec<u8> {
    (off..off + len).map(|i| (i % 251) as u8).collect()
}

/// A data segment we sent: exactly `len` bytes at `seq`, acknowledging `P`.
#[track_caller]
pub fn assert_data(o: &Out, seq: u32, len: usize) {
    o.assert_flags(TcpFlags::ACK).assert_seq_ack(seq, P);
    assert_eq!(o.len(), len, "payload length of {:?}", o.tcp);
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A segment the hand-played peer sends.
#[derive(Clone, Debug)]
pub struct Seg {
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub payload: Vec<u8>,
    pub options: TcpOptions,
}

impl Seg {
    pub fn new(flags: TcpFlags, seq: u32, ack: u32) -> Self {
        Seg { flags, seq, ack, window: 65_535, payload: Vec::new(), options: TcpOptions::default() }
    }
    /// A bare SYN with MSS 1460.
    pub fn syn(seq: u32) -> Self {
        let mut s = Seg::new(TcpFlags::SYN, seq, 0);
        s.options.mss = Some(1460);
        s
    }
    /// A SYN-ACK with MSS 1460.
    pub fn syn_ack(seq: u32, ack: u32) -> Self {
        let mut s = Seg::new(TcpFlags::SYN | TcpFlags::ACK, seq, ack);
        s.options.mss = Some(1460);
        s
    }
    pub fn ack(seq: u32, ack: u32) -> Self {
        Seg::new(TcpFlags::ACK, seq, ack)
    }
    pub fn rst(seq: u32) -> Self {
        Seg::new(TcpFlags::RST, seq, 0)
    }
    pub fn data(mut self, bytes: &[u8]) -> Self {
        self.payload = bytes.to_vec();
        self
    }
    pub fn fin(mut self) -> Self {
        self.flags = self.flags | TcpFlags::FIN;
        self
    }
    pub fn psh(mut self) -> Self {
        self.flags = self.flags | TcpFlags::PSH;
        self
    }
    pub fn flags(mut self, f: TcpFlags) -> Self {
        self.flags = self.flags | f;
        self
    }
    pub fn window(mut self, w: u16) -> Self {
        self.window = w;
        self
    }
    pub fn opts(mut self, o: TcpOptions) -> Self {
        self.options = o;
        self
    }
    pub fn ts(mut self, tsval: u32, tsecr: u32) -> Self {
        self.options.timestamps = Some(Timestamps { tsval, tsecr });
        self
    }
    /// The IP packet `from → to`.
    pub fn packet(&self, from: SocketAddr, to: SocketAddr) -> Vec<u8> {
        self.packet_ecn(from, to, wire::ecn::NOT_ECT)
    }
    /// The IP packet `from → to` with `ecn` in the IP header's ECN field (RFC 3168 §5).
    pub fn packet_ecn(&self, from: SocketAddr, to: SocketAddr, ecn: u8) -> Vec<u8> {
        let repr = TcpRepr {
            src_port: from.port(),
            dst_port: to.port(),
            seq: SeqNum(self.seq),
            ack: SeqNum(self.ack),
            flags: self.flags,
            window: self.window,
            urgent: 0,
            options: self.options,
        };
        let mut buf = vec![0u8; 65_600];
        let ip = wire::IpFields { tos: ecn, ..wire::IpFields::default() };
        let csum = wire::TcpChecksum::Full;
        let n = wire::emit_ip(&mut buf, from.ip(), to.ip(), &repr, [&self.payload, &[]], csum, ip)
            .unwrap();
        buf.truncate(n);
        buf
    }
}

/// A segment the connection under test sent.
#[derive(Clone, Debug)]
pub struct Out {
    pub at: Instant,
    pub tcp: TcpRepr,
    pub payload: Vec<u8>,
    /// The raw IP packet.
    pub packet: Vec<u8>,
    /// The IP header's ECN field (RFC 3168 §5).
    pub ecn: u8,
}

impl Out {
    pub fn parse(at: Instant, packet: &[u8]) -> Out {
        let seg = wire::parse(packet).expect("the stack emitted a malformed packet");
        let (tcp, payload, ecn) = (seg.tcp, seg.payload.to_vec(), seg.ecn);
        Out { at, tcp, payload, packet: packet.to_vec(), ecn }
    }
    pub fn seq(&self) -> u32 {
        self.tcp.seq.0
    }
    pub fn ack(&self) -> u32 {
        self.tcp.ack.0
    }
    pub fn len(&self) -> usize {
        self.payload.len()
    }
    pub fn has(&self, f: TcpFlags) -> bool {
        self.tcp.flags.contains(f)
    }
    /// Exactly these flags (ignoring PSH).
    #[track_caller]
    pub fn assert_flags(&self, f: TcpFlags) -> &Self {
        let got = TcpFlags(self.tcp.flags.0 & !TcpFlags::PSH.0);
        assert_eq!(got, f, "flags of {:?}", self.tcp);
        self
    }
    #[track_caller]
    pub fn assert_seq_ack(&self, seq: u32, ack: u32) -> &Self {
        assert_eq!((self.seq(), self.ack()), (seq, ack), "seq/ack of {:?}", self.tcp);
        self
    }
}

/// One connection against a hand-played peer.
pub struct Sc {
    pub now: Instant,
    pub conn: Connection,
    /// Every segment the connection sent, in order.
    pub log: Vec<Out>,
    buf: Vec<u8>,
}

impl Sc {
    pub fn params() -> ConnParams {
        ConnParams { local: US, remote: PEER, iss: SeqNum(ISS), ts_offset: 0 }
    }

    /// Plain config: no window scaling, timestamps or SACK, so segments are easy to predict.
    pub fn plain() -> ConnConfig {
        ConnConfig {
            window_scaling: false,
            timestamps: false,
            sack: false,
            ..ConnConfig::default()
        }
    }

    /// A client in SYN-SENT; its SYN is already taken from the output.
    #[track_caller]
    pub fn client(cfg: ConnConfig) -> Sc {
        let mut sc = Sc::connect(cfg);
        let syn = sc.expect_one();
        syn.assert_flags(TcpFlags::SYN).assert_seq_ack(ISS, 0);
        sc
    }

    /// A server in SYN-RECEIVED after `syn` (usually `Seg::syn(PEER_ISS)`); the SYN-ACK is
    /// already taken from the output.
    #[track_caller]
    pub fn server(cfg: ConnConfig, syn: Seg) -> Sc {
        let mut sc = Sc::accept(cfg, syn);
        let sa = sc.expect_one();
        sa.assert_flags(TcpFlags::SYN | TcpFlags::ACK).assert_seq_ack(ISS, PEER_ISS + 1);
        sc
    }

    /// A client in SYN-SENT whose SYN is still to be taken from the output.
    pub fn connect(cfg: ConnConfig) -> Sc {
        let conn = Connection::connect(cfg, Sc::params());
        Sc { now: Instant::ZERO, conn, log: vec![], buf: vec![0; 65_600] }
    }

    /// A server in SYN-RECEIVED after `syn`, its SYN-ACK still to be taken from the output.
    pub fn accept(cfg: ConnConfig, syn: Seg) -> Sc {
        let pkt = syn.packet(PEER, US);
        let seg = wire::parse(&pkt).unwrap();
        let conn = Connection::accept(cfg, Sc::params(), &seg, Instant::ZERO);
        Sc { now: Instant::ZERO, conn, log: vec![], buf: vec![0; 65_600] }
    }

    /// A client in ESTABLISHED with the peer at `PEER_ISS + 1`, window 65535, MSS 1460; the
    /// handshake's ACK is already taken from the output, events drained.
    #[track_caller]
    pub fn established(cfg: ConnConfig) -> Sc {
        let mut sc = Sc::client(cfg);
        sc.advance(ms(10));
        sc.deliver(Seg::syn_ack(PEER_ISS, ISS + 1));
        sc.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 1, PEER_ISS + 1);
        assert_eq!(sc.conn.state(), State::Established);
        sc.events();
        sc
    }

    /// A server in ESTABLISHED (SYN, SYN-ACK, ACK), events drained.
    #[track_caller]
    pub fn established_server(cfg: ConnConfig) -> Sc {
        let mut sc = Sc::server(cfg, Seg::syn(PEER_ISS));
        sc.advance(ms(10));
        sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 1));
        assert_eq!(sc.conn.state(), State::Established);
        sc.expect_none();
        sc.events();
        sc
    }

    /// The peer's segment arrives now.
    pub fn deliver(&mut self, seg: Seg) {
        self.deliver_ecn(seg, wire::ecn::NOT_ECT);
    }

    /// The peer's segment arrives now with `ecn` in its IP header's ECN field.
    pub fn deliver_ecn(&mut self, seg: Seg, ecn: u8) {
        let pkt = seg.packet_ecn(PEER, US, ecn);
        let parsed = wire::parse(&pkt).unwrap();
        self.conn.handle_segment(self.now, &parsed);
    }

    /// Everything the connection sends now.
    pub fn output(&mut self) -> Vec<Out> {
        let mut v = Vec::new();
        while let Some(t) = self.conn.poll_transmit(self.now, &mut self.buf) {
            let out = Out::parse(self.now, &self.buf[..t.len]);
            self.log.push(out.clone());
            v.push(out);
        }
        v
    }

    #[track_caller]
    pub fn expect_one(&mut self) -> Out {
        let mut v = self.output();
        assert_eq!(v.len(), 1, "expected exactly one segment at {}, got {:#?}", self.now, v);
        v.remove(0)
    }

    #[track_caller]
    pub fn expect_none(&mut self) {
        let v = self.output();
        assert!(v.is_empty(), "expected no segment at {}, got {:#?}", self.now, v);
    }

    /// Move virtual time forward by `d`, running every timer that falls due on the way (at
    /// its own deadline) and collecting what the connection sends.
    pub fn advance(&mut self, d: Duration) -> Vec<Out> {
        let end = self.now + d;
        let mut out = self.output();
        while let Some(t) = self.conn.poll_timeout() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.conn.handle_timeout(self.now);
            out.extend(self.output());
        }
        self.now = end;
        out
    }

    /// Jump to the next timer deadline, run it, and return what was sent then.
    #[track_caller]
    pub fn next_timer(&mut self) -> Vec<Out> {
        let t = self.conn.poll_timeout().expect("no timer armed");
        self.now = self.now.max(t);
        self.conn.handle_timeout(self.now);
        self.output()
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }

    /// Read everything buffered.
    pub fn read_all(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        let mut b = [0u8; 4096];
        while let Ok(n) = self.conn.read(&mut b) {
            if n == 0 {
                break;
            }
            v.extend_from_slice(&b[..n]);
        }
        v
    }
}

/// Which way a segment travels in a [`Pair`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client to server.
    CtoS,
    /// Server to client.
    StoC,
}

/// Decides whether a segment is lost: direction, index in that direction, the segment.
pub type DropFn = Box<dyn FnMut(Dir, usize, &Out) -> bool>;

/// Two real connections joined by a link of fixed one-way latency. `drop` sees every
/// segment (with its direction and index per direction) and may discard it.
pub struct Pair {
    pub now: Instant,
    pub client: Connection,
    /// Created when the first SYN arrives.
    pub server: Option<Connection>,
    pub server_cfg: ConnConfig,
    pub latency: Duration,
    /// Every segment sent: direction, time, parsed segment, whether it was dropped.
    pub log: Vec<(Dir, Out, bool)>,
    pub drop: DropFn,
    in_flight: Vec<(Instant, Dir, Vec<u8>)>,
    counts: [usize; 2],
    buf: Vec<u8>,
}

impl Pair {
    pub fn new(client_cfg: ConnConfig, server_cfg: ConnConfig, latency: Duration) -> Pair {
        Pair {
            now: Instant::ZERO,
            client: Connection::connect(client_cfg, Sc::params()),
            server: None,
            server_cfg,
            latency,
            log: vec![],
            drop: Box::new(|_, _, _| false),
            in_flight: vec![],
            counts: [0, 0],
            buf: vec![0; 65_600],
        }
    }

    pub fn server(&mut self) -> &mut Connection {
        self.server.as_mut().expect("server not created yet")
    }

    fn flush(&mut self) {
        let mut sent = Vec::new();
        while let Some(t) = self.client.poll_transmit(self.now, &mut self.buf) {
            sent.push((Dir::CtoS, self.buf[..t.len].to_vec()));
        }
        if let Some(s) = self.server.as_mut() {
            while let Some(t) = s.poll_transmit(self.now, &mut self.buf) {
                sent.push((Dir::StoC, self.buf[..t.len].to_vec()));
            }
        }
        for (dir, pkt) in sent {
            let out = Out::parse(self.now, &pkt);
            let i = &mut self.counts[dir as usize];
            let dropped = (self.drop)(dir, *i, &out);
            *i += 1;
            self.log.push((dir, out, dropped));
            if !dropped {
                self.in_flight.push((self.now + self.latency, dir, pkt));
            }
        }
    }

    fn next_event(&self) -> Option<Instant> {
        let timers =
            [self.client.poll_timeout(), self.server.as_ref().and_then(|s| s.poll_timeout())];
        let arrivals = self.in_flight.iter().map(|(t, _, _)| *t);
        timers.into_iter().flatten().chain(arrivals).min()
    }

    /// Run one event (arrival or timer); false when nothing is left before `until`.
    pub fn step(&mut self, until: Instant) -> bool {
        self.flush();
        let Some(t) = self.next_event() else { return false };
        if t > until {
            return false;
        }
        self.now = self.now.max(t);
        let now = self.now;
        let due: Vec<_> = self.in_flight.iter().filter(|(at, _, _)| *at <= now).cloned().collect();
        self.in_flight.retain(|(at, _, _)| *at > now);
        for (_, dir, pkt) in due {
            let seg = wire::parse(&pkt).unwrap();
            match dir {
                Dir::StoC => self.client.handle_segment(now, &seg),
                Dir::CtoS => match self.server.as_mut() {
                    Some(s) => s.handle_segment(now, &seg),
                    None if seg.tcp.flags.syn() => {
                        let p = ConnParams {
                            local: PEER,
                            remote: US,
                            iss: SeqNum(PEER_ISS),
                            ts_offset: 7,
                        };
                        self.server = Some(Connection::accept(self.server_cfg, p, &seg, now));
                    }
                    None => {}
                },
            }
        }
        if self.client.poll_timeout().is_some_and(|d| d <= now) {
            self.client.handle_timeout(now);
        }
        if let Some(s) = self.server.as_mut() {
            if s.poll_timeout().is_some_and(|d| d <= now) {
                s.handle_timeout(now);
            }
        }
        self.flush();
        true
    }

    /// Run until virtual time `d` from now (or until nothing is left to happen).
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        let mut steps = 0;
        while self.step(until) {
            steps += 1;
            assert!(steps < 10_000_000, "livelock");
        }
        self.now = self.now.max(until);
    }

    /// Run until `cond` holds, failing after `limit` of virtual time.
    #[track_caller]
    pub fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&mut Pair) -> bool) {
        let until = self.now + limit;
        while !cond(self) {
            assert!(self.step(until), "condition not reached within {limit:?} (now {})", self.now);
        }
    }

    /// Segments sent in one direction (dropped or not).
    pub fn sent(&self, dir: Dir) -> Vec<&Out> {
        self.log.iter().filter(|(d, _, _)| *d == dir).map(|(_, o, _)| o).collect()
    }
}
