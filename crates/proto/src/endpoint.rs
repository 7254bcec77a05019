//! The connection table: 4-tuple lookup, listeners with their SYN and accept
//! queues (`crate::listen`) and SYN cookies (`crate::syncookie`, RFC 4987
//! §3.6) when a SYN queue is full, the connection limit, the RST for
//! segments nobody wants (RFC 9293 §3.10.7.1), initial sequence numbers
//! (RFC 6528), ephemeral ports (RFC 6056), and the TIME_WAIT records
//! (`crate::timewait`) with their one timer queue ([`Endpoint::poll_timeout`]).
//!
//! The endpoint stores one value `T` per connection (the runtime keeps its
//! connection's inbox there), addressed by a generation-tagged [`ConnHandle`] so
//! that a late lookup never reaches a reused slot.

use crate::config::Config;
use crate::connection::options::wscale_for;
use crate::connection::{Connection, Transmit};
use crate::error::Error;
use crate::listen::{Linked, ListenStats, Listener};
use crate::pending::{self, IncomingSyn, PendingId, PendingTable, SynVerdict};
use crate::seq::SeqNum;
use crate::syncookie;
use crate::time::Instant;
use crate::timewait::{
    TimeWait, TimeWaitAction, TimeWaitEnd, TimeWaitId, TimeWaitStats, TimeWaitTable,
};
use crate::wire::{self, TcpFlags, TcpOptions, TcpRepr};
use bytes::{Bytes, BytesMut};
use siphasher::sip::SipHasher13;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::Hasher;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;

/// Endpoint-wide settings.
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// Ephemeral port range (RFC 6056; default 49152–65535, IANA's).
    pub ephemeral_ports: RangeInclusive<u16>,
    /// Secret for ISNs (RFC 6528) and port selection; the runtime draws it from
    /// the OS (or a test seed).
    pub secret: [u8; 16],
    /// Most TIME_WAIT records at once (Linux `tcp_max_tw_buckets`); beyond
    /// it a closing connection skips TIME_WAIT and is counted
    /// ([`TimeWaitStats::overflows`]).
    pub max_time_wait: usize,
    /// Let `connect` reuse a TIME_WAIT 4-tuple when no other port is free,
    /// if timestamps were in force and its record is more than a second old
    /// (Linux's `tcp_tw_reuse`; PAWS keeps the old incarnation's segments
    /// out). Default on.
    pub time_wait_reuse: bool,
    /// Half-open connections (SYN_RECEIVED) per listener: its SYN queue,
    /// apart from the accept queue the listen backlog bounds (Linux's
    /// `tcp_max_syn_backlog`). A SYN beyond it is answered with a SYN
    /// cookie ([`syn_cookies`](Self::syn_cookies)) or dropped, and counted
    /// ([`ListenStats::syn_queue_overflows`]). Default 4096.
    pub syn_queue: usize,
    /// Answer SYNs with SYN cookies (RFC 4987 §3.6) while a listener's SYN
    /// queue is full, as Linux's `tcp_syncookies = 1`. Default on.
    pub syn_cookies: bool,
    /// Half-open connections of every listener together: at this many a
    /// SYN is treated as if its listener's SYN queue were full (a cookie,
    /// or dropped with cookies off), however many listeners there are.
    /// Default 16,384.
    pub max_half_open: usize,
    /// Most connections (TIME_WAIT records not counted: they have
    /// [`max_time_wait`](Self::max_time_wait)) the stack holds at once;
    /// beyond it `connect` fails with [`Error::AddrNotAvailable`] and SYNs
    /// are dropped, each counted in [`ListenStats`]. Default 1,048,576.
    pub max_connections: usize,
    /// Per-connection defaults.
    pub conn: Config,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            ephemeral_ports: 49152..=65535,
            secret: [0; 16],
            max_time_wait: 65_536,
            time_wait_reuse: true,
            syn_queue: 4096,
            syn_cookies: true,
            max_half_open: 16_384,
            max_connections: 1 << 20,
            conn: Config::default(),
        }
    }
}

/// A connection's address in the table: slot index and generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnHandle {
    index: u32,
    generation: u32,
}

impl ConnHandle {
    /// The slot index (stable while the connection lives).
    pub fn index(self) -> usize {
        self.index as usize
    }
}

/// A listener's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerId(u32);

/// A listener as [`Endpoint::listener_list`] shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerSummary {
    /// Its id.
    pub id: ListenerId,
    /// The bound address (unspecified IP and port 0 for accept-any).
    pub addr: SocketAddr,
    /// Accept-any: every destination address and port.
    pub any: bool,
    /// Every SYN is put to the application first (`crate::pending`).
    pub decides: bool,
    /// The accept queue's bound (the listen backlog).
    pub backlog: usize,
    /// The SYN queue's bound.
    pub syn_queue: usize,
    /// Half-open connections (SYN_RECEIVED, and SYNs waiting for a verdict).
    pub half_open: usize,
    /// Established connections not accepted yet.
    pub unaccepted: usize,
}

/// (local, remote).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FourTuple {
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
}

/// Where an incoming segment goes.
#[derive(Debug)]
pub enum Route {
    /// To an existing connection.
    Connection(ConnHandle),
    /// A SYN accepted by a listener: a new connection in SYN_RECEIVED, its
    /// SYN-ACK ready at its `poll_transmit`; or a valid SYN-cookie ACK: a
    /// new connection already ESTABLISHED (in the accept queue), which has
    /// taken the segment's acknowledgment but not its data or FIN: hand it
    /// the whole segment too when it carries either. Attach the runtime's
    /// value with [`Endpoint::attach`].
    Incoming {
        /// The listener that accepted it.
        listener: ListenerId,
        /// The new connection's handle.
        handle: ConnHandle,
        /// The connection.
        conn: Box<Connection>,
    },
    /// An RST was queued at the endpoint's [`Endpoint::poll_transmit`].
    Reset,
    /// A SYN for a listener whose SYN queue is full, answered with a SYN
    /// cookie (RFC 4987 §3.6): its SYN-ACK is queued at the endpoint's
    /// [`Endpoint::poll_transmit`] and no state is kept.
    SynCookie,
    /// A SYN for a listener that decides per SYN
    /// ([`Endpoint::listen_any_deciding`]): nothing was sent; the SYN waits
    /// for [`Endpoint::decide`] (call it with a [`SynVerdict`] once the
    /// application chose), and the client's retransmissions are absorbed
    /// meanwhile (`crate::pending`).
    Ask {
        /// The listener that asks.
        listener: ListenerId,
        /// The pending SYN.
        id: PendingId,
        /// The connection the client asks for.
        syn: IncomingSyn,
    },
    /// A pending SYN was deferred ([`SynVerdict::Defer`]): it keeps its
    /// SYN-queue slot until a later verdict or its budget ends.
    Deferred,
    /// For a TIME_WAIT record, which took it: with [`TimeWaitAction::Ack`]
    /// its ACK is queued at [`Endpoint::poll_transmit`]; with
    /// [`TimeWaitAction::Close`] the record ended.
    TimeWait(TimeWaitAction),
    /// Dropped: the reason.
    Drop(DropReason),
}

/// Why the endpoint dropped a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// An RST for no connection: never answered.
    UnmatchedRst,
    /// A SYN for a listener whose accept queue (the backlog: established
    /// connections not accepted yet) is full (as Linux).
    BacklogFull,
    /// The final ACK of a handshake (or a cookie ACK) while the listener's
    /// accept queue is full: dropped, the half-open connection kept; its
    /// SYN-ACK is re-sent and the peer's next ACK admits it once room frees
    /// (Linux with `tcp_abort_on_overflow` off).
    AcceptQueueFull,
    /// A SYN while the listener's SYN queue is full and SYN cookies are off.
    SynQueueFull,
    /// A SYN while the stack holds [`EndpointConfig::max_connections`].
    ConnectionLimit,
    /// Addressed to an address that is not ours.
    NotLocal,
    /// For a listener, but neither a SYN nor an ACK (RFC 9293 §3.10.7.2):
    /// dropped without reply.
    NotSyn,
    /// A SYN with FIN for a listener: discarded without reply, as Linux's
    /// LISTEN processing does.
    SynFin,
    /// From or to a broadcast or multicast address: TCP is unicast only
    /// (RFC 1122 §4.2.3.10); never answered, never accepted.
    NotUnicast,
    /// A retransmitted SYN for a SYN that waits for its listener's verdict:
    /// absorbed, not asked again.
    Pending,
    /// The listener's verdict on the SYN was [`SynVerdict::Drop`].
    Refused,
}

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    tuple: Option<FourTuple>,
    value: Option<T>,
    /// The listener that created it, until it is accepted.
    listener: Option<Linked>,
}

/// The connection table of one stack.
#[derive(Debug)]
pub struct Endpoint<T> {
    cfg: EndpointConfig,
    /// `cfg.conn`, shared by the connections made from it (each keeps
    /// what its socket options change apart); replaced, not changed, when
    /// the MTU changes, so older connections keep theirs.
    conn_cfg: Arc<Config>,
    local_addrs: Vec<IpAddr>,
    listeners: HashMap<u32, Listener>,
    by_port: HashMap<(IpAddr, u16), ListenerId>,
    any_listener: Option<ListenerId>,
    next_listener: u32,
    conns: HashMap<FourTuple, ConnHandle>,
    slots: Vec<Slot<T>>,
    /// Free slots; the lowest is taken first.
    free: BTreeSet<u32>,
    /// Replies of the endpoint itself (RSTs, TIME_WAIT ACKs): source,
    /// destination, hop limit, segment.
    replies: VecDeque<(IpAddr, IpAddr, u8, TcpRepr)>,
    port_counter: u32,
    /// Slot generations come from one counter, so a handle is never reused
    /// even after the slot table was compacted.
    next_generation: u32,
    tw: TimeWaitTable,
    /// SYNs waiting for their listener's verdict.
    pending: PendingTable,
    listen_stats: ListenStats,
}

impl<T> Endpoint<T> {
    /// An endpoint owning `local_addrs`.
    pub fn new(cfg: EndpointConfig, local_addrs: Vec<IpAddr>) -> Self {
        let port_counter =
            u32::from_le_bytes([cfg.secret[3], cfg.secret[7], cfg.secret[11], cfg.secret[15]]);
        Endpoint {
            conn_cfg: Arc::new(cfg.conn.clone()),
            cfg,
            local_addrs,
            listeners: HashMap::new(),
            by_port: HashMap::new(),
            any_listener: None,
            next_listener: 0,
            conns: HashMap::new(),
            slots: Vec::new(),
            free: BTreeSet::new(),
            replies: VecDeque::new(),
            port_counter,
            next_generation: 0,
            tw: TimeWaitTable::default(),
            pending: PendingTable::default(),
            listen_stats: ListenStats::default(),
        }
    }

    /// The listeners' queue sizes and counters (SYN queue, accept queue,
    /// SYN cookies, the connection limit).
    pub fn listen_stats(&self) -> ListenStats {
        self.listen_stats
    }

    /// A listener's queues now: (half-open, established not accepted).
    pub fn listener_queues(&self, id: ListenerId) -> Option<(usize, usize)> {
        let q = self.listeners.get(&id.0)?.queues;
        Some((q.half_open, q.unaccepted))
    }

    /// Sets the link MTU that new connections size their MSS from (the
    /// runtime reads it from the device at every connect and before every
    /// received batch, so a raised MTU serves the next connection).
    pub fn set_mtu(&mut self, mtu: usize) {
        if self.cfg.conn.mtu != mtu {
            self.cfg.conn.mtu = mtu;
            Arc::make_mut(&mut self.conn_cfg).mtu = mtu;
        }
    }

    /// The per-connection configuration.
    pub fn config(&self) -> &Config {
        &self.cfg.conn
    }

    /// The endpoint-wide configuration.
    pub fn endpoint_config(&self) -> &EndpointConfig {
        &self.cfg
    }

    /// Our addresses.
    pub fn local_addrs(&self) -> &[IpAddr] {
        &self.local_addrs
    }

    /// Whether `ip` is one of ours.
    pub fn is_local(&self, ip: IpAddr) -> bool {
        self.local_addrs.contains(&ip)
    }

    /// Live connections (TIME_WAIT records included).
    pub fn connection_count(&self) -> usize {
        self.conns.len() + self.tw.len()
    }

    /// TIME_WAIT records.
    pub fn time_wait_count(&self) -> usize {
        self.tw.len()
    }

    /// The TIME_WAIT table's counters.
    pub fn time_wait_stats(&self) -> TimeWaitStats {
        self.tw.stats()
    }

    /// Starts listening on `addr` (an unspecified IP means every local address
    /// of that family, and `[::]` every IPv4 address too: dual-stack, as Linux
    /// with `IPV6_V6ONLY` off; port 0 picks an ephemeral port). Returns the id
    /// and the bound address.
    ///
    /// # Errors
    /// [`Error::AddrInUse`] when the port is taken; [`Error::AddrNotAvailable`]
    /// for an address that is not ours or no free port.
    pub fn listen(
        &mut self,
        addr: SocketAddr,
        backlog: usize,
    ) -> Result<(ListenerId, SocketAddr), Error> {
        self.listen_with(addr, backlog, false)
    }

    /// As [`listen`](Self::listen), but `[::]` takes IPv6 connections only
    /// (`IPV6_V6ONLY` on).
    ///
    /// # Errors
    /// As [`listen`](Self::listen).
    pub fn listen_v6_only(
        &mut self,
        addr: SocketAddr,
        backlog: usize,
    ) -> Result<(ListenerId, SocketAddr), Error> {
        self.listen_with(addr, backlog, true)
    }

    fn listen_with(
        &mut self,
        addr: SocketAddr,
        backlog: usize,
        v6_only: bool,
    ) -> Result<(ListenerId, SocketAddr), Error> {
        let dual = addr.is_ipv6() && !v6_only;
        let ips: Vec<IpAddr> = if addr.ip().is_unspecified() {
            self.local_addrs
                .iter()
                .copied()
                .filter(|ip| ip.is_ipv4() == addr.is_ipv4() || dual)
                .collect()
        } else if self.is_local(addr.ip()) {
            vec![addr.ip()]
        } else {
            return Err(Error::AddrNotAvailable);
        };
        let mut port = addr.port();
        if port == 0 {
            port = self.free_listen_port(&ips).ok_or(Error::AddrNotAvailable)?;
        }
        if ips.iter().any(|ip| self.by_port.contains_key(&(*ip, port))) {
            return Err(Error::AddrInUse);
        }
        let id = ListenerId(self.next_listener);
        self.next_listener += 1;
        for ip in &ips {
            self.by_port.insert((*ip, port), id);
        }
        let bound = SocketAddr::new(addr.ip(), port);
        self.listeners.insert(
            id.0,
            Listener::new(bound, backlog, self.cfg.syn_queue, false),
        );
        Ok((id, bound))
    }

    /// Listens for connections to any address and port (for TUN users): the
    /// original destination becomes the connection's local address.
    ///
    /// # Errors
    /// [`Error::AddrInUse`] when an accept-any listener exists.
    pub fn listen_any(&mut self, backlog: usize) -> Result<ListenerId, Error> {
        self.listen_any_with(backlog, false)
    }

    /// As [`listen_any`](Self::listen_any), but every SYN is put to the
    /// application before it is answered: it comes out as [`Route::Ask`]
    /// and waits for [`decide`](Self::decide) (`crate::pending`).
    ///
    /// # Errors
    /// As [`listen_any`](Self::listen_any).
    pub fn listen_any_deciding(&mut self, backlog: usize) -> Result<ListenerId, Error> {
        self.listen_any_with(backlog, true)
    }

    fn listen_any_with(&mut self, backlog: usize, asks: bool) -> Result<ListenerId, Error> {
        if self.any_listener.is_some() {
            return Err(Error::AddrInUse);
        }
        let id = ListenerId(self.next_listener);
        self.next_listener += 1;
        let addr = SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0);
        let mut l = Listener::new(addr, backlog, self.cfg.syn_queue, true);
        l.asks = asks;
        self.listeners.insert(id.0, l);
        self.any_listener = Some(id);
        Ok(id)
    }

    /// Stops a listener. Connections it created stay; the runtime resets those
    /// not yet accepted.
    pub fn unlisten(&mut self, id: ListenerId) {
        if let Some(l) = self.listeners.remove(&id.0) {
            if l.any {
                self.any_listener = None;
            }
            self.by_port.retain(|_, v| *v != id);
            for p in self.pending.remove_listener(id) {
                self.pending_gone(&p);
            }
        }
    }

    /// One accepted (or dead) connection leaves its listener's queue (the
    /// accept queue, or the SYN queue if it never got established).
    pub fn release_backlog(&mut self, handle: ConnHandle) {
        if let Some(slot) = self.slot_mut(handle)
            && let Some(linked) = slot.listener.take()
        {
            if linked.link.established {
                self.listen_stats.unaccepted = self.listen_stats.unaccepted.saturating_sub(1);
            } else {
                self.listen_stats.half_open = self.listen_stats.half_open.saturating_sub(1);
            }
            if let Some(l) = self.listeners.get_mut(&linked.id.0) {
                l.queues.release(linked.link);
            }
        }
    }

    fn free_listen_port(&mut self, ips: &[IpAddr]) -> Option<u16> {
        let range = self.cfg.ephemeral_ports.clone();
        let n = (*range.end() as u32).saturating_sub(*range.start() as u32) + 1;
        for i in 0..n {
            let port = *range.start() + ((self.port_counter.wrapping_add(i)) % n) as u16;
            if !ips.iter().any(|ip| self.by_port.contains_key(&(*ip, port))) {
                self.port_counter = self.port_counter.wrapping_add(i + 1);
                return Some(port);
            }
        }
        None
    }

    /// Active open to `remote` from our first address of its family (or
    /// `local_ip`), on an ephemeral port chosen per RFC 6056 Algorithm 3.
    ///
    /// # Errors
    /// [`Error::AddrNotAvailable`] with no local address of that family or no
    /// free port; [`Error::InvalidInput`] for port 0 or an unspecified remote.
    pub fn connect(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local_ip: Option<IpAddr>,
    ) -> Result<(ConnHandle, Connection), Error> {
        if remote.port() == 0 || remote.ip().is_unspecified() {
            return Err(Error::InvalidInput(
                "connect to port 0 or an unspecified address",
            ));
        }
        if !is_unicast(remote.ip()) {
            return Err(Error::InvalidInput(
                "connect to a broadcast or multicast address",
            ));
        }
        self.check_connection_limit()?;
        let local_ip = match local_ip {
            Some(ip) if self.is_local(ip) => ip,
            Some(_) => return Err(Error::AddrNotAvailable),
            None => *self
                .local_addrs
                .iter()
                .find(|ip| ip.is_ipv4() == remote.is_ipv4())
                .ok_or(Error::AddrNotAvailable)?,
        };
        let range = self.cfg.ephemeral_ports.clone();
        let n = (*range.end() as u32).saturating_sub(*range.start() as u32) + 1;
        // RFC 6056 §3.3.3: offset = F(local IP, remote IP, remote port, secret).
        let mut h = self.hasher();
        hash_ip(&mut h, local_ip);
        hash_ip(&mut h, remote.ip());
        h.write_u16(remote.port());
        let offset = h.finish() as u32;
        for i in 0..n {
            let port = *range.start()
                + (offset.wrapping_add(self.port_counter).wrapping_add(i) % n) as u16;
            let tuple = FourTuple {
                local: SocketAddr::new(local_ip, port),
                remote,
            };
            if self.conns.contains_key(&tuple)
                || self.by_port.contains_key(&(local_ip, port))
                || self.tw.contains(tuple.local, tuple.remote)
            {
                continue;
            }
            self.port_counter = self.port_counter.wrapping_add(i + 1);
            let iss = self.isn(now, &tuple);
            let mut conn =
                Connection::connect(self.conn_cfg.clone(), tuple.local, remote, iss, now)?;
            conn.set_timestamp_offset(self.ts_offset(&tuple));
            let handle = self.insert(tuple, None);
            return Ok((handle, conn));
        }
        // Every port is taken: a TIME_WAIT 4-tuple may be reused.
        for i in 0..n {
            let port = *range.start() + (offset.wrapping_add(i) % n) as u16;
            let tuple = FourTuple {
                local: SocketAddr::new(local_ip, port),
                remote,
            };
            if self.by_port.contains_key(&(local_ip, port)) {
                continue;
            }
            if let Some(r) = self.reuse_time_wait(now, &tuple) {
                return r;
            }
        }
        Err(Error::AddrNotAvailable)
    }

    /// Reuses `tuple`'s TIME_WAIT record for a new active open if allowed
    /// (see [`EndpointConfig::time_wait_reuse`]): the record ends and the
    /// new ISS lies above the old SND.NXT + 65,537, as Linux picks it.
    fn reuse_time_wait(
        &mut self,
        now: Instant,
        tuple: &FourTuple,
    ) -> Option<Result<(ConnHandle, Connection), Error>> {
        if !self.cfg.time_wait_reuse {
            return None;
        }
        let id = self.tw.lookup(tuple.local, tuple.remote)?;
        let old_snd_nxt = self.tw.reusable(id, now)?;
        let mut iss = self.isn(now, tuple);
        let floor = old_snd_nxt + 65_537;
        if iss.before(floor) {
            iss = floor;
        }
        let mut conn =
            match Connection::connect(self.conn_cfg.clone(), tuple.local, tuple.remote, iss, now) {
                Ok(c) => c,
                Err(e) => return Some(Err(e)),
            };
        conn.set_timestamp_offset(self.ts_offset(tuple));
        self.tw.remove(id, TimeWaitEnd::Reused);
        let handle = self.insert(*tuple, None);
        Some(Ok((handle, conn)))
    }

    /// Active open from a chosen local address and port (for simultaneous
    /// open, or a client that must use a fixed port).
    ///
    /// # Errors
    /// [`Error::AddrNotAvailable`] when `local` is not ours;
    /// [`Error::AddrInUse`] when the 4-tuple exists; [`Error::InvalidInput`]
    /// for port 0 or mixed families.
    pub fn connect_from(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<(ConnHandle, Connection), Error> {
        if remote.port() == 0 || local.port() == 0 || remote.ip().is_unspecified() {
            return Err(Error::InvalidInput(
                "connect with port 0 or an unspecified address",
            ));
        }
        if !is_unicast(remote.ip()) || !is_unicast(local.ip()) {
            return Err(Error::InvalidInput(
                "connect to or from a broadcast or multicast address",
            ));
        }
        if !self.is_local(local.ip()) {
            return Err(Error::AddrNotAvailable);
        }
        self.check_connection_limit()?;
        let tuple = FourTuple { local, remote };
        if !self.conns.contains_key(&tuple)
            && let Some(r) = self.reuse_time_wait(now, &tuple)
        {
            return r;
        }
        if self.conns.contains_key(&tuple) || self.tw.contains(local, remote) {
            return Err(Error::AddrInUse);
        }
        let iss = self.isn(now, &tuple);
        let mut conn = Connection::connect(self.conn_cfg.clone(), local, remote, iss, now)?;
        conn.set_timestamp_offset(self.ts_offset(&tuple));
        let handle = self.insert(tuple, None);
        Ok((handle, conn))
    }

    /// [`EndpointConfig::max_connections`]: an active open beyond it fails
    /// (and is counted).
    fn check_connection_limit(&mut self) -> Result<(), Error> {
        if self.conns.len() >= self.cfg.max_connections {
            self.listen_stats.connection_limit_connects += 1;
            return Err(Error::AddrNotAvailable);
        }
        Ok(())
    }

    /// RFC 6528: ISN = M + F(4-tuple, secret), M a 4 µs clock.
    pub fn isn(&self, now: Instant, t: &FourTuple) -> SeqNum {
        let mut h = self.hasher();
        hash_ip(&mut h, t.local.ip());
        h.write_u16(t.local.port());
        hash_ip(&mut h, t.remote.ip());
        h.write_u16(t.remote.port());
        let m = (now.as_micros() / 4) as u32;
        SeqNum::new(m.wrapping_add(h.finish() as u32))
    }

    /// The timestamp clock offset of connections between two addresses
    /// (Linux's `secure_tcp_ts_off`): keyed by the secret, so the uptime
    /// does not show, and the same for every port pair, so that successive
    /// connections between two hosts keep monotonic timestamps (RFC 6191).
    pub fn ts_offset(&self, t: &FourTuple) -> u32 {
        let mut h = self.hasher();
        h.write(b"TSval");
        hash_ip(&mut h, t.local.ip());
        hash_ip(&mut h, t.remote.ip());
        h.finish() as u32
    }

    fn hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_key(&self.cfg.secret)
    }

    fn insert(&mut self, tuple: FourTuple, listener: Option<Linked>) -> ConnHandle {
        let index = match self.free.pop_first() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    tuple: None,
                    value: None,
                    listener: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        slot.tuple = Some(tuple);
        slot.listener = listener;
        slot.value = None;
        let handle = ConnHandle {
            index,
            generation: slot.generation,
        };
        self.conns.insert(tuple, handle);
        handle
    }

    fn slot_mut(&mut self, h: ConnHandle) -> Option<&mut Slot<T>> {
        self.slots
            .get_mut(h.index as usize)
            .filter(|s| s.generation == h.generation && s.tuple.is_some())
    }

    /// Stores the runtime's value for a connection.
    pub fn attach(&mut self, h: ConnHandle, value: T) {
        if let Some(s) = self.slot_mut(h) {
            s.value = Some(value);
        }
    }

    /// The runtime's value for a live connection.
    pub fn get(&self, h: ConnHandle) -> Option<&T> {
        self.slots
            .get(h.index as usize)
            .filter(|s| s.generation == h.generation && s.tuple.is_some())
            .and_then(|s| s.value.as_ref())
    }

    /// Every attached value (for stack-wide shutdown).
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.slots
            .iter()
            .filter(|s| s.tuple.is_some())
            .filter_map(|s| s.value.as_ref())
    }

    /// Mutable access to a live connection's value.
    pub fn get_mut(&mut self, h: ConnHandle) -> Option<&mut T> {
        self.slot_mut(h).and_then(|s| s.value.as_mut())
    }

    /// A live connection's 4-tuple.
    pub fn tuple(&self, h: ConnHandle) -> Option<FourTuple> {
        self.slots
            .get(h.index as usize)
            .filter(|s| s.generation == h.generation)
            .and_then(|s| s.tuple)
    }

    /// Frees a connection's 4-tuple and slot (its value is returned).
    pub fn remove(&mut self, h: ConnHandle) -> Option<T> {
        self.release_backlog(h);
        let slot = self.slot_mut(h)?;
        let tuple = slot.tuple.take()?;
        let v = slot.value.take();
        self.conns.remove(&tuple);
        self.free.insert(h.index);
        self.compact();
        v
    }

    /// Gives the table's memory back after a peak: trailing free slots go
    /// (new connections take the lowest free slot, so the live ones gather
    /// at the front), and the slot vector and the 4-tuple map shrink once
    /// they are mostly empty. Amortized O(log n) per removal.
    fn compact(&mut self) {
        while let Some(&last) = self.free.last()
            && last as usize + 1 == self.slots.len()
        {
            self.free.pop_last();
            self.slots.pop();
        }
        if self.slots.capacity() > 2 * self.slots.len() + 256 {
            self.slots.shrink_to_fit();
        }
        if self.conns.capacity() > 4 * self.conns.len() + 256 {
            self.conns.shrink_to_fit();
        }
    }

    /// A connection entered TIME_WAIT: its slot and value are freed (the
    /// value is returned) and its `record` joins the TIME_WAIT table, which
    /// from now on answers its 4-tuple. `held`: an application still holds
    /// the stream, so the record's end is reported
    /// ([`poll_time_wait_end`](Self::poll_time_wait_end)). Beyond
    /// [`EndpointConfig::max_time_wait`] no record is kept (the connection
    /// skips TIME_WAIT, as Linux's `tcp_max_tw_buckets`) and the overflow is
    /// counted: the id is then `None`.
    pub fn enter_time_wait(
        &mut self,
        h: ConnHandle,
        record: TimeWait,
        held: bool,
    ) -> (Option<TimeWaitId>, Option<T>) {
        let value = self.remove(h);
        if self.tw.len() >= self.cfg.max_time_wait {
            self.tw.count_overflow();
            tracing::debug!(
                parent: &tracing::debug_span!("tcp", local = %record.local, remote = %record.remote),
                from = "TIME_WAIT", to = "CLOSED", cause = "TIME_WAIT table full", "state"
            );
            return (None, value);
        }
        (Some(self.tw.insert(record, held)), value)
    }

    /// Every TIME_WAIT record: (local, remote, when its 2·MSL ends), in no
    /// particular order (for listings, not the data path).
    pub fn time_wait_records(
        &self,
    ) -> impl Iterator<Item = (SocketAddr, SocketAddr, Instant)> + '_ {
        self.tw.records()
    }

    /// Whether a live connection still sits in its listener's queues (not
    /// accepted yet).
    pub fn is_queued(&self, h: ConnHandle) -> bool {
        self.slots
            .get(h.index as usize)
            .filter(|s| s.generation == h.generation && s.tuple.is_some())
            .is_some_and(|s| s.listener.is_some())
    }

    /// Every listener: (id, bound address, accept-any, backlog, half-open,
    /// established not accepted).
    pub fn listener_list(&self) -> Vec<ListenerSummary> {
        let mut v: Vec<ListenerSummary> = self
            .listeners
            .iter()
            .map(|(id, l)| ListenerSummary {
                id: ListenerId(*id),
                addr: l.addr,
                any: l.any,
                decides: l.asks,
                backlog: l.queues.backlog,
                syn_queue: l.queues.syn_limit,
                half_open: l.queues.half_open,
                unaccepted: l.queues.unaccepted,
            })
            .collect();
        v.sort_by_key(|l| l.id.0);
        v
    }

    /// Whether a TIME_WAIT record is still there.
    pub fn is_time_wait(&self, id: TimeWaitId) -> bool {
        self.tw.is_live(id)
    }

    /// The application let go of a TIME_WAIT record's stream: its end need
    /// not be reported.
    pub fn release_time_wait(&mut self, id: TimeWaitId) {
        self.tw.release(id);
    }

    /// The next end of a held TIME_WAIT record (2·MSL, RST, reopened,
    /// cleared), for the runtime to tell its stream.
    pub fn poll_time_wait_end(&mut self) -> Option<(TimeWaitId, TimeWaitEnd)> {
        self.tw.poll_ended()
    }

    /// Ends every TIME_WAIT record (the stack stopped).
    pub fn clear_time_wait(&mut self) {
        self.tw.clear();
    }

    /// The earliest deadline at which [`handle_timeout`](Self::handle_timeout)
    /// must be called (the TIME_WAIT records' 2·MSL).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.tw.poll_timeout(), self.pending.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Ends the TIME_WAIT records whose 2·MSL passed by `now`, and drops the
    /// deferred SYNs whose budget ended (`crate::pending`; nothing is sent,
    /// as Linux sends nothing for a request whose SYN-ACKs went
    /// unanswered).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tw.handle_timeout(now);
        let mut expired = Vec::new();
        self.pending.expire(now, &mut expired);
        for p in &expired {
            self.listen_stats.deferred_expired += 1;
            self.pending_gone(p);
        }
    }

    /// The connection of a 4-tuple, if one is live (not a TIME_WAIT
    /// record): where an ICMP error about a segment it sent goes
    /// ([`parse_icmp_error`](crate::wire::icmp::parse_icmp_error), then
    /// `Connection::handle_icmp`).
    pub fn lookup(&self, local: SocketAddr, remote: SocketAddr) -> Option<ConnHandle> {
        self.conns.get(&FourTuple { local, remote }).copied()
    }

    /// Routes an incoming segment from `src` to `dst`.
    pub fn handle(
        &mut self,
        now: Instant,
        src: IpAddr,
        dst: IpAddr,
        repr: &TcpRepr,
        payload_len: usize,
    ) -> Route {
        let tuple = FourTuple {
            local: SocketAddr::new(dst, repr.dst_port),
            remote: SocketAddr::new(src, repr.src_port),
        };
        if let Some(&h) = self.conns.get(&tuple) {
            return self.for_connection(h, repr);
        }
        if repr.flags.syn() && !repr.flags.ack() && self.pending.contains(&tuple) {
            // Its first SYN waits for the listener's verdict.
            self.listen_stats.pending_syn_retransmits += 1;
            return Route::Drop(DropReason::Pending);
        }
        if let Some(id) = self.tw.lookup(tuple.local, tuple.remote) {
            return self.time_wait_segment(now, id, tuple, repr, payload_len);
        }
        // RFC 1122 §4.2.3.10: a SYN to or from a broadcast or multicast
        // address is dropped, and no segment is ever sent from one (an
        // accept-any listener would otherwise take it as a local address).
        if !is_unicast(dst) || !is_unicast(src) {
            return Route::Drop(DropReason::NotUnicast);
        }
        let f = repr.flags;
        let listener = self
            .by_port
            .get(&(dst, repr.dst_port))
            .copied()
            .or(self.any_listener);
        if !self.is_local(dst) && self.any_listener.is_none() {
            return Route::Drop(DropReason::NotLocal);
        }
        if f.rst() {
            return Route::Drop(DropReason::UnmatchedRst);
        }
        if let Some(id) = listener {
            if f.syn() && !f.ack() {
                if f.fin() {
                    return Route::Drop(DropReason::SynFin);
                }
                if self.listeners.get(&id.0).is_some_and(|l| l.asks) {
                    return self.ask(id, tuple, repr, None);
                }
                return self.accept(now, id, tuple, repr, None);
            }
            if f.ack()
                && !f.syn()
                && let Some(route) = self.cookie_ack(now, id, tuple, repr)
            {
                return route;
            }
            if !f.ack() {
                // RFC 9293 §3.10.7.2 (LISTEN), fourth: any other text or
                // control without ACK is dropped, not answered.
                return Route::Drop(DropReason::NotSyn);
            }
        }
        self.reset_for(src, dst, repr, payload_len);
        Route::Reset
    }

    /// A segment for a connection. For a half-open one of a listener, an
    /// ACK of our SYN (SEG.ACK = ISS+1) completes the handshake, so the
    /// connection moves from the SYN queue to the accept queue here, before
    /// it has seen the segment; with the accept queue full the segment is
    /// dropped instead and the connection stays half-open, re-sending its
    /// SYN-ACK on its timer, so the peer's answer to that admits it once
    /// room frees (Linux's `tcp_check_req` with `tcp_abort_on_overflow`
    /// off). The connection is never lost: it is in the accept queue when
    /// it reports itself established.
    fn for_connection(&mut self, h: ConnHandle, repr: &TcpRepr) -> Route {
        let f = repr.flags;
        if !f.ack() || f.syn() || f.rst() {
            return Route::Connection(h);
        }
        let Some(slot) = self.slots.get_mut(h.index as usize) else {
            return Route::Connection(h);
        };
        let Some(linked) = slot.listener.as_mut() else {
            return Route::Connection(h);
        };
        if linked.link.established || repr.ack != linked.link.iss + 1 {
            return Route::Connection(h);
        }
        let Some(l) = self.listeners.get_mut(&linked.id.0) else {
            return Route::Connection(h);
        };
        if l.queues.accept_full() {
            self.listen_stats.accept_queue_ack_drops += 1;
            return Route::Drop(DropReason::AcceptQueueFull);
        }
        l.queues.establish(&mut linked.link);
        self.listen_stats.half_open = self.listen_stats.half_open.saturating_sub(1);
        self.listen_stats.unaccepted += 1;
        Route::Connection(h)
    }

    /// A segment for a TIME_WAIT record: the record's rules
    /// (`crate::timewait`), and the reopening decided here: a SYN the record
    /// finds acceptable (RFC 1122 §4.2.2.13) becomes a new connection of the
    /// listener with an ISS above the old SND.NXT, and the record ends. With
    /// a full backlog the SYN is dropped and the record stays, for the SYN's
    /// retransmission; a SYN with FIN is dropped. With no listener the
    /// record ends and the SYN gets the RST of a closed port at once (Linux
    /// ACKs it instead, and the client's RST to that ACK ends the record:
    /// the same end, one retransmitted SYN later).
    fn time_wait_segment(
        &mut self,
        now: Instant,
        id: TimeWaitId,
        tuple: FourTuple,
        repr: &TcpRepr,
        payload_len: usize,
    ) -> Route {
        let (action, reply) = self
            .tw
            .on_segment(id, now, repr, payload_len, &self.cfg.conn);
        let (action, reply) = match action {
            TimeWaitAction::Reopen { iss_above } => {
                let listener = self
                    .by_port
                    .get(&(tuple.local.ip(), tuple.local.port()))
                    .copied()
                    .or(self.any_listener);
                let Some(l) = listener else {
                    self.tw.remove(id, TimeWaitEnd::Reopened);
                    self.reset_for(tuple.remote.ip(), tuple.local.ip(), repr, payload_len);
                    return Route::Reset;
                };
                if repr.flags.fin() {
                    return Route::Drop(DropReason::SynFin);
                }
                let route = if self.listeners.get(&l.0).is_some_and(|l| l.asks) {
                    // Asked as any other SYN: the record ends now (as Linux
                    // ends it before its listener sees the SYN), and the ISS
                    // of an accepted connection still lies above.
                    self.ask(l, tuple, repr, Some(iss_above))
                } else {
                    self.accept(now, l, tuple, repr, Some(iss_above))
                };
                if matches!(route, Route::Incoming { .. } | Route::Ask { .. }) {
                    self.tw.remove(id, TimeWaitEnd::Reopened);
                }
                return route;
            }
            _ => (action, reply),
        };
        if let Some(r) = reply
            && self.replies.len() < 1024
        {
            self.replies.push_back((r.src, r.dst, r.hop_limit, r.repr));
        }
        Route::TimeWait(action)
    }

    /// A SYN for a listener that decides: the checks a SYN meets before it
    /// could be accepted (the accept queue, the connection limit), then a
    /// pending entry holding a SYN-queue slot if there is room (without
    /// one, only a cookie can accept it), and [`Route::Ask`].
    fn ask(
        &mut self,
        id: ListenerId,
        tuple: FourTuple,
        repr: &TcpRepr,
        iss_above: Option<SeqNum>,
    ) -> Route {
        let Some(l) = self.listeners.get_mut(&id.0) else {
            return Route::Drop(DropReason::NotLocal);
        };
        if l.queues.accept_full() {
            self.listen_stats.accept_queue_syn_drops += 1;
            return Route::Drop(DropReason::BacklogFull);
        }
        if self.conns.len() >= self.cfg.max_connections {
            self.listen_stats.connection_limit_syn_drops += 1;
            return Route::Drop(DropReason::ConnectionLimit);
        }
        let reserved = !l.queues.syn_full() && self.listen_stats.half_open < self.cfg.max_half_open;
        if reserved {
            l.queues.half_open += 1;
            self.listen_stats.half_open += 1;
            self.listen_stats.half_open_peak = self
                .listen_stats
                .half_open_peak
                .max(self.listen_stats.half_open);
        } else {
            self.listen_stats.syn_queue_overflows += 1;
            if self.pending.unreserved() >= pending::MAX_UNRESERVED {
                self.listen_stats.syn_queue_drops += 1;
                return Route::Drop(DropReason::SynQueueFull);
            }
        }
        self.listen_stats.syns_asked += 1;
        let pid = self.pending.insert(tuple, id, *repr, iss_above, reserved);
        Route::Ask {
            listener: id,
            id: pid,
            syn: IncomingSyn::new(tuple, repr),
        }
    }

    /// Applies the verdict on a pending SYN ([`Route::Ask`]):
    /// - [`SynVerdict::Accept`]: as a listener that does not ask accepts a
    ///   SYN: [`Route::Incoming`] (its SYN-ACK at the connection's
    ///   `poll_transmit`), [`Route::SynCookie`] while the SYN queue is
    ///   full, or a drop for a full accept queue or the connection limit
    ///   (the client's retransmission is then asked again);
    /// - [`SynVerdict::Reset`]: an RST at [`poll_transmit`](Self::poll_transmit),
    ///   [`Route::Reset`];
    /// - [`SynVerdict::Drop`]: nothing sent, [`DropReason::Refused`];
    /// - [`SynVerdict::Defer`]: [`Route::Deferred`], the entry kept with its
    ///   budget (`crate::pending`); without a SYN-queue slot it is dropped
    ///   instead ([`DropReason::SynQueueFull`]).
    ///
    /// `None` when the SYN no longer waits: decided before, its budget
    /// ended, or its listener stopped.
    pub fn decide(&mut self, now: Instant, id: PendingId, verdict: SynVerdict) -> Option<Route> {
        if verdict == SynVerdict::Defer {
            let p = self.pending.get_mut(id)?;
            if !p.reserved {
                let p = self.pending.remove(id)?;
                self.pending_gone(&p);
                self.listen_stats.syn_queue_drops += 1;
                return Some(Route::Drop(DropReason::SynQueueFull));
            }
            if p.deadline.is_none() {
                self.listen_stats.syns_deferred += 1;
            }
            self.pending
                .defer(id, now + pending::budget(&self.cfg.conn));
            return Some(Route::Deferred);
        }
        let p = self.pending.remove(id)?;
        self.pending_gone(&p);
        let tuple = id.tuple();
        Some(match verdict {
            SynVerdict::Accept => self.accept(now, p.listener, tuple, &p.syn, p.iss_above),
            SynVerdict::Reset => {
                self.listen_stats.verdict_resets += 1;
                self.reset_for(tuple.remote.ip(), tuple.local.ip(), &p.syn, 0);
                Route::Reset
            }
            SynVerdict::Drop | SynVerdict::Defer => {
                self.listen_stats.verdict_drops += 1;
                Route::Drop(DropReason::Refused)
            }
        })
    }

    /// SYNs waiting for a verdict now, deferred or not.
    pub fn pending_syns(&self) -> usize {
        self.pending.len()
    }

    /// A pending entry left the table: its SYN-queue slot is free.
    fn pending_gone(&mut self, p: &pending::Pending) {
        if p.reserved {
            self.listen_stats.half_open = self.listen_stats.half_open.saturating_sub(1);
            if let Some(l) = self.listeners.get_mut(&p.listener.0) {
                l.queues.half_open = l.queues.half_open.saturating_sub(1);
            }
        }
    }

    fn accept(
        &mut self,
        now: Instant,
        id: ListenerId,
        tuple: FourTuple,
        repr: &TcpRepr,
        iss_above: Option<SeqNum>,
    ) -> Route {
        let Some(l) = self.listeners.get_mut(&id.0) else {
            return Route::Drop(DropReason::NotLocal);
        };
        // Linux's tcp_conn_request: a full accept queue drops the SYN,
        // cookies or not; a full SYN queue answers with a cookie.
        if l.queues.accept_full() {
            self.listen_stats.accept_queue_syn_drops += 1;
            return Route::Drop(DropReason::BacklogFull);
        }
        if self.conns.len() >= self.cfg.max_connections {
            self.listen_stats.connection_limit_syn_drops += 1;
            return Route::Drop(DropReason::ConnectionLimit);
        }
        if l.queues.syn_full() || self.listen_stats.half_open >= self.cfg.max_half_open {
            self.listen_stats.syn_queue_overflows += 1;
            // A SYN reopening a TIME_WAIT record gets no cookie: the
            // record, not the listener, would see the cookie's ACK.
            if self.cfg.syn_cookies && iss_above.is_none() {
                l.last_cookie = Some(now);
                let hop_limit = l.hop_limit.unwrap_or(self.cfg.conn.hop_limit);
                // The window of the SYN-ACK, and the size our shift must
                // reach: a fixed buffer, or auto-tuning's limit (as a
                // connection's SYN-ACK, RFC 7323 §2.3).
                let c = &self.cfg.conn;
                let (recv_buffer, shift_for) = match l.recv_buffer {
                    Some(b) => (b, b),
                    None => (c.recv_buffer, c.recv_buffer.max(c.recv_buffer_max)),
                };
                self.send_cookie(now, hop_limit, recv_buffer, shift_for, &tuple, repr);
                return Route::SynCookie;
            }
            self.listen_stats.syn_queue_drops += 1;
            return Route::Drop(DropReason::SynQueueFull);
        }
        let mut link = l.queues.admit();
        self.listen_stats.half_open += 1;
        self.listen_stats.half_open_peak = self
            .listen_stats
            .half_open_peak
            .max(self.listen_stats.half_open);
        let hop_limit = l.hop_limit;
        let mut iss = self.isn(now, &tuple);
        if let Some(floor) = iss_above
            && iss.before_eq(floor)
        {
            iss = floor + 64_000;
        }
        match Connection::accept(
            self.conn_cfg.clone(),
            tuple.local,
            tuple.remote,
            iss,
            now,
            repr,
        ) {
            Ok(mut conn) => {
                if let Some(h) = hop_limit {
                    // The listener's TTL (never 0: its setter refuses it),
                    // before the SYN-ACK is built.
                    conn.set_hop_limit(h).ok();
                }
                conn.set_timestamp_offset(self.ts_offset(&tuple));
                link.iss = iss;
                let handle = self.insert(tuple, Some(Linked { id, link }));
                Route::Incoming {
                    listener: id,
                    handle,
                    conn: Box::new(conn),
                }
            }
            Err(_) => {
                if let Some(l) = self.listeners.get_mut(&id.0) {
                    l.queues.release(link);
                }
                self.listen_stats.half_open -= 1;
                Route::Drop(DropReason::NotLocal)
            }
        }
    }

    /// Answers `syn` with a SYN cookie (RFC 4987 §3.6, Linux's encoding,
    /// `crate::syncookie`): a SYN-ACK whose ISS encodes the peer's MSS and,
    /// with timestamps, whose TSval carries its window scale and
    /// SACK-permitted; the options are those a connection's SYN-ACK would
    /// carry. Without timestamps there are no bits to keep window scaling
    /// and SACK in, so the SYN-ACK offers neither (as Linux).
    fn send_cookie(
        &mut self,
        now: Instant,
        hop_limit: u8,
        recv_buffer: usize,
        shift_for: usize,
        tuple: &FourTuple,
        syn: &TcpRepr,
    ) {
        if self.replies.len() >= 1024 {
            // Bounded, as every reply: under a flood the rest get nothing.
            return;
        }
        let cfg = &self.cfg.conn;
        let ipv6 = tuple.remote.is_ipv6();
        let o = &syn.options;
        // RFC 9293 §3.7.1: without the option, 536 (IPv4) / 1220 (IPv6).
        let peer_mss = o
            .mss
            .map(u32::from)
            .unwrap_or(if ipv6 { 1220 } else { 536 });
        let index = syncookie::mss_index(peer_mss, ipv6);
        let iss = syncookie::make(&self.cfg.secret, tuple, syn.seq, index, now);
        let mut options = TcpOptions {
            mss: Some(cfg.mss_for(ipv6)),
            ..TcpOptions::default()
        };
        if cfg.timestamps
            && let Some((tsval, _)) = o.timestamps
        {
            let ws = o.window_scale.filter(|_| cfg.window_scaling);
            let sack = cfg.sack && o.sack_permitted;
            if ws.is_some() {
                options.window_scale = Some(wscale_for(shift_for));
            }
            options.sack_permitted = sack;
            let clock = syncookie::encode_ts(now.as_millis() as u32, ws, sack);
            options.timestamps = Some((self.ts_offset(tuple).wrapping_add(clock), tsval));
        }
        let reply = TcpRepr {
            src_port: syn.dst_port,
            dst_port: syn.src_port,
            seq: iss,
            ack: syn.seq + 1,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            // RFC 7323 §2.2: never scaled in a SYN-ACK.
            window: recv_buffer.min(65_535) as u16,
            urgent: 0,
            options,
        };
        self.replies
            .push_back((tuple.local.ip(), tuple.remote.ip(), hop_limit, reply));
        self.listen_stats.cookies_sent += 1;
    }

    /// An ACK for a listener and no connection: if the listener sent
    /// cookies within the last two cookie periods (Linux's
    /// `tcp_synq_no_recent_overflow`), SEG.ACK − 1 may be one. A valid
    /// cookie becomes a connection in ESTABLISHED in the accept queue
    /// (`Route::Incoming`); a full accept queue drops the ACK (as Linux);
    /// an invalid one is counted and `None` is returned, and the ACK gets
    /// its RST as any other (RFC 9293 §3.10.7.2, second).
    fn cookie_ack(
        &mut self,
        now: Instant,
        id: ListenerId,
        tuple: FourTuple,
        repr: &TcpRepr,
    ) -> Option<Route> {
        let l = self.listeners.get(&id.0)?;
        if now.saturating_duration_since(l.last_cookie?) >= syncookie::PERIOD * 2 {
            return None;
        }
        let sseq = repr.seq.wrapping_add(u32::MAX);
        let cookie = repr.ack.wrapping_add(u32::MAX);
        let Some(mss) = syncookie::check(&self.cfg.secret, &tuple, sseq, cookie, now) else {
            self.listen_stats.cookies_refused += 1;
            return None;
        };
        // The window scale and SACK-permitted ride in our TSval, echoed.
        let (window_scale, sack_permitted, timestamps) = match repr.options.timestamps {
            Some((tsval, tsecr)) if self.cfg.conn.timestamps => {
                let clock = tsecr.wrapping_sub(self.ts_offset(&tuple));
                let Some((ws, sack)) = syncookie::decode_ts(clock) else {
                    self.listen_stats.cookies_refused += 1;
                    return None;
                };
                (ws, sack, Some((tsval, 0)))
            }
            _ => (None, false, None),
        };
        let l = self.listeners.get_mut(&id.0)?;
        if l.queues.accept_full() {
            self.listen_stats.accept_queue_ack_drops += 1;
            return Some(Route::Drop(DropReason::AcceptQueueFull));
        }
        if self.conns.len() >= self.cfg.max_connections {
            self.listen_stats.connection_limit_syn_drops += 1;
            return Some(Route::Drop(DropReason::ConnectionLimit));
        }
        let (hop_limit, recv_buffer) = (l.hop_limit, l.recv_buffer);
        // The SYN the cookie stands for, as the peer sent it (its window
        // is not known: the ACK's, scaled, replaces it at once).
        let syn = TcpRepr {
            src_port: repr.src_port,
            dst_port: repr.dst_port,
            seq: sseq,
            ack: SeqNum::new(0),
            flags: TcpFlags::SYN,
            window: repr.window,
            urgent: 0,
            options: TcpOptions {
                mss: Some(mss),
                window_scale,
                sack_permitted,
                timestamps,
                ..TcpOptions::default()
            },
        };
        // Its acknowledgment only: data and FIN follow in the whole segment.
        let ack = TcpRepr {
            flags: TcpFlags(repr.flags.0 & !(TcpFlags::FIN.0 | TcpFlags::PSH.0)),
            ..*repr
        };
        let cfg = match recv_buffer {
            // A fixed size: no auto-tuning, and the shift fits it. The
            // buffer sizes the connection at its making, so it gets a
            // configuration of its own.
            Some(b) => Arc::new(Config {
                recv_buffer: b,
                recv_buffer_max: b,
                ..Config::clone(&self.conn_cfg)
            }),
            None => self.conn_cfg.clone(),
        };
        let mut conn =
            Connection::accept(cfg, tuple.local, tuple.remote, cookie, now, &syn).ok()?;
        if let Some(h) = hop_limit {
            conn.set_hop_limit(h).ok();
        }
        conn.set_timestamp_offset(self.ts_offset(&tuple));
        if conn.complete_cookie_handshake(now, &ack).is_err() {
            self.listen_stats.cookies_refused += 1;
            return None;
        }
        let l = self.listeners.get_mut(&id.0)?;
        let link = l.queues.admit_established(cookie);
        self.listen_stats.unaccepted += 1;
        self.listen_stats.cookies_validated += 1;
        let handle = self.insert(tuple, Some(Linked { id, link }));
        Some(Route::Incoming {
            listener: id,
            handle,
            conn: Box::new(conn),
        })
    }

    /// RFC 9293 §3.10.7.1: if ACK, <SEQ=SEG.ACK><CTL=RST>; else
    /// <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>. An RST is never answered.
    fn reset_for(&mut self, src: IpAddr, dst: IpAddr, r: &TcpRepr, payload_len: usize) {
        if r.flags.rst() {
            return;
        }
        let reply = if r.flags.ack() {
            TcpRepr {
                src_port: r.dst_port,
                dst_port: r.src_port,
                seq: r.ack,
                ack: SeqNum::new(0),
                flags: TcpFlags::RST,
                window: 0,
                urgent: 0,
                options: TcpOptions::default(),
            }
        } else {
            let len = payload_len as u32 + r.flags.syn() as u32 + r.flags.fin() as u32;
            TcpRepr {
                src_port: r.dst_port,
                dst_port: r.src_port,
                seq: SeqNum::new(0),
                ack: r.seq + len,
                flags: TcpFlags::RST | TcpFlags::ACK,
                window: 0,
                urgent: 0,
                options: TcpOptions::default(),
            }
        };
        // Bounded: under a flood, replies beyond this are not queued.
        if self.replies.len() < 1024 {
            self.replies
                .push_back((dst, src, self.cfg.conn.hop_limit, reply));
        }
    }

    /// The next reply (an RST, or a TIME_WAIT record's ACK), headers
    /// appended to `buf`.
    #[must_use]
    pub fn poll_transmit(&mut self, buf: &mut BytesMut) -> Option<Transmit> {
        let (src, dst, hop_limit, repr) = self.replies.pop_front()?;
        let start = buf.len();
        wire::emit_ip_tcp(buf, src, dst, hop_limit, &repr, &[]);
        Some(Transmit {
            src,
            dst,
            header_len: buf.len() - start,
            repr,
            payload: Bytes::new(),
            payload_tail: Bytes::new(),
            gso_size: None,
            csum_partial: None,
        })
    }

    /// The TTL / hop limit a listener's accepted connections start with.
    pub fn listener_hop_limit(&self, id: ListenerId) -> Option<u8> {
        let l = self.listeners.get(&id.0)?;
        Some(l.hop_limit.unwrap_or(self.cfg.conn.hop_limit))
    }

    /// Sets the TTL / hop limit of the connections a listener accepts from
    /// now on (their SYN-ACK included).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for 0; [`Error::NotConnected`] for a listener
    /// that is gone.
    pub fn set_listener_hop_limit(&mut self, id: ListenerId, hop_limit: u8) -> Result<(), Error> {
        if hop_limit == 0 {
            return Err(Error::InvalidInput("a TTL / hop limit of 0"));
        }
        let l = self.listeners.get_mut(&id.0).ok_or(Error::NotConnected)?;
        l.hop_limit = Some(hop_limit);
        Ok(())
    }

    /// Sets the fixed receive buffer of the connections a listener accepts
    /// (`None`: the default): the runtime applies it to each connection
    /// before its SYN-ACK, and the endpoint's cookie SYN-ACKs, which no
    /// connection sends, offer its window and shift too.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for 0; [`Error::NotConnected`] for a listener
    /// that is gone.
    pub fn set_listener_recv_buffer(
        &mut self,
        id: ListenerId,
        size: Option<usize>,
    ) -> Result<(), Error> {
        if size == Some(0) {
            return Err(Error::InvalidInput("a receive buffer of 0 bytes"));
        }
        let l = self.listeners.get_mut(&id.0).ok_or(Error::NotConnected)?;
        l.recv_buffer = size;
        Ok(())
    }

    /// Whether a listener exists for this id.
    pub fn has_listener(&self, id: ListenerId) -> bool {
        self.listeners.contains_key(&id.0)
    }

    /// A listener's bound address.
    pub fn listener_addr(&self, id: ListenerId) -> Option<SocketAddr> {
        self.listeners.get(&id.0).map(|l| l.addr)
    }
}

/// Neither broadcast nor multicast (RFC 1122 §4.2.3.10). A subnet's directed
/// broadcast address is not known here; the limited broadcast is.
fn is_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !a.is_broadcast() && !a.is_multicast(),
        IpAddr::V6(a) => !a.is_multicast(),
    }
}

fn hash_ip(h: &mut SipHasher13, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => h.write(&a.octets()),
        IpAddr::V6(a) => h.write(&a.octets()),
    }
}
