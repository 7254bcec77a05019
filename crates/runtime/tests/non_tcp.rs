//! Packets that are not TCP (issue 18, point 1): the stack hands every
//! UDP, ICMP or other non-TCP packet to its non-TCP queue (checksums
//! complete), drops and counts them without one or when it is full, and
//! `Stack::send_ip` sends a complete IP packet out of the device. A UDP
//! echo through it: in memory (no root), and over TUN driven by a kernel
//! UDP socket with offloads on and off (root, a namespace).

mod common;

use std::future::poll_fn;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::task::Poll;
use std::time::Duration;
use utcp_proto::wire::checksum::{self, Checksum};
use utcp_runtime::sim::{LinkConfig, SimNetwork};
use utcp_runtime::{Device, RxPacket, Stack, StackConfig, TxPacket};

/// An IPv4 UDP packet from `src` to `dst`, checksums complete.
fn udp4(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src.ip(), dst.ip()) else {
        panic!("IPv4 only")
    };
    let udp_len = 8 + payload.len();
    let mut p = vec![0u8; 20 + udp_len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&((20 + udp_len) as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&s.octets());
    p[16..20].copy_from_slice(&d.octets());
    let c = checksum::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&src.port().to_be_bytes());
    p[22..24].copy_from_slice(&dst.port().to_be_bytes());
    p[24..26].copy_from_slice(&(udp_len as u16).to_be_bytes());
    p[28..].copy_from_slice(payload);
    let mut sum = Checksum::pseudo_header(src.ip(), dst.ip(), 17, udp_len as u32);
    sum.add_bytes(&p[20..]);
    let u = match sum.finish() {
        0 => 0xffff,
        v => v,
    };
    p[26..28].copy_from_slice(&u.to_be_bytes());
    p
}

/// Parses an IPv4 UDP packet (checksums verified): source, destination,
/// payload.
fn parse_udp4(p: &[u8]) -> (SocketAddr, SocketAddr, Vec<u8>) {
    assert_eq!(p[0], 0x45, "IPv4 without options");
    assert_eq!(p[9], 17, "UDP");
    assert!(checksum::verify(&p[..20]), "IP header checksum");
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    let udp_len = usize::from(u16::from_be_bytes([p[24], p[25]]));
    let mut sum = Checksum::pseudo_header(src.into(), dst.into(), 17, udp_len as u32);
    sum.add_bytes(&p[20..20 + udp_len]);
    assert!(sum.is_valid(), "UDP checksum complete and right");
    let sp = u16::from_be_bytes([p[20], p[21]]);
    let dp = u16::from_be_bytes([p[22], p[23]]);
    (
        SocketAddr::new(src.into(), sp),
        SocketAddr::new(dst.into(), dp),
        p[28..20 + udp_len].to_vec(),
    )
}

/// Answers every UDP packet of the non-TCP queue with its payload back,
/// until the queue ends or `count` were answered.
async fn udp_echo(stack: &Stack, mut rx: tokio::sync::mpsc::Receiver<bytes::Bytes>, count: usize) {
    let mut answered = 0;
    while answered < count {
        let Some(p) = rx.recv().await else { return };
        if p.first() != Some(&0x45) || p.get(9) != Some(&17) {
            // Not IPv4 UDP: the kernel's own IPv6 router solicitations and
            // MLD reports over the TUN.
            continue;
        }
        answered += 1;
        let (from, to, payload) = parse_udp4(&p);
        stack.send_ip(&udp4(to, from, &payload)).expect("send_ip");
    }
}

const A: &str = "10.0.0.1";
const B: &str = "10.0.0.2";

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// In memory: a bare host sends UDP datagrams to a stack's address; the
/// stack's application echoes them through `send_ip`; every one returns.
#[tokio::test(start_paused = true)]
async fn udp_echo_through_the_non_tcp_queue_in_memory() {
    let net = SimNetwork::new(7);
    let a = net.add_host("a", &[A.parse().unwrap()]);
    let b = net.add_host("b", &[B.parse().unwrap()]);
    net.link(
        &a,
        &b,
        LinkConfig::default().delay(Duration::from_millis(1)),
    );
    let stack = Stack::new(
        a,
        StackConfig {
            non_tcp_queue: 16,
            ..StackConfig::default()
        },
    );
    let rx = stack.take_ip_receiver().expect("a queue");
    let s2 = Stack::clone(&stack);
    let echo = tokio::spawn(async move { udp_echo(&s2, rx, 10).await });
    for i in 0..10u8 {
        let msg = vec![i; 100 + usize::from(i)];
        let p = udp4(sa(B, 5000), sa(A, 53), &msg);
        b.send(&[TxPacket {
            header: &p,
            payload: &[],
            payload_tail: &[],
            meta: Default::default(),
        }])
        .unwrap();
        let mut got: Vec<RxPacket> = Vec::new();
        tokio::time::timeout(
            Duration::from_secs(1),
            poll_fn(|cx| match b.poll_recv(cx, &mut got, 1) {
                Poll::Ready(r) => Poll::Ready(r),
                Poll::Pending => Poll::Pending,
            }),
        )
        .await
        .expect("the echo came back")
        .unwrap();
        let (from, to, payload) = parse_udp4(&got[0].data);
        assert_eq!((from, to), (sa(A, 53), sa(B, 5000)));
        assert_eq!(payload, msg);
    }
    echo.await.unwrap();
    let st = stack.stats();
    assert_eq!(
        (st.rx_non_tcp, st.rx_non_tcp_dropped, st.rx_malformed),
        (10, 0, 0),
        "{st:?}"
    );
}

/// Without a queue, or with a full one, packets that are not TCP are
/// dropped and counted as such (not as malformed TCP); `send_ip` refuses
/// what is not a whole IP packet of at most the MTU.
#[tokio::test(start_paused = true)]
async fn non_tcp_packets_without_room_are_dropped_and_counted() {
    for queue in [0usize, 2] {
        let net = SimNetwork::new(8);
        let a = net.add_host("a", &[A.parse().unwrap()]);
        let b = net.add_host("b", &[B.parse().unwrap()]);
        net.link(&a, &b, LinkConfig::default());
        let stack = Stack::new(
            a,
            StackConfig {
                non_tcp_queue: queue,
                ..StackConfig::default()
            },
        );
        let _rx = stack.take_ip_receiver(); // held, never read
        for _ in 0..5 {
            let p = udp4(sa(B, 5000), sa(A, 53), b"x");
            b.send(&[TxPacket {
                header: &p,
                payload: &[],
                payload_tail: &[],
                meta: Default::default(),
            }])
            .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let st = stack.stats();
        assert_eq!(st.rx_non_tcp, queue as u64, "queue {queue}: {st:?}");
        assert_eq!(
            st.rx_non_tcp_dropped,
            5 - queue as u64,
            "queue {queue}: {st:?}"
        );
        assert_eq!(st.rx_malformed, 0, "{st:?}");
        let kind = |r: std::io::Result<()>| r.unwrap_err().kind();
        assert_eq!(kind(stack.send_ip(b"")), std::io::ErrorKind::InvalidInput);
        let mut short = udp4(sa(A, 53), sa(B, 5000), b"abc");
        short.pop();
        assert_eq!(
            kind(stack.send_ip(&short)),
            std::io::ErrorKind::InvalidInput
        );
        let big = udp4(sa(A, 53), sa(B, 5000), &[0; 2000]);
        assert_eq!(kind(stack.send_ip(&big)), std::io::ErrorKind::InvalidInput);
    }
}

/// Over TUN, a kernel UDP socket's datagrams reach the non-TCP queue
/// (with offloads on, their partial checksums completed) and the echo
/// through `send_ip` reaches the socket.
#[test]
fn udp_echo_through_the_non_tcp_queue_over_tun() {
    let Some(ns) = common::tun_netns_or_skip("udp_echo_through_the_non_tcp_queue_over_tun", "udp")
    else {
        return;
    };
    for offload in [true, false] {
        ns.run(|| udp_over_tun(offload));
    }
}

fn udp_over_tun(offload: bool) {
    use utcp_runtime::device::tun::{TunConfig, TunDevice};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stack_ip: IpAddr = "10.97.0.2".parse().unwrap();
        let kernel_ip: IpAddr = "10.97.0.1".parse().unwrap();
        let dev = TunDevice::open(TunConfig {
            kernel_addr: Some((kernel_ip, 24)),
            offload,
            ..TunConfig::new("uudp0", vec![stack_ip])
        })
        .expect("open the TUN");
        assert_eq!(dev.offload().is_on(), offload, "{}", dev.offload());
        let stack = Stack::with_addrs(
            dev,
            vec![stack_ip],
            StackConfig {
                non_tcp_queue: 64,
                ..StackConfig::default()
            },
        );
        let rx = stack.take_ip_receiver().unwrap();
        let s2 = Stack::clone(&stack);
        let echo = tokio::spawn(async move { udp_echo(&s2, rx, usize::MAX).await });
        let sock = tokio::net::UdpSocket::bind(SocketAddr::new(kernel_ip, 0))
            .await
            .expect("a kernel UDP socket");
        let mut buf = vec![0u8; 2048];
        for i in 0..20usize {
            let msg: Vec<u8> = (0..(1 + i * 70)).map(|j| (j * 31 + i) as u8).collect();
            sock.send_to(&msg, SocketAddr::new(stack_ip, 53))
                .await
                .unwrap();
            let (n, from) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
                .await
                .expect("the echo came back")
                .unwrap();
            assert_eq!(from, SocketAddr::new(stack_ip, 53));
            assert_eq!(&buf[..n], &msg[..], "datagram {i}, offload {offload}");
        }
        let st = stack.stats();
        assert!(st.rx_non_tcp >= 20, "{st:?}");
        assert_eq!(st.rx_malformed, 0, "{st:?}");
        echo.abort();
        stack.shutdown(Duration::from_millis(100)).await;
    });
}

/// An ICMPv4 destination-unreachable from `router` to `to`, quoting the
/// first 28 bytes of `quoted` (its IP header and 8 bytes of TCP).
fn icmp_unreachable(router: Ipv4Addr, to: Ipv4Addr, code: u8, quoted: &[u8]) -> Vec<u8> {
    let mut m = vec![3, code, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&quoted[..28]);
    let c = checksum::checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 1, 0, 0];
    p.extend_from_slice(&router.octets());
    p.extend_from_slice(&to.octets());
    p[2..4].copy_from_slice(&((20 + m.len()) as u16).to_be_bytes());
    let c = checksum::checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&m);
    p
}

/// On an established connection (in memory), an ICMP unreachable quoting
/// a segment in flight is recorded as a soft error and the transfer goes
/// on to the end; one quoting a sequence number outside SND.UNA..SND.NXT
/// is ignored and counted (RFC 5927). Neither ends the connection.
#[tokio::test(start_paused = true)]
async fn icmp_unreachable_on_an_established_connection_is_soft() {
    use std::sync::{Arc, Mutex};
    let net = SimNetwork::new(9);
    let a = net.add_host("a", &[A.parse().unwrap()]);
    let b = net.add_host("b", &[B.parse().unwrap()]);
    net.link(
        &a,
        &b,
        LinkConfig::default().delay(Duration::from_millis(5)),
    );
    // The last data segment a sent, as the wire carried it.
    let last: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
    let l2 = last.clone();
    net.set_filter(&a, &b, move |p| {
        if p.data.len() > 60 {
            *l2.lock().unwrap() = Some(p.data.to_vec());
        }
        utcp_runtime::sim::FilterAction::Pass
    });
    let (sa_, sb) = (
        Stack::new(a.clone(), StackConfig::default()),
        Stack::new(b.clone(), StackConfig::default()),
    );
    let listener = sb.listen(sa(B, 9)).unwrap();
    let client = sa_.connect_start(sa(B, 9)).unwrap();
    poll_fn(|cx| client.poll_connected(cx)).await.unwrap();
    let server = poll_fn(|cx| listener.poll_accept(cx)).await.unwrap();
    // The reader runs beside the writer (the transfer is larger than the
    // buffers).
    let reader = tokio::spawn(async move { common::read_to_end(&server).await.unwrap().len() });
    let data = vec![7u8; 2 << 20];
    let mut off = 0;
    let mut injected = false;
    while off < data.len() {
        let n = poll_fn(|cx| client.poll_write(cx, &data[off..]))
            .await
            .unwrap();
        off += n;
        let quoted = last.lock().unwrap().clone();
        if !injected
            && off > data.len() / 4
            && let Some(q) = quoted
        {
            let router = Ipv4Addr::new(10, 0, 0, 254);
            let us = Ipv4Addr::new(10, 0, 0, 1);
            // In flight: taken, soft.
            net.inject(&b, &a, icmp_unreachable(router, us, 1, &q).into());
            // A sequence number far outside the window: ignored.
            let mut far = q.clone();
            far[24] ^= 0x80;
            net.inject(&b, &a, icmp_unreachable(router, us, 1, &far).into());
            injected = true;
        }
    }
    client.shutdown_write().unwrap();
    let got = tokio::time::timeout(Duration::from_secs(600), reader)
        .await
        .expect("the transfer ends (virtual time)")
        .unwrap();
    assert!(injected);
    assert_eq!(got, data.len(), "the transfer went on to the end");
    let st = client.stats();
    assert_eq!((st.icmp_errors, st.icmp_ignored), (1, 1), "{st:?}");
    assert_eq!(sa_.stats().rx_icmp, 2);
    assert!(
        client.take_error().is_none(),
        "a soft error is not reported"
    );
}

/// Over TUN: a connect toward a prefix the kernel routes as `unreachable`
/// (forwarding on) fails with `HostUnreachable` from the kernel's ICMP
/// error, not `TimedOut` (the bound only catches a hang).
#[test]
fn connect_toward_an_unreachable_route_fails_host_unreachable() {
    let test = "connect_toward_an_unreachable_route_fails_host_unreachable";
    if !utcp_testenv::require(
        test,
        &[
            utcp_testenv::Need::Tool("ip"),
            utcp_testenv::Need::Tool("sysctl"),
        ],
    ) {
        return;
    }
    let Some(ns) = common::tun_netns_or_skip(test, "unreach") else {
        return;
    };
    ns.run(|| {
        use utcp_runtime::device::tun::{TunConfig, TunDevice};
        let run = |args: &[&str]| {
            let out = std::process::Command::new(args[0])
                .args(&args[1..])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        run(&["ip", "route", "add", "unreachable", "10.93.0.0/24"]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let stack_ip: IpAddr = "10.94.0.2".parse().unwrap();
            let dev = TunDevice::open(TunConfig {
                kernel_addr: Some(("10.94.0.1".parse().unwrap(), 24)),
                ..TunConfig::new("uunr0", vec![stack_ip])
            })
            .expect("open the TUN");
            let stack = Stack::with_addrs(dev, vec![stack_ip], StackConfig::default());
            let conn = stack
                .connect_start("10.93.0.5:80".parse().unwrap())
                .unwrap();
            let r = tokio::time::timeout(
                Duration::from_secs(30),
                poll_fn(|cx| conn.poll_connected(cx)),
            )
            .await
            .expect("the connect ended (no hang)");
            let e = r.expect_err("nothing answers there");
            assert_eq!(e.kind(), std::io::ErrorKind::HostUnreachable, "{e}");
            let st = conn.stats();
            assert_eq!(st.icmp_errors, 1, "{st:?}");
            assert_eq!(
                st.rto_count, 0,
                "failed at the ICMP error, before any retransmission"
            );
            stack.shutdown(Duration::from_millis(100)).await;
        });
    });
}

/// Path MTU discovery over a real path (RFC 1191): utcp on a TUN whose
/// kernel side routes (forwarding on) to a peer namespace over a veth
/// whose router end has MTU 1280 (the peer's end 1500, so the peer offers
/// MSS 1460). utcp's first full segments (1,500-byte packets, DF set, in
/// super-segments when offloads are on) meet the smaller link; the router
/// answers "fragmentation needed" with MTU 1280; the MSS drops from 1,448
/// (1,460 less the timestamps option) to 1,228 and 4 MiB arrive
/// byte-exact at a kernel sink.
#[test]
fn path_mtu_discovery_through_a_1280_byte_link() {
    let test = "path_mtu_discovery_through_a_1280_byte_link";
    if !utcp_testenv::require(test, &[utcp_testenv::Need::Tool("sysctl")]) {
        return;
    }
    let Some(router) = common::tun_netns_or_skip(test, "pmtu") else {
        return;
    };
    let peer = common::Netns::new("pmtupeer")
        .unwrap_or_else(|e| panic!("{test}: cannot create a network namespace: {e}"));
    router.ip(&["link", "add", "va", "type", "veth", "peer", "name", "vb"]);
    router.ip(&["link", "set", "vb", "netns", peer.name()]);
    router.ip(&["addr", "add", "10.92.0.1/24", "dev", "va"]);
    router.ip(&["link", "set", "va", "mtu", "1280", "up"]);
    peer.ip(&["addr", "add", "10.92.0.2/24", "dev", "vb"]);
    // The peer's end keeps MTU 1,500: it offers MSS 1,460, and only the
    // router's side of the link is smaller (a bottleneck in the middle).
    peer.ip(&["link", "set", "vb", "up"]);
    peer.ip(&["link", "set", "lo", "up"]);
    peer.ip(&["route", "add", "10.91.0.0/24", "via", "10.92.0.1"]);
    let bytes = 4usize << 20;
    let data: Vec<u8> = (0..bytes).map(|i| (i * 13 % 251) as u8).collect();
    let expect = data.clone();
    // The kernel sink, in the peer's namespace.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let sink = std::thread::scope(|s| {
        let sink = s.spawn(|| {
            peer.run(|| {
                use std::io::Read;
                let l = std::net::TcpListener::bind("10.92.0.2:9").expect("the peer listens");
                ready_tx.send(()).unwrap();
                let (mut c, _) = l.accept().expect("accept");
                c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let mut got = Vec::new();
                c.read_to_end(&mut got).expect("read");
                got
            })
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the sink started");
        router.run(|| {
            use utcp_runtime::device::tun::{TunConfig, TunDevice};
            let out = std::process::Command::new("sysctl")
                .args(["-qw", "net.ipv4.ip_forward=1"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let stack_ip: IpAddr = "10.91.0.2".parse().unwrap();
                let dev = TunDevice::open(TunConfig {
                    kernel_addr: Some(("10.91.0.1".parse().unwrap(), 24)),
                    ..TunConfig::new("upmtu0", vec![stack_ip])
                })
                .expect("open the TUN");
                let stack = Stack::with_addrs(dev, vec![stack_ip], StackConfig::default());
                let conn = stack.connect_start("10.92.0.2:9".parse().unwrap()).unwrap();
                tokio::time::timeout(
                    Duration::from_secs(10),
                    poll_fn(|cx| conn.poll_connected(cx)),
                )
                .await
                .expect("connected in time")
                .expect("connected");
                let before = conn.stats().mss;
                assert_eq!(before, 1448, "the MSS the TUN's MTU gives, less timestamps");
                tokio::time::timeout(Duration::from_secs(60), async {
                    common::write_all(&conn, &data).await.expect("write");
                    conn.shutdown_write().unwrap();
                    // Until the sink's FIN: everything was acknowledged.
                    common::read_to_end(&conn).await.expect("read");
                })
                .await
                .expect("the transfer finished in time");
                let st = conn.stats();
                println!(
                    "{test}: MSS {before} → {}, {} ICMP errors, lowered {} times",
                    st.mss, st.icmp_errors, st.pmtu_lowered
                );
                assert!(st.mss <= 1240, "{st:?}");
                assert_eq!(st.mss, 1228, "1,280 − 40 − 12 (timestamps)");
                assert!(st.icmp_errors > 0 && st.pmtu_lowered >= 1, "{st:?}");
                assert!(stack.stats().rx_icmp > 0);
                stack.shutdown(Duration::from_millis(200)).await;
            });
        });
        sink.join().unwrap()
    });
    assert_eq!(sink.len(), expect.len(), "every byte arrived");
    assert!(sink == expect, "byte-exact");
}

/// A raw IPv4 socket of `protocol` in the calling thread's namespace:
/// `IPPROTO_RAW` sends whole IP packets, `IPPROTO_TCP` receives a copy of
/// every TCP packet delivered to the host.
fn raw4(protocol: libc::c_int) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: socket(2) with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, protocol) };
    assert!(
        fd >= 0,
        "raw socket {protocol}: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `fd` is a new descriptor nothing else owns.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

/// Sends the whole IPv4 packet `p` from an `IPPROTO_RAW` socket: the
/// kernel routes it by its destination.
fn send_raw(fd: &std::os::fd::OwnedFd, p: &[u8]) {
    use std::os::fd::AsRawFd;
    let to = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes([p[16], p[17], p[18], p[19]]),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sendto with a buffer and a sockaddr_in of the lengths given.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            p.as_ptr().cast(),
            p.len(),
            0,
            (&to as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(
        n,
        p.len() as isize,
        "sendto: {}",
        std::io::Error::last_os_error()
    );
}

/// The first TCP segment carrying data from `from` that the raw
/// `IPPROTO_TCP` socket `fd` received (opened before it was sent), within
/// `within`: its IP header and TCP header, enough to quote.
async fn captured_data_segment(
    fd: &std::os::fd::OwnedFd,
    from: SocketAddr,
    within: Duration,
) -> Vec<u8> {
    use std::os::fd::AsRawFd;
    let IpAddr::V4(ip) = from.ip() else {
        panic!("IPv4 only")
    };
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no data segment from {from} within {within:?}"
        );
        // SAFETY: recv into a buffer of the length given.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        let Ok(n) = usize::try_from(n) else {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        };
        let p = &buf[..n];
        if p.len() < 40 || p[0] >> 4 != 4 || p[9] != 6 || p[12..16] != ip.octets() {
            continue;
        }
        let t = &p[usize::from(p[0] & 0x0f) * 4..];
        let doff = usize::from(t[12] >> 4) * 4;
        if u16::from_be_bytes([t[0], t[1]]) == from.port() && t.len() > doff {
            return p[..p.len() - t.len() + doff].to_vec();
        }
    }
}

/// Waits (bounded) until `done` holds.
async fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Reads exactly `n` bytes from a connection (bounded).
async fn read_n(c: &utcp_runtime::ConnRef, n: usize) -> Vec<u8> {
    let mut got = vec![0u8; n];
    let mut off = 0;
    tokio::time::timeout(Duration::from_secs(30), async {
        while off < n {
            let k = common::read_some(c, &mut got[off..]).await.expect("read");
            assert_ne!(k, 0, "EOF after {off} of {n} bytes");
            off += k;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{off} of {n} bytes read in 30 s"));
    got
}

/// Writes `data` to the kernel echo server and reads it back, byte-exact.
async fn echo_round(c: &utcp_runtime::ConnRef, data: &[u8]) {
    let (w, got) = tokio::join!(common::write_all(c, data), read_n(c, data.len()));
    w.expect("write");
    assert!(got == data, "the echo is byte-exact");
}

/// A kernel TCP echo server: accepts one connection (within 10 s), hands a
/// clone of it to `tx` (to shut it down), echoes until EOF or an error;
/// the bytes echoed.
fn kernel_echo(
    l: std::net::TcpListener,
    tx: std::sync::mpsc::Sender<std::net::TcpStream>,
) -> usize {
    use std::io::{Read, Write};
    l.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut c = loop {
        match l.accept() {
            Ok((c, _)) => break c,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("the echo server's accept: {e}"),
        }
    };
    c.set_nonblocking(false).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
    tx.send(c.try_clone().unwrap()).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut echoed = 0;
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return echoed,
            Ok(n) => {
                if c.write_all(&buf[..n]).is_err() {
                    return echoed;
                }
                echoed += n;
            }
        }
    }
}

/// Over TUN, utcp's client and a kernel echo server in the namespace. On
/// the established connection, with the kernel's TCP toward utcp
/// blackholed (a policy rule: utcp's data stays in flight), an ICMP host
/// unreachable from the kernel side (a raw socket) quoting a segment in
/// flight is taken as a soft error, and one quoting a sequence number
/// outside SND.UNA..SND.MAX is ignored; both are counted. Rule removed,
/// the connection goes on and echoes byte-exact. Blackholed again with a
/// 2 s user timeout, after another such ICMP error the connection fails
/// with `HostUnreachable` (the soft error), not `TimedOut`.
#[test]
fn icmp_unreachable_over_tun_is_soft_and_reported_at_the_timeout() {
    let test = "icmp_unreachable_over_tun_is_soft_and_reported_at_the_timeout";
    if !utcp_testenv::require(test, &[utcp_testenv::Need::Cap(utcp_testenv::Cap::NetRaw)]) {
        return;
    }
    let Some(ns) = common::tun_netns_or_skip(test, "icmpsoft") else {
        return;
    };
    // The kernel's TCP toward utcp is blackholed (its ACKs and data
    // dropped at routing: utcp hears nothing) while ICMP from the raw
    // socket still routes over the TUN.
    let silence = [
        "rule",
        "add",
        "pref",
        "100",
        "to",
        "10.89.0.2",
        "ipproto",
        "tcp",
        "blackhole",
    ];
    let speak = ["rule", "del", "pref", "100"];
    ns.run(|| {
        use utcp_runtime::device::tun::{TunConfig, TunDevice};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let stack_ip = Ipv4Addr::new(10, 89, 0, 2);
            let kernel_ip = Ipv4Addr::new(10, 89, 0, 1);
            let dev = TunDevice::open(TunConfig {
                kernel_addr: Some((kernel_ip.into(), 24)),
                ..TunConfig::new("uicmp0", vec![stack_ip.into()])
            })
            .expect("open the TUN");
            let stack = Stack::with_addrs(dev, vec![stack_ip.into()], StackConfig::default());
            let l = std::net::TcpListener::bind((kernel_ip, 7)).expect("the kernel listens");
            let (tx, rx) = std::sync::mpsc::channel();
            let server = std::thread::spawn(move || kernel_echo(l, tx));
            let conn = stack
                .connect_start(SocketAddr::new(kernel_ip.into(), 7))
                .unwrap();
            tokio::time::timeout(
                Duration::from_secs(10),
                poll_fn(|cx| conn.poll_connected(cx)),
            )
            .await
            .expect("connected in time")
            .expect("connected");
            let server_side = rx
                .recv_timeout(Duration::from_secs(10))
                .expect("the server accepted");
            let local = conn.local_addr();
            let pattern =
                |n: usize, k: usize| -> Vec<u8> { (0..n).map(|i| (i * k % 251) as u8).collect() };

            // Established: an echo round trip, everything acknowledged.
            echo_round(&conn, &pattern(256 << 10, 7)).await;
            wait_until("all acknowledged", Duration::from_secs(5), || {
                conn.stats().unacked == 0
            })
            .await;

            // The peer goes silent; data in flight; the ICMP errors.
            let icmp_tx = raw4(libc::IPPROTO_RAW);
            let cap = raw4(libc::IPPROTO_TCP);
            ns.ip(&silence);
            let d1 = pattern(4000, 11);
            common::write_all(&conn, &d1).await.unwrap();
            let seg = captured_data_segment(&cap, local, Duration::from_secs(5)).await;
            drop(cap);
            let seq = u32::from_be_bytes([seg[24], seg[25], seg[26], seg[27]]);
            let st = conn.stats();
            assert!(st.unacked > 0, "data in flight: {st:?}");
            assert_eq!((st.icmp_errors, st.icmp_ignored), (0, 0), "{st:?}");
            send_raw(&icmp_tx, &icmp_unreachable(kernel_ip, stack_ip, 1, &seg));
            wait_until("the in-window ICMP taken", Duration::from_secs(5), || {
                conn.stats().icmp_errors == 1
            })
            .await;
            let mut far = seg.clone();
            far[24] ^= 0x80; // SEQ + 2^31: outside SND.UNA..SND.MAX
            send_raw(&icmp_tx, &icmp_unreachable(kernel_ip, stack_ip, 1, &far));
            wait_until("the out-of-window ICMP ignored", Duration::from_secs(5), || {
                conn.stats().icmp_ignored == 1
            })
            .await;
            let st = conn.stats();
            let rx_icmp = stack.stats().rx_icmp;
            println!(
                "{test}: quoted SEQ {seq} (and {}), {} bytes unacknowledged: icmp_errors {}, icmp_ignored {}, rx_icmp {rx_icmp}",
                seq ^ 0x8000_0000,
                st.unacked,
                st.icmp_errors,
                st.icmp_ignored
            );
            assert_eq!((st.icmp_errors, st.icmp_ignored), (1, 1), "{st:?}");
            assert!(st.unacked > 0, "still in flight: {st:?}");
            assert_eq!(rx_icmp, 2, "both ICMP errors reached the connection");
            assert_eq!(conn.state(), utcp_runtime::proto::State::Established);
            assert!(conn.take_error().is_none(), "a soft error is not reported");

            // The peer speaks again: the connection goes on, byte-exact
            // both ways.
            ns.ip(&speak);
            assert!(read_n(&conn, d1.len()).await == d1, "the echo of the data in flight");
            echo_round(&conn, &pattern(256 << 10, 13)).await;
            wait_until("all acknowledged", Duration::from_secs(5), || {
                conn.stats().unacked == 0
            })
            .await;
            assert_eq!(conn.state(), utcp_runtime::proto::State::Established);
            assert!(conn.take_error().is_none());

            // Silent again, a short user timeout, another soft error: the
            // timeout reports it.
            conn.set_user_timeout(Some(Duration::from_secs(2))).unwrap();
            let cap = raw4(libc::IPPROTO_TCP);
            ns.ip(&silence);
            let t0 = std::time::Instant::now();
            common::write_all(&conn, &pattern(3000, 17)).await.unwrap();
            let seg = captured_data_segment(&cap, local, Duration::from_secs(1)).await;
            drop(cap);
            send_raw(&icmp_tx, &icmp_unreachable(kernel_ip, stack_ip, 1, &seg));
            wait_until("the second in-window ICMP taken", Duration::from_secs(1), || {
                conn.stats().icmp_errors == 2
            })
            .await;
            let mut buf = [0u8; 64];
            let r = tokio::time::timeout(Duration::from_secs(20), common::read_some(&conn, &mut buf))
                .await
                .expect("the connection ended (no hang)");
            let took = t0.elapsed();
            let e = r.expect_err("the peer is silent: the user timeout ends it");
            let st = conn.stats();
            println!(
                "{test}: after {took:?} (user timeout 2 s, {} RTOs): {:?} \"{e}\"; icmp_errors {}, icmp_ignored {}, rx_icmp {}",
                st.rto_count,
                e.kind(),
                st.icmp_errors,
                st.icmp_ignored,
                stack.stats().rx_icmp
            );
            assert_eq!(e.kind(), std::io::ErrorKind::HostUnreachable, "{e}");
            assert!(
                took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
                "at the user timeout: {took:?}"
            );
            assert_eq!((st.icmp_errors, st.icmp_ignored), (2, 1), "{st:?}");
            assert_eq!(conn.state(), utcp_runtime::proto::State::Closed);
            assert!(conn.take_error().is_none(), "reported once");

            server_side.shutdown(std::net::Shutdown::Both).unwrap();
            let echoed = server.join().unwrap();
            assert!(echoed >= (512 << 10) + d1.len(), "{echoed}");
            stack.shutdown(Duration::from_millis(200)).await;
        });
    });
}
