//! Time as the state machine sees it: passed in by the runtime, never read here.

use core::fmt;
use core::num::NonZeroU64;
use core::ops::{Add, AddAssign, Sub};
pub use core::time::Duration;

/// A point in time, in microseconds since an epoch chosen by the runtime.
///
/// The runtime converts its clock once (for example `tokio::time::Instant`) and
/// passes `Instant`s in; time never goes backwards between calls.
///
/// Instants saturate at `u64::MAX − 1` µs (half a million years). That one
/// value less leaves room for `Option<Instant>` to take 8 bytes, not 16: a
/// connection keeps about a dozen of them (its timers, RACK's, recovery's),
/// and idle connections are counted by the hundred thousand.
///
/// ```
/// use utcp_proto::{Duration, Instant};
/// let t0 = Instant::from_micros(1_000);
/// let t1 = t0 + Duration::from_millis(2);
/// assert_eq!(t1 - t0, Duration::from_millis(2));
/// assert_eq!(t0.saturating_duration_since(t1), Duration::ZERO);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(NonZeroU64); // microseconds + 1, so that 0 is the niche

impl Instant {
    /// The epoch.
    pub const ZERO: Instant = Instant::from_micros(0);

    /// An instant `us` microseconds after the epoch (at most `u64::MAX − 1`).
    pub const fn from_micros(us: u64) -> Self {
        match NonZeroU64::new(us.saturating_add(1)) {
            Some(v) => Instant(v),
            None => Instant(NonZeroU64::MAX), // unreachable: us + 1 ≥ 1
        }
    }

    /// An instant `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Instant::from_micros(ms.saturating_mul(1000))
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0.get() - 1
    }

    /// Milliseconds since the epoch (truncated).
    pub const fn as_millis(self) -> u64 {
        self.as_micros() / 1000
    }

    /// `self - earlier`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.0.get().saturating_sub(earlier.0.get()))
    }
}

impl Default for Instant {
    /// The epoch ([`Instant::ZERO`]).
    fn default() -> Self {
        Instant::ZERO
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant::from_micros(
            self.as_micros()
                .saturating_add(d.as_micros().min(u64::MAX as u128) as u64),
        )
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.as_micros();
        write!(f, "{}.{:06}s", us / 1_000_000, us % 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_optional_instant_takes_no_more_room_than_an_instant() {
        assert_eq!(core::mem::size_of::<Option<Instant>>(), 8);
    }

    #[test]
    fn instants_count_from_zero_and_saturate_one_below_the_top() {
        assert_eq!(Instant::ZERO.as_micros(), 0);
        assert_eq!(Instant::default(), Instant::ZERO);
        assert_eq!(Instant::from_millis(3).as_micros(), 3_000);
        let top = Instant::from_micros(u64::MAX);
        assert_eq!(top.as_micros(), u64::MAX - 1);
        assert_eq!(top + Duration::from_secs(1), top);
        assert_eq!(Instant::from_micros(u64::MAX - 1), top);
        assert!(Instant::from_micros(5) < Instant::from_micros(6));
        assert_eq!(top - Instant::ZERO, Duration::from_micros(u64::MAX - 1));
    }
}
