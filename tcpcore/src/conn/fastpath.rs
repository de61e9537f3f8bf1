//! Header prediction (Van Jacobson's; Linux `tcp_rcv_established`'s fast path): in
//! ESTABLISHED nearly every segment is the next one expected, carrying an ACK and nothing
//! else unusual. For such a segment most of the checks of RFC 9293 §3.10.7.4 have a known
//! answer; this path skips them and runs the same steps, in the same order, as
//! [`Connection::on_synchronized`](super::Connection) would: the sequence, RST, PAWS, SYN
//! and acceptability tests are passed, the ACK is acceptable, there is no FIN and no
//! urgent data, and the text is stored in order. Anything else (a duplicate ACK, a
//! window probe, SACK blocks, an older timestamp, data out of order or beyond the room we
//! have, a remembered FIN) takes the general path, which stays the reference.

use super::{Connection, State};
use crate::wire::{Segment, TcpFlags};
use crate::Instant;

impl Connection {
    /// Process `seg` by header prediction if it qualifies; false (having changed nothing)
    /// if it does not.
    #[inline]
    pub(super) fn fast_path(&mut self, now: Instant, seg: &Segment<'_>) -> bool {
        if !self.predicted(seg) {
            return false;
        }
        let t = &seg.tcp;
        // RFC 9293 §3.10.7.4, first step: acceptable (SEG.SEQ = RCV.NXT; the text fits).
        self.on_acceptable(now);
        // Fifth step, the ACK field: SND.UNA =< SEG.ACK =< SND.MAX, so acceptable (RFC 5961
        // §5.2 too), and not a duplicate (new data acknowledged, or text carried: RFC 5681
        // §2). As `on_ack`, in its order.
        self.persist_probes = 0;
        let wnd = u32::from(t.window) << self.snd_wscale;
        let new_ack = t.ack > self.snd_una;
        let acked = t.ack.since(self.snd_una);
        self.ecn_on_ack(now, seg);
        self.rate_check_app_limited();
        if new_ack {
            self.on_new_ack(now, t.ack, t.options.timestamps.map(|ts| ts.tsecr));
        }
        self.sack_on_ack(now, seg, acked);
        self.update_send_window(seg, wnd, new_ack);
        // No FIN of ours is queued in ESTABLISHED: nothing for `on_fin_acked` to do.
        if self.state == State::Closed {
            return true;
        }
        // RFC 7323 §4.3: TS.Recent, now that the segment is acceptable.
        self.update_ts_recent(now, seg);
        // Seventh step, the text, in order: no FIN follows it (eighth step: none).
        if !seg.payload.is_empty() {
            self.note_data_arrival(now, seg);
            self.store_text(now, seg, t.seq, seg.payload);
        }
        true
    }

    /// The prediction (Linux `pred_flags` and the checks beside it): in ESTABLISHED, only
    /// ACK (and PSH) set, SEG.SEQ = RCV.NXT, a timestamp no older than TS.Recent when
    /// timestamps are in use (RFC 7323 §5.3: PAWS passes), no SACK blocks, ECN not
    /// reducing, SND.UNA =< SEG.ACK =< SND.MAX; a segment without text acknowledges new
    /// data; text fits in the room we have, with no out-of-order data held and no FIN
    /// remembered.
    #[inline]
    fn predicted(&self, seg: &Segment<'_>) -> bool {
        let t = &seg.tcp;
        if self.state != State::Established
            || t.flags.0 & !TcpFlags::PSH.0 != TcpFlags::ACK.0
            || t.seq != self.rcv_nxt
            || t.options.sack_count != 0
            || t.ack < self.snd_una
            || t.ack > self.snd_max
            || self.ecn.reducing()
        {
            return false;
        }
        let ts_ok = match (self.ts_recent, t.options.timestamps) {
            (None, _) => true,
            (Some(recent), Some(ts)) => ts.tsval.wrapping_sub(recent) as i32 >= 0,
            (Some(_), None) => false,
        };
        if !ts_ok {
            return false;
        }
        if seg.payload.is_empty() {
            return t.ack > self.snd_una;
        }
        self.peer_fin.is_none()
            && !self.recv_buf.has_ooo()
            && !(self.orphaned && self.fin_queued)
            && seg.payload.len() <= self.rcv_room_end().since(t.seq) as usize
    }
}
