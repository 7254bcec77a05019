//! The parity cases, written against tokio's API only. `parity.rs` includes
//! this file twice: under `tokio::net` on kernel loopback and under
//! `utcp::net` on the in-memory network (one host owning 127.0.0.1,
//! 127.0.0.2 and ::1 with a link to itself), in virtual time. Same
//! assertions both times.

use super::net::tcp::{OwnedReadHalf, OwnedWriteHalf, ReuniteError};
use super::net::{TcpListener, TcpSocket, TcpStream};
use std::future::poll_fn;
use std::io::{ErrorKind, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest, ReadBuf};

pub type R = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A listener on 127.0.0.1 with a free port, a client connected to it, and
/// the accepted side.
async fn connected() -> std::io::Result<(TcpListener, TcpStream, TcpStream)> {
    let l = TcpListener::bind((LO, 0)).await?;
    let addr = l.local_addr()?;
    let c = TcpStream::connect(addr).await?;
    let (s, peer) = l.accept().await?;
    assert_eq!(peer, c.local_addr()?);
    assert_eq!(s.local_addr()?, addr);
    assert_eq!(c.peer_addr()?, addr);
    Ok((l, c, s))
}

/// Waits (bounded) until `s` has `n` bytes to peek at.
async fn wait_for_bytes(s: &TcpStream, n: usize) -> std::io::Result<()> {
    let mut buf = vec![0u8; n];
    for _ in 0..1000 {
        if s.peek(&mut buf).await? >= n {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Err(std::io::Error::new(
        ErrorKind::TimedOut,
        "bytes did not arrive",
    ))
}

pub async fn to_socket_addrs_forms_connect() -> R {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let port = l.local_addr()?.port();
    let addr = SocketAddr::new(LO.into(), port);
    let forms = vec![
        TcpStream::connect(addr).await?,
        TcpStream::connect(&addr).await?,
        TcpStream::connect((LO, port)).await?,
        TcpStream::connect((IpAddr::V4(LO), port)).await?,
        TcpStream::connect(("127.0.0.1", port)).await?,
        TcpStream::connect((String::from("127.0.0.1"), port)).await?,
        TcpStream::connect(format!("127.0.0.1:{port}")).await?,
        TcpStream::connect(format!("127.0.0.1:{port}").as_str()).await?,
        TcpStream::connect(&[addr][..]).await?,
    ];
    for s in &forms {
        assert_eq!(s.peer_addr()?, addr);
        let (_a, _) = l.accept().await?;
    }
    // A closed port: the peer's stack answers with RST.
    let closed = {
        let l = TcpListener::bind((LO, 0)).await?;
        l.local_addr()?
    };
    let err = TcpStream::connect(closed).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    Ok(())
}

pub async fn try_read_would_block_then_peek_does_not_consume() -> R {
    let (_l, mut c, s) = connected().await?;
    let mut buf = [0u8; 16];
    assert_eq!(
        s.try_read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    let mut v = Vec::with_capacity(8);
    assert_eq!(
        s.try_read_buf(&mut v).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    c.write_all(b"hello").await?;
    assert_eq!(s.peek(&mut buf).await?, 5);
    assert_eq!(&buf[..5], b"hello");
    let mut small = [0u8; 3];
    let mut rb = ReadBuf::new(&mut small);
    assert_eq!(poll_fn(|cx| s.poll_peek(cx, &mut rb)).await?, 3);
    assert_eq!(rb.filled(), b"hel");
    // Still all there: a read returns the same bytes.
    let mut s = s;
    let mut got = [0u8; 5];
    s.read_exact(&mut got).await?;
    assert_eq!(&got, b"hello");
    assert_eq!(
        s.try_read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    Ok(())
}

pub async fn try_calls_vectored_and_buf() -> R {
    let (_l, c, s) = connected().await?;
    c.writable().await?;
    assert!(c.is_write_vectored_stream());
    assert_eq!(c.try_write(b"ab")?, 2);
    assert_eq!(
        c.try_write_vectored(&[IoSlice::new(b"cd"), IoSlice::new(b"ef")])?,
        4
    );
    wait_for_bytes(&s, 6).await?;
    let (mut x, mut y) = ([0u8; 1], [0u8; 2]);
    let n = s.try_read_vectored(&mut [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)])?;
    assert_eq!((n, &x, &y), (3, b"a", b"bc"));
    let mut v = Vec::with_capacity(16);
    assert_eq!(s.try_read_buf(&mut v)?, 3);
    assert_eq!(v, b"def");
    Ok(())
}

/// `is_write_vectored` lives on `AsyncWrite`; a helper keeps the call in one
/// place for both stacks.
trait WriteVectored {
    fn is_write_vectored_stream(&self) -> bool;
}

impl WriteVectored for TcpStream {
    fn is_write_vectored_stream(&self) -> bool {
        tokio::io::AsyncWrite::is_write_vectored(self)
    }
}

pub async fn vectored_write_and_readiness() -> R {
    let (_l, mut c, mut s) = connected().await?;
    let r = c.ready(Interest::READABLE | Interest::WRITABLE).await?;
    assert!(r.is_writable() && !r.is_readable());
    poll_fn(|cx| c.poll_write_ready(cx)).await?;
    let n = c
        .write_vectored(&[IoSlice::new(b"one "), IoSlice::new(b"two")])
        .await?;
    assert_eq!(n, 7);
    poll_fn(|cx| s.poll_read_ready(cx)).await?;
    s.readable().await?;
    let r = s.ready(Interest::READABLE).await?;
    assert!(r.is_readable());
    let mut got = [0u8; 7];
    s.read_exact(&mut got).await?;
    assert_eq!(&got, b"one two");
    c.shutdown().await?;
    // EOF is readable, and reads 0.
    s.readable().await?;
    assert_eq!(s.read(&mut got).await?, 0);
    Ok(())
}

pub async fn two_readable_waiters_are_both_woken() -> R {
    let (_l, mut c, s) = connected().await?;
    let s = Arc::new(s);
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.readable().await })
        })
        .collect();
    // Let both park (tokio may wake a readiness waiter spuriously, so
    // whether they are still parked is not asserted), then send.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    c.write_all(b"x").await?;
    for w in waiters {
        tokio::time::timeout(Duration::from_secs(5), w).await???;
    }
    // Woken for real: the byte is there for both to see.
    let mut b = [0u8; 1];
    assert_eq!(s.try_read(&mut b)?, 1);
    Ok(())
}

pub async fn socket_options_on_streams() -> R {
    let (l, c, _s) = connected().await?;
    c.set_nodelay(true)?;
    assert!(c.nodelay()?);
    c.set_ttl(42)?;
    assert_eq!(c.ttl()?, 42);
    l.set_ttl(33)?;
    assert_eq!(l.ttl()?, 33);
    assert_eq!(c.linger()?, None);
    assert!(c.take_error()?.is_none());
    Ok(())
}

pub async fn zero_linger_then_drop_sends_rst() -> R {
    let (_l, c, mut s) = connected().await?;
    c.set_zero_linger()?;
    assert_eq!(c.linger()?, Some(Duration::ZERO));
    drop(c);
    let mut buf = [0u8; 4];
    let err = s.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    // After the reset there is nothing to shut down: tokio answers Ok
    // (it swallows shutdown(2)'s ENOTCONN).
    s.shutdown().await?;
    Ok(())
}

fn reunite(r: OwnedReadHalf, w: OwnedWriteHalf) -> Result<TcpStream, ReuniteError> {
    r.reunite(w)
}

/// `ReuniteError` through `?` into a boxed error.
fn reunite_boxed(
    r: OwnedReadHalf,
    w: OwnedWriteHalf,
) -> Result<TcpStream, Box<dyn std::error::Error + Send + Sync>> {
    Ok(reunite(r, w)?)
}

pub async fn halves_and_reunite() -> R {
    let (_l, mut c, mut s) = connected().await?;
    s.write_all(b"yo").await?;
    {
        let (mut r, w) = c.split();
        assert_eq!(r.peer_addr()?, s.local_addr()?);
        assert_eq!(w.local_addr()?, s.peer_addr()?);
        assert_eq!(r.as_ref().peer_addr()?, w.as_ref().peer_addr()?);
        let mut buf = [0u8; 2];
        assert_eq!(r.peek(&mut buf).await?, 2);
        let mut rb = ReadBuf::new(&mut buf);
        assert_eq!(poll_fn(|cx| r.poll_peek(cx, &mut rb)).await?, 2);
        assert_eq!(r.try_read(&mut buf)?, 2);
        assert_eq!(&buf, b"yo");
        assert_eq!(
            r.try_read(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        let mut one = [0u8; 1];
        let e = r
            .try_read_vectored(&mut [IoSliceMut::new(&mut one)])
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WouldBlock);
        let mut v = Vec::with_capacity(4);
        assert_eq!(
            r.try_read_buf(&mut v).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        assert!(w.ready(Interest::WRITABLE).await?.is_writable());
        assert_eq!(w.try_write(b"h")?, 1);
        assert_eq!(w.try_write_vectored(&[IoSlice::new(b"i")])?, 1);
    }
    let (sr, sw) = s.into_split();
    assert_eq!(sr.peer_addr()?, c.local_addr()?);
    assert_eq!(sw.local_addr()?, c.peer_addr()?);
    assert_eq!(sr.as_ref().local_addr()?, sw.as_ref().local_addr()?);
    assert!(sr.ready(Interest::READABLE).await?.is_readable());
    sr.readable().await?;
    let mut buf = [0u8; 2];
    let mut sr = sr;
    wait_for_bytes(sr.as_ref(), 2).await?;
    assert_eq!(sr.peek(&mut buf).await?, 2);
    let mut rb = ReadBuf::new(&mut buf);
    assert_eq!(poll_fn(|cx| sr.poll_peek(cx, &mut rb)).await?, 2);
    let mut one = [0u8; 1];
    assert_eq!(sr.try_read_vectored(&mut [IoSliceMut::new(&mut one)])?, 1);
    assert_eq!(sr.try_read(&mut one)?, 1);
    assert_eq!(&one, b"i");
    let mut v = Vec::with_capacity(4);
    assert_eq!(
        sr.try_read_buf(&mut v).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    sw.writable().await?;
    assert!(sw.ready(Interest::WRITABLE).await?.is_writable());
    assert_eq!(sw.try_write(b"o")?, 1);
    assert_eq!(sw.try_write_vectored(&[IoSlice::new(b"k")])?, 1);
    let mut s = reunite_boxed(sr, sw)?;
    // Halves of different streams: a ReuniteError that works with `?`.
    let (_l2, c2, _s2) = connected().await?;
    let (cr, cw) = c.into_split();
    let (c2r, c2w) = c2.into_split();
    let err = reunite_boxed(cr, c2w).unwrap_err();
    assert!(!err.to_string().is_empty());
    let err = reunite(c2r, cw).unwrap_err();
    let (back_r, back_w) = (err.0, err.1);
    drop((back_r, back_w));
    s.write_all(b"!").await?;
    Ok(())
}

pub async fn tcp_socket_bind_ip_port_zero_then_connect() -> R {
    let l = TcpListener::bind((LO, 0)).await?;
    let sock = TcpSocket::new_v4()?;
    sock.set_reuseaddr(true)?;
    assert!(sock.reuseaddr()?);
    sock.set_nodelay(true)?;
    assert!(sock.nodelay()?);
    sock.set_send_buffer_size(64 * 1024)?;
    assert!(sock.send_buffer_size()? >= 64 * 1024);
    sock.set_recv_buffer_size(32 * 1024)?;
    assert!(sock.recv_buffer_size()? >= 32 * 1024);
    sock.set_tos_v4(0xb8)?;
    assert_eq!(sock.tos_v4()?, 0xb8);
    assert!(sock.take_error()?.is_none());
    let second: IpAddr = "127.0.0.2".parse()?;
    sock.bind(SocketAddr::new(second, 0))?;
    assert_eq!(sock.local_addr()?.ip(), second);
    let c = sock.connect(l.local_addr()?).await?;
    let local = c.local_addr()?;
    assert_eq!(local.ip(), second);
    assert_ne!(local.port(), 0);
    let (_s, peer) = l.accept().await?;
    assert_eq!(peer, local);
    Ok(())
}

pub async fn tcp_socket_listen_and_v6() -> R {
    let sock = TcpSocket::new_v6()?;
    sock.set_reuseaddr(true)?;
    sock.set_tclass_v6(0x28)?;
    assert_eq!(sock.tclass_v6()?, 0x28);
    sock.set_zero_linger()?;
    assert_eq!(sock.linger()?, Some(Duration::ZERO));
    sock.bind(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 0))?;
    let l = sock.listen(16)?;
    let addr = l.local_addr()?;
    assert_eq!(addr.ip(), IpAddr::V6(Ipv6Addr::LOCALHOST));
    let client = TcpSocket::new_v6()?;
    let mut c = client.connect(addr).await?;
    let (s, peer) = poll_fn(|cx| l.poll_accept(cx)).await?;
    assert_eq!(peer, c.local_addr()?);
    // Accepted from a zero-linger listener: its drop resets.
    drop(s);
    let mut buf = [0u8; 1];
    let err = c.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    Ok(())
}

pub async fn dual_stack_listener_accepts_ipv4() -> R {
    let l = TcpListener::bind("[::]:0").await?;
    let port = l.local_addr()?.port();
    let c = TcpStream::connect((LO, port)).await?;
    let (s, peer) = l.accept().await?;
    let mapped = LO.to_ipv6_mapped();
    assert_eq!(peer, SocketAddr::new(mapped.into(), c.local_addr()?.port()));
    assert_eq!(s.local_addr()?, SocketAddr::new(mapped.into(), port));
    Ok(())
}

/// Compile-time: the types are Send + Sync + Unpin and the futures Send, as
/// tokio's are.
#[allow(dead_code)]
fn send_sync_unpin() {
    fn all<T: Send + Sync + Unpin>() {}
    fn send<T: Send>(_: &T) {}
    all::<TcpStream>();
    all::<TcpListener>();
    all::<TcpSocket>();
    all::<OwnedReadHalf>();
    all::<OwnedWriteHalf>();
    all::<ReuniteError>();
    send(&TcpStream::connect("127.0.0.1:1"));
    send(&TcpListener::bind("127.0.0.1:0"));
    let f = async {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let (s, _) = l.accept().await?;
        s.readable().await?;
        s.writable().await?;
        s.ready(Interest::READABLE).await?;
        let mut b = [0u8; 1];
        s.peek(&mut b).await?;
        let sock = TcpSocket::new_v4()?;
        sock.connect(s.peer_addr()?).await?;
        std::io::Result::Ok(())
    };
    send(&f);
}
