//! Virtual time. The engine never reads a clock: every input carries `now`.

use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A point in time, in microseconds since an epoch the caller chooses.
///
/// The engine only ever compares instants and adds durations to them, so any monotonic clock
/// works (tokio's, the simulator's virtual clock, a test's hand-written numbers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Instant(u64);

impl Instant {
    /// The epoch itself.
    pub const ZERO: Instant = Instant(0);

    /// An instant `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Instant(micros)
    }

    /// An instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis * 1000)
    }

    /// An instant `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Instant(secs * 1_000_000)
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Time elapsed since `earlier`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

/// `d.as_micros()` saturated to `u64::MAX`, in 64-bit arithmetic (every timer deadline
/// goes through here).
#[inline]
fn micros(d: Duration) -> u64 {
    let whole = d.as_secs().checked_mul(1_000_000);
    whole.and_then(|w| w.checked_add(u64::from(d.subsec_micros()))).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(micros(rhs)))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturating: an earlier minus a later instant is zero.
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl core::fmt::Display for Instant {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// Durations serialized as whole microseconds (as Linux's `tcpi_rtt`), for the fields of
/// [`crate::TcpInfo`] renamed with a `_us` suffix.
#[cfg(feature = "serde")]
pub(crate) mod serde_micros {
    use core::time::Duration;

    fn micros(d: &Duration) -> u64 {
        u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
    }

    pub(crate) fn duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(micros(d))
    }

    pub(crate) fn option<S: serde::Serializer>(
        d: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&micros(d)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adding a duration saturates exactly as 128-bit `as_micros` would.
    #[test]
    fn micros_matches_as_micros_saturated() {
        let secs = [0, 1, 59, 18_446_744_073_709, 18_446_744_073_710, u64::MAX / 2, u64::MAX];
        let nanos = [0, 999, 1_000, 551_615_999, 551_616_000, 999_999_999];
        for s in secs {
            for n in nanos {
                let d = Duration::new(s, n);
                let want = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
                assert_eq!(micros(d), want, "{d:?}");
                assert_eq!(Instant::ZERO + d, Instant(want));
            }
        }
    }
}
