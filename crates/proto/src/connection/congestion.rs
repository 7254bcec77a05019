//! Congestion control: RFC 5681 slow start and congestion avoidance from the
//! RFC 6928 initial window, RFC 3042 limited transmit, and NewReno fast
//! retransmit / fast recovery (RFC 6582).

use crate::seq::SeqNum;

/// What the sender must do after an ACK was processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AckAction {
    /// Nothing beyond sending what the window now allows.
    None,
    /// Retransmit the first unacknowledged segment now (fast retransmit, or a
    /// partial ACK during recovery).
    RetransmitFirst,
}

/// NewReno state.
#[derive(Clone, Debug)]
pub(crate) struct NewReno {
    mss: u32,
    cwnd: u32,
    ssthresh: u32,
    /// Bytes acked toward the next congestion-avoidance increase.
    acked_ca: u32,
    dupacks: u32,
    /// RFC 6582 "recover": the highest sequence sent when recovery (or an
    /// RTO) began; `None` once SND.UNA has passed it, so it never goes stale
    /// across the sequence-space wrap.
    recover: Option<SeqNum>,
    in_recovery: bool,
}

impl NewReno {
    /// RFC 6928: IW = min(10·MSS, max(2·MSS, 14600)).
    pub(crate) fn new(mss: u32) -> Self {
        let mss = mss.max(1);
        NewReno {
            mss,
            cwnd: initial_window(mss),
            ssthresh: u32::MAX,
            acked_ca: 0,
            dupacks: 0,
            recover: None,
            in_recovery: false,
        }
    }

    pub(crate) fn set_mss(&mut self, mss: u32) {
        let mss = mss.max(1);
        if self.cwnd == initial_window(self.mss) {
            self.cwnd = initial_window(mss);
        }
        self.mss = mss;
    }

    /// The loss window, one segment (RFC 5681 §3.1): the initial window after
    /// a handshake that needed retransmissions.
    pub(crate) fn set_loss_window(&mut self) {
        self.cwnd = self.mss;
    }

    pub(crate) fn cwnd(&self) -> u32 {
        self.cwnd
    }

    pub(crate) fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    pub(crate) fn in_recovery(&self) -> bool {
        self.in_recovery
    }

    /// RFC 3042: the first two duplicate ACKs each allow one new segment beyond
    /// cwnd. Returns the extra allowance in bytes.
    pub(crate) fn limited_transmit_allowance(&self) -> u32 {
        if self.in_recovery {
            0
        } else {
            self.dupacks.min(2) * self.mss
        }
    }

    /// An ACK that advanced SND.UNA by `acked` bytes to `ack`.
    pub(crate) fn on_new_ack(&mut self, ack: SeqNum, acked: u32, flight_before: u32) -> AckAction {
        self.dupacks = 0;
        let passed_recover = self.recover.is_none_or(|r| ack.after_eq(r));
        if passed_recover {
            self.recover = None;
        }
        if self.in_recovery {
            if passed_recover {
                // RFC 6582 §3.2 step 3, full ACK: deflate the window.
                self.cwnd = self
                    .ssthresh
                    .min(flight_before.saturating_sub(acked).max(self.mss) + self.mss);
                self.in_recovery = false;
                self.acked_ca = 0;
                return AckAction::None;
            }
            // Partial ACK: retransmit the next hole, deflate by the amount acked,
            // add back one MSS if at least one MSS was acked.
            self.cwnd = self.cwnd.saturating_sub(acked);
            if acked >= self.mss {
                self.cwnd += self.mss;
            }
            self.cwnd = self.cwnd.max(self.mss);
            return AckAction::RetransmitFirst;
        }
        if self.cwnd < self.ssthresh {
            // RFC 7661 (as Linux's tcp_is_cwnd_limited): grow only while the
            // window is being used; a flight held down by the receiver's window
            // or the application must not inflate cwnd without bound.
            if flight_before.saturating_mul(2) < self.cwnd {
                return AckAction::None;
            }
            // Slow start counts every newly acknowledged byte (Linux's
            // `tcp_slow_start`; RFC 3465 with no limit L): stretch ACKs from
            // batched receive or GRO are normal, and capping each ACK at SMSS
            // (RFC 5681 §3.1) would slow start down by the stretch factor.
            // Bursts stay bounded by the transmit cap per wake.
            self.cwnd = self.cwnd.saturating_add(acked);
        } else {
            if flight_before.saturating_add(self.mss) < self.cwnd {
                return AckAction::None;
            }
            // Congestion avoidance: one SMSS per cwnd of data acked.
            self.acked_ca = self.acked_ca.saturating_add(acked);
            if self.acked_ca >= self.cwnd {
                self.acked_ca -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(self.mss);
            }
        }
        AckAction::None
    }

    /// A duplicate ACK (RFC 5681 §2's definition) for `ack`; `snd_max` is the
    /// highest sequence number sent and `flight` the bytes outstanding.
    pub(crate) fn on_dup_ack(&mut self, ack: SeqNum, snd_max: SeqNum, flight: u32) -> AckAction {
        self.dupacks = self.dupacks.saturating_add(1);
        if self.in_recovery {
            // RFC 5681 §3.2 step 4: inflate by one MSS per further duplicate.
            self.cwnd = self.cwnd.saturating_add(self.mss);
            return AckAction::None;
        }
        // RFC 6582 §3.2 step 2: enter recovery only if the ACK covers more than
        // "recover" (avoids multiple fast retransmits for one window).
        if self.dupacks == 3 && self.recover.is_none_or(|r| ack.after(r)) {
            self.ssthresh = (flight / 2).max(2 * self.mss);
            self.recover = Some(snd_max);
            self.cwnd = self.ssthresh + 3 * self.mss;
            self.in_recovery = true;
            return AckAction::RetransmitFirst;
        }
        AckAction::None
    }

    /// RFC 5681 §3.1 equation 4 and "after an RTO, cwnd = 1 segment"; RFC 6582
    /// §4: recover = the highest sequence number sent.
    pub(crate) fn on_rto(&mut self, flight: u32, snd_max: SeqNum) {
        self.ssthresh = (flight / 2).max(2 * self.mss);
        self.cwnd = self.mss;
        self.acked_ca = 0;
        self.dupacks = 0;
        self.in_recovery = false;
        self.recover = Some(snd_max);
    }
}

fn initial_window(mss: u32) -> u32 {
    (10 * mss).min((2 * mss).max(14_600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_window_follows_rfc_6928() {
        assert_eq!(initial_window(1460), 14_600);
        assert_eq!(initial_window(536), 5_360);
        assert_eq!(initial_window(9000), 18_000);
    }

    #[test]
    fn slow_start_then_avoidance() {
        let mut cc = NewReno::new(1000);
        let w = cc.cwnd();
        cc.on_new_ack(SeqNum::new(1000), 1000, 10_000);
        assert_eq!(cc.cwnd(), w + 1000);
        cc.on_rto(20_000, SeqNum::new(30_000));
        assert_eq!(cc.cwnd(), 1000);
        assert_eq!(cc.ssthresh(), 10_000);
    }

    #[test]
    fn cwnd_does_not_grow_when_the_flight_does_not_use_it() {
        let mut cc = NewReno::new(1000);
        let w = cc.cwnd();
        // A receiver-limited flight of 2 segments while cwnd is 10.
        for i in 1..100u32 {
            cc.on_new_ack(SeqNum::new(i * 1000), 1000, 2000);
        }
        assert_eq!(cc.cwnd(), w);
        // A full flight grows it again.
        cc.on_new_ack(SeqNum::new(200_000), 1000, w);
        assert_eq!(cc.cwnd(), w + 1000);
    }

    #[test]
    fn fast_retransmit_works_after_2_pow_31_loss_free_bytes() {
        // "recover" must not go stale: with no loss for more than 2^31 bytes
        // from ISS, three duplicate ACKs still start fast retransmit.
        let mut cc = NewReno::new(1000);
        let una = SeqNum::new(0) + (1u32 << 31) + 1000;
        cc.on_new_ack(una, 1000, 10_000);
        for _ in 0..2 {
            assert_eq!(cc.on_dup_ack(una, una + 10_000, 10_000), AckAction::None);
        }
        assert_eq!(
            cc.on_dup_ack(una, una + 10_000, 10_000),
            AckAction::RetransmitFirst
        );
    }

    #[test]
    fn recover_is_cleared_once_passed_and_blocks_until_then() {
        let mut cc = NewReno::new(1000);
        cc.on_rto(10_000, SeqNum::new(10_000));
        // Duplicates below "recover" (RFC 6582 §3.2 step 2): no fast retransmit.
        for _ in 0..3 {
            assert_eq!(
                cc.on_dup_ack(SeqNum::new(5000), SeqNum::new(10_000), 5000),
                AckAction::None
            );
        }
        // SND.UNA passes it: later duplicates may retransmit again.
        cc.on_new_ack(SeqNum::new(10_000), 5000, 5000);
        for _ in 0..2 {
            cc.on_dup_ack(SeqNum::new(10_000), SeqNum::new(20_000), 10_000);
        }
        assert_eq!(
            cc.on_dup_ack(SeqNum::new(10_000), SeqNum::new(20_000), 10_000),
            AckAction::RetransmitFirst
        );
    }

    #[test]
    fn slow_start_takes_a_stretch_ack_whole() {
        let mut cc = NewReno::new(1000);
        let w = cc.cwnd();
        cc.on_new_ack(SeqNum::new(10_000), 10_000, 10_000);
        assert_eq!(cc.cwnd(), w + 10_000);
    }

    #[test]
    fn three_dupacks_enter_recovery_and_full_ack_leaves() {
        let mut cc = NewReno::new(1000);
        let una = SeqNum::new(1);
        assert_eq!(
            cc.on_dup_ack(una, SeqNum::new(10_001), 10_000),
            AckAction::None
        );
        assert_eq!(cc.limited_transmit_allowance(), 1000);
        assert_eq!(
            cc.on_dup_ack(una, SeqNum::new(10_001), 10_000),
            AckAction::None
        );
        assert_eq!(
            cc.on_dup_ack(una, SeqNum::new(10_001), 10_000),
            AckAction::RetransmitFirst
        );
        assert!(cc.in_recovery());
        assert_eq!(cc.ssthresh(), 5000);
        assert_eq!(cc.cwnd(), 8000);
        // Partial ACK: retransmit again, stay in recovery.
        assert_eq!(
            cc.on_new_ack(SeqNum::new(2001), 2000, 10_000),
            AckAction::RetransmitFirst
        );
        assert!(cc.in_recovery());
        // Full ACK.
        assert_eq!(
            cc.on_new_ack(SeqNum::new(10_001), 8000, 8000),
            AckAction::None
        );
        assert!(!cc.in_recovery());
        assert_eq!(cc.cwnd(), 1000 + 1000);
    }
}
