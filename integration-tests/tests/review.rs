//! Regression tests for bugs found in review of the runtime driver and the
//! public API (lost wakeups, leaks, drop and shutdown semantics).

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;
use utcp::StackExt;
use utcp::sim::LinkConfig;
use utcp_integration_tests::{Pair, wait_until};

fn link() -> LinkConfig {
    LinkConfig::default().delay(Duration::from_millis(5))
}

/// Two tasks accepting on one shared listener: each must get a connection.
/// With a single waker slot the first acceptor's waker was overwritten by the
/// second's and it never woke although a connection sat in the queue.
#[tokio::test(start_paused = true)]
async fn two_acceptors_on_one_listener_both_get_a_connection() {
    let p = Pair::new(101, link());
    let l = Arc::new(p.server.bind(p.server_addr(7)).unwrap());
    let a1 = tokio::spawn({
        let l = l.clone();
        async move { l.accept().await.map(|(s, _)| s) }
    });
    tokio::task::yield_now().await;
    let a2 = tokio::spawn({
        let l = l.clone();
        async move { l.accept().await.map(|(s, _)| s) }
    });
    tokio::task::yield_now().await;
    let _c1 = p.client.connect(p.server_addr(7)).await.unwrap();
    let _c2 = p.client.connect(p.server_addr(7)).await.unwrap();
    let both = tokio::time::timeout(Duration::from_secs(5), async {
        (a1.await.unwrap(), a2.await.unwrap())
    })
    .await
    .expect("an acceptor never woke although a connection was queued");
    both.0.unwrap();
    both.1.unwrap();
}

/// `Stack::shutdown` stops accepting: a pending `accept` returns
/// `NotConnected` instead of waiting forever.
#[tokio::test(start_paused = true)]
async fn stack_shutdown_wakes_a_pending_accept() {
    let p = Pair::new(102, link());
    let l = p.server.bind(p.server_addr(7)).unwrap();
    let acceptor = tokio::spawn(async move { l.accept().await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(10)).await;
    tokio::time::timeout(
        Duration::from_secs(5),
        p.server.shutdown(Duration::from_secs(1)),
    )
    .await
    .unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), acceptor)
        .await
        .expect("accept never woke after Stack::shutdown")
        .unwrap();
    assert_eq!(r.unwrap_err().kind(), ErrorKind::NotConnected);
}

/// After `Stack::shutdown` no task is left to drive a connection or a
/// listener: connecting and binding fail at once instead of hanging.
#[tokio::test(start_paused = true)]
async fn connect_and_bind_after_shutdown_fail_instead_of_hanging() {
    let p = Pair::new(103, link());
    let _l = p.server.bind(p.server_addr(7)).unwrap();
    p.client.shutdown(Duration::from_secs(1)).await;
    let r = tokio::time::timeout(Duration::from_secs(300), p.client.connect(p.server_addr(7)))
        .await
        .expect("connect on a shut-down stack never returned");
    assert_eq!(r.unwrap_err().kind(), ErrorKind::NotConnected);
    assert_eq!(p.client.stats().tasks, 0);
    let e = p.client.bind("10.0.0.1:9").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotConnected);
}

/// A connection already running when the stack stops (here: its task was
/// spawned but had not run yet) must not leave its handle waiting forever.
#[tokio::test(start_paused = true)]
async fn a_connect_racing_shutdown_does_not_hang() {
    let p = Pair::new(104, link());
    let client = p.client.clone();
    let addr = p.server_addr(7);
    // The connect starts while shutdown is between its reset and its stop.
    let connect = tokio::spawn(async move { client.connect(addr).await.map(|_| ()) });
    p.client.shutdown(Duration::ZERO).await;
    let r = tokio::time::timeout(Duration::from_secs(300), connect)
        .await
        .expect("a connect racing shutdown never returned")
        .unwrap();
    assert!(r.is_err());
    assert_eq!(p.client.stats().tasks, 0);
}

/// Dropping the last handle of a stack that was just created (its device
/// task had not run yet) must still stop the device task: the host then
/// answers nothing and reads no packet.
#[tokio::test(start_paused = true)]
async fn dropping_a_fresh_stack_stops_its_device_task() {
    let Pair {
        net: _net,
        a: _a,
        b,
        client,
        server,
    } = Pair::new(105, link());
    drop(server); // before its device task ever ran
    let server_addr: std::net::SocketAddr = "10.0.0.2:7".parse().unwrap();
    let r = tokio::time::timeout(Duration::from_secs(3), client.connect(server_addr)).await;
    assert!(
        r.is_err(),
        "the dropped stack still answered: {:?}",
        r.map(|r| r.map(|_| ()))
    );
    assert_eq!(
        b.stats().received,
        0,
        "the dropped stack still reads packets"
    );
}

/// Connections that die in the accept queue (reset by the peer before the
/// application accepted them) leave the backlog, so they must also leave the
/// queue: otherwise a peer that connects and resets in a loop grows the
/// queue without bound while the application does not accept.
#[tokio::test(start_paused = true)]
async fn connections_reset_before_accept_do_not_grow_the_queue_past_the_backlog() {
    let p = Pair::new(106, link());
    let backlog = 2;
    let l = p
        .server
        .bind_with_backlog(p.server_addr(7), backlog)
        .unwrap();
    for _ in 0..20 {
        let r =
            tokio::time::timeout(Duration::from_secs(5), p.client.connect(p.server_addr(7))).await;
        if let Ok(Ok(c)) = r {
            c.abort();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(wait_until(|| p.server.stats().connections == 0, Duration::from_secs(5)).await);
    let mut queued = 0;
    while let Ok(r) = tokio::time::timeout(Duration::from_millis(100), l.accept()).await {
        r.unwrap();
        queued += 1;
    }
    assert!(
        queued <= backlog,
        "{queued} connections sat in an accept queue of backlog {backlog}"
    );
}

/// Binding and dropping listeners while SYNs arrive, on two threads: a SYN
/// routed to a listener the runtime could not find (registered in the
/// endpoint but not yet, or no longer, in the runtime's table) became a
/// connection that no listener owned and no handle could ever close; it sat
/// in CLOSE_WAIT forever after the client's FIN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_bound_and_dropped_under_syns_leave_no_orphan() {
    let p = Pair::new(107, LinkConfig::default());
    let addr = p.server_addr(7);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let server = p.server.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(l) = server.bind(addr) {
                    tokio::task::yield_now().await;
                    drop(l);
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let mut clients = Vec::new();
    for _ in 0..8 {
        let client = p.client.clone();
        clients.push(tokio::spawn(async move {
            let end = tokio::time::Instant::now() + Duration::from_secs(3);
            while tokio::time::Instant::now() < end {
                // Connected or refused, then closed gracefully (FIN).
                let _ =
                    tokio::time::timeout(Duration::from_millis(200), client.connect(addr)).await;
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churn.await.unwrap();
    // Every server connection was reset with its listener, or closed after
    // the client's FIN; an orphan stays in CLOSE_WAIT.
    let server = p.server.clone();
    assert!(
        wait_until(|| server.stats().connections == 0, Duration::from_secs(5)).await,
        "{:?}",
        p.server.stats()
    );
}

/// A SYN that ends a TIME_WAIT record on a port nobody listens on any more
/// is answered with RST at once, not when some later packet happens to make
/// the device task flush the endpoint's replies.
#[tokio::test(start_paused = true)]
async fn a_syn_ending_time_wait_without_listener_is_refused_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let p = Pair::new(108, link());
    let l = p.server.bind(p.server_addr(7)).unwrap();
    let local: std::net::SocketAddr = format!("{}:41000", utcp_integration_tests::CLIENT)
        .parse()
        .unwrap();
    let mut c = p
        .client
        .connect_from(local, p.server_addr(7))
        .await
        .unwrap();
    let (mut s, _) = l.accept().await.unwrap();
    s.write_all(b"bye").await.unwrap();
    s.shutdown().await.unwrap();
    let mut b = Vec::new();
    c.read_to_end(&mut b).await.unwrap();
    drop(c);
    s.read_to_end(&mut b).await.unwrap();
    assert!(
        wait_until(
            || s.state() == utcp::State::TimeWait,
            Duration::from_secs(5)
        )
        .await
    );
    drop(s);
    drop(l);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(p.server.stats().time_wait, 1);
    assert!(wait_until(|| p.client.stats().connections == 0, Duration::from_secs(5)).await);
    let t0 = tokio::time::Instant::now();
    let e = p
        .client
        .connect_from(local, p.server_addr(7))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    assert!(
        t0.elapsed() < Duration::from_millis(100),
        "refused only after {:?} (a SYN retransmission)",
        t0.elapsed()
    );
}

/// Dropping a stream with data still queued sends all of it, then FIN.
#[tokio::test(start_paused = true)]
async fn dropping_a_stream_sends_queued_data_then_fin() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let p = Pair::new(109, link().rate(1_000_000));
    let l = p.server.bind(p.server_addr(7)).unwrap();
    let mut c = p.client.connect(p.server_addr(7)).await.unwrap();
    let (mut s, _) = l.accept().await.unwrap();
    let data = utcp_integration_tests::pattern(200_000, 9);
    c.write_all(&data).await.unwrap();
    drop(c);
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert!(got == data);
}

/// Shutdown against a peer that went silent: waits the grace, resets, and
/// returns with no task left.
#[tokio::test(start_paused = true)]
async fn shutdown_with_a_silent_peer_returns_after_the_grace() {
    let p = Pair::new(110, link());
    let l = p.server.bind(p.server_addr(7)).unwrap();
    let c = p.client.connect(p.server_addr(7)).await.unwrap();
    let _s = l.accept().await.unwrap();
    p.net
        .set_filter(&p.a, &p.b, |_| utcp::sim::FilterAction::Drop);
    p.net
        .set_filter(&p.b, &p.a, |_| utcp::sim::FilterAction::Drop);
    let t0 = tokio::time::Instant::now();
    tokio::time::timeout(
        Duration::from_secs(5),
        p.client.shutdown(Duration::from_secs(1)),
    )
    .await
    .unwrap();
    assert!(t0.elapsed() >= Duration::from_secs(1));
    assert!(
        t0.elapsed() < Duration::from_millis(1100),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(p.client.stats().tasks, 0);
    assert_eq!(p.client.stats().connections, 0);
    assert_eq!(c.state(), utcp::State::Closed);
}

/// The runtime's own handles outlive the last `Stack`: a `ListenerRef`'s
/// pending accept must end (the stack is gone) instead of waiting forever.
#[tokio::test(start_paused = true)]
async fn dropping_the_last_stack_ends_a_pending_runtime_accept() {
    let Pair {
        net: _net,
        a: _a,
        b: _b,
        client,
        server,
    } = Pair::new(111, link());
    let l = server.listen("10.0.0.2:7".parse().unwrap()).unwrap();
    let acceptor = tokio::spawn(async move {
        std::future::poll_fn(|cx| l.poll_accept(cx))
            .await
            .map(|_| ())
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    drop(server);
    drop(client);
    let r = tokio::time::timeout(Duration::from_secs(5), acceptor)
        .await
        .expect("accept never woke after the last Stack was dropped")
        .unwrap();
    assert_eq!(r.unwrap_err().kind(), ErrorKind::NotConnected);
}

/// `shutdown(Duration::MAX)` means "wait as long as it takes", as with
/// `tokio::time::timeout`; it must not panic on the deadline's overflow.
#[tokio::test(start_paused = true)]
async fn shutdown_with_an_unbounded_grace_does_not_panic() {
    let p = Pair::new(112, link());
    utcp_integration_tests::spawn_echo(p.server.bind(p.server_addr(7)).unwrap());
    let _c = p.client.connect(p.server_addr(7)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), p.client.shutdown(Duration::MAX))
        .await
        .unwrap();
    assert_eq!(p.client.stats().tasks, 0);
}

/// STYLE's error table: a reset is reported once as `ConnectionReset`; a
/// write after the error was reported (by a read or an earlier write) is
/// `BrokenPipe`, as with the kernel's EPIPE.
#[tokio::test(start_paused = true)]
async fn writes_after_a_reported_reset_are_broken_pipe() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let p = Pair::new(114, link());
    let l = p.server.bind(p.server_addr(7)).unwrap();
    let mut c1 = p.client.connect(p.server_addr(7)).await.unwrap();
    let (s1, _) = l.accept().await.unwrap();
    let mut c2 = p.client.connect(p.server_addr(7)).await.unwrap();
    let (s2, _) = l.accept().await.unwrap();
    s1.abort();
    s2.abort();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Reported by a read, then a write.
    let mut buf = [0u8; 8];
    let e = c1.read(&mut buf).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset);
    let e = c1.write(b"x").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BrokenPipe);
    // Reported by a first write; the second is a broken pipe.
    let e = c2.write(b"x").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset);
    let e = c2.write(b"x").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BrokenPipe);
}
