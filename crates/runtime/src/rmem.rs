//! The stack's receive memory, with two thresholds like Linux's `tcp_mem`,
//! summed in one counter: every connection's `recv_memory` (payload, copy
//! buffers, out-of-order buffers) plus what waits in the inboxes, and the
//! device buffers those reference. When the device measures its read
//! arenas (`Device::rx_memory`) the device buffers are counted by that
//! gauge — every arena chunk that received packets keep alive, however few
//! of its bytes are still referenced (the chunks the device is filling are
//! its own standing buffers and not counted) — and the connections' estimates of them (their segments'
//! true sizes) are left out; otherwise those estimates stand in for it.
//! Each connection task reads the level before it takes segments
//! (`Connection::set_memory_pressure`): above `pressure` windows stop
//! growing, out-of-order data goes first and referenced device buffers are
//! copied out (collapsed) so their arenas can be freed; above `limit` new
//! data is dropped and counted.

use crate::device::arena::RxMemory;
use std::sync::atomic::{AtomicIsize, AtomicU64, AtomicUsize, Ordering};
use utcp_proto::{Connection, MemoryPressure, Segment};

/// A segment on its way to a connection, with the memory its payload keeps
/// alive (the packet's [`RxPacket::truesize`](crate::device::RxPacket::truesize)).
#[derive(Debug)]
pub(crate) struct Inbound {
    pub(crate) seg: Segment,
    pub(crate) truesize: usize,
}

#[derive(Debug)]
pub(crate) struct RecvMemory {
    /// Signed: on a multi-thread runtime a connection task may take a
    /// segment (and uncharge it) a moment before the device task's charge
    /// lands; the sum is right once both did.
    held: AtomicIsize,
    peak: AtomicUsize,
    /// The device's own count of its read buffers alive, if it keeps one.
    device: Option<RxMemory>,
    pressure: usize,
    limit: usize,
    /// Out-of-order bytes pruned or refused under pressure, all connections.
    pub(crate) ooo_pruned: AtomicU64,
    /// New bytes dropped over the limit, all connections.
    pub(crate) drops: AtomicU64,
    /// Bytes copied out of device buffers (collapsed), all connections.
    pub(crate) collapsed: AtomicU64,
}

impl RecvMemory {
    pub(crate) fn new(pressure: usize, limit: usize, device: Option<RxMemory>) -> Self {
        RecvMemory {
            held: AtomicIsize::new(0),
            peak: AtomicUsize::new(0),
            device,
            pressure,
            limit,
            ooo_pruned: AtomicU64::new(0),
            drops: AtomicU64::new(0),
            collapsed: AtomicU64::new(0),
        }
    }

    /// What a segment waiting in an inbox is charged: its payload's true
    /// size (the device buffer it keeps alive), unless the device's gauge
    /// counts that already; nothing for a segment without payload.
    pub(crate) fn inbox_charge(&self, inb: &Inbound) -> usize {
        if self.device.is_some() || inb.seg.payload.is_empty() {
            0
        } else {
            inb.truesize.max(inb.seg.payload.len())
        }
    }

    /// What a connection is charged: its receive memory, without the device
    /// buffers it references when the device's gauge counts them.
    pub(crate) fn conn_charge(&self, conn: &Connection) -> usize {
        let all = conn.recv_memory();
        if self.device.is_some() {
            all - conn.recv_device_memory().min(all)
        } else {
            all
        }
    }

    /// Device buffers alive by the device's own count (0 without one).
    pub(crate) fn device_alive(&self) -> usize {
        self.device.as_ref().map_or(0, RxMemory::alive)
    }

    /// The most device buffers alive at once by the device's count.
    pub(crate) fn device_peak(&self) -> usize {
        self.device.as_ref().map_or(0, RxMemory::peak)
    }

    /// Everything held now: the device buffers as what received packets
    /// keep alive beyond the chunks the device is filling.
    fn total(&self) -> usize {
        let held = self.held.load(Ordering::Relaxed).max(0) as usize;
        held.saturating_add(self.device.as_ref().map_or(0, RxMemory::held))
    }

    /// The level now.
    pub(crate) fn level(&self) -> MemoryPressure {
        let total = self.total();
        if total > self.peak.load(Ordering::Relaxed) {
            self.peak.fetch_max(total, Ordering::Relaxed);
        }
        if total >= self.limit {
            MemoryPressure::Limit
        } else if total >= self.pressure {
            MemoryPressure::Pressure
        } else {
            MemoryPressure::Normal
        }
    }

    pub(crate) fn add(&self, n: usize) {
        if n == 0 {
            return;
        }
        let n = isize::try_from(n).unwrap_or(isize::MAX);
        self.held.fetch_add(n, Ordering::Relaxed);
        self.level();
    }

    pub(crate) fn sub(&self, n: usize) {
        if n > 0 {
            let n = isize::try_from(n).unwrap_or(isize::MAX);
            self.held.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// A connection's charge moves from `*charged` to `now`.
    pub(crate) fn update(&self, charged: &mut usize, now: usize) {
        if now > *charged {
            self.add(now - *charged);
        } else {
            self.sub(*charged - now);
        }
        *charged = now;
    }

    /// Bytes held now, and the most held at once.
    pub(crate) fn held_and_peak(&self) -> (usize, usize) {
        let total = self.total();
        (total, self.peak.load(Ordering::Relaxed).max(total))
    }
}
