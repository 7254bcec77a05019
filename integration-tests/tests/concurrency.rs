use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::sim::LinkConfig;
use utcp::{StackConfig, StackExt};
use utcp_integration_tests::{CLIENT, Pair, SERVER, echo_roundtrip, pattern, spawn_echo};

async fn many_echo(p: &Pair, n: usize, size: usize) {
    spawn_echo(p.server.bind_with_backlog(p.server_addr(7), n).unwrap());
    let mut tasks = Vec::new();
    for i in 0..n {
        let stack = p.client.clone();
        let addr = p.server_addr(7);
        tasks.push(tokio::spawn(async move {
            let data = pattern(size, i as u64);
            let back = echo_roundtrip(&stack, addr, &data)
                .await
                .unwrap_or_else(|e| panic!("connection {i}: {e}"));
            assert!(back == data, "connection {i}: bytes differ");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn thousand_concurrent_connections_each_echo_virtual_time() {
    let p = Pair::new(31, LinkConfig::default().delay(Duration::from_millis(2)));
    many_echo(&p, 1000, 2000).await;
    assert_eq!(p.client.stats().inbox_drops, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_connections_each_echo_real_time() {
    let p = Pair::new(32, LinkConfig::default().delay(Duration::from_millis(1)));
    // A hang bound, not a speed test: two cores may be busy with other builds.
    tokio::time::timeout(Duration::from_secs(300), many_echo(&p, 1000, 2000))
        .await
        .expect("1000 echoes hung (not done after 300 s)");
}

/// Runs `n` bulk transfers server → client over a rate-limited link and
/// returns the virtual time until all finished; with `stalled`, one more
/// connection whose reader never reads is open the whole time.
async fn bulk_time(n: usize, stalled: bool) -> Duration {
    let link = LinkConfig::default()
        .delay(Duration::from_millis(5))
        .rate(20_000_000)
        .queue_bytes(1 << 20);
    let p = Pair::with(33, link, link, StackConfig::default(), &[CLIENT], &[SERVER]);
    let l = p.server.bind(p.server_addr(9)).unwrap();
    let size = 2 << 20;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let data = pattern(size, 3);
                // Stalled peers make this write block forever; that is the point.
                let _ = s.write_all(&data).await;
                let _ = s.shutdown().await;
            });
        }
    });
    let _stalled = if stalled {
        let s = p.client.connect(p.server_addr(9)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await; // its window fills, then it sits
        Some(s)
    } else {
        None
    };
    let t0 = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..n {
        let stack = p.client.clone();
        let addr = p.server_addr(9);
        tasks.push(tokio::spawn(async move {
            let mut s = stack.connect(addr).await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            assert_eq!(got.len(), size);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    t0.elapsed()
}

#[tokio::test(start_paused = true)]
async fn a_stalled_reader_does_not_slow_the_others() {
    let base = bulk_time(4, false).await;
    let with_stall = bulk_time(4, true).await;
    eprintln!("without a stalled reader: {base:?}; with one: {with_stall:?}");
    assert!(
        with_stall.as_secs_f64() <= base.as_secs_f64() * 1.2,
        "{with_stall:?} vs {base:?}"
    );
}
