//! What the timers do when they fire: the retransmission timeout (RFC 6298
//! §5.4–5.7, RFC 9293 §3.10.8), the persist timer (RFC 9293 §3.8.6.1,
//! RFC 1122 §4.2.2.17) and the user timeout (RFC 9293 §3.10.8, RFC 5482,
//! Linux `TCP_USER_TIMEOUT`).

use super::sent::Lost;
use super::{Connection, State, Timer};
use crate::error::Error;
use crate::time::Instant;

impl Connection {
    pub(super) fn on_rto(&mut self, now: Instant) {
        // Our SYN (SYN_SENT) or SYN-ACK (SYN_RECEIVED, or FIN_WAIT_1 after a
        // CLOSE there) is still unacknowledged: it is what the timer guards.
        let syn_state = !self.snd.syn_acked;
        let limit = if !syn_state {
            self.cfg.data_retries
        } else if self.passive && self.state != State::SynSent {
            self.cfg.synack_retries
        } else {
            self.cfg.syn_retries
        };
        if !self.sent.outstanding() && !syn_state {
            return; // nothing outstanding
        }
        // With a user timeout, time decides, not the count (Linux's
        // `retransmits_timed_out`): its own timer ends the connection.
        if self.timers.retries >= limit && self.sock.user_timeout.is_none() {
            tracing::debug!(parent: &self.span, retries = self.timers.retries, "retransmissions exhausted");
            // RFC 9293 §3.10.8 (user timeout): flush and enter CLOSED. No RST:
            // the peer is presumably unreachable (Linux sends none either).
            self.fail(self.timeout_error(), "retransmission timeout");
            return;
        }
        self.timers.retries += 1;
        self.stats.rto_count += 1;
        self.rtt.back_off();
        self.sent.stop_timing();
        if syn_state {
            self.handshake.syn_pending = true;
            self.handshake.rto_retransmitted = true;
            // A FIN sent after a CLOSE in SYN_RECEIVED goes again after the
            // SYN-ACK.
            self.sent.mark_all_lost(Lost::Timeout);
        } else {
            let flight = self.snd.flight();
            let cwnd_before = self.cc.cwnd();
            let repeat = self.recovery.in_loss();
            self.recovery
                .on_rto(&mut *self.cc, now, flight, self.snd.una, self.snd.max);
            self.frto_on_rto(repeat);
            self.congestion_event(
                now,
                super::types::CongestionCause::Timeout,
                flight,
                cwnd_before,
            );
            self.forget_probe();
            self.timers.stop(Timer::Reorder);
            // RFC 6298 §5.4: everything outstanding is deemed lost and resent
            // from SND.UNA, in order, as the window allows.
            self.sent.mark_all_lost(Lost::Timeout);
        }
        self.timers.set(Timer::Rto, now + self.rtt.rto());
    }

    pub(super) fn on_persist(&mut self, now: Instant) {
        let fin_only = self.snd.fin_queued && self.snd.una == self.snd.fin_seq;
        if !self.state.is_synchronized() || (self.snd.buf.len() == 0 && !fin_only) {
            return;
        }
        if self.snd.wnd == 0 {
            if self.orphaned && self.timers.persist_backoff >= self.cfg.orphan_retries {
                // Nobody will ever read what is queued: drop the orphan rather
                // than let the peer hold it forever behind a zero window.
                self.fail(Error::TimedOut, "orphaned behind a zero window");
                return;
            }
            // RFC 1122 §4.2.2.17: the connection stays open only while probes
            // are answered; any acceptable ACK resets the count.
            if self.timers.probes_out >= self.cfg.data_retries && self.sock.user_timeout.is_none() {
                self.fail(Error::TimedOut, "zero-window probes unanswered");
                return;
            }
            self.timers.probes_out += 1;
            // RFC 9293 §3.8.6.1: probe the zero window, backing off to persist_max.
            self.pending.probe = true;
            self.timers.persist_backoff = self.timers.persist_backoff.saturating_add(1);
            self.arm_persist(now);
        } else if self.snd_nxt() == self.snd.una {
            // RFC 9293 §3.8.6.2.1: the SWS override timeout. A small window
            // held the data back and the update that would have released it
            // may be lost: send what the window allows.
            self.pending.probe = true;
        }
    }

    /// Something occupying sequence space left (data, SYN, FIN, a
    /// zero-window probe): with a user timeout and nothing timed yet, the
    /// oldest unacknowledged octet is timed from now.
    pub(super) fn arm_user_timeout(&mut self, now: Instant) {
        if let Some(ut) = self.sock.user_timeout
            && !self.timers.is_set(Timer::UserTimeout)
        {
            self.timers.set(Timer::UserTimeout, now + ut);
        }
    }

    /// SND.UNA moved: what is still unacknowledged is timed afresh (the
    /// peer is making progress), or nothing is.
    pub(super) fn user_timeout_progress(&mut self, now: Instant) {
        let Some(ut) = self.sock.user_timeout else {
            return;
        };
        if self.sent.outstanding() {
            self.timers.set(Timer::UserTimeout, now + ut);
        } else {
            self.timers.stop(Timer::UserTimeout);
        }
    }

    /// RFC 9293 §3.10.8: the user timeout expired with data unacknowledged:
    /// flush the queues, report the error, enter CLOSED (no RST: the peer
    /// is presumably unreachable; Linux's `tcp_write_err` sends none).
    pub(super) fn on_user_timeout(&mut self) {
        if self.sock.user_timeout.is_none() || !self.sent.outstanding() {
            return;
        }
        tracing::debug!(parent: &self.span, retries = self.timers.retries, "user timeout");
        self.fail(self.timeout_error(), "user timeout");
    }

    pub(super) fn arm_persist(&mut self, now: Instant) {
        let base = self.rtt.rto().max(self.cfg.rto_min);
        let d = base
            .saturating_mul(1u32 << self.timers.persist_backoff.min(16))
            .min(self.cfg.persist_max);
        self.timers.set(Timer::Persist, now + d);
    }
}
