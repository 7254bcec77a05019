//! HyStart++ (RFC 9406): leaving the initial slow start on a rise of the
//! round's minimum RTT, before the queue overflows, through a conservative
//! slow start (CSS) that can still go back to slow start if the rise was
//! noise. Shared by both controllers; the controller applies the growth it
//! returns and enters congestion avoidance when told.

use super::{AckSample, SlowStartExit};
use crate::seq::SeqNum;
use crate::time::Duration;

/// RFC 9406 §4.3: the lower bound of the RTT threshold.
const MIN_RTT_THRESH: Duration = Duration::from_millis(4);
/// RFC 9406 §4.3: the upper bound of the RTT threshold.
const MAX_RTT_THRESH: Duration = Duration::from_millis(16);
/// RFC 9406 §4.3: the threshold is lastRoundMinRTT / MIN_RTT_DIVISOR, clamped.
const MIN_RTT_DIVISOR: u32 = 8;
/// RFC 9406 §4.3: RTT samples a round needs before its minimum is trusted.
const N_RTT_SAMPLE: u32 = 8;
/// RFC 9406 §4.3: CSS grows cwnd at a quarter of slow start's rate.
const CSS_GROWTH_DIVISOR: u32 = 4;
/// RFC 9406 §4.3: rounds of CSS before congestion avoidance.
const CSS_ROUNDS: u32 = 5;

/// What slow start does with one ACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Grow cwnd by this many bytes.
    Grow(u32),
    /// Conservative slow start is over: enter congestion avoidance with
    /// ssthresh = cwnd (RFC 9406 §4.3).
    EnterCa,
}

/// HyStart++'s state, for the initial slow start only (RFC 9406 §4.3: later
/// slow starts have an ssthresh already and use standard slow start).
#[derive(Clone, Copy, Debug)]
pub(crate) struct HyStart {
    /// Still in the initial slow start (standard or conservative).
    active: bool,
    /// In CSS: cssBaselineMinRtt and the CSS rounds completed.
    css: Option<(Duration, u32)>,
    /// windowEnd: the round ends when an ACK covers it.
    window_end: Option<SeqNum>,
    last_round_min_rtt: Option<Duration>,
    current_round_min_rtt: Option<Duration>,
    rtt_sample_count: u32,
    exit: SlowStartExit,
}

impl Default for HyStart {
    fn default() -> Self {
        HyStart {
            active: true,
            css: None,
            window_end: None,
            last_round_min_rtt: None,
            current_round_min_rtt: None,
            rtt_sample_count: 0,
            exit: SlowStartExit::None,
        }
    }
}

impl HyStart {
    /// Why the initial slow start ended, so far.
    pub(crate) fn exit(&self) -> SlowStartExit {
        self.exit
    }

    /// In conservative slow start.
    #[cfg(test)]
    pub(crate) fn in_css(&self) -> bool {
        self.css.is_some()
    }

    /// An ACK in slow start (cwnd < ssthresh): how much cwnd grows. Slow
    /// start counts every newly acknowledged byte (Linux's `tcp_slow_start`;
    /// RFC 3465 with no limit L, which RFC 9406 §4.2 allows for a paced
    /// sender: stretch ACKs from batched receive or GRO are normal here).
    pub(crate) fn on_ack(&mut self, a: &AckSample) -> Step {
        if !self.active {
            return Step::Grow(a.newly_acked);
        }
        // RFC 9406 §4.2: a round ends when an ACK covers windowEnd; the next
        // one ends at SND.NXT now.
        if self.window_end.is_none_or(|end| a.ack.after_eq(end)) {
            if let Some((_, rounds)) = self.css.as_mut()
                && self.window_end.is_some()
            {
                *rounds += 1;
                if *rounds >= CSS_ROUNDS {
                    // RFC 9406 §4.3: CSS_ROUNDS rounds of CSS: congestion
                    // avoidance, ssthresh = cwnd.
                    tracing::debug!("HyStart++: {CSS_ROUNDS} rounds of CSS, congestion avoidance");
                    self.active = false;
                    self.css = None;
                    return Step::EnterCa;
                }
            }
            tracing::trace!(
                min_rtt = ?self.current_round_min_rtt,
                samples = self.rtt_sample_count,
                css = self.css.is_some(),
                "HyStart++: round ends"
            );
            self.window_end = Some(a.snd_nxt);
            self.last_round_min_rtt = self.current_round_min_rtt;
            self.current_round_min_rtt = None;
            self.rtt_sample_count = 0;
        }
        if let Some(rtt) = a.rtt_sample {
            self.current_round_min_rtt =
                Some(self.current_round_min_rtt.map_or(rtt, |m| m.min(rtt)));
            self.rtt_sample_count += 1;
        }
        let enough = self.rtt_sample_count >= N_RTT_SAMPLE;
        match self.css {
            None => {
                // RFC 9406 §4.3: standard slow start, then check for a delay
                // increase: currentRoundMinRTT ≥ lastRoundMinRTT + RttThresh.
                if enough
                    && let (Some(cur), Some(last)) =
                        (self.current_round_min_rtt, self.last_round_min_rtt)
                {
                    let thresh = (last / MIN_RTT_DIVISOR).clamp(MIN_RTT_THRESH, MAX_RTT_THRESH);
                    if cur >= last + thresh {
                        tracing::debug!(
                            ?cur,
                            ?last,
                            "HyStart++: RTT rose, conservative slow start"
                        );
                        self.css = Some((cur, 0));
                        self.exit = SlowStartExit::HyStartDelay;
                    }
                }
                Step::Grow(a.newly_acked)
            }
            Some((baseline, _)) => {
                // RFC 9406 §4.3: in CSS, a round whose minimum RTT falls
                // below the baseline was a false alarm: back to slow start.
                if enough && self.current_round_min_rtt.is_some_and(|cur| cur < baseline) {
                    tracing::debug!("HyStart++: RTT fell, back to slow start");
                    self.css = None;
                    self.exit = SlowStartExit::None;
                    return Step::Grow(a.newly_acked);
                }
                Step::Grow(a.newly_acked / CSS_GROWTH_DIVISOR)
            }
        }
    }

    /// The initial slow start ended on a loss or a timeout (RFC 9406 §4.3:
    /// loss in slow start or CSS enters congestion avoidance). Later slow
    /// starts are standard ones.
    pub(crate) fn on_reduction(&mut self, rto: bool) {
        if self.active && self.exit == SlowStartExit::None {
            self.exit = if rto {
                SlowStartExit::Rto
            } else {
                SlowStartExit::Loss
            };
        }
        self.active = false;
        self.css = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Instant;

    const MSS: u32 = 1000;

    /// Drives rounds of `acks` ACKs of one MSS each, every ACK with `rtt`.
    struct Rounds {
        h: HyStart,
        una: SeqNum,
        cwnd: u32,
    }

    impl Rounds {
        fn new() -> Self {
            Rounds {
                h: HyStart::default(),
                una: SeqNum::new(0),
                cwnd: 10 * MSS,
            }
        }

        /// One round: the flight is cwnd; each ACK of one MSS carries `rtt`.
        /// Returns whether congestion avoidance was entered.
        fn round(&mut self, rtt_ms: u64) -> bool {
            self.round_of(self.cwnd / MSS, rtt_ms)
        }

        /// One round of `acks` ACKs (a flight of that many segments).
        fn round_of(&mut self, acks: u32, rtt_ms: u64) -> bool {
            let flight = acks * MSS;
            for _ in 0..acks {
                self.una += MSS;
                let a = AckSample {
                    now: Instant::ZERO,
                    ack: self.una,
                    // The sender keeps a flight out: SND.NXT runs a flight
                    // ahead, so a round is one flight of ACKs.
                    snd_nxt: self.una + flight,
                    newly_acked: MSS,
                    flight_before: flight,
                    rtt_sample: Some(Duration::from_millis(rtt_ms)),
                };
                match self.h.on_ack(&a) {
                    Step::Grow(n) => self.cwnd += n,
                    Step::EnterCa => return true,
                }
            }
            false
        }
    }

    #[test]
    fn flat_rtt_never_leaves_slow_start() {
        let mut r = Rounds::new();
        for _ in 0..8 {
            assert!(!r.round(20));
        }
        assert_eq!(r.h.exit(), SlowStartExit::None);
        assert!(!r.h.in_css());
        // Standard slow start: cwnd doubled every round.
        assert_eq!(r.cwnd, (10 * MSS) << 8);
    }

    #[test]
    fn rtt_increase_enters_css_then_congestion_avoidance() {
        let mut r = Rounds::new();
        assert!(!r.round(20));
        assert!(!r.round(20));
        // Threshold: max(4 ms, min(20/8 = 2.5 ms, 16 ms)) = 4 ms. 23 ms is
        // not enough.
        assert!(!r.round(23));
        assert!(!r.h.in_css());
        // The round after 23 ms compares with 23: 28 ≥ 23 + 4.
        assert!(!r.round(28));
        assert!(r.h.in_css());
        assert_eq!(r.h.exit(), SlowStartExit::HyStartDelay);
        // CSS grows a quarter as fast: 1.25× per round.
        let before = r.cwnd;
        assert!(!r.round(28));
        assert_eq!(r.cwnd, before + before / 4);
        // Rounds 2..=4 of CSS, then the fifth's end is congestion avoidance.
        for _ in 0..3 {
            assert!(!r.round(28));
        }
        assert!(r.round(28), "CSS_ROUNDS rounds then CA");
        assert_eq!(r.h.exit(), SlowStartExit::HyStartDelay);
        // After that, plain growth (the controller is in CA anyway).
        assert!(!r.h.in_css());
    }

    #[test]
    fn css_goes_back_to_slow_start_when_the_rtt_falls() {
        let mut r = Rounds::new();
        assert!(!r.round(20));
        assert!(!r.round(30));
        assert!(r.h.in_css());
        // The next round's minimum (22 ms) is below the CSS baseline (30).
        assert!(!r.round(22));
        assert!(!r.h.in_css());
        assert_eq!(r.h.exit(), SlowStartExit::None);
        let before = r.cwnd;
        assert!(!r.round(22));
        assert_eq!(
            r.cwnd,
            before + before / MSS * MSS,
            "standard slow start again"
        );
    }

    #[test]
    fn a_round_with_too_few_samples_decides_nothing() {
        let mut r = Rounds::new();
        // 7 ACKs a round < N_RTT_SAMPLE: a rise is not trusted.
        assert!(!r.round_of(7, 20));
        assert!(!r.round_of(7, 40));
        assert!(!r.h.in_css());
        // The eighth sample of a round decides.
        assert!(!r.round_of(8, 60));
        assert!(r.h.in_css());
    }

    #[test]
    fn loss_and_timeout_are_recorded_once() {
        let mut h = HyStart::default();
        h.on_reduction(false);
        assert_eq!(h.exit(), SlowStartExit::Loss);
        h.on_reduction(true);
        assert_eq!(h.exit(), SlowStartExit::Loss);
        let mut h = HyStart::default();
        h.on_reduction(true);
        assert_eq!(h.exit(), SlowStartExit::Rto);
    }
}
