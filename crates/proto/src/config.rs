//! Every tunable, with its default and where the default comes from.

use crate::congestion::CongestionAlgorithm;
use crate::time::Duration;

/// Per-connection settings. `Config::default()` is Linux-like.
///
/// ```
/// use utcp_proto::Config;
/// let cfg = Config { msl: utcp_proto::Duration::from_secs(1), ..Config::default() };
/// assert_eq!(cfg.time_wait(), utcp_proto::Duration::from_secs(2));
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    /// Cap on the MSS we advertise and the most we send in one segment. The
    /// effective MSS of a connection is the smaller of this and what
    /// [`mtu`](Self::mtu) leaves for its address family (see
    /// [`Config::mss_for`]). The runtime sets it from `StackConfig::mss_limit`.
    pub mss: u16,
    /// The link MTU in bytes (IP header included). A connection's MSS is
    /// MTU − 40 over IPv4 and MTU − 60 over IPv6 (RFC 9293 §3.7.1), capped by
    /// [`mss`](Self::mss). The runtime reads it from the device at every
    /// connect and accept, so a raised MTU serves new connections.
    pub mtu: usize,
    /// Send buffer limit in bytes at the start (a limit, not an allocation).
    /// It grows with cwnd up to [`send_buffer_max`](Self::send_buffer_max)
    /// (Linux's `tcp_sndbuf_expand`). Default 256 KiB.
    pub send_buffer: usize,
    /// The most the send buffer auto-tunes to. Default 4 MiB (Linux's
    /// `tcp_wmem[2]`). At or below `send_buffer`: no auto-tuning.
    pub send_buffer_max: usize,
    /// Receive buffer limit in bytes at the start. The window we advertise
    /// reaches it with window scaling in force; without, it is at most
    /// 65,535 bytes. It grows toward twice what the application reads per
    /// round trip, up to [`recv_buffer_max`](Self::recv_buffer_max) (Linux's
    /// `tcp_rcv_space_adjust`). Default 64 KiB.
    pub recv_buffer: usize,
    /// The most the receive buffer auto-tunes to; our window shift is the
    /// smallest that fits it (RFC 7323 §2.3). Default 6 MiB (Linux's
    /// `tcp_rmem[2]`). At or below `recv_buffer`: no auto-tuning.
    pub recv_buffer_max: usize,
    /// Most out-of-order ranges (holes) held per connection; a segment that
    /// would open one more is dropped (the peer retransmits it). Memory is
    /// bounded by the receive buffer, not by this; the count bounds the work
    /// of an insert. Default 1024: a large window that loses a slow-start
    /// overshoot (thousands of segments in one round) keeps every segment
    /// that arrived, as Linux's rb-tree does, instead of making the sender
    /// resend data that was received (the 1 Gbit/s, 50 ms long-fat-pipe
    /// benchmark resent 1.36× the dropped bytes with 64).
    pub max_ooo_ranges: usize,
    /// Maximum segment lifetime; TIME_WAIT lasts 2·MSL. Default 30 s (Linux's
    /// 60 s TIME_WAIT).
    pub msl: Duration,
    /// Initial RTO (RFC 6298 §2.1: 1 s).
    pub rto_initial: Duration,
    /// RTO floor. RFC 6298 says 1 s; we use Linux's 200 ms (a deliberate deviation).
    pub rto_min: Duration,
    /// RTO ceiling (RFC 6298 §2.5 allows ≥ 60 s; Linux uses 120 s).
    pub rto_max: Duration,
    /// SYN / SYN-ACK retransmissions before giving up. 6 like Linux
    /// (`tcp_syn_retries`), about 127 s: shorter than RFC 1122's 3 minutes.
    pub syn_retries: u32,
    /// SYN-ACK retransmissions before a passive open gives up (Linux
    /// `tcp_synack_retries` = 5, about 63 s).
    pub synack_retries: u32,
    /// Data retransmissions (and unanswered zero-window probes, RFC 1122
    /// §4.2.2.17) before giving up (Linux `tcp_retries2` = 15).
    pub data_retries: u32,
    /// How long an orphaned connection (application closed) waits in FIN_WAIT_2
    /// for the peer's FIN (Linux `tcp_fin_timeout`, 60 s).
    pub fin_wait2_timeout: Duration,
    /// Longest interval between zero-window probes (RFC 9293 §3.8.6.1: 60 s).
    pub persist_max: Duration,
    /// Zero-window probes an orphaned connection (the application closed it)
    /// sends before it is dropped: its peer could otherwise hold it forever
    /// by never reading (Linux `tcp_orphan_retries`, effectively 8).
    pub orphan_retries: u32,
    /// Challenge ACKs and out-of-window ACKs sent per connection per second
    /// (RFC 5961 §7).
    pub challenge_ack_per_sec: u32,
    /// IP TTL / hop limit of outgoing segments.
    pub hop_limit: u8,
    /// Offer window scaling (RFC 7323 §2) in our SYN; in force when the
    /// peer offers it too. Default on.
    pub window_scaling: bool,
    /// Offer SACK (RFC 2018) in our SYN: in force when the peer offers it
    /// too; our ACKs then carry SACK blocks (with D-SACK, RFC 2883) and the
    /// peer's blocks mark the scoreboard. Default on.
    pub sack: bool,
    /// Offer timestamps (RFC 7323 §3: RTT measurement and PAWS) in our
    /// SYN; in force when the peer offers them too. Default on.
    pub timestamps: bool,
    /// Least time between two unsolicited ACKs of one TIME_WAIT record (a
    /// retransmitted FIN is always answered). Default 500 ms, Linux's
    /// `tcp_invalid_ratelimit`.
    pub time_wait_ack_interval: Duration,
    /// The tail loss probe's allowance for a delayed ACK when one segment
    /// is outstanding (RFC 8985 §7.2's WCDelAckT). Default 200 ms.
    pub worst_case_delayed_ack: Duration,
    /// The delayed-ACK timer (RFC 1122 §4.2.3.2, RFC 5681 §4.2; Linux's
    /// `TCP_DELACK_MIN`): in-order data that leaves at most one full-sized
    /// segment unacknowledged waits this long for data or a read to carry
    /// its ACK. Default 40 ms; it must stay under 500 ms (RFC 1122).
    /// `Duration::ZERO` turns delayed ACKs off: every batch is ACKed at once.
    pub delayed_ack: Duration,
    /// The TOS byte of outgoing segments: the IPv4 DSCP / ECN byte (`IP_TOS`)
    /// or the IPv6 traffic class (`IPV6_TCLASS`). Default 0 (RFC 2474's
    /// default forwarding).
    pub tos: u8,
    /// The congestion controller: [`CongestionAlgorithm::Cubic`] (RFC 9438,
    /// the default, as Linux's `tcp_congestion_control`) or
    /// [`CongestionAlgorithm::NewReno`] (RFC 5681 / 6582). Both use
    /// HyStart++ (RFC 9406) in their initial slow start. Per connection
    /// with `Connection::set_congestion` (`TcpSocket::set_congestion`).
    pub congestion: CongestionAlgorithm,
    /// Pace new data at cwnd / SRTT × 200 % in slow start and × 120 %
    /// after, in bursts of about 1 ms (Linux's internal TCP pacing,
    /// `tcp_update_pacing_rate`), so that slow start's rounds do not leave
    /// as line-rate bursts. A window of ten segments or fewer is not paced
    /// (it may leave as the initial window does): paced over an SRTT the
    /// peer's delayed ACKs stretch, it would go a segment per delayed ACK.
    /// Default on.
    pub pacing: bool,
    /// Turn Nagle's algorithm (RFC 896, with Minshall's refinement, as
    /// Linux) off: `TCP_NODELAY`. Default `false`: a segment smaller than
    /// the MSS waits while an earlier small one is unacknowledged (at most
    /// a round trip, or the peer's delayed-ACK time for a write–write–read
    /// pattern). Latency-sensitive request–response code sets it.
    pub nodelay: bool,
    /// Send keepalive probes on an idle connection (`SO_KEEPALIVE`, RFC
    /// 1122 §4.2.3.6). Default off, as the RFC asks and Linux does.
    pub keepalive: bool,
    /// How long a connection is idle (nothing received) before the first
    /// keepalive probe (Linux `tcp_keepalive_time`, `TCP_KEEPIDLE`): 7200 s.
    pub keepalive_time: Duration,
    /// Between unanswered keepalive probes (Linux `tcp_keepalive_intvl`,
    /// `TCP_KEEPINTVL`): 75 s.
    pub keepalive_interval: Duration,
    /// Unanswered keepalive probes before the connection fails with
    /// `TimedOut`, one interval after the last (Linux
    /// `tcp_keepalive_probes`, `TCP_KEEPCNT`): 9.
    pub keepalive_retries: u32,
    /// The user timeout (RFC 9293 §3.10.8, Linux `TCP_USER_TIMEOUT`): data
    /// left unacknowledged this long fails the connection with `TimedOut`,
    /// however many retransmissions that took; with keepalive on, it also
    /// ends the probing once a probe is out. `None` (the default): the
    /// retransmission count ([`data_retries`](Self::data_retries)) decides.
    pub user_timeout: Option<Duration>,
    /// What the device does for segments on their way out: checksums and
    /// segmentation (see [`TxOffload`]). The runtime sets it from its
    /// device's capabilities; the default is none (every segment complete
    /// and at most one MTU).
    pub tx_offload: TxOffload,
}

/// Transmit offloads a device offers ([`Config::tx_offload`]): which work
/// on outgoing segments a connection may leave to it.
///
/// ```
/// use utcp_proto::TxOffload;
/// let tso = TxOffload { partial_checksum: true, max_packet: 65_535, scatter_gather: true };
/// assert!(tso.segments());
/// assert!(!TxOffload::default().segments());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxOffload {
    /// The device completes TCP checksums: segments carry only the
    /// pseudo-header sum ([`crate::wire::emit_ip_tcp_partial`]), and each
    /// transmit says where the sum goes ([`crate::Transmit::csum_partial`]).
    pub partial_checksum: bool,
    /// The largest IP packet the device cuts into segments of the MSS
    /// (TCP segmentation offload, GSO; Linux's `gso_max_size`), at most
    /// 65,535; at or below the MTU, no super-segments. Super-segments need
    /// [`partial_checksum`](Self::partial_checksum) too (the device
    /// completes each segment's checksum).
    pub max_packet: usize,
    /// The device writes a payload of two pieces (scatter-gather, Linux's
    /// `NETIF_F_SG`): a segment spanning two send-buffer chunks is sent
    /// as both slices ([`crate::Transmit::payload_tail`]), not copied.
    pub scatter_gather: bool,
}

impl TxOffload {
    /// Whether the device cuts super-segments: partial checksums and a
    /// largest packet given. A connection sends them where that packet has
    /// room for two of its full segments or more.
    pub fn segments(&self) -> bool {
        self.partial_checksum && self.max_packet > 0
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mss: 1460,
            mtu: 1500,
            send_buffer: 256 * 1024,
            send_buffer_max: 4 * 1024 * 1024,
            recv_buffer: 64 * 1024,
            recv_buffer_max: 6 * 1024 * 1024,
            max_ooo_ranges: 1024,
            msl: Duration::from_secs(30),
            rto_initial: Duration::from_secs(1),
            rto_min: Duration::from_millis(200),
            rto_max: Duration::from_secs(120),
            syn_retries: 6,
            synack_retries: 5,
            data_retries: 15,
            fin_wait2_timeout: Duration::from_secs(60),
            persist_max: Duration::from_secs(60),
            orphan_retries: 8,
            challenge_ack_per_sec: 10,
            hop_limit: 64,
            time_wait_ack_interval: Duration::from_millis(500),
            worst_case_delayed_ack: Duration::from_millis(200),
            delayed_ack: Duration::from_millis(40),
            window_scaling: true,
            sack: true,
            timestamps: true,
            tos: 0,
            congestion: CongestionAlgorithm::Cubic,
            pacing: true,
            nodelay: false,
            keepalive: false,
            keepalive_time: Duration::from_secs(7200),
            keepalive_interval: Duration::from_secs(75),
            keepalive_retries: 9,
            user_timeout: None,
            tx_offload: TxOffload::default(),
        }
    }
}

impl Config {
    /// The MSS for a connection of this address family: MTU − 40 (IPv4) or
    /// MTU − 60 (IPv6), capped by [`mss`](Self::mss) (an MTU below 128 counts as
    /// 128).
    ///
    /// ```
    /// use utcp_proto::Config;
    /// let cfg = Config { mss: u16::MAX, mtu: 1500, ..Config::default() };
    /// assert_eq!(cfg.mss_for(false), 1460);
    /// assert_eq!(cfg.mss_for(true), 1440);
    /// ```
    pub fn mss_for(&self, ipv6: bool) -> u16 {
        let overhead = if ipv6 { 60 } else { 40 };
        let fits = self
            .mtu
            .saturating_sub(overhead)
            .clamp(88, u16::MAX as usize) as u16;
        fits.min(self.mss.max(1))
    }

    /// TIME_WAIT's length, 2·MSL.
    pub fn time_wait(&self) -> Duration {
        self.msl * 2
    }
}

/// Why a configuration was rejected: the field, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The ephemeral port range is empty (start above end) or includes 0.
    #[error("ephemeral_ports {start}..={end}: the range must be non-empty and start above 0")]
    BadPortRange {
        /// The range's first port.
        start: u16,
        /// The range's last port.
        end: u16,
    },
    /// A size, count or limit that must be positive is 0.
    #[error("{0} is 0: it must be positive")]
    Zero(&'static str),
    /// Two settings contradict each other.
    #[error("{0}")]
    Inconsistent(&'static str),
    /// A field the runtime sets itself was changed; it would be overwritten.
    #[error("{field} is set by the runtime and would be overwritten: set {instead} instead")]
    Overwritten {
        /// The field that was set.
        field: &'static str,
        /// What to set instead.
        instead: &'static str,
    },
}

impl Config {
    /// Checks every field for a value no connection can work with.
    ///
    /// ```
    /// use utcp_proto::{Config, ConfigError};
    /// assert_eq!(Config::default().validate(), Ok(()));
    /// let bad = Config { mss: 0, ..Config::default() };
    /// assert_eq!(bad.validate(), Err(ConfigError::Zero("mss")));
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::Zero`] for a zero MSS, MTU, buffer, out-of-order range
    /// count, hop limit, RTO, MSL, keepalive time, interval or retries, or a
    /// `Some` zero user timeout; [`ConfigError::Inconsistent`] when
    /// `rto_min` exceeds `rto_max` or `rto_initial` lies outside them, or
    /// `delayed_ack` is 500 ms or more.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let zeros: [(bool, &'static str); 13] = [
            (self.mss == 0, "mss"),
            (self.mtu == 0, "mtu"),
            (self.send_buffer == 0, "send_buffer"),
            (self.recv_buffer == 0, "recv_buffer"),
            (self.max_ooo_ranges == 0, "max_ooo_ranges"),
            (self.hop_limit == 0, "hop_limit"),
            (self.rto_min.is_zero(), "rto_min"),
            (self.rto_initial.is_zero(), "rto_initial"),
            (self.msl.is_zero(), "msl"),
            (self.keepalive_time.is_zero(), "keepalive_time"),
            (self.keepalive_interval.is_zero(), "keepalive_interval"),
            (self.keepalive_retries == 0, "keepalive_retries"),
            (
                self.user_timeout.is_some_and(|d| d.is_zero()),
                "user_timeout",
            ),
        ];
        if let Some((_, name)) = zeros.iter().find(|(z, _)| *z) {
            return Err(ConfigError::Zero(name));
        }
        if self.delayed_ack >= Duration::from_millis(500) {
            return Err(ConfigError::Inconsistent(
                "delayed_ack must be under 500 ms (RFC 1122 §4.2.3.2)",
            ));
        }
        if self.rto_min > self.rto_max {
            return Err(ConfigError::Inconsistent("rto_min is above rto_max"));
        }
        if self.rto_initial < self.rto_min || self.rto_initial > self.rto_max {
            return Err(ConfigError::Inconsistent(
                "rto_initial lies outside rto_min..=rto_max",
            ));
        }
        Ok(())
    }
}

impl crate::EndpointConfig {
    /// Checks the endpoint-wide fields and [`Config::validate`] on `conn`.
    ///
    /// ```
    /// use utcp_proto::{ConfigError, EndpointConfig};
    /// let bad = EndpointConfig { ephemeral_ports: std::ops::RangeInclusive::new(60000, 50000), ..EndpointConfig::default() };
    /// assert_eq!(bad.validate(), Err(ConfigError::BadPortRange { start: 60000, end: 50000 }));
    /// ```
    ///
    /// # Errors
    /// [`ConfigError::BadPortRange`] for an empty range or one including 0,
    /// [`ConfigError::Zero`] for a zero `syn_queue`, `max_half_open` or
    /// `max_connections`,
    /// then those of [`Config::validate`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (start, end) = (*self.ephemeral_ports.start(), *self.ephemeral_ports.end());
        if start > end || start == 0 {
            return Err(ConfigError::BadPortRange { start, end });
        }
        // The listener bounds (the listener-hardening issue).
        if self.syn_queue == 0 {
            return Err(ConfigError::Zero("syn_queue"));
        }
        if self.max_half_open == 0 {
            return Err(ConfigError::Zero("max_half_open"));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::Zero("max_connections"));
        }
        self.conn.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EndpointConfig;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(EndpointConfig::default().validate(), Ok(()));
    }

    #[test]
    fn each_zero_is_named() {
        let cases: [(Config, &str); 5] = [
            (
                Config {
                    send_buffer: 0,
                    ..Config::default()
                },
                "send_buffer",
            ),
            (
                Config {
                    recv_buffer: 0,
                    ..Config::default()
                },
                "recv_buffer",
            ),
            (
                Config {
                    mtu: 0,
                    ..Config::default()
                },
                "mtu",
            ),
            (
                Config {
                    hop_limit: 0,
                    ..Config::default()
                },
                "hop_limit",
            ),
            (
                Config {
                    max_ooo_ranges: 0,
                    ..Config::default()
                },
                "max_ooo_ranges",
            ),
        ];
        for (cfg, name) in cases {
            assert_eq!(cfg.validate(), Err(ConfigError::Zero(name)));
        }
    }

    #[test]
    fn rto_bounds_must_be_ordered() {
        let cfg = Config {
            rto_min: Duration::from_secs(5),
            rto_max: Duration::from_secs(1),
            ..Config::default()
        };
        assert!(matches!(cfg.validate(), Err(ConfigError::Inconsistent(_))));
        let cfg = Config {
            rto_initial: Duration::from_millis(1),
            ..Config::default()
        };
        assert!(matches!(cfg.validate(), Err(ConfigError::Inconsistent(_))));
    }

    #[test]
    fn port_range_starting_at_zero_is_rejected() {
        let cfg = EndpointConfig {
            ephemeral_ports: 0..=10,
            ..EndpointConfig::default()
        };
        assert_eq!(
            cfg.validate(),
            Err(ConfigError::BadPortRange { start: 0, end: 10 })
        );
    }
}
