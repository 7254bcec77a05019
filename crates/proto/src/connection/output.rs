//! What a connection sends: `poll_transmit` and the segments it builds.
//!
//! Drain order within one call (one segment per call): a pending RST, the SYN or
//! SYN-ACK, the immediate ACKs owed for out-of-order, duplicate or hole-filling
//! segments (oldest first), a retransmission of the first unacknowledged
//! segment, new data as the windows and the pacing clock allow (with the FIN
//! on the last segment), a zero-window probe, and a cumulative ACK if one is
//! still owed.

use super::chrono::Limit;
use super::sent::Lost;
use super::{Connection, State, Timer, Transmit};
use crate::seq::SeqNum;
use crate::time::Instant;
use crate::wire::{self, TcpFlags, TcpRepr};
use bytes::{Bytes, BytesMut};

impl Connection {
    /// The next segment to send, its headers appended to `buf`; `None` when
    /// there is nothing to send. Call until `None` after every input.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut BytesMut) -> Option<Transmit> {
        if self.nothing_queued() {
            if !self.pending.ack && !self.pending.data_ack {
                // The usual last call of a drain: one test, not the walk.
                // Debug builds (the tests) walk anyway, to check that it
                // agrees.
                debug_assert!(
                    self.poll_walk(now, buf).is_none(),
                    "nothing_queued invariant: the walk finds nothing either"
                );
                return None;
            }
            // Only a cumulative ACK may be due: every step of the walk
            // before it finds nothing and changes nothing.
            return self.take_ack(now, buf);
        }
        self.poll_walk(now, buf)
    }

    /// [`poll_transmit`](Self::poll_transmit)'s walk, in the drain order.
    fn poll_walk(&mut self, now: Instant, buf: &mut BytesMut) -> Option<Transmit> {
        if let Some((seq, ack)) = self.pending.rst.take() {
            let flags = if ack.is_some() {
                TcpFlags::RST | TcpFlags::ACK
            } else {
                TcpFlags::RST
            };
            return Some(self.build(
                now,
                buf,
                seq,
                ack.unwrap_or(SeqNum::new(0)),
                flags,
                Bytes::new(),
            ));
        }
        if matches!(self.state, State::Closed | State::Listen) {
            return None;
        }
        if self.handshake.syn_pending && !self.snd.syn_acked {
            self.handshake.syn_pending = false;
            // SYN_RECEIVED, or FIN_WAIT_1 after a CLOSE there: the peer's SYN
            // is in, so ours goes out as a SYN-ACK.
            let flags = if self.state == State::SynSent {
                TcpFlags::SYN
            } else {
                TcpFlags::SYN | TcpFlags::ACK
            };
            return Some(self.send_syn(now, buf, flags));
        }
        if let Some((ack, blocks)) = self.pending.owed_acks.pop_front() {
            if self.pending.owed_acks.is_empty() && self.pending.owed_acks.capacity() > 256 {
                // A burst of duplicates is over: give the room back.
                self.pending.owed_acks = std::collections::VecDeque::new();
            }
            self.pending.sack_override = Some(blocks);
            let seq = self.ack_seq();
            let t = self.build(now, buf, seq, ack, TcpFlags::ACK, Bytes::new());
            self.pending.sack_override = None;
            return Some(t);
        }
        if matches!(self.state, State::SynSent | State::SynReceived) {
            return self.take_ack(now, buf);
        }
        if let Some(seq) = self.sent.first_lost(Lost::Fast)
            && self.fast_rtx_allowed()
        {
            // One entry at a time: what follows it may have been SACKed.
            let room = match self.sent.entry_end(seq) {
                Some(end) => self.data_room().min(end.diff(seq).max(0) as u32),
                None => self.data_room(),
            };
            if let Some(t) = self.send_data_at(now, buf, seq, room, true) {
                return Some(t);
            }
            self.sent.unmark(seq);
        }
        if self.pending.tlp {
            self.pending.tlp = false;
            if let Some(t) = self.send_probe_segment(now, buf) {
                return Some(t);
            }
        }
        if let Some(t) = self.send_new(now, buf) {
            return Some(t);
        }
        if self.pending.probe {
            self.pending.probe = false;
            if let Some(t) = self.send_probe(now, buf) {
                return Some(t);
            }
        }
        if self.pending.keepalive {
            self.pending.keepalive = false;
            // RFC 1122 §4.2.3.6: a segment the peer must answer with an ACK,
            // carrying no data: SEG.SEQ = SND.UNA − 1 lies below its
            // window (Linux's `tcp_xmit_probe_skb`).
            return Some(self.build(
                now,
                buf,
                self.snd.una + u32::MAX,
                self.rcv.nxt,
                TcpFlags::ACK,
                Bytes::new(),
            ));
        }
        self.take_ack(now, buf)
    }

    /// Whether [`poll_transmit`](Self::poll_transmit)'s walk would reach
    /// [`take_ack`](Self::take_ack) finding nothing and changing nothing on
    /// the way: a synchronized state, no RST, SYN, owed ACK, loss, probe or
    /// keepalive pending, and no data or FIN queued.
    fn nothing_queued(&self) -> bool {
        // A sender fails the first test: the walk then costs no more.
        self.snd.buf.len() == 0
            && !self.snd.fin_queued
            && self.pending.rst.is_none()
            && !self.handshake.syn_pending
            && self.pending.owed_acks.is_empty()
            && !matches!(
                self.state,
                State::Closed | State::Listen | State::SynSent | State::SynReceived
            )
            && self.sent.lost_bytes() == 0
            && !self.pending.tlp
            && !self.pending.probe
            && !self.pending.keepalive
    }

    fn take_ack(&mut self, now: Instant, buf: &mut BytesMut) -> Option<Transmit> {
        if self.state == State::SynSent {
            self.pending.ack = false;
            self.pending.data_ack = false;
            return None;
        }
        let due = self.pending.ack || (self.pending.data_ack && self.data_ack_due(now));
        if !due {
            return None;
        }
        let seq = self.ack_seq();
        Some(self.build(now, buf, seq, self.rcv.nxt, TcpFlags::ACK, Bytes::new()))
    }

    /// SEG.SEQ of a pure ACK (or of the RST of an abort): one the peer finds acceptable (RFC 9293
    /// §3.10.7.4, first: a zero-length segment is acceptable from RCV.NXT
    /// to the window's right edge, and only at RCV.NXT when the window is
    /// zero). An unacceptable one is dropped unread: its ACK field never
    /// counts. Normally SND.MAX, the highest sequence number sent (SND.NXT
    /// may have gone back to SND.UNA after an RTO). But a zero-window probe
    /// byte (or a window the peer shrank) leaves SND.MAX past the peer's
    /// right edge; then the right edge, SND.UNA + SND.WND, as Linux's
    /// `tcp_acceptable_seq` (whose slack of one window-scale unit is left
    /// out: Linux never probes past a zero window, and a one-byte probe is
    /// always within that slack).
    pub(super) fn ack_seq(&self) -> SeqNum {
        let right = self.snd.una + self.snd.wnd;
        if self.snd.syn_acked && self.snd.max.after(right) {
            right
        } else {
            self.snd.max
        }
    }

    fn send_syn(&mut self, now: Instant, buf: &mut BytesMut, flags: TcpFlags) -> Transmit {
        if self.snd.max.after(self.snd.iss) {
            self.stats.segments_retransmitted += 1;
            self.handshake.retransmits += 1;
            // Karn: the handshake's RTT cannot be told from a retransmitted
            // SYN or SYN-ACK (a SYN-ACK re-sent for a repeated SYN included):
            // the scoreboard stops timing on the retransmission.
        } else {
            self.sent.start_timing(self.snd.iss + 1, now);
        }
        self.sent.on_send(self.snd.iss, self.snd.iss + 1, now);
        self.arm_user_timeout(now);
        self.snd.max = self.snd.max.max(self.snd.iss + 1);
        if !self.timers.is_set(Timer::Rto) {
            self.timers.set(Timer::Rto, now + self.rtt.rto());
        }
        let ack = if flags.ack() {
            self.rcv.nxt
        } else {
            SeqNum::new(0)
        };
        self.build(now, buf, self.snd.iss, ack, flags, Bytes::new())
    }

    /// In flight: what was sent and is not deemed lost, nor SACKed (RFC
    /// 6675 §2's pipe). Without SACK nothing is SACKed: NewReno's window
    /// inflation counts the segments that left the network instead.
    pub(super) fn pipe(&self) -> u32 {
        self.snd
            .flight()
            .saturating_sub(self.sent.lost_bytes())
            .saturating_sub(self.sent.sacked_bytes())
    }

    /// Whether a retransmission marked by fast retransmit or RACK may leave
    /// now: always in NewReno (RFC 5681 §3.2); with SACK while the pipe
    /// leaves room for a segment in cwnd (RFC 6675 §5 (C), the window PRR
    /// sets, which lets the episode's first one go whatever the pipe).
    fn fast_rtx_allowed(&mut self) -> bool {
        if !self.opts.sack {
            return true;
        }
        self.pipe().saturating_add(self.opts.smss) <= self.cc.cwnd()
    }

    /// The payload a data segment has room for now: the send MSS, less the
    /// SACK blocks it will carry while out-of-order data is held (the MSS
    /// counts the timestamps option already; as Linux's `tcp_current_mss`).
    pub(super) fn data_room(&self) -> u32 {
        if !self.opts.sack || !self.rcv.buf.has_ooo() {
            return self.opts.smss;
        }
        // As many blocks as ranges are held, up to the limit: counted, not built.
        let blocks = self.rcv.buf.ooo_ranges().min(self.opts.max_sack_blocks()) as u32;
        self.opts.smss.saturating_sub(4 + 8 * blocks).max(64)
    }

    /// SND.NXT: the first byte deemed lost by the retransmission timeout
    /// (from which everything is resent in order, RFC 6298 §5.4), or SND.MAX.
    pub(super) fn snd_nxt(&mut self) -> SeqNum {
        self.sent.first_lost(Lost::Timeout).unwrap_or(self.snd.max)
    }

    /// Data from SND.NXT, as the send and congestion windows allow, with the
    /// FIN when the last byte goes out: what the timeout deemed lost, then
    /// new data.
    fn send_new(&mut self, now: Instant, buf: &mut BytesMut) -> Option<Transmit> {
        if self.snd.buf.len() == 0 && !self.snd.fin_queued {
            // Nothing queued: nothing to send, and no persist timer to arm.
            return None;
        }
        let nxt = self.snd_nxt();
        let seq0 = self.snd.data_seq0();
        let offset = nxt.diff(seq0).max(0) as usize;
        let queued = self.snd.buf.len();
        let available = queued.saturating_sub(offset);
        let fin_due = self.snd.fin_queued
            && self.state != State::SynReceived
            && nxt.before_eq(self.snd.fin_seq);
        if available == 0 && !fin_due {
            let l = if self.snd.buf.space() == 0 {
                Limit::Sndbuf
            } else {
                Limit::None
            };
            self.note_limit(now, l);
            self.maybe_arm_persist(now, queued);
            return None;
        }
        if available == 0 && !(self.snd.una + self.snd.wnd).after(nxt) {
            // Only the FIN is left, and it counts as one byte against the
            // peer's window (RFC 9293 §3.8.6.1; Linux's tcp_snd_wnd_test):
            // held while the window is shut, then sent as the probe.
            self.maybe_arm_persist(now, queued);
            return None;
        }
        let cwnd = self
            .cc
            .cwnd()
            .saturating_add(self.recovery.limited_transmit_allowance());
        // The congestion window bounds the pipe (RFC 6675: SACKed bytes
        // left out); the peer's window bounds the sequence space (RFC 9293
        // §3.8.6: nothing past SND.UNA + SND.WND, however much it SACKed).
        let in_flight = self.pipe();
        let wnd_left = (self.snd.una + self.snd.wnd).diff(nxt).max(0) as u32;
        let mut usable = cwnd.saturating_sub(in_flight).min(wnd_left) as usize;
        let frto = self.frto_allowance();
        if frto > 0 && !nxt.before(self.snd.max) {
            // RFC 5682 §2.1 step 2b: new data beyond cwnd (not beyond the
            // peer's window).
            usable = usable.max(frto.min(wnd_left) as usize);
        }
        let room = self.data_room();
        let mut len = available.min(usable).min(room as usize);
        let mut resend = false;
        if self.sent.sacked_bytes() > 0
            && nxt.before(self.snd.max)
            && let Some(end) = self.sent.entry_end(nxt)
        {
            // Resending what the timeout deemed lost while the peer holds
            // SACKed ranges: one entry at a time, so that a range it SACKed
            // is not sent again (and no silly-window rule holds it back).
            len = len.min(end.diff(nxt).max(0) as usize);
            resend = len > 0;
            // A sliver of cwnd is no room for a segment: wait for the next
            // ACK rather than resend a few bytes (Linux counts cwnd in
            // packets). After a timeout, cwnd = 1 SMSS and the first
            // retransmission carries SACK blocks, so it is a few bytes short
            // of SMSS; the rest went out as a 12-byte segment.
            let want = (end.diff(nxt).max(0) as usize)
                .min(available)
                .min(room as usize);
            let cwnd_room = cwnd.saturating_sub(in_flight) as usize;
            if resend && in_flight > 0 && cwnd_room < want && (wnd_left as usize) >= want {
                self.note_limit(now, Limit::Cwnd);
                return None;
            }
        }
        if available > 0 && !resend {
            // Sender silly-window avoidance (RFC 9293 §3.8.6.2.1): a full segment,
            // all that is queued, or at least half the largest window seen.
            let ok = len == room as usize
                || (len == available && len > 0)
                || (len > 0 && len as u32 >= self.snd.max_wnd / 2);
            if !ok {
                let l = if self.snd.wnd <= self.cc.cwnd() {
                    Limit::Rwnd
                } else {
                    Limit::Cwnd
                };
                self.note_limit(now, l);
                self.maybe_arm_persist(now, queued);
                return None;
            }
        }
        // RFC 1122 §4.2.3.4 (Nagle, with Minshall's refinement): a small
        // segment of new data at the tail of the queue waits while an
        // earlier small one is unacknowledged; its ACK releases it.
        if len > 0
            && len == available
            && !resend
            && !nxt.before(self.snd.max)
            && self.nagle_holds(nxt, len as u32, room)
        {
            return None;
        }
        // Linux's tcp_pacing_check: new data waits for the pacing clock
        // (what the timeout deemed lost is a retransmission, never held).
        if len > 0 && !nxt.before(self.snd.max) && self.pacing_holds(now) {
            return None;
        }
        self.note_limit(now, Limit::None);
        if frto > 0 {
            self.frto_sent(len as u32);
        }
        // A full segment of new data may grow into a super-segment for the
        // device to cut (TSO): whole segments as the windows and the burst
        // size allow, the last one short only where the queue ends.
        let mut seg = room;
        if len == room as usize && !resend && frto == 0 && !nxt.before(self.snd.max) {
            let segs = self.tso_segments(room);
            if segs > 1 {
                let mut big = available.min(usable).min(segs as usize * room as usize);
                if big < available {
                    big -= big % room as usize;
                }
                len = len.max(big);
            }
        } else {
            seg = u32::MAX;
        }
        self.send_data_segs(now, buf, nxt, len as u32, seg, false)
    }

    /// Sends up to `max` bytes from `seq` (plus FIN if it is next), used for new
    /// data and for retransmitting the first unacknowledged segment.
    pub(super) fn send_data_at(
        &mut self,
        now: Instant,
        buf: &mut BytesMut,
        seq: SeqNum,
        max: u32,
        retransmit: bool,
    ) -> Option<Transmit> {
        self.send_data_segs(now, buf, seq, max, u32::MAX, retransmit)
    }

    /// [`send_data_at`](Self::send_data_at) in segments of `seg` payload
    /// bytes: more than one makes a super-segment for the device to cut,
    /// one scoreboard entry per segment (so SACK, RACK and retransmission
    /// see each on its own, as the wire does).
    fn send_data_segs(
        &mut self,
        now: Instant,
        buf: &mut BytesMut,
        seq: SeqNum,
        max: u32,
        seg: u32,
        retransmit: bool,
    ) -> Option<Transmit> {
        let seq0 = self.snd.data_seq0();
        let offset = seq.diff(seq0).max(0) as usize;
        let queued = self.snd.buf.len();
        let mut len = queued.saturating_sub(offset).min(max as usize);
        if retransmit {
            // Never retransmit beyond what was sent.
            let sent = self.snd.max.diff(seq).max(0) as usize;
            len = len.min(sent);
        }
        let end = seq + len as u32;
        let fin = self.snd.fin_queued
            && self.state != State::SynReceived
            && end == self.snd.fin_seq
            && (!retransmit || self.snd.max.after(end));
        if len == 0 && !fin {
            return None;
        }
        let gather = self.cfg.tx_offload.scatter_gather;
        let (payload, tail) = self.snd.buf.slice_parts(offset, len, gather);
        let mut flags = TcpFlags::ACK;
        if fin {
            flags |= TcpFlags::FIN;
        }
        if len > 0 && offset + len == queued {
            flags |= TcpFlags::PSH;
        }
        let seg_end = end + fin as u32;
        let is_retx = seq.before(self.snd.max);
        // A super-segment only for what fits the 16-bit segment size field.
        let gso = (len > seg as usize && seg > 0)
            .then(|| u16::try_from(seg).ok())
            .flatten();
        if is_retx {
            self.stats.segments_retransmitted += 1;
            self.stats.bytes_retransmitted += len as u64;
        } else {
            // Minshall's rule looks at the last segment on the wire.
            let last = gso.map_or(len, |g| match len % usize::from(g) {
                0 => usize::from(g),
                r => r,
            });
            self.nagle_on_send(last as u32, seg_end);
            self.ack_policy_on_data_sent(now);
            self.sent.start_timing(seg_end, now);
            // RFC 5681 §4.1: restart after idle (the controller's rule).
            self.cc.on_data_sent(now, self.snd.flight(), self.rtt.rto());
        }
        self.stats.bytes_sent += len as u64;
        if len > 0 {
            self.pacing_on_send(now, len as u32);
        }
        let flight_before = self.snd.flight();
        match gso {
            Some(g) => {
                // One scoreboard entry per segment the device will cut.
                let mut at = seq;
                while at.before(end) {
                    let next = at + u32::from(g).min(end.diff(at) as u32);
                    let to = if next == end { seg_end } else { next };
                    self.sent.on_send(at, to, now);
                    at = next;
                }
            }
            None => self.sent.on_send(seq, seg_end, now),
        }
        self.arm_user_timeout(now);
        self.recovery.on_transmit(now, len as u32, seg_end, is_retx);
        self.snd.max = self.snd.max.max(seg_end);
        if !self.timers.is_set(Timer::Rto) {
            self.timers.set(Timer::Rto, now + self.rtt.rto());
        }
        if !is_retx && (!self.timers.is_set(Timer::Probe) || flight_before <= self.opts.smss) {
            // RFC 8985 §7.2: the probe timer starts with new data, and
            // restarts while the flight grows past one segment (whose PTO
            // allowed for a delayed ACK); later, each ACK restarts it (as
            // Linux arms it once per transmit batch, not per segment).
            self.schedule_probe(now);
        }
        self.timers.stop(Timer::Persist);
        let ack = self.rcv.nxt;
        Some(self.build_gso(now, buf, seq, ack, flags, [payload, tail], gso))
    }

    /// RFC 9293 §3.8.6.1: with data queued, nothing in flight and a zero window,
    /// probe the window on the persist timer. §3.8.6.2.1: with a window too
    /// small for the sender's silly-window avoidance, the same timer is the
    /// override timeout (without it a lost window update deadlocks both sides).
    fn maybe_arm_persist(&mut self, now: Instant, queued: usize) {
        let nxt = self.snd_nxt();
        let nothing_in_flight = nxt == self.snd.una;
        let unsent = queued > nxt.diff(self.snd.data_seq0()).max(0) as usize || self.fin_unsent();
        if nothing_in_flight && unsent && !self.timers.is_set(Timer::Persist) {
            self.timers.stop(Timer::Rto);
            self.arm_persist(now);
        }
    }

    /// Our FIN is queued and was never sent.
    pub(super) fn fin_unsent(&self) -> bool {
        self.snd.fin_queued
            && self.state != State::SynReceived
            && !self.snd.max.after(self.snd.fin_seq)
    }

    /// A zero-window probe: the next unsent byte, beyond the window. With a
    /// non-zero window (the SWS override), what the windows allow.
    fn send_probe(&mut self, now: Instant, buf: &mut BytesMut) -> Option<Transmit> {
        if self.snd.wnd > 0 {
            let len = self.snd.wnd.min(self.cc.cwnd()).min(self.data_room());
            let nxt = self.snd_nxt();
            return self.send_data_at(now, buf, nxt, len, false);
        }
        let seq0 = self.snd.data_seq0();
        let offset = self.snd.una.diff(seq0).max(0) as usize;
        if self.snd.buf.len() <= offset {
            // Nothing but the FIN: it is the probe (one byte of sequence
            // space beyond the window).
            if self.fin_unsent() || (self.snd.fin_queued && self.snd.una == self.snd.fin_seq) {
                let fin_seq = self.snd.fin_seq;
                return self.send_data_at(now, buf, fin_seq, 0, false);
            }
            return None;
        }
        let payload = self.snd.buf.slice(offset, 1);
        let seq = self.snd.una;
        if (seq + 1).after(self.snd.max) {
            self.snd.max = seq + 1;
        } else {
            self.stats.segments_retransmitted += 1;
        }
        self.sent.on_send(seq, seq + 1, now);
        self.arm_user_timeout(now);
        self.stats.bytes_sent += 1;
        Some(self.build(now, buf, seq, self.rcv.nxt, TcpFlags::ACK, payload))
    }

    /// The window field to advertise in a segment acknowledging `ack`:
    /// receiver silly-window avoidance (RFC 9293 §3.8.6.2.2), a right edge
    /// that never moves left, and our shift (RFC 7323 §2.3: the one place a
    /// window we send is scaled). An owed ACK for an earlier RCV.NXT gets
    /// the window to the same right edge, so duplicate ACKs carry equal
    /// windows.
    fn advertise_window(&mut self, ack: SeqNum) -> u16 {
        let max = self.opts.max_rcv_window();
        let space = self.rcv.buf.space().min(max as usize) as u32;
        let mut right = self.rcv.nxt + space;
        if space < self.sws_step() {
            right = self.rcv.nxt;
        }
        let before = self.rcv.adv;
        if right.before(before) {
            right = before;
        }
        // RFC 7323 §2.3: the field carries the window >> shift. Rounded
        // down, unless that would put the edge the peer sees left of one
        // already advertised: then up (as Linux's tcp_select_window). The
        // edge kept is the one the peer sees, so a full window reads as 0.
        let shift = self.opts.rcv_shift();
        let wnd = right.diff(ack).clamp(0, max as i32) as u32;
        let mut seen = (wnd >> shift) << shift;
        if (ack + seen).before(self.rcv.adv) {
            seen = (wnd.div_ceil(1 << shift) << shift).min(max);
        }
        if (ack + seen).after(self.rcv.adv) {
            self.rcv.adv = ack + seen;
        }
        self.opts.window_field(seen)
    }

    /// Receiver silly-window avoidance's step (RFC 9293 §3.8.6.2.2): the
    /// right edge moves only by min(RCV.BUFF / 2, MSS) or more.
    pub(super) fn sws_step(&self) -> u32 {
        (self.rcv.buf.limit() as u32 / 2).min(self.opts.smss)
    }

    fn build(
        &mut self,
        now: Instant,
        buf: &mut BytesMut,
        seq: SeqNum,
        ack: SeqNum,
        flags: TcpFlags,
        payload: Bytes,
    ) -> Transmit {
        self.build_gso(now, buf, seq, ack, flags, [payload, Bytes::new()], None)
    }

    /// [`build`](Self::build) for a payload in up to two parts (the second
    /// empty unless the device gathers), as a super-segment of `gso`
    /// payload bytes per segment (`None`: one segment). With checksum
    /// offload, the TCP checksum is left partial for the device.
    #[allow(clippy::too_many_arguments)]
    fn build_gso(
        &mut self,
        now: Instant,
        buf: &mut BytesMut,
        seq: SeqNum,
        ack: SeqNum,
        flags: TcpFlags,
        [payload, tail]: [Bytes; 2],
        gso: Option<u16>,
    ) -> Transmit {
        let payload_len = payload.len() + tail.len();
        let window = if flags.rst() {
            0
        } else if flags.syn() {
            // RFC 7323 §2.2: the window of a SYN or SYN-ACK is never scaled.
            let w = self.rcv.buf.space().min(65_535) as u16;
            if flags.ack() {
                self.rcv.adv = self.rcv.adv.max(self.rcv.nxt + u32::from(w));
            }
            w
        } else {
            self.advertise_window(ack)
        };
        let options = self.segment_options(now, flags);
        let repr = TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq,
            ack: if flags.ack() { ack } else { SeqNum::new(0) },
            flags,
            window,
            urgent: 0,
            options,
        };
        if flags.ack() && ack == self.rcv.nxt {
            self.pending.ack = false;
            self.ack_policy_on_ack_sent();
        }
        if flags.ack() && !flags.rst() {
            self.opts.ts.last_ack_sent = ack;
        }
        let start = buf.len();
        let csum_partial = if self.cfg.tx_offload.partial_checksum {
            Some(wire::emit_ip_tcp_partial(
                buf,
                self.local.ip(),
                self.remote.ip(),
                self.sock.hop_limit,
                self.sock.tos,
                &repr,
                payload_len,
            ))
        } else {
            wire::emit_ip_tcp_gather(
                buf,
                self.local.ip(),
                self.remote.ip(),
                self.sock.hop_limit,
                self.sock.tos,
                &repr,
                &[&payload, &tail],
            );
            None
        };
        let segments = gso.map_or(1, |g| payload_len.div_ceil(usize::from(g.max(1))));
        self.stats.segments_sent += segments as u64;
        if gso.is_some() {
            self.stats.super_segments_sent += 1;
        }
        tracing::trace!(parent: &self.span, flags = %flags, seq = seq.get(), ack = repr.ack.get(), len = payload_len, gso = gso.unwrap_or(0), win = window, "send");
        Transmit {
            src: self.local.ip(),
            dst: self.remote.ip(),
            header_len: buf.len() - start,
            repr,
            payload,
            payload_tail: tail,
            gso_size: gso,
            csum_partial,
        }
    }
}
