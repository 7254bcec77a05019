//! The hot path allocates nothing per segment in steady state: two
//! connections move 8 MiB through `poll_transmit` / `handle_segment`, and a
//! counting allocator measures allocations per segment.

use bytes::BytesMut;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use utcp_proto::{Config, Connection, Instant, Segment, SeqNum};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
/// Bytes currently allocated (by every thread: tests in this file run one
/// at a time through `LOCK`).
static LIVE: AtomicI64 = AtomicI64::new(0);
static LOCK: Mutex<()> = Mutex::new(());

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        LIVE.fetch_add(l.size() as i64, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as i64, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        LIVE.fetch_add(n as i64 - l.size() as i64, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Moves every pending segment from `from` to `to`; returns how many.
fn pump(now: Instant, from: &mut Connection, to: &mut Connection, buf: &mut BytesMut) -> u64 {
    let mut n = 0;
    loop {
        buf.clear();
        let Some(t) = from.poll_transmit(now, buf) else {
            break;
        };
        to.handle_segment(
            now,
            Segment {
                repr: t.repr,
                payload: t.payload,
            },
        );
        n += 1;
    }
    // The runtime drains events after every input; so does this driver.
    while from.poll_event().is_some() {}
    while to.poll_event().is_some() {}
    n
}

/// Two established connections.
fn pair() -> (Connection, Connection, Instant) {
    let cfg = Config::default();
    let (a_addr, b_addr) = (
        "10.0.0.1:40000".parse().unwrap(),
        "10.0.0.2:80".parse().unwrap(),
    );
    let now = Instant::from_millis(1);
    let mut a = Connection::connect(cfg.clone(), a_addr, b_addr, SeqNum::new(1000), now).unwrap();
    let mut buf = BytesMut::with_capacity(2048);
    a.poll_transmit(now, &mut buf).expect("SYN");
    let syn = {
        let mut b = BytesMut::new();
        let mut c =
            Connection::connect(cfg.clone(), a_addr, b_addr, SeqNum::new(1000), now).unwrap();
        c.poll_transmit(now, &mut b).unwrap().repr
    };
    let mut b = Connection::accept(cfg, b_addr, a_addr, SeqNum::new(9000), now, &syn).unwrap();
    pump(now, &mut b, &mut a, &mut buf); // SYN-ACK
    pump(now, &mut a, &mut b, &mut buf); // ACK
    assert_eq!(a.state(), utcp_proto::State::Established);
    assert_eq!(b.state(), utcp_proto::State::Established);
    (a, b, now)
}

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
