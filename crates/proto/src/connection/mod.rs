//! One TCP connection, sans-IO.
//!
//! Inputs: [`Connection::handle_segment`], [`Connection::handle_timeout`] and the
//! user's calls ([`Connection::send`], [`Connection::recv`],
//! [`Connection::shutdown`], [`Connection::close`], [`Connection::abort`]).
//! Outputs, drained after every input in this order: [`Connection::poll_transmit`]
//! until `None`, then [`Connection::poll_timeout`], then [`Connection::poll_event`].

mod ack;
mod autotune;
mod budget;
mod chrono;
mod delack;
mod frto;
mod handshake;
mod icmp;
mod input;
mod keepalive;
mod loss;
mod nagle;
pub(crate) mod options;
mod output;
mod pacing;
mod pending;
mod rack;
mod reassembly;
mod recovery;
mod recv;
mod rtt;
mod send;
mod sent;
mod sockopt;
pub mod state;
mod timeout;
pub mod timer;
mod tlp;
mod transition;
mod types;
#[cfg(test)]
mod wrap_tests;

use crate::config::Config;
use crate::congestion::{self, CongestionControl};
use crate::error::Error;
use crate::seq::SeqNum;
use crate::time::Instant;
use crate::timewait::{TimeWait, TwState};
use crate::wire::TcpRepr;
use autotune::AutoTune;
use budget::ReplyBudget;
use chrono::{Chrono, Limit};
use frto::Frto;
use handshake::Handshake;
use options::Negotiated;
use pacing::Pacer;
use pending::Pending;
use rack::Rack;
pub use recovery::CaState;
use recovery::Recovery;
pub use recv::MemoryPressure;
use recv::RecvSpace;
use rtt::RttEstimator;
use send::SendSpace;
use sent::Scoreboard;
use sockopt::SockOpts;
pub use state::State;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use timer::{Timer, TimerTable};
use tlp::Tlp;
use types::Counters;
pub use types::{CongestionCause, CongestionEvent, Event, Segment, Stats, Transmit};

/// One TCP connection's state machine (RFC 9293), with its buffers.
///
/// The TCB is in parts with one job each: the send sequence space, the
/// receive sequence space (with the reassembly), the negotiated options, the handshake's
/// own state, the RTT estimator, the congestion controller and the recovery
/// episode, the timers, and what the next `poll_transmit` owes.
pub struct Connection {
    /// The configuration, shared with the endpoint's other connections:
    /// what one connection may change is in `sock`.
    cfg: Arc<Config>,
    /// The options this connection's application may change.
    sock: SockOpts,
    local: SocketAddr,
    remote: SocketAddr,
    state: State,
    span: tracing::Span,
    passive: bool,

    /// Send sequence space (RFC 9293 §3.3.1) and the send buffer.
    snd: SendSpace,
    /// Receive sequence space and the receive buffer with its reassembly.
    rcv: RecvSpace,
    /// What the handshake negotiated.
    opts: Negotiated,
    /// State that lives only until our SYN is acknowledged.
    handshake: Handshake,
    /// What was sent, when, how often; what is deemed lost; the segment
    /// being timed (Karn).
    sent: Scoreboard,
    /// SRTT / RTTVAR / RTO.
    rtt: RttEstimator,
    /// The congestion controller: how cwnd grows and backs off.
    cc: Box<dyn CongestionControl>,
    /// Loss detection and the recovery episode.
    recovery: Recovery,
    /// RACK's loss-detection state (RFC 8985 §6).
    rack: Rack,
    /// The tail loss probe in flight (RFC 8985 §7).
    tlp: Tlp,
    /// What held the sender back, over time, and the delivery rate.
    chrono: Chrono,
    /// F-RTO's judgement of a timeout (RFC 5682), without timestamps.
    frto: Frto,
    /// Buffer auto-tuning (Linux's tcp_rcv_space_adjust / tcp_sndbuf_expand).
    autotune: AutoTune,
    /// The deadlines and their retry counters.
    timers: TimerTable,
    /// The pacing clock (Linux's internal TCP pacing).
    pacer: Pacer,
    /// Keepalive's idle clock and unanswered probes.
    keepalive: keepalive::Keepalive,
    /// Nagle's algorithm: the end of the last small segment sent.
    nagle: nagle::Nagle,
    /// When in-order data is acknowledged: quickack and interactive modes.
    ack_policy: delack::AckPolicy,
    /// What the next `poll_transmit` owes.
    pending: Pending,
    /// The per-connection budget of unsolicited replies (RFC 5961 §7).
    budget: ReplyBudget,
    /// The application closed its handle (no more reads).
    orphaned: bool,
    error: Option<Error>,
    /// The last soft ICMP error (destination unreachable on a synchronized
    /// connection): what a later timeout reports instead of `TimedOut`.
    soft_error: Option<Error>,
    /// The segment being processed (flags, SEQ, ACK, payload length), for
    /// the transition log.
    cur_seg: Option<(crate::wire::TcpFlags, SeqNum, SeqNum, u32)>,
    events: VecDeque<Event>,
    stats: Counters,
    /// The TIME_WAIT record, from entering TIME_WAIT on: the one
    /// implementation of its rules (`crate::timewait`), which the endpoint's
    /// table takes over.
    tw: Option<TwState>,
}

/// Frees an empty queue's room (kept from when it held something); the
/// bytes freed. A queue that holds anything keeps it.
pub(crate) fn free_if_empty<T>(q: &mut VecDeque<T>) -> usize {
    if !q.is_empty() || q.capacity() == 0 {
        return 0;
    }
    let freed = q.capacity() * core::mem::size_of::<T>();
    *q = VecDeque::new();
    freed
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("state", &self.state)
            .field("snd_una", &self.snd.una)
            .field("snd_max", &self.snd.max)
            .field("rcv_nxt", &self.rcv.nxt)
            .finish()
    }
}

impl Connection {
    fn new(
        cfg: Arc<Config>,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNum,
        now: Instant,
        passive: bool,
    ) -> Self {
        let span = tracing::debug_span!("tcp", local = %local, remote = %remote);
        let opts = Negotiated::new(&cfg, &remote);
        let smss = opts.smss;
        Connection {
            rtt: RttEstimator::new(cfg.rto_initial, cfg.rto_min, cfg.rto_max),
            snd: SendSpace::new(iss, cfg.send_buffer),
            rcv: RecvSpace::new(cfg.recv_buffer, cfg.max_ooo_ranges),
            opts,
            handshake: Handshake::default(),
            sent: Scoreboard::default(),
            cc: congestion::new_controller(cfg.congestion, smss),
            recovery: Recovery::new(smss),
            rack: Rack::default(),
            tlp: Tlp::default(),
            chrono: Chrono::default(),
            frto: Frto::default(),
            autotune: AutoTune::new(
                cfg.recv_buffer,
                cfg.recv_buffer_max,
                cfg.send_buffer,
                cfg.send_buffer_max,
                smss,
            ),
            timers: TimerTable::default(),
            pacer: Pacer::default(),
            keepalive: keepalive::Keepalive::new(now),
            nagle: nagle::Nagle::new(iss),
            ack_policy: delack::AckPolicy::new(),
            pending: Pending::default(),
            budget: ReplyBudget::new(now),
            local,
            remote,
            state: State::Closed,
            span,
            passive,
            orphaned: false,
            error: None,
            soft_error: None,
            cur_seg: None,
            events: VecDeque::new(),
            stats: Counters::default(),
            tw: None,
            sock: SockOpts::from_config(&cfg),
            cfg,
        }
    }

    /// Active open: a connection in SYN_SENT whose SYN leaves at the next
    /// [`poll_transmit`](Self::poll_transmit).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the two addresses are of different families
    /// or the remote port is 0.
    ///
    /// `cfg` is a [`Config`] or an `Arc<Config>`: connections made from one
    /// `Arc` share it (an endpoint's do), and what one of them changes with
    /// its socket options stays its own.
    pub fn connect(
        cfg: impl Into<Arc<Config>>,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNum,
        now: Instant,
    ) -> Result<Self, Error> {
        check_addrs(local, remote)?;
        let mut c = Connection::new(cfg.into(), local, remote, iss, now, false);
        c.handshake.syn_pending = true;
        c.set_state(State::SynSent, "connect");
        c.timers.set(Timer::Rto, now + c.rtt.rto());
        Ok(c)
    }

    /// Passive open: the endpoint received `syn` for a listener; the connection
    /// is in SYN_RECEIVED and its SYN-ACK leaves at the next poll.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `syn` is not a SYN (or carries ACK or RST),
    /// or the addresses are of different families.
    ///
    /// `cfg` is a [`Config`] or a shared `Arc<Config>`, as for
    /// [`connect`](Self::connect).
    pub fn accept(
        cfg: impl Into<Arc<Config>>,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNum,
        now: Instant,
        syn: &TcpRepr,
    ) -> Result<Self, Error> {
        check_addrs(local, remote)?;
        if !syn.flags.syn() || syn.flags.ack() || syn.flags.rst() {
            return Err(Error::InvalidInput("accept needs a SYN without ACK or RST"));
        }
        let mut c = Connection::new(cfg.into(), local, remote, iss, now, true);
        c.state = State::Listen;
        // RFC 9293 §3.10.7.2, LISTEN, fourth: RCV.NXT = SEG.SEQ+1, IRS = SEG.SEQ.
        c.rcv.irs = syn.seq;
        c.rcv.nxt = syn.seq + 1;
        c.rcv.adv = c.rcv.nxt;
        c.apply_syn_options(now, syn);
        c.snd.wnd = syn.window as u32;
        c.snd.max_wnd = c.snd.wnd;
        c.snd.wl1 = syn.seq;
        c.snd.wl2 = iss;
        c.handshake.syn_pending = true;
        c.cur_seg = Some((syn.flags, syn.seq, syn.ack, 0));
        c.set_state(State::SynReceived, "SYN");
        c.cur_seg = None;
        c.timers.set(Timer::Rto, now + c.rtt.rto());
        Ok(c)
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Local address and port.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Remote address and port.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    /// Whether this connection came from a listener.
    pub fn is_passive(&self) -> bool {
        self.passive
    }

    /// The error that ended the connection, if any.
    pub fn error(&self) -> Option<Error> {
        self.error
    }

    /// The tracing span of this connection (local and remote address).
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Our initial sequence number.
    pub fn iss(&self) -> SeqNum {
        self.snd.iss
    }

    /// The highest sequence number sent so far (SND.NXT before any
    /// go-back-N after an RTO).
    pub fn snd_max(&self) -> SeqNum {
        self.snd.max
    }

    /// RCV.NXT.
    pub fn rcv_nxt(&self) -> SeqNum {
        self.rcv.nxt
    }

    /// Bytes the application can read now.
    pub fn readable(&self) -> usize {
        self.rcv.buf.readable()
    }

    /// Whether the peer's FIN has been received (reads end after the buffered data).
    pub fn peer_closed(&self) -> bool {
        self.rcv.fin_received
    }

    /// Free space in the send buffer.
    pub fn send_space(&self) -> usize {
        if self.state.can_send() && !self.snd.fin_queued && self.error.is_none() {
            self.snd.buf.space()
        } else {
            0
        }
    }

    /// Bytes queued and not yet acknowledged.
    pub fn send_queued(&self) -> usize {
        self.snd.buf.len()
    }

    /// A TCP_INFO-like snapshot.
    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        self.stats.fill(&mut s);
        s.srtt = self.rtt.srtt();
        s.rttvar = self.rtt.rttvar();
        s.rto = self.rtt.rto();
        s.cwnd = self.cc.cwnd();
        s.ssthresh = self.cc.ssthresh();
        s.in_recovery = self.recovery.in_recovery();
        s.mss = self.opts.smss;
        s.send_window = self.snd.wnd;
        s.recv_window = self.rcv.adv.diff(self.rcv.nxt).max(0) as u32;
        s.snd_wscale = self.opts.ws.then_some(self.opts.snd_wscale);
        s.rcv_wscale = self.opts.ws.then_some(self.opts.rcv_wscale);
        s.timestamps = self.opts.ts.on;
        s.sack = self.opts.sack;
        s.sacked_bytes = self.sent.sacked_bytes();
        s.lost_bytes = self.sent.lost_bytes();
        s.unacked = self.snd.flight();
        s.ca_state = self
            .recovery
            .ca_state(self.sent.sacked_bytes() > 0 && !self.recovery.in_recovery());
        s.reordering_seen = self.rack.reordering_seen();
        s.reordering = self.rack.reordering(self.opts.smss);
        s.retrans_bytes = self.sent.retrans_bytes();
        s.reo_wnd_mult = self.rack.reo_wnd_mult();
        s.min_rtt = self.rack.min_rtt();
        s.state = self.state;
        s.delivery_rate = self.chrono.rate;
        s.cwnd_limited_us = self.chrono.time(Limit::Cwnd);
        s.rwnd_limited_us = self.chrono.time(Limit::Rwnd);
        s.sndbuf_limited_us = self.chrono.time(Limit::Sndbuf);
        s.rcv_rtt = self.autotune.rcv_rtt();
        s.rcv_space = self.autotune.rcv_space() as u32;
        s.send_buffer = self.snd.buf.limit() as u32;
        s.recv_buffer = self.rcv.buf.limit() as u32;
        s.congestion = self.cc.algorithm();
        s.slow_start_exit = self.cc.slow_start_exit();
        s.rcv_memory = self.rcv.buf.memory();
        s.rcv_ooo_pruned = self.rcv.buf.ooo_pruned;
        s.rcv_memory_drops = self.rcv.buf.memory_drops;
        s.rcv_collapsed = self.rcv.buf.collapsed;
        s.pacing_rate = self.pacing_rate().unwrap_or(0);
        s.pacing_held = self.pacer.held;
        s
    }

    /// The memory the receive side holds: for every readable chunk the
    /// buffer it keeps alive (a referenced device buffer by its true size,
    /// its share of the device's read arena, given with
    /// [`handle_segment_sized`](Self::handle_segment_sized); a copy buffer by
    /// its capacity), and the out-of-order ranges' buffers, held and
    /// reserved. The runtime sums it over its connections against the
    /// stack's limits ([`MemoryPressure`]).
    ///
    /// It stays under 2 × `recv_buffer` + 64 KiB whatever the peer sends:
    /// the window bounds the payload, out-of-order buffers are reserved
    /// only within what the window can still bring and their count (holes)
    /// is bounded, small or out-of-order payloads are copied (they pin
    /// nothing), at most 64 device buffers are kept referenced, and once
    /// their true sizes take the total over twice the receive buffer they
    /// are copied out (collapsed, [`Stats::rcv_collapsed`]);
    /// `tests/alloc_rcv_memory.rs` tries the adversarial patterns with a
    /// counting allocator.
    pub fn recv_memory(&self) -> usize {
        self.rcv.buf.memory()
    }

    /// Tells the connection where the stack's receive memory stands (see
    /// [`MemoryPressure`]); call before handing it segments. From
    /// [`MemoryPressure::Pressure`] on, held out-of-order data is dropped at
    /// once and the window stops growing; the advertised right edge never
    /// moves left.
    pub fn set_memory_pressure(&mut self, p: MemoryPressure) {
        let was = self.rcv.buf.pressure();
        self.rcv.buf.set_pressure(p);
        if was != MemoryPressure::Normal && p == MemoryPressure::Normal && self.state.can_receive()
        {
            // The window may grow again: tell the peer (a window update).
            self.pending.ack = true;
        }
    }

    /// Gives back the capacity of the connection's queues that are empty
    /// now: the record of what is in flight, the event queue, owed ACKs,
    /// and the segment lists of drained send and receive buffers. As they
    /// drain, these queues keep a little room, so that a busy connection
    /// allocates nothing per segment; a runtime calls this once a
    /// connection went idle for a while, so that an idle connection holds
    /// almost nothing (DESIGN). Nothing is lost: a queue that still holds
    /// anything keeps its room. Returns the heap bytes freed.
    ///
    /// ```
    /// # use utcp_proto::{Config, Connection, Instant, SeqNum, State};
    /// let mut conn = Connection::connect(
    ///     Config::default(),
    ///     "10.0.0.1:40000".parse().unwrap(),
    ///     "10.0.0.2:80".parse().unwrap(),
    ///     SeqNum::new(1),
    ///     Instant::ZERO,
    /// )
    /// .unwrap();
    /// let mut buf = bytes::BytesMut::new();
    /// assert!(conn.poll_transmit(Instant::ZERO, &mut buf).is_some()); // the SYN
    /// while conn.poll_event().is_some() {}
    /// // The SYN is in flight: its record keeps its room; the drained
    /// // event queue gives its room back.
    /// assert!(conn.release_idle_memory() > 0);
    /// assert_eq!(conn.release_idle_memory(), 0);
    /// assert_eq!(conn.state(), State::SynSent);
    /// ```
    pub fn release_idle_memory(&mut self) -> usize {
        self.sent.release_idle()
            + free_if_empty(&mut self.events)
            + free_if_empty(&mut self.pending.owed_acks)
            + self.snd.buf.release_idle()
            + self.rcv.buf.release_idle()
    }

    /// Sets the offset of this connection's timestamp clock (RFC 7323 §5.4:
    /// TSval = offset + a 1 ms clock). The endpoint draws it per address
    /// pair from its secret, so that successive connections between two
    /// hosts keep monotonic timestamps (RFC 6191) while nobody else can
    /// tell the host's uptime. Call before the first `poll_transmit`.
    pub fn set_timestamp_offset(&mut self, offset: u32) {
        self.opts.ts.offset = offset;
    }

    /// Queues application data; returns how many bytes were taken (0 when the
    /// buffer is full: wait for [`Event::Writable`]).
    ///
    /// # Errors
    /// The connection's error if it failed (reset, timed out, refused;
    /// [`Error::BrokenPipe`] when we aborted it); [`Error::BrokenPipe`] after
    /// `shutdown` / `close`, and in every state that can no longer send
    /// (CLOSED included).
    pub fn send(&mut self, data: &[u8]) -> Result<usize, Error> {
        if let Some(e) = self.error {
            return Err(match e {
                Error::ConnectionAborted => Error::BrokenPipe,
                e => e,
            });
        }
        if self.snd.fin_queued || !self.state.can_send() {
            return Err(Error::BrokenPipe);
        }
        let n = self.snd.buf.write(data);
        if n > 0 {
            self.pending.flush_hint = true;
        }
        Ok(n)
    }

    /// Copies received bytes into `buf`. `Ok(Some(n))` with n > 0: data;
    /// `Ok(Some(0))`: the peer closed and everything was read (EOF); `Ok(None)`:
    /// nothing yet (wait for [`Event::Readable`]).
    ///
    /// # Errors
    /// The connection's error (reset, timed out, refused) once buffered data is
    /// drained.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Error> {
        if buf.is_empty() {
            return Ok(Some(0));
        }
        let n = self.rcv.buf.read(buf);
        if n > 0 {
            self.autotune.on_read(n);
            if self.state.can_receive() {
                // An owed ACK or a window update, merged (`delack.rs`).
                self.ack_policy_after_read();
            }
            return Ok(Some(n));
        }
        self.nothing_readable()
    }

    /// Received bytes without a copy: up to `max` bytes from the front of
    /// the receive buffer, as a slice of the buffer they arrived in (a
    /// device's read buffer, kept alive while the `Bytes` lives).
    /// `Ok(Some(b))` with `b` non-empty: data (possibly less than is
    /// readable: one received chunk at a time); `Ok(Some(empty))`: EOF;
    /// `Ok(None)`: nothing yet. The bytes leave the receive buffer (and
    /// its memory accounting) at once, so the window opens as with
    /// [`recv`](Self::recv).
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn recv_bytes(&mut self, max: usize) -> Result<Option<bytes::Bytes>, Error> {
        if max == 0 {
            return Ok(Some(bytes::Bytes::new()));
        }
        let b = self.rcv.buf.read_bytes(max);
        if !b.is_empty() {
            self.autotune.on_read(b.len());
            if self.state.can_receive() {
                self.ack_policy_after_read();
            }
            return Ok(Some(b));
        }
        self.nothing_readable()
            .map(|r| r.map(|_| bytes::Bytes::new()))
    }

    /// Copies received bytes into `buf` without consuming them (the next
    /// [`recv`](Self::recv) returns them again). Same results as `recv`
    /// otherwise: `Ok(Some(0))` at EOF, `Ok(None)` when nothing is readable yet.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn peek(&self, buf: &mut [u8]) -> Result<Option<usize>, Error> {
        if buf.is_empty() {
            return Ok(Some(0));
        }
        let n = self.rcv.buf.peek(buf);
        if n > 0 {
            return Ok(Some(n));
        }
        self.nothing_readable()
    }

    /// What `recv` and `peek` say when no byte is readable: EOF after the
    /// peer's FIN or once CLOSED, the error, or nothing yet.
    fn nothing_readable(&self) -> Result<Option<usize>, Error> {
        if self.rcv.fin_received {
            return Ok(Some(0));
        }
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.state == State::Closed {
            return Ok(Some(0));
        }
        Ok(None)
    }

    /// The IP TTL / hop limit of this connection's segments.
    pub fn hop_limit(&self) -> u8 {
        self.sock.hop_limit
    }

    /// Sets the IP TTL / hop limit of this connection's later segments.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for 0 (no segment could leave the host).
    pub fn set_hop_limit(&mut self, hop_limit: u8) -> Result<(), Error> {
        if hop_limit == 0 {
            return Err(Error::InvalidInput("a TTL / hop limit of 0"));
        }
        self.sock.hop_limit = hop_limit;
        Ok(())
    }

    /// Whether a user call left something to transmit (a window update, new
    /// data); clears the hint. The runtime wakes the connection's task on it.
    pub fn take_flush_hint(&mut self) -> bool {
        core::mem::take(&mut self.pending.flush_hint)
    }

    /// Shuts down writing: FIN after the queued data. Reading goes on
    /// (half-close). Idempotent.
    pub fn shutdown(&mut self, _now: Instant) {
        match self.state {
            // RFC 9293 §3.10.4, CLOSE in SYN_SENT: delete the TCB (and report
            // CLOSED like every other way there).
            State::SynSent => {
                self.snd.buf.clear();
                self.enter_closed("shutdown in SYN_SENT");
            }
            // RFC 9293 §3.10.4, CLOSE in SYN_RECEIVED: with nothing queued, send
            // the FIN now and enter FIN_WAIT_1 (Linux `tcp_close_state`);
            // otherwise the FIN waits for ESTABLISHED, after the data.
            State::SynReceived if !self.snd.fin_queued => {
                self.queue_fin();
                if self.snd.buf.len() == 0 {
                    self.set_state(State::FinWait1, "shutdown");
                }
            }
            State::Established if !self.snd.fin_queued => {
                self.queue_fin();
                self.set_state(State::FinWait1, "shutdown");
            }
            State::CloseWait if !self.snd.fin_queued => {
                self.queue_fin();
                self.set_state(State::LastAck, "shutdown");
            }
            _ => {}
        }
    }

    /// The application is done with the connection. With unread received data
    /// this aborts with RST (as the kernel does); otherwise it shuts down
    /// writing and the connection lives on until the close completes (an
    /// orphaned FIN_WAIT_2 ends after `fin_wait2_timeout`).
    pub fn close(&mut self, now: Instant) {
        self.orphaned = true;
        if self.rcv.buf.readable() > 0 && self.state != State::Closed {
            self.abort_with(now, Error::ConnectionAborted, "close with unread data");
            return;
        }
        self.shutdown(now);
        if self.state == State::FinWait2 {
            self.timers
                .set(Timer::FinWait2, now + self.cfg.fin_wait2_timeout);
        }
    }

    /// Aborts: RST to the peer (when synchronized or SYN_RECEIVED), CLOSED, and
    /// [`Error::ConnectionAborted`] for later calls.
    pub fn abort(&mut self, now: Instant) {
        self.abort_with(now, Error::ConnectionAborted, "abort");
    }

    /// Ends the connection because the network under it failed (the
    /// device is gone): as [`abort`](Self::abort), its error
    /// [`Error::NetworkDown`].
    pub fn abort_network_down(&mut self, now: Instant) {
        self.abort_with(now, Error::NetworkDown, "device failed");
    }

    /// The earliest deadline at which [`handle_timeout`](Self::handle_timeout)
    /// must be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// The next event, if any.
    #[must_use]
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether the connection is finished: CLOSED with nothing left to send.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed && self.pending.rst.is_none()
    }

    /// In TIME_WAIT, its record: what the endpoint's TIME_WAIT table keeps
    /// once the connection is freed ([`Endpoint::enter_time_wait`](crate::Endpoint::enter_time_wait)).
    pub fn time_wait_record(&self) -> Option<TimeWait> {
        if self.state != State::TimeWait {
            return None;
        }
        self.tw.map(|st| TimeWait::new(self.local, self.remote, st))
    }

    /// Frees what a finished connection no longer needs once its record went
    /// to the endpoint (or it closed): the send buffer, the scoreboard, the
    /// reassembly, queued events and timers. Bytes received in order and not
    /// read yet stay readable; reads then see EOF, writes fail.
    pub fn retire(&mut self) {
        self.timers.stop_all();
        self.snd.buf.clear();
        self.sent = Scoreboard::default();
        self.rcv.buf.retire();
        self.pending = Pending::default();
        self.events = VecDeque::new();
        self.tw = None;
        self.handshake = Handshake::default();
    }

    /// Handles the deadline(s) due at `now`. A call before any deadline does
    /// nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(t) = self.timers.take_expired(now) {
            match t {
                Timer::Rto => self.on_rto(now),
                Timer::Reorder => self.on_reorder_timeout(now),
                Timer::Probe => self.on_probe_timeout(now),
                Timer::Persist => self.on_persist(now),
                Timer::FinWait2 => {
                    if self.state == State::FinWait2 {
                        self.snd.buf.clear();
                        self.rcv.buf.clear();
                        self.enter_closed("FIN_WAIT_2 timeout");
                    }
                }
                Timer::TimeWait => {
                    if self.state == State::TimeWait {
                        self.enter_closed("2MSL timeout");
                    }
                }
                // Linux's tcp_pace_kick: the next poll_transmit sends what
                // the pacing clock now allows.
                Timer::Pace => {}
                Timer::Keepalive => self.on_keepalive(now),
                Timer::UserTimeout => self.on_user_timeout(),
                Timer::DelayedAck => self.on_delayed_ack_timeout(),
            }
        }
    }

    /// Queues `Readable` or `Writable` unless the same event is queued
    /// already: one tells the application all it needs until it drains the
    /// queue, and the queue stays a few entries long however large a batch.
    fn notify(&mut self, e: Event) {
        // Usually the queue is empty (drained after every input): no search.
        if self.events.is_empty() || !self.events.iter().any(|q| *q == e) {
            self.events.push_back(e);
        }
    }

    fn queue_fin(&mut self) {
        self.snd.fin_seq = self.snd.data_seq0() + self.snd.buf.len() as u32;
        self.snd.fin_queued = true;
        self.pending.flush_hint = true;
    }
}

fn check_addrs(local: SocketAddr, remote: SocketAddr) -> Result<(), Error> {
    if local.is_ipv4() != remote.is_ipv4() {
        return Err(Error::InvalidInput(
            "local and remote address families differ",
        ));
    }
    if remote.port() == 0 || local.port() == 0 {
        return Err(Error::InvalidInput("port 0"));
    }
    Ok(())
}
