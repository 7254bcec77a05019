//! Listener hardening (the listener issue): the SYN queue and the accept
//! queue, SYN cookies, and the connection limit, end to end on the
//! in-memory network in virtual time.

use std::net::SocketAddr;
use std::time::Duration;
use utcp::sim::LinkConfig;
use utcp::{StackConfig, StackExt, TcpListener};
use utcp_integration_tests::{CLIENT, Pair, SERVER};

/// Accepts forever, keeping every stream open; returns the count so far.
fn spawn_acceptor(
    l: TcpListener,
) -> (
    tokio::task::JoinHandle<()>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = n.clone();
    let h = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    (h, n)
}

/// `n` clients connect at once; returns (failures, SYN retransmissions,
/// virtual time until the last connected).
async fn burst(p: &Pair, addr: SocketAddr, n: usize) -> (usize, u64, Duration) {
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..n {
        let stack = p.client.clone();
        tasks.push(tokio::spawn(async move {
            let s = stack.connect(addr).await?;
            let at = tokio::time::Instant::now();
            Ok::<_, std::io::Error>((s, at))
        }));
    }
    let (mut failed, mut retrans, mut last) = (0, 0, Duration::ZERO);
    let mut held = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok((s, at)) => {
                retrans += s.stats().segments_retransmitted;
                last = last.max(at - start);
                held.push(s);
            }
            Err(_) => failed += 1,
        }
    }
    (failed, retrans, last)
}

fn link() -> LinkConfig {
    LinkConfig::default().delay(Duration::from_millis(2))
}

#[tokio::test(start_paused = true)]
async fn thousand_clients_at_once_all_connect_on_their_first_syn() {
    let p = Pair::new(151, link());
    let addr = p.server_addr(80);
    let (_acc, accepted) = spawn_acceptor(p.server.bind(addr).unwrap());
    let (failed, retrans, last) = burst(&p, addr, 1000).await;
    println!("1000 at once: {failed} failed, {retrans} SYN retransmissions, last after {last:?}");
    assert_eq!(failed, 0);
    assert_eq!(retrans, 0, "a SYN was retransmitted");
    assert!(wait(|| accepted.load(std::sync::atomic::Ordering::Relaxed) == 1000).await);
    let s = p.server.stats().listen;
    assert!(s.half_open_peak <= 4096);
    assert_eq!(s.accept_queue_syn_drops + s.syn_queue_drops, 0, "{s:?}");
}

#[tokio::test(start_paused = true)]
async fn two_thousand_clients_at_once_all_connect_within_three_seconds() {
    let p = Pair::new(152, link());
    let addr = p.server_addr(80);
    let (_acc, accepted) = spawn_acceptor(p.server.bind(addr).unwrap());
    let (failed, retrans, last) = burst(&p, addr, 2000).await;
    println!("2000 at once: {failed} failed, {retrans} retransmissions, last after {last:?}");
    assert_eq!(failed, 0);
    assert!(
        last <= Duration::from_secs(3),
        "the last connected after {last:?}"
    );
    let t0 = tokio::time::Instant::now();
    assert!(wait(|| accepted.load(std::sync::atomic::Ordering::Relaxed) == 2000).await);
    let s = p.server.stats().listen;
    println!("all accepted {:?} later; {s:?}", t0.elapsed());
    assert_eq!((s.half_open, s.unaccepted), (0, 0), "{s:?}");
}

/// A listener whose application does not accept: the accept queue fills to
/// the backlog, the final ACKs beyond it are dropped (counted) and those
/// connections stay half-open; once the application accepts, their SYN-ACK
/// retransmissions bring them in. None is lost.
#[tokio::test(start_paused = true)]
async fn full_accept_queue_holds_final_acks_back_until_accepted() {
    let p = Pair::new(153, link());
    let addr = p.server_addr(80);
    let l = p.server.bind_with_backlog(addr, 4).unwrap();
    let mut clients = Vec::new();
    for _ in 0..10 {
        let stack = p.client.clone();
        clients.push(tokio::spawn(async move { stack.connect(addr).await }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let s = p.server.stats().listen;
    assert_eq!(s.unaccepted, 4, "{s:?}");
    assert_eq!(s.half_open, 6, "{s:?}");
    assert!(s.accept_queue_ack_drops >= 6, "{s:?}");
    let mut got = Vec::new();
    while got.len() < 10 {
        let (st, _) = tokio::time::timeout(Duration::from_secs(30), l.accept())
            .await
            .expect("every connection is accepted in the end")
            .unwrap();
        got.push(st);
    }
    for c in clients {
        c.await.unwrap().unwrap();
    }
    let s = p.server.stats().listen;
    assert_eq!((s.half_open, s.unaccepted), (0, 0), "{s:?}");
}

/// Past `max_connections` a connect fails with `AddrNotAvailable` and the
/// listener drops SYNs, each counted; a connection that ends makes room.
#[tokio::test(start_paused = true)]
async fn connection_limit_refuses_connects_and_drops_syns() {
    let net = utcp::sim::SimNetwork::new(154);
    let a = net.add_host("client", &[CLIENT.parse().unwrap()]);
    let b = net.add_host("server", &[SERVER.parse().unwrap()]);
    net.link(&a, &b, link());
    let client = utcp::Stack::new(a, StackConfig::default());
    let mut cfg = StackConfig::default();
    cfg.endpoint.max_connections = 2;
    let server = utcp::Stack::new(b, cfg);
    let addr: SocketAddr = SocketAddr::new(SERVER.parse().unwrap(), 80);
    let (_acc, _n) = spawn_acceptor(server.bind(addr).unwrap());
    let _c1 = client.connect(addr).await.unwrap();
    let c2 = client.connect(addr).await.unwrap();
    // The server holds two: a third SYN is dropped (and retransmitted).
    let third = tokio::spawn({
        let client = client.clone();
        async move { client.connect(addr).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.stats().listen.connection_limit_syn_drops, 1);
    // The server's own connect is refused at the limit.
    let e = server
        .connect(SocketAddr::new(CLIENT.parse().unwrap(), 9))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrNotAvailable);
    assert_eq!(server.stats().listen.connection_limit_connects, 1);
    // One connection ends (reset: no TIME_WAIT record): room for the third.
    c2.abort();
    let c3 = tokio::time::timeout(Duration::from_secs(10), third).await;
    assert!(
        matches!(c3, Ok(Ok(Ok(_)))),
        "the third connects after its SYN retransmission"
    );
}

async fn wait(mut f: impl FnMut() -> bool) -> bool {
    utcp_integration_tests::wait_until(&mut f, Duration::from_secs(10)).await
}

/// A SYN queue far smaller than the burst: the SYNs beyond it get cookies,
/// every client connects on its first SYN, and the cookie connections carry
/// data both ways with window scaling, SACK and timestamps kept.
#[tokio::test(start_paused = true)]
async fn cookie_connections_connect_on_the_first_syn_and_echo() {
    let mut cfg = StackConfig::default();
    cfg.endpoint.syn_queue = 16;
    let p = Pair::with(155, link(), link(), cfg, &[CLIENT], &[SERVER]);
    let addr = p.server_addr(7);
    utcp_integration_tests::spawn_echo(p.server.bind(addr).unwrap());
    let mut tasks = Vec::new();
    for i in 0..300u64 {
        let stack = p.client.clone();
        tasks.push(tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = stack.connect(addr).await?;
            let st = s.stats();
            let data = utcp_integration_tests::pattern(100_000, i);
            s.write_all(&data).await?;
            s.shutdown().await?;
            let mut back = Vec::new();
            s.read_to_end(&mut back).await?;
            assert!(back == data, "client {i}: bytes differ");
            Ok::<_, std::io::Error>(st)
        }));
    }
    let mut first_syn = 0;
    for t in tasks {
        let st = t.await.unwrap().unwrap();
        assert_eq!(st.segments_retransmitted, 0, "a SYN was retransmitted");
        assert!(
            st.timestamps && st.sack && st.snd_wscale.is_some(),
            "{st:?}"
        );
        first_syn += 1;
    }
    let s = p.server.stats().listen;
    println!("{first_syn} connected on their first SYN; {s:?}");
    assert!(
        s.cookies_sent > 0 && s.cookies_validated == s.cookies_sent,
        "{s:?}"
    );
    assert!(s.half_open_peak <= 16, "{s:?}");
    assert_eq!(s.cookies_refused, 0);
}

/// The SYN rate one core sustains with cookies on, for BENCHMARKS.md (not
/// a pass/fail test; run in release): 200,000 spoofed SYNs are put on the
/// in-memory link at once, on a current-thread runtime in real time, and
/// the wall time until the server's device task has answered every one
/// (parse, checksum, route, cookie SYN-ACK emitted and sent) is measured.
#[tokio::test(flavor = "current_thread")]
#[ignore = "a measurement for BENCHMARKS.md: cargo test --release -p utcp-integration-tests --test main syn_rate -- --ignored --nocapture"]
async fn syn_rate_with_cookies() {
    use bytes::BytesMut;
    use utcp_proto::SeqNum;
    use utcp_proto::wire::{self, TcpFlags, TcpOptions, TcpRepr};
    let mut cfg = StackConfig::default();
    cfg.endpoint.syn_queue = 1;
    let p = Pair::with(
        156,
        LinkConfig::default(),
        LinkConfig::default(),
        cfg,
        &[CLIENT],
        &[SERVER],
    );
    let addr = p.server_addr(80);
    let _l = p.server.bind(addr).unwrap();
    const N: u32 = 200_000;
    let packets: Vec<bytes::Bytes> = (0..N)
        .map(|i| {
            let src = std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x0b00_0000 | i));
            let repr = TcpRepr {
                src_port: 1024 + (i % 60_000) as u16,
                dst_port: 80,
                seq: SeqNum::new(i.wrapping_mul(2_654_435_761)),
                ack: SeqNum::new(0),
                flags: TcpFlags::SYN,
                window: 65_535,
                urgent: 0,
                options: TcpOptions {
                    mss: Some(1460),
                    window_scale: Some(7),
                    sack_permitted: true,
                    timestamps: Some((i, 0)),
                    ..TcpOptions::default()
                },
            };
            let mut buf = BytesMut::new();
            wire::emit_ip_tcp(&mut buf, src, addr.ip(), 64, &repr, &[]);
            buf.freeze()
        })
        .collect();
    p.b.set_rx_queue_limit(usize::MAX);
    let start = std::time::Instant::now();
    for pkt in packets {
        p.net.inject(&p.a, &p.b, pkt);
    }
    let injected = start.elapsed();
    while p.server.stats().rx_packets < u64::from(N) {
        tokio::task::yield_now().await;
    }
    let took = start.elapsed();
    let s = p.server.stats();
    println!(
        "{N} SYNs in {took:?} (injecting took {injected:?}): {:.0} SYN/s; cookies sent {}",
        f64::from(N) / took.as_secs_f64(),
        s.listen.cookies_sent
    );
}

/// The stack-wide receive memory thresholds (Linux's `tcp_mem`): 16
/// clients each send 256 KiB to a server that reads nothing for 3 s, with
/// pressure at 256 KiB and the limit at 512 KiB. The memory held stays
/// within the limit (plus at most one connection's pass over it), the drops
/// are counted, and once the server reads, every byte arrives in order.
#[tokio::test(start_paused = true)]
async fn receive_memory_stays_under_the_stack_limit_and_every_byte_arrives() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let cfg = StackConfig {
        rcv_memory_pressure: 256 << 10,
        rcv_memory_limit: 512 << 10,
        ..StackConfig::default()
    };
    let p = Pair::with(157, link(), link(), cfg, &[CLIENT], &[SERVER]);
    let addr = p.server_addr(9);
    let l = p.server.bind(addr).unwrap();
    const N: u64 = 16;
    const SIZE: usize = 256 << 10;
    let mut clients = Vec::new();
    for i in 0..N {
        let stack = p.client.clone();
        clients.push(tokio::spawn(async move {
            let mut s = stack.connect(addr).await.unwrap();
            s.write_all(&utcp_integration_tests::pattern(SIZE, i))
                .await
                .unwrap();
            s.shutdown().await.unwrap();
            s
        }));
    }
    let mut accepted = Vec::new();
    for _ in 0..N {
        accepted.push(l.accept().await.unwrap().0);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let st = p.server.stats();
    println!(
        "while nobody reads: held {} B, peak {} B, pruned {} B, dropped {} B",
        st.rcv_memory, st.rcv_memory_peak, st.rcv_ooo_pruned, st.rcv_memory_drops
    );
    // Over the limit the device task drops data before it is queued, so
    // the peak crosses the limit by at most a segment or a connection's
    // last pass.
    assert!(st.rcv_memory_peak <= (512 << 10) + (64 << 10), "{st:?}");
    assert!(st.rcv_memory >= 256 << 10, "pressure was reached: {st:?}");
    assert!(st.rcv_memory_drops > 0, "{st:?}");
    let mut readers = Vec::new();
    for mut s in accepted {
        readers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            got
        }));
    }
    let mut all = Vec::new();
    for r in readers {
        all.push(r.await.unwrap());
    }
    // Each stream is one client's bytes, in order, whichever client it is.
    let mut expected: Vec<Vec<u8>> = (0..N)
        .map(|i| utcp_integration_tests::pattern(SIZE, i))
        .collect();
    for got in &all {
        let i = expected
            .iter()
            .position(|e| e == got)
            .expect("a stream's bytes are one client's, in order");
        expected.remove(i);
    }
    for c in clients {
        drop(c.await.unwrap());
    }
    let st = p.server.stats();
    println!(
        "after reading: held {} B, dropped {} B",
        st.rcv_memory, st.rcv_memory_drops
    );
    assert_eq!(st.rcv_memory, 0, "every charge was given back");
}

/// A cookie connection whose handshake-completing ACK is lost: the
/// client's first data segment is the cookie ACK; the server's endpoint
/// validates it and the runtime hands the whole segment to the new
/// connection, so the data is read without a retransmission.
#[tokio::test(start_paused = true)]
async fn cookie_ack_carrying_data_delivers_the_data() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use utcp::sim::FilterAction;
    use utcp_proto::wire;
    let mut cfg = StackConfig::default();
    cfg.endpoint.syn_queue = 1;
    let p = Pair::with(158, link(), link(), cfg, &[CLIENT], &[SERVER]);
    let addr = p.server_addr(80);
    let l = p.server.bind(addr).unwrap();
    // One spoofed SYN fills the SYN queue for good (its SYN-ACK goes
    // nowhere).
    let spoof = wire::TcpRepr {
        src_port: 999,
        dst_port: 80,
        seq: utcp_proto::SeqNum::new(1),
        ack: utcp_proto::SeqNum::new(0),
        flags: wire::TcpFlags::SYN,
        window: 65_535,
        urgent: 0,
        options: wire::TcpOptions::default(),
    };
    let mut buf = bytes::BytesMut::new();
    wire::emit_ip_tcp(
        &mut buf,
        "11.0.0.1".parse().unwrap(),
        addr.ip(),
        64,
        &spoof,
        &[],
    );
    p.net.inject(&p.a, &p.b, buf.freeze());
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(p.server.stats().listen.half_open, 1);
    // Drop the client's first pure ACK (the handshake's last segment).
    let dropped = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let d = dropped.clone();
    p.net.set_filter(&p.a, &p.b, move |pkt| {
        let Ok(s) = wire::parse_ip_tcp(pkt.data, false) else {
            return FilterAction::Pass;
        };
        let pure_ack = s.tcp.flags == wire::TcpFlags::ACK && s.payload.is_empty();
        if pure_ack && d.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            d.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return FilterAction::Drop;
        }
        FilterAction::Pass
    });
    let mut c = p.client.connect(addr).await.unwrap();
    c.write_all(b"hello").await.unwrap();
    let (mut s, _) = tokio::time::timeout(Duration::from_millis(100), l.accept())
        .await
        .expect("accepted from the data segment")
        .unwrap();
    let mut got = [0u8; 5];
    tokio::time::timeout(Duration::from_millis(100), s.read_exact(&mut got))
        .await
        .expect("the data came with the cookie ACK, not a retransmission")
        .unwrap();
    assert_eq!(&got, b"hello");
    assert_eq!(dropped.load(std::sync::atomic::Ordering::Relaxed), 1);
    let st = p.server.stats().listen;
    assert_eq!((st.cookies_sent, st.cookies_validated), (1, 1), "{st:?}");
    assert_eq!(c.stats().segments_retransmitted, 0);
}

// Accept-any with a verdict per SYN (`bind_any_with`): a tun2socks-style
// gateway connects upstream before it answers the client.

/// A client behind a gateway that takes every destination; `origin`
/// (10.0.0.3) sits behind the gateway on a link of `origin_delay` each way.
/// The client asks for [`PUBLIC`], which no host owns (the in-memory
/// network sends an owned address straight to its host), and the
/// gateway's upstream for it is the origin ([`upstream`]).
const PUBLIC: &str = "203.0.113.9";

fn upstream(asked: SocketAddr) -> SocketAddr {
    assert_eq!(asked.ip().to_string(), PUBLIC);
    SocketAddr::new("10.0.0.3".parse().unwrap(), asked.port())
}

struct Gateway {
    p: Pair,
    origin: utcp::Stack,
}

fn gateway(seed: u64, origin_delay: Duration) -> Gateway {
    let p = Pair::new(seed, link());
    p.net.set_default_route(&p.a, Some(&p.b));
    let o = p.net.add_host("origin", &["10.0.0.3".parse().unwrap()]);
    p.net
        .link(&p.b, &o, LinkConfig::default().delay(origin_delay));
    let origin = utcp::Stack::new(
        o,
        StackConfig {
            seed: Some(seed ^ 0xc),
            ..StackConfig::default()
        },
    );
    Gateway { p, origin }
}

#[tokio::test(start_paused = true)]
async fn accept_any_deferred_until_the_upstream_connect_succeeds() {
    // An upstream connect of 2 s: the client's SYN went again at 1 s.
    assert_eq!(
        through_a_deferring_gateway(161, Duration::from_secs(1)).await,
        1
    );
    // Of 3 s: at 1 s and 3 s (RFC 6298 backoff; the SYN-ACK arrives just
    // after the second).
    assert_eq!(
        through_a_deferring_gateway(167, Duration::from_millis(1_500)).await,
        2
    );
}

/// A client connects through a gateway whose hook defers each SYN until
/// its upstream connect to the origin (`origin_delay` each way) succeeded,
/// then relays; returns the client's SYN retransmissions.
async fn through_a_deferring_gateway(seed: u64, origin_delay: Duration) -> u64 {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use utcp::{SynInfo, Verdict};
    let g = gateway(seed, origin_delay);
    let origin_addr: SocketAddr = "10.0.0.3:9000".parse().unwrap();
    let _echo = utcp_integration_tests::spawn_echo(g.origin.bind(origin_addr).unwrap());
    let public: SocketAddr = format!("{PUBLIC}:9000").parse().unwrap();
    let asked = Arc::new(AtomicUsize::new(0));
    let upstreams: Arc<Mutex<HashMap<SocketAddr, utcp::TcpStream>>> = Arc::default();
    let server = g.p.server.clone();
    let (asked2, ups) = (asked.clone(), upstreams.clone());
    let l =
        g.p.server
            .bind_any_with(16, move |syn: &SynInfo| {
                asked2.fetch_add(1, Ordering::SeqCst);
                let pending = syn.defer();
                let (server, ups, to, from) = (
                    server.clone(),
                    ups.clone(),
                    upstream(syn.local_addr()),
                    syn.peer_addr(),
                );
                let p = pending.clone();
                tokio::spawn(async move {
                    match server.connect(to).await {
                        Ok(up) => {
                            ups.lock().unwrap().insert(from, up);
                            p.complete().unwrap();
                        }
                        Err(_) => p.reset().unwrap(),
                    }
                });
                Verdict::Defer(pending)
            })
            .unwrap();
    // The relay: each accepted stream joined to its upstream.
    let relay_ups = upstreams.clone();
    tokio::spawn(async move {
        while let Ok((mut s, peer)) = l.accept().await {
            let mut up = relay_ups
                .lock()
                .unwrap()
                .remove(&peer)
                .expect("its upstream");
            tokio::spawn(async move {
                let _ = tokio::io::copy_bidirectional(&mut s, &mut up).await;
            });
        }
    });
    let start = tokio::time::Instant::now();
    let mut c = g.p.client.connect(public).await.unwrap();
    let took = start.elapsed();
    let retransmitted = c.stats().segments_retransmitted;
    println!("connected after {took:?}, {retransmitted} SYN retransmissions");
    // Not before the upstream connect, and at once after it: the SYN-ACK
    // answers the first SYN; the retransmissions were absorbed, never
    // asked again.
    let upstream_rtt = origin_delay * 2;
    assert!(took >= upstream_rtt, "{took:?}");
    assert!(took < upstream_rtt + Duration::from_millis(100), "{took:?}");
    assert!(retransmitted >= 1);
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    let s = g.p.server.stats().listen;
    assert_eq!(s.pending_syn_retransmits, retransmitted, "{s:?}");
    assert_eq!((s.syns_asked, s.syns_deferred), (1, 1), "{s:?}");
    assert_eq!(
        c.local_addr().unwrap().ip(),
        CLIENT.parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(c.peer_addr().unwrap(), public);
    // Through the relay to the origin and back.
    let data = utcp_integration_tests::pattern(100_000, seed);
    c.write_all(&data).await.unwrap();
    let mut back = vec![0u8; data.len()];
    c.read_exact(&mut back).await.unwrap();
    assert!(back == data, "the echo through the relay differs");
    retransmitted
}

#[tokio::test(start_paused = true)]
async fn accept_any_deferred_and_refused_when_the_upstream_is_closed() {
    use utcp::{SynInfo, Verdict};
    let g = gateway(162, Duration::from_millis(10));
    let server = g.p.server.clone();
    let _l =
        g.p.server
            .bind_any_with(16, move |syn: &SynInfo| {
                let pending = syn.defer();
                let (server, to, p) = (server.clone(), upstream(syn.local_addr()), pending.clone());
                tokio::spawn(async move {
                    // Nothing listens there: the origin answers with an RST.
                    match server.connect(to).await {
                        Ok(_) => p.complete().unwrap(),
                        Err(_) => p.reset().unwrap(),
                    }
                });
                Verdict::Defer(pending)
            })
            .unwrap();
    let e =
        g.p.client
            .connect(format!("{PUBLIC}:9001").as_str())
            .await
            .expect_err("refused");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(g.p.server.stats().connections, 0);
    assert_eq!(g.p.server.stats().listen.verdict_resets, 1);
}

#[tokio::test(start_paused = true)]
async fn accept_any_reset_sends_an_rst_and_creates_nothing() {
    use utcp::{SynInfo, Verdict};
    let g = gateway(163, Duration::from_millis(10));
    let _l =
        g.p.server
            .bind_any_with(16, |_: &SynInfo| Verdict::Reset)
            .unwrap();
    let e =
        g.p.client
            .connect("198.51.100.1:80")
            .await
            .expect_err("reset");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    let s = g.p.server.stats();
    assert_eq!(s.resets_sent, 1);
    assert_eq!(s.tx_packets, 1, "the RST only");
    assert_eq!(s.connections, 0);
    assert_eq!((s.listen.verdict_resets, s.listen.half_open), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn accept_any_drop_sends_nothing_and_each_retransmission_is_asked() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use utcp::{SynInfo, Verdict};
    let g = gateway(164, Duration::from_millis(10));
    let asked = Arc::new(AtomicUsize::new(0));
    let a = asked.clone();
    let _l =
        g.p.server
            .bind_any_with(16, move |_: &SynInfo| {
                a.fetch_add(1, Ordering::SeqCst);
                Verdict::Drop
            })
            .unwrap();
    let client = g.p.client.clone();
    let r = tokio::time::timeout(
        Duration::from_millis(10_000),
        client.connect("198.51.100.1:80"),
    )
    .await;
    assert!(r.is_err(), "the connect ended: {r:?}");
    // SYNs at 0, 1, 3 and 7 s (RFC 6298 backoff), each asked, none answered.
    assert_eq!(asked.load(Ordering::SeqCst), 4);
    let s = g.p.server.stats();
    assert_eq!(s.tx_packets, 0, "the gateway sent something");
    assert_eq!(s.connections, 0);
    assert_eq!((s.listen.verdict_drops, s.listen.half_open), (4, 0));
}

#[tokio::test(start_paused = true)]
async fn accept_any_pending_syn_dropped_undecided_is_reset() {
    use utcp::{SynInfo, Verdict};
    let g = gateway(165, Duration::from_millis(10));
    // The hook defers but keeps no handle: nobody can decide the SYN.
    let _l =
        g.p.server
            .bind_any_with(16, |syn: &SynInfo| Verdict::Defer(syn.defer()))
            .unwrap();
    let start = tokio::time::Instant::now();
    let e =
        g.p.client
            .connect("198.51.100.1:80")
            .await
            .expect_err("reset");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(g.p.server.stats().listen.verdict_resets, 1);
}

#[tokio::test(start_paused = true)]
async fn accept_any_deferred_syn_without_a_decision_ends_with_its_budget() {
    use std::sync::{Arc, Mutex};
    use utcp::{PendingSyn, SynInfo, Verdict};
    let g = gateway(166, Duration::from_millis(10));
    let held: Arc<Mutex<Vec<PendingSyn>>> = Arc::default();
    let h = held.clone();
    let _l =
        g.p.server
            .bind_any_with(16, move |syn: &SynInfo| {
                let p = syn.defer();
                h.lock().unwrap().push(p.clone());
                Verdict::Defer(p)
            })
            .unwrap();
    let client = g.p.client.clone();
    let connect = tokio::spawn(async move { client.connect("198.51.100.1:80").await });
    tokio::time::sleep(Duration::from_secs(30)).await;
    let s = g.p.server.stats().listen;
    // One SYN holds its slot; its 4 retransmissions were absorbed.
    assert_eq!(
        (s.half_open, s.syns_deferred, s.pending_syn_retransmits),
        (1, 1, 4)
    );
    // 63 s after the SYN (its SYN-ACK budget) it is dropped, silently.
    tokio::time::sleep(Duration::from_millis(33_100)).await;
    let s = g.p.server.stats();
    assert_eq!(s.listen.deferred_expired, 1, "{:?}", s.listen);
    assert_eq!(s.tx_packets, 0);
    let first = held.lock().unwrap()[0].clone();
    let e = first.complete().expect_err("expired");
    assert_eq!(e.kind(), std::io::ErrorKind::NotConnected);
    connect.abort();
}
