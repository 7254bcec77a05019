//! tonic on utcp (feature `tonic`): [`TcpStream`] implements tonic's
//! [`Connected`], with tonic's own [`TcpConnectInfo`] so that
//! `Request::remote_addr` / `local_addr` work in handlers, and
//! [`incoming`] turns a [`TcpListener`] into the stream that
//! `Server::serve_with_incoming` takes.
//!
//! The stream ends when the listener closes (its stack shut down), and
//! `serve_with_incoming` then returns; `serve_with_incoming_shutdown` stops
//! it on a signal instead.
//!
//! # Examples
//! ```no_run
//! # async fn f(stack: utcp::Stack, svc: tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>) -> Result<(), Box<dyn std::error::Error>> {
//! use utcp::StackExt;
//! let listener = stack.bind("0.0.0.0:50051")?;
//! tonic::transport::Server::builder()
//!     .add_service(svc)
//!     .serve_with_incoming(utcp::tonic::incoming(listener))
//!     .await?;
//! # Ok(()) }
//! ```

use crate::{Incoming, TcpListener, TcpStream};
use ::tonic::transport::server::{Connected, TcpConnectInfo};

/// `listener`'s connections as the stream of `io::Result<TcpStream>` that
/// tonic's `Server::serve_with_incoming` takes; the same as
/// [`TcpListener::incoming`]. It ends when the listener closes.
pub fn incoming(listener: TcpListener) -> Incoming {
    listener.incoming()
}

impl Connected for TcpStream {
    type ConnectInfo = TcpConnectInfo;

    /// Both addresses, as tonic's for tokio's `TcpStream`.
    fn connect_info(&self) -> TcpConnectInfo {
        TcpConnectInfo {
            local_addr: self.local_addr().ok(),
            remote_addr: self.peer_addr().ok(),
        }
    }
}
