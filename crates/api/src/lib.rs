//! # utcp: user-space TCP for Tokio
//!
//! `TcpListener` and `TcpStream` that feel like `tokio::net`'s, over utcp's own
//! TCP/IP stack: every segment is built, sent, received, timed and
//! retransmitted in user space, over an in-memory network (no privileges), a
//! TUN device or a raw socket.
//!
//! ```
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use utcp::{Stack, StackConfig, TcpListener, TcpStream, sim::{LinkConfig, SimNetwork}};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
//! let net = SimNetwork::new(7);
//! let a = net.add_host("client", &["10.0.0.1".parse().unwrap()]);
//! let b = net.add_host("server", &["10.0.0.2".parse().unwrap()]);
//! net.link(&a, &b, LinkConfig::default());
//! let client = Stack::new(a, StackConfig::default());
//! let server = Stack::new(b, StackConfig::default());
//!
//! let listener = TcpListener::bind(&server, "10.0.0.2:7".parse().unwrap())?;
//! tokio::spawn(async move {
//!     let (mut s, _) = listener.accept().await?;
//!     let (mut r, mut w) = s.split();
//!     tokio::io::copy(&mut r, &mut w).await?;
//!     std::io::Result::Ok(())
//! });
//! let mut s = TcpStream::connect(&client, "10.0.0.2:7".parse().unwrap()).await?;
//! s.write_all(b"hello").await?;
//! s.shutdown().await?;
//! let mut back = Vec::new();
//! s.read_to_end(&mut back).await?;
//! assert_eq!(back, b"hello");
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![warn(clippy::missing_errors_doc)]

mod listener;
mod split;
mod stream;

pub use listener::TcpListener;
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};
pub use stream::TcpStream;
pub use utcp_proto::{State, Stats};
pub use utcp_runtime::{Device, Stack, StackConfig, StackStats, sim};

/// Convenience methods on [`Stack`]: `stack.connect(addr)` and `stack.bind(addr)`.
pub trait StackExt {
    /// Same as [`TcpStream::connect`].
    fn connect(
        &self,
        addr: std::net::SocketAddr,
    ) -> impl std::future::Future<Output = std::io::Result<TcpStream>> + Send;
    /// Same as [`TcpListener::bind`].
    ///
    /// # Errors
    /// As [`TcpListener::bind`].
    fn bind(&self, addr: std::net::SocketAddr) -> std::io::Result<TcpListener>;
}

impl StackExt for Stack {
    fn connect(
        &self,
        addr: std::net::SocketAddr,
    ) -> impl std::future::Future<Output = std::io::Result<TcpStream>> + Send {
        TcpStream::connect(self, addr)
    }
    fn bind(&self, addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
        TcpListener::bind(self, addr)
    }
}

/// The README's Rust example, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
