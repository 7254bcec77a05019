//! A listener's entry in the endpoint and its queues: the half-open
//! connections it created (SYN_RECEIVED) and the established ones the
//! application has not accepted yet, each connection linked to its listener
//! until it is accepted or dies.

use crate::endpoint::ListenerId;
use crate::seq::SeqNum;
use std::net::SocketAddr;

/// One listener as the endpoint keeps it.
#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) addr: SocketAddr,
    /// Accept-any (TUN users): every destination address and port.
    pub(crate) any: bool,
    /// TTL / hop limit of the connections it accepts (`None`: the default).
    pub(crate) hop_limit: Option<u8>,
    pub(crate) queues: Queues,
}

impl Listener {
    pub(crate) fn new(addr: SocketAddr, backlog: usize, any: bool) -> Self {
        Listener {
            addr,
            any,
            hop_limit: None,
            queues: Queues {
                backlog: backlog.max(1),
                half_open: 0,
                unaccepted: 0,
            },
        }
    }
}

/// The counts of a listener's connections not yet accepted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Queues {
    /// The listen backlog.
    pub(crate) backlog: usize,
    /// Connections in SYN_RECEIVED.
    pub(crate) half_open: usize,
    /// Established connections the application has not accepted.
    pub(crate) unaccepted: usize,
}

impl Queues {
    /// A new SYN cannot be taken: the backlog holds half-open and
    /// unaccepted connections together.
    pub(crate) fn is_full(&self) -> bool {
        self.half_open + self.unaccepted >= self.backlog
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
