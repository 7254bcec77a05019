//! The connection's public value types: a segment in, a segment out, an
//! event, and the TCP_INFO-like statistics snapshot.

use super::State;
use crate::error::Error;
use crate::time::Duration;
use crate::wire::TcpRepr;
use bytes::Bytes;
use std::net::IpAddr;

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
    /// The connection failed; the error is also in [`Connection::error`](super::Connection::error).
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
    /// The peer's window shift, when window scaling is in force (RFC 7323).
    pub snd_wscale: Option<u8>,
    /// Our window shift, when window scaling is in force.
    pub rcv_wscale: Option<u8>,
    /// Timestamps are in force (RFC 7323).
    pub timestamps: bool,
    /// D-SACK blocks received: the peer got something twice (RFC 2883).
    pub dsack_received: u64,
    /// Bytes the peer SACKed and did not acknowledge yet.
    pub sacked_bytes: u32,
    /// SACK is in force (RFC 2018).
    pub sack: bool,
    /// Segments dropped by PAWS (RFC 7323 §5: a TSval older than TS.Recent).
    pub paws_rejected: u64,
    /// Memory the receive side holds now ([`Connection::recv_memory`](crate::Connection::recv_memory)).
    pub rcv_memory: usize,
    /// Out-of-order bytes dropped under the stack's memory pressure (held
    /// ones pruned, as Linux's `tcp_prune_ofo_queue`, and new ones refused).
    pub rcv_ooo_pruned: u64,
    /// New bytes dropped because the stack's receive memory was over its
    /// limit.
    pub rcv_memory_drops: u64,
}
