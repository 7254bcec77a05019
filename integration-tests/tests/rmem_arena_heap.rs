//! Device buffers kept alive, really bounded (issue 15, point 4): a slow
//! reader whose unread segments each sit in a different read-arena chunk,
//! because a fast connection on the same device fills the chunks in
//! between. Each unread segment keeps its whole 128 KiB chunk alive, while
//! by its own bytes (its share of the chunk) the slow connection holds
//! under 64 KiB.
//!
//! The server's device copies every received packet into an `RxArena` (as
//! a TUN device's reads land in its arena), so the stack sees the chunks
//! alive through the device's gauge (`Device::rx_memory`). With the default
//! thresholds nothing limits the pattern: the gauge and a counting
//! allocator both see some 60 chunks alive. With the pressure threshold at
//! 1 MiB the stack's pressure wakes the connections and each copies the
//! device buffers it references out of their chunks (collapse): the chunks
//! alive and the heap stay near the threshold, the collapse is counted,
//! and both applications still receive every byte in order.
//!
//! A binary of its own: its counting allocator must see no other test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::sim::{LinkConfig, SimDevice, SimNetwork};
use utcp::{Stack, StackConfig, StackExt};
use utcp_runtime::device::arena::{RxArena, RxMemory};
use utcp_runtime::device::{Device, Medium, RxPacket, TxPacket};

/// Bytes currently allocated, by every thread of this binary, and the most
/// at once since the last reset.
static LIVE: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);

struct Counting;

fn grew(n: i64) {
    let now = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: forwards to the system allocator, only counting sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        grew(l.size() as i64);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        grew(l.size() as i64);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as i64, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        grew(n as i64 - l.size() as i64);
        // SAFETY: as above.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The read-arena chunk (a TUN device's without offloads).
const CHUNK: usize = 128 * 1024;
/// The slow connection's writes: one segment each, 20 ms apart.
const SLOW_WRITES: usize = 60;
const SLOW_SIZE: usize = 1000;

/// A sim device whose received packets are copied into a measured read
/// arena, as a TUN device's reads land in its arena.
struct ArenaDevice {
    inner: SimDevice,
    rx: Mutex<(RxArena, Vec<RxPacket>)>,
    gauge: RxMemory,
}

impl ArenaDevice {
    fn new(inner: SimDevice) -> ArenaDevice {
        let gauge = RxMemory::new();
        let arena = RxArena::new(CHUNK, inner.mtu(), gauge.clone());
        ArenaDevice {
            inner,
            rx: Mutex::new((arena, Vec::new())),
            gauge,
        }
    }
}

impl Device for ArenaDevice {
    fn medium(&self) -> Medium {
        Medium::Ip
    }

    fn mtu(&self) -> usize {
        self.inner.mtu()
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        out: &mut Vec<RxPacket>,
        max: usize,
    ) -> Poll<io::Result<usize>> {
        let mut g = self.rx.lock().unwrap_or_else(|e| e.into_inner());
        let (arena, scratch) = &mut *g;
        scratch.clear();
        let r = self.inner.poll_recv(cx, scratch, max);
        for p in scratch.drain(..) {
            arena.push(&p.data, p.meta, out);
        }
        arena.flush(out);
        r
    }

    fn send(&self, packets: &[TxPacket<'_>]) -> io::Result<()> {
        self.inner.send(packets)
    }

    fn close(&self) {
        self.inner.close();
    }

    fn rx_memory(&self) -> Option<RxMemory> {
        Some(self.gauge.clone())
    }
}

/// The fast connection's byte at `offset`.
fn fast_byte(offset: u64) -> u8 {
    (offset.wrapping_mul(7) + 13) as u8
}

#[derive(Debug)]
struct Outcome {
    /// Read-arena bytes alive at most (the device's gauge).
    device_peak: usize,
    /// Heap growth at most during the transfer.
    heap_peak: i64,
    /// The slow connection's receive memory at most, as it counts it.
    slow_memory_peak: usize,
    /// Bytes collapsed, stack-wide.
    collapsed: u64,
    /// The stack's receive memory at most (its thresholds' view).
    stack_peak: usize,
    /// The fast connection's bytes.
    fast_bytes: u64,
}

async fn run(pressure: usize) -> Outcome {
    let net = SimNetwork::new(15);
    let client_ip: IpAddr = "10.0.0.1".parse().unwrap();
    let server_ip: IpAddr = "10.0.0.2".parse().unwrap();
    let a = net.add_host("client", &[client_ip]);
    let b = net.add_host("server", &[server_ip]);
    // 100 Mbit/s, 1 ms each way: the fast connection fills more than a
    // chunk between two slow writes.
    let link = LinkConfig::default()
        .rate(12_500_000)
        .delay(Duration::from_millis(1));
    net.link(&a, &b, link);
    let mut cfg = StackConfig {
        rcv_memory_pressure: pressure,
        rcv_memory_limit: 64 << 20,
        seed: Some(15),
        ..StackConfig::default()
    };
    // Fixed buffers (no auto-tuning), so the heap holds nothing else that
    // grows with the transfer.
    let conn = &mut cfg.endpoint.conn;
    conn.send_buffer_max = conn.send_buffer;
    conn.recv_buffer_max = conn.recv_buffer;
    let client = Stack::new(a, cfg.clone());
    let dev = ArenaDevice::new(b);
    let gauge = dev.gauge.clone();
    let server = Stack::with_addrs(dev, vec![server_ip], cfg);
    let addr = std::net::SocketAddr::new(server_ip, 9);
    let l = server.bind(addr).unwrap();

    let mut fast_c = client.connect(addr).await.unwrap();
    let (mut fast_s, _) = l.accept().await.unwrap();
    let mut slow_c = client.connect(addr).await.unwrap();
    slow_c.set_nodelay(true).unwrap();
    let (mut slow_s, _) = l.accept().await.unwrap();

    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);

    let stop = Arc::new(AtomicBool::new(false));
    let stop_w = stop.clone();
    let fast_writer = tokio::spawn(async move {
        let mut off = 0u64;
        let mut chunk = vec![0u8; 16 * 1024];
        while !stop_w.load(Ordering::Relaxed) {
            for (i, b) in chunk.iter_mut().enumerate() {
                *b = fast_byte(off + i as u64);
            }
            fast_c.write_all(&chunk).await.unwrap();
            off += chunk.len() as u64;
        }
        fast_c.shutdown().await.unwrap();
        off
    });
    let fast_reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut off = 0u64;
        loop {
            let n = fast_s.read(&mut buf).await.unwrap();
            if n == 0 {
                break off;
            }
            for (i, b) in buf[..n].iter().enumerate() {
                assert_eq!(
                    *b,
                    fast_byte(off + i as u64),
                    "fast byte {}",
                    off + i as u64
                );
            }
            off += n as u64;
        }
    });
    let slow_data = utcp_integration_tests::pattern(SLOW_WRITES * SLOW_SIZE, 3);
    let sent = slow_data.clone();
    let slow_writer = tokio::spawn(async move {
        for piece in sent.chunks(SLOW_SIZE) {
            slow_c.write_all(piece).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        slow_c.shutdown().await.unwrap();
        slow_c
    });

    // Sample while the slow connection's segments pile up unread (every
    // loop bounded: the writes take 1.2 s of virtual time).
    let mut slow_memory_peak = 0usize;
    for _ in 0..2_000 {
        if slow_writer.is_finished() {
            break;
        }
        slow_memory_peak = slow_memory_peak.max(slow_s.stats().rcv_memory);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(slow_writer.is_finished(), "the slow writes did not end");
    let _slow_c = slow_writer.await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let heap_peak = PEAK.load(Ordering::Relaxed) - base;
    stop.store(true, Ordering::Relaxed);

    // Every byte of both, in order.
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), slow_s.read_to_end(&mut got))
        .await
        .expect("the slow connection's bytes within 30 s")
        .unwrap();
    assert!(got == slow_data, "the slow connection's bytes differ");
    let written = fast_writer.await.unwrap();
    let read = tokio::time::timeout(Duration::from_secs(30), fast_reader)
        .await
        .expect("the fast connection's bytes within 30 s")
        .unwrap();
    assert_eq!(read, written);
    let st = server.stats();
    Outcome {
        device_peak: gauge.peak(),
        heap_peak,
        slow_memory_peak,
        collapsed: st.rcv_collapsed,
        stack_peak: st.rcv_memory_peak,
        fast_bytes: read,
    }
}

#[tokio::test(start_paused = true)]
async fn arenas_kept_alive_by_a_slow_reader_are_counted_and_bounded() {
    // Default thresholds (96 MiB): nothing limits the pattern.
    let free = run(StackConfig::default().rcv_memory_pressure).await;
    println!("default thresholds: {free:?}");
    // The pattern works: most slow segments keep a chunk of their own
    // alive, which the gauge and the allocator both see, while the slow
    // connection counts its bytes' shares only.
    assert!(free.device_peak >= 40 * CHUNK, "{free:?}");
    assert!(free.heap_peak >= 40 * CHUNK as i64, "{free:?}");
    assert!(free.slow_memory_peak <= 128 << 10, "{free:?}");
    // Below the thresholds a reader that keeps up (and one under its cap)
    // never copies: the zero-copy path stays.
    assert_eq!(free.collapsed, 0, "{free:?}");
    assert!(free.stack_peak >= free.device_peak / 2, "{free:?}");
    assert!(free.fast_bytes > (CHUNK * SLOW_WRITES) as u64, "{free:?}");

    // Pressure at 1 MiB: the stack sees the chunks alive, the connections
    // collapse, and the chunks alive and the heap stay near the threshold.
    let pressure = 1 << 20;
    let bounded = run(pressure).await;
    println!("pressure at 1 MiB: {bounded:?}");
    assert!(bounded.collapsed > 0, "{bounded:?}");
    assert!(bounded.device_peak <= pressure + 4 * CHUNK, "{bounded:?}");
    // The rest of the heap: both sides' fixed buffers, the link's queue,
    // the inboxes.
    assert!(
        bounded.heap_peak <= (pressure + 4 * CHUNK + (2 << 20)) as i64,
        "{bounded:?}"
    );
    assert!(
        bounded.heap_peak < free.heap_peak / 2,
        "{bounded:?} vs {free:?}"
    );
}
