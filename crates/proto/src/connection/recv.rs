//! The receive buffer: in-order bytes waiting for the application, and the
//! out-of-order ranges held until the hole before them fills (RFC 9293 §3.10.7.4,
//! seventh step; RFC 5681 §4.2).
//!
//! In-order payloads larger than a threshold are kept as the `Bytes` the device
//! handed in (no copy) while the application keeps up; small payloads, and any
//! payload once [`MAX_PINNED`] device buffers are already held, are copied into
//! an owned, coalescing tail so a slow reader never pins many device read
//! buffers (a device slice may keep a whole read arena alive). Out-of-order
//! payloads are copied into merged ranges ([`Reassembly`]), whose number is
//! bounded; a range that comes in order joins the readable bytes without
//! another copy.

use super::reassembly::Reassembly;
use crate::seq::SeqNum;
use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;

/// The receive sequence space (RFC 9293 §3.3.1, figure 5) and its buffer.
#[derive(Debug)]
pub(crate) struct RecvSpace {
    /// IRS: the peer's initial sequence number.
    pub(crate) irs: SeqNum,
    /// RCV.NXT: next sequence number expected.
    pub(crate) nxt: SeqNum,
    /// Right edge of the window we last advertised (never moved left).
    pub(crate) adv: SeqNum,
    /// In-order bytes for the application and the out-of-order ranges.
    pub(crate) buf: RecvBuffer,
    /// The peer's FIN is in (reads end after the buffered data).
    pub(crate) fin_received: bool,
    /// The duplicate the segment being processed carried, for the D-SACK
    /// block of its ACK (RFC 2883).
    pub(crate) dsack: Option<(SeqNum, SeqNum)>,
}

impl RecvSpace {
    pub(crate) fn new(limit: usize, max_ranges: usize) -> Self {
        RecvSpace {
            irs: SeqNum::new(0),
            nxt: SeqNum::new(0),
            adv: SeqNum::new(0),
            buf: RecvBuffer::new(limit, max_ranges),
            fin_received: false,
            dsack: None,
        }
    }
}

/// In-order payloads at least this long are kept without copying.
const COPY_BELOW: usize = 512;

/// Most device buffers one connection keeps referenced at once (more than a
/// 64 KiB window holds in full-size segments, so a reader that keeps up never
/// causes a copy).
const MAX_PINNED: usize = 64;

/// The charge of one referenced device buffer slice beyond its length: its
/// share of the device's read arena (a TUN arena of 128 KiB holds about 87
/// full-size packets: some 1.5 KiB each), so that memory counts what a
/// pinned segment keeps alive, not only its payload.
pub(crate) const PINNED_CHARGE: usize = 2048;

/// Where the stack's receive memory stands, as Linux's `tcp_mem`
/// thresholds: the runtime sums every connection's
/// [`recv_memory`](crate::Connection::recv_memory) (and what waits in their
/// inboxes) and tells each connection before it takes segments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MemoryPressure {
    /// Below the pressure threshold: nothing changes.
    #[default]
    Normal,
    /// Above the pressure threshold: the window does not grow (the right
    /// edge already advertised stays, RFC 9293 §3.8.6, and no more is
    /// offered), held out-of-order data is dropped first and new
    /// out-of-order data refused (Linux's `tcp_prune_ofo_queue`); in-order
    /// data is still taken.
    Pressure,
    /// Above the limit: every new byte is dropped and counted (the peer
    /// retransmits once memory frees); an in-order FIN without data is
    /// still taken.
    Limit,
}

/// What inserting a segment changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Inserted {
    /// Bytes that became readable (RCV.NXT advanced by this much, FIN excluded).
    pub(crate) advanced: u32,
    /// The peer's FIN is now in order (RCV.NXT must advance past it).
    pub(crate) fin: bool,
    /// The segment was (or stayed) out of order.
    pub(crate) out_of_order: bool,
    /// The segment filled (part of) a hole in front of queued ranges.
    pub(crate) filled_hole: bool,
    /// Every byte of the (out-of-order) segment was held already.
    pub(crate) duplicate: bool,
}

#[derive(Debug)]
pub(crate) struct RecvBuffer {
    /// Readable chunks, oldest first; `true` marks a device buffer (pinned).
    ready: VecDeque<(Bytes, bool)>,
    /// Copied bytes, logically after every chunk in `ready`.
    tail: BytesMut,
    /// Pinned chunks in `ready`.
    pinned: usize,
    /// Readable bytes (`ready` and `tail`).
    ready_len: usize,
    /// Out-of-order ranges, none starting at RCV.NXT.
    ooo: Reassembly,
    /// Sequence number of the peer's FIN when it arrived out of order.
    ooo_fin: Option<SeqNum>,
    limit: usize,
    /// The stack's receive memory, as last told.
    pressure: MemoryPressure,
    /// Data arrived once: from then on pressure freezes the window (a new
    /// connection still offers its first window in its SYN-ACK).
    opened: bool,
    /// Out-of-order bytes pruned or refused under pressure.
    pub(crate) ooo_pruned: u64,
    /// New bytes dropped above the memory limit.
    pub(crate) memory_drops: u64,
}

impl RecvBuffer {
    pub(crate) fn new(limit: usize, max_ranges: usize) -> Self {
        RecvBuffer {
            ready: VecDeque::new(),
            tail: BytesMut::new(),
            pinned: 0,
            ready_len: 0,
            ooo: Reassembly::new(max_ranges),
            ooo_fin: None,
            limit,
            pressure: MemoryPressure::Normal,
            opened: false,
            ooo_pruned: 0,
            memory_drops: 0,
        }
    }

    /// The memory this buffer holds: readable payload, the copy tail's spare
    /// room, the out-of-order ranges' buffers (held and reserved), and for
    /// every referenced device buffer its [`PINNED_CHARGE`].
    pub(crate) fn memory(&self) -> usize {
        self.ready_len
            + (self.tail.capacity() - self.tail.len())
            + self.ooo.capacity()
            + self.pinned * PINNED_CHARGE
    }

    /// The stack's memory state as last told.
    pub(crate) fn pressure(&self) -> MemoryPressure {
        self.pressure
    }

    /// The stack's memory state changed (see [`MemoryPressure`]): from
    /// pressure on, held out-of-order data is dropped (RFC 2018 §8 lets a
    /// receiver discard SACKed data; the sender's RTO recovers it).
    pub(crate) fn set_pressure(&mut self, p: MemoryPressure) {
        self.pressure = p;
        if p != MemoryPressure::Normal && !self.ooo.is_empty() {
            self.ooo_pruned += self.ooo.len() as u64;
            self.ooo.clear();
            self.ooo_fin = None;
        }
    }

    /// Readable bytes.
    pub(crate) fn readable(&self) -> usize {
        self.ready_len
    }

    /// Bytes held, in order or not.
    pub(crate) fn held(&self) -> usize {
        self.ready_len + self.ooo.len()
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// A new limit: any before a window was advertised, afterwards only a
    /// larger one (auto-tuning; the right edge of an advertised window never
    /// moves back, RFC 9293 §3.8.6).
    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Free space in bytes: none to offer under memory pressure once data
    /// has arrived, so the window does not grow (the advertised right edge
    /// stays); a connection that has received nothing yet still offers its
    /// first window.
    pub(crate) fn space(&self) -> usize {
        if self.pressure != MemoryPressure::Normal && self.opened {
            return 0;
        }
        self.limit.saturating_sub(self.held())
    }

    /// Inserts `payload` at `seq` (already trimmed so that `seq` ≥ `rcv_nxt` and
    /// it fits the window). `fin` marks a FIN right after the payload.
    pub(crate) fn insert(
        &mut self,
        rcv_nxt: SeqNum,
        seq: SeqNum,
        payload: Bytes,
        fin: bool,
    ) -> Inserted {
        let mut out = Inserted::default();
        let end = seq + payload.len() as u32;
        self.opened |= !payload.is_empty();
        // The stack's memory (Linux's tcp_mem): above the limit nothing new
        // is taken, under pressure nothing out of order.
        let refuse = match self.pressure {
            MemoryPressure::Limit => !payload.is_empty(),
            MemoryPressure::Pressure => seq != rcv_nxt,
            MemoryPressure::Normal => false,
        };
        if refuse {
            if self.pressure == MemoryPressure::Limit {
                self.memory_drops += payload.len() as u64;
            } else {
                self.ooo_pruned += payload.len() as u64;
            }
            // Owed its own ACK (RCV.NXT again) if out of order.
            out.out_of_order = seq != rcv_nxt;
            return out;
        }
        if fin {
            self.ooo_fin = Some(end);
        }
        if seq != rcv_nxt {
            out.out_of_order = true;
            if !payload.is_empty() {
                // Reserve within what the window can still bring.
                let budget = self.limit.saturating_sub(self.ready_len);
                out.duplicate = self.ooo.insert(seq, &payload, budget).duplicate;
            }
            return out;
        }
        out.filled_hole = !self.ooo.is_empty();
        let mut nxt = rcv_nxt;
        if !payload.is_empty() {
            nxt = end;
            out.advanced = payload.len() as u32;
            self.push_ready(payload);
        }
        // Pull the ranges that are now in order, trimming overlap (merged
        // ranges leave a gap between them, so this is at most one but for a
        // range wholly behind RCV.NXT).
        while let Some(data) = self.ooo.take_in_order(nxt) {
            nxt += data.len() as u32;
            out.advanced += data.len() as u32;
            self.push_owned(data);
        }
        if let Some(f) = self.ooo_fin
            && f == nxt
        {
            out.fin = true;
            self.ooo_fin = None;
        }
        out
    }

    fn push_ready(&mut self, data: Bytes) {
        self.ready_len += data.len();
        if data.len() >= COPY_BELOW && self.pinned < MAX_PINNED {
            if !self.tail.is_empty() {
                let copied = self.tail.split().freeze();
                self.ready.push_back((copied, false));
            }
            self.pinned += 1;
            self.ready.push_back((data, true));
        } else {
            if self.tail.capacity() - self.tail.len() < data.len() {
                // Room for what the window may still bring, so a burst of
                // small segments costs one allocation.
                let want = data.len().max(self.space().min(64 * 1024));
                self.tail.reserve(want);
            }
            self.tail.extend_from_slice(&data);
        }
    }

    /// A buffer of our own (a range that came in order): kept as it is when
    /// large, so the bytes are not copied again.
    fn push_owned(&mut self, data: Bytes) {
        if data.len() < COPY_BELOW {
            self.push_ready(data);
            return;
        }
        self.ready_len += data.len();
        if !self.tail.is_empty() {
            let copied = self.tail.split().freeze();
            self.ready.push_back((copied, false));
        }
        self.ready.push_back((data, false));
    }

    /// Copies readable bytes into `buf` without consuming them; returns the
    /// count.
    pub(crate) fn peek(&self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        let chunks = self.ready.iter().map(|(b, _)| &b[..]);
        for chunk in chunks.chain(std::iter::once(&self.tail[..])) {
            if n == buf.len() {
                break;
            }
            let take = chunk.len().min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&chunk[..take]);
            n += take;
        }
        n
    }

    /// Copies readable bytes into `buf`; returns the count.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() {
            if let Some((front, pinned)) = self.ready.front_mut() {
                let take = front.len().min(buf.len() - n);
                buf[n..n + take].copy_from_slice(&front[..take]);
                front.advance(take);
                n += take;
                if front.is_empty() {
                    if *pinned {
                        self.pinned -= 1;
                    }
                    self.ready.pop_front();
                }
            } else if !self.tail.is_empty() {
                let take = self.tail.len().min(buf.len() - n);
                buf[n..n + take].copy_from_slice(&self.tail[..take]);
                self.tail.advance(take);
                n += take;
            } else {
                break;
            }
        }
        self.ready_len -= n;
        if self.ready_len == 0 && self.tail.capacity() > 0 {
            // Drained: give the copy buffer back.
            self.tail = BytesMut::new();
        }
        if self.ready.is_empty() && self.ready.capacity() > 2 * MAX_PINNED {
            self.ready = VecDeque::new();
        }
        n
    }

    /// Out-of-order ranges, earliest first, as `(left, right)`.
    #[cfg(test)]
    pub(crate) fn ranges(&self) -> impl Iterator<Item = (SeqNum, SeqNum)> + '_ {
        self.ooo.ranges()
    }

    /// The SACK blocks to send now (see [`Reassembly::sack_blocks`]).
    pub(crate) fn sack_blocks(
        &self,
        max: usize,
        dsack: Option<(SeqNum, SeqNum)>,
    ) -> crate::wire::SackBlocks {
        self.ooo.sack_blocks(max, dsack)
    }

    /// Whether out-of-order data is held.
    pub(crate) fn has_ooo(&self) -> bool {
        !self.ooo.is_empty()
    }

    /// Out-of-order ranges held.
    pub(crate) fn ooo_ranges(&self) -> usize {
        self.ooo.range_count()
    }

    /// Keeps only the readable bytes (out-of-order ranges are dropped and
    /// spare capacity given back).
    pub(crate) fn retire(&mut self) {
        self.ooo.clear();
        self.ooo_fin = None;
        self.ready.shrink_to_fit();
        if self.tail.is_empty() {
            self.tail = BytesMut::new();
        }
    }

    /// Frees everything.
    pub(crate) fn clear(&mut self) {
        self.ready.clear();
        self.tail = BytesMut::new();
        self.pinned = 0;
        self.ready_len = 0;
        self.ooo.clear();
        self.ooo_fin = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_reader_pins_at_most_max_pinned_device_buffers() {
        let mut r = RecvBuffer::new(1 << 20, 8);
        let mut nxt = SeqNum::new(7);
        let mut all = Vec::new();
        for i in 0..100u8 {
            let seg = vec![i; 1000];
            all.extend_from_slice(&seg);
            let ins = r.insert(nxt, nxt, Bytes::from(seg), false);
            nxt += ins.advanced;
        }
        assert_eq!(r.pinned, MAX_PINNED);
        assert_eq!(r.ready.iter().filter(|(_, p)| *p).count(), MAX_PINNED);
        let mut out = vec![0u8; all.len()];
        let mut got = 0;
        while got < out.len() {
            let n = r.read(&mut out[got..(got + 777).min(all.len())]);
            assert!(n > 0);
            got += n;
        }
        assert!(out == all, "bytes out of order");
        assert_eq!((r.pinned, r.readable(), r.held()), (0, 0, 0));
    }

    fn b(s: &[u8]) -> Bytes {
        Bytes::copy_from_slice(s)
    }

    #[test]
    fn in_order_then_hole_fill() {
        let mut r = RecvBuffer::new(100, 8);
        let n = SeqNum::new(1000);
        let i = r.insert(n, n + 3, b(b"def"), false);
        assert!(i.out_of_order);
        assert_eq!(r.readable(), 0);
        let i = r.insert(n, n, b(b"abc"), false);
        assert_eq!(i.advanced, 6);
        assert!(i.filled_hole);
        let mut buf = [0u8; 10];
        assert_eq!(r.read(&mut buf), 6);
        assert_eq!(&buf[..6], b"abcdef");
    }

    #[test]
    fn overlapping_ranges_are_trimmed() {
        let mut r = RecvBuffer::new(100, 8);
        let n = SeqNum::new(u32::MAX - 2);
        r.insert(n, n + 4, b(b"EFGH"), false);
        // The FIN comes with the last bytes, out of order.
        r.insert(n, n + 2, b(b"CDEFGHIJ"), true);
        // Merged: one range of both segments' bytes.
        let ranges: Vec<_> = r.ranges().collect();
        assert_eq!(ranges, vec![(n + 2, n + 10)]);
        let i = r.insert(n, n, b(b"AB"), false);
        assert_eq!(i.advanced, 10);
        assert!(i.fin, "the FIN is in order once the hole fills");
        let mut buf = [0u8; 16];
        assert_eq!(r.read(&mut buf), 10);
        assert_eq!(&buf[..10], b"ABCDEFGHIJ");
    }

    #[test]
    fn out_of_order_fin_waits_for_data() {
        let mut r = RecvBuffer::new(100, 8);
        let n = SeqNum::new(0);
        let i = r.insert(n, n + 2, b(b"cd"), true);
        assert!(!i.fin);
        let i = r.insert(n, n, b(b"ab"), false);
        assert!(i.fin);
        assert_eq!(i.advanced, 4);
    }

    #[test]
    fn pressure_prunes_out_of_order_data_and_stops_window_growth() {
        let mut r = RecvBuffer::new(1000, 8);
        let n = SeqNum::new(0);
        // Nothing received yet: the first window is still offered.
        r.set_pressure(MemoryPressure::Pressure);
        assert_eq!(r.space(), 1000);
        r.set_pressure(MemoryPressure::Normal);
        r.insert(n, n + 10, b(b"later"), false);
        assert_eq!(r.held(), 5);
        r.set_pressure(MemoryPressure::Pressure);
        // Held out-of-order bytes go first; new ones are refused (an ACK
        // owed); in-order bytes are still taken; no space is offered.
        assert_eq!((r.held(), r.ooo_pruned), (0, 5));
        let i = r.insert(n, n + 20, b(b"xyz"), false);
        assert!(i.out_of_order && i.advanced == 0);
        assert_eq!(r.ooo_pruned, 8);
        let i = r.insert(n, n, b(b"abc"), false);
        assert_eq!(i.advanced, 3);
        assert_eq!(r.space(), 0);
        r.set_pressure(MemoryPressure::Normal);
        assert_eq!(r.space(), 997);
    }

    #[test]
    fn over_the_limit_new_data_is_dropped_and_counted() {
        let mut r = RecvBuffer::new(1000, 8);
        let n = SeqNum::new(0);
        r.set_pressure(MemoryPressure::Limit);
        let i = r.insert(n, n, b(b"abc"), true);
        assert_eq!((i.advanced, i.fin, r.readable()), (0, false, 0));
        assert_eq!(r.memory_drops, 3);
        // A FIN alone costs no memory: taken.
        let i = r.insert(n, n, Bytes::new(), true);
        assert!(i.fin);
    }

    #[test]
    fn memory_counts_the_copy_room_and_pinned_device_buffers() {
        let mut r = RecvBuffer::new(1 << 20, 8);
        let n = SeqNum::new(0);
        r.insert(n, n, Bytes::from(vec![1u8; 1000]), false);
        assert_eq!(r.memory(), 1000 + PINNED_CHARGE);
        // A small payload is copied into a tail with room reserved.
        r.insert(n + 1000, n + 1000, b(b"abc"), false);
        assert!(r.memory() >= 1003 + PINNED_CHARGE);
        let mut buf = vec![0u8; 2000];
        assert_eq!(r.read(&mut buf), 1003);
        assert_eq!(r.memory(), 0);
    }

    #[test]
    fn range_count_is_bounded() {
        let mut r = RecvBuffer::new(1000, 2);
        let n = SeqNum::new(0);
        r.insert(n, n + 10, b(b"a"), false);
        r.insert(n, n + 20, b(b"b"), false);
        r.insert(n, n + 30, b(b"c"), false);
        assert_eq!(r.ranges().count(), 2);
        assert_eq!(r.held(), 2);
    }
}
