//! The endpoint facing segments that match no connection (FA-01, HS-01; RFC 9293 §3.10.7.1,
//! §3.10.7.2) and malformed or hostile packets (SEC-04): what is answered with a RST, what is
//! dropped and counted, and a randomized run against an established pair.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::Seg;
use tcpcore::rng::Rng;
use tcpcore::wire::{self, checksum, ParseError, SackBlock, SeqNum, TcpFlags, TcpOptions};
use tcpcore::wire::{TcpRepr, Timestamps};
use tcpcore::{
    ConnConfig, Connection, ConnectionHandle, DatagramEvent, Endpoint, EndpointConfig, Instant,
    State,
};

/// Our endpoint's address (the listener, when there is one).
const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80);
/// The remote host sending to it.
const CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 40000);

fn endpoint(f: impl FnOnce(&mut EndpointConfig)) -> Endpoint {
    let mut cfg = EndpointConfig { seed: 7, ..EndpointConfig::default() };
    f(&mut cfg);
    Endpoint::new(cfg)
}

fn to_port(port: u16) -> SocketAddr {
    SocketAddr::new(SERVER.ip(), port)
}

/// Hand `seg` (sent by `CLIENT` to `to`) to the endpoint; true if it made a connection event.
fn feed(ep: &mut Endpoint, now: Instant, seg: &Seg, to: SocketAddr) -> bool {
    let pkt = seg.packet(CLIENT, to);
    ep.handle(now, &pkt).is_some()
}

/// Every packet the endpoint wants to send now, parsed.
fn replies(ep: &mut Endpoint, now: Instant) -> Vec<wire::Segment<'static>> {
    let mut v = Vec::new();
    let mut buf = [0u8; 1500];
    while let Some(t) = ep.poll_transmit(now, &mut buf) {
        let pkt: &'static [u8] = Box::leak(buf[..t.len].to_vec().into_boxed_slice());
        v.push(wire::parse(pkt).expect("the endpoint emitted a malformed packet"));
    }
    v
}

/// Exactly one reply: `<SEQ=seq><ACK=ack><CTL=flags>` from `from` back to `CLIENT`, window 0,
/// no options, no data.
#[track_caller]
fn expect_rst(
    ep: &mut Endpoint,
    now: Instant,
    from: SocketAddr,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
) {
    let r = replies(ep, now);
    assert_eq!(r.len(), 1, "expected one RST, got {r:#?}");
    let expected = TcpRepr {
        src_port: from.port(),
        dst_port: CLIENT.port(),
        seq: SeqNum(seq),
        ack: SeqNum(ack),
        flags,
        ..TcpRepr::default()
    };
    assert_eq!(r[0].tcp, expected);
    assert_eq!((r[0].src, r[0].dst), (from.ip(), CLIENT.ip()));
    assert!(r[0].payload.is_empty());
}

#[track_caller]
fn expect_nothing(ep: &mut Endpoint, now: Instant) {
    let r = replies(ep, now);
    assert!(r.is_empty(), "expected no reply, got {r:#?}");
}

const T0: Instant = Instant::ZERO;

// ---- FA-01 / HS-01 ---------------------------------------------------------------------------

#[test]
fn fa_01_ack_bearing_segment_to_no_connection_gets_rst_at_seg_ack() {
    let mut ep = endpoint(|_| {});
    assert!(!feed(&mut ep, T0, &Seg::ack(777, 4242).data(b"hello"), SERVER));
    // RFC 9293 §3.10.7.1: <SEQ=SEG.ACK><CTL=RST>.
    expect_rst(&mut ep, T0, SERVER, 4242, 0, TcpFlags::RST);
    assert!(!feed(&mut ep, T0, &Seg::ack(1, 0xffff_fff0).fin(), SERVER));
    expect_rst(&mut ep, T0, SERVER, 0xffff_fff0, 0, TcpFlags::RST);
    let s = ep.stats();
    assert_eq!((s.packets_in, s.no_connection, s.resets_sent, s.packets_out), (2, 2, 2, 2));
    assert_eq!(ep.connection_count(), 0);
}

#[test]
fn fa_01_segment_without_ack_gets_rst_ack_covering_its_sequence_space() {
    let cases: [(TcpFlags, u32, &[u8], u32); 5] = [
        (TcpFlags::PSH, 100, b"hello", 105),
        (TcpFlags::FIN, 100, b"abc", 104), // FIN counts in SEG.LEN
        (TcpFlags::FIN, u32::MAX, b"", 0), // and wraps
        (TcpFlags::URG, 7, b"", 7),        // nothing occupies sequence space
        (TcpFlags::SYN, 5000, b"xyz", 5004), // SYN counts too
    ];
    for (flags, seq, data, ack) in cases {
        let mut ep = endpoint(|_| {});
        feed(&mut ep, T0, &Seg::new(flags, seq, 0).data(data), SERVER);
        // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
        expect_rst(&mut ep, T0, SERVER, 0, ack, TcpFlags::RST | TcpFlags::ACK);
    }
}

#[test]
fn hs_01_syn_to_closed_port_gets_rst() {
    let mut ep = endpoint(|_| {});
    ep.listen(SERVER).unwrap();
    ep.listen(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)), 81)).unwrap();
    // Port 81 listens on another address only; port 82 nowhere.
    for port in [81, 82] {
        assert!(!feed(&mut ep, T0, &Seg::syn(5000), to_port(port)));
        expect_rst(&mut ep, T0, to_port(port), 0, 5001, TcpFlags::RST | TcpFlags::ACK);
    }
    assert_eq!(ep.connection_count(), 0);
    // The listening port answers with a SYN-ACK from its SYN queue instead.
    let pkt = Seg::syn(5000).packet(CLIENT, SERVER);
    assert!(ep.handle(T0, &pkt).is_none(), "no connection before the handshake completes");
    let r = replies(&mut ep, T0);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].tcp.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(r[0].tcp.ack, SeqNum(5001));
    assert_eq!(ep.half_open_count(), 1);
    let s = ep.stats();
    assert_eq!((s.no_connection, s.resets_sent, s.syns_received), (2, 2, 1));
}

#[test]
fn fa_01_never_a_rst_in_reply_to_a_rst() {
    let mut ep = endpoint(|_| {});
    ep.listen(SERVER).unwrap();
    let rsts = [
        (Seg::rst(1), to_port(81)),
        (Seg::new(TcpFlags::RST | TcpFlags::ACK, 1, 2), to_port(81)),
        (Seg::rst(9).data(b"reason"), to_port(81)),
        (Seg::rst(1), SERVER),
        (Seg::new(TcpFlags::RST | TcpFlags::ACK, 1, 2), SERVER),
    ];
    for (seg, to) in &rsts {
        assert!(!feed(&mut ep, T0, seg, *to));
        expect_nothing(&mut ep, T0);
    }
    let s = ep.stats();
    assert_eq!((s.no_connection, s.listener_drops), (3, 2));
    assert_eq!((s.resets_sent, s.replies_rate_limited, s.packets_out), (0, 0, 0));
}

#[test]
fn fa_01_ack_to_a_listening_port_gets_rst() {
    let mut ep = endpoint(|_| {});
    ep.listen(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 80)).unwrap();
    // RFC 9293 §3.10.7.2: in LISTEN an ACK is bad: <SEQ=SEG.ACK><CTL=RST>.
    assert!(!feed(&mut ep, T0, &Seg::ack(5001, 1001), SERVER));
    expect_rst(&mut ep, T0, SERVER, 1001, 0, TcpFlags::RST);
    assert!(!feed(&mut ep, T0, &Seg::ack(5001, 77).data(b"GET /").fin(), SERVER));
    expect_rst(&mut ep, T0, SERVER, 77, 0, TcpFlags::RST);
    // Neither SYN nor ACK nor RST (a bare FIN): dropped without an answer.
    assert!(!feed(&mut ep, T0, &Seg::new(TcpFlags::FIN, 5001, 0), SERVER));
    expect_nothing(&mut ep, T0);
    let s = ep.stats();
    assert_eq!((s.resets_sent, s.listener_drops, s.passive_opens), (2, 1, 0));
    assert_eq!(ep.connection_count(), 0);
}

#[test]
fn fa_01_closed_connection_tuple_gets_rst_and_ipv6_too() {
    // A 4-tuple whose connection the owner dropped is a 4-tuple with no connection.
    let mut ep = endpoint(|_| {});
    let (h, c) = ep.connect(T0, SERVER.ip(), CLIENT).unwrap();
    let local = c.local_addr();
    let data = Seg::ack(9000, 1234).data(b"late");
    let pkt = data.packet(CLIENT, local);
    assert!(matches!(ep.handle(T0, &pkt), Some(DatagramEvent::Connection(x, _)) if x == h));
    ep.connection_closed(h, &c);
    assert!(!feed(&mut ep, T0, &data, local));
    expect_rst(&mut ep, T0, local, 1234, 0, TcpFlags::RST);

    let v6 = |s: &str, port| SocketAddr::new(s.parse().unwrap(), port);
    let (us, peer) = (v6("2001:db8::1", 443), v6("2001:db8::2", 50000));
    let mut ep = endpoint(|_| {});
    let pkt = Seg::syn(41).data(b"tfo?").packet(peer, us);
    assert!(ep.handle(T0, &pkt).is_none());
    let r = replies(&mut ep, T0);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].src, r[0].dst), (us.ip(), peer.ip()));
    assert_eq!(
        (r[0].tcp.seq, r[0].tcp.ack, r[0].tcp.flags),
        (SeqNum(0), SeqNum(46), TcpFlags::RST | TcpFlags::ACK)
    );
    assert_eq!((r[0].tcp.src_port, r[0].tcp.dst_port), (443, 50000));
}

#[test]
fn fa_01_resets_are_rate_limited_per_second() {
    let mut ep = endpoint(|c| c.rst_rate_limit = 5);
    let t = Instant::from_secs(5); // the one-second window opens here
    for i in 0..8 {
        feed(&mut ep, t, &Seg::ack(1, 100 + i), SERVER);
        if i < 5 {
            expect_rst(&mut ep, t, SERVER, 100 + i, 0, TcpFlags::RST);
        } else {
            expect_nothing(&mut ep, t);
        }
    }
    assert_eq!((ep.stats().resets_sent, ep.stats().replies_rate_limited), (5, 3));
    let almost = t + (Duration::from_secs(1) - Duration::from_micros(1));
    feed(&mut ep, almost, &Seg::syn(1), SERVER);
    expect_nothing(&mut ep, almost);
    let next = t + Duration::from_secs(1);
    feed(&mut ep, next, &Seg::syn(1), SERVER);
    expect_rst(&mut ep, next, SERVER, 0, 2, TcpFlags::RST | TcpFlags::ACK);
    let s = ep.stats();
    assert_eq!((s.resets_sent, s.replies_rate_limited, s.no_connection), (6, 4, 10));
}

#[test]
fn fa_01_sec_05_unpolled_resets_are_bounded() {
    // Nobody drains the endpoint: at most 1024 replies wait, the rest are counted as limited.
    let mut ep = endpoint(|c| c.rst_rate_limit = 10_000);
    for i in 0..1100 {
        feed(&mut ep, T0, &Seg::ack(1, i), SERVER);
    }
    let r = replies(&mut ep, T0);
    assert_eq!(r.len(), 1024);
    assert_eq!(r[1023].tcp.seq, SeqNum(1023), "the oldest are kept, in order");
    assert_eq!((ep.stats().resets_sent, ep.stats().replies_rate_limited), (1024, 76));
}

// ---- SEC-04: malformed packets at the endpoint ------------------------------------------------

/// Offsets in an IPv4 packet with a 20-byte IP header.
const TCP: usize = 20;
const TCP_OFF: usize = TCP + 12;
const TCP_FLAGS: usize = TCP + 13;
const TCP_CSUM: usize = TCP + 16;
const TCP_OPTS: usize = TCP + 20;

/// Recompute the TCP checksum of an IPv4 packet after editing it.
fn fix_tcp_checksum(p: &mut [u8]) {
    let (ip, tcp) = p.split_at_mut(TCP);
    let src = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
    tcp[16..18].fill(0);
    let acc = checksum::pseudo_header(src, dst, 6, tcp.len() as u32);
    let c = checksum::finish(checksum::sum(tcp, acc));
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
}

type Mutation = (&'static str, ParseError, fn(&mut Vec<u8>));

const MUTATIONS: [Mutation; 12] = [
    ("bad TCP checksum", ParseError::BadTcpChecksum, |p| p[TCP_CSUM] ^= 0x5a),
    ("bad IP checksum", ParseError::BadIpChecksum, |p| p[8] = 3),
    ("data offset 4", ParseError::BadTcpHeaderLen, |p| p[TCP_OFF] = 0x40),
    ("data offset past the end", ParseError::BadTcpHeaderLen, |p| p[TCP_OFF] = 0xf0),
    ("option kind without length", ParseError::BadOption, |p| {
        p[TCP_OPTS..TCP_OPTS + 4].copy_from_slice(&[1, 1, 1, 2]);
        fix_tcp_checksum(p);
    }),
    ("option longer than the header", ParseError::BadOption, |p| {
        p[TCP_OPTS..TCP_OPTS + 4].copy_from_slice(&[2, 8, 5, 0xb4]);
        fix_tcp_checksum(p);
    }),
    ("option length below 2", ParseError::BadOption, |p| {
        p[TCP_OPTS..TCP_OPTS + 4].copy_from_slice(&[8, 1, 0, 0]);
        fix_tcp_checksum(p);
    }),
    ("MSS of length 3", ParseError::BadOption, |p| {
        p[TCP_OPTS..TCP_OPTS + 4].copy_from_slice(&[2, 3, 5, 0]);
        fix_tcp_checksum(p);
    }),
    ("SYN+FIN", ParseError::BadFlags, |p| {
        p[TCP_FLAGS] = 0x03;
        fix_tcp_checksum(p);
    }),
    ("SYN+RST", ParseError::BadFlags, |p| {
        p[TCP_FLAGS] = 0x06;
        fix_tcp_checksum(p);
    }),
    ("no flags", ParseError::BadFlags, |p| {
        p[TCP_FLAGS] = 0x00;
        fix_tcp_checksum(p);
    }),
    ("only ECE and CWR", ParseError::BadFlags, |p| {
        p[TCP_FLAGS] = 0xc0;
        fix_tcp_checksum(p);
    }),
];

#[test]
fn sec_04_malformed_packets_are_dropped_counted_and_never_answered() {
    let mss = TcpOptions { mss: Some(1460), ..TcpOptions::default() };
    // Unharmed, each would draw a reply or open a connection.
    let bases = [
        ("SYN to the listener", Seg::syn(5000).packet(CLIENT, SERVER)),
        (
            "data to a closed port",
            Seg::ack(5001, 77).opts(mss).data(b"hello").packet(CLIENT, to_port(81)),
        ),
        ("ACK to the listener", Seg::ack(5001, 77).opts(mss).packet(CLIENT, SERVER)),
    ];
    for (base_name, base) in &bases {
        assert!(wire::parse(base).is_ok());
        for (name, reason, mutate) in MUTATIONS {
            let mut ep = endpoint(|_| {});
            ep.listen(SERVER).unwrap();
            let mut p = base.clone();
            mutate(&mut p);
            assert!(ep.handle(T0, &p).is_none(), "{base_name}, {name}");
            expect_nothing(&mut ep, T0);
            let s = ep.stats();
            assert_eq!(s.parse_error(reason), 1, "{base_name}, {name}: {s:?}");
            assert_eq!(s.parse_errors.iter().sum::<u64>(), 1, "{base_name}, {name}: {s:?}");
            assert_eq!((s.packets_in, s.total_drops()), (1, 1));
            assert_eq!((s.no_connection, s.listener_drops, s.passive_opens), (0, 0, 0));
            assert_eq!((s.resets_sent, s.replies_rate_limited), (0, 0));
            assert_eq!(ep.connection_count(), 0);
        }
    }
}

#[test]
fn sec_04_malformed_packet_for_an_existing_connection_never_reaches_it() {
    let mut ep = endpoint(|_| {});
    ep.listen(SERVER).unwrap();
    let syn = Seg::syn(5000).packet(CLIENT, SERVER);
    assert!(ep.handle(T0, &syn).is_none());
    let syn_ack = replies(&mut ep, T0).remove(0);
    let ack = Seg::ack(5001, syn_ack.tcp.seq.0 + 1).packet(CLIENT, SERVER);
    let Some(DatagramEvent::NewConnection(h, _conn)) = ep.handle(T0, &ack) else {
        panic!("no connection")
    };
    let rst = Seg::rst(5001).packet(CLIENT, SERVER);
    for (name, reason, mutate) in [MUTATIONS[0], MUTATIONS[9]] {
        let mut p = rst.clone();
        mutate(&mut p);
        assert!(ep.handle(T0, &p).is_none(), "{name}");
        assert_eq!(ep.stats().parse_error(reason), 1);
    }
    assert!(matches!(ep.handle(T0, &rst), Some(DatagramEvent::Connection(x, _)) if x == h));
    expect_nothing(&mut ep, T0);
}

// ---- SEC-04: random mutations against an established pair -----------------------------------

/// One host: an endpoint and (at most) the one connection under attack.
struct Host {
    ep: Endpoint,
    conn: Option<(ConnectionHandle, Box<Connection>)>,
}

impl Host {
    fn conn(&self) -> &Connection {
        &self.conn.as_ref().expect("connection").1
    }

    fn recv(&mut self, now: Instant, pkt: &[u8]) {
        match self.ep.handle(now, pkt) {
            Some(DatagramEvent::Connection(h, seg)) => match self.conn.as_mut() {
                Some((mine, c)) if *mine == h => c.handle_segment(now, &seg),
                _ => panic!("segment routed to unknown handle {h:?}"),
            },
            Some(DatagramEvent::NewConnection(h, c)) => {
                if self.conn.is_none() {
                    self.conn = Some((h, c));
                } else {
                    self.ep.connection_closed(h, &c); // a stray handshake for another tuple: refuse
                }
            }
            Some(DatagramEvent::Reassembled(r)) => {
                self.recv(now, r.packet());
                self.ep.recycle(r);
            }
            Some(
                DatagramEvent::PathMtu(..)
                | DatagramEvent::IcmpError(..)
                | DatagramEvent::Udp(..)
                | DatagramEvent::UdpError(..),
            )
            | None => {}
        }
    }

    /// Everything this host sends now; every packet must parse.
    fn send(&mut self, now: Instant, out: &mut Vec<Vec<u8>>, buf: &mut [u8]) {
        while let Some(t) = self.ep.poll_transmit(now, buf) {
            out.push(buf[..t.len].to_vec());
        }
        if let Some((_, c)) = self.conn.as_mut() {
            while let Some(t) = c.poll_transmit(now, buf) {
                out.push(buf[..t.len].to_vec());
            }
        }
        for p in out.iter() {
            let seg = wire::parse(p).expect("the stack emitted a malformed packet");
            assert!(seg.payload.len() <= 1460, "segment beyond the MSS: {:?}", seg.tcp);
        }
    }

    #[track_caller]
    fn check_invariants(&self, cfg: &ConnConfig) {
        let Some((_, c)) = self.conn.as_ref() else { return };
        let (v, i) = (c.seq_vars(), c.info());
        assert!(v.snd_una <= v.snd_nxt && v.snd_nxt <= v.snd_max, "{v:?}");
        // Auto-tuning may grow both buffers, never beyond their caps.
        let send_cap = cfg.send_buffer.max(cfg.max_send_buffer);
        assert!(v.send_buffered <= v.send_capacity, "{v:?}");
        assert!(v.send_capacity >= cfg.send_buffer && v.send_capacity <= send_cap, "{v:?}");
        assert_eq!(i.snd_buf, v.send_capacity);
        // Bytes never sent stay within the initial size (the growth is for data in flight).
        let sent = v.snd_max.0.wrapping_sub(v.snd_una.0) as usize;
        assert!(v.send_buffered.saturating_sub(sent) <= cfg.send_buffer, "{v:?}");
        let cap = cfg.recv_buffer.max(cfg.max_recv_buffer);
        assert!(v.recv_buffered <= v.recv_capacity && v.recv_capacity <= cap, "{v:?}");
        assert_eq!(i.rcv_buf, v.recv_capacity);
        assert!(i.ooo_ranges <= cfg.max_ooo_ranges, "{i:?}");
        assert!(v.snd_max.0.wrapping_sub(v.snd_una.0) <= v.send_capacity as u32 + 2, "{v:?}");
    }
}

struct World {
    now: Instant,
    hosts: [Host; 2],
    buf: Vec<u8>,
}

impl World {
    /// A client (host 0) and a server (host 1) connected through their endpoints.
    fn connected(seed: u64, cfg: ConnConfig) -> World {
        let ecfg = |seed| EndpointConfig { seed, conn: cfg, ..EndpointConfig::default() };
        let mut w = World {
            now: Instant::from_secs(seed),
            hosts: [
                Host { ep: Endpoint::new(ecfg(seed)), conn: None },
                Host { ep: Endpoint::new(ecfg(seed + 1)), conn: None },
            ],
            buf: vec![0; 65_600],
        };
        w.hosts[1].ep.listen(SERVER).unwrap();
        let (h, c) = w.hosts[0].ep.connect(w.now, CLIENT.ip(), SERVER).unwrap();
        w.hosts[0].conn = Some((h, Box::new(c)));
        w.pump();
        for h in &w.hosts {
            assert_eq!(h.conn().state(), State::Established);
        }
        w
    }

    /// Deliver what both hosts send (no latency, no loss) until they are quiet.
    fn pump(&mut self) {
        for _ in 0..64 {
            let mut out = [Vec::new(), Vec::new()];
            for (h, o) in self.hosts.iter_mut().zip(out.iter_mut()) {
                h.send(self.now, o, &mut self.buf);
            }
            if out.iter().all(Vec::is_empty) {
                return;
            }
            for (i, o) in out.iter().enumerate() {
                for p in o {
                    self.hosts[1 - i].recv(self.now, p);
                }
            }
        }
        panic!("the pair never went quiet (an ACK loop?) at {}", self.now);
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        for h in &mut self.hosts {
            if let Some((_, c)) = h.conn.as_mut() {
                if c.poll_timeout().is_some_and(|t| t <= self.now) {
                    c.handle_timeout(self.now);
                }
            }
        }
    }
}

/// A random segment for `victim`'s 4-tuple, near its sequence space or anywhere.
fn forge(r: &mut Rng, victim: &Connection, payload: &[u8], buf: &mut [u8]) -> usize {
    const PLAUSIBLE: [u8; 10] = [0x10, 0x18, 0x11, 0x04, 0x14, 0x02, 0x12, 0x30, 0x01, 0x19];
    let v = victim.seq_vars();
    let near =
        |r: &mut Rng, x: SeqNum, spread: u32| x + r.below(2 * u64::from(spread)) as u32 - spread;
    let mut flags = if r.chance(0.3) {
        TcpFlags(r.next_u32() as u8)
    } else {
        TcpFlags(PLAUSIBLE[r.below(10) as usize])
    };
    let mut seq = match r.below(4) {
        0 => near(r, v.rcv_nxt, 3000),
        1 => v.rcv_nxt + r.below(u64::from(v.rcv_adv.0.wrapping_sub(v.rcv_nxt.0)) + 2000) as u32,
        2 => SeqNum(r.next_u32()),
        _ => v.rcv_nxt,
    };
    if flags.rst() && seq == v.rcv_nxt && r.chance(0.95) {
        seq += 1; // keep exact resets rare so the pair lives long enough to get deep
    }
    if flags.syn() && r.chance(0.5) {
        flags = TcpFlags(flags.0 & !0x05); // fewer SYN+FIN/RST parse errors
    }
    let ack = match r.below(4) {
        0 => v.snd_una + r.below(u64::from(v.snd_max.0.wrapping_sub(v.snd_una.0)) + 1) as u32,
        1 => near(r, v.snd_max, 100),
        2 => v.snd_una - r.below(200_000) as u32,
        _ => SeqNum(r.next_u32()),
    };
    let mut options = TcpOptions::default();
    if r.chance(0.2) {
        options.mss = Some(r.next_u32() as u16);
    }
    if r.chance(0.2) {
        options.window_scale = Some(r.below(20) as u8);
    }
    options.sack_permitted = r.chance(0.2);
    if r.chance(0.3) {
        options.timestamps = Some(Timestamps { tsval: r.next_u32(), tsecr: r.next_u32() });
    }
    options.sack_count = r.below(5) as u8;
    for b in &mut options.sack_blocks {
        let left = near(r, v.snd_una, 20_000);
        *b = SackBlock { left, right: left + r.below(5000) as u32 };
    }
    let len = if r.chance(0.4) { 0 } else { r.below(payload.len() as u64 + 1) as usize };
    let repr = TcpRepr {
        src_port: victim.remote_addr().port(),
        dst_port: victim.local_addr().port(),
        seq,
        ack,
        flags,
        window: r.next_u32() as u16,
        urgent: r.next_u32() as u16,
        options,
    };
    let from = victim.remote_addr().ip();
    let n = wire::emit(buf, from, victim.local_addr().ip(), &repr, [&payload[..len], &[]]).unwrap();
    // Now and then damage the packet itself.
    match r.below(20) {
        0 => buf[r.below(n as u64) as usize] ^= 1 << r.below(8),
        1 => return r.below(n as u64) as usize,
        2 => buf[TCP_OFF] = (r.next_u32() as u8) & 0xf0,
        _ => {}
    }
    n
}

#[test]
fn sec_04_random_segments_for_an_established_pair_never_break_invariants() {
    let cfg = ConnConfig {
        send_buffer: 16_384,
        recv_buffer: 16_384,
        max_ooo_ranges: 8,
        ..ConnConfig::default()
    };
    let mut r = Rng::new(0x5ec04);
    let payload: Vec<u8> = (0..1600).map(|i| (i * 7) as u8).collect();
    let mut pkt = vec![0u8; 65_600];
    let mut rbuf = vec![0u8; 16_384];
    let (mut pairs, mut seed) = (1, 1);
    let mut w = World::connected(seed, cfg);
    let (mut delivered, mut received, mut deep_states) = (0u64, 0u64, 0u64);
    for i in 0..100_000 {
        let victim = r.below(2) as usize;
        let n = forge(&mut r, w.hosts[victim].conn(), &payload, &mut pkt);
        let before = w.hosts[victim].conn().info().segs_in;
        w.hosts[victim].recv(w.now, &pkt[..n]);
        delivered += w.hosts[victim].conn().info().segs_in - before;
        // The applications carry on: write a little, read everything, sometimes close.
        for h in &mut w.hosts {
            let c = &mut h.conn.as_mut().unwrap().1;
            if r.chance(0.2) {
                let _ = c.write(&payload[..r.below(1000) as usize]);
            }
            while let Ok(n) = c.read(&mut rbuf) {
                if n == 0 {
                    break;
                }
                received += n as u64;
            }
            if r.chance(0.0005) {
                c.shutdown_write();
            }
        }
        w.pump();
        w.advance(Duration::from_micros(r.below(30_000)));
        w.pump();
        for h in &w.hosts {
            h.check_invariants(&cfg);
            deep_states += u64::from(h.conn().state() != State::Established);
        }
        let closed = w.hosts.iter().any(|h| h.conn().state() == State::Closed);
        if closed || i % 5_000 == 4_999 {
            seed += 2;
            pairs += 1;
            w = World::connected(seed, cfg);
        }
    }
    // The run reached the connections, moved data and saw more than one state.
    assert!(delivered > 50_000, "only {delivered} forged segments reached a connection");
    assert!(received > 1_000_000, "only {received} bytes delivered");
    assert!(deep_states > 0 && pairs > 20, "{deep_states} non-established steps, {pairs} pairs");
}
