//! RX-05: timestamps (RFC 7323): RTT samples from TSecr on every ACK (§4.1, weighted per
//! Appendix G), TS.Recent (§4.3), PAWS (§5.3) with the idle rule (§5.5), and per-connection
//! random TSval offsets (§5.4).

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::*;
use tcpcore::wire::{self, TcpFlags, Timestamps};
use tcpcore::{ConnConfig, Endpoint, EndpointConfig, Event, Instant, State};

/// Our first data sequence number and the peer's.
const D: u32 = ISS + 1;
const P: u32 = PEER_ISS + 1;
/// Payload per segment: MSS 1460 less the 12-byte timestamp option.
const MSS: u32 = 1448;
/// The peer's TSval on its SYN-ACK.
const PEER_TS: u32 = 100;

/// Timestamps on; no window scaling or SACK, so segments are easy to predict.
fn ts_cfg() -> ConnConfig {
    ConnConfig { timestamps: true, ..Sc::plain() }
}

fn ts(tsval: u32, tsecr: u32) -> Option<Timestamps> {
    Some(Timestamps { tsval, tsecr })
}

/// A client in ESTABLISHED at 10 ms with timestamps: our SYN at 0 carried TSval 0 (offset
/// 0), the SYN-ACK TSval [`PEER_TS`]; the handshake gave an RTT sample of 10 ms.
#[track_caller]
fn established_ts(cfg: ConnConfig) -> Sc {
    let mut sc = Sc::client(cfg);
    assert_eq!(sc.log[0].tcp.options.timestamps, ts(0, 0));
    sc.advance(ms(10));
    sc.deliver(Seg::syn_ack(PEER_ISS, D).ts(PEER_TS, 0));
    let ack = sc.expect_one();
    ack.assert_flags(TcpFlags::ACK).assert_seq_ack(D, P);
    assert_eq!(ack.tcp.options.timestamps, ts(10, PEER_TS));
    assert_eq!(sc.conn.state(), State::Established);
    assert!(sc.conn.info().timestamps);
    assert_eq!(sc.conn.info().srtt, Some(ms(10)));
    assert_eq!(sc.conn.info().rttvar, ms(5));
    sc.events();
    sc
}

fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// RFC 6298 §2.3 with the gains divided by `n` (RFC 7323 Appendix G), in whole nanoseconds
/// as the estimator computes them: `(srtt, rttvar)` after sample `r`.
fn rfc7323_g(srtt: Duration, rttvar: Duration, r: Duration, n: u32) -> (Duration, Duration) {
    let var = (rttvar * (4 * n - 1) + srtt.abs_diff(r)) / (4 * n);
    ((srtt * (8 * n - 1) + r) / (8 * n), var)
}

#[track_caller]
fn assert_rtt(sc: &Sc, srtt: Duration, rttvar: Duration) {
    let i = sc.conn.info();
    assert_eq!((i.srtt, i.rttvar), (Some(srtt), rttvar), "at {}", sc.now);
}

// ---- RTT from timestamps (RFC 7323 §4.1, Appendix G) -----------------------------------------

#[test]
fn rx_05_rtt_sample_from_tsecr_on_every_ack_with_appendix_g_weights() {
    let mut sc = established_ts(ts_cfg());
    // Four segments at 10 ms, each with TSval 10.
    sc.conn.write(&bytes(4 * MSS as usize)).unwrap();
    let out = sc.output();
    assert_eq!(out.len(), 4);
    assert!(out.iter().all(|o| o.tcp.options.timestamps == ts(10, PEER_TS)));

    // 40 ms: the first is acknowledged echoing 10: R' = 30 ms. FlightSize 4 segments, so
    // ExpectedSamples = ceil(4 * 1448 / 2896) = 2.
    sc.advance(ms(30));
    sc.deliver(Seg::ack(P, D + MSS).ts(PEER_TS + 30, 10));
    let (s, v) = rfc7323_g(ms(10), ms(5), ms(30), 2);
    assert_eq!((s, v), (Duration::from_micros(11_250), Duration::from_micros(6_875)));
    assert_rtt(&sc, s, v);

    // 50 ms: the second, no longer the timed segment, still gives a sample (R' = 40 ms);
    // three segments in flight: ExpectedSamples 2 again.
    sc.advance(ms(10));
    sc.deliver(Seg::ack(P, D + 2 * MSS).ts(PEER_TS + 40, 10));
    let (s, v) = rfc7323_g(s, v, ms(40), 2);
    assert_rtt(&sc, s, v);

    // 60 ms: the last two at once; two in flight: ExpectedSamples 1, the RFC 6298 gains.
    sc.advance(ms(10));
    sc.deliver(Seg::ack(P, D + 4 * MSS).ts(PEER_TS + 50, 10));
    let (s, v) = rfc7323_g(s, v, ms(50), 1);
    assert_rtt(&sc, s, v);
    // RTO = SRTT + 4 RTTVAR, clamped at 200 ms (RFC 6298 §2.4).
    assert_eq!(sc.conn.info().rto, (s + 4 * v).max(ms(200)));
}

#[test]
fn rx_05_without_timestamps_only_the_timed_segment_gives_a_sample() {
    let mut sc = Sc::established(Sc::plain());
    assert_rtt(&sc, ms(10), ms(5));
    sc.conn.write(&bytes(2 * 1460)).unwrap();
    assert_eq!(sc.output().len(), 2);
    sc.advance(ms(30));
    sc.deliver(Seg::ack(P, D + 1460));
    let (s, v) = rfc7323_g(ms(10), ms(5), ms(30), 1);
    assert_rtt(&sc, s, v);
    sc.advance(ms(30));
    sc.deliver(Seg::ack(P, D + 2920));
    assert_rtt(&sc, s, v); // the second segment was not timed
}

#[test]
fn rx_05_retransmission_acked_with_its_echo_gives_a_sample_and_ends_backoff() {
    let mut sc = established_ts(ts_cfg());
    sc.conn.write(&bytes(100)).unwrap();
    sc.expect_one().assert_seq_ack(D, P);
    // RTO = 10 + 4 * 5 = 30 ms, clamped to 200 ms: the retransmission at 210 ms carries
    // TSval 210; the RTO doubles to 400 ms.
    let rtx = sc.next_timer();
    assert_eq!(rtx.len(), 1);
    rtx[0].assert_seq_ack(D, P);
    assert_eq!(
        (rtx[0].at, rtx[0].tcp.options.timestamps),
        (Instant::from_millis(210), ts(210, PEER_TS))
    );
    assert_eq!(sc.conn.info().rto, ms(400));
    // Its ACK at 235 ms echoes 210: R' = 25 ms (Karn's rule forbids the timed sample, but
    // the echo dates the retransmission itself, RFC 7323 §4.1).
    sc.advance(ms(25));
    sc.deliver(Seg::ack(P, D + 100).ts(PEER_TS + 1, 210));
    let (s, v) = rfc7323_g(ms(10), ms(5), ms(25), 1);
    assert_rtt(&sc, s, v);
    assert_eq!(sc.conn.info().rto, ms(200), "backoff ended by the sample (RFC 6298 §5.7)");
}

#[test]
fn rx_05_echo_of_zero_or_from_the_future_gives_no_sample() {
    let mut sc = established_ts(ts_cfg());
    sc.conn.write(&bytes(3 * MSS as usize)).unwrap();
    assert_eq!(sc.output().len(), 3);
    sc.advance(ms(20));
    // The timed segment's ACK: its own (microsecond) sample of 20 ms.
    sc.deliver(Seg::ack(P, D + MSS).ts(PEER_TS + 1, 10));
    let (s, v) = rfc7323_g(ms(10), ms(5), ms(20), 2);
    assert_rtt(&sc, s, v);
    // TSecr 0 is not an echo; 31 is our clock a millisecond from now: not ours either.
    sc.deliver(Seg::ack(P, D + 2 * MSS).ts(PEER_TS + 2, 0));
    assert_rtt(&sc, s, v);
    sc.deliver(Seg::ack(P, D + 3 * MSS).ts(PEER_TS + 3, 31));
    assert_rtt(&sc, s, v);
    assert_eq!(sc.conn.info().unacked, 0);
}

// ---- TS.Recent (RFC 7323 §4.3) ------------------------------------------------------------

#[test]
fn rx_05_ts_recent_only_from_segments_covering_last_ack_sent() {
    // Delayed ACKs from the start, so two segments arrive before our ACK.
    let mut sc = established_ts(ConnConfig { quick_acks: 0, ..ts_cfg() });
    sc.deliver(Seg::ack(P, D).ts(200, 10).data(&[1; 600]));
    sc.expect_none(); // delayed
                      // SEG.SEQ P + 600 > Last.ACK.sent P: TS.Recent stays 200 (§4.3 (2), the earliest).
    sc.deliver(Seg::ack(P + 600, D).ts(201, 10).data(&[2; 600]));
    let ack = sc.expect_one();
    ack.assert_seq_ack(D, P + 1200);
    assert_eq!(ack.tcp.options.timestamps, ts(10, 200));
    // Out of order (beyond a hole): answered at once, echoing TS.Recent, not 300.
    sc.deliver(Seg::ack(P + 2000, D).ts(300, 10).data(&[3; 100]));
    let ack = sc.expect_one();
    ack.assert_seq_ack(D, P + 1200);
    assert_eq!(ack.tcp.options.timestamps, ts(10, 200));
    // The hole filled (SEG.SEQ = Last.ACK.sent): its TSval 301 is recorded.
    sc.deliver(Seg::ack(P + 1200, D).ts(301, 10).data(&[4; 800]));
    let ack = sc.expect_one();
    ack.assert_seq_ack(D, P + 2100);
    assert_eq!(ack.tcp.options.timestamps, ts(10, 301));
    assert_eq!(sc.conn.info().paws_rejected, 0);
}

// ---- PAWS (RFC 7323 §5) -------------------------------------------------------------------

/// Established with TS.Recent = 200 (a segment of 100 bytes at P, acknowledged).
#[track_caller]
fn with_ts_recent_200() -> Sc {
    let mut sc = established_ts(ts_cfg());
    sc.deliver(Seg::ack(P, D).ts(200, 10).data(&[1; 100]));
    let ack = sc.expect_one();
    ack.assert_seq_ack(D, P + 100);
    assert_eq!(ack.tcp.options.timestamps, ts(10, 200));
    assert_eq!(sc.read_all().len(), 100);
    sc.events();
    sc
}

#[test]
fn rx_05_paws_drops_an_old_duplicate_with_an_ack_and_counts_it() {
    let mut sc = with_ts_recent_200();
    sc.conn.write(&bytes(50)).unwrap();
    sc.expect_one().assert_seq_ack(D, P + 100);
    let before = sc.conn.info();
    // In window, at RCV.NXT, acknowledging our data, but TSval 150 < TS.Recent 200: an old
    // duplicate from a previous wrap of the sequence space (R1). Dropped, acknowledged.
    sc.advance(ms(5));
    sc.deliver(Seg::ack(P + 100, D + 50).ts(150, 10).data(b"stale"));
    let ack = sc.expect_one();
    ack.assert_flags(TcpFlags::ACK).assert_seq_ack(D + 50, P + 100);
    assert_eq!(ack.len(), 0);
    assert_eq!(ack.tcp.options.timestamps, ts(15, 200), "TS.Recent unchanged");
    let i = sc.conn.info();
    assert_eq!((i.paws_rejected, i.drops), (1, before.drops + 1));
    assert_eq!(sc.conn.readable_bytes(), 0, "data not delivered");
    assert_eq!(i.unacked, 50, "its ACK field was not processed");
    assert!(sc.events().is_empty());
    // The same segment with a current TSval is accepted.
    sc.deliver(Seg::ack(P + 100, D + 50).ts(201, 10).data(b"fresh"));
    sc.expect_one().assert_seq_ack(D + 50, P + 105);
    assert_eq!(sc.read_all(), b"fresh");
    assert_eq!(sc.conn.info().unacked, 0);
    assert_eq!(sc.conn.info().paws_rejected, 1);
}

#[test]
fn rx_05_paws_applies_to_pure_acks_too() {
    let mut sc = with_ts_recent_200();
    sc.conn.write(&bytes(50)).unwrap();
    sc.expect_one();
    // An old ACK acknowledging new data: not acceptable (R1 tests every segment).
    sc.deliver(Seg::ack(P + 100, D + 50).ts(199, 10));
    sc.expect_one().assert_seq_ack(D + 50, P + 100);
    assert_eq!(sc.conn.info().unacked, 50);
    assert_eq!(sc.conn.info().paws_rejected, 1);
}

#[test]
fn rx_05_paws_keeps_reordered_duplicate_acks_like_linux() {
    let mut sc = with_ts_recent_200();
    sc.conn.write(&bytes(3 * MSS as usize)).unwrap();
    assert_eq!(sc.output().len(), 3);
    // Two duplicate ACKs (window unchanged) overtaken by each other: the older TSval is
    // within an RTO of TS.Recent, so it counts (Linux tcp_disordered_ack).
    sc.deliver(Seg::ack(P + 100, D).ts(210, 10));
    sc.deliver(Seg::ack(P + 100, D).ts(205, 10));
    assert_eq!(sc.conn.info().paws_rejected, 0);
    // The third duplicate triggers fast retransmit (RFC 5681 §3.2).
    sc.deliver(Seg::ack(P + 100, D).ts(211, 10));
    let out = sc.output();
    assert!(out.iter().any(|o| o.seq() == D && o.len() == MSS as usize), "{out:#?}");
    assert_eq!(sc.conn.info().fast_retransmits, 1);
}

#[test]
fn rx_05_paws_does_not_reject_a_reset() {
    // RFC 7323 §5.3 R1 applies only "if the RST bit is not set"; §5.2: a RST is acceptable
    // regardless of its timestamp. This one is at RCV.NXT with an old TSval.
    let mut sc = with_ts_recent_200();
    sc.deliver(Seg::rst(P + 100).ts(1, 0));
    assert_eq!(sc.conn.state(), State::Closed);
    let reset = Event::Closed(Some(tcpcore::ConnectionError::Reset));
    assert_eq!(sc.events().last(), Some(&reset));
    assert_eq!(sc.conn.info().paws_rejected, 0);
}

#[test]
fn rx_05_paws_ignores_ts_recent_idle_for_more_than_24_days() {
    const DAYS_24: Duration = Duration::from_secs(24 * 24 * 3600);
    // Just within 24 days of the update (at 10 ms): still valid, the old segment is dropped.
    let mut sc = with_ts_recent_200();
    sc.advance(DAYS_24 - ms(1));
    sc.deliver(Seg::ack(P + 100, D).ts(150, 10).data(b"old"));
    sc.expect_one().assert_seq_ack(D, P + 100);
    assert_eq!(sc.conn.info().paws_rejected, 1);

    // Past 24 days: TS.Recent is invalid (§5.5), so the segment is accepted and its TSval,
    // though "older", becomes TS.Recent.
    let mut sc = with_ts_recent_200();
    sc.advance(DAYS_24 + ms(1));
    sc.deliver(Seg::ack(P + 100, D).ts(150, 10).data(b"new"));
    let ack = sc.expect_one();
    ack.assert_seq_ack(D, P + 103);
    assert_eq!(ack.tcp.options.timestamps.map(|t| t.tsecr), Some(150));
    assert_eq!(sc.read_all(), b"new");
    assert_eq!(sc.conn.info().paws_rejected, 0);
    // And PAWS protects again from the new TS.Recent.
    sc.deliver(Seg::ack(P + 103, D).ts(149, 10).data(b"x"));
    sc.expect_one().assert_seq_ack(D, P + 103);
    assert_eq!(sc.conn.info().paws_rejected, 1);
}

// ---- Per-connection TSval offsets (RFC 7323 §5.4, RFC 9293 §3.4.1 style) -----------------

#[test]
fn rx_05_each_connection_gets_its_own_random_tsval_offset() {
    let mut ep = Endpoint::new(EndpointConfig { seed: 42, ..EndpointConfig::default() });
    let local = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let mut buf = vec![0u8; 2000];
    let mut tsvals = Vec::new();
    for (i, port) in [80u16, 80, 443].into_iter().enumerate() {
        let remote = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2 + i as u8 % 2)), port);
        let (_, mut conn) = ep.connect(Instant::ZERO, local, remote).unwrap();
        let t = conn.poll_transmit(Instant::ZERO, &mut buf).unwrap();
        let syn = wire::parse(&buf[..t.len]).unwrap();
        assert!(syn.tcp.flags.syn());
        tsvals.push(syn.tcp.options.timestamps.unwrap().tsval);
    }
    // At time zero the TSval is the offset itself: random (not 0) and different each time.
    assert!(tsvals.iter().all(|&t| t != 0), "{tsvals:?}");
    assert_ne!(tsvals[0], tsvals[1], "{tsvals:?}");
    assert_ne!(tsvals[0], tsvals[2], "{tsvals:?}");
    assert_ne!(tsvals[1], tsvals[2], "{tsvals:?}");
}

// ---- TS-01: TS.Recent only from acceptable segments (RFC 7323 §4.3, §5.3) ---------------------

/// TS-01: a FIN in the window, at RCV.NXT, whose ACK field acknowledges data we never sent
/// is dropped (RFC 5961 §5.2, answered by a challenge ACK), and so never updates TS.Recent:
/// otherwise its TSval, however far ahead, would make PAWS drop every later valid segment.
#[test]
fn ts_01_segment_dropped_for_its_ack_never_updates_ts_recent() {
    let mut sc = with_ts_recent_200();
    sc.advance(ms(5));
    sc.deliver(Seg::ack(P + 100, D + 5000).fin().ts(1_000_000, 10));
    let ack = sc.expect_one();
    ack.assert_flags(TcpFlags::ACK).assert_seq_ack(D, P + 100);
    assert_eq!(ack.tcp.options.timestamps, ts(15, 200), "TS.Recent unchanged");
    assert_eq!(sc.conn.state(), State::Established, "the FIN was not taken");
    // A valid segment with the peer's real clock is accepted, not dropped by PAWS.
    sc.deliver(Seg::ack(P + 100, D).ts(201, 10).data(b"fresh"));
    let ack = sc.expect_one();
    ack.assert_seq_ack(D, P + 105);
    assert_eq!(ack.tcp.options.timestamps, ts(15, 201));
    assert_eq!(sc.read_all(), b"fresh");
    assert_eq!(sc.conn.info().paws_rejected, 0);
}

/// TS-01: a segment dropped for its sequence number (beyond the window) or for an ACK older
/// than SND.UNA - MAX.SND.WND never updates TS.Recent either.
#[test]
fn ts_01_segment_dropped_for_its_sequence_number_never_updates_ts_recent() {
    let mut sc = with_ts_recent_200();
    sc.advance(ms(5));
    sc.deliver(Seg::ack(P + 100 + 200_000, D).ts(1_000_000, 10).data(b"far"));
    let ack = sc.expect_one();
    ack.assert_seq_ack(D, P + 100);
    assert_eq!(ack.tcp.options.timestamps, ts(15, 200));
    sc.advance(ms(5));
    sc.deliver(Seg::ack(P + 100, D.wrapping_sub(1 << 20)).ts(2_000_000, 10).data(b"old"));
    let ack = sc.expect_one();
    ack.assert_seq_ack(D, P + 100);
    assert_eq!(ack.tcp.options.timestamps, ts(20, 200));
    sc.deliver(Seg::ack(P + 100, D).ts(202, 10).data(b"ok"));
    sc.expect_one().assert_seq_ack(D, P + 102);
    assert_eq!(sc.conn.info().paws_rejected, 0);
}

// ---- TS-02: RSTs carry the timestamp option (RFC 7323 §3.2) -----------------------------------

/// TS-02: an abortive close of a connection that negotiated timestamps sends a RST with the
/// option (TSval from our clock, TSecr = TS.Recent), as Linux does.
#[test]
fn ts_02_rst_of_a_timestamp_connection_carries_the_option() {
    let mut sc = with_ts_recent_200();
    sc.advance(ms(7));
    sc.conn.abort();
    let rst = sc.expect_one();
    rst.assert_flags(TcpFlags::RST | TcpFlags::ACK).assert_seq_ack(D, P + 100);
    assert_eq!(rst.tcp.options.timestamps, ts(17, 200));
    assert_eq!(rst.tcp.options.sack_count, 0);
}

/// TS-02: so does the RST that answers new data for a closed (orphaned) socket.
#[test]
fn ts_02_rst_for_data_after_close_carries_the_option() {
    let mut sc = with_ts_recent_200();
    sc.conn.close();
    let fin = sc.expect_one();
    fin.assert_flags(TcpFlags::FIN | TcpFlags::ACK);
    sc.advance(ms(3));
    sc.deliver(Seg::ack(P + 100, D + 1).ts(210, 10).data(b"late"));
    let rst = sc.expect_one();
    assert!(rst.has(TcpFlags::RST), "{:?}", rst.tcp);
    assert_eq!(rst.tcp.options.timestamps, ts(13, 210));
}

/// TS-02: without negotiated timestamps a RST carries no option.
#[test]
fn ts_02_rst_without_timestamps_has_no_option() {
    let mut sc = Sc::established(Sc::plain());
    sc.conn.abort();
    let rst = sc.expect_one();
    assert!(rst.has(TcpFlags::RST));
    assert_eq!(rst.tcp.options.timestamps, None);
}
