//! Out-of-order data as a sorted set of merged, non-overlapping byte ranges
//! (RFC 9293 §3.10.7.4, seventh step: segments beyond RCV.NXT are held "for
//! later processing").
//!
//! Each range keeps its bytes in one coalesced buffer: a segment that extends
//! a range is appended to it, one that bridges two ranges merges them, and
//! only a segment that opens a new hole makes a new range. The count of
//! ranges (holes) is bounded, not the count of segments, and a new range
//! reserves room for several segments of its first one's size, so
//! out-of-order segments cost no allocation each. Reservations are bounded by
//! the receive window's free bytes (the caller's `budget`): memory held
//! stays within the buffer limit. Payloads are copied in, so a held range
//! never pins a device's read buffer.
//!
//! The ranges also answer what SACK (RFC 2018) and D-SACK (RFC 2883) will
//! ask: the blocks now, and whether a segment was a duplicate.

use crate::seq::SeqNum;
use crate::wire::SackBlocks;
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;

/// Segments of its first one's size a new range has room for.
const RANGE_SEGMENTS: usize = 8;

/// What one insertion did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stored {
    /// New bytes stored.
    pub(crate) added: usize,
    /// Every byte of the segment was held already (a duplicate).
    pub(crate) duplicate: bool,
    /// Some new bytes did not fit: the range limit was reached.
    pub(crate) dropped: bool,
}

#[derive(Debug)]
struct Range {
    start: SeqNum,
    data: BytesMut,
    /// When a segment last landed in this range (a counter): SACK reports
    /// the most recent ranges first (RFC 2018 §4).
    stamp: u32,
}

impl Range {
    fn end(&self) -> SeqNum {
        self.start + self.data.len() as u32
    }
}

/// The out-of-order ranges of one receive buffer.
#[derive(Debug)]
pub(crate) struct Reassembly {
    /// Sorted by start, non-overlapping and non-adjacent (adjacent ranges are
    /// merged).
    ranges: VecDeque<Range>,
    bytes: usize,
    /// Capacity of every range buffer together (bytes held and reserved).
    capacity: usize,
    max_ranges: usize,
    /// The stamp counter.
    clock: u32,
}

impl Reassembly {
    /// Empty: frees the range list's room; the bytes freed.
    pub(crate) fn release_idle(&mut self) -> usize {
        super::free_if_empty(&mut self.ranges)
    }

    pub(crate) fn new(max_ranges: usize) -> Self {
        Reassembly {
            ranges: VecDeque::new(),
            bytes: 0,
            capacity: 0,
            max_ranges: max_ranges.max(1),
            clock: 0,
        }
    }

    /// The SACK blocks of an ACK (RFC 2018 §4): `dsack` first when given
    /// (RFC 2883: the duplicate that triggered it), then the ranges that
    /// most recently received a segment, the triggering segment's range
    /// first, at most `max` blocks in all.
    pub(crate) fn sack_blocks(&self, max: usize, dsack: Option<(SeqNum, SeqNum)>) -> SackBlocks {
        let mut out = SackBlocks::EMPTY;
        if let Some((l, r)) = dsack {
            out.push(l, r);
        }
        let mut below = u32::MAX;
        while out.len() < max.min(4) {
            let Some(r) = self
                .ranges
                .iter()
                .filter(|r| r.stamp < below)
                .max_by_key(|r| r.stamp)
            else {
                break;
            };
            below = r.stamp;
            out.push(r.start, r.end());
        }
        out
    }

    /// Bytes held.
    pub(crate) fn len(&self) -> usize {
        self.bytes
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Bytes the range buffers hold and have reserved together.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Ranges held.
    pub(crate) fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// The ranges, earliest first, as `[left, right)` (the SACK blocks now;
    /// SACK itself reads them once negotiated).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn ranges(&self) -> impl Iterator<Item = (SeqNum, SeqNum)> + '_ {
        self.ranges.iter().map(|r| (r.start, r.end()))
    }

    /// Stores the bytes of `data` at `seq` that are not held yet. `budget` is
    /// the memory the receive buffer still allows: new ranges reserve room
    /// within it.
    pub(crate) fn insert(&mut self, seq: SeqNum, data: &[u8], budget: usize) -> Stored {
        let mut out = Stored::default();
        let end = seq + data.len() as u32;
        // The first range that ends at or after `seq` (it may touch or
        // overlap the new bytes); every range before it lies wholly before.
        let i = self.ranges.partition_point(|r| r.end().before(seq));
        let mut cur = seq;
        while cur.before(end) {
            let off = (cur - seq) as usize;
            match self.ranges.get(i) {
                // cur lies inside (or at the end of) range i: skip what it holds.
                Some(r) if !r.start.after(cur) => {
                    if r.end().after(cur) {
                        cur = r.end().min(end);
                        continue;
                    }
                    // Adjacent: append up to the next range (or the end).
                    let stop = self.next_start(i).map_or(end, |s| s.min(end));
                    let take = (stop - cur) as usize;
                    self.append(i, &data[off..off + take]);
                    out.added += take;
                    cur = stop;
                    self.merge_with_next(i);
                }
                // A gap before range i (or after the last): new bytes up to it.
                next => {
                    let stop = next.map_or(end, |r| r.start.min(end));
                    let take = (stop - cur) as usize;
                    if self.ranges.len() >= self.max_ranges {
                        // Bounded: no new hole; the peer retransmits.
                        out.dropped = true;
                        cur = stop;
                        continue;
                    }
                    let room = budget.saturating_sub(self.capacity + take);
                    let extra = (take * (RANGE_SEGMENTS - 1)).min(room);
                    let mut buf = BytesMut::with_capacity(take + extra);
                    buf.extend_from_slice(&data[off..off + take]);
                    self.capacity += buf.capacity();
                    self.ranges.insert(
                        i,
                        Range {
                            start: cur,
                            data: buf,
                            stamp: 0,
                        },
                    );
                    self.bytes += take;
                    out.added += take;
                    cur = stop;
                    self.merge_with_next(i);
                }
            }
        }
        out.duplicate = out.added == 0 && !out.dropped && !data.is_empty();
        // The range the segment landed in is now the most recent.
        let j = self.ranges.partition_point(|r| r.end().before(seq));
        if let Some(r) = self.ranges.get_mut(j)
            && !r.start.after(end)
        {
            self.clock = self.clock.wrapping_add(1);
            r.stamp = self.clock;
        }
        out
    }

    /// Appends to range `i`, keeping the capacity count.
    fn append(&mut self, i: usize, bytes: &[u8]) {
        let data = &mut self.ranges[i].data;
        let before = data.capacity();
        data.extend_from_slice(bytes);
        self.capacity = self.capacity + data.capacity() - before;
        self.bytes += bytes.len();
    }

    /// Start of the range after `i`, if any.
    fn next_start(&self, i: usize) -> Option<SeqNum> {
        self.ranges.get(i + 1).map(|r| r.start)
    }

    /// Range `i` now touches range `i + 1`: one range of both.
    fn merge_with_next(&mut self, i: usize) {
        if self.next_start(i) == Some(self.ranges[i].end()) {
            let next = self.ranges.remove(i + 1).expect("checked");
            self.ranges[i].stamp = self.ranges[i].stamp.max(next.stamp);
            self.capacity -= next.data.capacity();
            self.bytes -= next.data.len();
            self.append(i, &next.data);
        }
    }

    /// Takes the bytes from `nxt` on if the first range starts at or before
    /// it (what is before `nxt` was received already and is dropped): the
    /// bytes that are now in order, and the capacity of their buffer.
    pub(crate) fn take_in_order(&mut self, nxt: SeqNum) -> Option<(Bytes, usize, u32)> {
        let first = self.ranges.front()?;
        if first.start.after(nxt) {
            return None;
        }
        let r = self.ranges.pop_front().expect("checked");
        self.bytes -= r.data.len();
        self.capacity -= r.data.capacity();
        let skip = ((nxt - r.start) as usize).min(r.data.len());
        let capacity = r.data.capacity();
        let mut data = r.data.freeze();
        if skip > 0 {
            data = data.slice(skip..);
        }
        Some((data, capacity, skip as u32))
    }

    /// Frees everything.
    pub(crate) fn clear(&mut self) {
        self.ranges = VecDeque::new();
        self.bytes = 0;
        self.capacity = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(v: u32) -> SeqNum {
        SeqNum::new(v)
    }

    #[test]
    fn adjacent_segments_make_one_range_and_bridges_merge() {
        let mut r = Reassembly::new(4);
        r.insert(n(10), b"ab", 4096);
        r.insert(n(12), b"cd", 4096);
        r.insert(n(20), b"xy", 4096);
        assert_eq!(
            r.ranges().collect::<Vec<_>>(),
            vec![(n(10), n(14)), (n(20), n(22))]
        );
        // Bridging (and overlapping both): one range.
        let s = r.insert(n(13), b"DEFGHIJ", 4096);
        assert_eq!(s.added, 6);
        assert_eq!(r.ranges().collect::<Vec<_>>(), vec![(n(10), n(22))]);
        assert_eq!(r.len(), 12);
        let (data, _, _) = r.take_in_order(n(10)).unwrap();
        assert_eq!(&data[..], b"abcdEFGHIJxy");
        assert!(r.is_empty());
    }

    #[test]
    fn duplicates_are_reported() {
        let mut r = Reassembly::new(4);
        r.insert(n(10), b"abcd", 4096);
        assert!(r.insert(n(11), b"bc", 4096).duplicate);
        assert!(!r.insert(n(12), b"cdef", 4096).duplicate);
    }

    #[test]
    fn holes_are_bounded_not_segments() {
        let mut r = Reassembly::new(2);
        // Many segments behind one hole: all kept.
        for k in 0..100u32 {
            assert!(!r.insert(n(100 + 10 * k), &[k as u8; 10], 4096).dropped);
        }
        assert_eq!(r.ranges().count(), 1);
        r.insert(n(5000), b"x", 4096);
        // A third hole is refused.
        assert!(r.insert(n(6000), b"y", 4096).dropped);
        assert_eq!(r.ranges().count(), 2);
    }

    #[test]
    fn ranges_work_across_the_wrap() {
        let mut r = Reassembly::new(4);
        let base = n(u32::MAX - 2);
        r.insert(base + 4, b"EFGH", 4096);
        r.insert(base + 2, b"CDEFGHIJ", 4096);
        assert_eq!(r.ranges().collect::<Vec<_>>(), vec![(base + 2, base + 10)]);
        assert_eq!(&r.take_in_order(base + 2).unwrap().0[..], b"CDEFGHIJ");
    }

    proptest! {
        /// Random overlapping segments of one stream: the ranges are sorted,
        /// disjoint and non-adjacent; their bytes are the stream's; taking in
        /// order after filling from the start yields the union exactly once.
        #[test]
        fn union_in_order_once(
            segs in proptest::collection::vec((0u32..400, 1usize..60), 1..40),
            base in any::<u32>(),
        ) {
            let stream: Vec<u8> = (0..512u32).map(|i| (i * 7 + 3) as u8).collect();
            let mut r = Reassembly::new(64);
            let mut have = [false; 512];
            for &(off, len) in &segs {
                let off = off + 1; // byte 0 is the hole at RCV.NXT
                let len = len.min(512 - off as usize);
                r.insert(SeqNum::new(base) + off, &stream[off as usize..off as usize + len], 4096);
                for h in &mut have[off as usize..off as usize + len] {
                    *h = true;
                }
                // Invariants after every insertion.
                let rs: Vec<_> = r.ranges().collect();
                for w in rs.windows(2) {
                    prop_assert!(w[0].1.before(w[1].0), "{rs:?}");
                }
                let held: usize = rs.iter().map(|(a, b)| b.diff(*a) as usize).sum();
                prop_assert_eq!(held, r.len());
                prop_assert_eq!(held, have.iter().filter(|h| **h).count());
            }
            // Each range holds exactly the stream's bytes.
            let rs: Vec<_> = r.ranges().collect();
            for (a, b) in rs {
                let off = a.diff(SeqNum::new(base)) as usize;
                let len = b.diff(a) as usize;
                let got = r.ranges.iter().find(|x| x.start == a).unwrap();
                prop_assert_eq!(&got.data[..], &stream[off..off + len]);
            }
            // Fill byte 0 and drain: the longest in-order run, once.
            let run = have[1..].iter().take_while(|h| **h).count();
            r.insert(SeqNum::new(base), &stream[..1], 4096);
            let (got, _, _) = r.take_in_order(SeqNum::new(base)).unwrap();
            prop_assert_eq!(&got[..], &stream[..1 + run]);
        }
    }
}
