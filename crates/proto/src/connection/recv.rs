//! The receive buffer: in-order bytes waiting for the application, and the
//! out-of-order ranges held until the hole before them fills (RFC 9293 §3.10.7.4,
//! seventh step; RFC 5681 §4.2).
//!
//! In-order payloads larger than a threshold are kept as the `Bytes` the device
//! handed in (no copy) while the application keeps up; small payloads, and any
//! payload once [`MAX_PINNED`] device buffers are already held or while the
//! stack is under memory pressure, are copied into an owned, coalescing tail
//! so a slow reader never pins many device read buffers. Out-of-order
//! payloads are copied into merged ranges ([`Reassembly`]), whose number is
//! bounded; a range that comes in order joins the readable bytes without
//! another copy.
//!
//! Memory is counted as what each chunk keeps alive: a referenced device
//! slice its true size (the packet's share of the device's read buffer, as
//! the runtime tells it; Linux's `skb->truesize`), a buffer of ours its
//! capacity. When the true sizes take the total over twice the limit, or
//! the stack is under pressure, the referenced device slices are copied
//! into buffers of ours (collapsed, as Linux's `tcp_collapse`), so the
//! device can free the arenas they kept alive.

use super::reassembly::Reassembly;
use super::{Connection, Segment};
use crate::seq::SeqNum;
use crate::time::Instant;
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

impl Connection {
    /// Processes one incoming segment whose payload is a slice of a device
    /// buffer that keeps `truesize` bytes alive: the packet's share of the
    /// buffer it was read into (its bytes in a read arena, rounded to what
    /// it used of it; a buffer of its own's allocation). While the payload
    /// is referenced (kept without a copy until the application reads it)
    /// the connection's [`recv_memory`](Connection::recv_memory) charges it
    /// `truesize` rather than its length, and once those charges outgrow
    /// twice the receive buffer the referenced slices are copied out
    /// (collapsed) so the device memory is freed.
    /// [`handle_segment`](Connection::handle_segment) is this with the
    /// payload's own length.
    pub fn handle_segment_sized(&mut self, now: Instant, seg: Segment, truesize: usize) {
        self.rcv.buf.arriving = truesize;
        self.handle_segment(now, seg);
        self.rcv.buf.arriving = 0;
    }

    /// The part of [`recv_memory`](Connection::recv_memory) that is device
    /// buffers still referenced, by their true sizes (see
    /// [`handle_segment_sized`](Connection::handle_segment_sized)). A
    /// runtime that measures its devices' buffers itself counts those
    /// instead and subtracts this.
    pub fn recv_device_memory(&self) -> usize {
        self.rcv.buf.device_memory()
    }

    /// Bytes copied out of device buffers so far ([`Stats::rcv_collapsed`](crate::Stats::rcv_collapsed)),
    /// without building the whole [`stats`](Connection::stats).
    pub fn recv_collapsed(&self) -> u64 {
        self.rcv.buf.collapsed
    }
}

/// In-order payloads at least this long are kept without copying.
const COPY_BELOW: usize = 512;

/// Most device buffers one connection keeps referenced at once (more than a
/// 64 KiB window holds in full-size segments, so a reader that keeps up never
/// causes a copy).
const MAX_PINNED: usize = 64;

/// Where the stack's receive memory stands, as Linux's `tcp_mem`
/// thresholds: the runtime sums every connection's
/// [`recv_memory`](crate::Connection::recv_memory) (and what waits in their
/// inboxes, or what its device reports alive) and tells each connection
/// before it takes segments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MemoryPressure {
    /// Below the pressure threshold: nothing changes.
    #[default]
    Normal,
    /// Above the pressure threshold: the window does not grow (the right
    /// edge already advertised stays, RFC 9293 §3.8.6, and no more is
    /// offered), held out-of-order data is dropped first and new
    /// out-of-order data refused (Linux's `tcp_prune_ofo_queue`), and
    /// referenced device buffers are copied out (collapsed, as Linux's
    /// `tcp_collapse`) so their read arenas can be freed; in-order data is
    /// still taken, copied.
    Pressure,
    /// Above the limit: every new byte is dropped and counted (the peer
    /// retransmits once memory frees); an in-order FIN without data is
    /// still taken. Device buffers are collapsed as under pressure.
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
    /// Bytes of the in-order segment that held data covered already (the
    /// segment overlapped a range it reached): received twice, reported
    /// as a D-SACK block (RFC 2883 §4, as Linux's `tcp_ofo_queue`).
    pub(crate) overlap: Option<(SeqNum, SeqNum)>,
}

/// A readable chunk.
#[derive(Debug)]
struct Chunk {
    data: Bytes,
    /// The memory it keeps alive until its last byte is read: a device
    /// buffer's true size (its share of the read arena), or the capacity of
    /// a buffer of our own.
    charge: usize,
    /// A slice of a device buffer (not ours).
    pinned: bool,
}

#[derive(Debug)]
pub(crate) struct RecvBuffer {
    /// Readable chunks, oldest first.
    ready: VecDeque<Chunk>,
    /// Copied bytes, logically after every chunk in `ready`.
    tail: BytesMut,
    /// Pinned chunks in `ready`.
    pinned: usize,
    /// The charges of the pinned chunks together (device memory referenced).
    pinned_charge: usize,
    /// The charges of every chunk in `ready`.
    ready_charge: usize,
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
    /// The true size of the segment being processed
    /// ([`Connection::handle_segment_sized`]); 0: its payload's length.
    arriving: usize,
    /// Out-of-order bytes pruned or refused under pressure.
    pub(crate) ooo_pruned: u64,
    /// New bytes dropped above the memory limit.
    pub(crate) memory_drops: u64,
    /// Bytes copied out of device buffers by a collapse.
    pub(crate) collapsed: u64,
}

impl RecvBuffer {
    pub(crate) fn new(limit: usize, max_ranges: usize) -> Self {
        RecvBuffer {
            ready: VecDeque::new(),
            tail: BytesMut::new(),
            pinned: 0,
            pinned_charge: 0,
            ready_charge: 0,
            ready_len: 0,
            ooo: Reassembly::new(max_ranges),
            ooo_fin: None,
            limit,
            pressure: MemoryPressure::Normal,
            opened: false,
            arriving: 0,
            ooo_pruned: 0,
            memory_drops: 0,
            collapsed: 0,
        }
    }

    /// Drained: frees the readable list's room and, with nothing out of
    /// order, the reassembly's; the bytes freed.
    pub(crate) fn release_idle(&mut self) -> usize {
        super::free_if_empty(&mut self.ready) + self.ooo.release_idle()
    }

    /// The memory this buffer holds: every readable chunk's charge (a
    /// referenced device buffer's true size, the capacity of a buffer of
    /// ours), the copy tail's capacity, and the out-of-order ranges'
    /// buffers (held and reserved).
    pub(crate) fn memory(&self) -> usize {
        self.ready_charge + self.tail.capacity() + self.ooo.capacity()
    }

    /// The part of [`memory`](Self::memory) that is device buffers
    /// referenced (their true sizes).
    pub(crate) fn device_memory(&self) -> usize {
        self.pinned_charge
    }

    /// The memory above which referenced device buffers are collapsed:
    /// twice the limit (the window's payload, and out-of-order buffers
    /// within what the window can still bring), as Linux's `sk_rcvbuf` is
    /// about twice the window it offers.
    fn cap(&self) -> usize {
        2 * self.limit
    }

    /// The stack's memory state as last told.
    pub(crate) fn pressure(&self) -> MemoryPressure {
        self.pressure
    }

    /// The stack's memory state changed (see [`MemoryPressure`]): from
    /// pressure on, held out-of-order data is dropped (RFC 2018 §8 lets a
    /// receiver discard SACKed data; the sender's RTO recovers it) and
    /// referenced device buffers are collapsed.
    pub(crate) fn set_pressure(&mut self, p: MemoryPressure) {
        self.pressure = p;
        if p != MemoryPressure::Normal {
            if !self.ooo.is_empty() {
                self.ooo_pruned += self.ooo.len() as u64;
                self.ooo.clear();
                self.ooo_fin = None;
            }
            self.collapse();
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
    #[inline]
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
                self.check_cap();
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
        while !self.ooo.is_empty()
            && let Some((data, capacity, skipped)) = self.ooo.take_in_order(nxt)
        {
            if skipped > 0 && out.overlap.is_none() {
                out.overlap = Some((nxt + 0u32.wrapping_sub(skipped), nxt));
            }
            nxt += data.len() as u32;
            out.advanced += data.len() as u32;
            self.push_owned(data, capacity);
        }
        if let Some(f) = self.ooo_fin
            && f == nxt
        {
            out.fin = true;
            self.ooo_fin = None;
        }
        self.check_cap();
        out
    }

    /// Referenced device buffers are collapsed once the memory is over the
    /// cap (Linux's `tcp_prune_queue` → `tcp_collapse`: their true sizes
    /// outgrow what the window justifies).
    fn check_cap(&mut self) {
        if self.pinned > 0 && self.memory() > self.cap() {
            self.collapse();
        }
    }

    /// The copy tail's bytes so far become a chunk of their own (what
    /// comes next goes after them).
    #[inline]
    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            let copied = self.tail.split().freeze();
            let charge = copied.len();
            self.ready_charge += charge;
            self.ready.push_back(Chunk {
                data: copied,
                charge,
                pinned: false,
            });
        }
    }

    /// In-order bytes of the device's buffer: kept as they are (pinned) when
    /// large, while fewer than [`MAX_PINNED`] are and the stack is not
    /// under memory pressure; copied into the tail otherwise.
    fn push_ready(&mut self, data: Bytes) {
        self.ready_len += data.len();
        if data.len() >= COPY_BELOW
            && self.pinned < MAX_PINNED
            && self.pressure == MemoryPressure::Normal
        {
            self.seal_tail();
            let charge = self.arriving.max(data.len());
            self.pinned += 1;
            self.pinned_charge += charge;
            self.ready_charge += charge;
            self.ready.push_back(Chunk {
                data,
                charge,
                pinned: true,
            });
        } else {
            self.copy_in(&data);
        }
    }

    fn copy_in(&mut self, data: &[u8]) {
        if self.tail.capacity() - self.tail.len() < data.len() {
            // Room for what the window may still bring, so a burst of
            // small segments costs one allocation.
            let want = data.len().max(self.space().min(64 * 1024));
            self.tail.reserve(want);
        }
        self.tail.extend_from_slice(data);
    }

    /// A buffer of our own (a range that came in order, `capacity` bytes
    /// allocated): kept as it is when large, so the bytes are not copied
    /// again.
    fn push_owned(&mut self, data: Bytes, capacity: usize) {
        if data.len() < COPY_BELOW {
            self.ready_len += data.len();
            self.copy_in(&data);
            return;
        }
        self.ready_len += data.len();
        self.seal_tail();
        let charge = capacity.max(data.len());
        self.ready_charge += charge;
        self.ready.push_back(Chunk {
            data,
            charge,
            pinned: false,
        });
    }

    /// Copies every run of referenced device buffers into one buffer of our
    /// own (Linux's `tcp_collapse`), so that the read arenas they keep alive
    /// can be freed; the bytes and their order stay. One allocation per run
    /// of adjacent pinned chunks.
    fn collapse(&mut self) {
        if self.pinned == 0 {
            return;
        }
        let mut i = 0;
        while i < self.ready.len() {
            if !self.ready[i].pinned {
                i += 1;
                continue;
            }
            let run = self.ready.range(i..).take_while(|c| c.pinned).count();
            let len: usize = self.ready.range(i..i + run).map(|c| c.data.len()).sum();
            let mut buf = BytesMut::with_capacity(len);
            for c in self.ready.drain(i..i + run) {
                buf.extend_from_slice(&c.data);
                self.ready_charge -= c.charge;
            }
            self.collapsed += len as u64;
            let charge = buf.capacity();
            self.ready_charge += charge;
            self.ready.insert(
                i,
                Chunk {
                    data: buf.freeze(),
                    charge,
                    pinned: false,
                },
            );
            i += 1;
        }
        tracing::trace!(copied = self.collapsed, "receive buffer collapsed");
        self.pinned = 0;
        self.pinned_charge = 0;
    }

    /// Copies readable bytes into `buf` without consuming them; returns the
    /// count.
    pub(crate) fn peek(&self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        let chunks = self.ready.iter().map(|c| &c.data[..]);
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

    /// Up to `max` readable bytes without a copy: the front of the oldest
    /// chunk (a slice of the device buffer it arrived in, or of the copy
    /// buffer); empty when nothing is readable. The caller holds the
    /// memory from then on: it is no longer counted here.
    pub(crate) fn read_bytes(&mut self, max: usize) -> Bytes {
        let out = if let Some(front) = self.ready.front_mut() {
            let take = front.data.len().min(max);
            let out = front.data.split_to(take);
            if front.data.is_empty() {
                self.ready_charge -= front.charge;
                if front.pinned {
                    self.pinned -= 1;
                    self.pinned_charge -= front.charge;
                }
                self.ready.pop_front();
            }
            out
        } else {
            let take = self.tail.len().min(max);
            self.tail.split_to(take).freeze()
        };
        self.ready_len -= out.len();
        if self.ready_len == 0 && self.tail.capacity() > 0 {
            self.tail = BytesMut::new();
        }
        if self.ready.is_empty() && self.ready.capacity() > 2 * MAX_PINNED {
            self.ready = VecDeque::new();
        }
        out
    }

    /// Copies readable bytes into `buf`; returns the count.
    #[inline]
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> usize {
        if self.ready_len == 0
            && self.ready.is_empty()
            && self.tail.capacity() == 0
            && self.ready.capacity() <= 2 * MAX_PINNED
        {
            // Nothing to read and nothing to give back (the call after a
            // drain): the walk below would change nothing.
            return 0;
        }
        let mut n = 0;
        while n < buf.len() {
            if let Some(front) = self.ready.front_mut() {
                let take = front.data.len().min(buf.len() - n);
                buf[n..n + take].copy_from_slice(&front.data[..take]);
                front.data.advance(take);
                n += take;
                if front.data.is_empty() {
                    // Its last byte read: the buffer it kept alive goes.
                    self.ready_charge -= front.charge;
                    if front.pinned {
                        self.pinned -= 1;
                        self.pinned_charge -= front.charge;
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
        // No longer counted by the stack: pin no device buffer either.
        self.collapse();
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
        self.pinned_charge = 0;
        self.ready_charge = 0;
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
        assert_eq!(r.ready.iter().filter(|c| c.pinned).count(), MAX_PINNED);
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
        // A device buffer referenced: its true size, not its length.
        r.arriving = 1500;
        r.insert(n, n, Bytes::from(vec![1u8; 1000]), false);
        r.arriving = 0;
        assert_eq!((r.memory(), r.device_memory()), (1500, 1500));
        // A small payload is copied into a tail with room reserved.
        r.insert(n + 1000, n + 1000, b(b"abc"), false);
        assert!(r.memory() >= 1503);
        assert_eq!(r.device_memory(), 1500);
        let mut buf = vec![0u8; 2000];
        assert_eq!(r.read(&mut buf), 1003);
        assert_eq!((r.memory(), r.device_memory()), (0, 0));
    }

    /// Feeds 1000-byte in-order payloads, each said to keep `truesize`
    /// bytes alive; returns the bytes fed.
    fn feed_pinned(r: &mut RecvBuffer, nxt: &mut SeqNum, count: u8, truesize: usize) -> Vec<u8> {
        let mut all = Vec::new();
        for i in 0..count {
            let seg = vec![i; 1000];
            all.extend_from_slice(&seg);
            r.arriving = truesize;
            let ins = r.insert(*nxt, *nxt, Bytes::from(seg), false);
            r.arriving = 0;
            *nxt += ins.advanced;
        }
        all
    }

    fn drain(r: &mut RecvBuffer) -> Vec<u8> {
        let mut out = vec![0u8; r.readable()];
        let mut got = 0;
        while got < out.len() {
            let end = (got + 777).min(out.len());
            let n = r.read(&mut out[got..end]);
            assert!(n > 0);
            got += n;
        }
        out
    }

    #[test]
    fn device_buffers_whose_true_size_outgrows_the_cap_are_collapsed() {
        // Each 1000-byte payload keeps a 64 KiB device buffer alive; the
        // limit is 64 KiB, so the cap is 128 KiB: the third pinned slice
        // takes the memory over it and everything referenced is copied.
        let mut r = RecvBuffer::new(64 * 1024, 8);
        let mut nxt = SeqNum::new(7);
        let all = feed_pinned(&mut r, &mut nxt, 40, 64 * 1024);
        assert!(r.memory() <= r.cap(), "memory {} over the cap", r.memory());
        assert!(
            r.pinned <= 2,
            "{} device buffers still referenced",
            r.pinned
        );
        assert!(r.collapsed >= 2000, "collapsed {}", r.collapsed);
        assert_eq!(r.device_memory(), r.pinned * 64 * 1024);
        assert!(drain(&mut r) == all, "bytes lost or out of order");
        assert_eq!((r.memory(), r.pinned, r.readable()), (0, 0, 0));
    }

    #[test]
    fn a_reader_that_keeps_up_never_collapses() {
        // True sizes of a TUN arena's packets (the payload and its headers):
        // never near the cap, so nothing is copied.
        let mut r = RecvBuffer::new(64 * 1024, 8);
        let mut nxt = SeqNum::new(7);
        for _ in 0..50 {
            let all = feed_pinned(&mut r, &mut nxt, 40, 1052);
            assert!(drain(&mut r) == all);
        }
        assert_eq!(r.collapsed, 0);
    }

    #[test]
    fn pressure_collapses_device_buffers_and_copies_new_ones() {
        let mut r = RecvBuffer::new(1 << 20, 8);
        let mut nxt = SeqNum::new(7);
        let mut all = feed_pinned(&mut r, &mut nxt, 10, 128 * 1024);
        assert_eq!(r.pinned, 10);
        r.set_pressure(MemoryPressure::Pressure);
        assert_eq!((r.pinned, r.device_memory(), r.collapsed), (0, 0, 10_000));
        // One buffer of ours for the run: its capacity, no device memory.
        assert_eq!(r.memory(), 10_000);
        // New in-order data is still taken, copied.
        all.extend(feed_pinned(&mut r, &mut nxt, 5, 128 * 1024));
        assert_eq!((r.pinned, r.device_memory()), (0, 0));
        assert!(drain(&mut r) == all);
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
