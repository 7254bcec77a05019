use std::time::Duration;
use utcp::StackExt;
use utcp::sim::LinkConfig;
use utcp_integration_tests::{Pair, echo_roundtrip, pattern, spawn_echo};

#[tokio::test(start_paused = true)]
async fn echo_1mib_clean_link() {
    let p = Pair::new(1, LinkConfig::default().delay(Duration::from_millis(5)));
    let l = p.server.bind(p.server_addr(7)).unwrap();
    spawn_echo(l);
    let data = pattern(1 << 20, 1);
    let back = echo_roundtrip(&p.client, p.server_addr(7), &data)
        .await
        .unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "echoed bytes differ");
}

#[tokio::test(start_paused = true)]
async fn echo_reports_stats() {
    let p = Pair::new(2, LinkConfig::default().delay(Duration::from_millis(5)));
    let l = p.server.bind(p.server_addr(7)).unwrap();
    spawn_echo(l);
    let t0 = tokio::time::Instant::now();
    let data = pattern(256 * 1024, 2);
    let back = echo_roundtrip(&p.client, p.server_addr(7), &data)
        .await
        .unwrap();
    assert!(back == data);
    let el = t0.elapsed();
    let st = p.client.stats();
    eprintln!(
        "virtual {el:?} stats {st:?} link {:?}",
        p.net.stats(&p.a, &p.b)
    );
    assert!(st.tx_packets > 180, "{st:?}");
}
