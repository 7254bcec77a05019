//! RFC 9293 §3.10.7.4, fifth step, in the synchronized states: what an
//! acceptable ACK does to the send sequence space, the RTT estimate, the
//! congestion window and the timers (RFC 5681, RFC 6582, RFC 6298).

use super::rack::AckInfo;
use super::recovery::AckAction;
use super::sent::Lost;
use super::{Connection, Event, Timer};
use crate::seq::SeqNum;
use crate::time::Instant;
use crate::wire::TcpRepr;

impl Connection {
    /// RFC 9293 §3.10.7.4 fifth step for the synchronized states, with RFC 5681
    /// / 6582 congestion control and RFC 6298 timer management; with SACK,
    /// RACK-TLP and PRR (`loss.rs`).
    pub(super) fn process_ack(
        &mut self,
        now: Instant,
        r: &TcpRepr,
        payload_len: usize,
        seg_len: u32,
    ) {
        let ack = r.ack;
        // RFC 1122 §4.2.2.17: an acceptable ACK answers our zero-window probes
        // (and §4.2.3.6, keepalive probes).
        self.timers.probes_out = 0;
        self.peer_alive(now);
        // The send window moves only for SND.UNA ≤ SEG.ACK (RFC 9293
        // §3.10.7.4, fifth step), judged before this ACK moves SND.UNA.
        let ack_not_old = !ack.before(self.snd.una);
        let wnd = self.opts.seg_wnd(r);
        let info = self.ack_info(now, r.options.timestamps.map(|(_, e)| e));
        let una_before = self.snd.una;
        let sacked_before = self.sent.sacked_bytes();
        let mut ended = false;
        let mut dup = false;
        if ack.after(self.snd.una) {
            ended = self.ack_new_data(now, ack, r.options.timestamps.map(|(_, e)| e), info);
        } else if ack == self.snd.una
            && payload_len == 0
            && seg_len == 0
            && self.snd.max != self.snd.una
            && wnd == self.snd.wnd
            && wnd != 0
        {
            // RFC 5681 §2: a duplicate ACK. Not one that keeps the window shut:
            // those answer zero-window probes (RFC 9293 §3.8.6.1), whose byte
            // lies beyond the window and was never in flight, so they say
            // nothing about loss.
            self.duplicate_ack(now, ack);
            dup = true;
        }
        if ack_not_old {
            self.update_send_window(now, r, ack.after(una_before));
        }
        if self.frto != super::frto::Frto::Off && (dup || ack.after(una_before)) {
            self.frto_on_ack(now, ack, ack.after(una_before));
        }
        if !self.opts.sack {
            self.note_delivered(now, ack.diff(una_before).max(0) as u32);
            return;
        }
        let dsack = if r.options.sack.is_empty() {
            None
        } else {
            self.take_sack_blocks(r, info)
        };
        let acked = ack.diff(una_before).max(0) as u32;
        let delivered = (acked + self.sent.sacked_bytes()).saturating_sub(sacked_before);
        self.note_delivered(now, delivered);
        let out = super::loss::AckOutcome {
            delivered,
            dsack,
            ended,
            pure_dup: dup && r.options.sack.is_empty(),
        };
        self.after_ack(now, ack, out);
    }

    /// The peer's SACK blocks (RFC 2018 §3) mark the scoreboard; blocks
    /// below SND.UNA (or reaching above SND.MAX) are ignored. A first block
    /// below SND.UNA, or inside the second, is a D-SACK (RFC 2883 §4): the
    /// peer received something twice; it is returned.
    fn take_sack_blocks(&mut self, r: &TcpRepr, info: AckInfo) -> Option<(SeqNum, SeqNum)> {
        let blocks = r.options.sack.as_slice();
        let mut dsack = None;
        if let Some(&(l, rr)) = blocks.first() {
            let inside_second = blocks
                .get(1)
                .is_some_and(|&(l2, r2)| !l.before(l2) && !rr.after(r2));
            if rr.before_eq(self.snd.una) || inside_second {
                self.stats.dsack_received += 1;
                dsack = Some((l, rr));
            }
        }
        // In ascending order (RFC 8985 §6.2 step 2 judges reordering by
        // delivery in sequence order; the option lists the latest first).
        let mut sorted = [(SeqNum::new(0), SeqNum::new(0)); 4];
        let n = blocks.len().min(4);
        sorted[..n].copy_from_slice(&blocks[..n]);
        let una = self.snd.una;
        sorted[..n].sort_unstable_by_key(|&(l, _)| l.diff(una));
        let rack = &mut self.rack;
        for &(left, right) in &sorted[..n] {
            if !left.before(right) || right.before_eq(self.snd.una) || right.after(self.snd.max) {
                continue;
            }
            self.sent
                .on_sack(left, right, &mut |e| rack.on_delivered(e, info));
        }
        dsack
    }

    /// SND.UNA < SEG.ACK ≤ SND.NXT: "set SND.UNA <- SEG.ACK", free what is
    /// acknowledged, take an RTT sample (from the echoed timestamp, RFC 7323
    /// §4.1, or the timed segment under Karn's rule), grow the window and
    /// restart the timer (RFC 6298 §5.2–5.3). Returns whether a recovery
    /// episode (or the timeout's loss state) ended.
    pub(super) fn ack_new_data(
        &mut self,
        now: Instant,
        ack: SeqNum,
        tsecr: Option<u32>,
        info: AckInfo,
    ) -> bool {
        let acked = (ack - self.snd.una) as u32;
        let flight_before = self.snd.flight();
        // Our SYN is acknowledged before this point (`syn_acked`): every
        // acknowledged octet from here on is data or our FIN.
        let data_acked = (acked as usize).min(self.snd.buf.len());
        self.snd.buf.consume(data_acked);
        self.snd.una = ack;
        // Something got through: a soft ICMP error is forgotten (Linux's
        // `tcp_ack` clears `sk_err_soft`).
        self.soft_error = None;
        let rack = &mut self.rack;
        self.sent.on_ack(ack, &mut |e| rack.on_delivered(e, info));
        let timed = self.sent.take_rtt_sample(ack, now);
        let rtt_sample = tsecr
            .and_then(|e| self.opts.ts.rtt(now, e, self.cfg.rto_max))
            .or(timed);
        if let Some(r) = rtt_sample {
            self.rtt.sample(r);
            self.rack.on_rtt_sample(r);
        }
        self.timers.retries = 0;
        self.user_timeout_progress(now);
        let (cc, snd_nxt) = (&mut *self.cc, self.snd.max);
        let action =
            self.recovery
                .on_new_ack(cc, now, ack, acked, flight_before, rtt_sample, snd_nxt);
        if action == AckAction::RetransmitFirst {
            // NewReno partial ACK: retransmit the next hole and reset the timer.
            self.sent.mark_first_lost(Lost::Fast);
        }
        let ended = action == AckAction::Ended;
        self.autotune_send_buffer();
        self.check_eifel(info, ack);
        if !self.sent.outstanding() {
            self.timers.stop(Timer::Rto);
            self.timers.stop(Timer::Reorder);
        } else {
            self.timers.set(Timer::Rto, now + self.rtt.rto());
        }
        if data_acked > 0 {
            self.notify(Event::Writable);
        }
        ended
    }

    /// A duplicate ACK (RFC 5681 §2): the third starts fast retransmit.
    pub(super) fn duplicate_ack(&mut self, now: Instant, ack: SeqNum) {
        let flight = self.snd.flight();
        let cwnd_before = self.cc.cwnd();
        let action = self
            .recovery
            .on_dup_ack(&mut *self.cc, now, ack, self.snd.max, flight);
        if action == AckAction::RetransmitFirst {
            self.sent.mark_first_lost(Lost::Fast);
            self.stats.fast_retransmits += 1;
            self.stats.recovery_episodes += 1;
            self.congestion_event(
                now,
                super::types::CongestionCause::DuplicateAcks,
                flight,
                cwnd_before,
            );
            self.sent.stop_timing();
            // The timer restarts with the fast retransmission (RFC 6298
            // §5.1 for the segment sent; Linux re-arms it here too), so
            // the RTO does not fire on the heels of the repair.
            self.timers.set(Timer::Rto, now + self.rtt.rto());
        }
    }

    /// "If SND.UNA ≤ SEG.ACK ≤ SND.NXT, the send window should be updated":
    /// if WL1 < SEG.SEQ, or WL1 = SEG.SEQ and WL2 ≤ SEG.ACK.
    pub(super) fn update_send_window(&mut self, now: Instant, r: &TcpRepr, advanced: bool) {
        // RFC 9293 §3.10.7.4 takes the window of a segment newer than the one
        // that set it (SND.WL1, SND.WL2). An ACK that moves SND.UNA is taken
        // as well, whatever its sequence number (Linux's
        // tcp_may_update_window): the usable window is SND.UNA + SND.WND,
        // so moving SND.UNA under a window set by an earlier ACK would slide
        // the right edge past the one the receiver advertised. A
        // retransmitted data segment of the peer (older SEG.SEQ) carrying a
        // new ACK did exactly that, and we sent beyond a shut window.
        let newer =
            self.snd.wl1.before(r.seq) || (self.snd.wl1 == r.seq && self.snd.wl2.before_eq(r.ack));
        if !(newer || advanced) {
            return;
        }
        let old = self.snd.wnd;
        self.snd.wnd = self.opts.seg_wnd(r);
        self.snd.max_wnd = self.snd.max_wnd.max(self.snd.wnd);
        self.snd.wl1 = r.seq;
        self.snd.wl2 = r.ack;
        if old == 0 && self.snd.wnd > 0 {
            self.timers.stop(Timer::Persist);
            self.timers.persist_backoff = 0;
            // What went out while the window was shut was a probe beyond
            // it, refused unless this ACK covers it: send again from
            // SND.UNA now rather than after an RTO (as BSD pulls SND.NXT
            // back on a zero window).
            self.sent.mark_all_lost(Lost::Timeout);
            if self.sent.outstanding() && !self.timers.is_set(Timer::Rto) {
                self.timers.set(Timer::Rto, now + self.rtt.rto());
            }
        }
    }
}
