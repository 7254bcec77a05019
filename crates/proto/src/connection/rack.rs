//! RACK, time-based loss detection (RFC 8985 §6): a segment is lost when
//! one sent after it was delivered and a reordering window has passed since
//! it was sent, rather than when three duplicate ACKs arrived. It finds lost
//! retransmissions and losses at the end of a flight as well, which counting
//! duplicate ACKs cannot. Used on connections with SACK; peers without it
//! keep NewReno's duplicate-ACK counting (`recovery.rs`).
//!
//! The state here is RACK's; the per-segment times are the scoreboard's
//! (`sent.rs`), which does the scan of step 5.

use super::sent::{Scoreboard, SentRange};
use crate::seq::SeqNum;
use crate::time::{Duration, Instant};

/// RACK.reo_wnd_persist's start (RFC 8985 §6.2 step 4): how many recovery
/// episodes a widened reordering window outlives.
const REO_WND_PERSIST: u32 = 16;

/// The RACK state of one connection (RFC 8985 §6.1).
#[derive(Clone, Debug)]
pub(crate) struct Rack {
    /// RACK.xmit_ts and RACK.end_seq: the latest transmission that is known
    /// delivered (acknowledged or SACKed), and its end.
    xmit_ts: Option<Instant>,
    end_seq: SeqNum,
    /// RACK.rtt: the RTT of that transmission.
    rtt: Duration,
    /// RACK.fack: the highest end of a delivered segment.
    fack: Option<SeqNum>,
    /// The smallest RTT measured (RFC 8985's min_RTT; Linux keeps a 300 s
    /// window, which on most connections is the lifetime).
    min_rtt: Option<Duration>,
    /// RACK.reordering_seen: a segment that was never retransmitted was
    /// delivered below RACK.fack.
    reordering_seen: bool,
    /// The farthest a never-retransmitted segment was delivered below
    /// RACK.fack, in bytes (the reordering degree).
    reorder_distance: u32,
    /// RACK.reo_wnd_mult and RACK.reo_wnd_persist (§6.2 step 4).
    reo_wnd_mult: u32,
    reo_wnd_persist: u32,
    /// RACK.dsack_round: the SND.MAX when the last D-SACK widened the
    /// window; one widening per round trip.
    dsack_round: Option<SeqNum>,
}

impl Default for Rack {
    fn default() -> Self {
        Rack {
            xmit_ts: None,
            end_seq: SeqNum::new(0),
            rtt: Duration::ZERO,
            fack: None,
            min_rtt: None,
            reordering_seen: false,
            reorder_distance: 0,
            reo_wnd_mult: 1,
            reo_wnd_persist: 0,
            dsack_round: None,
        }
    }
}

/// What an ACK tells about whether a delivered retransmission was the one
/// delivered (RFC 8985 §6.2 step 1).
#[derive(Clone, Copy, Debug)]
pub(crate) struct AckInfo {
    pub(crate) now: Instant,
    /// The echoed timestamp, on our 1 ms clock (TSecr less our offset).
    pub(crate) echo_ms: Option<u32>,
}

impl Rack {
    /// An RTT sample from any source (the timed segment or TSecr).
    pub(crate) fn on_rtt_sample(&mut self, rtt: Duration) {
        self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
    }

    /// The smallest RTT seen.
    pub(crate) fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    /// The reordering degree in segments of `smss` bytes: 3 (DupThresh)
    /// until reordering further than that is seen, at most 300 (Linux's
    /// `tcp_max_reordering`).
    pub(crate) fn reordering(&self, smss: u32) -> u32 {
        let segs = self.reorder_distance.div_ceil(smss.max(1));
        segs.clamp(3, 300)
    }

    /// Reordering was seen on the connection.
    pub(crate) fn reordering_seen(&self) -> bool {
        self.reordering_seen
    }

    /// Steps 1 and 2 for one newly delivered entry (cumulatively or
    /// selectively), in sequence order.
    pub(crate) fn on_delivered(&mut self, r: &SentRange, ack: AckInfo) {
        // Step 2, RACK_detect_reordering.
        match self.fack {
            Some(f) if !r.end.after(f) => {
                if r.end.before(f) && r.transmits == 1 {
                    self.reordering_seen = true;
                    // From the segment's start to RACK.fack, in segments
                    // rounded up (Linux's tcp_check_sack_reordering).
                    let d = (f - r.start) as u32;
                    self.reorder_distance = self.reorder_distance.max(d);
                }
            }
            _ => self.fack = Some(r.end),
        }
        // Step 1, RACK_update: a retransmitted segment whose ACK may be for
        // an earlier transmission tells nothing about the latest one.
        let rtt = ack.now - r.last_sent;
        if r.transmits > 1 {
            let sent_ms = r.last_sent.as_millis() as u32;
            if ack
                .echo_ms
                .is_some_and(|e| (e.wrapping_sub(sent_ms) as i32) < 0)
            {
                return;
            }
            if self.min_rtt.is_some_and(|m| rtt < m) {
                return;
            }
        }
        self.rtt = rtt;
        let later = match self.xmit_ts {
            None => true,
            Some(x) => r.last_sent > x || (r.last_sent == x && r.end.after(self.end_seq)),
        };
        if later {
            self.xmit_ts = Some(r.last_sent);
            self.end_seq = r.end;
        }
    }

    /// A retransmission turned out spurious (a D-SACK, or the original's
    /// timestamp echoed): the path reorders, as Linux counts it
    /// (`tcp_check_sack_reordering` from a D-SACK); RACK's window opens from
    /// now on (§6.2 step 4's RACK.reordering_seen).
    pub(crate) fn on_spurious(&mut self) {
        self.reordering_seen = true;
    }

    /// Step 3 (RACK_update_reo_wnd, the D-SACK part): a D-SACK widens the
    /// reordering window by min_RTT/4, once per round trip, for the next 16
    /// recovery episodes.
    pub(crate) fn on_dsack(&mut self, snd_una: SeqNum, snd_max: SeqNum) {
        if self.dsack_round.is_some_and(|r| snd_una.after_eq(r)) {
            self.dsack_round = None;
        }
        if self.dsack_round.is_none() {
            self.dsack_round = Some(snd_max);
            self.reo_wnd_mult = self.reo_wnd_mult.saturating_add(1);
            self.reo_wnd_persist = REO_WND_PERSIST;
        }
    }

    /// A recovery episode ended: a widened window counts down to normal.
    pub(crate) fn on_recovery_end(&mut self) {
        if self.reo_wnd_persist > 0 {
            self.reo_wnd_persist -= 1;
            if self.reo_wnd_persist == 0 {
                self.reo_wnd_mult = 1;
            }
        }
    }

    /// RACK.reo_wnd (§6.2 step 4): zero while no reordering was seen and
    /// either a recovery episode is on or DupThresh segments are SACKed
    /// (as fast as duplicate-ACK counting); otherwise min_RTT/4 times the
    /// multiplier, never above SRTT.
    pub(crate) fn reo_wnd(
        &self,
        recovering: bool,
        dupthresh_sacked: bool,
        srtt: Duration,
    ) -> Duration {
        if !self.reordering_seen && (recovering || dupthresh_sacked) {
            return Duration::ZERO;
        }
        let Some(min_rtt) = self.min_rtt else {
            return Duration::ZERO;
        };
        (min_rtt / 4).saturating_mul(self.reo_wnd_mult).min(srtt)
    }

    /// Step 5 (RACK_detect_loss) over the scoreboard: marks what is lost
    /// and returns the bytes newly marked and the reordering timer's wait,
    /// if some segment is not overdue yet.
    pub(crate) fn detect_loss(
        &self,
        sent: &mut Scoreboard,
        reo_wnd: Duration,
        now: Instant,
    ) -> (u32, Option<Duration>) {
        let Some(x) = self.xmit_ts else {
            return (0, None);
        };
        sent.rack_detect_loss(x, self.end_seq, self.rtt + reo_wnd, now)
    }

    /// The reordering-window multiplier (for the stats).
    pub(crate) fn reo_wnd_mult(&self) -> u32 {
        self.reo_wnd_mult
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: u32) -> SeqNum {
        SeqNum::new(v)
    }

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn at(ms: u64) -> AckInfo {
        AckInfo {
            now: t(ms),
            echo_ms: None,
        }
    }

    /// Four segments sent at 0, 10, 20, 30 ms.
    fn board() -> Scoreboard {
        let mut s = Scoreboard::default();
        for i in 0..4u32 {
            s.on_send(n(i * 100), n((i + 1) * 100), t(u64::from(i) * 10));
        }
        s
    }

    #[test]
    fn a_segment_sent_before_a_delivered_one_is_lost_after_rtt_plus_reo_wnd() {
        let mut s = board();
        let mut rack = Rack::default();
        rack.on_rtt_sample(Duration::from_millis(40));
        // The third segment (sent at 20) is SACKed at 60: RACK.rtt = 40.
        s.on_sack(n(200), n(300), &mut |r| rack.on_delivered(r, at(60)));
        let reo = rack.reo_wnd(false, false, Duration::from_millis(40));
        assert_eq!(reo, Duration::from_millis(10), "min_RTT / 4");
        // Segment 0 was due at 0 + 40 + 10 = 50: lost. Segment 1 at 60: lost.
        let (lost, timer) = rack.detect_loss(&mut s, reo, t(60));
        assert_eq!((lost, timer), (200, None));
        // The fourth, sent after the delivered one, is not judged.
        assert_eq!(s.lost_bytes(), 200);
    }

    #[test]
    fn the_reordering_timer_waits_for_the_longest_remaining() {
        let mut s = board();
        let mut rack = Rack::default();
        rack.on_rtt_sample(Duration::from_millis(40));
        s.on_sack(n(200), n(300), &mut |r| rack.on_delivered(r, at(60)));
        // At 45 (an earlier clock, as if the ACK came then with RACK.rtt
        // 40): segment 0 due at 50, segment 1 at 60.
        let (lost, timer) = rack.detect_loss(&mut s, Duration::from_millis(10), t(45));
        assert_eq!((lost, timer), (0, Some(Duration::from_millis(15))));
    }

    #[test]
    fn reordering_seen_when_an_original_is_delivered_below_fack() {
        let mut s = board();
        let mut rack = Rack::default();
        s.on_sack(n(200), n(300), &mut |r| rack.on_delivered(r, at(60)));
        assert!(!rack.reordering_seen());
        s.on_sack(n(100), n(200), &mut |r| rack.on_delivered(r, at(61)));
        assert!(rack.reordering_seen());
        // With reordering seen the window stays open in recovery too.
        rack.on_rtt_sample(Duration::from_millis(40));
        assert_eq!(
            rack.reo_wnd(true, true, Duration::from_millis(40)),
            Duration::from_millis(10)
        );
    }

    #[test]
    fn no_reordering_and_dupthresh_sacked_means_no_window() {
        let mut rack = Rack::default();
        rack.on_rtt_sample(Duration::from_millis(40));
        assert_eq!(
            rack.reo_wnd(false, true, Duration::from_millis(40)),
            Duration::ZERO
        );
        assert_eq!(
            rack.reo_wnd(true, false, Duration::from_millis(40)),
            Duration::ZERO
        );
    }

    #[test]
    fn an_ack_of_a_retransmission_that_may_be_for_the_original_is_not_used() {
        let mut s = board();
        let mut rack = Rack::default();
        rack.on_rtt_sample(Duration::from_millis(40));
        // Segment 0 retransmitted at 50; a SACK of it at 55 (5 ms < min_RTT)
        // is the original's: RACK.xmit_ts stays unset.
        s.on_send(n(0), n(100), t(50));
        s.on_sack(n(0), n(100), &mut |r| rack.on_delivered(r, at(55)));
        let (lost, _) = rack.detect_loss(&mut s, Duration::ZERO, t(1000));
        assert_eq!(lost, 0);
        // A TSecr from before the retransmission says the same.
        let mut s = board();
        let mut rack = Rack::default();
        s.on_send(n(0), n(100), t(50));
        let info = AckInfo {
            now: t(200),
            echo_ms: Some(5),
        };
        s.on_sack(n(0), n(100), &mut |r| rack.on_delivered(r, info));
        assert_eq!(rack.detect_loss(&mut s, Duration::ZERO, t(1000)).0, 0);
    }

    #[test]
    fn dsack_widens_the_window_once_per_round_and_it_decays() {
        let mut rack = Rack::default();
        rack.on_rtt_sample(Duration::from_millis(40));
        let srtt = Duration::from_millis(100);
        rack.on_dsack(n(0), n(1000));
        rack.on_dsack(n(500), n(1000));
        assert_eq!(rack.reo_wnd_mult(), 2, "one widening per round");
        rack.on_dsack(n(1000), n(2000));
        assert_eq!(rack.reo_wnd_mult(), 3);
        assert_eq!(rack.reo_wnd(false, false, srtt), Duration::from_millis(30));
        // Capped at SRTT.
        assert_eq!(
            rack.reo_wnd(false, false, Duration::from_millis(20)),
            Duration::from_millis(20)
        );
        for _ in 0..REO_WND_PERSIST {
            rack.on_recovery_end();
        }
        assert_eq!(rack.reo_wnd_mult(), 1);
    }
}
