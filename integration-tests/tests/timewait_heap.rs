//! Heap held per TIME_WAIT record, measured with a counting allocator in a
//! test binary of its own (one test, so nothing running in parallel
//! pollutes the count).
//!
//! 10,000 connections close actively and sit in TIME_WAIT with every handle
//! dropped and the server side CLOSED: each is a record in the endpoint's
//! TIME_WAIT table (its task, connection, buffers and inbox freed). The live
//! heap then, minus the live heap before the round (after a warm-up round
//! through the same life cycle, whose records have expired), divided by
//! 10,000, is what one record holds, the table's growth included. DESIGN
//! wants a few hundred bytes: at most 256. After 2·MSL the heap is back
//! where it was.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::sim::LinkConfig;
use utcp::{StackExt, State};
use utcp_integration_tests::{Pair, wait_until};

/// Bytes currently allocated, by every thread of this binary.
static LIVE: AtomicI64 = AtomicI64::new(0);

struct Counting;

// SAFETY: forwards to the system allocator, only counting sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as i64, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as i64, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as i64, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as i64 - l.size() as i64, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Connections in the measured round.
const N: usize = 10_000;
/// Connections in the warm-up round.
const WARM_UP: usize = 200;
/// The bound on the heap one TIME_WAIT record holds.
const MAX_PER_TIME_WAIT: i64 = 256;
/// TIME_WAIT lasts 2·MSL = 60 s by default; a little more ends every one.
const PAST_2MSL: Duration = Duration::from_secs(61);

/// Opens `N` connections, sends a few bytes on each, closes from the client
/// side first and waits (in virtual time) until every client connection is in
/// TIME_WAIT, every handle is dropped and the server side has closed.
async fn round_into_time_wait(pair: &Pair, port: u16, n: usize) {
    let addr = pair.server_addr(port);
    for i in 0..n {
        let mut s = pair.client.connect(addr).await.expect("connect");
        s.write_all(&[i as u8; 16]).await.expect("write");
        s.shutdown().await.expect("shutdown"); // our FIN first: we end in TIME_WAIT
        let mut back = Vec::new();
        s.read_to_end(&mut back).await.expect("read");
        assert_eq!(back, [i as u8; 16]);
        assert!(
            wait_until(|| s.state() == State::TimeWait, Duration::from_secs(5)).await,
            "connection {i} is in {:?}, not TIME_WAIT",
            s.state()
        );
    }
    let (client, server) = (&pair.client, &pair.server);
    assert!(
        wait_until(
            || client.stats().time_wait == n && server.stats().connections == 0,
            Duration::from_secs(5)
        )
        .await,
        "client {:?}, server {:?}",
        client.stats(),
        server.stats()
    );
}

/// Waits out 2·MSL (virtual time) until no connection is left.
async fn expire(pair: &Pair) {
    tokio::time::sleep(PAST_2MSL).await;
    let client = &pair.client;
    assert!(
        wait_until(|| client.stats().connections == 0, Duration::from_secs(5)).await,
        "TIME_WAIT did not end: {:?}",
        client.stats()
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn one_time_wait_record_holds_at_most_256_bytes_of_heap() {
    let pair = Pair::new(1, LinkConfig::default());
    let listener = pair.server.bind(pair.server_addr(7)).expect("bind");
    let _echo = utcp_integration_tests::spawn_echo(listener);

    // Warm-up: tables, timer wheels and channels grow to size once.
    round_into_time_wait(&pair, 7, WARM_UP).await;
    expire(&pair).await;

    let before = LIVE.load(Ordering::Relaxed);
    round_into_time_wait(&pair, 7, N).await;
    let stats = pair.client.stats();
    assert_eq!(stats.time_wait, N, "{stats:?}");
    assert_eq!(stats.connections, N, "only the records are left: {stats:?}");
    assert_eq!(stats.tasks, 1, "only the device task is left: {stats:?}");
    let held = LIVE.load(Ordering::Relaxed) - before;
    let per = held / N as i64;
    eprintln!("{N} TIME_WAITs hold {held} bytes of heap: {per} bytes each");
    assert!(
        per <= MAX_PER_TIME_WAIT,
        "one TIME_WAIT holds {per} bytes of heap (bound {MAX_PER_TIME_WAIT})"
    );
    assert!(
        per > 0,
        "TIME_WAIT records hold no heap at all: not measured"
    );

    expire(&pair).await;
    let left = LIVE.load(Ordering::Relaxed) - before;
    assert!(
        left <= held / 10,
        "after 2·MSL {left} of the {held} bytes are still held"
    );
}
