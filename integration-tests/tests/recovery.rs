//! Loss recovery end to end on the in-memory network in virtual time (issue
//! 12's "Show" tests): random loss both ways (RACK-TLP, PRR, CUBIC's
//! reduction per episode), reordering (RACK's reordering window and the
//! undo of spurious episodes), and a receiver that stops reading.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::sim::LinkConfig;
use utcp::{CongestionCause, CongestionEvent, StackConfig, StackExt, Stats};
use utcp_integration_tests::{CLIENT, Pair, SERVER};

/// 100 Mbit/s of IP bytes.
const RATE: u64 = 100_000_000 / 8;
/// One-way delay.
const DELAY: Duration = Duration::from_millis(10);
/// One bandwidth-delay product of the 20 ms RTT.
const BDP: usize = (RATE as usize) * 20 / 1000;

/// The byte at offset `i` of the stream (251 is prime: an offset error of
/// any size up to it shows).
fn byte_at(i: u64) -> u8 {
    (i % 251) as u8
}

/// What a run measured.
struct Run {
    /// The sender's stats and congestion-window changes at the end.
    stats: Stats,
    events: Vec<CongestionEvent>,
    /// Payload bytes the receiver read from `measure_from` to the end, and
    /// over how many seconds.
    goodput: f64,
    /// Every byte read was the right one, and how many were read.
    exact: bool,
    read: u64,
    /// The data direction's link counters.
    data_link: utcp::sim::LinkStats,
    /// When the run started (virtual time).
    start: tokio::time::Instant,
}

/// Streams `byte_at` from the client to the server for `secs` seconds over
/// `data` (client → server) and `acks` (server → client).
async fn stream(
    seed: u64,
    data: LinkConfig,
    acks: LinkConfig,
    secs: u64,
    measure_from: u64,
) -> Run {
    utcp_integration_tests::init_tracing();
    let p = Pair::with(
        seed,
        data,
        acks,
        StackConfig::default(),
        &[CLIENT],
        &[SERVER],
    );
    let listener = p.server.bind(p.server_addr(9)).unwrap();
    let read = Arc::new(AtomicU64::new(0));
    let exact = Arc::new(AtomicBool::new(true));
    let (r, e) = (read.clone(), exact.clone());
    let sink = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        let mut at = 0u64;
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if buf[..n]
                        .iter()
                        .enumerate()
                        .any(|(k, &b)| b != byte_at(at + k as u64))
                    {
                        e.store(false, Ordering::Relaxed);
                    }
                    at += n as u64;
                    r.store(at, Ordering::Relaxed);
                }
            }
        }
    });
    let start = tokio::time::Instant::now();
    let stream = p.client.connect(p.server_addr(9)).await.unwrap();
    let end = start + Duration::from_secs(secs);
    let source = tokio::spawn(async move {
        let mut stream = stream;
        let mut off = 0u64;
        let mut chunk = vec![0u8; 64 * 1024];
        let send = async {
            loop {
                for (k, b) in chunk.iter_mut().enumerate() {
                    *b = byte_at(off + k as u64);
                }
                if stream.write_all(&chunk).await.is_err() {
                    break;
                }
                off += chunk.len() as u64;
            }
        };
        let _ = tokio::time::timeout_at(end, send).await;
        (stream.stats(), stream.congestion_events())
    });
    tokio::time::sleep_until(start + Duration::from_secs(measure_from)).await;
    let at_from = read.load(Ordering::Relaxed);
    tokio::time::sleep_until(end).await;
    let at_end = read.load(Ordering::Relaxed);
    let (stats, events) = source.await.unwrap();
    let data_link = p.net.stats(&p.a, &p.b);
    sink.abort();
    Run {
        stats,
        events,
        goodput: (at_end - at_from) as f64 / (secs - measure_from) as f64,
        exact: exact.load(Ordering::Relaxed),
        read: at_end,
        data_link,
        start,
    }
}

/// Issue 12, "Random loss": 1 % on the data direction and 1 % on the ACK
/// direction of the 100 Mbit/s, 20 ms link, 60 s.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn random_loss_1_percent_each_way_60s() {
    let link = LinkConfig::default()
        .rate(RATE)
        .delay(DELAY)
        .queue_bytes(BDP)
        .loss(0.01);
    let r = stream(21, link, link, 60, 2).await;
    let s = &r.stats;
    let mss = f64::from(s.mss);
    // Mathis et al.: 1.22·MSS / (RTT·√p).
    let model = 1.22 * mss / (0.020 * 0.01f64.sqrt());
    let rack: Vec<_> = r
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.cause,
                CongestionCause::Rack | CongestionCause::DuplicateAcks
            )
        })
        .collect();
    let dropped = r.data_link.lost + r.data_link.queue_drops;
    eprintln!(
        "goodput {:.0} B/s ({:.2}x the model's {:.0}); read {} bytes; {} episodes, {} RTOs, {} TLPs, \
         {} undos; link dropped {} of {} data packets; retransmitted {} bytes; cwnd {} ssthresh {}",
        r.goodput,
        r.goodput / model,
        model,
        r.read,
        s.recovery_episodes,
        s.rto_count,
        s.tlp_probes,
        s.spurious_undos,
        dropped,
        r.data_link.sent,
        s.bytes_retransmitted,
        s.cwnd,
        s.ssthresh
    );
    assert!(r.exact, "a byte read differs from the one sent");
    // The delivery rate of the last round trip tells the same story.
    let rate = s.delivery_rate as f64;
    assert!(
        rate >= 0.2 * r.goodput && rate <= 5.0 * r.goodput,
        "delivery rate {rate} B/s against a goodput of {:.0}",
        r.goodput
    );
    assert!(
        r.goodput >= 0.5 * model && r.goodput <= 2.0 * model,
        "goodput {:.0} B/s outside 0.5–2x of {model:.0}",
        r.goodput
    );
    // Once per episode, ssthresh = max(β·FlightSize, 2·SMSS), β = 0.7
    // (CUBIC, RFC 9438 §4.6; FlightSize counted up to cwnd, RFC 5681 §3.2).
    assert!(!rack.is_empty(), "no loss episode in 60 s of 1 % loss");
    assert!(
        rack.len() as u64 <= dropped,
        "{} episodes for {dropped} drops",
        rack.len()
    );
    for e in &rack {
        let flight = f64::from(e.flight.min(e.cwnd_before));
        let want = ((flight * 0.7) as u32).max(2 * e.smss);
        assert!(
            e.ssthresh.abs_diff(want) <= 1,
            "ssthresh {} after an episode with flight {} and cwnd {}: want {want}",
            e.ssthresh,
            e.flight,
            e.cwnd_before
        );
    }
    assert!(
        s.rto_count * 20 <= r.data_link.lost.max(1),
        "{} RTOs for {} data packets dropped (≤ 5 %)",
        s.rto_count,
        r.data_link.lost
    );
    let dropped_bytes = dropped * u64::from(s.mss);
    assert!(
        s.bytes_retransmitted * 10 <= dropped_bytes * 12,
        "retransmitted {} bytes for {dropped_bytes} dropped (≤ 1.2x)",
        s.bytes_retransmitted
    );
}

/// Issue 12, "Reordering": 2 % of the data packets held back `extra` on the
/// 100 Mbit/s link for 30 s, no random loss. Returns the spurious episodes
/// (the undo events) and when they happened.
async fn reordering(extra: Duration) -> (Run, Vec<Duration>) {
    let data = LinkConfig::default()
        .rate(RATE)
        .delay(DELAY)
        .queue_bytes(BDP)
        .reorder(0.02, extra);
    let acks = LinkConfig::default()
        .rate(RATE)
        .delay(DELAY)
        .queue_bytes(BDP);
    let r = stream(22, data, acks, 30, 2).await;
    let undos: Vec<Duration> = r
        .events
        .iter()
        .filter(|e| e.cause == CongestionCause::Undo)
        .map(|e| {
            Duration::from_micros(e.at.as_micros())
                - Duration::from_micros(r.events[0].at.as_micros())
        })
        .collect();
    let mut causes = std::collections::BTreeMap::new();
    for e in &r.events {
        *causes.entry(format!("{:?}", e.cause)).or_insert(0) += 1;
    }
    eprintln!(
        "causes {causes:?}; first events {:?}",
        &r.events[..r.events.len().min(6)]
    );
    eprintln!(
        "reordering {extra:?}: {} packets held back, {} episodes, {} undos at {undos:?}, {} D-SACKs, \
         reordering seen {}, reo_wnd x{}, goodput {:.1} Mbit/s",
        r.data_link.reordered,
        r.stats.recovery_episodes,
        r.stats.spurious_undos,
        r.stats.dsack_received,
        r.stats.reordering_seen,
        r.stats.reo_wnd_mult,
        r.goodput * 8.0 / 1e6
    );
    assert!(r.exact, "a byte read differs from the one sent");
    assert!(
        r.data_link.reordered > 100,
        "the link reordered too little to judge"
    );
    assert!(r.stats.reordering_seen, "RACK never saw the reordering");
    let _ = r.start;
    (r, undos)
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn reordering_by_3ms_costs_at_most_one_spurious_episode() {
    let (r, undos) = reordering(Duration::from_millis(3)).await;
    // A spurious episode shows as D-SACKs of its retransmissions and an
    // undo; at most one, and it was undone.
    assert!(undos.len() <= 1, "{} spurious episodes", undos.len());
    assert!(
        r.stats.dsack_received <= 8,
        "{} D-SACKs: retransmissions kept being spurious",
        r.stats.dsack_received
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn reordering_by_10ms_costs_at_most_three_spurious_episodes_early() {
    let (r, undos) = reordering(Duration::from_millis(10)).await;
    assert!(undos.len() <= 3, "{} spurious episodes", undos.len());
    assert!(
        undos.iter().all(|&t| t < Duration::from_secs(10)),
        "a spurious episode in the last 20 s: {undos:?}"
    );
    let _ = r;
}

/// Issue 12, "Zero window": the receiver stops reading for 5 s. The sender
/// probes the zero window and never aborts; once reading resumes, data
/// flows again within about one RTT.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_receiver_that_stops_reading_for_5s() {
    let link = LinkConfig::default()
        .rate(RATE)
        .delay(DELAY)
        .queue_bytes(BDP);
    let p = Pair::new(23, link);
    let listener = p.server.bind(p.server_addr(9)).unwrap();
    let client = p.client.clone();
    let addr = p.server_addr(9);
    let source = tokio::spawn(async move {
        let mut s = client.connect(addr).await.unwrap();
        let chunk = vec![7u8; 64 * 1024];
        let send = async { while s.write_all(&chunk).await.is_ok() {} };
        let _ = tokio::time::timeout(Duration::from_secs(8), send).await;
        s.stats()
    });
    let (mut s, _) = listener.accept().await.unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    // Read for 1 s, then stop for 5 s.
    let t0 = tokio::time::Instant::now();
    let mut read = 0u64;
    while t0.elapsed() < Duration::from_secs(1) {
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await {
            read += n as u64;
        }
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(s.stats().recv_window, 0, "the window closed");
    let probes_seen = s.stats().segments_received;
    // Resume: the first read drains what is buffered; new data must follow
    // within an RTT or two of the window update.
    let resumed = tokio::time::Instant::now();
    let mut got = 0usize;
    let buffered = (s.stats().bytes_received - read) as usize;
    while got <= buffered {
        let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
            .await
            .expect("data flows again")
            .unwrap();
        assert!(n > 0);
        got += n;
    }
    let took = resumed.elapsed();
    eprintln!("after the stall: {got} bytes in {took:?}; {probes_seen} segments received by then");
    assert!(
        took <= Duration::from_millis(60),
        "new data took {took:?} after reading resumed (RTT 20 ms)"
    );
    let st = source.await.unwrap();
    assert_eq!(st.rto_count, 0, "a zero window is not a loss: {st:?}");
    assert!(
        st.rwnd_limited_us >= 4_500_000,
        "limited by the receive window for {} µs of the 5 s stall",
        st.rwnd_limited_us
    );
}

/// Issue 12, "Zero window", second half: the window update that reading
/// sends is lost. The sender's persist timer (backed off to a few seconds by
/// the stall, RFC 9293 §3.8.6.1) probes again, the answer carries the open
/// window, and data flows within that interval.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_lost_window_update_is_recovered_by_the_persist_timer() {
    use std::sync::atomic::AtomicUsize;
    use utcp::sim::FilterAction;
    let link = LinkConfig::default()
        .rate(RATE)
        .delay(DELAY)
        .queue_bytes(BDP);
    let p = Pair::new(24, link);
    let listener = p.server.bind(p.server_addr(9)).unwrap();
    let client = p.client.clone();
    let addr = p.server_addr(9);
    let source = tokio::spawn(async move {
        let mut s = client.connect(addr).await.unwrap();
        let chunk = vec![7u8; 64 * 1024];
        let send = async { while s.write_all(&chunk).await.is_ok() {} };
        let _ = tokio::time::timeout(Duration::from_secs(15), send).await;
        s.stats()
    });
    let (mut s, _) = listener.accept().await.unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut read = 0u64;
    let t0 = tokio::time::Instant::now();
    while t0.elapsed() < Duration::from_secs(1) {
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await {
            read += n as u64;
        }
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(s.stats().recv_window, 0, "the window closed");
    // Drop every segment from the server that opens the window, until
    // the persist timer's next probe would be answered: the first one only.
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    p.net.set_filter(&p.b, &p.a, move |pkt| {
        if d.load(Ordering::Relaxed) == 0
            && let Ok(seg) = utcp_proto::wire::parse_ip_tcp(pkt.data, false)
            && seg.tcp.window > 0
        {
            d.fetch_add(1, Ordering::Relaxed);
            return FilterAction::Drop;
        }
        FilterAction::Pass
    });
    let buffered = (s.stats().bytes_received - read) as usize;
    let resumed = tokio::time::Instant::now();
    let mut got = 0usize;
    while got <= buffered {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("data flows again")
            .unwrap();
        assert!(n > 0);
        got += n;
    }
    let took = resumed.elapsed();
    eprintln!("window update lost: new data {took:?} after reading resumed");
    assert_eq!(dropped.load(Ordering::Relaxed), 1, "the update was dropped");
    // The stall backed the persist timer off to 3.6 s (0.22 s doubled
    // four times); the next probe is due within it.
    assert!(
        took > Duration::from_millis(60) && took <= Duration::from_secs(4),
        "new data took {took:?}"
    );
    let st = source.await.unwrap();
    assert_eq!(st.rto_count, 0, "{st:?}");
}

/// RFC 2883 §4: a D-SACK block for every duplicate received, however the
/// duplicates batch. Every data packet is delivered twice on an unlimited
/// link, so windows of hundreds of segments and their copies arrive at one
/// instant. The inbox holds the receive window in segments (DESIGN
/// "Receive"; it was sized to a 64 KiB window, and dropped segments of an
/// auto-tuned one), the driver drains it whole, and proto owes an immediate
/// ACK with its blocks to every duplicate of the pass (it kept 64, and the
/// D-SACK blocks of later duplicates were lost).
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn every_duplicate_gets_its_dsack_block_in_large_batches() {
    use utcp::sim::FilterAction;
    let data_link = LinkConfig::default()
        .delay(Duration::from_millis(5))
        .duplicate(1.0);
    let ack_link = LinkConfig::default().delay(Duration::from_millis(5));
    let p = Pair::with(
        31,
        data_link,
        ack_link,
        StackConfig::default(),
        &[CLIENT],
        &[SERVER],
    );
    let listener = p.server.bind(p.server_addr(9)).unwrap();
    let dsacks = Arc::new(AtomicU64::new(0));
    let d = dsacks.clone();
    p.net.set_filter(&p.b, &p.a, move |pkt| {
        if let Ok(seg) = utcp_proto::wire::parse_ip_tcp(pkt.data, false) {
            let blocks = seg.tcp.options.sack.as_slice();
            let ack = seg.tcp.ack;
            if let Some(&(l, r)) = blocks.first() {
                let inside_second = blocks
                    .get(1)
                    .is_some_and(|&(l2, r2)| !l.before(l2) && !r.after(r2));
                if r.before_eq(ack) || inside_second {
                    d.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        FilterAction::Pass
    });
    let len = 4 << 20;
    let client = p.client.clone();
    let addr = p.server_addr(9);
    let source = tokio::spawn(async move {
        let mut s = client.connect(addr).await.unwrap();
        s.write_all(&vec![5u8; len]).await.unwrap();
        s.shutdown().await.unwrap();
        s
    });
    let (mut s, _) = listener.accept().await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut got))
        .await
        .expect("the transfer ends")
        .unwrap();
    assert_eq!(got.len(), len);
    let st = s.stats();
    let _client = source.await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = dsacks.load(Ordering::Relaxed);
    eprintln!(
        "duplicates received {}, D-SACK blocks sent {sent}; inbox drops {}",
        st.rcv_dup_packets,
        p.server.stats().inbox_drops
    );
    assert!(st.rcv_dup_packets > 1000, "{st:?}");
    assert_eq!(p.server.stats().inbox_drops, 0);
    assert_eq!(sent, st.rcv_dup_packets, "one D-SACK block per duplicate");
}
