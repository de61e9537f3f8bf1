//! The sequence-space and buffer invariants every connection keeps after every step: what
//! [`Host::check_invariants`](super::Host::check_invariants) asserts in the simulator, and
//! what a harness that drives connections by hand (a fuzz target) asserts the same way.

use crate::wire::SeqNum;
use crate::{Connection, Instant, State};

/// What the previous check saw of one connection, for the next one to compare against.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnWatch {
    /// RCV.NXT after the previous step, once the peer's ISN is known.
    rcv_nxt: Option<SeqNum>,
    /// SND.UNA and SND.MAX after the previous step.
    snd: Option<(SeqNum, SeqNum)>,
    /// The right edge of the send window (SND.UNA + SND.WND) furthest to the right so far.
    edge: Option<SeqNum>,
}

/// Check `conn` against what `w` saw at the previous step, panicking with the connection's
/// variables if an invariant fails, and remember what the next check compares against:
///
/// - SND.UNA ≤ SND.NXT ≤ SND.MAX, and neither SND.UNA nor SND.MAX ever moves left;
/// - SND.MAX ≤ E (+ 1 while our SYN is unacknowledged), where E is the furthest right edge
///   SND.UNA + SND.WND this connection has held after any step. We send only within the
///   window offered when sending (data and FIN alike), and a well-behaved receiver never
///   moves its right edge left (RFC 9293 §3.8.6.2.2), so as data is acknowledged and the
///   window shrinks, E stays put and everything sent stays below it. The SYN is sent before
///   any window is known, hence the + 1, and so is the data a Fast Open SYN carries
///   (RFC 7413 §4.2.1), hence no check in SYN-SENT;
/// - RCV.NXT never moves left once the peer's ISN is known;
/// - the send buffer holds no more than its capacity, the receive buffer no more than its
///   limit (capacity plus the slack for scale round-off, RFC 7323 §2.4), and the window we
///   advertised (RCV.ADV - RCV.NXT) fits the space left below that limit.
#[track_caller]
pub fn check_connection(now: Instant, conn: &Connection, w: &mut ConnWatch) {
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
        "SND.UNA <= SND.NXT <= SND.MAX violated: {}",
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
    let syn_sent = conn.state() == crate::State::SynSent;
    assert!(
        syn_sent || v.snd_max <= e + syn_unacked,
        "sent beyond the offered window (edge {e:?}): {}",
        who()
    );
    if !matches!(conn.state(), State::SynSent | State::Listen) {
        if let Some(prev) = w.rcv_nxt {
            assert!(v.rcv_nxt >= prev, "RCV.NXT moved left from {prev:?}: {}", who());
        }
        w.rcv_nxt = Some(v.rcv_nxt);
    }
    assert!(v.send_buffered <= v.send_capacity, "send buffer over capacity: {}", who());
    assert!(v.recv_buffered <= v.recv_limit, "receive buffer over its limit: {}", who());
    if conn.state().can_receive() && v.rcv_adv > v.rcv_nxt {
        let free = (v.recv_limit - v.recv_buffered) as u32;
        assert!(
            v.rcv_adv.since(v.rcv_nxt) <= free,
            "advertised more than the free space {free}: {}",
            who()
        );
    }
}
