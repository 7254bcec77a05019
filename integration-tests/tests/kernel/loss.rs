//! Real wire loss both ways: an nftables drop in the kernel namespace's input
//! hook (toward the kernel) and utcp's seeded impairment wrapper on its
//! device (toward utcp). An output-hook drop is not wire loss: Linux re-sends
//! at once.

use super::*;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use utcp::StackExt;
use utcp_integration_tests::pattern;
use utcp_runtime::device::impair::{Impair, ImpairConfig};

/// The kernel's TCP RetransSegs counter in a namespace.
fn kernel_retrans(ns: &utcp_integration_tests::netns::Netns) -> u64 {
    let out = ns
        .exec("cat", &["/proc/net/snmp"])
        .expect("read /proc/net/snmp");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines().filter(|l| l.starts_with("Tcp:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        panic!("no Tcp: lines in /proc/net/snmp")
    };
    let idx = names
        .split_whitespace()
        .position(|n| n == "RetransSegs")
        .expect("RetransSegs column");
    values
        .split_whitespace()
        .nth(idx)
        .and_then(|v| v.parse().ok())
        .expect("RetransSegs value")
}

/// Drops `percent` % of TCP packets arriving at the kernel from `iface`.
fn nft_drop(ns: &utcp_integration_tests::netns::Netns, iface: &str, percent: u32) {
    ns.exec("nft", &["add", "table", "inet", "utcploss"])
        .expect("nft table");
    ns.exec(
        "nft",
        &[
            "add",
            "chain",
            "inet",
            "utcploss",
            "input",
            "{ type filter hook input priority 0; policy accept; }",
        ],
    )
    .expect("nft chain");
    let rule = format!(
        "iifname \"{iface}\" meta l4proto tcp numgen random mod 100 < {percent} counter drop"
    );
    let mut args = vec!["add", "rule", "inet", "utcploss", "input"];
    args.extend(rule.split(' '));
    ns.exec("nft", &args).expect("nft rule");
}

fn nft_dropped(ns: &utcp_integration_tests::netns::Netns) -> u64 {
    let out = ns
        .exec("nft", &["list", "chain", "inet", "utcploss", "input"])
        .expect("nft list");
    let text = String::from_utf8_lossy(&out.stdout);
    let after = text
        .split("counter packets ")
        .nth(1)
        .expect("counter in rule");
    after
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("packet count")
}

fn lossy_echo(test: &str, link: Link, percent: u32, size: usize) {
    if !can_run(test, link, &["nft"]) {
        return;
    }
    // Every offload off on both sides: a dropped packet is one segment.
    let _serial = serial_with(Offloads::Off);
    let net = Net::new(link, 1500);
    let iface = match link {
        Link::Tun => "utun0",
        Link::Raw => "va",
    };
    let utcp_ip = net.utcp_ip;
    let loss = percent as f64 / 100.0;
    let mut utcp = spawn_utcp(net.utcp_ns(), move |sig| async move {
        let (stack, impair) = match link {
            Link::Tun => {
                let dev = Net::tun_device(1500, false)?;
                let imp = Arc::new(Impair::new(
                    dev,
                    ImpairConfig {
                        rx_loss: loss,
                        tx_loss: 0.0,
                        seed: 7,
                    },
                ));
                (
                    Stack::new(imp.clone(), StackConfig::default()),
                    ImpairHandle::Tun(imp),
                )
            }
            Link::Raw => {
                let dev = Net::raw_device(None)?;
                let imp = Arc::new(Impair::new(
                    dev,
                    ImpairConfig {
                        rx_loss: loss,
                        tx_loss: 0.0,
                        seed: 7,
                    },
                ));
                (
                    Stack::new(imp.clone(), StackConfig::default()),
                    ImpairHandle::Raw(imp),
                )
            }
        };
        let l = stack.bind(SocketAddr::new(utcp_ip, 7))?;
        sig.ready();
        let (mut s, _) = tokio::time::timeout(Duration::from_secs(30), l.accept())
            .await
            .map_err(io::Error::other)??;
        {
            let (mut r, mut w) = s.split();
            tokio::io::copy(&mut r, &mut w).await?;
            w.shutdown().await?;
        }
        let stats = s.stats();
        sig.until_stopped(Duration::from_secs(120)).await;
        drop(s);
        stack.shutdown(Duration::from_secs(1)).await;
        io::Result::Ok((stats, impair.rx_dropped()))
    });
    utcp.wait_ready();
    nft_drop(&net.kernel, iface, percent);
    let retrans_before = kernel_retrans(&net.kernel);
    let data = pattern(size, 5);
    let expect = data.clone();
    let back = net
        .kernel
        .spawn(move || kernel_echo_client(SocketAddr::new(utcp_ip, 7), data))
        .join()
        .unwrap()
        .unwrap()
        .expect("kernel client");
    assert!(back == expect, "echoed bytes differ");
    let kernel_dropped = nft_dropped(&net.kernel);
    let kernel_retrans_delta = kernel_retrans(&net.kernel) - retrans_before;
    let (stats, utcp_dropped) = utcp.finish();
    eprintln!(
        "{test}: nft dropped {kernel_dropped}, impairment dropped {utcp_dropped}, kernel retransmitted {kernel_retrans_delta}, utcp retransmitted {} segments ({} RTOs, {} fast retransmits)",
        stats.segments_retransmitted, stats.rto_count, stats.fast_retransmits
    );
    assert!(kernel_dropped > 0, "the kernel side lost nothing");
    assert!(utcp_dropped > 0, "the utcp side lost nothing");
    assert!(kernel_retrans_delta > 0, "the kernel never retransmitted");
    assert!(stats.segments_retransmitted > 0, "utcp never retransmitted");
}

enum ImpairHandle {
    Tun(Arc<Impair<TunDevice>>),
    Raw(Arc<Impair<RawDevice>>),
}

impl ImpairHandle {
    fn rx_dropped(&self) -> u64 {
        match self {
            ImpairHandle::Tun(i) => i.stats().rx_dropped,
            ImpairHandle::Raw(i) => i.stats().rx_dropped,
        }
    }
}

#[test]
fn five_percent_loss_each_way_1mib_echoed_exactly() {
    lossy_echo(
        "five_percent_loss_each_way_1mib_echoed_exactly",
        Link::Tun,
        5,
        1 << 20,
    );
}

#[test]
fn one_percent_loss_each_way_10mib_echoed_exactly() {
    lossy_echo(
        "one_percent_loss_each_way_10mib_echoed_exactly",
        Link::Raw,
        1,
        10 << 20,
    );
}
