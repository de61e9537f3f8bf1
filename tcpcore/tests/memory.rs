//! Per-connection memory (issue 12): buffers are allocated on demand and given back once
//! they are empty and the connection has been quiet for an RTO (MEM-02).
mod common;
use common::*;
use tcpcore::Instant;

/// MEM-02: after an exchange in both directions, read and acknowledged, the rings are
/// freed after one quiet RTO, not before; the next exchange allocates them again.
#[test]
fn mem_02_empty_buffers_are_given_back_after_a_quiet_rto() {
    let mut sc = Sc::established(Sc::plain());
    assert_eq!(sc.conn.buffer_bytes(), 0, "nothing allocated by the handshake");
    assert_eq!(sc.conn.poll_timeout(), None);
    for round in 0..2u32 {
        let (d, p) = (D + 100 * round, P + 200 * round);
        sc.deliver(Seg::ack(p, d).data(&bytes(0, 200)));
        assert!(sc.conn.buffer_bytes() > 0, "the receive ring is allocated on demand");
        assert_eq!(sc.read_all(), bytes(0, 200));
        sc.conn.write(&bytes(0, 100)).unwrap();
        let out = sc.expect_one();
        out.assert_seq_ack(d, p + 200);
        assert_eq!(out.len(), 100);
        sc.advance(ms(10));
        sc.deliver(Seg::ack(p + 200, d + 100));
        let (quiet_since, rto) = (sc.now, sc.conn.info().rto);
        assert!(sc.conn.buffer_bytes() > 0);
        // Quiet: the release timer is the only one, an RTO after the last data moved.
        let release = sc.conn.poll_timeout().expect("the release timer runs");
        assert!(release + ms(10) >= quiet_since + rto, "round {round}: {release}");
        assert!(sc.advance(rto - ms(20)).is_empty());
        assert!(sc.conn.buffer_bytes() > 0, "round {round}: released too early");
        assert!(sc.advance(ms(20)).is_empty());
        assert_eq!(sc.conn.buffer_bytes(), 0, "round {round}: not released");
        assert_eq!(sc.conn.poll_timeout(), None, "no timer left on an idle connection");
    }
}

/// MEM-02: bytes the application has not read keep their ring, however long it waits; once
/// read, the ring goes after a quiet RTO (the owner is asked to poll so the timer is armed).
#[test]
fn mem_02_unread_bytes_keep_their_buffer() {
    let mut sc = Sc::established(Sc::plain());
    sc.deliver(Seg::ack(P, D).data(&bytes(0, 300)));
    sc.advance(secs(10));
    assert!(sc.conn.buffer_bytes() > 0);
    assert_eq!(sc.conn.readable_bytes(), 300);
    assert_eq!(sc.read_all(), bytes(0, 300));
    assert!(sc.conn.wants_transmit(), "the owner must poll so the release timer is armed");
    sc.expect_none();
    let t = sc.conn.poll_timeout().expect("armed");
    assert_eq!(t, sc.now + sc.conn.info().rto);
    assert!(sc.next_timer().is_empty());
    assert_eq!(sc.conn.buffer_bytes(), 0);
    assert!(!sc.conn.wants_transmit());
    assert!(sc.now < Instant::from_secs(20));
}
