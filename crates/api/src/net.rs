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

pub use crate::addr::ToSocketAddrs;
pub use crate::socket::TcpSocket;
pub use crate::{TcpListener, TcpStream};

/// The halves of [`TcpStream::split`] and [`TcpStream::into_split`], as in
/// `tokio::net::tcp`.
pub mod tcp {
    pub use crate::split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};
}
