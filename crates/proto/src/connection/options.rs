//! What the handshake negotiated (RFC 9293 §3.7.1 MSS; window scale,
//! timestamps and SACK-permitted join here once they are negotiated).

/// The options in force on a connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Negotiated {
    /// The MSS we advertise: the configured cap and this family's MTU room.
    pub(crate) adv_mss: u16,
    /// The send MSS: the peer's option (or the RFC default) within ours.
    pub(crate) smss: u32,
}
