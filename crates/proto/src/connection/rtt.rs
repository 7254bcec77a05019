//! The retransmission timer's estimator (RFC 6298).

use crate::time::Duration;

/// SRTT / RTTVAR / RTO per RFC 6298 §2, with exponential backoff (§5.5).
///
/// The floor `min` applies to the variance term, not to the whole RTO:
/// RTO = SRTT + max(min, 4·RTTVAR), as Linux's `__tcp_set_rto` (RFC 6298 §2.4
/// floors the whole RTO at 1 s). On a steady path, where RTTVAR decays to
/// nearly nothing, a floor on the whole RTO would leave it a hair above SRTT
/// and every delayed ACK would cause a spurious timeout.
#[derive(Clone, Debug)]
pub(crate) struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    rto: Duration,
    min: Duration,
    max: Duration,
    backoff: u32,
}

impl RttEstimator {
    pub(crate) fn new(initial: Duration, min: Duration, max: Duration) -> Self {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            rto: initial,
            min,
            max,
            backoff: 0,
        }
    }

    /// Feeds a sample from a segment that was not retransmitted (Karn).
    pub(crate) fn sample(&mut self, r: Duration) {
        match self.srtt {
            // RFC 6298 §2.2: first measurement.
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            // §2.3: RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R'|; SRTT = 7/8 SRTT + 1/8 R'.
            Some(srtt) => {
                let delta = srtt.abs_diff(r);
                self.rttvar = (self.rttvar * 3 + delta) / 4;
                self.srtt = Some((srtt * 7 + r) / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(r);
        // RTO = SRTT + max(G, K·RTTVAR) (§2.3), with the floor on the variance
        // term (and so above the 1 ms clock granularity G).
        let rto = srtt
            + (self.rttvar * 4)
                .max(self.min)
                .max(Duration::from_millis(1));
        self.rto = rto.min(self.max);
        self.backoff = 0;
    }

    /// §5.5: doubles the RTO after a timeout, up to the maximum.
    pub(crate) fn back_off(&mut self) {
        self.backoff = self.backoff.saturating_add(1);
        self.rto = (self.rto * 2).min(self.max);
    }

    /// §5.7: after a retransmitted SYN, data transmission starts from 3 s.
    pub(crate) fn reset_to(&mut self, rto: Duration) {
        if self.srtt.is_none() {
            self.rto = rto.clamp(self.min, self.max);
        }
    }

    pub(crate) fn rto(&self) -> Duration {
        self.rto
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

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn first_sample_sets_srtt_and_half_var() {
        let mut e = RttEstimator::new(ms(1000), ms(200), ms(120_000));
        e.sample(ms(100));
        assert_eq!(e.srtt(), Some(ms(100)));
        assert_eq!(e.rttvar(), ms(50));
        assert_eq!(e.rto(), ms(300));
    }

    #[test]
    fn floor_and_backoff_cap() {
        let mut e = RttEstimator::new(ms(1000), ms(200), ms(60_000));
        e.sample(ms(1));
        // The floor is on the variance term: 1 ms + 200 ms.
        assert_eq!(e.rto(), ms(201));
        for _ in 0..20 {
            e.back_off();
        }
        assert_eq!(e.rto(), ms(60_000));
    }

    #[test]
    fn second_sample_smooths() {
        let mut e = RttEstimator::new(ms(1000), ms(1), ms(60_000));
        e.sample(ms(100));
        e.sample(ms(200));
        // rttvar = 3/4·50 + 1/4·100 = 62.5; srtt = 7/8·100 + 1/8·200 = 112.5
        assert_eq!(e.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(e.rttvar(), Duration::from_micros(62_500));
    }

    #[test]
    fn steady_path_keeps_the_floor_above_srtt() {
        // A steady 250 ms path: RTTVAR decays toward 0, yet the RTO stays
        // SRTT + 200 ms rather than SRTT + 1 ms.
        let mut e = RttEstimator::new(ms(1000), ms(200), ms(120_000));
        for _ in 0..200 {
            e.sample(ms(250));
        }
        assert_eq!(e.srtt(), Some(ms(250)));
        assert!(e.rttvar() < ms(1), "{:?}", e.rttvar());
        assert_eq!(e.rto(), ms(450));
    }
}
