//! Out-of-order segments cost an allocation per hole, not per segment: the
//! reassembly keeps merged ranges with room reserved. A binary of its own, so
//! that its counting allocator sees no other test.

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

#[test]
fn out_of_order_segments_allocate_per_hole_not_per_segment() {
    // 64 holes (the default range limit), eight 100-byte segments behind
    // each: the reassembly allocates about once per hole, not per segment.
    let _one = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (_a, mut b, now) = pair();
    let (holes, per_range, len) = (64u32, 8u32, 100u32);
    let ack = b.snd_max();
    let mut segs = Vec::new();
    for h in 0..holes {
        for k in 0..per_range {
            // a's first data byte is 1001; each range starts 100 bytes after
            // a hole and spans 800 bytes, ranges 1000 bytes apart.
            let seq = SeqNum::new(1001) + (h * 1000 + 100 + k * len);
            let repr = utcp_proto::wire::TcpRepr {
                src_port: 40000,
                dst_port: 80,
                seq,
                ack,
                flags: utcp_proto::wire::TcpFlags::ACK,
                window: 65_535,
                urgent: 0,
                options: Default::default(),
            };
            segs.push(Segment {
                repr,
                payload: bytes::Bytes::from(vec![h as u8; len as usize]),
            });
        }
    }
    let mut buf = BytesMut::with_capacity(2048);
    let n = segs.len() as f64;
    let before = ALLOCS.load(Ordering::Relaxed);
    for seg in segs {
        b.handle_segment(now, seg);
        buf.clear();
        while b.poll_transmit(now, &mut buf).is_some() {
            buf.clear();
        }
        while b.poll_event().is_some() {}
    }
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    let per_seg = allocs as f64 / n;
    eprintln!(
        "{n} out-of-order segments behind {holes} holes: {allocs} allocations ({per_seg:.3} per segment)"
    );
    assert_eq!(b.readable(), 0);
    assert!(per_seg < 0.25, "{allocs} allocations for {n} segments");
    // Every segment was kept (the limit counts holes, not segments): filling
    // the holes makes all 64 000 bytes readable.
    for h in 0..holes {
        for off in [0, 900] {
            let repr = utcp_proto::wire::TcpRepr {
                src_port: 40000,
                dst_port: 80,
                seq: SeqNum::new(1001) + (h * 1000 + off),
                ack,
                flags: utcp_proto::wire::TcpFlags::ACK,
                window: 65_535,
                urgent: 0,
                options: Default::default(),
            };
            let payload = bytes::Bytes::from(vec![h as u8; 100]);
            b.handle_segment(now, Segment { repr, payload });
        }
    }
    assert_eq!(b.readable(), (holes * 1000) as usize);
}
