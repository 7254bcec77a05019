//! Segment arrival: RFC 9293 §3.10.7.3 (SYN_SENT) and §3.10.7.4 (the other
//! states), with the RFC 5961 hardening of RST, SYN and ACK processing.

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

/// SEG.LEN ([`Segment::len`]) of a header and its payload.
fn seg_len(r: &TcpRepr, payload: &Bytes) -> u32 {
    payload.len() as u32 + r.flags.syn() as u32 + r.flags.fin() as u32
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
            State::TimeWait => self.on_time_wait(now, &seg),
            _ => self.on_synchronized(now, &seg.repr, seg.payload),
        }
        self.cur_seg = None;
    }

    /// TIME_WAIT: the record's rules (`crate::timewait`), the same the
    /// endpoint's table applies once the connection is freed. A connection
    /// alone cannot reopen its 4-tuple (the endpoint's record does): a SYN
    /// that could is answered as an old one, with a rate-limited ACK.
    fn on_time_wait(&mut self, now: Instant, seg: &Segment) {
        use crate::timewait::TimeWaitAction as A;
        let Some(tw) = self.tw.as_mut() else {
            return;
        };
        let interval = self.cfg.time_wait_ack_interval;
        let mut action = tw.on_segment(
            now,
            &seg.repr,
            seg.payload.len(),
            self.cfg.time_wait(),
            interval,
        );
        if matches!(action, A::Reopen { .. }) {
            action = tw.limited_ack(now, interval);
        }
        let deadline = tw.deadline;
        match action {
            A::Ack => {
                self.timers.set(Timer::TimeWait, deadline);
                self.pending.ack = true;
            }
            A::Close => self.enter_closed("RST"),
            A::Ignore | A::RateLimited | A::Reopen { .. } => {}
        }
    }

    /// RFC 9293 §3.10.7.3.
    fn on_syn_sent(&mut self, now: Instant, seg: Segment) {
        let r = seg.repr;
        // First: check the ACK; ISS < SEG.ACK ≤ SND.NXT.
        if r.flags.ack() && (r.ack.before_eq(self.snd.iss) || r.ack.after(self.snd.max)) {
            if !r.flags.rst() {
                self.pending.rst = Some((r.ack, None));
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
        self.rcv.irs = r.seq;
        self.rcv.nxt = r.seq + 1;
        self.rcv.adv = self.rcv.nxt;
        self.apply_syn_options(now, &r);
        self.snd.wnd = r.window as u32;
        self.snd.max_wnd = self.snd.wnd;
        self.snd.wl1 = r.seq;
        self.snd.wl2 = r.ack;
        if r.flags.ack() {
            let tsecr = r.options.timestamps.map(|(_, e)| e);
            self.ack_of_syn(now, r.ack, tsecr);
            self.pending.ack = true;
            self.set_state(State::Established, "SYN|ACK");
            self.events.push_back(Event::Connected);
            self.notify(Event::Writable);
            // Data or FIN on the SYN-ACK: processed from the sixth step on,
            // trimmed to the window our SYN offered (§3.10.7.3, fifth: "any
            // other controls or text"; §3.10.7.4, first: only what fits the
            // window is taken), the FIN with it only if it still fits.
            let offered = self.rcv.buf.space().min(65_535) as u32;
            self.rcv.adv = self.rcv.nxt + offered;
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
            self.handshake.syn_pending = true;
            self.set_state(State::SynReceived, "SYN (simultaneous open)");
        }
    }

    /// Our SYN was acknowledged by `ack` (with `tsecr`, the TSecr of the
    /// acknowledging segment).
    fn ack_of_syn(&mut self, now: Instant, ack: SeqNum, tsecr: Option<u32>) {
        self.snd.syn_acked = true;
        self.snd.una = ack;
        self.sent.on_ack(ack, &mut |_| {});
        self.peer_alive(now);
        self.user_timeout_progress(now);
        let timed = self.sent.take_rtt_sample(ack, now);
        // RFC 7323 §4.1: with timestamps the echoed TSval times the handshake,
        // retransmitted or not; otherwise Karn's rule applies.
        if let Some(r) = tsecr.and_then(|e| self.opts.ts.rtt(now, e, self.cfg.rto_max)) {
            self.rtt.sample(r);
            self.rack.on_rtt_sample(r);
        } else if let Some(r) = timed
            && !self.handshake.rto_retransmitted
        {
            self.rtt.sample(r);
            self.rack.on_rtt_sample(r);
        }
        if self.handshake.rto_retransmitted {
            // RFC 6298 §5.7: data transmission starts with a 3 s RTO.
            self.rtt.reset_to(Duration::from_secs(3));
        }
        if self.handshake.retransmits > 1 {
            // RFC 5681 §3.1 makes the initial window one segment after any
            // retransmitted SYN or SYN-ACK; we follow Linux
            // (`tcp_init_transfer`), which does so after more than one.
            self.cc.set_cwnd(self.opts.smss);
        }
        self.timers.retries = 0;
        if !self.sent.outstanding() {
            self.timers.stop(Timer::Rto);
        } else {
            self.timers.set(Timer::Rto, now + self.rtt.rto());
        }
    }

    /// RFC 9293 §3.10.7.4: SYN_RECEIVED and every synchronized state, one
    /// function per step of the RFC, in its order (the third, security, is
    /// not implemented: no IP security compartments).
    ///
    /// The header is borrowed and the payload moved on alone: a [`Segment`]
    /// moved by value is copied at each call (its header is 72 bytes).
    fn on_synchronized(&mut self, now: Instant, r: &TcpRepr, payload: Bytes) {
        if !self.snd.syn_acked && self.handshake_repeat(now, r, &payload) {
            return;
        }
        let seg_len = seg_len(r, &payload);
        let Some(text) = self.check_sequence(now, r, payload) else {
            return;
        };
        // RFC 7323 §4.3 (2): an acceptable segment may update TS.Recent.
        if let Some((tsval, _)) = r.options.timestamps {
            self.opts.ts.update_recent(now, r.seq, tsval);
        }
        if r.flags.rst() {
            self.check_rst(now, r);
            return;
        }
        if r.flags.syn() {
            self.check_syn(now);
            return;
        }
        if !self.check_ack(now, r, text.payload.len(), seg_len) {
            return;
        }
        // Bytes trimmed off the front were received already: a duplicate.
        let first = r.seq + r.flags.syn() as u32;
        if text.seq.after(first) {
            self.stats.rcv_dup_packets += 1;
            self.rcv.dsack = Some((first, text.seq));
        }
        let in_order_data = !text.payload.is_empty() && text.seq == self.rcv.nxt;
        self.check_text_and_fin(now, text, seg_len - r.flags.syn() as u32);
        self.rcv.dsack = None;
        if in_order_data {
            self.autotune_on_data(now, r.options.timestamps.map(|(_, e)| e));
        }
    }

    /// Before the first step, while our SYN-ACK is unacknowledged (SYN_RECEIVED,
    /// or FIN_WAIT_1 after a CLOSE there): the peer's SYN or SYN-ACK again.
    /// Returns whether the segment was consumed.
    fn handshake_repeat(&mut self, now: Instant, r: &TcpRepr, payload: &Bytes) -> bool {
        if !r.flags.syn() || r.flags.rst() {
            return false;
        }
        if !r.flags.ack() {
            // A retransmitted SYN: our SYN-ACK was lost. Re-sent within the
            // per-connection reply budget (as out-of-window ACKs are).
            if r.seq == self.rcv.irs {
                // The SYN-ACK echoes this SYN's TSval, not the first one's
                // (Linux's tcp_check_req refreshes ts_recent): echoing the
                // first would hand the peer an RTT sample spanning all its
                // SYN retransmissions (31 s after five of them).
                if let Some((tsval, _)) = r.options.timestamps {
                    self.opts.ts.update_recent(now, r.seq, tsval);
                }
                if self.reply_allowed(now) {
                    self.handshake.syn_pending = true;
                }
            } else {
                self.challenge_ack(now);
            }
            return true;
        }
        if r.seq != self.rcv.irs {
            return false;
        }
        // Simultaneous open (RFC 9293 figure 7): the peer's SYN-ACK repeats its
        // SYN (SEG.SEQ = IRS) and acknowledges ours. Its sequence number is one
        // below RCV.NXT, so the generic check would drop it; accept it here as
        // Linux does.
        if r.ack.after(self.snd.una) && r.ack.before_eq(self.snd.max) {
            self.establish(now, r, "SYN|ACK (simultaneous open)");
            self.pending.ack = true;
            if !payload.is_empty() || r.flags.fin() {
                // Trimmed to the window we advertised, as every segment's
                // text is (RFC 9293 §3.10.7.4): beyond its right edge, data
                // and the FIN with it are cut off (found by the endpoint
                // fuzz target: 13,257 bytes taken into a 12,288-byte window).
                let wnd = self.rcv.adv.diff(self.rcv.nxt).max(0) as usize;
                let mut payload = payload.clone();
                let mut fin = r.flags.fin();
                if payload.len() > wnd {
                    payload.truncate(wnd);
                    fin = false;
                }
                self.text_and_fin(now, r.seq + 1, payload, fin);
            }
        } else {
            self.pending.rst = Some((r.ack, None));
        }
        true
    }

    /// First: check the sequence number (§3.4's acceptability, see
    /// [`acceptable`](Self::acceptable)). An unacceptable segment is answered
    /// (unless it is an RST) and dropped: `None`. An acceptable one comes back
    /// trimmed to the window: what is already received and what lies beyond
    /// the right edge (the FIN with it) are cut off.
    fn check_sequence(&mut self, now: Instant, r: &TcpRepr, payload: Bytes) -> Option<Text> {
        // RFC 7323 §5.3 R1 (PAWS): a segment whose TSval is older than
        // TS.Recent is not acceptable — answered with an ACK (rate-limited,
        // as Linux's tcp_validate_incoming) and dropped. An RST is taken
        // even so (as Linux: its sequence number decides).
        if !r.flags.rst()
            && let Some((tsval, _)) = r.options.timestamps
            && self.opts.ts.paws_rejects(now, tsval)
        {
            self.stats.paws_rejected += 1;
            let end = r.seq + payload.len() as u32;
            if !payload.is_empty() {
                // Data: its own duplicate ACK, not rate-limited (Linux's
                // tcp_send_dupack; tcp_oow_rate_limited spares data). Bytes
                // received already are a duplicate, reported by a D-SACK
                // block (RFC 2883 §4): a late original behind its
                // retransmission carries an older TSval.
                if r.seq.before(self.rcv.nxt) {
                    // Its part below RCV.NXT (as Linux's tcp_send_dupack).
                    let dup_end = if end.before(self.rcv.nxt) {
                        end
                    } else {
                        self.rcv.nxt
                    };
                    self.stats.rcv_dup_packets += 1;
                    self.rcv.dsack = Some((r.seq, dup_end));
                }
                self.owe_ack();
            } else {
                self.challenge_ack(now);
            }
            return None;
        }
        let wnd = self.rcv.adv.diff(self.rcv.nxt).max(0) as u32;
        if !self.acceptable(r.seq, seg_len(r, &payload), wnd) {
            if r.flags.rst() {
                return None;
            }
            if (payload.is_empty() && !r.flags.fin()) || r.flags.syn() {
                // A pure ACK or a SYN out of window may be part of an ACK loop:
                // rate-limited (RFC 5961 §7; Linux's tcp_oow_rate_limited).
                self.challenge_ack(now);
            } else {
                // Old or out-of-window data: its own duplicate ACK tells
                // RCV.NXT; old data is reported as a duplicate (RFC 2883).
                let end = r.seq + payload.len() as u32;
                if !payload.is_empty() && end.before_eq(self.rcv.nxt) {
                    self.stats.rcv_dup_packets += 1;
                    self.rcv.dsack = Some((r.seq, end));
                }
                self.owe_ack();
            }
            return None;
        }
        let mut seq = r.seq;
        let mut payload = payload;
        let mut fin = r.flags.fin();
        if r.flags.syn() && seq.before(self.rcv.nxt) {
            seq += 1;
        }
        if seq.before(self.rcv.nxt) {
            let skip = ((self.rcv.nxt - seq) as usize).min(payload.len());
            payload.advance(skip);
            seq += skip as u32;
        }
        let right = self.rcv.nxt + wnd;
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
        if r.seq == self.rcv.nxt {
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
        if !self.snd.syn_acked {
            // SYN_RECEIVED (or FIN_WAIT_1 after a CLOSE there): the ACK must
            // cover our SYN, SND.UNA < SEG.ACK ≤ SND.NXT.
            if r.ack.after(self.snd.una) && r.ack.before_eq(self.snd.max) {
                self.establish(now, r, "ACK");
            } else {
                // <SEQ=SEG.ACK><CTL=RST>, and the connection stays.
                self.pending.rst = Some((r.ack, None));
                return false;
            }
        } else {
            // RFC 5961 §5.2: acceptable ACKs lie in SND.UNA − MAX.SND.WND ..= SND.NXT.
            let lowest = self.snd.una + 0u32.wrapping_sub(self.snd.max_wnd);
            if r.ack.after(self.snd.max) || r.ack.before(lowest) {
                self.challenge_ack(now);
                return false;
            }
            self.process_ack(now, r, payload_len, seg_len);
        }
        // The closing states move on once our FIN is acknowledged.
        match self.state {
            State::FinWait1 if self.snd.fin_acked() => {
                self.set_state(State::FinWait2, "ACK of FIN");
                if self.orphaned {
                    self.timers
                        .set(Timer::FinWait2, now + self.cfg.fin_wait2_timeout);
                }
            }
            State::Closing if self.snd.fin_acked() => self.enter_time_wait(now, "ACK of FIN"),
            State::LastAck if self.snd.fin_acked() => self.enter_closed("ACK of FIN"),
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
        // A pure ACK has no text: not even the call.
        let owes = (!text.payload.is_empty() || text.fin)
            && self.text_and_fin(now, text.seq, text.payload, text.fin);
        if self.state == State::Closed {
            return;
        }
        if trimmed {
            // A retransmission of what we hold, or text beyond the window:
            // quickack mode (Linux's tcp_data_queue, out_of_window).
            self.enter_quickack();
        }
        if trimmed || owes {
            self.owe_ack();
        } else if text_len > 0 && !self.pending.data_ack {
            // Text the state cannot take is still acknowledged at once;
            // in-order text owes an ACK that may wait (`delack.rs`).
            self.pending.ack = true;
        }
    }

    /// SYN_RECEIVED → ESTABLISHED on an acceptable ACK of our SYN (RFC 9293
    /// §3.10.7.4, fifth step): take the peer's window, then a queued shutdown
    /// moves on to FIN_WAIT_1.
    fn establish(&mut self, now: Instant, r: &TcpRepr, cause: &str) {
        self.snd.wnd = self.opts.seg_wnd(r);
        self.snd.max_wnd = self.snd.max_wnd.max(self.snd.wnd);
        self.snd.wl1 = r.seq;
        self.snd.wl2 = r.ack;
        self.ack_of_syn(now, r.ack, r.options.timestamps.map(|(_, e)| e));
        // After a CLOSE in SYN_RECEIVED the state is FIN_WAIT_1 already (the
        // ACK may cover the FIN too: the caller moves on to FIN_WAIT_2).
        if self.state == State::SynReceived {
            self.set_state(State::Established, cause);
        }
        self.events.push_back(Event::Connected);
        self.notify(Event::Writable);
        if self.snd.fin_queued && self.state == State::Established {
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
        let nxt = self.rcv.nxt;
        let end = seq + len;
        !end.before(nxt) && !seq.after(nxt + wnd)
    }

    /// An acceptable RST with the exact sequence number.
    fn on_rst(&mut self) {
        match self.state {
            State::SynReceived if self.passive => {
                // Back to LISTEN: for us, the embryonic connection just goes away.
                self.rcv.buf.clear();
                self.snd.buf.clear();
                self.error = Some(Error::ConnectionReset);
                self.enter_closed("RST in SYN_RECEIVED");
            }
            State::SynReceived => self.fail(Error::ConnectionRefused, "RST"),
            State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                self.rcv.buf.clear();
                self.fail(Error::ConnectionReset, "RST");
            }
            _ => self.enter_closed("RST"),
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
            // CLOSE_WAIT, CLOSING, LAST_ACK: the peer's FIN came already;
            // a retransmitted FIN is re-acknowledged.
            return fin;
        }
        if self.orphaned && !payload.is_empty() {
            // The application is gone: new data can never be read (as Linux).
            self.abort_with(now, Error::ConnectionAborted, "data after close");
            return false;
        }
        let len = payload.len() as u32;
        let ins = self.rcv.buf.insert(self.rcv.nxt, seq, payload, fin);
        if ins.out_of_order {
            self.stats.rcv_ooo_packets += 1;
        }
        if ins.duplicate {
            // Counted once per segment (its front may have been trimmed as
            // a duplicate already).
            if self.rcv.dsack.is_none() {
                self.stats.rcv_dup_packets += 1;
            }
            self.rcv.dsack = Some((seq, seq + len));
        }
        if let Some(overlap) = ins.overlap
            && self.rcv.dsack.is_none()
        {
            // Its tail overlapped data held out of order: that part came
            // twice (RFC 2883 §4; Linux's tcp_ofo_queue, tcp_dsack_extend).
            self.stats.rcv_dup_packets += 1;
            self.rcv.dsack = Some(overlap);
        }
        self.rcv.nxt += ins.advanced;
        if ins.advanced > 0 {
            self.stats.bytes_received += ins.advanced as u64;
            self.notify(Event::Readable);
        }
        // RFC 5681 §4.2: out-of-order and hole-filling segments are ACKed at
        // once, each on its own, and a duplicate or out-of-order one puts
        // the connection in quickack mode (Linux's tcp_enter_quickack_mode);
        // in-order data gets one cumulative ACK per batch, which may wait
        // for the delayed-ACK timer (`delack.rs`).
        let owes = ins.out_of_order || ins.filled_hole;
        if ins.out_of_order || ins.duplicate {
            self.enter_quickack();
        }
        if !owes && ins.advanced > 0 {
            self.ack_policy_on_data(now, len);
        } else if !owes {
            self.pending.ack = true;
        }
        if ins.fin {
            self.on_fin(now);
        }
        owes
    }

    /// Eighth step: the peer's FIN is in order.
    fn on_fin(&mut self, now: Instant) {
        self.rcv.nxt += 1;
        self.rcv.fin_received = true;
        self.pending.ack = true;
        self.notify(Event::Readable);
        match self.state {
            State::SynReceived | State::Established => self.set_state(State::CloseWait, "FIN"),
            State::FinWait1 => {
                if self.snd.fin_acked() {
                    self.enter_time_wait(now, "FIN");
                } else {
                    self.set_state(State::Closing, "FIN (simultaneous close)");
                }
            }
            State::FinWait2 => self.enter_time_wait(now, "FIN"),
            _ => {}
        }
    }
}
