//! NewReno congestion control: slow start and congestion avoidance (RFC 5681 §3.1), with the
//! window reductions of fast recovery (RFC 6582).

use super::{AckInfo, Controller};
use crate::Instant;

/// RFC 5681 / RFC 6582 NewReno.
#[derive(Debug, Clone)]
pub struct NewReno {
    cwnd: u32,
    ssthresh: u32,
    /// Bytes acknowledged since cwnd last grew in congestion avoidance (RFC 5681 §3.1,
    /// "appropriate byte counting" variant of equation 3).
    acked_in_ca: u32,
}

impl NewReno {
    /// A controller with an initial window of `initial_segments` × `mss` (RFC 6928) and an
    /// arbitrarily high initial ssthresh (RFC 5681 §3.1).
    pub fn new(initial_segments: u32, mss: u32) -> Self {
        NewReno { cwnd: initial_segments.max(1) * mss, ssthresh: u32::MAX, acked_in_ca: 0 }
    }
}

impl Controller for NewReno {
    fn window(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn on_ack(&mut self, ack: &AckInfo) {
        let (acked, mss) = (ack.acked, ack.mss);
        if self.cwnd < self.ssthresh {
            // RFC 5681 §3.1 equation 2, with L = 2 (RFC 3465 §2.2), ending at ssthresh
            // (as Linux `tcp_slow_start`): no overshoot above it after a recovery.
            self.cwnd = self.cwnd.saturating_add(acked.min(2 * mss)).min(self.ssthresh);
        } else {
            // RFC 5681 §3.1: about one MSS per RTT.
            self.acked_in_ca = self.acked_in_ca.saturating_add(acked);
            if self.acked_in_ca >= self.cwnd {
                self.acked_in_ca -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(mss);
            }
        }
    }

    fn on_loss(&mut self, _now: Instant, in_flight: u32, mss: u32) {
        // RFC 5681 §3.2 equation 4; cwnd = ssthresh (inflation is the recovery logic's part).
        self.ssthresh = (in_flight / 2).max(2 * mss);
        self.cwnd = self.ssthresh;
        self.acked_in_ca = 0;
    }

    fn on_recovery_end(&mut self, _now: Instant, in_flight: u32, mss: u32) {
        // RFC 6582 §3.2 step 3, option 1: min(ssthresh, FlightSize + SMSS).
        self.cwnd = self.ssthresh.min(in_flight.saturating_add(mss)).max(mss);
    }

    fn on_rto(&mut self, _now: Instant, in_flight: u32, mss: u32) {
        // RFC 5681 §3.1 equation 4 and the loss window of one segment.
        self.ssthresh = (in_flight / 2).max(2 * mss);
        self.cwnd = mss;
        self.acked_in_ca = 0;
    }

    fn set_window(&mut self, cwnd: u32, mss: u32) {
        self.cwnd = cwnd.max(mss);
        self.acked_in_ca = 0;
    }

    fn on_idle_restart(&mut self, _now: Instant, cwnd: u32, ssthresh: u32, mss: u32) {
        self.ssthresh = ssthresh;
        self.cwnd = cwnd.max(mss);
        self.acked_in_ca = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::seq::SeqNum;

    fn ack(acked: u32, mss: u32) -> AckInfo {
        let (snd_una, snd_max) = (SeqNum(0), SeqNum(0));
        let (now, rtt_sample, srtt) = (Instant::ZERO, None, None);
        let (paced, pacing_rate) = (false, 0);
        AckInfo { now, acked, mss, rtt_sample, srtt, snd_una, snd_max, paced, pacing_rate }
    }

    #[test]
    fn rx_03_slow_start_then_avoidance() {
        let mss = 1000;
        let mut cc = NewReno::new(10, mss);
        let t = Instant::ZERO;
        cc.on_ack(&ack(1000, mss));
        assert_eq!(cc.window(), 11_000, "slow start grows by the bytes acked");
        cc.on_loss(t, 20_000, mss);
        assert_eq!((cc.window(), cc.ssthresh()), (10_000, 10_000));
        for _ in 0..10 {
            cc.on_ack(&ack(1000, mss));
        }
        assert_eq!(cc.window(), 11_000, "one MSS per window in congestion avoidance");
        cc.on_rto(t, 11_000, mss);
        assert_eq!((cc.window(), cc.ssthresh()), (1000, 5500));
    }

    #[test]
    fn rx_03_slow_start_stops_at_ssthresh() {
        let mss = 1000;
        let mut cc = NewReno::new(20, mss);
        let t = Instant::ZERO;
        cc.on_loss(t, 20_000, mss);
        cc.on_recovery_end(t, 8_000, mss);
        assert_eq!((cc.window(), cc.ssthresh()), (9_000, 10_000));
        cc.on_ack(&ack(2000, mss));
        assert_eq!(cc.window(), 10_000, "9 + 2 segments capped at ssthresh");
    }
}
