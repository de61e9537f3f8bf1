//! CL-09: the endpoint's compact TIME-WAIT entries. A server connection closes first, reaches
//! TIME-WAIT, and is handed to `Endpoint::connection_closed`; the hand-played client then
//! sends stray segments, a retransmitted FIN, new SYNs (RFC 6191 reuse) and resets.

mod common;
mod lq_util;

use std::net::SocketAddr;

use common::{ms, secs, Seg};
use lq_util::{client, dst, plain, src, Srv, C_ISN, SERVER};
use tcpcore::wire::{SeqNum, TcpFlags};
use tcpcore::{
    Connection, ConnectionHandle, EndpointConfig, Instant, ListenOptions, State, TimeWaitEntry,
};

fn srv(max_time_wait: usize) -> Srv {
    let cfg = EndpointConfig { seed: 1, conn: plain(), max_time_wait, ..EndpointConfig::default() };
    Srv::new(cfg, ListenOptions::default())
}

/// Handshake from `c` (client timestamps from `ts` on, if any), then the server closes first:
/// FIN out, the client's ACK and FIN in, the last ACK out. Returns the server connection, in
/// TIME-WAIT, still owned by the test, and our ISN. The connection's SND.NXT is ISN + 2, its
/// RCV.NXT is C_ISN + 2.
#[track_caller]
fn reach_time_wait(
    s: &mut Srv,
    c: SocketAddr,
    ts: Option<u32>,
) -> (ConnectionHandle, Connection, u32) {
    let syn = match ts {
        Some(v) => Seg::syn(C_ISN).ts(v, 0),
        None => Seg::syn(C_ISN),
    };
    let sa = s.syn(c, syn);
    let isn = sa.seq();
    let our_ts = sa.tcp.options.timestamps.map_or(0, |t| t.tsval);
    let stamp = |seg: Seg, k: u32| match ts {
        Some(v) => seg.ts(v + k, our_ts),
        None => seg,
    };
    s.advance(ms(10));
    let h = s.deliver(c, stamp(Seg::ack(C_ISN + 1, isn.wrapping_add(1)), 1)).unwrap();
    assert_eq!(s.ep.accept(SERVER), Some(h));
    s.conns.get_mut(&h).unwrap().close();
    let fin = s.conn_output(h);
    assert_eq!(fin.len(), 1, "{fin:#?}");
    fin[0]
        .assert_flags(TcpFlags::FIN | TcpFlags::ACK)
        .assert_seq_ack(isn.wrapping_add(1), C_ISN + 1);
    s.advance(ms(10));
    s.deliver(c, stamp(Seg::ack(C_ISN + 1, isn.wrapping_add(2)), 2));
    assert_eq!(s.conns[&h].state(), State::FinWait2, "{:#?}", s.conns[&h].info());
    s.deliver(c, stamp(Seg::ack(C_ISN + 1, isn.wrapping_add(2)).fin(), 3));
    assert_eq!(s.conns[&h].state(), State::TimeWait);
    let last = s.conn_output(h);
    assert_eq!(last.len(), 1, "{last:#?}");
    last[0].assert_flags(TcpFlags::ACK).assert_seq_ack(isn.wrapping_add(2), C_ISN + 2);
    let conn = s.conns.remove(&h).unwrap();
    assert!(conn.is_drained());
    (h, conn, isn)
}

/// As [`reach_time_wait`], and hand the connection to the endpoint at once.
#[track_caller]
fn time_wait(s: &mut Srv, c: SocketAddr, ts: Option<u32>) -> u32 {
    let (h, conn, isn) = reach_time_wait(s, c, ts);
    s.ep.connection_closed(h, &conn);
    isn
}

#[test]
fn cl_09_time_wait_entry_is_small() {
    let size = core::mem::size_of::<TimeWaitEntry>();
    assert!(size <= 128, "TimeWaitEntry is {size} bytes");
}

#[test]
fn cl_09_closed_time_wait_connection_leaves_an_entry_that_acks_stray_segments() {
    let mut s = srv(16);
    let c = client(40000);
    let isn = time_wait(&mut s, c, None);
    assert_eq!((s.ep.time_wait_count(), s.ep.connection_count()), (1, 0));
    assert_eq!(s.ep.stats().time_wait_entered, 1);
    // (The completed SYN-queue entry may leave a stale deadline at 1 s: a spurious wake-up.)
    assert!(s.advance_to(Instant::from_secs(1)).is_empty());
    assert_eq!(s.ep.poll_timeout(), Some(Instant::from_millis(60_020)), "2 MSL after the FIN");

    // An old duplicate data segment of the closed connection: ACK <SEQ=SND.NXT><ACK=RCV.NXT>.
    let old = Seg::ack(C_ISN + 1, isn.wrapping_add(1)).data(b"old");
    assert_eq!(s.deliver(c, old), None);
    let ack = s.expect_one();
    ack.assert_flags(TcpFlags::ACK).assert_seq_ack(isn.wrapping_add(2), C_ISN + 2);
    assert_eq!((src(&ack), dst(&ack)), (SERVER, c));
    // Beyond the window as well.
    assert_eq!(s.deliver(c, Seg::ack(C_ISN + 90_000, isn.wrapping_add(2)).data(b"x")), None);
    s.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(isn.wrapping_add(2), C_ISN + 2);
    assert_eq!(s.ep.stats().time_wait_acks, 2);
    assert_eq!((s.ep.time_wait_count(), s.ep.connection_count()), (1, 0), "no new connection");
    assert_eq!(s.ep.accept(SERVER), None);
}

#[test]
fn cl_09_in_window_bare_ack_in_time_wait_is_not_answered() {
    // RFC 9293 §3.10.7.4: an acceptable segment with nothing new needs no reply (Linux
    // TCP_TW_SUCCESS). Answering would ping-pong with a peer that is itself in TIME-WAIT.
    let mut s = srv(16);
    let c = client(40000);
    let isn = time_wait(&mut s, c, None);
    s.advance(secs(1));
    assert_eq!(s.deliver(c, Seg::ack(C_ISN + 2, isn.wrapping_add(2))), None);
    s.expect_none();
    assert_eq!(s.ep.stats().time_wait_acks, 0);
    assert_eq!(s.ep.time_wait_count(), 1);
    // A SYN-ACK at RCV.NXT is no bare ACK: answered.
    s.deliver(c, Seg::syn_ack(C_ISN + 2, isn.wrapping_add(2)));
    s.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(isn.wrapping_add(2), C_ISN + 2);

    // With timestamps: silent only if PAWS accepts it (TSval not older than TS.Recent 1003).
    let mut s =
        Srv::new(EndpointConfig { seed: 1, ..EndpointConfig::default() }, ListenOptions::default());
    let isn = time_wait(&mut s, c, Some(1_000));
    s.advance(secs(1));
    s.deliver(c, Seg::ack(C_ISN + 2, isn.wrapping_add(2)).ts(1_003, 0));
    s.expect_none();
    assert_eq!(s.ep.stats().time_wait_paws_rejected, 0);
    s.deliver(c, Seg::ack(C_ISN + 2, isn.wrapping_add(2)).ts(1_002, 0));
    let ack = s.expect_one();
    ack.assert_flags(TcpFlags::ACK).assert_seq_ack(isn.wrapping_add(2), C_ISN + 2);
    assert_eq!(ack.tcp.options.timestamps.map(|t| t.tsecr), Some(1_003));
    // RX-05: the PAWS rejection is counted (RFC 7323 §5.3).
    assert_eq!(s.ep.stats().time_wait_paws_rejected, 1);
}

#[test]
fn cl_09_retransmitted_fin_is_acked_and_restarts_2msl() {
    let mut s = srv(16);
    let c = client(40000);
    let isn = time_wait(&mut s, c, None);
    s.advance_to(Instant::from_secs(10));
    // Our last ACK was lost: the client's FIN again.
    assert_eq!(s.deliver(c, Seg::ack(C_ISN + 1, isn.wrapping_add(2)).fin()), None);
    s.expect_one().assert_flags(TcpFlags::ACK).assert_seq_ack(isn.wrapping_add(2), C_ISN + 2);
    // Still there past the first 2 MSL, gone 2 MSL after the retransmitted FIN.
    assert!(s.advance_to(Instant::from_millis(69_999)).is_empty());
    assert_eq!(s.ep.time_wait_count(), 1);
    s.advance(ms(1));
    assert_eq!(s.ep.time_wait_count(), 0);
    assert_eq!(s.ep.poll_timeout(), None);
}

#[test]
fn cl_09_entry_expires_after_2msl_then_the_listener_answers() {
    let mut s = srv(16);
    let c = client(40000);
    let isn = time_wait(&mut s, c, None);
    assert!(s.advance_to(Instant::from_millis(60_019)).is_empty());
    assert_eq!(s.ep.time_wait_count(), 1);
    assert!(s.advance(ms(1)).is_empty(), "expiry sends nothing");
    assert_eq!(s.ep.time_wait_count(), 0);
    assert_eq!(s.ep.poll_timeout(), None);
    // The same stray segment now reaches the listener: <SEQ=SEG.ACK><CTL=RST>.
    s.deliver(c, Seg::ack(C_ISN + 1, isn.wrapping_add(1)).data(b"old"));
    s.expect_one().assert_flags(TcpFlags::RST).assert_seq_ack(isn.wrapping_add(1), 0);
}

#[test]
fn cl_09_entries_expire_in_deadline_order_whatever_the_insertion_order() {
    let mut s = srv(16);
    let (a, b) = (client(1), client(2));
    let isn_a = time_wait(&mut s, a, None); // 2 MSL until 60.020 s
    s.advance_to(Instant::from_secs(5));
    // b reaches TIME-WAIT at 5.020 s (until 65.020 s) but its owner hands it over later.
    let (hb, conn_b, _) = reach_time_wait(&mut s, b, None);
    s.advance_to(Instant::from_secs(10));
    // a's FIN again: a now lasts until 70 s.
    s.deliver(a, Seg::ack(C_ISN + 1, isn_a.wrapping_add(2)).fin());
    s.expect_one();
    s.advance(ms(1));
    s.ep.connection_closed(hb, &conn_b);
    assert_eq!(s.ep.time_wait_count(), 2);

    s.advance_to(Instant::from_millis(65_019));
    assert_eq!(s.ep.time_wait_count(), 2);
    s.advance(ms(1));
    assert_eq!(s.ep.time_wait_count(), 1, "b expires at its own deadline");
    assert_eq!(s.ep.poll_timeout(), Some(Instant::from_secs(70)));
    s.advance_to(Instant::from_secs(70));
    assert_eq!(s.ep.time_wait_count(), 0);
}

#[test]
fn cl_09_syn_with_higher_sequence_number_reuses_the_four_tuple() {
    let mut s = srv(16);
    let c = client(40000);
    let old_isn = time_wait(&mut s, c, None);
    s.advance_to(Instant::from_secs(5));

    // An old SYN (not above RCV.NXT): only an ACK, the entry stays.
    for seq in [C_ISN, C_ISN + 2] {
        assert_eq!(s.deliver(c, Seg::syn(seq)), None);
        let ack = s.expect_one();
        ack.assert_flags(TcpFlags::ACK).assert_seq_ack(old_isn.wrapping_add(2), C_ISN + 2);
    }
    assert_eq!((s.ep.time_wait_count(), s.ep.stats().time_wait_recycled), (1, 0));
    assert_eq!(s.ep.half_open_count(), 0);

    // RFC 6191 §2 without timestamps: a SYN above RCV.NXT opens a new incarnation.
    let new_syn = C_ISN + 100_000;
    let sa = s.syn(c, Seg::syn(new_syn));
    assert_eq!((s.ep.time_wait_count(), s.ep.stats().time_wait_recycled), (0, 1));
    assert_eq!(s.ep.half_open_count(), 1);
    // The new ISN lies beyond the old connection's sequence space (RFC 6528 clock).
    assert!(SeqNum(sa.seq()) > SeqNum(old_isn.wrapping_add(2)), "{} vs {}", sa.seq(), old_isn);
    let h = s.deliver(c, Seg::ack(new_syn + 1, sa.seq().wrapping_add(1))).unwrap();
    assert_eq!(s.conns[&h].state(), State::Established);
}

#[test]
fn cl_09_with_timestamps_a_newer_tsval_decides_reuse() {
    let cfg = EndpointConfig { seed: 1, ..EndpointConfig::default() };
    let mut s = Srv::new(cfg, ListenOptions::default());
    let c = client(40000);
    // Client TSvals 1000..=1003: TS.Recent of the entry is 1003.
    let old_isn = time_wait(&mut s, c, Some(1_000));
    s.advance_to(Instant::from_secs(5));

    // Higher sequence number but a TSval not newer than TS.Recent: not a new incarnation.
    assert_eq!(s.deliver(c, Seg::syn(C_ISN + 100_000).ts(1_003, 0)), None);
    let ack = s.expect_one();
    ack.assert_flags(TcpFlags::ACK).assert_seq_ack(old_isn.wrapping_add(2), C_ISN + 2);
    assert_eq!(ack.tcp.options.timestamps.map(|t| t.tsecr), Some(1_003), "echoes TS.Recent");
    assert_eq!((s.ep.time_wait_count(), s.ep.half_open_count()), (1, 0));

    // Lower sequence number but a newer TSval: reused (RFC 6191 §2).
    let sa = s.syn(c, Seg::syn(C_ISN.wrapping_sub(50_000)).ts(1_004, 0));
    assert_eq!(sa.tcp.options.timestamps.map(|t| t.tsecr), Some(1_004));
    assert_eq!((s.ep.time_wait_count(), s.ep.stats().time_wait_recycled), (0, 1));
    assert_eq!(s.ep.half_open_count(), 1);
}

#[test]
fn cl_09_reset_ends_time_wait_only_with_the_exact_sequence_number() {
    let mut s = srv(16);
    let c = client(40000);
    time_wait(&mut s, c, None);
    // RFC 5961 §3.2: a blind reset must hit RCV.NXT exactly; others are dropped silently.
    for seq in [C_ISN + 1, C_ISN + 3, C_ISN + 1_000_000] {
        s.deliver(c, Seg::rst(seq));
        s.expect_none();
        assert_eq!(s.ep.time_wait_count(), 1, "RST seq {seq}");
    }
    // Linux (tcp_rfc1337 = 0): an in-window reset ends TIME-WAIT.
    s.deliver(c, Seg::rst(C_ISN + 2));
    s.expect_none();
    assert_eq!((s.ep.time_wait_count(), s.ep.stats().time_wait_recycled), (0, 1));
}

#[test]
fn cl_09_time_wait_table_is_capped() {
    let mut s = srv(2);
    for p in 1..=3 {
        time_wait(&mut s, client(p), None);
    }
    assert_eq!(s.ep.time_wait_count(), 2);
    assert_eq!((s.ep.stats().time_wait_entered, s.ep.stats().time_wait_overflows), (3, 1));
    // The third 4-tuple kept no entry: its stray segment reaches the listener.
    s.deliver(client(3), Seg::ack(C_ISN + 1, 7).data(b"x"));
    s.expect_one().assert_flags(TcpFlags::RST).assert_seq_ack(7, 0);
    assert_eq!(EndpointConfig::default().max_time_wait, 65_536);
}

#[test]
fn cl_09_connection_not_in_time_wait_leaves_no_entry() {
    let mut s = srv(16);
    let (h, _) = s.handshake(client(1));
    let mut conn = s.conns.remove(&h).unwrap();
    conn.abort();
    s.ep.connection_closed(h, &conn);
    assert_eq!((s.ep.time_wait_count(), s.ep.stats().time_wait_entered), (0, 0));
    assert_eq!(s.ep.connection_count(), 0);
    // Closing twice is harmless.
    s.ep.connection_closed(h, &conn);
    assert_eq!(s.ep.connection_count(), 0);
}
