//! The stack's receive memory, with two thresholds like Linux's `tcp_mem`:
//! every connection's `recv_memory` (payload, copy room, out-of-order
//! buffers, device-buffer shares) plus what waits in the inboxes, summed in
//! one counter. Each connection task reads the level before it takes
//! segments (`Connection::set_memory_pressure`): above `pressure` windows
//! stop growing and out-of-order data goes first, above `limit` new data is
//! dropped and counted.

use std::sync::atomic::{AtomicIsize, AtomicU64, AtomicUsize, Ordering};
use utcp_proto::{MemoryPressure, Segment};

/// What a segment waiting in an inbox is charged: its payload and, when it
/// has one, its share of the device's read arena (as proto charges a
/// referenced device buffer).
pub(crate) fn inbox_charge(seg: &Segment) -> usize {
    if seg.payload.is_empty() {
        0
    } else {
        seg.payload.len() + 2048
    }
}

#[derive(Debug)]
pub(crate) struct RecvMemory {
    /// Signed: on a multi-thread runtime a connection task may take a
    /// segment (and uncharge it) a moment before the device task's charge
    /// lands; the sum is right once both did.
    held: AtomicIsize,
    peak: AtomicUsize,
    pressure: usize,
    limit: usize,
    /// Out-of-order bytes pruned or refused under pressure, all connections.
    pub(crate) ooo_pruned: AtomicU64,
    /// New bytes dropped over the limit, all connections.
    pub(crate) drops: AtomicU64,
}

impl RecvMemory {
    pub(crate) fn new(pressure: usize, limit: usize) -> Self {
        RecvMemory {
            held: AtomicIsize::new(0),
            peak: AtomicUsize::new(0),
            pressure,
            limit,
            ooo_pruned: AtomicU64::new(0),
            drops: AtomicU64::new(0),
        }
    }

    /// The level now.
    pub(crate) fn level(&self) -> MemoryPressure {
        let held = self.held.load(Ordering::Relaxed).max(0) as usize;
        if held >= self.limit {
            MemoryPressure::Limit
        } else if held >= self.pressure {
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
        let now = self.held.fetch_add(n, Ordering::Relaxed).saturating_add(n);
        self.peak.fetch_max(now.max(0) as usize, Ordering::Relaxed);
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
        (
            self.held.load(Ordering::Relaxed).max(0) as usize,
            self.peak.load(Ordering::Relaxed),
        )
    }
}
