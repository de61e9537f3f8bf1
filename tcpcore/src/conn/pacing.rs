//! Pacing (issue 15 item 3): a connection's data spread over time instead of leaving as a
//! burst per window, as Linux's internal TCP pacing does (`tcp_update_pacing_rate`,
//! `tcp_pacing_check` with its `pacing_timer`, the earliest departure time `tcp_wstamp_ns`,
//! `tcp_tso_autosize`). On when [`ConnConfig::pacing`] or [`ConnConfig::max_pacing_rate`] is
//! set, or the controller sets its own rate ([`Controller::pacing_rate`], as BBR does).
//!
//! - Rate, in bytes per second: the controller's, else Linux's default, `max(cwnd, flight)
//!   / SRTT` times 2 in slow start and 1.2 in congestion avoidance (`tcp_pacing_ss_ratio`
//!   = 200, `tcp_pacing_ca_ratio` = 120). Slow start is Linux's test, cwnd < ssthresh / 2:
//!   nearing ssthresh the sender already slows down. Capped by `max_pacing_rate`. Without an
//!   RTT sample there is no rate and nothing is held.
//! - Quantum: one release is about a millisecond of data at the rate (`rate >> 10`, Linux's
//!   `sk_pacing_shift`), whole segments, at least two (`tcp_min_tso_segs`), at most 64 KiB.
//!   With GSO it is one super-segment (TSO autosizing), without, that many segments back to
//!   back: the owner is woken once per release, never per packet.
//! - Departure time (EDT): a release starts when the departure time `next` has come; the
//!   bytes sent move `next` on by `bytes / rate`. Once the quantum is spent, data waits and
//!   [`Timer::Pace`] is armed for `next`. A release that starts late (its timer served late)
//!   is forgiven at most half a quantum of the delay (Linux forgives half of each packet's
//!   time for "OS jitter"), or [`ConnConfig::timer_granularity`] if more (tokio's timers are
//!   up to 1 ms late, Linux's hrtimers microseconds), so a sender that was idle or
//!   cwnd-limited builds no credit for a larger burst.
//! - The first ten segments' worth of data are not paced (Linux: `data_segs_out >= 10`):
//!   the initial window leaves at once.
//! - Only data (new and retransmitted) waits; ACKs, probes, SYNs and resets never do
//!   (Linux's timer holds `tcp_write_xmit` and the retransmit queue, not `tcp_send_ack`).
//!
//! The state is a `u64` and a `u16` in the connection (`pace_next_ns`, and `pace_left`,
//! saturating at 65,535: a release of 64 KiB counts 1 byte short); with pacing off it never
//! moves, and the check on the output path is one comparison.
//!
//! [`ConnConfig::pacing`]: crate::ConnConfig::pacing
//! [`ConnConfig::max_pacing_rate`]: crate::ConnConfig::max_pacing_rate
//! [`ConnConfig::timer_granularity`]: crate::ConnConfig::timer_granularity

use super::timers::Timer;
use super::Connection;
use crate::cc::Controller;
use crate::Instant;

/// Linux `tcp_pacing_ss_ratio`: percent of cwnd/SRTT in slow start.
const SS_RATIO: u64 = 200;
/// Linux `tcp_pacing_ca_ratio`: percent of cwnd/SRTT in congestion avoidance.
const CA_RATIO: u64 = 120;
/// Linux `sk_pacing_shift`: a release carries `rate >> 10` bytes, about 1 ms of data.
const QUANTUM_SHIFT: u32 = 10;
/// Linux `tcp_min_tso_segs`: a release carries at least two segments.
const MIN_SEGS: u32 = 2;
/// Linux `GSO_LEGACY_MAX_SIZE`: the largest release.
const MAX_QUANTUM: u64 = 64 << 10;
/// Linux paces from the tenth data segment on.
const UNPACED_SEGS: u64 = 10;

fn nanos(now: Instant) -> u64 {
    now.as_micros().saturating_mul(1000)
}

/// Nanoseconds `bytes` take at `rate` bytes per second. In 64 bits (no 128-bit library
/// division per paced segment): `bytes` < 2^32 and 10^9 < 2^30, so the product fits.
#[inline]
fn duration_ns(bytes: u32, rate: u64) -> u64 {
    u64::from(bytes) * 1_000_000_000 / rate.max(1)
}

impl Connection {
    /// The rate data is paced at, in bytes per second; `None` when it is not paced (pacing
    /// off, or no RTT sample yet for the default rate).
    pub(crate) fn pacing_rate(&self) -> Option<u64> {
        let asked = self.cc.pacing_rate();
        if asked.is_none() && !self.cfg.pacing && self.cfg.max_pacing_rate.is_none() {
            return None;
        }
        let rate = match asked {
            Some(rate) => rate,
            None => self.default_pacing_rate()?,
        };
        Some(rate.min(self.cfg.max_pacing_rate.unwrap_or(u64::MAX)).max(1))
    }

    /// Linux `tcp_update_pacing_rate`: `max(cwnd, flight) / SRTT`, times 2 while cwnd is
    /// below half of ssthresh, else times 1.2.
    fn default_pacing_rate(&self) -> Option<u64> {
        let srtt = self.rtt.srtt()?;
        let cwnd = self.cc.window();
        let ratio = if cwnd < self.cc.ssthresh() / 2 { SS_RATIO } else { CA_RATIO };
        let bytes = u64::from(cwnd.max(self.snd_max.since(self.snd_una)));
        let us = u64::try_from(srtt.as_micros()).unwrap_or(u64::MAX).max(1);
        // bytes * ratio / 100 per SRTT, in bytes per second.
        Some(bytes * ratio * 10_000 / us)
    }

    /// Whether data is paced, and the pacing rate kept whether or not it is (Linux updates
    /// `sk_pacing_rate` on every ACK either way); 0 without an RTT sample. For HyStart's
    /// ACK-train allowance (`cc/hystart.rs`).
    pub(crate) fn pacing_for_cc(&self) -> (bool, u64) {
        match self.pacing_rate() {
            Some(rate) => (true, rate),
            None => {
                (false, self.cc.pacing_rate().or_else(|| self.default_pacing_rate()).unwrap_or(0))
            }
        }
    }

    /// Bytes one release carries at `rate` (Linux `tcp_tso_autosize`): about 1 ms of data,
    /// whole segments, at least two, at most 64 KiB.
    fn pacing_quantum(&self, rate: u64) -> u32 {
        let mss = self.data_mss();
        let bytes = (rate >> QUANTUM_SHIFT).min(MAX_QUANTUM) as u32;
        (bytes - bytes % mss).max(MIN_SEGS * mss)
    }

    /// The largest super-segment of new data given the device's limit `gso_max` (0: no
    /// GSO): with pacing, one release (TSO autosizing).
    pub(crate) fn paced_gso(&self, gso_max: u32) -> u32 {
        if gso_max == 0 {
            return 0;
        }
        match self.pacing_rate() {
            Some(rate) => gso_max.min(self.pacing_quantum(rate)),
            None => gso_max,
        }
    }

    /// The rate the next data is paced at: `None` with pacing off, and during the unpaced
    /// start.
    fn paced_rate(&self) -> Option<u64> {
        let rate = self.pacing_rate()?;
        (self.info.bytes_sent >= UNPACED_SEGS * u64::from(self.data_mss())).then_some(rate)
    }

    /// When pacing holds data back at `now`, the time it may go; else `None`.
    fn pacing_hold(&self, now: Instant) -> Option<u64> {
        let next = self.pace_next_ns;
        // With pacing off `pace_next_ns` stays 0: one comparison on the output path.
        if self.pace_left > 0 || next <= nanos(now) {
            return None;
        }
        // Pacing was switched off since the departure time was set: nothing waits.
        self.pacing_rate()?;
        Some(next)
    }

    /// Whether data must wait for its departure time at `now`; if some does, the pacing
    /// timer is armed for that time (Linux `tcp_pacing_check`).
    pub(crate) fn pacing_wait(&mut self, now: Instant) -> bool {
        let Some(next) = self.pacing_hold(now) else { return false };
        if self.recovery.retransmit_head || self.sack_wants_transmit() || self.has_sendable_data() {
            self.timers.set(Timer::Pace, Instant::from_micros(next.div_ceil(1000)));
        }
        true
    }

    /// `len` bytes of data left at `now` (Linux `tcp_update_skb_after_send`): start a release
    /// if one is due, and move the departure time on by the bytes' time at the rate.
    pub(crate) fn pace_sent(&mut self, now: Instant, len: u32) {
        let Some(rate) = self.paced_rate().filter(|_| len > 0) else { return };
        let now_ns = nanos(now);
        if self.pace_next_ns <= now_ns {
            // A new release: forgive half a quantum of lateness at most, or as much as the
            // owner's timers may be late.
            let quantum = self.pacing_quantum(rate);
            let late = now_ns - self.pace_next_ns;
            let slack = u64::try_from(self.cfg.timer_granularity.as_nanos()).unwrap_or(u64::MAX);
            self.pace_next_ns = now_ns - late.min((duration_ns(quantum, rate) / 2).max(slack));
            self.pace_left = u16::try_from(quantum).unwrap_or(u16::MAX);
        }
        self.pace_left = self.pace_left.saturating_sub(u16::try_from(len).unwrap_or(u16::MAX));
        self.pace_next_ns = self.pace_next_ns.saturating_add(duration_ns(len, rate));
    }
}
