//! Round-trip time estimation and the retransmission timeout (RFC 6298).

use core::time::Duration;

/// SRTT, RTTVAR and RTO per RFC 6298 §2, with exponential backoff (§5.5) and clamps.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    /// RTO before backoff.
    base_rto: Duration,
    /// Number of consecutive backoffs applied (RFC 6298 §5.5).
    backoff: u32,
    min_rto: Duration,
    max_rto: Duration,
}

/// Clock granularity G of RFC 6298 §2 (we measure in microseconds; Linux uses 1 jiffy).
const GRANULARITY: Duration = Duration::from_millis(1);

impl RttEstimator {
    pub(crate) fn new(initial: Duration, min_rto: Duration, max_rto: Duration) -> Self {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            base_rto: initial,
            backoff: 0,
            min_rto,
            max_rto,
        }
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
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                // With n = 1: RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'|; SRTT <- 7/8 SRTT + 1/8 R'
                let diff = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * (4 * n - 1) + diff) / (4 * n);
                self.srtt = Some((srtt * (8 * n - 1) + rtt) / (8 * n));
            }
        }
        let srtt = self.srtt.unwrap_or(rtt);
        self.base_rto = srtt + GRANULARITY.max(self.rttvar * 4);
        // A new sample ends any backoff (RFC 6298 §5.7 keeps it until then).
        self.backoff = 0;
    }

    /// The current RTO, backed off and clamped (RFC 6298 §2.4, §2.5, §5.5).
    pub(crate) fn rto(&self) -> Duration {
        // §2.4 rounds the computed RTO up to the minimum; §5.5 doubles that RTO.
        let base = self.base_rto.clamp(self.min_rto, self.max_rto);
        base.saturating_mul(1u32 << self.backoff.min(16)).min(self.max_rto)
    }

    /// RFC 6298 §5.7: the SYN (or SYN-ACK) timed out and gave no sample, so data
    /// transmission starts with an RTO of 3 s (Linux `TCP_TIMEOUT_FALLBACK`).
    pub(crate) fn fallback_after_syn_timeout(&mut self) {
        if self.srtt.is_none() {
            self.base_rto = self.base_rto.max(Duration::from_secs(3));
            self.backoff = 0;
        }
    }

    /// Double the RTO after a timeout (RFC 6298 §5.5).
    pub(crate) fn back_off(&mut self) {
        if self.rto() < self.max_rto {
            self.backoff += 1;
        }
    }

    pub(crate) fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    pub(crate) fn rttvar(&self) -> Duration {
        self.rttvar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
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
