//! Reliability: the retransmission timer (RFC 6298, RX-01), fast retransmit and NewReno
//! recovery (RFC 5681 §3.2, RFC 6582, RX-02), the congestion window (RFC 5681 §3.1, RX-03) and
//! out-of-order reassembly (RFC 9293 §3.10.7.4 seventh step, RX-09).
mod common;
use common::*;
use std::time::Duration;
use tcpcore::config::CongestionAlgorithm;
use tcpcore::wire::TcpFlags;
use tcpcore::ConnConfig;

/// A client whose handshake took `rtt` (the SYN-ACK arrives `rtt` after the SYN), so the
/// first RTT sample is exactly `rtt` (RFC 6298 §2.2).
#[track_caller]
fn client_rtt(cfg: ConnConfig, rtt: Duration) -> Sc {
    let mut sc = Sc::client(cfg);
    sc.advance(rtt);
    sc.deliver(Seg::syn_ack(PEER_ISS, D));
    sc.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(D, P);
    sc.events();
    sc
}

/// `Sc::plain()` with NewReno: the RX-02/RX-03 tests below assert its exact windows (RFC 5681,
/// RFC 6582); CUBIC, the default, has its own tests in cubic.rs.
fn newreno() -> ConnConfig {
    ConnConfig { congestion: CongestionAlgorithm::NewReno, ..Sc::plain() }
}

/// The peer acknowledges each of `segs` in turn (one ACK per segment); returns everything
/// we sent in response.
fn ack_each(sc: &mut Sc, segs: &[Out]) -> Vec<Out> {
    let mut out = Vec::new();
    for s in segs {
        sc.deliver(Seg::ack(P, s.seq() + s.len() as u32));
        out.extend(sc.output());
    }
    out
}

// ---- RX-01: RFC 6298 retransmission timer ------------------------------------------------

#[test]
fn rx_01_first_rto_is_one_second() {
    let mut sc = Sc::client(Sc::plain());
    let info = sc.conn.info();
    assert_eq!((info.srtt, info.rto), (None, secs(1)), "RFC 6298 §2.1: initial RTO 1 s");
    assert_eq!(sc.conn.poll_timeout(), Some(at(1000)));
    let out = sc.next_timer();
    assert_eq!(out.len(), 1);
    out[0].assert_flags(TcpFlags::SYN).assert_seq_ack(ISS, 0);
    assert_eq!(out[0].at, at(1000), "first retransmission exactly 1 s after the SYN");
    assert_eq!(sc.conn.info().rto, secs(2), "RFC 6298 §5.5: backed off");
}

#[test]
fn rx_01_rto_follows_srtt_and_rttvar() {
    // First sample R = 100 ms: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4*RTTVAR = 300 ms (§2.2).
    let mut sc = client_rtt(Sc::plain(), ms(100));
    let info = sc.conn.info();
    assert_eq!((info.srtt, info.rttvar, info.rto), (Some(ms(100)), ms(50), ms(300)));

    // Data at 100 ms, ACKed 100 ms later: RTTVAR = 3/4*50 + 1/4*|100-100| = 37.5 ms,
    // SRTT = 100 ms, RTO = 250 ms (§2.3).
    sc.conn.write(&bytes(0, 100)).unwrap();
    assert_data(&sc.expect_one(), D, 100);
    sc.advance(ms(100));
    sc.deliver(Seg::ack(P, D + 100));
    sc.expect_none();
    let info = sc.conn.info();
    assert_eq!(
        (info.srtt, info.rttvar, info.rto),
        (Some(ms(100)), Duration::from_micros(37_500), ms(250))
    );

    // The next segment is retransmitted exactly one RTO after it was sent.
    sc.conn.write(&bytes(100, 100)).unwrap();
    assert_data(&sc.expect_one(), D + 100, 100);
    let out = sc.advance(secs(1));
    assert_eq!(out[0].at, at(200 + 250), "retransmission at send time + 250 ms");
    assert_data(&out[0], D + 100, 100);
}

#[test]
fn rx_01_rto_clamped_to_min_200ms() {
    // A 10 ms handshake: SRTT + 4*RTTVAR = 30 ms, clamped to the 200 ms minimum.
    let mut sc = Sc::established(Sc::plain());
    assert_eq!(sc.conn.info().srtt, Some(ms(10)));
    assert_eq!(sc.conn.info().rto, ms(200));
    sc.conn.write(&bytes(0, 10)).unwrap();
    assert_data(&sc.expect_one(), D, 10);
    let out = sc.next_timer();
    assert_eq!(out.len(), 1);
    assert_data(&out[0], D, 10);
    assert_eq!(out[0].at, at(10 + 200));
}

#[test]
fn rx_01_karn_no_sample_from_a_retransmitted_segment() {
    let mut sc = client_rtt(Sc::plain(), ms(100)); // RTO 300 ms
    sc.conn.write(&bytes(0, 100)).unwrap();
    assert_data(&sc.expect_one(), D, 100);
    let out = sc.next_timer();
    assert_eq!(out[0].at, at(400));
    assert_data(&out[0], D, 100);
    assert_eq!(sc.conn.info().rto, ms(600), "backed off");

    // The ACK comes 50 ms after the retransmission (350 ms after the original): ambiguous,
    // so no sample (RFC 6298 §3), and the backed-off RTO stays until a valid sample (§5.7).
    sc.advance(ms(50));
    sc.deliver(Seg::ack(P, D + 100));
    let info = sc.conn.info();
    assert_eq!((info.srtt, info.rttvar, info.rto), (Some(ms(100)), ms(50), ms(600)));

    // A fresh segment is timed with the backed-off RTO …
    sc.conn.write(&bytes(100, 100)).unwrap();
    assert_data(&sc.expect_one(), D + 100, 100);
    assert_eq!(sc.conn.poll_timeout(), Some(at(450 + 600)));
    // … and its ACK is a valid sample that ends the backoff: RTO = 100 + 4*37.5 = 250 ms.
    sc.advance(ms(100));
    sc.deliver(Seg::ack(P, D + 200));
    let info = sc.conn.info();
    assert_eq!((info.srtt, info.rto), (Some(ms(100)), ms(250)));
}

#[test]
fn rx_01_exponential_backoff_clamped_at_120s() {
    let mut sc = Sc::established(Sc::plain()); // RTO 200 ms, data sent at 10 ms
    sc.conn.write(&bytes(0, 10)).unwrap();
    sc.expect_one();
    let mut expect = 10u64;
    for k in 0..14 {
        // The k-th timeout waits 200 ms * 2^k, never more than the 120 s maximum (§5.5).
        expect += (200u64 << k).min(120_000);
        let out = sc.next_timer();
        assert_eq!(out.len(), 1, "retransmission {k}");
        assert_data(&out[0], D, 10);
        assert_eq!(out[0].at, at(expect), "retransmission {k}");
    }
    assert_eq!(sc.conn.info().rto, secs(120));
    assert_eq!(sc.conn.info().timeouts, 14);
}

/// RFC 6298 §5.7: when the SYN timed out and no RTT sample was taken, the RTO is
/// re-initialized to 3 s once data transmission begins.
#[test]
fn rx_01_rto_reset_to_3s_after_syn_retransmission() {
    let mut sc = Sc::client(Sc::plain());
    let out = sc.next_timer(); // SYN again at 1 s
    out[0].assert_flags(TcpFlags::SYN).assert_seq_ack(ISS, 0);
    sc.advance(ms(100));
    sc.deliver(Seg::syn_ack(PEER_ISS, D));
    sc.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(D, P);
    let info = sc.conn.info();
    assert_eq!(info.srtt, None, "Karn: the SYN was retransmitted, no sample");
    assert_eq!(info.rto, secs(3));
    sc.conn.write(&bytes(0, 10)).unwrap();
    sc.expect_one();
    let out = sc.next_timer();
    assert_eq!(out[0].at, at(1100 + 3000));
}

// ---- RX-02: fast retransmit and NewReno ---------------------------------------------------

/// Established (10 ms RTT, RTO 200 ms), 20 segments queued, the first 10 (the initial window)
/// sent at 10 ms.
fn ten_in_flight() -> (Sc, Vec<Out>) {
    let mut sc = Sc::established(newreno());
    sc.conn.write(&bytes(0, 20 * MSS as usize)).unwrap();
    let segs = sc.output();
    assert_eq!(segs.len(), 10, "initial window 10 * MSS (RFC 6928)");
    for (i, s) in segs.iter().enumerate() {
        assert_data(s, D + i as u32 * MSS, MSS as usize);
    }
    (sc, segs)
}

#[test]
fn rx_02_three_dup_acks_fast_retransmit_snd_una() {
    let (mut sc, _) = ten_in_flight();
    sc.advance(ms(10));
    // Segment 1 was lost; segments 2, 3 and 4 each draw a duplicate ACK. RFC 3042 limited
    // transmit: the first two each release one new segment (11, 12).
    sc.deliver(Seg::ack(P, D));
    assert_data(&sc.expect_one(), D + 10 * MSS, MSS as usize);
    sc.deliver(Seg::ack(P, D));
    assert_data(&sc.expect_one(), D + 11 * MSS, MSS as usize);
    sc.deliver(Seg::ack(P, D));
    let rtx = sc.expect_one();
    assert_data(&rtx, D, MSS as usize);
    assert_eq!(rtx.at, at(20), "at once, long before the RTO (210 ms)");
    let info = sc.conn.info();
    assert_eq!(info.fast_retransmits, 1);
    assert_eq!(info.timeouts, 0);
    // RFC 5681 §3.2 step 2: ssthresh = FlightSize / 2 (without the limited-transmit
    // segments); cwnd = ssthresh (inflation aside).
    assert_eq!((info.ssthresh, info.cwnd), (5 * MSS, 5 * MSS));
}

/// RFC 3042 limited transmit, then reordering rather than loss: the cumulative ACK of the
/// three segments the two duplicate ACKs stood for grows cwnd by the one segment not yet
/// counted as delivered (Linux `tcp_remove_reno_sacks`: each duplicate ACK already counted a
/// delivered segment), so two segments go out, not three (packetdrill
/// `limited-transmit-no-sack.pkt`).
#[test]
fn rx_02_ack_after_limited_transmit_credits_cwnd_once_per_segment() {
    let (mut sc, _) = ten_in_flight();
    sc.advance(ms(10));
    for i in 0..2 {
        sc.deliver(Seg::ack(P, D));
        assert_data(&sc.expect_one(), D + (10 + i) * MSS, MSS as usize);
    }
    sc.advance(ms(1));
    sc.deliver(Seg::ack(P, D + 3 * MSS));
    assert_eq!(sc.conn.info().cwnd, 11 * MSS, "slow start credits one newly delivered segment");
    let out = sc.output();
    assert_eq!(out.len(), 2, "9 segments in flight, cwnd 11: {out:#?}");
    assert_data(&out[0], D + 12 * MSS, MSS as usize);
    assert_data(&out[1], D + 13 * MSS, MSS as usize);
}

#[test]
fn rx_02_newreno_partial_ack_then_full_ack() {
    let (mut sc, _) = ten_in_flight();
    sc.advance(ms(10));
    // Segments 1 and 3 lost: segments 2, 4..10 draw 8 duplicate ACKs.
    let mut sent = Vec::new();
    for _ in 0..8 {
        sc.deliver(Seg::ack(P, D));
        sent.extend(sc.output());
    }
    // Dup ACKs 1 and 2 release segments 11 and 12 (RFC 3042 limited transmit); the third
    // retransmits segment 1; dup ACK 8 inflates cwnd (7300 + 8 * MSS) past the 17520 bytes
    // in flight: segment 13 goes out (RFC 6582 §3.2 step 4).
    assert_eq!(sent.len(), 4, "{sent:#?}");
    assert_data(&sent[0], D + 10 * MSS, MSS as usize);
    assert_data(&sent[1], D + 11 * MSS, MSS as usize);
    assert_data(&sent[2], D, MSS as usize);
    assert_data(&sent[3], D + 12 * MSS, MSS as usize);
    assert_eq!(sc.conn.info().ssthresh, 5 * MSS);

    // Partial ACK (segments 1 and 2): retransmit the next hole (segment 3) at once, and one
    // new segment fits the deflated window (RFC 6582 §3.2 step 5).
    sc.advance(ms(10));
    sc.deliver(Seg::ack(P, D + 2 * MSS));
    let out = sc.output();
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_data(&out[0], D + 2 * MSS, MSS as usize);
    assert_data(&out[1], D + 13 * MSS, MSS as usize);
    assert_eq!(sc.conn.info().fast_retransmits, 1, "still the same recovery episode");

    // Full ACK of everything outstanding when recovery began (`recover` includes the
    // limited-transmit segments 11 and 12): recovery ends with
    // cwnd = min(ssthresh, FlightSize + MSS) = 2 + 1 segments (§3.2 step 3).
    sc.advance(ms(10));
    sc.deliver(Seg::ack(P, D + 12 * MSS));
    let info = sc.conn.info();
    assert_eq!((info.cwnd, info.ssthresh), (3 * MSS, 5 * MSS));
    assert_eq!((info.fast_retransmits, info.retransmits, info.timeouts), (1, 2, 0));
    // 2 segments in flight, cwnd 3: one more.
    let out = sc.output();
    assert_eq!(out.len(), 1);
    assert_data(&out[0], D + 14 * MSS, MSS as usize);
}

// ---- RX-03: slow start, congestion avoidance, RTO --------------------------------------------

#[test]
fn rx_03_slow_start_doubles_per_rtt() {
    let mut sc = Sc::established(Sc::plain());
    assert_eq!(sc.conn.info().cwnd, 10 * MSS);
    sc.conn.write(&bytes(0, 200_000)).unwrap();
    let mut round = sc.output();
    let mut sizes = vec![round.len()];
    let mut cwnds = vec![sc.conn.info().cwnd];
    for _ in 0..2 {
        sc.advance(ms(10));
        round = ack_each(&mut sc, &round);
        sizes.push(round.len());
        cwnds.push(sc.conn.info().cwnd);
    }
    assert_eq!(sizes, [10, 20, 40]);
    assert_eq!(cwnds, [10 * MSS, 20 * MSS, 40 * MSS]);
    assert!(round.iter().all(|s| s.len() == MSS as usize));
    assert_eq!(sc.conn.info().ssthresh, u32::MAX, "no loss yet");
}

#[test]
fn rx_03_rto_collapses_cwnd_then_avoidance_grows_one_mss_per_rtt() {
    let mut sc = Sc::established(newreno());
    sc.conn.write(&bytes(0, 200_000)).unwrap();
    assert_eq!(sc.output().len(), 10);
    // Every segment is lost: RTO at 210 ms. RFC 5681 §3.1: ssthresh = FlightSize / 2,
    // cwnd = loss window = 1 MSS; only the segment at SND.UNA goes out.
    let mut round = sc.next_timer();
    assert_eq!(round.len(), 1);
    assert_data(&round[0], D, MSS as usize);
    assert_eq!(round[0].at, at(210));
    let info = sc.conn.info();
    assert_eq!((info.cwnd, info.ssthresh, info.timeouts), (MSS, 5 * MSS, 1));

    let mut sizes = vec![];
    let mut cwnds = vec![];
    for _ in 0..6 {
        sc.advance(ms(10));
        round = ack_each(&mut sc, &round);
        sizes.push(round.len());
        cwnds.push(sc.conn.info().cwnd / MSS);
    }
    // Slow start 1 → 2 → 4 → 5 (ssthresh); above it, one MSS per window of ACKed data.
    assert_eq!(cwnds, [2, 4, 5, 6, 7, 8]);
    assert_eq!(sizes, [2, 4, 5, 6, 7, 8]);
    // (The log starts with our SYN, our ACK and the 10 lost segments.)
    // Go-back-N resent the lost segments in order and then continued with new data.
    let sent: Vec<u32> = sc.log.iter().skip(12).map(|o| o.seq()).collect();
    let expect: Vec<u32> = (0..sent.len() as u32).map(|i| D + i * MSS).collect();
    assert_eq!(sent, expect);
}

// ---- RX-09: out-of-order data ---------------------------------------------------------------

#[test]
fn rx_09_out_of_order_held_and_delivered_in_order() {
    let mut sc = Sc::established(Sc::plain());
    // Bytes 100..200 and 200..300 arrive before 0..100: each draws an immediate duplicate
    // ACK for RCV.NXT (RFC 5681 §4.2), nothing is readable.
    sc.deliver(Seg::ack(P + 100, D).data(&bytes(100, 100)));
    sc.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(D, P);
    sc.deliver(Seg::ack(P + 200, D).data(&bytes(200, 100)));
    sc.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(D, P);
    assert_eq!(sc.conn.readable_bytes(), 0);
    assert_eq!(sc.conn.info().ooo_ranges, 1, "adjacent ranges merge");
    // The hole fills: everything is ACKed at once and delivered in order.
    sc.deliver(Seg::ack(P, D).data(&bytes(0, 100)));
    sc.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(D, P + 300);
    assert_eq!(sc.read_all(), bytes(0, 300));
    assert_eq!(sc.conn.info().ooo_ranges, 0);
}

#[test]
fn rx_09_duplicates_and_overlaps_trimmed() {
    let mut sc = Sc::established(Sc::plain());
    sc.deliver(Seg::ack(P, D).data(&bytes(0, 300)));
    sc.expect_one().assert_seq_ack(D, P + 300);
    assert_eq!(sc.read_all(), bytes(0, 300));
    // A full duplicate: ACKed at once, nothing new to read.
    sc.deliver(Seg::ack(P, D).data(&bytes(0, 100)));
    sc.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(D, P + 300);
    assert_eq!(sc.conn.readable_bytes(), 0);
    // Overlapping old and new bytes: only 300..400 is new.
    sc.deliver(Seg::ack(P + 250, D).data(&bytes(250, 150)));
    sc.expect_one().assert_seq_ack(D, P + 400);
    assert_eq!(sc.read_all(), bytes(300, 100));
    // An out-of-order segment overlapping a held one, then the fill.
    sc.deliver(Seg::ack(P + 500, D).data(&bytes(500, 100)));
    sc.expect_one().assert_seq_ack(D, P + 400);
    sc.deliver(Seg::ack(P + 450, D).data(&bytes(450, 200)));
    sc.expect_one().assert_seq_ack(D, P + 400);
    sc.deliver(Seg::ack(P + 350, D).data(&bytes(350, 150)));
    sc.expect_one().assert_seq_ack(D, P + 650);
    assert_eq!(sc.read_all(), bytes(400, 250), "each byte exactly once");
    assert_eq!(sc.conn.info().bytes_received, 650);
}

#[test]
fn rx_09_hole_limit_drops_new_holes_but_accepts_in_order() {
    let cfg = ConnConfig { max_ooo_ranges: 2, ..Sc::plain() };
    let mut sc = Sc::established(cfg);
    for off in [100, 200, 300] {
        sc.deliver(Seg::ack(P + off, D).data(&bytes(off as usize, 50)));
        sc.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(D, P);
    }
    let info = sc.conn.info();
    assert_eq!((info.ooo_ranges, info.ooo_dropped), (2, 1), "the third hole is dropped");
    // The next in-order segment is accepted although the range table is full.
    sc.deliver(Seg::ack(P, D).data(&bytes(0, 50)));
    sc.expect_one().assert_seq_ack(D, P + 50);
    sc.deliver(Seg::ack(P + 50, D).data(&bytes(50, 50)));
    sc.expect_one().assert_seq_ack(D, P + 150);
    sc.deliver(Seg::ack(P + 150, D).data(&bytes(150, 50)));
    sc.expect_one().assert_seq_ack(D, P + 250);
    // 300..350 was dropped: RCV.NXT stops at 300 until it is sent again.
    sc.deliver(Seg::ack(P + 250, D).data(&bytes(250, 50)));
    sc.expect_one().assert_seq_ack(D, P + 300);
    sc.deliver(Seg::ack(P + 300, D).data(&bytes(300, 50)));
    sc.expect_one().assert_seq_ack(D, P + 350);
    assert_eq!(sc.read_all(), bytes(0, 350));
    assert_eq!(sc.conn.info().ooo_ranges, 0);
}
