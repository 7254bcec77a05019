//! Loss detection and the recovery episode: duplicate-ACK counting (RFC 5681
//! §3.2), limited transmit (RFC 3042) and NewReno's fast recovery (RFC 6582)
//! with its recovery point. The window arithmetic of the episode (inflation,
//! partial-ACK deflation, the exit) is done here through
//! [`CongestionControl::set_cwnd`]; how much the window backs off and how it
//! grows outside an episode is the controller's.

use crate::congestion::{AckSample, CongestionControl};
use crate::seq::SeqNum;
use crate::time::{Duration, Instant};

/// What the sender must do after an ACK was processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AckAction {
    /// Nothing beyond sending what the window now allows.
    None,
    /// Retransmit the first unacknowledged segment now (fast retransmit, or a
    /// partial ACK during recovery).
    RetransmitFirst,
}

/// The recovery state of one connection.
#[derive(Clone, Debug)]
pub(crate) struct Recovery {
    mss: u32,
    dupacks: u32,
    /// RFC 6582 "recover": the highest sequence sent when recovery (or an
    /// RTO) began; `None` once SND.UNA has passed it, so it never goes stale
    /// across the sequence-space wrap.
    recover: Option<SeqNum>,
    in_recovery: bool,
    /// SACK is in force: the episode is RFC 6675's (cwnd = ssthresh, no
    /// inflation or deflation; the scoreboard's pipe and SACK-based loss
    /// marks pace it) instead of NewReno's.
    sack: bool,
    /// The fast retransmission that opens an episode is still to be sent
    /// (RFC 6675 §5 step 4.3: whatever the pipe).
    first_rtx_due: bool,
    /// When the episode began: entries sent since are not marked lost
    /// again by SACK (a lost retransmission waits for the RTO).
    episode_start: Instant,
}

impl Recovery {
    pub(crate) fn new(mss: u32) -> Self {
        Recovery {
            mss: mss.max(1),
            dupacks: 0,
            recover: None,
            in_recovery: false,
            sack: false,
            first_rtx_due: false,
            episode_start: Instant::ZERO,
        }
    }

    /// SACK is in force on the connection (RFC 6675 recovery).
    pub(crate) fn set_sack(&mut self, on: bool) {
        self.sack = on;
    }

    /// In a recovery episode paced by SACK.
    pub(crate) fn sack_recovery(&self) -> bool {
        self.in_recovery && self.sack
    }

    /// When the current episode began.
    pub(crate) fn episode_start(&self) -> Instant {
        self.episode_start
    }

    /// Takes the permission to send the episode's first retransmission
    /// whatever the pipe.
    pub(crate) fn take_first_rtx(&mut self) -> bool {
        core::mem::take(&mut self.first_rtx_due)
    }

    pub(crate) fn set_mss(&mut self, mss: u32) {
        self.mss = mss.max(1);
    }

    /// In NewReno fast recovery.
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

    /// An ACK that advanced SND.UNA by `acked` bytes to `ack`, with
    /// `flight_before` bytes outstanding before it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_new_ack(
        &mut self,
        cc: &mut dyn CongestionControl,
        now: Instant,
        ack: SeqNum,
        acked: u32,
        flight_before: u32,
        rtt_sample: Option<Duration>,
        snd_nxt: SeqNum,
    ) -> AckAction {
        self.dupacks = 0;
        let passed_recover = self.recover.is_none_or(|r| ack.after_eq(r));
        if passed_recover {
            self.recover = None;
        }
        if !self.in_recovery {
            cc.on_ack(&AckSample {
                now,
                ack,
                snd_nxt,
                newly_acked: acked,
                flight_before,
                rtt_sample,
            });
            return AckAction::None;
        }
        if passed_recover && self.sack {
            // RFC 6675 §5: the episode ends when the ACK covers "recovery
            // point"; cwnd was ssthresh throughout.
            cc.set_cwnd(cc.ssthresh().max(self.mss));
            self.in_recovery = false;
            return AckAction::None;
        }
        if passed_recover {
            // RFC 6582 §3.2 step 3, full ACK: deflate the window.
            let flight_after = flight_before.saturating_sub(acked).max(self.mss);
            cc.set_cwnd(cc.ssthresh().min(flight_after + self.mss));
            self.in_recovery = false;
            return AckAction::None;
        }
        if self.sack {
            // RFC 6675: no deflation; the next hole is the scoreboard's.
            return AckAction::RetransmitFirst;
        }
        // Partial ACK: retransmit the next hole, deflate by the amount acked,
        // add back one MSS if at least one MSS was acked.
        let mut cwnd = cc.cwnd().saturating_sub(acked);
        if acked >= self.mss {
            cwnd += self.mss;
        }
        cc.set_cwnd(cwnd.max(self.mss));
        AckAction::RetransmitFirst
    }

    /// A duplicate ACK (RFC 5681 §2's definition) for `ack`; `snd_max` is the
    /// highest sequence number sent and `flight` the bytes outstanding.
    pub(crate) fn on_dup_ack(
        &mut self,
        cc: &mut dyn CongestionControl,
        now: Instant,
        ack: SeqNum,
        snd_max: SeqNum,
        flight: u32,
    ) -> AckAction {
        self.dupacks = self.dupacks.saturating_add(1);
        if self.in_recovery {
            // RFC 5681 §3.2 step 4: inflate by one MSS per further duplicate
            // (NewReno only: with SACK the pipe shrinks instead).
            if !self.sack {
                cc.set_cwnd(cc.cwnd().saturating_add(self.mss));
            }
            return AckAction::None;
        }
        // RFC 6582 §3.2 step 2: enter recovery only if the ACK covers more than
        // "recover" (avoids multiple fast retransmits for one window).
        if self.dupacks == 3 && self.recover.is_none_or(|r| ack.after(r)) {
            cc.on_congestion_event(now, flight);
            self.recover = Some(snd_max);
            if self.sack {
                // RFC 6675 §5 step 4.2: cwnd = ssthresh.
                cc.set_cwnd(cc.ssthresh().max(self.mss));
            } else {
                // RFC 5681 §3.2 step 3: cwnd = ssthresh + 3·SMSS.
                cc.set_cwnd(cc.ssthresh() + 3 * self.mss);
            }
            self.in_recovery = true;
            self.first_rtx_due = true;
            self.episode_start = now;
            return AckAction::RetransmitFirst;
        }
        AckAction::None
    }

    /// The retransmission timer fired with `flight` outstanding; RFC 6582 §4:
    /// recover = the highest sequence number sent.
    pub(crate) fn on_rto(
        &mut self,
        cc: &mut dyn CongestionControl,
        now: Instant,
        flight: u32,
        snd_max: SeqNum,
    ) {
        cc.on_rto(now, flight);
        self.dupacks = 0;
        self.in_recovery = false;
        self.first_rtx_due = false;
        self.recover = Some(snd_max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::congestion::Reno;

    const NOW: Instant = Instant::ZERO;

    fn dup(r: &mut Recovery, cc: &mut Reno, ack: u32, snd_max: u32, flight: u32) -> AckAction {
        r.on_dup_ack(cc, NOW, SeqNum::new(ack), SeqNum::new(snd_max), flight)
    }

    fn new_ack(r: &mut Recovery, cc: &mut Reno, ack: u32, acked: u32, flight: u32) -> AckAction {
        r.on_new_ack(
            cc,
            NOW,
            SeqNum::new(ack),
            acked,
            flight,
            None,
            SeqNum::new(ack),
        )
    }

    #[test]
    fn three_dupacks_enter_recovery_and_full_ack_leaves() {
        let (mut r, mut cc) = (Recovery::new(1000), Reno::new(1000));
        assert_eq!(dup(&mut r, &mut cc, 1, 10_001, 10_000), AckAction::None);
        assert_eq!(r.limited_transmit_allowance(), 1000);
        assert_eq!(dup(&mut r, &mut cc, 1, 10_001, 10_000), AckAction::None);
        assert_eq!(
            dup(&mut r, &mut cc, 1, 10_001, 10_000),
            AckAction::RetransmitFirst
        );
        assert!(r.in_recovery());
        assert_eq!(cc.ssthresh(), 5000);
        assert_eq!(cc.cwnd(), 8000);
        // Partial ACK: retransmit again, stay in recovery.
        assert_eq!(
            new_ack(&mut r, &mut cc, 2001, 2000, 10_000),
            AckAction::RetransmitFirst
        );
        assert!(r.in_recovery());
        // Full ACK.
        assert_eq!(
            new_ack(&mut r, &mut cc, 10_001, 8000, 8000),
            AckAction::None
        );
        assert!(!r.in_recovery());
        assert_eq!(cc.cwnd(), 1000 + 1000);
    }

    #[test]
    fn fast_retransmit_works_after_2_pow_31_loss_free_bytes() {
        // "recover" must not go stale: with no loss for more than 2^31 bytes
        // from ISS, three duplicate ACKs still start fast retransmit.
        let (mut r, mut cc) = (Recovery::new(1000), Reno::new(1000));
        let una = (SeqNum::new(0) + (1u32 << 31) + 1000).get();
        new_ack(&mut r, &mut cc, una, 1000, 10_000);
        for _ in 0..2 {
            assert_eq!(
                dup(&mut r, &mut cc, una, una.wrapping_add(10_000), 10_000),
                AckAction::None
            );
        }
        assert_eq!(
            dup(&mut r, &mut cc, una, una.wrapping_add(10_000), 10_000),
            AckAction::RetransmitFirst
        );
    }

    #[test]
    fn recover_is_cleared_once_passed_and_blocks_until_then() {
        let (mut r, mut cc) = (Recovery::new(1000), Reno::new(1000));
        r.on_rto(&mut cc, NOW, 10_000, SeqNum::new(10_000));
        // Duplicates below "recover" (RFC 6582 §3.2 step 2): no fast retransmit.
        for _ in 0..3 {
            assert_eq!(dup(&mut r, &mut cc, 5000, 10_000, 5000), AckAction::None);
        }
        // SND.UNA passes it: later duplicates may retransmit again.
        new_ack(&mut r, &mut cc, 10_000, 5000, 5000);
        for _ in 0..2 {
            dup(&mut r, &mut cc, 10_000, 20_000, 10_000);
        }
        assert_eq!(
            dup(&mut r, &mut cc, 10_000, 20_000, 10_000),
            AckAction::RetransmitFirst
        );
    }
}
