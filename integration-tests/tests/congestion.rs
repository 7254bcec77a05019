//! Congestion control end to end on the in-memory network in virtual time:
//! CUBIC (RFC 9438) with HyStart++ (RFC 9406) filling a bottleneck (issue
//! 12, "Fill a pipe").

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::sim::LinkConfig;
use utcp::{CongestionAlgorithm, SlowStartExit, StackConfig, StackExt};
use utcp_integration_tests::{CLIENT, Pair, SERVER};

/// 100 Mbit/s of IP bytes.
const RATE: u64 = 100_000_000 / 8;
/// One-way propagation delay.
const DELAY: Duration = Duration::from_millis(10);
/// One bandwidth-delay product of the 20 ms RTT: 250 000 bytes.
const BDP: usize = (RATE as usize) * 20 / 1000;

/// Issue 12's pass conditions, unchanged: with pacing (Linux's internal
/// pacing, 2 · cwnd / SRTT in slow start) each round of slow start is
/// spread over the round trip instead of leaving as a line-rate burst, so
/// the queue builds up gradually, a round's minimum RTT rises before the
/// one-BDP queue overflows and slow start ends on HyStart++'s delay signal
/// (RFC 9406 §4.2).
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn fill_a_pipe_100mbit_20ms_one_bdp_queue() {
    let st = fill_a_pipe(Path::pipe(BDP), 12).await;
    // The defaults sufficed: auto-tuning grew both buffers past the BDP.
    assert!(st.send_buffer as usize > BDP, "{st:?}");
}

/// Issue 12, "Long fat pipe" (the bench command runs it, release build):
/// 1 Gbit/s, 25 ms each way, a one-BDP queue, receive and send limits
/// raised to 32 MiB; the same pass conditions, window scale ≥ 8 in the SYN.
#[tokio::test(flavor = "current_thread", start_paused = true)]
#[ignore = "bench only (release build): `bench/run --lfn`"]
async fn long_fat_pipe_1gbit_50ms_one_bdp_queue() {
    let rate = 1_000_000_000 / 8;
    let p = Path {
        rate,
        delay: Duration::from_millis(25),
        queue: rate as usize * 50 / 1000,
        buffers: Some(32 << 20),
    };
    let st = fill_a_pipe(p, 12).await;
    assert!(
        st.rcv_wscale.is_some_and(|s| s >= 8),
        "our SYN's window scale {:?}",
        st.rcv_wscale
    );
}

/// HyStart++ end to end: with a queue deep enough for slow start's
/// bursts (four BDPs), the initial slow start ends on the delay signal.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn hystart_leaves_slow_start_on_the_delay_signal_with_a_deep_queue() {
    let (st, _) = run(Path::pipe(4 * BDP), 2).await;
    assert_eq!(st.slow_start_exit, SlowStartExit::HyStartDelay, "{st:?}");
}

/// A bottleneck: IP bytes per second, one-way delay, a drop-tail queue,
/// and the buffers' auto-tuning limits (`None`: the defaults).
#[derive(Clone, Copy)]
struct Path {
    rate: u64,
    delay: Duration,
    queue: usize,
    buffers: Option<usize>,
}

impl Path {
    /// The 100 Mbit/s, 20 ms RTT link with a queue of `queue` bytes.
    fn pipe(queue: usize) -> Path {
        Path {
            rate: RATE,
            delay: DELAY,
            queue,
            buffers: None,
        }
    }
}

/// Sends without end for `secs` seconds over `path`; returns the sender's
/// stats and the measurements from 2 s on.
async fn run(path: Path, secs: u64) -> (utcp::Stats, Measured) {
    utcp_integration_tests::init_tracing();
    let link = LinkConfig::default()
        .rate(path.rate)
        .delay(path.delay)
        .queue_bytes(path.queue);
    // The defaults (CUBIC, HyStart++, pacing, SACK, timestamps, window
    // scaling, buffer auto-tuning), with raised auto-tuning limits if asked.
    let mut cfg = StackConfig::default();
    if let Some(b) = path.buffers {
        cfg.endpoint.conn.recv_buffer_max = b;
        cfg.endpoint.conn.send_buffer_max = b;
    }
    let p = Pair::with(12, link, link, cfg, &[CLIENT], &[SERVER]);
    // The sim's receive queue holds every packet still on the wire to a
    // host; give it room for the whole path (queue plus propagation), so
    // the bottleneck queue is the only place a packet is dropped.
    let wire = (path.queue + (path.rate as f64 * path.delay.as_secs_f64()) as usize) / 40;
    p.a.set_rx_queue_limit(wire.max(utcp::sim::DEFAULT_RX_QUEUE_LIMIT));
    p.b.set_rx_queue_limit(wire.max(utcp::sim::DEFAULT_RX_QUEUE_LIMIT));
    let listener = p.server.bind(p.server_addr(9)).unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let rx = received.clone();
    let sink = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => rx.fetch_add(n as u64, Ordering::Relaxed),
            };
        }
    });
    let start = tokio::time::Instant::now();
    let stream = p.client.connect(p.server_addr(9)).await.unwrap();
    assert_eq!(stream.stats().congestion, CongestionAlgorithm::Cubic);
    let end = start + Duration::from_secs(secs);
    let source = tokio::spawn(async move {
        let mut stream = stream;
        let chunk = vec![0x5au8; 256 * 1024];
        let send = async { while stream.write_all(&chunk).await.is_ok() {} };
        let _ = tokio::time::timeout_at(end, send).await;
        stream.stats()
    });
    tokio::time::sleep_until(start + Duration::from_secs(2.min(secs))).await;
    let at_2s = received.load(Ordering::Relaxed);
    let drops_2s = p.net.stats(&p.a, &p.b).queue_drops;
    tokio::time::sleep_until(end).await;
    let at_end = received.load(Ordering::Relaxed);
    let link = p.net.stats(&p.a, &p.b);
    let st = source.await.unwrap();
    sink.abort();
    let m = Measured {
        goodput: (at_end - at_2s) as f64 / (secs.saturating_sub(2).max(1)) as f64,
        // A copy the receiving host's queue refused is a drop too.
        drops: link.queue_drops + link.lost + p.b.stats().rx_queue_drops,
        drops_2s,
        sent: link.sent,
    };
    (st, m)
}

/// What the bottleneck saw.
struct Measured {
    /// Payload bytes per second read by the receiver from 2 s on.
    goodput: f64,
    /// Packets the bottleneck dropped (queue full or lost).
    drops: u64,
    /// Of those, by 2 s.
    drops_2s: u64,
    /// Packets offered to the bottleneck.
    sent: u64,
}

/// Issue 12, "Fill a pipe" over `path`, 2 s to `secs` s; returns the
/// sender's stats.
async fn fill_a_pipe(path: Path, secs: u64) -> utcp::Stats {
    let (st, m) = run(path, secs).await;
    let goodput = m.goodput;
    let share = goodput / path.rate as f64;
    let drops = m.drops;
    let drop_share = drops as f64 / m.sent as f64;
    let dropped_bytes = drops * u64::from(st.mss);
    eprintln!(
        "goodput from 2 s {:.2} Mbit/s = {:.1} % of the IP rate; bottleneck {} of {} packets dropped \
         ({:.3} %, {} by 2 s); retransmitted {} bytes for {} dropped; slow start exit {:?}; \
         cwnd {} ssthresh {} srtt {:?} rto count {} fast retransmits {} episodes {} D-SACKs {} undos {} \
         probes {}; pacing rate {} held {}",
        goodput * 8.0 / 1e6,
        share * 100.0,
        drops,
        m.sent,
        drop_share * 100.0,
        m.drops_2s,
        st.bytes_retransmitted,
        dropped_bytes,
        st.slow_start_exit,
        st.cwnd,
        st.ssthresh,
        st.srtt,
        st.rto_count,
        st.fast_retransmits,
        st.recovery_episodes,
        st.dsack_received,
        st.spurious_undos,
        st.tlp_probes,
        st.pacing_rate,
        st.pacing_held,
    );
    assert_eq!(
        st.slow_start_exit,
        SlowStartExit::HyStartDelay,
        "slow start ends on HyStart++'s delay signal, not on a loss"
    );
    assert!(
        share >= 0.90,
        "goodput {:.1} % of the IP rate < 90 %",
        share * 100.0
    );
    assert!(
        drop_share <= 0.01,
        "{:.3} % of the packets dropped",
        drop_share * 100.0
    );
    assert!(
        st.bytes_retransmitted as f64 <= 1.1 * dropped_bytes as f64,
        "retransmitted {} bytes for {dropped_bytes} dropped",
        st.bytes_retransmitted
    );
    st
}
