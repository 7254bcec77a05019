//! Keepalive and the user timeout end to end on the in-memory network, in
//! virtual time: probes keep an idle connection whose peer answers; a peer
//! that went silent fails the connection with `TimedOut` at the time the
//! settings say.

use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use utcp::sim::{FilterAction, LinkConfig};
use utcp::{StackExt, TcpKeepalive};
use utcp_integration_tests::Pair;

/// A pair whose server → client direction drops everything once `cut` is set.
fn pair(seed: u64) -> (Pair, Arc<AtomicBool>) {
    let p = Pair::new(seed, LinkConfig::default().delay(Duration::from_millis(5)));
    let cut = Arc::new(AtomicBool::new(false));
    let c = cut.clone();
    p.net.set_filter(&p.b, &p.a, move |_| {
        if c.load(Ordering::Relaxed) {
            FilterAction::Drop
        } else {
            FilterAction::Pass
        }
    });
    (p, cut)
}

#[tokio::test(start_paused = true)]
async fn keepalive_probes_keep_an_idle_connection_and_detect_a_dead_peer() {
    let (p, cut) = pair(131);
    let l = p.server.bind(p.server_addr(9)).unwrap();
    let mut c = p.client.connect(p.server_addr(9)).await.unwrap();
    let (_s, _) = l.accept().await.unwrap();
    assert!(!c.keepalive().unwrap());
    c.set_tcp_keepalive(
        &TcpKeepalive::new()
            .with_time(Duration::from_secs(10))
            .with_interval(Duration::from_secs(2))
            .with_retries(3),
    )
    .unwrap();
    assert!(c.keepalive().unwrap());
    let ka = c.tcp_keepalive().unwrap();
    assert_eq!(ka.time(), Some(Duration::from_secs(10)));
    assert_eq!(ka.retries(), Some(3));

    // Idle for 65 s with a live peer: a probe every 10 s (each answered).
    tokio::time::sleep(Duration::from_secs(65)).await;
    let probes = c.stats().keepalive_probes;
    assert!((5..=7).contains(&probes), "{probes} probes in 65 s");
    assert_eq!(c.state(), utcp::State::Established);

    // The peer goes silent: three unanswered probes, then TimedOut one
    // interval after the third: at most idle + 3 × interval = 16 s on.
    cut.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    let mut buf = [0u8; 8];
    let err = tokio::time::timeout(Duration::from_secs(60), c.read(&mut buf))
        .await
        .expect("keepalive never gave up")
        .unwrap_err();
    let waited = t0.elapsed();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(
        waited > Duration::from_secs(6) && waited <= Duration::from_secs(16),
        "{waited:?}"
    );
    assert_eq!(c.stats().keepalive_probes, probes + 3);
}

#[tokio::test(start_paused = true)]
async fn user_timeout_aborts_at_the_timeout_not_after_fifteen_retransmissions() {
    let (p, cut) = pair(132);
    let l = p.server.bind(p.server_addr(9)).unwrap();
    let sock = p.client.socket_v4().unwrap();
    sock.set_tcp_user_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(
        sock.tcp_user_timeout().unwrap(),
        Some(Duration::from_secs(5))
    );
    let mut c = sock.connect(p.server_addr(9)).await.unwrap();
    let (_s, _) = l.accept().await.unwrap();
    assert_eq!(c.tcp_user_timeout().unwrap(), Some(Duration::from_secs(5)));
    cut.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    c.write_all(b"nobody acknowledges this").await.unwrap();
    let mut buf = [0u8; 8];
    let err = tokio::time::timeout(Duration::from_secs(600), c.read(&mut buf))
        .await
        .expect("the user timeout never fired")
        .unwrap_err();
    let waited = t0.elapsed();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_millis(5_100),
        "{waited:?}"
    );
    let st = c.stats();
    assert!(st.rto_count < 15, "{st:?}");
}
