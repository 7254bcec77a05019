//! # utcp: user-space TCP for Tokio
//!
//! `TcpListener`, `TcpStream` and `TcpSocket` with `tokio::net`'s names and
//! signatures, over utcp's own TCP/IP stack: every segment is built, sent,
//! received, timed and retransmitted in user space, over an in-memory network
//! (no privileges), a TUN device or a raw socket.
//!
//! Constructors come in two forms: [`net`]'s, exactly tokio's, use the
//! ambient stack ([`Stack::enter`], [`Stack::scope`]); [`StackExt`]'s name
//! the stack (`stack.connect(addr)`, `stack.bind(addr)`, `stack.socket_v4()`).
//!
//! ```
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use utcp::{Stack, StackConfig, StackExt, sim::{LinkConfig, SimNetwork}};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
//! let net = SimNetwork::new(7);
//! let a = net.add_host("client", &["10.0.0.1".parse().unwrap()]);
//! let b = net.add_host("server", &["10.0.0.2".parse().unwrap()]);
//! net.link(&a, &b, LinkConfig::default());
//! let client = Stack::new(a, StackConfig::default());
//! let server = Stack::new(b, StackConfig::default());
//!
//! let listener = server.bind("10.0.0.2:7")?;
//! tokio::spawn(async move {
//!     let (mut s, _) = listener.accept().await?;
//!     let (mut r, mut w) = s.split();
//!     tokio::io::copy(&mut r, &mut w).await?;
//!     std::io::Result::Ok(())
//! });
//! let mut s = client.connect("10.0.0.2:7").await?;
//! s.write_all(b"hello").await?;
//! s.shutdown().await?;
//! let mut back = Vec::new();
//! s.read_to_end(&mut back).await?;
//! assert_eq!(back, b"hello");
//! # Ok(()) }
//! ```
//!
//! # Adapters
//! Cargo features implement other crates' traits for utcp's types (the
//! orphan rule keeps applications from writing these impls themselves):
//! - `stream`: [`TcpListener::incoming`], a `futures_core::Stream` of
//!   accepted connections that ends when the listener closes.
//! - `axum`: `axum::serve` on a utcp [`TcpListener`], and
//!   `axum::extract::ConnectInfo<utcp::axum::UtcpConnectInfo>` (module
//!   `axum`).
//! - `hyper-util`: `utcp::hyper::UtcpConnector` for hyper-util's legacy
//!   `Client`, and `utcp::hyper::UtcpIo`, a stream as hyper's I/O (module
//!   `hyper`).
//! - `tonic`: tonic's `Connected` for [`TcpStream`] and
//!   `utcp::tonic::incoming(listener)` for `Server::serve_with_incoming`
//!   (module `tonic`; turns on `stream`).
#![deny(missing_docs)]
#![warn(clippy::missing_errors_doc)]

mod addr;
#[cfg(feature = "axum")]
pub mod axum;
#[cfg(any(feature = "axum", feature = "hyper-util"))]
mod conn_info;
#[cfg(feature = "hyper-util")]
pub mod hyper;
#[cfg(feature = "stream")]
mod incoming;
mod keepalive;
mod listener;
pub mod net;
mod socket;
mod split;
mod stream;
#[cfg(feature = "tonic")]
pub mod tonic;

pub use addr::ToSocketAddrs;
#[cfg(feature = "stream")]
pub use incoming::Incoming;
pub use keepalive::TcpKeepalive;
pub use listener::TcpListener;
pub use socket::TcpSocket;
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};
pub use stream::TcpStream;
pub use utcp_proto::{
    CaState, CongestionAlgorithm, CongestionCause, CongestionEvent, SlowStartExit, State, Stats,
};
/// Packet captures: pcap to a file, to any `Write`, or to size-limited
/// rotating files, written off the packet path by the writer's own thread
/// ([`capture::PcapWriter`]); [`capture::Capture`] records a device, and
/// `SimNetwork::set_tap` the whole in-memory network.
pub use utcp_runtime::device::capture;
pub use utcp_runtime::{
    ConnectionInfo, Device, DropCounts, EnterGuard, ListenerInfo, PendingSyn, Scope, SocketOpts,
    Stack, StackConfig, StackStats, SynInfo, TcpMib, Verdict, sim,
};

use std::future::Future;
use std::io;
use std::net::SocketAddr;

/// Streams, listeners and sockets on a named [`Stack`]: the explicit-stack
/// forms of `utcp::net`'s constructors (which use the ambient stack).
/// Addresses resolve as in [`ToSocketAddrs`]: through the stack's name
/// table, then as IP literals.
pub trait StackExt {
    /// Opens a connection to `addr` and waits for the handshake; with several
    /// addresses each is tried in turn and the last error returned.
    ///
    /// # Examples
    /// ```
    /// use std::io::ErrorKind;
    /// use utcp::{Stack, StackConfig, StackExt, sim::{LinkConfig, SimNetwork}};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let net = SimNetwork::new(1);
    /// let a = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
    /// let b = net.add_host("b", &["10.0.0.2".parse().unwrap()]);
    /// net.link(&a, &b, LinkConfig::default());
    /// let (client, _server) = (Stack::new(a, StackConfig::default()), Stack::new(b, StackConfig::default()));
    /// // Nobody listens on port 9: the server's stack answers the SYN with RST.
    /// let err = client.connect("b:9").await.unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    /// # }
    /// ```
    ///
    /// # Errors
    /// `ConnectionRefused` when the peer answers with RST; `TimedOut` after the
    /// SYN retries; `AddrNotAvailable` with no local address of the family or
    /// no free ephemeral port; `InvalidInput` for port 0 or an address that
    /// resolves to nothing; `NotFound` for a host name the name table does
    /// not hold; `NotConnected` once the stack was shut down
    /// (`ConnectionAborted` if it stops meanwhile).
    ///
    /// # Cancel safety
    /// Not cancel safe: dropping the future gives up the attempt (a SYN_SENT
    /// connection just closes; one that completed meanwhile is closed with FIN).
    fn connect<A: ToSocketAddrs>(
        &self,
        addr: A,
    ) -> impl Future<Output = io::Result<TcpStream>> + Send;

    /// Opens a connection from a chosen local address and port (both sides
    /// doing this toward each other is a simultaneous open).
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
    /// let _listener = server.bind("0.0.0.0:80")?;
    /// let s = client.connect_from("10.0.0.1:4000".parse().unwrap(), "10.0.0.2:80".parse().unwrap()).await?;
    /// assert_eq!(s.local_addr()?, "10.0.0.1:4000".parse().unwrap());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`connect`](Self::connect), and `AddrInUse` when the 4-tuple exists.
    ///
    /// # Cancel safety
    /// As [`connect`](Self::connect).
    fn connect_from(
        &self,
        local: SocketAddr,
        addr: SocketAddr,
    ) -> impl Future<Output = io::Result<TcpStream>> + Send;

    /// Listens on `addr` (an unspecified IP listens on every address of the
    /// stack of that family, and `[::]` on the IPv4 ones too: dual-stack,
    /// IPv4 peers shown IPv4-mapped, as Linux with `IPV6_V6ONLY` off; port 0
    /// picks a free port). With several addresses the first that binds wins.
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
    /// let listener = server.bind("0.0.0.0:80")?;
    /// assert_eq!(listener.local_addr()?.port(), 80);
    /// let mut c = client.connect("10.0.0.2:80").await?;
    /// let (s, peer) = listener.accept().await?;
    /// assert_eq!(peer, c.local_addr()?);
    /// assert_eq!(s.local_addr()?, "10.0.0.2:80".parse().unwrap());
    /// c.write_all(b"GET /").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `AddrInUse` when the port is taken; `AddrNotAvailable` when the
    /// address is not the stack's; `InvalidInput` / `NotFound` for an address
    /// that does not resolve; `NotConnected` once the stack was shut down.
    fn bind<A: ToSocketAddrs>(&self, addr: A) -> io::Result<TcpListener>;

    /// Like [`bind`](Self::bind) with an explicit backlog: the accept queue's
    /// bound (established connections not yet accepted), as on Linux. While
    /// it is full a new SYN is dropped and a handshake's final ACK is held
    /// back (its SYN-ACK is re-sent until room frees); half-open connections
    /// have their own bound, the SYN queue (`EndpointConfig::syn_queue`),
    /// beyond which SYNs get SYN cookies.
    ///
    /// # Errors
    /// As [`bind`](Self::bind).
    fn bind_with_backlog<A: ToSocketAddrs>(
        &self,
        addr: A,
        backlog: usize,
    ) -> io::Result<TcpListener>;

    /// Listens with `IPV6_V6ONLY` on: a `[::]` listener then takes IPv6
    /// connections only ([`bind`](Self::bind) is dual-stack).
    ///
    /// # Errors
    /// As [`bind`](Self::bind).
    fn bind_v6_only<A: ToSocketAddrs>(&self, addr: A) -> io::Result<TcpListener>;

    /// Accepts connections to any destination address and port (TUN users:
    /// VPNs, tun2socks). Each stream's `local_addr()` is the original
    /// destination.
    ///
    /// # Examples
    /// ```
    /// use utcp::{Stack, StackConfig, StackExt, sim::{LinkConfig, SimNetwork}};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
    /// let net = SimNetwork::new(1);
    /// let a = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
    /// let gw = net.add_host("gw", &["10.0.0.254".parse().unwrap()]);
    /// net.link(&a, &gw, LinkConfig::default());
    /// net.set_default_route(&a, Some(&gw)); // everything else goes to gw
    /// let (client, gateway) = (Stack::new(a, StackConfig::default()), Stack::new(gw, StackConfig::default()));
    /// let any = gateway.bind_any(64)?;
    /// let c = client.connect("93.184.216.34:443").await?;
    /// let (s, _) = any.accept().await?;
    /// assert_eq!(s.local_addr()?, c.peer_addr()?); // the original destination
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `AddrInUse` when an accept-any listener exists on this stack.
    fn bind_any(&self, backlog: usize) -> io::Result<TcpListener>;

    /// As [`bind_any`](Self::bind_any), but each SYN is put to `hook` before
    /// anything is answered, and its [`Verdict`] decides: `Accept`,
    /// `Reset` (an RST, nothing created), `Drop` (nothing sent), or
    /// `Defer(PendingSyn)` to decide later, as a tun2socks-style proxy does
    /// once its upstream connect succeeded or failed ([`PendingSyn`] has
    /// the details and an example). The hook runs on the stack's device
    /// task with no lock held: it may call into the stack, but must not
    /// block.
    ///
    /// # Examples
    /// ```
    /// use utcp::{Stack, StackConfig, StackExt, SynInfo, Verdict, sim::{LinkConfig, SimNetwork}};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
    /// let net = SimNetwork::new(1);
    /// let a = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
    /// let gw = net.add_host("gw", &["10.0.0.254".parse().unwrap()]);
    /// let o = net.add_host("origin", &["10.0.1.1".parse().unwrap()]);
    /// net.link(&a, &gw, LinkConfig::default());
    /// net.link(&gw, &o, LinkConfig::default());
    /// net.set_default_route(&a, Some(&gw));
    /// let cfg = StackConfig::default;
    /// let (client, gateway, origin) = (Stack::new(a, cfg()), Stack::new(gw, cfg()), Stack::new(o, cfg()));
    /// let _origin = origin.bind("10.0.1.1:443")?;
    /// let upstream = gateway.clone();
    /// let any = gateway.bind_any_with(64, move |syn: &SynInfo| {
    ///     // This proxy's upstream for every destination is the origin.
    ///     let (pending, upstream) = (syn.defer(), upstream.clone());
    ///     let to = std::net::SocketAddr::new("10.0.1.1".parse().unwrap(), syn.local_addr().port());
    ///     let p = pending.clone();
    ///     tokio::spawn(async move {
    ///         // Answer the client only once the upstream answered.
    ///         let _ = match upstream.connect(to).await {
    ///             Ok(_stream) => p.complete(), // a real proxy keeps it and relays
    ///             Err(_) => p.reset(),
    ///         };
    ///     });
    ///     Verdict::Defer(pending)
    /// })?;
    /// let c = client.connect("93.184.216.34:443").await?;
    /// let (s, _) = any.accept().await?;
    /// assert_eq!(s.local_addr()?, c.peer_addr()?);
    /// // Nothing listens on port 80 there: the client's connect is refused.
    /// let e = client.connect("93.184.216.34:80").await.unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`bind_any`](Self::bind_any).
    fn bind_any_with<F>(&self, backlog: usize, hook: F) -> io::Result<TcpListener>
    where
        F: Fn(&SynInfo) -> Verdict + Send + Sync + 'static;

    /// A new IPv4 [`TcpSocket`] on this stack (`TcpSocket::new_v4` with the
    /// stack named).
    ///
    /// # Errors
    /// Never fails; `io::Result` as `TcpSocket::new_v4`.
    fn socket_v4(&self) -> io::Result<TcpSocket>;

    /// A new IPv6 [`TcpSocket`] on this stack.
    ///
    /// # Errors
    /// Never fails; `io::Result` as `TcpSocket::new_v6`.
    fn socket_v6(&self) -> io::Result<TcpSocket>;
}

impl StackExt for Stack {
    fn connect<A: ToSocketAddrs>(
        &self,
        addr: A,
    ) -> impl Future<Output = io::Result<TcpStream>> + Send {
        let start = addr::resolve(self, &addr).map(|a| (self.clone(), a));
        async move {
            let (stack, addrs) = start?;
            TcpStream::open(&stack, None, &addrs, &SocketOpts::default(), false).await
        }
    }

    fn connect_from(
        &self,
        local: SocketAddr,
        addr: SocketAddr,
    ) -> impl Future<Output = io::Result<TcpStream>> + Send {
        let stack = self.clone();
        async move {
            if local.port() == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "connect_from needs a local port (bind a TcpSocket for an ephemeral one)",
                ));
            }
            TcpStream::open(&stack, Some(local), &[addr], &SocketOpts::default(), false).await
        }
    }

    fn bind<A: ToSocketAddrs>(&self, addr: A) -> io::Result<TcpListener> {
        TcpListener::bind_first(self, &addr::resolve(self, &addr)?, None, false)
    }

    fn bind_with_backlog<A: ToSocketAddrs>(
        &self,
        addr: A,
        backlog: usize,
    ) -> io::Result<TcpListener> {
        TcpListener::bind_first(self, &addr::resolve(self, &addr)?, Some(backlog), false)
    }

    fn bind_v6_only<A: ToSocketAddrs>(&self, addr: A) -> io::Result<TcpListener> {
        TcpListener::bind_first(self, &addr::resolve(self, &addr)?, None, true)
    }

    fn bind_any(&self, backlog: usize) -> io::Result<TcpListener> {
        TcpListener::any(self, backlog)
    }

    fn bind_any_with<F>(&self, backlog: usize, hook: F) -> io::Result<TcpListener>
    where
        F: Fn(&SynInfo) -> Verdict + Send + Sync + 'static,
    {
        TcpListener::any_with(self, backlog, hook)
    }

    fn socket_v4(&self) -> io::Result<TcpSocket> {
        Ok(TcpSocket::on(self.clone(), false))
    }

    fn socket_v6(&self) -> io::Result<TcpSocket> {
        Ok(TcpSocket::on(self.clone(), true))
    }
}

/// The README's Rust example, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
