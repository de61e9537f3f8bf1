//! The persist timer gives up like Linux (`tcp_probe_timer`): zero-window probes the peer
//! never answers count like retransmissions (RX-06, KA-02): `data_retries` (tcp_retries2,
//! 15) of them fail the connection, an orphaned one fails after 8 (tcp_orphan_retries 0),
//! and a user timeout (RFC 5482, TCP_USER_TIMEOUT) ends a zero-window stall that made no
//! progress. Probes the peer answers keep the connection open indefinitely (RFC 1122
//! §4.2.2.17).
mod common;
use common::*;
use tcpcore::{ConnConfig, ConnectionError, Event, State};

/// A client whose peer closed its window with 1000 bytes of ours queued and none in flight.
#[track_caller]
fn zero_window(cfg: ConnConfig) -> Sc {
    let mut sc = Sc::established(cfg);
    sc.deliver(Seg::ack(P, D).window(0));
    sc.conn.write(&bytes(0, 1000)).unwrap();
    sc.expect_none();
    sc
}

/// Run timers for up to `limit`, never answering; returns the zero-window probes sent.
#[track_caller]
fn probes_until_closed(sc: &mut Sc, limit: std::time::Duration) -> usize {
    let out = sc.advance(limit);
    assert!(out.iter().all(|o| o.len() == 0 && o.seq() == D - 1), "{out:#?}");
    out.len()
}

#[track_caller]
fn assert_timed_out(sc: &mut Sc) {
    assert_eq!(sc.conn.state(), State::Closed);
    assert_eq!(sc.conn.error(), Some(ConnectionError::TimedOut));
    assert_eq!(sc.conn.poll_timeout(), None);
}

/// RX-06 / KA-02: a peer that closed its window and went silent is given up after
/// `data_retries` (15) unanswered probes, not probed forever.
#[test]
fn rx_06_unanswered_zero_window_probes_fail_after_data_retries() {
    let mut sc = zero_window(Sc::plain());
    let probes = probes_until_closed(&mut sc, secs(24 * 3600));
    assert_eq!(probes, 15);
    assert_timed_out(&mut sc);
    assert_eq!(sc.events().last(), Some(&Event::Closed(Some(ConnectionError::TimedOut))));
    assert_eq!(sc.conn.info().probes_out, 15);
}

/// RX-06: the limit follows `data_retries`.
#[test]
fn rx_06_probe_limit_is_data_retries() {
    let mut sc = zero_window(ConnConfig { data_retries: 3, ..Sc::plain() });
    assert_eq!(probes_until_closed(&mut sc, secs(3600)), 3);
    assert_timed_out(&mut sc);
}

/// RX-06 (RFC 1122 §4.2.2.17): probes answered by a zero window keep it open: each answer
/// resets the count, however long the window stays shut.
#[test]
fn rx_06_answered_probes_keep_the_connection_open() {
    let mut sc = zero_window(Sc::plain());
    for _ in 0..40 {
        let out = sc.next_timer();
        assert_eq!(out.len(), 1);
        sc.deliver(Seg::ack(P, D).window(0));
    }
    assert_eq!(sc.conn.state(), State::Established);
    sc.deliver(Seg::ack(P, D).window(10_000));
    assert_data(&sc.expect_one(), D, 1000);
}

/// RX-06 / CL: after the application closed (an orphan with data and FIN queued behind a
/// zero window), 8 unanswered probes end it (Linux tcp_orphan_retries 0 means 8).
#[test]
fn rx_06_orphan_gives_up_after_eight_probes() {
    let mut sc = zero_window(Sc::plain());
    sc.conn.close();
    sc.expect_none();
    assert_eq!(probes_until_closed(&mut sc, secs(24 * 3600)), 8);
    assert_eq!(sc.conn.state(), State::Closed);
    assert_eq!(sc.conn.error(), Some(ConnectionError::TimedOut));
}

/// KA-02 (RFC 5482): with a user timeout, a zero-window stall that makes no progress fails
/// TimedOut at the first probe due once the timeout has passed since the first probe, even
/// though the peer answers every probe.
#[test]
fn ka_02_user_timeout_ends_a_zero_window_stall() {
    let mut sc = zero_window(Sc::plain());
    sc.conn.set_user_timeout(Some(secs(30)));
    let first = sc.next_timer();
    assert_eq!(first.len(), 1);
    let start = sc.now;
    sc.deliver(Seg::ack(P, D).window(0));
    while sc.conn.state() != State::Closed {
        assert!(sc.now - start < secs(200), "still open at {}", sc.now);
        if !sc.next_timer().is_empty() {
            sc.deliver(Seg::ack(P, D).window(0));
        }
    }
    assert!(sc.now - start >= secs(30), "closed early at {}", sc.now);
    assert_eq!(sc.conn.error(), Some(ConnectionError::TimedOut));
}
