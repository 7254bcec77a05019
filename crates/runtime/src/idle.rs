//! "Went a while without X": the clock behind the idle releases (an inbox's
//! spill queues, a connection's queue room). One timer per idle stretch: the
//! time to look again moves on only once reached, so a busy connection does
//! not re-arm its timer at every pass.

use utcp_proto::{Duration, Instant};

/// Where an idle clock stands after a pass.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Idle {
    /// Nothing happened since the last release: nothing to wait for.
    Nothing,
    /// Not idle long enough yet: look again at this time.
    Until(Instant),
    /// Idle for the whole period: release now (the clock starts over).
    Due,
}

/// When something last happened, and when to look again.
#[derive(Debug, Default)]
pub(crate) struct IdleClock {
    last: Option<Instant>,
    check_at: Option<Instant>,
}

impl IdleClock {
    /// It happened at `now`.
    pub(crate) fn touch(&mut self, now: Instant) {
        self.last = Some(now);
    }

    /// Whether `period` passed since it last happened.
    pub(crate) fn poll(&mut self, now: Instant, period: Duration) -> Idle {
        let Some(last) = self.last else {
            return Idle::Nothing;
        };
        let due = last + period;
        if now >= due {
            *self = IdleClock::default();
            return Idle::Due;
        }
        match self.check_at {
            Some(at) if at > now => Idle::Until(at),
            _ => {
                self.check_at = Some(due);
                Idle::Until(due)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_timer_per_idle_stretch() {
        let s = Duration::from_secs(1);
        let mut c = IdleClock::default();
        assert_eq!(c.poll(Instant::ZERO, s), Idle::Nothing);
        c.touch(Instant::ZERO);
        assert_eq!(
            c.poll(Instant::ZERO, s),
            Idle::Until(Instant::from_millis(1000))
        );
        // Busy: the time to look again does not move per pass.
        c.touch(Instant::from_millis(500));
        assert_eq!(
            c.poll(Instant::from_millis(500), s),
            Idle::Until(Instant::from_millis(1000))
        );
        // Reached while not idle long enough: moved on once.
        assert_eq!(
            c.poll(Instant::from_millis(1000), s),
            Idle::Until(Instant::from_millis(1500))
        );
        assert_eq!(c.poll(Instant::from_millis(1500), s), Idle::Due);
        assert_eq!(c.poll(Instant::from_millis(1600), s), Idle::Nothing);
    }
}
