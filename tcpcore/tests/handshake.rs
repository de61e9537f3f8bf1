//! Opening behaviours HS-02..HS-11 (RFC 9293 §3.5, §3.8.1, §3.10; RFC 6298; RFC 6528),
//! scenario by scenario: a connection in a given state, a segment in, the exact segments out
//! at the exact virtual times.
mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use common::*;
use tcpcore::wire::{self, SeqNum, TcpFlags, TcpOptions, Timestamps};
use tcpcore::{
    ConnConfig, ConnParams, Connection, ConnectionError, Endpoint, EndpointConfig, Event, Instant,
    ReadError, State, WriteError,
};

/// The instant `n` milliseconds after the start.
fn at_ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

/// Parameters of the hand-shuttled peer connection (the mirror of `Sc::params`).
fn peer_params() -> ConnParams {
    ConnParams { local: PEER, remote: US, iss: SeqNum(PEER_ISS), ts_offset: 7 }
}

/// Drain every segment `c` sends at `now`.
fn drain(c: &mut Connection, now: Instant) -> Vec<Out> {
    let mut buf = vec![0u8; 65_600];
    let mut v = Vec::new();
    while let Some(t) = c.poll_transmit(now, &mut buf) {
        v.push(Out::parse(now, &buf[..t.len]));
    }
    v
}

/// Exactly one segment from `c` at `now`.
#[track_caller]
fn one(c: &mut Connection, now: Instant) -> Out {
    let mut v = drain(c, now);
    assert_eq!(v.len(), 1, "expected one segment at {now}, got {v:#?}");
    v.remove(0)
}

/// Hand `out` (sent by the other side) to `c`.
fn feed(c: &mut Connection, now: Instant, out: &Out) {
    let seg = wire::parse(&out.packet).unwrap();
    c.handle_segment(now, &seg);
}

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// The IPv4 flags/fragment-offset field (bytes 6..8) of an emitted packet.
fn ipv4_frag_field(packet: &[u8]) -> u16 {
    assert_eq!(packet[0] >> 4, 4, "an IPv4 packet");
    u16::from_be_bytes([packet[6], packet[7]])
}

// ---- HS-02 -------------------------------------------------------------------------------

#[test]
fn hs_02_client_syn_flags_isn_and_options() {
    let sc = Sc::client(ConnConfig::default());
    let syn = &sc.log[0];
    syn.assert_flags(TcpFlags::SYN).assert_seq_ack(ISS, 0);
    assert_eq!(syn.at, Instant::ZERO);
    assert_eq!(syn.len(), 0);
    let o = syn.tcp.options;
    assert_eq!(o.mss, Some(1460), "MTU 1500 less 40 bytes of headers");
    // The receive buffer may auto-tune up to 6 MiB, which needs shift 7 to be advertised
    // whole (RFC 7323 §2.3).
    assert_eq!(o.window_scale, Some(7));
    assert!(o.sack_permitted);
    assert_eq!(o.timestamps, Some(Timestamps { tsval: 0, tsecr: 0 }));
    // RFC 7323 §2.2: the window of a SYN is never scaled.
    assert_eq!(syn.tcp.window, 65_535);
    assert_eq!(sc.conn.state(), State::SynSent);
    // The SYN consumes one sequence number.
    let v = sc.conn.seq_vars();
    assert_eq!((v.iss.0, v.snd_una.0, v.snd_nxt.0, v.snd_max.0), (ISS, ISS, ISS + 1, ISS + 1));
}

#[test]
fn hs_02_plain_config_offers_only_mss() {
    let sc = Sc::client(Sc::plain());
    let o = sc.log[0].tcp.options;
    assert_eq!(
        (o.mss, o.window_scale, o.sack_permitted, o.timestamps),
        (Some(1460), None, false, None)
    );
}

#[test]
fn hs_02_data_written_in_syn_sent_waits_for_the_handshake() {
    let mut sc = Sc::client(Sc::plain());
    assert_eq!(sc.conn.write(b"early").unwrap(), 5);
    sc.expect_none();
    let mut b = [0u8; 8];
    assert_eq!(sc.conn.read(&mut b), Err(ReadError::NotConnected));
    sc.advance(ms(10));
    sc.deliver(Seg::syn_ack(PEER_ISS, ISS + 1));
    // The handshake's ACK carries the queued data (HS-04: the third segment may carry data).
    let out = sc.expect_one();
    out.assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 1, PEER_ISS + 1);
    assert_eq!(out.payload, b"early");
    assert_eq!(sc.conn.state(), State::Established);
}

// ---- HS-03 -------------------------------------------------------------------------------

#[test]
fn hs_03_server_syn_ack_exact() {
    let mut sc = Sc::server(ConnConfig::default(), Seg::syn(PEER_ISS));
    let sa = &sc.log[0];
    sa.assert_flags(TcpFlags::SYN | TcpFlags::ACK).assert_seq_ack(ISS, PEER_ISS + 1);
    assert_eq!(sa.at, Instant::ZERO);
    // The peer offered only MSS: we answer only with MSS (RFC 7323 §1.3, RFC 2018 §2).
    let o = sa.tcp.options;
    assert_eq!(
        (o.mss, o.window_scale, o.sack_permitted, o.timestamps),
        (Some(1460), None, false, None)
    );
    assert_eq!(sc.conn.state(), State::SynReceived);
    assert_eq!(sc.events(), vec![], "no Connected before the third segment");
    let v = sc.conn.seq_vars();
    assert_eq!((v.irs.0, v.rcv_nxt.0, v.snd_nxt.0), (PEER_ISS, PEER_ISS + 1, ISS + 1));
    let mut b = [0u8; 4];
    assert_eq!(sc.conn.read(&mut b), Err(ReadError::NotConnected));
}

#[test]
fn hs_03_server_syn_ack_answers_every_offered_option() {
    let mut o = TcpOptions {
        mss: Some(1400),
        window_scale: Some(7),
        sack_permitted: true,
        ..Default::default()
    };
    o.timestamps = Some(Timestamps { tsval: 4242, tsecr: 0 });
    let sc = Sc::server(ConnConfig::default(), Seg::syn(PEER_ISS).opts(o));
    let sa = sc.log[0].tcp.options;
    assert_eq!(sa.mss, Some(1460));
    assert_eq!(sa.window_scale, Some(7), "sized for the 6 MiB auto-tuning maximum");
    assert!(sa.sack_permitted);
    assert_eq!(sa.timestamps, Some(Timestamps { tsval: 0, tsecr: 4242 }), "TSecr echoes the SYN");
    assert_eq!(sc.log[0].tcp.window, 65_535);
}

// ---- HS-04 -------------------------------------------------------------------------------

#[test]
fn hs_04_client_ack_establishes_on_sending() {
    let mut sc = Sc::client(Sc::plain());
    sc.advance(ms(30));
    sc.deliver(Seg::syn_ack(PEER_ISS, ISS + 1));
    assert_eq!(sc.conn.state(), State::Established);
    assert_eq!(sc.events(), vec![Event::Connected, Event::Writable]);
    let ack = sc.expect_one();
    ack.assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 1, PEER_ISS + 1);
    assert_eq!((ack.at, ack.len()), (at_ms(30), 0));
    assert_eq!(sc.conn.poll_timeout(), None, "nothing outstanding, no timer");
}

#[test]
fn hs_04_server_establishes_on_receiving_the_ack() {
    let mut sc = Sc::server(Sc::plain(), Seg::syn(PEER_ISS));
    sc.advance(ms(30));
    assert_eq!(sc.conn.state(), State::SynReceived);
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 1));
    assert_eq!(sc.conn.state(), State::Established);
    assert_eq!(sc.events(), vec![Event::Connected, Event::Writable]);
    sc.expect_none();
    assert_eq!(sc.conn.poll_timeout(), None, "the SYN-ACK timer stops");
}

#[test]
fn hs_04_data_on_the_third_segment_is_delivered() {
    let mut sc = Sc::server(Sc::plain(), Seg::syn(PEER_ISS));
    sc.advance(ms(30));
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 1).data(b"hello").psh());
    assert_eq!(sc.conn.state(), State::Established);
    assert_eq!(sc.events(), vec![Event::Connected, Event::Readable, Event::Writable]);
    assert_eq!(sc.read_all(), b"hello");
    // Quick-ack mode at connection start: the data is acknowledged at once.
    sc.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 1, PEER_ISS + 6);
}

// ---- HS-05 -------------------------------------------------------------------------------

#[test]
fn hs_05_syn_sent_answers_a_syn_ack_with_a_wrong_ack_by_rst() {
    let mut sc = Sc::client(Sc::plain());
    sc.advance(ms(10));
    // RFC 9293 §3.10.7.3: SEG.ACK =< ISS or SEG.ACK > SND.NXT: <SEQ=SEG.ACK><CTL=RST>.
    for bad in [ISS + 77, ISS, ISS - 300] {
        sc.deliver(Seg::syn_ack(PEER_ISS, bad));
        let rst = sc.expect_one();
        rst.assert_flags(TcpFlags::RST).assert_seq_ack(bad, 0);
        assert_eq!(sc.conn.state(), State::SynSent);
    }
    assert_eq!(sc.events(), vec![]);
    // The real SYN-ACK still completes the handshake.
    sc.deliver(Seg::syn_ack(PEER_ISS, ISS + 1));
    assert_eq!(sc.conn.state(), State::Established);
    sc.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 1, PEER_ISS + 1);
}

#[test]
fn hs_05_syn_received_reset_returns_quietly() {
    let mut sc = Sc::server(Sc::plain(), Seg::syn(PEER_ISS));
    sc.advance(ms(10));
    sc.deliver(Seg::rst(PEER_ISS + 1));
    assert_eq!(sc.conn.state(), State::Closed);
    assert_eq!(sc.conn.error(), None);
    assert_eq!(sc.events(), vec![Event::Readable, Event::Writable, Event::Closed(None)]);
    assert!(sc.conn.is_drained());
    assert_eq!(sc.conn.poll_timeout(), None);
    sc.expect_none();
}

#[test]
fn hs_05_old_duplicate_syn_end_to_end() {
    // The client is in SYN-SENT with ISS; an old duplicate SYN (seq 777) of an earlier
    // incarnation reaches the server, which answers with a SYN-ACK acking 778.
    let mut client = Connection::connect(Sc::plain(), Sc::params());
    let syn = one(&mut client, Instant::ZERO);
    syn.assert_flags(TcpFlags::SYN).assert_seq_ack(ISS, 0);
    let old = Seg::syn(777).packet(US, PEER);
    let mut server =
        Connection::accept(Sc::plain(), peer_params(), &wire::parse(&old).unwrap(), at_ms(5));
    let sa = one(&mut server, at_ms(5));
    sa.assert_flags(TcpFlags::SYN | TcpFlags::ACK).assert_seq_ack(PEER_ISS, 778);
    // The client answers the SYN-ACK with <SEQ=778><CTL=RST> and stays in SYN-SENT.
    feed(&mut client, at_ms(10), &sa);
    let rst = one(&mut client, at_ms(10));
    rst.assert_flags(TcpFlags::RST).assert_seq_ack(778, 0);
    assert_eq!(client.state(), State::SynSent);
    // The server drops the half-open connection: no Connected, no error.
    feed(&mut server, at_ms(15), &rst);
    assert_eq!(server.state(), State::Closed);
    assert_eq!(server.error(), None);
    let ev = events(&mut server);
    assert!(!ev.contains(&Event::Connected), "{ev:?}");
    assert_eq!(ev.last(), Some(&Event::Closed(None)));
    assert!(drain(&mut server, at_ms(15)).is_empty());
    assert!(events(&mut client).is_empty());
}

// ---- HS-06 -------------------------------------------------------------------------------

#[test]
fn hs_06_lost_syn_retransmitted_with_backoff_then_timed_out() {
    let mut sc = Sc::client(ConnConfig::default());
    let mut times = vec![];
    for _ in 0..6 {
        let out = sc.next_timer();
        assert_eq!(out.len(), 1, "{out:#?}");
        out[0].assert_flags(TcpFlags::SYN).assert_seq_ack(ISS, 0);
        assert_eq!(out[0].tcp.options.mss, Some(1460));
        assert_eq!(sc.conn.state(), State::SynSent);
        times.push(out[0].at);
    }
    let want: Vec<_> = [1, 3, 7, 15, 31, 63].into_iter().map(Instant::from_secs).collect();
    assert_eq!(times, want);
    assert_eq!(sc.events(), vec![]);
    assert_eq!(sc.conn.poll_timeout(), Some(Instant::from_secs(127)));
    assert!(sc.next_timer().is_empty(), "giving up sends nothing");
    assert_eq!(sc.now, Instant::from_secs(127));
    assert_eq!(sc.conn.state(), State::Closed);
    let ev = sc.events();
    assert_eq!(ev.last(), Some(&Event::Closed(Some(ConnectionError::TimedOut))));
    assert!(!ev.contains(&Event::Connected));
    let mut b = [0u8; 4];
    assert_eq!(sc.conn.read(&mut b), Err(ReadError::Failed(ConnectionError::TimedOut)));
    assert_eq!(sc.conn.write(b"x"), Err(WriteError::Failed(ConnectionError::TimedOut)));
    assert_eq!(sc.conn.poll_timeout(), None);
}

// ---- HS-07 -------------------------------------------------------------------------------

#[test]
fn hs_07_lost_syn_ack_retransmitted_then_half_open_dropped() {
    let mut sc = Sc::server(ConnConfig::default(), Seg::syn(PEER_ISS));
    let mut times = vec![];
    for _ in 0..5 {
        let out = sc.next_timer();
        assert_eq!(out.len(), 1, "{out:#?}");
        out[0].assert_flags(TcpFlags::SYN | TcpFlags::ACK).assert_seq_ack(ISS, PEER_ISS + 1);
        assert_eq!(sc.conn.state(), State::SynReceived);
        times.push(out[0].at);
    }
    let want: Vec<_> = [1, 3, 7, 15, 31].into_iter().map(Instant::from_secs).collect();
    assert_eq!(times, want);
    assert_eq!(sc.conn.poll_timeout(), Some(Instant::from_secs(63)));
    assert!(sc.next_timer().is_empty());
    assert_eq!(sc.conn.state(), State::Closed);
    assert!(sc.conn.is_drained());
    let ev = sc.events();
    assert!(!ev.contains(&Event::Connected), "{ev:?}");
    assert_eq!(ev.last(), Some(&Event::Closed(None)), "a half-open entry fails silently");
}

#[test]
fn hs_07_synack_retries_is_configurable() {
    let cfg = ConnConfig { synack_retries: 2, ..ConnConfig::default() };
    let mut sc = Sc::server(cfg, Seg::syn(PEER_ISS));
    let out = sc.advance(secs(10));
    let times: Vec<_> = out.iter().map(|o| o.at).collect();
    assert_eq!(times, vec![Instant::from_secs(1), Instant::from_secs(3)]);
    assert_eq!(sc.conn.state(), State::Closed);
    assert_eq!(sc.events().last(), Some(&Event::Closed(None)));
}

#[test]
fn hs_07_retransmitted_syn_makes_the_server_resend_its_syn_ack() {
    let mut sc = Sc::server(ConnConfig::default(), Seg::syn(PEER_ISS));
    sc.advance(ms(500));
    sc.deliver(Seg::syn(PEER_ISS));
    let sa = sc.expect_one();
    sa.assert_flags(TcpFlags::SYN | TcpFlags::ACK).assert_seq_ack(ISS, PEER_ISS + 1);
    assert_eq!(sa.at, at_ms(500));
    assert_eq!(sc.conn.state(), State::SynReceived);
    // The ACK of the resent SYN-ACK completes the handshake.
    sc.advance(ms(10));
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 1));
    assert_eq!(sc.conn.state(), State::Established);
    assert_eq!(sc.events(), vec![Event::Connected, Event::Writable]);
}

#[test]
fn hs_07_lost_syn_ack_pair() {
    // The server's first SYN-ACK is lost; the client's SYN retransmission at 1 s gets a new one.
    let mut p = Pair::new(Sc::plain(), Sc::plain(), ms(100));
    p.drop = Box::new(|dir, i, _| dir == Dir::StoC && i == 0);
    p.run_until(secs(5), |p| p.client.state() == State::Established);
    assert_eq!(p.now, Instant::from_millis(1_200));
    p.run_for(ms(100));
    assert_eq!(p.server().state(), State::Established);
    let syns: Vec<_> = p
        .sent(Dir::CtoS)
        .into_iter()
        .filter(|o| o.has(TcpFlags::SYN))
        .map(|o| (o.at, o.seq()))
        .collect();
    assert_eq!(syns, vec![(Instant::ZERO, ISS), (Instant::from_secs(1), ISS)]);
    let sas: Vec<_> = p
        .sent(Dir::StoC)
        .into_iter()
        .filter(|o| o.has(TcpFlags::SYN))
        .map(|o| (o.seq(), o.ack()))
        .collect();
    assert!(sas.len() >= 2 && sas.iter().all(|s| *s == (PEER_ISS, ISS + 1)), "{sas:?}");
}

// ---- HS-08 -------------------------------------------------------------------------------

#[test]
fn hs_08_lost_third_ack_server_resends_syn_ack_client_reacks() {
    // Server side: the SYN-ACK goes again at 1 s.
    let mut srv = Sc::server(Sc::plain(), Seg::syn(PEER_ISS));
    let out = srv.next_timer();
    assert_eq!(out.len(), 1);
    out[0].assert_flags(TcpFlags::SYN | TcpFlags::ACK).assert_seq_ack(ISS, PEER_ISS + 1);
    assert_eq!(out[0].at, Instant::from_secs(1));
    // Client side: an ESTABLISHED client answers the duplicate SYN-ACK with its ACK again.
    let mut cl = Sc::established(Sc::plain());
    cl.advance(ms(990));
    cl.deliver(Seg::syn_ack(PEER_ISS, ISS + 1));
    cl.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 1, PEER_ISS + 1);
    assert_eq!(cl.conn.state(), State::Established);
    assert_eq!(cl.events(), vec![]);
}

#[test]
fn hs_08_lost_third_ack_pair_timeline() {
    let mut p = Pair::new(Sc::plain(), Sc::plain(), ms(10));
    p.drop = Box::new(|dir, i, _| dir == Dir::CtoS && i == 1);
    p.run_until(secs(5), |p| p.server.as_ref().is_some_and(|s| s.state() == State::Established));
    assert_eq!(p.now, Instant::from_millis(1_030));
    let s2c: Vec<_> =
        p.sent(Dir::StoC).into_iter().map(|o| (o.at, o.seq(), o.ack(), o.tcp.flags)).collect();
    let sa = TcpFlags::SYN | TcpFlags::ACK;
    assert_eq!(
        s2c,
        vec![(at_ms(10), PEER_ISS, ISS + 1, sa), (at_ms(1_010), PEER_ISS, ISS + 1, sa)]
    );
    let c2s: Vec<_> =
        p.sent(Dir::CtoS).into_iter().map(|o| (o.at, o.seq(), o.ack(), o.tcp.flags)).collect();
    let a = TcpFlags::ACK;
    assert_eq!(
        c2s,
        vec![
            (Instant::ZERO, ISS, 0, TcpFlags::SYN),
            (at_ms(20), ISS + 1, PEER_ISS + 1, a),
            (at_ms(1_020), ISS + 1, PEER_ISS + 1, a),
        ]
    );
}

#[test]
fn hs_08_client_data_completes_the_servers_handshake() {
    let mut p = Pair::new(Sc::plain(), Sc::plain(), ms(10));
    p.drop = Box::new(|dir, i, _| dir == Dir::CtoS && i == 1);
    p.run_until(secs(1), |p| p.client.state() == State::Established);
    assert_eq!(p.now, at_ms(20));
    assert_eq!(p.client.write(b"hello").unwrap(), 5);
    p.run_until(secs(1), |p| p.server().state() == State::Established);
    assert_eq!(p.now, at_ms(30), "completed by the data segment, before any SYN-ACK retransmit");
    let data = p.sent(Dir::CtoS)[2].clone();
    data.assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 1, PEER_ISS + 1);
    assert_eq!((data.at, data.payload.as_slice()), (at_ms(20), &b"hello"[..]));
    let srv = p.server();
    assert_eq!(events(srv), vec![Event::Connected, Event::Readable, Event::Writable]);
    let mut b = [0u8; 16];
    assert_eq!(srv.read(&mut b), Ok(5));
    assert_eq!(&b[..5], b"hello");
    p.run_for(secs(3));
    let sas = p.sent(Dir::StoC).into_iter().filter(|o| o.has(TcpFlags::SYN)).count();
    assert_eq!(sas, 1, "the SYN-ACK is never retransmitted");
}

// ---- HS-09 -------------------------------------------------------------------------------

#[test]
fn hs_09_simultaneous_open() {
    let mut a = Connection::connect(Sc::plain(), Sc::params());
    let mut b = Connection::connect(Sc::plain(), peer_params());
    let syn_a = one(&mut a, Instant::ZERO);
    let syn_b = one(&mut b, Instant::ZERO);
    syn_a.assert_flags(TcpFlags::SYN).assert_seq_ack(ISS, 0);
    syn_b.assert_flags(TcpFlags::SYN).assert_seq_ack(PEER_ISS, 0);
    // The SYNs cross: each side goes to SYN-RECEIVED and sends a SYN-ACK (RFC 9293 figure 8).
    feed(&mut a, at_ms(10), &syn_b);
    feed(&mut b, at_ms(10), &syn_a);
    assert_eq!((a.state(), b.state()), (State::SynReceived, State::SynReceived));
    let sa_a = one(&mut a, at_ms(10));
    let sa_b = one(&mut b, at_ms(10));
    sa_a.assert_flags(TcpFlags::SYN | TcpFlags::ACK).assert_seq_ack(ISS, PEER_ISS + 1);
    sa_b.assert_flags(TcpFlags::SYN | TcpFlags::ACK).assert_seq_ack(PEER_ISS, ISS + 1);
    assert!(events(&mut a).is_empty() && events(&mut b).is_empty());
    // The SYN-ACKs cross: each acknowledges the other's SYN, both are ESTABLISHED.
    feed(&mut a, at_ms(20), &sa_b);
    feed(&mut b, at_ms(20), &sa_a);
    assert_eq!((a.state(), b.state()), (State::Established, State::Established));
    assert_eq!(events(&mut a), vec![Event::Connected, Event::Writable]);
    assert_eq!(events(&mut b), vec![Event::Connected, Event::Writable]);
    assert_eq!(a.poll_timeout(), None);
    assert_eq!(b.poll_timeout(), None);
    // Data flows both ways.
    a.write(b"ping").unwrap();
    let d = one(&mut a, at_ms(20));
    d.assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 1, PEER_ISS + 1);
    feed(&mut b, at_ms(30), &d);
    let mut buf = [0u8; 8];
    assert_eq!(b.read(&mut buf), Ok(4));
}

// ---- HS-10 -------------------------------------------------------------------------------

fn ep(seed: u64) -> Endpoint {
    Endpoint::new(EndpointConfig { seed, ..EndpointConfig::default() })
}

const LOCAL_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

fn server_addr(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), port)
}

#[test]
fn hs_10_isns_differ_per_four_tuple() {
    let mut e = ep(1);
    let (_, c1) = e.connect(Instant::ZERO, LOCAL_IP, server_addr(80)).unwrap();
    let (_, c2) = e.connect(Instant::ZERO, LOCAL_IP, server_addr(443)).unwrap();
    let (_, c3) = e.connect(Instant::ZERO, LOCAL_IP, server_addr(80)).unwrap();
    assert_ne!(c1.local_addr(), c3.local_addr(), "a second connection gets another port");
    let isns = [c1.seq_vars().iss, c2.seq_vars().iss, c3.seq_vars().iss];
    assert_ne!(isns[0], isns[1]);
    assert_ne!(isns[0], isns[2]);
    assert_ne!(isns[1], isns[2]);
}

#[test]
fn hs_10_same_four_tuple_later_gets_a_later_isn() {
    // Two endpoints with the same seed choose the same port: the same 4-tuple, 1 s apart.
    let (_, c1) = ep(9).connect(Instant::ZERO, LOCAL_IP, server_addr(80)).unwrap();
    let (_, c2) = ep(9).connect(Instant::from_secs(1), LOCAL_IP, server_addr(80)).unwrap();
    assert_eq!((c1.local_addr(), c1.remote_addr()), (c2.local_addr(), c2.remote_addr()));
    // RFC 6528: ISN = M + F(4-tuple, key), M a 4 µs clock: 1 s later is 250 000 higher.
    assert_eq!(c2.seq_vars().iss.0.wrapping_sub(c1.seq_vars().iss.0), 250_000);
}

#[test]
fn hs_10_different_seeds_give_unpredictable_isns() {
    let mut isns = vec![];
    for seed in 0..8 {
        let mut c = ep(seed).connect(Instant::ZERO, LOCAL_IP, server_addr(80)).unwrap().1;
        let syn = one(&mut c, Instant::ZERO);
        assert_eq!(syn.seq(), c.seq_vars().iss.0, "the SYN carries the chosen ISN");
        isns.push(syn.seq());
    }
    let mut uniq = isns.clone();
    uniq.sort_unstable();
    uniq.dedup();
    assert_eq!(uniq.len(), isns.len(), "{isns:?}");
}

#[test]
fn hs_10_segment_of_an_earlier_incarnation_is_not_accepted() {
    let mut sc = Sc::established(Sc::plain());
    sc.advance(ms(10));
    // Data from an earlier incarnation whose sequence numbers lie far behind RCV.NXT.
    let old_seq = PEER_ISS.wrapping_sub(100_000);
    sc.deliver(Seg::ack(old_seq, ISS.wrapping_sub(50_000)).data(b"stale data"));
    sc.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 1, PEER_ISS + 1);
    assert_eq!(sc.conn.readable_bytes(), 0);
    assert_eq!(sc.events(), vec![]);
    assert_eq!(sc.conn.state(), State::Established);
    let v = sc.conn.seq_vars();
    assert_eq!((v.rcv_nxt.0, v.snd_una.0), (PEER_ISS + 1, ISS + 1));
    // The current incarnation's data still goes through.
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 1).data(b"new"));
    assert_eq!(sc.read_all(), b"new");
}

// ---- HS-11 -------------------------------------------------------------------------------

/// Write 10 KB to a client whose peer announced `opts`, ACK everything sent each round, and
/// return the payload lengths in order.
fn segment_sizes(cfg: ConnConfig, opts: TcpOptions) -> Vec<usize> {
    let mut sc = Sc::client(cfg);
    sc.advance(ms(10));
    sc.deliver(Seg::syn_ack(PEER_ISS, ISS + 1).opts(opts));
    assert_eq!(sc.conn.state(), State::Established);
    sc.output();
    sc.conn.set_nodelay(true);
    let data = vec![0x5a; 10_240];
    assert_eq!(sc.conn.write(&data).unwrap(), 10_240);
    let mut sizes = vec![];
    for _ in 0..20 {
        let out = sc.output();
        if out.is_empty() {
            break;
        }
        sizes.extend(out.iter().map(Out::len));
        let end = out.iter().map(|o| o.seq() + o.len() as u32).max().unwrap();
        sc.advance(ms(10));
        let tsecr = out[0].tcp.options.timestamps.map_or(0, |t| t.tsval);
        let mut ack = Seg::ack(PEER_ISS + 1, end);
        if opts.timestamps.is_some() {
            ack = ack.ts(100, tsecr);
        }
        sc.deliver(ack);
    }
    for o in &sc.log {
        assert_eq!(ipv4_frag_field(&o.packet), 0x4000, "DF set, no fragment offset: {:?}", o.tcp);
    }
    assert_eq!(sizes.iter().sum::<usize>(), 10_240);
    sizes
}

#[test]
fn hs_11_segments_never_exceed_peer_mss_plain() {
    let opts = TcpOptions { mss: Some(536), ..Default::default() };
    let sizes = segment_sizes(Sc::plain(), opts);
    assert!(sizes.iter().all(|&n| n <= 536), "{sizes:?}");
    assert_eq!(sizes.iter().filter(|&&n| n == 536).count(), 19, "{sizes:?}");
}

#[test]
fn hs_11_segments_never_exceed_peer_mss_less_timestamps() {
    let mut opts = TcpOptions { mss: Some(536), ..Default::default() };
    opts.timestamps = Some(Timestamps { tsval: 50, tsecr: 0 });
    let sizes = segment_sizes(ConnConfig::default(), opts);
    assert!(sizes.iter().all(|&n| n <= 524), "{sizes:?}");
    assert_eq!(sizes.iter().filter(|&&n| n == 524).count(), 19, "{sizes:?}");
}

#[test]
fn hs_11_no_mss_option_means_536_and_ours_caps_a_larger_one() {
    // RFC 9293 §3.7.1: no MSS option means 536 for IPv4.
    let sizes = segment_sizes(Sc::plain(), TcpOptions::default());
    assert!(sizes.iter().all(|&n| n <= 536), "{sizes:?}");
    assert_eq!(sizes[0], 536);
    // A peer MSS larger than our MTU allows is capped at our own 1460.
    let sizes = segment_sizes(Sc::plain(), TcpOptions { mss: Some(9000), ..Default::default() });
    assert!(sizes.iter().all(|&n| n <= 1460), "{sizes:?}");
    assert_eq!(sizes[0], 1460);
}

#[test]
fn hs_11_every_emitted_packet_sets_df() {
    let mut sc = Sc::server(ConnConfig::default(), Seg::syn(PEER_ISS));
    sc.deliver(Seg::rst(PEER_ISS + 77)); // a challenge ACK
    sc.output();
    let mut cl = Sc::client(ConnConfig::default());
    cl.deliver(Seg::syn_ack(PEER_ISS, ISS + 9)); // a RST
    cl.output();
    for o in sc.log.iter().chain(cl.log.iter()) {
        assert_eq!(ipv4_frag_field(&o.packet), 0x4000, "{:?}", o.tcp);
    }
    assert!(cl.log.iter().any(|o| o.has(TcpFlags::RST)));
}

#[test]
fn hs_09_simultaneous_open_with_every_option() {
    let cfg = ConnConfig::default();
    let mut a = Connection::connect(cfg, Sc::params());
    let mut b = Connection::connect(cfg, peer_params());
    let (syn_a, syn_b) = (one(&mut a, Instant::ZERO), one(&mut b, Instant::ZERO));
    feed(&mut a, at_ms(10), &syn_b);
    feed(&mut b, at_ms(10), &syn_a);
    let (sa_a, sa_b) = (one(&mut a, at_ms(10)), one(&mut b, at_ms(10)));
    // The SYN-ACK of a simultaneous open repeats our options and echoes the peer's TSval.
    assert_eq!(sa_a.tcp.options.window_scale, Some(7));
    assert!(sa_a.tcp.options.sack_permitted);
    assert_eq!(sa_a.tcp.options.timestamps.map(|t| t.tsecr), Some(7), "B's TSval at time 0");
    feed(&mut a, at_ms(20), &sa_b);
    feed(&mut b, at_ms(20), &sa_a);
    assert_eq!((a.state(), b.state()), (State::Established, State::Established));
    let (ia, ib) = (a.info(), b.info());
    assert_eq!((ia.wscale, ia.timestamps, ia.sack), ((7, 7), true, true));
    assert_eq!((ib.wscale, ib.timestamps, ib.sack), ((7, 7), true, true));
    // Data flows with the negotiated options: full segments of 1460 - 12 bytes, all delivered.
    let data = vec![7u8; 20_000];
    a.write(&data).unwrap();
    let mut got = 0;
    for round in 0..10 {
        let now = at_ms(30 + 10 * round);
        for s in drain(&mut a, now) {
            assert!(s.len() <= 1448, "{}", s.len());
            feed(&mut b, now, &s);
        }
        for s in drain(&mut b, now) {
            feed(&mut a, now, &s);
        }
        let mut buf = [0u8; 65_536];
        while let Ok(n) = b.read(&mut buf) {
            if n == 0 {
                break;
            }
            got += n;
        }
    }
    assert_eq!(got, 20_000);
}

#[test]
fn hs_01_max_segment_clamps_our_mss_option_and_segments_like_linux_tcp_maxseg() {
    // Linux TCP_MAXSEG (mss/mss-setsockopt-tcp_maxseg-client.pkt): our SYN offers 1100,
    // and the peer's 1460 is capped to it.
    let cfg = ConnConfig { max_segment: Some(1100), ..Sc::plain() };
    let mut c = Connection::connect(cfg, Sc::params());
    assert_eq!(one(&mut c, Instant::ZERO).tcp.options.mss, Some(1100), "the SYN's option");
    let mut sc = Sc::client(cfg);
    sc.advance(ms(10));
    sc.deliver(Seg::syn_ack(PEER_ISS, ISS + 1));
    sc.expect_one();
    assert_eq!(sc.conn.info().snd_mss, 1100);
    sc.conn.write(&[1u8; 3000]).unwrap();
    let lens: Vec<usize> = sc.output().iter().map(|o| o.len()).collect();
    assert_eq!(lens, [1100, 1100, 800]);
}

/// HS-03, HS-04, HS-09: every side's congestion window starts at the initial window in
/// segments of the size the SYN exchange negotiated (RFC 5681 §3.1, RFC 6928: IW counts in
/// SMSS; RFC 7323 §3.2: less the timestamps option): a server from the SYN, a client and a
/// simultaneous opener from the SYN-ACK or crossing SYN, with and without timestamps.
#[test]
fn hs_03_initial_window_counts_negotiated_segments_on_every_side() {
    for ts in [false, true] {
        let cfg = ConnConfig { timestamps: ts, ..Sc::plain() };
        let mut o = TcpOptions { mss: Some(1000), ..Default::default() };
        if ts {
            o.timestamps = Some(Timestamps { tsval: 7, tsecr: 0 });
        }
        let seg_size = if ts { 988 } else { 1000 };
        let iw = cfg.initial_cwnd * seg_size;
        let server = Sc::server(cfg, Seg::syn(PEER_ISS).opts(o));
        assert_eq!(server.conn.info().cwnd, iw, "server, timestamps {ts}");
        let mut client = Sc::client(cfg);
        client.deliver(Seg::syn_ack(PEER_ISS, ISS + 1).opts(o));
        assert_eq!(client.conn.state(), State::Established);
        assert_eq!(client.conn.info().cwnd, iw, "client, timestamps {ts}");
        let mut both = Sc::client(cfg);
        both.deliver(Seg::syn(PEER_ISS).opts(o));
        assert_eq!(both.conn.state(), State::SynReceived);
        assert_eq!(both.conn.info().cwnd, iw, "simultaneous open, timestamps {ts}");
    }
}
