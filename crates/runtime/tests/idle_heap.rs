//! An idle connection holds almost nothing (DESIGN): once a connection went
//! a second without work, its task gives back the room its queues kept as
//! they drained (`Connection::release_idle_memory`). A counting allocator
//! sees the live heap of 200 connection pairs that exchanged a request and
//! a reply, just after the exchange and after two idle seconds (virtual
//! time); without the release only the inbox's spill queues go.
//!
//! A binary of its own: its counting allocator must see no other test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::poll_fn;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use utcp_runtime::proto::State;
use utcp_runtime::sim::{LinkConfig, SimNetwork};
use utcp_runtime::{ConnRef, Stack, StackConfig};

static LIVE: AtomicI64 = AtomicI64::new(0);

struct Counting;

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter is a relaxed atomic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const PAIRS: usize = 200;

async fn write_all(c: &ConnRef, mut data: &[u8]) {
    while !data.is_empty() {
        let n = poll_fn(|cx| c.poll_write(cx, data)).await.unwrap();
        data = &data[n..];
    }
}

async fn read_exact(c: &ConnRef, n: usize) {
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        let mut rb = tokio::io::ReadBuf::new(&mut buf[got..]);
        poll_fn(|cx| c.poll_read(cx, &mut rb)).await.unwrap();
        assert!(!rb.filled().is_empty(), "early end of stream");
        got += rb.filled().len();
    }
}

#[tokio::test(start_paused = true)]
async fn idle_connections_give_their_queue_room_back() {
    let (ia, ib): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
    let net = SimNetwork::new(3);
    let a = net.add_host("a", &[ia]);
    let b = net.add_host("b", &[ib]);
    net.link(
        &a,
        &b,
        LinkConfig::default().delay(Duration::from_millis(1)),
    );
    let sa = Stack::new(a, StackConfig::default());
    let sb = Stack::new(b, StackConfig::default());
    let l = sb
        .listen_with_backlog(SocketAddr::new(ib, 80), PAIRS)
        .unwrap();
    let mut pairs = Vec::with_capacity(PAIRS);
    for _ in 0..PAIRS {
        let c = sa.connect_start(SocketAddr::new(ib, 80)).unwrap();
        poll_fn(|cx| c.poll_connected(cx)).await.unwrap();
        let s = poll_fn(|cx| l.poll_accept(cx)).await.unwrap();
        // A request and its reply: each side's queues saw traffic.
        write_all(&c, &[7u8; 300]).await;
        read_exact(&s, 300).await;
        write_all(&s, &[9u8; 3000]).await;
        read_exact(&c, 3000).await;
        pairs.push((c, s));
    }
    // Delayed ACKs and the last wakes settle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let busy = LIVE.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = LIVE.load(Ordering::Relaxed);
    let per_pair = (busy - idle) as f64 / PAIRS as f64;
    eprintln!("{PAIRS} idle pairs gave back {per_pair:.0} B each");
    // The inbox's spill queues alone give back about 340 B a pair here; the
    // queues' room (the in-flight record, events, segment lists) about 700
    // more.
    assert!(
        per_pair >= 700.0,
        "idle pairs gave back only {per_pair:.0} B each"
    );
    for (c, s) in &pairs {
        assert_eq!(
            (c.state(), s.state()),
            (State::Established, State::Established)
        );
    }
    // Nothing was lost: each pair still talks, both ways.
    for (c, s) in &pairs[..10] {
        write_all(c, b"again").await;
        read_exact(s, 5).await;
        write_all(s, b"reply").await;
        read_exact(c, 5).await;
    }
}
