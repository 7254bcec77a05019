//! Per-connection socket options (`SO_SNDBUF`, `SO_RCVBUF`, `IP_TOS` /
//! `IPV6_TCLASS`, `TCP_CONGESTION`): what `TcpSocket` sets before a
//! connection's first segment and what a listener hands to the connections
//! it accepts.

use super::Connection;
use crate::config::Config;
use crate::congestion::{self, CongestionAlgorithm};
use crate::error::Error;
use crate::time::Duration;

/// The options of [`Config`] one connection may change after it was made
/// (its socket options), copied from the configuration it was made with.
/// The rest of that configuration is shared by every connection of an
/// endpoint (one `Arc<Config>`), so a connection does not carry a copy
/// of its own (about 300 bytes) to change a few of them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SockOpts {
    /// `IP_TOS` / `IPV6_TCLASS` ([`Config::tos`]).
    pub(crate) tos: u8,
    /// TTL / hop limit ([`Config::hop_limit`]).
    pub(crate) hop_limit: u8,
    /// `TCP_NODELAY` ([`Config::nodelay`]).
    pub(crate) nodelay: bool,
    /// `SO_KEEPALIVE` ([`Config::keepalive`]).
    pub(crate) keepalive: bool,
    /// `TCP_KEEPCNT` ([`Config::keepalive_retries`]).
    pub(crate) keepalive_retries: u32,
    /// `TCP_KEEPIDLE` ([`Config::keepalive_time`]).
    pub(crate) keepalive_time: Duration,
    /// `TCP_KEEPINTVL` ([`Config::keepalive_interval`]).
    pub(crate) keepalive_interval: Duration,
    /// `TCP_USER_TIMEOUT` ([`Config::user_timeout`]).
    pub(crate) user_timeout: Option<Duration>,
}

impl SockOpts {
    pub(crate) fn from_config(cfg: &Config) -> Self {
        SockOpts {
            tos: cfg.tos,
            hop_limit: cfg.hop_limit,
            nodelay: cfg.nodelay,
            keepalive: cfg.keepalive,
            keepalive_retries: cfg.keepalive_retries,
            keepalive_time: cfg.keepalive_time,
            keepalive_interval: cfg.keepalive_interval,
            user_timeout: cfg.user_timeout,
        }
    }
}

impl Connection {
    /// The send buffer limit in bytes.
    pub fn send_buffer_size(&self) -> usize {
        self.snd.buf.limit()
    }

    /// Sets the send buffer limit (`SO_SNDBUF`, a fixed size): writes wait
    /// while this many bytes are queued and unacknowledged. Bytes already
    /// queued stay. Auto-tuning of the send buffer ends for the connection.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for 0.
    pub fn set_send_buffer_size(&mut self, size: usize) -> Result<(), Error> {
        if size == 0 {
            return Err(Error::InvalidInput("a send buffer of 0 bytes"));
        }
        self.snd.buf.set_limit(size);
        self.autotune.fix_snd();
        Ok(())
    }

    /// The receive buffer limit in bytes (the most the window offers).
    pub fn recv_buffer_size(&self) -> usize {
        self.rcv.buf.limit()
    }

    /// Sets the receive buffer limit (`SO_RCVBUF`, a fixed size) before the
    /// connection's first segment, so the window of its SYN or SYN-ACK
    /// already reflects it (and the window shift fits it). Auto-tuning of
    /// the receive buffer ends for the connection.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for 0, or once a segment was sent (a window
    /// already advertised must not shrink, RFC 9293 §3.8.6).
    pub fn set_recv_buffer_size(&mut self, size: usize) -> Result<(), Error> {
        if size == 0 {
            return Err(Error::InvalidInput("a receive buffer of 0 bytes"));
        }
        if self.stats.segments_sent > 0 {
            return Err(Error::InvalidInput(
                "the receive buffer is fixed once the first segment left",
            ));
        }
        self.rcv.buf.set_limit(size);
        self.autotune.fix_rcv();
        // RFC 7323 §2.3: the shift fits the buffer as fixed now.
        self.opts.rcv_wscale = super::options::wscale_for(size);
        Ok(())
    }

    /// The TOS byte of this connection's segments: the IPv4 DSCP / ECN byte
    /// or the IPv6 traffic class.
    pub fn tos(&self) -> u8 {
        self.sock.tos
    }

    /// Sets the TOS byte (`IP_TOS` / `IPV6_TCLASS`) of this connection's
    /// later segments.
    pub fn set_tos(&mut self, tos: u8) {
        self.sock.tos = tos;
    }

    /// The congestion controller of this connection.
    pub fn congestion(&self) -> CongestionAlgorithm {
        self.cc.algorithm()
    }

    /// Chooses the congestion controller (`TCP_CONGESTION`) before the
    /// connection sends its first byte of data; the new controller starts
    /// from the current cwnd.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] once data was sent (the old controller's
    /// state would not carry over).
    pub fn set_congestion(&mut self, algorithm: CongestionAlgorithm) -> Result<(), Error> {
        if algorithm == self.cc.algorithm() {
            return Ok(());
        }
        if self.stats.bytes_sent > 0 {
            return Err(Error::InvalidInput(
                "the congestion controller is fixed once data was sent",
            ));
        }
        let cwnd = self.cc.cwnd();
        self.cc = congestion::new_controller(algorithm, self.opts.smss);
        self.cc.set_cwnd(cwnd);
        Ok(())
    }
}
