//! The connection's public value types: a segment in, a segment out, an
//! event, and the TCP_INFO-like statistics snapshot.

use super::State;
use super::recovery::CaState;
use crate::congestion::{CongestionAlgorithm, SlowStartExit};
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
    /// The payload, or its first part.
    pub payload: Bytes,
    /// The rest of the payload, sent right after `payload`: empty unless
    /// the segment spans two send-buffer chunks and the device gathers
    /// ([`TxOffload::scatter_gather`](crate::TxOffload::scatter_gather)).
    pub payload_tail: Bytes,
    /// A super-segment for the device to cut (TCP segmentation offload,
    /// [`TxOffload`](crate::TxOffload)): the payload bytes of each segment
    /// (the last may be short). The headers are those of the first segment,
    /// the IP length field covers the whole payload, and the checksum is
    /// partial. `None`: one segment.
    pub gso_size: Option<u16>,
    /// The TCP checksum is partial (the pseudo-header sum) for the device to
    /// complete: where summing starts and where the field is, as offsets
    /// from the packet's first byte. `None`: both checksums are complete.
    pub csum_partial: Option<(u16, u16)>,
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
    /// The congestion window was cut (a loss episode, a timeout, a loss the
    /// tail loss probe repaired) or restored (an undo).
    Congestion(CongestionEvent),
}

/// What changed the congestion window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CongestionCause {
    /// RACK marked a loss: a recovery episode began (RFC 8985 §6, SACK).
    Rack,
    /// Three duplicate ACKs: NewReno's fast recovery began (RFC 6582).
    DuplicateAcks,
    /// The retransmission timer fired (RFC 6298 §5.5).
    Timeout,
    /// A tail loss probe repaired a loss (RFC 8985 §7.4.2).
    TailLossProbe,
    /// The last reduction was spurious and was undone (RFC 2883 §5,
    /// RFC 3522).
    Undo,
}

/// One change of the congestion window: why, and the numbers around it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CongestionEvent {
    /// When it happened.
    pub at: crate::time::Instant,
    /// Why.
    pub cause: CongestionCause,
    /// FlightSize when it happened (SND.MAX − SND.UNA).
    pub flight: u32,
    /// cwnd before.
    pub cwnd_before: u32,
    /// cwnd after.
    pub cwnd: u32,
    /// ssthresh after.
    pub ssthresh: u32,
    /// The sender MSS.
    pub smss: u32,
}

/// Declares [`Counters`] with the named `u64` fields of [`Stats`] and the
/// copy of them into a snapshot.
macro_rules! counters {
    ($($field:ident),* $(,)?) => {
        /// What a connection counts as it goes: the `u64` counters of
        /// [`Stats`], under the same names. `Connection::stats` copies them
        /// into a snapshot beside the figures it reads from the
        /// connection's parts, so a connection stores only its counters
        /// (200 bytes), not a whole snapshot (over 400).
        #[derive(Clone, Copy, Debug, Default)]
        pub(crate) struct Counters {
            $(pub(crate) $field: u64,)*
        }

        impl Counters {
            /// Copies every counter into `s`.
            pub(crate) fn fill(&self, s: &mut Stats) {
                $(s.$field = self.$field;)*
            }
        }
    };
}

counters!(
    bytes_received,
    bytes_retransmitted,
    bytes_sent,
    delayed_acks,
    dsack_received,
    fast_retransmits,
    icmp_errors,
    icmp_ignored,
    keepalive_probes,
    nagle_held,
    paws_rejected,
    pmtu_lowered,
    quick_acks,
    rack_lost_bytes,
    rcv_dup_packets,
    rcv_ooo_packets,
    recovery_episodes,
    rto_count,
    segments_received,
    segments_retransmitted,
    segments_sent,
    spurious_undos,
    super_segments_sent,
    tlp_probes,
    tlp_recoveries,
);

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
    /// Segments sent (a super-segment counts as the segments the device
    /// cuts it into).
    pub segments_sent: u64,
    /// Super-segments sent for the device to cut (TCP segmentation
    /// offload, [`TxOffload`](crate::TxOffload)).
    pub super_segments_sent: u64,
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
    /// The connection's state when the snapshot was taken.
    pub state: State,
    /// The congestion-avoidance state (Linux's `tcpi_ca_state`).
    pub ca_state: CaState,
    /// Bytes sent and not acknowledged (SND.MAX − SND.UNA).
    pub unacked: u32,
    /// Bytes deemed lost and not resent yet.
    pub lost_bytes: u32,
    /// Retransmitted bytes outstanding: resent, and since then neither
    /// acknowledged, SACKed nor deemed lost again (Linux's `tcpi_retrans`,
    /// here in bytes).
    pub retrans_bytes: u32,
    /// Bytes RACK marked lost (RFC 8985 §6.2).
    pub rack_lost_bytes: u64,
    /// Recovery episodes begun (RACK or three duplicate ACKs).
    pub recovery_episodes: u64,
    /// Tail loss probes sent (RFC 8985 §7).
    pub tlp_probes: u64,
    /// Losses a tail loss probe repaired (each reduced the window once).
    pub tlp_recoveries: u64,
    /// Recovery episodes and timeouts found spurious and undone (D-SACK,
    /// RFC 2883 §5; timestamps, RFC 3522).
    pub spurious_undos: u64,
    /// A segment never retransmitted arrived below one delivered later
    /// (RACK.reordering_seen).
    pub reordering_seen: bool,
    /// The reordering degree, in segments (Linux's `tcpi_reordering`): 3
    /// (the DupThresh) until a segment never retransmitted arrives further
    /// below the highest one delivered, then that distance, capped at 300
    /// (Linux's `tcp_max_reordering`).
    pub reordering: u32,
    /// RACK's reordering-window multiplier: 1, plus one per round trip in
    /// which a D-SACK showed a spurious retransmission (RFC 8985 §6.2).
    pub reo_wnd_mult: u32,
    /// The smallest RTT measured.
    pub min_rtt: Option<Duration>,
    /// Bytes delivered per second over the last round trip (acknowledged or
    /// SACKed).
    pub delivery_rate: u64,
    /// µs the sender had data but a full congestion window.
    pub cwnd_limited_us: u64,
    /// µs the sender had data but a full receive window (Linux's
    /// `tcpi_rwnd_limited`).
    pub rwnd_limited_us: u64,
    /// µs everything queued was in flight with the send buffer full
    /// (Linux's `tcpi_sndbuf_limited`).
    pub sndbuf_limited_us: u64,
    /// Out-of-order segments received (Linux's `tcpi_rcv_ooopack`).
    pub rcv_ooo_packets: u64,
    /// Segments received that carried bytes received already, wholly or in
    /// part: each owes a D-SACK block (RFC 2883 §4).
    pub rcv_dup_packets: u64,
    /// The receiver's RTT estimate (auto-tuning's round trip).
    pub rcv_rtt: Option<Duration>,
    /// What the application read in the last measured round trip (Linux's
    /// `rcv_space`).
    pub rcv_space: u32,
    /// The send buffer's limit now (auto-tuned unless fixed).
    pub send_buffer: u32,
    /// The receive buffer's limit now (auto-tuned unless fixed).
    pub recv_buffer: u32,
    /// The congestion controller in use (Linux's `tcpi_ca_name`).
    pub congestion: CongestionAlgorithm,
    /// Why the initial slow start ended: HyStart++'s delay signal (RFC
    /// 9406), a loss, a timeout, or not yet.
    pub slow_start_exit: SlowStartExit,
    /// Memory the receive side holds now ([`Connection::recv_memory`](crate::Connection::recv_memory)).
    pub rcv_memory: usize,
    /// Out-of-order bytes dropped under the stack's memory pressure (held
    /// ones pruned, as Linux's `tcp_prune_ofo_queue`, and new ones refused).
    pub rcv_ooo_pruned: u64,
    /// New bytes dropped because the stack's receive memory was over its
    /// limit.
    pub rcv_memory_drops: u64,
    /// Bytes copied out of referenced device buffers into buffers of the
    /// connection's own (collapsed, as Linux's `tcp_collapse`), because
    /// their true sizes outgrew twice the receive buffer or the stack was
    /// under memory pressure.
    pub rcv_collapsed: u64,
    /// The pacing rate in payload bytes per second (Linux's
    /// `tcpi_pacing_rate`); 0 while pacing is off or no RTT is known.
    pub pacing_rate: u64,
    /// Times the pacing clock held a segment of new data back.
    pub pacing_held: u64,
    /// Keepalive probes sent (RFC 1122 §4.2.3.6).
    pub keepalive_probes: u64,
    /// Times Nagle's algorithm (RFC 896) held a small segment back.
    pub nagle_held: u64,
    /// ACKs sent because the delayed-ACK timer fired (Linux's
    /// `DelayedACKs`): in-order data that no reply, read or further
    /// segment acknowledged in time.
    pub delayed_acks: u64,
    /// Cumulative ACKs sent at once only because the connection was in
    /// quickack mode (its first segments, after out-of-order or duplicate
    /// data, after a silence, or `set_quickack(true)`); without it they
    /// would have waited.
    pub quick_acks: u64,
    /// ICMP errors taken (RFC 5927's check passed): destination
    /// unreachable, packet too big.
    pub icmp_errors: u64,
    /// ICMP errors ignored: the quoted sequence number lay outside
    /// SND.UNA..SND.MAX (RFC 5927 §4.1), or the connection was closed.
    pub icmp_ignored: u64,
    /// Times path MTU discovery lowered the MSS (RFC 1191, RFC 8201).
    pub pmtu_lowered: u64,
}
