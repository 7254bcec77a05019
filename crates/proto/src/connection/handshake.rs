//! State that means something only until our SYN is acknowledged (SYN_SENT,
//! SYN_RECEIVED, or FIN_WAIT_1 after a CLOSE in SYN_RECEIVED).

/// The handshake's own state.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Handshake {
    /// Send our SYN (SYN_SENT) or SYN-ACK (after the peer's SYN) at the next
    /// poll.
    pub(crate) syn_pending: bool,
    /// Our SYN was retransmitted by the RTO (RFC 6298 §5.7).
    pub(crate) rto_retransmitted: bool,
    /// SYN or SYN-ACK retransmissions, by timeout or for a repeated SYN
    /// (Linux's `total_retrans` at the end of the handshake).
    pub(crate) retransmits: u32,
}
