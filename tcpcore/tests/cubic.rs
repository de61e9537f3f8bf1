//! RX-03, CUBIC part: the CUBIC window function (RFC 9438 §4.2–§4.8), Linux's HyStart in the
//! initial slow start (the default) and HyStart++ (RFC 9406 §4.3, configurable). The
//! controller is driven directly with ACKs at virtual times; the expected windows are computed
//! here from the RFC's formulas, in segments. The last tests run a real CUBIC connection,
//! first against a hand-played peer, then end to end.
//!
//! - SSX-01: HyStart's ACK train ends slow start (ssthresh = cwnd) once a round's train of
//!   ACKs (gaps of at most 2 ms) is longer than half the minimum RTT unpaced, the whole
//!   minimum RTT paced, plus Linux's aggregation allowance; a gap ends the train.
//! - SSX-02: HyStart's delay detector ends slow start once the minimum of a round's first
//!   samples (nine, as Linux) exceeds the minimum RTT by an eighth, clamped to 4–16 ms.
//! - SSX-03: a paced sender judges every block of nine samples of a round, not only the first:
//!   its samples carry no queue of its own bursts, so the queue its round builds shows in the
//!   same round. An unpaced one keeps Linux's single judgement.
mod common;
use common::*;
use std::time::Duration;
use tcpcore::cc::{AckInfo, Controller, Cubic, HyStartExit, SlowStartPhase};
use tcpcore::config::{CongestionAlgorithm, SlowStartExit};
use tcpcore::wire::SeqNum;
use tcpcore::{ConnConfig, ConnParams, Connection, Instant};

const SMSS: u32 = 1000;
/// RFC 9438 §4.1.
const C: f64 = 0.4;
const BETA: f64 = 0.7;
const ALPHA: f64 = 3.0 * (1.0 - BETA) / (1.0 + BETA);

/// `K = cubic_root((W_max - cwnd_epoch) / C)`, windows in segments (RFC 9438 §4.2 eq. 2).
fn rfc_k(w_max: f64, cwnd_epoch: f64) -> f64 {
    ((w_max - cwnd_epoch) / C).cbrt()
}

/// `W_cubic(t) = C (t - K)^3 + W_max`, in segments (RFC 9438 §4.2 eq. 1).
fn rfc_w_cubic(t: f64, k: f64, w_max: f64) -> f64 {
    C * (t - k).powi(3) + w_max
}

fn segs(cc: &Cubic) -> f64 {
    f64::from(cc.window()) / f64::from(SMSS)
}

/// A sender in front of a controller: each ACK covers one segment; after it the sender fills
/// the window again, so `snd_max` is always `snd_una + cwnd`.
struct Flow {
    cc: Cubic,
    now: Instant,
    una: u32,
    max: u32,
    srtt: Duration,
}

impl Flow {
    fn new(cc: Cubic, srtt: Duration) -> Flow {
        let max = cc.window();
        Flow { cc, now: Instant::ZERO, una: 0, max, srtt }
    }

    fn ack(&mut self, rtt_sample: Option<Duration>) {
        self.una += SMSS;
        let (snd_una, snd_max) = (SeqNum(self.una), SeqNum(self.max));
        let info = AckInfo {
            now: self.now,
            acked: SMSS,
            mss: SMSS,
            rtt_sample,
            srtt: Some(self.srtt),
            snd_una,
            snd_max,
            paced: false,
            pacing_rate: 0,
        };
        self.cc.on_ack(&info);
        self.max = self.max.max(self.una + self.cc.window());
    }

    /// One HyStart++ round (RFC 9406 §4.3): from the ACK that passes the previous round's end
    /// up to the last ACK before this round's end (`snd_max` at its first ACK); each ACK
    /// carries an RTT sample of `rtt`. Returns the number of ACKs.
    fn round(&mut self, rtt: Duration) -> u32 {
        let end = self.max;
        self.ack(Some(rtt));
        let mut n = 1;
        while self.una + SMSS < end {
            self.ack(Some(rtt));
            n += 1;
        }
        self.now += rtt;
        n
    }

    /// Acknowledge one window's worth of segments spread evenly over one `srtt`.
    fn rtt_of_acks(&mut self) {
        let n = self.cc.window() / SMSS;
        let step = self.srtt / n.max(1);
        for _ in 0..n {
            self.now += step;
            self.ack(None);
        }
    }
}

/// A controller with `w` segments of window that detects a loss with all of them in flight,
/// after its initial slow start is over.
fn after_loss_at(w: u32) -> Cubic {
    let mut cc = Cubic::new(w, SMSS);
    cc.on_loss(Instant::ZERO, w * SMSS, SMSS);
    cc.on_recovery_end(Instant::ZERO, w * SMSS, SMSS);
    cc
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---- RFC 9438 §4.6: multiplicative decrease --------------------------------------------------

#[test]
fn rx_03_cubic_multiplicative_decrease_by_beta_0_7() {
    let mut cc = Cubic::new(100, SMSS);
    cc.on_loss(Instant::ZERO, 100 * SMSS, SMSS);
    // ssthresh = flight_size × β_cubic; cwnd = ssthresh.
    assert_eq!((cc.window(), cc.ssthresh()), (70_000, 70_000));
    assert_eq!(cc.cwnd_prior(), 100_000.0);
    assert_eq!(cc.slow_start_phase(), SlowStartPhase::Done, "a loss ends HyStart++");
    // A second loss (recovery ended) reduces by 0.7 again.
    cc.on_recovery_end(Instant::ZERO, 70 * SMSS, SMSS);
    cc.on_loss(Instant::ZERO, 70 * SMSS, SMSS);
    assert_eq!((cc.window(), cc.ssthresh()), (49_000, 49_000));
    // Never below 2 MSS.
    cc.on_loss(Instant::ZERO, SMSS, SMSS);
    assert_eq!((cc.window(), cc.ssthresh()), (2 * SMSS, 2 * SMSS));
}

#[test]
fn rx_03_cubic_fast_retransmit_on_a_connection_reduces_to_0_7_flight() {
    let mut sc = Sc::established(Sc::plain());
    let mss = sc.conn.info().snd_mss;
    sc.conn.write(&[7; 30_000]).unwrap();
    assert_eq!(sc.output().len(), 10, "initial window 10 × MSS (RFC 6928)");
    sc.advance(Duration::from_millis(10));
    let una = ISS + 1;
    for _ in 0..3 {
        sc.deliver(Seg::ack(PEER_ISS + 1, una));
    }
    // The third duplicate ACK: fast retransmit of SND.UNA (RFC 5681 §3.2).
    let rtx = sc.expect_one();
    assert_eq!((rtx.seq(), rtx.len()), (una, mss as usize));
    let info = sc.conn.info();
    let reduced = (f64::from(10 * mss) * BETA) as u32;
    assert_eq!((info.ssthresh, info.cwnd, info.fast_retransmits), (reduced, reduced, 1));
}

/// RFC 9406 §4.3 recommends a per-ACK limit of L = 8 segments for an unpaced sender; Linux's
/// slow start has none, so a stretch ACK of the whole initial window of 10 doubles it (Google's
/// packetdrill `cubic-hystart-delay-*` scripts expect cwnd 20 here).
#[test]
fn rx_03_hystart_slow_start_counts_a_stretch_ack_whole_like_linux() {
    let mut cc = Cubic::new(10, SMSS);
    cc.on_ack(&AckInfo {
        now: Instant::from_millis(200),
        acked: 10 * SMSS,
        mss: SMSS,
        rtt_sample: Some(ms(200)),
        srtt: Some(ms(200)),
        snd_una: SeqNum(10 * SMSS),
        snd_max: SeqNum(10 * SMSS),
        paced: false,
        pacing_rate: 0,
    });
    assert_eq!(cc.slow_start_phase(), SlowStartPhase::SlowStart);
    assert_eq!(cc.window(), 20 * SMSS);
}

#[test]
fn rx_03_cubic_slow_start_back_to_ssthresh_stops_at_it() {
    // A loss at 20 segments: ssthresh = 14. Recovery ends with 12 segments in flight, so
    // cwnd = min(ssthresh, FlightSize + SMSS) = 13 (RFC 6582 §3.2 step 3), below ssthresh:
    // slow start (RFC 5681 §3.1) takes it back, by at most L = 2 SMSS per ACK.
    let mut cc = Cubic::new(20, SMSS);
    cc.on_loss(Instant::ZERO, 20 * SMSS, SMSS);
    cc.on_recovery_end(Instant::ZERO, 12 * SMSS, SMSS);
    assert_eq!((cc.window(), cc.ssthresh()), (13 * SMSS, 14 * SMSS));
    let ack = |una: u32, acked: u32| AckInfo {
        now: Instant::from_millis(10),
        acked,
        mss: SMSS,
        rtt_sample: None,
        srtt: Some(ms(10)),
        snd_una: SeqNum(una),
        snd_max: SeqNum(una + 13 * SMSS),
        paced: false,
        pacing_rate: 0,
    };
    // A stretch ACK of 2 segments: 13 + 2 would be 15; slow start ends at ssthresh.
    cc.on_ack(&ack(2 * SMSS, 2 * SMSS));
    assert_eq!(cc.window(), 14 * SMSS, "slow start overshot ssthresh");
    // So the congestion-avoidance epoch starts from cwnd_epoch = ssthresh (RFC 9438 §4.6):
    // W_est = 14 segments, plus α_cubic × acked / cwnd for this ACK (§4.3).
    cc.on_ack(&ack(3 * SMSS, SMSS));
    assert_eq!(cc.epoch_start(), Some(Instant::from_millis(10)));
    let w_est = 14_000.0 + ALPHA * f64::from(SMSS) * 1000.0 / 14_000.0;
    assert!((cc.w_est() - w_est).abs() < 1e-6, "W_est {} vs {w_est}", cc.w_est());
}

// ---- RFC 9438 §4.2, §4.4, §4.5: the cubic window function --------------------------------------

#[test]
fn rx_03_cubic_window_follows_w_cubic_after_a_loss() {
    // W_max = 1000 segments, cwnd_epoch = 700, RTT 100 ms: a large BDP, so the cubic function
    // (not the Reno-friendly estimate) drives the window.
    let mut f = Flow::new(after_loss_at(1000), ms(100));
    assert_eq!(f.cc.window(), 700 * SMSS);
    f.now = Instant::from_secs(10);
    let epoch = f.now + ms(100) / 700;
    f.rtt_of_acks();
    assert_eq!(f.cc.epoch_start(), Some(epoch), "t_epoch: the first ACK in avoidance");
    assert_eq!(f.cc.w_max(), 1_000_000.0);
    let k = rfc_k(1000.0, 700.0);
    assert!((f.cc.k() - k).abs() < 1e-12, "K = {} (RFC: {k})", f.cc.k());
    assert!((k - 9.086).abs() < 1e-3, "K = cbrt(300 / 0.4)");

    let mut checked = vec![];
    let mut last = segs(&f.cc);
    while f.now < epoch + Duration::from_secs(12) {
        f.rtt_of_acks();
        let t = (f.now - epoch).as_secs_f64();
        let (w, expect) = (segs(&f.cc), rfc_w_cubic(t, k, 1000.0));
        // Each ACK moves cwnd toward W_cubic(t + RTT), so cwnd tracks W_cubic(t) closely
        // (the controller steers one RTT ahead).
        assert!(
            (w - expect).abs() < 0.005 * expect,
            "t = {t:.2} s: cwnd {w:.2} vs W_cubic {expect:.2}"
        );
        assert!(w >= last, "cwnd never shrinks without a congestion event");
        assert!(w > f.cc.w_est() / f64::from(SMSS), "t = {t:.2} s: Reno-friendly region");
        last = w;
        checked.push((t, w));
    }
    // Concave below W_max, a plateau around t = K, convex beyond: the growth per second
    // falls, then rises again.
    let at = |s: f64| checked.iter().find(|(t, _)| *t >= s).map(|&(_, w)| w).unwrap();
    let g = [at(1.0) - at(0.0), at(k + 0.5) - at(k - 0.5), at(k + 2.0) - at(k + 1.0)];
    assert!(g[0] > 50.0 && g[1] < 1.0 && g[2] > 2.0, "growth per second: {g:?}");
    assert!((at(k) - 1000.0).abs() < 1.0, "cwnd ≈ W_max at t = K: {}", at(k));
}

#[test]
fn rx_03_cubic_target_is_clamped_to_one_and_a_half_cwnd() {
    // Far into the convex region W_cubic(t + RTT) is huge; growth per RTT stays ≤ 1.5×.
    let mut f = Flow::new(after_loss_at(20), ms(100));
    f.rtt_of_acks();
    f.now += Duration::from_secs(60);
    let before = segs(&f.cc);
    let mut cc = f.cc.clone();
    // One ACK: cwnd += (target - cwnd) / cwnd with target = 1.5 cwnd.
    let info = AckInfo {
        now: f.now,
        acked: SMSS,
        mss: SMSS,
        rtt_sample: None,
        srtt: Some(ms(100)),
        snd_una: SeqNum(f.una + SMSS),
        snd_max: SeqNum(f.max),
        paced: false,
        pacing_rate: 0,
    };
    cc.on_ack(&info);
    let expect = before + 0.5 * before / before;
    assert!((segs(&cc) - expect).abs() < 0.002, "{} vs {expect}", segs(&cc));
    f.rtt_of_acks();
    assert!(segs(&f.cc) <= before * 1.5 + 0.01, "{} ≤ 1.5 × {before}", segs(&f.cc));
}

// ---- RFC 9438 §4.3: the Reno-friendly region -------------------------------------------------

#[test]
fn rx_03_cubic_reno_friendly_region_dominates_at_small_bdp() {
    // W_max = 10 segments and a 10 ms RTT: W_est (α_cubic per RTT) outgrows W_cubic, whose
    // K is 1.96 s, so cwnd = W_est.
    let mut f = Flow::new(after_loss_at(10), ms(10));
    assert_eq!(f.cc.window(), 7 * SMSS);
    f.rtt_of_acks();
    let epoch = f.cc.epoch_start().unwrap();
    let k = rfc_k(10.0, 7.0);
    let mut rounds = 0;
    while f.cc.w_est() < 10.0 * f64::from(SMSS) {
        let before = f.cc.w_est();
        f.rtt_of_acks();
        rounds += 1;
        let t = (f.now - epoch).as_secs_f64();
        // W_est grows by α_cubic × acked / cwnd per ACK: about α_cubic segments per RTT
        // (a little less, as cwnd grows during the round and whole segments are acked).
        let per_rtt = (f.cc.w_est() - before) / f64::from(SMSS) / ALPHA;
        let crossed = f.cc.w_est() >= f.cc.cwnd_prior(); // α_cubic became 1 mid-round
        assert!(crossed || (0.75..=1.0).contains(&per_rtt), "round {rounds}: {per_rtt:.3} × α");
        let est = f.cc.w_est() / f64::from(SMSS);
        assert!(rfc_w_cubic(t, k, 10.0) < est, "round {rounds}: W_cubic below W_est");
        assert_eq!(f.cc.window(), f.cc.w_est() as u32, "cwnd = W_est");
    }
    assert!((5..=7).contains(&rounds), "3 segments at ~0.53 per RTT: {rounds} RTTs");
    // W_est reached cwnd_prior: α_cubic becomes 1 (Reno's one segment per RTT).
    let before = f.cc.w_est();
    f.rtt_of_acks();
    let per_rtt = (f.cc.w_est() - before) / f64::from(SMSS);
    assert!((per_rtt - 1.0).abs() < 0.1, "after cwnd_prior, {per_rtt:.3} segments per RTT");
}

// ---- RFC 9438 §4.7: fast convergence ----------------------------------------------------------

#[test]
fn rx_03_cubic_fast_convergence_lowers_w_max() {
    let mut cc = Cubic::new(100, SMSS);
    cc.on_loss(Instant::ZERO, 100 * SMSS, SMSS);
    assert_eq!(cc.w_max(), 100_000.0, "first loss: W_max = cwnd");
    // Regrow to 90 segments only, then lose again: W_max = cwnd × (1 + β) / 2.
    let mut f = Flow::new(cc, ms(100));
    while f.cc.window() < 90 * SMSS {
        f.ack(None);
    }
    let cwnd = f64::from(f.cc.window());
    f.cc.on_loss(f.now, f.cc.window(), SMSS);
    assert!((f.cc.w_max() - cwnd * (1.0 + BETA) / 2.0).abs() < 1.0, "W_max {}", f.cc.w_max());
    assert!(f.cc.w_max() < 77_000.0);
    // Without the shortfall (cwnd ≥ W_max), W_max is the cwnd itself.
    let mut cc = Cubic::new(50, SMSS);
    cc.on_loss(Instant::ZERO, 50 * SMSS, SMSS);
    let mut f = Flow::new(cc, ms(100));
    while f.cc.window() < 80 * SMSS {
        f.rtt_of_acks();
    }
    let cwnd = f64::from(f.cc.window());
    f.cc.on_loss(f.now, f.cc.window(), SMSS);
    assert!((f.cc.w_max() - cwnd).abs() < 1.0, "W_max {} = cwnd {cwnd}", f.cc.w_max());
}

// ---- RFC 9438 §4.8: timeout -------------------------------------------------------------------

#[test]
fn rx_03_cubic_rto_loss_window_then_convex_growth_from_cwnd_epoch() {
    let mut cc = Cubic::new(40, SMSS);
    cc.on_rto(Instant::ZERO, 40 * SMSS, SMSS);
    // cwnd = 1 MSS like Reno; ssthresh = flight × β_cubic.
    assert_eq!((cc.window(), cc.ssthresh()), (SMSS, 28_000));
    let mut f = Flow::new(cc, ms(100));
    // Standard slow start (HyStart++ only runs in the first one, RFC 9406 §4.2).
    f.ack(None);
    assert_eq!(f.cc.window(), 2 * SMSS);
    while f.cc.window() < f.cc.ssthresh() {
        f.ack(None);
    }
    assert_eq!(f.cc.window(), 28 * SMSS);
    f.now = Instant::from_secs(1);
    f.ack(None);
    // First avoidance stage after a timeout: K = 0, W_max = W_est = cwnd_epoch.
    assert_eq!(f.cc.epoch_start(), Some(Instant::from_secs(1)));
    assert_eq!((f.cc.k(), f.cc.w_max()), (0.0, 28_000.0));
    let epoch = Instant::from_secs(1);
    for _ in 0..30 {
        f.rtt_of_acks();
        let t = (f.now - epoch).as_secs_f64();
        let expect = rfc_w_cubic(t, 0.0, 28.0).max(f.cc.w_est() / f64::from(SMSS));
        let w = segs(&f.cc);
        assert!((w - expect).abs() < 2.0, "t = {t:.2}: cwnd {w:.2} vs {expect:.2}");
    }
}

// ---- Linux's HyStart (the default) ---------------------------------------------------------

/// A sender in slow start with Linux's HyStart: each ACK covers one segment, at a time and
/// with an RTT sample the test picks; the window is always full.
struct Train {
    cc: Cubic,
    una: u32,
    max: u32,
    paced: bool,
}

impl Train {
    fn new(segments: u32, paced: bool) -> Train {
        let cc = Cubic::new(segments, SMSS);
        let max = cc.window();
        Train { cc, una: 0, max, paced }
    }

    /// One ACK at `at_ms` with an RTT sample of `rtt_ms`; the pacing rate is 100 MB/s, so
    /// the aggregation allowance is its cap, 1 ms.
    fn ack(&mut self, at_ms: u64, rtt_ms: u64) {
        self.una += SMSS;
        self.cc.on_ack(&AckInfo {
            now: Instant::from_micros(at_ms * 1000),
            acked: SMSS,
            mss: SMSS,
            rtt_sample: Some(ms(rtt_ms)),
            srtt: Some(ms(rtt_ms)),
            snd_una: SeqNum(self.una),
            snd_max: SeqNum(self.max),
            paced: self.paced,
            pacing_rate: 100_000_000,
        });
        self.max = self.max.max(self.una + self.cc.window());
    }

    /// Acknowledge up to and including the round's end (`snd_max` at its first ACK), all at
    /// `at_ms` with samples of `rtt_ms`: the next ACK starts a new round.
    fn finish_round(&mut self, at_ms: u64, rtt_ms: u64) {
        let end = self.max;
        while self.una < end {
            self.ack(at_ms, rtt_ms);
        }
    }

    fn in_slow_start(&self) -> bool {
        self.cc.ssthresh() == u32::MAX
    }
}

/// SSX-01: unpaced, a round whose ACKs keep coming at most 2 ms apart ends slow start once it
/// is longer than (minimum RTT + 1 ms) / 2; ssthresh is cwnd before that ACK.
#[test]
fn ssx_01_ack_train_longer_than_half_min_rtt_ends_unpaced_slow_start() {
    // SSX-01
    let mut t = Train::new(100, false);
    t.finish_round(0, 100);
    // The new round starts at 100 ms; a train of ACKs 0.5 ms apart, RTT steady at 100 ms.
    let mut at_us = 100_000;
    while t.in_slow_start() {
        assert!(at_us <= 100_000 + 51_000, "still in slow start at {at_us} µs");
        let w = t.cc.window();
        t.una += SMSS;
        t.cc.on_ack(&AckInfo {
            now: Instant::from_micros(at_us),
            acked: SMSS,
            mss: SMSS,
            rtt_sample: Some(ms(100)),
            srtt: Some(ms(100)),
            snd_una: SeqNum(t.una),
            snd_max: SeqNum(t.max),
            paced: false,
            pacing_rate: 100_000_000,
        });
        t.max = t.max.max(t.una + t.cc.window());
        if !t.in_slow_start() {
            // (100 ms + 1 ms) / 2 = 50.5 ms: the first ACK past it.
            assert_eq!(at_us, 100_000 + 51_000);
            assert_eq!(t.cc.ssthresh(), w, "ssthresh = cwnd before the ACK");
        }
        at_us += 500;
    }
    assert_eq!(t.cc.hystart_exit(), Some(HyStartExit::AckTrain));
    assert_eq!(t.cc.slow_start_phase(), SlowStartPhase::Done);
}

/// SSX-01: paced, the train must be longer than the whole minimum RTT + 1 ms (a paced round is
/// spread over up to half an RTT by the sender itself); a gap above 2 ms ends the train.
#[test]
fn ssx_01_paced_train_needs_the_whole_min_rtt_and_a_gap_ends_it() {
    // SSX-01
    let mut t = Train::new(300, true);
    t.finish_round(0, 100);
    for i in 0..=101 {
        t.ack(100 + i, 100);
    }
    assert!(t.in_slow_start(), "a train of 101 ms is not longer than 101 ms");
    t.ack(202, 100);
    assert_eq!(t.cc.hystart_exit(), Some(HyStartExit::AckTrain));

    // A train broken by a 3 ms gap at 40 ms is over for its round.
    let mut t = Train::new(300, false);
    t.finish_round(0, 100);
    for i in (0..40).chain(43..120) {
        t.ack(100 + i, 100);
    }
    assert!(t.in_slow_start());
}

/// SSX-02: the delay detector takes eight samples of a round, then judges the round's minimum
/// from the ninth on against the connection's minimum plus max(4 ms, min(RTT / 8, 16 ms)).
#[test]
fn ssx_02_round_min_rtt_above_threshold_ends_slow_start_at_the_ninth_sample() {
    // SSX-02
    for (rtt, exits) in [(112, false), (113, true)] {
        let mut t = Train::new(20, false);
        t.finish_round(0, 100);
        for i in 0..8 {
            t.ack(200 + i, rtt);
        }
        assert!(t.in_slow_start(), "eight samples decide nothing");
        let w = t.cc.window();
        t.ack(208, rtt);
        assert_eq!(!t.in_slow_start(), exits, "RTT {rtt} ms against 100 + 12.5 ms");
        if exits {
            assert_eq!(t.cc.hystart_exit(), Some(HyStartExit::Delay));
            assert_eq!(t.cc.ssthresh(), w);
        }
    }
}

/// SSX-03: a paced round whose first nine samples show no queue but whose next nine do ends
/// slow start within the round; unpaced, the round's minimum keeps the first samples' and
/// slow start goes on (Linux).
#[test]
fn ssx_03_paced_sender_judges_every_block_of_a_round() {
    // SSX-03
    for paced in [false, true] {
        let mut t = Train::new(40, paced);
        t.finish_round(0, 100);
        for i in 0..9 {
            t.ack(200 + i, 100);
        }
        assert!(t.in_slow_start());
        for i in 9..18 {
            t.ack(200 + i, 114);
        }
        assert_eq!(!t.in_slow_start(), paced, "paced {paced}");
    }
}

/// As Linux's CUBIC (`bictcp_update`), until the first congestion event congestion avoidance
/// grows cwnd by at least one segment per 20 acknowledged, 5 % a round, where the cubic curve
/// from K = 0 would add a fraction of a segment; after a loss the RFC's curve alone rules.
#[test]
fn rx_03_cubic_grows_five_percent_a_round_until_the_first_congestion_event() {
    let mut t = Train::new(100, false);
    t.finish_round(0, 100);
    for i in 0..9 {
        t.ack(200 + i, 120);
    }
    assert_eq!(t.cc.hystart_exit(), Some(HyStartExit::Delay));
    let w = t.cc.window();
    // One window of ACKs within 10 ms of the epoch's start: W_cubic grows by C (0.11 s)^3.
    for _ in 0..w / SMSS {
        t.ack(210, 120);
    }
    let grown = f64::from(t.cc.window() - w) / f64::from(w);
    assert!((0.049..0.06).contains(&grown), "grew {:.1} %", grown * 100.0);
}

// ---- RFC 9406: HyStart++ ----------------------------------------------------------------------

/// A fresh CUBIC flow with HyStart++ at 100 ms with two rounds of stable RTT samples behind
/// it.
fn hystart_flow() -> Flow {
    let mut f = Flow::new(Cubic::with_exit(10, SMSS, SlowStartExit::HyStartPlusPlus), ms(100));
    assert!(f.round(ms(100)) >= 8);
    assert!(f.round(ms(100)) >= 8);
    assert_eq!(f.cc.slow_start_phase(), SlowStartPhase::SlowStart);
    f
}

#[test]
fn rx_03_hystart_rtt_rise_below_threshold_stays_in_slow_start() {
    let mut f = hystart_flow();
    // RttThresh = max(4 ms, min(100 ms / 8, 16 ms)) = 12.5 ms; +12 ms is not enough.
    let before = f.cc.window();
    let n = f.round(ms(112));
    assert_eq!(f.cc.slow_start_phase(), SlowStartPhase::SlowStart);
    assert_eq!(f.cc.window(), before + n * SMSS, "slow start: one MSS per MSS acked");
    assert_eq!(f.cc.ssthresh(), u32::MAX);
}

#[test]
fn rx_03_hystart_rtt_rise_enters_css_after_n_rtt_sample() {
    let mut f = hystart_flow();
    // First 7 samples of a round at 113 ms: too few samples to decide (N_RTT_SAMPLE = 8).
    let end = f.max;
    for _ in 0..7 {
        f.ack(Some(ms(113)));
    }
    assert_eq!(f.cc.slow_start_phase(), SlowStartPhase::SlowStart);
    // The 8th: currentRoundMinRTT 113 ≥ lastRoundMinRTT 100 + RttThresh 12.5: enter CSS.
    let before = f.cc.window();
    f.ack(Some(ms(113)));
    assert_eq!(f.cc.slow_start_phase(), SlowStartPhase::Css);
    assert_eq!(f.cc.window(), before + SMSS, "this ACK still grew at the slow-start rate");
    assert_eq!(f.cc.ssthresh(), u32::MAX, "CSS is still slow start");
    // In CSS, growth is divided by CSS_GROWTH_DIVISOR = 4.
    assert!(f.una + 2 * SMSS < end, "still in the same round");
    let w = f.cc.window();
    f.ack(Some(ms(113)));
    assert_eq!(f.cc.window(), w + SMSS / 4);
    f.ack(Some(ms(113)));
    assert_eq!(f.cc.window(), w + SMSS / 2);
}

#[test]
fn rx_03_hystart_css_returns_to_slow_start_when_rtt_drops_back() {
    let mut f = hystart_flow();
    f.round(ms(113));
    assert_eq!(f.cc.slow_start_phase(), SlowStartPhase::Css);
    // Next round: the RTT falls back to 100 ms < cssBaselineMinRtt (113 ms). After
    // N_RTT_SAMPLE samples the exit is judged spurious and slow start resumes.
    for _ in 0..7 {
        f.ack(Some(ms(100)));
        assert_eq!(f.cc.slow_start_phase(), SlowStartPhase::Css);
    }
    f.ack(Some(ms(100)));
    assert_eq!(f.cc.slow_start_phase(), SlowStartPhase::SlowStart);
    let w = f.cc.window();
    f.ack(Some(ms(100)));
    assert_eq!(f.cc.window(), w + SMSS, "full slow-start growth again");
    assert_eq!(f.cc.ssthresh(), u32::MAX);
}

#[test]
fn rx_03_hystart_css_rounds_then_congestion_avoidance() {
    let mut f = hystart_flow();
    f.round(ms(113));
    assert_eq!(f.cc.slow_start_phase(), SlowStartPhase::Css);
    // CSS_ROUNDS = 5: four more whole rounds stay in CSS (the round CSS began in counts).
    for round in 1..5 {
        let before = f.cc.window();
        let n = f.round(ms(113));
        assert_eq!(f.cc.slow_start_phase(), SlowStartPhase::Css, "CSS round {round}");
        assert_eq!(f.cc.window(), before + n * SMSS / 4, "CSS round {round}: a quarter rate");
    }
    // The first ACK of the next round completes CSS_ROUNDS: ssthresh = cwnd, avoidance.
    let w = f.cc.window();
    f.ack(Some(ms(113)));
    assert_eq!(f.cc.slow_start_phase(), SlowStartPhase::Done);
    assert_eq!(f.cc.ssthresh(), w);
    assert_eq!(f.cc.epoch_start(), Some(f.now), "the avoidance epoch starts here");
    assert_eq!((f.cc.k(), f.cc.w_max()), (0.0, f64::from(w)), "no loss yet: K = 0");
}

#[test]
fn rx_03_hystart_loss_in_slow_start_ends_hystart() {
    let mut f = hystart_flow();
    let w = f.cc.window();
    f.cc.on_loss(f.now, w, SMSS);
    assert_eq!(f.cc.slow_start_phase(), SlowStartPhase::Done);
    assert_eq!(f.cc.ssthresh(), (f64::from(w) * BETA) as u32);
}

/// A point-to-point path for the end-to-end test: each direction serializes packets at
/// `rate` bytes per second (so a flight arrives spread out and every out-of-order segment
/// draws its own duplicate ACK, RFC 5681 §4.2) and then delays them by `latency`. The queue
/// is unbounded: the only loss is the one `lose` picks.
struct Path {
    now: Instant,
    client: Connection,
    server: Option<Connection>,
    cfg: ConnConfig,
    latency: Duration,
    rate: u64,
    /// When each direction's transmitter is next free (client→server, server→client).
    free: [Instant; 2],
    /// (arrival, direction, packet), in arrival order per direction.
    wire: Vec<(Instant, usize, Vec<u8>)>,
    lose: Box<dyn FnMut(&Out) -> bool>,
    buf: Vec<u8>,
}

impl Path {
    fn new(
        cfg: ConnConfig,
        latency: Duration,
        rate: u64,
        lose: Box<dyn FnMut(&Out) -> bool>,
    ) -> Path {
        let client = Connection::connect(cfg, Sc::params());
        let (now, free, wire, buf) = (Instant::ZERO, [Instant::ZERO; 2], vec![], vec![0; 65_600]);
        Path { now, client, server: None, cfg, latency, rate, free, wire, lose, buf }
    }

    fn flush(&mut self) {
        for dir in 0..2 {
            loop {
                let conn = if dir == 0 { Some(&mut self.client) } else { self.server.as_mut() };
                let Some(t) = conn.and_then(|c| c.poll_transmit(self.now, &mut self.buf)) else {
                    break;
                };
                let pkt = self.buf[..t.len].to_vec();
                let start = self.free[dir].max(self.now);
                let done = start + Duration::from_micros(t.len as u64 * 1_000_000 / self.rate);
                self.free[dir] = done;
                if dir == 1 || !(self.lose)(&Out::parse(self.now, &pkt)) {
                    self.wire.push((done + self.latency, dir, pkt));
                }
            }
        }
    }

    /// Run one event (the earliest arrival or timer) no later than `until`.
    fn step(&mut self, until: Instant) -> bool {
        self.flush();
        let timers =
            [self.client.poll_timeout(), self.server.as_ref().and_then(|s| s.poll_timeout())];
        let arrival = self.wire.iter().map(|w| w.0).min();
        let Some(t) = timers.into_iter().flatten().chain(arrival).min().filter(|t| *t <= until)
        else {
            return false;
        };
        self.now = self.now.max(t);
        let now = self.now;
        if let Some(i) = self.wire.iter().position(|w| w.0 <= now) {
            let (_, dir, pkt) = self.wire.remove(i);
            let seg = tcpcore::wire::parse(&pkt).unwrap();
            match (dir, self.server.as_mut()) {
                (1, _) => self.client.handle_segment(now, &seg),
                (_, Some(s)) => s.handle_segment(now, &seg),
                (_, None) => {
                    let p =
                        ConnParams { local: PEER, remote: US, iss: SeqNum(PEER_ISS), ts_offset: 7 };
                    self.server = Some(Connection::accept(self.cfg, p, &seg, now));
                }
            }
        }
        if self.client.poll_timeout().is_some_and(|d| d <= now) {
            self.client.handle_timeout(now);
        }
        if let Some(s) = self.server.as_mut().filter(|s| s.poll_timeout().is_some_and(|d| d <= now))
        {
            s.handle_timeout(now);
        }
        self.flush();
        true
    }

    /// Keep the client's send buffer full and the server's receive buffer empty until `t`.
    fn bulk_until(&mut self, t: Instant) {
        let chunk = [0x5a; 64 * 1024];
        let mut buf = [0; 64 * 1024];
        loop {
            let _ = self.client.write(&chunk);
            if let Some(s) = self.server.as_mut() {
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            }
            if !self.step(t) {
                break;
            }
        }
        self.now = self.now.max(t);
    }
}

// ---- End to end ----------------------------------------------------------------------------------

#[test]
fn rx_03_cubic_connection_recovers_one_loss_and_grows_on_the_cubic_curve() {
    // 50 ms each way, 10 Mbit/s; CUBIC is the default. Data segment 100 is lost, once.
    let cfg = ConnConfig {
        timestamps: false,
        sack: false,
        recv_buffer: 4 << 20,
        send_buffer: 4 << 20,
        ..Default::default()
    };
    assert_eq!(cfg.congestion, CongestionAlgorithm::Cubic);
    let lost = ISS + 1 + 99 * 1460;
    let mut once = true;
    let lose = Box::new(move |o: &Out| {
        let hit = once && o.seq() == lost && o.len() > 0;
        once &= !hit;
        hit
    });
    let mut p = Path::new(cfg, ms(50), 1_250_000, lose);
    // Until the loss is detected, remember the window it reduces.
    let mut w_max = 0;
    while p.client.info().fast_retransmits == 0 {
        w_max = p.client.info().cwnd;
        let next = p.now + ms(1);
        p.bulk_until(next);
        assert!(p.now < Instant::from_secs(10), "no fast retransmit");
    }
    let info = p.client.info();
    let mss = f64::from(info.snd_mss);
    assert_eq!(info.timeouts, 0);
    // RFC 9438 §4.6: ssthresh = cwnd = flight size × β_cubic, where the flight excludes the
    // two segments limited transmit sent on the first duplicate ACKs (RFC 3042, RFC 5681 §3.2).
    let flight = info.unacked - 2 * info.snd_mss;
    let reduced = (f64::from(flight) * BETA) as u32;
    assert_eq!((info.ssthresh, info.cwnd), (reduced, reduced));
    let (w_max, cwnd_epoch) = (f64::from(w_max) / mss, f64::from(info.ssthresh) / mss);
    // Recovery ends with the full ACK about one RTT later; the next ACK starts the epoch.
    let mut epoch = None;
    let mut samples = vec![];
    let end = p.now + Duration::from_secs(12);
    while p.now < end {
        let next = p.now + ms(50);
        p.bulk_until(next);
        let info = p.client.info();
        if epoch.is_none() && info.cwnd > info.ssthresh {
            epoch = Some(p.now);
        }
        if epoch.is_some() {
            samples.push((p.now, f64::from(info.cwnd) / mss));
        }
    }
    let info = p.client.info();
    assert_eq!((info.fast_retransmits, info.timeouts), (1, 0), "one loss, no timeout");
    let epoch = epoch.expect("congestion avoidance began");
    let k = rfc_k(w_max, cwnd_epoch);
    eprintln!("W_max {w_max:.2} segments, cwnd_epoch {cwnd_epoch:.2}, K {k:.3} s");
    assert!(k > 3.0 && k < 6.0, "K {k}");
    for &(at, w) in &samples {
        let t = (at - epoch).as_secs_f64();
        let expect = rfc_w_cubic(t, k, w_max);
        // The epoch is located to within one 50 ms sampling step here.
        let tolerance = 2.0f64.max(0.02 * expect);
        assert!((w - expect).abs() < tolerance, "t = {t:.2} s: cwnd {w:.2} vs W_cubic {expect:.2}");
    }
    // The plateau: around t = K the window sits at W_max.
    let near_k = samples.iter().find(|(at, _)| (*at - epoch).as_secs_f64() >= k).unwrap().1;
    assert!((near_k - w_max).abs() < 1.0, "cwnd at t = K: {near_k:.2}, W_max {w_max:.2}");
    assert!(samples.last().unwrap().1 > 2.0 * w_max, "convex growth past W_max");
    // Everything sent was delivered in order.
    let (acked, received) = (info.bytes_acked, p.server.as_ref().unwrap().info().bytes_received);
    assert!(acked > 10_000_000 && received >= acked, "acked {acked}, received {received}");
}
