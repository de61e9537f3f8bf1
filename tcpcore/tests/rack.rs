//! RX-04: RACK-TLP loss detection (RFC 8985) with SACK: the reordering window and timer,
//! and the tail loss probe at 2 SRTT (plus Linux's 2 ms slack).

mod common;

use common::*;
use tcpcore::wire::{SackBlock, SeqNum, TcpFlags, TcpOptions};
use tcpcore::{ConnConfig, Instant, Offload};

const D: u32 = PEER_ISS + 1;
const S: u32 = ISS + 1;

/// An established SACK client (no timestamps, MSS 1460) whose SRTT is 10 ms (the SYN).
fn established() -> Sc {
    established_with(Offload::default())
}

/// Likewise, with the given offloads.
fn established_with(offload: Offload) -> Sc {
    let mut sc = Sc::client(ConnConfig { sack: true, offload, ..Sc::plain() });
    sc.advance(ms(10));
    let o = TcpOptions { mss: Some(1460), sack_permitted: true, ..TcpOptions::default() };
    sc.deliver(Seg::syn_ack(PEER_ISS, ISS + 1).opts(o));
    sc.expect_one().assert_flags(TcpFlags::ACK);
    assert_eq!(sc.conn.info().srtt, Some(ms(10)));
    sc.events();
    sc
}

fn sack(l: u32, r: u32) -> TcpOptions {
    let mut o = TcpOptions::default();
    o.sack_blocks[0] = SackBlock { left: SeqNum(l), right: SeqNum(r) };
    o.sack_count = 1;
    o
}

#[test]
fn rx_04_tlp_probes_the_tail_two_srtt_and_2_ms_after_the_last_send() {
    let mut sc = established();
    sc.conn.write(&[5u8; 3 * 1460]).unwrap();
    let out = sc.output();
    assert_eq!(out.len(), 3);
    assert_eq!(out[2].at, Instant::from_millis(10));
    // The tail is lost: no ACK. PTO = 2 SRTT = 20 ms (RFC 8985 §7.2) plus 2 ms of timer
    // slack (Linux `tcp_schedule_loss_probe`), well before the RTO (200 ms): the last
    // segment is sent again at exactly 32 ms.
    let probe = sc.advance(ms(100));
    assert_eq!(probe.len(), 1, "{probe:#?}");
    assert_eq!(probe[0].at, Instant::from_millis(32));
    probe[0].assert_seq_ack(S + 2920, D);
    assert_eq!(probe[0].len(), 1460);
    let i = sc.conn.info();
    assert_eq!((i.tlp_probes, i.timeouts), (1, 0));
    // One probe per tail: the RTO (re-armed by the probe, RFC 8985 §7.3) comes next.
    assert_eq!(sc.conn.poll_timeout(), Some(Instant::from_millis(232)));
}

/// RFC 8985 §7.2: the probe timer starts when new data is sent, also when the whole flight
/// leaves as one GSO super-segment, and restarts on an ACK that cumulatively acknowledges
/// new data, not on an ACK whose SACK block delivers nothing (here the last byte of the
/// tail, part of a segment): the probe leaves 2 SRTT + 2 ms after the last send (packetdrill
/// `fr-4pkt-fack-last-byte.pkt`).
#[test]
fn rx_04_tlp_timer_keeps_running_through_an_ack_that_delivers_nothing() {
    for gso_max_size in [0, 65_535] {
        let mut sc = established_with(Offload { gso_max_size, ..Offload::default() });
        sc.conn.write(&[5u8; 3 * 1460]).unwrap();
        assert_eq!(sc.output().len(), if gso_max_size > 0 { 1 } else { 3 });
        sc.advance(ms(15));
        sc.deliver(Seg::ack(D, S).opts(sack(S + 3 * 1460 - 1, S + 3 * 1460)));
        sc.expect_none();
        let probe = sc.advance(ms(100));
        assert_eq!(probe.len(), 1, "GSO {gso_max_size}: {probe:#?}");
        assert_eq!(probe[0].at, Instant::from_millis(32), "GSO {gso_max_size}");
        probe[0].assert_seq_ack(S + 2920, D);
    }
}

#[test]
fn rx_04_tlp_with_one_segment_in_flight_waits_for_a_delayed_ack() {
    let mut sc = established();
    sc.conn.write(&[5u8; 100]).unwrap();
    sc.expect_one();
    // RFC 8985 §7.2: one segment in flight adds WCDelAckT (200 ms), capped by the RTO:
    // 2 SRTT + 200 ms = 220 ms after the send is past the RTO at 210 ms.
    assert_eq!(sc.conn.poll_timeout(), Some(Instant::from_millis(210)));
}

/// RFC 8985 §7.2 caps the probe timeout at the RTO; as in Linux (one timer for both), the
/// probe then fires in the RTO's place and the RTO restarts from it without backing off
/// (packetdrill `user_timeout.pkt`: FIN probed at +300 ms, RTO +300 ms, then +600 ms).
#[test]
fn rx_04_probe_due_with_the_rto_fires_in_its_place_like_linux() {
    let mut sc = established();
    sc.conn.write(&[5u8; 100]).unwrap();
    sc.expect_one();
    let probe = sc.advance(ms(200));
    assert_eq!(probe.len(), 1, "{probe:#?}");
    assert_eq!(probe[0].at, Instant::from_millis(210));
    probe[0].assert_seq_ack(S, D);
    let i = sc.conn.info();
    assert_eq!((i.tlp_probes, i.timeouts), (1, 0), "a probe, not a timeout");
    assert_eq!(sc.conn.poll_timeout(), Some(Instant::from_millis(410)), "RTO from the probe");
    let rto = sc.advance(ms(200));
    assert_eq!(rto.len(), 1, "{rto:#?}");
    assert_eq!(sc.conn.info().timeouts, 1);
    assert_eq!(sc.conn.poll_timeout(), Some(Instant::from_millis(810)), "then backoff");
}

#[test]
fn rx_04_rack_marks_lost_after_the_reordering_window() {
    let mut sc = established();
    sc.conn.write(&[5u8; 3 * 1460]).unwrap();
    assert_eq!(sc.output().len(), 3);
    // At 25 ms segment 1 is SACKed, segment 0 (sent at the same time, lower end) is not:
    // RACK.rtt = 15 ms, min_rtt 15 ms, reo_wnd = min_rtt / 4 = 3.75 ms (one SACKed segment
    // is fewer than DupThresh, RFC 8985 §6.2 step 4). Segment 0 is lost at
    // 10 + 15 + 3.75 = 28.75 ms, when the reordering timer fires (§6.3).
    sc.advance(ms(15));
    sc.deliver(Seg::ack(D, S).opts(sack(S + 1460, S + 2920)));
    sc.expect_none();
    assert_eq!(sc.conn.poll_timeout(), Some(Instant::from_micros(28_750)));
    let r = sc.advance(ms(10));
    assert_eq!(r.len(), 1, "{r:#?}");
    assert_eq!(r[0].at, Instant::from_micros(28_750));
    r[0].assert_seq_ack(S, D);
    let i = sc.conn.info();
    assert_eq!((i.rack_marked_lost, i.fast_retransmits, i.timeouts), (1, 1, 0));
}

#[test]
fn rx_04_reordering_within_the_window_is_not_loss() {
    let mut sc = established();
    sc.conn.write(&[5u8; 3 * 1460]).unwrap();
    assert_eq!(sc.output().len(), 3);
    sc.advance(ms(15));
    sc.deliver(Seg::ack(D, S).opts(sack(S + 1460, S + 2920)));
    // Segment 0 arrives late but within reo_wnd: nothing is retransmitted.
    sc.advance(ms(2));
    sc.deliver(Seg::ack(D, S + 2920));
    assert!(sc.advance(ms(5)).is_empty());
    assert_eq!(sc.conn.info().retransmits, 0);
}

#[test]
fn rx_04_fin_after_a_full_cwnd_leaves_at_once_and_tlp_probes_it_alone_like_linux() {
    // shutdown/shutdown-rdwr-write-queue-close.pkt: the initial window is all in flight when
    // the application shuts down. Linux's `tcp_cwnd_test` does not hold a bare FIN for cwnd,
    // so it leaves at once; its tail loss probe is the FIN's own segment, not data.
    let mut sc = established();
    sc.conn.write(&[5u8; 10 * 1460]).unwrap();
    assert_eq!(sc.output().len(), 10, "the initial window");
    sc.advance(ms(5));
    sc.conn.shutdown_write();
    let fin = sc.expect_one();
    fin.assert_flags(TcpFlags::FIN | TcpFlags::ACK).assert_seq_ack(S + 14_600, D);
    assert_eq!(fin.len(), 0);
    let probe = sc.advance(ms(30));
    assert_eq!(probe.len(), 1, "{probe:#?}");
    assert_eq!(probe[0].at, Instant::from_millis(37), "2 SRTT + 2 ms after the FIN");
    probe[0].assert_flags(TcpFlags::FIN | TcpFlags::ACK).assert_seq_ack(S + 14_600, D);
    assert_eq!(probe[0].len(), 0);
}

#[test]
fn info_ca_state_follows_disorder_recovery_and_loss_like_linux() {
    use tcpcore::CaState;
    let mut sc = established();
    sc.conn.write(&[5u8; 10 * 1460]).unwrap();
    assert_eq!(sc.output().len(), 10);
    assert_eq!(sc.conn.info().ca_state, CaState::Open);
    // One SACK: Disorder (Linux `tcp_try_to_open`), nothing retransmitted yet.
    sc.advance(ms(10));
    sc.deliver(Seg::ack(D, S).opts(sack(S + 1460, S + 2920)));
    let i = sc.conn.info();
    assert_eq!((i.ca_state, i.sacked), (CaState::Disorder, 1460));
    // Three segments SACKed past the first: it is lost, fast recovery.
    sc.deliver(Seg::ack(D, S).opts(sack(S + 1460, S + 4 * 1460)));
    assert_eq!(sc.conn.info().ca_state, CaState::Recovery);
    // Everything acknowledged: Open again.
    sc.output();
    sc.advance(ms(10));
    sc.deliver(Seg::ack(D, S + 10 * 1460));
    assert_eq!(sc.conn.info().ca_state, CaState::Open);
    // A retransmission timeout: Loss.
    sc.conn.write(&[6u8; 1460]).unwrap();
    sc.output();
    sc.advance(secs(2));
    assert_eq!(sc.conn.info().ca_state, CaState::Loss);
}

#[test]
fn rx_04_tlp_sends_new_data_though_cwnd_is_full_like_linux() {
    // RFC 8985 §7.3: the probe is a new segment when the receive window allows one; cwnd
    // does not hold it (Linux tcp_send_loss_probe; shutdown-rdwr-send-queue-ack-close.pkt).
    let mut sc = established();
    sc.conn.write(&[5u8; 15 * 1460]).unwrap();
    assert_eq!(sc.output().len(), 10, "the initial window; 5 segments wait for cwnd");
    let probe = sc.advance(ms(30));
    assert_eq!(probe.len(), 1, "{probe:#?}");
    assert_eq!(probe[0].at, Instant::from_millis(32));
    probe[0].assert_seq_ack(S + 10 * 1460, D);
    assert_eq!(probe[0].len(), 1460);
}
