//! The MSS per address family: a dual-stack stack sizes each connection's
//! segments from the MTU and that connection's family (IPv4 MTU − 40, IPv6
//! MTU − 60), reading the device MTU at every connect and accept.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use utcp::sim::{FilterAction, LinkConfig};
use utcp::{StackConfig, StackExt};
use utcp_integration_tests::{Pair, echo_roundtrip, pattern, spawn_echo};
use utcp_proto::wire;

/// What a direction carried: the largest IP packet, and each SYN's MSS option.
#[derive(Default, Debug)]
struct Seen {
    largest: usize,
    syn_mss: Vec<Option<u16>>,
    /// The largest TCP payload of a segment.
    max_payload: usize,
    /// Segments after the SYNs without the timestamps option.
    without_ts: usize,
}

fn watch(p: &Pair) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    for (from, to) in [(&p.a, &p.b), (&p.b, &p.a)] {
        let s = seen.clone();
        p.net.set_filter(from, to, move |pkt| {
            let mut s = s.lock().unwrap();
            s.largest = s.largest.max(pkt.data.len());
            if let Ok(seg) = wire::parse_ip_tcp(pkt.data, true) {
                if seg.tcp.flags.syn() {
                    s.syn_mss.push(seg.tcp.options.mss);
                } else if seg.tcp.options.timestamps.is_none() && !seg.tcp.flags.rst() {
                    s.without_ts += 1;
                }
                s.max_payload = s.max_payload.max(seg.payload.len());
            }
            FilterAction::Pass
        });
    }
    seen
}

fn dual_stack(seed: u64) -> Pair {
    Pair::with(
        seed,
        LinkConfig::default().delay(Duration::from_millis(2)),
        LinkConfig::default().delay(Duration::from_millis(2)),
        StackConfig::default(),
        &["10.0.0.1", "fd00::1"],
        &["10.0.0.2", "fd00::2"],
    )
}

#[tokio::test(start_paused = true)]
async fn dual_stack_ipv6_uses_mtu_minus_60_and_ipv4_mtu_minus_40() {
    let p = dual_stack(41);
    let seen = watch(&p);
    let v6: std::net::SocketAddr = "[fd00::2]:7".parse().unwrap();
    let v4: std::net::SocketAddr = "10.0.0.2:7".parse().unwrap();
    spawn_echo(p.server.bind(v6).unwrap());
    spawn_echo(p.server.bind(v4).unwrap());

    let data = pattern(1 << 20, 41);
    let back = echo_roundtrip(&p.client, v6, &data).await.unwrap();
    assert!(back == data, "IPv6 echo differs");
    {
        let s = seen.lock().unwrap();
        // Both SYNs (ours and the SYN-ACK) advertise 1500 − 60.
        assert_eq!(s.syn_mss, vec![Some(1440), Some(1440)], "{s:?}");
        // Timestamps in every segment (RFC 7323): 1440 − 12 of payload.
        assert_eq!((s.max_payload, s.without_ts), (1428, 0), "{s:?}");
        // Full-sized segments, and none over the MTU.
        assert_eq!(s.largest, 1500, "{s:?}");
    }
    assert_eq!(p.a.stats().oversized + p.b.stats().oversized, 0);

    // The same stacks over IPv4: 1500 − 40.
    {
        let mut s = seen.lock().unwrap();
        s.syn_mss.clear();
        s.max_payload = 0;
    }
    let back = echo_roundtrip(&p.client, v4, &data).await.unwrap();
    assert!(back == data, "IPv4 echo differs");
    let s = seen.lock().unwrap();
    assert_eq!(s.syn_mss, vec![Some(1460), Some(1460)], "{s:?}");
    assert_eq!((s.max_payload, s.without_ts), (1448, 0), "{s:?}");
    assert_eq!(s.largest, 1500, "{s:?}");
    assert_eq!(p.a.stats().oversized + p.b.stats().oversized, 0);
}

#[tokio::test(start_paused = true)]
async fn raised_mtu_is_used_by_the_next_connection() {
    let p = dual_stack(42);
    let seen = watch(&p);
    let v4: std::net::SocketAddr = "10.0.0.2:7".parse().unwrap();
    spawn_echo(p.server.bind(v4).unwrap());
    let data = pattern(256 * 1024, 42);
    assert!(echo_roundtrip(&p.client, v4, &data).await.unwrap() == data);
    assert_eq!(seen.lock().unwrap().syn_mss, vec![Some(1460), Some(1460)]);

    // Jumbo frames on both hosts after the stacks started.
    p.a.set_mtu(9000);
    p.b.set_mtu(9000);
    seen.lock().unwrap().syn_mss.clear();
    seen.lock().unwrap().largest = 0;
    assert!(echo_roundtrip(&p.client, v4, &data).await.unwrap() == data);
    let s = seen.lock().unwrap();
    assert_eq!(s.syn_mss, vec![Some(8960), Some(8960)], "{s:?}");
    assert_eq!(s.largest, 9000, "{s:?}");
    assert_eq!(p.a.stats().oversized + p.b.stats().oversized, 0);
}
