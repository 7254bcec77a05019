//! SYNs a listener decides on one by one (accept-any with a verdict, for
//! tun2socks-style proxies that connect upstream before they answer the
//! client).
//!
//! A SYN for a listener that asks ([`Endpoint::listen_any_deciding`]) is
//! not answered: it becomes a pending entry ([`Route::Ask`]) and waits for
//! a [`SynVerdict`] ([`Endpoint::decide`]). While it waits, the client's
//! retransmitted SYNs are absorbed (never asked again). An entry holds a
//! slot of its listener's SYN queue, so a listener that defers cannot hold
//! more SYNs than its queue; a SYN that arrives with the SYN queue full is
//! still asked, and accepted only by a SYN cookie (RFC 4987 §3.6): cookies
//! apply only to SYNs the verdict accepts, and one deferred with the queue
//! full is dropped. A deferred entry lives at most as long as its SYN-ACK
//! retry budget would (the SYN-ACK timeouts of
//! [`Config::synack_retries`](crate::Config::synack_retries) with backoff,
//! about 63 s by default), then is dropped silently, as Linux drops a
//! request whose SYN-ACKs went unanswered.
//!
//! [`Endpoint::listen_any_deciding`]: crate::Endpoint::listen_any_deciding
//! [`Endpoint::decide`]: crate::Endpoint::decide
//! [`Route::Ask`]: crate::Route::Ask

use crate::config::Config;
use crate::endpoint::{FourTuple, ListenerId};
use crate::seq::SeqNum;
use crate::time::{Duration, Instant};
use crate::wire::TcpRepr;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

/// What a listener that decides per SYN is told about one: the connection
/// the client asks for and the options of its SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IncomingSyn {
    /// The original destination: the connection's local address if it is
    /// accepted.
    pub local: SocketAddr,
    /// The client.
    pub remote: SocketAddr,
    /// The client's MSS option (RFC 9293 §3.7.1), if it sent one.
    pub mss: Option<u16>,
    /// The client's window scale option (RFC 7323 §2), if it sent one.
    pub window_scale: Option<u8>,
    /// Whether the client offered SACK (RFC 2018).
    pub sack_permitted: bool,
    /// Whether the client offered timestamps (RFC 7323 §3).
    pub timestamps: bool,
}

impl IncomingSyn {
    pub(crate) fn new(tuple: FourTuple, syn: &TcpRepr) -> Self {
        IncomingSyn {
            local: tuple.local,
            remote: tuple.remote,
            mss: syn.options.mss,
            window_scale: syn.options.window_scale,
            sack_permitted: syn.options.sack_permitted,
            timestamps: syn.options.timestamps.is_some(),
        }
    }
}

/// A pending SYN's address: its 4-tuple and a serial number, so that a late
/// verdict never reaches a later SYN of the same 4-tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PendingId {
    tuple: FourTuple,
    serial: u64,
}

impl PendingId {
    /// The 4-tuple the SYN asks for.
    pub fn tuple(&self) -> FourTuple {
        self.tuple
    }
}

/// What becomes of a pending SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynVerdict {
    /// Answer it: a connection in SYN_RECEIVED whose SYN-ACK goes now (or a
    /// SYN cookie while the SYN queue is full).
    Accept,
    /// Answer it with an RST (<SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>, RFC 9293
    /// §3.10.7.1); nothing is created.
    Reset,
    /// Send nothing and keep nothing: the client's retransmission is asked
    /// again.
    Drop,
    /// Keep it (a SYN-queue slot) until a later verdict or its budget ends;
    /// the client's retransmissions are absorbed meanwhile.
    Defer,
}

/// One SYN waiting for its verdict.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) serial: u64,
    pub(crate) listener: ListenerId,
    /// The SYN as the client sent it (the first one).
    pub(crate) syn: TcpRepr,
    /// From a SYN that reopened a TIME_WAIT record: the new ISS lies above.
    pub(crate) iss_above: Option<SeqNum>,
    /// It holds a slot of its listener's SYN queue (there was room).
    pub(crate) reserved: bool,
    /// Deferred: when its budget ends.
    pub(crate) deadline: Option<Instant>,
}

/// The pending SYNs of every listener that decides.
#[derive(Debug, Default)]
pub(crate) struct PendingTable {
    map: HashMap<FourTuple, Pending>,
    /// Deferred entries by deadline.
    deadlines: BTreeMap<(Instant, u64), FourTuple>,
    /// Entries without a SYN-queue slot (asked with the queue full).
    unreserved: usize,
    next_serial: u64,
}

/// Most entries without a SYN-queue slot at once: they wait only for the
/// verdict of the batch they came in, so this bounds a flood, not a load.
pub(crate) const MAX_UNRESERVED: usize = 1024;

impl PendingTable {
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn unreserved(&self) -> usize {
        self.unreserved
    }

    pub(crate) fn contains(&self, tuple: &FourTuple) -> bool {
        self.map.contains_key(tuple)
    }

    pub(crate) fn insert(
        &mut self,
        tuple: FourTuple,
        listener: ListenerId,
        syn: TcpRepr,
        iss_above: Option<SeqNum>,
        reserved: bool,
    ) -> PendingId {
        let serial = self.next_serial;
        self.next_serial += 1;
        if !reserved {
            self.unreserved += 1;
        }
        let old = self.map.insert(
            tuple,
            Pending {
                serial,
                listener,
                syn,
                iss_above,
                reserved,
                deadline: None,
            },
        );
        debug_assert!(old.is_none(), "a second pending entry for one 4-tuple");
        PendingId { tuple, serial }
    }

    /// The entry `id` names, if it still waits.
    pub(crate) fn get_mut(&mut self, id: PendingId) -> Option<&mut Pending> {
        self.map
            .get_mut(&id.tuple)
            .filter(|p| p.serial == id.serial)
    }

    /// Sets a deferred entry's deadline.
    pub(crate) fn defer(&mut self, id: PendingId, deadline: Instant) {
        if let Some(p) = self.get_mut(id) {
            if let Some(old) = p.deadline.replace(deadline) {
                self.deadlines.remove(&(old, id.serial));
            }
            self.deadlines.insert((deadline, id.serial), id.tuple);
        }
    }

    /// Takes the entry `id` names out of the table.
    pub(crate) fn remove(&mut self, id: PendingId) -> Option<Pending> {
        self.get_mut(id)?;
        let p = self.map.remove(&id.tuple)?;
        self.forget(&p);
        Some(p)
    }

    fn forget(&mut self, p: &Pending) {
        if let Some(d) = p.deadline {
            self.deadlines.remove(&(d, p.serial));
        }
        if !p.reserved {
            self.unreserved -= 1;
        }
    }

    /// The earliest deadline of a deferred entry.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.keys().next().map(|(d, _)| *d)
    }

    /// Takes the deferred entries whose budget ended by `now`.
    pub(crate) fn expire(&mut self, now: Instant, out: &mut Vec<Pending>) {
        while let Some((&(deadline, serial), &tuple)) = self.deadlines.iter().next() {
            if deadline > now {
                break;
            }
            self.deadlines.remove(&(deadline, serial));
            if let Some(p) = self.remove(PendingId { tuple, serial }) {
                out.push(p);
            }
        }
    }

    /// Takes every entry of `listener` (it stopped listening).
    pub(crate) fn remove_listener(&mut self, listener: ListenerId) -> Vec<Pending> {
        let ids: Vec<PendingId> = self
            .map
            .iter()
            .filter(|(_, p)| p.listener == listener)
            .map(|(t, p)| PendingId {
                tuple: *t,
                serial: p.serial,
            })
            .collect();
        ids.into_iter().filter_map(|id| self.remove(id)).collect()
    }
}

/// How long a deferred SYN is kept: as long as its SYN-ACK and
/// `synack_retries` retransmissions would wait for an answer (RFC 6298
/// backoff from the initial RTO, each timeout capped at `rto_max`).
pub(crate) fn budget(cfg: &Config) -> Duration {
    let mut total = Duration::ZERO;
    let mut rto = cfg.rto_initial;
    for _ in 0..=cfg.synack_retries.min(32) {
        total += rto.min(cfg.rto_max);
        rto = rto.saturating_mul(2);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_budget_is_linux_s_63_seconds() {
        assert_eq!(budget(&Config::default()), Duration::from_secs(63));
    }
}
