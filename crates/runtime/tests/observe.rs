//! Seeing a stack: `Stack::connections()` / `listeners()`, the TCP MIB
//! counters and drops by reason, checked against scripted traffic on the
//! in-memory network; and a device that fails ends listeners and
//! connections with `NetworkDown` instead of leaving them to time out.

mod common;

use bytes::Bytes;
use common::{read_some, read_to_end, write_all};
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use utcp_runtime::device::Capabilities;
use utcp_runtime::proto::State;
use utcp_runtime::sim::{LinkConfig, SimDevice, SimNetwork};
use utcp_runtime::{Device, ListenerRef, RxPacket, Stack, StackConfig, TxPacket};

const A: &str = "10.1.0.1";
const B: &str = "10.1.0.2";

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

fn pair(seed: u64) -> (SimNetwork, SimDevice, SimDevice, Stack, Stack) {
    let net = SimNetwork::new(seed);
    let a = net.add_host("a", &[A.parse().unwrap()]);
    let b = net.add_host("b", &[B.parse().unwrap()]);
    net.link(
        &a,
        &b,
        LinkConfig::default().delay(Duration::from_millis(1)),
    );
    let cfg = |s| StackConfig {
        seed: Some(s),
        ..StackConfig::default()
    };
    let (client, server) = (
        Stack::new(a.clone(), cfg(seed)),
        Stack::new(b.clone(), cfg(seed + 1)),
    );
    (net, a, b, client, server)
}

async fn accept(l: &ListenerRef) -> io::Result<utcp_runtime::ConnRef> {
    poll_fn(|cx| l.poll_accept(cx)).await
}

async fn connected(c: &utcp_runtime::ConnRef) -> io::Result<()> {
    poll_fn(|cx| c.poll_connected(cx)).await
}

#[tokio::test(start_paused = true)]
async fn connections_and_listeners_are_listed_with_states_and_time_wait_left() {
    let (_net, _a, _b, client, server) = pair(11);
    let l = server.listen(sa(B, 80)).unwrap();
    let listeners = server.listeners();
    assert_eq!(listeners.len(), 1);
    assert_eq!(listeners[0].local, sa(B, 80));
    assert!(!listeners[0].any);
    let c = client.connect_start(sa(B, 80)).unwrap();
    connected(&c).await.unwrap();
    // Established on both ends; the server's not accepted yet.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let s = server.connections();
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!((s[0].local, s[0].remote), (sa(B, 80), c.local_addr()));
    assert_eq!(s[0].state, State::Established);
    assert!(s[0].passive && s[0].queued);
    assert_eq!(server.listeners()[0].unaccepted, 1);
    let sc = accept(&l).await.unwrap();
    let s = server.connections();
    assert!(!s[0].queued);
    assert_eq!(server.listeners()[0].unaccepted, 0);
    let cl = client.connections();
    assert_eq!(cl[0].state, State::Established);
    assert!(!cl[0].passive);
    assert!(cl[0].stats.is_some());
    // The client closes first: its side ends in TIME_WAIT, the server's in
    // CLOSE_WAIT until it closes too.
    c.close();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(server.connections()[0].state, State::CloseWait);
    assert!(read_to_end(&sc).await.unwrap().is_empty());
    sc.close();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(
        server.connections().is_empty(),
        "{:?}",
        server.connections()
    );
    let cl = client.connections();
    assert_eq!(cl.len(), 1, "{cl:?}");
    assert_eq!(cl[0].state, State::TimeWait);
    assert!(cl[0].stats.is_none());
    let left = cl[0].time_wait_left.expect("time left");
    // 2·MSL (60 s by default) from entering TIME_WAIT, ~10 ms ago.
    assert!(
        left <= Duration::from_secs(60) && left > Duration::from_secs(59),
        "{left:?}"
    );
    tokio::time::sleep(Duration::from_secs(30)).await;
    let left2 = client.connections()[0].time_wait_left.unwrap();
    assert!(
        left - left2 >= Duration::from_secs(30),
        "{left:?} then {left2:?}"
    );
    drop(l);
    assert!(server.listeners().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_mib_counts_a_scripted_exchange_exactly() {
    let (net, a, b, client, server) = pair(21);
    let l = server.listen(sa(B, 80)).unwrap();
    // 1. A connection that carries 3 × 1,000 bytes each way, then closes.
    let c = client.connect_start(sa(B, 80)).unwrap();
    connected(&c).await.unwrap();
    let sc = accept(&l).await.unwrap();
    assert_eq!((client.mib().curr_estab, server.mib().curr_estab), (1, 1));
    let mut buf = vec![0u8; 4096];
    for i in 0..3u8 {
        write_all(&c, &[i; 1000]).await.unwrap();
        let mut got = 0;
        while got < 1000 {
            got += read_some(&sc, &mut buf).await.unwrap();
        }
        write_all(&sc, &[i; 1000]).await.unwrap();
        let mut got = 0;
        while got < 1000 {
            got += read_some(&c, &mut buf).await.unwrap();
        }
    }
    c.close();
    assert!(read_to_end(&sc).await.unwrap().is_empty());
    sc.close();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // 2. A connect to a closed port: refused.
    let r = client.connect_start(sa(B, 81)).unwrap();
    let e = connected(&r).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
    // 3. An established connection the client aborts (RST).
    let c2 = client.connect_start(sa(B, 80)).unwrap();
    connected(&c2).await.unwrap();
    let sc2 = accept(&l).await.unwrap();
    c2.abort();
    let e = read_some(&sc2, &mut buf).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    // 4. A TCP packet with a bad checksum, to the server.
    let mut bad = tcp_syn(sa(A, 999), sa(B, 80));
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    net.inject(&a, &b, Bytes::from(bad));
    tokio::time::sleep(Duration::from_millis(50)).await;

    let (cm, sm) = (client.mib(), server.mib());
    println!("client {cm:?}\nserver {sm:?}");
    assert_eq!((cm.active_opens, cm.passive_opens), (3, 0));
    assert_eq!((sm.active_opens, sm.passive_opens), (0, 2));
    assert_eq!(cm.attempt_fails, 1, "the refused connect");
    assert_eq!(sm.attempt_fails, 0);
    assert_eq!((cm.estab_resets, sm.estab_resets), (1, 1), "the abort");
    assert_eq!((cm.curr_estab, sm.curr_estab), (0, 0));
    assert_eq!(cm.retrans_segs + sm.retrans_segs, 0, "no loss here");
    // RSTs: the client's abort, the server's answer to the closed port.
    assert_eq!((cm.out_rsts, sm.out_rsts), (1, 1));
    // Every segment one side sent, the other received (one link, no
    // loss); the server received the bad one as well; the device saw the
    // same packets.
    assert_eq!(sm.in_segs, cm.out_segs + 1);
    assert_eq!(cm.in_segs, sm.out_segs);
    assert_eq!(b.stats().received, sm.in_segs);
    assert_eq!(a.stats().received, cm.in_segs);
    assert_eq!((sm.in_csum_errors, cm.in_csum_errors), (1, 0));
    let d = server.drops();
    assert_eq!((d.checksum, d.malformed), (1, 0), "{d:?}");
    assert_eq!(client.stats().tx_packets, cm.out_segs);
    assert_eq!(client.stats().tx_errors, 0);
}

/// A SYN from `from` to `to`, as the stack's codec emits it.
fn tcp_syn(from: SocketAddr, to: SocketAddr) -> Vec<u8> {
    use utcp_runtime::proto::wire::{self, TcpFlags, TcpRepr};
    let repr = TcpRepr {
        src_port: from.port(),
        dst_port: to.port(),
        seq: utcp_runtime::proto::SeqNum::new(1),
        ack: utcp_runtime::proto::SeqNum::new(0),
        flags: TcpFlags::SYN,
        window: 1000,
        urgent: 0,
        options: Default::default(),
    };
    let mut buf = bytes::BytesMut::new();
    wire::emit_ip_tcp(&mut buf, from.ip(), to.ip(), 64, &repr, &[]);
    buf.to_vec()
}

#[tokio::test(start_paused = true)]
async fn drops_are_counted_by_reason() {
    let (net, a, b, _client, server) = pair(31);
    let _l = server.listen(sa(B, 80)).unwrap();
    // An RST for no connection, a SYN|FIN for the listener, a packet for an
    // address that is not the server's.
    let rst = {
        let mut p = tcp_syn(sa(A, 1000), sa(B, 80));
        p[20 + 13] = utcp_runtime::proto::wire::TcpFlags::RST.0;
        refresh_tcp_checksum(&mut p);
        p
    };
    let syn_fin = {
        let mut p = tcp_syn(sa(A, 1001), sa(B, 80));
        p[20 + 13] |= utcp_runtime::proto::wire::TcpFlags::FIN.0;
        refresh_tcp_checksum(&mut p);
        p
    };
    for p in [rst, syn_fin, tcp_syn(sa(A, 1002), sa("10.1.0.9", 80))] {
        net.inject(&a, &b, Bytes::from(p));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let d = server.drops();
    assert_eq!(
        (d.unmatched_rst, d.syn_fin, d.not_local),
        (1, 1, 1),
        "{d:?}"
    );
    assert_eq!(server.stats().tx_packets, 0, "none of them was answered");
}

fn refresh_tcp_checksum(p: &mut [u8]) {
    use utcp_runtime::proto::wire::checksum::Checksum;
    let src = std::net::IpAddr::from([p[12], p[13], p[14], p[15]]);
    let dst = std::net::IpAddr::from([p[16], p[17], p[18], p[19]]);
    p[36..38].copy_from_slice(&[0, 0]);
    let mut c = Checksum::pseudo_header(src, dst, 6, (p.len() - 20) as u32);
    c.add_bytes(&p[20..]);
    let sum = c.finish();
    p[36..38].copy_from_slice(&sum.to_be_bytes());
}

/// A device over a simulated host that fails on demand, as a TUN device
/// deleted under a running stack does (its reads fail).
struct Failing {
    inner: SimDevice,
    failed: Arc<AtomicBool>,
}

impl Device for Failing {
    fn medium(&self) -> utcp_runtime::Medium {
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
        if self.failed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(io::Error::other("test0: read: device gone")));
        }
        // Polled again within a millisecond (virtual time), so a failure set
        // between packets is seen.
        let waker = cx.waker().clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            waker.wake();
        });
        self.inner.poll_recv(cx, out, max)
    }

    fn send(&self, packets: &[TxPacket<'_>]) -> io::Result<()> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(io::Error::other("test0: write: device gone"));
        }
        self.inner.send(packets)
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_device_ends_listeners_and_connections_with_network_down() {
    let (_net, _a, b, client, _) = pair(41);
    // A second stack on the server host's device, which fails on demand.
    let failed = Arc::new(AtomicBool::new(false));
    let dev = Failing {
        inner: b.clone(),
        failed: failed.clone(),
    };
    let server = Stack::with_addrs(
        dev,
        vec![B.parse().unwrap()],
        StackConfig {
            seed: Some(42),
            ..StackConfig::default()
        },
    );
    let l = server.listen(sa(B, 7)).unwrap();
    let c = client.connect_start(sa(B, 7)).unwrap();
    connected(&c).await.unwrap();
    let sc = accept(&l).await.unwrap();
    write_all(&c, b"ping").await.unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(read_some(&sc, &mut buf).await.unwrap(), 4);
    let start = tokio::time::Instant::now();
    failed.store(true, Ordering::SeqCst);
    // The stream and the listener end at once, naming the device's error.
    let e = read_some(&sc, &mut buf).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NetworkDown, "{e}");
    let e = accept(&l).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NetworkDown);
    assert!(e.to_string().contains("device gone"), "{e}");
    assert!(
        start.elapsed() < Duration::from_millis(50),
        "{:?}",
        start.elapsed()
    );
    // The RST of the reset connection could not go out: counted, and not
    // as sent.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let st = server.stats();
    assert!(st.tx_errors >= 1, "{st:?}");
    // New opens fail the same way.
    let e = server.connect_start(sa(A, 7)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NetworkDown);
    let e = server.listen(sa(B, 8)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NetworkDown);
    assert!(
        server.connections().is_empty()
            || server
                .connections()
                .iter()
                .all(|c| c.state == State::Closed)
    );
}
