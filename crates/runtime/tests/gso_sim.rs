//! GSO super-segments out of the stack, without root: in-memory hosts that
//! offer transmit offloads ([`SimDevice::set_offload`]) as a TUN device
//! with virtio-net headers does. The sender's connections hand the device
//! super-segments of many MSS with partial checksums; the device cuts them
//! into wire segments (each checked against the MTU, checksums completed),
//! which cross an impaired link one by one. Every byte must arrive exactly
//! once and in order, under loss and reordering too, and most data bytes
//! must leave in super-segments. Virtual time.

mod common;

use common::{read_to_end, write_all};
use std::future::poll_fn;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use utcp_runtime::sim::{LinkConfig, SimNetwork};
use utcp_runtime::{Stack, StackConfig};

fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i >> 13) as u8)
        .collect()
}

/// What one transfer showed.
#[derive(Debug)]
struct Seen {
    /// The sender's connection statistics.
    stats: utcp_runtime::proto::Stats,
    /// Super-segments the sending host cut.
    host_super: u64,
    /// The wire segments it cut them into.
    host_super_segments: u64,
    /// Packets the sending host refused (offload asked and not offered,
    /// or not carried out) or dropped as larger than its MTU.
    refused: u64,
    oversized: u64,
}

/// A sends `bytes` to B (A offering offloads when `offload`) over a link
/// with `cfg`, B answering over a clean one.
async fn transfer(
    a_addr: IpAddr,
    b_addr: IpAddr,
    bytes: usize,
    offload: bool,
    cfg: LinkConfig,
) -> Seen {
    let net = SimNetwork::new(23);
    let a = net.add_host("a", &[a_addr]);
    let b = net.add_host("b", &[b_addr]);
    a.set_offload(offload);
    b.set_offload(offload);
    net.link_asym(
        &a,
        &b,
        cfg,
        LinkConfig::default().delay(Duration::from_millis(5)),
    );
    let scfg = StackConfig {
        seed: Some(5),
        ..StackConfig::default()
    };
    let stack_a = Stack::new(a.clone(), scfg.clone());
    let stack_b = Stack::new(b, scfg);
    let listener = stack_b.listen(SocketAddr::new(b_addr, 9)).unwrap();
    let client = stack_a.connect_start(SocketAddr::new(b_addr, 9)).unwrap();
    poll_fn(|cx| client.poll_connected(cx)).await.unwrap();
    let server = poll_fn(|cx| listener.poll_accept(cx)).await.unwrap();
    let data = pattern(bytes);
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        write_all(&client, &sent).await.unwrap();
        client.shutdown_write().unwrap();
        client
    });
    let got = tokio::time::timeout(Duration::from_secs(600), read_to_end(&server))
        .await
        .expect("the transfer ends (virtual time)")
        .unwrap();
    let client = writer.await.unwrap();
    assert_eq!(got.len(), data.len(), "every byte arrived");
    if let Some(i) = got.iter().zip(&data).position(|(x, y)| x != y) {
        panic!("first difference at byte {i}");
    }
    let h = a.stats();
    Seen {
        stats: client.stats(),
        host_super: h.tx_super,
        host_super_segments: h.tx_super_segments,
        refused: h.offload_refused,
        oversized: h.oversized,
    }
}

const A4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const B4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const A6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
const B6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));

fn clean() -> LinkConfig {
    LinkConfig::default().delay(Duration::from_millis(5))
}

/// A clean link: data leaves in super-segments (most of its bytes), every
/// wire segment fits the MTU, nothing is refused, and the bytes arrive
/// exactly.
#[tokio::test(start_paused = true)]
async fn bulk_data_leaves_in_super_segments_over_ipv4_and_ipv6() {
    for (a, b) in [(A4, B4), (A6, B6)] {
        let seen = transfer(a, b, 8 << 20, true, clean()).await;
        println!("{a}: {seen:?}");
        let st = &seen.stats;
        assert!(st.super_segments_sent > 20, "{seen:?}");
        assert_eq!(
            seen.host_super, st.super_segments_sent,
            "the host cut each one"
        );
        assert_eq!((seen.refused, seen.oversized), (0, 0), "{seen:?}");
        // Of the data segments, the share that left inside super-segments:
        // everything but the handshake's and the initial window's few.
        let data_segments = st.bytes_sent.div_ceil(u64::from(st.mss));
        assert!(
            st.segments_sent >= data_segments,
            "segments count what the wire carries: {seen:?}"
        );
        assert!(
            seen.host_super_segments * 10 >= data_segments * 9,
            "≥ 90 % of data segments in super-segments: {seen:?}"
        );
        assert!(
            seen.host_super_segments >= seen.host_super * 16,
            "super-segments of 16 segments or more on average: {seen:?}"
        );
    }
}

/// Without the device's offloads nothing asks for them: every segment
/// complete and of one MTU.
#[tokio::test(start_paused = true)]
async fn without_offloads_no_super_segments_are_asked_for() {
    let seen = transfer(A4, B4, 1 << 20, false, clean()).await;
    assert_eq!(seen.stats.super_segments_sent, 0, "{seen:?}");
    assert_eq!((seen.host_super, seen.refused, seen.oversized), (0, 0, 0));
}

/// Loss and reordering on the wire segments cut from super-segments: SACK
/// and RACK see each segment on its own (one scoreboard entry each), and
/// the stream is still exact.
#[tokio::test(start_paused = true)]
async fn super_segments_survive_loss_and_reordering_byte_exact() {
    for seed_loss in [0.01, 0.05] {
        let cfg = clean()
            .loss(seed_loss)
            .reorder(0.02, Duration::from_millis(2));
        let seen = transfer(A4, B4, 4 << 20, true, cfg).await;
        println!("loss {seed_loss}: {seen:?}");
        assert!(seen.stats.super_segments_sent > 10, "{seen:?}");
        assert!(seen.stats.segments_retransmitted > 0, "{seen:?}");
        // A repair is one segment, not a whole super-segment again.
        let lost_share = seen.stats.bytes_retransmitted * 100 / seen.stats.bytes_sent.max(1);
        assert!(
            lost_share < (seed_loss * 100.0 * 3.0) as u64 + 2,
            "retransmitted {lost_share} % of bytes at {seed_loss} loss: {seen:?}"
        );
    }
}
