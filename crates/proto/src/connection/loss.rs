//! Loss detection on a SACK connection, per ACK and on RACK's timer: the
//! scoreboard's deliveries feed RACK (RFC 8985 §6.2), whose marks open a
//! recovery episode that PRR paces (RFC 6937); D-SACK and timestamps tell
//! when an episode or a timeout was spurious, and it is undone (RFC 2883
//! §5, RFC 3522); then the tail loss probe is re-armed (RFC 8985 §7).

use super::rack::AckInfo;
use super::types::{CongestionCause, CongestionEvent};
use super::{Connection, Event, Timer};
use crate::seq::SeqNum;
use crate::time::Instant;

/// What the ACK being processed did, for the steps after the scoreboard.
#[derive(Clone, Copy, Debug)]
pub(super) struct AckOutcome {
    /// Bytes newly acknowledged or SACKed (RFC 6937's DeliveredData).
    pub(super) delivered: u32,
    /// The first D-SACK block, if the ACK carried one.
    pub(super) dsack: Option<(SeqNum, SeqNum)>,
    /// A recovery episode or the loss state ended on this ACK.
    pub(super) ended: bool,
    /// A duplicate ACK without SACK information.
    pub(super) pure_dup: bool,
}

impl Connection {
    /// The ACK's timing facts for RACK.
    pub(super) fn ack_info(&self, now: Instant, tsecr: Option<u32>) -> AckInfo {
        AckInfo {
            now,
            echo_ms: tsecr
                .filter(|&e| self.opts.ts.on && e != 0)
                .map(|e| e.wrapping_sub(self.opts.ts.offset)),
        }
    }

    /// The steps after an ACK's scoreboard update (SACK connections).
    pub(super) fn after_ack(&mut self, now: Instant, ack: SeqNum, out: AckOutcome) {
        if let Some((l, r)) = out.dsack {
            // A duplicate of a retransmission is reordering (or a delayed
            // ACK) that RACK's window did not cover (Linux's reord_seen).
            self.rack.on_spurious();
            self.rack.on_dsack(self.snd.una, self.snd.max);
            if self.recovery.on_dsack(l, r) {
                self.undo_episode(now, "D-SACK");
            }
        }
        if out.ended {
            self.rack.on_recovery_end();
        }
        let recovering = self.recovery.in_recovery() || self.recovery.in_loss();
        // Without SACKed data, an episode or a pending reordering timer,
        // nothing outstanding was sent before what this ACK delivered but
        // retransmissions the timeout marked already: RACK has nothing to
        // judge (the common case, kept cheap).
        if self.sent.sacked_bytes() > 0 || recovering || self.timers.is_set(Timer::Reorder) {
            self.rack_detect_loss(now);
        }
        if self.recovery.sack_recovery() {
            let pipe = self.pipe();
            self.recovery.prr_on_ack(&mut *self.cc, out.delivered, pipe);
        }
        self.tlp_on_ack(now, ack, out.dsack.map(|d| d.1), out.pure_dup);
        if self.sent.outstanding() {
            self.schedule_probe(now);
        } else {
            self.timers.stop(Timer::Probe);
        }
    }

    /// RFC 8985 §6.2 step 5 and the reordering timer; a newly marked loss
    /// opens a recovery episode.
    pub(super) fn rack_detect_loss(&mut self, now: Instant) {
        let srtt = self.rtt.srtt().unwrap_or(self.rtt.rto());
        let dupthresh_sacked = self.sent.sacked_bytes() >= 3 * self.opts.smss;
        let recovering = self.recovery.in_recovery() || self.recovery.in_loss();
        let reo_wnd = self.rack.reo_wnd(recovering, dupthresh_sacked, srtt);
        let (lost, wait) = self.rack.detect_loss(&mut self.sent, reo_wnd, now);
        match wait {
            Some(w) => self.timers.set(Timer::Reorder, now + w),
            None => self.timers.stop(Timer::Reorder),
        }
        if lost == 0 {
            return;
        }
        self.stats.rack_lost_bytes += u64::from(lost);
        let flight = self.snd.flight();
        let cwnd_before = self.cc.cwnd();
        if self
            .recovery
            .on_rack_loss(&mut *self.cc, now, flight, self.snd.max)
        {
            self.congestion_event(now, CongestionCause::Rack, flight, cwnd_before);
            self.stats.fast_retransmits += 1;
            self.stats.recovery_episodes += 1;
            self.sent.stop_timing();
            self.forget_probe();
            // The timer restarts with the episode's first retransmission
            // (as after three duplicate ACKs), so that the RTO does not fire
            // on the heels of the repair.
            self.timers.set(Timer::Rto, now + self.rtt.rto());
            tracing::debug!(parent: &self.span, flight, ssthresh = self.cc.ssthresh(), "recovery (RACK)");
        }
    }

    /// RACK's reordering timer fired: the same detection, then PRR lets
    /// the episode's first retransmission go.
    pub(super) fn on_reorder_timeout(&mut self, now: Instant) {
        if !self.sent.outstanding() {
            return;
        }
        self.rack_detect_loss(now);
        let pipe = self.pipe();
        self.recovery.prr_on_ack(&mut *self.cc, 0, pipe);
    }

    /// Eifel (RFC 3522) on an ACK that advanced SND.UNA to `ack`: the
    /// timestamp it echoes predates the episode's first retransmission.
    pub(super) fn check_eifel(&mut self, info: AckInfo, ack: SeqNum) {
        if self.recovery.delayed_not_lost(info.echo_ms, ack) {
            self.rack.on_spurious();
            self.undo_episode(info.now, "timestamps");
        }
    }

    /// Records a change of the congestion window (an [`Event::Congestion`]).
    pub(super) fn congestion_event(
        &mut self,
        now: Instant,
        cause: CongestionCause,
        flight: u32,
        cwnd_before: u32,
    ) {
        self.events.push_back(Event::Congestion(CongestionEvent {
            at: now,
            cause,
            flight,
            cwnd_before,
            cwnd: self.cc.cwnd(),
            ssthresh: self.cc.ssthresh(),
            smss: self.opts.smss,
        }));
    }

    /// F-RTO found the timeout spurious (RFC 5682 §2.1 step 3b): undone as
    /// Eifel's would be (the response of RFC 4015 in spirit: the window
    /// back, no more go-back-N).
    pub(super) fn spurious_timeout(&mut self, now: Instant) {
        if self.recovery.can_undo() {
            self.rack.on_spurious();
            self.undo_episode(now, "F-RTO");
        }
    }

    /// The episode (or timeout) was spurious: undo its reduction and its
    /// loss marks (Linux's tcp_undo_cwnd_reduction).
    fn undo_episode(&mut self, now: Instant, why: &'static str) {
        let cwnd_before = self.cc.cwnd();
        self.recovery.undo(&mut *self.cc);
        let flight = self.snd.flight();
        self.congestion_event(now, CongestionCause::Undo, flight, cwnd_before);
        self.sent.clear_lost_marks();
        self.timers.stop(Timer::Reorder);
        self.stats.spurious_undos += 1;
        tracing::debug!(parent: &self.span, why, cwnd = self.cc.cwnd(), ssthresh = self.cc.ssthresh(), "spurious retransmission: undo");
    }
}
