//! Closing behaviours CL-01..CL-11 (RFC 9293 §3.6, §3.10.4, §3.10.5, §3.10.7.4), scenario by
//! scenario with exact sequence numbers and exact virtual times.
//!
//! Every scenario starts from `Sc::established(Sc::plain())`: our SND.NXT is `ISS + 1`, the
//! peer's is `PEER_ISS + 1`, now is 10 ms and the measured RTT 10 ms, so the RTO is the
//! 200 ms minimum (srtt 10 ms + 4 × 5 ms, clamped).
mod common;

use common::*;
use tcpcore::wire::TcpFlags;
use tcpcore::{ConnConfig, ConnectionError, Event, Instant, ReadError, State, WriteError};

const FIN_ACK: TcpFlags = TcpFlags(TcpFlags::FIN.0 | TcpFlags::ACK.0);

fn at_ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

/// Established, then our FIN sent by `shutdown_write` at 10 ms: FIN-WAIT-1.
#[track_caller]
fn fin_wait_1() -> Sc {
    let mut sc = Sc::established(Sc::plain());
    sc.conn.shutdown_write();
    assert_eq!(sc.conn.state(), State::FinWait1);
    let fin = sc.expect_one();
    fin.assert_flags(FIN_ACK).assert_seq_ack(ISS + 1, PEER_ISS + 1);
    assert_eq!((fin.at, fin.len()), (at_ms(10), 0));
    sc
}

/// FIN-WAIT-1, then the peer's ACK of our FIN at 20 ms: FIN-WAIT-2.
#[track_caller]
fn fin_wait_2() -> Sc {
    let mut sc = fin_wait_1();
    sc.advance(ms(10));
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 2));
    assert_eq!(sc.conn.state(), State::FinWait2);
    sc.expect_none();
    sc
}

/// FIN-WAIT-2, then the peer's FIN at 30 ms: TIME-WAIT (our ACK taken from the output).
#[track_caller]
fn time_wait() -> Sc {
    let mut sc = fin_wait_2();
    sc.advance(ms(10));
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 2).fin());
    assert_eq!(sc.conn.state(), State::TimeWait);
    sc.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 2, PEER_ISS + 2);
    sc
}

/// Established, then the peer's FIN at 20 ms: CLOSE-WAIT (our ACK taken, events drained).
#[track_caller]
fn close_wait(cfg: ConnConfig) -> Sc {
    let mut sc = Sc::established(cfg);
    sc.advance(ms(10));
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 1).fin());
    assert_eq!(sc.conn.state(), State::CloseWait);
    // No data came before the FIN: as Linux (its ACK timeout is still 0), ACKed at once.
    let ack = sc.expect_one();
    ack.assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 1, PEER_ISS + 2);
    assert_eq!(ack.at, at_ms(20));
    assert_eq!(sc.events(), vec![Event::Readable, Event::PeerFinished]);
    sc
}

// ---- CL-01 -------------------------------------------------------------------------------

#[test]
fn cl_01_active_close_through_fin_wait_and_time_wait() {
    let mut sc = fin_wait_1();
    // The FIN consumes one sequence number.
    let v = sc.conn.seq_vars();
    assert_eq!((v.snd_una.0, v.snd_nxt.0), (ISS + 1, ISS + 2));
    assert_eq!(sc.conn.write(b"x"), Err(WriteError::Closed));
    assert_eq!(sc.conn.poll_timeout(), Some(at_ms(210)), "the FIN is timed");
    sc.advance(ms(10));
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 2));
    assert_eq!(sc.conn.state(), State::FinWait2);
    assert_eq!(sc.conn.poll_timeout(), None, "not orphaned: FIN-WAIT-2 waits for the peer");
    assert_eq!(sc.events(), vec![]);
    // The peer may still send data in FIN-WAIT-2.
    sc.advance(ms(10));
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 2).data(b"bye"));
    sc.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 2, PEER_ISS + 4);
    assert_eq!(sc.read_all(), b"bye");
    sc.advance(ms(10));
    sc.deliver(Seg::ack(PEER_ISS + 4, ISS + 2).fin());
    assert_eq!(sc.conn.state(), State::TimeWait);
    let ack = sc.expect_one();
    ack.assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 2, PEER_ISS + 5);
    assert_eq!(ack.at, at_ms(40));
    assert_eq!(sc.events(), vec![Event::Readable, Event::PeerFinished]);
    let mut b = [0u8; 4];
    assert_eq!(sc.conn.read(&mut b), Ok(0), "EOF");
    // TIME-WAIT lasts exactly 2 MSL = 60 s.
    assert_eq!(sc.conn.poll_timeout(), Some(at_ms(60_040)));
    assert!(sc.advance(secs(60) - ms(1)).is_empty());
    assert_eq!(sc.conn.state(), State::TimeWait);
    assert!(sc.advance(ms(1)).is_empty());
    assert_eq!(sc.now, at_ms(60_040));
    assert_eq!(sc.conn.state(), State::Closed);
    assert!(sc.conn.is_drained());
    assert_eq!(sc.conn.poll_timeout(), None);
    assert_eq!(sc.events().last(), Some(&Event::Closed(None)));
}

#[test]
fn cl_01_fin_follows_queued_data() {
    let mut sc = Sc::established(Sc::plain());
    sc.conn.write(b"hello").unwrap();
    sc.conn.shutdown_write();
    let out = sc.output();
    assert_eq!(out.len(), 1, "data and FIN share one segment: {out:#?}");
    out[0].assert_flags(FIN_ACK).assert_seq_ack(ISS + 1, PEER_ISS + 1);
    assert_eq!(out[0].payload, b"hello");
    assert_eq!(sc.conn.seq_vars().snd_nxt.0, ISS + 7, "5 bytes plus the FIN");
    sc.advance(ms(10));
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 6));
    assert_eq!(sc.conn.state(), State::FinWait1, "the FIN itself is not yet acknowledged");
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 7));
    assert_eq!(sc.conn.state(), State::FinWait2);
}

#[test]
fn cl_01_shutdown_in_syn_sent_keeps_queued_data_and_sends_fin_after_it() {
    let mut sc = Sc::client(Sc::plain());
    sc.conn.write(b"early").unwrap();
    sc.conn.shutdown_write();
    assert_eq!(sc.conn.state(), State::SynSent, "the data is not dropped with the TCB");
    sc.expect_none();
    sc.advance(ms(10));
    sc.deliver(Seg::syn_ack(PEER_ISS, ISS + 1));
    assert_eq!(sc.conn.state(), State::FinWait1);
    let out = sc.output();
    let data = out.iter().find(|o| !o.payload.is_empty()).expect("the queued data is sent");
    data.assert_flags(FIN_ACK).assert_seq_ack(ISS + 1, PEER_ISS + 1);
    assert_eq!(data.payload, b"early");
}

#[test]
fn cl_01_shutdown_in_syn_sent_with_nothing_queued_closes() {
    let mut sc = Sc::client(Sc::plain());
    sc.conn.shutdown_write();
    assert_eq!(sc.conn.state(), State::Closed);
}

// ---- CL-02 -------------------------------------------------------------------------------

#[test]
fn cl_02_closing_at_eof_answers_data_and_fin_with_one_fin_ack() {
    // Quick-ack mode is on at the start of a connection, yet data followed by the peer's FIN
    // is not acknowledged on its own: the application reads, closes, and one FIN-ACK
    // acknowledges everything (Linux: 3 segments to close, not 4).
    let mut sc = Sc::established(Sc::plain());
    sc.advance(ms(10));
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 1).data(b"bye").fin());
    assert_eq!(sc.conn.state(), State::CloseWait);
    sc.expect_none();
    let mut b = [0u8; 8];
    assert_eq!(sc.conn.read(&mut b), Ok(3));
    assert_eq!(sc.conn.read(&mut b), Ok(0), "EOF");
    sc.conn.close();
    let fin = sc.expect_one();
    fin.assert_flags(FIN_ACK).assert_seq_ack(ISS + 1, PEER_ISS + 5);
    assert_eq!(sc.conn.state(), State::LastAck);
    assert_eq!(sc.conn.poll_timeout(), Some(at_ms(220)), "only the FIN's retransmission");
}

#[test]
fn cl_02_fin_after_a_full_segment_is_acked_at_once_like_linux() {
    // Linux `__tcp_ack_snd_check`: more than a full segment unacknowledged (a full segment
    // and the FIN) is ACKed at once, pingpong mode or not (ioctl/ioctl-siocinq-fin.pkt).
    let mut sc = Sc::established(Sc::plain());
    sc.advance(ms(10));
    sc.deliver(Seg::ack(P, D).data(&[7; MSS as usize]));
    sc.expect_one().assert_seq_ack(D, P + MSS);
    sc.advance(ms(90));
    sc.deliver(Seg::ack(P + MSS, D).data(&[8; MSS as usize]).fin());
    assert_eq!(sc.conn.state(), State::CloseWait);
    let ack = sc.expect_one();
    ack.assert_flags(TcpFlags::ACK).assert_seq_ack(D, P + 2 * MSS + 1);
    assert_eq!(ack.at, at_ms(110));
}

#[test]
fn cl_02_fin_before_any_data_is_acked_at_once_like_linux() {
    // Linux's ACK timeout (`ato`) is 0 until data arrives, so even in pingpong mode the
    // ACK of a bare FIN leaves at once (close/close-remote-fin-then-close.pkt).
    let mut sc = Sc::established(Sc::plain());
    sc.advance(ms(10));
    sc.deliver(Seg::ack(P, D).fin());
    sc.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(D, P + 1);
    sc.conn.close();
    sc.expect_one().assert_flags(FIN_ACK).assert_seq_ack(D, P + 1);
}

#[test]
fn cl_02_passive_close_eof_half_close_and_last_ack() {
    let mut sc = close_wait(Sc::plain());
    let mut b = [0u8; 16];
    assert_eq!(sc.conn.read(&mut b), Ok(0), "EOF");
    assert_eq!(sc.conn.read(&mut b), Ok(0), "EOF again");
    assert_eq!(sc.conn.poll_timeout(), None, "the FIN was ACKed at once");
    // Half-close: the CLOSE-WAIT side keeps writing.
    sc.advance(ms(10));
    assert_eq!(sc.conn.write(b"still here"), Ok(10));
    let d = sc.expect_one();
    assert!(d.has(TcpFlags::PSH));
    d.assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 1, PEER_ISS + 2);
    assert_eq!((d.at, d.payload.as_slice()), (at_ms(30), &b"still here"[..]));
    sc.advance(ms(10));
    sc.deliver(Seg::ack(PEER_ISS + 2, ISS + 11));
    assert_eq!(sc.conn.state(), State::CloseWait);
    assert_eq!(sc.events(), vec![Event::Writable]);
    // The application closes: FIN, LAST-ACK.
    sc.conn.close();
    assert_eq!(sc.conn.state(), State::LastAck);
    let fin = sc.expect_one();
    fin.assert_flags(FIN_ACK).assert_seq_ack(ISS + 11, PEER_ISS + 2);
    assert_eq!(sc.conn.poll_timeout(), Some(at_ms(240)));
    sc.advance(ms(10));
    sc.deliver(Seg::ack(PEER_ISS + 2, ISS + 12));
    assert_eq!(sc.conn.state(), State::Closed, "no TIME-WAIT on the passive side");
    sc.expect_none();
    assert_eq!(sc.conn.poll_timeout(), None);
    assert!(sc.conn.is_drained());
    assert_eq!(sc.events(), vec![Event::Readable, Event::Writable, Event::Closed(None)]);
}

#[test]
fn cl_02_half_close_pair_peer_receives_after_its_fin() {
    let mut p = Pair::new(Sc::plain(), Sc::plain(), ms(10));
    p.run_until(secs(1), |p| p.server.as_ref().is_some_and(|s| s.state() == State::Established));
    p.client.shutdown_write();
    p.run_until(secs(1), |p| p.server().state() == State::CloseWait);
    assert_eq!(p.now, at_ms(40));
    let mut b = [0u8; 64];
    assert_eq!(p.server().read(&mut b), Ok(0));
    p.server().write(b"response after your FIN").unwrap();
    p.run_for(ms(100));
    assert_eq!(p.client.state(), State::FinWait2);
    assert_eq!(p.client.read(&mut b), Ok(23));
    assert_eq!(&b[..23], b"response after your FIN");
    p.server().close();
    p.run_for(ms(100));
    assert_eq!(p.server().state(), State::Closed);
    assert_eq!(p.client.state(), State::TimeWait);
    assert_eq!(p.client.read(&mut b), Ok(0));
    let fins: Vec<_> =
        p.log.iter().filter(|(_, o, _)| o.has(TcpFlags::FIN)).map(|(d, o, _)| (*d, o.at)).collect();
    assert_eq!(fins, vec![(Dir::CtoS, at_ms(30)), (Dir::StoC, at_ms(140))]);
}

// ---- CL-03 -------------------------------------------------------------------------------

#[test]
fn cl_03_fin_ack_in_fin_wait_1_goes_to_time_wait() {
    let mut sc = fin_wait_1();
    sc.advance(ms(10));
    // The peer has nothing left to send: its ACK of our FIN rides on its own FIN.
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 2).fin());
    assert_eq!(sc.conn.state(), State::TimeWait);
    let ack = sc.expect_one();
    ack.assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 2, PEER_ISS + 2);
    assert_eq!(ack.at, at_ms(20));
    assert_eq!(sc.events(), vec![Event::Readable, Event::PeerFinished]);
    assert_eq!(sc.conn.poll_timeout(), Some(at_ms(60_020)));
    sc.advance(secs(60));
    assert_eq!(sc.conn.state(), State::Closed);
    assert_eq!(sc.events(), vec![Event::Readable, Event::Writable, Event::Closed(None)]);
}

// ---- CL-04 -------------------------------------------------------------------------------

#[test]
fn cl_04_simultaneous_close_through_closing() {
    let mut sc = fin_wait_1();
    sc.advance(ms(5));
    // The peer's FIN crosses ours: it does not acknowledge our FIN.
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 1).fin());
    assert_eq!(sc.conn.state(), State::Closing);
    sc.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 2, PEER_ISS + 2);
    assert_eq!(sc.events(), vec![Event::Readable, Event::PeerFinished]);
    assert_eq!(sc.conn.poll_timeout(), Some(at_ms(210)), "our FIN is still timed");
    sc.advance(ms(5));
    sc.deliver(Seg::ack(PEER_ISS + 2, ISS + 2));
    assert_eq!(sc.conn.state(), State::TimeWait);
    sc.expect_none();
    assert_eq!(sc.conn.poll_timeout(), Some(at_ms(60_020)));
}

#[test]
fn cl_04_simultaneous_close_pair() {
    let mut p = Pair::new(Sc::plain(), Sc::plain(), ms(10));
    p.run_until(secs(1), |p| p.server.as_ref().is_some_and(|s| s.state() == State::Established));
    p.run_for(ms(10));
    p.client.shutdown_write();
    p.server().shutdown_write();
    p.run_for(ms(15));
    assert_eq!((p.client.state(), p.server().state()), (State::Closing, State::Closing));
    p.run_for(ms(10));
    assert_eq!((p.client.state(), p.server().state()), (State::TimeWait, State::TimeWait));
    p.run_for(secs(60));
    assert_eq!((p.client.state(), p.server().state()), (State::Closed, State::Closed));
}

// ---- CL-05 -------------------------------------------------------------------------------

#[test]
fn cl_05_lost_fin_retransmitted_with_backoff_then_dropped() {
    let cfg = ConnConfig { data_retries: 3, ..Sc::plain() };
    let mut sc = Sc::established(cfg);
    sc.conn.shutdown_write();
    sc.expect_one().assert_flags(FIN_ACK).assert_seq_ack(ISS + 1, PEER_ISS + 1);
    let out = sc.advance(secs(10));
    let got: Vec<_> = out.iter().map(|o| (o.at, o.seq(), o.ack(), o.tcp.flags)).collect();
    let fin = |t| (at_ms(t), ISS + 1, PEER_ISS + 1, FIN_ACK);
    // RTO 200 ms, doubled each time: 210, 610, 1410 ms; the connection is dropped at 3010 ms.
    assert_eq!(got, vec![fin(210), fin(610), fin(1_410)]);
    assert_eq!(sc.conn.state(), State::Closed);
    assert_eq!(sc.conn.poll_timeout(), None);
    let ev = sc.events();
    assert_eq!(ev.last(), Some(&Event::Closed(Some(ConnectionError::TimedOut))), "{ev:?}");
    let mut b = [0u8; 4];
    assert_eq!(sc.conn.read(&mut b), Err(ReadError::Failed(ConnectionError::TimedOut)));
}

#[test]
fn cl_05_give_up_time_is_exact() {
    let cfg = ConnConfig { data_retries: 3, ..Sc::plain() };
    let mut sc = Sc::established(cfg);
    sc.conn.shutdown_write();
    sc.output();
    sc.advance(ms(3_000 - 10 - 1));
    assert_eq!(sc.conn.state(), State::FinWait1);
    assert_eq!(sc.conn.poll_timeout(), Some(at_ms(3_010)));
    sc.next_timer();
    assert_eq!((sc.now, sc.conn.state()), (at_ms(3_010), State::Closed));
}

// ---- CL-06 -------------------------------------------------------------------------------

#[test]
fn cl_06_lost_ack_of_fin_fin_retransmitted_and_acked() {
    let mut sc = fin_wait_1();
    let out = sc.advance(ms(200));
    assert_eq!(out.len(), 1);
    out[0].assert_flags(FIN_ACK).assert_seq_ack(ISS + 1, PEER_ISS + 1);
    assert_eq!(out[0].at, at_ms(210));
    sc.advance(ms(10));
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 2));
    assert_eq!(sc.conn.state(), State::FinWait2);
    assert_eq!(sc.conn.poll_timeout(), None);
}

#[test]
fn cl_06_retransmitted_peer_fin_is_acked_again() {
    let mut sc = close_wait(Sc::plain());
    // Our ACK of the peer's FIN was lost: the same FIN comes again.
    sc.advance(ms(200));
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 1).fin());
    let ack = sc.expect_one();
    ack.assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 1, PEER_ISS + 2);
    assert_eq!(ack.at, at_ms(220));
    assert_eq!(sc.conn.state(), State::CloseWait);
    assert_eq!(sc.events(), vec![], "no second PeerFinished");
    assert_eq!(sc.conn.seq_vars().rcv_nxt.0, PEER_ISS + 2);
}

// ---- CL-07 -------------------------------------------------------------------------------

#[test]
fn cl_07_lost_peer_fin_is_retransmitted_and_accepted() {
    let mut sc = fin_wait_2();
    // The peer's first FIN (at 30 ms) is lost; its retransmission arrives at 1030 ms.
    sc.advance(ms(1_010));
    assert_eq!(sc.conn.state(), State::FinWait2);
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 2).fin());
    assert_eq!(sc.conn.state(), State::TimeWait);
    sc.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 2, PEER_ISS + 2);
    assert_eq!(sc.conn.poll_timeout(), Some(at_ms(61_030)));
}

#[test]
fn cl_07_orphaned_fin_wait_2_times_out_after_60s() {
    let mut sc = Sc::established(Sc::plain());
    sc.conn.close();
    assert_eq!(sc.conn.state(), State::FinWait1);
    sc.expect_one().assert_flags(FIN_ACK).assert_seq_ack(ISS + 1, PEER_ISS + 1);
    sc.advance(ms(10));
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 2));
    assert_eq!(sc.conn.state(), State::FinWait2);
    // tcp_fin_timeout: 60 s from entering FIN-WAIT-2 (at 20 ms).
    assert_eq!(sc.conn.poll_timeout(), Some(at_ms(60_020)));
    assert!(sc.advance(secs(60) - ms(1)).is_empty());
    assert_eq!(sc.conn.state(), State::FinWait2);
    assert!(sc.advance(ms(1)).is_empty(), "the orphan goes silently");
    assert_eq!(sc.conn.state(), State::Closed);
    assert!(sc.conn.is_drained());
    assert_eq!(sc.events().last(), Some(&Event::Closed(None)));
}

#[test]
fn cl_07_fin_wait_2_after_shutdown_write_alone_never_times_out() {
    let mut sc = fin_wait_2();
    assert_eq!(sc.conn.poll_timeout(), None);
    assert!(sc.advance(secs(10 * 3600)).is_empty());
    assert_eq!(sc.conn.state(), State::FinWait2);
    // The reader is still there and gets data.
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 2).data(b"late"));
    assert_eq!(sc.read_all(), b"late");
    sc.output();
    // The emptied receive buffer is given back after a quiet RTO (MEM-02).
    assert!(sc.next_timer().is_empty());
    assert_eq!(sc.conn.buffer_bytes(), 0);
    // Closing now orphans it: the 60 s timer starts when the owner next polls.
    let t0 = sc.now;
    sc.conn.close();
    assert!(sc.conn.wants_transmit(), "the owner must poll so the timer gets armed");
    sc.expect_none();
    assert_eq!(sc.conn.poll_timeout(), Some(t0 + secs(60)));
    sc.advance(secs(60));
    assert_eq!(sc.conn.state(), State::Closed);
}

// ---- CL-08 -------------------------------------------------------------------------------

#[test]
fn cl_08_time_wait_reacks_retransmitted_fin_and_restarts_2msl() {
    let mut sc = time_wait();
    assert_eq!(sc.conn.poll_timeout(), Some(at_ms(60_030)));
    // Our ACK was lost: the peer in LAST-ACK retransmits its FIN 10 s later.
    sc.advance(secs(10));
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 2).fin());
    let ack = sc.expect_one();
    ack.assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 2, PEER_ISS + 2);
    assert_eq!(ack.at, at_ms(10_030));
    assert_eq!(sc.conn.state(), State::TimeWait);
    assert_eq!(sc.conn.poll_timeout(), Some(at_ms(70_030)), "2 MSL from the new FIN");
    sc.advance(ms(60_000 - 1));
    assert_eq!(sc.conn.state(), State::TimeWait);
    sc.advance(ms(1));
    assert_eq!(sc.conn.state(), State::Closed);
}

#[test]
fn cl_08_last_ack_retransmits_fin_until_acked() {
    let mut sc = close_wait(Sc::plain());
    sc.conn.close();
    assert_eq!(sc.conn.state(), State::LastAck);
    sc.expect_one().assert_flags(FIN_ACK).assert_seq_ack(ISS + 1, PEER_ISS + 2);
    let out = sc.advance(ms(700));
    let got: Vec<_> = out.iter().map(|o| (o.at, o.seq(), o.ack(), o.tcp.flags)).collect();
    assert_eq!(
        got,
        vec![
            (at_ms(220), ISS + 1, PEER_ISS + 2, FIN_ACK),
            (at_ms(620), ISS + 1, PEER_ISS + 2, FIN_ACK)
        ]
    );
    assert_eq!(sc.conn.state(), State::LastAck);
    sc.deliver(Seg::ack(PEER_ISS + 2, ISS + 2));
    assert_eq!(sc.conn.state(), State::Closed);
    assert_eq!(sc.events().last(), Some(&Event::Closed(None)));
}

#[test]
fn cl_08_lost_last_ack_pair() {
    // Client closes first; the server's FIN is acked by the client, and that ACK is lost.
    let mut p = Pair::new(Sc::plain(), Sc::plain(), ms(10));
    p.run_until(secs(1), |p| p.server.as_ref().is_some_and(|s| s.state() == State::Established));
    p.client.shutdown_write();
    p.run_until(secs(1), |p| p.server().state() == State::CloseWait);
    p.server().close();
    p.drop = Box::new(|dir, _, o| dir == Dir::CtoS && o.ack() == PEER_ISS + 2 && o.at < at_ms(100));
    p.run_until(secs(5), |p| p.server().state() == State::Closed);
    assert_eq!(p.client.state(), State::TimeWait);
    let fins: Vec<_> =
        p.sent(Dir::StoC).into_iter().filter(|o| o.has(TcpFlags::FIN)).map(|o| o.seq()).collect();
    assert_eq!(fins.len(), 2, "the server's FIN went twice");
    assert!(fins.iter().all(|&s| s == PEER_ISS + 1));
    let acks: Vec<_> = p
        .sent(Dir::CtoS)
        .into_iter()
        .filter(|o| o.ack() == PEER_ISS + 2)
        .map(|o| o.seq())
        .collect();
    assert_eq!(acks, vec![ISS + 2, ISS + 2], "TIME-WAIT acknowledged both FINs");
}

// ---- CL-09 -------------------------------------------------------------------------------

#[test]
fn cl_09_time_wait_answers_a_stray_old_segment_with_an_ack() {
    let mut sc = time_wait();
    sc.advance(secs(5));
    // An old duplicate data segment, long since acknowledged.
    sc.deliver(Seg::ack(PEER_ISS - 2_000, ISS + 2).data(b"old"));
    sc.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 2, PEER_ISS + 2);
    assert_eq!(sc.conn.state(), State::TimeWait);
    assert_eq!(sc.conn.poll_timeout(), Some(at_ms(60_030)), "only a FIN restarts 2 MSL");
    assert_eq!(sc.conn.readable_bytes(), 0);
    // An old SYN is not a new connection either: it gets an ACK.
    sc.deliver(Seg::syn(PEER_ISS.wrapping_sub(10_000)));
    sc.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(ISS + 2, PEER_ISS + 2);
    assert_eq!(sc.conn.state(), State::TimeWait);
    // A pure duplicate ACK needs no answer.
    sc.deliver(Seg::ack(PEER_ISS + 2, ISS + 2));
    sc.expect_none();
}

// ---- CL-10 -------------------------------------------------------------------------------

#[test]
fn cl_10_abort_sends_rst_and_skips_time_wait() {
    let mut sc = Sc::established(Sc::plain());
    sc.conn.set_nodelay(true);
    sc.conn.write(b"abc").unwrap();
    sc.output();
    sc.advance(ms(5));
    sc.conn.abort();
    assert_eq!(sc.conn.state(), State::Closed);
    let rst = sc.expect_one();
    rst.assert_flags(TcpFlags::RST | TcpFlags::ACK).assert_seq_ack(ISS + 4, PEER_ISS + 1);
    assert_eq!(rst.at, at_ms(15));
    assert_eq!(sc.conn.poll_timeout(), None, "no TIME-WAIT, no retransmission");
    assert!(sc.conn.is_drained());
    let ev = sc.events();
    assert_eq!(ev.last(), Some(&Event::Closed(Some(ConnectionError::Aborted))), "{ev:?}");
    assert!(sc.advance(secs(100)).is_empty());
}

#[test]
fn cl_10_close_with_unread_data_sends_rst() {
    let mut sc = Sc::established(Sc::plain());
    sc.advance(ms(10));
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 1).data(b"unread"));
    sc.output();
    sc.conn.close();
    assert_eq!(sc.conn.state(), State::Closed);
    let rst = sc.expect_one();
    rst.assert_flags(TcpFlags::RST | TcpFlags::ACK).assert_seq_ack(ISS + 1, PEER_ISS + 7);
    assert!(!rst.has(TcpFlags::FIN));
    assert_eq!(sc.conn.poll_timeout(), None);
    assert!(sc.conn.is_drained());
}

/// CL-10: new data for a socket the application closed (FIN-WAIT-1, its FIN not yet
/// acknowledged) kills the connection and is answered as Linux answers it
/// (TCPAbortOnData): `<SEQ=SEG.ACK><CTL=RST>`, no ACK bit, as for a segment to no
/// connection (RFC 9293 §3.10.7.1), not a RST at SND.NXT.
#[test]
fn cl_10_data_after_close_is_answered_with_rst_at_seg_ack() {
    let mut sc = Sc::established(Sc::plain());
    sc.conn.close();
    sc.expect_one().assert_flags(FIN_ACK).assert_seq_ack(ISS + 1, PEER_ISS + 1);
    assert_eq!(sc.conn.state(), State::FinWait1);
    sc.advance(ms(3));
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 1).data(b"late"));
    let rst = sc.expect_one();
    rst.assert_flags(TcpFlags::RST).assert_seq_ack(ISS + 1, 0);
    assert_eq!(sc.conn.state(), State::Closed);
    assert_eq!(sc.conn.poll_timeout(), None, "no FIN retransmission, no TIME-WAIT");
    let ev = sc.events();
    assert_eq!(ev.last(), Some(&Event::Closed(Some(ConnectionError::Aborted))), "{ev:?}");
}

#[test]
fn cl_10_abort_in_fin_wait_2_skips_time_wait() {
    let mut sc = fin_wait_2();
    sc.conn.abort();
    let rst = sc.expect_one();
    rst.assert_flags(TcpFlags::RST | TcpFlags::ACK).assert_seq_ack(ISS + 2, PEER_ISS + 1);
    assert_eq!(sc.conn.state(), State::Closed);
    assert_eq!(sc.conn.poll_timeout(), None);
}

// ---- CL-11 -------------------------------------------------------------------------------

#[test]
fn cl_11_close_wait_not_closed_by_the_app_stays() {
    let mut sc = close_wait(Sc::plain());
    assert_eq!(sc.conn.poll_timeout(), None, "nothing is timed in an idle CLOSE-WAIT");
    assert!(sc.advance(secs(24 * 3600)).is_empty());
    assert_eq!(sc.conn.state(), State::CloseWait);
    assert_eq!(sc.events(), vec![]);
    // Still usable a day later.
    sc.conn.write(b"x").unwrap();
    sc.expect_one().assert_seq_ack(ISS + 1, PEER_ISS + 2);
    sc.deliver(Seg::ack(PEER_ISS + 2, ISS + 2));
    assert_eq!(sc.conn.state(), State::CloseWait);
}

#[test]
fn cl_11_close_wait_with_keepalive_survives_while_the_peer_answers() {
    let cfg = ConnConfig { keepalive: true, ..Sc::plain() };
    let mut sc = close_wait(cfg);
    for _ in 0..5 {
        let out = sc.advance(secs(7200));
        assert_eq!(out.len(), 1, "{out:#?}");
        // Keepalive probe: <SEQ=SND.UNA-1>.
        out[0].assert_flags(TcpFlags::ACK).assert_seq_ack(ISS, PEER_ISS + 2);
        sc.deliver(Seg::ack(PEER_ISS + 2, ISS + 1));
        sc.expect_none();
        assert_eq!(sc.conn.state(), State::CloseWait);
    }
}

#[test]
fn cl_01_shutdown_in_syn_received_sends_fin_after_the_handshake() {
    let mut sc = Sc::server(Sc::plain(), Seg::syn(PEER_ISS));
    sc.conn.shutdown_write();
    assert_eq!(sc.conn.state(), State::SynReceived);
    sc.expect_none();
    sc.advance(ms(10));
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 1));
    assert_eq!(sc.conn.state(), State::FinWait1);
    sc.expect_one().assert_flags(FIN_ACK).assert_seq_ack(ISS + 1, PEER_ISS + 1);
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 2));
    assert_eq!(sc.conn.state(), State::FinWait2);
}

#[test]
fn cl_01_full_close_pair_with_every_option() {
    let cfg = ConnConfig::default();
    let mut p = Pair::new(cfg, cfg, ms(10));
    p.run_until(secs(1), |p| p.server.as_ref().is_some_and(|s| s.state() == State::Established));
    p.client.write(&[1u8; 5_000]).unwrap();
    p.client.close();
    p.run_until(secs(1), |p| p.server().state() == State::CloseWait);
    let mut b = vec![0u8; 8_192];
    let mut n = 0;
    while let Ok(k) = p.server().read(&mut b) {
        if k == 0 {
            break;
        }
        n += k;
    }
    assert_eq!(n, 5_000);
    p.server().close();
    let t = p.now;
    p.run_until(secs(1), |p| p.server().state() == State::Closed);
    assert_eq!(p.now, t + ms(20), "FIN out, ACK back");
    assert_eq!(p.client.state(), State::TimeWait);
    assert_eq!(p.client.poll_timeout(), Some(t + ms(10) + secs(60)));
    p.run_for(secs(61));
    assert_eq!(p.client.state(), State::Closed);
    assert!(p.client.is_drained() && p.server().is_drained());
}

/// CL-11: a CLOSE-WAIT the application never closes is visible in the per-state counts.
#[test]
fn cl_11_close_wait_is_visible_in_state_counts() {
    let ep = tcpcore::Endpoint::new(tcpcore::EndpointConfig::default());
    let mut sc = Sc::established(Sc::plain());
    sc.deliver(Seg::ack(PEER_ISS + 1, ISS + 1).fin());
    sc.output();
    assert_eq!(sc.conn.state(), State::CloseWait);
    sc.advance(secs(24 * 3600));
    let counts = ep.state_counts([&sc.conn]);
    assert_eq!(counts.get(State::CloseWait), 1);
    assert_eq!(counts.total(), 1);
    assert_eq!(counts.iter().collect::<Vec<_>>(), [(State::CloseWait, 1)]);
}
