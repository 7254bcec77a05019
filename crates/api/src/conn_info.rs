//! `UtcpConnectInfo`: a connection's two addresses, as the axum and
//! hyper-util adapters hand them to applications.

use crate::TcpStream;
use std::net::SocketAddr;

/// The two ends of a utcp connection: what `axum::extract::ConnectInfo`
/// extracts on a
/// server served on a utcp [`TcpListener`](crate::TcpListener) (feature
/// `axum`), and the `extra` that hyper-util's legacy client puts in each
/// response's extensions (feature `hyper-util`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UtcpConnectInfo {
    /// This side's address (for an accept-any listener, the original
    /// destination).
    pub local: SocketAddr,
    /// The peer's address.
    pub remote: SocketAddr,
}

impl UtcpConnectInfo {
    /// Both addresses of `stream`; the unspecified address (`0.0.0.0:0`)
    /// stands for one no longer known.
    pub fn of(stream: &TcpStream) -> UtcpConnectInfo {
        let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
        UtcpConnectInfo {
            local: stream.local_addr().unwrap_or(unknown),
            remote: stream.peer_addr().unwrap_or(unknown),
        }
    }
}
