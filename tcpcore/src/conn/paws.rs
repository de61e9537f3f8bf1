//! Timestamps on arrival: TS.Recent (RFC 7323 §4.3) and PAWS, protection against wrapped
//! sequences (RFC 7323 §5), with the idle rule of §5.5 and Linux's exception for reordered
//! duplicate ACKs.

use core::time::Duration;

use super::Connection;
use crate::wire::Segment;
use crate::Instant;

/// RFC 7323 §5.5: after 2^31 ms without an update, TS.Recent may have wrapped relative to
/// the peer's clock and is no longer valid for PAWS. Linux `TCP_PAWS_24DAYS`.
pub(crate) const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 60 * 60);

impl Connection {
    /// TS.Recent, if timestamps are in use and it was updated within [`PAWS_IDLE`].
    fn ts_recent_valid(&self, now: Instant) -> Option<u32> {
        self.ts_recent.filter(|_| now - self.ts_recent_at <= PAWS_IDLE)
    }

    /// RFC 7323 §5.3 R1: the segment carries SEG.TSval < TS.Recent, TS.Recent is valid and
    /// the RST bit is not set: an old duplicate, not acceptable. RSTs are exempt ("RST
    /// segments ... acceptable regardless of their timestamp", §5.2).
    pub(crate) fn paws_rejects(&self, now: Instant, seg: &Segment<'_>) -> bool {
        if seg.tcp.flags.rst() {
            return false;
        }
        let (Some(recent), Some(ts)) = (self.ts_recent_valid(now), seg.tcp.options.timestamps)
        else {
            return false;
        };
        (ts.tsval.wrapping_sub(recent) as i32) < 0 && !self.disordered_ack(seg, recent)
    }

    /// Linux `tcp_disordered_ack`: a pure duplicate ACK at RCV.NXT that changes no window
    /// and is at most an RTO older than TS.Recent was merely overtaken by a later segment;
    /// dropping it would lose a duplicate ACK (and its SACK blocks) during recovery.
    fn disordered_ack(&self, seg: &Segment<'_>, recent: u32) -> bool {
        let t = &seg.tcp;
        let Some(ts) = t.options.timestamps else { return false };
        let rto_ms = self.rtt.rto().as_millis().min(u128::from(u32::MAX)) as u32;
        t.flags.ack()
            && !t.flags.syn()
            && !t.flags.fin()
            && seg.payload.is_empty()
            && t.seq == self.rcv_nxt
            && t.ack == self.snd_una
            && u32::from(t.window) << self.snd_wscale == self.snd_wnd
            && recent.wrapping_sub(ts.tsval) <= rto_ms
    }

    /// R1: "Send an acknowledgment in reply ... and drop the segment", counted. ACKs for
    /// segments without data share the out-of-window limit (Linux `tcp_oow_rate_limited`).
    pub(crate) fn on_paws_reject(&mut self, now: Instant, seg: &Segment<'_>) {
        self.info.cold.paws_rejected += 1;
        tracing::trace!(seq = seg.tcp.seq.0, "PAWS drop");
        self.on_unacceptable(now, seg);
    }

    /// R3 / RFC 7323 §4.3: a segment with SEG.SEQ =< Last.ACK.sent records its TSval in
    /// TS.Recent (never moving it back, unless TS.Recent has expired under §5.5).
    pub(crate) fn update_ts_recent(&mut self, now: Instant, seg: &Segment<'_>) {
        let (Some(recent), Some(ts)) = (self.ts_recent, seg.tcp.options.timestamps) else {
            return;
        };
        if seg.tcp.seq > self.last_ack_sent {
            return;
        }
        if ts.tsval.wrapping_sub(recent) as i32 >= 0 || self.ts_recent_valid(now).is_none() {
            self.ts_recent = Some(ts.tsval);
            self.ts_recent_at = now;
        }
    }
}
