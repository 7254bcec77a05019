//! Socket-level entry points of a [`Stack`]: connections and listeners made
//! with per-connection options ([`SocketOpts`], what `utcp::TcpSocket`
//! sets), and the device's name table.

use crate::Stack;
use crate::conn::ConnRef;
use crate::listener::ListenerRef;
use std::io;
use std::net::{IpAddr, SocketAddr};
use utcp_proto::{CongestionAlgorithm, Connection, Duration, Error, Instant};

/// Per-connection settings beyond the stack's [`StackConfig`](crate::StackConfig):
/// what a `TcpSocket` gives the connection it opens, and a listener the
/// connections it accepts (applied before the first segment, so the SYN or
/// SYN-ACK already carries them). `None` keeps the stack's default.
///
/// # Examples
/// ```
/// use utcp_runtime::{SocketOpts, Stack, StackConfig, sim::{LinkConfig, SimNetwork}};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> std::io::Result<()> {
/// let net = SimNetwork::new(1);
/// let a = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
/// let b = net.add_host("b", &["10.0.0.2".parse().unwrap()]);
/// net.link(&a, &b, LinkConfig::default());
/// let (client, server) = (Stack::new(a, StackConfig::default()), Stack::new(b, StackConfig::default()));
/// let small = SocketOpts { recv_buffer: Some(4096), tos: Some(0xb8), ..SocketOpts::default() };
/// let listener = server.listen_with("0.0.0.0:80".parse().unwrap(), 16, false, &small)?;
/// let conn = client.connect_with(
///     Some("10.0.0.1:0".parse().unwrap()), // this IP, an ephemeral port
///     "10.0.0.2:80".parse().unwrap(),
///     &small,
/// )?;
/// std::future::poll_fn(|cx| conn.poll_connected(cx)).await?;
/// let accepted = std::future::poll_fn(|cx| listener.poll_accept(cx)).await?;
/// assert_eq!(accepted.peer_addr(), conn.local_addr());
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketOpts {
    /// `SO_SNDBUF`: the send buffer limit in bytes (fixed).
    pub send_buffer: Option<usize>,
    /// `SO_RCVBUF`: the receive buffer limit in bytes (fixed); the window
    /// offered is at most this.
    pub recv_buffer: Option<usize>,
    /// `IP_TTL` / `IPV6_UNICAST_HOPS`.
    pub ttl: Option<u8>,
    /// `IP_TOS` / `IPV6_TCLASS`: the TOS byte of every segment.
    pub tos: Option<u8>,
    /// `TCP_CONGESTION`: the congestion controller (CUBIC or NewReno).
    pub congestion: Option<CongestionAlgorithm>,
    /// `TCP_NODELAY`: Nagle's algorithm off (`true`) or on.
    pub nodelay: Option<bool>,
    /// `SO_KEEPALIVE`: keepalive probes on or off.
    pub keepalive: Option<bool>,
    /// `TCP_KEEPIDLE`: idle time before the first keepalive probe.
    pub keepalive_time: Option<Duration>,
    /// `TCP_KEEPINTVL`: time between unanswered keepalive probes.
    pub keepalive_interval: Option<Duration>,
    /// `TCP_KEEPCNT`: unanswered probes before the connection fails.
    pub keepalive_retries: Option<u32>,
    /// `TCP_USER_TIMEOUT`: how long data may stay unacknowledged.
    pub user_timeout: Option<Duration>,
}

impl SocketOpts {
    /// Checks the settings without applying them.
    ///
    /// # Errors
    /// `InvalidInput` for a zero buffer size or a TTL of 0.
    pub fn validate(&self) -> io::Result<()> {
        if self.send_buffer == Some(0) || self.recv_buffer == Some(0) {
            return Err(Error::InvalidInput("a buffer size of 0 bytes").into());
        }
        if self.ttl == Some(0) {
            return Err(Error::InvalidInput("a TTL / hop limit of 0").into());
        }
        if self.keepalive_time.is_some_and(|d| d.is_zero())
            || self.keepalive_interval.is_some_and(|d| d.is_zero())
            || self.keepalive_retries == Some(0)
        {
            return Err(Error::InvalidInput("a keepalive time, interval or count of 0").into());
        }
        if self.user_timeout.is_some_and(|d| d.is_zero()) {
            return Err(Error::InvalidInput("a user timeout of 0").into());
        }
        Ok(())
    }

    /// Applies the settings at `now` to a connection that has sent nothing
    /// yet.
    ///
    /// # Errors
    /// `InvalidInput` as [`validate`](Self::validate), or once the connection
    /// sent its first segment (the receive buffer is then fixed).
    pub fn apply(&self, now: Instant, conn: &mut Connection) -> Result<(), Error> {
        if let Some(n) = self.send_buffer {
            conn.set_send_buffer_size(n)?;
        }
        if let Some(n) = self.recv_buffer {
            conn.set_recv_buffer_size(n)?;
        }
        if let Some(t) = self.ttl {
            conn.set_hop_limit(t)?;
        }
        if let Some(t) = self.tos {
            conn.set_tos(t);
        }
        if let Some(c) = self.congestion {
            conn.set_congestion(c)?;
        }
        if let Some(on) = self.nodelay {
            conn.set_nodelay(on);
        }
        if let Some(d) = self.keepalive_time {
            conn.set_keepalive_time(now, d)?;
        }
        if let Some(d) = self.keepalive_interval {
            conn.set_keepalive_interval(d)?;
        }
        if let Some(n) = self.keepalive_retries {
            conn.set_keepalive_retries(n)?;
        }
        if let Some(on) = self.keepalive {
            conn.set_keepalive(now, on);
        }
        if let Some(d) = self.user_timeout {
            conn.set_user_timeout(now, Some(d))?;
        }
        Ok(())
    }
}

impl Stack {
    /// Opens a connection to `remote` with `opts`, from `local` if given: an
    /// IP with port 0 picks an ephemeral port from that IP; an unspecified IP
    /// with a port uses the stack's first address of the remote's family;
    /// both given, that exact address. The returned handle is connected once
    /// [`ConnRef::poll_connected`] is ready.
    ///
    /// # Errors
    /// `AddrNotAvailable` when `local` is not the stack's, with no address of
    /// the family, or no free port; `AddrInUse` when the 4-tuple exists;
    /// `InvalidInput` for port 0, mixed families or invalid `opts`;
    /// `NotConnected` once the stack was shut down.
    pub fn connect_with(
        &self,
        local: Option<SocketAddr>,
        remote: SocketAddr,
        opts: &SocketOpts,
    ) -> io::Result<ConnRef> {
        opts.validate()?;
        let now = self.inner.clock.now();
        let mut ep = self.inner.endpoint();
        self.inner.check_running()?;
        ep.set_mtu(self.inner.device.mtu());
        let (handle, mut conn) = match local {
            None => ep.connect(now, remote, None)?,
            Some(l) if l.port() == 0 => {
                let ip = (!l.ip().is_unspecified()).then_some(l.ip());
                ep.connect(now, remote, ip)?
            }
            Some(l) => {
                let ip = if l.ip().is_unspecified() {
                    *ep.local_addrs()
                        .iter()
                        .find(|ip| ip.is_ipv4() == remote.is_ipv4())
                        .ok_or(Error::AddrNotAvailable)?
                } else {
                    l.ip()
                };
                ep.connect_from(now, SocketAddr::new(ip, l.port()), remote)?
            }
        };
        if let Err(e) = opts.apply(now, &mut conn) {
            // Validated above, so unreachable in practice; never leak the slot.
            let _ = ep.remove(handle);
            return Err(e.into());
        }
        let shared = self.inner.attach_conn(&mut ep, handle, conn, false);
        drop(ep);
        self.inner.start_conn(shared.clone(), None);
        Ok(ConnRef {
            shared,
            stack: self.inner.clone(),
        })
    }

    /// Listens on `addr` with `backlog` (0 counts as 1, as on Linux), giving
    /// every accepted connection `opts` before its SYN-ACK; `v6_only` makes
    /// `[::]` take IPv6 connections only.
    ///
    /// # Errors
    /// `AddrInUse` when bound; `AddrNotAvailable` for an address not ours;
    /// `InvalidInput` for invalid `opts`; `NotConnected` once the stack was
    /// shut down.
    pub fn listen_with(
        &self,
        addr: SocketAddr,
        backlog: usize,
        v6_only: bool,
        opts: &SocketOpts,
    ) -> io::Result<ListenerRef> {
        opts.validate()?;
        let backlog = backlog.max(1);
        let l = self.register_listener(
            |ep| {
                if v6_only {
                    ep.listen_v6_only(addr, backlog)
                } else {
                    ep.listen(addr, backlog)
                }
            },
            None,
        )?;
        l.set_opts(opts)?;
        Ok(l)
    }

    /// The options a connection of this stack gets by default, every field
    /// set (the stack's configuration).
    pub fn default_opts(&self) -> SocketOpts {
        let ep = self.inner.endpoint();
        let cfg = ep.config();
        SocketOpts {
            send_buffer: Some(cfg.send_buffer),
            recv_buffer: Some(cfg.recv_buffer),
            ttl: Some(cfg.hop_limit),
            tos: Some(cfg.tos),
            congestion: Some(cfg.congestion),
            nodelay: Some(cfg.nodelay),
            keepalive: Some(cfg.keepalive),
            keepalive_time: Some(cfg.keepalive_time),
            keepalive_interval: Some(cfg.keepalive_interval),
            keepalive_retries: Some(cfg.keepalive_retries),
            user_timeout: cfg.user_timeout,
        }
    }

    /// Whether `ip` is one of the stack's addresses.
    pub fn is_local(&self, ip: IpAddr) -> bool {
        self.inner.endpoint().is_local(ip)
    }

    /// The addresses of host `name` in the device's name table (the
    /// in-memory network's hosts; see
    /// [`SimNetwork::add_host`](crate::sim::SimNetwork::add_host)); `None`
    /// when the device has no table or no such host. Never system DNS.
    pub fn lookup_host(&self, name: &str) -> Option<Vec<IpAddr>> {
        self.inner.device.lookup_host(name)
    }
}
