//! Receive arenas whose memory is measured.
//!
//! A device reads packets into large chunks (a TUN device's 128 KiB arena,
//! 512 KiB with 64 KiB super-segments, an AF_PACKET socket's copy chunk) and
//! hands each packet out as a `Bytes` slice of its chunk, without a copy. A
//! chunk then stays allocated while any slice of it is referenced: one
//! segment a slow reader has not read keeps the whole chunk alive. A
//! packet's own length says nothing about that, so an [`RxArena`] measures
//! it: every chunk's capacity is added to a shared [`RxMemory`] gauge when
//! the chunk is allocated and subtracted when its last slice is dropped
//! (observed with `Bytes::from_owner`, one small allocation per batch of
//! packets read into a chunk, never one per packet). The stack counts that
//! gauge against its receive-memory thresholds (`StackConfig::rcv_memory_pressure`),
//! so they see what the device really keeps alive, and under pressure its
//! connections copy the slices they hold out of the arenas (collapse).
//!
//! Each packet also carries its true size ([`RxPacket::truesize`]): its
//! share of the chunk, the bytes it took of it, the chunk's unusable rest
//! included for the packet that ends a chunk, so the true sizes of a chunk's
//! packets add up to its capacity. A connection charges a slice it keeps
//! referenced by that share.

use super::{Offload, RxPacket};
use bytes::{Bytes, BytesMut};
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The receive memory a device keeps alive: the capacity of every read
/// chunk it allocated that is not freed yet (referenced by a packet
/// anywhere, or still being filled), and of those the chunks its arenas are
/// filling now (its standing buffers, allocated whatever the packets do).
/// Cheap to clone; clones share the count.
#[derive(Clone, Debug, Default)]
pub struct RxMemory(Arc<Gauge>);

#[derive(Debug, Default)]
struct Gauge {
    alive: AtomicUsize,
    standing: AtomicUsize,
    peak: AtomicUsize,
}

impl RxMemory {
    /// A gauge at zero.
    pub fn new() -> RxMemory {
        RxMemory::default()
    }

    /// Bytes of read buffers alive now.
    pub fn alive(&self) -> usize {
        self.0.alive.load(Ordering::Relaxed)
    }

    /// Bytes of read buffers alive now beyond the chunks the device's
    /// arenas are filling: what received packets keep alive (a chunk the
    /// arena has moved on from lives only through them). This is what the
    /// stack counts against its receive-memory thresholds, so that a
    /// device's fixed receive buffers (an AF_PACKET socket's slots) do not
    /// count as pressure.
    pub fn held(&self) -> usize {
        let standing = self.0.standing.load(Ordering::Relaxed);
        self.alive().saturating_sub(standing)
    }

    /// The most bytes of read buffers alive at once.
    pub fn peak(&self) -> usize {
        self.0.peak.load(Ordering::Relaxed)
    }

    fn add(&self, n: usize) {
        let now = self.0.alive.fetch_add(n, Ordering::Relaxed) + n;
        self.0.peak.fetch_max(now, Ordering::Relaxed);
    }

    fn sub(&self, n: usize) {
        self.0.alive.fetch_sub(n, Ordering::Relaxed);
    }
}

/// A chunk's life: its capacity counted from allocation until this is
/// dropped (the arena's reference and every handed-out region's gone).
#[derive(Debug)]
struct ChunkLife {
    bytes: usize,
    gauge: RxMemory,
}

impl Drop for ChunkLife {
    fn drop(&mut self) {
        self.gauge.sub(self.bytes);
    }
}

/// The part of a chunk one batch filled, keeping the chunk's life.
struct Region {
    data: Bytes,
    _life: Arc<ChunkLife>,
}

impl AsRef<[u8]> for Region {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

/// A packet written into the current chunk, not handed out yet.
#[derive(Clone, Copy, Debug)]
struct Pending {
    len: usize,
    truesize: usize,
    meta: Offload,
}

/// Read chunks of a fixed size whose memory is measured by an
/// [`RxMemory`] gauge (see the module docs). Packets are written one after
/// another into the current chunk ([`push`](Self::push) copies one in) and
/// handed out as slices of it by [`flush`](Self::flush), once per batch; a
/// chunk whose packets are all gone is reused, otherwise a new one is
/// allocated.
///
/// ```
/// use utcp_runtime::device::arena::{RxArena, RxMemory};
/// use utcp_runtime::device::Offload;
///
/// let gauge = RxMemory::new();
/// let mut arena = RxArena::new(64 * 1024, 1500, gauge.clone());
/// let mut out = Vec::new();
/// arena.push(&[0x45; 60], Offload::default(), &mut out);
/// arena.push(&[0x45; 1500], Offload::default(), &mut out);
/// arena.flush(&mut out);
/// assert_eq!(out.len(), 2);
/// // The chunk being filled is the device's own: packets hold nothing more.
/// assert_eq!((gauge.alive(), gauge.held()), (64 * 1024, 0));
/// let kept = out.pop().unwrap();
/// drop(arena);
/// drop(out);
/// // One packet keeps the whole chunk alive.
/// assert_eq!((gauge.alive(), gauge.held()), (64 * 1024, 64 * 1024));
/// drop(kept);
/// assert_eq!(gauge.alive(), 0);
/// ```
#[derive(Debug)]
pub struct RxArena {
    /// The current chunk: its filled part holds the pending packets.
    buf: BytesMut,
    /// The current chunk's life (`None` before the first).
    life: Option<Arc<ChunkLife>>,
    chunk: usize,
    /// The most one packet takes: a chunk with less room left is done.
    need: usize,
    gauge: RxMemory,
    pending: Vec<Pending>,
}

impl Drop for RxArena {
    fn drop(&mut self) {
        if let Some(life) = &self.life {
            self.gauge
                .0
                .standing
                .fetch_sub(life.bytes, Ordering::Relaxed);
        }
    }
}

impl RxArena {
    /// Chunks of `chunk` bytes (at least `max_packet`) for packets of at
    /// most `max_packet` bytes, counted in `gauge`.
    pub fn new(chunk: usize, max_packet: usize, gauge: RxMemory) -> RxArena {
        let need = max_packet.max(1);
        RxArena {
            buf: BytesMut::new(),
            life: None,
            chunk: chunk.max(need),
            need,
            gauge,
            pending: Vec::new(),
        }
    }

    /// The gauge this arena counts in.
    pub fn gauge(&self) -> &RxMemory {
        &self.gauge
    }

    /// Makes room for one packet of up to `need` bytes after the pending
    /// ones: the current chunk if it has it, else (the pending packets
    /// handed out first) the same chunk reclaimed if nothing references it
    /// any more, else a new chunk.
    fn room(&mut self, out: &mut Vec<RxPacket>) {
        if self.buf.capacity() - self.buf.len() >= self.need {
            return;
        }
        self.flush(out);
        if self.life.is_some() && self.buf.try_reclaim(self.need) {
            return;
        }
        if let Some(old) = &self.life {
            // Moved on from: alive only through its packets now.
            self.gauge
                .0
                .standing
                .fetch_sub(old.bytes, Ordering::Relaxed);
        }
        self.buf = BytesMut::with_capacity(self.chunk);
        let bytes = self.buf.capacity();
        self.gauge.0.standing.fetch_add(bytes, Ordering::Relaxed);
        self.gauge.add(bytes);
        // The old chunk's life ends with its last region.
        self.life = Some(Arc::new(ChunkLife {
            bytes,
            gauge: self.gauge.clone(),
        }));
    }

    /// Room for one packet (`max_packet` bytes) to be written by a read
    /// system call; [`commit`](Self::commit) says how much was.
    pub(crate) fn spare(&mut self, out: &mut Vec<RxPacket>) -> &mut [MaybeUninit<u8>] {
        self.room(out);
        let need = self.need;
        &mut self.buf.spare_capacity_mut()[..need]
    }

    /// The first `len` bytes of [`spare`](Self::spare) were written: one
    /// packet.
    ///
    /// # Safety
    ///
    /// Those bytes must have been initialized, and `len` ≤ `max_packet`.
    pub(crate) unsafe fn commit(&mut self, len: usize, meta: Offload) {
        debug_assert!(len <= self.need);
        let at = self.buf.len();
        // SAFETY: the caller initialized `len` spare bytes, within capacity.
        unsafe { self.buf.set_len(at + len) };
        self.record(len, meta);
    }

    /// The first `len` bytes of [`spare`](Self::spare), left uncommitted
    /// (to be copied elsewhere; the next read overwrites them).
    ///
    /// # Safety
    ///
    /// Those bytes must have been initialized since `spare`, and `len` ≤
    /// `max_packet`.
    pub(crate) unsafe fn written(&mut self, len: usize) -> &[u8] {
        let spare = &mut self.buf.spare_capacity_mut()[..len];
        // SAFETY: the caller initialized them.
        unsafe { std::slice::from_raw_parts(spare.as_ptr().cast::<u8>(), len) }
    }

    /// Copies one packet (at most `max_packet` bytes; a longer one gets a
    /// buffer of its own) into the current chunk.
    pub fn push(&mut self, packet: &[u8], meta: Offload, out: &mut Vec<RxPacket>) {
        if packet.len() > self.need {
            self.flush(out);
            out.push(RxPacket {
                data: Bytes::copy_from_slice(packet),
                meta,
                truesize: packet.len(),
            });
            return;
        }
        self.room(out);
        self.buf.extend_from_slice(packet);
        self.record(packet.len(), meta);
    }

    fn record(&mut self, len: usize, meta: Offload) {
        let rest = self.buf.capacity() - self.buf.len();
        // The packet that ends a chunk takes its unusable rest too.
        let truesize = if rest < self.need { len + rest } else { len };
        self.pending.push(Pending {
            len,
            truesize,
            meta,
        });
    }

    /// Hands the pending packets out, in order, as slices of their chunk
    /// that keep its life.
    pub fn flush(&mut self, out: &mut Vec<RxPacket>) {
        if self.pending.is_empty() {
            return;
        }
        let Some(life) = &self.life else {
            unreachable!("RxArena: packets pending without a chunk");
        };
        let region = Bytes::from_owner(Region {
            data: self.buf.split().freeze(),
            _life: life.clone(),
        });
        let mut at = 0;
        for p in self.pending.drain(..) {
            out.push(RxPacket {
                data: region.slice(at..at + p.len),
                meta: p.meta,
                truesize: p.truesize,
            });
            at += p.len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(len: usize, tag: u8) -> Vec<u8> {
        (0..len).map(|i| tag.wrapping_add(i as u8)).collect()
    }

    #[test]
    fn true_sizes_of_a_chunks_packets_add_up_to_its_capacity() {
        let gauge = RxMemory::new();
        let mut arena = RxArena::new(10_000, 1500, gauge.clone());
        let mut out = Vec::new();
        // Seven fit a chunk (the seventh leaves less than 1500 bytes: it
        // takes the rest); the eighth opens a second chunk.
        for i in 0..8u8 {
            arena.push(&packet(1400, i), Offload::default(), &mut out);
        }
        arena.flush(&mut out);
        assert_eq!(out.len(), 8);
        let first: usize = out[..7].iter().map(|p| p.truesize).sum();
        assert_eq!(first, 10_000);
        assert_eq!(out[7].truesize, 1400);
        for (i, p) in out.iter().enumerate() {
            assert_eq!(&p.data[..], &packet(1400, i as u8)[..], "packet {i}");
        }
        // The first chunk lives through its packets only; the second is
        // the arena's.
        assert_eq!((gauge.alive(), gauge.held()), (20_000, 10_000));
        out.drain(..7);
        assert_eq!((gauge.alive(), gauge.held()), (10_000, 0));
        drop(out);
        drop(arena);
        assert_eq!((gauge.alive(), gauge.peak()), (0, 20_000));
    }

    #[test]
    fn a_chunk_whose_packets_are_gone_is_reused() {
        let gauge = RxMemory::new();
        let mut arena = RxArena::new(4096, 1500, gauge.clone());
        let mut out = Vec::new();
        for round in 0..100u8 {
            for i in 0..3u8 {
                arena.push(&packet(1000, round ^ i), Offload::default(), &mut out);
            }
            arena.flush(&mut out);
            assert_eq!(&out[2].data[..], &packet(1000, round ^ 2)[..]);
            out.clear();
        }
        // Read and dropped each round: one chunk all along.
        assert_eq!((gauge.alive(), gauge.peak()), (4096, 4096));
    }

    #[test]
    fn a_packet_longer_than_the_largest_read_gets_its_own_buffer_in_order() {
        let gauge = RxMemory::new();
        let mut arena = RxArena::new(8192, 1500, gauge.clone());
        let mut out = Vec::new();
        arena.push(&packet(100, 1), Offload::default(), &mut out);
        arena.push(&packet(3000, 2), Offload::default(), &mut out);
        arena.push(&packet(200, 3), Offload::default(), &mut out);
        arena.flush(&mut out);
        let lens: Vec<_> = out.iter().map(|p| (p.data.len(), p.truesize)).collect();
        assert_eq!(lens, [(100, 100), (3000, 3000), (200, 200)]);
        assert_eq!(&out[1].data[..], &packet(3000, 2)[..]);
        assert_eq!(gauge.alive(), 8192);
    }
}
