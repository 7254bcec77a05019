//! The retransmission scoreboard: what was sent, when, how often, and what is
//! deemed lost (the role of Linux's retransmit queue and quinn's sent-packet
//! map).
//!
//! One entry per transmitted range, sorted; the entries partition
//! [SND.UNA, SND.MAX) at all times. A later transmission of part of a range
//! splits it at the transmission's edges, as an ACK splits the range it ends
//! in, so every mark describes whole entries. Lookups by sequence number are
//! binary searches; the ends (new data, the cumulative ACK) are O(1).
//!
//! Loss is a mark, set by whoever detects it: the retransmission timeout
//! marks everything outstanding (RFC 6298 §5.4, resending from SND.UNA), fast
//! retransmit and NewReno's partial ACK mark the first range (RFC 5681 §3.2,
//! RFC 6582 §3.2), and with SACK, RACK marks each range sent before one
//! delivered later, once the reordering window has passed (RFC 8985 §6.2).
//! A transmission clears the mark.
//!
//! RTT samples are read from here too: one segment at a time is timed
//! (RFC 6298 §3, Karn's algorithm: never one that was retransmitted, and a
//! retransmission at or before its end invalidates the measurement).

use crate::seq::SeqNum;
use crate::time::{Duration, Instant};
use std::collections::VecDeque;

/// Entries whose room the scoreboard keeps once drained (a small window's
/// worth; more is freed).
const KEEP_ENTRIES: usize = 64;

/// How a range came to be deemed lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lost {
    /// By the retransmission timeout (or a window that reopened): resent as
    /// the congestion and send windows allow.
    Timeout,
    /// By fast retransmit or a partial ACK: resent at once, whatever the
    /// window (RFC 5681 §3.2 step 2).
    Fast,
}

/// One transmitted range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SentRange {
    pub(crate) start: SeqNum,
    pub(crate) end: SeqNum,
    /// When the range was first sent.
    pub(crate) first_sent: Instant,
    /// When it was last sent.
    pub(crate) last_sent: Instant,
    /// How often it was sent (1: never retransmitted).
    pub(crate) transmits: u32,
    /// The peer reported it received (SACK).
    pub(crate) sacked: bool,
    /// Deemed lost and not sent again since.
    pub(crate) lost: Option<Lost>,
}

impl SentRange {
    fn len(&self) -> u32 {
        (self.end - self.start) as u32
    }
}

/// The scoreboard of one connection.
#[derive(Debug, Default)]
pub(crate) struct Scoreboard {
    ranges: VecDeque<SentRange>,
    /// Bytes of the ranges marked lost.
    lost_bytes: u32,
    /// Bytes of the ranges the peer SACKed.
    sacked_bytes: u32,
    /// The segment being timed: the sequence number that acknowledges it, and
    /// when it was sent.
    timed: Option<(SeqNum, Instant)>,
    /// No entry before this one is marked lost (a search hint: losses are
    /// repaired in order, so the search for the next one only moves on).
    clean_below: SeqNum,
}

impl Scoreboard {
    /// Whether anything sent is unacknowledged (the retransmission timer
    /// runs exactly while it is, RFC 6298 §5.1–5.2).
    #[inline]
    pub(crate) fn outstanding(&self) -> bool {
        !self.ranges.is_empty()
    }

    /// Bytes marked lost and not resent yet.
    #[inline]
    pub(crate) fn lost_bytes(&self) -> u32 {
        self.lost_bytes
    }

    /// The entries, earliest first.
    #[cfg(test)]
    pub(crate) fn ranges(&self) -> impl Iterator<Item = &SentRange> + '_ {
        self.ranges.iter()
    }

    /// End of the last entry (SND.MAX once something was sent).
    fn end(&self) -> Option<SeqNum> {
        self.ranges.back().map(|r| r.end)
    }

    /// Records a transmission of [start, end) at `now`: new bytes past the
    /// last entry make a new entry; bytes already recorded are a
    /// retransmission of the entries they cover (split at the edges).
    #[inline]
    pub(crate) fn on_send(&mut self, start: SeqNum, end: SeqNum, now: Instant) {
        if !start.before(end) {
            return;
        }
        let last = self.end().unwrap_or(start);
        if start.before(last) {
            self.on_resend(start, end, last, now);
        }
        let new_start = if start.after(last) { start } else { last };
        if new_start.before(end) {
            self.ranges.push_back(SentRange {
                start: new_start,
                end,
                first_sent: now,
                last_sent: now,
                transmits: 1,
                sacked: false,
                lost: None,
            });
        }
    }

    /// [`on_send`](Self::on_send)'s retransmission of [start, end), below
    /// `last`, the end of the last entry: out of line, so that the new
    /// data's path stays small enough to inline.
    #[inline(never)]
    fn on_resend(&mut self, start: SeqNum, end: SeqNum, last: SeqNum, now: Instant) {
        // Karn: a retransmission invalidates the measurement it overlaps.
        if let Some((e, _)) = self.timed
            && e.after(start)
        {
            self.timed = None;
        }
        let resent_end = if end.before(last) { end } else { last };
        self.split_at(start);
        self.split_at(resent_end);
        let i = self.index_of(start);
        for r in self.ranges.iter_mut().skip(i) {
            if !r.start.before(resent_end) {
                break;
            }
            r.transmits += 1;
            r.last_sent = now;
            if r.lost.take().is_some() {
                self.lost_bytes -= r.len();
            }
        }
    }

    /// The cumulative ACK moved to `ack`: entries below it go, the one it
    /// ends in is split. `delivered` sees each entry it newly delivers (not
    /// those SACKed before), in sequence order (RACK, RFC 8985 §6.2 step 1).
    pub(crate) fn on_ack(&mut self, ack: SeqNum, delivered: &mut impl FnMut(&SentRange)) {
        self.split_at(ack);
        while let Some(r) = self.ranges.front() {
            if r.end.after(ack) {
                break;
            }
            if r.lost.is_some() {
                self.lost_bytes -= r.len();
            }
            if r.sacked {
                self.sacked_bytes -= r.len();
            } else {
                delivered(r);
            }
            self.ranges.pop_front();
        }
        if self.ranges.is_empty() && self.ranges.capacity() > KEEP_ENTRIES {
            // Drained after a large window: give the memory back (DESIGN: an
            // idle connection holds almost nothing).
            self.ranges = VecDeque::new();
        }
    }

    /// Bytes the peer SACKed and did not acknowledge yet.
    #[inline]
    pub(crate) fn sacked_bytes(&self) -> u32 {
        self.sacked_bytes
    }

    /// A SACK block [left, right) from the peer (RFC 2018 §3), clipped to
    /// what is outstanding: the entries inside it are marked SACKed (split
    /// at its edges if it ends inside one), and a lost mark on them goes
    /// (they arrived). `delivered` sees each entry newly SACKed. Returns
    /// the bytes newly SACKed.
    pub(crate) fn on_sack(
        &mut self,
        left: SeqNum,
        right: SeqNum,
        delivered: &mut impl FnMut(&SentRange),
    ) -> u32 {
        let (Some(first), Some(last)) = (self.ranges.front().map(|r| r.start), self.end()) else {
            return 0;
        };
        let l = if left.before(first) { first } else { left };
        let r = if right.after(last) { last } else { right };
        if !l.before(r) {
            return 0;
        }
        self.split_at(l);
        self.split_at(r);
        let i = self.index_of(l);
        let mut newly = 0;
        for e in self.ranges.iter_mut().skip(i) {
            if !e.start.before(r) {
                break;
            }
            if !e.sacked {
                e.sacked = true;
                newly += e.len();
                if e.lost.take().is_some() {
                    self.lost_bytes -= e.len();
                }
                delivered(e);
            }
        }
        self.sacked_bytes += newly;
        newly
    }

    /// RACK's loss detection (RFC 8985 §6.2 step 5): every entry neither
    /// SACKed nor already marked, sent before the most recently delivered
    /// one (`rack_xmit`, `rack_end`: RACK_sent_after), is lost once `wait`
    /// (RACK.rtt + RACK.reo_wnd) has passed since it was last sent. Returns
    /// the bytes newly marked and, if some entry is not overdue yet, the
    /// longest remaining wait (the reordering timer, RFC 8985 takes the
    /// maximum).
    ///
    /// Entries are in sequence order and first sends in time order, so the
    /// scan stops at the first entry first sent after the delivered one: no
    /// later entry can have been sent before it.
    pub(crate) fn rack_detect_loss(
        &mut self,
        rack_xmit: Instant,
        rack_end: SeqNum,
        wait: Duration,
        now: Instant,
    ) -> (u32, Option<Duration>) {
        let mut newly = 0u32;
        let mut lowest = None;
        let mut timer: Option<Duration> = None;
        for r in self.ranges.iter_mut() {
            if r.first_sent > rack_xmit || (r.first_sent == rack_xmit && !r.start.before(rack_end))
            {
                break;
            }
            if r.sacked || r.lost.is_some() {
                continue;
            }
            // RACK_sent_after(RACK.xmit_ts, RACK.end_seq, seg.xmit_ts, seg.end_seq).
            let before =
                r.last_sent < rack_xmit || (r.last_sent == rack_xmit && r.end.before(rack_end));
            if !before {
                continue;
            }
            let due = r.last_sent + wait;
            if due <= now {
                r.lost = Some(Lost::Fast);
                newly += r.len();
                if lowest.is_none() {
                    lowest = Some(r.start);
                }
            } else {
                let remaining = due - now;
                timer = Some(timer.map_or(remaining, |t| t.max(remaining)));
            }
        }
        self.lost_bytes += newly;
        if let Some(s) = lowest
            && s.before(self.clean_below)
        {
            self.clean_below = s;
        }
        (newly, timer)
    }

    /// Retransmitted bytes outstanding: entries resent and not SACKed or
    /// marked lost since (Linux's `retrans_out`). A scan, for `stats()`.
    pub(crate) fn retrans_bytes(&self) -> u32 {
        self.ranges
            .iter()
            .filter(|r| r.transmits > 1 && r.lost.is_none() && !r.sacked)
            .map(SentRange::len)
            .sum()
    }

    /// Clears every loss mark (an undo: the losses were not real).
    pub(crate) fn clear_lost_marks(&mut self) {
        if self.lost_bytes == 0 {
            return;
        }
        for r in &mut self.ranges {
            r.lost = None;
        }
        self.lost_bytes = 0;
    }

    /// The last entry's range (what a tail loss probe resends when there is
    /// no new data, RFC 8985 §7.3).
    pub(crate) fn last_range(&self) -> Option<(SeqNum, SeqNum)> {
        self.ranges.back().map(|r| (r.start, r.end))
    }

    /// The end of the entry containing `seq` (a retransmission of a lost
    /// entry stops there: what follows may have been SACKed).
    pub(crate) fn entry_end(&self, seq: SeqNum) -> Option<SeqNum> {
        self.ranges.get(self.index_of(seq)).map(|r| r.end)
    }

    /// Marks every entry not SACKed lost (the retransmission timeout).
    pub(crate) fn mark_all_lost(&mut self, how: Lost) {
        self.clean_below = self.ranges.front().map_or(self.clean_below, |r| r.start);
        for r in &mut self.ranges {
            if !r.sacked {
                if r.lost.is_none() {
                    self.lost_bytes += r.len();
                }
                r.lost = Some(how);
            }
        }
    }

    /// Marks the first entry lost (fast retransmit, a partial ACK).
    pub(crate) fn mark_first_lost(&mut self, how: Lost) {
        self.clean_below = self.ranges.front().map_or(self.clean_below, |r| r.start);
        if let Some(r) = self.ranges.front_mut()
            && !r.sacked
        {
            if r.lost.is_none() {
                self.lost_bytes += r.len();
            }
            r.lost = Some(how);
        }
    }

    /// The first entry marked lost the given way: its start. O(1) when
    /// nothing is lost; otherwise a search from where the last one ended
    /// (amortized O(1) per repaired entry).
    #[inline]
    pub(crate) fn first_lost(&mut self, how: Lost) -> Option<SeqNum> {
        if self.lost_bytes == 0 {
            return None;
        }
        self.find_lost(how)
    }

    fn find_lost(&mut self, how: Lost) -> Option<SeqNum> {
        let from = self.index_of(self.clean_below);
        let i = from
            + self
                .ranges
                .iter()
                .skip(from)
                .position(|r| r.lost.is_some())?;
        self.clean_below = self.ranges[i].start;
        match how {
            // Entries marked by fast retransmit or RACK are resent one by one,
            // lowest first; a timeout's marks are resent from SND.NXT on.
            Lost::Fast => (self.ranges[i].lost == Some(Lost::Fast)).then_some(self.ranges[i].start),
            Lost::Timeout => self
                .ranges
                .iter()
                .skip(i)
                .find(|r| r.lost == Some(Lost::Timeout))
                .map(|r| r.start),
        }
    }

    /// Clears a fast-retransmit mark that found nothing to send.
    pub(crate) fn unmark(&mut self, seq: SeqNum) {
        let i = self.index_of(seq);
        if let Some(r) = self.ranges.get_mut(i)
            && r.lost.take().is_some()
        {
            self.lost_bytes -= r.len();
        }
    }

    /// Times the segment ending at `end`, sent at `now`, unless one is timed
    /// already.
    pub(crate) fn start_timing(&mut self, end: SeqNum, now: Instant) {
        if self.timed.is_none() {
            self.timed = Some((end, now));
        }
    }

    /// Stops timing (a timeout or a fast retransmission: the next sample
    /// comes from a segment sent after it).
    pub(crate) fn stop_timing(&mut self) {
        self.timed = None;
    }

    /// The RTT sample of an ACK of `ack` at `now`, if it covers the timed
    /// segment (which is then no longer timed).
    pub(crate) fn take_rtt_sample(&mut self, ack: SeqNum, now: Instant) -> Option<Duration> {
        let (end, sent) = self.timed?;
        if ack.after_eq(end) {
            self.timed = None;
            Some(now - sent)
        } else {
            None
        }
    }

    /// With nothing in flight, frees the record's room; the bytes freed.
    pub(crate) fn release_idle(&mut self) -> usize {
        super::free_if_empty(&mut self.ranges)
    }

    /// Forgets everything (the connection's buffers are freed).
    pub(crate) fn clear(&mut self) {
        self.ranges = VecDeque::new();
        self.lost_bytes = 0;
        self.sacked_bytes = 0;
        self.timed = None;
    }

    /// Index of the entry containing `seq` (or the count, past the end).
    fn index_of(&self, seq: SeqNum) -> usize {
        self.ranges.partition_point(|r| !r.end.after(seq))
    }

    /// Splits the entry containing `seq` so that an entry starts at `seq`.
    fn split_at(&mut self, seq: SeqNum) {
        let i = self.index_of(seq);
        let Some(r) = self.ranges.get_mut(i) else {
            return;
        };
        if !r.start.before(seq) {
            return;
        }
        let mut tail = *r;
        r.end = seq;
        tail.start = seq;
        self.ranges.insert(i + 1, tail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(v: u32) -> SeqNum {
        SeqNum::new(v)
    }

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn spans(s: &Scoreboard) -> Vec<(u32, u32, u32)> {
        s.ranges()
            .map(|r| (r.start.get(), r.end.get(), r.transmits))
            .collect()
    }

    #[test]
    fn retransmission_splits_and_counts() {
        let mut s = Scoreboard::default();
        s.on_send(n(100), n(200), t(1));
        s.on_send(n(200), n(300), t(2));
        s.on_send(n(150), n(250), t(3));
        assert_eq!(
            spans(&s),
            vec![(100, 150, 1), (150, 200, 2), (200, 250, 2), (250, 300, 1)]
        );
        s.on_ack(n(175), &mut |_| {});
        assert_eq!(spans(&s)[0], (175, 200, 2));
    }

    #[test]
    fn lost_marks_are_cleared_by_sending_and_acking() {
        let mut s = Scoreboard::default();
        s.on_send(n(0), n(100), t(1));
        s.on_send(n(100), n(200), t(1));
        s.mark_all_lost(Lost::Timeout);
        assert_eq!(s.lost_bytes(), 200);
        assert_eq!(s.first_lost(Lost::Timeout), Some(n(0)));
        s.on_send(n(0), n(50), t(2));
        assert_eq!(s.lost_bytes(), 150);
        assert_eq!(s.first_lost(Lost::Timeout), Some(n(50)));
        s.on_ack(n(120), &mut |_| {});
        assert_eq!(s.lost_bytes(), 80);
        s.mark_first_lost(Lost::Fast);
        assert_eq!(s.first_lost(Lost::Fast), Some(n(120)));
    }

    #[test]
    fn karn_one_timed_segment_never_a_retransmitted_one() {
        let mut s = Scoreboard::default();
        s.on_send(n(0), n(100), t(10));
        s.start_timing(n(100), t(10));
        s.on_send(n(100), n(200), t(20));
        s.start_timing(n(200), t(20)); // one at a time: still the first
        assert_eq!(s.take_rtt_sample(n(50), t(60)), None);
        assert_eq!(
            s.take_rtt_sample(n(100), t(70)),
            Some(Duration::from_millis(60))
        );
        // A retransmission at or before the timed segment's end: no sample.
        s.start_timing(n(200), t(20));
        s.on_send(n(150), n(200), t(80));
        assert_eq!(s.take_rtt_sample(n(200), t(90)), None);
    }

    proptest! {
        /// Random sends (new and overlapping), ACKs and loss marks: the entries
        /// always partition [SND.UNA, SND.MAX) in order, lost_bytes is the sum
        /// of the lost entries, and transmit counts never go down.
        #[test]
        fn entries_partition_the_flight(
            ops in proptest::collection::vec((0u8..4, 0u32..300, 1u32..80), 1..80),
            base in any::<u32>(),
        ) {
            let mut s = Scoreboard::default();
            let (mut una, mut max) = (0u32, 0u32);
            let mut counts: Vec<u32> = vec![0; 8192];
            for (k, (op, a, len)) in ops.into_iter().enumerate() {
                let now = t(k as u64);
                match op {
                    0 => {
                        s.on_send(n(base) + max, n(base) + (max + len), now);
                        max += len;
                    }
                    1 if max > una => {
                        let from = una + a % (max - una);
                        let to = (from + len).min(max);
                        s.on_send(n(base) + from, n(base) + to, now);
                    }
                    2 if max > una => {
                        una += a % (max - una + 1);
                        s.on_ack(n(base) + una, &mut |_| {});
                    }
                    3 => {
                        if a % 2 == 0 {
                            s.mark_all_lost(Lost::Timeout);
                        } else {
                            s.mark_first_lost(Lost::Fast);
                        }
                    }
                    _ => {}
                }
                let rs: Vec<SentRange> = s.ranges().copied().collect();
                let mut at = una;
                for r in &rs {
                    prop_assert_eq!(r.start, n(base) + at);
                    prop_assert!(r.start.before(r.end));
                    at = r.end.diff(n(base)) as u32;
                }
                if !rs.is_empty() {
                    prop_assert_eq!(at, max);
                }
                let lost: u32 = rs.iter().filter(|r| r.lost.is_some()).map(|r| r.len()).sum();
                prop_assert_eq!(lost, s.lost_bytes());
                // The hinted search finds what a plain scan finds.
                for how in [Lost::Fast, Lost::Timeout] {
                    let naive = rs.iter().find(|r| r.lost == Some(how)).map(|r| r.start);
                    prop_assert_eq!(s.first_lost(how), naive);
                }
                for r in &rs {
                    let first = r.start.diff(n(base)) as usize;
                    for c in &mut counts[first..(r.end.diff(n(base)) as usize).min(8192)] {
                        prop_assert!(r.transmits >= *c);
                        *c = r.transmits;
                    }
                }
            }
        }
    }
}
