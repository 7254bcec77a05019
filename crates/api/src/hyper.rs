//! hyper on utcp (feature `hyper-util`): [`UtcpConnector`], the connector
//! that hyper-util's legacy `Client` opens its connections with, and
//! [`UtcpIo`], a [`TcpStream`] as hyper's `rt::Read` / `rt::Write` (for the
//! client, and for hyper's server connections too).
//!
//! # Examples
//! A hyper-util `Client` on the in-memory network, two requests on one
//! keep-alive connection to a hyper server:
//! ```
//! use http_body_util::{BodyExt, Empty, Full};
//! use hyper::body::{Bytes, Incoming};
//! use hyper::{Request, Response};
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use utcp::hyper::{UtcpConnector, UtcpIo};
//! use utcp::{Stack, StackConfig, StackExt, sim::{LinkConfig, SimNetwork}};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let net = SimNetwork::new(1);
//! let a = net.add_host("app", &["10.0.0.1".parse().unwrap()]);
//! let b = net.add_host("api", &["10.0.0.2".parse().unwrap()]);
//! net.link(&a, &b, LinkConfig::default());
//! let (client, server) = (Stack::new(a, StackConfig::default()), Stack::new(b, StackConfig::default()));
//!
//! let listener = server.bind("10.0.0.2:80")?;
//! tokio::spawn(async move {
//!     while let Ok((s, _)) = listener.accept().await {
//!         let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
//!             Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(req.uri().path().to_owned()))))
//!         });
//!         tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(UtcpIo::new(s), svc));
//!     }
//! });
//!
//! let http = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(UtcpConnector::new(client.clone()));
//! for path in ["/one", "/two"] {
//!     // "api" is in the in-memory network's name table.
//!     let res = http.get(format!("http://api{path}").parse()?).await?;
//!     assert_eq!(res.into_body().collect().await?.to_bytes(), path.as_bytes());
//! }
//! # Ok(()) }
//! ```
//!
//! # TLS
//! The connector only opens TCP. By default it refuses any scheme but
//! `http` (an `Unsupported` error for `https`), so that a TLS URI never goes
//! out in clear text by mistake; a TLS layer that wraps the connector (one
//! that hands `https` URIs down, as `hyper-rustls`' does) needs
//! [`UtcpConnector::enforce_http`]`(false)`, which gives `https` port 443.

pub use crate::conn_info::UtcpConnectInfo;

use crate::{Stack, StackExt, TcpStream};
use ::hyper::Uri;
use ::hyper::rt::{Read, ReadBufCursor, Write};
use ::hyper_util::client::legacy::connect::{Connected, Connection};
use ::hyper_util::rt::TokioIo;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A [`TcpStream`] as hyper's [`Read`] and [`Write`] (hyper-util's
/// `TokioIo` inside), and a hyper-util client [`Connection`]: what
/// [`UtcpConnector`] returns, and what hyper's server connections
/// (`serve_connection`) take.
///
/// Its [`Connected`] carries a [`UtcpConnectInfo`] as `extra`: the client
/// puts it in every response's extensions.
#[derive(Debug)]
pub struct UtcpIo {
    inner: TokioIo<TcpStream>,
}

impl UtcpIo {
    /// Wraps `stream`.
    pub fn new(stream: TcpStream) -> UtcpIo {
        UtcpIo {
            inner: TokioIo::new(stream),
        }
    }

    /// The stream.
    pub fn get_ref(&self) -> &TcpStream {
        self.inner.inner()
    }

    /// The stream, mutably.
    pub fn get_mut(&mut self) -> &mut TcpStream {
        self.inner.inner_mut()
    }

    /// Gives the stream back.
    pub fn into_inner(self) -> TcpStream {
        self.inner.into_inner()
    }
}

impl From<TcpStream> for UtcpIo {
    fn from(stream: TcpStream) -> UtcpIo {
        UtcpIo::new(stream)
    }
}

impl Read for UtcpIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl Write for UtcpIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
}

impl Connection for UtcpIo {
    fn connected(&self) -> Connected {
        Connected::new().extra(UtcpConnectInfo::of(self.get_ref()))
    }
}

/// Opens hyper-util legacy `Client` connections on a utcp [`Stack`]: a
/// `tower_service::Service<Uri>` answering with a [`UtcpIo`].
///
/// The URI's host is looked up in the stack's name table, then taken as an
/// IP literal (as [`ToSocketAddrs`](crate::ToSocketAddrs): never system
/// DNS); its port defaults to 80 for `http` (or no scheme). With several
/// addresses each is tried in turn.
///
/// # Errors
/// The call's future fails with `InvalidInput` for a URI without a host
/// (or with another scheme than `http` / `https` and no port),
/// `Unsupported` for a scheme other than `http` unless
/// [`enforce_http`](Self::enforce_http) was turned off, `NotFound` for a
/// host name that does not resolve, and otherwise as
/// [`StackExt::connect`]. The client reports them as a connect error whose
/// source is the `io::Error`.
#[derive(Clone, Debug)]
pub struct UtcpConnector {
    stack: Stack,
    enforce_http: bool,
}

impl UtcpConnector {
    /// A connector opening connections on `stack`; only `http` URIs until
    /// [`enforce_http`](Self::enforce_http)`(false)`.
    pub fn new(stack: Stack) -> UtcpConnector {
        UtcpConnector {
            stack,
            enforce_http: true,
        }
    }

    /// Whether URIs of another scheme than `http` are refused (`true`, the
    /// default, as hyper-util's `HttpConnector`). Off, any scheme is
    /// connected to in plain TCP, `https` on port 443 by default: for a TLS
    /// connector that wraps this one.
    pub fn enforce_http(&mut self, enforce: bool) -> &mut UtcpConnector {
        self.enforce_http = enforce;
        self
    }

    /// Where `uri` points: its host and its port.
    fn target(&self, uri: &Uri) -> io::Result<(String, u16)> {
        let scheme = uri.scheme_str();
        let is_http = scheme.is_none_or(|s| s.eq_ignore_ascii_case("http"));
        if self.enforce_http && !is_http {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "utcp's connector speaks plain TCP: scheme {:?} refused \
                     (wrap it in a TLS connector and turn enforce_http off)",
                    scheme.unwrap_or_default()
                ),
            ));
        }
        let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("URI {uri} has no host"),
            )
        })?;
        let port = match uri.port_u16() {
            Some(p) => p,
            None if is_http => 80,
            None if scheme.is_some_and(|s| s.eq_ignore_ascii_case("https")) => 443,
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("URI {uri} has no port and its scheme no default one"),
                ));
            }
        };
        Ok((host.to_owned(), port))
    }
}

impl tower_service::Service<Uri> for UtcpConnector {
    type Response = UtcpIo;
    type Error = io::Error;
    type Future = Connecting;

    /// Always ready.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Connecting {
        let target = self.target(&uri);
        let stack = self.stack.clone();
        Connecting(Box::pin(async move {
            let stream = stack.connect(target?).await?;
            Ok(UtcpIo::new(stream))
        }))
    }
}

/// The future of a [`UtcpConnector`] call: the connection, once its
/// handshake completed.
///
/// # Cancel safety
/// Dropping it gives up the attempt, as dropping
/// [`StackExt::connect`]'s future.
#[must_use = "futures do nothing unless polled"]
pub struct Connecting(Pin<Box<dyn Future<Output = io::Result<UtcpIo>> + Send>>);

impl Future for Connecting {
    type Output = io::Result<UtcpIo>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<UtcpIo>> {
        self.0.as_mut().poll(cx)
    }
}

impl fmt::Debug for Connecting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connecting").finish_non_exhaustive()
    }
}
