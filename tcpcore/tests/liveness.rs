//! Liveness and failures: keepalive (RFC 9293 §3.8.4, KA-01), a dead peer with data
//! outstanding (RFC 9293 §3.8.3, RFC 5482, KA-02), resets (FA-02) and a graceful close with
//! queued data (FA-03).
mod common;
use common::*;
use std::time::Duration;
use tcpcore::wire::TcpFlags;
use tcpcore::{ConnConfig, ConnectionError, Event, Instant, ReadError, State, WriteError};

/// `Sc::established` finishes its handshake at 10 ms.
const T0: u64 = 10;

/// A keepalive probe: `<SEQ=SND.UNA-1><ACK=RCV.NXT><CTL=ACK>`, no data, at `when`.
#[track_caller]
fn assert_probe(out: &[Out], una: u32, rcv_nxt: u32, when: Instant) {
    assert_eq!(out.len(), 1, "one probe at {when}: {out:#?}");
    out[0].assert_flags(TcpFlags::ACK).assert_seq_ack(una - 1, rcv_nxt);
    assert_eq!(out[0].len(), 0);
    assert_eq!(out[0].at, when);
}

/// The connection failed with `error`: state, error, events and the application calls.
#[track_caller]
fn assert_failed(sc: &mut Sc, error: ConnectionError) {
    assert_eq!(sc.conn.state(), State::Closed);
    assert_eq!(sc.conn.error(), Some(error));
    assert_eq!(sc.events().last(), Some(&Event::Closed(Some(error))));
    let mut b = [0u8; 16];
    assert_eq!(sc.conn.read(&mut b), Err(ReadError::Failed(error)));
    assert_eq!(sc.conn.write(b"x"), Err(WriteError::Failed(error)));
    assert_eq!(sc.conn.poll_timeout(), None, "every timer stopped");
    assert!(sc.conn.is_drained());
}

fn keepalive_cfg() -> ConnConfig {
    ConnConfig { keepalive: true, ..Sc::plain() }
}

// ---- KA-01: keepalive -----------------------------------------------------------------------

#[test]
fn ka_01_probes_after_idle_then_every_interval_then_timed_out() {
    let mut sc = Sc::established(keepalive_cfg());
    // First probe after exactly 7200 s without hearing from the peer, then every 75 s.
    for k in 0..9u64 {
        let out = sc.next_timer();
        assert_probe(&out, D, P, at(T0 + 7_200_000 + 75_000 * k));
    }
    assert_eq!(sc.conn.info().probes_out, 9);
    // Nine unanswered probes: at the tenth interval the connection fails (tcp_keepalive_probes).
    let out = sc.next_timer();
    assert!(out.is_empty(), "{out:#?}");
    assert_eq!(sc.now, at(T0 + 7_200_000 + 75_000 * 9));
    assert_failed(&mut sc, ConnectionError::TimedOut);
}

#[test]
fn ka_01_answer_resets_the_keepalive() {
    let mut sc = Sc::established(keepalive_cfg());
    assert_probe(&sc.next_timer(), D, P, at(T0 + 7_200_000));
    assert_probe(&sc.next_timer(), D, P, at(T0 + 7_275_000));
    // The peer answers the second probe 20 ms later: idle again from here.
    sc.advance(ms(20));
    sc.deliver(Seg::ack(P, D));
    sc.expect_none();
    let answered = T0 + 7_275_020;
    for k in 0..9u64 {
        assert_probe(&sc.next_timer(), D, P, at(answered + 7_200_000 + 75_000 * k));
    }
    assert!(sc.next_timer().is_empty());
    assert_failed(&mut sc, ConnectionError::TimedOut);
}

#[test]
fn ka_01_data_from_peer_restarts_idle_time() {
    let mut sc = Sc::established(keepalive_cfg());
    sc.advance(secs(1000));
    sc.deliver(Seg::ack(P, D).data(b"hello"));
    sc.expect_one().assert_seq_ack(D, P + 5);
    assert_eq!(sc.read_all(), b"hello");
    // Our own sending does not count as activity; only what the peer sends does.
    sc.conn.write(b"hi").unwrap();
    let out = sc.expect_one();
    out.assert_flags(TcpFlags::ACK).assert_seq_ack(D, P + 5);
    assert_eq!(out.len(), 2);
    sc.advance(ms(30));
    sc.deliver(Seg::ack(P + 5, D + 2));
    let heard = T0 + 1_000_030;
    // The buffers are given back after a quiet RTO (MEM-02); the probe comes next.
    assert!(sc.next_timer().is_empty());
    assert_eq!(sc.conn.buffer_bytes(), 0);
    assert_probe(&sc.next_timer(), D + 2, P + 5, at(heard + 7_200_000));
}

#[test]
fn ka_01_set_keepalive_enables_and_disables() {
    let mut sc = Sc::established(Sc::plain());
    // Off by default: nothing after the idle time.
    let mut off = Sc::established(Sc::plain());
    assert!(off.advance(secs(20_000)).is_empty());
    assert_eq!(off.conn.state(), State::Established);

    sc.conn.set_keepalive(true);
    sc.expect_none();
    assert_probe(&sc.next_timer(), D, P, at(T0 + 7_200_000));
    sc.conn.set_keepalive(false);
    sc.expect_none();
    assert_eq!(sc.conn.poll_timeout(), None);
    assert!(sc.advance(secs(20_000)).is_empty());
    assert_eq!(sc.conn.state(), State::Established);
}

// ---- KA-02: dead peer with data outstanding --------------------------------------------------

#[test]
fn ka_02_dead_peer_times_out_after_data_retries() {
    let mut sc = Sc::established(Sc::plain()); // RTO 200 ms
    sc.conn.write(&bytes(0, 100)).unwrap();
    assert_data(&sc.expect_one(), D, 100);
    // data_retries = 15 retransmissions of the same segment, backing off from 200 ms to the
    // 120 s maximum.
    let mut when = T0;
    for k in 0..15 {
        when += (200u64 << k).min(120_000);
        let out = sc.next_timer();
        assert_eq!(out.len(), 1, "retransmission {k}");
        assert_data(&out[0], D, 100);
        assert_eq!(out[0].at, at(when), "retransmission {k}");
    }
    // The sixteenth expiry gives up: 924.6 s after the first send, as Linux with
    // tcp_retries2 = 15.
    let out = sc.next_timer();
    assert!(out.is_empty(), "no RST to a dead peer: {out:#?}");
    assert_eq!(sc.now, at(T0 + 924_600));
    let info = sc.conn.info();
    assert_eq!((info.retransmits, info.timeouts), (15, 15));
    assert_failed(&mut sc, ConnectionError::TimedOut);
}

#[test]
fn ka_02_data_retries_configurable() {
    let cfg = ConnConfig { data_retries: 3, ..Sc::plain() };
    let mut sc = Sc::established(cfg);
    sc.conn.write(&bytes(0, 100)).unwrap();
    sc.expect_one();
    let out = sc.advance(secs(10));
    let times: Vec<Instant> = out.iter().map(|o| o.at).collect();
    assert_eq!(times, [at(210), at(610), at(1410)]);
    assert_eq!(sc.conn.state(), State::Closed);
    assert_failed(&mut sc, ConnectionError::TimedOut);
}

#[test]
fn ka_02_user_timeout_aborts_at_exactly_the_configured_time() {
    let cfg = ConnConfig { user_timeout: Some(secs(5)), ..Sc::plain() };
    let mut sc = Sc::established(cfg);
    sc.conn.write(&bytes(0, 100)).unwrap();
    sc.expect_one();
    let out = sc.advance(secs(60));
    // Retransmissions at +0.2, +0.6, +1.4, +3.0 s; the next would be +6.2 s, but the user
    // timeout (RFC 5482) fires at +5 s.
    let times: Vec<Instant> = out.iter().map(|o| o.at).collect();
    assert_eq!(times, [at(210), at(610), at(1410), at(3010)]);
    assert_eq!(sc.log.last().unwrap().at, at(3010));
    assert_failed(&mut sc, ConnectionError::TimedOut);
    // It closed at exactly 5 s after the data was sent: run again to pin the instant.
    let cfg = ConnConfig { user_timeout: Some(secs(5)), ..Sc::plain() };
    let mut sc = Sc::established(cfg);
    sc.conn.write(&bytes(0, 100)).unwrap();
    sc.expect_one();
    sc.advance(Duration::from_millis(4_999));
    assert_eq!(sc.conn.state(), State::Established);
    sc.advance(ms(1));
    assert_eq!(sc.now, at(T0 + 5_000));
    assert_eq!(sc.conn.error(), Some(ConnectionError::TimedOut));
}

#[test]
fn ka_02_set_user_timeout_at_runtime() {
    let mut sc = Sc::established(Sc::plain());
    sc.conn.set_user_timeout(Some(secs(1)));
    sc.conn.write(&bytes(0, 100)).unwrap();
    sc.expect_one();
    assert_eq!(sc.next_timer().len(), 1); // +0.2 s
    assert_eq!(sc.next_timer().len(), 1); // +0.6 s
    assert!(sc.next_timer().is_empty());
    assert_eq!(sc.now, at(T0 + 1_000));
    assert_failed(&mut sc, ConnectionError::TimedOut);
}

#[test]
fn ka_02_progress_restarts_the_user_timeout() {
    let cfg = ConnConfig { user_timeout: Some(secs(1)), ..Sc::plain() };
    let mut sc = Sc::established(cfg);
    sc.conn.write(&bytes(0, 2 * MSS as usize)).unwrap();
    assert_eq!(sc.output().len(), 2);
    // Half the data is ACKed at 0.9 s: the rest may stay unacknowledged for another second.
    sc.advance(ms(900));
    sc.deliver(Seg::ack(P, D + MSS));
    sc.advance(ms(999));
    assert_eq!(sc.conn.state(), State::Established);
    sc.advance(ms(1));
    assert_eq!(sc.conn.error(), Some(ConnectionError::TimedOut));
    assert_eq!(sc.now, at(T0 + 1_900));
}

// ---- FA-02: after a reset ---------------------------------------------------------------------

/// FA-02: after a RST in ESTABLISHED the data received before it is still read, then the
/// reset is reported once (`ECONNRESET`), then reads return end of stream; writes fail with
/// `Failed(Reset)` (`EPIPE`). As Linux: `tcp_reset` flushes only the write queue and
/// `tcp_recvmsg` returns the receive queue before `sk_err`, which it reports once (RFC 9293
/// §3.10.7.4 would flush every queue).
#[test]
fn fa_02_reset_in_established_reads_data_then_reset_once_then_eof() {
    let mut sc = Sc::established(Sc::plain());
    sc.conn.write(&bytes(0, 100)).unwrap();
    sc.expect_one();
    sc.deliver(Seg::ack(P, D).data(&bytes(0, 50)));
    sc.expect_one().assert_seq_ack(D + 100, P + 50);
    sc.events();
    // RST exactly at RCV.NXT (RFC 5961 §3.2).
    sc.deliver(Seg::rst(P + 50));
    sc.expect_none(); // never a RST in reply to a RST
    assert_eq!(sc.conn.info().resets_in, 1);
    assert_eq!(sc.conn.state(), State::Closed);
    assert_eq!(sc.conn.error(), Some(ConnectionError::Reset));
    assert!(sc.conn.has_pending_error());
    assert_eq!(sc.events().last(), Some(&Event::Closed(Some(ConnectionError::Reset))));
    assert_eq!(sc.conn.poll_timeout(), None, "every timer stopped");
    assert!(sc.conn.is_drained(), "an active open is its owner's: drained at once");
    // FA-02: the 50 bytes first, then ECONNRESET once, then end of stream.
    assert_eq!(sc.conn.readable_bytes(), 50);
    let mut b = [0u8; 64];
    assert_eq!(sc.conn.read(&mut b), Ok(50));
    assert_eq!(&b[..50], &bytes(0, 50)[..]);
    assert_eq!(sc.conn.read(&mut b), Err(ReadError::Failed(ConnectionError::Reset)));
    assert!(!sc.conn.has_pending_error());
    assert_eq!(sc.conn.read(&mut b), Ok(0));
    assert_eq!(sc.conn.read(&mut b), Ok(0));
    assert_eq!(sc.conn.write(b"x"), Err(WriteError::Failed(ConnectionError::Reset)));
    assert_eq!(sc.conn.writable_bytes(), 0);

    // Nothing the application or the network does afterwards panics or sends anything.
    sc.conn.shutdown_write();
    sc.conn.close();
    sc.conn.abort();
    sc.conn.set_keepalive(true);
    sc.conn.set_nodelay(true);
    sc.conn.read_with(|_| 0);
    sc.deliver(Seg::ack(P + 50, D + 100).data(b"late"));
    sc.deliver(Seg::rst(P + 50));
    sc.deliver(Seg::syn(PEER_ISS + 9));
    sc.conn.handle_timeout(sc.now + secs(1000));
    sc.expect_none();
    assert!(sc.advance(secs(1000)).is_empty());
    assert_eq!(sc.conn.error(), Some(ConnectionError::Reset));
    assert_eq!(sc.conn.write(b"x"), Err(WriteError::Failed(ConnectionError::Reset)));
}

/// FA-02: the reset is reported once, to whichever call comes first (Linux `sk_err`): a
/// write after the RST reports it, and reads then return the data and end of stream; a
/// close with that data unread sends nothing (the connection is already closed) and frees it.
#[test]
fn fa_02_reset_reported_once_write_first_then_data_then_eof() {
    let mut sc = Sc::established(Sc::plain());
    sc.deliver(Seg::ack(P, D).data(&bytes(0, 30)));
    sc.expect_one();
    sc.deliver(Seg::rst(P + 30));
    assert_eq!(sc.conn.write(b"x"), Err(WriteError::Failed(ConnectionError::Reset)));
    assert!(!sc.conn.has_pending_error());
    let mut b = [0u8; 16];
    assert_eq!(sc.conn.read(&mut b), Ok(16));
    assert_eq!(sc.conn.read(&mut b), Ok(14));
    assert_eq!(sc.conn.read(&mut b), Ok(0), "reported by the write already");
    // Close with unread data after a reset: no RST (nothing to reset), buffers freed.
    let mut sc = Sc::established(Sc::plain());
    sc.deliver(Seg::ack(P, D).data(&bytes(0, 30)));
    sc.expect_one();
    sc.deliver(Seg::rst(P + 30));
    assert_eq!(sc.conn.take_error(), Some(ConnectionError::Reset));
    assert_eq!(sc.conn.take_error(), None);
    sc.conn.close();
    sc.expect_none();
    assert_eq!(sc.conn.readable_bytes(), 0);
    assert_eq!(sc.conn.buffer_bytes(), 0, "unread data freed on close");
    assert!(sc.conn.is_drained());
}

/// FA-02: a RST after the peer's FIN (CLOSE-WAIT): reads return the data, then end of stream
/// (Linux `tcp_recvmsg` checks `SOCK_DONE` before `sk_err`).
#[test]
fn fa_02_reset_after_fin_reads_data_then_eof() {
    let mut sc = Sc::established(Sc::plain());
    sc.deliver(Seg::ack(P, D).data(&bytes(0, 10)).fin());
    assert_eq!(sc.conn.state(), State::CloseWait);
    sc.deliver(Seg::rst(P + 11));
    assert_eq!(sc.conn.state(), State::Closed);
    let mut b = [0u8; 16];
    assert_eq!(sc.conn.read(&mut b), Ok(10));
    assert_eq!(sc.conn.read(&mut b), Ok(0));
}

// ---- FA-03: graceful close after queued data --------------------------------------------------

#[test]
fn fa_03_shutdown_write_sends_queued_data_then_fin() {
    let mut sc = Sc::established(Sc::plain());
    sc.conn.write(&bytes(0, 3000)).unwrap();
    sc.conn.shutdown_write();
    assert_eq!(sc.conn.state(), State::FinWait1);
    assert_eq!(sc.conn.write(b"x"), Err(WriteError::Closed));
    let out = sc.output();
    assert_eq!(out.len(), 3, "{out:#?}");
    assert_data(&out[0], D, 1460);
    assert_data(&out[1], D + MSS, 1460);
    // The FIN rides on the last data segment: FIN seq = ISS + 1 + 3000.
    out[2].assert_flags(TcpFlags::ACK | TcpFlags::FIN).assert_seq_ack(D + 2 * MSS, P);
    assert_eq!(out[2].len(), 80);
    assert!(!out[0].has(TcpFlags::FIN) && !out[1].has(TcpFlags::FIN));
    // The data ACKed but not the FIN: still FIN-WAIT-1, nothing more to send.
    sc.deliver(Seg::ack(P, D + 3000));
    sc.expect_none();
    assert_eq!(sc.conn.state(), State::FinWait1);
    assert_eq!(sc.conn.send_queued(), 0);
    // The FIN is what the retransmission timer now guards: resent alone at the same seq.
    let rtx = sc.next_timer();
    assert_eq!(rtx.len(), 1);
    rtx[0].assert_flags(TcpFlags::ACK | TcpFlags::FIN).assert_seq_ack(D + 3000, P);
    assert_eq!(rtx[0].len(), 0);
}

#[test]
fn fa_03_close_with_more_than_a_window_queued() {
    let mut sc = Sc::established(Sc::plain());
    sc.conn.write(&bytes(0, 20_000)).unwrap();
    sc.conn.close();
    // cwnd allows 10 segments; the FIN waits behind the rest of the data.
    let first = sc.output();
    assert_eq!(first.len(), 10);
    assert!(first.iter().all(|o| !o.has(TcpFlags::FIN)));
    assert_eq!(sc.conn.state(), State::FinWait1);
    sc.advance(ms(10));
    sc.deliver(Seg::ack(P, D + 10 * MSS));
    let rest = sc.output();
    assert_eq!(rest.len(), 4, "{rest:#?}");
    for (i, s) in rest[..3].iter().enumerate() {
        assert_data(s, D + (10 + i as u32) * MSS, MSS as usize);
    }
    rest[3].assert_flags(TcpFlags::ACK | TcpFlags::FIN).assert_seq_ack(D + 13 * MSS, P);
    assert_eq!(rest[3].len(), 20_000 - 13 * MSS as usize);
    let fin_seq = rest[3].seq() + rest[3].len() as u32;
    assert_eq!(fin_seq, ISS + 1 + 20_000);
    // Everything, FIN included, acknowledged: nothing left to send or to retransmit.
    sc.advance(ms(10));
    sc.deliver(Seg::ack(P, fin_seq + 1));
    sc.expect_none();
    assert_eq!(sc.conn.send_queued(), 0);
    let v = sc.conn.seq_vars();
    assert_eq!((v.snd_una, v.snd_max), (v.snd_max, tcpcore::wire::SeqNum(fin_seq + 1)));
    assert_eq!(sc.conn.info().retransmits, 0);
    assert_eq!(sc.conn.state(), State::FinWait2);
}
