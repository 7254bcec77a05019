//! The tail loss probe (RFC 8985 §7): when the ACKs stop before the flight
//! is acknowledged, one segment goes out after about two round trips instead
//! of waiting for the retransmission timeout, so that the ACK it draws lets
//! RACK find a loss at the end of a flight.

use super::{Connection, State, Timer, Transmit};
use crate::seq::SeqNum;
use crate::time::{Duration, Instant};
use bytes::BytesMut;

/// The probe in flight (RFC 8985 §7.1: TLP.end_seq, TLP.is_retrans).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Tlp {
    /// SND.MAX when the probe left; `None` while no probe is outstanding.
    end: Option<SeqNum>,
    /// The probe resent old data (no new data could go).
    retransmit: bool,
}

impl Connection {
    /// TLP_arm_PTO (RFC 8985 §7.2), after an ACK or a transmission of new
    /// data: with SACK, outside recovery and the timeout's loss state, with
    /// data outstanding and no probe in flight, the probe timer is set to
    /// 2·SRTT plus the worst-case delayed ACK when one segment is out, plus
    /// 2 ms otherwise (Linux's TCP_TIMEOUT_MIN); 1 s before any RTT is
    /// known; never later than the retransmission timer.
    pub(super) fn schedule_probe(&mut self, now: Instant) {
        let eligible = self.opts.sack
            && self.snd.syn_acked
            && self.sent.outstanding()
            && self.tlp.end.is_none()
            // A shut window is the persist timer's (RFC 9293 §3.8.6.1).
            && self.snd.wnd > 0
            && !self.recovery.in_recovery()
            && !self.recovery.in_loss()
            && !matches!(self.state, State::TimeWait | State::Closed);
        if !eligible {
            self.timers.stop(Timer::Probe);
            return;
        }
        let pto = match self.rtt.srtt() {
            Some(srtt) => {
                // Linux's tcp_schedule_loss_probe: 2·SRTT plus the
                // worst-case delayed ACK for one segment, else plus
                // TCP_TIMEOUT_MIN (2 ms), so that on a sub-millisecond path
                // an ACK late by a scheduling delay is not taken for a
                // tail loss (spurious probes).
                let mut pto = srtt * 2;
                if self.snd.flight() <= self.opts.smss {
                    pto += self.cfg.worst_case_delayed_ack;
                } else {
                    pto += Duration::from_millis(2);
                }
                pto
            }
            None => Duration::from_secs(1),
        };
        let mut at = now + pto;
        if let Some(rto) = self.timers.deadline(Timer::Rto) {
            at = at.min(rto);
        }
        self.timers.set(Timer::Probe, at);
    }

    /// The probe timer fired (RFC 8985 §7.3): one probe is owed, and the
    /// retransmission timer, not another probe, guards what follows.
    pub(super) fn on_probe_timeout(&mut self, now: Instant) {
        if !self.sent.outstanding()
            || self.snd.wnd == 0
            || self.recovery.in_recovery()
            || self.recovery.in_loss()
            || self.tlp.end.is_some()
        {
            return;
        }
        self.pending.tlp = true;
        self.timers.set(Timer::Rto, now + self.rtt.rto());
    }

    /// TLP_send_one (RFC 8985 §7.3): a new segment if the receive window
    /// allows one, otherwise the last segment sent again.
    pub(super) fn send_probe_segment(
        &mut self,
        now: Instant,
        buf: &mut BytesMut,
    ) -> Option<Transmit> {
        let room = self.data_room();
        let nxt = self.snd.max;
        let offset = nxt.diff(self.snd.data_seq0()).max(0) as usize;
        let unsent = self.snd.buf.len().saturating_sub(offset);
        let wnd_left = (self.snd.una + self.snd.wnd).diff(nxt).max(0) as usize;
        // The probe is outstanding from here (a new segment's send would
        // otherwise arm the probe timer again).
        self.tlp.end = Some(nxt);
        let sent = if unsent > 0 && wnd_left > 0 {
            self.tlp.retransmit = false;
            let len = unsent.min(wnd_left).min(room as usize) as u32;
            self.send_data_at(now, buf, nxt, len, false)
        } else {
            self.tlp.retransmit = true;
            let (start, end) = self.sent.last_range()?;
            let start = if end.diff(start) > room as i32 {
                end + 0u32.wrapping_sub(room)
            } else {
                start
            };
            self.send_data_at(now, buf, start, end.diff(start).max(0) as u32, true)
        };
        match sent {
            Some(t) => {
                self.stats.tlp_probes += 1;
                self.tlp.end = Some(self.snd.max);
                tracing::trace!(parent: &self.span, seq = t.repr.seq.get(), retransmit = self.tlp.retransmit, "tail loss probe");
                Some(t)
            }
            None => {
                self.tlp.end = None;
                None
            }
        }
    }

    /// TLP_process_ack (RFC 8985 §7.4.2) once the ACK is processed: a probe
    /// of new data, or one whose duplicate the peer reported (`dsack_end`,
    /// the end of this ACK's D-SACK block), repaired nothing; a probe that
    /// resent old data and is acknowledged with more beyond it repaired a
    /// loss, which is a congestion signal (Linux's CWR).
    pub(super) fn tlp_on_ack(
        &mut self,
        now: Instant,
        ack: SeqNum,
        dsack_end: Option<SeqNum>,
        pure_dup: bool,
    ) {
        let Some(end) = self.tlp.end else {
            return;
        };
        if ack.before(end) {
            return;
        }
        if !self.tlp.retransmit || dsack_end == Some(end) {
            self.tlp.end = None;
        } else if ack.after(end) {
            self.tlp.end = None;
            let flight = self.snd.flight();
            let cwnd_before = self.cc.cwnd();
            self.recovery
                .on_probe_repaired(&mut *self.cc, now, flight, self.snd.max);
            self.cc.set_cwnd(self.cc.ssthresh().max(self.opts.smss));
            self.congestion_event(
                now,
                super::types::CongestionCause::TailLossProbe,
                flight,
                cwnd_before,
            );
            self.stats.tlp_recoveries += 1;
            tracing::debug!(parent: &self.span, cwnd = self.cc.cwnd(), "tail loss probe repaired a loss");
        } else if pure_dup {
            // Original and probe both arrived.
            self.tlp.end = None;
        }
    }

    /// A recovery episode or a timeout takes over from a probe in flight.
    pub(super) fn forget_probe(&mut self) {
        self.tlp.end = None;
        self.timers.stop(Timer::Probe);
    }
}
