//! The hot path allocates nothing per segment in steady state: two
//! connections move 8 MiB through `poll_transmit` / `handle_segment`, and a
//! counting allocator measures allocations per segment.

mod counting;

use bytes::BytesMut;
use counting::{ALLOCS, Counting, LIVE, LOCK, pair, pump};
use std::sync::atomic::Ordering;
use utcp_proto::{Connection, Instant};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Sends `bytes` from `a` to `b` as an application would: writes keep the
/// send buffer topped up, the reader reads after every batch. Ends when all is
/// read and acknowledged; returns the segments exchanged.
fn transfer(bytes: usize, a: &mut Connection, b: &mut Connection, now: &mut Instant) -> u64 {
    let mut buf = BytesMut::with_capacity(2048);
    let chunk = vec![0x5au8; 16 * 1024];
    let mut sink = vec![0u8; 64 * 1024];
    let (mut segs, mut sent, mut moved) = (0, 0, 0);
    for _ in 0..1_000_000 {
        while sent < bytes {
            match a.send(&chunk[..(bytes - sent).min(chunk.len())]) {
                Ok(0) | Err(_) => break,
                Ok(n) => sent += n,
            }
        }
        segs += pump(*now, a, b, &mut buf);
        while let Ok(Some(n)) = b.recv(&mut sink) {
            if n == 0 {
                break;
            }
            moved += n;
        }
        segs += pump(*now, b, a, &mut buf);
        *now += std::time::Duration::from_micros(100);
        if moved == bytes && a.send_queued() == 0 {
            return segs;
        }
    }
    panic!("transfer did not finish: sent {sent}, read {moved}");
}

#[test]
fn steady_state_bulk_transfer_allocates_almost_nothing_per_segment() {
    let _one = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (mut a, mut b, mut now) = pair();
    // Warm up (queues reach their steady size), then measure.
    transfer(2 << 20, &mut a, &mut b, &mut now);
    let before = ALLOCS.load(Ordering::Relaxed);
    let segs = transfer(8 << 20, &mut a, &mut b, &mut now);
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    let per_seg = allocs as f64 / segs as f64;
    eprintln!("{segs} segments, {allocs} allocations: {per_seg:.4} per segment");
    assert!(per_seg < 0.05, "{per_seg:.4} allocations per segment");
}

#[test]
fn a_drained_connection_gives_its_buffer_memory_back() {
    let _one = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (mut a, mut b, mut now) = pair();
    let base = LIVE.load(Ordering::Relaxed);
    // 4 MiB each way, everything read and acknowledged.
    transfer(4 << 20, &mut a, &mut b, &mut now);
    transfer(4 << 20, &mut b, &mut a, &mut now);
    assert_eq!(
        (a.send_queued(), b.send_queued(), a.readable(), b.readable()),
        (0, 0, 0, 0)
    );
    let held = LIVE.load(Ordering::Relaxed) - base;
    eprintln!("two idle connections hold {held} more heap bytes than before the transfers");
    // What remains are queue capacities (a few KiB), not the 256 KiB send and
    // 64 KiB receive buffers the transfers used.
    assert!(held < 16 * 1024, "idle connections still hold {held} bytes");
}
