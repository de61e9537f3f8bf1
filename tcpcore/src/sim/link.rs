//! One direction of a simulated link: its configuration, its fault model and its counters.
//!
//! A packet offered to a link goes through, in order: the partition check, the MTU check, the
//! rate limiter's drop-tail queue, loss, corruption, then delay (base delay, jitter, optional
//! reordering hold-back) and duplication. Lost packets still occupy the rate limiter, as a
//! packet lost on the wire has already been serialised.

use core::time::Duration;

use crate::rng::Rng;
use crate::wire;
use crate::Instant;

/// How a link loses packets.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Loss {
    /// Never.
    #[default]
    None,
    /// Each packet independently with this probability.
    Uniform(f64),
    /// Bursty loss: a two-state Markov chain (Gilbert-Elliott). Before each packet the chain
    /// moves (good to bad with `p_good_to_bad`, bad to good with `p_bad_to_good`), then the
    /// packet is lost with the current state's probability. With `loss_in_good = 0` and
    /// `loss_in_bad = 1`, loss bursts have mean length `1 / p_bad_to_good`.
    GilbertElliott {
        /// Per-packet probability of moving from the good to the bad state.
        p_good_to_bad: f64,
        /// Per-packet probability of moving from the bad to the good state.
        p_bad_to_good: f64,
        /// Loss probability while in the good state.
        loss_in_good: f64,
        /// Loss probability while in the bad state.
        loss_in_bad: f64,
    },
}

/// The behaviour of one direction of a link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkConfig {
    /// Propagation delay added to every packet.
    pub delay: Duration,
    /// Extra per-packet delay, uniform in `0..jitter` (microsecond resolution). Jitter alone
    /// never reorders: a packet is never delivered before one sent earlier on the same link.
    pub jitter: Duration,
    /// Bottleneck rate in bits per second; 0 means unlimited. A packet takes `len * 8 / rate`
    /// to serialise and waits behind the packets before it.
    pub rate_bps: u64,
    /// Drop-tail limit, in bytes, of the queue in front of the rate limiter (including the
    /// packet being serialised); 0 means unlimited. Ignored when `rate_bps` is 0.
    pub queue_bytes: usize,
    /// Largest packet the link carries; larger packets are dropped and counted.
    pub mtu: usize,
    /// How packets are lost.
    pub loss: Loss,
    /// Probability that a packet is held back by an extra delay in `1..=reorder_delay`
    /// microseconds, so packets sent after it may overtake it.
    pub reorder: f64,
    /// The longest extra hold-back of a reordered packet.
    pub reorder_delay: Duration,
    /// Probability that a packet is delivered twice (the copy right after the original).
    pub duplicate: f64,
    /// Probability that one uniformly chosen bit of a packet is flipped.
    pub corrupt: f64,
    /// AQM threshold in bytes of backlog (ignored when `rate_bps` is 0; 0 = no AQM): an
    /// ECN-capable packet arriving behind at least this much queued data is marked CE (RFC
    /// 3168 §5: a congestion signal without a drop); Not-ECT packets only meet the drop-tail
    /// limit, as without it. (Dropping every Not-ECT packet over the threshold would drop
    /// every retransmission, which RFC 3168 §6.1.5 sends Not-ECT, while ECT data keeps the
    /// queue there.)
    pub ecn_mark_threshold: usize,
    /// Probability that an ECN-capable packet is marked CE regardless of the queue (random
    /// marking, for tests); Not-ECT packets are never affected.
    pub ecn_mark: f64,
}

impl Default for LinkConfig {
    /// No faults, 1 ms delay, unlimited rate, MTU 65,535.
    fn default() -> Self {
        LinkConfig {
            delay: Duration::from_millis(1),
            jitter: Duration::ZERO,
            rate_bps: 0,
            queue_bytes: 0,
            mtu: 65_535,
            loss: Loss::None,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            duplicate: 0.0,
            corrupt: 0.0,
            ecn_mark_threshold: 0,
            ecn_mark: 0.0,
        }
    }
}

impl LinkConfig {
    /// Panics with a clear message if a probability is outside `0..=1` or not a number.
    #[track_caller]
    pub(crate) fn validate(&self) {
        let loss = match self.loss {
            Loss::None => [0.0; 4],
            Loss::Uniform(p) => [p, 0.0, 0.0, 0.0],
            Loss::GilbertElliott { p_good_to_bad, p_bad_to_good, loss_in_good, loss_in_bad } => {
                [p_good_to_bad, p_bad_to_good, loss_in_good, loss_in_bad]
            }
        };
        let probs = [
            ("reorder", self.reorder),
            ("duplicate", self.duplicate),
            ("corrupt", self.corrupt),
            ("ecn_mark", self.ecn_mark),
            ("loss (or p_good_to_bad)", loss[0]),
            ("p_bad_to_good", loss[1]),
            ("loss_in_good", loss[2]),
            ("loss_in_bad", loss[3]),
        ];
        for (name, p) in probs {
            assert!((0.0..=1.0).contains(&p), "LinkConfig::{name} = {p} is not a probability");
        }
    }
}

/// Counters of one direction of a link. Every packet offered is counted once in `sent` and
/// then either delivered, dropped for exactly one reason, or still in flight; duplicates add
/// to `delivered` (and `duplicated`) without adding to `sent`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets offered to the link.
    pub sent: u64,
    /// Bytes offered to the link.
    pub bytes_sent: u64,
    /// Packets handed to the receiving node, duplicates included.
    pub delivered: u64,
    /// Bytes handed to the receiving node, duplicates included.
    pub bytes_delivered: u64,
    /// Packets lost by the loss model.
    pub dropped_loss: u64,
    /// Packets dropped because the rate limiter's queue was full.
    pub dropped_queue: u64,
    /// Packets dropped for exceeding the MTU.
    pub dropped_mtu: u64,
    /// Packets dropped because the link was cut, when sent or when arriving.
    pub dropped_partition: u64,
    /// Packets for this destination dropped because no link from the sender existed (only
    /// reported for pairs without a link; a packet on an existing link always has a route).
    pub dropped_no_route: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
    /// Packets with a flipped bit.
    pub corrupted: u64,
    /// Packets held back so later ones could overtake them.
    pub reordered: u64,
    /// ECN-capable packets marked Congestion Experienced (RFC 3168 §5).
    pub ce_marked: u64,
}

impl LinkStats {
    /// Packets dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_loss
            + self.dropped_queue
            + self.dropped_mtu
            + self.dropped_partition
            + self.dropped_no_route
    }
}

/// What a link decided to do with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Dropped (already counted).
    Drop,
    /// Deliver at `at`, and a second copy at `copy_at` if duplicated.
    Deliver { at: Instant, copy_at: Option<Instant> },
}

/// One direction of a link, with its own generator and fault state.
#[derive(Debug)]
pub(crate) struct Link {
    /// Sending node's index.
    pub(crate) from: usize,
    /// Receiving node's index.
    pub(crate) to: usize,
    /// The current configuration (replaceable at run time).
    pub(crate) cfg: LinkConfig,
    /// While true, every packet is dropped (counted as partition).
    pub(crate) cut: bool,
    /// Counters.
    pub(crate) stats: LinkStats,
    /// The pcap capture in progress, if any (file bytes so far).
    pub(crate) capture: Option<Vec<u8>>,
    /// This link's generator, drawn from the network's when the link was made.
    rng: Rng,
    /// Gilbert-Elliott state: true while in the bad state.
    bad: bool,
    /// Virtual nanosecond at which the rate limiter finishes the last admitted packet.
    busy_until_ns: u64,
    /// Latest in-order delivery time so far; jittered packets never go before it.
    last_deliver: Instant,
}

impl Link {
    /// A fresh link with no history.
    pub(crate) fn new(from: usize, to: usize, cfg: LinkConfig, rng: Rng) -> Self {
        Link {
            from,
            to,
            cfg,
            cut: false,
            stats: LinkStats::default(),
            capture: None,
            rng,
            bad: false,
            busy_until_ns: 0,
            last_deliver: Instant::ZERO,
        }
    }

    /// Decide the fate of `packet`, sent at `now`; may flip one of its bits in place.
    pub(crate) fn transmit(&mut self, now: Instant, packet: &mut [u8]) -> Verdict {
        let len = packet.len();
        self.stats.sent += 1;
        self.stats.bytes_sent += len as u64;
        if self.cut {
            self.stats.dropped_partition += 1;
            return Verdict::Drop;
        }
        if len > self.cfg.mtu {
            self.stats.dropped_mtu += 1;
            return Verdict::Drop;
        }
        self.mark(now, packet);
        let Some(on_wire) = self.serialise(now, len) else {
            self.stats.dropped_queue += 1;
            return Verdict::Drop;
        };
        if self.lose() {
            self.stats.dropped_loss += 1;
            return Verdict::Drop;
        }
        self.maybe_corrupt(packet);
        let at = self.delivery_time(on_wire);
        let copy_at = self.rng.chance(self.cfg.duplicate).then_some(at);
        if copy_at.is_some() {
            self.stats.duplicated += 1;
        }
        Verdict::Deliver { at, copy_at }
    }

    /// The AQM and random marking: CE on an ECN-capable packet when the backlog reaches the
    /// threshold or the random mark hits.
    fn mark(&mut self, now: Instant, packet: &mut [u8]) {
        let threshold = self.cfg.ecn_mark_threshold;
        let congested = threshold > 0 && self.cfg.rate_bps > 0 && self.backlog(now) >= threshold;
        if (congested || self.rng.chance(self.cfg.ecn_mark)) && wire::ecn::mark_ce(packet) {
            self.stats.ce_marked += 1;
        }
    }

    /// Bytes queued in front of the rate limiter at `now`.
    fn backlog(&self, now: Instant) -> usize {
        let now_ns = now.as_micros().saturating_mul(1000);
        let backlog_ns = u128::from(self.busy_until_ns.saturating_sub(now_ns));
        let bytes = backlog_ns * u128::from(self.cfg.rate_bps) / 8_000_000_000;
        usize::try_from(bytes).unwrap_or(usize::MAX)
    }

    /// Pass `len` bytes through the rate limiter: the instant the last bit leaves, or `None`
    /// when the drop-tail queue has no room.
    fn serialise(&mut self, now: Instant, len: usize) -> Option<Instant> {
        let rate = self.cfg.rate_bps;
        if rate == 0 {
            return Some(now);
        }
        let now_ns = now.as_micros().saturating_mul(1000);
        let start_ns = self.busy_until_ns.max(now_ns);
        if self.cfg.queue_bytes > 0 {
            let backlog_ns = u128::from(start_ns - now_ns);
            let backlog = backlog_ns * u128::from(rate) / 8_000_000_000;
            if backlog + len as u128 > self.cfg.queue_bytes as u128 {
                return None;
            }
        }
        let tx_ns = (len as u128 * 8_000_000_000).div_ceil(u128::from(rate));
        self.busy_until_ns = start_ns.saturating_add(u64::try_from(tx_ns).unwrap_or(u64::MAX));
        Some(Instant::from_micros(self.busy_until_ns.div_ceil(1000)))
    }

    /// Run the loss model for one packet.
    fn lose(&mut self) -> bool {
        match self.cfg.loss {
            Loss::None => false,
            Loss::Uniform(p) => self.rng.chance(p),
            Loss::GilbertElliott { p_good_to_bad, p_bad_to_good, loss_in_good, loss_in_bad } => {
                let flip = if self.bad { p_bad_to_good } else { p_good_to_bad };
                if self.rng.chance(flip) {
                    self.bad = !self.bad;
                }
                self.rng.chance(if self.bad { loss_in_bad } else { loss_in_good })
            }
        }
    }

    /// Flip one random bit of `packet` with the configured probability.
    fn maybe_corrupt(&mut self, packet: &mut [u8]) {
        if packet.is_empty() || !self.rng.chance(self.cfg.corrupt) {
            return;
        }
        let bit = self.rng.below(packet.len() as u64 * 8);
        packet[(bit / 8) as usize] ^= 1 << (bit % 8);
        self.stats.corrupted += 1;
    }

    /// Arrival time of a packet whose last bit left at `on_wire`: delay plus jitter, kept in
    /// FIFO order, unless the packet is picked for reordering and held back.
    fn delivery_time(&mut self, on_wire: Instant) -> Instant {
        let jitter = micros(self.cfg.jitter);
        let mut at = on_wire + self.cfg.delay + micros_dur(self.rng.below(jitter));
        at = at.max(self.last_deliver);
        if self.rng.chance(self.cfg.reorder) {
            self.stats.reordered += 1;
            let hold = 1 + self.rng.below(micros(self.cfg.reorder_delay).max(1));
            return at + micros_dur(hold);
        }
        self.last_deliver = at;
        at
    }
}

/// A duration in whole microseconds, saturating.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// `us` microseconds as a duration.
fn micros_dur(us: u64) -> Duration {
    Duration::from_micros(us)
}

#[cfg(test)]
mod tests {
    use super::{Link, LinkConfig, Verdict};
    use crate::rng::Rng;
    use crate::wire::{self, ecn, IpFields, SeqNum, TcpChecksum, TcpFlags, TcpRepr};
    use crate::Instant;

    /// A 1,000-byte TCP packet with `tos` (IPv4 or IPv6).
    fn packet(v6: bool, tos: u8) -> Vec<u8> {
        let (src, dst) = if v6 {
            ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap())
        } else {
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap())
        };
        let repr = TcpRepr {
            src_port: 1,
            dst_port: 2,
            seq: SeqNum(1),
            ack: SeqNum(1),
            flags: TcpFlags::ACK,
            window: 100,
            urgent: 0,
            options: Default::default(),
        };
        let mut buf = vec![0; 2000];
        let ip = IpFields { tos, ..IpFields::default() };
        let n = wire::emit_ip(&mut buf, src, dst, &repr, [&[7; 900], &[]], TcpChecksum::Full, ip)
            .unwrap();
        buf.truncate(n);
        buf
    }

    fn delivered(v: Verdict) -> bool {
        matches!(v, Verdict::Deliver { .. })
    }

    /// ECN-01 (simulator): random marking sets CE on ECN-capable packets only, keeping the
    /// packet valid (the IPv4 header checksum is fixed), and never drops.
    #[test]
    fn ecn_01_random_marking_only_touches_ect() {
        let cfg = LinkConfig { ecn_mark: 1.0, ..LinkConfig::default() };
        let mut link = Link::new(0, 1, cfg, Rng::new(1));
        for v6 in [false, true] {
            for (tos, want) in [(0xb8 | ecn::ECT0, ecn::CE), (ecn::ECT1, ecn::CE), (0xb8, 0)] {
                let mut p = packet(v6, tos);
                assert!(delivered(link.transmit(Instant::ZERO, &mut p)));
                let seg = wire::parse(&p).expect("still a valid packet");
                assert_eq!(seg.ecn, want, "v6 {v6} tos {tos:#x}");
                assert_eq!(ecn::field(&p), want);
            }
        }
        assert_eq!(link.stats.ce_marked, 4);
    }

    /// ECN-01 (simulator): over the AQM threshold ECN-capable packets are marked, Not-ECT
    /// packets left alone; below it neither.
    #[test]
    fn ecn_01_aqm_threshold_marks_ect_only() {
        let cfg = LinkConfig {
            rate_bps: 8_000_000, // 1 byte/µs
            queue_bytes: 100_000,
            ecn_mark_threshold: 3000,
            ..LinkConfig::default()
        };
        let mut link = Link::new(0, 1, cfg, Rng::new(1));
        let mut marks = vec![];
        for _ in 0..6 {
            let mut p = packet(false, ecn::ECT0);
            assert!(delivered(link.transmit(Instant::ZERO, &mut p)));
            marks.push(ecn::field(&p));
        }
        // Backlog before each: 0, 960, 1920, 2880, 3840, 4800 bytes.
        assert_eq!(marks, [2, 2, 2, 2, 3, 3]);
        let mut p = packet(false, ecn::NOT_ECT);
        assert!(delivered(link.transmit(Instant::ZERO, &mut p)), "Not-ECT over the threshold");
        assert_eq!(ecn::field(&p), ecn::NOT_ECT);
        assert_eq!((link.stats.ce_marked, link.stats.dropped_queue), (2, 0));
        // Once the queue drains, nothing is marked.
        let mut p = packet(false, ecn::ECT0);
        assert!(delivered(link.transmit(Instant::from_micros(100_000), &mut p)));
        assert_eq!(ecn::field(&p), ecn::ECT0);
    }
}
