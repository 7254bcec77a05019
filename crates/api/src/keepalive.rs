//! `TcpKeepalive`: the keepalive settings, in socket2's shape.

use std::time::Duration;

/// Keepalive settings for [`TcpSocket::set_tcp_keepalive`](crate::TcpSocket::set_tcp_keepalive)
/// and [`TcpStream::set_tcp_keepalive`](crate::TcpStream::set_tcp_keepalive),
/// as `socket2::TcpKeepalive`: each one left unset keeps the connection's
/// value (Linux's defaults: idle 7200 s, interval 75 s, 9 probes).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use utcp::TcpKeepalive;
/// let ka = TcpKeepalive::new()
///     .with_time(Duration::from_secs(30))
///     .with_interval(Duration::from_secs(5))
///     .with_retries(3);
/// assert_eq!(ka.time(), Some(Duration::from_secs(30)));
/// assert_eq!(ka.retries(), Some(3));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpKeepalive {
    time: Option<Duration>,
    interval: Option<Duration>,
    retries: Option<u32>,
}

impl TcpKeepalive {
    /// No setting: every one keeps the connection's value.
    pub const fn new() -> TcpKeepalive {
        TcpKeepalive {
            time: None,
            interval: None,
            retries: None,
        }
    }

    /// How long a connection is idle before the first probe (`TCP_KEEPIDLE`).
    pub const fn with_time(self, time: Duration) -> TcpKeepalive {
        TcpKeepalive {
            time: Some(time),
            ..self
        }
    }

    /// The time between unanswered probes (`TCP_KEEPINTVL`).
    pub const fn with_interval(self, interval: Duration) -> TcpKeepalive {
        TcpKeepalive {
            interval: Some(interval),
            ..self
        }
    }

    /// How many unanswered probes fail the connection (`TCP_KEEPCNT`).
    pub const fn with_retries(self, retries: u32) -> TcpKeepalive {
        TcpKeepalive {
            retries: Some(retries),
            ..self
        }
    }

    /// The idle time, if set.
    pub const fn time(&self) -> Option<Duration> {
        self.time
    }

    /// The interval, if set.
    pub const fn interval(&self) -> Option<Duration> {
        self.interval
    }

    /// The probe count, if set.
    pub const fn retries(&self) -> Option<u32> {
        self.retries
    }

    pub(crate) fn check(&self) -> std::io::Result<()> {
        if self.time.is_some_and(|d| d.is_zero())
            || self.interval.is_some_and(|d| d.is_zero())
            || self.retries == Some(0)
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a keepalive time, interval or count of 0",
            ));
        }
        Ok(())
    }
}
