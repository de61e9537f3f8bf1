//! Path MTU discovery at the connection (RFC 1191 §6, RFC 8201 §5, RFC 5927 §4.1): a smaller
//! MTU reported by ICMP for an in-flight segment shrinks every later segment and resends the
//! flight at the new size, congestion window untouched; bogus reports change nothing. Then
//! end to end: two endpoints through a router with a small MTU that answers with ICMP.
//!
//! IDs as in `tests/icmp.rs`: IC-03 shrink and resend, IC-04 not in flight, IC-05 never grow,
//! floor.

mod common;
mod icmp_util;

use std::time::Duration;

use common::*;
use icmp_util::*;
use tcpcore::wire::{SeqNum, TcpFlags};
use tcpcore::{ConnConfig, State};

/// An established plain client that sent `n` full 1460-byte segments (1500-byte packets).
#[track_caller]
fn flight_of(n: usize) -> Sc {
    let mut sc = Sc::established(Sc::plain());
    assert_eq!(sc.conn.write(&vec![7u8; 1460 * n]).unwrap(), 1460 * n);
    let out = sc.output();
    assert_eq!(out.iter().map(Out::len).collect::<Vec<_>>(), vec![1460; n]);
    assert!(out.iter().all(|o| o.packet.len() == 1500));
    sc
}

#[test]
fn ic_03_frag_needed_shrinks_segments_and_resends_the_flight() {
    let mut sc = flight_of(4);
    let before = sc.conn.info();
    assert_eq!((before.snd_mss, sc.conn.path_mtu()), (1460, 1500));
    sc.now += ms(5);
    // The router dropped the second segment: MTU 1000.
    sc.conn.handle_path_mtu(sc.now, 1000, SeqNum(ISS + 1 + 1460));
    let info = sc.conn.info();
    assert_eq!((info.snd_mss, sc.conn.path_mtu(), info.pmtu_reductions), (960, 1000, 1));
    // RFC 1191 §6.5: the whole flight again, from SND.UNA, in 960-byte segments; the
    // 80-byte tail was sent before, so Nagle does not hold it.
    let out = sc.output();
    let got: Vec<_> = out.iter().map(|o| (o.seq(), o.len())).collect();
    let want: Vec<_> =
        (0..7u32).map(|k| (ISS + 1 + 960 * k, if k < 6 { 960 } else { 5840 - 5760 })).collect();
    assert_eq!(got, want);
    assert!(out.iter().all(|o| o.packet.len() <= 1000 && o.at == sc.now));
    out[0].assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 1, PEER_ISS + 1);
    // No congestion response (RFC 1191 §6.5, Linux tcp_simple_retransmit).
    let info = sc.conn.info();
    assert_eq!((info.cwnd, info.ssthresh), (before.cwnd, before.ssthresh));
    assert_eq!((info.retransmits, info.timeouts, info.fast_retransmits), (7, 0, 0));

    // New data after the peer caught up also goes out in 960-byte segments; the small tail
    // too, since no earlier small segment is unacknowledged (Nagle, Minshall form).
    sc.now += ms(20);
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 1 + 5840));
    sc.conn.write(&[8u8; 2000]).unwrap();
    let out = sc.output();
    assert_eq!(
        out.iter().map(|o| (o.seq(), o.len())).collect::<Vec<_>>(),
        vec![(ISS + 1 + 5840, 960), (ISS + 1 + 6800, 960), (ISS + 1 + 7760, 80)]
    );
}

#[test]
fn ic_03_with_timestamps_packets_fill_the_new_mtu_exactly() {
    let cfg = ConnConfig { window_scaling: false, sack: false, ..ConnConfig::default() };
    let mut sc = Sc::client(cfg);
    sc.advance(ms(10));
    sc.deliver(Seg::syn_ack(PEER_ISS, ISS + 1).ts(500, 0));
    sc.expect_one().assert_flags(TcpFlags::ACK);
    assert!(sc.conn.info().timestamps);
    sc.conn.write(&[1u8; 2896]).unwrap();
    let out = sc.output();
    assert_eq!(
        out.iter().map(|o| (o.len(), o.packet.len())).collect::<Vec<_>>(),
        vec![(1448, 1500), (1448, 1500)]
    );
    sc.conn.handle_path_mtu(sc.now, 1000, SeqNum(ISS + 1));
    // 20 (IP) + 20 (TCP) + 12 (timestamps) + 948 = 1000.
    assert_eq!(sc.conn.info().snd_mss, 948);
    let out = sc.output();
    let sizes: Vec<_> = out.iter().map(|o| (o.seq(), o.len(), o.packet.len())).collect();
    assert_eq!(
        sizes,
        vec![
            (ISS + 1, 948, 1000),
            (ISS + 1 + 948, 948, 1000),
            (ISS + 1 + 1896, 948, 1000),
            (ISS + 1 + 2844, 52, 104)
        ]
    );
}

#[test]
fn ic_03_retransmission_timeout_resends_at_the_new_size() {
    let mut sc = flight_of(2);
    sc.conn.handle_path_mtu(sc.now, 1000, SeqNum(ISS + 1));
    let first = sc.output();
    assert_eq!(first.iter().map(Out::len).collect::<Vec<_>>(), vec![960, 960, 960, 40]);
    // The resent flight is lost too: the RTO resends from SND.UNA, still at most 960.
    let rto = sc.next_timer();
    assert_eq!(rto.iter().map(|o| (o.seq(), o.len())).collect::<Vec<_>>(), vec![(ISS + 1, 960)]);
    // RFC 6298 §5.1: the timer armed by the original flight (sent at 10 ms, RTO 200 ms after
    // the handshake's 10 ms sample) keeps running through the PMTU resend.
    assert_eq!(rto[0].at, first[0].at + Duration::from_millis(200));
    assert_eq!(sc.conn.info().timeouts, 1);
}

#[test]
fn ic_04_a_quote_not_in_flight_is_ignored() {
    let mut sc = flight_of(2);
    // RFC 5927 §4.1: SND.UNA <= SEG.SEQ < SND.NXT, else ignore.
    for seq in [ISS, ISS + 1 + 2920, ISS + 1 + 100_000, ISS.wrapping_sub(1_000_000)] {
        sc.conn.handle_path_mtu(sc.now, 1000, SeqNum(seq));
        sc.expect_none();
    }
    let info = sc.conn.info();
    assert_eq!((info.snd_mss, info.icmp_ignored, info.pmtu_reductions), (1460, 4, 0));
    // Once acknowledged, a segment's quote is stale too.
    sc.now += ms(20);
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 1 + 1460));
    sc.conn.handle_path_mtu(sc.now, 1000, SeqNum(ISS + 1));
    sc.expect_none();
    assert_eq!(sc.conn.info().snd_mss, 1460);
    // The last byte in flight is in flight.
    sc.conn.handle_path_mtu(sc.now, 1000, SeqNum(ISS + 2920));
    assert_eq!(sc.conn.info().snd_mss, 960);
    let out = sc.output();
    assert_eq!(
        out.iter().map(|o| (o.seq(), o.len())).collect::<Vec<_>>(),
        vec![(ISS + 1 + 1460, 960), (ISS + 1 + 2420, 500)]
    );
}

#[test]
fn ic_04_path_mtu_before_the_handshake_is_ignored() {
    let mut sc = Sc::client(Sc::plain());
    assert_eq!(sc.conn.state(), State::SynSent);
    sc.conn.handle_path_mtu(sc.now, 1000, SeqNum(ISS));
    sc.expect_none();
    assert_eq!(sc.conn.info().icmp_ignored, 1);
    sc.advance(ms(10));
    sc.deliver(Seg::syn_ack(PEER_ISS, ISS + 1));
    sc.expect_one();
    assert_eq!(sc.conn.info().snd_mss, 1460);
}

#[test]
fn ic_05_the_mss_never_grows_from_icmp_and_stops_at_the_floor() {
    let mut sc = flight_of(3);
    let in_flight = SeqNum(ISS + 1);
    sc.conn.handle_path_mtu(sc.now, 1500, in_flight);
    sc.expect_none();
    sc.conn.handle_path_mtu(sc.now, 1000, in_flight);
    assert_eq!(sc.output().len(), 5, "4380 bytes again in 960-byte segments");
    sc.conn.handle_path_mtu(sc.now, 1200, in_flight);
    sc.expect_none();
    assert_eq!(sc.conn.info().snd_mss, 960);
    // A tiny MTU (forged, RFC 5927 §7) only brings the MSS down to 552 - 40.
    sc.conn.handle_path_mtu(sc.now, 68, in_flight);
    assert_eq!((sc.conn.info().snd_mss, sc.conn.path_mtu()), (512, 552));
    assert!(sc.output().iter().all(|o| o.len() <= 512));
    sc.conn.handle_path_mtu(sc.now, 100, in_flight);
    sc.expect_none();
    let info = sc.conn.info();
    assert_eq!((info.snd_mss, info.pmtu_reductions, info.icmp_ignored), (512, 2, 3));
}

// ---- end to end: two endpoints and a router -----------------------------------------------

/// Client writes `n` bytes to the server through `path`; returns what the server read.
fn transfer(path: &mut Path, client_ip: &str, server: std::net::SocketAddr, n: usize) -> Vec<u8> {
    path.server.ep.listen(server).unwrap();
    let (h, conn) = path.client.ep.connect(path.now, client_ip.parse().unwrap(), server).unwrap();
    path.client.conns.insert(h, conn);
    path.run_until(secs(5), |p| p.client.conns[&h].state() == State::Established);
    let data: Vec<u8> = (0..n).map(|i| (i * 7 + i / 251) as u8).collect();
    assert_eq!(path.client.conns.get_mut(&h).unwrap().write(&data).unwrap(), n);
    let mut got = Vec::new();
    path.run_until(secs(30), |p| {
        let mut buf = [0u8; 4096];
        for c in p.server.conns.values_mut() {
            while let Ok(k @ 1..) = c.read(&mut buf) {
                got.extend_from_slice(&buf[..k]);
            }
        }
        got.len() == n
    });
    assert_eq!(got, data, "byte-exact delivery");
    let info = path.client.conns[&h].info();
    assert_eq!(info.pmtu_reductions, 1);
    got
}

#[test]
fn ic_03_end_to_end_ipv4_through_a_1000_byte_mtu() {
    let mut path = Path::new("10.0.0.254".parse().unwrap(), 1000);
    transfer(&mut path, "10.0.0.1", at80("10.0.0.2"), 40_000);
    // The initial window of ten 1500-byte packets was dropped, each answered by ICMP; one
    // lowered the MSS, the other nine quoted the same flight and changed nothing.
    assert_eq!(path.dropped.len(), 10);
    assert!(path.dropped.iter().all(|p| p.len() == 1500));
    assert_eq!(path.client.pmtu_events, 10);
    assert_eq!(path.client.ep.stats().icmp_errors_applied, 10);
    let sizes: Vec<_> = path.delivered.iter().map(|(_, p)| p.len()).collect();
    assert!(sizes.iter().all(|&s| s <= 1000));
    assert_eq!(sizes.iter().max(), Some(&1000), "full segments fill the MTU: {sizes:?}");
}

#[test]
fn ic_03_end_to_end_ipv6_through_the_minimum_mtu() {
    let mut path = Path::new("2001:db8::fe".parse().unwrap(), 1280);
    transfer(&mut path, "2001:db8::1", at80("2001:db8::2"), 40_000);
    assert_eq!(path.dropped.len(), 10);
    assert_eq!(path.client.pmtu_events, 10);
    let sizes: Vec<_> = path.delivered.iter().map(|(_, p)| p.len()).collect();
    assert!(sizes.iter().all(|&s| s <= 1280));
    assert_eq!(sizes.iter().max(), Some(&1280));
}
