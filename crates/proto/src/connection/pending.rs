//! What a connection owes its next `poll_transmit` beyond new data: ACKs,
//! a retransmission, a probe, an RST.

use crate::seq::SeqNum;
use std::collections::VecDeque;

/// What the next `poll_transmit` owes beyond new data.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// A cumulative ACK (unless a data segment carries it).
    pub(crate) ack: bool,
    /// Immediate ACKs owed, oldest first, each with the RCV.NXT it
    /// acknowledges: one per out-of-order, duplicate or hole-filling segment,
    /// in arrival order (DESIGN "Transmit"; RFC 5681 §4.2), however the
    /// runtime batches.
    pub(crate) owed_acks: VecDeque<SeqNum>,
    /// A zero-window probe (or the SWS override's segment).
    pub(crate) probe: bool,
    /// An RST: (SEQ, Some(ACK) for RST|ACK).
    pub(crate) rst: Option<(SeqNum, Option<SeqNum>)>,
    /// A user call left something to send (a window update, new data): the
    /// runtime wakes the connection's task on it.
    pub(crate) flush_hint: bool,
}
