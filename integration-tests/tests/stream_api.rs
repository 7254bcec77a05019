//! tokio-parity methods on `TcpStream` and its halves: peek, try_read /
//! try_write, take_error, nodelay (Nagle), ttl, the halves' addresses, reunite.

use std::io::ErrorKind;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use utcp::sim::{FilterAction, LinkConfig};
use utcp::{StackExt, TcpStream};
use utcp_integration_tests::Pair;

async fn connected(p: &Pair) -> (TcpStream, TcpStream) {
    let l = p.server.bind(p.server_addr(7)).unwrap();
    let c = p.client.connect(p.server_addr(7)).await.unwrap();
    let (s, _) = l.accept().await.unwrap();
    (c, s)
}

fn pair(seed: u64) -> Pair {
    Pair::new(seed, LinkConfig::default().delay(Duration::from_millis(1)))
}

#[tokio::test(start_paused = true)]
async fn peek_does_not_consume_and_try_read_would_block_before_data() {
    let p = pair(61);
    let (mut c, mut s) = connected(&p).await;
    let mut buf = [0u8; 16];
    assert_eq!(
        s.try_read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    c.write_all(b"hello").await.unwrap();
    assert_eq!(s.peek(&mut buf).await.unwrap(), 5);
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(s.peek(&mut buf[..3]).await.unwrap(), 3);
    let mut got = [0u8; 5];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"hello");
    assert_eq!(
        s.try_read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    // try_write queues; the peer reads it with try_read once it arrived.
    assert_eq!(c.try_write(b"abc").unwrap(), 3);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(s.try_read(&mut buf).unwrap(), 3);
    assert_eq!(&buf[..3], b"abc");
    // After shutdown, writing is a broken pipe; the peer sees EOF, also by peek.
    c.shutdown().await.unwrap();
    assert_eq!(c.try_write(b"x").unwrap_err().kind(), ErrorKind::BrokenPipe);
    assert_eq!(s.peek(&mut buf).await.unwrap(), 0);
    assert_eq!(s.try_read(&mut buf).unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn take_error_reports_a_reset_once() {
    let p = pair(62);
    let (c, s) = connected(&p).await;
    assert!(c.take_error().unwrap().is_none());
    s.abort();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let e = c.take_error().unwrap().expect("the reset");
    assert_eq!(e.kind(), ErrorKind::ConnectionReset);
    assert!(c.take_error().unwrap().is_none(), "taken once");
    // Reported: reads now see EOF, as a kernel socket after ECONNRESET.
    let mut buf = [0u8; 4];
    assert_eq!(c.try_read(&mut buf).unwrap(), 0);
}

/// Three small writes 1 ms apart, then the time until the peer read all
/// three, and how many segments carried them.
async fn three_small_writes(nodelay: bool) -> (Duration, u64, u64) {
    // 10 ms each way: the client hears the first ACK 20 ms after its write.
    let p = Pair::new(66, LinkConfig::default().delay(Duration::from_millis(10)));
    let (mut c, mut s) = connected(&p).await;
    assert!(!c.nodelay().unwrap(), "Nagle is on by default");
    let (_r, w) = c.split();
    w.set_nodelay(nodelay).unwrap();
    assert_eq!(c.nodelay().unwrap(), nodelay);
    let before = s.stats().segments_received;
    let t0 = tokio::time::Instant::now();
    for m in [b"a", b"b", b"c"] {
        c.write_all(m).await.unwrap();
        // Let the connection's task run: each write is its own flush.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut got = [0u8; 3];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"abc");
    let held = c.stats().nagle_held;
    (t0.elapsed(), s.stats().segments_received - before, held)
}

#[tokio::test(start_paused = true)]
async fn nagle_holds_small_writes_until_the_ack_and_nodelay_sends_at_once() {
    // Nagle (RFC 896, Minshall): "a" leaves, "b" and "c" wait for its ACK
    // (one round trip, utcp's peer ACKs at once) and leave as one segment.
    let (waited, segs, held) = three_small_writes(false).await;
    assert!(
        waited >= Duration::from_millis(30) && waited < Duration::from_millis(40),
        "{waited:?}"
    );
    assert_eq!(segs, 2, "a, then bc");
    assert!(held > 0);
    // TCP_NODELAY: three segments at once, read a one-way delay later.
    let (waited, segs, held) = three_small_writes(true).await;
    assert!(waited < Duration::from_millis(15), "{waited:?}");
    assert_eq!(segs, 3);
    assert_eq!(held, 0);
}

#[tokio::test(start_paused = true)]
async fn set_ttl_is_written_into_the_ip_header() {
    let p = pair(64);
    let ttls = Arc::new(Mutex::new(Vec::new()));
    let t = ttls.clone();
    p.net.set_filter(&p.a, &p.b, move |pkt| {
        // IPv4: the TTL is byte 8 of the header.
        t.lock().unwrap().push(pkt.data[8]);
        FilterAction::Pass
    });
    let (mut c, mut s) = connected(&p).await;
    assert_eq!(c.ttl().unwrap(), 64);
    c.set_ttl(7).unwrap();
    assert_eq!(c.ttl().unwrap(), 7);
    assert_eq!(c.set_ttl(0).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(c.set_ttl(256).unwrap_err().kind(), ErrorKind::InvalidInput);
    ttls.lock().unwrap().clear();
    c.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).await.unwrap();
    let seen = ttls.lock().unwrap().clone();
    assert!(!seen.is_empty() && seen.iter().all(|&t| t == 7), "{seen:?}");
}

#[tokio::test(start_paused = true)]
async fn halves_know_their_addresses_and_reunite() -> Result<(), Box<dyn std::error::Error>> {
    let p = pair(65);
    let (mut c, s) = connected(&p).await;
    let (local, peer) = (c.local_addr()?, c.peer_addr()?);
    {
        let (r, w) = c.split();
        assert_eq!((r.local_addr()?, r.peer_addr()?), (local, peer));
        assert_eq!((w.local_addr()?, w.peer_addr()?), (local, peer));
        assert_eq!(r.as_ref().local_addr()?, local);
    }
    let (r, w) = c.into_split();
    assert_eq!((r.local_addr()?, r.peer_addr()?), (local, peer));
    assert_eq!((w.local_addr()?, w.peer_addr()?), (local, peer));
    // Halves of different streams are refused, and given back.
    let (sr, sw) = s.into_split();
    let err = r.reunite(sw).unwrap_err();
    assert!(err.to_string().contains("not from the same socket"));
    let utcp::ReuniteError(r, sw) = err;
    let _server = sr.reunite(sw)?;
    let mut c = r.reunite(w)?;
    // The reunited stream still works (no FIN was sent by the write half).
    c.write_all(b"ok").await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn two_readable_waiters_are_both_woken() {
    let p = pair(66);
    let (mut c, s) = connected(&p).await;
    let s = Arc::new(s);
    let mut buf = [0u8; 1];
    assert_eq!(
        s.try_read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    let w1 = tokio::spawn({
        let s = s.clone();
        async move { s.readable().await }
    });
    let w2 = tokio::spawn({
        let s = s.clone();
        async move { s.ready(tokio::io::Interest::READABLE).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(
        !w1.is_finished() && !w2.is_finished(),
        "nothing to read yet"
    );
    c.write_all(b"x").await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), async {
        w1.await.unwrap().unwrap();
        let r = w2.await.unwrap().unwrap();
        assert!(r.is_readable());
    })
    .await
    .expect("both waiters woken");
    assert_eq!(s.try_read(&mut buf).unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn writable_waits_for_room_and_vectored_writes_gather() {
    let p = pair(67);
    let (mut c, mut s) = connected(&p).await;
    assert!(c.is_write_vectored());
    // One vectored write, three slices, gathered in order.
    let bufs = [
        std::io::IoSlice::new(b"ab"),
        std::io::IoSlice::new(b""),
        std::io::IoSlice::new(b"cde"),
    ];
    let n = c.write_vectored(&bufs).await.unwrap();
    assert_eq!(n, 5);
    let mut got = [0u8; 5];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"abcde");
    // Fill the send buffer while the peer does not read: try_write blocks,
    // writable() waits; reading on the other side makes room.
    let chunk = vec![7u8; 64 * 1024];
    let mut queued = 0;
    for _ in 0..1000 {
        match c.try_write(&chunk) {
            Ok(n) => queued += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(queued > 0);
    assert_eq!(
        c.try_write(&chunk).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    let reader = tokio::spawn(async move {
        let mut sink = vec![0u8; 64 * 1024];
        let mut total = 0;
        while total < 128 * 1024 {
            total += s.read(&mut sink).await.unwrap();
        }
        s
    });
    tokio::time::timeout(Duration::from_secs(10), c.writable())
        .await
        .expect("room again")
        .unwrap();
    assert!(c.try_write(b"more").unwrap() > 0);
    drop(reader.await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn zero_linger_then_drop_sends_rst() {
    let p = pair(68);
    let (c, mut s) = connected(&p).await;
    assert_eq!(c.linger().unwrap(), None);
    c.set_zero_linger().unwrap();
    assert_eq!(c.linger().unwrap(), Some(Duration::ZERO));
    drop(c);
    let mut buf = [0u8; 4];
    let e = s.read(&mut buf).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset);
}

#[tokio::test(start_paused = true)]
async fn shutdown_after_a_reset_is_ok_as_in_tokio() {
    // tokio's poll_shutdown swallows shutdown(2)'s ENOTCONN after a reset
    // (parity.rs checks it against the kernel); nothing is sent.
    let p = pair(69);
    let (mut c, s) = connected(&p).await;
    s.abort();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let sent = c.stats().segments_sent;
    c.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(c.stats().segments_sent, sent);
    assert_eq!(c.state(), utcp::State::Closed);
}

#[tokio::test(start_paused = true)]
async fn poll_read_initializes_only_what_it_fills() {
    let p = pair(70);
    let (mut c, s) = connected(&p).await;
    c.write_all(b"hello").await.unwrap();
    s.readable().await.unwrap();
    let mut storage = vec![std::mem::MaybeUninit::<u8>::uninit(); 64 * 1024];
    let mut rb = tokio::io::ReadBuf::uninit(&mut storage);
    let mut s = s;
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut s).poll_read(cx, &mut rb))
        .await
        .unwrap();
    assert_eq!(rb.filled(), b"hello");
    assert_eq!(
        rb.initialized().len(),
        5,
        "the rest of the buffer stays untouched"
    );
}

#[tokio::test(start_paused = true)]
async fn a_listener_ttl_is_inherited_by_what_it_accepts() {
    let p = pair(71);
    let ttls = Arc::new(Mutex::new(Vec::new()));
    let t = ttls.clone();
    p.net.set_filter(&p.b, &p.a, move |pkt| {
        t.lock().unwrap().push(pkt.data[8]);
        FilterAction::Pass
    });
    let l = p.server.bind(p.server_addr(7)).unwrap();
    assert_eq!(l.ttl().unwrap(), 64);
    l.set_ttl(9).unwrap();
    assert_eq!(l.ttl().unwrap(), 9);
    assert_eq!(l.set_ttl(0).unwrap_err().kind(), ErrorKind::InvalidInput);
    let mut c = p.client.connect(p.server_addr(7)).await.unwrap();
    let (mut s, _) = l.accept().await.unwrap();
    assert_eq!(s.ttl().unwrap(), 9);
    s.write_all(b"hi").await.unwrap();
    let mut buf = [0u8; 2];
    c.read_exact(&mut buf).await.unwrap();
    // The SYN-ACK and everything after it.
    let seen = ttls.lock().unwrap().clone();
    assert!(seen.len() >= 2 && seen.iter().all(|&t| t == 9), "{seen:?}");
}

fn dual_stack(seed: u64) -> Pair {
    let link = LinkConfig::default().delay(Duration::from_millis(1));
    Pair::with(
        seed,
        link,
        link,
        utcp::StackConfig::default(),
        &["10.0.0.1", "fd00::1"],
        &["10.0.0.2", "fd00::2"],
    )
}

#[tokio::test(start_paused = true)]
async fn a_v6_wildcard_listener_accepts_ipv4_clients_with_mapped_addresses() {
    let p = dual_stack(72);
    let l = p.server.bind("[::]:7").unwrap();
    let mut c = p.client.connect("10.0.0.2:7").await.unwrap();
    let (mut s, peer) = l.accept().await.unwrap();
    let client_v4 = c.local_addr().unwrap();
    let std::net::SocketAddr::V4(v4) = client_v4 else {
        panic!("{client_v4}")
    };
    let mapped = std::net::SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port());
    assert_eq!(peer, mapped);
    assert_eq!(s.peer_addr().unwrap(), mapped);
    assert_eq!(
        s.local_addr().unwrap(),
        "[::ffff:10.0.0.2]:7"
            .parse::<std::net::SocketAddr>()
            .unwrap()
    );
    // The connection itself is IPv4: the IPv4 MSS (1460, less the 12 bytes
    // of the timestamps option in every segment).
    assert!(s.stats().timestamps);
    assert_eq!(s.stats().mss, 1448);
    c.write_all(b"v4").await.unwrap();
    let mut buf = [0u8; 2];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"v4");
    // IPv6 clients still arrive as IPv6.
    let _c6 = p.client.connect("[fd00::2]:7").await.unwrap();
    let (s6, peer6) = l.accept().await.unwrap();
    assert!(
        peer6.is_ipv6() && peer6.ip().to_canonical().is_ipv6(),
        "{peer6}"
    );
    assert_eq!(s6.stats().mss, 1428, "1440 less 12 for timestamps");
}

#[tokio::test(start_paused = true)]
async fn a_v6_only_listener_refuses_ipv4_clients() {
    let p = dual_stack(73);
    let _l = p.server.bind_v6_only("[::]:7").unwrap();
    let e = p.client.connect("10.0.0.2:7").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    p.client.connect("[fd00::2]:7").await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn vectored_and_buf_try_calls_on_the_stream_and_its_halves() {
    use std::io::{IoSlice, IoSliceMut};
    let p = pair(66);
    let (c, s) = connected(&p).await;
    let (mut a, mut b) = ([0u8; 3], [0u8; 8]);
    let mut bufs = [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)];
    assert_eq!(
        s.try_read_vectored(&mut bufs).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    let n = c
        .try_write_vectored(&[
            IoSlice::new(b"hel"),
            IoSlice::new(b""),
            IoSlice::new(b"lo!"),
        ])
        .unwrap();
    assert_eq!(n, 6);
    s.readable().await.unwrap();
    let mut bufs = [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)];
    assert_eq!(s.try_read_vectored(&mut bufs).unwrap(), 6);
    assert_eq!((&a, &b[..3]), (b"hel", &b"lo!"[..]));
    // The halves: try_write_vectored on the write half, try_read_buf on the read half.
    let (cr, cw) = c.into_split();
    let (sr, sw) = s.into_split();
    cw.try_write_vectored(&[IoSlice::new(b"ab"), IoSlice::new(b"cd")])
        .unwrap();
    sr.readable().await.unwrap();
    let mut v = Vec::with_capacity(16);
    assert_eq!(sr.try_read_buf(&mut v).unwrap(), 4);
    assert_eq!(v, b"abcd");
    let mut one = [0u8; 2];
    assert_eq!(
        sr.try_read_vectored(&mut [IoSliceMut::new(&mut one)])
            .unwrap_err()
            .kind(),
        ErrorKind::WouldBlock
    );
    sw.try_write_vectored(&[IoSlice::new(b"x")]).unwrap();
    cr.readable().await.unwrap();
    let mut got = bytes::BytesMut::new();
    assert_eq!(cr.try_read_buf(&mut got).unwrap(), 1);
    // Borrowed halves have readiness too.
    let mut stream = cr.reunite(cw).unwrap();
    let (r, w) = stream.split();
    w.writable().await.unwrap();
    assert!(
        w.ready(tokio::io::Interest::WRITABLE)
            .await
            .unwrap()
            .is_writable()
    );
    assert_eq!(w.try_write_vectored(&[IoSlice::new(b"yz")]).unwrap(), 2);
    sw.writable().await.unwrap();
    sw.try_write(b"q").unwrap();
    r.readable().await.unwrap();
    let mut q = Vec::with_capacity(4);
    assert_eq!(r.try_read_buf(&mut q).unwrap(), 1);
}

/// `read_bytes` hands over the received bytes without a copy: one received
/// segment's payload at a time (here at most the MSS, as the in-memory
/// network delivers segments), byte-exact under loss, reordering filled by
/// retransmissions, then EOF as an empty `Bytes`; and the window opens as
/// with `read` (the transfer is far larger than the receive buffer).
#[tokio::test(start_paused = true)]
async fn read_bytes_takes_segments_as_they_arrived_and_ends_at_eof() {
    let p = Pair::new(
        61,
        LinkConfig::default()
            .delay(Duration::from_millis(5))
            .loss(0.02),
    );
    let (mut c, s) = connected(&p).await;
    let data = utcp_integration_tests::pattern(8 << 20, 61);
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        c.write_all(&sent).await.unwrap();
        c.shutdown().await.unwrap();
        c
    });
    let (mut got, mut reads, mut as_segments) = (Vec::new(), 0usize, 0usize);
    loop {
        let b = s.read_bytes(1 << 20).await.unwrap();
        if b.is_empty() {
            break;
        }
        reads += 1;
        if b.len() <= 1460 {
            as_segments += b.len();
        }
        got.extend_from_slice(&b);
    }
    let _c = writer.await.unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the bytes, in order");
    println!(
        "{reads} reads, {as_segments} of {} bytes as segment payloads",
        data.len()
    );
    // Most bytes came as the segments that carried them (the rest from the
    // stack's copy buffer: small or collapsed payloads).
    assert!(
        as_segments * 2 > data.len(),
        "{as_segments} of {} bytes",
        data.len()
    );
    // A limit below a chunk splits it, and EOF stays EOF.
    assert!(s.read_bytes(10).await.unwrap().is_empty());
}
