//! The invariants the simulator sweep asserts after every step
//! ([`tcpcore::sim::check_connection`]), plus what only a harness that knows the connection's
//! configuration can check, for connections driven by hand.

use tcpcore::sim::{check_connection, ConnWatch};
use tcpcore::{ConnConfig, Connection, Instant};

/// Check `conn` as the simulator does, then: the buffer capacities stay within the
/// configured maxima, and the snapshot getters answer in every state.
#[track_caller]
pub fn check_conn(now: Instant, cfg: &ConnConfig, conn: &Connection, w: &mut ConnWatch) {
    check_connection(now, conn, w);
    let v = conn.seq_vars();
    let max_send = cfg.max_send_buffer.max(cfg.send_buffer);
    let max_recv = cfg.max_recv_buffer.max(cfg.recv_buffer);
    assert!(v.send_capacity <= max_send, "send capacity over {max_send}: {v:?}");
    assert!(v.recv_capacity <= max_recv, "receive capacity over {max_recv}: {v:?}");
    assert_eq!(conn.info().state, conn.state());
}
