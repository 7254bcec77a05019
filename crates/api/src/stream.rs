//! `TcpStream`.

use crate::addr::{self, ToSocketAddrs};
use crate::split::{self, OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf, Ready};
use utcp_proto::{State, Stats};
use utcp_runtime::{ConnRef, SocketOpts, Stack};

/// The connection shared by a stream and its halves; closing happens when the
/// last of them is dropped.
#[derive(Debug)]
pub(crate) struct StreamInner {
    pub(crate) conn: ConnRef,
    pub(crate) _stack: Stack,
    /// `set_zero_linger`: the last drop resets instead of closing.
    pub(crate) zero_linger: AtomicBool,
    /// An IPv4 connection accepted by a dual-stack `[::]` listener: its
    /// addresses are shown IPv4-mapped (`::ffff:a.b.c.d`), as Linux does.
    pub(crate) mapped: bool,
}

impl StreamInner {
    fn show(&self, a: SocketAddr) -> SocketAddr {
        match a {
            SocketAddr::V4(v4) if self.mapped => {
                SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port())
            }
            a => a,
        }
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.show(self.conn.local_addr())
    }

    pub(crate) fn peer_addr(&self) -> SocketAddr {
        self.show(self.conn.peer_addr())
    }
}

impl Drop for StreamInner {
    fn drop(&mut self) {
        if self.zero_linger.load(Ordering::Relaxed) {
            // SO_LINGER with a zero timeout: RST, queued data discarded.
            self.conn.abort();
        } else {
            // Graceful close: FIN after queued data (RST if unread data remains).
            self.conn.close();
        }
    }
}

/// Waits for bytes to peek at (shared by the stream and its halves).
pub(crate) async fn peek(conn: &ConnRef, buf: &mut [u8]) -> io::Result<usize> {
    let mut rb = ReadBuf::new(buf);
    std::future::poll_fn(|cx| conn.poll_peek(cx, &mut rb)).await
}

/// Fills the buffers in order with what is readable, without waiting
/// (shared by the stream and its read halves).
pub(crate) fn try_read_vectored(
    conn: &ConnRef,
    bufs: &mut [io::IoSliceMut<'_>],
) -> io::Result<usize> {
    let mut total = 0;
    for b in bufs.iter_mut().filter(|b| !b.is_empty()) {
        match conn.try_read(b) {
            Ok(n) => {
                total += n;
                if n < b.len() {
                    break;
                }
            }
            // Nothing at all yet: `WouldBlock` (or the error); after some
            // bytes, what was read.
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(total)
}

/// Bytes [`try_read_buf`] reads at most per call (through a stack buffer:
/// the destination may be uninitialized memory, and utcp has no `unsafe`).
const READ_BUF_STEP: usize = 8 * 1024;

/// Appends what is readable to `buf`, without waiting (shared by the stream
/// and its read halves).
pub(crate) fn try_read_buf<B: bytes::BufMut + ?Sized>(
    conn: &ConnRef,
    buf: &mut B,
) -> io::Result<usize> {
    let mut tmp = [0u8; READ_BUF_STEP];
    let want = buf.remaining_mut().min(READ_BUF_STEP);
    if want == 0 {
        return Ok(0);
    }
    let n = conn.try_read(&mut tmp[..want])?;
    buf.put_slice(&tmp[..n]);
    Ok(n)
}

/// Queues the buffers in order without waiting (shared by the stream and its
/// write halves).
pub(crate) fn try_write_vectored(conn: &ConnRef, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match conn.poll_write_vectored(&mut cx, bufs) {
        Poll::Ready(r) => r,
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

/// Shuts down writing (shared by the stream and its write halves). A
/// connection that already failed has nothing to shut down: `Ok(())`, as
/// tokio's `poll_shutdown` (which swallows the `ENOTCONN` of `shutdown(2)`
/// after a reset).
pub(crate) fn shutdown(conn: &ConnRef) -> io::Result<()> {
    match conn.shutdown_write() {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        r => r,
    }
}

/// Waits for the readiness asked for (shared by the stream and its halves).
pub(crate) async fn ready(conn: &ConnRef, interest: Interest) -> io::Result<Ready> {
    let (read, write) = (interest.is_readable(), interest.is_writable());
    let r = std::future::poll_fn(|cx| conn.poll_ready(cx, read, write)).await;
    let mut ready = Ready::EMPTY;
    if r.readable {
        ready |= Ready::READABLE;
    }
    if r.read_closed {
        ready |= Ready::READ_CLOSED;
    }
    if r.writable {
        ready |= Ready::WRITABLE;
    }
    if r.write_closed {
        ready |= Ready::WRITE_CLOSED;
    }
    Ok(ready)
}

/// A TCP connection on a utcp [`Stack`], like `tokio::net::TcpStream`.
///
/// Dropping it closes the connection gracefully (FIN after the queued data);
/// with received data still unread it sends RST instead, as the kernel does.
#[derive(Debug)]
pub struct TcpStream {
    pub(crate) inner: Arc<StreamInner>,
}

impl TcpStream {
    /// Opens a connection to `addr` on the ambient stack and waits for the
    /// handshake, as `tokio::net::TcpStream::connect`. The stack is the one
    /// set by [`Stack::enter`] or [`Stack::scope`] **when this is called**, so
    /// the future may be awaited after the guard is gone; if there is none
    /// then, the one ambient when the future is first polled (so
    /// `stack.scope(TcpStream::connect(addr))` works too). With several
    /// addresses each is tried in turn and the last error returned.
    /// `stack.connect(addr)` ([`StackExt`](crate::StackExt)) names the stack.
    ///
    /// # Examples
    /// ```
    /// use std::io::ErrorKind;
    /// use utcp::net::TcpStream;
    /// use utcp::{Stack, StackConfig, sim::{LinkConfig, SimNetwork}};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let net = SimNetwork::new(1);
    /// let a = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
    /// let b = net.add_host("b", &["10.0.0.2".parse().unwrap()]);
    /// net.link(&a, &b, LinkConfig::default());
    /// let (client, _server) = (Stack::new(a, StackConfig::default()), Stack::new(b, StackConfig::default()));
    /// let connecting = {
    ///     let _guard = client.enter();
    ///     TcpStream::connect("b:9") // the stack is captured here
    /// };
    /// // Nobody listens on port 9: the server's stack answers the SYN with RST.
    /// assert_eq!(connecting.await.unwrap_err().kind(), ErrorKind::ConnectionRefused);
    /// // No ambient stack at all:
    /// assert_eq!(TcpStream::connect("b:9").await.unwrap_err().kind(), ErrorKind::NotConnected);
    /// # }
    /// ```
    ///
    /// # Errors
    /// `NotConnected` with no ambient stack (the message names `enter`), or
    /// once the stack was shut down; `ConnectionRefused` when the peer
    /// answers with RST; `TimedOut` after the SYN retries; `AddrNotAvailable`
    /// with no local address of the family or no free ephemeral port;
    /// `InvalidInput` for port 0 or an address that resolves to nothing;
    /// `NotFound` for a host name the name table does not hold.
    ///
    /// # Cancel safety
    /// Not cancel safe: dropping the future gives up the attempt (a SYN_SENT
    /// connection just closes; one that completed meanwhile is closed with FIN).
    pub fn connect<A: ToSocketAddrs>(addr: A) -> impl Future<Output = io::Result<TcpStream>> {
        let at_call = Stack::try_current();
        async move {
            let (stack, addrs) = addr::ambient(at_call, &addr)?;
            TcpStream::open(&stack, None, &addrs, &SocketOpts::default(), false).await
        }
    }

    /// Tries each address in turn, as tokio does, with `opts` and from
    /// `local` if given; the last error if none connects.
    pub(crate) async fn open(
        stack: &Stack,
        local: Option<SocketAddr>,
        addrs: &[SocketAddr],
        opts: &SocketOpts,
        zero_linger: bool,
    ) -> io::Result<TcpStream> {
        let mut last = None;
        for &addr in addrs {
            let attempt = match stack.connect_with(local, addr, opts) {
                Ok(conn) => TcpStream::handshake(stack, conn).await,
                Err(e) => Err(e),
            };
            match attempt {
                Ok(s) => {
                    s.inner.zero_linger.store(zero_linger, Ordering::Relaxed);
                    return Ok(s);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "could not resolve to any address",
            )
        }))
    }

    /// Waits for the handshake of a connection just opened; dropping the
    /// stream (failure, cancellation) closes or aborts it.
    async fn handshake(stack: &Stack, conn: ConnRef) -> io::Result<TcpStream> {
        let stream = TcpStream::from_conn(conn, stack.clone());
        std::future::poll_fn(|cx| stream.inner.conn.poll_connected(cx)).await?;
        Ok(stream)
    }

    pub(crate) fn from_conn(conn: ConnRef, stack: Stack) -> TcpStream {
        TcpStream::from_accepted(conn, stack, false)
    }

    /// `mapped`: shown with IPv4-mapped addresses (a dual-stack listener's
    /// IPv4 connection).
    pub(crate) fn from_accepted(conn: ConnRef, stack: Stack, mapped: bool) -> TcpStream {
        TcpStream {
            inner: Arc::new(StreamInner {
                conn,
                _stack: stack,
                zero_linger: AtomicBool::new(false),
                mapped,
            }),
        }
    }

    /// Whether the last drop resets (zero linger) — for listeners handing
    /// their setting on.
    pub(crate) fn set_zero_linger_flag(&self, on: bool) {
        self.inner.zero_linger.store(on, Ordering::Relaxed);
    }

    /// The local address (for accept-any listeners: the original destination).
    ///
    /// # Errors
    /// Never fails today; `io::Result` for parity with tokio.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.local_addr())
    }

    /// The peer's address.
    ///
    /// # Errors
    /// Never fails today; `io::Result` for parity with tokio.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.peer_addr())
    }

    /// The RFC 9293 state of the connection.
    pub fn state(&self) -> State {
        self.inner.conn.state()
    }

    /// Every state the connection passed through, oldest first; e.g.
    /// `[SYN_SENT, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, TIME_WAIT]`.
    pub fn state_history(&self) -> Vec<State> {
        self.inner.conn.state_history()
    }

    /// The latest changes of the congestion window, oldest first: each
    /// loss episode (RACK or three duplicate ACKs), timeout, tail loss the
    /// probe repaired, and undo, with FlightSize, cwnd before and after and
    /// ssthresh (at most `utcp_runtime::CONGESTION_EVENTS_KEPT`).
    ///
    /// ```no_run
    /// # async fn f(s: utcp::TcpStream) {
    /// for e in s.congestion_events() {
    ///     println!("{:?}: cwnd {} -> {}, ssthresh {}", e.cause, e.cwnd_before, e.cwnd, e.ssthresh);
    /// }
    /// # }
    /// ```
    pub fn congestion_events(&self) -> Vec<utcp_proto::CongestionEvent> {
        self.inner.conn.congestion_events()
    }

    /// A TCP_INFO-like snapshot (RTT, cwnd, retransmissions, …).
    pub fn stats(&self) -> Stats {
        self.inner.conn.stats()
    }

    /// Reads up to `max` bytes without copying them: the bytes as they
    /// arrived, a slice of the device buffer (or of the stack's copy
    /// buffer) that stays alive while the returned `Bytes` does. Returns
    /// one received chunk at a time, so possibly less than is readable;
    /// an empty `Bytes` is EOF. A sink or a proxy that hands the bytes on
    /// saves the copy `read` makes; holding many of them holds their
    /// device buffers too.
    ///
    /// # Examples
    /// ```
    /// use tokio::io::AsyncWriteExt;
    /// use utcp::{Stack, StackConfig, StackExt, sim::{LinkConfig, SimNetwork}};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
    /// let net = SimNetwork::new(1);
    /// let a = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
    /// let b = net.add_host("b", &["10.0.0.2".parse().unwrap()]);
    /// net.link(&a, &b, LinkConfig::default());
    /// let (client, server) = (Stack::new(a, StackConfig::default()), Stack::new(b, StackConfig::default()));
    /// let listener = server.bind("10.0.0.2:7")?;
    /// let mut c = client.connect("10.0.0.2:7").await?;
    /// let (s, _) = listener.accept().await?;
    /// c.write_all(b"hello").await?;
    /// c.shutdown().await?;
    /// let mut got = Vec::new();
    /// loop {
    ///     let b = s.read_bytes(64 * 1024).await?;
    ///     if b.is_empty() {
    ///         break; // EOF
    ///     }
    ///     got.extend_from_slice(&b);
    /// }
    /// assert_eq!(got, b"hello");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The connection's error (reset, timed out), once; then EOF.
    ///
    /// # Cancel safety
    /// Cancel safe: bytes are taken only when returned.
    pub async fn read_bytes(&self, max: usize) -> io::Result<bytes::Bytes> {
        std::future::poll_fn(|cx| self.inner.conn.poll_read_bytes(cx, max)).await
    }

    /// Receives data without removing it: the next read returns it again.
    /// Waits until data (or EOF: `Ok(0)`) is there.
    ///
    /// # Examples
    /// ```
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// use utcp::{Stack, StackConfig, StackExt, sim::{LinkConfig, SimNetwork}};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
    /// let net = SimNetwork::new(1);
    /// let a = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
    /// let b = net.add_host("b", &["10.0.0.2".parse().unwrap()]);
    /// net.link(&a, &b, LinkConfig::default());
    /// let (client, server) = (Stack::new(a, StackConfig::default()), Stack::new(b, StackConfig::default()));
    /// let listener = server.bind("10.0.0.2:7")?;
    /// let mut c = client.connect("10.0.0.2:7").await?;
    /// let (mut s, _) = listener.accept().await?;
    /// c.write_all(b"hello").await?;
    /// let mut buf = [0u8; 5];
    /// assert_eq!(s.peek(&mut buf).await?, 5);
    /// s.read_exact(&mut buf).await?; // the same bytes again
    /// assert_eq!(&buf, b"hello");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The connection's error (reset, timed out), once.
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is consumed.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        peek(&self.inner.conn, buf).await
    }

    /// Polls for data to peek at, filling `buf` without consuming; returns
    /// the count (0 at EOF).
    ///
    /// # Errors
    /// As [`peek`](Self::peek).
    pub fn poll_peek(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<usize>> {
        self.inner.conn.poll_peek(cx, buf)
    }

    /// Reads what is there without waiting; `Ok(0)` is EOF.
    ///
    /// # Errors
    /// `WouldBlock` when nothing is readable yet; the connection's error once.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.conn.try_read(buf)
    }

    /// Reads into several buffers, in order, without waiting; `Ok(0)` is EOF.
    ///
    /// # Errors
    /// As [`try_read`](Self::try_read).
    pub fn try_read_vectored(&self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        try_read_vectored(&self.inner.conn, bufs)
    }

    /// Reads what is there into `buf`'s spare room (at most 8 KiB a call)
    /// without waiting, advancing it; `Ok(0)` is EOF (or no room).
    ///
    /// # Errors
    /// As [`try_read`](Self::try_read).
    pub fn try_read_buf<B: bytes::BufMut>(&self, buf: &mut B) -> io::Result<usize> {
        try_read_buf(&self.inner.conn, buf)
    }

    /// Queues the bytes of several buffers, in order, with one copy into
    /// the send buffer, without waiting.
    ///
    /// # Errors
    /// As [`try_write`](Self::try_write).
    pub fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        try_write_vectored(&self.inner.conn, bufs)
    }

    /// Queues what fits in the send buffer without waiting.
    ///
    /// # Errors
    /// `WouldBlock` while the send buffer is full (or the handshake is not
    /// done); `BrokenPipe` after shutdown; the connection's error once.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.conn.try_write(buf)
    }

    /// The connection's error if it failed and it was not returned yet; taking
    /// it clears it (`SO_ERROR`).
    ///
    /// # Errors
    /// Never fails today; `io::Result` for parity with tokio.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(self.inner.conn.take_error())
    }

    /// Whether Nagle's algorithm is off (`TCP_NODELAY`). Nagle is on by
    /// default, as in the kernel.
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(self.inner.conn.nodelay())
    }

    /// Turns Nagle's algorithm (RFC 896 with Minshall's refinement, as
    /// Linux) off (`true`, `TCP_NODELAY`) or on. With it on, a segment
    /// smaller than the MSS waits while an earlier small one is
    /// unacknowledged: a write–write–read exchange then waits for the
    /// peer's ACK (up to its delayed-ACK time, 40 ms against Linux).
    /// Request–response code that writes in pieces wants `true`.
    ///
    /// # Examples
    /// ```
    /// # use utcp::{Stack, StackConfig, StackExt, sim::{LinkConfig, SimNetwork}};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
    /// # let net = SimNetwork::new(1);
    /// # let a = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
    /// # let b = net.add_host("b", &["10.0.0.2".parse().unwrap()]);
    /// # net.link(&a, &b, LinkConfig::default());
    /// # let (client, server) = (Stack::new(a, StackConfig::default()), Stack::new(b, StackConfig::default()));
    /// # let _l = server.bind("10.0.0.2:80")?;
    /// let stream = client.connect("10.0.0.2:80").await?;
    /// assert!(!stream.nodelay()?);
    /// stream.set_nodelay(true)?;
    /// assert!(stream.nodelay()?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.conn.set_nodelay(nodelay);
        Ok(())
    }

    /// Whether quick ACKs are on (`TCP_QUICKACK` as Linux reads it): the
    /// connection is in quickack mode (its first segments, after
    /// out-of-order data, or after `set_quickack(true)`) and not
    /// interactive.
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with socket2.
    pub fn quickack(&self) -> io::Result<bool> {
        Ok(self.inner.conn.quickack())
    }

    /// `TCP_QUICKACK`, as Linux: `true` acknowledges the next batches of
    /// in-order data at once instead of after the delayed-ACK timer
    /// (`Config::delayed_ack`, 40 ms), and an ACK owed now leaves at once;
    /// `false` makes the connection interactive (ACKs wait for a reply to
    /// carry them, or for the timer). Not permanent: the stack goes on
    /// adapting, as the kernel does, so call it again where it matters.
    ///
    /// # Examples
    /// ```
    /// # use utcp::{Stack, StackConfig, StackExt, sim::{LinkConfig, SimNetwork}};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
    /// # let net = SimNetwork::new(1);
    /// # let a = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
    /// # let b = net.add_host("b", &["10.0.0.2".parse().unwrap()]);
    /// # net.link(&a, &b, LinkConfig::default());
    /// # let (client, server) = (Stack::new(a, StackConfig::default()), Stack::new(b, StackConfig::default()));
    /// # let _l = server.bind("10.0.0.2:80")?;
    /// let stream = client.connect("10.0.0.2:80").await?;
    /// stream.set_quickack(false)?;
    /// assert!(!stream.quickack()?);
    /// stream.set_quickack(true)?;
    /// assert!(stream.quickack()?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with socket2.
    pub fn set_quickack(&self, quickack: bool) -> io::Result<()> {
        self.inner.conn.set_quickack(quickack);
        Ok(())
    }

    /// Whether keepalive probes are on (`SO_KEEPALIVE`).
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with socket2.
    pub fn keepalive(&self) -> io::Result<bool> {
        Ok(self.inner.conn.keepalive())
    }

    /// Turns keepalive probes on or off (`SO_KEEPALIVE`): after the
    /// connection was idle for the keepalive time, probes every interval;
    /// when the count goes unanswered, the connection fails with
    /// `TimedOut`.
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with socket2.
    pub fn set_keepalive(&self, keepalive: bool) -> io::Result<()> {
        self.inner.conn.set_keepalive(keepalive);
        Ok(())
    }

    /// Sets the keepalive settings given and turns keepalive on (as
    /// `socket2::Socket::set_tcp_keepalive`).
    ///
    /// # Errors
    /// `InvalidInput` for a zero time, interval or count.
    pub fn set_tcp_keepalive(&self, params: &crate::TcpKeepalive) -> io::Result<()> {
        params.check()?;
        self.inner
            .conn
            .set_keepalive_params(params.time(), params.interval(), params.retries())?;
        self.inner.conn.set_keepalive(true);
        Ok(())
    }

    /// The keepalive settings in force (all three set).
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with the other getters.
    pub fn tcp_keepalive(&self) -> io::Result<crate::TcpKeepalive> {
        let (time, interval, retries) = self.inner.conn.keepalive_params();
        Ok(crate::TcpKeepalive::new()
            .with_time(time)
            .with_interval(interval)
            .with_retries(retries))
    }

    /// The user timeout (`TCP_USER_TIMEOUT`), if set.
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with socket2.
    pub fn tcp_user_timeout(&self) -> io::Result<Option<std::time::Duration>> {
        Ok(self.inner.conn.user_timeout())
    }

    /// Sets or clears the user timeout (RFC 9293 §3.10.8,
    /// `TCP_USER_TIMEOUT`): data left unacknowledged this long fails the
    /// connection with `TimedOut`, whatever the number of retransmissions.
    ///
    /// # Errors
    /// `InvalidInput` for `Some(Duration::ZERO)` (say `None`).
    pub fn set_tcp_user_timeout(&self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        self.inner.conn.set_user_timeout(timeout)
    }

    /// The IP TTL / hop limit of this connection's segments.
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn ttl(&self) -> io::Result<u32> {
        Ok(u32::from(self.inner.conn.ttl()))
    }

    /// Sets the IP TTL / hop limit of this connection's later segments.
    ///
    /// # Errors
    /// `InvalidInput` for 0 or a value above 255.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let ttl = u8::try_from(ttl)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "TTL above 255"))?;
        self.inner.conn.set_ttl(ttl)
    }

    /// The connection's congestion controller (in [`stats`](Self::stats)
    /// too).
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with the other getters.
    pub fn congestion(&self) -> io::Result<crate::CongestionAlgorithm> {
        Ok(self.inner.conn.congestion())
    }

    /// Chooses the congestion controller (Linux's `TCP_CONGESTION`) before
    /// the first byte of data is sent; [`TcpSocket::set_congestion`](crate::TcpSocket::set_congestion)
    /// sets it before the handshake.
    ///
    /// # Errors
    /// `InvalidInput` once data was sent.
    pub fn set_congestion(&self, algorithm: crate::CongestionAlgorithm) -> io::Result<()> {
        self.inner.conn.set_congestion(algorithm)
    }

    /// Waits until the stream is ready for what `interest` asks (readable,
    /// writable, or either). Several tasks may wait at once; each is woken.
    ///
    /// # Errors
    /// Never fails today (a failed connection is ready: the next call
    /// returns its error); `io::Result` for parity with tokio.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        ready(&self.inner.conn, interest).await
    }

    /// Waits until a read would not wait (data, EOF or an error).
    ///
    /// # Errors
    /// As [`ready`](Self::ready).
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn readable(&self) -> io::Result<()> {
        self.ready(Interest::READABLE).await.map(|_| ())
    }

    /// Waits until a write would not wait (room in the send buffer, or an
    /// error).
    ///
    /// # Errors
    /// As [`ready`](Self::ready).
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn writable(&self) -> io::Result<()> {
        self.ready(Interest::WRITABLE).await.map(|_| ())
    }

    /// Polls for read readiness.
    ///
    /// # Errors
    /// Never fails today; `io::Result` for parity with tokio.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.conn.poll_ready(cx, true, false).map(|_| Ok(()))
    }

    /// Polls for write readiness.
    ///
    /// # Errors
    /// Never fails today; `io::Result` for parity with tokio.
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.conn.poll_ready(cx, false, true).map(|_| Ok(()))
    }

    /// The linger setting: `Some(0)` after [`set_zero_linger`](Self::set_zero_linger),
    /// `None` (close gracefully in the background) otherwise.
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        Ok(self
            .inner
            .zero_linger
            .load(Ordering::Relaxed)
            .then_some(Duration::ZERO))
    }

    /// `SO_LINGER` with a zero timeout: when the last handle is dropped the
    /// connection is reset (RST) and queued data discarded, instead of closed
    /// with FIN.
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn set_zero_linger(&self) -> io::Result<()> {
        self.inner.zero_linger.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// `SO_LINGER`: `None` closes gracefully in the background (the
    /// default); `Some(Duration::ZERO)` is [`set_zero_linger`](Self::set_zero_linger).
    ///
    /// # Errors
    /// `Unsupported` for a non-zero duration: a blocking close has no place
    /// in an async stack (tokio deprecates it for the same reason).
    #[deprecated = "`SO_LINGER` with a timeout blocks on close; use `set_zero_linger`"]
    pub fn set_linger(&self, dur: Option<Duration>) -> io::Result<()> {
        match dur {
            None => self.inner.zero_linger.store(false, Ordering::Relaxed),
            Some(d) if d.is_zero() => self.inner.zero_linger.store(true, Ordering::Relaxed),
            Some(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "a lingering close with a timeout; only zero linger (RST on drop) exists",
                ));
            }
        }
        Ok(())
    }

    /// Resets the connection (RST) instead of closing it gracefully.
    pub fn abort(self) {
        self.inner.conn.abort();
    }

    /// Splits into borrowed read and write halves.
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        split::split(self)
    }

    /// Splits into owned halves. Dropping the write half shuts down writing;
    /// the connection closes when both halves are gone.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        split::into_split(self)
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.inner.conn.poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.inner.conn.poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.inner.conn.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Written data is queued on the connection, as with tokio's TcpStream.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(shutdown(&self.inner.conn))
    }
}
