//! The send buffer: bytes the application queued, from the first unacknowledged
//! byte on. A limit, not an allocation: memory grows with queued data and is
//! returned as ACKs arrive.
//!
//! Writes are copied once into a growing `BytesMut` tail; before transmitting,
//! the tail is frozen into a `Bytes` chunk so that segments (and their
//! retransmissions) are zero-copy slices of it. A small tail buffer and the
//! one before it are kept and reused once their segments are acknowledged
//! (no allocation per write for a connection with a few segments in
//! flight) until the connection goes idle; a large one goes as it drains.

use crate::seq::SeqNum;
use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;

/// The send sequence space (RFC 9293 §3.3.1, figure 4) and the bytes in it.
#[derive(Debug)]
pub(crate) struct SendSpace {
    /// ISS: our initial sequence number.
    pub(crate) iss: SeqNum,
    /// SND.UNA: oldest unacknowledged sequence number.
    pub(crate) una: SeqNum,
    /// The highest sequence number sent so far.
    pub(crate) max: SeqNum,
    /// SND.WND: the peer's window.
    pub(crate) wnd: u32,
    /// The largest window the peer has offered (RFC 5961 §5.2, SWS).
    pub(crate) max_wnd: u32,
    /// SND.WL1 / SND.WL2: the segment SEQ and ACK of the last window update.
    pub(crate) wl1: SeqNum,
    pub(crate) wl2: SeqNum,
    /// Queued bytes from SND.UNA (or ISS + 1 before our SYN is acked) on.
    pub(crate) buf: SendBuffer,
    /// The application shut down writing: FIN goes after the queued data.
    pub(crate) fin_queued: bool,
    /// Our FIN's sequence number, fixed when it is queued (no writes after).
    pub(crate) fin_seq: SeqNum,
    /// Our SYN has been acknowledged. Kept as a flag, not derived from
    /// SND.UNA = ISS, which recurs after 2^32 acknowledged bytes.
    pub(crate) syn_acked: bool,
}

impl SendSpace {
    pub(crate) fn new(iss: SeqNum, limit: usize) -> Self {
        SendSpace {
            iss,
            una: iss,
            max: iss,
            wnd: 0,
            max_wnd: 0,
            wl1: SeqNum::new(0),
            wl2: iss,
            buf: SendBuffer::new(limit),
            fin_queued: false,
            fin_seq: iss,
            syn_acked: false,
        }
    }

    /// Bytes in flight: SND.MAX − SND.UNA.
    pub(crate) fn flight(&self) -> u32 {
        self.max.diff(self.una).max(0) as u32
    }

    /// Sequence number of the first byte in the send buffer: SND.UNA, or
    /// ISS + 1 while our SYN is unacknowledged.
    pub(crate) fn data_seq0(&self) -> SeqNum {
        if self.syn_acked {
            self.una
        } else {
            self.iss + 1
        }
    }

    /// Whether our FIN was acknowledged.
    pub(crate) fn fin_acked(&self) -> bool {
        self.fin_queued && self.una.after(self.fin_seq)
    }
}

/// Queued outgoing bytes.
///
/// Frozen chunks are found by binary search over their end offsets (counted
/// from the first byte ever queued, so consuming from the front changes no
/// entry): a segment's lookup is O(log n) in the chunks held.
#[derive(Debug, Default)]
pub(crate) struct SendBuffer {
    chunks: VecDeque<Bytes>,
    /// Each chunk's end, in bytes from the first byte ever queued.
    ends: VecDeque<u64>,
    /// Where the first unacknowledged byte is, in the same count.
    start: u64,
    frozen_len: usize,
    /// Where writes go until a segment freezes them.
    tail: OwnBuf,
    /// The tail's previous buffer, kept while small: once its segments are
    /// acknowledged the tail takes it back instead of allocating, so a
    /// connection with a segment or two in flight alternates between two
    /// buffers and allocates nothing per write.
    spare: OwnBuf,
    limit: usize,
}

/// A buffer the send buffer allocated, with what it costs on the heap.
#[derive(Debug, Default)]
struct OwnBuf {
    bytes: BytesMut,
    /// Its size as allocated (0: none).
    alloc: usize,
    /// Whether it was split (so the `bytes` crate gave it a shared header).
    shared: bool,
}

impl OwnBuf {
    fn with_capacity(n: usize) -> Self {
        let bytes = BytesMut::with_capacity(n);
        OwnBuf {
            alloc: bytes.capacity(),
            bytes,
            shared: false,
        }
    }

    /// The heap it keeps alive: its allocation and, once split, the
    /// shared header.
    fn heap(&self) -> usize {
        match self.alloc {
            0 => 0,
            a if self.shared => a + SHARED_HEADER,
            a => a,
        }
    }
}

/// The least a tail buffer is allocated with: room for a write and the
/// couple of segments of it a request–response connection has in flight,
/// so that once they are acknowledged the next write reuses the buffer.
const TAIL_MIN: usize = 4 * 1024;

/// Tail and spare buffers up to this size are kept for the next writes
/// (and given back by `release_idle` once the connection went idle): a
/// connection that sends a few segments at a time allocates nothing per
/// write. A larger one (bulk) is given back as soon as it drains.
const TAIL_KEEP: usize = 16 * 1024;

/// The header the `bytes` crate allocates for a buffer once it is shared
/// (a tail's buffer is, from its first segment on): its `Vec` and two
/// words.
const SHARED_HEADER: usize = 5 * core::mem::size_of::<usize>();

impl SendBuffer {
    pub(crate) fn new(limit: usize) -> Self {
        SendBuffer {
            limit,
            ..SendBuffer::default()
        }
    }

    /// Drained: frees the chunk lists' room and the tail's and spare
    /// buffers; the bytes freed.
    pub(crate) fn release_idle(&mut self) -> usize {
        let mut freed =
            super::free_if_empty(&mut self.chunks) + super::free_if_empty(&mut self.ends);
        if self.len() == 0 {
            freed += self.tail.heap() + self.spare.heap();
            self.drop_buffers();
        }
        freed
    }

    fn drop_buffers(&mut self) {
        self.tail = OwnBuf::default();
        self.spare = OwnBuf::default();
    }

    /// Bytes queued (sent or not) and not yet acknowledged.
    pub(crate) fn len(&self) -> usize {
        self.frozen_len + self.tail.bytes.len()
    }

    /// Free space for the application.
    pub(crate) fn space(&self) -> usize {
        self.limit.saturating_sub(self.len())
    }

    /// The limit in bytes.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// A new limit: bytes already queued stay; writes wait below it.
    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Copies as much of `data` as fits; returns the count.
    #[inline]
    pub(crate) fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.space());
        if n == 0 {
            return 0;
        }
        let tail = &mut self.tail.bytes;
        if tail.capacity() - tail.len() < n {
            // Grow in steps so small writes do not reallocate each time: from
            // 4 KiB for a fresh buffer, growing with the data queued, up to
            // 256 KiB. A buffer is reused in place once nothing else holds
            // it (its segments were acknowledged): the tail's own, else the
            // spare.
            let step = self.len().clamp(TAIL_MIN, 256 * 1024);
            let want = n.max(step).min(self.limit.max(n));
            let unsent = self.tail.bytes.len();
            if unsent + want > TAIL_KEEP {
                // Bulk: grow as `BytesMut` does, in place (no copy of the
                // unsent bytes) when nothing else holds the buffer, and keep
                // no spare; a tail this large is dropped as it drains.
                self.tail.bytes.reserve(want);
                self.tail.alloc = self.tail.bytes.capacity();
                self.spare = OwnBuf::default();
            } else if !self.tail.bytes.try_reclaim(want) {
                let next = if self.spare.bytes.try_reclaim(unsent + want) {
                    core::mem::take(&mut self.spare)
                } else {
                    OwnBuf::with_capacity(unsent + want)
                };
                let mut old = core::mem::replace(&mut self.tail, next);
                self.tail.bytes.extend_from_slice(&old.bytes);
                if self.tail.alloc <= TAIL_KEEP && old.alloc <= TAIL_KEEP {
                    old.bytes.clear();
                    self.spare = old;
                } else {
                    // Bulk: no spare (a large tail is dropped as it drains,
                    // and a large old one is not kept).
                    self.spare = OwnBuf::default();
                }
            }
        }
        self.tail.bytes.extend_from_slice(&data[..n]);
        n
    }

    /// Drops `n` acknowledged bytes from the front.
    #[inline]
    pub(crate) fn consume(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            if front.len() <= n {
                n -= front.len();
                self.start += front.len() as u64;
                self.frozen_len -= front.len();
                self.chunks.pop_front();
                self.ends.pop_front();
            } else {
                front.advance(n);
                self.start += n as u64;
                self.frozen_len -= n;
                n = 0;
            }
        }
        if n > 0 {
            let m = n.min(self.tail.bytes.len());
            self.tail.bytes.advance(m);
            self.start += m as u64;
        }
        if self.len() == 0 && self.tail.alloc > TAIL_KEEP {
            // Drained after bulk: give the memory back (DESIGN: an idle
            // connection holds almost nothing). A small buffer stays for
            // the next write until the connection goes idle.
            self.drop_buffers();
        }
        if self.chunks.is_empty() && self.chunks.capacity() > 64 {
            self.chunks = VecDeque::new();
            self.ends = VecDeque::new();
        }
    }

    /// `len` bytes from `offset` (relative to the first unacknowledged byte),
    /// zero-copy when they lie in one chunk. `offset + len` must be ≤ `len()`.
    pub(crate) fn slice(&mut self, offset: usize, len: usize) -> Bytes {
        self.slice_parts(offset, len, false).0
    }

    /// `len` bytes from `offset` as up to two zero-copy parts when
    /// `gather` is set (the device writes a payload of two pieces): the
    /// second is empty unless the bytes span a chunk boundary. Bytes that
    /// span more than two chunks, or two without `gather`, are gathered
    /// into one copy (once per chunk boundary).
    #[inline]
    pub(crate) fn slice_parts(
        &mut self,
        offset: usize,
        len: usize,
        gather: bool,
    ) -> (Bytes, Bytes) {
        if len == 0 {
            return (Bytes::new(), Bytes::new());
        }
        if offset + len > self.frozen_len && !self.tail.bytes.is_empty() {
            let t = self.tail.bytes.split().freeze();
            self.tail.shared = true;
            self.frozen_len += t.len();
            let end = self.ends.back().copied().unwrap_or(self.start) + t.len() as u64;
            self.chunks.push_back(t);
            self.ends.push_back(end);
        }
        debug_assert!(
            offset + len <= self.frozen_len,
            "send buffer slice past queued data"
        );
        let at = self.start + offset as u64;
        // The chunk holding byte `at`: the first whose end lies beyond it
        // (the first or the last chunk without a search: new data and the
        // first unacknowledged segment).
        let n = self.chunks.len();
        let i = if n <= 1 || self.ends[0] > at {
            0
        } else if self.ends[n - 2] <= at {
            n - 1
        } else {
            self.ends.partition_point(|&end| end <= at)
        };
        let Some(c) = self.chunks.get(i) else {
            return (Bytes::new(), Bytes::new());
        };
        let chunk_start = self.ends[i] - c.len() as u64;
        let off = (at - chunk_start) as usize;
        if off + len <= c.len() {
            return (c.slice(off..off + len), Bytes::new());
        }
        let first = c.len() - off;
        if gather
            && let Some(next) = self.chunks.get(i + 1)
            && len - first <= next.len()
        {
            return (c.slice(off..), next.slice(..len - first));
        }
        // Spans chunks: gather into one segment (once per chunk boundary).
        let mut out = BytesMut::with_capacity(len);
        let mut need = len;
        let mut o = off;
        for c in self.chunks.iter().skip(i) {
            let take = (c.len() - o).min(need);
            out.extend_from_slice(&c[o..o + take]);
            need -= take;
            o = 0;
            if need == 0 {
                break;
            }
        }
        (out.freeze(), Bytes::new())
    }

    /// Frees every byte (abort).
    pub(crate) fn clear(&mut self) {
        self.start += self.len() as u64;
        self.chunks.clear();
        self.ends.clear();
        self.frozen_len = 0;
        self.drop_buffers();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_slice_consume() {
        let mut b = SendBuffer::new(10);
        assert_eq!(b.write(b"hello"), 5);
        assert_eq!(b.write(b"world!!"), 5);
        assert_eq!(b.space(), 0);
        assert_eq!(&b.slice(3, 4)[..], b"lowo");
        b.consume(4);
        assert_eq!(b.len(), 6);
        assert_eq!(b.write(b"ab"), 2);
        // spans the frozen chunk and the new tail
        assert_eq!(&b.slice(4, 4)[..], b"ldab");
        b.consume(8);
        assert_eq!(b.len(), 0);
    }

    #[test]
    fn slices_spanning_chunks_are_two_parts_with_gather() {
        let mut b = SendBuffer::new(1 << 20);
        let mut all = Vec::new();
        // Ten chunks of 1,000 bytes: each write frozen by a slice of it.
        for k in 0..10u8 {
            let data = vec![k; 1000];
            b.write(&data);
            all.extend_from_slice(&data);
            let at = k as usize * 1000;
            assert_eq!(&b.slice(at, 1000)[..], &all[at..at + 1000]);
        }
        // Within one chunk, across two (two parts), across three (a copy).
        for (off, len) in [
            (2100, 500),
            (2500, 1000),
            (1999, 2),
            (2500, 2000),
            (0, 10_000),
        ] {
            let (a, c) = b.slice_parts(off, len, true);
            let joined = [&a[..], &c[..]].concat();
            assert_eq!(joined, &all[off..off + len], "{off}+{len}");
            let spans_two = off / 1000 + 1 == (off + len - 1) / 1000;
            assert_eq!(
                !c.is_empty(),
                spans_two,
                "{off}+{len}: two parts only across one boundary"
            );
            let (one, none) = b.slice_parts(off, len, false);
            assert!(none.is_empty());
            assert_eq!(&one[..], &all[off..off + len]);
        }
        // Consuming from the front keeps the lookup right.
        b.consume(3500);
        all.drain(..3500);
        let (a, c) = b.slice_parts(0, 1500, true);
        assert_eq!([&a[..], &c[..]].concat(), &all[..1500]);
        assert_eq!((a.len(), c.len()), (500, 1000));
    }
}
