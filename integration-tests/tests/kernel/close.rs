//! The kernel's view of utcp's close, and utcp's view of the kernel's.

use super::*;
use pcap_file::pcap::PcapReader;
use std::sync::mpsc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::{StackExt, State};
use utcp_integration_tests::netns::wait_for;
use utcp_proto::wire;
use utcp_runtime::device::capture::Capture;

/// Catches a hang, nothing slower: a close over TUN takes milliseconds.
const HANG_BOUND: Duration = Duration::from_secs(20);

/// The TCP flags of every captured segment of port `port`, in order, as
/// (from utcp?, flags).
fn captured_flags(
    path: &std::path::Path,
    utcp_ip: IpAddr,
    port: u16,
) -> Vec<(bool, wire::TcpFlags)> {
    let f = std::fs::File::open(path).expect("open capture");
    let mut r = PcapReader::new(f).expect("pcap header");
    let mut out = Vec::new();
    while let Some(pkt) = r.next_packet() {
        let pkt = pkt.expect("pcap record");
        if let Ok(seg) = wire::parse_ip_tcp(&pkt.data, true)
            && (seg.tcp.src_port == port || seg.tcp.dst_port == port)
        {
            out.push((seg.src == utcp_ip, seg.tcp.flags));
        }
    }
    out
}

#[test]
fn utcp_closes_first_kernel_waits_in_close_wait_then_clears() {
    if !can_run(
        "utcp_closes_first_kernel_waits_in_close_wait_then_clears",
        Link::Tun,
        &["ss"],
    ) {
        return;
    }
    let _serial = serial();
    let net = Net::new(Link::Tun, 1500);
    let dir = utcp_integration_tests::TempDir::new("close");
    let pcap = dir.join("close.pcap");
    let pcap2 = pcap.clone();
    let (acked_tx, acked_rx) = mpsc::channel::<State>();
    let mut utcp = spawn_utcp(net.utcp_ns(), move |sig| async move {
        let dev = Net::tun_device(1500, false)?;
        let stack = Stack::new(Capture::create(dev, &pcap2)?, StackConfig::default());
        let l = stack.bind(sa("10.77.0.2:7"))?;
        sig.ready();
        let (mut s, _) = l.accept().await?;
        s.write_all(b"bye").await?;
        s.shutdown().await?; // our FIN first
        // FIN_WAIT_2 once the kernel's ACK of our FIN is in.
        let end = tokio::time::Instant::now() + HANG_BOUND;
        while s.state() != State::FinWait2 && tokio::time::Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        acked_tx.send(s.state()).ok();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await?; // the kernel's FIN
        let history = s.state_history();
        sig.until_stopped(Duration::from_secs(30)).await;
        stack.shutdown(Duration::from_secs(1)).await;
        io::Result::Ok(history)
    });
    utcp.wait_ready();
    let (port_tx, port_rx) = mpsc::channel();
    let (close_tx, close_rx) = mpsc::channel::<()>();
    let kernel = net.kernel.spawn(move || -> io::Result<()> {
        let mut s = KTcpStream::connect_timeout(&sa("10.77.0.2:7"), Duration::from_secs(5))?;
        port_tx.send(s.local_addr()?.port()).ok();
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut got = Vec::new();
        s.read_to_end(&mut got)?; // utcp's FIN
        assert_eq!(got, b"bye");
        close_rx.recv_timeout(Duration::from_secs(20)).ok();
        drop(s); // the application closes: FIN
        Ok(())
    });
    let port = port_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("kernel connected");
    let tuple = format!("10.77.0.1:{port}");
    assert!(
        wait_for(HANG_BOUND, || ss_lines(&net.kernel, &tuple)
            .iter()
            .any(|l| l.starts_with("CLOSE-WAIT"))),
        "kernel socket not in CLOSE_WAIT: {:?}",
        ss_lines(&net.kernel, &tuple)
    );
    // The kernel stays in CLOSE_WAIT after it has ACKed our FIN, until the
    // application closes: wait for utcp to see that ACK, then look again.
    assert_eq!(
        acked_rx.recv_timeout(HANG_BOUND),
        Ok(State::FinWait2),
        "utcp did not see the kernel's ACK of its FIN"
    );
    assert!(
        ss_lines(&net.kernel, &tuple)
            .iter()
            .any(|l| l.starts_with("CLOSE-WAIT")),
        "{:?}",
        ss_lines(&net.kernel, &tuple)
    );
    close_tx.send(()).unwrap();
    kernel.join().unwrap().unwrap().unwrap();
    // The kernel's FIN is answered by utcp's ACK (the capture below shows it),
    // so the kernel's socket leaves LAST_ACK. The bound only catches a hang:
    // that the ACK leaves at once is checked in virtual time
    // (crates/proto/tests/state_fin_wait_2.rs, fin_wait_2_fin_enters_time_wait).
    assert!(
        wait_for(HANG_BOUND, || ss_lines(&net.kernel, &tuple).is_empty()),
        "a socket for the 4-tuple remains: {:?}",
        ss_lines(&net.kernel, &tuple)
    );
    let history = utcp.finish();
    assert!(
        history.ends_with(&[State::FinWait1, State::FinWait2, State::TimeWait]),
        "{history:?}"
    );
    // The capture: FIN (utcp), ACK (kernel), FIN (kernel), ACK (utcp).
    let flags = captured_flags(&pcap, ip("10.77.0.2"), port);
    let tail: Vec<_> = flags.iter().rev().take(4).rev().copied().collect();
    assert_eq!(tail.len(), 4, "{flags:?}");
    assert!(tail[0].0 && tail[0].1.fin(), "{tail:?}");
    assert!(
        !tail[1].0 && tail[1].1.ack() && !tail[1].1.fin(),
        "{tail:?}"
    );
    assert!(!tail[2].0 && tail[2].1.fin(), "{tail:?}");
    assert!(tail[3].0 && tail[3].1.ack() && !tail[3].1.fin(), "{tail:?}");
}

#[test]
fn kernel_closes_first_and_ends_in_time_wait() {
    if !can_run(
        "kernel_closes_first_and_ends_in_time_wait",
        Link::Tun,
        &["ss"],
    ) {
        return;
    }
    let _serial = serial();
    let net = Net::new(Link::Tun, 1500);
    let mut utcp = spawn_utcp(net.utcp_ns(), move |sig| async move {
        let stack = Net::open_stack(Link::Tun, 1500, false)?;
        let l = stack.bind(sa("10.77.0.2:7"))?;
        sig.ready();
        let (mut s, _) = l.accept().await?;
        let mut got = Vec::new();
        s.read_to_end(&mut got).await?; // kernel's FIN first
        s.write_all(&got).await?;
        s.shutdown().await?;
        // LAST_ACK until the kernel ACKs our FIN.
        let end = tokio::time::Instant::now() + HANG_BOUND;
        while s.state() != State::Closed && tokio::time::Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let history = s.state_history();
        sig.until_stopped(Duration::from_secs(30)).await;
        stack.shutdown(Duration::from_secs(1)).await;
        io::Result::Ok(history)
    });
    utcp.wait_ready();
    let port = net
        .kernel
        .spawn(|| -> io::Result<u16> {
            let s = KTcpStream::connect_timeout(&sa("10.77.0.2:7"), Duration::from_secs(5))?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            let port = s.local_addr()?.port();
            (&s).write_all(b"hello")?;
            s.shutdown(Shutdown::Write)?;
            let mut back = Vec::new();
            (&s).read_to_end(&mut back)?;
            assert_eq!(back, b"hello");
            Ok(port)
        })
        .join()
        .unwrap()
        .unwrap()
        .unwrap();
    let tuple = format!("10.77.0.1:{port}");
    assert!(
        wait_for(HANG_BOUND, || ss_lines(&net.kernel, &tuple)
            .iter()
            .any(|l| l.starts_with("TIME-WAIT"))),
        "kernel socket not in TIME_WAIT: {:?}",
        ss_lines(&net.kernel, &tuple)
    );
    let history = utcp.finish();
    assert!(
        history.ends_with(&[State::CloseWait, State::LastAck, State::Closed]),
        "{history:?}"
    );
}
