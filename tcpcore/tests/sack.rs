//! RX-04: SACK (RFC 2018) sent and used, D-SACK (RFC 2883), and a scoreboard that bogus,
//! reneged or hostile blocks cannot corrupt or blow up (CVE-2019-11477/8 class).

mod common;

use common::*;
use tcpcore::wire::{SackBlock, SeqNum, TcpFlags, TcpOptions};
use tcpcore::{ConnConfig, SCOREBOARD_CAPACITY};

/// SACK on; no timestamps or window scaling, so sizes are easy to predict (MSS 1460).
fn cfg() -> ConnConfig {
    ConnConfig { sack: true, ..Sc::plain() }
}

/// An established client whose peer permitted SACK with MSS `mss`.
fn established(mss: u16) -> Sc {
    established_scaled(mss, None)
}

/// Likewise, with window scaling both ways when `wscale` is set (the peer's shift).
fn established_scaled(mss: u16, wscale: Option<u8>) -> Sc {
    let cfg = ConnConfig { window_scaling: wscale.is_some(), ..cfg() };
    let mut sc = Sc::client(cfg);
    sc.advance(ms(10));
    let mut o = TcpOptions { mss: Some(mss), sack_permitted: true, ..TcpOptions::default() };
    o.window_scale = wscale;
    sc.deliver(Seg::syn_ack(PEER_ISS, ISS + 1).opts(o));
    sc.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 1, PEER_ISS + 1);
    assert!(sc.conn.info().sack);
    sc.events();
    sc
}

fn sack(blocks: &[(u32, u32)]) -> TcpOptions {
    let mut o = TcpOptions::default();
    for (i, &(l, r)) in blocks.iter().enumerate() {
        o.sack_blocks[i] = SackBlock { left: SeqNum(l), right: SeqNum(r) };
    }
    o.sack_count = blocks.len() as u8;
    o
}

fn blocks(o: &Out) -> Vec<(u32, u32)> {
    o.tcp.options.sacks().iter().map(|b| (b.left.0, b.right.0)).collect()
}

const D: u32 = PEER_ISS + 1; // the peer's first data byte
const S: u32 = ISS + 1; // our first data byte

/// Write `n` full segments and take them from the output.
#[track_caller]
fn send_segments(sc: &mut Sc, n: usize) -> Vec<Out> {
    sc.conn.write(&vec![7u8; 1460 * n]).unwrap();
    let out = sc.output();
    assert_eq!(out.len(), n);
    out
}

#[test]
fn rx_04_receiver_reports_blocks_most_recent_first() {
    let mut sc = established(1460);
    sc.deliver(Seg::ack(D + 100, S).data(&[1; 100]));
    assert_eq!(blocks(&sc.expect_one()), [(D + 100, D + 200)]);
    sc.deliver(Seg::ack(D + 300, S).data(&[1; 100]));
    assert_eq!(blocks(&sc.expect_one()), [(D + 300, D + 400), (D + 100, D + 200)]);
    sc.deliver(Seg::ack(D + 500, S).data(&[1; 100]));
    sc.expect_one();
    sc.deliver(Seg::ack(D + 700, S).data(&[1; 100]));
    sc.expect_one();
    // A segment extending the oldest block makes that block first again (RFC 2018 §4).
    sc.deliver(Seg::ack(D + 200, S).data(&[1; 50]));
    let a = sc.expect_one();
    a.assert_seq_ack(S, D);
    assert_eq!(
        blocks(&a),
        [(D + 100, D + 250), (D + 700, D + 800), (D + 500, D + 600), (D + 300, D + 400)],
        "four blocks without timestamps, the most recent first"
    );
    // Filling the first hole: no more than the blocks still beyond RCV.NXT.
    sc.deliver(Seg::ack(D, S).data(&[1; 100]));
    let a = sc.expect_one();
    a.assert_seq_ack(S, D + 250);
    assert_eq!(blocks(&a), [(D + 700, D + 800), (D + 500, D + 600), (D + 300, D + 400)]);
}

#[test]
fn rx_04_at_most_three_blocks_beside_timestamps() {
    let mut sc = Sc::client(ConnConfig { sack: true, timestamps: true, ..Sc::plain() });
    sc.advance(ms(10));
    let o = TcpOptions { mss: Some(1460), sack_permitted: true, ..TcpOptions::default() };
    sc.deliver(Seg::syn_ack(PEER_ISS, ISS + 1).opts(o).ts(100, 10));
    sc.expect_one();
    for i in 0..4 {
        sc.deliver(Seg::ack(D + 100 + 200 * i, S).data(&[1; 100]).ts(101 + i, 10));
        sc.output();
    }
    sc.deliver(Seg::ack(D + 900, S).data(&[1; 100]).ts(200, 10));
    let a = sc.expect_one();
    assert!(a.tcp.options.timestamps.is_some());
    assert_eq!(blocks(&a), [(D + 900, D + 1000), (D + 700, D + 800), (D + 500, D + 600)]);
}

#[test]
fn rx_04_dsack_reports_a_duplicate_once() {
    let mut sc = established(1460);
    sc.deliver(Seg::ack(D, S).data(&[1; 100]));
    sc.output();
    // An old duplicate below RCV.NXT (RFC 2883 §4.1.1): the D-SACK block alone.
    sc.deliver(Seg::ack(D, S).data(&[1; 100]));
    let a = sc.expect_one();
    a.assert_seq_ack(S, D + 100);
    assert_eq!(blocks(&a), [(D, D + 100)]);
    // A duplicate of out-of-order data (§4.1.3): D-SACK first, then the block holding it.
    sc.deliver(Seg::ack(D + 200, S).data(&[1; 100]));
    sc.output();
    sc.deliver(Seg::ack(D + 200, S).data(&[1; 100]));
    assert_eq!(blocks(&sc.expect_one()), [(D + 200, D + 300), (D + 200, D + 300)]);
    // Reported once: the next ACK has the SACK block only.
    sc.deliver(Seg::ack(D + 400, S).data(&[1; 100]));
    assert_eq!(blocks(&sc.expect_one()), [(D + 400, D + 500), (D + 200, D + 300)]);
}

#[test]
fn rx_04_sender_retransmits_only_the_hole() {
    let mut sc = established(1460);
    let out = send_segments(&mut sc, 6);
    assert_eq!(out[5].seq(), S + 5 * 1460);
    // Segment 1 is lost; 2-4 arrive: three SACKed segments and no reordering seen, so
    // RACK's reordering window is zero (RFC 8985 §6.2 step 4): 1 is lost at once. (The
    // ACK comes before the loss probe, due 2 SRTT = 20 ms after the send.)
    sc.advance(ms(15));
    sc.deliver(Seg::ack(D, S + 1460).opts(sack(&[(S + 2920, S + 7300)])));
    let r = sc.expect_one();
    r.assert_seq_ack(S + 1460, D);
    assert_eq!(r.len(), 1460);
    assert_eq!(r.at, sc.now);
    let i = sc.conn.info();
    assert_eq!((i.fast_retransmits, i.fast_retransmits_segs, i.rto_retransmits), (1, 1, 0));
    // The SACKed data is never resent; the repair completes recovery.
    sc.advance(ms(30));
    sc.deliver(Seg::ack(D, S + 6 * 1460));
    sc.expect_none();
    assert_eq!(sc.conn.info().retransmits, 1);
    assert_eq!(sc.conn.send_queued(), 0);
}

#[test]
fn rx_04_bogus_blocks_are_ignored() {
    let mut sc = established(1460);
    send_segments(&mut sc, 3);
    sc.advance(ms(5));
    let bad = [
        (S + 5000, S + 6000),       // beyond SND.MAX
        (S + 2920, S + 1460),       // reversed
        (S - 900, S - 500),         // below SND.UNA (not first: no D-SACK)
        (S + 1460, S + 1460 + 100), // covers no whole segment: harmless
    ];
    sc.deliver(Seg::ack(D, S).opts(sack(&bad)));
    sc.expect_none();
    let i = sc.conn.info();
    assert_eq!(i.sack_blocks_ignored, 3);
    assert_eq!((i.retransmits, i.rack_marked_lost), (0, 0));
    // Overlapping, repeated blocks count each segment once.
    let o = sack(&[(S + 1460, S + 4380), (S + 1460, S + 2920), (S + 1000, S + 4380)]);
    sc.deliver(Seg::ack(D, S).opts(o));
    assert_eq!(sc.conn.info().scoreboard_entries, 3);
    assert_eq!(sc.conn.send_queued(), 3 * 1460, "SACKed data is not freed");
}

#[test]
fn rx_04_reneged_data_is_resent_after_rto() {
    let mut sc = established(1460);
    send_segments(&mut sc, 3);
    sc.advance(ms(5));
    // Segments 1 and 2 SACKed; segment 0 is lost after the reordering window.
    sc.deliver(Seg::ack(D, S).opts(sack(&[(S + 1460, S + 4380)])));
    let r = sc.advance(ms(20));
    assert_eq!(r.len(), 1);
    r[0].assert_seq_ack(S, D);
    assert_eq!(sc.conn.send_queued(), 3 * 1460, "nothing freed before the cumulative ACK");
    // The peer reneges: never acknowledges anything. The RTO resends segment 0 and, as
    // the window opens, the SACKed segments too (RFC 2018 §8).
    let rto = sc.next_timer();
    assert_eq!(rto.len(), 1);
    rto[0].assert_seq_ack(S, D);
    assert_eq!(sc.conn.info().timeouts, 1);
    sc.advance(ms(5));
    sc.deliver(Seg::ack(D, S + 1460));
    let again: Vec<u32> = sc.output().iter().map(Out::seq).collect();
    assert_eq!(again, [S + 1460, S + 2920], "reneged segments sent again");
    sc.deliver(Seg::ack(D, S + 4380));
    assert_eq!(sc.conn.send_queued(), 0);
}

#[test]
fn rx_04_hostile_sack_pattern_keeps_scoreboard_bounded() {
    // Tiny MSS (64, the engine's floor) and every other segment SACKed, the pattern that
    // fragments a naive scoreboard into one range per segment. The peer's window (shift 3:
    // 512 KiB) lets the flight exceed the scoreboard's capacity.
    let mut sc = established_scaled(64, Some(3));
    let data = vec![1u8; 1 << 20];
    let mut written = 0;
    // Grow the window in slow start: every segment acknowledged on its own, the send buffer
    // kept full (it grows with the window).
    let mut una = S;
    for _ in 0..9 {
        written += sc.conn.write(&data).unwrap_or(0);
        let out = sc.output();
        sc.advance(ms(1));
        for o in out {
            una = o.seq() + o.len() as u32;
            sc.deliver(Seg::ack(D, una));
        }
    }
    written += sc.conn.write(&data).unwrap_or(0);
    sc.output();
    let flight = sc.conn.info().unacked / 64;
    assert!(flight > SCOREBOARD_CAPACITY as u32, "flight of {flight} segments");
    // Thousands of ACKs, four alternating one-segment blocks each, sweeping the flight.
    for round in 0..3000u32 {
        let b: Vec<(u32, u32)> = (0..4)
            .map(|k| {
                let seg = 1 + 2 * ((round * 4 + k) % (flight / 2));
                (una + 64 * seg, una + 64 * seg + 64)
            })
            .collect();
        sc.deliver(Seg::ack(D, una).opts(sack(&b)));
        sc.output();
        assert!(sc.conn.info().scoreboard_entries <= SCOREBOARD_CAPACITY);
    }
    let i = sc.conn.info();
    eprintln!(
        "flight {flight} segments, {} scoreboard entries, most work per ACK {}",
        i.scoreboard_entries, i.sack_max_work_per_ack
    );
    // The ring filled and was coarsened (a pass frees about half of it).
    assert!(i.scoreboard_entries > SCOREBOARD_CAPACITY / 2, "{}", i.scoreboard_entries);
    assert!((flight as usize) > i.scoreboard_entries, "entries cover several segments");
    // Binary search plus the entries one block spans, four blocks.
    assert!(i.sack_max_work_per_ack <= 4 * (SCOREBOARD_CAPACITY as u32 + 9));
    assert_eq!(sc.conn.send_queued(), written - (una - S) as usize, "nothing freed early");
}

/// RFC 3042 limited transmit with SACK, then reordering rather than loss: the cumulative ACK
/// covering two segments SACKed earlier grows cwnd by the one segment newly delivered, as
/// Linux counts each segment delivered once (`tcp_sacktag_write_queue` at the SACK, only the
/// rest at the cumulative ACK), so two segments go out, not three (packetdrill
/// `limited-transmit-sack.pkt`).
#[test]
fn rx_04_ack_of_sacked_segments_credits_cwnd_once_per_segment() {
    let mut sc = established(1460);
    sc.conn.write(&vec![7u8; 1460 * 20]).unwrap();
    assert_eq!(sc.output().len(), 10, "initial window");
    sc.advance(ms(10));
    for i in 0..2u32 {
        sc.deliver(Seg::ack(D, S).opts(sack(&[(S + 1460, S + 1460 * (2 + i))])));
        let o = sc.expect_one();
        assert_eq!((o.seq(), o.len()), (S + 1460 * (10 + i), 1460), "limited transmit");
    }
    sc.advance(ms(1));
    sc.deliver(Seg::ack(D, S + 3 * 1460));
    assert_eq!(sc.conn.info().cwnd, 11 * 1460, "slow start credits one newly delivered segment");
    let out = sc.output();
    assert_eq!(out.len(), 2, "9 segments in flight, cwnd 11: {out:#?}");
    assert_eq!(out[0].seq(), S + 12 * 1460);
}

/// RX-01: without timestamps, every ACK of never-retransmitted data gives an RTT sample
/// from the send times the scoreboard keeps (RFC 6298 §3 allows more than one per round
/// trip; as Linux `tcp_clean_rtx_queue`), not only the one timed segment per round trip.
#[test]
fn rx_01_per_ack_rtt_samples_without_timestamps() {
    // RX-01
    let mut sc = established(1460); // SRTT 10 ms from the handshake
    assert_eq!(sc.conn.info().srtt, Some(ms(10)));
    let segs = send_segments(&mut sc, 4);
    sc.advance(ms(12)); // within the tail loss probe's timeout (2 SRTT)
    let mut last = sc.conn.info().srtt.unwrap();
    for (i, s) in segs.iter().enumerate() {
        sc.deliver(Seg::ack(D, s.seq() + s.len() as u32));
        sc.output();
        let srtt = sc.conn.info().srtt.unwrap();
        assert!(srtt > last, "ACK {i}: a sample of 12-15 ms moves SRTT up ({last:?} -> {srtt:?})");
        last = srtt;
        sc.advance(ms(1));
    }
}

/// RX-01: Karn's rule (RFC 6298 §3) with per-ACK samples: an ACK that covers retransmitted
/// data (here a tail loss probe) gives no sample, not even from the never-retransmitted
/// segment it also covers (as Linux).
#[test]
fn rx_01_no_per_ack_sample_from_retransmitted_data() {
    // RX-01
    let mut sc = established(1460); // SRTT 10 ms, RTO 200 ms
    let segs = send_segments(&mut sc, 2);
    let out = sc.next_timer();
    assert_eq!(out[0].seq(), segs[1].seq(), "the tail loss probe resends the last segment");
    let info = sc.conn.info();
    sc.advance(ms(5));
    sc.deliver(Seg::ack(D, segs[1].seq() + 1460));
    let after = sc.conn.info();
    assert_eq!((after.srtt, after.rttvar, after.rto), (info.srtt, info.rttvar, info.rto));
}
