//! A SYN flood against a listener, with a counting allocator in a test
//! binary of its own (one test, so nothing running in parallel pollutes the
//! count). The listener issue's show case:
//!
//! 2 s of spoofed SYNs at 100,000 per second (random source addresses and
//! ports, in virtual time) while 1,000 real clients connect (two every 3 ms):
//! every real client connects on its first SYN; cookies are sent; the SYN
//! queue never exceeds its limit; and the heap grows during the flood by at
//! most what a full SYN queue holds (measured first on a stack of its own:
//! `syn_queue` half-open connections) + 1 MiB.

use bytes::BytesMut;
use rand::{Rng, SeedableRng};
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use utcp::StackExt;
use utcp::sim::LinkConfig;
use utcp_integration_tests::{Pair, wait_until};
use utcp_proto::SeqNum;
use utcp_proto::wire::{self, TcpFlags, TcpOptions, TcpRepr};

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

/// The default SYN queue limit (`EndpointConfig::syn_queue`).
const SYN_QUEUE: usize = 4096;
/// Spoofed SYNs per millisecond (100,000 per second).
const PER_MS: usize = 100;
/// The flood's length.
const FLOOD_MS: u64 = 2_000;
/// Real clients, two every 3 ms.
const CLIENTS: usize = 1_000;

fn link() -> LinkConfig {
    LinkConfig::default().delay(Duration::from_millis(2))
}

/// `n` spoofed SYNs to `dst`, from random addresses in 11.0.0.0/8 and random
/// ports, as one IP packet each.
fn spoofed_syns(rng: &mut rand_chacha::ChaCha8Rng, dst: SocketAddr, n: usize) -> Vec<bytes::Bytes> {
    let IpAddr::V4(_) = dst.ip() else {
        unreachable!("an IPv4 server")
    };
    (0..n)
        .map(|_| {
            let src = IpAddr::V4(Ipv4Addr::new(
                11,
                rng.r#gen(),
                rng.r#gen(),
                rng.gen_range(1..255),
            ));
            let repr = TcpRepr {
                src_port: rng.gen_range(1024..=65535),
                dst_port: dst.port(),
                seq: SeqNum::new(rng.r#gen()),
                ack: SeqNum::new(0),
                flags: TcpFlags::SYN,
                window: 65_535,
                urgent: 0,
                options: TcpOptions {
                    mss: Some(1460),
                    window_scale: Some(7),
                    sack_permitted: true,
                    timestamps: Some((rng.r#gen(), 0)),
                    ..TcpOptions::default()
                },
            };
            let mut buf = BytesMut::new();
            wire::emit_ip_tcp(&mut buf, src, dst.ip(), 64, &repr, &[]);
            buf.freeze()
        })
        .collect()
}

/// The heap a full SYN queue holds: `SYN_QUEUE` spoofed SYNs to a fresh
/// stack, measured once they are all half-open, then the stacks dropped.
async fn full_syn_queue_heap() -> i64 {
    let p = Pair::new(160, link());
    let addr = p.server_addr(80);
    let l = p.server.bind(addr).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    // Warm-up: the tables and the runtime's first allocations.
    for pkt in spoofed_syns(&mut rng, addr, 64) {
        p.net.inject(&p.a, &p.b, pkt);
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    let before = LIVE.load(Ordering::Relaxed);
    for pkt in spoofed_syns(&mut rng, addr, SYN_QUEUE - 64) {
        p.net.inject(&p.a, &p.b, pkt);
    }
    assert!(
        wait_until(
            || p.server.stats().listen.half_open == SYN_QUEUE,
            Duration::from_secs(1)
        )
        .await
    );
    let held = LIVE.load(Ordering::Relaxed) - before;
    drop(l);
    held * SYN_QUEUE as i64 / (SYN_QUEUE - 64) as i64
}

#[tokio::test(start_paused = true)]
async fn syn_flood_with_cookies_lets_every_real_client_in_on_its_first_syn() {
    let queue_heap = full_syn_queue_heap().await;
    println!(
        "a full SYN queue ({SYN_QUEUE}) holds {queue_heap} B ({} B per entry)",
        queue_heap / SYN_QUEUE as i64
    );

    let p = Pair::new(161, link());
    let addr = p.server_addr(80);
    let l = p.server.bind(addr).unwrap();
    // The application accepts and closes at once.
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            drop(s);
        }
    });
    // Warm-up: one real connection and a few spoofed SYNs' worth of tables.
    drop(p.client.connect(addr).await.unwrap());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let base = LIVE.load(Ordering::Relaxed);

    let clients = {
        let stack = p.client.clone();
        tokio::spawn(async move {
            let mut tasks = Vec::new();
            for i in 0..CLIENTS {
                let stack = stack.clone();
                tasks.push(tokio::spawn(async move {
                    let s = stack.connect(addr).await?;
                    let retransmitted = s.stats().segments_retransmitted;
                    // Reset, not closed: no TIME_WAIT record on either side
                    // adds to the heap being measured.
                    s.abort();
                    Ok::<_, std::io::Error>(retransmitted)
                }));
                // Two every 3 ms: with the 4 ms RTT no handshake's final ACK
                // (which frees its place in the SYN queue) arrives together
                // with a real SYN, which would take that place before the
                // spoofed ones; so the real SYNs meet a full SYN queue.
                if i % 2 == 1 {
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
            }
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        })
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
    let mut peak = base;
    let mut queue_peak = 0;
    for _ in 0..FLOOD_MS {
        for pkt in spoofed_syns(&mut rng, addr, PER_MS) {
            p.net.inject(&p.a, &p.b, pkt);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        peak = peak.max(LIVE.load(Ordering::Relaxed));
        queue_peak = queue_peak.max(p.server.stats().listen.half_open);
    }
    let results = clients.await.unwrap();
    let failed = results.iter().filter(|r| r.is_err()).count();
    let retransmitted: u64 = results.iter().filter_map(|r| r.as_ref().ok()).sum();
    let s = p.server.stats().listen;
    let growth = peak - base;
    println!(
        "flood: {failed} of {CLIENTS} clients failed, {retransmitted} SYN retransmissions; \
         SYN queue peak {queue_peak} (stat {}); heap growth {growth} B (bound {}); {s:?}",
        s.half_open_peak,
        queue_heap + (1 << 20)
    );
    assert_eq!(failed, 0);
    assert_eq!(retransmitted, 0, "a real client retransmitted its SYN");
    assert!(s.cookies_sent > 0);
    assert!(s.cookies_validated >= CLIENTS as u64 / 2, "{s:?}");
    assert!(s.half_open_peak <= SYN_QUEUE, "{s:?}");
    assert!(
        growth <= queue_heap + (1 << 20),
        "the heap grew {growth} B during the flood; a full SYN queue holds {queue_heap} B"
    );
}
