//! One TCP connection, sans-IO.
//!
//! Inputs: [`Connection::handle_segment`], [`Connection::handle_timeout`] and the
//! user's calls ([`Connection::send`], [`Connection::recv`],
//! [`Connection::shutdown`], [`Connection::close`], [`Connection::abort`]).
//! Outputs, drained after every input in this order: [`Connection::poll_transmit`]
//! until `None`, then [`Connection::poll_timeout`], then [`Connection::poll_event`].

mod input;
mod output;
mod reassembly;
mod recovery;
mod recv;
mod rtt;
mod send;
pub mod state;
pub mod timer;
#[cfg(test)]
mod wrap_tests;

use crate::config::Config;
use crate::congestion::{CongestionControl, Reno};
use crate::error::Error;
use crate::seq::SeqNum;
use crate::time::{Duration, Instant};
use crate::wire::TcpRepr;
use bytes::Bytes;
use recovery::Recovery;
use recv::RecvBuffer;
use rtt::RttEstimator;
use send::SendBuffer;
pub use state::State;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use timer::{Timer, TimerTable};

/// A parsed incoming segment: the header and its payload.
#[derive(Clone, Debug)]
pub struct Segment {
    /// The TCP header.
    pub repr: TcpRepr,
    /// The payload (a slice of the device's buffer).
    pub payload: Bytes,
}

impl Segment {
    /// SEG.LEN: payload plus one for SYN and one for FIN.
    pub fn len(&self) -> u32 {
        self.payload.len() as u32 + self.repr.flags.syn() as u32 + self.repr.flags.fin() as u32
    }

    /// Whether the segment occupies no sequence space.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A segment to send: its IP and TCP headers were appended to the caller's
/// buffer (`header_len` bytes); the payload is a zero-copy slice of the send
/// buffer, to be written after them.
#[derive(Clone, Debug)]
pub struct Transmit {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Bytes of IP + TCP header appended to the buffer.
    pub header_len: usize,
    /// The TCP header that was written (for tracing and captures).
    pub repr: TcpRepr,
    /// The payload.
    pub payload: Bytes,
}

/// Something the application may want to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The state changed.
    StateChanged {
        /// Old state.
        from: State,
        /// New state.
        to: State,
    },
    /// The handshake completed.
    Connected,
    /// New data (or the peer's FIN) can be read.
    Readable,
    /// Send buffer space was freed.
    Writable,
    /// The connection failed; the error is also in [`Connection::error`].
    Error(Error),
    /// The connection reached CLOSED; nothing more will happen.
    Closed,
}

/// A TCP_INFO-like snapshot of a connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Smoothed RTT, if measured.
    pub srtt: Option<Duration>,
    /// RTT variation.
    pub rttvar: Duration,
    /// Current retransmission timeout.
    pub rto: Duration,
    /// Congestion window in bytes.
    pub cwnd: u32,
    /// Slow-start threshold in bytes (`u32::MAX` until the first loss).
    pub ssthresh: u32,
    /// Effective send MSS.
    pub mss: u32,
    /// Payload bytes sent, first transmissions and retransmissions.
    pub bytes_sent: u64,
    /// Payload bytes retransmitted.
    pub bytes_retransmitted: u64,
    /// Segments sent.
    pub segments_sent: u64,
    /// Segments retransmitted (data, SYN or FIN).
    pub segments_retransmitted: u64,
    /// Segments received.
    pub segments_received: u64,
    /// Payload bytes received in order.
    pub bytes_received: u64,
    /// Peer's window, in bytes.
    pub send_window: u32,
    /// Window we advertise, in bytes.
    pub recv_window: u32,
    /// Retransmission timeouts that fired.
    pub rto_count: u64,
    /// Fast retransmits.
    pub fast_retransmits: u64,
    /// In NewReno fast recovery (RFC 6582).
    pub in_recovery: bool,
}

/// One TCP connection's state machine (RFC 9293), with its buffers.
pub struct Connection {
    cfg: Config,
    local: SocketAddr,
    remote: SocketAddr,
    state: State,
    span: tracing::Span,
    passive: bool,

    // Send side (RFC 9293 §3.3.1).
    iss: SeqNum,
    snd_una: SeqNum,
    snd_nxt: SeqNum,
    /// Highest sequence number sent (snd.nxt can go back after an RTO).
    snd_max: SeqNum,
    snd_wnd: u32,
    max_snd_wnd: u32,
    snd_wl1: SeqNum,
    snd_wl2: SeqNum,
    /// The MSS we advertise: the configured cap and this family's MTU room.
    adv_mss: u16,
    smss: u32,
    send_buf: SendBuffer,
    /// The application shut down writing: FIN goes after the queued data.
    fin_queued: bool,
    /// Our FIN's sequence number, fixed when it is queued (no writes after).
    fin_seq: SeqNum,

    // Receive side.
    irs: SeqNum,
    rcv_nxt: SeqNum,
    /// Right edge of the window we last advertised (never moved left).
    rcv_adv: SeqNum,
    recv_buf: RecvBuffer,
    fin_received: bool,

    // Control.
    timers: TimerTable,
    rtt: RttEstimator,
    /// The segment being timed (Karn: at most one, never a retransmission).
    rtt_probe: Option<(SeqNum, Instant)>,
    retries: u32,
    /// Our SYN was retransmitted by the RTO (RFC 6298 §5.7).
    syn_retransmitted: bool,
    /// SYN or SYN-ACK retransmissions, by timeout or for a repeated SYN
    /// (Linux's `total_retrans` at the end of the handshake).
    syn_retransmits: u32,
    /// Our SYN has been acknowledged. Kept as a flag, not derived from
    /// SND.UNA = ISS, which recurs after 2^32 acknowledged bytes.
    syn_acked: bool,
    /// The congestion controller: how cwnd grows and backs off.
    cc: Box<dyn CongestionControl>,
    /// Loss detection and the recovery episode.
    recovery: Recovery,
    /// Send SYN (SYN_SENT) or SYN-ACK (after the peer's SYN) at the next poll.
    syn_pending: bool,
    /// Send a cumulative ACK at the next poll (unless a data segment carries it).
    ack_pending: bool,
    /// Immediate ACKs owed, oldest first, each with the RCV.NXT it acknowledges:
    /// one per out-of-order, duplicate or hole-filling segment, in arrival
    /// order (DESIGN "Transmit"; RFC 5681 §4.2), however the runtime batches.
    owed_acks: VecDeque<SeqNum>,
    /// Unanswered zero-window probes (RFC 1122 §4.2.2.17); reset by any
    /// acceptable ACK.
    probes_out: u32,
    /// Retransmit the first unacknowledged segment at the next poll.
    retransmit_first: bool,
    /// Send a zero-window probe at the next poll.
    probe_pending: bool,
    persist_backoff: u32,
    /// An RST to send: (SEQ, Some(ACK) for RST|ACK).
    rst_pending: Option<(SeqNum, Option<SeqNum>)>,
    challenge_window: Instant,
    challenge_count: u32,
    /// The application closed its handle (no more reads).
    orphaned: bool,
    /// The application read a change worth a window update.
    flush_hint: bool,
    error: Option<Error>,
    /// The segment being processed (flags, SEQ, ACK, payload length), for
    /// the transition log.
    cur_seg: Option<(crate::wire::TcpFlags, SeqNum, SeqNum, u32)>,
    events: VecDeque<Event>,
    stats: Stats,
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("state", &self.state)
            .field("snd_una", &self.snd_una)
            .field("snd_nxt", &self.snd_nxt)
            .field("rcv_nxt", &self.rcv_nxt)
            .finish()
    }
}

impl Connection {
    fn new(
        cfg: Config,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNum,
        now: Instant,
        passive: bool,
    ) -> Self {
        let span = tracing::debug_span!("tcp", local = %local, remote = %remote);
        let adv_mss = cfg.mss_for(remote.is_ipv6());
        let smss = default_mss(&remote).min(adv_mss as u32);
        Connection {
            rtt: RttEstimator::new(cfg.rto_initial, cfg.rto_min, cfg.rto_max),
            send_buf: SendBuffer::new(cfg.send_buffer),
            recv_buf: RecvBuffer::new(cfg.recv_buffer, cfg.max_ooo_ranges),
            cc: Box::new(Reno::new(smss)),
            recovery: Recovery::new(smss),
            local,
            remote,
            state: State::Closed,
            span,
            passive,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: SeqNum::new(0),
            snd_wl2: iss,
            adv_mss,
            smss,
            fin_queued: false,
            fin_seq: iss,
            irs: SeqNum::new(0),
            rcv_nxt: SeqNum::new(0),
            rcv_adv: SeqNum::new(0),
            fin_received: false,
            timers: TimerTable::default(),
            rtt_probe: None,
            retries: 0,
            syn_retransmitted: false,
            syn_retransmits: 0,
            syn_acked: false,
            syn_pending: false,
            ack_pending: false,
            owed_acks: VecDeque::new(),
            probes_out: 0,
            retransmit_first: false,
            probe_pending: false,
            persist_backoff: 0,
            rst_pending: None,
            challenge_window: now,
            challenge_count: 0,
            orphaned: false,
            flush_hint: false,
            error: None,
            cur_seg: None,
            events: VecDeque::new(),
            stats: Stats::default(),
            cfg,
        }
    }

    /// Active open: a connection in SYN_SENT whose SYN leaves at the next
    /// [`poll_transmit`](Self::poll_transmit).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the two addresses are of different families
    /// or the remote port is 0.
    pub fn connect(
        cfg: Config,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNum,
        now: Instant,
    ) -> Result<Self, Error> {
        check_addrs(local, remote)?;
        let mut c = Connection::new(cfg, local, remote, iss, now, false);
        c.syn_pending = true;
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
    pub fn accept(
        cfg: Config,
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
        let mut c = Connection::new(cfg, local, remote, iss, now, true);
        c.state = State::Listen;
        // RFC 9293 §3.10.7.2, LISTEN, fourth: RCV.NXT = SEG.SEQ+1, IRS = SEG.SEQ.
        c.irs = syn.seq;
        c.rcv_nxt = syn.seq + 1;
        c.rcv_adv = c.rcv_nxt;
        c.apply_syn_options(syn);
        c.snd_wnd = syn.window as u32;
        c.max_snd_wnd = c.snd_wnd;
        c.snd_wl1 = syn.seq;
        c.snd_wl2 = iss;
        c.syn_pending = true;
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
        self.iss
    }

    /// The highest sequence number sent so far (SND.NXT before any
    /// go-back-N after an RTO).
    pub fn snd_max(&self) -> SeqNum {
        self.snd_max
    }

    /// RCV.NXT.
    pub fn rcv_nxt(&self) -> SeqNum {
        self.rcv_nxt
    }

    /// Bytes the application can read now.
    pub fn readable(&self) -> usize {
        self.recv_buf.readable()
    }

    /// Whether the peer's FIN has been received (reads end after the buffered data).
    pub fn peer_closed(&self) -> bool {
        self.fin_received
    }

    /// Free space in the send buffer.
    pub fn send_space(&self) -> usize {
        if self.state.can_send() && !self.fin_queued && self.error.is_none() {
            self.send_buf.space()
        } else {
            0
        }
    }

    /// Bytes queued and not yet acknowledged.
    pub fn send_queued(&self) -> usize {
        self.send_buf.len()
    }

    /// A TCP_INFO-like snapshot.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.srtt = self.rtt.srtt();
        s.rttvar = self.rtt.rttvar();
        s.rto = self.rtt.rto();
        s.cwnd = self.cc.cwnd();
        s.ssthresh = self.cc.ssthresh();
        s.in_recovery = self.recovery.in_recovery();
        s.mss = self.smss;
        s.send_window = self.snd_wnd;
        s.recv_window = self.rcv_adv.diff(self.rcv_nxt).max(0) as u32;
        s
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
        if self.fin_queued || !self.state.can_send() {
            return Err(Error::BrokenPipe);
        }
        let n = self.send_buf.write(data);
        if n > 0 {
            self.flush_hint = true;
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
        let n = self.recv_buf.read(buf);
        if n > 0 {
            // RFC 9293 §3.8.6.2.2: a window update once the right edge can move by
            // min(RCV.BUFF/2, MSS).
            let potential = self.rcv_nxt + (self.recv_buf.space().min(65_535) as u32);
            let step = (self.recv_buf.limit() as u32 / 2).min(self.smss);
            if self.state.can_receive() && potential.diff(self.rcv_adv) >= step as i32 {
                self.ack_pending = true;
                self.flush_hint = true;
            }
            return Ok(Some(n));
        }
        if self.fin_received {
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

    /// Whether a user call left something to transmit (a window update, new
    /// data); clears the hint. The runtime wakes the connection's task on it.
    pub fn take_flush_hint(&mut self) -> bool {
        core::mem::take(&mut self.flush_hint)
    }

    /// Shuts down writing: FIN after the queued data. Reading goes on
    /// (half-close). Idempotent.
    pub fn shutdown(&mut self, _now: Instant) {
        match self.state {
            // RFC 9293 §3.10.4, CLOSE in SYN_SENT: delete the TCB (and report
            // CLOSED like every other way there).
            State::SynSent => {
                self.send_buf.clear();
                self.enter_closed("shutdown in SYN_SENT");
            }
            // RFC 9293 §3.10.4, CLOSE in SYN_RECEIVED: with nothing queued, send
            // the FIN now and enter FIN_WAIT_1 (Linux `tcp_close_state`);
            // otherwise the FIN waits for ESTABLISHED, after the data.
            State::SynReceived if !self.fin_queued => {
                self.queue_fin();
                if self.send_buf.len() == 0 {
                    self.set_state(State::FinWait1, "shutdown");
                }
            }
            State::Established if !self.fin_queued => {
                self.queue_fin();
                self.set_state(State::FinWait1, "shutdown");
            }
            State::CloseWait if !self.fin_queued => {
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
        if self.recv_buf.readable() > 0 && self.state != State::Closed {
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

    fn abort_with(&mut self, _now: Instant, err: Error, cause: &str) {
        match self.state {
            State::Closed => return,
            // RFC 9293 §3.10.5: ABORT in TIME_WAIT deletes the TCB; nothing is
            // sent (the connection is already closed on both sides).
            State::TimeWait => {
                self.enter_closed(cause);
                return;
            }
            // RFC 9293 §3.10.5: ABORT in CLOSING or LAST_ACK responds "ok" and
            // deletes the TCB without an RST (both FINs were sent; Linux's
            // `tcp_need_reset` is false there too).
            State::Closing | State::LastAck => {
                self.fail(err, cause);
                return;
            }
            _ => {}
        }
        if !matches!(self.state, State::SynSent | State::Listen) {
            self.rst_pending = Some((self.snd_max, Some(self.rcv_nxt)));
        }
        self.fail(err, cause);
    }

    /// Moves to CLOSED with `err`, freeing buffers.
    fn fail(&mut self, err: Error, cause: &str) {
        if self.error.is_none() {
            self.error = Some(err);
            self.events.push_back(Event::Error(err));
        }
        self.send_buf.clear();
        self.enter_closed(cause);
    }

    fn enter_closed(&mut self, cause: &str) {
        self.timers.stop_all();
        self.syn_pending = false;
        self.retransmit_first = false;
        self.probe_pending = false;
        self.ack_pending = false;
        self.owed_acks.clear();
        self.set_state(State::Closed, cause);
        self.events.push_back(Event::Readable);
        self.events.push_back(Event::Writable);
        self.events.push_back(Event::Closed);
    }

    fn set_state(&mut self, to: State, cause: &str) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        match self.cur_seg {
            Some((flags, seq, ack, len)) => tracing::debug!(
                parent: &self.span, from = %from, to = %to, cause,
                seg.flags = %flags, seg.seq = seq.get(), seg.ack = ack.get(), seg.len = len, "state"
            ),
            None => tracing::debug!(parent: &self.span, from = %from, to = %to, cause, "state"),
        }
        self.events.push_back(Event::StateChanged { from, to });
    }

    /// The earliest deadline at which [`handle_timeout`](Self::handle_timeout)
    /// must be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether the connection is finished: CLOSED with nothing left to send.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed && self.rst_pending.is_none()
    }

    /// The record TIME_WAIT needs once the connection's buffers are freed.
    pub fn time_wait_record(&self, now: Instant) -> Option<crate::timewait::TimeWait> {
        (self.state == State::TimeWait).then(|| crate::timewait::TimeWait {
            local: self.local,
            remote: self.remote,
            snd_nxt: self.snd_max,
            rcv_nxt: self.rcv_nxt,
            window: self.rcv_adv.diff(self.rcv_nxt).clamp(0, 65_535) as u16,
            deadline: self
                .timers
                .get(Timer::TimeWait)
                .unwrap_or(now + self.cfg.time_wait()),
            hop_limit: self.cfg.hop_limit,
            time_wait: self.cfg.time_wait(),
        })
    }

    /// Handles the deadline(s) due at `now`. A call before any deadline does
    /// nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(t) = self.timers.take_expired(now) {
            match t {
                Timer::Rto => self.on_rto(now),
                Timer::Persist => self.on_persist(now),
                Timer::FinWait2 => {
                    if self.state == State::FinWait2 {
                        self.send_buf.clear();
                        self.recv_buf.clear();
                        self.enter_closed("FIN_WAIT_2 timeout");
                    }
                }
                Timer::TimeWait => {
                    if self.state == State::TimeWait {
                        self.enter_closed("2MSL timeout");
                    }
                }
            }
        }
    }

    fn on_rto(&mut self, now: Instant) {
        // Our SYN (SYN_SENT) or SYN-ACK (SYN_RECEIVED, or FIN_WAIT_1 after a
        // CLOSE there) is still unacknowledged: it is what the timer guards.
        let syn_state = !self.syn_acked;
        let limit = if !syn_state {
            self.cfg.data_retries
        } else if self.passive && self.state != State::SynSent {
            self.cfg.synack_retries
        } else {
            self.cfg.syn_retries
        };
        if self.snd_una == self.snd_max && !syn_state {
            return; // nothing outstanding
        }
        if self.retries >= limit {
            tracing::debug!(parent: &self.span, retries = self.retries, "retransmissions exhausted");
            // RFC 9293 §3.10.8 (user timeout): flush and enter CLOSED. No RST:
            // the peer is presumably unreachable (Linux sends none either).
            self.fail(Error::TimedOut, "retransmission timeout");
            return;
        }
        self.retries += 1;
        self.stats.rto_count += 1;
        self.rtt.back_off();
        self.rtt_probe = None;
        if syn_state {
            self.syn_pending = true;
            self.syn_retransmitted = true;
        } else {
            let flight = self.flight_size();
            self.recovery
                .on_rto(&mut *self.cc, now, flight, self.snd_max);
            // Go back N: resend from SND.UNA as the window allows.
            self.snd_nxt = self.snd_una;
        }
        self.timers.set(Timer::Rto, now + self.rtt.rto());
    }

    fn on_persist(&mut self, now: Instant) {
        if !self.state.is_synchronized() || self.send_buf.len() == 0 {
            return;
        }
        if self.snd_wnd == 0 {
            if self.orphaned && self.persist_backoff >= self.cfg.orphan_retries {
                // Nobody will ever read what is queued: drop the orphan rather
                // than let the peer hold it forever behind a zero window.
                self.fail(Error::TimedOut, "orphaned behind a zero window");
                return;
            }
            // RFC 1122 §4.2.2.17: the connection stays open only while probes
            // are answered; any acceptable ACK resets the count.
            if self.probes_out >= self.cfg.data_retries {
                self.fail(Error::TimedOut, "zero-window probes unanswered");
                return;
            }
            self.probes_out += 1;
            // RFC 9293 §3.8.6.1: probe the zero window, backing off to persist_max.
            self.probe_pending = true;
            self.persist_backoff = self.persist_backoff.saturating_add(1);
            self.arm_persist(now);
        } else if self.snd_nxt == self.snd_una {
            // RFC 9293 §3.8.6.2.1: the SWS override timeout. A small window
            // held the data back and the update that would have released it
            // may be lost: send what the window allows.
            self.probe_pending = true;
        }
    }

    fn arm_persist(&mut self, now: Instant) {
        let base = self.rtt.rto().max(self.cfg.rto_min);
        let d = base
            .saturating_mul(1u32 << self.persist_backoff.min(16))
            .min(self.cfg.persist_max);
        self.timers.set(Timer::Persist, now + d);
    }

    fn flight_size(&self) -> u32 {
        self.snd_max.diff(self.snd_una).max(0) as u32
    }

    /// Sequence number of the first byte in the send buffer: SND.UNA, or
    /// ISS + 1 while our SYN is unacknowledged.
    fn data_seq0(&self) -> SeqNum {
        if self.syn_acked {
            self.snd_una
        } else {
            self.iss + 1
        }
    }

    /// Sequence number of our FIN (meaningful once `fin_queued`).
    fn fin_seq(&self) -> SeqNum {
        self.fin_seq
    }

    /// Whether our FIN was acknowledged.
    fn fin_acked(&self) -> bool {
        self.fin_queued && self.snd_una.after(self.fin_seq)
    }

    fn queue_fin(&mut self) {
        self.fin_seq = self.data_seq0() + self.send_buf.len() as u32;
        self.fin_queued = true;
        self.flush_hint = true;
    }

    fn apply_syn_options(&mut self, syn: &TcpRepr) {
        // RFC 9293 §3.7.1: without the option, 536 (IPv4) / 1220 (IPv6).
        let peer = syn
            .options
            .mss
            .map(u32::from)
            .unwrap_or_else(|| default_mss(&self.remote));
        self.smss = peer.min(self.adv_mss as u32).max(64);
        self.cc.set_mss(self.smss);
        self.recovery.set_mss(self.smss);
    }

    /// RFC 5961 §7: challenge ACKs (and ACKs for out-of-window segments) are
    /// limited per connection per second.
    fn challenge_ack(&mut self, now: Instant) {
        if self.reply_allowed(now) {
            self.ack_pending = true;
        }
    }

    /// The per-connection budget of unsolicited replies (challenge ACKs,
    /// out-of-window ACKs, SYN-ACKs for repeated SYNs): `challenge_ack_per_sec`
    /// a second. Takes one reply from it if there is one.
    fn reply_allowed(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.challenge_window) >= Duration::from_secs(1) {
            self.challenge_window = now;
            self.challenge_count = 0;
        }
        if self.challenge_count < self.cfg.challenge_ack_per_sec {
            self.challenge_count += 1;
            true
        } else {
            false
        }
    }

    /// An immediate ACK is owed for the segment just processed (out of order,
    /// duplicate or hole-filling): it acknowledges RCV.NXT as it stands now
    /// and leaves in arrival order, even when the runtime hands in a batch.
    /// It covers a cumulative ACK owed for earlier in-order data.
    fn owe_ack(&mut self) {
        // Bounded: more than a batch's worth cannot be owed; beyond it the
        // cumulative ACK still goes out.
        if self.owed_acks.len() < OWED_ACKS_MAX {
            self.owed_acks.push_back(self.rcv_nxt);
            self.ack_pending = false;
        } else {
            self.ack_pending = true;
        }
    }
}

/// Most immediate ACKs queued at once (a batch of received segments is at
/// most 64, DESIGN "Receive").
const OWED_ACKS_MAX: usize = 64;

fn default_mss(remote: &SocketAddr) -> u32 {
    if remote.is_ipv4() { 536 } else { 1220 }
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
