//! Segment arrival: RFC 9293 §3.10.7.3 (SYN_SENT) and §3.10.7.4 (the other
//! states), with the RFC 5961 hardening of RST, SYN and ACK processing.

use super::recovery::AckAction;
use super::{Connection, Event, Segment, State, Timer};
use crate::error::Error;
use crate::seq::SeqNum;
use crate::time::{Duration, Instant};
use crate::wire::TcpRepr;
use bytes::{Buf, Bytes};

/// A segment's text after the first step: trimmed to the receive window.
struct Text {
    seq: SeqNum,
    payload: Bytes,
    fin: bool,
}

impl Connection {
    /// Processes one incoming segment addressed to this connection.
    pub fn handle_segment(&mut self, now: Instant, seg: Segment) {
        self.stats.segments_received += 1;
        let r = &seg.repr;
        tracing::trace!(parent: &self.span, flags = %r.flags, seq = r.seq.get(), ack = r.ack.get(), len = seg.payload.len(), win = r.window, "recv");
        self.cur_seg = Some((r.flags, r.seq, r.ack, seg.payload.len() as u32));
        match self.state {
            // §3.10.7.1: a CLOSED connection's segments are the endpoint's business.
            State::Closed | State::Listen => {}
            State::SynSent => self.on_syn_sent(now, seg),
            _ => self.on_synchronized(now, seg),
        }
        self.cur_seg = None;
    }

    /// RFC 9293 §3.10.7.3.
    fn on_syn_sent(&mut self, now: Instant, seg: Segment) {
        let r = seg.repr;
        // First: check the ACK; ISS < SEG.ACK ≤ SND.NXT.
        if r.flags.ack() && (r.ack.before_eq(self.iss) || r.ack.after(self.snd_max)) {
            if !r.flags.rst() {
                self.rst_pending = Some((r.ack, None));
            }
            return;
        }
        // Second: an RST with an acceptable ACK refuses the connection.
        if r.flags.rst() {
            if r.flags.ack() {
                self.fail(Error::ConnectionRefused, "RST in SYN_SENT");
            }
            return;
        }
        // Fourth: the SYN.
        if !r.flags.syn() {
            return;
        }
        self.irs = r.seq;
        self.rcv_nxt = r.seq + 1;
        self.rcv_adv = self.rcv_nxt;
        self.apply_syn_options(&r);
        self.snd_wnd = r.window as u32;
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = r.seq;
        self.snd_wl2 = r.ack;
        if r.flags.ack() {
            self.ack_of_syn(now, r.ack);
            self.ack_pending = true;
            self.set_state(State::Established, "SYN|ACK");
            self.events.push_back(Event::Connected);
            self.events.push_back(Event::Writable);
            // Data or FIN on the SYN-ACK: processed from the sixth step on,
            // trimmed to the window our SYN offered (§3.10.7.3, fifth: "any
            // other controls or text"; §3.10.7.4, first: only what fits the
            // window is taken), the FIN with it only if it still fits.
            let offered = self.recv_buf.space().min(65_535) as u32;
            self.rcv_adv = self.rcv_nxt + offered;
            let mut payload = seg.payload;
            let mut fin = r.flags.fin();
            if payload.len() > offered as usize {
                payload.truncate(offered as usize);
                fin = false;
            }
            if !payload.is_empty() || fin {
                self.text_and_fin(now, r.seq + 1, payload, fin);
            }
        } else {
            // Simultaneous open: SYN_RECEIVED, send SYN-ACK <SEQ=ISS><ACK=RCV.NXT>.
            self.syn_pending = true;
            self.set_state(State::SynReceived, "SYN (simultaneous open)");
        }
    }

    /// Our SYN was acknowledged by `ack`.
    fn ack_of_syn(&mut self, now: Instant, ack: SeqNum) {
        self.syn_acked = true;
        self.snd_una = ack;
        if self.snd_nxt.before(ack) {
            self.snd_nxt = ack;
        }
        if let Some((s, t)) = self.rtt_probe.take()
            && ack.after_eq(s)
            && !self.syn_retransmitted
        {
            self.rtt.sample(now - t);
        }
        if self.syn_retransmitted {
            // RFC 6298 §5.7: data transmission starts with a 3 s RTO.
            self.rtt.reset_to(Duration::from_secs(3));
        }
        if self.syn_retransmits > 1 {
            // RFC 5681 §3.1 makes the initial window one segment after any
            // retransmitted SYN or SYN-ACK; we follow Linux
            // (`tcp_init_transfer`), which does so after more than one.
            self.cc.set_cwnd(self.smss);
        }
        self.retries = 0;
        if self.snd_una == self.snd_max {
            self.timers.stop(Timer::Rto);
        } else {
            self.timers.set(Timer::Rto, now + self.rtt.rto());
        }
    }

    /// RFC 9293 §3.10.7.4: SYN_RECEIVED and every synchronized state, one
    /// function per step of the RFC, in its order (the third, security, is
    /// not implemented: no IP security compartments).
    fn on_synchronized(&mut self, now: Instant, seg: Segment) {
        if !self.syn_acked && self.handshake_repeat(now, &seg) {
            return;
        }
        let r = seg.repr;
        let seg_len = seg.len();
        let Some(text) = self.check_sequence(now, seg) else {
            return;
        };
        if r.flags.rst() {
            self.check_rst(now, &r);
            return;
        }
        if r.flags.syn() {
            self.check_syn(now);
            return;
        }
        if !self.check_ack(now, &r, text.payload.len(), seg_len) {
            return;
        }
        self.check_text_and_fin(now, text, seg_len - r.flags.syn() as u32);
    }

    /// Before the first step, while our SYN-ACK is unacknowledged (SYN_RECEIVED,
    /// or FIN_WAIT_1 after a CLOSE there): the peer's SYN or SYN-ACK again.
    /// Returns whether the segment was consumed.
    fn handshake_repeat(&mut self, now: Instant, seg: &Segment) -> bool {
        let r = &seg.repr;
        if !r.flags.syn() || r.flags.rst() {
            return false;
        }
        if !r.flags.ack() {
            // A retransmitted SYN: our SYN-ACK was lost. Re-sent within the
            // per-connection reply budget (as out-of-window ACKs are).
            if r.seq == self.irs {
                if self.reply_allowed(now) {
                    self.syn_pending = true;
                }
            } else {
                self.challenge_ack(now);
            }
            return true;
        }
        if r.seq != self.irs {
            return false;
        }
        // Simultaneous open (RFC 9293 figure 7): the peer's SYN-ACK repeats its
        // SYN (SEG.SEQ = IRS) and acknowledges ours. Its sequence number is one
        // below RCV.NXT, so the generic check would drop it; accept it here as
        // Linux does.
        if r.ack.after(self.snd_una) && r.ack.before_eq(self.snd_max) {
            self.establish(now, r, "SYN|ACK (simultaneous open)");
            self.ack_pending = true;
            if !seg.payload.is_empty() || r.flags.fin() {
                self.text_and_fin(now, r.seq + 1, seg.payload.clone(), r.flags.fin());
            }
        } else {
            self.rst_pending = Some((r.ack, None));
        }
        true
    }

    /// First: check the sequence number (§3.4's acceptability, see
    /// [`acceptable`](Self::acceptable)). An unacceptable segment is answered
    /// (unless it is an RST) and dropped: `None`. An acceptable one comes back
    /// trimmed to the window: what is already received and what lies beyond
    /// the right edge (the FIN with it) are cut off.
    fn check_sequence(&mut self, now: Instant, seg: Segment) -> Option<Text> {
        let r = seg.repr;
        let wnd = self.rcv_adv.diff(self.rcv_nxt).max(0) as u32;
        if !self.acceptable(r.seq, seg.len(), wnd) {
            if r.flags.rst() {
                return None;
            }
            if self.state == State::TimeWait && r.flags.fin() {
                // A retransmitted FIN: ACK it again and restart 2MSL.
                self.timers.set(Timer::TimeWait, now + self.cfg.time_wait());
                self.ack_pending = true;
                return None;
            }
            if (seg.payload.is_empty() && !r.flags.fin()) || r.flags.syn() {
                // A pure ACK or a SYN out of window may be part of an ACK loop:
                // rate-limited (RFC 5961 §7; Linux's tcp_oow_rate_limited).
                self.challenge_ack(now);
            } else {
                // Old or out-of-window data: its own duplicate ACK tells RCV.NXT.
                self.owe_ack();
            }
            return None;
        }
        let mut seq = r.seq;
        let mut payload = seg.payload;
        let mut fin = r.flags.fin();
        if r.flags.syn() && seq.before(self.rcv_nxt) {
            seq += 1;
        }
        if seq.before(self.rcv_nxt) {
            let skip = ((self.rcv_nxt - seq) as usize).min(payload.len());
            payload.advance(skip);
            seq += skip as u32;
        }
        let right = self.rcv_nxt + wnd;
        let end = seq + payload.len() as u32;
        if end.after(right) {
            let keep = right.diff(seq).max(0) as usize;
            payload.truncate(keep.min(payload.len()));
            fin = false;
        }
        Some(Text { seq, payload, fin })
    }

    /// Second: an RST in the window (RFC 5961 §3.2: only an exact match
    /// resets; any other gets a challenge ACK).
    fn check_rst(&mut self, now: Instant, r: &TcpRepr) {
        if r.seq == self.rcv_nxt {
            self.on_rst();
        } else {
            self.challenge_ack(now);
        }
    }

    /// Fourth: a SYN in a synchronized state gets a challenge ACK (RFC 5961 §4).
    fn check_syn(&mut self, now: Instant) {
        self.challenge_ack(now);
    }

    /// Fifth: the ACK field. Returns whether processing goes on to the text.
    fn check_ack(&mut self, now: Instant, r: &TcpRepr, payload_len: usize, seg_len: u32) -> bool {
        if !r.flags.ack() {
            return false;
        }
        if !self.syn_acked {
            // SYN_RECEIVED (or FIN_WAIT_1 after a CLOSE there): the ACK must
            // cover our SYN, SND.UNA < SEG.ACK ≤ SND.NXT.
            if r.ack.after(self.snd_una) && r.ack.before_eq(self.snd_max) {
                self.establish(now, r, "ACK");
            } else {
                // <SEQ=SEG.ACK><CTL=RST>, and the connection stays.
                self.rst_pending = Some((r.ack, None));
                return false;
            }
        } else {
            // RFC 5961 §5.2: acceptable ACKs lie in SND.UNA − MAX.SND.WND ..= SND.NXT.
            let lowest = self.snd_una + 0u32.wrapping_sub(self.max_snd_wnd);
            if r.ack.after(self.snd_max) || r.ack.before(lowest) {
                self.challenge_ack(now);
                return false;
            }
            self.process_ack(now, r, payload_len, seg_len);
        }
        // The closing states move on once our FIN is acknowledged.
        match self.state {
            State::FinWait1 if self.fin_acked() => {
                self.set_state(State::FinWait2, "ACK of FIN");
                if self.orphaned {
                    self.timers
                        .set(Timer::FinWait2, now + self.cfg.fin_wait2_timeout);
                }
            }
            State::Closing if self.fin_acked() => self.enter_time_wait(now, "ACK of FIN"),
            State::LastAck if self.fin_acked() => self.enter_closed("ACK of FIN"),
            _ => {}
        }
        self.state != State::Closed
    }

    /// Seventh and eighth: the segment text and the FIN, then the ACK they owe.
    /// `text_len` is the segment's length before trimming (SYN excluded):
    /// what was trimmed away was a duplicate (or beyond the window), and such
    /// a segment owes its own immediate ACK, as an out-of-order one does.
    fn check_text_and_fin(&mut self, now: Instant, text: Text, text_len: u32) {
        let trimmed = text.payload.len() as u32 + text.fin as u32 != text_len;
        let owes = self.text_and_fin(now, text.seq, text.payload, text.fin);
        if self.state == State::Closed {
            return;
        }
        if trimmed || owes {
            self.owe_ack();
        } else if text_len > 0 {
            self.ack_pending = true;
        }
    }

    /// SYN_RECEIVED → ESTABLISHED on an acceptable ACK of our SYN (RFC 9293
    /// §3.10.7.4, fifth step): take the peer's window, then a queued shutdown
    /// moves on to FIN_WAIT_1.
    fn establish(&mut self, now: Instant, r: &TcpRepr, cause: &str) {
        self.snd_wnd = r.window as u32;
        self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
        self.snd_wl1 = r.seq;
        self.snd_wl2 = r.ack;
        self.ack_of_syn(now, r.ack);
        // After a CLOSE in SYN_RECEIVED the state is FIN_WAIT_1 already (the
        // ACK may cover the FIN too: the caller moves on to FIN_WAIT_2).
        if self.state == State::SynReceived {
            self.set_state(State::Established, cause);
        }
        self.events.push_back(Event::Connected);
        self.events.push_back(Event::Writable);
        if self.fin_queued && self.state == State::Established {
            self.set_state(State::FinWait1, "queued shutdown");
        }
    }

    /// RFC 9293 §3.4 ("segment acceptability") and §3.10.7.4, first step, as
    /// Linux's `tcp_sequence` applies it: a segment is acceptable unless it
    /// ends before RCV.NXT or starts beyond the right window edge. Beyond the
    /// RFC's four cases this takes a segment at RCV.NXT under a zero window
    /// (its ACK and RST count; its text is trimmed away), a segment starting
    /// exactly at the right edge (pure ACKs carry SEQ = SND.MAX, which may be
    /// there), and one covering the whole window.
    fn acceptable(&self, seq: SeqNum, len: u32, wnd: u32) -> bool {
        let nxt = self.rcv_nxt;
        let end = seq + len;
        !end.before(nxt) && !seq.after(nxt + wnd)
    }

    /// An acceptable RST with the exact sequence number.
    fn on_rst(&mut self) {
        match self.state {
            State::SynReceived if self.passive => {
                // Back to LISTEN: for us, the embryonic connection just goes away.
                self.recv_buf.clear();
                self.send_buf.clear();
                self.error = Some(Error::ConnectionReset);
                self.enter_closed("RST in SYN_RECEIVED");
            }
            State::SynReceived => self.fail(Error::ConnectionRefused, "RST"),
            State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                self.recv_buf.clear();
                self.fail(Error::ConnectionReset, "RST");
            }
            _ => self.enter_closed("RST"),
        }
    }

    /// RFC 9293 §3.10.7.4 fifth step for the synchronized states, with RFC 5681
    /// / 6582 congestion control and RFC 6298 timer management.
    fn process_ack(&mut self, now: Instant, r: &TcpRepr, payload_len: usize, seg_len: u32) {
        let ack = r.ack;
        // RFC 1122 §4.2.2.17: an acceptable ACK answers our zero-window probes.
        self.probes_out = 0;
        // The send window moves only for SND.UNA ≤ SEG.ACK (RFC 9293
        // §3.10.7.4, fifth step), judged before this ACK moves SND.UNA.
        let ack_not_old = !ack.before(self.snd_una);
        if ack.after(self.snd_una) {
            self.ack_new_data(now, ack);
        } else if ack == self.snd_una
            && payload_len == 0
            && seg_len == 0
            && self.snd_max != self.snd_una
            && r.window as u32 == self.snd_wnd
            && r.window != 0
        {
            // RFC 5681 §2: a duplicate ACK. Not one that keeps the window shut:
            // those answer zero-window probes (RFC 9293 §3.8.6.1), whose byte
            // lies beyond the window and was never in flight, so they say
            // nothing about loss.
            self.duplicate_ack(now, ack);
        }
        if ack_not_old {
            self.update_send_window(now, r);
        }
    }

    /// SND.UNA < SEG.ACK ≤ SND.NXT: "set SND.UNA <- SEG.ACK", free what is
    /// acknowledged, take an RTT sample (Karn), grow the window and restart
    /// the timer (RFC 6298 §5.2–5.3).
    fn ack_new_data(&mut self, now: Instant, ack: SeqNum) {
        let acked = (ack - self.snd_una) as u32;
        let flight_before = self.flight_size();
        // Our SYN is acknowledged before this point (`syn_acked`): every
        // acknowledged octet from here on is data or our FIN.
        let data_acked = (acked as usize).min(self.send_buf.len());
        self.send_buf.consume(data_acked);
        self.snd_una = ack;
        if self.snd_nxt.before(ack) {
            self.snd_nxt = ack;
        }
        let mut rtt_sample = None;
        if let Some((s, t)) = self.rtt_probe
            && ack.after_eq(s)
        {
            rtt_sample = Some(now - t);
            self.rtt.sample(now - t);
            self.rtt_probe = None;
        }
        self.retries = 0;
        let action =
            self.recovery
                .on_new_ack(&mut *self.cc, now, ack, acked, flight_before, rtt_sample);
        if action == AckAction::RetransmitFirst {
            // NewReno partial ACK: retransmit the next hole and reset the timer.
            self.retransmit_first = true;
        }
        if self.snd_una == self.snd_max {
            self.timers.stop(Timer::Rto);
        } else {
            self.timers.set(Timer::Rto, now + self.rtt.rto());
        }
        if data_acked > 0 {
            self.events.push_back(Event::Writable);
        }
    }

    /// A duplicate ACK (RFC 5681 §2): the third starts fast retransmit.
    fn duplicate_ack(&mut self, now: Instant, ack: SeqNum) {
        let flight = self.flight_size();
        let action = self
            .recovery
            .on_dup_ack(&mut *self.cc, now, ack, self.snd_max, flight);
        if action == AckAction::RetransmitFirst {
            self.retransmit_first = true;
            self.stats.fast_retransmits += 1;
            self.rtt_probe = None;
            // The timer restarts with the fast retransmission (RFC 6298
            // §5.1 for the segment sent; Linux re-arms it here too), so
            // the RTO does not fire on the heels of the repair.
            self.timers.set(Timer::Rto, now + self.rtt.rto());
        }
    }

    /// "If SND.UNA ≤ SEG.ACK ≤ SND.NXT, the send window should be updated":
    /// if WL1 < SEG.SEQ, or WL1 = SEG.SEQ and WL2 ≤ SEG.ACK.
    fn update_send_window(&mut self, now: Instant, r: &TcpRepr) {
        if !(self.snd_wl1.before(r.seq) || (self.snd_wl1 == r.seq && self.snd_wl2.before_eq(r.ack)))
        {
            return;
        }
        let old = self.snd_wnd;
        self.snd_wnd = r.window as u32;
        self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
        self.snd_wl1 = r.seq;
        self.snd_wl2 = r.ack;
        if old == 0 && self.snd_wnd > 0 {
            self.timers.stop(Timer::Persist);
            self.persist_backoff = 0;
            // What went out while the window was shut was a probe beyond
            // it, refused unless this ACK covers it: send again from
            // SND.UNA now rather than after an RTO (as BSD pulls SND.NXT
            // back on a zero window).
            self.snd_nxt = self.snd_una;
            if self.snd_una != self.snd_max && !self.timers.is_set(Timer::Rto) {
                self.timers.set(Timer::Rto, now + self.rtt.rto());
            }
        }
    }

    /// Seventh (segment text) and eighth (FIN) steps. Returns whether the
    /// segment owes its own immediate ACK (out of order, hole-filling, or a
    /// retransmitted FIN); in-order text and FIN leave a cumulative ACK owed.
    fn text_and_fin(&mut self, now: Instant, seq: SeqNum, payload: Bytes, fin: bool) -> bool {
        if payload.is_empty() && !fin {
            return false;
        }
        if !self.state.can_receive() || self.state == State::SynReceived {
            // CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT: the peer's FIN came already;
            // a retransmitted FIN is re-acknowledged.
            if fin && self.state == State::TimeWait {
                self.timers.set(Timer::TimeWait, now + self.cfg.time_wait());
            }
            return fin;
        }
        if self.orphaned && !payload.is_empty() {
            // The application is gone: new data can never be read (as Linux).
            self.abort_with(now, Error::ConnectionAborted, "data after close");
            return false;
        }
        let ins = self.recv_buf.insert(self.rcv_nxt, seq, payload, fin);
        self.rcv_nxt += ins.advanced;
        if ins.advanced > 0 {
            self.stats.bytes_received += ins.advanced as u64;
            self.events.push_back(Event::Readable);
        }
        // RFC 5681 §4.2: out-of-order and hole-filling segments are ACKed at
        // once, each on its own; in-order data gets one cumulative ACK per
        // batch (every batch is ACKed, until delayed ACKs exist).
        let owes = ins.out_of_order || ins.filled_hole;
        if !owes {
            self.ack_pending = true;
        }
        if ins.fin {
            self.on_fin(now);
        }
        owes
    }

    /// Eighth step: the peer's FIN is in order.
    fn on_fin(&mut self, now: Instant) {
        self.rcv_nxt += 1;
        self.fin_received = true;
        self.ack_pending = true;
        self.events.push_back(Event::Readable);
        match self.state {
            State::SynReceived | State::Established => self.set_state(State::CloseWait, "FIN"),
            State::FinWait1 => {
                if self.fin_acked() {
                    self.enter_time_wait(now, "FIN");
                } else {
                    self.set_state(State::Closing, "FIN (simultaneous close)");
                }
            }
            State::FinWait2 => self.enter_time_wait(now, "FIN"),
            _ => {}
        }
    }

    fn enter_time_wait(&mut self, now: Instant, cause: &str) {
        self.timers.stop_all();
        self.timers.set(Timer::TimeWait, now + self.cfg.time_wait());
        self.send_buf.clear();
        self.set_state(State::TimeWait, cause);
    }
}
