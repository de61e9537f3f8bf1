//! BBR-05: the state machine of draft-ietf-ccwg-bbr driven by synthetic rate samples, one
//! ACK per packet-timed round (each ACK delivers the packet that ended the last round).

use super::*;

const MSS: u32 = 1000;
const RTT: Duration = Duration::from_millis(100);

/// A fluid path: every `ack` ends a round trip that delivered `rate × RTT` bytes.
struct Path {
    bbr: Bbr,
    now: Instant,
    delivered: u64,
    lost: u64,
    in_recovery: bool,
}

impl Path {
    fn new() -> Path {
        Path {
            bbr: Bbr::new(10, MSS, 42),
            now: Instant::from_secs(1),
            delivered: 0,
            lost: 0,
            in_recovery: false,
        }
    }

    /// One round: `rate` bytes/s delivered, `in_flight` bytes outstanding afterwards, `rtt`
    /// measured, `lost` bytes newly marked lost.
    fn round_with(&mut self, rate: u64, in_flight: u64, rtt: Duration, lost: u64) -> RateSample {
        let prior = self.delivered;
        let newly = (rate as f64 * RTT.as_secs_f64()) as u64;
        self.now += RTT;
        self.delivered += newly;
        self.lost += lost;
        let rs = RateSample {
            now: self.now,
            mss: MSS,
            total_delivered: self.delivered,
            total_lost: self.lost,
            delivered: newly,
            prior_delivered: prior,
            interval: RTT,
            delivery_rate: rate,
            is_app_limited: false,
            tx_in_flight: in_flight as u32,
            lost,
            newly_acked: newly as u32,
            newly_lost: lost as u32,
            in_flight: in_flight as u32,
            rtt: Some(rtt),
            is_cwnd_limited: true,
            in_recovery: self.in_recovery,
            has_sack: true,
        };
        self.bbr.on_rate_sample(&rs);
        rs
    }

    /// An ACK within the current round (its packet was sent before the round began).
    fn round_mid(&mut self, rate: u64, in_flight: u64, lost: u64) {
        let rs = RateSample {
            now: self.now,
            mss: MSS,
            total_delivered: self.delivered,
            total_lost: self.lost + lost,
            delivered: bdp(rate),
            prior_delivered: self.delivered.saturating_sub(bdp(rate)),
            interval: RTT,
            delivery_rate: rate,
            tx_in_flight: in_flight as u32,
            lost,
            newly_acked: MSS,
            newly_lost: lost as u32,
            in_flight: in_flight as u32,
            rtt: Some(RTT),
            is_cwnd_limited: true,
            in_recovery: self.in_recovery,
            has_sack: true,
            ..RateSample::default()
        };
        self.lost += lost;
        self.delivered += u64::from(MSS);
        self.bbr.on_rate_sample(&rs);
    }

    fn round(&mut self, rate: u64, in_flight: u64) -> RateSample {
        self.round_with(rate, in_flight, RTT, 0)
    }

    /// Startup doubling to `rate`, then a plateau until Startup ends.
    /// Through Startup and Drain at `rate`, then one-BDP rounds until ProbeBW_UP.
    fn run_until_probe_up(&mut self, rate: u64) {
        self.run_until_drain(rate);
        self.round(rate, bdp(rate));
        while self.bbr.state() != BbrState::ProbeBwUp {
            self.round(rate, bdp(rate));
        }
    }

    fn run_until_drain(&mut self, rate: u64) {
        let mut r = 100_000;
        while r < rate {
            self.round(r, 2 * (r as f64 * RTT.as_secs_f64()) as u64);
            r *= 2;
        }
        for _ in 0..5 {
            if self.bbr.state() != BbrState::Startup {
                break;
            }
            self.round(rate, 2 * bdp(rate));
        }
    }
}

fn bdp(rate: u64) -> u64 {
    (rate as f64 * RTT.as_secs_f64()) as u64
}

#[test]
fn bbr_05_startup_exits_on_a_bandwidth_plateau_then_drains_to_probe_bw() {
    let mut p = Path::new();
    assert_eq!(p.bbr.state(), BbrState::Startup);
    assert_eq!(p.bbr.window(), 10 * MSS);
    let rate = 10_000_000;
    p.run_until_drain(rate);
    // §5.3.1.2: three rounds without 25 % growth.
    assert!(p.bbr.full_bw_reached());
    assert_eq!(p.bbr.state(), BbrState::Drain);
    assert_eq!(p.bbr.max_bw(), rate);
    assert!(p.bbr.pacing_rate().unwrap() < rate, "Drain paces below the bandwidth");
    // §5.3.2: in flight above the BDP keeps draining.
    p.round_mid(rate, 2 * bdp(rate), 0);
    assert_eq!(p.bbr.state(), BbrState::Drain);
    // In flight down to the BDP ends Drain; ProbeBW_DOWN finds no queue (in flight at most
    // the BDP, no bound from loss) and cruises at once (§5.3.3.1).
    p.round(rate, bdp(rate));
    assert_eq!(p.bbr.state(), BbrState::ProbeBwCruise);
    assert_eq!(p.bbr.pacing_rate(), Some(rate * 99 / 100));
    // cwnd bounded by cwnd_gain × BDP, the aggregation estimate (one round's data per
    // ACK here) and the quantization budget.
    let cap = 4 * bdp(rate);
    assert!(u64::from(p.bbr.window()) <= cap, "{}", p.bbr.window());
}

#[test]
fn bbr_05_probe_bw_cycles_cruise_refill_up_down() {
    let mut p = Path::new();
    let rate = 10_000_000;
    p.run_until_drain(rate);
    p.round(rate, bdp(rate));
    p.round(rate, bdp(rate) / 2);
    assert_eq!(p.bbr.state(), BbrState::ProbeBwCruise);
    // §5.3.3.8: within 2-3 s (or 63 rounds) the flow refills, then probes up.
    let mut rounds = 0;
    while p.bbr.state() == BbrState::ProbeBwCruise {
        p.round(rate, bdp(rate));
        rounds += 1;
        assert!(rounds <= 31, "probes within 3 s");
    }
    assert!(rounds >= 19, "not before 2 s: {rounds} rounds");
    assert_eq!(p.bbr.state(), BbrState::ProbeBwRefill);
    p.round(rate, bdp(rate));
    assert_eq!(p.bbr.state(), BbrState::ProbeBwUp);
    assert_eq!(p.bbr.pacing_rate(), Some(rate * 5 / 4 * 99 / 100));
    // A plateau (three rounds without 25 % more) ends the probe: back down.
    for _ in 0..4 {
        if p.bbr.state() != BbrState::ProbeBwUp {
            break;
        }
        p.round(rate, bdp(rate) * 5 / 4);
    }
    assert_eq!(p.bbr.state(), BbrState::ProbeBwDown);
}

#[test]
fn bbr_05_probe_up_finds_more_bandwidth() {
    let mut p = Path::new();
    p.run_until_probe_up(10_000_000);
    // The path doubled: UP keeps probing while the rate grows, and max_bw follows.
    let mut rate = 10_000_000;
    for _ in 0..4 {
        rate = rate * 5 / 4;
        p.round(rate, bdp(rate));
        assert_eq!(p.bbr.state(), BbrState::ProbeBwUp, "still growing at {rate}");
    }
    assert_eq!(p.bbr.max_bw(), rate);
}

#[test]
fn bbr_05_loss_in_probe_up_sets_inflight_longterm_and_goes_down() {
    let mut p = Path::new();
    let rate = 10_000_000;
    p.run_until_probe_up(rate);
    assert_eq!(p.bbr.inflight_longterm(), INF);
    // §5.5.10.2: 5 % of what was in flight lost while probing.
    let tx = bdp(rate) * 5 / 4;
    p.bbr.on_packet_lost(&LostPacket {
        now: p.now,
        mss: MSS,
        size: MSS,
        tx_in_flight: tx as u32,
        lost_since_sent: tx / 20,
        is_app_limited: false,
        total_delivered: p.delivered,
        has_sack: true,
    });
    assert_eq!(p.bbr.state(), BbrState::ProbeBwDown);
    let ilt = p.bbr.inflight_longterm();
    assert!(ilt < tx && ilt >= (bdp(rate) as f64 * BETA) as u64, "inflight_longterm {ilt}");
    // The volume cap applies at once.
    p.round(rate, bdp(rate));
    assert!(u64::from(p.bbr.window()) <= ilt);
}

#[test]
fn bbr_05_random_loss_below_the_threshold_is_tolerated() {
    let mut p = Path::new();
    let rate = 10_000_000;
    p.run_until_probe_up(rate);
    // 1 % loss (below BBR.LossThresh = 2 %) does not end the probe.
    let tx = bdp(rate);
    p.bbr.on_packet_lost(&LostPacket {
        now: p.now,
        mss: MSS,
        size: MSS,
        tx_in_flight: tx as u32,
        lost_since_sent: tx / 100,
        is_app_limited: false,
        total_delivered: p.delivered,
        has_sack: true,
    });
    assert_eq!(p.bbr.state(), BbrState::ProbeBwUp);
    assert_eq!(p.bbr.inflight_longterm(), INF);
}

#[test]
fn bbr_05_startup_exits_on_high_loss() {
    let mut p = Path::new();
    for r in [100_000u64, 200_000, 400_000, 800_000] {
        p.round(r, 2 * bdp(r));
    }
    // Fast recovery with 6 lossy ACKs in a round and more than 2 % lost (§5.3.1.3).
    p.in_recovery = true;
    p.bbr.on_loss(p.now, 160_000, MSS);
    let rate = 1_600_000;
    p.round(rate, 2 * bdp(rate));
    for _ in 0..6 {
        p.round_mid(rate, 2 * bdp(rate), 2 * u64::from(MSS));
    }
    assert_eq!(p.bbr.state(), BbrState::Startup, "judged at the round's end");
    // The round's end: RS.lost = C.lost - P.lost covers the whole round (> 2 %).
    p.round_with(rate, 2 * bdp(rate), RTT, 14 * u64::from(MSS));
    assert_eq!(p.bbr.state(), BbrState::Drain);
    assert!(p.bbr.full_bw_reached());
    assert!(p.bbr.inflight_longterm() < INF);
}

#[test]
fn bbr_05_probe_rtt_every_5_s_holds_a_small_window_then_cruises() {
    let mut p = Path::new();
    let rate = 10_000_000;
    p.round(100_000, 20_000);
    let first_sample = p.now;
    p.run_until_drain(rate);
    let base = p.bbr.min_rtt().unwrap();
    // RTT samples above the minimum only (a standing queue): ProbeRTT after 5 s.
    while p.bbr.state() != BbrState::ProbeRtt {
        p.round_with(rate, bdp(rate), RTT + RTT / 10, 0);
        assert!(p.now - first_sample < Duration::from_secs(6));
    }
    let since = p.now - first_sample;
    assert!(
        since >= Duration::from_millis(4800) && since <= Duration::from_millis(5200),
        "{since:?}"
    );
    assert_eq!(p.bbr.probe_rtt_count(), 1);
    // §5.6.4.5: cwnd held at max(BDP / 2, 4 MSS).
    p.round_with(rate, bdp(rate) / 2, RTT, 0);
    assert!(u64::from(p.bbr.window()) <= bdp(rate) / 2 + 1, "{}", p.bbr.window());
    // Held for 200 ms and a round, then back to ProbeBW (CRUISE) with cwnd restored.
    let mut held = 0;
    while p.bbr.state() == BbrState::ProbeRtt {
        p.round_with(rate, bdp(rate) / 2, RTT, 0);
        held += 1;
        assert!(held < 10);
    }
    assert!(held >= 2, "at least 200 ms: {held} rounds");
    assert_eq!(p.bbr.state(), BbrState::ProbeBwCruise);
    assert_eq!(p.bbr.min_rtt(), Some(base));
    assert!(u64::from(p.bbr.window()) > bdp(rate));
}

#[test]
fn bbr_05_rto_collapses_cwnd_and_recovery_end_restores_it() {
    let mut p = Path::new();
    let rate = 10_000_000;
    p.run_until_drain(rate);
    p.round(rate, bdp(rate));
    let cwnd = p.bbr.window();
    p.bbr.on_rto(p.now, cwnd, MSS);
    assert_eq!(p.bbr.window(), MSS);
    p.in_recovery = true;
    p.round(rate, 0);
    p.in_recovery = false;
    p.round(rate, bdp(rate));
    assert!(p.bbr.window() >= cwnd.min(bdp(rate) as u32), "{} < {cwnd}", p.bbr.window());
}

/// BBR-07: entering ProbeBW_CRUISE (here from Drain) the ACKs of the first round report on
/// the flight sent before it, at Drain's pace. A loss in that round does not cut the
/// short-term bounds to β of the model with that rate (the next round's samples would
/// restore them and the one after cut them again: a swing between 100 % and 70 % until the
/// next probe); only samples of CRUISE's own flight bound the cut.
#[test]
fn bbr_07_cruise_bounds_its_loss_response_by_its_own_samples() {
    let mut p = Path::new();
    let rate = 10_000_000;
    p.run_until_drain(rate);
    p.round(rate, bdp(rate));
    assert_eq!(p.bbr.state(), BbrState::ProbeBwCruise);
    let lose_one = |p: &mut Path| {
        p.bbr.on_packet_lost(&LostPacket {
            now: p.now,
            mss: MSS,
            size: MSS,
            tx_in_flight: bdp(rate) as u32,
            lost_since_sent: u64::from(MSS),
            is_app_limited: false,
            total_delivered: p.delivered,
            has_sack: true,
        });
    };
    // Drain's flight, half the rate, one loss: no cut.
    lose_one(&mut p);
    p.round_with(rate / 2, bdp(rate), RTT, u64::from(MSS));
    assert_eq!(p.bbr.short_term_bounds(), (INF, INF));
    // CRUISE's own flight at the full rate, a loss every round (draft §5.5.10.3): the
    // bounds hold at what is delivered.
    for _ in 0..5 {
        lose_one(&mut p);
        p.round_with(rate, bdp(rate), RTT, u64::from(MSS));
        let (bw, inflight) = p.bbr.short_term_bounds();
        assert!(bw >= rate && inflight >= bdp(rate), "{bw} B/s, {inflight} B");
    }
    assert_eq!(p.bbr.state(), BbrState::ProbeBwCruise);
}
