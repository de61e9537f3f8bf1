//! BBR congestion control, version 3, as draft-ietf-ccwg-bbr specifies it (section numbers
//! below are the draft's). The model (`max_bw`, `min_rtt`, the long- and short-term bounds
//! on bandwidth and inflight) is fed by delivery rate samples ([`RateSample`], §4.1) that the
//! connection builds from its per-segment send state; the controller sets `cwnd` and a
//! pacing rate (§5.6).
//!
//! Units are bytes, bytes per second and the connection's virtual time. Deviations: the send
//! quantum (§5.6.3) only sizes the offload budget (the connection chooses its bursts); a
//! spurious recovery is never declared, so the undo of §5.5.11 is not used; the Startup
//! loss exit (§5.3.1.3) counts ACKs that mark losses as the lost ranges; in ProbeBW_CRUISE
//! the "latest" delivery signals that bound the loss response of the short-term model
//! (§5.5.10.3) count only samples of CRUISE's own flight (see
//! `update_latest_delivery_signals`).

use core::time::Duration;

use super::{AckInfo, Controller, LostPacket, RateSample};
use crate::Instant;

/// §2.5 `BBR.StartupPacingGain`: 4 ln 2.
const STARTUP_PACING_GAIN: f64 = 2.77;
/// §2.5 `BBR.DrainPacingGain`.
const DRAIN_PACING_GAIN: f64 = 0.5;
/// §2.6 `BBR.DefaultCwndGain`.
const DEFAULT_CWND_GAIN: f64 = 2.0;
/// §2.5 `BBR.PacingMarginPercent`.
const PACING_MARGIN_PERCENT: u64 = 1;
/// §2.8 `BBR.LossThresh`.
const LOSS_THRESH: f64 = 0.02;
/// §2.8 `BBR.Beta`.
const BETA: f64 = 0.7;
/// §2.8 `BBR.Headroom`.
const HEADROOM: f64 = 0.15;
/// §2.8 `BBR.MinPipeCwnd`, in segments.
const MIN_PIPE_SEGMENTS: u64 = 4;
/// §2.12 `BBR.ExtraAckedFilterLen`, in rounds.
const EXTRA_ACKED_FILTER_LEN: u64 = 10;
/// §2.16.1 `BBR.MinRTTFilterLen`.
const MIN_RTT_FILTER_LEN: Duration = Duration::from_secs(10);
/// §2.16.2 `BBR.ProbeRTTCwndGain`.
const PROBE_RTT_CWND_GAIN: f64 = 0.5;
/// §2.16.2 `BBR.ProbeRTTDuration`.
const PROBE_RTT_DURATION: Duration = Duration::from_millis(200);
/// §2.16.2 `BBR.ProbeRTTInterval`.
const PROBE_RTT_INTERVAL: Duration = Duration::from_secs(5);
/// §5.3.1.3 `BBRStartupFullLossCnt`.
const STARTUP_FULL_LOSS_CNT: u32 = 6;
/// ProbeBW_UP gains (§5.3.3.5).
const PROBE_UP_PACING_GAIN: f64 = 1.25;
const PROBE_UP_CWND_GAIN: f64 = 2.25;
/// ProbeBW_DOWN pacing gain (§5.3.3.1).
const PROBE_DOWN_PACING_GAIN: f64 = 0.9;
/// "Infinity" for the volume and rate bounds.
const INF: u64 = u64::MAX;

/// The state of the BBR state machine (§5.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BbrState {
    /// Exponential search for the bottleneck bandwidth (§5.3.1).
    Startup,
    /// Draining the queue Startup built (§5.3.2).
    Drain,
    /// ProbeBW, deceleration (§5.3.3.1).
    ProbeBwDown,
    /// ProbeBW, cruising at the estimated bandwidth (§5.3.3.2).
    ProbeBwCruise,
    /// ProbeBW, refilling the pipe for a round before probing (§5.3.3.3).
    ProbeBwRefill,
    /// ProbeBW, probing for more bandwidth (§5.3.3.4).
    ProbeBwUp,
    /// Draining the queue to measure the path's minimum RTT (§5.3.4).
    ProbeRtt,
}

/// §2.14 `BBR.ack_phase`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AckPhase {
    Init,
    Refilling,
    ProbeStarting,
    ProbeFeedback,
    ProbeStopping,
}

/// A max filter over two slots of virtual time (§5.5.3, §5.5.9): the current slot and the
/// previous one; advancing forgets the older.
#[derive(Clone, Copy, Debug, Default)]
struct TwoSlotMax {
    slots: [u64; 2],
    cur: usize,
}

impl TwoSlotMax {
    fn update(&mut self, v: u64) {
        self.slots[self.cur] = self.slots[self.cur].max(v);
    }
    fn advance(&mut self) {
        self.cur ^= 1;
        self.slots[self.cur] = 0;
    }
    fn get(&self) -> u64 {
        self.slots[0].max(self.slots[1])
    }
}

/// BBRv3 (draft-ietf-ccwg-bbr).
#[derive(Clone, Debug)]
pub struct Bbr {
    // Control parameters (§2.4).
    cwnd: u64,
    pacing_rate: u64,
    mss: u64,
    initial_cwnd: u64,
    // General state (§2.7).
    state: BbrState,
    pacing_gain: f64,
    cwnd_gain: f64,
    round_count: u64,
    round_start: bool,
    next_round_delivered: u64,
    idle_restart: bool,
    drain_start_round: u64,
    // Model (§2.9 - §2.12).
    max_bw_filter: TwoSlotMax,
    max_bw: u64,
    bw_shortterm: u64,
    bw: u64,
    min_rtt: Option<Duration>,
    min_rtt_stamp: Instant,
    extra_acked_interval_start: Instant,
    extra_acked_delivered: u64,
    extra_acked_filter: TwoSlotMax,
    extra_acked_rounds: u64,
    extra_acked: u64,
    max_inflight: u64,
    inflight_longterm: u64,
    inflight_shortterm: u64,
    // Congestion signals (§2.10, §5.5.10).
    bw_latest: u64,
    inflight_latest: u64,
    /// `C.delivered` when ProbeBW_CRUISE was last entered.
    cruise_from: u64,
    /// In CRUISE, samples count as "latest" from packets sent once a packet sent in CRUISE
    /// was delivered (`C.delivered` then; `u64::MAX` until then): a sample measures the
    /// data delivered over the round trip before its ACK, sent a round trip earlier (see
    /// `update_latest_delivery_signals`).
    latest_from: u64,
    loss_round_delivered: u64,
    loss_round_start: bool,
    is_loss_in_round: bool,
    loss_events_in_round: u32,
    // Startup (§2.13).
    full_bw_reached: bool,
    full_bw_now: bool,
    full_bw: u64,
    full_bw_count: u32,
    // ProbeBW (§2.14).
    ack_phase: AckPhase,
    is_bw_probe_sample: bool,
    bw_probe_up_acked: u64,
    probe_up_acked_per_inc: u64,
    bw_probe_up_rounds: u32,
    rounds_since_probe_up: u64,
    bw_probe_wait: Duration,
    cycle_stamp: Instant,
    prev_probe_too_high: bool,
    prev_probe_precautionary: bool,
    // ProbeRTT (§2.16).
    probe_rtt_min_delay: Option<Duration>,
    probe_rtt_min_stamp: Instant,
    probe_rtt_expired: bool,
    probe_rtt_done_stamp: Option<Instant>,
    probe_rtt_round_done: bool,
    prior_cwnd: u64,
    probe_rtt_count: u64,
    // Connection state seen on the last ACK.
    in_recovery: bool,
    in_flight: u64,
    delivered: u64,
    is_cwnd_limited: bool,
    /// SplitMix64 state for the randomized probe wait (§5.3.3.8).
    rng: u64,
}

impl Bbr {
    /// A controller with an initial window of `initial_segments` × `mss` (RFC 6928), in
    /// Startup (§5.2.1 `OnInit`). `seed` randomizes the bandwidth-probe timing.
    pub fn new(initial_segments: u32, mss: u32, seed: u64) -> Self {
        let mss = u64::from(mss.max(1));
        let initial_cwnd = u64::from(initial_segments.max(1)) * mss;
        let mut b = Bbr {
            cwnd: initial_cwnd,
            pacing_rate: 0,
            mss,
            initial_cwnd,
            state: BbrState::Startup,
            pacing_gain: STARTUP_PACING_GAIN,
            cwnd_gain: DEFAULT_CWND_GAIN,
            round_count: 0,
            round_start: false,
            next_round_delivered: 0,
            idle_restart: false,
            drain_start_round: 0,
            max_bw_filter: TwoSlotMax::default(),
            max_bw: 0,
            bw_shortterm: INF,
            bw: 0,
            min_rtt: None,
            min_rtt_stamp: Instant::ZERO,
            extra_acked_interval_start: Instant::ZERO,
            extra_acked_delivered: 0,
            extra_acked_filter: TwoSlotMax::default(),
            extra_acked_rounds: 0,
            extra_acked: 0,
            max_inflight: 0,
            inflight_longterm: INF,
            inflight_shortterm: INF,
            bw_latest: 0,
            inflight_latest: 0,
            cruise_from: 0,
            latest_from: 0,
            loss_round_delivered: 0,
            loss_round_start: false,
            is_loss_in_round: false,
            loss_events_in_round: 0,
            full_bw_reached: false,
            full_bw_now: false,
            full_bw: 0,
            full_bw_count: 0,
            ack_phase: AckPhase::Init,
            is_bw_probe_sample: false,
            bw_probe_up_acked: 0,
            probe_up_acked_per_inc: INF,
            bw_probe_up_rounds: 0,
            rounds_since_probe_up: 0,
            bw_probe_wait: Duration::ZERO,
            cycle_stamp: Instant::ZERO,
            prev_probe_too_high: false,
            prev_probe_precautionary: false,
            probe_rtt_min_delay: None,
            probe_rtt_min_stamp: Instant::ZERO,
            probe_rtt_expired: false,
            probe_rtt_done_stamp: None,
            probe_rtt_round_done: false,
            prior_cwnd: 0,
            probe_rtt_count: 0,
            in_recovery: false,
            in_flight: 0,
            delivered: 0,
            is_cwnd_limited: false,
            rng: seed,
        };
        // §5.6.2 InitPacingRate: InitialCwnd / 1 ms until an RTT is known.
        b.pacing_rate = (STARTUP_PACING_GAIN * initial_cwnd as f64 * 1000.0) as u64;
        b
    }

    /// The state machine's state.
    pub fn state(&self) -> BbrState {
        self.state
    }

    /// `BBR.max_bw` in bytes per second.
    pub fn max_bw(&self) -> u64 {
        self.max_bw
    }

    /// `BBR.bw` in bytes per second.
    pub fn bw(&self) -> u64 {
        self.bw
    }

    /// `BBR.min_rtt`, once measured.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    /// `BBR.inflight_longterm` in bytes (`u64::MAX` while unset).
    pub fn inflight_longterm(&self) -> u64 {
        self.inflight_longterm
    }

    /// `BBR.bw_shortterm` and `BBR.inflight_shortterm` (`u64::MAX` while unset).
    pub fn short_term_bounds(&self) -> (u64, u64) {
        (self.bw_shortterm, self.inflight_shortterm)
    }

    /// `BBR.full_bw_reached`: Startup found the bottleneck.
    pub fn full_bw_reached(&self) -> bool {
        self.full_bw_reached
    }

    /// `BBR.round_count`: packet-timed round trips so far.
    pub fn round_count(&self) -> u64 {
        self.round_count
    }

    /// How many times ProbeRTT was entered.
    pub fn probe_rtt_count(&self) -> u64 {
        self.probe_rtt_count
    }

    fn min_pipe_cwnd(&self) -> u64 {
        MIN_PIPE_SEGMENTS * self.mss
    }

    fn random_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    // ---- §5.3.1 Startup, §5.3.2 Drain --------------------------------------------------

    fn enter_startup(&mut self) {
        self.state = BbrState::Startup;
        self.pacing_gain = STARTUP_PACING_GAIN;
        self.cwnd_gain = DEFAULT_CWND_GAIN;
    }

    fn reset_full_bw(&mut self) {
        self.full_bw = 0;
        self.full_bw_count = 0;
        self.full_bw_now = false;
    }

    /// §5.3.1.2 `CheckFullBWReached`.
    fn check_full_bw_reached(&mut self, rs: &RateSample) {
        if self.full_bw_now || !self.round_start || rs.is_app_limited {
            return;
        }
        if rs.delivery_rate as f64 >= self.full_bw as f64 * 1.25 {
            self.reset_full_bw();
            self.full_bw = rs.delivery_rate;
            return;
        }
        self.full_bw_count += 1;
        self.full_bw_now = self.full_bw_count >= 3;
        if self.full_bw_now {
            self.full_bw_reached = true;
        }
    }

    /// §5.3.1.3 `CheckStartupHighLoss`: at the end of a round in recovery with enough loss.
    fn check_startup_high_loss(&mut self, rs: &RateSample) {
        if self.state != BbrState::Startup || !self.loss_round_start || !self.in_recovery {
            return;
        }
        let enough = if rs.has_sack {
            self.loss_events_in_round >= STARTUP_FULL_LOSS_CNT && is_inflight_too_high(rs)
        } else {
            self.loss_events_in_round > 0
        };
        if enough {
            self.full_bw_reached = true;
            self.inflight_longterm = self.bdp_multiple(1.0).max(self.inflight_latest);
        }
    }

    /// §5.3.1 `CheckStartupDone`.
    fn check_startup_done(&mut self, rs: &RateSample) {
        self.check_startup_high_loss(rs);
        if self.state == BbrState::Startup && self.full_bw_reached {
            self.enter_drain();
        }
    }

    fn enter_drain(&mut self) {
        self.state = BbrState::Drain;
        self.pacing_gain = DRAIN_PACING_GAIN;
        self.cwnd_gain = DEFAULT_CWND_GAIN;
        self.drain_start_round = self.round_count;
    }

    /// §5.3.2 `CheckDrainDone`.
    fn check_drain_done(&mut self, now: Instant) {
        if self.state == BbrState::Drain
            && (self.in_flight <= self.inflight(1.0)
                || self.round_count > self.drain_start_round + 3)
        {
            self.enter_probe_bw(now);
        }
    }

    // ---- §5.3.3 ProbeBW ------------------------------------------------------------------

    fn enter_probe_bw(&mut self, now: Instant) {
        self.cwnd_gain = DEFAULT_CWND_GAIN;
        self.start_probe_bw_down(now);
    }

    fn start_round(&mut self) {
        self.next_round_delivered = self.delivered;
    }

    fn start_probe_bw_down(&mut self, now: Instant) {
        self.reset_congestion_signals();
        self.probe_up_acked_per_inc = INF;
        self.pick_probe_wait();
        self.cycle_stamp = now;
        self.ack_phase = AckPhase::ProbeStopping;
        self.start_round();
        self.state = BbrState::ProbeBwDown;
        self.pacing_gain = PROBE_DOWN_PACING_GAIN;
        self.cwnd_gain = DEFAULT_CWND_GAIN;
    }

    fn start_probe_bw_cruise(&mut self) {
        self.cruise_from = self.delivered;
        self.latest_from = u64::MAX;
        self.state = BbrState::ProbeBwCruise;
        self.pacing_gain = 1.0;
        self.cwnd_gain = DEFAULT_CWND_GAIN;
    }

    fn start_probe_bw_refill(&mut self) {
        self.reset_short_term_model();
        self.bw_probe_up_rounds = 0;
        self.bw_probe_up_acked = 0;
        self.prev_probe_precautionary = false;
        self.ack_phase = AckPhase::Refilling;
        self.start_round();
        self.state = BbrState::ProbeBwRefill;
        self.pacing_gain = 1.0;
        self.cwnd_gain = DEFAULT_CWND_GAIN;
    }

    fn start_probe_bw_up(&mut self, rs: &RateSample) {
        self.ack_phase = AckPhase::ProbeStarting;
        self.start_round();
        self.reset_full_bw();
        self.full_bw = rs.delivery_rate;
        self.state = BbrState::ProbeBwUp;
        self.pacing_gain = PROBE_UP_PACING_GAIN;
        self.cwnd_gain = PROBE_UP_CWND_GAIN;
        self.raise_inflight_longterm_slope();
    }

    fn is_in_probe_bw_state(&self) -> bool {
        matches!(
            self.state,
            BbrState::ProbeBwDown
                | BbrState::ProbeBwCruise
                | BbrState::ProbeBwRefill
                | BbrState::ProbeBwUp
        )
    }

    fn is_probing_bw(&self) -> bool {
        matches!(self.state, BbrState::Startup | BbrState::ProbeBwRefill | BbrState::ProbeBwUp)
    }

    /// §5.3.3.8 `PickProbeWait`.
    fn pick_probe_wait(&mut self) {
        self.rounds_since_probe_up = self.random_u64() & 1;
        let frac = (self.random_u64() >> 11) as f64 / (1u64 << 53) as f64;
        self.bw_probe_wait = Duration::from_secs_f64(2.0 + frac);
    }

    /// §5.3.3.8 `IsRenoCoexistenceProbeTime`: `TargetInflight()` in segments as rounds.
    fn is_reno_coexistence_probe_time(&self) -> bool {
        let reno_rounds = self.target_inflight() / self.mss;
        self.rounds_since_probe_up >= reno_rounds.min(63)
    }

    fn target_inflight(&self) -> u64 {
        self.bdp_multiple(1.0).min(self.cwnd)
    }

    /// §5.3.3.8 `IsTimeToProbeBW`.
    fn is_time_to_probe_bw(&mut self, now: Instant) -> bool {
        if now > self.cycle_stamp + self.bw_probe_wait || self.is_reno_coexistence_probe_time() {
            self.start_probe_bw_refill();
            return true;
        }
        false
    }

    /// §5.3.3.9 `IsTimeToCruise`.
    fn is_time_to_cruise(&self) -> bool {
        self.in_flight <= self.inflight_with_headroom() && self.in_flight <= self.inflight(1.0)
    }

    /// §5.3.3.9 `IsTimeToGoDown`.
    fn is_time_to_go_down(&mut self, rs: &RateSample) -> bool {
        if self.prev_probe_too_high && self.in_flight >= self.inflight_longterm {
            self.prev_probe_precautionary = true;
            return true;
        }
        if self.is_cwnd_limited && self.cwnd >= self.inflight_longterm {
            self.reset_full_bw();
            self.full_bw = rs.delivery_rate;
        } else if self.full_bw_now {
            return true;
        }
        false
    }

    /// §5.3.3.9 `InflightWithHeadroom`.
    fn inflight_with_headroom(&self) -> u64 {
        if self.inflight_longterm == INF {
            return INF;
        }
        let headroom = self.mss.max((HEADROOM * self.inflight_longterm as f64) as u64);
        self.inflight_longterm.saturating_sub(headroom).max(self.min_pipe_cwnd())
    }

    /// §5.3.3.9 `RaiseInflightLongtermSlope`.
    fn raise_inflight_longterm_slope(&mut self) {
        let growth_this_round = 1u64 << self.bw_probe_up_rounds;
        self.bw_probe_up_rounds = (self.bw_probe_up_rounds + 1).min(30);
        self.probe_up_acked_per_inc = (self.cwnd / growth_this_round).max(self.mss);
    }

    /// §5.3.3.9 `ProbeInflightLongtermUpward`.
    fn probe_inflight_longterm_upward(&mut self, rs: &RateSample) {
        if !self.is_cwnd_limited || self.cwnd < self.inflight_longterm {
            return;
        }
        self.bw_probe_up_acked += u64::from(rs.newly_acked);
        if self.bw_probe_up_acked >= self.probe_up_acked_per_inc {
            let delta = self.bw_probe_up_acked / self.probe_up_acked_per_inc;
            self.bw_probe_up_acked -= delta * self.probe_up_acked_per_inc;
            self.inflight_longterm = self.inflight_longterm.saturating_add(delta * self.mss);
        }
        if self.round_start {
            self.raise_inflight_longterm_slope();
        }
    }

    /// §5.3.3.9 `AdaptLongTermModel`; true when it decided a state transition.
    fn adapt_long_term_model(&mut self, rs: &RateSample) -> bool {
        if self.ack_phase == AckPhase::ProbeStarting && self.round_start {
            self.ack_phase = AckPhase::ProbeFeedback;
        }
        if self.ack_phase == AckPhase::ProbeStopping && self.round_start {
            self.is_bw_probe_sample = false;
            self.ack_phase = AckPhase::Init;
            if self.is_in_probe_bw_state() && !rs.is_app_limited {
                self.max_bw_filter.advance(); // §5.5.6 AdvanceMaxBwFilter
            }
            if self.is_in_probe_bw_state()
                && self.prev_probe_precautionary
                && !self.prev_probe_too_high
            {
                self.start_probe_bw_refill();
                return true;
            }
        }
        if !is_inflight_too_high(rs) {
            if self.inflight_longterm == INF {
                return false;
            }
            if u64::from(rs.tx_in_flight) > self.inflight_longterm {
                self.inflight_longterm = u64::from(rs.tx_in_flight);
            }
            if self.state == BbrState::ProbeBwUp {
                self.probe_inflight_longterm_upward(rs);
            }
        }
        false
    }

    /// §5.3.3.9 `UpdateProbeBWCyclePhase`.
    fn update_probe_bw_cycle_phase(&mut self, rs: &RateSample) {
        if !self.full_bw_reached || self.adapt_long_term_model(rs) || !self.is_in_probe_bw_state() {
            return;
        }
        let state = self.state;
        match state {
            BbrState::ProbeBwDown
                if !self.is_time_to_probe_bw(rs.now) && self.is_time_to_cruise() =>
            {
                self.start_probe_bw_cruise();
            }
            BbrState::ProbeBwCruise => {
                self.is_time_to_probe_bw(rs.now);
            }
            // After one round of REFILL, start UP.
            BbrState::ProbeBwRefill if self.round_start => {
                self.is_bw_probe_sample = true;
                self.start_probe_bw_up(rs);
            }
            BbrState::ProbeBwUp if self.is_time_to_go_down(rs) => {
                self.prev_probe_too_high = false; // no high loss (yet)
                self.start_probe_bw_down(rs.now);
            }
            _ => {}
        }
    }

    // ---- §5.3.4 ProbeRTT -----------------------------------------------------------------

    /// §5.3.4.3 `UpdateMinRTT`.
    fn update_min_rtt(&mut self, rs: &RateSample) {
        let now = rs.now;
        self.probe_rtt_expired = now > self.probe_rtt_min_stamp + PROBE_RTT_INTERVAL;
        if let Some(rtt) = rs.rtt {
            if self.probe_rtt_min_delay.is_none_or(|d| rtt < d) || self.probe_rtt_expired {
                self.probe_rtt_min_delay = Some(rtt);
                self.probe_rtt_min_stamp = now;
            }
        }
        let min_rtt_expired = now > self.min_rtt_stamp + MIN_RTT_FILTER_LEN;
        if let Some(d) = self.probe_rtt_min_delay {
            if self.min_rtt.is_none_or(|m| d < m) || min_rtt_expired {
                self.min_rtt = Some(d);
                self.min_rtt_stamp = self.probe_rtt_min_stamp;
            }
        }
    }

    /// §5.3.4.3 `CheckProbeRTT`.
    fn check_probe_rtt(&mut self, rs: &RateSample) {
        if self.state != BbrState::ProbeRtt && self.probe_rtt_expired && !self.idle_restart {
            self.state = BbrState::ProbeRtt;
            self.pacing_gain = 1.0;
            self.cwnd_gain = PROBE_RTT_CWND_GAIN;
            self.probe_rtt_count += 1;
            self.save_cwnd();
            self.probe_rtt_done_stamp = None;
            self.ack_phase = AckPhase::ProbeStopping;
            self.start_round();
        }
        if self.state == BbrState::ProbeRtt {
            self.handle_probe_rtt(rs.now);
        }
        if rs.delivered > 0 {
            self.idle_restart = false;
        }
    }

    /// §5.3.4.3 `HandleProbeRTT` (the connection marks itself application-limited while
    /// [`Controller::sends_app_limited`] says so).
    fn handle_probe_rtt(&mut self, now: Instant) {
        if self.probe_rtt_done_stamp.is_none() && self.in_flight <= self.probe_rtt_cwnd() {
            self.probe_rtt_done_stamp = Some(now + PROBE_RTT_DURATION);
            self.probe_rtt_round_done = false;
            self.start_round();
        } else if self.probe_rtt_done_stamp.is_some() {
            if self.round_start {
                self.probe_rtt_round_done = true;
            }
            if self.probe_rtt_round_done {
                self.check_probe_rtt_done(now);
            }
        }
    }

    /// §5.3.4.3 `CheckProbeRTTDone`.
    fn check_probe_rtt_done(&mut self, now: Instant) {
        if self.probe_rtt_done_stamp.is_some_and(|d| now > d) {
            self.probe_rtt_min_stamp = now;
            self.restore_cwnd();
            self.exit_probe_rtt(now);
        }
    }

    /// §5.3.4.4 `ExitProbeRTT`.
    fn exit_probe_rtt(&mut self, now: Instant) {
        self.reset_short_term_model();
        if self.full_bw_reached {
            self.start_probe_bw_down(now);
            self.start_probe_bw_cruise();
        } else {
            self.enter_startup();
        }
    }

    fn probe_rtt_cwnd(&self) -> u64 {
        self.bdp_multiple(PROBE_RTT_CWND_GAIN).max(self.min_pipe_cwnd())
    }

    // ---- §5.5 the model ------------------------------------------------------------------

    /// §5.5.1 `UpdateRound` and §5.5.5 `UpdateMaxBw`.
    fn update_max_bw(&mut self, rs: &RateSample) {
        if rs.delivered > 0 && rs.prior_delivered >= self.next_round_delivered {
            self.start_round();
            self.round_count += 1;
            self.rounds_since_probe_up += 1;
            self.round_start = true;
        } else {
            self.round_start = false;
        }
        if rs.delivery_rate > 0 && (rs.delivery_rate >= self.max_bw || !rs.is_app_limited) {
            self.max_bw_filter.update(rs.delivery_rate);
            self.max_bw = self.max_bw_filter.get();
        }
    }

    /// §5.5.9 `UpdateACKAggregation`.
    fn update_ack_aggregation(&mut self, rs: &RateSample) {
        let interval = rs.now.saturating_duration_since(self.extra_acked_interval_start);
        let mut expected = (self.bw as f64 * interval.as_secs_f64()) as u64;
        if self.extra_acked_delivered <= expected {
            self.extra_acked_delivered = 0;
            self.extra_acked_interval_start = rs.now;
            expected = 0;
        }
        self.extra_acked_delivered += u64::from(rs.newly_acked);
        let extra = self.extra_acked_delivered.saturating_sub(expected).min(self.cwnd);
        // Two slots of half the window each (`filter_len` rounds, 1 in Startup).
        let filter_len = if self.full_bw_reached { EXTRA_ACKED_FILTER_LEN } else { 1 };
        if self.round_start {
            self.extra_acked_rounds += 1;
            if self.extra_acked_rounds >= filter_len.div_ceil(2) {
                self.extra_acked_rounds = 0;
                self.extra_acked_filter.advance();
            }
        }
        self.extra_acked_filter.update(extra);
        self.extra_acked = self.extra_acked_filter.get();
    }

    /// §5.5.10.3 `UpdateLatestDeliverySignals`.
    ///
    /// Deviation: in ProbeBW_CRUISE only samples of packets sent since CRUISE began count.
    /// The ACKs of a round report on the flight sent a round earlier: entering CRUISE from
    /// Drain (pacing gain 0.5), ProbeBW_DOWN (0.9) or ProbeRTT (half a BDP in flight), the
    /// first round's "latest" rate and volume are those of the slower phase, and with a
    /// loss in that round `AdaptLowerBoundsFromCongestion` cut `bw_shortterm` and
    /// `inflight_shortterm` to `BBR.Beta` (0.7) of the model. The next round's samples
    /// then showed the full rate again and restored them, the one after cut them again: a
    /// two-round oscillation between 100 % and 70 % that lasted until the next REFILL
    /// (BBR-01, 1 % random loss: a loss every round).
    fn update_latest_delivery_signals(&mut self, rs: &RateSample) {
        self.loss_round_start = false;
        if self.latest_from == u64::MAX
            && rs.delivered > 0
            && rs.prior_delivered >= self.cruise_from
        {
            self.latest_from = self.delivered;
        }
        if self.sample_is_latest(rs) {
            self.bw_latest = self.bw_latest.max(rs.delivery_rate);
            self.inflight_latest = self.inflight_latest.max(rs.delivered);
        }
        if rs.delivered > 0 && rs.prior_delivered >= self.loss_round_delivered {
            self.loss_round_delivered = self.delivered;
            self.loss_round_start = true;
        }
    }

    /// The sample describes the current operating point (see
    /// `update_latest_delivery_signals`).
    fn sample_is_latest(&self, rs: &RateSample) -> bool {
        self.state != BbrState::ProbeBwCruise || rs.prior_delivered >= self.latest_from
    }

    /// §5.5.10.3 `AdvanceLatestDeliverySignals`.
    fn advance_latest_delivery_signals(&mut self, rs: &RateSample) {
        if self.loss_round_start {
            let latest = self.sample_is_latest(rs);
            self.bw_latest = if latest { rs.delivery_rate } else { 0 };
            self.inflight_latest = if latest { rs.delivered } else { 0 };
            self.loss_events_in_round = 0;
        }
    }

    fn reset_congestion_signals(&mut self) {
        self.is_loss_in_round = false;
        self.bw_latest = 0;
        self.inflight_latest = 0;
    }

    /// §5.5.10.3 `UpdateCongestionSignals` with `AdaptLowerBoundsFromCongestion`.
    fn update_congestion_signals(&mut self, rs: &RateSample) {
        self.update_max_bw(rs);
        if !self.loss_round_start {
            return;
        }
        // A round in CRUISE without a sample of its own (see
        // `update_latest_delivery_signals`) has nothing to bound the cut: it waits a round.
        let measured = self.state != BbrState::ProbeBwCruise || self.bw_latest > 0;
        if !self.is_probing_bw() && self.is_loss_in_round && measured {
            // InitLowerBounds, then LossLowerBounds.
            if self.bw_shortterm == INF {
                self.bw_shortterm = self.max_bw;
            }
            if self.inflight_shortterm == INF {
                self.inflight_shortterm = self.cwnd;
            }
            self.bw_shortterm = self.bw_latest.max((BETA * self.bw_shortterm as f64) as u64);
            self.inflight_shortterm =
                self.inflight_latest.max((BETA * self.inflight_shortterm as f64) as u64);
        }
        self.is_loss_in_round = false;
    }

    fn reset_short_term_model(&mut self) {
        self.bw_shortterm = INF;
        self.inflight_shortterm = INF;
    }

    /// §5.5.10.2 `NoteLoss`.
    fn note_loss(&mut self) {
        if !self.is_loss_in_round {
            self.loss_round_delivered = self.delivered;
            self.save_cwnd();
        }
        self.is_loss_in_round = true;
    }

    /// §5.5.10.2 `HandleInflightTooHigh`.
    fn handle_inflight_too_high(&mut self, now: Instant, app_limited: bool, tx_in_flight: u64) {
        self.prev_probe_too_high = true;
        self.is_bw_probe_sample = false;
        if !app_limited {
            let floor = (self.target_inflight() as f64 * BETA) as u64;
            self.inflight_longterm = tx_in_flight.max(floor);
        }
        if self.state == BbrState::ProbeBwUp {
            self.start_probe_bw_down(now);
        }
    }

    // ---- §5.6 control parameters ---------------------------------------------------------

    /// §5.6.4.2 `BDPMultiple`.
    fn bdp_multiple(&self, gain: f64) -> u64 {
        let Some(min_rtt) = self.min_rtt else { return self.initial_cwnd };
        let bdp = self.bw as f64 * min_rtt.as_secs_f64();
        (gain * bdp) as u64
    }

    /// §5.6.3 `SetSendQuantum`, for the offload budget of §5.5.8.1.
    fn send_quantum(&self) -> u64 {
        (self.pacing_rate / 1000).min(64 * 1024).max(2 * self.mss)
    }

    /// §5.6.4.2 `QuantizationBudget`.
    fn quantization_budget(&self, cap: u64) -> u64 {
        let cap = cap.max(3 * self.send_quantum()).max(self.min_pipe_cwnd());
        if self.state == BbrState::ProbeBwUp {
            cap + 2 * self.mss
        } else {
            cap
        }
    }

    /// §5.6.4.2 `Inflight(gain)`.
    fn inflight(&self, gain: f64) -> u64 {
        self.quantization_budget(self.bdp_multiple(gain))
    }

    /// §5.6.2 `SetPacingRateWithGain`.
    fn set_pacing_rate_with_gain(&mut self, gain: f64) {
        let rate = (gain * self.bw as f64) as u64 * (100 - PACING_MARGIN_PERCENT) / 100;
        if rate > 0 && (self.full_bw_reached || rate > self.pacing_rate) {
            self.pacing_rate = rate;
        }
    }

    /// §5.6.4.4 `SaveCwnd`.
    fn save_cwnd(&mut self) {
        if !self.in_recovery && self.state != BbrState::ProbeRtt {
            self.prior_cwnd = self.cwnd;
        } else {
            self.prior_cwnd = self.prior_cwnd.max(self.cwnd);
        }
    }

    /// §5.6.4.4 `RestoreCwnd`.
    fn restore_cwnd(&mut self) {
        self.cwnd = self.cwnd.max(self.prior_cwnd);
    }

    /// §5.6.4.6 `SetCwnd` with §5.6.4.5 and §5.6.4.7.
    fn set_cwnd(&mut self, rs: &RateSample) {
        let cap = self.bdp_multiple(self.cwnd_gain) + self.extra_acked;
        self.max_inflight = self.quantization_budget(cap);
        let acked = u64::from(rs.newly_acked);
        if self.full_bw_reached {
            self.cwnd = (self.cwnd + acked).min(self.max_inflight);
        } else if self.cwnd < self.max_inflight || self.delivered < self.initial_cwnd {
            self.cwnd += acked;
        }
        self.cwnd = self.cwnd.max(self.min_pipe_cwnd());
        if self.state == BbrState::ProbeRtt {
            self.cwnd = self.cwnd.min(self.probe_rtt_cwnd());
        }
        // §5.6.4.7 BoundCwndForModel.
        let mut cap = INF;
        if self.is_in_probe_bw_state() && self.state != BbrState::ProbeBwCruise {
            cap = self.inflight_longterm;
        } else if matches!(self.state, BbrState::ProbeRtt | BbrState::ProbeBwCruise) {
            cap = self.inflight_with_headroom();
        }
        let cap = cap.min(self.inflight_shortterm).max(self.min_pipe_cwnd());
        self.cwnd = self.cwnd.min(cap);
    }
}

/// §5.5.10.2 `IsInflightTooHigh`.
fn is_inflight_too_high(rs: &RateSample) -> bool {
    rs.lost as f64 > f64::from(rs.tx_in_flight) * LOSS_THRESH || (rs.lost > 0 && !rs.has_sack)
}

impl Controller for Bbr {
    fn window(&self) -> u32 {
        self.cwnd.min(u64::from(u32::MAX)) as u32
    }

    fn ssthresh(&self) -> u32 {
        u32::MAX
    }

    fn on_ack(&mut self, _ack: &AckInfo) {
        // Everything happens in `on_rate_sample`, on every ACK.
    }

    fn on_loss(&mut self, _now: Instant, _in_flight: u32, _mss: u32) {
        // §5.6.4.4 OnEnterFastRecovery: the model answers the loss (§5.5.10).
        self.save_cwnd();
        self.in_recovery = true;
    }

    fn on_recovery_end(&mut self, _now: Instant, _in_flight: u32, _mss: u32) {
        self.in_recovery = false;
        self.restore_cwnd();
    }

    fn on_rto(&mut self, _now: Instant, _in_flight: u32, mss: u32) {
        // §5.6.4.4 OnEnterRTO: every segment is lost, so C.inflight is 0 and cwnd one MSS.
        self.mss = u64::from(mss.max(1));
        self.save_cwnd();
        self.note_loss();
        self.in_recovery = true;
        self.cwnd = self.mss;
    }

    fn set_window(&mut self, cwnd: u32, mss: u32) {
        // Only a reduction (ECN's, RFC 3168 §6.1.2) applies; BBR grows its own window.
        self.cwnd = self.cwnd.min(u64::from(cwnd)).max(u64::from(mss));
    }

    fn on_idle_restart(&mut self, _now: Instant, _cwnd: u32, _ssthresh: u32, _mss: u32) {
        // §5.4: BBR keeps cwnd after idle and paces at BBR.bw instead (`on_transmit`).
    }

    fn pacing_rate(&self) -> Option<u64> {
        Some(self.pacing_rate.max(1))
    }

    fn wants_rate_samples(&self) -> bool {
        true
    }

    fn owns_recovery(&self) -> bool {
        true
    }

    fn sends_app_limited(&self) -> bool {
        self.state == BbrState::ProbeRtt
    }

    fn on_transmit(&mut self, now: Instant, in_flight: u32, app_limited: bool) {
        // §5.4.1 HandleRestartFromIdle.
        if in_flight == 0 && app_limited {
            self.idle_restart = true;
            self.extra_acked_interval_start = now;
            if self.is_in_probe_bw_state() {
                self.set_pacing_rate_with_gain(1.0);
            } else if self.state == BbrState::ProbeRtt {
                self.check_probe_rtt_done(now);
            }
        }
    }

    fn on_packet_lost(&mut self, p: &LostPacket) {
        // §5.5.10.2 HandleLostPacket.
        self.mss = u64::from(p.mss.max(1));
        self.delivered = p.total_delivered;
        self.note_loss();
        if !self.is_bw_probe_sample {
            return;
        }
        let tx = f64::from(p.tx_in_flight);
        let lost = p.lost_since_sent as f64;
        if lost > tx * LOSS_THRESH || (p.lost_since_sent > 0 && !p.has_sack) {
            // InflightAtLoss: where within this packet the loss rate crossed the threshold.
            let size = f64::from(p.size);
            let inflight_prev = (tx - size).max(0.0);
            let lost_prev = (lost - size).max(0.0);
            let lost_prefix =
                ((LOSS_THRESH * inflight_prev - lost_prev) / (1.0 - LOSS_THRESH)).max(0.0);
            let at_loss = (inflight_prev + lost_prefix) as u64;
            self.handle_inflight_too_high(p.now, p.is_app_limited, at_loss);
        }
    }

    fn on_rate_sample(&mut self, rs: &RateSample) {
        self.mss = u64::from(rs.mss.max(1));
        self.in_flight = u64::from(rs.in_flight);
        self.delivered = rs.total_delivered;
        self.is_cwnd_limited = rs.is_cwnd_limited;
        if self.in_recovery && !rs.in_recovery {
            // Recovery (fast or after a timeout) ended: §5.6.4.4 RestoreCwnd.
            self.in_recovery = false;
            self.restore_cwnd();
        }
        self.in_recovery = rs.in_recovery;
        if rs.newly_lost > 0 {
            self.loss_events_in_round = self.loss_events_in_round.saturating_add(1);
        }
        // §5.2.3 UpdateModelAndState.
        self.update_latest_delivery_signals(rs);
        self.update_congestion_signals(rs);
        self.update_ack_aggregation(rs);
        self.check_full_bw_reached(rs);
        self.check_startup_done(rs);
        self.check_drain_done(rs.now);
        self.update_probe_bw_cycle_phase(rs);
        self.update_min_rtt(rs);
        self.check_probe_rtt(rs);
        self.advance_latest_delivery_signals(rs);
        self.bw = self.max_bw.min(self.bw_shortterm);
        // §5.2.3 UpdateControlParameters (the send quantum only sizes the offload budget).
        self.set_pacing_rate_with_gain(self.pacing_gain);
        if rs.newly_acked > 0 || rs.newly_lost > 0 {
            self.set_cwnd(rs);
        }
    }
}

#[cfg(test)]
mod tests;
