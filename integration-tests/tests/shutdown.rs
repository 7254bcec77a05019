use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::sim::LinkConfig;
use utcp::{StackExt, State};
use utcp_integration_tests::{CLIENT, Pair, pattern, spawn_echo, wait_until};

fn link() -> LinkConfig {
    LinkConfig::default().delay(Duration::from_millis(5))
}

#[tokio::test(start_paused = true)]
async fn half_close_shut_down_side_keeps_reading() {
    let p = Pair::new(21, link());
    let l = p.server.bind(p.server_addr(7)).unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap(); // client's FIN
        assert_eq!(s.state(), State::CloseWait);
        // Still allowed to send after the peer's FIN.
        let reply = pattern(100_000, 21);
        s.write_all(&reply).await.unwrap();
        s.shutdown().await.unwrap();
        (got, s)
    });
    let mut c = p.client.connect(p.server_addr(7)).await.unwrap();
    c.write_all(b"request").await.unwrap();
    c.shutdown().await.unwrap();
    assert!(
        c.write_all(b"more")
            .await
            .is_err_and(|e| e.kind() == ErrorKind::BrokenPipe)
    );
    let mut back = Vec::new();
    c.read_to_end(&mut back).await.unwrap();
    assert!(back == pattern(100_000, 21));
    let (got, s) = server.await.unwrap();
    assert_eq!(got, b"request");
    assert!(c.state_history().contains(&State::FinWait2));
    assert_eq!(c.state(), State::TimeWait);
    assert!(wait_until(|| s.state() == State::Closed, Duration::from_secs(5)).await);
    assert_eq!(
        s.state_history(),
        vec![
            State::SynReceived,
            State::Established,
            State::CloseWait,
            State::LastAck,
            State::Closed
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn simultaneous_close_passes_through_closing() {
    let p = Pair::new(22, link());
    let l = p.server.bind(p.server_addr(7)).unwrap();
    let (c, s) = tokio::join!(p.client.connect(p.server_addr(7)), async {
        l.accept().await.unwrap().0
    });
    let (mut c, mut s) = (c.unwrap(), s);
    // Both send FIN in the same instant: each receives the other's FIN while
    // its own is unacknowledged.
    let (r1, r2) = tokio::join!(c.shutdown(), s.shutdown());
    r1.unwrap();
    r2.unwrap();
    let mut buf = Vec::new();
    c.read_to_end(&mut buf).await.unwrap();
    s.read_to_end(&mut buf).await.unwrap();
    assert!(
        wait_until(
            || c.state() == State::TimeWait && s.state() == State::TimeWait,
            Duration::from_secs(5)
        )
        .await
    );
    for h in [c.state_history(), s.state_history()] {
        assert!(
            h.ends_with(&[
                State::Established,
                State::FinWait1,
                State::Closing,
                State::TimeWait
            ]),
            "{h:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn time_wait_lasts_2msl_then_the_4_tuple_is_free() {
    let p = Pair::new(23, link());
    spawn_echo(p.server.bind(p.server_addr(7)).unwrap());
    let local: SocketAddr = format!("{CLIENT}:40000").parse().unwrap();
    let mut c = p
        .client
        .connect_from(local, p.server_addr(7))
        .await
        .unwrap();
    c.write_all(b"x").await.unwrap();
    c.shutdown().await.unwrap();
    let mut b = Vec::new();
    c.read_to_end(&mut b).await.unwrap();
    assert_eq!(c.state(), State::TimeWait);
    let t0 = tokio::time::Instant::now();
    drop(c);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(p.client.stats().time_wait, 1);
    // The 4-tuple is still taken.
    let e = p
        .client
        .connect_from(local, p.server_addr(7))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrInUse);
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert_eq!(p.client.stats().time_wait, 1, "TIME_WAIT ended before 2MSL");
    assert!(wait_until(|| p.client.stats().connections == 0, Duration::from_secs(2)).await);
    let lasted = t0.elapsed();
    assert!(
        lasted >= Duration::from_secs(60) && lasted < Duration::from_secs(61),
        "{lasted:?}"
    );
    // Free again.
    let c = p
        .client
        .connect_from(local, p.server_addr(7))
        .await
        .unwrap();
    assert_eq!(c.state(), State::Established);
}

#[tokio::test(start_paused = true)]
async fn copy_bidirectional_finishes_both_ways_and_sends_both_fins() {
    let p = Pair::new(24, link());
    let l = p.server.bind(p.server_addr(7)).unwrap();
    let (mut app_side, mut proxy_side) = tokio::io::duplex(4096);
    let proxy = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let r = tokio::io::copy_bidirectional(&mut s, &mut proxy_side)
            .await
            .unwrap();
        (r, s)
    });
    let app = tokio::spawn(async move {
        app_side.write_all(&pattern(50_000, 2)).await.unwrap();
        app_side.shutdown().await.unwrap();
        let mut got = Vec::new();
        app_side.read_to_end(&mut got).await.unwrap();
        got
    });
    let mut c = p.client.connect(p.server_addr(7)).await.unwrap();
    c.write_all(&pattern(70_000, 1)).await.unwrap();
    c.shutdown().await.unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).await.unwrap(); // the proxy's FIN
    assert!(got == pattern(50_000, 2));
    let ((to_duplex, to_stream), s) = proxy.await.unwrap();
    assert_eq!((to_duplex, to_stream), (70_000, 50_000));
    assert!(app.await.unwrap() == pattern(70_000, 1));
    // Both FINs were sent and acknowledged.
    // Both FINs were sent and acknowledged: each side is done (the FINs may
    // cross, making it a simultaneous close).
    let done = |st: State| matches!(st, State::Closed | State::TimeWait);
    assert!(
        wait_until(
            || done(s.state()) && done(c.state()),
            Duration::from_secs(5)
        )
        .await,
        "{:?} {:?}",
        s.state(),
        c.state()
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_a_stream_with_unread_data_resets_the_peer() {
    let p = Pair::new(25, link());
    let l = p.server.bind(p.server_addr(7)).unwrap();
    let mut c = p.client.connect(p.server_addr(7)).await.unwrap();
    let (s, _) = l.accept().await.unwrap();
    c.write_all(b"never read").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(s); // unread data: RST, as the kernel does
    let mut buf = [0u8; 8];
    let e = c.read(&mut buf).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset);
    // Reported once; then reads see EOF and writes a broken pipe, as with a
    // kernel socket.
    assert_eq!(c.read(&mut buf).await.unwrap(), 0);
    let e = c.write_all(b"x").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BrokenPipe);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_owned_write_half_sends_fin_and_reading_goes_on() {
    let p = Pair::new(26, link());
    let l = p.server.bind(p.server_addr(7)).unwrap();
    let c = p.client.connect(p.server_addr(7)).await.unwrap();
    let (mut s, _) = l.accept().await.unwrap();
    let (mut r, w) = c.into_split();
    drop(w);
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap(); // EOF: the FIN arrived
    s.write_all(b"still here").await.unwrap();
    let mut buf = [0u8; 10];
    r.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"still here");
}

#[tokio::test(start_paused = true)]
async fn dropping_a_listener_resets_connections_not_accepted() {
    let p = Pair::new(27, link());
    let l = p.server.bind(p.server_addr(7)).unwrap();
    let mut c = p.client.connect(p.server_addr(7)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(l);
    let mut buf = [0u8; 1];
    let e = c.read(&mut buf).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset);
}

#[tokio::test(start_paused = true)]
async fn stack_shutdown_closes_gracefully_and_leaves_no_task() {
    let p = Pair::new(28, link());
    spawn_echo(p.server.bind(p.server_addr(7)).unwrap());
    let mut streams = Vec::new();
    for _ in 0..5 {
        streams.push(p.client.connect(p.server_addr(7)).await.unwrap());
    }
    assert!(p.client.stats().tasks >= 6);
    tokio::time::timeout(
        Duration::from_secs(5),
        p.client.shutdown(Duration::from_secs(1)),
    )
    .await
    .unwrap();
    let st = p.client.stats();
    assert_eq!(st.tasks, 0, "{st:?}");
    // The peers saw FIN (EOF), not RST: the echo server closed its side too.
    for s in &mut streams {
        assert!(
            matches!(s.state(), State::TimeWait | State::Closed),
            "{:?}",
            s.state()
        );
    }
}

/// The grace period ends when the last connection closes, not at a polling
/// tick: over a 3 ms link the FIN exchange (FIN out, the echo server's FIN
/// back) takes about two one-way trips, and `shutdown` returns then, well
/// before the 10 ms a polling loop would first look again (virtual time).
#[tokio::test(start_paused = true)]
async fn stack_shutdown_returns_when_the_last_connection_closes() {
    let p = Pair::new(29, LinkConfig::default().delay(Duration::from_millis(3)));
    spawn_echo(p.server.bind(p.server_addr(7)).unwrap());
    let s = p.client.connect(p.server_addr(7)).await.unwrap();
    let t0 = tokio::time::Instant::now();
    tokio::time::timeout(
        Duration::from_secs(5),
        p.client.shutdown(Duration::from_secs(10)),
    )
    .await
    .unwrap();
    let took = t0.elapsed();
    assert!(
        matches!(s.state(), State::TimeWait | State::Closed),
        "closed gracefully: {:?}",
        s.state()
    );
    assert!(
        took >= Duration::from_millis(6),
        "two one-way trips: {took:?}"
    );
    assert!(
        took < Duration::from_millis(9),
        "returned when the connection closed, not at a 10 ms tick: {took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_stack_handle_resets_and_stops_tasks() {
    let p = Pair::new(29, link());
    let l = p.server.bind(p.server_addr(7)).unwrap();
    let c = p.client.connect(p.server_addr(7)).await.unwrap();
    let (mut s, _) = l.accept().await.unwrap();
    // `c` holds a stack clone; dropping both the stream and the Pair's handle
    // is the last user handle.
    let client_stack = p.client.clone();
    drop(c);
    drop(client_stack);
    let Pair {
        client,
        server: _server,
        ..
    } = p;
    drop(client);
    let mut buf = [0u8; 1];
    let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap();
    // FIN (graceful close of the dropped stream) or RST: either way the
    // connection ends promptly.
    assert!(matches!(r, Ok(0)) || r.is_err_and(|e| e.kind() == ErrorKind::ConnectionReset));
}

#[tokio::test(start_paused = true)]
async fn a_stream_held_in_time_wait_is_closed_by_stack_shutdown() {
    let p = Pair::new(30, link());
    spawn_echo(p.server.bind(p.server_addr(7)).unwrap());
    let mut c = p.client.connect(p.server_addr(7)).await.unwrap();
    c.shutdown().await.unwrap();
    let mut b = Vec::new();
    c.read_to_end(&mut b).await.unwrap();
    assert_eq!(c.state(), State::TimeWait);
    p.client.shutdown(Duration::from_millis(100)).await;
    assert_eq!(c.state(), State::Closed);
    assert_eq!(p.client.stats().tasks, 0);
}

/// `Stack::shutdown`'s grace: every connection gets a FIN at once; one
/// whose peer never closes its side is reset when the grace ends, and
/// `shutdown` returns then (virtual time).
#[tokio::test(start_paused = true)]
async fn stack_shutdown_sends_fin_then_resets_after_the_grace() {
    let p = Pair::new(31, link());
    let l = p
        .client
        .bind(SocketAddr::new(CLIENT.parse().unwrap(), 9))
        .unwrap();
    // The server side connects to the client stack's listener; the client
    // stack is the one shut down.
    let mut peer = p
        .server
        .connect(SocketAddr::new(CLIENT.parse().unwrap(), 9))
        .await
        .unwrap();
    let (_ours, _) = l.accept().await.unwrap();
    let stack = p.client.clone();
    let t0 = tokio::time::Instant::now();
    let shutdown = tokio::spawn(async move { stack.shutdown(Duration::from_secs(2)).await });
    // The FIN first: the peer reads EOF, one trip later.
    let mut buf = [0u8; 16];
    let n = peer.read(&mut buf).await.unwrap();
    assert_eq!(n, 0, "EOF from the FIN");
    assert!(
        t0.elapsed() < Duration::from_millis(20),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(peer.state(), State::CloseWait);
    // The peer never closes: at the grace's end the connection is reset.
    shutdown.await.unwrap();
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_millis(2_050),
        "{took:?}"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let e = peer.write_all(b"late").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
}
