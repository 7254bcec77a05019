//! axum on utcp (feature `axum`): [`axum::serve`](::axum::serve()) takes a
//! utcp [`TcpListener`], which implements
//! [`axum::serve::Listener`], and
//! [`UtcpConnectInfo`] is what `ConnectInfo` extracts.
//!
//! # Stopping
//! axum's `Listener::accept` has no way to report an error, so the impl
//! handles them itself:
//! - once the listener is closed (its stack shut down, the `NotConnected`
//!   that [`TcpListener::accept`] returns then), it logs one
//!   `tracing::error!` and then waits forever instead of retrying: the
//!   server stops taking connections but `axum::serve` does not return by
//!   itself. Stop it with `with_graceful_shutdown` (or drop its future);
//! - `ConnectionRefused`, `ConnectionAborted` and `ConnectionReset` (a
//!   connection that failed before it was taken) are retried at once;
//! - any other error is logged and retried after 1 s, as axum's own impl
//!   for tokio's listener does.
//!
//! # Examples
//! An axum app on the in-memory network, its handler answering with the
//! client's address:
//! ```
//! use axum::{Router, extract::ConnectInfo, routing::get};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use utcp::axum::UtcpConnectInfo;
//! use utcp::{Stack, StackConfig, StackExt, sim::{LinkConfig, SimNetwork}};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
//! let net = SimNetwork::new(1);
//! let a = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
//! let b = net.add_host("b", &["10.0.0.2".parse().unwrap()]);
//! net.link(&a, &b, LinkConfig::default());
//! let (client, server) = (Stack::new(a, StackConfig::default()), Stack::new(b, StackConfig::default()));
//!
//! let app = Router::new().route(
//!     "/",
//!     get(|ConnectInfo(info): ConnectInfo<UtcpConnectInfo>| async move { info.remote.to_string() }),
//! );
//! let listener = server.bind("10.0.0.2:80")?;
//! tokio::spawn(async move {
//!     axum::serve(listener, app.into_make_service_with_connect_info::<UtcpConnectInfo>()).await
//! });
//!
//! let mut s = client.connect("10.0.0.2:80").await?;
//! s.write_all(b"GET / HTTP/1.1\r\nhost: b\r\nconnection: close\r\n\r\n").await?;
//! let mut response = String::new();
//! s.read_to_string(&mut response).await?;
//! assert!(response.starts_with("HTTP/1.1 200 OK"));
//! assert!(response.ends_with(&s.local_addr()?.to_string()));
//! # Ok(()) }
//! ```
//!
//! `ConnectInfo<SocketAddr>` (the peer's address alone) needs no utcp type:
//! axum implements it for any listener wrapped by `ListenerExt::tap_io`,
//! here with a tap that does nothing.
//! ```no_run
//! use axum::{Router, extract::ConnectInfo, routing::get, serve::ListenerExt};
//! use std::net::SocketAddr;
//! # async fn f(listener: utcp::TcpListener) -> std::io::Result<()> {
//! let app = Router::new().route("/", get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
//!     peer.to_string()
//! }));
//! let listener = listener.tap_io(|_stream: &mut utcp::TcpStream| {});
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
//! # }
//! ```

pub use crate::conn_info::UtcpConnectInfo;

use crate::{TcpListener, TcpStream};
use ::axum::extract::connect_info::Connected;
use ::axum::serve::{IncomingStream, Listener};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// How long to wait before accepting again after an error that is neither a
/// closed listener nor a failed connection (axum's own delay).
const RETRY_AFTER: Duration = Duration::from_secs(1);

impl Listener for TcpListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    /// The next connection; see the [module docs](crate::axum#stopping) for
    /// what happens on errors (in short: a closed listener waits forever).
    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match TcpListener::accept(self).await {
                Ok(accepted) => return accepted,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    tracing::error!(
                        local = ?TcpListener::local_addr(self).ok(),
                        error = %e,
                        "utcp listener closed: axum::serve takes no more connections"
                    );
                    std::future::pending::<()>().await;
                }
                Err(e) if is_connection_error(&e) => {
                    tracing::debug!(error = %e, "a connection failed before it was accepted");
                }
                Err(e) => {
                    tracing::error!(error = %e, "accept error; retrying in 1 s");
                    tokio::time::sleep(RETRY_AFTER).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        TcpListener::local_addr(self)
    }
}

/// Errors of one connection, not of the listener: retried at once.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// For `Router::into_make_service_with_connect_info::<UtcpConnectInfo>()`
/// on a utcp listener. (`SocketAddr` cannot get this impl outside axum: the
/// orphan rule forbids it, since neither the trait, `SocketAddr` nor
/// `IncomingStream` is utcp's; [`UtcpConnectInfo::remote`] is that
/// address, and a listener wrapped by `tap_io` gets axum's own impl for
/// `SocketAddr`: see the [module docs](crate::axum).)
impl Connected<IncomingStream<'_, TcpListener>> for UtcpConnectInfo {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> UtcpConnectInfo {
        UtcpConnectInfo {
            local: UtcpConnectInfo::of(stream.io()).local,
            remote: *stream.remote_addr(),
        }
    }
}
