//! A fixed run of data segments for callgrind (`bench/callgrind-check`):
//! warms a connected pair up, then drives `SEGMENTS` (default 10,000)
//! segments through it. Callgrind counts the instructions inside
//! `Pair::receive_segment` (a data segment received, read, its ACK emitted)
//! and inside `Pair::send_segment` + `Pair::receive_ack` (a segment queued
//! and sent, and the ACK that comes back for it); divided by
//! the segment count they are the instructions per received and per sent
//! segment.
//!
//! Without valgrind it just runs (and prints the count), so `cargo bench`
//! runs it too.

mod pair;

use pair::Pair;

fn main() {
    let n: usize = std::env::var("SEGMENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let mut p = Pair::new(64);
    let mut acks = 0usize;
    for _ in 0..n {
        acks += usize::from(p.step());
    }
    let st = p.b.stats();
    assert!(
        st.bytes_received >= (n * st.mss as usize) as u64,
        "every segment arrived"
    );
    println!("segment_count: {n} segments, {acks} ACKs");
}
