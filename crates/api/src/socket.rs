//! `TcpSocket`: a socket configured before it connects or listens, like
//! `tokio::net::TcpSocket`.

use crate::{TcpKeepalive, TcpListener, TcpStream};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use utcp_proto::CongestionAlgorithm;
use utcp_runtime::{SocketOpts, Stack};

/// A TCP socket that has not yet been turned into a [`TcpStream`] or a
/// [`TcpListener`], like `tokio::net::TcpSocket`: set its options, optionally
/// [`bind`](Self::bind) it, then [`connect`](Self::connect) or
/// [`listen`](Self::listen). Every option is per connection: a connection
/// gets them before its first segment (its SYN's window reflects the
/// receive buffer), and a listener hands them to each connection it accepts
/// before the SYN-ACK.
///
/// [`new_v4`](Self::new_v4) / [`new_v6`](Self::new_v6) use the ambient stack
/// ([`Stack::enter`], [`Stack::scope`]); `stack.socket_v4()` /
/// `stack.socket_v6()` ([`StackExt`](crate::StackExt)) name one.
///
/// # Examples
/// ```
/// use utcp::{Stack, StackConfig, StackExt, sim::{LinkConfig, SimNetwork}};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
/// let net = SimNetwork::new(1);
/// let a = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
/// let b = net.add_host("b", &["10.0.0.2".parse().unwrap()]);
/// net.link(&a, &b, LinkConfig::default());
/// let (client, server) = (Stack::new(a, StackConfig::default()), Stack::new(b, StackConfig::default()));
///
/// let socket = server.socket_v4()?;
/// socket.set_recv_buffer_size(8192)?;
/// socket.bind("0.0.0.0:8080".parse().unwrap())?;
/// let listener = socket.listen(64)?;
///
/// let socket = client.socket_v4()?;
/// socket.bind("10.0.0.1:0".parse().unwrap())?;
/// let stream = socket.connect("10.0.0.2:8080".parse().unwrap()).await?;
/// assert_eq!(stream.local_addr()?.ip(), "10.0.0.1".parse::<std::net::IpAddr>().unwrap());
/// let (accepted, _) = listener.accept().await?;
/// assert_eq!(accepted.peer_addr()?, stream.local_addr()?);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TcpSocket {
    stack: Stack,
    v6: bool,
    state: Mutex<SocketState>,
}

#[derive(Debug, Clone, Copy)]
struct SocketState {
    local: Option<SocketAddr>,
    opts: SocketOpts,
    zero_linger: bool,
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn unsupported(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, msg)
}

fn byte(v: u32, what: &'static str) -> io::Result<u8> {
    u8::try_from(v).map_err(|_| invalid(what))
}

fn size(v: u32) -> io::Result<usize> {
    if v == 0 {
        return Err(invalid("a buffer size of 0 bytes"));
    }
    usize::try_from(v).map_err(|_| invalid("buffer size too large"))
}

impl TcpSocket {
    /// A new IPv4 socket on the ambient stack.
    ///
    /// # Examples
    /// ```
    /// use utcp::net::TcpSocket;
    /// use utcp::{Stack, StackConfig, sim::SimNetwork};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// let net = SimNetwork::new(1);
    /// let stack = Stack::new(net.add_host("a", &["10.0.0.1".parse().unwrap()]), StackConfig::default());
    /// let err = TcpSocket::new_v4().unwrap_err(); // no ambient stack yet
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotConnected);
    /// let _guard = stack.enter();
    /// let socket = TcpSocket::new_v4()?;
    /// assert_eq!(socket.local_addr()?, "0.0.0.0:0".parse().unwrap());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `NotConnected` with no ambient stack ([`Stack::enter`],
    /// [`Stack::scope`]).
    pub fn new_v4() -> io::Result<TcpSocket> {
        Ok(TcpSocket::on(Stack::current()?, false))
    }

    /// A new IPv6 socket on the ambient stack (listening on `[::]` is
    /// dual-stack).
    ///
    /// # Errors
    /// As [`new_v4`](Self::new_v4).
    pub fn new_v6() -> io::Result<TcpSocket> {
        Ok(TcpSocket::on(Stack::current()?, true))
    }

    pub(crate) fn on(stack: Stack, v6: bool) -> TcpSocket {
        TcpSocket {
            stack,
            v6,
            state: Mutex::new(SocketState {
                local: None,
                opts: SocketOpts::default(),
                zero_linger: false,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, SocketState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn family_ok(&self, a: &SocketAddr) -> io::Result<()> {
        if a.is_ipv6() != self.v6 {
            return Err(invalid("the address is not of the socket's family"));
        }
        Ok(())
    }

    /// Binds the socket to a local address: an IP of the stack (or
    /// unspecified) and a port (0: an ephemeral port, picked at
    /// [`connect`](Self::connect) from that IP, or a free one at
    /// [`listen`](Self::listen)).
    ///
    /// # Examples
    /// ```
    /// # use utcp::{Stack, StackConfig, StackExt, sim::{LinkConfig, SimNetwork}};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
    /// # let net = SimNetwork::new(1);
    /// # let a = net.add_host("a", &["10.0.0.1".parse().unwrap(), "10.0.0.11".parse().unwrap()]);
    /// # let b = net.add_host("b", &["10.0.0.2".parse().unwrap()]);
    /// # net.link(&a, &b, LinkConfig::default());
    /// # let (client, server) = (Stack::new(a, StackConfig::default()), Stack::new(b, StackConfig::default()));
    /// let _listener = server.bind("0.0.0.0:80")?;
    /// let socket = client.socket_v4()?;
    /// socket.bind("10.0.0.11:0".parse().unwrap())?; // this source IP, any port
    /// let stream = socket.connect("10.0.0.2:80".parse().unwrap()).await?;
    /// assert_eq!(stream.local_addr()?.ip().to_string(), "10.0.0.11");
    /// assert_ne!(stream.local_addr()?.port(), 0);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `InvalidInput` for an address of the other family or a socket bound
    /// already; `AddrNotAvailable` for an IP that is not the stack's. A port
    /// in use is reported by `connect` / `listen` (`AddrInUse`).
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        self.family_ok(&addr)?;
        if !addr.ip().is_unspecified() && !self.stack.is_local(addr.ip()) {
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                "not an address of this stack",
            ));
        }
        let mut st = self.state();
        if st.local.is_some() {
            return Err(invalid("the socket is bound already"));
        }
        st.local = Some(addr);
        Ok(())
    }

    /// The bound address; unspecified with port 0 before [`bind`](Self::bind).
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.state().local.unwrap_or(self.unbound()))
    }

    fn unbound(&self) -> SocketAddr {
        if self.v6 {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
        } else {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
        }
    }

    /// Opens a connection to `addr` with the socket's options, from the bound
    /// address if any, and waits for the handshake.
    ///
    /// # Examples
    /// ```
    /// # use utcp::{Stack, StackConfig, StackExt, sim::{LinkConfig, SimNetwork}};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
    /// # let net = SimNetwork::new(1);
    /// # let a = net.add_host("a", &["10.0.0.1".parse().unwrap(), "10.0.0.11".parse().unwrap()]);
    /// # let b = net.add_host("b", &["10.0.0.2".parse().unwrap()]);
    /// # net.link(&a, &b, LinkConfig::default());
    /// # let (client, server) = (Stack::new(a, StackConfig::default()), Stack::new(b, StackConfig::default()));
    /// let _listener = server.bind("0.0.0.0:80")?;
    /// let socket = client.socket_v4()?;
    /// socket.set_tos_v4(0xb8)?; // DSCP EF in every IP header
    /// let stream = socket.connect("10.0.0.2:80".parse().unwrap()).await?;
    /// assert_eq!(stream.peer_addr()?, "10.0.0.2:80".parse().unwrap());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`TcpStream::connect`]; `InvalidInput` for an address of the other
    /// family; `AddrInUse` when the bound address and port already connect
    /// to `addr`.
    ///
    /// # Cancel safety
    /// Not cancel safe: dropping the future gives up the attempt.
    pub async fn connect(self, addr: SocketAddr) -> io::Result<TcpStream> {
        self.family_ok(&addr)?;
        let st = *self.state();
        TcpStream::open(&self.stack, st.local, &[addr], &st.opts, st.zero_linger).await
    }

    /// Listens on the bound address (unbound: every address of the family,
    /// a free port) with `backlog`; accepted connections get the socket's
    /// options before their SYN-ACK.
    ///
    /// # Examples
    /// ```
    /// # use utcp::{Stack, StackConfig, StackExt, sim::{LinkConfig, SimNetwork}};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
    /// # let net = SimNetwork::new(1);
    /// # let a = net.add_host("a", &["10.0.0.1".parse().unwrap(), "10.0.0.11".parse().unwrap()]);
    /// # let b = net.add_host("b", &["10.0.0.2".parse().unwrap()]);
    /// # net.link(&a, &b, LinkConfig::default());
    /// # let (client, server) = (Stack::new(a, StackConfig::default()), Stack::new(b, StackConfig::default()));
    /// let socket = server.socket_v6()?;
    /// socket.set_recv_buffer_size(16 * 1024)?; // every accepted connection's
    /// let listener = socket.listen(128)?; // unbound: [::], a free port, dual-stack
    /// let port = listener.local_addr()?.port();
    /// let _c = client.connect(("10.0.0.2", port)).await?;
    /// let (accepted, _) = listener.accept().await?;
    /// assert!(accepted.peer_addr()?.is_ipv6()); // IPv4-mapped
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`TcpListener::bind`](crate::TcpListener).
    pub fn listen(self, backlog: u32) -> io::Result<TcpListener> {
        let st = *self.state();
        let addr = st.local.unwrap_or(self.unbound());
        let backlog = usize::try_from(backlog).unwrap_or(usize::MAX);
        TcpListener::open(&self.stack, addr, backlog, false, &st.opts, st.zero_linger)
    }

    /// Sets the send buffer size (`SO_SNDBUF`): a fixed limit on bytes queued
    /// and not yet acknowledged.
    ///
    /// # Errors
    /// `InvalidInput` for 0.
    pub fn set_send_buffer_size(&self, size: u32) -> io::Result<()> {
        let n = self::size(size)?;
        self.state().opts.send_buffer = Some(n);
        Ok(())
    }

    /// The send buffer size (the stack's default until set).
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn send_buffer_size(&self) -> io::Result<u32> {
        let n = self.state().opts.send_buffer;
        let n = n.or(self.stack.default_opts().send_buffer).unwrap_or(0);
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Sets the receive buffer size (`SO_RCVBUF`): a fixed limit; the window
    /// offered, the SYN's included, is at most this.
    ///
    /// # Examples
    /// ```
    /// # use utcp::{Stack, StackConfig, StackExt, sim::{LinkConfig, SimNetwork}};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
    /// # let net = SimNetwork::new(1);
    /// # let a = net.add_host("a", &["10.0.0.1".parse().unwrap(), "10.0.0.11".parse().unwrap()]);
    /// # let b = net.add_host("b", &["10.0.0.2".parse().unwrap()]);
    /// # net.link(&a, &b, LinkConfig::default());
    /// # let (client, server) = (Stack::new(a, StackConfig::default()), Stack::new(b, StackConfig::default()));
    /// let socket = client.socket_v4()?;
    /// socket.set_recv_buffer_size(4096)?;
    /// assert_eq!(socket.recv_buffer_size()?, 4096);
    /// assert_eq!(socket.set_recv_buffer_size(0).unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `InvalidInput` for 0.
    pub fn set_recv_buffer_size(&self, size: u32) -> io::Result<()> {
        let n = self::size(size)?;
        self.state().opts.recv_buffer = Some(n);
        Ok(())
    }

    /// The receive buffer size (the stack's default until set).
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn recv_buffer_size(&self) -> io::Result<u32> {
        let n = self.state().opts.recv_buffer;
        let n = n.or(self.stack.default_opts().recv_buffer).unwrap_or(0);
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// `TCP_NODELAY`: turns Nagle's algorithm off (`true`) or on for the
    /// socket's connections (on by default, as in the kernel; see
    /// [`TcpStream::set_nodelay`]).
    ///
    /// # Examples
    /// ```
    /// # use utcp::{Stack, StackConfig, StackExt, sim::SimNetwork};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
    /// # let net = SimNetwork::new(1);
    /// # let stack = Stack::new(net.add_host("a", &["10.0.0.1".parse().unwrap()]), StackConfig::default());
    /// let socket = stack.socket_v4()?;
    /// assert!(!socket.nodelay()?);
    /// socket.set_nodelay(true)?;
    /// assert!(socket.nodelay()?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.state().opts.nodelay = Some(nodelay);
        Ok(())
    }

    /// Whether Nagle's algorithm is off (the stack's default until set).
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn nodelay(&self) -> io::Result<bool> {
        let n = self.state().opts.nodelay;
        Ok(n.or(self.stack.default_opts().nodelay).unwrap_or(false))
    }

    /// `SO_KEEPALIVE`: probe the peer after the connection was idle (off by
    /// default; idle 7200 s, interval 75 s, 9 probes unless
    /// [`set_tcp_keepalive`](Self::set_tcp_keepalive) says otherwise). A
    /// connection whose probes go unanswered fails with `TimedOut`.
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn set_keepalive(&self, keepalive: bool) -> io::Result<()> {
        self.state().opts.keepalive = Some(keepalive);
        Ok(())
    }

    /// Whether keepalive probes are on (the stack's default until set).
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn keepalive(&self) -> io::Result<bool> {
        let k = self.state().opts.keepalive;
        Ok(k.or(self.stack.default_opts().keepalive).unwrap_or(false))
    }

    /// Sets the keepalive idle time, interval and count given and turns
    /// keepalive on (as `socket2::Socket::set_tcp_keepalive`).
    ///
    /// # Examples
    /// ```
    /// # use utcp::{Stack, StackConfig, StackExt, TcpKeepalive, sim::SimNetwork};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
    /// # let net = SimNetwork::new(1);
    /// # let stack = Stack::new(net.add_host("a", &["10.0.0.1".parse().unwrap()]), StackConfig::default());
    /// use std::time::Duration;
    /// let socket = stack.socket_v4()?;
    /// socket.set_tcp_keepalive(&TcpKeepalive::new().with_time(Duration::from_secs(60)))?;
    /// assert!(socket.keepalive()?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `InvalidInput` for a zero time, interval or count.
    pub fn set_tcp_keepalive(&self, params: &TcpKeepalive) -> io::Result<()> {
        params.check()?;
        let mut st = self.state();
        st.opts.keepalive = Some(true);
        if let Some(d) = params.time() {
            st.opts.keepalive_time = Some(d);
        }
        if let Some(d) = params.interval() {
            st.opts.keepalive_interval = Some(d);
        }
        if let Some(n) = params.retries() {
            st.opts.keepalive_retries = Some(n);
        }
        Ok(())
    }

    /// `TCP_USER_TIMEOUT` (RFC 9293 §3.10.8): data left unacknowledged this
    /// long fails the connection with `TimedOut`, whatever the number of
    /// retransmissions; `None` leaves it off (the default).
    ///
    /// # Errors
    /// `InvalidInput` for `Some(Duration::ZERO)` (say `None`).
    pub fn set_tcp_user_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        if timeout.is_some_and(|d| d.is_zero()) {
            return Err(invalid("a user timeout of 0 (None turns it off)"));
        }
        self.state().opts.user_timeout = timeout;
        Ok(())
    }

    /// The user timeout the socket's connections get, if any.
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with socket2.
    pub fn tcp_user_timeout(&self) -> io::Result<Option<Duration>> {
        let u = self.state().opts.user_timeout;
        Ok(u.or(self.stack.default_opts().user_timeout))
    }

    /// `SO_REUSEADDR`: utcp always lets a listener bind a port that
    /// connections (in TIME_WAIT or not) still use, as Linux with the option
    /// on; `true` is accepted.
    ///
    /// # Errors
    /// `Unsupported` for `false`: utcp has no mode that refuses such a bind.
    pub fn set_reuseaddr(&self, reuseaddr: bool) -> io::Result<()> {
        if reuseaddr {
            Ok(())
        } else {
            Err(unsupported(
                "utcp always allows binding over connections still using the port",
            ))
        }
    }

    /// Whether `SO_REUSEADDR` is on: always `true` (see
    /// [`set_reuseaddr`](Self::set_reuseaddr)).
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn reuseaddr(&self) -> io::Result<bool> {
        Ok(true)
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
            None => self.state().zero_linger = false,
            Some(d) if d.is_zero() => self.state().zero_linger = true,
            Some(_) => {
                return Err(unsupported(
                    "a lingering close with a timeout; only zero linger (RST on drop) exists",
                ));
            }
        }
        Ok(())
    }

    /// `SO_LINGER` with a zero timeout: the stream (or each stream accepted
    /// from the listener) is reset (RST) when dropped, instead of closed.
    ///
    /// # Examples
    /// ```
    /// # use utcp::{Stack, StackConfig, StackExt, sim::{LinkConfig, SimNetwork}};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
    /// # let net = SimNetwork::new(1);
    /// # let a = net.add_host("a", &["10.0.0.1".parse().unwrap(), "10.0.0.11".parse().unwrap()]);
    /// # let b = net.add_host("b", &["10.0.0.2".parse().unwrap()]);
    /// # net.link(&a, &b, LinkConfig::default());
    /// # let (client, server) = (Stack::new(a, StackConfig::default()), Stack::new(b, StackConfig::default()));
    /// let _listener = server.bind("0.0.0.0:80")?;
    /// let socket = client.socket_v4()?;
    /// socket.set_zero_linger()?;
    /// let stream = socket.connect("10.0.0.2:80".parse().unwrap()).await?;
    /// assert_eq!(stream.linger()?, Some(std::time::Duration::ZERO));
    /// drop(stream); // RST, no FIN, no TIME_WAIT
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn set_zero_linger(&self) -> io::Result<()> {
        self.state().zero_linger = true;
        Ok(())
    }

    /// The linger setting: `Some(0)` after [`set_zero_linger`](Self::set_zero_linger),
    /// `None` otherwise.
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        Ok(self.state().zero_linger.then_some(Duration::ZERO))
    }

    /// Sets the IP TTL / hop limit of the socket's connections.
    ///
    /// # Errors
    /// `InvalidInput` for 0 or a value above 255.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let t = byte(ttl, "TTL above 255")?;
        if t == 0 {
            return Err(invalid("a TTL of 0"));
        }
        self.state().opts.ttl = Some(t);
        Ok(())
    }

    /// The IP TTL / hop limit (the stack's default until set).
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn ttl(&self) -> io::Result<u32> {
        let t = self.state().opts.ttl;
        Ok(u32::from(t.or(self.stack.default_opts().ttl).unwrap_or(64)))
    }

    /// Sets `IP_TOS`: the DSCP / ECN byte of every IPv4 segment of the
    /// socket's connections.
    ///
    /// # Errors
    /// `InvalidInput` for a value above 255.
    pub fn set_tos_v4(&self, tos: u32) -> io::Result<()> {
        self.state().opts.tos = Some(byte(tos, "TOS above 255")?);
        Ok(())
    }

    /// The `IP_TOS` byte (0 until set).
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn tos_v4(&self) -> io::Result<u32> {
        Ok(u32::from(self.tos()))
    }

    /// Sets `IPV6_TCLASS`: the traffic class of every IPv6 segment of the
    /// socket's connections.
    ///
    /// # Errors
    /// `InvalidInput` for a value above 255.
    pub fn set_tclass_v6(&self, tclass: u32) -> io::Result<()> {
        self.state().opts.tos = Some(byte(tclass, "traffic class above 255")?);
        Ok(())
    }

    /// The `IPV6_TCLASS` value (0 until set).
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn tclass_v6(&self) -> io::Result<u32> {
        Ok(u32::from(self.tos()))
    }

    fn tos(&self) -> u8 {
        let t = self.state().opts.tos;
        t.or(self.stack.default_opts().tos).unwrap_or(0)
    }

    /// Chooses the congestion controller of the socket's connections
    /// (Linux's `TCP_CONGESTION`): [`CongestionAlgorithm::Cubic`] (the
    /// default) or [`CongestionAlgorithm::NewReno`]. A listener's accepted
    /// connections get it too.
    ///
    /// # Examples
    /// ```
    /// use utcp::{CongestionAlgorithm, Stack, StackConfig, StackExt, sim::{LinkConfig, SimNetwork}};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
    /// let net = SimNetwork::new(1);
    /// let a = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
    /// let b = net.add_host("b", &["10.0.0.2".parse().unwrap()]);
    /// net.link(&a, &b, LinkConfig::default());
    /// let (client, server) = (Stack::new(a, StackConfig::default()), Stack::new(b, StackConfig::default()));
    /// let _listener = server.bind("10.0.0.2:80")?;
    /// let socket = client.socket_v4()?;
    /// socket.set_congestion(CongestionAlgorithm::NewReno)?;
    /// let stream = socket.connect("10.0.0.2:80".parse().unwrap()).await?;
    /// assert_eq!(stream.stats().congestion, CongestionAlgorithm::NewReno);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with the other setters.
    pub fn set_congestion(&self, algorithm: CongestionAlgorithm) -> io::Result<()> {
        self.state().opts.congestion = Some(algorithm);
        Ok(())
    }

    /// The congestion controller the socket's connections get (the stack's
    /// default until set).
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio's getters.
    pub fn congestion(&self) -> io::Result<CongestionAlgorithm> {
        let c = self.state().opts.congestion;
        Ok(c.or(self.stack.default_opts().congestion)
            .unwrap_or_default())
    }

    /// The socket's pending error: a socket that has not connected has none.
    ///
    /// # Errors
    /// Never fails; `io::Result` for parity with tokio.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(None)
    }
}
