//! A counting allocator and a connected pair of connections, shared by the
//! allocation test binaries (each installs the allocator as its own global
//! allocator, so no other test binary pollutes its counts).
#![allow(dead_code)]

use bytes::BytesMut;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use utcp_proto::{Config, Connection, Instant, Segment, SeqNum};

/// Counts allocations and live bytes.
pub struct Counting;

/// Allocations (and reallocations) so far.
pub static ALLOCS: AtomicU64 = AtomicU64::new(0);
/// Bytes currently allocated, by every thread (tests of one binary run one
/// at a time through `LOCK`).
pub static LIVE: AtomicI64 = AtomicI64::new(0);
/// Serializes the tests of one binary.
pub static LOCK: Mutex<()> = Mutex::new(());

thread_local! {
    /// Bytes allocated less bytes freed by this thread (const-initialized,
    /// no destructor: reading it never allocates).
    static HERE: Cell<i64> = const { Cell::new(0) };
}

/// Bytes this thread allocated and did not free: unlike [`LIVE`], not moved
/// by the test harness, which spawns the next test's thread (its name,
/// output capture) while this one runs.
pub fn live_here() -> i64 {
    HERE.with(Cell::get)
}

fn here(delta: i64) {
    let _ = HERE.try_with(|c| c.set(c.get() + delta));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        LIVE.fetch_add(l.size() as i64, Ordering::Relaxed);
        here(l.size() as i64);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as i64, Ordering::Relaxed);
        here(-(l.size() as i64));
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        LIVE.fetch_add(n as i64 - l.size() as i64, Ordering::Relaxed);
        here(n as i64 - l.size() as i64);
        unsafe { System.realloc(p, l, n) }
    }
}

/// Moves every pending segment from `from` to `to`; returns how many.
pub fn pump(now: Instant, from: &mut Connection, to: &mut Connection, buf: &mut BytesMut) -> u64 {
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
pub fn pair() -> (Connection, Connection, Instant) {
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
