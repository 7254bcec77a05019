//! CUBIC (RFC 9438): in congestion avoidance the window follows a cubic
//! function of the time since the last congestion event, concave up to the
//! window where the loss happened (W_max) and convex beyond it, never slower
//! than Reno would be (the Reno-friendly region, §4.3). β = 0.7 on loss.
//! Slow start is Reno's with HyStart++ (RFC 9406).
//!
//! Windows are kept in bytes as `f64` (the RFC's formulas are in segments:
//! they are scaled by the MSS here); times in seconds as `f64`. No heap, no
//! clock: time comes in with each ACK.

use super::hystart::{HyStart, Step};
use super::{
    AckSample, CongestionAlgorithm, CongestionControl, IdleRestart, SlowStartExit, initial_window,
};
use crate::time::{Duration, Instant};

/// RFC 9438 §5: C = 0.4 (segments / s³).
const C: f64 = 0.4;
/// RFC 9438 §4.6: β_cubic = 0.7.
const BETA: f64 = 0.7;
/// RFC 9438 §4.3: α_cubic = 3(1 − β) / (1 + β), Reno's growth rate at
/// CUBIC's β (about 0.53).
const ALPHA: f64 = 3.0 * (1.0 - BETA) / (1.0 + BETA);

/// One congestion-avoidance epoch (RFC 9438 §4.2).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Epoch {
    /// t_epoch: when the epoch began (shifted forward by application-limited
    /// periods).
    start: Instant,
    /// K in seconds: when W_cubic reaches W_max again.
    k: f64,
    /// cwnd_epoch in bytes: cwnd when the epoch began.
    cwnd_epoch: f64,
    /// W_est in bytes: the Reno-friendly estimate (§4.3).
    w_est: f64,
}

/// Everything an undo restores (RFC 9438 §4.9).
#[derive(Clone, Copy, Debug)]
struct Saved {
    cwnd: f64,
    ssthresh: u32,
    w_max: f64,
    cwnd_prior: f64,
    epoch: Option<Epoch>,
    hystart: HyStart,
}

/// CUBIC's state.
#[derive(Clone, Debug)]
pub(crate) struct Cubic {
    mss: u32,
    /// cwnd in bytes, with its fraction.
    cwnd: f64,
    ssthresh: u32,
    /// W_max in bytes: cwnd before the last reduction (after fast
    /// convergence); 0 until the first, and after an RTO (§4.8: then the
    /// next epoch takes cwnd_epoch with K = 0).
    w_max: f64,
    /// cwnd_prior: cwnd before the last reduction, where the Reno-friendly
    /// estimate's α becomes 1 (§4.3).
    cwnd_prior: f64,
    /// The current epoch; `None` until the next ACK in congestion avoidance.
    epoch: Option<Epoch>,
    /// Since when the flight has not filled cwnd (RFC 7661): that time is
    /// left out of the epoch, as Linux's `bictcp_cwnd_event` does on
    /// `CA_EVENT_TX_START`, so an application-limited stretch does not
    /// leave a stale epoch that jumps cwnd when the flight grows again.
    app_limited_since: Option<Instant>,
    /// A smoothed RTT from the samples (the RTT of W_cubic(t + RTT), §4.2).
    srtt: Option<Duration>,
    saved: Option<Saved>,
    hystart: HyStart,
    idle: IdleRestart,
}

impl Cubic {
    pub(crate) fn new(mss: u32) -> Self {
        let mss = mss.max(1);
        Cubic {
            mss,
            cwnd: f64::from(initial_window(mss)),
            ssthresh: u32::MAX,
            w_max: 0.0,
            cwnd_prior: 0.0,
            epoch: None,
            app_limited_since: None,
            srtt: None,
            saved: None,
            hystart: HyStart::default(),
            idle: IdleRestart::default(),
        }
    }

    fn mss_f(&self) -> f64 {
        f64::from(self.mss)
    }

    /// RFC 9438 §4.2 eq. 2: K = ∛((W_max − cwnd_epoch) / C), in segments.
    fn k(&self, w_max: f64, cwnd_epoch: f64) -> f64 {
        ((w_max - cwnd_epoch).max(0.0) / self.mss_f() / C).cbrt()
    }

    /// RFC 9438 §4.2 eq. 1: W_cubic(t) = C·(t − K)³ + W_max, in bytes.
    fn w_cubic(&self, t: f64, k: f64) -> f64 {
        let d = t - k;
        C * d * d * d * self.mss_f() + self.w_max
    }

    /// Saves the state an undo restores, and tells HyStart++ slow start
    /// ended.
    fn save(&mut self, rto: bool) {
        self.saved = Some(Saved {
            cwnd: self.cwnd,
            ssthresh: self.ssthresh,
            w_max: self.w_max,
            cwnd_prior: self.cwnd_prior,
            epoch: self.epoch,
            hystart: self.hystart,
        });
        self.hystart.on_reduction(rto);
    }

    /// RFC 9438 §4.6: ssthresh = max(β·FlightSize, 2·SMSS) (RFC 5681 §3.1
    /// eq. 4 with CUBIC's β). FlightSize is capped at cwnd: what limited
    /// transmit sent beyond it does not count (RFC 5681 §3.2 step 2), nor
    /// what the peer SACKed above a hole that kept SND.UNA back while the
    /// pipe let new data out (§4.6 allows cwnd here, as Linux uses, given
    /// the cwnd-limited check this controller keeps).
    fn reduced(&self, flight: u32) -> u32 {
        let flight = f64::from(flight).min(self.cwnd);
        ((flight * BETA) as u32).max(2 * self.mss)
    }

    /// An ACK in congestion avoidance (RFC 9438 §4.2–§4.5).
    fn avoid(&mut self, a: &AckSample) {
        let now = a.now;
        let epoch = match self.epoch {
            Some(e) => e,
            None => {
                // §4.2: a new epoch at the first ACK of congestion avoidance.
                // After an RTO (§4.8), or with no loss yet (HyStart++ left
                // slow start), W_max is cwnd_epoch and K = 0.
                if self.w_max < self.cwnd {
                    self.w_max = self.cwnd;
                }
                let e = Epoch {
                    start: now,
                    k: self.k(self.w_max, self.cwnd),
                    cwnd_epoch: self.cwnd,
                    w_est: self.cwnd,
                };
                tracing::debug!(
                    cwnd = self.cwnd as u32,
                    w_max = self.w_max as u32,
                    k = e.k,
                    "CUBIC: new epoch"
                );
                self.epoch = Some(e);
                e
            }
        };
        let mut epoch = epoch;
        let t = now.saturating_duration_since(epoch.start).as_secs_f64();
        let rtt = self.srtt.unwrap_or_default().as_secs_f64();
        let acked = f64::from(a.newly_acked);
        // §4.3: the Reno-friendly estimate grows by α_cubic segments per
        // window acknowledged; α = 1 once it passed cwnd_prior.
        let alpha = if epoch.w_est >= self.cwnd_prior {
            1.0
        } else {
            ALPHA
        };
        epoch.w_est += alpha * self.mss_f() * acked / self.cwnd;
        self.epoch = Some(epoch);
        let w_cubic = self.w_cubic(t, epoch.k);
        if w_cubic < epoch.w_est {
            // §4.3: the Reno-friendly region: cwnd follows W_est.
            self.cwnd = self.cwnd.max(epoch.w_est);
            return;
        }
        // §4.4 (concave) / §4.5 (convex): grow toward target =
        // W_cubic(t + RTT), clamped to [cwnd, 1.5·cwnd] (§4.2), by
        // (target − cwnd) / cwnd per segment acknowledged.
        let target = self
            .w_cubic(t + rtt, epoch.k)
            .clamp(self.cwnd, 1.5 * self.cwnd);
        self.cwnd += (target - self.cwnd) * acked / self.cwnd;
    }
}

impl CongestionControl for Cubic {
    fn on_ack(&mut self, a: &AckSample) {
        if let Some(r) = a.rtt_sample {
            // RFC 6298's gain of 1/8.
            self.srtt = Some(self.srtt.map_or(r, |s| (s * 7 + r) / 8));
        }
        if self.cwnd < f64::from(self.ssthresh) {
            // Slow start with HyStart++ (RFC 9438 §4.10, RFC 9406), grown
            // only while cwnd-limited (RFC 7661; see Reno's).
            match self.hystart.on_ack(a) {
                Step::EnterCa => self.ssthresh = self.cwnd as u32,
                Step::Grow(_) if a.flight_before.saturating_mul(2) < self.cwnd as u32 => {}
                Step::Grow(n) => self.cwnd += f64::from(n),
            }
            return;
        }
        // RFC 7661 / RFC 9438 §5.8: no growth while the flight does not fill
        // cwnd; the time it lasts is left out of the epoch.
        if f64::from(a.flight_before.saturating_add(self.mss)) < self.cwnd {
            self.app_limited_since.get_or_insert(a.now);
            return;
        }
        if let Some(since) = self.app_limited_since.take()
            && let Some(e) = self.epoch.as_mut()
        {
            e.start += a.now.saturating_duration_since(since);
        }
        self.avoid(a);
    }

    fn on_congestion_event(&mut self, _now: Instant, flight: u32) {
        self.save(false);
        // RFC 9438 §4.7, fast convergence: a loss below the last W_max means
        // the share is shrinking; release some by remembering less.
        self.w_max = if self.cwnd < self.w_max {
            self.cwnd * (1.0 + BETA) / 2.0
        } else {
            self.cwnd
        };
        // §4.6: cwnd_prior for the Reno-friendly region; ssthresh = β·flight.
        self.cwnd_prior = self.cwnd;
        self.ssthresh = self.reduced(flight);
        self.cwnd = f64::from(self.ssthresh);
        self.epoch = None;
        self.app_limited_since = None;
        tracing::debug!(
            ssthresh = self.ssthresh,
            w_max = self.w_max as u32,
            "CUBIC: congestion event"
        );
    }

    fn on_rto(&mut self, _now: Instant, flight: u32) {
        self.save(true);
        // RFC 9438 §4.8: ssthresh as on loss, cwnd = 1 SMSS (RFC 5681); the
        // first epoch after it starts with W_max = cwnd_epoch and K = 0.
        self.ssthresh = self.reduced(flight);
        self.cwnd_prior = self.cwnd;
        self.cwnd = self.mss_f();
        self.w_max = 0.0;
        self.epoch = None;
        self.app_limited_since = None;
    }

    fn on_spurious_undo(&mut self) {
        // RFC 9438 §4.9: restore what the reduction changed.
        if let Some(s) = self.saved.take() {
            self.cwnd = self.cwnd.max(s.cwnd);
            self.ssthresh = s.ssthresh;
            self.w_max = s.w_max;
            self.cwnd_prior = s.cwnd_prior;
            self.epoch = s.epoch;
            self.hystart = s.hystart;
            self.app_limited_since = None;
        }
    }

    fn on_data_sent(&mut self, now: Instant, flight: u32, rto: Duration) {
        if self.idle.on_send(now, flight, rto) {
            // RFC 5681 §4.1: restart from min(cwnd, IW) after an idle RTO.
            // The epoch restarts too: the idle time says nothing about the
            // path's capacity.
            self.cwnd = self.cwnd.min(f64::from(initial_window(self.mss)));
            self.epoch = None;
            self.app_limited_since = None;
        }
    }

    fn cwnd(&self) -> u32 {
        self.cwnd as u32
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn set_cwnd(&mut self, cwnd: u32) {
        self.cwnd = f64::from(cwnd.max(self.mss));
    }

    fn set_mss(&mut self, mss: u32) {
        let mss = mss.max(1);
        if self.cwnd as u32 == initial_window(self.mss) {
            self.cwnd = f64::from(initial_window(mss));
        }
        self.mss = mss;
    }

    fn algorithm(&self) -> CongestionAlgorithm {
        CongestionAlgorithm::Cubic
    }

    fn slow_start_exit(&self) -> SlowStartExit {
        self.hystart.exit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seq::SeqNum;

    const MSS: u32 = 1000;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    /// An ACK at `ms` of `acked` bytes of a full flight of `flight`.
    fn ack(ms: u64, acked: u32, flight: u32) -> AckSample {
        AckSample {
            now: at(ms),
            ack: SeqNum::new(0),
            snd_nxt: SeqNum::new(0),
            newly_acked: acked,
            flight_before: flight,
            rtt_sample: None,
        }
    }

    /// CUBIC at cwnd 100 segments after a loss there: W_max = 100 segments,
    /// cwnd = ssthresh = 70.
    fn after_loss() -> Cubic {
        let mut cc = Cubic::new(MSS);
        cc.set_cwnd(100 * MSS);
        cc.on_congestion_event(at(0), 100 * MSS);
        cc
    }

    #[test]
    fn loss_reduces_by_beta_0_7() {
        let cc = after_loss();
        assert_eq!(cc.ssthresh(), 70 * MSS);
        assert_eq!(cc.cwnd(), 70 * MSS);
        assert_eq!(cc.w_max, f64::from(100 * MSS));
        // FlightSize beyond cwnd (limited transmit, SACKed data above a
        // hole) does not count.
        let mut cc = Cubic::new(MSS);
        cc.on_congestion_event(at(0), 40 * MSS);
        assert_eq!(cc.ssthresh(), initial_window(MSS) * 7 / 10);
        // Never below 2·SMSS.
        let mut cc = Cubic::new(MSS);
        cc.on_congestion_event(at(0), 2 * MSS);
        assert_eq!(cc.ssthresh(), 2 * MSS);
    }

    #[test]
    fn k_and_w_cubic_follow_the_rfc_formula() {
        let mut cc = after_loss();
        cc.on_ack(&ack(0, MSS, 70 * MSS));
        let e = cc.epoch.expect("an epoch began");
        // K = ∛((100 − 70) / 0.4) = ∛75 ≈ 4.217 s.
        assert!((e.k - 75f64.cbrt()).abs() < 1e-9, "K = {}", e.k);
        assert!((e.k - 4.2172).abs() < 1e-3);
        // W_cubic(t) = 0.4·(t − K)³ + 100 segments: 70 at 0, 100 at K,
        // 100 + 0.4·(10 − K)³ at 10 s.
        for t in [0.0, 1.0, 2.5, e.k, 6.0, 10.0] {
            let want = (C * (t - e.k).powi(3) + 100.0) * f64::from(MSS);
            assert!((cc.w_cubic(t, e.k) - want).abs() < 1e-6);
        }
        assert!((cc.w_cubic(0.0, e.k) - 70_000.0).abs() < 1e-6);
        assert!((cc.w_cubic(e.k, e.k) - 100_000.0).abs() < 1e-6);
        assert!(
            (cc.w_cubic(10.0, e.k) - (100.0 + 0.4 * (10.0 - e.k).powi(3)) * 1000.0).abs() < 1e-6
        );
    }

    /// Drives CA with one full window of ACKs every `rtt_ms` for `ms`;
    /// returns the cwnd in segments at the end.
    fn run(cc: &mut Cubic, from_ms: u64, ms: u64, rtt_ms: u64) -> f64 {
        let mut now = from_ms;
        while now < from_ms + ms {
            let n = cc.cwnd() / MSS;
            for i in 0..n {
                // The sender keeps the window full: the flight is cwnd.
                let mut a = ack(now + rtt_ms * u64::from(i) / u64::from(n), MSS, cc.cwnd());
                a.rtt_sample = Some(Duration::from_millis(rtt_ms));
                cc.on_ack(&a);
            }
            now += rtt_ms;
        }
        cc.cwnd / f64::from(MSS)
    }

    #[test]
    fn concave_then_plateau_then_convex() {
        // A long RTT (1 s) keeps the Reno-friendly estimate below W_cubic:
        // the window tracks W_cubic(t + RTT) about one RTT ahead.
        let mut cc = after_loss();
        let w2 = run(&mut cc, 0, 2_000, 1_000);
        let k = cc.epoch.unwrap().k;
        // Concave: well above 70 after 2 s, below W_max.
        let expect = 100.0 + C * (2.0 - k).powi(3);
        assert!(
            w2 > 80.0 && w2 < 100.0,
            "cwnd {w2} (W_cubic(2 s) = {expect})"
        );
        assert!(
            (w2 - expect).abs() < 6.0,
            "cwnd {w2} vs W_cubic(2) {expect}"
        );
        // Near K, the plateau at W_max.
        let wk = run(&mut cc, 2_000, 2_000, 1_000);
        assert!((wk - 100.0).abs() < 3.0, "plateau {wk}");
        // Convex: beyond W_max and accelerating.
        let w8 = run(&mut cc, 4_000, 4_000, 1_000);
        let w10 = run(&mut cc, 8_000, 2_000, 1_000);
        assert!(w8 > 110.0, "convex {w8}");
        assert!(w10 - w8 > w8 - 100.0 - 10.0, "accelerates: {w8} → {w10}");
    }

    #[test]
    fn growth_is_clamped_to_half_a_window_per_rtt() {
        // Far in the convex region, target is capped at 1.5·cwnd: at most
        // +50 % per window acknowledged.
        let mut cc = after_loss();
        let w = run(&mut cc, 0, 1_000, 1_000);
        let mut cc2 = cc.clone();
        let before = cc2.cwnd;
        // One window of ACKs 60 s later (t ≫ K).
        let n = cc2.cwnd() / MSS;
        for _ in 0..n {
            cc2.on_ack(&ack(61_000, MSS, cc2.cwnd()));
        }
        assert!(
            cc2.cwnd <= 1.5 * before + 1.0,
            "{w}: {} > 1.5·{before}",
            cc2.cwnd
        );
        assert!(cc2.cwnd > 1.3 * before);
    }

    #[test]
    fn reno_friendly_region_on_a_short_rtt() {
        // At 1 ms RTT W_cubic hardly moves in 50 ms while W_est grows by
        // α_cubic ≈ 0.53 segments per RTT: cwnd follows W_est.
        let mut cc = after_loss();
        let w = run(&mut cc, 0, 50, 1);
        let e = cc.epoch.unwrap();
        assert!(cc.w_cubic(0.05, e.k) < e.w_est);
        // 50 RTTs at α_cubic segments each (still below cwnd_prior = 100,
        // where α would become 1).
        let reno = 70.0 + 50.0 * ALPHA;
        assert!((w - reno).abs() < 2.0, "cwnd {w}, Reno-friendly {reno}");
        // Past cwnd_prior, α = 1: one segment per RTT.
        let w2 = run(&mut cc, 50, 50, 1);
        let w3 = run(&mut cc, 100, 10, 1);
        assert!(w2 > 100.0, "{w2}");
        assert!((w3 - w2 - 10.0).abs() < 1.0, "{w2} → {w3}");
        assert!((ALPHA - 0.5294).abs() < 1e-3);
    }

    #[test]
    fn fast_convergence_lowers_w_max() {
        let mut cc = after_loss();
        // A second loss at 80 segments, below W_max = 100.
        cc.set_cwnd(80 * MSS);
        cc.on_congestion_event(at(1_000), 80 * MSS);
        assert!((cc.w_max - 80_000.0 * (1.0 + BETA) / 2.0).abs() < 1e-6);
        assert_eq!(cc.ssthresh(), 56 * MSS);
        // A loss above W_max keeps it at cwnd.
        cc.set_cwnd(90 * MSS);
        cc.on_congestion_event(at(2_000), 90 * MSS);
        assert_eq!(cc.w_max, 90_000.0);
    }

    #[test]
    fn no_growth_when_not_cwnd_limited_and_the_time_is_left_out() {
        let mut cc = after_loss();
        cc.on_ack(&ack(0, MSS, 70 * MSS));
        let e0 = cc.epoch.unwrap();
        let w = cc.cwnd;
        // Ten seconds of ACKs for a flight of 10 segments: no growth.
        for s in 1..=10 {
            cc.on_ack(&ack(s * 1_000, MSS, 10 * MSS));
        }
        assert_eq!(cc.cwnd, w);
        // cwnd-limited again: the epoch was shifted by the 10 s.
        cc.on_ack(&ack(11_000, MSS, cc.cwnd()));
        let e1 = cc.epoch.unwrap();
        assert_eq!(e1.start, e0.start + Duration::from_secs(10));
    }

    #[test]
    fn rto_sets_one_segment_and_resets_w_max_and_the_epoch() {
        let mut cc = after_loss();
        run(&mut cc, 0, 2_000, 100);
        cc.on_rto(at(3_000), 50 * MSS);
        assert_eq!(cc.cwnd(), MSS);
        assert_eq!(cc.ssthresh(), 35 * MSS);
        assert!(cc.epoch.is_none());
        assert_eq!(cc.w_max, 0.0);
        // Slow start to ssthresh, then an epoch with W_max = cwnd_epoch, K = 0.
        for i in 0..40 {
            cc.on_ack(&ack(3_100 + i, MSS, cc.cwnd()));
        }
        let e = cc.epoch.expect("congestion avoidance");
        assert_eq!(e.k, 0.0);
        assert_eq!(cc.w_max, e.cwnd_epoch);
    }

    #[test]
    fn undo_restores_the_state_before_the_reduction() {
        let mut cc = after_loss();
        run(&mut cc, 0, 3_000, 100);
        let before = (cc.cwnd(), cc.ssthresh(), cc.w_max, cc.epoch);
        cc.on_congestion_event(at(3_000), cc.cwnd());
        assert!(cc.cwnd() < before.0);
        cc.on_spurious_undo();
        assert_eq!((cc.cwnd(), cc.ssthresh(), cc.w_max, cc.epoch), before);
        // K and the epoch start came back with the epoch.
        cc.on_spurious_undo();
        assert_eq!((cc.cwnd(), cc.ssthresh(), cc.w_max, cc.epoch), before);
        // After an RTO too.
        cc.on_rto(at(3_500), cc.cwnd());
        cc.on_spurious_undo();
        assert_eq!((cc.cwnd(), cc.ssthresh(), cc.w_max, cc.epoch), before);
    }

    #[test]
    fn idle_restart_takes_cwnd_down_to_the_initial_window() {
        let mut cc = after_loss();
        let rto = Duration::from_millis(300);
        cc.on_data_sent(at(0), 0, rto);
        assert_eq!(cc.cwnd(), 70 * MSS);
        // Idle for less than an RTO: nothing.
        cc.on_data_sent(at(200), 0, rto);
        assert_eq!(cc.cwnd(), 70 * MSS);
        // Data in flight: not idle.
        cc.on_data_sent(at(1_000), 5 * MSS, rto);
        assert_eq!(cc.cwnd(), 70 * MSS);
        // Idle longer than the RTO with nothing in flight.
        cc.on_data_sent(at(1_400), 0, rto);
        assert_eq!(cc.cwnd(), initial_window(MSS));
        assert_eq!(cc.ssthresh(), 70 * MSS);
    }

    #[test]
    fn slow_start_with_hystart_reports_the_exit() {
        let mut cc = Cubic::new(MSS);
        assert_eq!(cc.slow_start_exit(), SlowStartExit::None);
        cc.on_congestion_event(at(0), 10 * MSS);
        assert_eq!(cc.slow_start_exit(), SlowStartExit::Loss);
        let mut cc = Cubic::new(MSS);
        cc.on_rto(at(0), 10 * MSS);
        assert_eq!(cc.slow_start_exit(), SlowStartExit::Rto);
    }
}
