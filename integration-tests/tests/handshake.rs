use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::sim::{FilterAction, LinkConfig};
use utcp::{StackConfig, StackExt, State};
use utcp_integration_tests::{CLIENT, Pair, SERVER, echo_roundtrip, pattern, spawn_echo};

fn link() -> LinkConfig {
    LinkConfig::default().delay(Duration::from_millis(5))
}

#[tokio::test(start_paused = true)]
async fn simultaneous_open_both_sides_established() {
    let p = Pair::new(11, link());
    let a: SocketAddr = format!("{CLIENT}:5000").parse().unwrap();
    let b: SocketAddr = format!("{SERVER}:6000").parse().unwrap();
    let (ra, rb) = tokio::join!(p.client.connect_from(a, b), p.server.connect_from(b, a));
    let (mut sa, mut sb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(sa.state(), State::Established);
    assert_eq!(sb.state(), State::Established);
    // Both sides went SYN_SENT → SYN_RECEIVED → ESTABLISHED.
    assert_eq!(
        sa.state_history(),
        vec![State::SynSent, State::SynReceived, State::Established]
    );
    assert_eq!(
        sb.state_history(),
        vec![State::SynSent, State::SynReceived, State::Established]
    );
    sa.write_all(b"from a").await.unwrap();
    sb.write_all(b"from b").await.unwrap();
    let mut buf = [0u8; 6];
    sb.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"from a");
    sa.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"from b");
}

#[tokio::test(start_paused = true)]
async fn connect_to_closed_port_is_refused() {
    let p = Pair::new(12, link());
    let err = p.client.connect(p.server_addr(9)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    assert!(p.server.stats().resets_sent >= 1);
}

#[tokio::test(start_paused = true)]
async fn silent_peer_times_out_after_syn_retries() {
    let p = Pair::new(13, link());
    p.net.set_filter(&p.a, &p.b, |_| FilterAction::Drop);
    let t0 = tokio::time::Instant::now();
    let err = p.client.connect(p.server_addr(7)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    // 6 retries: 1 + 2 + 4 + 8 + 16 + 32 + 64 = 127 s.
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_secs(126) && waited <= Duration::from_secs(129),
        "{waited:?}"
    );
    assert_eq!(
        p.net.stats(&p.a, &p.b).filtered,
        7,
        "one SYN and six retransmissions"
    );
}

#[tokio::test(start_paused = true)]
async fn ipv6_connection_echoes() {
    let p = Pair::with(
        14,
        link(),
        link(),
        StackConfig::default(),
        &["fd00::1"],
        &["fd00::2"],
    );
    let addr: SocketAddr = "[fd00::2]:7".parse().unwrap();
    spawn_echo(p.server.bind(addr).unwrap());
    let data = pattern(200_000, 14);
    let back = echo_roundtrip(&p.client, addr, &data).await.unwrap();
    assert!(back == data);
}

#[tokio::test(start_paused = true)]
async fn full_backlog_drops_syns_until_accept() {
    let p = Pair::new(16, link());
    let l = p.server.bind_with_backlog(p.server_addr(7), 2).unwrap();
    let c1 = p.client.connect(p.server_addr(7)).await.unwrap();
    let c2 = p.client.connect(p.server_addr(7)).await.unwrap();
    // The third SYN is dropped while two wait to be accepted; it is
    // retransmitted and succeeds once the application accepts.
    let third = tokio::spawn({
        let stack = p.client.clone();
        let addr = p.server_addr(7);
        async move { stack.connect(addr).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(p.server.stats().backlog_drops >= 1);
    let _a1 = l.accept().await.unwrap();
    let _a2 = l.accept().await.unwrap();
    let c3 = third.await.unwrap().unwrap();
    let _a3 = l.accept().await.unwrap();
    drop((c1, c2, c3));
}

#[tokio::test(start_paused = true)]
async fn accept_any_listener_reports_the_original_destination() {
    let p = Pair::new(17, link());
    // Everything the client sends goes to the server host, whatever the address.
    p.net.set_default_route(&p.a, Some(&p.b));
    let l = p.server.bind_any(16).unwrap();
    let dst: SocketAddr = "10.9.9.9:8080".parse().unwrap();
    let mut c = p.client.connect(dst).await.unwrap();
    let (mut s, peer) = l.accept().await.unwrap();
    assert_eq!(s.local_addr().unwrap(), dst);
    assert_eq!(peer, c.local_addr().unwrap());
    c.write_all(b"to anywhere").await.unwrap();
    let mut buf = [0u8; 11];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"to anywhere");
    // A second destination on another port goes to the same listener.
    let dst2: SocketAddr = "10.7.7.7:443".parse().unwrap();
    let _c2 = p.client.connect(dst2).await.unwrap();
    let (s2, _) = l.accept().await.unwrap();
    assert_eq!(s2.local_addr().unwrap(), dst2);
}
