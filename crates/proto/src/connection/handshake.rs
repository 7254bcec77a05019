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

impl super::Connection {
    /// The rest of a passive open from a SYN cookie (RFC 4987 §3.6): this
    /// connection was made by `accept` from the SYN the cookie stands for,
    /// with the cookie as its ISS; the endpoint sent the SYN-ACK without
    /// keeping state. Here that SYN-ACK is built once more and discarded
    /// (so the send space, the advertised window and the timers stand as
    /// after sending it, timing nothing: the SYN-ACK left long ago), and
    /// `ack`, the peer's acknowledgment of it without data or FIN, takes
    /// the connection to ESTABLISHED.
    ///
    /// With timestamps, the RTT sample of this ACK's TSecr includes the up
    /// to 63 ms the cookie's TSval was rounded down by (as on Linux); later
    /// samples correct it.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the ACK does not establish the
    /// connection (not acceptable in SYN_RECEIVED).
    pub(crate) fn complete_cookie_handshake(
        &mut self,
        now: crate::time::Instant,
        ack: &crate::wire::TcpRepr,
    ) -> Result<(), crate::error::Error> {
        let mut scratch = bytes::BytesMut::new();
        let _ = self.poll_transmit(now, &mut scratch);
        self.sent.stop_timing();
        self.handle_segment(
            now,
            super::Segment {
                repr: *ack,
                payload: bytes::Bytes::new(),
            },
        );
        if self.state != super::State::Established {
            return Err(crate::error::Error::InvalidInput(
                "a cookie ACK the connection does not accept",
            ));
        }
        Ok(())
    }
}
