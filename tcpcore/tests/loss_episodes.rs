//! RX-03/RX-04: where SACK loss-recovery episodes begin and end, and how much each one
//! reduces the window (RFC 6675 §5, RFC 8985, RFC 5681 §4.3, RFC 9438 §4.6). Each test plays
//! the peer by hand against a SACK client (no timestamps, MSS 1460, CUBIC) whose SRTT is
//! 10 ms.

mod common;

use common::*;
use tcpcore::wire::{SackBlock, SeqNum, TcpOptions};
use tcpcore::{ConnConfig, TcpInfo};

const D: u32 = PEER_ISS + 1;
const S: u32 = ISS + 1;
const MSS: u32 = 1460;

fn established() -> Sc {
    let mut sc = Sc::client(ConnConfig { sack: true, ..Sc::plain() });
    sc.advance(ms(10));
    let o = TcpOptions { mss: Some(MSS as u16), sack_permitted: true, ..TcpOptions::default() };
    sc.deliver(Seg::syn_ack(PEER_ISS, ISS + 1).opts(o));
    sc.expect_one();
    sc.events();
    sc
}

/// An ACK of `ack` carrying one SACK block `[l, r)`.
fn sack_ack(ack: u32, l: u32, r: u32) -> Seg {
    let mut o = TcpOptions::default();
    o.sack_blocks[0] = SackBlock { left: SeqNum(l), right: SeqNum(r) };
    o.sack_count = 1;
    Seg::ack(D, ack).opts(o)
}

/// Segment `i` of the transfer starts here.
fn seg(i: u32) -> u32 {
    S + i * MSS
}

/// Initial window out at 10 ms; at 25 ms segment 0 is missing and segments 1, 2, 3 are
/// SACKed, one ACK each, the sender polled after each. The first two SACKs let one new
/// segment out each (pipe falls below cwnd, RFC 6675 §5 step 2); the third makes three
/// SACKed segments, so RACK's reordering window drops to zero and segment 0 is lost
/// (RFC 8985 §6.2): recovery starts with 12 segments outstanding and a cwnd of 10.
fn first_loss(sc: &mut Sc) -> (TcpInfo, Vec<Out>) {
    sc.conn.write(&[9u8; 60 * MSS as usize]).unwrap();
    assert_eq!(sc.output().len(), 10, "initial window (RFC 6928)");
    sc.advance(ms(15));
    let before = sc.conn.info();
    let mut sent = Vec::new();
    for k in 2..=4 {
        sc.deliver(sack_ack(S, seg(1), seg(k)));
        sent.extend(sc.output());
    }
    (before, sent)
}

#[test]
fn rx_03_sack_recovery_reduces_from_cwnd_not_from_segments_sent_on_sacks() {
    let mut sc = established();
    let (before, sent) = first_loss(&mut sc);
    assert_eq!(before.cwnd, 10 * MSS);
    let i = sc.conn.info();
    assert_eq!((i.fast_retransmits, i.rack_marked_lost), (1, 1));
    assert!(sent.iter().any(|o| o.seq() == S), "segment 0 resent: {sent:#?}");
    assert!(sent.iter().any(|o| o.seq() == seg(11)), "two new segments on SACKs: {sent:#?}");
    // RFC 9438 §4.6 with RFC 3042 §2: ssthresh = β × 10 segments, not β × the 12 segments
    // SND.MAX - SND.UNA had reached by the time RACK marked the loss.
    let expected = (f64::from(10 * MSS) * 0.7) as u32;
    assert_eq!((i.ssthresh, i.cwnd), (expected, expected));
}

#[test]
fn rx_04_a_loss_found_during_recovery_beyond_recovery_point_starts_a_new_episode() {
    let mut sc = established();
    let (_, sent) = first_loss(&mut sc);
    let recovery_point = seg(12);
    assert_eq!(sc.conn.info().unacked, 12 * MSS, "RecoveryPoint = SND.MAX = segment 12");
    // PRR lets out more as segments 4..=11 are SACKed: new data beyond RecoveryPoint.
    let mut sent_in_recovery = sent;
    for k in 5..=12 {
        sc.deliver(sack_ack(S, seg(1), seg(k)));
        sent_in_recovery.extend(sc.output());
    }
    let new: Vec<u32> =
        sent_in_recovery.iter().map(|o| o.seq()).filter(|&q| q >= recovery_point).collect();
    assert!(new.len() >= 2, "new data sent during recovery: {new:?}");
    let (x, y, end) = (new[0], new[1], new[new.len() - 1] + MSS);
    let ssthresh = sc.conn.info().ssthresh;
    // 15 ms later: segment 0's retransmission has not arrived yet, but everything sent
    // after x is SACKed: RACK marks x lost while still in recovery and x is resent in it.
    sc.advance(ms(15));
    sc.deliver(sack_ack(S, y, end));
    let resent = sc.output();
    assert!(resent.iter().any(|o| o.seq() == x), "x resent in recovery: {resent:#?}");
    assert_eq!(sc.conn.info().fast_retransmits, 1, "x is found lost within the episode");
    // Segment 0's retransmission arrives: the cumulative ACK passes RecoveryPoint and the
    // episode ends, with x (beyond RecoveryPoint, a loss in the next window of data) still
    // unrepaired and nothing else missing. RFC 5681 §4.3: a second reduction, in a new episode (as Linux does).
    sc.deliver(sack_ack(recovery_point, y, end));
    sc.output();
    let i = sc.conn.info();
    assert_eq!(i.fast_retransmits, 2, "a new recovery episode for x");
    assert!(i.ssthresh < ssthresh, "ssthresh {} not below {ssthresh}", i.ssthresh);
    assert_eq!(i.timeouts, 0);
}
