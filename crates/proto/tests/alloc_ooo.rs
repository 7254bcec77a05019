//! Out-of-order segments cost an allocation per hole, not per segment: the
//! reassembly keeps merged ranges with room reserved. A binary of its own, so
//! that its counting allocator sees no other test.

mod counting;

use bytes::BytesMut;
use counting::{ALLOCS, Counting, LOCK, pair};
use std::sync::atomic::Ordering;
use utcp_proto::{Segment, SeqNum};

#[global_allocator]
static GLOBAL: Counting = Counting;

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
