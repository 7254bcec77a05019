//! GRO super-segments through the stack, without root: a test device wraps
//! an in-memory host and coalesces each received batch as Linux GRO does
//! (consecutive in-sequence TCP segments of one flow, same ACK and window,
//! no SYN/FIN/RST/URG, up to 64 KiB of IP packet) into one packet with
//! `csum_verified` and `gso_size` set, as a TUN or raw device with offloads
//! on hands them over. The stack must take payloads many times its MSS as
//! one segment, in order and out of order (loss makes holes that later
//! super-segments fill), and deliver every byte exactly once. Virtual time.

mod common;

use common::{read_to_end, write_all};
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use utcp_runtime::sim::{LinkConfig, SimDevice, SimNetwork};
use utcp_runtime::{Device, DeviceAddrs, Medium, Offload, RxPacket, Stack, StackConfig, TxPacket};

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

/// The largest IP packet a merge may build.
const MAX_SUPER: usize = 65_535;

/// An in-memory host whose received batches are coalesced GRO-style.
struct Gro {
    inner: SimDevice,
    /// Received packets before coalescing, reused.
    raw: Mutex<Vec<RxPacket>>,
    /// Super-segments handed to the stack.
    merged: AtomicU64,
    /// Segments that went into them.
    segments: AtomicU64,
    /// The largest TCP payload handed over.
    largest: AtomicU64,
}

/// The TCP fields GRO compares, of an IPv4 packet without options.
struct Tcp {
    flow: [u8; 12],
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    header_len: usize,
    payload: usize,
}

fn tcp(p: &[u8]) -> Option<Tcp> {
    if p.len() < 40 || p[0] != 0x45 || p[9] != 6 {
        return None;
    }
    let header_len = 20 + usize::from(p[32] >> 4) * 4;
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    if total != p.len() || header_len > total {
        return None;
    }
    let mut flow = [0u8; 12];
    flow[..8].copy_from_slice(&p[12..20]);
    flow[8..].copy_from_slice(&p[20..24]);
    Some(Tcp {
        flow,
        seq: u32::from_be_bytes([p[24], p[25], p[26], p[27]]),
        ack: u32::from_be_bytes([p[28], p[29], p[30], p[31]]),
        flags: p[33],
        window: u16::from_be_bytes([p[34], p[35]]),
        header_len,
        payload: total - header_len,
    })
}

/// The IPv4 header checksum of `h`.
fn ip_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for (i, c) in h.chunks(2).enumerate() {
        if i != 5 {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl Gro {
    fn new(inner: SimDevice) -> Gro {
        Gro {
            inner,
            raw: Mutex::new(Vec::new()),
            merged: AtomicU64::new(0),
            segments: AtomicU64::new(0),
            largest: AtomicU64::new(0),
        }
    }

    /// Coalesces `run` (mergeable, consecutive) into one packet.
    fn merge(&self, run: &[RxPacket], out: &mut Vec<RxPacket>) {
        let first = &run[0].data;
        let t = tcp(first).expect("checked when the run was built");
        if run.len() == 1 {
            out.push(run[0].clone());
            return;
        }
        let mut p = first.to_vec();
        for r in &run[1..] {
            let h = tcp(&r.data).expect("checked");
            p.extend_from_slice(&r.data[h.header_len..]);
            // PSH belongs to the last byte.
            p[33] |= r.data[33] & 0x08;
        }
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        let sum = ip_checksum(&p[..20]);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        // The TCP checksum is left as the first segment's: the device says it
        // verified them (as the kernel's DATA_VALID / NEEDS_CSUM).
        let payload = (p.len() - t.header_len) as u64;
        self.merged.fetch_add(1, Ordering::Relaxed);
        self.segments.fetch_add(run.len() as u64, Ordering::Relaxed);
        self.largest.fetch_max(payload, Ordering::Relaxed);
        out.push(RxPacket::new(
            p.into(),
            Offload {
                gso_size: Some(t.payload as u16),
                csum_partial: None,
                csum_verified: true,
            },
        ));
    }
}

impl Device for Gro {
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
        let mut raw = self.raw.lock().unwrap();
        raw.clear();
        match self.inner.poll_recv(cx, &mut raw, max) {
            Poll::Ready(Ok(_)) => {}
            other => return other,
        }
        let before = out.len();
        let mut start = 0;
        // Bounded by the batch: each pass ends one run.
        while start < raw.len() {
            let mut end = start + 1;
            if let Some(t) = tcp(&raw[start].data).filter(|t| t.flags & 0x27 == 0 && t.payload > 0)
            {
                let mut next_seq = t.seq.wrapping_add(t.payload as u32);
                let mut len = raw[start].data.len();
                while let Some(r) = raw.get(end) {
                    let Some(u) = tcp(&r.data) else { break };
                    let fits = len + u.payload <= MAX_SUPER;
                    if u.flow != t.flow
                        || u.seq != next_seq
                        || u.ack != t.ack
                        || u.window != t.window
                        || u.flags & 0x27 != 0
                        || u.payload == 0
                        || u.payload > t.payload
                        || !fits
                    {
                        break;
                    }
                    next_seq = next_seq.wrapping_add(u.payload as u32);
                    len += u.payload;
                    end += 1;
                    // A short segment ends a GRO run.
                    if u.payload < t.payload {
                        break;
                    }
                }
            }
            self.merge(&raw[start..end], out);
            start = end;
        }
        Poll::Ready(Ok(out.len() - before))
    }

    fn send(&self, packets: &[TxPacket<'_>]) -> io::Result<()> {
        self.inner.send(packets)
    }
}

impl DeviceAddrs for Gro {
    fn addrs(&self) -> &[IpAddr] {
        self.inner.addrs()
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i >> 13) as u8)
        .collect()
}

/// A sends `bytes` to B over a link with `cfg` from A to B; B's device
/// coalesces what it receives. Returns the device's (super-segments,
/// segments in them, largest payload).
async fn transfer(bytes: usize, cfg: LinkConfig) -> (u64, u64, u64) {
    let net = SimNetwork::new(11);
    let a = net.add_host("a", &[A]);
    let b = net.add_host("b", &[B]);
    net.link_asym(
        &a,
        &b,
        cfg,
        LinkConfig::default().delay(Duration::from_millis(5)),
    );
    let scfg = StackConfig {
        seed: Some(3),
        ..StackConfig::default()
    };
    let gro = std::sync::Arc::new(Gro::new(b));
    let stack_a = Stack::new(a, scfg.clone());
    let stack_b = Stack::new(gro.clone(), scfg);
    let listener = stack_b.listen(SocketAddr::new(B, 9)).unwrap();
    let client = stack_a.connect_start(SocketAddr::new(B, 9)).unwrap();
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
    let _client = writer.await.unwrap();
    assert_eq!(got.len(), data.len(), "every byte arrived");
    if let Some(i) = got.iter().zip(&data).position(|(x, y)| x != y) {
        panic!("first difference at byte {i}");
    }
    (
        gro.merged.load(Ordering::Relaxed),
        gro.segments.load(Ordering::Relaxed),
        gro.largest.load(Ordering::Relaxed),
    )
}

/// A clean link: the sender's bursts arrive together and become
/// super-segments of many MSS each; the stream is exact.
#[tokio::test(start_paused = true)]
async fn super_segments_larger_than_the_mss_are_taken_whole() {
    let (merged, segments, largest) = transfer(
        8 << 20,
        LinkConfig::default().delay(Duration::from_millis(5)),
    )
    .await;
    println!("{merged} super-segments of {segments} segments, largest payload {largest} B");
    assert!(merged > 10, "{merged} super-segments");
    assert!(largest >= 8 * 1460, "largest payload {largest} B");
}

/// A lossy link: holes, out-of-order super-segments beyond them,
/// retransmissions filling them; every byte still arrives once, in order.
#[tokio::test(start_paused = true)]
async fn super_segments_fill_and_pass_holes_under_loss() {
    let (merged, _, largest) = transfer(
        4 << 20,
        LinkConfig::default()
            .delay(Duration::from_millis(5))
            .loss(0.02),
    )
    .await;
    println!("{merged} super-segments, largest payload {largest} B");
    assert!(merged > 10, "{merged} super-segments");
    assert!(largest > 2 * 1460, "largest payload {largest} B");
}
