//! Virtual time. The engine never reads a clock: every input carries `now`.

use core::num::NonZeroU64;
use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A point in time, in microseconds since an epoch the caller chooses.
///
/// The engine only ever compares instants and adds durations to them, so any monotonic clock
/// works (tokio's, the simulator's virtual clock, a test's hand-written numbers).
///
/// The range is 0 to `u64::MAX - 1` microseconds (580,000 years); larger values saturate.
/// Stored complemented in a `NonZeroU64`, so an `Option<Instant>` takes 8 bytes rather than
/// 16: a connection keeps several (issue 12's per-connection memory).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Instant(NonZeroU64);

/// The latest representable instant, in microseconds.
const MAX_MICROS: u64 = u64::MAX - 1;

impl Instant {
    /// The epoch itself.
    pub const ZERO: Instant = Instant::from_micros(0);

    /// An instant `micros` microseconds after the epoch (at most `u64::MAX - 1`: larger
    /// values saturate).
    pub const fn from_micros(micros: u64) -> Self {
        let m = if micros > MAX_MICROS { MAX_MICROS } else { micros };
        match NonZeroU64::new(!m) {
            Some(v) => Instant(v),
            None => Instant(NonZeroU64::MIN), // unreachable: `!m` is never zero
        }
    }

    /// An instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Instant::from_micros(millis * 1000)
    }

    /// An instant `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Instant::from_micros(secs * 1_000_000)
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        !self.0.get()
    }

    /// Time elapsed since `earlier`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.as_micros().saturating_sub(earlier.as_micros()))
    }
}

impl Default for Instant {
    fn default() -> Self {
        Instant::ZERO
    }
}

impl PartialOrd for Instant {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Instant {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.as_micros().cmp(&other.as_micros())
    }
}

impl core::fmt::Debug for Instant {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Instant").field(&self.as_micros()).finish()
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Instant {
    /// As a newtype of its microseconds.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct("Instant", &self.as_micros())
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
        Instant::from_micros(self.as_micros().saturating_add(micros(rhs)))
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
        let m = self.as_micros();
        write!(f, "{}.{:06}s", m / 1_000_000, m % 1_000_000)
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

    /// MEM-01: an optional instant costs no more than an instant (the connection keeps
    /// several).
    #[test]
    fn mem_01_optional_instant_is_eight_bytes() {
        assert_eq!(core::mem::size_of::<Option<Instant>>(), 8);
        assert_eq!(core::mem::size_of::<Option<(crate::wire::SeqNum, Instant)>>(), 16);
    }

    #[test]
    fn instants_order_add_and_saturate_as_microseconds() {
        let (a, b) = (Instant::from_micros(5), Instant::from_millis(1));
        assert!(Instant::ZERO < a && a < b && b.as_micros() == 1000);
        assert_eq!(Instant::default(), Instant::ZERO);
        assert_eq!(b - a, Duration::from_micros(995));
        assert_eq!(a - b, Duration::ZERO);
        assert_eq!((a + Duration::from_secs(1)).as_micros(), 1_000_005);
        let end = Instant::from_micros(u64::MAX);
        assert_eq!(end.as_micros(), u64::MAX - 1);
        assert_eq!(a + Duration::MAX, end);
        assert!(b < end);
        assert_eq!(format!("{a:?} {b}"), "Instant(5) 0.001000s");
    }

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
                assert_eq!(Instant::ZERO + d, Instant::from_micros(want));
            }
        }
    }
}
