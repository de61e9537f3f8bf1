//! Closing races (CL group): a reset while our data is still unacknowledged in LAST-ACK or
//! CLOSING, and a stale out-of-order FIN that later data runs past (RX-09).
mod common;
use common::*;
use tcpcore::{ConnectionError, Event, ReadError, State};

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

/// RX-09 / CL-13: an out-of-order FIN that later data runs past is stale: the real FIN at
/// the end of that data ends the stream (before, the stale FIN was kept and the real one
/// ignored, so the reader never saw end of stream).
#[test]
fn rx_09_stale_out_of_order_fin_is_discarded_when_data_runs_past_it() {
    let mut sc = Sc::established(Sc::plain());
    sc.deliver(Seg::ack(P + 100, D).data(&bytes(100, 100)).fin());
    sc.output();
    sc.deliver(Seg::ack(P, D).data(&bytes(0, 300)).fin());
    sc.output();
    assert_eq!(sc.read_all(), bytes(0, 300));
    let mut b = [0u8; 8];
    assert_eq!(sc.conn.read(&mut b), Ok(0), "end of stream");
    assert_eq!(sc.conn.state(), State::CloseWait);
    assert!(sc.events().contains(&Event::PeerFinished));
}

/// RX-09 / CL-13: the same when the data past the stale FIN arrives out of order too, and
/// the hole before it is filled last.
#[test]
fn rx_09_stale_fin_superseded_by_a_later_fin_out_of_order() {
    let mut sc = Sc::established(Sc::plain());
    sc.deliver(Seg::ack(P + 100, D).data(&bytes(100, 100)).fin());
    sc.deliver(Seg::ack(P + 200, D).data(&bytes(200, 100)).fin());
    sc.deliver(Seg::ack(P, D).data(&bytes(0, 100)));
    sc.output();
    assert_eq!(sc.read_all(), bytes(0, 300));
    let mut b = [0u8; 8];
    assert_eq!(sc.conn.read(&mut b), Ok(0), "end of stream");
    assert_eq!(sc.conn.state(), State::CloseWait);
    assert_ne!(sc.conn.read(&mut b), Err(ReadError::WouldBlock));
}
