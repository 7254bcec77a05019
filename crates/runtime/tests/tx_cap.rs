//! A connection task hands the device at most 64 segments per pass, then
//! yields, so that one connection with a large window cannot starve the
//! others on its worker (lean hot path issue, point 2). Two connections of
//! one stack on one thread (virtual time) first grow their windows well
//! past 64 segments; then the test queues data on both at the same moment,
//! so that both tasks are ready at once. A recording device sees the order
//! the data segments leave in: the first connection's 64, then the other's,
//! not the first one's whole window (182 segments with the cap lifted).
//! Pacing is off and the receive window large, so that only the cap
//! decides what a pass sends.

mod common;

use common::write_all;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use utcp_runtime::device::Capabilities;
use utcp_runtime::sim::{LinkConfig, SimDevice, SimNetwork};
use utcp_runtime::{Device, DeviceAddrs, Medium, RxPacket, Stack, StackConfig, TxPacket};

/// The in-memory device, noting the source port of each data segment sent.
struct Recording {
    inner: SimDevice,
    ports: Arc<Mutex<Vec<u16>>>,
}

impl Device for Recording {
    fn medium(&self) -> Medium {
        self.inner.medium()
    }

    fn mtu(&self) -> usize {
        self.inner.mtu()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        out: &mut Vec<RxPacket>,
        max: usize,
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_recv(cx, out, max)
    }

    fn send(&self, packets: &[TxPacket<'_>]) -> io::Result<()> {
        let mut ports = self.ports.lock().unwrap();
        for p in packets {
            // IPv4 without options: the TCP source port follows 20 bytes.
            if !p.payload.is_empty() && p.header.len() >= 22 {
                ports.push(u16::from_be_bytes([p.header[20], p.header[21]]));
            }
        }
        drop(ports);
        self.inner.send(packets)
    }

    fn rx_memory(&self) -> Option<utcp_runtime::device::arena::RxMemory> {
        self.inner.rx_memory()
    }
}

impl DeviceAddrs for Recording {
    fn addrs(&self) -> &[std::net::IpAddr] {
        self.inner.addrs()
    }
}

const WARM: usize = 2 << 20;
const AGAIN: usize = 256 << 10;

/// Queues as much of `data` as the send buffer takes now, without waiting.
fn queue_now(c: &utcp_runtime::ConnRef, data: &[u8]) -> usize {
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);
    let mut done = 0;
    while done < data.len() {
        match c.poll_write(&mut cx, &data[done..]) {
            Poll::Ready(Ok(n)) if n > 0 => done += n,
            _ => break,
        }
    }
    done
}

async fn read_n(s: &utcp_runtime::ConnRef, n: usize) -> io::Result<()> {
    let mut buf = vec![0u8; 64 << 10];
    let mut got = 0;
    while got < n {
        let k = common::read_some(s, &mut buf).await?;
        assert!(k > 0, "early end of stream");
        got += k;
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_connection_with_a_large_window_yields_after_64_segments() {
    let net = SimNetwork::new(11);
    let a = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
    let b = net.add_host("b", &["10.0.0.2".parse().unwrap()]);
    net.link(&a, &b, LinkConfig::default());
    let ports = Arc::new(Mutex::new(Vec::new()));
    // Unpaced, so that only the cap decides how much a pass sends.
    let mut cfg = StackConfig::default();
    cfg.endpoint.conn.pacing = false;
    let sa = Stack::new(
        Recording {
            inner: a,
            ports: ports.clone(),
        },
        cfg,
    );
    // A receive window that does not limit the sender either.
    let mut rcfg = StackConfig::default();
    rcfg.endpoint.conn.recv_buffer = 2 << 20;
    rcfg.endpoint.conn.recv_buffer_max = 2 << 20;
    let sb = Stack::new(b, rcfg);
    let addr: SocketAddr = "10.0.0.2:80".parse().unwrap();
    let l = sb.listen(addr).unwrap();
    let mut pairs = Vec::new();
    for _ in 0..2 {
        let c = sa.connect_start(addr).unwrap();
        poll_fn(|cx| c.poll_connected(cx)).await.unwrap();
        let s = poll_fn(|cx| l.poll_accept(cx)).await.unwrap();
        pairs.push((c, s));
    }
    // Warm up: each window grows well past the cap.
    let data = vec![0x3cu8; WARM];
    for (c, s) in &pairs {
        let (w, r) = tokio::join!(write_all(c, &data), read_n(s, WARM));
        w.unwrap();
        r.unwrap();
    }
    // The last ACKs arrive (well within an RTO: no restart after idle).
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    for (c, _) in &pairs {
        let st = c.stats();
        assert_eq!(st.unacked, 0, "nothing in flight");
        assert!(
            st.cwnd / st.mss > 96,
            "the window grew past the cap: {} segments",
            st.cwnd / st.mss
        );
    }
    // Both at once: neither task has run when the second write is queued.
    let start = ports.lock().unwrap().len();
    for (c, _) in &pairs {
        assert_eq!(
            queue_now(c, &data[..AGAIN]),
            AGAIN,
            "the send buffer takes it"
        );
    }
    let (r0, r1) = tokio::join!(read_n(&pairs[0].1, AGAIN), read_n(&pairs[1].1, AGAIN));
    r0.unwrap();
    r1.unwrap();
    let ports = ports.lock().unwrap()[start..].to_vec();
    let first = ports[0];
    let run = ports.iter().take_while(|&&p| p == first).count();
    eprintln!(
        "{} data segments after both were queued; the first connection's first run: {run}",
        ports.len()
    );
    assert_eq!(
        run, 64,
        "the first pass hands the device 64 segments, then yields"
    );
    assert_ne!(ports[run], first, "the other connection goes next");
}
