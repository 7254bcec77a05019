//! Errors, and their one mapping to `std::io::Error`.

use std::io;

/// Why a connection or an endpoint operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The peer answered our SYN with RST.
    #[error("connection refused")]
    ConnectionRefused,
    /// The peer reset a synchronized connection.
    #[error("connection reset by peer")]
    ConnectionReset,
    /// Retransmissions exhausted (SYN or data) or another timeout fired.
    #[error("connection timed out")]
    TimedOut,
    /// An ICMP / ICMPv6 error said the peer's host cannot be reached
    /// (RFC 1122 §4.2.3.9; Linux's `EHOSTUNREACH`).
    #[error("host unreachable")]
    HostUnreachable,
    /// An ICMP / ICMPv6 error said the peer's network cannot be reached
    /// (Linux's `ENETUNREACH`).
    #[error("network unreachable")]
    NetworkUnreachable,
    /// We aborted the connection (RST sent).
    #[error("connection aborted")]
    ConnectionAborted,
    /// The network interface under the stack failed or disappeared (the
    /// runtime's device stopped receiving); the connection was ended.
    #[error("network is down: the device failed")]
    NetworkDown,
    /// Writing after shutdown, or after an error was reported.
    #[error("broken pipe")]
    BrokenPipe,
    /// The operation needs a connection that is not (or no longer) there.
    #[error("not connected")]
    NotConnected,
    /// The local address and port are already bound.
    #[error("address in use")]
    AddrInUse,
    /// No ephemeral port left for this destination, or not a local address.
    #[error("address not available")]
    AddrNotAvailable,
    /// An argument is not valid (e.g. mixing IPv4 and IPv6, port 0 as destination).
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),
}

impl Error {
    /// The matching `io::ErrorKind` (see `STYLE.md`'s table).
    pub fn kind(self) -> io::ErrorKind {
        match self {
            Error::ConnectionRefused => io::ErrorKind::ConnectionRefused,
            Error::ConnectionReset => io::ErrorKind::ConnectionReset,
            Error::TimedOut => io::ErrorKind::TimedOut,
            Error::HostUnreachable => io::ErrorKind::HostUnreachable,
            Error::NetworkUnreachable => io::ErrorKind::NetworkUnreachable,
            Error::ConnectionAborted => io::ErrorKind::ConnectionAborted,
            Error::NetworkDown => io::ErrorKind::NetworkDown,
            Error::BrokenPipe => io::ErrorKind::BrokenPipe,
            Error::NotConnected => io::ErrorKind::NotConnected,
            Error::AddrInUse => io::ErrorKind::AddrInUse,
            Error::AddrNotAvailable => io::ErrorKind::AddrNotAvailable,
            Error::InvalidInput(_) => io::ErrorKind::InvalidInput,
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}
