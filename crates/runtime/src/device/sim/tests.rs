//! Tests of the simulated network, in virtual time except one in real time.

use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;
use tokio::time::{sleep, sleep_until, timeout};

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

fn v6(last: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, last))
}

/// A packet of `len` bytes (at least 24 or 44) to `dst`, carrying `id` right
/// after the IP header.
fn packet(dst: IpAddr, id: u32, len: usize) -> Vec<u8> {
    let mut p = match dst {
        IpAddr::V4(dst) => {
            let mut h = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 99];
            h.extend_from_slice(&dst.octets());
            h
        }
        IpAddr::V6(dst) => {
            let mut h = vec![0x60, 0, 0, 0, 0, 0, 6, 64];
            h.extend_from_slice(&[0; 16]);
            h.extend_from_slice(&dst.octets());
            h
        }
    };
    p.extend_from_slice(&id.to_be_bytes());
    assert!(len >= p.len(), "packet too short for its header");
    p.resize(len, 0xab);
    p
}

/// The id carried by a packet made by [`packet`].
fn id_of(p: &[u8]) -> u32 {
    let at = if p[0] >> 4 == 6 { 40 } else { 20 };
    u32::from_be_bytes(p[at..at + 4].try_into().unwrap())
}

fn send(dev: &SimDevice, p: &[u8]) {
    let split = if p[0] >> 4 == 6 { 40 } else { 20 };
    dev.send(&[TxPacket {
        header: &p[..split],
        payload: &p[split..],
        payload_tail: &[],
        meta: Offload::default(),
    }])
    .unwrap();
}

/// Waits for the next batch (at most 64 packets).
async fn recv(dev: &SimDevice) -> Vec<RxPacket> {
    let mut out = Vec::new();
    let n = std::future::poll_fn(|cx| dev.poll_recv(cx, &mut out, 64))
        .await
        .unwrap();
    assert_eq!(n, out.len());
    out
}

/// Every packet received until `until`, with its arrival time after `start`.
async fn recv_until(dev: &SimDevice, start: Instant, until: Instant) -> Vec<(Duration, Bytes)> {
    let mut got = Vec::new();
    while let Ok(batch) = timeout(until.saturating_duration_since(Instant::now()), recv(dev)).await
    {
        let at = Instant::now() - start;
        got.extend(batch.into_iter().map(|p| (at, p.data)));
    }
    got
}

fn pair(seed: u64, cfg: LinkConfig) -> (SimNetwork, SimDevice, SimDevice) {
    let net = SimNetwork::new(seed);
    let a = net.add_host("a", &[v4(1)]);
    let b = net.add_host("b", &[v4(2)]);
    net.link(&a, &b, cfg);
    (net, a, b)
}

#[test]
fn types_are_send_and_sync() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<SimNetwork>();
    check::<SimDevice>();
}

#[test]
fn destination_parses_v4_v6_and_rejects_the_rest() {
    assert_eq!(destination(&packet(v4(7), 0, 24)), Some(v4(7)));
    assert_eq!(destination(&packet(v6(7), 0, 44)), Some(v6(7)));
    assert_eq!(destination(&packet(v4(7), 0, 24)[..19]), None);
    assert_eq!(destination(&packet(v6(7), 0, 44)[..39]), None);
    assert_eq!(destination(&[]), None);
    assert_eq!(destination(&[0x50; 64]), None);
}

#[tokio::test(start_paused = true)]
async fn delivery_after_delay() {
    let (net, a, b) = pair(1, LinkConfig::default().delay(ms(10)));
    let start = Instant::now();
    send(&a, &packet(v4(2), 7, 100));
    assert!(timeout(ms(9), recv(&b)).await.is_err(), "arrived early");
    let got = recv(&b).await;
    let at = Instant::now() - start;
    assert!(at >= ms(10) && at <= ms(11), "arrived at {at:?}");
    assert_eq!(got.len(), 1);
    assert_eq!(id_of(&got[0].data), 7);
    assert_eq!(got[0].data.len(), 100);
    assert_eq!(got[0].meta, Offload::default());
    let stats = net.stats(&a, &b);
    assert_eq!(
        (stats.sent, stats.delivered, stats.bytes_delivered),
        (1, 1, 100)
    );
    assert_eq!(b.stats().received, 1);
    assert_eq!(net.stats(&b, &a), LinkStats::default());
}

#[tokio::test(start_paused = true)]
async fn zero_delay_is_due_at_once_and_batches_respect_max() {
    let (_net, a, b) = pair(1, LinkConfig::default());
    for id in 0..10 {
        send(&a, &packet(v4(2), id, 64));
    }
    let mut out = Vec::new();
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);
    assert!(matches!(
        b.poll_recv(&mut cx, &mut out, 4),
        Poll::Ready(Ok(4))
    ));
    assert!(matches!(
        b.poll_recv(&mut cx, &mut out, 64),
        Poll::Ready(Ok(6))
    ));
    assert!(b.poll_recv(&mut cx, &mut out, 64).is_pending());
    let ids: Vec<u32> = out.iter().map(|p| id_of(&p.data)).collect();
    assert_eq!(ids, (0..10).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn rate_limit_spaces_packets() {
    let (net, a, b) = pair(1, LinkConfig::default().rate(100_000));
    let start = Instant::now();
    for id in 0..10 {
        send(&a, &packet(v4(2), id, 1000));
    }
    let got = recv_until(&b, start, start + ms(500)).await;
    assert_eq!(got.len(), 10);
    for (k, (at, data)) in got.iter().enumerate() {
        assert_eq!(id_of(data) as usize, k);
        // Packet k leaves after (k + 1) * 10 ms of serialization.
        let due = ms(10 * (k as u64 + 1));
        assert!(*at >= due && *at <= due + ms(1), "packet {k} at {at:?}");
    }
    assert_eq!(net.stats(&a, &b).queue_drops, 0);
}

#[tokio::test(start_paused = true)]
async fn drop_tail_under_a_burst() {
    let cfg = LinkConfig::default().rate(100_000).queue_bytes(10_000);
    let (net, a, b) = pair(1, cfg);
    let start = Instant::now();
    for id in 0..100 {
        send(&a, &packet(v4(2), id, 1000));
    }
    let got = recv_until(&b, start, start + ms(500)).await;
    let ids: Vec<u32> = got.iter().map(|(_, d)| id_of(d)).collect();
    assert_eq!(ids, (0..10).collect::<Vec<_>>());
    let stats = net.stats(&a, &b);
    assert_eq!(
        (stats.sent, stats.queue_drops, stats.delivered),
        (100, 90, 10)
    );

    // Once drained, the queue takes packets again.
    send(&a, &packet(v4(2), 100, 1000));
    let got = recv(&b).await;
    assert_eq!(id_of(&got[0].data), 100);
}

#[tokio::test(start_paused = true)]
async fn loss_rate_is_close_to_the_configured_one() {
    let (net, a, b) = pair(7, LinkConfig::default().loss(0.1));
    b.set_rx_queue_limit(20_000);
    let start = Instant::now();
    for id in 0..10_000 {
        send(&a, &packet(v4(2), id, 40));
    }
    let got = recv_until(&b, start, start + ms(10)).await;
    let stats = net.stats(&a, &b);
    // Binomial(10000, 0.1): sigma = 30; allow 5 sigma.
    assert!((850..=1150).contains(&stats.lost), "lost {}", stats.lost);
    assert_eq!(stats.lost + stats.delivered, 10_000);
    assert_eq!(got.len() as u64, stats.delivered);
    // Losses do not reorder the survivors.
    assert!(got.windows(2).all(|w| id_of(&w[0].1) < id_of(&w[1].1)));
}

/// Runs a heavily impaired transfer and records what arrived, when.
async fn scenario(seed: u64) -> (Vec<(Duration, Bytes)>, LinkStats) {
    let cfg = LinkConfig {
        rate: Some(1_000_000),
        delay: ms(20),
        jitter: ms(5),
        queue_bytes: 20_000,
        loss: 0.05,
        duplicate: 0.05,
        reorder: 0.05,
        reorder_delay: ms(7),
        corrupt: 0.05,
    };
    let (net, a, b) = pair(seed, cfg);
    let start = Instant::now();
    let receiver = tokio::spawn({
        let b = b.clone();
        async move { recv_until(&b, start, start + ms(2_000)).await }
    });
    for id in 0..500 {
        send(&a, &packet(v4(2), id, 200 + (id as usize % 7) * 100));
        if id % 10 == 9 {
            sleep(ms(3)).await;
        }
    }
    let got = receiver.await.unwrap();
    (got, net.stats(&a, &b))
}

#[tokio::test(start_paused = true)]
async fn same_seed_replays_exactly() {
    let (first, first_stats) = scenario(1234).await;
    let (second, second_stats) = scenario(1234).await;
    // The sender outruns the rate, so the queue drops some too.
    assert!(first.len() > 300, "only {} arrived", first.len());
    assert_eq!(first, second);
    assert_eq!(first_stats, second_stats);
    for n in [
        first_stats.lost,
        first_stats.duplicated,
        first_stats.reordered,
        first_stats.corrupted,
        first_stats.queue_drops,
    ] {
        assert!(n > 0, "an impairment never happened: {first_stats:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn different_seed_differs() {
    let (first, _) = scenario(1).await;
    let (second, _) = scenario(2).await;
    assert_ne!(first, second);
}

#[tokio::test(start_paused = true)]
async fn directions_have_their_own_streams() {
    let net = SimNetwork::new(5);
    let a = net.add_host("a", &[v4(1)]);
    let b = net.add_host("b", &[v4(2)]);
    net.link(&a, &b, LinkConfig::default().loss(0.5));
    let start = Instant::now();
    for id in 0..64 {
        send(&a, &packet(v4(2), id, 40));
        send(&b, &packet(v4(1), id, 40));
    }
    let to_b: Vec<u32> = recv_until(&b, start, start + ms(1))
        .await
        .iter()
        .map(|(_, d)| id_of(d))
        .collect();
    let to_a: Vec<u32> = recv_until(&a, start, start + ms(2))
        .await
        .iter()
        .map(|(_, d)| id_of(d))
        .collect();
    assert_ne!(to_a, to_b);
}

#[tokio::test(start_paused = true)]
async fn duplication_delivers_twice() {
    let (net, a, b) = pair(3, LinkConfig::default().delay(ms(1)).duplicate(1.0));
    let start = Instant::now();
    for id in 0..20 {
        send(&a, &packet(v4(2), id, 100));
    }
    let got = recv_until(&b, start, start + ms(10)).await;
    let ids: Vec<u32> = got.iter().map(|(_, d)| id_of(d)).collect();
    let expected: Vec<u32> = (0..20).flat_map(|id| [id, id]).collect();
    assert_eq!(ids, expected);
    let stats = net.stats(&a, &b);
    assert_eq!(
        (stats.sent, stats.duplicated, stats.delivered),
        (20, 20, 40)
    );
    assert_eq!(stats.corrupted, 0);
}

#[tokio::test(start_paused = true)]
async fn corruption_flips_exactly_one_bit() {
    let (net, a, b) = pair(3, LinkConfig::default().corrupt(1.0));
    let start = Instant::now();
    let sent: Vec<Vec<u8>> = (0..50).map(|id| packet(v4(2), id, 300)).collect();
    for p in &sent {
        send(&a, p);
    }
    let got = recv_until(&b, start, start + ms(1)).await;
    assert_eq!(got.len(), 50);
    for (original, (_, delivered)) in sent.iter().zip(&got) {
        let flipped: u32 = original
            .iter()
            .zip(delivered.iter())
            .map(|(x, y)| (x ^ y).count_ones())
            .sum();
        assert_eq!(flipped, 1);
    }
    assert_eq!(net.stats(&a, &b).corrupted, 50);
}

#[tokio::test(start_paused = true)]
async fn reordering_lets_later_packets_overtake() {
    let cfg = LinkConfig::default().delay(ms(5)).reorder(0.2, ms(5));
    let (net, a, b) = pair(9, cfg);
    let start = Instant::now();
    let receiver = tokio::spawn({
        let b = b.clone();
        async move { recv_until(&b, start, start + ms(500)).await }
    });
    for id in 0..200 {
        send(&a, &packet(v4(2), id, 100));
        sleep(ms(1)).await;
    }
    let got = receiver.await.unwrap();
    let ids: Vec<u32> = got.iter().map(|(_, d)| id_of(d)).collect();
    assert_eq!(ids.len(), 200);
    assert!(ids.windows(2).any(|w| w[0] > w[1]), "no reordering");
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..200).collect::<Vec<_>>());
    assert!(net.stats(&a, &b).reordered > 0);
}

#[tokio::test(start_paused = true)]
async fn jitter_alone_never_reorders() {
    let cfg = LinkConfig::default().delay(ms(10)).jitter(ms(8));
    let (_net, a, b) = pair(11, cfg);
    let start = Instant::now();
    let receiver = tokio::spawn({
        let b = b.clone();
        async move { recv_until(&b, start, start + ms(500)).await }
    });
    for id in 0..300 {
        send(&a, &packet(v4(2), id, 100));
        if id % 3 == 0 {
            sleep(ms(1)).await;
        }
    }
    let got = receiver.await.unwrap();
    let ids: Vec<u32> = got.iter().map(|(_, d)| id_of(d)).collect();
    assert_eq!(ids, (0..300).collect::<Vec<_>>());
    // The jitter did spread the arrivals.
    let spread: std::collections::BTreeSet<Duration> = got.iter().map(|(at, _)| *at).collect();
    assert!(spread.len() > 50);
}

#[tokio::test(start_paused = true)]
async fn filter_drops_and_delays_by_index() {
    let (net, a, b) = pair(1, LinkConfig::default().delay(ms(1)));
    net.set_filter(&a, &b, |p| match p.index {
        2 => FilterAction::Drop,
        4 => FilterAction::Delay(ms(50)),
        _ => FilterAction::Pass,
    });
    let start = Instant::now();
    for id in 0..8 {
        send(&a, &packet(v4(2), id, 60));
    }
    let got = recv_until(&b, start, start + ms(100)).await;
    let ids: Vec<u32> = got.iter().map(|(_, d)| id_of(d)).collect();
    assert_eq!(ids, [0, 1, 3, 5, 6, 7, 4]);
    assert!(got[6].0 >= ms(51));
    let stats = net.stats(&a, &b);
    assert_eq!((stats.sent, stats.filtered, stats.delivered), (8, 1, 7));

    net.clear_filter(&a, &b);
    send(&a, &packet(v4(2), 8, 60));
    assert_eq!(id_of(&recv(&b).await[0].data), 8);
}

#[tokio::test(start_paused = true)]
async fn filter_sees_packet_bytes() {
    let (net, a, b) = pair(1, LinkConfig::default());
    net.set_filter(&a, &b, |p| {
        if id_of(p.data) % 2 == 1 {
            FilterAction::Drop
        } else {
            FilterAction::Pass
        }
    });
    let start = Instant::now();
    for id in 0..10 {
        send(&a, &packet(v4(2), id, 60));
    }
    let got = recv_until(&b, start, start + ms(5)).await;
    let ids: Vec<u32> = got.iter().map(|(_, d)| id_of(d)).collect();
    assert_eq!(ids, [0, 2, 4, 6, 8]);
}

#[tokio::test(start_paused = true)]
async fn inject_delivers_arbitrary_bytes() {
    let (net, a, b) = pair(1, LinkConfig::default().delay(ms(3)).loss(1.0));
    let start = Instant::now();
    net.inject(&a, &b, Bytes::from_static(&[0xff, 0x00, 0x13]));
    let got = recv(&b).await;
    assert!(Instant::now() - start >= ms(3));
    assert_eq!(&got[0].data[..], &[0xff, 0x00, 0x13]);
    let stats = net.stats(&a, &b);
    assert_eq!((stats.injected, stats.sent, stats.delivered), (1, 0, 1));

    // Injection needs no link.
    let c = net.add_host("c", &[v4(3)]);
    net.inject(&c, &b, Bytes::from_static(b"x"));
    assert_eq!(&recv(&b).await[0].data[..], b"x");
}

#[tokio::test(start_paused = true)]
async fn routes_to_the_right_host_among_three() {
    let net = SimNetwork::new(1);
    let a = net.add_host("a", &[v4(1), v6(1)]);
    let b = net.add_host("b", &[v4(2), v6(2)]);
    let c = net.add_host("c", &[v4(3), v6(3)]);
    net.link(&a, &b, LinkConfig::default().delay(ms(1)));
    net.link(&a, &c, LinkConfig::default().delay(ms(2)));
    assert_eq!(net.host(v6(3)).unwrap().name(), "c");
    assert_eq!(c.addrs(), &[v4(3), v6(3)]);

    send(&a, &packet(v4(2), 1, 40));
    send(&a, &packet(v6(3), 2, 60));
    send(&a, &packet(v4(3), 3, 40));
    send(&a, &packet(v6(2), 4, 60));
    send(&a, &packet(v4(9), 5, 40)); // nobody's
    send(&b, &packet(v4(3), 6, 40)); // no link b - c
    a.send(&[TxPacket {
        header: &[0x10; 30],
        payload: &[],
        payload_tail: &[],
        meta: Offload::default(),
    }])
    .unwrap(); // not IP

    let start = Instant::now();
    let at_b: Vec<u32> = recv_until(&b, start, start + ms(10))
        .await
        .iter()
        .map(|(_, d)| id_of(d))
        .collect();
    let at_c: Vec<u32> = recv_until(&c, start, start + ms(20))
        .await
        .iter()
        .map(|(_, d)| id_of(d))
        .collect();
    assert_eq!(at_b, [1, 4]);
    assert_eq!(at_c, [2, 3]);
    assert_eq!(a.stats().unroutable, 2);
    assert_eq!(b.stats().unroutable, 1);
    assert_eq!(c.stats().unroutable, 0);

    // A default route carries packets for unknown addresses.
    net.set_default_route(&a, Some(&c));
    send(&a, &packet(v4(9), 7, 40));
    assert_eq!(id_of(&recv(&c).await[0].data), 7);

    // After unlinking, a - b is unroutable.
    net.unlink(&a, &b);
    assert_eq!(net.link_config(&a, &b), None);
    send(&a, &packet(v4(2), 8, 40));
    assert_eq!(a.stats().unroutable, 3);
}

#[test]
#[should_panic(expected = "already owned")]
fn duplicate_address_panics() {
    let net = SimNetwork::new(1);
    net.add_host("a", &[v4(1)]);
    net.add_host("b", &[v4(1)]);
}

#[tokio::test(start_paused = true)]
async fn asymmetric_links_use_their_own_config() {
    let net = SimNetwork::new(1);
    let a = net.add_host("a", &[v4(1)]);
    let b = net.add_host("b", &[v4(2)]);
    net.link_asym(
        &a,
        &b,
        LinkConfig::default().delay(ms(5)),
        LinkConfig::default().delay(ms(30)),
    );
    let start = Instant::now();
    send(&a, &packet(v4(2), 1, 40));
    send(&b, &packet(v4(1), 2, 40));
    recv(&b).await;
    let at = Instant::now() - start;
    assert!(at >= ms(5) && at <= ms(6), "a to b took {at:?}");
    recv(&a).await;
    let at = Instant::now() - start;
    assert!(at >= ms(30) && at <= ms(31), "b to a took {at:?}");
}

#[tokio::test(start_paused = true)]
async fn an_earlier_packet_wakes_a_waiting_receiver() {
    let net = SimNetwork::new(1);
    let a = net.add_host("a", &[v4(1)]);
    let b = net.add_host("b", &[v4(2)]);
    let c = net.add_host("c", &[v4(3)]);
    net.link(&a, &b, LinkConfig::default().delay(ms(100)));
    net.link(&c, &b, LinkConfig::default().delay(ms(1)));
    let start = Instant::now();
    send(&a, &packet(v4(2), 1, 40));
    let receiver = tokio::spawn({
        let b = b.clone();
        async move {
            let first = recv(&b).await;
            (Instant::now() - start, id_of(&first[0].data))
        }
    });
    // Let the receiver arm its sleep for the packet due at 100 ms.
    sleep(ms(10)).await;
    assert_eq!(b.next_arrival(), Some(start + ms(100)));
    send(&c, &packet(v4(2), 2, 40));
    let (at, id) = receiver.await.unwrap();
    assert_eq!(id, 2);
    assert!(at >= ms(11) && at <= ms(12), "woken at {at:?}");
    sleep_until(start + ms(100)).await;
    assert_eq!(id_of(&recv(&b).await[0].data), 1);
}

#[tokio::test(start_paused = true)]
async fn receive_queue_overflow_is_dropped_and_counted() {
    let (_net, a, b) = pair(1, LinkConfig::default());
    b.set_rx_queue_limit(5);
    for id in 0..10 {
        send(&a, &packet(v4(2), id, 40));
    }
    assert_eq!(b.rx_queue_len(), 5);
    let got = recv(&b).await;
    assert_eq!(got.len(), 5);
    assert_eq!(b.stats().rx_queue_drops, 5);
}

#[tokio::test(start_paused = true)]
async fn oversized_packets_are_dropped() {
    let (net, a, b) = pair(1, LinkConfig::default());
    assert_eq!(a.mtu(), DEFAULT_MTU);
    assert_eq!(a.medium(), Medium::Ip);
    a.set_mtu(100);
    send(&a, &packet(v4(2), 1, 101));
    send(&a, &packet(v4(2), 2, 100));
    assert_eq!(id_of(&recv(&b).await[0].data), 2);
    assert_eq!(a.stats().oversized, 1);
    assert_eq!(net.stats(&a, &b).sent, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_time_on_a_multi_thread_runtime() {
    let cfg = LinkConfig::default().delay(ms(5)).jitter(ms(2));
    let (net, a, b) = pair(21, cfg);
    let receiver = tokio::spawn({
        let b = b.clone();
        async move {
            let mut ids = Vec::new();
            while ids.len() < 200 {
                ids.extend(recv(&b).await.iter().map(|p| id_of(&p.data)));
            }
            ids
        }
    });
    let senders: Vec<_> = (0..4u32)
        .map(|s| {
            let a = a.clone();
            tokio::spawn(async move {
                for k in 0..50 {
                    send(&a, &packet(v4(2), s * 1000 + k, 100));
                    if k % 10 == 0 {
                        sleep(ms(1)).await;
                    }
                }
            })
        })
        .collect();
    for s in senders {
        s.await.unwrap();
    }
    let ids = timeout(Duration::from_secs(10), receiver)
        .await
        .expect("the receiver was not woken")
        .unwrap();
    assert_eq!(ids.len(), 200);
    for s in 0..4 {
        let mine: Vec<u32> = ids.iter().copied().filter(|id| id / 1000 == s).collect();
        assert_eq!(mine, (0..50).map(|k| s * 1000 + k).collect::<Vec<_>>());
    }
    assert_eq!(net.stats(&a, &b).delivered, 200);
}

#[test]
fn name_table_resolves_hosts_and_aliases_through_the_device() {
    let net = SimNetwork::new(1);
    let a = net.add_host("client", &[v4(1)]);
    let db = net.add_host("db", &[v4(5), v6(5)]);
    // A second host of the same name: both answer, oldest first.
    net.add_host("db", &[v4(6)]);
    net.add_name("Primary.DB", &[v4(5)]);
    assert_eq!(a.lookup_host("db"), Some(vec![v4(5), v6(5), v4(6)]));
    assert_eq!(db.lookup_host("primary.db"), Some(vec![v4(5)]));
    assert_eq!(a.lookup_host("client"), Some(vec![v4(1)]));
    assert_eq!(a.lookup_host("nobody"), None);
    // Another network's table is not consulted.
    let other = SimNetwork::new(2).add_host("x", &[v4(1)]);
    assert_eq!(other.lookup_host("db"), None);
    // A host with no address is not a name to connect to.
    net.add_host("empty", &[]);
    assert_eq!(a.lookup_host("empty"), None);
}
