//! What a connection owes its next `poll_transmit` beyond new data: ACKs,
//! a retransmission, a probe, an RST.

use super::Connection;
use crate::seq::SeqNum;
use crate::time::Instant;
use crate::wire::SackBlocks;
use std::collections::VecDeque;

/// Fewest immediate ACKs a connection may owe at once (a device batch).
const OWED_ACKS_MIN: usize = 64;

/// What the next `poll_transmit` owes beyond new data.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// A cumulative ACK, at once (unless a data segment carries it).
    pub(crate) ack: bool,
    /// A cumulative ACK for in-order data, which may wait for the
    /// delayed-ACK timer (`delack.rs`).
    pub(crate) data_ack: bool,
    /// Immediate ACKs owed, oldest first, each with the RCV.NXT it
    /// acknowledges: one per out-of-order, duplicate or hole-filling segment,
    /// in arrival order (DESIGN "Transmit"; RFC 5681 §4.2), however the
    /// runtime batches.
    /// With SACK, each carries the blocks as they stood after its segment
    /// (RFC 2018 §4, a D-SACK block first for a duplicate, RFC 2883).
    pub(crate) owed_acks: VecDeque<(SeqNum, SackBlocks)>,
    /// The SACK blocks of the segment being built (an owed ACK's).
    pub(crate) sack_override: Option<SackBlocks>,
    /// A zero-window probe (or the SWS override's segment).
    pub(crate) probe: bool,
    /// A keepalive probe (RFC 1122 §4.2.3.6): SEQ = SND.UNA − 1, no data.
    pub(crate) keepalive: bool,
    /// A tail loss probe (RFC 8985 §7.3).
    pub(crate) tlp: bool,
    /// An RST: (SEQ, Some(ACK) for RST|ACK).
    pub(crate) rst: Option<(SeqNum, Option<SeqNum>)>,
    /// A user call left something to send (a window update, new data): the
    /// runtime wakes the connection's task on it.
    pub(crate) flush_hint: bool,
}

impl Connection {
    /// RFC 5961 §7: challenge ACKs (and ACKs for out-of-window segments) are
    /// limited per connection per second.
    pub(super) fn challenge_ack(&mut self, now: Instant) {
        if self.reply_allowed(now) {
            self.pending.ack = true;
        }
    }

    /// The per-connection budget of unsolicited replies (challenge ACKs,
    /// out-of-window ACKs, SYN-ACKs for repeated SYNs): `challenge_ack_per_sec`
    /// a second. Takes one reply from it if there is one.
    pub(super) fn reply_allowed(&mut self, now: Instant) -> bool {
        self.budget.take(now, self.cfg.challenge_ack_per_sec)
    }

    /// An immediate ACK is owed for the segment just processed (out of order,
    /// duplicate or hole-filling): it acknowledges RCV.NXT as it stands now
    /// and leaves in arrival order, even when the runtime hands in a batch.
    /// It covers a cumulative ACK owed for earlier in-order data.
    pub(super) fn owe_ack(&mut self) {
        // Bounded by the receive buffer in full-sized segments (the driver
        // drains a whole inbox, DESIGN "Receive": at least the window in
        // segments), at least a device batch; beyond it the cumulative ACK
        // still goes out. One per duplicate keeps its D-SACK block (RFC
        // 2883 §4) however many arrive in one pass.
        let dsack = self.rcv.dsack.take();
        let most = (self.rcv.buf.limit() / self.opts.smss.max(1) as usize + 1).max(OWED_ACKS_MIN);
        if self.pending.owed_acks.len() < most {
            let blocks = if self.opts.sack {
                self.rcv.buf.sack_blocks(self.opts.max_sack_blocks(), dsack)
            } else {
                SackBlocks::EMPTY
            };
            self.pending.owed_acks.push_back((self.rcv.nxt, blocks));
            self.pending.ack = false;
            self.pending.data_ack = false;
        } else {
            self.pending.ack = true;
        }
    }
}
