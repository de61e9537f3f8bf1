//! Delivery rate sampling (draft-ietf-ccwg-bbr §4.1, after
//! draft-cheng-iccrg-delivery-rate-estimation), for a controller that asks for it
//! ([`Controller::wants_rate_samples`], BBR).
//!
//! The connection-level state ([`RateState`]: `C.delivered`, `C.delivered_time`,
//! `C.first_send_time`, `C.app_limited`, `C.lost`) is held in a `Lazy`, allocated by the
//! first send of a connection whose controller samples: other connections pay one pointer.
//! The per-packet state ([`TxSnap`]) lives in the scoreboard's entries (`scoreboard.rs`),
//! stamped at every (re)transmission, so no allocation happens per segment. Counters are
//! kept as the low 32 bits of `C.delivered` and `C.lost` and as microsecond offsets from
//! the send time: differences across one flight are far below 4 GiB and 71 minutes.

use core::time::Duration;

use super::scoreboard::Entry;
use super::Connection;
use crate::cc::{Controller, LostPacket, RateSample};
use crate::Instant;

/// Connection-level delivery rate state (§4.1.2.1.1).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RateState {
    /// `C.delivered`: bytes delivered (cumulatively or selectively acknowledged).
    pub(crate) delivered: u64,
    /// `C.delivered_time`: when `delivered` last changed.
    delivered_time: Instant,
    /// `C.first_send_time`: send time of the packet most recently delivered.
    first_send_time: Instant,
    /// `C.app_limited`: the `C.delivered` at which the current application-limited phase
    /// ends, or 0.
    app_limited: u64,
    /// `C.lost`: bytes marked lost.
    pub(crate) lost: u64,
}

super::lazy::shared_default!(RateState);

/// Per-packet send state (§4.1.2.1.2), stored in each scoreboard entry.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TxSnap {
    /// Low 32 bits of `P.delivered`.
    delivered: u32,
    /// Low 32 bits of `P.lost`.
    lost: u32,
    /// `P.send_time - P.delivered_time` in microseconds (saturating).
    delivered_ago: u32,
    /// `P.send_time - P.first_send_time` in microseconds (saturating).
    first_ago: u32,
    /// `P.tx_in_flight`.
    tx_in_flight: u32,
    /// `P.is_app_limited`.
    app_limited: bool,
}

impl TxSnap {
    /// No snapshot (the controller does not sample).
    pub(crate) const ZERO: TxSnap = TxSnap {
        delivered: 0,
        lost: 0,
        delivered_ago: 0,
        first_ago: 0,
        tx_in_flight: 0,
        app_limited: false,
    };
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl RateState {
    /// §4.1.2.2 `OnPacketSent`: the snapshot of a packet sent at `now`, with `before` bytes
    /// in flight before it and `after` after it.
    pub(crate) fn on_sent(&mut self, now: Instant, before: u32, after: u32) -> TxSnap {
        if before == 0 {
            self.first_send_time = now;
            self.delivered_time = now;
        }
        TxSnap {
            delivered: self.delivered as u32,
            lost: self.lost as u32,
            delivered_ago: micros(now.saturating_duration_since(self.delivered_time)),
            first_ago: micros(now.saturating_duration_since(self.first_send_time)),
            tx_in_flight: after,
            app_limited: self.app_limited != 0,
        }
    }

    /// §4.1.2.3 `UpdateRateSample` and `GenerateRateSample` for an ACK that newly
    /// delivered `newly_acked` bytes, the newest of them sent at `xmit` with `snap` (`retx`:
    /// a retransmission). The connection fills in its own fields (MSS, in flight, ...).
    pub(crate) fn sample(
        &mut self,
        now: Instant,
        newly_acked: u32,
        newest: Option<(Instant, TxSnap, bool)>,
        min_rtt: Option<Duration>,
    ) -> RateSample {
        if newly_acked > 0 {
            self.delivered += u64::from(newly_acked);
            self.delivered_time = now;
        }
        if self.app_limited != 0 && self.delivered > self.app_limited {
            self.app_limited = 0; // the bubble is gone
        }
        let mut rs = RateSample {
            now,
            total_delivered: self.delivered,
            total_lost: self.lost,
            newly_acked,
            ..RateSample::default()
        };
        let Some((xmit, snap, retx)) = newest else { return rs };
        self.first_send_time = xmit;
        rs.prior_delivered = self.prior_delivered(&snap);
        rs.delivered = self.delivered - rs.prior_delivered;
        rs.is_app_limited = snap.app_limited;
        rs.tx_in_flight = snap.tx_in_flight;
        rs.lost = self.lost_since(&snap);
        // §4.2: an ACK of a retransmission is ambiguous (it may be the original's), so it
        // gives no RTT sample.
        rs.rtt = (!retx).then(|| now.saturating_duration_since(xmit));
        let send_elapsed = Duration::from_micros(u64::from(snap.first_ago));
        let ack_elapsed = now.saturating_duration_since(xmit)
            + Duration::from_micros(u64::from(snap.delivered_ago));
        rs.interval = send_elapsed.max(ack_elapsed);
        // A sample over less than the minimum RTT is not reliable (§4.1.2.3).
        if !rs.interval.is_zero() && min_rtt.is_none_or(|m| rs.interval >= m) {
            let us = rs.interval.as_micros().max(1);
            rs.delivery_rate = (u128::from(rs.delivered) * 1_000_000 / us) as u64;
        }
        rs
    }

    /// `C.delivered` when `snap` was taken.
    fn prior_delivered(&self, snap: &TxSnap) -> u64 {
        self.delivered.wrapping_sub(u64::from((self.delivered as u32).wrapping_sub(snap.delivered)))
    }

    /// `C.lost - P.lost`.
    fn lost_since(&self, snap: &TxSnap) -> u64 {
        u64::from((self.lost as u32).wrapping_sub(snap.lost))
    }
}

impl Connection {
    /// Rate sampling is on: the controller wants samples and the scoreboard exists.
    pub(crate) fn rate_sampling(&self) -> bool {
        self.cc.wants_rate_samples() && self.sack_tx.sb.is_some()
    }

    /// Bytes in flight for the rate sampler (`C.inflight`, RFC 6675 `pipe`).
    pub(crate) fn rate_in_flight(&self) -> u32 {
        self.sack_pipe()
    }

    /// §4.1.2.4 `CheckIfApplicationLimited`: nothing unsent, cwnd not full, no loss
    /// waiting to be resent: the application left the window unused.
    #[inline]
    pub(crate) fn rate_check_app_limited(&mut self) {
        if !self.rate_sampling() {
            return;
        }
        let data_end = self.data_start() + self.send_buf.len() as u32;
        let unsent = data_end > self.snd_max || (self.fin_queued && self.snd_max <= data_end);
        let in_flight = self.rate_in_flight();
        let lost = self.sack_tx.sb.as_ref().map_or(0, |sb| sb.lost_bytes);
        if !unsent && in_flight < self.cc.window() && lost == 0 {
            self.rate_mark_app_limited(in_flight);
        }
    }

    /// §4.1.2.4 `MarkConnectionAppLimited`.
    fn rate_mark_app_limited(&mut self, in_flight: u32) {
        let r = &mut *self.rate;
        r.app_limited = (r.delivered + u64::from(in_flight)).max(1);
    }

    /// The snapshot for a segment sent now (`before` bytes in flight before it), and the
    /// controller's per-transmit step (§5.2.2).
    pub(crate) fn rate_on_sent(&mut self, now: Instant, before: u32, after: u32) -> TxSnap {
        let app_limited = self.rate.app_limited != 0;
        self.cc.on_transmit(now, before, app_limited);
        self.rate.on_sent(now, before, after)
    }

    /// One entry newly marked lost: `C.lost` grows and the controller hears of it
    /// (§5.2.4 `HandleLostPacket`). Returns the bytes.
    pub(crate) fn rate_on_lost(
        rate: &mut RateState,
        cc: &mut impl Controller,
        e: &Entry,
        now: Instant,
        mss: u32,
        has_sack: bool,
    ) -> u32 {
        // An entry of several segments (a coarsened scoreboard, more than its capacity in
        // flight) is lost for a hole the SACK blocks did not cover; the rest of it was most
        // likely delivered. Counting its whole length would show BBR a loss rate several
        // times the path's: one segment stands for it.
        let size = e.end.since(e.start).min(mss);
        rate.lost += u64::from(size);
        let p = LostPacket {
            now,
            mss,
            size,
            tx_in_flight: e.snap.tx_in_flight,
            lost_since_sent: rate.lost_since(&e.snap),
            is_app_limited: e.snap.app_limited,
            total_delivered: rate.delivered,
            has_sack,
        };
        cc.on_packet_lost(&p);
        size
    }

    /// §4.1.2.3 `GenerateRateSample` for an ACK that newly delivered `newly_acked` bytes,
    /// the newest of them sent at `xmit` with `snap` (`retx`: a retransmission), and marked
    /// `newly_lost` bytes lost; then the controller's per-ACK steps (§5.2.3).
    pub(crate) fn rate_on_ack(
        &mut self,
        now: Instant,
        newly_acked: u32,
        newest: Option<(Instant, TxSnap, bool)>,
        newly_lost: u32,
    ) {
        let min_rtt = self.sack_min_rtt();
        let mut rs = self.rate.sample(now, newly_acked, newest, min_rtt);
        rs.newly_lost = newly_lost;
        rs.mss = self.effective_mss();
        rs.in_flight = self.rate_in_flight();
        rs.is_cwnd_limited = self.cwv.cwnd_limited();
        rs.in_recovery = self.recovery.active || self.sack_tx.after_rto;
        rs.has_sack = self.sack_active();
        self.cc.on_rate_sample(&rs);
        if self.cc.sends_app_limited() {
            let in_flight = rs.in_flight;
            self.rate_mark_app_limited(in_flight);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BBR-06: a steady flow of 1000-byte packets, one per millisecond, each acknowledged
    /// 100 ms after it was sent, samples 1 MB/s; the samples of packets sent while the
    /// application left the window unused are marked, until that data is delivered.
    #[test]
    fn bbr_06_rate_samples_follow_the_delivery_rate_and_app_limited_phases() {
        let mut r = RateState::default();
        let ms = |n: u64| Instant::from_micros(n * 1000);
        let rtt = Duration::from_millis(100);
        let mut sent: Vec<(Instant, TxSnap)> = Vec::new();
        let mut in_flight = 0u32;
        let mut last = RateSample::default();
        for t in 0..500u64 {
            // Deliver what was sent 100 ms ago.
            if t >= 100 {
                let (xmit, snap) = sent[(t - 100) as usize];
                in_flight -= 1000;
                last = r.sample(ms(t), 1000, Some((xmit, snap, false)), Some(rtt));
            }
            if t == 250 {
                r.app_limited = (r.delivered + u64::from(in_flight)).max(1);
            }
            let snap = r.on_sent(ms(t), in_flight, in_flight + 1000);
            in_flight += 1000;
            sent.push((ms(t), snap));
            if t == 299 {
                assert_eq!(last.delivery_rate, 1_000_000, "steady state");
                assert_eq!(last.rtt, Some(rtt));
                assert!(!last.is_app_limited);
                assert_eq!(last.tx_in_flight, 100_000);
            }
            if t == 360 {
                assert!(last.is_app_limited, "sent after the mark");
            }
        }
        assert!(!last.is_app_limited, "the bubble was delivered");
        assert_eq!(r.app_limited, 0);
        // A sample over less than the minimum RTT gives no rate.
        let snap = r.on_sent(ms(500), 0, 1000);
        let rs = r.sample(ms(501), 1000, Some((ms(500), snap, true)), Some(rtt));
        assert_eq!((rs.delivery_rate, rs.rtt), (0, None), "a retransmission gives no RTT");
    }
}
