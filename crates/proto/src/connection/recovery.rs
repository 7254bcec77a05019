//! The recovery episode: NewReno's duplicate-ACK counting (RFC 5681 §3.2),
//! limited transmit (RFC 3042) and fast recovery (RFC 6582) for peers
//! without SACK; for peers with SACK, the episode RACK's loss marks open
//! (`rack.rs`), paced by Proportional Rate Reduction (RFC 6937) over RFC
//! 6675's pipe. The window arithmetic of an episode is done here through
//! [`CongestionControl::set_cwnd`]; how much the window backs off and how it
//! grows outside an episode is the controller's. The undo bookkeeping of an
//! episode (what a spurious one would give back) lives here too.

use crate::congestion::{AckSample, CongestionControl};
use crate::seq::SeqNum;
use crate::time::{Duration, Instant};

/// What the sender must do after an ACK was processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AckAction {
    /// Nothing beyond sending what the window now allows.
    None,
    /// Retransmit the first unacknowledged segment now (fast retransmit, or a
    /// partial ACK during NewReno recovery).
    RetransmitFirst,
    /// A recovery episode (or the loss state after a timeout) just ended.
    Ended,
}

/// Linux's congestion-avoidance states (`tcp_ca_state`), as the stats show
/// them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CaState {
    /// Nothing unusual.
    #[default]
    Open,
    /// Duplicate ACKs or SACKed data seen, no loss marked yet.
    Disorder,
    /// The window was reduced without a recovery episode (a loss the tail
    /// loss probe repaired).
    Cwr,
    /// A fast-recovery episode (RACK or three duplicate ACKs).
    Recovery,
    /// After a retransmission timeout, until what was outstanding then is
    /// acknowledged.
    Loss,
}

/// RFC 6937's state for one episode.
#[derive(Clone, Copy, Debug, Default)]
struct Prr {
    /// prr_delivered: bytes delivered to the peer during the episode.
    delivered: u64,
    /// prr_out: bytes sent during the episode.
    out: u64,
    /// RecoverFS: the flight when the episode began.
    recover_fs: u32,
}

/// What an undo would need (Linux's undo_marker, undo_retrans and
/// retrans_stamp).
#[derive(Clone, Copy, Debug)]
struct Undo {
    /// SND.UNA when the episode began: D-SACKs above it count.
    marker: SeqNum,
    /// When the episode's first retransmission left.
    first_retransmit: Option<Instant>,
    /// The end of that first retransmission, until the ACK that covers it
    /// has been judged (Eifel looks at that one ACK, RFC 3522 §3.2).
    eifel_end: Option<SeqNum>,
    /// Bytes the episode retransmitted that no D-SACK has shown to be
    /// duplicates yet.
    retransmitted: u32,
}

/// Where a connection stands between losses (one of Linux's CA states;
/// Disorder is derived, see [`Recovery::ca_state`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No episode, no reduction pending.
    Open,
    /// The window was reduced by a repaired tail loss and no episode
    /// opened since (until SND.UNA passes "recover").
    Cwr,
    /// A fast-recovery episode (NewReno or SACK with PRR).
    Recovery,
    /// After a retransmission timeout until SND.UNA passes "recover"
    /// (Linux's CA_Loss): no new episode opens, no probe is sent.
    Loss,
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
    phase: Phase,
    /// SACK is in force: loss is RACK's to mark and PRR paces the episode.
    sack: bool,
    prr: Prr,
    undo: Option<Undo>,
}

impl Recovery {
    pub(crate) fn new(mss: u32) -> Self {
        Recovery {
            mss: mss.max(1),
            dupacks: 0,
            recover: None,
            phase: Phase::Open,
            sack: false,
            prr: Prr::default(),
            undo: None,
        }
    }

    /// SACK is in force on the connection.
    pub(crate) fn set_sack(&mut self, on: bool) {
        self.sack = on;
    }

    /// In a recovery episode paced by PRR (SACK).
    pub(crate) fn sack_recovery(&self) -> bool {
        self.phase == Phase::Recovery && self.sack
    }

    pub(crate) fn set_mss(&mut self, mss: u32) {
        self.mss = mss.max(1);
    }

    /// In a fast-recovery episode (NewReno or SACK).
    pub(crate) fn in_recovery(&self) -> bool {
        self.phase == Phase::Recovery
    }

    /// In the loss state after a retransmission timeout.
    pub(crate) fn in_loss(&self) -> bool {
        self.phase == Phase::Loss
    }

    /// The state as Linux names it; `disorder` says whether duplicate ACKs
    /// or SACKed bytes are outstanding.
    pub(crate) fn ca_state(&self, disorder: bool) -> CaState {
        match self.phase {
            Phase::Loss => CaState::Loss,
            Phase::Recovery => CaState::Recovery,
            Phase::Cwr => CaState::Cwr,
            Phase::Open if disorder || self.dupacks > 0 => CaState::Disorder,
            Phase::Open => CaState::Open,
        }
    }

    /// RFC 3042: the first two duplicate ACKs each allow one new segment beyond
    /// cwnd (NewReno only: with SACK the pipe leaves the room). Returns the
    /// extra allowance in bytes.
    pub(crate) fn limited_transmit_allowance(&self) -> u32 {
        if self.phase == Phase::Recovery || self.sack {
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
        let mut ended = false;
        if passed_recover {
            self.recover = None;
            match self.phase {
                Phase::Loss => {
                    ended = true;
                    self.phase = Phase::Open;
                }
                Phase::Cwr => self.phase = Phase::Open,
                Phase::Open | Phase::Recovery => {}
            }
        }
        if self.phase != Phase::Recovery {
            cc.on_ack(&AckSample {
                now,
                ack,
                snd_nxt,
                newly_acked: acked,
                flight_before,
                rtt_sample,
            });
            return if ended {
                AckAction::Ended
            } else {
                AckAction::None
            };
        }
        if passed_recover && self.sack {
            // RFC 6937: at the end of the episode cwnd = ssthresh.
            cc.set_cwnd(cc.ssthresh().max(self.mss));
            self.phase = Phase::Open;
            return AckAction::Ended;
        }
        if passed_recover {
            // RFC 6582 §3.2 step 3, full ACK: deflate the window.
            let flight_after = flight_before.saturating_sub(acked).max(self.mss);
            cc.set_cwnd(cc.ssthresh().min(flight_after + self.mss));
            self.phase = Phase::Open;
            return AckAction::Ended;
        }
        if self.sack {
            // RACK marks what is lost; PRR sets the window once the ACK's
            // SACK blocks are in.
            return AckAction::None;
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
    /// highest sequence number sent and `flight` the bytes outstanding. With
    /// SACK it is only counted: RACK decides what is lost.
    pub(crate) fn on_dup_ack(
        &mut self,
        cc: &mut dyn CongestionControl,
        now: Instant,
        ack: SeqNum,
        snd_max: SeqNum,
        flight: u32,
    ) -> AckAction {
        self.dupacks = self.dupacks.saturating_add(1);
        if self.sack {
            return AckAction::None;
        }
        if self.phase == Phase::Recovery {
            // RFC 5681 §3.2 step 4: inflate by one MSS per further duplicate.
            cc.set_cwnd(cc.cwnd().saturating_add(self.mss));
            return AckAction::None;
        }
        // RFC 6582 §3.2 step 2: enter recovery only if the ACK covers more than
        // "recover" (avoids multiple fast retransmits for one window).
        if self.dupacks == 3 && self.recover.is_none_or(|r| ack.after(r)) {
            self.begin_episode(cc, now, flight, snd_max);
            // RFC 5681 §3.2 step 3: cwnd = ssthresh + 3·SMSS.
            cc.set_cwnd(cc.ssthresh() + 3 * self.mss);
            return AckAction::RetransmitFirst;
        }
        AckAction::None
    }

    /// RACK marked a loss (SACK): a recovery episode begins unless one is on
    /// or the timeout's loss state is. Returns whether it began.
    pub(crate) fn on_rack_loss(
        &mut self,
        cc: &mut dyn CongestionControl,
        now: Instant,
        flight: u32,
        snd_max: SeqNum,
    ) -> bool {
        if matches!(self.phase, Phase::Recovery | Phase::Loss) {
            return false;
        }
        self.begin_episode(cc, now, flight, snd_max);
        true
    }

    /// RFC 5681 §3.2 step 2 / RFC 6937: ssthresh backs off, the recovery
    /// point is SND.MAX, PRR starts from the flight.
    fn begin_episode(
        &mut self,
        cc: &mut dyn CongestionControl,
        now: Instant,
        flight: u32,
        snd_max: SeqNum,
    ) {
        cc.on_congestion_event(now, flight);
        self.recover = Some(snd_max);
        debug_assert_ne!(
            self.phase,
            Phase::Loss,
            "an episode opens only outside the loss state"
        );
        self.phase = Phase::Recovery;
        self.prr = Prr {
            delivered: 0,
            out: 0,
            recover_fs: flight.max(1),
        };
        self.undo = Some(Undo {
            marker: snd_max + 0u32.wrapping_sub(flight),
            first_retransmit: None,
            eifel_end: None,
            retransmitted: 0,
        });
    }

    /// RFC 6937 on an ACK during a SACK episode: `delivered` bytes newly
    /// acknowledged or SACKed, `pipe` what is in flight now. cwnd becomes
    /// pipe + sndcnt: proportional to what was delivered while the pipe is
    /// above ssthresh, then slow start back up to it (PRR-SSRB); at least
    /// one segment leaves on the episode's first ACK.
    pub(crate) fn prr_on_ack(&mut self, cc: &mut dyn CongestionControl, delivered: u32, pipe: u32) {
        if !self.sack_recovery() {
            return;
        }
        if delivered == 0 && self.prr.out > 0 {
            return;
        }
        self.prr.delivered += u64::from(delivered);
        let ssthresh = u64::from(cc.ssthresh());
        let pipe64 = u64::from(pipe);
        let mss = u64::from(self.mss);
        let (d, out) = (self.prr.delivered, self.prr.out);
        let mut sndcnt = if pipe64 > ssthresh {
            // CEIL(prr_delivered · ssthresh / RecoverFS) − prr_out.
            let fs = u64::from(self.prr.recover_fs);
            (d * ssthresh).div_ceil(fs).saturating_sub(out)
        } else {
            // PRR-SSRB: MIN(ssthresh − pipe, MAX(prr_delivered − prr_out,
            // DeliveredData) + MSS).
            let limit = d.saturating_sub(out).max(u64::from(delivered)) + mss;
            (ssthresh - pipe64).min(limit)
        };
        if out == 0 && sndcnt < mss {
            // The episode's first retransmission leaves whatever the pipe
            // (RFC 6675 §5 step 4.3; Linux's tcp_cwnd_reduction).
            sndcnt = mss;
        }
        cc.set_cwnd((pipe64 + sndcnt).min(u64::from(u32::MAX)) as u32);
    }

    /// A segment of `len` payload bytes ending at `end` left at `now`
    /// (`retransmit`: not new data): prr_out, and what an undo would have to
    /// account for.
    pub(crate) fn on_transmit(&mut self, now: Instant, len: u32, end: SeqNum, retransmit: bool) {
        if self.phase == Phase::Recovery {
            self.prr.out += u64::from(len);
        }
        if retransmit
            && matches!(self.phase, Phase::Recovery | Phase::Loss)
            && let Some(u) = self.undo.as_mut()
        {
            if u.first_retransmit.is_none() {
                u.first_retransmit = Some(now);
                u.eifel_end = Some(end);
            }
            u.retransmitted = u.retransmitted.saturating_add(len.max(1));
        }
    }

    /// A D-SACK block [left, right): a retransmission of the episode was a
    /// duplicate. Returns whether every byte the episode retransmitted has
    /// now been reported twice (RFC 2883 §5's spurious retransmission).
    pub(crate) fn on_dsack(&mut self, left: SeqNum, right: SeqNum) -> bool {
        let Some(u) = self.undo.as_mut() else {
            return false;
        };
        if !right.after(u.marker) || u.first_retransmit.is_none() {
            return false;
        }
        let len = right.diff(left).max(0) as u32;
        u.retransmitted = u.retransmitted.saturating_sub(len);
        u.retransmitted == 0
    }

    /// Eifel detection (RFC 3522 §3.2): the first ACK that covers the
    /// episode's first retransmission (`ack` ≥ its end) echoes a timestamp
    /// (`echo_ms`, our 1 ms clock) from before that retransmission: the
    /// original arrived, the episode was spurious. Only that one ACK is
    /// judged: a later one may echo a late original while the
    /// retransmission did repair a loss.
    pub(crate) fn delayed_not_lost(&mut self, echo_ms: Option<u32>, ack: SeqNum) -> bool {
        let Some(u) = self.undo.as_mut() else {
            return false;
        };
        let (Some(end), Some(first)) = (u.eifel_end, u.first_retransmit) else {
            return false;
        };
        if ack.before(end) {
            return false;
        }
        u.eifel_end = None;
        echo_ms.is_some_and(|e| (e.wrapping_sub(first.as_millis() as u32) as i32) < 0)
    }

    /// Whether an undo has something to restore (an episode or a first
    /// timeout, not undone yet).
    pub(crate) fn can_undo(&self) -> bool {
        self.undo.is_some()
    }

    /// The episode was spurious: the controller's window and threshold go
    /// back to what they were, and the episode (or loss state) ends.
    pub(crate) fn undo(&mut self, cc: &mut dyn CongestionControl) {
        cc.on_spurious_undo();
        self.phase = Phase::Open;
        self.recover = None;
        self.undo = None;
    }

    /// A tail loss probe repaired a loss (RFC 8985 §7.4.2): the window is
    /// reduced as for a loss, without an episode (Linux's CWR state).
    pub(crate) fn on_probe_repaired(
        &mut self,
        cc: &mut dyn CongestionControl,
        now: Instant,
        flight: u32,
        snd_max: SeqNum,
    ) {
        cc.on_congestion_event(now, flight);
        self.recover = Some(snd_max);
        // An episode or the loss state under way keeps its phase (and ends
        // with it); otherwise the reduction shows as CWR.
        if matches!(self.phase, Phase::Open | Phase::Cwr) {
            self.phase = Phase::Cwr;
        }
        self.undo = None;
    }

    /// The retransmission timer fired with `flight` outstanding; RFC 6582 §4:
    /// recover = the highest sequence number sent.
    pub(crate) fn on_rto(
        &mut self,
        cc: &mut dyn CongestionControl,
        now: Instant,
        flight: u32,
        una: SeqNum,
        snd_max: SeqNum,
    ) {
        // A second timeout in the same loss state: the controller's saved
        // window is now the first timeout's, so nothing is undone after it.
        let repeat = self.phase == Phase::Loss;
        cc.on_rto(now, flight);
        self.dupacks = 0;
        self.phase = Phase::Loss;
        self.recover = Some(snd_max);
        self.undo = (!repeat).then_some(Undo {
            marker: una,
            first_retransmit: None,
            eifel_end: None,
            retransmitted: 0,
        });
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
            AckAction::Ended
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
        r.on_rto(&mut cc, NOW, 10_000, SeqNum::new(0), SeqNum::new(10_000));
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
