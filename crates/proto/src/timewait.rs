//! TIME_WAIT, implemented once: what remains of a connection once its
//! buffers are freed (SND.NXT, RCV.NXT, the 2·MSL deadline, a per-record ACK
//! rate limit and room for TS.Recent), the rules a segment meets there, and
//! the endpoint's table of such records with one timer queue.
//!
//! The rules ([`TimeWait::handle_segment`]), as Linux's
//! `tcp_timewait_state_process`:
//! - a retransmitted FIN (one that ends at RCV.NXT) is ACKed again and
//!   restarts 2·MSL (RFC 9293 §3.10.7.4, TIME_WAIT: "the only thing that can
//!   arrive in this state is a retransmission of the remote FIN");
//! - an RST whose SEQ is exactly RCV.NXT closes the record (RFC 5961 §3.2's
//!   exact match; this is "TIME_WAIT assassination", which RFC 1337 would
//!   ignore: we close, as Linux does with `tcp_rfc1337 = 0`, its default);
//!   every other RST is ignored;
//! - a SYN above the old RCV.NXT may reopen the 4-tuple (RFC 1122
//!   §4.2.2.13), the new incarnation's ISS above the old SND.NXT;
//! - a bare ACK at RCV.NXT is dropped silently; every other segment is
//!   answered with <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, at most once per
//!   [`Config::time_wait_ack_interval`](crate::Config::time_wait_ack_interval)
//!   per record (Linux's `tcp_invalid_ratelimit`), so that no peer can
//!   make a record answer every segment it sends.

use crate::config::Config;
use crate::connection::Transmit;
use crate::seq::SeqNum;
use crate::time::{Duration, Instant};
use crate::wire::{self, TcpFlags, TcpOptions, TcpRepr};
use bytes::{Bytes, BytesMut};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A connection in TIME_WAIT, reduced to a record: what
/// [`Connection::time_wait_record`](crate::Connection::time_wait_record)
/// hands to [`Endpoint::enter_time_wait`](crate::Endpoint::enter_time_wait).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeWait {
    /// Local address.
    pub local: SocketAddr,
    /// Remote address.
    pub remote: SocketAddr,
    pub(crate) st: TwState,
}

/// The per-record state the rules read and write (48 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TwState {
    pub(crate) snd_nxt: SeqNum,
    pub(crate) rcv_nxt: SeqNum,
    /// When 2·MSL ends.
    pub(crate) deadline: Instant,
    /// When the last rate-limited ACK left (valid once `acked`).
    pub(crate) last_ack: Instant,
    /// The window field of re-ACKs (already scaled).
    pub(crate) window: u16,
    pub(crate) hop_limit: u8,
    /// A rate-limited ACK left at `last_ack`.
    pub(crate) acked: bool,
    /// Timestamps were in force (RFC 7323): ACKs carry them, PAWS applies,
    /// and a newer TSval may reopen the 4-tuple (RFC 6191).
    pub(crate) ts: bool,
    /// The connection's timestamp clock offset.
    pub(crate) ts_offset: u32,
    /// TS.Recent.
    pub(crate) ts_recent: u32,
    /// When TS.Recent was taken, in whole seconds of proto time.
    pub(crate) ts_recent_secs: u32,
}

/// RFC 7323 §5.5: TS.Recent is invalid after 24 days.
const TS_RECENT_VALID_SECS: u32 = 24 * 24 * 3600;

/// What a segment arriving in TIME_WAIT calls for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeWaitAction {
    /// Drop it.
    Ignore,
    /// Send an ACK (see [`TimeWait::ack`]).
    Ack,
    /// An ACK was due, but the record's rate limit held it back.
    RateLimited,
    /// An acceptable new SYN: hand it to the listener as a new connection whose
    /// ISS must be after `iss_above`.
    Reopen {
        /// The old SND.NXT.
        iss_above: SeqNum,
    },
    /// The record is done (an exact RST): CLOSED.
    Close,
}

impl TwState {
    /// The rules of TIME_WAIT (see the module docs). `two_msl` restarts the
    /// deadline; `ack_interval` spaces unsolicited ACKs.
    pub(crate) fn on_segment(
        &mut self,
        now: Instant,
        r: &TcpRepr,
        payload_len: usize,
        two_msl: Duration,
        ack_interval: Duration,
    ) -> TimeWaitAction {
        let f = r.flags;
        let tsval = r.options.timestamps.map(|(v, _)| v).filter(|_| self.ts);
        // RFC 7323 §5.3 (PAWS), as Linux's TIME_WAIT applies it: an older
        // TSval than TS.Recent neither closes nor reopens the record.
        let paws_reject = tsval.is_some_and(|v| {
            (self.ts_recent.wrapping_sub(v) as i32) > 0
                && secs(now).saturating_sub(self.ts_recent_secs) < TS_RECENT_VALID_SECS
        });
        if f.rst() {
            // RFC 9293 §3.10.7.4 second step with RFC 5961 §3.2: only an
            // exact RST is taken (Linux, not RFC 1337).
            return if r.seq == self.rcv_nxt && !paws_reject {
                TimeWaitAction::Close
            } else {
                TimeWaitAction::Ignore
            };
        }
        if f.syn() && !f.ack() && !paws_reject {
            // RFC 1122 §4.2.2.13: a new incarnation may start above the old
            // RCV.NXT, or (RFC 6191) with a TSval above TS.Recent; its ISS
            // above the old SND.NXT.
            let newer_ts = tsval.is_some_and(|v| (v.wrapping_sub(self.ts_recent) as i32) > 0);
            if r.seq.after(self.rcv_nxt) || newer_ts {
                return TimeWaitAction::Reopen {
                    iss_above: self.snd_nxt,
                };
            }
            return self.limited_ack(now, ack_interval);
        }
        if paws_reject {
            return self.limited_ack(now, ack_interval);
        }
        let end = r.seq + (payload_len as u32 + f.fin() as u32 + f.syn() as u32);
        if f.fin() && !f.syn() && end == self.rcv_nxt {
            // RFC 9293 §3.10.7.4, eighth step, TIME_WAIT: a retransmission of
            // the remote FIN; acknowledge it and restart the 2·MSL timeout.
            self.deadline = now + two_msl;
            return TimeWaitAction::Ack;
        }
        if payload_len == 0
            && !f.fin()
            && !f.syn()
            && r.seq == self.rcv_nxt
            && !r.ack.after(self.snd_nxt)
        {
            // A bare in-window ACK (of our FIN, again): nothing to say.
            return TimeWaitAction::Ignore;
        }
        // Data, an out-of-window segment, an ACK of something never sent
        // (RFC 9293 §3.10.7.4 fifth step), a SYN with ACK: one ACK tells the
        // peer where we are, rate-limited.
        self.limited_ack(now, ack_interval)
    }

    pub(crate) fn limited_ack(&mut self, now: Instant, interval: Duration) -> TimeWaitAction {
        if self.acked && now.saturating_duration_since(self.last_ack) < interval {
            return TimeWaitAction::RateLimited;
        }
        self.acked = true;
        self.last_ack = now;
        TimeWaitAction::Ack
    }

    /// <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, with timestamps if they were in
    /// force (TSval from the connection's clock, TSecr = TS.Recent).
    fn ack_repr(&self, now: Instant, local_port: u16, remote_port: u16) -> TcpRepr {
        let options = TcpOptions {
            timestamps: self.ts.then(|| {
                (
                    self.ts_offset.wrapping_add(now.as_millis() as u32),
                    self.ts_recent,
                )
            }),
            ..TcpOptions::default()
        };
        TcpRepr {
            src_port: local_port,
            dst_port: remote_port,
            seq: self.snd_nxt,
            ack: self.rcv_nxt,
            flags: TcpFlags::ACK,
            window: self.window,
            urgent: 0,
            options,
        }
    }
}

/// Whole seconds of proto time.
pub(crate) fn secs(now: Instant) -> u32 {
    (now.as_millis() / 1000) as u32
}

impl TimeWait {
    pub(crate) fn new(local: SocketAddr, remote: SocketAddr, st: TwState) -> TimeWait {
        TimeWait { local, remote, st }
    }

    /// Our SND.NXT (after our FIN).
    pub fn snd_nxt(&self) -> SeqNum {
        self.st.snd_nxt
    }

    /// Our RCV.NXT (after the peer's FIN).
    pub fn rcv_nxt(&self) -> SeqNum {
        self.st.rcv_nxt
    }

    /// The window advertised in re-ACKs.
    pub fn window(&self) -> u16 {
        self.st.window
    }

    /// When 2·MSL ends.
    pub fn deadline(&self) -> Instant {
        self.st.deadline
    }

    /// TS.Recent and the second of proto time it was taken at, when
    /// timestamps were in force.
    pub fn ts_recent(&self) -> Option<(u32, u32)> {
        self.st
            .ts
            .then_some((self.st.ts_recent, self.st.ts_recent_secs))
    }

    /// Handles a segment for this 4-tuple by the rules of the module docs;
    /// `cfg` gives 2·MSL and the ACK rate limit.
    pub fn handle_segment(
        &mut self,
        now: Instant,
        repr: &TcpRepr,
        payload_len: usize,
        cfg: &Config,
    ) -> TimeWaitAction {
        self.st.on_segment(
            now,
            repr,
            payload_len,
            cfg.time_wait(),
            cfg.time_wait_ack_interval,
        )
    }

    /// Whether 2·MSL has passed.
    pub fn expired(&self, now: Instant) -> bool {
        now >= self.st.deadline
    }

    /// The ACK <SEQ=SND.NXT><ACK=RCV.NXT>, headers appended to `buf`.
    pub fn ack(&self, now: Instant, buf: &mut BytesMut) -> Transmit {
        emit_ack(&self.st, now, self.local, self.remote, buf)
    }
}

fn emit_ack(
    st: &TwState,
    now: Instant,
    local: SocketAddr,
    remote: SocketAddr,
    buf: &mut BytesMut,
) -> Transmit {
    let repr = st.ack_repr(now, local.port(), remote.port());
    let start = buf.len();
    wire::emit_ip_tcp(buf, local.ip(), remote.ip(), st.hop_limit, &repr, &[]);
    Transmit {
        src: local.ip(),
        dst: remote.ip(),
        header_len: buf.len() - start,
        repr,
        payload: Bytes::new(),
        payload_tail: Bytes::new(),
        gso_size: None,
        csum_partial: None,
    }
}

/// A TIME_WAIT record's id in the endpoint's table (slot and generation): a
/// late lookup never reaches a reused slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimeWaitId {
    index: u32,
    generation: u32,
}

/// Why a TIME_WAIT record ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeWaitEnd {
    /// 2·MSL passed.
    Expired,
    /// An exact RST.
    Reset,
    /// A new SYN took the 4-tuple (a new connection of the listener, or
    /// the RST of a closed port when nobody listens).
    Reopened,
    /// The table was cleared (the stack stopped).
    Cleared,
    /// `connect` reused the 4-tuple (timestamps in force, the record more
    /// than a second old: Linux's `tcp_tw_reuse`).
    Reused,
}

impl TimeWaitEnd {
    fn cause(self) -> &'static str {
        match self {
            TimeWaitEnd::Expired => "2MSL timeout",
            TimeWaitEnd::Reset => "RST",
            TimeWaitEnd::Reopened => "new SYN",
            TimeWaitEnd::Cleared => "stack stopped",
            TimeWaitEnd::Reused => "connect reuses the 4-tuple",
        }
    }
}

/// A 4-tuple in 16 bytes: IPv4 inline (local IP, local port, remote IP,
/// remote port), IPv6 (rare) boxed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum TwKey {
    V4([u8; 12]),
    V6(Box<[u8; 36]>),
}

impl TwKey {
    pub(crate) fn new(local: SocketAddr, remote: SocketAddr) -> TwKey {
        match (local.ip(), remote.ip()) {
            (IpAddr::V4(l), IpAddr::V4(r)) => {
                let mut k = [0u8; 12];
                k[..4].copy_from_slice(&l.octets());
                k[4..6].copy_from_slice(&local.port().to_be_bytes());
                k[6..10].copy_from_slice(&r.octets());
                k[10..].copy_from_slice(&remote.port().to_be_bytes());
                TwKey::V4(k)
            }
            (l, r) => {
                let v6 = |ip: IpAddr| match ip {
                    IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
                    IpAddr::V6(a) => a.octets(),
                };
                let mut k = Box::new([0u8; 36]);
                k[..16].copy_from_slice(&v6(l));
                k[16..18].copy_from_slice(&local.port().to_be_bytes());
                k[18..34].copy_from_slice(&v6(r));
                k[34..].copy_from_slice(&remote.port().to_be_bytes());
                TwKey::V6(k)
            }
        }
    }

    /// (local, remote).
    pub(crate) fn addrs(&self) -> (SocketAddr, SocketAddr) {
        let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
        match self {
            TwKey::V4(k) => {
                let ip = |b: &[u8]| IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]));
                (
                    SocketAddr::new(ip(&k[..4]), port(&k[4..6])),
                    SocketAddr::new(ip(&k[6..10]), port(&k[10..])),
                )
            }
            TwKey::V6(k) => {
                let ip = |b: &[u8]| {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(b);
                    let a = Ipv6Addr::from(o);
                    a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4)
                };
                (
                    SocketAddr::new(ip(&k[..16]), port(&k[16..18])),
                    SocketAddr::new(ip(&k[18..34]), port(&k[34..])),
                )
            }
        }
    }
}

#[derive(Debug)]
struct Record {
    key: TwKey,
    st: TwState,
    /// An application still holds the stream: its end is reported.
    held: bool,
}

/// A record's ACK, for the endpoint's reply queue.
#[derive(Debug)]
pub(crate) struct TwReply {
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
    pub(crate) hop_limit: u8,
    pub(crate) repr: TcpRepr,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    rec: Option<Record>,
}

/// Counters of the TIME_WAIT table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeWaitStats {
    /// Records now.
    pub records: usize,
    /// Connections that skipped TIME_WAIT because the table was full
    /// (Linux's `TCPTimeWaitOverflow`).
    pub overflows: u64,
    /// ACKs the per-record rate limit held back (Linux's
    /// `TCPACKSkippedTimeWait`).
    pub acks_rate_limited: u64,
}

/// The endpoint's TIME_WAIT records: a slab of records, a map from the
/// compact 4-tuple, and one timer queue (a min-heap of deadlines with lazy
/// deletion: a restarted 2·MSL moves the record's deadline, and its queue
/// entry is pushed again when the old one comes due).
#[derive(Debug, Default)]
pub(crate) struct TimeWaitTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
    index: HashMap<TwKey, u32>,
    timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    /// Ends of held records, for the runtime to tell their streams.
    ended: VecDeque<(TimeWaitId, TimeWaitEnd)>,
    /// Generations come from one counter, so an id is never reused even
    /// after the slab was given back.
    next_generation: u32,
    stats: TimeWaitStats,
}

impl TimeWaitTable {
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    pub(crate) fn stats(&self) -> TimeWaitStats {
        TimeWaitStats {
            records: self.len(),
            ..self.stats
        }
    }

    pub(crate) fn count_overflow(&mut self) {
        self.stats.overflows += 1;
    }

    pub(crate) fn contains(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        !self.index.is_empty() && self.index.contains_key(&TwKey::new(local, remote))
    }

    pub(crate) fn lookup(&self, local: SocketAddr, remote: SocketAddr) -> Option<TimeWaitId> {
        if self.index.is_empty() {
            return None;
        }
        let i = *self.index.get(&TwKey::new(local, remote))?;
        Some(TimeWaitId {
            index: i,
            generation: self.slots[i as usize].generation,
        })
    }

    /// Every record: (local, remote, when its 2·MSL ends).
    pub(crate) fn records(&self) -> impl Iterator<Item = (SocketAddr, SocketAddr, Instant)> + '_ {
        self.slots.iter().filter_map(|s| {
            let r = s.rec.as_ref()?;
            let (local, remote) = r.key.addrs();
            Some((local, remote, r.st.deadline))
        })
    }

    /// Whether the record still exists.
    pub(crate) fn is_live(&self, id: TimeWaitId) -> bool {
        self.record(id).is_some()
    }

    fn record(&self, id: TimeWaitId) -> Option<&Record> {
        self.slots
            .get(id.index as usize)
            .filter(|s| s.generation == id.generation)
            .and_then(|s| s.rec.as_ref())
    }

    pub(crate) fn insert(&mut self, tw: TimeWait, held: bool) -> TimeWaitId {
        let key = TwKey::new(tw.local, tw.remote);
        if let Some(old) = self.lookup(tw.local, tw.remote) {
            // A 4-tuple has one record at most (cannot happen through the
            // endpoint, which gives a 4-tuple to one connection at a time).
            self.remove(old, TimeWaitEnd::Reopened);
        }
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        let deadline = tw.st.deadline;
        slot.rec = Some(Record {
            key: key.clone(),
            st: tw.st,
            held,
        });
        let id = TimeWaitId {
            index,
            generation: slot.generation,
        };
        self.index.insert(key, index);
        self.timers.push(Reverse((deadline, index, id.generation)));
        id
    }

    /// Ends a record; a held one's end is queued for [`poll_ended`](Self::poll_ended).
    pub(crate) fn remove(&mut self, id: TimeWaitId, end: TimeWaitEnd) {
        let Some(slot) = self
            .slots
            .get_mut(id.index as usize)
            .filter(|s| s.generation == id.generation)
        else {
            return;
        };
        let Some(rec) = slot.rec.take() else {
            return;
        };
        self.index.remove(&rec.key);
        self.free.push(id.index);
        if tracing::enabled!(tracing::Level::DEBUG) {
            let (local, remote) = rec.key.addrs();
            let span = tracing::debug_span!("tcp", local = %local, remote = %remote);
            tracing::debug!(parent: &span, from = "TIME_WAIT", to = "CLOSED", cause = end.cause(), "state");
        }
        if rec.held {
            self.ended.push_back((id, end));
        }
        self.shrink();
    }

    /// Gives memory back once the table emptied or shrank to a quarter.
    fn shrink(&mut self) {
        if self.index.is_empty() {
            self.slots = Vec::new();
            self.free = Vec::new();
            self.index = HashMap::new();
            self.timers = BinaryHeap::new();
        } else if self.index.capacity() > 64 && self.index.len() < self.index.capacity() / 4 {
            self.index.shrink_to_fit();
        }
    }

    /// Whether `connect` may reuse the record's 4-tuple now, as Linux's
    /// `tcp_twsk_unique` with `tcp_tw_reuse`: timestamps were in force
    /// (PAWS then guards the new incarnation against the old one's
    /// segments, RFC 7323 §5) and TS.Recent was taken in an earlier second.
    /// Returns the old SND.NXT, which the new ISS must lie above.
    pub(crate) fn reusable(&self, id: TimeWaitId, now: Instant) -> Option<SeqNum> {
        let r = self.record(id)?;
        (r.st.ts && secs(now) > r.st.ts_recent_secs).then_some(r.st.snd_nxt)
    }

    /// Marks a record's stream as released (nobody to tell about its end).
    pub(crate) fn release(&mut self, id: TimeWaitId) {
        if let Some(s) = self
            .slots
            .get_mut(id.index as usize)
            .filter(|s| s.generation == id.generation)
            && let Some(r) = s.rec.as_mut()
        {
            r.held = false;
        }
    }

    /// A segment for a record. For `Ack`, the ACK's headers are appended to
    /// `buf` and returned with it.
    pub(crate) fn on_segment(
        &mut self,
        id: TimeWaitId,
        now: Instant,
        repr: &TcpRepr,
        payload_len: usize,
        cfg: &Config,
    ) -> (TimeWaitAction, Option<TwReply>) {
        let Some(rec) = self
            .slots
            .get_mut(id.index as usize)
            .filter(|s| s.generation == id.generation)
            .and_then(|s| s.rec.as_mut())
        else {
            return (TimeWaitAction::Ignore, None);
        };
        let action = rec.st.on_segment(
            now,
            repr,
            payload_len,
            cfg.time_wait(),
            cfg.time_wait_ack_interval,
        );
        tracing::trace!(flags = %repr.flags, seq = repr.seq.get(), ?action, "TIME_WAIT segment");
        match action {
            TimeWaitAction::Ack => {
                let (l, r) = rec.key.addrs();
                let reply = TwReply {
                    src: l.ip(),
                    dst: r.ip(),
                    hop_limit: rec.st.hop_limit,
                    repr: rec.st.ack_repr(now, l.port(), r.port()),
                };
                (action, Some(reply))
            }
            TimeWaitAction::RateLimited => {
                self.stats.acks_rate_limited += 1;
                (action, None)
            }
            TimeWaitAction::Close => {
                self.remove(id, TimeWaitEnd::Reset);
                (action, None)
            }
            _ => (action, None),
        }
    }

    /// The earliest queued deadline (possibly of a restarted or ended
    /// record: a wake then finds nothing due).
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Ends every record whose 2·MSL passed by `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((t, index, generation))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            let id = TimeWaitId { index, generation };
            let Some(rec) = self.record(id) else {
                continue; // ended already
            };
            if rec.st.deadline > now {
                // Restarted by a retransmitted FIN: queue its new deadline.
                self.timers
                    .push(Reverse((rec.st.deadline, index, generation)));
                continue;
            }
            self.remove(id, TimeWaitEnd::Expired);
        }
        // Lazy deletion keeps ended records' entries until they come due;
        // rebuild when they outnumber the live ones.
        if self.timers.len() > 2 * self.len() + 64 {
            let live = self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    s.rec
                        .as_ref()
                        .map(|r| Reverse((r.st.deadline, i as u32, s.generation)))
                })
                .collect();
            self.timers = live;
        }
    }

    /// Ends every record (the stack stopped).
    pub(crate) fn clear(&mut self) {
        let ids: Vec<TimeWaitId> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.rec.is_some())
            .map(|(i, s)| TimeWaitId {
                index: i as u32,
                generation: s.generation,
            })
            .collect();
        for id in ids {
            self.remove(id, TimeWaitEnd::Cleared);
        }
    }

    /// The next held record that ended.
    pub(crate) fn poll_ended(&mut self) -> Option<(TimeWaitId, TimeWaitEnd)> {
        let e = self.ended.pop_front();
        if self.ended.is_empty() && self.ended.capacity() > 64 {
            self.ended = VecDeque::new();
        }
        e
    }
}
