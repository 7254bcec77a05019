//! Receive memory under adversarial patterns (the listener issue): 1-byte
//! segments on every other byte of the window, and thousands of holes at
//! random offsets. The connection's memory stays under its cap, both as it
//! counts it (`recv_memory`) and as a counting allocator sees it, and the
//! application still receives every in-order byte once the sender fills in.
//! A binary of its own, so that its counting allocator sees no other test.

mod counting;

use bytes::{Bytes, BytesMut};
use counting::{Counting, LIVE, LOCK, pair};
use std::sync::atomic::Ordering;
use utcp_proto::wire::{TcpFlags, TcpRepr};
use utcp_proto::{Config, Connection, Instant, Segment, SeqNum};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The per-connection cap (`Connection::recv_memory`'s documented bound):
/// twice the receive buffer (the window's payload, and out-of-order buffers
/// within what the window can still bring), plus one device buffer of up
/// to 64 KiB (referenced device buffers beyond twice the receive buffer
/// are copied out).
fn cap() -> i64 {
    let limit = Config::default().recv_buffer as i64;
    2 * limit + 64 * 1024
}

fn seg(b: &Connection, seq: SeqNum, payload: Bytes) -> Segment {
    Segment {
        repr: TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq,
            ack: b.snd_max(),
            flags: TcpFlags::ACK,
            window: 65_535,
            urgent: 0,
            options: Default::default(),
        },
        payload,
    }
}

fn feed(b: &mut Connection, now: Instant, s: Segment, out: &mut BytesMut) {
    b.handle_segment(now, s);
    out.clear();
    while b.poll_transmit(now, out).is_some() {
        out.clear();
    }
    while b.poll_event().is_some() {}
}

/// Sends the whole window in order in 1,448-byte segments and reads it all;
/// returns the bytes read.
fn fill_and_read(b: &mut Connection, now: Instant, data: &[u8], out: &mut BytesMut) -> Vec<u8> {
    let first = SeqNum::new(1001);
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65_536];
    for (i, chunk) in data.chunks(1448).enumerate() {
        let s = seg(b, first + (i * 1448) as u32, Bytes::copy_from_slice(chunk));
        feed(b, now, s, out);
        while let Ok(Some(n)) = b.recv(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    }
    got
}

#[test]
fn adversarial_out_of_order_patterns_stay_under_the_cap() {
    let _one = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let window = Config::default().recv_buffer;
    let data: Vec<u8> = (0..window).map(|i| (i * 7 + 1) as u8).collect();
    let mut out = BytesMut::with_capacity(4096);

    // 1-byte segments on every other byte of the window.
    let (_a, mut b, now) = pair();
    let before = LIVE.load(Ordering::Relaxed);
    let first = SeqNum::new(1001);
    let mut peak = 0i64;
    let mut mem_peak = 0usize;
    for off in (1..window).step_by(2) {
        let s = seg(
            &b,
            first + off as u32,
            Bytes::copy_from_slice(&data[off..off + 1]),
        );
        feed(&mut b, now, s, &mut out);
        peak = peak.max(LIVE.load(Ordering::Relaxed) - before);
        mem_peak = mem_peak.max(b.recv_memory());
    }
    eprintln!(
        "every other byte: heap +{peak} B, recv_memory peak {mem_peak} B, cap {}",
        cap()
    );
    assert!(peak <= cap(), "heap grew {peak} B");
    assert!(mem_peak as i64 <= cap());
    assert_eq!(fill_and_read(&mut b, now, &data, &mut out), data);

    // Thousands of holes: 5,000 1-byte segments at random offsets.
    let (_a, mut b, now) = pair();
    let before = LIVE.load(Ordering::Relaxed);
    let (mut peak, mut mem_peak) = (0i64, 0usize);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..5_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let off = 1 + (x % (window as u64 - 1)) as usize;
        let s = seg(
            &b,
            first + off as u32,
            Bytes::copy_from_slice(&data[off..off + 1]),
        );
        feed(&mut b, now, s, &mut out);
        peak = peak.max(LIVE.load(Ordering::Relaxed) - before);
        mem_peak = mem_peak.max(b.recv_memory());
    }
    eprintln!("5,000 random holes: heap +{peak} B, recv_memory peak {mem_peak} B");
    assert!(peak <= cap(), "heap grew {peak} B");
    assert!(mem_peak as i64 <= cap());
    assert_eq!(fill_and_read(&mut b, now, &data, &mut out), data);

    // The whole window but its first byte, out of order in full segments;
    // then in order with no reads (a slow reader: pinned device buffers).
    let (_a, mut b, now) = pair();
    let before = LIVE.load(Ordering::Relaxed);
    let (mut peak, mut mem_peak) = (0i64, 0usize);
    for (i, chunk) in data[1..].chunks(1448).enumerate() {
        let s = seg(
            &b,
            first + 1 + (i * 1448) as u32,
            Bytes::copy_from_slice(chunk),
        );
        feed(&mut b, now, s, &mut out);
        peak = peak.max(LIVE.load(Ordering::Relaxed) - before);
        mem_peak = mem_peak.max(b.recv_memory());
    }
    eprintln!("a window out of order: heap +{peak} B, recv_memory peak {mem_peak} B");
    assert!(peak <= cap() && mem_peak as i64 <= cap());
    assert_eq!(fill_and_read(&mut b, now, &data, &mut out), data);

    let (_a, mut b, now) = pair();
    let before = LIVE.load(Ordering::Relaxed);
    let (mut peak, mut mem_peak) = (0i64, 0usize);
    let big: Vec<Bytes> = data.chunks(1448).map(Bytes::copy_from_slice).collect();
    let mut seq = first;
    for chunk in big {
        let len = chunk.len() as u32;
        let s = seg(&b, seq, chunk);
        feed(&mut b, now, s, &mut out);
        seq += len;
        peak = peak.max(LIVE.load(Ordering::Relaxed) - before);
        mem_peak = mem_peak.max(b.recv_memory());
    }
    eprintln!("a window in order, unread: heap +{peak} B, recv_memory peak {mem_peak} B");
    assert!(mem_peak as i64 <= cap());
    assert_eq!(b.readable(), window);
}

/// A device that hands every small packet over in a large buffer of its own
/// (64 KiB, as a receive slot sized for super-segments): each unread
/// 1,000-byte payload keeps 64 KiB alive. A slow reader's 64 referenced
/// payloads would hold 4 MiB; charged by their true sizes they take the
/// connection over twice its receive buffer, so they are copied out
/// (collapsed) and the heap, as the counting allocator sees it, stays under
/// the cap; every byte still reads back in order.
#[test]
fn device_buffers_larger_than_their_payloads_stay_under_the_cap() {
    let _one = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    const BUFFER: usize = 64 * 1024;
    let window = Config::default().recv_buffer;
    let data: Vec<u8> = (0..window).map(|i| (i * 13 + 5) as u8).collect();
    let mut out = BytesMut::with_capacity(4096);
    let (_a, mut b, now) = pair();
    let before = LIVE.load(Ordering::Relaxed);
    let (mut peak, mut mem_peak) = (0i64, 0usize);
    let first = SeqNum::new(1001);
    let mut seq = first;
    for chunk in data.chunks(1000) {
        // The payload is a slice of a 64 KiB buffer nobody else holds.
        let mut buf = BytesMut::zeroed(BUFFER);
        buf[..chunk.len()].copy_from_slice(chunk);
        let payload = buf.freeze().slice(..chunk.len());
        let s = seg(&b, seq, payload);
        b.handle_segment_sized(now, s, BUFFER);
        out.clear();
        while b.poll_transmit(now, &mut out).is_some() {
            out.clear();
        }
        while b.poll_event().is_some() {}
        seq += chunk.len() as u32;
        peak = peak.max(LIVE.load(Ordering::Relaxed) - before);
        mem_peak = mem_peak.max(b.recv_memory());
    }
    let st = b.stats();
    eprintln!(
        "64 KiB device buffers, unread: heap +{peak} B, recv_memory peak {mem_peak} B, \
         collapsed {} B, cap {}",
        st.rcv_collapsed,
        cap()
    );
    assert!(peak <= cap(), "heap grew {peak} B");
    assert!(mem_peak as i64 <= cap());
    assert!(st.rcv_collapsed > 0);
    assert_eq!(b.readable(), window);
    let mut got = vec![0u8; window];
    let mut n = 0;
    while n < window {
        match b.recv(&mut got[n..]) {
            Ok(Some(k)) if k > 0 => n += k,
            other => panic!("read stopped at {n}: {other:?}"),
        }
    }
    assert!(got == data, "bytes lost or out of order");
}
