//! CUBIC congestion control (RFC 9438). Its initial slow start ends early by Linux's HyStart
//! (`hystart.rs`, the default), or by HyStart++ (RFC 9406) with its Conservative Slow Start
//! ([`SlowStartExit`]).
//!
//! Windows are kept in bytes as `f64` (deterministic on one machine); the RFC's formulas are
//! written in segments, so `C` is scaled by the MSS where a formula mixes time and window.
//! Time `t` comes from the `now` the connection passes in; no clock is ever read.

use super::hystart::{HyStart, HyStartExit, OptRtt, LOW_WINDOW};
use super::{AckInfo, Controller};
use crate::config::SlowStartExit;
use crate::wire::seq::SeqNum;
use crate::Instant;
use core::time::Duration;

/// RFC 9438 §4.1: `C`, in segments per second cubed.
const C: f64 = 0.4;
/// RFC 9438 §4.1: multiplicative decrease factor `β_cubic`.
const BETA_CUBIC: f64 = 0.7;
/// RFC 9438 §4.3: `α_cubic = 3 (1 - β_cubic) / (1 + β_cubic)`, Reno-friendly AIMD increase.
const ALPHA_CUBIC: f64 = 3.0 * (1.0 - BETA_CUBIC) / (1.0 + BETA_CUBIC);

/// RFC 9406 §4.3 constants.
const MIN_RTT_THRESH: Duration = Duration::from_millis(4);
const MAX_RTT_THRESH: Duration = Duration::from_millis(16);
const MIN_RTT_DIVISOR: u32 = 8;
const N_RTT_SAMPLE: u8 = 8;
const CSS_GROWTH_DIVISOR: f64 = 4.0;
const CSS_ROUNDS: u8 = 5;
/// Linux `bictcp_update`: before the first congestion event, at most this many segments
/// acknowledged per segment of growth in congestion avoidance.
const LINUX_MIN_CNT: f64 = 20.0;
/// RFC 3465 §2.2: `L` for the standard slow start that follows the first (RFC 9406 §4.2).
const ABC_L: u32 = 2;

/// Where the controller is in slow start (RFC 9406 §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlowStartPhase {
    /// The initial slow start, with the configured early exit (HyStart's detectors, or
    /// HyStart++'s delay-increase detection).
    SlowStart,
    /// HyStart++'s Conservative Slow Start: growth divided by `CSS_GROWTH_DIVISOR`.
    Css,
    /// The initial slow start is over (left for congestion avoidance, or a loss was seen):
    /// any later slow start is standard slow start (RFC 9406 §4.2).
    Done,
}

/// HyStart++ round state (RFC 9406 §4.3).
#[derive(Clone, Copy, Debug)]
struct HyStartPp {
    /// `windowEnd`: the round ends when SND.UNA passes it. `None` before the first ACK.
    window_end: Option<SeqNum>,
    /// `lastRoundMinRTT`; none is infinity.
    last_round_min_rtt: OptRtt,
    /// `currentRoundMinRTT`; none is infinity.
    current_round_min_rtt: OptRtt,
    /// `rttSampleCount` of the current round (saturating: only `N_RTT_SAMPLE` matters).
    rtt_sample_count: u8,
    /// `cssBaselineMinRtt`; none is infinity.
    css_baseline_min_rtt: OptRtt,
    /// Round boundaries passed while in CSS.
    css_rounds: u8,
}

/// The state of the initial slow start's early exit ([`SlowStartExit`]): one of the two
/// detectors' (the connection holds a controller inline, so they share the space).
#[derive(Clone, Copy, Debug)]
enum Early {
    /// Linux's HyStart (`hystart.rs`).
    HyStart(HyStart),
    /// HyStart++ (RFC 9406).
    PlusPlus(HyStartPp),
    /// None: slow start ends at a congestion event (Linux `hystart = 0`).
    Off,
}

/// CUBIC (RFC 9438) with HyStart++ (RFC 9406).
#[derive(Clone, Debug)]
pub struct Cubic {
    /// Congestion window in bytes; never below one MSS.
    cwnd: f64,
    /// Slow-start threshold in bytes; `u32::MAX` until the first congestion event.
    ssthresh: u32,
    /// `cwnd_prior` (RFC 9438 §4.1): cwnd when ssthresh was last set, in bytes.
    cwnd_prior: f64,
    /// `W_max` (RFC 9438 §4.1) in bytes, after fast convergence (§4.7).
    w_max: f64,
    /// `K` (RFC 9438 §4.2) in seconds, fixed at the start of the epoch.
    k: f64,
    /// `t_epoch`: start of the current congestion-avoidance stage; `None` until its first ACK.
    t_epoch: Option<Instant>,
    /// `W_est` (RFC 9438 §4.3) in bytes.
    w_est: f64,
    /// The next congestion-avoidance stage is the first after a timeout (RFC 9438 §4.8).
    after_rto: bool,
    /// Where the initial slow start is.
    phase: SlowStartPhase,
    /// The HyStart detector that ended slow start, if one did.
    exit: Option<HyStartExit>,
    /// The connection's minimum RTT (Linux `delay_min`); none before the first sample.
    delay_min: OptRtt,
    /// The early exit's state.
    early: Early,
}

impl Cubic {
    /// A controller with an initial window of `initial_segments` × `mss` (RFC 6928) and an
    /// arbitrarily high initial ssthresh (RFC 5681 §3.1), starting in HyStart++ slow start.
    pub fn new(initial_segments: u32, mss: u32) -> Self {
        Cubic::with_exit(initial_segments, mss, SlowStartExit::HyStart)
    }

    /// As [`Cubic::new`], leaving the initial slow start by `exit_mode`.
    pub fn with_exit(initial_segments: u32, mss: u32, exit_mode: SlowStartExit) -> Self {
        Cubic {
            cwnd: f64::from(initial_segments.max(1) * mss.max(1)),
            ssthresh: u32::MAX,
            cwnd_prior: 0.0,
            w_max: 0.0,
            k: 0.0,
            t_epoch: None,
            w_est: 0.0,
            after_rto: false,
            phase: SlowStartPhase::SlowStart,
            exit: None,
            delay_min: OptRtt::NONE,
            early: match exit_mode {
                SlowStartExit::HyStart => Early::HyStart(HyStart::new()),
                SlowStartExit::HyStartPlusPlus => Early::PlusPlus(HyStartPp {
                    window_end: None,
                    last_round_min_rtt: OptRtt::NONE,
                    current_round_min_rtt: OptRtt::NONE,
                    rtt_sample_count: 0,
                    css_baseline_min_rtt: OptRtt::NONE,
                    css_rounds: 0,
                }),
                SlowStartExit::Off => Early::Off,
            },
        }
    }

    /// `K` of the current congestion-avoidance epoch, in seconds (RFC 9438 §4.2 eq. 2).
    pub fn k(&self) -> f64 {
        self.k
    }

    /// `W_max` in bytes (RFC 9438 §4.1, after fast convergence §4.7).
    pub fn w_max(&self) -> f64 {
        self.w_max
    }

    /// `W_est` in bytes (RFC 9438 §4.3).
    pub fn w_est(&self) -> f64 {
        self.w_est
    }

    /// `cwnd_prior` in bytes (RFC 9438 §4.1).
    pub fn cwnd_prior(&self) -> f64 {
        self.cwnd_prior
    }

    /// Start of the current congestion-avoidance epoch, if one has begun.
    pub fn epoch_start(&self) -> Option<Instant> {
        self.t_epoch
    }

    /// The HyStart detector that ended the initial slow start, if one did.
    pub fn hystart_exit(&self) -> Option<HyStartExit> {
        self.exit
    }

    /// The HyStart++ phase.
    pub fn slow_start_phase(&self) -> SlowStartPhase {
        self.phase
    }

    /// `W_cubic(t)` in bytes for `t` seconds into the epoch (RFC 9438 §4.2 eq. 1).
    pub fn w_cubic(&self, t: f64, mss: u32) -> f64 {
        let d = t - self.k;
        C * f64::from(mss) * d * d * d + self.w_max
    }

    fn set_cwnd(&mut self, cwnd: f64, mss: u32) {
        self.cwnd = cwnd.clamp(f64::from(mss.max(1)), f64::from(u32::MAX));
    }

    /// RFC 9406 §4.3 for one ACK in the initial slow start or CSS.
    fn hystart_ack(&mut self, a: &AckInfo) {
        let Early::PlusPlus(hs) = &mut self.early else { return };
        // A new round starts once SND.UNA passes windowEnd.
        if hs.window_end.is_none_or(|end| a.snd_una >= end) {
            if self.phase == SlowStartPhase::Css {
                hs.css_rounds += 1;
                if hs.css_rounds >= CSS_ROUNDS {
                    // "If CSS_ROUNDS rounds are complete, enter congestion avoidance by
                    // setting the ssthresh to the current cwnd."
                    self.phase = SlowStartPhase::Done;
                    self.ssthresh = self.cwnd as u32;
                    return self.congestion_avoidance(a);
                }
            }
            hs.last_round_min_rtt = hs.current_round_min_rtt;
            hs.current_round_min_rtt = OptRtt::NONE;
            hs.rtt_sample_count = 0;
            hs.window_end = Some(a.snd_max);
        }
        // cwnd = cwnd + min(N, L * SMSS), divided by CSS_GROWTH_DIVISOR in CSS. RFC 9406 §4.3
        // recommends L = 8 for a sender that does not pace; as Linux (`tcp_slow_start`, which
        // has no such limit) L is infinite, so a stretch ACK (GRO, ACK decimation) counts whole.
        let growth = f64::from(a.acked);
        let growth = match self.phase {
            SlowStartPhase::Css => growth / CSS_GROWTH_DIVISOR,
            _ => growth,
        };
        if let Some(rtt) = a.rtt_sample {
            hs.current_round_min_rtt =
                OptRtt::new(hs.current_round_min_rtt.get().map_or(rtt, |m| m.min(rtt)));
            hs.rtt_sample_count = hs.rtt_sample_count.saturating_add(1);
        }
        if hs.rtt_sample_count >= N_RTT_SAMPLE {
            match (self.phase, hs.current_round_min_rtt.get(), hs.last_round_min_rtt.get()) {
                (SlowStartPhase::SlowStart, Some(cur), Some(last)) => {
                    // RttThresh = max(MIN_RTT_THRESH, min(lastRoundMinRTT / MIN_RTT_DIVISOR,
                    // MAX_RTT_THRESH)); a delay increase of RttThresh exits to CSS.
                    let thresh = (last / MIN_RTT_DIVISOR).min(MAX_RTT_THRESH).max(MIN_RTT_THRESH);
                    if cur >= last + thresh {
                        hs.css_baseline_min_rtt = OptRtt::new(cur);
                        hs.css_rounds = 0;
                        self.phase = SlowStartPhase::Css;
                    }
                }
                (SlowStartPhase::Css, Some(cur), _)
                    if hs.css_baseline_min_rtt.get().is_some_and(|base| cur < base) =>
                {
                    // The exit was spurious: resume slow start, HyStart++ included.
                    hs.css_baseline_min_rtt = OptRtt::NONE;
                    self.phase = SlowStartPhase::SlowStart;
                }
                _ => {}
            }
        }
        self.set_cwnd(self.cwnd + growth, a.mss);
    }

    /// One ACK in the initial slow start with Linux's HyStart (`hystart.rs`), or with none
    /// ([`SlowStartExit::Off`]): cwnd grows by the bytes acknowledged (Linux
    /// `tcp_slow_start`), unless a detector ends slow start first; then ssthresh = cwnd and
    /// the ACK counts in congestion avoidance, as in Linux, where HyStart runs before the
    /// window grows.
    fn hystart_linux_ack(&mut self, a: &AckInfo) {
        let low_window = f64::from(LOW_WINDOW * a.mss.max(1));
        let hystart = match &mut self.early {
            Early::HyStart(h) if self.cwnd >= low_window => Some(h),
            _ => None,
        };
        if let (Some(h), Some(rtt), Some(min)) = (hystart, a.rtt_sample, self.delay_min.get()) {
            if let Some(exit) = h.on_ack(a, rtt, min) {
                self.exit = Some(exit);
                self.phase = SlowStartPhase::Done;
                self.ssthresh = self.cwnd as u32;
                return self.congestion_avoidance(a);
            }
        }
        // The slow start after a timeout (ssthresh set) grows as the one without HyStart
        // below: L = 2 (RFC 3465 §2.2), up to ssthresh (RFC 5681 §3.1).
        let growth = if self.ssthresh == u32::MAX { a.acked } else { a.acked.min(ABC_L * a.mss) };
        let cwnd = (self.cwnd + f64::from(growth)).min(f64::from(self.ssthresh));
        self.set_cwnd(cwnd, a.mss);
    }

    /// RFC 9438 §4.2–§4.5: one ACK in congestion avoidance.
    fn congestion_avoidance(&mut self, a: &AckInfo) {
        let mss = f64::from(a.mss.max(1));
        let t_epoch = match self.t_epoch {
            Some(t) => t,
            None => {
                // A new congestion-avoidance stage: cwnd_epoch = cwnd and W_est = cwnd_epoch
                // (§4.3). K by §4.2 eq. 2; after a timeout (§4.8), or when no larger W_max is
                // known, K = 0 and W_max = cwnd_epoch.
                let cwnd_epoch = self.cwnd;
                self.w_est = cwnd_epoch;
                if self.after_rto || self.w_max <= cwnd_epoch {
                    self.w_max = cwnd_epoch;
                    self.k = 0.0;
                } else {
                    self.k = ((self.w_max - cwnd_epoch) / (C * mss)).cbrt();
                }
                self.after_rto = false;
                self.t_epoch = Some(a.now);
                a.now
            }
        };
        let t = (a.now - t_epoch).as_secs_f64();
        let acked = f64::from(a.acked);
        // §4.3: W_est += α_cubic × segments_acked / cwnd, with α_cubic = 1 once W_est has
        // reached cwnd_prior.
        let alpha = if self.w_est >= self.cwnd_prior { 1.0 } else { ALPHA_CUBIC };
        self.w_est += alpha * mss * acked / self.cwnd;
        let cwnd = if self.w_cubic(t, a.mss) < self.w_est {
            // Reno-friendly region: cwnd = W_est.
            self.w_est.max(self.cwnd)
        } else {
            // §4.4 concave and §4.5 convex regions: target = W_cubic(t + RTT) clamped to
            // [cwnd, 1.5 cwnd]; cwnd grows by (target - cwnd) / cwnd per segment acknowledged.
            let rtt = a.srtt.unwrap_or(Duration::ZERO).as_secs_f64();
            let target = self.w_cubic(t + rtt, a.mss).clamp(self.cwnd, 1.5 * self.cwnd);
            self.cwnd + (target - self.cwnd) * acked / self.cwnd
        };
        // Linux `bictcp_update`: until the first congestion event (`last_max_cwnd` still 0)
        // cwnd grows by at least one segment per 20 acknowledged, 5 % a round: a slow start
        // that HyStart ended early (a delay rise from jitter) does not leave the path idle
        // for the seconds the cubic curve takes from K = 0.
        // No congestion event yet: cwnd_prior is still 0.
        let congested = self.cwnd_prior > 0.0;
        let cwnd = if congested { cwnd } else { cwnd.max(self.cwnd + acked / LINUX_MIN_CNT) };
        self.set_cwnd(cwnd, a.mss);
    }

    /// RFC 9438 §4.6: `ssthresh = flight_size × β_cubic`, at least 2 MSS; ends HyStart++
    /// (RFC 9406 §4.3) and the congestion-avoidance epoch.
    fn reduce_ssthresh(&mut self, in_flight: u32, mss: u32) -> f64 {
        let ssthresh = (f64::from(in_flight) * BETA_CUBIC).max(f64::from(2 * mss));
        self.ssthresh = ssthresh as u32;
        self.cwnd_prior = self.cwnd;
        self.t_epoch = None;
        self.phase = SlowStartPhase::Done;
        ssthresh
    }
}

impl Controller for Cubic {
    fn window(&self) -> u32 {
        self.cwnd as u32
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn on_ack(&mut self, a: &AckInfo) {
        if let Some(rtt) = a.rtt_sample {
            self.delay_min = self.delay_min.min(rtt);
        }
        if self.cwnd >= f64::from(self.ssthresh) {
            self.congestion_avoidance(a);
        } else if self.phase != SlowStartPhase::Done {
            match self.early {
                Early::PlusPlus(_) => self.hystart_ack(a),
                _ => self.hystart_linux_ack(a),
            }
        } else {
            // RFC 5681 §3.1 equation 2, with L = 2 (RFC 3465 §2.2). Slow start ends at
            // ssthresh (RFC 5681 §3.1: slow start while cwnd < ssthresh), so it never
            // overshoots it: the next congestion-avoidance epoch starts from cwnd_epoch =
            // ssthresh (RFC 9438 §4.6), as Linux `tcp_slow_start` caps cwnd.
            let growth = a.acked.min(ABC_L * a.mss);
            let cwnd = (self.cwnd + f64::from(growth)).min(f64::from(self.ssthresh));
            self.set_cwnd(cwnd, a.mss);
        }
    }

    fn on_loss(&mut self, _now: Instant, in_flight: u32, mss: u32) {
        // §4.7 fast convergence: a W_max not reached again is lowered further.
        self.w_max =
            if self.cwnd < self.w_max { self.cwnd * (1.0 + BETA_CUBIC) / 2.0 } else { self.cwnd };
        // §4.6: cwnd = max(ssthresh, 2 MSS) on loss.
        let ssthresh = self.reduce_ssthresh(in_flight, mss);
        self.set_cwnd(ssthresh, mss);
    }

    fn on_recovery_end(&mut self, _now: Instant, in_flight: u32, mss: u32) {
        // RFC 6582 §3.2 step 3, option 1: min(ssthresh, FlightSize + SMSS).
        let cwnd = self.ssthresh.min(in_flight.saturating_add(mss));
        self.set_cwnd(f64::from(cwnd), mss);
    }

    fn on_rto(&mut self, _now: Instant, in_flight: u32, mss: u32) {
        // §4.8: cwnd as Reno (the loss window, RFC 5681 §3.1), ssthresh as §4.6; the next
        // congestion-avoidance stage starts with K = 0 and W_max = cwnd_epoch.
        self.reduce_ssthresh(in_flight, mss);
        self.after_rto = true;
        self.set_cwnd(f64::from(mss), mss);
        // Linux `bictcp_state` on entering TCP_CA_Loss: HyStart re-arms (its rounds and its
        // minimum RTT start over), so the slow start back to ssthresh may end early too.
        // RFC 9406 §4.3 limits HyStart++ to the initial slow start: it stays done.
        if let Early::HyStart(h) = &mut self.early {
            *h = HyStart::new();
            self.phase = SlowStartPhase::SlowStart;
            self.delay_min = OptRtt::NONE;
        }
    }

    fn set_window(&mut self, cwnd: u32, mss: u32) {
        self.set_cwnd(f64::from(cwnd), mss);
    }

    fn on_idle_restart(&mut self, _now: Instant, cwnd: u32, ssthresh: u32, mss: u32) {
        // Slow start back to ssthresh, then a new congestion-avoidance epoch (its K from
        // the W_max kept): the cubic curve's clock did not run while nothing was sent
        // (Linux `bictcp_cwnd_event` moves the epoch on CA_EVENT_TX_START).
        self.ssthresh = ssthresh;
        self.t_epoch = None;
        self.set_cwnd(f64::from(cwnd), mss);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;

    fn ack(now_ms: u64, acked: u32, rtt_ms: Option<u64>, una: u32, max: u32) -> AckInfo {
        AckInfo {
            now: Instant::from_millis(now_ms),
            acked,
            mss: MSS,
            rtt_sample: rtt_ms.map(Duration::from_millis),
            srtt: Some(Duration::from_millis(rtt_ms.unwrap_or(100))),
            snd_una: SeqNum(una),
            snd_max: SeqNum(max),
            paced: false,
            pacing_rate: 0,
        }
    }

    #[test]
    fn rx_03_cubic_constants_match_rfc_9438() {
        assert!((ALPHA_CUBIC - 0.9 / 1.7).abs() < 1e-12);
        let cc = Cubic::new(10, MSS);
        assert_eq!((cc.window(), cc.ssthresh()), (10 * MSS, u32::MAX));
        assert_eq!(cc.slow_start_phase(), SlowStartPhase::SlowStart);
    }

    #[test]
    fn rx_03_cubic_loss_sets_k_from_w_max_and_cwnd_epoch() {
        let mut cc = Cubic::new(100, MSS);
        cc.on_loss(Instant::ZERO, 100 * MSS, MSS);
        assert_eq!((cc.window(), cc.ssthresh()), (70 * MSS, 70 * MSS));
        assert_eq!(cc.w_max(), 100_000.0);
        cc.on_ack(&ack(1000, MSS, None, 0, 0));
        // K = cbrt((W_max - cwnd_epoch) / C) = cbrt(30 / 0.4) segments.
        assert!((cc.k() - 75f64.cbrt()).abs() < 1e-9, "K = {}", cc.k());
        assert_eq!(cc.epoch_start(), Some(Instant::from_millis(1000)));
    }

    #[test]
    fn rx_03_cubic_rto_epoch_has_k_zero_and_w_max_cwnd_epoch() {
        let mut cc = Cubic::new(100, MSS);
        cc.on_rto(Instant::ZERO, 100 * MSS, MSS);
        assert_eq!((cc.window(), cc.ssthresh()), (MSS, 70 * MSS));
        // HyStart re-armed (Linux), without RTT samples here: it never fires.
        assert_eq!(cc.slow_start_phase(), SlowStartPhase::SlowStart);
        // Standard slow start (L = 2) up to ssthresh.
        let mut una = 0;
        while cc.window() < cc.ssthresh() {
            una += MSS;
            cc.on_ack(&ack(10, MSS, None, una, una));
        }
        assert_eq!(cc.window(), 70 * MSS);
        cc.on_ack(&ack(20, MSS, None, una + MSS, una + MSS));
        assert_eq!(cc.k(), 0.0);
        assert_eq!(cc.w_max(), 70_000.0);
    }

    /// RX-03: as Linux (`bictcp_state` on TCP_CA_Loss), HyStart runs again in the slow start
    /// after a timeout, from a minimum RTT learned anew: a delay rise ends it below ssthresh.
    #[test]
    fn rx_03_cubic_hystart_runs_again_after_rto() {
        let mut cc = Cubic::new(100, MSS);
        cc.on_ack(&ack(0, MSS, Some(50), MSS, 100 * MSS)); // a minimum RTT the RTO forgets
        cc.on_rto(Instant::ZERO, 100 * MSS, MSS);
        assert_eq!((cc.window(), cc.ssthresh()), (MSS, 70 * MSS));
        let (mut una, mut now) = (0, 1000);
        // ACKs 5 ms apart (no ACK train), RTT 100 ms until cwnd passes HyStart's low
        // window, then 150 ms: more than the minimum plus its threshold (16 ms at most).
        while cc.slow_start_phase() == SlowStartPhase::SlowStart {
            una += MSS;
            now += 5;
            let rtt = if cc.window() < 20 * MSS { 100 } else { 150 };
            cc.on_ack(&ack(now, MSS, Some(rtt), una, una + cc.window()));
            assert!(una < 200 * MSS, "HyStart never fired");
        }
        assert_eq!(cc.hystart_exit(), Some(HyStartExit::Delay));
        assert!(cc.ssthresh() < 70 * MSS, "ended early: ssthresh {}", cc.ssthresh());
        assert_eq!(cc.slow_start_phase(), SlowStartPhase::Done);
    }
}
