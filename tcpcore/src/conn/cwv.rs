//! Congestion window validation: the restart window after idle (RFC 5681 §4.1, Linux
//! `tcp_slow_start_after_idle` = 1 and `tcp_cwnd_restart`), and no growth of cwnd while the
//! sender does not use it (RFC 7661's concern, in Linux's form: `tcp_cwnd_validate` and
//! `tcp_is_cwnd_limited`).

use super::Connection;
use crate::cc::Controller;
use crate::wire::SeqNum;
use crate::Instant;

/// How fully the sender used cwnd over the last window of data (Linux `max_packets_out`,
/// `is_cwnd_limited`, `cwnd_usage_seq`), and when it last sent data (`lsndtime`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CwndUsage {
    /// When new data was last sent (or the sender last restarted after idle).
    last_send: Option<Instant>,
    /// Most bytes in flight after a send in the current window.
    max_flight: u32,
    /// A send in the current window filled cwnd.
    limited: bool,
    /// The current window ends when SND.UNA reaches this.
    window_end: SeqNum,
}

impl CwndUsage {
    /// When new data was last sent.
    pub(crate) fn last_send(&self) -> Option<Instant> {
        self.last_send
    }

    /// A send in the current window filled cwnd (draft-ietf-ccwg-bbr `C.is_cwnd_limited`).
    pub(crate) fn cwnd_limited(&self) -> bool {
        self.limited
    }
}

impl Connection {
    /// RFC 5681 §4.1: before sending into an empty pipe after an idle period longer than the
    /// RTO, cwnd restarts from the restart window RW = min(IW, cwnd). As Linux
    /// (`tcp_cwnd_restart`): cwnd halves for every RTO of idleness down to RW, and ssthresh
    /// first keeps three quarters of the old cwnd (`tcp_current_ssthresh`), so the sender
    /// slow-starts back to where it was instead of bursting its old window at line rate.
    pub(crate) fn restart_after_idle(&mut self, now: Instant) {
        if self.snd_una != self.snd_max || !self.state.is_synchronized() || !self.send_pending() {
            return;
        }
        if !self.cfg.slow_start_after_idle {
            return;
        }
        let Some(last) = self.cwv.last_send else { return };
        let rto = self.rtt.rto();
        let idle = now.saturating_duration_since(last);
        if idle <= rto || rto.is_zero() {
            return;
        }
        self.cwv.last_send = Some(now);
        let mss = self.effective_mss();
        let mut cwnd = self.cc.window();
        let restart = cwnd.min(self.cfg.initial_cwnd.max(1).saturating_mul(mss));
        let ssthresh = self.cc.ssthresh().max((cwnd >> 1) + (cwnd >> 2));
        let mut left = idle - rto;
        while !left.is_zero() && cwnd > restart {
            cwnd >>= 1;
            left = left.saturating_sub(rto);
        }
        let cwnd = cwnd.max(restart);
        tracing::trace!(?idle, cwnd, ssthresh, "cwnd restart after idle");
        self.cc.on_idle_restart(now, cwnd, ssthresh, mss);
    }

    /// After sending data: remember the send time and how much of cwnd is in use (Linux
    /// `tcp_cwnd_validate`). A window in which a send filled cwnd is cwnd-limited; otherwise
    /// the most bytes in flight is tracked. `data_mss` is [`Connection::data_mss`].
    pub(crate) fn note_cwnd_usage(&mut self, now: Instant, data_mss: u32) {
        self.cwv.last_send = Some(now);
        let flight =
            if self.sack_active() { self.sack_pipe() } else { self.snd_nxt.since(self.snd_una) };
        let limited = flight.saturating_add(data_mss) > self.cc.window();
        let u = &mut self.cwv;
        if self.snd_una >= u.window_end || limited || (!u.limited && flight > u.max_flight) {
            u.limited = limited;
            u.max_flight = flight;
            u.window_end = self.snd_max;
        }
    }

    /// Whether an ACK may grow cwnd (Linux `tcp_is_cwnd_limited`): in slow start while cwnd
    /// is below twice the most bytes in flight in the last window (the application may be
    /// just ramping up), in congestion avoidance only when a send filled cwnd. A sender that
    /// does not use its window gets no evidence that a larger one is safe (RFC 7661 §1).
    pub(crate) fn is_cwnd_limited(&self) -> bool {
        let cwnd = self.cc.window();
        if cwnd < self.cc.ssthresh() {
            return cwnd < self.cwv.max_flight.saturating_mul(2);
        }
        self.cwv.limited
    }
}
