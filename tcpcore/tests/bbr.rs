//! BBR (draft-ietf-ccwg-bbr, BBRv3) in the simulator: one bulk transfer, client to server,
//! over a bottleneck on the data direction (a rate limiter with a drop-tail queue, random
//! loss) and a clean ACK path. BBR paces (`Controller::pacing_rate`).
//!
//! - BBR-01: 1 Gbit/s, 100 ms RTT, a buffer of 0.1 BDP, 1 % random loss: BBR's goodput is
//!   at least 70 % of the bottleneck and many times CUBIC's.
//! - BBR-02: on a clean path with a deep buffer BBR fills the pipe without a standing queue.
//! - BBR-03: ProbeRTT comes about every 5 s of virtual time.
//! - BBR-08: on BBR-01's path, a flow that left Startup on high loss at a few percent of the
//!   bottleneck (seed 3) climbs back in ProbeBW: at least 40 % by seconds 11 to 13.
//!
//! The connections use the default configuration but for their buffers (4 BDPs).

use std::time::Duration;

use tcpcore::cc::BbrState;
use tcpcore::config::CongestionAlgorithm;
use tcpcore::sim::{BulkApp, Host, LinkConfig, Loss, Network, NodeId};
use tcpcore::{ConnConfig, Connection, Instant};

mod bulk_util;
use bulk_util::{bulk_network, client_conn};

struct Path {
    rate_bps: u64,
    rtt: Duration,
    /// The bottleneck's buffer, in BDPs.
    buffer_bdp: f64,
    loss: f64,
}

impl Path {
    fn bdp(&self) -> f64 {
        self.rate_bps as f64 / 8.0 * self.rtt.as_secs_f64()
    }
}

struct Run {
    net: Network<Host<BulkApp>>,
    c: NodeId,
}

impl Run {
    fn new(seed: u64, path: &Path, congestion: CongestionAlgorithm) -> Run {
        let buf = (path.bdp() * 4.0) as usize;
        let conn =
            ConnConfig { send_buffer: buf, recv_buffer: buf, congestion, ..ConnConfig::default() };
        let data = LinkConfig {
            rate_bps: path.rate_bps,
            queue_bytes: ((path.bdp() * path.buffer_bdp) as usize).max(3 * 1500),
            loss: if path.loss > 0.0 { Loss::Uniform(path.loss) } else { Loss::None },
            ..LinkConfig::default()
        };
        let (net, c, _) = bulk_network(seed, conn, path.rtt, data);
        Run { net, c }
    }

    fn conn(&self) -> &Connection {
        client_conn(&self.net, self.c)
    }

    fn run_until(&mut self, t: Duration) {
        self.net.run_until(Instant::ZERO + t);
    }

    /// Goodput in bit/s (bytes acknowledged) between `from` and `to`.
    fn goodput(&mut self, from: Duration, to: Duration) -> f64 {
        self.run_until(from);
        let before = self.conn().info().bytes_acked;
        self.run_until(to);
        (self.conn().info().bytes_acked - before) as f64 * 8.0 / (to - from).as_secs_f64()
    }
}

/// BBR-01: on 1 Gbit/s, 100 ms RTT, a bottleneck buffer of 0.1 BDP (1.25 MB) and 1 %
/// random loss, goodput over seconds 2 to 7 of an unbounded transfer (BBR moves about
/// 500 MB in those 7 s of virtual time, about 5 s of CPU in release): at least 70 % of the
/// bottleneck, and 5× CUBIC's (issue 15).
///
/// Measured (seed 7): BBR 787 Mbit/s (79 % of the bottleneck), CUBIC 2.9 Mbit/s (its
/// response function at 1 % loss and 100 ms gives ~1.9 Mbit/s, RFC 9438 §5.1). It was
/// 647 Mbit/s, held back by four faults fixed since: the receiver's default of 32
/// out-of-order ranges dropped data beyond 32 holes (250 Mbit/s with it); the sender's
/// scoreboard, full at ~20,000 segments outstanding, merged unSACKed entries across
/// several holes and resent SACKed data; each of those D-SACKs widened RACK's reordering
/// window for good, to a whole SRTT, so losses waited an extra round trip and BBR read
/// twice the loss rate while probing (`inflight_longterm` below the BDP); and the first
/// round of ProbeBW_CRUISE cut the short-term model to 70 % on samples of the slower phase
/// before it, which then swung between 100 % and 70 % round after round. What remains
/// below the bottleneck is BBRv3's own: CRUISE keeps 15 % headroom below
/// `inflight_longterm`, and with a loss every round `inflight_shortterm` follows the
/// delivered volume (0.99 of what was in flight) down until the next probe resets it.
#[test]
fn bbr_01_random_loss_shallow_buffer_long_fat_path() {
    let path = lossy_long_fat_path();
    let (from, to) = (Duration::from_secs(2), Duration::from_secs(7));
    let bbr = Run::new(7, &path, CongestionAlgorithm::Bbr).goodput(from, to);
    let cubic = Run::new(7, &path, CongestionAlgorithm::Cubic).goodput(from, to);
    eprintln!(
        "BBR-01: BBR {:.1} Mbit/s ({:.0} % of the bottleneck), CUBIC {:.2} Mbit/s: {:.0}x",
        bbr / 1e6,
        bbr / path.rate_bps as f64 * 100.0,
        cubic / 1e6,
        bbr / cubic
    );
    assert!(bbr >= 5.0 * cubic, "BBR {bbr:.0} bit/s, CUBIC {cubic:.0} bit/s");
    assert!(bbr >= 0.70 * path.rate_bps as f64, "BBR {bbr:.0} bit/s");
}

/// BBR-02: a clean 100 Mbit/s, 40 ms path with a buffer of one BDP (500 kB). After Startup
/// BBR keeps the pipe full (goodput at least 90 % of the bottleneck over seconds 2 to 8)
/// with little queue: the mean queueing delay (SRTT less the path's 40 ms, sampled every
/// 10 ms) stays under a quarter of the RTT, where CUBIC fills the buffer (its SRTT nears
/// twice the path's).
#[test]
fn bbr_02_clean_path_full_pipe_without_standing_queue() {
    let path =
        Path { rate_bps: 100_000_000, rtt: Duration::from_millis(40), buffer_bdp: 1.0, loss: 0.0 };
    let mut measured = Vec::new();
    for cc in [CongestionAlgorithm::Bbr, CongestionAlgorithm::Cubic] {
        let mut run = Run::new(3, &path, cc);
        run.run_until(Duration::from_secs(2));
        let before = run.conn().info().bytes_acked;
        let (mut delay, mut samples) = (0.0, 0);
        for ms in (2010..=8000).step_by(10) {
            run.run_until(Duration::from_millis(ms));
            let srtt = run.conn().info().srtt.expect("srtt");
            delay += srtt.saturating_sub(path.rtt).as_secs_f64();
            samples += 1;
        }
        let goodput = (run.conn().info().bytes_acked - before) as f64 * 8.0 / 6.0;
        let delay = Duration::from_secs_f64(delay / f64::from(samples));
        eprintln!("BBR-02: {cc:?} {:.1} Mbit/s, mean queueing delay {delay:?}", goodput / 1e6);
        measured.push((goodput, delay));
    }
    let ((bbr, bbr_delay), (_, cubic_delay)) = (measured[0], measured[1]);
    assert!(bbr >= 0.9 * path.rate_bps as f64, "BBR {bbr:.0} bit/s");
    assert!(bbr_delay < path.rtt / 4, "BBR's queueing delay {bbr_delay:?}");
    assert!(cubic_delay > 2 * bbr_delay, "CUBIC {cubic_delay:?}, BBR {bbr_delay:?}");
}

/// BBR-03: a bulk flow that never idles enters ProbeRTT about every 5 s (draft §5.3.4:
/// `ProbeRTTInterval`, measured from the previous ProbeRTT's end), holds it about 200 ms
/// with a small window, and returns to ProbeBW. 10 Mbit/s, 40 ms, over 21 s of virtual time.
#[test]
fn bbr_03_probe_rtt_about_every_5_s() {
    let path =
        Path { rate_bps: 10_000_000, rtt: Duration::from_millis(40), buffer_bdp: 1.0, loss: 0.0 };
    let mut run = Run::new(5, &path, CongestionAlgorithm::Bbr);
    let mut entries: Vec<Duration> = Vec::new();
    let mut in_probe_rtt = false;
    let (mut smallest, mut longest, mut since) = (u32::MAX, Duration::ZERO, Duration::ZERO);
    for ms in (5..=21_000u64).step_by(5) {
        let t = Duration::from_millis(ms);
        run.run_until(t);
        let bbr = run.conn().bbr().expect("BBR");
        let now_in = bbr.state() == BbrState::ProbeRtt;
        if now_in && !in_probe_rtt {
            entries.push(t);
            since = t;
        }
        if now_in {
            smallest = smallest.min(run.conn().info().cwnd);
        }
        if !now_in && in_probe_rtt {
            longest = longest.max(t - since);
        }
        in_probe_rtt = now_in;
    }
    eprintln!("BBR-03: ProbeRTT entered at {entries:?}, longest {longest:?}, cwnd {smallest}");
    assert!(entries.len() >= 3, "{entries:?}");
    for w in entries.windows(2) {
        let gap = w[1] - w[0];
        assert!(gap >= Duration::from_secs(5) && gap <= Duration::from_millis(5600), "{gap:?}");
    }
    assert!(longest >= Duration::from_millis(200) && longest <= Duration::from_millis(400));
    // cwnd held at max(BDP / 2, 4 MSS) (draft §5.6.4.5): the BDP is 50 kB.
    assert!(smallest <= 26_000, "cwnd {smallest} in ProbeRTT");
}

/// The path of BBR-01 and BBR-08: 1 Gbit/s, 100 ms, a buffer of 0.1 BDP, 1 % random loss.
fn lossy_long_fat_path() -> Path {
    Path { rate_bps: 1_000_000_000, rtt: Duration::from_millis(100), buffer_bdp: 0.1, loss: 0.01 }
}

/// BBR-08: seed `seed`'s goodput on the BBR-01 path over seconds 11 to 13, as a fraction of
/// the bottleneck (and, for the log, over seconds 2 to 7).
fn bbr_08_late_fraction(seed: u64) -> f64 {
    let path = lossy_long_fat_path();
    let rate = path.rate_bps as f64;
    let mut run = Run::new(seed, &path, CongestionAlgorithm::Bbr);
    let early = run.goodput(Duration::from_secs(2), Duration::from_secs(7)) / rate;
    let late = run.goodput(Duration::from_secs(11), Duration::from_secs(13)) / rate;
    eprintln!(
        "BBR-08: seed {seed}: {:.1} % of the bottleneck over 2-7 s, {:.1} % over 11-13 s",
        early * 100.0,
        late * 100.0
    );
    late
}

/// BBR-08: a flow that leaves Startup far below the bottleneck climbs back in ProbeBW. On
/// the BBR-01 path, seed 3 meets the Startup high-loss exit (§5.3.1.3) at 0.7 s and about
/// 33 Mbit/s: 6 loss events and 5 of 157 packets lost in one round (3.2 %, over
/// `BBR.LossThresh`), as Linux's `bbr_check_loss_too_high_in_startup` would too. Its first
/// bandwidth probe (3.09 s, 2.4 s after ProbeBW_DOWN, §5.3.3.8) ends 4.5 ms into UP: a
/// packet sent a round earlier with 215 packets in flight saw 5 losses since it was sent,
/// over the 2 % of 4.3 packets (§5.5.10.2 `IsInflightTooHigh`; at 1 % random loss, small flights
/// cross 2 % by chance, the draft has no minimum sample). The next probe was due 2 to 3 s
/// later, but ProbeRTT (5.25 s) restarts the ProbeBW clock on exit (§5.3.4.4
/// `ExitProbeRTT` calls `StartProbeBW_DOWN`, as Linux does), so it comes at 7.89 s; that
/// one doubles `inflight_longterm`'s growth each round (§5.3.3.9) from 336 to ~10,000
/// packets in under 3 s. So seed 3 moves 2.9 % of the bottleneck over seconds 2 to 7 and
/// 60 % over seconds 11 to 13. Asserted: at least 40 % over seconds 11 to 13 (half of
/// BBR-01's 70-80 %, for a 2 s window's noise: the seeds measured 53-84 %).
///
/// Seeds 1 to 8 (about 30 s of CPU in release), over seconds 11 to 13: 76, 53, 60, 80, 83,
/// 84, 69 and 55 % of the bottleneck; over seconds 2 to 7 all but seed 3 make 72-81 %.
#[test]
fn bbr_08_every_seed_recovers_in_probe_bw() {
    let low: Vec<(u64, f64)> =
        (1..=8).map(|seed| (seed, bbr_08_late_fraction(seed))).filter(|&(_, f)| f < 0.40).collect();
    assert!(low.is_empty(), "below 40 % over 11-13 s: {low:?}");
}
