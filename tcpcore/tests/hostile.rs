//! Hostile input at the connection level (RFC 5961, RFC 9293 §3.10.7.4, RFC 6093):
//! SEC-01 blind resets, SEC-02 blind SYNs, SEC-03 blind or stale ACKs, SEC-05 bounded memory,
//! SEC-06 urgent data.
//!
//! Every scenario starts from `Sc::established(Sc::plain())`: we are at SND.NXT = `ISS + 1`,
//! the peer at RCV.NXT = `PEER_ISS + 1`, and we advertised a 65535-byte window.

mod alloc_util;
use alloc_util::allocs;

mod common;

use std::time::Duration;

use common::*;
use tcpcore::rng::Rng;
use tcpcore::wire::{self, SeqNum, TcpFlags, TcpOptions, TcpRepr};
use tcpcore::{ConnConfig, ConnectionError, Event, ReadError, State, WriteError};

/// Our next sequence number right after the handshake.
const SND: u32 = ISS + 1;
/// The peer's next sequence number right after the handshake.
const RCV: u32 = PEER_ISS + 1;
/// The window we advertise with `Sc::plain()` (256 KiB buffer, no scaling).
const WND: u32 = 65_535;

// ---- allocation counting (SEC-05) -----------------------------------------------------------

// ---- helpers ---------------------------------------------------------------------------------

/// An established client (plain config) with the given challenge-ACK budget.
fn est_with(f: impl FnOnce(&mut ConnConfig)) -> Sc {
    let mut cfg = Sc::plain();
    f(&mut cfg);
    Sc::established(cfg)
}

fn est() -> Sc {
    est_with(|_| {})
}

/// Exactly one segment, a bare ACK `<SEQ=seq><ACK=ack><CTL=ACK>` (a challenge ACK).
#[track_caller]
fn expect_ack(sc: &mut Sc, seq: u32, ack: u32) -> Out {
    let out = sc.expect_one();
    out.assert_flags(TcpFlags::ACK).assert_seq_ack(seq, ack);
    assert_eq!(out.len(), 0, "a bare ACK carries no data");
    out
}

/// (challenge ACKs sent, challenge ACKs suppressed)
fn challenges(sc: &Sc) -> (u64, u64) {
    let i = sc.conn.info();
    (i.challenge_acks, i.challenge_acks_suppressed)
}

/// Deliver a segment with an explicit urgent pointer (the `Seg` builder always sends 0).
fn deliver_urgent(sc: &mut Sc, flags: TcpFlags, seq: u32, urgent: u16, payload: &[u8]) {
    let repr = TcpRepr {
        src_port: PEER.port(),
        dst_port: US.port(),
        seq: SeqNum(seq),
        ack: SeqNum(SND),
        flags,
        window: 65_535,
        urgent,
        ..TcpRepr::default()
    };
    let mut buf = vec![0u8; 2048];
    let n = wire::emit(&mut buf, PEER.ip(), US.ip(), &repr, [payload, &[]]).unwrap();
    let seg = wire::parse(&buf[..n]).expect("URG segments are well-formed");
    assert_eq!(seg.tcp.urgent, urgent);
    sc.conn.handle_segment(sc.now, &seg);
}

/// A connection in `state` reached from ESTABLISHED by the usual exchanges, with its current
/// (SND.NXT, RCV.NXT). Every reply along the way is taken from the output.
#[track_caller]
fn in_state(state: State) -> (Sc, u32, u32) {
    let mut sc = est();
    let (mut snd, mut rcv) = (SND, RCV);
    let fin_wait_1 = |sc: &mut Sc| {
        sc.conn.shutdown_write();
        sc.expect_one().assert_flags(TcpFlags::ACK | TcpFlags::FIN).assert_seq_ack(SND, RCV);
    };
    match state {
        State::Established => {}
        State::CloseWait | State::LastAck => {
            sc.deliver(Seg::ack(RCV, SND).fin());
            rcv += 1;
            // No data came before it: the FIN is ACKed at once (as Linux).
            expect_ack(&mut sc, SND, rcv);
            if state == State::LastAck {
                sc.conn.shutdown_write();
                sc.expect_one()
                    .assert_flags(TcpFlags::ACK | TcpFlags::FIN)
                    .assert_seq_ack(SND, rcv);
                snd += 1;
            }
        }
        State::FinWait1 | State::FinWait2 | State::TimeWait => {
            fin_wait_1(&mut sc);
            snd += 1;
            if state != State::FinWait1 {
                sc.deliver(Seg::ack(RCV, snd));
                sc.expect_none();
            }
            if state == State::TimeWait {
                sc.deliver(Seg::ack(RCV, snd).fin());
                rcv += 1;
                expect_ack(&mut sc, snd, rcv);
            }
        }
        State::Closing => {
            fin_wait_1(&mut sc);
            snd += 1;
            // The peer's FIN crosses ours: it does not acknowledge our FIN yet.
            sc.deliver(Seg::ack(RCV, SND).fin());
            rcv += 1;
            expect_ack(&mut sc, snd, rcv);
        }
        s => panic!("not a synchronized state: {s:?}"),
    }
    assert_eq!(sc.conn.state(), state);
    sc.events();
    (sc, snd, rcv)
}

const SYNCHRONIZED: [State; 7] = [
    State::Established,
    State::FinWait1,
    State::FinWait2,
    State::CloseWait,
    State::Closing,
    State::LastAck,
    State::TimeWait,
];

// ---- SEC-01: RST -----------------------------------------------------------------------------

#[test]
fn sec_01_rst_at_exactly_rcv_nxt_resets_the_connection() {
    let mut sc = est();
    assert_eq!(sc.conn.info().rcv_wnd, WND);
    sc.deliver(Seg::rst(RCV));
    sc.expect_none();
    assert_eq!(sc.conn.state(), State::Closed);
    assert_eq!(sc.conn.error(), Some(ConnectionError::Reset));
    assert_eq!(sc.events().last(), Some(&Event::Closed(Some(ConnectionError::Reset))));
    assert_eq!(sc.conn.read(&mut [0; 8]), Err(ReadError::Failed(ConnectionError::Reset)));
    assert_eq!(sc.conn.write(b"x"), Err(WriteError::Failed(ConnectionError::Reset)));
    let i = sc.conn.info();
    assert_eq!((i.resets_in, i.challenge_acks), (1, 0));

    // The ACK field of a RST plays no part (RFC 5961 §3.2): RST+ACK with any ack also resets.
    let mut sc = est();
    sc.deliver(Seg::new(TcpFlags::RST | TcpFlags::ACK, RCV, 0xdead_beef));
    sc.expect_none();
    assert_eq!(sc.conn.error(), Some(ConnectionError::Reset));
}

#[test]
fn sec_01_in_window_rst_gets_a_challenge_ack_and_the_connection_stays() {
    for seq in [RCV + 1, RCV + 1000, RCV + WND - 1] {
        let mut sc = est();
        sc.deliver(Seg::rst(seq));
        // RFC 5961 §3.2: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>.
        expect_ack(&mut sc, SND, RCV);
        assert_eq!(sc.conn.state(), State::Established, "RST at {seq}");
        assert_eq!(sc.conn.error(), None);
        assert_eq!(sc.events(), vec![]);
        assert_eq!(challenges(&sc), (1, 0));
        assert_eq!(sc.conn.info().resets_in, 0);
    }
    // With data in flight the challenge ACK carries SND.NXT, not SND.UNA.
    let mut sc = est();
    sc.conn.write(&[7; 100]).unwrap();
    sc.expect_one().assert_seq_ack(SND, RCV);
    sc.deliver(Seg::new(TcpFlags::RST | TcpFlags::ACK, RCV + 10, SND + 100));
    expect_ack(&mut sc, SND + 100, RCV);
    assert_eq!(sc.conn.seq_vars().snd_una, SeqNum(SND), "a RST's ACK field is not processed");
    // The connection still works: the real ACK and then data arrive normally.
    sc.deliver(Seg::ack(RCV, SND + 100).data(b"still here"));
    expect_ack(&mut sc, SND + 100, RCV + 10);
    assert_eq!(sc.read_all(), b"still here");
    assert_eq!(sc.conn.send_queued(), 0);
}

#[test]
fn sec_01_out_of_window_rst_is_silently_dropped() {
    for seq in [
        RCV - 1,
        RCV + WND,
        RCV + WND + 1,
        RCV + 1_000_000,
        RCV.wrapping_sub(1_000_000),
        RCV ^ 1 << 31,
    ] {
        let mut sc = est();
        let drops = sc.conn.info().drops;
        sc.deliver(Seg::rst(seq));
        sc.expect_none();
        assert_eq!(sc.conn.state(), State::Established, "RST at {seq}");
        assert_eq!(challenges(&sc), (0, 0));
        assert_eq!(sc.conn.info().drops, drops + 1);
        let later = sc.advance(secs(5));
        assert!(later.is_empty(), "nothing is sent later either: {later:?}");
    }
}

#[test]
fn sec_01_challenge_acks_are_rate_limited_per_connection_per_second() {
    let mut sc = est_with(|c| c.challenge_ack_limit = 3);
    sc.advance(secs(2) - ms(10)); // now = 2 s: the budget's one-second window starts here
    assert_eq!(sc.now, tcpcore::Instant::from_secs(2));
    for i in 0..3 {
        sc.deliver(Seg::rst(RCV + 1 + i));
        expect_ack(&mut sc, SND, RCV);
    }
    assert_eq!(challenges(&sc), (3, 0));
    sc.deliver(Seg::rst(RCV + 5));
    sc.expect_none();
    // SYNs and bad ACKs draw on the same budget (RFC 5961 §7).
    sc.deliver(Seg::syn(RCV + 7));
    sc.expect_none();
    sc.deliver(Seg::ack(RCV, SND + 50));
    sc.expect_none();
    assert_eq!(challenges(&sc), (3, 3));
    // One microsecond before the second is over: still spent.
    sc.advance(secs(1) - Duration::from_micros(1));
    sc.deliver(Seg::rst(RCV + 9));
    sc.expect_none();
    assert_eq!(challenges(&sc), (3, 4));
    // A full second after the window opened the budget is back.
    sc.advance(Duration::from_micros(1));
    for i in 0..3 {
        sc.deliver(Seg::rst(RCV + 11 + i));
        expect_ack(&mut sc, SND, RCV);
    }
    sc.deliver(Seg::rst(RCV + 20));
    sc.expect_none();
    assert_eq!(challenges(&sc), (6, 5));
    assert_eq!(sc.conn.state(), State::Established);
    // The budget is per connection: another connection is not affected.
    let mut other = est_with(|c| c.challenge_ack_limit = 3);
    other.deliver(Seg::rst(RCV + 1));
    expect_ack(&mut other, SND, RCV);
    // Rate limiting never stops an exact reset.
    sc.deliver(Seg::rst(RCV));
    sc.expect_none();
    assert_eq!(sc.conn.error(), Some(ConnectionError::Reset));
}

#[test]
fn sec_01_rst_rules_hold_in_every_synchronized_state() {
    for state in SYNCHRONIZED {
        // In window, not exact: challenge ACK, state kept.
        let (mut sc, snd, rcv) = in_state(state);
        sc.deliver(Seg::rst(rcv + 100));
        expect_ack(&mut sc, snd, rcv);
        assert_eq!(sc.conn.state(), state);
        // Out of window: nothing.
        sc.deliver(Seg::rst(rcv - 1));
        sc.expect_none();
        assert_eq!(sc.conn.state(), state);
        // Exact: closed; only the states where the user still has a stream report Reset
        // (RFC 9293 §3.10.7.4: CLOSING, LAST-ACK, TIME-WAIT just delete the TCB).
        sc.deliver(Seg::rst(rcv));
        sc.expect_none();
        assert_eq!(sc.conn.state(), State::Closed, "exact RST in {state:?}");
        let expected = match state {
            State::Closing | State::LastAck | State::TimeWait => None,
            _ => Some(ConnectionError::Reset),
        };
        assert_eq!(sc.conn.error(), expected, "{state:?}");
    }
}

#[test]
fn sec_01_in_window_rst_in_syn_received_gets_a_challenge_ack() {
    let mut sc = Sc::server(Sc::plain(), Seg::syn(PEER_ISS));
    sc.deliver(Seg::rst(RCV + 3));
    expect_ack(&mut sc, SND, RCV);
    assert_eq!(sc.conn.state(), State::SynReceived);
    sc.deliver(Seg::ack(RCV, SND));
    assert_eq!(sc.conn.state(), State::Established);
}

// ---- SEC-02: SYN in a synchronized state -----------------------------------------------------

#[test]
fn sec_02_syn_in_every_synchronized_state_gets_a_challenge_ack_never_a_reset() {
    for state in SYNCHRONIZED {
        // In window (not in TIME-WAIT, where a higher SYN may legitimately reuse the tuple,
        // CL-09), at the old ISN, and far outside the window.
        let (mut sc, snd, rcv) = in_state(state);
        let mut seqs = vec![PEER_ISS, rcv.wrapping_sub(70_000), rcv + 3_000_000];
        if state != State::TimeWait {
            seqs.extend([rcv, rcv + 10]);
        }
        for (i, &seq) in seqs.iter().enumerate() {
            sc.deliver(Seg::syn(seq));
            let out = expect_ack(&mut sc, snd, rcv);
            assert!(!out.has(TcpFlags::RST), "{state:?}: SYN at {seq} answered by {out:?}");
            assert_eq!(sc.conn.state(), state, "SYN at {seq}");
            assert_eq!(sc.conn.error(), None);
            assert_eq!(challenges(&sc), (i as u64 + 1, 0));
        }
        // A SYN-ACK is a SYN too.
        sc.deliver(Seg::syn_ack(rcv + 1, snd));
        expect_ack(&mut sc, snd, rcv);
        assert_eq!(sc.conn.state(), state);
    }
}

#[test]
fn sec_02_syn_carries_nothing_into_the_connection() {
    let mut sc = est();
    sc.conn.write(&[1; 10]).unwrap();
    sc.expect_one().assert_seq_ack(SND, RCV);
    // A SYN at RCV.NXT with data, an ACK of our data and a tiny window: none of it counts.
    let opts = TcpOptions { mss: Some(100), window_scale: Some(14), ..TcpOptions::default() };
    sc.deliver(Seg::syn_ack(RCV, SND + 10).data(b"injected").window(1).opts(opts));
    expect_ack(&mut sc, SND + 10, RCV);
    assert_eq!(sc.conn.readable_bytes(), 0);
    let v = sc.conn.seq_vars();
    assert_eq!((v.snd_una, v.snd_wnd, v.rcv_nxt), (SeqNum(SND), WND, SeqNum(RCV)));
    assert_eq!(sc.conn.info().snd_mss, 1460);
    // The real peer carries on.
    sc.deliver(Seg::ack(RCV, SND + 10).data(b"real"));
    expect_ack(&mut sc, SND + 10, RCV + 4);
    assert_eq!(sc.read_all(), b"real");
}

// ---- SEC-03: ACK validation ------------------------------------------------------------------

#[test]
fn sec_03_ack_of_data_never_sent_is_dropped_with_an_ack() {
    let mut sc = est();
    sc.conn.write(&[9; 100]).unwrap();
    sc.expect_one().assert_seq_ack(SND, RCV);
    let rto_deadline = sc.conn.poll_timeout();
    for bad in [SND + 101, SND + 100_000, SND + (1 << 30)] {
        let drops = sc.conn.info().drops;
        // Carries data at RCV.NXT too: dropped with the segment (RFC 5961 §5.2).
        sc.deliver(Seg::ack(RCV, bad).data(b"abc"));
        expect_ack(&mut sc, SND + 100, RCV);
        let v = sc.conn.seq_vars();
        assert_eq!(
            (v.snd_una, v.snd_nxt, v.snd_max),
            (SeqNum(SND), SeqNum(SND + 100), SeqNum(SND + 100))
        );
        assert_eq!(sc.conn.send_queued(), 100);
        assert_eq!(sc.conn.readable_bytes(), 0);
        assert_eq!(sc.conn.info().drops, drops + 1);
        assert_eq!(sc.conn.poll_timeout(), rto_deadline, "the RTO is not touched");
    }
    // Exactly SND.NXT is acceptable.
    sc.deliver(Seg::ack(RCV, SND + 100).data(b"abc"));
    expect_ack(&mut sc, SND + 100, RCV + 3);
    assert_eq!(sc.conn.seq_vars().snd_una, SeqNum(SND + 100));
    assert_eq!(sc.conn.send_queued(), 0);
    assert_eq!(sc.read_all(), b"abc");
}

#[test]
fn sec_03_ack_older_than_snd_una_minus_max_snd_wnd_is_dropped() {
    let mut sc = est();
    let v = sc.conn.seq_vars();
    assert_eq!((v.snd_una, v.snd_wnd, v.max_snd_wnd), (SeqNum(SND), WND, WND));
    let oldest = SND.wrapping_sub(WND); // SND.UNA - MAX.SND.WND
                                        // One older: dropped with an ACK; neither its data nor its window is taken.
    sc.deliver(Seg::ack(RCV, oldest.wrapping_sub(1)).data(b"x").window(10));
    expect_ack(&mut sc, SND, RCV);
    assert_eq!(sc.conn.readable_bytes(), 0);
    assert_eq!(sc.conn.seq_vars().snd_wnd, WND);
    // Far in the past (but "before" in wrapping order): likewise.
    sc.deliver(Seg::ack(RCV, SND.wrapping_sub(1 << 30)).data(b"x"));
    expect_ack(&mut sc, SND, RCV);
    assert_eq!(sc.conn.readable_bytes(), 0);
    // The oldest acceptable ACK: the segment is processed (an old duplicate ACK).
    sc.deliver(Seg::ack(RCV, oldest).data(b"y"));
    expect_ack(&mut sc, SND, RCV + 1);
    assert_eq!(sc.read_all(), b"y");
    assert_eq!(sc.conn.seq_vars().snd_una, SeqNum(SND));
}

// ---- SEC-04: ACK loops ------------------------------------------------------------------------

#[test]
fn sec_04_acks_for_out_of_window_segments_without_data_are_rate_limited() {
    let mut sc = est();
    sc.advance(secs(1));
    // An out-of-window pure ACK (as a desynchronized peer sends) is answered once...
    sc.deliver(Seg::ack(RCV - 100, SND));
    expect_ack(&mut sc, SND, RCV);
    // ...and then not again within 500 ms (Linux tcp_invalid_ratelimit), which ends ACK loops.
    sc.deliver(Seg::ack(RCV + WND + 5, SND));
    sc.expect_none();
    sc.advance(ms(499));
    sc.deliver(Seg::ack(RCV - 100, SND));
    sc.expect_none();
    // Out-of-window segments that carry data (or a FIN) are always answered: the sender needs
    // duplicate ACKs to recover.
    sc.deliver(Seg::ack(RCV - 100, SND).data(b"old"));
    expect_ack(&mut sc, SND, RCV);
    sc.deliver(Seg::ack(RCV - 1, SND).fin());
    expect_ack(&mut sc, SND, RCV);
    sc.advance(ms(1));
    sc.deliver(Seg::ack(RCV - 100, SND));
    expect_ack(&mut sc, SND, RCV);
    assert_eq!(sc.conn.info().drops, 6);
    assert_eq!(sc.conn.state(), State::Established);
}

// ---- SEC-06: urgent data ---------------------------------------------------------------------

#[test]
fn sec_06_urgent_data_is_delivered_inline() {
    let mut sc = est();
    let urg = TcpFlags::URG | TcpFlags::ACK;
    // Pointer inside the segment.
    deliver_urgent(&mut sc, urg, RCV, 2, b"abc");
    expect_ack(&mut sc, SND, RCV + 3);
    // Pointer far beyond the segment, and the largest value.
    deliver_urgent(&mut sc, urg | TcpFlags::PSH, RCV + 3, 0xffff, b"defg");
    expect_ack(&mut sc, SND, RCV + 7);
    // Pointer 0 (RFC 6093: the urgent byte would be "before" the segment).
    deliver_urgent(&mut sc, urg, RCV + 7, 0, b"h");
    expect_ack(&mut sc, SND, RCV + 8);
    assert_eq!(sc.read_all(), b"abcdefgh", "no byte is taken out of band");
    // No payload at all, with a pointer: an ordinary ACK, nothing to answer.
    deliver_urgent(&mut sc, urg, RCV + 8, 500, b"");
    sc.expect_none();
    // An urgent pointer without the URG flag is ignored the same way.
    deliver_urgent(&mut sc, TcpFlags::ACK, RCV + 8, 1, b"i");
    expect_ack(&mut sc, SND, RCV + 9);
    assert_eq!(sc.read_all(), b"i");
    assert_eq!(sc.conn.state(), State::Established);
    assert_eq!(sc.conn.info().bytes_received, 9);
}

#[test]
fn sec_06_urgent_pointer_never_disturbs_reassembly_fin_or_handshake() {
    let mut sc = est();
    let urg = TcpFlags::URG | TcpFlags::ACK;
    // Out of order with a pointer into the hole, then the hole filled with another pointer.
    deliver_urgent(&mut sc, urg, RCV + 4, 0xfff0, b"5678");
    expect_ack(&mut sc, SND, RCV);
    deliver_urgent(&mut sc, urg, RCV, 1, b"1234");
    expect_ack(&mut sc, SND, RCV + 8);
    assert_eq!(sc.read_all(), b"12345678");
    // URG without ACK: dropped at the fifth step like any segment without ACK.
    deliver_urgent(&mut sc, TcpFlags::URG, RCV + 8, 3, b"no");
    sc.expect_none();
    assert_eq!(sc.conn.readable_bytes(), 0);
    // URG with FIN and a pointer past the FIN.
    deliver_urgent(&mut sc, urg | TcpFlags::FIN, RCV + 8, 0x8000, b"end");
    sc.expect_none(); // the ACK of data and FIN is delayed (CLOSE-WAIT, as Linux)
    let out = sc.advance(ms(40));
    assert_eq!(out.len(), 1, "{out:#?}");
    out[0].assert_flags(TcpFlags::ACK).assert_seq_ack(SND, RCV + 12);
    assert_eq!(sc.read_all(), b"end");
    assert_eq!(sc.conn.state(), State::CloseWait);

    // URG on the SYN-ACK.
    let mut sc = Sc::client(Sc::plain());
    let repr = TcpRepr {
        src_port: PEER.port(),
        dst_port: US.port(),
        seq: SeqNum(PEER_ISS),
        ack: SeqNum(SND),
        flags: TcpFlags::SYN | TcpFlags::ACK | TcpFlags::URG,
        window: 1000,
        urgent: 0xffff,
        ..TcpRepr::default()
    };
    let mut buf = [0u8; 128];
    let n = wire::emit(&mut buf, PEER.ip(), US.ip(), &repr, [&[], &[]]).unwrap();
    sc.conn.handle_segment(sc.now, &wire::parse(&buf[..n]).unwrap());
    expect_ack(&mut sc, SND, RCV);
    assert_eq!(sc.conn.state(), State::Established);
}

// ---- SEC-05: bounded memory ------------------------------------------------------------------

#[test]
fn sec_05_out_of_order_holes_never_exceed_max_ooo_ranges() {
    let mut sc = est_with(|c| {
        c.max_ooo_ranges = 4;
        c.recv_buffer = 16_384;
    });
    assert_eq!(sc.conn.info().rcv_wnd, 16_384);
    // 50 ten-byte islands with a ten-byte hole before each.
    for k in 1..=50 {
        sc.deliver(Seg::ack(RCV + 20 * k, SND).data(&[k as u8; 10]));
        expect_ack(&mut sc, SND, RCV); // duplicate ACK at once (RFC 5681 §4.2)
        assert_eq!(sc.conn.info().ooo_ranges, (k as usize).min(4), "after island {k}");
    }
    let i = sc.conn.info();
    assert_eq!((i.ooo_ranges, i.ooo_dropped), (4, 46));
    assert_eq!(sc.conn.readable_bytes(), 0);
    // Filling the first hole merges the first island and frees its slot.
    sc.deliver(Seg::ack(RCV, SND).data(&[0; 20]));
    expect_ack(&mut sc, SND, RCV + 30);
    assert_eq!(sc.conn.info().ooo_ranges, 3);
    sc.deliver(Seg::ack(RCV + 2000, SND).data(b"island"));
    expect_ack(&mut sc, SND, RCV + 30);
    assert_eq!(sc.conn.info().ooo_ranges, 4);
    // With every slot taken the next in-order segment is still accepted (it needs no slot).
    sc.deliver(Seg::ack(RCV + 30, SND).data(b"12345"));
    expect_ack(&mut sc, SND, RCV + 35);
    let mut expected = vec![0u8; 20];
    expected.extend_from_slice(&[1; 10]);
    expected.extend_from_slice(b"12345");
    assert_eq!(sc.read_all(), expected);
    assert_eq!(sc.conn.info().ooo_ranges, 4);
}

/// SEC-05: by default the out-of-order ranges are bounded by the receive buffer, as Linux
/// bounds its out-of-order queue by `sk_rcvbuf`: one range per KiB the buffer may hold (a
/// 64 KiB buffer and its eighth of slack: 72), so a peer sending ten-byte islands with
/// holes between them is held there, while a sender of full-sized segments never runs out.
#[test]
fn sec_05_default_out_of_order_holes_are_bounded_by_the_receive_buffer() {
    let mut sc = est_with(|c| {
        c.recv_buffer = 64 * 1024;
        c.max_recv_buffer = 64 * 1024;
    });
    for k in 1..=100u32 {
        sc.deliver(Seg::ack(RCV + 20 * k, SND).data(&[k as u8; 10]));
        expect_ack(&mut sc, SND, RCV);
    }
    let i = sc.conn.info();
    assert_eq!((i.ooo_ranges, i.ooo_dropped), (72, 28));
    // The in-order segment is accepted and merges the first island.
    sc.deliver(Seg::ack(RCV, SND).data(&[0; 20]));
    expect_ack(&mut sc, SND, RCV + 30);
    assert_eq!(sc.conn.info().ooo_ranges, 71);
}

#[test]
fn sec_05_received_bytes_never_exceed_recv_buffer() {
    let mut sc = est_with(|c| c.recv_buffer = 4096);
    assert_eq!(sc.conn.info().rcv_wnd, 4096);
    // Everything but the first byte, in 1000-byte pieces, well past the window.
    for k in 0..6u32 {
        sc.deliver(Seg::ack(RCV + 1 + 1000 * k, SND).data(&[b'b' + k as u8; 1000]));
        expect_ack(&mut sc, SND, RCV);
        let v = sc.conn.seq_vars();
        assert!(v.recv_buffered <= v.recv_capacity);
    }
    assert_eq!(sc.conn.info().ooo_ranges, 1, "adjacent pieces merge");
    // The first byte completes exactly the 4096 bytes the buffer holds; the window closes.
    sc.deliver(Seg::ack(RCV, SND).data(b"a"));
    let out = expect_ack(&mut sc, SND, RCV + 4096);
    assert_eq!(out.tcp.window, 0);
    assert_eq!(sc.conn.readable_bytes(), 4096);
    assert_eq!(sc.conn.info().ooo_ranges, 0);
    // More data is refused while the application does not read.
    sc.deliver(Seg::ack(RCV + 4096, SND).data(&[b'z'; 500]));
    assert_eq!(expect_ack(&mut sc, SND, RCV + 4096).tcp.window, 0);
    assert_eq!(sc.conn.readable_bytes(), 4096);
    let got = sc.read_all();
    assert_eq!(got.len(), 4096);
    assert_eq!(
        (got[0], got[1], got[1000], got[1001], got[4001], got[4095]),
        (b'a', b'b', b'b', b'c', b'f', b'f')
    );
    // Reading reopens the window (receiver SWS avoidance lets the whole buffer through).
    let upd = expect_ack(&mut sc, SND, RCV + 4096);
    assert_eq!(upd.tcp.window, 4096);
}

/// A hostile peer's mix against one connection, with an application that reads and writes.
/// Returns nothing; everything it touches is preallocated so it can run under the counter.
struct Flood {
    rng: Rng,
    pkt: Vec<u8>,
    out: Vec<u8>,
    rbuf: Vec<u8>,
    payload: Vec<u8>,
}

impl Flood {
    fn step(&mut self, sc: &mut Sc) {
        let v = sc.conn.seq_vars();
        let r = &mut self.rng;
        let (rcv, una, max) = (v.rcv_nxt, v.snd_una, v.snd_max);
        let mut flags = TcpFlags::ACK;
        let mut ack = max;
        let mut len = 0usize;
        let seq = match r.below(9) {
            // Out-of-order islands anywhere in (and beyond) the window.
            0 | 1 => {
                len = 1 + r.below(200) as usize;
                rcv + 1 + r.below(2 * 8192) as u32
            }
            // In order.
            2 => {
                len = r.below(1400) as usize;
                rcv
            }
            // Blind in-window RST (never exact).
            3 => {
                flags = TcpFlags::RST;
                rcv + 1 + r.below(8000) as u32
            }
            // Blind SYN.
            4 => {
                flags = TcpFlags::SYN;
                SeqNum(r.next_u32())
            }
            // ACK of data never sent, or older than SND.UNA - MAX.SND.WND.
            5 => {
                ack = if r.chance(0.5) { max + 1 + r.below(1 << 20) as u32 } else { una - 70_000 };
                len = r.below(100) as usize;
                rcv
            }
            // Urgent data with any pointer.
            6 => {
                flags = TcpFlags::ACK | TcpFlags::URG;
                len = r.below(300) as usize;
                rcv + r.below(3) as u32
            }
            // The application reads some and writes some.
            7 => {
                let n = r.below(4096) as usize;
                let _ = sc.conn.read(&mut self.rbuf[..n]);
                let n = r.below(3000) as usize;
                let _ = sc.conn.write(&self.payload[..n]);
                return;
            }
            // Time passes; timers run.
            _ => {
                sc.now += Duration::from_micros(r.below(50_000));
                if sc.conn.poll_timeout().is_some_and(|t| t <= sc.now) {
                    sc.conn.handle_timeout(sc.now);
                }
                return;
            }
        };
        let repr = TcpRepr {
            src_port: PEER.port(),
            dst_port: US.port(),
            seq,
            ack,
            flags,
            window: r.below(65_536) as u16,
            urgent: r.next_u32() as u16,
            ..TcpRepr::default()
        };
        let n = wire::emit(&mut self.pkt, PEER.ip(), US.ip(), &repr, [&self.payload[..len], &[]])
            .unwrap();
        let seg = wire::parse(&self.pkt[..n]).unwrap();
        sc.conn.handle_segment(sc.now, &seg);
        while sc.conn.poll_transmit(sc.now, &mut self.out).is_some() {}
    }
}

#[test]
fn sec_05_connection_heap_use_is_fixed_after_creation() {
    let mut sc = est_with(|c| {
        c.recv_buffer = 8192;
        c.max_recv_buffer = 8192; // no auto-tuning: its growth steps allocate (O(log) times)
        c.send_buffer = 8192;
        c.max_send_buffer = 8192; // likewise
        c.max_ooo_ranges = 8;
        c.nodelay = true;
    });
    let mut f = Flood {
        rng: Rng::new(5961),
        pkt: vec![0; 2048],
        out: vec![0; 65_600],
        rbuf: vec![0; 4096],
        payload: (0..3000).map(|i| i as u8).collect(),
    };
    // Warm-up (first-use initialisation in dependencies, e.g. tracing callsites).
    for _ in 0..2_000 {
        f.step(&mut sc);
    }
    let probe = allocs();
    drop(std::hint::black_box(vec![1u8; 64]));
    assert!(allocs() > probe, "the counting allocator is in place");
    let before = allocs();
    let mut segs = 0;
    for _ in 0..30_000 {
        f.step(&mut sc);
        let (v, i) = (sc.conn.seq_vars(), sc.conn.info());
        assert!(i.ooo_ranges <= 8 && v.recv_buffered <= 8192 && v.send_buffered <= 8192);
        segs = i.segs_in;
    }
    let during = allocs() - before;
    assert_eq!(during, 0, "{during} allocations while handling hostile input");
    assert_eq!(sc.conn.state(), State::Established);
    let i = sc.conn.info();
    assert!(segs > 20_000 && i.challenge_acks > 0 && i.ooo_dropped > 0, "{i:?}");
    assert!(i.bytes_received > 100_000 && i.bytes_acked > 0, "{i:?}");
}
