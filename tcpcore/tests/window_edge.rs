//! Flow control under applications that stop reading: the offered window's right edge never
//! moves left (RFC 9293 §3.8.6, RFC 7323 §2.4; FL-01), and with a zero receive window the
//! ACK field of an arriving segment still counts (RFC 9293 §3.10.7.4; FL-02).
mod common;
use common::*;
use tcpcore::wire::TcpFlags;
use tcpcore::ConnConfig;

/// Shift 6 (a 2 MiB maximum buffer) and a 5000-byte buffer the application never reads:
/// 5000 is not a multiple of the 64-byte scale unit.
fn scaled_cfg() -> ConnConfig {
    ConnConfig { window_scaling: true, recv_buffer: 5000, max_recv_buffer: 2 << 20, ..Sc::plain() }
}

/// The right edge (SEG.ACK + SEG.WND << shift) a segment of ours announces.
fn edge(o: &Out, shift: u8) -> u32 {
    o.ack().wrapping_add(u32::from(o.tcp.window) << shift)
}

/// Every ACK in `out` announces an edge at or right of `*last`, which follows it.
#[track_caller]
fn assert_edges_never_left(out: &[Out], shift: u8, last: &mut u32) {
    for o in out {
        let e = edge(o, shift);
        assert!(e.wrapping_sub(*last) as i32 >= 0, "edge {e} left of {last}: {:?}", o.tcp);
        *last = e;
    }
}

/// FL-01: with window scaling, the window is rounded up (never down) to the scale unit, the
/// edge it announces is the edge we accept up to, and filling the buffer never pulls the
/// edge back: bytes the peer sends up to the last announced edge are accepted.
#[test]
fn fl_01_right_edge_never_moves_left_with_scale_round_off() {
    let mut sc = Sc::client(scaled_cfg());
    let shift = 6;
    assert_eq!(sc.log[0].tcp.options.window_scale, Some(shift));
    sc.advance(ms(10));
    let mut sa = Seg::syn_ack(PEER_ISS, D);
    sa.options.window_scale = Some(0);
    sc.deliver(sa);
    let ack = sc.expect_one();
    ack.assert_seq_ack(D, P);
    assert_eq!(ack.tcp.window, 5000u32.div_ceil(64) as u16, "rounded up, not down");
    let mut last = edge(&ack, shift);
    assert_eq!(last, P + 5056);

    // The application never reads; the peer fills the buffer 1000 bytes at a time.
    for i in 0..5 {
        sc.deliver(Seg::ack(P + i * 1000, D).data(&bytes(i as usize * 1000, 1000)));
        let out = sc.advance(ms(50));
        assert_edges_never_left(&out, shift, &mut last);
    }
    assert_eq!(sc.conn.seq_vars().rcv_nxt.0, P + 5000);
    // What remains of the announced window is still offered (each ACK rounded the rest up,
    // less than a unit each time), and taken when sent.
    let rest = last - (P + 5000);
    assert!(rest > 0 && rest < 5 * 64, "{rest}");
    sc.deliver(Seg::ack(P + 5000, D).data(&bytes(5000, rest as usize)));
    let out = sc.advance(ms(50));
    assert_edges_never_left(&out, shift, &mut last);
    let ack = out.last().expect("the data is acknowledged");
    assert_eq!(ack.ack(), last, "every byte up to the announced edge was accepted");
    assert_eq!(ack.tcp.window, 0, "now the window is closed, at the same edge");
    assert_eq!(sc.read_all(), bytes(0, 5000 + rest as usize));
}

/// FL-01 without scaling: a buffer filling up shrinks the window, never the edge.
#[test]
fn fl_01_filling_buffer_closes_window_at_the_same_edge() {
    let mut sc = Sc::established(ConnConfig { recv_buffer: 3000, ..Sc::plain() });
    let mut last = P + 3000;
    for i in 0..3u32 {
        sc.deliver(Seg::ack(P + i * 1000, D).data(&bytes(i as usize * 1000, 1000)));
        let out = sc.advance(ms(50));
        assert_edges_never_left(&out, 0, &mut last);
    }
    assert_eq!(last, P + 3000);
    assert_eq!(sc.conn.info().rcv_wnd, 0);
}

/// The peer's segment carrying `len` bytes at `P + off`, acknowledging `ack`.
fn data_at(off: u32, len: usize, ack: u32) -> Seg {
    Seg::ack(P + off, ack).data(&bytes(off as usize, len))
}

/// A client whose 2000-byte receive buffer the peer has filled (window zero) while 1000
/// bytes of ours are in flight, unacknowledged.
#[track_caller]
fn zero_window_with_data_in_flight() -> Sc {
    let mut sc = Sc::established(ConnConfig { recv_buffer: 2000, ..Sc::plain() });
    sc.conn.write(&bytes(0, 1000)).unwrap();
    assert_data(&sc.expect_one(), D, 1000);
    sc.deliver(data_at(0, 2000, D));
    let ack = sc.expect_one();
    ack.assert_seq_ack(D + 1000, P + 2000);
    assert_eq!(ack.tcp.window, 0);
    sc
}

/// FL-02: with a zero receive window, a data segment beyond the window is answered with an
/// ACK, and its ACK field (acceptable by RFC 5961 §5.2) still counts: our data is not
/// retransmitted. This is the echo-under-loss collapse of issue 11.
#[test]
fn fl_02_zero_window_data_beyond_window_still_acks_our_data() {
    let mut sc = zero_window_with_data_in_flight();
    sc.advance(ms(20));
    sc.deliver(data_at(2004, 100, D + 1000));
    let ack = sc.expect_one();
    ack.assert_flags(TcpFlags::ACK).assert_seq_ack(D + 1000, P + 2000);
    assert_eq!(ack.tcp.window, 0);
    assert_eq!(sc.conn.send_queued(), 0, "the ACK field counted");
    assert_eq!(sc.conn.seq_vars().snd_una.0, D + 1000);
    let later = sc.advance(secs(5));
    assert!(later.iter().all(|o| o.len() == 0), "nothing retransmitted: {later:#?}");
    assert_eq!(sc.conn.info().retransmits, 0);
    assert_eq!(sc.read_all(), bytes(0, 2000), "the data beyond the window was not taken");
}

/// FL-02: the same segment acknowledging data never sent is not taken (RFC 5961 §5.2).
#[test]
fn fl_02_zero_window_ack_of_unsent_data_is_not_taken() {
    let mut sc = zero_window_with_data_in_flight();
    sc.advance(ms(20));
    sc.deliver(data_at(2004, 100, D + 5000));
    let out = sc.output();
    assert!(!out.is_empty(), "answered with an ACK");
    assert!(out.iter().all(|o| o.ack() == P + 2000 && o.len() == 0), "{out:#?}");
    assert_eq!(sc.conn.send_queued(), 1000);
}

/// FL-02: a pure ACK and a RST at RCV.NXT are processed with a zero window.
#[test]
fn fl_02_zero_window_pure_ack_and_rst_are_processed() {
    let mut sc = zero_window_with_data_in_flight();
    sc.deliver(Seg::ack(P + 2000, D + 1000));
    assert_eq!(sc.conn.send_queued(), 0);
    sc.expect_none();
    sc.deliver(Seg::rst(P + 2000));
    assert_eq!(sc.conn.state(), tcpcore::State::Closed);
}
