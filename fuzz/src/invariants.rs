//! The invariants the simulator sweep asserts after every step (`tcpcore::sim::Host`'s
//! `check_invariants`), restated over the public API for connections driven by hand.

use tcpcore::wire::SeqNum;
use tcpcore::{ConnConfig, Connection, Instant, State};

/// What the previous check saw of one connection.
#[derive(Clone, Copy, Debug, Default)]
pub struct Watch {
    rcv_nxt: Option<SeqNum>,
    snd: Option<(SeqNum, SeqNum)>,
    /// The furthest right edge SND.UNA + SND.WND held after any step.
    edge: Option<SeqNum>,
}

/// Check `conn` against its previous state in `w`, panicking with its variables on failure:
///
/// - SND.UNA ≤ SND.NXT ≤ SND.MAX, and neither SND.UNA nor SND.MAX moves left;
/// - SND.MAX ≤ E (+ 1 while our SYN is unacknowledged), E the furthest right edge
///   SND.UNA + SND.WND ever held: nothing is sent beyond a window the peer offered, however
///   the peer moves its edge afterwards (RFC 9293 §3.8.6.2.1);
/// - RCV.NXT never moves left once synchronized;
/// - the buffers hold no more than their capacities, the capacities stay within the
///   configured maxima, and the advertised window fits the free receive space.
#[track_caller]
pub fn check_conn(now: Instant, cfg: &ConnConfig, conn: &Connection, w: &mut Watch) {
    let v = conn.seq_vars();
    let who = || {
        format!(
            "{} -> {} at {now} in {:?}: {v:?}",
            conn.local_addr(),
            conn.remote_addr(),
            conn.state()
        )
    };
    assert!(
        v.snd_una <= v.snd_nxt && v.snd_nxt <= v.snd_max,
        "SND.UNA<=SND.NXT<=SND.MAX: {}",
        who()
    );
    if let Some((una, max)) = w.snd {
        assert!(v.snd_una >= una, "SND.UNA moved left from {una:?}: {}", who());
        assert!(v.snd_max >= max, "SND.MAX moved left from {max:?}: {}", who());
    }
    w.snd = Some((v.snd_una, v.snd_max));
    let edge = v.snd_una + v.snd_wnd;
    let e = w.edge.map_or(edge, |e| e.max(edge));
    w.edge = Some(e);
    let syn_unacked = u32::from(v.snd_una == v.iss);
    assert!(v.snd_max <= e + syn_unacked, "sent beyond the offered window (edge {e:?}): {}", who());
    if !matches!(conn.state(), State::SynSent | State::Listen) {
        if let Some(prev) = w.rcv_nxt {
            assert!(v.rcv_nxt >= prev, "RCV.NXT moved left from {prev:?}: {}", who());
        }
        w.rcv_nxt = Some(v.rcv_nxt);
    }
    assert!(v.send_buffered <= v.send_capacity, "send buffer over capacity: {}", who());
    assert!(v.recv_buffered <= v.recv_capacity, "receive buffer over capacity: {}", who());
    assert!(v.send_capacity <= cfg.max_send_buffer.max(cfg.send_buffer), "send cap: {}", who());
    assert!(v.recv_capacity <= cfg.max_recv_buffer.max(cfg.recv_buffer), "recv cap: {}", who());
    if conn.state().can_receive() && v.rcv_adv > v.rcv_nxt {
        let free = (v.recv_capacity - v.recv_buffered) as u32;
        assert!(v.rcv_adv.since(v.rcv_nxt) <= free, "advertised more than free {free}: {}", who());
    }
    // The snapshot getters must not panic in any state either.
    let info = conn.info();
    assert_eq!(info.state, conn.state());
}
