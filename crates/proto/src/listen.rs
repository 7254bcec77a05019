//! A listener's entry in the endpoint and its two queues, as Linux keeps
//! them: the SYN queue (half-open connections in SYN_RECEIVED, bounded by
//! [`EndpointConfig::syn_queue`](crate::EndpointConfig::syn_queue)) and the
//! accept queue (established connections the application has not accepted,
//! bounded by the listen backlog). Each connection is linked to its listener
//! until it is accepted or dies. [`ListenStats`] counts what the bounds
//! turned away.

use crate::endpoint::ListenerId;
use crate::seq::SeqNum;
use crate::time::Instant;
use std::net::SocketAddr;

/// One listener as the endpoint keeps it.
#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) addr: SocketAddr,
    /// Accept-any (TUN users): every destination address and port.
    pub(crate) any: bool,
    /// Every SYN is put to the application first (`crate::pending`).
    pub(crate) asks: bool,
    /// TTL / hop limit of the connections it accepts (`None`: the default).
    pub(crate) hop_limit: Option<u8>,
    /// The fixed receive buffer of the connections it accepts (`None`: the
    /// default), which its cookie SYN-ACKs offer too.
    pub(crate) recv_buffer: Option<usize>,
    pub(crate) queues: Queues,
    /// When this listener last answered a SYN with a cookie: cookie ACKs
    /// are validated only for two cookie periods after it (Linux's
    /// `tcp_synq_no_recent_overflow`); otherwise an ACK gets its RST.
    pub(crate) last_cookie: Option<Instant>,
}

impl Listener {
    pub(crate) fn new(addr: SocketAddr, backlog: usize, syn_queue: usize, any: bool) -> Self {
        Listener {
            addr,
            any,
            asks: false,
            hop_limit: None,
            recv_buffer: None,
            queues: Queues {
                backlog: backlog.max(1),
                syn_limit: syn_queue.max(1),
                half_open: 0,
                unaccepted: 0,
            },
            last_cookie: None,
        }
    }
}

/// The counts of a listener's connections not yet accepted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Queues {
    /// The listen backlog: the accept queue's bound.
    pub(crate) backlog: usize,
    /// The SYN queue's bound.
    pub(crate) syn_limit: usize,
    /// Connections in SYN_RECEIVED.
    pub(crate) half_open: usize,
    /// Established connections the application has not accepted.
    pub(crate) unaccepted: usize,
}

impl Queues {
    /// The accept queue is full: new SYNs are dropped and final ACKs held
    /// back (Linux's `sk_acceptq_is_full`).
    pub(crate) fn accept_full(&self) -> bool {
        self.unaccepted >= self.backlog
    }

    /// The SYN queue is full: a SYN gets a cookie, or is dropped.
    pub(crate) fn syn_full(&self) -> bool {
        self.half_open >= self.syn_limit
    }

    /// A half-open connection's handshake completed: it moves from the SYN
    /// queue to the accept queue.
    pub(crate) fn establish(&mut self, link: &mut QueueLink) {
        if !link.established {
            link.established = true;
            self.half_open = self.half_open.saturating_sub(1);
            self.unaccepted += 1;
        }
    }

    /// A connection established straight away (from a SYN cookie) joins the
    /// accept queue.
    pub(crate) fn admit_established(&mut self, iss: SeqNum) -> QueueLink {
        self.unaccepted += 1;
        QueueLink {
            established: true,
            iss,
        }
    }

    /// A SYN became a half-open connection.
    pub(crate) fn admit(&mut self) -> QueueLink {
        self.half_open += 1;
        QueueLink {
            established: false,
            iss: SeqNum::new(0),
        }
    }

    /// A linked connection was accepted or died: it leaves its queue.
    pub(crate) fn release(&mut self, link: QueueLink) {
        if link.established {
            self.unaccepted = self.unaccepted.saturating_sub(1);
        } else {
            self.half_open = self.half_open.saturating_sub(1);
        }
    }
}

/// A connection's place in its listener's queues (kept in its slot until it
/// is accepted).
#[derive(Clone, Copy, Debug)]
pub(crate) struct QueueLink {
    /// In the accept queue (established) rather than the SYN queue.
    pub(crate) established: bool,
    /// Our ISS: an ACK of ISS+1 completes the handshake.
    pub(crate) iss: SeqNum,
}

/// A slot's listener and its place there.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Linked {
    pub(crate) id: ListenerId,
    pub(crate) link: QueueLink,
}

/// What the listeners' bounds and the SYN cookies did, endpoint-wide
/// (Linux's `ListenOverflows`, `ListenDrops`, `SyncookiesSent`,
/// `SyncookiesRecv`, `SyncookiesFailed`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenStats {
    /// Half-open connections (SYN_RECEIVED) of every listener now.
    pub half_open: usize,
    /// The most half-open connections there were at once.
    pub half_open_peak: usize,
    /// Established connections not accepted yet, every listener.
    pub unaccepted: usize,
    /// SYNs dropped because the listener's accept queue was full (Linux
    /// drops them too, cookies or not).
    pub accept_queue_syn_drops: u64,
    /// Final ACKs of a handshake (or cookie ACKs) dropped because the accept
    /// queue was full; the half-open connection stays and re-sends its
    /// SYN-ACK, so it is admitted once room frees (Linux's
    /// `ListenOverflows` with `tcp_abort_on_overflow` off).
    pub accept_queue_ack_drops: u64,
    /// SYNs that found the SYN queue full, or the stack at
    /// [`EndpointConfig::max_half_open`](crate::EndpointConfig::max_half_open)
    /// (answered with a cookie, or dropped with cookies off).
    pub syn_queue_overflows: u64,
    /// SYNs dropped because the SYN queue was full and cookies are off.
    pub syn_queue_drops: u64,
    /// SYN-ACKs sent with a SYN cookie (RFC 4987 §3.6).
    pub cookies_sent: u64,
    /// Cookie ACKs validated and turned into established connections.
    pub cookies_validated: u64,
    /// ACKs refused as cookies while cookies were active (bad or stale
    /// cookie; answered with RST).
    pub cookies_refused: u64,
    /// SYNs (and valid cookie ACKs) dropped because the stack held
    /// [`EndpointConfig::max_connections`](crate::EndpointConfig::max_connections)
    /// connections.
    pub connection_limit_syn_drops: u64,
    /// Active opens refused (`AddrNotAvailable`) for the same limit.
    pub connection_limit_connects: u64,
    /// SYNs put to a listener that decides per SYN (`Route::Ask`).
    pub syns_asked: u64,
    /// Of them, deferred ([`SynVerdict::Defer`](crate::SynVerdict::Defer)).
    pub syns_deferred: u64,
    /// Deferred SYNs dropped because no verdict came within their budget.
    pub deferred_expired: u64,
    /// Retransmitted SYNs absorbed while their first waited for a verdict.
    pub pending_syn_retransmits: u64,
    /// SYNs answered with an RST by their verdict.
    pub verdict_resets: u64,
    /// SYNs dropped by their verdict.
    pub verdict_drops: u64,
}
