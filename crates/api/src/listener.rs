//! `TcpListener`.

use crate::TcpStream;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use utcp_runtime::{ListenerRef, SocketOpts, Stack};

/// A TCP listener on a utcp [`Stack`], like `tokio::net::TcpListener`.
///
/// Dropping it stops listening and resets connections it had not accepted.
#[derive(Debug)]
pub struct TcpListener {
    inner: ListenerRef,
    _stack: Stack,
    /// `TcpSocket::set_zero_linger` before `listen`: accepted streams reset
    /// when dropped.
    zero_linger: bool,
}

impl TcpListener {
    /// Listens on `addr` (an unspecified IP listens on every address of the
    /// stack of that family, and `[::]` on the IPv4 ones too: dual-stack, IPv4
    /// peers shown IPv4-mapped, as Linux with `IPV6_V6ONLY` off; port 0 picks
    /// a free port).
    ///
    /// # Examples
    /// ```
    /// use tokio::io::AsyncWriteExt;
    /// use utcp::{Stack, StackConfig, TcpListener, TcpStream, sim::{LinkConfig, SimNetwork}};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
    /// let net = SimNetwork::new(1);
    /// let a = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
    /// let b = net.add_host("b", &["10.0.0.2".parse().unwrap()]);
    /// net.link(&a, &b, LinkConfig::default());
    /// let (client, server) = (Stack::new(a, StackConfig::default()), Stack::new(b, StackConfig::default()));
    /// let listener = TcpListener::bind(&server, "0.0.0.0:80".parse().unwrap())?;
    /// assert_eq!(listener.local_addr()?.port(), 80);
    /// let mut c = TcpStream::connect(&client, "10.0.0.2:80".parse().unwrap()).await?;
    /// let (s, peer) = listener.accept().await?;
    /// assert_eq!(peer, c.local_addr()?);
    /// assert_eq!(s.local_addr()?, "10.0.0.2:80".parse().unwrap());
    /// c.write_all(b"GET /").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `AddrInUse` when the port is taken; `AddrNotAvailable` when the
    /// address is not the stack's; `NotConnected` once the stack was shut
    /// down.
    pub fn bind(stack: &Stack, addr: SocketAddr) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: stack.listen(addr)?,
            _stack: stack.clone(),
            zero_linger: false,
        })
    }

    /// Like [`bind`](Self::bind) with an explicit backlog: connections in
    /// SYN_RECEIVED plus established ones not yet accepted; a SYN beyond it
    /// is dropped.
    ///
    /// # Errors
    /// As [`bind`](Self::bind).
    pub fn bind_with_backlog(
        stack: &Stack,
        addr: SocketAddr,
        backlog: usize,
    ) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: stack.listen_with_backlog(addr, backlog)?,
            _stack: stack.clone(),
            zero_linger: false,
        })
    }

    /// Listens with socket options handed to every accepted connection
    /// (`TcpSocket::listen`).
    pub(crate) fn open(
        stack: &Stack,
        addr: SocketAddr,
        backlog: usize,
        v6_only: bool,
        opts: &SocketOpts,
        zero_linger: bool,
    ) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: stack.listen_with(addr, backlog, v6_only, opts)?,
            _stack: stack.clone(),
            zero_linger,
        })
    }

    /// Accepts connections to any destination address and port (TUN users:
    /// VPNs, tun2socks). Each stream's `local_addr()` is the original destination.
    ///
    /// # Errors
    /// `AddrInUse` when an accept-any listener exists on this stack.
    pub fn bind_any(stack: &Stack, backlog: usize) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: stack.listen_any(backlog)?,
            _stack: stack.clone(),
            zero_linger: false,
        })
    }

    /// Waits for the next established connection.
    ///
    /// # Cancel safety
    /// Cancel safe: a connection is taken from the queue only when returned.
    /// Several tasks may accept on one listener at once.
    ///
    /// # Errors
    /// `NotConnected` if the stack was shut down.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        std::future::poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for the next established connection. An IPv4 connection on a
    /// dual-stack `[::]` listener shows IPv4-mapped addresses.
    ///
    /// # Errors
    /// `NotConnected` if the stack was shut down.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        self.inner.poll_accept(cx).map_ok(|conn| {
            let mapped = self.inner.local_addr().is_ipv6() && conn.peer_addr().is_ipv4();
            let s = TcpStream::from_accepted(conn, self._stack.clone(), mapped);
            s.set_zero_linger_flag(self.zero_linger);
            let peer = s.inner.peer_addr();
            (s, peer)
        })
    }

    /// Listens on `addr` with `IPV6_V6ONLY` on: a `[::]` listener then takes
    /// IPv6 connections only ([`bind`](Self::bind) is dual-stack).
    ///
    /// # Errors
    /// As [`bind`](Self::bind).
    pub fn bind_v6_only(stack: &Stack, addr: SocketAddr) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: stack.listen_v6_only(addr)?,
            _stack: stack.clone(),
            zero_linger: false,
        })
    }

    /// The TTL / hop limit that accepted connections start with.
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn ttl(&self) -> io::Result<u32> {
        Ok(u32::from(self.inner.ttl()))
    }

    /// Sets the TTL / hop limit of the connections accepted from now on
    /// (their SYN-ACK included); each stream can change its own later.
    ///
    /// # Errors
    /// `InvalidInput` for 0 or a value above 255.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let ttl = u8::try_from(ttl)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "TTL above 255"))?;
        self.inner.set_ttl(ttl)
    }

    /// The bound address.
    ///
    /// # Errors
    /// Never fails today; `io::Result` for parity with tokio.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.local_addr())
    }
}
