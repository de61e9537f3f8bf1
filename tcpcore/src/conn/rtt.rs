//! Round-trip time estimation and the retransmission timeout (RFC 6298).

use core::time::Duration;

/// SRTT, RTTVAR and RTO per RFC 6298 §2, with exponential backoff (§5.5) and clamps.
/// Durations are kept as nanoseconds in `u64`s ([`Nanos`]): the same arithmetic as
/// `Duration`'s, in half the bytes (this is in every connection); the configured clamps,
/// whole microseconds like every instant the RTO is added to, in `u32`s ([`Micros`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RttEstimator {
    /// [`Nanos::NONE`] before the first sample.
    srtt: Nanos,
    rttvar: Nanos,
    /// RTO before backoff.
    base_rto: Nanos,
    min_rto: Micros,
    max_rto: Micros,
    /// The current RTO: `base_rto` clamped and backed off, computed when one of them
    /// changes rather than on every read (it is read several times per segment).
    rto: Micros,
    /// Number of consecutive backoffs applied (RFC 6298 §5.5).
    backoff: u32,
}

/// A duration in nanoseconds (saturating at about 584 years).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Nanos(u64);

impl Nanos {
    const NONE: Nanos = Nanos(u64::MAX);

    fn from(d: Duration) -> Nanos {
        // `d.as_nanos()` saturated to `u64::MAX - 1`, without 128-bit arithmetic.
        let n =
            d.as_secs().saturating_mul(1_000_000_000).saturating_add(u64::from(d.subsec_nanos()));
        Nanos(n.min(u64::MAX - 1))
    }

    fn get(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    fn opt(self) -> Option<Duration> {
        (self != Nanos::NONE).then(|| self.get())
    }
}

/// A configured duration in microseconds, saturating at about 71 minutes (`u32::MAX` µs;
/// Linux caps the RTO at 120 s).
#[derive(Clone, Copy, Debug)]
struct Micros(u32);

impl Micros {
    fn from(d: Duration) -> Micros {
        Micros(u32::try_from(d.as_micros()).unwrap_or(u32::MAX))
    }

    fn get(self) -> Duration {
        Duration::from_micros(u64::from(self.0))
    }
}

/// Clock granularity G of RFC 6298 §2 (we measure in microseconds; Linux uses 1 jiffy).
const GRANULARITY_NS: u64 = 1_000_000;

impl RttEstimator {
    pub(crate) fn new(initial: Duration, min_rto: Duration, max_rto: Duration) -> Self {
        let mut r = RttEstimator {
            srtt: Nanos::NONE,
            rttvar: Nanos(0),
            base_rto: Nanos::from(initial),
            rto: Micros(0),
            backoff: 0,
            min_rto: Micros::from(min_rto),
            max_rto: Micros::from(max_rto),
        };
        r.update_rto();
        r
    }

    /// Recompute [`RttEstimator::rto`] after `base_rto` or `backoff` changed.
    fn update_rto(&mut self) {
        // §2.4 rounds the computed RTO up to the minimum; §5.5 doubles that RTO.
        let max = u64::from(self.max_rto.0) * 1000;
        let base = self.base_rto.0.max(u64::from(self.min_rto.0) * 1000).min(max);
        let rto = base.saturating_mul(1 << self.backoff.min(16)).min(max);
        // At most `max_rto`, so it fits its microseconds (timer deadlines are microseconds).
        self.rto = Micros((rto / 1000) as u32);
    }

    /// Feed one RTT measurement (RFC 6298 §2.2 and §2.3). The caller applies Karn's rule
    /// (§3): never a sample from a retransmitted segment.
    pub(crate) fn sample(&mut self, rtt: Duration) {
        self.sample_weighted(rtt, 1);
    }

    /// Feed one of about `expected` measurements per round trip (RFC 7323 Appendix G): the
    /// gains of RFC 6298 §2.3 are divided by `expected`, so that sampling every ACK keeps
    /// the history of one sample per RTT instead of collapsing RTTVAR:
    ///
    /// ```text
    /// RTTVAR <- (1 - beta') RTTVAR + beta' |SRTT - R'|     beta'  = 1/4 / expected
    /// SRTT   <- (1 - alpha') SRTT + alpha' R'              alpha' = 1/8 / expected
    /// ```
    pub(crate) fn sample_weighted(&mut self, rtt: Duration, expected: u32) {
        let n = expected.max(1);
        let (srtt, rttvar) = match self.srtt.opt() {
            None => (Nanos::from(rtt), Nanos::from(rtt / 2)),
            Some(_) if n == 1 => {
                // RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'|; SRTT <- 7/8 SRTT + 1/8 R', in
                // nanoseconds: 4 and 8 divide 10^9, so this floors exactly as the general
                // case's `Duration` division does, without its divisions by a variable.
                let (r, srtt) = (Nanos::from(rtt).0, self.srtt.0);
                let var = self.rttvar.0.saturating_mul(3).saturating_add(srtt.abs_diff(r)) / 4;
                let srtt = srtt.saturating_mul(7).saturating_add(r) / 8;
                (Nanos(srtt.min(u64::MAX - 1)), Nanos(var.min(u64::MAX - 1)))
            }
            Some(srtt) => {
                let diff = srtt.abs_diff(rtt);
                let rttvar = (self.rttvar.get() * (4 * n - 1) + diff) / (4 * n);
                (Nanos::from((srtt * (8 * n - 1) + rtt) / (8 * n)), Nanos::from(rttvar))
            }
        };
        self.srtt = srtt;
        self.rttvar = rttvar;
        let var4 = rttvar.0.saturating_mul(4).max(GRANULARITY_NS);
        self.base_rto = Nanos(srtt.0.saturating_add(var4).min(u64::MAX - 1));
        // A new sample ends any backoff (RFC 6298 §5.7 keeps it until then).
        self.backoff = 0;
        self.update_rto();
    }

    /// The current RTO, backed off and clamped (RFC 6298 §2.4, §2.5, §5.5).
    pub(crate) fn rto(&self) -> Duration {
        self.rto.get()
    }

    /// [`RttEstimator::rto`] in microseconds.
    #[inline]
    pub(crate) fn rto_micros(&self) -> u64 {
        u64::from(self.rto.0)
    }

    /// `now + rto()`, the retransmission timer's deadline (RFC 6298 §5.1), in the clock's
    /// microseconds: armed on every ACK of new data, without a `Duration` round trip.
    #[inline]
    pub(crate) fn rto_after(&self, now: crate::Instant) -> crate::Instant {
        crate::Instant::from_micros(now.as_micros().saturating_add(u64::from(self.rto.0)))
    }

    /// RFC 6298 §5.7: the SYN (or SYN-ACK) timed out and gave no sample, so data
    /// transmission starts with an RTO of 3 s (Linux `TCP_TIMEOUT_FALLBACK`).
    pub(crate) fn fallback_after_syn_timeout(&mut self) {
        if self.srtt == Nanos::NONE {
            self.base_rto = Nanos::from(self.base_rto.get().max(Duration::from_secs(3)));
            self.backoff = 0;
            self.update_rto();
        }
    }

    /// Double the RTO after a timeout (RFC 6298 §5.5).
    pub(crate) fn back_off(&mut self) {
        if self.rto() < self.max_rto.get() {
            self.backoff += 1;
            self.update_rto();
        }
    }

    pub(crate) fn srtt(&self) -> Option<Duration> {
        self.srtt.opt()
    }

    /// [`RttEstimator::srtt`] in nanoseconds, for deadlines computed on every segment
    /// without `Duration` arithmetic.
    pub(crate) fn srtt_nanos(&self) -> Option<u64> {
        (self.srtt != Nanos::NONE).then_some(self.srtt.0)
    }

    pub(crate) fn rttvar(&self) -> Duration {
        self.rttvar.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// MEM-01: the estimator is 40 bytes of every connection; clamps beyond the range of
    /// its microsecond fields saturate instead of wrapping.
    #[test]
    fn mem_01_estimator_is_compact_and_its_clamps_saturate() {
        assert_eq!(core::mem::size_of::<RttEstimator>(), 40);
        let mut r = RttEstimator::new(ms(1000), ms(200), Duration::from_secs(1 << 40));
        for _ in 0..30 {
            r.back_off();
        }
        assert_eq!(r.rto(), Duration::from_micros(u64::from(u32::MAX)));
    }

    #[test]
    fn rx_01_rfc6298_estimator_backoff_and_clamps() {
        let mut r = RttEstimator::new(ms(1000), ms(200), ms(120_000));
        assert_eq!(r.rto(), ms(1000), "initial RTO is 1 s (RFC 6298 §2.1)");
        r.sample(ms(100));
        // SRTT 100, RTTVAR 50, RTO = 100 + 4*50 = 300
        assert_eq!(r.rto(), ms(300));
        r.sample(ms(100));
        // RTTVAR = 3/4*50 + 0 = 37.5, SRTT 100 -> RTO 250
        assert_eq!(r.rto(), Duration::from_micros(250_000));
        r.back_off();
        assert_eq!(r.rto(), ms(500), "exponential backoff");
        for _ in 0..20 {
            r.back_off();
        }
        assert_eq!(r.rto(), ms(120_000), "clamped at max RTO");
        r.sample(ms(100));
        assert_eq!(r.rto(), Duration::from_micros(212_500), "backoff cleared by a sample");
        let mut r = RttEstimator::new(ms(1000), ms(200), ms(120_000));
        r.sample(ms(10));
        assert_eq!(r.rto(), ms(200), "clamped at min RTO");
        r.back_off();
        assert_eq!(r.rto(), ms(400), "the clamped RTO is what doubles");
    }
}
