//! Flow control: window scaling (RFC 7323 §2, RX-05), zero windows and the persist timer
//! (RFC 9293 §3.8.6.1, RX-06), silly-window avoidance (RFC 9293 §3.8.6.2, RX-07), delayed
//! ACKs, Nagle and PSH (RFC 9293 §3.8.6.3, RFC 896, RX-08).
mod common;
use common::*;
use tcpcore::wire::TcpFlags;
use tcpcore::ConnConfig;

/// A bare ACK from us acknowledging `ack`.
#[track_caller]
fn assert_ack(o: &Out, ack: u32) {
    o.assert_flags(TcpFlags::ACK).assert_seq_ack(D, ack);
    assert_eq!(o.len(), 0, "a bare ACK: {:?}", o.tcp);
}

/// Window scaling on, timestamps and SACK off (so every segment carries 1460 bytes).
fn ws_cfg() -> ConnConfig {
    // Auto-tuning off (its maximum is the buffer), so the shift is sized for 256 KiB.
    ConnConfig { window_scaling: true, max_recv_buffer: 256 * 1024, ..Sc::plain() }
}

/// The peer's SYN-ACK with the given window field and window-scale offer.
fn syn_ack_ws(window: u16, ws: Option<u8>) -> Seg {
    let mut s = Seg::syn_ack(PEER_ISS, D).window(window);
    s.options.window_scale = ws;
    s
}

// ---- RX-05: window scaling ------------------------------------------------------------------

#[test]
fn rx_05_both_offer_ws_windows_scaled_both_ways() {
    let mut sc = Sc::client(ws_cfg());
    // A 256 KiB receive buffer needs shift 3 (262144 >> 3 = 32768); the SYN's own window
    // is never scaled (RFC 7323 §2.2).
    let syn = &sc.log[0];
    assert_eq!(syn.tcp.options.window_scale, Some(3));
    assert_eq!(syn.tcp.window, 65_535);
    sc.conn.write(&bytes(0, 10_000)).unwrap();
    sc.expect_none();

    // The SYN-ACK offers shift 2 and a window field of 1460: unscaled in a SYN, so one
    // segment may go out (not four).
    sc.advance(ms(10));
    sc.deliver(syn_ack_ws(1460, Some(2)));
    let first = sc.expect_one();
    assert_data(&first, D, 1460);
    assert_eq!(first.tcp.window, (262_144u32 >> 3) as u16, "free space >> our shift");
    assert_eq!(sc.conn.info().snd_wnd, 1460);
    assert_eq!(sc.conn.info().wscale, (3, 2));

    // From now on the peer's field is shifted: 1460 << 2 = 5840 = four segments.
    sc.deliver(Seg::ack(P, D + 1460).window(1460));
    let out = sc.output();
    assert_eq!(out.len(), 4, "{out:#?}");
    for (i, s) in out.iter().enumerate() {
        assert_data(s, D + 1460 + i as u32 * MSS, 1460);
    }
    assert_eq!(sc.conn.info().snd_wnd, 5840);

    // Our advertised field is free space >> 3: 800 unread bytes leave 261344 = 32668 << 3.
    sc.deliver(Seg::ack(P, D + 1460).window(1460).data(&bytes(0, 800)));
    let ack = sc.expect_one();
    ack.assert_flags(TcpFlags::ACK).assert_seq_ack(D + 5 * MSS, P + 800);
    assert_eq!(ack.tcp.window, 32_668);
    assert_eq!(sc.conn.info().rcv_wnd, 261_344);
}

#[test]
fn rx_05_peer_without_ws_no_scaling_and_at_most_65535() {
    let mut sc = Sc::client(ws_cfg());
    assert_eq!(sc.log[0].tcp.options.window_scale, Some(3), "we offered scaling");
    sc.advance(ms(10));
    sc.deliver(syn_ack_ws(30_000, None));
    let ack = sc.expect_one();
    ack.assert_flags(TcpFlags::ACK).assert_seq_ack(D, P);
    assert_eq!(ack.tcp.window, 65_535, "256 KiB free, but unscaled: capped at 65535");
    assert_eq!(sc.conn.info().wscale, (0, 0));
    assert_eq!(sc.conn.info().rcv_wnd, 65_535);

    // The peer's field is taken as is: 2920 bytes = two segments.
    sc.deliver(Seg::ack(P, D).window(2920));
    sc.conn.write(&bytes(0, 10_000)).unwrap();
    let out = sc.output();
    assert_eq!(out.len(), 2);
    assert_data(&out[0], D, 1460);
    assert_data(&out[1], D + MSS, 1460);
    assert!(out.iter().all(|o| o.tcp.window == 65_535));

    // Data received: still 65535 (the free space is far larger than the field can say).
    sc.deliver(Seg::ack(P, D).window(2920).data(&bytes(0, 1000)));
    let ack = sc.expect_one();
    ack.assert_seq_ack(D + 2 * MSS, P + 1000);
    assert_eq!(ack.tcp.window, 65_535);
    assert_eq!(sc.conn.info().rcv_wnd, 65_535);
}

#[test]
fn rx_05_server_syn_ack_window_never_scaled() {
    let mut syn = Seg::syn(PEER_ISS);
    syn.options.window_scale = Some(5);
    let sc = Sc::server(ws_cfg(), syn);
    let sa = &sc.log[0];
    assert_eq!(sa.tcp.options.window_scale, Some(3));
    assert_eq!(sa.tcp.window, 65_535, "the SYN-ACK's window is unscaled (RFC 7323 §2.2)");

    // A SYN without the option: no scaling offered back (RFC 7323 §1.3).
    let sc = Sc::server(ws_cfg(), Seg::syn(PEER_ISS));
    let sa = &sc.log[0];
    assert_eq!(sa.tcp.options.window_scale, None);
    assert_eq!(sa.tcp.window, 65_535);
    assert_eq!(sc.conn.info().wscale, (0, 0));
}

// ---- RX-06: zero window and persist timer ---------------------------------------------------

#[test]
fn rx_06_zero_window_probes_back_off_and_update_resumes() {
    let mut sc = Sc::established(Sc::plain()); // RTO 200 ms, now 10 ms
    sc.deliver(Seg::ack(P, D).window(0));
    sc.conn.write(&bytes(0, 1000)).unwrap();
    sc.expect_none();
    assert_eq!(sc.conn.poll_timeout(), Some(at(210)), "persist timer at one RTO");

    // Probes <SEQ=SND.UNA-1><ACK=RCV.NXT> without data; each answered by a zero window. The
    // interval doubles from the RTO and stops growing at the 120 s maximum.
    let mut expect = 10u64;
    for k in 0..12 {
        expect += (200u64 << k).min(120_000);
        let out = sc.next_timer();
        assert_eq!(out.len(), 1, "probe {k}");
        out[0].assert_flags(TcpFlags::ACK).assert_seq_ack(D - 1, P);
        assert_eq!(out[0].len(), 0);
        assert_eq!(out[0].at, at(expect), "probe {k}");
        // The answer 10 ms later does not restart the backed-off interval.
        sc.advance(ms(10));
        sc.deliver(Seg::ack(P, D).window(0));
        sc.expect_none();
    }
    assert_eq!(sc.conn.info().probes_out, 12);
    assert_eq!(sc.conn.send_queued(), 1000);

    // The window opens: the data goes at once and the persist timer stops.
    sc.deliver(Seg::ack(P, D).window(65_535));
    let out = sc.expect_one();
    assert_data(&out, D, 1000);
    assert!(out.has(TcpFlags::PSH));
    assert_eq!(sc.conn.poll_timeout(), Some(sc.now + ms(200)), "only the RTO now");
}

// ---- RX-07: silly-window avoidance -----------------------------------------------------------

/// Established client whose peer's largest window so far is 2000 bytes.
fn small_window_client() -> Sc {
    let mut sc = Sc::client(Sc::plain());
    sc.advance(ms(10));
    sc.deliver(Seg::syn_ack(PEER_ISS, D).window(2000));
    sc.expect_one().assert_seq_ack(D, P);
    sc
}

#[test]
fn rx_07_sender_holds_tiny_segment_until_half_max_window() {
    let mut sc = small_window_client();
    // 999 bytes of window, 1500 to send: less than half the largest window (2000) and less
    // than a segment: hold (RFC 9293 §3.8.6.2.1).
    sc.deliver(Seg::ack(P, D).window(999));
    sc.conn.write(&bytes(0, 1500)).unwrap();
    sc.expect_none();
    // The override timeout (persist timer, one RTO) sends what fits.
    let out = sc.next_timer();
    assert_eq!(out.len(), 1);
    assert_data(&out[0], D, 999);
    assert_eq!(out[0].at, at(210));
}

#[test]
fn rx_07_sender_sends_when_window_is_half_max() {
    let mut sc = small_window_client();
    sc.deliver(Seg::ack(P, D).window(1000));
    sc.conn.write(&bytes(0, 1500)).unwrap();
    let out = sc.expect_one();
    assert_data(&out, D, 1000);
}

#[test]
fn rx_07_receiver_announces_only_significant_window_increases() {
    let cfg = ConnConfig { recv_buffer: 4000, ..Sc::plain() };
    let mut sc = Sc::established(cfg);
    // Fill the buffer: each segment is ACKed (quick-ack mode) with the shrinking window.
    for (off, len, wnd) in [(0u32, 1460usize, 2540u16), (1460, 1460, 1080), (2920, 1080, 0)] {
        sc.deliver(Seg::ack(P + off, D).data(&bytes(off as usize, len)));
        let ack = sc.expect_one();
        assert_ack(&ack, P + off + len as u32);
        assert_eq!(ack.tcp.window, wnd);
    }
    let mut b = [0u8; 1460];
    // Reading 1 byte, then up to 1459, opens less than one MSS: no window update
    // (RFC 9293 §3.8.6.2.2).
    assert_eq!(sc.conn.read(&mut b[..1]), Ok(1));
    assert!(!sc.conn.wants_transmit());
    sc.expect_none();
    assert_eq!(sc.conn.read(&mut b[..1458]), Ok(1458));
    sc.expect_none();
    // One more byte makes a full MSS: the update goes out.
    assert_eq!(sc.conn.read(&mut b[..1]), Ok(1));
    assert!(sc.conn.wants_transmit());
    let upd = sc.expect_one();
    assert_ack(&upd, P + 4000);
    assert_eq!(upd.tcp.window, 1460);
    sc.expect_none();
}

// ---- RX-08: delayed ACK, Nagle, PSH -----------------------------------------------------------

#[test]
fn rx_08_single_segment_acked_after_40ms() {
    let cfg = ConnConfig { quick_acks: 0, ..Sc::plain() };
    let mut sc = Sc::established(cfg);
    sc.deliver(Seg::ack(P, D).data(&bytes(0, 100)));
    sc.expect_none();
    let out = sc.advance(ms(100));
    assert_eq!(out.len(), 1);
    assert_ack(&out[0], P + 100);
    assert_eq!(out[0].at, at(10 + 40), "exactly the 40 ms delayed-ACK timeout");
}

#[test]
fn rx_08_two_full_segments_acked_at_once() {
    let cfg = ConnConfig { quick_acks: 0, ..Sc::plain() };
    let mut sc = Sc::established(cfg);
    sc.deliver(Seg::ack(P, D).data(&bytes(0, 1460)));
    sc.expect_none();
    sc.advance(ms(5));
    sc.deliver(Seg::ack(P + 1460, D).data(&bytes(1460, 1460)));
    let ack = sc.expect_one();
    assert_ack(&ack, P + 2920);
    assert_eq!(ack.at, at(15));
    assert_eq!(sc.advance(ms(100)).len(), 0, "no second ACK from the stale timer");
}

#[test]
fn rx_08_quick_acks_at_start_then_delayed() {
    let mut sc = Sc::established(Sc::plain()); // 16 quick ACKs
    for i in 0..16u32 {
        sc.deliver(Seg::ack(P + 10 * i, D).data(&bytes(10 * i as usize, 10)));
        assert_ack(&sc.expect_one(), P + 10 * (i + 1));
    }
    sc.deliver(Seg::ack(P + 160, D).data(&bytes(160, 10)));
    sc.expect_none();
    let out = sc.advance(ms(50));
    assert_eq!(out.len(), 1);
    assert_ack(&out[0], P + 170);
    assert_eq!(out[0].at, at(50));
}

/// Uses up the 4 quick ACKs of `cfg` with 10-byte segments; the next one waits for the
/// delayed-ACK timer. Returns the next sequence number.
fn spend_quick_acks(sc: &mut Sc) -> u32 {
    for i in 0..4u32 {
        sc.deliver(Seg::ack(P + 10 * i, D).data(&bytes(10 * i as usize, 10)));
        assert_ack(&sc.expect_one(), P + 10 * (i + 1));
    }
    sc.deliver(Seg::ack(P + 40, D).data(&bytes(40, 10)));
    sc.expect_none();
    assert_eq!(sc.advance(ms(50)).len(), 1);
    P + 50
}

#[test]
fn rx_08_quick_acks_again_after_a_silence_longer_than_the_rto() {
    let mut sc = Sc::established(ConnConfig { quick_acks: 4, ..Sc::plain() });
    let next = spend_quick_acks(&mut sc);
    // 10 ms later: still delayed.
    sc.deliver(Seg::ack(next, D).data(&bytes(50, 10)));
    sc.expect_none();
    sc.advance(ms(50));
    // After more than the RTO (200 ms here) of silence the sender is restarting its window
    // (Linux tcp_event_data_recv): ACKed at once, and the next ones too.
    sc.advance(ms(300));
    for i in 0..4u32 {
        sc.deliver(Seg::ack(next + 10 + 10 * i, D).data(&bytes(60 + 10 * i as usize, 10)));
        assert_ack(&sc.expect_one(), next + 20 + 10 * i);
    }
    sc.deliver(Seg::ack(next + 50, D).data(&bytes(100, 10)));
    sc.expect_none();
}

#[test]
fn rx_08_a_duplicate_segment_restarts_quick_acks() {
    let mut sc = Sc::established(ConnConfig { quick_acks: 4, ..Sc::plain() });
    let next = spend_quick_acks(&mut sc);
    // A retransmission of data we have: ACKed at once (RFC 5681 §4.2), and Linux's
    // quick-ack mode makes the segments after it go unheld too.
    sc.deliver(Seg::ack(next - 10, D).data(&bytes(40, 10)));
    assert_ack(&sc.expect_one(), next);
    sc.deliver(Seg::ack(next, D).data(&bytes(50, 10)));
    assert_ack(&sc.expect_one(), next + 10);
}

#[test]
fn rx_08_nagle_holds_small_write_until_ack() {
    let mut sc = Sc::established(Sc::plain());
    sc.conn.write(&bytes(0, 100)).unwrap();
    assert_data(&sc.expect_one(), D, 100);
    // Data unacknowledged: small writes wait (RFC 896).
    sc.conn.write(&bytes(100, 100)).unwrap();
    sc.expect_none();
    sc.conn.write(&bytes(200, 50)).unwrap();
    sc.expect_none();
    assert_eq!(sc.advance(ms(5)).len(), 0);
    sc.deliver(Seg::ack(P, D + 100));
    let out = sc.expect_one();
    assert_data(&out, D + 100, 150);
    assert!(out.has(TcpFlags::PSH));
}

#[test]
fn rx_08_nodelay_sends_small_writes_at_once() {
    let mut sc = Sc::established(Sc::plain());
    assert!(!sc.conn.nodelay());
    sc.conn.set_nodelay(true);
    assert!(sc.conn.nodelay());
    sc.conn.write(&bytes(0, 100)).unwrap();
    assert_data(&sc.expect_one(), D, 100);
    sc.conn.write(&bytes(100, 100)).unwrap();
    assert_data(&sc.expect_one(), D + 100, 100);
    sc.conn.write(&bytes(200, 3000)).unwrap();
    let out = sc.output();
    assert_eq!(out.len(), 3);
    assert_data(&out[2], D + 200 + 2 * MSS, 80);
}

#[test]
fn rx_08_psh_on_last_segment_of_a_write() {
    let mut sc = Sc::established(Sc::plain());
    sc.conn.write(&bytes(0, 3 * MSS as usize)).unwrap();
    let out = sc.output();
    assert_eq!(out.len(), 3);
    let psh: Vec<bool> = out.iter().map(|o| o.has(TcpFlags::PSH)).collect();
    assert_eq!(psh, [false, false, true]);
    assert_data(&out[2], D + 2 * MSS, MSS as usize);
}
