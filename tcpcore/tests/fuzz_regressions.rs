//! Regression tests for what the fuzz targets (`fuzz/`, see its README) found, each reduced
//! from the fuzzer's input to the exchange that shows the behaviour.

mod common;

use common::*;
use tcpcore::wire::TcpFlags;
use tcpcore::State;

/// An established client (plain config) whose peer offered 1460 bytes, with one full
/// segment `[D, D + 1460)` in flight and more data queued, that is then lost; a stale copy of
/// an earlier ACK (same SEQ and ACK, window 0: reordered behind the update that followed it)
/// arrives and closes the window, as the `sim` target found with 4 % reordering.
fn zero_window_over_lost_flight() -> Sc {
    let mut sc = Sc::established(Sc::plain());
    sc.deliver(Seg::ack(P, D).window(1460));
    sc.conn.write(&bytes(0, 4000)).unwrap();
    let out = sc.expect_one();
    assert_data(&out, D, 1460);
    // The segment is lost; the stale zero window arrives.
    sc.advance(ms(5));
    sc.deliver(Seg::ack(P, D).window(0));
    sc.expect_none();
    assert_eq!(sc.conn.seq_vars().snd_wnd, 0);
    sc
}

/// RX-06: a retransmission timeout with data in flight and a zero window resends the segment
/// at SND.UNA anyway, as a zero-window probe (Linux `tcp_retransmit_timer` retransmits the
/// head even beyond the window). Before the fix nothing was sent: the zero window blocked the
/// go-back-N resend, the persist timer does not run while data is in flight, and the
/// connection timed out after `data_retries` silent backoffs although the peer was alive.
#[test]
fn rx_06_rto_through_a_zero_window_resends_the_head_as_a_probe() {
    let mut sc = zero_window_over_lost_flight();
    let out = sc.next_timer();
    assert_eq!(out.len(), 1, "one retransmission at the RTO: {out:#?}");
    assert_data(&out[0], D, 1460);
    assert!(out[0].has(TcpFlags::ACK));
    assert_eq!(sc.conn.info().timeouts, 1);
}

/// RX-06: the peer answers the probe with its open window and the transfer resumes; the
/// connection does not time out.
#[test]
fn rx_06_zero_window_over_lost_data_recovers_when_the_peer_answers() {
    let mut sc = zero_window_over_lost_flight();
    // Each RTO resends the head; the peer's receiver has room again only after a while, and
    // answers every probe with its current window.
    for _ in 0..3 {
        let out = sc.next_timer();
        assert_eq!(out.len(), 1, "a probe per RTO: {out:#?}");
        sc.advance(ms(5));
        sc.deliver(Seg::ack(P, D).window(0));
    }
    let out = sc.next_timer();
    assert_data(&out[0], D, 1460);
    sc.advance(ms(5));
    // This time the segment arrives and the window is open: the rest follows.
    sc.deliver(Seg::ack(P, D + 1460).window(8192));
    let out = sc.output();
    let sent: usize = out.iter().map(|o| o.len()).sum();
    assert_eq!(sent, 4000 - 1460, "the rest of the data goes at once: {out:#?}");
    assert_eq!(sc.conn.state(), State::Established);
    assert_eq!(sc.conn.error(), None);
}

/// RX-07 / RX-06: sender SWS avoidance never holds back a retransmission. The peer offers
/// 1000 bytes, less than half its largest window (65,535), so the persist timer sends them
/// (RFC 9293 §3.8.6.2.1); they are lost. The RTO must resend them: before the fix, go-back-N
/// met the same small window, SWS avoidance held the segment for a persist timer that does
/// not run while data is in flight, and the connection timed out silently (the `sim` target
/// found it with a 440-byte window and a 536-byte MSS).
#[test]
fn rx_07_rto_resends_a_small_window_limited_segment() {
    let mut sc = Sc::established(Sc::plain());
    sc.deliver(Seg::ack(P, D).window(1000));
    sc.conn.write(&bytes(0, 4000)).unwrap();
    sc.expect_none();
    let out = sc.next_timer();
    assert_eq!(out.len(), 1, "the persist timer sends what fits: {out:#?}");
    assert_data(&out[0], D, 1000);
    // Lost. The RTO resends it.
    let out = sc.next_timer();
    assert_eq!(out.len(), 1, "one retransmission at the RTO: {out:#?}");
    assert_data(&out[0], D, 1000);
    assert_eq!(sc.conn.info().timeouts, 1);
}
