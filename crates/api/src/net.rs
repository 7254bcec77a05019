//! tokio's `net` TCP types, by the same names, over utcp's stack: code written
//! against `tokio::net` compiles against `utcp::net` by changing the `use`
//! line (the turmoil pattern: `#[cfg(test)] use utcp::net::TcpStream;`).
//!
//! The types are utcp's own ([`crate::TcpStream`] is `utcp::net::TcpStream`,
//! not a wrapper). Constructors without a stack argument use the *ambient*
//! stack: the one set on the thread by [`Stack::enter`](crate::Stack::enter)
//! or for a future by [`Stack::scope`](crate::Stack::scope), captured when
//! the call is made. With none they fail with `NotConnected`. Host names
//! resolve through the stack's name table (the in-memory network's hosts),
//! never through system DNS.
//!
//! # Examples
//! ```
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use utcp::net::{TcpListener, TcpStream};
//! use utcp::{Stack, StackConfig, sim::{LinkConfig, SimNetwork}};
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
//! let net = SimNetwork::new(1);
//! let a = net.add_host("app", &["10.0.0.1".parse().unwrap()]);
//! let b = net.add_host("db", &["10.0.0.2".parse().unwrap()]);
//! net.link(&a, &b, LinkConfig::default());
//! let (app, db) = (Stack::new(a, StackConfig::default()), Stack::new(b, StackConfig::default()));
//!
//! // Code written for tokio::net, unchanged:
//! async fn serve() -> std::io::Result<()> {
//!     let listener = TcpListener::bind("0.0.0.0:5432").await?;
//!     let (mut s, _) = listener.accept().await?;
//!     let mut buf = [0u8; 4];
//!     s.read_exact(&mut buf).await?;
//!     s.write_all(&buf).await
//! }
//! let server = tokio::spawn(db.scope(serve()));
//! tokio::task::yield_now().await; // let it bind
//!
//! let _guard = app.enter();
//! let mut s = TcpStream::connect("db:5432").await?;
//! s.write_all(b"ping").await?;
//! let mut back = [0u8; 4];
//! s.read_exact(&mut back).await?;
//! assert_eq!(&back, b"ping");
//! server.await.unwrap()?;
//! # Ok(()) }
//! ```

pub use crate::addr::ToSocketAddrs;
pub use crate::socket::TcpSocket;
pub use crate::{TcpListener, TcpStream};

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use utcp_runtime::Stack;

/// Resolves `host` to its socket addresses, as `tokio::net::lookup_host`, on
/// the ambient stack (captured when called, else at the first poll): through
/// the stack's name table, then as IP literals; never system DNS.
///
/// # Examples
/// ```
/// use utcp::{Stack, StackConfig, sim::SimNetwork};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
/// let net = SimNetwork::new(1);
/// let app = Stack::new(net.add_host("app", &["10.0.0.1".parse().unwrap()]), StackConfig::default());
/// net.add_host("db", &["10.0.0.2".parse().unwrap()]);
/// let _guard = app.enter();
/// let addrs: Vec<_> = utcp::net::lookup_host("db:5432").await?.collect();
/// assert_eq!(addrs, ["10.0.0.2:5432".parse().unwrap()]);
/// # Ok(()) }
/// ```
///
/// # Errors
/// `NotConnected` with no ambient stack; `NotFound` for a name the table
/// does not hold that is no IP literal either; `InvalidInput` for a
/// malformed `"host:port"`.
pub fn lookup_host<T: ToSocketAddrs>(
    host: T,
) -> impl Future<Output = io::Result<impl Iterator<Item = SocketAddr>>> {
    let at_call = Stack::try_current();
    async move {
        let (_, addrs) = crate::addr::ambient(at_call, &host)?;
        Ok(addrs.into_iter())
    }
}

/// The halves of [`TcpStream::split`] and [`TcpStream::into_split`], as in
/// `tokio::net::tcp`.
pub mod tcp {
    pub use crate::split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};
}
