//! The hot path allocates nothing per segment in steady state: two
//! connections move 8 MiB through `poll_transmit` / `handle_segment`, and a
//! counting allocator measures allocations per segment.

use bytes::BytesMut;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use utcp_proto::{Config, Connection, Instant, Segment, SeqNum};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
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
    n
}

#[test]
fn steady_state_bulk_transfer_allocates_almost_nothing_per_segment() {
    let cfg = Config::default();
    let (a_addr, b_addr) = (
        "10.0.0.1:40000".parse().unwrap(),
        "10.0.0.2:80".parse().unwrap(),
    );
    let mut now = Instant::from_millis(1);
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

    let chunk = vec![0x5au8; 64 * 1024];
    let mut sink = vec![0u8; 64 * 1024];
    let mut run =
        |bytes: usize, a: &mut Connection, b: &mut Connection, now: &mut Instant| -> u64 {
            let mut segs = 0;
            let mut moved = 0;
            while moved < bytes {
                let _ = a.send(&chunk);
                segs += pump(*now, a, b, &mut buf);
                while let Ok(Some(n)) = b.recv(&mut sink) {
                    if n == 0 {
                        break;
                    }
                    moved += n;
                }
                segs += pump(*now, b, a, &mut buf);
                *now += std::time::Duration::from_micros(100);
            }
            segs
        };
    // Warm up (buffers and queues reach their steady size), then measure.
    run(2 << 20, &mut a, &mut b, &mut now);
    let before = ALLOCS.load(Ordering::Relaxed);
    let segs = run(8 << 20, &mut a, &mut b, &mut now);
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    let per_seg = allocs as f64 / segs as f64;
    eprintln!("{segs} segments, {allocs} allocations: {per_seg:.4} per segment");
    assert!(per_seg < 0.05, "{per_seg:.4} allocations per segment");
}
