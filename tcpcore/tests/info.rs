//! The `TcpInfo` snapshot: fields packetdrill's scripts read through Linux's `TCP_INFO`.
mod common;

use common::*;
use tcpcore::Instant;

#[test]
fn info_last_data_recv_starts_at_the_handshake_then_follows_data_like_linux() {
    // Linux `tcpi_last_data_recv` counts from `lrcvtime`, set when the handshake completes
    // and at every data arrival (tcp_info/tcp-info-last_data_recv.pkt).
    let mut sc = Sc::established(Sc::plain());
    assert_eq!(sc.conn.info().last_data_recv, Some(Instant::from_millis(10)));
    sc.advance(secs(1));
    assert_eq!(sc.conn.info().last_data_recv, Some(Instant::from_millis(10)), "no data yet");
    sc.deliver(Seg::ack(P, D).data(b"hello"));
    assert_eq!(sc.conn.info().last_data_recv, Some(Instant::from_millis(1_010)));
}
