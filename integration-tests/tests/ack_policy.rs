//! The ACK policy end to end on the in-memory network, in virtual time
//! (issue 13's Show): a request and its response wait for no delayed-ACK
//! timer; write–write–read with Nagle on waits at most the peer's
//! delayed-ACK timer, and not at all with `set_nodelay(true)`; a bulk
//! receiver ACKs about every second full segment at 10 Mbit/s and at most
//! that at 100 Mbit/s, and slow start still doubles per round trip.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use utcp::StackExt;
use utcp::sim::LinkConfig;
use utcp_integration_tests::Pair;

/// One-way delay of the request–response links: RTT 10 ms.
const DELAY: Duration = Duration::from_millis(5);
/// The delayed-ACK timer (the default, as Linux's TCP_DELACK_MIN).
const DELACK: Duration = Duration::from_millis(40);

/// Serves `rounds` exchanges: reads a `req`-byte request, writes a
/// `resp`-byte response.
fn serve(
    listener: utcp::TcpListener,
    rounds: usize,
    req: usize,
    resp: usize,
) -> tokio::task::JoinHandle<utcp::Stats> {
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; req];
        let out = vec![0x42u8; resp];
        for _ in 0..rounds {
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&out).await.unwrap();
        }
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.unwrap();
        s.stats()
    })
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_request_written_in_one_write_and_its_response_wait_for_no_timer() {
    let p = Pair::new(31, LinkConfig::default().delay(DELAY));
    let rounds = 50;
    let server = serve(p.server.bind(p.server_addr(7)).unwrap(), rounds, 100, 100);
    let mut c = p.client.connect(p.server_addr(7)).await.unwrap();
    let mut buf = [0u8; 100];
    let mut worst = Duration::ZERO;
    for _ in 0..rounds {
        let t0 = Instant::now();
        c.write_all(&[7u8; 100]).await.unwrap();
        c.read_exact(&mut buf).await.unwrap();
        worst = worst.max(t0.elapsed());
    }
    let cst = c.stats();
    c.shutdown().await.unwrap();
    let sst = server.await.unwrap();
    eprintln!(
        "worst exchange {worst:?}; client delayed ACKs {} quick {}; server delayed {} quick {}; \
         server segments sent {} for {rounds} responses",
        cst.delayed_acks, cst.quick_acks, sst.delayed_acks, sst.quick_acks, sst.segments_sent
    );
    // One round trip (10 ms) and the sim's 1 ms clock; a delayed-ACK wait
    // would add 40 ms.
    assert!(
        worst < Duration::from_millis(13),
        "worst exchange {worst:?}"
    );
    // Each response carried its request's ACK: the server sent about one
    // segment per response, not an ACK beside it.
    assert!(
        sst.segments_sent <= rounds as u64 + 20,
        "server sent {} segments for {rounds} responses",
        sst.segments_sent
    );
}

/// Write–write–read `rounds` times with Nagle on or off; returns the worst
/// and total exchange times.
async fn write_write_read(nodelay: bool, rounds: usize) -> (Duration, Duration) {
    let p = Pair::new(32, LinkConfig::default().delay(DELAY));
    let server = serve(p.server.bind(p.server_addr(7)).unwrap(), rounds, 100, 100);
    let mut c = p.client.connect(p.server_addr(7)).await.unwrap();
    c.set_nodelay(nodelay).unwrap();
    let mut buf = [0u8; 100];
    let (mut worst, start) = (Duration::ZERO, Instant::now());
    for _ in 0..rounds {
        let t0 = Instant::now();
        c.write_all(&[1u8; 50]).await.unwrap();
        // The first piece leaves before the second is written (writes in
        // one pass of the connection's task would coalesce).
        tokio::time::sleep(Duration::from_millis(1)).await;
        c.write_all(&[2u8; 50]).await.unwrap();
        c.read_exact(&mut buf).await.unwrap();
        worst = worst.max(t0.elapsed());
    }
    let total = start.elapsed();
    c.shutdown().await.unwrap();
    let sst = server.await.unwrap();
    eprintln!(
        "nodelay {nodelay}: worst {worst:?}, total {total:?} for {rounds}; server delayed ACKs {}",
        sst.delayed_acks
    );
    (worst, total)
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn write_write_read_waits_at_most_the_delayed_ack_timer_and_not_at_all_with_nodelay() {
    let rounds = 40;
    let (worst_nagle, total_nagle) = write_write_read(false, rounds).await;
    let (worst_nodelay, total_nodelay) = write_write_read(true, rounds).await;
    // Nagle holds the second write until the first is ACKed: at most the
    // peer's delayed-ACK timer, then a round trip for the rest (as Linux).
    assert!(
        worst_nagle <= DELACK + 2 * 2 * DELAY + Duration::from_millis(5),
        "with Nagle: worst exchange {worst_nagle:?}"
    );
    // Without it, one round trip.
    assert!(
        worst_nodelay < 2 * DELAY + Duration::from_millis(3),
        "with nodelay: worst exchange {worst_nodelay:?}"
    );
    assert!(
        total_nodelay <= total_nagle,
        "{total_nodelay:?} vs {total_nagle:?}"
    );
}

/// Bulk transfer of `bytes` over a `rate` (bytes/s) link with 10 ms each
/// way and a queue that holds the whole transfer (no loss: every ACK
/// counted is one the policy chose, none answers out-of-order data); returns (the receiver's ACKs per full segment,
/// the time from the first data to cwnd ≥ BDP, the RTT, the receiver's
/// stats).
async fn bulk(rate: u64, bytes: usize) -> (f64, Option<Duration>, Duration, utcp::Stats) {
    let delay = Duration::from_millis(10);
    let rtt = 2 * delay;
    let bdp = (rate as f64 * rtt.as_secs_f64()) as u32;
    let link = LinkConfig::default()
        .rate(rate)
        .delay(delay)
        .queue_bytes(bytes);
    let p = Pair::with(
        33,
        link,
        link,
        utcp::StackConfig::default(),
        &[utcp_integration_tests::CLIENT],
        &[utcp_integration_tests::SERVER],
    );
    let wire = (bytes + bdp as usize) / 40;
    p.a.set_rx_queue_limit(wire.max(utcp::sim::DEFAULT_RX_QUEUE_LIMIT));
    p.b.set_rx_queue_limit(wire.max(utcp::sim::DEFAULT_RX_QUEUE_LIMIT));
    let listener = p.server.bind(p.server_addr(9)).unwrap();
    let sink = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0usize;
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        (got, s.stats())
    });
    let mut c = p.client.connect(p.server_addr(9)).await.unwrap();
    let chunk = vec![0x5au8; 16 * 1024];
    let start = Instant::now();
    let mut reached = None;
    let mut sent = 0;
    while sent < bytes {
        c.write_all(&chunk).await.unwrap();
        sent += chunk.len();
        if reached.is_none() && c.stats().cwnd >= bdp {
            reached = Some(start.elapsed());
        }
    }
    c.shutdown().await.unwrap();
    let link = p.net.stats(&p.a, &p.b);
    assert_eq!(
        link.queue_drops + link.lost,
        0,
        "a loss-free path: {link:?}"
    );
    let (got, rst) = sink.await.unwrap();
    assert_eq!(got, sent);
    let full = got as f64 / f64::from(rst.mss);
    // The SYN-ACK and the FIN's ACK are not data ACKs.
    let acks = rst.segments_sent.saturating_sub(2) as f64;
    (acks / full, reached, rtt, rst)
}

/// ⌈log2(BDP / IW10)⌉ + 2 round trips.
fn slow_start_bound(rate: u64, rtt: Duration, mss: u32) -> Duration {
    let bdp = rate as f64 * rtt.as_secs_f64();
    let rounds = (bdp / f64::from(10 * mss)).log2().ceil().max(0.0) as u32 + 2;
    rtt * rounds
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn bulk_at_10_mbit_acks_every_second_full_segment() {
    let rate = 10_000_000 / 8;
    let (per_seg, reached, rtt, rst) = bulk(rate, 2 << 20).await;
    eprintln!(
        "10 Mbit/s: {per_seg:.3} ACKs per full segment; cwnd >= BDP after {reached:?}; \
         delayed ACKs {} quick ACKs {}",
        rst.delayed_acks, rst.quick_acks
    );
    assert!(
        (0.45..=0.55).contains(&per_seg),
        "{per_seg:.3} ACKs per full segment"
    );
    let bound = slow_start_bound(rate, rtt, rst.mss);
    let r = reached.expect("cwnd reached the BDP");
    assert!(r <= bound, "cwnd >= BDP after {r:?}, bound {bound:?}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn bulk_at_100_mbit_acks_at_most_every_second_segment_and_every_batch() {
    let rate = 100_000_000 / 8;
    let (per_seg, reached, rtt, rst) = bulk(rate, 16 << 20).await;
    eprintln!(
        "100 Mbit/s: {per_seg:.3} ACKs per full segment; cwnd >= BDP after {reached:?}; \
         delayed ACKs {} quick ACKs {}",
        rst.delayed_acks, rst.quick_acks
    );
    assert!(per_seg <= 0.5, "{per_seg:.3} ACKs per full segment");
    // Every batch is ACKed when it leaves two segments or more: the
    // delayed-ACK timer (40 ms, two round trips here) almost never fires.
    assert!(rst.delayed_acks <= 5, "{} delayed ACKs", rst.delayed_acks);
    let bound = slow_start_bound(rate, rtt, rst.mss);
    let r = reached.expect("cwnd reached the BDP");
    assert!(r <= bound, "cwnd >= BDP after {r:?}, bound {bound:?}");
}
