//! Sequence numbers: 32-bit values compared modulo 2^32 (RFC 9293 §3.4).
//!
//! `SeqNum` deliberately has no `Ord`: "less than" only means something for two
//! numbers less than 2^31 apart, so comparisons are spelled [`SeqNum::before`] /
//! [`SeqNum::after`] and differences are signed.

use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// A TCP sequence number, compared with wrapping arithmetic.
///
/// ```
/// use utcp_proto::SeqNum;
/// let a = SeqNum::new(u32::MAX - 1);
/// let b = a + 4; // wraps past zero
/// assert_eq!(b.get(), 2);
/// assert!(a.before(b));
/// assert_eq!(b - a, 4);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNum(u32);

impl SeqNum {
    /// Wraps a raw 32-bit value.
    pub const fn new(v: u32) -> Self {
        SeqNum(v)
    }

    /// The raw 32-bit value.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// `self + n` modulo 2^32.
    pub const fn wrapping_add(self, n: u32) -> Self {
        SeqNum(self.0.wrapping_add(n))
    }

    /// Signed distance `self - other`, valid while the two are less than 2^31 apart.
    pub const fn diff(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// `self < other` in sequence space.
    pub const fn before(self, other: SeqNum) -> bool {
        self.diff(other) < 0
    }

    /// `self <= other` in sequence space.
    pub const fn before_eq(self, other: SeqNum) -> bool {
        self.diff(other) <= 0
    }

    /// `self > other` in sequence space.
    pub const fn after(self, other: SeqNum) -> bool {
        self.diff(other) > 0
    }

    /// `self >= other` in sequence space.
    pub const fn after_eq(self, other: SeqNum) -> bool {
        self.diff(other) >= 0
    }

    /// `lo <= self < hi` in sequence space (an empty range contains nothing).
    pub const fn in_range(self, lo: SeqNum, hi: SeqNum) -> bool {
        lo.before_eq(self) && self.before(hi)
    }

    /// The later of two sequence numbers.
    pub const fn max(self, other: SeqNum) -> SeqNum {
        if self.after(other) { self } else { other }
    }

    /// The earlier of two sequence numbers.
    pub const fn min(self, other: SeqNum) -> SeqNum {
        if self.before(other) { self } else { other }
    }
}

impl Add<u32> for SeqNum {
    type Output = SeqNum;
    fn add(self, n: u32) -> SeqNum {
        self.wrapping_add(n)
    }
}

impl AddAssign<u32> for SeqNum {
    fn add_assign(&mut self, n: u32) {
        *self = self.wrapping_add(n)
    }
}

impl Sub for SeqNum {
    type Output = i32;
    fn sub(self, other: SeqNum) -> i32 {
        self.diff(other)
    }
}

impl fmt::Debug for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn add_then_diff_roundtrips(a: u32, n in 0u32..(1 << 31)) {
            let s = SeqNum::new(a);
            prop_assert_eq!((s + n) - s, n as i32);
        }

        #[test]
        fn before_after_are_mirrors(a: u32, n in 1u32..(1 << 31)) {
            let s = SeqNum::new(a);
            let t = s + n;
            prop_assert!(s.before(t));
            prop_assert!(t.after(s));
            prop_assert!(!t.before(s));
            prop_assert!(!s.after(t));
            prop_assert!(s.before_eq(t) && t.after_eq(s));
        }

        #[test]
        fn equal_is_neither_before_nor_after(a: u32) {
            let s = SeqNum::new(a);
            prop_assert!(!s.before(s) && !s.after(s));
            prop_assert!(s.before_eq(s) && s.after_eq(s));
        }

        #[test]
        fn in_range_matches_offsets(lo: u32, len in 0u32..(1 << 30), off in 0u32..(1 << 31)) {
            let lo = SeqNum::new(lo);
            let hi = lo + len;
            prop_assert_eq!((lo + off).in_range(lo, hi), off < len);
        }

        #[test]
        fn max_min_agree(a: u32, n in 0u32..(1 << 31)) {
            let s = SeqNum::new(a);
            let t = s + n;
            prop_assert_eq!(s.max(t), t);
            prop_assert_eq!(t.min(s), s);
        }
    }

    #[test]
    fn wraps_across_zero() {
        let a = SeqNum::new(0xffff_fff0);
        let b = SeqNum::new(0x10);
        assert!(a.before(b));
        assert_eq!(b - a, 0x20);
        assert_eq!(a - b, -0x20);
    }
}
