//! Sequence numbers with modulo-2^32 arithmetic (RFC 9293 §3.4).

use core::cmp::Ordering;
use core::ops::{Add, AddAssign, Sub};

/// A TCP sequence number. Ordering is the wrapping comparison of RFC 9293 §3.4: `a < b` when
/// `b - a`, taken as a signed 32-bit value, is positive. It is only meaningful for numbers less
/// than 2^31 apart, which the window rules guarantee.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// The raw 32-bit value.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The larger of two sequence numbers, in wrapping order.
    pub fn max(self, other: SeqNum) -> SeqNum {
        if self > other {
            self
        } else {
            other
        }
    }

    /// The smaller of two sequence numbers, in wrapping order.
    pub fn min(self, other: SeqNum) -> SeqNum {
        if self < other {
            self
        } else {
            other
        }
    }

    /// `self - earlier` as a byte count, or 0 if `earlier` is not before `self`.
    pub fn since(self, earlier: SeqNum) -> u32 {
        let d = self - earlier;
        if d > 0 {
            d as u32
        } else {
            0
        }
    }

    /// `lo <= self < hi` in wrapping order.
    pub fn in_range(self, lo: SeqNum, hi: SeqNum) -> bool {
        lo <= self && self < hi
    }
}

impl PartialOrd for SeqNum {
    fn partial_cmp(&self, other: &SeqNum) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SeqNum {
    fn cmp(&self, other: &SeqNum) -> Ordering {
        (self.0.wrapping_sub(other.0) as i32).cmp(&0)
    }
}

impl Add<u32> for SeqNum {
    type Output = SeqNum;
    fn add(self, rhs: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(rhs))
    }
}

impl AddAssign<u32> for SeqNum {
    fn add_assign(&mut self, rhs: u32) {
        self.0 = self.0.wrapping_add(rhs);
    }
}

impl Sub<u32> for SeqNum {
    type Output = SeqNum;
    fn sub(self, rhs: u32) -> SeqNum {
        SeqNum(self.0.wrapping_sub(rhs))
    }
}

impl Sub<SeqNum> for SeqNum {
    /// The signed distance `self - rhs`.
    type Output = i32;
    fn sub(self, rhs: SeqNum) -> i32 {
        self.0.wrapping_sub(rhs.0) as i32
    }
}

impl core::fmt::Display for SeqNum {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::SeqNum;

    #[test]
    fn wrapping_order() {
        assert!(SeqNum(u32::MAX) < SeqNum(0));
        assert!(SeqNum(0) + 5 > SeqNum(u32::MAX - 3));
        assert_eq!(SeqNum(2) - SeqNum(u32::MAX), 3);
        assert_eq!(SeqNum(1).since(SeqNum(5)), 0);
        assert!(SeqNum(u32::MAX).in_range(SeqNum(u32::MAX - 1), SeqNum(3)));
    }
}
