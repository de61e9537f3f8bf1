//! Closing races (CL group): a reset while our data is still unacknowledged in LAST-ACK or
//! CLOSING.
mod common;
use common::*;
use tcpcore::{ConnectionError, Event, State};

/// The connection was reset: state, error and the final event.
#[track_caller]
fn assert_reset(sc: &mut Sc) {
    assert_eq!(sc.conn.state(), State::Closed);
    assert_eq!(sc.conn.error(), Some(ConnectionError::Reset));
    assert_eq!(sc.events().last(), Some(&Event::Closed(Some(ConnectionError::Reset))));
}

/// CLOSE-WAIT (the peer's FIN at P taken), then 500 bytes of ours and our FIN sent by
/// `close`: LAST-ACK with the data unacknowledged.
#[track_caller]
fn last_ack_with_data_in_flight() -> Sc {
    let mut sc = Sc::established(Sc::plain());
    sc.advance(ms(10));
    sc.deliver(Seg::ack(P, D).fin());
    assert_eq!(sc.conn.state(), State::CloseWait);
    assert_eq!(sc.read_all(), b"");
    sc.conn.write(&bytes(0, 500)).unwrap();
    sc.conn.close();
    let out = sc.output();
    assert_eq!(out.iter().map(Out::len).sum::<usize>(), 500);
    assert_eq!(sc.conn.state(), State::LastAck);
    sc.events();
    sc
}

/// CL-12: a RST at RCV.NXT in LAST-ACK while our data is unacknowledged means the peer did
/// not take it: reported as a reset (Linux ECONNRESET), not as a clean close.
#[test]
fn cl_12_rst_in_last_ack_with_unacked_data_is_connection_reset() {
    let mut sc = last_ack_with_data_in_flight();
    sc.deliver(Seg::rst(P + 1));
    assert_reset(&mut sc);
}

/// CL-12: in CLOSING (simultaneous close) with our data unacknowledged, likewise.
#[test]
fn cl_12_rst_in_closing_with_unacked_data_is_connection_reset() {
    let mut sc = Sc::established(Sc::plain());
    sc.conn.write(&bytes(0, 500)).unwrap();
    sc.conn.shutdown_write();
    let out = sc.output();
    assert_eq!(out.iter().map(Out::len).sum::<usize>(), 500);
    sc.advance(ms(5));
    sc.deliver(Seg::ack(P, D).fin());
    assert_eq!(sc.conn.state(), State::Closing);
    sc.output();
    sc.events();
    sc.deliver(Seg::rst(P + 1));
    assert_reset(&mut sc);
}

/// CL-12: once all our data is acknowledged and only the FIN is outstanding, a RST in
/// LAST-ACK still ends the connection quietly (RFC 9293 §3.10.7.4).
#[test]
fn cl_12_rst_in_last_ack_with_only_the_fin_outstanding_is_a_clean_close() {
    let mut sc = last_ack_with_data_in_flight();
    sc.deliver(Seg::ack(P + 1, D + 500));
    assert_eq!(sc.conn.state(), State::LastAck);
    sc.deliver(Seg::rst(P + 1));
    assert_eq!(sc.conn.state(), State::Closed);
    assert_eq!(sc.conn.error(), None);
}
