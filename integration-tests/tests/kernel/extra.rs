//! MTU limits over veth, and a real client nobody here wrote (curl).

use super::*;
use pcap_file::pcap::PcapReader;
use utcp::StackExt;
use utcp_integration_tests::{pattern, spawn_echo, spawn_http};

fn mtu_echo(test: &str, mtu: u32) {
    if !can_run(test, Link::Raw, &[]) {
        return;
    }
    // Offloads off: each frame in the capture is one segment on the wire.
    let _serial = serial_with(Offloads::Off);
    let net = Net::new(Link::Raw, mtu);
    let dir = utcp_integration_tests::TempDir::new(&format!("mtu-{mtu}"));
    let pcap = dir.join("raw.pcap");
    let pcap2 = pcap.clone();
    let mut utcp = spawn_utcp(net.utcp_ns(), move |sig| async move {
        let dev = Net::raw_device(Some(pcap2))?;
        let stack = Stack::new(dev, StackConfig::default());
        spawn_echo(stack.bind(sa("10.78.0.2:7"))?);
        sig.ready();
        sig.until_stopped(Duration::from_secs(120)).await;
        stack.shutdown(Duration::from_secs(1)).await;
        io::Result::Ok(())
    });
    utcp.wait_ready();
    let data = pattern(1 << 20, mtu as u64);
    let expect = data.clone();
    let back = net
        .kernel
        .spawn(move || kernel_echo_client(sa("10.78.0.2:7"), data))
        .join()
        .unwrap()
        .unwrap()
        .expect("kernel client");
    assert!(back == expect, "echoed bytes differ");
    utcp.finish();
    // Every frame in and out fits the MTU (plus the 14-byte Ethernet header),
    // and the largest segments use it fully.
    let f = std::fs::File::open(&pcap).expect("open capture");
    let mut r = PcapReader::new(f).expect("pcap header");
    let (mut largest_out, mut largest_in, mut frames) = (0usize, 0usize, 0usize);
    while let Some(p) = r.next_packet() {
        let p = p.expect("record");
        assert_eq!(p.orig_len as usize, p.data.len(), "a truncated frame");
        assert!(
            p.data.len() <= mtu as usize + 14,
            "frame of {} bytes exceeds MTU {mtu}",
            p.data.len()
        );
        frames += 1;
        if p.data.len() > 34 && p.data[12..14] == [0x08, 0x00] {
            let from_utcp = p.data[26..30] == [10, 78, 0, 2];
            let len = p.data.len() - 14;
            if from_utcp {
                largest_out = largest_out.max(len);
            } else {
                largest_in = largest_in.max(len);
            }
        }
    }
    eprintln!("{test}: {frames} frames, largest IP packet out {largest_out}, in {largest_in}");
    assert_eq!(
        largest_out, mtu as usize,
        "utcp did not use full-size segments"
    );
    assert_eq!(
        largest_in, mtu as usize,
        "the kernel did not use full-size segments"
    );
}

#[test]
fn veth_mtu_9000_with_offloads_takes_super_frames_whole() {
    super_frames_echo("veth_mtu_9000_with_offloads_takes_super_frames_whole", 9000);
}

#[test]
fn veth_mtu_1500_with_offloads_takes_super_frames_whole() {
    super_frames_echo("veth_mtu_1500_with_offloads_takes_super_frames_whole", 1500);
}

/// With the veth's offloads at their defaults and the raw device's
/// `PACKET_VNET_HDR`, the kernel's TSO super-frames (larger than the MTU)
/// reach utcp whole, none is cut, and utcp's own frames still fit the MTU.
fn super_frames_echo(test: &str, mtu: u32) {
    if !can_run(test, Link::Raw, &[]) {
        return;
    }
    let _serial = serial_with(Offloads::On);
    let net = Net::new(Link::Raw, mtu);
    let mut utcp = spawn_utcp(net.utcp_ns(), move |sig| async move {
        let dev = Net::raw_device(None)?;
        let stack = Stack::new(dev.clone(), StackConfig::default());
        spawn_echo(stack.bind(sa("10.78.0.2:7"))?);
        sig.ready();
        sig.until_stopped(Duration::from_secs(120)).await;
        stack.shutdown(Duration::from_secs(1)).await;
        io::Result::Ok((dev.stats(), dev.offload().is_on()))
    });
    utcp.wait_ready();
    let data = pattern(8 << 20, u64::from(mtu) + 1);
    let expect = data.clone();
    let back = net
        .kernel
        .spawn(move || kernel_echo_client(sa("10.78.0.2:7"), data))
        .join()
        .unwrap()
        .unwrap()
        .expect("kernel client");
    assert!(back == expect, "echoed bytes differ");
    let (stats, vnet) = utcp.finish();
    eprintln!(
        "{test}: {stats:?}, mean super-frame {} B",
        stats.rx_super_mean_bytes()
    );
    assert!(vnet, "PACKET_VNET_HDR is on");
    assert_eq!(
        (stats.rx_truncated, stats.tx_oversized),
        (0, 0),
        "{stats:?}"
    );
    assert!(stats.rx_super > 0, "no super-frame arrived: {stats:?}");
    assert!(
        stats.rx_super_mean_bytes() > u64::from(mtu),
        "super-frames no larger than the MTU: {stats:?}"
    );
    assert!(stats.rx_csum_trusted > 0, "{stats:?}");
}

#[test]
fn veth_mtu_1280_works_and_segments_fit() {
    mtu_echo("veth_mtu_1280_works_and_segments_fit", 1280);
}

#[test]
fn veth_mtu_9000_works_and_segments_fit() {
    mtu_echo("veth_mtu_9000_works_and_segments_fit", 9000);
}

const PAGE: &str = "<html><body>hyper on utcp, fetched by curl</body></html>\n";

#[test]
fn curl_fetches_a_page_from_hyper_on_a_utcp_listener() {
    if !can_run(
        "curl_fetches_a_page_from_hyper_on_a_utcp_listener",
        Link::Tun,
        &["curl"],
    ) {
        return;
    }
    let _serial = serial();
    let net = Net::new(Link::Tun, 1500);
    let mut utcp = spawn_utcp(net.utcp_ns(), move |sig| async move {
        let stack = Net::open_stack(Link::Tun, 1500, false)?;
        spawn_http(stack.bind(sa("10.77.0.2:8080"))?, PAGE);
        sig.ready();
        sig.until_stopped(Duration::from_secs(60)).await;
        stack.shutdown(Duration::from_secs(1)).await;
        io::Result::Ok(())
    });
    utcp.wait_ready();
    let out = net
        .kernel
        .exec(
            "curl",
            &["-sS", "--max-time", "10", "http://10.77.0.2:8080/"],
        )
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), PAGE);
    utcp.finish();
}

#[test]
fn curl_gets_its_own_address_from_an_axum_app_on_a_utcp_listener() {
    use axum::{Router, extract::ConnectInfo, routing::get};
    use utcp::axum::UtcpConnectInfo;
    if !can_run(
        "curl_gets_its_own_address_from_an_axum_app_on_a_utcp_listener",
        Link::Tun,
        &["curl"],
    ) {
        return;
    }
    let _serial = serial();
    let net = Net::new(Link::Tun, 1500);
    let mut utcp = spawn_utcp(net.utcp_ns(), move |sig| async move {
        let stack = Net::open_stack(Link::Tun, 1500, false)?;
        let app = Router::new().route(
            "/whoami",
            get(
                |ConnectInfo(info): ConnectInfo<UtcpConnectInfo>| async move {
                    format!("{} -> {}", info.remote, info.local)
                },
            ),
        );
        let listener = stack.bind(sa("10.77.0.2:8080"))?;
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<UtcpConnectInfo>(),
            )
            .await
        });
        sig.ready();
        sig.until_stopped(Duration::from_secs(60)).await;
        stack.shutdown(Duration::from_secs(1)).await;
        // A closed listener: axum's accept waits forever, the server task
        // is still there (it does not spin or return).
        assert!(!server.is_finished());
        server.abort();
        io::Result::Ok(())
    });
    utcp.wait_ready();
    // curl prints the body, then its own end of the connection.
    let out = net
        .kernel
        .exec(
            "curl",
            &[
                "-sS",
                "--max-time",
                "10",
                "-w",
                "\n%{local_ip}:%{local_port}",
                "http://10.77.0.2:8080/whoami",
            ],
        )
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (body, curl_end) = text.split_once('\n').expect("body and curl's address");
    let curl_end = sa(curl_end);
    println!("axum saw {body}; curl was {curl_end}");
    assert_eq!(curl_end.ip(), net.kernel_ip, "curl runs on the kernel side");
    assert_ne!(curl_end.port(), 0);
    assert_eq!(body, format!("{curl_end} -> 10.77.0.2:8080"));
    utcp.finish();
}
