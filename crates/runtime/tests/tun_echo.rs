//! TUN device against the Linux kernel, inside network namespaces the tests
//! create (DESIGN.md's test network rules: unique names, deleted on drop also
//! when a test fails, nothing touched in the root namespace, every loop
//! bounded).
//!
//! Each test creates a namespace, opens the TUN on a thread that entered it
//! (a TUN belongs to the namespace of the thread that creates it), runs a
//! utcp echo server on it and echoes 1 MiB through a kernel TCP socket made
//! on that same thread. The echo tests run with the virtio-net header
//! offloads on (the default) and off. Without root or namespaces they print
//! why and pass, unless `CI=true`, where they fail.
#![cfg(target_os = "linux")]

mod common;

use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadBuf};
use utcp_runtime::device::capture::{Capture, LinkType, PcapWriter};
use utcp_runtime::device::tun::{TunConfig, TunDevice, TunStats};
use utcp_runtime::device::{Capabilities, OffloadStatus};
use utcp_runtime::{ConnRef, Device, DeviceAddrs, Medium, Stack, StackConfig};

const ECHO_BYTES: usize = 1 << 20;
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Echoes every byte back until EOF, then closes its side; returns the count.
async fn echo(conn: ConnRef) -> io::Result<usize> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = poll_fn(|cx| {
            let mut rb = ReadBuf::new(&mut buf);
            match conn.poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await?;
        if n == 0 {
            break;
        }
        let mut off = 0;
        while off < n {
            off += poll_fn(|cx| conn.poll_write(cx, &buf[off..n])).await?;
        }
        total += n;
    }
    conn.shutdown_write()?;
    Ok(total)
}

/// The data sent: not periodic at any power of two, so a misplaced segment
/// shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i >> 12) as u8)
        .collect()
}

/// In the current namespace: opens `utun0` with the kernel side at
/// `kernel/prefix` and the stack at `stack_ip`, offloads on or off, serves
/// echo on port 7, and echoes 1 MiB through a kernel socket. Returns the
/// device's counters.
fn echo_through_tun(
    kernel: IpAddr,
    prefix: u8,
    stack_ip: IpAddr,
    capture: Option<&PcapWriter>,
    offload: bool,
) -> TunStats {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dev = TunDevice::open(TunConfig {
            name: "utun0".into(),
            addrs: vec![stack_ip],
            kernel_addr: Some((kernel, prefix)),
            mtu: None,
            offload,
        })
        .expect("open the TUN");
        assert_eq!(dev.name(), "utun0");
        check_offload(&dev, offload);
        assert_eq!(dev.medium(), Medium::Ip);
        assert_eq!(dev.mtu(), 1500, "a new TUN's MTU");
        assert_eq!(dev.addrs(), &[stack_ip]);
        // The kernel side has its address, usable at once (no DAD pending).
        let shown = Command::new("ip")
            .args(["-o", "addr", "show", "dev", "utun0"])
            .output()
            .expect("run ip");
        let shown = String::from_utf8_lossy(&shown.stdout);
        let want = format!("{kernel}/{prefix}");
        let line = shown.lines().find(|l| l.contains(&want));
        assert!(line.is_some(), "{shown}");
        // Only our address matters: the kernel's own link-local fe80:: address
        // may still be in duplicate-address detection.
        assert!(!line.unwrap_or_default().contains("tentative"), "{shown}");
        // The test keeps a handle to read the counters.
        let dev = std::sync::Arc::new(dev);
        let stack = match capture {
            Some(w) => Stack::with_addrs(
                Capture::new(SharedDev(dev.clone()), w.clone()),
                vec![stack_ip],
                StackConfig::default(),
            ),
            None => Stack::with_addrs(
                SharedDev(dev.clone()),
                vec![stack_ip],
                StackConfig::default(),
            ),
        };
        let listener = stack.listen(SocketAddr::new(stack_ip, 7)).unwrap();
        let server = tokio::spawn(async move {
            let conn = poll_fn(|cx| listener.poll_accept(cx)).await?;
            echo(conn).await
        });

        let result = tokio::time::timeout(TEST_TIMEOUT, async {
            let sock = tokio::net::TcpStream::connect(SocketAddr::new(stack_ip, 7))
                .await
                .expect("kernel connects to the stack");
            let (mut rd, mut wr) = sock.into_split();
            let data = pattern(ECHO_BYTES);
            let to_send = data.clone();
            let writer = tokio::spawn(async move {
                for chunk in to_send.chunks(16 * 1024) {
                    wr.write_all(chunk).await?;
                }
                wr.shutdown().await?;
                io::Result::Ok(())
            });
            let mut back = Vec::with_capacity(ECHO_BYTES);
            rd.read_to_end(&mut back).await.expect("read the echo");
            writer.await.unwrap().expect("send 1 MiB");
            assert_eq!(back.len(), data.len(), "echoed length");
            if let Some(i) = back.iter().zip(&data).position(|(a, b)| a != b) {
                panic!("echo differs first at byte {i}");
            }
            server.await.unwrap().expect("echo server")
        })
        .await
        .expect("the echo finished in time");
        assert_eq!(result, ECHO_BYTES);
        tokio::time::timeout(TEST_TIMEOUT, stack.shutdown(Duration::from_secs(1)))
            .await
            .expect("stack shut down in time");
        let stats = dev.stats();
        assert!(stats.rx_packets > 0 && stats.tx_packets > 0, "{stats:?}");
        assert_eq!(stats.rx_oversized, 0);
        assert_eq!(
            (stats.rx_truncated, stats.tx_offload_refused),
            (0, 0),
            "{stats:?}"
        );
        if offload {
            // The kernel marks its packets' checksums (never computed:
            // NEEDS_CSUM), and the stack accepted them.
            assert!(stats.rx_csum_trusted > 0, "{stats:?}");
        } else {
            assert_eq!((stats.rx_super, stats.rx_csum_trusted), (0, 0), "{stats:?}");
        }
        stats
    })
}

/// The device's offload state and capabilities are what was asked for (this
/// kernel accepts `IFF_VNET_HDR`: a fallback here is a failure).
fn check_offload(dev: &TunDevice, offload: bool) {
    if offload {
        assert_eq!(dev.offload(), &OffloadStatus::On);
        let caps = dev.capabilities();
        assert!(caps.rx_checksum && caps.tx_checksum, "{caps:?}");
        assert_eq!(caps.max_rx_packet, 65_535);
        assert_eq!(caps.max_gso_packet, Some(65_535));
    } else {
        assert_eq!(dev.offload(), &OffloadStatus::Disabled);
        assert_eq!(dev.capabilities(), Capabilities::plain(dev.mtu()));
    }
}

/// Lets the test keep a handle on the device the stack drives.
struct SharedDev(std::sync::Arc<TunDevice>);

impl Device for SharedDev {
    fn medium(&self) -> Medium {
        self.0.medium()
    }
    fn mtu(&self) -> usize {
        self.0.mtu()
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    fn poll_recv(
        &self,
        cx: &mut std::task::Context<'_>,
        out: &mut Vec<utcp_runtime::RxPacket>,
        max: usize,
    ) -> Poll<io::Result<usize>> {
        self.0.poll_recv(cx, out, max)
    }
    fn send(&self, packets: &[utcp_runtime::TxPacket<'_>]) -> io::Result<()> {
        self.0.send(packets)
    }
}

fn ipv4_echo(test: &str, offload: bool) {
    let Some(ns) = common::tun_netns_or_skip(test, "tun") else {
        return;
    };
    let stats = ns.run(|| {
        echo_through_tun(
            "10.99.0.1".parse().unwrap(),
            24,
            "10.99.0.2".parse().unwrap(),
            None,
            offload,
        )
    });
    // 1 MiB each way, plus headers.
    assert!(stats.rx_bytes > ECHO_BYTES as u64, "{stats:?}");
    assert!(stats.tx_bytes > ECHO_BYTES as u64, "{stats:?}");
    // Closing the device removed the interface it created.
    let links = ns.ip(&["-o", "link", "show"]);
    assert!(!links.contains("utun0"), "{links}");
}

#[test]
fn tun_ipv4_kernel_echoes_1mib_through_utcp() {
    ipv4_echo("tun_ipv4_kernel_echoes_1mib_through_utcp", true);
}

#[test]
fn tun_ipv4_kernel_echoes_1mib_through_utcp_offloads_off() {
    ipv4_echo(
        "tun_ipv4_kernel_echoes_1mib_through_utcp_offloads_off",
        false,
    );
}

/// Removes a file on drop (also when the test fails).
struct Remove(std::path::PathBuf);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn ipv6_echo_with_capture(test: &str, offload: bool) {
    let Some(ns) = common::tun_netns_or_skip(test, "tun") else {
        return;
    };
    let path =
        std::env::temp_dir().join(format!("utcp-tun-v6-{}-{offload}.pcap", std::process::id()));
    let _remove = Remove(path.clone());
    let writer = PcapWriter::create(&path, LinkType::RawIp).unwrap();
    let stats = ns.run(|| {
        echo_through_tun(
            "fd99::1".parse().unwrap(),
            64,
            "fd99::2".parse().unwrap(),
            Some(&writer),
            offload,
        )
    });
    assert!(stats.rx_bytes > ECHO_BYTES as u64, "{stats:?}");
    let links = ns.ip(&["-o", "link", "show"]);
    assert!(!links.contains("utun0"), "{links}");
    writer.flush().unwrap();
    drop(writer);

    // Every packet in and out was recorded as raw IPv6 between the two ends.
    let file = std::fs::File::open(&path).unwrap();
    let mut reader = pcap_file::pcap::PcapReader::new(file).unwrap();
    assert_eq!(reader.header().datalink, pcap_file::DataLink::RAW);
    let (mut records, mut tcp, mut tcp_bytes) = (0u64, 0u64, 0u64);
    while let Some(p) = reader.next_raw_packet() {
        let p = p.unwrap();
        records += 1;
        let d = &p.data;
        assert_eq!(d[0] >> 4, 6, "IPv6 only");
        let payload_len = usize::from(u16::from_be_bytes([d[4], d[5]]));
        assert_eq!(40 + payload_len, d.len(), "IPv6 length vs record");
        if d[6] == 6 {
            tcp += 1;
            tcp_bytes += d.len() as u64;
        }
    }
    assert_eq!(records, stats.rx_packets + stats.tx_packets);
    assert!(tcp_bytes > 2 * ECHO_BYTES as u64, "{tcp_bytes} TCP bytes");
    if !offload {
        assert!(tcp > 2 * (ECHO_BYTES as u64 / 1440), "{tcp} TCP packets");
    }
    println!("{stats:?}, {records} records, {tcp} TCP");
}

#[test]
fn tun_ipv6_kernel_echoes_1mib_through_utcp_with_capture() {
    ipv6_echo_with_capture(
        "tun_ipv6_kernel_echoes_1mib_through_utcp_with_capture",
        true,
    );
}

#[test]
fn tun_ipv6_kernel_echoes_1mib_through_utcp_with_capture_offloads_off() {
    ipv6_echo_with_capture(
        "tun_ipv6_kernel_echoes_1mib_through_utcp_with_capture_offloads_off",
        false,
    );
}

#[test]
fn tun_open_reports_permission_denied_without_cap_net_admin() {
    let Some(ns) = common::tun_netns_or_skip(
        "tun_open_reports_permission_denied_without_cap_net_admin",
        "tun",
    ) else {
        return;
    };
    let err = ns.run(|| {
        // Drop CAP_NET_ADMIN from this thread only (capabilities are per
        // thread), inside the test namespace, then try to create a TUN.
        common::drop_capability(common::CAP_NET_ADMIN).expect("drop CAP_NET_ADMIN");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            TunDevice::open(TunConfig::new("utun9", vec!["10.98.0.2".parse().unwrap()]))
                .expect_err("no CAP_NET_ADMIN, no TUN")
        })
    });
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("utun9") && msg.contains("CAP_NET_ADMIN"),
        "{msg}"
    );
}

#[test]
fn tun_open_rejects_bad_config_naming_the_interface() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Checked before anything is created.
        let long = TunDevice::open(TunConfig::new("a-name-far-too-long", vec![])).unwrap_err();
        assert_eq!(long.kind(), io::ErrorKind::InvalidInput);
        assert!(long.to_string().contains("a-name-far-too-long"), "{long}");
        let mtu = TunDevice::open(TunConfig {
            mtu: Some(70_000),
            ..TunConfig::new("utun8", vec![])
        })
        .unwrap_err();
        assert_eq!(mtu.kind(), io::ErrorKind::InvalidInput);
        assert!(mtu.to_string().contains("utun8"), "{mtu}");
        let prefix = TunDevice::open(TunConfig {
            kernel_addr: Some(("10.0.0.1".parse().unwrap(), 33)),
            ..TunConfig::new("utun8", vec![])
        })
        .unwrap_err();
        assert_eq!(prefix.kind(), io::ErrorKind::InvalidInput);
    });
    // Outside a runtime: an error, not a panic.
    let err = TunDevice::open(TunConfig::new("utun8", vec![])).unwrap_err();
    assert!(err.to_string().contains("Tokio runtime"), "{err}");
}

/// The Internet checksum of `data`.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    for c in data.chunks(2) {
        sum += u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[test]
fn tun_device_keeps_packets_over_the_open_mtu_whole_and_gathers_writes() {
    keeps_whole_and_gathers(
        "tun_device_keeps_packets_over_the_open_mtu_whole_and_gathers_writes",
        true,
    );
}

#[test]
fn tun_device_keeps_packets_over_the_open_mtu_whole_and_gathers_writes_offloads_off() {
    keeps_whole_and_gathers(
        "tun_device_keeps_packets_over_the_open_mtu_whole_and_gathers_writes_offloads_off",
        false,
    );
}

/// Packets larger than the MTU read at open come whole (offloads off: one
/// copy through the overflow buffer; on: reads are sized for 64 KiB); sends
/// gather header and payload; with offloads on a partial checksum is
/// completed by the kernel (`NEEDS_CSUM`), off it is refused and counted.
fn keeps_whole_and_gathers(test: &str, offload: bool) {
    let Some(ns) = common::tun_netns_or_skip(test, "tun") else {
        return;
    };
    ns.run(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dev = TunDevice::open(TunConfig {
                mtu: Some(4000),
                kernel_addr: Some(("10.97.0.1".parse().unwrap(), 24)),
                offload,
                ..TunConfig::new("utun1", vec!["10.97.0.2".parse().unwrap()])
            })
            .expect("open the TUN");
            assert_eq!(dev.mtu(), 4000, "the MTU set and read back");
            // Raised behind the device's back: reads must still not truncate.
            let out = Command::new("ip")
                .args(["link", "set", "dev", "utun1", "mtu", "9000"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );

            // Kernel → device: a 100-byte and an 8000-byte UDP datagram.
            let sock = std::net::UdpSocket::bind("10.97.0.1:0").unwrap();
            let big: Vec<u8> = pattern(8000);
            sock.send_to(&big[..100], "10.97.0.2:9").unwrap();
            sock.send_to(&big, "10.97.0.2:9").unwrap();
            let mut udp = Vec::new();
            let mut out = Vec::new();
            for _ in 0..50 {
                if udp.len() == 2 {
                    break;
                }
                out.clear();
                tokio::time::timeout(
                    Duration::from_secs(5),
                    poll_fn(|cx| dev.poll_recv(cx, &mut out, 64)),
                )
                .await
                .expect("packets from the kernel")
                .unwrap();
                udp.extend(
                    out.drain(..)
                        .filter(|p| p.data[0] >> 4 == 4 && p.data[9] == 17),
                );
            }
            assert_eq!(udp.len(), 2, "both datagrams");
            assert_eq!(udp[0].data.len(), 20 + 8 + 100);
            assert_eq!(&udp[0].data[28..], &big[..100]);
            assert_eq!(
                udp[1].data.len(),
                20 + 8 + 8000,
                "the 8028-byte packet whole"
            );
            assert_eq!(&udp[1].data[28..], &big[..]);
            assert_eq!(dev.stats().rx_oversized, u64::from(!offload));

            // Device → kernel: headers and payload in two pieces.
            let port = sock.local_addr().unwrap().port();
            let payload = &big[..3000];
            let mut header = [0u8; 28];
            header[0] = 0x45;
            header[2..4].copy_from_slice(&((28 + payload.len()) as u16).to_be_bytes());
            header[8] = 64;
            header[9] = 17;
            header[12..16].copy_from_slice(&[10, 97, 0, 2]);
            header[16..20].copy_from_slice(&[10, 97, 0, 1]);
            let sum = checksum(&header[..20]);
            header[10..12].copy_from_slice(&sum.to_be_bytes());
            header[20..22].copy_from_slice(&9u16.to_be_bytes());
            header[22..24].copy_from_slice(&port.to_be_bytes());
            header[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
            // UDP checksum 0: none (IPv4).
            dev.send(&[utcp_runtime::TxPacket {
                header: &header,
                payload,
                payload_tail: &[],
                meta: utcp_runtime::Offload::default(),
            }])
            .unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = vec![0u8; 9000];
            let (n, from) = sock
                .recv_from(&mut buf)
                .expect("the datagram the device sent");
            assert_eq!(from, "10.97.0.2:9".parse().unwrap());
            assert_eq!(&buf[..n], payload);
            let stats = dev.stats();
            assert_eq!((stats.tx_packets, stats.tx_drops), (1, 0));
            assert_eq!(stats.tx_bytes, 28 + 3000);

            // A partial checksum: the field holds the pseudo-header sum (not
            // complemented), the kernel completes it. A wrong complete
            // checksum would be dropped by the kernel's UDP.
            let payload = &big[..500];
            header[2..4].copy_from_slice(&((28 + payload.len()) as u16).to_be_bytes());
            header[10..12].copy_from_slice(&[0, 0]);
            let sum = checksum(&header[..20]);
            header[10..12].copy_from_slice(&sum.to_be_bytes());
            let udp_len = (8 + payload.len()) as u16;
            header[24..26].copy_from_slice(&udp_len.to_be_bytes());
            let mut pseudo = Vec::new();
            pseudo.extend_from_slice(&header[12..20]);
            pseudo.extend_from_slice(&[0, 17]);
            pseudo.extend_from_slice(&udp_len.to_be_bytes());
            let partial = !checksum(&pseudo);
            header[26..28].copy_from_slice(&partial.to_be_bytes());
            let sent = dev.send(&[utcp_runtime::TxPacket {
                header: &header,
                payload,
                payload_tail: &[],
                meta: utcp_runtime::Offload {
                    csum_partial: Some((20, 26)),
                    ..utcp_runtime::Offload::default()
                },
            }]);
            let stats = dev.stats();
            if offload {
                sent.expect("a partial checksum is sent");
                let (n, _) = sock
                    .recv_from(&mut buf)
                    .expect("the datagram with the checksum the kernel completed");
                assert_eq!(&buf[..n], payload);
                assert_eq!((stats.tx_packets, stats.tx_csum_partial), (2, 1));
            } else {
                let err = sent.expect_err("no offloads: refused");
                assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
                assert_eq!((stats.tx_packets, stats.tx_offload_refused), (1, 1));
            }
        });
    });
}

/// Reads and discards every byte until EOF; returns the count.
async fn sink(conn: ConnRef) -> io::Result<usize> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        let n = poll_fn(|cx| {
            let mut rb = ReadBuf::new(&mut buf);
            match conn.poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await?;
        if n == 0 {
            break;
        }
        total += n;
    }
    conn.shutdown_write()?;
    Ok(total)
}

/// In the current namespace: the kernel sends `bytes` to a utcp sink over
/// `utun2` with offloads on (and a capture when asked); returns the
/// device's counters.
fn bulk_to_utcp(bytes: usize, capture: Option<&PcapWriter>) -> TunStats {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stack_ip: IpAddr = "10.96.0.2".parse().unwrap();
        let dev = std::sync::Arc::new(
            TunDevice::open(TunConfig {
                kernel_addr: Some(("10.96.0.1".parse().unwrap(), 24)),
                ..TunConfig::new("utun2", vec![stack_ip])
            })
            .expect("open the TUN"),
        );
        check_offload(&dev, true);
        let stack = match capture {
            Some(w) => Stack::with_addrs(
                Capture::new(SharedDev(dev.clone()), w.clone()),
                vec![stack_ip],
                StackConfig::default(),
            ),
            None => Stack::with_addrs(
                SharedDev(dev.clone()),
                vec![stack_ip],
                StackConfig::default(),
            ),
        };
        let listener = stack.listen(SocketAddr::new(stack_ip, 9)).unwrap();
        let server = tokio::spawn(async move {
            let conn = poll_fn(|cx| listener.poll_accept(cx)).await?;
            sink(conn).await
        });
        let got = tokio::time::timeout(TEST_TIMEOUT, async {
            let mut sock = tokio::net::TcpStream::connect(SocketAddr::new(stack_ip, 9))
                .await
                .expect("kernel connects to the stack");
            let chunk = pattern(256 * 1024);
            let mut left = bytes;
            while left > 0 {
                let n = left.min(chunk.len());
                sock.write_all(&chunk[..n]).await.expect("send");
                left -= n;
            }
            sock.shutdown().await.expect("shutdown");
            let mut rest = Vec::new();
            sock.read_to_end(&mut rest).await.expect("the sink's FIN");
            server.await.unwrap().expect("sink")
        })
        .await
        .expect("the transfer finished in time");
        assert_eq!(got, bytes);
        tokio::time::timeout(TEST_TIMEOUT, stack.shutdown(Duration::from_secs(1)))
            .await
            .expect("stack shut down in time");
        dev.stats()
    })
}

/// Bulk kernel → utcp over TUN with offloads: the kernel's TSO / GRO
/// super-segments reach the stack whole, so the mean read is at least
/// 16 KiB (the issue's bar), and the stack takes payloads far larger than
/// its MSS as single segments (every byte arrived, exactly).
#[test]
fn tun_bulk_kernel_to_utcp_reads_super_segments() {
    let Some(ns) = common::tun_netns_or_skip("tun_bulk_kernel_to_utcp_reads_super_segments", "tun")
    else {
        return;
    };
    let bytes = 64 << 20;
    let stats = ns.run(|| bulk_to_utcp(bytes, None));
    println!(
        "{stats:?}: mean read {} B, mean super-segment {} B",
        stats.rx_mean_bytes(),
        stats.rx_super_mean_bytes()
    );
    assert!(stats.rx_bytes > bytes as u64, "{stats:?}");
    assert!(
        stats.rx_mean_bytes() >= 16 * 1024,
        "mean read {} B: {stats:?}",
        stats.rx_mean_bytes()
    );
    assert!(
        stats.rx_super_bytes * 10 >= stats.rx_bytes * 9,
        "most bytes in super-segments: {stats:?}"
    );
    assert_eq!((stats.rx_truncated, stats.tx_drops), (0, 0), "{stats:?}");
}

/// Bulk utcp → kernel over TUN with offloads: `bytes` from a utcp client to
/// a kernel sink. Returns the device's counters and the connection's.
fn bulk_from_utcp(bytes: usize) -> (TunStats, utcp_runtime::proto::Stats) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stack_ip: IpAddr = "10.96.0.2".parse().unwrap();
        let kernel_ip: IpAddr = "10.96.0.1".parse().unwrap();
        let dev = std::sync::Arc::new(
            TunDevice::open(TunConfig {
                kernel_addr: Some((kernel_ip, 24)),
                ..TunConfig::new("utun3", vec![stack_ip])
            })
            .expect("open the TUN"),
        );
        check_offload(&dev, true);
        let stack = Stack::with_addrs(
            SharedDev(dev.clone()),
            vec![stack_ip],
            StackConfig::default(),
        );
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(kernel_ip, 9))
            .await
            .expect("the kernel listens");
        let chunk = pattern(256 * 1024);
        let expect = chunk.clone();
        let sink = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await?;
            let mut buf = vec![0u8; 256 * 1024];
            let mut got = 0usize;
            loop {
                let n = sock.read(&mut buf).await?;
                if n == 0 {
                    return io::Result::Ok(got);
                }
                // The stream is `chunk` over and over: every byte checked.
                for (i, b) in buf[..n].iter().enumerate() {
                    let at = got + i;
                    assert_eq!(*b, expect[at % expect.len()], "byte {at} of the stream");
                }
                got += n;
            }
        });
        let stats = tokio::time::timeout(TEST_TIMEOUT, async {
            let conn = stack
                .connect_start(SocketAddr::new(kernel_ip, 9))
                .expect("connect");
            poll_fn(|cx| conn.poll_connected(cx))
                .await
                .expect("connected");
            let mut left = bytes;
            while left > 0 {
                let n = left.min(chunk.len());
                let mut part = &chunk[..n];
                while !part.is_empty() {
                    let w = poll_fn(|cx| conn.poll_write(cx, part)).await.expect("send");
                    part = &part[w..];
                }
                left -= n;
            }
            conn.shutdown_write().expect("shutdown");
            let got = sink.await.unwrap().expect("the kernel sink");
            assert_eq!(got, bytes, "every byte reached the kernel");
            conn.stats()
        })
        .await
        .expect("the transfer finished in time");
        tokio::time::timeout(TEST_TIMEOUT, stack.shutdown(Duration::from_secs(1)))
            .await
            .expect("stack shut down in time");
        (dev.stats(), stats)
    })
}

/// Bulk utcp → kernel over TUN with offloads: the connection sends
/// super-segments (TSO) with partial checksums, which the kernel takes:
/// at least 90 % of the data bytes leave in super-segments (the device's
/// counters), every byte arrives exactly (segments spanning two writes
/// leave as two gathered pieces), and nothing is refused or dropped.
#[test]
fn tun_bulk_utcp_to_kernel_sends_super_segments() {
    let Some(ns) = common::tun_netns_or_skip("tun_bulk_utcp_to_kernel_sends_super_segments", "tun")
    else {
        return;
    };
    let bytes = 64 << 20;
    let (dev, conn) = ns.run(|| bulk_from_utcp(bytes));
    println!(
        "{dev:?}: mean super-segment {} B; connection {} super-segments of {} segments",
        dev.tx_super_mean_bytes(),
        conn.super_segments_sent,
        conn.segments_sent
    );
    assert!(conn.super_segments_sent > 0, "{conn:?}");
    assert_eq!(dev.tx_super, conn.super_segments_sent, "{dev:?}");
    assert!(
        dev.tx_super_bytes * 10 >= conn.bytes_sent * 9,
        "≥ 90 % of data bytes in super-segments: {dev:?} {conn:?}"
    );
    assert_eq!((dev.tx_offload_refused, dev.tx_drops), (0, 0), "{dev:?}");
}

/// A capture on the TUN device with offloads on is tshark-clean: IP and TCP
/// checksums good (partial ones completed in the record), nothing malformed,
/// no expert warnings or errors, and the super-segments are in it whole.
#[test]
fn tun_capture_with_offloads_is_tshark_clean() {
    let test = "tun_capture_with_offloads_is_tshark_clean";
    if !utcp_testenv::require(test, &[utcp_testenv::Need::Tool("tshark")]) {
        return;
    }
    let Some(ns) = common::tun_netns_or_skip(test, "tun") else {
        return;
    };
    let path = std::env::temp_dir().join(format!("utcp-tun-gro-{}.pcap", std::process::id()));
    let _remove = Remove(path.clone());
    let writer = PcapWriter::create(&path, LinkType::RawIp).unwrap();
    let stats = ns.run(|| bulk_to_utcp(4 << 20, Some(&writer)));
    writer.flush().unwrap();
    drop(writer);
    assert!(stats.rx_super > 0, "{stats:?}");
    let out = Command::new("tshark")
        .arg("-n")
        .arg("-r")
        .arg(&path)
        .args([
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "ip.check_checksum:TRUE",
        ])
        .args(["-T", "fields", "-E", "separator=|"])
        .args([
            "-e",
            "frame.len",
            "-e",
            "ip.checksum.status",
            "-e",
            "tcp.checksum.status",
        ])
        .args(["-e", "_ws.malformed", "-e", "_ws.expert.severity"])
        .args(["-e", "_ws.expert.message"])
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fields = String::from_utf8_lossy(&out.stdout);
    let (mut lines, mut tcp, mut largest) = (0u64, 0u64, 0usize);
    for line in fields.lines() {
        let cols: Vec<&str> = line.split('|').collect();
        assert_eq!(cols.len(), 6, "{line}");
        lines += 1;
        largest = largest.max(cols[0].parse().unwrap_or(0));
        assert!(cols[3].is_empty(), "malformed: {line}");
        if cols[1].is_empty() && cols[2].is_empty() {
            // Not IPv4 (the kernel's own IPv6 router solicitations).
            continue;
        }
        tcp += 1;
        // Checksum status: 0 bad, 1 good, 2 unverified.
        assert_eq!(cols[1], "1", "IP checksum not good: {line}");
        assert_eq!(cols[2], "1", "TCP checksum not good: {line}");
        // Expert severities: chat and notes are fine, warnings and errors
        // (0x00600000 and up) are not, except two signals of the protocol
        // doing its job: flow control (a 58 KiB super-segment fills utcp's
        // 64 KiB receive buffer, flagged "window full" and "zero window"),
        // and a D-SACK block (RFC 2883) reporting a duplicate utcp received.
        let messages: Vec<&str> = cols[5].split(',').collect();
        for (i, sev) in cols[4].split(',').filter(|s| !s.is_empty()).enumerate() {
            let sev: u32 = sev.parse().unwrap_or(u32::MAX);
            let msg = messages.get(i).copied().unwrap_or_default();
            let flow_control = msg
                .contains("window specified by the receiver is now completely full")
                || msg.contains("Zero Window")
                || msg.contains("D-SACK");
            assert!(
                sev < 0x0060_0000 || flow_control,
                "expert warning or error: {line}"
            );
        }
    }
    assert_eq!(
        lines,
        stats.rx_packets + stats.tx_packets,
        "every packet recorded"
    );
    // 4 MiB in super-segments of at most 64 KiB: 64 data packets at least,
    // with the handshake and utcp's ACKs (one per batch, or per two
    // segments, since delayed ACKs) beside them.
    assert!(tcp > 64, "{tcp} TCP packets");
    assert!(
        largest > 16 * 1024,
        "super-segments recorded whole: {largest} B"
    );
}

/// The TCP checksum field's content for `segment` from `src` to `dst`: the
/// complete checksum, or (`partial`) the pseudo-header sum alone, not
/// complemented, as a device completing it expects.
fn tcp_sum(src: [u8; 4], dst: [u8; 4], segment: &[u8], partial: bool) -> u16 {
    let mut pseudo = Vec::with_capacity(12 + segment.len());
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(segment.len() as u16).to_be_bytes());
    if partial {
        return !checksum(&pseudo);
    }
    pseudo.extend_from_slice(segment);
    checksum(&pseudo)
}

/// An IPv4 + TCP header (no options) from 10.95.0.2:40000 to 10.95.0.1:port
/// for `payload_len` bytes, checksums done (the TCP one complete over
/// `payload`, or partial).
fn tcp_header(port: u16, seq: u32, ack: u32, flags: u8, payload: &[u8], partial: bool) -> [u8; 40] {
    let (src, dst) = ([10, 95, 0, 2], [10, 95, 0, 1]);
    let mut h = [0u8; 40];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&((40 + payload.len()) as u16).to_be_bytes());
    h[6] = 0x40; // DF: the IDs of the segments do not matter
    h[8] = 64;
    h[9] = 6;
    h[12..16].copy_from_slice(&src);
    h[16..20].copy_from_slice(&dst);
    let sum = checksum(&h[..20]);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h[20..22].copy_from_slice(&40000u16.to_be_bytes());
    h[22..24].copy_from_slice(&port.to_be_bytes());
    h[24..28].copy_from_slice(&seq.to_be_bytes());
    h[28..32].copy_from_slice(&ack.to_be_bytes());
    h[32] = 5 << 4;
    h[33] = flags;
    h[34..36].copy_from_slice(&65535u16.to_be_bytes());
    let mut segment = h[20..].to_vec();
    segment.extend_from_slice(payload);
    let sum = tcp_sum(src, dst, &segment, partial);
    h[36..38].copy_from_slice(&sum.to_be_bytes());
    h
}

/// With offloads on, the device hands the kernel a TCP super-segment
/// (`gso_size` 1000, three segments' worth, a partial checksum): after a
/// handshake made by hand, the kernel's socket reads all 3000 bytes. The
/// kernel checks the header's GSO type against the packet, its sizes and its
/// checksum offsets, and drops a packet they contradict.
#[test]
fn tun_device_sends_a_tcp_super_segment_with_a_partial_checksum() {
    let Some(ns) = common::tun_netns_or_skip(
        "tun_device_sends_a_tcp_super_segment_with_a_partial_checksum",
        "tun",
    ) else {
        return;
    };
    ns.run(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dev = TunDevice::open(TunConfig {
                kernel_addr: Some(("10.95.0.1".parse().unwrap(), 24)),
                ..TunConfig::new("utun3", vec!["10.95.0.2".parse().unwrap()])
            })
            .expect("open the TUN");
            check_offload(&dev, true);
            let listener = std::net::TcpListener::bind("10.95.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let reader = std::thread::spawn(move || -> io::Result<Vec<u8>> {
                use std::io::Read;
                let (mut s, _) = listener.accept()?;
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                let mut got = vec![0u8; 3000];
                s.read_exact(&mut got)?;
                Ok(got)
            });
            let send = |header: &[u8], payload: &[u8], meta: utcp_runtime::Offload| {
                dev.send(&[utcp_runtime::TxPacket {
                    header,
                    payload,
                    payload_tail: &[],
                    meta,
                }])
            };
            // SYN (no options), then the kernel's SYN-ACK.
            let iss = 1000u32;
            send(
                &tcp_header(port, iss, 0, 0x02, &[], false),
                &[],
                Default::default(),
            )
            .unwrap();
            let mut out = Vec::new();
            let mut peer_iss = None;
            for _ in 0..50 {
                out.clear();
                tokio::time::timeout(
                    Duration::from_secs(5),
                    poll_fn(|cx| dev.poll_recv(cx, &mut out, 64)),
                )
                .await
                .expect("packets from the kernel")
                .unwrap();
                peer_iss = out.iter().find_map(|p| {
                    let d = &p.data;
                    let synack = d.len() >= 40 && d[0] == 0x45 && d[9] == 6 && d[33] == 0x12;
                    synack.then(|| u32::from_be_bytes([d[24], d[25], d[26], d[27]]))
                });
                if peer_iss.is_some() {
                    break;
                }
            }
            let ack = peer_iss.expect("the kernel's SYN-ACK").wrapping_add(1);
            send(
                &tcp_header(port, iss + 1, ack, 0x10, &[], false),
                &[],
                Default::default(),
            )
            .unwrap();
            // One super-segment: 3000 bytes in segments of 1000, the TCP
            // checksum left partial for the kernel.
            let payload = pattern(3000);
            let header = tcp_header(port, iss + 1, ack, 0x18, &payload, true);
            send(
                &header,
                &payload,
                utcp_runtime::Offload {
                    gso_size: Some(1000),
                    csum_partial: Some((20, 36)),
                    csum_verified: false,
                },
            )
            .expect("the super-segment is written");
            let got = tokio::task::spawn_blocking(move || reader.join())
                .await
                .unwrap()
                .unwrap()
                .expect("the kernel's socket read the super-segment");
            assert!(got == payload, "the bytes the kernel read differ");
            let stats = dev.stats();
            assert_eq!(
                (stats.tx_super, stats.tx_super_bytes),
                (1, 3040),
                "{stats:?}"
            );
            assert_eq!(stats.tx_super_mean_bytes(), 3040);
        });
    });
}
