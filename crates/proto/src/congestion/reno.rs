//! Reno's window growth (RFC 5681): slow start from the RFC 6928 initial
//! window (with HyStart++, RFC 9406), congestion avoidance at one SMSS per
//! window, halving on loss. With the recovery episode of
//! `connection/recovery.rs` this is NewReno (RFC 6582).

use super::hystart::{HyStart, Step};
use super::{
    AckSample, CongestionAlgorithm, CongestionControl, IdleRestart, SlowStartExit, initial_window,
};
use crate::time::{Duration, Instant};

/// Reno's state.
#[derive(Clone, Debug)]
pub(crate) struct Reno {
    mss: u32,
    cwnd: u32,
    ssthresh: u32,
    /// Bytes acked toward the next congestion-avoidance increase.
    acked_ca: u32,
    /// (cwnd, ssthresh, HyStart++) before the last reduction, for an undo.
    before_reduction: Option<(u32, u32, HyStart)>,
    hystart: HyStart,
    idle: IdleRestart,
}

impl Reno {
    pub(crate) fn new(mss: u32) -> Self {
        let mss = mss.max(1);
        Reno {
            mss,
            cwnd: initial_window(mss),
            ssthresh: u32::MAX,
            acked_ca: 0,
            before_reduction: None,
            hystart: HyStart::default(),
            idle: IdleRestart::default(),
        }
    }

    /// RFC 5681 §3.1 equation 4: ssthresh = max(FlightSize / 2, 2·SMSS),
    /// FlightSize capped at cwnd: what limited transmit sent beyond cwnd
    /// does not count (§3.2 step 2), nor SACKed data above a hole that held
    /// SND.UNA back while the pipe let new data out (as CUBIC's).
    fn back_off(&mut self, flight: u32, rto: bool) {
        self.before_reduction = Some((self.cwnd, self.ssthresh, self.hystart));
        self.hystart.on_reduction(rto);
        self.ssthresh = (flight.min(self.cwnd) / 2).max(2 * self.mss);
        self.acked_ca = 0;
    }
}

impl CongestionControl for Reno {
    fn on_ack(&mut self, a: &AckSample) {
        let (acked, flight_before) = (a.newly_acked, a.flight_before);
        if self.cwnd < self.ssthresh {
            // Slow start with HyStart++ (RFC 9406), which counts every newly
            // acknowledged byte (RFC 3465 with no limit L, as Linux's
            // `tcp_slow_start`: stretch ACKs from batched receive or GRO are
            // normal). Bursts stay bounded by the transmit cap per wake.
            let step = self.hystart.on_ack(a);
            // RFC 7661 (as Linux's tcp_is_cwnd_limited): grow only while the
            // window is being used; a flight held down by the receiver's window
            // or the application must not inflate cwnd without bound.
            match step {
                Step::EnterCa => self.ssthresh = self.cwnd,
                Step::Grow(_) if flight_before.saturating_mul(2) < self.cwnd => {}
                Step::Grow(n) => self.cwnd = self.cwnd.saturating_add(n),
            }
        } else {
            if flight_before.saturating_add(self.mss) < self.cwnd {
                return;
            }
            // Congestion avoidance: one SMSS per cwnd of data acked.
            self.acked_ca = self.acked_ca.saturating_add(acked);
            if self.acked_ca >= self.cwnd {
                self.acked_ca -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(self.mss);
            }
        }
    }

    fn on_congestion_event(&mut self, _now: Instant, flight: u32) {
        self.back_off(flight, false);
        self.cwnd = self.ssthresh;
    }

    fn on_rto(&mut self, _now: Instant, flight: u32) {
        // RFC 5681 §3.1: after an RTO, cwnd = 1 segment (the loss window).
        self.back_off(flight, true);
        self.cwnd = self.mss;
    }

    fn on_spurious_undo(&mut self) {
        if let Some((cwnd, ssthresh, hystart)) = self.before_reduction.take() {
            self.cwnd = self.cwnd.max(cwnd);
            self.ssthresh = ssthresh;
            self.hystart = hystart;
            self.acked_ca = 0;
        }
    }

    fn on_data_sent(&mut self, now: Instant, flight: u32, rto: Duration) {
        if self.idle.on_send(now, flight, rto) {
            // RFC 5681 §4.1: restart from min(cwnd, IW) after an idle RTO.
            self.cwnd = self.cwnd.min(initial_window(self.mss));
            self.acked_ca = 0;
        }
    }

    fn cwnd(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn set_cwnd(&mut self, cwnd: u32) {
        self.cwnd = cwnd.max(self.mss);
        self.acked_ca = 0;
    }

    fn set_mss(&mut self, mss: u32) {
        let mss = mss.max(1);
        if self.cwnd == initial_window(self.mss) {
            self.cwnd = initial_window(mss);
        }
        self.mss = mss;
    }

    fn algorithm(&self) -> CongestionAlgorithm {
        CongestionAlgorithm::NewReno
    }

    fn slow_start_exit(&self) -> SlowStartExit {
        self.hystart.exit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Instant = Instant::ZERO;

    /// An ACK of `acked` bytes of a flight of `flight` bytes, no RTT sample.
    fn ack(acked: u32, flight: u32) -> AckSample {
        AckSample {
            now: NOW,
            ack: crate::seq::SeqNum::new(acked),
            snd_nxt: crate::seq::SeqNum::new(flight),
            newly_acked: acked,
            flight_before: flight,
            rtt_sample: None,
        }
    }

    #[test]
    fn initial_window_follows_rfc_6928() {
        assert_eq!(initial_window(1460), 14_600);
        assert_eq!(initial_window(536), 5_360);
        assert_eq!(initial_window(9000), 18_000);
    }

    #[test]
    fn slow_start_then_timeout() {
        let mut cc = Reno::new(1000);
        let w = cc.cwnd();
        cc.on_ack(&ack(1000, 10_000));
        assert_eq!(cc.cwnd(), w + 1000);
        cc.on_ack(&ack(9000, 11_000));
        cc.on_rto(NOW, 20_000);
        assert_eq!(cc.cwnd(), 1000);
        assert_eq!(cc.ssthresh(), 10_000);
    }

    #[test]
    fn cwnd_does_not_grow_when_the_flight_does_not_use_it() {
        let mut cc = Reno::new(1000);
        let w = cc.cwnd();
        // A receiver-limited flight of 2 segments while cwnd is 10.
        for _ in 1..100u32 {
            cc.on_ack(&ack(1000, 2000));
        }
        assert_eq!(cc.cwnd(), w);
        // A full flight grows it again.
        cc.on_ack(&ack(1000, w));
        assert_eq!(cc.cwnd(), w + 1000);
    }

    #[test]
    fn slow_start_takes_a_stretch_ack_whole() {
        let mut cc = Reno::new(1000);
        let w = cc.cwnd();
        cc.on_ack(&ack(10_000, 10_000));
        assert_eq!(cc.cwnd(), w + 10_000);
    }

    #[test]
    fn congestion_avoidance_adds_one_mss_per_window() {
        let mut cc = Reno::new(1000);
        cc.on_ack(&ack(10_000, 10_000));
        cc.on_congestion_event(NOW, 20_000);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (10_000, 10_000));
        for _ in 0..9 {
            cc.on_ack(&ack(1000, 10_000));
        }
        assert_eq!(cc.cwnd(), 10_000);
        cc.on_ack(&ack(1000, 10_000));
        assert_eq!(cc.cwnd(), 11_000);
    }

    #[test]
    fn flight_beyond_cwnd_does_not_count() {
        // Limited transmit (RFC 5681 §3.2 step 2) or SACKed data above a
        // hole: FlightSize is capped at cwnd.
        let mut cc = Reno::new(1000);
        cc.on_congestion_event(NOW, 40_000);
        assert_eq!(cc.ssthresh(), 5_000);
    }

    #[test]
    fn undo_restores_the_window_before_the_reduction() {
        let mut cc = Reno::new(1000);
        cc.on_ack(&ack(10_000, 10_000));
        let (w, s) = (cc.cwnd(), cc.ssthresh());
        cc.on_congestion_event(NOW, w);
        assert!(cc.cwnd() < w);
        cc.on_spurious_undo();
        assert_eq!((cc.cwnd(), cc.ssthresh()), (w, s));
        // Nothing to undo twice.
        cc.on_spurious_undo();
        assert_eq!((cc.cwnd(), cc.ssthresh()), (w, s));
    }
}
