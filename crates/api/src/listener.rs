//! `TcpListener`.

use crate::TcpStream;
use crate::addr::{self, ToSocketAddrs};
use std::future::Future;
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
    /// Listens on `addr` on the ambient stack, as
    /// `tokio::net::TcpListener::bind`: the stack is the one set by
    /// [`Stack::enter`] or [`Stack::scope`] when this is called (with none
    /// then, the one ambient at the first poll). An
    /// unspecified IP listens on every address of the stack of that family,
    /// and `[::]` on the IPv4 ones too (dual-stack, IPv4 peers shown
    /// IPv4-mapped, as Linux with `IPV6_V6ONLY` off); port 0 picks a free
    /// port; with several addresses the first that binds wins.
    /// `stack.bind(addr)` ([`StackExt`](crate::StackExt)) names the stack.
    ///
    /// # Examples
    /// ```
    /// use tokio::io::AsyncWriteExt;
    /// use utcp::net::{TcpListener, TcpStream};
    /// use utcp::{Stack, StackConfig, sim::{LinkConfig, SimNetwork}};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
    /// let net = SimNetwork::new(1);
    /// let a = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
    /// let b = net.add_host("b", &["10.0.0.2".parse().unwrap()]);
    /// net.link(&a, &b, LinkConfig::default());
    /// let (client, server) = (Stack::new(a, StackConfig::default()), Stack::new(b, StackConfig::default()));
    /// // No ambient stack when `bind` is called: the scope's, at the first poll.
    /// let listener = server.scope(TcpListener::bind("0.0.0.0:80")).await?;
    /// assert_eq!(listener.local_addr()?.port(), 80);
    /// let mut c = client.scope(TcpStream::connect("10.0.0.2:80")).await?;
    /// let (s, peer) = listener.accept().await?;
    /// assert_eq!(peer, c.local_addr()?);
    /// assert_eq!(s.local_addr()?, "10.0.0.2:80".parse().unwrap());
    /// c.write_all(b"GET /").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `NotConnected` with no ambient stack (the message names `enter`), or
    /// once the stack was shut down; `AddrInUse` when the port is taken;
    /// `AddrNotAvailable` when the address is not the stack's;
    /// `InvalidInput` / `NotFound` for an address that does not resolve.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> impl Future<Output = io::Result<TcpListener>> {
        let at_call = Stack::try_current();
        async move {
            let (stack, addrs) = addr::ambient(at_call, &addr)?;
            TcpListener::bind_first(&stack, &addrs, None, false)
        }
    }

    /// The first address of `addrs` that binds, else the last error; the
    /// stack's default backlog for `None`.
    pub(crate) fn bind_first(
        stack: &Stack,
        addrs: &[SocketAddr],
        backlog: Option<usize>,
        v6_only: bool,
    ) -> io::Result<TcpListener> {
        let mut last = None;
        for &a in addrs {
            let r = match (backlog, v6_only) {
                (None, false) => stack.listen(a),
                (None, true) => stack.listen_v6_only(a),
                (Some(b), v6_only) => stack.listen_with(a, b, v6_only, &SocketOpts::default()),
            };
            match r {
                Ok(inner) => return Ok(TcpListener::from_ref(inner, stack, false)),
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

    fn from_ref(inner: ListenerRef, stack: &Stack, zero_linger: bool) -> TcpListener {
        TcpListener {
            inner,
            _stack: stack.clone(),
            zero_linger,
        }
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
        let inner = stack.listen_with(addr, backlog, v6_only, opts)?;
        Ok(TcpListener::from_ref(inner, stack, zero_linger))
    }

    /// Accepts connections to any destination address and port (`stack.bind_any`).
    pub(crate) fn any(stack: &Stack, backlog: usize) -> io::Result<TcpListener> {
        Ok(TcpListener::from_ref(
            stack.listen_any(backlog)?,
            stack,
            false,
        ))
    }

    /// Accept-any with a verdict per SYN (`stack.bind_any_with`).
    pub(crate) fn any_with<F>(stack: &Stack, backlog: usize, hook: F) -> io::Result<TcpListener>
    where
        F: Fn(&crate::SynInfo) -> crate::Verdict + Send + Sync + 'static,
    {
        Ok(TcpListener::from_ref(
            stack.listen_any_with(backlog, hook)?,
            stack,
            false,
        ))
    }

    /// Accepts connections to any destination address and port on the
    /// ambient stack, putting each SYN to `hook` first (see
    /// [`StackExt::bind_any_with`](crate::StackExt::bind_any_with)); the
    /// stack's default backlog.
    ///
    /// # Errors
    /// `NotConnected` with no ambient stack or once it was shut down;
    /// `AddrInUse` when an accept-any listener exists on it.
    pub fn bind_any_with<F>(hook: F) -> io::Result<TcpListener>
    where
        F: Fn(&crate::SynInfo) -> crate::Verdict + Send + Sync + 'static,
    {
        let stack = Stack::current()?;
        let backlog = stack.default_backlog();
        TcpListener::any_with(&stack, backlog, hook)
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
