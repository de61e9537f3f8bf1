//! HyStart, the slow-start exit of Linux's CUBIC (Ha and Rhee, "Taming the elephants: New TCP
//! slow start", Computer Networks 55(9), 2011; Linux `tcp_cubic.c`, `hystart_detect = 3`).
//!
//! Two detectors run on every ACK with an RTT sample once cwnd is at least
//! [`LOW_WINDOW`] segments, in rounds that end when SND.UNA passes the SND.NXT of the round's
//! first ACK:
//! - **ACK train**: the ACKs of one round arrive as a train (no gap above [`ACK_DELTA`]); a
//!   train longer than half the minimum RTT means a window that, sent back to back, takes half
//!   the minimum RTT to cross the bottleneck: cwnd (doubled by the round) is near the path's
//!   bandwidth-delay product. A paced sender spreads a round over up to half an RTT by itself,
//!   so for it Linux waits for a train of the whole minimum RTT, which the bottleneck draws
//!   only once cwnd is already a full BDP. An allowance for aggregation (four 64 KiB
//!   super-segments at the pacing rate, at most 1 ms) is added in both cases.
//! - **Delay**: the minimum of a round's first [`MIN_SAMPLES`] RTT samples (and of any later
//!   one) exceeds the connection's minimum RTT by an eighth, clamped to 4–16 ms.
//!
//! Either one ends slow start at once (ssthresh = cwnd); there is no conservative phase.
//!
//! One departure from Linux, for a paced sender only: its delay is judged on every block of
//! [`MIN_SAMPLES`] + 1 samples of a round, not on the first block alone. The first samples of
//! a round carry the queue the previous round left, so Linux sees a round's queue one round
//! late, when slow start has doubled cwnd again; an unpaced sender needs no more (its ACK train
//! fires first, from half the minimum RTT), but the paced one waits for a train of the whole
//! minimum RTT. Paced samples carry no queue of the sender's own bursts, so the minimum of any
//! block is the standing queue: on a 100 Mbit/s × 100 ms path with a one-BDP queue the paced
//! sender leaves slow start at 1.8 BDP instead of 2.6 and drops nothing instead of 615
//! segments (`tests/pacing.rs`, SSX-04).

use super::AckInfo;
use crate::wire::seq::SeqNum;
use crate::Instant;
use core::time::Duration;

/// Linux `hystart_low_window`: the detectors run from this cwnd on, in segments.
pub(super) const LOW_WINDOW: u32 = 16;
/// Linux `hystart_ack_delta_us`: the largest gap between two ACKs of one train.
const ACK_DELTA: Duration = Duration::from_millis(2);
/// Linux `HYSTART_MIN_SAMPLES`: RTT samples a round takes before its delay is judged.
const MIN_SAMPLES: u8 = 8;
/// Linux `HYSTART_DELAY_MIN` and `HYSTART_DELAY_MAX`: bounds of the delay threshold.
const DELAY_MIN: Duration = Duration::from_millis(4);
const DELAY_MAX: Duration = Duration::from_millis(16);
/// Linux `GSO_LEGACY_MAX_SIZE`: the super-segment size the aggregation allowance assumes.
const GSO_SIZE: u64 = 65_536;
/// The aggregation allowance's cap (Linux `hystart_ack_delay`).
const MAX_ACK_DELAY: Duration = Duration::from_millis(1);

/// An RTT in whole microseconds, or none: 4 bytes where an `Option<Duration>` takes 16
/// (the controller is in every connection). RTT samples are differences of instants,
/// whole microseconds already; one beyond 71 minutes saturates.
#[derive(Clone, Copy, Debug)]
pub(super) struct OptRtt(u32);

impl OptRtt {
    pub(super) const NONE: OptRtt = OptRtt(u32::MAX);

    pub(super) fn new(d: Duration) -> OptRtt {
        OptRtt(u32::try_from(d.as_micros()).unwrap_or(u32::MAX - 1).min(u32::MAX - 1))
    }

    pub(super) fn get(self) -> Option<Duration> {
        (self.0 != u32::MAX).then(|| Duration::from_micros(u64::from(self.0)))
    }

    /// The smaller of this and `d`.
    pub(super) fn min(self, d: Duration) -> OptRtt {
        OptRtt::new(self.get().map_or(d, |m| m.min(d)))
    }
}

/// Which detector ended slow start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HyStartExit {
    /// The round's ACK train grew longer than its threshold.
    AckTrain,
    /// The round's minimum RTT rose above the connection's by the delay threshold.
    Delay,
}

/// HyStart's round state (Linux `struct bictcp`'s `round_start`, `last_ack`, `end_seq`,
/// `curr_rtt`, `sample_cnt`).
#[derive(Clone, Copy, Debug)]
pub(super) struct HyStart {
    /// The round ends when SND.UNA passes it; `None` before the first round.
    end_seq: Option<SeqNum>,
    /// When the round's first ACK arrived, in microseconds (wrapping, as Linux's).
    round_start: u32,
    /// When the last ACK of the round's train so far arrived, likewise.
    last_ack: u32,
    /// Minimum RTT of the round so far.
    curr_rtt: OptRtt,
    /// RTT samples the round has taken, up to [`MIN_SAMPLES`].
    sample_cnt: u8,
}

impl HyStart {
    pub(super) const fn new() -> HyStart {
        HyStart {
            end_seq: None,
            round_start: 0,
            last_ack: 0,
            curr_rtt: OptRtt::NONE,
            sample_cnt: 0,
        }
    }

    /// One ACK with an RTT sample `rtt`, in slow start with cwnd at least [`LOW_WINDOW`]
    /// segments; `delay_min` is the connection's minimum RTT, this sample included. Returns
    /// the detector that ends slow start, if one does.
    pub(super) fn on_ack(
        &mut self,
        a: &AckInfo,
        rtt: Duration,
        delay_min: Duration,
    ) -> Option<HyStartExit> {
        let now = micros(a.now);
        // A new round once SND.UNA is past the end of the last.
        if self.end_seq.is_none_or(|end| a.snd_una > end) {
            *self = HyStart {
                end_seq: Some(a.snd_max),
                round_start: now,
                last_ack: now,
                curr_rtt: OptRtt::NONE,
                sample_cnt: 0,
            };
        }
        let mut exit = None;
        if since(now, self.last_ack) <= ACK_DELTA {
            self.last_ack = now;
            let mut threshold = delay_min + ack_delay(a.pacing_rate);
            if !a.paced {
                threshold /= 2;
            }
            if since(now, self.round_start) > threshold {
                exit = Some(HyStartExit::AckTrain);
            }
        }
        self.curr_rtt = self.curr_rtt.min(rtt);
        if self.sample_cnt < MIN_SAMPLES {
            self.sample_cnt += 1;
        } else if let Some(cur) = self.curr_rtt.get() {
            let thresh = (delay_min / 8).clamp(DELAY_MIN, DELAY_MAX);
            if cur > delay_min + thresh {
                exit = exit.or(Some(HyStartExit::Delay));
            }
            if a.paced {
                // Paced: the next block of samples is judged afresh (see the module doc).
                self.curr_rtt = OptRtt::NONE;
                self.sample_cnt = 0;
            }
        }
        exit
    }
}

/// `now` in microseconds, wrapping every 71 minutes (Linux `bictcp_clock_us`).
fn micros(now: Instant) -> u32 {
    now.as_micros() as u32
}

/// Time from `earlier` to `now`, both from [`micros`]; a train never lasts 35 minutes.
fn since(now: u32, earlier: u32) -> Duration {
    Duration::from_micros(u64::from(now.wrapping_sub(earlier)))
}

/// The ACK train's allowance for aggregation (Linux `hystart_ack_delay`): four 64 KiB
/// super-segments at the pacing rate, at most 1 ms; none before there is a rate.
fn ack_delay(pacing_rate: u64) -> Duration {
    if pacing_rate == 0 {
        return Duration::ZERO;
    }
    let us = (4 * GSO_SIZE * 1_000_000 / pacing_rate).min(MAX_ACK_DELAY.as_micros() as u64);
    Duration::from_micros(us)
}
